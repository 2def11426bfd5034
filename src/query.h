/*
 * query.h - the query string.
 *
 * Parses "a=1&b=x%20y" (also '+' as space) into decoded pairs in the
 * arena.  A key given twice, an invalid escape, a NUL or invalid UTF-8 is
 * a 400 naming the key (repeated parameters are ambiguous, so they are
 * refused rather than guessed at); only a list key, one whose name ends
 * in "[]" ("include[]=a&include[]=b"), may repeat.  The typed getters check one
 * key against its set and return false with ERR_VALIDATION (param = the key)
 * when the value is outside it; an absent key leaves *out alone and succeeds.
 */
#ifndef PARLEY_QUERY_H
#define PARLEY_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"

struct query {
    size_t n;
    struct {
        const char *key;
        const char *value;
        bool used; /* set by the getters, so unknown keys can be found */
    } * items;
};

bool query_parse(struct query *q, const char *raw, struct arena *a,
                 struct error *err);
bool query_has(const struct query *q, const char *key);
/* Raw decoded value (a list key's first); NULL if absent.  Marks the
 * key (every value of a list key) used. */
const char *query_get(struct query *q, const char *key);
/* Decimal integer in [min, max]. */
bool query_int(struct query *q, const char *key, int64_t min, int64_t max,
               int64_t *out, struct error *err);
/* "true" or "false". */
bool query_bool(struct query *q, const char *key, int *out, struct error *err);
/* One of the NULL-terminated names; *out = its index. */
bool query_enum(struct query *q, const char *key, const char *const *names,
                int *out, struct error *err);
/* RFC 3339 timestamp (clock_parse). */
bool query_time(struct query *q, const char *key, int64_t *out,
                struct error *err);
/* A non-empty string of at most max_chars Unicode chars. */
bool query_string(struct query *q, const char *key, size_t max_chars,
                  const char **out, struct error *err);
/* ERR_VALIDATION naming the first key no getter asked for. */
bool query_check_unused(const struct query *q, struct error *err);

#endif

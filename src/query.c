#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "query.h"
#include "url.h"
#include "utf8.h"
#include "banned.h"

/*
 * Pairs are split on '&'.  An empty pair ("a=1&&b=2", a leading or
 * trailing '&') is skipped: it names nothing and browsers make them.  A
 * pair with an empty name ("=x") is refused, since its value would be
 * silently lost.  A name without '=' has the value "" (so "?verbose" is
 * present but fails every typed getter but query_has()).
 *
 * No route takes more than a couple of dozen parameters, and every one
 * we do not take is refused anyway, so more than QUERY_MAX_PAIRS is a
 * 400 at once; it also bounds the quadratic duplicate check.
 */
#define QUERY_MAX_PAIRS 64

/* "include[]": a list parameter, which may repeat (qs's and PHP's
 * `arrayFormat: brackets`, as OpenAI's clients send arrays). */
static bool
query_is_list(const char *key)
{
    size_t n = strlen(key);

    return n > 2 && key[n - 2] == '[' && key[n - 1] == ']';
}

bool
query_parse(struct query *q, const char *raw, struct arena *a,
            struct error *err)
{
    const char *p = raw != NULL ? raw : "";
    size_t pairs = 0;

    q->n = 0;
    q->items = NULL;
    /* A pair starts at a character that is not '&', after '&' or at the
     * start; empty pairs get no slot. */
    for (const char *c = p; *c != '\0'; c++)
        pairs += *c != '&' && (c == p || c[-1] == '&');
    if (pairs > QUERY_MAX_PAIRS)
        return error_set(err, ERR_VALIDATION, NULL,
                         "too many query parameters (at most %d)",
                         QUERY_MAX_PAIRS);
    if (pairs == 0)
        return true;
    q->items = arena_calloc(a, pairs * sizeof(*q->items));

    while (*p != '\0') {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq != NULL ? (size_t)(eq - p) : len;
        const char *key, *value;

        if (len == 0) {
            p++;
            continue;
        }
        if (key_len == 0)
            return error_set(err, ERR_VALIDATION, NULL,
                             "query parameter without a name");
        key = url_decode(a, p, key_len, true);
        if (key == NULL)
            return error_set(err, ERR_VALIDATION, arena_strndup(a, p, key_len),
                             "query parameter name is not valid "
                             "percent-encoded UTF-8");
        value =
            eq != NULL ? url_decode(a, eq + 1, len - key_len - 1, true) : "";
        if (value == NULL)
            return error_set(err, ERR_VALIDATION, key,
                             "value of %s is not valid percent-encoded UTF-8",
                             key);
        for (size_t i = 0; i < q->n && !query_is_list(key); i++)
            if (strcmp(q->items[i].key, key) == 0)
                return error_set(err, ERR_VALIDATION, key,
                                 "parameter given twice");
        q->items[q->n].key = key;
        q->items[q->n].value = value;
        q->items[q->n].used = false;
        q->n++;
        p += len;
        if (*p == '&')
            p++;
    }
    return true;
}

/* The index of key, or q->n when it is absent. */
static size_t
find(const struct query *q, const char *key)
{
    size_t i = 0;

    while (i < q->n && strcmp(q->items[i].key, key) != 0)
        i++;
    return i;
}

bool
query_has(const struct query *q, const char *key)
{
    return find(q, key) < q->n;
}

const char *
query_get(struct query *q, const char *key)
{
    size_t i = find(q, key);

    if (i == q->n)
        return NULL;
    /* Every value of a list parameter counts as read. */
    for (size_t k = i; k < q->n; k++)
        if (strcmp(q->items[k].key, key) == 0)
            q->items[k].used = true;
    return q->items[i].value;
}

/* Parses an optional '-' and one or more digits; false on anything else
 * or on overflow. */
static bool
parse_int64(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;

    if (neg)
        s++;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (d > 9 || v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* -(INT64_MAX + 1) is INT64_MIN; negate in unsigned to stay defined. */
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool
query_int(struct query *q, const char *key, int64_t min, int64_t max,
          int64_t *out, struct error *err)
{
    const char *v = query_get(q, key);
    int64_t n;

    if (v == NULL)
        return true;
    if (!parse_int64(v, &n) || n < min || n > max)
        return error_set(err, ERR_VALIDATION, key,
                         "%s must be an integer from %lld to %lld", key,
                         (long long)min, (long long)max);
    *out = n;
    return true;
}

bool
query_bool(struct query *q, const char *key, int *out, struct error *err)
{
    const char *v = query_get(q, key);

    if (v == NULL)
        return true;
    if (strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0)
        *out = 0;
    else
        return error_set(err, ERR_VALIDATION, key, "%s must be true or false",
                         key);
    return true;
}

bool
query_enum(struct query *q, const char *key, const char *const *names, int *out,
           struct error *err)
{
    const char *v = query_get(q, key);
    char list[120];
    size_t len = 0;

    if (v == NULL)
        return true;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    list[0] = '\0';
    for (int i = 0; names[i] != NULL && len < sizeof(list); i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s%s",
                         i > 0 ? ", " : "", names[i]);

        len += w > 0 ? (size_t)w : 0;
    }
    return error_set(err, ERR_VALIDATION, key, "%s must be one of %s", key,
                     list);
}

bool
query_time(struct query *q, const char *key, int64_t *out, struct error *err)
{
    const char *v = query_get(q, key);

    if (v == NULL)
        return true;
    if (!clock_parse(v, out))
        return error_set(err, ERR_VALIDATION, key,
                         "%s must be an RFC 3339 date-time", key);
    return true;
}

bool
query_string(struct query *q, const char *key, size_t max_chars,
             const char **out, struct error *err)
{
    const char *v = query_get(q, key);
    size_t len;

    if (v == NULL)
        return true;
    len = strlen(v);
    /* query_parse() let only valid UTF-8 in; checking again costs little
     * and keeps the count below honest for a hand-built query. */
    if (len == 0 || !utf8_valid(v, len) || utf8_count(v, len) > max_chars)
        return error_set(err, ERR_VALIDATION, key,
                         "%s must be 1 to %zu characters", key, max_chars);
    *out = v;
    return true;
}

bool
query_check_unused(const struct query *q, struct error *err)
{
    for (size_t i = 0; i < q->n; i++)
        if (!q->items[i].used)
            return error_set(err, ERR_VALIDATION, q->items[i].key,
                             "unknown query parameter");
    return true;
}

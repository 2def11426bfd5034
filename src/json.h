/*
 * json.h - JSON in and out.  The only module that includes yajl.
 *
 * Decoding builds a tree in the request's arena with yajl's event parser
 * (not yajl_tree, whose free recurses without bound).  The decoder enforces
 * what the API contract promises about every body, so later code can trust
 * a tree it is given:
 *   - nesting at most `max_depth` (checked while parsing, so a body nested
 *     100 000 deep fails early and costs nothing);
 *   - strings and keys are valid UTF-8 with no NUL (a "\u0000" escape is
 *     refused);
 *   - no key appears twice in one object;
 *   - integers fit int64; other numbers are finite doubles;
 *   - exactly one value, nothing but white space after it.
 * Every failure is ERR_INVALID_JSON with a message fit for the client.
 *
 * Encoding appends to a struct buf; strings are escaped per RFC 8259
 * (", \\, control characters; "/" is not escaped; non-ASCII is kept as
 * UTF-8).
 */
#ifndef PARLEY_JSON_H
#define PARLEY_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "error.h"

enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,    /* a number written without fraction or exponent that
                    fits int64 */
    JSON_DOUBLE, /* any other number */
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

struct json_value;

struct json_member {
    const char *key; /* NUL-terminated, UTF-8 */
    size_t key_len;
    struct json_value *value;
};

struct json_value {
    enum json_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *ptr; /* NUL-terminated; len excludes the NUL */
            size_t len;
        } s;
        struct {
            struct json_value **items;
            size_t len;
            size_t cap; /* room in items; json_array_push() grows it */
        } a;
        struct {
            struct json_member *members; /* in document order */
            size_t len;
            size_t cap; /* room in members; json_object_put() grows it */
        } o;
    } u;
};

/* Parses text[0..len) into a tree allocated from `a`.  Returns NULL and
 * sets err (ERR_INVALID_JSON) on any failure. */
struct json_value *json_parse(struct arena *a, const char *text, size_t len,
                              int max_depth, struct error *err);

/* Object lookup by key; NULL if v is not an object or has no such key. */
const struct json_value *json_get(const struct json_value *v, const char *key);

/* Depth of a value: scalars are 1, [] and {} are 1, [[1]] is 2. */
int json_depth(const struct json_value *v);

/* Bytes the value takes when encoded by json_write_value(). */
size_t json_encoded_size(const struct json_value *v);

/* Constructors for trees built by code (arena-allocated). */
struct json_value *json_new_null(struct arena *a);
struct json_value *json_new_bool(struct arena *a, bool b);
struct json_value *json_new_int(struct arena *a, int64_t i);
struct json_value *json_new_double(struct arena *a, double d);
/* Copies s[0..len). */
struct json_value *json_new_string(struct arena *a, const char *s, size_t len);
/* Arrays and objects made with room for `cap` entries; append with
 * json_array_push / json_object_put (which grow as needed). */
struct json_value *json_new_array(struct arena *a, size_t cap);
struct json_value *json_new_object(struct arena *a, size_t cap);
void json_array_push(struct arena *a, struct json_value *arr,
                     struct json_value *item);
/* Appends (does not replace): the caller keeps keys unique.  key is
 * copied. */
void json_object_put(struct arena *a, struct json_value *obj, const char *key,
                     size_t key_len, struct json_value *value);

/*
 * Writer.  A tiny state machine is overkill for the shapes we emit, so the
 * caller places commas itself; json_write_key() writes `"key":`.
 */
void json_write_string(struct buf *b, const char *s, size_t len);
void json_write_cstr(struct buf *b, const char *s); /* NULL -> null */
void json_write_key(struct buf *b, const char *key);
void json_write_int(struct buf *b, int64_t i);
/* Shortest of %.15g, %.16g, %.17g that reads back as the same double, with
 * ".0" added to integral values ("1.0", "-0.0") so they read back as
 * JSON_DOUBLE.  A NaN or infinity (callers never pass one) is written as
 * null. */
void json_write_double(struct buf *b, double d);
void json_write_bool(struct buf *b, bool v);
void json_write_null(struct buf *b);
void json_write_value(struct buf *b, const struct json_value *v);

#endif

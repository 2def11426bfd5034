/*
 * fuzz_util.h - what the libFuzzer harnesses in tests/fuzz share.
 *
 * A harness states the properties its target promises and calls
 * fuzz_fail() (which aborts, so libFuzzer keeps the input as a crash)
 * when one does not hold; ASan and UBSan catch the rest.  Everything here
 * is static inline: each harness is one translation unit, linked with the
 * objects of src/ that `make fuzz` builds with clang.
 */
#ifndef PARLEY_FUZZ_UTIL_H
#define PARLEY_FUZZ_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "utf8.h"

/* libFuzzer's entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static inline void
fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: property violated: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                        \
    } while (0)

/* Structural equality in document order: the same types, the same values
 * (doubles bit for bit but for NaN, which the decoder never makes), the
 * same keys in the same order.  Recurses once per level; trees here come
 * from json_parse() with a depth limit. */
static inline bool
fuzz_json_same(const struct json_value *a, const struct json_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case JSON_NULL:
        return true;
    case JSON_BOOL:
        return a->u.b == b->u.b;
    case JSON_INT:
        return a->u.i == b->u.i;
    case JSON_DOUBLE:
        return a->u.d == b->u.d && signbit(a->u.d) == signbit(b->u.d);
    case JSON_STRING:
        return a->u.s.len == b->u.s.len &&
               memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    case JSON_ARRAY:
        if (a->u.a.len != b->u.a.len)
            return false;
        for (size_t i = 0; i < a->u.a.len; i++)
            if (!fuzz_json_same(a->u.a.items[i], b->u.a.items[i]))
                return false;
        return true;
    case JSON_OBJECT:
        if (a->u.o.len != b->u.o.len)
            return false;
        for (size_t i = 0; i < a->u.o.len; i++) {
            const struct json_member *x = &a->u.o.members[i];
            const struct json_member *y = &b->u.o.members[i];

            if (x->key_len != y->key_len ||
                memcmp(x->key, y->key, x->key_len) != 0 ||
                !fuzz_json_same(x->value, y->value))
                return false;
        }
        return true;
    }
    return false;
}

/* A NUL-terminated arena copy of data[0..n). */
static inline char *
fuzz_cstr(struct arena *a, const uint8_t *data, size_t n)
{
    return arena_strndup(a, n ? (const char *)data : "", n);
}

/* Consumes fuzz input a piece at a time; past the end everything reads as
 * zero or empty, so any input is a complete one. */
struct fuzz_reader {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t
fuzz_byte(struct fuzz_reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static inline uint64_t
fuzz_u64(struct fuzz_reader *r)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | fuzz_byte(r);
    return v;
}

/* The bytes up to the next 0xff (or the end), as they are. */
static inline const uint8_t *
fuzz_field(struct fuzz_reader *r, size_t *len)
{
    const uint8_t *start = r->p;
    const uint8_t *sep = r->n ? memchr(r->p, 0xff, r->n) : NULL;
    size_t n = sep != NULL ? (size_t)(sep - r->p) : r->n;

    r->p += n;
    r->n -= n;
    if (r->n > 0) { /* the separator */
        r->p++;
        r->n--;
    }
    *len = n;
    return start;
}

/* The next field kept to what stored text can be: well-formed UTF-8
 * without NUL (bytes that start no valid character are dropped).  Arena
 * memory, NUL-terminated. */
static inline char *
fuzz_text(struct fuzz_reader *r, struct arena *a, size_t *len_out)
{
    size_t n, o = 0;
    const char *s = (const char *)fuzz_field(r, &n);
    char *out = arena_alloc(a, n + 1);

    for (size_t i = 0; i < n;) {
        size_t k;

        for (k = 1; k <= 4 && i + k <= n; k++)
            if (utf8_valid(s + i, k))
                break;
        if (k <= 4 && i + k <= n) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            i++;
        }
    }
    out[o] = '\0';
    if (len_out != NULL)
        *len_out = o;
    return out;
}

#endif

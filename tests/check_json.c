/*
 * check_json.c - the JSON decoder's promises (each rule accepted and
 * refused), the writer's escaping and number formats, and that
 * json_encoded_size() is exactly what json_write_value() writes.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suites.h"
#include "arena.h"
#include "buf.h"
#include "error.h"
#include "json.h"

static struct arena test_arena;

static void
setup(void)
{
    arena_init(&test_arena, 0);
}

static void
teardown(void)
{
    arena_release(&test_arena);
}

static double
now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Time bounds stretch under valgrind the way Check's own timeouts do. */
static double
time_limit(double seconds)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    double f = m != NULL ? atof(m) : 1.0;

    return seconds * (f > 1.0 ? f : 1.0);
}

/* Parses a copy of text[0..len) held in a buffer of exactly len bytes, so
 * ASan would see any read past the end. */
static struct json_value *
parse_n(const char *text, size_t len, int max_depth, struct error *err)
{
    char *copy = malloc(len ? len : 1);
    struct json_value *v;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, len);
    error_clear(err);
    v = json_parse(&test_arena, copy, len, max_depth, err);
    free(copy);
    return v;
}

static struct json_value *
parse_ok_n(const char *text, size_t len)
{
    struct error err = ERROR_INIT;
    struct json_value *v = parse_n(text, len, 32, &err);

    ck_assert_msg(v != NULL, "refused %.60s: %s", text, err.message);
    ck_assert_int_eq(err.code, ERR_NONE);
    return v;
}

static struct json_value *
parse_ok(const char *text)
{
    return parse_ok_n(text, strlen(text));
}

/* Asserts the text is refused with exactly `message`, or, when message
 * is NULL, with any message. */
static void
parse_bad_n(const char *text, size_t len, int max_depth, const char *message)
{
    struct error err = ERROR_INIT;
    struct json_value *v = parse_n(text, len, max_depth, &err);

    ck_assert_msg(v == NULL, "accepted %.60s", text);
    ck_assert_int_eq(err.code, ERR_INVALID_JSON);
    ck_assert_ptr_null(err.param);
    ck_assert_msg(err.message[0] != '\0', "no message for %.60s", text);
    if (message != NULL)
        ck_assert_str_eq(err.message, message);
}

static void
parse_bad(const char *text, const char *message)
{
    parse_bad_n(text, strlen(text), 32, message);
}

static char *
write_value(const struct json_value *v, size_t *len)
{
    struct buf b;

    buf_init(&b);
    json_write_value(&b, v);
    return buf_detach(&b, len);
}

/* Writes v and checks json_encoded_size() agrees with the output. */
static void
assert_writes(const struct json_value *v, const char *want)
{
    size_t len;
    char *got = write_value(v, &len);

    ck_assert_str_eq(got, want);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_uint_eq(json_encoded_size(v), len);
    free(got);
}

static bool
json_equal(const struct json_value *x, const struct json_value *y)
{
    if (x->type != y->type)
        return false;
    switch (x->type) {
    case JSON_NULL:
        return true;
    case JSON_BOOL:
        return x->u.b == y->u.b;
    case JSON_INT:
        return x->u.i == y->u.i;
    case JSON_DOUBLE:
        return memcmp(&x->u.d, &y->u.d, sizeof(double)) == 0;
    case JSON_STRING:
        return x->u.s.len == y->u.s.len &&
               memcmp(x->u.s.ptr, y->u.s.ptr, x->u.s.len) == 0 &&
               x->u.s.ptr[x->u.s.len] == '\0';
    case JSON_ARRAY:
        if (x->u.a.len != y->u.a.len)
            return false;
        for (size_t i = 0; i < x->u.a.len; i++)
            if (!json_equal(x->u.a.items[i], y->u.a.items[i]))
                return false;
        return true;
    case JSON_OBJECT:
        if (x->u.o.len != y->u.o.len)
            return false;
        for (size_t i = 0; i < x->u.o.len; i++) {
            const struct json_member *a = &x->u.o.members[i];
            const struct json_member *b = &y->u.o.members[i];

            if (a->key_len != b->key_len ||
                memcmp(a->key, b->key, a->key_len) != 0 ||
                a->key[a->key_len] != '\0' || !json_equal(a->value, b->value))
                return false;
        }
        return true;
    }
    return false;
}

/* n copies of `open`, then `mid`, then n copies of `close`. */
static char *
nested(size_t n, const char *open, const char *mid, const char *close,
       size_t *len)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    size_t total = n * lo + lm + n * lc;
    char *s = malloc(total + 1), *p = s;

    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, mid, lm);
    p += lm;
    for (size_t i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    *len = total;
    return s;
}

/* --- scalars and syntax ------------------------------------------------- */

START_TEST(test_scalars)
{
    struct json_value *v;

    v = parse_ok("null");
    ck_assert_int_eq(v->type, JSON_NULL);
    v = parse_ok("true");
    ck_assert_int_eq(v->type, JSON_BOOL);
    ck_assert(v->u.b);
    v = parse_ok("false");
    ck_assert_int_eq(v->type, JSON_BOOL);
    ck_assert(!v->u.b);
    v = parse_ok("0");
    ck_assert_int_eq(v->type, JSON_INT);
    ck_assert_int_eq(v->u.i, 0);
    v = parse_ok("-17");
    ck_assert_int_eq(v->type, JSON_INT);
    ck_assert_int_eq(v->u.i, -17);
    v = parse_ok("1.5");
    ck_assert_int_eq(v->type, JSON_DOUBLE);
    ck_assert(v->u.d == 1.5);
    v = parse_ok("\"hi\"");
    ck_assert_int_eq(v->type, JSON_STRING);
    ck_assert_uint_eq(v->u.s.len, 2);
    ck_assert_str_eq(v->u.s.ptr, "hi");
    v = parse_ok("\"\"");
    ck_assert_int_eq(v->type, JSON_STRING);
    ck_assert_uint_eq(v->u.s.len, 0);
    ck_assert_str_eq(v->u.s.ptr, "");
    v = parse_ok("[]");
    ck_assert_int_eq(v->type, JSON_ARRAY);
    ck_assert_uint_eq(v->u.a.len, 0);
    v = parse_ok("{}");
    ck_assert_int_eq(v->type, JSON_OBJECT);
    ck_assert_uint_eq(v->u.o.len, 0);
}
END_TEST

START_TEST(test_structure)
{
    struct json_value *v =
        parse_ok("{\"a\":[1,2.5,\"x\",null,true,{}],\"b\":{\"c\":false}}");
    const struct json_value *a, *b;

    ck_assert_int_eq(v->type, JSON_OBJECT);
    ck_assert_uint_eq(v->u.o.len, 2);
    ck_assert_str_eq(v->u.o.members[0].key, "a");
    ck_assert_uint_eq(v->u.o.members[0].key_len, 1);
    ck_assert_str_eq(v->u.o.members[1].key, "b");
    a = json_get(v, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->type, JSON_ARRAY);
    ck_assert_uint_eq(a->u.a.len, 6);
    ck_assert_int_eq(a->u.a.items[0]->type, JSON_INT);
    ck_assert_int_eq(a->u.a.items[0]->u.i, 1);
    ck_assert_int_eq(a->u.a.items[1]->type, JSON_DOUBLE);
    ck_assert(a->u.a.items[1]->u.d == 2.5);
    ck_assert_str_eq(a->u.a.items[2]->u.s.ptr, "x");
    ck_assert_int_eq(a->u.a.items[3]->type, JSON_NULL);
    ck_assert_int_eq(a->u.a.items[4]->type, JSON_BOOL);
    ck_assert_int_eq(a->u.a.items[5]->type, JSON_OBJECT);
    b = json_get(v, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(json_get(b, "c")->type, JSON_BOOL);
    ck_assert_ptr_null(json_get(v, "c"));
}
END_TEST

START_TEST(test_whitespace)
{
    struct json_value *v = parse_ok(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] } \r\n\t ");

    ck_assert_int_eq(v->type, JSON_OBJECT);
    ck_assert_uint_eq(json_get(v, "a")->u.a.len, 2);
    parse_ok("  7  ");
    parse_ok("\n\"s\"\n");
    /* yajl takes \v and \f as white space; RFC 8259 does not. */
    parse_bad("\v1", "invalid JSON at byte 0");
    parse_bad("1\f", "invalid JSON at byte 1");
    parse_bad("[1,\v2]", "invalid JSON at byte 3");
    parse_bad("{\"a\"\f:1}", "invalid JSON at byte 4");
    parse_bad("[1]\v", "invalid JSON at byte 3");
    parse_bad("[\"a\"\v]", "invalid JSON at byte 4");
}
END_TEST

START_TEST(test_empty)
{
    struct error err = ERROR_INIT;

    parse_bad("", "invalid JSON: no value");
    parse_bad("   ", "invalid JSON: no value");
    parse_bad(" \r\n\t", "invalid JSON: no value");
    ck_assert_ptr_null(json_parse(&test_arena, NULL, 0, 32, &err));
    ck_assert_int_eq(err.code, ERR_INVALID_JSON);
    ck_assert_str_eq(err.message, "invalid JSON: no value");
}
END_TEST

START_TEST(test_trailing)
{
    parse_bad("{} x",
              "invalid JSON: unexpected data after the value at byte 3");
    parse_bad("1 2", "invalid JSON: unexpected data after the value at byte 2");
    parse_bad("{}{}",
              "invalid JSON: unexpected data after the value at byte 2");
    parse_bad("[1]]",
              "invalid JSON: unexpected data after the value at byte 3");
    parse_bad("\"a\" \"b\"",
              "invalid JSON: unexpected data after the value at byte 4");
    parse_bad("nullx",
              "invalid JSON: unexpected data after the value at byte 4");
    parse_bad("true false",
              "invalid JSON: unexpected data after the value at byte 5");
    parse_bad("[] ,",
              "invalid JSON: unexpected data after the value at byte 3");
    parse_bad("0 \n 0",
              "invalid JSON: unexpected data after the value at byte 4");
    /* A NUL byte after the value is garbage too. */
    parse_bad_n("{}\0", 3, 32,
                "invalid JSON: unexpected data after the value at byte 2");
}
END_TEST

START_TEST(test_truncated)
{
    parse_bad("[1", "invalid JSON: unexpected end at byte 2");
    parse_bad("[1,", "invalid JSON: unexpected end at byte 3");
    parse_bad("{\"a\":", "invalid JSON: unexpected end at byte 5");
    parse_bad("{\"a\"", "invalid JSON: unexpected end at byte 4");
    parse_bad("\"abc", "invalid JSON: unexpected end at byte 4");
    parse_bad("tru", "invalid JSON: unexpected end at byte 3");
    parse_bad("1.", "invalid JSON: unexpected end at byte 2");
    parse_bad("-", "invalid JSON: unexpected end at byte 1");
    parse_bad("1e", "invalid JSON: unexpected end at byte 2");
    parse_bad("[[[", "invalid JSON: unexpected end at byte 3");
}
END_TEST

START_TEST(test_syntax)
{
    static const char *const bad[] = {
        "[1,]",      "{\"a\"}",    "{a:1}",
        "[01]",      "+1",         ".5",
        "NaN",       "Infinity",   "-Infinity",
        "'a'",       "/* */1",     "// c\n1",
        "[1 2]",     "{\"a\":1,}", "{,}",
        "[,1]",      "{\"a\" 1}",  "{\"a\":1 \"b\":2}",
        "]",         "}",          "{\"a\"::1}",
        "[1.e5]",    "[1.]",       "[0x10]",
        "[1e+]",     "TRUE",       "nul",
        "\"\\x41\"", "\"\\u12\"",  "\"\\u12G4\"",
        "\"\\'\"",   "[-]",        "{1:2}",
        "{null:1}",  "[\"a\":1]",  "\"a",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i], NULL);
    parse_bad("[1,2,x]", "invalid JSON at byte 5");
    parse_bad("{\"a\":1,}", "invalid JSON at byte 7");
    parse_bad("[1,,2]", "invalid JSON at byte 3");
    parse_bad("x", "invalid JSON at byte 0");
}
END_TEST

START_TEST(test_null_err)
{
    /* err may be NULL: refused all the same. */
    ck_assert_ptr_null(json_parse(&test_arena, "[1,", 3, 32, NULL));
    ck_assert_ptr_null(json_parse(&test_arena, "[[1]]", 5, 1, NULL));
    ck_assert_ptr_null(
        json_parse(&test_arena, "{\"a\":1,\"a\":1}", 13, 32, NULL));
}
END_TEST

/* --- depth --------------------------------------------------------------- */

START_TEST(test_depth_limit)
{
    size_t len;
    char *s;

    s = nested(32, "[", "", "]", &len);
    ck_assert_int_eq(json_depth(parse_ok_n(s, len)), 32);
    free(s);
    s = nested(33, "[", "", "]", &len);
    parse_bad_n(s, len, 32, "JSON nested deeper than 32");
    free(s);
    s = nested(32, "{\"a\":", "1", "}", &len);
    ck_assert_int_eq(json_depth(parse_ok_n(s, len)), 32);
    free(s);
    s = nested(33, "{\"a\":", "1", "}", &len);
    parse_bad_n(s, len, 32, "JSON nested deeper than 32");
    free(s);
    s = nested(16, "[{\"k\":", "[]", "}]", &len);
    parse_bad_n(s, len, 32, "JSON nested deeper than 32");
    free(s);
    s = nested(16, "[{\"k\":", "1", "}]", &len);
    ck_assert_int_eq(json_depth(parse_ok_n(s, len)), 32);
    free(s);

    /* Small limits. */
    {
        struct error err = ERROR_INIT;

        ck_assert_ptr_nonnull(parse_n("[]", 2, 1, &err));
        ck_assert_ptr_nonnull(parse_n("[1,2]", 5, 1, &err));
        ck_assert_ptr_nonnull(parse_n("1", 1, 1, &err));
        parse_bad_n("[[]]", 4, 1, "JSON nested deeper than 1");
        parse_bad_n("[{}]", 4, 1, "JSON nested deeper than 1");
        parse_bad_n("1", 1, 0, "JSON nested deeper than 0");
        parse_bad_n("[]", 2, 0, "JSON nested deeper than 0");
    }
    /* A wide document is not a deep one. */
    ck_assert_int_eq(json_depth(parse_ok("[[1],[2],[3],{\"a\":2}]")), 2);
    ck_assert_int_eq(json_depth(parse_ok("[[1],[2],[3],{\"a\":[]}]")), 3);
}
END_TEST

START_TEST(test_depth_values)
{
    ck_assert_int_eq(json_depth(parse_ok("1")), 1);
    ck_assert_int_eq(json_depth(parse_ok("\"s\"")), 1);
    ck_assert_int_eq(json_depth(parse_ok("[]")), 1);
    ck_assert_int_eq(json_depth(parse_ok("{}")), 1);
    ck_assert_int_eq(json_depth(parse_ok("[1]")), 1);
    ck_assert_int_eq(json_depth(parse_ok("[[1]]")), 2);
    ck_assert_int_eq(json_depth(parse_ok("{\"a\":{\"b\":[]}}")), 3);
    ck_assert_int_eq(json_depth(parse_ok("[1,[2,[3]],{}]")), 3);
    ck_assert_int_eq(json_depth(json_new_null(&test_arena)), 1);
}
END_TEST

START_TEST(test_depth_100000)
{
    const size_t n = 100000;
    size_t len;
    char *s;
    double t0, elapsed;

    s = nested(n, "[", "", "]", &len);
    t0 = now_seconds();
    parse_bad_n(s, len, 32, "JSON nested deeper than 32");
    elapsed = now_seconds() - t0;
    ck_assert_msg(elapsed < time_limit(0.5), "took %.3f s", elapsed);
    /* Unclosed, and with objects. */
    parse_bad_n(s, n, 32, "JSON nested deeper than 32");
    free(s);
    s = nested(n, "{\"a\":", "1", "}", &len);
    parse_bad_n(s, len, 32, "JSON nested deeper than 32");
    free(s);
}
END_TEST

/* With no practical limit a 100 000-deep body still parses: the decoder
 * uses no recursion (a recursive one would blow the stack here under
 * ASan).  The tree is walked by hand, not with json_depth(). */
START_TEST(test_depth_no_recursion)
{
    const size_t n = 100000;
    size_t len, depth = 0;
    char *s = nested(n, "[", "0", "]", &len);
    struct error err = ERROR_INIT;
    const struct json_value *v = parse_n(s, len, 1000000, &err);

    ck_assert_msg(v != NULL, "%s", err.message);
    while (v->type == JSON_ARRAY) {
        ck_assert_uint_eq(v->u.a.len, 1);
        v = v->u.a.items[0];
        depth++;
    }
    ck_assert_uint_eq(depth, n);
    ck_assert_int_eq(v->type, JSON_INT);
    free(s);
}
END_TEST

/* --- duplicate keys ------------------------------------------------------ */

START_TEST(test_duplicates)
{
    parse_bad("{\"a\":1,\"a\":2}", "duplicate key \"a\"");
    parse_bad("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key \"a\"");
    parse_bad("{\"x\":{\"b\":1,\"b\":2}}", "duplicate key \"b\"");
    parse_bad("[{\"ok\":1},{\"q\":[],\"q\":{}}]", "duplicate key \"q\"");
    /* The same key after decoding escapes. */
    parse_bad("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\"");
    parse_bad("{\"\":1,\"\":2}", "duplicate key \"\"");

    parse_ok("{\"a\":{\"a\":1}}");
    parse_ok("[{\"a\":1},{\"a\":1}]");
    parse_ok("{\"a\":1,\"A\":2,\"aa\":3,\"a \":4,\"\":5}");
    parse_ok("{\"a\":1,\"b\":{\"a\":2},\"c\":[{\"a\":3}]}");
}
END_TEST

START_TEST(test_duplicate_message_short)
{
    struct buf b;
    char want[128];

    /* A long key is quoted to 60 bytes. */
    buf_init(&b);
    buf_adds(&b, "{\"");
    for (int i = 0; i < 1000; i++)
        buf_addch(&b, (char)('a' + i % 26));
    buf_adds(&b, "\":1,\"");
    for (int i = 0; i < 1000; i++)
        buf_addch(&b, (char)('a' + i % 26));
    buf_adds(&b, "\":2}");
    snprintf(want, sizeof(want), "duplicate key \"%.60s...\"",
             "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh");
    parse_bad_n(b.data, b.len, 32, want);

    /* ... cut on a character boundary: 59 ASCII bytes then "é". */
    buf_reset(&b);
    buf_adds(&b, "{\"");
    for (int i = 0; i < 59; i++)
        buf_addch(&b, 'x');
    buf_adds(&b, "\xc3\xa9zz\":1,\"");
    for (int i = 0; i < 59; i++)
        buf_addch(&b, 'x');
    buf_adds(&b, "\xc3\xa9zz\":2}");
    snprintf(want, sizeof(want), "duplicate key \"%.59s...\"",
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    parse_bad_n(b.data, b.len, 32, want);

    /* A key of exactly 60 bytes is quoted whole. */
    buf_reset(&b);
    buf_adds(&b, "{\"");
    for (int i = 0; i < 60; i++)
        buf_addch(&b, 'k');
    buf_adds(&b, "\":1,\"");
    for (int i = 0; i < 60; i++)
        buf_addch(&b, 'k');
    buf_adds(&b, "\":2}");
    snprintf(
        want, sizeof(want), "duplicate key \"%.60s\"",
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
    parse_bad_n(b.data, b.len, 32, want);
    buf_release(&b);
}
END_TEST

static void
build_object(struct buf *b, size_t n, const char *extra)
{
    buf_addch(b, '{');
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s\"key%zu\":%zu", i ? "," : "", i, i);
    buf_adds(b, extra);
    buf_addch(b, '}');
}

START_TEST(test_big_object)
{
    struct buf b;
    const struct json_value *v;
    double t0, elapsed;

    buf_init(&b);
    build_object(&b, 10000, "");
    t0 = now_seconds();
    v = parse_ok_n(b.data, b.len);
    elapsed = now_seconds() - t0;
    ck_assert_msg(elapsed < time_limit(1.0), "took %.3f s", elapsed);
    ck_assert_uint_eq(v->u.o.len, 10000);
    ck_assert_str_eq(v->u.o.members[9999].key, "key9999");
    ck_assert_int_eq(json_get(v, "key1234")->u.i, 1234);

    buf_reset(&b);
    build_object(&b, 10000, ",\"key5000\":0");
    parse_bad_n(b.data, b.len, 32, "duplicate key \"key5000\"");

    /* 100 000 keys (about a 1 MiB body): checking every pair takes 20 s
     * here, sorting a few milliseconds. */
    buf_reset(&b);
    build_object(&b, 100000, "");
    t0 = now_seconds();
    v = parse_ok_n(b.data, b.len);
    elapsed = now_seconds() - t0;
    ck_assert_msg(elapsed < time_limit(5.0), "took %.3f s", elapsed);
    ck_assert_uint_eq(v->u.o.len, 100000);
    buf_reset(&b);
    build_object(&b, 100000, ",\"key0\":0");
    parse_bad_n(b.data, b.len, 32, "duplicate key \"key0\"");
    buf_release(&b);
}
END_TEST

START_TEST(test_big_array)
{
    struct buf b;
    const struct json_value *v;
    double t0, elapsed;

    buf_init(&b);
    buf_addch(&b, '[');
    for (size_t i = 0; i < 300000; i++)
        buf_printf(&b, "%s%zu", i ? "," : "", i % 10);
    buf_addch(&b, ']');
    t0 = now_seconds();
    v = parse_ok_n(b.data, b.len);
    elapsed = now_seconds() - t0;
    ck_assert_msg(elapsed < time_limit(5.0), "took %.3f s", elapsed);
    ck_assert_uint_eq(v->u.a.len, 300000);
    ck_assert_int_eq(v->u.a.items[299999]->u.i, 9);
    buf_release(&b);
}
END_TEST

/* --- strings -------------------------------------------------------------- */

START_TEST(test_nul_refused)
{
    parse_bad("\"a\\u0000b\"", "string contains \\u0000");
    parse_bad("\"\\u0000\"", "string contains \\u0000");
    parse_bad("[\"ok\",\"\\u0000\"]", "string contains \\u0000");
    parse_bad("{\"a\\u0000\":1}", "key contains \\u0000");
    parse_bad("{\"ok\":{\"\\u0000\":1}}", "key contains \\u0000");
    /* A raw NUL byte is a control character: yajl's lexer refuses it. */
    parse_bad_n("\"a\0b\"", 5, 32, NULL);
    parse_bad_n("{\"a\0\":1}", 8, 32, NULL);
    parse_bad_n("\0", 1, 32, NULL);
    /* U+0001 is fine. */
    ck_assert_str_eq(parse_ok("\"\\u0001\"")->u.s.ptr, "\x01");
}
END_TEST

START_TEST(test_invalid_utf8)
{
    static const char *const bad[] = {
        "\xc0\xaf",                 /* overlong '/' */
        "\xc1\xbf",                 /* overlong */
        "\xe0\x80\xaf",             /* overlong '/' */
        "\xe0\x9f\xbf",             /* overlong U+07FF */
        "\xf0\x8f\xbf\xbf",         /* overlong U+FFFF */
        "\xed\xa0\x80",             /* U+D800 encoded */
        "\xed\xbf\xbf",             /* U+DFFF encoded */
        "\xed\xa0\xbd\xed\xb8\x80", /* CESU-8 pair */
        "\xf4\x90\x80\x80",         /* past U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xf8\x88\x80\x80\x80",
        "\x80", /* lone continuation */
        "\xbf",
        "\xfe",
        "\xff",
        "\xc3", /* truncated */
        "\xe2\x82",
        "\xf0\x9f\x98",
        "\xe2\x82x", /* truncated, then ASCII */
        "a\xc3(b",
    };
    char text[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "\"%s\"", bad[i]);
        parse_bad(text, NULL);
        snprintf(text, sizeof(text), "[1,\"%s\"]", bad[i]);
        parse_bad(text, NULL);
        snprintf(text, sizeof(text), "{\"%s\":1}", bad[i]);
        parse_bad(text, NULL);
    }
    /* The ones yajl lets through are caught with our message. */
    parse_bad("[\"\xed\xa0\x80\"]", "invalid UTF-8 in string at byte 1");
    parse_bad("{\"\xc0\xaf\":1}", "invalid UTF-8 in key at byte 1");
    parse_bad(" \"\xf4\x90\x80\x80\"", "invalid UTF-8 in string at byte 1");
}
END_TEST

START_TEST(test_valid_utf8)
{
    const struct json_value *v;

    v = parse_ok("\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    ck_assert_str_eq(v->u.s.ptr, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    v = parse_ok("\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80\"");
    ck_assert_uint_eq(v->u.s.len, 13);
    v = parse_ok("{\"\xc3\xa9\":\"\x7f\"}");
    ck_assert_str_eq(v->u.o.members[0].key, "\xc3\xa9");
    ck_assert_str_eq(json_get(v, "\xc3\xa9")->u.s.ptr, "\x7f");
}
END_TEST

START_TEST(test_escapes)
{
    const struct json_value *v;

    v = parse_ok("\"\\ud83d\\ude00\"");
    ck_assert_uint_eq(v->u.s.len, 4);
    ck_assert_str_eq(v->u.s.ptr, "\xf0\x9f\x98\x80");
    v = parse_ok("\"\\uD83D\\uDE00\"");
    ck_assert_str_eq(v->u.s.ptr, "\xf0\x9f\x98\x80");
    ck_assert_str_eq(parse_ok("\"\\ud800\\udc00\"")->u.s.ptr,
                     "\xf0\x90\x80\x80");
    ck_assert_str_eq(parse_ok("\"\\udbff\\udfff\"")->u.s.ptr,
                     "\xf4\x8f\xbf\xbf");
    ck_assert_str_eq(parse_ok("\"\\u00e9\"")->u.s.ptr, "\xc3\xa9");
    ck_assert_str_eq(parse_ok("\"\\u20AC\"")->u.s.ptr, "\xe2\x82\xac");
    ck_assert_str_eq(parse_ok("\"\\uffff\"")->u.s.ptr, "\xef\xbf\xbf");
    ck_assert_str_eq(parse_ok("\"\\ud7ff\\ue000\"")->u.s.ptr,
                     "\xed\x9f\xbf\xee\x80\x80");
    v = parse_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    ck_assert_uint_eq(v->u.s.len, 8);
    ck_assert_str_eq(v->u.s.ptr, "\"\\/\b\f\n\r\t");
    v = parse_ok("\"a\\u0041\\ud83d\\ude00b\\\\u0000\"");
    ck_assert_str_eq(v->u.s.ptr, "aA\xf0\x9f\x98\x80"
                                 "b\\u0000");
    v = parse_ok("{\"\\ud83d\\ude00\\n\":1}");
    ck_assert_str_eq(v->u.o.members[0].key, "\xf0\x9f\x98\x80\n");
    ck_assert_uint_eq(v->u.o.members[0].key_len, 5);
}
END_TEST

START_TEST(test_lone_surrogates)
{
    parse_bad("\"\\ud800\"", "unpaired surrogate in string at byte 0");
    parse_bad("\"\\ud800x\"", "unpaired surrogate in string at byte 0");
    parse_bad("\"\\ud800\\u0041\"", "unpaired surrogate in string at byte 0");
    parse_bad("\"\\ud800\\ud800\"", "unpaired surrogate in string at byte 0");
    parse_bad("\"\\ud800\\n\"", "unpaired surrogate in string at byte 0");
    parse_bad("\"\\udc00\"", "unpaired surrogate in string at byte 0");
    parse_bad("\"\\ude00\\ud83d\"", "unpaired surrogate in string at byte 0");
    parse_bad("[1, \"ok\\ud83d\\ude00\\udfff\"]",
              "unpaired surrogate in string at byte 4");
    parse_bad("{\"\\udbff\":1}", "unpaired surrogate in key at byte 1");
    /* A high surrogate cut off by the end of the string. */
    parse_bad("\"ab\\ud83d\\ude0\"", NULL);
    parse_bad("\"\\ud83d\\\"\"", "unpaired surrogate in string at byte 0");
}
END_TEST

START_TEST(test_control_chars_refused)
{
    char text[8];

    for (int c = 1; c < 0x20; c++) {
        snprintf(text, sizeof(text), "\"a%cb\"", c);
        parse_bad(text, NULL);
        snprintf(text, sizeof(text), "{\"%c\":1}", c);
        parse_bad(text, NULL);
    }
    ck_assert_str_eq(parse_ok("\"a\x7f\"")->u.s.ptr, "a\x7f");
}
END_TEST

/* --- numbers -------------------------------------------------------------- */

START_TEST(test_integers)
{
    const struct json_value *v;

    v = parse_ok("9223372036854775807");
    ck_assert_int_eq(v->type, JSON_INT);
    ck_assert(v->u.i == INT64_MAX);
    v = parse_ok("-9223372036854775808");
    ck_assert_int_eq(v->type, JSON_INT);
    ck_assert(v->u.i == INT64_MIN);
    v = parse_ok("[9223372036854775807,-9223372036854775808]");
    ck_assert(v->u.a.items[0]->u.i == INT64_MAX);
    ck_assert(v->u.a.items[1]->u.i == INT64_MIN);
    parse_bad("9223372036854775808", "number out of range");
    parse_bad("-9223372036854775809", "number out of range");
    parse_bad("[9223372036854775808]", "number out of range");
    parse_bad("{\"n\":-9223372036854775809}", "number out of range");
    parse_bad("18446744073709551616", "number out of range");
    parse_bad("123456789012345678901234567890", "number out of range");
    v = parse_ok("-0");
    ck_assert_int_eq(v->type, JSON_INT);
    ck_assert_int_eq(v->u.i, 0);
    ck_assert_int_eq(parse_ok("1000000")->u.i, 1000000);
    ck_assert_int_eq(parse_ok("[-42]")->u.a.items[0]->u.i, -42);
}
END_TEST

START_TEST(test_doubles)
{
    const struct json_value *v;
    struct buf b;

    v = parse_ok("1e308");
    ck_assert_int_eq(v->type, JSON_DOUBLE);
    ck_assert(v->u.d == 1e308);
    v = parse_ok("1.7976931348623157e308");
    ck_assert(v->u.d == DBL_MAX);
    parse_bad("1e309", "number out of range");
    parse_bad("-1e309", "number out of range");
    parse_bad("[1.8e308]", "number out of range");
    parse_bad("1e99999999999999999999", "number out of range");
    /* Underflow is not an error: it reads as (almost) zero. */
    v = parse_ok("1e-400");
    ck_assert_int_eq(v->type, JSON_DOUBLE);
    ck_assert(v->u.d == 0.0);
    ck_assert(parse_ok("5e-324")->u.d == 4.9406564584124654e-324);
    v = parse_ok("-0.0");
    ck_assert_int_eq(v->type, JSON_DOUBLE);
    ck_assert(v->u.d == 0.0 && signbit(v->u.d));
    ck_assert(parse_ok("0.1")->u.d == 0.1);
    v = parse_ok("1E2");
    ck_assert_int_eq(v->type, JSON_DOUBLE);
    ck_assert(v->u.d == 100.0);
    ck_assert(parse_ok("1e+2")->u.d == 100.0);
    ck_assert(parse_ok("-2.5e-3")->u.d == -2.5e-3);
    ck_assert_int_eq(parse_ok("10.0")->type, JSON_DOUBLE);
    /* A number longer than any buffer. */
    buf_init(&b);
    buf_adds(&b, "[0.1");
    for (int i = 0; i < 500; i++)
        buf_addch(&b, '0');
    buf_adds(&b, "1]");
    v = parse_ok_n(b.data, b.len);
    ck_assert(v->u.a.items[0]->u.d == 0.1);
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_addch(&b, '9');
    parse_bad_n(b.data, b.len, 32, "number out of range");
    buf_release(&b);
}
END_TEST

/* --- round trips ---------------------------------------------------------- */

START_TEST(test_round_trip)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {" { \"a\" : [ 1 , 2 ] } ", "{\"a\":[1,2]}"},
        {"-0", "0"},
        {"-0.0", "-0.0"},
        {"0.1", "0.1"},
        {"1.0", "1.0"},
        {"1e2", "100.0"},
        {"1E-7", "1e-07"},
        {"1e300", "1e+300"},
        {"123456789012345678", "123456789012345678"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"[true,false,null]", "[true,false,null]"},
        {"\"\\u00e9\\/\"", "\"\xc3\xa9/\""},
        {"\"\\u001f\\b\"", "\"\\u001f\\b\""},
        {"{\"\\n\":\"\\\"\"}", "{\"\\n\":\"\\\"\"}"},
        {"[[],{},[{}],{\"\":[]}]", "[[],{},[{}],{\"\":[]}]"},
        {"{\"b\":1,\"a\":2}", "{\"b\":1,\"a\":2}"},
        {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},
        {"[1.5,-2.25,3e-05]", "[1.5,-2.25,3e-05]"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct json_value *v = parse_ok(cases[i].in), *w;
        size_t len;
        char *out = write_value(v, &len);

        ck_assert_str_eq(out, cases[i].out);
        ck_assert_uint_eq(json_encoded_size(v), len);
        w = parse_ok_n(out, len);
        ck_assert_msg(json_equal(v, w), "round trip of %s", cases[i].in);
        free(out);
    }
}
END_TEST

/* A small deterministic generator (xorshift64*). */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void
random_text(uint64_t *seed, char *out, size_t *len)
{
    static const char *const pieces[] = {
        "a",
        "Z",
        " ",
        "\"",
        "\\",
        "/",
        "\n",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xe2\x80\xa8",
        "\b",
        "\f",
        "\r",
        "\x0b",
        "0",
    };
    size_t n = rnd(seed) % 12, p = 0;

    for (size_t i = 0; i < n; i++) {
        const char *piece =
            pieces[rnd(seed) % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t l = strlen(piece);

        memcpy(out + p, piece, l);
        p += l;
    }
    out[p] = '\0';
    *len = p;
}

static double
random_double(uint64_t *seed)
{
    for (;;) {
        uint64_t bits = rnd(seed);
        double d;

        switch (rnd(seed) % 4) {
        case 0:
            return (double)(int64_t)(rnd(seed) % 2000001) - 1000000.0;
        case 1:
            return (double)(rnd(seed) % 100000) / 1000.0;
        default:
            memcpy(&d, &bits, sizeof(d));
            if (isfinite(d))
                return d;
        }
    }
}

static struct json_value *
random_tree(uint64_t *seed, int depth)
{
    char text[64];
    size_t len;
    uint64_t kind = rnd(seed) % (depth > 0 ? 8 : 6);

    switch (kind) {
    case 0:
        return json_new_null(&test_arena);
    case 1:
        return json_new_bool(&test_arena, rnd(seed) & 1);
    case 2:
        return json_new_int(&test_arena,
                            (int64_t)rnd(seed) >> (rnd(seed) % 64));
    case 3:
        return json_new_double(&test_arena, random_double(seed));
    case 4:
    case 5:
        random_text(seed, text, &len);
        return json_new_string(&test_arena, text, len);
    case 6: {
        size_t n = rnd(seed) % 5;
        struct json_value *a = json_new_array(&test_arena, rnd(seed) % 3);

        for (size_t i = 0; i < n; i++)
            json_array_push(&test_arena, a, random_tree(seed, depth - 1));
        return a;
    }
    default: {
        size_t n = rnd(seed) % 5;
        struct json_value *o = json_new_object(&test_arena, rnd(seed) % 3);

        for (size_t i = 0; i < n; i++) {
            /* Keys unique by construction: a counter then random text. */
            char key[80];
            int kl = snprintf(key, sizeof(key), "%zu", i);

            random_text(seed, key + kl, &len);
            json_object_put(&test_arena, o, key, (size_t)kl + len,
                            random_tree(seed, depth - 1));
        }
        return o;
    }
    }
}

START_TEST(test_random_trees)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    for (int i = 0; i < 3000; i++) {
        const struct json_value *v = random_tree(&seed, 5), *w;
        size_t len;
        char *out = write_value(v, &len);

        ck_assert_uint_eq(json_encoded_size(v), len);
        ck_assert_uint_eq(strlen(out), len);
        w = parse_ok_n(out, len);
        ck_assert_msg(json_equal(v, w), "round trip of %s", out);
        free(out);
        if (i % 100 == 99)
            arena_reset(&test_arena);
    }
}
END_TEST

/* --- writer --------------------------------------------------------------- */

START_TEST(test_write_control_chars)
{
    static const char *const want[32] = {
        "\"\\u0000\"", "\"\\u0001\"", "\"\\u0002\"", "\"\\u0003\"",
        "\"\\u0004\"", "\"\\u0005\"", "\"\\u0006\"", "\"\\u0007\"",
        "\"\\b\"",     "\"\\t\"",     "\"\\n\"",     "\"\\u000b\"",
        "\"\\f\"",     "\"\\r\"",     "\"\\u000e\"", "\"\\u000f\"",
        "\"\\u0010\"", "\"\\u0011\"", "\"\\u0012\"", "\"\\u0013\"",
        "\"\\u0014\"", "\"\\u0015\"", "\"\\u0016\"", "\"\\u0017\"",
        "\"\\u0018\"", "\"\\u0019\"", "\"\\u001a\"", "\"\\u001b\"",
        "\"\\u001c\"", "\"\\u001d\"", "\"\\u001e\"", "\"\\u001f\"",
    };
    struct buf b;

    buf_init(&b);
    for (int c = 0; c < 32; c++) {
        char ch = (char)c;

        buf_reset(&b);
        json_write_string(&b, &ch, 1);
        ck_assert_str_eq(b.data, want[c]);
        assert_writes(json_new_string(&test_arena, &ch, 1), want[c]);
    }
    /* Quote and backslash escaped; '/', DEL, UTF-8 and U+2028 kept. */
    buf_reset(&b);
    json_write_string(&b, "a\"b\\c/d\x7f\xc3\xa9\xe2\x80\xa8", 13);
    ck_assert_str_eq(b.data, "\"a\\\"b\\\\c/d\x7f\xc3\xa9\xe2\x80\xa8\"");
    /* Every escape inside a longer string. */
    buf_reset(&b);
    json_write_string(&b, "x\ny\0z\x1b", 6);
    ck_assert_str_eq(b.data, "\"x\\ny\\u0000z\\u001b\"");
    buf_reset(&b);
    json_write_string(&b, "", 0);
    ck_assert_str_eq(b.data, "\"\"");
    buf_release(&b);
}
END_TEST

START_TEST(test_write_scalars)
{
    struct buf b;

    buf_init(&b);
    json_write_int(&b, INT64_MIN);
    buf_addch(&b, ' ');
    json_write_int(&b, INT64_MAX);
    buf_addch(&b, ' ');
    json_write_int(&b, 0);
    buf_addch(&b, ' ');
    json_write_int(&b, -1);
    ck_assert_str_eq(b.data, "-9223372036854775808 9223372036854775807 0 -1");
    buf_reset(&b);
    json_write_bool(&b, true);
    json_write_bool(&b, false);
    json_write_null(&b);
    json_write_cstr(&b, NULL);
    json_write_cstr(&b, "q\"");
    ck_assert_str_eq(b.data, "truefalsenullnull\"q\\\"\"");
    buf_reset(&b);
    buf_addch(&b, '{');
    json_write_key(&b, "a\tb");
    json_write_int(&b, 1);
    buf_addch(&b, '}');
    ck_assert_str_eq(b.data, "{\"a\\tb\":1}");
    buf_release(&b);
}
END_TEST

static void
assert_double_text(double d, const char *want)
{
    struct buf b;

    buf_init(&b);
    json_write_double(&b, d);
    ck_assert_str_eq(b.data, want);
    buf_release(&b);
    assert_writes(json_new_double(&test_arena, d), want);
}

START_TEST(test_write_double)
{
    assert_double_text(0.1, "0.1");
    assert_double_text(1.5, "1.5");
    assert_double_text(1.0, "1.0");
    assert_double_text(-3.0, "-3.0");
    assert_double_text(0.0, "0.0");
    assert_double_text(-0.0, "-0.0");
    assert_double_text(1.0 / 3.0, "0.3333333333333333");
    assert_double_text(0.1 + 0.2, "0.30000000000000004");
    assert_double_text(123456789.0, "123456789.0");
    assert_double_text(9007199254740992.0, "9007199254740992.0");
    assert_double_text(1e15, "1e+15");
    assert_double_text(1e21, "1e+21");
    assert_double_text(1e300, "1e+300");
    assert_double_text(1e-7, "1e-07");
    assert_double_text(DBL_MAX, "1.7976931348623157e+308");
    assert_double_text(-DBL_MAX, "-1.7976931348623157e+308");
    assert_double_text(DBL_MIN, "2.2250738585072014e-308");
    assert_double_text(4.9406564584124654e-324, "4.94065645841247e-324");
    /* Not finite: never written as bare words. */
    assert_double_text(NAN, "null");
    assert_double_text(INFINITY, "null");
    assert_double_text(-INFINITY, "null");
}
END_TEST

START_TEST(test_double_round_trip)
{
    uint64_t seed = 12345;
    struct buf b;

    buf_init(&b);
    for (int i = 0; i < 20000; i++) {
        double d = random_double(&seed), back;
        const struct json_value *v;

        buf_reset(&b);
        json_write_double(&b, d);
        back = strtod(b.data, NULL);
        ck_assert_msg(memcmp(&back, &d, sizeof(d)) == 0, "%s", b.data);
        ck_assert_uint_le(b.len, 24);
        v = parse_ok_n(b.data, b.len);
        ck_assert_int_eq(v->type, JSON_DOUBLE);
        ck_assert_msg(memcmp(&v->u.d, &d, sizeof(d)) == 0, "%s", b.data);
        if (i % 1000 == 999)
            arena_reset(&test_arena);
    }
    buf_release(&b);
}
END_TEST

START_TEST(test_write_value)
{
    struct json_value *o = json_new_object(&test_arena, 0);
    struct json_value *a = json_new_array(&test_arena, 1);

    json_array_push(&test_arena, a, json_new_int(&test_arena, 1));
    json_array_push(&test_arena, a, json_new_string(&test_arena, "x\n", 2));
    json_array_push(&test_arena, a, json_new_null(&test_arena));
    json_object_put(&test_arena, o, "list", 4, a);
    json_object_put(&test_arena, o, "k\"", 2, json_new_double(&test_arena, 2));
    json_object_put(&test_arena, o, "e", 1, json_new_object(&test_arena, 0));
    json_object_put(&test_arena, o, "f", 1, json_new_array(&test_arena, 4));
    json_object_put(&test_arena, o, "", 0, json_new_bool(&test_arena, false));
    assert_writes(o, "{\"list\":[1,\"x\\n\",null],\"k\\\"\":2.0,\"e\":{},"
                     "\"f\":[],\"\":false}");
    assert_writes(json_new_array(&test_arena, 0), "[]");
    assert_writes(json_new_object(&test_arena, 3), "{}");
    assert_writes(json_new_string(&test_arena, NULL, 0), "\"\"");
}
END_TEST

/* --- constructors and json_get ------------------------------------------- */

START_TEST(test_constructors)
{
    struct json_value *a = json_new_array(&test_arena, 0);
    struct json_value *o = json_new_object(&test_arena, 2);
    struct json_value *s, *p;
    char src[8] = "abc";
    char key[16];

    for (int64_t i = 0; i < 1000; i++)
        json_array_push(&test_arena, a, json_new_int(&test_arena, i));
    ck_assert_uint_eq(a->u.a.len, 1000);
    for (int64_t i = 0; i < 1000; i++)
        ck_assert(a->u.a.items[i]->u.i == i);

    for (int i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);

        json_object_put(&test_arena, o, key, (size_t)n,
                        json_new_int(&test_arena, i));
    }
    /* Keys were copied: the buffer now says something else. */
    memcpy(key, "zzzz", 5);
    ck_assert_uint_eq(o->u.o.len, 100);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(json_get(o, key)->u.i, i);
    }
    ck_assert_str_eq(o->u.o.members[42].key, "k42");

    s = json_new_string(&test_arena, src, 3);
    src[0] = 'X';
    ck_assert_str_eq(s->u.s.ptr, "abc");
    ck_assert_uint_eq(s->u.s.len, 3);
    s = json_new_string(&test_arena, "a\0b", 3);
    ck_assert_uint_eq(s->u.s.len, 3);
    ck_assert_int_eq(memcmp(s->u.s.ptr, "a\0b", 4), 0);

    ck_assert(json_new_bool(&test_arena, true)->u.b);
    ck_assert(json_new_int(&test_arena, INT64_MIN)->u.i == INT64_MIN);
    ck_assert(json_new_double(&test_arena, 0.25)->u.d == 0.25);
    ck_assert_int_eq(json_new_null(&test_arena)->type, JSON_NULL);

    /* Parsed containers can be appended to as well. */
    p = parse_ok("{\"a\":[1,2]}");
    json_object_put(&test_arena, p, "b", 1, json_new_int(&test_arena, 3));
    json_array_push(&test_arena, p->u.o.members[0].value,
                    json_new_int(&test_arena, 9));
    assert_writes(p, "{\"a\":[1,2,9],\"b\":3}");
}
END_TEST

START_TEST(test_get_lookup)
{
    const struct json_value *v = parse_ok("{\"a\":1,\"ab\":2,\"\":3}");

    ck_assert_int_eq(json_get(v, "a")->u.i, 1);
    ck_assert_int_eq(json_get(v, "ab")->u.i, 2);
    ck_assert_int_eq(json_get(v, "")->u.i, 3);
    ck_assert_ptr_null(json_get(v, "abc"));
    ck_assert_ptr_null(json_get(v, "A"));
    ck_assert_ptr_null(json_get(NULL, "a"));
    ck_assert_ptr_null(json_get(parse_ok("[\"a\"]"), "a"));
    ck_assert_ptr_null(json_get(parse_ok("\"a\""), "a"));
}
END_TEST

/* --- messages stay short ---------------------------------------------------
 */

START_TEST(test_messages_short)
{
    struct buf b;
    struct error err = ERROR_INIT;

    /* A huge unterminated string, garbage, a long bad number: none of it is
     * echoed. */
    buf_init(&b);
    buf_addch(&b, '"');
    for (int i = 0; i < 100000; i++)
        buf_addch(&b, 'q');
    ck_assert_ptr_null(parse_n(b.data, b.len, 32, &err));
    ck_assert_uint_lt(strlen(err.message), 80);
    ck_assert_ptr_null(strstr(err.message, "qqq"));
    buf_reset(&b);
    buf_adds(&b, "[1,");
    for (int i = 0; i < 100000; i++)
        buf_addch(&b, 'q');
    ck_assert_ptr_null(parse_n(b.data, b.len, 32, &err));
    ck_assert_uint_lt(strlen(err.message), 80);
    ck_assert_ptr_null(strstr(err.message, "qqq"));
    buf_release(&b);
}
END_TEST

Suite *
json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("decode");
    TCase *big = tcase_create("big");
    TCase *wr = tcase_create("encode");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_scalars);
    tcase_add_test(tc, test_structure);
    tcase_add_test(tc, test_whitespace);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_trailing);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_syntax);
    tcase_add_test(tc, test_null_err);
    tcase_add_test(tc, test_depth_limit);
    tcase_add_test(tc, test_depth_values);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_duplicate_message_short);
    tcase_add_test(tc, test_nul_refused);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_valid_utf8);
    tcase_add_test(tc, test_escapes);
    tcase_add_test(tc, test_lone_surrogates);
    tcase_add_test(tc, test_control_chars_refused);
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_doubles);
    tcase_add_test(tc, test_get_lookup);
    tcase_add_test(tc, test_messages_short);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(big, setup, teardown);
    tcase_set_timeout(big, 30);
    tcase_add_test(big, test_depth_100000);
    tcase_add_test(big, test_depth_no_recursion);
    tcase_add_test(big, test_big_object);
    tcase_add_test(big, test_big_array);
    suite_add_tcase(s, big);

    tcase_add_checked_fixture(wr, setup, teardown);
    tcase_add_test(wr, test_round_trip);
    tcase_add_test(wr, test_random_trees);
    tcase_add_test(wr, test_write_control_chars);
    tcase_add_test(wr, test_write_scalars);
    tcase_add_test(wr, test_write_double);
    tcase_add_test(wr, test_double_round_trip);
    tcase_add_test(wr, test_write_value);
    tcase_add_test(wr, test_constructors);
    suite_add_tcase(s, wr);
    return s;
}

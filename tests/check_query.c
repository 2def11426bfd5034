/*
 * check_query.c - query string parsing and the typed getters.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "query.h"
#include "suites.h"

static struct arena arena;

static void
setup(void)
{
    arena_init(&arena, 0);
}

static void
teardown(void)
{
    arena_release(&arena);
}

static void
parse_ok(struct query *q, const char *raw)
{
    struct error err = ERROR_INIT;

    ck_assert_msg(query_parse(q, raw, &arena, &err), "%s: %s",
                  raw != NULL ? raw : "(null)", err.message);
}

/* Parses raw, expecting a 400 naming param (NULL: none). */
static void
parse_bad(const char *raw, const char *param)
{
    struct query q;
    struct error err = ERROR_INIT;

    ck_assert_msg(!query_parse(&q, raw, &arena, &err), "%s", raw);
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_int_eq(error_http_status(err.code), 400);
    ck_assert_pstr_eq(err.param, param);
    ck_assert_str_ne(err.message, "");
}

START_TEST(test_parse_pairs)
{
    struct query q;

    parse_ok(&q, "a=1&b=x%20y&c=p+q&d=&e");
    ck_assert_uint_eq(q.n, 5);
    ck_assert_str_eq(q.items[0].key, "a");
    ck_assert_str_eq(q.items[0].value, "1");
    ck_assert_str_eq(q.items[1].value, "x y");
    ck_assert_str_eq(q.items[2].value, "p q");
    ck_assert_str_eq(q.items[3].key, "d");
    ck_assert_str_eq(q.items[3].value, "");
    ck_assert_str_eq(q.items[4].key, "e");
    ck_assert_str_eq(q.items[4].value, "");
    for (size_t i = 0; i < q.n; i++)
        ck_assert(!q.items[i].used);
}
END_TEST

START_TEST(test_parse_empty)
{
    struct query q;

    parse_ok(&q, "");
    ck_assert_uint_eq(q.n, 0);
    parse_ok(&q, NULL);
    ck_assert_uint_eq(q.n, 0);
    parse_ok(&q, "&&&");
    ck_assert_uint_eq(q.n, 0);
    ck_assert(!query_has(&q, "a"));
    ck_assert_ptr_null(query_get(&q, "a"));
}
END_TEST

START_TEST(test_parse_skips_empty_pairs)
{
    struct query q;

    parse_ok(&q, "&a=1&&b=2&");
    ck_assert_uint_eq(q.n, 2);
    ck_assert_str_eq(q.items[0].key, "a");
    ck_assert_str_eq(q.items[1].key, "b");
    ck_assert_str_eq(q.items[1].value, "2");
}
END_TEST

START_TEST(test_parse_decoding)
{
    struct query q;

    /* Keys are decoded too; '=' in a value and encoded '&' stay. */
    parse_ok(&q, "sea%72ch=a%26b%3Dc&x=a=b&caf%C3%A9=%e2%82%ac&p=%2B+");
    ck_assert_str_eq(query_get(&q, "search"), "a&b=c");
    ck_assert_str_eq(query_get(&q, "x"), "a=b");
    ck_assert_str_eq(query_get(&q, "caf\xc3\xa9"), "\xe2\x82\xac");
    ck_assert_str_eq(query_get(&q, "p"), "+ ");
    /* "%25" is decoded once. */
    parse_ok(&q, "v=%2541");
    ck_assert_str_eq(query_get(&q, "v"), "%41");
}
END_TEST

START_TEST(test_parse_refuses)
{
    parse_bad("a=1&a=2", "a");
    parse_bad("a=1&b=2&a=1", "a");
    parse_bad("a&a", "a");
    parse_bad("a=1&%61=2", "a"); /* the same key once decoded */
    parse_bad("=x", NULL);
    parse_bad("a=1&=", NULL);
    parse_bad("limit=%", "limit");
    parse_bad("limit=%2", "limit");
    parse_bad("limit=%zz", "limit");
    parse_bad("limit=1%00", "limit");
    parse_bad("search=%ff", "search");
    parse_bad("search=%c3", "search");
    parse_bad("search=%c0%af", "search");
    parse_bad("search=%ed%a0%80", "search");
    parse_bad("search=\xff", "search");
    /* A key that does not decode is named as sent. */
    parse_bad("a%zz=1", "a%zz");
    parse_bad("a%00=1", "a%00");
}
END_TEST

START_TEST(test_parse_duplicate_message)
{
    struct query q;
    struct error err = ERROR_INIT;

    ck_assert(!query_parse(&q, "limit=1&limit=2", &arena, &err));
    ck_assert_str_eq(err.param, "limit");
    ck_assert_str_eq(err.message, "parameter given twice");
}
END_TEST

/* include[]=a&include[]=b, as OpenAI's clients send a list: a key
 * ending in [] may repeat, and reading it reads every value. */
START_TEST(test_parse_list_keys)
{
    struct query q;
    struct error err = ERROR_INIT;

    parse_ok(&q, "include%5B%5D=a&limit=2&include[]=b");
    ck_assert_uint_eq(q.n, 3);
    ck_assert_str_eq(query_get(&q, "include[]"), "a");
    ck_assert_str_eq(query_get(&q, "limit"), "2");
    ck_assert(query_check_unused(&q, &err));
    /* only [] keys; "[]" alone is no list name */
    parse_bad("include=a&include=b", "include");
    parse_bad("[]=a&[]=b", "[]");
}
END_TEST

START_TEST(test_parse_too_many)
{
    char raw[1024];
    size_t len = 0;
    struct query q;
    struct error err = ERROR_INIT;

    for (int i = 0; i < 64; i++)
        len += (size_t)snprintf(raw + len, sizeof(raw) - len, "%sk%d=1",
                                i ? "&" : "", i);
    parse_ok(&q, raw);
    ck_assert_uint_eq(q.n, 64);
    snprintf(raw + len, sizeof(raw) - len, "&k64=1");
    ck_assert(!query_parse(&q, raw, &arena, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
}
END_TEST

START_TEST(test_get_marks_used)
{
    struct query q;
    struct error err = ERROR_INIT;

    parse_ok(&q, "a=1&b=2&c=3");
    ck_assert(query_has(&q, "b"));
    ck_assert(!query_has(&q, "B"));
    ck_assert(!q.items[1].used); /* has() does not count as use */
    ck_assert_str_eq(query_get(&q, "b"), "2");
    ck_assert(q.items[1].used);
    ck_assert_ptr_null(query_get(&q, "z"));
    ck_assert(!query_check_unused(&q, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "a");
    ck_assert_str_eq(err.message, "unknown query parameter");
    ck_assert_str_eq(query_get(&q, "a"), "1");
    ck_assert(!query_check_unused(&q, &err));
    ck_assert_str_eq(err.param, "c");
    ck_assert_str_eq(query_get(&q, "c"), "3");
    error_clear(&err);
    ck_assert(query_check_unused(&q, &err));
    ck_assert_int_eq(err.code, ERR_NONE);
}
END_TEST

START_TEST(test_int)
{
    static const char *const keys[] = {"a", "b", "c", "d"};
    struct query q;
    struct error err = ERROR_INIT;
    int64_t v = -7;

    parse_ok(&q, "limit=20&offset=0&neg=-5&zeros=007&big=9223372036854775807"
                 "&min=-9223372036854775808");
    ck_assert(query_int(&q, "limit", 1, 200, &v, &err));
    ck_assert_int_eq(v, 20);
    ck_assert(query_int(&q, "offset", 0, 100000, &v, &err));
    ck_assert_int_eq(v, 0);
    ck_assert(query_int(&q, "neg", -10, 10, &v, &err));
    ck_assert_int_eq(v, -5);
    ck_assert(query_int(&q, "zeros", 0, 10, &v, &err));
    ck_assert_int_eq(v, 7);
    ck_assert(query_int(&q, "big", 0, INT64_MAX, &v, &err));
    ck_assert_int_eq(v, INT64_MAX);
    ck_assert(query_int(&q, "min", INT64_MIN, 0, &v, &err));
    ck_assert_int_eq(v, INT64_MIN);
    /* One past either end of int64, even with the widest range. */
    parse_ok(&q, "a=9223372036854775808&b=-9223372036854775809"
                 "&c=18446744073709551615&d=18446744073709551616");
    for (size_t i = 0; i < 4; i++) {
        v = 42;
        ck_assert_msg(!query_int(&q, keys[i], INT64_MIN, INT64_MAX, &v, &err),
                      "%s", keys[i]);
        ck_assert_int_eq(v, 42);
    }
    /* Absent: *out alone, success. */
    v = 42;
    ck_assert(query_int(&q, "absent", 1, 2, &v, &err));
    ck_assert_int_eq(v, 42);
    ck_assert(query_check_unused(&q, &err));
}
END_TEST

START_TEST(test_int_refused)
{
    /* As sent, still encoded. */
    static const char *const bad[] = {
        "",
        "-",
        "%2B1",
        "+1",
        "%201",
        "1%20",
        "1.0",
        "1e2",
        "0x10",
        "abc",
        "1a",
        "--1",
        "0",
        "201",
        "-1",
        "-0x1",
        "99999999999999999999",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
    };
    char raw[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct query q;
        struct error err = ERROR_INIT;
        int64_t v = 42;

        snprintf(raw, sizeof(raw), "limit=%s", bad[i]);
        parse_ok(&q, raw);
        ck_assert_msg(!query_int(&q, "limit", 1, 200, &v, &err), "%s", raw);
        ck_assert_int_eq(err.code, ERR_VALIDATION);
        ck_assert_str_eq(err.param, "limit");
        ck_assert_str_eq(err.message, "limit must be an integer from 1 to 200");
        ck_assert_int_eq(v, 42);
        /* A refused value still counts as asked for. */
        ck_assert(query_check_unused(&q, &err));
    }
}
END_TEST

START_TEST(test_int_without_value)
{
    struct query q;
    struct error err = ERROR_INIT;
    int64_t v = 42;

    parse_ok(&q, "limit");
    ck_assert(!query_int(&q, "limit", 1, 200, &v, &err));
    ck_assert_str_eq(err.param, "limit");
    ck_assert_int_eq(v, 42);
}
END_TEST

START_TEST(test_bool)
{
    /* As sent; "true+" is "true " once decoded. */
    static const char *const bad[] = {"True", "FALSE", "1",     "0", "yes",
                                      "",     "maybe", "true+", "t"};
    struct query q;
    struct error err = ERROR_INIT;
    int v = -1;

    parse_ok(&q, "a=true&b=false");
    ck_assert(query_bool(&q, "a", &v, &err));
    ck_assert_int_eq(v, 1);
    ck_assert(query_bool(&q, "b", &v, &err));
    ck_assert_int_eq(v, 0);
    v = -1;
    ck_assert(query_bool(&q, "c", &v, &err));
    ck_assert_int_eq(v, -1);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char raw[64];

        snprintf(raw, sizeof(raw), "is_active=%s", bad[i]);
        parse_ok(&q, raw);
        v = -1;
        ck_assert_msg(!query_bool(&q, "is_active", &v, &err), "%s", raw);
        ck_assert_int_eq(err.code, ERR_VALIDATION);
        ck_assert_str_eq(err.param, "is_active");
        ck_assert_str_eq(err.message, "is_active must be true or false");
        ck_assert_int_eq(v, -1);
    }
}
END_TEST

START_TEST(test_enum)
{
    static const char *const sorts[] = {"updated_at", "-updated_at",
                                        "created_at", "-created_at", NULL};
    struct query q;
    struct error err = ERROR_INIT;
    int v = -1;

    parse_ok(&q, "sort=created_at&order=name");
    ck_assert(query_enum(&q, "sort", sorts, &v, &err));
    ck_assert_int_eq(v, 2);
    parse_ok(&q, "sort=-updated_at");
    ck_assert(query_enum(&q, "sort", sorts, &v, &err));
    ck_assert_int_eq(v, 1);
    v = -1;
    ck_assert(query_enum(&q, "absent", sorts, &v, &err));
    ck_assert_int_eq(v, -1);
    parse_ok(&q, "sort=name");
    ck_assert(!query_enum(&q, "sort", sorts, &v, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "sort");
    ck_assert_str_eq(err.message, "sort must be one of updated_at, "
                                  "-updated_at, created_at, -created_at");
    ck_assert_int_eq(v, -1);
    parse_ok(&q, "sort=Created_at");
    ck_assert(!query_enum(&q, "sort", sorts, &v, &err));
    parse_ok(&q, "sort=");
    ck_assert(!query_enum(&q, "sort", sorts, &v, &err));
}
END_TEST

START_TEST(test_time)
{
    struct query q;
    struct error err = ERROR_INIT;
    int64_t v = 7;

    parse_ok(&q, "created_after=2026-11-21T05:19:49.123Z"
                 "&updated_before=2026-11-21T10:49:49.123%2B05:30"
                 "&x=2026-11-21T05:19:49.123+05:30");
    ck_assert(query_time(&q, "created_after", &v, &err));
    ck_assert_int_eq(v, 1795238389123);
    ck_assert(query_time(&q, "updated_before", &v, &err));
    ck_assert_int_eq(v, 1795238389123);
    /* An unescaped '+' became a space: not a timestamp. */
    v = 7;
    ck_assert(!query_time(&q, "x", &v, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "x");
    ck_assert_int_eq(v, 7);
    parse_ok(&q, "created_after=yesterday");
    ck_assert(!query_time(&q, "created_after", &v, &err));
    ck_assert_str_eq(err.param, "created_after");
    ck_assert_int_eq(v, 7);
    ck_assert(query_time(&q, "absent", &v, &err));
    ck_assert_int_eq(v, 7);
}
END_TEST

START_TEST(test_string)
{
    struct query q;
    struct error err = ERROR_INIT;
    const char *v = "unset";

    parse_ok(&q, "search=caf%C3%A9&agent_name=&long=abcdef&emoji=%F0%9F%98%80"
                 "%F0%9F%98%80%F0%9F%98%80");
    ck_assert(query_string(&q, "search", 4, &v, &err));
    ck_assert_str_eq(v, "caf\xc3\xa9"); /* 4 chars, 5 bytes */
    ck_assert(!query_string(&q, "search", 3, &v, &err));
    ck_assert_str_eq(err.param, "search");
    ck_assert(query_string(&q, "emoji", 3, &v, &err));
    ck_assert(!query_string(&q, "emoji", 2, &v, &err));
    v = "unset";
    ck_assert(!query_string(&q, "agent_name", 255, &v, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "agent_name");
    ck_assert_str_eq(v, "unset");
    ck_assert(!query_string(&q, "long", 5, &v, &err));
    ck_assert_str_eq(err.message, "long must be 1 to 5 characters");
    ck_assert(query_string(&q, "long", 6, &v, &err));
    ck_assert_str_eq(v, "abcdef");
    v = "unset";
    ck_assert(query_string(&q, "absent", 6, &v, &err));
    ck_assert_str_eq(v, "unset");
    ck_assert(query_check_unused(&q, &err));
}
END_TEST

Suite *
query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("query");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_parse_pairs);
    tcase_add_test(tc, test_parse_empty);
    tcase_add_test(tc, test_parse_skips_empty_pairs);
    tcase_add_test(tc, test_parse_decoding);
    tcase_add_test(tc, test_parse_refuses);
    tcase_add_test(tc, test_parse_duplicate_message);
    tcase_add_test(tc, test_parse_list_keys);
    tcase_add_test(tc, test_parse_too_many);
    tcase_add_test(tc, test_get_marks_used);
    tcase_add_test(tc, test_int);
    tcase_add_test(tc, test_int_refused);
    tcase_add_test(tc, test_int_without_value);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_enum);
    tcase_add_test(tc, test_time);
    tcase_add_test(tc, test_string);
    suite_add_tcase(s, tc);
    return s;
}

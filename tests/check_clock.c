/*
 * check_clock.c - RFC 3339 formatting and parsing, and the clocks.
 */
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "suites.h"

static void
format_is(int64_t ms, const char *want)
{
    char out[CLOCK_RFC3339_LEN + 1];

    memset(out, 'x', sizeof(out));
    clock_format(ms, out);
    ck_assert_str_eq(out, want);
    ck_assert_uint_eq(strlen(out), CLOCK_RFC3339_LEN);
}

static void
parse_is(const char *s, int64_t want)
{
    int64_t ms = 12345;

    ck_assert_msg(clock_parse(s, &ms), "refused %s", s);
    ck_assert_msg(ms == want, "%s: %lld, want %lld", s, (long long)ms,
                  (long long)want);
}

static void
parse_refused(const char *s)
{
    int64_t ms = 12345;

    ck_assert_msg(!clock_parse(s, &ms), "accepted \"%s\"", s);
    ck_assert_int_eq(ms, 12345);
}

START_TEST(test_format)
{
    format_is(0, "1970-01-01T00:00:00.000Z");
    format_is(1, "1970-01-01T00:00:00.001Z");
    format_is(86400000, "1970-01-02T00:00:00.000Z");
    format_is(1795238389123, "2026-11-21T05:19:49.123Z");
    format_is(951825600000, "2000-02-29T12:00:00.000Z");
    format_is(1709251199999, "2024-02-29T23:59:59.999Z");
    format_is(-2203891200000, "1900-03-01T00:00:00.000Z");
    format_is(4107542400000, "2100-03-01T00:00:00.000Z");
    format_is(-11670998400000, "1600-02-29T00:00:00.000Z");
}
END_TEST

START_TEST(test_format_negative)
{
    format_is(-1, "1969-12-31T23:59:59.999Z");
    format_is(-999, "1969-12-31T23:59:59.001Z");
    format_is(-1000, "1969-12-31T23:59:59.000Z");
    format_is(-1001, "1969-12-31T23:59:58.999Z");
    format_is(-86400000, "1969-12-31T00:00:00.000Z");
    format_is(-86400001, "1969-12-30T23:59:59.999Z");
}
END_TEST

START_TEST(test_format_range)
{
    format_is(-62135596800000, "0001-01-01T00:00:00.000Z");
    format_is(253402300799999, "9999-12-31T23:59:59.999Z");
    /* Outside four-digit years the nearest end is shown. */
    format_is(-62135596800001, "0001-01-01T00:00:00.000Z");
    format_is(253402300800000, "9999-12-31T23:59:59.999Z");
    format_is(INT64_MIN, "0001-01-01T00:00:00.000Z");
    format_is(INT64_MAX, "9999-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(test_round_trip)
{
    char out[CLOCK_RFC3339_LEN + 1];
    int64_t back;

    /* Steps of a prime number of ms cross every field boundary. */
    for (int64_t ms = -62135596800000; ms < 253402300799999;
         ms += 7919LL * 86400 * 997 + 12345) {
        clock_format(ms, out);
        ck_assert_msg(clock_parse(out, &back), "%s", out);
        ck_assert_msg(back == ms, "%s: %lld != %lld", out, (long long)back,
                      (long long)ms);
    }
}
END_TEST

START_TEST(test_parse_basic)
{
    parse_is("1970-01-01T00:00:00Z", 0);
    parse_is("1970-01-01T00:00:00.000Z", 0);
    parse_is("1970-01-01t00:00:00z", 0);
    parse_is("1970-01-01T00:00:00.001Z", 1);
    parse_is("1969-12-31T23:59:59.999Z", -1);
    parse_is("2026-11-21T05:19:49.123Z", 1795238389123);
    parse_is("2026-11-21t05:19:49.123z", 1795238389123);
    parse_is("0001-01-01T00:00:00Z", -62135596800000);
    parse_is("9999-12-31T23:59:59.999Z", 253402300799999);
}
END_TEST

START_TEST(test_parse_leap_years)
{
    parse_is("2000-02-29T12:00:00Z", 951825600000);
    parse_is("2024-02-29T23:59:59.999Z", 1709251199999);
    parse_is("1600-02-29T00:00:00Z", -11670998400000);
    parse_refused("1900-02-29T00:00:00Z");
    parse_refused("2100-02-29T00:00:00Z");
    parse_refused("2023-02-29T00:00:00Z");
    parse_refused("2024-02-30T00:00:00Z");
    parse_is("2023-02-28T00:00:00Z", 1677542400000);
}
END_TEST

START_TEST(test_parse_offsets)
{
    parse_is("2026-11-21T10:49:49.123+05:30", 1795238389123);
    parse_is("2026-11-20T21:19:49.123-08:00", 1795238389123);
    parse_is("2026-11-21T05:19:49.123+00:00", 1795238389123);
    parse_is("2026-11-21T05:19:49.123-00:00", 1795238389123);
    parse_is("1970-01-01T00:00:00+23:59", -(23 * 60 + 59) * 60000LL);
    parse_is("1969-12-31T16:00:00-08:00", 0);
    parse_refused("2026-11-21T05:19:49+24:00");
    parse_refused("2026-11-21T05:19:49+05:60");
    parse_refused("2026-11-21T05:19:49+0530");
    parse_refused("2026-11-21T05:19:49+05");
    parse_refused("2026-11-21T05:19:49+05:3");
    parse_refused("2026-11-21T05:19:49+5:30");
    parse_refused("2026-11-21T05:19:49 05:30");
    parse_refused("2026-11-21T05:19:49+05:30Z");
}
END_TEST

START_TEST(test_parse_fractions)
{
    parse_is("1970-01-01T00:00:00.1Z", 100);
    parse_is("1970-01-01T00:00:00.12Z", 120);
    parse_is("1970-01-01T00:00:00.123Z", 123);
    parse_is("1970-01-01T00:00:00.1239Z", 123);
    parse_is("1970-01-01T00:00:00.99999Z", 999);
    parse_is("1970-01-01T00:00:00.123456789Z", 123);
    parse_is("1970-01-01T00:00:00.999999999Z", 999);
    parse_is("1970-01-01T00:00:00.000000001Z", 0);
    /* Truncated, not rounded, also before the epoch. */
    parse_is("1969-12-31T23:59:59.9999Z", -1);
    parse_refused("1970-01-01T00:00:00.1234567890Z");
    parse_refused("1970-01-01T00:00:00.Z");
    parse_refused("1970-01-01T00:00:00.");
    parse_refused("1970-01-01T00:00:00,123Z");
    parse_refused("1970-01-01T00:00:00.12a3Z");
}
END_TEST

START_TEST(test_parse_garbage)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-21",
        "2026-11-21T05:19Z",
        "2026-11-21T05:19:49",
        "2026-11-21 05:19:49Z",
        "2026-11-21T05:19:49Zx",
        "2026-11-21T05:19:49.123Z ",
        " 2026-11-21T05:19:49Z",
        "20261121T051949Z",
        "2026/11/21T05:19:49Z",
        "2026-1-21T05:19:49Z",
        "2026-11-21T5:19:49Z",
        "+2026-11-21T05:19:49Z",
        "-2026-11-21T05:19:49Z",
        "0000-01-01T00:00:00Z",
        "2026-00-21T05:19:49Z",
        "2026-13-21T05:19:49Z",
        "2026-11-00T05:19:49Z",
        "2026-11-31T05:19:49Z",
        "2026-04-31T05:19:49Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T23:60:00Z",
        "2026-11-21T23:59:60Z", /* leap seconds are not taken */
        "2026-11-21T05:19:49.123UTC",
        "yesterday at noon, roughly",
        "2026-11-21T05:19:49\xef\xbc\x9a",
        "2O26-11-21T05:19:49Z",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_refused(bad[i]);
}
END_TEST

START_TEST(test_clocks)
{
    int64_t wall = clock_now_ms(), m0 = clock_mono_ms(), m1;

    /* After 2020 and before 2100: a sanity check of the units. */
    ck_assert_int_gt(wall, 1577836800000);
    ck_assert_int_lt(wall, 4102444800000);
    clock_sleep_ms(5);
    m1 = clock_mono_ms();
    ck_assert_int_ge(m1 - m0, 5);
    clock_sleep_ms(0);
    clock_sleep_ms(-5);
}
END_TEST

Suite *
clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");

    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_format_negative);
    tcase_add_test(tc, test_format_range);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_parse_basic);
    tcase_add_test(tc, test_parse_leap_years);
    tcase_add_test(tc, test_parse_offsets);
    tcase_add_test(tc, test_parse_fractions);
    tcase_add_test(tc, test_parse_garbage);
    tcase_add_test(tc, test_clocks);
    suite_add_tcase(s, tc);
    return s;
}

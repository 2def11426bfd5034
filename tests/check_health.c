/*
 * check_health.c - the health score: every branch of every rule, their
 * boundaries, the order of the recommendations, and the floor.
 */
#include <stdint.h>

#include "health.h"
#include "suites.h"

static const char *const IDLE_DAY =
    "Session has been inactive for over 24 hours; consider ending it";
static const char *const IDLE_HOUR =
    "Session has been inactive for over an hour";
static const char *const NO_MESSAGES = "Session has no messages yet";
static const char *const FEW_MESSAGES = "Session has few messages";
static const char *const NOT_ACTIVE =
    "Session is not active; activate it to continue";
static const char *const HEALTHY = "Session is healthy";

static struct health_report
score(int64_t messages, double hours, bool active)
{
    struct health_report r;

    health_score(messages, hours, active, &r);
    return r;
}

START_TEST(healthy_session_scores_100)
{
    struct health_report r = score(5, 0.0, true);

    ck_assert_int_eq(r.score, 100);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_str_eq(r.recommendations[0], HEALTHY);
}
END_TEST

START_TEST(inactivity_deductions)
{
    struct health_report r;

    r = score(10, 1.0, true); /* "over an hour" is strictly more */
    ck_assert_int_eq(r.score, 100);
    r = score(10, 1.01, true);
    ck_assert_int_eq(r.score, 80);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_str_eq(r.recommendations[0], IDLE_HOUR);
    r = score(10, 24.0, true);
    ck_assert_int_eq(r.score, 80);
    ck_assert_str_eq(r.recommendations[0], IDLE_HOUR);
    r = score(10, 24.01, true); /* the day rule replaces the hour rule */
    ck_assert_int_eq(r.score, 60);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_str_eq(r.recommendations[0], IDLE_DAY);
    r = score(10, 1000.0, true);
    ck_assert_int_eq(r.score, 60);
}
END_TEST

START_TEST(low_activity_deductions)
{
    struct health_report r;

    r = score(0, 0.0, true);
    ck_assert_int_eq(r.score, 80);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_str_eq(r.recommendations[0], NO_MESSAGES);
    r = score(1, 0.0, true);
    ck_assert_int_eq(r.score, 90);
    ck_assert_str_eq(r.recommendations[0], FEW_MESSAGES);
    r = score(4, 0.0, true);
    ck_assert_int_eq(r.score, 90);
    ck_assert_str_eq(r.recommendations[0], FEW_MESSAGES);
    r = score(5, 0.0, true);
    ck_assert_int_eq(r.score, 100);
}
END_TEST

START_TEST(not_active_deduction)
{
    struct health_report r = score(5, 0.0, false);

    ck_assert_int_eq(r.score, 75);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_str_eq(r.recommendations[0], NOT_ACTIVE);
}
END_TEST

START_TEST(deductions_add_up_in_rule_order)
{
    struct health_report r = score(0, 30.0, false);

    ck_assert_int_eq(r.score, 100 - 40 - 20 - 25);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_str_eq(r.recommendations[0], IDLE_DAY);
    ck_assert_str_eq(r.recommendations[1], NO_MESSAGES);
    ck_assert_str_eq(r.recommendations[2], NOT_ACTIVE);
    r = score(3, 2.0, false);
    ck_assert_int_eq(r.score, 100 - 20 - 10 - 25);
    ck_assert_str_eq(r.recommendations[0], IDLE_HOUR);
    ck_assert_str_eq(r.recommendations[1], FEW_MESSAGES);
}
END_TEST

START_TEST(score_floor_is_zero)
{
    const struct health_weights heavy = {60, 30, 30, 20, 40};
    struct health_report r;

    health_score_with(&heavy, 0, 30.0, false, &r);
    ck_assert_int_eq(r.score, 0); /* 100 - 130, floored */
    ck_assert_uint_eq(r.n, 3);
    health_score_with(&heavy, 0, 30.0, true, &r);
    ck_assert_int_eq(r.score, 10);
    health_score_with(&heavy, 1, 30.0, false, &r);
    ck_assert_int_eq(r.score, 0); /* 100 - 60 - 20 - 40, floored */
    /* the default weights are the documented ones */
    ck_assert_int_eq(health_default_weights.idle_day, 40);
    ck_assert_int_eq(health_default_weights.idle_hour, 20);
    ck_assert_int_eq(health_default_weights.no_messages, 20);
    ck_assert_int_eq(health_default_weights.few_messages, 10);
    ck_assert_int_eq(health_default_weights.not_active, 25);
}
END_TEST

START_TEST(hours_are_rounded_to_two_decimals)
{
    const int64_t t = INT64_C(1800000000000);

    ck_assert(health_hours(t, t) == 0.0);
    ck_assert(health_hours(t, t + 1) == 0.0);
    ck_assert(health_hours(t, t + 90 * 60000) == 1.5);
    ck_assert(health_hours(t, t + 3600000 + 36000) == 1.01);
    ck_assert(health_hours(t, t + 3600000 + 17000) == 1.0);  /* 1.0047 */
    ck_assert(health_hours(t, t + 3600000 + 19000) == 1.01); /* 1.0053 */
    ck_assert(health_hours(t, t + INT64_C(25) * 3600000) == 25.0);
    ck_assert(health_hours(t + 5000, t) == 0.0); /* a clock ahead */
}
END_TEST

/* Timestamps near the int64 limits (a corrupt document; the fuzzer found
 * the overflow): a large number of hours, never undefined behaviour. The
 * sanitizer build turns a signed overflow here into a failure. */
START_TEST(hours_at_the_int64_limits)
{
    /* Capped at INT64_MAX ms: 2562047788015 hours and a fraction. */
    double h;

    h = health_hours(INT64_MIN, INT64_MAX);
    ck_assert(h > 2.56e12 && h < 2.57e12);
    h = health_hours(-1, INT64_MAX);
    ck_assert(h > 2.56e12 && h < 2.57e12);
    h = health_hours(INT64_MIN, 0);
    ck_assert(h > 2.56e12 && h < 2.57e12);
    ck_assert(health_hours(INT64_MAX, INT64_MIN) == 0.0);
    ck_assert(health_hours(INT64_MAX, INT64_MAX) == 0.0);
    ck_assert(health_hours(INT64_MIN, INT64_MIN) == 0.0);
    ck_assert(health_hours(INT64_MAX - 36000, INT64_MAX) == 0.01);
    ck_assert(health_hours(INT64_MIN, INT64_MIN + 36000) == 0.01);
}
END_TEST

Suite *
health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *t = tcase_create("score");

    tcase_add_test(t, healthy_session_scores_100);
    tcase_add_test(t, inactivity_deductions);
    tcase_add_test(t, low_activity_deductions);
    tcase_add_test(t, not_active_deduction);
    tcase_add_test(t, deductions_add_up_in_rule_order);
    tcase_add_test(t, score_floor_is_zero);
    tcase_add_test(t, hours_are_rounded_to_two_decimals);
    tcase_add_test(t, hours_at_the_int64_limits);
    suite_add_tcase(s, t);
    return s;
}

/*
 * check_status.c - the session status machine, every pair.
 */
#include "status.h"
#include "suites.h"

/* The contract, written out: row = from, column = to, both in the order
 * active, inactive, completed, failed, expired.
 *   active <-> inactive; active | inactive -> completed | failed | expired;
 *   expired -> active; completed and failed are final; same -> same is
 *   allowed (no change). */
static const bool allowed[STATUS_COUNT][STATUS_COUNT] = {
    [STATUS_ACTIVE] = {true, true, true, true, true},
    [STATUS_INACTIVE] = {true, true, true, true, true},
    [STATUS_COMPLETED] = {false, false, true, false, false},
    [STATUS_FAILED] = {false, false, false, true, false},
    [STATUS_EXPIRED] = {true, false, false, false, true},
};

START_TEST(test_transition_matrix)
{
    enum session_status from = (enum session_status)(_i / STATUS_COUNT);
    enum session_status to = (enum session_status)(_i % STATUS_COUNT);

    ck_assert_msg(status_can_change(from, to) == allowed[from][to],
                  "%s -> %s should be %s", status_name(from), status_name(to),
                  allowed[from][to] ? "allowed" : "refused");
}
END_TEST

START_TEST(test_matrix_spot_checks)
{
    /* The same facts as the table, spelled out where a typo would hide. */
    ck_assert(status_can_change(STATUS_ACTIVE, STATUS_INACTIVE));
    ck_assert(status_can_change(STATUS_INACTIVE, STATUS_ACTIVE));
    ck_assert(status_can_change(STATUS_EXPIRED, STATUS_ACTIVE));
    ck_assert(!status_can_change(STATUS_EXPIRED, STATUS_INACTIVE));
    ck_assert(!status_can_change(STATUS_EXPIRED, STATUS_COMPLETED));
    ck_assert(!status_can_change(STATUS_COMPLETED, STATUS_ACTIVE));
    ck_assert(!status_can_change(STATUS_FAILED, STATUS_ACTIVE));
    ck_assert(!status_can_change(STATUS_COMPLETED, STATUS_FAILED));
    ck_assert(!status_can_change(STATUS_FAILED, STATUS_COMPLETED));
    ck_assert(status_can_change(STATUS_COMPLETED, STATUS_COMPLETED));
}
END_TEST

START_TEST(test_names)
{
    static const char *const names[STATUS_COUNT] = {
        "active", "inactive", "completed", "failed", "expired",
    };

    ck_assert_int_eq(STATUS_COUNT, 5);
    for (int i = 0; i < STATUS_COUNT; i++) {
        ck_assert_str_eq(status_name((enum session_status)i), names[i]);
        ck_assert_int_eq(status_parse(names[i]), i);
    }
    ck_assert_int_eq(status_parse("active"), STATUS_ACTIVE);
    ck_assert_int_eq(status_parse("expired"), STATUS_EXPIRED);
    ck_assert_str_eq(status_name((enum session_status)STATUS_COUNT), "unknown");
    ck_assert_str_eq(status_name((enum session_status) - 1), "unknown");
}
END_TEST

START_TEST(test_parse_refuses)
{
    static const char *const bad[] = {
        "",        "Active",  "ACTIVE",    " active", "active ", "activ",
        "actives", "unknown", "is_active", "done",    "0",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(status_parse(bad[i]) == -1, "\"%s\"", bad[i]);
}
END_TEST

Suite *
status_suite(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("status");

    tcase_add_loop_test(tc, test_transition_matrix, 0,
                        STATUS_COUNT * STATUS_COUNT);
    tcase_add_test(tc, test_matrix_spot_checks);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_parse_refuses);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * check_service_message.c - the context-window rule, and message writes
 * through the fake store.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "fake_store.h"
#include "json.h"
#include "service_message.h"
#include "service_fixture.h"
#include "suites.h"

/* A message with content of `bytes` bytes. */
static struct message
msg(enum message_role role, size_t bytes, const char *call_id,
    const char *extra)
{
    struct message m;
    char *content = arena_alloc(&fx.arena, bytes + 1);

    memset(&m, 0, sizeof(m));
    memset(content, 'x', bytes);
    content[bytes] = '\0';
    m.role = role;
    m.content = content;
    m.tool_call_id = call_id;
    if (extra != NULL) {
        struct error err = ERROR_INIT;

        m.extra_data = json_parse(&fx.arena, extra, strlen(extra), 32, &err);
        ck_assert_ptr_nonnull(m.extra_data);
    }
    return m;
}

START_TEST(tokens_are_ceil_bytes_over_4)
{
    /* newest first: 5 bytes = 2 tokens, 4 bytes = 1, 1 byte = 1, 0 = 0 */
    struct message newest[4], out[4];
    int64_t tokens;

    newest[0] = msg(ROLE_USER, 5, NULL, NULL);
    newest[1] = msg(ROLE_USER, 4, NULL, NULL);
    newest[2] = msg(ROLE_USER, 1, NULL, NULL);
    newest[3] = msg(ROLE_USER, 0, NULL, NULL);
    newest[0].seq = 4, newest[1].seq = 3, newest[2].seq = 2, newest[3].seq = 1;
    ck_assert_uint_eq(
        service_message_context_pick(newest, 4, 100, out, &tokens), 4);
    ck_assert_int_eq(tokens, 4);
    ck_assert_int_eq(out[0].seq, 1); /* oldest first */
    ck_assert_int_eq(out[3].seq, 4);
}
END_TEST

START_TEST(run_stops_at_first_message_over_budget)
{
    struct message newest[3], out[3];
    int64_t tokens;

    newest[0] = msg(ROLE_USER, 8, NULL, NULL);  /* 2 */
    newest[1] = msg(ROLE_USER, 40, NULL, NULL); /* 10: does not fit in 5 */
    newest[2] = msg(ROLE_USER, 4, NULL, NULL);  /* 1: would fit, but the run
                                                   must not have a hole */
    ck_assert_uint_eq(service_message_context_pick(newest, 3, 5, out, &tokens),
                      1);
    ck_assert_int_eq(tokens, 2);
    /* a newest message over the budget gives an empty window */
    ck_assert_uint_eq(
        service_message_context_pick(newest + 1, 2, 5, out, &tokens), 0);
    ck_assert_int_eq(tokens, 0);
}
END_TEST

START_TEST(tool_without_its_call_is_dropped)
{
    struct message newest[4], out[4];
    int64_t tokens;

    /* oldest..newest: assistant(call a), tool(a), tool(b), user
     * budget cuts the assistant off: both tools lose their call */
    newest[0] = msg(ROLE_USER, 4, NULL, NULL);
    newest[1] = msg(ROLE_TOOL, 4, "b", NULL);
    newest[2] = msg(ROLE_TOOL, 4, "a", NULL);
    newest[3] = msg(ROLE_ASSISTANT, 40, "a", NULL);
    ck_assert_uint_eq(service_message_context_pick(newest, 4, 3, out, &tokens),
                      1);
    ck_assert_int_eq(out[0].role, ROLE_USER);
    ck_assert_int_eq(tokens, 1);
    /* with room for the assistant, tool a stays and tool b goes */
    ck_assert_uint_eq(
        service_message_context_pick(newest, 4, 100, out, &tokens), 3);
    ck_assert_int_eq(out[0].role, ROLE_ASSISTANT);
    ck_assert_str_eq(out[1].tool_call_id, "a");
    ck_assert_int_eq(out[2].role, ROLE_USER);
    ck_assert_int_eq(tokens, 12);
}
END_TEST

START_TEST(call_in_extra_data_tool_calls_counts)
{
    struct message newest[3], out[3];
    int64_t tokens;

    newest[0] = msg(ROLE_TOOL, 4, "c2", NULL);
    newest[1] = msg(ROLE_TOOL, 4, "c9", NULL);
    newest[2] = msg(ROLE_ASSISTANT, 4, NULL,
                    "{\"tool_calls\":[{\"id\":\"c1\"},{\"id\":\"c2\"}]}");
    ck_assert_uint_eq(
        service_message_context_pick(newest, 3, 100, out, &tokens), 2);
    ck_assert_int_eq(out[0].role, ROLE_ASSISTANT);
    ck_assert_str_eq(out[1].tool_call_id, "c2");
    /* a tool message with no tool_call_id has no call in any run */
    newest[0] = msg(ROLE_TOOL, 4, NULL, NULL);
    ck_assert_uint_eq(
        service_message_context_pick(newest, 1, 100, out, &tokens), 0);
}
END_TEST

START_TEST(a_user_message_with_a_call_id_is_not_a_call)
{
    struct message newest[2], out[2];
    int64_t tokens;

    newest[0] = msg(ROLE_TOOL, 4, "k", NULL);
    newest[1] = msg(ROLE_USER, 4, "k", NULL);
    ck_assert_uint_eq(
        service_message_context_pick(newest, 2, 100, out, &tokens), 1);
    ck_assert_int_eq(out[0].role, ROLE_USER);
}
END_TEST

Suite *
service_message_suite(void)
{
    Suite *s = suite_create("service_message");
    TCase *tc = tcase_create("context");

    tcase_add_checked_fixture(tc, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(tc, tokens_are_ceil_bytes_over_4);
    tcase_add_test(tc, run_stops_at_first_message_over_budget);
    tcase_add_test(tc, tool_without_its_call_is_dropped);
    tcase_add_test(tc, call_in_extra_data_tool_calls_counts);
    tcase_add_test(tc, a_user_message_with_a_call_id_is_not_a_call);
    suite_add_tcase(s, tc);
    return s;
}

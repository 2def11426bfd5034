/*
 * check_encode.c - the response bodies encode.c writes besides sessions
 * and messages (those are checked through the export in check_export.c),
 * to the byte: the lifecycle counts, stats with their rounded average,
 * health, the conversation, memory, the context window and the probes.
 */
#include <string.h>

#include "encode.h"
#include "suites.h"

static struct buf b;

static void
setup(void)
{
    buf_init(&b);
}

static void
teardown(void)
{
    buf_release(&b);
}

START_TEST(sweep_counts)
{
    struct sweep_counts c = {3, 2, 17};

    encode_sweep_counts(&b, &c);
    ck_assert_str_eq(b.data, "{\"expired\":3,\"deleted_sessions\":2,"
                             "\"deleted_messages\":17}");
}
END_TEST

START_TEST(erase_counts)
{
    struct erase_counts n = {4, 50, 6, 7};

    encode_erase_counts(&b, &n);
    /* idempotency keys are not the client's business */
    ck_assert_str_eq(b.data, "{\"deleted_sessions\":4,\"deleted_messages\":50,"
                             "\"deleted_memory\":6}");
}
END_TEST

START_TEST(stats_and_the_rounded_average)
{
    struct session_stats st = {3, {1, 1, 0, 1, 0}, 10};

    encode_stats(&b, &st);
    ck_assert_str_eq(
        b.data, "{\"total_sessions\":3,\"active_sessions\":1,\"by_status\":{"
                "\"active\":1,\"inactive\":1,\"completed\":0,\"failed\":1,"
                "\"expired\":0},\"total_messages\":10,"
                "\"average_messages_per_session\":3.33}");
    /* 2/3 = 0.666...: half up to 0.67 */
    buf_reset(&b);
    st.total_messages = 2;
    encode_stats(&b, &st);
    ck_assert_ptr_nonnull(
        strstr(b.data, "\"average_messages_per_session\":0.67}"));
    /* no sessions: 0, never a division by zero */
    buf_reset(&b);
    memset(&st, 0, sizeof(st));
    encode_stats(&b, &st);
    ck_assert_str_eq(
        b.data, "{\"total_sessions\":0,\"active_sessions\":0,\"by_status\":{"
                "\"active\":0,\"inactive\":0,\"completed\":0,\"failed\":0,"
                "\"expired\":0},\"total_messages\":0,"
                "\"average_messages_per_session\":0.0}");
}
END_TEST

START_TEST(session_health)
{
    struct session_health h = {"s-1", 2, 1.5, {70, 2, {"a \"b\"", "c", NULL}}};

    encode_session_health(&b, &h);
    ck_assert_str_eq(b.data, "{\"session_id\":\"s-1\",\"message_count\":2,"
                             "\"hours_inactive\":1.5,\"health_score\":70,"
                             "\"recommendations\":[\"a \\\"b\\\"\",\"c\"]}");
}
END_TEST

START_TEST(conversation)
{
    struct conversation_result r;

    memset(&r, 0, sizeof(r));
    ck_assert(
        uuid_parse("0f0e0d0c-0b0a-4908-8706-050403020100", &r.session_uuid));
    r.session_id = "chat";
    r.response = "This is a mock response to: hi";
    r.messages_count = 2;
    r.session_active = true;
    encode_conversation(&b, &r);
    ck_assert_str_eq(b.data,
                     "{\"session_id\":\"chat\",\"session_uuid\":"
                     "\"0f0e0d0c-0b0a-4908-8706-050403020100\",\"response\":"
                     "\"This is a mock response to: hi\",\"messages_count\":2,"
                     "\"session_active\":true}");
}
END_TEST

START_TEST(memory)
{
    struct arena a;
    struct json_value *items, *v;

    arena_init(&a, 0);
    v = json_new_array(&a, 1);
    json_array_push(&a, v, json_new_int(&a, 1));
    encode_memory_entry(&b, "k.1", v);
    ck_assert_str_eq(b.data, "{\"key\":\"k.1\",\"value\":[1]}");
    buf_reset(&b);
    items = json_new_object(&a, 1);
    json_object_put(&a, items, "k.1", 3, v);
    encode_memory_items(&b, items);
    ck_assert_str_eq(b.data, "{\"items\":{\"k.1\":[1]}}");
    arena_release(&a);
}
END_TEST

START_TEST(context_and_clear)
{
    struct message_page p = {NULL, 0, 0, false};

    encode_context(&b, &p, 0);
    ck_assert_str_eq(b.data, "{\"items\":[],\"tokens\":0}");
    buf_reset(&b);
    encode_deleted_count(&b, 12);
    ck_assert_str_eq(b.data, "{\"deleted_count\":12}");
}
END_TEST

START_TEST(probes)
{
    encode_probe(&b, "ok");
    ck_assert_str_eq(b.data, "{\"status\":\"ok\"}");
    buf_reset(&b);
    encode_probe(&b, "ready");
    ck_assert_str_eq(b.data, "{\"status\":\"ready\"}");
}
END_TEST

Suite *
encode_suite(void)
{
    Suite *s = suite_create("encode");
    TCase *t = tcase_create("bodies");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, sweep_counts);
    tcase_add_test(t, erase_counts);
    tcase_add_test(t, stats_and_the_rounded_average);
    tcase_add_test(t, session_health);
    tcase_add_test(t, conversation);
    tcase_add_test(t, memory);
    tcase_add_test(t, context_and_clear);
    tcase_add_test(t, probes);
    suite_add_tcase(s, t);
    return s;
}

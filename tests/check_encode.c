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
    struct sweep_counts c = {3, 2, 17, 5};

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
    ck_assert(
        uuid_parse("00010203-0405-4607-8809-0a0b0c0d0e0f", &r.message.id));
    r.message.session_id = "chat";
    r.message.seq = 2;
    r.message.role = ROLE_ASSISTANT;
    r.message.content = r.response;
    r.message.created_at = r.message.updated_at = 1000;
    encode_conversation(&b, &r);
    ck_assert_str_eq(b.data,
                     "{\"session_id\":\"chat\",\"session_uuid\":"
                     "\"0f0e0d0c-0b0a-4908-8706-050403020100\",\"response\":"
                     "\"This is a mock response to: hi\",\"messages_count\":2,"
                     "\"session_active\":true,\"message\":{\"id\":"
                     "\"00010203-0405-4607-8809-0a0b0c0d0e0f\",\"session_id\":"
                     "\"chat\",\"seq\":2,\"role\":\"assistant\",\"content\":"
                     "\"This is a mock response to: hi\",\"tool_call_id\":null,"
                     "\"tool_name\":null,\"extra_data\":null,\"created_at\":"
                     "\"1970-01-01T00:00:01.000Z\",\"updated_at\":"
                     "\"1970-01-01T00:00:01.000Z\"}}");
}
END_TEST

/* Server-sent events: one line of data each, whatever the text holds. */
START_TEST(conversation_events)
{
    struct llm_delta text = {LLM_DELTA_CONTENT, "a\nb \"c\"", 7, 0, NULL, NULL};
    struct llm_delta first = {LLM_DELTA_TOOL_CALL, "", 0, 1, "call_1",
                              "get_weather"};
    struct llm_delta piece = {
        LLM_DELTA_TOOL_CALL, "{\"city\":", 8, 1, NULL, NULL};

    encode_event_begin(&b, "delta");
    encode_conversation_delta(&b, &text);
    encode_event_end(&b);
    encode_event_begin(&b, "delta");
    encode_conversation_delta(&b, &first);
    encode_event_end(&b);
    encode_event_begin(&b, "delta");
    encode_conversation_delta(&b, &piece);
    encode_event_end(&b);
    ck_assert_str_eq(
        b.data,
        "event: delta\ndata: {\"content\":\"a\\nb \\\"c\\\"\"}\n\n"
        "event: delta\ndata: {\"tool_call\":{\"index\":1,\"id\":\"call_1\","
        "\"name\":\"get_weather\",\"arguments\":\"\"}}\n\n"
        "event: delta\ndata: {\"tool_call\":{\"index\":1,\"arguments\":"
        "\"{\\\"city\\\":\"}}\n\n");
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
    encode_memory_page(&b, &(struct memory_page){items, false}, 100, 0);
    ck_assert_str_eq(b.data, "{\"items\":{\"k.1\":[1]},\"limit\":100,"
                             "\"has_more\":false,\"next_after\":null}");
    /* more past the page: next_after is its last key */
    buf_reset(&b);
    encode_memory_page(&b, &(struct memory_page){items, true}, 1, 0);
    ck_assert_str_eq(b.data, "{\"items\":{\"k.1\":[1]},\"limit\":1,"
                             "\"has_more\":true,\"next_after\":\"k.1\"}");
    arena_release(&a);
}
END_TEST

/* n memory entries k00, k01, ... with a value of `bytes` x's each. */
static struct json_value *
memory_items(struct arena *a, size_t n, size_t bytes)
{
    struct json_value *items = json_new_object(a, n);
    char *x = arena_alloc(a, bytes + 1);

    memset(x, 'x', bytes);
    x[bytes] = '\0';
    for (size_t i = 0; i < n; i++)
        json_object_put(a, items, arena_printf(a, "k%02zu", i), 3,
                        json_new_string(a, x, bytes));
    return items;
}

/* page_max_bytes: a page ends before the item that would pass it (less
 * the room kept for its end), says has_more, and never comes back
 * empty. */
START_TEST(memory_page_bytes)
{
    struct arena a;
    struct json_value *items;
    const struct json_value *parsed, *got;
    struct error jerr = ERROR_INIT;

    arena_init(&a, 0);
    /* each member "kNN":"xxx..." takes 1000 + 8 bytes, a comma between */
    items = memory_items(&a, 10, 1000);
    encode_memory_page(&b, &(struct memory_page){items, false}, 10,
                       ENCODE_PAGE_TAIL + 3100);
    ck_assert_uint_le(b.len, ENCODE_PAGE_TAIL + 3100);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_ptr_nonnull(parsed);
    got = json_get(parsed, "items");
    ck_assert_uint_eq(got->u.o.len, 3);
    ck_assert(json_get(parsed, "has_more")->u.b);
    ck_assert_str_eq(json_get(parsed, "next_after")->u.s.ptr, "k02");
    /* one member bigger than the whole bound still comes back alone */
    buf_reset(&b);
    encode_memory_page(&b, &(struct memory_page){items, false}, 10, 4096);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_uint_eq(json_get(parsed, "items")->u.o.len, 3);
    buf_reset(&b);
    encode_memory_page(&b, &(struct memory_page){items, false}, 10, 500);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_uint_eq(json_get(parsed, "items")->u.o.len, 1);
    ck_assert(json_get(parsed, "has_more")->u.b);
    ck_assert_str_eq(json_get(parsed, "next_after")->u.s.ptr, "k00");
    /* no bound: all ten, nothing more */
    buf_reset(&b);
    encode_memory_page(&b, &(struct memory_page){items, false}, 10, 0);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_uint_eq(json_get(parsed, "items")->u.o.len, 10);
    ck_assert(!json_get(parsed, "has_more")->u.b);
    arena_release(&a);
}
END_TEST

/* n messages of `bytes` x's each. */
static struct message *
messages(struct arena *a, size_t n, size_t bytes)
{
    struct message *m = arena_calloc(a, n * sizeof(*m));
    char *x = arena_alloc(a, bytes + 1);

    memset(x, 'x', bytes);
    x[bytes] = '\0';
    for (size_t i = 0; i < n; i++) {
        m[i].session_id = "s";
        m[i].seq = (int64_t)i + 1;
        m[i].content = x;
    }
    return m;
}

START_TEST(message_page_bytes)
{
    struct arena a;
    struct message_page p;
    const struct json_value *parsed;
    struct error jerr = ERROR_INIT;
    size_t one;

    arena_init(&a, 0);
    p.items = messages(&a, 20, 2000);
    p.len = 20;
    p.total = 50;
    p.has_more = true;
    one = encode_message_size(&p.items[0]);
    /* room for exactly five items and their commas */
    encode_message_page(&b, &p, 20, 0, ENCODE_PAGE_TAIL + 11 + 5 * (one + 1));
    ck_assert_uint_le(b.len, ENCODE_PAGE_TAIL + 11 + 5 * (one + 1));
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_ptr_nonnull(parsed);
    ck_assert_uint_eq(json_get(parsed, "items")->u.a.len, 5);
    ck_assert(json_get(parsed, "has_more")->u.b);
    ck_assert_int_eq(json_get(parsed, "total")->u.i, 50);
    /* the last page, whole: has_more false */
    buf_reset(&b);
    p.total = 20;
    p.has_more = false;
    encode_message_page(&b, &p, 20, 0, 8 * 1024 * 1024);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_uint_eq(json_get(parsed, "items")->u.a.len, 20);
    ck_assert(!json_get(parsed, "has_more")->u.b);
    /* the same page cut: has_more true although the store read no more */
    buf_reset(&b);
    encode_message_page(&b, &p, 20, 0, 4096);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_uint_eq(json_get(parsed, "items")->u.a.len, 1);
    ck_assert(json_get(parsed, "has_more")->u.b);
    arena_release(&a);
}
END_TEST

START_TEST(session_page_bytes)
{
    struct arena a;
    struct session_page p;
    const struct json_value *parsed;
    struct error jerr = ERROR_INIT;
    char *big;

    arena_init(&a, 0);
    big = arena_alloc(&a, 3001);
    memset(big, 'i', 3000);
    big[3000] = '\0';
    p.items = arena_calloc(&a, 4 * sizeof(*p.items));
    for (size_t i = 0; i < 4; i++) {
        p.items[i].session_id = "s";
        p.items[i].agent_instructions = big;
    }
    p.len = 4;
    p.total = 4;
    encode_session_page(&b, &p, 20, 0, 8000);
    ck_assert_uint_le(b.len, 8000);
    parsed = json_parse(&a, b.data, b.len, 32, &jerr);
    ck_assert_ptr_nonnull(parsed);
    ck_assert_uint_eq(json_get(parsed, "items")->u.a.len, 2);
    ck_assert(json_get(parsed, "has_more")->u.b);
    arena_release(&a);
}
END_TEST

START_TEST(context_and_clear)
{
    struct message_page p = {NULL, 0, 0, false};

    encode_context(&b, &p, 0, false);
    ck_assert_str_eq(b.data, "{\"items\":[],\"tokens\":0,\"has_more\":false}");
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
    tcase_add_test(t, conversation_events);
    tcase_add_test(t, memory);
    tcase_add_test(t, memory_page_bytes);
    tcase_add_test(t, message_page_bytes);
    tcase_add_test(t, session_page_bytes);
    tcase_add_test(t, context_and_clear);
    tcase_add_test(t, probes);
    suite_add_tcase(s, t);
    return s;
}

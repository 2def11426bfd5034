/*
 * check_service_export.c - import over the fake store (validation as on
 * create and append, all or none when the store fails at each step, the
 * 409 before any write) and export's page source.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "fake_store.h"
#include "json.h"
#include "service_export.h"
#include "service_fixture.h"
#include "suites.h"
#include "sweeper.h"

/* An import input from the session object's and the messages array's
 * text, the way api_export.c maps them. */
static struct import_input
input(const char *session, const char *messages)
{
    const struct json_value *s = service_fixture_json(session),
                            *list = service_fixture_json(messages);
    struct message_input *m;
    struct import_item *v1;
    struct import_input in;

    memset(&in, 0, sizeof(in));
    in.session.session_id = json_get(s, "session_id");
    in.session.f.session_name = json_get(s, "session_name");
    in.session.f.description = json_get(s, "description");
    in.session.f.agent_name = json_get(s, "agent_name");
    in.session.f.agent_instructions = json_get(s, "agent_instructions");
    in.session.f.metadata = json_get(s, "metadata");
    in.session.f.is_active = json_get(s, "is_active");
    in.status = json_get(s, "status");
    m = arena_calloc(&fx.arena, (list->u.a.len + 1) * sizeof(*m));
    v1 = arena_calloc(&fx.arena, (list->u.a.len + 1) * sizeof(*v1));
    for (size_t i = 0; i < list->u.a.len; i++) {
        const struct json_value *it = list->u.a.items[i];

        v1[i].item = json_get(it, "item");
        v1[i].item_id = json_get(it, "item_id");

        m[i].role = json_get(it, "role");
        m[i].content = json_get(it, "content");
        m[i].tool_call_id = json_get(it, "tool_call_id");
        m[i].tool_name = json_get(it, "tool_name");
        m[i].extra_data = json_get(it, "extra_data");
    }
    in.messages = m;
    in.items = v1;
    in.n = list->u.a.len;
    return in;
}

/* n user messages "m0", "m1", ... */
static struct import_input
input_n(const char *session, size_t n)
{
    struct import_input in = input(session, "[]");
    struct message_input *m = arena_calloc(&fx.arena, n * sizeof(*m));
    struct json_value *role = json_new_string(&fx.arena, "user", 4);

    for (size_t i = 0; i < n; i++) {
        const char *c = arena_printf(&fx.arena, "m%zu", i);

        m[i].role = role;
        m[i].content = json_new_string(&fx.arena, c, strlen(c));
    }
    in.messages = m;
    in.items = NULL;
    in.n = n;
    return in;
}

static struct message_page
list_all(const char *user, const struct session *s)
{
    struct message_filter f;
    struct message_page page;
    struct error err = ERROR_INIT;

    service_message_filter_all(&f);
    ck_assert(store_message_list(fx.store, &fx.ctx, user, &s->id, &f, 1000000,
                                 0, &page, &err));
    return page;
}

static const char *const three =
    "[{\"id\":\"x\",\"session_id\":\"old\",\"seq\":7,\"role\":\"system\","
    "\"content\":\"be brief\",\"created_at\":\"2020-01-01T00:00:00.000Z\"},"
    "{\"role\":\"user\",\"content\":\"\",\"tool_call_id\":null},"
    "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"c1\","
    "\"tool_name\":\"calc\",\"extra_data\":{\"a\":[1,{\"b\":null}]}}]";

START_TEST(import_recreates_session_and_messages)
{
    struct import_input in =
        input("{\"session_id\":\"imp\",\"session_name\":\"n\","
              "\"description\":null,\"agent_name\":\"a\","
              "\"agent_instructions\":\"i\",\"metadata\":{\"k\":[1,2]},"
              "\"status\":\"completed\",\"is_active\":false}",
              three);
    struct error err = ERROR_INIT;
    struct message_page page;
    struct session s, got;
    int64_t before = clock_now_ms();

    ck_assert_msg(service_export_import(&fx.svc, &fx.ctx, "u1", &in, &s, &err),
                  "%s", err.message);
    ck_assert_str_eq(s.session_id, "imp");
    ck_assert_str_eq(s.session_name, "n");
    ck_assert_ptr_null(s.description);
    ck_assert_str_eq(s.agent_instructions, "i");
    ck_assert_int_eq(s.status, STATUS_COMPLETED);
    ck_assert_int_eq(s.message_count, 3);
    ck_assert_int_eq(s.last_seq, 3);
    ck_assert_int_eq(s.version, 1);
    ck_assert_int_eq(s.request_count, 0);
    ck_assert_int_ge(s.created_at, before);
    ck_assert_int_eq(s.updated_at, s.created_at);
    ck_assert_uint_eq(fake_store_count(fx.store), 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);

    ck_assert(store_session_get(fx.store, &fx.ctx, "u1", "imp", &got, &err));
    ck_assert(uuid_equal(&got.id, &s.id));
    ck_assert_int_eq(got.message_count, 3);
    page = list_all("u1", &s);
    ck_assert_uint_eq(page.len, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(page.items[i].seq, (int64_t)i + 1);
        ck_assert_str_eq(page.items[i].session_id, "imp");
        ck_assert_int_eq(page.items[i].created_at, s.created_at);
        ck_assert(!uuid_equal(&page.items[i].id, &s.id));
    }
    ck_assert_int_eq(page.items[0].role, ROLE_SYSTEM);
    ck_assert_str_eq(page.items[0].content, "be brief");
    ck_assert_str_eq(page.items[1].content, "");
    ck_assert_ptr_null(page.items[1].tool_call_id);
    ck_assert_ptr_null(page.items[1].extra_data);
    ck_assert_str_eq(page.items[2].tool_call_id, "c1");
    ck_assert_str_eq(page.items[2].tool_name, "calc");
    ck_assert_int_eq(page.items[2].extra_data->type, JSON_OBJECT);
    ck_assert_uint_eq(json_encoded_size(page.items[2].extra_data),
                      strlen("{\"a\":[1,{\"b\":null}]}"));
}
END_TEST

/* A conversation written through /v1 comes back with its items and the
 * ids they had; the message fields may be left to the item. */
START_TEST(import_keeps_v1_items_and_ids)
{
    struct import_input in = input(
        "{\"session_id\":\"conv_1\"}",
        "[{\"role\":\"developer\",\"content\":\"a\\nb\","
        "\"item_id\":\"msg_0123456789abcdef0123456789abcdef\","
        "\"item\":{\"type\":\"message\",\"role\":\"developer\","
        "\"content\":[{\"type\":\"input_text\",\"text\":\"a\"},"
        "{\"type\":\"input_image\",\"image_url\":\"u\"},"
        "{\"type\":\"input_text\",\"text\":\"b\"}]}},"
        "{\"item_id\":\"rs_1\",\"item\":{\"type\":\"reasoning\","
        "\"summary\":[],\"encrypted_content\":\"e\"}},"
        "{\"role\":\"assistant\",\"content\":\"{}\",\"tool_call_id\":\"c\","
        "\"tool_name\":\"f\",\"item_id\":\"fc_1\",\"item\":{\"type\":"
        "\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
        "\"arguments\":\"{}\"}},"
        "{\"role\":\"user\",\"content\":\"plain\",\"item_id\":null,"
        "\"item\":null}]");
    struct error err = ERROR_INIT;
    struct message_page page;
    struct session s;

    ck_assert_msg(service_export_import(&fx.svc, &fx.ctx, "u1", &in, &s, &err),
                  "%s %s", err.param ? err.param : "", err.message);
    page = list_all("u1", &s);
    ck_assert_uint_eq(page.len, 4);
    ck_assert_str_eq(page.items[0].item_id,
                     "msg_0123456789abcdef0123456789abcdef");
    ck_assert_int_eq(page.items[0].role, ROLE_DEVELOPER);
    ck_assert_str_eq(page.items[0].content, "a\nb");
    ck_assert_uint_eq(json_get(page.items[0].item, "content")->u.a.len, 3);
    ck_assert_str_eq(page.items[1].item_id, "rs_1");
    ck_assert_int_eq(page.items[1].role, ROLE_ASSISTANT);
    ck_assert_str_eq(page.items[1].content, "");
    ck_assert_str_eq(json_get(page.items[1].item, "encrypted_content")->u.s.ptr,
                     "e");
    ck_assert_str_eq(page.items[2].tool_call_id, "c");
    ck_assert_str_eq(page.items[2].tool_name, "f");
    ck_assert_str_eq(page.items[2].item_id, "fc_1");
    ck_assert_ptr_null(page.items[3].item);
    ck_assert_ptr_null(page.items[3].item_id);
    /* the items count against the session's bytes as on /v1 */
    ck_assert_int_eq(s.content_bytes, store_message_bytes(&page.items[0]) +
                                          store_message_bytes(&page.items[1]) +
                                          store_message_bytes(&page.items[2]) +
                                          store_message_bytes(&page.items[3]));
    ck_assert_int_gt(store_message_bytes(&page.items[1]), 0);
}
END_TEST

START_TEST(import_status_rules)
{
    struct error err = ERROR_INIT;
    struct import_input in;
    struct session s;
    char uuid[UUID_STR_LEN + 1];

    /* neither: active */
    in = input("{\"session_id\":\"s1\"}", "[]");
    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(s.status, STATUS_ACTIVE);
    ck_assert_int_eq(s.message_count, 0);
    ck_assert_int_eq(s.metadata->type, JSON_OBJECT);
    /* is_active alone, as on create */
    in = input("{\"session_id\":\"s2\",\"is_active\":false}", "[]");
    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(s.status, STATUS_INACTIVE);
    /* an expired session comes back expired */
    in = input("{\"session_id\":\"s3\",\"status\":\"expired\"}", "[]");
    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(s.status, STATUS_EXPIRED);
    /* no session_id: the new UUID, as on create */
    in = input("{}", "[]");
    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    uuid_format(&s.id, uuid);
    ck_assert_str_eq(s.session_id, uuid);
    ck_assert_uint_eq(fake_store_count(fx.store), 4);
}
END_TEST

/* Each bad body is refused with its param before any store call. */
START_TEST(import_validates_before_writing)
{
    static const struct {
        const char *session;
        const char *messages;
        const char *param;
    } bad[] = {
        {"{\"status\":\"bogus\"}", "[]", "session.status"},
        {"{\"status\":1}", "[]", "session.status"},
        {"{\"status\":\"active\",\"is_active\":false}", "[]",
         "session.is_active"},
        {"{\"status\":\"completed\",\"is_active\":true}", "[]",
         "session.is_active"},
        {"{\"is_active\":\"yes\"}", "[]", "session.is_active"},
        {"{\"session_id\":\"stats\"}", "[]", "session.session_id"},
        {"{\"session_id\":\"a b\"}", "[]", "session.session_id"},
        {"{\"session_id\":5}", "[]", "session.session_id"},
        {"{\"session_name\":7}", "[]", "session.session_name"},
        {"{\"metadata\":null}", "[]", "session.metadata"},
        {"{\"metadata\":{\"$where\":1}}", "[]", "session.metadata"},
        {"{\"metadata\":{\"a.b\":1}}", "[]", "session.metadata"},
        {"{}",
         "[{\"role\":\"user\",\"content\":\"ok\"},{\"role\":\"robot\","
         "\"content\":\"x\"}]",
         "messages[1].role"},
        {"{}", "[{\"role\":\"user\"}]", "messages[0].content"},
        {"{}", "[{\"role\":\"user\",\"content\":null}]", "messages[0].content"},
        {"{}", "[{\"role\":\"user\",\"content\":\"x\",\"tool_name\":3}]",
         "messages[0].tool_name"},
        {"{}",
         "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\","
         "\"content\":\"x\"},{\"role\":\"user\",\"content\":\"x\","
         "\"extra_data\":{\"$set\":1}}]",
         "messages[2].extra_data"},
        /* a message's /v1 side, checked as /v1 checks an item */
        {"{}", "[{\"role\":\"user\",\"content\":\"x\",\"item_id\":7}]",
         "messages[0].item_id"},
        {"{}", "[{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"a b\"}]",
         "messages[0].item_id"},
        {"{}", "[{\"role\":\"user\",\"content\":\"x\",\"item\":[]}]",
         "messages[0].item"},
        {"{}",
         "[{\"role\":\"user\",\"content\":\"x\",\"item\":{\"id\":\"m\","
         "\"role\":\"user\",\"content\":\"x\"}}]",
         "messages[0].item.id"},
        {"{}",
         "[{\"role\":\"assistant\",\"content\":\"\",\"item\":{\"type\":"
         "\"reasoning\",\"x\":{\"$set\":1}}}]",
         "messages[0].item"},
        {"{}",
         "[{\"role\":\"assistant\",\"content\":\"\",\"item\":{\"type\":"
         "\"reasoning\",\"a.b\":1}}]",
         "messages[0].item"},
        {"{}",
         "[{\"role\":\"user\",\"content\":\"x\",\"item\":{\"type\":"
         "\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}}]",
         "messages[0].item.call_id"},
        {"{}",
         "[{\"role\":\"user\",\"content\":\"edited\",\"item\":{"
         "\"role\":\"user\",\"content\":\"x\"}}]",
         "messages[0].content"},
        {"{}",
         "[{\"role\":\"system\",\"content\":\"x\",\"item\":{"
         "\"role\":\"user\",\"content\":\"x\"}}]",
         "messages[0].role"},
        {"{}",
         "[{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"a\"},"
         "{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"b\"},"
         "{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"b\"},"
         "{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"a\"}]",
         "messages[2].item_id"},
        /* the id /v1 shows another imported message's first call with */
        {"{}",
         "[{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"x.0\"},"
         "{\"role\":\"assistant\",\"content\":\"\",\"item_id\":\"x\","
         "\"extra_data\":{\"tool_calls\":[{\"id\":\"c\",\"type\":"
         "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
         "\"{}\"}}]}}]",
         "messages[0].item_id"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct import_input in = input(bad[i].session, bad[i].messages);
        struct error err = ERROR_INIT;
        struct session s;

        ck_assert_msg(
            !service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err),
            "case %zu accepted", i);
        ck_assert_int_eq(err.code, ERR_VALIDATION);
        ck_assert_msg(err.param != NULL && strcmp(err.param, bad[i].param) == 0,
                      "case %zu: param %s, want %s", i,
                      err.param ? err.param : "(null)", bad[i].param);
    }
    ck_assert_int_eq(fake_store_ncalls(fx.store), 0);
}
END_TEST

START_TEST(import_limits_messages)
{
    struct import_input in = input("{}", "[]");
    struct error err = ERROR_INIT;
    struct session s;

    in.n = SERVICE_IMPORT_MAX_MESSAGES + 1; /* refused before reading */
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "messages");
    ck_assert_int_eq(fake_store_ncalls(fx.store), 0);
}
END_TEST

START_TEST(import_conflict_writes_nothing)
{
    struct error err = ERROR_INIT;
    struct import_input in = input("{\"session_id\":\"dup\"}", three);
    struct session s, other;

    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &other, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert_str_eq(err.param, "session_id");
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_INSERT), 1);
    ck_assert_uint_eq(fake_store_count(fx.store), 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    /* another user's session of that name is no conflict */
    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u2", &in, &other, &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 2);
}
END_TEST

START_TEST(import_inserts_in_batches)
{
    size_t n = 2 * SERVICE_IMPORT_BATCH + 1;
    struct import_input in = input_n("{\"session_id\":\"big\"}", n);
    struct error err = ERROR_INIT;
    struct message_page page;
    struct session s;

    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_INSERT), 3);
    ck_assert_int_eq(s.message_count, (int64_t)n);
    page = list_all("u", &s);
    ck_assert_uint_eq(page.len, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(page.items[i].seq, (int64_t)i + 1);
        ck_assert_str_eq(page.items[i].content,
                         arena_printf(&fx.arena, "m%zu", i));
    }
}
END_TEST

/* An import yields: after each batch but the last it pauses
 * SERVICE_IMPORT_YIELD times as long as the batch took (here each store
 * call takes 40 ms of a fake clock). */
START_TEST(import_yields_between_batches)
{
    struct fake_clock clock;
    struct retry_policy policy;
    struct store *paced;
    struct service svc;
    size_t n = 3 * SERVICE_IMPORT_BATCH + 7;
    struct import_input in = input_n("{\"session_id\":\"paced\"}", n);
    struct error err = ERROR_INIT;
    struct session s;

    memset(&clock, 0, sizeof(clock));
    clock.op_ms = 40;
    fake_clock_policy(&policy, &clock, 3, 100, 1000);
    paced = fake_store_new(&policy, &clock);
    svc = fx.svc;
    svc.store = paced;
    ck_assert(service_export_import(&svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(fake_store_calls(paced, FAKE_MESSAGE_INSERT), 4);
    ck_assert_int_eq(clock.nsleeps, 3);
    for (int i = 0; i < clock.nsleeps; i++)
        ck_assert_int_eq(clock.sleeps[i], 40 * SERVICE_IMPORT_YIELD);
    store_free(paced);
}
END_TEST

START_TEST(import_undoes_a_failed_message_insert)
{
    struct import_input in = input_n("{\"session_id\":\"half\"}", 700);
    struct error err = ERROR_INIT;
    struct session s;

    /* the first batch stores part of itself, then the database goes */
    fake_store_fail_insert(fx.store, SERVICE_IMPORT_BATCH / 2, 0,
                           ERR_UNAVAILABLE, RETRY_NEVER);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_INSERT), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_DELETE_IDS), 1);
}
END_TEST

START_TEST(import_undoes_when_the_session_insert_fails)
{
    struct import_input in = input_n("{\"session_id\":\"late\"}", 600);
    struct error err = ERROR_INIT;
    struct session s;

    /* the session document's reply is lost after it was written: the
     * document must go too, not stay with its messages gone */
    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_UNAVAILABLE,
                    RETRY_NEVER, true);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_DELETE), 1);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_DELETE_IDS),
                     (600 + SERVICE_IMPORT_BATCH - 1) / SERVICE_IMPORT_BATCH);

    /* nothing applied: the same, and the name is free afterwards */
    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_UNAVAILABLE,
                    RETRY_NEVER, false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_uint_eq(fake_store_message_count(fx.store), 600);
}
END_TEST

START_TEST(import_race_on_the_name_is_409_and_undone)
{
    struct import_input in = input("{\"session_id\":\"race\"}", three);
    struct error err = ERROR_INIT;
    struct session s;

    /* the name was free when asked, taken by the time the document went
     * in (a concurrent create): 409, messages removed, no session
     * deleted (it is the other request's) */
    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_DUPLICATE,
                    RETRY_NEVER, false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert_str_eq(err.param, "session_id");
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_DELETE), 0);
}
END_TEST

START_TEST(import_store_failure_on_the_name_check)
{
    struct import_input in = input("{\"session_id\":\"x\"}", three);
    struct error err = ERROR_INIT;
    struct session s;

    fake_store_fail(fx.store, FAKE_SESSION_GET, 1, ERR_UNAVAILABLE, RETRY_NEVER,
                    false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_INSERT), 0);
}
END_TEST

/* A whole import puts its tombstone before its first batch (and again
 * when half a request deadline has passed) and removes it at the end; an
 * undone one removes it too. */
START_TEST(import_leaves_no_tombstone)
{
    struct import_input in = input_n("{\"session_id\":\"t\"}", 600);
    struct import_input in2 = input("{\"session_id\":\"t2\"}", three);
    struct error err = ERROR_INIT;
    struct session s;

    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    ck_assert_int_ge(fake_store_calls(fx.store, FAKE_TOMBSTONE_PUT), 1);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_TOMBSTONE_DELETE), 1);
    ck_assert(!fake_store_tombstone(fx.store, "u", &s.id, NULL));

    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_DUPLICATE,
                    RETRY_NEVER, false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in2, &s, &err));
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 600);

    /* No tombstone, no messages written. */
    fake_store_fail(fx.store, FAKE_TOMBSTONE_PUT, 3, ERR_UNAVAILABLE,
                    RETRY_SAFE, false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in2, &s, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 600);
    /* the 600 in their batches, the three of the second import: no more */
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_INSERT),
                     (600 + SERVICE_IMPORT_BATCH - 1) / SERVICE_IMPORT_BATCH +
                         1);
}
END_TEST

/* An import that dies between its messages and its session document (here:
 * the document's insert fails and so does every try of the undo) leaves
 * orphans behind its tombstone; a sweep past the cutoff removes them. */
START_TEST(import_cut_short_is_cleaned_by_the_sweeper)
{
    struct import_input in = input_n("{\"session_id\":\"crash\"}", 600);
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct session s;
    int64_t before = clock_now_ms(), after;

    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_UNAVAILABLE,
                    RETRY_NEVER, false);
    fake_store_fail(fx.store, FAKE_MESSAGE_DELETE_IDS, 3, ERR_UNAVAILABLE,
                    RETRY_SAFE, false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    after = clock_now_ms();
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 600);
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 1);

    /* Not while the import might still be running. */
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          before + sweeper_tombstone_age(&fx.cfg), &c, &err));
    ck_assert_int_eq(c.deleted_messages, 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 600);
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 1);

    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          after + sweeper_tombstone_age(&fx.cfg) + 1, &c,
                          &err));
    ck_assert_int_eq(c.deleted_messages, 600);
    ck_assert_int_eq(c.deleted_sessions, 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 0);
}
END_TEST

START_TEST(export_pages_read_after_the_cursor)
{
    struct import_input in = input_n("{\"session_id\":\"p\"}", 5);
    struct service_export_pages pages;
    struct error err = ERROR_INIT;
    struct message_page page;
    struct session s;
    int64_t before;

    ck_assert(service_export_import(&fx.svc, &fx.ctx, "u", &in, &s, &err));
    /* the request's own deadline is long gone: pages have their own */
    fx.ctx.deadline_ms = 0;
    service_export_pages_init(&pages, &fx.svc, "u", &s, INT64_MAX);
    before = clock_mono_ms();
    ck_assert(service_export_pages_next(&pages, 0, 2, &page, &err));
    ck_assert_int_ge(pages.ctx.deadline_ms,
                     before + fx.cfg.request_deadline_ms);
    ck_assert_ptr_eq(pages.ctx.arena, &pages.arena);
    ck_assert_uint_eq(page.len, 2);
    ck_assert_int_eq(page.total, -1);
    ck_assert_int_eq(page.items[0].seq, 1);
    ck_assert_int_eq(page.items[1].seq, 2);
    ck_assert(service_export_pages_next(&pages, 2, 2, &page, &err));
    ck_assert_int_eq(page.items[0].seq, 3);
    ck_assert_str_eq(page.items[1].content, "m3");
    ck_assert(service_export_pages_next(&pages, 4, 2, &page, &err));
    ck_assert_uint_eq(page.len, 1);
    ck_assert_int_eq(page.items[0].seq, 5);
    /* another user's pages of the same session are empty */
    service_export_pages_release(&pages);
    service_export_pages_init(&pages, &fx.svc, "intruder", &s, INT64_MAX);
    ck_assert(service_export_pages_next(&pages, 0, 10, &page, &err));
    ck_assert_uint_eq(page.len, 0);
    /* a failed read is the store's error */
    fake_store_fail(fx.store, FAKE_MESSAGE_LIST, 1, ERR_UNAVAILABLE,
                    RETRY_NEVER, false);
    ck_assert(!service_export_pages_next(&pages, 0, 10, &page, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    service_export_pages_release(&pages);
}
END_TEST

Suite *
service_export_suite(void)
{
    Suite *s = suite_create("service_export");
    TCase *t = tcase_create("import");

    tcase_add_checked_fixture(t, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(t, import_recreates_session_and_messages);
    tcase_add_test(t, import_keeps_v1_items_and_ids);
    tcase_add_test(t, import_status_rules);
    tcase_add_test(t, import_validates_before_writing);
    tcase_add_test(t, import_limits_messages);
    tcase_add_test(t, import_conflict_writes_nothing);
    tcase_add_test(t, import_inserts_in_batches);
    tcase_add_test(t, import_undoes_a_failed_message_insert);
    tcase_add_test(t, import_yields_between_batches);
    tcase_add_test(t, import_undoes_when_the_session_insert_fails);
    tcase_add_test(t, import_race_on_the_name_is_409_and_undone);
    tcase_add_test(t, import_store_failure_on_the_name_check);
    tcase_add_test(t, import_leaves_no_tombstone);
    tcase_add_test(t, import_cut_short_is_cleaned_by_the_sweeper);
    suite_add_tcase(s, t);

    t = tcase_create("export");
    tcase_add_checked_fixture(t, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(t, export_pages_read_after_the_cursor);
    suite_add_tcase(s, t);
    return s;
}

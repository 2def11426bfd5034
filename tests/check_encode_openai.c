/*
 * check_encode_openai.c - the /v1 bodies, byte for byte: the
 * conversation (Unix seconds, metadata values as strings), an item kept
 * on its message (what was sent, its id, type, parts and status as
 * service_openai.h says, nothing else), a message without an item, the
 * list envelope, and the OpenAI error body.
 */
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "encode_openai.h"
#include "error.h"
#include "http.h"
#include "json.h"
#include "role.h"
#include "suites.h"

static struct arena arena;
static struct buf b;

static void
setup(void)
{
    arena_init(&arena, 0);
    buf_init(&b);
}

static void
teardown(void)
{
    buf_release(&b);
    arena_release(&arena);
}

static const struct json_value *
J(const char *text)
{
    struct error err = ERROR_INIT;
    const struct json_value *v =
        json_parse(&arena, text, strlen(text), 32, &err);

    ck_assert_msg(v != NULL, "%s: %s", text, err.message);
    return v;
}

static const char *
text_of(void)
{
    buf_addch(&b, '\0');
    b.len--;
    return b.data;
}

/* A message whose UUID is 00 11 22 ... ff. */
static struct message
msg(enum message_role role, const char *content, const char *item)
{
    struct message m;

    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 16; i++)
        m.id.b[i] = (uint8_t)(0x11 * i);
    m.role = role;
    m.content = content;
    m.item = item != NULL ? J(item) : NULL;
    return m;
}

#define HEX "00112233445566778899aabbccddeeff"

static void
expect_item(const struct message *m, const char *want)
{
    buf_reset(&b);
    encode_openai_item(&b, m);
    ck_assert_str_eq(text_of(), want);
}

START_TEST(conversation_object)
{
    struct session s;

    memset(&s, 0, sizeof(s));
    s.session_id = "native-1";
    s.created_at = 1741900000999; /* floored to the second */
    s.metadata = J("{\"s\":\"v\",\"n\":3,\"o\":{\"a\":[1,\"x\"]},\"b\":true,"
                   "\"z\":null,\"d\":1.5}");
    encode_openai_conversation(&b, &s);
    ck_assert_str_eq(text_of(),
                     "{\"id\":\"native-1\",\"object\":\"conversation\","
                     "\"created_at\":1741900000,\"metadata\":{\"s\":\"v\","
                     "\"n\":\"3\",\"o\":\"{\\\"a\\\":[1,\\\"x\\\"]}\","
                     "\"b\":\"true\",\"z\":\"null\",\"d\":\"1.5\"}}");
    buf_reset(&b);
    s.metadata = J("{}");
    encode_openai_conversation(&b, &s);
    ck_assert_ptr_nonnull(strstr(text_of(), "\"metadata\":{}}"));

    buf_reset(&b);
    encode_openai_deleted(&b, "conv_1");
    ck_assert_str_eq(text_of(), "{\"id\":\"conv_1\",\"object\":"
                                "\"conversation.deleted\",\"deleted\":true}");
}
END_TEST

START_TEST(kept_items_are_what_was_sent)
{
    struct message m;

    /* string content: one part; type and status filled in */
    m = msg(ROLE_USER, "hi", "{\"role\":\"user\",\"content\":\"hi\"}");
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"role\":\"user\",\"content\":[{\"type\":\"input_text\","
                    "\"text\":\"hi\"}],\"status\":\"completed\"}");
    m = msg(ROLE_ASSISTANT, "ok",
            "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"ok\"}");
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"role\":\"assistant\",\"content\":[{\"type\":"
                    "\"output_text\",\"text\":\"ok\",\"annotations\":[]}],"
                    "\"status\":\"completed\"}");
    /* parts verbatim, the client's status and fields kept */
    m = msg(ROLE_ASSISTANT, "a",
            "{\"type\":\"message\",\"role\":\"assistant\",\"status\":"
            "\"incomplete\",\"content\":[{\"type\":\"output_text\",\"text\":"
            "\"a\",\"annotations\":[],\"logprobs\":[]}],\"phase\":null}");
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"role\":\"assistant\",\"status\":\"incomplete\","
                    "\"content\":[{\"type\":\"output_text\",\"text\":\"a\","
                    "\"annotations\":[],\"logprobs\":[]}],\"phase\":null}");
    /* a call and its output */
    m = msg(ROLE_ASSISTANT, "{}",
            "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
            "\"arguments\":\"{}\"}");
    m.tool_call_id = "c";
    expect_item(&m, "{\"id\":\"fc_" HEX "\",\"type\":\"function_call\","
                    "\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"{}\","
                    "\"status\":\"completed\"}");
    m = msg(ROLE_TOOL, "x",
            "{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":"
            "[{\"type\":\"input_text\",\"text\":\"x\"}]}");
    expect_item(&m, "{\"id\":\"fco_" HEX "\",\"type\":\"function_call_output\","
                    "\"call_id\":\"c\",\"output\":[{\"type\":\"input_text\","
                    "\"text\":\"x\"}],\"status\":\"completed\"}");
    /* a status of null is none */
    m = msg(ROLE_USER, "x",
            "{\"role\":\"user\",\"status\":null,\"content\":[]}");
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"role\":\"user\",\"content\":[],\"status\":"
                    "\"completed\"}");
    /* anything else exactly as given: no status added */
    m = msg(ROLE_ASSISTANT, "",
            "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":"
            "\"e\"}");
    m.item_id = "rs_1";
    expect_item(&m, "{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[],"
                    "\"encrypted_content\":\"e\"}");
}
END_TEST

START_TEST(native_messages_as_items)
{
    struct message m;

    m = msg(ROLE_SYSTEM, "Be kind.", NULL);
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"status\":\"completed\",\"role\":\"system\","
                    "\"content\":[{\"type\":\"input_text\",\"text\":"
                    "\"Be kind.\"}]}");
    m = msg(ROLE_DEVELOPER, "d", NULL);
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"status\":\"completed\",\"role\":\"developer\","
                    "\"content\":[{\"type\":\"input_text\",\"text\":\"d\"}]}");
    m = msg(ROLE_ASSISTANT, "Hi!", NULL);
    expect_item(&m, "{\"id\":\"msg_" HEX "\",\"type\":\"message\","
                    "\"status\":\"completed\",\"role\":\"assistant\","
                    "\"content\":[{\"type\":\"output_text\",\"text\":\"Hi!\","
                    "\"annotations\":[]}]}");
    m = msg(ROLE_ASSISTANT, "{\"a\":1}", NULL);
    m.tool_call_id = "call_1";
    m.tool_name = "f";
    expect_item(&m, "{\"id\":\"fc_" HEX "\",\"type\":\"function_call\","
                    "\"status\":\"completed\",\"call_id\":\"call_1\","
                    "\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}");
    m.tool_name = NULL;
    expect_item(&m, "{\"id\":\"fc_" HEX "\",\"type\":\"function_call\","
                    "\"status\":\"completed\",\"call_id\":\"call_1\","
                    "\"name\":\"\",\"arguments\":\"{\\\"a\\\":1}\"}");
    m = msg(ROLE_TOOL, "21", NULL);
    m.tool_call_id = "call_1";
    m.tool_name = "f";
    expect_item(&m, "{\"id\":\"fco_" HEX "\",\"type\":\"function_call_output\","
                    "\"status\":\"completed\",\"call_id\":\"call_1\","
                    "\"output\":\"21\",\"name\":\"f\"}");
    m = msg(ROLE_TOOL, "21", NULL);
    expect_item(&m, "{\"id\":\"fco_" HEX "\",\"type\":\"function_call_output\","
                    "\"status\":\"completed\",\"output\":\"21\"}");
    /* a given id outlives its item (a content PATCH drops the item) */
    m = msg(ROLE_USER, "u", NULL);
    m.item_id = "msg_mine";
    expect_item(&m, "{\"id\":\"msg_mine\",\"type\":\"message\","
                    "\"status\":\"completed\",\"role\":\"user\",\"content\":"
                    "[{\"type\":\"input_text\",\"text\":\"u\"}]}");
}
END_TEST

START_TEST(item_list)
{
    struct message m[2];

    encode_openai_item_list(&b, NULL, 0, false, 0);
    ck_assert_str_eq(text_of(), "{\"object\":\"list\",\"data\":[],"
                                "\"first_id\":null,\"last_id\":null,"
                                "\"has_more\":false}");
    m[0] = msg(ROLE_USER, "a", NULL);
    m[1] = msg(ROLE_USER, "b", NULL);
    m[1].item_id = "last";
    buf_reset(&b);
    encode_openai_item_list(&b, m, 2, true, 0);
    ck_assert_ptr_nonnull(strstr(text_of(), "],\"first_id\":\"msg_" HEX
                                            "\",\"last_id\":\"last\","
                                            "\"has_more\":true}"));
    ck_assert_ptr_nonnull(J(text_of()));
}
END_TEST

/* A page ends before the item that would take its body past the bound,
 * says has_more, and its last_id is the last item it holds; the first
 * item is always there. */
START_TEST(item_list_within_bytes)
{
    struct message m[3];
    char *big = arena_alloc(&arena, 2001);
    const struct json_value *v;

    memset(big, 'x', 2000);
    big[2000] = '\0';
    for (int i = 0; i < 3; i++) {
        m[i] = msg(ROLE_USER, big, NULL);
        m[i].id.b[15] = (uint8_t)i;
    }
    encode_openai_item_list(&b, m, 3, false, 5000);
    v = J(text_of());
    ck_assert_uint_eq(json_get(v, "data")->u.a.len, 2);
    ck_assert(json_get(v, "has_more")->u.b);
    ck_assert_str_eq(json_get(v, "last_id")->u.s.ptr,
                     "msg_00112233445566778899aabbccddee01");
    ck_assert_uint_le(b.len, 5000);
    buf_reset(&b);
    encode_openai_item_list(&b, m, 3, false, 100);
    v = J(text_of());
    ck_assert_uint_eq(json_get(v, "data")->u.a.len, 1);
    ck_assert(json_get(v, "has_more")->u.b);
    buf_reset(&b);
    encode_openai_item_list(&b, m, 3, false, 0);
    v = J(text_of());
    ck_assert_uint_eq(json_get(v, "data")->u.a.len, 3);
    ck_assert(!json_get(v, "has_more")->u.b);
}
END_TEST

START_TEST(openai_error_body)
{
    struct response r;
    struct error err = ERROR_INIT;
    static const struct {
        enum error_code code;
        const char *type;
    } types[] = {
        {ERR_VALIDATION, "invalid_request_error"},
        {ERR_UNKNOWN_FIELD, "invalid_request_error"},
        {ERR_INVALID_JSON, "invalid_request_error"},
        {ERR_UNAUTHORIZED, "invalid_request_error"},
        {ERR_FORBIDDEN, "invalid_request_error"},
        {ERR_NOT_FOUND, "invalid_request_error"},
        {ERR_METHOD_NOT_ALLOWED, "invalid_request_error"},
        {ERR_CONFLICT, "invalid_request_error"},
        {ERR_PAYLOAD_TOO_LARGE, "invalid_request_error"},
        {ERR_UNSUPPORTED_MEDIA_TYPE, "invalid_request_error"},
        {ERR_UNAVAILABLE, "server_error"},
        {ERR_INTERNAL, "server_error"},
        {ERR_UPSTREAM, "server_error"},
        {ERR_UPSTREAM_TIMEOUT, "server_error"},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        ck_assert_str_eq(error_openai_type(types[i].code), types[i].type);

    response_init(&r);
    error_set(&err, ERR_NOT_FOUND, "after", "item with id '%s' not found",
              "x\"y");
    response_error_openai(&r, &err);
    ck_assert_int_eq(r.status, 404);
    buf_addch(&r.body, '\0');
    ck_assert_str_eq(r.body.data,
                     "{\"error\":{\"message\":\"item with id 'x\\\"y' not "
                     "found\",\"type\":\"invalid_request_error\",\"param\":"
                     "\"after\",\"code\":\"not_found\"}}");
    response_release(&r);
}
END_TEST

Suite *
encode_openai_suite(void)
{
    Suite *s = suite_create("encode_openai");
    TCase *tc = tcase_create("bodies");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, conversation_object);
    tcase_add_test(tc, kept_items_are_what_was_sent);
    tcase_add_test(tc, native_messages_as_items);
    tcase_add_test(tc, item_list);
    tcase_add_test(tc, item_list_within_bytes);
    tcase_add_test(tc, openai_error_body);
    suite_add_tcase(s, tc);
    return s;
}

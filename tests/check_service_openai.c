/*
 * check_service_openai.c - the /v1 mapping (service_openai.h) over the
 * fake store: how an item becomes a message, the limits and the params
 * errors name, ids derived and given, paging with `after` both ways,
 * all or none, and the conversation as a session.
 */
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "encode_openai.h"
#include "fake_store.h"
#include "json.h"
#include "role.h"
#include "service_fixture.h"
#include "service_openai.h"
#include "service_session.h"
#include "suites.h"

#define USER "alice"

static const struct json_value *
J(const char *text)
{
    return service_fixture_json(text);
}

/* One item decoded as item 3 of a request. */
static bool
decode(const char *item, struct message_input *in, struct error *err)
{
    return service_openai_decode_item(&fx.cfg, &fx.arena, 3, J(item), in, err);
}

static void
expect_refused(const char *item, const char *param)
{
    struct message_input in;
    struct error err = ERROR_INIT;

    ck_assert_msg(!decode(item, &in, &err), "accepted %s", item);
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_msg(err.param != NULL && strcmp(err.param, param) == 0,
                  "%s: param %s, want %s (%s)", item,
                  err.param ? err.param : "null", param, err.message);
}

static const char *
str_of(const struct json_value *v)
{
    return v != NULL ? v->u.s.ptr : NULL;
}

/* The encoded item, for comparing with what a test expects. */
static const char *
item_json(const struct message *m)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    encode_openai_item(&b, m);
    out = arena_strndup(&fx.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* A conversation with the given items (a JSON array, or NULL). */
static struct session
conv(const char *items)
{
    struct error err = ERROR_INIT;
    struct session s;

    ck_assert_msg(service_openai_create(&fx.svc, &fx.ctx, USER,
                                        items ? J(items) : NULL, NULL, &s,
                                        &err),
                  "%s", err.message);
    return s;
}

/* --- items into messages ------------------------------------------------ */

START_TEST(message_items_become_messages)
{
    struct message_input in;
    struct error err = ERROR_INIT;

    /* No type: a message, by its role; string content as it is. */
    ck_assert(decode("{\"role\":\"developer\",\"content\":\"Be brief.\"}", &in,
                     &err));
    ck_assert_str_eq(str_of(in.role), "developer");
    ck_assert_str_eq(str_of(in.content), "Be brief.");
    ck_assert_ptr_null(in.tool_call_id);
    ck_assert_ptr_null(in.item_id);
    ck_assert_ptr_null(json_get(in.item, "id"));
    ck_assert_str_eq(str_of(json_get(in.item, "content")), "Be brief.");

    /* Parts: their text joined by a newline, a refusal's too, an image
     * adds nothing; the item is kept whole. */
    ck_assert(decode("{\"type\":\"message\",\"role\":\"assistant\","
                     "\"content\":[{\"type\":\"output_text\",\"text\":\"a\","
                     "\"annotations\":[]},{\"type\":\"input_image\","
                     "\"image_url\":\"https://x/y.png\"},{\"type\":"
                     "\"refusal\",\"refusal\":\"no\"}],\"phase\":null}",
                     &in, &err));
    ck_assert_str_eq(str_of(in.role), "assistant");
    ck_assert_str_eq(str_of(in.content), "a\nno");
    ck_assert_uint_eq(in.item->u.o.len, 4);
    ck_assert_ptr_nonnull(json_get(in.item, "phase"));
}
END_TEST

START_TEST(calls_and_outputs_become_tool_messages)
{
    struct message_input in;
    struct error err = ERROR_INIT;

    ck_assert(decode("{\"type\":\"function_call\",\"call_id\":\"call_1\","
                     "\"name\":\"get_weather\",\"arguments\":\"{}\","
                     "\"status\":\"completed\"}",
                     &in, &err));
    ck_assert_str_eq(str_of(in.role), "assistant");
    ck_assert_str_eq(str_of(in.tool_call_id), "call_1");
    ck_assert_str_eq(str_of(in.tool_name), "get_weather");
    ck_assert_str_eq(str_of(in.content), "{}");

    ck_assert(decode("{\"type\":\"function_call_output\",\"call_id\":\"c\","
                     "\"output\":[{\"type\":\"input_text\",\"text\":\"21\"},"
                     "{\"type\":\"input_text\",\"text\":\"C\"}]}",
                     &in, &err));
    ck_assert_str_eq(str_of(in.role), "tool");
    ck_assert_str_eq(str_of(in.tool_call_id), "c");
    ck_assert_ptr_null(in.tool_name); /* none given: none kept */
    ck_assert_str_eq(str_of(in.content), "21\nC");

    /* call_id is optional on an output */
    ck_assert(decode("{\"type\":\"function_call_output\",\"output\":\"x\"}",
                     &in, &err));
    ck_assert_ptr_null(in.tool_call_id);
}
END_TEST

START_TEST(other_items_are_kept_with_their_id)
{
    struct message_input in;
    struct error err = ERROR_INIT;

    ck_assert(decode("{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{"
                     "\"type\":\"summary_text\",\"text\":\"t\"}],"
                     "\"encrypted_content\":\"gAAA\"}",
                     &in, &err));
    ck_assert_str_eq(in.item_id, "rs_1");
    ck_assert_str_eq(str_of(in.role), "assistant");
    ck_assert_str_eq(str_of(in.content), ""); /* not read */
    ck_assert_ptr_null(json_get(in.item, "id"));
    ck_assert_uint_eq(in.item->u.o.len, 3);
    /* an id of null is no id */
    ck_assert(decode("{\"type\":\"web_search_call\",\"id\":null}", &in, &err));
    ck_assert_ptr_null(in.item_id);
}
END_TEST

START_TEST(bad_items_name_the_member)
{
    expect_refused("[1]", "items[3]");
    expect_refused("{\"content\":\"x\"}", "items[3].type");
    expect_refused(
        "{\"type\":\"message\",\"role\":\"wizard\",\"content\":\"x\"}",
        "items[3].role");
    expect_refused("{\"type\":\"message\",\"role\":\"tool\",\"content\":\"x\"}",
                   "items[3].role");
    expect_refused("{\"type\":\"message\",\"role\":\"user\"}",
                   "items[3].content");
    expect_refused("{\"role\":\"user\",\"content\":3}", "items[3].content");
    expect_refused("{\"role\":\"user\",\"content\":[\"x\"]}",
                   "items[3].content[0]");
    expect_refused("{\"role\":\"user\",\"content\":\"x\",\"status\":\"done\"}",
                   "items[3].status");
    expect_refused(
        "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\"}",
        "items[3].arguments");
    expect_refused("{\"type\":\"function_call\",\"name\":\"f\","
                   "\"arguments\":\"{}\"}",
                   "items[3].call_id");
    expect_refused("{\"type\":\"function_call\",\"call_id\":\"c\","
                   "\"arguments\":\"{}\"}",
                   "items[3].name");
    expect_refused("{\"type\":\"function_call_output\",\"call_id\":\"c\"}",
                   "items[3].output");
    expect_refused("{\"type\":\"function_call_output\",\"output\":\"x\","
                   "\"name\":5}",
                   "items[3].name");
    expect_refused("{\"type\":5}", "items[3].type");
    expect_refused("{\"type\":\"reasoning\",\"id\":\"a/b\"}", "items[3].id");
    expect_refused("{\"type\":\"reasoning\",\"id\":7}", "items[3].id");
    /* MongoDB keeps the item as a document: no operator-like or dotted
     * keys anywhere in it */
    expect_refused("{\"type\":\"x\",\"a\":{\"$ne\":1}}", "items[3]");
    expect_refused("{\"type\":\"x\",\"a.b\":1}", "items[3]");
}
END_TEST

START_TEST(item_limits)
{
    struct message_input in;
    struct error err = ERROR_INIT;
    size_t text = (size_t)fx.cfg.max_content_bytes;
    size_t blob = (size_t)fx.cfg.max_metadata_bytes;
    char *big = arena_alloc(&fx.arena, text + blob + 200);
    int n;

    /* the text at most max_content_bytes */
    n = snprintf(big, text + blob + 200, "{\"role\":\"user\",\"content\":\"");
    memset(big + n, 'a', text);
    memcpy(big + n + text, "\"}", 3);
    ck_assert(decode(big, &in, &err));
    memcpy(big + n + text, "a\"}", 4);
    expect_refused(big, "items[3].content");

    /* the whole item at most text + blob bytes encoded: here the
     * item's opaque data makes it too large, its text is small */
    n = snprintf(big, text + blob + 200, "{\"type\":\"reasoning\",\"e\":\"");
    memset(big + n, 'b', text + blob - (size_t)n - 2);
    memcpy(big + text + blob - 2, "\"}", 3);
    ck_assert_msg(decode(big, &in, &err), "%s", err.message);
    memcpy(big + text + blob - 2, "b\"}", 4);
    expect_refused(big, "items[3]");

    /* call ids and names at most max_name_chars */
    n = snprintf(big, 600,
                 "{\"type\":\"function_call\",\"arguments\":\"\","
                 "\"name\":\"f\",\"call_id\":\"%0*d\"}",
                 fx.cfg.max_name_chars + 1, 0);
    ck_assert_int_gt(n, 0);
    expect_refused(big, "items[3].call_id");
}
END_TEST

/* --- ids ------------------------------------------------------------------ */

START_TEST(ids_are_derived_by_kind_or_given)
{
    char buf[OPENAI_ITEM_ID_MAX + 1];
    struct message m;

    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 16; i++)
        m.id.b[i] = (uint8_t)(0x10 * (i % 16) + i);
    m.content = "";
    m.role = ROLE_USER;
    ck_assert_str_eq(service_openai_item_id(&m, buf),
                     "msg_00112233445566778899aabbccddeeff");
    m.role = ROLE_ASSISTANT;
    m.tool_call_id = "c";
    ck_assert_int_eq(service_openai_kind(&m), OPENAI_FUNCTION_CALL);
    ck_assert_str_eq(service_openai_item_id(&m, buf),
                     "fc_00112233445566778899aabbccddeeff");
    m.role = ROLE_TOOL;
    ck_assert_str_eq(service_openai_item_id(&m, buf),
                     "fco_00112233445566778899aabbccddeeff");
    /* the item's type decides when there is one */
    m.item = J("{\"type\":\"reasoning\"}");
    ck_assert_str_eq(service_openai_item_id(&m, buf),
                     "item_00112233445566778899aabbccddeeff");
    m.item = J("{\"role\":\"user\",\"content\":\"x\"}");
    ck_assert_str_eq(service_openai_item_id(&m, buf),
                     "msg_00112233445566778899aabbccddeeff");
    m.item_id = "rs_given";
    ck_assert_str_eq(service_openai_item_id(&m, buf), "rs_given");
}
END_TEST

/* --- conversations ---------------------------------------------------------
 */

START_TEST(create_makes_a_session_with_its_items)
{
    struct error err = ERROR_INIT;
    struct openai_page page;
    struct session s, got;
    bool more;

    ck_assert(service_openai_create(
        &fx.svc, &fx.ctx, USER,
        J("[{\"role\":\"user\",\"content\":\"hi\"},{\"type\":\"reasoning\","
          "\"id\":\"rs_9\"}]"),
        J("{\"topic\":\"t\"}"), &s, &err));
    ck_assert_uint_eq(strlen(s.session_id), 5 + 32);
    ck_assert_int_eq(strncmp(s.session_id, "conv_", 5), 0);
    ck_assert_str_eq(str_of(json_get(s.metadata, "topic")), "t");
    ck_assert(
        service_session_get(&fx.svc, &fx.ctx, USER, s.session_id, &got, &err));
    ck_assert_int_eq(got.message_count, 2);
    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, 20, false, &page, &more, &err));
    ck_assert_uint_eq(page.len, 2);
    ck_assert(!more);
    ck_assert_str_eq(page.items[1].m->item_id, "rs_9");
    ck_assert_str_eq(item_json(page.items[1].m),
                     "{\"id\":\"rs_9\",\"type\":\"reasoning\"}");

    /* Two creates, two conversations. */
    ck_assert_str_ne(conv(NULL).session_id, conv(NULL).session_id);
}
END_TEST

START_TEST(create_is_all_or_none)
{
    struct error err = ERROR_INIT;
    struct session s;

    /* A bad item: nothing is made. */
    ck_assert(!service_openai_create(
        &fx.svc, &fx.ctx, USER,
        J("[{\"role\":\"user\",\"content\":\"ok\"},{\"role\":\"x\"}]"), NULL,
        &s, &err));
    ck_assert_str_eq(err.param, "items[1].role");
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    /* Ids repeating within the request. */
    ck_assert(!service_openai_create(
        &fx.svc, &fx.ctx, USER,
        J("[{\"type\":\"r\",\"id\":\"a\"},{\"type\":\"r\",\"id\":\"a\"}]"),
        NULL, &s, &err));
    ck_assert_str_eq(err.param, "items[1].id");
    /* Bad metadata: nothing either. */
    ck_assert(!service_openai_create(&fx.svc, &fx.ctx, USER, NULL,
                                     J("{\"k\":1}"), &s, &err));
    ck_assert_str_eq(err.param, "metadata");
    ck_assert_uint_eq(fake_store_count(fx.store), 0);

    /* The items fail to store: the session made for them goes again. */
    fake_store_fail(fx.store, FAKE_MESSAGE_INSERT, 1, ERR_INTERNAL, RETRY_NEVER,
                    false);
    ck_assert(!service_openai_create(&fx.svc, &fx.ctx, USER,
                                     J("[{\"role\":\"user\",\"content\":\"x\"}"
                                       "]"),
                                     NULL, &s, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
}
END_TEST

START_TEST(metadata_follows_openai_limits)
{
    struct error err = ERROR_INIT;
    struct session s = conv(NULL), out;
    char text[2048];
    size_t n = 0;

    /* 16 keys of 64 characters with values of 512: fine; one more of
     * each is not.  Characters, not bytes: "é" is one. */
    n += (size_t)snprintf(text + n, sizeof(text) - n, "{");
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"k%02d\":\"v\"",
                              i ? "," : "", i);
    snprintf(text + n, sizeof(text) - n, "}");
    ck_assert(service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                    J(text), &out, &err));
    ck_assert_uint_eq(out.metadata->u.o.len, 16);
    ck_assert_int_eq(out.version, s.version + 1);
    text[n] = '\0';
    snprintf(text + n, sizeof(text) - n, ",\"k16\":\"v\"}");
    ck_assert(!service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                     J(text), &out, &err));
    ck_assert_str_eq(err.param, "metadata");

    /* 64 characters of two bytes each: fine; 65: not */
    n = (size_t)snprintf(text, sizeof(text), "{\"");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "\xc3\xa9");
    snprintf(text + n, sizeof(text) - n, "\":\"v\"}");
    ck_assert(service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                    J(text), &out, &err));
    snprintf(text + n, sizeof(text) - n, "\xc3\xa9\":\"v\"}");
    ck_assert(!service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                     J(text), &out, &err));
    ck_assert_str_eq(err.param, "metadata");
    ck_assert(!service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                     J("{\"k\":null}"), &out, &err));
    ck_assert(!service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                     J("[]"), &out, &err));
    ck_assert(!service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id, NULL,
                                     &out, &err));
    ck_assert_str_eq(err.param, "metadata");

    /* An update replaces (OpenAI's "set"); null clears. */
    ck_assert(service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                    J("{\"a\":\"1\"}"), &out, &err));
    ck_assert_uint_eq(out.metadata->u.o.len, 1);
    ck_assert(service_openai_update(&fx.svc, &fx.ctx, USER, s.session_id,
                                    J("null"), &out, &err));
    ck_assert_uint_eq(out.metadata->u.o.len, 0);
}
END_TEST

START_TEST(not_found_is_openai_s_words)
{
    struct error err = ERROR_INIT;
    struct session s;

    ck_assert(
        !service_openai_get(&fx.svc, &fx.ctx, USER, "conv_none", &s, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_str_eq(err.message, "conversation with id 'conv_none' not found");
    s = conv(NULL);
    ck_assert(
        !service_openai_get(&fx.svc, &fx.ctx, "bob", s.session_id, &s, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
}
END_TEST

/* --- items ------------------------------------------------------------------
 */

/* A conversation of n user messages "m0".."m<n-1>". */
static struct session
conv_of(int n)
{
    char text[8192];
    size_t at = 0;

    at += (size_t)snprintf(text, sizeof(text), "[");
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(text + at, sizeof(text) - at,
                               "%s{\"role\":\"user\",\"content\":\"m%d\"}",
                               i ? "," : "", i);
    snprintf(text + at, sizeof(text) - at, "]");
    return conv(text);
}

/* The contents of a page, "m3 m2 m1". */
static const char *
contents(const struct openai_page *p)
{
    char *out = arena_alloc(&fx.arena, 1024);
    size_t at = 0;

    out[0] = '\0';
    for (size_t i = 0; i < p->len; i++)
        at += (size_t)snprintf(out + at, 1024 - at, "%s%s", i ? " " : "",
                               p->items[i].m->content);
    return out;
}

START_TEST(pages_run_both_ways_after_an_item)
{
    char buf[OPENAI_ITEM_ID_MAX + 1], after[OPENAI_ITEM_ID_MAX + 1];
    struct error err = ERROR_INIT;
    struct session s = conv_of(7);
    struct openai_page p;
    bool more;

    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, 3, true, &p, &more, &err));
    ck_assert_str_eq(contents(&p), "m6 m5 m4");
    ck_assert(more);
    snprintf(after, sizeof(after), "%s",
             service_openai_item_id(p.items[2].m, buf));
    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        after, 3, true, &p, &more, &err));
    ck_assert_str_eq(contents(&p), "m3 m2 m1");
    ck_assert(more);
    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        after, 3, false, &p, &more, &err));
    ck_assert_str_eq(contents(&p), "m5 m6");
    ck_assert(!more);
    /* exactly a page left: has_more false */
    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        after, 4, true, &p, &more, &err));
    ck_assert_str_eq(contents(&p), "m3 m2 m1 m0");
    ck_assert(!more);

    /* an after that names nothing here */
    ck_assert(!service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                         "msg_00000000000000000000000000000000",
                                         3, true, &p, &more, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "after");
}
END_TEST

START_TEST(items_are_found_by_the_id_they_are_shown_with)
{
    char buf[OPENAI_ITEM_ID_MAX + 1];
    struct error err = ERROR_INIT;
    struct session s = conv("[{\"role\":\"user\",\"content\":\"a\"},"
                            "{\"type\":\"reasoning\",\"id\":\"rs_1\"}]");
    struct openai_page p;
    struct message m;
    const char *id;
    bool more;

    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, 20, false, &p, &more, &err));
    id = arena_strdup(&fx.arena, service_openai_item_id(p.items[0].m, buf));
    ck_assert(service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id, id,
                                      &m, NULL, &err));
    ck_assert_str_eq(m.content, "a");
    ck_assert(service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                      "rs_1", &m, NULL, &err));
    /* the same UUID under another prefix, or the reasoning item's derived
     * id (it is shown with its own), are no ids */
    ck_assert(!service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                       arena_printf(&fx.arena, "fc_%s", id + 4),
                                       &m, NULL, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(!service_openai_item_get(
        &fx.svc, &fx.ctx, USER, s.session_id,
        arena_printf(&fx.arena, "item_%s",
                     service_openai_item_id(p.items[1].m, buf) + 3),
        &m, NULL, &err));
    ck_assert(!service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                       "../x", &m, NULL, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    /* another user's conversation has none of them */
    ck_assert(!service_openai_item_get(&fx.svc, &fx.ctx, "bob", s.session_id,
                                       "rs_1", &m, NULL, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);

    /* delete: by either kind of id, then gone */
    ck_assert(service_openai_item_delete(&fx.svc, &fx.ctx, USER, s.session_id,
                                         "rs_1", &s, &err));
    ck_assert(service_openai_item_delete(&fx.svc, &fx.ctx, USER, s.session_id,
                                         id, &s, &err));
    ck_assert(!service_openai_item_delete(&fx.svc, &fx.ctx, USER, s.session_id,
                                          "rs_1", &s, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
}
END_TEST

START_TEST(a_given_id_is_unique_in_its_conversation)
{
    struct error err = ERROR_INIT;
    struct session s = conv("[{\"type\":\"reasoning\",\"id\":\"rs_1\"}]");
    struct session other = conv(NULL);
    struct message *out;
    size_t n;

    ck_assert(!service_openai_items_add(
        &fx.svc, &fx.ctx, USER, s.session_id,
        J("[{\"role\":\"user\",\"content\":\"x\"},{\"type\":\"reasoning\","
          "\"id\":\"rs_1\"}]"),
        &out, &n, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_str_eq(err.param, "items[1].id");
    ck_assert_uint_eq(fake_store_message_count(fx.store), 1); /* none added */
    /* a status of null is none */
    ck_assert(service_openai_items_add(
        &fx.svc, &fx.ctx, USER, s.session_id,
        J("[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\","
          "\"arguments\":\"{}\",\"status\":null}]"),
        &out, &n, &err));
    /* an item read back and sent again with the id it is shown with */
    {
        char buf[OPENAI_ITEM_ID_MAX + 1];
        struct openai_page p;
        bool more;

        ck_assert(service_openai_items_add(
            &fx.svc, &fx.ctx, USER, s.session_id,
            J("[{\"role\":\"user\",\"content\":\"y\"}]"), &out, &n, &err));
        ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER,
                                            s.session_id, NULL, 1, true, &p,
                                            &more, &err));
        ck_assert(!service_openai_items_add(
            &fx.svc, &fx.ctx, USER, s.session_id,
            J(arena_printf(&fx.arena,
                           "[{\"id\":\"%s\",\"role\":\"user\",\"content\":"
                           "\"y\"}]",
                           service_openai_item_id(p.items[0].m, buf))),
            &out, &n, &err));
        ck_assert_str_eq(err.param, "items[0].id");
        /* in another conversation it is a new item's id */
        ck_assert(service_openai_items_add(
            &fx.svc, &fx.ctx, USER, other.session_id,
            J(arena_printf(&fx.arena,
                           "[{\"id\":\"%s\",\"role\":\"user\",\"content\":"
                           "\"y\"}]",
                           service_openai_item_id(p.items[0].m, buf))),
            &out, &n, &err));
    }
    /* another conversation may use it */
    ck_assert(service_openai_items_add(&fx.svc, &fx.ctx, USER, other.session_id,
                                       J("[{\"type\":\"reasoning\","
                                         "\"id\":\"rs_1\"}]"),
                                       &out, &n, &err));
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(item_writes_need_an_active_conversation)
{
    struct error err = ERROR_INIT;
    struct session s = conv("[{\"type\":\"reasoning\",\"id\":\"rs_1\"}]");
    struct session out;
    struct message *m;
    size_t n;

    ck_assert(service_session_set_status(&fx.svc, &fx.ctx, USER, s.session_id,
                                         IF_MATCH_ANY, STATUS_INACTIVE, &out,
                                         &err));
    ck_assert(!service_openai_items_add(
        &fx.svc, &fx.ctx, USER, s.session_id,
        J("[{\"role\":\"user\",\"content\":\"x\"}]"), &m, &n, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert(!service_openai_item_delete(&fx.svc, &fx.ctx, USER, s.session_id,
                                          "rs_1", &out, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    /* the batch bounds */
    ck_assert(!service_openai_items_add(&fx.svc, &fx.ctx, USER, s.session_id,
                                        J("[]"), &m, &n, &err));
    ck_assert_str_eq(err.param, "items");
    ck_assert(!service_openai_items_add(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, &m, &n, &err));
    ck_assert_str_eq(err.param, "items");
}
END_TEST

START_TEST(a_content_patch_drops_the_item)
{
    char buf[OPENAI_ITEM_ID_MAX + 1], uuid[UUID_STR_LEN + 1];
    struct error err = ERROR_INIT;
    struct session s =
        conv("[{\"type\":\"message\",\"role\":\"user\",\"content\":[{"
             "\"type\":\"input_text\",\"text\":\"old\"},{\"type\":"
             "\"input_image\",\"image_url\":\"u\"}]}]");
    struct openai_page p;
    struct message m;
    const char *id;
    bool more;

    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, 20, false, &p, &more, &err));
    id = arena_strdup(&fx.arena, service_openai_item_id(p.items[0].m, buf));
    uuid_format(&p.items[0].m->id, uuid);
    ck_assert(service_message_patch(&fx.svc, &fx.ctx, USER, s.session_id, uuid,
                                    J("\"new\""), NULL, &m, &err));
    ck_assert_ptr_null(m.item);
    ck_assert(service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id, id,
                                      &m, NULL, &err));
    ck_assert_str_eq(item_json(&m),
                     arena_printf(&fx.arena,
                                  "{\"id\":\"%s\",\"type\":\"message\","
                                  "\"status\":\"completed\",\"role\":\"user\","
                                  "\"content\":[{\"type\":\"input_text\","
                                  "\"text\":\"new\"}]}",
                                  id));
    /* extra_data alone leaves it */
    ck_assert(service_message_patch(&fx.svc, &fx.ctx, USER, s.session_id, uuid,
                                    NULL, J("{\"k\":1}"), &m, &err));
}
END_TEST

/* --- a model's tool calls ------------------------------------------------ */

/* A session written through /api as the conversation endpoint writes
 * one: a question, a reply with text and two calls, their results, a
 * reply of one call and no text (its tool_calls[] with a stray entry
 * first), its result, the answer. */
static struct session
conv_with_calls(void)
{
    static const char *const msgs[] = {
        "{\"role\":\"user\",\"content\":\"q\"}",
        "{\"role\":\"assistant\",\"content\":\"Let me look.\","
        "\"extra_data\":{\"tool_calls\":[{\"id\":\"call_a\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"{\\\"x\\\":1}\"}},{\"id\":\"call_b\",\"type\":\"function\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}",
        "{\"role\":\"tool\",\"content\":\"r1\",\"tool_call_id\":\"call_a\"}",
        "{\"role\":\"tool\",\"content\":\"r2\",\"tool_call_id\":\"call_b\","
        "\"tool_name\":\"g\"}",
        "{\"role\":\"assistant\",\"content\":\"\",\"extra_data\":{"
        "\"tool_calls\":[5,{\"id\":\"call_c\",\"name\":\"h\",\"arguments\":"
        "{\"y\":2}}],\"finish_reason\":\"length\"}}",
        "{\"role\":\"tool\",\"content\":\"r3\",\"tool_call_id\":\"call_c\"}",
        "{\"role\":\"assistant\",\"content\":\"done\"}",
    };
    struct message_input in[7];
    struct error err = ERROR_INIT;
    struct message *out;
    struct session s = conv(NULL);
    bool created;

    memset(in, 0, sizeof(in));
    for (size_t i = 0; i < 7; i++) {
        const struct json_value *m = J(msgs[i]);

        in[i].role = json_get(m, "role");
        in[i].content = json_get(m, "content");
        in[i].tool_call_id = json_get(m, "tool_call_id");
        in[i].tool_name = json_get(m, "tool_name");
        in[i].extra_data = json_get(m, "extra_data");
    }
    ck_assert_msg(service_message_append(&fx.svc, &fx.ctx, USER, s.session_id,
                                         in, 7, true, NULL, &out, &created,
                                         &err),
                  "%s", err.message);
    return s;
}

/* A page's items as JSON, comma-separated. */
static const char *
page_json(const struct openai_page *p)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    for (size_t i = 0; i < p->len; i++) {
        if (i > 0)
            buf_addch(&b, ',');
        encode_openai_item_part(&b, p->items[i].m, p->items[i].part);
    }
    out = arena_strndup(&fx.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* m's own id, in the fixture's arena. */
static const char *
id_of(const struct message *m)
{
    char buf[OPENAI_ITEM_ID_MAX + 1];

    return arena_strdup(&fx.arena, service_openai_item_id(m, buf));
}

START_TEST(tool_calls_are_function_call_items)
{
    static const char *const none[] = {"%s.2", "%s.01", "%s.", "%s.-1",
                                       "%s.1x"};
    char buf[OPENAI_PART_ID_MAX + 1], r_id[OPENAI_ITEM_ID_MAX + 1],
        c_id[OPENAI_ITEM_ID_MAX + 1];
    struct error err = ERROR_INIT;
    struct session s = conv_with_calls();
    struct openai_page all, p;
    struct message m;
    const char *want;
    int part;
    bool more;

    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, 100, false, &all, &more, &err));
    ck_assert(!more);
    ck_assert_uint_eq(all.len, 9);
    snprintf(r_id, sizeof(r_id), "%s",
             service_openai_item_id(all.items[1].m, buf));
    snprintf(c_id, sizeof(c_id), "%s",
             service_openai_item_id(all.items[6].m, buf));
    ck_assert_int_eq(strncmp(r_id, "msg_", 4), 0);
    want = arena_printf(
        &fx.arena,
        "{\"id\":\"%s\",\"type\":\"message\",\"status\":\"completed\","
        "\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":"
        "\"q\"}]},"
        "{\"id\":\"%s\",\"type\":\"message\",\"status\":\"completed\","
        "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
        "\"text\":\"Let me look.\",\"annotations\":[]}]},"
        "{\"id\":\"%s.0\",\"type\":\"function_call\",\"status\":"
        "\"completed\",\"call_id\":\"call_a\",\"name\":\"f\",\"arguments\":"
        "\"{\\\"x\\\":1}\"},"
        "{\"id\":\"%s.1\",\"type\":\"function_call\",\"status\":"
        "\"completed\",\"call_id\":\"call_b\",\"name\":\"g\",\"arguments\":"
        "\"{}\"},"
        "{\"id\":\"%s\",\"type\":\"function_call_output\",\"status\":"
        "\"completed\",\"call_id\":\"call_a\",\"output\":\"r1\"},"
        "{\"id\":\"%s\",\"type\":\"function_call_output\",\"status\":"
        "\"completed\",\"call_id\":\"call_b\",\"output\":\"r2\",\"name\":"
        "\"g\"},"
        "{\"id\":\"%s.1\",\"type\":\"function_call\",\"status\":"
        "\"completed\",\"call_id\":\"call_c\",\"name\":\"h\",\"arguments\":"
        "\"{\\\"y\\\":2}\"},"
        "{\"id\":\"%s\",\"type\":\"function_call_output\",\"status\":"
        "\"completed\",\"call_id\":\"call_c\",\"output\":\"r3\"},"
        "{\"id\":\"%s\",\"type\":\"message\",\"status\":\"completed\","
        "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
        "\"text\":\"done\",\"annotations\":[]}]}",
        id_of(all.items[0].m), r_id, r_id, r_id, id_of(all.items[4].m),
        id_of(all.items[5].m), c_id, id_of(all.items[7].m),
        id_of(all.items[8].m));
    ck_assert_str_eq(page_json(&all), want);

    /* one at a time, both ways, after the ids shown: the same items */
    for (int desc = 0; desc < 2; desc++) {
        const char *after = NULL;

        for (size_t i = 0; i < 9; i++) {
            size_t k = desc ? 8 - i : i;

            ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER,
                                                s.session_id, after, 1, desc,
                                                &p, &more, &err));
            ck_assert_uint_eq(p.len, 1);
            ck_assert(p.items[0].m->seq == all.items[k].m->seq &&
                      p.items[0].part == all.items[k].part);
            ck_assert(more == (i < 8));
            after = arena_strdup(
                &fx.arena,
                service_openai_part_id(p.items[0].m, p.items[0].part, buf));
        }
        /* and two at a time from the middle of a message */
        ck_assert(service_openai_items_list(
            &fx.svc, &fx.ctx, USER, s.session_id,
            arena_printf(&fx.arena, "%s.0", r_id), 2, desc, &p, &more, &err));
        ck_assert_uint_eq(p.len, 2);
        ck_assert_int_eq(p.items[0].part, desc ? OPENAI_PART_WHOLE : 1);
        ck_assert_int_eq(p.items[1].m->seq, desc ? 1 : 3);
    }

    /* found by the ids they are shown with, and by nothing else */
    ck_assert(service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                      arena_printf(&fx.arena, "%s.1", r_id), &m,
                                      &part, &err));
    ck_assert_int_eq(part, 1);
    ck_assert(service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                      r_id, &m, &part, &err));
    ck_assert_int_eq(part, OPENAI_PART_WHOLE);
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        ck_assert(!service_openai_item_get(
            &fx.svc, &fx.ctx, USER, s.session_id,
            arena_printf(&fx.arena, none[i], r_id), &m, &part, &err));
        ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    }
    /* the reply without text has no item of its own, nor a call at 0 */
    ck_assert(!service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                       c_id, &m, &part, &err));
    ck_assert(!service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                       arena_printf(&fx.arena, "%s.0", c_id),
                                       &m, &part, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);

    /* an id shown already is taken */
    {
        struct message *out;
        size_t n;

        ck_assert(!service_openai_items_add(
            &fx.svc, &fx.ctx, USER, s.session_id,
            J(arena_printf(&fx.arena,
                           "[{\"type\":\"reasoning\",\"id\":\"%s.1\"}]", r_id)),
            &out, &n, &err));
        ck_assert_str_eq(err.param, "items[0].id");
    }

    /* deleting a call deletes its message, with all its items */
    ck_assert(service_openai_item_delete(&fx.svc, &fx.ctx, USER, s.session_id,
                                         arena_printf(&fx.arena, "%s.1", r_id),
                                         &s, &err));
    ck_assert(service_openai_items_list(&fx.svc, &fx.ctx, USER, s.session_id,
                                        NULL, 100, false, &p, &more, &err));
    ck_assert_uint_eq(p.len, 6);
    ck_assert(!service_openai_item_get(&fx.svc, &fx.ctx, USER, s.session_id,
                                       r_id, &m, &part, &err));
}
END_TEST

Suite *
service_openai_suite(void)
{
    Suite *s = suite_create("service_openai");
    TCase *tc = tcase_create("items");

    tcase_add_checked_fixture(tc, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(tc, message_items_become_messages);
    tcase_add_test(tc, calls_and_outputs_become_tool_messages);
    tcase_add_test(tc, other_items_are_kept_with_their_id);
    tcase_add_test(tc, bad_items_name_the_member);
    tcase_add_test(tc, item_limits);
    tcase_add_test(tc, ids_are_derived_by_kind_or_given);
    tcase_add_test(tc, create_makes_a_session_with_its_items);
    tcase_add_test(tc, create_is_all_or_none);
    tcase_add_test(tc, metadata_follows_openai_limits);
    tcase_add_test(tc, not_found_is_openai_s_words);
    tcase_add_test(tc, pages_run_both_ways_after_an_item);
    tcase_add_test(tc, items_are_found_by_the_id_they_are_shown_with);
    tcase_add_test(tc, a_given_id_is_unique_in_its_conversation);
    tcase_add_test(tc, item_writes_need_an_active_conversation);
    tcase_add_test(tc, a_content_patch_drops_the_item);
    tcase_add_test(tc, tool_calls_are_function_call_items);
    suite_add_tcase(s, tc);
    return s;
}

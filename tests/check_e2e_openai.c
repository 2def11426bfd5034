/*
 * check_e2e_openai.c - end to end: OpenAI's Conversations API under /v1,
 * over real sockets through nginx, parley and the database.  tests/
 * check_e2e runs it after the other suites (CK_RUN_SUITE=e2e-openai runs
 * it alone).  tests/openai/ drives the same routes with OpenAI's own
 * clients; this suite pins what those do not: every route's status and
 * shape, the error body of every error class, the limits, paging both
 * ways with `after`, include[], isolation, and that a conversation is an
 * ordinary session (listed, counted, exported, erased) and the other way
 * round.
 *
 * The rules are check_e2e.c's: fresh users per test, source addresses of
 * its own, exact statuses, types, codes and params.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "auth.h"
#include "buf.h"
#include "e2e_http.h"
#include "e2e_util.h"
#include "json.h"
#include "banned.h"

#define CONVS "/v1/conversations"

/* ====================================================================== */
/* Small helpers. */

static const char *
conv_path(const char *id)
{
    return str(CONVS "/%s", id);
}

static const char *
items_path(const char *id)
{
    return str(CONVS "/%s/items", id);
}

static const char *
item_path(const char *id, const char *item)
{
    return str(CONVS "/%s/items/%s", id, item);
}

/* s as a JSON string literal (NULL: null). */
static const char *
jq(const char *s)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    json_write_cstr(&b, s);
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* n user messages "<prefix><i>" as a JSON array's members. */
static const char *
user_items(size_t n, const char *prefix)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s{\"role\":\"user\",\"content\":\"%s%zu\"}",
                   i ? "," : "", prefix, i);
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* A /v1 error, exactly: OpenAI's four members (assert_error checks the
 * type of the status, code and param). */
#define expect_v1_error(r, st, code, param)                                    \
    expect_v1_error_at(__LINE__, &(r), (st), (code), (param))

static void
expect_v1_error_at(int line, const struct resp *r, int status, const char *code,
                   const char *param)
{
    const struct json_value *e;

    assert_error_at(line, r, status, code, param);
    e = jobj(r->json, "error");
    ck_assert_msg(e->u.o.len == 4 && json_get(e, "message") != NULL &&
                      json_get(e, "type") != NULL &&
                      json_get(e, "param") != NULL &&
                      json_get(e, "code") != NULL,
                  "line %d: %s %.200s: not OpenAI's error body: %.300s", line,
                  r->method, r->target, r->body);
    if (status == 409)
        expect_header_at(line, r, "x-should-retry", "false");
    else
        ck_assert_msg(hdr(r, "x-should-retry") == NULL,
                      "line %d: x-should-retry on a %d", line, status);
}

/* The conversation object: exactly id, object, created_at (Unix seconds,
 * now) and metadata. */
#define expect_conv(r, id) expect_conv_at(__LINE__, &(r), (id))

static const struct json_value *
expect_conv_at(int line, const struct resp *r, const char *id)
{
    const struct json_value *c = r->json;
    int64_t now = (int64_t)time(NULL), at;

    expect_status_at(line, r, 200);
    ck_assert_msg(c != NULL && c->type == JSON_OBJECT && c->u.o.len == 4,
                  "line %d: not a conversation: %.300s", line, r->body);
    ck_assert_str_eq(jstr(c, "object"), "conversation");
    if (id != NULL)
        ck_assert_str_eq(jstr(c, "id"), id);
    at = jint(c, "created_at");
    ck_assert_msg(at <= now + 1 && at > now - 600,
                  "line %d: created_at %lld is not now (%lld)", line,
                  (long long)at, (long long)now);
    (void)jobj(c, "metadata");
    return c;
}

/* A list object: exactly object, data, first_id, last_id, has_more,
 * whose ids are those of the first and last item. */
#define expect_list_v1(r, n, more)                                             \
    expect_list_v1_at(__LINE__, &(r), (n), (more))

static const struct json_value *
expect_list_v1_at(int line, const struct resp *r, size_t n, bool more)
{
    const struct json_value *l = r->json, *data;

    expect_status_at(line, r, 200);
    ck_assert_msg(l != NULL && l->type == JSON_OBJECT && l->u.o.len == 5,
                  "line %d: not a list: %.300s", line, r->body);
    ck_assert_str_eq(jstr(l, "object"), "list");
    data = jarr(l, "data");
    ck_assert_msg(data->u.a.len == n, "line %d: %zu items, want %zu: %.300s",
                  line, data->u.a.len, n, r->body);
    ck_assert_msg(jbool(l, "has_more") == more, "line %d: has_more %d", line,
                  !more);
    if (n == 0) {
        ck_assert(jis_null(l, "first_id") && jis_null(l, "last_id"));
    } else {
        ck_assert_str_eq(jstr(l, "first_id"), jstr(data->u.a.items[0], "id"));
        ck_assert_str_eq(jstr(l, "last_id"),
                         jstr(data->u.a.items[n - 1], "id"));
    }
    return data;
}

/* POST /v1/conversations with body, expecting 200; its id. */
static const char *
conv_new(const struct user *u, const char *body)
{
    struct resp r = api(u, "POST", CONVS, body);

    return jstr(expect_conv(r, NULL), "id");
}

/* The texts of a list's message items ("m3 m2 m1"). */
static const char *
texts(const struct json_value *data)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    for (size_t i = 0; i < data->u.a.len; i++) {
        const struct json_value *content = jarr(data->u.a.items[i], "content");

        buf_printf(&b, "%s%s", i ? " " : "",
                   jstr(content->u.a.items[0], "text"));
    }
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* ====================================================================== */
/* Every route: its status and shape. */

START_TEST(test_v1_routes)
{
    struct user u = user_new("v1-routes");
    const char *id, *item_id;
    const struct json_value *c, *data, *item;
    struct resp r;

    /* create: a conv_ id of 32 hex characters, the metadata given */
    r = api(&u, "POST", CONVS,
            "{\"metadata\":{\"topic\":\"t\"},\"items\":[{\"role\":\"user\","
            "\"content\":\"hello\"}]}");
    c = expect_conv(r, NULL);
    id = jstr(c, "id");
    ck_assert_uint_eq(strlen(id), 37);
    ck_assert_int_eq(strncmp(id, "conv_", 5), 0);
    ck_assert_uint_eq(strspn(id + 5, "0123456789abcdef"), 32);
    expect_json(jobj(c, "metadata"), "{\"topic\":\"t\"}");

    /* an empty body is a conversation without items or metadata */
    r = send_raw(&u, "POST", CONVS, NULL, NULL, 0);
    expect_json(jobj(expect_conv(r, NULL), "metadata"), "{}");

    r = api(&u, "GET", conv_path(id), NULL);
    ck_assert(json_same(expect_conv(r, id), c));

    r = api(&u, "POST", conv_path(id), "{\"metadata\":{\"k\":\"v\"}}");
    expect_json(jobj(expect_conv(r, id), "metadata"), "{\"k\":\"v\"}");

    /* items: create answers the items made, list pages them, one item by
     * its id, and deleting one answers the conversation */
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"type\":\"function_call\",\"call_id\":\"c1\","
            "\"name\":\"f\",\"arguments\":\"{}\"},{\"type\":"
            "\"function_call_output\",\"call_id\":\"c1\",\"output\":\"ok\"}]}");
    data = expect_list_v1(r, 2, false);
    item = data->u.a.items[0];
    item_id = jstr(item, "id");
    ck_assert_int_eq(strncmp(item_id, "fc_", 3), 0);
    expect_json(item, str("{\"id\":%s,\"type\":\"function_call\",\"call_id\":"
                          "\"c1\",\"name\":\"f\",\"arguments\":\"{}\","
                          "\"status\":\"completed\"}",
                          jq(item_id)));
    ck_assert_int_eq(strncmp(jstr(data->u.a.items[1], "id"), "fco_", 4), 0);

    r = api(&u, "GET", items_path(id), NULL);
    data = expect_list_v1(r, 3, false);
    ck_assert_str_eq(jstr(data->u.a.items[0], "type"), "function_call_output");

    r = api(&u, "GET", item_path(id, item_id), NULL);
    expect_status(r, 200);
    ck_assert(json_same(r.json, item));

    r = api(&u, "DELETE", item_path(id, item_id), NULL);
    expect_json(jobj(expect_conv(r, id), "metadata"), "{\"k\":\"v\"}");
    r = api(&u, "GET", item_path(id, item_id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);

    r = api(&u, "DELETE", conv_path(id), NULL);
    expect_status(r, 200);
    expect_json(r.json, str("{\"id\":%s,\"object\":\"conversation.deleted\","
                            "\"deleted\":true}",
                            jq(id)));
    r = api(&u, "GET", conv_path(id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    ck_assert_str_eq(jstr(jobj(r.json, "error"), "message"),
                     str("conversation with id '%s' not found", id));
    r = api(&u, "GET", items_path(id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
}
END_TEST

/* ====================================================================== */
/* Every error class in OpenAI's shape. */

START_TEST(test_v1_error_classes)
{
    struct user u = user_new("v1-errors");
    const char *id = conv_new(&u, "{\"items\":[{\"role\":\"user\","
                                  "\"content\":\"x\"}]}");
    const char *ct_text[] = {"Content-Type: text/plain", NULL};
    const char *big;
    struct resp r;

    /* 400: a value, an unknown member, bad JSON, a bad query */
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"role\":\"wizard\","
            "\"content\":\"x\"}]}");
    expect_v1_error(r, 400, "validation_error", "items[0].role");
    r = api(&u, "POST", items_path(id), "{\"items\":[],\"extra\":1}");
    expect_v1_error(r, 400, "unknown_field", "extra");
    r = api(&u, "POST", CONVS, "{\"items\":[");
    expect_v1_error(r, 400, "invalid_json", NULL);
    r = api(&u, "GET", str("%s?order=sideways", items_path(id)), NULL);
    expect_v1_error(r, 400, "validation_error", "order");
    r = api(&u, "GET", str("%s?bogus=1", items_path(id)), NULL);
    expect_v1_error(r, 400, "validation_error", "bogus");
    r = api(&u, "GET", str("%s?order=asc", conv_path(id)), NULL);
    expect_v1_error(r, 400, "validation_error", "order");

    /* 401: no token, a bad one; with WWW-Authenticate */
    r = send_raw(NULL, "POST", CONVS, NULL, NULL, 0);
    expect_v1_error(r, 401, "unauthorized", NULL);
    expect_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    r = with_auth("Bearer not-a-jwt", "GET", conv_path(id));
    expect_v1_error(r, 401, "unauthorized", NULL);

    /* 404: a conversation, an item, a path no route has */
    r = api(&u, "POST", conv_path("conv_00000000000000000000000000000000"),
            "{\"metadata\":null}");
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&u, "DELETE", item_path(id, "msg_00000000000000000000000000000000"),
            NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", "/v1/responses", NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", "/v1", NULL);
    expect_v1_error(r, 404, "not_found", NULL);

    /* 405 with Allow */
    r = api(&u, "PATCH", conv_path(id), "{}");
    expect_v1_error(r, 405, "method_not_allowed", NULL);
    expect_header(r, "Allow", "GET, POST, DELETE");
    r = api(&u, "PUT", items_path(id), "{}");
    expect_v1_error(r, 405, "method_not_allowed", NULL);
    expect_header(r, "Allow", "GET, POST");

    /* 409 on a session that is not active, final (x-should-retry) */
    r = api(&u, "PUT", str(SESSIONS "/%s/deactivate", id), NULL);
    expect_status(r, 200);
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"role\":\"user\",\"content\":\"y\"}]}");
    expect_v1_error(r, 409, "conflict", "status");
    r = api(&u, "GET", items_path(id), NULL);
    expect_list_v1(r, 1, false); /* reads still work */

    /* 413: nginx's own page, in OpenAI's shape too */
    big = str("{\"items\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
              rep("x", 1100 * 1024));
    r = api(&u, "POST", items_path(id), big);
    expect_v1_error(r, 413, "payload_too_large", NULL);

    /* 415 */
    r = send_raw(&u, "POST", CONVS, ct_text, "{}", 2);
    expect_v1_error(r, 415, "unsupported_media_type", NULL);
}
END_TEST

/* 429 from nginx's rate limit, in OpenAI's shape with Retry-After. */
START_TEST(test_v1_rate_limited)
{
    enum { N = 600 };
    struct e2e_http_request *reqs = calloc(N, sizeof *reqs);
    struct e2e_http_response *out = calloc(N, sizeof *out);
    const char *source = case_source(tc.nreq++);
    size_t limited = N;
    static const size_t windows[] = {8, 250};

    ck_assert(reqs != NULL && out != NULL);
    for (size_t i = 0; i < N; i++) {
        reqs[i].method = "GET";
        reqs[i].target = CONVS "/conv_x";
        reqs[i].source = source;
    }
    for (size_t w = 0; w < 2 && limited == N; w++) {
        for (size_t i = 0; i < N; i++)
            e2e_http_response_release(&out[i]);
        (void)e2e_http_do_many(&env.client, reqs, N, windows[w], out);
        for (size_t i = 0; i < N && limited == N; i++)
            if (out[i].status == 429)
                limited = i;
    }
    ck_assert_msg(limited < N, "no 429 in %d requests", N);
    for (size_t i = 0; i < N; i++)
        ck_assert_msg(out[i].status == 401 || out[i].status == 429,
                      "request %zu: %d %.200s", i, out[i].status,
                      out[i].body ? out[i].body : out[i].error);
    {
        struct e2e_http_response *copy = calloc(1, sizeof *copy);
        struct resp r;

        ck_assert(copy != NULL);
        *copy = out[limited]; /* wrap() owns it now */
        memset(&out[limited], 0, sizeof out[limited]);
        r = wrap("GET", CONVS "/conv_x (burst)", copy);
        expect_v1_error(r, 429, "rate_limited", NULL);
        expect_header(r, "Retry-After", "1");
    }
    for (size_t i = 0; i < N; i++)
        e2e_http_response_release(&out[i]);
    free(out);
    free(reqs);
}
END_TEST

/* ====================================================================== */
/* Limits. */

START_TEST(test_v1_limits)
{
    struct user u = user_new("v1-limits");
    const char *id = conv_new(&u, "{}");
    const char *meta;
    struct buf b;
    struct resp r;

    /* items per create: 1 to 100 (0 to 100 when making a conversation) */
    r = api(&u, "POST", items_path(id), "{\"items\":[]}");
    expect_v1_error(r, 400, "validation_error", "items");
    r = api(&u, "POST", items_path(id),
            str("{\"items\":[%s]}", user_items(101, "m")));
    expect_v1_error(r, 400, "validation_error", "items");
    r = api(&u, "POST", CONVS, str("{\"items\":[%s]}", user_items(101, "m")));
    expect_v1_error(r, 400, "validation_error", "items");
    r = api(&u, "POST", items_path(id), "{\"items\":{}}");
    expect_v1_error(r, 400, "validation_error", "items");
    r = api(&u, "POST", items_path(id), "{}");
    expect_v1_error(r, 400, "validation_error", "items");
    r = api(&u, "GET", items_path(id), NULL);
    expect_list_v1(r, 0, false); /* nothing of it stored */
    r = api(&u, "POST", items_path(id),
            str("{\"items\":[%s]}", user_items(100, "m")));
    expect_list_v1(r, 100, false);
    (void)conv_new(&u, str("{\"items\":[%s]}", user_items(100, "c")));

    /* list limit: 1 to 100 */
    r = api(&u, "GET", str("%s?limit=0", items_path(id)), NULL);
    expect_v1_error(r, 400, "validation_error", "limit");
    r = api(&u, "GET", str("%s?limit=101", items_path(id)), NULL);
    expect_v1_error(r, 400, "validation_error", "limit");
    r = api(&u, "GET", str("%s?limit=1", items_path(id)), NULL);
    expect_list_v1(r, 1, true);
    r = api(&u, "GET", str("%s?limit=100", items_path(id)), NULL);
    expect_list_v1(r, 100, false);
    r = api(&u, "GET", items_path(id), NULL);
    expect_list_v1(r, 20, true); /* the default */

    /* metadata: 16 keys of 64 characters, string values of 512 */
    buf_init(&b);
    for (int i = 0; i < 16; i++)
        buf_printf(&b, "%s\"%s%02d\":\"%s\"", i ? "," : "", rep("k", 62), i,
                   rep("v", 512));
    meta = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    r = api(&u, "POST", conv_path(id), str("{\"metadata\":{%s}}", meta));
    ck_assert_uint_eq(jobj(expect_conv(r, id), "metadata")->u.o.len, 16);
    r = api(&u, "POST", conv_path(id),
            str("{\"metadata\":{%s,\"k\":\"v\"}}", meta));
    expect_v1_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", CONVS, str("{\"metadata\":{%s,\"k\":\"v\"}}", meta));
    expect_v1_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", conv_path(id),
            str("{\"metadata\":{\"%s\":\"v\"}}", rep("k", 65)));
    expect_v1_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", conv_path(id),
            str("{\"metadata\":{\"k\":\"%s\"}}", rep("v", 513)));
    expect_v1_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", conv_path(id), "{\"metadata\":{\"k\":true}}");
    expect_v1_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", conv_path(id), "{}");
    expect_v1_error(r, 400, "validation_error", "metadata");
    /* none of those changed it; null clears it */
    r = api(&u, "GET", conv_path(id), NULL);
    ck_assert_uint_eq(jobj(expect_conv(r, id), "metadata")->u.o.len, 16);
    r = api(&u, "POST", conv_path(id), "{\"metadata\":null}");
    expect_json(jobj(expect_conv(r, id), "metadata"), "{}");

    /* an item's text: at most 512 KiB */
    r = api(&u, "POST", items_path(id),
            str("{\"items\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                rep("x", 512 * 1024 + 1)));
    expect_v1_error(r, 400, "validation_error", "items[0].content");
    r = api(&u, "POST", items_path(id),
            str("{\"items\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                rep("x", 512 * 1024)));
    expect_list_v1(r, 1, false);
}
END_TEST

/* ====================================================================== */
/* Paging. */

START_TEST(test_v1_paging)
{
    struct user u = user_new("v1-paging");
    const char *id = conv_new(&u, str("{\"items\":[%s]}", user_items(45, "m")));
    const struct json_value *data;
    const char *after = NULL;
    struct buf seen;
    struct resp r;

    /* desc (the default): 20, 20, 5, each page after the last one's
     * last_id */
    buf_init(&seen);
    for (int page = 0; page < 3; page++) {
        r = api(&u, "GET",
                after ? str("%s?after=%s", items_path(id), after)
                      : items_path(id),
                NULL);
        data = expect_list_v1(r, page < 2 ? 20 : 5, page < 2);
        buf_printf(&seen, "%s%s", page ? " " : "", texts(data));
        after = jstr(r.json, "last_id");
    }
    buf_addch(&seen, '\0');
    ck_assert_ptr_nonnull(strstr(seen.data, "m44 m43 m42"));
    ck_assert_ptr_nonnull(strstr(seen.data, "m2 m1 m0"));
    buf_release(&seen);

    /* asc, 7 a page; the last page is exactly full: has_more false */
    r = api(&u, "GET", str("%s?order=asc&limit=15", items_path(id)), NULL);
    data = expect_list_v1(r, 15, true);
    ck_assert_str_eq(texts(data), "m0 m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12 "
                                  "m13 m14");
    after = jstr(r.json, "last_id");
    r = api(&u, "GET",
            str("%s?order=asc&limit=30&after=%s", items_path(id), after), NULL);
    data = expect_list_v1(r, 30, false);
    {
        struct buf want;

        buf_init(&want);
        for (int i = 15; i < 45; i++)
            buf_printf(&want, "%sm%d", i > 15 ? " " : "", i);
        buf_addch(&want, '\0');
        ck_assert_str_eq(texts(data), want.data);
        buf_release(&want);
    }
    /* after an item, desc: the ones before it */
    r = api(&u, "GET",
            str("%s?order=desc&limit=3&after=%s", items_path(id), after), NULL);
    data = expect_list_v1(r, 3, true);
    ck_assert_str_eq(texts(data), "m13 m12 m11");
    /* after the newest, asc: nothing more */
    r = api(&u, "GET", str("%s?limit=1", items_path(id)), NULL);
    after = jstr(r.json, "last_id");
    r = api(&u, "GET", str("%s?order=asc&after=%s", items_path(id), after),
            NULL);
    expect_list_v1(r, 0, false);
    /* an after that is no item of this conversation */
    r = api(&u, "GET", str("%s?after=rs_nothing", items_path(id)), NULL);
    expect_v1_error(r, 400, "validation_error", "after");

    /* include[] (repeated, as OpenAI's clients send it) and include are
     * accepted and change nothing */
    r = api(&u, "GET",
            str("%s?limit=2&include%%5B%%5D=message.output_text.logprobs&"
                "include%%5B%%5D=reasoning.encrypted_content",
                items_path(id)),
            NULL);
    ck_assert_str_eq(texts(expect_list_v1(r, 2, true)), "m44 m43");
    r = api(&u, "GET", str("%s?include=x", item_path(id, after)), NULL);
    expect_status(r, 200);
    r = api(&u, "POST",
            str("%s?include%%5B%%5D=x&include%%5B%%5D=y", items_path(id)),
            "{\"items\":[{\"role\":\"user\",\"content\":\"m45\"}]}");
    expect_list_v1(r, 1, false);
}
END_TEST

/* ====================================================================== */
/* Ids a client gives its items: kept, unique in the conversation (the
 * partial unique index), found and deleted by them. */

START_TEST(test_v1_given_ids)
{
    struct user u = user_new("v1-ids");
    const char *id =
        conv_new(&u, "{\"items\":[{\"type\":\"reasoning\",\"id\":\"rs_1\","
                     "\"summary\":[],\"encrypted_content\":\"e\"},"
                     "{\"type\":\"message\",\"id\":\"msg_mine\",\"role\":"
                     "\"assistant\",\"status\":\"completed\",\"content\":"
                     "[{\"type\":\"output_text\",\"text\":\"hi\","
                     "\"annotations\":[]}]}]}");
    struct resp r;

    r = api(&u, "GET", item_path(id, "rs_1"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"id\":\"rs_1\",\"type\":\"reasoning\","
                        "\"summary\":[],\"encrypted_content\":\"e\"}");
    r = api(&u, "GET", item_path(id, "msg_mine"), NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(r.json, "id"), "msg_mine");

    /* the same id again, in the conversation or twice in one request:
     * 400 naming it, nothing of the request stored */
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"role\":\"user\",\"content\":\"x\"},"
            "{\"type\":\"reasoning\",\"id\":\"rs_1\"}]}");
    expect_v1_error(r, 400, "validation_error", "items[1].id");
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"type\":\"reasoning\",\"id\":\"rs_2\"},"
            "{\"type\":\"reasoning\",\"id\":\"rs_2\"}]}");
    expect_v1_error(r, 400, "validation_error", "items[1].id");
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"type\":\"reasoning\",\"id\":\"a/b\"}]}");
    expect_v1_error(r, 400, "validation_error", "items[0].id");
    ck_assert_int_eq(jint(get_session(&u, id), "message_count"), 2);
    r = api(&u, "GET", items_path(id), NULL);
    expect_list_v1(r, 2, false);

    /* deleted by its id, which is then free again */
    r = api(&u, "DELETE", item_path(id, "rs_1"), NULL);
    expect_conv(r, id);
    r = api(&u, "DELETE", item_path(id, "rs_1"), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&u, "POST", items_path(id),
            "{\"items\":[{\"type\":\"reasoning\",\"id\":\"rs_1\"}]}");
    ck_assert_str_eq(jstr(expect_list_v1(r, 1, false)->u.a.items[0], "id"),
                     "rs_1");
}
END_TEST

/* ====================================================================== */
/* Isolation: another user's conversation does not exist for you. */

START_TEST(test_v1_isolation)
{
    struct user a = user_new("v1-a"), b = user_new("v1-b");
    const char *id = conv_new(&a, "{\"metadata\":{\"k\":\"a\"},\"items\":["
                                  "{\"type\":\"reasoning\",\"id\":\"rs_a\"},"
                                  "{\"role\":\"user\",\"content\":\"mine\"}]}");
    const char *item;
    struct resp r;

    r = api(&a, "GET", items_path(id), NULL);
    item = jstr(jarr(r.json, "data")->u.a.items[0], "id");
    r = api(&b, "GET", conv_path(id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&b, "POST", conv_path(id), "{\"metadata\":{\"k\":\"b\"}}");
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&b, "DELETE", conv_path(id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&b, "GET", items_path(id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
    r = api(&b, "POST", items_path(id),
            "{\"items\":[{\"role\":\"user\",\"content\":\"theirs\"}]}");
    expect_v1_error(r, 404, "not_found", NULL);
    for (int k = 0; k < 2; k++) {
        const char *which = k ? "rs_a" : item;

        r = api(&b, "GET", item_path(id, which), NULL);
        expect_v1_error(r, 404, "not_found", NULL);
        r = api(&b, "DELETE", item_path(id, which), NULL);
        expect_v1_error(r, 404, "not_found", NULL);
    }
    /* B may use the same item id in a conversation of B's own */
    (void)conv_new(&b,
                   "{\"items\":[{\"type\":\"reasoning\",\"id\":\"rs_a\"}]}");

    /* A's is as it was */
    r = api(&a, "GET", conv_path(id), NULL);
    expect_json(jobj(expect_conv(r, id), "metadata"), "{\"k\":\"a\"}");
    r = api(&a, "GET", items_path(id), NULL);
    expect_list_v1(r, 2, false);
}
END_TEST

/* ====================================================================== */
/* One store. */

START_TEST(test_v1_conversation_is_a_session)
{
    struct user u = user_new("v1-store");
    struct user admin = {"admin", NULL};
    const char *id;
    const struct json_value *s, *ms;
    int64_t total0;
    struct resp r;

    r = api(&u, "GET", SESSIONS "/stats", NULL);
    total0 = jint(r.json, "total_sessions");
    id = conv_new(&u,
                  "{\"items\":[{\"role\":\"developer\",\"content\":\"Be "
                  "brief.\"},{\"role\":\"user\",\"content\":[{\"type\":"
                  "\"input_text\",\"text\":\"a\"},{\"type\":\"input_text\","
                  "\"text\":\"b\"}]},{\"type\":\"function_call\",\"call_id\":"
                  "\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},{\"type\":"
                  "\"function_call_output\",\"call_id\":\"c1\",\"output\":"
                  "\"21\"},{\"type\":\"reasoning\",\"id\":\"rs_1\"}]}");

    /* a session, listed and counted */
    s = get_session(&u, id);
    ck_assert_int_eq(jint(s, "message_count"), 5);
    ck_assert_str_eq(jstr(s, "status"), "active");
    r = api(&u, "GET", SESSIONS "?limit=200", NULL);
    ck_assert_int_eq(jint(r.json, "total"), total0 + 1);
    r = api(&u, "GET", SESSIONS "/stats", NULL);
    ck_assert_int_eq(jint(r.json, "total_sessions"), total0 + 1);
    ck_assert_int_eq(jint(r.json, "total_messages"), 5);

    /* its items are messages, with nothing of /v1 shown */
    r = api(&u, "GET", str(SESSIONS "/%s/messages", id), NULL);
    ms = jarr(r.json, "items");
    ck_assert_uint_eq(ms->u.a.len, 5);
    ck_assert_str_eq(jstr(ms->u.a.items[0], "role"), "developer");
    ck_assert_str_eq(jstr(ms->u.a.items[1], "content"), "a\nb");
    ck_assert_str_eq(jstr(ms->u.a.items[2], "role"), "assistant");
    ck_assert_str_eq(jstr(ms->u.a.items[2], "tool_call_id"), "c1");
    ck_assert_str_eq(jstr(ms->u.a.items[2], "tool_name"), "f");
    ck_assert_str_eq(jstr(ms->u.a.items[2], "content"), "{}");
    ck_assert_str_eq(jstr(ms->u.a.items[3], "role"), "tool");
    ck_assert_str_eq(jstr(ms->u.a.items[4], "content"), "");
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(ms->u.a.items[i]->u.o.len, 10);
        ck_assert(jis_null(ms->u.a.items[i], "extra_data"));
    }
    r = api(&u, "GET", str(SESSIONS "/%s/messages?role=developer", id), NULL);
    ck_assert_int_eq(jint(r.json, "total"), 1);
    r = api(&u, "GET", str(SESSIONS "/%s/context", id), NULL);
    ck_assert_uint_eq(jarr(r.json, "items")->u.a.len, 5);

    /* exported like any session (check_e2e_export.c exports the
     * developer role as JSON and CSV, and imports it) */
    r = api(&u, "GET", str(SESSIONS "/%s/export?format=json", id), NULL);
    expect_status(r, 200);
    ck_assert_uint_eq(jarr(r.json, "messages")->u.a.len, 5);
    /* a PATCH of the content through /api shows through /v1 */
    r = api(&u, "PATCH",
            str(SESSIONS "/%s/messages/%s", id, jstr(ms->u.a.items[1], "id")),
            "{\"content\":\"rewritten\"}");
    expect_status(r, 200);
    r = api(&u, "GET", str("%s?order=asc&limit=2", items_path(id)), NULL);
    ck_assert_str_eq(texts(expect_list_v1(r, 2, true)), "Be brief. rewritten");

    /* erased with its user: gone through /v1 too */
    {
        struct error err = ERROR_INIT;
        char *t = auth_mint(&env.cfg, uniq("e2e-v1-eraser"),
                            (int64_t)time(NULL), 3600, true, &err);

        ck_assert_msg(t != NULL, "auth_mint: %s", err.message);
        admin.token = str("%s", t);
        free(t);
    }
    r = api(&admin, "DELETE", str("/api/admin/users/%s", u.name), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "deleted_sessions"), 1);
    ck_assert_int_eq(jint(r.json, "deleted_messages"), 5);
    r = api(&u, "GET", conv_path(id), NULL);
    expect_v1_error(r, 404, "not_found", NULL);
}
END_TEST

/* text with every `from` replaced by `to`. */
static const char *
replace_all(const char *text, const char *from, const char *to)
{
    struct buf b;
    const char *at, *out;

    buf_init(&b);
    while ((at = strstr(text, from)) != NULL) {
        buf_add(&b, text, (size_t)(at - text));
        buf_adds(&b, to);
        text = at + strlen(from);
    }
    buf_adds(&b, text);
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* A conversation exported and imported under a new id reads back through
 * /v1 exactly as before: the same items, ids and order, content parts of
 * every kind, opaque item types, the ids clients gave and those parley
 * derived; an import repeating an item id is a 400, not a 500. */
START_TEST(test_v1_export_import_round_trip)
{
    struct user u = user_new("v1-export");
    const char *id, *copy = uniq("conv-copy"), *body, *dup;
    const struct json_value *before, *after, *page;
    struct resp r;

    id = conv_new(
        &u, "{\"items\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},"
            "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
            "\"input_text\",\"text\":\"what is this?\"},{\"type\":"
            "\"input_image\",\"image_url\":\"data:image/png;base64,AAAA\","
            "\"detail\":\"low\"},{\"type\":\"input_file\",\"file_id\":"
            "\"file-1\"}]},"
            "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":"
            "\"summary_text\",\"text\":\"s\"}],\"encrypted_content\":\"e\"},"
            "{\"type\":\"function_call\",\"id\":\"fc_mine\",\"call_id\":"
            "\"call_1\",\"name\":\"look\",\"arguments\":\"{\\\"q\\\":1}\","
            "\"status\":\"completed\"},"
            "{\"type\":\"function_call_output\",\"call_id\":\"call_1\","
            "\"output\":[{\"type\":\"input_text\",\"text\":\"a cat\"}]},"
            "{\"type\":\"web_search_call\",\"id\":\"ws_1\",\"status\":"
            "\"completed\",\"action\":{\"type\":\"search\",\"query\":\"q\"}},"
            "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{"
            "\"type\":\"output_text\",\"text\":\"A cat.\",\"annotations\":"
            "[]},{\"type\":\"refusal\",\"refusal\":\"no\"}]}]}");
    /* and one written through /api, shown with a derived id */
    r = api(&u, "POST", str(SESSIONS "/%s/messages", id),
            "{\"role\":\"user\",\"content\":\"native\"}");
    expect_status(r, 201);
    r = api(&u, "GET", str("%s?order=asc&limit=100", items_path(id)), NULL);
    before = expect_list_v1(r, 8, false);

    r = api(&u, "GET", str(SESSIONS "/%s/export?format=json", id), NULL);
    expect_status(r, 200);
    ck_assert_str_eq(jstr(jarr(r.json, "messages")->u.a.items[2], "item_id"),
                     "rs_1");
    ck_assert_str_eq(
        jstr(jobj(jarr(r.json, "messages")->u.a.items[2], "item"), "type"),
        "reasoning");
    ck_assert_ptr_null(
        json_get(jarr(r.json, "messages")->u.a.items[7], "item"));
    body = replace_all(r.body, id, copy);
    r = api(&u, "POST", SESSIONS "/import", body);
    expect_session(r, 201);
    r = api(&u, "GET", str("%s?order=asc&limit=100", items_path(copy)), NULL);
    after = expect_list_v1(r, 8, false);
    ck_assert_str_eq(json_text(after), json_text(before));
    /* newest first, and paging by the ids it kept */
    r = api(&u, "GET",
            str("%s?order=desc&limit=3&after=%s", items_path(copy),
                jstr(before->u.a.items[6], "id")),
            NULL);
    page = expect_list_v1(r, 3, true);
    ck_assert_str_eq(json_text(page->u.a.items[0]),
                     json_text(before->u.a.items[5]));
    ck_assert_str_eq(json_text(page->u.a.items[2]),
                     json_text(before->u.a.items[3]));
    for (size_t i = 0; i < 8; i++) {
        const char *item = jstr(before->u.a.items[i], "id");

        r = api(&u, "GET", item_path(copy, item), NULL);
        expect_status(r, 200);
        ck_assert_str_eq(json_text(r.json), json_text(before->u.a.items[i]));
    }
    /* the ids it kept are taken in the new conversation */
    r = api(&u, "POST", items_path(copy),
            str("{\"items\":[{\"type\":\"reasoning\",\"id\":%s}]}",
                jq(jstr(before->u.a.items[0], "id"))));
    expect_v1_error(r, 400, "validation_error", "items[0].id");
    /* the original is untouched */
    r = api(&u, "GET", str("%s?order=asc&limit=100", items_path(id)), NULL);
    ck_assert_str_eq(json_text(expect_list_v1(r, 8, false)), json_text(before));

    /* an id twice in one import: 400 naming the second, nothing made */
    dup = str("{\"session\":{\"session_id\":\"%s\"},\"messages\":["
              "{\"role\":\"user\",\"content\":\"x\",\"item_id\":\"a\"},"
              "{\"role\":\"assistant\",\"content\":\"\",\"item_id\":\"a\","
              "\"item\":{\"type\":\"reasoning\"}}]}",
              uniq("dup"));
    r = api(&u, "POST", SESSIONS "/import", dup);
    assert_error(r, 400, "validation_error", "messages[1].item_id");
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{},\"messages\":[{\"role\":\"assistant\","
            "\"content\":\"\",\"item\":{\"type\":\"reasoning\",\"x\":{"
            "\"$gt\":1}}}]}");
    assert_error(r, 400, "validation_error", "messages[0].item");
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{},\"messages\":[{\"role\":\"user\",\"content\":"
            "\"edited\",\"item\":{\"role\":\"user\",\"content\":\"x\"}}]}");
    assert_error(r, 400, "validation_error", "messages[0].content");
}
END_TEST

/* A model's tool calls, as the conversation endpoint stores them
 * (extra_data.tool_calls[] on the assistant's reply, the results as tool
 * messages), read through /v1 as function_call and function_call_output
 * items, paged one by one both ways, and kept across export and import. */
START_TEST(test_v1_tool_calls_are_items)
{
    struct user u = user_new("v1-calls");
    const char *sid = uniq("calls"), *copy = uniq("calls-copy"), *after;
    const struct json_value *all, *data;
    const char *const types[] = {"message",
                                 "message",
                                 "function_call",
                                 "function_call",
                                 "function_call_output",
                                 "function_call_output",
                                 "message"};
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api(
        &u, "POST", str(SESSIONS "/%s/messages", sid),
        "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":\"Looking.\",\"extra_data\":{"
        "\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\","
        "\"function\":{\"name\":\"weather\",\"arguments\":"
        "\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_b\",\"type\":"
        "\"function\",\"function\":{\"name\":\"time\",\"arguments\":"
        "\"{}\"}}]}},"
        "{\"role\":\"tool\",\"content\":\"21\",\"tool_call_id\":\"call_a\"},"
        "{\"role\":\"tool\",\"content\":\"noon\",\"tool_call_id\":"
        "\"call_b\"},"
        "{\"role\":\"assistant\",\"content\":\"21 at noon.\"}]}");
    expect_status(r, 201);

    r = api(&u, "GET", str("%s?order=asc", items_path(sid)), NULL);
    all = expect_list_v1(r, 7, false);
    for (size_t i = 0; i < 7; i++)
        ck_assert_str_eq(jstr(all->u.a.items[i], "type"), types[i]);
    expect_json(all->u.a.items[2],
                str("{\"id\":\"%s.0\",\"type\":\"function_call\",\"status\":"
                    "\"completed\",\"call_id\":\"call_a\",\"name\":\"weather\","
                    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}",
                    jstr(all->u.a.items[1], "id")));
    ck_assert_str_eq(jstr(all->u.a.items[3], "id"),
                     str("%s.1", jstr(all->u.a.items[1], "id")));
    ck_assert_str_eq(jstr(all->u.a.items[4], "call_id"), "call_a");
    ck_assert_str_eq(jstr(all->u.a.items[4], "output"), "21");
    ck_assert_str_eq(jstr(all->u.a.items[5], "call_id"), "call_b");

    /* one item a page, both ways, by the ids shown */
    for (int desc = 0; desc < 2; desc++) {
        after = NULL;
        for (size_t i = 0; i < 7; i++) {
            size_t k = desc ? 6 - i : i;

            r = api(&u, "GET",
                    after == NULL
                        ? str("%s?order=%s&limit=1", items_path(sid),
                              desc ? "desc" : "asc")
                        : str("%s?order=%s&limit=1&after=%s", items_path(sid),
                              desc ? "desc" : "asc", after),
                    NULL);
            data = expect_list_v1(r, 1, i < 6);
            ck_assert_str_eq(json_text(data->u.a.items[0]),
                             json_text(all->u.a.items[k]));
            after = jstr(data->u.a.items[0], "id");
        }
    }
    r = api(&u, "GET", item_path(sid, jstr(all->u.a.items[3], "id")), NULL);
    expect_status(r, 200);
    ck_assert_str_eq(json_text(r.json), json_text(all->u.a.items[3]));

    /* exported and imported: the same items with the same ids */
    r = api(&u, "GET", str(SESSIONS "/%s/export?format=json", sid), NULL);
    expect_status(r, 200);
    r = api(&u, "POST", SESSIONS "/import", replace_all(r.body, sid, copy));
    expect_session(r, 201);
    r = api(&u, "GET", str("%s?order=asc", items_path(copy)), NULL);
    ck_assert_str_eq(json_text(expect_list_v1(r, 7, false)), json_text(all));

    /* deleting a call deletes the reply, its text and both calls */
    r = api(&u, "DELETE", item_path(sid, jstr(all->u.a.items[2], "id")), NULL);
    expect_conv(r, sid);
    r = api(&u, "GET", str("%s?order=asc", items_path(sid)), NULL);
    data = expect_list_v1(r, 4, false);
    ck_assert_str_eq(jstr(data->u.a.items[1], "type"), "function_call_output");
}
END_TEST

START_TEST(test_v1_session_is_a_conversation)
{
    struct user u = user_new("v1-native");
    const char *sid = uniq("native");
    const struct json_value *data;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\",\"metadata\":{\"n\":3,"
                         "\"o\":{\"a\":[1]},\"s\":\"x\"}}",
                         sid));
    r = api(&u, "POST", str(SESSIONS "/%s/messages", sid),
            "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
            "{\"role\":\"developer\",\"content\":\"D\"},"
            "{\"role\":\"assistant\",\"content\":\"{\\\"q\\\":1}\","
            "\"tool_call_id\":\"c9\",\"tool_name\":\"f\"},"
            "{\"role\":\"tool\",\"content\":\"out\",\"tool_call_id\":\"c9\"},"
            "{\"role\":\"assistant\",\"content\":\"A\"}]}");
    expect_status(r, 201);

    r = api(&u, "GET", conv_path(sid), NULL);
    expect_json(jobj(expect_conv(r, sid), "metadata"),
                "{\"n\":\"3\",\"o\":\"{\\\"a\\\":[1]}\",\"s\":\"x\"}");
    r = api(&u, "GET", str("%s?order=asc", items_path(sid)), NULL);
    data = expect_list_v1(r, 5, false);
    expect_json(data->u.a.items[0],
                str("{\"id\":%s,\"type\":\"message\",\"status\":\"completed\","
                    "\"role\":\"system\",\"content\":[{\"type\":\"input_text\","
                    "\"text\":\"S\"}]}",
                    jq(jstr(data->u.a.items[0], "id"))));
    ck_assert_str_eq(jstr(data->u.a.items[1], "role"), "developer");
    expect_json(data->u.a.items[2],
                str("{\"id\":%s,\"type\":\"function_call\",\"status\":"
                    "\"completed\",\"call_id\":\"c9\",\"name\":\"f\","
                    "\"arguments\":\"{\\\"q\\\":1}\"}",
                    jq(jstr(data->u.a.items[2], "id"))));
    expect_json(data->u.a.items[3],
                str("{\"id\":%s,\"type\":\"function_call_output\",\"status\":"
                    "\"completed\",\"call_id\":\"c9\",\"output\":\"out\"}",
                    jq(jstr(data->u.a.items[3], "id"))));
    expect_json(data->u.a.items[4],
                str("{\"id\":%s,\"type\":\"message\",\"status\":\"completed\","
                    "\"role\":\"assistant\",\"content\":[{\"type\":"
                    "\"output_text\",\"text\":\"A\",\"annotations\":[]}]}",
                    jq(jstr(data->u.a.items[4], "id"))));
    /* ids are the messages' UUIDs, without dashes */
    r = api(&u, "GET", str(SESSIONS "/%s/messages?limit=1", sid), NULL);
    {
        const char *uuid = jstr(jarr(r.json, "items")->u.a.items[0], "id");
        char hex[33];
        size_t n = 0;

        for (const char *p = uuid; *p != '\0'; p++)
            if (*p != '-')
                hex[n++] = *p;
        hex[n] = '\0';
        ck_assert_str_eq(jstr(data->u.a.items[0], "id"), str("msg_%s", hex));
    }
    /* deleted through /v1: gone from /api */
    r = api(&u, "DELETE", conv_path(sid), NULL);
    expect_status(r, 200);
    r = api(&u, "GET", session_path(sid), NULL);
    expect_status(r, 404);
}
END_TEST

Suite *
e2e_openai_suite(void)
{
    Suite *s = suite_create("e2e-openai");
    TCase *t = tcase(s, "v1", 60);

    tcase_add_test(t, test_v1_routes);
    tcase_add_test(t, test_v1_error_classes);
    tcase_add_test(t, test_v1_limits);
    tcase_add_test(t, test_v1_paging);
    tcase_add_test(t, test_v1_given_ids);
    tcase_add_test(t, test_v1_isolation);
    tcase_add_test(t, test_v1_conversation_is_a_session);
    tcase_add_test(t, test_v1_session_is_a_conversation);
    tcase_add_test(t, test_v1_export_import_round_trip);
    tcase_add_test(t, test_v1_tool_calls_are_items);

    /* nginx's rate limit (tests/apache.sh leaves out the "nginx" tag) */
    t = tcase(s, "v1-ratelimit", 120);
    tcase_set_tags(t, "nginx");
    tcase_add_test(t, test_v1_rate_limited);
    return s;
}

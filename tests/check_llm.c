/*
 * check_llm.c - src/llm.c against tests/model_server.mjs over real
 * sockets: what is sent (message order, tool-call pairing, the token
 * budget, forwarded tools and tool_choice, the key and extra headers),
 * what comes back (plain and streamed replies, tool calls assembled from
 * fragments, usage), and every way the model server can fail (HTTP
 * errors with their message, 429 with Retry-After and 5xx retried within
 * the deadline, timeouts, a never-ending stream, a stream cut in the
 * middle, malformed events, a reply too large), the callbacks stopping a
 * transfer, TLS verification and the proxy variables.
 *
 * tests/llm.sh starts the servers and sets PARLEY_MODEL_URL (the plain
 * server, http://127.0.0.1:PORT), PARLEY_MODEL_TLS_URL (the same server
 * script behind a self-signed certificate), PARLEY_MODEL_CA (that
 * certificate) and PARLEY_TEST_TMP (a directory for key files).  The
 * cases share the servers, so they run one after the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "arena.h"
#include "buf.h"
#include "clock.h"
#include "e2e_http.h"
#include "json.h"
#include "llm.h"
#include "retry.h"
#include "rng.h"
#include "utf8.h"

#define SECRET_KEY "sk-test-0123456789abcdef"

static struct e2e_http_client ctl_client;
static const char *model_url; /* http://127.0.0.1:PORT */
static char base_v1[256];     /* model_url + "/v1" */
static char key_file[512];
static struct arena ta;

/* --- helpers ------------------------------------------------------------- */

static double
time_scale(void)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    double f = m != NULL ? atof(m) : 1.0;

    return f > 1.0 ? f : 1.0;
}

/* Bounds on elapsed time stretch under valgrind as Check's timeouts do. */
static int64_t
at_most(int64_t ms)
{
    return (int64_t)((double)ms * time_scale());
}

/* JSON written with ' for " so the scripts stay readable. */
static const char *
q(const char *s)
{
    char *d = arena_strdup(&ta, s);

    for (char *p = d; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static const struct json_value *
parse(const char *text, size_t len)
{
    struct error err = ERROR_INIT;
    const struct json_value *v = json_parse(&ta, text, len, 64, &err);

    ck_assert_msg(v != NULL, "bad JSON (%s): %.200s", err.message, text);
    return v;
}

static const char *
encode(const struct json_value *v)
{
    struct buf b;
    const char *s;

    buf_init(&b);
    json_write_value(&b, v);
    s = arena_strndup(&ta, b.data, b.len);
    buf_release(&b);
    return s;
}

static const struct json_value *
ctl(const char *method, const char *target, const char *body)
{
    static const char *const headers[] = {"Content-Type: application/json",
                                          NULL};
    struct e2e_http_request req = {
        method, target, headers, body, body != NULL ? strlen(body) : 0,
        NULL,   false};
    struct e2e_http_response r;
    const struct json_value *v;

    ck_assert_int_eq(e2e_http_do(&ctl_client, &req, &r), 0);
    ck_assert_msg(r.status == 200, "%s %s: %d %s", method, target, r.status,
                  r.body);
    v = parse(r.body, r.body_len);
    e2e_http_response_release(&r);
    return v;
}

static void
script(const char *json)
{
    ctl("POST", "/_script", q(json));
}

static const struct json_value *
recorded(void)
{
    const struct json_value *v = ctl("GET", "/_requests", NULL);

    ck_assert_int_eq(v->type, JSON_ARRAY);
    return v;
}

static size_t
n_recorded(void)
{
    return recorded()->u.a.len;
}

static const struct json_value *
last_request(void)
{
    const struct json_value *all = recorded();

    ck_assert_uint_gt(all->u.a.len, 0);
    return all->u.a.items[all->u.a.len - 1];
}

static const char *
jstr(const struct json_value *o, const char *key)
{
    const struct json_value *v = json_get(o, key);

    return v != NULL && v->type == JSON_STRING ? v->u.s.ptr : NULL;
}

static const char *
header(const struct json_value *req, const char *name)
{
    return jstr(json_get(req, "headers"), name);
}

static void
expect_body(const struct json_value *req, const char *expected)
{
    const struct json_value *body = json_get(req, "body");
    const char *want = encode(parse(q(expected), strlen(expected)));

    ck_assert_msg(body != NULL && body->type == JSON_OBJECT,
                  "the request had no JSON body");
    ck_assert_str_eq(encode(body), want);
}

/* Waits (bounded) until the last request's outcome is `want`. */
static void
expect_outcome(const char *want)
{
    int64_t until = clock_mono_ms() + at_most(5000);
    const char *got = NULL;

    while (clock_mono_ms() < until) {
        got = jstr(last_request(), "outcome");
        if (got != NULL && strcmp(got, want) == 0)
            return;
        clock_sleep_ms(50);
    }
    ck_abort_msg("outcome %s, not %s", got != NULL ? got : "(none)", want);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static const char *
tmp_path(const char *name)
{
    const char *dir = getenv("PARLEY_TEST_TMP");

    return arena_printf(&ta, "%s/%s", dir != NULL ? dir : "/tmp", name);
}

static struct llm_settings
settings(void)
{
    struct llm_settings s;

    memset(&s, 0, sizeof(s));
    s.base_url = base_v1;
    s.api_key_file = key_file;
    s.timeout_ms = 5000;
    return s;
}

static struct llm_client *
client_with(const struct llm_settings *s)
{
    struct error err = ERROR_INIT;
    struct llm_client *c = llm_client_new(s, &err);

    ck_assert_msg(c != NULL, "llm_client_new: %s", err.message);
    return c;
}

static struct llm_client *
client(void)
{
    struct llm_settings s = settings();

    return client_with(&s);
}

static const struct llm_message two_messages[] = {
    {LLM_ROLE_SYSTEM, "You are terse.", NULL, 0, NULL},
    {LLM_ROLE_USER, "Say hello.", NULL, 0, NULL},
};

static struct llm_request
simple(bool stream)
{
    struct llm_request r;

    memset(&r, 0, sizeof(r));
    r.model = "test-model";
    r.messages = two_messages;
    r.n_messages = 2;
    r.stream = stream;
    return r;
}

/* What the callbacks saw. */
struct seen {
    struct buf text; /* content pieces, joined */
    struct buf
        pieces; /* every delta, "c:<text>|" or "t<i>:<id>:<name>:<args>|" */
    int n_content;
    int n_tool;
    int stop_after;       /* the delta callback fails on this delta; 0: never */
    int64_t first_ms;     /* when the first delta came */
    int64_t last_ms;      /* and the last */
    int64_t poll_stop_at; /* poll fails from this time on; 0: never */
    int polls;
};

static void
seen_init(struct seen *s)
{
    memset(s, 0, sizeof(*s));
    buf_init(&s->text);
    buf_init(&s->pieces);
}

static void
seen_release(struct seen *s)
{
    buf_release(&s->text);
    buf_release(&s->pieces);
}

static bool
on_delta(void *arg, const struct llm_delta *d, struct error *err)
{
    struct seen *s = arg;
    int64_t now = clock_mono_ms();

    if (s->first_ms == 0)
        s->first_ms = now;
    s->last_ms = now;
    ck_assert_uint_eq(d->text[d->len], '\0');
    if (d->kind == LLM_DELTA_CONTENT) {
        ck_assert_uint_gt(d->len, 0);
        s->n_content++;
        buf_add(&s->text, d->text, d->len);
        buf_printf(&s->pieces, "c:%s|", d->text);
    } else {
        s->n_tool++;
        buf_printf(&s->pieces, "t%d:%s:%s:%s|", d->tool_index,
                   d->tool_id != NULL ? d->tool_id : "",
                   d->tool_name != NULL ? d->tool_name : "", d->text);
    }
    if (s->stop_after > 0 && s->n_content + s->n_tool >= s->stop_after)
        return error_set(err, ERR_UNAVAILABLE, NULL, "the client went away");
    return true;
}

static bool
on_poll(void *arg, struct error *err)
{
    struct seen *s = arg;

    s->polls++;
    if (s->poll_stop_at > 0 && clock_mono_ms() >= s->poll_stop_at)
        return error_set(err, ERR_UNAVAILABLE, NULL, "deadline of the client");
    return true;
}

static int64_t
real_now(void *env)
{
    (void)env;
    return clock_mono_ms();
}

static void
real_sleep(void *env, int64_t ms)
{
    (void)env;
    clock_sleep_ms(ms);
}

static uint64_t
real_random(void *env, uint64_t n)
{
    (void)env;
    return rng_upto(n);
}

static struct retry_policy
policy(int attempts)
{
    struct retry_policy p;

    memset(&p, 0, sizeof(p));
    p.max_attempts = attempts;
    p.base_ms = 20;
    p.max_ms = 100;
    p.now_ms = real_now;
    p.sleep_ms = real_sleep;
    p.random_upto = real_random;
    return p;
}

/* One call with the collecting callbacks and a 10 s deadline. */
static bool
chat(struct llm_client *c, const struct llm_request *req, struct seen *s,
     const struct retry_policy *p, struct llm_reply *reply, struct error *err)
{
    struct llm_callbacks cb = {on_delta, on_poll, s};

    error_clear(err);
    return llm_chat(c, req, &cb, clock_mono_ms() + 10000, p, &ta, reply, err);
}

static void
expect_error(const struct error *err, enum error_code code, const char *part)
{
    ck_assert_msg(err->code == code, "error %d (%s), not %d", err->code,
                  err->message, code);
    ck_assert_msg(strstr(err->message, part) != NULL, "\"%s\" is not in \"%s\"",
                  part, err->message);
    ck_assert_msg(strstr(err->message, SECRET_KEY) == NULL,
                  "the key is in \"%s\"", err->message);
}

static void
setup(void)
{
    arena_init(&ta, 65536);
    ctl("POST", "/_reset", "{}");
}

static void
teardown(void)
{
    arena_release(&ta);
}

/* --- what is sent and what comes back ------------------------------------ */

START_TEST(test_plain_reply)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    const struct json_value *r;

    seen_init(&s);
    script("[{'content': 'Hello, world é!', 'usage': {'prompt_tokens': 12, "
           "'completion_tokens': 5}}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "Hello, world é!");
    ck_assert_uint_eq(reply.content_len, strlen("Hello, world é!"));
    ck_assert_uint_eq(reply.n_tool_calls, 0);
    ck_assert_ptr_null(reply.tool_calls);
    ck_assert_str_eq(reply.finish_reason, "stop");
    ck_assert_int_eq(reply.prompt_tokens, 12);
    ck_assert_int_eq(reply.completion_tokens, 5);
    ck_assert_int_eq(reply.attempts, 1);
    ck_assert_int_eq(reply.http_status, 200);
    ck_assert(!reply.streamed);
    ck_assert_int_eq(s.n_content, 0); /* not streamed: no deltas */

    r = last_request();
    ck_assert_str_eq(jstr(r, "method"), "POST");
    ck_assert_str_eq(jstr(r, "path"), "/v1/chat/completions");
    ck_assert_str_eq(header(r, "authorization"), "Bearer " SECRET_KEY);
    ck_assert_str_eq(header(r, "content-type"), "application/json");
    ck_assert_str_eq(header(r, "accept"), "application/json");
    ck_assert_ptr_null(header(r, "expect"));
    ck_assert_ptr_nonnull(strstr(header(r, "user-agent"), "parley/"));
    expect_body(r, "{'model': 'test-model', 'messages': ["
                   "{'role': 'system', 'content': 'You are terse.'},"
                   "{'role': 'user', 'content': 'Say hello.'}]}");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* The system message first, the history in order with tool calls and
 * their results paired, the new message last; tools and tool_choice as
 * given; the token budget. */
START_TEST(test_request_shape)
{
    static const struct llm_tool_call calls[] = {
        {"call_a", "get_weather", "{\"city\":\"Paris\"}"},
        {"call_b", "get_time", NULL},
    };
    static const struct llm_message msgs[] = {
        {LLM_ROLE_SYSTEM, "Be useful.", NULL, 0, NULL},
        {LLM_ROLE_USER, "Weather and time in Paris?", NULL, 0, NULL},
        {LLM_ROLE_ASSISTANT, NULL, calls, 2, NULL},
        {LLM_ROLE_TOOL, "{\"temp\":21}", NULL, 0, "call_a"},
        {LLM_ROLE_TOOL, "12:00", NULL, 0, "call_b"},
        {LLM_ROLE_ASSISTANT, "21 degrees at noon.", NULL, 0, NULL},
        {LLM_ROLE_USER, "And \"tomorrow\"?\n", NULL, 0, NULL},
    };
    const char *tools = "[{'type': 'function', 'function': {'name': "
                        "'get_weather', 'parameters': {'type': 'object', "
                        "'properties': {'city': {'type': 'string'}}}}}]";
    const char *choice = "{'type': 'function', 'function': {'name': "
                         "'get_weather'}}";
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    req.messages = msgs;
    req.n_messages = sizeof(msgs) / sizeof(msgs[0]);
    req.tools = parse(q(tools), strlen(tools));
    req.tool_choice = parse(q(choice), strlen(choice));
    req.max_output_tokens = 256;
    script("[{'content': 'ok'}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    expect_body(
        last_request(),
        "{'model': 'test-model', 'messages': ["
        "{'role': 'system', 'content': 'Be useful.'},"
        "{'role': 'user', 'content': 'Weather and time in Paris?'},"
        "{'role': 'assistant', 'content': null, 'tool_calls': ["
        "{'id': 'call_a', 'type': 'function', 'function': {'name': "
        "'get_weather', 'arguments': '{\\'city\\':\\'Paris\\'}'}},"
        "{'id': 'call_b', 'type': 'function', 'function': {'name': "
        "'get_time', 'arguments': '{}'}}]},"
        "{'role': 'tool', 'content': '{\\'temp\\':21}', 'tool_call_id': "
        "'call_a'},"
        "{'role': 'tool', 'content': '12:00', 'tool_call_id': 'call_b'},"
        "{'role': 'assistant', 'content': '21 degrees at noon.'},"
        "{'role': 'user', 'content': 'And \\'tomorrow\\'?\\n'}],"
        "'max_tokens': 256,"
        "'tools': [{'type': 'function', 'function': {'name': 'get_weather', "
        "'parameters': {'type': 'object', 'properties': {'city': {'type': "
        "'string'}}}}}],"
        "'tool_choice': {'type': 'function', 'function': {'name': "
        "'get_weather'}}}");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

START_TEST(test_max_completion_tokens_field)
{
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    const struct json_value *body;

    seen_init(&s);
    set.max_tokens_field = "max_completion_tokens";
    c = client_with(&set);
    req.max_output_tokens = 99;
    script("[{'content': 'ok'}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    body = json_get(last_request(), "body");
    ck_assert_int_eq(json_get(body, "max_completion_tokens")->u.i, 99);
    ck_assert_ptr_null(json_get(body, "max_tokens"));
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

START_TEST(test_plain_tool_calls)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'tool_calls': [{'id': 'call_1', 'name': 'get_weather', "
           "'arguments': '{\\'city\\': \\'Oslo\\'}'}, {'id': 'call_2', "
           "'name': 'noop', 'arguments': ''}], 'usage': {'prompt_tokens': 3, "
           "'completion_tokens': 4}}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, ""); /* the server sent null */
    ck_assert_uint_eq(reply.n_tool_calls, 2);
    ck_assert_str_eq(reply.tool_calls[0].id, "call_1");
    ck_assert_str_eq(reply.tool_calls[0].name, "get_weather");
    ck_assert_str_eq(reply.tool_calls[0].arguments, "{\"city\": \"Oslo\"}");
    ck_assert_str_eq(reply.tool_calls[1].id, "call_2");
    ck_assert_str_eq(reply.tool_calls[1].name, "noop");
    ck_assert_str_eq(reply.tool_calls[1].arguments, "");
    ck_assert_str_eq(reply.finish_reason, "tool_calls");
    ck_assert_int_eq(reply.prompt_tokens, 3);
    ck_assert_int_eq(reply.completion_tokens, 4);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Without usage in the reply the counts say "not reported". */
START_TEST(test_no_usage)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'content': 'hi'}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_int_eq(reply.prompt_tokens, -1);
    ck_assert_int_eq(reply.completion_tokens, -1);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

START_TEST(test_stream_content)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    const struct json_value *r;

    seen_init(&s);
    /* 22 code points in pieces of 3: 8 deltas, "é" and "ö" never split. */
    script("[{'content': 'Héllo, streaming wörld', 'chunk_size': 3, "
           "'usage': {'prompt_tokens': 30, 'completion_tokens': 8}}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_int_eq(s.n_content, 8);
    ck_assert_int_eq(s.n_tool, 0);
    ck_assert_str_eq(s.pieces.data,
                     "c:Hél|c:lo,|c: st|c:rea|c:min|c:g w|c:örl|c:d|");
    ck_assert_str_eq(s.text.data, "Héllo, streaming wörld");
    ck_assert_str_eq(reply.content, "Héllo, streaming wörld");
    ck_assert_str_eq(reply.finish_reason, "stop");
    ck_assert_int_eq(reply.prompt_tokens, 30);
    ck_assert_int_eq(reply.completion_tokens, 8);
    ck_assert(reply.streamed);
    ck_assert_int_eq(reply.attempts, 1);

    r = last_request();
    ck_assert_str_eq(header(r, "accept"), "text/event-stream");
    ck_assert(json_get(json_get(r, "body"), "stream")->u.b);
    ck_assert(json_get(json_get(json_get(r, "body"), "stream_options"),
                       "include_usage")
                  ->u.b);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Tool calls streamed as fragments: the first of each names it, then its
 * arguments come in pieces; the reply assembles them. */
START_TEST(test_stream_tool_calls)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'content': 'Let me check.', 'chunk_size': 20, "
           "'args_chunk_size': 6, 'tool_calls': ["
           "{'id': 'call_1', 'name': 'get_weather', 'arguments': "
           "'{\\'city\\':\\'Oslo\\'}'},"
           "{'id': 'call_2', 'name': 'get_time', 'arguments': '{}'}], "
           "'usage': {'prompt_tokens': 1, 'completion_tokens': 2}}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(s.pieces.data, "c:Let me check.|"
                                    "t0:call_1:get_weather:|"
                                    "t0:::{\"city|"
                                    "t0:::\":\"Osl|"
                                    "t0:::o\"}|"
                                    "t1:call_2:get_time:|"
                                    "t1:::{}|");
    ck_assert_str_eq(reply.content, "Let me check.");
    ck_assert_uint_eq(reply.n_tool_calls, 2);
    ck_assert_str_eq(reply.tool_calls[0].id, "call_1");
    ck_assert_str_eq(reply.tool_calls[0].name, "get_weather");
    ck_assert_str_eq(reply.tool_calls[0].arguments, "{\"city\":\"Oslo\"}");
    ck_assert_str_eq(reply.tool_calls[1].id, "call_2");
    ck_assert_str_eq(reply.tool_calls[1].name, "get_time");
    ck_assert_str_eq(reply.tool_calls[1].arguments, "{}");
    ck_assert_str_eq(reply.finish_reason, "tool_calls");
    ck_assert_int_eq(reply.completion_tokens, 2);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Servers that leave out the fragments' index: a new id starts a new
 * call, a fragment with neither continues the last one. */
START_TEST(test_stream_tool_calls_without_index)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'events': ["
           "{'data': {'choices': [{'delta': {'tool_calls': [{'id': 'a', "
           "'function': {'name': 'f', 'arguments': '{\\'x\\':'}}]}}]}},"
           "{'data': {'choices': [{'delta': {'tool_calls': [{'function': "
           "{'arguments': '1}'}}]}}]}},"
           "{'data': {'choices': [{'delta': {'tool_calls': [{'id': 'b', "
           "'function': {'name': 'g', 'arguments': {'y': 2}}}]}, "
           "'finish_reason': 'tool_calls'}]}},"
           "'data: [DONE]']}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(s.pieces.data, "t0:a:f:{\"x\":|t0:::1}|t1:b:g:{\"y\":2}|");
    ck_assert_uint_eq(reply.n_tool_calls, 2);
    ck_assert_str_eq(reply.tool_calls[0].arguments, "{\"x\":1}");
    ck_assert_str_eq(reply.tool_calls[1].name, "g");
    ck_assert_str_eq(reply.tool_calls[1].arguments, "{\"y\":2}");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Pieces reach the callback as they arrive, not at the end. */
START_TEST(test_stream_is_incremental)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'chunks': ['a', 'b', 'c', 'd'], 'chunk_delay_ms': 200}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "abcd");
    ck_assert_int_eq(s.n_content, 4);
    /* Five gaps of 200 ms lie between the first event and the last
     * content piece's successor; the last piece comes >= 600 ms after
     * the first. */
    ck_assert_msg(s.last_ms - s.first_ms >= 550, "pieces %lld ms apart",
                  (long long)(s.last_ms - s.first_ms));
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* SSE as servers really write it: CRLF and bare CR line ends, comments,
 * "data:" without a space, events split across reads (sleeps between
 * partial writes), a data field over two lines, unknown fields. */
START_TEST(test_stream_wire_variants)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'events': ["
           "{'raw': ': keep-alive\\r\\n\\r\\n'},"
           "{'raw': 'data:{\\'choices\\':[{\\'index\\':0,\\'delta\\':"
           "{\\'content\\':\\'one \\'}}]}\\r\\n\\r\\n'},"
           "{'raw': 'id: 7\\rretry: 1000\\rdata: {\\'choices\\':[{\\'delta\\':"
           "{\\'content\\':'},"
           "{'sleep_ms': 50},"
           "{'raw': '\\'two \\'}}]}\\r\\r'},"
           "{'raw': 'event: message\\ndata: {\\'choices\\':\\n'},"
           "{'raw': 'data: [{\\'index\\':0,\\'delta\\':{\\'content\\':"
           "\\'three\\'},\\'finish_reason\\':\\'stop\\'}]}\\n\\n'},"
           "{'raw': 'data: {\\'choices\\':[],\\'usage\\':{\\'prompt_tokens\\'"
           ":4,\\'completion_tokens\\':3}}\\n\\n'},"
           "'data: [DONE]']}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(s.pieces.data, "c:one |c:two |c:three|");
    ck_assert_str_eq(reply.content, "one two three");
    ck_assert_str_eq(reply.finish_reason, "stop");
    ck_assert_int_eq(reply.prompt_tokens, 4);
    ck_assert_int_eq(reply.completion_tokens, 3);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* A stream that ends cleanly after its finish_reason but without
 * [DONE] is complete; one that ends before either is not. */
START_TEST(test_stream_end_without_done)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'events': [{'data': {'choices': [{'index': 0, 'delta': "
           "{'content': 'done'}, 'finish_reason': 'length'}]}}]},"
           "{'events': [{'data': {'choices': [{'index': 0, 'delta': "
           "{'content': 'half'}}]}}]}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "done");
    ck_assert_str_eq(reply.finish_reason, "length");

    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "ended before the reply was complete");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* A server that answers a streamed request with a plain JSON reply is
 * still understood, and its text reaches the callback in one piece. */
START_TEST(test_stream_answered_plainly)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'stream': false, 'content': 'all at once', 'usage': "
           "{'prompt_tokens': 2, 'completion_tokens': 3}}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(s.pieces.data, "c:all at once|");
    ck_assert_str_eq(reply.content, "all at once");
    ck_assert_int_eq(reply.completion_tokens, 3);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* One client, one connection, turn after turn. */
START_TEST(test_connection_reused)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    const struct json_value *all;

    seen_init(&s);
    script("[{'content': 'one'}, {'content': 'two', 'stream': true}, "
           "{'content': 'three'}]");
    for (int i = 0; i < 3; i++)
        ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "three");
    all = recorded();
    ck_assert_uint_eq(all->u.a.len, 3);
    ck_assert_int_eq(json_get(all->u.a.items[0], "remote_port")->u.i,
                     json_get(all->u.a.items[2], "remote_port")->u.i);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* --- failures ------------------------------------------------------------ */

START_TEST(test_http_error_message)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct retry_policy p = policy(3);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'status': 400, 'error': {'message': 'Invalid value for "
           "messages: bad\\nrole', 'type': 'invalid_request_error'}}]");
    ck_assert(!chat(c, &req, &s, &p, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "answered 400: Invalid");
    /* Control characters do not reach the message. */
    ck_assert_ptr_nonnull(strstr(err.message, "bad role"));
    ck_assert_int_eq(err.retry, RETRY_NEVER);
    ck_assert_int_eq(reply.attempts, 1); /* a 400 is not retried */
    ck_assert_int_eq(reply.http_status, 400);
    ck_assert_uint_eq(n_recorded(), 1);

    /* Other shapes of error body, and none at all. */
    script("[{'status': 404, 'body': '{\\'error\\': \\'model not found\\'}'},"
           "{'status': 422, 'body': '{\\'detail\\': \\'bad field\\'}'},"
           "{'status': 502, 'body': '<html>Bad Gateway</html>', "
           "'content_type': 'text/html'}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "answered 404: model not found");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "answered 422: bad field");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    ck_assert_str_eq(err.message, "the model server answered 502");
    ck_assert_int_eq(err.retry, RETRY_SAFE);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* A model server that echoes the key (or an extra header's value) does not
 * get it into the error message; a long message is cut, at a character
 * boundary. */
START_TEST(test_error_message_redacted_and_bounded)
{
    struct llm_settings set = settings();
    const char *hfile = tmp_path("headers-redact");
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    write_file(hfile, "X-Secret-Token: tok-987654321\n");
    set.headers_file = hfile;
    c = client_with(&set);
    script("[{'status': 401, 'error': {'message': 'Incorrect API key "
           "provided: " SECRET_KEY " (and tok-987654321)'}},"
           "{'status': 400, 'error': {'message': 'ééééééééééééééééééééééééé"
           "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé"
           "éééééééééééééééééééééééééééééééééé'}}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "answered 401: Incorrect API key");
    ck_assert_ptr_nonnull(strstr(err.message, "[redacted]"));
    ck_assert_ptr_null(strstr(err.message, "tok-987654321"));
    ck_assert_str_eq(header(last_request(), "x-secret-token"), "tok-987654321");

    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    ck_assert_uint_lt(strlen(err.message), sizeof(err.message));
    ck_assert(utf8_valid(err.message, strlen(err.message)));
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* 429 with Retry-After: waited for, then retried. */
START_TEST(test_429_retry_after)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct retry_policy p = policy(3);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    int64_t t0;

    seen_init(&s);
    script("[{'status': 429, 'retry_after': 1, 'error': {'message': "
           "'Rate limit reached'}}, {'content': 'finally'}]");
    t0 = clock_mono_ms();
    ck_assert_msg(chat(c, &req, &s, &p, &reply, &err), "%s", err.message);
    ck_assert_int_ge(clock_mono_ms() - t0, 1000);
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(3000));
    ck_assert_str_eq(reply.content, "finally");
    ck_assert_int_eq(reply.attempts, 2);
    ck_assert_uint_eq(n_recorded(), 2);
    ck_assert_int_gt(s.polls, 0); /* asked between the tries */

    /* retry-after-ms wins over Retry-After. */
    script("[{'status': 429, 'retry_after': 30, 'headers': "
           "{'retry-after-ms': '300'}}, {'content': 'soon'}]");
    t0 = clock_mono_ms();
    ck_assert_msg(chat(c, &req, &s, &p, &reply, &err), "%s", err.message);
    ck_assert_int_ge(clock_mono_ms() - t0, 300);
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(2000));
    ck_assert_int_eq(reply.attempts, 2);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* A Retry-After past the deadline is not waited for. */
START_TEST(test_retry_after_past_deadline)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct retry_policy p = policy(3);
    struct llm_callbacks cb = {NULL, NULL, NULL};
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    int64_t t0 = clock_mono_ms();

    script("[{'status': 429, 'retry_after': 30, 'error': {'message': "
           "'slow down'}}, {'content': 'never asked'}]");
    ck_assert(!llm_chat(c, &req, &cb, t0 + 2000, &p, &ta, &reply, &err));
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(1000));
    expect_error(&err, ERR_UPSTREAM, "answered 429: slow down");
    ck_assert_int_eq(err.retry, RETRY_SAFE);
    ck_assert_int_eq(reply.retry_after_ms, 30000);
    ck_assert_int_eq(reply.attempts, 1);
    ck_assert_uint_eq(n_recorded(), 1);
    llm_client_free(c);
}
END_TEST

/* 500 and 503 are retried up to the policy's attempts, then fail with the
 * last answer; without a policy there is one attempt. */
START_TEST(test_5xx_retried)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct retry_policy p = policy(3);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'status': 500, 'times': 2}, {'content': 'third time'}]");
    ck_assert_msg(chat(c, &req, &s, &p, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "third time");
    ck_assert_int_eq(reply.attempts, 3);

    ctl("POST", "/_reset", "{}");
    script("[{'status': 503, 'times': 3, 'error': {'message': "
           "'overloaded'}}, {'content': 'not reached'}]");
    ck_assert(!chat(c, &req, &s, &p, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "answered 503: overloaded");
    ck_assert_int_eq(err.retry, RETRY_SAFE);
    ck_assert_int_eq(reply.attempts, 3);
    ck_assert_uint_eq(n_recorded(), 3);

    ctl("POST", "/_reset", "{}");
    script("[{'status': 500}, {'content': 'not reached'}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "answered 500: scripted error");
    ck_assert_int_eq(reply.attempts, 1);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Once a piece was handed on, a failure is final, whatever the policy. */
START_TEST(test_stream_cut_not_retried)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct retry_policy p = policy(3);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'content': 'abcdefgh', 'chunk_size': 2, 'cut_after': 3}, "
           "{'content': 'second try'}]");
    ck_assert(!chat(c, &req, &s, &p, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "broke its reply off");
    ck_assert_str_eq(s.text.data, "abcd"); /* role chunk, "ab", "cd" */
    ck_assert(reply.streamed);
    ck_assert_int_eq(reply.attempts, 1);
    ck_assert_uint_eq(n_recorded(), 1);
    ck_assert_str_eq(reply.content, "");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Cut before any piece: still a failure (not a retryable one). */
START_TEST(test_stream_cut_before_content)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'content': 'abc', 'cut_after': 1}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "broke its reply off");
    ck_assert(!reply.streamed);
    ck_assert_int_eq(s.n_content, 0);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

START_TEST(test_malformed_event)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'events': [{'data': {'choices': [{'index': 0, 'delta': "
           "{'content': 'fine'}}]}}, 'data: {\\'choices\\': [', "
           "{'data': {'choices': [{'index': 0, 'delta': {'content': "
           "'never'}}]}}, 'data: [DONE]']},"
           "{'events': [{'data': {'choices': [{'index': 0, 'delta': "
           "{'content': 5}}]}}, 'data: [DONE]']},"
           "{'events': [{'data': ['not', 'an', 'object']}, 'data: [DONE]']},"
           "{'events': [{'data': {'choices': [{'index': 0, 'delta': "
           "{'tool_calls': 'nope'}}]}}, 'data: [DONE]']}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "malformed event");
    ck_assert_str_eq(s.pieces.data, "c:fine|");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "content that is not text");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "malformed event");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "malformed tool call");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

START_TEST(test_malformed_reply)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'body': 'this is not JSON'},"
           "{'body': '{\\'id\\': \\'x\\'}'},"
           "{'body': '{\\'choices\\': []}'},"
           "{'body': '{\\'error\\': {\\'message\\': \\'backend exploded\\'}}'},"
           "{'body': '{\\'choices\\': [{\\'index\\': 0, \\'message\\': "
           "{\\'content\\': \\'ok\\'}}]'}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "malformed reply");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "without a message");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "without a message");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "failed: backend exploded");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err)); /* cut JSON */
    expect_error(&err, ERR_UPSTREAM, "malformed reply");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* An error event part way: the pieces before it were handed on, the call
 * fails with the server's words. */
START_TEST(test_error_mid_stream)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    script("[{'events': [{'data': {'choices': [{'index': 0, 'delta': "
           "{'content': 'partial'}}]}}, {'data': {'error': {'message': "
           "'The server had an error while processing your request.'}}}, "
           "'data: [DONE]']},"
           "{'events': ['event: error\\ndata: {\\'message\\': \\'gone\\'}']}]");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM,
                 "failed mid-stream: The server had an error");
    ck_assert_str_eq(s.text.data, "partial");
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "failed mid-stream: gone");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* A server slower than timeout_ms: 504, after about timeout_ms. */
START_TEST(test_timeout_before_headers)
{
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct retry_policy p = policy(3);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    int64_t t0;

    seen_init(&s);
    set.timeout_ms = 500;
    c = client_with(&set);
    script("[{'delay_ms': 3000, 'content': 'too late'}]");
    t0 = clock_mono_ms();
    ck_assert(!chat(c, &req, &s, &p, &reply, &err));
    ck_assert_int_ge(clock_mono_ms() - t0, 450);
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(2000));
    expect_error(&err, ERR_UPSTREAM_TIMEOUT, "within 500 ms");
    ck_assert_int_eq(reply.attempts, 1); /* a timeout is not retried */
    expect_outcome("client_closed");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* The caller's deadline cuts an attempt shorter than timeout_ms; none
 * left, no request at all. */
START_TEST(test_deadline_bounds_attempt)
{
    struct llm_client *c = client(); /* timeout_ms 5000 */
    struct llm_request req = simple(true);
    struct llm_callbacks cb = {NULL, NULL, NULL};
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    int64_t t0 = clock_mono_ms();

    script("[{'delay_ms': 3000, 'content': 'too late'}]");
    ck_assert(!llm_chat(c, &req, &cb, t0 + 400, NULL, &ta, &reply, &err));
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(1500));
    expect_error(&err, ERR_UPSTREAM_TIMEOUT, "did not answer within");

    ck_assert(
        !llm_chat(c, &req, &cb, clock_mono_ms() - 1, NULL, &ta, &reply, &err));
    expect_error(&err, ERR_UPSTREAM_TIMEOUT, "no time was left");
    ck_assert_uint_eq(n_recorded(), 1);
    llm_client_free(c);
}
END_TEST

/* A stream that never ends is stopped at the timeout, and the connection
 * with it. */
START_TEST(test_never_ending_stream)
{
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(true);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    int64_t t0;

    seen_init(&s);
    set.timeout_ms = 800;
    c = client_with(&set);
    script("[{'content': 'start', 'never_end': true, 'chunk_delay_ms': 20}]");
    t0 = clock_mono_ms();
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    ck_assert_int_ge(clock_mono_ms() - t0, 750);
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(2500));
    expect_error(&err, ERR_UPSTREAM_TIMEOUT, "within 800 ms");
    ck_assert_int_gt(s.n_content, 5);
    ck_assert(reply.streamed);
    expect_outcome("client_closed");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* The delta callback stops the transfer (the client went away): its error
 * comes back as given, at once, and the model server sees the close. */
START_TEST(test_delta_callback_stops)
{
    struct llm_client *c = client();
    struct llm_request req = simple(true);
    struct retry_policy p = policy(3);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    int64_t t0;

    seen_init(&s);
    s.stop_after = 3;
    script("[{'content': 'go', 'never_end': true, 'chunk_delay_ms': 20}]");
    t0 = clock_mono_ms();
    ck_assert(!chat(c, &req, &s, &p, &reply, &err));
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(1500));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_str_eq(err.message, "the client went away");
    ck_assert_int_eq(s.n_content, 3);
    ck_assert_int_eq(reply.attempts, 1);
    expect_outcome("client_closed");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* The poll callback stops a transfer still waiting for its answer. */
START_TEST(test_poll_callback_stops)
{
    struct llm_client *c = client();
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    int64_t t0;

    seen_init(&s);
    script("[{'delay_ms': 4000, 'content': 'too late'}]");
    t0 = clock_mono_ms();
    s.poll_stop_at = t0 + 300;
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    ck_assert_int_ge(clock_mono_ms() - t0, 300);
    ck_assert_int_lt(clock_mono_ms() - t0, at_most(1800));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_str_eq(err.message, "deadline of the client");
    ck_assert_int_gt(s.polls, 1);
    expect_outcome("client_closed");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

START_TEST(test_reply_too_large)
{
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    char big[3001];

    seen_init(&s);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    set.max_reply_bytes = 2000;
    c = client_with(&set);
    script(arena_printf(&ta,
                        "[{'content': '%s'}, {'content': '%s', 'chunk_size': "
                        "100}, {'tool_calls': [{'id': 'c', 'name': 'n', "
                        "'arguments': '%s'}]}, {'content': 'small'}]",
                        big, big, big));
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "larger than 2000 bytes");
    req.stream = true;
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "larger than 2000 bytes");
    ck_assert_uint_le(s.text.len, 2000);
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "larger than 2000 bytes");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "small");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* Nothing listens: a retryable "could not be reached". */
START_TEST(test_connect_refused)
{
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct retry_policy p = policy(2);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;

    seen_init(&s);
    /* Port 1 on loopback: nothing listens there in a test. */
    set.base_url = "http://127.0.0.1:1/v1";
    c = client_with(&set);
    ck_assert(!chat(c, &req, &s, &p, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "could not be reached");
    ck_assert_int_eq(err.retry, RETRY_SAFE);
    ck_assert_int_eq(reply.attempts, 2);
    ck_assert_int_eq(reply.http_status, 0);
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* No key file: no Authorization.  Extra headers are sent as written; a
 * trailing "/" on the base URL does not double. */
START_TEST(test_headers)
{
    struct llm_settings set = settings();
    const char *hfile = tmp_path("headers-ok");
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    const struct json_value *r;
    char url[300];

    seen_init(&s);
    write_file(hfile, "# for the proxy\n"
                      "OpenAI-Organization:org-123\r\n"
                      "\n"
                      "  X-Title :  parley tests  \n"
                      "Authorization: Basic dXNlcjpwdw==\n");
    snprintf(url, sizeof(url), "%s/", base_v1);
    set.base_url = url;
    set.api_key_file = NULL;
    set.headers_file = hfile;
    c = client_with(&set);
    script("[{'content': 'ok'}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    r = last_request();
    ck_assert_str_eq(jstr(r, "path"), "/v1/chat/completions");
    ck_assert_str_eq(header(r, "openai-organization"), "org-123");
    ck_assert_str_eq(header(r, "x-title"), "parley tests");
    ck_assert_str_eq(header(r, "authorization"), "Basic dXNlcjpwdw==");
    llm_client_free(c);

    set.headers_file = NULL;
    c = client_with(&set);
    script("[{'content': 'ok'}]");
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_ptr_null(header(last_request(), "authorization"));
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

static void
expect_bad_settings(const struct llm_settings *set, const char *param,
                    const char *part)
{
    struct error err = ERROR_INIT;

    ck_assert(!llm_settings_check(set, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
    ck_assert_msg(err.param != NULL && strcmp(err.param, param) == 0,
                  "param %s, not %s (%s)", err.param ? err.param : "(null)",
                  param, err.message);
    ck_assert_msg(strstr(err.message, part) != NULL, "\"%s\" not in \"%s\"",
                  part, err.message);
    ck_assert_msg(strstr(err.message, "s3cret") == NULL,
                  "a secret is in \"%s\"", err.message);
    error_clear(&err);
    ck_assert_ptr_null(llm_client_new(set, &err));
    ck_assert_int_eq(err.code, ERR_VALIDATION);
}

START_TEST(test_settings_checked)
{
    struct llm_settings set = settings();
    struct error err = ERROR_INIT;
    const char *f = tmp_path("bad-file");

    ck_assert_msg(llm_settings_check(&set, &err), "%s", err.message);

    set.base_url = "";
    expect_bad_settings(&set, "llm_base_url", "must be set");
    set.base_url = "ftp://example.com/v1";
    expect_bad_settings(&set, "llm_base_url", "http:// or https://");
    set.base_url = "https:///v1";
    expect_bad_settings(&set, "llm_base_url", "no host");
    set.base_url = "http://example.com/v 1";
    expect_bad_settings(&set, "llm_base_url", "space");
    set = settings();
    set.timeout_ms = 0;
    expect_bad_settings(&set, "llm_timeout_ms", "positive");
    set = settings();
    set.max_tokens_field = "max_new_tokens";
    expect_bad_settings(&set, "llm_max_tokens_field", "max_completion_tokens");
    set = settings();
    set.ca_file = "/nonexistent/ca.pem";
    expect_bad_settings(&set, "llm_ca_file", "cannot read");

    set = settings();
    set.api_key_file = "/nonexistent/key";
    expect_bad_settings(&set, "llm_api_key_file", "cannot open");
    write_file(f, " \n\n");
    set.api_key_file = f;
    expect_bad_settings(&set, "llm_api_key_file", "holds no key");
    write_file(f, "sk-s3cret part two\n");
    expect_bad_settings(&set, "llm_api_key_file", "printable ASCII");
    write_file(f, "sk-s3cret\r\nX-Injected: yes\n");
    expect_bad_settings(&set, "llm_api_key_file", "printable ASCII");

    set = settings();
    set.headers_file = f;
    write_file(f, "Good: one\nno colon s3cret\n");
    expect_bad_settings(&set, "llm_headers_file", "line 2: expected");
    write_file(f, "Bad Name: s3cret\n");
    expect_bad_settings(&set, "llm_headers_file", "line 1: expected");
    write_file(f, "X-Empty:   \n");
    expect_bad_settings(&set, "llm_headers_file", "X-Empty has no value");
    write_file(f, "x-a: 1\nhost: s3cret.example\n");
    expect_bad_settings(&set, "llm_headers_file", "line 2: host is set");
    write_file(f, "Content-Length: 5\n");
    expect_bad_settings(&set, "llm_headers_file", "is set by parley");
    write_file(f, "Authorization: Bearer s3cret\n");
    expect_bad_settings(&set, "llm_headers_file", "llm_api_key_file");
    write_file(f, "X-Ctl: a\001s3cret\n");
    expect_bad_settings(&set, "llm_headers_file", "control character");
    {
        struct buf many;

        buf_init(&many);
        for (int i = 0; i < 33; i++)
            buf_printf(&many, "X-H%d: v\n", i);
        write_file(f, many.data);
        buf_release(&many);
    }
    expect_bad_settings(&set, "llm_headers_file", "more than 32");
}
END_TEST

/* TLS peers are verified: a self-signed server fails, unless its
 * certificate is given as the CA. */
START_TEST(test_tls_verified)
{
    const char *tls = getenv("PARLEY_MODEL_TLS_URL");
    const char *ca = getenv("PARLEY_MODEL_CA");
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    char url[300];

    ck_assert_msg(tls != NULL && ca != NULL,
                  "PARLEY_MODEL_TLS_URL and PARLEY_MODEL_CA must be set");
    seen_init(&s);
    snprintf(url, sizeof(url), "%s/v1", tls);
    set.base_url = url;
    c = client_with(&set);
    ck_assert(!chat(c, &req, &s, NULL, &reply, &err));
    expect_error(&err, ERR_UPSTREAM, "could not be reached");
    ck_assert_int_eq(err.retry, RETRY_NEVER);
    llm_client_free(c);

    /* tests/llm.sh gave the TLS server a default reply. */
    set.ca_file = ca;
    c = client_with(&set);
    ck_assert_msg(chat(c, &req, &s, NULL, &reply, &err), "%s", err.message);
    ck_assert_str_eq(reply.content, "over TLS");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

/* http_proxy is honoured: the request goes to the proxy, in absolute
 * form, for a host that does not even resolve. */
START_TEST(test_proxy_variables)
{
    struct llm_settings set = settings();
    struct llm_client *c;
    struct llm_request req = simple(false);
    struct llm_reply reply;
    struct error err = ERROR_INIT;
    struct seen s;
    bool ok;

    seen_init(&s);
    set.base_url = "http://model.invalid/v1";
    c = client_with(&set);
    script("[{'content': 'via the proxy'}]");
    setenv("http_proxy", model_url, 1);
    ok = chat(c, &req, &s, NULL, &reply, &err);
    unsetenv("http_proxy");
    ck_assert_msg(ok, "%s", err.message);
    ck_assert_str_eq(reply.content, "via the proxy");
    ck_assert_str_eq(jstr(last_request(), "url"),
                     "http://model.invalid/v1/chat/completions");
    ck_assert_str_eq(header(last_request(), "authorization"),
                     "Bearer " SECRET_KEY);

    llm_client_free(c);

    /* A proxy where nothing listens, but no_proxy names the host: the
     * request goes straight to it. */
    c = client();
    script("[{'content': 'direct'}]");
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("no_proxy", "127.0.0.1", 1);
    ok = chat(c, &req, &s, NULL, &reply, &err);
    unsetenv("http_proxy");
    unsetenv("no_proxy");
    ck_assert_msg(ok, "%s", err.message);
    ck_assert_str_eq(jstr(last_request(), "url"), "/v1/chat/completions");
    seen_release(&s);
    llm_client_free(c);
}
END_TEST

static Suite *
llm_suite(void)
{
    Suite *s = suite_create("llm");
    TCase *tc = tcase_create("model_server");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_plain_reply);
    tcase_add_test(tc, test_request_shape);
    tcase_add_test(tc, test_max_completion_tokens_field);
    tcase_add_test(tc, test_plain_tool_calls);
    tcase_add_test(tc, test_no_usage);
    tcase_add_test(tc, test_stream_content);
    tcase_add_test(tc, test_stream_tool_calls);
    tcase_add_test(tc, test_stream_tool_calls_without_index);
    tcase_add_test(tc, test_stream_is_incremental);
    tcase_add_test(tc, test_stream_wire_variants);
    tcase_add_test(tc, test_stream_end_without_done);
    tcase_add_test(tc, test_stream_answered_plainly);
    tcase_add_test(tc, test_connection_reused);
    tcase_add_test(tc, test_http_error_message);
    tcase_add_test(tc, test_error_message_redacted_and_bounded);
    tcase_add_test(tc, test_429_retry_after);
    tcase_add_test(tc, test_retry_after_past_deadline);
    tcase_add_test(tc, test_5xx_retried);
    tcase_add_test(tc, test_stream_cut_not_retried);
    tcase_add_test(tc, test_stream_cut_before_content);
    tcase_add_test(tc, test_malformed_event);
    tcase_add_test(tc, test_malformed_reply);
    tcase_add_test(tc, test_error_mid_stream);
    tcase_add_test(tc, test_timeout_before_headers);
    tcase_add_test(tc, test_deadline_bounds_attempt);
    tcase_add_test(tc, test_never_ending_stream);
    tcase_add_test(tc, test_delta_callback_stops);
    tcase_add_test(tc, test_poll_callback_stops);
    tcase_add_test(tc, test_reply_too_large);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_settings_checked);
    tcase_add_test(tc, test_tls_verified);
    tcase_add_test(tc, test_proxy_variables);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    struct error err = ERROR_INIT;
    char ebuf[256];
    SRunner *sr;
    int failed;

    model_url = getenv("PARLEY_MODEL_URL");
    if (model_url == NULL) {
        fprintf(stderr, "check_llm: PARLEY_MODEL_URL is not set "
                        "(tests/llm.sh sets it)\n");
        return EXIT_FAILURE;
    }
    if (e2e_http_client_init(&ctl_client, model_url, ebuf, sizeof(ebuf)) != 0) {
        fprintf(stderr, "check_llm: %s\n", ebuf);
        return EXIT_FAILURE;
    }
    snprintf(base_v1, sizeof(base_v1), "%s/v1", model_url);
    {
        const char *dir = getenv("PARLEY_TEST_TMP");

        snprintf(key_file, sizeof(key_file), "%s/api-key",
                 dir != NULL ? dir : "/tmp");
    }
    {
        FILE *f = fopen(key_file, "w");

        if (f == NULL) {
            perror(key_file);
            return EXIT_FAILURE;
        }
        fputs(SECRET_KEY "\n", f);
        fclose(f);
    }
    /* Proxies of the machine must not take the loopback requests; one
     * case sets its own. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    rng_seed();
    if (llm_global_init(&err) != 0) {
        fprintf(stderr, "check_llm: %s\n", err.message);
        return EXIT_FAILURE;
    }
    sr = srunner_create(llm_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    llm_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

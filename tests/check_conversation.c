/*
 * check_conversation.c - the conversation endpoint with a model behind it,
 * end to end: the real nginx (nginx/parley.conf, the conversation routed to
 * parley's conversation pool), the real parley with agent_backend = openai,
 * the real database, and tests/model_server.mjs as the model, scripted per
 * test and asked afterwards what parley sent it.
 *
 * What is checked:
 *   - what parley sent: the model, the system message first, the history
 *     as /context computes it under llm_context_messages and
 *     llm_context_tokens, then the new messages; tool calls paired with
 *     their results; tools and tool_choice forwarded as given; the API key
 *     and the extra headers;
 *   - what was stored: the new messages and the reply, the reply's tool
 *     calls in extra_data, the token usage in the session's metrics; and
 *     nothing at all after a model error (4xx, 5xx after the retries, a
 *     stream cut in the middle, malformed events), a timeout, a reply that
 *     cannot be stored, or a client that goes away (streamed or not);
 *   - the answers: the JSON shape, the 502 upstream_error and 504
 *     upstream_timeout bodies (the model's message, never the key), 429
 *     and 5xx retried, the events of a streamed turn arriving as the model
 *     produces them, event: error after a broken stream;
 *   - idempotency: a replay answers the stored turn and the model is not
 *     asked again (its request count stays), also when the replay comes
 *     while the first turn still runs; a failed turn can be run again;
 *   - the pools: 8 conversations in flight against a model that takes 5 s
 *     while 4 other users' GET session and append (each at most one per
 *     PARLEY_CONV_FAST_PACE_MS, 50 by default) keep 0 errors and p99 under
 *     100 ms (or under twice the p99 of the same requests before the
 *     conversations start, on a database whose own p99 is past 50 ms).  With
 * the conversation served by the main pool (conversation_workers = 0) this
 * fails: the 8 turns hold all 4 workers for 5 s at a time.
 *
 * tests/conversation.sh starts everything and sets PARLEY_E2E_* (as for
 * check_e2e) and PARLEY_MODEL_URL (the model server's control URL),
 * PARLEY_LLM_KEY (the key parley reads from llm_api_key_file).  parley's
 * settings the cases rely on: llm_context_messages 6, llm_context_tokens
 * 40, llm_timeout_ms 8000, conversation_deadline_ms 12000 (so 8 s for the
 * model: the deadline less request_deadline_ms), llm_retry_max_attempts 3,
 * conversation_workers 8, workers 4.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <check.h>

#include "clock.h"
#include "e2e_util.h"

#define CONV SESSIONS "/conversation"

static struct e2e_http_client model;
static char *llm_key;

/* JSON written with ' for " so the cases stay readable. */
static const char *
q(const char *s)
{
    char *d = arena_strdup(&tc.arena, s);

    for (char *p = d; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

/* --- the model server ------------------------------------------------- */

static const struct json_value *
model_call(const char *method, const char *path, const char *body)
{
    struct e2e_http_request req;
    struct e2e_http_response *raw = calloc(1, sizeof *raw);
    const char *hdrs[] = {JSON_CT, NULL};
    struct error err = ERROR_INIT;
    const struct json_value *v;

    ck_assert(raw != NULL);
    memset(&req, 0, sizeof req);
    req.method = method;
    req.target = path;
    req.headers = body ? hdrs : NULL;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    e2e_http_do(&model, &req, raw);
    ck_assert_msg(raw->status == 200, "model server %s %s: %d %s", method, path,
                  raw->status, raw->error);
    v = json_parse(&tc.arena, raw->body, raw->body_len, 64, &err);
    ck_assert_msg(v != NULL, "model server: %s", err.message);
    e2e_http_response_release(raw);
    free(raw);
    return v;
}

/* Empties the script and the record, then queues the replies (a JSON
 * array, ' for "). */
static void
script(const char *replies)
{
    model_call("POST", "/_reset", "{}");
    if (replies != NULL)
        model_call("POST", "/_script", str("{\"replies\":%s}", q(replies)));
}

static void
script_default(const char *reply)
{
    model_call("POST", "/_script", str("{\"default\":%s}", q(reply)));
}

/* Every chat request the model server got since the last reset. */
static const struct json_value *
requests(void)
{
    const struct json_value *v = model_call("GET", "/_requests", NULL);

    ck_assert_int_eq(v->type, JSON_ARRAY);
    return v;
}

static size_t
nrequests(void)
{
    return requests()->u.a.len;
}

/* The body of request i (from 0). */
static const struct json_value *
sent(size_t i)
{
    const struct json_value *all = requests();

    ck_assert_msg(i < all->u.a.len, "the model got %zu requests, not %zu",
                  all->u.a.len, i + 1);
    return jobj(all->u.a.items[i], "body");
}

/* Waits up to 5 s until request i's outcome is `want` ("client_closed"
 * when parley hung up on the model). */
static void
expect_outcome(size_t i, const char *want)
{
    const char *got = NULL;

    for (int t = 0; t < 100; t++) {
        const struct json_value *all = requests();

        if (i < all->u.a.len) {
            got = jstr(all->u.a.items[i], "outcome");
            if (strcmp(got, want) == 0)
                return;
        }
        clock_sleep_ms(50);
    }
    ck_abort_msg("model request %zu: outcome %s, want %s", i,
                 got ? got : "(none)", want);
}

/* The messages of a model request, one line each: "role:content", with
 * "[id,name,args;...]" for tool calls and "<-id" for a tool's call. */
static const char *
show_sent(const struct json_value *body)
{
    const struct json_value *msgs = jarr(body, "messages");
    const char *out = "";

    for (size_t i = 0; i < msgs->u.a.len; i++) {
        const struct json_value *m = msgs->u.a.items[i];
        const struct json_value *calls = json_get(m, "tool_calls");
        const char *content = jstr_or_null(m, "content");

        out = str("%s%s:%s", out, jstr(m, "role"), content ? content : "null");
        if (calls != NULL) {
            out = str("%s[", out);
            for (size_t k = 0; k < calls->u.a.len; k++) {
                const struct json_value *c = calls->u.a.items[k];
                const struct json_value *fn = jobj(c, "function");

                ck_assert_str_eq(jstr(c, "type"), "function");
                out = str("%s%s%s,%s,%s", out, k ? ";" : "", jstr(c, "id"),
                          jstr(fn, "name"), jstr(fn, "arguments"));
            }
            out = str("%s]", out);
        }
        if (json_get(m, "tool_call_id") != NULL)
            out = str("%s<-%s", out, jstr(m, "tool_call_id"));
        out = str("%s\n", out);
    }
    return out;
}

/* --- parley ------------------------------------------------------------- */

/* A conversation request; unlike api(), a 502 or 504 is an answer these
 * cases expect, so only what holds for every answer is checked here. */
static struct resp
turn_h(const struct user *u, const char *body, const char *header)
{
    const char *lines[] = {str("Authorization: Bearer %s", u->token), JSON_CT,
                           header, NULL};
    struct e2e_http_request req;
    struct e2e_http_response *raw = calloc(1, sizeof *raw);
    struct e2e_http_response **held;
    struct error err = ERROR_INIT;
    struct resp r;

    ck_assert(raw != NULL);
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.target = CONV;
    req.headers = lines;
    req.body = body;
    req.body_len = strlen(body);
    req.source = case_source(tc.nreq++);
    (void)e2e_http_do(&env.client, &req, raw);
    held = realloc(tc.held, (tc.nheld + 1) * sizeof *held);
    ck_assert(held != NULL);
    tc.held = held;
    tc.held[tc.nheld++] = raw;
    memset(&r, 0, sizeof r);
    r.status = raw->status;
    r.method = "POST";
    r.target = CONV;
    r.raw = raw;
    r.body = raw->body ? raw->body : "";
    r.body_len = raw->body_len;
    ck_assert_msg(raw->status != 0, "no answer: %s", raw->error);
    ck_assert_msg(r.status < 500 || r.status == 502 || r.status == 504,
                  "conversation answered %d: %.300s", r.status, r.body);
    ck_assert_ptr_nonnull(hdr(&r, "X-Request-Id"));
    if (r.body_len > 0) {
        r.json = json_parse(&tc.arena, r.body, r.body_len, 64, &err);
        ck_assert_msg(r.json != NULL, "not JSON (%s): %.300s", err.message,
                      r.body);
    }
    if (llm_key != NULL)
        ck_assert_msg(strstr(r.body, llm_key) == NULL,
                      "the API key in an answer: %.300s", r.body);
    return r;
}

static struct resp
turn(const struct user *u, const char *body)
{
    return turn_h(u, body, NULL);
}

/* The answer of a stored turn, checked whole: its members, the stored
 * reply in "message", "response" its content. */
#define expect_turn(r, count)                                                  \
    expect_turn_at(__LINE__, (struct resp[]){r}, (count))
static const struct json_value *
expect_turn_at(int line, const struct resp *r, int64_t count)
{
    const struct json_value *c = r->json, *m;

    expect_status_at(line, r, 200);
    ck_assert_msg(c->type == JSON_OBJECT && c->u.o.len == 6,
                  "line %d: answer %.400s", line, r->body);
    ck_assert_msg(is_uuid(jstr(c, "session_uuid")), "line %d", line);
    ck_assert_msg(jint(c, "messages_count") == count,
                  "line %d: messages_count %lld, want %lld", line,
                  (long long)jint(c, "messages_count"), (long long)count);
    ck_assert_msg(jbool(c, "session_active"), "line %d", line);
    m = jobj(c, "message");
    ck_assert_str_eq(jstr(m, "role"), "assistant");
    ck_assert_str_eq(jstr(m, "content"), jstr(c, "response"));
    ck_assert_str_eq(jstr(m, "session_id"), jstr(c, "session_id"));
    ck_assert_msg(is_uuid(jstr(m, "id")), "line %d", line);
    return c;
}

static const char *
user_msg(const char *content)
{
    return str("{\"role\":\"user\",\"content\":\"%s\"}", content);
}

/* The session's messages, oldest first, as "role:content" lines; NULL
 * when the session does not exist. */
static const char *
stored(const struct user *u, const char *sid)
{
    struct resp r =
        api(u, "GET", str(SESSIONS "/%s/messages?limit=200", sid), NULL);
    const struct json_value *items;
    const char *out = "";

    if (r.status == 404)
        return NULL;
    expect_status(r, 200);
    items = jarr(r.json, "items");
    for (size_t i = 0; i < items->u.a.len; i++)
        out = str("%s%s:%s\n", out, jstr(items->u.a.items[i], "role"),
                  jstr(items->u.a.items[i], "content"));
    return out;
}

static const struct json_value *
session_of(const struct user *u, const char *sid)
{
    return get_session(u, sid);
}

/* A model failure's answer: status, code, and the message naming what
 * the model said (when `says` is not NULL). */
#define expect_upstream(r, st, code, says)                                     \
    expect_upstream_at(__LINE__, &(r), (st), (code), (says))
static void
expect_upstream_at(int line, const struct resp *r, int status, const char *code,
                   const char *says)
{
    assert_error_at(line, r, status, code, NULL);
    if (says != NULL) {
        const char *msg = jstr(jobj(r->json, "error"), "message");

        ck_assert_msg(strstr(msg, says) != NULL,
                      "line %d: error message \"%s\" does not say \"%s\"", line,
                      msg, says);
    }
}

/* --- server-sent events, read as they arrive ----------------------------- */

struct event {
    const char *name;
    const char *data;
    const struct json_value *json;
    int64_t at_ms; /* since the request was sent */
};

struct stream {
    int status;
    const char *content_type;
    struct event ev[256];
    size_t n;
    bool complete; /* the server ended the response */
};

static int
connect_to_nginx(void)
{
    struct sockaddr_in src;
    int fd = socket(env.client.server.ss_family, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, case_source(tc.nreq++), &src.sin_addr),
                     1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
    ck_assert_msg(connect(fd, (const struct sockaddr *)&env.client.server,
                          env.client.server_len) == 0,
                  "connect: %s", strerror(errno));
    return fd;
}

/* Sends the body as a conversation request over HTTP/1.0 (so nginx
 * sends the body as it is, ending it by closing), then reads the answer
 * as it comes, timing each event.  Stops after `stop_after` events (the
 * client going away; -1: read to the end) or after timeout_ms. */
static void
stream_turn(const struct user *u, const char *body, int stop_after,
            int timeout_ms, struct stream *out)
{
    int fd = connect_to_nginx();
    const char *head = str("POST " CONV " HTTP/1.0\r\nHost: %s\r\n"
                           "Authorization: Bearer %s\r\n" JSON_CT "\r\n"
                           "Content-Length: %zu\r\n\r\n",
                           env.client.host, u->token, strlen(body));
    const char *req = str("%s%s", head, body);
    char *buf = arena_alloc(&tc.arena, 1 << 20);
    size_t len = 0, parsed = 0, body_at = 0;
    int64_t t0 = clock_mono_ms();

    memset(out, 0, sizeof *out);
    ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = timeout_ms - (clock_mono_ms() - t0);
        ssize_t n;
        char *end;

        ck_assert_msg(left > 0, "no end of the stream within %d ms",
                      timeout_ms);
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        n = read(fd, buf + len, (1 << 20) - 1 - len);
        if (n <= 0) {
            out->complete = true;
            break;
        }
        len += (size_t)n;
        buf[len] = '\0';
        if (body_at == 0) {
            char *hend = strstr(buf, "\r\n\r\n");
            const char *ct;

            if (hend == NULL)
                continue;
            *hend = '\0';
            ck_assert_int_eq(sscanf(buf, "HTTP/1.%*d %d", &out->status), 1);
            ct = strcasestr(buf, "\r\nContent-Type:");
            if (ct != NULL) {
                ct += 15;
                while (*ct == ' ')
                    ct++;
                out->content_type =
                    arena_strndup(&tc.arena, ct, strcspn(ct, "\r\n"));
            }
            body_at = parsed = (size_t)(hend - buf) + 4;
        }
        /* An event ends at a blank line. */
        while ((end = strstr(buf + parsed, "\n\n")) != NULL) {
            struct event *e = &out->ev[out->n];
            char *line = buf + parsed;
            struct error err = ERROR_INIT;

            *end = '\0';
            ck_assert_uint_lt(out->n, 256);
            ck_assert_msg(strncmp(line, "event: ", 7) == 0, "event %.200s",
                          line);
            e->name =
                arena_strndup(&tc.arena, line + 7, strcspn(line + 7, "\n"));
            line = strstr(line, "\ndata: ");
            ck_assert_ptr_nonnull(line);
            e->data = arena_strdup(&tc.arena, line + 7);
            ck_assert_msg(strchr(e->data, '\n') == NULL, "two data lines");
            e->json = json_parse(&tc.arena, e->data, strlen(e->data), 64, &err);
            ck_assert_msg(e->json != NULL, "event data %.200s", e->data);
            e->at_ms = clock_mono_ms() - t0;
            out->n++;
            parsed = (size_t)(end - buf) + 2;
            if (stop_after >= 0 && out->n >= (size_t)stop_after) {
                close(fd);
                return;
            }
        }
    }
    close(fd);
    if (body_at != 0 && out->status != 200) {
        /* a JSON error answer: kept as one pseudo-event "json" */
        struct error err = ERROR_INIT;

        out->ev[0].name = "json";
        out->ev[0].data = arena_strdup(&tc.arena, buf + body_at);
        out->ev[0].json = json_parse(&tc.arena, out->ev[0].data,
                                     strlen(out->ev[0].data), 64, &err);
        out->n = 1;
    }
}

/* The text of the content deltas, concatenated. */
static const char *
deltas_text(const struct stream *s)
{
    const char *out = "";

    for (size_t i = 0; i < s->n; i++) {
        const struct json_value *c;

        if (strcmp(s->ev[i].name, "delta") != 0)
            continue;
        c = json_get(s->ev[i].json, "content");
        if (c != NULL)
            out = str("%s%s", out, c->u.s.ptr);
    }
    return out;
}

/* ====================================================================== */

START_TEST(plain_turn_then_history)
{
    struct user u = user_new("plain");
    const char *sid = uniq("plain");
    const struct json_value *c, *s, *req0, *m;
    struct resp r;

    script("[{'content':'Hello there','usage':{'prompt_tokens':11,"
           "'completion_tokens':3}},{'content':'Second answer','usage':"
           "{'prompt_tokens':30,'completion_tokens':4}}]");
    r = turn(&u, str("{\"session_id\":\"%s\",\"agent_instructions\":\"Be "
                     "brief.\",\"messages\":[%s]}",
                     sid, user_msg("hi")));
    c = expect_turn(r, 2);
    ck_assert_str_eq(jstr(c, "session_id"), sid);
    ck_assert_str_eq(jstr(c, "response"), "Hello there");
    m = jobj(c, "message");
    ck_assert_int_eq(jint(m, "seq"), 2);
    ck_assert(jis_null(m, "extra_data"));
    ck_assert_str_eq(stored(&u, sid), "user:hi\nassistant:Hello there\n");

    /* what the model got: the model, the system message first, the
     * output cap, no tools; the key and the extra header */
    req0 = sent(0);
    ck_assert_str_eq(jstr(req0, "model"), "test-model");
    ck_assert_int_eq(jint(req0, "max_tokens"), 256);
    ck_assert_ptr_null(json_get(req0, "tools"));
    ck_assert_ptr_null(json_get(req0, "tool_choice"));
    ck_assert_ptr_null(json_get(req0, "stream"));
    ck_assert_str_eq(show_sent(req0), "system:Be brief.\nuser:hi\n");
    {
        const struct json_value *h = jobj(requests()->u.a.items[0], "headers");

        ck_assert_str_eq(jstr(h, "authorization"), str("Bearer %s", llm_key));
        ck_assert_str_eq(jstr(h, "x-test-header"), "from-headers-file");
    }

    /* the next turn is sent the history, in order */
    r = turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s,%s]}", sid,
                     user_msg("and"), user_msg("again")));
    c = expect_turn(r, 5);
    ck_assert_str_eq(jstr(c, "response"), "Second answer");
    ck_assert_str_eq(show_sent(sent(1)), "system:Be brief.\nuser:hi\n"
                                         "assistant:Hello there\nuser:and\n"
                                         "user:again\n");
    ck_assert_str_eq(stored(&u, sid), "user:hi\nassistant:Hello there\n"
                                      "user:and\nuser:again\n"
                                      "assistant:Second answer\n");
    /* the usage the model reported, added up */
    s = session_of(&u, sid);
    ck_assert_int_eq(jint(jobj(s, "metrics"), "prompt_tokens"), 41);
    ck_assert_int_eq(jint(jobj(s, "metrics"), "completion_tokens"), 7);
    ck_assert_int_eq(nrequests(), 2);

    /* no session_id: a new session, named by its UUID */
    script("[{'content':'fresh'}]");
    r = turn(&u, str("{\"messages\":[%s]}", user_msg("new one")));
    c = expect_turn(r, 2);
    ck_assert_str_eq(jstr(c, "session_id"), jstr(c, "session_uuid"));
    ck_assert_str_eq(show_sent(sent(0)), "user:new one\n");
}
END_TEST

START_TEST(history_is_the_context_window)
{
    struct user u = user_new("ctx");
    const char *sid = uniq("ctx");
    const struct json_value *items;
    const char *want = "system:Plan.\n";
    struct resp r;

    /* contents of 30, 4, 100, 8, 12, 40, 2, 20 bytes: the window of 6
     * messages and 40 tokens is the newest unbroken run that fits */
    static const char *const contents[] = {
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "bbbb",
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
        "cccccccccccccccccccccccccccccccc",
        "dddddddd",
        "eeeeeeeeeeee",
        "ffffffffffffffffffffffffffffffffffffffff",
        "gg",
        "hhhhhhhhhhhhhhhhhhhh",
    };

    (void)create(&u, str("{\"session_id\":\"%s\",\"agent_instructions\":"
                         "\"Plan.\"}",
                         sid));
    for (size_t i = 0; i < 8; i++) {
        r = api(&u, "POST", str(SESSIONS "/%s/messages", sid),
                str("{\"role\":\"%s\",\"content\":\"%s\"}",
                    i % 2 ? "assistant" : "user", contents[i]));
        expect_status(r, 201);
    }
    r = api(&u, "GET", str(SESSIONS "/%s/context?limit=6&max_tokens=40", sid),
            NULL);
    expect_status(r, 200);
    items = jarr(r.json, "items");
    ck_assert_uint_gt(items->u.a.len, 0);
    ck_assert_uint_lt(items->u.a.len, 6); /* the tokens bite first */
    for (size_t i = 0; i < items->u.a.len; i++)
        want = str("%s%s:%s\n", want, jstr(items->u.a.items[i], "role"),
                   jstr(items->u.a.items[i], "content"));
    want = str("%suser:now\n", want);
    script("[{'content':'ok'}]");
    r = turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                     user_msg("now")));
    expect_turn(r, 10);
    ck_assert_str_eq(show_sent(sent(0)), want);
}
END_TEST

START_TEST(tool_calls_forwarded_stored_and_paired)
{
    struct user u = user_new("tools");
    const char *sid = uniq("tools");
    const char *tools = "[{'type':'function','function':{'name':"
                        "'get_weather','parameters':{'type':'object',"
                        "'properties':{'city':{'type':'string'}}}}}]";
    const struct json_value *c, *req0, *calls, *call;
    struct resp r;

    script("[{'tool_calls':[{'id':'call_1','name':'get_weather',"
           "'arguments':'{\\'city\\':\\'Paris\\'}'},{'id':'call_2',"
           "'name':'get_time','arguments':'{}'}]},"
           "{'content':'18C and noon'}]");
    r = turn(&u, q(str("{'session_id':'%s','messages':[%s],'tools':%s,"
                       "'tool_choice':{'type':'function','function':"
                       "{'name':'get_weather'}}}",
                       sid, user_msg("weather in Paris?"), tools)));
    c = expect_turn(r, 2);
    ck_assert_str_eq(jstr(c, "response"), "");
    /* tools and tool_choice went as given */
    req0 = sent(0);
    expect_json(jget(req0, "tools", JSON_ARRAY), q(tools));
    expect_json(jobj(req0, "tool_choice"),
                q("{'type':'function','function':{'name':'get_weather'}}"));
    /* the calls are in the stored reply's extra_data */
    calls = jarr(jobj(jobj(c, "message"), "extra_data"), "tool_calls");
    ck_assert_uint_eq(calls->u.a.len, 2);
    call = calls->u.a.items[0];
    expect_json(call, q("{'id':'call_1','type':'function','function':"
                        "{'name':'get_weather','arguments':"
                        "'{\\'city\\':\\'Paris\\'}'}}"));

    /* the results come as tool messages; a user message sent between
     * them goes after both, each result right after its call */
    r = turn(&u, q(str("{'session_id':'%s','messages':[{'role':'tool',"
                       "'tool_call_id':'call_2','content':'noon'},%s,"
                       "{'role':'tool','tool_call_id':'call_1','content':"
                       "'18C'}],'tools':%s}",
                       sid, user_msg("quick"), tools)));
    c = expect_turn(r, 6);
    ck_assert_str_eq(jstr(c, "response"), "18C and noon");
    ck_assert_str_eq(show_sent(sent(1)),
                     "user:weather in Paris?\n"
                     "assistant:null[call_1,get_weather,{\"city\":\"Paris\"};"
                     "call_2,get_time,{}]\n"
                     "tool:18C<-call_1\ntool:noon<-call_2\nuser:quick\n");
    ck_assert_ptr_null(json_get(sent(1), "tool_choice"));

    /* a call never answered is left out of what is sent */
    script("[{'tool_calls':[{'id':'call_3','name':'f','arguments':'{}'}]},"
           "{'content':'fine'}]");
    r = turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                     user_msg("do f")));
    expect_turn(r, 8);
    r = turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                     user_msg("never mind")));
    expect_turn(r, 10);
    ck_assert_ptr_null(strstr(show_sent(sent(1)), "call_3"));
    ck_assert_ptr_nonnull(
        strstr(show_sent(sent(1)), "user:do f\nuser:never mind\n"));
}
END_TEST

START_TEST(streamed_turn)
{
    struct user u = user_new("stream");
    const char *sid = uniq("stream");
    const struct json_value *done;
    struct stream s;

    /* five pieces, 300 ms apart */
    script("[{'content':'Hello streaming world','chunks':['Hello',' stre',"
           "'aming',' wor','ld'],'chunk_delay_ms':300,'usage':"
           "{'prompt_tokens':5,'completion_tokens':5}}]");
    stream_turn(&u,
                str("{\"session_id\":\"%s\",\"stream\":true,\"messages\":"
                    "[%s]}",
                    sid, user_msg("hi")),
                -1, 15000, &s);
    ck_assert_int_eq(s.status, 200);
    ck_assert_str_eq(s.content_type, "text/event-stream");
    ck_assert(s.complete);
    ck_assert_uint_eq(s.n, 6);
    ck_assert_str_eq(deltas_text(&s), "Hello streaming world");
    /* the pieces came as the model made them, not all at the end */
    ck_assert_msg(s.ev[4].at_ms - s.ev[0].at_ms >= 900,
                  "deltas at %lld and %lld ms: buffered",
                  (long long)s.ev[0].at_ms, (long long)s.ev[4].at_ms);
    /* then done: the JSON answer, the reply stored */
    ck_assert_str_eq(s.ev[5].name, "done");
    done = s.ev[5].json;
    ck_assert_uint_eq(done->u.o.len, 6);
    ck_assert_str_eq(jstr(done, "response"), "Hello streaming world");
    ck_assert_int_eq(jint(done, "messages_count"), 2);
    ck_assert_str_eq(jstr(jobj(done, "message"), "content"),
                     "Hello streaming world");
    ck_assert_str_eq(stored(&u, sid),
                     "user:hi\nassistant:Hello streaming world\n");
    ck_assert(jbool(sent(0), "stream"));
    ck_assert(jbool(jobj(sent(0), "stream_options"), "include_usage"));
    ck_assert_int_eq(
        jint(jobj(session_of(&u, sid), "metrics"), "prompt_tokens"), 5);

    /* tool calls stream as their fragments */
    script("[{'tool_calls':[{'id':'call_9','name':'lookup','arguments':"
           "'{\\'q\\':\\'parley\\'}'}],'args_chunk_size':4}]");
    stream_turn(&u,
                str("{\"session_id\":\"%s\",\"stream\":true,\"messages\":"
                    "[%s]}",
                    sid, user_msg("look it up")),
                -1, 15000, &s);
    ck_assert_int_eq(s.status, 200);
    {
        const char *args = "";
        size_t ncall = 0;

        for (size_t i = 0; i < s.n; i++) {
            const struct json_value *tc_;

            if (strcmp(s.ev[i].name, "delta") != 0)
                continue;
            tc_ = jobj(s.ev[i].json, "tool_call");
            ck_assert_int_eq(jint(tc_, "index"), 0);
            if (json_get(tc_, "id") != NULL) {
                ncall++;
                ck_assert_str_eq(jstr(tc_, "id"), "call_9");
                ck_assert_str_eq(jstr(tc_, "name"), "lookup");
            }
            args = str("%s%s", args, jstr(tc_, "arguments"));
        }
        ck_assert_uint_eq(ncall, 1);
        ck_assert_str_eq(args, "{\"q\":\"parley\"}");
        ck_assert_str_eq(s.ev[s.n - 1].name, "done");
        expect_json(
            jarr(jobj(jobj(s.ev[s.n - 1].json, "message"), "extra_data"),
                 "tool_calls"),
            q("[{'id':'call_9','type':'function','function':{'name':"
              "'lookup','arguments':'{\\'q\\':\\'parley\\'}'}}]"));
    }
}
END_TEST

/* Every way the model can fail leaves the session as it was. */
START_TEST(model_failures_store_nothing)
{
    struct user u = user_new("fail");
    const char *sid = uniq("fail");
    const char *before;
    const char *body;
    int64_t t0;
    struct resp r;

    script("[{'content':'first'}]");
    expect_turn(turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                             user_msg("one"))),
                2);
    before = stored(&u, sid);
    body =
        str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid, user_msg("two"));

    /* 500 three times: retried, then 502 with the model's message */
    script("[{'status':500,'error':{'message':'engine overloaded'},"
           "'times':3}]");
    r = turn(&u, body);
    expect_upstream(r, 502, "upstream_error", "engine overloaded");
    ck_assert_int_eq(nrequests(), 3);
    ck_assert_str_eq(stored(&u, sid), before);

    /* a 400 is not retried; the message never shows the key */
    script(str("[{'status':400,'error':{'message':'bad request for key %s'}}]",
               llm_key));
    r = turn(&u, body);
    expect_upstream(r, 502, "upstream_error", "bad request for key");
    ck_assert_int_eq(nrequests(), 1);
    ck_assert_str_eq(stored(&u, sid), before);

    /* a stream cut in the middle (a non-streamed request answered with a
     * stream that breaks off) */
    script("[{'content':'abcdefghijklmnop','stream':true,'cut_after':3}]");
    r = turn(&u, body);
    expect_upstream(r, 502, "upstream_error", NULL);
    ck_assert_str_eq(stored(&u, sid), before);

    /* malformed events */
    script("[{'stream':true,'events':['data: {not json','data: [DONE]']}]");
    r = turn(&u, body);
    expect_upstream(r, 502, "upstream_error", NULL);
    ck_assert_str_eq(stored(&u, sid), before);

    /* a reply whose tool calls do not fit in extra_data (16 KiB) */
    script(str("[{'tool_calls':[{'id':'c1','name':'f','arguments':'%s'}]}]",
               rep("x", 20000)));
    r = turn(&u, body);
    expect_upstream(r, 502, "upstream_error", "extra_data");
    ck_assert_str_eq(stored(&u, sid), before);

    /* a first turn that fails takes its new session back */
    script("[{'status':503,'times':3}]");
    {
        const char *fresh = uniq("fresh");

        r = turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", fresh,
                         user_msg("hello?")));
        expect_upstream(r, 502, "upstream_error", NULL);
        r = api(&u, "GET", session_path(fresh), NULL);
        assert_error(r, 404, "not_found", ANY);
    }

    /* 429 with Retry-After and then a 500: retried, then answered */
    script("[{'status':429,'retry_after':1},{'status':500},"
           "{'content':'at last'}]");
    t0 = clock_mono_ms();
    r = turn(&u, body);
    ck_assert_str_eq(jstr(expect_turn(r, 4), "response"), "at last");
    ck_assert_int_ge(clock_mono_ms() - t0, 1000);
    ck_assert_int_eq(nrequests(), 3);
}
END_TEST

START_TEST(model_timeout_is_504)
{
    struct user u = user_new("slow");
    const char *sid = uniq("slow");
    int64_t t0;
    struct resp r;

    script("[{'content':'first'}]");
    expect_turn(turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                             user_msg("one"))),
                2);
    /* 8 s for the model (conversation_deadline_ms 12 s less the time kept
     * to store the turn); the model takes 20 */
    script("[{'content':'too late','delay_ms':20000}]");
    t0 = clock_mono_ms();
    r = turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                     user_msg("two")));
    expect_upstream(r, 504, "upstream_timeout", NULL);
    ck_assert_int_ge(clock_mono_ms() - t0, 7500);
    ck_assert_int_le(clock_mono_ms() - t0, 12000);
    ck_assert_str_eq(stored(&u, sid), "user:one\nassistant:first\n");
    expect_outcome(0, "client_closed"); /* parley hung up on the model */
}
END_TEST

START_TEST(broken_stream_ends_with_an_error_event)
{
    struct user u = user_new("cut");
    const char *sid = uniq("cut");
    const struct json_value *e;
    struct stream s;

    script("[{'content':'first'}]");
    expect_turn(turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                             user_msg("one"))),
                2);
    /* events: the role chunk, 3 pieces, then the connection breaks */
    script("[{'content':'abcdefghijklmnopqrstuvwxyz','cut_after':4}]");
    stream_turn(&u,
                str("{\"session_id\":\"%s\",\"stream\":true,\"messages\":"
                    "[%s]}",
                    sid, user_msg("two")),
                -1, 15000, &s);
    ck_assert_int_eq(s.status, 200);
    ck_assert(s.complete);
    ck_assert_uint_ge(s.n, 2);
    ck_assert_str_eq(deltas_text(&s), "abcdefghijkl");
    ck_assert_str_eq(s.ev[s.n - 1].name, "error");
    e = jobj(s.ev[s.n - 1].json, "error");
    ck_assert_int_eq(jint(e, "status"), 502);
    ck_assert_str_eq(jstr(e, "code"), "upstream_error");
    ck_assert_str_eq(stored(&u, sid), "user:one\nassistant:first\n");

    /* failing before the first piece: a plain JSON error, not a stream */
    script("[{'status':400,'error':{'message':'no such model'}}]");
    stream_turn(&u,
                str("{\"session_id\":\"%s\",\"stream\":true,\"messages\":"
                    "[%s]}",
                    sid, user_msg("two")),
                -1, 15000, &s);
    ck_assert_int_eq(s.status, 502);
    ck_assert_str_eq(s.content_type, "application/json");
    ck_assert_str_eq(jstr(jobj(s.ev[0].json, "error"), "code"),
                     "upstream_error");
    ck_assert_str_eq(stored(&u, sid), "user:one\nassistant:first\n");
}
END_TEST

START_TEST(client_going_away_stores_nothing)
{
    struct user u = user_new("gone");
    const char *sid = uniq("gone");
    struct stream s;

    script("[{'content':'first'}]");
    expect_turn(turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                             user_msg("one"))),
                2);
    /* streamed: the client leaves after the first piece of a reply that
     * never ends; parley stops the model and stores nothing */
    script("[{'content':'abc','never_end':true,'chunk_delay_ms':100}]");
    stream_turn(&u,
                str("{\"session_id\":\"%s\",\"stream\":true,\"messages\":"
                    "[%s]}",
                    sid, user_msg("two")),
                1, 15000, &s);
    ck_assert_int_eq(s.status, 200);
    expect_outcome(0, "client_closed");
    ck_assert_str_eq(stored(&u, sid), "user:one\nassistant:first\n");

    /* not streamed: the client leaves while the model thinks */
    script("[{'content':'late','delay_ms':6000}]");
    {
        int fd = connect_to_nginx();
        const char *body = str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                               user_msg("three"));
        const char *req = str("POST " CONV " HTTP/1.0\r\nHost: %s\r\n"
                              "Authorization: Bearer %s\r\n" JSON_CT "\r\n"
                              "Content-Length: %zu\r\n\r\n%s",
                              env.client.host, u.token, strlen(body), body);

        ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        clock_sleep_ms(1000);
        close(fd);
    }
    expect_outcome(0, "client_closed");
    clock_sleep_ms(300);
    ck_assert_str_eq(stored(&u, sid), "user:one\nassistant:first\n");
}
END_TEST

START_TEST(replay_never_asks_the_model_again)
{
    struct user u = user_new("replay");
    const char *sid = uniq("replay");
    const char *body = str("{\"session_id\":\"%s\",\"client_message_id\":"
                           "\"turn-1\",\"messages\":[%s]}",
                           sid, user_msg("hi"));
    struct resp r1, r2;
    struct stream s;

    script("[{'content':'only once','usage':{'prompt_tokens':3,"
           "'completion_tokens':2}},{'content':'never'}]");
    r1 = turn(&u, body);
    expect_turn(r1, 2);
    r2 = turn(&u, body);
    expect_turn(r2, 2);
    /* the same answer, from what is stored; the model asked once */
    ck_assert_str_eq(r2.body, r1.body);
    ck_assert_int_eq(nrequests(), 1);
    ck_assert_str_eq(stored(&u, sid), "user:hi\nassistant:only once\n");
    /* the Idempotency-Key header is the same key */
    r2 = turn_h(
        &u,
        str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid, user_msg("hi")),
        "Idempotency-Key: turn-1");
    ck_assert_str_eq(r2.body, r1.body);
    /* streamed, the replay is the stored reply and done */
    stream_turn(&u,
                str("{\"session_id\":\"%s\",\"client_message_id\":"
                    "\"turn-1\",\"stream\":true,\"messages\":[%s]}",
                    sid, user_msg("hi")),
                -1, 15000, &s);
    ck_assert_int_eq(s.status, 200);
    ck_assert_str_eq(deltas_text(&s), "only once");
    ck_assert_str_eq(s.ev[s.n - 1].name, "done");
    ck_assert_str_eq(s.ev[s.n - 1].data, r1.body);
    ck_assert_int_eq(nrequests(), 1);
    /* metrics counted the usage once */
    ck_assert_int_eq(
        jint(jobj(session_of(&u, sid), "metrics"), "prompt_tokens"), 3);
}
END_TEST

START_TEST(concurrent_replays_ask_the_model_once)
{
    struct user u = user_new("twice");
    const char *sid = uniq("twice");
    const char *body = str("{\"session_id\":\"%s\",\"client_message_id\":"
                           "\"k-1\",\"messages\":[%s]}",
                           sid, user_msg("hi"));
    const char *hdrs[] = {str("Authorization: Bearer %s", u.token), JSON_CT,
                          NULL};
    struct e2e_http_request reqs[3];
    struct e2e_http_response out[3];
    const struct json_value *a;

    script("[{'content':'first'}]"); /* makes the session */
    expect_turn(turn(&u, str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                             user_msg("zero"))),
                2);
    script("[{'content':'slow answer','delay_ms':2000},{'content':'never'}]");
    for (int i = 0; i < 3; i++) {
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].method = "POST";
        reqs[i].target = CONV;
        reqs[i].headers = hdrs;
        reqs[i].body = body;
        reqs[i].body_len = strlen(body);
        reqs[i].source = case_source(tc.nreq++);
    }
    ck_assert_int_eq(e2e_http_do_many(&env.client, reqs, 3, 3, out), 0);
    for (int i = 0; i < 3; i++) {
        struct error err = ERROR_INIT;

        ck_assert_msg(out[i].status == 200, "request %d: %d %s", i,
                      out[i].status, out[i].body);
        a = json_parse(&tc.arena, out[i].body, out[i].body_len, 64, &err);
        ck_assert_str_eq(jstr(a, "response"), "slow answer");
        ck_assert_int_eq(jint(a, "messages_count"), 4);
        ck_assert_str_eq(out[i].body, out[0].body);
    }
    ck_assert_int_eq(nrequests(), 1);
    ck_assert_str_eq(stored(&u, sid), "user:zero\nassistant:first\nuser:hi\n"
                                      "assistant:slow answer\n");
    for (int i = 0; i < 3; i++)
        e2e_http_response_release(&out[i]);
}
END_TEST

START_TEST(failed_turn_runs_again_on_replay)
{
    struct user u = user_new("again");
    const char *sid = uniq("again");
    const char *body = str("{\"session_id\":\"%s\",\"client_message_id\":"
                           "\"k-2\",\"messages\":[%s]}",
                           sid, user_msg("hi"));
    struct resp r;

    script("[{'status':400,'error':{'message':'try later'}},"
           "{'content':'worked'}]");
    r = turn(&u, body);
    expect_upstream(r, 502, "upstream_error", "try later");
    r = turn(&u, body);
    ck_assert_str_eq(jstr(expect_turn(r, 2), "response"), "worked");
    ck_assert_int_eq(nrequests(), 2);
    r = turn(&u, body);
    expect_turn(r, 2);
    ck_assert_int_eq(nrequests(), 2);
}
END_TEST

START_TEST(bad_requests_touch_nothing)
{
    struct user u = user_new("bad");
    const char *sid = uniq("bad");
    const char *ok = user_msg("x");
    const struct {
        const char *body;
        const char *code;
        const char *param;
    } cases[] = {
        {str("{\"session_id\":\"%s\",\"stream\":\"yes\",\"messages\":[%s]}",
             sid, ok),
         "validation_error", "stream"},
        {str("{\"session_id\":\"%s\",\"tools\":{},\"messages\":[%s]}", sid, ok),
         "validation_error", "tools"},
        {str("{\"session_id\":\"%s\",\"tool_choice\":3,\"messages\":[%s]}", sid,
             ok),
         "validation_error", "tool_choice"},
        {str("{\"session_id\":\"%s\",\"client_message_id\":\"\","
             "\"messages\":[%s]}",
             sid, ok),
         "validation_error", "client_message_id"},
        {str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"x\",\"client_message_id\":\"k\"}]}",
             sid),
         "validation_error", "messages[0].client_message_id"},
        {str("{\"session_id\":\"%s\",\"model\":\"gpt\",\"messages\":[%s]}", sid,
             ok),
         "unknown_field", "model"},
    };

    script(NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r = turn(&u, cases[i].body);

        assert_error(r, 400, cases[i].code, cases[i].param);
    }
    {
        struct resp r = api(&u, "GET", session_path(sid), NULL);

        assert_error(r, 404, "not_found", ANY);
    }
    ck_assert_int_eq(nrequests(), 0);
}
END_TEST

/* --- the pools ------------------------------------------------------------ */

#define BASELINE_MS   3000
#define LOAD_SECONDS  10
#define FAST_CLIENTS  4
#define MAX_SAMPLES   20000
#define CONVERSATIONS 8

/* Each fast client sends at most one request every pace_ms
 * (PARLEY_CONV_FAST_PACE_MS, 50 by default): the figures are then the
 * service's latency, not the saturation of the machine or the database. */
static int64_t pace_ms = 50;

struct load_result {
    int64_t n, errors;           /* under the conversations */
    int64_t base_n, base_errors; /* before them */
    int64_t us[MAX_SAMPLES];
    int64_t base_us[MAX_SAMPLES];
};

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* One fast client: GET session and append, one after the other, until
 * end_ms, each timed; those that start before load_ms are the baseline. */
static void
fast_client(int k, int64_t load_ms, int64_t end_ms, struct load_result *out)
{
    struct user u = user_new(str("fast%d", k));
    const char *sid = uniq("fast");
    const char *get = session_path(sid);
    const char *post = str(SESSIONS "/%s/messages", sid);
    const char *body = "{\"role\":\"user\",\"content\":\"ping\"}";
    const char *auth = str("Authorization: Bearer %s", u.token);
    const char *hdrs[] = {auth, JSON_CT, NULL};

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int64_t i = 0; clock_mono_ms() < end_ms; i++) {
        struct e2e_http_request req;
        struct e2e_http_response r;
        int64_t t0 = clock_mono_us();
        bool base = t0 / 1000 < load_ms;
        int64_t *n = base ? &out->base_n : &out->n;

        memset(&req, 0, sizeof req);
        req.method = i % 2 ? "POST" : "GET";
        req.target = i % 2 ? post : get;
        req.headers = hdrs;
        if (i % 2) {
            req.body = body;
            req.body_len = strlen(body);
        }
        req.source = case_source(tc.nreq++);
        e2e_http_do(&env.client, &req, &r);
        if (*n < MAX_SAMPLES)
            (base ? out->base_us : out->us)[(*n)++] = clock_mono_us() - t0;
        if (r.status != (i % 2 ? 201 : 200))
            (*(base ? &out->base_errors : &out->errors))++;
        e2e_http_response_release(&r);
        if (clock_mono_us() - t0 < pace_ms * 1000)
            clock_sleep_ms(pace_ms - (clock_mono_us() - t0) / 1000);
    }
}

/* All clients' samples of one phase, sorted, into *all; returns how many. */
static int64_t
gather(const struct load_result *res, bool base, int64_t **all, int64_t *errors)
{
    int64_t n = 0;

    *all = malloc(sizeof(**all) * FAST_CLIENTS * MAX_SAMPLES + 1);
    ck_assert_ptr_nonnull(*all);
    *errors = 0;
    for (int k = 0; k < FAST_CLIENTS; k++) {
        int64_t m = base ? res[k].base_n : res[k].n;

        memcpy(*all + n, base ? res[k].base_us : res[k].us,
               (size_t)m * sizeof(**all));
        n += m;
        *errors += base ? res[k].base_errors : res[k].errors;
    }
    qsort(*all, (size_t)n, sizeof(**all), cmp_i64);
    return n;
}

/* 8 conversations in flight against a model that takes 5 s, for
 * LOAD_SECONDS, while 4 other users' GET session and append keep 0 errors
 * and p99 under 100 ms, or under twice the baseline (the same requests
 * before the conversations start) when the database alone is slower. */
START_TEST(slow_model_never_slows_the_other_routes)
{
    struct load_result *res =
        mmap(NULL, sizeof(*res) * (FAST_CLIENTS + 1), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct user conv = user_new("convload");
    const char *conv_sid = uniq("convload");
    const char *hdrs[] = {str("Authorization: Bearer %s", conv.token), JSON_CT,
                          NULL};
    int64_t load_ms, end_ms, n, base_n, errors, base_errors, turns, turn_errors;
    int64_t limit_us;
    pid_t pids[FAST_CLIENTS + 1];
    int64_t *all, *base;

    ck_assert(res != MAP_FAILED);
    memset(res, 0, sizeof(*res) * (FAST_CLIENTS + 1));
    script(NULL);
    script_default("{'content':'slow','delay_ms':5000}");
    load_ms = clock_mono_ms() + BASELINE_MS;
    end_ms = load_ms + LOAD_SECONDS * 1000;
    for (int k = 0; k < FAST_CLIENTS; k++) {
        pids[k + 1] = fork();
        ck_assert_int_ge(pids[k + 1], 0);
        if (pids[k + 1] == 0) {
            tc.nreq = 50u * (unsigned)(k + 1);
            fast_client(k, load_ms, end_ms, &res[k]);
            _exit(0);
        }
    }
    /* after the baseline, 8 conversations in flight the whole time */
    clock_sleep_ms(load_ms - clock_mono_ms());
    pids[0] = fork();
    ck_assert_int_ge(pids[0], 0);
    if (pids[0] == 0) {
        while (clock_mono_ms() < end_ms) {
            struct e2e_http_request reqs[CONVERSATIONS];
            struct e2e_http_response out[CONVERSATIONS];
            const char *body = str("{\"session_id\":\"%s\",\"messages\":[%s]}",
                                   conv_sid, user_msg("slow?"));

            for (int i = 0; i < CONVERSATIONS; i++) {
                memset(&reqs[i], 0, sizeof reqs[i]);
                reqs[i].method = "POST";
                reqs[i].target = CONV;
                reqs[i].headers = hdrs;
                reqs[i].body = body;
                reqs[i].body_len = strlen(body);
                reqs[i].source = case_source(200 + (unsigned)i);
            }
            e2e_http_do_many(&env.client, reqs, CONVERSATIONS, CONVERSATIONS,
                             out);
            for (int i = 0; i < CONVERSATIONS; i++) {
                res[FAST_CLIENTS].n++;
                if (out[i].status != 200)
                    res[FAST_CLIENTS].errors++;
                e2e_http_response_release(&out[i]);
            }
        }
        _exit(0);
    }
    for (int k = 0; k <= FAST_CLIENTS; k++) {
        int st;

        ck_assert_int_eq(waitpid(pids[k], &st, 0), pids[k]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "load process %d failed", k);
    }
    base_n = gather(res, true, &base, &base_errors);
    n = gather(res, false, &all, &errors);
    turns = res[FAST_CLIENTS].n;
    turn_errors = res[FAST_CLIENTS].errors;
    ck_assert_int_gt(base_n, 0);
    ck_assert_int_gt(n, 50);
    printf("conversation pool: %lld turns of a 5 s model, %d at a time "
           "(%lld failed); GET session + append by %d other users, one "
           "each per %lld ms at most: before the turns %lld requests, "
           "%lld errors, p50 %.1f ms, p99 %.1f ms; during them %lld "
           "requests, %lld errors, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           (long long)turns, CONVERSATIONS, (long long)turn_errors,
           FAST_CLIENTS, (long long)pace_ms, (long long)base_n,
           (long long)base_errors, base[base_n / 2] / 1000.0,
           base[base_n * 99 / 100] / 1000.0, (long long)n, (long long)errors,
           all[n / 2] / 1000.0, all[n * 99 / 100] / 1000.0,
           all[n - 1] / 1000.0);
    fflush(stdout);
    ck_assert_int_eq(errors, 0);
    /* 100 ms, or twice the baseline's p99 on a database slower than that
     * by itself (the team's unoptimised real mongod: an append there,
     * majority-written on a 3-member set on 2 cores, has a p99 of 250 ms
     * before any conversation).  Served by the main pool the turns would
     * hold every worker for 5 s: seconds, either way. */
    limit_us = 2 * base[base_n * 99 / 100];
    if (limit_us < 100000)
        limit_us = 100000;
    ck_assert_msg(all[n * 99 / 100] < limit_us, "p99 %.1f ms (limit %.1f ms)",
                  all[n * 99 / 100] / 1000.0, limit_us / 1000.0);
    ck_assert_int_ge(turns, 2 * CONVERSATIONS);
    ck_assert_int_eq(turn_errors, 0);
    free(all);
    free(base);
    munmap(res, sizeof(*res) * (FAST_CLIENTS + 1));
    script(NULL);
    model_call("POST", "/_script", "{\"default\":null}");
}
END_TEST

static Suite *
conversation_suite(void)
{
    Suite *s = suite_create("conversation");
    TCase *t = tcase(s, "model", 60);

    tcase_add_test(t, plain_turn_then_history);
    tcase_add_test(t, history_is_the_context_window);
    tcase_add_test(t, tool_calls_forwarded_stored_and_paired);
    tcase_add_test(t, streamed_turn);
    tcase_add_test(t, model_failures_store_nothing);
    tcase_add_test(t, model_timeout_is_504);
    tcase_add_test(t, broken_stream_ends_with_an_error_event);
    tcase_add_test(t, client_going_away_stores_nothing);
    tcase_add_test(t, replay_never_asks_the_model_again);
    tcase_add_test(t, concurrent_replays_ask_the_model_once);
    tcase_add_test(t, failed_turn_runs_again_on_replay);
    tcase_add_test(t, bad_requests_touch_nothing);
    t = tcase(s, "pools", 90);
    tcase_add_test(t, slow_model_never_slows_the_other_routes);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;
    char msg[256];
    const char *url = getenv("PARLEY_MODEL_URL");
    const char *key = getenv("PARLEY_LLM_KEY");

    signal(SIGPIPE, SIG_IGN);
    if (url == NULL || e2e_http_client_init(&model, url, msg, sizeof msg) < 0) {
        fprintf(stderr, "check_conversation: PARLEY_MODEL_URL: %s\n",
                url ? msg : "not set (tests/conversation.sh runs this)");
        return 99;
    }
    llm_key = key != NULL ? strdup(key) : NULL;
    if (getenv("PARLEY_CONV_FAST_PACE_MS") != NULL)
        pace_ms = atoi(getenv("PARLEY_CONV_FAST_PACE_MS"));
    if (pace_ms < 1)
        pace_ms = 1;
    if (env_init() < 0) {
        env_release();
        return 99;
    }
    sr = srunner_create(conversation_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    env_release();
    free(llm_key);
    return failed == 0 ? 0 : 1;
}

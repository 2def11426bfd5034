/*
 * e2e_util.c - what every end-to-end suite shares: the environment, the
 * per-test state, users and tokens, requests, JSON access and the
 * contract's expectations (see e2e_util.h).
 *
 * Moved here verbatim from check_e2e.c so check_e2e_messages.c can use the
 * same helpers; the names stay short because only the test programs link
 * this file.
 */
#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "e2e_http.h"
#include "e2e_util.h"
#include "error.h"
#include "json.h"
#include "banned.h"

/* ====================================================================== */
/* The environment: set up once in main() before any test forks, read-only
 * afterwards. */

struct e2e_env env;

/* ====================================================================== */
/* Per-test state.  Check's test functions take no arguments, so what one
 * test needs lives here; case_setup() resets it in the test's own process.
 */

struct e2e_case tc;

void
case_setup(void)
{
    memset(&tc, 0, sizeof tc);
    tc.block = __atomic_fetch_add(env.next_block, 1, __ATOMIC_SEQ_CST);
    ck_assert_msg(tc.block < 253 * 256, "out of source address blocks");
    arena_init(&tc.arena, 64 * 1024);
}

void
case_teardown(void)
{
    for (size_t i = 0; i < tc.nheld; i++) {
        e2e_http_response_release(tc.held[i]);
        free(tc.held[i]);
    }
    free(tc.held);
    arena_release(&tc.arena);
    memset(&tc, 0, sizeof tc);
}

/* A source address of this test's block; host 1..250. */
const char *
case_source(unsigned host)
{
    return arena_printf(&tc.arena, "127.%u.%u.%u", 1 + tc.block / 256,
                        tc.block % 256, 1 + host % 250);
}

/* ====================================================================== */
/* Small string helpers (arena memory, valid until the test ends). */

const char *
str(const char *fmt, ...)
{
    va_list ap;
    char *p = NULL;
    const char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    ck_assert(n >= 0);
    s = arena_strndup(&tc.arena, p, (size_t)n);
    free(p);
    return s;
}

/* unit repeated n times. */
const char *
rep(const char *unit, size_t n)
{
    size_t ulen = strlen(unit);
    char *s = arena_alloc(&tc.arena, ulen * n + 1);

    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ulen, unit, ulen);
    s[ulen * n] = '\0';
    return s;
}

/* "<tag>-<12 random hex>": fresh names per run. */
const char *
uniq(const char *tag)
{
    unsigned char r[6];
    char hex[13];

    ck_assert_int_eq(getrandom(r, sizeof r, 0), (ssize_t)sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(hex + 2 * i, 3, "%02x", r[i]);
    return str("%s-%s", tag, hex);
}

const char *
b64url(const void *data, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = arena_alloc(&tc.arena, (len + 2) / 3 * 4 + 1);
    size_t o = 0, i;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

const char *
b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

/* ====================================================================== */
/* Users and tokens. */

const char *
mint(const struct config *cfg, const char *sub, int64_t now, int64_t ttl)
{
    struct error err = ERROR_INIT;
    char *t = auth_mint(cfg, sub, now, ttl, false, &err);
    const char *copy;

    ck_assert_msg(t != NULL, "auth_mint: %s", err.message);
    copy = arena_strdup(&tc.arena, t);
    free(t);
    return copy;
}

/* A fresh user with a token valid for an hour. */
struct user
user_new(const char *tag)
{
    struct user u;

    u.name = uniq(str("e2e-%s", tag));
    u.token = mint(&env.cfg, u.name, (int64_t)time(NULL), 3600);
    return u;
}

/* ====================================================================== */
/* Requests and responses. */

/* Compared by address: see ANY in e2e_util.h. */
const char e2e_any[] = "(any)";

const char *
hdr(const struct resp *r, const char *name)
{
    return e2e_http_header(r->raw, name);
}

static bool
is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Wraps a finished exchange: keeps the raw response until teardown, parses
 * a JSON body, and checks what holds for every response. */
struct resp
wrap(const char *method, const char *target, struct e2e_http_response *raw)
{
    struct resp r;
    struct e2e_http_response **held;
    struct error err = ERROR_INIT;
    const char *ct;

    held = realloc(tc.held, (tc.nheld + 1) * sizeof *held);
    ck_assert(held != NULL);
    tc.held = held;
    tc.held[tc.nheld++] = raw;

    memset(&r, 0, sizeof r);
    r.status = raw->status;
    r.method = method;
    r.target = target;
    r.raw = raw;
    r.body = raw->body ? raw->body : "";
    r.body_len = raw->body_len;

    ck_assert_msg(raw->status != 0, "%s %.200s: no response: %s", method,
                  target, raw->error);
    ck_assert_msg(raw->status < 500,
                  "%s %.200s: server error %d (never for a client's "
                  "request): %.500s",
                  method, target, raw->status, r.body);
    ck_assert_msg(e2e_http_header(raw, "X-Request-Id") != NULL &&
                      e2e_http_header(raw, "X-Request-Id")[0] != '\0',
                  "%s %.200s: %d without X-Request-Id", method, target,
                  raw->status);
    ct = e2e_http_header(raw, "Content-Type");
    if (raw->body_len > 0) {
        ck_assert_msg(is_json_type(ct),
                      "%s %.200s: %d with Content-Type %s: %.300s", method,
                      target, raw->status, ct ? ct : "(none)", r.body);
        r.json = json_parse(&tc.arena, r.body, r.body_len, 64, &err);
        ck_assert_msg(r.json != NULL,
                      "%s %.200s: %d: body is not JSON (%s): "
                      "%.300s",
                      method, target, raw->status, err.message, r.body);
    }
    return r;
}

/* The one place requests are sent: req as given, plus the user's token
 * (u == NULL: no Authorization header) and this test's next source
 * address. */
struct resp
send_req(const struct user *u, struct e2e_http_request req)
{
    const char *lines[16];
    size_t n = 0;
    struct e2e_http_response *raw = calloc(1, sizeof *raw);

    ck_assert(raw != NULL);
    if (u != NULL)
        lines[n++] = str("Authorization: Bearer %s", u->token);
    for (const char *const *h = req.headers; h != NULL && *h != NULL; h++) {
        ck_assert(n < 15);
        lines[n++] = *h;
    }
    lines[n] = NULL;
    req.headers = lines;
    req.source = case_source(tc.nreq++);
    (void)e2e_http_do(&env.client, &req, raw);
    return wrap(req.method, req.target, raw);
}

/* hdrs: extra lines, NULL-terminated, or NULL.  No Content-Type is added
 * here. */
struct resp
send_raw(const struct user *u, const char *method, const char *target,
         const char *const *hdrs, const char *body, size_t body_len)
{
    struct e2e_http_request req;

    memset(&req, 0, sizeof req);
    req.method = method;
    req.target = target;
    req.headers = hdrs;
    req.body = body;
    req.body_len = body_len;
    return send_req(u, req);
}

/* An API call as a client makes it: the user's token, and a JSON body with
 * its Content-Type (body NULL: none). */
struct resp
api(const struct user *u, const char *method, const char *target,
    const char *body)
{
    const char *hdrs[] = {JSON_CT, NULL};

    return send_raw(u, method, target, body ? hdrs : NULL, body,
                    body ? strlen(body) : 0);
}

/* The same with one more header line (If-Match, Content-Type...). */
struct resp
api_h(const struct user *u, const char *method, const char *target,
      const char *header, const char *body)
{
    const char *hdrs[] = {header, body ? JSON_CT : NULL, NULL};

    return send_raw(u, method, target, hdrs, body, body ? strlen(body) : 0);
}

/* A request with exactly the given Authorization value (NULL: none). */
struct resp
with_auth(const char *authorization, const char *method, const char *target)
{
    const char *hdrs[] = {
        authorization ? str("Authorization: %s", authorization) : NULL, NULL};

    return send_raw(NULL, method, target, hdrs, NULL, 0);
}

/* ====================================================================== */
/* JSON access.  Each fails the test when the field is missing or has
 * another type. */

static const char *
jtype_name(enum json_type t)
{
    static const char *const names[] = {"null",   "bool",  "int",   "double",
                                        "string", "array", "object"};
    return names[t];
}

const struct json_value *
jget(const struct json_value *o, const char *key, enum json_type want)
{
    const struct json_value *v;

    ck_assert_msg(o != NULL && o->type == JSON_OBJECT,
                  "looking up \"%s\" in a non-object", key);
    v = json_get(o, key);
    ck_assert_msg(v != NULL, "field \"%s\" missing", key);
    ck_assert_msg(v->type == want, "field \"%s\" is %s, want %s", key,
                  jtype_name(v->type), jtype_name(want));
    return v;
}

const char *
jstr(const struct json_value *o, const char *key)
{
    return jget(o, key, JSON_STRING)->u.s.ptr;
}

int64_t
jint(const struct json_value *o, const char *key)
{
    return jget(o, key, JSON_INT)->u.i;
}

bool
jbool(const struct json_value *o, const char *key)
{
    return jget(o, key, JSON_BOOL)->u.b;
}

bool
jis_null(const struct json_value *o, const char *key)
{
    const struct json_value *v = json_get(o, key);

    ck_assert_msg(v != NULL, "field \"%s\" missing", key);
    return v->type == JSON_NULL;
}

const struct json_value *
jobj(const struct json_value *o, const char *key)
{
    return jget(o, key, JSON_OBJECT);
}

const struct json_value *
jarr(const struct json_value *o, const char *key)
{
    return jget(o, key, JSON_ARRAY);
}

/* A string field or NULL when it is JSON null. */
const char *
jstr_or_null(const struct json_value *o, const char *key)
{
    return jis_null(o, key) ? NULL : jstr(o, key);
}

const char *
json_text(const struct json_value *v)
{
    struct buf b;
    const char *s;

    if (v == NULL)
        return "(none)";
    buf_init(&b);
    json_write_value(&b, v);
    s = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return s;
}

/* Structural equality; object members compare regardless of order. */
bool
json_same(const struct json_value *a, const struct json_value *b)
{
    if (a->type != b->type) {
        /* 2 and 2.0 are the same number. */
        if ((a->type == JSON_INT || a->type == JSON_DOUBLE) &&
            (b->type == JSON_INT || b->type == JSON_DOUBLE)) {
            double x = a->type == JSON_INT ? (double)a->u.i : a->u.d;
            double y = b->type == JSON_INT ? (double)b->u.i : b->u.d;
            return x == y;
        }
        return false;
    }
    switch (a->type) {
    case JSON_NULL:
        return true;
    case JSON_BOOL:
        return a->u.b == b->u.b;
    case JSON_INT:
        return a->u.i == b->u.i;
    case JSON_DOUBLE:
        return a->u.d == b->u.d;
    case JSON_STRING:
        return a->u.s.len == b->u.s.len &&
               memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    case JSON_ARRAY:
        if (a->u.a.len != b->u.a.len)
            return false;
        for (size_t i = 0; i < a->u.a.len; i++)
            if (!json_same(a->u.a.items[i], b->u.a.items[i]))
                return false;
        return true;
    case JSON_OBJECT:
        if (a->u.o.len != b->u.o.len)
            return false;
        for (size_t i = 0; i < a->u.o.len; i++) {
            const struct json_value *bv = json_get(b, a->u.o.members[i].key);
            if (bv == NULL || !json_same(a->u.o.members[i].value, bv))
                return false;
        }
        return true;
    }
    return false;
}

const struct json_value *
parse(const char *text)
{
    struct error err = ERROR_INIT;
    const struct json_value *v =
        json_parse(&tc.arena, text, strlen(text), 64, &err);

    ck_assert_msg(v != NULL, "test bug: bad JSON literal (%s): %.200s",
                  err.message, text);
    return v;
}

void
expect_json_at(int line, const struct json_value *v, const char *text)
{
    ck_assert_msg(v != NULL && json_same(v, parse(text)),
                  "line %d: got %.600s, want %.600s", line, json_text(v), text);
}

/* ====================================================================== */
/* Expectations.  Macros pass the caller's line, which the message names
 * (Check reports the helper's own line). */

bool
is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isdigit((unsigned char)s[i]) &&
                   !(s[i] >= 'a' && s[i] <= 'f')) {
            return false;
        }
    }
    return true;
}

/* 2026-11-21T05:19:49.123Z */
bool
is_timestamp(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (strlen(s) != sizeof pat - 1)
        return false;
    for (size_t i = 0; i < sizeof pat - 1; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
            return false;
    }
    return strncmp(s + 5, "01", 2) >= 0 && strncmp(s + 5, "12", 2) <= 0 &&
           strncmp(s + 8, "01", 2) >= 0 && strncmp(s + 8, "31", 2) <= 0 &&
           strncmp(s + 11, "23", 2) <= 0 && strncmp(s + 14, "59", 2) <= 0 &&
           strncmp(s + 17, "60", 2) <= 0;
}

void
expect_status_at(int line, const struct resp *r, int status)
{
    ck_assert_msg(r->status == status,
                  "line %d: %s %.200s: status %d, want %d; body: %.600s", line,
                  r->method, r->target, r->status, status, r->body);
}

/* The contract's error body: {"error":{"status","code","message","param"}}.
 * code/param may be ANY; param NULL means JSON null. */

bool
e2e_is_v1(const char *target)
{
    return strncmp(target, "/v1", 3) == 0 &&
           (target[3] == '\0' || target[3] == '/' || target[3] == '?');
}

void
assert_error_at(int line, const struct resp *r, int status, const char *code,
                const char *param)
{
    const struct json_value *e, *p;

    expect_status_at(line, r, status);
    ck_assert_msg(r->json != NULL && r->json->type == JSON_OBJECT &&
                      r->json->u.o.len == 1,
                  "line %d: %s %.200s: %d error body is not "
                  "{\"error\":{...}}: %.300s",
                  line, r->method, r->target, status, r->body);
    e = jobj(r->json, "error");
    if (e2e_is_v1(r->target)) {
        /* OpenAI's shape: type, OpenAI's class of the status, in place of
         * status (docs/api.md). */
        const char *type = jstr(e, "type");
        const char *want = status >= 500   ? "server_error"
                           : status == 429 ? "requests"
                           : status == 403 && code != ANY &&
                                   strcmp(code, "quota_exceeded") == 0
                               ? "insufficient_quota"
                               : "invalid_request_error";

        ck_assert_msg(strcmp(type, want) == 0 ||
                          (status == 403 && code == ANY &&
                           strcmp(type, "insufficient_quota") == 0),
                      "line %d: %s %.200s: error.type \"%s\", want \"%s\"",
                      line, r->method, r->target, type, want);
        ck_assert_msg(json_get(e, "status") == NULL,
                      "line %d: a /v1 error has no status: %.300s", line,
                      r->body);
    } else {
        ck_assert_msg(jint(e, "status") == status,
                      "line %d: error.status %lld, want %d", line,
                      (long long)jint(e, "status"), status);
    }
    if (code != ANY)
        ck_assert_msg(strcmp(jstr(e, "code"), code) == 0,
                      "line %d: %s %.200s: code \"%s\", want \"%s\"; %.300s",
                      line, r->method, r->target, jstr(e, "code"), code,
                      r->body);
    else
        (void)jstr(e, "code");
    ck_assert_msg(jstr(e, "message")[0] != '\0', "line %d: empty message",
                  line);
    p = json_get(e, "param");
    ck_assert_msg(p != NULL && (p->type == JSON_NULL || p->type == JSON_STRING),
                  "line %d: error.param missing or not string/null", line);
    if (param == ANY)
        return;
    if (param == NULL)
        ck_assert_msg(p->type == JSON_NULL,
                      "line %d: %s %.200s: param %s, want null", line,
                      r->method, r->target, json_text(p));
    else
        ck_assert_msg(p->type == JSON_STRING && strcmp(p->u.s.ptr, param) == 0,
                      "line %d: %s %.200s: param %s, want \"%s\"; %.300s", line,
                      r->method, r->target, json_text(p), param, r->body);
}

void
expect_header_at(int line, const struct resp *r, const char *name,
                 const char *value)
{
    const char *v = hdr(r, name);

    ck_assert_msg(v != NULL && strcmp(v, value) == 0,
                  "line %d: %s %.200s: %s: %s, want %s", line, r->method,
                  r->target, name, v ? v : "(absent)", value);
}

static const char *const session_fields[] = {
    "id",         "session_id",         "session_name",     "description",
    "agent_name", "agent_instructions", "status",           "is_active",
    "metadata",   "message_count",      "metrics",          "version",
    "created_at", "updated_at",         "last_activity_at",
};

#define NSESSION_FIELDS (sizeof session_fields / sizeof session_fields[0])

/* A session object exactly as the contract shapes it. */
void
check_session_shape(int line, const struct json_value *s)
{
    const struct json_value *m;
    const char *status;

    ck_assert_msg(s != NULL && s->type == JSON_OBJECT,
                  "line %d: session is not an object", line);
    for (size_t i = 0; i < s->u.o.len; i++) {
        bool known = false;

        for (size_t f = 0; f < NSESSION_FIELDS; f++)
            known =
                known || strcmp(s->u.o.members[i].key, session_fields[f]) == 0;
        ck_assert_msg(known, "line %d: session has unexpected field \"%s\"",
                      line, s->u.o.members[i].key);
    }
    ck_assert_msg(s->u.o.len == NSESSION_FIELDS,
                  "line %d: session has %zu fields, want %zu: %.500s", line,
                  s->u.o.len, NSESSION_FIELDS, json_text(s));

    ck_assert_msg(is_uuid(jstr(s, "id")),
                  "line %d: id %s is not a lowercase "
                  "UUID",
                  line, jstr(s, "id"));
    (void)jstr(s, "session_id");
    (void)jstr_or_null(s, "session_name");
    (void)jstr_or_null(s, "description");
    (void)jstr_or_null(s, "agent_name");
    (void)jstr_or_null(s, "agent_instructions");
    status = jstr(s, "status");
    ck_assert_msg(
        strcmp(status, "active") == 0 || strcmp(status, "inactive") == 0 ||
            strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
            strcmp(status, "expired") == 0,
        "line %d: status \"%s\"", line, status);
    ck_assert_msg(jbool(s, "is_active") == (strcmp(status, "active") == 0),
                  "line %d: is_active disagrees with status %s", line, status);
    (void)jobj(s, "metadata");
    ck_assert_msg(jint(s, "message_count") >= 0, "line %d", line);
    m = jobj(s, "metrics");
    ck_assert_msg(m->u.o.len == 5, "line %d: metrics %s", line, json_text(m));
    ck_assert_msg(jint(m, "request_count") >= 0, "line %d", line);
    ck_assert_msg(jint(m, "error_count") >= 0, "line %d", line);
    /* the model's token usage over the conversation turns */
    ck_assert_msg(jint(m, "prompt_tokens") >= 0, "line %d", line);
    ck_assert_msg(jint(m, "completion_tokens") >= 0, "line %d", line);
    {
        const struct json_value *t = json_get(m, "total_processing_ms");
        ck_assert_msg(
            t != NULL && (t->type == JSON_INT || t->type == JSON_DOUBLE),
            "line %d: metrics.total_processing_ms %s", line, json_text(t));
    }
    ck_assert_msg(jint(s, "version") >= 1, "line %d", line);
    ck_assert_msg(is_timestamp(jstr(s, "created_at")), "line %d: created_at %s",
                  line, jstr(s, "created_at"));
    ck_assert_msg(is_timestamp(jstr(s, "updated_at")), "line %d: updated_at %s",
                  line, jstr(s, "updated_at"));
    ck_assert_msg(is_timestamp(jstr(s, "last_activity_at")),
                  "line %d: last_activity_at %s", line,
                  jstr(s, "last_activity_at"));
    ck_assert_msg(strcmp(jstr(s, "updated_at"), jstr(s, "created_at")) >= 0,
                  "line %d: updated_at before created_at", line);
}

/* A response carrying one session: status, shape, and ETag = version. */

const struct json_value *
expect_session_at(int line, const struct resp *r, int status)
{
    const char *etag;

    expect_status_at(line, r, status);
    check_session_shape(line, r->json);
    etag = str("\"%lld\"", (long long)jint(r->json, "version"));
    expect_header_at(line, r, "ETag", etag);
    return r->json;
}

/* ====================================================================== */
/* Session helpers. */

/* POST body, expecting 201 and a session. */

const struct json_value *
create_at(int line, const struct user *u, const char *body)
{
    struct resp r = api(u, "POST", SESSIONS, body);

    return expect_session_at(line, &r, 201);
}

/* GET, expecting 200 and a session. */

const struct json_value *
get_session_at(int line, const struct user *u, const char *sid)
{
    struct resp r = api(u, "GET", str(SESSIONS "/%s", sid), NULL);

    return expect_session_at(line, &r, 200);
}

/* Creates a session called sid with the given status, through the routes
 * a client would use.  fields: more members for the create body (",..."),
 * or "". */

const struct json_value *
create_in_state_at(int line, const struct user *u, const char *sid,
                   const char *status, const char *fields)
{
    struct resp r;

    if (strcmp(status, "inactive") == 0)
        return create_at(
            line, u,
            str("{\"session_id\":\"%s\",\"is_active\":false%s}", sid, fields));
    (void)create_at(line, u, str("{\"session_id\":\"%s\"%s}", sid, fields));
    if (strcmp(status, "active") == 0)
        return get_session_at(line, u, sid);
    r = api(u, "POST", str(SESSIONS "/%s/end", sid),
            str("{\"status\":\"%s\"}", status));
    expect_session_at(line, &r, 200);
    ck_assert_msg(strcmp(jstr(r.json, "status"), status) == 0,
                  "line %d: end %s gave %s", line, status,
                  jstr(r.json, "status"));
    return r.json;
}

const char *
session_path(const char *sid)
{
    return str(SESSIONS "/%s", sid);
}

/* The fields a client can set, compared between two session objects. */

void
expect_same_session_at(int line, const struct json_value *a,
                       const struct json_value *b)
{
    static const char *const keys[] = {
        "id",          "session_id", "session_name",
        "description", "agent_name", "agent_instructions",
        "status",      "is_active",  "metadata",
        "version",     "created_at", "updated_at",
    };

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const struct json_value *x = json_get(a, keys[i]);
        const struct json_value *y = json_get(b, keys[i]);

        ck_assert_msg(x != NULL && y != NULL && json_same(x, y),
                      "line %d: %s differs: %.300s vs %.300s", line, keys[i],
                      json_text(x), json_text(y));
    }
}

/* ====================================================================== */
/* List helpers. */

const struct json_value *
expect_list_at(int line, const struct resp *r, int64_t total, int64_t limit,
               int64_t offset, size_t n, bool has_more)
{
    const struct json_value *items;

    expect_status_at(line, r, 200);
    ck_assert_msg(r->json != NULL && r->json->type == JSON_OBJECT &&
                      r->json->u.o.len == 5,
                  "line %d: list body %.300s", line, r->body);
    items = jarr(r->json, "items");
    ck_assert_msg(jint(r->json, "total") == total,
                  "line %d: %.200s: total %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "total"), (long long)total);
    ck_assert_msg(jint(r->json, "limit") == limit,
                  "line %d: %.200s: limit %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "limit"), (long long)limit);
    ck_assert_msg(jint(r->json, "offset") == offset,
                  "line %d: %.200s: offset %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "offset"), (long long)offset);
    ck_assert_msg(items->u.a.len == n, "line %d: %.200s: %zu items, want %zu",
                  line, r->target, items->u.a.len, n);
    ck_assert_msg(jbool(r->json, "has_more") == has_more,
                  "line %d: %.200s: has_more %d, want %d", line, r->target,
                  jbool(r->json, "has_more"), has_more);
    for (size_t i = 0; i < n; i++)
        check_session_shape(line, items->u.a.items[i]);
    return items;
}

/* The list's session_ids are exactly want[0..n) in any order, and total
 * is n. */

void
expect_ids_at(int line, const struct resp *r, const char *const *want, size_t n)
{
    const struct json_value *items;
    struct buf got;

    expect_status_at(line, r, 200);
    items = jarr(r->json, "items");
    buf_init(&got);
    for (size_t i = 0; i < items->u.a.len; i++)
        buf_printf(&got, "%s ", jstr(items->u.a.items[i], "session_id"));
    ck_assert_msg(jint(r->json, "total") == (int64_t)n && items->u.a.len == n,
                  "line %d: %.200s: got [%s] (total %lld), want %zu", line,
                  r->target, got.data, (long long)jint(r->json, "total"), n);
    for (size_t w = 0; w < n; w++) {
        bool found = false;

        for (size_t i = 0; i < items->u.a.len && !found; i++)
            found =
                strcmp(jstr(items->u.a.items[i], "session_id"), want[w]) == 0;
        ck_assert_msg(found, "line %d: %.200s: %s missing from [%s]", line,
                      r->target, want[w], got.data);
    }
    buf_release(&got);
}

/* ====================================================================== */

TCase *
tcase(Suite *s, const char *name, double timeout)
{
    TCase *t = tcase_create(name);

    tcase_add_checked_fixture(t, case_setup, case_teardown);
    tcase_set_timeout(t, timeout);
    suite_add_tcase(s, t);
    return t;
}

/* Reads a PARLEY_E2E_* variable (caller frees; NULL when unset or empty)
 * and removes it, so config_load(), which reads PARLEY_<KEY> variables,
 * never sees it. */
static char *
take_env(const char *name)
{
    const char *v = getenv(name);
    char *copy = v != NULL && v[0] != '\0' ? strdup(v) : NULL;

    unsetenv(name);
    return copy;
}

void
env_release(void)
{
    config_release(&env.cfg);
    free(env.url);
    free(env.secret);
    free(env.bin);
    free(env.config_path);
    if (env.next_block != NULL && env.next_block != MAP_FAILED)
        munmap(env.next_block, sizeof *env.next_block);
    memset(&env, 0, sizeof env);
}

/* Everything the tests share, before any of them forks.  Returns -1 with
 * a message on stderr. */
int
env_init(void)
{
    struct error err = ERROR_INIT;
    char msg[256];

    env.url = take_env("PARLEY_E2E_URL");
    env.secret = take_env("PARLEY_E2E_SECRET");
    env.config_path = take_env("PARLEY_E2E_CONFIG");
    env.bin = take_env("PARLEY_E2E_BIN");
    free(take_env("PARLEY_E2E_DEVDB_URI"));
    if (env.url == NULL) {
        fprintf(stderr, "check_e2e: PARLEY_E2E_URL is not set "
                        "(tests/e2e.sh runs this program)\n");
        return -1;
    }
    if (e2e_http_client_init(&env.client, env.url, msg, sizeof msg) < 0) {
        fprintf(stderr, "check_e2e: %s\n", msg);
        return -1;
    }
    if (config_load(&env.cfg, env.config_path, &err) < 0) {
        fprintf(stderr, "check_e2e: config: %s\n", err.message);
        return -1;
    }
    if (env.secret != NULL) {
        /* What parley was really given wins over the file. */
        free(env.cfg.jwt_key);
        env.cfg.jwt_pin = JWT_PIN_HS256;
        env.cfg.jwt_key = strdup(env.secret);
        env.cfg.jwt_key_len = strlen(env.secret);
        if (env.cfg.jwt_key == NULL)
            abort();
    }
    if (env.cfg.jwt_pin != JWT_PIN_HS256) {
        fprintf(stderr, "check_e2e: needs an HS256 configuration to mint "
                        "tokens\n");
        return -1;
    }
    /* One counter of address blocks for every forked test. */
    env.next_block = mmap(NULL, sizeof *env.next_block, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (env.next_block == MAP_FAILED) {
        perror("check_e2e: mmap");
        return -1;
    }
    *env.next_block = 0;
    return 0;
}

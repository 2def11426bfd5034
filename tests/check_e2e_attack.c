/*
 * check_e2e_attack.c - the end-to-end suite's attacks: what a hostile
 * client sends, through nginx and parley to the dev database and back.
 * tests/check_e2e runs it after the other suites (CK_RUN_SUITE=e2e-attack
 * runs it alone).
 *
 * The route list is not written out here: the tests walk api_routes[], the
 * table src/api.c routes with (check_e2e links libparley), so a route
 * added there is attacked here without anyone remembering to.  Each route's
 * {session_id}, {message_id}, {key} and {user_id} are filled with real ids
 * of a victim user A; a body-taking route gets a body it would accept.
 *
 * What every test asserts, beyond the helpers' checks on every response
 * (an answer, never a 5xx, X-Request-Id, JSON whenever there is a body):
 *   - the exact status, and the contract's error object with exactly
 *     status/code/message/param (and code/param where the contract names
 *     them);
 *   - A's data is untouched afterwards: the session (every field but the
 *     metrics), every message and every memory entry compare equal to a
 *     snapshot taken before; in the cross-user test the metrics too, since
 *     another user's requests must not even be counted for A's session.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "arena.h"
#include "auth.h"
#include "buf.h"
#include "e2e_http.h"
#include "e2e_util.h"
#include "http.h"
#include "json.h"
#include "banned.h"

/* ====================================================================== */
/* Small helpers. */

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The contract's error object, exactly: the helpers' assert_error plus no
 * member beyond status, code, message and param. */
#define expect_error(r, st, code, param)                                       \
    expect_error_at(__LINE__, &(r), (st), (code), (param))

static void
expect_error_at(int line, const struct resp *r, int status, const char *code,
                const char *param)
{
    assert_error_at(line, r, status, code, param);
    ck_assert_msg(jobj(r->json, "error")->u.o.len == 4,
                  "line %d: %s %.200s: error object has %zu members: %.300s",
                  line, r->method, r->target, jobj(r->json, "error")->u.o.len,
                  r->body);
}

/* 400 or 404 (a path that names nothing), in the error shape. */
#define expect_refused_path(r) expect_refused_path_at(__LINE__, &(r))

static void
expect_refused_path_at(int line, const struct resp *r)
{
    const struct json_value *e;

    ck_assert_msg(r->status == 400 || r->status == 404,
                  "line %d: %s %.200s: %d, want 400 or 404: %.300s", line,
                  r->method, r->target, r->status, r->body);
    /* A request line nginx cannot parse (a broken escape, a NUL) is
     * refused before nginx knows the path, so under /v1 too its page is
     * the /api one (docs/api.md). */
    e = r->json != NULL ? json_get(r->json, "error") : NULL;
    if (e2e_is_v1(r->target) && r->status == 400 && e != NULL &&
        json_get(e, "status") != NULL) {
        ck_assert_msg(
            strcmp(jstr(e, "code"), "bad_request") == 0 && e->u.o.len == 4,
            "line %d: %s %.200s: %.300s", line, r->method, r->target, r->body);
        return;
    }
    expect_error_at(line, r, r->status, ANY, ANY);
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool
has_param(const struct route *rt, const char *name)
{
    return strstr(rt->pattern, name) != NULL;
}

/* ====================================================================== */
/* The victim: user A with a session, two messages and a memory entry. */

struct victim {
    struct user u;
    const char *sid; /* session_id */
    const char *mid; /* a message's id */
    const char *key; /* a memory key */
};

static struct victim
victim_new(void)
{
    struct victim v;
    struct resp r;

    v.u = user_new("victim");
    v.sid = uniq("a-sess");
    v.key = "profile";
    (void)create(&v.u, str("{\"session_id\":\"%s\",\"session_name\":\"A's\","
                           "\"metadata\":{\"owner\":\"a\",\"n\":[1,2]}}",
                           v.sid));
    r = api(&v.u, "POST", str(SESSIONS "/%s/messages", v.sid),
            "{\"messages\":[{\"role\":\"user\",\"content\":\"secret one\"},"
            "{\"role\":\"assistant\",\"content\":\"secret two\","
            "\"extra_data\":{\"k\":\"v\"}}]}");
    expect_status(r, 201);
    v.mid = jstr(jarr(r.json, "items")->u.a.items[0], "id");
    r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/%s", v.sid, v.key),
            "{\"likes\":[\"tea\"]}");
    expect_status(r, 200);
    return v;
}

/* Fills a route's pattern with the victim's ids; a parameter this file
 * does not know (a route added later) gets a plain word. */
static const char *
route_path(const struct route *rt, const struct victim *v)
{
    struct buf b;
    const char *p = rt->pattern, *out;

    buf_init(&b);
    while (*p != '\0') {
        const char *open = strchr(p, '{'), *close;

        if (open == NULL) {
            buf_adds(&b, p);
            break;
        }
        close = strchr(open, '}');
        ck_assert(close != NULL);
        buf_add(&b, p, (size_t)(open - p));
        if (strncmp(open, "{session_id}", 12) == 0)
            buf_adds(&b, v->sid);
        else if (strncmp(open, "{message_id}", 12) == 0)
            buf_adds(&b, v->mid);
        else if (strncmp(open, "{key}", 5) == 0)
            buf_adds(&b, v->key);
        else if (strncmp(open, "{user_id}", 9) == 0)
            buf_adds(&b, v->u.name);
        else
            buf_adds(&b, "x1");
        p = close + 1;
    }
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* A body the route would accept for the victim's session; NULL for a
 * route that takes none. */
static const char *
good_body(const struct route *rt, const struct victim *v)
{
    const char *p = rt->pattern;

    if (!(rt->flags & (API_BODY | API_BODY_ANY)))
        return NULL;
    if (ends_with(p, "/end"))
        return "{\"status\":\"completed\"}";
    if (ends_with(p, "/messages"))
        return "{\"role\":\"user\",\"content\":\"from elsewhere\"}";
    if (ends_with(p, "/messages/{message_id}"))
        return "{\"content\":\"rewritten\"}";
    if (ends_with(p, "/memory/{key}"))
        return "{\"stolen\":true}";
    if (ends_with(p, "/conversation"))
        return str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                   "\"content\":\"hi\"}]}",
                   v->sid);
    if (ends_with(p, "/import"))
        return str("{\"session\":{\"session_id\":\"%s\"},\"messages\":[]}",
                   v->sid);
    if (ends_with(p, "/{session_id}") && rt->method == HTTP_PATCH)
        return "{\"session_name\":\"taken over\"}";
    /* /v1: an update replaces the metadata; items.create takes items */
    if (ends_with(p, "/{session_id}") && rt->method == HTTP_POST)
        return "{\"metadata\":{\"owner\":\"b\"}}";
    if (ends_with(p, "/items"))
        return "{\"items\":[{\"role\":\"user\",\"content\":\"from "
               "elsewhere\"}]}";
    return (rt->flags & API_BODY_ANY) ? "1" : "{}";
}

static const char *
method_of(const struct route *rt)
{
    return http_method_name(rt->method);
}

/* Sends a route's request with exactly the given Authorization header
 * value (NULL: none) and body (with its Content-Type). */
static struct resp
send_route(const char *authorization, const struct route *rt, const char *path,
           const char *body)
{
    const char *hdrs[3] = {NULL, NULL, NULL};
    size_t n = 0;

    if (authorization != NULL)
        hdrs[n++] = str("Authorization: %s", authorization);
    if (body != NULL)
        hdrs[n++] = JSON_CT;
    return send_raw(NULL, method_of(rt), path, hdrs, body,
                    body ? strlen(body) : 0);
}

static struct resp
as_user(const struct user *u, const struct route *rt, const char *path,
        const char *body)
{
    return send_route(str("Bearer %s", u->token), rt, path, body);
}

/* ====================================================================== */
/* Snapshots of the victim's data. */

struct snapshot {
    const struct json_value *session;
    const struct json_value *messages;
    const struct json_value *memory;
};

/* Three requests, each naming the session. */
static struct snapshot
snapshot_take(const struct victim *v)
{
    struct snapshot s;
    struct resp r;

    s.session = get_session(&v->u, v->sid);
    r = api(&v->u, "GET", str(SESSIONS "/%s/messages?limit=200", v->sid), NULL);
    expect_status(r, 200);
    s.messages = jarr(r.json, "items");
    r = api(&v->u, "GET", str(SESSIONS "/%s/memory", v->sid), NULL);
    expect_status(r, 200);
    s.memory = jobj(r.json, "items");
    return s;
}

#define expect_untouched(v, before) expect_untouched_at(__LINE__, (v), (before))

/* Everything but the metrics, which the victim's own requests move. */
static void
expect_untouched_at(int line, const struct victim *v,
                    const struct snapshot *before)
{
    struct snapshot now = snapshot_take(v);
    const struct json_value *a = before->session, *b = now.session;

    ck_assert_msg(a->u.o.len == b->u.o.len,
                  "line %d: session fields %zu -> %zu", line, a->u.o.len,
                  b->u.o.len);
    for (size_t i = 0; i < a->u.o.len; i++) {
        const struct json_member *m = &a->u.o.members[i];
        const struct json_value *other = json_get(b, m->key);

        if (strcmp(m->key, "metrics") == 0)
            continue;
        ck_assert_msg(other != NULL && json_same(m->value, other),
                      "line %d: the victim's session.%s changed: %s -> %s",
                      line, m->key, json_text(m->value), json_text(other));
    }
    ck_assert_msg(json_same(before->messages, now.messages),
                  "line %d: the victim's messages changed: %.300s -> %.300s",
                  line, json_text(before->messages), json_text(now.messages));
    ck_assert_msg(json_same(before->memory, now.memory),
                  "line %d: the victim's memory changed: %s -> %s", line,
                  json_text(before->memory), json_text(now.memory));
}

static int64_t
metric(const struct json_value *session, const char *name)
{
    return jint(jobj(session, "metrics"), name);
}

/* ====================================================================== */
/* Tokens. */

static const char *
hs_sign(const EVP_MD *md, const char *key, size_t key_len, const char *header,
        const char *payload)
{
    const char *input = str("%s.%s", b64url_str(header), b64url_str(payload));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    ck_assert(HMAC(md, key, (int)key_len, (const unsigned char *)input,
                   strlen(input), mac, &n) != NULL);
    return str("%s.%s", input, b64url(mac, n));
}

/* Signed with parley's own secret. */
static const char *
hs256(const char *header, const char *payload)
{
    return hs_sign(EVP_sha256(), env.cfg.jwt_key, env.cfg.jwt_key_len, header,
                   payload);
}

static const char *
read_source_file(const char *rel, size_t *len)
{
    const char *top = getenv("top_srcdir");
    const char *path = str("%s/%s", top && top[0] ? top : ".", rel);
    FILE *f = fopen(path, "rb");
    char *data = arena_alloc(&tc.arena, 16384);

    ck_assert_msg(f != NULL, "cannot open %s", path);
    *len = fread(data, 1, 16383, f);
    fclose(f);
    ck_assert_uint_gt(*len, 0);
    data[*len] = '\0';
    return data;
}

struct bad_token {
    const char *what;
    const char *value; /* the whole Authorization header value */
};

/* Every way a bearer token can be wrong; a, the victim, is the subject
 * where the token names one, so a check skipped anywhere would hand over
 * A's data. */
static size_t
bad_tokens(const struct victim *v, struct bad_token *out, size_t max)
{
    static const char hs[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    long long now = (long long)time(NULL);
    const char *sub = v->u.name;
    const char *claims = str("{\"sub\":\"%s\",\"exp\":%lld}", sub, now + 600);
    const char *good = v->u.token;
    const char *dot2 = strrchr(good, '.');
    const char *other =
        hs256(hs, str("{\"sub\":\"%s-other\",\"exp\":%lld}", sub, now + 600));
    size_t pem_len = 0;
    const char *pem = read_source_file("tests/keys/rsa_public.pem", &pem_len);
    static const char wrong_key[] = "another-secret-that-is-32-bytes-long!!";
    size_t n = 0;

#define BAD(w, v_)                                                             \
    do {                                                                       \
        ck_assert(n < max);                                                    \
        out[n].what = (w);                                                     \
        out[n].value = (v_);                                                   \
        n++;                                                                   \
    } while (0)

    BAD("alg none, no signature",
        str("Bearer %s.%s.", b64url_str("{\"alg\":\"none\",\"typ\":\"JWT\"}"),
            b64url_str(claims)));
    BAD("alg None, signed",
        str("Bearer %s", hs256("{\"alg\":\"None\",\"typ\":\"JWT\"}", claims)));
    BAD("alg none, signed",
        str("Bearer %s", hs256("{\"alg\":\"none\"}", claims)));
    BAD("alg hs256 (case)",
        str("Bearer %s", hs256("{\"alg\":\"hs256\"}", claims)));
    BAD("alg HS512 with the right secret",
        str("Bearer %s",
            hs_sign(EVP_sha512(), env.cfg.jwt_key, env.cfg.jwt_key_len,
                    "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", claims)));
    BAD("HS256 signed with the RSA public key PEM",
        str("Bearer %s", hs_sign(EVP_sha256(), pem, pem_len, hs, claims)));
    BAD("RS256 header, HMAC with the public key PEM (key confusion)",
        str("Bearer %s",
            hs_sign(EVP_sha256(), pem, pem_len,
                    "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims)));
    BAD("wrong secret",
        str("Bearer %s", hs_sign(EVP_sha256(), wrong_key, sizeof wrong_key - 1,
                                 hs, claims)));
    BAD("signature stripped", str("Bearer %.*s.", (int)(dot2 - good), good));
    BAD("two parts", str("Bearer %.*s", (int)(dot2 - good), good));
    BAD("signature of another token",
        str("Bearer %.*s%s", (int)(dot2 - good), good, strrchr(other, '.')));
    BAD("payload swapped under a valid signature",
        str("Bearer %.*s.%s%s", (int)(strchr(good, '.') - good), good,
            b64url_str(str("{\"sub\":\"%s\",\"exp\":%lld,\"roles\":"
                           "[\"admin\"]}",
                           sub, now + 600)),
            dot2));
    BAD("expired an hour ago",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":\"%s\",\"exp\":%lld}", sub, now - 3600))));
    BAD("exp as a string",
        str("Bearer %s", hs256(hs, str("{\"sub\":\"%s\",\"exp\":\"%lld\"}", sub,
                                       now + 600))));
    BAD("exp as a float",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":\"%s\",\"exp\":%lld.5}", sub, now + 600))));
    BAD("no exp", str("Bearer %s", hs256(hs, str("{\"sub\":\"%s\"}", sub))));
    BAD("nbf in the future",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", sub,
                          now + 7200, now + 3600))));
    BAD("iat in the future",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld}", sub,
                          now + 7200, now + 3600))));
    BAD("empty sub",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":\"\",\"exp\":%lld}", now + 600))));
    BAD("no sub",
        str("Bearer %s", hs256(hs, str("{\"exp\":%lld}", now + 600))));
    BAD("sub not a string",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":42,\"exp\":%lld}", now + 600))));
    BAD("sub with a control character",
        str("Bearer %s", hs256(hs, str("{\"sub\":\"%s\\u0007\",\"exp\":%lld}",
                                       sub, now + 600))));
    BAD("sub twice (duplicate key)",
        str("Bearer %s", hs256(hs, str("{\"sub\":\"x\",\"sub\":\"%s\","
                                       "\"exp\":%lld}",
                                       sub, now + 600))));
    BAD("crit header",
        str("Bearer %s",
            hs256("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims)));
    BAD("payload not JSON", str("Bearer %s", hs256(hs, "not json")));
    BAD("payload not an object", str("Bearer %s", hs256(hs, "[1,2]")));
    BAD("payload nested deep",
        str("Bearer %s",
            hs256(hs, str("{\"sub\":\"%s\",\"exp\":%lld,\"x\":%s1%s}", sub,
                          now + 600, rep("[", 5000), rep("]", 5000)))));
    BAD("token over 8 KiB",
        str("Bearer %s", hs256(hs, str("{\"sub\":\"%s\",\"exp\":%lld,"
                                       "\"pad\":\"%s\"}",
                                       sub, now + 600, rep("x", 7000)))));
    BAD("base64 padding", str("Bearer %s=", good));
    BAD("four parts", str("Bearer %s.x", good));
    BAD("garbage", "Bearer garbage");
    BAD("three junk parts", "Bearer a.b.c");
    BAD("scheme only", "Bearer");
    BAD("scheme and space", "Bearer ");
    BAD("two spaces", str("Bearer  %s", good));
    BAD("trailing word", str("Bearer %s extra", good));
    BAD("no scheme", good);
    BAD("Basic", str("Basic %s", b64url_str("user:pass")));
    BAD("raw bytes", "Bearer \xff\xfe\x80.\xc0\xaf.x");
    BAD("empty value", "");
#undef BAD
    return n;
}

/* ====================================================================== */
/* JWT: every bad token on every authenticated route -> 401. */

START_TEST(test_jwt_every_route)
{
    struct victim v = victim_new();
    struct snapshot before = snapshot_take(&v);
    struct bad_token bad[64];
    size_t nbad = bad_tokens(&v, bad, 64), routes = 0;

    for (size_t i = 0; i < api_nroutes; i++) {
        const struct route *rt = &api_routes[i];
        const char *path, *body;

        if (!(rt->flags & API_AUTH))
            continue;
        routes++;
        path = route_path(rt, &v);
        body = good_body(rt, &v);
        for (size_t k = 0; k < nbad; k++) {
            struct resp r = send_route(bad[k].value, rt, path, body);

            ck_assert_msg(r.status == 401, "%s %s with %s: %d: %.200s",
                          method_of(rt), rt->pattern, bad[k].what, r.status,
                          r.body);
            expect_error(r, 401, "unauthorized", NULL);
            expect_header(r, "WWW-Authenticate",
                          "Bearer error=\"invalid_token\"");
        }
        /* and none at all */
        {
            struct resp r = send_route(NULL, rt, path, body);

            expect_error(r, 401, "unauthorized", NULL);
            expect_header(r, "WWW-Authenticate",
                          "Bearer error=\"invalid_token\"");
        }
    }
    ck_assert_uint_ge(routes, 20); /* the table was walked */
    expect_untouched(&v, &before);

    /* The victim's own token, scheme in any case, is fine. */
    {
        struct resp r =
            with_auth(str("bEaReR %s", v.u.token), "GET", session_path(v.sid));
        expect_status(r, 200);
    }
}
END_TEST

/* A token longer than nginx's header buffers never reaches parley; nginx
 * answers in JSON. */
START_TEST(test_jwt_oversize_header)
{
    struct victim v = victim_new();
    long long now = (long long)time(NULL);
    const char *huge = hs256("{\"alg\":\"HS256\"}",
                             str("{\"sub\":\"%s\",\"exp\":%lld,\"pad\":\"%s\"}",
                                 v.u.name, now + 600, rep("y", 20000)));
    struct resp r;

    r = with_auth(str("Bearer %s", huge), "GET", session_path(v.sid));
    expect_error(r, 431, "header_too_large", NULL);
    r = with_auth(str("Bearer %s", huge), "DELETE", session_path(v.sid));
    expect_error(r, 431, "header_too_large", NULL);
    (void)get_session(&v.u, v.sid);
}
END_TEST

/* ====================================================================== */
/* Another user's ids: 404 on every route, nothing changes, nothing is
 * even counted. */

START_TEST(test_cross_user_every_route)
{
    struct victim v = victim_new();
    struct user b = user_new("intruder");
    struct snapshot before;
    int64_t requests0, errors0, expected;
    size_t routes = 0;
    struct resp r;

    /* Metrics are written after each response: let A's setup requests
     * land before the counts are read. */
    pause_ms(300);
    before = snapshot_take(&v);
    requests0 = metric(before.session, "request_count");
    errors0 = metric(before.session, "error_count");

    /* Routes that name a session first: once B owns a session of the
     * same name (conversation and import below make one), these would
     * rightly find B's. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < api_nroutes; i++) {
            const struct route *rt = &api_routes[i];
            const char *path, *body;
            bool named = has_param(rt, "{session_id}");

            if (!(rt->flags & API_AUTH) || named != (pass == 0))
                continue;
            routes++;
            path = route_path(rt, &v);
            body = good_body(rt, &v);
            r = as_user(&b, rt, path, body);
            if (named) {
                expect_error(r, 404, "not_found", ANY);
            } else if (strncmp(rt->pattern, "/api/admin/", 11) == 0) {
                expect_error(r, 403, "forbidden", ANY);
            } else if (r.status == 409 && ends_with(rt->pattern, "/import")) {
                /* the conversation route already made B a session of
                 * that name: B's own, so B's conflict */
                expect_error(r, 409, "conflict", "session_id");
            } else {
                /* lists, stats, create, conversation, import: B's own */
                ck_assert_msg(r.status < 400, "%s %s: %d: %.300s",
                              method_of(rt), rt->pattern, r.status, r.body);
                ck_assert_msg(strstr(r.body, "secret one") == NULL &&
                                  strstr(r.body, "\"A's\"") == NULL &&
                                  strstr(r.body, v.mid) == NULL,
                              "%s %s shows A's data: %.300s", method_of(rt),
                              rt->pattern, r.body);
            }
            /* If-Match cannot make a difference either. */
            if (named && rt->method != HTTP_GET) {
                const char *hdrs[] = {str("Authorization: Bearer %s", b.token),
                                      "If-Match: *", body ? JSON_CT : NULL,
                                      NULL};

                r = send_raw(NULL, method_of(rt), path, hdrs, body,
                             body ? strlen(body) : 0);
                expect_error(r, 404, "not_found", ANY);
            }
        }
    }
    ck_assert_uint_ge(routes, 20);

    /* B's list and stats show only what B made above. */
    r = api(&b, "GET", str(SESSIONS "?search=%s", "A%27s"), NULL);
    expect_list(r, 0, 20, 0, 0, false);

    /* A's data: untouched, and B's ~50 requests not counted for it.  A
     * made three requests for the snapshot; each poll below is one more,
     * counted once it is written. */
    pause_ms(300);
    expect_untouched(&v, &before);
    expected = requests0 + 3 + 3; /* both snapshots */
    for (int poll = 0;; poll++) {
        const struct json_value *s;

        pause_ms(100);
        s = get_session(&v.u, v.sid);
        ck_assert_msg(metric(s, "request_count") <= expected + poll,
                      "A's session counted %lld requests, A made %lld: "
                      "another user's requests were counted for it",
                      (long long)metric(s, "request_count"),
                      (long long)(expected + poll));
        ck_assert_int_eq(metric(s, "error_count"), errors0);
        if (metric(s, "request_count") == expected + poll)
            break;
        ck_assert_msg(poll < 30, "A's request count never settled at %lld",
                      (long long)(expected + poll));
    }
}
END_TEST

/* ====================================================================== */
/* Mass assignment: the server's fields in a body are refused (400
 * unknown_field naming the field), and nothing is stored. */

struct masked {
    const char *field;
    const char *value; /* JSON */
};

static const struct masked server_fields[] = {
    {"user_id", "\"someone-else\""},
    {"id", "\"550e8400-e29b-41d4-a716-446655440000\""},
    {"_id", "{\"$oid\":\"507f1f77bcf86cd799439011\"}"},
    {"seq", "1"},
    {"version", "99"},
    {"created_at", "\"2000-01-01T00:00:00.000Z\""},
    {"updated_at", "\"2000-01-01T00:00:00.000Z\""},
    {"last_activity_at", "\"2000-01-01T00:00:00.000Z\""},
    {"message_count", "1000"},
    {"metrics", "{\"request_count\":0}"},
    {"session_uuid", "\"550e8400-e29b-41d4-a716-446655440000\""},
};

#define N_SERVER_FIELDS (sizeof server_fields / sizeof server_fields[0])

START_TEST(test_mass_assignment)
{
    struct victim v = victim_new();
    struct snapshot before = snapshot_take(&v);
    const char *one = str(SESSIONS "/%s", v.sid);
    const char *msgs = str(SESSIONS "/%s/messages", v.sid);
    const char *msg = str(SESSIONS "/%s/messages/%s", v.sid, v.mid);
    struct resp r;

    for (size_t i = 0; i < N_SERVER_FIELDS; i++) {
        const char *f = server_fields[i].field, *val = server_fields[i].value;

        r = api(&v.u, "POST", SESSIONS,
                str("{\"session_id\":\"new\",\"%s\":%s}", f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "PATCH", one,
                str("{\"session_name\":\"x\",\"%s\":%s}", f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "POST", str("%s/end", one),
                str("{\"status\":\"completed\",\"%s\":%s}", f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "POST", msgs,
                str("{\"role\":\"user\",\"content\":\"x\",\"%s\":%s}", f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "POST", msgs,
                str("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                    "{\"role\":\"user\",\"content\":\"y\",\"%s\":%s}]}",
                    f, val));
        expect_error(r, 400, "unknown_field", str("messages[1].%s", f));
        r = api(&v.u, "POST", msgs,
                str("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                    "\"%s\":%s}",
                    f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "PATCH", msg,
                str("{\"content\":\"x\",\"%s\":%s}", f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "POST", SESSIONS "/conversation",
                str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                    "\"content\":\"x\"}],\"%s\":%s}",
                    v.sid, f, val));
        expect_error(r, 400, "unknown_field", f);
        r = api(&v.u, "POST", SESSIONS "/conversation",
                str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                    "\"content\":\"x\",\"%s\":%s}]}",
                    v.sid, f, val));
        expect_error(r, 400, "unknown_field", str("messages[0].%s", f));
    }
    /* status is the server's on create and on messages; role and the
     * message's session_id cannot be patched. */
    r = api(&v.u, "POST", SESSIONS, "{\"status\":\"completed\"}");
    expect_error(r, 400, "unknown_field", "status");
    r = api(&v.u, "POST", msgs,
            "{\"role\":\"user\",\"content\":\"x\",\"status\":\"failed\"}");
    expect_error(r, 400, "unknown_field", "status");
    r = api(&v.u, "PATCH", msg, "{\"role\":\"system\"}");
    expect_error(r, 400, "unknown_field", "role");
    r = api(&v.u, "PATCH", msg, "{\"session_id\":\"elsewhere\"}");
    expect_error(r, 400, "unknown_field", "session_id");

    /* Import: whose data it is can never come from the body; the server's
     * other fields in an export are ignored (a fresh id, version 1, seqs
     * from 1). */
    r = api(&v.u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"%s\",\"user_id\":\"x\"},"
                "\"messages\":[]}",
                uniq("imp")));
    expect_error(r, 400, "unknown_field", "session.user_id");
    r = api(&v.u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"%s\"},\"messages\":[{\"role\":"
                "\"user\",\"content\":\"x\",\"user_id\":\"x\"}]}",
                uniq("imp")));
    expect_error(r, 400, "unknown_field", "messages[0].user_id");
    r = api(&v.u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"%s\"},\"messages\":[],"
                "\"user_id\":\"x\"}",
                uniq("imp")));
    expect_error(r, 400, "unknown_field", "user_id");
    {
        const char *sid = uniq("imp");
        const struct json_value *s, *m;

        r = api(&v.u, "POST", SESSIONS "/import",
                str("{\"session\":{\"session_id\":\"%s\",\"id\":\"%s\","
                    "\"version\":99,\"message_count\":1000,"
                    "\"metrics\":{\"request_count\":5},"
                    "\"created_at\":\"2000-01-01T00:00:00.000Z\"},"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"m\","
                    "\"id\":\"%s\",\"seq\":77,"
                    "\"created_at\":\"2000-01-01T00:00:00.000Z\"}]}",
                    sid, v.mid, v.mid));
        s = expect_session(r, 201);
        ck_assert_str_ne(jstr(s, "id"), v.mid);
        ck_assert_int_eq(jint(s, "version"), 1);
        ck_assert_int_eq(jint(s, "message_count"), 1);
        ck_assert_str_ne(jstr(s, "created_at"), "2000-01-01T00:00:00.000Z");
        r = api(&v.u, "GET", str(SESSIONS "/%s/messages", sid), NULL);
        m = jarr(r.json, "items")->u.a.items[0];
        ck_assert_int_eq(jint(m, "seq"), 1);
        ck_assert_str_ne(jstr(m, "id"), v.mid);
    }

    /* A memory value is the client's data, whatever its keys: stored as
     * given, it changes nothing else. */
    r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/other", v.sid),
            "{\"user_id\":\"someone-else\",\"version\":9}");
    expect_status(r, 200);
    expect_json(r.json, "{\"key\":\"other\",\"value\":{\"user_id\":"
                        "\"someone-else\",\"version\":9}}");
    r = api(&v.u, "DELETE", str(SESSIONS "/%s/memory/other", v.sid), NULL);
    expect_status(r, 204);

    /* no session was made or changed by any of it (the import above made
     * the one it was asked to) */
    r = api(&v.u, "GET", SESSIONS, NULL);
    expect_list(r, 2, 20, 0, 2, false);
    expect_untouched(&v, &before);
}
END_TEST

/* ====================================================================== */
/* Keys a document store could read as operators or paths, anywhere in
 * metadata, extra_data and memory values. */

START_TEST(test_operator_keys)
{
    static const char *const docs[] = {
        "{\"$set\":{\"user_id\":\"x\"}}",
        "{\"$where\":\"sleep(1000)\"}",
        "{\"a.b\":1}",
        "{\"ok\":{\"$gt\":\"\"}}",
        "{\"ok\":{\"deep\":{\"x.y\":true}}}",
        "{\"list\":[1,{\"$ne\":null}]}",
        "{\"list\":[[{\"..\":1}]]}",
        "{\".\":1}",
        "{\"$\":1}",
        "{\"\":1}",
    };
    struct victim v = victim_new();
    struct snapshot before = snapshot_take(&v);
    const char *one = str(SESSIONS "/%s", v.sid);
    const char *msgs = str(SESSIONS "/%s/messages", v.sid);
    const char *msg = str(SESSIONS "/%s/messages/%s", v.sid, v.mid);
    struct resp r;

    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        const char *d = docs[i];

        r = api(&v.u, "POST", SESSIONS, str("{\"metadata\":%s}", d));
        expect_error(r, 400, "validation_error", "metadata");
        r = api(&v.u, "PATCH", one, str("{\"metadata\":%s}", d));
        expect_error(r, 400, "validation_error", "metadata");
        r = api(
            &v.u, "POST", msgs,
            str("{\"role\":\"user\",\"content\":\"x\",\"extra_data\":%s}", d));
        expect_error(r, 400, "validation_error", "extra_data");
        /* extra_data may be any value: an array around it changes nothing */
        r = api(&v.u, "POST", msgs,
                str("{\"role\":\"user\",\"content\":\"x\",\"extra_data\":[%s]}",
                    d));
        expect_error(r, 400, "validation_error", "extra_data");
        r = api(&v.u, "POST", msgs,
                str("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                    "{\"role\":\"tool\",\"content\":\"y\",\"extra_data\":%s}]}",
                    d));
        expect_error(r, 400, "validation_error", "messages[1].extra_data");
        r = api(&v.u, "PATCH", msg, str("{\"extra_data\":%s}", d));
        expect_error(r, 400, "validation_error", "extra_data");
        r = api(&v.u, "POST", SESSIONS "/conversation",
                str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                    "\"content\":\"x\",\"extra_data\":%s}]}",
                    v.sid, d));
        expect_error(r, 400, "validation_error", "messages[0].extra_data");
        r = api(&v.u, "POST", SESSIONS "/import",
                str("{\"session\":{\"session_id\":\"%s\",\"metadata\":%s},"
                    "\"messages\":[]}",
                    uniq("imp"), d));
        expect_error(r, 400, "validation_error", ANY);
        r = api(&v.u, "POST", SESSIONS "/import",
                str("{\"session\":{\"session_id\":\"%s\"},\"messages\":[{"
                    "\"role\":\"user\",\"content\":\"x\",\"extra_data\":%s}]}",
                    uniq("imp"), d));
        expect_error(r, 400, "validation_error", ANY);
        r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/k", v.sid), d);
        expect_error(r, 400, "validation_error", "value");
        r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/%s", v.sid, v.key),
                str("[\"x\",%s]", d));
        expect_error(r, 400, "validation_error", "value");
    }

    /* '$' or '.' not at a key's start, and in values, are plain data */
    r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/plain", v.sid),
            "{\"a$b\":\"$gt\",\"x\":\"a.b\"}");
    expect_status(r, 200);
    r = api(&v.u, "DELETE", str(SESSIONS "/%s/memory/plain", v.sid), NULL);
    expect_status(r, 204);

    r = api(&v.u, "GET", SESSIONS, NULL);
    expect_list(r, 1, 20, 0, 1, false);
    expect_untouched(&v, &before);
}
END_TEST

/* ====================================================================== */
/* Bodies that are not acceptable JSON, on every route that takes one. */

START_TEST(test_hostile_json_every_body_route)
{
    struct victim v = victim_new();
    struct snapshot before = snapshot_take(&v);
    static const struct {
        const char *body;
        size_t len; /* 0: strlen */
    } bad[] = {
        {"{\"x\":\"\xff\"}", 0},
        {"{\"x\":\"\xc0\xaf\"}", 0},         /* overlong '/' */
        {"{\"x\":\"\xed\xa0\x80\"}", 0},     /* an encoded surrogate */
        {"{\"x\":\"\xf4\x90\x80\x80\"}", 0}, /* past U+10FFFF */
        {"{\"x\":\"\xe2\x82\"}", 0},         /* cut short */
        {"{\"\xff\":1}", 0},                 /* in a key */
        {"{\"x\":\"a\\u0000b\"}", 0},
        {"{\"a\\u0000b\":1}", 0},
        {"{\"x\":\"a\0b\"}", 10},   /* a raw NUL */
        {"{\"x\":\"\\ud800\"}", 0}, /* a lone surrogate escape */
        {"{\"x\":\"\\udc00\\ud800\"}", 0},
        {"{\"a\":1,\"a\":2}", 0},
        {"{\"a\":{\"b\":1,\"b\":1}}", 0},
        {"{\"x\":1e400}", 0},
        {"{\"x\":-1e400}", 0},
        {"{\"x\":99999999999999999999}", 0},
        {"{\"x\":-99999999999999999999}", 0},
        {"{\"x\":9223372036854775808}", 0},
        {"{\"x\":NaN}", 0},
        {"{\"x\":Infinity}", 0},
        {"{\"x\":0x10}", 0},
        {"{\"x\":01}", 0},
        {"{\"x\":1}x", 0},
        {"{\"x\":1}{}", 0},
        {"{\"x\":1,}", 0},
        {"{'x':1}", 0},
        {"{\"x\":1\x0b}", 0},
        {"\xef\xbb\xbf{}", 0},   /* a byte-order mark */
        {"{\"x\":\"a\nb\"}", 0}, /* a raw control character */
    };
    /* 100 000 levels of arrays, of objects and of both. */
    const char *deep[] = {
        str("%s%s", rep("[", 100000), rep("]", 100000)),
        str("%s1%s", rep("{\"a\":", 100000), rep("}", 100000)),
        str("{\"metadata\":%s}", rep("[{\"a\":", 50000)), /* never closed */
        str("%s%s", rep("[", 33), rep("]", 33)),          /* one past 32 */
    };
    size_t routes = 0;

    for (size_t i = 0; i < api_nroutes; i++) {
        const struct route *rt = &api_routes[i];
        const char *path;

        if (!(rt->flags & API_AUTH) || !(rt->flags & (API_BODY | API_BODY_ANY)))
            continue;
        routes++;
        path = route_path(rt, &v);
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            const char *hdrs[] = {str("Authorization: Bearer %s", v.u.token),
                                  JSON_CT, NULL};
            size_t len = bad[k].len ? bad[k].len : strlen(bad[k].body);
            struct resp r =
                send_raw(NULL, method_of(rt), path, hdrs, bad[k].body, len);

            ck_assert_msg(r.status == 400, "%s %s body #%zu: %d: %.200s",
                          method_of(rt), rt->pattern, k, r.status, r.body);
            expect_error(r, 400, "invalid_json", NULL);
        }
        for (size_t k = 0; k < sizeof deep / sizeof deep[0]; k++) {
            struct resp r = api(&v.u, method_of(rt), path, deep[k]);

            ck_assert_msg(r.status == 400, "%s %s deep #%zu: %d", method_of(rt),
                          rt->pattern, k, r.status);
            expect_error(r, 400, "invalid_json", NULL);
        }
    }
    ck_assert_uint_ge(routes, 8);
    /* parley is still serving, every worker of it */
    for (int i = 0; i < 8; i++)
        (void)get_session(&v.u, v.sid);
    expect_untouched(&v, &before);
}
END_TEST

/* ====================================================================== */
/* Header, URI and body limits: nginx or parley answers in JSON. */

START_TEST(test_limits)
{
    struct victim v = victim_new();
    struct snapshot before = snapshot_take(&v);
    const size_t mib = 1024 * 1024;
    const char *over = str("{\"x\":\"%s\"}", rep("a", mib + 1 - 8));
    size_t routes = 0;
    struct resp r;

    /* a body over 1 MiB on every route that takes one, plain and chunked */
    ck_assert_uint_eq(strlen(over), mib + 1);
    for (size_t i = 0; i < api_nroutes; i++) {
        const struct route *rt = &api_routes[i];
        const char *hdrs[] = {str("Authorization: Bearer %s", v.u.token),
                              JSON_CT, NULL};
        struct e2e_http_request req;

        if (!(rt->flags & API_AUTH) || !(rt->flags & (API_BODY | API_BODY_ANY)))
            continue;
        routes++;
        r = api(&v.u, method_of(rt), route_path(rt, &v), over);
        expect_error(r, 413, "payload_too_large", NULL);
        memset(&req, 0, sizeof req);
        req.method = method_of(rt);
        req.target = route_path(rt, &v);
        req.headers = hdrs;
        req.body = over;
        req.body_len = strlen(over);
        req.chunked = true;
        r = send_req(NULL, req);
        expect_error(r, 413, "payload_too_large", NULL);
    }
    ck_assert_uint_ge(routes, 8);

    /* a request line over nginx's 16k buffer: 414 */
    r = api(&v.u, "GET", str(SESSIONS "?search=%s", rep("a", 20000)), NULL);
    expect_error(r, 414, "uri_too_long", NULL);
    r = api(&v.u, "GET", str(SESSIONS "/%s", rep("b", 20000)), NULL);
    expect_error(r, 414, "uri_too_long", NULL);
    r = api(&v.u, "DELETE",
            str(SESSIONS "/%s/messages/%s", v.sid, rep("c", 20000)), NULL);
    expect_error(r, 414, "uri_too_long", NULL);

    /* one header line over 16k, or more than 4 x 16k of them: 431 */
    {
        const char *hdrs[] = {str("X-Filler: %s", rep("h", 20000)), NULL};

        r = send_raw(&v.u, "GET", SESSIONS, hdrs, NULL, 0);
        expect_error(r, 431, "header_too_large", NULL);
    }
    {
        const char *line = str("X-Filler-%%d: %s", rep("h", 15000));
        const char *hdrs[] = {str(line, 1), str(line, 2), str(line, 3),
                              str(line, 4), str(line, 5), NULL};

        r = send_raw(&v.u, "GET", SESSIONS, hdrs, NULL, 0);
        ck_assert_msg(r.status == 431 || r.status == 400, "%d", r.status);
        expect_error(r, r.status, ANY, NULL);
    }

    /* parley's own limits on what fits nginx's: a bearer token over
     * 8 KiB (test_jwt_every_route), ids and keys over their lengths, too
     * many query parameters */
    r = api(&v.u, "GET", session_path(rep("s", 256)), NULL);
    expect_error(r, 404, "not_found", ANY);
    r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/%s", v.sid, rep("k", 129)),
            "1");
    expect_error(r, 400, "validation_error", "key");
    {
        struct buf q;

        buf_init(&q);
        for (int i = 0; i < 65; i++)
            buf_printf(&q, "%sp%d=1", i ? "&" : "", i);
        r = api(&v.u, "GET", str(SESSIONS "?%s", q.data), NULL);
        buf_release(&q);
        expect_error(r, 400, "validation_error", ANY);
    }
    expect_untouched(&v, &before);
}
END_TEST

/* ====================================================================== */
/* Query strings: operators, regex, bounds and repeats are refused or
 * taken literally. */

START_TEST(test_query_attacks)
{
    struct victim v = victim_new();
    const char *msgs = str(SESSIONS "/%s/messages", v.sid);
    struct snapshot before;
    static const struct {
        const char *query;
        const char *param;
    } refused[] = {
        {"$ne=1", "$ne"},
        {"%24where=1", "$where"},
        {"status[$ne]=active", "status[$ne]"},
        {"status%5B%24ne%5D=active", "status[$ne]"},
        {"agent_name[$regex]=.*", "agent_name[$regex]"},
        {"limit=-1", "limit"},
        {"limit=-0", "limit"},
        {"limit=0", "limit"},
        {"limit=1e3", "limit"},
        {"limit=0x10", "limit"},
        {"limit=%2010", "limit"},
        {"limit=10%00", "limit"},
        {"limit=99999999999999999999", "limit"},
        {"offset=100001", "offset"},
        {"offset=99999999999999999999", "offset"},
        {"offset=-9223372036854775808", "offset"},
        {"page=1000001", "page"},
        {"page=1000000&size=200", "page"},
        {"limit=1&limit=2", "limit"},
        {"limit=1&limit=1", "limit"},
        {"search=a&search=b", "search"},
        {"search=", "search"},
        {"search=%ZZ", "search"},
        {"search=a%00b", "search"},
        {"search=%C0%AF", "search"},
    };
    struct resp r;
    const char *contents[] = {"plain text",  "a+b=c",        "(x)",   "^start$",
                              "back\\slash", "a.*b literal", "$where"};

    for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++) {
        struct buf b;

        buf_init(&b);
        buf_adds(&b, "{\"role\":\"user\",\"content\":");
        json_write_cstr(&b, contents[i]);
        buf_addch(&b, '}');
        r = api(&v.u, "POST", msgs, b.data);
        buf_release(&b);
        expect_status(r, 201);
    }
    before = snapshot_take(&v);

    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = api(&v.u, "GET", str(SESSIONS "?%s", refused[i].query), NULL);
        expect_error(r, 400, "validation_error", refused[i].param);
        r = api(&v.u, "GET", str("%s?%s", msgs, refused[i].query), NULL);
        expect_error(r, 400, "validation_error", refused[i].param);
    }

    /* every route refuses a parameter it does not take, before it does
     * anything: DELETE with ?$ne=1 deletes nothing */
    for (size_t i = 0; i < api_nroutes; i++) {
        const struct route *rt = &api_routes[i];

        if (!(rt->flags & API_AUTH))
            continue;
        r = as_user(&v.u, rt, str("%s?%%24ne=1", route_path(rt, &v)),
                    good_body(rt, &v));
        if (strncmp(rt->pattern, "/api/admin/", 11) == 0 && r.status == 403)
            continue; /* the role is checked first */
        ck_assert_msg(r.status == 400, "%s %s?$ne=1: %d: %.200s", method_of(rt),
                      rt->pattern, r.status, r.body);
        expect_error(r, 400, "validation_error", "$ne");
    }

    /* search is a literal, case-insensitive substring: regex
     * metacharacters match themselves, and a pattern that would take a
     * regex engine exponential time is just text */
    {
        static const struct {
            const char *q;
            size_t n;
        } lit[] = {
            {"search=.*", 1},      {"search=a%2Bb", 1},
            {"search=%28x%29", 1}, {"search=%5Estart%24", 1},
            {"search=%5C", 1},     {"search=%24where", 1},
            {"search=%5B", 0},     {"search=(a%2B)%2B%24", 0},
            {"search=PLAIN", 1},   {"search=%7B%22%24ne%22%3A1%7D", 0},
        };

        for (size_t i = 0; i < sizeof lit / sizeof lit[0]; i++) {
            r = api(&v.u, "GET", str("%s?%s", msgs, lit[i].q), NULL);
            expect_status(r, 200);
            ck_assert_msg(jarr(r.json, "items")->u.a.len == lit[i].n,
                          "%s: %zu items, want %zu", lit[i].q,
                          jarr(r.json, "items")->u.a.len, lit[i].n);
        }
        r = api(&v.u, "GET",
                str(SESSIONS "?search=%s", "(%28a%2B%29%2B)%2B%24"), NULL);
        expect_list(r, 0, 20, 0, 0, false);
    }

    /* operators as values are values: a literal that matches nothing, or
     * outside the parameter's set */
    r = api(&v.u, "GET", SESSIONS "?agent_name=%24ne", NULL);
    expect_list(r, 0, 20, 0, 0, false);
    r = api(&v.u, "GET", SESSIONS "?agent_name=%7B%22%24ne%22%3Anull%7D", NULL);
    expect_list(r, 0, 20, 0, 0, false);
    r = api(&v.u, "GET", SESSIONS "?search=%7B%22%24regex%22%3A%22.%22%7D",
            NULL);
    expect_list(r, 0, 20, 0, 0, false);
    r = api(&v.u, "GET", SESSIONS "?search=.*", NULL);
    expect_list(r, 0, 20, 0, 0, false);
    r = api(&v.u, "GET", SESSIONS "?search=a%27s", NULL);
    expect_list(r, 1, 20, 0, 1, false);
    r = api(&v.u, "GET", SESSIONS "?status=%24ne", NULL);
    expect_error(r, 400, "validation_error", "status");
    r = api(&v.u, "GET", SESSIONS "?is_active=%7B%22%24ne%22%3Atrue%7D", NULL);
    expect_error(r, 400, "validation_error", "is_active");
    r = api(&v.u, "GET", str("%s?role=%%24ne", msgs), NULL);
    expect_error(r, 400, "validation_error", "role");
    r = api(&v.u, "GET", str("%s?after_seq=%%7B%%22%%24gt%%22%%3A0%%7D", msgs),
            NULL);
    expect_error(r, 400, "validation_error", "after_seq");

    /* the largest offset is an empty page, not an error */
    r = api(&v.u, "GET", str("%s?offset=100000", msgs), NULL);
    expect_status(r, 200);
    ck_assert_uint_eq(jarr(r.json, "items")->u.a.len, 0);
    expect_untouched(&v, &before);
}
END_TEST

/* ====================================================================== */
/* Paths: encoded slashes, NULs, dot segments and overlong UTF-8 in ids
 * name nothing (404, or 400 for a memory key), never a 500. */

START_TEST(test_path_attacks)
{
    static const char *const ids[] = {
        "a%2Fb",
        "%2F",
        "%00",
        "a%00b",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "..",
        ".",
        "%C0%AF",
        "%C0%AE%C0%AE",
        "%E0%80%AF",
        "%ED%A0%80",
        "%F4%90%80%80",
        "%FF",
        "%",
        "%2",
        "%G0",
        "%24ne",
        "%7B%22%24ne%22%3A1%7D",
        "x%3Fy%23z",
        "x%20y",
        "x%0Ay",
    };
    struct victim v = victim_new();
    struct snapshot before = snapshot_take(&v);
    struct resp r;

    for (size_t i = 0; i < api_nroutes; i++) {
        const struct route *rt = &api_routes[i];

        if (!(rt->flags & API_AUTH) || strchr(rt->pattern, '{') == NULL)
            continue;
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            struct victim w = v;

            /* one parameter at a time, the others real */
            if (has_param(rt, "{session_id}")) {
                w.sid = ids[k];
                r = as_user(&v.u, rt, route_path(rt, &w), good_body(rt, &v));
                expect_refused_path(r);
                /* parley's answer is 404; nginx answers a broken escape
                 * or a NUL with its own 400 before parley sees it */
                if (rt->method == HTTP_GET &&
                    ends_with(rt->pattern, "/{session_id}") &&
                    strstr("% %2 %G0 %00 a%00b", ids[k]) == NULL)
                    expect_error(r, 404, "not_found", ANY);
                w.sid = v.sid;
            }
            if (has_param(rt, "{message_id}")) {
                w.mid = ids[k];
                r = as_user(&v.u, rt, route_path(rt, &w), good_body(rt, &v));
                expect_refused_path(r);
                w.mid = v.mid;
            }
            /* "." and ".." are plain names of the key alphabet: within
             * A's session they name a key like any other (below) */
            if (has_param(rt, "{key}") && strcmp(ids[k], ".") != 0 &&
                strcmp(ids[k], "..") != 0 && strcmp(ids[k], "%2e%2e") != 0) {
                w.key = ids[k];
                r = as_user(&v.u, rt, route_path(rt, &w), good_body(rt, &v));
                expect_refused_path(r);
            }
        }
    }

    /* raw dot segments and doubled slashes, as sent (nginx may refuse
     * them itself) */
    {
        static const char *const raw[] = {
            SESSIONS "/../../../etc/passwd",
            SESSIONS "/x/../../agent-sessions",
            SESSIONS "//x",
            SESSIONS "/x//messages",
            SESSIONS "/./x",
            SESSIONS "/x/messages/../memory",
            "/api/agent-sessions%2F",
            "/api%2Fagent-sessions",
        };

        for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
            r = api(&v.u, "GET", raw[i], NULL);
            if (r.status == 200) {
                /* nginx merged it into a real route: then it is A's own
                 * list, nothing else */
                (void)jarr(r.json, "items");
                continue;
            }
            expect_refused_path(r);
            r = api(&v.u, "DELETE", raw[i], NULL);
            ck_assert_msg(r.status >= 400, "DELETE %s: %d", raw[i], r.status);
            expect_error(r, r.status, ANY, ANY);
        }
    }
    /* a key ".." is just a key, inside A's session and nowhere else */
    r = api(&v.u, "PUT", str(SESSIONS "/%s/memory/%%2e%%2e", v.sid), "7");
    expect_status(r, 200);
    expect_json(r.json, "{\"key\":\"..\",\"value\":7}");
    r = api(&v.u, "GET", str(SESSIONS "/%s/memory/..", v.sid), NULL);
    expect_json(r.json, "{\"key\":\"..\",\"value\":7}");
    r = api(&v.u, "DELETE", str(SESSIONS "/%s/memory/..", v.sid), NULL);
    expect_status(r, 204);

    /* a message id of the right shape but someone else's session */
    r = api(&v.u, "GET", str(SESSIONS "/%s/messages/%s", uniq("none"), v.mid),
            NULL);
    expect_error(r, 404, "not_found", ANY);
    expect_untouched(&v, &before);
}
END_TEST

/* ====================================================================== */

Suite *
e2e_attack_suite(void)
{
    Suite *s = suite_create("e2e-attack");
    TCase *t;

    t = tcase(s, "jwt", 180);
    tcase_add_test(t, test_jwt_every_route);
    tcase_add_test(t, test_jwt_oversize_header);

    t = tcase(s, "cross-user", 120);
    tcase_add_test(t, test_cross_user_every_route);

    t = tcase(s, "mass-assignment", 120);
    tcase_add_test(t, test_mass_assignment);
    tcase_add_test(t, test_operator_keys);

    t = tcase(s, "hostile-json", 180);
    tcase_add_test(t, test_hostile_json_every_body_route);

    t = tcase(s, "limits", 180);
    tcase_add_test(t, test_limits);

    t = tcase(s, "query", 120);
    tcase_add_test(t, test_query_attacks);

    t = tcase(s, "paths", 180);
    tcase_add_test(t, test_path_attacks);
    return s;
}

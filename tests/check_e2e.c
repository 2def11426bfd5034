/*
 * check_e2e.c - the end-to-end suite: real nginx, real parley, real dev
 * database, real sockets.
 *
 * tests/e2e.sh starts the three and runs this program with
 *   PARLEY_E2E_URL     http://127.0.0.1:PORT (nginx; tests/apache.sh and
 *                      tests/spawn_fcgi.sh run it against other fronts)
 *   PARLEY_E2E_CONFIG  the config file parley was started with
 *   PARLEY_E2E_SECRET  its HS256 secret (overrides the file's)
 *   PARLEY_E2E_BIN     the parley binary (for `parley token`)
 *
 * The shared helpers live in e2e_util.c; messages, context, conversation,
 * memory and metrics are check_e2e_messages.c's suite, run here too.
 *
 * Each test makes its own users (fresh names), so tests are independent
 * and can run in any order against one database.  nginx rate-limits per
 * client address, so each test sends from addresses of its own
 * (127.B.C.x, bound before connect; all of 127/8 is loopback on Linux) and
 * rotates x within them: no test but the one that means to can trip the
 * limiter, however many requests it sends.
 *
 * The assertions are the contract's (API.md plus the recorded decisions):
 * exact statuses, error codes and params, headers and fields.  A few hold
 * for every response and are checked on every request in wrap(): a
 * response arrived in time, no 5xx, an X-Request-Id, and a JSON
 * Content-Type whenever there is a body.
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
/* health */

START_TEST(test_healthz)
{
    struct resp r = send_raw(NULL, "GET", "/healthz", NULL, NULL, 0);

    expect_status(r, 200);
    expect_json(r.json, "{\"status\":\"ok\"}");
}
END_TEST

START_TEST(test_readyz)
{
    struct resp r = send_raw(NULL, "GET", "/readyz", NULL, NULL, 0);

    expect_status(r, 200);
    expect_json(r.json, "{\"status\":\"ready\"}");
}
END_TEST

START_TEST(test_request_id)
{
    struct user u = user_new("reqid");
    struct resp a = send_raw(NULL, "GET", "/healthz", NULL, NULL, 0);
    struct resp b = send_raw(NULL, "GET", "/healthz", NULL, NULL, 0);
    struct resp c = api(&u, "GET", SESSIONS "/nope", NULL);
    struct resp d = send_raw(NULL, "GET", SESSIONS, NULL, NULL, 0);

    /* wrap() has checked each carries one; they must differ. */
    ck_assert_str_ne(hdr(&a, "X-Request-Id"), hdr(&b, "X-Request-Id"));
    ck_assert_str_ne(hdr(&c, "X-Request-Id"), hdr(&d, "X-Request-Id"));
    ck_assert_uint_eq(e2e_http_header_count(a.raw, "X-Request-Id"), 1);
    ck_assert_uint_eq(e2e_http_header_count(c.raw, "X-Request-Id"), 1);
}
END_TEST

START_TEST(test_unknown_paths)
{
    struct user u = user_new("paths");
    struct resp r;

    r = api(&u, "GET", "/api/nope", NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", SESSIONS "/x/nope", NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", SESSIONS "/x/activate/more", NULL);
    assert_error(r, 404, "not_found", ANY);
    r = send_raw(NULL, "GET", "/nope", NULL, NULL, 0);
    assert_error(r, 404, ANY, ANY);
}
END_TEST

START_TEST(test_request_framing)
{
    struct user u = user_new("framing");
    const char *body = "{\"session_id\":\"framed\",\"session_name\":\"a "
                       "body sent in several chunks\"}";
    const char *hdrs[] = {JSON_CT, NULL};
    const char *expect[] = {JSON_CT, "Expect: 100-continue", NULL};
    struct e2e_http_request req;
    const struct json_value *s;
    struct resp r;

    /* a chunked request body arrives whole */
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.target = SESSIONS;
    req.headers = hdrs;
    req.body = body;
    req.body_len = strlen(body);
    req.chunked = true;
    r = send_req(&u, req);
    s = expect_session(r, 201);
    ck_assert_str_eq(jstr(s, "session_name"), "a body sent in several chunks");

    /* so does one announced with Expect: 100-continue */
    r = send_raw(&u, "PATCH", session_path("framed"), expect,
                 "{\"session_name\":\"expected\"}", 27);
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "session_name"), "expected");

    /* item routes refuse unknown query parameters too */
    r = api(&u, "GET", str("%s?foo=1", session_path("framed")), NULL);
    assert_error(r, 400, "validation_error", "foo");
}
END_TEST

/* ====================================================================== */
/* auth */

#define assert_unauthorized(r) assert_unauthorized_at(__LINE__, &(r))

static void
assert_unauthorized_at(int line, const struct resp *r)
{
    assert_error_at(line, r, 401, "unauthorized", ANY);
    expect_header_at(line, r, "WWW-Authenticate",
                     "Bearer error=\"invalid_token\"");
}

START_TEST(test_auth_missing)
{
    struct user u = user_new("auth");
    struct resp r;

    r = send_raw(NULL, "GET", SESSIONS, NULL, NULL, 0);
    assert_unauthorized(r);
    r = send_raw(NULL, "GET", session_path("x"), NULL, NULL, 0);
    assert_unauthorized(r);
    r = send_raw(NULL, "POST", SESSIONS, (const char *[]){JSON_CT, NULL}, "{}",
                 2);
    assert_unauthorized(r);
    /* the valid token works, so the rejections above are about the
     * header */
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
}
END_TEST

START_TEST(test_auth_bad_tokens)
{
    struct user u = user_new("auth");
    int64_t now = (int64_t)time(NULL);
    struct config other = env.cfg;
    static const char other_key[] = "a-different-secret-of-at-least-32-bytes!";
    const char *good = u.token, *dot1, *dot2, *tampered, *none, *expired,
               *wrong;
    const char *payload =
        str("{\"sub\":\"%s\",\"exp\":%lld}", u.name, (long long)(now + 600));

    /* Signed by the right key, but long expired (beyond any leeway). */
    expired = mint(&env.cfg, u.name, now - 7200, 600);
    /* Signed with another secret. */
    other.jwt_key = (char *)(uintptr_t)other_key;
    other.jwt_key_len = sizeof other_key - 1;
    other.jwt_secret = other.jwt_key;
    wrong = mint(&other, u.name, now, 600);
    /* alg "none" with no signature. */
    none = str("%s.%s.", b64url_str("{\"alg\":\"none\",\"typ\":\"JWT\"}"),
               b64url_str(payload));
    /* A valid token with its claims swapped for another user's. */
    dot1 = strchr(good, '.');
    dot2 = strrchr(good, '.');
    ck_assert(dot1 != NULL && dot2 != NULL && dot1 != dot2);
    tampered = str("%.*s.%s%s", (int)(dot1 - good), good,
                   b64url_str(str("{\"sub\":\"%s-x\",\"exp\":%lld}", u.name,
                                  (long long)(now + 600))),
                   dot2);

    const char *bad[] = {
        str("Bearer %s", expired),
        str("Bearer %s", wrong),
        str("Bearer %s", none),
        str("Bearer %.*s", (int)(dot2 - good), good), /* no signature part */
        str("Bearer %s", tampered),
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ",
        "Bearer",
        str("Basic %s", b64url_str("user:pass")),
        str("Token %s", good),
        str("Bearer %s extra", good),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct resp r = with_auth(bad[i], "GET", SESSIONS);

        ck_assert_msg(r.status == 401, "token #%zu: status %d", i, r.status);
        assert_unauthorized(r);
    }

    /* A rejected create stores nothing. */
    {
        const char *hdrs[] = {str("Authorization: Bearer %s", expired), JSON_CT,
                              NULL};
        const char *body = "{\"session_id\":\"should-not-exist\"}";
        struct resp r =
            send_raw(NULL, "POST", SESSIONS, hdrs, body, strlen(body));

        assert_unauthorized(r);
        r = api(&u, "GET", session_path("should-not-exist"), NULL);
        assert_error(r, 404, "not_found", ANY);
    }

    /* and the good token is good */
    {
        struct resp r = with_auth(str("Bearer %s", good), "GET", SESSIONS);
        expect_status(r, 200);
    }
}
END_TEST

START_TEST(test_auth_cli_token)
{
    struct user u = user_new("cli");
    char line[AUTH_MAX_TOKEN_BYTES + 64];
    const char *cmd;
    FILE *p;
    size_t n;
    struct resp r;

    if (env.bin == NULL)
        return; /* PARLEY_E2E_BIN not given */
    cmd =
        str("'%s' token --sub '%s' --ttl 600%s%s%s", env.bin, u.name,
            env.config_path ? " -c '" : "",
            env.config_path ? env.config_path : "", env.config_path ? "'" : "");
    p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "popen %s", cmd);
    n = fread(line, 1, sizeof line - 1, p);
    line[n] = '\0';
    ck_assert_msg(pclose(p) == 0, "%s failed: %s", cmd, line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    ck_assert_msg(n > 0 && strchr(line, '\n') == NULL,
                  "parley token printed more than a token: %s", line);
    u.token = arena_strdup(&tc.arena, line);
    (void)create(&u, "{\"session_id\":\"cli\"}");
    r = api(&u, "GET", SESSIONS, NULL);
    expect_ids(r, "cli");
}
END_TEST

/* ====================================================================== */
/* create */

START_TEST(test_create_all_fields)
{
    struct user u = user_new("create");
    const char *sid = uniq("s");
    const char *body = str(
        "{\"session_id\":\"%s\",\"session_name\":\"Task Planning\","
        "\"description\":\"a \\\"quoted\\\" description\\n\","
        "\"agent_name\":\"TodoAssistant\","
        "\"agent_instructions\":\"You are a helpful planning assistant.\","
        "\"metadata\":{\"source\":\"web\",\"n\":1,\"f\":1.5,\"b\":false,"
        "\"nested\":{\"a\":[1,\"two\",{\"three\":3}]},\"ключ\":\"значение\"},"
        "\"is_active\":true,\"if_exists\":\"error\"}",
        sid);
    struct resp r = api(&u, "POST", SESSIONS, body);
    const struct json_value *s = expect_session(r, 201);

    expect_header(r, "Location", str(SESSIONS "/%s", sid));
    expect_header(r, "ETag", "\"1\"");
    ck_assert_str_eq(jstr(s, "session_id"), sid);
    ck_assert_str_eq(jstr(s, "session_name"), "Task Planning");
    ck_assert_str_eq(jstr(s, "description"), "a \"quoted\" description\n");
    ck_assert_str_eq(jstr(s, "agent_name"), "TodoAssistant");
    ck_assert_str_eq(jstr(s, "agent_instructions"),
                     "You are a helpful planning assistant.");
    expect_json(jobj(s, "metadata"),
                "{\"source\":\"web\",\"n\":1,\"f\":1.5,\"b\":false,"
                "\"nested\":{\"a\":[1,\"two\",{\"three\":3}]},"
                "\"ключ\":\"значение\"}");
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert(jbool(s, "is_active"));
    ck_assert_int_eq(jint(s, "version"), 1);
    ck_assert_int_eq(jint(s, "message_count"), 0);

    /* GET answers the same session */
    r = api(&u, "GET", session_path(sid), NULL);
    expect_session(r, 200);
    expect_header(r, "ETag", "\"1\"");
    expect_same_session(r.json, s);
}
END_TEST

START_TEST(test_create_defaults)
{
    struct user u = user_new("create");
    struct resp r = api(&u, "POST", SESSIONS, "{}");
    const struct json_value *s = expect_session(r, 201);
    const char *id = jstr(s, "id");

    ck_assert_str_eq(jstr(s, "session_id"), id);
    expect_header(r, "Location", str(SESSIONS "/%s", id));
    expect_header(r, "ETag", "\"1\"");
    ck_assert(jis_null(s, "session_name"));
    ck_assert(jis_null(s, "description"));
    ck_assert(jis_null(s, "agent_name"));
    ck_assert(jis_null(s, "agent_instructions"));
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert(jbool(s, "is_active"));
    expect_json(jobj(s, "metadata"), "{}");
    ck_assert_int_eq(jint(s, "message_count"), 0);
    expect_json(jobj(s, "metrics"), "{\"request_count\":0,\"error_count\":0,"
                                    "\"total_processing_ms\":0,"
                                    "\"prompt_tokens\":0,"
                                    "\"completion_tokens\":0}");
    ck_assert_int_eq(jint(s, "version"), 1);

    /* nullable strings accept null */
    s = create(&u, "{\"session_name\":null,\"description\":null,"
                   "\"agent_name\":null,\"agent_instructions\":null}");
    ck_assert(jis_null(s, "session_name"));
    ck_assert(jis_null(s, "agent_instructions"));

    /* two default ids differ */
    ck_assert_str_ne(jstr(s, "id"), id);
    ck_assert_str_eq(jstr(s, "session_id"), jstr(s, "id"));
    s = get_session(&u, id);
    ck_assert_str_eq(jstr(s, "id"), id);
}
END_TEST

START_TEST(test_create_inactive)
{
    struct user u = user_new("create");
    const struct json_value *s = create(&u, "{\"is_active\":false}");

    ck_assert_str_eq(jstr(s, "status"), "inactive");
    ck_assert(!jbool(s, "is_active"));
    ck_assert_int_eq(jint(s, "version"), 1);
}
END_TEST

START_TEST(test_create_if_exists)
{
    struct user u = user_new("create");
    const char *sid = uniq("dup");
    const struct json_value *first = create(
        &u, str("{\"session_id\":\"%s\",\"session_name\":\"one\"}", sid));
    struct resp r;

    r = api(&u, "POST", SESSIONS, str("{\"session_id\":\"%s\"}", sid));
    assert_error(r, 409, "conflict", ANY);
    r = api(&u, "POST", SESSIONS,
            str("{\"session_id\":\"%s\",\"if_exists\":\"error\"}", sid));
    assert_error(r, 409, "conflict", ANY);

    /* "return" answers the stored session untouched */
    r = api(&u, "POST", SESSIONS,
            str("{\"session_id\":\"%s\",\"session_name\":\"two\","
                "\"if_exists\":\"return\"}",
                sid));
    expect_session(r, 200);
    expect_header(r, "ETag", "\"1\"");
    expect_same_session(r.json, first);
    ck_assert_str_eq(jstr(r.json, "session_name"), "one");

    /* "return" when there is none creates it */
    r = api(&u, "POST", SESSIONS,
            str("{\"session_id\":\"%s-new\",\"if_exists\":\"return\"}", sid));
    expect_session(r, 201);

    r = api(&u, "POST", SESSIONS, "{\"if_exists\":\"bogus\"}");
    assert_error(r, 400, "validation_error", "if_exists");
}
END_TEST

START_TEST(test_create_session_id_rules)
{
    struct user u = user_new("sid");
    const char *max = rep("a", 255);
    const char *bad[] = {
        "has space", "slash/x", "caf\u00e9", "",       "a#b",          "a?b",
        "a%20b",     "$ne",     "stats",     "import", "conversation", NULL,
    };
    struct resp r;

    /* the whole alphabet, and 255 chars, are fine and reachable */
    (void)create(&u, "{\"session_id\":\"Az09._:-x\"}");
    (void)get_session(&u, "Az09._:-x");
    (void)create(&u, str("{\"session_id\":\"%s\"}", max));
    (void)get_session(&u, max);

    for (size_t i = 0; bad[i] != NULL; i++) {
        r = api(&u, "POST", SESSIONS, str("{\"session_id\":\"%s\"}", bad[i]));
        assert_error(r, 400, "validation_error", "session_id");
    }
    r = api(&u, "POST", SESSIONS,
            str("{\"session_id\":\"%s\"}", rep("a", 256)));
    assert_error(r, 400, "validation_error", "session_id");
    r = api(&u, "POST", SESSIONS, "{\"session_id\":42}");
    assert_error(r, 400, "validation_error", "session_id");

    /* a path id that cannot be valid is simply not found */
    r = api(&u, "GET", session_path(rep("a", 256)), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", session_path("a%20b"), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", session_path("%24ne"), NULL);
    assert_error(r, 404, "not_found", ANY);

    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 2, 20, 0, 2, false);
}
END_TEST

START_TEST(test_create_string_limits)
{
    struct user u = user_new("limits");
    const struct json_value *s;
    const char *v;
    struct resp r;

    /* 255 chars (4-byte UTF-8 each) fit; 256 do not */
    v = rep("\xf0\x9f\x98\x80", 255);
    s = create(&u, str("{\"session_name\":\"%s\"}", v));
    ck_assert_str_eq(jstr(s, "session_name"), v);
    r = api(&u, "POST", SESSIONS,
            str("{\"session_name\":\"%s\"}", rep("\xf0\x9f\x98\x80", 256)));
    assert_error(r, 400, "validation_error", "session_name");
    r = api(&u, "POST", SESSIONS,
            str("{\"session_name\":\"%s\"}", rep("x", 256)));
    assert_error(r, 400, "validation_error", "session_name");

    s = create(&u, str("{\"agent_name\":\"%s\"}", rep("\xc3\xa9", 255)));
    ck_assert_str_eq(jstr(s, "agent_name"), rep("\xc3\xa9", 255));
    r = api(&u, "POST", SESSIONS,
            str("{\"agent_name\":\"%s\"}", rep("x", 256)));
    assert_error(r, 400, "validation_error", "agent_name");

    /* description: 4 KiB of UTF-8 bytes */
    s = create(&u, str("{\"description\":\"%s\"}", rep("x", 4096)));
    ck_assert_uint_eq(strlen(jstr(s, "description")), 4096);
    (void)create(&u, str("{\"description\":\"%s\"}", rep("\xc3\xa9", 2048)));
    r = api(&u, "POST", SESSIONS,
            str("{\"description\":\"%s\"}", rep("x", 4097)));
    assert_error(r, 400, "validation_error", "description");
    /* 2049 chars but 4098 bytes */
    r = api(&u, "POST", SESSIONS,
            str("{\"description\":\"%s\"}", rep("\xc3\xa9", 2049)));
    assert_error(r, 400, "validation_error", "description");

    /* agent_instructions: 64 KiB */
    (void)create(&u, str("{\"agent_instructions\":\"%s\"}", rep("x", 65536)));
    r = api(&u, "POST", SESSIONS,
            str("{\"agent_instructions\":\"%s\"}", rep("x", 65537)));
    assert_error(r, 400, "validation_error", "agent_instructions");
}
END_TEST

/* {"k":{"k":...{}...}}: depth nested objects */
static const char *
nested_object(int depth)
{
    return str("%s{}%s", rep("{\"k\":", (size_t)depth - 1),
               rep("}", (size_t)depth - 1));
}

START_TEST(test_create_metadata_rules)
{
    struct user u = user_new("meta");
    const struct json_value *s;
    struct resp r;
    /* {"k":"..."} encodes to 8 + n bytes: 16 KiB exactly, and one more */
    const char *at_limit = str("{\"k\":\"%s\"}", rep("x", 16384 - 8));
    const char *over_limit = str("{\"k\":\"%s\"}", rep("x", 16384 - 7));
    const char *bad[] = {
        "{\"$x\":1}",
        "{\"a.b\":1}",
        "{\"\":1}",
        "{\"ok\":{\"$where\":1}}",
        "{\"ok\":{\"deep\":{\"x.y\":1}}}",
        "{\"arr\":[{\"$x\":1}]}",
        "null",
        "[]",
        "\"x\"",
        "1",
        "true",
        NULL,
    };

    s = create(&u, str("{\"metadata\":%s}", at_limit));
    expect_json(jobj(s, "metadata"), at_limit);
    r = api(&u, "POST", SESSIONS, str("{\"metadata\":%s}", over_limit));
    assert_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", SESSIONS,
            str("{\"metadata\":{\"k\":\"%s\"}}", rep("x", 20000)));
    assert_error(r, 400, "validation_error", "metadata");

    /* depth 16 fits, 17 does not */
    s = create(&u, str("{\"metadata\":%s}", nested_object(16)));
    expect_json(jobj(s, "metadata"), nested_object(16));
    r = api(&u, "POST", SESSIONS, str("{\"metadata\":%s}", nested_object(17)));
    assert_error(r, 400, "validation_error", "metadata");
    /* deeper than the JSON limit (32) is refused too, whoever says so */
    r = api(&u, "POST", SESSIONS, str("{\"metadata\":%s}", nested_object(40)));
    assert_error(r, 400, ANY, ANY);
    r = api(&u, "POST", SESSIONS,
            str("{\"metadata\":{\"a\":%s1%s}}", rep("[", 100000),
                rep("]", 100000)));
    assert_error(r, 400, ANY, ANY);

    for (size_t i = 0; bad[i] != NULL; i++) {
        r = api(&u, "POST", SESSIONS, str("{\"metadata\":%s}", bad[i]));
        assert_error(r, 400, "validation_error", "metadata");
    }

    /* keys with $ or . elsewhere are data, not operators */
    s = create(&u, "{\"metadata\":{\"a$b\":\"$gt\",\"x\":{\"y\":\"a.b\"}}}");
    expect_json(jobj(s, "metadata"), "{\"a$b\":\"$gt\",\"x\":{\"y\":\"a.b\"}}");

    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 3, 20, 0, 3, false);
}
END_TEST

START_TEST(test_create_unknown_fields)
{
    struct user u = user_new("unknown");
    const char *fields[] = {
        "foo",
        "id",
        "user_id",
        "version",
        "created_at",
        "updated_at",
        "last_activity_at",
        "message_count",
        "metrics",
        "status",
        "_id",
        NULL,
    };
    struct resp r;

    for (size_t i = 0; fields[i] != NULL; i++) {
        r = api(&u, "POST", SESSIONS,
                str("{\"session_name\":\"x\",\"%s\":\"active\"}", fields[i]));
        assert_error(r, 400, "unknown_field", fields[i]);
    }
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
}
END_TEST

START_TEST(test_create_wrong_types)
{
    struct user u = user_new("types");
    static const struct {
        const char *body;
        const char *param;
    } cases[] = {
        {"{\"session_name\":5}", "session_name"},
        {"{\"session_name\":true}", "session_name"},
        {"{\"session_name\":[\"a\"]}", "session_name"},
        {"{\"description\":{}}", "description"},
        {"{\"agent_name\":1.5}", "agent_name"},
        {"{\"agent_instructions\":false}", "agent_instructions"},
        {"{\"is_active\":\"true\"}", "is_active"},
        {"{\"is_active\":1}", "is_active"},
        {"{\"is_active\":null}", "is_active"},
        {"{\"session_id\":null}", "session_id"},
        {"{\"session_id\":{\"$ne\":null}}", "session_id"},
        {"{\"if_exists\":1}", "if_exists"},
    };
    struct resp r;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = api(&u, "POST", SESSIONS, cases[i].body);
        assert_error(r, 400, "validation_error", cases[i].param);
    }
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
}
END_TEST

START_TEST(test_create_bad_json)
{
    struct user u = user_new("json");
    const char *bad[] = {
        "{",
        "{\"session_name\":}",
        "nope",
        "{\"session_name\":\"a\",}",
        "{\"session_name\":\"a\",\"session_name\":\"b\"}",
        "{} {}",
        "{}x",
        "{\"session_name\":\"a\\u0000b\"}",
        "{\"session_name\":\"\xff\xfe\"}",
        "{\"session_name\":\"\xc3\"}",
        "{'session_name':'a'}",
        NULL,
    };
    const char *not_objects[] = {"[]",   "[{}]", "\"x\"", "1",
                                 "null", "true", NULL};
    struct resp r;

    for (size_t i = 0; bad[i] != NULL; i++) {
        r = api(&u, "POST", SESSIONS, bad[i]);
        assert_error(r, 400, "invalid_json", NULL);
    }
    for (size_t i = 0; not_objects[i] != NULL; i++) {
        r = api(&u, "POST", SESSIONS, not_objects[i]);
        assert_error(r, 400, ANY, ANY);
    }
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
}
END_TEST

START_TEST(test_create_body_size)
{
    struct user u = user_new("size");
    const size_t mib = 1024 * 1024;
    /* {"metadata":{"k":"xxx"}}: exactly 1 MiB passes nginx and parley's
     * body limit and fails on the metadata limit */
    const char *exact =
        str("{\"metadata\":{\"k\":\"%s\"}}",
            rep("x", mib - strlen("{\"metadata\":{\"k\":\"\"}}")));
    const char *over =
        str("{\"metadata\":{\"k\":\"%s\"}}",
            rep("x", mib + 1 - strlen("{\"metadata\":{\"k\":\"\"}}")));
    const char *huge = str("{\"description\":\"%s\"}", rep("x", 3 * mib));
    struct resp r;

    ck_assert_uint_eq(strlen(exact), mib);
    r = api(&u, "POST", SESSIONS, exact);
    assert_error(r, 400, "validation_error", "metadata");
    r = api(&u, "POST", SESSIONS, over);
    assert_error(r, 413, "payload_too_large", ANY);
    r = api(&u, "POST", SESSIONS, huge);
    assert_error(r, 413, "payload_too_large", ANY);
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
}
END_TEST

START_TEST(test_create_content_type)
{
    struct user u = user_new("ctype");
    const char *body = "{\"session_name\":\"ct\"}";
    const char *bad[] = {
        NULL, /* none at all */
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: application/jsonp",
        "Content-Type: multipart/form-data; boundary=x",
        "Content-Type: json",
    };
    const char *good[] = {
        "Content-Type: application/json; charset=utf-8",
        "Content-Type: Application/JSON",
    };
    struct resp r;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *hdrs[] = {bad[i], NULL};

        r = send_raw(&u, "POST", SESSIONS, bad[i] ? hdrs : NULL, body,
                     strlen(body));
        assert_error(r, 415, "unsupported_media_type", ANY);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *hdrs[] = {good[i], NULL};

        r = send_raw(&u, "POST", SESSIONS, hdrs, body, strlen(body));
        expect_session(r, 201);
    }
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 2, 20, 0, 2, false);
}
END_TEST

/* ====================================================================== */
/* get */

START_TEST(test_get_not_found)
{
    struct user u = user_new("get");
    struct resp r = api(&u, "GET", session_path(uniq("none")), NULL);

    assert_error(r, 404, "not_found", ANY);
}
END_TEST

/* ====================================================================== */
/* list */

/* Every page of a listing, concatenated: session_ids in order. */
static const char **
list_all(const struct user *u, const char *query, size_t page_size,
         size_t total)
{
    const char **ids = arena_calloc(&tc.arena, (total + 1) * sizeof *ids);
    size_t got = 0;

    for (size_t off = 0;; off += page_size) {
        struct resp r = api(u, "GET",
                            str(SESSIONS "?%s%slimit=%zu&offset=%zu", query,
                                query[0] ? "&" : "", page_size, off),
                            NULL);
        size_t n = off >= total              ? 0
                   : total - off < page_size ? total - off
                                             : page_size;
        const struct json_value *items =
            expect_list_at(__LINE__, &r, (int64_t)total, (int64_t)page_size,
                           (int64_t)off, n, off + n < total);

        for (size_t i = 0; i < n; i++)
            ids[got++] = jstr(items->u.a.items[i], "session_id");
        if (n < page_size)
            break;
    }
    return ids;
}

static void
check_sorted(const struct json_value *items, const char *field, bool desc)
{
    for (size_t i = 1; i < items->u.a.len; i++) {
        const char *a = jstr(items->u.a.items[i - 1], field);
        const char *b = jstr(items->u.a.items[i], field);
        int c = strcmp(a, b);

        ck_assert_msg(desc ? c >= 0 : c <= 0,
                      "sort by %s%s: item %zu (%s) before item %zu (%s)",
                      desc ? "-" : "", field, i - 1, a, i, b);
    }
}

START_TEST(test_list_pages)
{
    enum { N = 120 };
    struct user u = user_new("list");
    bool seen[N];
    struct resp r;
    const struct json_value *items;

    for (int i = 0; i < N; i++) {
        if (i == N - 1)
            usleep(3000); /* the newest has an updated_at of its own */
        (void)create(&u, str("{\"session_id\":\"l-%03d\","
                             "\"session_name\":\"List %03d\"}",
                             i, i));
    }

    /* default: limit 20, newest updated_at first */
    r = api(&u, "GET", SESSIONS, NULL);
    items = expect_list(r, N, 20, 0, 20, true);
    ck_assert_str_eq(jstr(items->u.a.items[0], "session_id"), "l-119");

    /* limit/offset pages cover every id exactly once */
    memset(seen, 0, sizeof seen);
    for (int off = 0; off < N; off += 50) {
        size_t n = N - off < 50 ? (size_t)(N - off) : 50;

        r = api(&u, "GET", str(SESSIONS "?limit=50&offset=%d", off), NULL);
        items = expect_list(r, N, 50, off, n, off + (int)n < N);
        for (size_t i = 0; i < n; i++) {
            int k = atoi(jstr(items->u.a.items[i], "session_id") + 2);

            ck_assert_msg(k >= 0 && k < N && !seen[k], "l-%03d twice", k);
            seen[k] = true;
        }
    }
    for (int k = 0; k < N; k++)
        ck_assert_msg(seen[k], "l-%03d never listed", k);

    /* page/size the same way */
    memset(seen, 0, sizeof seen);
    for (int page = 1; page <= 5; page++) {
        size_t n = page < 5 ? 25 : 20;

        r = api(&u, "GET", str(SESSIONS "?page=%d&size=25", page), NULL);
        items = expect_list(r, N, 25, (page - 1) * 25, n, page < 5);
        for (size_t i = 0; i < n; i++) {
            int k = atoi(jstr(items->u.a.items[i], "session_id") + 2);

            ck_assert_msg(k >= 0 && k < N && !seen[k], "l-%03d twice", k);
            seen[k] = true;
        }
    }
    for (int k = 0; k < N; k++)
        ck_assert_msg(seen[k], "l-%03d never listed by page/size", k);
    r = api(&u, "GET", SESSIONS "?page=6&size=25", NULL);
    expect_list(r, N, 25, 125, 0, false);
    r = api(&u, "GET", SESSIONS "?page=2", NULL);
    expect_list(r, N, 20, 20, 20, true);

    /* the edges */
    r = api(&u, "GET", SESSIONS "?limit=200", NULL);
    expect_list(r, N, 200, 0, N, false);
    r = api(&u, "GET", SESSIONS "?limit=1&offset=119", NULL);
    expect_list(r, N, 1, 119, 1, false);
    r = api(&u, "GET", SESSIONS "?limit=1&offset=118", NULL);
    expect_list(r, N, 1, 118, 1, true);
    r = api(&u, "GET", SESSIONS "?offset=120", NULL);
    expect_list(r, N, 20, 120, 0, false);
    r = api(&u, "GET", SESSIONS "?offset=100000", NULL);
    expect_list(r, N, 20, 100000, 0, false);
}
END_TEST

START_TEST(test_list_sort)
{
    enum { N = 30 };
    struct user u = user_new("sort");
    const char *sorts[] = {"updated_at", "-updated_at", "created_at",
                           "-created_at"};
    const char **by_default, **by_updated_desc;
    struct resp r;
    const struct json_value *items;

    for (int i = 0; i < N; i++) {
        usleep(2000); /* distinct created_at (ms) */
        (void)create(&u, str("{\"session_id\":\"s-%02d\"}", i));
    }
    /* touch three, oldest first, so updated_at order differs from
     * created_at order */
    for (int i = 0; i < 3; i++) {
        usleep(5000);
        r = api(&u, "PATCH", session_path(str("s-%02d", 5 + 10 * i)),
                "{\"session_name\":\"touched\"}");
        expect_session(r, 200);
    }

    for (size_t k = 0; k < 4; k++) {
        const char *field = sorts[k][0] == '-' ? sorts[k] + 1 : sorts[k];

        r = api(&u, "GET", str(SESSIONS "?limit=200&sort=%s", sorts[k]), NULL);
        items = expect_list(r, N, 200, 0, N, false);
        check_sorted(items, field, sorts[k][0] == '-');
    }
    r = api(&u, "GET", SESSIONS "?sort=-updated_at&limit=3", NULL);
    items = expect_list(r, N, 3, 0, 3, true);
    ck_assert_str_eq(jstr(items->u.a.items[0], "session_id"), "s-25");
    ck_assert_str_eq(jstr(items->u.a.items[1], "session_id"), "s-15");
    ck_assert_str_eq(jstr(items->u.a.items[2], "session_id"), "s-05");
    r = api(&u, "GET", SESSIONS "?sort=updated_at&limit=1", NULL);
    items = expect_list(r, N, 1, 0, 1, true);
    ck_assert_str_eq(jstr(items->u.a.items[0], "session_id"), "s-00");
    r = api(&u, "GET", SESSIONS "?sort=created_at&limit=1", NULL);
    items = expect_list(r, N, 1, 0, 1, true);
    ck_assert_str_eq(jstr(items->u.a.items[0], "session_id"), "s-00");
    r = api(&u, "GET", SESSIONS "?sort=-created_at&limit=1", NULL);
    items = expect_list(r, N, 1, 0, 1, true);
    ck_assert_str_eq(jstr(items->u.a.items[0], "session_id"), "s-29");

    /* paging is stable (ties broken by id): small pages concatenate to
     * the one big page, and the default order is -updated_at */
    by_default = list_all(&u, "", 7, N);
    by_updated_desc = list_all(&u, "sort=-updated_at", 200, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(strcmp(by_default[i], by_updated_desc[i]) == 0,
                      "item %d: %s by default paging, %s by -updated_at", i,
                      by_default[i], by_updated_desc[i]);
    by_default = list_all(&u, "sort=created_at", 4, N);
    for (int i = 0; i < N; i++)
        ck_assert_str_eq(by_default[i], str("s-%02d", i));
}
END_TEST

START_TEST(test_list_bad_params)
{
    struct user u = user_new("params");
    static const struct {
        const char *query;
        const char *param;
    } cases[] = {
        {"limit=0", "limit"},
        {"limit=201", "limit"},
        {"limit=abc", "limit"},
        {"limit=-1", "limit"},
        {"limit=1.5", "limit"},
        {"limit=", "limit"},
        {"offset=-1", "offset"},
        {"offset=100001", "offset"},
        {"offset=x", "offset"},
        {"page=0", "page"},
        {"page=x", "page"},
        {"size=0", "size"},
        {"size=201", "size"},
        {"limit=1&limit=2", "limit"},
        {"foo=1", "foo"},
        {"user_id=x", "user_id"},
        {"sort=name", "sort"},
        {"sort=", "sort"},
        {"status=bogus", "status"},
        {"status=Active", "status"},
        {"is_active=maybe", "is_active"},
        {"is_active=1", "is_active"},
        {"created_after=yesterday", "created_after"},
        {"created_before=2024-13-01T00:00:00Z", "created_before"},
        {"updated_after=2024-01-01", "updated_after"},
        {"updated_before=2024-01-01T25:00:00Z", "updated_before"},
    };
    struct resp r;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = api(&u, "GET", str(SESSIONS "?%s", cases[i].query), NULL);
        assert_error(r, 400, "validation_error", cases[i].param);
    }
    /* limit/offset and page/size do not mix */
    r = api(&u, "GET", SESSIONS "?limit=10&page=2", NULL);
    assert_error(r, 400, "validation_error", ANY);
    r = api(&u, "GET", SESSIONS "?offset=10&size=5", NULL);
    assert_error(r, 400, "validation_error", ANY);
}
END_TEST

START_TEST(test_list_filters)
{
    struct user u = user_new("filter");
    struct {
        const char *sid, *name, *agent, *status;
        const char *created, *updated;
    } s[] = {
        {"f1", "Alpha Plan", "bot-a", "active", NULL, NULL},
        {"f2", "alpha.*beta", "bot-b", "inactive", NULL, NULL},
        {"f3", "a+b planning", "bot-a", "completed", NULL, NULL},
        {"f4", "GAMMA (draft) ^x$", NULL, "expired", NULL, NULL},
        {"f5",
         "Stra\xc3\x9f"
         "e",
         "bot-c", "failed", NULL, NULL},
    };
    enum { NS = sizeof s / sizeof s[0] };
    static const struct {
        const char *query;
        const char *want; /* space-separated session_ids */
    } cases[] = {
        {"search=alpha", "f1 f2"},
        {"search=ALPHA", "f1 f2"},
        {"search=.*", "f2"},
        {"search=a%2B", "f3"},
        {"search=a%2Bb", "f3"},
        {"search=plan", "f1 f3"},
        {"search=%28draft%29", "f4"},
        {"search=%28", "f4"},
        {"search=%5Ex%24", "f4"},
        {"search=%5EAlpha", ""},
        {"search=a.b", ""},
        {"search=%5B", ""},
        {"search=%24where", ""},
        {"search=%5C", ""},
        {"search=Stra%C3%9Fe", "f5"},
        {"search=zzz", ""},
        {"status=active", "f1"},
        {"status=inactive", "f2"},
        {"status=completed", "f3"},
        {"status=expired", "f4"},
        {"status=failed", "f5"},
        {"is_active=true", "f1"},
        {"is_active=false", "f2 f3 f4 f5"},
        {"agent_name=bot-a", "f1 f3"},
        {"agent_name=bot-c", "f5"},
        {"agent_name=%7B%22%24ne%22%3Anull%7D", ""},
        {"agent_name=nobody", ""},
        {"status=active&agent_name=bot-a", "f1"},
        {"is_active=false&agent_name=bot-a", "f3"},
        {"search=a&status=completed", "f3"},
        {"created_after=2000-01-01T00:00:00Z", "f1 f2 f3 f4 f5"},
        {"created_after=2000-01-01T00:00:00%2B02:00", "f1 f2 f3 f4 f5"},
        {"created_before=2000-01-01T00:00:00Z", ""},
        {"updated_after=2999-01-01T00:00:00.000Z", ""},
        {"updated_before=2999-01-01T00:00:00Z", "f1 f2 f3 f4 f5"},
    };
    struct resp r;
    const struct json_value *items;

    for (int i = 0; i < NS; i++) {
        const char *agent = s[i].agent ? str("\"%s\"", s[i].agent) : "null";

        usleep(10000); /* distinct created_at (ms) */
        (void)create_in_state(&u, s[i].sid, s[i].status,
                              str(",\"session_name\":\"%s\",\"agent_name\":%s",
                                  s[i].name, agent));
    }
    /* a user with look-alike sessions that must never show up */
    {
        struct user other = user_new("filter-other");

        (void)create(&other, "{\"session_id\":\"f1\",\"session_name\":"
                             "\"Alpha Plan\",\"agent_name\":\"bot-a\"}");
    }

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *want[NS + 1];
        size_t n = 0;
        char *copy = arena_strdup(&tc.arena, cases[c].want);

        /* The ids, split at spaces in place (banned.h bans strtok_r). */
        for (char *t = copy; *t != '\0';) {
            size_t len = strcspn(t, " ");
            char *next = t[len] != '\0' ? t + len + 1 : t + len;

            t[len] = '\0';
            if (len > 0)
                want[n++] = t;
            t = next;
        }
        r = api(&u, "GET", str(SESSIONS "?%s", cases[c].query), NULL);
        expect_ids_at(__LINE__, &r, want, n);
    }

    /* time bounds are exclusive: compare against the stored values */
    r = api(&u, "GET", SESSIONS "?limit=200", NULL);
    items = expect_list(r, NS, 200, 0, NS, false);
    for (size_t i = 0; i < NS; i++) {
        const struct json_value *it = items->u.a.items[i];

        for (int k = 0; k < NS; k++)
            if (strcmp(s[k].sid, jstr(it, "session_id")) == 0) {
                s[k].created = jstr(it, "created_at");
                s[k].updated = jstr(it, "updated_at");
            }
    }
    for (int t = 0; t < NS; t++) {
        static const char *const keys[] = {"created_after", "created_before",
                                           "updated_after", "updated_before"};

        for (int k = 0; k < 4; k++) {
            const char *bound = k < 2 ? s[t].created : s[t].updated;
            const char *want[NS];
            size_t n = 0;

            for (int i = 0; i < NS; i++) {
                const char *v = k < 2 ? s[i].created : s[i].updated;
                int c = strcmp(v, bound);

                if ((k % 2 == 0 && c > 0) || (k % 2 == 1 && c < 0))
                    want[n++] = s[i].sid;
            }
            r = api(&u, "GET", str(SESSIONS "?%s=%s", keys[k], bound), NULL);
            expect_ids_at(__LINE__, &r, want, n);
        }
    }
    /* both bounds at once */
    r = api(&u, "GET",
            str(SESSIONS "?created_after=%s&created_before=%s", s[0].created,
                s[3].created),
            NULL);
    expect_ids(r, "f2", "f3");
}
END_TEST

/* ====================================================================== */
/* patch */

START_TEST(test_patch_fields)
{
    struct user u = user_new("patch");
    const char *sid = uniq("p");
    const struct json_value *before =
        create(&u, str("{\"session_id\":\"%s\",\"session_name\":\"old\","
                       "\"description\":\"d\",\"agent_name\":\"a\","
                       "\"agent_instructions\":\"i\"}",
                       sid));
    const struct json_value *s;
    struct resp r;

    usleep(5000);
    r = api(&u, "PATCH", session_path(sid),
            "{\"session_name\":\"new\",\"description\":\"D2\","
            "\"agent_name\":\"A2\",\"agent_instructions\":\"I2\"}");
    s = expect_session(r, 200);
    expect_header(r, "ETag", "\"2\"");
    ck_assert_int_eq(jint(s, "version"), 2);
    ck_assert_str_eq(jstr(s, "session_name"), "new");
    ck_assert_str_eq(jstr(s, "description"), "D2");
    ck_assert_str_eq(jstr(s, "agent_name"), "A2");
    ck_assert_str_eq(jstr(s, "agent_instructions"), "I2");
    ck_assert_str_eq(jstr(s, "id"), jstr(before, "id"));
    ck_assert_str_eq(jstr(s, "session_id"), sid);
    ck_assert_str_eq(jstr(s, "created_at"), jstr(before, "created_at"));
    ck_assert_msg(strcmp(jstr(s, "updated_at"), jstr(before, "updated_at")) > 0,
                  "updated_at %s not after %s", jstr(s, "updated_at"),
                  jstr(before, "updated_at"));
    expect_same_session(get_session(&u, sid), s);

    /* null clears a nullable string */
    r = api(&u, "PATCH", session_path(sid),
            "{\"description\":null,\"agent_name\":null}");
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 3);
    ck_assert(jis_null(s, "description"));
    ck_assert(jis_null(s, "agent_name"));
    ck_assert_str_eq(jstr(s, "session_name"), "new");

    /* any non-empty PATCH is a change, even to the same value */
    r = api(&u, "PATCH", session_path(sid), "{\"session_name\":\"new\"}");
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 4);

    /* {} changes nothing */
    r = api(&u, "PATCH", session_path(sid), "{}");
    s = expect_session(r, 200);
    expect_header(r, "ETag", "\"4\"");
    ck_assert_int_eq(jint(s, "version"), 4);
    expect_same_session(get_session(&u, sid), s);

    /* limits as on create */
    r = api(&u, "PATCH", session_path(sid),
            str("{\"session_name\":\"%s\"}", rep("x", 256)));
    assert_error(r, 400, "validation_error", "session_name");
    r = api(&u, "PATCH", session_path(sid),
            str("{\"description\":\"%s\"}", rep("x", 4097)));
    assert_error(r, 400, "validation_error", "description");
    expect_same_session(get_session(&u, sid), s);

    r = api(&u, "PATCH", session_path(uniq("none")),
            "{\"session_name\":\"x\"}");
    assert_error(r, 404, "not_found", ANY);
}
END_TEST

START_TEST(test_patch_bad_bodies)
{
    struct user u = user_new("patch");
    const char *sid = uniq("p");
    const struct json_value *s =
        create(&u, str("{\"session_id\":\"%s\"}", sid));
    const char *unknown[] = {"foo",           "id",         "version",
                             "user_id",       "created_at", "if_exists",
                             "message_count", NULL};
    static const struct {
        const char *body;
        const char *param;
    } types[] = {
        {"{\"session_name\":1}", "session_name"},
        {"{\"description\":[]}", "description"},
        {"{\"is_active\":\"true\"}", "is_active"},
        {"{\"is_active\":null}", "is_active"},
        {"{\"status\":\"bogus\"}", "status"},
        {"{\"status\":1}", "status"},
        {"{\"metadata\":null}", "metadata"},
        {"{\"metadata\":[1]}", "metadata"},
        {"{\"metadata\":{\"$set\":{\"user_id\":\"x\"}}}", "metadata"},
        {"{\"metadata\":{\"a.b\":1}}", "metadata"},
    };
    struct resp r;

    for (size_t i = 0; unknown[i] != NULL; i++) {
        r = api(&u, "PATCH", session_path(sid),
                str("{\"%s\":\"x\"}", unknown[i]));
        assert_error(r, 400, "unknown_field", unknown[i]);
    }
    /* session_id is the client's name in the path, not patchable */
    r = api(&u, "PATCH", session_path(sid), "{\"session_id\":\"other\"}");
    assert_error(r, 400, ANY, "session_id");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        r = api(&u, "PATCH", session_path(sid), types[i].body);
        assert_error(r, 400, "validation_error", types[i].param);
    }
    r = api(&u, "PATCH", session_path(sid), "{\"session_name\":");
    assert_error(r, 400, "invalid_json", NULL);
    r = api(&u, "PATCH", session_path(sid), "[]");
    assert_error(r, 400, ANY, ANY);
    {
        const char *hdrs[] = {"Content-Type: text/plain", NULL};

        r = send_raw(&u, "PATCH", session_path(sid), hdrs,
                     "{\"session_name\":\"x\"}", 20);
        assert_error(r, 415, "unsupported_media_type", ANY);
    }
    expect_same_session(get_session(&u, sid), s);
}
END_TEST

START_TEST(test_patch_metadata_merge)
{
    struct user u = user_new("merge");
    const char *sid = uniq("m");
    const struct json_value *s;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\",\"metadata\":{\"a\":1,"
                         "\"b\":{\"x\":1},\"c\":\"keep\"}}",
                         sid));
    r = api(&u, "PATCH", session_path(sid),
            "{\"metadata\":{\"a\":2,\"b\":null,\"d\":[true]}}");
    s = expect_session(r, 200);
    expect_json(jobj(s, "metadata"), "{\"a\":2,\"c\":\"keep\",\"d\":[true]}");
    ck_assert_int_eq(jint(s, "version"), 2);
    expect_json(jobj(get_session(&u, sid), "metadata"),
                "{\"a\":2,\"c\":\"keep\",\"d\":[true]}");

    /* removing a key that is not there is fine */
    r = api(&u, "PATCH", session_path(sid), "{\"metadata\":{\"zz\":null}}");
    s = expect_session(r, 200);
    expect_json(jobj(s, "metadata"), "{\"a\":2,\"c\":\"keep\",\"d\":[true]}");

    /* the merged result is held to the limits: two halves that fit alone
     * do not fit together, and nothing is stored */
    r = api(&u, "PATCH", session_path(sid),
            str("{\"metadata\":{\"big1\":\"%s\"}}", rep("x", 9000)));
    s = expect_session(r, 200);
    r = api(&u, "PATCH", session_path(sid),
            str("{\"metadata\":{\"big2\":\"%s\"}}", rep("y", 9000)));
    assert_error(r, 400, "validation_error", "metadata");
    expect_same_session(get_session(&u, sid), s);
    /* ...but replacing big1 by big2 fits */
    r = api(
        &u, "PATCH", session_path(sid),
        str("{\"metadata\":{\"big1\":null,\"big2\":\"%s\"}}", rep("y", 9000)));
    s = expect_session(r, 200);
    ck_assert(json_get(jobj(s, "metadata"), "big1") == NULL);
    ck_assert_uint_eq(strlen(jstr(jobj(s, "metadata"), "big2")), 9000);

    /* depth is re-checked on the merged value too */
    r = api(&u, "PATCH", session_path(sid),
            str("{\"metadata\":{\"deep\":%s}}", nested_object(16)));
    assert_error(r, 400, "validation_error", "metadata");
    expect_same_session(get_session(&u, sid), s);
}
END_TEST

START_TEST(test_patch_if_match)
{
    struct user u = user_new("ifmatch");
    const char *sid = uniq("im");
    const char *path = session_path(sid);
    const struct json_value *s;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api_h(&u, "PATCH", path, "If-Match: \"1\"", "{\"session_name\":\"a\"}");
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 2);
    r = api_h(&u, "PATCH", path, "If-Match: 2", "{\"session_name\":\"b\"}");
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 3);
    r = api_h(&u, "PATCH", path, "If-Match: *", "{\"session_name\":\"c\"}");
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 4);

    /* stale, future and weak versions all fail; nothing changes */
    r = api_h(&u, "PATCH", path, "If-Match: \"1\"", "{\"session_name\":\"x\"}");
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "PATCH", path, "If-Match: 3", "{\"session_name\":\"x\"}");
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "PATCH", path, "If-Match: \"5\"", "{\"session_name\":\"x\"}");
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "PATCH", path, "If-Match: W/\"4\"",
              "{\"session_name\":\"x\"}");
    assert_error(r, 412, "precondition_failed", ANY);
    expect_same_session(get_session(&u, sid), s);

    /* malformed */
    r = api_h(&u, "PATCH", path, "If-Match: abc", "{\"session_name\":\"x\"}");
    assert_error(r, 400, "validation_error", "If-Match");
    r = api_h(&u, "PATCH", path, "If-Match: \"4", "{\"session_name\":\"x\"}");
    assert_error(r, 400, "validation_error", "If-Match");
    r = api_h(&u, "PATCH", path, "If-Match: -1", "{\"session_name\":\"x\"}");
    assert_error(r, 400, "validation_error", "If-Match");
    expect_same_session(get_session(&u, sid), s);

    /* the matching version, in the ETag's own form */
    r = api(&u, "GET", path, NULL);
    expect_header(r, "ETag", "\"4\"");
    r = api_h(&u, "PATCH", path, str("If-Match: %s", hdr(&r, "ETag")),
              "{\"session_name\":\"e\"}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "session_name"), "e");
    ck_assert_int_eq(jint(s, "version"), 5);
}
END_TEST

START_TEST(test_patch_status)
{
    struct user u = user_new("pstatus");
    const char *sid = uniq("ps");
    const char *path = session_path(sid);
    const struct json_value *s;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api(&u, "PATCH", path, "{\"status\":\"inactive\"}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "inactive");
    ck_assert(!jbool(s, "is_active"));
    ck_assert_int_eq(jint(s, "version"), 2);

    r = api(&u, "PATCH", path, "{\"is_active\":true}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert_int_eq(jint(s, "version"), 3);

    r = api(&u, "PATCH", path, "{\"is_active\":false}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "inactive");
    ck_assert_int_eq(jint(s, "version"), 4);

    /* both, consistent */
    r = api(&u, "PATCH", path, "{\"status\":\"active\",\"is_active\":true}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert_int_eq(jint(s, "version"), 5);

    /* both, inconsistent */
    r = api(&u, "PATCH", path, "{\"status\":\"inactive\",\"is_active\":true}");
    assert_error(r, 400, "validation_error", ANY);
    r = api(&u, "PATCH", path, "{\"status\":\"completed\",\"is_active\":true}");
    assert_error(r, 400, "validation_error", ANY);
    expect_same_session(get_session(&u, sid), s);

    /* with other fields in the same PATCH */
    r = api(&u, "PATCH", path,
            "{\"status\":\"completed\",\"session_name\":\"done\"}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "completed");
    ck_assert_str_eq(jstr(s, "session_name"), "done");
    ck_assert_int_eq(jint(s, "version"), 6);

    /* completed is final; the failed PATCH changes no other field */
    r = api(&u, "PATCH", path, "{\"status\":\"active\"}");
    assert_error(r, 409, "conflict", ANY);
    r = api(&u, "PATCH", path, "{\"is_active\":true,\"session_name\":\"no\"}");
    assert_error(r, 409, "conflict", ANY);
    r = api(&u, "PATCH", path, "{\"status\":\"expired\"}");
    assert_error(r, 409, "conflict", ANY);
    expect_same_session(get_session(&u, sid), s);
}
END_TEST

/* ====================================================================== */
/* delete */

START_TEST(test_delete)
{
    struct user u = user_new("delete");
    const char *sid = uniq("d");
    const struct json_value *s =
        create(&u, str("{\"session_id\":\"%s\"}", sid));
    const char *old_id = jstr(s, "id");
    struct resp r;

    r = api(&u, "DELETE", session_path(sid), NULL);
    expect_status(r, 204);
    ck_assert_uint_eq(r.body_len, 0);
    r = api(&u, "GET", session_path(sid), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "DELETE", session_path(sid), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "PATCH", session_path(sid), "{\"session_name\":\"x\"}");
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);

    /* the name is free again, for a new session */
    s = create(&u, str("{\"session_id\":\"%s\"}", sid));
    ck_assert_str_ne(jstr(s, "id"), old_id);
    ck_assert_int_eq(jint(s, "version"), 1);
}
END_TEST

START_TEST(test_delete_if_match)
{
    struct user u = user_new("delete");
    const char *sid = uniq("d");
    const struct json_value *s;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api(&u, "PATCH", session_path(sid), "{\"session_name\":\"v2\"}");
    s = expect_session(r, 200);

    r = api_h(&u, "DELETE", session_path(sid), "If-Match: \"1\"", NULL);
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "DELETE", session_path(sid), "If-Match: 7", NULL);
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "DELETE", session_path(sid), "If-Match: nope", NULL);
    assert_error(r, 400, "validation_error", "If-Match");
    expect_same_session(get_session(&u, sid), s);

    /* a body that is not empty or {} is refused, and deletes nothing */
    r = api(&u, "DELETE", session_path(sid), "{\"cascade\":false}");
    assert_error(r, 400, ANY, ANY);
    expect_same_session(get_session(&u, sid), s);

    r = api_h(&u, "DELETE", session_path(sid), "If-Match: \"2\"", NULL);
    expect_status(r, 204);
    r = api(&u, "GET", session_path(sid), NULL);
    assert_error(r, 404, "not_found", ANY);

    /* {} is an acceptable empty body */
    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api(&u, "DELETE", session_path(sid), "{}");
    expect_status(r, 204);
}
END_TEST

/* ====================================================================== */
/* status routes */

enum action {
    ACT_ACTIVATE,
    ACT_DEACTIVATE,
    ACT_COMPLETE,
    ACT_FAIL,
    ACT_EXPIRE
};

static const char *const action_names[] = {
    "activate", "deactivate", "end completed", "end failed", "end expired"};

static struct resp
do_action(const struct user *u, const char *sid, enum action a)
{
    static const char *const end_status[] = {NULL, NULL, "completed", "failed",
                                             "expired"};

    switch (a) {
    case ACT_ACTIVATE:
        return api(u, "PUT", str(SESSIONS "/%s/activate", sid), NULL);
    case ACT_DEACTIVATE:
        return api(u, "PUT", str(SESSIONS "/%s/deactivate", sid), NULL);
    default:
        return api(u, "POST", str(SESSIONS "/%s/end", sid),
                   str("{\"status\":\"%s\"}", end_status[a]));
    }
}

START_TEST(test_status_machine)
{
    static const char *const states[] = {"active", "inactive", "completed",
                                         "failed", "expired"};
    /* result of each action from each state; NULL = 409 */
    static const char *const want[5][5] = {
        /*              activate   deactivate  complete     fail      expire */
        /* active */ {"active", "inactive", "completed", "failed", "expired"},
        /* inactive */ {"active", "inactive", "completed", "failed", "expired"},
        /* completed */ {NULL, NULL, "completed", NULL, NULL},
        /* failed */ {NULL, NULL, NULL, "failed", NULL},
        /* expired */ {"active", NULL, NULL, NULL, "expired"},
    };
    struct user u = user_new("machine");

    for (int from = 0; from < 5; from++) {
        for (int a = 0; a < 5; a++) {
            const char *sid = str("m-%d-%d", from, a);
            const struct json_value *before =
                create_in_state(&u, sid, states[from], "");
            int64_t v = jint(before, "version");
            struct resp r = do_action(&u, sid, (enum action)a);
            const struct json_value *after;

            if (want[from][a] == NULL) {
                ck_assert_msg(r.status == 409, "%s on %s: %d, want 409: %.300s",
                              action_names[a], states[from], r.status, r.body);
                assert_error(r, 409, "conflict", ANY);
                expect_same_session(get_session(&u, sid), before);
                continue;
            }
            ck_assert_msg(r.status == 200, "%s on %s: %d, want 200: %.300s",
                          action_names[a], states[from], r.status, r.body);
            after = expect_session(r, 200);
            ck_assert_msg(strcmp(jstr(after, "status"), want[from][a]) == 0,
                          "%s on %s: status %s, want %s", action_names[a],
                          states[from], jstr(after, "status"), want[from][a]);
            ck_assert(jbool(after, "is_active") ==
                      (strcmp(want[from][a], "active") == 0));
            if (strcmp(want[from][a], states[from]) == 0) {
                /* asking for the status it has: no change at all */
                ck_assert_msg(jint(after, "version") == v,
                              "%s on %s: version %lld, want %lld",
                              action_names[a], states[from],
                              (long long)jint(after, "version"), (long long)v);
                expect_same_session(after, before);
            } else {
                ck_assert_msg(jint(after, "version") == v + 1,
                              "%s on %s: version %lld, want %lld",
                              action_names[a], states[from],
                              (long long)jint(after, "version"),
                              (long long)(v + 1));
            }
            expect_same_session(get_session(&u, sid), after);
        }
    }
}
END_TEST

START_TEST(test_status_chain)
{
    struct user u = user_new("chain");
    const char *sid = uniq("c");
    const struct json_value *s;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = do_action(&u, sid, ACT_DEACTIVATE);
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 2);
    r = do_action(&u, sid, ACT_ACTIVATE);
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 3);
    r = do_action(&u, sid, ACT_EXPIRE);
    s = expect_session(r, 200);
    ck_assert_int_eq(jint(s, "version"), 4);
    r = do_action(&u, sid, ACT_ACTIVATE); /* reactivation */
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert_int_eq(jint(s, "version"), 5);
    r = do_action(&u, sid, ACT_FAIL);
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "failed");
    ck_assert_int_eq(jint(s, "version"), 6);
    r = do_action(&u, sid, ACT_ACTIVATE);
    assert_error(r, 409, "conflict", ANY);
    expect_same_session(get_session(&u, sid), s);
}
END_TEST

START_TEST(test_status_if_match)
{
    struct user u = user_new("sif");
    const char *sid = uniq("si");
    const struct json_value *s;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api_h(&u, "PUT", str(SESSIONS "/%s/deactivate", sid), "If-Match: \"9\"",
              NULL);
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "POST", str(SESSIONS "/%s/end", sid), "If-Match: 9",
              "{\"status\":\"completed\"}");
    assert_error(r, 412, "precondition_failed", ANY);
    r = api_h(&u, "PUT", str(SESSIONS "/%s/activate", sid), "If-Match: x",
              NULL);
    assert_error(r, 400, "validation_error", "If-Match");
    s = get_session(&u, sid);
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert_int_eq(jint(s, "version"), 1);

    r = api_h(&u, "PUT", str(SESSIONS "/%s/deactivate", sid), "If-Match: \"1\"",
              NULL);
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "inactive");
    r = api_h(&u, "POST", str(SESSIONS "/%s/end", sid), "If-Match: 2",
              "{\"status\":\"completed\"}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "completed");
    ck_assert_int_eq(jint(s, "version"), 3);
}
END_TEST

START_TEST(test_status_bodies)
{
    struct user u = user_new("sbody");
    const char *sid = uniq("sb");
    const char *end = str(SESSIONS "/%s/end", sid);
    const char *activate = str(SESSIONS "/%s/activate", sid);
    const char *deactivate = str(SESSIONS "/%s/deactivate", sid);
    const struct json_value *s;
    struct resp r;
    static const struct {
        const char *body;
        const char *code;
        const char *param;
    } bad_end[] = {
        {"{}", "validation_error", "status"},
        {"{\"status\":\"active\"}", "validation_error", "status"},
        {"{\"status\":\"inactive\"}", "validation_error", "status"},
        {"{\"status\":\"bogus\"}", "validation_error", "status"},
        {"{\"status\":null}", "validation_error", "status"},
        {"{\"status\":1}", "validation_error", "status"},
        {"{\"status\":\"completed\",\"x\":1}", "unknown_field", "x"},
        {"{\"status\":", "invalid_json", NULL},
    };

    s = create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (size_t i = 0; i < sizeof bad_end / sizeof bad_end[0]; i++) {
        r = api(&u, "POST", end, bad_end[i].body);
        assert_error(r, 400, bad_end[i].code, bad_end[i].param);
    }
    /* no body at all */
    r = api(&u, "POST", end, NULL);
    assert_error(r, 400, ANY, ANY);
    {
        const char *hdrs[] = {"Content-Type: text/plain", NULL};
        const char *body = "{\"status\":\"completed\"}";

        r = send_raw(&u, "POST", end, hdrs, body, strlen(body));
        assert_error(r, 415, "unsupported_media_type", ANY);
        r = send_raw(&u, "POST", end, NULL, body, strlen(body));
        assert_error(r, 415, "unsupported_media_type", ANY);
    }

    /* activate/deactivate take no body: empty or {} only */
    r = api(&u, "PUT", deactivate, "{\"status\":\"inactive\"}");
    assert_error(r, 400, ANY, ANY);
    r = api(&u, "PUT", activate, "[]");
    assert_error(r, 400, ANY, ANY);
    r = send_raw(&u, "PUT", deactivate, NULL, "{}", 2);
    assert_error(r, 415, "unsupported_media_type", ANY);
    expect_same_session(get_session(&u, sid), s);
    r = api(&u, "PUT", deactivate, "{}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "inactive");
    r = api(&u, "PUT", activate, "{}");
    s = expect_session(r, 200);
    ck_assert_str_eq(jstr(s, "status"), "active");

    /* unknown sessions */
    r = api(&u, "PUT", str(SESSIONS "/%s/activate", uniq("none")), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "POST", str(SESSIONS "/%s/end", uniq("none")),
            "{\"status\":\"failed\"}");
    assert_error(r, 404, "not_found", ANY);
}
END_TEST

/* ====================================================================== */
/* methods */

START_TEST(test_method_not_allowed)
{
    struct user u = user_new("methods");
    static const struct {
        const char *method;
        const char *path;
        const char *allow;
    } cases[] = {
        {"PUT", SESSIONS "/x", "GET, PATCH, DELETE"},
        {"POST", SESSIONS "/x", "GET, PATCH, DELETE"},
        {"POST", SESSIONS "/x/activate", "PUT"},
        {"GET", SESSIONS "/x/activate", "PUT"},
        {"DELETE", SESSIONS "/x/deactivate", "PUT"},
        {"GET", SESSIONS "/x/end", "POST"},
        {"PUT", SESSIONS "/x/end", "POST"},
        {"DELETE", SESSIONS, "GET, POST"},
        {"PATCH", SESSIONS, "GET, POST"},
    };

    (void)create(&u, "{\"session_id\":\"x\"}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *body = strcmp(cases[i].method, "GET") == 0 ||
                                   strcmp(cases[i].method, "DELETE") == 0
                               ? NULL
                               : "{}";
        struct resp r = api(&u, cases[i].method, cases[i].path, body);

        assert_error(r, 405, "method_not_allowed", ANY);
        expect_header(r, "Allow", cases[i].allow);
    }
    /* and the session is as it was */
    ck_assert_int_eq(jint(get_session(&u, "x"), "version"), 1);
}
END_TEST

/* ====================================================================== */
/* BOLA: another user's session does not exist for you */

START_TEST(test_bola)
{
    struct user a = user_new("bola-a");
    struct user b = user_new("bola-b");
    const char *sid = uniq("shared");
    const char *path = session_path(sid);
    const struct json_value *orig =
        create(&a, str("{\"session_id\":\"%s\",\"session_name\":\"A's\","
                       "\"metadata\":{\"owner\":\"a\"}}",
                       sid));
    const struct json_value *now, *bs;
    struct resp r;

    r = api(&b, "GET", path, NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "PATCH", path, "{\"session_name\":\"B's now\"}");
    assert_error(r, 404, "not_found", ANY);
    r = api_h(&b, "PATCH", path, "If-Match: *",
              "{\"metadata\":{\"owner\":null}}");
    assert_error(r, 404, "not_found", ANY);
    r = api_h(&b, "PATCH", path, "If-Match: \"1\"", "{\"session_name\":\"x\"}");
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "PUT", str("%s/deactivate", path), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "PUT", str("%s/activate", path), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "POST", str("%s/end", path), "{\"status\":\"failed\"}");
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "DELETE", path, NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api_h(&b, "DELETE", path, "If-Match: *", NULL);
    assert_error(r, 404, "not_found", ANY);

    /* B's list does not show it, by any filter */
    r = api(&b, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
    r = api(&b, "GET", str(SESSIONS "?search=A%%27s"), NULL);
    expect_list(r, 0, 20, 0, 0, false);

    /* A's session is untouched */
    now = get_session(&a, sid);
    expect_same_session(now, orig);
    ck_assert_int_eq(jint(now, "version"), 1);

    /* session_id is unique per user: B may use the same name */
    bs = create(&b,
                str("{\"session_id\":\"%s\",\"session_name\":\"B's\"}", sid));
    ck_assert_str_ne(jstr(bs, "id"), jstr(orig, "id"));
    expect_same_session(get_session(&a, sid), orig);
    ck_assert_str_eq(jstr(get_session(&b, sid), "session_name"), "B's");

    /* and each one's changes stay their own */
    r = api(&b, "DELETE", path, NULL);
    expect_status(r, 204);
    expect_same_session(get_session(&a, sid), orig);
    r = api(&a, "GET", SESSIONS, NULL);
    expect_ids(r, sid);
}
END_TEST

/* ====================================================================== */
/* rate limit (nginx: 100 r/s per address, burst 200) */

START_TEST(test_rate_limit)
{
    enum { N = 600 };
    struct e2e_http_request *reqs = calloc(N, sizeof *reqs);
    struct e2e_http_response *out = calloc(N, sizeof *out);
    const char *source = case_source(tc.nreq++); /* send_raw() skips it */
    size_t count[600] = {0}, failed = 0, other = 0, limited = N;
    /* Few connections at once first: a limiter with nodelay answers
     * 429 to a fast sequence.  A limiter that delays instead holds up to
     * `burst` requests and rejects only beyond, which takes more than 200
     * open at once. */
    static const size_t windows[] = {8, 250};

    ck_assert(reqs != NULL && out != NULL);
    for (size_t i = 0; i < N; i++) {
        reqs[i].method = "GET";
        reqs[i].target = SESSIONS;
        reqs[i].source = source;
    }
    for (size_t w = 0; w < 2 && count[429] == 0; w++) {
        memset(count, 0, sizeof count);
        failed = other = 0;
        for (size_t i = 0; i < N; i++)
            e2e_http_response_release(&out[i]);
        (void)e2e_http_do_many(&env.client, reqs, N, windows[w], out);
        for (size_t i = 0; i < N; i++) {
            if (out[i].status == 0)
                failed++;
            else if (out[i].status == 401 || out[i].status == 429)
                count[out[i].status]++;
            else
                other++;
        }
    }
    for (size_t i = 0; i < N; i++) {
        if (out[i].status != 401 && out[i].status != 429)
            ck_abort_msg("burst of %d: %zu 401, %zu 429, %zu other statuses, "
                         "%zu without response; e.g. request %zu: %d %s "
                         "%.200s",
                         N, count[401], count[429], other, failed, i,
                         out[i].status, out[i].error,
                         out[i].body ? out[i].body : "");
        if (out[i].status == 429 && limited == N)
            limited = i;
    }
    ck_assert_msg(count[429] > 0, "no 429 in %d requests (%zu 401s)", N,
                  count[401]);
    ck_assert_msg(count[401] >= 100, "only %zu requests passed the limiter",
                  count[401]);

    /* the 429 is the contract's error body */
    {
        struct e2e_http_response *copy = calloc(1, sizeof *copy);
        const char *retry;
        struct resp r;

        ck_assert(copy != NULL);
        *copy = out[limited]; /* wrap() owns it now */
        memset(&out[limited], 0, sizeof out[limited]);
        r = wrap("GET", SESSIONS " (burst)", copy);
        assert_error(r, 429, "rate_limited", ANY);
        retry = hdr(&r, "Retry-After");
        if (retry != NULL)
            ck_assert_msg(retry[0] != '\0' &&
                              strspn(retry, "0123456789") == strlen(retry),
                          "Retry-After: %s", retry);
    }
    for (size_t i = 0; i < N; i++)
        e2e_http_response_release(&out[i]);
    free(out);
    free(reqs);

    /* another address is not limited */
    {
        struct resp r = send_raw(NULL, "GET", SESSIONS, NULL, NULL, 0);
        assert_unauthorized(r);
    }
}
END_TEST

/* ====================================================================== */

static Suite *
e2e_suite(void)
{
    Suite *s = suite_create("e2e");
    TCase *t;

    t = tcase(s, "health", 30);
    tcase_add_test(t, test_healthz);
    tcase_add_test(t, test_readyz);
    tcase_add_test(t, test_request_id);
    tcase_add_test(t, test_unknown_paths);
    tcase_add_test(t, test_request_framing);

    t = tcase(s, "auth", 60);
    tcase_add_test(t, test_auth_missing);
    tcase_add_test(t, test_auth_bad_tokens);
    tcase_add_test(t, test_auth_cli_token);

    t = tcase(s, "create", 120);
    tcase_add_test(t, test_create_all_fields);
    tcase_add_test(t, test_create_defaults);
    tcase_add_test(t, test_create_inactive);
    tcase_add_test(t, test_create_if_exists);
    tcase_add_test(t, test_create_session_id_rules);
    tcase_add_test(t, test_create_string_limits);
    tcase_add_test(t, test_create_metadata_rules);
    tcase_add_test(t, test_create_unknown_fields);
    tcase_add_test(t, test_create_wrong_types);
    tcase_add_test(t, test_create_bad_json);
    tcase_add_test(t, test_create_body_size);
    tcase_add_test(t, test_create_content_type);

    t = tcase(s, "get", 30);
    tcase_add_test(t, test_get_not_found);

    t = tcase(s, "list", 300);
    tcase_add_test(t, test_list_pages);
    tcase_add_test(t, test_list_sort);
    tcase_add_test(t, test_list_bad_params);
    tcase_add_test(t, test_list_filters);

    t = tcase(s, "patch", 60);
    tcase_add_test(t, test_patch_fields);
    tcase_add_test(t, test_patch_bad_bodies);
    tcase_add_test(t, test_patch_metadata_merge);
    tcase_add_test(t, test_patch_if_match);
    tcase_add_test(t, test_patch_status);

    t = tcase(s, "delete", 60);
    tcase_add_test(t, test_delete);
    tcase_add_test(t, test_delete_if_match);

    t = tcase(s, "status", 120);
    tcase_add_test(t, test_status_machine);
    tcase_add_test(t, test_status_chain);
    tcase_add_test(t, test_status_if_match);
    tcase_add_test(t, test_status_bodies);

    t = tcase(s, "methods", 30);
    tcase_add_test(t, test_method_not_allowed);

    t = tcase(s, "bola", 60);
    tcase_add_test(t, test_bola);

    /* Tagged "nginx": the limiter is nginx's (parley-http.conf); the
     * Apache configs have none, so tests/apache.sh runs the suite with
     * CK_EXCLUDE_TAGS=nginx. */
    t = tcase(s, "ratelimit", 120);
    tcase_set_tags(t, "nginx");
    tcase_add_test(t, test_rate_limit);

    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    if (env_init() < 0) {
        env_release();
        return 99; /* automake: a hard error, not a test failure */
    }
    sr = srunner_create(e2e_suite());
    srunner_add_suite(sr, e2e_messages_suite());
    srunner_add_suite(sr, e2e_export_suite());
    srunner_add_suite(sr, e2e_admin_suite());
    srunner_add_suite(sr, e2e_attack_suite());
    srunner_add_suite(sr, e2e_openai_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    env_release();
    return failed == 0 ? 0 : 1;
}

/*
 * check_app.c - the request flow's operational side over the fake store:
 * the request id (the web server's when it is plain text, else one made
 * here) is answered as X-Request-Id and carried by every log line of the
 * request; every request is counted for /metrics under its route pattern;
 * GET /metrics answers the Prometheus text format, or 404 in a process
 * that keeps no metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "app.h"
#include "arena.h"
#include "capture.h"
#include "clock.h"
#include "config.h"
#include "fake_store.h"
#include "log.h"
#include "metrics.h"
#include "service_fixture.h"
#include "suites.h"

static struct app app;
static struct request req;
static struct response resp;
static struct buf logged;
static struct buf text;

static void
setup(void)
{
    service_fixture_setup();
    app_init(&app, &fx.cfg, fx.store, NULL);
    response_init(&resp);
    buf_init(&logged);
    buf_init(&text);
    log_set_level(LOG_INFO);
}

static void
teardown(void)
{
    log_set_request(NULL);
    app_release(&app);
    metrics_release();
    buf_release(&logged);
    buf_release(&text);
    response_release(&resp);
    service_fixture_teardown();
}

/* What the next serve() puts in the request besides the basics: a token,
 * the web server's start time, a sink that says the client has gone. */
static const char *next_authorization;
static int64_t next_web_start_ms;
static bool next_gone;

static bool
sink_gone(void *ctx)
{
    (void)ctx;
    return true;
}

/* Serves one request the way worker.c does, its log lines caught in
 * `logged`. */
static void
serve(const char *method, const char *path, const char *query,
      const char *request_id)
{
    arena_reset(&fx.arena);
    response_reset(&resp);
    buf_reset(&logged);
    memset(&req, 0, sizeof(req));
    req.method = http_method_parse(method);
    req.method_name = method;
    req.path = path;
    req.query = query;
    req.request_id = request_id;
    req.content_length = -1;
    req.arena = &fx.arena;
    req.authorization = next_authorization;
    req.web_start_ms = next_web_start_ms;
    req.started_us = clock_mono_us();
    req.started_ms = req.started_us / 1000;
    memset(&resp.sink, 0, sizeof(resp.sink));
    if (next_gone)
        resp.sink.gone = sink_gone;
    next_authorization = NULL;
    next_web_start_ms = 0;
    next_gone = false;
    capture_begin();
    app_handle(&app, &req, &resp);
    app_after(&app, &req, &resp);
    log_set_request(NULL);
    capture_end(&logged);
}

static const char *
header(const char *name)
{
    for (size_t i = 0; i < resp.nheaders; i++)
        if (strcmp(resp.headers[i].name, name) == 0)
            return resp.headers[i].value;
    return NULL;
}

/* Every line logged for the request carries `"req":"<id>"`; returns how
 * many lines there were. */
static int
lines_all_carry(const char *id)
{
    char want[128];
    int n = 0;

    snprintf(want, sizeof(want), ",\"req\":\"%s\",", id);
    for (char *p = logged.data; *p != '\0'; n++) {
        char *end = strchr(p, '\n');

        ck_assert_ptr_nonnull(end);
        *end = '\0';
        ck_assert_msg(strstr(p, want) != NULL, "line without %s: %s", want, p);
        p = end + 1;
    }
    return n;
}

static bool
is_hex_id(const char *s)
{
    if (s == NULL || strlen(s) != 16)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

START_TEST(test_app_request_id_from_server)
{
    /* nginx's $request_id: 32 hex digits. */
    const char *id = "4f2a9c0e8b7d6a5f4e3d2c1b0a998877";

    serve("GET", "/healthz", "", id);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(header("X-Request-Id"), id);
    ck_assert_int_eq(lines_all_carry(id), 1);
    ck_assert_ptr_nonnull(strstr(logged.data, "\"msg\":\"GET /healthz 200 "));

    /* Any plain-text id up to 64 characters is kept. */
    serve("GET", "/healthz", "", "A-b_c.9");
    ck_assert_str_eq(header("X-Request-Id"), "A-b_c.9");
}
END_TEST

START_TEST(test_app_request_id_made)
{
    static const char *const bad[] = {
        NULL,
        "",
        "has space",
        "quote\"",
        "new\nline",
        "caf\xc3\xa9",
        "0123456789012345678901234567890123456789012345678901234567890123"
        "4", /* 65 */
    };
    char first[17];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        serve("GET", "/healthz", "", bad[i]);
        ck_assert_msg(is_hex_id(header("X-Request-Id")), "case %zu: %s", i,
                      header("X-Request-Id"));
        ck_assert_int_eq(lines_all_carry(header("X-Request-Id")), 1);
    }
    snprintf(first, sizeof(first), "%s", header("X-Request-Id"));
    serve("GET", "/healthz", "", NULL);
    ck_assert_str_ne(header("X-Request-Id"), first);
}
END_TEST

/* A request that logs more than its access line: a database failure is
 * told to the log in detail, and that line carries the id too. */
START_TEST(test_app_request_id_every_line)
{
    const char *id = "abc123";

    fake_store_fail(fx.store, FAKE_PING, 3, ERR_UNAVAILABLE, RETRY_SAFE, false);
    serve("GET", "/readyz", "", id);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_str_eq(header("X-Request-Id"), id);
    ck_assert_int_eq(lines_all_carry(id), 2);
    ck_assert_ptr_nonnull(strstr(logged.data, "\"level\":\"warn\""));
    /* Outside the request, lines are "-" again. */
    buf_reset(&logged);
    capture_begin();
    log_info("between requests");
    capture_end(&logged);
    ck_assert_int_eq(lines_all_carry("-"), 1);
}
END_TEST

static const char *
render(void)
{
    buf_reset(&text);
    ck_assert(metrics_render(&text, api_routes, api_nroutes));
    return text.data;
}

#define ck_has(t, s)                                                           \
    ck_assert_msg(strstr((t), (s)) != NULL, "missing %s in:\n%s", (s), (t))

START_TEST(test_app_metrics_counted)
{
    struct error err = ERROR_INIT;
    const char *t;

    ck_assert_int_eq(metrics_init(api_nroutes, &err), 0);
    serve("GET", "/healthz", "", NULL);
    serve("GET", "/healthz", "", NULL);
    serve("HEAD", "/healthz", "", NULL);
    serve("GET", "/nope", "", NULL);
    serve("POST", "/healthz", "", NULL);
    /* The pattern, not the path; and a 401 still counts. */
    serve("GET", "/api/agent-sessions/s-1", "", NULL);
    ck_assert_int_eq(resp.status, 401);
    fake_store_fail(fx.store, FAKE_PING, 3, ERR_UNAVAILABLE, RETRY_SAFE, false);
    serve("GET", "/readyz", "", NULL);
    t = render();
    ck_has(t, "\nparley_http_requests_total{route=\"/healthz\",method=\"GET\","
              "status=\"200\"} 2\n");
    ck_has(t, "\nparley_http_requests_total{route=\"/healthz\",method=\"HEAD\","
              "status=\"200\"} 1\n");
    ck_has(t, "\nparley_http_requests_total{route=\"unmatched\","
              "method=\"GET\",status=\"404\"} 1\n");
    ck_has(t, "\nparley_http_requests_total{route=\"unmatched\","
              "method=\"POST\",status=\"405\"} 1\n");
    ck_has(t, "\nparley_http_requests_total{route=\"/api/agent-sessions/"
              "{session_id}\",method=\"GET\",status=\"401\"} 1\n");
    ck_has(t, "\nparley_http_requests_total{route=\"/readyz\",method=\"GET\","
              "status=\"503\"} 1\n");
    ck_has(t, "\nparley_http_request_duration_seconds_count{route=\"/healthz\","
              "method=\"GET\"} 2\n");
    ck_assert_ptr_null(strstr(t, "s-1"));
    /* Three tries of the ping: two retries, one call that failed. */
    ck_has(t, "\nparley_db_retries_total 2\n");
    ck_has(t, "\nparley_db_errors_total{kind=\"unavailable\"} 1\n");
}
END_TEST

START_TEST(test_app_metrics_route)
{
    struct error err = ERROR_INIT;

    ck_assert_int_eq(metrics_init(api_nroutes, &err), 0);
    serve("GET", "/healthz", "", NULL);
    /* No token needed: the web server keeps the route private. */
    serve("GET", "/metrics", "", NULL);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.content_type,
                     "text/plain; version=0.0.4; charset=utf-8");
    ck_has(resp.body.data, "# TYPE parley_http_requests_total counter\n");
    ck_has(resp.body.data,
           "\nparley_http_requests_total{route=\"/healthz\",method=\"GET\","
           "status=\"200\"} 1\n");
    ck_assert_ptr_nonnull(header("X-Request-Id"));

    serve("GET", "/metrics", "format=json", NULL);
    ck_assert_int_eq(resp.status, 400);
    ck_assert_ptr_null(resp.content_type);
    serve("POST", "/metrics", "", NULL);
    ck_assert_int_eq(resp.status, 405);
    ck_has(render(), "\nparley_http_requests_total{route=\"/metrics\","
                     "method=\"GET\",status=\"200\"} 1\n");
}
END_TEST

START_TEST(test_app_metrics_off)
{
    serve("GET", "/metrics", "", NULL);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_ptr_null(resp.content_type);
    ck_has(resp.body.data, "\"code\":\"not_found\"");
}
END_TEST

/* --- fairness --------------------------------------------------------------
 */

/* serve() empties fx.arena first: the header lives here instead. */
static char bearer_text[2048];

static const char *
bearer(const char *sub, bool admin)
{
    struct error err = ERROR_INIT;
    char *tok =
        auth_mint(&fx.cfg, sub, clock_now_ms() / 1000, 600, admin, &err);

    ck_assert_msg(tok != NULL, "%s", err.message);
    snprintf(bearer_text, sizeof(bearer_text), "Bearer %s", tok);
    free(tok);
    return bearer_text;
}

static int
store_calls(void)
{
    return fake_store_ncalls(fx.store);
}

/* Every answer, an error or not, says no-store and nosniff. */
START_TEST(test_app_security_headers)
{
    static const char *const paths[] = {"/healthz", "/nope",
                                        "/api/agent-sessions"};

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        serve("GET", paths[i], "", NULL);
        ck_assert_str_eq(header("Cache-Control"), "no-store");
        ck_assert_str_eq(header("X-Content-Type-Options"), "nosniff");
    }
    ck_assert_int_eq(resp.status, 401);
}
END_TEST

/* Waited for a worker past request_deadline_ms: 503 with Retry-After,
 * and not one store call. */
START_TEST(test_app_queue_expired)
{
    struct error err = ERROR_INIT;
    int before;

    ck_assert_int_eq(metrics_init(api_nroutes, &err), 0);
    before = store_calls();
    next_authorization = bearer("q-user", false);
    next_web_start_ms = clock_now_ms() - fx.cfg.request_deadline_ms -
                        fx.cfg.queue_clock_skew_ms - 500;
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 503);
    ck_assert_str_eq(header("Retry-After"), "1");
    ck_has(resp.body.data, "\"code\":\"service_unavailable\"");
    ck_has(resp.body.data, "waited too long");
    ck_assert_int_eq(store_calls(), before);
    ck_has(render(), "\nparley_queue_expired_total 1\n");
    ck_has(render(), "\nparley_http_requests_total{route=\"/api/agent-sessions"
                     "\",method=\"GET\",status=\"503\"} 1\n");

    /* one that waited less is served (the fake store has no sessions) */
    next_authorization = bearer("q-user", false);
    next_web_start_ms = clock_now_ms() - fx.cfg.request_deadline_ms / 2;
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_gt(store_calls(), before);
    /* a start time ahead of ours (another host's clock) is no wait */
    next_authorization = bearer("q-user", false);
    next_web_start_ms = clock_now_ms() + 3600000;
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 200);
}
END_TEST

START_TEST(test_app_queue_wait_measure)
{
    struct request r;
    int64_t now = INT64_C(1800000000000);

    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(app_queue_wait_ms(&fx.cfg, &r, now), 0); /* not told */
    r.web_start_ms = now - 1000;
    ck_assert_int_eq(app_queue_wait_ms(&fx.cfg, &r, now),
                     1000 - fx.cfg.queue_clock_skew_ms);
    r.web_start_ms = now - fx.cfg.queue_clock_skew_ms;
    ck_assert_int_eq(app_queue_wait_ms(&fx.cfg, &r, now), 0);
    r.web_start_ms = now + 5000;
    ck_assert_int_eq(app_queue_wait_ms(&fx.cfg, &r, now), 0);
    /* more than a day: a clock, not a queue */
    r.web_start_ms = now - INT64_C(2) * 86400000;
    ck_assert_int_eq(app_queue_wait_ms(&fx.cfg, &r, now), 0);

    ck_assert_int_eq(http_parse_request_start("1800000000.123"),
                     INT64_C(1800000000123));
    ck_assert_int_eq(http_parse_request_start("1800000000.1"),
                     INT64_C(1800000000100));
    ck_assert_int_eq(http_parse_request_start("1800000000.12345"),
                     INT64_C(1800000000123));
    ck_assert_int_eq(http_parse_request_start("t=1800000000123456"),
                     INT64_C(1800000000123));
    ck_assert_int_eq(http_parse_request_start("t=1800000000.5"),
                     INT64_C(1800000000500));
    ck_assert_int_eq(http_parse_request_start("1800000000123"),
                     INT64_C(1800000000123));
    ck_assert_int_eq(http_parse_request_start("1800000000"),
                     INT64_C(1800000000000));
    ck_assert_int_eq(http_parse_request_start(""), 0);
    ck_assert_int_eq(http_parse_request_start("t="), 0);
    ck_assert_int_eq(http_parse_request_start("1800000000."), 0);
    ck_assert_int_eq(http_parse_request_start("-5"), 0);
    ck_assert_int_eq(http_parse_request_start("12"), 0); /* 1970 */
    ck_assert_int_eq(http_parse_request_start("1800000000.123x"), 0);
    ck_assert_int_eq(http_parse_request_start("99999999999999999999"), 0);
    ck_assert_int_eq(http_parse_request_start("9223372036854775.807"), 0);
}
END_TEST

/* The client went away while the request waited: nothing is served. */
START_TEST(test_app_client_gone)
{
    struct error err = ERROR_INIT;
    int before;

    ck_assert_int_eq(metrics_init(api_nroutes, &err), 0);
    before = store_calls();
    next_authorization = bearer("g-user", false);
    next_gone = true;
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 499);
    ck_assert_uint_eq(resp.body.len, 0);
    ck_assert_int_eq(store_calls(), before);
    ck_has(render(), "\nparley_client_gone_total{when=\"queued\"} 1\n");
    ck_has(logged.data, "GET /api/agent-sessions 499 ");
}
END_TEST

/* At user_max_inflight of a user's requests on the host, the next one is
 * 429 with Retry-After, before any store call; others are not affected. */
START_TEST(test_app_user_inflight)
{
    struct error err = ERROR_INIT;
    int before;

    ck_assert_int_eq(metrics_init(api_nroutes, &err), 0);
    fx.cfg.user_max_inflight = 1;
    /* another worker (slot 1) serving one of erin's requests */
    metrics_worker_slot(1);
    ck_assert(metrics_inflight_enter("erin", 1));
    metrics_worker_slot(0);
    before = store_calls();
    next_authorization = bearer("erin", false);
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 429);
    ck_assert_str_eq(header("Retry-After"), "1");
    ck_has(resp.body.data, "\"code\":\"too_many_requests\"");
    ck_assert_int_eq(store_calls(), before);
    ck_assert_int_eq(metrics_inflight_count("erin"), 1);
    /* frank is served meanwhile, and holds nothing afterwards */
    next_authorization = bearer("frank", false);
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(metrics_inflight_count("frank"), 0);
    ck_has(render(), "\nparley_user_inflight_rejected_total{kind=\"all\"} 1\n");
    /* the other worker is done: erin is served */
    metrics_worker_gone(1);
    next_authorization = bearer("erin", false);
    serve("GET", "/api/agent-sessions", "", NULL);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(metrics_inflight_count("erin"), 0);

    /* the default: half the workers, at least one */
    fx.cfg.user_max_inflight = 0;
    fx.cfg.workers = 4;
    ck_assert_int_eq(app_user_max_inflight(&fx.cfg), 2);
    fx.cfg.workers = 1;
    ck_assert_int_eq(app_user_max_inflight(&fx.cfg), 1);
    fx.cfg.workers = 3;
    ck_assert_int_eq(app_user_max_inflight(&fx.cfg), 1);
    fx.cfg.user_max_inflight = 7;
    ck_assert_int_eq(app_user_max_inflight(&fx.cfg), 7);
    /* conversation turns: user_max_inflight when set, else half the
     * conversation pool, at least 1 */
    ck_assert_int_eq(app_user_max_turns(&fx.cfg), 7);
    fx.cfg.user_max_inflight = 0;
    fx.cfg.conversation_workers = 4;
    ck_assert_int_eq(app_user_max_turns(&fx.cfg), 2);
    fx.cfg.conversation_workers = 1;
    ck_assert_int_eq(app_user_max_turns(&fx.cfg), 1);
}
END_TEST

/* An erasure's log line names the route, never the erased user. */
START_TEST(test_app_erasure_log_has_no_user_id)
{
    next_authorization = bearer("root-admin", true);
    serve("DELETE", "/api/admin/users/gina-the-erased", "", NULL);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_ptr_null(strstr(logged.data, "gina"));
    ck_has(logged.data, "DELETE /api/admin/users/{user_id} 200 ");
    /* other paths are logged as requested */
    next_authorization = bearer("root-admin", true);
    serve("GET", "/api/agent-sessions/s-9", "", NULL);
    ck_has(logged.data, "GET /api/agent-sessions/s-9 404 ");
}
END_TEST

/* The body as text, NUL-terminated. */
static const char *
body_text(void)
{
    buf_addch(&resp.body, '\0');
    resp.body.len--;
    return resp.body.data;
}

/* /v1 answers every error, the router's and the token check's included,
 * in OpenAI's shape; /api (and a path that only starts with "v1") keeps
 * its own. */
START_TEST(test_app_openai_errors)
{
    struct error err = ERROR_INIT;
    char *token, auth[2048];

    serve("GET", "/v1/nothing", "", NULL);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_str_eq(body_text(), "{\"error\":{\"message\":\"not found\","
                                  "\"type\":\"invalid_request_error\","
                                  "\"param\":null,\"code\":\"not_found\"}}");
    serve("PATCH", "/v1/conversations/c1", "", NULL);
    ck_assert_int_eq(resp.status, 405);
    ck_assert_str_eq(header("Allow"), "GET, POST, DELETE");
    ck_has(body_text(), "\"type\":\"invalid_request_error\"");
    ck_has(body_text(), "\"code\":\"method_not_allowed\"}}");
    serve("GET", "/v1/conversations/c1", "", NULL);
    ck_assert_int_eq(resp.status, 401);
    ck_assert_ptr_nonnull(header("WWW-Authenticate"));
    ck_has(body_text(), "\"type\":\"invalid_request_error\"");
    ck_has(body_text(), "\"code\":\"unauthorized\"}}");
    ck_assert_ptr_null(strstr(body_text(), "\"status\""));

    serve("GET", "/v1x", "", NULL);
    ck_has(body_text(), "{\"error\":{\"status\":404,");
    serve("GET", "/api/agent-sessions/c1", "", NULL);
    ck_has(body_text(), "{\"error\":{\"status\":401,");

    /* A 409 says the client must not send it again.  (serve() takes no
     * token or body, so these requests are built here.) */
    token =
        auth_mint(&fx.cfg, "alice", clock_now_ms() / 1000, 600, false, &err);
    ck_assert_ptr_nonnull(token);
    snprintf(auth, sizeof(auth), "Bearer %s", token);
    free(token);
    for (int round = 0; round < 2; round++) {
        arena_reset(&fx.arena);
        response_reset(&resp);
        memset(&req, 0, sizeof(req));
        req.method = HTTP_POST;
        req.method_name = "POST";
        req.path = "/v1/conversations/c1";
        req.query = "";
        req.authorization = auth;
        req.content_length = -1;
        req.arena = &fx.arena;
        req.body = "{\"metadata\":null}";
        req.body_len = strlen(req.body);
        req.content_type = "application/json";
        req.started_us = clock_mono_us();
        req.started_ms = req.started_us / 1000;
        /* c1 does not exist: 404, and no x-should-retry; then a session
         * read that fails with a conflict: 409 with it */
        if (round == 1)
            fake_store_fail(fx.store, FAKE_SESSION_GET, 1, ERR_CONFLICT,
                            RETRY_NEVER, false);
        app_handle(&app, &req, &resp);
        log_set_request(NULL);
        if (round == 0) {
            ck_assert_int_eq(resp.status, 404);
            ck_assert_ptr_null(header("x-should-retry"));
            ck_has(body_text(), "conversation with id 'c1' not found");
        } else {
            ck_assert_int_eq(resp.status, 409);
            ck_assert_str_eq(header("x-should-retry"), "false");
            ck_has(body_text(), "\"code\":\"conflict\"}}");
        }
    }
}
END_TEST

Suite *
app_suite(void)
{
    Suite *s = suite_create("app");
    TCase *t = tcase_create("app");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_app_request_id_from_server);
    tcase_add_test(t, test_app_request_id_made);
    tcase_add_test(t, test_app_request_id_every_line);
    tcase_add_test(t, test_app_metrics_counted);
    tcase_add_test(t, test_app_metrics_route);
    tcase_add_test(t, test_app_metrics_off);
    tcase_add_test(t, test_app_security_headers);
    tcase_add_test(t, test_app_queue_expired);
    tcase_add_test(t, test_app_queue_wait_measure);
    tcase_add_test(t, test_app_client_gone);
    tcase_add_test(t, test_app_user_inflight);
    tcase_add_test(t, test_app_erasure_log_has_no_user_id);
    tcase_add_test(t, test_app_openai_errors);
    suite_add_tcase(s, t);
    return s;
}

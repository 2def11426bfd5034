#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "agent.h"
#include "api.h"
#include "app.h"
#include "auth.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "rng.h"
#include "router.h"
#include "tally.h"
#include "banned.h"

void
app_init(struct app *app, const struct config *cfg, struct store *store,
         const atomic_bool *indexes_ready)
{
    app->cfg = cfg;
    app->store = store;
    app->indexes_ready = indexes_ready;
    app->indexes_seen = indexes_ready == NULL;
    app->metrics_user = NULL;
    app->metrics_session = NULL;
    app->route_index = -1;
    app->tally = tally_new();
    app->auth_cache = auth_cache_new();
    app->agent = agent_new(cfg);
}

int
app_user_max_inflight(const struct config *cfg)
{
    if (cfg->user_max_inflight > 0)
        return cfg->user_max_inflight;
    return cfg->workers / 2 > 1 ? cfg->workers / 2 : 1;
}

bool
app_has_conversation_pool(const struct config *cfg)
{
    return cfg->conversation_workers > 0 && cfg->conversation_listen[0] != '\0';
}

int
app_user_max_turns(const struct config *cfg)
{
    if (cfg->user_max_inflight > 0)
        return cfg->user_max_inflight;
    return cfg->conversation_workers / 2 > 1 ? cfg->conversation_workers / 2
                                             : 1;
}

/* The deadline of the route req names: conversation_deadline_ms for a
 * conversation turn, request_deadline_ms for everything else.  Asked only
 * of a request that already waited longer than the second. */
static int64_t
app_route_deadline_ms(const struct config *cfg, struct request *req)
{
    struct router_match m;
    struct error err = ERROR_INIT;

    memset(&m, 0, sizeof(m));
    if (router_match(api_routes, api_nroutes, req->method, req->path,
                     req->arena, &m, &err) &&
        (m.route->flags & API_CONVERSATION))
        return cfg->conversation_deadline_ms;
    return cfg->request_deadline_ms;
}

/* A wait longer than this is a clock problem, not a queue. */
#define APP_QUEUE_INSANE_MS (24 * 3600 * 1000LL)

int64_t
app_queue_wait_ms(const struct config *cfg, const struct request *req,
                  int64_t now_wall_ms)
{
    static int64_t warned_ms = 0;
    int64_t waited;

    if (req->web_start_ms <= 0)
        return 0;
    /* A start ahead of our clock is the other host's clock (or a request
     * that waited less than the skew): no wait. */
    waited = now_wall_ms - req->web_start_ms - cfg->queue_clock_skew_ms;
    if (waited <= 0)
        return 0;
    if (waited > APP_QUEUE_INSANE_MS) {
        /* Once a minute per worker is enough to be noticed. */
        if (now_wall_ms - warned_ms > 60000) {
            warned_ms = now_wall_ms;
            log_warn("the web server's request start time is %lld s behind "
                     "this host's clock: ignored (are the clocks apart?)",
                     (long long)(waited / 1000));
        }
        return 0;
    }
    return waited;
}

void
app_release(struct app *app)
{
    app_flush_metrics(app, true);
    tally_free(app->tally);
    app->tally = NULL;
    auth_cache_free(app->auth_cache);
    app->auth_cache = NULL;
    agent_free(app->agent);
    app->agent = NULL;
}

/* "application/json", any case, optionally followed by parameters. */
static bool
is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static bool
blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Body rules that hold for every route: size, media type, JSON shape.
 * A route that takes fields gets an object ({} when nothing was sent); a
 * route that takes none accepts nothing but an empty body or {}. */
static bool
app_body(const struct config *cfg, const struct request *req, unsigned flags,
         const struct json_value **out, struct error *err)
{
    const struct json_value *v;

    *out = NULL;
    if (req->body_too_large)
        return error_set(err, ERR_PAYLOAD_TOO_LARGE, NULL,
                         "request body larger than %d bytes",
                         cfg->max_body_bytes);
    /* Never parse part of a body as if it were all of it. */
    if (req->body_short)
        return error_set(err, ERR_INVALID_JSON, NULL,
                         "the request body ended before its Content-Length");
    if (req->body == NULL || blank(req->body, req->body_len)) {
        if (flags & API_BODY)
            *out = json_new_object(req->arena, 0);
        return true; /* API_BODY_ANY: the handler says a value is needed */
    }
    if (!is_json_type(req->content_type))
        return error_set(err, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                         "request bodies must be application/json");
    v = json_parse(req->arena, req->body, req->body_len, cfg->max_json_depth,
                   err);
    if (v == NULL)
        return false;
    if (flags & API_BODY_ANY) {
        *out = v;
        return true;
    }
    if (v->type != JSON_OBJECT)
        return error_set(err, ERR_INVALID_JSON, NULL,
                         "the request body must be a JSON object");
    if (!(flags & API_BODY) && v->u.o.len > 0)
        return error_set(err, ERR_VALIDATION, NULL,
                         "this route takes no request body");
    *out = v;
    return true;
}

static void
app_request_id(struct request *req)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[8];
    char *id;
    bool ok = req->request_id != NULL && req->request_id[0] != '\0' &&
              strlen(req->request_id) <= 64;

    /* An id from the web server is echoed only if it is plain text; it
     * goes into a response header and every log line. */
    for (const char *p = ok ? req->request_id : ""; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_' || *p == '.'))
            ok = false;
    if (ok)
        return;
    rng_bytes(raw, sizeof(raw));
    id = arena_alloc(req->arena, 2 * sizeof(raw) + 1);
    for (size_t i = 0; i < sizeof(raw); i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 15];
    }
    id[2 * sizeof(raw)] = '\0';
    req->request_id = id;
}

/* Whether the indexes are known to exist (one load of the shared flag
 * until it is seen set). */
static bool
app_indexes_ready(struct app *app)
{
    if (!app->indexes_seen)
        app->indexes_seen = atomic_load(app->indexes_ready);
    return app->indexes_seen;
}

/* The request flow, top to bottom: route, token, body and query,
 * indexes, handler.  Returns false with err saying what to answer. */
static bool
app_run(struct app *app, struct api_call *call, struct router_match *match,
        struct error *err)
{
    const struct config *cfg = app->cfg;
    struct request *req = call->req;
    unsigned flags;

    if (!router_match(api_routes, api_nroutes, req->method, req->path,
                      req->arena, match, err))
        return false;
    app->route_index = (int)(match->route - api_routes);
    flags = match->route->flags;
    if (flags & API_CONVERSATION)
        call->ctx.deadline_ms =
            call->received_ms + cfg->conversation_deadline_ms;
    if ((flags & API_AUTH) &&
        !auth_check_cached(app->auth_cache, cfg, req->arena, req->authorization,
                           clock_now_ms() / 1000, &call->user, err))
        return false;
    /* One user's requests take at most user_max_inflight of this host's
     * workers at once (metrics.h), its conversation turns at most half of
     * the conversation pool; beyond, 429 before any work. */
    if ((flags & API_AUTH) && call->user.sub != NULL) {
        bool turn =
            (flags & API_CONVERSATION) && app_has_conversation_pool(cfg);
        int limit = turn ? app_user_max_turns(cfg) : app_user_max_inflight(cfg);

        if (turn ? !metrics_conversation_enter(call->user.sub, limit)
                 : !metrics_inflight_enter(call->user.sub, limit)) {
            metrics_count(turn ? METRICS_CONVERSATION_REJECTED
                               : METRICS_INFLIGHT_REJECTED);
            return error_set(err, ERR_TOO_MANY_REQUESTS, NULL,
                             "more than %d %s of this user at once; retry "
                             "after a moment",
                             limit, turn ? "conversation turns" : "requests");
        }
        app->inflight_held = true;
    }
    /* From here on the request counts for the session it names, whatever
     * its outcome (app_after counts it, app_flush_metrics writes it). */
    call->session_named = router_param(match, "session_id");
    app->metrics_user = call->user.sub;
    if (!app_body(cfg, req, flags, &call->body, err) ||
        !query_parse(&call->query, req->query, req->arena, err))
        return false;
    call->indexes_ready = app_indexes_ready(app);
    if ((flags & API_DB) && !call->indexes_ready)
        return error_set(err, ERR_UNAVAILABLE, NULL,
                         "the indexes are not made yet");
    return match->route->handler(call, err);
}

/* The one place an error becomes a status, a body and its headers. */
static void
app_fail(const struct request *req, struct response *resp,
         const struct router_match *match, const struct api_call *call,
         struct error *err)
{
    const char *pattern = match->route ? match->route->pattern : "-";

    if (resp->streamed) {
        /* Status and headers are gone already: all that is left is to cut
         * the body short, which a client parsing it will notice. */
        log_error("%s %s failed mid-stream: %s", req->method_name, pattern,
                  err->message);
        return;
    }
    /* A database or internal failure is told to the log in detail and to
     * the client in general terms: driver messages name hosts and
     * internals that are none of the client's business. */
    if (err->code == ERR_UNAVAILABLE || err->code == ERR_INTERNAL) {
        log_warn("%s %s -> %d: %s (db code %d, %d tries)", req->method_name,
                 pattern, error_http_status(err->code), err->message,
                 err->db_code, call->ctx.stats.attempts);
        error_set(err, err->code, NULL, "%s",
                  err->code == ERR_UNAVAILABLE
                      ? "the database is unavailable; try again later"
                      : "internal error");
    }
    /* /v1 answers in OpenAI's error shape, and says its 409s are final:
     * OpenAI's clients would otherwise send them twice more. */
    if (api_is_openai_path(req->path)) {
        response_error_openai(resp, err);
        if (error_http_status(err->code) == 409)
            response_header(resp, "x-should-retry", "false");
    } else {
        response_error(resp, err);
    }
    switch (err->code) {
    case ERR_UNAUTHORIZED:
        response_header(resp, "WWW-Authenticate",
                        "Bearer error=\"invalid_token\"");
        break;
    case ERR_METHOD_NOT_ALLOWED:
        response_header(resp, "Allow", arena_strdup(req->arena, match->allow));
        break;
    case ERR_UNAVAILABLE:
    case ERR_TOO_MANY_REQUESTS:
        response_header(resp, "Retry-After", "1");
        break;
    default:
        break;
    }
}

/* The request waited for a worker past its deadline: 503 at once, with
 * nothing read or written, so an overloaded host sheds what its clients
 * have given up on instead of serving it late. */
static void
app_queue_expired(struct app *app, struct request *req, struct response *resp,
                  struct router_match *match, int64_t waited)
{
    struct error err = ERROR_INIT;

    (void)router_match(api_routes, api_nroutes, req->method, req->path,
                       req->arena, match, &err);
    app->route_index =
        match->route != NULL ? (int)(match->route - api_routes) : -1;
    metrics_count(METRICS_QUEUE_EXPIRED);
    log_warn("waited %lld ms for a worker, past its deadline: 503 without "
             "serving it",
             (long long)waited);
    error_set(&err, ERR_UNAVAILABLE, NULL,
              "the server is overloaded: the request waited too long for a "
              "worker; try again later");
    if (api_is_openai_path(req->path))
        response_error_openai(resp, &err);
    else
        response_error(resp, &err);
    response_header(resp, "Retry-After", "1");
}

void
app_handle(struct app *app, struct request *req, struct response *resp)
{
    struct service svc = {app->cfg, app->store, app->agent};
    struct router_match match;
    struct error err = ERROR_INIT;
    struct api_call call;
    int64_t waited;
    bool ok;

    app_request_id(req);
    log_set_request(req->request_id);
    response_header(resp, "X-Request-Id", req->request_id);
    /* Every answer is one user's data, or an error about it: no cache may
     * keep it, and no browser may read it as anything but its type. */
    response_header(resp, "Cache-Control", "no-store");
    response_header(resp, "X-Content-Type-Options", "nosniff");

    memset(&match, 0, sizeof(match));
    memset(&call, 0, sizeof(call));
    call.cfg = app->cfg;
    call.svc = &svc;
    call.req = req;
    call.resp = resp;
    call.match = &match;
    call.ctx.arena = req->arena;
    /* The deadline runs from when the web server passed the request on:
     * time spent waiting for a worker is part of it. */
    waited = app_queue_wait_ms(app->cfg, req, clock_now_ms());
    call.received_ms = req->started_ms - waited;
    call.ctx.deadline_ms = call.received_ms + app->cfg->request_deadline_ms;
    app->route_index = -1;
    app->inflight_held = false;

    /* A client that has gone gets nothing: nginx closes the connections
     * of requests still waiting when their clients leave, so a flood of
     * abandoned requests costs a poll each. */
    if (response_client_gone(resp)) {
        (void)router_match(api_routes, api_nroutes, req->method, req->path,
                           req->arena, &match, &err);
        app->route_index =
            match.route != NULL ? (int)(match.route - api_routes) : -1;
        metrics_count(METRICS_GONE_QUEUED);
        resp->status = 499;
        return;
    }
    if (waited > app->cfg->request_deadline_ms &&
        waited > app_route_deadline_ms(app->cfg, req)) {
        app_queue_expired(app, req, resp, &match, waited);
        return;
    }
    ok = app_run(app, &call, &match, &err);
    app->metrics_session = call.session_named;
    if (!ok)
        app_fail(req, resp, &match, &call, &err);
    /* The work is done; the answer (already in memory) only has to be
     * written.  Released here, before the worker sends it, so a client
     * that sends its next request as soon as it has this answer never
     * finds this one still counted. */
    if (app->inflight_held) {
        metrics_inflight_leave();
        app->inflight_held = false;
    }
}

/* Per-session metrics are best effort and come after the response: a
 * short deadline for a whole batch and no retry of a write that may have
 * happened, so a slow database never holds a worker long here. */
#define METRICS_DEADLINE_MS 250

void
app_flush_metrics(struct app *app, bool idle)
{
    int64_t now = clock_mono_ms();

    if (tally_pending(app->tally) == 0 ||
        (!idle && tally_wait_ms(app->tally, now) != 0))
        return;
    tally_flush(app->tally, app->store, now + METRICS_DEADLINE_MS);
}

/* The path for the log line: as requested, but for a route whose path
 * names a user (the erasure): its pattern, since the log outlives the
 * erasure and must not hold the erased user's id. */
static const char *
app_log_path(const struct app *app, const struct request *req)
{
    const char *pattern;

    if (app->route_index < 0 || (size_t)app->route_index >= api_nroutes)
        return req->path;
    pattern = api_routes[app->route_index].pattern;
    return strstr(pattern, "{user_id}") != NULL ? pattern : req->path;
}

void
app_after(struct app *app, const struct request *req,
          const struct response *resp)
{
    double elapsed_ms = (double)(clock_mono_us() - req->started_us) / 1000.0;

    metrics_observe(app->route_index, req->method, resp->status,
                    elapsed_ms / 1000.0);
    log_info("%s %s %d %.3f ms", req->method_name, app_log_path(app, req),
             resp->status, elapsed_ms);
    /* Counted now, written in a batch (tally.h): one database write per
     * request cost as much as serving a GET.  A full table is written
     * first; the worker normally flushes it before it gets that far. */
    if (app->metrics_user != NULL && app->metrics_session != NULL &&
        !tally_add(app->tally, app->metrics_user, app->metrics_session,
                   resp->status >= 400, elapsed_ms, clock_mono_ms())) {
        app_flush_metrics(app, true);
        (void)tally_add(app->tally, app->metrics_user, app->metrics_session,
                        resp->status >= 400, elapsed_ms, clock_mono_ms());
    }
    app->metrics_user = NULL;
    app->metrics_session = NULL;
}

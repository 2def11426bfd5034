/*
 * api_ops.c - the operator's routes: GET /healthz, GET /readyz and GET
 * /metrics (the table is in api.c).  None takes a token.
 *
 * /metrics is Prometheus's text format.  A scraper has no token, and the
 * endpoint says nothing about any user's data.  It is for operators only,
 * so the web server keeps it off the public site (nginx/parley.conf
 * answers it with a 404) and exposes it on an internal listener
 * (nginx/site.conf.example).
 */
#include "api.h"
#include "encode.h"
#include "metrics.h"
#include "banned.h"

bool
api_ops_healthz(struct api_call *call, struct error *err)
{
    (void)err;
    encode_probe(&call->resp->body, "ok");
    return true;
}

bool
api_ops_readyz(struct api_call *call, struct error *err)
{
    struct store *store = call->svc->store;

    /* Ready means the database answers now: one short try, no backoff,
     * so a load balancer's probe gets a quick honest answer. */
    call->ctx.deadline_ms =
        call->req->started_ms + (call->cfg->request_deadline_ms < 1000
                                     ? call->cfg->request_deadline_ms
                                     : 1000);
    if (!store_ping(store, &call->ctx, err))
        return error_set(err, ERR_UNAVAILABLE, NULL,
                         "the database is not answering");
    /* Made by the supervisor (or its indexer child), never here: requests
     * answer 503 until then, and so does readiness. */
    if (!call->indexes_ready)
        return error_set(err, ERR_UNAVAILABLE, NULL,
                         "the indexes are not made yet");
    encode_probe(&call->resp->body, "ready");
    return true;
}

bool
api_ops_metrics(struct api_call *call, struct error *err)
{
    if (!api_query(call, NULL, 0, NULL, err))
        return false;
    if (!metrics_render(&call->resp->body, api_routes, api_nroutes))
        return error_set(err, ERR_NOT_FOUND, NULL,
                         "this process keeps no metrics");
    call->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return true;
}

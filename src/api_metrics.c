/*
 * api_metrics.c - GET /metrics, Prometheus's text format.
 *
 * No token: a scraper has none, and the endpoint says nothing about any
 * user's data.  It is for operators only, so the web server keeps it off
 * the public site (nginx/parley.conf answers it with a 404) and exposes it
 * on an internal listener (nginx/site.conf.example).
 */
#include "api.h"
#include "metrics.h"
#include "banned.h"

bool
api_metrics(struct api_call *call, struct error *err)
{
    if (!query_check_unused(&call->query, err))
        return false;
    if (!metrics_render(&call->resp->body, api_routes, api_nroutes))
        return error_set(err, ERR_NOT_FOUND, NULL,
                         "this process keeps no metrics");
    call->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return true;
}

/*
 * metrics.h - Prometheus counters shared by every worker.
 *
 * The supervisor calls metrics_init() once, before the first fork: it maps
 * one anonymous shared region (MAP_SHARED | MAP_ANONYMOUS) that every
 * worker inherits, respawned and reloaded ones included, so the counters
 * add up across all workers and survive any one of them.  Workers update it
 * with relaxed C11 atomic adds (a handful per request, no lock, no system
 * call); whichever worker serves GET /metrics reads it all and writes the
 * text exposition format 0.0.4.
 *
 * Every function but metrics_init() is a no-op (metrics_render() returns
 * false) in a process that never called metrics_init(): the command-line
 * tools and the unit tests of other modules need not care.
 *
 * Exposed series (see the README's Operations section):
 *   parley_http_requests_total{route,method,status}       counter
 *   parley_http_request_duration_seconds{route,method}    histogram
 *   parley_db_calls_total                                 counter
 *   parley_db_retries_total                               counter
 *   parley_db_errors_total{kind="unavailable"|"internal"} counter
 *   parley_workers                                        gauge
 *   parley_build_info{version}                            gauge (1)
 *   process_start_time_seconds                            gauge
 * route is the route's pattern ("/api/agent-sessions/{session_id}"), or
 * "unmatched" for a path no route matches (404, 405); status is the code,
 * or its class ("4xx") for a code outside the list parley and nginx use.
 */
#ifndef PARLEY_METRICS_H
#define PARLEY_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "http.h"
#include "router.h"

/* Maps the region for a route table of nroutes rows.  Called once, before
 * any fork; a second call replaces the region (tests).  Returns -1 with
 * err set when the kernel refuses the mapping. */
int metrics_init(size_t nroutes, struct error *err);
/* Unmaps the region; metrics are off again in this process. */
void metrics_release(void);

/* One request served: route is its row in the route table, or -1 when no
 * route matched; seconds from taking the request to its last byte. */
void metrics_observe(int route, enum http_method method, int status,
                     double seconds);
/* One store call ended after `retries` extra tries; failure is ERR_NONE on
 * success, else the error it ended with (only ERR_UNAVAILABLE and
 * ERR_INTERNAL are database errors; not found or a duplicate are
 * answers). */
void metrics_db(int retries, enum error_code failure);
/* The supervisor's count of live worker processes. */
void metrics_set_workers(int n);

/* Appends every series to out, labelling routes from routes[0..n) (the
 * table given to metrics_init's count).  Returns false, appending nothing,
 * when metrics_init() was never called. */
bool metrics_render(struct buf *out, const struct route *routes, size_t n);

#endif

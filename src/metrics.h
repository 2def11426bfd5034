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
 * Exposed series (see docs/operations.md, "Metrics"):
 *   parley_http_requests_total{route,method,status}       counter
 *   parley_http_request_duration_seconds{route,method}    histogram
 *   parley_db_calls_total                                 counter
 *   parley_db_retries_total                               counter
 *   parley_db_errors_total{kind="unavailable"|"internal"} counter
 *   parley_workers                                        gauge
 *   parley_user_inflight_rejected_total{kind}              counter
 *       (kind: "all", "bulk", "conversation")
 *   parley_queue_expired_total                            counter
 *   parley_client_gone_total{when="queued"|"serving"}     counter
 *   parley_export_truncated_total                         counter
 *   parley_worker_recycled_total{reason="rss"}            counter
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

/* Events with a counter of their own. */
enum metrics_event {
    METRICS_INFLIGHT_REJECTED,     /* 429: the user's requests at the limit */
    METRICS_BULK_REJECTED,         /* 429: the user's bulk requests at theirs */
    METRICS_CONVERSATION_REJECTED, /* 429: its conversation turns at theirs */
    METRICS_QUEUE_EXPIRED,         /* 503: waited past its deadline */
    METRICS_GONE_QUEUED,           /* the client left before a worker took it */
    METRICS_GONE_SERVING,          /* ... while it was being answered */
    METRICS_EXPORT_TRUNCATED,      /* cut by export_deadline_ms */
    METRICS_RECYCLED_RSS, /* a worker replaced past worker_max_rss_mb */
    METRICS_EVENTS,
};

void metrics_count(enum metrics_event e);

/*
 * Requests in flight per user, shared by a host's workers: at most
 * `limit` requests of one user served at once (user_max_inflight).
 *
 * Each worker has a slot of its own in the region (its index in the
 * supervisor's table of children, told with metrics_worker_slot() right
 * after the fork) holding the hash of the user whose request it serves,
 * or 0, and a second one holding it too when that request is a bulk one
 * (user_max_bulk).  A user's count is the number of slots holding its hash: a
 * worker serves one request at a time, so there are at most as many
 * entries as workers, and a scan of them costs less than the request's
 * own parsing.  There is no separate counter that could drift: a worker
 * that dies (crash, SIGKILL) leaves only its own slot behind, which the
 * supervisor clears when it reaps it (metrics_worker_gone()), before the
 * slot is given to the next worker.
 *
 * Entering publishes the slot first, then counts (sequentially consistent
 * atomics): of two workers entering for the same user at once, the later
 * one to publish sees both, so the limit is never exceeded; at worst both
 * see each other and both refuse, which a client's retry after
 * Retry-After absorbs.  Hashes are 64-bit FNV-1a of the user id with a
 * per-region random seed; a collision between two users (a 1 in 2^64
 * chance per pair) would only make them share one limit.
 */
#define METRICS_WORKER_SLOTS 1024

/* In a worker, right after the fork: which slot is this process's. */
void metrics_worker_slot(int slot);
/* In the supervisor, after reaping a worker: its slot holds nothing. */
void metrics_worker_gone(int slot);
/* Counts this worker's request for user.  True when it is one of at most
 * `limit` requests of that user being served on this host (always true
 * without a region or a slot); false when it would be one too many, and
 * then nothing is held. */
bool metrics_inflight_enter(const char *user, int limit);
/* The request entered is also a bulk one (an export, an import, a
 * batch): true when it is one of at most `limit` bulk requests of that
 * user on this host; false (nothing more held) when one too many.  Needs
 * metrics_inflight_enter() first; left with it. */
bool metrics_bulk_enter(const char *user, int limit);
/* A conversation turn, served by the conversation pool, is counted in a
 * table of its own instead of metrics_inflight_enter()'s: turns wait on a
 * model for seconds, and a user's turns must not take its share of the
 * main workers.  Same contract as metrics_inflight_enter(). */
bool metrics_conversation_enter(const char *user, int limit);
/* The request entered is done (its bulk mark too). */
void metrics_inflight_leave(void);
/* Requests (bulk ones) of user being served now on this host. */
int metrics_inflight_count(const char *user);
int metrics_bulk_count(const char *user);
int metrics_conversation_count(const char *user);

/* Appends every series to out, labelling routes from routes[0..n) (the
 * table given to metrics_init's count).  Returns false, appending nothing,
 * when metrics_init() was never called. */
bool metrics_render(struct buf *out, const struct route *routes, size_t n);

#endif

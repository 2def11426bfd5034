/*
 * app.h - one request, top to bottom.
 *
 * app_handle() is the whole flow in one place: route -> auth -> body
 * checks and decode -> the route row's handler (api_*.c: validate,
 * service, store, encode) -> response.  Errors come back up as values
 * and become the contract's error body here, once.
 */
#ifndef PARLEY_APP_H
#define PARLEY_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "store.h"
#include "tally.h"

struct app {
    const struct config *cfg;
    struct store *store;
    /* Whether the indexes are known to exist: the supervisor's flag in
     * shared memory (supervisor.h), NULL for "they do".  Until it is
     * set, every route that uses the database answers 503 with
     * Retry-After: a query planned without its index could scan a
     * collection, and one that hints it would fail. */
    const atomic_bool *indexes_ready;
    bool indexes_seen; /* the flag was seen set: it stays so */
    /* Set by app_handle() for app_after(): whose session the request
     * named, or NULLs.  Arena memory of the current request. */
    const char *metrics_user;
    const char *metrics_session;
    /* The matched route's row in api_routes, or -1, for the Prometheus
     * counters (metrics.h). */
    int route_index;
    /* Per-session metrics counted by app_after() and not yet written
     * (tally.h).  Owned: app_release() writes what is left and frees it. */
    struct tally *tally;
    /* Tokens this worker has verified (auth.h).  Owned. */
    struct auth_cache *auth_cache;
    /* The current request counts for its user's requests in flight
     * (metrics_inflight_enter); released at the end of app_handle(). */
    bool inflight_held;
    /* The conversation's backend (agent.h), with its connection to a
     * model server once used.  Owned. */
    struct agent *agent;
};

/* user_max_inflight, or its default: half the workers, at least 1. */
int app_user_max_inflight(const struct config *cfg);
/* Whether this host has a conversation pool (conversation_workers and
 * conversation_listen); and how many of a user's conversation turns it
 * serves at once then: user_max_inflight when set, else half the pool's
 * workers, at least 1.  Without the pool, turns count among the user's
 * other requests. */
bool app_has_conversation_pool(const struct config *cfg);
int app_user_max_turns(const struct config *cfg);
/* How long the request waited between the web server passing it on
 * (req->web_start_ms) and now_wall_ms, less queue_clock_skew_ms; 0 when
 * not known, and for a time that is more than a day off (a wrong clock,
 * logged) rather than a wait. */
int64_t app_queue_wait_ms(const struct config *cfg, const struct request *req,
                          int64_t now_wall_ms);

void app_init(struct app *app, const struct config *cfg, struct store *store,
              const atomic_bool *indexes_ready);
/* Writes the pending per-session metrics and frees what app_init() made
 * (not the store). */
void app_release(struct app *app);
void app_handle(struct app *app, struct request *req, struct response *resp);
/* Work done after the response went out (the client does not wait).
 * The request's per-session metrics go to app->tally, not yet to the
 * database: see app_flush_metrics(). */
void app_after(struct app *app, const struct request *req,
               const struct response *resp);
/* Writes the tallied per-session metrics if there are any and either
 * idle (the worker has nothing else to do: no connection is waiting) or
 * they are due (tally_wait_ms() says 0).  After the response, so the
 * client never waits for it. */
void app_flush_metrics(struct app *app, bool idle);

#endif

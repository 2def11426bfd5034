/*
 * service_lifecycle.h - stats, health, cleanup and user erasure: what the
 * routes of the "Session lifecycle" issue do, independent of HTTP.
 *
 * Stats and health are the caller's own (scoped by the token's sub like
 * everything else); cleanup and erasure are admin operations whose role
 * check is the handler's (api_lifecycle.c).
 */
#ifndef PARLEY_SERVICE_LIFECYCLE_H
#define PARLEY_SERVICE_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "service.h"
#include "store.h"
#include "sweeper.h"

/* Documents deleted per erasure batch: one find and one delete_many. */
#define LIFECYCLE_ERASE_BATCH 1000

struct session_health {
    const char *session_id; /* the session's, arena memory */
    int64_t message_count;
    double hours_inactive; /* rounded to 2 decimals */
    struct health_report report;
};

struct erase_counts {
    int64_t sessions;
    int64_t messages;
    int64_t memory;
    int64_t idempotency_keys;
};

/* The sessions of user, or of every user when user is NULL, counted by
 * one aggregation in the database. */
bool service_lifecycle_stats(struct service *svc, struct store_ctx *ctx,
                             const char *user, struct session_stats *out,
                             struct error *err);

/* The health of the caller's session at wall-clock now (ms); 404 when the
 * caller has no such session. */
bool service_lifecycle_health(struct service *svc, struct store_ctx *ctx,
                              const char *user, const char *session_id,
                              int64_t now, struct session_health *out,
                              struct error *err);

/* One sweeper pass in this process, under the host's sweeper lock
 * (ERR_CONFLICT when another sweep holds it), that stops starting new
 * work after request_deadline_ms: what is left waits for the next pass. */
bool service_lifecycle_cleanup(struct service *svc, struct store_ctx *ctx,
                               struct sweep_counts *out, struct error *err);

/*
 * Deletes every session, message, memory entry and idempotency key of
 * user_id (1-255 chars, else 400), in batches of LIFECYCLE_ERASE_BATCH,
 * sessions first so nothing of the user is reachable once the first step
 * is done.  Orphans a cut-short purge left are found too (the batches go
 * by user_id, not by session).  Idempotent: a second call finds nothing
 * and counts 0; a call cut short is finished by the next.  Each batch
 * gets a fresh deadline (ctx->deadline_ms is moved on).
 */
bool service_lifecycle_erase_user(struct service *svc, struct store_ctx *ctx,
                                  const char *user_id, struct erase_counts *out,
                                  struct error *err);

#endif

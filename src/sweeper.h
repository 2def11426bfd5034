/*
 * sweeper.h - retention: one cleanup pass over the sessions.
 *
 * Rules (seconds from the configuration; 0 turns a rule off), in the
 * order a pass applies them:
 *   max_session_age    sessions created before now - age are deleted,
 *                      whatever their status
 *   max_inactive_time  sessions that are not active and whose
 *                      last_activity_at and updated_at are both before
 *                      now - time are deleted
 *   idle_timeout       active sessions whose last_activity_at is before
 *                      now - timeout become "expired" (version + 1,
 *                      updated_at = now, last_activity_at unchanged)
 * Deleting a session always purges its messages, memory and idempotency
 * keys (store_session_purge).
 *
 * After the rules, a pass recounts the quota counters (store.h,
 * "Counters") of every session and user whose dirty_at is older than
 * sweeper_tombstone_age(): a counter change cut short (a crash, a failed
 * give-back) left them too high.  Each is counted again (a session's
 * messages, their bytes and its memory entries; a user's sessions) and
 * set in one write conditional on nothing having changed it since it was
 * read, which also clears dirty_at; one that changed is left for the
 * next pass.  Batches and limits as for the rules.
 *
 * Before the rules, a pass finishes deletes and imports that died: for
 * each tombstone older than sweeper_tombstone_age() whose session
 * document is gone it purges the session's UUID, and it removes every
 * such tombstone.  Those purged messages count as deleted_messages.
 *
 * Each rule works in batches: a query on the rule's index picks up to
 * `batch` candidate ids, then each candidate gets a conditional write
 * whose filter re-checks the rule.  Only what those writes report as
 * changed is counted, and only the sessions this pass deleted are purged,
 * so sweeps running at once on several hosts never delete anything twice
 * and their counts add up to what happened.  A rule stops when a batch
 * comes back short, or after max_batches batches (logged: more remain for
 * the next pass).
 *
 * Only one sweep runs at a time on a host: every sweep (the supervisor's
 * child, `parley cleanup`, POST /api/admin/cleanup) first takes an
 * exclusive flock(2) on cfg->sweeper_lock_file.
 */
#ifndef PARLEY_SWEEPER_H
#define PARLEY_SWEEPER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "store.h"

#define SWEEPER_BATCH       200
#define SWEEPER_MAX_BATCHES 100

/* A tombstone is left to its writer for max(this, 2 x
 * request_deadline_ms) ms. */
#define SWEEPER_TOMBSTONE_MIN_MS 60000
int64_t sweeper_tombstone_age(const struct config *cfg);

/* `parley cleanup`'s exit status when another sweep holds the lock
 * (sysexits.h's EX_TEMPFAIL: try again later). */
#define SWEEPER_EXIT_BUSY 75

struct sweep_counts {
    int64_t expired;
    int64_t deleted_sessions;
    int64_t deleted_messages;
    /* Sessions and users whose counters the recount found off and set
     * (logged; not in the cleanup route's answer). */
    int64_t recounted;
};

struct sweep_limits {
    int64_t batch;   /* candidates per query, >= 1 */
    int max_batches; /* per rule and pass, >= 1 */
    /* When set (a signal handler's flag), the pass stops before the next
     * session; NULL: never. */
    const volatile sig_atomic_t *stop;
    /* The pass also stops before the next session once the store's
     * monotonic clock (s->policy) reaches this; 0: no limit. */
    int64_t deadline_ms;
};

/*
 * One pass at wall-clock time now_ms through the store interface, with
 * SWEEPER_BATCH and SWEEPER_MAX_BATCHES.  *out counts what the pass did,
 * also when it fails part way (false, err set; what was done stays done).
 * Each store call gets cfg->request_deadline_ms.  Logs its counts.
 */
bool sweeper_run(const struct config *cfg, struct store *s, int64_t now_ms,
                 struct sweep_counts *out, struct error *err);
bool sweeper_run_limits(const struct config *cfg, struct store *s,
                        int64_t now_ms, const struct sweep_limits *lim,
                        struct sweep_counts *out, struct error *err);

/* Takes the host's sweeper lock without waiting.  Returns the lock's file
 * descriptor, or -1 with err: ERR_CONFLICT when another sweep holds it,
 * ERR_INTERNAL when the file cannot be opened. */
int sweeper_lock(const struct config *cfg, struct error *err);
/* Releases it (closes fd); -1 is ignored. */
void sweeper_unlock(int fd);

/*
 * One locked pass on a store of its own (made here after any fork):
 * `parley cleanup`.  Returns 0 with *out filled, SWEEPER_EXIT_BUSY when
 * the lock is held, 1 on failure (err set).  Needs
 * store_mongo_global_init() first.
 */
int sweeper_once(const struct config *cfg, struct sweep_counts *out,
                 struct error *err);

/* The body of the supervisor's short-lived sweeper child, right after
 * fork(): SIGTERM stops the pass between sessions.  Returns its exit
 * status (0 also when another sweep held the lock). */
int sweeper_main(const struct config *cfg);

#endif

/*
 * retry.h - the one loop every database call goes through.
 *
 * An operation is tried up to max_attempts times.  Between tries the
 * loop sleeps for full-jitter exponential backoff,
 *     sleep = random(0, min(max_ms, base_ms * 2^n))   (n = 0, 1, ...)
 * (AWS's "Exponential Backoff And Jitter").  It retries only errors the
 * store marked retryable: RETRY_SAFE always, RETRY_IDEMPOTENT only when
 * the caller says the operation is idempotent.  Everything else (a
 * duplicate key, a validation or auth failure) returns at once.
 *
 * The request deadline (a monotonic time in ms) bounds the whole: no try
 * starts after it, and a sleep that would end past it is not taken; with
 * try_ms set, neither is a retry that could not end by the deadline.  A
 * retryable failure that is not retried becomes ERR_UNAVAILABLE (503 with
 * Retry-After), keeping the store's message for the log.
 *
 * The loop sits around the plain call, so the operation needs no
 * callback or argument struct:
 *
 *     struct retry r;
 *
 *     for (retry_begin(&r, policy, deadline_ms, idempotent, stats, err);
 *          retry_again(&r);)
 *         r.ok = operation(..., r.err);
 *     return r.ok;
 *
 * Time, sleep and randomness come through the policy so unit tests can
 * drive the loop with a fake clock.
 */
#ifndef PARLEY_RETRY_H
#define PARLEY_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct retry_policy {
    int max_attempts; /* >= 1 */
    int base_ms;
    int max_ms;
    /* The longest one try can take, 0 if not known.  A try cannot be cut
     * short once started (the driver has no per-call deadline), so a retry
     * is started only if its sleep and the whole try fit before the
     * deadline; a first try always starts. */
    int64_t try_ms;
    int64_t (*now_ms)(void *env); /* monotonic */
    void (*sleep_ms)(void *env, int64_t ms);
    uint64_t (*random_upto)(void *env, uint64_t n); /* uniform in [0, n] */
    void *env;
};

struct retry_stats {
    int attempts; /* tries made by the last loop */
    int64_t slept_ms;
    int retries_total; /* across calls, for metrics */
};

/* One loop of tries.  Lives on the caller's stack for one call; not to be
 * copied (err may point into it). */
struct retry {
    bool ok;           /* the last try's result: the loop's result */
    struct error *err; /* the caller's err, or own_err if that was NULL */
    const struct retry_policy *p;
    int64_t deadline_ms;
    bool idempotent;
    struct retry_stats *stats; /* the caller's, or own_stats */
    struct retry_stats own_stats;
    struct error own_err;
};

/* Fills p from the config with the real clock and the process RNG. */
struct config;
void retry_policy_init(struct retry_policy *p, const struct config *cfg);

/* The cap before jitter for the sleep after failed try number n (0-based):
 * min(max_ms, base_ms * 2^n), without overflow. */
int64_t retry_backoff_cap(const struct retry_policy *p, int n);

/* Starts a loop: r->ok false, stats reset.  stats and err may be NULL. */
void retry_begin(struct retry *r, const struct retry_policy *p,
                 int64_t deadline_ms, bool idempotent,
                 struct retry_stats *stats, struct error *err);

/* Whether to make a (further) try, after sleeping the backoff; called
 * before each try with r->ok and *r->err as the last try left them.  It
 * clears *r->err and counts the attempt before saying yes.  It says no
 * once a try succeeded, failed in a way not to retry, or the attempts or
 * the deadline ran out; a retryable failure is then ERR_UNAVAILABLE, as
 * is a deadline that passed before the first try. */
bool retry_again(struct retry *r);

#endif

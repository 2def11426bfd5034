#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "retry.h"
#include "rng.h"
#include "banned.h"

static int64_t
real_now_ms(void *env)
{
    (void)env;
    return clock_mono_ms();
}

static void
real_sleep_ms(void *env, int64_t ms)
{
    (void)env;
    clock_sleep_ms(ms);
}

static uint64_t
real_random_upto(void *env, uint64_t n)
{
    (void)env;
    return rng_upto(n);
}

void
retry_policy_init(struct retry_policy *p, const struct config *cfg)
{
    /* config.c checks the ranges; the clamps only keep a policy built
     * from a zeroed config from looping or sleeping a negative time. */
    p->max_attempts =
        cfg->db_retry_max_attempts > 0 ? cfg->db_retry_max_attempts : 1;
    p->base_ms = cfg->db_retry_base_ms > 0 ? cfg->db_retry_base_ms : 0;
    p->max_ms = cfg->db_retry_max_ms > 0 ? cfg->db_retry_max_ms : 0;
    p->try_ms = 0; /* the store knows its driver's timeouts */
    p->now_ms = real_now_ms;
    p->sleep_ms = real_sleep_ms;
    p->random_upto = real_random_upto;
    p->env = NULL;
}

int64_t
retry_backoff_cap(const struct retry_policy *p, int n)
{
    int64_t cap = p->base_ms > 0 ? p->base_ms : 0;
    int64_t max = p->max_ms > 0 ? p->max_ms : 0;

    /* Doubling stops as soon as the cap reaches max_ms, so cap never
     * exceeds 2 * INT_MAX and a large n cannot overflow; shifting
     * base_ms by n would be undefined from n = 63 on. */
    for (int i = 0; i < n && cap > 0 && cap < max; i++)
        cap *= 2;
    return cap < max ? cap : max;
}

static bool
retryable(const struct error *err, bool idempotent)
{
    return err->retry == RETRY_SAFE ||
           (err->retry == RETRY_IDEMPOTENT && idempotent);
}

/* Turns the last retryable failure into the 503 the caller sees, keeping
 * the store's words (and db_code) for the log line. */
static bool
give_up(struct error *err, const char *why, int attempts)
{
    char msg[sizeof(err->message)];
    int db_code = err->db_code;

    memcpy(msg, err->message, sizeof(msg));
    msg[sizeof(msg) - 1] = '\0';
    error_set(err, ERR_UNAVAILABLE, NULL, "%s after %d %s: %s", why, attempts,
              attempts == 1 ? "try" : "tries", msg);
    err->db_code = db_code;
    return false;
}

void
retry_begin(struct retry *r, const struct retry_policy *p, int64_t deadline_ms,
            bool idempotent, struct retry_stats *stats, struct error *err)
{
    r->ok = false;
    r->p = p;
    r->deadline_ms = deadline_ms;
    r->idempotent = idempotent;
    r->stats = stats != NULL ? stats : &r->own_stats;
    r->stats->attempts = 0;
    r->stats->slept_ms = 0;
    r->err = err;
    if (err == NULL) {
        error_clear(&r->own_err);
        r->err = &r->own_err;
    }
}

/* Says yes to a try: a clean err for it, and one attempt more. */
static bool
next_try(struct retry *r)
{
    error_clear(r->err);
    r->stats->attempts++;
    return true;
}

bool
retry_again(struct retry *r)
{
    const struct retry_policy *p = r->p;
    struct retry_stats *stats = r->stats;
    struct error *err = r->err;
    int max_attempts = p->max_attempts > 0 ? p->max_attempts : 1;
    int64_t try_ms = p->try_ms > 0 ? p->try_ms : 0;
    int64_t now, wait;

    if (stats->attempts == 0) {
        if (p->now_ms(p->env) >= r->deadline_ms)
            return error_set(
                err, ERR_UNAVAILABLE, NULL,
                "request deadline passed before the database call");
        return next_try(r);
    }
    if (r->ok || !retryable(err, r->idempotent))
        return false;
    if (stats->attempts >= max_attempts)
        return give_up(err, "database unavailable", stats->attempts);

    /* The sleep after failed try number n (0-based). */
    wait = (int64_t)p->random_upto(
        p->env, (uint64_t)retry_backoff_cap(p, stats->attempts - 1));
    now = p->now_ms(p->env);
    /* A sleep that would end at or past the deadline leaves no time for
     * the next try, so it is not worth taking; nor is a try that may
     * still be running when the deadline passes. */
    if (now >= r->deadline_ms || wait + try_ms >= r->deadline_ms - now)
        return give_up(err, "request deadline reached", stats->attempts);
    p->sleep_ms(p->env, wait);
    stats->slept_ms += wait;
    /* A real sleep may overshoot; never start a try past the deadline. */
    if (p->now_ms(p->env) >= r->deadline_ms)
        return give_up(err, "request deadline reached", stats->attempts);
    stats->retries_total++;
    return next_try(r);
}

/*
 * check_retry.c - the retry loop with a fake clock, and the store_*()
 * wrappers over a failing fake store.
 */
#include <limits.h>
#include <string.h>

#include "config.h"
#include "fake_store.h"
#include "retry.h"
#include "store.h"
#include "suites.h"

/* --- the retry loop around a scripted operation --------------------------- */

struct script {
    int fail_times; /* -1: fail forever */
    enum error_code code;
    enum retry_class retry;
    int calls;
    struct fake_clock *clock; /* each call advances it by clock->op_ms */
    int64_t call_at[FAKE_MAX_RECORDED];
};

static bool
script_op(void *arg, struct error *err)
{
    struct script *s = arg;

    if (s->clock != NULL) {
        if (s->calls < FAKE_MAX_RECORDED)
            s->call_at[s->calls] = s->clock->now;
        s->clock->now += s->clock->op_ms;
    }
    s->calls++;
    if (s->fail_times >= 0 && s->calls > s->fail_times)
        return true;
    error_set(err, s->code, NULL, "store says no");
    err->retry = s->retry;
    err->db_code = 6;
    return false;
}

/* The loop as every store_*() call runs it, around script_op(). */
static bool
run_script(const struct retry_policy *p, int64_t deadline_ms, bool idempotent,
           struct script *s, struct retry_stats *stats, struct error *err)
{
    struct retry r;

    for (retry_begin(&r, p, deadline_ms, idempotent, stats, err);
         retry_again(&r);)
        r.ok = script_op(s, r.err);
    return r.ok;
}

START_TEST(test_first_try_succeeds)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {0, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {99, 99, 5};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(run_script(&p, 1000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(st.attempts, 1);
    ck_assert_int_eq(st.slept_ms, 0);
    ck_assert_int_eq(st.retries_total, 5);
    ck_assert_int_eq(c.nsleeps, 0);
    ck_assert_int_eq(c.nrandoms, 0);
    ck_assert_int_eq(err.code, ERR_NONE);
}
END_TEST

START_TEST(test_safe_retried_with_cap_sleeps)
{
    struct fake_clock c = {.random = FAKE_RANDOM_CAP};
    struct retry_policy p;
    struct script s = {2, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(run_script(&p, 100000, false, &s, &st, &err));
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(st.attempts, 3);
    ck_assert_int_eq(c.nsleeps, 2);
    ck_assert_int_eq(c.sleeps[0], 10);
    ck_assert_int_eq(c.sleeps[1], 20);
    ck_assert_int_eq(c.nrandoms, 2);
    ck_assert_uint_eq(c.randoms[0], 10);
    ck_assert_uint_eq(c.randoms[1], 20);
    ck_assert_int_eq(st.slept_ms, 30);
    ck_assert_int_eq(st.retries_total, 2);
    ck_assert_int_eq(c.now, 30);
    /* The failure of the earlier tries does not leak out of a success. */
    ck_assert_int_eq(err.code, ERR_NONE);
}
END_TEST

START_TEST(test_zero_jitter_still_asks_for_the_caps)
{
    struct fake_clock c = {.random = FAKE_RANDOM_ZERO};
    struct retry_policy p;
    struct script s = {2, ERR_INTERNAL, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 3);
    ck_assert_int_eq(c.nsleeps, 2);
    ck_assert_int_eq(c.sleeps[0], 0);
    ck_assert_int_eq(c.sleeps[1], 0);
    ck_assert_uint_eq(c.randoms[0], 10);
    ck_assert_uint_eq(c.randoms[1], 20);
    ck_assert_int_eq(st.slept_ms, 0);
    ck_assert_int_eq(st.retries_total, 2);
}
END_TEST

START_TEST(test_caps_double_up_to_max)
{
    static const int64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    struct fake_clock c = {.random = FAKE_RANDOM_CAP};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 8, 100, 1000);
    ck_assert(!run_script(&p, 1000000, true, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 8);
    ck_assert_int_eq(c.nsleeps, 7);
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(c.sleeps[i], want[i]);
        ck_assert_int_eq(retry_backoff_cap(&p, i), want[i]);
    }
    ck_assert_int_eq(st.slept_ms, 4500);
}
END_TEST

START_TEST(test_half_jitter_within_cap)
{
    struct fake_clock c = {.random = FAKE_RANDOM_HALF};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 6, 7, 50);
    ck_assert(!run_script(&p, 1000000, true, &s, &st, &err));
    ck_assert_int_eq(c.nsleeps, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_ge(c.sleeps[i], 0);
        ck_assert_int_le(c.sleeps[i], retry_backoff_cap(&p, i));
        ck_assert_int_eq(c.sleeps[i], retry_backoff_cap(&p, i) / 2);
    }
    ck_assert_int_eq(c.sleeps[0], 3);  /* 7 / 2 */
    ck_assert_int_eq(c.sleeps[3], 25); /* min(50, 56) / 2 */
}
END_TEST

START_TEST(test_exhausted_becomes_unavailable)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {-1, ERR_INTERNAL, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(!run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(st.attempts, 3);
    ck_assert_int_eq(c.nsleeps, 2);
    ck_assert_int_eq(st.retries_total, 2);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(err.db_code, 6);
    ck_assert_ptr_null(err.param);
    ck_assert_ptr_nonnull(strstr(err.message, "store says no"));
    ck_assert_ptr_nonnull(strstr(err.message, "3 tries"));
}
END_TEST

START_TEST(test_one_attempt_policy)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 1, 10, 1000);
    ck_assert(!run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.nsleeps, 0);
    ck_assert_int_eq(c.nrandoms, 0);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "store says no"));
}
END_TEST

/* Errors the loop must hand back at once, whatever idempotent says. */
static const struct {
    enum error_code code;
    enum retry_class retry;
} never[] = {
    {ERR_DUPLICATE, RETRY_NEVER},  {ERR_INTERNAL, RETRY_NEVER},
    {ERR_VALIDATION, RETRY_NEVER}, {ERR_UNAUTHORIZED, RETRY_NEVER},
    {ERR_NOT_FOUND, RETRY_NEVER},  {ERR_UNAVAILABLE, RETRY_NEVER},
};

START_TEST(test_never_is_not_retried)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {-1, never[_i / 2].code, never[_i / 2].retry, 0, NULL,
                       {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(!run_script(&p, 100000, _i % 2 == 0, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(st.attempts, 1);
    ck_assert_int_eq(st.retries_total, 0);
    ck_assert_int_eq(c.nsleeps, 0);
    ck_assert_int_eq(err.code, never[_i / 2].code);
    ck_assert_str_eq(err.message, "store says no");
    ck_assert_int_eq(err.db_code, 6);
}
END_TEST

START_TEST(test_idempotent_class_needs_idempotent_op)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(!run_script(&p, 100000, false, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.nsleeps, 0);
    /* Not retryable for this op, so handed back as the store said it. */
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retry, RETRY_IDEMPOTENT);
    ck_assert_str_eq(err.message, "store says no");

    s.calls = 0;
    ck_assert(!run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "store says no"));

    s.calls = 0;
    s.fail_times = 1;
    ck_assert(run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 2);
}
END_TEST

START_TEST(test_deadline_passed_before_first_try)
{
    struct fake_clock c = {.now = 1000};
    struct retry_policy p;
    struct script s = {0, ERR_NONE, RETRY_NEVER, 0, NULL, {0}};
    struct retry_stats st = {7, 7, 0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(!run_script(&p, 1000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 0);
    ck_assert_int_eq(st.attempts, 0);
    ck_assert_int_eq(st.slept_ms, 0);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);

    ck_assert(!run_script(&p, 999, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 0);
    ck_assert(run_script(&p, 1001, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
}
END_TEST

START_TEST(test_sleep_that_would_cross_deadline_is_not_taken)
{
    struct fake_clock c = {.random = FAKE_RANDOM_CAP};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, &c, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    /* Try at 0, sleep 100 (ends 100 < 150), try at 100, sleep 200 would
     * end at 300 >= 150: stop. */
    fake_clock_policy(&p, &c, 5, 100, 1000);
    ck_assert(!run_script(&p, 150, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(s.call_at[0], 0);
    ck_assert_int_eq(s.call_at[1], 100);
    ck_assert_int_eq(c.nsleeps, 1);
    ck_assert_int_eq(c.sleeps[0], 100);
    ck_assert_int_eq(st.slept_ms, 100);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "store says no"));
    ck_assert_ptr_nonnull(strstr(err.message, "deadline"));
}
END_TEST

START_TEST(test_sleep_ending_at_deadline_is_not_taken)
{
    struct fake_clock c = {.random = FAKE_RANDOM_CAP};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, &c, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 5, 100, 1000);
    ck_assert(!run_script(&p, 100, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.nsleeps, 0);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);

    /* One ms more and the sleep fits. */
    c = (struct fake_clock){.random = FAKE_RANDOM_CAP};
    s.calls = 0;
    ck_assert(!run_script(&p, 101, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(c.nsleeps, 1);
}
END_TEST

START_TEST(test_slow_try_uses_up_deadline)
{
    struct fake_clock c = {.random = FAKE_RANDOM_ZERO, .op_ms = 60};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, &c, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    /* Each try takes 60 ms and no sleep: tries start at 0, 60 and 120;
     * the next would start at 180, past the deadline of 150, so the
     * deadline (not max_attempts = 10) stops it. */
    fake_clock_policy(&p, &c, 10, 100, 1000);
    ck_assert(!run_script(&p, 150, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(s.call_at[2], 120);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
}
END_TEST

/* try_ms: a retry starts only if it could end by the deadline; the first
 * try always starts, however little time is left. */
START_TEST(test_retry_that_may_outlive_deadline_is_not_started)
{
    struct fake_clock c = {.random = FAKE_RANDOM_ZERO, .op_ms = 60};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, &c, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    /* Tries start at 0 and 60 (60 + 60 < 150); one at 120 could run to
     * 180, past 150, so it is not started. */
    fake_clock_policy(&p, &c, 10, 100, 1000);
    p.try_ms = 60;
    ck_assert(!run_script(&p, 150, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(s.call_at[1], 60);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "deadline"));

    /* A try ending exactly at the deadline leaves no time: not started. */
    c.now = 0;
    s.calls = 0;
    ck_assert(!run_script(&p, 120, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);

    /* The first try starts even when try_ms exceeds what is left. */
    c.now = 0;
    s.calls = 0;
    p.try_ms = 1000;
    ck_assert(!run_script(&p, 150, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    s.calls = 0;
    s.fail_times = 0;
    ck_assert(run_script(&p, 2000, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
}
END_TEST

/* store_try_fits(): a try of try_ms must end before the deadline, on the
 * policy's clock; with try_ms 0, any time before the deadline will do. */
START_TEST(test_store_try_fits)
{
    struct fake_clock c = {.now = 1000};
    struct retry_policy p;
    struct store *s;
    struct store_ctx ctx;

    memset(&ctx, 0, sizeof(ctx));
    fake_clock_policy(&p, &c, 3, 10, 100);
    p.try_ms = 200;
    s = fake_store_new(&p, &c);
    ctx.deadline_ms = 1201;
    ck_assert(store_try_fits(s, &ctx));
    ctx.deadline_ms = 1200;
    ck_assert(!store_try_fits(s, &ctx));
    store_free(s);

    p.try_ms = 0;
    s = fake_store_new(&p, &c);
    ctx.deadline_ms = 1001;
    ck_assert(store_try_fits(s, &ctx));
    ctx.deadline_ms = 1000;
    ck_assert(!store_try_fits(s, &ctx));
    store_free(s);
}
END_TEST

/* A sleep that overshoots, as a real one may. */
static void
late_sleep(void *env, int64_t ms)
{
    struct fake_clock *c = env;

    c->now += ms + 50;
}

START_TEST(test_no_try_after_overshooting_sleep)
{
    struct fake_clock c = {.random = FAKE_RANDOM_CAP};
    struct retry_policy p;
    struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, &c, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 5, 100, 1000);
    p.sleep_ms = late_sleep;
    ck_assert(!run_script(&p, 120, true, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.now, 150);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
}
END_TEST

/* Over many deadlines: no try starts at or after the deadline and no
 * sleep ends at or after it. */
START_TEST(test_deadline_never_crossed)
{
    for (int64_t deadline = 1; deadline < 700; deadline += 7) {
        struct fake_clock c = {.random = FAKE_RANDOM_HALF, .op_ms = 5};
        struct retry_policy p;
        struct script s = {-1, ERR_UNAVAILABLE, RETRY_SAFE, 0, &c, {0}};
        struct retry_stats st = {0};
        struct error err = ERROR_INIT;
        int64_t t = 0;

        fake_clock_policy(&p, &c, 12, 20, 400);
        ck_assert(!run_script(&p, deadline, true, &s, &st, &err));
        ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
        ck_assert_int_ge(s.calls, 1);
        ck_assert_int_eq(s.calls, st.attempts);
        for (int i = 0; i < s.calls; i++)
            ck_assert_int_lt(s.call_at[i], deadline);
        for (int i = 0; i < c.nsleeps; i++) {
            t = s.call_at[i] + c.op_ms + c.sleeps[i];
            ck_assert_int_lt(t, deadline);
            ck_assert_int_eq(s.call_at[i + 1], t);
        }
    }
}
END_TEST

START_TEST(test_backoff_cap_no_overflow)
{
    struct retry_policy p = {0};

    p.max_attempts = 3;
    p.base_ms = 50;
    p.max_ms = 2000;
    ck_assert_int_eq(retry_backoff_cap(&p, 0), 50);
    ck_assert_int_eq(retry_backoff_cap(&p, 1), 100);
    ck_assert_int_eq(retry_backoff_cap(&p, 5), 1600);
    ck_assert_int_eq(retry_backoff_cap(&p, 6), 2000);
    ck_assert_int_eq(retry_backoff_cap(&p, 62), 2000);
    ck_assert_int_eq(retry_backoff_cap(&p, 63), 2000);
    ck_assert_int_eq(retry_backoff_cap(&p, 64), 2000);
    ck_assert_int_eq(retry_backoff_cap(&p, INT_MAX), 2000);

    p.base_ms = INT_MAX;
    p.max_ms = INT_MAX;
    ck_assert_int_eq(retry_backoff_cap(&p, 0), INT_MAX);
    ck_assert_int_eq(retry_backoff_cap(&p, 62), INT_MAX);

    p.base_ms = 1;
    ck_assert_int_eq(retry_backoff_cap(&p, 30), 1 << 30);
    ck_assert_int_eq(retry_backoff_cap(&p, 31), INT_MAX);
    ck_assert_int_eq(retry_backoff_cap(&p, 62), INT_MAX);

    /* base above max: max wins from the start. */
    p.base_ms = 500;
    p.max_ms = 300;
    ck_assert_int_eq(retry_backoff_cap(&p, 0), 300);
    ck_assert_int_eq(retry_backoff_cap(&p, 62), 300);

    p.base_ms = 0;
    p.max_ms = 1000;
    ck_assert_int_eq(retry_backoff_cap(&p, 62), 0);
}
END_TEST

START_TEST(test_stats_and_err_may_be_null)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {1, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(run_script(&p, 100000, true, &s, NULL, NULL));
    ck_assert_int_eq(s.calls, 2);
    s.calls = 0;
    s.fail_times = -1;
    ck_assert(!run_script(&p, 100000, true, &s, NULL, NULL));
    ck_assert_int_eq(s.calls, 3);
}
END_TEST

START_TEST(test_retries_total_accumulates)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {1, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {0};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 2);
    ck_assert_int_eq(st.slept_ms, 10);
    s.calls = 0;
    ck_assert(run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 2);
    ck_assert_int_eq(st.slept_ms, 10);
    ck_assert_int_eq(st.retries_total, 2);
    s.calls = 0;
    s.fail_times = 0;
    ck_assert(run_script(&p, 100000, true, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 1);
    ck_assert_int_eq(st.slept_ms, 0);
    ck_assert_int_eq(st.retries_total, 2);
}
END_TEST

START_TEST(test_policy_init_from_config)
{
    struct config cfg;
    struct retry_policy p;
    int64_t t0, t1;

    memset(&cfg, 0, sizeof(cfg));
    cfg.db_retry_max_attempts = 4;
    cfg.db_retry_base_ms = 25;
    cfg.db_retry_max_ms = 800;
    retry_policy_init(&p, &cfg);
    ck_assert_int_eq(p.max_attempts, 4);
    ck_assert_int_eq(p.base_ms, 25);
    ck_assert_int_eq(p.max_ms, 800);
    ck_assert_int_eq(p.try_ms, 0);
    ck_assert_ptr_nonnull(p.now_ms);
    ck_assert_ptr_nonnull(p.sleep_ms);
    ck_assert_ptr_nonnull(p.random_upto);
    ck_assert_uint_eq(p.random_upto(p.env, 0), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_le(p.random_upto(p.env, 3), 3);
    t0 = p.now_ms(p.env);
    p.sleep_ms(p.env, 2);
    t1 = p.now_ms(p.env);
    ck_assert_int_ge(t1 - t0, 2);

    memset(&cfg, 0, sizeof(cfg));
    retry_policy_init(&p, &cfg);
    ck_assert_int_eq(p.max_attempts, 1);
}
END_TEST

/* --- the store_*() wrappers over the fake store ----------------------------
 */

struct fixture {
    struct fake_clock clock;
    struct retry_policy policy;
    struct arena arena;
    struct store *store;
    struct store_ctx ctx;
    struct session sess;     /* alice's "s1", inserted by fixture_init() */
    struct message msg;      /* its message seq 1 */
    struct idem_key idem;    /* its key "k1", naming msg */
    int base[FAKE_OP_COUNT]; /* calls fixture_init() made */
};

/* One message, within any quota. */
static const struct store_reserve one_message = {
    {1, 0, 0}, {INT64_MAX, INT64_MAX, INT64_MAX}, true, NULL};

static void
fixture_init(struct fixture *fx)
{
    struct error err = ERROR_INIT;
    struct json_value *one;
    struct session out;

    memset(fx, 0, sizeof(*fx));
    fx->clock.random = FAKE_RANDOM_CAP;
    fake_clock_policy(&fx->policy, &fx->clock, 3, 10, 100);
    arena_init(&fx->arena, 0);
    fx->store = fake_store_new(&fx->policy, &fx->clock);
    fx->ctx.arena = &fx->arena;
    fx->ctx.deadline_ms = 100000;
    fake_session(&fx->sess, &fx->arena, "alice", "s1", 1000);
    ck_assert(store_session_insert(fx->store, &fx->ctx, &fx->sess, &err));
    ck_assert(store_session_reserve_seq(fx->store, &fx->ctx, "alice",
                                        &fx->sess.id, &one_message, 1000, &out,
                                        &err));
    ck_assert(
        store_user_count(fx->store, &fx->ctx, "alice", 1, 10, 1000, &err));
    fake_message(&fx->msg, &fx->arena, &fx->sess, 1, ROLE_USER, "hello", 1000);
    fx->msg.item_id = "rs_1"; /* a /v1 item's id, for message_get_item */
    ck_assert(store_message_insert(fx->store, &fx->ctx, &fx->msg, 1, &err));
    fx->idem.message_id = fx->msg.id;
    fx->idem.seq = 1;
    fx->idem.created_at = 1000;
    ck_assert(store_idem_claim(fx->store, &fx->ctx, "alice", &fx->sess.id, "k1",
                               &fx->idem, &err));
    one = json_new_int(&fx->arena, 1);
    ck_assert(store_memory_put(fx->store, &fx->ctx, "alice", &fx->sess.id, "m1",
                               one, 1000, true, &err));
    for (int op = 0; op < FAKE_OP_COUNT; op++)
        fx->base[op] = fake_store_calls(fx->store, (enum fake_op)op);
}

static void
fixture_release(struct fixture *fx)
{
    store_free(fx->store);
    arena_release(&fx->arena);
}

/* Calls of op since fixture_init(), whose own calls are not counted. */
static int
op_calls(const struct fixture *fx, enum fake_op op)
{
    return fake_store_calls(fx->store, op) - fx->base[op];
}

/* Runs one wrapper against the session in fx; the FAKE_* op it uses is
 * op (FAKE_SESSION_INSERT inserts a new session "s2").  Returns the
 * wrapper's result. */
static bool
call_op(struct fixture *fx, enum fake_op op, struct error *err)
{
    struct store *s = fx->store;
    struct store_ctx *ctx = &fx->ctx;
    struct session out, fresh;
    struct session_page page;
    struct session_filter f = {NULL,
                               -1,
                               -1,
                               NULL,
                               STORE_NO_TIME,
                               STORE_NO_TIME,
                               STORE_NO_TIME,
                               STORE_NO_TIME,
                               SORT_UPDATED_DESC};
    struct session_change change = {0};
    struct message msg;
    struct message_page mpage;
    struct message_filter mf = {STORE_NO_SEQ,  STORE_NO_SEQ,  -1,    NULL,
                                STORE_NO_TIME, STORE_NO_TIME, false, false};
    struct message_change mchange = {SET_CONTENT, "edited", NULL,
                                     6,           2000,     STORE_NO_TIME};
    struct store_counts counts = {1, 0, 0};
    struct user_counter ucount = {1, 0};
    const char *keys[] = {"k1", "k2"};
    struct idem_key held[2];
    struct message msgs[2];
    bool found[2];
    int64_t bytes = 0;
    struct idem_key key = {fx->msg.id, 0, 2000};
    struct json_value *value = NULL;
    const char *user = "alice";
    const struct uuid *sid = &fx->sess.id;
    int64_t deleted = -1;
    struct sweep_candidate cand = {fx->sess.id, "alice"}, *cands = NULL;
    struct session_stats stats;
    size_t ncands = 0;
    bool changed = false;

    change.fields = SET_SESSION_NAME;
    change.session_name = "renamed";
    change.now = 2000;
    switch (op) {
    case FAKE_PING:
        return store_ping(s, ctx, err);
    case FAKE_ENSURE_INDEXES:
        return store_ensure_indexes(s, ctx, err);
    case FAKE_SESSION_INSERT:
        fake_session(&fresh, &fx->arena, "alice", "s2", 1500);
        return store_session_insert(s, ctx, &fresh, err);
    case FAKE_SESSION_GET:
        return store_session_get(s, ctx, "alice", "s1", &out, err);
    case FAKE_SESSION_GET_BY_ID:
        return store_session_get_by_id(s, ctx, "alice", &fx->sess.id, &out,
                                       err);
    case FAKE_SESSION_LIST:
        return store_session_list(s, ctx, "alice", &f, 10, 0, &page, err);
    case FAKE_SESSION_UPDATE:
        return store_session_update(s, ctx, "alice", &fx->sess.id, 1, &change,
                                    &out, err);
    case FAKE_SESSION_DELETE:
        return store_session_delete(s, ctx, "alice", &fx->sess.id, 1, err);
    case FAKE_SESSION_PURGE:
        return store_session_purge(s, ctx, "alice", &fx->sess.id, &deleted,
                                   err);
    case FAKE_SESSION_RESERVE_SEQ:
        return store_session_reserve_seq(s, ctx, user, sid, &one_message, 2000,
                                         &out, err);
    case FAKE_SESSION_TOUCH:
        return store_session_touch(s, ctx, user, sid, &counts, 2000, true, err);
    case FAKE_SESSION_MARK:
        return store_session_mark(s, ctx, user, "s1", 2000, &out, err);
    case FAKE_SESSION_TALLY:
        return store_session_tally(s, ctx, user, sid, STORE_NO_SEQ, &counts,
                                   err);
    case FAKE_SESSION_SET_COUNTS:
        return store_session_set_counts(s, ctx, user, sid, &fx->sess, &counts,
                                        &changed, err);
    case FAKE_SESSION_ADD_METRICS:
        return store_session_add_metrics(s, ctx, user, "s1", 1, 0, 1.5, err);
    case FAKE_SESSION_ADD_USAGE:
        return store_session_add_usage(s, ctx, user, sid, 10, 5, err);
    case FAKE_SESSION_DELETE_UNUSED:
        /* A session that holds no message yet. */
        fake_session(&fresh, &fx->arena, "alice", "s2", 1500);
        return store_session_insert(s, ctx, &fresh, err) &&
               store_session_delete_unused(s, ctx, user, &fresh.id, err);
    case FAKE_MESSAGE_INSERT:
        fake_message(&msg, &fx->arena, &fx->sess, 2, ROLE_ASSISTANT, "two",
                     1500);
        return store_message_insert(s, ctx, &msg, 1, err);
    case FAKE_MESSAGE_DELETE_IDS:
        return store_message_delete_ids(s, ctx, user, &fx->msg.id, 1, err);
    case FAKE_MESSAGE_GET:
        return store_message_get(s, ctx, user, sid, &fx->msg.id, &msg, err);
    case FAKE_MESSAGE_LIST:
        return store_message_list(s, ctx, user, sid, &mf, 10, 0, &mpage, err);
    case FAKE_MESSAGE_UPDATE:
        return store_message_update(s, ctx, user, sid, &fx->msg.id, &mchange,
                                    &msg, err);
    case FAKE_MESSAGE_DELETE:
        return store_message_delete(s, ctx, user, sid, &fx->msg.id, &bytes,
                                    err);
    case FAKE_MESSAGE_CLEAR:
        return store_message_clear(s, ctx, user, sid, STORE_NO_SEQ, &deleted,
                                   err);
    case FAKE_MESSAGE_GET_MANY:
        return store_message_get_many(s, ctx, user, sid, &fx->msg.id, 1, msgs,
                                      found, err);
    case FAKE_IDEM_CLAIM_MANY:
        key.seq = 0;
        return store_idem_claim_many(s, ctx, user, sid, keys, &key, 1, found,
                                     err);
    case FAKE_IDEM_COMPLETE_MANY:
        return store_idem_complete_many(s, ctx, user, sid, keys, &fx->msg.id,
                                        &fx->idem.seq, 1, err);
    case FAKE_IDEM_GET_MANY:
        return store_idem_get_many(s, ctx, user, sid, keys, 2, held, found,
                                   err);
    case FAKE_IDEM_CLAIM:
        return store_idem_claim(s, ctx, user, sid, "k2", &key, err);
    case FAKE_IDEM_GET:
        return store_idem_get(s, ctx, user, sid, "k1", &key, err);
    case FAKE_IDEM_REPLACE:
        uuid_generate(&key.message_id);
        return store_idem_replace(s, ctx, user, sid, "k1", &fx->msg.id, &key,
                                  err);
    case FAKE_IDEM_COMPLETE:
        return store_idem_complete(s, ctx, user, sid, "k1", &fx->msg.id, 1,
                                   err);
    case FAKE_IDEM_RELEASE:
        return store_idem_release(s, ctx, user, sid, "k1", &fx->msg.id, err);
    case FAKE_MEMORY_LIST:
        return store_memory_list(s, ctx, user, sid, NULL, 10, &value, err);
    case FAKE_MEMORY_GET:
        return store_memory_get(s, ctx, user, sid, "m1", &value, err);
    case FAKE_MEMORY_PUT:
        value = json_new_bool(&fx->arena, true);
        return store_memory_put(s, ctx, user, sid, "m1", value, 2000, false,
                                err);
    case FAKE_MEMORY_DELETE:
        return store_memory_delete(s, ctx, user, sid, "m1", err);
    case FAKE_SWEEP_CANDIDATES:
        return store_sweep_candidates(s, ctx, SWEEP_AGE, 5000, 10, &cands,
                                      &ncands, err);
    case FAKE_SWEEP_EXPIRE_ONE:
        return store_sweep_expire_one(s, ctx, &cand, 5000, 2000, &changed, err);
    case FAKE_SWEEP_DELETE_ONE:
        return store_sweep_delete_one(s, ctx, SWEEP_AGE, &cand, 5000, &changed,
                                      err);
    case FAKE_SESSION_STATS:
        return store_session_stats(s, ctx, user, &stats, err);
    case FAKE_USER_DELETE_BATCH:
        return store_user_delete_batch(s, ctx, STORE_MESSAGES, user, 10,
                                       &deleted, err);
    case FAKE_TOMBSTONE_PUT:
        return store_tombstone_put(s, ctx, user, sid, 2000, err);
    case FAKE_TOMBSTONE_DELETE:
        return store_tombstone_delete(s, ctx, user, sid, err);
    case FAKE_TOMBSTONE_LIST:
        return store_tombstone_list(s, ctx, 5000, 10, &cands, &ncands, err);
    case FAKE_USER_COUNT:
        return store_user_count(s, ctx, user, 1, 10, 2000, err);
    case FAKE_USER_GET:
        return store_user_get(s, ctx, user, &ucount, err);
    case FAKE_USER_SET_COUNT:
        return store_user_set_count(s, ctx, user, &ucount, 1, &changed, err);
    case FAKE_DIRTY_LIST:
        return store_dirty_list(s, ctx, STORE_SESSIONS, 5000, 10, &cands,
                                &ncands, err);
    case FAKE_MESSAGE_GET_ITEM:
        return store_message_get_item(s, ctx, user, sid, "rs_1", &msg, err);
    case FAKE_OP_COUNT:
        break;
    }
    ck_abort_msg("no wrapper for op %d", (int)op);
    return false;
}

#define WRAPPED_OP(name, NAME) FAKE_##NAME,
static const enum fake_op wrapped[] = {STORE_OPERATIONS(WRAPPED_OP)};
#undef WRAPPED_OP
#define NWRAPPED ((int)(sizeof(wrapped) / sizeof(wrapped[0])))

/* store.h's list: what a second run would change is retried only on
 * RETRY_SAFE. */
static bool
is_idempotent(enum fake_op op)
{
    switch (op) {
    case FAKE_SESSION_UPDATE:
    case FAKE_SESSION_DELETE:
    case FAKE_SESSION_RESERVE_SEQ:
    case FAKE_SESSION_TOUCH:
    case FAKE_SESSION_ADD_METRICS:
    case FAKE_SESSION_ADD_USAGE:
    case FAKE_MESSAGE_DELETE:
    case FAKE_MEMORY_DELETE:
    case FAKE_IDEM_REPLACE:
    case FAKE_USER_COUNT:
        return false;
    default:
        return true;
    }
}

START_TEST(test_wrapper_retries_safe)
{
    struct fixture fx;
    enum fake_op op = wrapped[_i];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_store_fail(fx.store, op, 2, ERR_UNAVAILABLE, RETRY_SAFE, false);
    ck_assert_msg(call_op(&fx, op, &err), "op %d: %s", (int)op, err.message);
    ck_assert_int_eq(op_calls(&fx, op), 3);
    ck_assert_int_eq(fx.ctx.stats.attempts, 3);
    ck_assert_int_eq(fx.clock.nsleeps, 2);
    ck_assert_int_eq(fx.clock.sleeps[0], 10);
    ck_assert_int_eq(fx.clock.sleeps[1], 20);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_wrapper_gives_up_after_three)
{
    struct fixture fx;
    enum fake_op op = wrapped[_i];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_store_fail(fx.store, op, 5, ERR_INTERNAL, RETRY_SAFE, false);
    ck_assert(!call_op(&fx, op, &err));
    ck_assert_int_eq(op_calls(&fx, op), 3);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "fake"));
    fixture_release(&fx);
}
END_TEST

START_TEST(test_wrapper_idempotent_class)
{
    struct fixture fx;
    enum fake_op op = wrapped[_i];
    struct error err = ERROR_INIT;
    bool ok;

    fixture_init(&fx);
    fake_store_fail(fx.store, op, 1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT, false);
    ok = call_op(&fx, op, &err);
    if (is_idempotent(op)) {
        ck_assert_msg(ok, "op %d: %s", (int)op, err.message);
        ck_assert_int_eq(op_calls(&fx, op), 2);
    } else {
        ck_assert(!ok);
        ck_assert_int_eq(op_calls(&fx, op), 1);
        ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
        ck_assert_int_eq(err.retry, RETRY_IDEMPOTENT);
        ck_assert_int_eq(fx.clock.nsleeps, 0);
    }
    fixture_release(&fx);
}
END_TEST

START_TEST(test_wrapper_never_not_retried)
{
    struct fixture fx;
    enum fake_op op = wrapped[_i];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_store_fail(fx.store, op, 1, ERR_INTERNAL, RETRY_NEVER, false);
    ck_assert(!call_op(&fx, op, &err));
    ck_assert_int_eq(op_calls(&fx, op), 1);
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_assert_int_eq(fx.clock.nsleeps, 0);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_wrapper_respects_deadline)
{
    struct fixture fx;
    enum fake_op op = wrapped[_i];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fx.ctx.deadline_ms = fx.clock.now;
    ck_assert(!call_op(&fx, op, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(op_calls(&fx, op), 0);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_insert_duplicate_of_another_stays)
{
    struct fixture fx;
    struct session other;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    /* Same user and session_id as the fixture's session, another id. */
    fake_session(&other, &fx.arena, "alice", "s1", 3000);
    ck_assert(!store_session_insert(fx.store, &fx.ctx, &other, &err));
    ck_assert_int_eq(err.code, ERR_DUPLICATE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_INSERT), 2);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_GET_BY_ID), 1);
    ck_assert_uint_eq(fake_store_count(fx.store), 1);
    /* Another user may have the name. */
    fake_session(&other, &fx.arena, "bob", "s1", 3000);
    ck_assert(store_session_insert(fx.store, &fx.ctx, &other, &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 2);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_insert_duplicate_of_itself_is_success)
{
    struct fixture fx;
    struct session mine, got;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_session(&mine, &fx.arena, "alice", "s2", 3000);
    /* The first try writes the document but its reply is lost. */
    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert_msg(store_session_insert(fx.store, &fx.ctx, &mine, &err), "%s",
                  err.message);
    ck_assert_int_eq(err.code, ERR_NONE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_INSERT), 3);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_GET_BY_ID), 1);
    ck_assert_int_eq(fx.ctx.stats.attempts, 3); /* 2 inserts + lookup */
    ck_assert_int_eq(fx.ctx.stats.slept_ms, 10);
    ck_assert_uint_eq(fake_store_count(fx.store), 2);
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s2", &got, &err));
    ck_assert(uuid_equal(&got.id, &mine.id));
    fixture_release(&fx);
}
END_TEST

START_TEST(test_insert_lookup_failure_is_not_conflict)
{
    struct fixture fx;
    struct session mine;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_session(&mine, &fx.arena, "alice", "s2", 3000);
    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    fake_store_fail(fx.store, FAKE_SESSION_GET_BY_ID, 3, ERR_UNAVAILABLE,
                    RETRY_SAFE, false);
    ck_assert(!store_session_insert(fx.store, &fx.ctx, &mine, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_GET_BY_ID), 3);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_update_lost_reply_not_retried)
{
    struct fixture fx;
    struct session got;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    /* The update ran but its reply was lost: retrying would answer "not
     * found" (the version moved on), so the wrapper must not. */
    fake_store_fail(fx.store, FAKE_SESSION_UPDATE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!call_op(&fx, FAKE_SESSION_UPDATE, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_UPDATE), 1);
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &got, &err));
    ck_assert_int_eq(got.version, 2);
    ck_assert_str_eq(got.session_name, "renamed");
    fixture_release(&fx);
}
END_TEST

START_TEST(test_not_found_not_retried)
{
    struct fixture fx;
    struct session got;
    struct error err = ERROR_INIT;
    struct session_change change = {0};

    fixture_init(&fx);
    ck_assert(
        !store_session_get(fx.store, &fx.ctx, "alice", "nope", &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_GET), 1);
    /* Another user's session does not exist for you. */
    ck_assert(!store_session_get(fx.store, &fx.ctx, "bob", "s1", &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    /* Wrong version. */
    change.now = 5;
    ck_assert(!store_session_update(fx.store, &fx.ctx, "alice", &fx.sess.id, 7,
                                    &change, &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_UPDATE), 1);
    ck_assert(!store_session_delete(fx.store, &fx.ctx, "alice", &fx.sess.id, 7,
                                    &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_DELETE), 1);
    ck_assert(store_session_delete(fx.store, &fx.ctx, "alice", &fx.sess.id, -1,
                                   &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_list_through_wrapper)
{
    struct fixture fx;
    struct session s2, s3;
    struct session_page page;
    struct session_filter f = {NULL,
                               -1,
                               -1,
                               NULL,
                               STORE_NO_TIME,
                               STORE_NO_TIME,
                               STORE_NO_TIME,
                               STORE_NO_TIME,
                               SORT_UPDATED_DESC};
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_session(&s2, &fx.arena, "alice", "s2", 3000);
    fake_session(&s3, &fx.arena, "alice", "s3", 2000);
    ck_assert(store_session_insert(fx.store, &fx.ctx, &s2, &err));
    ck_assert(store_session_insert(fx.store, &fx.ctx, &s3, &err));
    fake_store_fail(fx.store, FAKE_SESSION_LIST, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, false);
    ck_assert(
        store_session_list(fx.store, &fx.ctx, "alice", &f, 2, 0, &page, &err));
    ck_assert_int_eq(page.total, 3);
    ck_assert_uint_eq(page.len, 2);
    ck_assert_str_eq(page.items[0].session_id, "s2");
    ck_assert_str_eq(page.items[1].session_id, "s3");
    ck_assert(
        store_session_list(fx.store, &fx.ctx, "alice", &f, 2, 2, &page, &err));
    ck_assert_uint_eq(page.len, 1);
    ck_assert_str_eq(page.items[0].session_id, "s1");
    ck_assert(
        store_session_list(fx.store, &fx.ctx, "bob", &f, 2, 0, &page, &err));
    ck_assert_int_eq(page.total, 0);
    ck_assert_uint_eq(page.len, 0);
    fixture_release(&fx);
}
END_TEST

/* Every backend operation has a wrapper, and the loops above run each
 * one. */
START_TEST(test_every_op_is_wrapped)
{
    for (int op = 0; op < FAKE_OP_COUNT; op++) {
        bool found = false;

        for (int i = 0; i < NWRAPPED && !found; i++)
            found = (int)wrapped[i] == op;
        ck_assert_msg(found, "op %d has no wrapper test", op);
    }
}
END_TEST

/* --- counters ------------------------------------------------------------- */

START_TEST(test_reserve_seq_hands_out_ranges)
{
    const struct store_reserve three = {
        {3, 0, 0}, {INT64_MAX, INT64_MAX, INT64_MAX}, true, NULL};
    struct fixture fx;
    struct session out, got;
    struct session_change change = {0};
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    ck_assert(store_session_reserve_seq(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                        &three, 5000, &out, &err));
    ck_assert_int_eq(out.last_seq, 4); /* 1 by the fixture, then 2..4 */
    ck_assert_int_eq(out.message_count, 4);
    ck_assert_int_eq(out.updated_at, 5000);
    ck_assert_int_eq(out.last_activity_at, 5000);
    ck_assert_int_eq(out.version, 1);
    ck_assert(store_session_reserve_seq(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                        &one_message, 6000, &out, &err));
    ck_assert_int_eq(out.last_seq, 5);
    /* Another user's session does not exist for you. */
    ck_assert(!store_session_reserve_seq(fx.store, &fx.ctx, "bob", &fx.sess.id,
                                         &one_message, 6000, &out, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    /* Nor is an inactive session handed numbers; not-found is final. */
    change.fields = SET_STATUS;
    change.status = STATUS_INACTIVE;
    change.now = 7000;
    ck_assert(store_session_update(fx.store, &fx.ctx, "alice", &fx.sess.id, 1,
                                   &change, &got, &err));
    ck_assert(!store_session_reserve_seq(fx.store, &fx.ctx, "alice",
                                         &fx.sess.id, &one_message, 8000, &out,
                                         &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(op_calls(&fx, FAKE_SESSION_RESERVE_SEQ), 4);
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &got, &err));
    ck_assert_int_eq(got.last_seq, 5);
    ck_assert_int_eq(got.message_count, 5);
    fixture_release(&fx);
}
END_TEST

/* A reservation whose reply was lost has taken its numbers; running it
 * again would take more.  The caller gets a 503 and a gap, never two
 * ranges. */
START_TEST(test_reserve_seq_lost_reply_not_retried)
{
    struct fixture fx;
    struct session out, got;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fake_store_fail(fx.store, FAKE_SESSION_RESERVE_SEQ, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_session_reserve_seq(fx.store, &fx.ctx, "alice",
                                         &fx.sess.id, &one_message, 5000, &out,
                                         &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(op_calls(&fx, FAKE_SESSION_RESERVE_SEQ), 1);
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &got, &err));
    ck_assert_int_eq(got.last_seq, 2);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_touch_and_metrics)
{
    const struct store_counts minus_one = {-1, 0, 0};
    struct fixture fx;
    struct session got;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    ck_assert(store_session_touch(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                  &minus_one, 4000, true, &err));
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &got, &err));
    ck_assert_int_eq(got.message_count, 0);
    ck_assert_int_eq(got.last_seq, 1);
    ck_assert_int_eq(got.last_activity_at, 4000);
    ck_assert_int_eq(got.version, 1);
    ck_assert(!store_session_touch(fx.store, &fx.ctx, "bob", &fx.sess.id,
                                   &minus_one, 4000, true, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(op_calls(&fx, FAKE_SESSION_TOUCH), 2);

    ck_assert(store_session_add_metrics(fx.store, &fx.ctx, "alice", "s1", 1, 1,
                                        2.5, &err));
    ck_assert(store_session_add_metrics(fx.store, &fx.ctx, "alice", "s1", 1, 0,
                                        1.25, &err));
    /* A worker's batch: several requests in one update. */
    ck_assert(store_session_add_metrics(fx.store, &fx.ctx, "alice", "s1", 3, 2,
                                        0.25, &err));
    /* A session that is gone (or another user's) is no error. */
    ck_assert(store_session_add_metrics(fx.store, &fx.ctx, "alice", "gone", 1,
                                        1, 1.0, &err));
    ck_assert(store_session_add_metrics(fx.store, &fx.ctx, "bob", "s1", 1, 1,
                                        1.0, &err));
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &got, &err));
    ck_assert_int_eq(got.request_count, 5);
    ck_assert_int_eq(got.error_count, 3);
    ck_assert(got.total_processing_ms == 4.0);
    ck_assert_int_eq(got.version, 1);

    /* Counting twice would be wrong, so a lost reply is not retried. */
    fake_store_fail(fx.store, FAKE_SESSION_ADD_METRICS, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_session_add_metrics(fx.store, &fx.ctx, "alice", "s1", 1, 0,
                                         1.0, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &got, &err));
    ck_assert_int_eq(got.request_count, 6);
    ck_assert_int_eq(op_calls(&fx, FAKE_SESSION_ADD_METRICS), 6);
    fixture_release(&fx);
}
END_TEST

/* --- message insert ------------------------------------------------------- */

/* Messages seq 2 .. n + 1 of the fixture's session. */
static void
make_batch(struct fixture *fx, struct message *batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fake_message(&batch[i], &fx->arena, &fx->sess, (int64_t)i + 2,
                     ROLE_USER, "batch", 3000);
}

static void
assert_stored(struct fixture *fx, const struct message *batch, size_t n)
{
    struct message got;
    struct error err = ERROR_INIT;

    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(store_message_get(fx->store, &fx->ctx, "alice",
                                        &fx->sess.id, &batch[i].id, &got, &err),
                      "message %zu: %s", i, err.message);
        ck_assert_int_eq(got.seq, batch[i].seq);
    }
}

START_TEST(test_message_insert_continues_after_lost_partial)
{
    struct fixture fx;
    struct message batch[4];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 4);
    /* The first try stores two and its reply is lost: the retry meets
     * batch[0], then batch[1], as duplicates that are our own. */
    fake_store_fail_insert(fx.store, 2, 0, ERR_UNAVAILABLE, RETRY_IDEMPOTENT);
    ck_assert_msg(store_message_insert(fx.store, &fx.ctx, batch, 4, &err), "%s",
                  err.message);
    ck_assert_int_eq(err.code, ERR_NONE);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 4);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 2);
    ck_assert_int_eq(fx.ctx.stats.attempts, 6);
    ck_assert_int_eq(fx.ctx.stats.slept_ms, 10);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 5);
    assert_stored(&fx, batch, 4);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_message_insert_continues_after_reported_partial)
{
    struct fixture fx;
    struct message batch[4];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 4);
    /* The reply says how far it got: the retry starts there. */
    fake_store_fail_insert(fx.store, 3, 3, ERR_UNAVAILABLE, RETRY_SAFE);
    ck_assert(store_message_insert(fx.store, &fx.ctx, batch, 4, &err));
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 2);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 0);
    ck_assert_int_eq(fx.ctx.stats.attempts, 2);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 5);
    assert_stored(&fx, batch, 4);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_message_insert_all_stored_lost_reply)
{
    struct fixture fx;
    struct message batch[3];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 3);
    fake_store_fail(fx.store, FAKE_MESSAGE_INSERT, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(store_message_insert(fx.store, &fx.ctx, batch, 3, &err));
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 4);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 3);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 4);
    assert_stored(&fx, batch, 3);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_message_insert_duplicate_of_another_stays)
{
    struct fixture fx;
    struct message batch[3];
    struct uuid ids[3];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 3);
    batch[1].seq = 1; /* the fixture's message holds seq 1 */
    ck_assert(!store_message_insert(fx.store, &fx.ctx, batch, 3, &err));
    ck_assert_int_eq(err.code, ERR_DUPLICATE);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 1);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 1);
    /* Ordered: the one before the duplicate went in, the one after did
     * not; the caller undoes the batch by its ids. */
    ck_assert_uint_eq(fake_store_message_count(fx.store), 2);
    for (int i = 0; i < 3; i++)
        ids[i] = batch[i].id;
    ck_assert(
        store_message_delete_ids(fx.store, &fx.ctx, "alice", ids, 3, &err));
    ck_assert_uint_eq(fake_store_message_count(fx.store), 1);
    /* Deleting them again is no error. */
    ck_assert(
        store_message_delete_ids(fx.store, &fx.ctx, "alice", ids, 3, &err));
    /* Another user's ids are not touched. */
    ck_assert(store_message_delete_ids(fx.store, &fx.ctx, "bob", &fx.msg.id, 1,
                                       &err));
    ck_assert_uint_eq(fake_store_message_count(fx.store), 1);
    fixture_release(&fx);
}
END_TEST

/* After a lost reply the retry meets a duplicate of another message: it
 * continued past its own, then found the conflict. */
START_TEST(test_message_insert_continuation_then_conflict)
{
    struct fixture fx;
    struct message batch[3];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 3);
    batch[2].seq = 1;
    fake_store_fail_insert(fx.store, 1, 0, ERR_UNAVAILABLE, RETRY_IDEMPOTENT);
    ck_assert(!store_message_insert(fx.store, &fx.ctx, batch, 3, &err));
    ck_assert_int_eq(err.code, ERR_DUPLICATE);
    /* try (stores batch[0]), retry (dup 0, ours), batch[1..] (stores
     * batch[1], dup on batch[2], not ours) */
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 3);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 2);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_message_insert_lookup_failure_is_not_conflict)
{
    struct fixture fx;
    struct message batch[2];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 2);
    fake_store_fail_insert(fx.store, 1, 0, ERR_UNAVAILABLE, RETRY_IDEMPOTENT);
    fake_store_fail(fx.store, FAKE_MESSAGE_GET, 3, ERR_UNAVAILABLE, RETRY_SAFE,
                    false);
    ck_assert(!store_message_insert(fx.store, &fx.ctx, batch, 2, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 3);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 2);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_message_insert_failure_after_partial_not_retried)
{
    struct fixture fx;
    struct message batch[3];
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    make_batch(&fx, batch, 3);
    fake_store_fail_insert(fx.store, 2, 2, ERR_INTERNAL, RETRY_NEVER);
    ck_assert(!store_message_insert(fx.store, &fx.ctx, batch, 3, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 1);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    fixture_release(&fx);
}
END_TEST

/* The continuation is bounded by the request's deadline like any call:
 * the lookup that would start at the deadline is not made. */
START_TEST(test_message_insert_continuation_respects_deadline)
{
    struct fixture fx;
    struct message batch[3];
    struct error err = ERROR_INIT;
    int64_t deadline;

    fixture_init(&fx);
    make_batch(&fx, batch, 3);
    fx.clock.op_ms = 3;
    deadline = fx.clock.now + 16;
    fx.ctx.deadline_ms = deadline;
    /* try at +0 (ends +3), sleep 10, retry at +13 (ends +16): duplicate;
     * the lookup would start at the deadline. */
    fake_store_fail_insert(fx.store, 2, 0, ERR_UNAVAILABLE, RETRY_IDEMPOTENT);
    ck_assert(!store_message_insert(fx.store, &fx.ctx, batch, 3, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 2);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_GET), 0);
    for (int i = 0; i < fake_store_ncalls(fx.store); i++)
        ck_assert_int_lt(fake_store_call_at(fx.store, i), deadline);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_message_insert_empty_batch)
{
    struct fixture fx;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    fx.ctx.deadline_ms = fx.clock.now; /* would fail any call */
    ck_assert(store_message_insert(fx.store, &fx.ctx, NULL, 0, &err));
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_INSERT), 0);
    fixture_release(&fx);
}
END_TEST

/* --- other message operations --------------------------------------------- */

START_TEST(test_message_list_update_delete_clear)
{
    struct fixture fx;
    struct message batch[4], got;
    struct message_page page;
    struct message_filter f = {STORE_NO_SEQ,  STORE_NO_SEQ,  -1,    NULL,
                               STORE_NO_TIME, STORE_NO_TIME, false, false};
    struct message_change change = {
        SET_CONTENT | SET_EXTRA_DATA, "edited", NULL, 6, 9000, STORE_NO_TIME};
    int64_t bytes = 0;
    struct error err = ERROR_INIT;
    int64_t deleted = -1;

    fixture_init(&fx);
    make_batch(&fx, batch, 4);
    batch[1].role = ROLE_ASSISTANT;
    batch[2].content = "Needle in here";
    ck_assert(store_message_insert(fx.store, &fx.ctx, batch, 4, &err));

    ck_assert(store_message_list(fx.store, &fx.ctx, "alice", &fx.sess.id, &f, 2,
                                 1, &page, &err));
    ck_assert_int_eq(page.total, 5);
    ck_assert_uint_eq(page.len, 2);
    ck_assert_int_eq(page.items[0].seq, 2);
    ck_assert_int_eq(page.items[1].seq, 3);
    f.descending = true;
    f.no_total = true;
    f.after_seq = 1;
    f.before_seq = 5;
    ck_assert(store_message_list(fx.store, &fx.ctx, "alice", &fx.sess.id, &f,
                                 10, 0, &page, &err));
    ck_assert_int_eq(page.total, -1);
    ck_assert_uint_eq(page.len, 3);
    ck_assert_int_eq(page.items[0].seq, 4);
    ck_assert_int_eq(page.items[2].seq, 2);
    f = (struct message_filter){STORE_NO_SEQ, STORE_NO_SEQ,  ROLE_ASSISTANT,
                                NULL,         STORE_NO_TIME, STORE_NO_TIME,
                                false,        false};
    ck_assert(store_message_list(fx.store, &fx.ctx, "alice", &fx.sess.id, &f,
                                 10, 0, &page, &err));
    ck_assert_uint_eq(page.len, 1);
    ck_assert_int_eq(page.items[0].seq, 3);
    f.role = -1;
    f.search = "needle";
    ck_assert(store_message_list(fx.store, &fx.ctx, "alice", &fx.sess.id, &f,
                                 10, 0, &page, &err));
    ck_assert_uint_eq(page.len, 1);
    ck_assert_int_eq(page.items[0].seq, 4);
    ck_assert(store_message_list(fx.store, &fx.ctx, "bob", &fx.sess.id, &f, 10,
                                 0, &page, &err));
    ck_assert_int_eq(page.total, 0);

    ck_assert(store_message_update(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                   &batch[0].id, &change, &got, &err));
    ck_assert_str_eq(got.content, "edited");
    ck_assert_ptr_null(got.extra_data);
    ck_assert_int_eq(got.updated_at, 9000);
    ck_assert_int_eq(got.created_at, 3000);
    ck_assert(!store_message_update(fx.store, &fx.ctx, "bob", &fx.sess.id,
                                    &batch[0].id, &change, &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);

    ck_assert(store_message_delete(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                   &batch[0].id, &bytes, &err));
    ck_assert_int_eq(bytes, 6); /* "edited" */
    ck_assert(!store_message_delete(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                    &batch[0].id, &bytes, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(!store_message_get(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                 &batch[0].id, &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_DELETE), 2);

    ck_assert(store_message_clear(fx.store, &fx.ctx, "bob", &fx.sess.id,
                                  STORE_NO_SEQ, &deleted, &err));
    ck_assert_int_eq(deleted, 0);
    /* up to a seq: what came after stays */
    ck_assert(store_message_clear(fx.store, &fx.ctx, "alice", &fx.sess.id, 3,
                                  &deleted, &err));
    ck_assert_int_eq(deleted, 2);
    ck_assert(store_message_clear(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                  STORE_NO_SEQ, &deleted, &err));
    ck_assert_int_eq(deleted, 2);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    fixture_release(&fx);
}
END_TEST

/* A message update sets fixed values, so a lost reply is retried and the
 * caller gets the updated message; a lost delete is not (its repeat
 * would say not found). */
START_TEST(test_message_update_retried_delete_not)
{
    struct fixture fx;
    struct message got;
    struct message_change change = {SET_CONTENT, "again", NULL,
                                    5,           9000,    STORE_NO_TIME};
    struct error err = ERROR_INIT;
    int64_t bytes = 0;

    fixture_init(&fx);
    fake_store_fail(fx.store, FAKE_MESSAGE_UPDATE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(store_message_update(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                   &fx.msg.id, &change, &got, &err));
    ck_assert_str_eq(got.content, "again");
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_UPDATE), 2);

    fake_store_fail(fx.store, FAKE_MESSAGE_DELETE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_message_delete(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                    &fx.msg.id, &bytes, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(op_calls(&fx, FAKE_MESSAGE_DELETE), 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    fixture_release(&fx);
}
END_TEST

/* --- idempotency keys ----------------------------------------------------- */

START_TEST(test_idem_key_lifecycle)
{
    struct fixture fx;
    struct idem_key mine = {{{0}}, 0, 5000}, got;
    struct idem_key taker = {{{0}}, 0, 6000};
    const struct uuid *sid;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    sid = &fx.sess.id;
    uuid_generate(&mine.message_id);
    uuid_generate(&taker.message_id);
    ck_assert(
        store_idem_claim(fx.store, &fx.ctx, "alice", sid, "k2", &mine, &err));
    ck_assert(
        !store_idem_claim(fx.store, &fx.ctx, "alice", sid, "k2", &taker, &err));
    ck_assert_int_eq(err.code, ERR_DUPLICATE);
    ck_assert_int_eq(op_calls(&fx, FAKE_IDEM_CLAIM), 2);
    /* The same key of another user or session is another key. */
    ck_assert(
        store_idem_claim(fx.store, &fx.ctx, "bob", sid, "k2", &taker, &err));
    ck_assert(
        !store_idem_get(fx.store, &fx.ctx, "carol", sid, "k2", &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);

    ck_assert(
        store_idem_get(fx.store, &fx.ctx, "alice", sid, "k2", &got, &err));
    ck_assert(uuid_equal(&got.message_id, &mine.message_id));
    ck_assert_int_eq(got.seq, 0);
    ck_assert_int_eq(got.created_at, 5000);

    /* Taking over is conditional on the id the taker saw. */
    ck_assert(!store_idem_replace(fx.store, &fx.ctx, "alice", sid, "k2",
                                  &taker.message_id, &taker, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(store_idem_replace(fx.store, &fx.ctx, "alice", sid, "k2",
                                 &mine.message_id, &taker, &err));
    ck_assert(
        store_idem_get(fx.store, &fx.ctx, "alice", sid, "k2", &got, &err));
    ck_assert(uuid_equal(&got.message_id, &taker.message_id));
    ck_assert_int_eq(got.created_at, 6000);

    /* The old writer can neither complete nor release it now. */
    ck_assert(!store_idem_complete(fx.store, &fx.ctx, "alice", sid, "k2",
                                   &mine.message_id, 7, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(store_idem_release(fx.store, &fx.ctx, "alice", sid, "k2",
                                 &mine.message_id, &err));
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 3);

    ck_assert(store_idem_complete(fx.store, &fx.ctx, "alice", sid, "k2",
                                  &taker.message_id, 7, &err));
    ck_assert(
        store_idem_get(fx.store, &fx.ctx, "alice", sid, "k2", &got, &err));
    ck_assert_int_eq(got.seq, 7);
    ck_assert(store_idem_release(fx.store, &fx.ctx, "alice", sid, "k2",
                                 &taker.message_id, &err));
    ck_assert(
        !store_idem_get(fx.store, &fx.ctx, "alice", sid, "k2", &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(store_idem_release(fx.store, &fx.ctx, "alice", sid, "k2",
                                 &taker.message_id, &err));
    fixture_release(&fx);
}
END_TEST

/* A claim whose reply was lost is retried and meets itself as a
 * duplicate; the caller tells that from another writer's claim by the
 * stored message id. */
START_TEST(test_idem_claim_lost_reply)
{
    struct fixture fx;
    struct idem_key mine = {{{0}}, 0, 5000}, got;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    uuid_generate(&mine.message_id);
    fake_store_fail(fx.store, FAKE_IDEM_CLAIM, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_idem_claim(fx.store, &fx.ctx, "alice", &fx.sess.id, "k2",
                                &mine, &err));
    ck_assert_int_eq(err.code, ERR_DUPLICATE);
    ck_assert_int_eq(op_calls(&fx, FAKE_IDEM_CLAIM), 2);
    ck_assert(store_idem_get(fx.store, &fx.ctx, "alice", &fx.sess.id, "k2",
                             &got, &err));
    ck_assert(uuid_equal(&got.message_id, &mine.message_id));

    /* A lost replace is not retried: its repeat would not match. */
    fake_store_fail(fx.store, FAKE_IDEM_REPLACE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_idem_replace(fx.store, &fx.ctx, "alice", &fx.sess.id, "k1",
                                  &fx.msg.id, &mine, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(op_calls(&fx, FAKE_IDEM_REPLACE), 1);
    /* A lost complete is: setting the seq twice is setting it once. */
    fake_store_fail(fx.store, FAKE_IDEM_COMPLETE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(store_idem_complete(fx.store, &fx.ctx, "alice", &fx.sess.id, "k1",
                                  &mine.message_id, 4, &err));
    ck_assert_int_eq(op_calls(&fx, FAKE_IDEM_COMPLETE), 2);
    fixture_release(&fx);
}
END_TEST

/* --- memory --------------------------------------------------------------- */

START_TEST(test_memory_put_get_list_delete)
{
    struct fixture fx;
    struct json_value *v = NULL, *obj = NULL;
    struct json_value *arr;
    const struct uuid *sid;
    struct error err = ERROR_INIT;

    fixture_init(&fx);
    sid = &fx.sess.id;
    arr = json_new_array(&fx.arena, 1);
    json_array_push(&fx.arena, arr, json_new_string(&fx.arena, "x", 1));
    ck_assert(store_memory_put(fx.store, &fx.ctx, "alice", sid, "b", arr, 2000,
                               true, &err));
    ck_assert(store_memory_put(fx.store, &fx.ctx, "alice", sid, "A", NULL, 2000,
                               true, &err));
    /* a new key is an insert, a set one an update */
    ck_assert(!store_memory_put(fx.store, &fx.ctx, "alice", sid, "m1",
                                json_new_int(&fx.arena, 2), 2000, true, &err));
    ck_assert_int_eq(err.code, ERR_DUPLICATE);
    ck_assert(!store_memory_put(fx.store, &fx.ctx, "alice", sid, "zz",
                                json_new_int(&fx.arena, 2), 2000, false, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(store_memory_put(fx.store, &fx.ctx, "alice", sid, "m1",
                               json_new_int(&fx.arena, 2), 2000, false, &err));
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 3);

    ck_assert(
        store_memory_get(fx.store, &fx.ctx, "alice", sid, "m1", &v, &err));
    ck_assert_int_eq(v->type, JSON_INT);
    ck_assert_int_eq(v->u.i, 2);
    ck_assert(store_memory_get(fx.store, &fx.ctx, "alice", sid, "A", &v, &err));
    ck_assert_int_eq(v->type, JSON_NULL);
    ck_assert(!store_memory_get(fx.store, &fx.ctx, "bob", sid, "m1", &v, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(
        !store_memory_get(fx.store, &fx.ctx, "alice", sid, "zz", &v, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);

    /* Sorted by key, bytewise. */
    ck_assert(store_memory_list(fx.store, &fx.ctx, "alice", sid, NULL, 10, &obj,
                                &err));
    ck_assert_int_eq(obj->type, JSON_OBJECT);
    ck_assert_uint_eq(obj->u.o.len, 3);
    ck_assert_str_eq(obj->u.o.members[0].key, "A");
    ck_assert_str_eq(obj->u.o.members[1].key, "b");
    ck_assert_str_eq(obj->u.o.members[2].key, "m1");
    ck_assert_int_eq(obj->u.o.members[1].value->type, JSON_ARRAY);
    /* a page: after a key, up to a limit */
    ck_assert(
        store_memory_list(fx.store, &fx.ctx, "alice", sid, "A", 1, &obj, &err));
    ck_assert_uint_eq(obj->u.o.len, 1);
    ck_assert_str_eq(obj->u.o.members[0].key, "b");
    ck_assert(
        store_memory_list(fx.store, &fx.ctx, "bob", sid, NULL, 10, &obj, &err));
    ck_assert_uint_eq(obj->u.o.len, 0);

    ck_assert(store_memory_delete(fx.store, &fx.ctx, "alice", sid, "b", &err));
    ck_assert(!store_memory_delete(fx.store, &fx.ctx, "alice", sid, "b", &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(!store_memory_delete(fx.store, &fx.ctx, "bob", sid, "m1", &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 2);

    /* A lost put is retried (it sets the same value); a lost delete is
     * not (its repeat would say not found). */
    fake_store_fail(fx.store, FAKE_MEMORY_PUT, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(store_memory_put(fx.store, &fx.ctx, "alice", sid, "m1",
                               json_new_bool(&fx.arena, true), 3000, false,
                               &err));
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 2);
    fake_store_fail(fx.store, FAKE_MEMORY_DELETE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_memory_delete(fx.store, &fx.ctx, "alice", sid, "A", &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 1);
    /* a lost insert of a new key is not retried either: its repeat would
     * find the key and say duplicate */
    fake_store_fail(fx.store, FAKE_MEMORY_PUT, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert(!store_memory_put(fx.store, &fx.ctx, "alice", sid, "c",
                                json_new_bool(&fx.arena, true), 3000, true,
                                &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 2);
    fixture_release(&fx);
}
END_TEST

/* --- purge ---------------------------------------------------------------- */

START_TEST(test_purge_takes_messages_keys_and_memory)
{
    struct fixture fx;
    struct session other;
    struct message theirs;
    struct idem_key k = {{{0}}, 0, 1000};
    struct error err = ERROR_INIT;
    int64_t deleted = -1;

    fixture_init(&fx);
    fake_session(&other, &fx.arena, "alice", "s9", 1000);
    ck_assert(store_session_insert(fx.store, &fx.ctx, &other, &err));
    fake_message(&theirs, &fx.arena, &other, 1, ROLE_USER, "kept", 1000);
    ck_assert(store_message_insert(fx.store, &fx.ctx, &theirs, 1, &err));
    k.message_id = theirs.id;
    ck_assert(store_idem_claim(fx.store, &fx.ctx, "alice", &other.id, "k1", &k,
                               &err));
    ck_assert(store_memory_put(fx.store, &fx.ctx, "alice", &other.id, "m1",
                               NULL, 1000, true, &err));

    ck_assert(store_session_purge(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                  &deleted, &err));
    ck_assert_int_eq(deleted, 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 1);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 1);
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 1);
    ck_assert(store_session_purge(fx.store, &fx.ctx, "alice", &fx.sess.id,
                                  &deleted, &err));
    ck_assert_int_eq(deleted, 0);
    fixture_release(&fx);
}
END_TEST

START_TEST(test_store_free_null)
{
    store_free(NULL);
}
END_TEST

Suite *
retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("retry_loop");
    TCase *ts = tcase_create("store");

    tcase_add_test(tc, test_first_try_succeeds);
    tcase_add_test(tc, test_safe_retried_with_cap_sleeps);
    tcase_add_test(tc, test_zero_jitter_still_asks_for_the_caps);
    tcase_add_test(tc, test_caps_double_up_to_max);
    tcase_add_test(tc, test_half_jitter_within_cap);
    tcase_add_test(tc, test_exhausted_becomes_unavailable);
    tcase_add_test(tc, test_one_attempt_policy);
    tcase_add_loop_test(tc, test_never_is_not_retried, 0,
                        2 * (int)(sizeof(never) / sizeof(never[0])));
    tcase_add_test(tc, test_idempotent_class_needs_idempotent_op);
    tcase_add_test(tc, test_deadline_passed_before_first_try);
    tcase_add_test(tc, test_sleep_that_would_cross_deadline_is_not_taken);
    tcase_add_test(tc, test_sleep_ending_at_deadline_is_not_taken);
    tcase_add_test(tc, test_slow_try_uses_up_deadline);
    tcase_add_test(tc, test_retry_that_may_outlive_deadline_is_not_started);
    tcase_add_test(tc, test_store_try_fits);
    tcase_add_test(tc, test_no_try_after_overshooting_sleep);
    tcase_add_test(tc, test_deadline_never_crossed);
    tcase_add_test(tc, test_backoff_cap_no_overflow);
    tcase_add_test(tc, test_stats_and_err_may_be_null);
    tcase_add_test(tc, test_retries_total_accumulates);
    tcase_add_test(tc, test_policy_init_from_config);
    suite_add_tcase(s, tc);

    tcase_add_loop_test(ts, test_wrapper_retries_safe, 0, NWRAPPED);
    tcase_add_loop_test(ts, test_wrapper_gives_up_after_three, 0, NWRAPPED);
    tcase_add_loop_test(ts, test_wrapper_idempotent_class, 0, NWRAPPED);
    tcase_add_loop_test(ts, test_wrapper_never_not_retried, 0, NWRAPPED);
    tcase_add_loop_test(ts, test_wrapper_respects_deadline, 0, NWRAPPED);
    tcase_add_test(ts, test_insert_duplicate_of_another_stays);
    tcase_add_test(ts, test_insert_duplicate_of_itself_is_success);
    tcase_add_test(ts, test_insert_lookup_failure_is_not_conflict);
    tcase_add_test(ts, test_update_lost_reply_not_retried);
    tcase_add_test(ts, test_not_found_not_retried);
    tcase_add_test(ts, test_list_through_wrapper);
    tcase_add_test(ts, test_every_op_is_wrapped);
    tcase_add_test(ts, test_reserve_seq_hands_out_ranges);
    tcase_add_test(ts, test_reserve_seq_lost_reply_not_retried);
    tcase_add_test(ts, test_touch_and_metrics);
    tcase_add_test(ts, test_message_insert_continues_after_lost_partial);
    tcase_add_test(ts, test_message_insert_continues_after_reported_partial);
    tcase_add_test(ts, test_message_insert_all_stored_lost_reply);
    tcase_add_test(ts, test_message_insert_duplicate_of_another_stays);
    tcase_add_test(ts, test_message_insert_continuation_then_conflict);
    tcase_add_test(ts, test_message_insert_lookup_failure_is_not_conflict);
    tcase_add_test(ts, test_message_insert_failure_after_partial_not_retried);
    tcase_add_test(ts, test_message_insert_continuation_respects_deadline);
    tcase_add_test(ts, test_message_insert_empty_batch);
    tcase_add_test(ts, test_message_list_update_delete_clear);
    tcase_add_test(ts, test_message_update_retried_delete_not);
    tcase_add_test(ts, test_idem_key_lifecycle);
    tcase_add_test(ts, test_idem_claim_lost_reply);
    tcase_add_test(ts, test_memory_put_get_list_delete);
    tcase_add_test(ts, test_purge_takes_messages_keys_and_memory);
    tcase_add_test(ts, test_store_free_null);
    suite_add_tcase(s, ts);
    return s;
}

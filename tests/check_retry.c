/*
 * check_retry.c - retry_run() with a fake clock, and the store_*()
 * wrappers over a failing fake store.
 */
#include <limits.h>
#include <string.h>

#include "config.h"
#include "fake_store.h"
#include "retry.h"
#include "store.h"
#include "suites.h"

/* --- retry_run() with a scripted operation -------------------------------- */

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

START_TEST(test_first_try_succeeds)
{
    struct fake_clock c = {0};
    struct retry_policy p;
    struct script s = {0, ERR_UNAVAILABLE, RETRY_SAFE, 0, NULL, {0}};
    struct retry_stats st = {99, 99, 5};
    struct error err = ERROR_INIT;

    fake_clock_policy(&p, &c, 3, 10, 1000);
    ck_assert(retry_run(&p, 1000, true, script_op, &s, &st, &err));
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
    ck_assert(retry_run(&p, 100000, false, script_op, &s, &st, &err));
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
    ck_assert(retry_run(&p, 100000, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 1000000, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 1000000, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 100000, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 100000, true, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.nsleeps, 0);
    ck_assert_int_eq(c.nrandoms, 0);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "store says no"));
}
END_TEST

/* Errors retry_run() must hand back at once, whatever idempotent says. */
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
    ck_assert(!retry_run(&p, 100000, _i % 2 == 0, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 100000, false, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.nsleeps, 0);
    /* Not retryable for this op, so handed back as the store said it. */
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(err.retry, RETRY_IDEMPOTENT);
    ck_assert_str_eq(err.message, "store says no");

    s.calls = 0;
    ck_assert(!retry_run(&p, 100000, true, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(err.message, "store says no"));

    s.calls = 0;
    s.fail_times = 1;
    ck_assert(retry_run(&p, 100000, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 1000, true, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 0);
    ck_assert_int_eq(st.attempts, 0);
    ck_assert_int_eq(st.slept_ms, 0);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);

    ck_assert(!retry_run(&p, 999, true, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 0);
    ck_assert(retry_run(&p, 1001, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 150, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 100, true, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(c.nsleeps, 0);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);

    /* One ms more and the sleep fits. */
    c = (struct fake_clock){.random = FAKE_RANDOM_CAP};
    s.calls = 0;
    ck_assert(!retry_run(&p, 101, true, script_op, &s, &st, &err));
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
    ck_assert(!retry_run(&p, 150, true, script_op, &s, &st, &err));
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(s.call_at[2], 120);
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
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
    ck_assert(!retry_run(&p, 120, true, script_op, &s, &st, &err));
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
        ck_assert(!retry_run(&p, deadline, true, script_op, &s, &st, &err));
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
    ck_assert(retry_run(&p, 100000, true, script_op, &s, NULL, NULL));
    ck_assert_int_eq(s.calls, 2);
    s.calls = 0;
    s.fail_times = -1;
    ck_assert(!retry_run(&p, 100000, true, script_op, &s, NULL, NULL));
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
    ck_assert(retry_run(&p, 100000, true, script_op, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 2);
    ck_assert_int_eq(st.slept_ms, 10);
    s.calls = 0;
    ck_assert(retry_run(&p, 100000, true, script_op, &s, &st, &err));
    ck_assert_int_eq(st.attempts, 2);
    ck_assert_int_eq(st.slept_ms, 10);
    ck_assert_int_eq(st.retries_total, 2);
    s.calls = 0;
    s.fail_times = 0;
    ck_assert(retry_run(&p, 100000, true, script_op, &s, &st, &err));
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
    struct session sess; /* inserted by setup_store() */
};

static void
fixture_init(struct fixture *fx)
{
    struct error err = ERROR_INIT;

    memset(fx, 0, sizeof(*fx));
    fx->clock.random = FAKE_RANDOM_CAP;
    fake_clock_policy(&fx->policy, &fx->clock, 3, 10, 100);
    arena_init(&fx->arena, 0);
    fx->store = fake_store_new(&fx->policy, &fx->clock);
    fx->ctx.arena = &fx->arena;
    fx->ctx.deadline_ms = 100000;
    fake_session(&fx->sess, &fx->arena, "alice", "s1", 1000);
    ck_assert(store_session_insert(fx->store, &fx->ctx, &fx->sess, &err));
}

static void
fixture_release(struct fixture *fx)
{
    store_free(fx->store);
    arena_release(&fx->arena);
}

/* Calls of op since fixture_init(), whose own insert is not counted. */
static int
op_calls(const struct fixture *fx, enum fake_op op)
{
    return fake_store_calls(fx->store, op) - (op == FAKE_INSERT);
}

/* Runs one wrapper against the session in fx; the FAKE_* op it uses is
 * op (FAKE_INSERT inserts a new session "s2").  Returns the wrapper's
 * result. */
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
    int64_t deleted = -1;

    change.fields = SET_SESSION_NAME;
    change.session_name = "renamed";
    change.now = 2000;
    switch (op) {
    case FAKE_PING:
        return store_ping(s, ctx, err);
    case FAKE_ENSURE_INDEXES:
        return store_ensure_indexes(s, ctx, err);
    case FAKE_INSERT:
        fake_session(&fresh, &fx->arena, "alice", "s2", 1500);
        return store_session_insert(s, ctx, &fresh, err);
    case FAKE_GET:
        return store_session_get(s, ctx, "alice", "s1", &out, err);
    case FAKE_GET_BY_ID:
        break; /* no wrapper of its own */
    case FAKE_LIST:
        return store_session_list(s, ctx, "alice", &f, 10, 0, &page, err);
    case FAKE_UPDATE:
        return store_session_update(s, ctx, "alice", &fx->sess.id, 1, &change,
                                    &out, err);
    case FAKE_DELETE:
        return store_session_delete(s, ctx, "alice", &fx->sess.id, 1, err);
    case FAKE_PURGE:
        return store_session_purge(s, ctx, "alice", &fx->sess.id, &deleted,
                                   err);
    case FAKE_OP_COUNT:
        break;
    }
    ck_abort_msg("no wrapper for op %d", (int)op);
    return false;
}

static const enum fake_op wrapped[] = {
    FAKE_PING, FAKE_ENSURE_INDEXES, FAKE_INSERT, FAKE_GET,
    FAKE_LIST, FAKE_UPDATE,         FAKE_DELETE, FAKE_PURGE,
};
#define NWRAPPED ((int)(sizeof(wrapped) / sizeof(wrapped[0])))

static bool
is_idempotent(enum fake_op op)
{
    return op != FAKE_UPDATE && op != FAKE_DELETE;
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
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_INSERT), 2);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_GET_BY_ID), 1);
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
    fake_store_fail(fx.store, FAKE_INSERT, 1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT,
                    true);
    ck_assert_msg(store_session_insert(fx.store, &fx.ctx, &mine, &err), "%s",
                  err.message);
    ck_assert_int_eq(err.code, ERR_NONE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_INSERT), 3);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_GET_BY_ID), 1);
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
    fake_store_fail(fx.store, FAKE_INSERT, 1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT,
                    true);
    fake_store_fail(fx.store, FAKE_GET_BY_ID, 3, ERR_UNAVAILABLE, RETRY_SAFE,
                    false);
    ck_assert(!store_session_insert(fx.store, &fx.ctx, &mine, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_GET_BY_ID), 3);
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
    fake_store_fail(fx.store, FAKE_UPDATE, 1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT,
                    true);
    ck_assert(!call_op(&fx, FAKE_UPDATE, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_UPDATE), 1);
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
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_GET), 1);
    /* Another user's session does not exist for you. */
    ck_assert(!store_session_get(fx.store, &fx.ctx, "bob", "s1", &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    /* Wrong version. */
    change.now = 5;
    ck_assert(!store_session_update(fx.store, &fx.ctx, "alice", &fx.sess.id, 7,
                                    &change, &got, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_UPDATE), 1);
    ck_assert(!store_session_delete(fx.store, &fx.ctx, "alice", &fx.sess.id, 7,
                                    &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_DELETE), 1);
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
    fake_store_fail(fx.store, FAKE_LIST, 1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT,
                    false);
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

START_TEST(test_store_free_null)
{
    store_free(NULL);
}
END_TEST

Suite *
retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("retry_run");
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
    tcase_add_test(ts, test_store_free_null);
    suite_add_tcase(s, ts);
    return s;
}

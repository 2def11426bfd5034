/*
 * check_sweeper.c - the sweeper's rules through the store interface, on
 * the fake store, at times the test chooses: each rule, each rule off,
 * the boundaries, batching and its cap, a failing store, two sweeps
 * interleaved over one store, the tombstones a session delete leaves
 * when it is cut short, and the host lock.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "fake_store.h"
#include "service_session.h"
#include "suites.h"
#include "sweeper.h"

/* Wall-clock "now" of every pass here: a fixed day, so times are exact. */
#define NOW INT64_C(1800000000000)
#define SEC INT64_C(1000)

static struct arena arena;
static struct config cfg;
static struct store *store;

static void
setup(void)
{
    struct error err = ERROR_INIT;

    arena_init(&arena, 0);
    unsetenv("PARLEY_LISTEN");
    unsetenv("PARLEY_SWEEPER_LOCK_FILE");
    setenv("PARLEY_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    /* Every rule off unless a test turns it on. */
    cfg.idle_timeout = 0;
    cfg.max_inactive_time = 0;
    cfg.max_session_age = 0;
    store = fake_store_new(NULL, NULL);
}

static void
teardown(void)
{
    store_free(store);
    config_release(&cfg);
    arena_release(&arena);
    unsetenv("PARLEY_JWT_SECRET");
}

/* A stored session of user with the given status and times, `messages`
 * messages, one memory entry and one idempotency key.  Returns its id. */
static struct uuid
add(const char *user, const char *sid, enum session_status status,
    int64_t created, int64_t updated, int64_t activity, int messages)
{
    struct error err = ERROR_INIT;
    struct session s;
    struct json_value *v = json_new_int(&arena, 1);
    struct idem_key k;

    fake_session(&s, &arena, user, sid, created);
    s.status = status;
    s.updated_at = updated;
    s.last_activity_at = activity;
    s.message_count = messages;
    s.last_seq = messages;
    ck_assert(store->backend->session_insert(store, &s, &err));
    for (int i = 1; i <= messages; i++) {
        struct message m;
        size_t n = 0;

        fake_message(&m, &arena, &s, i, ROLE_USER, "hello", created);
        ck_assert(store->backend->message_insert(store, &m, 1, &n, &err));
    }
    ck_assert(store->backend->memory_put(store, user, &s.id, "k", v, created,
                                         true, &err));
    memset(&k, 0, sizeof(k));
    uuid_generate(&k.message_id);
    k.seq = 1;
    ck_assert(store->backend->idem_claim(store, user, &s.id, "key", &k, &err));
    return s.id;
}

/* The stored session, or false when it is gone. */
static bool
get(const char *user, const char *sid, struct session *out)
{
    struct error err = ERROR_INIT;

    return store->backend->session_get(store, &arena, user, sid, out, &err);
}

static struct sweep_counts
pass(int64_t now)
{
    struct error err = ERROR_INIT;
    struct sweep_counts c;

    ck_assert_msg(sweeper_run(&cfg, store, now, &c, &err), "sweep: %s",
                  err.message);
    return c;
}

#define ck_counts(c, e, ds, dm)                                                \
    do {                                                                       \
        ck_assert_int_eq((c).expired, (e));                                    \
        ck_assert_int_eq((c).deleted_sessions, (ds));                          \
        ck_assert_int_eq((c).deleted_messages, (dm));                          \
    } while (0)

/* ---- idle_timeout ------------------------------------------------------ */

START_TEST(idle_expires_active_sessions_past_the_timeout)
{
    const int64_t cut = NOW - 1800 * SEC;
    struct session s;
    struct sweep_counts c;

    cfg.idle_timeout = 1800;
    add("u", "idle", STATUS_ACTIVE, cut - 5000, cut - 10, cut - 1, 2);
    add("u", "edge", STATUS_ACTIVE, cut - 5000, cut - 10, cut, 2);
    add("u", "fresh", STATUS_ACTIVE, cut - 5000, cut - 10, NOW, 2);
    add("u", "inactive", STATUS_INACTIVE, cut - 5000, cut - 10, cut - 1, 2);
    c = pass(NOW);
    ck_counts(c, 1, 0, 0);

    ck_assert(get("u", "idle", &s));
    ck_assert_int_eq(s.status, STATUS_EXPIRED);
    ck_assert_int_eq(s.version, 2);                /* a status change */
    ck_assert_int_eq(s.updated_at, NOW);           /* ... made now */
    ck_assert_int_eq(s.last_activity_at, cut - 1); /* not activity */
    ck_assert_int_eq(s.message_count, 2);          /* nothing deleted */
    /* last_activity_at == now - timeout is not "longer than" it */
    ck_assert(get("u", "edge", &s));
    ck_assert_int_eq(s.status, STATUS_ACTIVE);
    ck_assert_int_eq(s.version, 1);
    ck_assert(get("u", "fresh", &s));
    ck_assert_int_eq(s.status, STATUS_ACTIVE);
    ck_assert(get("u", "inactive", &s));
    ck_assert_int_eq(s.status, STATUS_INACTIVE);
    ck_assert_uint_eq(fake_store_count(store), 4);
    ck_assert_uint_eq(fake_store_message_count(store), 8);

    /* A second pass finds nothing more to do. */
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert(get("u", "idle", &s));
    ck_assert_int_eq(s.version, 2);
}
END_TEST

START_TEST(idle_off_with_zero)
{
    struct session s;
    struct sweep_counts c;

    add("u", "ancient", STATUS_ACTIVE, 0, 0, 0, 1);
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert(get("u", "ancient", &s));
    ck_assert_int_eq(s.status, STATUS_ACTIVE);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_CANDIDATES), 0);
}
END_TEST

/* ---- max_inactive_time ------------------------------------------------- */

START_TEST(inactive_deletes_untouched_sessions_that_are_not_active)
{
    const int64_t cut = NOW - 86400 * SEC;
    const enum session_status gone[] = {STATUS_INACTIVE, STATUS_COMPLETED,
                                        STATUS_FAILED, STATUS_EXPIRED};
    struct session s;
    struct sweep_counts c;

    cfg.max_inactive_time = 86400;
    for (size_t i = 0; i < 4; i++)
        add("u", status_name(gone[i]), gone[i], cut - 100, cut - 1, cut - 1,
            (int)i + 1);
    /* each of these misses one condition by a millisecond */
    add("u", "updated-edge", STATUS_INACTIVE, cut - 100, cut, cut - 1, 3);
    add("u", "activity-edge", STATUS_INACTIVE, cut - 100, cut - 1, cut, 3);
    add("u", "active", STATUS_ACTIVE, cut - 100, cut - 1, cut - 1, 3);
    add("other", "inactive", STATUS_INACTIVE, cut - 100, NOW, NOW, 3);
    c = pass(NOW);
    ck_counts(c, 0, 4, 1 + 2 + 3 + 4);

    for (size_t i = 0; i < 4; i++)
        ck_assert(!get("u", status_name(gone[i]), &s));
    ck_assert(get("u", "updated-edge", &s));
    ck_assert(get("u", "activity-edge", &s));
    ck_assert(get("u", "active", &s));
    ck_assert(get("other", "inactive", &s));
    /* Deleting took the messages, memory and keys of those four only. */
    ck_assert_uint_eq(fake_store_message_count(store), 4 * 3);
    ck_assert_uint_eq(fake_store_memory_count(store), 4);
    ck_assert_uint_eq(fake_store_idem_count(store), 4);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_PURGE), 4);
}
END_TEST

START_TEST(inactive_off_with_zero)
{
    struct sweep_counts c;

    add("u", "old", STATUS_COMPLETED, 0, 0, 0, 1);
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert_uint_eq(fake_store_count(store), 1);
}
END_TEST

/* ---- max_session_age --------------------------------------------------- */

START_TEST(age_deletes_old_sessions_whatever_their_status)
{
    const int64_t cut = NOW - 604800 * SEC;
    struct session s;
    struct sweep_counts c;

    cfg.max_session_age = 604800;
    add("u", "old-active", STATUS_ACTIVE, cut - 1, NOW, NOW, 2);
    add("u", "old-failed", STATUS_FAILED, cut - 1, NOW, NOW, 1);
    add("u", "edge", STATUS_ACTIVE, cut, NOW, NOW, 5);
    add("v", "young", STATUS_INACTIVE, cut + 1, 0, 0, 5);
    c = pass(NOW);
    ck_counts(c, 0, 2, 3);
    ck_assert(!get("u", "old-active", &s));
    ck_assert(!get("u", "old-failed", &s));
    ck_assert(get("u", "edge", &s));
    ck_assert(get("v", "young", &s));
    ck_assert_uint_eq(fake_store_message_count(store), 10);
    ck_assert_uint_eq(fake_store_memory_count(store), 2);
    ck_assert_uint_eq(fake_store_idem_count(store), 2);
}
END_TEST

START_TEST(age_off_with_zero)
{
    struct sweep_counts c;

    add("u", "old", STATUS_ACTIVE, 0, NOW, NOW, 1);
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert_uint_eq(fake_store_count(store), 1);
}
END_TEST

/* A session several rules would take is deleted, not first expired. */
START_TEST(deleting_rules_go_first)
{
    struct sweep_counts c;

    cfg.idle_timeout = 10;
    cfg.max_session_age = 100;
    cfg.max_inactive_time = 50;
    add("u", "old-idle", STATUS_ACTIVE, NOW - 200 * SEC, NOW - 200 * SEC,
        NOW - 200 * SEC, 1);
    add("u", "idle", STATUS_ACTIVE, NOW - 20 * SEC, NOW - 20 * SEC,
        NOW - 20 * SEC, 1);
    c = pass(NOW);
    ck_counts(c, 1, 1, 1);
    /* Expired just now: updated_at is fresh, so the inactive rule waits
     * max_inactive_time from the expiry. */
    c = pass(NOW + 49 * SEC);
    ck_counts(c, 0, 0, 0);
    c = pass(NOW + 51 * SEC);
    ck_counts(c, 0, 1, 1);
    ck_assert_uint_eq(fake_store_count(store), 0);
}
END_TEST

/* ---- batches ----------------------------------------------------------- */

START_TEST(batches_until_one_comes_back_short)
{
    struct sweep_counts c;
    char sid[32];

    cfg.idle_timeout = 10;
    for (int i = 0; i < 2 * SWEEPER_BATCH + 50; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        add("u", sid, STATUS_ACTIVE, 0, 0, 0, 0);
    }
    c = pass(NOW);
    ck_counts(c, 2 * SWEEPER_BATCH + 50, 0, 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_CANDIDATES), 3);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_EXPIRE_ONE),
                     2 * SWEEPER_BATCH + 50);
}
END_TEST

START_TEST(full_last_batch_takes_one_more_query)
{
    struct sweep_counts c;
    char sid[32];

    cfg.max_inactive_time = 10;
    for (int i = 0; i < 2 * SWEEPER_BATCH; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        add("u", sid, STATUS_INACTIVE, 0, 0, 0, 1);
    }
    c = pass(NOW);
    ck_counts(c, 0, 2 * SWEEPER_BATCH, 2 * SWEEPER_BATCH);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_CANDIDATES), 3);
    ck_assert_uint_eq(fake_store_count(store), 0);
    ck_assert_uint_eq(fake_store_message_count(store), 0);
}
END_TEST

START_TEST(cap_leaves_the_rest_for_the_next_pass)
{
    const struct sweep_limits lim = {2, 3, NULL, 0};
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    char sid[32];

    cfg.max_session_age = 10;
    for (int i = 0; i < 10; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        add("u", sid, STATUS_ACTIVE, 0, NOW, NOW, 1);
    }
    ck_assert(sweeper_run_limits(&cfg, store, NOW, &lim, &c, &err));
    ck_counts(c, 0, 6, 6);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_CANDIDATES), 3);
    ck_assert(sweeper_run_limits(&cfg, store, NOW, &lim, &c, &err));
    ck_counts(c, 0, 4, 4);
    ck_assert_uint_eq(fake_store_count(store), 0);
}
END_TEST

START_TEST(stop_flag_stops_between_sessions)
{
    volatile sig_atomic_t stop = 1;
    const struct sweep_limits lim = {SWEEPER_BATCH, SWEEPER_MAX_BATCHES, &stop,
                                     0};
    struct error err = ERROR_INIT;
    struct sweep_counts c;

    cfg.max_session_age = 10;
    add("u", "old", STATUS_ACTIVE, 0, NOW, NOW, 1);
    ck_assert(sweeper_run_limits(&cfg, store, NOW, &lim, &c, &err));
    ck_counts(c, 0, 0, 0);
    ck_assert_uint_eq(fake_store_count(store), 1);
}
END_TEST

/* The time limit is read on the store's own clock, before each session. */
START_TEST(time_limit_stops_between_sessions)
{
    struct fake_clock clock;
    struct retry_policy policy;
    struct sweep_limits lim = {SWEEPER_BATCH, SWEEPER_MAX_BATCHES, NULL, 0};
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    char sid[32];

    memset(&clock, 0, sizeof(clock));
    clock.now = 1000;
    clock.op_ms = 10; /* each store call takes 10 ms */
    fake_clock_policy(&policy, &clock, 3, 10, 100);
    store_free(store);
    store = fake_store_new(&policy, &clock);
    cfg.max_session_age = 10;
    for (int i = 0; i < 10; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        add("u", sid, STATUS_ACTIVE, 0, NOW, NOW, 1);
    }
    /* add() made 4 calls per session; the pass starts 400 ms later. */
    lim.deadline_ms = clock.now + 105;
    ck_assert(sweeper_run_limits(&cfg, store, NOW, &lim, &c, &err));
    /* the tombstone query and the rule's query (10 ms each), then the
     * user counter's mark, the delete, the count down and the purge
     * (40 ms) per session: two done by +100 ms, the third starts at +100
     * and finishes */
    ck_counts(c, 0, 3, 3);
    ck_assert_uint_eq(fake_store_count(store), 7);
}
END_TEST

START_TEST(bad_limits_refused)
{
    const struct sweep_limits lim = {0, 1, NULL, 0};
    struct error err = ERROR_INIT;
    struct sweep_counts c;

    ck_assert(!sweeper_run_limits(&cfg, store, NOW, &lim, &c, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
}
END_TEST

/* ---- a failing store --------------------------------------------------- */

START_TEST(retryable_failures_are_retried)
{
    struct sweep_counts c;

    cfg.max_session_age = 10;
    add("u", "old", STATUS_ACTIVE, 0, NOW, NOW, 2);
    fake_store_fail(store, FAKE_SWEEP_CANDIDATES, 1, ERR_UNAVAILABLE,
                    RETRY_SAFE, false);
    fake_store_fail(store, FAKE_SWEEP_DELETE_ONE, 1, ERR_UNAVAILABLE,
                    RETRY_SAFE, false);
    c = pass(NOW);
    ck_counts(c, 0, 1, 2);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_CANDIDATES), 2);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_DELETE_ONE), 2);
}
END_TEST

/* A delete whose reply was lost is retried; the retry finds the session
 * gone and reports nothing, so the count errs low, never high. */
START_TEST(lost_reply_never_counts_twice)
{
    struct sweep_counts c;

    cfg.max_session_age = 10;
    add("u", "old", STATUS_ACTIVE, 0, NOW, NOW, 2);
    fake_store_fail(store, FAKE_SWEEP_DELETE_ONE, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert_uint_eq(fake_store_count(store), 0);
    /* ... and its messages stay behind, unreachable (see README). */
    ck_assert_uint_eq(fake_store_message_count(store), 2);
}
END_TEST

START_TEST(failure_stops_the_pass_and_keeps_the_counts)
{
    struct error err = ERROR_INIT;
    struct sweep_counts c;

    cfg.max_session_age = 10;
    add("u", "a", STATUS_ACTIVE, 0, NOW, NOW, 2);
    add("u", "b", STATUS_ACTIVE, 0, NOW, NOW, 2);
    add("u", "c", STATUS_ACTIVE, 0, NOW, NOW, 2);

    /* The query fails for good: nothing done, the error says why. */
    fake_store_fail(store, FAKE_SWEEP_CANDIDATES, 1, ERR_INTERNAL, RETRY_NEVER,
                    false);
    ck_assert(!sweeper_run(&cfg, store, NOW, &c, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_counts(c, 0, 0, 0);
    ck_assert_uint_eq(fake_store_count(store), 3);

    /* The first purge fails for good: its session is gone (and counted),
     * the pass stops there. */
    error_clear(&err);
    fake_store_fail(store, FAKE_SESSION_PURGE, 1, ERR_INTERNAL, RETRY_NEVER,
                    false);
    ck_assert(!sweeper_run(&cfg, store, NOW, &c, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_counts(c, 0, 1, 0);
    ck_assert_uint_eq(fake_store_count(store), 2);
    ck_assert_uint_eq(fake_store_message_count(store), 6);

    /* The next pass carries on with the rest. */
    c = pass(NOW);
    ck_counts(c, 0, 2, 4);
    ck_assert_uint_eq(fake_store_count(store), 0);
}
END_TEST

/* ---- two sweeps at once ------------------------------------------------ */

struct other_sweep {
    struct sweep_counts counts;
    int64_t now;
};

/* Sweep B, run whole in the middle of sweep A. */
static void
run_other(void *arg)
{
    struct other_sweep *b = arg;
    struct error err = ERROR_INIT;

    ck_assert_msg(sweeper_run(&cfg, store, b->now, &b->counts, &err),
                  "sweep B: %s", err.message);
}

START_TEST(interleaved_deletes_add_up)
{
    struct other_sweep b = {{0, 0, 0, 0}, NOW};
    struct sweep_counts a;
    char sid[32];

    cfg.max_inactive_time = 60;
    for (int i = 0; i < 10; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        add("u", sid, STATUS_INACTIVE, 0, 0, 0, 3);
    }
    add("u", "keep", STATUS_INACTIVE, 0, NOW, NOW, 3);
    /* A has its ten candidates and has deleted three when B runs. */
    fake_store_on_call(store, FAKE_SWEEP_DELETE_ONE, 4, run_other, &b);
    a = pass(NOW);
    ck_counts(a, 0, 3, 9);
    ck_counts(b.counts, 0, 7, 21);
    /* Each session deleted and purged once: A's last seven deletes found
     * nothing and purged nothing. */
    ck_assert_int_eq(fake_store_calls(store, FAKE_SWEEP_DELETE_ONE), 10 + 7);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_PURGE), 10);
    ck_assert_uint_eq(fake_store_count(store), 1);
    ck_assert_uint_eq(fake_store_message_count(store), 3);
}
END_TEST

START_TEST(interleaved_expiries_add_up)
{
    struct other_sweep b = {{0, 0, 0, 0}, NOW};
    struct sweep_counts a;
    struct session s;
    char sid[32];

    cfg.idle_timeout = 60;
    for (int i = 0; i < 6; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        add("u", sid, STATUS_ACTIVE, 0, 0, 0, 1);
    }
    fake_store_on_call(store, FAKE_SWEEP_EXPIRE_ONE, 2, run_other, &b);
    a = pass(NOW);
    ck_assert_int_eq(a.expired + b.counts.expired, 6);
    ck_assert_int_eq(a.expired, 1);
    for (int i = 0; i < 6; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        ck_assert(get("u", sid, &s));
        ck_assert_int_eq(s.status, STATUS_EXPIRED);
        ck_assert_int_eq(s.version, 2); /* bumped once, not twice */
    }
}
END_TEST

/* A client touches a candidate between the query and the delete: the
 * delete's filter re-checks the rule, and the session stays. */
static void
touch_it(void *arg)
{
    struct error err = ERROR_INIT;

    struct store_counts none = {0, 0, 0};

    ck_assert(
        store->backend->session_touch(store, "u", arg, &none, NOW, true, &err));
}

START_TEST(touched_candidate_is_kept)
{
    struct uuid id;
    struct session s;
    struct sweep_counts c;

    cfg.max_inactive_time = 60;
    id = add("u", "busy", STATUS_INACTIVE, 0, 0, 0, 1);
    fake_store_on_call(store, FAKE_SWEEP_DELETE_ONE, 1, touch_it, &id);
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert(get("u", "busy", &s));
    ck_assert_uint_eq(fake_store_message_count(store), 1);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_PURGE), 0);
}
END_TEST

/* ---- the lock and the output ------------------------------------------- */

static char lock_dir[64];

static void
lock_setup(void)
{
    setup();
    snprintf(lock_dir, sizeof(lock_dir), "/tmp/parley-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(lock_dir));
    free(cfg.sweeper_lock_file);
    ck_assert_int_ne(asprintf(&cfg.sweeper_lock_file, "%s/lock", lock_dir), -1);
}

static void
lock_teardown(void)
{
    unlink(cfg.sweeper_lock_file);
    rmdir(lock_dir);
    teardown();
}

START_TEST(lock_is_exclusive)
{
    struct error err = ERROR_INIT;
    int a = sweeper_lock(&cfg, &err), b;
    struct stat st;

    ck_assert_int_ge(a, 0);
    ck_assert_int_eq(stat(cfg.sweeper_lock_file, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* A second open file, even in this process, is refused. */
    b = sweeper_lock(&cfg, &err);
    ck_assert_int_eq(b, -1);
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert_str_eq(err.message, "a cleanup is already running");
    sweeper_unlock(a);
    error_clear(&err);
    b = sweeper_lock(&cfg, &err);
    ck_assert_int_ge(b, 0);
    sweeper_unlock(b);
    sweeper_unlock(-1); /* harmless */
}
END_TEST

START_TEST(lock_is_not_a_symlink)
{
    struct error err = ERROR_INIT;
    char target[128];

    snprintf(target, sizeof(target), "%s/target", lock_dir);
    ck_assert_int_eq(symlink(target, cfg.sweeper_lock_file), 0);
    ck_assert_int_eq(sweeper_lock(&cfg, &err), -1);
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_assert_int_eq(access(target, F_OK), -1); /* nothing made there */
}
END_TEST

START_TEST(lock_file_defaults_next_to_the_socket)
{
    struct config c;
    struct error err = ERROR_INIT;

    setenv("PARLEY_LISTEN", "unix:/run/parley-x/parley.sock", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), 0);
    ck_assert_str_eq(c.sweeper_lock_file, "/run/parley-x/parley-sweeper.lock");
    config_release(&c);
    setenv("PARLEY_LISTEN", "127.0.0.1:9000", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), 0);
    ck_assert_str_eq(c.sweeper_lock_file, "/tmp/parley-sweeper.lock");
    config_release(&c);
    setenv("PARLEY_SWEEPER_LOCK_FILE", "/var/lock/p.lock", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), 0);
    ck_assert_str_eq(c.sweeper_lock_file, "/var/lock/p.lock");
    config_release(&c);
    unsetenv("PARLEY_SWEEPER_LOCK_FILE");
    unsetenv("PARLEY_LISTEN");
}
END_TEST

/* ---- tombstones -------------------------------------------------------- */

/* service_session_delete of alice's session sid, over the store. */
static bool
delete_session(const char *sid, struct error *err)
{
    struct service svc = {&cfg, store, NULL};
    struct store_ctx ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.arena = &arena;
    ctx.deadline_ms = INT64_MAX;
    return service_session_delete(&svc, &ctx, "alice", sid, IF_MATCH_ANY, err);
}

START_TEST(delete_cut_short_is_finished_after_the_cutoff)
{
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct session s;
    struct uuid id = add("alice", "d", STATUS_ACTIVE, NOW, NOW, NOW, 3);
    int64_t at = 0, age = sweeper_tombstone_age(&cfg);

    ck_assert_int_eq(age, 60 * SEC); /* request_deadline_ms 4000 */
    /* The document goes, every try of the purge fails: the client is
     * told it is deleted, and the tombstone remembers the rest. */
    fake_store_fail(store, FAKE_SESSION_PURGE, 3, ERR_UNAVAILABLE, RETRY_SAFE,
                    false);
    ck_assert_msg(delete_session("d", &err), "%s", err.message);
    ck_assert(!get("alice", "d", &s));
    ck_assert_uint_eq(fake_store_message_count(store), 3);
    ck_assert(fake_store_tombstone(store, "alice", &id, &at));
    ck_assert_uint_eq(fake_store_tombstone_count(store), 1);

    /* Exactly at the cutoff it is still the request's. */
    c = pass(at + age);
    ck_counts(c, 0, 0, 0);
    ck_assert_uint_eq(fake_store_message_count(store), 3);
    ck_assert_uint_eq(fake_store_tombstone_count(store), 1);

    c = pass(at + age + 1);
    ck_counts(c, 0, 0, 3);
    ck_assert_uint_eq(fake_store_message_count(store), 0);
    ck_assert_uint_eq(fake_store_memory_count(store), 0);
    ck_assert_uint_eq(fake_store_idem_count(store), 0);
    ck_assert_uint_eq(fake_store_tombstone_count(store), 0);
    c = pass(at + age + 1);
    ck_counts(c, 0, 0, 0);
}
END_TEST

START_TEST(delete_cleans_up_its_tombstone)
{
    struct error err = ERROR_INIT;
    struct uuid id = add("alice", "d", STATUS_ACTIVE, NOW, NOW, NOW, 2);

    ck_assert(delete_session("d", &err));
    ck_assert_int_eq(fake_store_calls(store, FAKE_TOMBSTONE_PUT), 1);
    ck_assert_int_eq(fake_store_calls(store, FAKE_TOMBSTONE_DELETE), 1);
    ck_assert(!fake_store_tombstone(store, "alice", &id, NULL));
    ck_assert_uint_eq(fake_store_message_count(store), 0);
}
END_TEST

START_TEST(delete_without_a_tombstone_deletes_nothing)
{
    struct error err = ERROR_INIT;
    struct session s;

    add("alice", "d", STATUS_ACTIVE, NOW, NOW, NOW, 2);
    fake_store_fail(store, FAKE_TOMBSTONE_PUT, 3, ERR_UNAVAILABLE, RETRY_SAFE,
                    false);
    ck_assert(!delete_session("d", &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_DELETE), 0);
    ck_assert(get("alice", "d", &s));
    ck_assert_uint_eq(fake_store_message_count(store), 2);
    ck_assert_uint_eq(fake_store_tombstone_count(store), 0);
}
END_TEST

START_TEST(tombstone_of_a_live_session_is_only_removed)
{
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct session s;
    struct uuid id = add("alice", "live", STATUS_ACTIVE, NOW, NOW, NOW, 3);

    ck_assert(store->backend->tombstone_put(store, "alice", &id,
                                            NOW - 3600 * SEC, &err));
    /* Another user's tombstone on the same UUID purges nothing of
     * alice's (every filter carries the user). */
    ck_assert(store->backend->tombstone_put(store, "bob", &id, NOW - 3600 * SEC,
                                            &err));
    c = pass(NOW);
    ck_counts(c, 0, 0, 0);
    ck_assert(get("alice", "live", &s));
    ck_assert_uint_eq(fake_store_message_count(store), 3);
    ck_assert_uint_eq(fake_store_memory_count(store), 1);
    ck_assert_uint_eq(fake_store_tombstone_count(store), 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_PURGE),
                     1); /* bob's */
}
END_TEST

START_TEST(tombstones_go_in_batches_oldest_first)
{
    const struct sweep_limits lim = {2, 100, NULL, 0};
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct uuid ids[5];
    int64_t n = 0;

    /* Orphans of five deleted sessions, i minutes older than NOW - 6
     * minutes, the youngest stored first. */
    for (int i = 0; i < 5; i++) {
        const char *sid = arena_printf(&arena, "s%d", i);

        ids[i] = add("alice", sid, STATUS_ACTIVE, NOW, NOW, NOW, i + 1);
        ck_assert(store->backend->user_delete_batch(store, STORE_SESSIONS,
                                                    "alice", 1, &n, &err));
        ck_assert(store->backend->tombstone_put(
            store, "alice", &ids[i], NOW - (6 + i) * 60 * SEC, &err));
    }
    /* At NOW - 6 minutes the cutoff is NOW - 7 minutes: the three oldest
     * (8, 9, 10 minutes) are past it, in a full batch and a short one. */
    ck_assert(
        sweeper_run_limits(&cfg, store, NOW - 6 * 60 * SEC, &lim, &c, &err));
    ck_counts(c, 0, 0, 3 + 4 + 5);
    for (int i = 0; i < 5; i++)
        ck_assert(fake_store_tombstone(store, "alice", &ids[i], NULL) ==
                  (i < 2));
    ck_assert_uint_eq(fake_store_message_count(store), 1 + 2);
    ck_assert_int_eq(fake_store_calls(store, FAKE_TOMBSTONE_LIST), 2);
}
END_TEST

START_TEST(failed_purge_keeps_the_tombstone)
{
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct uuid id = add("alice", "gone", STATUS_ACTIVE, NOW, NOW, NOW, 2);
    int64_t n = 0;

    ck_assert(store->backend->user_delete_batch(store, STORE_SESSIONS, "alice",
                                                10, &n, &err));
    ck_assert(store->backend->tombstone_put(store, "alice", &id,
                                            NOW - 3600 * SEC, &err));
    fake_store_fail(store, FAKE_SESSION_PURGE, 3, ERR_UNAVAILABLE, RETRY_SAFE,
                    false);
    ck_assert(!sweeper_run(&cfg, store, NOW, &c, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert(fake_store_tombstone(store, "alice", &id, NULL));
    ck_assert_uint_eq(fake_store_message_count(store), 2);
    c = pass(NOW);
    ck_counts(c, 0, 0, 2);
    ck_assert_uint_eq(fake_store_tombstone_count(store), 0);
}
END_TEST

Suite *
sweeper_suite(void)
{
    Suite *s = suite_create("sweeper");
    TCase *t = tcase_create("rules");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, idle_expires_active_sessions_past_the_timeout);
    tcase_add_test(t, idle_off_with_zero);
    tcase_add_test(t, inactive_deletes_untouched_sessions_that_are_not_active);
    tcase_add_test(t, inactive_off_with_zero);
    tcase_add_test(t, age_deletes_old_sessions_whatever_their_status);
    tcase_add_test(t, age_off_with_zero);
    tcase_add_test(t, deleting_rules_go_first);
    suite_add_tcase(s, t);

    t = tcase_create("batches");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, batches_until_one_comes_back_short);
    tcase_add_test(t, full_last_batch_takes_one_more_query);
    tcase_add_test(t, cap_leaves_the_rest_for_the_next_pass);
    tcase_add_test(t, stop_flag_stops_between_sessions);
    tcase_add_test(t, time_limit_stops_between_sessions);
    tcase_add_test(t, bad_limits_refused);
    suite_add_tcase(s, t);

    t = tcase_create("failures");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, retryable_failures_are_retried);
    tcase_add_test(t, lost_reply_never_counts_twice);
    tcase_add_test(t, failure_stops_the_pass_and_keeps_the_counts);
    suite_add_tcase(s, t);

    t = tcase_create("concurrent");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, interleaved_deletes_add_up);
    tcase_add_test(t, interleaved_expiries_add_up);
    tcase_add_test(t, touched_candidate_is_kept);
    suite_add_tcase(s, t);

    t = tcase_create("tombstones");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, delete_cut_short_is_finished_after_the_cutoff);
    tcase_add_test(t, delete_cleans_up_its_tombstone);
    tcase_add_test(t, delete_without_a_tombstone_deletes_nothing);
    tcase_add_test(t, tombstone_of_a_live_session_is_only_removed);
    tcase_add_test(t, tombstones_go_in_batches_oldest_first);
    tcase_add_test(t, failed_purge_keeps_the_tombstone);
    suite_add_tcase(s, t);

    t = tcase_create("lock");
    tcase_add_checked_fixture(t, lock_setup, lock_teardown);
    tcase_add_test(t, lock_is_exclusive);
    tcase_add_test(t, lock_is_not_a_symlink);
    tcase_add_test(t, lock_file_defaults_next_to_the_socket);
    suite_add_tcase(s, t);
    return s;
}

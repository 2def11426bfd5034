/*
 * check_tally.c - per-session metrics batched per worker: deltas add up
 * per (user, session_id), a flush writes one update per session and
 * empties the table, the table says when it is due, strings outlive the
 * request they came from, a failing database costs one try, and the app
 * counts a request in the tally and writes it when idle, when due, or
 * when released.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "clock.h"
#include "config.h"
#include "fake_store.h"
#include "log.h"
#include "store.h"
#include "suites.h"
#include "tally.h"

static struct arena arena;
static struct store *store;
static struct store_ctx ctx;

static void
setup(void)
{
    struct error err = ERROR_INIT;
    struct session s;

    arena_init(&arena, 0);
    store = fake_store_new(NULL, NULL);
    memset(&ctx, 0, sizeof(ctx));
    ctx.arena = &arena;
    ctx.deadline_ms = clock_mono_ms() + 60000;
    fake_session(&s, &arena, "alice", "s1", 1000);
    ck_assert(store_session_insert(store, &ctx, &s, &err));
    fake_session(&s, &arena, "alice", "s2", 1000);
    ck_assert(store_session_insert(store, &ctx, &s, &err));
    /* Bob's session of the same name: keyed by user too. */
    fake_session(&s, &arena, "bob", "s1", 1000);
    ck_assert(store_session_insert(store, &ctx, &s, &err));
}

static void
teardown(void)
{
    store_free(store);
    arena_release(&arena);
}

static struct session
stored(const char *user, const char *session_id)
{
    struct error err = ERROR_INIT;
    struct session s;

    ck_assert(store_session_get(store, &ctx, user, session_id, &s, &err));
    return s;
}

static int64_t
later(void)
{
    return clock_mono_ms() + 10000;
}

START_TEST(test_tally_adds_up_per_session)
{
    struct tally *t = tally_new();
    struct session s;

    ck_assert(tally_add(t, "alice", "s1", false, 1.5, 0));
    ck_assert(tally_add(t, "alice", "s1", true, 2.25, 1));
    ck_assert(tally_add(t, "alice", "s2", true, 4.0, 2));
    ck_assert(tally_add(t, "bob", "s1", false, 0.5, 3));
    ck_assert(tally_add(t, "alice", "s1", false, 0.25, 4));
    ck_assert_uint_eq(tally_pending(t), 3);

    /* Nothing reaches the store before the flush. */
    ck_assert_int_eq(stored("alice", "s1").request_count, 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 0);

    ck_assert_uint_eq(tally_flush(t, store, later()), 3);
    /* One update per distinct session, not one per request. */
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 3);
    ck_assert_uint_eq(tally_pending(t), 0);
    s = stored("alice", "s1");
    ck_assert_int_eq(s.request_count, 3);
    ck_assert_int_eq(s.error_count, 1);
    ck_assert(s.total_processing_ms == 4.0);
    s = stored("alice", "s2");
    ck_assert_int_eq(s.request_count, 1);
    ck_assert_int_eq(s.error_count, 1);
    ck_assert(s.total_processing_ms == 4.0);
    s = stored("bob", "s1");
    ck_assert_int_eq(s.request_count, 1);
    ck_assert_int_eq(s.error_count, 0);
    ck_assert(s.total_processing_ms == 0.5);

    /* An empty table writes nothing; the next batch starts from zero. */
    ck_assert_uint_eq(tally_flush(t, store, later()), 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 3);
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 5));
    ck_assert_uint_eq(tally_flush(t, store, later()), 1);
    s = stored("alice", "s1");
    ck_assert_int_eq(s.request_count, 4);
    ck_assert_int_eq(s.error_count, 1);
    ck_assert(s.total_processing_ms == 5.0);
    tally_free(t);
}
END_TEST

START_TEST(test_tally_copies_strings)
{
    struct tally *t = tally_new();
    char user[16], sid[16];

    /* The request's arena is reset before the flush: the tally must not
     * keep the caller's pointers. */
    memcpy(user, "alice", 6);
    memcpy(sid, "s2", 3);
    ck_assert(tally_add(t, user, sid, false, 1.0, 0));
    memcpy(user, "mallory", 8);
    memcpy(sid, "zz", 3);
    ck_assert(tally_add(t, user, sid, false, 1.0, 0));
    ck_assert_uint_eq(tally_pending(t), 2);
    ck_assert_uint_eq(tally_flush(t, store, later()), 2);
    ck_assert_int_eq(stored("alice", "s2").request_count, 1);
    ck_assert_int_eq(stored("alice", "s1").request_count, 0);
    tally_free(t);
}
END_TEST

START_TEST(test_tally_wait)
{
    struct tally *t = tally_new();

    ck_assert_int_eq(tally_wait_ms(t, 1000), -1);
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 1000));
    ck_assert_int_eq(tally_wait_ms(t, 1000), TALLY_MAX_AGE_MS);
    /* The age is the oldest delta's: later adds do not move it. */
    ck_assert(tally_add(t, "alice", "s2", false, 1.0, 1060));
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 1070));
    ck_assert_int_eq(tally_wait_ms(t, 1060), TALLY_MAX_AGE_MS - 60);
    ck_assert_int_eq(tally_wait_ms(t, 1000 + TALLY_MAX_AGE_MS - 1), 1);
    ck_assert_int_eq(tally_wait_ms(t, 1000 + TALLY_MAX_AGE_MS), 0);
    ck_assert_int_eq(tally_wait_ms(t, 1000 + 10 * TALLY_MAX_AGE_MS), 0);
    ck_assert_uint_eq(tally_flush(t, store, later()), 2);
    ck_assert_int_eq(tally_wait_ms(t, 5000), -1);
    /* After a flush the clock starts at the next add. */
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 5000));
    ck_assert_int_eq(tally_wait_ms(t, 5000), TALLY_MAX_AGE_MS);
    tally_free(t);
}
END_TEST

START_TEST(test_tally_full)
{
    struct tally *t = tally_new();
    char sid[32];

    for (int i = 0; i < TALLY_MAX_SESSIONS; i++) {
        snprintf(sid, sizeof(sid), "x%d", i);
        ck_assert_int_eq(tally_wait_ms(t, 0), i == 0 ? -1 : TALLY_MAX_AGE_MS);
        ck_assert(tally_add(t, "alice", sid, false, 1.0, 0));
    }
    ck_assert_uint_eq(tally_pending(t), TALLY_MAX_SESSIONS);
    /* Full: due at once, a new session is refused, a known one counts. */
    ck_assert_int_eq(tally_wait_ms(t, 0), 0);
    ck_assert(!tally_add(t, "alice", "s1", false, 1.0, 0));
    ck_assert(tally_add(t, "alice", "x7", false, 1.0, 0));
    ck_assert_uint_eq(tally_pending(t), TALLY_MAX_SESSIONS);
    /* Sessions that do not exist are no error for the store. */
    ck_assert_uint_eq(tally_flush(t, store, later()), TALLY_MAX_SESSIONS);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS),
                     TALLY_MAX_SESSIONS);
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 0));
    ck_assert_uint_eq(tally_pending(t), 1);
    tally_free(t);
}
END_TEST

START_TEST(test_tally_flush_failures)
{
    struct tally *t = tally_new();

    /* A failure that is not an outage costs that session only. */
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 0));
    ck_assert(tally_add(t, "alice", "s2", false, 1.0, 0));
    fake_store_fail(store, FAKE_SESSION_ADD_METRICS, 1, ERR_INTERNAL,
                    RETRY_NEVER, false);
    ck_assert_uint_eq(tally_flush(t, store, later()), 1);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 2);
    ck_assert_int_eq(stored("alice", "s1").request_count, 0);
    ck_assert_int_eq(stored("alice", "s2").request_count, 1);
    ck_assert_uint_eq(tally_pending(t), 0);

    /* An outage: one try, the rest dropped without waiting on it. */
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 0));
    ck_assert(tally_add(t, "alice", "s2", false, 1.0, 0));
    ck_assert(tally_add(t, "bob", "s1", false, 1.0, 0));
    fake_store_fail(store, FAKE_SESSION_ADD_METRICS, 1, ERR_UNAVAILABLE,
                    RETRY_NEVER, false);
    ck_assert_uint_eq(tally_flush(t, store, later()), 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 3);
    ck_assert_uint_eq(tally_pending(t), 0);
    ck_assert_int_eq(stored("alice", "s2").request_count, 1);
    ck_assert_int_eq(stored("bob", "s1").request_count, 0);

    /* A lost reply is not retried: the update may have counted. */
    ck_assert(tally_add(t, "alice", "s2", false, 1.0, 0));
    fake_store_fail(store, FAKE_SESSION_ADD_METRICS, 1, ERR_UNAVAILABLE,
                    RETRY_IDEMPOTENT, true);
    ck_assert_uint_eq(tally_flush(t, store, later()), 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 4);
    ck_assert_int_eq(stored("alice", "s2").request_count, 2);

    /* Past the deadline nothing is tried, and the table still empties. */
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 0));
    ck_assert_uint_eq(tally_flush(t, store, clock_mono_ms() - 1), 0);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 4);
    ck_assert_uint_eq(tally_pending(t), 0);
    tally_free(t);
}
END_TEST

START_TEST(test_tally_free_pending)
{
    struct tally *t = tally_new();

    /* Freeing with deltas pending drops them (and leaks nothing). */
    ck_assert(tally_add(t, "alice", "s1", false, 1.0, 0));
    tally_free(t);
    tally_free(NULL);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 0);
}
END_TEST

/* --- the app's side ------------------------------------------------------ */

static struct config cfg;
static struct app app;
static struct request req;
static struct response resp;

/* What app_handle() leaves for app_after() when a request named
 * alice's session sid and ended with status. */
static void
served(const char *sid, int status)
{
    memset(&req, 0, sizeof(req));
    req.method = HTTP_GET;
    req.method_name = "GET";
    req.path = "/api/agent-sessions/x";
    req.query = "";
    req.arena = &arena;
    req.started_us = clock_mono_us() - 2000; /* served in ~2 ms */
    req.started_ms = req.started_us / 1000;
    resp.status = status;
    app.metrics_user = arena_strdup(&arena, "alice");
    app.metrics_session = arena_strdup(&arena, sid);
    app_after(&app, &req, &resp);
    ck_assert_ptr_null(app.metrics_user);
    ck_assert_ptr_null(app.metrics_session);
}

START_TEST(test_tally_app)
{
    struct error err = ERROR_INIT;
    struct session s;
    int64_t t0;

    setenv("PARLEY_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    app_init(&app, &cfg, store, NULL);
    response_init(&resp);
    log_set_level(LOG_WARN); /* app_after's access lines are noise here */

    t0 = clock_mono_ms();
    served("s1", 200);
    served("s1", 404);
    served("s2", 200);
    ck_assert_uint_eq(tally_pending(app.tally), 2);
    /* Busy and not due yet: nothing written (unless this machine took
     * TALLY_MAX_AGE_MS to get here, when they were due after all). */
    app_flush_metrics(&app, false);
    if (clock_mono_ms() - t0 < TALLY_MAX_AGE_MS)
        ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 0);
    /* Idle: written at once, one update per session. */
    app_flush_metrics(&app, true);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 2);
    ck_assert_uint_eq(tally_pending(app.tally), 0);
    s = stored("alice", "s1");
    ck_assert_int_eq(s.request_count, 2);
    ck_assert_int_eq(s.error_count, 1);
    ck_assert(s.total_processing_ms >= 4.0);
    ck_assert_int_eq(stored("alice", "s2").request_count, 1);

    /* Busy but due: written. */
    served("s1", 200);
    clock_sleep_ms(TALLY_MAX_AGE_MS + 5);
    app_flush_metrics(&app, false);
    ck_assert_int_eq(fake_store_calls(store, FAKE_SESSION_ADD_METRICS), 3);
    ck_assert_int_eq(stored("alice", "s1").request_count, 3);

    /* A request naming no session counts nowhere. */
    app.metrics_user = NULL;
    app.metrics_session = NULL;
    app_after(&app, &req, &resp);
    ck_assert_uint_eq(tally_pending(app.tally), 0);

    /* Released (the worker stopping): what is pending is written. */
    served("s2", 500);
    app_release(&app);
    ck_assert_ptr_null(app.tally);
    s = stored("alice", "s2");
    ck_assert_int_eq(s.request_count, 2);
    ck_assert_int_eq(s.error_count, 1);
    response_release(&resp);
    config_release(&cfg);
    log_set_level(LOG_INFO);
}
END_TEST

Suite *
tally_suite(void)
{
    Suite *s = suite_create("tally");
    TCase *tc = tcase_create("tally");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_tally_adds_up_per_session);
    tcase_add_test(tc, test_tally_copies_strings);
    tcase_add_test(tc, test_tally_wait);
    tcase_add_test(tc, test_tally_full);
    tcase_add_test(tc, test_tally_flush_failures);
    tcase_add_test(tc, test_tally_free_pending);
    tcase_add_test(tc, test_tally_app);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * check_metrics.c - the shared counters and their text: exact series for
 * what was observed, histogram buckets (le inclusive, cumulative), DB
 * errors by kind, no-ops when off, and counts that add up across forked
 * processes (the reason for the shared mapping).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"
#include "suites.h"

static const struct route routes[] = {
    {HTTP_GET, "/a", NULL, 0},
    {HTTP_POST, "/b/{id}", NULL, 0},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static struct buf text;

static void
setup(void)
{
    struct error err = ERROR_INIT;

    buf_init(&text);
    ck_assert_int_eq(metrics_init(NROUTES, &err), 0);
}

static void
teardown(void)
{
    metrics_release();
    buf_release(&text);
}

/* The whole exposition, rendered afresh. */
static const char *
render(void)
{
    buf_reset(&text);
    ck_assert(metrics_render(&text, routes, NROUTES));
    return text.data;
}

/* True if `line` is one whole line of the rendered text. */
static bool
has_line(const char *all, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = all; (p = strstr(p, line)) != NULL; p++)
        if ((p == all || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define ck_line(all, line)                                                     \
    ck_assert_msg(has_line((all), (line)), "missing line: %s\nin:\n%s",        \
                  (line), (all))
#define ck_no_line(all, line)                                                  \
    ck_assert_msg(!has_line((all), (line)), "unexpected line: %s", (line))

START_TEST(test_metrics_off)
{
    metrics_release();
    /* None of these may touch anything. */
    metrics_observe(0, HTTP_GET, 200, 0.1);
    metrics_db(2, ERR_UNAVAILABLE);
    metrics_set_workers(4);
    ck_assert(!metrics_render(&text, routes, NROUTES));
    ck_assert_uint_eq(text.len, 0);
}
END_TEST

START_TEST(test_metrics_requests)
{
    const char *t;

    metrics_observe(0, HTTP_GET, 200, 0.0005);
    metrics_observe(0, HTTP_GET, 200, 0.0005);
    metrics_observe(0, HTTP_HEAD, 200, 0.0005);
    metrics_observe(1, HTTP_POST, 201, 0.003);
    metrics_observe(1, HTTP_POST, 503, 0.003);
    metrics_observe(-1, HTTP_GET, 404, 0.0001);
    metrics_observe(7, HTTP_DELETE, 405, 0.0001); /* past the table */
    metrics_observe(0, HTTP_GET, 299, 0.0001);    /* not listed: its class */
    metrics_observe(0, HTTP_GET, 600, 0.0001);    /* nonsense */
    t = render();
    ck_line(t, "# TYPE parley_http_requests_total counter");
    ck_line(t, "parley_http_requests_total{route=\"/a\",method=\"GET\","
               "status=\"200\"} 2");
    ck_line(t, "parley_http_requests_total{route=\"/a\",method=\"HEAD\","
               "status=\"200\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"/b/{id}\",method=\"POST\","
               "status=\"201\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"/b/{id}\",method=\"POST\","
               "status=\"503\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"unmatched\",method=\"GET\","
               "status=\"404\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"unmatched\","
               "method=\"DELETE\",status=\"405\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"/a\",method=\"GET\","
               "status=\"2xx\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"/a\",method=\"GET\","
               "status=\"other\"} 1");
    /* Nothing is shown for what never happened. */
    ck_assert_ptr_null(strstr(t, "status=\"500\""));
    ck_assert_ptr_null(strstr(t, "route=\"/b/{id}\",method=\"GET\""));
}
END_TEST

START_TEST(test_metrics_histogram)
{
    static const char *const want[] = {
        "0.001\"} 1", "0.0025\"} 2", "0.005\"} 2", "0.01\"} 2", "0.025\"} 2",
        "0.05\"} 2",  "0.1\"} 2",    "0.25\"} 2",  "0.5\"} 2",  "1\"} 2",
        "2.5\"} 2",   "5\"} 2",      "10\"} 2",    "+Inf\"} 3",
    };
    const char *t;
    char line[200];

    metrics_observe(0, HTTP_GET, 200, 0.001); /* le is inclusive */
    metrics_observe(0, HTTP_GET, 404, 0.002);
    metrics_observe(0, HTTP_GET, 200, 20.0); /* beyond the last bound */
    t = render();
    ck_line(t, "# TYPE parley_http_request_duration_seconds histogram");
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(line, sizeof(line),
                 "parley_http_request_duration_seconds_bucket{route=\"/a\","
                 "method=\"GET\",le=\"%s",
                 want[i]);
        ck_line(t, line);
    }
    ck_line(t, "parley_http_request_duration_seconds_sum{route=\"/a\","
               "method=\"GET\"} 20.003000");
    ck_line(t, "parley_http_request_duration_seconds_count{route=\"/a\","
               "method=\"GET\"} 3");
    /* Bad times count as zero rather than corrupting the sum. */
    metrics_observe(1, HTTP_POST, 200, -5.0);
    t = render();
    ck_line(t, "parley_http_request_duration_seconds_bucket{route=\"/b/{id}\","
               "method=\"POST\",le=\"0.001\"} 1");
    ck_line(t, "parley_http_request_duration_seconds_sum{route=\"/b/{id}\","
               "method=\"POST\"} 0.000000");
}
END_TEST

START_TEST(test_metrics_db)
{
    const char *t = render();

    /* Shown from the start, so alerts have a series to watch. */
    ck_line(t, "parley_db_calls_total 0");
    ck_line(t, "parley_db_retries_total 0");
    ck_line(t, "parley_db_errors_total{kind=\"unavailable\"} 0");
    ck_line(t, "parley_db_errors_total{kind=\"internal\"} 0");

    metrics_db(0, ERR_NONE);
    metrics_db(2, ERR_UNAVAILABLE);
    metrics_db(1, ERR_NONE);
    metrics_db(0, ERR_INTERNAL);
    metrics_db(0, ERR_NOT_FOUND); /* an answer, not a database error */
    metrics_db(0, ERR_DUPLICATE);
    metrics_db(-1, ERR_NONE);
    t = render();
    ck_line(t, "# TYPE parley_db_retries_total counter");
    ck_line(t, "parley_db_calls_total 7");
    ck_line(t, "parley_db_retries_total 3");
    ck_line(t, "parley_db_errors_total{kind=\"unavailable\"} 1");
    ck_line(t, "parley_db_errors_total{kind=\"internal\"} 1");
}
END_TEST

START_TEST(test_metrics_process)
{
    long long now = (long long)time(NULL), start;
    const char *t, *p;

    t = render();
    ck_line(t, "# TYPE parley_workers gauge");
    ck_line(t, "parley_workers 0");
    metrics_set_workers(4);
    metrics_set_workers(3);
    t = render();
    ck_line(t, "parley_workers 3");
    ck_line(t, "parley_build_info{version=\"" PACKAGE_VERSION "\"} 1");
    ck_line(t, "# TYPE process_start_time_seconds gauge");
    p = strstr(t, "\nprocess_start_time_seconds ");
    ck_assert_ptr_nonnull(p);
    start = strtoll(p + strlen("\nprocess_start_time_seconds "), NULL, 10);
    ck_assert_int_le(start, now + 1);
    ck_assert_int_ge(start, now - 60);
    /* The format: every line ends with a newline, HELP before TYPE. */
    ck_assert_int_eq(t[strlen(t) - 1], '\n');
    ck_line(t, "# HELP parley_workers Worker processes alive (during a "
               "reload, old and new).");
}
END_TEST

/* The point of the shared mapping: what children count, the parent sees,
 * and so does every other child. */
START_TEST(test_metrics_shared_across_fork)
{
    enum { CHILDREN = 4, EACH = 1000 };
    pid_t pids[CHILDREN];
    const char *t;
    char line[200];

    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] == 0) {
            for (int i = 0; i < EACH; i++) {
                metrics_observe(0, HTTP_GET, 200, 0.0001);
                metrics_db(1, ERR_NONE);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;

        ck_assert_int_eq(waitpid(pids[c], &status, 0), pids[c]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    metrics_observe(0, HTTP_GET, 200, 0.0001);
    t = render();
    snprintf(line, sizeof(line),
             "parley_http_requests_total{route=\"/a\",method=\"GET\","
             "status=\"200\"} %d",
             CHILDREN * EACH + 1);
    ck_line(t, line);
    snprintf(line, sizeof(line),
             "parley_http_request_duration_seconds_count{route=\"/a\","
             "method=\"GET\"} %d",
             CHILDREN * EACH + 1);
    ck_line(t, line);
    snprintf(line, sizeof(line), "parley_db_retries_total %d", CHILDREN * EACH);
    ck_line(t, line);
}
END_TEST

START_TEST(test_metrics_reinit)
{
    struct error err = ERROR_INIT;
    const char *t;

    metrics_observe(0, HTTP_GET, 200, 0.1);
    metrics_db(1, ERR_INTERNAL);
    ck_assert_int_eq(metrics_init(NROUTES, &err), 0);
    t = render();
    ck_assert_ptr_null(strstr(t, "parley_http_requests_total{"));
    ck_line(t, "parley_db_retries_total 0");
    ck_no_line(t, "parley_db_errors_total{kind=\"internal\"} 1");
}
END_TEST

/* --- requests in flight per user ----------------------------------------- */

/* Without a slot (not a worker) or a region there is no limit. */
START_TEST(test_inflight_off)
{
    ck_assert(metrics_inflight_enter("u", 0));
    metrics_inflight_leave();
    metrics_release();
    metrics_worker_slot(0);
    ck_assert(metrics_inflight_enter("u", 0));
    ck_assert_int_eq(metrics_inflight_count("u"), 0);
}
END_TEST

/* Slots stand for workers: each holds one user's request; a user's count
 * is the slots holding it, and the limit counts the entering one. */
START_TEST(test_inflight_counts_and_limits)
{
    metrics_worker_slot(3);
    ck_assert(metrics_inflight_enter("alice", 2));
    metrics_worker_slot(7);
    ck_assert(metrics_inflight_enter("alice", 2));
    ck_assert_int_eq(metrics_inflight_count("alice"), 2);
    ck_assert_int_eq(metrics_inflight_count("bob"), 0);
    /* a third of alice's: refused, and it holds nothing */
    metrics_worker_slot(5);
    ck_assert(!metrics_inflight_enter("alice", 2));
    ck_assert_int_eq(metrics_inflight_count("alice"), 2);
    /* bob is not alice */
    ck_assert(metrics_inflight_enter("bob", 2));
    ck_assert_int_eq(metrics_inflight_count("bob"), 1);
    metrics_inflight_leave();
    ck_assert_int_eq(metrics_inflight_count("bob"), 0);
    /* a higher limit lets it in */
    ck_assert(metrics_inflight_enter("alice", 3));
    ck_assert_int_eq(metrics_inflight_count("alice"), 3);
    metrics_inflight_leave();
    /* names that differ in one byte, or by a prefix, are other users */
    ck_assert_int_eq(metrics_inflight_count("alicf"), 0);
    ck_assert_int_eq(metrics_inflight_count("alic"), 0);
    ck_assert_int_eq(metrics_inflight_count("alice "), 0);
    /* the worker in slot 7 ends its request */
    metrics_worker_slot(7);
    ck_assert_int_eq(metrics_inflight_count("alice"), 1);
}
END_TEST

/* Bulk requests: a second mark on the same slot, its own count and
 * limit, left (and cleared by the supervisor) with the request. */
START_TEST(test_bulk_counts_and_limits)
{
    metrics_worker_slot(1);
    ck_assert(metrics_inflight_enter("zoe", 4));
    ck_assert(metrics_bulk_enter("zoe", 1));
    metrics_worker_slot(2);
    ck_assert(metrics_inflight_enter("zoe", 4));
    ck_assert(!metrics_bulk_enter("zoe", 1));
    ck_assert_int_eq(metrics_bulk_count("zoe"), 1);
    ck_assert_int_eq(metrics_inflight_count("zoe"), 2);
    ck_assert(metrics_bulk_enter("zoe", 2));
    ck_assert_int_eq(metrics_bulk_count("zoe"), 2);
    metrics_inflight_leave();
    ck_assert_int_eq(metrics_bulk_count("zoe"), 1);
    ck_assert_int_eq(metrics_inflight_count("zoe"), 1);
    metrics_worker_gone(1);
    ck_assert_int_eq(metrics_bulk_count("zoe"), 0);
    ck_assert_int_eq(metrics_inflight_count("zoe"), 0);
}
END_TEST

/* Conversation turns count in a table of their own: a user at its limit
 * of turns still gets its ordinary requests served, and the other way
 * round. */
START_TEST(test_conversation_turns_apart)
{
    metrics_worker_slot(1);
    ck_assert(metrics_conversation_enter("yan", 1));
    metrics_worker_slot(2);
    ck_assert(!metrics_conversation_enter("yan", 1));
    ck_assert(metrics_inflight_enter("yan", 1));
    ck_assert_int_eq(metrics_conversation_count("yan"), 1);
    ck_assert_int_eq(metrics_inflight_count("yan"), 1);
    metrics_inflight_leave();
    metrics_worker_gone(1);
    ck_assert_int_eq(metrics_conversation_count("yan"), 0);
}
END_TEST

static const char *
count_event_line(const char *t, const char *name)
{
    const char *p = strstr(t, name);

    ck_assert_msg(p != NULL, "no %s in:\n%s", name, t);
    return p;
}

/* A worker killed while it serves a user's request leaves its slot
 * holding that user; the supervisor's metrics_worker_gone() after the
 * reap is what frees it (a new worker would clear it too, but a retired
 * generation's slot may stay empty for long). */
START_TEST(test_inflight_dead_worker_does_not_leak)
{
    int status;
    int fds[2];
    char c;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        metrics_worker_slot(9);
        if (!metrics_inflight_enter("carol", 1))
            _exit(2);
        (void)write(fds[1], "x", 1);
        for (;;)
            pause(); /* killed mid-request */
    }
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    ck_assert_int_eq(metrics_inflight_count("carol"), 1);
    /* another worker of the host sees carol at her limit */
    metrics_worker_slot(2);
    ck_assert(!metrics_inflight_enter("carol", 1));
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    /* still held until the supervisor says the worker is gone */
    ck_assert_int_eq(metrics_inflight_count("carol"), 1);
    metrics_worker_gone(9);
    ck_assert_int_eq(metrics_inflight_count("carol"), 0);
    ck_assert(metrics_inflight_enter("carol", 1));
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* Many workers racing for one user's slots never hold more than the
 * limit at once. */
START_TEST(test_inflight_race_never_exceeds)
{
    enum { WORKERS = 8, ROUNDS = 3000, LIMIT = 2 };
    pid_t pids[WORKERS];
    int over = 0;

    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        ck_assert_int_ge(pids[w], 0);
        if (pids[w] == 0) {
            int bad = 0;

            metrics_worker_slot(w);
            for (int i = 0; i < ROUNDS; i++) {
                if (!metrics_inflight_enter("dave", LIMIT))
                    continue;
                if (metrics_inflight_count("dave") > LIMIT)
                    bad = 1;
                metrics_inflight_leave();
            }
            _exit(bad);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        int status;

        ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
        ck_assert(WIFEXITED(status));
        over += WEXITSTATUS(status);
    }
    ck_assert_int_eq(over, 0);
    ck_assert_int_eq(metrics_inflight_count("dave"), 0);
}
END_TEST

START_TEST(test_events_rendered)
{
    const char *t;

    metrics_count(METRICS_INFLIGHT_REJECTED);
    metrics_count(METRICS_INFLIGHT_REJECTED);
    metrics_count(METRICS_BULK_REJECTED);
    metrics_count(METRICS_QUEUE_EXPIRED);
    metrics_count(METRICS_GONE_QUEUED);
    metrics_count(METRICS_GONE_SERVING);
    metrics_count(METRICS_GONE_SERVING);
    metrics_count(METRICS_GONE_SERVING);
    metrics_count(METRICS_EXPORT_TRUNCATED);
    metrics_count(METRICS_RECYCLED_RSS);
    metrics_observe(0, HTTP_GET, 499, 0.1);
    t = render();
    ck_line(t, "parley_user_inflight_rejected_total{kind=\"all\"} 2");
    ck_line(t, "parley_user_inflight_rejected_total{kind=\"bulk\"} 1");
    ck_line(t, "parley_queue_expired_total 1");
    ck_line(t, "parley_client_gone_total{when=\"queued\"} 1");
    ck_line(t, "parley_client_gone_total{when=\"serving\"} 3");
    ck_line(t, "parley_export_truncated_total 1");
    ck_line(t, "parley_worker_recycled_total{reason=\"rss\"} 1");
    ck_line(t, "parley_http_requests_total{route=\"/a\",method=\"GET\","
               "status=\"499\"} 1");
    (void)count_event_line(t, "# TYPE parley_user_inflight_rejected_total "
                              "counter");
}
END_TEST

Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *t = tcase_create("metrics");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_metrics_off);
    tcase_add_test(t, test_metrics_requests);
    tcase_add_test(t, test_metrics_histogram);
    tcase_add_test(t, test_metrics_db);
    tcase_add_test(t, test_metrics_process);
    tcase_add_test(t, test_metrics_shared_across_fork);
    tcase_add_test(t, test_metrics_reinit);
    tcase_add_test(t, test_inflight_off);
    tcase_add_test(t, test_inflight_counts_and_limits);
    tcase_add_test(t, test_bulk_counts_and_limits);
    tcase_add_test(t, test_conversation_turns_apart);
    tcase_add_test(t, test_inflight_dead_worker_does_not_leak);
    tcase_add_test(t, test_inflight_race_never_exceeds);
    tcase_add_test(t, test_events_rendered);
    suite_add_tcase(s, t);
    return s;
}

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "app.h"
#include "arena.h"
#include "clock.h"
#include "fcgi.h"
#include "log.h"
#include "metrics.h"
#include "rng.h"
#include "store_mongo.h"
#include "tally.h"
#include "worker.h"
#include "banned.h"

static volatile sig_atomic_t worker_stop = 0;

static void
worker_on_stop(int sig)
{
    (void)sig;
    worker_stop = 1;
}

/* SIGTERM and SIGINT stay blocked except while the worker sleeps in
 * fcgi_accept(), which unblocks them atomically (ppoll); *idle_mask gets
 * that "while idle" mask. */
static void
worker_signals(sigset_t *idle_mask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL); /* the supervisor's signal */
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_SETMASK, &block, NULL);
    sigemptyset(idle_mask);
}

int64_t
worker_rss_bytes(void)
{
    /* Opened once and read again with pread: one system call a time. */
    static int fd = -1;
    char text[128];
    long long size, resident;
    ssize_t n;

    if (fd < 0)
        fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = pread(fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    if (sscanf(text, "%lld %lld", &size, &resident) != 2)
        return -1;
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

/* A response body larger than this is not kept for the next request: one
 * large answer must not keep its memory for the worker's whole life. */
#define WORKER_KEEP_BODY_BYTES (1024 * 1024)

/* The most this process has had resident, in bytes (getrusage: one
 * system call, no parsing).  A forked worker starts from its own size at
 * the fork, not the supervisor's history. */
static int64_t
worker_peak_rss_bytes(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (int64_t)ru.ru_maxrss * 1024;
}

/* After each request: whether this worker's resident memory has grown
 * past worker_max_rss_mb, at any moment (its peak), so it must be
 * replaced, as php-fpm's pm.max_requests replaces a worker, but by size.
 * The peak rather than the size now: memory that malloc keeps, fragments,
 * library caches and a request's own spike all count, and a worker that
 * once needed that much is replaced by one that starts small. */
static bool
worker_too_big(const struct config *cfg, int64_t limit)
{
    int64_t peak;

    if (limit <= 0)
        return false;
    peak = worker_peak_rss_bytes();
    if (peak < 0 || peak <= limit)
        return false;
    log_warn("worker RSS reached %lld MiB (%lld MiB now), past "
             "worker_max_rss_mb (%d): replacing this worker",
             (long long)(peak >> 20), (long long)(worker_rss_bytes() >> 20),
             cfg->worker_max_rss_mb);
    metrics_count(METRICS_RECYCLED_RSS);
    return true;
}

/* The ceiling in bytes, or 0 for none.  A ceiling that leaves a fresh
 * worker (before its first request) less than 2 MiB would replace
 * workers after nearly every request: it is refused (logged) instead. */
static int64_t
worker_rss_limit(const struct config *cfg)
{
    int64_t limit = (int64_t)cfg->worker_max_rss_mb << 20;
    int64_t base = worker_peak_rss_bytes();

    if (limit > 0 && base >= 0 && base + (2 << 20) > limit) {
        log_error("worker_max_rss_mb (%d) leaves less than 2 MiB above a "
                  "fresh worker's %lld MiB: ignored",
                  cfg->worker_max_rss_mb, (long long)(base >> 20));
        return 0;
    }
    return limit;
}

int
worker_main(const struct config *cfg, int listen_fd,
            const atomic_bool *indexes_ready)
{
    pid_t parent = getppid();
    struct error err = ERROR_INIT;
    struct store *store = NULL;
    struct fcgi_conn *conn = NULL;
    struct arena arena;
    struct request req;
    struct response resp;
    struct app app;
    sigset_t idle_mask;
    int64_t rss_limit;
    bool recycle = false;
    int status = 1;

    worker_signals(&idle_mask);
    /* If the supervisor dies (even by SIGKILL), drain and go rather than
     * serve on unsupervised. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        return 0;
    rng_seed();

    store = store_mongo_new(cfg, &err);
    if (store == NULL) {
        log_error("database: %s", err.message);
        goto done;
    }
    conn = fcgi_conn_new(listen_fd, cfg->request_deadline_ms);
    arena_init(&arena, 64 * 1024);
    response_init(&resp);
    app_init(&app, cfg, store, indexes_ready);
    rss_limit = worker_rss_limit(cfg);

    while (!worker_stop && !recycle) {
        /* Per-session metrics not yet written (tally.h) bound the sleep. */
        int rc = fcgi_accept(conn, &idle_mask,
                             tally_wait_ms(app.tally, clock_mono_ms()));

        if (rc < 0)
            break;
        if (rc == 0) {
            /* A signal (the loop condition decides), the metrics' time
             * limit, or a connection another worker took: idle anyway. */
            app_flush_metrics(&app, true);
            continue;
        }
        fcgi_read_request(conn, cfg, &arena, &req);
        req.started_us = clock_mono_us();
        req.started_ms = req.started_us / 1000;
        fcgi_sink(conn, &req, &resp.sink);
        app_handle(&app, &req, &resp);
        fcgi_send(conn, &req, &resp);
        fcgi_finish(conn);
        app_after(&app, &req, &resp);
        log_set_request(NULL);
        response_reset(&resp);
        if (resp.body.cap > WORKER_KEEP_BODY_BYTES) {
            buf_release(&resp.body);
            buf_init(&resp.body);
        }
        arena_reset(&arena);
        recycle = worker_too_big(cfg, rss_limit);
        /* The metrics are written when they are due (the oldest pending
         * count TALLY_MAX_AGE_MS old, or a full table), here or when
         * fcgi_accept() times out on an idle worker: not after every
         * request of a client that sends one at a time, which cost a
         * database write per request, a third of a GET's CPU. */
        if (tally_pending(app.tally) > 0)
            app_flush_metrics(&app, false);
    }
    status = worker_stop ? 0 : recycle ? WORKER_EXIT_RECYCLE : 1;
    /* Drains the pending metrics: SIGTERM loses none. */
    app_release(&app);
    response_release(&resp);
    arena_release(&arena);
done:
    fcgi_conn_free(conn);
    if (store != NULL)
        store_free(store);
    return status;
}

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "app.h"
#include "arena.h"
#include "clock.h"
#include "fcgi.h"
#include "log.h"
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

/* True if a connection is queued on the listening socket right now.  A
 * worker that sees none is about to go idle. */
static bool
worker_conn_waiting(int listen_fd)
{
    struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};

    return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
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
    conn = fcgi_conn_new(listen_fd);
    arena_init(&arena, 64 * 1024);
    response_init(&resp);
    app_init(&app, cfg, store, indexes_ready);

    while (!worker_stop) {
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
        arena_reset(&arena);
        /* A busy worker (another connection already queued) writes the
         * metrics in batches, when they are due; one about to go idle
         * writes them now, so a client sending one request at a time
         * sees them counted on its next request. */
        if (tally_pending(app.tally) > 0)
            app_flush_metrics(&app, !worker_conn_waiting(listen_fd));
    }
    status = worker_stop ? 0 : 1;
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

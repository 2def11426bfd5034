#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "api.h"
#include "clock.h"
#include "fcgi.h"
#include "llm.h"
#include "log.h"
#include "metrics.h"
#include "rng.h"
#include "store.h"
#include "store_mongo.h"
#include "supervisor.h"
#include "sweeper.h"
#include "worker.h"
#include "banned.h"

#define MAX_CHILDREN   1024
#define QUICK_DEATH_MS 2000
#define RESPAWN_MIN_MS 100
#define RESPAWN_MAX_MS 10000
/* The first sweep comes this soon after start (or after one interval, if
 * shorter), so hosts restarted more often than cleanup_interval still
 * sweep. */
#define SWEEP_FIRST_MS 60000
/* A sweeper child still running after its interval (at least a minute, at
 * most ten) is stuck, not busy: each pass is capped (sweeper.h). */
#define SWEEP_MIN_RUN_MS 60000
#define SWEEP_MAX_RUN_MS 600000
/* An indexer child that failed (it only stops when the indexes are made)
 * is started again this much later. */
#define INDEXER_RESPAWN_MS 1000
/* supervisor_ensure_indexes(): the pause between two rounds, short when
 * the database was unreachable (the next round's server selection waits
 * for it anyway), growing up to the longer one when it answered with an
 * error (a wrong password, an index of the same name with other keys),
 * so as not to hammer it. */
#define INDEXES_PAUSE_MS     250
#define INDEXES_MAX_PAUSE_MS 5000

/* A child's index in the table is its slot in metrics.h's in-flight
 * table. */
_Static_assert(MAX_CHILDREN <= METRICS_WORKER_SLOTS,
               "every child needs a slot in the in-flight table");

/* The pools, each with its own socket and workers, the way php-fpm runs
 * pools: the main one serves every route; the conversation pool serves
 * what the web server sends to conversation_listen (the conversation
 * route, whose requests wait on a model for seconds), so slow turns never
 * hold the workers the fast routes need. */
enum pool {
    POOL_MAIN,
    POOL_CONVERSATION,
    POOL_COUNT,
};

struct child {
    pid_t pid; /* 0: free slot; -1: waiting to be respawned */
    enum pool pool;
    unsigned generation;
    int64_t started_ms;
    int64_t respawn_at_ms; /* when pid == -1 */
    int quick_deaths;      /* consecutive deaths soon after start */
};

struct supervisor {
    struct config *cfg;
    const char *config_path;
    struct fcgi_listener listener;
    /* The conversation pool's socket; fd -1 when there is no such pool
     * (conversation_workers 0, or no conversation_listen). */
    struct fcgi_listener conv_listener;
    struct child children[MAX_CHILDREN];
    unsigned generation;
    /* Shared with every child (a MAP_SHARED page made before the first
     * fork): set once the indexes are known to exist, by the supervisor
     * at start or by the indexer child.  Workers answer a database
     * request 503 until it is set (app.h). */
    atomic_bool *indexes_ready;
    /* The indexer child: makes the indexes, retrying until the database
     * answers, when they could not be made at start.  At most one. */
    pid_t indexer_pid;      /* 0: none running */
    int64_t indexer_due_ms; /* start one then (monotonic); 0: none due */
    bool draining;
    int64_t kill_at_ms; /* SIGKILL deadline for draining/retired children */
    int64_t retire_kill_at_ms;
    /* The sweeper child: never a worker, never respawned, at most one. */
    pid_t sweeper_pid; /* 0: none running */
    int64_t sweeper_started_ms;
    int64_t sweeper_kill_ms; /* SIGKILL it if it runs past this */
    int64_t next_sweep_ms;   /* monotonic; 0: cleanup_interval is 0 */
};

/* Signals are taken with sigtimedwait, but a signal whose disposition is
 * SIG_IGN (as a shell sets SIGINT for background jobs) is discarded even
 * while blocked, so each one gets this do-nothing handler. */
static void
supervisor_nop(int sig)
{
    (void)sig;
}

static void
supervisor_signals(sigset_t *set)
{
    struct sigaction sa;
    const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = supervisor_nop;
    sigemptyset(&sa.sa_mask);
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(set, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, set, NULL);
}

/* What the driver made of the URI (replica set, read preference, write
 * concern, retries, timeouts), logged at start so an operator can see it
 * was taken as meant; false for a URI it refused. */
static bool
supervisor_describe_db(const struct config *cfg)
{
    struct error err = ERROR_INIT;
    struct store *store = store_mongo_new(cfg, &err);
    char settings[512];

    if (store == NULL) {
        log_error("database: %s", err.message);
        return false;
    }
    store_mongo_describe(store, settings, sizeof(settings));
    log_info("database settings: %s", settings);
    store_free(store);
    return true;
}

bool
supervisor_ensure_indexes(const struct config *cfg, int64_t give_up_ms,
                          const volatile sig_atomic_t *stop, struct error *err)
{
    struct store *store = store_mongo_new(cfg, err);
    int64_t pause = INDEXES_PAUSE_MS;
    int rounds = 0;
    bool ok = false;

    if (store == NULL)
        return false;
    while (!ok && (stop == NULL || !*stop)) {
        struct arena arena;
        struct store_ctx ctx;

        arena_init(&arena, 4096);
        memset(&ctx, 0, sizeof(ctx));
        ctx.arena = &arena;
        ctx.deadline_ms = clock_mono_ms() + cfg->request_deadline_ms;
        error_clear(err);
        ok = store_ensure_indexes(store, &ctx, err);
        arena_release(&arena);
        if (ok || (give_up_ms != 0 && clock_mono_ms() + pause >= give_up_ms))
            break;
        /* The first failure and then one in ten: the database being
         * down for a while must not fill the log. */
        if (rounds++ % 10 == 0)
            log_warn("indexes not made yet (%s); trying again", err->message);
        if (err->code == ERR_UNAVAILABLE && err->retry != RETRY_NEVER) {
            pause = INDEXES_PAUSE_MS;
        } else {
            pause *= 2;
            if (pause > INDEXES_MAX_PAUSE_MS)
                pause = INDEXES_MAX_PAUSE_MS;
        }
        clock_sleep_ms(pause);
    }
    store_free(store);
    return ok;
}

/* At start: one round of making the indexes, with a short-lived client
 * that is gone before any fork (libmongoc's pool threads must not be
 * inherited).  If the database does not answer, the indexer child makes
 * them (supervisor_indexer) while the workers already answer: 503 with
 * Retry-After for a database request until then, so parley can start
 * before its database.  Returns false for a URI the driver refused. */
static bool
supervisor_indexes(struct supervisor *sv)
{
    const struct config *cfg = sv->cfg;
    struct error err = ERROR_INIT;

    if (!supervisor_describe_db(cfg))
        return false;
    if (supervisor_ensure_indexes(cfg, clock_mono_ms() + 1, NULL, &err)) {
        atomic_store(sv->indexes_ready, true);
        log_info("indexes ready");
    } else {
        log_warn("indexes not made yet (%s); database requests answer 503 "
                 "until they are, made in the background",
                 err.message);
        sv->indexer_due_ms = clock_mono_ms();
    }
    return true;
}

/* Starts the indexer child when one is due: it makes the indexes,
 * retrying until the database answers, sets the shared flag and exits 0
 * (then the supervisor logs it, supervisor_reap).  SIGTERM ends it at
 * once: nothing it does needs finishing. */
static void
supervisor_indexer(struct supervisor *sv, int64_t now)
{
    struct error err = ERROR_INIT;
    sigset_t none;
    pid_t pid;

    if (sv->indexer_due_ms == 0 || now < sv->indexer_due_ms ||
        sv->indexer_pid > 0 || sv->draining)
        return;
    sv->indexer_due_ms = 0;
    pid = fork();
    if (pid < 0) {
        log_error("fork (indexer): %s", strerror(errno));
        sv->indexer_due_ms = now + INDEXER_RESPAWN_MS;
        return;
    }
    if (pid == 0) {
        close(sv->listener.fd);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        signal(SIGCHLD, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* So ps and the tests tell it from a worker. */
        prctl(PR_SET_NAME, "parley-indexer");
        rng_seed();
        if (!supervisor_ensure_indexes(sv->cfg, 0, NULL, &err))
            _exit(1);
        atomic_store(sv->indexes_ready, true);
#ifdef __SANITIZE_ADDRESS__
        __lsan_do_leak_check(); /* _exit skips it: see supervisor_spawn */
#endif
        _exit(0);
    }
    sv->indexer_pid = pid;
    log_debug("indexer %ld started", (long)pid);
}

/* Workers wait this long for their requests at most: a drain or reload
 * waits for the longest deadline of the pools before it kills. */
static int64_t
supervisor_grace_ms(const struct supervisor *sv)
{
    int64_t grace = (int64_t)sv->cfg->shutdown_timeout * 1000;
    int64_t conv = (int64_t)sv->cfg->conversation_deadline_ms + 1000;

    return sv->conv_listener.fd >= 0 && conv > grace ? conv : grace;
}

static void
supervisor_spawn(struct supervisor *sv, struct child *ch)
{
    const struct fcgi_listener *mine =
        ch->pool == POOL_CONVERSATION ? &sv->conv_listener : &sv->listener;
    const struct fcgi_listener *other =
        ch->pool == POOL_CONVERSATION ? &sv->listener : &sv->conv_listener;
    pid_t pid = fork();

    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        ch->pid = -1;
        ch->respawn_at_ms = clock_mono_ms() + RESPAWN_MAX_MS;
        return;
    }
    if (pid == 0) {
        int status;

        /* Its slot in the shared in-flight table (metrics.h). */
        metrics_worker_slot((int)(ch - sv->children));
        /* A worker serves its own pool's socket only. */
        if (other->fd >= 0)
            close(other->fd);
        status = worker_main(sv->cfg, mine->fd, sv->indexes_ready);

        /* _exit: the parent's atexit handlers and stdio buffers are not
         * the child's to run.  That skips LeakSanitizer's at-exit check
         * too, so a sanitizer build runs it here: a worker that leaks
         * then dies with a report on stderr. */
#ifdef __SANITIZE_ADDRESS__
        __lsan_do_leak_check();
#endif
        _exit(status);
    }
    ch->pid = pid;
    ch->generation = sv->generation;
    ch->started_ms = clock_mono_ms();
    log_debug("%s worker %ld started",
              ch->pool == POOL_CONVERSATION ? "conversation" : "main",
              (long)pid);
}

static int
supervisor_count(const struct supervisor *sv, bool current_only)
{
    int n = 0;

    for (int i = 0; i < MAX_CHILDREN; i++) {
        const struct child *ch = &sv->children[i];

        if (ch->pid > 0 && (!current_only || ch->generation == sv->generation))
            n++;
    }
    return n;
}

static struct child *
supervisor_free_slot(struct supervisor *sv)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (sv->children[i].pid == 0)
            return &sv->children[i];
    return NULL;
}

static void
supervisor_start_generation(struct supervisor *sv)
{
    const int counts[POOL_COUNT] = {
        sv->cfg->workers,
        sv->conv_listener.fd >= 0 ? sv->cfg->conversation_workers : 0,
    };

    sv->generation++;
    for (int pool = 0; pool < POOL_COUNT; pool++) {
        for (int i = 0; i < counts[pool]; i++) {
            struct child *ch = supervisor_free_slot(sv);

            if (ch == NULL) {
                log_error("too many children");
                return;
            }
            memset(ch, 0, sizeof(*ch));
            ch->pool = (enum pool)pool;
            supervisor_spawn(sv, ch);
        }
    }
}

static void
supervisor_signal_all(struct supervisor *sv, int sig, bool old_only)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        struct child *ch = &sv->children[i];

        if (ch->pid > 0 && (!old_only || ch->generation != sv->generation))
            kill(ch->pid, sig);
        if (ch->pid < 0 && (!old_only || ch->generation != sv->generation))
            ch->pid = 0; /* a pending respawn that will not happen */
    }
}

/* Logs a warning unless the child exited with 0, or (term_ok: a worker,
 * which the supervisor stops with it) died of SIGTERM; true if it did. */
static bool
supervisor_exit_ok(const char *what, pid_t pid, int status, bool term_ok)
{
    if (WIFSIGNALED(status) && !(term_ok && WTERMSIG(status) == SIGTERM)) {
        log_warn("%s %ld killed by signal %d", what, (long)pid,
                 WTERMSIG(status));
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        log_warn("%s %ld exited with status %d", what, (long)pid,
                 WEXITSTATUS(status));
        return false;
    }
    return true;
}

static void
supervisor_reap(struct supervisor *sv)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int64_t now = clock_mono_ms();
        struct child *ch = NULL;
        bool recycled;

        if (pid == sv->indexer_pid) {
            sv->indexer_pid = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                atomic_store(sv->indexes_ready, true);
                log_info("indexes ready");
            } else if (!sv->draining) {
                supervisor_exit_ok("indexer", pid, status, false);
                sv->indexer_due_ms = now + INDEXER_RESPAWN_MS;
            }
            continue;
        }
        if (pid == sv->sweeper_pid) {
            /* Not a worker: nothing to respawn; the schedule starts the
             * next one. */
            if (supervisor_exit_ok("sweeper", pid, status, false))
                log_debug("sweeper %ld done in %lld ms", (long)pid,
                          (long long)(now - sv->sweeper_started_ms));
            sv->sweeper_pid = 0;
            continue;
        }
        for (int i = 0; i < MAX_CHILDREN; i++)
            if (sv->children[i].pid == pid)
                ch = &sv->children[i];
        if (ch == NULL)
            continue;
        /* Whatever it was serving when it died counts no more. */
        metrics_worker_gone((int)(ch - sv->children));
        recycled =
            WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_RECYCLE;
        if (recycled && !sv->draining && ch->generation == sv->generation) {
            /* Past worker_max_rss_mb after a request (worker.h): planned,
             * so replaced at once, however young it was. */
            log_info("worker %ld replaced (memory ceiling)", (long)pid);
            ch->quick_deaths = 0;
            supervisor_spawn(sv, ch);
            continue;
        }
        if (recycled || supervisor_exit_ok("worker", pid, status, true))
            log_debug("worker %ld exited", (long)pid);

        if (sv->draining || ch->generation != sv->generation) {
            ch->pid = 0;
            continue;
        }
        /* A worker of the current generation died on its own: replace it,
         * but back off if it keeps dying at start (a bad config or a
         * crash on every request must not become a fork storm). */
        if (now - ch->started_ms < QUICK_DEATH_MS) {
            int64_t delay = RESPAWN_MIN_MS;

            for (int k = 0; k < ch->quick_deaths && delay < RESPAWN_MAX_MS; k++)
                delay *= 2;
            if (delay > RESPAWN_MAX_MS)
                delay = RESPAWN_MAX_MS;
            ch->quick_deaths++;
            ch->pid = -1;
            ch->respawn_at_ms = now + delay;
            log_warn("worker died %lld ms after start; respawn in %lld ms",
                     (long long)(now - ch->started_ms), (long long)delay);
        } else {
            ch->quick_deaths = 0;
            supervisor_spawn(sv, ch);
        }
    }
}

static void
supervisor_respawn_due(struct supervisor *sv, int64_t now)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        struct child *ch = &sv->children[i];

        if (ch->pid == -1 && ch->respawn_at_ms <= now)
            supervisor_spawn(sv, ch);
    }
}

/* When the next sweep is due, from now: after `first_ms` at most (start,
 * reload), else after one interval. */
static void
supervisor_schedule_sweep(struct supervisor *sv, int64_t now, int64_t first_ms)
{
    int64_t interval = (int64_t)sv->cfg->cleanup_interval * 1000;

    if (interval <= 0) {
        sv->next_sweep_ms = 0;
        return;
    }
    sv->next_sweep_ms = now + (first_ms < interval ? first_ms : interval);
}

/*
 * Starts the sweeper child when a sweep is due, and kills one that
 * overran.  The child makes its own store after the fork (sweeper_main);
 * a sweep due while the previous child lives is skipped, not queued, and
 * the host lock keeps cron's `parley cleanup` from overlapping it.
 */
static void
supervisor_sweep(struct supervisor *sv, int64_t now)
{
    int64_t run_ms = (int64_t)sv->cfg->cleanup_interval * 1000;
    pid_t pid;
    int status;

    if (sv->sweeper_pid > 0 && now >= sv->sweeper_kill_ms) {
        log_warn("sweeper %ld still running after %lld ms: killing it",
                 (long)sv->sweeper_pid,
                 (long long)(now - sv->sweeper_started_ms));
        kill(sv->sweeper_pid, SIGKILL);
        sv->sweeper_kill_ms = now + 1000; /* and again, until reaped */
    }
    if (sv->next_sweep_ms == 0 || now < sv->next_sweep_ms)
        return;
    supervisor_schedule_sweep(sv, now, INT64_MAX);
    if (sv->sweeper_pid > 0) {
        log_info("sweep due while sweeper %ld still runs: skipped",
                 (long)sv->sweeper_pid);
        return;
    }
    pid = fork();
    if (pid < 0) {
        log_error("fork (sweeper): %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        /* The sweeper serves nothing: without the listening sockets it
         * cannot hold the addresses past the supervisor. */
        close(sv->listener.fd);
        if (sv->conv_listener.fd >= 0)
            close(sv->conv_listener.fd);
        status = sweeper_main(sv->cfg);
#ifdef __SANITIZE_ADDRESS__
        __lsan_do_leak_check(); /* _exit skips it: see supervisor_spawn */
#endif
        _exit(status);
    }
    if (run_ms < SWEEP_MIN_RUN_MS)
        run_ms = SWEEP_MIN_RUN_MS;
    if (run_ms > SWEEP_MAX_RUN_MS)
        run_ms = SWEEP_MAX_RUN_MS;
    sv->sweeper_pid = pid;
    sv->sweeper_started_ms = now;
    sv->sweeper_kill_ms = now + run_ms;
    log_debug("sweeper %ld started", (long)pid);
}

static void
supervisor_reload(struct supervisor *sv)
{
    struct config next;
    struct error err = ERROR_INIT;

    if (config_load(&next, sv->config_path, &err) != 0) {
        log_error("reload refused, keeping the running configuration: %s",
                  err.message);
        config_release(&next);
        return;
    }
    if (strcmp(next.listen, sv->cfg->listen) != 0)
        log_warn("listen changed to %s: takes effect only on restart",
                 next.listen);
    if (strcmp(next.conversation_listen, sv->cfg->conversation_listen) != 0)
        log_warn("conversation_listen changed to %s: takes effect only on "
                 "restart",
                 next.conversation_listen);
    /* An open conversation socket keeps workers: nginx would queue
     * conversations on it with nobody to take them. */
    if (sv->conv_listener.fd >= 0 && next.conversation_workers == 0) {
        log_warn("conversation_workers 0 takes effect only on restart; "
                 "keeping %d",
                 sv->cfg->conversation_workers);
        next.conversation_workers = sv->cfg->conversation_workers;
    }
    /* The listening sockets stay; everything else comes from the new
     * file.  Old workers keep their copy of the old configuration (it was
     * copied by fork) until they exit. */
    free(next.listen);
    next.listen = strdup(sv->cfg->listen);
    free(next.conversation_listen);
    next.conversation_listen = strdup(sv->cfg->conversation_listen);
    if (next.listen == NULL || next.conversation_listen == NULL)
        abort();
    config_release(sv->cfg);
    *sv->cfg = next;
    log_set_level((enum log_level)log_level_parse(sv->cfg->log_level));
    log_info("reloading: starting %d new workers (and %d conversation "
             "workers), retiring the old ones",
             sv->cfg->workers,
             sv->conv_listener.fd >= 0 ? sv->cfg->conversation_workers : 0);
    supervisor_start_generation(sv);
    supervisor_signal_all(sv, SIGTERM, true);
    sv->retire_kill_at_ms = clock_mono_ms() + supervisor_grace_ms(sv);
    /* A running sweeper finishes with the old settings; the next one
     * follows the new cleanup_interval. */
    supervisor_schedule_sweep(sv, clock_mono_ms(), SWEEP_FIRST_MS);
}

/*
 * At the start of a drain, the unix socket's name goes first: a client
 * connecting from then on is refused at once (nginx answers 502) instead
 * of joining the accept queue.  A worker takes SIGTERM only when it finds
 * that queue empty (fcgi.h), which under a steady load it never would:
 * with no newcomers it serves what was queued, then goes, and no request
 * that reached parley is cut off by the shutdown timeout.  (A TCP or
 * inherited socket has no name to take away; it drains only in a lull.)
 */
static void
supervisor_unlink_socket(struct fcgi_listener *l)
{
    if (l->unix_path == NULL)
        return;
    if (unlink(l->unix_path) < 0)
        log_warn("cannot remove %s: %s", l->unix_path, strerror(errno));
    /* Removed once: a restarted parley may own the name by exit time. */
    free(l->unix_path);
    l->unix_path = NULL;
}

static int64_t
supervisor_next_wake(const struct supervisor *sv, int64_t now)
{
    int64_t next = now + 1000;

    for (int i = 0; i < MAX_CHILDREN; i++)
        if (sv->children[i].pid == -1 && sv->children[i].respawn_at_ms < next)
            next = sv->children[i].respawn_at_ms;
    if (sv->draining && sv->kill_at_ms < next)
        next = sv->kill_at_ms;
    if (!sv->draining && sv->next_sweep_ms != 0 && sv->next_sweep_ms < next)
        next = sv->next_sweep_ms;
    if (sv->sweeper_pid > 0 && sv->sweeper_kill_ms < next)
        next = sv->sweeper_kill_ms;
    if (!sv->draining && sv->indexer_due_ms != 0 && sv->indexer_due_ms < next)
        next = sv->indexer_due_ms;
    return next > now ? next : now;
}

static void
write_pid_file(const char *path)
{
    FILE *f;

    if (path[0] == '\0')
        return;
    f = fopen(path, "w");
    if (f == NULL) {
        log_warn("cannot write pid file %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
}

/* Everything before the wait loop: the socket, the metrics region, the
 * indexes, the pid file, the first workers and the sweep schedule.
 * Returns false when parley cannot serve (the caller exits 1). */
static bool
supervisor_start(struct supervisor *sv)
{
    const struct config *cfg = sv->cfg;
    struct error err = ERROR_INIT;

    if (fcgi_listen(cfg, &sv->listener, &err) != 0) {
        log_error("%s", err.message);
        return false;
    }
    if (cfg->conversation_workers > 0 && cfg->conversation_listen[0] != '\0' &&
        fcgi_listen_at(cfg, cfg->conversation_listen, &sv->conv_listener,
                       &err) != 0) {
        log_error("conversation pool: %s", err.message);
        return false;
    }
    /* Before any fork, so that every worker ever started counts into the
     * same region.  Serving without metrics beats not serving. */
    if (metrics_init(api_nroutes, &err) != 0)
        log_warn("%s; /metrics will answer 404", err.message);
    sv->indexes_ready =
        mmap(NULL, sizeof(*sv->indexes_ready), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sv->indexes_ready == MAP_FAILED) {
        sv->indexes_ready = NULL;
        log_error("mmap: %s", strerror(errno));
        return false;
    }
    atomic_init(sv->indexes_ready, false);
    /* A bad URI will not get better by retrying. */
    if (!supervisor_indexes(sv))
        return false;
    write_pid_file(cfg->pid_file);
    log_info("parley %s serving on %s with %d workers", PACKAGE_VERSION,
             cfg->listen[0] ? cfg->listen : "fd 0", cfg->workers);
    if (sv->conv_listener.fd >= 0)
        log_info("conversations on %s with %d workers (agent backend %s)",
                 cfg->conversation_listen, cfg->conversation_workers,
                 cfg->agent_backend);
    else
        log_info("no conversation pool (%s): the main workers serve "
                 "conversations (agent backend %s)",
                 cfg->conversation_workers == 0 ? "conversation_workers 0"
                                                : "no conversation_listen",
                 cfg->agent_backend);
    supervisor_start_generation(sv);
    metrics_set_workers(supervisor_count(sv, false));
    supervisor_schedule_sweep(sv, clock_mono_ms(), SWEEP_FIRST_MS);
    return true;
}

/* SIGTERM or SIGINT: stop taking connections, ask every child to finish
 * and go, and give them shutdown_timeout seconds. */
static void
supervisor_drain(struct supervisor *sv, int64_t now)
{
    if (sv->draining)
        return;
    log_info("draining: waiting up to %lld s for in-flight requests",
             (long long)(supervisor_grace_ms(sv) / 1000));
    sv->draining = true;
    sv->kill_at_ms = now + supervisor_grace_ms(sv);
    supervisor_unlink_socket(&sv->listener);
    supervisor_unlink_socket(&sv->conv_listener);
    supervisor_signal_all(sv, SIGTERM, false);
    /* The sweeper stops between two sessions. */
    if (sv->sweeper_pid > 0)
        kill(sv->sweeper_pid, SIGTERM);
    if (sv->indexer_pid > 0)
        kill(sv->indexer_pid, SIGTERM);
}

/* What is due on every wake, whatever woke us: reaping, the kill
 * deadlines of a drain and of a retired generation, respawns and the
 * sweep. */
static void
supervisor_tick(struct supervisor *sv, int64_t now)
{
    /* A SIGCHLD may have merged with another signal: reaping is cheap
     * and idempotent, so do it on every wake. */
    supervisor_reap(sv);
    if (sv->draining && now >= sv->kill_at_ms &&
        (supervisor_count(sv, false) > 0 || sv->sweeper_pid > 0)) {
        log_warn("shutdown timeout: killing %d workers%s",
                 supervisor_count(sv, false),
                 sv->sweeper_pid > 0 ? " and the sweeper" : "");
        supervisor_signal_all(sv, SIGKILL, false);
        if (sv->sweeper_pid > 0)
            kill(sv->sweeper_pid, SIGKILL);
        if (sv->indexer_pid > 0)
            kill(sv->indexer_pid, SIGKILL);
        sv->kill_at_ms = now + 1000;
    }
    if (!sv->draining && sv->retire_kill_at_ms != 0 &&
        now >= sv->retire_kill_at_ms) {
        if (supervisor_count(sv, false) > supervisor_count(sv, true))
            supervisor_signal_all(sv, SIGKILL, true);
        sv->retire_kill_at_ms = 0;
    }
    if (!sv->draining) {
        supervisor_respawn_due(sv, now);
        supervisor_sweep(sv, now);
        supervisor_indexer(sv, now);
    }
    metrics_set_workers(supervisor_count(sv, false));
}

int
supervisor_run(struct config *cfg, const char *config_path)
{
    struct supervisor *sv = calloc(1, sizeof(*sv));
    sigset_t set;
    int rc = 1;

    if (sv == NULL)
        abort();
    sv->cfg = cfg;
    sv->config_path = config_path;
    sv->listener.fd = -1;
    sv->conv_listener.fd = -1;
    supervisor_signals(&set);
    store_mongo_global_init();
    /* libcurl's (and OpenSSL's) global state, before any fork; each
     * worker makes its own model client after it. */
    {
        struct error err = ERROR_INIT;

        if (llm_global_init(&err) != 0) {
            log_error("%s", err.message);
            goto done;
        }
    }
    if (!supervisor_start(sv))
        goto done;

    /* Until a drain has seen every child go. */
    while (!sv->draining || supervisor_count(sv, false) > 0 ||
           sv->sweeper_pid != 0 || sv->indexer_pid != 0) {
        int64_t now = clock_mono_ms();
        int64_t wake = supervisor_next_wake(sv, now) - now;
        struct timespec ts = {(time_t)(wake / 1000),
                              (long)(wake % 1000) * 1000000};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &ts);

        now = clock_mono_ms();
        switch (sig) {
        case SIGCHLD:
            supervisor_reap(sv);
            break;
        case SIGTERM:
        case SIGINT:
            supervisor_drain(sv, now);
            break;
        case SIGHUP:
            if (!sv->draining)
                supervisor_reload(sv);
            break;
        default:
            break; /* timeout (EAGAIN) or EINTR */
        }
        supervisor_tick(sv, now);
    }
    log_info("stopped");
    rc = 0;
done:
    fcgi_listener_close(&sv->listener, true);
    fcgi_listener_close(&sv->conv_listener, true);
    if (cfg->pid_file[0] != '\0' && rc == 0)
        unlink(cfg->pid_file);
    store_mongo_global_cleanup();
    llm_global_cleanup();
    metrics_release();
    if (sv->indexes_ready != NULL)
        munmap(sv->indexes_ready, sizeof(*sv->indexes_ready));
    config_release(cfg);
    free(sv);
    return rc;
}

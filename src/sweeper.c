#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "arena.h"
#include "clock.h"
#include "log.h"
#include "store_mongo.h"
#include "sweeper.h"
#include "banned.h"

/* Set by SIGTERM in the sweeper child only (sweeper_main). */
static volatile sig_atomic_t sweeper_stop = 0;

static const char *
sweeper_rule_name(enum sweep_rule rule)
{
    switch (rule) {
    case SWEEP_AGE:
        return "max_session_age";
    case SWEEP_INACTIVE:
        return "max_inactive_time";
    case SWEEP_IDLE:
        return "idle_timeout";
    }
    return "?";
}

int64_t
sweeper_tombstone_age(const struct config *cfg)
{
    int64_t ms = 2 * (int64_t)cfg->request_deadline_ms;

    return ms > SWEEPER_TOMBSTONE_MIN_MS ? ms : SWEEPER_TOMBSTONE_MIN_MS;
}

static bool
sweeper_stopped(struct store *s, const struct sweep_limits *lim)
{
    return (lim->stop != NULL && *lim->stop) ||
           (lim->deadline_ms != 0 &&
            s->policy.now_ms(s->policy.env) >= lim->deadline_ms);
}

/* A fresh deadline for each store call: a pass may take minutes, each
 * call may take what a request's would. */
static void
sweeper_ctx(struct store_ctx *ctx, struct arena *a, const struct config *cfg,
            struct store *s)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->arena = a;
    ctx->deadline_ms =
        s->policy.now_ms(s->policy.env) + cfg->request_deadline_ms;
}

/* One candidate of a deleting rule: the conditional delete, then, only if
 * this call deleted it, the purge of what hung off it. */
static bool
sweeper_delete(const struct config *cfg, struct store *s, struct arena *a,
               enum sweep_rule rule, const struct sweep_candidate *c,
               int64_t cutoff, struct sweep_counts *out, struct error *err)
{
    struct store_ctx ctx;
    bool deleted = false;
    int64_t messages = 0;

    /* The user's session counter: marked before, counted down after
     * (store.h, "Counters"). */
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_user_count(s, &ctx, c->user_id, 0, 0, clock_now_ms(), err))
        return false;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_sweep_delete_one(s, &ctx, rule, c, cutoff, &deleted, err))
        return false;
    /* Not deleted: it no longer qualifies (touched meanwhile), or another
     * sweep or a client deleted it first, and that one purges. */
    if (!deleted)
        return true;
    out->deleted_sessions++;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_user_count(s, &ctx, c->user_id, -1, 0, clock_now_ms(), err)) {
        log_warn("sweep: a deleted session's slot was not given back (the "
                 "recount will): %s",
                 err->message);
        error_clear(err);
    }
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_session_purge(s, &ctx, c->user_id, &c->id, &messages, err)) {
        /* The session is gone and unreachable; what hangs off it is keyed
         * by a UUID that is never reused.  Stop rather than pile up more
         * of those while the database is failing. */
        log_warn("sweep: a deleted session's messages were not purged: %s",
                 err->message);
        return false;
    }
    out->deleted_messages += messages;
    return true;
}

/*
 * One tombstone: a session delete or an import that did not finish (or
 * finished but could not remove its tombstone).  If the session document
 * is there, the delete never got that far or the import completed, and
 * only the tombstone goes; otherwise what hangs off the UUID is purged,
 * then the tombstone goes.
 *
 * Nothing is claimed: two sweeps may handle the same tombstone at once.
 * Both purges are delete_many's, and each message is deleted by exactly
 * one of them, so the deletedCounts still add up to what happened; the
 * tombstone's delete is idempotent.  A claim (a findAndModify marking the
 * tombstone taken) would save only the second, empty purge.
 */
static bool
sweeper_tombstone(const struct config *cfg, struct store *s, struct arena *a,
                  const struct sweep_candidate *t, struct sweep_counts *out,
                  struct error *err)
{
    struct store_ctx ctx;
    struct session sess;
    int64_t messages = 0;

    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_session_get_by_id(s, &ctx, t->user_id, &t->id, &sess, err)) {
        if (err->code != ERR_NOT_FOUND)
            return false;
        error_clear(err);
        sweeper_ctx(&ctx, a, cfg, s);
        if (!store_session_purge(s, &ctx, t->user_id, &t->id, &messages, err))
            return false;
        out->deleted_messages += messages;
    }
    sweeper_ctx(&ctx, a, cfg, s);
    return store_tombstone_delete(s, &ctx, t->user_id, &t->id, err);
}

/* The tombstones older than the cutoff, batch by batch: each one handled
 * is gone, so the next query returns the next ones.  *more as for
 * sweeper_rule(). */
static bool
sweeper_tombstones(const struct config *cfg, struct store *s,
                   const struct sweep_limits *lim, int64_t cutoff,
                   struct sweep_counts *out, bool *more, struct error *err)
{
    struct arena a;
    bool ok = false;

    *more = false;
    arena_init(&a, 16 * 1024);
    for (int b = 0; b < lim->max_batches; b++) {
        struct sweep_candidate *ts = NULL;
        struct store_ctx ctx;
        size_t n = 0;

        if (sweeper_stopped(s, lim)) {
            *more = ok = true;
            goto done;
        }
        arena_reset(&a);
        sweeper_ctx(&ctx, &a, cfg, s);
        if (!store_tombstone_list(s, &ctx, cutoff, lim->batch, &ts, &n, err))
            goto done;
        for (size_t i = 0; i < n; i++) {
            if (sweeper_stopped(s, lim)) {
                *more = ok = true;
                goto done;
            }
            if (!sweeper_tombstone(cfg, s, &a, &ts[i], out, err))
                goto done;
        }
        if ((int64_t)n < lim->batch) {
            ok = true;
            goto done;
        }
    }
    *more = true;
    ok = true;
done:
    arena_release(&a);
    return ok;
}

/* ---- counter recounts ---------------------------------------------------
 *
 * A session or user whose dirty_at is older than any request
 * (sweeper_tombstone_age()) had a counter change that may not have
 * finished: it is counted again and its counters set, in one conditional
 * write that applies only if nothing changed it since it was read (a
 * change marks it anew), and dirty_at goes.
 */

static bool
sweeper_recount_session(const struct config *cfg, struct store *s,
                        struct arena *a, const struct sweep_candidate *c,
                        int64_t cutoff, struct sweep_counts *out, bool *changed,
                        struct error *err)
{
    struct store_ctx ctx;
    struct session seen;
    struct store_counts n;

    *changed = false;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_session_get_by_id(s, &ctx, c->user_id, &c->id, &seen, err)) {
        if (err->code != ERR_NOT_FOUND)
            return false;
        error_clear(err); /* deleted meanwhile */
        return true;
    }
    /* Marked again since it was listed: a change may be running. */
    if (seen.dirty_at == 0 || seen.dirty_at >= cutoff)
        return true;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_session_tally(s, &ctx, c->user_id, &c->id, STORE_NO_SEQ, &n,
                             err))
        return false;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_session_set_counts(s, &ctx, c->user_id, &c->id, &seen, &n,
                                  changed, err))
        return false;
    if (*changed &&
        (n.messages != seen.message_count || n.bytes != seen.content_bytes ||
         n.memory_keys != seen.memory_keys)) {
        out->recounted++;
        log_info("sweep: recounted a session: messages %lld -> %lld, bytes "
                 "%lld -> %lld, memory keys %lld -> %lld",
                 (long long)seen.message_count, (long long)n.messages,
                 (long long)seen.content_bytes, (long long)n.bytes,
                 (long long)seen.memory_keys, (long long)n.memory_keys);
    }
    return true;
}

static bool
sweeper_recount_user(const struct config *cfg, struct store *s, struct arena *a,
                     const struct sweep_candidate *c, int64_t cutoff,
                     struct sweep_counts *out, bool *changed, struct error *err)
{
    struct store_ctx ctx;
    struct user_counter seen;
    struct session_stats st;

    *changed = false;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_user_get(s, &ctx, c->user_id, &seen, err)) {
        if (err->code != ERR_NOT_FOUND)
            return false;
        error_clear(err);
        return true;
    }
    if (seen.dirty_at == 0 || seen.dirty_at >= cutoff)
        return true;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_session_stats(s, &ctx, c->user_id, &st, err))
        return false;
    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_user_set_count(s, &ctx, c->user_id, &seen, st.total_sessions,
                              changed, err))
        return false;
    if (*changed && st.total_sessions != seen.sessions) {
        out->recounted++;
        log_info("sweep: recounted a user's sessions: %lld -> %lld",
                 (long long)seen.sessions, (long long)st.total_sessions);
    }
    return true;
}

/* Every dirty session, then every dirty user, batch by batch: a
 * candidate recounted is no longer dirty, so the next query returns the
 * next ones.  A batch that settled none (each changed meanwhile) ends
 * the phase: those are left for the next pass.  *more as for
 * sweeper_rule(). */
static bool
sweeper_recount(const struct config *cfg, struct store *s,
                const struct sweep_limits *lim, enum store_collection coll,
                int64_t cutoff, struct sweep_counts *out, bool *more,
                struct error *err)
{
    struct arena a;
    bool ok = false;

    *more = false;
    arena_init(&a, 16 * 1024);
    for (int b = 0; b < lim->max_batches; b++) {
        struct sweep_candidate *cs = NULL;
        struct store_ctx ctx;
        size_t n = 0, settled = 0;

        if (sweeper_stopped(s, lim)) {
            *more = ok = true;
            goto done;
        }
        arena_reset(&a);
        sweeper_ctx(&ctx, &a, cfg, s);
        if (!store_dirty_list(s, &ctx, coll, cutoff, lim->batch, &cs, &n, err))
            goto done;
        for (size_t i = 0; i < n; i++) {
            bool changed = false, step;

            if (sweeper_stopped(s, lim)) {
                *more = ok = true;
                goto done;
            }
            step = coll == STORE_USERS
                       ? sweeper_recount_user(cfg, s, &a, &cs[i], cutoff, out,
                                              &changed, err)
                       : sweeper_recount_session(cfg, s, &a, &cs[i], cutoff,
                                                 out, &changed, err);
            if (!step)
                goto done;
            settled += changed;
        }
        if ((int64_t)n < lim->batch || settled == 0) {
            ok = true;
            goto done;
        }
    }
    *more = true;
    ok = true;
done:
    arena_release(&a);
    return ok;
}

static bool
sweeper_expire(const struct config *cfg, struct store *s, struct arena *a,
               const struct sweep_candidate *c, int64_t cutoff, int64_t now,
               struct sweep_counts *out, struct error *err)
{
    struct store_ctx ctx;
    bool changed = false;

    sweeper_ctx(&ctx, a, cfg, s);
    if (!store_sweep_expire_one(s, &ctx, c, cutoff, now, &changed, err))
        return false;
    if (changed)
        out->expired++;
    return true;
}

/*
 * One rule, batch by batch.  Every candidate of a batch ends up no longer
 * matching the query (expired, deleted, or changed by someone else so it
 * fails the re-check), so the next query returns the next ones without
 * any cursor state.  *more: the cap, a signal or the time limit stopped
 * the rule, not a short batch.
 */
static bool
sweeper_rule(const struct config *cfg, struct store *s,
             const struct sweep_limits *lim, enum sweep_rule rule,
             int64_t cutoff, int64_t now, struct sweep_counts *out, bool *more,
             struct error *err)
{
    struct arena a;
    bool ok = false;

    *more = false;
    arena_init(&a, 16 * 1024);
    for (int b = 0; b < lim->max_batches; b++) {
        struct sweep_candidate *cands = NULL;
        struct store_ctx ctx;
        size_t n = 0;

        if (sweeper_stopped(s, lim)) {
            *more = ok = true;
            goto done;
        }
        arena_reset(&a);
        sweeper_ctx(&ctx, &a, cfg, s);
        if (!store_sweep_candidates(s, &ctx, rule, cutoff, lim->batch, &cands,
                                    &n, err))
            goto done;
        for (size_t i = 0; i < n; i++) {
            bool step;

            if (sweeper_stopped(s, lim)) {
                *more = ok = true;
                goto done;
            }
            if (rule == SWEEP_IDLE)
                step = sweeper_expire(cfg, s, &a, &cands[i], cutoff, now, out,
                                      err);
            else
                step = sweeper_delete(cfg, s, &a, rule, &cands[i], cutoff, out,
                                      err);
            if (!step)
                goto done;
        }
        if ((int64_t)n < lim->batch) {
            ok = true;
            goto done;
        }
    }
    *more = true;
    ok = true;
done:
    arena_release(&a);
    return ok;
}

bool
sweeper_run_limits(const struct config *cfg, struct store *s, int64_t now_ms,
                   const struct sweep_limits *lim, struct sweep_counts *out,
                   struct error *err)
{
    /* Deleting first: a session about to be deleted is not worth
     * expiring, and a session expired now has a fresh updated_at, so the
     * inactive rule could not take it in this pass anyway. */
    const struct {
        enum sweep_rule rule;
        int seconds;
    } rules[] = {
        {SWEEP_AGE, cfg->max_session_age},
        {SWEEP_INACTIVE, cfg->max_inactive_time},
        {SWEEP_IDLE, cfg->idle_timeout},
    };
    int64_t started = clock_mono_ms();
    bool ok = true, tombs_more = false;

    memset(out, 0, sizeof(*out));
    if (lim->batch < 1 || lim->max_batches < 1)
        return error_set(err, ERR_INTERNAL, NULL, "sweep: bad limits");
    /* Tombstones first: they finish deletes and imports that died.  Only
     * those older than any request can be (2 x request_deadline_ms, and
     * at least a minute), so none belongs to a delete or an import still
     * running: an import puts its tombstone again before every batch. */
    ok = sweeper_tombstones(cfg, s, lim, now_ms - sweeper_tombstone_age(cfg),
                            out, &tombs_more, err);
    if (ok && tombs_more)
        log_info("sweep: tombstones stopped early; the rest is left for the "
                 "next pass");
    for (size_t i = 0; ok && i < sizeof(rules) / sizeof(rules[0]); i++) {
        bool more = false;

        if (rules[i].seconds <= 0)
            continue;
        ok = sweeper_rule(cfg, s, lim, rules[i].rule,
                          now_ms - (int64_t)rules[i].seconds * 1000, now_ms,
                          out, &more, err);
        if (!ok || !more)
            continue;
        if (sweeper_stopped(s, lim)) {
            log_info("sweep: stopped early (signal or time limit) in %s; "
                     "the rest is left for the next pass",
                     sweeper_rule_name(rules[i].rule));
            break;
        }
        log_info("sweep: %s stopped after %d batches of %lld; more remain "
                 "for the next pass",
                 sweeper_rule_name(rules[i].rule), lim->max_batches,
                 (long long)lim->batch);
    }
    /* Last, so what the rules deleted is not recounted first. */
    for (int c = 0; ok && c < 2; c++) {
        bool more = false;

        ok = sweeper_recount(cfg, s, lim, c == 0 ? STORE_SESSIONS : STORE_USERS,
                             now_ms - sweeper_tombstone_age(cfg), out, &more,
                             err);
        if (ok && more)
            log_info("sweep: the recount stopped early; the rest is left for "
                     "the next pass");
    }
    if (ok)
        log_info("sweep: expired %lld, deleted %lld sessions and %lld "
                 "messages, recounted %lld in %lld ms",
                 (long long)out->expired, (long long)out->deleted_sessions,
                 (long long)out->deleted_messages, (long long)out->recounted,
                 (long long)(clock_mono_ms() - started));
    else
        log_warn("sweep failed after expiring %lld and deleting %lld "
                 "sessions and %lld messages: %s",
                 (long long)out->expired, (long long)out->deleted_sessions,
                 (long long)out->deleted_messages, err->message);
    return ok;
}

bool
sweeper_run(const struct config *cfg, struct store *s, int64_t now_ms,
            struct sweep_counts *out, struct error *err)
{
    const struct sweep_limits lim = {SWEEPER_BATCH, SWEEPER_MAX_BATCHES, NULL,
                                     0};

    return sweeper_run_limits(cfg, s, now_ms, &lim, out, err);
}

/* ---- the host lock ----------------------------------------------------- */

/* flock, not fcntl locks: a flock belongs to the open file, so a second
 * open in the same process (two requests of one worker, in turn) is
 * refused like another process's, and closing any other descriptor of
 * the file does not drop it.  O_NOFOLLOW: a lock in a shared directory
 * such as /tmp must not be a symlink planted to make us create a file
 * elsewhere. */
int
sweeper_lock(const struct config *cfg, struct error *err)
{
    const char *path = cfg->sweeper_lock_file;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0) {
        error_set(err, ERR_INTERNAL, NULL,
                  "cannot open the sweeper lock %.80s: %s", path,
                  strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        close(fd);
        if (e == EWOULDBLOCK)
            error_set(err, ERR_CONFLICT, NULL, "a cleanup is already running");
        else
            error_set(err, ERR_INTERNAL, NULL, "cannot lock %.80s: %s", path,
                      strerror(e));
        return -1;
    }
    return fd;
}

void
sweeper_unlock(int fd)
{
    /* Closing the only descriptor of the open file drops the lock. */
    if (fd >= 0)
        close(fd);
}

/* ---- processes --------------------------------------------------------- */

/* The hinted queries need their indexes: a real server refuses a hint
 * naming an index that does not exist.  Cheap when they do. */
static bool
sweeper_indexes(const struct config *cfg, struct store *s, struct error *err)
{
    struct arena a;
    struct store_ctx ctx;
    bool ok;

    arena_init(&a, 1024);
    sweeper_ctx(&ctx, &a, cfg, s);
    ok = store_ensure_indexes(s, &ctx, err);
    arena_release(&a);
    return ok;
}

/* *ran: the pass itself started (and logged its outcome). */
static int
sweeper_locked_pass(const struct config *cfg, int64_t now_ms,
                    const struct sweep_limits *lim, struct sweep_counts *out,
                    bool *ran, struct error *err)
{
    struct store *s = NULL;
    int fd = sweeper_lock(cfg, err);
    int rc = 1;

    memset(out, 0, sizeof(*out));
    *ran = false;
    if (fd < 0)
        return err->code == ERR_CONFLICT ? SWEEPER_EXIT_BUSY : 1;
    s = store_mongo_new(cfg, err);
    if (s == NULL || !sweeper_indexes(cfg, s, err))
        goto done;
    *ran = true;
    if (!sweeper_run_limits(cfg, s, now_ms, lim, out, err))
        goto done;
    rc = 0;
done:
    store_free(s);
    sweeper_unlock(fd);
    return rc;
}

int
sweeper_once(const struct config *cfg, struct sweep_counts *out,
             struct error *err)
{
    const struct sweep_limits lim = {SWEEPER_BATCH, SWEEPER_MAX_BATCHES, NULL,
                                     0};
    bool ran;

    return sweeper_locked_pass(cfg, clock_now_ms(), &lim, out, &ran, err);
}

static void
sweeper_on_stop(int sig)
{
    (void)sig;
    sweeper_stop = 1;
}

int
sweeper_main(const struct config *cfg)
{
    const struct sweep_limits lim = {SWEEPER_BATCH, SWEEPER_MAX_BATCHES,
                                     &sweeper_stop, 0};
    pid_t parent = getppid();
    struct error err = ERROR_INIT;
    struct sweep_counts counts;
    struct sigaction sa;
    sigset_t none;
    bool ran = false;
    int rc;

    /* The supervisor's handlers and blocked set came with fork(): set
     * ours first, then unblock, so a SIGTERM already pending stops us. */
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = sweeper_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        return 0;
    log_set_request("sweeper");

    rc = sweeper_locked_pass(cfg, clock_now_ms(), &lim, &counts, &ran, &err);
    if (rc == SWEEPER_EXIT_BUSY) {
        log_info("sweep skipped: another sweep holds %s",
                 cfg->sweeper_lock_file);
        rc = 0;
    } else if (rc != 0 && !ran) {
        log_warn("sweep not run: %s", err.message);
    }
    log_set_request(NULL);
    return rc;
}

/*
 * tally.c - pending per-session metrics of one worker.
 *
 * The table is a plain array searched linearly: it holds at most
 * TALLY_MAX_SESSIONS entries and, in practice, the handful of sessions a
 * worker saw in the last TALLY_MAX_AGE_MS, so a scan of a few string
 * compares costs less than any hashing would save.  The strings live in
 * the tally's own arena, reset at every flush, because the request they
 * came from is gone by then.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"
#include "tally.h"
#include "banned.h"

struct tally_entry {
    const char *user;
    const char *session_id;
    int64_t requests;
    int64_t errors;
    double ms;
};

struct tally {
    struct tally_entry entries[TALLY_MAX_SESSIONS];
    size_t n;
    int64_t oldest_ms; /* when the first pending delta was added */
    struct arena strings;
};

struct tally *
tally_new(void)
{
    struct tally *t = calloc(1, sizeof(*t));

    if (t == NULL)
        abort();
    /* A user (up to 255 characters of UTF-8) and a session_id (up to 255
     * bytes) per entry: a few KiB covers the usual handful of sessions. */
    arena_init(&t->strings, 8 * 1024);
    return t;
}

void
tally_free(struct tally *t)
{
    if (t == NULL)
        return;
    arena_release(&t->strings);
    free(t);
}

bool
tally_add(struct tally *t, const char *user, const char *session_id, bool error,
          double ms, int64_t now_ms)
{
    struct tally_entry *e = NULL;

    for (size_t i = 0; i < t->n && e == NULL; i++)
        if (strcmp(t->entries[i].session_id, session_id) == 0 &&
            strcmp(t->entries[i].user, user) == 0)
            e = &t->entries[i];
    if (e == NULL) {
        if (t->n == TALLY_MAX_SESSIONS)
            return false;
        if (t->n == 0)
            t->oldest_ms = now_ms;
        e = &t->entries[t->n++];
        e->user = arena_strdup(&t->strings, user);
        e->session_id = arena_strdup(&t->strings, session_id);
        e->requests = 0;
        e->errors = 0;
        e->ms = 0;
    }
    e->requests++;
    if (error)
        e->errors++;
    e->ms += ms;
    return true;
}

size_t
tally_pending(const struct tally *t)
{
    return t->n;
}

int
tally_wait_ms(const struct tally *t, int64_t now_ms)
{
    int64_t age = now_ms - t->oldest_ms;

    if (t->n == 0)
        return -1;
    if (t->n == TALLY_MAX_SESSIONS || age >= TALLY_MAX_AGE_MS)
        return 0;
    /* A clock read before the first add (age < 0) waits the whole time. */
    return age < 0 ? TALLY_MAX_AGE_MS : (int)(TALLY_MAX_AGE_MS - age);
}

size_t
tally_flush(struct tally *t, struct store *store, int64_t deadline_ms)
{
    struct store_ctx ctx;
    size_t written = 0;
    bool unavailable = false;

    /* One deadline for the whole batch, not one per session: a flush must
     * not hold the worker for TALLY_MAX_SESSIONS timeouts in a row. */
    memset(&ctx, 0, sizeof(ctx));
    ctx.arena = &t->strings;
    ctx.deadline_ms = deadline_ms;
    for (size_t i = 0; i < t->n && !unavailable; i++) {
        const struct tally_entry *e = &t->entries[i];
        struct error err = ERROR_INIT;

        if (store_session_add_metrics(store, &ctx, e->user, e->session_id,
                                      e->requests, e->errors, e->ms, &err)) {
            written++;
            continue;
        }
        unavailable = err.code == ERR_UNAVAILABLE;
        log_debug("metrics of %zu session(s) not written: %s",
                  unavailable ? t->n - i : 1, err.message);
    }
    t->n = 0;
    arena_reset(&t->strings);
    return written;
}

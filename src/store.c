#include <stddef.h>

#include "store.h"
#include "banned.h"

/*
 * Each store_*() call packs its arguments into a struct, and a thunk
 * unpacks them into the backend operation, so retry_run() can call the
 * operation again without knowing its signature.
 *
 * Idempotency decides which failures of unknown outcome (RETRY_IDEMPOTENT)
 * are retried.  Reads, ping, index creation and purge can run twice
 * harmlessly.  An insert can too: it carries the _id it was given, so a
 * second run of an insert that did succeed hits the unique index instead
 * of making a copy, and store_session_insert() recognises that below.  An
 * update or delete that did succeed would answer "not found" the second
 * time (its filter holds the old version), turning a success into a 404
 * or 412, so those only retry RETRY_SAFE failures, which certainly did not
 * run.
 */

static bool
run(struct store *s, struct store_ctx *ctx, bool idempotent, retry_op op,
    void *arg, struct error *err)
{
    return retry_run(&s->policy, ctx->deadline_ms, idempotent, op, arg,
                     &ctx->stats, err);
}

struct no_args {
    struct store *s;
};

static bool
ping_op(void *arg, struct error *err)
{
    struct no_args *a = arg;

    return a->s->backend->ping(a->s, err);
}

bool
store_ping(struct store *s, struct store_ctx *ctx, struct error *err)
{
    struct no_args a = {s};

    return run(s, ctx, true, ping_op, &a, err);
}

static bool
ensure_indexes_op(void *arg, struct error *err)
{
    struct no_args *a = arg;

    return a->s->backend->ensure_indexes(a->s, err);
}

bool
store_ensure_indexes(struct store *s, struct store_ctx *ctx, struct error *err)
{
    struct no_args a = {s};

    return run(s, ctx, true, ensure_indexes_op, &a, err);
}

struct insert_args {
    struct store *s;
    const struct session *sess;
};

static bool
insert_op(void *arg, struct error *err)
{
    struct insert_args *a = arg;

    return a->s->backend->session_insert(a->s, a->sess, err);
}

struct get_by_id_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *id;
    struct session *out;
};

static bool
get_by_id_op(void *arg, struct error *err)
{
    struct get_by_id_args *a = arg;

    return a->s->backend->session_get_by_id(a->s, a->arena, a->user, a->id,
                                            a->out, err);
}

bool
store_session_insert(struct store *s, struct store_ctx *ctx,
                     const struct session *sess, struct error *err)
{
    struct insert_args a = {s, sess};
    struct session found = {0};
    struct get_by_id_args g = {s, ctx->arena, sess->user_id, &sess->id, &found};
    struct error local_err = ERROR_INIT, lookup_err = ERROR_INIT;
    int attempts;
    int64_t slept;
    bool ours;

    if (err == NULL)
        err = &local_err;
    if (run(s, ctx, true, insert_op, &a, err))
        return true;
    if (err->code != ERR_DUPLICATE)
        return false;

    /* The duplicate may be our own document, written by a try whose reply
     * was lost.  Its _id is fresh, so finding it proves that; otherwise
     * another session holds the session_id and the duplicate stands.
     * The stats then cover both calls. */
    attempts = ctx->stats.attempts;
    slept = ctx->stats.slept_ms;
    ours = run(s, ctx, true, get_by_id_op, &g, &lookup_err);
    ctx->stats.attempts += attempts;
    ctx->stats.slept_ms += slept;
    if (ours) {
        error_clear(err);
        return true;
    }
    /* Any failure but "not found" leaves us not knowing whose document it
     * is; that is the lookup's error (usually a 503), not a 409. */
    if (lookup_err.code != ERR_NOT_FOUND)
        *err = lookup_err;
    return false;
}

struct get_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const char *session_id;
    struct session *out;
};

static bool
get_op(void *arg, struct error *err)
{
    struct get_args *a = arg;

    return a->s->backend->session_get(a->s, a->arena, a->user, a->session_id,
                                      a->out, err);
}

bool
store_session_get(struct store *s, struct store_ctx *ctx, const char *user,
                  const char *session_id, struct session *out,
                  struct error *err)
{
    struct get_args a = {s, ctx->arena, user, session_id, out};

    return run(s, ctx, true, get_op, &a, err);
}

struct list_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct session_filter *f;
    int64_t limit;
    int64_t offset;
    struct session_page *out;
};

static bool
list_op(void *arg, struct error *err)
{
    struct list_args *a = arg;

    return a->s->backend->session_list(a->s, a->arena, a->user, a->f, a->limit,
                                       a->offset, a->out, err);
}

bool
store_session_list(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct session_filter *f, int64_t limit,
                   int64_t offset, struct session_page *out, struct error *err)
{
    struct list_args a = {s, ctx->arena, user, f, limit, offset, out};

    return run(s, ctx, true, list_op, &a, err);
}

struct update_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *id;
    int64_t version;
    const struct session_change *change;
    struct session *out;
};

static bool
update_op(void *arg, struct error *err)
{
    struct update_args *a = arg;

    return a->s->backend->session_update(a->s, a->arena, a->user, a->id,
                                         a->version, a->change, a->out, err);
}

bool
store_session_update(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *id, int64_t version,
                     const struct session_change *change, struct session *out,
                     struct error *err)
{
    struct update_args a = {s, ctx->arena, user, id, version, change, out};

    return run(s, ctx, false, update_op, &a, err);
}

struct delete_args {
    struct store *s;
    const char *user;
    const struct uuid *id;
    int64_t version;
};

static bool
delete_op(void *arg, struct error *err)
{
    struct delete_args *a = arg;

    return a->s->backend->session_delete(a->s, a->user, a->id, a->version, err);
}

bool
store_session_delete(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *id, int64_t version, struct error *err)
{
    struct delete_args a = {s, user, id, version};

    return run(s, ctx, false, delete_op, &a, err);
}

struct purge_args {
    struct store *s;
    const char *user;
    const struct uuid *id;
    int64_t *messages_deleted;
};

static bool
purge_op(void *arg, struct error *err)
{
    struct purge_args *a = arg;

    return a->s->backend->session_purge(a->s, a->user, a->id,
                                        a->messages_deleted, err);
}

bool
store_session_purge(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, int64_t *messages_deleted,
                    struct error *err)
{
    struct purge_args a = {s, user, id, messages_deleted};

    return run(s, ctx, true, purge_op, &a, err);
}

void
store_free(struct store *s)
{
    if (s != NULL)
        s->backend->free(s);
}

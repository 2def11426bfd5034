#include <stddef.h>

#include "metrics.h"
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
 * run.  So do the $inc updates, whose second run would count twice; which
 * operation is which is listed in store.h.
 */

static bool
run(struct store *s, struct store_ctx *ctx, bool idempotent, retry_op op,
    void *arg, struct error *err)
{
    struct error local_err = ERROR_INIT;
    bool ok;

    if (err == NULL)
        err = &local_err;
    ok = retry_run(&s->policy, ctx->deadline_ms, idempotent, op, arg,
                   &ctx->stats, err);
    /* Every database call ends here: the one place to count it. */
    metrics_db(ctx->stats.attempts > 1 ? ctx->stats.attempts - 1 : 0,
               ok ? ERR_NONE : err->code);
    return ok;
}

bool
store_try_fits(const struct store *s, const struct store_ctx *ctx)
{
    int64_t try_ms = s->policy.try_ms > 0 ? s->policy.try_ms : 0;

    return s->policy.now_ms(s->policy.env) + try_ms < ctx->deadline_ms;
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
store_session_get_by_id(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct uuid *id,
                        struct session *out, struct error *err)
{
    struct get_by_id_args a = {s, ctx->arena, user, id, out};

    return run(s, ctx, true, get_by_id_op, &a, err);
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

/* ---- counters ---------------------------------------------------------- */

struct reserve_seq_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *id;
    int64_t n;
    int64_t now;
    struct session *out;
};

static bool
reserve_seq_op(void *arg, struct error *err)
{
    struct reserve_seq_args *a = arg;

    return a->s->backend->session_reserve_seq(a->s, a->arena, a->user, a->id,
                                              a->n, a->now, a->out, err);
}

/* Not idempotent: a lost reply's $inc has handed out numbers, and a second
 * run would hand out more, leaving a gap the caller never fills. */
bool
store_session_reserve_seq(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct uuid *id, int64_t n,
                          int64_t now, struct session *out, struct error *err)
{
    struct reserve_seq_args a = {s, ctx->arena, user, id, n, now, out};

    return run(s, ctx, false, reserve_seq_op, &a, err);
}

struct touch_args {
    struct store *s;
    const char *user;
    const struct uuid *id;
    int64_t delta;
    int64_t now;
};

static bool
touch_op(void *arg, struct error *err)
{
    struct touch_args *a = arg;

    return a->s->backend->session_touch(a->s, a->user, a->id, a->delta, a->now,
                                        err);
}

bool
store_session_touch(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, int64_t delta, int64_t now,
                    struct error *err)
{
    struct touch_args a = {s, user, id, delta, now};

    return run(s, ctx, false, touch_op, &a, err);
}

struct add_metrics_args {
    struct store *s;
    const char *user;
    const char *session_id;
    int64_t requests;
    int64_t errors;
    double ms;
};

static bool
add_metrics_op(void *arg, struct error *err)
{
    struct add_metrics_args *a = arg;

    return a->s->backend->session_add_metrics(
        a->s, a->user, a->session_id, a->requests, a->errors, a->ms, err);
}

bool
store_session_add_metrics(struct store *s, struct store_ctx *ctx,
                          const char *user, const char *session_id,
                          int64_t requests, int64_t errors, double ms,
                          struct error *err)
{
    struct add_metrics_args a = {s, user, session_id, requests, errors, ms};

    return run(s, ctx, false, add_metrics_op, &a, err);
}

/* ---- messages ---------------------------------------------------------- */

struct message_get_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *session_uuid;
    const struct uuid *id;
    struct message *out;
};

static bool
message_get_op(void *arg, struct error *err)
{
    struct message_get_args *a = arg;

    return a->s->backend->message_get(a->s, a->arena, a->user, a->session_uuid,
                                      a->id, a->out, err);
}

bool
store_message_get(struct store *s, struct store_ctx *ctx, const char *user,
                  const struct uuid *session_uuid, const struct uuid *id,
                  struct message *out, struct error *err)
{
    struct message_get_args a = {s, ctx->arena, user, session_uuid, id, out};

    return run(s, ctx, true, message_get_op, &a, err);
}

struct message_insert_args {
    struct store *s;
    const struct message *msgs;
    size_t n;
    size_t done; /* msgs[0..done) are known to be stored */
};

/* Each try inserts what is not known to be stored yet, so a retry after
 * a try that stored part of the batch continues where it stopped. */
static bool
message_insert_op(void *arg, struct error *err)
{
    struct message_insert_args *a = arg;
    size_t left = a->n - a->done;
    size_t inserted = 0;
    bool ok = a->s->backend->message_insert(a->s, a->msgs + a->done, left,
                                            &inserted, err);

    a->done += ok ? left : (inserted < left ? inserted : left);
    return ok;
}

/*
 * A try whose reply was lost may have stored some or all of the batch;
 * the try after it then meets msgs[done] as a duplicate.  Its _id is
 * fresh, so finding a message with that _id proves the duplicate is our
 * own message: it counts as stored and the insert goes on after it.  A
 * duplicate of anything else (another message holding the seq) stands.
 * The stats cover every call made.
 */
bool
store_message_insert(struct store *s, struct store_ctx *ctx,
                     const struct message *msgs, size_t n, struct error *err)
{
    struct message_insert_args a = {s, msgs, n, 0};
    struct error local_err = ERROR_INIT;
    int attempts = 0;
    int64_t slept = 0;
    bool ok = false;

    if (err == NULL)
        err = &local_err;
    if (n == 0)
        return true;
    for (;;) {
        const struct message *m;
        struct message found;
        struct message_get_args g;
        struct error lookup_err = ERROR_INIT;
        bool ours;

        ok = run(s, ctx, true, message_insert_op, &a, err);
        attempts += ctx->stats.attempts;
        slept += ctx->stats.slept_ms;
        if (ok || err->code != ERR_DUPLICATE || a.done >= n)
            break;

        m = &msgs[a.done];
        g = (struct message_get_args){
            s, ctx->arena, m->user_id, &m->session_uuid, &m->id, &found};
        ours = run(s, ctx, true, message_get_op, &g, &lookup_err);
        attempts += ctx->stats.attempts;
        slept += ctx->stats.slept_ms;
        if (!ours) {
            /* Not knowing whose message it is, the lookup's failure
             * (usually a 503) is the answer, not the duplicate. */
            if (lookup_err.code != ERR_NOT_FOUND)
                *err = lookup_err;
            break;
        }
        error_clear(err);
        if (++a.done == n) {
            ok = true;
            break;
        }
    }
    ctx->stats.attempts = attempts;
    ctx->stats.slept_ms = slept;
    return ok;
}

struct message_delete_ids_args {
    struct store *s;
    const char *user;
    const struct uuid *ids;
    size_t n;
};

static bool
message_delete_ids_op(void *arg, struct error *err)
{
    struct message_delete_ids_args *a = arg;

    return a->s->backend->message_delete_ids(a->s, a->user, a->ids, a->n, NULL,
                                             err);
}

bool
store_message_delete_ids(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *ids, size_t n,
                         struct error *err)
{
    struct message_delete_ids_args a = {s, user, ids, n};

    return run(s, ctx, true, message_delete_ids_op, &a, err);
}

struct message_list_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *session_uuid;
    const struct message_filter *f;
    int64_t limit;
    int64_t offset;
    struct message_page *out;
};

static bool
message_list_op(void *arg, struct error *err)
{
    struct message_list_args *a = arg;

    return a->s->backend->message_list(a->s, a->arena, a->user, a->session_uuid,
                                       a->f, a->limit, a->offset, a->out, err);
}

bool
store_message_list(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct uuid *session_uuid,
                   const struct message_filter *f, int64_t limit,
                   int64_t offset, struct message_page *out, struct error *err)
{
    struct message_list_args a = {s, ctx->arena, user,   session_uuid,
                                  f, limit,      offset, out};

    return run(s, ctx, true, message_list_op, &a, err);
}

struct message_update_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *session_uuid;
    const struct uuid *id;
    const struct message_change *change;
    struct message *out;
};

static bool
message_update_op(void *arg, struct error *err)
{
    struct message_update_args *a = arg;

    return a->s->backend->message_update(a->s, a->arena, a->user,
                                         a->session_uuid, a->id, a->change,
                                         a->out, err);
}

/* Idempotent, unlike the session update: it sets fixed values and its
 * filter has no version, so a second run finds the message again and
 * leaves it as the first did. */
bool
store_message_update(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *session_uuid, const struct uuid *id,
                     const struct message_change *change, struct message *out,
                     struct error *err)
{
    struct message_update_args a = {s,  ctx->arena, user, session_uuid,
                                    id, change,     out};

    return run(s, ctx, true, message_update_op, &a, err);
}

struct message_delete_args {
    struct store *s;
    const char *user;
    const struct uuid *session_uuid;
    const struct uuid *id;
};

static bool
message_delete_op(void *arg, struct error *err)
{
    struct message_delete_args *a = arg;

    return a->s->backend->message_delete(a->s, a->user, a->session_uuid, a->id,
                                         err);
}

bool
store_message_delete(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *session_uuid, const struct uuid *id,
                     struct error *err)
{
    struct message_delete_args a = {s, user, session_uuid, id};

    return run(s, ctx, false, message_delete_op, &a, err);
}

struct message_clear_args {
    struct store *s;
    const char *user;
    const struct uuid *session_uuid;
    int64_t *deleted;
};

static bool
message_clear_op(void *arg, struct error *err)
{
    struct message_clear_args *a = arg;

    return a->s->backend->message_clear(a->s, a->user, a->session_uuid,
                                        a->deleted, err);
}

/* Retried like purge: the messages end up gone either way, though after a
 * lost reply *deleted counts only what the last try found. */
bool
store_message_clear(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, int64_t *deleted,
                    struct error *err)
{
    struct message_clear_args a = {s, user, session_uuid, deleted};

    return run(s, ctx, true, message_clear_op, &a, err);
}

/* ---- idempotency keys -------------------------------------------------- */

struct idem_args {
    struct store *s;
    const char *user;
    const struct uuid *session_uuid;
    const char *key;
    const struct uuid *message_id; /* expected, or the one completed */
    const struct idem_key *k;      /* claim, replace */
    struct idem_key *out;          /* get */
    int64_t seq;                   /* complete */
};

static bool
idem_claim_op(void *arg, struct error *err)
{
    struct idem_args *a = arg;

    return a->s->backend->idem_claim(a->s, a->user, a->session_uuid, a->key,
                                     a->k, err);
}

bool
store_idem_claim(struct store *s, struct store_ctx *ctx, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 const struct idem_key *k, struct error *err)
{
    struct idem_args a = {s, user, session_uuid, key, NULL, k, NULL, 0};

    return run(s, ctx, true, idem_claim_op, &a, err);
}

static bool
idem_get_op(void *arg, struct error *err)
{
    struct idem_args *a = arg;

    return a->s->backend->idem_get(a->s, a->user, a->session_uuid, a->key,
                                   a->out, err);
}

bool
store_idem_get(struct store *s, struct store_ctx *ctx, const char *user,
               const struct uuid *session_uuid, const char *key,
               struct idem_key *out, struct error *err)
{
    struct idem_args a = {s, user, session_uuid, key, NULL, NULL, out, 0};

    return run(s, ctx, true, idem_get_op, &a, err);
}

static bool
idem_replace_op(void *arg, struct error *err)
{
    struct idem_args *a = arg;

    return a->s->backend->idem_replace(a->s, a->user, a->session_uuid, a->key,
                                       a->message_id, a->k, err);
}

bool
store_idem_replace(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *expected, const struct idem_key *k,
                   struct error *err)
{
    struct idem_args a = {s, user, session_uuid, key, expected, k, NULL, 0};

    return run(s, ctx, false, idem_replace_op, &a, err);
}

static bool
idem_complete_op(void *arg, struct error *err)
{
    struct idem_args *a = arg;

    return a->s->backend->idem_complete(a->s, a->user, a->session_uuid, a->key,
                                        a->message_id, a->seq, err);
}

bool
store_idem_complete(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    const struct uuid *message_id, int64_t seq,
                    struct error *err)
{
    struct idem_args a = {s,          user, session_uuid, key,
                          message_id, NULL, NULL,         seq};

    return run(s, ctx, true, idem_complete_op, &a, err);
}

static bool
idem_release_op(void *arg, struct error *err)
{
    struct idem_args *a = arg;

    return a->s->backend->idem_release(a->s, a->user, a->session_uuid, a->key,
                                       a->message_id, err);
}

bool
store_idem_release(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *message_id, struct error *err)
{
    struct idem_args a = {s,          user, session_uuid, key,
                          message_id, NULL, NULL,         0};

    return run(s, ctx, true, idem_release_op, &a, err);
}

/* ---- memory ------------------------------------------------------------ */

struct memory_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *session_uuid;
    const char *key;
    const struct json_value *value; /* put */
    int64_t now;                    /* put */
    struct json_value **out;        /* list, get */
};

static bool
memory_list_op(void *arg, struct error *err)
{
    struct memory_args *a = arg;

    return a->s->backend->memory_list(a->s, a->arena, a->user, a->session_uuid,
                                      a->out, err);
}

bool
store_memory_list(struct store *s, struct store_ctx *ctx, const char *user,
                  const struct uuid *session_uuid,
                  struct json_value **out_object, struct error *err)
{
    struct memory_args a = {s,    ctx->arena, user, session_uuid,
                            NULL, NULL,       0,    out_object};

    return run(s, ctx, true, memory_list_op, &a, err);
}

static bool
memory_get_op(void *arg, struct error *err)
{
    struct memory_args *a = arg;

    return a->s->backend->memory_get(a->s, a->arena, a->user, a->session_uuid,
                                     a->key, a->out, err);
}

bool
store_memory_get(struct store *s, struct store_ctx *ctx, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 struct json_value **out_value, struct error *err)
{
    struct memory_args a = {s,   ctx->arena, user, session_uuid,
                            key, NULL,       0,    out_value};

    return run(s, ctx, true, memory_get_op, &a, err);
}

static bool
memory_put_op(void *arg, struct error *err)
{
    struct memory_args *a = arg;

    return a->s->backend->memory_put(a->s, a->user, a->session_uuid, a->key,
                                     a->value, a->now, err);
}

bool
store_memory_put(struct store *s, struct store_ctx *ctx, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 const struct json_value *value, int64_t now, struct error *err)
{
    struct memory_args a = {s,   ctx->arena, user, session_uuid,
                            key, value,      now,  NULL};

    return run(s, ctx, true, memory_put_op, &a, err);
}

static bool
memory_delete_op(void *arg, struct error *err)
{
    struct memory_args *a = arg;

    return a->s->backend->memory_delete(a->s, a->user, a->session_uuid, a->key,
                                        err);
}

bool
store_memory_delete(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    struct error *err)
{
    struct memory_args a = {s,   ctx->arena, user, session_uuid,
                            key, NULL,       0,    NULL};

    return run(s, ctx, false, memory_delete_op, &a, err);
}

/* ---- sweeper, stats, erasure ------------------------------------------- */

struct sweep_args {
    struct store *s;
    struct arena *arena;
    enum sweep_rule rule;
    const struct sweep_candidate *c;
    int64_t cutoff;
    int64_t now;
    int64_t limit;
    struct sweep_candidate **out;
    size_t *n;
    bool *changed;
};

static bool
sweep_candidates_op(void *arg, struct error *err)
{
    struct sweep_args *a = arg;

    return a->s->backend->sweep_candidates(a->s, a->arena, a->rule, a->cutoff,
                                           a->limit, a->out, a->n, err);
}

bool
store_sweep_candidates(struct store *s, struct store_ctx *ctx,
                       enum sweep_rule rule, int64_t cutoff, int64_t limit,
                       struct sweep_candidate **out, size_t *n,
                       struct error *err)
{
    struct sweep_args a = {s, ctx->arena, rule, NULL, cutoff,
                           0, limit,      out,  n,    NULL};

    return run(s, ctx, true, sweep_candidates_op, &a, err);
}

static bool
sweep_expire_op(void *arg, struct error *err)
{
    struct sweep_args *a = arg;

    return a->s->backend->sweep_expire_one(a->s, a->c, a->cutoff, a->now,
                                           a->changed, err);
}

bool
store_sweep_expire_one(struct store *s, struct store_ctx *ctx,
                       const struct sweep_candidate *c, int64_t cutoff,
                       int64_t now, bool *changed, struct error *err)
{
    struct sweep_args a = {s,   ctx->arena, SWEEP_IDLE, c,    cutoff,
                           now, 0,          NULL,       NULL, changed};

    return run(s, ctx, true, sweep_expire_op, &a, err);
}

static bool
sweep_delete_op(void *arg, struct error *err)
{
    struct sweep_args *a = arg;

    return a->s->backend->sweep_delete_one(a->s, a->rule, a->c, a->cutoff,
                                           a->changed, err);
}

bool
store_sweep_delete_one(struct store *s, struct store_ctx *ctx,
                       enum sweep_rule rule, const struct sweep_candidate *c,
                       int64_t cutoff, bool *deleted, struct error *err)
{
    struct sweep_args a = {s, ctx->arena, rule, c,    cutoff,
                           0, 0,          NULL, NULL, deleted};

    return run(s, ctx, true, sweep_delete_op, &a, err);
}

struct stats_args {
    struct store *s;
    const char *user;
    struct session_stats *out;
};

static bool
session_stats_op(void *arg, struct error *err)
{
    struct stats_args *a = arg;

    return a->s->backend->session_stats(a->s, a->user, a->out, err);
}

bool
store_session_stats(struct store *s, struct store_ctx *ctx, const char *user,
                    struct session_stats *out, struct error *err)
{
    struct stats_args a = {s, user, out};

    return run(s, ctx, true, session_stats_op, &a, err);
}

struct user_delete_args {
    struct store *s;
    enum store_collection coll;
    const char *user;
    int64_t limit;
    int64_t *deleted;
};

static bool
user_delete_batch_op(void *arg, struct error *err)
{
    struct user_delete_args *a = arg;

    return a->s->backend->user_delete_batch(a->s, a->coll, a->user, a->limit,
                                            a->deleted, err);
}

bool
store_user_delete_batch(struct store *s, struct store_ctx *ctx,
                        enum store_collection coll, const char *user,
                        int64_t limit, int64_t *deleted, struct error *err)
{
    struct user_delete_args a = {s, coll, user, limit, deleted};

    return run(s, ctx, true, user_delete_batch_op, &a, err);
}

/* ---- tombstones -------------------------------------------------------- */

struct tombstone_args {
    struct store *s;
    struct arena *arena;
    const char *user;
    const struct uuid *id;
    int64_t now;
    int64_t cutoff;
    int64_t limit;
    struct sweep_candidate **out;
    size_t *n;
};

static bool
tombstone_put_op(void *arg, struct error *err)
{
    struct tombstone_args *a = arg;

    return a->s->backend->tombstone_put(a->s, a->user, a->id, a->now, err);
}

bool
store_tombstone_put(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, int64_t now, struct error *err)
{
    struct tombstone_args a = {s, NULL, user, id, now, 0, 0, NULL, NULL};

    return run(s, ctx, true, tombstone_put_op, &a, err);
}

static bool
tombstone_delete_op(void *arg, struct error *err)
{
    struct tombstone_args *a = arg;

    return a->s->backend->tombstone_delete(a->s, a->user, a->id, err);
}

bool
store_tombstone_delete(struct store *s, struct store_ctx *ctx, const char *user,
                       const struct uuid *id, struct error *err)
{
    struct tombstone_args a = {s, NULL, user, id, 0, 0, 0, NULL, NULL};

    return run(s, ctx, true, tombstone_delete_op, &a, err);
}

static bool
tombstone_list_op(void *arg, struct error *err)
{
    struct tombstone_args *a = arg;

    return a->s->backend->tombstone_list(a->s, a->arena, a->cutoff, a->limit,
                                         a->out, a->n, err);
}

bool
store_tombstone_list(struct store *s, struct store_ctx *ctx, int64_t cutoff,
                     int64_t limit, struct sweep_candidate **out, size_t *n,
                     struct error *err)
{
    struct tombstone_args a = {s,      ctx->arena, NULL, NULL, 0,
                               cutoff, limit,      out,  n};

    return run(s, ctx, true, tombstone_list_op, &a, err);
}

void
store_free(struct store *s)
{
    if (s != NULL)
        s->backend->free(s);
}

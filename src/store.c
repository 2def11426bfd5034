#include <stddef.h>
#include <string.h>

#include "metrics.h"
#include "store.h"
#include "banned.h"

/*
 * Each store_*() call is one retry loop (retry.h) around the plain
 * backend call:
 *
 *     for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
 *         r.ok = s->backend->op(s, ..., r.err);
 *     return r.ok;
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
#define IDEMPOTENT     true
#define NOT_IDEMPOTENT false

/* STORE_OPERATIONS must name every operation of struct store_backend
 * (name, the operations, free): the backends' tables are generated from
 * it, and an operation it missed would be a NULL pointer there. */
#define COUNT_OPERATION(name, NAME) +1
_Static_assert(offsetof(struct store_backend, free) ==
                   offsetof(struct store_backend, ping) +
                       (0 STORE_OPERATIONS(COUNT_OPERATION)) *
                           sizeof(bool (*)(void)),
               "STORE_OPERATIONS and struct store_backend disagree");

/* Starts the loop of one database call under s's policy and ctx's
 * deadline; the tries are counted in ctx->stats. */
static void
begin(struct retry *r, struct store *s, struct store_ctx *ctx, bool idempotent,
      struct error *err)
{
    retry_begin(r, &s->policy, ctx->deadline_ms, idempotent, &ctx->stats, err);
}

static bool
again(struct retry *r)
{
    if (retry_again(r))
        return true;
    /* Every database call ends here: the one place to count it. */
    metrics_db(r->stats->attempts > 1 ? r->stats->attempts - 1 : 0,
               r->ok ? ERR_NONE : r->err->code);
    return false;
}

int64_t
store_message_bytes(const struct message *m)
{
    int64_t n = m->content != NULL ? (int64_t)strlen(m->content) : 0;

    if (m->extra_data != NULL && m->extra_data->type != JSON_NULL)
        n += (int64_t)json_encoded_size(m->extra_data);
    if (m->item != NULL)
        n += (int64_t)json_encoded_size(m->item);
    return n;
}

bool
store_try_fits(const struct store *s, const struct store_ctx *ctx)
{
    int64_t try_ms = s->policy.try_ms > 0 ? s->policy.try_ms : 0;

    return s->policy.now_ms(s->policy.env) + try_ms < ctx->deadline_ms;
}

bool
store_ping(struct store *s, struct store_ctx *ctx, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->ping(s, r.err);
    return r.ok;
}

bool
store_ensure_indexes(struct store *s, struct store_ctx *ctx, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->ensure_indexes(s, r.err);
    return r.ok;
}

bool
store_session_insert(struct store *s, struct store_ctx *ctx,
                     const struct session *sess, struct error *err)
{
    struct retry r, lookup;
    struct session found = {0};
    struct error lookup_err = ERROR_INIT;
    int attempts;
    int64_t slept;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_insert(s, sess, r.err);
    if (r.ok || r.err->code != ERR_DUPLICATE)
        return r.ok;

    /* The duplicate may be our own document, written by a try whose reply
     * was lost.  Its _id is fresh, so finding it proves that; otherwise
     * another session holds the session_id and the duplicate stands.
     * The stats then cover both calls. */
    attempts = ctx->stats.attempts;
    slept = ctx->stats.slept_ms;
    for (begin(&lookup, s, ctx, IDEMPOTENT, &lookup_err); again(&lookup);)
        lookup.ok = s->backend->session_get_by_id(
            s, ctx->arena, sess->user_id, &sess->id, &found, lookup.err);
    ctx->stats.attempts += attempts;
    ctx->stats.slept_ms += slept;
    if (lookup.ok) {
        error_clear(r.err);
        return true;
    }
    /* Any failure but "not found" leaves us not knowing whose document it
     * is; that is the lookup's error (usually a 503), not a 409. */
    if (lookup_err.code != ERR_NOT_FOUND)
        *r.err = lookup_err;
    return false;
}

bool
store_session_get(struct store *s, struct store_ctx *ctx, const char *user,
                  const char *session_id, struct session *out,
                  struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_get(s, ctx->arena, user, session_id, out,
                                       r.err);
    return r.ok;
}

bool
store_session_get_by_id(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct uuid *id,
                        struct session *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok =
            s->backend->session_get_by_id(s, ctx->arena, user, id, out, r.err);
    return r.ok;
}

bool
store_session_list(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct session_filter *f, int64_t limit,
                   int64_t offset, struct session_page *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_list(s, ctx->arena, user, f, limit, offset,
                                        out, r.err);
    return r.ok;
}

bool
store_session_update(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *id, int64_t version,
                     const struct session_change *change, struct session *out,
                     struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_update(s, ctx->arena, user, id, version,
                                          change, out, r.err);
    return r.ok;
}

bool
store_session_delete(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *id, int64_t version, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_delete(s, user, id, version, r.err);
    return r.ok;
}

bool
store_session_purge(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, int64_t *messages_deleted,
                    struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_purge(s, user, id, messages_deleted, r.err);
    return r.ok;
}

/* ---- counters ---------------------------------------------------------- */

/* Not idempotent: a lost reply's $inc has handed out numbers, and a second
 * run would hand out more, leaving a gap the caller never fills. */
bool
store_session_reserve_seq(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct uuid *id,
                          const struct store_reserve *res, int64_t now,
                          struct session *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_reserve_seq(s, ctx->arena, user, id, res,
                                               now, out, r.err);
    return r.ok;
}

bool
store_session_touch(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, const struct store_counts *delta,
                    int64_t now, bool activity, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok =
            s->backend->session_touch(s, user, id, delta, now, activity, r.err);
    return r.ok;
}

bool
store_session_add_metrics(struct store *s, struct store_ctx *ctx,
                          const char *user, const char *session_id,
                          int64_t requests, int64_t errors, double ms,
                          struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_add_metrics(s, user, session_id, requests,
                                               errors, ms, r.err);
    return r.ok;
}

/* $max is idempotent: a repeat sets what the first try set. */
bool
store_session_mark(struct store *s, struct store_ctx *ctx, const char *user,
                   const char *session_id, int64_t now, struct session *out,
                   struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_mark(s, ctx->arena, user, session_id, now,
                                        out, r.err);
    return r.ok;
}

bool
store_session_tally(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, int64_t max_seq,
                    struct store_counts *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_tally(s, user, id, max_seq, out, r.err);
    return r.ok;
}

bool
store_session_set_counts(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *id,
                         const struct session *seen,
                         const struct store_counts *c, bool *changed,
                         struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_set_counts(s, user, id, seen, c, changed,
                                              r.err);
    return r.ok;
}

bool
store_session_add_usage(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct uuid *id,
                        int64_t prompt_tokens, int64_t completion_tokens,
                        struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_add_usage(s, user, id, prompt_tokens,
                                             completion_tokens, r.err);
    return r.ok;
}

bool
store_session_delete_unused(struct store *s, struct store_ctx *ctx,
                            const char *user, const struct uuid *id,
                            struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_delete_unused(s, user, id, r.err);
    return r.ok;
}

/* ---- messages ---------------------------------------------------------- */

bool
store_message_get(struct store *s, struct store_ctx *ctx, const char *user,
                  const struct uuid *session_uuid, const struct uuid *id,
                  struct message *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_get(s, ctx->arena, user, session_uuid, id,
                                       out, r.err);
    return r.ok;
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
    struct retry r = {.ok = true};
    size_t done = 0; /* msgs[0..done) are known to be stored */
    int attempts = 0;
    int64_t slept = 0;

    while (done < n) {
        const struct message *m;
        struct message found;
        struct retry lookup;
        struct error lookup_err = ERROR_INIT;

        /* Each try inserts what is not known to be stored yet, so a retry
         * after a try that stored part of the batch continues where it
         * stopped. */
        for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);) {
            size_t left = n - done, inserted = 0;

            r.ok = s->backend->message_insert(s, msgs + done, left, &inserted,
                                              r.err);
            done += r.ok ? left : (inserted < left ? inserted : left);
        }
        attempts += ctx->stats.attempts;
        slept += ctx->stats.slept_ms;
        if (r.ok || r.err->code != ERR_DUPLICATE || done >= n)
            break;

        m = &msgs[done];
        for (begin(&lookup, s, ctx, IDEMPOTENT, &lookup_err); again(&lookup);)
            lookup.ok = s->backend->message_get(s, ctx->arena, m->user_id,
                                                &m->session_uuid, &m->id,
                                                &found, lookup.err);
        attempts += ctx->stats.attempts;
        slept += ctx->stats.slept_ms;
        if (!lookup.ok) {
            /* Not knowing whose message it is, the lookup's failure
             * (usually a 503) is the answer, not the duplicate. */
            if (lookup_err.code != ERR_NOT_FOUND)
                *r.err = lookup_err;
            break;
        }
        error_clear(r.err);
        done++; /* msgs[done] was ours, so it is stored */
        r.ok = done == n;
    }
    if (n > 0) {
        ctx->stats.attempts = attempts;
        ctx->stats.slept_ms = slept;
    }
    return r.ok;
}

bool
store_message_delete_ids(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *ids, size_t n,
                         struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_delete_ids(s, user, ids, n, NULL, r.err);
    return r.ok;
}

bool
store_message_list(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct uuid *session_uuid,
                   const struct message_filter *f, int64_t limit,
                   int64_t offset, struct message_page *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_list(s, ctx->arena, user, session_uuid, f,
                                        limit, offset, out, r.err);
    return r.ok;
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
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_update(s, ctx->arena, user, session_uuid, id,
                                          change, out, r.err);
    return r.ok;
}

bool
store_message_delete(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct uuid *session_uuid, const struct uuid *id,
                     int64_t *bytes, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok =
            s->backend->message_delete(s, user, session_uuid, id, bytes, r.err);
    return r.ok;
}

/* Retried like purge: the messages end up gone either way, though after a
 * lost reply *deleted counts only what the last try found. */
bool
store_message_clear(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, int64_t max_seq,
                    int64_t *deleted, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_clear(s, user, session_uuid, max_seq,
                                         deleted, r.err);
    return r.ok;
}

bool
store_message_get_many(struct store *s, struct store_ctx *ctx, const char *user,
                       const struct uuid *session_uuid, const struct uuid *ids,
                       size_t n, struct message *out, bool *found,
                       struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_get_many(s, ctx->arena, user, session_uuid,
                                            ids, n, out, found, r.err);
    return r.ok;
}

/* ---- idempotency keys -------------------------------------------------- */

bool
store_idem_claim(struct store *s, struct store_ctx *ctx, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 const struct idem_key *k, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_claim(s, user, session_uuid, key, k, r.err);
    return r.ok;
}

bool
store_idem_get(struct store *s, struct store_ctx *ctx, const char *user,
               const struct uuid *session_uuid, const char *key,
               struct idem_key *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_get(s, user, session_uuid, key, out, r.err);
    return r.ok;
}

bool
store_idem_get_many(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, const char *const *keys,
                    size_t n, struct idem_key *out, bool *found,
                    struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_get_many(s, user, session_uuid, keys, n, out,
                                         found, r.err);
    return r.ok;
}

bool
store_idem_claim_many(struct store *s, struct store_ctx *ctx, const char *user,
                      const struct uuid *session_uuid, const char *const *keys,
                      const struct idem_key *k, size_t n, bool *claimed,
                      struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_claim_many(s, user, session_uuid, keys, k, n,
                                           claimed, r.err);
    return r.ok;
}

bool
store_idem_complete_many(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *session_uuid,
                         const char *const *keys, const struct uuid *ids,
                         const int64_t *seqs, size_t n, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_complete_many(s, user, session_uuid, keys, ids,
                                              seqs, n, r.err);
    return r.ok;
}

bool
store_idem_replace(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *expected, const struct idem_key *k,
                   struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_replace(s, user, session_uuid, key, expected, k,
                                        r.err);
    return r.ok;
}

bool
store_idem_complete(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    const struct uuid *message_id, int64_t seq,
                    struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_complete(s, user, session_uuid, key, message_id,
                                         seq, r.err);
    return r.ok;
}

bool
store_idem_release(struct store *s, struct store_ctx *ctx, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *message_id, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->idem_release(s, user, session_uuid, key, message_id,
                                        r.err);
    return r.ok;
}

/* ---- memory ------------------------------------------------------------ */

bool
store_memory_list(struct store *s, struct store_ctx *ctx, const char *user,
                  const struct uuid *session_uuid, const char *after,
                  int64_t limit, struct json_value **out_object,
                  struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->memory_list(s, ctx->arena, user, session_uuid, after,
                                       limit, out_object, r.err);
    return r.ok;
}

bool
store_memory_get(struct store *s, struct store_ctx *ctx, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 struct json_value **out_value, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->memory_get(s, ctx->arena, user, session_uuid, key,
                                      out_value, r.err);
    return r.ok;
}

/* Setting a key that is there is idempotent; inserting one is not: the
 * repeat of an insert whose reply was lost answers duplicate. */
bool
store_memory_put(struct store *s, struct store_ctx *ctx, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 const struct json_value *value, int64_t now, bool insert,
                 struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, insert ? NOT_IDEMPOTENT : IDEMPOTENT, err);
         again(&r);)
        r.ok = s->backend->memory_put(s, user, session_uuid, key, value, now,
                                      insert, r.err);
    return r.ok;
}

bool
store_memory_delete(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->memory_delete(s, user, session_uuid, key, r.err);
    return r.ok;
}

/* ---- sweeper, stats, erasure ------------------------------------------- */

bool
store_sweep_candidates(struct store *s, struct store_ctx *ctx,
                       enum sweep_rule rule, int64_t cutoff, int64_t limit,
                       struct sweep_candidate **out, size_t *n,
                       struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->sweep_candidates(s, ctx->arena, rule, cutoff, limit,
                                            out, n, r.err);
    return r.ok;
}

bool
store_sweep_expire_one(struct store *s, struct store_ctx *ctx,
                       const struct sweep_candidate *c, int64_t cutoff,
                       int64_t now, bool *changed, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->sweep_expire_one(s, c, cutoff, now, changed, r.err);
    return r.ok;
}

bool
store_sweep_delete_one(struct store *s, struct store_ctx *ctx,
                       enum sweep_rule rule, const struct sweep_candidate *c,
                       int64_t cutoff, bool *deleted, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->sweep_delete_one(s, rule, c, cutoff, deleted, r.err);
    return r.ok;
}

bool
store_session_stats(struct store *s, struct store_ctx *ctx, const char *user,
                    struct session_stats *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->session_stats(s, user, out, r.err);
    return r.ok;
}

bool
store_user_delete_batch(struct store *s, struct store_ctx *ctx,
                        enum store_collection coll, const char *user,
                        int64_t limit, int64_t *deleted, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok =
            s->backend->user_delete_batch(s, coll, user, limit, deleted, r.err);
    return r.ok;
}

/* ---- tombstones -------------------------------------------------------- */

bool
store_tombstone_put(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *id, int64_t now, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->tombstone_put(s, user, id, now, r.err);
    return r.ok;
}

bool
store_tombstone_delete(struct store *s, struct store_ctx *ctx, const char *user,
                       const struct uuid *id, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->tombstone_delete(s, user, id, r.err);
    return r.ok;
}

bool
store_tombstone_list(struct store *s, struct store_ctx *ctx, int64_t cutoff,
                     int64_t limit, struct sweep_candidate **out, size_t *n,
                     struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->tombstone_list(s, ctx->arena, cutoff, limit, out, n,
                                          r.err);
    return r.ok;
}

bool
store_message_get_item(struct store *s, struct store_ctx *ctx, const char *user,
                       const struct uuid *session_uuid, const char *item_id,
                       struct message *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->message_get_item(s, ctx->arena, user, session_uuid,
                                            item_id, out, r.err);
    return r.ok;
}

/* ---- user counters and recounts ---------------------------------------- */

bool
store_user_count(struct store *s, struct store_ctx *ctx, const char *user,
                 int64_t delta, int64_t max, int64_t now, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, NOT_IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->user_count(s, user, delta, max, now, r.err);
    return r.ok;
}

bool
store_user_get(struct store *s, struct store_ctx *ctx, const char *user,
               struct user_counter *out, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->user_get(s, user, out, r.err);
    return r.ok;
}

bool
store_user_set_count(struct store *s, struct store_ctx *ctx, const char *user,
                     const struct user_counter *seen, int64_t sessions,
                     bool *changed, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok =
            s->backend->user_set_count(s, user, seen, sessions, changed, r.err);
    return r.ok;
}

bool
store_dirty_list(struct store *s, struct store_ctx *ctx,
                 enum store_collection coll, int64_t cutoff, int64_t limit,
                 struct sweep_candidate **out, size_t *n, struct error *err)
{
    struct retry r;

    for (begin(&r, s, ctx, IDEMPOTENT, err); again(&r);)
        r.ok = s->backend->dirty_list(s, ctx->arena, coll, cutoff, limit, out,
                                      n, r.err);
    return r.ok;
}

void
store_free(struct store *s)
{
    if (s != NULL)
        s->backend->free(s);
}

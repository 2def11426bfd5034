#include <string.h>

#include "clock.h"
#include "log.h"
#include "role.h"
#include "service_message.h"
#include "service_session.h"
#include "validate.h"
#include "banned.h"

/* How long a request waits for a concurrent request holding the same
 * idempotency key to finish writing, between looks. */
#define IDEM_POLL_MS 25

/* How often a PATCH reads the message again when another writer changed
 * it between its read and its update. */
#define MAX_PATCH_ROUNDS 5

/* A message write needs the session to exist (404) and be active (409). */
static bool
active_session(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, struct session *s, struct error *err)
{
    if (!service_session_get(svc, ctx, user, session_id, s, err))
        return false;
    if (s->status != STATUS_ACTIVE)
        return error_set(err, ERR_CONFLICT, "status",
                         "the session is %s; only an active session takes "
                         "message writes",
                         status_name(s->status));
    return true;
}

/* The parameter name of field `f` of message i, for errors. */
static const char *
pname(struct store_ctx *ctx, bool batch, size_t i, const char *f)
{
    return batch ? arena_printf(ctx->arena, "messages[%zu].%s", i, f) : f;
}

static bool
idem_key_ok(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

/* Checks one message's fields against the contract and fills m (import
 * uses it too). */
bool
service_message_decode(struct service *svc, struct store_ctx *ctx, bool batch,
                       size_t i, const struct message_input *in,
                       struct message *m, struct error *err)
{
    const struct config *cfg = svc->cfg;
    int role;

    if (in->role == NULL || in->role->type != JSON_STRING ||
        (role = role_parse(in->role->u.s.ptr)) < 0)
        return error_set(err, ERR_VALIDATION, pname(ctx, batch, i, "role"),
                         "role must be user, assistant, system, developer "
                         "or tool");
    m->role = (enum message_role)role;
    if (in->content == NULL)
        return error_set(err, ERR_VALIDATION, pname(ctx, batch, i, "content"),
                         "content is required");
    if (!validate_text(pname(ctx, batch, i, "content"), in->content, 0,
                       (size_t)cfg->max_content_bytes, err))
        return false;
    m->content = in->content->u.s.ptr;
    if (!service_text(pname(ctx, batch, i, "tool_call_id"), in->tool_call_id,
                      (size_t)cfg->max_name_chars, 0, &m->tool_call_id, err) ||
        !service_text(pname(ctx, batch, i, "tool_name"), in->tool_name,
                      (size_t)cfg->max_name_chars, 0, &m->tool_name, err))
        return false;
    m->extra_data = NULL;
    if (in->extra_data != NULL && in->extra_data->type != JSON_NULL) {
        if (!validate_document(pname(ctx, batch, i, "extra_data"),
                               in->extra_data, (size_t)cfg->max_metadata_bytes,
                               cfg->max_metadata_depth, false, err))
            return false;
        m->extra_data = in->extra_data;
    }
    m->client_message_id = NULL;
    if (in->client_message_id != NULL) {
        const struct json_value *k = in->client_message_id;

        if (k->type != JSON_STRING || !idem_key_ok(k->u.s.ptr, k->u.s.len))
            return error_set(err, ERR_VALIDATION,
                             pname(ctx, batch, i, "client_message_id"),
                             "client_message_id must be 1 to 255 printable "
                             "ASCII characters");
        m->client_message_id = k->u.s.ptr;
    }
    m->item = in->item;
    m->item_id = in->item_id;
    return true;
}

/* Checks every message of a batch, and that keys do not repeat, before
 * anything is written: a bad message anywhere stores nothing. */
static bool
decode_batch(struct service *svc, struct store_ctx *ctx,
             const struct message_input *in, size_t n, bool batch,
             struct message *msgs, struct error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!service_message_decode(svc, ctx, batch, i, &in[i], &msgs[i], err))
            return false;
        for (size_t j = 0; j < i && msgs[i].client_message_id; j++)
            if (msgs[j].client_message_id &&
                strcmp(msgs[j].client_message_id, msgs[i].client_message_id) ==
                    0)
                return error_set(err, ERR_VALIDATION,
                                 pname(ctx, batch, i, "client_message_id"),
                                 "client_message_id repeats within the batch");
    }
    return true;
}

/* Outcome of claiming one idempotency key. */
enum claim {
    CLAIM_OURS,   /* we hold the key: store the message */
    CLAIM_REPLAY, /* the key's message exists: answer it */
};

/* Claims m's key for m->id, or finds the message it already stands for
 * (into *replay).  Waits, within the deadline, for a concurrent holder. */
static bool
claim_key(struct service *svc, struct store_ctx *ctx, const char *user,
          const struct message *m, struct message *replay, enum claim *out,
          struct error *err)
{
    const int64_t stale_ms = 2 * (int64_t)svc->cfg->request_deadline_ms;
    struct idem_key mine = {m->id, 0, clock_now_ms()};

    for (;;) {
        struct idem_key held;

        if (store_idem_claim(svc->store, ctx, user, &m->session_uuid,
                             m->client_message_id, &mine, err)) {
            *out = CLAIM_OURS;
            return true;
        }
        if (err->code != ERR_DUPLICATE)
            return false;
        if (!store_idem_get(svc->store, ctx, user, &m->session_uuid,
                            m->client_message_id, &held, err)) {
            if (err->code == ERR_NOT_FOUND)
                continue; /* released meanwhile: claim again */
            return false;
        }
        if (uuid_equal(&held.message_id, &m->id)) {
            *out = CLAIM_OURS; /* our own earlier try */
            return true;
        }
        if (store_message_get(svc->store, ctx, user, &m->session_uuid,
                              &held.message_id, replay, err)) {
            *out = CLAIM_REPLAY;
            return true;
        }
        if (err->code != ERR_NOT_FOUND)
            return false;
        /* The key names a message that is not there: either its writer
         * is still at work, or it died, or the message was deleted since.
         * Take the key over in the last two cases. */
        if (held.seq > 0 || clock_now_ms() - held.created_at > stale_ms) {
            if (store_idem_replace(svc->store, ctx, user, &m->session_uuid,
                                   m->client_message_id, &held.message_id,
                                   &mine, err)) {
                *out = CLAIM_OURS;
                return true;
            }
            if (err->code != ERR_NOT_FOUND)
                return false;
            continue; /* someone else took it over: look again */
        }
        if (clock_mono_ms() + IDEM_POLL_MS >= ctx->deadline_ms)
            return error_set(err, ERR_CONFLICT, "client_message_id",
                             "a request with this key is still being "
                             "written; try again");
        clock_sleep_ms(IDEM_POLL_MS);
    }
}

static void
release_keys(struct service *svc, struct store_ctx *ctx, const char *user,
             const struct message *msgs, const bool *claimed, size_t n)
{
    struct error ignored = ERROR_INIT;

    /* Not when a stalled database would hold the answer past the
     * deadline: a key left claimed is taken over once it is stale. */
    if (!store_try_fits(svc->store, ctx))
        return;
    for (size_t i = 0; i < n; i++)
        if (claimed[i])
            store_idem_release(svc->store, ctx, user, &msgs[i].session_uuid,
                               msgs[i].client_message_id, &msgs[i].id,
                               &ignored);
}

/* Undoes a reservation whose messages could not all be stored: removes
 * what went in, gives back the counts (messages and bytes), frees the
 * keys.  Best effort: what it cannot undo it logs, and the counters it
 * could not give back stay too high until the sweeper recounts the
 * session (the reservation marked it dirty). */
static void
undo_append(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct message *msgs, const bool *claimed, size_t n,
            const struct store_counts *reserved)
{
    struct error e = ERROR_INIT;
    struct uuid *ids = arena_alloc(ctx->arena, n * sizeof(*ids));
    struct store_counts back = {-reserved->messages, -reserved->bytes, 0};

    /* The store has just failed: a cleanup that could not end by the
     * deadline is not started, so the client has its 503 in time.  What
     * stays is what a failed cleanup leaves: the keys name these
     * messages, so a retry with a key replays one that was stored, or
     * takes the key over once it is stale. */
    if (!store_try_fits(svc->store, ctx)) {
        log_warn("no time left to remove a failed batch of %zu", n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = msgs[i].id;
    /* Only once the messages are certainly gone are their counts given
     * back: counters may be too high for a while, never too low. */
    if (!store_message_delete_ids(svc->store, ctx, user, ids, n, &e))
        log_warn("could not remove a failed batch: %s", e.message);
    else if (!store_session_touch(svc->store, ctx, user, &msgs[0].session_uuid,
                                  &back, clock_now_ms(), true, &e))
        log_warn("could not give back the counts of %zu messages (the "
                 "sweeper recounts): %s",
                 n, e.message);
    release_keys(svc, ctx, user, msgs, claimed, n);
}

/* The checks an append makes before it reads anything: the count, the
 * Idempotency-Key header, every message (into *msgs, made here), and the
 * header against the message's own key. */
static bool
check_append(struct service *svc, struct store_ctx *ctx,
             const struct message_input *in, size_t n, bool batch,
             const char *idem_header, struct message **out, struct error *err)
{
    struct message *msgs;

    if (n == 0 || n > (size_t)svc->cfg->max_batch_messages)
        return error_set(err, ERR_VALIDATION, "messages",
                         "a batch holds 1 to %d messages",
                         svc->cfg->max_batch_messages);
    if (idem_header != NULL && batch)
        return error_set(err, ERR_VALIDATION, "Idempotency-Key",
                         "Idempotency-Key is for one message; give each "
                         "message of a batch a client_message_id");
    if (idem_header != NULL && !idem_key_ok(idem_header, strlen(idem_header)))
        return error_set(err, ERR_VALIDATION, "Idempotency-Key",
                         "Idempotency-Key must be 1 to 255 printable ASCII "
                         "characters");
    msgs = arena_calloc(ctx->arena, n * sizeof(*msgs));
    *out = msgs;
    if (!decode_batch(svc, ctx, in, n, batch, msgs, err))
        return false;
    if (idem_header != NULL) {
        if (msgs[0].client_message_id != NULL &&
            strcmp(msgs[0].client_message_id, idem_header) != 0)
            return error_set(err, ERR_VALIDATION, "client_message_id",
                             "client_message_id and Idempotency-Key differ");
        msgs[0].client_message_id = idem_header;
    }
    return true;
}

/*
 * The messages ids[0..n) (found[i] says whether out[i] holds ids[i]'s),
 * which the keys ks (where key_found) name.  When every key has its seq
 * and the seqs lie close together, as those of one batch do, they are
 * read as that range of seqs on the list's index and matched by id
 * here; otherwise by id.  Both are one query; the range costs the
 * development server a scan of cheap comparisons where the ids cost it
 * one of binary values (a second for a batch of 100 among 2 500
 * messages).
 */
static bool
get_messages(struct service *svc, struct store_ctx *ctx, const char *user,
             const struct uuid *session_uuid, const struct idem_key *ks,
             const bool *key_found, size_t nkeys, const struct uuid *ids,
             size_t n, struct message *out, bool *found, struct error *err)
{
    int64_t lo = INT64_MAX, hi = 0;
    struct message_filter f;
    struct message_page page;

    for (size_t k = 0; k < nkeys; k++) {
        if (!key_found[k])
            continue;
        if (ks[k].seq <= 0)
            return store_message_get_many(svc->store, ctx, user, session_uuid,
                                          ids, n, out, found, err);
        lo = ks[k].seq < lo ? ks[k].seq : lo;
        hi = ks[k].seq > hi ? ks[k].seq : hi;
    }
    if (hi - lo + 1 > 2 * (int64_t)n)
        return store_message_get_many(svc->store, ctx, user, session_uuid, ids,
                                      n, out, found, err);
    service_message_filter_all(&f);
    f.after_seq = lo - 1;
    f.before_seq = hi + 1;
    f.no_total = true;
    if (!store_message_list(svc->store, ctx, user, session_uuid, &f,
                            hi - lo + 1, 0, &page, err))
        return false;
    for (size_t i = 0; i < n; i++) {
        found[i] = false;
        for (size_t j = 0; j < page.len && !found[i]; j++)
            if (uuid_equal(&page.items[j].id, &ids[i])) {
                out[i] = page.items[j];
                found[i] = true;
            }
    }
    return true;
}

/*
 * A batch's keys, looked up all at once before any is claimed: one query
 * for the keys and one for the messages they name.  held[i]: key i
 * exists; known[i]: replays[i] holds the message it stands for.  A
 * replayed batch is answered from these two reads alone, where claiming
 * key by key cost three round trips per key; keys held without their
 * message (a writer still at work, or one that died) are left to
 * claim_key().  A single key is not looked up: claiming it is the
 * lookup.
 */
static bool
lookup_keys(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct message *msgs, size_t n, struct message *replays,
            bool *held, bool *known, size_t *nknown, struct error *err)
{
    const char **keys = arena_calloc(ctx->arena, n * sizeof(*keys));
    size_t *at = arena_calloc(ctx->arena, n * sizeof(*at));
    struct idem_key *ks = arena_calloc(ctx->arena, n * sizeof(*ks));
    struct uuid *ids = arena_calloc(ctx->arena, n * sizeof(*ids));
    struct message *found = arena_calloc(ctx->arena, n * sizeof(*found));
    bool *key_found = arena_calloc(ctx->arena, n * sizeof(*key_found));
    bool *have = arena_calloc(ctx->arena, n * sizeof(*have));
    size_t nkeys = 0, nids = 0;

    *nknown = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].client_message_id != NULL) {
            at[nkeys] = i;
            keys[nkeys++] = msgs[i].client_message_id;
        }
    if (nkeys < 2)
        return true;
    if (!store_idem_get_many(svc->store, ctx, user, &msgs[0].session_uuid, keys,
                             nkeys, ks, key_found, err))
        return false;
    for (size_t k = 0; k < nkeys; k++)
        if (key_found[k]) {
            held[at[k]] = true;
            ids[nids++] = ks[k].message_id;
        }
    if (nids == 0)
        return true;
    if (!get_messages(svc, ctx, user, &msgs[0].session_uuid, ks, key_found,
                      nkeys, ids, nids, found, have, err))
        return false;
    for (size_t k = 0, j = 0; k < nkeys; k++) {
        if (!key_found[k])
            continue;
        if (have[j]) {
            replays[at[k]] = found[j];
            known[at[k]] = true;
            (*nknown)++;
        }
        j++;
    }
    return true;
}

/* The keys of a batch that no one holds, claimed in one insert
 * (claimed[i]); a key someone claimed since the lookup stays unclaimed,
 * for claim_key(). */
static bool
claim_fresh(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct message *msgs, size_t n, const bool *held,
            bool *claimed, struct error *err)
{
    const char **keys = arena_calloc(ctx->arena, n * sizeof(*keys));
    struct idem_key *ks = arena_calloc(ctx->arena, n * sizeof(*ks));
    bool *got = arena_calloc(ctx->arena, n * sizeof(*got));
    size_t *at = arena_calloc(ctx->arena, n * sizeof(*at));
    int64_t now = clock_now_ms();
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (msgs[i].client_message_id == NULL || held[i])
            continue;
        at[m] = i;
        keys[m] = msgs[i].client_message_id;
        ks[m] = (struct idem_key){msgs[i].id, 0, now};
        m++;
    }
    if (m < 2)
        return true;
    if (!store_idem_claim_many(svc->store, ctx, user, &msgs[0].session_uuid,
                               keys, ks, m, got, err))
        return false;
    for (size_t k = 0; k < m; k++)
        claimed[at[k]] = got[k];
    return true;
}

/* Claims the key of every keyed message (claimed[i]), or finds what each
 * already names (replays[i]); *nreplayed counts the latter.  On failure
 * the keys claimed so far are released. */
static bool
claim_keys(struct service *svc, struct store_ctx *ctx, const char *user,
           const struct message *msgs, size_t n, struct message *replays,
           bool *claimed, size_t *nreplayed, struct error *err)
{
    bool *held = arena_calloc(ctx->arena, n * sizeof(*held));
    bool *known = arena_calloc(ctx->arena, n * sizeof(*known));

    *nreplayed = 0;
    if (!lookup_keys(svc, ctx, user, msgs, n, replays, held, known, nreplayed,
                     err))
        return false;
    /* A replay, whole or in part: claiming the other keys would only be
     * undone (service_message_append answers 409 for a part). */
    if (*nreplayed > 0)
        return true;
    if (!claim_fresh(svc, ctx, user, msgs, n, held, claimed, err))
        return false;
    for (size_t i = 0; i < n; i++) {
        enum claim c;

        if (msgs[i].client_message_id == NULL || claimed[i])
            continue;
        if (!claim_key(svc, ctx, user, &msgs[i], &replays[i], &c, err)) {
            release_keys(svc, ctx, user, msgs, claimed, n);
            return false;
        }
        if (c == CLAIM_OURS)
            claimed[i] = true;
        else
            (*nreplayed)++;
    }
    return true;
}

/* Marks the claimed keys done, all in one write when there are several;
 * if this fails a key still names its stored message, which is all a
 * replay needs. */
static void
complete_keys(struct service *svc, struct store_ctx *ctx, const char *user,
              const struct message *msgs, const bool *claimed, size_t n)
{
    const char **keys = arena_calloc(ctx->arena, n * sizeof(*keys));
    struct uuid *ids = arena_calloc(ctx->arena, n * sizeof(*ids));
    int64_t *seqs = arena_calloc(ctx->arena, n * sizeof(*seqs));
    struct error ignored = ERROR_INIT;
    size_t m = 0;

    for (size_t i = 0; i < n; i++)
        if (claimed[i]) {
            keys[m] = msgs[i].client_message_id;
            ids[m] = msgs[i].id;
            seqs[m++] = msgs[i].seq;
        }
    if (m == 1)
        store_idem_complete(svc->store, ctx, user, &msgs[0].session_uuid,
                            keys[0], &ids[0], seqs[0], &ignored);
    else if (m > 1)
        store_idem_complete_many(svc->store, ctx, user, &msgs[0].session_uuid,
                                 keys, ids, seqs, m, &ignored);
}

/*
 * Where the message quotas are enforced for every append: single, batch,
 * and the conversation's (which appends through service_message_append()
 * too).  One findAndModify reserves the seq numbers and adds the batch's
 * messages and bytes to the session's counters, matching only while the
 * session is active and both stay within quota_messages_per_session and
 * quota_bytes_per_session; so concurrent appends can never take a session
 * past a quota, and a batch that does not fit stores nothing.  Nothing is
 * written before it but the batch's idempotency keys, which the caller
 * releases on failure.
 */
/* What a reservation of msgs adds to the session's counters (each
 * message's bytes set here), within the session quotas; by_name: reserve
 * on the session of that name rather than by its id. */
static struct store_reserve
append_reservation(const struct service *svc, struct message *msgs, size_t n,
                   const char *by_name)
{
    struct store_reserve r = {
        {(int64_t)n, 0, 0}, service_session_quotas(svc->cfg), true, by_name};

    for (size_t i = 0; i < n; i++) {
        msgs[i].bytes = store_message_bytes(&msgs[i]);
        r.add.bytes += msgs[i].bytes;
    }
    return r;
}

static bool
reserve_append(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, struct message *msgs, size_t n,
               int64_t now, struct session *s, struct error *err)
{
    struct store_reserve r = append_reservation(svc, msgs, n, NULL);

    if (service_reserve(svc, ctx, user, &s->id, &r, now, s, err))
        return true;
    if (err->code != ERR_NOT_FOUND)
        return false;
    /* Deleted since we read it (maybe made again under the name). */
    return active_session(svc, ctx, user, session_id, s, err) &&
           error_set(err, ERR_CONFLICT, NULL, "the session changed; try again");
}

/* The messages' ids (the client's or new ones) and their session. */
static void
fill_ids(struct message *msgs, const struct message_input *in, size_t n,
         const char *user, const struct session *s)
{
    for (size_t i = 0; i < n; i++) {
        if (in[i].id != NULL)
            msgs[i].id = *in[i].id;
        else
            uuid_generate(&msgs[i].id);
        msgs[i].session_uuid = s->id;
        msgs[i].user_id = user;
        msgs[i].session_id = s->session_id;
    }
}

/*
 * An append without idempotency keys reserves its seqs on the session
 * named session_id straight away, without reading it first: the
 * reservation's conditions (active, within quota) are the checks, and
 * its answer is the session.  Only when it finds no session with room
 * does the caller read the session, to say why (or to succeed after all,
 * if the session changed in between).  This saves a database round trip
 * on the most common write.  false with ERR_NOT_FOUND: take that path.
 */
static bool
reserve_by_name(struct service *svc, struct store_ctx *ctx, const char *user,
                const char *session_id, struct message *msgs, size_t n,
                int64_t now, struct session *s, struct error *err)
{
    struct store_reserve r = append_reservation(svc, msgs, n, session_id);

    return store_session_reserve_seq(svc->store, ctx, user, NULL, &r, now, s,
                                     err);
}

bool
service_message_append(struct service *svc, struct store_ctx *ctx,
                       const char *user, const char *session_id,
                       const struct message_input *in, size_t n, bool batch,
                       const char *idem_header, struct message **out,
                       bool *created, struct error *err)
{
    struct message *msgs = NULL, *replays;
    size_t nreplayed;
    struct session s;
    int64_t now, first;
    bool *claimed;
    bool keyed = false, reserved = false;

    *created = false;
    if (!check_append(svc, ctx, in, n, batch, idem_header, &msgs, err))
        return false;
    replays = arena_calloc(ctx->arena, n * sizeof(*replays));
    claimed = arena_calloc(ctx->arena, n * sizeof(*claimed));
    for (size_t i = 0; i < n; i++)
        keyed = keyed || msgs[i].client_message_id != NULL;
    now = clock_now_ms();
    if (!keyed) {
        reserved =
            reserve_by_name(svc, ctx, user, session_id, msgs, n, now, &s, err);
        if (!reserved && err->code != ERR_NOT_FOUND)
            return false;
        if (!reserved)
            error_clear(err);
    }
    if (reserved) {
        fill_ids(msgs, in, n, user, &s);
    } else {
        if (!active_session(svc, ctx, user, session_id, &s, err))
            return false;
        fill_ids(msgs, in, n, user, &s);
        if (!claim_keys(svc, ctx, user, msgs, n, replays, claimed, &nreplayed,
                        err))
            return false;
        if (nreplayed > 0) {
            release_keys(svc, ctx, user, msgs, claimed, n);
            if (nreplayed < n)
                return error_set(err, ERR_CONFLICT, "client_message_id",
                                 "some messages of this batch were stored "
                                 "before under their client_message_id and "
                                 "others were not");
            *out = replays;
            return true; /* a replay: 200 with what was stored the first time */
        }
        now = clock_now_ms();
        if (!reserve_append(svc, ctx, user, session_id, msgs, n, now, &s,
                            err)) {
            release_keys(svc, ctx, user, msgs, claimed, n);
            return false;
        }
    }
    first = s.last_seq - (int64_t)n + 1;
    for (size_t i = 0; i < n; i++) {
        msgs[i].seq = first + (int64_t)i;
        msgs[i].created_at = msgs[i].updated_at = now;
    }
    if (!store_message_insert(svc->store, ctx, msgs, n, err)) {
        struct error e = *err;
        struct store_counts reserved_counts = {(int64_t)n, 0, 0};

        for (size_t i = 0; i < n; i++)
            reserved_counts.bytes += msgs[i].bytes;
        undo_append(svc, ctx, user, msgs, claimed, n, &reserved_counts);
        *err = e;
        return false;
    }
    complete_keys(svc, ctx, user, msgs, claimed, n);
    *out = msgs;
    *created = true;
    return true;
}

/*
 * A page costs the same in a session of 10^2 or 10^6 messages: without a
 * role, search or date filter, total is the session's message_count (the
 * session is read anyway), never a count over its messages; a seq range
 * or order does not change it.  With such a filter the matches are
 * counted, which the per-session quota bounds.  has_more is read by the
 * store either way (one message past the page).
 */
bool
service_message_list(struct service *svc, struct store_ctx *ctx,
                     const char *user, const char *session_id,
                     const struct message_filter *f, int64_t limit,
                     int64_t offset, struct message_page *out,
                     struct error *err)
{
    struct message_filter mine = *f;
    bool unfiltered = f->role < 0 && f->search == NULL &&
                      f->created_after == STORE_NO_TIME &&
                      f->created_before == STORE_NO_TIME;
    struct session s;

    if (unfiltered)
        mine.no_total = true;
    if (!service_session_get(svc, ctx, user, session_id, &s, err) ||
        !store_message_list(svc->store, ctx, user, &s.id, &mine, limit, offset,
                            out, err))
        return false;
    if (unfiltered && !f->no_total) {
        /* A message stored after the session was read can be on the
         * page: the total never says less than the page shows. */
        out->total = s.message_count;
        if (out->len > 0 && out->total < offset + (int64_t)out->len)
            out->total = offset + (int64_t)out->len;
    }
    return true;
}

/* The session of a write that removes what its counters count (or may):
 * read with store_session_mark(), so the change is marked before it
 * starts (store.h, "Counters"); 404 or 409 as active_session(). */
static bool
marked_session(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, struct session *s, struct error *err)
{
    if (!validate_session_id(session_id, NULL))
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    if (!store_session_mark(svc->store, ctx, user, session_id, clock_now_ms(),
                            s, err)) {
        if (err->code == ERR_NOT_FOUND)
            error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        return false;
    }
    if (s->status != STATUS_ACTIVE)
        return error_set(err, ERR_CONFLICT, "status",
                         "the session is %s; only an active session takes "
                         "message writes",
                         status_name(s->status));
    return true;
}

/* Finds the session and parses the message id; a malformed id is simply
 * a message that does not exist.  A write reads the session marked. */
static bool
locate(struct service *svc, struct store_ctx *ctx, const char *user,
       const char *session_id, const char *message_id, bool for_write,
       struct session *s, struct uuid *id, struct error *err)
{
    if (for_write ? !marked_session(svc, ctx, user, session_id, s, err)
                  : !service_session_get(svc, ctx, user, session_id, s, err))
        return false;
    if (!uuid_parse(message_id, id))
        return error_set(err, ERR_NOT_FOUND, NULL, "message not found");
    return true;
}

static bool
not_found_message(struct error *err)
{
    if (err->code == ERR_NOT_FOUND)
        error_set(err, ERR_NOT_FOUND, NULL, "message not found");
    return false;
}

bool
service_message_get(struct service *svc, struct store_ctx *ctx,
                    const char *user, const char *session_id,
                    const char *message_id, struct message *out,
                    struct error *err)
{
    struct session s;
    struct uuid id;

    if (!locate(svc, ctx, user, session_id, message_id, false, &s, &id, err))
        return false;
    if (!store_message_get(svc->store, ctx, user, &s.id, &id, out, err))
        return not_found_message(err);
    return true;
}

/* The change a PATCH asks for, checked. */
static bool
check_patch(const struct config *cfg, const struct json_value *content,
            const struct json_value *extra_data, struct message_change *change,
            struct error *err)
{
    memset(change, 0, sizeof(*change));
    if (content != NULL) {
        if (!validate_text("content", content, 0,
                           (size_t)cfg->max_content_bytes, err))
            return false;
        /* The item (if any) holds the old text: /v1 shows the message
         * from its new content instead (service_openai.h). */
        change->fields |= SET_CONTENT | CLEAR_ITEM;
        change->content = content->u.s.ptr;
    }
    if (extra_data != NULL) {
        change->fields |= SET_EXTRA_DATA;
        if (extra_data->type != JSON_NULL) {
            if (!validate_document("extra_data", extra_data,
                                   (size_t)cfg->max_metadata_bytes,
                                   cfg->max_metadata_depth, false, err))
                return false;
            change->extra_data = extra_data;
        }
    }
    return true;
}

/*
 * One round of a PATCH: read the message, reserve what it grows by (the
 * bytes quota), apply the change only if the message is still as read
 * (its updated_at), then give back what it shrank by.  *again: another
 * writer changed the message in between; what was reserved has been given
 * back and the caller reads again.
 */
static bool
patch_round(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct session *s, const struct uuid *id,
            struct message_change *change, struct message *out, bool *again,
            struct error *err)
{
    struct store_reserve r = {
        {0, 0, 0}, service_session_quotas(svc->cfg), true, NULL};
    struct store_counts delta = {0, 0, 0};
    struct session after;
    struct message cur, next;

    *again = false;
    if (!store_message_get(svc->store, ctx, user, &s->id, id, &cur, err))
        return not_found_message(err);
    next = cur;
    if (change->fields & SET_CONTENT)
        next.content = change->content;
    if (change->fields & SET_EXTRA_DATA)
        next.extra_data = change->extra_data;
    if (change->fields & CLEAR_ITEM)
        next.item = NULL;
    change->bytes = store_message_bytes(&next);
    change->now = clock_now_ms();
    change->if_updated_at = cur.updated_at;
    delta.bytes = change->bytes - cur.bytes;
    if (delta.bytes > 0) {
        r.add.bytes = delta.bytes;
        if (!service_reserve(svc, ctx, user, &s->id, &r, change->now, &after,
                             err))
            return false;
    }
    if (!store_message_update(svc->store, ctx, user, &s->id, id, change, out,
                              err)) {
        struct error e = *err;
        struct store_counts back = {0, -r.add.bytes, 0};

        /* Not applied (certainly, unless the reply was lost): the
         * reservation goes back; after a lost reply it stays, too high,
         * for the sweeper. */
        if (r.add.bytes > 0 && e.retry != RETRY_IDEMPOTENT &&
            !store_session_touch(svc->store, ctx, user, &s->id, &back,
                                 change->now, false, err))
            log_warn("could not give back %lld bytes (the sweeper recounts): "
                     "%s",
                     (long long)r.add.bytes, err->message);
        *err = e;
        *again = e.code == ERR_NOT_FOUND;
        return false;
    }
    /* Grown: reserved above, which moved the session's activity too.
     * Shrunk or the same: give back the difference, and move it. */
    if (delta.bytes > 0)
        return true;
    if (!store_session_touch(svc->store, ctx, user, &s->id, &delta, change->now,
                             true, err)) {
        log_warn("message changed but session not touched: %s", err->message);
        error_clear(err);
    }
    return true;
}

bool
service_message_patch(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id,
                      const char *message_id, const struct json_value *content,
                      const struct json_value *extra_data, struct message *out,
                      struct error *err)
{
    struct message_change change;
    struct session s;
    struct uuid id;

    if (!check_patch(svc->cfg, content, extra_data, &change, err) ||
        !locate(svc, ctx, user, session_id, message_id, true, &s, &id, err))
        return false;
    if (change.fields == 0) {
        if (!store_message_get(svc->store, ctx, user, &s.id, &id, out, err))
            return not_found_message(err);
        return true;
    }
    for (int round = 0; round < MAX_PATCH_ROUNDS; round++) {
        bool again = false;

        if (patch_round(svc, ctx, user, &s, &id, &change, out, &again, err))
            return true;
        if (!again)
            return false;
        error_clear(err);
    }
    return error_set(err, ERR_CONFLICT, NULL,
                     "the message is changing too fast; try again");
}

bool
service_message_delete(struct service *svc, struct store_ctx *ctx,
                       const char *user, const char *session_id,
                       const char *message_id, struct error *err)
{
    struct store_counts delta = {-1, 0, 0};
    struct session s;
    struct uuid id;

    if (!locate(svc, ctx, user, session_id, message_id, true, &s, &id, err))
        return false;
    if (!store_message_delete(svc->store, ctx, user, &s.id, &id, &delta.bytes,
                              err))
        return not_found_message(err);
    delta.bytes = -delta.bytes;
    if (!store_session_touch(svc->store, ctx, user, &s.id, &delta,
                             clock_now_ms(), true, err)) {
        log_warn("message deleted but its counts not given back (the sweeper "
                 "recounts): %s",
                 err->message);
        error_clear(err);
    }
    return true;
}

/*
 * Clears the messages the session had when the clear began (seq up to
 * its last_seq then): appends that reserve after that keep theirs.  The
 * counts given back are what was deleted: the number is delete_many's;
 * the bytes are the tally taken just before, which is exact unless
 * another write removed or added some of those messages in between (a
 * delete of one of them, an append whose insert lands late).  Then the
 * tally's bytes are given back only if at least that many messages went
 * (some bytes may stay counted, never too few); the session is marked,
 * and the sweeper's recount settles it.
 */
bool
service_message_clear(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id,
                      int64_t *deleted, struct error *err)
{
    struct store_counts tally, back = {0, 0, 0};
    struct session s;

    *deleted = 0;
    if (!marked_session(svc, ctx, user, session_id, &s, err) ||
        !store_session_tally(svc->store, ctx, user, &s.id, s.last_seq, &tally,
                             err) ||
        !store_message_clear(svc->store, ctx, user, &s.id, s.last_seq, deleted,
                             err))
        return false;
    back.messages = -*deleted;
    if (*deleted >= tally.messages)
        back.bytes = -tally.bytes;
    if (!store_session_touch(svc->store, ctx, user, &s.id, &back,
                             clock_now_ms(), true, err)) {
        log_warn("messages cleared but their counts not given back (the "
                 "sweeper recounts): %s",
                 err->message);
        error_clear(err);
    }
    return true;
}

void
service_message_filter_all(struct message_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->after_seq = f->before_seq = STORE_NO_SEQ;
    f->role = -1;
    f->created_after = f->created_before = STORE_NO_TIME;
}

static int64_t
message_tokens(const struct message *m)
{
    return (int64_t)((strlen(m->content) + 3) / 4);
}

/* True if an assistant message among run[0..n) carries call id `id`,
 * in its tool_call_id or as an "id" in extra_data.tool_calls[]. */
static bool
call_in_run(const struct message *run, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        const struct json_value *calls;

        if (run[i].role != ROLE_ASSISTANT)
            continue;
        if (run[i].tool_call_id != NULL && strcmp(run[i].tool_call_id, id) == 0)
            return true;
        calls = run[i].extra_data != NULL
                    ? json_get(run[i].extra_data, "tool_calls")
                    : NULL;
        if (calls == NULL || calls->type != JSON_ARRAY)
            continue;
        for (size_t k = 0; k < calls->u.a.len; k++) {
            const struct json_value *cid = json_get(calls->u.a.items[k], "id");

            if (cid != NULL && cid->type == JSON_STRING &&
                strcmp(cid->u.s.ptr, id) == 0)
                return true;
        }
    }
    return false;
}

/* How long the newest unbroken run within max_tokens is: it stops at the
 * first message that would pass the budget, so it never has a hole. */
static size_t
run_length(const struct message *newest, size_t n, int64_t max_tokens)
{
    size_t take = 0;
    int64_t sum = 0;

    while (take < n && sum + message_tokens(&newest[take]) <= max_tokens) {
        sum += message_tokens(&newest[take]);
        take++;
    }
    return take;
}

size_t
service_message_context_pick(const struct message *newest, size_t n,
                             int64_t max_tokens, struct message *out,
                             int64_t *tokens)
{
    size_t take = run_length(newest, n, max_tokens), kept = 0;
    for (size_t i = 0; i < take; i++)
        out[i] = newest[take - 1 - i]; /* oldest first */
    *tokens = 0;
    for (size_t i = 0; i < take; i++) {
        if (out[i].role == ROLE_TOOL &&
            (out[i].tool_call_id == NULL ||
             !call_in_run(out, take, out[i].tool_call_id)))
            continue;
        *tokens += message_tokens(&out[i]);
        out[kept++] = out[i];
    }
    return kept;
}

bool
service_message_context(struct service *svc, struct store_ctx *ctx,
                        const char *user, const char *session_id, int64_t limit,
                        int64_t max_tokens, struct message_page *out,
                        int64_t *tokens, struct error *err)
{
    return service_message_context_bounded(svc, ctx, user, session_id, limit,
                                           max_tokens, 0, NULL, out, tokens,
                                           NULL, err);
}

/* How many of newest[0..n) (newest first) fit in max_bytes, each item
 * taking size(item) and a comma; at least one, so a run can always
 * start. */
static size_t
fit_bytes(const struct message *newest, size_t n, size_t max_bytes,
          service_message_size_fn *size)
{
    size_t used = 0;

    for (size_t i = 0; i < n; i++) {
        used += size(&newest[i]) + 1;
        if (used > max_bytes && i > 0)
            return i;
    }
    return n;
}

bool
service_message_context_bounded(struct service *svc, struct store_ctx *ctx,
                                const char *user, const char *session_id,
                                int64_t limit, int64_t max_tokens,
                                size_t max_bytes, service_message_size_fn *size,
                                struct message_page *out, int64_t *tokens,
                                bool *cut, struct error *err)
{
    struct message_filter f;
    struct message_page newest;
    struct session s;
    size_t fit;

    service_message_filter_all(&f);
    f.descending = true;
    f.no_total = true;
    if (!service_session_get(svc, ctx, user, session_id, &s, err) ||
        !store_message_list(svc->store, ctx, user, &s.id, &f, limit, 0, &newest,
                            err))
        return false;
    /* The byte bound shortens the run as the token bound does: the run
     * ends, oldest side, at the first message that would not fit. */
    fit = newest.len;
    if (max_bytes > 0 && size != NULL)
        fit = fit_bytes(newest.items, newest.len, max_bytes, size);
    if (cut != NULL)
        *cut = fit < run_length(newest.items, newest.len, max_tokens);
    out->items =
        arena_alloc(ctx->arena, (newest.len + 1) * sizeof(*out->items));
    out->len = service_message_context_pick(newest.items, fit, max_tokens,
                                            out->items, tokens);
    out->total = (int64_t)out->len;
    return true;
}

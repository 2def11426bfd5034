#include <string.h>

#include "agent.h"
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
 * what went in, gives back the count, frees the keys.  Best effort: what
 * it cannot undo it logs. */
static void
undo_append(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct message *msgs, const bool *claimed, size_t n)
{
    struct error e = ERROR_INIT;
    struct uuid *ids = arena_alloc(ctx->arena, n * sizeof(*ids));

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
    if (!store_message_delete_ids(svc->store, ctx, user, ids, n, &e))
        log_warn("could not remove a failed batch: %s", e.message);
    if (!store_session_touch(svc->store, ctx, user, &msgs[0].session_uuid,
                             -(int64_t)n, clock_now_ms(), &e))
        log_warn("could not give back message_count %zu: %s", n, e.message);
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

/* Claims the key of every keyed message (claimed[i]), or finds what each
 * already names (replays[i]); *nreplayed counts the latter.  On failure
 * the keys claimed so far are released. */
static bool
claim_keys(struct service *svc, struct store_ctx *ctx, const char *user,
           const struct message *msgs, size_t n, struct message *replays,
           bool *claimed, size_t *nreplayed, struct error *err)
{
    *nreplayed = 0;
    for (size_t i = 0; i < n; i++) {
        enum claim c;

        if (msgs[i].client_message_id == NULL)
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

    *created = false;
    if (!check_append(svc, ctx, in, n, batch, idem_header, &msgs, err) ||
        !active_session(svc, ctx, user, session_id, &s, err))
        return false;
    replays = arena_calloc(ctx->arena, n * sizeof(*replays));
    claimed = arena_calloc(ctx->arena, n * sizeof(*claimed));
    for (size_t i = 0; i < n; i++) {
        uuid_generate(&msgs[i].id);
        msgs[i].session_uuid = s.id;
        msgs[i].user_id = user;
        msgs[i].session_id = s.session_id;
    }
    if (!claim_keys(svc, ctx, user, msgs, n, replays, claimed, &nreplayed, err))
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
    if (!store_session_reserve_seq(svc->store, ctx, user, &s.id, (int64_t)n,
                                   now, &s, err)) {
        release_keys(svc, ctx, user, msgs, claimed, n);
        if (err->code != ERR_NOT_FOUND)
            return false;
        /* Deleted or made inactive since we read it. */
        return active_session(svc, ctx, user, session_id, &s, err) &&
               error_set(err, ERR_CONFLICT, NULL,
                         "the session changed; try again");
    }
    first = s.last_seq - (int64_t)n + 1;
    for (size_t i = 0; i < n; i++) {
        msgs[i].seq = first + (int64_t)i;
        msgs[i].created_at = msgs[i].updated_at = now;
    }
    if (!store_message_insert(svc->store, ctx, msgs, n, err)) {
        struct error e = *err;

        undo_append(svc, ctx, user, msgs, claimed, n);
        *err = e;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct error ignored = ERROR_INIT;

        /* Marks the key done; if this fails the key still names the
         * stored message, which is all a replay needs. */
        if (claimed[i])
            store_idem_complete(svc->store, ctx, user, &s.id,
                                msgs[i].client_message_id, &msgs[i].id,
                                msgs[i].seq, &ignored);
    }
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

/* Finds the session and parses the message id; a malformed id is simply
 * a message that does not exist. */
static bool
locate(struct service *svc, struct store_ctx *ctx, const char *user,
       const char *session_id, const char *message_id, bool for_write,
       struct session *s, struct uuid *id, struct error *err)
{
    if (for_write ? !active_session(svc, ctx, user, session_id, s, err)
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

bool
service_message_patch(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id,
                      const char *message_id, const struct json_value *content,
                      const struct json_value *extra_data, struct message *out,
                      struct error *err)
{
    const struct config *cfg = svc->cfg;
    struct message_change change;
    struct session s;
    struct uuid id;

    memset(&change, 0, sizeof(change));
    if (content != NULL) {
        if (!validate_text("content", content, 0,
                           (size_t)cfg->max_content_bytes, err))
            return false;
        /* The item (if any) holds the old text: /v1 shows the message
         * from its new content instead (service_openai.h). */
        change.fields |= SET_CONTENT | CLEAR_ITEM;
        change.content = content->u.s.ptr;
    }
    if (extra_data != NULL) {
        change.fields |= SET_EXTRA_DATA;
        if (extra_data->type != JSON_NULL) {
            if (!validate_document("extra_data", extra_data,
                                   (size_t)cfg->max_metadata_bytes,
                                   cfg->max_metadata_depth, false, err))
                return false;
            change.extra_data = extra_data;
        }
    }
    if (!locate(svc, ctx, user, session_id, message_id, true, &s, &id, err))
        return false;
    if (change.fields == 0) {
        if (!store_message_get(svc->store, ctx, user, &s.id, &id, out, err))
            return not_found_message(err);
        return true;
    }
    change.now = clock_now_ms();
    if (!store_message_update(svc->store, ctx, user, &s.id, &id, &change, out,
                              err))
        return not_found_message(err);
    if (!store_session_touch(svc->store, ctx, user, &s.id, 0, change.now,
                             err)) {
        log_warn("message changed but session not touched: %s", err->message);
        error_clear(err);
    }
    return true;
}

bool
service_message_delete(struct service *svc, struct store_ctx *ctx,
                       const char *user, const char *session_id,
                       const char *message_id, struct error *err)
{
    struct session s;
    struct uuid id;

    if (!locate(svc, ctx, user, session_id, message_id, true, &s, &id, err))
        return false;
    if (!store_message_delete(svc->store, ctx, user, &s.id, &id, err))
        return not_found_message(err);
    if (!store_session_touch(svc->store, ctx, user, &s.id, -1, clock_now_ms(),
                             err)) {
        log_warn("message deleted but message_count not updated: %s",
                 err->message);
        error_clear(err);
    }
    return true;
}

bool
service_message_clear(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id,
                      int64_t *deleted, struct error *err)
{
    struct session s;

    *deleted = 0;
    if (!active_session(svc, ctx, user, session_id, &s, err) ||
        !store_message_clear(svc->store, ctx, user, &s.id, deleted, err))
        return false;
    /* Give back exactly what was deleted: appends running at the same
     * time keep their own counts. */
    if (!store_session_touch(svc->store, ctx, user, &s.id, -*deleted,
                             clock_now_ms(), err)) {
        log_warn("messages cleared but message_count not updated: %s",
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

size_t
service_message_context_pick(const struct message *newest, size_t n,
                             int64_t max_tokens, struct message *out,
                             int64_t *tokens)
{
    size_t take = 0, kept = 0;
    int64_t sum = 0;

    /* The newest unbroken run that fits: stop at the first message that
     * would pass the budget, so the run never has a hole. */
    while (take < n && sum + message_tokens(&newest[take]) <= max_tokens) {
        sum += message_tokens(&newest[take]);
        take++;
    }
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
    struct message_filter f;
    struct message_page newest;
    struct session s;

    service_message_filter_all(&f);
    f.descending = true;
    f.no_total = true;
    if (!service_session_get(svc, ctx, user, session_id, &s, err) ||
        !store_message_list(svc->store, ctx, user, &s.id, &f, limit, 0, &newest,
                            err))
        return false;
    out->items =
        arena_alloc(ctx->arena, (newest.len + 1) * sizeof(*out->items));
    out->len = service_message_context_pick(newest.items, newest.len,
                                            max_tokens, out->items, tokens);
    out->total = (int64_t)out->len;
    return true;
}

bool
service_message_conversation(struct service *svc, struct store_ctx *ctx,
                             const char *user,
                             const struct conversation_input *in,
                             struct conversation_result *out, struct error *err)
{
    const struct agent_backend *agent = agent_find(svc->cfg->agent_backend);
    struct json_value ret = {.type = JSON_STRING,
                             .u.s = {.ptr = "return", .len = 6}};
    struct session_create create = in->session;
    struct json_value role = {.type = JSON_STRING,
                              .u.s = {.ptr = "assistant", .len = 9}};
    struct json_value content = {.type = JSON_STRING};
    struct message_input reply_in = {.role = &role, .content = &content};
    struct message *stored, *reply;
    const char *text;
    struct session s;
    bool created;

    if (in->n == 0 || in->n > (size_t)svc->cfg->max_batch_messages)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages must hold 1 to %d messages",
                         svc->cfg->max_batch_messages);
    if (agent == NULL)
        return error_set(err, ERR_INTERNAL, NULL, "no agent backend");
    /* The messages are checked before the session is made, so a bad
     * request leaves nothing behind. */
    if (!decode_batch(svc, ctx, in->messages, in->n, true,
                      arena_calloc(ctx->arena, in->n * sizeof(struct message)),
                      err))
        return false;
    /* Get or create the session.  Only an existing session of the caller
     * is reused: another user's session of that name does not exist. */
    create.if_exists = &ret;
    if (!service_session_create(svc, ctx, user, &create, &s, &created, err) ||
        !service_message_append(svc, ctx, user, s.session_id, in->messages,
                                in->n, true, NULL, &stored, &created, err) ||
        !agent->reply(ctx->arena, stored, in->n, &text, err))
        return false;
    content.u.s.ptr = text;
    content.u.s.len = strlen(text);
    if (!service_message_append(svc, ctx, user, s.session_id, &reply_in, 1,
                                false, NULL, &reply, &created, err))
        return false;
    /* The reply's seq is the session's count of messages ever appended;
     * the count itself comes from a fresh read so deletions are seen. */
    if (!service_session_get(svc, ctx, user, s.session_id, &s, err))
        return false;
    out->session_id = s.session_id;
    out->session_uuid = s.id;
    out->response = text;
    out->messages_count = s.message_count;
    out->session_active = s.status == STATUS_ACTIVE;
    return true;
}

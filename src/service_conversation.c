/*
 * service_conversation.c - one conversation turn, all or none and
 * idempotent (the rules are in service_conversation.h).
 *
 * The order of the steps is the point:
 *   1. check everything the client sent (nothing is written for a 400);
 *   2. get or make the session; it must be active;
 *   3. claim the turn's key, naming the reply's id (made now), or answer
 *      the turn the key already stands for;
 *   4. read the context window and ask the backend, with the time it may
 *      take cut so that storing the turn still fits in the deadline;
 *   5. check that the reply can be stored, and that the client is still
 *      there;
 *   6. store the new messages and the reply as one batch (the append
 *      path: seq reservation, insert, undo on failure), the reply under
 *      the key;
 *   7. add the token usage to the session's metrics.
 * A failure before 6 releases the key and takes back a session made in
 * 2, so nothing of the turn stays; after 6 the turn is stored and a
 * replay answers it.
 */
#include <string.h>

#include "clock.h"
#include "log.h"
#include "rng.h"
#include "service_conversation.h"
#include "validate.h"
#include "banned.h"

/* How long a replay waits between two looks at a key whose turn is still
 * running. */
#define CLAIM_POLL_MS 100

static const struct json_value json_assistant = {
    .type = JSON_STRING, .u.s = {.ptr = "assistant", .len = 9}};
static const struct json_value json_return = {
    .type = JSON_STRING, .u.s = {.ptr = "return", .len = 6}};

/* The most new messages a turn takes: they and the reply are stored as
 * one batch. */
static int
max_turn_messages(const struct config *cfg)
{
    return cfg->max_batch_messages > 1 ? cfg->max_batch_messages - 1 : 0;
}

/* The turn's key: the body's client_message_id or the Idempotency-Key
 * header (both: they must agree), checked as an append checks a key. */
static bool
check_key(struct service *svc, struct store_ctx *ctx,
          const struct conversation_input *in, const char **key,
          struct error *err)
{
    struct json_value header = {.type = JSON_STRING};
    struct message_input probe;
    struct message m;

    *key = NULL;
    if (in->client_message_id == NULL && in->idem_header == NULL)
        return true;
    memset(&probe, 0, sizeof(probe));
    probe.role = &json_assistant;
    probe.content =
        &(struct json_value){.type = JSON_STRING, .u.s = {.ptr = "", .len = 0}};
    probe.client_message_id = in->client_message_id;
    if (in->client_message_id != NULL &&
        !service_message_decode(svc, ctx, false, 0, &probe, &m, err))
        return false;
    if (in->idem_header != NULL) {
        header.u.s.ptr = in->idem_header;
        header.u.s.len = strlen(in->idem_header);
        probe.client_message_id = &header;
        if (!service_message_decode(svc, ctx, false, 0, &probe, &m, err)) {
            err->param = "Idempotency-Key";
            return false;
        }
        if (in->client_message_id != NULL &&
            strcmp(in->client_message_id->u.s.ptr, in->idem_header) != 0)
            return error_set(err, ERR_VALIDATION, "client_message_id",
                             "client_message_id and Idempotency-Key differ");
    }
    *key = m.client_message_id;
    return true;
}

/* Everything the client sent, before anything is read or written. */
static bool
check_turn(struct service *svc, struct store_ctx *ctx,
           const struct conversation_input *in, struct message *msgs,
           const char **key, bool *stream, struct error *err)
{
    int max = max_turn_messages(svc->cfg);

    if (in->n == 0 || in->n > (size_t)max)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages must hold 1 to %d messages (a turn's "
                         "messages and its reply are stored as one batch "
                         "of at most max_batch_messages)",
                         max);
    for (size_t i = 0; i < in->n; i++) {
        if (!service_message_decode(svc, ctx, true, i, &in->messages[i],
                                    &msgs[i], err))
            return false;
        if (msgs[i].client_message_id != NULL)
            return error_set(
                err, ERR_VALIDATION,
                arena_printf(ctx->arena, "messages[%zu].client_message_id", i),
                "a turn has one key: give client_message_id "
                "beside messages, not on a message");
    }
    if (!check_key(svc, ctx, in, key, err))
        return false;
    *stream = false;
    if (in->stream != NULL && in->stream->type != JSON_NULL) {
        if (in->stream->type != JSON_BOOL)
            return error_set(err, ERR_VALIDATION, "stream",
                             "stream must be true or false");
        *stream = in->stream->u.b;
    }
    if (in->tools != NULL && in->tools->type != JSON_NULL &&
        in->tools->type != JSON_ARRAY)
        return error_set(err, ERR_VALIDATION, "tools",
                         "tools must be an array of tool definitions");
    if (in->tool_choice != NULL && in->tool_choice->type != JSON_NULL &&
        in->tool_choice->type != JSON_STRING &&
        in->tool_choice->type != JSON_OBJECT)
        return error_set(err, ERR_VALIDATION, "tool_choice",
                         "tool_choice must be a string or an object");
    return true;
}

enum turn_claim {
    TURN_OURS,   /* run the turn */
    TURN_REPLAY, /* the key's reply is stored: answer it */
};

/* Claims key in the session for reply_id, or finds the reply it already
 * stands for (into *replay).  A key whose turn is still running is
 * waited for, within the deadline, asking cb->poll between looks. */
static bool
claim_turn(struct service *svc, struct store_ctx *ctx, const char *user,
           const struct session *s, const char *key,
           const struct uuid *reply_id, const struct llm_callbacks *cb,
           struct message *replay, enum turn_claim *out, struct error *err)
{
    const int64_t stale_ms = 2 * (int64_t)svc->cfg->conversation_deadline_ms;
    struct idem_key mine = {*reply_id, 0, clock_now_ms()};

    for (;;) {
        struct idem_key held;

        if (store_idem_claim(svc->store, ctx, user, &s->id, key, &mine, err)) {
            *out = TURN_OURS;
            return true;
        }
        if (err->code != ERR_DUPLICATE)
            return false;
        if (!store_idem_get(svc->store, ctx, user, &s->id, key, &held, err)) {
            if (err->code == ERR_NOT_FOUND)
                continue; /* released meanwhile: claim again */
            return false;
        }
        if (uuid_equal(&held.message_id, reply_id)) {
            *out = TURN_OURS; /* our own claim, whose first reply was lost */
            return true;
        }
        if (store_message_get(svc->store, ctx, user, &s->id, &held.message_id,
                              replay, err)) {
            *out = TURN_REPLAY;
            return true;
        }
        if (err->code != ERR_NOT_FOUND)
            return false;
        /* The key names a reply that is not there: its turn is still
         * running, or its worker died, or the reply was deleted since.
         * Take the key over in the last two cases. */
        if (held.seq > 0 || clock_now_ms() - held.created_at > stale_ms) {
            if (store_idem_replace(svc->store, ctx, user, &s->id, key,
                                   &held.message_id, &mine, err)) {
                *out = TURN_OURS;
                return true;
            }
            if (err->code != ERR_NOT_FOUND)
                return false;
            continue;
        }
        if (clock_mono_ms() + CLAIM_POLL_MS >= ctx->deadline_ms)
            return error_set(err, ERR_CONFLICT, "client_message_id",
                             "a turn with this client_message_id is still "
                             "running; try again");
        if (cb->poll != NULL && !cb->poll(cb->arg, err))
            return false;
        clock_sleep_ms(CLAIM_POLL_MS);
    }
}

/* Best effort, and only when a try can end by the deadline: a key left
 * behind is taken over once stale, a session left behind is an empty
 * one. */
static void
release_key(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct session *s, const char *key,
            const struct uuid *reply_id)
{
    struct error e = ERROR_INIT;

    if (!store_try_fits(svc->store, ctx)) {
        log_warn("conversation: no time left to release a turn's key");
        return;
    }
    if (!store_idem_release(svc->store, ctx, user, &s->id, key, reply_id, &e))
        log_warn("conversation: could not release a turn's key: %s", e.message);
}

/* Takes back the session this turn made, as a delete does (tombstone
 * first, so the sweeper finishes what a crash cuts short), but only
 * while it holds no message: a message another request stored in it
 * meanwhile keeps it. */
static void
take_back_session(struct service *svc, struct store_ctx *ctx, const char *user,
                  const struct session *s)
{
    struct error e = ERROR_INIT;
    int64_t purged = 0;

    if (!store_try_fits(svc->store, ctx) ||
        !store_tombstone_put(svc->store, ctx, user, &s->id, clock_now_ms(),
                             &e)) {
        log_warn("conversation: the failed turn's new session stays: %s",
                 e.message[0] ? e.message : "no time left");
        return;
    }
    if (store_session_delete_unused(svc->store, ctx, user, &s->id, &e)) {
        /* The slot its create took under quota_sessions_per_user (that
         * create marked the user's counter, moments ago). */
        service_session_release_user(svc, ctx, user, NULL);
        if (!store_session_purge(svc->store, ctx, user, &s->id, &purged, &e)) {
            log_warn("conversation: session taken back, purge left to the "
                     "sweeper: %s",
                     e.message);
            return; /* the tombstone stays for the sweeper */
        }
    } else if (e.code != ERR_NOT_FOUND) {
        log_warn("conversation: could not take back the failed turn's new "
                 "session: %s",
                 e.message);
    }
    error_clear(&e);
    if (!store_tombstone_delete(svc->store, ctx, user, &s->id, &e))
        log_warn("conversation: tombstone left to the sweeper: %s", e.message);
}

/* A tool call id the model left empty gets one of ours: the next turn
 * pairs the tool's result with its call by it. */
static const char *
call_id(struct arena *a, const char *id)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[12];
    char *out;

    if (id != NULL && id[0] != '\0')
        return id;
    rng_bytes(raw, sizeof(raw));
    out = arena_alloc(a, 5 + 2 * sizeof(raw) + 1);
    memcpy(out, "call_", 5);
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[5 + 2 * i] = hex[raw[i] >> 4];
        out[5 + 2 * i + 1] = hex[raw[i] & 15];
    }
    out[5 + 2 * sizeof(raw)] = '\0';
    return out;
}

static struct json_value *
jstring(struct arena *a, const char *s)
{
    return json_new_string(a, s, strlen(s));
}

/* The reply's extra_data: {"tool_calls": [{"id", "type": "function",
 * "function": {"name", "arguments"}}]} when the model asked for tools,
 * and "finish_reason" when it stopped for another reason than the end of
 * its answer or its calls ("length", "content_filter"); NULL for
 * neither. */
static struct json_value *
reply_extra_data(struct arena *a, struct llm_reply *r)
{
    bool odd_finish = r->finish_reason != NULL &&
                      strcmp(r->finish_reason, "stop") != 0 &&
                      strcmp(r->finish_reason, "tool_calls") != 0;
    struct json_value *extra, *calls;

    if (r->n_tool_calls == 0 && !odd_finish)
        return NULL;
    extra = json_new_object(a, 2);
    if (r->n_tool_calls > 0) {
        calls = json_new_array(a, r->n_tool_calls);
        for (size_t i = 0; i < r->n_tool_calls; i++) {
            struct llm_tool_call *c = &r->tool_calls[i];
            struct json_value *call = json_new_object(a, 3);
            struct json_value *fn = json_new_object(a, 2);

            c->id = call_id(a, c->id);
            json_object_put(a, fn, "name", 4,
                            jstring(a, c->name ? c->name : ""));
            json_object_put(a, fn, "arguments", 9,
                            jstring(a, c->arguments ? c->arguments : "{}"));
            json_object_put(a, call, "id", 2, jstring(a, c->id));
            json_object_put(a, call, "type", 4, jstring(a, "function"));
            json_object_put(a, call, "function", 8, fn);
            json_array_push(a, calls, call);
        }
        json_object_put(a, extra, "tool_calls", 10, calls);
    }
    if (odd_finish)
        json_object_put(a, extra, "finish_reason", 13,
                        jstring(a, r->finish_reason));
    return extra;
}

/* A reply that cannot be stored fails the turn before anything is
 * written: the model's fault, told as the model's (502). */
static bool
reply_storable(struct service *svc, struct store_ctx *ctx, struct llm_reply *r,
               struct json_value **extra, struct error *err)
{
    const struct config *cfg = svc->cfg;
    struct error e = ERROR_INIT;

    if (r->content_len > (size_t)cfg->max_content_bytes)
        return error_set(err, ERR_UPSTREAM, NULL,
                         "the model's reply is %zu bytes, more than the "
                         "%d a message may hold; nothing was stored",
                         r->content_len, cfg->max_content_bytes);
    *extra = reply_extra_data(ctx->arena, r);
    if (*extra != NULL &&
        !validate_document("extra_data", *extra,
                           (size_t)cfg->max_metadata_bytes,
                           cfg->max_metadata_depth, false, &e))
        return error_set(err, ERR_UPSTREAM, NULL,
                         "the model's tool calls do not fit in the reply's "
                         "extra_data (%zu bytes encoded, at most %d); "
                         "nothing was stored",
                         json_encoded_size(*extra), cfg->max_metadata_bytes);
    return true;
}

/* The answer's session part, from a fresh read (message_count counts
 * what was deleted meanwhile too). */
static bool
answer(struct service *svc, struct store_ctx *ctx, const char *user,
       const struct session *s, const struct message *reply,
       struct conversation_result *out, struct error *err)
{
    struct session now;

    if (!service_session_get(svc, ctx, user, s->session_id, &now, err))
        return false;
    out->session_id = now.session_id;
    out->session_uuid = now.id;
    out->messages_count = now.message_count;
    out->session_active = now.status == STATUS_ACTIVE;
    out->message = *reply;
    out->response = reply->content;
    return true;
}

/* Asks the backend: the history (when the backend reads it) and the new
 * messages, within the deadline less the time kept to store the turn. */
static bool
ask(struct service *svc, struct store_ctx *ctx, const char *user,
    const struct session *s, bool created, const struct message *msgs, size_t n,
    const struct conversation_input *in, bool stream,
    const struct llm_callbacks *cb, struct llm_reply *reply, struct error *err)
{
    const struct config *cfg = svc->cfg;
    int64_t keep = cfg->request_deadline_ms;
    struct message_page history = {NULL, 0, 0, false};
    struct agent_turn turn;
    int64_t tokens = 0;

    if (keep > cfg->conversation_deadline_ms / 2)
        keep = cfg->conversation_deadline_ms / 2;
    if (agent_uses_context(svc->agent) && !created && s->last_seq > 0 &&
        cfg->llm_context_messages > 0 &&
        !service_message_context(
            svc, ctx, user, s->session_id, cfg->llm_context_messages,
            cfg->llm_context_tokens, &history, &tokens, err))
        return false;
    memset(&turn, 0, sizeof(turn));
    turn.instructions = s->agent_instructions;
    turn.context = history.items;
    turn.n_context = history.len;
    turn.messages = msgs;
    turn.n_messages = n;
    turn.tools =
        in->tools != NULL && in->tools->type != JSON_NULL ? in->tools : NULL;
    turn.tool_choice =
        in->tool_choice != NULL && in->tool_choice->type != JSON_NULL
            ? in->tool_choice
            : NULL;
    turn.stream = stream;
    turn.deadline_ms = ctx->deadline_ms - keep;
    return agent_reply(svc->agent, &turn, cb, ctx->arena, reply, err);
}

/* Steps 5 and 6: the new messages and the reply as one batch. */
static bool
store_turn(struct service *svc, struct store_ctx *ctx, const char *user,
           const struct session *s, const struct conversation_input *in,
           const char *key, const struct uuid *reply_id,
           struct llm_reply *reply, const struct llm_callbacks *cb,
           struct message **stored, struct error *err)
{
    struct message_input *batch;
    struct json_value *extra = NULL, *content, *keyv = NULL;
    bool created;

    if (!reply_storable(svc, ctx, reply, &extra, err))
        return false;
    /* The last moment a client that went away can still leave nothing
     * behind. */
    if (cb->poll != NULL && !cb->poll(cb->arg, err))
        return false;
    content = json_new_string(ctx->arena, reply->content, reply->content_len);
    if (key != NULL)
        keyv = jstring(ctx->arena, key);
    batch = arena_calloc(ctx->arena, (in->n + 1) * sizeof(*batch));
    memcpy(batch, in->messages, in->n * sizeof(*batch));
    batch[in->n].role = &json_assistant;
    batch[in->n].content = content;
    batch[in->n].extra_data = extra;
    batch[in->n].client_message_id = keyv;
    batch[in->n].id = reply_id;
    return service_message_append(svc, ctx, user, s->session_id, batch,
                                  in->n + 1, true, NULL, stored, &created, err);
}

bool
service_conversation_turn(struct service *svc, struct store_ctx *ctx,
                          const char *user, const struct conversation_input *in,
                          const struct conversation_hooks *hooks,
                          struct conversation_result *out, struct error *err)
{
    static const struct llm_callbacks no_callbacks = {NULL, NULL, NULL};
    const struct llm_callbacks *cb = hooks != NULL ? &hooks->cb : &no_callbacks;
    struct session_create create = in->session;
    struct message *msgs, *stored, replay;
    struct llm_reply reply;
    const char *key = NULL;
    bool stream = false, created = false, claimed = false;
    struct uuid reply_id;
    struct session s;
    enum turn_claim c;

    memset(out, 0, sizeof(*out));
    if (svc->agent == NULL)
        return error_set(err, ERR_INTERNAL, NULL, "no agent backend");
    msgs = arena_calloc(ctx->arena, (in->n + 1) * sizeof(*msgs));
    if (!check_turn(svc, ctx, in, msgs, &key, &stream, err))
        return false;
    /* Only an existing session of the caller is reused: another user's
     * session of that name does not exist. */
    create.if_exists = &json_return;
    if (!service_session_create(svc, ctx, user, &create, &s, &created, err))
        return false;
    out->session_id = s.session_id;
    out->session_uuid = s.id;
    out->stream = stream;
    if (hooks != NULL && hooks->checked != NULL)
        hooks->checked(cb->arg, out);
    if (s.status != STATUS_ACTIVE)
        return error_set(err, ERR_CONFLICT, "status",
                         "the session is %s; only an active session takes "
                         "message writes",
                         status_name(s.status));
    uuid_generate(&reply_id);
    if (key != NULL) {
        if (!claim_turn(svc, ctx, user, &s, key, &reply_id, cb, &replay, &c,
                        err))
            goto fail;
        if (c == TURN_REPLAY) {
            out->replayed = true;
            return answer(svc, ctx, user, &s, &replay, out, err);
        }
        claimed = true;
    }
    /* A session that cannot take the turn is told so before the model
     * is asked; storing the turn checks again, atomically. */
    {
        struct store_counts add = {(int64_t)in->n + 1, 0, 0};

        for (size_t i = 0; i < in->n; i++)
            add.bytes += store_message_bytes(&msgs[i]);
        if (!service_quota_room(svc, &s, &add, err))
            goto fail;
    }
    if (!ask(svc, ctx, user, &s, created, msgs, in->n, in, stream, cb, &reply,
             err) ||
        !store_turn(svc, ctx, user, &s, in, key, &reply_id, &reply, cb, &stored,
                    err))
        goto fail;
    /* Stored: from here on a failure is only the answer's, and a replay
     * answers the turn. */
    if (reply.prompt_tokens > 0 || reply.completion_tokens > 0) {
        struct error e = ERROR_INIT;

        if (!store_session_add_usage(
                svc->store, ctx, user, &s.id,
                reply.prompt_tokens > 0 ? reply.prompt_tokens : 0,
                reply.completion_tokens > 0 ? reply.completion_tokens : 0, &e))
            log_warn("conversation: token usage not counted: %s", e.message);
    }
    return answer(svc, ctx, user, &s, &stored[in->n], out, err);

fail : {
    struct error e = *err;

    if (claimed)
        release_key(svc, ctx, user, &s, key, &reply_id);
    if (created)
        take_back_session(svc, ctx, user, &s);
    *err = e;
    return false;
}
}

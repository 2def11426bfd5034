/*
 * api_conversation.c - POST /api/agent-sessions/conversation (the row is
 * in api.c; the turn itself is service_conversation.c).
 *
 * Without "stream" the answer is one JSON body.  With "stream": true it
 * is text/event-stream: "event: delta" for each piece of the reply as the
 * backend produces it, then "event: done" with the JSON answer, or
 * "event: error" with the error body (and nothing stored).  The 200 and
 * its headers go out only with the first event, so a turn that fails
 * before the backend produced anything still answers its real status
 * (400, 404, 409, 502, 504, ...) with the JSON error body.
 *
 * While the backend works, the client is watched: a write that fails, or
 * the web server closing the connection (the client went away), stops
 * the turn, and nothing of it is stored.
 */
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "encode.h"
#include "log.h"
#include "service_conversation.h"
#include "banned.h"

/* The message members a turn's messages take (as an append's). */
static const struct api_body_field message_fields[] = {
    {"role", offsetof(struct message_input, role)},
    {"content", offsetof(struct message_input, content)},
    {"tool_call_id", offsetof(struct message_input, tool_call_id)},
    {"tool_name", offsetof(struct message_input, tool_name)},
    {"extra_data", offsetof(struct message_input, extra_data)},
    {"client_message_id", offsetof(struct message_input, client_message_id)},
};

/* The body's members. */
struct conversation_body {
    const struct json_value *messages;
    struct session_create session;
    const struct json_value *client_message_id;
    const struct json_value *stream;
    const struct json_value *tools;
    const struct json_value *tool_choice;
};

/* The handler's side of a turn: whether it streams and how far it got. */
struct turn_io {
    struct api_call *call;
    bool stream; /* the request asked for events */
    bool begun;  /* the 200 and its headers are sent */
};

static void
stream_begin(struct turn_io *io)
{
    struct response *resp = io->call->resp;

    if (io->begun)
        return;
    resp->status = 200;
    resp->content_type = "text/event-stream";
    response_header(resp, "Cache-Control", "no-store");
    /* nginx passes events on as they come whatever its buffering
     * setting for the location; other proxies may know the header too. */
    response_header(resp, "X-Accel-Buffering", "no");
    response_stream_begin(resp);
    io->begun = true;
}

/* Sends the events in the body now.  False, with err set, when the client
 * can no longer get them. */
static bool
stream_push(struct turn_io *io, struct error *err)
{
    if (response_stream_push(io->call->resp))
        return true;
    return error_set(err, ERR_CLIENT_GONE, NULL,
                     "the client went away during the reply");
}

static bool
on_delta(void *arg, const struct llm_delta *d, struct error *err)
{
    struct turn_io *io = arg;
    struct buf *b = &io->call->resp->body;

    if (!io->stream)
        return true;
    stream_begin(io);
    encode_event_begin(b, "delta");
    encode_conversation_delta(b, d);
    encode_event_end(b);
    return stream_push(io, err);
}

static bool
on_poll(void *arg, struct error *err)
{
    struct turn_io *io = arg;

    if (response_client_gone(io->call->resp))
        return error_set(err, ERR_CLIENT_GONE, NULL,
                         "the client went away before the reply");
    return true;
}

static void
on_checked(void *arg, const struct conversation_result *r)
{
    struct turn_io *io = arg;

    io->stream = r->stream;
    /* Metrics count the session this request named or made. */
    io->call->session_named = r->session_id;
}

/* A replayed turn, streamed: the stored reply as the pieces a model
 * would have sent (its text, then each tool call whole), then done. */
static bool
replay_deltas(struct turn_io *io, const struct message *m, struct error *err)
{
    const struct json_value *calls =
        m->extra_data != NULL && m->extra_data->type == JSON_OBJECT
            ? json_get(m->extra_data, "tool_calls")
            : NULL;
    struct llm_delta d;

    if (m->content[0] != '\0') {
        d = (struct llm_delta){
            LLM_DELTA_CONTENT, m->content, strlen(m->content), 0, NULL, NULL};
        if (!on_delta(io, &d, err))
            return false;
    }
    for (size_t i = 0;
         calls != NULL && calls->type == JSON_ARRAY && i < calls->u.a.len;
         i++) {
        const struct json_value *c = calls->u.a.items[i];
        const struct json_value *fn = json_get(c, "function");
        const struct json_value *id = json_get(c, "id");
        const struct json_value *name = fn ? json_get(fn, "name") : NULL;
        const struct json_value *args = fn ? json_get(fn, "arguments") : NULL;

        d = (struct llm_delta){
            LLM_DELTA_TOOL_CALL,
            args != NULL && args->type == JSON_STRING ? args->u.s.ptr : "",
            args != NULL && args->type == JSON_STRING ? args->u.s.len : 0,
            (int)i,
            id != NULL && id->type == JSON_STRING ? id->u.s.ptr : NULL,
            name != NULL && name->type == JSON_STRING ? name->u.s.ptr : NULL};
        if (!on_delta(io, &d, err))
            return false;
    }
    return true;
}

/* The end of a streamed turn that failed after its first event: the
 * status is sent already, so the error is the last event.  The status
 * recorded for the log and the metrics is the error's. */
static void
stream_error(struct turn_io *io, struct error *err)
{
    struct response *resp = io->call->resp;
    struct buf *b = &resp->body;

    resp->status = error_http_status(err->code);
    if (err->code == ERR_CLIENT_GONE) {
        log_info("conversation: %s", err->message);
        return;
    }
    /* As app.c does for a JSON error: the details to the log, general
     * words to the client. */
    if (err->code == ERR_UNAVAILABLE || err->code == ERR_INTERNAL) {
        log_warn("conversation -> %d mid-stream: %s", resp->status,
                 err->message);
        error_set(err, err->code, NULL, "%s",
                  err->code == ERR_UNAVAILABLE
                      ? "the database is unavailable; try again later"
                      : "internal error");
    }
    encode_event_begin(b, "error");
    response_error_body(b, err);
    encode_event_end(b);
    (void)response_stream_push(resp);
}

bool
api_conversation_turn(struct api_call *call, struct error *err)
{
    static const struct api_body_field fields[] = {
#define F(m) offsetof(struct conversation_body, m)
        {"messages", F(messages)},
        {"session_id", F(session.session_id)},
        {"session_name", F(session.f.session_name)},
        {"agent_name", F(session.f.agent_name)},
        {"agent_instructions", F(session.f.agent_instructions)},
        {"client_message_id", F(client_message_id)},
        {"stream", F(stream)},
        {"tools", F(tools)},
        {"tool_choice", F(tool_choice)},
#undef F
    };
    struct turn_io io = {call, false, false};
    struct conversation_hooks hooks = {{on_delta, on_poll, &io}, on_checked};
    struct conversation_body body;
    struct conversation_input in;
    struct conversation_result out;
    struct message_input *msgs;
    const struct json_value *list;

    memset(&body, 0, sizeof(body));
    memset(&in, 0, sizeof(in));
    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &body, err))
        return false;
    list = body.messages;
    if (list == NULL)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages is required");
    if (list->type != JSON_ARRAY)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages must be an array of messages");
    /* The count is the service's to check; the array is bounded by the
     * body's size. */
    msgs = arena_calloc(call->req->arena, (list->u.a.len + 1) * sizeof(*msgs));
    if (!api_decode_messages(call, list, message_fields,
                             API_NFIELDS(message_fields), msgs, sizeof(*msgs),
                             err))
        return false;
    in.messages = msgs;
    in.n = list->u.a.len;
    in.session = body.session;
    in.client_message_id = body.client_message_id;
    in.idem_header = call->req->idempotency_key;
    in.tools = body.tools;
    in.tool_choice = body.tool_choice;
    in.stream = body.stream;
    if (!service_conversation_turn(call->svc, &call->ctx, call->user.sub, &in,
                                   &hooks, &out, err) ||
        (out.replayed && io.stream && !replay_deltas(&io, &out.message, err))) {
        if (!io.begun)
            return false; /* a real status with the JSON error body */
        stream_error(&io, err);
        return true;
    }
    if (!io.stream) {
        encode_conversation(&call->resp->body, &out);
        return true;
    }
    stream_begin(&io);
    encode_event_begin(&call->resp->body, "done");
    encode_conversation(&call->resp->body, &out);
    encode_event_end(&call->resp->body);
    if (!stream_push(&io, err))
        log_info("conversation: the client went away before the last "
                 "event; the turn is stored");
    return true;
}

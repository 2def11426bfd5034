/*
 * service_conversation.h - a conversation turn: the caller's new messages
 * go to the agent backend (agent.h) with the session's history, and the
 * messages and the reply are stored together.
 *
 * A turn is all or none.  The backend is asked first, with the context
 * window and the new messages (not yet stored); only once its reply is
 * complete are the new messages and the reply stored, as one batch
 * through service_message_append() (seq reservation, insert, undo: the
 * path every append takes).  A backend error or timeout, a stream broken
 * off, a client that went away, or a reply that cannot be stored leaves
 * no message behind; a session the turn created is taken back too (only
 * while nothing else was stored in it).
 *
 * Idempotency: with a client_message_id (or Idempotency-Key), the key is
 * claimed before the backend is asked, naming the reply's id (made
 * first); the reply is stored under it.  A replay finds the stored reply
 * and answers the stored turn without asking the backend; one that comes
 * while the first is still running waits for it (within its own
 * deadline) and answers the same, so a model is never asked twice for
 * one key.  A turn that fails releases its key, so the replay runs the
 * turn anew; a key whose holder died is taken over after twice
 * conversation_deadline_ms.
 */
#ifndef PARLEY_SERVICE_CONVERSATION_H
#define PARLEY_SERVICE_CONVERSATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "json.h"
#include "llm.h"
#include "service.h"
#include "service_message.h"
#include "service_session.h"
#include "store.h"

struct conversation_input {
    const struct message_input *messages;
    size_t n;
    /* The session to reuse or make: session_id, session_name, agent_name
     * and agent_instructions; the other members are not used. */
    struct session_create session;
    const struct json_value *client_message_id; /* NULL: not given */
    const char *idem_header;        /* the Idempotency-Key header, or NULL */
    const struct json_value *tools; /* NULL: not given */
    const struct json_value *tool_choice; /* NULL: not given */
    const struct json_value *stream;      /* NULL: not given (false) */
};

struct conversation_result {
    const char *session_id;
    struct uuid session_uuid;
    const char *response;
    int64_t messages_count;
    bool session_active;
    struct message message; /* the stored assistant message */
    bool replayed;          /* answered from a turn stored before */
    bool stream;            /* the request asked for a stream */
};

/* What the caller (the HTTP handler) hears while the backend works: the
 * reply's pieces when streaming, and a poll to stop a turn whose client
 * has gone.  Either may be NULL.  `checked` is called once the request
 * has been checked and the session found, before the backend is asked:
 * the handler learns whether to stream (result->stream) and the session
 * (result->session_id) it counts the request for. */
struct conversation_hooks {
    struct llm_callbacks cb;
    void (*checked)(void *arg, const struct conversation_result *r);
};

/* Runs one turn for user; *out is the answer (also for a replay).
 * svc->agent is the backend.  Errors: 400 for the request, 404/409 for
 * the session, 409 for a key still held when the deadline comes, 502
 * upstream_error and 504 upstream_timeout from the backend (and 502 for
 * a reply that cannot be stored), 503 from the database, and whatever a
 * hook stopped the turn with. */
bool service_conversation_turn(struct service *svc, struct store_ctx *ctx,
                               const char *user,
                               const struct conversation_input *in,
                               const struct conversation_hooks *hooks,
                               struct conversation_result *out,
                               struct error *err);

#endif

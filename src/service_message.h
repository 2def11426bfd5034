/*
 * service_message.h - messages and the context window (the conversation
 * endpoint, which stores its turns through service_message_append(), is
 * service_conversation.h).
 *
 * Ordering: seq numbers come from one findAndModify with $inc on the
 * session per append (n at once for a batch), so appends from any number
 * of workers and hosts never share or reorder numbers.  A batch is all or
 * none without transactions: ids are made up front, and when the insert
 * fails what was written is removed and the reservation's count undone.
 *
 * Idempotency: a keyed message claims a key document whose _id is
 * {user, session, key} before anything else is written.  A second request
 * with the key finds the claim and answers the message it names (waiting,
 * within its deadline, while the first request is still writing it).  A
 * claim whose writer died (pending past twice the request deadline with no
 * message) is taken over.
 */
#ifndef PARLEY_SERVICE_MESSAGE_H
#define PARLEY_SERVICE_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "service.h"
#include "service_session.h"
#include "store.h"

/* One message as decoded from a body: NULL = not given. */
struct message_input {
    const struct json_value *role;
    const struct json_value *content;
    const struct json_value *tool_call_id;
    const struct json_value *tool_name;
    const struct json_value *extra_data;
    const struct json_value *client_message_id;
    /* The id the message gets; NULL: a new one.  (A conversation makes
     * its reply's id before the model call, to claim its key with.) */
    const struct uuid *id;
    /* Set only by the /v1 routes (service_openai.c), never from a body:
     * the item to keep on the message (an object, checked there) and the
     * id its client gave it (or NULL). */
    const struct json_value *item;
    const char *item_id;
};

/* Checks message i's fields as an append does and fills m's role,
 * content, tool_call_id, tool_name, extra_data, client_message_id, item
 * and item_id (borrowed from in).  batch: errors name "messages[i].field"
 * instead of "field". */
bool service_message_decode(struct service *svc, struct store_ctx *ctx,
                            bool batch, size_t i,
                            const struct message_input *in, struct message *m,
                            struct error *err);
/* Appends in[0..n).  batch: the request used {"messages": [...]}, which
 * changes parameter names in errors and forbids the header key.
 * idem_header: the Idempotency-Key header or NULL.  On success *out holds
 * the n stored messages in order and *created is false for a replay. */
bool service_message_append(struct service *svc, struct store_ctx *ctx,
                            const char *user, const char *session_id,
                            const struct message_input *in, size_t n,
                            bool batch, const char *idem_header,
                            struct message **out, bool *created,
                            struct error *err);
bool service_message_list(struct service *svc, struct store_ctx *ctx,
                          const char *user, const char *session_id,
                          const struct message_filter *f, int64_t limit,
                          int64_t offset, struct message_page *out,
                          struct error *err);
bool service_message_get(struct service *svc, struct store_ctx *ctx,
                         const char *user, const char *session_id,
                         const char *message_id, struct message *out,
                         struct error *err);
/* content / extra_data: NULL = not given.  A new content drops the
 * message's /v1 item, which no longer says what the message says. */
bool service_message_patch(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *session_id,
                           const char *message_id,
                           const struct json_value *content,
                           const struct json_value *extra_data,
                           struct message *out, struct error *err);
bool service_message_delete(struct service *svc, struct store_ctx *ctx,
                            const char *user, const char *session_id,
                            const char *message_id, struct error *err);
bool service_message_clear(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *session_id,
                           int64_t *deleted, struct error *err);

/* A filter that matches every message of the session, in ascending seq
 * order and counted. */
void service_message_filter_all(struct message_filter *f);

/* The newest unbroken run within both bounds, oldest first, tool
 * messages without their call dropped. */
bool service_message_context(struct service *svc, struct store_ctx *ctx,
                             const char *user, const char *session_id,
                             int64_t limit, int64_t max_tokens,
                             struct message_page *out, int64_t *tokens,
                             struct error *err);
/* What an item takes in a response body (encode_message_size()). */
typedef size_t service_message_size_fn(const struct message *m);
/* The same, the run also ending (on its oldest side) before the first
 * message that would take the items past max_bytes, each counted as
 * size() plus a comma (0: no such bound); at least the newest message
 * is taken.  *cut (may be NULL): the byte bound made the run shorter
 * than the others would have. */
bool service_message_context_bounded(struct service *svc, struct store_ctx *ctx,
                                     const char *user, const char *session_id,
                                     int64_t limit, int64_t max_tokens,
                                     size_t max_bytes,
                                     service_message_size_fn *size,
                                     struct message_page *out, int64_t *tokens,
                                     bool *cut, struct error *err);
/* The pure part of the context rule, for tests: picks from newest[0..n)
 * (newest first) into out (oldest first); returns the count. */
size_t service_message_context_pick(const struct message *newest, size_t n,
                                    int64_t max_tokens, struct message *out,
                                    int64_t *tokens);

#endif

/*
 * service_openai.h - OpenAI's Conversations API (/v1) over parley's own
 * sessions and messages: one store, two views.
 *
 * A conversation is a session whose session_id is its id; one made here
 * gets "conv_" + 32 random hex characters.  Every session is a
 * conversation, so a session made through /api reads here by its
 * session_id, and a conversation made here is listed, exported, counted,
 * swept and erased like any other session.
 *
 * An item is a message.  The item a client sent is kept verbatim (less
 * its id) in the message's `item`, and the message's own fields say what
 * /api, search and /context need:
 *
 *   item                     message
 *   message (role R)         role R (user, assistant, system, developer),
 *                            content = the text of its parts, joined by
 *                            "\n" (or the string content as it is)
 *   function_call            assistant, tool_call_id = call_id,
 *                            tool_name = name, content = arguments
 *   function_call_output     tool, tool_call_id = call_id, tool_name =
 *                            name (when given), content = the output (its
 *                            parts' text when it is an array)
 *   any other type           assistant, content "" (kept, not read)
 *
 * On the way back an item is exactly what was sent, plus its id, `type`
 * when the client left it out of a message, string content of a message
 * as one part (input_text, or output_text with annotations [] for an
 * assistant), and `status: "completed"` on a message, function_call or
 * function_call_output that had none.  A message with no item (written
 * through /api, or whose content a PATCH replaced) is shown from its
 * fields by the same table read backwards: an assistant message with a
 * tool_call_id is a function_call, a tool message a function_call_output,
 * anything else a message with one text part.
 *
 * Item ids: the id a client gave an item is kept (item_id, unique in the
 * conversation); any other item's id is derived from its message's UUID:
 * "msg_", "fc_", "fco_" or "item_" (message, function_call,
 * function_call_output, anything else) + the UUID's 32 hex characters.
 * A lookup finds the one id a message is shown with, nothing else.
 *
 * A model's tool calls: an assistant message without an item whose
 * extra_data.tool_calls[] holds calls (objects with a string "id", as
 * the conversation endpoint stores them and agent.h reads them) is shown
 * as several items: its text as a message item (only when the content
 * is not empty), then each call k as a function_call (call_id = the
 * call's id, name and arguments from its "function", or its own members;
 * arguments "{}" when it has none), whose id is the message's id (above)
 * + "." + k, k the call's index in tool_calls[].  These are the message's
 * "parts": OPENAI_PART_WHOLE the message's own item, k >= 0 call k.
 * Every other message is one part, OPENAI_PART_WHOLE.  Deleting any part
 * deletes the message, all its parts with it.
 */
#ifndef PARLEY_SERVICE_OPENAI_H
#define PARLEY_SERVICE_OPENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "service.h"
#include "service_message.h"
#include "store.h"

/* OpenAI's metadata limits, which writes through /v1 follow. */
#define OPENAI_METADATA_KEYS      16
#define OPENAI_METADATA_KEY_CHARS 64
#define OPENAI_METADATA_VAL_CHARS 512
/* Items per list page: 1 to 100, 20 by default (OpenAI's). */
#define OPENAI_PAGE_MAX     100
#define OPENAI_PAGE_DEFAULT 20
/* A page of items' body is bounded by page_max_bytes, as every list's
 * (100 items of the largest size would be some 100 MiB). */
/* A client's item id: 1 to 255 characters of [A-Za-z0-9._:-]. */
#define OPENAI_ITEM_ID_MAX 255

/* Room for an id a message's part is shown with: a message's id, "."
 * and a call's index. */
#define OPENAI_PART_ID_MAX (OPENAI_ITEM_ID_MAX + 21)

/* A message's parts (see above); OPENAI_PART_NONE: before the first and
 * after the last. */
#define OPENAI_PART_WHOLE (-1)
#define OPENAI_PART_NONE  (-2)

/* One item as shown: a message and which of its parts. */
struct openai_item {
    const struct message *m;
    int part;
};

struct openai_page {
    struct openai_item *items;
    size_t len;
};

/* The kinds of item parley reads; the rest are kept as given. */
enum openai_kind {
    OPENAI_MESSAGE,
    OPENAI_FUNCTION_CALL,
    OPENAI_FUNCTION_CALL_OUTPUT,
    OPENAI_OTHER,
};

/* The kind a message is shown as: its item's type, or (no item) read
 * from its role and tool_call_id. */
enum openai_kind service_openai_kind(const struct message *m);
/* The id m is shown with: its item_id, or the derived one written into
 * buf.  Returns item_id or buf. */
const char *service_openai_item_id(const struct message *m,
                                   char buf[OPENAI_ITEM_ID_MAX + 1]);

/* The part of m after `part` (OPENAI_PART_NONE: its first), or before it
 * (OPENAI_PART_NONE: its last); OPENAI_PART_NONE when there is none. */
int service_openai_next_part(const struct message *m, int part);
int service_openai_prev_part(const struct message *m, int part);
/* Call k of m's extra_data.tool_calls[] (an object with a string "id"),
 * NULL when that is no call or m is not shown with its calls. */
const struct json_value *service_openai_call(const struct message *m, int k);
/* The id part is shown with, written into buf (or m's item_id). */
const char *service_openai_part_id(const struct message *m, int part,
                                   char buf[OPENAI_PART_ID_MAX + 1]);

/* Checks item i of a request (errors name "items[i]" and its members)
 * and fills *out for service_message_append(): role, content and tool
 * fields as the table above says, the item to keep (a copy without its
 * id, in a) and the client's id.  Limits: the text at most
 * max_content_bytes, the whole item at most max_content_bytes +
 * max_metadata_bytes encoded and max_metadata_depth deep, names and call
 * ids at most max_name_chars, and no key anywhere that is empty, starts
 * with '$' or holds '.' (MongoDB keeps it as a document). */
bool service_openai_decode_item(const struct config *cfg, struct arena *a,
                                size_t i, const struct json_value *item,
                                struct message_input *out, struct error *err);

/* An import's message i (service_export.h): its exported item_id (NULL,
 * null or a client's id as above) and item (NULL, null, or an item as
 * the message keeps it: no id), checked as /v1 checks an item, errors
 * naming "messages[i].item..." and "messages[i].item_id".  Sets
 * in->item and in->item_id; in's role, content, tool_call_id and
 * tool_name, when given, must be what the item says (400 naming the
 * field), and are taken from it when not. */
bool service_openai_import_item(const struct config *cfg, struct arena *a,
                                size_t i, const struct json_value *item,
                                const struct json_value *item_id,
                                struct message_input *in, struct error *err);

/* POST /v1/conversations: items (NULL, null, or an array of 0 to
 * max_batch_messages) and metadata (NULL, null or an object within
 * OpenAI's limits).  Checks everything, makes the session, appends the
 * items; a failed append deletes the session again. */
bool service_openai_create(struct service *svc, struct store_ctx *ctx,
                           const char *user, const struct json_value *items,
                           const struct json_value *metadata,
                           struct session *out, struct error *err);
/* The conversation: the caller's session of that session_id (404,
 * "conversation with id '...' not found", for any other). */
bool service_openai_get(struct service *svc, struct store_ctx *ctx,
                        const char *user, const char *conv_id,
                        struct session *out, struct error *err);
/* Replaces the metadata (null: {}); the session's version goes up. */
bool service_openai_update(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *conv_id,
                           const struct json_value *metadata,
                           struct session *out, struct error *err);
bool service_openai_delete(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *conv_id,
                           struct error *err);
/* Appends items (an array of 1 to max_batch_messages), all or none; an
 * item id already in the conversation, or twice in the request, is 400.
 * *out holds the n stored messages in order. */
bool service_openai_items_add(struct service *svc, struct store_ctx *ctx,
                              const char *user, const char *conv_id,
                              const struct json_value *items,
                              struct message **out, size_t *n,
                              struct error *err);
/* A page of up to limit items in seq order (descending: newest first;
 * a message's parts in their order, or reversed), those after the item
 * `after` (NULL: from the start) in that order.  *has_more: at least one
 * more follows the page.  An `after` that names no item of the
 * conversation is 400 (param "after"). */
bool service_openai_items_list(struct service *svc, struct store_ctx *ctx,
                               const char *user, const char *conv_id,
                               const char *after, int64_t limit,
                               bool descending, struct openai_page *out,
                               bool *has_more, struct error *err);
/* The item: its message in *out and which part of it in *part (may be
 * NULL). */
bool service_openai_item_get(struct service *svc, struct store_ctx *ctx,
                             const char *user, const char *conv_id,
                             const char *item_id, struct message *out,
                             int *part, struct error *err);
/* Deletes the item's message (409 unless the session is active) and
 * answers the conversation in *conv. */
bool service_openai_item_delete(struct service *svc, struct store_ctx *ctx,
                                const char *user, const char *conv_id,
                                const char *item_id, struct session *conv,
                                struct error *err);

/* The base and call index of an id of a call's form ("<id>.<k>": the
 * id a message's k-th tool call is shown with), or false. */
bool service_openai_split_part_id(struct arena *a, const char *id,
                                  const char **base, int *k);

#endif

/*
 * encode_openai.h - the response bodies of the /v1 routes, in the shapes
 * of OpenAI's Conversations API (the mapping is service_openai.h's).
 * Each function appends one whole JSON value to b; the error body is
 * http.c's response_error_openai().
 */
#ifndef PARLEY_ENCODE_OPENAI_H
#define PARLEY_ENCODE_OPENAI_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "service_openai.h"
#include "store.h"

/* {"id","object":"conversation","created_at":<Unix seconds>,"metadata"}:
 * metadata's string values as they are, any other value as its JSON
 * text (a session made through /api may hold any JSON). */
void encode_openai_conversation(struct buf *b, const struct session *s);
/* {"id","object":"conversation.deleted","deleted":true} */
void encode_openai_deleted(struct buf *b, const char *conv_id);
/* One item: part `part` of m (service_openai.h): the stored item with
 * its id (and type, parts and status as the header says), a message
 * without one shown from its fields, or one of its calls. */
void encode_openai_item_part(struct buf *b, const struct message *m, int part);
/* m's first part. */
void encode_openai_item(struct buf *b, const struct message *m);
/* {"object":"list","data":[items],"first_id","last_id","has_more"};
 * the ids are null when data is empty.  The body stays within max_bytes
 * (0: no bound): it ends before the first item that would take it past,
 * with has_more true, and always holds the first item, so a client
 * paging on with after=last_id always moves on. */
void encode_openai_items(struct buf *b, const struct openai_item *it, size_t n,
                         bool has_more, size_t max_bytes);
/* The same of every part of m[0..n), in order. */
void encode_openai_item_list(struct buf *b, const struct message *m, size_t n,
                             bool has_more, size_t max_bytes);

#endif

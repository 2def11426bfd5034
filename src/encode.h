/*
 * encode.h - every response body, exactly in the contract's shapes.
 *
 * Handlers hand their results here and write no JSON of their own; the
 * streamed export's document (export.h) is built from encode_session()
 * and encode_message(), and the error body is http.c's response_error().
 * Each function appends one whole JSON value to b.
 */
#ifndef PARLEY_ENCODE_H
#define PARLEY_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"
#include "service_lifecycle.h"
#include "llm.h"
#include "service_conversation.h"
#include "service_memory.h"
#include "service_message.h"
#include "store.h"
#include "sweeper.h"

/* "2024-05-01T12:00:00.000Z", quotes included. */
void encode_time(struct buf *b, int64_t ms);

/* Sessions: one, and a page of a list
 * {"items":[...],"total":N,"limit":L,"offset":O,"has_more":bool}.
 *
 * A page's body stays within max_bytes (page_max_bytes; 0: no bound): it
 * ends before the first item that would take it past, with has_more
 * true, and always holds at least one item, so a client that asks for
 * the next page (offset + the items it got) always moves on. */
#define ENCODE_PAGE_TAIL 256 /* room kept for what follows the items */
void encode_session(struct buf *b, const struct session *s);
void encode_session_page(struct buf *b, const struct session_page *p,
                         int64_t limit, int64_t offset, size_t max_bytes);

/* Messages: one, a batch {"items":[...]}, a page of a list (as sessions,
 * bounded the same way), the context window
 * {"items":[...],"tokens":N,"has_more":bool}, and what clearing them
 * removed {"deleted_count":N}.  encode_message_size() is the bytes
 * encode_message() writes, which the context window is fitted to. */
void encode_message(struct buf *b, const struct message *m);
size_t encode_message_size(const struct message *m);
void encode_message_items(struct buf *b, const struct message *m, size_t n);
void encode_message_page(struct buf *b, const struct message_page *p,
                         int64_t limit, int64_t offset, size_t max_bytes);
void encode_context(struct buf *b, const struct message_page *p, int64_t tokens,
                    bool has_more);
void encode_deleted_count(struct buf *b, int64_t n);
/* A conversation turn's answer: {"session_id","session_uuid","response",
 * "messages_count","session_active","message":{the stored reply}}. */
void encode_conversation(struct buf *b, const struct conversation_result *r);
/* A streamed turn (text/event-stream): one event is
 * encode_event_begin(), one JSON value, encode_event_end():
 * "event: NAME\ndata: JSON\n\n" (JSON text holds no raw newline).  A
 * piece of the reply is {"content":"..."} or {"tool_call":{"index":i,
 * "id":..., "name":..., "arguments":"..."}} (id and name only on the piece
 * that carries them). */
void encode_event_begin(struct buf *b, const char *event);
void encode_event_end(struct buf *b);
void encode_conversation_delta(struct buf *b, const struct llm_delta *d);

/* Memory: one entry {"key":K,"value":V}, and a page
 * {"items":{K:V,...},"limit":L,"has_more":bool,"next_after":K|null},
 * bounded by max_bytes as the other pages are; next_after is the page's
 * last key when has_more. */
void encode_memory_entry(struct buf *b, const char *key,
                         const struct json_value *value);
void encode_memory_page(struct buf *b, const struct memory_page *p,
                        int64_t limit, size_t max_bytes);

/* Lifecycle: stats (with the average in hundredths, half up), a
 * session's health, a cleanup's counts (also `parley cleanup`'s output)
 * and a user erasure's. */
void encode_stats(struct buf *b, const struct session_stats *st);
void encode_session_health(struct buf *b, const struct session_health *h);
void encode_sweep_counts(struct buf *b, const struct sweep_counts *c);
void encode_erase_counts(struct buf *b, const struct erase_counts *n);

/* {"status":S}: GET /healthz ("ok") and GET /readyz ("ready"). */
void encode_probe(struct buf *b, const char *status);

#endif

/*
 * service_export.h - the database side of export and import.
 *
 * Export reads a session's messages page by page (export.h's source):
 * each page gets its own arena, emptied before the next page, and its own
 * deadline of request_deadline_ms, so a session of 10^5 messages is read
 * in bounded memory and is not cut off by the deadline meant for one
 * ordinary request; no page reads past the export's own deadline
 * (export_deadline_ms from the request's arrival), where api_export.c
 * ends the export with its truncation marker.  Messages appended while an
 * export runs may or may not be in it; those it has are in seq order with no
 * gaps but deleted ones.
 *
 * Import is all or none without transactions.  Every field is checked
 * first (the session as on create, each message as on append, its /v1
 * item and item id as /v1 checks them, the item ids distinct).  Then the
 * messages are inserted, with fresh UUIDs and seq 1..n, under a fresh
 * session UUID that no session document has yet, and the session document
 * (message_count = last_seq = n) goes in last.  Messages are only ever
 * reached through their session, so nothing of an import is visible
 * before that last insert, and everything is afterwards.  If it fails (a
 * concurrent create or import took the session_id: 409; the database
 * went away: 503) the messages are deleted again.  A tombstone for the
 * UUID (store_tombstone_put) goes in before the first message and out at
 * the end, so a crash in between leaves orphan messages the sweeper finds
 * and removes, as it does those of a delete cut short.  Each batch gets
 * request_deadline_ms, and the whole import at most export_deadline_ms
 * from the request's arrival: past it the import is undone and answers
 * 503.  An import yields: after each batch it waits SERVICE_IMPORT_YIELD
 * times as long as the batch took, so one import keeps its connection to
 * the primary busy a quarter of the time at most, the secondaries get
 * time to apply what it wrote, and the requests of other users are not
 * stuck behind a long run of inserts (nor, with a majority write
 * concern, behind their replication).
 */
#ifndef PARLEY_SERVICE_EXPORT_H
#define PARLEY_SERVICE_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "json.h"
#include "service.h"
#include "service_message.h"
#include "store.h"

/* Messages per page read by an export.  The page's memory is bounded by
 * this times the largest message (max_content_bytes plus extra_data). */
#define SERVICE_EXPORT_PAGE 200
/* Messages per insert of an import: small, so that one insert (and its
 * replication, which a majority write concern waits for) is short, and
 * other users' writes get in between. */
#define SERVICE_IMPORT_BATCH 100
/* The pause after each batch, in multiples of the time the batch took. */
#define SERVICE_IMPORT_YIELD 3
/* Messages one import may hold (the body limit usually bounds it first). */
#define SERVICE_IMPORT_MAX_MESSAGES 100000

/* An export's source of pages over one session of one user. */
struct service_export_pages {
    struct service *svc;
    const char *user; /* borrowed */
    struct uuid session_uuid;
    struct arena arena;   /* the current page's memory */
    struct store_ctx ctx; /* page reads: this arena, own deadline */
    int64_t deadline_ms;  /* the whole export's (monotonic) */
};

/* deadline_ms: the export's own, monotonic; no page read runs past it. */
void service_export_pages_init(struct service_export_pages *p,
                               struct service *svc, const char *user,
                               const struct session *s, int64_t deadline_ms);
void service_export_pages_release(struct service_export_pages *p);
/* export_source.next: the messages after after_seq, at most limit, in
 * seq order; valid until the next call or the release. */
bool service_export_pages_next(void *pages, int64_t after_seq, int64_t limit,
                               struct message_page *page, struct error *err);

/* A message's /v1 side in an import body, as the export writes it
 * (NULL: not given). */
struct import_item {
    const struct json_value *item;
    const struct json_value *item_id;
};

/* An import body, decoded (NULL: not given; JSON_NULL: null).  The
 * server's fields of the export (ids, seq, version, counters, metrics,
 * timestamps) are dropped by the decoder. */
struct import_input {
    struct session_create session; /* if_exists is not used */
    const struct json_value *status;
    const struct message_input *messages; /* client_message_id unused */
    const struct import_item *items;      /* n of them; NULL: none */
    size_t n;
};

/* Recreates the session and its messages for user.  Status: status if
 * given (any of the five; is_active, if also given, must agree), else
 * is_active as on create, else active.  Errors name the field as
 * "session.<field>" or "messages[i].<field>".  409 (param session_id) if
 * the user has a session with that session_id.  *out is the new session
 * as GET shows it. */
bool service_export_import(struct service *svc, struct store_ctx *ctx,
                           const char *user, const struct import_input *in,
                           struct session *out, struct error *err);

/* The deadline of a bulk request (export, import) that arrived with the
 * ordinary deadline ctx_deadline_ms: export_deadline_ms from its arrival
 * instead of request_deadline_ms. */
int64_t service_export_deadline(const struct config *cfg,
                                int64_t ctx_deadline_ms);

#endif

/*
 * export.h - a session and its messages as one JSON document or as CSV,
 * written as a stream.
 *
 * The encoders are pure: each appends to a struct buf and reads nothing
 * but its arguments, so a fuzz harness can drive them directly.
 * export_run() is the streaming loop: it pulls messages page by page from
 * a source (in seq order) and hands the text to a sink whenever enough has
 * piled up, so memory is bounded by one page of messages plus about
 * EXPORT_FLUSH_BYTES of text (plus one message's encoding), however many
 * messages the session holds.
 *
 * JSON: {"session": <session object as GET returns it>,
 *        "messages": [<message objects in seq order>]}
 *
 * CSV (RFC 4180): CRLF line ends; a header row
 *   message_id,role,content,tool_call_id,tool_name,created_at,updated_at
 * then one row per message in seq order.  A field is quoted (quotes
 * doubled inside) when it contains a comma, a quote, CR or LF, starts or
 * ends with a space or tab (parsers that trim would change it), or is the
 * empty string: null is written as an empty unquoted field and "" as a
 * quoted empty one, so the two stay apart.  Text is UTF-8 as stored,
 * without a byte-order mark.  Values are not altered for spreadsheets
 * (no "'" before a leading "="): the file is data, and a round trip gives
 * back exactly what was stored.
 */
#ifndef PARLEY_EXPORT_H
#define PARLEY_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "store.h"

enum export_format {
    EXPORT_JSON,
    EXPORT_CSV,
};

/* The sink is called once the buffer holds at least this much. */
#define EXPORT_FLUSH_BYTES (64 * 1024)

/* "json" / "csv"; the media type a response carries; the file suffix. */
const char *export_format_name(enum export_format f);
const char *export_content_type(enum export_format f);

/* One CSV field: s[0..len) quoted as the rules above say; s NULL (null)
 * writes nothing. */
void export_csv_field(struct buf *b, const char *s, size_t len);
/* export_csv_field of a NUL-terminated string or NULL. */
void export_csv_cstr(struct buf *b, const char *s);
/* The header row, CRLF included. */
void export_csv_header(struct buf *b);
/* One message as a row, CRLF included. */
void export_csv_row(struct buf *b, const struct message *m);
/* What a CSV stream cut short by a failure ends with: a quoted field that
 * is never closed, so a strict parser reports the file as broken and a
 * lenient one shows a last row saying so.  (A JSON stream cut short is
 * broken already: it lacks its closing "]}".) */
void export_csv_abort(struct buf *b);

/* {"session":<s>,"messages":[ */
void export_json_head(struct buf *b, const struct session *s);
/* The index-th message (from 0) of the array, with its comma. */
void export_json_message(struct buf *b, const struct message *m, size_t index);
/* ]} */
void export_json_tail(struct buf *b);

/* Where messages come from.  next() fills *page with at most `limit`
 * messages whose seq is greater than after_seq, in ascending seq order;
 * the page stays valid until the next call.  A page shorter than limit
 * is the last. */
struct export_source {
    bool (*next)(void *ctx, int64_t after_seq, int64_t limit,
                 struct message_page *page, struct error *err);
    void *ctx;
};

/* Where text goes: flush() sends out->data[0..out->len) and empties out
 * (buf_reset); a sink that cannot send (a response not streamed) may
 * leave it all in out instead. */
struct export_sink {
    void (*flush)(void *ctx, struct buf *out);
    void *ctx;
};

/* Writes session s and every message src gives, in pages of page_size
 * (at least 1),
 * into out, calling sink->flush whenever out holds EXPORT_FLUSH_BYTES or
 * more, and once at the end.  On a source failure returns false with err
 * set, after making the text written so far unmistakably incomplete
 * (export_csv_abort for CSV) and flushing it. */
bool export_run(enum export_format f, const struct session *s,
                const struct export_source *src, int64_t page_size,
                const struct export_sink *sink, struct buf *out,
                struct error *err);

#endif

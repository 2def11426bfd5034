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
 * messages the session holds; a source that asks for it (page_bytes) gets
 * pages sized by bytes rather than by count.
 *
 * JSON: {"session": <session object as GET returns it>,
 *        "messages": [<message objects in seq order>]}
 * and, only when the export was cut short by its deadline (the sink's
 * check said EXPORT_STOP_DEADLINE), a last member "truncated": true after
 * the messages written so far: the document stays valid JSON and says it
 * is incomplete.
 *
 * CSV (RFC 4180): CRLF line ends; a header row
 *   message_id,role,content,tool_call_id,tool_name,created_at,updated_at
 * then one row per message in seq order, and, when cut short by the
 * deadline, a last line "# truncated".  A field is quoted (quotes
 * doubled inside) when it contains a comma, a quote, CR or LF, starts or
 * ends with a space or tab (parsers that trim would change it), or is the
 * empty string: null is written as an empty unquoted field and "" as a
 * quoted empty one, so the two stay apart.  Text is UTF-8 as stored,
 * without a byte-order mark.
 *
 * Formula injection (OWASP "CSV Injection"): EXPORT_CSV writes a field a
 * client set (content, tool_call_id, tool_name) that starts with "=",
 * "+", "-", "@", tab or carriage return with a "'" before it, so no
 * spreadsheet runs it as a formula; the "'" is the only change.
 * EXPORT_CSV_RAW writes every field exactly as stored (a round trip gives
 * back exactly what was stored).
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
    EXPORT_CSV,     /* formula cells neutralised */
    EXPORT_CSV_RAW, /* every field as stored */
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
/* One message as a row, CRLF included, fields as stored. */
void export_csv_row(struct buf *b, const struct message *m);
/* The same, with the client's fields neutralised when they would start a
 * formula (neutralise true), as EXPORT_CSV writes them. */
void export_csv_row_as(struct buf *b, const struct message *m, bool neutralise);
/* export_csv_field, with a "'" first when s starts with = + - @ TAB CR. */
void export_csv_safe_field(struct buf *b, const char *s, size_t len);
/* The last line of a CSV export cut short by its deadline. */
void export_csv_truncated(struct buf *b);
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
/* ],"truncated":true} : the end of a JSON export cut short by its
 * deadline. */
void export_json_truncated(struct buf *b);

/* Where messages come from.  next() fills *page with at most `limit`
 * messages whose seq is greater than after_seq, in ascending seq order;
 * the page stays valid until the next call.  A page shorter than limit
 * is the last. */
struct export_source {
    bool (*next)(void *ctx, int64_t after_seq, int64_t limit,
                 struct message_page *page, struct error *err);
    void *ctx;
    /* 0: every page asks for page_size messages.  Otherwise a page is
     * sized to hold about page_bytes of text: the first asks for
     * first_limit (at least 1, at most page_size), each next one for as
     * many messages as the last page's text says fit (1 .. page_size). */
    size_t page_bytes;
    int64_t first_limit;
};

/* Where text goes: flush() sends out->data[0..out->len) and empties out
 * (buf_reset); a sink that cannot send (a response not streamed) may
 * leave it all in out instead. */
enum export_check {
    EXPORT_GO,            /* go on */
    EXPORT_STOP_DEADLINE, /* end it now with the truncation marker */
    EXPORT_STOP_GONE,     /* the client has gone: stop, write nothing more */
};

struct export_sink {
    void (*flush)(void *ctx, struct buf *out);
    void *ctx;
    /* Asked before every page is read, and when a read fails (a failure
     * at the deadline is a truncation, not a failure); NULL: always
     * EXPORT_GO. */
    enum export_check (*check)(void *ctx);
};

/* How an export ended; EXPORT_FAILED is 0, so the result reads as a
 * bool "it did not fail". */
enum export_end {
    EXPORT_FAILED = 0, /* the source failed; err says why */
    EXPORT_COMPLETE,
    EXPORT_TRUNCATED, /* cut at the deadline, marker written */
    EXPORT_ABANDONED, /* the client went away; nothing more written */
};

/* Writes session s and every message src gives, in pages of at most
 * page_size (at least 1), into out, calling sink->flush whenever out
 * holds EXPORT_FLUSH_BYTES or more, and once at the end.  On a source
 * failure returns EXPORT_FAILED with err set, after making the text
 * written so far unmistakably incomplete (export_csv_abort for CSV) and
 * flushing it; stopped by sink->check, EXPORT_TRUNCATED (the marker
 * written and flushed) or EXPORT_ABANDONED (out emptied, nothing
 * flushed). */
enum export_end export_run(enum export_format f, const struct session *s,
                           const struct export_source *src, int64_t page_size,
                           const struct export_sink *sink, struct buf *out,
                           struct error *err);

#endif

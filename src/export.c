#include <string.h>

#include "clock.h"
#include "encode.h"
#include "export.h"
#include "json.h"
#include "role.h"
#include "banned.h"

const char *
export_format_name(enum export_format f)
{
    return f == EXPORT_CSV ? "csv" : "json";
}

const char *
export_content_type(enum export_format f)
{
    return f == EXPORT_CSV ? "text/csv; charset=utf-8" : "application/json";
}

/* RFC 4180 needs quotes for a comma, a quote, CR or LF.  Quoting also the
 * empty string keeps it apart from null, and quoting leading or trailing
 * blanks keeps them from parsers that trim unquoted fields. */
static bool
csv_needs_quotes(const char *s, size_t len)
{
    if (len == 0 || s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' ||
        s[len - 1] == '\t')
        return true;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
            return true;
    return false;
}

void
export_csv_field(struct buf *b, const char *s, size_t len)
{
    size_t start = 0;

    if (s == NULL)
        return;
    if (!csv_needs_quotes(s, len)) {
        buf_add(b, s, len);
        return;
    }
    buf_addch(b, '"');
    /* Copy runs between quotes in one go; each quote is doubled. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"')
            continue;
        buf_add(b, s + start, i + 1 - start);
        buf_addch(b, '"');
        start = i + 1;
    }
    buf_add(b, s + start, len - start);
    buf_addch(b, '"');
}

void
export_csv_cstr(struct buf *b, const char *s)
{
    export_csv_field(b, s, s != NULL ? strlen(s) : 0);
}

void
export_csv_header(struct buf *b)
{
    buf_adds(b, "message_id,role,content,tool_call_id,tool_name,created_at,"
                "updated_at\r\n");
}

void
export_csv_row(struct buf *b, const struct message *m)
{
    char id[UUID_STR_LEN + 1];
    char ts[CLOCK_RFC3339_LEN + 1];

    uuid_format(&m->id, id);
    buf_adds(b, id);
    buf_addch(b, ',');
    buf_adds(b, role_name(m->role));
    buf_addch(b, ',');
    export_csv_cstr(b, m->content);
    buf_addch(b, ',');
    export_csv_cstr(b, m->tool_call_id);
    buf_addch(b, ',');
    export_csv_cstr(b, m->tool_name);
    buf_addch(b, ',');
    clock_format(m->created_at, ts);
    buf_adds(b, ts);
    buf_addch(b, ',');
    clock_format(m->updated_at, ts);
    buf_adds(b, ts);
    buf_adds(b, "\r\n");
}

void
export_csv_abort(struct buf *b)
{
    buf_adds(b, "\"export incomplete: the server could not read every "
                "message");
}

void
export_json_head(struct buf *b, const struct session *s)
{
    buf_adds(b, "{\"session\":");
    encode_session(b, s);
    buf_adds(b, ",\"messages\":[");
}

void
export_json_message(struct buf *b, const struct message *m, size_t index)
{
    if (index > 0)
        buf_addch(b, ',');
    encode_message(b, m);
}

void
export_json_tail(struct buf *b)
{
    buf_adds(b, "]}");
}

bool
export_run(enum export_format f, const struct session *s,
           const struct export_source *src, int64_t page_size,
           const struct export_sink *sink, struct buf *out, struct error *err)
{
    int64_t after = 0; /* seqs start at 1 */
    size_t index = 0;

    if (page_size < 1)
        page_size = 1;
    if (f == EXPORT_JSON)
        export_json_head(out, s);
    else
        export_csv_header(out);
    for (;;) {
        struct message_page page;

        if (!src->next(src->ctx, after, page_size, &page, err))
            goto fail;
        for (size_t i = 0; i < page.len; i++, index++) {
            if (f == EXPORT_JSON)
                export_json_message(out, &page.items[i], index);
            else
                export_csv_row(out, &page.items[i]);
            /* Per message, not per page: one page of large messages must
             * not pile up as text on top of the page itself. */
            if (out->len >= EXPORT_FLUSH_BYTES)
                sink->flush(sink->ctx, out);
        }
        if ((int64_t)page.len < page_size)
            break;
        /* A source that stops moving forward would loop for ever. */
        if (page.items[page.len - 1].seq <= after) {
            error_set(err, ERR_INTERNAL, NULL,
                      "export: messages out of seq order");
            goto fail;
        }
        after = page.items[page.len - 1].seq;
    }
    if (f == EXPORT_JSON)
        export_json_tail(out);
    sink->flush(sink->ctx, out);
    return true;

fail:
    if (f == EXPORT_CSV)
        export_csv_abort(out);
    sink->flush(sink->ctx, out);
    return false;
}

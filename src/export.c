#include <string.h>

#include "clock.h"
#include "encode.h"
#include "export.h"
#include "json.h"
#include "role.h"
#include "service_openai.h"
#include "banned.h"

const char *
export_format_name(enum export_format f)
{
    return f == EXPORT_JSON ? "json" : "csv";
}

const char *
export_content_type(enum export_format f)
{
    return f == EXPORT_JSON ? "application/json" : "text/csv; charset=utf-8";
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

/* OWASP's list: what makes Excel, LibreOffice or Google Sheets read a
 * cell as a formula (or, for TAB and CR, hide the "=" behind them). */
static bool
csv_formula_start(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' ||
           c == '\r';
}

void
export_csv_safe_field(struct buf *b, const char *s, size_t len)
{
    struct buf tmp;

    if (s == NULL || len == 0 || !csv_formula_start(s[0])) {
        export_csv_field(b, s, len);
        return;
    }
    /* The quote goes inside the field, so the quoting rules see it. */
    buf_init(&tmp);
    buf_addch(&tmp, '\'');
    buf_add(&tmp, s, len);
    export_csv_field(b, tmp.data, tmp.len);
    buf_release(&tmp);
}

static void
csv_text(struct buf *b, const char *s, bool neutralise)
{
    if (neutralise)
        export_csv_safe_field(b, s, s != NULL ? strlen(s) : 0);
    else
        export_csv_cstr(b, s);
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
    export_csv_row_as(b, m, false);
}

void
export_csv_row_as(struct buf *b, const struct message *m, bool neutralise)
{
    char id[UUID_STR_LEN + 1];
    char ts[CLOCK_RFC3339_LEN + 1];

    uuid_format(&m->id, id);
    buf_adds(b, id);
    buf_addch(b, ',');
    buf_adds(b, role_name(m->role));
    buf_addch(b, ',');
    csv_text(b, m->content, neutralise);
    buf_addch(b, ',');
    csv_text(b, m->tool_call_id, neutralise);
    buf_addch(b, ',');
    csv_text(b, m->tool_name, neutralise);
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
export_csv_truncated(struct buf *b)
{
    buf_adds(b, "# truncated\r\n");
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
    char buf[OPENAI_ITEM_ID_MAX + 1];

    if (index > 0)
        buf_addch(b, ',');
    encode_message(b, m);
    /* The message as a /v1 item: the id it is shown with there and the
     * item its client sent, inside the message object. */
    buf_truncate(b, b->len - 1); /* its closing brace */
    buf_adds(b, ",\"item_id\":");
    json_write_cstr(b, service_openai_item_id(m, buf));
    if (m->item != NULL && m->item->type == JSON_OBJECT) {
        buf_adds(b, ",\"item\":");
        json_write_value(b, m->item);
    }
    buf_addch(b, '}');
}

void
export_json_tail(struct buf *b)
{
    buf_adds(b, "]}");
}

void
export_json_truncated(struct buf *b)
{
    buf_adds(b, "],\"truncated\":true}");
}

static enum export_check
export_check(const struct export_sink *sink)
{
    return sink->check != NULL ? sink->check(sink->ctx) : EXPORT_GO;
}

/* The next page's size: as many messages as the last page's text says
 * fit in page_bytes, between 1 and page_size. */
static int64_t
export_next_limit(const struct export_source *src, int64_t page_size,
                  size_t got, size_t text_bytes)
{
    uint64_t fit;

    if (src->page_bytes == 0 || got == 0)
        return page_size;
    if (text_bytes == 0)
        return page_size;
    fit = (uint64_t)src->page_bytes * got / text_bytes;
    if (fit < 1)
        return 1;
    return fit < (uint64_t)page_size ? (int64_t)fit : page_size;
}

enum export_end
export_run(enum export_format f, const struct session *s,
           const struct export_source *src, int64_t page_size,
           const struct export_sink *sink, struct buf *out, struct error *err)
{
    int64_t after = 0; /* seqs start at 1 */
    size_t index = 0;
    int64_t limit;
    enum export_check stop;

    if (page_size < 1)
        page_size = 1;
    limit = page_size;
    if (src->page_bytes > 0 && src->first_limit >= 1 &&
        src->first_limit < page_size)
        limit = src->first_limit;
    if (f == EXPORT_JSON)
        export_json_head(out, s);
    else
        export_csv_header(out);
    for (;;) {
        struct message_page page;
        size_t text = 0;

        stop = export_check(sink);
        if (stop != EXPORT_GO)
            goto stopped;
        if (!src->next(src->ctx, after, limit, &page, err)) {
            /* A read cut off by the deadline is the deadline's doing. */
            stop = export_check(sink);
            if (stop != EXPORT_GO) {
                error_clear(err);
                goto stopped;
            }
            goto fail;
        }
        for (size_t i = 0; i < page.len; i++, index++) {
            size_t before = out->len;

            if (f == EXPORT_JSON)
                export_json_message(out, &page.items[i], index);
            else
                export_csv_row_as(out, &page.items[i], f == EXPORT_CSV);
            text += out->len - before;
            /* Per message, not per page: one page of large messages must
             * not pile up as text on top of the page itself. */
            if (out->len >= EXPORT_FLUSH_BYTES)
                sink->flush(sink->ctx, out);
        }
        if ((int64_t)page.len < limit)
            break;
        /* A source that stops moving forward would loop for ever. */
        if (page.items[page.len - 1].seq <= after) {
            error_set(err, ERR_INTERNAL, NULL,
                      "export: messages out of seq order");
            goto fail;
        }
        after = page.items[page.len - 1].seq;
        limit = export_next_limit(src, page_size, page.len, text);
    }
    if (f == EXPORT_JSON)
        export_json_tail(out);
    sink->flush(sink->ctx, out);
    return EXPORT_COMPLETE;

stopped:
    if (stop == EXPORT_STOP_GONE) {
        /* Nobody reads it: what is left is dropped, not sent. */
        buf_reset(out);
        return EXPORT_ABANDONED;
    }
    if (f == EXPORT_JSON)
        export_json_truncated(out);
    else
        export_csv_truncated(out);
    sink->flush(sink->ctx, out);
    return EXPORT_TRUNCATED;

fail:
    if (f != EXPORT_JSON)
        export_csv_abort(out);
    sink->flush(sink->ctx, out);
    return EXPORT_FAILED;
}

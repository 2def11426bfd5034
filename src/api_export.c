/*
 * api_export.c - handlers of the export and import routes (the table is
 * in api.c).
 *
 * An export is streamed: status and headers go out once the session is
 * found, then the body page by page (export.c, service_export.c).  A
 * failure after that can no longer change the status; the body is cut
 * short (app.c logs it) and made unmistakably incomplete: JSON lacks its
 * closing "]}", CSV ends inside an unclosed quoted field.  Before each
 * page the export asks whether to go on: past export_deadline_ms (from
 * the request's arrival) it ends with the truncation marker (JSON
 * "truncated": true, CSV "# truncated"), and when the client has gone it
 * stops there, so an abandoned export costs at most one more page.
 *
 * An import is an ordinary JSON request, so the body limit
 * (max_body_bytes, and nginx's client_max_body_size) bounds how large an
 * export can be imported.
 */
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "export.h"
#include "log.h"
#include "metrics.h"
#include "service_export.h"
#include "banned.h"

/* A page holds about this much text (export.h's page_bytes). */
#define EXPORT_PAGE_BYTES (4u << 20)

struct export_stream {
    struct response *resp;
    int64_t deadline_ms; /* the export's own, monotonic */
};

static void
stream_flush(void *ctx, struct buf *out)
{
    struct export_stream *x = ctx;

    (void)out; /* it is x->resp->body */
    response_stream_flush(x->resp);
}

static enum export_check
stream_check(void *ctx)
{
    struct export_stream *x = ctx;

    if (response_client_gone(x->resp))
        return EXPORT_STOP_GONE;
    if (clock_mono_ms() >= x->deadline_ms)
        return EXPORT_STOP_DEADLINE;
    return EXPORT_GO;
}

bool
api_export_session(struct api_call *call, struct error *err)
{
    static const char *const formats[] = {"json", "csv", NULL};
    struct export_query {
        int format;
        int escape_formulas;
    } q = {EXPORT_JSON, 1};
    static const struct api_query_param params[] = {
        {"format", API_QUERY_ENUM, offsetof(struct export_query, format),
         .names = formats},
        {"escape_formulas", API_QUERY_BOOL,
         offsetof(struct export_query, escape_formulas), 0, 0, NULL},
    };
    const struct config *cfg = call->cfg;
    struct response *resp = call->resp;
    struct service_export_pages pages;
    struct export_source src;
    struct export_sink sink;
    struct export_stream stream;
    enum export_format format;
    enum export_end end;
    struct session s;
    size_t per_message;

    if (!api_query(call, params, API_NFIELDS(params), &q, err) ||
        !api_bulk_enter(call, err) ||
        !service_session_get(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), &s, err))
        return false;
    format = q.format == EXPORT_JSON ? EXPORT_JSON
             : q.escape_formulas     ? EXPORT_CSV
                                     : EXPORT_CSV_RAW;
    resp->content_type = export_content_type(format);
    /* session_id is [A-Za-z0-9._:-]: safe inside the quoted filename. */
    response_header(resp, "Content-Disposition",
                    arena_printf(call->req->arena,
                                 "attachment; filename=\"%s.%s\"", s.session_id,
                                 export_format_name(format)));
    response_stream_begin(resp);
    if (call->req->method == HTTP_HEAD)
        return true; /* the headers are the answer: read nothing */

    stream.resp = resp;
    stream.deadline_ms = call->received_ms + cfg->export_deadline_ms;
    service_export_pages_init(&pages, call->svc, call->user.sub, &s,
                              stream.deadline_ms);
    memset(&src, 0, sizeof(src));
    src.next = service_export_pages_next;
    src.ctx = &pages;
    /* The first page is sized for the largest messages there may be (its
     * fields and its /v1 item, each up to content plus metadata), the
     * next ones for those the last page held. */
    per_message =
        2 * ((size_t)cfg->max_content_bytes + (size_t)cfg->max_metadata_bytes) +
        1024;
    src.page_bytes = EXPORT_PAGE_BYTES;
    src.first_limit = (int64_t)(EXPORT_PAGE_BYTES / per_message);
    if (src.first_limit < 1) /* messages larger than a page: one at a time */
        src.first_limit = 1;
    sink.flush = stream_flush;
    sink.check = stream_check;
    sink.ctx = &stream;
    end = export_run(format, &s, &src, SERVICE_EXPORT_PAGE, &sink, &resp->body,
                     err);
    service_export_pages_release(&pages);
    switch (end) {
    case EXPORT_TRUNCATED:
        metrics_count(METRICS_EXPORT_TRUNCATED);
        log_info("export cut short by export_deadline_ms (%d ms): ended "
                 "with the truncation marker",
                 cfg->export_deadline_ms);
        break;
    case EXPORT_ABANDONED:
        /* Logged and counted as nginx would: 499, the client closed. */
        metrics_count(METRICS_GONE_SERVING);
        resp->status = 499;
        break;
    default:
        break;
    }
    return end != EXPORT_FAILED;
}

/* The exported session: what create takes, plus status, plus the
 * server's fields, which are accepted and ignored. */
struct import_session {
    struct session_create c;
    const struct json_value *status;
    const struct json_value *ignored;
};

static const struct api_body_field import_session_fields[] = {
    {"session_id", offsetof(struct import_session, c.session_id)},
    API_SESSION_FIELDS(struct import_session, c.f),
    {"status", offsetof(struct import_session, status)},
    {"id", offsetof(struct import_session, ignored)},
    {"message_count", offsetof(struct import_session, ignored)},
    {"metrics", offsetof(struct import_session, ignored)},
    {"version", offsetof(struct import_session, ignored)},
    {"created_at", offsetof(struct import_session, ignored)},
    {"updated_at", offsetof(struct import_session, ignored)},
    {"last_activity_at", offsetof(struct import_session, ignored)},
};

/* An exported message: what append takes (but client_message_id, which
 * an export never holds), plus the server's fields, ignored. */
struct import_message {
    struct message_input in;
    struct import_item v1;
    const struct json_value *ignored;
};

static const struct api_body_field import_message_fields[] = {
    {"role", offsetof(struct import_message, in.role)},
    {"content", offsetof(struct import_message, in.content)},
    {"tool_call_id", offsetof(struct import_message, in.tool_call_id)},
    {"tool_name", offsetof(struct import_message, in.tool_name)},
    {"extra_data", offsetof(struct import_message, in.extra_data)},
    {"item", offsetof(struct import_message, v1.item)},
    {"item_id", offsetof(struct import_message, v1.item_id)},
    {"id", offsetof(struct import_message, ignored)},
    {"session_id", offsetof(struct import_message, ignored)},
    {"seq", offsetof(struct import_message, ignored)},
    {"created_at", offsetof(struct import_message, ignored)},
    {"updated_at", offsetof(struct import_message, ignored)},
};

static bool
decode_import(struct api_call *call, struct import_input *out,
              struct error *err)
{
    struct arena *a = call->req->arena;
    struct body {
        const struct json_value *session;
        const struct json_value *messages;
        const struct json_value *truncated;
    } body = {NULL, NULL, NULL};
    static const struct api_body_field fields[] = {
        {"session", offsetof(struct body, session)},
        {"messages", offsetof(struct body, messages)},
        {"truncated", offsetof(struct body, truncated)},
    };
    struct import_session sess;
    struct import_message *items;
    struct message_input *msgs;
    struct import_item *v1;
    const struct json_value *list;

    memset(out, 0, sizeof(*out));
    memset(&sess, 0, sizeof(sess));
    if (!api_decode_fields(call->body, fields, API_NFIELDS(fields), &body, err))
        return false;
    /* An export cut short by its deadline says so; importing it would
     * make a session that silently lacks its last messages. */
    if (body.truncated != NULL &&
        (body.truncated->type != JSON_BOOL || body.truncated->u.b))
        return error_set(err, ERR_VALIDATION, "truncated",
                         body.truncated->type == JSON_BOOL
                             ? "this export was cut short (truncated); "
                               "export the session again to import it whole"
                             : "truncated must be a boolean");
    if (body.session == NULL || body.session->type != JSON_OBJECT)
        return error_set(err, ERR_VALIDATION, "session",
                         "session must be the exported session object");
    if (!api_decode_fields(body.session, import_session_fields,
                           API_NFIELDS(import_session_fields), &sess, err)) {
        err->param = arena_printf(a, "session.%s", err->param);
        return false;
    }
    list = body.messages;
    if (list == NULL || list->type != JSON_ARRAY)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages must be the array of exported messages");
    items = arena_calloc(a, (list->u.a.len > 0 ? list->u.a.len : 1) *
                                sizeof(*items));
    msgs = arena_calloc(a, (list->u.a.len > 0 ? list->u.a.len : 1) *
                               sizeof(*msgs));
    v1 = arena_calloc(a, (list->u.a.len > 0 ? list->u.a.len : 1) * sizeof(*v1));
    if (!api_decode_messages(call, list, import_message_fields,
                             API_NFIELDS(import_message_fields), items,
                             sizeof(*items), err))
        return false;
    for (size_t i = 0; i < list->u.a.len; i++) {
        msgs[i] = items[i].in;
        v1[i] = items[i].v1;
    }
    out->session = sess.c;
    out->status = sess.status;
    out->messages = msgs;
    out->items = v1;
    out->n = list->u.a.len;
    return true;
}

bool
api_export_import(struct api_call *call, struct error *err)
{
    struct import_input in;
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) || !api_bulk_enter(call, err) ||
        !decode_import(call, &in, err) ||
        !service_export_import(call->svc, &call->ctx, call->user.sub, &in, &s,
                               err))
        return false;
    /* Counted for the session it made, as the conversation route is. */
    call->session_named = s.session_id;
    api_respond_new_session(call, &s);
    return true;
}

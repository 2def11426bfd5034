/*
 * api_export.c - handlers of the export and import routes (the table is
 * in api.c).
 *
 * An export is streamed: status and headers go out once the session is
 * found, then the body page by page (export.c, service_export.c).  A
 * failure after that can no longer change the status; the body is cut
 * short (app.c logs it) and made unmistakably incomplete: JSON lacks its
 * closing "]}", CSV ends inside an unclosed quoted field.
 *
 * An import is an ordinary JSON request, so the body limit
 * (max_body_bytes, and nginx's client_max_body_size) bounds how large an
 * export can be imported.
 */
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "export.h"
#include "service_export.h"
#include "banned.h"

static void
stream_flush(void *resp, struct buf *out)
{
    struct response *r = resp;

    (void)out; /* it is r->body */
    response_stream_flush(r);
}

bool
api_export_session(struct api_call *call, struct error *err)
{
    static const char *const formats[] = {"json", "csv", NULL};
    static const struct api_query_param params[] = {
        {"format", API_QUERY_ENUM, 0, .names = formats},
    };
    struct response *resp = call->resp;
    struct service_export_pages pages;
    struct export_source src;
    struct export_sink sink;
    int format = EXPORT_JSON;
    struct session s;
    bool ok;

    if (!api_query(call, params, API_NFIELDS(params), &format, err) ||
        !service_session_get(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), &s, err))
        return false;
    resp->content_type = export_content_type((enum export_format)format);
    /* session_id is [A-Za-z0-9._:-]: safe inside the quoted filename. */
    response_header(
        resp, "Content-Disposition",
        arena_printf(call->req->arena, "attachment; filename=\"%s.%s\"",
                     s.session_id,
                     export_format_name((enum export_format)format)));
    response_stream_begin(resp);
    if (call->req->method == HTTP_HEAD)
        return true; /* the headers are the answer: read nothing */

    service_export_pages_init(&pages, call->svc, call->user.sub, &s);
    src.next = service_export_pages_next;
    src.ctx = &pages;
    sink.flush = stream_flush;
    sink.ctx = resp;
    ok = export_run((enum export_format)format, &s, &src, SERVICE_EXPORT_PAGE,
                    &sink, &resp->body, err);
    service_export_pages_release(&pages);
    return ok;
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
    const struct json_value *ignored;
};

static const struct api_body_field import_message_fields[] = {
    {"role", offsetof(struct import_message, in.role)},
    {"content", offsetof(struct import_message, in.content)},
    {"tool_call_id", offsetof(struct import_message, in.tool_call_id)},
    {"tool_name", offsetof(struct import_message, in.tool_name)},
    {"extra_data", offsetof(struct import_message, in.extra_data)},
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
    } body = {NULL, NULL};
    static const struct api_body_field fields[] = {
        {"session", offsetof(struct body, session)},
        {"messages", offsetof(struct body, messages)},
    };
    struct import_session sess;
    struct import_message *items;
    struct message_input *msgs;
    const struct json_value *list;

    memset(out, 0, sizeof(*out));
    memset(&sess, 0, sizeof(sess));
    if (!api_decode_fields(call->body, fields, API_NFIELDS(fields), &body, err))
        return false;
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
    if (!api_decode_messages(call, list, import_message_fields,
                             API_NFIELDS(import_message_fields), items,
                             sizeof(*items), err))
        return false;
    for (size_t i = 0; i < list->u.a.len; i++)
        msgs[i] = items[i].in;
    out->session = sess.c;
    out->status = sess.status;
    out->messages = msgs;
    out->n = list->u.a.len;
    return true;
}

bool
api_export_import(struct api_call *call, struct error *err)
{
    struct import_input in;
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !decode_import(call, &in, err) ||
        !service_export_import(call->svc, &call->ctx, call->user.sub, &in, &s,
                               err))
        return false;
    /* Counted for the session it made, as the conversation route is. */
    call->session_named = s.session_id;
    api_respond_new_session(call, &s);
    return true;
}

/*
 * api_session.c - handlers of the session routes: create, list, read,
 * PATCH, delete, and the status changes activate, deactivate and end
 * (the table is in api.c).
 */
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "encode.h"
#include "service_session.h"
#include "banned.h"

bool
api_session_create(struct api_call *call, struct error *err)
{
    static const struct api_body_field fields[] = {
        {"session_id", offsetof(struct session_create, session_id)},
        API_SESSION_FIELDS(struct session_create, f),
        {"if_exists", offsetof(struct session_create, if_exists)},
    };
    struct session_create in;
    struct session s;
    bool created;

    memset(&in, 0, sizeof(in));
    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &in, err) ||
        !service_session_create(call->svc, &call->ctx, call->user.sub, &in, &s,
                                &created, err))
        return false;
    if (created)
        api_respond_new_session(call, &s);
    else
        api_respond_session(call, 200, &s);
    return true;
}

/* What GET /api/agent-sessions reads from its query string. */
struct session_list_query {
    struct api_page page;
    struct session_filter f;
    int sort; /* enum session_sort */
};

bool
api_session_list(struct api_call *call, struct error *err)
{
    static const char *const statuses[] = {"active", "inactive", "completed",
                                           "failed", "expired",  NULL};
    static const char *const sorts[] = {"-updated_at", "updated_at",
                                        "-created_at", "created_at", NULL};
#define Q(m) offsetof(struct session_list_query, m)
    static const struct api_query_param params[] = {
        {NULL, API_QUERY_PAGING, Q(page), .min = 20},
        {"search", API_QUERY_STRING, Q(f.search), .max = 255},
        {"status", API_QUERY_ENUM, Q(f.status), .names = statuses},
        {"is_active", API_QUERY_BOOL, Q(f.is_active), 0, 0, NULL},
        {"agent_name", API_QUERY_STRING, Q(f.agent_name),
         .max = API_MAX_NAME_CHARS},
        {"created_after", API_QUERY_TIME, Q(f.created_after), 0, 0, NULL},
        {"created_before", API_QUERY_TIME, Q(f.created_before), 0, 0, NULL},
        {"updated_after", API_QUERY_TIME, Q(f.updated_after), 0, 0, NULL},
        {"updated_before", API_QUERY_TIME, Q(f.updated_before), 0, 0, NULL},
        {"sort", API_QUERY_ENUM, Q(sort), .names = sorts},
    };
#undef Q
    struct session_list_query in;
    struct session_page page;

    memset(&in, 0, sizeof(in));
    in.f.status = -1;
    in.f.is_active = -1;
    in.f.created_after = in.f.created_before = STORE_NO_TIME;
    in.f.updated_after = in.f.updated_before = STORE_NO_TIME;
    in.sort = SORT_UPDATED_DESC;
    if (!api_query(call, params, API_NFIELDS(params), &in, err))
        return false;
    in.f.sort = (enum session_sort)in.sort;
    if (!service_session_list(call->svc, &call->ctx, call->user.sub, &in.f,
                              in.page.limit, in.page.offset, &page, err))
        return false;
    encode_session_page(&call->resp->body, &page, in.page.limit, in.page.offset,
                        (size_t)call->cfg->page_max_bytes);
    return true;
}

bool
api_session_get(struct api_call *call, struct error *err)
{
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_session_get(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), &s, err))
        return false;
    api_respond_session(call, 200, &s);
    return true;
}

bool
api_session_patch(struct api_call *call, struct error *err)
{
    static const struct api_body_field fields[] = {
        API_SESSION_FIELDS(struct session_patch, f),
        {"status", offsetof(struct session_patch, status)},
    };
    struct session_patch in;
    struct session s;
    int64_t if_match;

    memset(&in, 0, sizeof(in));
    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_if_match(call->req->if_match, &if_match, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &in, err) ||
        !service_session_patch(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), if_match, &in, &s, err))
        return false;
    api_respond_session(call, 200, &s);
    return true;
}

bool
api_session_delete(struct api_call *call, struct error *err)
{
    int64_t if_match;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_if_match(call->req->if_match, &if_match, err) ||
        !service_session_delete(call->svc, &call->ctx, call->user.sub,
                                api_session_param(call), if_match, err))
        return false;
    call->resp->status = 204;
    return true;
}

static bool
set_status(struct api_call *call, enum session_status to, struct error *err)
{
    struct session s;
    int64_t if_match;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_if_match(call->req->if_match, &if_match, err) ||
        !service_session_set_status(call->svc, &call->ctx, call->user.sub,
                                    api_session_param(call), if_match, to, &s,
                                    err))
        return false;
    api_respond_session(call, 200, &s);
    return true;
}

bool
api_session_end(struct api_call *call, struct error *err)
{
    const struct json_value *status = NULL;
    static const struct api_body_field fields[] = {{"status", 0}};
    int to;

    if (!api_decode_fields(call->body, fields, 1, &status, err))
        return false;
    if (status == NULL)
        return error_set(err, ERR_VALIDATION, "status",
                         "status is required: completed, failed or expired");
    to = status->type == JSON_STRING ? status_parse(status->u.s.ptr) : -1;
    if (to != STATUS_COMPLETED && to != STATUS_FAILED && to != STATUS_EXPIRED)
        return error_set(err, ERR_VALIDATION, "status",
                         "status must be completed, failed or expired");
    return set_status(call, (enum session_status)to, err);
}

bool
api_session_activate(struct api_call *call, struct error *err)
{
    return set_status(call, STATUS_ACTIVE, err);
}

bool
api_session_deactivate(struct api_call *call, struct error *err)
{
    return set_status(call, STATUS_INACTIVE, err);
}

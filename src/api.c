#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "encode.h"
#include "banned.h"

enum api_handler {
    H_HEALTHZ,
    H_READYZ,
    H_SESSION_CREATE,
    H_SESSION_LIST,
    H_SESSION_GET,
    H_SESSION_PATCH,
    H_SESSION_DELETE,
    H_SESSION_ACTIVATE,
    H_SESSION_DEACTIVATE,
    H_SESSION_END,
    H_MESSAGE_APPEND,
    H_MESSAGE_LIST,
    H_MESSAGE_GET,
    H_MESSAGE_PATCH,
    H_MESSAGE_DELETE,
    H_MESSAGE_CLEAR,
    H_CONTEXT,
    H_CONVERSATION,
    H_MEMORY_LIST,
    H_MEMORY_GET,
    H_MEMORY_PUT,
    H_MEMORY_DELETE,
    H_METRICS,
    H_EXPORT,
    H_IMPORT,
    H_STATS,
    H_HEALTH,
    H_ADMIN_CLEANUP,
    H_ADMIN_ERASE_USER,
};

#define SESSIONS "/api/agent-sessions"
#define ONE      SESSIONS "/{session_id}"
#define USER     (API_AUTH | API_DB)

const struct route api_routes[] = {
    {HTTP_GET, "/healthz", H_HEALTHZ, 0},
    {HTTP_GET, "/readyz", H_READYZ, 0},
    {HTTP_POST, SESSIONS, H_SESSION_CREATE, USER | API_BODY},
    {HTTP_GET, SESSIONS, H_SESSION_LIST, USER},
    {HTTP_GET, ONE, H_SESSION_GET, USER},
    {HTTP_PATCH, ONE, H_SESSION_PATCH, USER | API_BODY},
    {HTTP_DELETE, ONE, H_SESSION_DELETE, USER},
    {HTTP_PUT, ONE "/activate", H_SESSION_ACTIVATE, USER},
    {HTTP_PUT, ONE "/deactivate", H_SESSION_DEACTIVATE, USER},
    {HTTP_POST, ONE "/end", H_SESSION_END, USER | API_BODY},
    {HTTP_POST, SESSIONS "/conversation", H_CONVERSATION, USER | API_BODY},
    {HTTP_POST, ONE "/messages", H_MESSAGE_APPEND, USER | API_BODY},
    {HTTP_GET, ONE "/messages", H_MESSAGE_LIST, USER},
    {HTTP_GET, ONE "/messages/{message_id}", H_MESSAGE_GET, USER},
    {HTTP_PATCH, ONE "/messages/{message_id}", H_MESSAGE_PATCH,
     USER | API_BODY},
    {HTTP_DELETE, ONE "/messages/{message_id}", H_MESSAGE_DELETE, USER},
    {HTTP_DELETE, ONE "/clear-messages", H_MESSAGE_CLEAR, USER},
    {HTTP_GET, ONE "/context", H_CONTEXT, USER},
    {HTTP_GET, ONE "/memory", H_MEMORY_LIST, USER},
    {HTTP_GET, ONE "/memory/{key}", H_MEMORY_GET, USER},
    {HTTP_PUT, ONE "/memory/{key}", H_MEMORY_PUT, USER | API_BODY_ANY},
    {HTTP_DELETE, ONE "/memory/{key}", H_MEMORY_DELETE, USER},
    {HTTP_GET, "/metrics", H_METRICS, 0},
    {HTTP_GET, ONE "/export", H_EXPORT, USER},
    {HTTP_POST, SESSIONS "/import", H_IMPORT, USER | API_BODY},
    {HTTP_GET, SESSIONS "/stats", H_STATS, USER},
    {HTTP_GET, ONE "/health", H_HEALTH, USER},
    {HTTP_POST, "/api/admin/cleanup", H_ADMIN_CLEANUP, USER},
    {HTTP_DELETE, "/api/admin/users/{user_id}", H_ADMIN_ERASE_USER, USER},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

/* --- helpers shared by the handlers ----------------------------------- */

/* Maps each member of an object body onto a field of a struct of
 * `const struct json_value *` slots; a name not in the table is the
 * contract's 400 unknown_field. */
bool
api_decode_fields(const struct json_value *body,
                  const struct api_body_field *fields, size_t n, void *out,
                  struct error *err)
{
    for (size_t i = 0; i < body->u.o.len; i++) {
        const struct json_member *m = &body->u.o.members[i];
        size_t k;

        for (k = 0; k < n; k++) {
            if (strcmp(m->key, fields[k].name) == 0) {
                *(const struct json_value **)((char *)out + fields[k].offset) =
                    m->value;
                break;
            }
        }
        if (k == n)
            return error_set(err, ERR_UNKNOWN_FIELD, m->key,
                             "unknown field \"%.64s\"", m->key);
    }
    return true;
}

bool
api_if_match(const char *header, int64_t *version, struct error *err)
{
    const char *p = header, *end;
    char *num_end;
    long long v;

    *version = IF_MATCH_ANY;
    if (header == NULL)
        return true;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end - p == 1 && *p == '*')
        return true;
    /* A weak tag never matches under If-Match's strong comparison
     * (RFC 9110 13.1.1). */
    if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
        *version = IF_MATCH_NEVER;
        return true;
    }
    if (end - p >= 2 && *p == '"' && end[-1] == '"') {
        p++;
        end--;
    }
    if (p == end || !isdigit((unsigned char)*p))
        goto bad;
    errno = 0;
    v = strtoll(p, &num_end, 10);
    if (errno != 0 || num_end != end || v < 1)
        goto bad;
    *version = v;
    return true;
bad:
    return error_set(err, ERR_VALIDATION, "If-Match",
                     "If-Match must be a version such as \"3\" or *");
}

const char *
api_session_param(const struct api_call *call)
{
    return router_param(call->match, "session_id");
}

void
api_respond_session(struct api_call *call, int status, const struct session *s)
{
    call->resp->status = status;
    response_header(
        call->resp, "ETag",
        arena_printf(call->req->arena, "\"%lld\"", (long long)s->version));
    encode_session(&call->resp->body, s);
}

/* Shared by every list route: limit/offset or page/size, never both. */
bool
api_paging(struct api_call *call, int64_t default_limit, int64_t *limit,
           int64_t *offset, struct error *err)
{
    struct query *q = &call->query;
    int64_t max = call->cfg->max_page_limit, page = 0, size = 0;
    bool classic = query_has(q, "limit") || query_has(q, "offset");

    *limit = default_limit;
    *offset = 0;
    if (classic && (query_has(q, "page") || query_has(q, "size")))
        return error_set(err, ERR_VALIDATION, "page",
                         "use limit/offset or page/size, not both");
    if (!query_int(q, "limit", 1, max, limit, err) ||
        !query_int(q, "offset", 0, call->cfg->max_offset, offset, err) ||
        !query_int(q, "page", 1, 1000000, &page, err) ||
        !query_int(q, "size", 1, max, &size, err))
        return false;
    if (size > 0)
        *limit = size;
    if (page > 0) {
        *offset = (page - 1) * *limit;
        if (*offset > call->cfg->max_offset)
            return error_set(err, ERR_VALIDATION, "page",
                             "page is past the last reachable offset %d",
                             call->cfg->max_offset);
    }
    return true;
}

/* --- handlers ------------------------------------------------------------ */

static bool
h_healthz(struct api_call *call, struct error *err)
{
    (void)err;
    buf_adds(&call->resp->body, "{\"status\":\"ok\"}");
    return true;
}

static bool
h_readyz(struct api_call *call, struct error *err)
{
    struct store *store = call->svc->store;

    /* Ready means the database answers now: one short try, no backoff,
     * so a load balancer's probe gets a quick honest answer. */
    call->ctx.deadline_ms =
        call->req->started_ms + (call->cfg->request_deadline_ms < 1000
                                     ? call->cfg->request_deadline_ms
                                     : 1000);
    if (!store_ping(store, &call->ctx, err))
        return error_set(err, ERR_UNAVAILABLE, NULL,
                         "the database is not answering");
    if (!*call->indexes_ready) {
        if (!store_ensure_indexes(store, &call->ctx, err))
            return false;
        *call->indexes_ready = true;
    }
    buf_adds(&call->resp->body, "{\"status\":\"ready\"}");
    return true;
}

static bool
h_session_create(struct api_call *call, struct error *err)
{
    static const struct api_body_field fields[] = {
        {"session_id", offsetof(struct session_create, session_id)},
        {"session_name", offsetof(struct session_create, session_name)},
        {"description", offsetof(struct session_create, description)},
        {"agent_name", offsetof(struct session_create, agent_name)},
        {"agent_instructions",
         offsetof(struct session_create, agent_instructions)},
        {"metadata", offsetof(struct session_create, metadata)},
        {"is_active", offsetof(struct session_create, is_active)},
        {"if_exists", offsetof(struct session_create, if_exists)},
    };
    struct session_create in;
    struct session s;
    bool created;

    memset(&in, 0, sizeof(in));
    if (!query_check_unused(&call->query, err) ||
        !api_decode_fields(call->body, fields,
                           sizeof(fields) / sizeof(fields[0]), &in, err) ||
        !service_session_create(call->svc, &call->ctx, call->user.sub, &in, &s,
                                &created, err))
        return false;
    if (created)
        response_header(
            call->resp, "Location",
            arena_printf(call->req->arena, SESSIONS "/%s", s.session_id));
    api_respond_session(call, created ? 201 : 200, &s);
    return true;
}

static bool
h_session_list(struct api_call *call, struct error *err)
{
    static const char *const statuses[] = {"active", "inactive", "completed",
                                           "failed", "expired",  NULL};
    static const char *const sorts[] = {"-updated_at", "updated_at",
                                        "-created_at", "created_at", NULL};
    struct query *q = &call->query;
    struct session_filter f;
    struct session_page page;
    int64_t limit, offset;
    int sort = SORT_UPDATED_DESC;

    memset(&f, 0, sizeof(f));
    f.status = -1;
    f.is_active = -1;
    f.created_after = f.created_before = STORE_NO_TIME;
    f.updated_after = f.updated_before = STORE_NO_TIME;
    if (!api_paging(call, 20, &limit, &offset, err) ||
        !query_string(q, "search", 255, &f.search, err) ||
        !query_enum(q, "status", statuses, &f.status, err) ||
        !query_bool(q, "is_active", &f.is_active, err) ||
        !query_string(q, "agent_name", (size_t)call->cfg->max_name_chars,
                      &f.agent_name, err) ||
        !query_time(q, "created_after", &f.created_after, err) ||
        !query_time(q, "created_before", &f.created_before, err) ||
        !query_time(q, "updated_after", &f.updated_after, err) ||
        !query_time(q, "updated_before", &f.updated_before, err) ||
        !query_enum(q, "sort", sorts, &sort, err) ||
        !query_check_unused(q, err))
        return false;
    f.sort = (enum session_sort)sort;
    if (!service_session_list(call->svc, &call->ctx, call->user.sub, &f, limit,
                              offset, &page, err))
        return false;
    encode_session_page(&call->resp->body, &page, limit, offset);
    return true;
}

static bool
h_session_get(struct api_call *call, struct error *err)
{
    struct session s;

    if (!query_check_unused(&call->query, err) ||
        !service_session_get(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), &s, err))
        return false;
    api_respond_session(call, 200, &s);
    return true;
}

static bool
h_session_patch(struct api_call *call, struct error *err)
{
    static const struct api_body_field fields[] = {
        {"session_name", offsetof(struct session_patch, session_name)},
        {"description", offsetof(struct session_patch, description)},
        {"agent_name", offsetof(struct session_patch, agent_name)},
        {"agent_instructions",
         offsetof(struct session_patch, agent_instructions)},
        {"metadata", offsetof(struct session_patch, metadata)},
        {"is_active", offsetof(struct session_patch, is_active)},
        {"status", offsetof(struct session_patch, status)},
    };
    struct session_patch in;
    struct session s;
    int64_t if_match;

    memset(&in, 0, sizeof(in));
    if (!query_check_unused(&call->query, err) ||
        !api_if_match(call->req->if_match, &if_match, err) ||
        !api_decode_fields(call->body, fields,
                           sizeof(fields) / sizeof(fields[0]), &in, err) ||
        !service_session_patch(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), if_match, &in, &s, err))
        return false;
    api_respond_session(call, 200, &s);
    return true;
}

static bool
h_session_delete(struct api_call *call, struct error *err)
{
    int64_t if_match;

    if (!query_check_unused(&call->query, err) ||
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

    if (!query_check_unused(&call->query, err) ||
        !api_if_match(call->req->if_match, &if_match, err) ||
        !service_session_set_status(call->svc, &call->ctx, call->user.sub,
                                    api_session_param(call), if_match, to, &s,
                                    err))
        return false;
    api_respond_session(call, 200, &s);
    return true;
}

static bool
h_session_end(struct api_call *call, struct error *err)
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

static bool
h_session_activate(struct api_call *call, struct error *err)
{
    return set_status(call, STATUS_ACTIVE, err);
}

static bool
h_session_deactivate(struct api_call *call, struct error *err)
{
    return set_status(call, STATUS_INACTIVE, err);
}

typedef bool (*api_fn)(struct api_call *call, struct error *err);

/* Indexed by enum api_handler: a route's handler number is its place
 * here. */
static const api_fn api_handlers[] = {
    [H_HEALTHZ] = h_healthz,
    [H_READYZ] = h_readyz,
    [H_SESSION_CREATE] = h_session_create,
    [H_SESSION_LIST] = h_session_list,
    [H_SESSION_GET] = h_session_get,
    [H_SESSION_PATCH] = h_session_patch,
    [H_SESSION_DELETE] = h_session_delete,
    [H_SESSION_END] = h_session_end,
    [H_MESSAGE_APPEND] = api_message_append,
    [H_MESSAGE_LIST] = api_message_list,
    [H_MESSAGE_GET] = api_message_get,
    [H_MESSAGE_PATCH] = api_message_patch,
    [H_MESSAGE_DELETE] = api_message_delete,
    [H_MESSAGE_CLEAR] = api_message_clear,
    [H_CONTEXT] = api_message_context,
    [H_CONVERSATION] = api_message_conversation,
    [H_MEMORY_LIST] = api_message_memory_list,
    [H_MEMORY_GET] = api_message_memory_get,
    [H_MEMORY_PUT] = api_message_memory_put,
    [H_MEMORY_DELETE] = api_message_memory_delete,
    [H_METRICS] = api_metrics,
    [H_EXPORT] = api_export_session,
    [H_IMPORT] = api_export_import,
    [H_STATS] = api_lifecycle_stats,
    [H_HEALTH] = api_lifecycle_health,
    [H_ADMIN_CLEANUP] = api_lifecycle_cleanup,
    [H_ADMIN_ERASE_USER] = api_lifecycle_erase_user,
    [H_SESSION_ACTIVATE] = h_session_activate,
    [H_SESSION_DEACTIVATE] = h_session_deactivate,
};

bool
api_dispatch(struct api_call *call, struct error *err)
{
    int h = call->match->route->handler;

    if (h < 0 || (size_t)h >= sizeof(api_handlers) / sizeof(api_handlers[0]) ||
        api_handlers[h] == NULL)
        return error_set(err, ERR_INTERNAL, NULL, "no handler");
    return api_handlers[h](call, err);
}

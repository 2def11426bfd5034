/*
 * api.c - the route table, and what every handler shares: decoding a
 * body by its table of members, reading the query string by its table
 * of parameters, paging, If-Match, and answering with a session.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "encode.h"
#include "metrics.h"
#include "banned.h"

#define SESSIONS "/api/agent-sessions"
#define ONE      SESSIONS "/{session_id}"
#define USER     (API_AUTH | API_DB)
#define CONVS    "/v1/conversations"
#define CONV     CONVS "/{session_id}"

/* One row per route: method, pattern, handler, what app.c does first.
 * The order decides nothing in matching (router.h), but a row's place is
 * its index in the metrics (metrics.h).  Adding a route is a row here
 * and its handler, declared in api.h and written in its resource's
 * api_*.c. */
const struct route api_routes[] = {
    {HTTP_GET, "/healthz", api_ops_healthz, 0},
    {HTTP_GET, "/readyz", api_ops_readyz, 0},
    {HTTP_POST, SESSIONS, api_session_create, USER | API_BODY},
    {HTTP_GET, SESSIONS, api_session_list, USER},
    {HTTP_GET, ONE, api_session_get, USER},
    {HTTP_PATCH, ONE, api_session_patch, USER | API_BODY},
    {HTTP_DELETE, ONE, api_session_delete, USER},
    {HTTP_PUT, ONE "/activate", api_session_activate, USER},
    {HTTP_PUT, ONE "/deactivate", api_session_deactivate, USER},
    {HTTP_POST, ONE "/end", api_session_end, USER | API_BODY},
    {HTTP_POST, SESSIONS "/conversation", api_conversation_turn,
     USER | API_BODY | API_CONVERSATION},
    {HTTP_POST, ONE "/messages", api_message_append, USER | API_BODY},
    {HTTP_GET, ONE "/messages", api_message_list, USER},
    {HTTP_GET, ONE "/messages/{message_id}", api_message_get, USER},
    {HTTP_PATCH, ONE "/messages/{message_id}", api_message_patch,
     USER | API_BODY},
    {HTTP_DELETE, ONE "/messages/{message_id}", api_message_delete, USER},
    {HTTP_DELETE, ONE "/clear-messages", api_message_clear, USER},
    {HTTP_GET, ONE "/context", api_message_context, USER},
    {HTTP_GET, ONE "/memory", api_memory_list, USER},
    {HTTP_GET, ONE "/memory/{key}", api_memory_get, USER},
    {HTTP_PUT, ONE "/memory/{key}", api_memory_put, USER | API_BODY_ANY},
    {HTTP_DELETE, ONE "/memory/{key}", api_memory_delete, USER},
    {HTTP_GET, "/metrics", api_ops_metrics, 0},
    {HTTP_GET, ONE "/export", api_export_session, USER},
    {HTTP_POST, SESSIONS "/import", api_export_import, USER | API_BODY},
    {HTTP_GET, SESSIONS "/stats", api_lifecycle_stats, USER},
    {HTTP_GET, ONE "/health", api_lifecycle_health, USER},
    {HTTP_POST, "/api/admin/cleanup", api_lifecycle_cleanup, USER},
    {HTTP_DELETE, "/api/admin/users/{user_id}", api_lifecycle_erase_user, USER},
    /* OpenAI's Conversations API (api_openai.c): a conversation is the
     * session named {session_id}, so its metrics count these too. */
    {HTTP_POST, CONVS, api_openai_create, USER | API_BODY},
    {HTTP_GET, CONV, api_openai_get, USER},
    {HTTP_POST, CONV, api_openai_update, USER | API_BODY},
    {HTTP_DELETE, CONV, api_openai_delete, USER},
    {HTTP_POST, CONV "/items", api_openai_items_create, USER | API_BODY},
    {HTTP_GET, CONV "/items", api_openai_items_list, USER},
    {HTTP_GET, CONV "/items/{item_id}", api_openai_item_get, USER},
    {HTTP_DELETE, CONV "/items/{item_id}", api_openai_item_delete, USER},
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
api_decode_messages(struct api_call *call, const struct json_value *list,
                    const struct api_body_field *fields, size_t n, void *out,
                    size_t size, struct error *err)
{
    struct arena *a = call->req->arena;

    for (size_t i = 0; i < list->u.a.len; i++) {
        const struct json_value *item = list->u.a.items[i];

        if (item->type != JSON_OBJECT)
            return error_set(err, ERR_VALIDATION,
                             arena_printf(a, "messages[%zu]", i),
                             "each message must be an object");
        if (!api_decode_fields(item, fields, n, (char *)out + i * size, err)) {
            err->param = arena_printf(a, "messages[%zu].%s", i, err->param);
            return false;
        }
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

bool
api_bulk_enter(struct api_call *call, struct error *err)
{
    int limit = call->cfg->user_max_bulk;

    if (limit <= 0 || metrics_bulk_enter(call->user.sub, limit))
        return true;
    metrics_count(METRICS_BULK_REJECTED);
    return error_set(err, ERR_TOO_MANY_REQUESTS, NULL,
                     "more than %d bulk requests (exports, imports, batches) "
                     "of this user at once; retry after a moment",
                     limit);
}

bool
api_is_openai_path(const char *path)
{
    return path != NULL && strncmp(path, "/v1", 3) == 0 &&
           (path[3] == '\0' || path[3] == '/');
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

void
api_respond_new_session(struct api_call *call, const struct session *s)
{
    response_header(
        call->resp, "Location",
        arena_printf(call->req->arena, SESSIONS "/%s", s->session_id));
    api_respond_session(call, 201, s);
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

/* The max a row names: its own, or one the configuration sets. */
static int64_t
query_max(const struct config *cfg, int64_t max)
{
    if (max == API_MAX_PAGE_LIMIT)
        return cfg->max_page_limit;
    if (max == API_MAX_NAME_CHARS)
        return cfg->max_name_chars;
    return max;
}

bool
api_query(struct api_call *call, const struct api_query_param *params, size_t n,
          void *out, struct error *err)
{
    struct query *q = &call->query;

    for (size_t i = 0; i < n; i++) {
        const struct api_query_param *p = &params[i];
        void *slot = (char *)out + p->offset;
        int64_t max = query_max(call->cfg, p->max);
        bool ok = false;

        switch (p->kind) {
        case API_QUERY_INT:
            ok = query_int(q, p->name, p->min, max, slot, err);
            break;
        case API_QUERY_BOOL:
            ok = query_bool(q, p->name, slot, err);
            break;
        case API_QUERY_ENUM:
            ok = query_enum(q, p->name, p->names, slot, err);
            break;
        case API_QUERY_TIME:
            ok = query_time(q, p->name, slot, err);
            break;
        case API_QUERY_STRING:
            ok = query_string(q, p->name, (size_t)max, slot, err);
            break;
        case API_QUERY_PAGING: {
            struct api_page *page = slot;

            ok = api_paging(call, p->min, &page->limit, &page->offset, err);
            break;
        }
        }
        if (!ok)
            return false;
    }
    return query_check_unused(q, err);
}

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "encode.h"
#include "role.h"
#include "service_message.h"
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
};

#define SESSIONS "/api/agent-sessions"
#define ONE SESSIONS "/{session_id}"
#define USER (API_AUTH | API_DB)

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
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

/* --- helpers shared by the handlers ----------------------------------- */

/* Maps each member of an object body onto a field of a struct of
 * `const struct json_value *` slots; a name not in the table is the
 * contract's 400 unknown_field. */
struct body_field {
    const char *name;
    size_t offset;
};

static bool
decode_fields(const struct json_value *body, const struct body_field *fields,
              size_t n, void *out, struct error *err)
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

static const char *
session_param(const struct api_call *call)
{
    return router_param(call->match, "session_id");
}

static void
respond_session(struct api_call *call, int status, const struct session *s)
{
    call->resp->status = status;
    response_header(call->resp, "ETag",
                    arena_printf(call->req->arena, "\"%lld\"",
                                 (long long)s->version));
    encode_session(&call->resp->body, s);
}

/* Shared by every list route: limit/offset or page/size, never both. */
static bool
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
        call->req->started_ms +
        (call->cfg->request_deadline_ms < 1000 ? call->cfg->request_deadline_ms
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
    static const struct body_field fields[] = {
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
        !decode_fields(call->body, fields, sizeof(fields) / sizeof(fields[0]),
                       &in, err) ||
        !service_session_create(call->svc, &call->ctx, call->user.sub, &in, &s,
                                &created, err))
        return false;
    if (created)
        response_header(call->resp, "Location",
                        arena_printf(call->req->arena, SESSIONS "/%s",
                                     s.session_id));
    respond_session(call, created ? 201 : 200, &s);
    return true;
}

static bool
h_session_list(struct api_call *call, struct error *err)
{
    static const char *const statuses[] = {"active", "inactive", "completed",
                                           "failed", "expired", NULL};
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
                             session_param(call), &s, err))
        return false;
    respond_session(call, 200, &s);
    return true;
}

static bool
h_session_patch(struct api_call *call, struct error *err)
{
    static const struct body_field fields[] = {
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
        !decode_fields(call->body, fields, sizeof(fields) / sizeof(fields[0]),
                       &in, err) ||
        !service_session_patch(call->svc, &call->ctx, call->user.sub,
                               session_param(call), if_match, &in, &s, err))
        return false;
    respond_session(call, 200, &s);
    return true;
}

static bool
h_session_delete(struct api_call *call, struct error *err)
{
    int64_t if_match;

    if (!query_check_unused(&call->query, err) ||
        !api_if_match(call->req->if_match, &if_match, err) ||
        !service_session_delete(call->svc, &call->ctx, call->user.sub,
                                session_param(call), if_match, err))
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
                                    session_param(call), if_match, to, &s,
                                    err))
        return false;
    respond_session(call, 200, &s);
    return true;
}

static bool
h_session_end(struct api_call *call, struct error *err)
{
    const struct json_value *status = NULL;
    static const struct body_field fields[] = {{"status", 0}};
    int to;

    if (!decode_fields(call->body, fields, 1, &status, err))
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

/* --- messages ---------------------------------------------------------- */

static const struct body_field message_fields[] = {
    {"role", offsetof(struct message_input, role)},
    {"content", offsetof(struct message_input, content)},
    {"tool_call_id", offsetof(struct message_input, tool_call_id)},
    {"tool_name", offsetof(struct message_input, tool_name)},
    {"extra_data", offsetof(struct message_input, extra_data)},
    {"client_message_id", offsetof(struct message_input, client_message_id)},
};

#define N_MESSAGE_FIELDS (sizeof(message_fields) / sizeof(message_fields[0]))

/* {"messages": [...]} into an array of inputs; param names carry the
 * index so a client can find the bad message. */
static bool
decode_messages(struct api_call *call, const struct json_value *list,
                struct message_input **out, size_t *n, struct error *err)
{
    struct message_input *in;

    if (list == NULL || list->type != JSON_ARRAY)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages must be an array of messages");
    if (list->u.a.len == 0 ||
        list->u.a.len > (size_t)call->cfg->max_batch_messages)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages must hold 1 to %d messages",
                         call->cfg->max_batch_messages);
    in = arena_calloc(call->req->arena, list->u.a.len * sizeof(*in));
    for (size_t i = 0; i < list->u.a.len; i++) {
        const struct json_value *item = list->u.a.items[i];

        if (item->type != JSON_OBJECT)
            return error_set(err, ERR_VALIDATION,
                             arena_printf(call->req->arena, "messages[%zu]", i),
                             "each message must be an object");
        if (!decode_fields(item, message_fields, N_MESSAGE_FIELDS, &in[i],
                           err)) {
            err->param = arena_printf(call->req->arena, "messages[%zu].%s", i,
                                      err->param);
            return false;
        }
    }
    *out = in;
    *n = list->u.a.len;
    return true;
}

static bool
h_message_append(struct api_call *call, struct error *err)
{
    const struct json_value *list = json_get(call->body, "messages");
    struct message_input one, *in = &one;
    struct message *stored;
    size_t n = 1;
    bool created;

    memset(&one, 0, sizeof(one));
    if (!query_check_unused(&call->query, err))
        return false;
    if (list != NULL) {
        if (call->body->u.o.len != 1) {
            const char *other = call->body->u.o.members[0].key;

            if (strcmp(other, "messages") == 0)
                other = call->body->u.o.members[1].key;
            return error_set(err, ERR_UNKNOWN_FIELD, other,
                             "a batch body holds only \"messages\"");
        }
        if (!decode_messages(call, list, &in, &n, err))
            return false;
    } else if (!decode_fields(call->body, message_fields, N_MESSAGE_FIELDS,
                              &one, err)) {
        return false;
    }
    if (!service_message_append(call->svc, &call->ctx, call->user.sub,
                                session_param(call), in, n, list != NULL,
                                call->req->idempotency_key, &stored, &created,
                                err))
        return false;
    call->resp->status = created ? 201 : 200;
    if (list != NULL)
        encode_message_items(&call->resp->body, stored, n);
    else
        encode_message(&call->resp->body, &stored[0]);
    return true;
}

static bool
h_message_list(struct api_call *call, struct error *err)
{
    static const char *const orders[] = {"asc", "desc", NULL};
    static const char *const roles[] = {"user", "assistant", "system", "tool",
                                        NULL};
    struct query *q = &call->query;
    struct message_filter f;
    struct message_page page;
    int64_t limit, offset;
    int order = 0;

    memset(&f, 0, sizeof(f));
    f.after_seq = f.before_seq = STORE_NO_SEQ;
    f.role = -1;
    f.created_after = f.created_before = STORE_NO_TIME;
    if (!api_paging(call, 50, &limit, &offset, err) ||
        !query_int(q, "after_seq", 0, INT64_MAX, &f.after_seq, err) ||
        !query_int(q, "before_seq", 0, INT64_MAX, &f.before_seq, err) ||
        !query_enum(q, "order", orders, &order, err) ||
        !query_enum(q, "role", roles, &f.role, err) ||
        !query_string(q, "search", 255, &f.search, err) ||
        !query_time(q, "created_after", &f.created_after, err) ||
        !query_time(q, "created_before", &f.created_before, err) ||
        !query_check_unused(q, err))
        return false;
    f.descending = order == 1;
    if (!service_message_list(call->svc, &call->ctx, call->user.sub,
                              session_param(call), &f, limit, offset, &page,
                              err))
        return false;
    encode_message_page(&call->resp->body, &page, limit, offset);
    return true;
}

static const char *
message_param(const struct api_call *call)
{
    return router_param(call->match, "message_id");
}

static bool
h_message_get(struct api_call *call, struct error *err)
{
    struct message m;

    if (!query_check_unused(&call->query, err) ||
        !service_message_get(call->svc, &call->ctx, call->user.sub,
                             session_param(call), message_param(call), &m,
                             err))
        return false;
    encode_message(&call->resp->body, &m);
    return true;
}

static bool
h_message_patch(struct api_call *call, struct error *err)
{
    struct patch {
        const struct json_value *content;
        const struct json_value *extra_data;
    } in = {NULL, NULL};
    static const struct body_field fields[] = {
        {"content", offsetof(struct patch, content)},
        {"extra_data", offsetof(struct patch, extra_data)},
    };
    struct message m;

    if (!query_check_unused(&call->query, err) ||
        !decode_fields(call->body, fields, 2, &in, err) ||
        !service_message_patch(call->svc, &call->ctx, call->user.sub,
                               session_param(call), message_param(call),
                               in.content, in.extra_data, &m, err))
        return false;
    encode_message(&call->resp->body, &m);
    return true;
}

static bool
h_message_delete(struct api_call *call, struct error *err)
{
    if (!query_check_unused(&call->query, err) ||
        !service_message_delete(call->svc, &call->ctx, call->user.sub,
                                session_param(call), message_param(call), err))
        return false;
    call->resp->status = 204;
    return true;
}

static bool
h_message_clear(struct api_call *call, struct error *err)
{
    int64_t deleted;

    if (!query_check_unused(&call->query, err) ||
        !service_message_clear(call->svc, &call->ctx, call->user.sub,
                               session_param(call), &deleted, err))
        return false;
    buf_adds(&call->resp->body, "{\"deleted_count\":");
    json_write_int(&call->resp->body, deleted);
    buf_addch(&call->resp->body, '}');
    return true;
}

static bool
h_context(struct api_call *call, struct error *err)
{
    struct query *q = &call->query;
    struct message_page page;
    int64_t limit = 20, max_tokens = 4000, tokens;

    if (!query_int(q, "limit", 1, call->cfg->max_page_limit, &limit, err) ||
        !query_int(q, "max_tokens", 1, 10000000, &max_tokens, err) ||
        !query_check_unused(q, err) ||
        !service_message_context(call->svc, &call->ctx, call->user.sub,
                                 session_param(call), limit, max_tokens, &page,
                                 &tokens, err))
        return false;
    encode_message_items(&call->resp->body, page.items, page.len);
    /* {"items":[...]} becomes {"items":[...],"tokens":n} */
    call->resp->body.len--;
    buf_adds(&call->resp->body, ",\"tokens\":");
    json_write_int(&call->resp->body, tokens);
    buf_addch(&call->resp->body, '}');
    return true;
}

static bool
h_conversation(struct api_call *call, struct error *err)
{
    struct conv {
        const struct json_value *messages;
        const struct json_value *session_id;
        const struct json_value *session_name;
        const struct json_value *agent_name;
        const struct json_value *agent_instructions;
    } body = {NULL, NULL, NULL, NULL, NULL};
    static const struct body_field fields[] = {
        {"messages", offsetof(struct conv, messages)},
        {"session_id", offsetof(struct conv, session_id)},
        {"session_name", offsetof(struct conv, session_name)},
        {"agent_name", offsetof(struct conv, agent_name)},
        {"agent_instructions", offsetof(struct conv, agent_instructions)},
    };
    struct conversation_input in;
    struct conversation_result out;
    struct message_input *msgs;
    char uuid[UUID_STR_LEN + 1];
    struct buf *b = &call->resp->body;

    memset(&in, 0, sizeof(in));
    if (!query_check_unused(&call->query, err) ||
        !decode_fields(call->body, fields, sizeof(fields) / sizeof(fields[0]),
                       &body, err))
        return false;
    if (body.messages == NULL)
        return error_set(err, ERR_VALIDATION, "messages",
                         "messages is required");
    if (!decode_messages(call, body.messages, &msgs, &in.n, err))
        return false;
    in.messages = msgs;
    in.session_id = body.session_id;
    in.session_name = body.session_name;
    in.agent_name = body.agent_name;
    in.agent_instructions = body.agent_instructions;
    if (!service_message_conversation(call->svc, &call->ctx, call->user.sub,
                                      &in, &out, err))
        return false;
    /* Metrics count the session this request named or made. */
    call->session_named = out.session_id;
    uuid_format(&out.session_uuid, uuid);
    buf_adds(b, "{\"session_id\":");
    json_write_cstr(b, out.session_id);
    buf_adds(b, ",\"session_uuid\":\"");
    buf_adds(b, uuid);
    buf_adds(b, "\",\"response\":");
    json_write_cstr(b, out.response);
    buf_adds(b, ",\"messages_count\":");
    json_write_int(b, out.messages_count);
    buf_adds(b, ",\"session_active\":");
    json_write_bool(b, out.session_active);
    buf_addch(b, '}');
    return true;
}

/* --- memory ---------------------------------------------------------------- */

static void
encode_memory_entry(struct buf *b, const char *key,
                    const struct json_value *value)
{
    buf_adds(b, "{\"key\":");
    json_write_cstr(b, key);
    buf_adds(b, ",\"value\":");
    json_write_value(b, value);
    buf_addch(b, '}');
}

static bool
h_memory_list(struct api_call *call, struct error *err)
{
    struct json_value *items;

    if (!query_check_unused(&call->query, err) ||
        !service_message_memory_list(call->svc, &call->ctx, call->user.sub,
                                     session_param(call), &items, err))
        return false;
    buf_adds(&call->resp->body, "{\"items\":");
    json_write_value(&call->resp->body, items);
    buf_addch(&call->resp->body, '}');
    return true;
}

static bool
h_memory_get(struct api_call *call, struct error *err)
{
    const char *key = router_param(call->match, "key");
    struct json_value *value;

    if (!query_check_unused(&call->query, err) ||
        !service_message_memory_get(call->svc, &call->ctx, call->user.sub,
                                    session_param(call), key, &value, err))
        return false;
    encode_memory_entry(&call->resp->body, key, value);
    return true;
}

static bool
h_memory_put(struct api_call *call, struct error *err)
{
    const char *key = router_param(call->match, "key");

    if (!query_check_unused(&call->query, err))
        return false;
    if (call->body == NULL)
        return error_set(err, ERR_VALIDATION, "value",
                         "the body must be the JSON value to store");
    if (!service_message_memory_put(call->svc, &call->ctx, call->user.sub,
                                    session_param(call), key, call->body, err))
        return false;
    encode_memory_entry(&call->resp->body, key, call->body);
    return true;
}

static bool
h_memory_delete(struct api_call *call, struct error *err)
{
    if (!query_check_unused(&call->query, err) ||
        !service_message_memory_delete(call->svc, &call->ctx, call->user.sub,
                                       session_param(call),
                                       router_param(call->match, "key"), err))
        return false;
    call->resp->status = 204;
    return true;
}

bool
api_dispatch(struct api_call *call, struct error *err)
{
    switch ((enum api_handler)call->match->route->handler) {
    case H_HEALTHZ:
        return h_healthz(call, err);
    case H_READYZ:
        return h_readyz(call, err);
    case H_SESSION_CREATE:
        return h_session_create(call, err);
    case H_SESSION_LIST:
        return h_session_list(call, err);
    case H_SESSION_GET:
        return h_session_get(call, err);
    case H_SESSION_PATCH:
        return h_session_patch(call, err);
    case H_SESSION_DELETE:
        return h_session_delete(call, err);
    case H_SESSION_ACTIVATE:
        return set_status(call, STATUS_ACTIVE, err);
    case H_SESSION_DEACTIVATE:
        return set_status(call, STATUS_INACTIVE, err);
    case H_SESSION_END:
        return h_session_end(call, err);
    case H_MESSAGE_APPEND:
        return h_message_append(call, err);
    case H_MESSAGE_LIST:
        return h_message_list(call, err);
    case H_MESSAGE_GET:
        return h_message_get(call, err);
    case H_MESSAGE_PATCH:
        return h_message_patch(call, err);
    case H_MESSAGE_DELETE:
        return h_message_delete(call, err);
    case H_MESSAGE_CLEAR:
        return h_message_clear(call, err);
    case H_CONTEXT:
        return h_context(call, err);
    case H_CONVERSATION:
        return h_conversation(call, err);
    case H_MEMORY_LIST:
        return h_memory_list(call, err);
    case H_MEMORY_GET:
        return h_memory_get(call, err);
    case H_MEMORY_PUT:
        return h_memory_put(call, err);
    case H_MEMORY_DELETE:
        return h_memory_delete(call, err);
    }
    return error_set(err, ERR_INTERNAL, NULL, "no handler");
}

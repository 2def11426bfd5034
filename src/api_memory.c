/*
 * api_memory.c - handlers of a session's memory routes: GET .../memory,
 * and GET, PUT and DELETE .../memory/{key} (the table is in api.c).  PUT
 * takes any JSON value as its body, stored as it is.  The list pages by
 * key: limit and after.
 */
#include <stddef.h>

#include "api.h"
#include "encode.h"
#include "service_memory.h"
#include "banned.h"

static const char *
key_param(const struct api_call *call)
{
    return router_param(call->match, "key");
}

/* What GET .../memory reads from its query string. */
struct memory_list_query {
    int64_t limit;
    const char *after;
};

bool
api_memory_list(struct api_call *call, struct error *err)
{
#define Q(m) offsetof(struct memory_list_query, m)
    static const struct api_query_param params[] = {
        {"limit", API_QUERY_INT, Q(limit), 1, SERVICE_MEMORY_MAX_LIMIT, NULL},
        {"after", API_QUERY_STRING, Q(after), .max = 128},
    };
#undef Q
    struct memory_list_query in = {SERVICE_MEMORY_LIMIT, NULL};
    struct memory_page page;

    if (!api_query(call, params, API_NFIELDS(params), &in, err) ||
        !service_memory_list(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), in.after, in.limit, &page,
                             err))
        return false;
    encode_memory_page(&call->resp->body, &page, in.limit,
                       (size_t)call->cfg->page_max_bytes);
    return true;
}

bool
api_memory_get(struct api_call *call, struct error *err)
{
    const char *key = key_param(call);
    struct json_value *value;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_memory_get(call->svc, &call->ctx, call->user.sub,
                            api_session_param(call), key, &value, err))
        return false;
    encode_memory_entry(&call->resp->body, key, value);
    return true;
}

bool
api_memory_put(struct api_call *call, struct error *err)
{
    const char *key = key_param(call);

    if (!api_query(call, NULL, 0, NULL, err))
        return false;
    if (call->body == NULL)
        return error_set(err, ERR_VALIDATION, "value",
                         "the body must be the JSON value to store");
    if (!service_memory_put(call->svc, &call->ctx, call->user.sub,
                            api_session_param(call), key, call->body, err))
        return false;
    encode_memory_entry(&call->resp->body, key, call->body);
    return true;
}

bool
api_memory_delete(struct api_call *call, struct error *err)
{
    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_memory_delete(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), key_param(call), err))
        return false;
    call->resp->status = 204;
    return true;
}

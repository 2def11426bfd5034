/*
 * api_memory.c - handlers of a session's memory routes: GET .../memory,
 * and GET, PUT and DELETE .../memory/{key} (the table is in api.c).  PUT
 * takes any JSON value as its body, stored as it is.
 */
#include "api.h"
#include "encode.h"
#include "service_memory.h"
#include "banned.h"

static const char *
key_param(const struct api_call *call)
{
    return router_param(call->match, "key");
}

bool
api_memory_list(struct api_call *call, struct error *err)
{
    struct json_value *items;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_memory_list(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), &items, err))
        return false;
    encode_memory_items(&call->resp->body, items);
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

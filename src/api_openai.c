/*
 * api_openai.c - handlers of the /v1 routes, OpenAI's Conversations API
 * (the table is in api.c; the mapping onto sessions and messages is
 * service_openai.h's).  Every success is 200, as OpenAI answers; errors
 * take OpenAI's shape in app.c, which knows a /v1 path by its prefix.
 *
 * `include[]` (and `include`), which OpenAI's clients may send on the
 * item routes, is accepted and ignored: parley has no log probabilities
 * or image URLs to add.
 */
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "encode_openai.h"
#include "service_openai.h"
#include "banned.h"

/* The query of a route that takes only include[]. */
struct include_query {
    const char *include;
    const char *include_list;
};

#define INCLUDE_PARAMS(type)                                                   \
    {                                                                          \
        "include[]", API_QUERY_STRING, offsetof(type, include_list), 0, 255,   \
        NULL},                                                                 \
    {                                                                          \
        "include", API_QUERY_STRING, offsetof(type, include), 0, 255, NULL     \
    }

static bool
include_only(struct api_call *call, struct error *err)
{
    static const struct api_query_param params[] = {
        INCLUDE_PARAMS(struct include_query),
    };
    struct include_query in = {NULL, NULL};

    return api_query(call, params, API_NFIELDS(params), &in, err);
}

static const char *
item_param(const struct api_call *call)
{
    return router_param(call->match, "item_id");
}

/* More than one item is a batch: a bulk request (api_bulk_enter), as a
 * batch append under /api is. */
static bool
bulk_if_many(struct api_call *call, const struct json_value *items,
             struct error *err)
{
    if (items == NULL || items->type != JSON_ARRAY || items->u.a.len <= 1)
        return true;
    return api_bulk_enter(call, err);
}

bool
api_openai_create(struct api_call *call, struct error *err)
{
    struct create {
        const struct json_value *items;
        const struct json_value *metadata;
    } in = {NULL, NULL};
    static const struct api_body_field fields[] = {
        {"items", offsetof(struct create, items)},
        {"metadata", offsetof(struct create, metadata)},
    };
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &in, err) ||
        !bulk_if_many(call, in.items, err) ||
        !service_openai_create(call->svc, &call->ctx, call->user.sub, in.items,
                               in.metadata, &s, err))
        return false;
    /* Metrics count the session this request made. */
    call->session_named = s.session_id;
    encode_openai_conversation(&call->resp->body, &s);
    return true;
}

bool
api_openai_get(struct api_call *call, struct error *err)
{
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_openai_get(call->svc, &call->ctx, call->user.sub,
                            api_session_param(call), &s, err))
        return false;
    encode_openai_conversation(&call->resp->body, &s);
    return true;
}

bool
api_openai_update(struct api_call *call, struct error *err)
{
    struct update {
        const struct json_value *metadata;
    } in = {NULL};
    static const struct api_body_field fields[] = {
        {"metadata", offsetof(struct update, metadata)},
    };
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &in, err) ||
        !service_openai_update(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), in.metadata, &s, err))
        return false;
    encode_openai_conversation(&call->resp->body, &s);
    return true;
}

bool
api_openai_delete(struct api_call *call, struct error *err)
{
    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_openai_delete(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), err))
        return false;
    encode_openai_deleted(&call->resp->body, api_session_param(call));
    return true;
}

bool
api_openai_items_create(struct api_call *call, struct error *err)
{
    struct items {
        const struct json_value *items;
    } in = {NULL};
    static const struct api_body_field fields[] = {
        {"items", offsetof(struct items, items)},
    };
    struct message *stored;
    size_t n;

    if (!include_only(call, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &in, err) ||
        !bulk_if_many(call, in.items, err) ||
        !service_openai_items_add(call->svc, &call->ctx, call->user.sub,
                                  api_session_param(call), in.items, &stored,
                                  &n, err))
        return false;
    /* every item just stored, as OpenAI answers (a body of at most 100
     * items the request itself carried) */
    encode_openai_item_list(&call->resp->body, stored, n, false, 0);
    return true;
}

/* What GET .../items reads from its query string. */
struct items_query {
    const char *after;
    int64_t limit;
    int order; /* 0 asc, 1 desc */
    const char *include;
    const char *include_list;
};

bool
api_openai_items_list(struct api_call *call, struct error *err)
{
    static const char *const orders[] = {"asc", "desc", NULL};
#define Q(m) offsetof(struct items_query, m)
    static const struct api_query_param params[] = {
        {"after", API_QUERY_STRING, Q(after), 0, OPENAI_PART_ID_MAX, NULL},
        {"limit", API_QUERY_INT, Q(limit), 1, OPENAI_PAGE_MAX, NULL},
        {"order", API_QUERY_ENUM, Q(order), .names = orders},
        INCLUDE_PARAMS(struct items_query),
    };
#undef Q
    struct items_query in = {NULL, OPENAI_PAGE_DEFAULT, 1, NULL, NULL};
    struct openai_page page;
    bool has_more;

    if (!api_query(call, params, API_NFIELDS(params), &in, err) ||
        !service_openai_items_list(call->svc, &call->ctx, call->user.sub,
                                   api_session_param(call), in.after, in.limit,
                                   in.order == 1, &page, &has_more, err))
        return false;
    encode_openai_items(&call->resp->body, page.items, page.len, has_more,
                        (size_t)call->cfg->page_max_bytes);
    return true;
}

bool
api_openai_item_get(struct api_call *call, struct error *err)
{
    struct message m;
    int part;

    if (!include_only(call, err) ||
        !service_openai_item_get(call->svc, &call->ctx, call->user.sub,
                                 api_session_param(call), item_param(call), &m,
                                 &part, err))
        return false;
    encode_openai_item_part(&call->resp->body, &m, part);
    return true;
}

bool
api_openai_item_delete(struct api_call *call, struct error *err)
{
    struct session s;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_openai_item_delete(call->svc, &call->ctx, call->user.sub,
                                    api_session_param(call), item_param(call),
                                    &s, err))
        return false;
    encode_openai_conversation(&call->resp->body, &s);
    return true;
}

/*
 * api_message.c - handlers of the message and context routes (the table
 * is in api.c; the conversation is api_conversation.c).
 */
#include <stddef.h>
#include <string.h>

#include "api.h"
#include "encode.h"
#include "service_message.h"
#include "banned.h"

/* --- messages ---------------------------------------------------------- */

static const struct api_body_field message_fields[] = {
    {"role", offsetof(struct message_input, role)},
    {"content", offsetof(struct message_input, content)},
    {"tool_call_id", offsetof(struct message_input, tool_call_id)},
    {"tool_name", offsetof(struct message_input, tool_name)},
    {"extra_data", offsetof(struct message_input, extra_data)},
    {"client_message_id", offsetof(struct message_input, client_message_id)},
};

#define N_MESSAGE_FIELDS API_NFIELDS(message_fields)

/* {"messages": [...]} into an array of inputs. */
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
    if (!api_decode_messages(call, list, message_fields, N_MESSAGE_FIELDS, in,
                             sizeof(*in), err))
        return false;
    *out = in;
    *n = list->u.a.len;
    return true;
}

bool
api_message_append(struct api_call *call, struct error *err)
{
    const struct json_value *list = json_get(call->body, "messages");
    struct message_input one, *in = &one;
    struct message *stored;
    size_t n = 1;
    bool created;

    memset(&one, 0, sizeof(one));
    if (!api_query(call, NULL, 0, NULL, err))
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
        /* A batch is a bulk write (api_bulk_enter). */
        if (n > 1 && !api_bulk_enter(call, err))
            return false;
    } else if (!api_decode_fields(call->body, message_fields, N_MESSAGE_FIELDS,
                                  &one, err)) {
        return false;
    }
    if (!service_message_append(call->svc, &call->ctx, call->user.sub,
                                api_session_param(call), in, n, list != NULL,
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

/* What GET .../messages reads from its query string. */
struct message_list_query {
    struct api_page page;
    struct message_filter f;
    int order; /* 0 asc, 1 desc */
};

bool
api_message_list(struct api_call *call, struct error *err)
{
    static const char *const orders[] = {"asc", "desc", NULL};
    /* Indexed by enum message_role. */
    static const char *const roles[] = {"user", "assistant", "system",
                                        "tool", "developer", NULL};
#define Q(m) offsetof(struct message_list_query, m)
    static const struct api_query_param params[] = {
        {NULL, API_QUERY_PAGING, Q(page), .min = 50},
        {"after_seq", API_QUERY_INT, Q(f.after_seq), 0, INT64_MAX, NULL},
        {"before_seq", API_QUERY_INT, Q(f.before_seq), 0, INT64_MAX, NULL},
        {"order", API_QUERY_ENUM, Q(order), .names = orders},
        {"role", API_QUERY_ENUM, Q(f.role), .names = roles},
        {"search", API_QUERY_STRING, Q(f.search), .max = 255},
        {"created_after", API_QUERY_TIME, Q(f.created_after), 0, 0, NULL},
        {"created_before", API_QUERY_TIME, Q(f.created_before), 0, 0, NULL},
    };
#undef Q
    struct message_list_query in;
    struct message_page page;

    memset(&in, 0, sizeof(in));
    service_message_filter_all(&in.f);
    if (!api_query(call, params, API_NFIELDS(params), &in, err))
        return false;
    in.f.descending = in.order == 1;
    if (!service_message_list(call->svc, &call->ctx, call->user.sub,
                              api_session_param(call), &in.f, in.page.limit,
                              in.page.offset, &page, err))
        return false;
    encode_message_page(&call->resp->body, &page, in.page.limit, in.page.offset,
                        (size_t)call->cfg->page_max_bytes);
    return true;
}

static const char *
message_param(const struct api_call *call)
{
    return router_param(call->match, "message_id");
}

bool
api_message_get(struct api_call *call, struct error *err)
{
    struct message m;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_message_get(call->svc, &call->ctx, call->user.sub,
                             api_session_param(call), message_param(call), &m,
                             err))
        return false;
    encode_message(&call->resp->body, &m);
    return true;
}

bool
api_message_patch(struct api_call *call, struct error *err)
{
    struct patch {
        const struct json_value *content;
        const struct json_value *extra_data;
    } in = {NULL, NULL};
    static const struct api_body_field fields[] = {
        {"content", offsetof(struct patch, content)},
        {"extra_data", offsetof(struct patch, extra_data)},
    };
    struct message m;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !api_decode_fields(call->body, fields, API_NFIELDS(fields), &in, err) ||
        !service_message_patch(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), message_param(call),
                               in.content, in.extra_data, &m, err))
        return false;
    encode_message(&call->resp->body, &m);
    return true;
}

bool
api_message_delete(struct api_call *call, struct error *err)
{
    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_message_delete(call->svc, &call->ctx, call->user.sub,
                                api_session_param(call), message_param(call),
                                err))
        return false;
    call->resp->status = 204;
    return true;
}

bool
api_message_clear(struct api_call *call, struct error *err)
{
    int64_t deleted;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_message_clear(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), &deleted, err))
        return false;
    encode_deleted_count(&call->resp->body, deleted);
    return true;
}

/* What GET .../context reads from its query string. */
struct context_query {
    int64_t limit;
    int64_t max_tokens;
};

bool
api_message_context(struct api_call *call, struct error *err)
{
    static const struct api_query_param params[] = {
        {"limit", API_QUERY_INT, offsetof(struct context_query, limit), 1,
         API_MAX_PAGE_LIMIT, NULL},
        {"max_tokens", API_QUERY_INT,
         offsetof(struct context_query, max_tokens), 1, 10000000, NULL},
    };
    struct context_query in = {20, 4000};
    struct message_page page;
    int64_t tokens;
    bool cut = false;

    /* The run also ends where its items would pass page_max_bytes (less
     * the room for what follows them): has_more says so. */
    if (!api_query(call, params, API_NFIELDS(params), &in, err) ||
        !service_message_context_bounded(
            call->svc, &call->ctx, call->user.sub, api_session_param(call),
            in.limit, in.max_tokens,
            (size_t)call->cfg->page_max_bytes - ENCODE_PAGE_TAIL,
            encode_message_size, &page, &tokens, &cut, err))
        return false;
    encode_context(&call->resp->body, &page, tokens, cut);
    return true;
}

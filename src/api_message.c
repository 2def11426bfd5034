/*
 * api_message.c - handlers of the message, context, conversation and
 * memory routes (the table is in api.c).
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
        if (!api_decode_fields(item, message_fields, N_MESSAGE_FIELDS, &in[i],
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

bool
api_message_append(struct api_call *call, struct error *err)
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

bool
api_message_list(struct api_call *call, struct error *err)
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
                              api_session_param(call), &f, limit, offset, &page,
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

bool
api_message_get(struct api_call *call, struct error *err)
{
    struct message m;

    if (!query_check_unused(&call->query, err) ||
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

    if (!query_check_unused(&call->query, err) ||
        !api_decode_fields(call->body, fields, 2, &in, err) ||
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
    if (!query_check_unused(&call->query, err) ||
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

    if (!query_check_unused(&call->query, err) ||
        !service_message_clear(call->svc, &call->ctx, call->user.sub,
                               api_session_param(call), &deleted, err))
        return false;
    buf_adds(&call->resp->body, "{\"deleted_count\":");
    json_write_int(&call->resp->body, deleted);
    buf_addch(&call->resp->body, '}');
    return true;
}

bool
api_message_context(struct api_call *call, struct error *err)
{
    struct query *q = &call->query;
    struct message_page page;
    int64_t limit = 20, max_tokens = 4000, tokens;

    if (!query_int(q, "limit", 1, call->cfg->max_page_limit, &limit, err) ||
        !query_int(q, "max_tokens", 1, 10000000, &max_tokens, err) ||
        !query_check_unused(q, err) ||
        !service_message_context(call->svc, &call->ctx, call->user.sub,
                                 api_session_param(call), limit, max_tokens,
                                 &page, &tokens, err))
        return false;
    encode_message_items(&call->resp->body, page.items, page.len);
    /* {"items":[...]} becomes {"items":[...],"tokens":n} */
    call->resp->body.len--;
    buf_adds(&call->resp->body, ",\"tokens\":");
    json_write_int(&call->resp->body, tokens);
    buf_addch(&call->resp->body, '}');
    return true;
}

bool
api_message_conversation(struct api_call *call, struct error *err)
{
    struct conv {
        const struct json_value *messages;
        const struct json_value *session_id;
        const struct json_value *session_name;
        const struct json_value *agent_name;
        const struct json_value *agent_instructions;
    } body = {NULL, NULL, NULL, NULL, NULL};
    static const struct api_body_field fields[] = {
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
        !api_decode_fields(call->body, fields,
                           sizeof(fields) / sizeof(fields[0]), &body, err))
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

/* --- memory ----------------------------------------------------------------
 */

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

bool
api_message_memory_list(struct api_call *call, struct error *err)
{
    struct json_value *items;

    if (!query_check_unused(&call->query, err) ||
        !service_message_memory_list(call->svc, &call->ctx, call->user.sub,
                                     api_session_param(call), &items, err))
        return false;
    buf_adds(&call->resp->body, "{\"items\":");
    json_write_value(&call->resp->body, items);
    buf_addch(&call->resp->body, '}');
    return true;
}

bool
api_message_memory_get(struct api_call *call, struct error *err)
{
    const char *key = router_param(call->match, "key");
    struct json_value *value;

    if (!query_check_unused(&call->query, err) ||
        !service_message_memory_get(call->svc, &call->ctx, call->user.sub,
                                    api_session_param(call), key, &value, err))
        return false;
    encode_memory_entry(&call->resp->body, key, value);
    return true;
}

bool
api_message_memory_put(struct api_call *call, struct error *err)
{
    const char *key = router_param(call->match, "key");

    if (!query_check_unused(&call->query, err))
        return false;
    if (call->body == NULL)
        return error_set(err, ERR_VALIDATION, "value",
                         "the body must be the JSON value to store");
    if (!service_message_memory_put(call->svc, &call->ctx, call->user.sub,
                                    api_session_param(call), key, call->body,
                                    err))
        return false;
    encode_memory_entry(&call->resp->body, key, call->body);
    return true;
}

bool
api_message_memory_delete(struct api_call *call, struct error *err)
{
    if (!query_check_unused(&call->query, err) ||
        !service_message_memory_delete(call->svc, &call->ctx, call->user.sub,
                                       api_session_param(call),
                                       router_param(call->match, "key"), err))
        return false;
    call->resp->status = 204;
    return true;
}

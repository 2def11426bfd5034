/*
 * encode_openai.c - /v1 bodies.  An item carries nothing parley adds for
 * itself (no seq, no timestamps, no session id): the Agents SDK sends
 * every field of an item it read back on to the model, and OpenAI's
 * Responses API refuses fields it does not know.
 */
#include <stdlib.h>
#include <string.h>

#include "encode_openai.h"
#include "json.h"
#include "role.h"
#include "service_openai.h"
#include "banned.h"

void
encode_openai_conversation(struct buf *b, const struct session *s)
{
    const struct json_value *meta = s->metadata;

    buf_adds(b, "{\"id\":");
    json_write_cstr(b, s->session_id);
    buf_adds(b, ",\"object\":\"conversation\",\"created_at\":");
    /* Unix seconds, floored (created_at is never before 1970). */
    json_write_int(b, s->created_at / 1000);
    buf_adds(b, ",\"metadata\":{");
    for (size_t i = 0;
         meta != NULL && meta->type == JSON_OBJECT && i < meta->u.o.len; i++) {
        const struct json_member *m = &meta->u.o.members[i];

        if (i > 0)
            buf_addch(b, ',');
        json_write_string(b, m->key, m->key_len);
        buf_addch(b, ':');
        if (m->value->type == JSON_STRING) {
            json_write_value(b, m->value);
        } else {
            struct buf text;

            buf_init(&text);
            json_write_value(&text, m->value);
            json_write_string(b, text.data, text.len);
            buf_release(&text);
        }
    }
    buf_adds(b, "}}");
}

void
encode_openai_deleted(struct buf *b, const char *conv_id)
{
    buf_adds(b, "{\"id\":");
    json_write_cstr(b, conv_id);
    buf_adds(b, ",\"object\":\"conversation.deleted\",\"deleted\":true}");
}

/* Text as one content part: output_text (with the annotations OpenAI
 * always has) for an assistant, input_text for anyone else. */
static void
encode_text_part(struct buf *b, bool assistant, const char *text, size_t len)
{
    buf_adds(b, assistant ? "[{\"type\":\"output_text\",\"text\":"
                          : "[{\"type\":\"input_text\",\"text\":");
    json_write_string(b, text, len);
    buf_adds(b, assistant ? ",\"annotations\":[]}]" : "}]");
}

/* An item kept on the message: id and type first, then what the client
 * sent in its order, string content of a message as one part, and the
 * status a stored message, call or output always has. */
static void
encode_kept_item(struct buf *b, const struct message *m, const char *id)
{
    const struct json_value *item = m->item;
    const struct json_value *type = json_get(item, "type");
    enum openai_kind kind = service_openai_kind(m);
    const struct json_value *status = json_get(item, "status");
    /* A status of null is none: a stored item always has one. */
    bool has_status = status != NULL && status->type == JSON_STRING;

    buf_adds(b, "{\"id\":");
    json_write_cstr(b, id);
    buf_adds(b, ",\"type\":");
    if (type != NULL)
        json_write_value(b, type);
    else
        buf_adds(b, "\"message\"");
    for (size_t i = 0; i < item->u.o.len; i++) {
        const struct json_member *mem = &item->u.o.members[i];

        if (strcmp(mem->key, "type") == 0 || strcmp(mem->key, "id") == 0 ||
            (mem->value == status && !has_status && kind != OPENAI_OTHER))
            continue;
        buf_addch(b, ',');
        json_write_string(b, mem->key, mem->key_len);
        buf_addch(b, ':');
        if (kind == OPENAI_MESSAGE && strcmp(mem->key, "content") == 0 &&
            mem->value->type == JSON_STRING)
            encode_text_part(b, m->role == ROLE_ASSISTANT, mem->value->u.s.ptr,
                             mem->value->u.s.len);
        else
            json_write_value(b, mem->value);
    }
    if (kind != OPENAI_OTHER && !has_status)
        buf_adds(b, ",\"status\":\"completed\"");
    buf_addch(b, '}');
}

/* A string member of o, or NULL. */
static const struct json_value *
string_of(const struct json_value *o, const char *key)
{
    const struct json_value *v =
        o != NULL && o->type == JSON_OBJECT ? json_get(o, key) : NULL;

    return v != NULL && v->type == JSON_STRING ? v : NULL;
}

/* Call k of a message's tool_calls[] as a function_call item: name and
 * arguments from its "function" (Chat Completions' shape) or its own
 * members; arguments that are not a string as their JSON text, "{}" when
 * there are none. */
static void
encode_call_item(struct buf *b, const struct message *m, int k, const char *id)
{
    const struct json_value *c = service_openai_call(m, k);
    const struct json_value *fn = json_get(c, "function");
    const struct json_value *name = string_of(fn, "name");
    const struct json_value *args = fn != NULL && fn->type == JSON_OBJECT
                                        ? json_get(fn, "arguments")
                                        : NULL;

    if (name == NULL)
        name = string_of(c, "name");
    if (args == NULL || args->type == JSON_NULL)
        args = json_get(c, "arguments");
    buf_adds(b, "{\"id\":");
    json_write_cstr(b, id);
    buf_adds(b, ",\"type\":\"function_call\",\"status\":\"completed\","
                "\"call_id\":");
    json_write_value(b, json_get(c, "id"));
    buf_adds(b, ",\"name\":");
    if (name != NULL)
        json_write_value(b, name);
    else
        buf_adds(b, "\"\"");
    buf_adds(b, ",\"arguments\":");
    if (args == NULL || args->type == JSON_NULL) {
        buf_adds(b, "\"{}\"");
    } else if (args->type == JSON_STRING) {
        json_write_value(b, args);
    } else {
        struct buf text;

        buf_init(&text);
        json_write_value(&text, args);
        json_write_string(b, text.data, text.len);
        buf_release(&text);
    }
    buf_addch(b, '}');
}

/* A message without an item, from its own fields; one shown with its
 * calls is a message here (its text). */
static void
encode_native_item(struct buf *b, const struct message *m, const char *id)
{
    enum openai_kind kind = service_openai_kind(m);

    if (service_openai_prev_part(m, OPENAI_PART_NONE) >= 0) /* has calls */
        kind = OPENAI_MESSAGE;
    buf_adds(b, "{\"id\":");
    json_write_cstr(b, id);
    switch (kind) {
    case OPENAI_FUNCTION_CALL:
        buf_adds(b, ",\"type\":\"function_call\",\"status\":\"completed\","
                    "\"call_id\":");
        json_write_cstr(b, m->tool_call_id);
        buf_adds(b, ",\"name\":");
        json_write_cstr(b, m->tool_name != NULL ? m->tool_name : "");
        buf_adds(b, ",\"arguments\":");
        json_write_cstr(b, m->content);
        break;
    case OPENAI_FUNCTION_CALL_OUTPUT:
        buf_adds(b, ",\"type\":\"function_call_output\","
                    "\"status\":\"completed\"");
        if (m->tool_call_id != NULL) {
            buf_adds(b, ",\"call_id\":");
            json_write_cstr(b, m->tool_call_id);
        }
        buf_adds(b, ",\"output\":");
        json_write_cstr(b, m->content);
        if (m->tool_name != NULL) {
            buf_adds(b, ",\"name\":");
            json_write_cstr(b, m->tool_name);
        }
        break;
    case OPENAI_MESSAGE:
    case OPENAI_OTHER:
        buf_adds(b, ",\"type\":\"message\",\"status\":\"completed\","
                    "\"role\":\"");
        buf_adds(b, role_name(m->role));
        buf_adds(b, "\",\"content\":");
        encode_text_part(b, m->role == ROLE_ASSISTANT, m->content,
                         strlen(m->content));
        break;
    }
    buf_addch(b, '}');
}

void
encode_openai_item_part(struct buf *b, const struct message *m, int part)
{
    char buf[OPENAI_PART_ID_MAX + 1];
    const char *id = service_openai_part_id(m, part, buf);

    if (part >= 0)
        encode_call_item(b, m, part, id);
    else if (m->item != NULL && m->item->type == JSON_OBJECT)
        encode_kept_item(b, m, id);
    else
        encode_native_item(b, m, id);
}

void
encode_openai_item(struct buf *b, const struct message *m)
{
    encode_openai_item_part(b, m,
                            service_openai_next_part(m, OPENAI_PART_NONE));
}

/* Room kept, under a page's byte bound, for what follows the items. */
#define LIST_TAIL 600

void
encode_openai_items(struct buf *b, const struct openai_item *it, size_t n,
                    bool has_more, size_t max_bytes)
{
    char buf[OPENAI_PART_ID_MAX + 1];
    size_t start = b->len;

    buf_adds(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        size_t mark = b->len;

        if (i > 0)
            buf_addch(b, ',');
        encode_openai_item_part(b, it[i].m, it[i].part);
        if (i > 0 && max_bytes > 0 && b->len - start + LIST_TAIL > max_bytes) {
            b->len = mark; /* taken back out: the page ends before it */
            b->data[mark] = '\0';
            n = i;
            has_more = true;
        }
    }
    buf_adds(b, "],\"first_id\":");
    json_write_cstr(b, n > 0 ? service_openai_part_id(it[0].m, it[0].part, buf)
                             : NULL);
    buf_adds(b, ",\"last_id\":");
    json_write_cstr(
        b, n > 0 ? service_openai_part_id(it[n - 1].m, it[n - 1].part, buf)
                 : NULL);
    buf_adds(b, ",\"has_more\":");
    json_write_bool(b, has_more);
    buf_addch(b, '}');
}

void
encode_openai_item_list(struct buf *b, const struct message *m, size_t n,
                        bool has_more, size_t max_bytes)
{
    struct openai_item *it;
    size_t k = 0, total = 0;

    for (size_t i = 0; i < n; i++)
        for (int p = service_openai_next_part(&m[i], OPENAI_PART_NONE);
             p != OPENAI_PART_NONE; p = service_openai_next_part(&m[i], p))
            total++;
    it = calloc(total > 0 ? total : 1, sizeof(*it));
    if (it == NULL)
        abort(); /* as buf does when memory runs out */
    for (size_t i = 0; i < n; i++)
        for (int p = service_openai_next_part(&m[i], OPENAI_PART_NONE);
             p != OPENAI_PART_NONE; p = service_openai_next_part(&m[i], p))
            it[k++] = (struct openai_item){&m[i], p};
    encode_openai_items(b, it, total, has_more, max_bytes);
    free(it);
}

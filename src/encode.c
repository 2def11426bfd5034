#include "clock.h"
#include "encode.h"
#include "json.h"
#include "role.h"
#include "banned.h"

void
encode_time(struct buf *b, int64_t ms)
{
    char ts[CLOCK_RFC3339_LEN + 1];

    clock_format(ms, ts);
    buf_addch(b, '"');
    buf_adds(b, ts);
    buf_addch(b, '"');
}

/* Writes item i of items. */
typedef void encode_item_fn(struct buf *b, const void *items, size_t i);

/*
 * The items of a list, comma-separated, for a body that began at start
 * and may take max_bytes (0: no bound): an item that would take it past
 * the bound (less ENCODE_PAGE_TAIL) is taken back out and the list ends
 * before it.  The first item is always written, so a client paging on
 * always gets somewhere.  Returns how many were written.
 */
static size_t
encode_items(struct buf *b, size_t start, size_t max_bytes, const void *items,
             size_t n, encode_item_fn *one)
{
    for (size_t i = 0; i < n; i++) {
        size_t mark = b->len;

        if (i > 0)
            buf_addch(b, ',');
        one(b, items, i);
        if (i > 0 && max_bytes > 0 &&
            b->len - start + ENCODE_PAGE_TAIL > max_bytes) {
            buf_truncate(b, mark);
            return i;
        }
    }
    return n;
}

/* Closes a list's items array and adds the paging fields every list
 * answers with.  has_more comes from the caller: computed from total
 * (sessions), or read by the store (messages), and true as well when the
 * byte bound ended the page early. */
static void
encode_page_end(struct buf *b, bool has_more, int64_t total, int64_t limit,
                int64_t offset)
{
    buf_adds(b, "],\"total\":");
    json_write_int(b, total);
    buf_adds(b, ",\"limit\":");
    json_write_int(b, limit);
    buf_adds(b, ",\"offset\":");
    json_write_int(b, offset);
    buf_adds(b, ",\"has_more\":");
    json_write_bool(b, has_more);
    buf_addch(b, '}');
}

void
encode_session(struct buf *b, const struct session *s)
{
    char id[UUID_STR_LEN + 1];

    uuid_format(&s->id, id);
    buf_adds(b, "{\"id\":\"");
    buf_adds(b, id);
    buf_adds(b, "\",\"session_id\":");
    json_write_cstr(b, s->session_id);
    buf_adds(b, ",\"session_name\":");
    json_write_cstr(b, s->session_name);
    buf_adds(b, ",\"description\":");
    json_write_cstr(b, s->description);
    buf_adds(b, ",\"agent_name\":");
    json_write_cstr(b, s->agent_name);
    buf_adds(b, ",\"agent_instructions\":");
    json_write_cstr(b, s->agent_instructions);
    buf_adds(b, ",\"status\":\"");
    buf_adds(b, status_name(s->status));
    buf_adds(b, "\",\"is_active\":");
    json_write_bool(b, s->status == STATUS_ACTIVE);
    buf_adds(b, ",\"metadata\":");
    if (s->metadata != NULL)
        json_write_value(b, s->metadata);
    else
        buf_adds(b, "{}");
    buf_adds(b, ",\"message_count\":");
    json_write_int(b, s->message_count);
    buf_adds(b, ",\"metrics\":{\"request_count\":");
    json_write_int(b, s->request_count);
    buf_adds(b, ",\"error_count\":");
    json_write_int(b, s->error_count);
    buf_adds(b, ",\"total_processing_ms\":");
    json_write_double(b, s->total_processing_ms);
    buf_adds(b, ",\"prompt_tokens\":");
    json_write_int(b, s->prompt_tokens);
    buf_adds(b, ",\"completion_tokens\":");
    json_write_int(b, s->completion_tokens);
    buf_adds(b, "},\"version\":");
    json_write_int(b, s->version);
    buf_adds(b, ",\"created_at\":");
    encode_time(b, s->created_at);
    buf_adds(b, ",\"updated_at\":");
    encode_time(b, s->updated_at);
    buf_adds(b, ",\"last_activity_at\":");
    encode_time(b, s->last_activity_at);
    buf_addch(b, '}');
}

static void
encode_session_item(struct buf *b, const void *items, size_t i)
{
    encode_session(b, &((const struct session *)items)[i]);
}

void
encode_session_page(struct buf *b, const struct session_page *p, int64_t limit,
                    int64_t offset, size_t max_bytes)
{
    size_t start = b->len, n;

    buf_adds(b, "{\"items\":[");
    n = encode_items(b, start, max_bytes, p->items, p->len,
                     encode_session_item);
    encode_page_end(b, n < p->len || offset + (int64_t)n < p->total, p->total,
                    limit, offset);
}

void
encode_message(struct buf *b, const struct message *m)
{
    char id[UUID_STR_LEN + 1];

    uuid_format(&m->id, id);
    buf_adds(b, "{\"id\":\"");
    buf_adds(b, id);
    buf_adds(b, "\",\"session_id\":");
    json_write_cstr(b, m->session_id);
    buf_adds(b, ",\"seq\":");
    json_write_int(b, m->seq);
    buf_adds(b, ",\"role\":\"");
    buf_adds(b, role_name(m->role));
    buf_adds(b, "\",\"content\":");
    json_write_cstr(b, m->content);
    buf_adds(b, ",\"tool_call_id\":");
    json_write_cstr(b, m->tool_call_id);
    buf_adds(b, ",\"tool_name\":");
    json_write_cstr(b, m->tool_name);
    buf_adds(b, ",\"extra_data\":");
    if (m->extra_data != NULL)
        json_write_value(b, m->extra_data);
    else
        json_write_null(b);
    buf_adds(b, ",\"created_at\":");
    encode_time(b, m->created_at);
    buf_adds(b, ",\"updated_at\":");
    encode_time(b, m->updated_at);
    buf_addch(b, '}');
}

static void
encode_message_item(struct buf *b, const void *items, size_t i)
{
    encode_message(b, &((const struct message *)items)[i]);
}

size_t
encode_message_size(const struct message *m)
{
    struct buf b;
    size_t n;

    buf_init(&b);
    encode_message(&b, m);
    n = b.len;
    buf_release(&b);
    return n;
}

/* A batch's answer: what was stored, which a request's body bounds. */
void
encode_message_items(struct buf *b, const struct message *m, size_t n)
{
    buf_adds(b, "{\"items\":[");
    encode_items(b, b->len, 0, m, n, encode_message_item);
    buf_adds(b, "]}");
}

void
encode_message_page(struct buf *b, const struct message_page *p, int64_t limit,
                    int64_t offset, size_t max_bytes)
{
    size_t start = b->len, n;

    buf_adds(b, "{\"items\":[");
    n = encode_items(b, start, max_bytes, p->items, p->len,
                     encode_message_item);
    /* has_more was read (one message past the page), not computed:
     * total may be the session's message_count (service_message.c). */
    encode_page_end(b, n < p->len || p->has_more, p->total, limit, offset);
}

/* The service has fitted the run to page_max_bytes already
 * (service_message_context_bounded()). */
void
encode_context(struct buf *b, const struct message_page *p, int64_t tokens,
               bool has_more)
{
    buf_adds(b, "{\"items\":[");
    encode_items(b, b->len, 0, p->items, p->len, encode_message_item);
    buf_adds(b, "],\"tokens\":");
    json_write_int(b, tokens);
    buf_adds(b, ",\"has_more\":");
    json_write_bool(b, has_more);
    buf_addch(b, '}');
}

/* `"key":n`, after a comma unless it is the object's first member. */
static void
encode_count(struct buf *b, const char *key, int64_t n, bool first)
{
    if (!first)
        buf_addch(b, ',');
    json_write_key(b, key);
    json_write_int(b, n);
}

void
encode_deleted_count(struct buf *b, int64_t n)
{
    buf_addch(b, '{');
    encode_count(b, "deleted_count", n, true);
    buf_addch(b, '}');
}

void
encode_conversation(struct buf *b, const struct conversation_result *r)
{
    char uuid[UUID_STR_LEN + 1];

    uuid_format(&r->session_uuid, uuid);
    buf_adds(b, "{\"session_id\":");
    json_write_cstr(b, r->session_id);
    buf_adds(b, ",\"session_uuid\":\"");
    buf_adds(b, uuid);
    buf_adds(b, "\",\"response\":");
    json_write_cstr(b, r->response);
    encode_count(b, "messages_count", r->messages_count, false);
    buf_adds(b, ",\"session_active\":");
    json_write_bool(b, r->session_active);
    buf_adds(b, ",\"message\":");
    encode_message(b, &r->message);
    buf_addch(b, '}');
}

void
encode_event_begin(struct buf *b, const char *event)
{
    buf_adds(b, "event: ");
    buf_adds(b, event);
    buf_adds(b, "\ndata: ");
}

void
encode_event_end(struct buf *b)
{
    buf_adds(b, "\n\n");
}

void
encode_conversation_delta(struct buf *b, const struct llm_delta *d)
{
    if (d->kind == LLM_DELTA_CONTENT) {
        buf_adds(b, "{\"content\":");
        json_write_string(b, d->text, d->len);
        buf_addch(b, '}');
        return;
    }
    buf_adds(b, "{\"tool_call\":{\"index\":");
    json_write_int(b, d->tool_index);
    if (d->tool_id != NULL) {
        buf_adds(b, ",\"id\":");
        json_write_cstr(b, d->tool_id);
    }
    if (d->tool_name != NULL) {
        buf_adds(b, ",\"name\":");
        json_write_cstr(b, d->tool_name);
    }
    buf_adds(b, ",\"arguments\":");
    json_write_string(b, d->text, d->len);
    buf_adds(b, "}}");
}

void
encode_memory_entry(struct buf *b, const char *key,
                    const struct json_value *value)
{
    buf_adds(b, "{\"key\":");
    json_write_cstr(b, key);
    buf_adds(b, ",\"value\":");
    json_write_value(b, value);
    buf_addch(b, '}');
}

static void
encode_memory_member(struct buf *b, const void *items, size_t i)
{
    const struct json_member *m = &((const struct json_member *)items)[i];

    json_write_string(b, m->key, m->key_len);
    buf_addch(b, ':');
    json_write_value(b, m->value);
}

void
encode_memory_page(struct buf *b, const struct memory_page *p, int64_t limit,
                   size_t max_bytes)
{
    const struct json_value *items = p->items;
    size_t start = b->len, n;
    bool more;

    buf_adds(b, "{\"items\":{");
    n = encode_items(b, start, max_bytes, items->u.o.members, items->u.o.len,
                     encode_memory_member);
    more = p->has_more || n < items->u.o.len;
    buf_adds(b, "},\"limit\":");
    json_write_int(b, limit);
    buf_adds(b, ",\"has_more\":");
    json_write_bool(b, more);
    buf_adds(b, ",\"next_after\":");
    if (more && n > 0)
        json_write_string(b, items->u.o.members[n - 1].key,
                          items->u.o.members[n - 1].key_len);
    else
        json_write_null(b);
    buf_addch(b, '}');
}

void
encode_stats(struct buf *b, const struct session_stats *st)
{
    double average = 0.0;

    /* Hundredths, half up, in integers (both counts are >= 0). */
    if (st->total_sessions > 0)
        average = (double)((st->total_messages * 200 + st->total_sessions) /
                           (2 * st->total_sessions)) /
                  100.0;
    buf_addch(b, '{');
    encode_count(b, "total_sessions", st->total_sessions, true);
    encode_count(b, "active_sessions", st->by_status[STATUS_ACTIVE], false);
    buf_adds(b, ",\"by_status\":{");
    for (int i = 0; i < STATUS_COUNT; i++)
        encode_count(b, status_name((enum session_status)i), st->by_status[i],
                     i == 0);
    buf_addch(b, '}');
    encode_count(b, "total_messages", st->total_messages, false);
    buf_adds(b, ",\"average_messages_per_session\":");
    json_write_double(b, average);
    buf_addch(b, '}');
}

void
encode_session_health(struct buf *b, const struct session_health *h)
{
    buf_adds(b, "{\"session_id\":");
    json_write_cstr(b, h->session_id);
    encode_count(b, "message_count", h->message_count, false);
    buf_adds(b, ",\"hours_inactive\":");
    json_write_double(b, h->hours_inactive);
    encode_count(b, "health_score", h->report.score, false);
    buf_adds(b, ",\"recommendations\":[");
    for (size_t i = 0; i < h->report.n; i++) {
        if (i > 0)
            buf_addch(b, ',');
        json_write_cstr(b, h->report.recommendations[i]);
    }
    buf_adds(b, "]}");
}

void
encode_sweep_counts(struct buf *b, const struct sweep_counts *c)
{
    buf_addch(b, '{');
    encode_count(b, "expired", c->expired, true);
    encode_count(b, "deleted_sessions", c->deleted_sessions, false);
    encode_count(b, "deleted_messages", c->deleted_messages, false);
    buf_addch(b, '}');
}

void
encode_erase_counts(struct buf *b, const struct erase_counts *n)
{
    buf_addch(b, '{');
    encode_count(b, "deleted_sessions", n->sessions, true);
    encode_count(b, "deleted_messages", n->messages, false);
    encode_count(b, "deleted_memory", n->memory, false);
    buf_addch(b, '}');
}

void
encode_probe(struct buf *b, const char *status)
{
    buf_adds(b, "{\"status\":");
    json_write_cstr(b, status);
    buf_addch(b, '}');
}

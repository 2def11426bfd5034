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

/* Closes a list's items array and adds the paging fields every list
 * answers with. */
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

/* The items of a list, without the brackets. */
static void
encode_sessions(struct buf *b, const struct session *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_addch(b, ',');
        encode_session(b, &s[i]);
    }
}

void
encode_session_page(struct buf *b, const struct session_page *p, int64_t limit,
                    int64_t offset)
{
    buf_adds(b, "{\"items\":[");
    encode_sessions(b, p->items, p->len);
    encode_page_end(b, offset + (int64_t)p->len < p->total, p->total, limit,
                    offset);
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
encode_messages(struct buf *b, const struct message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_addch(b, ',');
        encode_message(b, &m[i]);
    }
}

void
encode_message_items(struct buf *b, const struct message *m, size_t n)
{
    buf_adds(b, "{\"items\":[");
    encode_messages(b, m, n);
    buf_adds(b, "]}");
}

void
encode_message_page(struct buf *b, const struct message_page *p, int64_t limit,
                    int64_t offset)
{
    buf_adds(b, "{\"items\":[");
    encode_messages(b, p->items, p->len);
    /* has_more was read (one message past the page), not computed:
     * total may be the session's message_count (service_message.h). */
    encode_page_end(b, p->has_more, p->total, limit, offset);
}

void
encode_context(struct buf *b, const struct message_page *p, int64_t tokens)
{
    buf_adds(b, "{\"items\":[");
    encode_messages(b, p->items, p->len);
    buf_adds(b, "],\"tokens\":");
    json_write_int(b, tokens);
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
    buf_addch(b, '}');
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

void
encode_memory_items(struct buf *b, const struct json_value *items)
{
    buf_adds(b, "{\"items\":");
    json_write_value(b, items);
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

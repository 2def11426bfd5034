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
encode_page_end(struct buf *b, size_t len, int64_t total, int64_t limit,
                int64_t offset)
{
    buf_adds(b, "],\"total\":");
    json_write_int(b, total);
    buf_adds(b, ",\"limit\":");
    json_write_int(b, limit);
    buf_adds(b, ",\"offset\":");
    json_write_int(b, offset);
    buf_adds(b, ",\"has_more\":");
    json_write_bool(b, offset + (int64_t)len < total);
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

void
encode_session_page(struct buf *b, const struct session_page *p, int64_t limit,
                    int64_t offset)
{
    buf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < p->len; i++) {
        if (i > 0)
            buf_addch(b, ',');
        encode_session(b, &p->items[i]);
    }
    encode_page_end(b, p->len, p->total, limit, offset);
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

void
encode_message_items(struct buf *b, const struct message *m, size_t n)
{
    buf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_addch(b, ',');
        encode_message(b, &m[i]);
    }
    buf_adds(b, "]}");
}

void
encode_message_page(struct buf *b, const struct message_page *p, int64_t limit,
                    int64_t offset)
{
    buf_adds(b, "{\"items\":[");
    for (size_t i = 0; i < p->len; i++) {
        if (i > 0)
            buf_addch(b, ',');
        encode_message(b, &p->items[i]);
    }
    encode_page_end(b, p->len, p->total, limit, offset);
}

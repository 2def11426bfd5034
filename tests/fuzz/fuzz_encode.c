/*
 * fuzz_encode.c - the export encoders (JSON and CSV) and the streaming
 * loop around them, on sessions and messages made from the input.
 *
 * The input is read as fields split at 0xff bytes and a few raw bytes
 * (fuzz_util.h's reader).  Text fields are kept to what the store can
 * hold (valid UTF-8 without NUL); metadata and extra_data are JSON texts
 * that are used when they parse.  Properties:
 *   - the JSON export parses, with exactly the keys "session" and
 *     "messages", and gives back every field it was given (strings byte
 *     for byte, metadata and extra_data as the same trees, null as null);
 *     every message object has exactly the contract's ten keys;
 *   - the CSV export parses under a strict RFC 4180 reader (CRLF rows,
 *     quotes only around whole fields, doubled inside), has the header
 *     row and one row of 7 fields per message, gives back every text
 *     byte for byte (EXPORT_CSV_RAW), or with a "'" before a client's
 *     field that starts a formula (EXPORT_CSV, where no such field starts
 *     with = + - @ TAB CR), and keeps null (empty) apart from "" (quoted);
 *   - export_run() cut by its deadline at any page: still valid JSON
 *     ending "truncated": true, CSV ending "# truncated";
 *   - export_run() with any page size and a sink that flushes writes
 *     exactly what the encoders write directly; when the source fails
 *     part-way the result no longer parses, in either format;
 *   - the other response bodies encode.c writes (pages, context,
 *     conversation, memory, health) parse, as objects with exactly their
 *     keys, and give back the strings and trees they were given;
 *   - so do encode_openai.c's: a /v1 item list (each item's id first, as
 *     given or derived, a kept item's members as stored) and the
 *     conversation object (metadata values all strings).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "clock.h"
#include "error.h"
#include "encode.h"
#include "encode_openai.h"
#include "export.h"
#include "fuzz_util.h"
#include "json.h"
#include "role.h"
#include "service_openai.h"
#include "store.h"
#include "utf8.h"
#include "uuid.h"
#include "banned.h"

#define MAX_MESSAGES 8

struct input {
    struct session s;
    struct message m[MAX_MESSAGES];
    size_t n;
};

static const char *
maybe_text(struct fuzz_reader *r, struct arena *a)
{
    bool null = (fuzz_byte(r) & 1) != 0;
    const char *t = fuzz_text(r, a, NULL);

    return null ? NULL : t;
}

/* A JSON text from the input, or NULL when it does not parse (or
 * want_object and it is no object). */
static const struct json_value *
maybe_json(struct fuzz_reader *r, struct arena *a, bool want_object)
{
    struct error err = ERROR_INIT;
    size_t n;
    const uint8_t *p = fuzz_field(r, &n);
    const struct json_value *v = json_parse(a, (const char *)p, n, 16, &err);

    if (v != NULL && want_object && v->type != JSON_OBJECT)
        return NULL;
    return v;
}

static void
read_input(struct fuzz_reader *r, struct arena *a, struct input *in)
{
    struct session *s = &in->s;
    double ms;
    uint64_t bits;

    memset(in, 0, sizeof(*in));
    for (int i = 0; i < 16; i++)
        s->id.b[i] = fuzz_byte(r);
    s->user_id = "fuzz";
    s->session_id = fuzz_text(r, a, NULL);
    s->session_name = maybe_text(r, a);
    s->description = maybe_text(r, a);
    s->agent_name = maybe_text(r, a);
    s->agent_instructions = maybe_text(r, a);
    s->status = (enum session_status)(fuzz_byte(r) % STATUS_COUNT);
    s->metadata = maybe_json(r, a, true);
    if (s->metadata == NULL)
        s->metadata = json_new_object(a, 0);
    s->message_count = (int64_t)fuzz_u64(r);
    s->request_count = (int64_t)fuzz_u64(r);
    s->error_count = (int64_t)fuzz_u64(r);
    bits = fuzz_u64(r);
    memcpy(&ms, &bits, sizeof(ms));
    s->total_processing_ms = isfinite(ms) ? ms : 0.0; /* stored ones are */
    s->version = (int64_t)fuzz_u64(r);
    s->created_at = (int64_t)fuzz_u64(r);
    s->updated_at = (int64_t)fuzz_u64(r);
    s->last_activity_at = (int64_t)fuzz_u64(r);

    in->n = fuzz_byte(r) % (MAX_MESSAGES + 1);
    for (size_t i = 0; i < in->n; i++) {
        struct message *m = &in->m[i];

        for (int k = 0; k < 16; k++)
            m->id.b[k] = fuzz_byte(r);
        m->session_uuid = s->id;
        m->user_id = "fuzz";
        m->session_id = s->session_id;
        m->seq = (int64_t)i + 1;
        m->role = (enum message_role)(fuzz_byte(r) % 4);
        m->content = fuzz_text(r, a, NULL);
        m->tool_call_id = maybe_text(r, a);
        m->tool_name = maybe_text(r, a);
        m->extra_data = (fuzz_byte(r) & 1) ? maybe_json(r, a, false) : NULL;
        m->created_at = (int64_t)fuzz_u64(r);
        m->updated_at = (int64_t)fuzz_u64(r);
        /* a /v1 item (an object), after the fields above so that older
         * corpus entries read as before */
        m->item = (fuzz_byte(r) & 1) ? maybe_json(r, a, true) : NULL;
        m->item_id = (fuzz_byte(r) & 1) ? fuzz_text(r, a, NULL) : NULL;
        if (fuzz_byte(r) & 1)
            m->role = ROLE_DEVELOPER;
        /* a model's reply with tool calls, some of them no calls (last
         * again, for the corpus) */
        if ((fuzz_byte(r) & 3) == 3) {
            struct json_value *extra = json_new_object(a, 1);
            struct json_value *calls = json_new_array(a, 4);
            size_t n = fuzz_byte(r) % 5;

            for (size_t k = 0; k < n; k++) {
                struct json_value *c = json_new_object(a, 3);
                struct json_value *fn = json_new_object(a, 2);
                const char *t;

                if ((fuzz_byte(r) & 7) == 0) { /* no call */
                    json_array_push(a, calls, json_new_int(a, 5));
                    continue;
                }
                t = fuzz_text(r, a, NULL);
                json_object_put(a, c, "id", 2,
                                json_new_string(a, t, strlen(t)));
                t = fuzz_text(r, a, NULL);
                json_object_put(a, fn, "name", 4,
                                json_new_string(a, t, strlen(t)));
                switch (fuzz_byte(r) % 3) { /* none, a string, not one */
                case 1:
                    t = fuzz_text(r, a, NULL);
                    json_object_put(a, fn, "arguments", 9,
                                    json_new_string(a, t, strlen(t)));
                    break;
                case 2:
                    json_object_put(a, fn, "arguments", 9,
                                    json_new_int(a, (int64_t)fuzz_u64(r)));
                    break;
                }
                json_object_put(a, c, "function", 8, fn);
                json_array_push(a, calls, c);
            }
            json_object_put(a, extra, "tool_calls", 10, calls);
            m->extra_data = extra;
            m->role = ROLE_ASSISTANT;
            m->item = NULL;
        }
    }
}

/* --- JSON ---------------------------------------------------------------- */

static void
expect_text(const struct json_value *o, const char *key, const char *want)
{
    const struct json_value *v = json_get(o, key);

    FUZZ_CHECK(v != NULL, "no \"%s\"", key);
    if (want == NULL) {
        FUZZ_CHECK(v->type == JSON_NULL, "\"%s\" is not null", key);
        return;
    }
    FUZZ_CHECK(v->type == JSON_STRING && v->u.s.len == strlen(want) &&
                   memcmp(v->u.s.ptr, want, v->u.s.len) == 0,
               "\"%s\" changed", key);
}

static void
expect_time(const struct json_value *o, const char *key)
{
    const struct json_value *v = json_get(o, key);
    int64_t ms;

    FUZZ_CHECK(v != NULL && v->type == JSON_STRING &&
                   v->u.s.len == CLOCK_RFC3339_LEN &&
                   clock_parse(v->u.s.ptr, &ms),
               "\"%s\" is no timestamp", key);
}

static void
check_json(struct arena *a, const struct input *in, const struct buf *out)
{
    static const char *const message_keys[] = {
        "id",           "session_id", "seq",        "role",       "content",
        "tool_call_id", "tool_name",  "extra_data", "created_at", "updated_at",
    };
    struct error err = ERROR_INIT;
    const struct json_value *root, *s, *msgs;
    char id[UUID_STR_LEN + 1];

    root = json_parse(a, out->data, out->len, 64, &err);
    FUZZ_CHECK(root != NULL, "JSON export does not parse: %s", err.message);
    FUZZ_CHECK(root->type == JSON_OBJECT && root->u.o.len == 2,
               "export is not {session, messages}");
    s = json_get(root, "session");
    msgs = json_get(root, "messages");
    FUZZ_CHECK(s != NULL && s->type == JSON_OBJECT, "no session object");
    FUZZ_CHECK(msgs != NULL && msgs->type == JSON_ARRAY, "no messages array");

    uuid_format(&in->s.id, id);
    expect_text(s, "id", id);
    expect_text(s, "session_id", in->s.session_id);
    expect_text(s, "session_name", in->s.session_name);
    expect_text(s, "description", in->s.description);
    expect_text(s, "agent_name", in->s.agent_name);
    expect_text(s, "agent_instructions", in->s.agent_instructions);
    expect_text(s, "status", status_name(in->s.status));
    FUZZ_CHECK(json_get(s, "metadata") != NULL &&
                   fuzz_json_same(json_get(s, "metadata"), in->s.metadata),
               "metadata changed");
    FUZZ_CHECK(json_get(s, "version") != NULL &&
                   json_get(s, "version")->u.i == in->s.version,
               "version changed");
    expect_time(s, "created_at");
    expect_time(s, "updated_at");
    expect_time(s, "last_activity_at");

    FUZZ_CHECK(msgs->u.a.len == in->n, "%zu messages written, %zu given",
               msgs->u.a.len, in->n);
    for (size_t i = 0; i < in->n; i++) {
        const struct message *m = &in->m[i];
        const struct json_value *o = msgs->u.a.items[i], *x;

        char v1[OPENAI_ITEM_ID_MAX + 1];
        bool has_item = m->item != NULL && m->item->type == JSON_OBJECT;

        /* the contract's ten keys, then item_id and (if any) item */
        FUZZ_CHECK(o->type == JSON_OBJECT &&
                       o->u.o.len == (has_item ? 12u : 11u),
                   "message %zu is not the contract's object", i);
        expect_text(o, "item_id", service_openai_item_id(m, v1));
        FUZZ_CHECK(has_item ? fuzz_json_same(json_get(o, "item"), m->item)
                            : json_get(o, "item") == NULL,
                   "message %zu: item changed", i);
        for (size_t k = 0; k < 10; k++)
            FUZZ_CHECK(json_get(o, message_keys[k]) != NULL,
                       "message %zu has no %s", i, message_keys[k]);
        uuid_format(&m->id, id);
        expect_text(o, "id", id);
        expect_text(o, "session_id", m->session_id);
        expect_text(o, "role", role_name(m->role));
        expect_text(o, "content", m->content);
        expect_text(o, "tool_call_id", m->tool_call_id);
        expect_text(o, "tool_name", m->tool_name);
        FUZZ_CHECK(json_get(o, "seq")->type == JSON_INT &&
                       json_get(o, "seq")->u.i == m->seq,
                   "seq changed");
        x = json_get(o, "extra_data");
        if (m->extra_data == NULL)
            FUZZ_CHECK(x->type == JSON_NULL, "extra_data not null");
        else
            FUZZ_CHECK(fuzz_json_same(x, m->extra_data), "extra_data changed");
        expect_time(o, "created_at");
        expect_time(o, "updated_at");
    }
}

/* --- CSV ----------------------------------------------------------------- */

struct csv_field {
    const char *s; /* arena, NUL-terminated */
    size_t len;
    bool quoted;
};

#define CSV_COLS 7

/* Reads one file strictly.  Returns the number of rows, or -1 when the
 * text is not RFC 4180 (with CRLF rows and no trailing garbage). */
static long
csv_parse(struct arena *a, const char *t, size_t n,
          struct csv_field rows[][CSV_COLS], size_t max_rows)
{
    size_t p = 0;
    long nrows = 0;

    while (p < n) {
        size_t col = 0;

        if ((size_t)nrows == max_rows)
            return -1;
        for (;;) {
            struct csv_field f = {NULL, 0, false};
            char *buf = arena_alloc(a, n - p + 1);

            if (p < n && t[p] == '"') {
                f.quoted = true;
                p++;
                for (;;) {
                    if (p >= n)
                        return -1; /* never closed */
                    if (t[p] == '"') {
                        if (p + 1 < n && t[p + 1] == '"') {
                            buf[f.len++] = '"';
                            p += 2;
                            continue;
                        }
                        p++;
                        break;
                    }
                    buf[f.len++] = t[p++];
                }
            } else {
                while (p < n && t[p] != ',' && t[p] != '\r') {
                    if (t[p] == '"' || t[p] == '\n')
                        return -1;
                    buf[f.len++] = t[p++];
                }
            }
            buf[f.len] = '\0';
            f.s = buf;
            if (col == CSV_COLS)
                return -1;
            rows[nrows][col++] = f;
            if (p < n && t[p] == ',') {
                p++;
                continue;
            }
            if (p + 1 < n && t[p] == '\r' && t[p + 1] == '\n') {
                p += 2;
                break;
            }
            return -1; /* a row must end in CRLF */
        }
        if (col != CSV_COLS)
            return -1;
        nrows++;
    }
    return nrows;
}

static void
expect_field(const struct csv_field *f, const char *want, const char *what)
{
    if (want == NULL) {
        FUZZ_CHECK(f->len == 0 && !f->quoted, "%s: null is not empty", what);
        return;
    }
    FUZZ_CHECK(f->len == strlen(want) && memcmp(f->s, want, f->len) == 0,
               "%s changed", what);
    if (want[0] == '\0')
        FUZZ_CHECK(f->quoted, "%s: \"\" not quoted, reads as null", what);
}

/* What EXPORT_CSV writes for a client's field: a "'" before = + - @ TAB
 * CR (OWASP's rule), else the value. */
static const char *
neutralised(struct arena *a, const char *v)
{
    if (v == NULL || v[0] == '\0' || strchr("=+-@\t\r", v[0]) == NULL)
        return v;
    return arena_printf(a, "'%s", v);
}

/* The CSV parses back to the messages, the client's fields neutralised
 * when safe: no field of them then starts a formula. */
static void
check_csv_as(struct arena *a, const struct input *in, const struct buf *out,
             bool safe)
{
    static const char *const header[CSV_COLS] = {
        "message_id", "role",       "content",    "tool_call_id",
        "tool_name",  "created_at", "updated_at",
    };
    struct csv_field rows[MAX_MESSAGES + 1][CSV_COLS];
    long nrows;
    char id[UUID_STR_LEN + 1];

    FUZZ_CHECK(utf8_valid(out->data, out->len), "CSV is not UTF-8");
    nrows = csv_parse(a, out->data, out->len, rows, MAX_MESSAGES + 1);
    FUZZ_CHECK(nrows == (long)in->n + 1, "CSV has %ld rows for %zu messages",
               nrows, in->n);
    for (size_t c = 0; c < CSV_COLS; c++)
        expect_field(&rows[0][c], header[c], "header");
    for (size_t i = 0; i < in->n; i++) {
        const struct message *m = &in->m[i];
        const struct csv_field *r = rows[i + 1];
        int64_t ms;

        uuid_format(&m->id, id);
        expect_field(&r[0], id, "message_id");
        expect_field(&r[1], role_name(m->role), "role");
        expect_field(&r[2], safe ? neutralised(a, m->content) : m->content,
                     "content");
        expect_field(&r[3],
                     safe ? neutralised(a, m->tool_call_id) : m->tool_call_id,
                     "tool_call_id");
        expect_field(&r[4], safe ? neutralised(a, m->tool_name) : m->tool_name,
                     "tool_name");
        for (int c = 2; safe && c <= 4; c++)
            FUZZ_CHECK(r[c].len == 0 || strchr("=+-@\t\r", r[c].s[0]) == NULL,
                       "a neutralised cell starts a formula");
        FUZZ_CHECK(r[5].len == CLOCK_RFC3339_LEN && clock_parse(r[5].s, &ms),
                   "created_at is no timestamp");
        FUZZ_CHECK(r[6].len == CLOCK_RFC3339_LEN && clock_parse(r[6].s, &ms),
                   "updated_at is no timestamp");
    }
}

static void
check_csv(struct arena *a, const struct input *in, const struct buf *out)
{
    check_csv_as(a, in, out, false);
}

static void
check_safe_csv(struct arena *a, const struct input *in, const struct buf *out)
{
    check_csv_as(a, in, out, true);
}

/* --- export_run ------------------------------------------------------------
 */

struct source {
    const struct input *in;
    int fail_at_call; /* 0: never */
    int calls;
};

static bool
source_next(void *ctx, int64_t after_seq, int64_t limit,
            struct message_page *page, struct error *err)
{
    struct source *src = ctx;
    size_t first = 0;

    if (++src->calls == src->fail_at_call)
        return error_set(err, ERR_UNAVAILABLE, NULL, "source failed");
    while (first < src->in->n && src->in->m[first].seq <= after_seq)
        first++;
    page->items = (struct message *)(uintptr_t)(src->in->m + first);
    page->len = src->in->n - first;
    if ((int64_t)page->len > limit)
        page->len = (size_t)limit;
    page->total = -1;
    return true;
}

static void
sink_flush(void *ctx, struct buf *out)
{
    struct buf *all = ctx;

    buf_add(all, out->data, out->len);
    buf_reset(out);
}

/* Runs export_run; returns whether it succeeded, with everything the
 * sink got in *all. */
static bool
run(enum export_format f, const struct input *in, int64_t page_size,
    int fail_at_call, struct buf *all)
{
    struct source src = {in, fail_at_call, 0};
    struct export_source source = {.next = source_next, .ctx = &src};
    struct export_sink sink = {.flush = sink_flush, .ctx = all};
    struct buf out;
    struct error err = ERROR_INIT;
    bool ok;

    buf_init(&out);
    ok = export_run(f, &in->s, &source, page_size, &sink, &out, &err);
    /* Everything went to the sink. */
    FUZZ_CHECK(out.len == 0, "%zu bytes never flushed", out.len);
    FUZZ_CHECK(ok || err.code == ERR_UNAVAILABLE, "failed with code %d",
               err.code);
    buf_release(&out);
    return ok;
}

/* Runs export_run with a sink whose check says the deadline has passed
 * from check number stop_at (from 0) on: the export must end truncated,
 * every byte flushed. */
struct stopping {
    struct buf *all;
    int checks, stop_at;
};

static void
stop_flush(void *ctx, struct buf *out)
{
    sink_flush(((struct stopping *)ctx)->all, out);
}

static enum export_check
stop_check(void *ctx)
{
    struct stopping *st = ctx;

    return st->checks++ >= st->stop_at ? EXPORT_STOP_DEADLINE : EXPORT_GO;
}

static enum export_end
run_cut(enum export_format f, const struct input *in, int64_t page_size,
        int stop_at, struct buf *all)
{
    struct source src = {in, 0, 0};
    struct export_source source = {.next = source_next, .ctx = &src};
    struct stopping st = {all, 0, stop_at};
    struct export_sink sink = {
        .flush = stop_flush, .ctx = &st, .check = stop_check};
    struct buf out;
    struct error err = ERROR_INIT;
    enum export_end end;

    buf_init(&out);
    end = export_run(f, &in->s, &source, page_size, &sink, &out, &err);
    FUZZ_CHECK(out.len == 0, "%zu bytes never flushed", out.len);
    buf_release(&out);
    return end;
}

/* A cut export says so: JSON parses, its last member "truncated": true;
 * CSV ends with the line "# truncated" after whole rows. */
static void
check_cut(struct arena *a, const struct input *in, int64_t page_size,
          int stop_at)
{
    struct buf got;
    struct error err = ERROR_INIT;
    const struct json_value *doc, *t;
    struct csv_field rows[MAX_MESSAGES + 1][CSV_COLS];
    const char *tail = "# truncated\r\n";
    enum export_end end;

    buf_init(&got);
    end = run_cut(EXPORT_JSON, in, page_size, stop_at, &got);
    if (end == EXPORT_TRUNCATED) {
        doc = json_parse(a, got.data, got.len, 64, &err);
        FUZZ_CHECK(doc != NULL, "a truncated JSON export does not parse: %s",
                   err.message);
        FUZZ_CHECK(doc->type == JSON_OBJECT && doc->u.o.len == 3,
                   "a truncated JSON export is not {session,messages,"
                   "truncated}");
        t = doc->u.o.members[2].value;
        FUZZ_CHECK(strcmp(doc->u.o.members[2].key, "truncated") == 0 &&
                       t->type == JSON_BOOL && t->u.b,
                   "the last member is not \"truncated\": true");
    } else {
        FUZZ_CHECK(end == EXPORT_COMPLETE, "export_run ended %d", (int)end);
    }
    buf_reset(&got);
    end = run_cut(EXPORT_CSV, in, page_size, stop_at, &got);
    if (end == EXPORT_TRUNCATED) {
        FUZZ_CHECK(got.len >= strlen(tail) &&
                       memcmp(got.data + got.len - strlen(tail), tail,
                              strlen(tail)) == 0,
                   "a truncated CSV export does not end with the marker");
        FUZZ_CHECK(csv_parse(a, got.data, got.len - strlen(tail), rows,
                             MAX_MESSAGES + 1) >= 1,
                   "the rows before the marker do not parse");
    }
    buf_release(&got);
}

/* --- the other bodies ---------------------------------------------------- */

/* text parsed as an object of exactly nkeys members. */
static const struct json_value *
parse_body(struct arena *a, const struct buf *text, size_t nkeys,
           const char *what)
{
    struct error err = ERROR_INIT;
    const struct json_value *v = json_parse(a, text->data, text->len, 64, &err);

    FUZZ_CHECK(v != NULL, "%s does not parse: %s", what, err.message);
    FUZZ_CHECK(v->type == JSON_OBJECT && v->u.o.len == nkeys,
               "%s is not an object of %zu members", what, nkeys);
    return v;
}

/* The /v1 bodies: the item list parses, each item is an object with a
 * string id first (the id given, or a prefix and 32 hex characters) and
 * every member of a kept item but content/id as it was stored; the
 * conversation's metadata values are all strings, string ones unchanged. */
static void
check_openai(struct arena *a, struct input *in, struct buf *b)
{
    const struct json_value *v, *data, *meta;
    size_t at;

    buf_reset(b);
    encode_openai_item_list(b, in->m, in->n, in->n > 1, 0);
    v = parse_body(a, b, 5, "item list");
    data = json_get(v, "data");
    FUZZ_CHECK(data != NULL && data->type == JSON_ARRAY, "item list data");
    /* every part of every message, in order (service_openai.h): the
     * message's own item, checked below, and a call per part k >= 0 */
    at = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct json_value *item, *id, *kept = in->m[i].item;
        size_t first = at; /* the whole message's item is its first */
        bool whole = false;

        for (int p = service_openai_next_part(&in->m[i], OPENAI_PART_NONE);
             p != OPENAI_PART_NONE;
             p = service_openai_next_part(&in->m[i], p)) {
            char want[OPENAI_PART_ID_MAX + 1];

            FUZZ_CHECK(at < data->u.a.len, "item list too short");
            item = data->u.a.items[at++];
            if (p == OPENAI_PART_WHOLE) {
                whole = true;
                continue;
            }
            id = json_get(item, "id");
            FUZZ_CHECK(id != NULL && id->type == JSON_STRING &&
                           strcmp(id->u.s.ptr, service_openai_part_id(
                                                   &in->m[i], p, want)) == 0,
                       "message %zu: call %d's id", i, p);
            expect_text(item, "type", "function_call");
        }
        if (!whole)
            continue;
        item = data->u.a.items[first];
        id = json_get(item, "id");
        FUZZ_CHECK(item->type == JSON_OBJECT && item->u.o.len > 0 &&
                       strcmp(item->u.o.members[0].key, "id") == 0 &&
                       id->type == JSON_STRING,
                   "item %zu has no id first", i);
        if (in->m[i].item_id != NULL)
            FUZZ_CHECK(strcmp(id->u.s.ptr, in->m[i].item_id) == 0,
                       "item %zu lost its given id", i);
        else
            FUZZ_CHECK(strchr(id->u.s.ptr, '_') != NULL &&
                           strlen(strchr(id->u.s.ptr, '_') + 1) == 32,
                       "item %zu: derived id %s", i, id->u.s.ptr);
        for (size_t k = 0; kept != NULL && k < kept->u.o.len; k++) {
            const struct json_member *m = &kept->u.o.members[k];

            /* a null status is shown as "completed" */
            if (strcmp(m->key, "id") == 0 || strcmp(m->key, "content") == 0 ||
                (strcmp(m->key, "status") == 0 && m->value->type == JSON_NULL))
                continue;
            FUZZ_CHECK(fuzz_json_same(json_get(item, m->key), m->value),
                       "item %zu: member %s changed", i, m->key);
        }
    }
    FUZZ_CHECK(at == data->u.a.len, "%zu items for %zu parts", data->u.a.len,
               at);
    buf_reset(b);
    encode_openai_conversation(b, &in->s);
    v = parse_body(a, b, 4, "conversation object");
    expect_text(v, "id", in->s.session_id);
    meta = json_get(v, "metadata");
    FUZZ_CHECK(meta != NULL && meta->type == JSON_OBJECT &&
                   meta->u.o.len == in->s.metadata->u.o.len,
               "conversation metadata");
    for (size_t k = 0; k < meta->u.o.len; k++) {
        const struct json_value *was = in->s.metadata->u.o.members[k].value;

        FUZZ_CHECK(meta->u.o.members[k].value->type == JSON_STRING,
                   "metadata value not a string");
        if (was->type == JSON_STRING)
            FUZZ_CHECK(fuzz_json_same(meta->u.o.members[k].value, was),
                       "metadata string changed");
    }
}

static void
check_bodies(struct arena *a, struct input *in)
{
    struct session *s = &in->s;
    /* has_more is the page's own (read by the store), not computed from
     * total: odd sizes say there is more. */
    struct message_page mp = {in->m, in->n, (int64_t)in->n + 3,
                              (in->n & 1) != 0};
    struct session_page sp = {s, 1, 1};
    struct conversation_result conv = {.session_id = s->session_id,
                                       .session_uuid = s->id,
                                       .response = s->description,
                                       .messages_count = s->message_count,
                                       .session_active = s->status == 0};
    struct session_health h = {s->session_id, s->message_count, 0.0, {0}};
    const struct json_value *v, *items;
    struct buf b;

    buf_init(&b);
    encode_message_page(&b, &mp, 2, 1, 0);
    v = parse_body(a, &b, 5, "message page");
    items = json_get(v, "items");
    FUZZ_CHECK(items != NULL && items->type == JSON_ARRAY &&
                   items->u.a.len == in->n,
               "message page items");
    FUZZ_CHECK(json_get(v, "has_more")->type == JSON_BOOL &&
                   json_get(v, "has_more")->u.b == mp.has_more,
               "has_more");

    /* page_max_bytes: a prefix of the items, at least one, within the
     * bound unless the one item alone passes it, has_more when cut */
    buf_reset(&b);
    encode_message_page(&b, &mp, 2, 1, 4096);
    v = parse_body(a, &b, 5, "capped message page");
    items = json_get(v, "items");
    FUZZ_CHECK(items->u.a.len <= in->n && (in->n == 0 || items->u.a.len >= 1),
               "capped page items");
    FUZZ_CHECK(b.len <= 4096 || items->u.a.len == 1, "page past its cap");
    FUZZ_CHECK(items->u.a.len == in->n || json_get(v, "has_more")->u.b,
               "a cut page without has_more");

    buf_reset(&b);
    encode_session_page(&b, &sp, 1, 0, 0);
    v = parse_body(a, &b, 5, "session page");
    items = json_get(v, "items");
    FUZZ_CHECK(items->type == JSON_ARRAY && items->u.a.len == 1,
               "session page items");
    expect_text(items->u.a.items[0], "session_id", s->session_id);

    buf_reset(&b);
    encode_context(&b, &mp, s->version, false);
    v = parse_body(a, &b, 3, "context");
    FUZZ_CHECK(json_get(v, "items")->u.a.len == in->n &&
                   json_get(v, "tokens")->u.i == s->version,
               "context");

    buf_reset(&b);
    if (in->n > 0)
        conv.message = in->m[0];
    encode_conversation(&b, &conv);
    v = parse_body(a, &b, 6, "conversation");
    expect_text(v, "session_id", s->session_id);
    expect_text(v, "response", s->description);
    FUZZ_CHECK(json_get(v, "messages_count")->u.i == s->message_count,
               "messages_count");

    buf_reset(&b);
    encode_memory_entry(&b, s->session_id, s->metadata);
    v = parse_body(a, &b, 2, "memory entry");
    expect_text(v, "key", s->session_id);
    FUZZ_CHECK(fuzz_json_same(json_get(v, "value"), s->metadata),
               "memory value changed");
    buf_reset(&b);
    encode_memory_page(&b, &(struct memory_page){s->metadata, false}, 100, 0);
    v = parse_body(a, &b, 4, "memory page");
    FUZZ_CHECK(fuzz_json_same(json_get(v, "items"), s->metadata),
               "memory items changed");

    check_openai(a, in, &b);

    buf_reset(&b);
    /* Hundredths of an hour, as health_hours() gives them. */
    h.hours_inactive = (double)(s->version & 0xfffff) / 100.0;
    health_score(s->message_count, h.hours_inactive, s->status == 0, &h.report);
    encode_session_health(&b, &h);
    v = parse_body(a, &b, 5, "health");
    expect_text(v, "session_id", s->session_id);
    FUZZ_CHECK(json_get(v, "health_score")->u.i == h.report.score &&
                   json_get(v, "recommendations")->u.a.len == h.report.n,
               "health");
    buf_release(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r = {data, size};
    struct arena a;
    struct input in;
    struct buf json, csv, got;
    int64_t page_size;
    int fail_at;

    arena_init(&a, 16 * 1024);
    buf_init(&json);
    buf_init(&csv);
    buf_init(&got);
    page_size = fuzz_byte(&r) % 4; /* 0 is taken as 1 */
    fail_at = fuzz_byte(&r) % 4;
    read_input(&r, &a, &in);

    export_json_head(&json, &in.s);
    export_csv_header(&csv);
    for (size_t i = 0; i < in.n; i++) {
        export_json_message(&json, &in.m[i], i);
        export_csv_row(&csv, &in.m[i]);
    }
    export_json_tail(&json);
    check_json(&a, &in, &json);
    check_csv(&a, &in, &csv);
    check_bodies(&a, &in);

    FUZZ_CHECK(run(EXPORT_JSON, &in, page_size, 0, &got), "export_run failed");
    FUZZ_CHECK(got.len == json.len &&
                   memcmp(got.data, json.data, json.len) == 0,
               "streamed JSON differs from the encoders' text");
    buf_reset(&got);
    FUZZ_CHECK(run(EXPORT_CSV_RAW, &in, page_size, 0, &got),
               "export_run failed");
    FUZZ_CHECK(got.len == csv.len && memcmp(got.data, csv.data, csv.len) == 0,
               "streamed CSV differs from the encoders' text");
    /* The default CSV: the same rows with formula cells neutralised. */
    buf_reset(&csv);
    export_csv_header(&csv);
    for (size_t i = 0; i < in.n; i++)
        export_csv_row_as(&csv, &in.m[i], true);
    check_safe_csv(&a, &in, &csv);
    buf_reset(&got);
    FUZZ_CHECK(run(EXPORT_CSV, &in, page_size, 0, &got), "export_run failed");
    FUZZ_CHECK(got.len == csv.len && memcmp(got.data, csv.data, csv.len) == 0,
               "streamed safe CSV differs from the encoders' text");

    check_cut(&a, &in, page_size, fail_at);

    if (fail_at > 0) {
        struct error err = ERROR_INIT;
        struct csv_field rows[MAX_MESSAGES + 1][CSV_COLS];

        buf_reset(&got);
        if (!run(EXPORT_JSON, &in, page_size, fail_at, &got))
            FUZZ_CHECK(json_parse(&a, got.data, got.len, 64, &err) == NULL,
                       "a JSON export cut short still parses");
        buf_reset(&got);
        if (!run(EXPORT_CSV, &in, page_size, fail_at, &got))
            FUZZ_CHECK(
                csv_parse(&a, got.data, got.len, rows, MAX_MESSAGES + 1) < 0,
                "a CSV export cut short still parses");
    }
    buf_release(&got);
    buf_release(&csv);
    buf_release(&json);
    arena_release(&a);
    return 0;
}

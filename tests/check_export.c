/*
 * check_export.c - the export encoders and the streaming loop: CSV fields
 * exactly as RFC 4180 (and our null/empty rule) says, hostile content read
 * back by a strict RFC 4180 parser written here, the JSON document's exact
 * text, paging, flushing and failure mid-stream.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "clock.h"
#include "encode.h"
#include "export.h"
#include "json.h"
#include "role.h"
#include "service_openai.h"
#include "suites.h"

static struct arena arena;

static void
setup(void)
{
    arena_init(&arena, 0);
}

static void
teardown(void)
{
    arena_release(&arena);
}

/* ---------------------------------------------------------------------- */
/* A strict RFC 4180 reader: every record ends with CRLF, a quote may only
 * open a field or be doubled inside a quoted one, nothing may follow a
 * closing quote but a comma or CRLF, bare CR or LF outside quotes is an
 * error.  It keeps whether a field was quoted, which tells "" from null. */

#define CSV_MAX_FIELDS 8

struct csv_field {
    const char *s; /* NUL-terminated (arena) */
    size_t len;
    bool quoted;
};

struct csv_row {
    struct csv_field f[CSV_MAX_FIELDS];
    size_t n;
};

/* Returns the number of rows, or -1 on any syntax error. */
static long
csv_parse(const char *p, size_t len, struct csv_row *rows, size_t max_rows)
{
    size_t i = 0;
    long nrows = 0;

    while (i < len) {
        struct csv_row *row;

        if ((size_t)nrows == max_rows)
            return -1;
        row = &rows[nrows];
        row->n = 0;
        for (;;) {
            struct buf field;
            struct csv_field *f;
            bool quoted = false;

            if (row->n == CSV_MAX_FIELDS)
                return -1;
            buf_init(&field);
            if (i < len && p[i] == '"') {
                quoted = true;
                i++;
                for (;;) {
                    if (i >= len) {
                        buf_release(&field);
                        return -1; /* unclosed quoted field */
                    }
                    if (p[i] == '"') {
                        if (i + 1 < len && p[i + 1] == '"') {
                            buf_addch(&field, '"');
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    buf_addch(&field, p[i++]);
                }
            } else {
                while (i < len && p[i] != ',' && p[i] != '\r') {
                    if (p[i] == '"' || p[i] == '\n') {
                        buf_release(&field);
                        return -1;
                    }
                    buf_addch(&field, p[i++]);
                }
            }
            f = &row->f[row->n++];
            f->s = arena_strndup(&arena, field.data, field.len);
            f->len = field.len;
            f->quoted = quoted;
            buf_release(&field);
            if (i < len && p[i] == ',') {
                i++;
                continue;
            }
            if (i + 1 < len && p[i] == '\r' && p[i + 1] == '\n') {
                i += 2;
                break;
            }
            return -1; /* no CRLF at the end of the record */
        }
        nrows++;
    }
    return nrows;
}

/* ---------------------------------------------------------------------- */
/* CSV fields, exactly. */

static const char *
field(const char *s)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    export_csv_cstr(&b, s);
    out = arena_strndup(&arena, b.data, b.len);
    buf_release(&b);
    return out;
}

START_TEST(csv_field_quoting)
{
    ck_assert_str_eq(field("plain"), "plain");
    ck_assert_str_eq(field("inner space ok"), "inner space ok");
    ck_assert_str_eq(field("a,b"), "\"a,b\"");
    ck_assert_str_eq(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    ck_assert_str_eq(field("\""), "\"\"\"\"");
    ck_assert_str_eq(field("\"\""), "\"\"\"\"\"\"");
    ck_assert_str_eq(field("a\rb"), "\"a\rb\"");
    ck_assert_str_eq(field("a\nb"), "\"a\nb\"");
    ck_assert_str_eq(field("a\r\nb\r\n"), "\"a\r\nb\r\n\"");
    ck_assert_str_eq(field(" lead"), "\" lead\"");
    ck_assert_str_eq(field("trail "), "\"trail \"");
    ck_assert_str_eq(field("\ttab"), "\"\ttab\"");
    ck_assert_str_eq(field("tab\t"), "\"tab\t\"");
    ck_assert_str_eq(field(" "), "\" \"");
    /* empty string and null differ */
    ck_assert_str_eq(field(""), "\"\"");
    ck_assert_str_eq(field(NULL), "");
    /* UTF-8 passes through untouched, unquoted */
    ck_assert_str_eq(field("h\xc3\xa9llo \xf0\x9f\x98\x80"),
                     "h\xc3\xa9llo \xf0\x9f\x98\x80");
    /* data, not a spreadsheet: a formula is not defused */
    ck_assert_str_eq(field("=SUM(A1:A2)"), "=SUM(A1:A2)");
    ck_assert_str_eq(field(",,,"), "\",,,\"");
    ck_assert_str_eq(field("back\\slash"), "back\\slash");
}
END_TEST

START_TEST(csv_field_with_nul_length)
{
    struct buf b;

    /* The length rules, not strlen: a field holding a NUL byte (never
     * stored, but the encoder must not care) keeps it. */
    buf_init(&b);
    export_csv_field(&b, "a\0,b", 4);
    ck_assert_uint_eq(b.len, 6);
    ck_assert_mem_eq(b.data, "\"a\0,b\"", 6);
    buf_release(&b);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Sessions, messages, a source over an array and a collecting sink. */

static struct session
session_of(const char *sid)
{
    struct session s;
    struct error err = ERROR_INIT;
    const char *meta = "{\"source\":\"web\",\"nested\":{\"a\":[1,2.5,null]}}";

    memset(&s, 0, sizeof(s));
    uuid_generate(&s.id);
    s.user_id = "u";
    s.session_id = sid;
    s.session_name = "name, with \"quotes\"";
    s.description = NULL;
    s.agent_name = "agent";
    s.agent_instructions = "be\nhelpful";
    s.status = STATUS_COMPLETED;
    s.metadata = json_parse(&arena, meta, strlen(meta), 32, &err);
    ck_assert_ptr_nonnull(s.metadata);
    s.message_count = 3;
    s.last_seq = 3;
    s.request_count = 14;
    s.error_count = 1;
    s.total_processing_ms = 23.5;
    s.version = 3;
    s.created_at = 1790000000123;
    s.updated_at = 1790000001456;
    s.last_activity_at = 1790000002789;
    return s;
}

/* The hostile contents every CSV test runs through. */
static const char *const hostile[] = {
    "plain",
    "comma, inside",
    "quote \" inside",
    "\"",
    "\"\"",
    "\"a\",\"b\"",
    "line\nfeed",
    "carriage\rreturn",
    "crlf\r\nend\r\n",
    "\r\n",
    " leading space",
    "trailing space ",
    "  ",
    "\ttab\t",
    "",
    ("unicode: h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac "
     "\xf0\x9f\x98\x80 \xe2\x80\xa8"),
    "=SUM(A1:A2)",
    ",,,",
    "control \x01\x1f\x7f",
    "back\\slash </script>",
};

#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static const char *const tool_ids[] = {NULL, "", "call,\"1\"\r\n", "plain"};

static struct message *
messages_of(const struct session *s, size_t n)
{
    struct message *m = arena_calloc(&arena, n * sizeof(*m));
    const char *extra =
        "{\"k\":\"v,\\\"\\n\",\"tool_calls\":[{\"id\":\"c1\"}]}";

    for (size_t i = 0; i < n; i++) {
        struct error err = ERROR_INIT;

        uuid_generate(&m[i].id);
        m[i].session_uuid = s->id;
        m[i].user_id = s->user_id;
        m[i].session_id = s->session_id;
        m[i].seq = (int64_t)(i + 1) * 2; /* gaps, as after deletes */
        m[i].role = (enum message_role)(i % ROLE_COUNT);
        m[i].content = hostile[i % NHOSTILE];
        m[i].tool_call_id = tool_ids[i % 4];
        m[i].tool_name = tool_ids[(i + 1) % 4];
        if (i % 3 == 0)
            m[i].extra_data =
                json_parse(&arena, extra, strlen(extra), 32, &err);
        ck_assert(i % 3 != 0 || m[i].extra_data != NULL);
        m[i].created_at = 1790000000000 + (int64_t)i;
        m[i].updated_at = 1790000000500 + (int64_t)i;
    }
    return m;
}

struct array_source {
    struct message *m;
    size_t n;
    int calls;
    int fail_at;        /* call number that fails, or -1 */
    bool stuck;         /* always answer the first page */
    int64_t afters[64]; /* after_seq of each call */
    int64_t limits[64];
};

static bool
array_next(void *ctx, int64_t after_seq, int64_t limit,
           struct message_page *page, struct error *err)
{
    struct array_source *a = ctx;
    size_t i = 0;

    if (a->calls < 64) {
        a->afters[a->calls] = after_seq;
        a->limits[a->calls] = limit;
    }
    if (a->calls++ == a->fail_at)
        return error_set(err, ERR_UNAVAILABLE, NULL, "the source went away");
    while (!a->stuck && i < a->n && a->m[i].seq <= after_seq)
        i++;
    page->items = a->m + i;
    page->len = a->n - i < (size_t)limit ? a->n - i : (size_t)limit;
    page->total = -1;
    return true;
}

struct collector {
    struct buf all;
    int flushes;
    size_t max_flushed;   /* largest out->len seen at a flush */
    size_t short_flushes; /* flushes under EXPORT_FLUSH_BYTES */
};

static void
collect(void *ctx, struct buf *out)
{
    struct collector *c = ctx;

    c->flushes++;
    if (out->len > c->max_flushed)
        c->max_flushed = out->len;
    if (out->len < EXPORT_FLUSH_BYTES)
        c->short_flushes++;
    buf_add(&c->all, out->data, out->len);
    buf_reset(out);
}

/* Runs an export of msgs[0..n) into c->all. */
static bool
run(enum export_format f, const struct session *s, struct array_source *src,
    int64_t page, struct collector *c, struct error *err)
{
    struct export_source source = {.next = array_next, .ctx = src};
    struct export_sink sink = {.flush = collect, .ctx = c};
    struct buf out;
    bool ok;

    buf_init(&out);
    buf_init(&c->all);
    ok = export_run(f, s, &source, page, &sink, &out, err);
    ck_assert_uint_eq(out.len, 0); /* all of it went to the sink */
    buf_release(&out);
    return ok;
}

/* ---------------------------------------------------------------------- */
/* CSV through the loop, read back. */

static void
expect_csv_field(const struct csv_field *f, const char *want, int row, int col)
{
    if (want == NULL) {
        ck_assert_msg(f->len == 0 && !f->quoted,
                      "row %d col %d: null must be an empty unquoted field",
                      row, col);
        return;
    }
    ck_assert_msg(f->len == strlen(want) && memcmp(f->s, want, f->len) == 0,
                  "row %d col %d: got [%s] want [%s]", row, col, f->s, want);
    if (want[0] == '\0')
        ck_assert_msg(f->quoted, "row %d col %d: \"\" must be quoted", row,
                      col);
}

/* What EXPORT_CSV makes of a client's text: a "'" before a formula
 * start. */
static const char *
neutralised(const char *v)
{
    if (v == NULL || v[0] == '\0' || strchr("=+-@\t\r", v[0]) == NULL)
        return v;
    return arena_printf(&arena, "'%s", v);
}

static void
expect_csv_round_trip_as(enum export_format f, size_t n, int64_t page)
{
    bool safe = f == EXPORT_CSV;
    struct session s = session_of("csv-session");
    struct message *m = messages_of(&s, n);
    struct array_source src = {m, n, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;
    struct csv_row *rows = arena_calloc(&arena, (n + 2) * sizeof(*rows));
    static const char *const head[] = {
        "message_id", "role",       "content",   "tool_call_id",
        "tool_name",  "created_at", "updated_at"};
    long nrows;

    ck_assert(run(f, &s, &src, page, &c, &err));
    nrows = csv_parse(c.all.data, c.all.len, rows, n + 2);
    ck_assert_int_eq(nrows, (long)n + 1);
    ck_assert_uint_eq(rows[0].n, 7);
    for (size_t k = 0; k < 7; k++) {
        ck_assert_str_eq(rows[0].f[k].s, head[k]);
        ck_assert(!rows[0].f[k].quoted);
    }
    for (size_t i = 0; i < n; i++) {
        const struct csv_row *r = &rows[i + 1];
        char id[UUID_STR_LEN + 1], ts[CLOCK_RFC3339_LEN + 1];

        ck_assert_uint_eq(r->n, 7);
        uuid_format(&m[i].id, id);
        expect_csv_field(&r->f[0], id, (int)i + 1, 0);
        expect_csv_field(&r->f[1], role_name(m[i].role), (int)i + 1, 1);
        expect_csv_field(&r->f[2],
                         safe ? neutralised(m[i].content) : m[i].content,
                         (int)i + 1, 2);
        expect_csv_field(
            &r->f[3], safe ? neutralised(m[i].tool_call_id) : m[i].tool_call_id,
            (int)i + 1, 3);
        expect_csv_field(&r->f[4],
                         safe ? neutralised(m[i].tool_name) : m[i].tool_name,
                         (int)i + 1, 4);
        clock_format(m[i].created_at, ts);
        expect_csv_field(&r->f[5], ts, (int)i + 1, 5);
        clock_format(m[i].updated_at, ts);
        expect_csv_field(&r->f[6], ts, (int)i + 1, 6);
    }
    buf_release(&c.all);
}

static void
expect_csv_round_trip(size_t n, int64_t page)
{
    expect_csv_round_trip_as(EXPORT_CSV_RAW, n, page);
    expect_csv_round_trip_as(EXPORT_CSV, n, page);
}

START_TEST(csv_hostile_round_trip)
{
    /* every hostile content with every tool field kind, in several page
     * sizes: one page, pages that end mid-list, one message per page;
     * raw gives back exactly what was stored, the default only adds the
     * "'" before a formula */
    expect_csv_round_trip(NHOSTILE * 4, 1000);
    expect_csv_round_trip(NHOSTILE * 4, 7);
    expect_csv_round_trip(NHOSTILE, 1);
}
END_TEST

/* OWASP's rule, field by field: = + - @ TAB CR first get a "'"; nothing
 * else changes, and the quoting rules see the "'". */
START_TEST(csv_formula_cells)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"=SUM(A1:A2)", "'=SUM(A1:A2)"},
        {"+1", "'+1"},
        {"-1", "'-1"},
        {"@cmd", "'@cmd"},
        {"\tx", "'\tx"},               /* no longer starts with a blank */
        {"\rx", "\"'\rx\""},           /* CR: quoted */
        {"=a,b", "\"'=a,b\""},         /* a comma: quoted, "'" inside */
        {"=\"q\"", "\"'=\"\"q\"\"\""}, /* quotes doubled */
        {"a=b", "a=b"},
        {" =x", "\" =x\""}, /* only the first character counts */
        {"'=x", "'=x"},
        {"", "\"\""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;

        buf_init(&b);
        export_csv_safe_field(&b, cases[i].in, strlen(cases[i].in));
        ck_assert_msg(strcmp(b.data, cases[i].out) == 0,
                      "case %zu: got [%s] want [%s]", i, b.data, cases[i].out);
        buf_release(&b);
    }
    {
        struct buf b;

        buf_init(&b);
        export_csv_safe_field(&b, NULL, 0);
        ck_assert_uint_eq(b.len, 0); /* null stays an empty field */
        buf_release(&b);
    }
}
END_TEST

/* The row: message_id, role and timestamps are the server's and never
 * start a formula; the client's three fields are neutralised. */
START_TEST(csv_formula_row)
{
    struct message m;
    struct buf raw, safe;

    memset(&m, 0, sizeof(m));
    uuid_parse("00000000-0000-4000-8000-000000000001", &m.id);
    m.role = ROLE_TOOL;
    m.content = "=HYPERLINK(\"http://x\")";
    m.tool_call_id = "+call";
    m.tool_name = "-tool";
    buf_init(&raw);
    buf_init(&safe);
    export_csv_row(&raw, &m);
    export_csv_row_as(&safe, &m, true);
    ck_assert_str_eq(raw.data, "00000000-0000-4000-8000-000000000001,tool,"
                               "\"=HYPERLINK(\"\"http://x\"\")\",+call,-tool,"
                               "1970-01-01T00:00:00.000Z,"
                               "1970-01-01T00:00:00.000Z\r\n");
    ck_assert_str_eq(safe.data, "00000000-0000-4000-8000-000000000001,tool,"
                                "\"'=HYPERLINK(\"\"http://x\"\")\",'+call,"
                                "'-tool,1970-01-01T00:00:00.000Z,"
                                "1970-01-01T00:00:00.000Z\r\n");
    buf_release(&raw);
    buf_release(&safe);
}
END_TEST

START_TEST(csv_exact_text)
{
    struct session s = session_of("exact");
    struct message m[2];
    struct array_source src = {m, 2, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;

    memset(m, 0, sizeof(m));
    uuid_parse("00000000-0000-4000-8000-000000000001", &m[0].id);
    uuid_parse("00000000-0000-4000-8000-000000000002", &m[1].id);
    m[0].seq = 1;
    m[0].role = ROLE_USER;
    m[0].content = "hi, \"you\"\r\nbye";
    m[0].created_at = m[0].updated_at = 0;
    m[1].seq = 2;
    m[1].role = ROLE_TOOL;
    m[1].content = "";
    m[1].tool_call_id = "";
    m[1].tool_name = "t";
    m[1].created_at = 1790000000123;
    m[1].updated_at = 1790000000124;
    ck_assert(run(EXPORT_CSV, &s, &src, 10, &c, &err));
    ck_assert_str_eq(
        c.all.data,
        "message_id,role,content,tool_call_id,tool_name,created_at,"
        "updated_at\r\n"
        "00000000-0000-4000-8000-000000000001,user,\"hi, \"\"you\"\"\r\nbye\""
        ",,,1970-01-01T00:00:00.000Z,1970-01-01T00:00:00.000Z\r\n"
        "00000000-0000-4000-8000-000000000002,tool,\"\",\"\",t,"
        "2026-09-21T14:13:20.123Z,2026-09-21T14:13:20.124Z\r\n");
    buf_release(&c.all);
}
END_TEST

START_TEST(csv_empty_session_is_the_header)
{
    struct session s = session_of("empty");
    struct array_source src = {NULL, 0, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;

    ck_assert(run(EXPORT_CSV, &s, &src, 200, &c, &err));
    ck_assert_str_eq(c.all.data, "message_id,role,content,tool_call_id,"
                                 "tool_name,created_at,updated_at\r\n");
    ck_assert_int_eq(src.calls, 1);
    buf_release(&c.all);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* JSON */

START_TEST(json_exact_text_and_shape)
{
    struct session s = session_of("json-session");
    size_t n = NHOSTILE * 2;
    struct message *m = messages_of(&s, n);
    struct array_source src = {m, n, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;
    const struct json_value *doc, *sess, *msgs;
    struct buf want;
    const char *item = "{\"type\":\"reasoning\",\"summary\":[],"
                       "\"encrypted_content\":\"x,y\"}";

    /* Some messages written through /v1: an item, a client's id. */
    for (size_t i = 0; i < n; i += 4) {
        m[i].item = json_parse(&arena, item, strlen(item), 32, &err);
        ck_assert_ptr_nonnull(m[i].item);
        if (i % 8 == 0)
            m[i].item_id = arena_printf(&arena, "rs_%zu", i);
    }
    ck_assert(run(EXPORT_JSON, &s, &src, 5, &c, &err));
    /* exactly the session as GET shows it, then the messages as the
     * message routes show them, in order, each with the id it has as a
     * /v1 item and the item it keeps, if any */
    buf_init(&want);
    buf_adds(&want, "{\"session\":");
    encode_session(&want, &s);
    buf_adds(&want, ",\"messages\":[");
    for (size_t i = 0; i < n; i++) {
        char id[OPENAI_ITEM_ID_MAX + 1];

        if (i > 0)
            buf_addch(&want, ',');
        encode_message(&want, &m[i]);
        buf_truncate(&want, want.len - 1);
        buf_adds(&want, ",\"item_id\":");
        json_write_cstr(&want, service_openai_item_id(&m[i], id));
        if (m[i].item != NULL) {
            buf_adds(&want, ",\"item\":");
            buf_adds(&want, item);
        }
        buf_addch(&want, '}');
    }
    buf_adds(&want, "]}");
    ck_assert_uint_eq(c.all.len, want.len);
    ck_assert_str_eq(c.all.data, want.data);
    buf_release(&want);

    doc = json_parse(&arena, c.all.data, c.all.len, 64, &err);
    ck_assert_msg(doc != NULL, "%s", err.message);
    ck_assert_int_eq(doc->type, JSON_OBJECT);
    ck_assert_uint_eq(doc->u.o.len, 2);
    ck_assert_str_eq(doc->u.o.members[0].key, "session");
    ck_assert_str_eq(doc->u.o.members[1].key, "messages");
    sess = json_get(doc, "session");
    ck_assert_str_eq(json_get(sess, "session_id")->u.s.ptr, "json-session");
    ck_assert_str_eq(json_get(sess, "status")->u.s.ptr, "completed");
    msgs = json_get(doc, "messages");
    ck_assert_int_eq(msgs->type, JSON_ARRAY);
    ck_assert_uint_eq(msgs->u.a.len, n);
    for (size_t i = 0; i < n; i++) {
        const struct json_value *it = msgs->u.a.items[i];
        const struct json_value *tc = json_get(it, "tool_call_id");

        ck_assert_int_eq(json_get(it, "seq")->u.i, m[i].seq);
        ck_assert_str_eq(json_get(it, "content")->u.s.ptr, m[i].content);
        char id[OPENAI_ITEM_ID_MAX + 1];

        if (m[i].tool_call_id == NULL)
            ck_assert_int_eq(tc->type, JSON_NULL);
        else
            ck_assert_str_eq(tc->u.s.ptr, m[i].tool_call_id);
        ck_assert_str_eq(json_get(it, "item_id")->u.s.ptr,
                         service_openai_item_id(&m[i], id));
        if (i % 8 == 0)
            ck_assert_str_eq(json_get(it, "item_id")->u.s.ptr,
                             arena_printf(&arena, "rs_%zu", i));
        if (m[i].item == NULL)
            ck_assert_ptr_null(json_get(it, "item"));
        else
            ck_assert_uint_eq(
                json_get(json_get(it, "item"), "encrypted_content")->u.s.len,
                3);
    }
    buf_release(&c.all);
}
END_TEST

START_TEST(json_empty_session)
{
    struct session s = session_of("empty");
    struct array_source src = {NULL, 0, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;
    const struct json_value *doc;

    ck_assert(run(EXPORT_JSON, &s, &src, 200, &c, &err));
    doc = json_parse(&arena, c.all.data, c.all.len, 64, &err);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(json_get(doc, "messages")->type, JSON_ARRAY);
    ck_assert_uint_eq(json_get(doc, "messages")->u.a.len, 0);
    ck_assert_str_eq(c.all.data + c.all.len - 15, ",\"messages\":[]}");
    buf_release(&c.all);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Paging, flushing, failures. */

START_TEST(pages_follow_the_seq_cursor)
{
    struct session s = session_of("pages");
    struct message *m = messages_of(&s, 25); /* seqs 2, 4, ..., 50 */
    struct array_source src = {m, 25, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;

    ck_assert(run(EXPORT_JSON, &s, &src, 10, &c, &err));
    /* 10 + 10 + 5: the short page is the last, no read past it */
    ck_assert_int_eq(src.calls, 3);
    ck_assert_int_eq(src.afters[0], 0);
    ck_assert_int_eq(src.afters[1], 20);
    ck_assert_int_eq(src.afters[2], 40);
    ck_assert_int_eq(src.limits[2], 10);
    buf_release(&c.all);

    /* a full last page costs one more (empty) read */
    src.n = 20;
    src.calls = 0;
    ck_assert(run(EXPORT_JSON, &s, &src, 10, &c, &err));
    ck_assert_int_eq(src.calls, 3);
    ck_assert_int_eq(src.afters[2], 40);
    buf_release(&c.all);

    /* a page size below 1 is taken as 1 */
    src.n = 3;
    src.calls = 0;
    ck_assert(run(EXPORT_JSON, &s, &src, 0, &c, &err));
    ck_assert_int_eq(src.calls, 4);
    ck_assert_int_eq(src.limits[0], 1);
    buf_release(&c.all);
}
END_TEST

START_TEST(flushes_bound_the_buffer)
{
    struct session s = session_of("big");
    size_t n = 1000, big = 1000;
    struct message *m = arena_calloc(&arena, n * sizeof(*m));
    char *content = arena_alloc(&arena, big + 1);
    struct array_source src = {m, n, 0, -1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;

    memset(content, 'x', big);
    content[big] = '\0';
    for (size_t i = 0; i < n; i++) {
        uuid_generate(&m[i].id);
        m[i].session_id = "big";
        m[i].seq = (int64_t)i + 1;
        m[i].content = content;
    }
    for (int f = EXPORT_JSON; f <= EXPORT_CSV; f++) {
        c.flushes = 0;
        c.max_flushed = 0;
        c.short_flushes = 0;
        src.calls = 0;
        ck_assert(run((enum export_format)f, &s, &src, 100, &c, &err));
        /* ~1 MB in chunks: each flush but the last came once the buffer
         * passed EXPORT_FLUSH_BYTES, and by less than one message */
        ck_assert_uint_gt(c.all.len, n * big);
        ck_assert_int_ge(c.flushes, (int)(n * big / EXPORT_FLUSH_BYTES));
        ck_assert_uint_eq(c.short_flushes, 1);
        ck_assert_uint_lt(c.max_flushed, EXPORT_FLUSH_BYTES + big + 300);
        ck_assert_int_eq(src.calls, 11);
        buf_release(&c.all);
    }
}
END_TEST

START_TEST(failure_mid_stream_leaves_csv_broken)
{
    struct session s = session_of("fails");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, 1, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;
    struct csv_row rows[16];
    const char *tail = "\"export incomplete: the server could not read "
                       "every message";

    ck_assert(!run(EXPORT_CSV, &s, &src, 4, &c, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_int_eq(src.calls, 2);
    /* the first page went out, then the unclosed quote */
    ck_assert_uint_gt(c.all.len, strlen(tail));
    ck_assert_str_eq(c.all.data + c.all.len - strlen(tail), tail);
    ck_assert_int_eq(csv_parse(c.all.data, c.all.len, rows, 16), -1);
    /* without the marker it would have read as a complete file of 4 */
    ck_assert_int_eq(csv_parse(c.all.data, c.all.len - strlen(tail), rows, 16),
                     5);
    buf_release(&c.all);
}
END_TEST

START_TEST(failure_mid_stream_leaves_json_broken)
{
    struct session s = session_of("fails");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, 2, false, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT, perr = ERROR_INIT;

    ck_assert(!run(EXPORT_JSON, &s, &src, 4, &c, &err));
    ck_assert_int_eq(err.code, ERR_UNAVAILABLE);
    ck_assert_ptr_null(json_parse(&arena, c.all.data, c.all.len, 64, &perr));
    ck_assert_int_eq(c.all.data[c.all.len - 1], '}'); /* the 8th message */
    buf_release(&c.all);

    /* failing on the first read: just the head, still not JSON */
    src.fail_at = 0;
    src.calls = 0;
    ck_assert(!run(EXPORT_JSON, &s, &src, 4, &c, &err));
    ck_assert_ptr_null(json_parse(&arena, c.all.data, c.all.len, 64, &perr));
    ck_assert_str_eq(c.all.data + c.all.len - 13, ",\"messages\":[");
    buf_release(&c.all);
}
END_TEST

START_TEST(a_source_that_does_not_advance_stops)
{
    struct session s = session_of("stuck");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, -1, true, {0}, {0}};
    struct collector c = {{0}, 0, 0, 0};
    struct error err = ERROR_INIT;

    ck_assert(!run(EXPORT_CSV, &s, &src, 4, &c, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_assert_int_eq(src.calls, 2);
    buf_release(&c.all);
}
END_TEST

/* --- stopping: the deadline, a client gone -------------------------------- */

/* A collector whose check says `what` from check number stop_at (from 0)
 * on; stop_at -1: never. */
struct stopper {
    struct collector c;
    int checks;
    int stop_at;
    enum export_check what;
};

static void
stop_flush(void *ctx, struct buf *out)
{
    collect(&((struct stopper *)ctx)->c, out);
}

static enum export_check
stop_check(void *ctx)
{
    struct stopper *st = ctx;
    int n = st->checks++;

    return st->stop_at >= 0 && n >= st->stop_at ? st->what : EXPORT_GO;
}

static enum export_end
run_stopped(enum export_format f, const struct session *s,
            struct array_source *src, int64_t page, struct stopper *st,
            struct error *err)
{
    struct export_source source = {.next = array_next, .ctx = src};
    struct export_sink sink = {
        .flush = stop_flush, .ctx = st, .check = stop_check};
    struct buf out;
    enum export_end end;

    buf_init(&out);
    buf_init(&st->c.all);
    end = export_run(f, s, &source, page, &sink, &out, err);
    ck_assert_uint_eq(out.len, 0);
    buf_release(&out);
    return end;
}

/* Cut by the deadline before the third page: the two pages written, then
 * the marker; the JSON still parses and says so. */
START_TEST(deadline_truncates_json)
{
    struct session s = session_of("cut");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, -1, false, {0}, {0}};
    struct stopper st = {{{0}, 0, 0, 0}, 0, 2, EXPORT_STOP_DEADLINE};
    struct error err = ERROR_INIT, perr = ERROR_INIT;
    const struct json_value *doc, *msgs, *t;

    ck_assert_int_eq(run_stopped(EXPORT_JSON, &s, &src, 4, &st, &err),
                     EXPORT_TRUNCATED);
    ck_assert_int_eq(src.calls, 2);
    doc = json_parse(&arena, st.c.all.data, st.c.all.len, 64, &perr);
    ck_assert_msg(doc != NULL, "truncated JSON does not parse: %s",
                  perr.message);
    msgs = json_get(doc, "messages");
    ck_assert(msgs != NULL && msgs->type == JSON_ARRAY);
    ck_assert_uint_eq(msgs->u.a.len, 8);
    t = json_get(doc, "truncated");
    ck_assert(t != NULL && t->type == JSON_BOOL && t->u.b);
    /* the marker is the last member */
    ck_assert_str_eq(st.c.all.data + st.c.all.len - 19,
                     "],\"truncated\":true}");
    buf_release(&st.c.all);

    /* a complete export has no such member */
    src.calls = 0;
    st.checks = 0;
    st.stop_at = -1;
    ck_assert_int_eq(run_stopped(EXPORT_JSON, &s, &src, 4, &st, &err),
                     EXPORT_COMPLETE);
    doc = json_parse(&arena, st.c.all.data, st.c.all.len, 64, &perr);
    ck_assert(doc != NULL && json_get(doc, "truncated") == NULL);
    ck_assert_int_eq(st.checks, 3);
    buf_release(&st.c.all);
}
END_TEST

START_TEST(deadline_truncates_csv)
{
    struct session s = session_of("cut");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, -1, false, {0}, {0}};
    struct stopper st = {{{0}, 0, 0, 0}, 0, 1, EXPORT_STOP_DEADLINE};
    struct error err = ERROR_INIT;
    struct csv_row rows[16];
    const char *tail = "\r\n# truncated\r\n";

    ck_assert_int_eq(run_stopped(EXPORT_CSV, &s, &src, 4, &st, &err),
                     EXPORT_TRUNCATED);
    ck_assert_int_eq(src.calls, 1);
    ck_assert_str_eq(st.c.all.data + st.c.all.len - strlen(tail), tail);
    /* the rows before the marker: the header and the first page */
    ck_assert_int_eq(csv_parse(st.c.all.data,
                               st.c.all.len - strlen("# truncated\r\n"), rows,
                               16),
                     5);
    buf_release(&st.c.all);

    /* stopped before the first page: the header, then the marker */
    src.calls = 0;
    st.checks = 0;
    st.stop_at = 0;
    ck_assert_int_eq(run_stopped(EXPORT_CSV_RAW, &s, &src, 4, &st, &err),
                     EXPORT_TRUNCATED);
    ck_assert_int_eq(src.calls, 0);
    ck_assert_str_eq(st.c.all.data, "message_id,role,content,tool_call_id,"
                                    "tool_name,created_at,updated_at\r\n"
                                    "# truncated\r\n");
    buf_release(&st.c.all);
}
END_TEST

/* A read that fails once the deadline has passed is the deadline's doing:
 * a truncation, with the marker, not a failure. */
START_TEST(failure_at_the_deadline_truncates)
{
    struct session s = session_of("cut");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, 1, false, {0}, {0}};
    struct stopper st = {{{0}, 0, 0, 0}, 0, 2, EXPORT_STOP_DEADLINE};
    struct error err = ERROR_INIT, perr = ERROR_INIT;
    const struct json_value *doc;

    /* check 0 (page 1) go; check 1 (page 2) go; the read fails; check 2
     * says the deadline passed */
    ck_assert_int_eq(run_stopped(EXPORT_JSON, &s, &src, 4, &st, &err),
                     EXPORT_TRUNCATED);
    ck_assert_int_eq(err.code, ERR_NONE);
    doc = json_parse(&arena, st.c.all.data, st.c.all.len, 64, &perr);
    ck_assert(doc != NULL);
    ck_assert_uint_eq(json_get(doc, "messages")->u.a.len, 4);
    buf_release(&st.c.all);
}
END_TEST

/* The client has gone: the export stops before the next page and sends
 * nothing more, not even what was pending. */
START_TEST(client_gone_abandons)
{
    struct session s = session_of("gone");
    struct message *m = messages_of(&s, 10);
    struct array_source src = {m, 10, 0, -1, false, {0}, {0}};
    struct stopper st = {{{0}, 0, 0, 0}, 0, 1, EXPORT_STOP_GONE};
    struct error err = ERROR_INIT;

    ck_assert_int_eq(run_stopped(EXPORT_JSON, &s, &src, 4, &st, &err),
                     EXPORT_ABANDONED);
    ck_assert_int_eq(src.calls, 1);
    /* nothing flushed: the first page's text was still below the flush
     * size and is dropped */
    ck_assert_int_eq(st.c.flushes, 0);
    buf_release(&st.c.all);
}
END_TEST

/* Pages sized by bytes: the first asks for first_limit, the next ones
 * for what the last page's text says fits, capped at page_size. */
START_TEST(pages_sized_by_bytes)
{
    struct session s = session_of("bytes");
    size_t n = 50;
    struct message *m = arena_calloc(&arena, n * sizeof(*m));
    char *content = arena_alloc(&arena, 1001);
    struct array_source src = {m, n, 0, -1, false, {0}, {0}};
    struct export_source source = {
        .next = array_next, .ctx = &src, .page_bytes = 6000, .first_limit = 2};
    struct collector c = {{0}, 0, 0, 0};
    struct export_sink sink = {.flush = collect, .ctx = &c};
    struct error err = ERROR_INIT;
    struct buf out;

    memset(content, 'x', 1000);
    content[1000] = '\0';
    for (size_t i = 0; i < n; i++) {
        uuid_generate(&m[i].id);
        m[i].session_id = "bytes";
        m[i].seq = (int64_t)i + 1;
        m[i].content = i < 10 ? content : "y";
    }
    buf_init(&out);
    buf_init(&c.all);
    ck_assert_int_eq(
        export_run(EXPORT_JSON, &s, &source, 20, &sink, &out, &err),
        EXPORT_COMPLETE);
    ck_assert_int_eq(src.limits[0], 2);
    /* two messages of ~1.3 KB of text (with their item_id): about 4 fit
     * in 6000 bytes */
    ck_assert_int_ge(src.limits[1], 3);
    ck_assert_int_le(src.limits[1], 4);
    /* small messages afterwards: back up to page_size, never beyond */
    ck_assert_int_eq(src.limits[src.calls - 1], 20);
    for (int i = 0; i < src.calls; i++)
        ck_assert_int_le(src.limits[i], 20);
    buf_release(&out);
    buf_release(&c.all);
}
END_TEST

START_TEST(format_names)
{
    ck_assert_str_eq(export_format_name(EXPORT_JSON), "json");
    ck_assert_str_eq(export_format_name(EXPORT_CSV), "csv");
    ck_assert_str_eq(export_content_type(EXPORT_JSON), "application/json");
    ck_assert_str_eq(export_content_type(EXPORT_CSV),
                     "text/csv; charset=utf-8");
}
END_TEST

Suite *
export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *t = tcase_create("csv");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, csv_field_quoting);
    tcase_add_test(t, csv_field_with_nul_length);
    tcase_add_test(t, csv_hostile_round_trip);
    tcase_add_test(t, csv_formula_cells);
    tcase_add_test(t, csv_formula_row);
    tcase_add_test(t, csv_exact_text);
    tcase_add_test(t, csv_empty_session_is_the_header);
    suite_add_tcase(s, t);

    t = tcase_create("json");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, json_exact_text_and_shape);
    tcase_add_test(t, json_empty_session);
    suite_add_tcase(s, t);

    t = tcase_create("stream");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, pages_follow_the_seq_cursor);
    tcase_add_test(t, flushes_bound_the_buffer);
    tcase_add_test(t, failure_mid_stream_leaves_csv_broken);
    tcase_add_test(t, failure_mid_stream_leaves_json_broken);
    tcase_add_test(t, a_source_that_does_not_advance_stops);
    tcase_add_test(t, deadline_truncates_json);
    tcase_add_test(t, deadline_truncates_csv);
    tcase_add_test(t, failure_at_the_deadline_truncates);
    tcase_add_test(t, client_gone_abandons);
    tcase_add_test(t, pages_sized_by_bytes);
    tcase_add_test(t, format_names);
    suite_add_tcase(s, t);
    return s;
}

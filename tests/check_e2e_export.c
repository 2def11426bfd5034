/*
 * check_e2e_export.c - export and import end to end (check_e2e runs this
 * suite too): JSON and CSV exports of hostile content read back (CSV by a
 * strict RFC 4180 reader written here) and compared field by field with
 * what the message routes show, export -> delete -> import -> export,
 * 409 and all-or-none imports, BOLA, and a 5000-message export streamed
 * through nginx.
 *
 * Memory: an export holds one page of messages (SERVICE_EXPORT_PAGE) and
 * about 64 KiB of text at a time whatever the session's size, by
 * construction (src/export.c, src/service_export.c; tests/check_export.c
 * checks the flushing); the large test here shows the stream arrives
 * whole and in order.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "e2e_http.h"
#include "e2e_util.h"
#include "json.h"
#include "banned.h"

/* ====================================================================== */
/* Helpers. */

/* s as a JSON string literal, quotes included (NULL: null). */
static const char *
jq(const char *s)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    json_write_cstr(&b, s);
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

static const char *
export_path(const char *sid, const char *query)
{
    return str(SESSIONS "/%s/export%s", sid, query);
}

/* A GET whose body is not JSON (CSV): the checks wrap() makes on every
 * response but the JSON ones.  The response is kept until the test
 * ends. */
static struct resp
get_text(const struct user *u, const char *target)
{
    const char *lines[] = {str("Authorization: Bearer %s", u->token), NULL};
    struct e2e_http_response *raw = calloc(1, sizeof *raw);
    struct e2e_http_response **held;
    struct e2e_http_request req;
    struct resp r;

    ck_assert(raw != NULL);
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.target = target;
    req.headers = lines;
    req.source = case_source(tc.nreq++);
    (void)e2e_http_do(&env.client, &req, raw);
    held = realloc(tc.held, (tc.nheld + 1) * sizeof *held);
    ck_assert(held != NULL);
    tc.held = held;
    tc.held[tc.nheld++] = raw;

    ck_assert_msg(raw->status != 0, "GET %.200s: no response: %s", target,
                  raw->error);
    ck_assert_msg(raw->status < 500, "GET %.200s: server error %d", target,
                  raw->status);
    ck_assert_msg(e2e_http_header(raw, "X-Request-Id") != NULL,
                  "GET %.200s: no X-Request-Id", target);
    memset(&r, 0, sizeof r);
    r.status = raw->status;
    r.method = "GET";
    r.target = target;
    r.raw = raw;
    r.body = raw->body ? raw->body : "";
    r.body_len = raw->body_len;
    return r;
}

/* A copy of object o without the named members. */
static const struct json_value *
without(const struct json_value *o, const char *const *keys)
{
    struct json_value *out = json_new_object(&tc.arena, o->u.o.len);

    for (size_t i = 0; i < o->u.o.len; i++) {
        const struct json_member *m = &o->u.o.members[i];
        bool drop = false;

        for (const char *const *k = keys; *k != NULL; k++)
            drop = drop || strcmp(m->key, *k) == 0;
        if (!drop)
            json_object_put(&tc.arena, out, m->key, m->key_len, m->value);
    }
    return out;
}

#define expect_same(a, b) expect_same_at(__LINE__, (a), (b))
static void
expect_same_at(int line, const struct json_value *a, const struct json_value *b)
{
    ck_assert_msg(json_same(a, b), "line %d:\n  got  %.1500s\n  want %.1500s",
                  line, json_text(a), json_text(b));
}

/* What a client may set and what an export carries over; the server's
 * own fields are new after an import. */
static const char *const session_server_fields[] = {
    "id",         "version",          "metrics", "created_at",
    "updated_at", "last_activity_at", NULL};
static const char *const message_server_fields[] = {"id", "created_at",
                                                    "updated_at", NULL};
static const char *const no_metrics[] = {"metrics", NULL};
/* What an exported message has beyond the message route's object. */
static const char *const v1_fields[] = {"item_id", "item", NULL};

/* Whether id is the /v1 id made for a message of that UUID: a kind's
 * prefix ("msg_", "fc_", ...) and the UUID's hex digits. */
static bool
is_v1_id(const char *id, const char *uuid)
{
    char hex[33];
    size_t n = 0;
    const char *us = strchr(id, '_');

    for (const char *c = uuid; *c != '\0' && n < 32; c++)
        if (*c != '-')
            hex[n++] = *c;
    hex[n] = '\0';
    return us != NULL && strcmp(us + 1, hex) == 0;
}

/* Every message of a session through the list route, oldest first. */
static const struct json_value **
listed(const struct user *u, const char *sid, size_t total)
{
    const struct json_value **out =
        arena_calloc(&tc.arena, (total + 1) * sizeof *out);
    size_t got = 0;

    for (size_t off = 0;; off += 200) {
        struct resp r = api(
            u, "GET",
            str(SESSIONS "/%s/messages?limit=200&offset=%zu", sid, off), NULL);
        const struct json_value *items;

        expect_status(r, 200);
        items = jarr(r.json, "items");
        ck_assert_int_eq(jint(r.json, "total"), (int64_t)total);
        for (size_t i = 0; i < items->u.a.len; i++) {
            ck_assert(got < total);
            out[got++] = items->u.a.items[i];
        }
        if (items->u.a.len < 200)
            break;
    }
    ck_assert_uint_eq(got, total);
    return out;
}

/* The contents the CSV tests run through; messages i get hostile[i]. */
static const char *const hostile[] = {
    "plain",
    "comma, inside",
    "quote \" inside",
    "\"",
    "\"a\",\"b\"",
    "line\nfeed",
    "carriage\rreturn",
    "crlf\r\nend\r\n",
    "\r\n",
    " leading space",
    "trailing space ",
    "\ttab\t",
    "",
    ("unicode: h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 "
     "\xe2\x80\xa8"),
    "=SUM(A1:A2)",
    "+1",
    "-2+3",
    "@cmd|' /C calc'!A0",
    ",,,",
    "control \x01\x1f",
    "back\\slash </script>",
};

#define NHOSTILE (sizeof hostile / sizeof hostile[0])

/* One message of the hostile set, with every kind of tool field (null,
 * "", hostile) and some extra_data. */
static const char *
hostile_message(size_t i)
{
    static const char *const roles[] = {"user", "assistant", "system", "tool",
                                        "developer"};
    static const char *const tools[] = {NULL, "", "call,\"1\"\r\n", "t1"};
    const char *extra =
        i % 3 == 0   ? str(",\"extra_data\":{\"tool_calls\":[{\"id\":%s}],"
                             "\"n\":[1,2.5,null,true]}",
                           jq(tools[(i + 2) % 4] ? tools[(i + 2) % 4] : "x"))
        : i % 3 == 1 ? ",\"extra_data\":\"just a string, \\\"quoted\\\"\""
                     : "";

    return str("{\"role\":\"%s\",\"content\":%s,\"tool_call_id\":%s,"
               "\"tool_name\":%s%s}",
               roles[i % 5], jq(hostile[i % NHOSTILE]), jq(tools[i % 4]),
               jq(tools[(i + 1) % 4]), extra);
}

/* Appends n messages made by make(i) in batches of up to 100. */
static void
append_all(const struct user *u, const char *sid, size_t n,
           const char *(*make)(size_t))
{
    for (size_t done = 0; done < n;) {
        size_t k = n - done < 100 ? n - done : 100;
        struct buf b;
        struct resp r;

        buf_init(&b);
        buf_adds(&b, "{\"messages\":[");
        for (size_t i = 0; i < k; i++) {
            if (i > 0)
                buf_addch(&b, ',');
            buf_adds(&b, make(done + i));
        }
        buf_adds(&b, "]}");
        r = api(u, "POST", str(SESSIONS "/%s/messages", sid), b.data);
        buf_release(&b);
        expect_status(r, 201);
        done += k;
    }
}

/* A session with the hostile messages (and n of them), its metadata and
 * text fields set to awkward values too. */
static void
hostile_session(const struct user *u, const char *sid, size_t n)
{
    (void)create(u,
                 str("{\"session_id\":\"%s\",\"session_name\":%s,"
                     "\"description\":null,\"agent_name\":\"agent, "
                     "\\\"x\\\"\",\"agent_instructions\":%s,"
                     "\"metadata\":{\"source\":\"web\",\"deep\":{\"a\":"
                     "[1,{\"b\":null}]},\"u\":\"\xc3\xa9\"}}",
                     sid, jq("name,\r\n\"quoted\""), jq("line one\nline two")));
    append_all(u, sid, n, hostile_message);
}

/* ====================================================================== */
/* A strict RFC 4180 reader (as tests/check_export.c's): CRLF after every
 * record, quotes only around or doubled inside a field, no bare CR/LF. */

#define CSV_FIELDS 7

struct csv_field {
    const char *s;
    size_t len;
    bool quoted;
};

struct csv_row {
    struct csv_field f[CSV_FIELDS];
};

/* Rows into *out; -1 on a syntax error or a row of other than 7 fields. */
static long
csv_parse(const char *p, size_t len, struct csv_row **out)
{
    size_t i = 0, cap = 64;
    long nrows = 0;
    struct csv_row *rows = arena_alloc(&tc.arena, cap * sizeof *rows);

    while (i < len) {
        size_t nf = 0;

        if ((size_t)nrows == cap) {
            struct csv_row *bigger =
                arena_alloc(&tc.arena, 2 * cap * sizeof *rows);

            memcpy(bigger, rows, cap * sizeof *rows);
            rows = bigger;
            cap *= 2;
        }
        for (;;) {
            struct buf b;
            bool quoted = false;

            if (nf == CSV_FIELDS)
                return -1;
            buf_init(&b);
            if (i < len && p[i] == '"') {
                quoted = true;
                for (i++;; i++) {
                    if (i >= len) {
                        buf_release(&b);
                        return -1;
                    }
                    if (p[i] == '"') {
                        if (i + 1 < len && p[i + 1] == '"') {
                            buf_addch(&b, '"');
                            i++;
                            continue;
                        }
                        i++;
                        break;
                    }
                    buf_addch(&b, p[i]);
                }
            } else {
                for (; i < len && p[i] != ',' && p[i] != '\r'; i++) {
                    if (p[i] == '"' || p[i] == '\n') {
                        buf_release(&b);
                        return -1;
                    }
                    buf_addch(&b, p[i]);
                }
            }
            rows[nrows].f[nf].s = arena_strndup(&tc.arena, b.data, b.len);
            rows[nrows].f[nf].len = b.len;
            rows[nrows].f[nf].quoted = quoted;
            nf++;
            buf_release(&b);
            if (i < len && p[i] == ',') {
                i++;
                continue;
            }
            if (i + 1 < len && p[i] == '\r' && p[i + 1] == '\n') {
                i += 2;
                break;
            }
            return -1;
        }
        if (nf != CSV_FIELDS)
            return -1;
        nrows++;
    }
    *out = rows;
    return nrows;
}

/* A CSV field against a message field: null is an empty unquoted field,
 * "" a quoted empty one, anything else its exact text. */
static void
expect_csv_field(const struct csv_field *f, const char *want, size_t row,
                 const char *name)
{
    if (want == NULL) {
        ck_assert_msg(f->len == 0 && !f->quoted,
                      "row %zu %s: null must be an empty unquoted field", row,
                      name);
        return;
    }
    ck_assert_msg(f->len == strlen(want) && memcmp(f->s, want, f->len) == 0,
                  "row %zu %s: got [%s] want [%s]", row, name, f->s, want);
    ck_assert_msg(want[0] != '\0' || f->quoted,
                  "row %zu %s: \"\" must be quoted", row, name);
}

/* What the default CSV makes of a client's text (OWASP's rule): a "'"
 * before = + - @ TAB CR. */
static const char *
neutralised(const char *v)
{
    if (v == NULL || v[0] == '\0' || strchr("=+-@\t\r", v[0]) == NULL)
        return v;
    return str("'%s", v);
}

/* The CSV export of sid equals its messages as the list route shows
 * them, field by field: exactly with escape_formulas=false, neutralised
 * by default. */
static void
expect_csv_as(const struct user *u, const char *sid, size_t n, bool raw)
{
    static const char *const head[] = {
        "message_id", "role",       "content",   "tool_call_id",
        "tool_name",  "created_at", "updated_at"};
    struct resp r =
        get_text(u, export_path(sid, raw ? "?format=csv&escape_formulas=false"
                                         : "?format=csv"));
    const struct json_value **msgs = listed(u, sid, n);
    const char *(*f)(const char *) =
        raw ? NULL : neutralised; /* the client's three fields */
#define CLIENT(v) (f != NULL ? f(v) : (v))
    struct csv_row *rows;
    long nrows;

    expect_status(r, 200);
    expect_header(r, "Content-Type", "text/csv; charset=utf-8");
    expect_header(r, "Content-Disposition",
                  str("attachment; filename=\"%s.csv\"", sid));
    nrows = csv_parse(r.body, r.body_len, &rows);
    ck_assert_msg(nrows == (long)n + 1, "%ld CSV rows, want %zu: %.300s", nrows,
                  n + 1, r.body);
    for (size_t k = 0; k < CSV_FIELDS; k++)
        expect_csv_field(&rows[0].f[k], head[k], 0, "header");
    for (size_t i = 0; i < n; i++) {
        const struct csv_row *row = &rows[i + 1];

        expect_csv_field(&row->f[0], jstr(msgs[i], "id"), i + 1, "id");
        expect_csv_field(&row->f[1], jstr(msgs[i], "role"), i + 1, "role");
        expect_csv_field(&row->f[2], CLIENT(jstr(msgs[i], "content")), i + 1,
                         "content");
        expect_csv_field(&row->f[3],
                         CLIENT(jstr_or_null(msgs[i], "tool_call_id")), i + 1,
                         "tool_call_id");
        expect_csv_field(&row->f[4], CLIENT(jstr_or_null(msgs[i], "tool_name")),
                         i + 1, "tool_name");
        expect_csv_field(&row->f[5], jstr(msgs[i], "created_at"), i + 1,
                         "created_at");
        expect_csv_field(&row->f[6], jstr(msgs[i], "updated_at"), i + 1,
                         "updated_at");
    }
#undef CLIENT
}

static void
expect_csv_matches(const struct user *u, const char *sid, size_t n)
{
    expect_csv_as(u, sid, n, true);
    expect_csv_as(u, sid, n, false);
}

/* GET .../export (JSON), checked for shape and headers. */
static struct resp
export_json(const struct user *u, const char *sid)
{
    struct resp r = api(u, "GET", export_path(sid, ""), NULL);

    expect_status(r, 200);
    expect_header(r, "Content-Disposition",
                  str("attachment; filename=\"%s.json\"", sid));
    /* streamed: the length is not known when the headers go out */
    ck_assert_ptr_null(hdr(&r, "Content-Length"));
    ck_assert_int_eq(r.json->type, JSON_OBJECT);
    ck_assert_uint_eq(r.json->u.o.len, 2);
    ck_assert_str_eq(r.json->u.o.members[0].key, "session");
    ck_assert_str_eq(r.json->u.o.members[1].key, "messages");
    check_session_shape(__LINE__, jobj(r.json, "session"));
    (void)jarr(r.json, "messages");
    return r;
}

/* ====================================================================== */

START_TEST(test_export_json)
{
    struct user u = user_new("exp-json");
    const char *sid = "exp.json:1";
    size_t n = NHOSTILE * 2;
    const struct json_value *before, *msgs, *s, **list;
    struct resp r;

    hostile_session(&u, sid, n);
    before = get_session(&u, sid);
    r = export_json(&u, sid);
    s = jobj(r.json, "session");
    /* the session exactly as GET shows it (metrics move with every
     * request, after its response) */
    expect_same(without(s, no_metrics), without(before, no_metrics));
    ck_assert_int_eq(jint(s, "message_count"), (int64_t)n);
    msgs = jarr(r.json, "messages");
    ck_assert_uint_eq(msgs->u.a.len, n);
    list = listed(&u, sid, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(jint(msgs->u.a.items[i], "seq"), (int64_t)i + 1);
        ck_assert_str_eq(jstr(msgs->u.a.items[i], "content"),
                         hostile[i % NHOSTILE]);
        /* as the message route shows it, plus the id it has as a /v1
         * item (made from its UUID: written through /api, it keeps no
         * item) */
        expect_same(without(msgs->u.a.items[i], v1_fields), list[i]);
        ck_assert_msg(
            is_v1_id(jstr(msgs->u.a.items[i], "item_id"), jstr(list[i], "id")),
            "item_id %s", jstr(msgs->u.a.items[i], "item_id"));
        ck_assert_ptr_null(json_get(msgs->u.a.items[i], "item"));
    }

    /* an empty session exports as an empty array and a bare header */
    (void)create(&u, "{\"session_id\":\"empty\"}");
    r = export_json(&u, "empty");
    ck_assert_uint_eq(jarr(r.json, "messages")->u.a.len, 0);
    r = get_text(&u, export_path("empty", "?format=csv"));
    expect_status(r, 200);
    ck_assert_str_eq(r.body, "message_id,role,content,tool_call_id,tool_name,"
                             "created_at,updated_at\r\n");
}
END_TEST

START_TEST(test_export_csv_round_trip)
{
    struct user u = user_new("exp-csv");
    const char *sid = "exp-csv";
    size_t n = NHOSTILE * 4;

    hostile_session(&u, sid, n);
    expect_csv_matches(&u, sid, n);
    /* with a deleted message in the middle: still in seq order, gap and
     * all */
    {
        const struct json_value **list = listed(&u, sid, n);
        struct resp r = api(
            &u, "DELETE",
            str(SESSIONS "/%s/messages/%s", sid, jstr(list[5], "id")), NULL);

        expect_status(r, 204);
    }
    expect_csv_matches(&u, sid, n - 1);
    /* format=json is the default */
    {
        struct resp r = api(&u, "GET", export_path(sid, "?format=json"), NULL);

        expect_status(r, 200);
        ck_assert_uint_eq(jarr(r.json, "messages")->u.a.len, n - 1);
    }
}
END_TEST

START_TEST(test_export_import_round_trip)
{
    struct user u = user_new("exp-rt");
    const char *sid = "round-trip";
    size_t n = NHOSTILE * 3;
    const struct json_value *first, *second, *imported, *m1, *m2, *s1;
    struct resp r, e1, e2;

    hostile_session(&u, sid, n);
    /* a session with history: a PATCH, then ended (version 3) */
    r = api(&u, "PATCH", str(SESSIONS "/%s", sid),
            "{\"metadata\":{\"patched\":[true]},\"description\":\"d\"}");
    expect_status(r, 200);
    r = api(&u, "POST", str(SESSIONS "/%s/end", sid),
            "{\"status\":\"completed\"}");
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "version"), 3);

    e1 = export_json(&u, sid);
    first = e1.json;
    r = api(&u, "DELETE", str(SESSIONS "/%s", sid), NULL);
    expect_status(r, 204);
    r = api(&u, "GET", str(SESSIONS "/%s", sid), NULL);
    assert_error(r, 404, "not_found", NULL);

    r = api(&u, "POST", SESSIONS "/import", e1.body);
    imported = expect_session(r, 201);
    expect_header(r, "Location", str(SESSIONS "/%s", sid));
    s1 = jobj(first, "session");
    ck_assert_str_ne(jstr(imported, "id"), jstr(s1, "id"));
    ck_assert_int_eq(jint(imported, "version"), 1);
    ck_assert_str_eq(jstr(imported, "status"), "completed");
    ck_assert_int_eq(jint(imported, "message_count"), (int64_t)n);
    expect_same(without(imported, session_server_fields),
                without(s1, session_server_fields));
    /* readable right away, as the 201 showed it */
    expect_same(without(get_session(&u, sid), no_metrics),
                without(imported, no_metrics));

    e2 = export_json(&u, sid);
    second = e2.json;
    expect_same(without(jobj(second, "session"), session_server_fields),
                without(s1, session_server_fields));
    m1 = jarr(first, "messages");
    m2 = jarr(second, "messages");
    ck_assert_uint_eq(m2->u.a.len, n);
    for (size_t i = 0; i < n; i++) {
        const struct json_value *a = m1->u.a.items[i], *b = m2->u.a.items[i];

        /* same order, roles, contents, tool fields, extra_data, seq */
        expect_same(without(b, message_server_fields),
                    without(a, message_server_fields));
        ck_assert(is_uuid(jstr(b, "id")));
        ck_assert_str_ne(jstr(b, "id"), jstr(a, "id"));
        ck_assert(is_timestamp(jstr(b, "created_at")));
    }
    /* a session that went completed still takes no appends */
    r = api(&u, "POST", str(SESSIONS "/%s/messages", sid),
            "{\"role\":\"user\",\"content\":\"x\"}");
    assert_error(r, 409, "conflict", ANY);
}
END_TEST

START_TEST(test_import_renumbers_and_defaults)
{
    struct user u = user_new("exp-renum");
    const struct json_value *s, *msgs;
    struct resp r;

    /* seqs with gaps, server fields of any value: ignored; the new seqs
     * are 1..n in the given order */
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"renum\",\"id\":\"nope\","
            "\"version\":99,\"message_count\":12,\"metrics\":{\"x\":1},"
            "\"created_at\":\"yesterday\",\"updated_at\":null,"
            "\"last_activity_at\":5},"
            "\"messages\":[{\"seq\":9,\"role\":\"user\",\"content\":\"a\","
            "\"id\":1,\"session_id\":\"other\",\"created_at\":{}},"
            "{\"seq\":3,\"role\":\"assistant\",\"content\":\"b\","
            "\"updated_at\":[]}]}");
    s = expect_session(r, 201);
    ck_assert_str_eq(jstr(s, "status"), "active");
    ck_assert_int_eq(jint(s, "message_count"), 2);
    ck_assert_int_eq(jint(s, "version"), 1);
    ck_assert(jis_null(s, "session_name"));
    expect_json(jobj(s, "metadata"), "{}");
    msgs = jarr(export_json(&u, "renum").json, "messages");
    ck_assert_uint_eq(msgs->u.a.len, 2);
    ck_assert_int_eq(jint(msgs->u.a.items[0], "seq"), 1);
    ck_assert_str_eq(jstr(msgs->u.a.items[0], "content"), "a");
    ck_assert_str_eq(jstr(msgs->u.a.items[0], "session_id"), "renum");
    ck_assert_int_eq(jint(msgs->u.a.items[1], "seq"), 2);
    ck_assert_str_eq(jstr(msgs->u.a.items[1], "role"), "assistant");
    /* it is an active session like any other: appends continue at 3 */
    r = api(&u, "POST", SESSIONS "/renum/messages",
            "{\"role\":\"user\",\"content\":\"c\"}");
    expect_status(r, 201);
    ck_assert_int_eq(jint(r.json, "seq"), 3);

    /* is_active alone decides as on create; no messages is fine */
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"idle\",\"is_active\":false},"
            "\"messages\":[]}");
    s = expect_session(r, 201);
    ck_assert_str_eq(jstr(s, "status"), "inactive");
    ck_assert_int_eq(jint(s, "message_count"), 0);
}
END_TEST

START_TEST(test_import_conflict)
{
    struct user u = user_new("exp-409");
    const char *sid = "taken";
    const struct json_value *before, *after, **m_before, **m_after;
    struct resp e, r;

    hostile_session(&u, sid, 6);
    e = export_json(&u, sid);
    before = get_session(&u, sid);
    m_before = listed(&u, sid, 6);
    r = api(&u, "POST", SESSIONS "/import", e.body);
    assert_error(r, 409, "conflict", "session_id");
    /* nothing changed: the session, its messages, no other session */
    after = get_session(&u, sid);
    expect_same(without(after, no_metrics), without(before, no_metrics));
    m_after = listed(&u, sid, 6);
    for (size_t i = 0; i < 6; i++)
        expect_same(m_after[i], m_before[i]);
    r = api(&u, "GET", SESSIONS, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "total"), 1);
}
END_TEST

START_TEST(test_import_all_or_none)
{
    struct user u = user_new("exp-none");
    const char *ok = "{\"role\":\"user\",\"content\":\"fine\"}";
    const char *big = rep("x", 512 * 1024 + 1);
    static const struct {
        const char *body;
        int status;
        const char *code;
        const char *param;
    } bad[] = {
        {"{\"session\":{\"session_id\":\"bad\"},\"messages\":[%s,%s,%s,"
         "{\"role\":\"robot\",\"content\":\"x\"},%s]}",
         400, "validation_error", "messages[3].role"},
        {"{\"session\":{\"session_id\":\"bad\"},\"messages\":[%s,%s,%s,%s,"
         "{\"role\":\"tool\",\"content\":\"x\",\"client_message_id\":\"k\"}]"
         "}",
         400, "unknown_field", "messages[4].client_message_id"},
        {"{\"session\":{\"session_id\":\"bad\",\"if_exists\":\"return\"},"
         "\"messages\":[%s,%s,%s,%s]}",
         400, "unknown_field", "session.if_exists"},
        {"{\"session\":{\"session_id\":\"bad\"},\"messages\":[%s,%s,%s,%s],"
         "\"extra\":1}",
         400, "unknown_field", "extra"},
        {"{\"session\":{\"session_id\":\"import\"},\"messages\":[%s,%s,%s,%s]"
         "}",
         400, "validation_error", "session.session_id"},
        {"{\"session\":{\"session_id\":\"bad\",\"status\":\"done\"},"
         "\"messages\":[%s,%s,%s,%s]}",
         400, "validation_error", "session.status"},
        {"{\"session\":{\"session_id\":\"bad\",\"metadata\":{\"$gt\":1}},"
         "\"messages\":[%s,%s,%s,%s]}",
         400, "validation_error", "session.metadata"},
        {"{\"session\":{\"session_id\":\"bad\"},\"messages\":[%s,%s,%s,%s,7]}",
         400, "validation_error", "messages[4]"},
        {"{\"session\":\"bad\",\"messages\":[%s,%s,%s,%s]}", 400,
         "validation_error", "session"},
        {"{\"messages\":[%s,%s,%s,%s]}", 400, "validation_error", "session"},
        {"{\"session\":{\"session_id\":\"bad\"},\"messages\":{\"0\":[%s,%s,%s,"
         "%s]}}",
         400, "validation_error", "messages"},
    };
    struct resp r;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = api(&u, "POST", SESSIONS "/import",
                str(bad[i].body, ok, ok, ok, ok, ok));
        assert_error(r, bad[i].status, bad[i].code, bad[i].param);
    }
    /* content over the limit in the last message */
    r = api(&u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"bad\"},\"messages\":[%s,"
                "{\"role\":\"user\",\"content\":\"%s\"}]}",
                ok, big));
    assert_error(r, 400, "validation_error", "messages[1].content");
    /* an empty body is no export */
    r = api(&u, "POST", SESSIONS "/import", NULL);
    assert_error(r, 400, "validation_error", "session");
    /* nothing stored, nothing visible */
    r = api(&u, "GET", SESSIONS "/bad", NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", SESSIONS "/bad/messages", NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", SESSIONS, NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "total"), 0);
    /* the same body made good goes in whole */
    r = api(&u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"bad\"},\"messages\":[%s,%s]}",
                ok, ok));
    ck_assert_int_eq(jint(expect_session(r, 201), "message_count"), 2);
}
END_TEST

START_TEST(test_export_bola)
{
    struct user a = user_new("exp-a"), b = user_new("exp-b");
    const struct json_value *mine;
    struct resp e, r;

    hostile_session(&a, "shared-name", 4);
    r = api(&b, "GET", export_path("shared-name", ""), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&b, "GET", export_path("shared-name", "?format=csv"), NULL);
    assert_error(r, 404, "not_found", NULL);
    /* importing a's export makes b's own session; a's stays as it was */
    e = export_json(&a, "shared-name");
    r = api(&b, "POST", SESSIONS "/import", e.body);
    mine = expect_session(r, 201);
    ck_assert_str_ne(jstr(mine, "id"), jstr(jobj(e.json, "session"), "id"));
    ck_assert_int_eq(jint(get_session(&a, "shared-name"), "message_count"), 4);
    ck_assert_int_eq(jint(get_session(&b, "shared-name"), "message_count"), 4);
    /* without a token: 401, as everywhere */
    r = with_auth(NULL, "GET", export_path("shared-name", ""));
    assert_error(r, 401, "unauthorized", NULL);
    r = send_raw(NULL, "POST", SESSIONS "/import",
                 (const char *const[]){JSON_CT, NULL}, e.body, e.body_len);
    assert_error(r, 401, "unauthorized", NULL);
}
END_TEST

START_TEST(test_export_params)
{
    struct user u = user_new("exp-params");
    struct resp r;

    (void)create(&u, "{\"session_id\":\"p\"}");
    r = api(&u, "GET", export_path("p", "?format=xml"), NULL);
    assert_error(r, 400, "validation_error", "format");
    r = api(&u, "GET", export_path("p", "?format=CSV"), NULL);
    assert_error(r, 400, "validation_error", "format");
    r = api(&u, "GET", export_path("p", "?format=csv&format=json"), NULL);
    assert_error(r, 400, "validation_error", "format");
    r = api(&u, "GET", export_path("p", "?limit=5"), NULL);
    assert_error(r, 400, "validation_error", "limit");
    r = api(&u, "GET", export_path("p", "?format=csv&escape_formulas=no"),
            NULL);
    assert_error(r, 400, "validation_error", "escape_formulas");
    /* meaningless for JSON, and accepted there */
    r = api(&u, "GET", export_path("p", "?escape_formulas=false"), NULL);
    expect_status(r, 200);
    /* importing an export that says it was cut short is refused */
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"cut\"},\"messages\":[],"
            "\"truncated\":true}");
    assert_error(r, 400, "validation_error", "truncated");
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"cut\"},\"messages\":[],"
            "\"truncated\":\"no\"}");
    assert_error(r, 400, "validation_error", "truncated");
    r = api(&u, "GET", session_path("cut"), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"cut\"},\"messages\":[],"
            "\"truncated\":false}");
    expect_status(r, 201);
    r = api(&u, "GET", export_path("nope", ""), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", export_path("$bad", ""), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "POST", export_path("p", ""), "{}");
    assert_error(r, 405, "method_not_allowed", ANY);
    expect_header(r, "Allow", "GET");
    r = api(&u, "GET", SESSIONS "/import", NULL);
    assert_error(r, 405, "method_not_allowed", ANY);
    expect_header(r, "Allow", "POST");
    r = api(&u, "POST", SESSIONS "/import?x=1", "{}");
    assert_error(r, 400, "validation_error", "x");
    r = api_h(&u, "POST", SESSIONS "/import", "Content-Type: text/csv",
              "{\"session\":{},\"messages\":[]}");
    assert_error(r, 415, "unsupported_media_type", NULL);
}
END_TEST

static const char *
large_message(size_t i)
{
    return str(
        "{\"role\":\"%s\",\"content\":\"message %zu, with \\\"quotes\\\" "
        "and a newline\\n%s\"}",
        i % 2 ? "assistant" : "user", i, rep("y", 150));
}

START_TEST(test_export_large)
{
    struct user u = user_new("exp-large");
    const char *sid = "large";
    size_t n = 5000;
    const struct json_value *msgs;
    struct csv_row *rows;
    struct resp r, e;
    long nrows;

    (void)create(&u, "{\"session_id\":\"large\"}");
    append_all(&u, sid, n, large_message);
    r = export_json(&u, sid);
    ck_assert_uint_gt(r.body_len, n * 150);
    msgs = jarr(r.json, "messages");
    ck_assert_uint_eq(msgs->u.a.len, n);
    for (size_t i = 0; i < n; i++) {
        const struct json_value *m = msgs->u.a.items[i];

        ck_assert_int_eq(jint(m, "seq"), (int64_t)i + 1);
        ck_assert_str_eq(jstr(m, "content"),
                         str("message %zu, with \"quotes\" and a newline\n%s",
                             i, rep("y", 150)));
    }
    r = get_text(&u, export_path(sid, "?format=csv"));
    expect_status(r, 200);
    ck_assert_ptr_null(hdr(&r, "Content-Length"));
    nrows = csv_parse(r.body, r.body_len, &rows);
    ck_assert_int_eq(nrows, (long)n + 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(rows[i + 1].f[2].s,
                         str("message %zu, with \"quotes\" and a newline\n%s",
                             i, rep("y", 150)));
    /* this export is larger than the import body limit (1 MiB): the
     * import is refused whole with 413, and nothing is made */
    e = export_json(&u, sid);
    ck_assert_uint_gt(e.body_len, 1024 * 1024);
    r = api(&u, "DELETE", str(SESSIONS "/%s", sid), NULL);
    expect_status(r, 204);
    r = api(&u, "POST", SESSIONS "/import", e.body);
    assert_error(r, 413, "payload_too_large", NULL);
    r = api(&u, "GET", str(SESSIONS "/%s", sid), NULL);
    assert_error(r, 404, "not_found", NULL);
}
END_TEST

/* ====================================================================== */

Suite *
e2e_export_suite(void)
{
    Suite *s = suite_create("e2e-export");
    TCase *t;

    t = tcase(s, "export", 120);
    tcase_add_test(t, test_export_json);
    tcase_add_test(t, test_export_csv_round_trip);
    tcase_add_test(t, test_export_params);
    tcase_add_test(t, test_export_bola);

    t = tcase(s, "import", 120);
    tcase_add_test(t, test_export_import_round_trip);
    tcase_add_test(t, test_import_renumbers_and_defaults);
    tcase_add_test(t, test_import_conflict);
    tcase_add_test(t, test_import_all_or_none);

    t = tcase(s, "export-large", 300);
    tcase_add_test(t, test_export_large);
    return s;
}

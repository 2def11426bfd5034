/*
 * check_e2e_messages.c - the end-to-end suite's second half: messages,
 * context, conversation, memory and per-session metrics, over real sockets
 * through nginx, parley and the dev database.  tests/check_e2e runs it
 * after its own suite (CK_RUN_SUITE=e2e-messages runs it alone).
 *
 * The rules are check_e2e.c's: every test makes fresh users, sends from
 * source addresses of its own, and asserts what the contract (API.md and
 * the recorded decisions) says exactly: statuses, error codes and params,
 * fields and their values.  Where the contract leaves a detail open (the
 * param of an error the decisions do not name), the test accepts ANY
 * rather than guess.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "buf.h"
#include "e2e_http.h"
#include "e2e_util.h"
#include "json.h"
#include "banned.h"

/* ====================================================================== */
/* Small helpers. */

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

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

/* The contract's token count of a content: ceil(UTF-8 bytes / 4). */
static int64_t
tokens_of(const char *content)
{
    return ((int64_t)strlen(content) + 3) / 4;
}

/* {"k":{"k":...{}...}}: depth nested objects */
static const char *
nest(int depth)
{
    return str("%s{}%s", rep("{\"k\":", (size_t)depth - 1),
               rep("}", (size_t)depth - 1));
}

static const char *
msgs_path(const char *sid)
{
    return str(SESSIONS "/%s/messages", sid);
}

static const char *
msg_path(const char *sid, const char *mid)
{
    return str(SESSIONS "/%s/messages/%s", sid, mid);
}

/* SESSIONS/sid/rest */
static const char *
sub_path(const char *sid, const char *rest)
{
    return str(SESSIONS "/%s/%s", sid, rest);
}

static const char *
mem_path(const char *sid, const char *key)
{
    return str(SESSIONS "/%s/memory/%s", sid, key);
}

/* {"role":ROLE,"content":CONTENT} */
static const char *
msg_json(const char *role, const char *content)
{
    return str("{\"role\":\"%s\",\"content\":%s}", role, jq(content));
}

/* n copies of msg_json(role, "<prefix><i>") joined by commas. */
static const char *
msg_items(size_t n, const char *role, const char *prefix)
{
    struct buf b;
    const char *out;

    buf_init(&b);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? "," : "",
                   msg_json(role, str("%s%zu", prefix, i)));
    out = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return out;
}

/* ====================================================================== */
/* The message object. */

static const char *const message_fields[] = {
    "id",           "session_id", "seq",        "role",       "content",
    "tool_call_id", "tool_name",  "extra_data", "created_at", "updated_at",
};

#define NMESSAGE_FIELDS (sizeof message_fields / sizeof message_fields[0])

/* A message object exactly as the decisions shape it; sid: the session's
 * client name it must carry (NULL: any). */
static const struct json_value *
check_message_at(int line, const struct json_value *m, const char *sid)
{
    const char *role;

    ck_assert_msg(m != NULL && m->type == JSON_OBJECT,
                  "line %d: message is not an object: %.300s", line,
                  json_text(m));
    for (size_t i = 0; i < m->u.o.len; i++) {
        bool known = false;

        for (size_t f = 0; f < NMESSAGE_FIELDS; f++)
            known =
                known || strcmp(m->u.o.members[i].key, message_fields[f]) == 0;
        ck_assert_msg(known, "line %d: message has unexpected field \"%s\"",
                      line, m->u.o.members[i].key);
    }
    ck_assert_msg(m->u.o.len == NMESSAGE_FIELDS,
                  "line %d: message has %zu fields, want %zu: %.500s", line,
                  m->u.o.len, NMESSAGE_FIELDS, json_text(m));
    ck_assert_msg(is_uuid(jstr(m, "id")), "line %d: id %s is not a UUID", line,
                  jstr(m, "id"));
    if (sid != NULL)
        ck_assert_msg(strcmp(jstr(m, "session_id"), sid) == 0,
                      "line %d: message session_id %s, want %s", line,
                      jstr(m, "session_id"), sid);
    ck_assert_msg(jint(m, "seq") >= 1, "line %d: seq %lld", line,
                  (long long)jint(m, "seq"));
    role = jstr(m, "role");
    ck_assert_msg(strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0 ||
                      strcmp(role, "system") == 0 ||
                      strcmp(role, "tool") == 0 ||
                      strcmp(role, "developer") == 0,
                  "line %d: role \"%s\"", line, role);
    (void)jstr(m, "content");
    (void)jstr_or_null(m, "tool_call_id");
    (void)jstr_or_null(m, "tool_name");
    ck_assert_msg(json_get(m, "extra_data") != NULL,
                  "line %d: extra_data missing", line);
    ck_assert_msg(is_timestamp(jstr(m, "created_at")), "line %d: created_at %s",
                  line, jstr(m, "created_at"));
    ck_assert_msg(is_timestamp(jstr(m, "updated_at")), "line %d: updated_at %s",
                  line, jstr(m, "updated_at"));
    ck_assert_msg(strcmp(jstr(m, "updated_at"), jstr(m, "created_at")) >= 0,
                  "line %d: updated_at before created_at", line);
    return m;
}

#define expect_message(r, st, sid)                                             \
    expect_message_at(__LINE__, &(r), (st), (sid))

static const struct json_value *
expect_message_at(int line, const struct resp *r, int status, const char *sid)
{
    expect_status_at(line, r, status);
    return check_message_at(line, r->json, sid);
}

#define expect_same_message(a, b) expect_same_message_at(__LINE__, (a), (b))

static void
expect_same_message_at(int line, const struct json_value *a,
                       const struct json_value *b)
{
    ck_assert_msg(json_same(a, b), "line %d: message %.400s, want %.400s", line,
                  json_text(a), json_text(b));
}

/* POST one message (body as given), expecting 201. */
#define append(u, sid, body) append_at(__LINE__, (u), (sid), (body))

static const struct json_value *
append_at(int line, const struct user *u, const char *sid, const char *body)
{
    struct resp r = api(u, "POST", msgs_path(sid), body);

    return expect_message_at(line, &r, 201, sid);
}

/* A message of role and content. */
#define say(u, sid, role, content)                                             \
    append_at(__LINE__, (u), (sid), msg_json((role), (content)))

/* The items of a batch response {"items":[...]}: shapes and consecutive
 * seqs. */
static const struct json_value *
batch_items_at(int line, const struct resp *r, int status, const char *sid,
               size_t n)
{
    const struct json_value *items;

    expect_status_at(line, r, status);
    ck_assert_msg(r->json != NULL && r->json->type == JSON_OBJECT &&
                      r->json->u.o.len == 1,
                  "line %d: batch body is not {\"items\":[...]}: %.300s", line,
                  r->body);
    items = jarr(r->json, "items");
    ck_assert_msg(items->u.a.len == n, "line %d: %zu items, want %zu", line,
                  items->u.a.len, n);
    for (size_t i = 0; i < n; i++) {
        const struct json_value *m =
            check_message_at(line, items->u.a.items[i], sid);

        ck_assert_msg(jint(m, "seq") ==
                          jint(items->u.a.items[0], "seq") + (int64_t)i,
                      "line %d: batch seqs not consecutive at %zu: %.300s",
                      line, i, json_text(items));
    }
    return items;
}

/* POST {"messages":[items]} of n messages, expecting 201. */
#define batch(u, sid, n, items) batch_at(__LINE__, (u), (sid), (n), (items))

static const struct json_value *
batch_at(int line, const struct user *u, const char *sid, size_t n,
         const char *items)
{
    struct resp r =
        api(u, "POST", msgs_path(sid), str("{\"messages\":[%s]}", items));

    return batch_items_at(line, &r, 201, sid, n);
}

#define count_of(u, sid)                                                       \
    jint(get_session_at(__LINE__, (u), (sid)), "message_count")

/* "1 2 3": the seqs of a list of messages. */
static const char *
seq_text(const struct json_value *items)
{
    struct buf b;
    const char *s;

    buf_init(&b);
    for (size_t i = 0; i < items->u.a.len; i++)
        buf_printf(&b, "%s%lld", i ? " " : "",
                   (long long)jint(items->u.a.items[i], "seq"));
    s = arena_strndup(&tc.arena, b.data, b.len);
    buf_release(&b);
    return s;
}

/* A message list: the envelope, every item a message of sid, the seqs in
 * order exactly `seqs`, total as given, and has_more = offset + len <
 * matches (the messages the query matches: has_more is read, one message
 * past the page, not computed from total, which without a role, search
 * or date filter is the session's message count, seq range or not). */
#define expect_mlist(r, sid, total, limit, offset, seqs)                       \
    expect_mlist_at(__LINE__, &(r), (sid), (total), (total), (limit),          \
                    (offset), (seqs))
#define expect_mlist_m(r, sid, total, matches, limit, offset, seqs)            \
    expect_mlist_at(__LINE__, &(r), (sid), (total), (matches), (limit),        \
                    (offset), (seqs))

static const struct json_value *
expect_mlist_at(int line, const struct resp *r, const char *sid, int64_t total,
                int64_t matches, int64_t limit, int64_t offset,
                const char *seqs)
{
    const struct json_value *items;

    expect_status_at(line, r, 200);
    ck_assert_msg(r->json != NULL && r->json->type == JSON_OBJECT &&
                      r->json->u.o.len == 5,
                  "line %d: %.200s: list body %.300s", line, r->target,
                  r->body);
    items = jarr(r->json, "items");
    for (size_t i = 0; i < items->u.a.len; i++)
        check_message_at(line, items->u.a.items[i], sid);
    ck_assert_msg(strcmp(seq_text(items), seqs) == 0,
                  "line %d: %.200s: seqs [%s], want [%s]", line, r->target,
                  seq_text(items), seqs);
    ck_assert_msg(jint(r->json, "total") == total,
                  "line %d: %.200s: total %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "total"), (long long)total);
    ck_assert_msg(jint(r->json, "limit") == limit,
                  "line %d: %.200s: limit %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "limit"), (long long)limit);
    ck_assert_msg(jint(r->json, "offset") == offset,
                  "line %d: %.200s: offset %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "offset"), (long long)offset);
    ck_assert_msg(jbool(r->json, "has_more") ==
                      (offset + (int64_t)items->u.a.len < matches),
                  "line %d: %.200s: has_more %d with offset %lld, %zu items, "
                  "%lld matches",
                  line, r->target, jbool(r->json, "has_more"),
                  (long long)offset, items->u.a.len, (long long)matches);
    return items;
}

/* Every message of a session, oldest first (pages of 200). */
#define all_messages(u, sid, total)                                            \
    all_messages_at(__LINE__, (u), (sid), (total))

static const struct json_value **
all_messages_at(int line, const struct user *u, const char *sid, size_t total)
{
    const struct json_value **out =
        arena_calloc(&tc.arena, (total + 1) * sizeof *out);
    size_t got = 0;

    for (size_t off = 0;; off += 200) {
        struct resp r =
            api(u, "GET", str("%s?limit=200&offset=%zu", msgs_path(sid), off),
                NULL);
        const struct json_value *items;

        expect_status_at(line, &r, 200);
        items = jarr(r.json, "items");
        ck_assert_msg(jint(r.json, "total") == (int64_t)total,
                      "line %d: total %lld, want %zu", line,
                      (long long)jint(r.json, "total"), total);
        for (size_t i = 0; i < items->u.a.len; i++) {
            ck_assert_msg(got < total, "line %d: more than %zu messages", line,
                          total);
            out[got++] = check_message_at(line, items->u.a.items[i], sid);
        }
        if (items->u.a.len < 200)
            break;
    }
    ck_assert_msg(got == total, "line %d: listed %zu messages, want %zu", line,
                  got, total);
    return out;
}

/* The Allow header as a set: "GET, POST" equals "POST, GET". */
static bool
allow_same(const char *got, const char *want)
{
    size_t ng = 1, nw = 1;

    if (got == NULL)
        return false;
    for (const char *p = got; *p; p++)
        ng += *p == ',';
    for (const char *p = want; *p; p++)
        nw += *p == ',';
    if (ng != nw)
        return false;
    for (const char *p = want; *p;) {
        size_t len = strcspn(p, ",");
        bool found = false;

        for (const char *q = got; *q && !found;) {
            size_t qlen = strcspn(q, ",");

            found = qlen == len && strncmp(p, q, len) == 0;
            q += qlen;
            while (*q == ',' || *q == ' ')
                q++;
        }
        if (!found)
            return false;
        p += len;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return true;
}

/* A random, well-formed UUID no message has. */
static const char *
fresh_uuid(void)
{
    const char *h = uniq("x"); /* "x-" + 12 hex */

    return str("00000000-0000-4000-8000-%s", h + 2);
}

/* ====================================================================== */
/* append one */

START_TEST(test_message_append_fields)
{
    struct user u = user_new("msg");
    const char *sid = uniq("m");
    static const char *const roles[] = {"user", "assistant", "system", "tool",
                                        "developer"};
    static const char *const extras[] = {
        "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":{\"d\":1.5}}",
        "[1,\"two\",{\"three\":3},[]]",
        "\"just a string\"",
        "42",
        "-7.25",
        "true",
        "false",
        "null",
        "{}",
        "[]",
        "{\"a$b\":\"$gt\",\"x\":{\"y\":\"a.b\"}}",
    };
    const char *content;
    const struct json_value *m, *g, **all;
    struct resp r;
    int64_t seq = 0;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));

    /* every field, and JSON escapes decoded */
    r = api(&u, "POST", msgs_path(sid),
            "{\"role\":\"assistant\",\"content\":\"Caf\\u00e9 \\\"q\\\"\\n"
            "\\ud83d\\ude00\",\"tool_call_id\":\"call_1\","
            "\"tool_name\":\"search\",\"extra_data\":{\"tool_calls\":"
            "[{\"id\":\"call_1\",\"type\":\"function\"}]}}");
    m = expect_message(r, 201, sid);
    ck_assert_int_eq(jint(m, "seq"), ++seq);
    ck_assert_str_eq(jstr(m, "role"), "assistant");
    ck_assert_str_eq(jstr(m, "content"), "Caf\xc3\xa9 \"q\"\n\xf0\x9f\x98\x80");
    ck_assert_str_eq(jstr(m, "tool_call_id"), "call_1");
    ck_assert_str_eq(jstr(m, "tool_name"), "search");
    expect_json(json_get(m, "extra_data"),
                "{\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\"}]}");
    r = api(&u, "GET", msg_path(sid, jstr(m, "id")), NULL);
    g = expect_message(r, 200, sid);
    expect_same_message(g, m);

    /* the optional fields default to null; "" is a content */
    m = append(&u, sid, "{\"role\":\"user\",\"content\":\"\"}");
    ck_assert_int_eq(jint(m, "seq"), ++seq);
    ck_assert_str_eq(jstr(m, "content"), "");
    ck_assert(jis_null(m, "tool_call_id"));
    ck_assert(jis_null(m, "tool_name"));
    ck_assert(jis_null(m, "extra_data"));
    m = append(&u, sid,
               "{\"role\":\"tool\",\"content\":\"x\",\"tool_call_id\":null,"
               "\"tool_name\":null,\"extra_data\":null}");
    ck_assert_int_eq(jint(m, "seq"), ++seq);
    ck_assert(jis_null(m, "tool_call_id"));
    ck_assert(jis_null(m, "tool_name"));
    ck_assert(jis_null(m, "extra_data"));

    /* every role */
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        m = say(&u, sid, roles[i], str("as %s", roles[i]));
        ck_assert_int_eq(jint(m, "seq"), ++seq);
        ck_assert_str_eq(jstr(m, "role"), roles[i]);
    }

    /* extra_data: any JSON value, stored as given */
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        m = append(&u, sid,
                   str("{\"role\":\"user\",\"content\":\"e%zu\",\"extra_data\""
                       ":%s}",
                       i, extras[i]));
        ck_assert_int_eq(jint(m, "seq"), ++seq);
        expect_json(json_get(m, "extra_data"), extras[i]);
        r = api(&u, "GET", msg_path(sid, jstr(m, "id")), NULL);
        g = expect_message(r, 200, sid);
        expect_same_message(g, m);
    }

    /* values that look like operators are text */
    content = "{\"$gt\":\"\"} $where .* ^a$";
    m = say(&u, sid, "user", content);
    ck_assert_int_eq(jint(m, "seq"), ++seq);
    ck_assert_str_eq(jstr(m, "content"), content);
    m = append(&u, sid,
               "{\"role\":\"tool\",\"content\":\"t\",\"tool_call_id\":"
               "\"$ne\",\"tool_name\":\"a.b\"}");
    ck_assert_int_eq(jint(m, "seq"), ++seq);
    ck_assert_str_eq(jstr(m, "tool_call_id"), "$ne");
    ck_assert_str_eq(jstr(m, "tool_name"), "a.b");

    /* Content must never reach parley's log: tests/e2e.sh greps the log
     * for this marker after the suite, sent as stored and refused. */
    m = say(&u, sid, "user", "PARLEY-SECRET-CONTENT-MARKER stored");
    ck_assert_int_eq(jint(m, "seq"), ++seq);
    r = api(&u, "POST", msgs_path(sid),
            "{\"role\":\"nobody\",\"content\":"
            "\"PARLEY-SECRET-CONTENT-MARKER refused\"}");
    assert_error(r, 400, "validation_error", "role");

    /* client_message_id is never shown (the shape check), and works */
    m = append(&u, sid,
               "{\"role\":\"user\",\"content\":\"keyed\","
               "\"client_message_id\":\"k-1\"}");
    ck_assert_int_eq(jint(m, "seq"), ++seq);

    /* the list has them all, in order; the session counts them */
    all = all_messages(&u, sid, (size_t)seq);
    for (int64_t i = 0; i < seq; i++)
        ck_assert_int_eq(jint(all[i], "seq"), i + 1);
    expect_same_message(all[seq - 1], m);
    ck_assert_int_eq(count_of(&u, sid), seq);
}
END_TEST

START_TEST(test_message_append_rules)
{
    struct user u = user_new("msgrules");
    const char *sid = uniq("m");
    static const struct {
        const char *body;
        const char *code;
        const char *param;
    } bad[] = {
        {"{\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":\"user\"}", "validation_error", "content"},
        {"{}", "validation_error", ANY},
        {"{\"role\":\"bogus\",\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":\"User\",\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":\"\",\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":null,\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":5,\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":[\"user\"],\"content\":\"x\"}", "validation_error", "role"},
        {"{\"role\":{\"$ne\":null},\"content\":\"x\"}", "validation_error",
         "role"},
        {"{\"role\":\"user\",\"content\":null}", "validation_error", "content"},
        {"{\"role\":\"user\",\"content\":5}", "validation_error", "content"},
        {"{\"role\":\"user\",\"content\":true}", "validation_error", "content"},
        {"{\"role\":\"user\",\"content\":[\"x\"]}", "validation_error",
         "content"},
        {"{\"role\":\"user\",\"content\":{\"$gt\":\"\"}}", "validation_error",
         "content"},
        {"{\"role\":\"user\",\"content\":\"x\",\"tool_call_id\":5}",
         "validation_error", "tool_call_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"tool_call_id\":{}}",
         "validation_error", "tool_call_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"tool_name\":true}",
         "validation_error", "tool_name"},
        {"{\"role\":\"user\",\"content\":\"x\",\"tool_name\":[]}",
         "validation_error", "tool_name"},
        {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":5}",
         "validation_error", "client_message_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":\"\"}",
         "validation_error", "client_message_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":\"a b\"}",
         "validation_error", "client_message_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":"
         "\"caf\\u00e9\"}",
         "validation_error", "client_message_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":"
         "\"tab\\there\"}",
         "validation_error", "client_message_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":"
         "\"del\\u007f\"}",
         "validation_error", "client_message_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":{\"$x\":1}}",
         "validation_error", "extra_data"},
        {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":{\"a.b\":1}}",
         "validation_error", "extra_data"},
        {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":{\"\":1}}",
         "validation_error", "extra_data"},
        {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":"
         "{\"ok\":{\"$where\":1}}}",
         "validation_error", "extra_data"},
        {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":[{\"$x\":1}]}",
         "validation_error", "extra_data"},
        {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":"
         "{\"x\":[{\"y\":{\"a.b\":1}}]}}",
         "validation_error", "extra_data"},
        {"{\"role\":\"user\",\"content\":\"x\",\"seq\":5}", "unknown_field",
         "seq"},
        {"{\"role\":\"user\",\"content\":\"x\",\"id\":\"x\"}", "unknown_field",
         "id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"session_id\":\"x\"}",
         "unknown_field", "session_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"user_id\":\"x\"}",
         "unknown_field", "user_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"created_at\":\"x\"}",
         "unknown_field", "created_at"},
        {"{\"role\":\"user\",\"content\":\"x\",\"updated_at\":\"x\"}",
         "unknown_field", "updated_at"},
        {"{\"role\":\"user\",\"content\":\"x\",\"_id\":\"x\"}", "unknown_field",
         "_id"},
        {"{\"role\":\"user\",\"content\":\"x\",\"foo\":1}", "unknown_field",
         "foo"},
    };
    const char *bad_json[] = {
        "{",
        "{\"role\":\"user\",\"content\":\"x\",}",
        "{\"role\":\"user\",\"role\":\"tool\",\"content\":\"x\"}",
        "{\"role\":\"user\",\"content\":\"a\\u0000b\"}",
        "{\"role\":\"user\",\"content\":\"\xff\xfe\"}",
        "{\"role\":\"user\",\"content\":\"x\"} {}",
        "{'role':'user','content':'x'}",
        NULL,
    };
    const char *not_objects[] = {
        "[]",    "[{\"role\":\"user\",\"content\":\"x\"}]",
        "\"x\"", "1",
        "null",  "true",
        NULL,
    };
    const char *e_acute = "\xc3\xa9";
    int64_t n = 0;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = api(&u, "POST", msgs_path(sid), bad[i].body);
        assert_error(r, 400, bad[i].code, bad[i].param);
    }
    for (size_t i = 0; bad_json[i] != NULL; i++) {
        r = api(&u, "POST", msgs_path(sid), bad_json[i]);
        assert_error(r, 400, "invalid_json", NULL);
    }
    for (size_t i = 0; not_objects[i] != NULL; i++) {
        r = api(&u, "POST", msgs_path(sid), not_objects[i]);
        assert_error(r, 400, ANY, ANY);
    }
    /* an empty body is not a message */
    r = send_raw(&u, "POST", msgs_path(sid), (const char *[]){JSON_CT, NULL},
                 "", 0);
    assert_error(r, 400, ANY, ANY);
    /* a body needs application/json */
    {
        const char *body = msg_json("user", "x");
        const char *plain[] = {"Content-Type: text/plain", NULL};

        r = send_raw(&u, "POST", msgs_path(sid), plain, body, strlen(body));
        assert_error(r, 415, "unsupported_media_type", ANY);
        r = send_raw(&u, "POST", msgs_path(sid), NULL, body, strlen(body));
        assert_error(r, 415, "unsupported_media_type", ANY);
    }
    ck_assert_int_eq(count_of(&u, sid), 0);

    /* content: 512 KiB of UTF-8 bytes (not characters) */
    (void)say(&u, sid, "user", rep("x", 512 * 1024));
    n++;
    r = api(&u, "POST", msgs_path(sid),
            msg_json("user", rep("x", 512 * 1024 + 1)));
    assert_error(r, 400, "validation_error", "content");
    (void)say(&u, sid, "user", rep(e_acute, 256 * 1024));
    n++;
    r = api(&u, "POST", msgs_path(sid),
            msg_json("user", rep(e_acute, 256 * 1024 + 1)));
    assert_error(r, 400, "validation_error", "content");

    /* tool_call_id and tool_name: 255 characters */
    {
        static const char *const fields[] = {"tool_call_id", "tool_name"};

        for (size_t f = 0; f < 2; f++) {
            const struct json_value *m;

            m = append(
                &u, sid,
                str("{\"role\":\"tool\",\"content\":\"x\",\"%s\":\"%s\"}",
                    fields[f], rep("t", 255)));
            n++;
            ck_assert_str_eq(jstr(m, fields[f]), rep("t", 255));
            m = append(
                &u, sid,
                str("{\"role\":\"tool\",\"content\":\"x\",\"%s\":\"%s\"}",
                    fields[f], rep(e_acute, 255)));
            n++;
            ck_assert_str_eq(jstr(m, fields[f]), rep(e_acute, 255));
            r = api(&u, "POST", msgs_path(sid),
                    str("{\"role\":\"tool\",\"content\":\"x\",\"%s\":\"%s\"}",
                        fields[f], rep("t", 256)));
            assert_error(r, 400, "validation_error", fields[f]);
            r = api(&u, "POST", msgs_path(sid),
                    str("{\"role\":\"tool\",\"content\":\"x\",\"%s\":\"%s\"}",
                        fields[f], rep(e_acute, 256)));
            assert_error(r, 400, "validation_error", fields[f]);
        }
    }

    /* extra_data: 16 KiB encoded, 16 deep */
    {
        /* "x...x" encodes to n + 2 bytes; {"k":"..."} to n + 8 */
        const char *at[] = {str("\"%s\"", rep("x", 16384 - 2)),
                            str("{\"k\":\"%s\"}", rep("x", 16384 - 8)),
                            nest(16), str("%s1%s", rep("[", 16), rep("]", 16))};
        const char *over[] = {str("\"%s\"", rep("x", 16384 - 1)),
                              str("{\"k\":\"%s\"}", rep("x", 16384 - 7)),
                              nest(17),
                              str("%s1%s", rep("[", 17), rep("]", 17))};

        for (size_t i = 0; i < 4; i++) {
            const struct json_value *m = append(
                &u, sid,
                str("{\"role\":\"user\",\"content\":\"x\",\"extra_data\":%s}",
                    at[i]));

            n++;
            expect_json(json_get(m, "extra_data"), at[i]);
            r = api(&u, "POST", msgs_path(sid),
                    str("{\"role\":\"user\",\"content\":\"x\",\"extra_data\":"
                        "%s}",
                        over[i]));
            assert_error(r, 400, "validation_error", "extra_data");
        }
    }

    /* client_message_id: 1..255 printable ASCII */
    (void)append(&u, sid,
                 str("{\"role\":\"user\",\"content\":\"x\",\"client_message_"
                     "id\":\"%s\"}",
                     rep("k", 255)));
    n++;
    (void)append(&u, sid,
                 "{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":"
                 "\"!#$%&'()*+,-./:;<=>?@[\\\\]^_`{|}~\"}");
    n++;
    r = api(&u, "POST", msgs_path(sid),
            str("{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":"
                "\"%s\"}",
                rep("k", 256)));
    assert_error(r, 400, "validation_error", "client_message_id");

    /* only the accepted ones are stored */
    ck_assert_int_eq(count_of(&u, sid), n);
    r = api(&u, "GET", str("%s?limit=1", msgs_path(sid)), NULL);
    expect_mlist(r, sid, n, 1, 0, "1");

    /* no such session, or one that cannot exist */
    r = api(&u, "POST", msgs_path(uniq("none")), msg_json("user", "x"));
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "POST", msgs_path("bad%20id"), msg_json("user", "x"));
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "POST", msgs_path(rep("s", 256)), msg_json("user", "x"));
    assert_error(r, 404, "not_found", ANY);
}
END_TEST

/* ====================================================================== */
/* get / patch / delete one */

START_TEST(test_message_item)
{
    struct user u = user_new("item");
    const char *sid = uniq("m"), *sid2 = uniq("m2");
    const struct json_value *m1, *m2, *o, *cur, *g;
    const char *missing[8];
    static const char *const not_patchable[] = {
        "role",         "seq",        "id",
        "tool_call_id", "tool_name",  "session_id",
        "created_at",   "updated_at", "client_message_id",
        "foo",
    };
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
    m1 = say(&u, sid, "user", "first");
    m2 = append(&u, sid,
                "{\"role\":\"assistant\",\"content\":\"second\","
                "\"tool_call_id\":\"c1\",\"tool_name\":\"t\","
                "\"extra_data\":{\"k\":1}}");
    o = say(&u, sid2, "user", "other session");

    r = api(&u, "GET", msg_path(sid, jstr(m1, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid), m1);
    r = api(&u, "GET", msg_path(sid, jstr(m2, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid), m2);

    /* malformed or unknown ids, and a message of another session */
    missing[0] = "not-a-uuid";
    missing[1] = "12345";
    missing[2] = fresh_uuid();
    missing[3] = str("%sx", jstr(m1, "id"));
    missing[4] = "%24ne";
    missing[5] = rep("a", 36);
    missing[6] = jstr(o, "id");
    missing[7] = str("%.35s", jstr(m1, "id"));
    for (size_t i = 0; i < 8; i++) {
        const char *p = msg_path(sid, missing[i]);

        r = api(&u, "GET", p, NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "PATCH", p, "{\"content\":\"x\"}");
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "DELETE", p, NULL);
        assert_error(r, 404, "not_found", ANY);
    }
    /* the other session's message is untouched */
    r = api(&u, "GET", msg_path(sid2, jstr(o, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid2), o);
    /* and the message ids are not valid under an unknown session */
    r = api(&u, "GET", msg_path(uniq("none"), jstr(m1, "id")), NULL);
    assert_error(r, 404, "not_found", ANY);

    /* PATCH content: only content and updated_at change */
    pause_ms(10);
    r = api(&u, "PATCH", msg_path(sid, jstr(m1, "id")),
            "{\"content\":\"first, edited\"}");
    cur = expect_message(r, 200, sid);
    ck_assert_str_eq(jstr(cur, "content"), "first, edited");
    ck_assert_str_eq(jstr(cur, "id"), jstr(m1, "id"));
    ck_assert_int_eq(jint(cur, "seq"), jint(m1, "seq"));
    ck_assert_str_eq(jstr(cur, "role"), "user");
    ck_assert_str_eq(jstr(cur, "created_at"), jstr(m1, "created_at"));
    ck_assert_msg(strcmp(jstr(cur, "updated_at"), jstr(m1, "updated_at")) > 0,
                  "updated_at %s did not move past %s", jstr(cur, "updated_at"),
                  jstr(m1, "updated_at"));
    ck_assert(jis_null(cur, "extra_data"));
    r = api(&u, "GET", msg_path(sid, jstr(m1, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid), cur);

    /* PATCH extra_data: any value, null clears */
    {
        static const char *const values[] = {
            "{\"x\":[1,2]}", "\"s\"", "3", "true", "[{\"a\":null}]", "null",
        };

        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
                    str("{\"extra_data\":%s}", values[i]));
            g = expect_message(r, 200, sid);
            expect_json(json_get(g, "extra_data"), values[i]);
            ck_assert_str_eq(jstr(g, "content"), "second");
            ck_assert_str_eq(jstr(g, "tool_call_id"), "c1");
            ck_assert_str_eq(jstr(g, "tool_name"), "t");
            ck_assert_str_eq(jstr(g, "role"), "assistant");
        }
    }
    /* both at once */
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
            "{\"content\":\"\",\"extra_data\":{\"both\":true}}");
    cur = expect_message(r, 200, sid);
    ck_assert_str_eq(jstr(cur, "content"), "");
    expect_json(json_get(cur, "extra_data"), "{\"both\":true}");

    /* {} changes nothing, updated_at included */
    pause_ms(10);
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")), "{}");
    expect_same_message(expect_message(r, 200, sid), cur);
    r = api(&u, "GET", msg_path(sid, jstr(m2, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid), cur);

    /* fields PATCH does not take, and bad values */
    for (size_t i = 0; i < sizeof not_patchable / sizeof not_patchable[0];
         i++) {
        r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
                str("{\"%s\":\"user\"}", not_patchable[i]));
        assert_error(r, 400, ANY, not_patchable[i]);
    }
    {
        static const struct {
            const char *body, *param;
        } cases[] = {
            {"{\"content\":5}", "content"},
            {"{\"content\":null}", "content"},
            {"{\"content\":[\"x\"]}", "content"},
            {"{\"content\":{\"$set\":\"x\"}}", "content"},
            {"{\"extra_data\":{\"$x\":1}}", "extra_data"},
            {"{\"extra_data\":{\"a.b\":1}}", "extra_data"},
            {"{\"extra_data\":[{\"\":1}]}", "extra_data"},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")), cases[i].body);
            assert_error(r, 400, "validation_error", cases[i].param);
        }
    }
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
            str("{\"content\":\"%s\"}", rep("x", 512 * 1024 + 1)));
    assert_error(r, 400, "validation_error", "content");
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
            str("{\"extra_data\":%s}", nest(17)));
    assert_error(r, 400, "validation_error", "extra_data");
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
            str("{\"extra_data\":\"%s\"}", rep("x", 16384 - 1)));
    assert_error(r, 400, "validation_error", "extra_data");
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")), "{\"content\":");
    assert_error(r, 400, "invalid_json", NULL);
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")), "[]");
    assert_error(r, 400, ANY, ANY);
    r = send_raw(&u, "PATCH", msg_path(sid, jstr(m2, "id")),
                 (const char *[]){"Content-Type: text/plain", NULL},
                 "{\"content\":\"x\"}", 15);
    assert_error(r, 415, "unsupported_media_type", ANY);
    /* none of them changed it */
    r = api(&u, "GET", msg_path(sid, jstr(m2, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid), cur);

    /* DELETE: 204, then it is gone */
    r = api(&u, "DELETE", msg_path(sid, jstr(m2, "id")), NULL);
    expect_status(r, 204);
    ck_assert_uint_eq(r.body_len, 0);
    r = api(&u, "GET", msg_path(sid, jstr(m2, "id")), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "DELETE", msg_path(sid, jstr(m2, "id")), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "PATCH", msg_path(sid, jstr(m2, "id")), "{\"content\":\"x\"}");
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", msgs_path(sid), NULL);
    expect_mlist(r, sid, 1, 50, 0, "1");
    ck_assert_int_eq(count_of(&u, sid), 1);
    ck_assert_int_eq(count_of(&u, sid2), 1);
}
END_TEST

/* ====================================================================== */
/* list */

START_TEST(test_message_list_filters)
{
    struct user u = user_new("mlist");
    const char *sid = uniq("m");
    static const struct {
        const char *role, *content;
    } msgs[] = {
        {"user", "Hello World"},          /* 1 */
        {"assistant", "hello there"},     /* 2 */
        {"system", "a.*b literal"},       /* 3 */
        {"tool", "axxb"},                 /* 4 */
        {"user", "100% sure_thing"},      /* 5 */
        {"assistant", "f(x) = [y] \\ $"}, /* 6 */
        {"user", "under_score"},          /* 7 */
    };
    enum { N = sizeof msgs / sizeof msgs[0] };
    /* total: the messages the query matches; the list's "total" says
     * that only with a role, search or date filter, else N. */
    static const struct {
        const char *query;
        int64_t total, limit, offset;
        const char *seqs;
    } cases[] = {
        {"", 7, 50, 0, "1 2 3 4 5 6 7"},
        {"limit=3", 7, 3, 0, "1 2 3"},
        {"limit=3&offset=2", 7, 3, 2, "3 4 5"},
        {"offset=6", 7, 50, 6, "7"},
        {"offset=7", 7, 50, 7, ""},
        {"offset=100000", 7, 50, 100000, ""},
        {"limit=200", 7, 200, 0, "1 2 3 4 5 6 7"},
        {"limit=1&offset=0", 7, 1, 0, "1"},
        {"page=1&size=3", 7, 3, 0, "1 2 3"},
        {"page=2&size=3", 7, 3, 3, "4 5 6"},
        {"page=3&size=3", 7, 3, 6, "7"},
        {"page=4&size=3", 7, 3, 9, ""},
        {"page=2", 7, 50, 50, ""},
        {"size=2", 7, 2, 0, "1 2"},
        {"after_seq=3", 4, 50, 0, "4 5 6 7"},
        {"after_seq=0", 7, 50, 0, "1 2 3 4 5 6 7"},
        {"after_seq=7", 0, 50, 0, ""},
        {"after_seq=99999999999", 0, 50, 0, ""},
        {"before_seq=3", 2, 50, 0, "1 2"},
        {"before_seq=1", 0, 50, 0, ""},
        {"before_seq=0", 0, 50, 0, ""},
        {"after_seq=2&before_seq=6", 3, 50, 0, "3 4 5"},
        {"after_seq=5&before_seq=5", 0, 50, 0, ""},
        {"after_seq=2&before_seq=6&limit=2&offset=1", 3, 2, 1, "4 5"},
        {"order=asc", 7, 50, 0, "1 2 3 4 5 6 7"},
        {"order=desc", 7, 50, 0, "7 6 5 4 3 2 1"},
        {"order=desc&limit=2", 7, 2, 0, "7 6"},
        {"order=desc&limit=2&offset=2", 7, 2, 2, "5 4"},
        {"order=desc&after_seq=4", 3, 50, 0, "7 6 5"},
        {"order=desc&before_seq=3", 2, 50, 0, "2 1"},
        {"role=user", 3, 50, 0, "1 5 7"},
        {"role=assistant", 2, 50, 0, "2 6"},
        {"role=system", 1, 50, 0, "3"},
        {"role=tool", 1, 50, 0, "4"},
        {"role=user&order=desc", 3, 50, 0, "7 5 1"},
        {"role=user&after_seq=1", 2, 50, 0, "5 7"},
        {"role=user&limit=1&offset=1", 3, 1, 1, "5"},
        {"search=hello", 2, 50, 0, "1 2"},
        {"search=HELLO", 2, 50, 0, "1 2"},
        {"search=hElLo%20wOrLd", 1, 50, 0, "1"},
        {"search=.*", 1, 50, 0, "3"},
        {"search=.%2A", 1, 50, 0, "3"},
        {"search=a.*b", 1, 50, 0, "3"},
        {"search=a.b", 0, 50, 0, ""},
        {"search=x", 2, 50, 0, "4 6"},
        {"search=xx", 1, 50, 0, "4"},
        {"search=%25", 1, 50, 0, "5"},
        {"search=_", 2, 50, 0, "5 7"},
        {"search=%28x%29", 1, 50, 0, "6"},
        {"search=%28", 1, 50, 0, "6"},
        {"search=%5By%5D", 1, 50, 0, "6"},
        {"search=%5B", 1, 50, 0, "6"},
        {"search=%5C", 1, 50, 0, "6"},
        {"search=%24", 1, 50, 0, "6"},
        {"search=%5E", 0, 50, 0, ""},
        {"search=%5EHello", 0, 50, 0, ""},
        {"search=%7C", 0, 50, 0, ""},
        {"search=o", 3, 50, 0, "1 2 7"},
        {"search=o&limit=1", 3, 1, 0, "1"},
        {"search=o&order=desc", 3, 50, 0, "7 2 1"},
        {"search=hello&role=user", 1, 50, 0, "1"},
        {"search=zzz", 0, 50, 0, ""},
        {"search=%7B%22%24ne%22%3Anull%7D", 0, 50, 0, ""},
        {"role=system&search=hello", 0, 50, 0, ""},
        {"created_after=2000-01-01T00:00:00Z", 7, 50, 0, "1 2 3 4 5 6 7"},
        {"created_after=2000-01-01T00:00:00%2B02:00", 7, 50, 0,
         "1 2 3 4 5 6 7"},
        {"created_before=2000-01-01T00:00:00Z", 0, 50, 0, ""},
        {"created_before=2999-01-01T00:00:00.000Z", 7, 50, 0, "1 2 3 4 5 6 7"},
        {"created_after=2999-01-01T00:00:00Z", 0, 50, 0, ""},
    };
    const char *created[N];
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int i = 0; i < N; i++) {
        const struct json_value *m;

        pause_ms(10); /* distinct created_at (ms) */
        m = say(&u, sid, msgs[i].role, msgs[i].content);
        ck_assert_int_eq(jint(m, "seq"), i + 1);
        created[i] = jstr(m, "created_at");
    }
    /* another session of the user, and another user's session of the
     * same name, whose messages must never show up */
    {
        struct user other = user_new("mlist-other");
        const char *sid2 = uniq("m2");

        (void)create(&other, str("{\"session_id\":\"%s\"}", sid));
        (void)say(&other, sid, "user", "Hello World");
        (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
        (void)say(&u, sid2, "user", "Hello World");
    }

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bool filtered = strstr(cases[c].query, "role=") != NULL ||
                        strstr(cases[c].query, "search=") != NULL ||
                        strstr(cases[c].query, "created_") != NULL;

        r = api(&u, "GET",
                str("%s%s%s", msgs_path(sid), cases[c].query[0] ? "?" : "",
                    cases[c].query),
                NULL);
        expect_mlist_m(r, sid, filtered ? cases[c].total : N, cases[c].total,
                       cases[c].limit, cases[c].offset, cases[c].seqs);
    }

    /* the items are the stored messages */
    {
        const struct json_value **all = all_messages(&u, sid, N);

        for (int i = 0; i < N; i++) {
            ck_assert_str_eq(jstr(all[i], "role"), msgs[i].role);
            ck_assert_str_eq(jstr(all[i], "content"), msgs[i].content);
            ck_assert_str_eq(jstr(all[i], "created_at"), created[i]);
        }
    }

    /* created_after / created_before are exclusive bounds */
    for (int t = 0; t < N; t++) {
        char after[64] = "", before[64] = "";
        int na = 0, nb = 0;

        for (int i = 0; i < N; i++) {
            int c = strcmp(created[i], created[t]);

            if (c > 0)
                na += snprintf(after + na, sizeof after - (size_t)na, "%s%d",
                               na ? " " : "", i + 1);
            if (c < 0)
                nb += snprintf(before + nb, sizeof before - (size_t)nb, "%s%d",
                               nb ? " " : "", i + 1);
        }
        r = api(&u, "GET",
                str("%s?created_after=%s", msgs_path(sid), created[t]), NULL);
        expect_mlist(r, sid, N - 1 - t, 50, 0, after);
        r = api(&u, "GET",
                str("%s?created_before=%s", msgs_path(sid), created[t]), NULL);
        expect_mlist(r, sid, t, 50, 0, before);
    }
    r = api(&u, "GET",
            str("%s?created_after=%s&created_before=%s&order=desc",
                msgs_path(sid), created[1], created[5]),
            NULL);
    expect_mlist(r, sid, 3, 50, 0, "5 4 3");

    /* search: 255 characters is the longest */
    r = api(&u, "GET", str("%s?search=%s", msgs_path(sid), rep("h", 255)),
            NULL);
    expect_mlist(r, sid, 0, 50, 0, "");
}
END_TEST

START_TEST(test_message_list_bad_params)
{
    struct user u = user_new("mparams");
    const char *sid = uniq("m");
    static const struct {
        const char *query;
        const char *param;
    } cases[] = {
        {"limit=0", "limit"},
        {"limit=201", "limit"},
        {"limit=abc", "limit"},
        {"limit=-1", "limit"},
        {"limit=1.5", "limit"},
        {"limit=", "limit"},
        {"offset=-1", "offset"},
        {"offset=100001", "offset"},
        {"offset=x", "offset"},
        {"page=0", "page"},
        {"page=x", "page"},
        {"size=0", "size"},
        {"size=201", "size"},
        {"after_seq=-1", "after_seq"},
        {"after_seq=x", "after_seq"},
        {"after_seq=1.5", "after_seq"},
        {"after_seq=", "after_seq"},
        {"before_seq=-1", "before_seq"},
        {"before_seq=abc", "before_seq"},
        {"order=sideways", "order"},
        {"order=", "order"},
        {"order=DESC", "order"},
        {"role=bogus", "role"},
        {"role=User", "role"},
        {"role=", "role"},
        {"search=", "search"},
        {"created_after=yesterday", "created_after"},
        {"created_after=2024-01-01", "created_after"},
        {"created_before=2024-13-01T00:00:00Z", "created_before"},
        {"created_before=2024-01-01T25:00:00Z", "created_before"},
        {"limit=1&limit=2", "limit"},
        {"role=user&role=tool", "role"},
        {"foo=1", "foo"},
        {"user_id=x", "user_id"},
        {"session_id=x", "session_id"},
        {"updated_after=2024-01-01T00:00:00Z", "updated_after"},
        {"sort=created_at", "sort"},
        {"status=active", "status"},
    };
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    (void)say(&u, sid, "user", "x");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = api(&u, "GET", str("%s?%s", msgs_path(sid), cases[i].query), NULL);
        assert_error(r, 400, "validation_error", cases[i].param);
    }
    r = api(&u, "GET", str("%s?search=%s", msgs_path(sid), rep("h", 256)),
            NULL);
    assert_error(r, 400, "validation_error", "search");
    /* limit/offset and page/size do not mix */
    r = api(&u, "GET", str("%s?limit=10&page=2", msgs_path(sid)), NULL);
    assert_error(r, 400, "validation_error", ANY);
    r = api(&u, "GET", str("%s?offset=10&size=5", msgs_path(sid)), NULL);
    assert_error(r, 400, "validation_error", ANY);
    /* a session that does not exist, or cannot */
    r = api(&u, "GET", msgs_path(uniq("none")), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", msgs_path("bad%20id"), NULL);
    assert_error(r, 404, "not_found", ANY);
    /* and the good query still works */
    r = api(&u, "GET", msgs_path(sid), NULL);
    expect_mlist(r, sid, 1, 50, 0, "1");
}
END_TEST

/* ====================================================================== */
/* clear */

START_TEST(test_clear_messages)
{
    struct user u = user_new("clear");
    const char *sid = uniq("m"), *sid2 = uniq("m2");
    const struct json_value *m;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
    r = api(&u, "DELETE", sub_path(sid, "clear-messages"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_count\":0}");

    (void)batch(&u, sid, 15, msg_items(15, "user", "c"));
    m = say(&u, sid2, "user", "kept");
    ck_assert_int_eq(count_of(&u, sid), 15);

    r = api(&u, "DELETE", sub_path(sid, "clear-messages"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_count\":15}");
    r = api(&u, "GET", msgs_path(sid), NULL);
    expect_mlist(r, sid, 0, 50, 0, "");
    ck_assert_int_eq(count_of(&u, sid), 0);
    r = api(&u, "GET", sub_path(sid, "context"), NULL);
    expect_status(r, 200);
    expect_json(r.json, EMPTY_CONTEXT);
    r = api(&u, "DELETE", sub_path(sid, "clear-messages"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_count\":0}");

    /* the other session keeps its message */
    r = api(&u, "GET", msgs_path(sid2), NULL);
    expect_mlist(r, sid2, 1, 50, 0, "1");
    r = api(&u, "GET", msg_path(sid2, jstr(m, "id")), NULL);
    expect_same_message(expect_message(r, 200, sid2), m);

    /* seqs are never reused */
    m = say(&u, sid, "user", "after the clear");
    ck_assert_int_eq(jint(m, "seq"), 16);

    /* clear takes no body but {} */
    r = api(&u, "DELETE", sub_path(sid, "clear-messages"), "{\"x\":1}");
    assert_error(r, 400, ANY, ANY);
    ck_assert_int_eq(count_of(&u, sid), 1);
    r = api(&u, "DELETE", sub_path(sid, "clear-messages"), "{}");
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_count\":1}");

    r = api(&u, "DELETE", sub_path(uniq("none"), "clear-messages"), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "DELETE", sub_path(sid, "clear-messages?foo=1"), NULL);
    assert_error(r, 400, "validation_error", "foo");
}
END_TEST

/* ====================================================================== */
/* the session's counters follow the messages; version does not */

#define expect_moved(before, after, field)                                     \
    ck_assert_msg(strcmp(jstr((after), (field)), jstr((before), (field))) > 0, \
                  "line %d: %s %s did not move past %s", __LINE__, (field),    \
                  jstr((after), (field)), jstr((before), (field)))

START_TEST(test_message_session_counters)
{
    struct user u = user_new("counters");
    const char *sid = uniq("m");
    const struct json_value *s0, *s, *m1, *items, *m;
    struct resp r;

    s0 = create(&u, str("{\"session_id\":\"%s\"}", sid));
    ck_assert_int_eq(jint(s0, "message_count"), 0);
    ck_assert_int_eq(jint(s0, "version"), 1);

    pause_ms(10);
    m1 = say(&u, sid, "user", "one");
    s = get_session(&u, sid);
    ck_assert_int_eq(jint(s, "message_count"), 1);
    ck_assert_int_eq(jint(s, "version"), 1);
    expect_moved(s0, s, "updated_at");
    expect_moved(s0, s, "last_activity_at");
    s0 = s;

    pause_ms(10);
    items = batch(&u, sid, 3, msg_items(3, "assistant", "b"));
    ck_assert_int_eq(jint(items->u.a.items[0], "seq"), 2);
    s = get_session(&u, sid);
    ck_assert_int_eq(jint(s, "message_count"), 4);
    ck_assert_int_eq(jint(s, "version"), 1);
    expect_moved(s0, s, "updated_at");
    expect_moved(s0, s, "last_activity_at");
    s0 = s;

    pause_ms(10);
    r = api(&u, "PATCH", msg_path(sid, jstr(m1, "id")), "{\"content\":\"1\"}");
    expect_message(r, 200, sid);
    s = get_session(&u, sid);
    ck_assert_int_eq(jint(s, "message_count"), 4);
    ck_assert_int_eq(jint(s, "version"), 1);
    expect_moved(s0, s, "updated_at");
    expect_moved(s0, s, "last_activity_at");
    s0 = s;

    /* deleting the newest does not free its seq */
    pause_ms(10);
    r = api(&u, "DELETE", msg_path(sid, jstr(items->u.a.items[2], "id")), NULL);
    expect_status(r, 204);
    s = get_session(&u, sid);
    ck_assert_int_eq(jint(s, "message_count"), 3);
    ck_assert_int_eq(jint(s, "version"), 1);
    expect_moved(s0, s, "updated_at");
    expect_moved(s0, s, "last_activity_at");
    s0 = s;
    m = say(&u, sid, "user", "five");
    ck_assert_int_eq(jint(m, "seq"), 5);
    ck_assert_int_eq(count_of(&u, sid), 4);

    /* a replayed key stores nothing */
    m = append(&u, sid,
               "{\"role\":\"user\",\"content\":\"k\",\"client_message_id\":"
               "\"once\"}");
    ck_assert_int_eq(jint(m, "seq"), 6);
    r = api(&u, "POST", msgs_path(sid),
            "{\"role\":\"user\",\"content\":\"k\",\"client_message_id\":"
            "\"once\"}");
    expect_message(r, 200, sid);
    s0 = get_session(&u, sid);
    ck_assert_int_eq(jint(s0, "message_count"), 5);

    pause_ms(10);
    r = api(&u, "DELETE", sub_path(sid, "clear-messages"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_count\":5}");
    s = get_session(&u, sid);
    ck_assert_int_eq(jint(s, "message_count"), 0);
    ck_assert_int_eq(jint(s, "version"), 1);
    expect_moved(s0, s, "updated_at");
    expect_moved(s0, s, "last_activity_at");

    m = say(&u, sid, "user", "seven");
    ck_assert_int_eq(jint(m, "seq"), 7);
    s = get_session(&u, sid);
    ck_assert_int_eq(jint(s, "message_count"), 1);
    ck_assert_int_eq(jint(s, "version"), 1);
    {
        struct resp g = api(&u, "GET", session_path(sid), NULL);

        expect_header(g, "ETag", "\"1\"");
    }

    /* the session's own changes still count */
    r = api(&u, "PATCH", session_path(sid), "{\"session_name\":\"n\"}");
    ck_assert_int_eq(jint(expect_session(r, 200), "version"), 2);
    ck_assert_int_eq(jint(r.json, "message_count"), 1);
}
END_TEST

/* ====================================================================== */
/* writes need an active session */

START_TEST(test_message_writes_need_active)
{
    static const char *const states[] = {"inactive", "completed", "expired",
                                         "failed"};
    struct user u = user_new("inactive");

    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        const char *sid = uniq(states[i]);
        const struct json_value *m, *before, *after;
        struct resp r;

        (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
        m = say(&u, sid, "user", "stored while active");
        if (strcmp(states[i], "inactive") == 0)
            r = api(&u, "PUT", sub_path(sid, "deactivate"), NULL);
        else
            r = api(&u, "POST", sub_path(sid, "end"),
                    str("{\"status\":\"%s\"}", states[i]));
        ck_assert_str_eq(jstr(expect_session(r, 200), "status"), states[i]);
        before = get_session(&u, sid);

        r = api(&u, "POST", msgs_path(sid), msg_json("user", "no"));
        assert_error(r, 409, "conflict", ANY);
        r = api(&u, "POST", msgs_path(sid),
                "{\"role\":\"user\",\"content\":\"no\","
                "\"client_message_id\":\"k\"}");
        assert_error(r, 409, "conflict", ANY);
        r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: k2",
                  msg_json("user", "no"));
        assert_error(r, 409, "conflict", ANY);
        r = api(&u, "POST", msgs_path(sid),
                str("{\"messages\":[%s]}", msg_items(2, "user", "no")));
        assert_error(r, 409, "conflict", ANY);
        r = api(&u, "PATCH", msg_path(sid, jstr(m, "id")),
                "{\"content\":\"no\"}");
        assert_error(r, 409, "conflict", ANY);
        r = api(&u, "PATCH", msg_path(sid, jstr(m, "id")),
                "{\"extra_data\":{\"no\":1}}");
        assert_error(r, 409, "conflict", ANY);
        r = api(&u, "DELETE", msg_path(sid, jstr(m, "id")), NULL);
        assert_error(r, 409, "conflict", ANY);
        r = api(&u, "DELETE", sub_path(sid, "clear-messages"), NULL);
        assert_error(r, 409, "conflict", ANY);

        /* reads work, nothing changed */
        r = api(&u, "GET", msg_path(sid, jstr(m, "id")), NULL);
        expect_same_message(expect_message(r, 200, sid), m);
        r = api(&u, "GET", msgs_path(sid), NULL);
        expect_mlist(r, sid, 1, 50, 0, "1");
        r = api(&u, "GET", sub_path(sid, "context"), NULL);
        expect_status(r, 200);
        ck_assert_uint_eq(jarr(r.json, "items")->u.a.len, 1);
        after = get_session(&u, sid);
        expect_same_session(after, before);
        ck_assert_int_eq(jint(after, "message_count"), 1);

        /* memory writes do not need an active session */
        r = api(&u, "PUT", mem_path(sid, "note"), "{\"v\":1}");
        expect_status(r, 200);
        expect_json(r.json, "{\"key\":\"note\",\"value\":{\"v\":1}}");
        r = api(&u, "DELETE", mem_path(sid, "note"), NULL);
        expect_status(r, 204);

        /* inactive and expired come back; completed and failed do not */
        r = api(&u, "PUT", sub_path(sid, "activate"), NULL);
        if (strcmp(states[i], "inactive") == 0 ||
            strcmp(states[i], "expired") == 0) {
            ck_assert_str_eq(jstr(expect_session(r, 200), "status"), "active");
            m = say(&u, sid, "user", "active again");
            ck_assert_int_eq(jint(m, "seq"), 2);
            ck_assert_int_eq(count_of(&u, sid), 2);
        } else {
            assert_error(r, 409, "conflict", ANY);
            ck_assert_int_eq(count_of(&u, sid), 1);
        }
    }
}
END_TEST

/* ====================================================================== */
/* deleting a session takes its messages and memory */

START_TEST(test_session_delete_cascades)
{
    static const char *const states[] = {"active", "inactive", "completed"};
    struct user u = user_new("cascade");

    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        const char *sid = uniq("c");
        const struct json_value *s, *items, *again;
        struct resp r;

        s = create(&u, str("{\"session_id\":\"%s\"}", sid));
        items = batch(&u, sid, 3, msg_items(3, "user", "gone"));
        r = api(&u, "PUT", mem_path(sid, "k1"), "\"v1\"");
        expect_status(r, 200);
        r = api(&u, "PUT", mem_path(sid, "k2"), "[1,2]");
        expect_status(r, 200);
        if (strcmp(states[i], "inactive") == 0) {
            r = api(&u, "PUT", sub_path(sid, "deactivate"), NULL);
            expect_session(r, 200);
        } else if (strcmp(states[i], "completed") == 0) {
            r = api(&u, "POST", sub_path(sid, "end"),
                    "{\"status\":\"completed\"}");
            expect_session(r, 200);
        }

        r = api(&u, "DELETE", session_path(sid), NULL);
        expect_status(r, 204);
        r = api(&u, "GET", msgs_path(sid), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", sub_path(sid, "memory"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", mem_path(sid, "k1"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", sub_path(sid, "context"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", msg_path(sid, jstr(items->u.a.items[0], "id")),
                NULL);
        assert_error(r, 404, "not_found", ANY);

        /* the same name again is a new, empty session */
        again = create(&u, str("{\"session_id\":\"%s\"}", sid));
        ck_assert_str_ne(jstr(again, "id"), jstr(s, "id"));
        ck_assert_int_eq(jint(again, "message_count"), 0);
        r = api(&u, "GET", msgs_path(sid), NULL);
        expect_mlist(r, sid, 0, 50, 0, "");
        for (size_t k = 0; k < 3; k++) {
            r = api(&u, "GET", msg_path(sid, jstr(items->u.a.items[k], "id")),
                    NULL);
            assert_error(r, 404, "not_found", ANY);
        }
        r = api(&u, "GET", sub_path(sid, "memory"), NULL);
        expect_status(r, 200);
        expect_json(r.json, EMPTY_MEMORY);
        r = api(&u, "GET", mem_path(sid, "k1"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", sub_path(sid, "context"), NULL);
        expect_status(r, 200);
        expect_json(r.json, EMPTY_CONTEXT);
        /* and its seqs start again */
        ck_assert_int_eq(jint(say(&u, sid, "user", "fresh"), "seq"), 1);
        ck_assert_int_eq(count_of(&u, sid), 1);
    }
}
END_TEST

/* ====================================================================== */
/* BOLA: another user's session, messages and memory do not exist for you */

START_TEST(test_message_bola)
{
    struct user a = user_new("mbola-a");
    struct user b = user_new("mbola-b");
    const char *sid = uniq("shared");
    const struct json_value *sa, *ma, *mb, *conv, **before, **after;
    const char *mid;
    const char *mem_before;
    struct resp r;

    sa = create(&a, str("{\"session_id\":\"%s\"}", sid));
    ma = append(&a, sid,
                "{\"role\":\"user\",\"content\":\"A's secret\","
                "\"client_message_id\":\"a-key\"}");
    (void)append(&a, sid,
                 "{\"role\":\"assistant\",\"content\":\"A's reply\","
                 "\"tool_call_id\":\"call_a\"}");
    r = api(&a, "PUT", mem_path(sid, "k"), "{\"owner\":\"a\"}");
    expect_status(r, 200);
    mid = jstr(ma, "id");
    before = all_messages(&a, sid, 2);
    r = api(&a, "GET", sub_path(sid, "memory"), NULL);
    expect_status(r, 200);
    mem_before = json_text(r.json);

    /* B has no session of that name: everything is 404 */
    {
        const struct {
            const char *method, *path, *body;
        } cases[] = {
            {"GET", msgs_path(sid), NULL},
            {"GET", str("%s?search=secret", msgs_path(sid)), NULL},
            {"POST", msgs_path(sid), msg_json("user", "B was here")},
            {"POST", msgs_path(sid),
             str("{\"messages\":[%s]}", msg_items(2, "user", "B"))},
            {"POST", msgs_path(sid),
             "{\"role\":\"user\",\"content\":\"x\","
             "\"client_message_id\":\"a-key\"}"},
            {"GET", msg_path(sid, mid), NULL},
            {"PATCH", msg_path(sid, mid), "{\"content\":\"B's now\"}"},
            {"DELETE", msg_path(sid, mid), NULL},
            {"DELETE", sub_path(sid, "clear-messages"), NULL},
            {"GET", sub_path(sid, "context"), NULL},
            {"GET", sub_path(sid, "memory"), NULL},
            {"GET", mem_path(sid, "k"), NULL},
            {"PUT", mem_path(sid, "k"), "{\"owner\":\"b\"}"},
            {"PUT", mem_path(sid, "new"), "1"},
            {"DELETE", mem_path(sid, "k"), NULL},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            r = api(&b, cases[i].method, cases[i].path, cases[i].body);
            assert_error(r, 404, "not_found", ANY);
        }
    }

    /* conversation with A's session_id makes B a session of its own */
    r = api(&b, "POST", SESSIONS "/conversation",
            str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
                msg_json("user", "hi from B")));
    expect_status(r, 200);
    conv = r.json;
    ck_assert_str_eq(jstr(conv, "session_id"), sid);
    ck_assert_str_ne(jstr(conv, "session_uuid"), jstr(sa, "id"));
    ck_assert_int_eq(jint(conv, "messages_count"), 2);
    ck_assert_int_eq(count_of(&a, sid), 2);
    ck_assert_int_eq(count_of(&b, sid), 2);

    /* B's own session of that name still does not reach A's messages */
    {
        const struct {
            const char *method, *path, *body;
        } cases[] = {
            {"GET", msg_path(sid, mid), NULL},
            {"PATCH", msg_path(sid, mid), "{\"content\":\"B's now\"}"},
            {"PATCH", msg_path(sid, mid), "{}"},
            {"DELETE", msg_path(sid, mid), NULL},
            {"GET", mem_path(sid, "k"), NULL},
            {"DELETE", mem_path(sid, "k"), NULL},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            r = api(&b, cases[i].method, cases[i].path, cases[i].body);
            assert_error(r, 404, "not_found", ANY);
        }
    }
    /* B's list and context show B's messages only */
    r = api(&b, "GET", msgs_path(sid), NULL);
    expect_mlist(r, sid, 2, 50, 0, "1 2");
    r = api(&b, "GET", str("%s?search=secret", msgs_path(sid)), NULL);
    expect_mlist(r, sid, 0, 50, 0, "");
    r = api(&b, "GET", sub_path(sid, "context"), NULL);
    expect_status(r, 200);
    ck_assert_uint_eq(jarr(r.json, "items")->u.a.len, 2);
    /* A's key is not B's: the same client_message_id stores a new
     * message for B instead of answering with A's */
    mb = append(&b, sid,
                "{\"role\":\"user\",\"content\":\"B's own\","
                "\"client_message_id\":\"a-key\"}");
    ck_assert_str_ne(jstr(mb, "id"), mid);
    ck_assert_str_eq(jstr(mb, "content"), "B's own");
    ck_assert_int_eq(jint(mb, "seq"), 3);
    /* B's memory is B's */
    r = api(&b, "GET", mem_path(sid, "k"), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "PUT", mem_path(sid, "k"), "{\"owner\":\"b\"}");
    expect_status(r, 200);
    r = api(&b, "GET", sub_path(sid, "memory"), NULL);
    expect_status(r, 200);
    expect_json(r.json, MEMORY_PAGE("{\"k\":{\"owner\":\"b\"}}"));
    /* B clearing B's session leaves A's alone */
    r = api(&b, "DELETE", sub_path(sid, "clear-messages"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_count\":3}");
    r = api(&b, "DELETE", session_path(sid), NULL);
    expect_status(r, 204);

    /* A's data is untouched */
    after = all_messages(&a, sid, 2);
    for (size_t i = 0; i < 2; i++)
        expect_same_message(after[i], before[i]);
    ck_assert_int_eq(count_of(&a, sid), 2);
    r = api(&a, "GET", sub_path(sid, "memory"), NULL);
    expect_status(r, 200);
    expect_json(r.json, mem_before);
    expect_json(r.json, MEMORY_PAGE("{\"k\":{\"owner\":\"a\"}}"));
    r = api(&a, "GET", mem_path(sid, "k"), NULL);
    expect_status(r, 200);
    /* A's key still answers with A's message */
    r = api(&a, "POST", msgs_path(sid),
            "{\"role\":\"user\",\"content\":\"x\","
            "\"client_message_id\":\"a-key\"}");
    expect_same_message(expect_message(r, 200, sid), before[0]);
}
END_TEST

/* ====================================================================== */
/* concurrency: 8 clients, 50 appends each, one session */

enum { CLIENTS = 8, PER_CLIENT = 50 };

struct appender {
    const struct e2e_http_client *client;
    const char *source;
    const char *target;
    const char *auth;
    int index;
    struct e2e_http_response *out[PER_CLIENT]; /* calloc'd here */
};

/* One client: its appends one after another.  Runs in a thread, so it
 * only sends and keeps the responses; the test checks them afterwards. */
static void *
appender_run(void *arg)
{
    struct appender *a = arg;

    for (int i = 0; i < PER_CLIENT; i++) {
        char body[128];
        const char *hdrs[] = {a->auth, JSON_CT, NULL};
        struct e2e_http_request req;
        int n = snprintf(body, sizeof body,
                         "{\"role\":\"user\",\"content\":\"client %d "
                         "message %d\"}",
                         a->index, i);

        a->out[i] = calloc(1, sizeof *a->out[i]);
        if (a->out[i] == NULL)
            abort();
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.target = a->target;
        req.headers = hdrs;
        req.body = body;
        req.body_len = (size_t)n;
        req.source = a->source;
        (void)e2e_http_do(a->client, &req, a->out[i]);
    }
    return NULL;
}

/* n requests at once, each from a source of its own. */
static struct resp *
send_together(const struct user *u, const char *method, const char *target,
              const char *const *extra, const char *const *bodies, size_t n)
{
    struct e2e_http_request *reqs = calloc(n, sizeof *reqs);
    struct e2e_http_response *out = calloc(n, sizeof *out);
    struct resp *res = arena_calloc(&tc.arena, n * sizeof *res);
    const char *auth = str("Authorization: Bearer %s", u->token);

    ck_assert(reqs != NULL && out != NULL);
    for (size_t i = 0; i < n; i++) {
        const char **hdrs = arena_calloc(&tc.arena, 4 * sizeof *hdrs);

        hdrs[0] = auth;
        hdrs[1] = JSON_CT;
        hdrs[2] = extra != NULL ? extra[i] : NULL;
        reqs[i].method = method;
        reqs[i].target = target;
        reqs[i].headers = hdrs;
        reqs[i].body = bodies[i];
        reqs[i].body_len = strlen(bodies[i]);
        reqs[i].source = case_source(tc.nreq++);
    }
    (void)e2e_http_do_many(&env.client, reqs, n, n, out);
    for (size_t i = 0; i < n; i++) {
        struct e2e_http_response *raw = calloc(1, sizeof *raw);

        ck_assert(raw != NULL);
        *raw = out[i]; /* wrap() owns it now */
        res[i] = wrap(method, target, raw);
    }
    free(out);
    free(reqs);
    return res;
}

START_TEST(test_message_concurrent_appends)
{
    struct user u = user_new("concurrent");
    const char *sid = uniq("c");
    struct appender *ap = arena_calloc(&tc.arena, CLIENTS * sizeof *ap);
    pthread_t th[CLIENTS];
    bool seen[CLIENTS * PER_CLIENT + 1];
    const struct json_value **all;
    const char *auth = str("Authorization: Bearer %s", u.token);
    enum { NBATCH = 8, BATCH = 10 };
    const char *bodies[NBATCH];
    struct resp *br;
    bool bseen[NBATCH * BATCH];

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int c = 0; c < CLIENTS; c++) {
        ap[c].client = &env.client;
        ap[c].source = case_source(tc.nreq++);
        ap[c].target = msgs_path(sid);
        ap[c].auth = auth;
        ap[c].index = c;
    }
    for (int c = 0; c < CLIENTS; c++)
        ck_assert_int_eq(pthread_create(&th[c], NULL, appender_run, &ap[c]), 0);
    for (int c = 0; c < CLIENTS; c++)
        ck_assert_int_eq(pthread_join(th[c], NULL), 0);

    /* every append 201 with a seq of its own; each client's seqs rise */
    memset(seen, 0, sizeof seen);
    for (int c = 0; c < CLIENTS; c++) {
        int64_t last = 0;

        for (int i = 0; i < PER_CLIENT; i++) {
            struct resp r = wrap("POST", ap[c].target, ap[c].out[i]);
            const struct json_value *m;
            int64_t seq;

            m = expect_message(r, 201, sid);
            ck_assert_str_eq(jstr(m, "content"),
                             str("client %d message %d", c, i));
            seq = jint(m, "seq");
            ck_assert_msg(seq >= 1 && seq <= CLIENTS * PER_CLIENT,
                          "seq %lld out of 1..%d", (long long)seq,
                          CLIENTS * PER_CLIENT);
            ck_assert_msg(!seen[seq], "seq %lld given twice", (long long)seq);
            seen[seq] = true;
            ck_assert_msg(seq > last,
                          "client %d: seq %lld after %lld (not in the order "
                          "the server accepted them)",
                          c, (long long)seq, (long long)last);
            last = seq;
        }
    }
    ck_assert_int_eq(count_of(&u, sid), CLIENTS * PER_CLIENT);

    /* the list holds exactly seqs 1..400, in order, ids distinct */
    all = all_messages(&u, sid, CLIENTS * PER_CLIENT);
    for (int i = 0; i < CLIENTS * PER_CLIENT; i++) {
        ck_assert_int_eq(jint(all[i], "seq"), i + 1);
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(jstr(all[k], "id"), jstr(all[i], "id"));
    }

    /* concurrent batches: each one's seqs consecutive, together 401..480 */
    for (int i = 0; i < NBATCH; i++)
        bodies[i] = str("{\"messages\":[%s]}",
                        msg_items(BATCH, "assistant", str("batch %d #", i)));
    br = send_together(&u, "POST", msgs_path(sid), NULL, bodies, NBATCH);
    memset(bseen, 0, sizeof bseen);
    for (int i = 0; i < NBATCH; i++) {
        const struct json_value *items =
            batch_items_at(__LINE__, &br[i], 201, sid, BATCH);

        for (int k = 0; k < BATCH; k++) {
            int64_t seq = jint(items->u.a.items[k], "seq");

            ck_assert_str_eq(jstr(items->u.a.items[k], "content"),
                             str("batch %d #%d", i, k));
            ck_assert_msg(seq > CLIENTS * PER_CLIENT &&
                              seq <= CLIENTS * PER_CLIENT + NBATCH * BATCH,
                          "batch seq %lld", (long long)seq);
            ck_assert_msg(!bseen[seq - CLIENTS * PER_CLIENT - 1],
                          "batch seq %lld given twice", (long long)seq);
            bseen[seq - CLIENTS * PER_CLIENT - 1] = true;
        }
    }
    ck_assert_int_eq(count_of(&u, sid), CLIENTS * PER_CLIENT + NBATCH * BATCH);
}
END_TEST

/* ====================================================================== */
/* idempotency */

START_TEST(test_message_idempotency)
{
    struct user u = user_new("idem");
    const char *sid = uniq("i");
    const char *keyed = "{\"role\":\"user\",\"content\":\"first\","
                        "\"client_message_id\":\"key-1\"}";
    const struct json_value *m, *h;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    (void)say(&u, sid, "system", "unkeyed");

    /* client_message_id: the replay answers 200 with the first message */
    m = append(&u, sid, keyed);
    ck_assert_int_eq(jint(m, "seq"), 2);
    r = api(&u, "POST", msgs_path(sid), keyed);
    expect_same_message(expect_message(r, 200, sid), m);
    /* even with other content: the first one stands */
    r = api(&u, "POST", msgs_path(sid),
            "{\"role\":\"assistant\",\"content\":\"second\","
            "\"client_message_id\":\"key-1\"}");
    expect_same_message(expect_message(r, 200, sid), m);
    ck_assert_int_eq(count_of(&u, sid), 2);
    r = api(&u, "GET", msgs_path(sid), NULL);
    expect_mlist(r, sid, 2, 50, 0, "1 2");

    /* keys are case-sensitive strings */
    r = api(&u, "POST", msgs_path(sid),
            "{\"role\":\"user\",\"content\":\"upper\","
            "\"client_message_id\":\"KEY-1\"}");
    ck_assert_int_eq(jint(expect_message(r, 201, sid), "seq"), 3);

    /* Idempotency-Key header: the same */
    r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: hdr-1",
              msg_json("user", "by header"));
    h = expect_message(r, 201, sid);
    ck_assert_int_eq(jint(h, "seq"), 4);
    r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: hdr-1",
              msg_json("user", "by header, again"));
    expect_same_message(expect_message(r, 200, sid), h);
    /* the header and the field are one key */
    r = api(&u, "POST", msgs_path(sid),
            "{\"role\":\"user\",\"content\":\"by field\","
            "\"client_message_id\":\"hdr-1\"}");
    expect_same_message(expect_message(r, 200, sid), h);
    r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: key-1",
              msg_json("user", "x"));
    expect_same_message(expect_message(r, 200, sid), m);
    /* both given and equal: fine; different: 400 */
    r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: both",
              "{\"role\":\"user\",\"content\":\"both\","
              "\"client_message_id\":\"both\"}");
    ck_assert_int_eq(jint(expect_message(r, 201, sid), "seq"), 5);
    r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: one",
              "{\"role\":\"user\",\"content\":\"x\","
              "\"client_message_id\":\"other\"}");
    assert_error(r, 400, "validation_error", "client_message_id");
    /* the header follows the field's rule */
    r = api_h(&u, "POST", msgs_path(sid),
              str("Idempotency-Key: %s", rep("k", 256)), msg_json("user", "x"));
    assert_error(r, 400, "validation_error", ANY);
    r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: a b",
              msg_json("user", "x"));
    assert_error(r, 400, "validation_error", ANY);
    r = api_h(&u, "POST", msgs_path(sid),
              str("Idempotency-Key: %s", rep("k", 255)), msg_json("user", "x"));
    ck_assert_int_eq(jint(expect_message(r, 201, sid), "seq"), 6);
    ck_assert_int_eq(count_of(&u, sid), 6);

    /* 8 at once with one key: one message stored, all answer with it */
    {
        enum { N = 8 };
        const char *bodies[N], *extra[N];
        const char *id = NULL;
        int created = 0;
        struct resp *res;

        for (int i = 0; i < N; i++) {
            bodies[i] = msg_json("user", str("racer %d", i));
            extra[i] = "Idempotency-Key: race-hdr";
        }
        res = send_together(&u, "POST", msgs_path(sid), extra, bodies, N);
        for (int i = 0; i < N; i++) {
            const struct json_value *x;

            ck_assert_msg(res[i].status == 200 || res[i].status == 201,
                          "racer %d: %d %.300s", i, res[i].status, res[i].body);
            x = check_message_at(__LINE__, res[i].json, sid);
            created += res[i].status == 201;
            if (id == NULL)
                id = jstr(x, "id");
            ck_assert_str_eq(jstr(x, "id"), id);
            ck_assert_int_eq(jint(x, "seq"), 7);
        }
        ck_assert_msg(created == 1, "%d of %d racers were answered 201",
                      created, N);
        ck_assert_int_eq(count_of(&u, sid), 7);

        /* and the same with client_message_id in the body */
        id = NULL;
        created = 0;
        for (int i = 0; i < N; i++)
            bodies[i] = str("{\"role\":\"user\",\"content\":\"racer %d\","
                            "\"client_message_id\":\"race-body\"}",
                            i);
        res = send_together(&u, "POST", msgs_path(sid), NULL, bodies, N);
        for (int i = 0; i < N; i++) {
            const struct json_value *x;

            ck_assert_msg(res[i].status == 200 || res[i].status == 201,
                          "racer %d: %d %.300s", i, res[i].status, res[i].body);
            x = check_message_at(__LINE__, res[i].json, sid);
            created += res[i].status == 201;
            if (id == NULL)
                id = jstr(x, "id");
            ck_assert_str_eq(jstr(x, "id"), id);
            ck_assert_int_eq(jint(x, "seq"), 8);
        }
        ck_assert_msg(created == 1, "%d of %d racers were answered 201",
                      created, N);
        ck_assert_int_eq(count_of(&u, sid), 8);
    }

    /* a key is no key in another user's session (see the BOLA test for
     * the same session name) */
    {
        struct user o = user_new("idem-other");
        const char *osid = uniq("o");

        (void)create(&o, str("{\"session_id\":\"%s\"}", osid));
        m = append(&o, osid, keyed);
        ck_assert_int_eq(jint(m, "seq"), 1);
        ck_assert_str_eq(jstr(m, "content"), "first");
    }
    ck_assert_int_eq(count_of(&u, sid), 8);
}
END_TEST

/* ====================================================================== */
/* batch */

START_TEST(test_message_batch)
{
    struct user u = user_new("batch");
    const char *sid = uniq("b");
    const struct json_value *items, *again, *single;
    struct resp r;
    int64_t n;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    (void)say(&u, sid, "system", "zero");

    /* 201, in order, consecutive seqs after what is there */
    items = batch(&u, sid, 3,
                  "{\"role\":\"user\",\"content\":\"b0\"},"
                  "{\"role\":\"assistant\",\"content\":\"b1\","
                  "\"tool_call_id\":\"c\",\"extra_data\":[1]},"
                  "{\"role\":\"tool\",\"content\":\"b2\",\"tool_call_id\":"
                  "\"c\",\"tool_name\":\"t\"}");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(jint(items->u.a.items[i], "seq"), 2 + i);
        ck_assert_str_eq(jstr(items->u.a.items[i], "content"), str("b%d", i));
    }
    ck_assert_str_eq(jstr(items->u.a.items[1], "role"), "assistant");
    expect_json(json_get(items->u.a.items[1], "extra_data"), "[1]");
    ck_assert_str_eq(jstr(items->u.a.items[2], "tool_name"), "t");
    for (int i = 0; i < 3; i++) {
        r = api(&u, "GET", msg_path(sid, jstr(items->u.a.items[i], "id")),
                NULL);
        expect_same_message(expect_message(r, 200, sid), items->u.a.items[i]);
    }
    n = 4;
    ck_assert_int_eq(count_of(&u, sid), n);

    /* one bad message: 400 naming it, nothing stored */
    {
        static const struct {
            const char *item, *param;
        } bad[] = {
            {"{\"role\":\"robot\",\"content\":\"x\"}", "messages[3].role"},
            {"{\"content\":\"x\"}", "messages[3].role"},
            {"{\"role\":\"user\",\"content\":5}", "messages[3].content"},
            {"{\"role\":\"user\"}", "messages[3].content"},
            {"{\"role\":\"user\",\"content\":\"x\",\"tool_name\":1}",
             "messages[3].tool_name"},
            {"{\"role\":\"user\",\"content\":\"x\",\"extra_data\":"
             "{\"$x\":1}}",
             "messages[3].extra_data"},
            {"{\"role\":\"user\",\"content\":\"x\",\"client_message_id\":"
             "\"a b\"}",
             "messages[3].client_message_id"},
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            r = api(&u, "POST", msgs_path(sid),
                    str("{\"messages\":[%s,%s,%s]}", msg_items(3, "user", "ok"),
                        bad[i].item, msg_items(2, "user", "ok")));
            assert_error(r, 400, "validation_error", bad[i].param);
        }
        r = api(&u, "POST", msgs_path(sid),
                str("{\"messages\":[%s,{\"role\":\"user\",\"content\":\"x\","
                    "\"seq\":1}]}",
                    msg_items(3, "user", "ok")));
        assert_error(r, 400, ANY, "messages[3].seq");
        r = api(&u, "POST", msgs_path(sid),
                str("{\"messages\":[%s,7]}", msg_items(3, "user", "ok")));
        assert_error(r, 400, ANY, "messages[3]");
        r = api(&u, "POST", msgs_path(sid),
                str("{\"messages\":[%s,{\"role\":\"user\",\"content\":\"%s\"}]"
                    "}",
                    msg_items(3, "user", "ok"), rep("x", 512 * 1024 + 1)));
        assert_error(r, 400, "validation_error", "messages[3].content");
    }
    ck_assert_int_eq(count_of(&u, sid), n);

    /* 1..100 messages */
    r = api(&u, "POST", msgs_path(sid),
            str("{\"messages\":[%s]}", msg_items(101, "user", "m")));
    assert_error(r, 400, "validation_error", "messages");
    r = api(&u, "POST", msgs_path(sid), "{\"messages\":[]}");
    assert_error(r, 400, "validation_error", "messages");
    ck_assert_int_eq(count_of(&u, sid), n);
    items = batch(&u, sid, 100, msg_items(100, "user", "m"));
    ck_assert_int_eq(jint(items->u.a.items[0], "seq"), n + 1);
    ck_assert_int_eq(jint(items->u.a.items[99], "seq"), n + 100);
    n += 100;
    ck_assert_int_eq(count_of(&u, sid), n);

    /* the body's shape */
    {
        static const struct {
            const char *body;
            const char *param;
        } cases[] = {
            {"{\"messages\":{}}", "messages"},
            {"{\"messages\":null}", "messages"},
            {"{\"messages\":\"x\"}", "messages"},
            {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
             "\"x\":1}",
             "x"},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            r = api(&u, "POST", msgs_path(sid), cases[i].body);
            assert_error(r, 400, ANY, cases[i].param);
        }
        r = api(&u, "POST", msgs_path(sid),
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"role\":\"user\",\"content\":\"y\"}");
        assert_error(r, 400, ANY, ANY);
        /* Idempotency-Key is for a single message */
        r = api_h(&u, "POST", msgs_path(sid), "Idempotency-Key: batch",
                  str("{\"messages\":[%s]}", msg_items(2, "user", "h")));
        assert_error(r, 400, ANY, ANY);
    }
    ck_assert_int_eq(count_of(&u, sid), n);

    /* keyed batch: a replay answers 200 with the stored items */
    {
        const char *body =
            "{\"messages\":[{\"role\":\"user\",\"content\":\"k1\","
            "\"client_message_id\":\"bk-1\"},{\"role\":\"assistant\","
            "\"content\":\"k2\",\"client_message_id\":\"bk-2\"}]}";

        r = api(&u, "POST", msgs_path(sid), body);
        items = batch_items_at(__LINE__, &r, 201, sid, 2);
        ck_assert_int_eq(jint(items->u.a.items[0], "seq"), n + 1);
        n += 2;
        r = api(&u, "POST", msgs_path(sid), body);
        again = batch_items_at(__LINE__, &r, 200, sid, 2);
        for (int i = 0; i < 2; i++)
            expect_same_message(again->u.a.items[i], items->u.a.items[i]);
        ck_assert_int_eq(count_of(&u, sid), n);

        /* partly stored: 409, and nothing of it stored */
        r = api(&u, "POST", msgs_path(sid),
                "{\"messages\":[{\"role\":\"user\",\"content\":\"k1\","
                "\"client_message_id\":\"bk-1\"},{\"role\":\"user\","
                "\"content\":\"k3\",\"client_message_id\":\"bk-3\"}]}");
        assert_error(r, 409, "conflict", ANY);
        ck_assert_int_eq(count_of(&u, sid), n);
        single = append(&u, sid,
                        "{\"role\":\"user\",\"content\":\"k3\","
                        "\"client_message_id\":\"bk-3\"}");
        ck_assert_int_eq(jint(single, "seq"), n + 1);
        n++;

        /* a batch of keys stored one by one replays too */
        r = api(&u, "POST", msgs_path(sid),
                "{\"messages\":[{\"role\":\"user\",\"content\":\"k3\","
                "\"client_message_id\":\"bk-3\"}]}");
        again = batch_items_at(__LINE__, &r, 200, sid, 1);
        expect_same_message(again->u.a.items[0], single);
        ck_assert_int_eq(count_of(&u, sid), n);

        /* keys are unique within a batch */
        r = api(&u, "POST", msgs_path(sid),
                "{\"messages\":[{\"role\":\"user\",\"content\":\"d1\","
                "\"client_message_id\":\"dup\"},{\"role\":\"user\","
                "\"content\":\"d2\",\"client_message_id\":\"dup\"}]}");
        assert_error(r, 400, ANY, ANY);
        ck_assert_int_eq(count_of(&u, sid), n);
        r = api(&u, "POST", msgs_path(sid),
                "{\"role\":\"user\",\"content\":\"d\","
                "\"client_message_id\":\"dup\"}");
        ck_assert_int_eq(jint(expect_message(r, 201, sid), "seq"), n + 1);
        n++;
    }

    /* the list agrees */
    {
        const struct json_value **all = all_messages(&u, sid, (size_t)n);

        for (int64_t i = 0; i < n; i++)
            ck_assert_int_eq(jint(all[i], "seq"), i + 1);
    }
    r = api(&u, "POST", msgs_path(uniq("none")),
            str("{\"messages\":[%s]}", msg_items(1, "user", "x")));
    assert_error(r, 404, "not_found", ANY);
}
END_TEST

/* ====================================================================== */
/* context */

/* The context response: {"items":[...],"tokens":n,"has_more":false};
 * the items' seqs are exactly `seqs` and tokens their sum. */
#define expect_context(r, sid, seqs)                                           \
    expect_context_at(__LINE__, &(r), (sid), (seqs))

static const struct json_value *
expect_context_at(int line, const struct resp *r, const char *sid,
                  const char *seqs)
{
    const struct json_value *items;
    int64_t sum = 0;

    expect_status_at(line, r, 200);
    ck_assert_msg(r->json != NULL && r->json->type == JSON_OBJECT &&
                      r->json->u.o.len == 3 && !jbool(r->json, "has_more"),
                  "line %d: context body %.300s", line, r->body);
    items = jarr(r->json, "items");
    for (size_t i = 0; i < items->u.a.len; i++) {
        check_message_at(line, items->u.a.items[i], sid);
        sum += tokens_of(jstr(items->u.a.items[i], "content"));
    }
    ck_assert_msg(strcmp(seq_text(items), seqs) == 0,
                  "line %d: %.200s: seqs [%s], want [%s]", line, r->target,
                  seq_text(items), seqs);
    ck_assert_msg(jint(r->json, "tokens") == sum,
                  "line %d: %.200s: tokens %lld, want %lld", line, r->target,
                  (long long)jint(r->json, "tokens"), (long long)sum);
    return items;
}

START_TEST(test_context_bounds)
{
    struct user u = user_new("context");
    const char *sid = uniq("ctx");
    /* tokens: 1, 20, 5, 8 (16 x 2-byte characters: bytes count, not
     * characters), 3, 1 = 38 */
    const char *contents[] = {
        "abcd",      rep("y", 80), rep("z", 17), rep("\xc3\xa9", 16),
        "123456789", "!",
    };
    static const struct {
        const char *query;
        const char *seqs;
        int64_t tokens;
    } cases[] = {
        {"", "1 2 3 4 5 6", 38},
        {"limit=20&max_tokens=4000", "1 2 3 4 5 6", 38},
        {"limit=3", "4 5 6", 12},
        {"limit=1", "6", 1},
        {"limit=200", "1 2 3 4 5 6", 38},
        {"max_tokens=38", "1 2 3 4 5 6", 38},
        {"max_tokens=37", "2 3 4 5 6", 37},
        /* the run is unbroken: message 1 would fit, but 2 does not */
        {"max_tokens=36", "3 4 5 6", 17},
        {"max_tokens=17", "3 4 5 6", 17},
        {"max_tokens=16", "4 5 6", 12},
        {"max_tokens=12", "4 5 6", 12},
        {"max_tokens=11", "5 6", 4},
        {"max_tokens=4", "5 6", 4},
        {"max_tokens=3", "6", 1},
        {"max_tokens=1", "6", 1},
        {"max_tokens=10000000", "1 2 3 4 5 6", 38},
        {"limit=2&max_tokens=100", "5 6", 4},
        {"limit=5&max_tokens=17", "3 4 5 6", 17},
        {"limit=5&max_tokens=1000", "2 3 4 5 6", 37},
        {"max_tokens=12&limit=2", "5 6", 4},
    };
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api(&u, "GET", sub_path(sid, "context"), NULL);
    expect_status(r, 200);
    expect_json(r.json, EMPTY_CONTEXT);
    for (size_t i = 0; i < 6; i++)
        (void)say(&u, sid, i % 2 ? "assistant" : "user", contents[i]);
    ck_assert_int_eq(tokens_of(contents[3]), 8);

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct json_value *items;

        r = api(&u, "GET",
                str("%s%s%s", sub_path(sid, "context"),
                    cases[c].query[0] ? "?" : "", cases[c].query),
                NULL);
        items = expect_context(r, sid, cases[c].seqs);
        ck_assert_msg(jint(r.json, "tokens") == cases[c].tokens,
                      "%s: tokens %lld, want %lld", cases[c].query,
                      (long long)jint(r.json, "tokens"),
                      (long long)cases[c].tokens);
        /* the items are the stored messages */
        for (size_t i = 0; i < items->u.a.len; i++) {
            const struct json_value *it = items->u.a.items[i];
            struct resp g = api(&u, "GET", msg_path(sid, jstr(it, "id")), NULL);

            expect_same_message(expect_message(g, 200, sid), it);
        }
    }

    /* a newest message bigger than max_tokens: nothing fits */
    {
        const char *sid2 = uniq("ctx2");
        const struct json_value *empty;

        (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
        (void)say(&u, sid2, "user", rep("w", 40)); /* 10 tokens */
        r = api(&u, "GET", str("%s?max_tokens=9", sub_path(sid2, "context")),
                NULL);
        expect_context(r, sid2, "");
        expect_json(r.json, EMPTY_CONTEXT);
        r = api(&u, "GET", str("%s?max_tokens=10", sub_path(sid2, "context")),
                NULL);
        expect_context(r, sid2, "1");
        ck_assert_int_eq(jint(r.json, "tokens"), 10);
        /* an empty content costs nothing */
        empty = say(&u, sid2, "assistant", "");
        r = api(&u, "GET", str("%s?max_tokens=9", sub_path(sid2, "context")),
                NULL);
        expect_context(r, sid2, "2");
        ck_assert_int_eq(jint(r.json, "tokens"), 0);
        r = api(&u, "GET", str("%s?max_tokens=10", sub_path(sid2, "context")),
                NULL);
        expect_context(r, sid2, "1 2");
        /* a deleted message is no gap in the run */
        (void)say(&u, sid2, "user", "tail");
        r = api(&u, "DELETE", msg_path(sid2, jstr(empty, "id")), NULL);
        expect_status(r, 204);
        r = api(&u, "GET", str("%s?limit=2", sub_path(sid2, "context")), NULL);
        expect_context(r, sid2, "1 3");
    }

    /* bad bounds */
    {
        static const struct {
            const char *query, *param;
        } bad[] = {
            {"limit=0", "limit"},
            {"limit=201", "limit"},
            {"limit=-1", "limit"},
            {"limit=abc", "limit"},
            {"limit=", "limit"},
            {"max_tokens=0", "max_tokens"},
            {"max_tokens=10000001", "max_tokens"},
            {"max_tokens=-5", "max_tokens"},
            {"max_tokens=x", "max_tokens"},
            {"max_tokens=1.5", "max_tokens"},
            {"limit=1&limit=2", "limit"},
            {"offset=1", "offset"},
            {"foo=1", "foo"},
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            r = api(&u, "GET",
                    str("%s?%s", sub_path(sid, "context"), bad[i].query), NULL);
            assert_error(r, 400, "validation_error", bad[i].param);
        }
    }
    r = api(&u, "GET", sub_path(uniq("none"), "context"), NULL);
    assert_error(r, 404, "not_found", ANY);
}
END_TEST

START_TEST(test_context_tool_pairs)
{
    struct user u = user_new("toolpair");
    const char *sid = uniq("tp");
    static const char *const msgs[] = {
        /* 1: calls A through tool_call_id */
        "{\"role\":\"assistant\",\"content\":\"calling A\","
        "\"tool_call_id\":\"call_A\"}",
        /* 2: answers A */
        "{\"role\":\"tool\",\"content\":\"result A\",\"tool_call_id\":"
        "\"call_A\",\"tool_name\":\"a\"}",
        /* 3: calls B and C through extra_data.tool_calls[].id */
        "{\"role\":\"assistant\",\"content\":\"calling B and C\","
        "\"extra_data\":{\"tool_calls\":[{\"id\":\"call_B\",\"type\":"
        "\"function\"},{\"id\":\"call_C\"}]}}",
        /* 4, 5: answer B and C */
        "{\"role\":\"tool\",\"content\":\"result B\",\"tool_call_id\":"
        "\"call_B\"}",
        "{\"role\":\"tool\",\"content\":\"result C\",\"tool_call_id\":"
        "\"call_C\"}",
        /* 6: answers a call nobody made */
        "{\"role\":\"tool\",\"content\":\"orphan\",\"tool_call_id\":"
        "\"call_X\"}",
        /* 7: a user message's tool_call_id is no call */
        "{\"role\":\"user\",\"content\":\"thanks\",\"tool_call_id\":"
        "\"call_U\"}",
        /* 8: so this is dropped */
        "{\"role\":\"tool\",\"content\":\"fake\",\"tool_call_id\":"
        "\"call_U\"}",
        /* 9: nor does a tool message's own extra_data call */
        "{\"role\":\"tool\",\"content\":\"self\",\"tool_call_id\":"
        "\"call_T\",\"extra_data\":{\"tool_calls\":[{\"id\":\"call_T\"}]}}",
        /* 10: nor a user's extra_data */
        "{\"role\":\"user\",\"content\":\"u calls\",\"extra_data\":"
        "{\"tool_calls\":[{\"id\":\"call_V\"}]}}",
        /* 11: so this is dropped too */
        "{\"role\":\"tool\",\"content\":\"answers V\",\"tool_call_id\":"
        "\"call_V\"}",
        /* 12: the end */
        "{\"role\":\"assistant\",\"content\":\"done\"}",
    };
    enum { N = sizeof msgs / sizeof msgs[0] };
    int64_t tok[N + 1];
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int i = 0; i < N; i++) {
        const struct json_value *m = append(&u, sid, msgs[i]);

        ck_assert_int_eq(jint(m, "seq"), i + 1);
        tok[i + 1] = tokens_of(jstr(m, "content"));
    }

    /* everything in the run: the orphans go */
    r = api(&u, "GET", sub_path(sid, "context"), NULL);
    expect_context(r, sid, "1 2 3 4 5 7 10 12");
    /* the run starts at 2: A's call fell outside, so 2 goes */
    r = api(&u, "GET", str("%s?limit=11", sub_path(sid, "context")), NULL);
    expect_context(r, sid, "3 4 5 7 10 12");
    /* the run starts at 4: B's and C's calls fell outside */
    r = api(&u, "GET", str("%s?limit=9", sub_path(sid, "context")), NULL);
    expect_context(r, sid, "7 10 12");
    /* the same cut by max_tokens: the dropped ones still took their
     * place in the run, but not in "tokens" */
    {
        int64_t from2 = 0, from4 = 0;

        for (int i = 2; i <= N; i++)
            from2 += tok[i];
        for (int i = 4; i <= N; i++)
            from4 += tok[i];
        r = api(&u, "GET",
                str("%s?max_tokens=%lld", sub_path(sid, "context"),
                    (long long)from2),
                NULL);
        expect_context(r, sid, "3 4 5 7 10 12");
        r = api(&u, "GET",
                str("%s?max_tokens=%lld", sub_path(sid, "context"),
                    (long long)(from4 + tok[3] - 1)),
                NULL);
        expect_context(r, sid, "7 10 12");
    }
    /* a call in the run but after its answer still counts */
    {
        const char *sid2 = uniq("tp2");

        (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
        (void)append(&u, sid2,
                     "{\"role\":\"tool\",\"content\":\"early\","
                     "\"tool_call_id\":\"call_L\"}");
        (void)append(&u, sid2,
                     "{\"role\":\"assistant\",\"content\":\"late call\","
                     "\"extra_data\":{\"tool_calls\":[{\"id\":\"call_L\"}]}}");
        r = api(&u, "GET", sub_path(sid2, "context"), NULL);
        expect_context(r, sid2, "1 2");
    }
}
END_TEST

/* ====================================================================== */
/* conversation */

static const char *const conversation_fields[] = {
    "session_id",     "session_uuid",   "response",
    "messages_count", "session_active", "message",
};

#define expect_conversation(r) expect_conversation_at(__LINE__, &(r))

static const struct json_value *
expect_conversation_at(int line, const struct resp *r)
{
    const struct json_value *c = r->json;

    expect_status_at(line, r, 200);
    ck_assert_msg(c != NULL && c->type == JSON_OBJECT && c->u.o.len == 6,
                  "line %d: conversation body %.400s", line, r->body);
    for (size_t i = 0; i < 6; i++)
        ck_assert_msg(json_get(c, conversation_fields[i]) != NULL,
                      "line %d: conversation has no %s: %.400s", line,
                      conversation_fields[i], r->body);
    (void)jstr(c, "session_id");
    ck_assert_msg(is_uuid(jstr(c, "session_uuid")), "line %d: session_uuid %s",
                  line, jstr(c, "session_uuid"));
    (void)jstr(c, "response");
    (void)jint(c, "messages_count");
    ck_assert_msg(jbool(c, "session_active"), "line %d: session_active false",
                  line);
    /* the stored reply */
    {
        const struct json_value *m = jobj(c, "message");

        ck_assert_msg(is_uuid(jstr(m, "id")), "line %d", line);
        ck_assert_str_eq(jstr(m, "session_id"), jstr(c, "session_id"));
        ck_assert_str_eq(jstr(m, "role"), "assistant");
        ck_assert_str_eq(jstr(m, "content"), jstr(c, "response"));
        ck_assert_msg(jint(m, "seq") >= jint(c, "messages_count"), "line %d",
                      line);
        ck_assert_msg(jis_null(m, "extra_data"), "line %d", line);
    }
    return c;
}

#define CONVERSATION SESSIONS "/conversation"

START_TEST(test_conversation)
{
    struct user u = user_new("conv");
    const char *sid = uniq("cv");
    const struct json_value *c, *s, **all;
    const char *uuid;
    struct resp r;

    /* no session_id: a new session named by its UUID */
    r = api(&u, "POST", CONVERSATION,
            str("{\"messages\":[%s]}", msg_json("user", "Hi there")));
    c = expect_conversation(r);
    ck_assert_str_eq(jstr(c, "response"),
                     "This is a mock response to: Hi there");
    ck_assert_int_eq(jint(c, "messages_count"), 2);
    ck_assert_str_eq(jstr(c, "session_id"), jstr(c, "session_uuid"));
    s = get_session(&u, jstr(c, "session_id"));
    ck_assert_str_eq(jstr(s, "id"), jstr(c, "session_uuid"));
    ck_assert_int_eq(jint(s, "message_count"), 2);
    ck_assert_str_eq(jstr(s, "status"), "active");
    all = all_messages(&u, jstr(c, "session_id"), 2);
    ck_assert_str_eq(jstr(all[0], "role"), "user");
    ck_assert_str_eq(jstr(all[0], "content"), "Hi there");
    ck_assert_str_eq(jstr(all[1], "role"), "assistant");
    ck_assert_str_eq(jstr(all[1], "content"),
                     "This is a mock response to: Hi there");
    /* a second one without session_id is another session */
    r = api(&u, "POST", CONVERSATION,
            str("{\"messages\":[%s]}", msg_json("user", "Hi there")));
    ck_assert_str_ne(jstr(expect_conversation(r), "session_uuid"),
                     jstr(c, "session_uuid"));

    /* a new session_id: created with the names given; the reply answers
     * the last user message */
    r = api(&u, "POST", CONVERSATION,
            str("{\"session_id\":\"%s\",\"session_name\":\"Planning\","
                "\"agent_name\":\"Planner\",\"agent_instructions\":\"Be "
                "brief.\",\"messages\":[%s,%s,%s,%s]}",
                sid, msg_json("system", "be nice"), msg_json("user", "first"),
                msg_json("assistant", "ok"),
                msg_json("user", "second \"quoted\" caf\xc3\xa9")));
    c = expect_conversation(r);
    ck_assert_str_eq(jstr(c, "session_id"), sid);
    ck_assert_str_eq(jstr(c, "response"),
                     "This is a mock response to: second \"quoted\" "
                     "caf\xc3\xa9");
    ck_assert_int_eq(jint(c, "messages_count"), 5);
    uuid = jstr(c, "session_uuid");
    s = get_session(&u, sid);
    ck_assert_str_eq(jstr(s, "id"), uuid);
    ck_assert_str_eq(jstr(s, "session_name"), "Planning");
    ck_assert_str_eq(jstr(s, "agent_name"), "Planner");
    ck_assert_str_eq(jstr(s, "agent_instructions"), "Be brief.");
    ck_assert_int_eq(jint(s, "message_count"), 5);
    ck_assert_int_eq(jint(s, "version"), 1);
    all = all_messages(&u, sid, 5);
    {
        static const char *const roles[] = {"system", "user", "assistant",
                                            "user", "assistant"};

        for (int i = 0; i < 5; i++) {
            ck_assert_int_eq(jint(all[i], "seq"), i + 1);
            ck_assert_str_eq(jstr(all[i], "role"), roles[i]);
        }
        ck_assert_str_eq(jstr(all[4], "content"), jstr(c, "response"));
    }

    /* the same session_id again: reused, names untouched */
    r = api(&u, "POST", CONVERSATION,
            str("{\"session_id\":\"%s\",\"session_name\":\"Other\","
                "\"agent_name\":\"Other\",\"messages\":[%s]}",
                sid, msg_json("user", "third")));
    c = expect_conversation(r);
    ck_assert_str_eq(jstr(c, "session_uuid"), uuid);
    ck_assert_str_eq(jstr(c, "response"), "This is a mock response to: third");
    ck_assert_int_eq(jint(c, "messages_count"), 7);
    s = get_session(&u, sid);
    ck_assert_str_eq(jstr(s, "session_name"), "Planning");
    ck_assert_str_eq(jstr(s, "agent_name"), "Planner");
    ck_assert_int_eq(jint(s, "message_count"), 7);
    r = api(&u, "GET", str("%s?after_seq=5", msgs_path(sid)), NULL);
    expect_mlist_m(r, sid, 7, 2, 50, 0, "6 7");

    /* a session made through the API, with messages of its own */
    {
        const char *sid2 = uniq("cv2");

        (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
        (void)say(&u, sid2, "user", "earlier");
        r = api(&u, "POST", CONVERSATION,
                str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid2,
                    msg_json("user", "now")));
        c = expect_conversation(r);
        ck_assert_int_eq(jint(c, "messages_count"), 3);
        ck_assert_int_eq(count_of(&u, sid2), 3);
    }

    /* no user message: the reply's tail is empty */
    r = api(&u, "POST", CONVERSATION,
            str("{\"session_id\":\"%s\",\"messages\":[%s]}", uniq("cv3"),
                msg_json("system", "system only")));
    c = expect_conversation(r);
    ck_assert_str_eq(jstr(c, "response"), "This is a mock response to: ");
    ck_assert_int_eq(jint(c, "messages_count"), 2);

    /* a session that is not active: 409, nothing stored */
    {
        static const char *const states[] = {"inactive", "completed",
                                             "expired"};

        for (size_t i = 0; i < 3; i++) {
            const char *sid3 = uniq(states[i]);

            (void)create_in_state(&u, sid3, states[i], "");
            r = api(&u, "POST", CONVERSATION,
                    str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid3,
                        msg_json("user", "anyone?")));
            assert_error(r, 409, "conflict", ANY);
            ck_assert_int_eq(count_of(&u, sid3), 0);
        }
    }
}
END_TEST

/* The echo backend streams too, and a turn's key makes it idempotent. */
START_TEST(test_conversation_stream_and_replay)
{
    struct user u = user_new("convstream");
    const char *sid = uniq("cvs");
    const char *body = str("{\"session_id\":\"%s\",\"stream\":true,"
                           "\"client_message_id\":\"t-1\",\"messages\":[%s]}",
                           sid, msg_json("user", "Hi \"there\""));
    const char *hdrs[] = {str("Authorization: Bearer %s", u.token), JSON_CT,
                          NULL};
    struct e2e_http_request req;
    struct e2e_http_response raw;
    const char *done, *want_delta;
    const struct json_value *c;
    struct resp r;

    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.target = CONVERSATION;
    req.headers = hdrs;
    req.body = body;
    req.body_len = strlen(body);
    req.source = case_source(tc.nreq++);
    ck_assert_int_eq(e2e_http_do(&env.client, &req, &raw), 0);
    ck_assert_int_eq(raw.status, 200);
    ck_assert_str_eq(e2e_http_header(&raw, "Content-Type"),
                     "text/event-stream");
    want_delta = "event: delta\ndata: {\"content\":\"This is a mock "
                 "response to: Hi \\\"there\\\"\"}\n\nevent: done\ndata: ";
    ck_assert_msg(strncmp(raw.body, want_delta, strlen(want_delta)) == 0,
                  "stream %.400s", raw.body);
    done = raw.body + strlen(want_delta);
    ck_assert_msg(raw.body_len > strlen(want_delta) + 2 &&
                      strcmp(raw.body + raw.body_len - 2, "\n\n") == 0,
                  "stream %.400s", raw.body);
    c = parse(str("%.*s", (int)strlen(done) - 2, done));
    ck_assert_str_eq(jstr(c, "response"), "This is a mock response to: Hi "
                                          "\"there\"");
    ck_assert_int_eq(jint(c, "messages_count"), 2);
    ck_assert_str_eq(jstr(jobj(c, "message"), "content"), jstr(c, "response"));
    e2e_http_response_release(&raw);

    /* the same key again, not streamed: the stored turn, nothing new */
    r = api(&u, "POST", CONVERSATION,
            str("{\"session_id\":\"%s\",\"client_message_id\":\"t-1\","
                "\"messages\":[%s]}",
                sid, msg_json("user", "something else")));
    expect_json(expect_conversation(r), json_text(c));
    ck_assert_int_eq(count_of(&u, sid), 2);
    /* a key on a message is refused: a turn has one, beside messages */
    r = api(&u, "POST", CONVERSATION,
            str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"x\",\"client_message_id\":\"k\"}]}",
                sid));
    assert_error(r, 400, "validation_error", "messages[0].client_message_id");
    ck_assert_int_eq(count_of(&u, sid), 2);
}
END_TEST

START_TEST(test_conversation_rules)
{
    struct user u = user_new("convrules");
    const char *sid = uniq("cv");
    const char *ok = msg_json("user", "x");
    const struct {
        const char *body;
        const char *code;
        const char *param;
    } cases[] = {
        {"{}", "validation_error", "messages"},
        {str("{\"session_id\":\"%s\"}", sid), "validation_error", "messages"},
        {str("{\"session_id\":\"%s\",\"messages\":[]}", sid),
         "validation_error", "messages"},
        {str("{\"session_id\":\"%s\",\"messages\":\"hi\"}", sid),
         "validation_error", "messages"},
        {str("{\"session_id\":\"%s\",\"messages\":{}}", sid),
         "validation_error", "messages"},
        {str("{\"session_id\":\"%s\",\"messages\":[%s]}", sid,
             msg_items(101, "user", "m")),
         "validation_error", "messages"},
        {str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"bogus\","
             "\"content\":\"x\"}]}",
             sid),
         "validation_error", "messages[0].role"},
        {str("{\"session_id\":\"%s\",\"messages\":[%s,{\"role\":\"user\"}]}",
             sid, ok),
         "validation_error", "messages[1].content"},
        {str("{\"session_id\":\"%s\",\"messages\":[%s,{\"role\":\"user\","
             "\"content\":\"x\",\"extra_data\":{\"$x\":1}}]}",
             sid, ok),
         "validation_error", "messages[1].extra_data"},
        {str("{\"session_id\":\"%s\",\"messages\":[%s],\"foo\":1}", sid, ok),
         "unknown_field", "foo"},
        {str("{\"session_id\":\"%s\",\"messages\":[%s],\"user_id\":\"x\"}", sid,
             ok),
         "unknown_field", "user_id"},
        {str("{\"session_id\":\"stats\",\"messages\":[%s]}", ok),
         "validation_error", "session_id"},
        {str("{\"session_id\":\"conversation\",\"messages\":[%s]}", ok),
         "validation_error", "session_id"},
        {str("{\"session_id\":\"bad id\",\"messages\":[%s]}", ok),
         "validation_error", "session_id"},
        {str("{\"session_id\":\"\",\"messages\":[%s]}", ok), "validation_error",
         "session_id"},
        {str("{\"session_id\":\"%s\",\"messages\":[%s]}", rep("s", 256), ok),
         "validation_error", "session_id"},
        {str("{\"session_id\":5,\"messages\":[%s]}", ok), "validation_error",
         "session_id"},
        {str("{\"session_id\":{\"$ne\":null},\"messages\":[%s]}", ok),
         "validation_error", "session_id"},
        {str("{\"session_id\":\"%s\",\"session_name\":5,\"messages\":[%s]}",
             sid, ok),
         "validation_error", "session_name"},
        {str("{\"session_id\":\"%s\",\"session_name\":\"%s\",\"messages\":"
             "[%s]}",
             sid, rep("n", 256), ok),
         "validation_error", "session_name"},
        {str("{\"session_id\":\"%s\",\"agent_name\":[],\"messages\":[%s]}", sid,
             ok),
         "validation_error", "agent_name"},
        {str("{\"session_id\":\"%s\",\"agent_instructions\":\"%s\","
             "\"messages\":[%s]}",
             sid, rep("i", 65537), ok),
         "validation_error", "agent_instructions"},
    };
    struct resp r;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = api(&u, "POST", CONVERSATION, cases[i].body);
        assert_error(r, 400, cases[i].code, cases[i].param);
        /* a refused conversation leaves nothing behind */
        r = api(&u, "GET", session_path(sid), NULL);
        ck_assert_msg(r.status == 404,
                      "conversation #%zu answered 400 but made session %s "
                      "(GET: %d): %.200s",
                      i, sid, r.status, cases[i].body);
    }
    r = api(&u, "POST", CONVERSATION, "{\"messages\":[");
    assert_error(r, 400, "invalid_json", NULL);
    r = api(&u, "POST", CONVERSATION, "[]");
    assert_error(r, 400, ANY, ANY);
    {
        const char *body = str("{\"messages\":[%s]}", ok);

        r = send_raw(&u, "POST", CONVERSATION,
                     (const char *[]){"Content-Type: text/plain", NULL}, body,
                     strlen(body));
        assert_error(r, 415, "unsupported_media_type", ANY);
    }
    /* none of them made a session */
    r = api(&u, "GET", session_path(sid), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
    /* and an unauthenticated one is 401 */
    r = send_raw(NULL, "POST", CONVERSATION, (const char *[]){JSON_CT, NULL},
                 str("{\"messages\":[%s]}", ok),
                 strlen(str("{\"messages\":[%s]}", ok)));
    assert_error(r, 401, "unauthorized", ANY);
}
END_TEST

/* ====================================================================== */
/* memory */

START_TEST(test_memory)
{
    struct user u = user_new("memory");
    const char *sid = uniq("mem");
    static const char *const values[] = {
        "{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":\"x\"}",
        "[1,\"two\",null,true,{\"k\":[]}]",
        "\"a string\"",
        "42",
        "-1.5",
        "true",
        "false",
        "null",
        "{}",
        "[]",
        "\"\"",
        "{\"a$b\":\"$gt\",\"x\":{\"y\":\"a.b\"}}",
    };
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = api(&u, "GET", sub_path(sid, "memory"), NULL);
    expect_status(r, 200);
    expect_json(r.json, EMPTY_MEMORY);
    r = api(&u, "GET", mem_path(sid, "unset"), NULL);
    assert_error(r, 404, "not_found", ANY);

    /* any JSON value round trips */
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const char *key = str("v%zu", i);
        const char *want = str("{\"key\":\"%s\",\"value\":%s}", key, values[i]);

        r = api(&u, "PUT", mem_path(sid, key), values[i]);
        expect_status(r, 200);
        expect_json(r.json, want);
        r = api(&u, "GET", mem_path(sid, key), NULL);
        expect_status(r, 200);
        expect_json(r.json, want);
    }

    /* PUT replaces */
    r = api(&u, "PUT", mem_path(sid, "v0"), "7");
    expect_status(r, 200);
    expect_json(r.json, "{\"key\":\"v0\",\"value\":7}");
    r = api(&u, "GET", mem_path(sid, "v0"), NULL);
    expect_json(r.json, "{\"key\":\"v0\",\"value\":7}");

    /* the list: every key, sorted */
    {
        static const char *const keys[] = {"gamma", "alpha", "delta", "beta",
                                           "Aa0._:-"};
        const struct json_value *items;
        struct buf want;

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            r = api(&u, "PUT", mem_path(sid, keys[i]), str("\"%s\"", keys[i]));
            expect_status(r, 200);
        }
        r = api(&u, "GET", sub_path(sid, "memory"), NULL);
        expect_status(r, 200);
        ck_assert_msg(r.json->type == JSON_OBJECT && r.json->u.o.len == 4 &&
                          !jbool(r.json, "has_more") &&
                          jis_null(r.json, "next_after"),
                      "memory list %.300s", r.body);
        items = jobj(r.json, "items");
        ck_assert_uint_eq(items->u.o.len, sizeof values / sizeof values[0] +
                                              sizeof keys / sizeof keys[0]);
        for (size_t i = 1; i < items->u.o.len; i++)
            ck_assert_msg(strcmp(items->u.o.members[i - 1].key,
                                 items->u.o.members[i].key) < 0,
                          "memory keys not sorted: %s before %s",
                          items->u.o.members[i - 1].key,
                          items->u.o.members[i].key);
        buf_init(&want);
        buf_adds(&want, "{\"v0\":7");
        for (size_t i = 1; i < sizeof values / sizeof values[0]; i++)
            buf_printf(&want, ",\"v%zu\":%s", i, values[i]);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            buf_printf(&want, ",\"%s\":\"%s\"", keys[i], keys[i]);
        buf_adds(&want, "}");
        expect_json(items, want.data);
        buf_release(&want);
    }

    /* DELETE: 204, then 404 */
    r = api(&u, "DELETE", mem_path(sid, "alpha"), NULL);
    expect_status(r, 204);
    ck_assert_uint_eq(r.body_len, 0);
    r = api(&u, "GET", mem_path(sid, "alpha"), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "DELETE", mem_path(sid, "alpha"), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&u, "GET", sub_path(sid, "memory"), NULL);
    ck_assert(json_get(jobj(r.json, "items"), "alpha") == NULL);
    ck_assert(json_get(jobj(r.json, "items"), "beta") != NULL);
    /* a key set to null is set, not deleted */
    r = api(&u, "GET", mem_path(sid, "v7"), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"key\":\"v7\",\"value\":null}");

    /* memory is per session */
    {
        const char *sid2 = uniq("mem2");

        (void)create(&u, str("{\"session_id\":\"%s\"}", sid2));
        r = api(&u, "GET", mem_path(sid2, "beta"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", sub_path(sid2, "memory"), NULL);
        expect_json(r.json, EMPTY_MEMORY);
    }

    /* no such session */
    {
        const char *none = uniq("none");

        r = api(&u, "GET", sub_path(none, "memory"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "PUT", mem_path(none, "k"), "1");
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", mem_path(none, "k"), NULL);
        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "DELETE", mem_path(none, "k"), NULL);
        assert_error(r, 404, "not_found", ANY);
    }
}
END_TEST

START_TEST(test_memory_rules)
{
    struct user u = user_new("memrules");
    const char *sid = uniq("mem");
    const char *bad_keys[] = {
        rep("k", 129), "bad!key", "a%20b", "caf%C3%A9", "%24where",
        "a,b",         "a%2Bb",   "a%40b", NULL,
    };
    const char *bad_values[] = {
        "{\"$x\":1}",
        "{\"a.b\":1}",
        "{\"\":1}",
        "{\"ok\":{\"$where\":1}}",
        "[{\"$x\":1}]",
        "{\"x\":[{\"y\":{\"a.b\":1}}]}",
        nest(17),
        str("%s1%s", rep("[", 17), rep("]", 17)),
        str("\"%s\"", rep("x", 16384 - 1)),
        str("{\"k\":\"%s\"}", rep("x", 16384 - 7)),
        NULL,
    };
    const char *good_values[] = {
        nest(16),
        str("%s1%s", rep("[", 16), rep("]", 16)),
        str("\"%s\"", rep("x", 16384 - 2)),
        str("{\"k\":\"%s\"}", rep("x", 16384 - 8)),
        NULL,
    };
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));

    /* keys: 1..128 of [A-Za-z0-9._:-] */
    r = api(&u, "PUT", mem_path(sid, rep("k", 128)), "1");
    expect_status(r, 200);
    expect_json(r.json, str("{\"key\":\"%s\",\"value\":1}", rep("k", 128)));
    for (size_t i = 0; bad_keys[i] != NULL; i++) {
        r = api(&u, "PUT", mem_path(sid, bad_keys[i]), "1");
        assert_error(r, 400, "validation_error", "key");
        r = api(&u, "GET", mem_path(sid, bad_keys[i]), NULL);
        assert_error(r, 400, "validation_error", "key");
        r = api(&u, "DELETE", mem_path(sid, bad_keys[i]), NULL);
        assert_error(r, 400, "validation_error", "key");
    }

    /* values: 16 KiB encoded, 16 deep, safe keys */
    for (size_t i = 0; good_values[i] != NULL; i++) {
        r = api(&u, "PUT", mem_path(sid, str("g%zu", i)), good_values[i]);
        expect_status(r, 200);
        expect_json(jget(r.json, "value", parse(good_values[i])->type),
                    good_values[i]);
    }
    for (size_t i = 0; bad_values[i] != NULL; i++) {
        r = api(&u, "PUT", mem_path(sid, "bad"), bad_values[i]);
        assert_error(r, 400, "validation_error", ANY);
    }
    r = api(&u, "GET", mem_path(sid, "bad"), NULL);
    assert_error(r, 404, "not_found", ANY);

    /* the body is JSON, sent as JSON */
    r = api(&u, "PUT", mem_path(sid, "bad"), "{\"a\":");
    assert_error(r, 400, "invalid_json", NULL);
    r = api(&u, "PUT", mem_path(sid, "bad"), "nope");
    assert_error(r, 400, "invalid_json", NULL);
    r = send_raw(&u, "PUT", mem_path(sid, "bad"),
                 (const char *[]){"Content-Type: text/plain", NULL}, "1", 1);
    assert_error(r, 415, "unsupported_media_type", ANY);
    r = api(&u, "PUT", mem_path(sid, "bad"),
            str("\"%s\"", rep("x", 2 * 1024 * 1024)));
    assert_error(r, 413, "payload_too_large", ANY);
    r = api(&u, "GET", mem_path(sid, "bad"), NULL);
    assert_error(r, 404, "not_found", ANY);

    /* memory writes work whatever the session's status */
    {
        static const char *const states[] = {"inactive", "completed", "expired",
                                             "failed"};

        for (size_t i = 0; i < 4; i++) {
            const char *s = uniq(states[i]);

            (void)create_in_state(&u, s, states[i], "");
            r = api(&u, "PUT", mem_path(s, "k"), "{\"ok\":true}");
            expect_status(r, 200);
            r = api(&u, "GET", mem_path(s, "k"), NULL);
            expect_json(r.json, "{\"key\":\"k\",\"value\":{\"ok\":true}}");
            r = api(&u, "DELETE", mem_path(s, "k"), NULL);
            expect_status(r, 204);
            ck_assert_str_eq(jstr(get_session(&u, s), "status"), states[i]);
        }
    }
    r = api(&u, "GET", str("%s?foo=1", sub_path(sid, "memory")), NULL);
    assert_error(r, 400, "validation_error", "foo");
}
END_TEST

/* ====================================================================== */
/* per-session metrics */

struct metrics {
    int64_t requests, errors;
    double ms;
};

static struct metrics
metrics_of(const struct json_value *s)
{
    const struct json_value *m = jobj(s, "metrics");
    const struct json_value *t = json_get(m, "total_processing_ms");
    struct metrics x;

    x.requests = jint(m, "request_count");
    x.errors = jint(m, "error_count");
    ck_assert(t != NULL && (t->type == JSON_INT || t->type == JSON_DOUBLE));
    x.ms = t->type == JSON_INT ? (double)t->u.i : t->u.d;
    return x;
}

/*
 * Metrics are written after the response, so a GET sees the requests
 * before it once they are written, never itself.  Polls the session until
 * it shows `want` requests plus the polls before this one, for up to
 * ~2.5 s; more than that is a failure at once.
 */
#define metrics_settle(u, sid, want)                                           \
    metrics_settle_at(__LINE__, (u), (sid), (want))

static struct metrics
metrics_settle_at(int line, const struct user *u, const char *sid, int64_t want)
{
    struct metrics m = {0, 0, 0};

    for (int poll = 0; poll < 25; poll++) {
        m = metrics_of(get_session_at(line, u, sid));
        ck_assert_msg(m.requests <= want + poll,
                      "line %d: request_count %lld, want %lld: requests "
                      "counted that should not be",
                      line, (long long)m.requests, (long long)(want + poll));
        if (m.requests == want + poll)
            return m;
        pause_ms(100);
    }
    ck_abort_msg("line %d: request_count %lld, want %lld after 2.5 s", line,
                 (long long)m.requests, (long long)(want + 24));
    return m;
}

START_TEST(test_metrics)
{
    struct user a = user_new("metrics-a");
    struct user b = user_new("metrics-b");
    const char *sid = uniq("mt"), *other = uniq("mt2");
    struct metrics m0, m1;
    const struct json_value *msg;
    struct resp r;
    int64_t k = 0, e = 0;

    (void)create(&a, str("{\"session_id\":\"%s\"}", sid));
    (void)create(&a, str("{\"session_id\":\"%s\"}", other));
    /* whether create counts is open: start from what the server says
     * once it is quiet (the first GET counts itself on the second) */
    pause_ms(300);
    m0 = metrics_of(get_session(&a, sid));
    m0 = metrics_settle(&a, sid, m0.requests + 1);

    /* A's requests naming the session: k of them, e failing */
    r = api(&a, "GET", msgs_path(sid), NULL);
    expect_status(r, 200);
    k++;
    r = api(&a, "POST", msgs_path(sid), msg_json("user", "counted"));
    msg = expect_message(r, 201, sid);
    k++;
    r = api(&a, "GET", msg_path(sid, jstr(msg, "id")), NULL);
    expect_status(r, 200);
    k++;
    r = api(&a, "GET", str("%s?limit=0", msgs_path(sid)), NULL);
    assert_error(r, 400, "validation_error", "limit");
    k++, e++;
    r = api(&a, "GET", msg_path(sid, fresh_uuid()), NULL);
    assert_error(r, 404, "not_found", ANY);
    k++, e++;
    r = api(&a, "POST", msgs_path(sid), msg_json("robot", "x"));
    assert_error(r, 400, "validation_error", "role");
    k++, e++;
    r = api(&a, "PUT", mem_path(sid, "k"), "1");
    expect_status(r, 200);
    k++;
    r = api(&a, "GET", mem_path(sid, "nope"), NULL);
    assert_error(r, 404, "not_found", ANY);
    k++, e++;
    r = api(&a, "GET", sub_path(sid, "context"), NULL);
    expect_status(r, 200);
    k++;
    r = api(&a, "PATCH", session_path(sid), "{\"session_name\":\"m\"}");
    expect_session(r, 200);
    k++;
    r = api(&a, "POST", sub_path(sid, "end"), "{\"status\":\"completed\"}");
    expect_session(r, 200);
    k++;
    r = api(&a, "POST", msgs_path(sid), msg_json("user", "too late"));
    assert_error(r, 409, "conflict", ANY);
    k++, e++;
    r = api(&a, "PUT", sub_path(sid, "activate"), NULL);
    assert_error(r, 409, "conflict", ANY);
    k++, e++;

    /* what does not count: other sessions, lists, and user B, even with
     * a session of the same name */
    r = api(&a, "GET", SESSIONS, NULL);
    expect_status(r, 200);
    r = api(&a, "GET", session_path(other), NULL);
    expect_status(r, 200);
    r = api(&a, "POST", msgs_path(other), msg_json("user", "elsewhere"));
    expect_status(r, 201);
    r = api(&b, "GET", session_path(sid), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "GET", msgs_path(sid), NULL);
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "POST", msgs_path(sid), msg_json("user", "B"));
    assert_error(r, 404, "not_found", ANY);
    r = api(&b, "PUT", mem_path(sid, "k"), "2");
    assert_error(r, 404, "not_found", ANY);
    (void)create(&b, str("{\"session_id\":\"%s\"}", sid));
    r = api(&b, "GET", msgs_path(sid), NULL);
    expect_status(r, 200);
    r = api(&b, "GET", str("%s?limit=0", msgs_path(sid)), NULL);
    assert_error(r, 400, "validation_error", "limit");

    /* m0 came from a poll, which counts too */
    m1 = metrics_settle(&a, sid, m0.requests + 1 + k);
    ck_assert_msg(m1.errors == m0.errors + e, "error_count %lld, want %lld",
                  (long long)m1.errors, (long long)(m0.errors + e));
    ck_assert_msg(m1.ms > 0 && m1.ms > m0.ms,
                  "total_processing_ms %.3f after %.3f", m1.ms, m0.ms);
    /* counters the server keeps do not move version */
    ck_assert_int_eq(jint(get_session(&a, sid), "version"), 3);
}
END_TEST

/* ====================================================================== */
/* methods */

START_TEST(test_message_methods)
{
    struct user u = user_new("mmethods");
    const char *sid = uniq("mm");
    const struct json_value *m;
    const char *mp;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    m = say(&u, sid, "user", "x");
    mp = msg_path(sid, jstr(m, "id"));
    {
        const struct {
            const char *method, *path, *allow;
        } cases[] = {
            {"PUT", msgs_path(sid), "GET, POST"},
            {"DELETE", msgs_path(sid), "GET, POST"},
            {"PATCH", msgs_path(sid), "GET, POST"},
            {"POST", mp, "GET, PATCH, DELETE"},
            {"PUT", mp, "GET, PATCH, DELETE"},
            {"GET", sub_path(sid, "clear-messages"), "DELETE"},
            {"POST", sub_path(sid, "clear-messages"), "DELETE"},
            {"POST", sub_path(sid, "context"), "GET"},
            {"DELETE", sub_path(sid, "context"), "GET"},
            {"POST", sub_path(sid, "memory"), "GET"},
            {"DELETE", sub_path(sid, "memory"), "GET"},
            {"POST", mem_path(sid, "k"), "GET, PUT, DELETE"},
            {"PATCH", mem_path(sid, "k"), "GET, PUT, DELETE"},
            {"GET", CONVERSATION, "POST"},
            {"DELETE", CONVERSATION, "POST"},
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const char *body = strcmp(cases[i].method, "GET") == 0 ||
                                       strcmp(cases[i].method, "DELETE") == 0
                                   ? NULL
                                   : "{}";
            struct resp r = api(&u, cases[i].method, cases[i].path, body);

            assert_error(r, 405, "method_not_allowed", ANY);
            ck_assert_msg(allow_same(hdr(&r, "Allow"), cases[i].allow),
                          "%s %s: Allow: %s, want %s", cases[i].method,
                          cases[i].path, hdr(&r, "Allow"), cases[i].allow);
        }
    }
    /* and nothing changed */
    ck_assert_int_eq(count_of(&u, sid), 1);
    {
        struct resp r = api(&u, "GET", mp, NULL);

        expect_same_message(expect_message(r, 200, sid), m);
    }
    /* paths below the routes are 404 */
    {
        struct resp r = api(&u, "GET", str("%s/extra", mp), NULL);

        assert_error(r, 404, "not_found", ANY);
        r = api(&u, "GET", str("%s/x/y", sub_path(sid, "memory")), NULL);
        assert_error(r, 404, "not_found", ANY);
    }
}
END_TEST

/* ====================================================================== */

Suite *
e2e_messages_suite(void)
{
    Suite *s = suite_create("e2e-messages");
    TCase *t;

    t = tcase(s, "messages", 120);
    tcase_add_test(t, test_message_append_fields);
    tcase_add_test(t, test_message_append_rules);
    tcase_add_test(t, test_message_item);
    tcase_add_test(t, test_message_methods);

    t = tcase(s, "message-lists", 120);
    tcase_add_test(t, test_message_list_filters);
    tcase_add_test(t, test_message_list_bad_params);
    tcase_add_test(t, test_clear_messages);

    t = tcase(s, "message-sessions", 120);
    tcase_add_test(t, test_message_session_counters);
    tcase_add_test(t, test_message_writes_need_active);
    tcase_add_test(t, test_session_delete_cascades);
    tcase_add_test(t, test_message_bola);

    t = tcase(s, "message-writes", 300);
    tcase_add_test(t, test_message_concurrent_appends);
    tcase_add_test(t, test_message_idempotency);
    tcase_add_test(t, test_message_batch);

    t = tcase(s, "context", 120);
    tcase_add_test(t, test_context_bounds);
    tcase_add_test(t, test_context_tool_pairs);

    t = tcase(s, "conversation", 120);
    tcase_add_test(t, test_conversation);
    tcase_add_test(t, test_conversation_rules);
    tcase_add_test(t, test_conversation_stream_and_replay);

    t = tcase(s, "memory", 120);
    tcase_add_test(t, test_memory);
    tcase_add_test(t, test_memory_rules);

    t = tcase(s, "metrics", 60);
    tcase_add_test(t, test_metrics);

    return s;
}

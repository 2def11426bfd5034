/*
 * check_e2e_quota.c - the quotas and the page byte caps, end to end: real
 * nginx, real parley, the dev DB or (PARLEY_TEST_MONGOD) a real replica
 * set.  tests/quota.sh starts them with small quotas and runs this
 * program with the e2e suite's environment (check_e2e.c) plus
 *
 *   PARLEY_QUOTA_DB_URI     the database parley uses (for the drift test)
 *   PARLEY_QUOTA_MONGO_CMD  tests/mongo_cmd (runs one command on it)
 *
 * Each quota and each cap has a test that fails when it is not enforced:
 * what passes it is 403 quota_exceeded with the quota as param (or a page
 * that ends early with has_more), and nothing of it is stored.  The
 * counters are tried under concurrent writers (never past a quota, back
 * to exactly zero after concurrent deletes) and after drift (the
 * sweeper's recount, `parley cleanup`).  The quotas are read from
 * parley's own config file, which must hold the small ones quota.sh
 * writes.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_http.h"
#include "e2e_util.h"
#include "json.h"
#include "banned.h"

static char *db_uri, *mongo_cmd;

#define Q (&env.cfg)

static const char *
msgs_path(const char *sid)
{
    return str("%s/messages", session_path(sid));
}

static const char *
memory_path(const char *sid, const char *key)
{
    return key == NULL ? str("%s/memory", session_path(sid))
                       : str("%s/memory/%s", session_path(sid), key);
}

/* n user messages of `bytes` x's each, as a batch body's items. */
static const char *
items_of(size_t n, size_t bytes)
{
    const char *one =
        str("{\"role\":\"user\",\"content\":\"%s\"}", rep("x", bytes));
    const char *all = one;

    for (size_t i = 1; i < n; i++)
        all = str("%s,%s", all, one);
    return all;
}

static struct resp
append_n(const struct user *u, const char *sid, size_t n, size_t bytes)
{
    return api(
        u, "POST", msgs_path(sid),
        n == 1 ? str("{\"role\":\"user\",\"content\":\"%s\"}", rep("x", bytes))
               : str("{\"messages\":[%s]}", items_of(n, bytes)));
}

static int64_t
stored(const struct user *u, const char *sid)
{
    struct resp r = api(u, "GET", str("%s?limit=1", msgs_path(sid)), NULL);

    expect_status(r, 200);
    return jint(r.json, "total");
}

static int64_t
count_of(const struct user *u, const char *sid)
{
    return jint(get_session(u, sid), "message_count");
}

/* The expectations on a response value (a call's result). */
static void
expect_quota_at(int line, struct resp r, const char *param)
{
    assert_error_at(line, &r, 403, "quota_exceeded", param);
}

static void
expect_st_at(int line, struct resp r, int status)
{
    expect_status_at(line, &r, status);
}

#define expect_quota(r, param) expect_quota_at(__LINE__, (r), (param))
#define expect_st(r, status)   expect_st_at(__LINE__, (r), (status))

/* ---- messages per session --------------------------------------------- */

START_TEST(test_messages_per_session)
{
    struct user u = user_new("qmsg");
    const char *sid = uniq("m");
    int64_t q = Q->quota_messages_per_session;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = append_n(&u, sid, (size_t)q - 2, 1);
    expect_status(r, 201);
    /* a batch that does not fit stores nothing */
    r = append_n(&u, sid, 3, 1);
    expect_quota(r, "quota_messages_per_session");
    ck_assert_int_eq(stored(&u, sid), q - 2);
    r = append_n(&u, sid, 2, 1);
    expect_status(r, 201);
    ck_assert_int_eq(jint(jarr(r.json, "items")->u.a.items[1], "seq"), q);
    r = append_n(&u, sid, 1, 1);
    expect_quota(r, "quota_messages_per_session");
    /* the conversation appends through the same path: nothing of the
     * turn is stored */
    r = api(&u, "POST", SESSIONS "/conversation",
            str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi\"}]}",
                sid));
    expect_quota(r, "quota_messages_per_session");
    ck_assert_int_eq(stored(&u, sid), q);
    ck_assert_int_eq(count_of(&u, sid), q);
    /* a delete makes room for exactly one */
    r = api(&u, "GET", str("%s?limit=1", msgs_path(sid)), NULL);
    r = api(&u, "DELETE",
            str("%s/%s", msgs_path(sid),
                jstr(jarr(r.json, "items")->u.a.items[0], "id")),
            NULL);
    expect_status(r, 204);
    r = append_n(&u, sid, 1, 1);
    expect_status(r, 201);
    r = append_n(&u, sid, 1, 1);
    expect_quota(r, "quota_messages_per_session");
}
END_TEST

/* ---- bytes per session ------------------------------------------------- */

START_TEST(test_bytes_per_session)
{
    struct user u = user_new("qbytes");
    const char *sid = uniq("b");
    int64_t q = Q->quota_bytes_per_session;
    size_t big = (size_t)q / 8;
    struct resp r, m;
    const char *id;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int i = 0; i < 7; i++) {
        r = append_n(&u, sid, 1, big);
        expect_status(r, 201);
    }
    /* content and extra_data count: {"a":1} is 7 bytes */
    m = api(&u, "POST", msgs_path(sid),
            str("{\"role\":\"user\",\"content\":\"%s\",\"extra_data\":"
                "{\"a\":1}}",
                rep("x", (size_t)q - 7 * big - 7 + 1)));
    expect_quota(m, "quota_bytes_per_session");
    m = api(&u, "POST", msgs_path(sid),
            str("{\"role\":\"user\",\"content\":\"%s\",\"extra_data\":"
                "{\"a\":1}}",
                rep("x", (size_t)q - 7 * big - 7 - 10)));
    expect_status(m, 201);
    id = jstr(m.json, "id");
    /* 10 bytes left: a PATCH growing it by 11 is refused and changes
     * nothing; by 10 it fits */
    r = api(&u, "PATCH", str("%s/%s", msgs_path(sid), id),
            str("{\"content\":\"%s\"}",
                rep("x", (size_t)q - 7 * big - 7 - 10 + 11)));
    expect_quota(r, "quota_bytes_per_session");
    r = api(&u, "GET", str("%s/%s", msgs_path(sid), id), NULL);
    ck_assert_str_eq(jstr(r.json, "content"),
                     rep("x", (size_t)q - 7 * big - 7 - 10));
    r = api(&u, "PATCH", str("%s/%s", msgs_path(sid), id),
            str("{\"content\":\"%s\"}",
                rep("x", (size_t)q - 7 * big - 7 - 10 + 10)));
    expect_status(r, 200);
    /* full: even one byte is refused, an empty message is not */
    r = append_n(&u, sid, 1, 1);
    expect_quota(r, "quota_bytes_per_session");
    r = append_n(&u, sid, 1, 0);
    expect_status(r, 201);
    /* shrinking gives back exactly what it drops */
    r = api(&u, "PATCH", str("%s/%s", msgs_path(sid), id),
            "{\"content\":\"\",\"extra_data\":null}");
    expect_status(r, 200);
    r = append_n(&u, sid, 1, (size_t)q - 7 * big + 1);
    expect_quota(r, "quota_bytes_per_session");
    r = append_n(&u, sid, 1, (size_t)q - 7 * big);
    expect_status(r, 201);
    /* clear gives back everything */
    r = api(&u, "DELETE", str("%s/clear-messages", session_path(sid)), NULL);
    expect_status(r, 200);
    r = append_n(&u, sid, 1, (size_t)q);
    if (Q->max_content_bytes >= q)
        expect_status(r, 201);
}
END_TEST

/* ---- sessions per user ------------------------------------------------- */

START_TEST(test_sessions_per_user)
{
    struct user u = user_new("qsess");
    int64_t q = Q->quota_sessions_per_user;
    const char *first = NULL;
    struct resp r;

    for (int64_t i = 0; i < q; i++) {
        const struct json_value *s = create(&u, "{}");

        if (first == NULL)
            first = jstr(s, "session_id");
    }
    r = api(&u, "POST", SESSIONS, "{\"session_id\":\"one-too-many\"}");
    expect_quota(r, "quota_sessions_per_user");
    r = api(&u, "GET", SESSIONS, NULL);
    ck_assert_int_eq(jint(r.json, "total"), q);
    /* what exists is still answered: if_exists, and 409 for a taken name */
    r = api(&u, "POST", SESSIONS,
            str("{\"session_id\":\"%s\",\"if_exists\":\"return\"}", first));
    expect_session(r, 200);
    r = api(&u, "POST", SESSIONS, str("{\"session_id\":\"%s\"}", first));
    assert_error(r, 409, "conflict", "session_id");
    /* a conversation on an existing session works, a new one does not */
    r = api(&u, "POST", SESSIONS "/conversation",
            str("{\"session_id\":\"%s\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi\"}]}",
                first));
    expect_status(r, 200);
    r = api(&u, "POST", SESSIONS "/conversation",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    expect_quota(r, "quota_sessions_per_user");
    /* an import is a new session too */
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"imported\"},\"messages\":[]}");
    expect_quota(r, "quota_sessions_per_user");
    r = api(&u, "GET", SESSIONS, NULL);
    ck_assert_int_eq(jint(r.json, "total"), q);
    /* another user has a quota of their own */
    {
        struct user v = user_new("qsess2");

        (void)create(&v, "{}");
    }
    /* a delete frees a slot */
    r = api(&u, "DELETE", session_path(first), NULL);
    expect_status(r, 204);
    r = api(&u, "POST", SESSIONS "/import",
            "{\"session\":{\"session_id\":\"imported\"},\"messages\":[]}");
    expect_status(r, 201);
    r = api(&u, "POST", SESSIONS, "{}");
    expect_quota(r, "quota_sessions_per_user");
}
END_TEST

/* ---- an import within the session quotas ------------------------------- */

START_TEST(test_import_quotas)
{
    struct user u = user_new("qimport");
    int64_t qm = Q->quota_messages_per_session;
    int64_t qb = Q->quota_bytes_per_session;
    struct resp r;

    r = api(&u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"i1\"},\"messages\":[%s]}",
                items_of((size_t)qm + 1, 1)));
    expect_quota(r, "quota_messages_per_session");
    r = api(&u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"i1\"},\"messages\":[%s]}",
                items_of(2, (size_t)qb / 2 + 1)));
    if (r.status != 413)
        expect_quota(r, "quota_bytes_per_session");
    r = api(&u, "GET", session_path("i1"), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "POST", SESSIONS "/import",
            str("{\"session\":{\"session_id\":\"i1\"},\"messages\":[%s]}",
                items_of((size_t)qm, 1)));
    expect_session(r, 201);
    /* imported full: one more is refused */
    r = append_n(&u, "i1", 1, 1);
    expect_quota(r, "quota_messages_per_session");
}
END_TEST

/* ---- the same quotas under /v1 --------------------------------------------
 */

/* OpenAI's error body for a quota: 403, type insufficient_quota. */
static void
expect_v1_quota_at(int line, struct resp r, const char *param)
{
    const struct json_value *e;

    expect_status_at(line, &r, 403);
    e = jobj(r.json, "error");
    ck_assert_str_eq(jstr(e, "type"), "insufficient_quota");
    ck_assert_str_eq(jstr(e, "code"), "quota_exceeded");
    ck_assert_str_eq(jstr(e, "param"), param);
}
#define expect_v1_quota(r, param) expect_v1_quota_at(__LINE__, (r), (param))

static const char *
v1_items(size_t n)
{
    const char *one = "{\"type\":\"message\",\"role\":\"user\","
                      "\"content\":\"hi\"}";
    const char *all = one;

    for (size_t i = 1; i < n; i++)
        all = str("%s,%s", all, one);
    return all;
}

START_TEST(test_v1_quotas)
{
    struct user u = user_new("qv1");
    int64_t q = Q->quota_messages_per_session;
    int64_t qs = Q->quota_sessions_per_user;
    const char *id;
    struct resp r;

    r = api(&u, "POST", "/v1/conversations",
            str("{\"items\":[%s]}", v1_items((size_t)q - 1)));
    expect_status(r, 200);
    id = jstr(r.json, "id");
    r = api(&u, "POST", str("/v1/conversations/%s/items", id),
            str("{\"items\":[%s]}", v1_items(2)));
    expect_v1_quota(r, "quota_messages_per_session");
    r = api(&u, "POST", str("/v1/conversations/%s/items", id),
            str("{\"items\":[%s]}", v1_items(1)));
    expect_status(r, 200);
    ck_assert_int_eq(count_of(&u, id), q);
    /* a conversation made with more items than the quota is not made */
    r = api(&u, "POST", "/v1/conversations",
            str("{\"items\":[%s]}", v1_items((size_t)q + 1)));
    expect_v1_quota(r, "quota_messages_per_session");
    r = api(&u, "GET", SESSIONS, NULL);
    ck_assert_int_eq(jint(r.json, "total"), 1);
    /* nor past the user's sessions */
    for (int64_t i = 1; i < qs; i++)
        expect_st(api(&u, "POST", "/v1/conversations", "{}"), 200);
    expect_v1_quota(api(&u, "POST", "/v1/conversations", "{}"),
                    "quota_sessions_per_user");
}
END_TEST

/* ---- memory keys per session ------------------------------------------- */

START_TEST(test_memory_keys_per_session)
{
    struct user u = user_new("qmem");
    const char *sid = uniq("k");
    int64_t q = Q->quota_memory_keys_per_session;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int64_t i = 0; i < q; i++) {
        r = api(&u, "PUT", memory_path(sid, str("k%02lld", (long long)i)), "1");
        expect_status(r, 200);
    }
    r = api(&u, "PUT", memory_path(sid, "extra"), "1");
    expect_quota(r, "quota_memory_keys_per_session");
    r = api(&u, "GET", memory_path(sid, "extra"), NULL);
    assert_error(r, 404, "not_found", NULL);
    /* a key that is set takes a new value */
    r = api(&u, "PUT", memory_path(sid, "k00"), "{\"v\":2}");
    expect_status(r, 200);
    r = api(&u, "DELETE", memory_path(sid, "k01"), NULL);
    expect_status(r, 204);
    r = api(&u, "PUT", memory_path(sid, "extra"), "1");
    expect_status(r, 200);
    r = api(&u, "PUT", memory_path(sid, "extra2"), "1");
    expect_quota(r, "quota_memory_keys_per_session");
}
END_TEST

/* ---- memory pages ------------------------------------------------------- */

START_TEST(test_memory_pages)
{
    struct user u = user_new("qmpage");
    const char *sid = uniq("p");
    int64_t q = Q->quota_memory_keys_per_session;
    const char *after = NULL;
    int64_t seen = 0;
    struct resp r;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int64_t i = 0; i < q; i++) {
        r = api(&u, "PUT", memory_path(sid, str("k%02lld", (long long)i)),
                str("%lld", (long long)i));
        expect_status(r, 200);
    }
    /* pages of 2 in key order, chained by next_after */
    for (int page = 0; page < 100; page++) {
        const struct json_value *items;

        r = api(&u, "GET",
                after == NULL
                    ? str("%s?limit=2", memory_path(sid, NULL))
                    : str("%s?limit=2&after=%s", memory_path(sid, NULL), after),
                NULL);
        expect_status(r, 200);
        items = jobj(r.json, "items");
        ck_assert_int_eq(jint(r.json, "limit"), 2);
        for (size_t i = 0; i < items->u.o.len; i++, seen++)
            ck_assert_str_eq(items->u.o.members[i].key,
                             str("k%02lld", (long long)seen));
        if (!jbool(r.json, "has_more")) {
            ck_assert(jis_null(r.json, "next_after"));
            break;
        }
        ck_assert_uint_eq(items->u.o.len, 2);
        after = jstr(r.json, "next_after");
        ck_assert_str_eq(after, items->u.o.members[1].key);
    }
    ck_assert_int_eq(seen, q);
    /* the default page, and the bounds of limit and after */
    r = api(&u, "GET", memory_path(sid, NULL), NULL);
    ck_assert_int_eq(jint(r.json, "limit"), 100);
    r = api(&u, "GET", str("%s?limit=0", memory_path(sid, NULL)), NULL);
    assert_error(r, 400, "validation_error", "limit");
    r = api(&u, "GET", str("%s?limit=1001", memory_path(sid, NULL)), NULL);
    assert_error(r, 400, "validation_error", "limit");
    r = api(&u, "GET", str("%s?limit=1000", memory_path(sid, NULL)), NULL);
    expect_status(r, 200);
    r = api(&u, "GET", str("%s?after=a%%20b", memory_path(sid, NULL)), NULL);
    assert_error(r, 400, "validation_error", "after");
    r = api(&u, "GET", str("%s?offset=1", memory_path(sid, NULL)), NULL);
    assert_error(r, 400, "validation_error", "offset");
}
END_TEST

/* ---- page_max_bytes ------------------------------------------------------ */

/* Every body of a list stays within page_max_bytes. */
static void
ck_page_bytes(const struct resp *r)
{
    ck_assert_msg(r->body_len <= (size_t)Q->page_max_bytes,
                  "%s: a body of %zu bytes, page_max_bytes %d", r->target,
                  r->body_len, Q->page_max_bytes);
}

START_TEST(test_message_pages_within_the_cap)
{
    struct user u = user_new("qpage");
    const char *sid = uniq("p");
    size_t each = (size_t)Q->page_max_bytes / 5; /* five do not fit */
    int n = 8;
    int64_t next = 0, after = 0;
    struct resp r;

    ck_assert_int_ge(Q->quota_bytes_per_session, (int64_t)each * n);
    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (int i = 0; i < n; i++)
        expect_st(append_n(&u, sid, 1, each), 201);
    /* by offset: every page within the cap, together every message once */
    while (next < n) {
        const struct json_value *items;

        r = api(&u, "GET",
                str("%s?limit=50&offset=%lld", msgs_path(sid), (long long)next),
                NULL);
        expect_status(r, 200);
        ck_page_bytes(&r);
        items = jarr(r.json, "items");
        ck_assert_uint_ge(items->u.a.len, 1);
        ck_assert_uint_le(items->u.a.len, 4);
        ck_assert_int_eq(jint(items->u.a.items[0], "seq"), next + 1);
        next += (int64_t)items->u.a.len;
        ck_assert(jbool(r.json, "has_more") == (next < n));
        ck_assert_int_eq(jint(r.json, "total"), n);
    }
    /* by after_seq, newest first too */
    r = api(&u, "GET", str("%s?limit=50&after_seq=2", msgs_path(sid)), NULL);
    ck_page_bytes(&r);
    ck_assert(jbool(r.json, "has_more"));
    after = jint(jarr(r.json, "items")->u.a.items[0], "seq");
    ck_assert_int_eq(after, 3);
    r = api(&u, "GET", str("%s?limit=50&order=desc", msgs_path(sid)), NULL);
    ck_page_bytes(&r);
    ck_assert(jbool(r.json, "has_more"));
    ck_assert_int_eq(jint(jarr(r.json, "items")->u.a.items[0], "seq"), n);
    /* the context window is the newest run that fits, and says it was
     * cut */
    r = api(&u, "GET",
            str("%s/context?limit=50&max_tokens=10000000", session_path(sid)),
            NULL);
    expect_status(r, 200);
    ck_page_bytes(&r);
    ck_assert(jbool(r.json, "has_more"));
    {
        const struct json_value *items = jarr(r.json, "items");

        ck_assert_uint_ge(items->u.a.len, 1);
        ck_assert_uint_le(items->u.a.len, 4);
        ck_assert_int_eq(jint(items->u.a.items[items->u.a.len - 1], "seq"), n);
    }
    /* a small window is not cut */
    r = api(&u, "GET",
            str("%s/context?limit=2&max_tokens=10000000", session_path(sid)),
            NULL);
    ck_assert(!jbool(r.json, "has_more"));
    ck_assert_uint_eq(jarr(r.json, "items")->u.a.len, 2);
}
END_TEST

START_TEST(test_session_and_memory_pages_within_the_cap)
{
    struct user u = user_new("qspage");
    size_t each = (size_t)Q->page_max_bytes / 3;
    const char *sid = NULL;
    int64_t q = Q->quota_sessions_per_user;
    struct resp r;
    size_t got = 0;

    ck_assert_int_ge(q, 3);
    /* sessions: instructions of a third of the cap each */
    ck_assert_int_ge(Q->max_instructions_bytes, (int64_t)each);
    for (int i = 0; i < 3; i++)
        sid = jstr(
            create(&u, str("{\"agent_instructions\":\"%s\"}", rep("i", each))),
            "session_id");
    r = api(&u, "GET", str("%s?limit=20", SESSIONS), NULL);
    expect_status(r, 200);
    ck_page_bytes(&r);
    ck_assert(jbool(r.json, "has_more"));
    got = jarr(r.json, "items")->u.a.len;
    ck_assert_uint_eq(got, 2);
    ck_assert_int_eq(jint(r.json, "total"), 3);
    r = api(&u, "GET", str("%s?limit=20&offset=%zu", SESSIONS, got), NULL);
    ck_assert_uint_eq(jarr(r.json, "items")->u.a.len, 1);
    ck_assert(!jbool(r.json, "has_more"));

    /* memory: values of 16 KiB less a little, more than the cap holds */
    {
        int64_t keys = Q->quota_memory_keys_per_session;
        size_t value = (size_t)Q->max_metadata_bytes - 16;
        int64_t seen = 0;
        const char *after = NULL;

        ck_assert_int_gt(keys * (int64_t)value, Q->page_max_bytes);
        for (int64_t i = 0; i < keys; i++)
            expect_st(api(&u, "PUT",
                          memory_path(sid, str("k%02lld", (long long)i)),
                          str("\"%s\"", rep("v", value))),
                      200);
        for (int page = 0; page < 100; page++) {
            const struct json_value *items;

            r = api(&u, "GET",
                    after == NULL
                        ? memory_path(sid, NULL)
                        : str("%s?after=%s", memory_path(sid, NULL), after),
                    NULL);
            expect_status(r, 200);
            ck_page_bytes(&r);
            items = jobj(r.json, "items");
            ck_assert_uint_ge(items->u.o.len, 1);
            seen += (int64_t)items->u.o.len;
            if (page == 0)
                ck_assert(jbool(r.json, "has_more"));
            if (!jbool(r.json, "has_more"))
                break;
            after = jstr(r.json, "next_after");
            ck_assert_str_eq(after, items->u.o.members[items->u.o.len - 1].key);
        }
        ck_assert_int_eq(seen, keys);
    }
}
END_TEST

/* ---- counters under concurrent writers ---------------------------------- */

/* n requests at once, each from a source address of its own. */
static struct resp *
together(const struct user *u, const char *method, const char *const *targets,
         const char *const *bodies, size_t n)
{
    struct e2e_http_request *reqs = calloc(n, sizeof *reqs);
    struct e2e_http_response *out = calloc(n, sizeof *out);
    struct resp *res = arena_calloc(&tc.arena, n * sizeof *res);
    const char *auth = str("Authorization: Bearer %s", u->token);

    ck_assert(reqs != NULL && out != NULL);
    for (size_t i = 0; i < n; i++) {
        const char **hdrs = arena_calloc(&tc.arena, 3 * sizeof *hdrs);

        hdrs[0] = auth;
        hdrs[1] = bodies != NULL ? JSON_CT : NULL;
        reqs[i].method = method;
        reqs[i].target = targets[i];
        reqs[i].headers = hdrs;
        reqs[i].body = bodies != NULL ? bodies[i] : NULL;
        reqs[i].body_len = bodies != NULL ? strlen(bodies[i]) : 0;
        reqs[i].source = case_source(tc.nreq++);
    }
    (void)e2e_http_do_many(&env.client, reqs, n, n, out);
    for (size_t i = 0; i < n; i++) {
        struct e2e_http_response *raw = calloc(1, sizeof *raw);

        ck_assert(raw != NULL);
        *raw = out[i];
        res[i] = wrap(method, targets[i], raw);
    }
    free(out);
    free(reqs);
    return res;
}

static const char **
same(const char *s, size_t n)
{
    const char **v = arena_calloc(&tc.arena, n * sizeof *v);

    for (size_t i = 0; i < n; i++)
        v[i] = s;
    return v;
}

/* Appends racing for the last room: exactly what fits is stored, every
 * other answer is 403, and the counter is the number stored. */
START_TEST(test_concurrent_appends_never_pass_the_quota)
{
    struct user u = user_new("qrace");
    const char *sid = uniq("r");
    int64_t q = Q->quota_messages_per_session;
    enum { N = 24 };
    const char **bodies = arena_calloc(&tc.arena, N * sizeof *bodies);
    struct resp *r;
    int64_t ok = 0, batch_ok = 0;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    expect_st(append_n(&u, sid, (size_t)q - 10, 1), 201);
    /* 10 left: 16 single appends and 8 batches of 3 at once */
    for (int i = 0; i < N; i++)
        bodies[i] = i < 16 ? "{\"role\":\"user\",\"content\":\"x\"}"
                           : str("{\"messages\":[%s]}", items_of(3, 1));
    r = together(&u, "POST", same(msgs_path(sid), N), bodies, N);
    for (int i = 0; i < N; i++) {
        if (r[i].status == 201) {
            if (i < 16)
                ok++;
            else
                batch_ok++;
            continue;
        }
        expect_quota(r[i], "quota_messages_per_session");
    }
    /* exactly full: a single append fails only when no room is left,
     * and 16 of them alone would pass the quota */
    ck_assert_int_eq(ok + 3 * batch_ok, 10);
    ck_assert_int_eq(stored(&u, sid), q - 10 + ok + 3 * batch_ok);
    ck_assert_int_eq(count_of(&u, sid), stored(&u, sid));
}
END_TEST

/* Concurrent deletes of the same messages: the counters end exactly at
 * what is stored, so the full quota is free again afterwards, and not a
 * byte more.  Then a clear gives back exactly, and two clears at once
 * delete each message once. */
START_TEST(test_concurrent_deletes_count_exactly)
{
    struct user u = user_new("qdel");
    const char *sid = uniq("d");
    int64_t qb = Q->quota_bytes_per_session;
    size_t each = (size_t)qb / 4;
    enum { N = 12 };
    const char **targets = arena_calloc(&tc.arena, N * sizeof *targets);
    struct resp r, *rs;
    int deleted = 0;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    r = append_n(&u, sid, 4, each);
    expect_status(r, 201);
    /* each message deleted by three requests at once: one wins */
    for (int i = 0; i < N; i++)
        targets[i] = str("%s/%s", msgs_path(sid),
                         jstr(jarr(r.json, "items")->u.a.items[i % 4], "id"));
    rs = together(&u, "DELETE", targets, NULL, N);
    for (int i = 0; i < N; i++) {
        if (rs[i].status == 204) {
            deleted++;
            continue;
        }
        assert_error(rs[i], 404, "not_found", NULL);
    }
    ck_assert_int_eq(deleted, 4);
    ck_assert_int_eq(count_of(&u, sid), 0);
    ck_assert_int_eq(stored(&u, sid), 0);
    /* the bytes went back exactly: the whole quota fits again, and not a
     * byte more */
    expect_st(append_n(&u, sid, 4, each), 201);
    expect_quota(append_n(&u, sid, 1, (size_t)qb - 4 * each + 1),
                 "quota_bytes_per_session");
    r = api(&u, "DELETE", str("%s/clear-messages", session_path(sid)), NULL);
    ck_assert_int_eq(jint(r.json, "deleted_count"), 4);
    ck_assert_int_eq(count_of(&u, sid), 0);
    expect_st(append_n(&u, sid, 4, each), 201);
    expect_quota(append_n(&u, sid, 1, (size_t)qb - 4 * each + 1),
                 "quota_bytes_per_session");
    /* two clears at once: the messages counted once; the bytes of the
     * ones they could not tell apart may stay counted until the sweeper
     * recounts (docs/storage.md), never fewer */
    targets[0] = targets[1] = str("%s/clear-messages", session_path(sid));
    rs = together(&u, "DELETE", targets, NULL, 2);
    expect_status(rs[0], 200);
    expect_status(rs[1], 200);
    ck_assert_int_eq(jint(rs[0].json, "deleted_count") +
                         jint(rs[1].json, "deleted_count"),
                     4);
    ck_assert_int_eq(count_of(&u, sid), 0);
    ck_assert_int_eq(stored(&u, sid), 0);
}
END_TEST

/* Memory keys and sessions raced for the same way. */
START_TEST(test_concurrent_memory_and_sessions)
{
    struct user u = user_new("qmrace");
    const char *sid = uniq("m");
    int64_t qk = Q->quota_memory_keys_per_session;
    int64_t qs = Q->quota_sessions_per_user;
    enum { N = 16 };
    const char **targets = arena_calloc(&tc.arena, N * sizeof *targets);
    struct resp *rs, r;
    int ok = 0;

    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    /* N new keys at once: exactly the quota of them */
    for (int i = 0; i < N; i++)
        targets[i] = memory_path(sid, str("n%02d", i));
    rs = together(&u, "PUT", targets, same("1", N), N);
    for (int i = 0; i < N; i++) {
        if (rs[i].status == 200) {
            ok++;
            continue;
        }
        expect_quota(rs[i], "quota_memory_keys_per_session");
    }
    ck_assert_int_eq(ok, qk);
    /* the same new key N times at once, after deleting them all: one
     * slot */
    for (int i = 0; i < N; i++)
        if (rs[i].status == 200)
            expect_st(api(&u, "DELETE", targets[i], NULL), 204);
    rs =
        together(&u, "PUT", same(memory_path(sid, "same"), N), same("2", N), N);
    for (int i = 0; i < N; i++)
        expect_status(rs[i], 200);
    for (int64_t i = 1; i < qk; i++)
        expect_st(
            api(&u, "PUT", memory_path(sid, str("z%02lld", (long long)i)), "1"),
            200);
    r = api(&u, "PUT", memory_path(sid, "over"), "1");
    expect_quota(r, "quota_memory_keys_per_session");

    /* N creates at once: exactly the quota of sessions (one made) */
    rs = together(&u, "POST", same(SESSIONS, N), same("{}", N), N);
    ok = 0;
    for (int i = 0; i < N; i++) {
        if (rs[i].status == 201) {
            ok++;
            continue;
        }
        expect_quota(rs[i], "quota_sessions_per_user");
    }
    ck_assert_int_eq(ok, qs - 1);
    r = api(&u, "GET", SESSIONS, NULL);
    ck_assert_int_eq(jint(r.json, "total"), qs);
}
END_TEST

/* ---- a replayed batch -----------------------------------------------------
 */

/* A batch of keyed appends replayed whole answers 200 with what was
 * stored, within the deadline. */
START_TEST(test_keyed_batch_replay)
{
    struct user u = user_new("qreplay");
    const char *sid = uniq("k");
    const char *items = "";
    struct resp a, b;
    size_t n = (size_t)env.cfg.max_batch_messages;

    if ((int64_t)n > Q->quota_messages_per_session)
        n = (size_t)Q->quota_messages_per_session;
    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    for (size_t i = 0; i < n; i++)
        items = str("%s%s{\"role\":\"user\",\"content\":\"m%zu\","
                    "\"client_message_id\":\"key-%zu\"}",
                    items, i > 0 ? "," : "", i, i);
    a = api(&u, "POST", msgs_path(sid), str("{\"messages\":[%s]}", items));
    expect_status(a, 201);
    b = api(&u, "POST", msgs_path(sid), str("{\"messages\":[%s]}", items));
    expect_status(b, 200);
    ck_assert(json_same(a.json, b.json));
    ck_assert_int_eq(stored(&u, sid), (int64_t)n);
}
END_TEST

/* ---- drift and the sweeper's recount ---------------------------------------
 */

/* Runs argv (up to 7 words); its exit status. */
static int
run(const char *const *argv)
{
    char *copy[8];
    pid_t pid;
    int st = 0;
    size_t n = 0;

    for (; argv[n] != NULL && n < 7; n++)
        copy[n] = arena_strdup(&tc.arena, argv[n]);
    copy[n] = NULL;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
        execv(copy[0], copy);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The counters of a session are pushed off as a crash would leave them
 * (a reservation whose insert never happened: too high, marked an hour
 * ago), straight in the database; `parley cleanup` recounts them. */
START_TEST(test_drift_is_recounted)
{
    struct user u = user_new("qdrift");
    const char *sid = uniq("d");
    int64_t q = Q->quota_messages_per_session;
    const char *cmd;
    struct resp r;

    if (db_uri == NULL || mongo_cmd == NULL || env.bin == NULL ||
        env.config_path == NULL)
        ck_abort_msg("PARLEY_QUOTA_DB_URI, PARLEY_QUOTA_MONGO_CMD, "
                     "PARLEY_E2E_BIN and PARLEY_E2E_CONFIG are needed");
    (void)create(&u, str("{\"session_id\":\"%s\"}", sid));
    expect_st(append_n(&u, sid, 3, 10), 201);
    cmd = str("{\"update\":\"%s\",\"updates\":[{\"q\":{\"user_id\":\"%s\","
              "\"session_id\":\"%s\"},\"u\":{\"$inc\":{\"message_count\":"
              "%lld,\"content_bytes\":1000000,\"last_seq\":7},\"$set\":{"
              "\"dirty_at\":{\"$date\":\"2020-01-01T00:00:00Z\"}}}}]}",
              env.cfg.sessions_collection, u.name, sid, (long long)q - 3);
    {
        const char *argv[] = {mongo_cmd, db_uri, env.cfg.mongodb_database, cmd,
                              NULL};

        ck_assert_int_eq(run(argv), 0);
    }
    ck_assert_int_eq(count_of(&u, sid), q);
    expect_quota(append_n(&u, sid, 1, 1), "quota_messages_per_session");
    {
        const char *argv[] = {env.bin, "cleanup", "-c", env.config_path, NULL};

        ck_assert_int_eq(run(argv), 0);
    }
    ck_assert_int_eq(count_of(&u, sid), 3);
    r = append_n(&u, sid, (size_t)q - 3, 1);
    expect_status(r, 201);
    ck_assert_int_eq(jint(jarr(r.json, "items")->u.a.items[0], "seq"), 11);
    expect_quota(append_n(&u, sid, 1, 0), "quota_messages_per_session");
}
END_TEST

static Suite *
quota_suite(void)
{
    Suite *s = suite_create("e2e_quota");
    TCase *t = tcase(s, "quotas", 60);

    tcase_add_test(t, test_messages_per_session);
    tcase_add_test(t, test_bytes_per_session);
    tcase_add_test(t, test_sessions_per_user);
    tcase_add_test(t, test_import_quotas);
    tcase_add_test(t, test_memory_keys_per_session);
    tcase_add_test(t, test_v1_quotas);
    t = tcase(s, "pages", 60);
    tcase_add_test(t, test_memory_pages);
    tcase_add_test(t, test_message_pages_within_the_cap);
    tcase_add_test(t, test_session_and_memory_pages_within_the_cap);
    t = tcase(s, "counters", 120);
    tcase_add_test(t, test_concurrent_appends_never_pass_the_quota);
    tcase_add_test(t, test_concurrent_deletes_count_exactly);
    tcase_add_test(t, test_concurrent_memory_and_sessions);
    tcase_add_test(t, test_keyed_batch_replay);
    tcase_add_test(t, test_drift_is_recounted);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    /* env_init() takes the PARLEY_E2E_* it knows; these are ours. */
    db_uri = getenv("PARLEY_QUOTA_DB_URI");
    mongo_cmd = getenv("PARLEY_QUOTA_MONGO_CMD");
    if (env_init() < 0)
        return 1;
    /* The suite fills sessions to their quotas: it needs the small ones
     * tests/quota.sh sets. */
    if (env.cfg.quota_messages_per_session > 200 ||
        env.cfg.quota_sessions_per_user > 20 ||
        env.cfg.quota_memory_keys_per_session > 50 ||
        env.cfg.quota_bytes_per_session > 4 * 1024 * 1024 ||
        env.cfg.page_max_bytes > 1024 * 1024) {
        fprintf(stderr, "check_e2e_quota: parley's quotas are too large for "
                        "this suite (tests/quota.sh sets small ones)\n");
        return 1;
    }
    sr = srunner_create(quota_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    env_release();
    return failed == 0 ? 0 : 1;
}

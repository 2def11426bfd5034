/*
 * check_e2e_admin.c - end to end: stats, health, cleanup and user
 * erasure, over HTTP through nginx, parley and the dev DB (check_e2e.c's
 * runner; helpers in e2e_util.c).
 *
 * Each test makes fresh users, so the numbers it checks are its own: the
 * stats and health of sessions it built to a known state, an erasure that
 * must take one user's everything and nothing of another's.  The sweeper's
 * rules with second-scale settings are tests/sweeper.sh's: this suite's
 * server runs with the default (hour-scale) ones.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "e2e_util.h"
#include "json.h"
#include "banned.h"

/* A fresh user whose token carries "roles": ["admin"]. */
static struct user
admin_new(const char *tag)
{
    struct error err = ERROR_INIT;
    struct user u;
    char *t;

    u.name = uniq(str("e2e-%s", tag));
    t = auth_mint(&env.cfg, u.name, (int64_t)time(NULL), 3600, true, &err);
    ck_assert_msg(t != NULL, "auth_mint: %s", err.message);
    u.token = str("%s", t);
    free(t);
    return u;
}

/* A token for an exact sub (the erasure test's awkward user ids). */
static struct user
user_named(const char *name)
{
    struct user u;

    u.name = name;
    u.token = mint(&env.cfg, name, (int64_t)time(NULL), 3600);
    return u;
}

static void
add_message(const struct user *u, const char *sid, const char *content)
{
    struct resp r = api(u, "POST", str("%s/messages", session_path(sid)),
                        str("{\"role\":\"user\",\"content\":\"%s\"}", content));

    expect_status(r, 201);
}

static void
add_messages(const struct user *u, const char *sid, int n)
{
    for (int i = 0; i < n; i++)
        add_message(u, sid, str("message %d", i));
}

static void
put_memory(const struct user *u, const char *sid, const char *key)
{
    struct resp r =
        api(u, "PUT", str("%s/memory/%s", session_path(sid), key), "{\"v\":1}");

    expect_status(r, 200);
}

/* POST /api/admin/cleanup, waiting out a sweep the server's own schedule
 * may be running at that moment (409). */
static struct resp
cleanup(const struct user *admin, const char *body)
{
    struct resp r;

    for (int i = 0; i < 50; i++) {
        r = api(admin, "POST", "/api/admin/cleanup", body);
        if (r.status != 409)
            break;
        usleep(100 * 1000);
    }
    return r;
}

/* ====================================================================== */
/* admin routes and normal tokens */

START_TEST(test_admin_routes_refuse_normal_tokens)
{
    struct user u = user_new("notadmin");
    struct user admin = admin_new("admin");
    struct resp r;

    create(&u, "{\"session_id\":\"mine\"}");
    r = api(&u, "POST", "/api/admin/cleanup", NULL);
    assert_error(r, 403, "forbidden", NULL);
    r = api(&u, "DELETE", str("/api/admin/users/%s", u.name), NULL);
    assert_error(r, 403, "forbidden", NULL);
    r = api(&u, "DELETE", str("/api/admin/users/%s", admin.name), NULL);
    assert_error(r, 403, "forbidden", NULL);
    r = api(&u, "GET", SESSIONS "/stats?all=true", NULL);
    assert_error(r, 403, "forbidden", "all");
    /* refused means nothing happened */
    get_session(&u, "mine");

    /* no token at all is a 401, as everywhere */
    r = send_raw(NULL, "POST", "/api/admin/cleanup", NULL, NULL, 0);
    assert_error(r, 401, "unauthorized", ANY);
    expect_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    r = send_raw(NULL, "DELETE", "/api/admin/users/x", NULL, NULL, 0);
    assert_error(r, 401, "unauthorized", ANY);

    /* methods */
    r = api(&admin, "GET", "/api/admin/cleanup", NULL);
    assert_error(r, 405, "method_not_allowed", ANY);
    expect_header(r, "Allow", "POST");
    r = api(&admin, "GET", "/api/admin/users/x", NULL);
    assert_error(r, 405, "method_not_allowed", ANY);
    expect_header(r, "Allow", "DELETE");
}
END_TEST

START_TEST(test_admin_cleanup)
{
    struct user admin = admin_new("cleaner");
    struct user u = user_new("cleaned");
    const struct json_value *counts;
    struct resp r;

    create(&u, "{\"session_id\":\"fresh\"}");
    add_messages(&u, "fresh", 2);
    r = cleanup(&admin, NULL);
    expect_status(r, 200);
    counts = r.json;
    ck_assert_uint_eq(counts->u.o.len, 3);
    ck_assert_int_ge(jint(counts, "expired"), 0);
    ck_assert_int_ge(jint(counts, "deleted_sessions"), 0);
    ck_assert_int_ge(jint(counts, "deleted_messages"), 0);
    /* The default rules are hours long: a session just made stays. */
    ck_assert_int_eq(jint(get_session(&u, "fresh"), "message_count"), 2);
    ck_assert_str_eq(jstr(get_session(&u, "fresh"), "status"), "active");

    /* {} is no body; anything else is */
    r = cleanup(&admin, "{}");
    expect_status(r, 200);
    r = api(&admin, "POST", "/api/admin/cleanup", "{\"now\":1}");
    assert_error(r, 400, ANY, ANY);
    r = api(&admin, "POST", "/api/admin/cleanup?dry_run=true", NULL);
    assert_error(r, 400, "validation_error", "dry_run");
}
END_TEST

/* ====================================================================== */
/* stats */

START_TEST(test_stats_known_data)
{
    struct user u = user_new("stats");
    struct user other = user_new("stats-other");
    struct user admin = admin_new("stats-admin");
    const struct json_value *all;
    struct resp r;

    /* nothing yet: every key, zeros, and a 0 average */
    r = api(&u, "GET", SESSIONS "/stats", NULL);
    expect_status(r, 200);
    expect_json(r.json,
                "{\"total_sessions\":0,\"active_sessions\":0,"
                "\"by_status\":{\"active\":0,\"inactive\":0,\"completed\":0,"
                "\"failed\":0,\"expired\":0},"
                "\"total_messages\":0,\"average_messages_per_session\":0}");
    ck_assert_int_eq(
        jget(r.json, "average_messages_per_session", JSON_DOUBLE)->type,
        JSON_DOUBLE);

    /* three active (2, 3 and 0 messages), one inactive with one message,
     * one each completed, failed and expired */
    create(&u, "{\"session_id\":\"a1\"}");
    add_messages(&u, "a1", 2);
    create(&u, "{\"session_id\":\"a2\"}");
    add_messages(&u, "a2", 3);
    create(&u, "{\"session_id\":\"a3\"}");
    create(&u, "{\"session_id\":\"i1\"}");
    add_messages(&u, "i1", 1);
    r = api(&u, "PUT", str("%s/deactivate", session_path("i1")), NULL);
    expect_session(r, 200);
    create_in_state(&u, "c1", "completed", "");
    create_in_state(&u, "f1", "failed", "");
    create_in_state(&u, "e1", "expired", "");
    /* another user's sessions count for that user only */
    create(&other, "{\"session_id\":\"a1\"}");
    add_messages(&other, "a1", 4);

    r = api(&u, "GET", SESSIONS "/stats", NULL);
    expect_status(r, 200);
    /* 6 messages over 7 sessions = 0.857... */
    expect_json(r.json,
                "{\"total_sessions\":7,\"active_sessions\":3,"
                "\"by_status\":{\"active\":3,\"inactive\":1,\"completed\":1,"
                "\"failed\":1,\"expired\":1},"
                "\"total_messages\":6,\"average_messages_per_session\":0.86}");
    r = api(&u, "GET", SESSIONS "/stats?all=false", NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "total_sessions"), 7);

    r = api(&other, "GET", SESSIONS "/stats", NULL);
    expect_json(r.json,
                "{\"total_sessions\":1,\"active_sessions\":1,"
                "\"by_status\":{\"active\":1,\"inactive\":0,\"completed\":0,"
                "\"failed\":0,\"expired\":0},"
                "\"total_messages\":4,\"average_messages_per_session\":4.0}");

    /* an admin sees their own by default, everyone's with all=true */
    r = api(&admin, "GET", SESSIONS "/stats", NULL);
    ck_assert_int_eq(jint(r.json, "total_sessions"), 0);
    r = api(&admin, "GET", SESSIONS "/stats?all=true", NULL);
    expect_status(r, 200);
    all = r.json;
    /* other tests write at the same time: at least ours are there */
    ck_assert_int_ge(jint(all, "total_sessions"), 8);
    ck_assert_int_ge(jint(all, "total_messages"), 10);
    ck_assert_int_ge(jint(jobj(all, "by_status"), "failed"), 1);
    ck_assert_int_eq(jint(all, "active_sessions"),
                     jint(jobj(all, "by_status"), "active"));

    /* query rules */
    r = api(&u, "GET", SESSIONS "/stats?all=maybe", NULL);
    assert_error(r, 400, "validation_error", "all");
    r = api(&u, "GET", SESSIONS "/stats?limit=1", NULL);
    assert_error(r, 400, "validation_error", "limit");
    r = api(&u, "POST", SESSIONS "/stats", NULL);
    assert_error(r, 405, "method_not_allowed", ANY);
}
END_TEST

/* ====================================================================== */
/* health */

START_TEST(test_health_numbers)
{
    struct user u = user_new("health");
    struct user other = user_new("health-other");
    struct resp r;

    /* fresh, active, no messages: 100 - 20 */
    create(&u, "{\"session_id\":\"h1\"}");
    r = api(&u, "GET", str("%s/health", session_path("h1")), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"session_id\":\"h1\",\"message_count\":0,"
                        "\"hours_inactive\":0.0,\"health_score\":80,"
                        "\"recommendations\":[\"Session has no messages "
                        "yet\"]}");
    ck_assert_int_eq(jget(r.json, "hours_inactive", JSON_DOUBLE)->type,
                     JSON_DOUBLE);

    /* a few messages: 100 - 10 */
    add_messages(&u, "h1", 3);
    r = api(&u, "GET", str("%s/health", session_path("h1")), NULL);
    expect_json(r.json, "{\"session_id\":\"h1\",\"message_count\":3,"
                        "\"hours_inactive\":0.0,\"health_score\":90,"
                        "\"recommendations\":[\"Session has few "
                        "messages\"]}");

    /* five: healthy */
    add_messages(&u, "h1", 2);
    r = api(&u, "GET", str("%s/health", session_path("h1")), NULL);
    expect_json(r.json, "{\"session_id\":\"h1\",\"message_count\":5,"
                        "\"hours_inactive\":0.0,\"health_score\":100,"
                        "\"recommendations\":[\"Session is healthy\"]}");

    /* not active: 100 - 25 */
    r = api(&u, "PUT", str("%s/deactivate", session_path("h1")), NULL);
    expect_session(r, 200);
    r = api(&u, "GET", str("%s/health", session_path("h1")), NULL);
    expect_json(r.json, "{\"session_id\":\"h1\",\"message_count\":5,"
                        "\"hours_inactive\":0.0,\"health_score\":75,"
                        "\"recommendations\":[\"Session is not active; "
                        "activate it to continue\"]}");

    /* ended with no messages: 100 - 20 - 25, in rule order */
    create_in_state(&u, "h2", "completed", "");
    r = api(&u, "GET", str("%s/health", session_path("h2")), NULL);
    expect_json(r.json, "{\"session_id\":\"h2\",\"message_count\":0,"
                        "\"hours_inactive\":0.0,\"health_score\":55,"
                        "\"recommendations\":[\"Session has no messages yet\","
                        "\"Session is not active; activate it to continue\"]}");

    /* someone else's, unknown, impossible: 404; unknown parameter: 400 */
    r = api(&other, "GET", str("%s/health", session_path("h1")), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", str("%s/health", session_path("nope")), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", SESSIONS "/bad%20id/health", NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", str("%s/health?verbose=1", session_path("h1")), NULL);
    assert_error(r, 400, "validation_error", "verbose");
}
END_TEST

/* ====================================================================== */
/* user erasure */

/* Everything a user can own: two sessions with messages, memory, an
 * idempotency key, one of them ended. */
static void
populate(const struct user *u)
{
    struct resp r;

    create(u, "{\"session_id\":\"s1\"}");
    add_messages(u, "s1", 3);
    put_memory(u, "s1", "k1");
    put_memory(u, "s1", "k2");
    r = api_h(u, "POST", str("%s/messages", session_path("s1")),
              "Idempotency-Key: erase-me",
              "{\"role\":\"user\",\"content\":\"keyed\"}");
    expect_status(r, 201);
    create(u, "{\"session_id\":\"s2\"}");
    add_messages(u, "s2", 2);
    put_memory(u, "s2", "k1");
    r = api(u, "POST", str("%s/end", session_path("s2")),
            "{\"status\":\"completed\"}");
    expect_session(r, 200);
}

static void
expect_untouched(const struct user *u)
{
    struct resp r;

    ck_assert_int_eq(jint(get_session(u, "s1"), "message_count"), 4);
    ck_assert_int_eq(jint(get_session(u, "s2"), "message_count"), 2);
    r = api(u, "GET", str("%s/messages", session_path("s1")), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "total"), 4);
    r = api(u, "GET", str("%s/memory", session_path("s1")), NULL);
    expect_json(r.json, MEMORY_PAGE("{\"k1\":{\"v\":1},\"k2\":{\"v\":1}}"));
    r = api(u, "GET", str("%s/memory", session_path("s2")), NULL);
    expect_json(r.json, MEMORY_PAGE("{\"k1\":{\"v\":1}}"));
}

START_TEST(test_erase_user)
{
    struct user admin = admin_new("eraser");
    struct user gone = user_new("erased");
    struct user kept = user_new("kept");
    struct resp r;

    populate(&gone);
    populate(&kept);
    r = api(&admin, "DELETE", str("/api/admin/users/%s", gone.name), NULL);
    expect_status(r, 200);
    expect_json(r.json, "{\"deleted_sessions\":2,\"deleted_messages\":6,"
                        "\"deleted_memory\":3}");

    /* nothing of the user is left */
    r = api(&gone, "GET", SESSIONS, NULL);
    expect_list(r, 0, 20, 0, 0, false);
    r = api(&gone, "GET", session_path("s1"), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&gone, "GET", SESSIONS "/stats", NULL);
    ck_assert_int_eq(jint(r.json, "total_sessions"), 0);
    /* the same name starts from nothing */
    create(&gone, "{\"session_id\":\"s1\"}");
    r = api(&gone, "GET", str("%s/memory", session_path("s1")), NULL);
    expect_json(r.json, EMPTY_MEMORY);
    r = api_h(&gone, "POST", str("%s/messages", session_path("s1")),
              "Idempotency-Key: erase-me",
              "{\"role\":\"user\",\"content\":\"keyed\"}");
    expect_status(r, 201);
    ck_assert_int_eq(jint(r.json, "seq"), 1);

    /* and everything of the other one is */
    expect_untouched(&kept);

    /* again: the new session only; then nothing, still 200 */
    r = api(&admin, "DELETE", str("/api/admin/users/%s", gone.name), NULL);
    expect_json(r.json, "{\"deleted_sessions\":1,\"deleted_messages\":1,"
                        "\"deleted_memory\":0}");
    r = api(&admin, "DELETE", str("/api/admin/users/%s", gone.name), NULL);
    expect_json(r.json, "{\"deleted_sessions\":0,\"deleted_messages\":0,"
                        "\"deleted_memory\":0}");
    expect_untouched(&kept);
}
END_TEST

START_TEST(test_erase_user_ids_in_the_path)
{
    struct user admin = admin_new("eraser2");
    /* a sub with a space, a slash and non-ASCII, percent-encoded */
    struct user odd = user_named(str("%s a/b \xc3\xa9", uniq("e2e-odd")));
    const char *enc;
    struct resp r;

    create(&odd, "{\"session_id\":\"s\"}");
    add_messages(&odd, "s", 2);
    enc = str("%.*s%%20a%%2Fb%%20%%C3%%A9", (int)(strlen(odd.name) - 7),
              odd.name);
    r = api(&admin, "DELETE", str("/api/admin/users/%s", enc), NULL);
    expect_json(r.json, "{\"deleted_sessions\":1,\"deleted_messages\":2,"
                        "\"deleted_memory\":0}");
    r = api(&odd, "GET", session_path("s"), NULL);
    assert_error(r, 404, "not_found", NULL);

    /* 255 characters is a user id, 256 is not */
    r = api(&admin, "DELETE", str("/api/admin/users/%s", rep("%C3%A9", 255)),
            NULL);
    expect_status(r, 200);
    r = api(&admin, "DELETE", str("/api/admin/users/%s", rep("u", 256)), NULL);
    assert_error(r, 400, "validation_error", "user_id");
    r = api(&admin, "DELETE", "/api/admin/users/x?cascade=1", NULL);
    assert_error(r, 400, "validation_error", "cascade");
}
END_TEST

Suite *
e2e_admin_suite(void)
{
    Suite *s = suite_create("e2e-admin");
    TCase *t;

    t = tcase(s, "admin", 60);
    tcase_add_test(t, test_admin_routes_refuse_normal_tokens);
    tcase_add_test(t, test_admin_cleanup);

    t = tcase(s, "stats", 60);
    tcase_add_test(t, test_stats_known_data);

    t = tcase(s, "health", 60);
    tcase_add_test(t, test_health_numbers);

    t = tcase(s, "erasure", 60);
    tcase_add_test(t, test_erase_user);
    tcase_add_test(t, test_erase_user_ids_in_the_path);
    return s;
}

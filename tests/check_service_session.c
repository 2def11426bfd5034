/*
 * check_service_session.c - the session service over the fake store: the
 * contract's rules for create, patch, status changes and delete, and what
 * the service does when the store fails.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "config.h"
#include "fake_store.h"
#include "json.h"
#include "service_session.h"
#include "service_fixture.h"
#include "suites.h"

/* The members create, PATCH and import share, from a JSON body. */
static struct session_fields
fields(const struct json_value *b)
{
    struct session_fields f = {
        json_get(b, "session_name"), json_get(b, "description"),
        json_get(b, "agent_name"),   json_get(b, "agent_instructions"),
        json_get(b, "metadata"),     json_get(b, "is_active"),
    };

    return f;
}

/* Creates from a JSON body the way api_session.c maps it. */
static bool
create(const char *user, const char *body, struct session *out, bool *created,
       struct error *err)
{
    const struct json_value *b = service_fixture_json(body);
    struct session_create in = {json_get(b, "session_id"), fields(b),
                                json_get(b, "if_exists")};

    return service_session_create(&fx.svc, &fx.ctx, user, &in, out, created,
                                  err);
}

static bool
patch(const char *user, const char *sid, int64_t if_match, const char *body,
      struct session *out, struct error *err)
{
    const struct json_value *b = service_fixture_json(body);
    struct session_patch in = {fields(b), json_get(b, "status")};

    return service_session_patch(&fx.svc, &fx.ctx, user, sid, if_match, &in,
                                 out, err);
}

static void
must_create(const char *user, const char *body, struct session *out)
{
    struct error err = ERROR_INIT;
    bool created = false;

    ck_assert_msg(create(user, body, out, &created, &err), "%s", err.message);
    ck_assert(created);
}

static void
assert_fails(bool ok, const struct error *err, enum error_code code,
             const char *param)
{
    ck_assert(!ok);
    ck_assert_int_eq(err->code, code);
    if (param == NULL)
        ck_assert_ptr_null(err->param);
    else
        ck_assert_str_eq(err->param, param);
}

START_TEST(create_defaults)
{
    struct session s;
    char id[UUID_STR_LEN + 1];

    must_create("alice", "{}", &s);
    uuid_format(&s.id, id);
    ck_assert_str_eq(s.session_id, id); /* the UUID when none is given */
    ck_assert_str_eq(s.user_id, "alice");
    ck_assert_int_eq(s.status, STATUS_ACTIVE);
    ck_assert_int_eq(s.version, 1);
    ck_assert_int_eq(s.message_count, 0);
    ck_assert_int_eq(s.metadata->type, JSON_OBJECT);
    ck_assert_uint_eq(s.metadata->u.o.len, 0);
    ck_assert_ptr_null(s.session_name);
    ck_assert_int_eq(s.created_at, s.updated_at);
}
END_TEST

START_TEST(create_fields_and_inactive)
{
    struct session s;

    must_create(
        "alice",
        "{\"session_id\":\"s-1\",\"session_name\":\"n\",\"description\":"
        "null,\"agent_name\":\"a\",\"agent_instructions\":\"i\","
        "\"metadata\":{\"k\":[1,2]},\"is_active\":false}",
        &s);
    ck_assert_str_eq(s.session_id, "s-1");
    ck_assert_str_eq(s.session_name, "n");
    ck_assert_ptr_null(s.description);
    ck_assert_str_eq(s.agent_name, "a");
    ck_assert_int_eq(s.status, STATUS_INACTIVE);
    ck_assert_ptr_nonnull(json_get(s.metadata, "k"));
}
END_TEST

START_TEST(create_rejects_bad_values)
{
    static const struct {
        const char *body;
        const char *param;
    } cases[] = {
        {"{\"session_id\":\"\"}", "session_id"},
        {"{\"session_id\":\"a b\"}", "session_id"},
        {"{\"session_id\":\"stats\"}", "session_id"},
        {"{\"session_id\":\"import\"}", "session_id"},
        {"{\"session_id\":\"conversation\"}", "session_id"},
        {"{\"session_id\":5}", "session_id"},
        {"{\"session_name\":7}", "session_name"},
        {"{\"agent_name\":true}", "agent_name"},
        {"{\"metadata\":[]}", "metadata"},
        {"{\"metadata\":null}", "metadata"},
        {"{\"metadata\":{\"$where\":1}}", "metadata"},
        {"{\"metadata\":{\"a.b\":1}}", "metadata"},
        {"{\"metadata\":{\"x\":{\"$gt\":1}}}", "metadata"},
        {"{\"metadata\":{\"x\":[{\"\":1}]}}", "metadata"},
        {"{\"is_active\":\"yes\"}", "is_active"},
        {"{\"if_exists\":\"replace\"}", "if_exists"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct error err = ERROR_INIT;
        struct session s;
        bool created;

        assert_fails(create("alice", cases[i].body, &s, &created, &err), &err,
                     ERR_VALIDATION, cases[i].param);
    }
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
}
END_TEST

START_TEST(create_limits)
{
    struct error err = ERROR_INIT;
    struct session s;
    bool created;
    char *body = arena_alloc(&fx.arena, 80000);
    size_t n;

    /* 255 two-byte characters fit; 256 do not. */
    n = (size_t)snprintf(body, 80000, "{\"session_name\":\"");
    for (int i = 0; i < 255; i++)
        n += (size_t)snprintf(body + n, 80000 - n, "\xc3\xa9");
    snprintf(body + n, 80000 - n, "\"}");
    ck_assert(create("alice", body, &s, &created, &err));
    snprintf(body + n, 80000 - n, "x\"}");
    assert_fails(create("alice", body, &s, &created, &err), &err,
                 ERR_VALIDATION, "session_name");

    /* description: 4096 bytes fit, 4097 do not. */
    n = (size_t)snprintf(body, 80000, "{\"description\":\"");
    memset(body + n, 'd', 4096);
    snprintf(body + n + 4096, 80000 - n - 4096, "\"}");
    ck_assert(create("alice", body, &s, &created, &err));
    snprintf(body + n + 4096, 80000 - n - 4096, "d\"}");
    assert_fails(create("alice", body, &s, &created, &err), &err,
                 ERR_VALIDATION, "description");

    /* metadata: 17 levels of nesting are one too many. */
    n = (size_t)snprintf(body, 80000, "{\"metadata\":");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(body + n, 80000 - n, "{\"a\":");
    n += (size_t)snprintf(body + n, 80000 - n, "1");
    for (int i = 0; i < 18; i++)
        n += (size_t)snprintf(body + n, 80000 - n, "}");
    assert_fails(create("alice", body, &s, &created, &err), &err,
                 ERR_VALIDATION, "metadata");

    /* metadata over 16 KiB encoded. */
    n = (size_t)snprintf(body, 80000, "{\"metadata\":{\"k\":\"");
    memset(body + n, 'm', 16384);
    snprintf(body + n + 16384, 80000 - n - 16384, "\"}}");
    assert_fails(create("alice", body, &s, &created, &err), &err,
                 ERR_VALIDATION, "metadata");
}
END_TEST

START_TEST(create_duplicate_and_if_exists)
{
    struct error err = ERROR_INIT;
    struct session first, again;
    bool created = true;

    must_create("alice", "{\"session_id\":\"dup\",\"session_name\":\"one\"}",
                &first);
    assert_fails(
        create("alice", "{\"session_id\":\"dup\"}", &again, &created, &err),
        &err, ERR_CONFLICT, "session_id");
    ck_assert(create("alice",
                     "{\"session_id\":\"dup\",\"session_name\":\"two\","
                     "\"if_exists\":\"return\"}",
                     &again, &created, &err));
    ck_assert(!created);
    ck_assert(uuid_equal(&first.id, &again.id));
    ck_assert_str_eq(again.session_name, "one"); /* nothing applied */
    /* Another user may use the same name. */
    must_create("bob", "{\"session_id\":\"dup\"}", &again);
    ck_assert_uint_eq(fake_store_count(fx.store), 2);
}
END_TEST

START_TEST(get_is_scoped)
{
    struct error err = ERROR_INIT;
    struct session s;

    must_create("alice", "{\"session_id\":\"mine\"}", &s);
    assert_fails(service_session_get(&fx.svc, &fx.ctx, "bob", "mine", &s, &err),
                 &err, ERR_NOT_FOUND, NULL);
    assert_fails(
        service_session_get(&fx.svc, &fx.ctx, "alice", "no such", &s, &err),
        &err, ERR_NOT_FOUND, NULL);
    ck_assert(service_session_get(&fx.svc, &fx.ctx, "alice", "mine", &s, &err));
}
END_TEST

START_TEST(patch_fields_version_and_metadata)
{
    struct error err = ERROR_INIT;
    struct session s;
    struct buf b;

    must_create("alice",
                "{\"session_id\":\"p\",\"metadata\":{\"a\":1,\"b\":2,\"c\":3}}",
                &s);
    ck_assert(patch("alice", "p", IF_MATCH_ANY,
                    "{\"session_name\":\"x\",\"metadata\":{\"b\":null,\"c\":"
                    "30,\"d\":{\"e\":true}}}",
                    &s, &err));
    ck_assert_int_eq(s.version, 2);
    ck_assert_str_eq(s.session_name, "x");
    buf_init(&b);
    json_write_value(&b, s.metadata);
    ck_assert_str_eq(b.data, "{\"a\":1,\"c\":30,\"d\":{\"e\":true}}");
    buf_release(&b);

    /* {} changes nothing, not even the version. */
    ck_assert(patch("alice", "p", IF_MATCH_ANY, "{}", &s, &err));
    ck_assert_int_eq(s.version, 2);
    /* null clears a nullable string. */
    ck_assert(patch("alice", "p", 2, "{\"session_name\":null}", &s, &err));
    ck_assert_ptr_null(s.session_name);
    ck_assert_int_eq(s.version, 3);
}
END_TEST

START_TEST(patch_if_match_and_status)
{
    struct error err = ERROR_INIT;
    struct session s;

    must_create("alice", "{\"session_id\":\"q\"}", &s);
    assert_fails(patch("alice", "q", 7, "{\"agent_name\":\"z\"}", &s, &err),
                 &err, ERR_PRECONDITION_FAILED, "If-Match");
    assert_fails(
        patch("alice", "q", IF_MATCH_NEVER, "{\"agent_name\":\"z\"}", &s, &err),
        &err, ERR_PRECONDITION_FAILED, "If-Match");
    assert_fails(patch("alice", "q", IF_MATCH_ANY,
                       "{\"status\":\"active\",\"is_active\":false}", &s, &err),
                 &err, ERR_VALIDATION, "is_active");
    assert_fails(
        patch("alice", "q", IF_MATCH_ANY, "{\"status\":\"bogus\"}", &s, &err),
        &err, ERR_VALIDATION, "status");
    ck_assert(patch("alice", "q", IF_MATCH_ANY, "{\"status\":\"completed\"}",
                    &s, &err));
    ck_assert_int_eq(s.status, STATUS_COMPLETED);
    assert_fails(
        patch("alice", "q", IF_MATCH_ANY, "{\"is_active\":true}", &s, &err),
        &err, ERR_CONFLICT, "status");
    /* Another user's session does not exist for bob. */
    assert_fails(
        patch("bob", "q", IF_MATCH_ANY, "{\"agent_name\":\"z\"}", &s, &err),
        &err, ERR_NOT_FOUND, NULL);
}
END_TEST

START_TEST(patch_rereads_after_a_concurrent_writer)
{
    struct error err = ERROR_INIT;
    struct session s;

    must_create("alice", "{\"session_id\":\"r\"}", &s);
    /* The conditional update misses once, as when another worker bumped the
     * version between our read and our write: the service reads again. */
    fake_store_fail(fx.store, FAKE_UPDATE, 1, ERR_NOT_FOUND, RETRY_NEVER,
                    false);
    ck_assert(
        patch("alice", "r", IF_MATCH_ANY, "{\"agent_name\":\"z\"}", &s, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_UPDATE), 2);
    ck_assert_int_eq(s.version, 2);
    /* With If-Match the same miss is the client's 412. */
    fake_store_fail(fx.store, FAKE_UPDATE, 1, ERR_NOT_FOUND, RETRY_NEVER,
                    false);
    assert_fails(patch("alice", "r", 2, "{\"agent_name\":\"y\"}", &s, &err),
                 &err, ERR_PRECONDITION_FAILED, "If-Match");
}
END_TEST

START_TEST(status_machine_through_service)
{
    struct error err = ERROR_INIT;
    struct session s;

    must_create("alice", "{\"session_id\":\"m\"}", &s);
    /* activate on active: 200, no version change */
    ck_assert(service_session_set_status(
        &fx.svc, &fx.ctx, "alice", "m", IF_MATCH_ANY, STATUS_ACTIVE, &s, &err));
    ck_assert_int_eq(s.version, 1);
    ck_assert(service_session_set_status(&fx.svc, &fx.ctx, "alice", "m", 1,
                                         STATUS_INACTIVE, &s, &err));
    ck_assert_int_eq(s.version, 2);
    ck_assert(service_session_set_status(&fx.svc, &fx.ctx, "alice", "m",
                                         IF_MATCH_ANY, STATUS_EXPIRED, &s,
                                         &err));
    assert_fails(service_session_set_status(&fx.svc, &fx.ctx, "alice", "m",
                                            IF_MATCH_ANY, STATUS_INACTIVE, &s,
                                            &err),
                 &err, ERR_CONFLICT, "status");
    ck_assert(service_session_set_status(
        &fx.svc, &fx.ctx, "alice", "m", IF_MATCH_ANY, STATUS_ACTIVE, &s, &err));
    ck_assert(service_session_set_status(
        &fx.svc, &fx.ctx, "alice", "m", IF_MATCH_ANY, STATUS_FAILED, &s, &err));
    assert_fails(service_session_set_status(&fx.svc, &fx.ctx, "alice", "m",
                                            IF_MATCH_ANY, STATUS_ACTIVE, &s,
                                            &err),
                 &err, ERR_CONFLICT, "status");
    ck_assert_int_eq(s.version, 5);
}
END_TEST

START_TEST(delete_rules)
{
    struct error err = ERROR_INIT;
    struct session s;

    must_create("alice", "{\"session_id\":\"d\"}", &s);
    assert_fails(service_session_delete(&fx.svc, &fx.ctx, "bob", "d",
                                        IF_MATCH_ANY, &err),
                 &err, ERR_NOT_FOUND, NULL);
    assert_fails(
        service_session_delete(&fx.svc, &fx.ctx, "alice", "d", 9, &err), &err,
        ERR_PRECONDITION_FAILED, "If-Match");
    ck_assert_uint_eq(fake_store_count(fx.store), 1);
    ck_assert(service_session_delete(&fx.svc, &fx.ctx, "alice", "d", 1, &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_PURGE), 1);
    assert_fails(service_session_delete(&fx.svc, &fx.ctx, "alice", "d",
                                        IF_MATCH_ANY, &err),
                 &err, ERR_NOT_FOUND, NULL);
}
END_TEST

START_TEST(store_down_is_unavailable)
{
    struct error err = ERROR_INIT;
    struct session s;
    bool created;

    fake_store_fail(fx.store, FAKE_INSERT, 10, ERR_UNAVAILABLE, RETRY_SAFE,
                    false);
    assert_fails(create("alice", "{}", &s, &created, &err), &err,
                 ERR_UNAVAILABLE, NULL);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_INSERT), 3);
    fake_store_fail(fx.store, FAKE_GET, 10, ERR_INTERNAL, RETRY_NEVER, false);
    assert_fails(service_session_get(&fx.svc, &fx.ctx, "alice", "x", &s, &err),
                 &err, ERR_INTERNAL, NULL);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_GET), 1);
}
END_TEST

START_TEST(insert_retried_after_lost_reply_is_one_session)
{
    struct error err = ERROR_INIT;
    struct session s;
    bool created = false;

    /* The first insert lands but its reply is lost; the retry meets its own
     * _id, which is success, not a conflict. */
    fake_store_fail(fx.store, FAKE_INSERT, 1, ERR_UNAVAILABLE, RETRY_IDEMPOTENT,
                    true);
    ck_assert(create("alice", "{\"session_id\":\"once\"}", &s, &created, &err));
    ck_assert(created);
    ck_assert_uint_eq(fake_store_count(fx.store), 1);
}
END_TEST

Suite *
service_session_suite(void)
{
    Suite *s = suite_create("service_session");
    TCase *tc = tcase_create("sessions");

    tcase_add_checked_fixture(tc, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(tc, create_defaults);
    tcase_add_test(tc, create_fields_and_inactive);
    tcase_add_test(tc, create_rejects_bad_values);
    tcase_add_test(tc, create_limits);
    tcase_add_test(tc, create_duplicate_and_if_exists);
    tcase_add_test(tc, get_is_scoped);
    tcase_add_test(tc, patch_fields_version_and_metadata);
    tcase_add_test(tc, patch_if_match_and_status);
    tcase_add_test(tc, patch_rereads_after_a_concurrent_writer);
    tcase_add_test(tc, status_machine_through_service);
    tcase_add_test(tc, delete_rules);
    tcase_add_test(tc, store_down_is_unavailable);
    tcase_add_test(tc, insert_retried_after_lost_reply_is_one_session);
    suite_add_tcase(s, tc);
    return s;
}

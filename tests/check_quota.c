/*
 * check_quota.c - the quotas and their counters, through the services on
 * the fake store: every write path refuses what would pass a quota and
 * writes nothing then; every failure after a counter moved moves it back
 * or leaves it too high (never too low) with the session or user marked,
 * and the sweeper's recount repairs what was left; batch replays look
 * their keys up at once; memory pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "fake_store.h"
#include "json.h"
#include "service_export.h"
#include "service_memory.h"
#include "service_message.h"
#include "service_session.h"
#include "service_fixture.h"
#include "suites.h"
#include "sweeper.h"

#define USER "alice"

static const struct json_value *
jstr(const char *s)
{
    return json_new_string(&fx.arena, s, strlen(s));
}

/* `bytes` x's, in fx.arena. */
static const char *
xs(size_t bytes)
{
    char *s = arena_alloc(&fx.arena, bytes + 1);

    memset(s, 'x', bytes);
    s[bytes] = '\0';
    return s;
}

static void
make(const char *user, const char *sid)
{
    struct session_create in;
    struct session s;
    struct error err = ERROR_INIT;
    bool created;

    memset(&in, 0, sizeof(in));
    in.session_id = jstr(sid);
    ck_assert_msg(
        service_session_create(&fx.svc, &fx.ctx, user, &in, &s, &created, &err),
        "create %s: %s", sid, err.message);
    ck_assert(created);
}

static struct session
get(const char *user, const char *sid)
{
    struct session s;
    struct error err = ERROR_INIT;

    ck_assert_msg(service_session_get(&fx.svc, &fx.ctx, user, sid, &s, &err),
                  "get %s: %s", sid, err.message);
    return s;
}

/* n user messages of content `bytes` bytes each, keyed key0, key1, ...
 * when prefix is not NULL. */
static struct message_input *
inputs(size_t n, size_t bytes, const char *prefix)
{
    struct message_input *in = arena_calloc(&fx.arena, n * sizeof(*in));

    for (size_t i = 0; i < n; i++) {
        in[i].role = jstr("user");
        in[i].content = jstr(xs(bytes));
        if (prefix != NULL)
            in[i].client_message_id =
                jstr(arena_printf(&fx.arena, "%s%zu", prefix, i));
    }
    return in;
}

static bool
append(const char *sid, const struct message_input *in, size_t n,
       struct message **out, struct error *err)
{
    bool created;

    return service_message_append(&fx.svc, &fx.ctx, USER, sid, in, n, n > 1,
                                  NULL, out, &created, err);
}

static void
ck_quota(const struct error *err, const char *param)
{
    ck_assert_int_eq(err->code, ERR_QUOTA_EXCEEDED);
    ck_assert_ptr_nonnull(err->param);
    ck_assert_str_eq(err->param, param);
}

static void
ck_counts(const struct session *s, int64_t messages, int64_t bytes,
          int64_t keys)
{
    ck_assert_int_eq(s->message_count, messages);
    ck_assert_int_eq(s->content_bytes, bytes);
    ck_assert_int_eq(s->memory_keys, keys);
}

/* ---- messages ------------------------------------------------------------ */

START_TEST(append_up_to_the_message_quota)
{
    struct message *out;
    struct error err = ERROR_INIT;
    struct session s;

    fx.cfg.quota_messages_per_session = 5;
    make(USER, "s");
    ck_assert(append("s", inputs(3, 10, NULL), 3, &out, &err));
    /* 3 + 3 would pass 5: nothing of the batch is stored */
    ck_assert(!append("s", inputs(3, 10, "k"), 3, &out, &err));
    ck_quota(&err, "quota_messages_per_session");
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 0); /* keys released */
    s = get(USER, "s");
    ck_counts(&s, 3, 30, 0);
    ck_assert_int_eq(s.last_seq, 3); /* no seq handed out */
    /* exactly to the quota is allowed, one more is not */
    error_clear(&err);
    ck_assert(append("s", inputs(2, 10, NULL), 2, &out, &err));
    ck_assert(!append("s", inputs(1, 0, NULL), 1, &out, &err));
    ck_quota(&err, "quota_messages_per_session");
    s = get(USER, "s");
    ck_counts(&s, 5, 50, 0);
}
END_TEST

START_TEST(append_up_to_the_bytes_quota)
{
    struct message *out;
    struct message_input *in;
    struct error err = ERROR_INIT;
    struct session s;

    fx.cfg.quota_bytes_per_session = 100;
    make(USER, "s");
    /* content and extra_data count: 40 + {"a":1} (7) */
    in = inputs(1, 40, NULL);
    in[0].extra_data = service_fixture_json("{\"a\":1}");
    ck_assert(append("s", in, 1, &out, &err));
    ck_assert_int_eq(out[0].bytes, 47);
    ck_assert(!append("s", inputs(1, 54, NULL), 1, &out, &err));
    ck_quota(&err, "quota_bytes_per_session");
    ck_assert(append("s", inputs(1, 53, NULL), 1, &out, &err));
    s = get(USER, "s");
    ck_counts(&s, 2, 100, 0);
    /* an empty message adds no bytes: only the messages quota holds it */
    ck_assert(append("s", inputs(1, 0, NULL), 1, &out, &err));
    ck_assert(!append("s", inputs(1, 1, NULL), 1, &out, &err));
    ck_quota(&err, "quota_bytes_per_session");
}
END_TEST

/* A missing or inactive session is said first; a replay of a stored key
 * is answered at the quota as below it. */
START_TEST(append_errors_before_the_quota)
{
    struct message *out, *again;
    struct message_input *keyed = inputs(1, 1, "r");
    struct session_patch patch;
    struct session s;
    struct error err = ERROR_INIT;
    bool created = true;

    fx.cfg.quota_messages_per_session = 2;
    ck_assert(!append("nope", inputs(3, 1, NULL), 3, &out, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    make(USER, "s");
    ck_assert(append("s", inputs(1, 1, NULL), 1, &out, &err));
    ck_assert(append("s", keyed, 1, &out, &err));
    ck_assert(service_message_append(&fx.svc, &fx.ctx, USER, "s", keyed, 1,
                                     false, NULL, &again, &created, &err));
    ck_assert(!created);
    ck_assert(uuid_equal(&out[0].id, &again[0].id));
    memset(&patch, 0, sizeof(patch));
    patch.status = jstr("inactive");
    ck_assert(service_session_patch(&fx.svc, &fx.ctx, USER, "s", IF_MATCH_ANY,
                                    &patch, &s, &err));
    ck_assert(!append("s", inputs(1, 1, NULL), 1, &out, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
}
END_TEST

/* A failed insert gives back what its reservation took. */
START_TEST(failed_insert_gives_back)
{
    struct message *out;
    struct error err = ERROR_INIT;
    struct session s;

    make(USER, "s");
    fake_store_fail_insert(fx.store, 1, 1, ERR_INTERNAL, RETRY_NEVER);
    ck_assert(!append("s", inputs(3, 10, "k"), 3, &out, &err));
    ck_assert_int_eq(err.code, ERR_INTERNAL);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 0);
    ck_assert_int_ne(s.dirty_at, 0); /* marked all the same */
}
END_TEST

/* ...and when it cannot (its cleanup fails too), the counters stay too
 * high, never too low, and the sweeper's recount sets them. */
START_TEST(failed_cleanup_leaves_it_to_the_sweeper)
{
    struct message *out;
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct session s;

    make(USER, "s");
    ck_assert(append("s", inputs(2, 10, NULL), 2, &out, &err));
    fake_store_fail_insert(fx.store, 1, 1, ERR_INTERNAL, RETRY_NEVER);
    fake_store_fail(fx.store, FAKE_MESSAGE_DELETE_IDS, 1, ERR_INTERNAL,
                    RETRY_NEVER, false);
    ck_assert(!append("s", inputs(3, 10, NULL), 3, &out, &err));
    s = get(USER, "s");
    ck_counts(&s, 5, 50, 0); /* 3 messages reserved, 1 stored */
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    /* a pass before the settle age leaves it alone */
    ck_assert(sweeper_run(&fx.cfg, fx.store, clock_now_ms(), &c, &err));
    ck_assert_int_eq(c.recounted, 0);
    s = get(USER, "s");
    ck_counts(&s, 5, 50, 0);
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          clock_now_ms() + sweeper_tombstone_age(&fx.cfg) + 1,
                          &c, &err));
    ck_assert_int_eq(c.recounted, 1);
    s = get(USER, "s");
    ck_counts(&s, 3, 30, 0);
    ck_assert_int_eq(s.dirty_at, 0);
}
END_TEST

/* A worker that died between its reservation and its insert. */
START_TEST(crash_after_reservation_is_recounted)
{
    struct store_reserve r = {
        {4, 400, 0}, service_session_quotas(&fx.cfg), true, NULL};
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct session s, out;
    int64_t now = clock_now_ms();

    make(USER, "s");
    s = get(USER, "s");
    ck_assert(store_session_reserve_seq(fx.store, &fx.ctx, USER, &s.id, &r, now,
                                        &out, &err));
    s = get(USER, "s");
    ck_counts(&s, 4, 400, 0);
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          now + sweeper_tombstone_age(&fx.cfg) + 1, &c, &err));
    ck_assert_int_eq(c.recounted, 1);
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 0);
    ck_assert_int_eq(s.last_seq, 4); /* numbers are never reused */
}
END_TEST

/* A change between the recount's read and its write wins: the recount
 * leaves the session for the next pass. */
struct append_arg {
    const char *sid;
};

static void
append_meanwhile(void *arg)
{
    struct append_arg *a = arg;
    struct message *out;
    struct error err = ERROR_INIT;

    ck_assert(append(a->sid, inputs(1, 7, NULL), 1, &out, &err));
}

START_TEST(recount_yields_to_a_write)
{
    /* not a message write: the session's activity stays recent, so the
     * idle rule leaves it alone */
    struct store_reserve r = {
        {2, 20, 0}, service_session_quotas(&fx.cfg), false, NULL};
    struct append_arg arg = {"s"};
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct session s, out;
    int64_t now = clock_now_ms();

    make(USER, "s");
    s = get(USER, "s");
    ck_assert(store_session_reserve_seq(fx.store, &fx.ctx, USER, &s.id, &r,
                                        now - 3600 * 1000, &out, &err));
    fake_store_on_call(fx.store, FAKE_SESSION_SET_COUNTS, 1, append_meanwhile,
                       &arg);
    ck_assert(sweeper_run(&fx.cfg, fx.store, now, &c, &err));
    ck_assert_int_eq(c.recounted, 0);
    s = get(USER, "s");
    ck_counts(&s, 3, 27, 0); /* still too high, and marked anew */
    ck_assert_int_ge(s.dirty_at, now - 1000);
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          clock_now_ms() + sweeper_tombstone_age(&fx.cfg) + 1,
                          &c, &err));
    ck_assert_int_eq(c.recounted, 1);
    s = get(USER, "s");
    ck_counts(&s, 1, 7, 0);
}
END_TEST

START_TEST(delete_and_clear_give_back)
{
    struct message *out;
    struct error err = ERROR_INIT;
    struct session s;
    char id[UUID_STR_LEN + 1];
    int64_t deleted = 0;

    make(USER, "s");
    ck_assert(append("s", inputs(3, 10, NULL), 3, &out, &err));
    uuid_format(&out[1].id, id);
    ck_assert(service_message_delete(&fx.svc, &fx.ctx, USER, "s", id, &err));
    s = get(USER, "s");
    ck_counts(&s, 2, 20, 0);
    ck_assert(!service_message_delete(&fx.svc, &fx.ctx, USER, "s", id, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    s = get(USER, "s");
    ck_counts(&s, 2, 20, 0);
    ck_assert(
        service_message_clear(&fx.svc, &fx.ctx, USER, "s", &deleted, &err));
    ck_assert_int_eq(deleted, 2);
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 0);
}
END_TEST

/* A clear meets a delete of one of its messages between its tally and
 * its delete: bytes it cannot tell apart stay counted (never too few),
 * and the recount settles them. */
struct delete_arg {
    const char *id;
};

static void
delete_meanwhile(void *arg)
{
    struct delete_arg *a = arg;
    struct error err = ERROR_INIT;

    ck_assert(service_message_delete(&fx.svc, &fx.ctx, USER, "s", a->id, &err));
}

START_TEST(clear_racing_a_delete_never_undercounts)
{
    struct message *out;
    struct error err = ERROR_INIT;
    struct session s;
    struct sweep_counts c;
    char id[UUID_STR_LEN + 1];
    struct delete_arg arg = {id};
    int64_t deleted = 0;

    make(USER, "s");
    ck_assert(append("s", inputs(3, 10, NULL), 3, &out, &err));
    uuid_format(&out[0].id, id);
    fake_store_on_call(fx.store, FAKE_MESSAGE_CLEAR, 1, delete_meanwhile, &arg);
    ck_assert(
        service_message_clear(&fx.svc, &fx.ctx, USER, "s", &deleted, &err));
    ck_assert_int_eq(deleted, 2);
    s = get(USER, "s");
    ck_assert_int_eq(s.message_count, 0);
    ck_assert_int_ge(s.content_bytes, 0);
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          clock_now_ms() + sweeper_tombstone_age(&fx.cfg) + 1,
                          &c, &err));
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 0);
}
END_TEST

START_TEST(patch_reserves_growth_and_gives_back_shrinking)
{
    struct message *out, m;
    struct error err = ERROR_INIT;
    struct session s;
    char id[UUID_STR_LEN + 1];

    fx.cfg.quota_bytes_per_session = 100;
    make(USER, "s");
    ck_assert(append("s", inputs(2, 30, NULL), 2, &out, &err));
    uuid_format(&out[0].id, id);
    /* 30 -> 70: 100 in all, the quota */
    ck_assert(service_message_patch(&fx.svc, &fx.ctx, USER, "s", id,
                                    jstr(xs(70)), NULL, &m, &err));
    s = get(USER, "s");
    ck_counts(&s, 2, 100, 0);
    /* one byte more: refused, nothing changed */
    ck_assert(!service_message_patch(&fx.svc, &fx.ctx, USER, "s", id,
                                     jstr(xs(71)), NULL, &m, &err));
    ck_quota(&err, "quota_bytes_per_session");
    ck_assert(service_message_get(&fx.svc, &fx.ctx, USER, "s", id, &m, &err));
    ck_assert_uint_eq(strlen(m.content), 70);
    /* extra_data counts too; shrinking gives back */
    ck_assert(service_message_patch(&fx.svc, &fx.ctx, USER, "s", id,
                                    jstr(xs(10)), service_fixture_json("[1,2]"),
                                    &m, &err));
    s = get(USER, "s");
    ck_counts(&s, 2, 45, 0);
    ck_assert_int_eq(m.bytes, 15);
}
END_TEST

/* Another PATCH between this one's read and its update: the update is
 * refused (the message is no longer as read), what was reserved goes
 * back, and the round is run again on the new content. */
struct patch_arg {
    const char *id;
};

static void
patch_meanwhile(void *arg)
{
    struct patch_arg *a = arg;
    struct message m;
    struct error err = ERROR_INIT;

    clock_sleep_ms(2); /* another updated_at */
    ck_assert(service_message_patch(&fx.svc, &fx.ctx, USER, "s", a->id,
                                    jstr(xs(5)), NULL, &m, &err));
}

START_TEST(patch_racing_a_patch_counts_exactly)
{
    struct message *out, m;
    struct error err = ERROR_INIT;
    struct session s;
    char id[UUID_STR_LEN + 1];
    struct patch_arg arg = {id};

    make(USER, "s");
    ck_assert(append("s", inputs(1, 30, NULL), 1, &out, &err));
    uuid_format(&out[0].id, id);
    fake_store_on_call(fx.store, FAKE_MESSAGE_UPDATE, 1, patch_meanwhile, &arg);
    ck_assert(service_message_patch(&fx.svc, &fx.ctx, USER, "s", id,
                                    jstr(xs(50)), NULL, &m, &err));
    ck_assert_uint_eq(strlen(m.content), 50);
    s = get(USER, "s");
    ck_counts(&s, 1, 50, 0);
}
END_TEST

/* A count down past 0 (a counter already off) is not applied: the
 * session is marked for the recount instead.  Never negative. */
START_TEST(counters_never_negative)
{
    struct store_counts down = {-5, -500, -1};
    struct error err = ERROR_INIT;
    struct sweep_counts c;
    struct message *out;
    struct session s;

    make(USER, "s");
    ck_assert(append("s", inputs(2, 10, NULL), 2, &out, &err));
    s = get(USER, "s");
    ck_assert(store_session_touch(fx.store, &fx.ctx, USER, &s.id, &down,
                                  clock_now_ms(), true, &err));
    s = get(USER, "s");
    ck_counts(&s, 2, 20, 0);
    ck_assert_int_ne(s.dirty_at, 0);
    ck_assert(
        store_user_count(fx.store, &fx.ctx, USER, -3, 0, clock_now_ms(), &err));
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 1);
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          clock_now_ms() + sweeper_tombstone_age(&fx.cfg) + 1,
                          &c, &err));
    s = get(USER, "s");
    ck_counts(&s, 2, 20, 0);
}
END_TEST

/* ---- memory -------------------------------------------------------------- */

static bool
put(const char *key, const char *value, struct error *err)
{
    return service_memory_put(&fx.svc, &fx.ctx, USER, "s", key, jstr(value),
                              err);
}

START_TEST(memory_keys_quota)
{
    struct error err = ERROR_INIT;
    struct session s;

    fx.cfg.quota_memory_keys_per_session = 2;
    make(USER, "s");
    ck_assert(put("a", "1", &err));
    ck_assert(put("b", "1", &err));
    ck_assert(!put("c", "1", &err));
    ck_quota(&err, "quota_memory_keys_per_session");
    ck_assert_uint_eq(fake_store_memory_count(fx.store), 2);
    /* a key that is set takes a new value at the quota */
    ck_assert(put("a", "2", &err));
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 2);
    ck_assert(service_memory_delete(&fx.svc, &fx.ctx, USER, "s", "a", &err));
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 1);
    ck_assert(put("c", "1", &err));
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 2);
}
END_TEST

/* Two PUTs of one new key: the second to insert finds it there, gives
 * its slot back and sets the value instead. */
static void
put_meanwhile(void *arg)
{
    struct error err = ERROR_INIT;

    ck_assert(put(arg, "first", &err));
}

START_TEST(memory_put_racing_a_put)
{
    struct error err = ERROR_INIT;
    struct session s;
    struct json_value *v;

    make(USER, "s");
    /* calls of memory_put: 1 is our update (miss); 2 our insert */
    fake_store_on_call(fx.store, FAKE_MEMORY_PUT, 2, put_meanwhile, "k");
    ck_assert(put("k", "second", &err));
    s = get(USER, "s");
    ck_counts(&s, 0, 0, 1);
    ck_assert(service_memory_get(&fx.svc, &fx.ctx, USER, "s", "k", &v, &err));
    ck_assert_str_eq(v->u.s.ptr, "second");
}
END_TEST

START_TEST(memory_pages)
{
    struct error err = ERROR_INIT;
    struct memory_page p;

    make(USER, "s");
    for (int i = 0; i < 5; i++)
        ck_assert(put(arena_printf(&fx.arena, "k%d", i), "v", &err));
    ck_assert(
        service_memory_list(&fx.svc, &fx.ctx, USER, "s", NULL, 2, &p, &err));
    ck_assert_uint_eq(p.items->u.o.len, 2);
    ck_assert(p.has_more);
    ck_assert_str_eq(p.items->u.o.members[1].key, "k1");
    ck_assert(
        service_memory_list(&fx.svc, &fx.ctx, USER, "s", "k1", 2, &p, &err));
    ck_assert_str_eq(p.items->u.o.members[0].key, "k2");
    ck_assert(p.has_more);
    ck_assert(
        service_memory_list(&fx.svc, &fx.ctx, USER, "s", "k3", 2, &p, &err));
    ck_assert_uint_eq(p.items->u.o.len, 1);
    ck_assert(!p.has_more);
    /* exactly a page's worth: no more */
    ck_assert(
        service_memory_list(&fx.svc, &fx.ctx, USER, "s", "k2", 2, &p, &err));
    ck_assert_uint_eq(p.items->u.o.len, 2);
    ck_assert(!p.has_more);
    ck_assert(!service_memory_list(&fx.svc, &fx.ctx, USER, "s", "bad key", 2,
                                   &p, &err));
    ck_assert_str_eq(err.param, "after");
    ck_assert(!service_memory_list(&fx.svc, &fx.ctx, USER, "s", NULL, 1001, &p,
                                   &err));
    ck_assert_str_eq(err.param, "limit");
}
END_TEST

/* ---- sessions ------------------------------------------------------------ */

START_TEST(sessions_per_user)
{
    struct session_create in;
    struct session s;
    struct error err = ERROR_INIT;
    bool created;

    fx.cfg.quota_sessions_per_user = 2;
    make(USER, "a");
    make(USER, "b");
    memset(&in, 0, sizeof(in));
    in.session_id = jstr("c");
    ck_assert(!service_session_create(&fx.svc, &fx.ctx, USER, &in, &s, &created,
                                      &err));
    ck_quota(&err, "quota_sessions_per_user");
    ck_assert_uint_eq(fake_store_count(fx.store), 2);
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 2);
    /* another user has a quota of their own */
    make("bob", "c");
    /* an existing session is answered as ever at the quota */
    in.session_id = jstr("a");
    in.if_exists = jstr("return");
    ck_assert(service_session_create(&fx.svc, &fx.ctx, USER, &in, &s, &created,
                                     &err));
    ck_assert(!created);
    in.if_exists = NULL;
    ck_assert(!service_session_create(&fx.svc, &fx.ctx, USER, &in, &s, &created,
                                      &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    /* a delete frees a slot */
    ck_assert(service_session_delete(&fx.svc, &fx.ctx, USER, "a", IF_MATCH_ANY,
                                     &err));
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 1);
    make(USER, "c");
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 2);
}
END_TEST

/* A duplicate session_id below the quota gives its slot back. */
START_TEST(duplicate_gives_the_slot_back)
{
    struct session_create in;
    struct session s;
    struct error err = ERROR_INIT;
    bool created;

    make(USER, "a");
    memset(&in, 0, sizeof(in));
    in.session_id = jstr("a");
    ck_assert(!service_session_create(&fx.svc, &fx.ctx, USER, &in, &s, &created,
                                      &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 1);
}
END_TEST

/* A delete cut short after the session went: the user's counter stays
 * too high, marked, and the recount sets it. */
static void
fail_next_count(void *arg)
{
    (void)arg;
    fake_store_fail(fx.store, FAKE_USER_COUNT, 1, ERR_INTERNAL, RETRY_NEVER,
                    false);
}

START_TEST(user_counter_recounted)
{
    struct error err = ERROR_INIT;
    struct sweep_counts c;

    make(USER, "a");
    make(USER, "b");
    /* the count down after the delete fails */
    fake_store_on_call(fx.store, FAKE_SESSION_DELETE, 1, fail_next_count, NULL);
    ck_assert(service_session_delete(&fx.svc, &fx.ctx, USER, "a", IF_MATCH_ANY,
                                     &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 1);
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 2);
    ck_assert(sweeper_run(&fx.cfg, fx.store, clock_now_ms(), &c, &err));
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 2);
    ck_assert(sweeper_run(&fx.cfg, fx.store,
                          clock_now_ms() + sweeper_tombstone_age(&fx.cfg) + 1,
                          &c, &err));
    ck_assert_int_eq(c.recounted, 1);
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 1);
    /* a user erased has no counter left */
    make(USER, "c");
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 2);
}
END_TEST

/* ---- import -------------------------------------------------------------- */

static struct import_input
import_of(const char *sid, size_t n, size_t bytes)
{
    struct import_input in;

    memset(&in, 0, sizeof(in));
    in.session.session_id = jstr(sid);
    in.messages = inputs(n, bytes, NULL);
    in.n = n;
    return in;
}

START_TEST(import_within_quotas)
{
    struct import_input in;
    struct session s;
    struct error err = ERROR_INIT;

    fx.cfg.quota_messages_per_session = 3;
    fx.cfg.quota_bytes_per_session = 30;
    fx.cfg.quota_sessions_per_user = 1;
    in = import_of("i", 4, 1);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, USER, &in, &s, &err));
    ck_quota(&err, "quota_messages_per_session");
    in = import_of("i", 3, 11);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, USER, &in, &s, &err));
    ck_quota(&err, "quota_bytes_per_session");
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    in = import_of("i", 3, 10);
    ck_assert(service_export_import(&fx.svc, &fx.ctx, USER, &in, &s, &err));
    s = get(USER, "i");
    ck_counts(&s, 3, 30, 0);
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 1);
    /* the user's quota is full now */
    in = import_of("j", 1, 1);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, USER, &in, &s, &err));
    ck_quota(&err, "quota_sessions_per_user");
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 0);
}
END_TEST

START_TEST(failed_import_gives_the_slot_back)
{
    struct import_input in = import_of("i", 2, 1);
    struct session s;
    struct error err = ERROR_INIT;

    fake_store_fail(fx.store, FAKE_SESSION_INSERT, 1, ERR_INTERNAL, RETRY_NEVER,
                    false);
    ck_assert(!service_export_import(&fx.svc, &fx.ctx, USER, &in, &s, &err));
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, USER), 0);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
}
END_TEST

/* ---- idempotent batches -------------------------------------------------- */

/* A replayed batch is answered from two reads, whatever its size: one for
 * its keys, one for their messages; nothing is claimed or written. */
START_TEST(batch_replay_reads_twice)
{
    struct message *first, *again;
    struct message_input *in = inputs(50, 5, "key");
    struct error err = ERROR_INIT;
    int claims, gets, reserves, lists;

    make(USER, "s");
    ck_assert(append("s", in, 50, &first, &err));
    claims = fake_store_calls(fx.store, FAKE_IDEM_CLAIM);
    gets = fake_store_calls(fx.store, FAKE_MESSAGE_GET);
    reserves = fake_store_calls(fx.store, FAKE_SESSION_RESERVE_SEQ);
    lists = fake_store_calls(fx.store, FAKE_MESSAGE_LIST);
    ck_assert(append("s", in, 50, &again, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_GET_MANY), 2);
    /* its keys' seqs are one range: read as such */
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_LIST), lists + 1);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_GET_MANY), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_CLAIM), claims);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_GET), gets);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_RESERVE_SEQ),
                     reserves);
    for (size_t i = 0; i < 50; i++)
        ck_assert(uuid_equal(&first[i].id, &again[i].id));
    ck_assert_uint_eq(fake_store_message_count(fx.store), 50);
}
END_TEST

/* The first store of a keyed batch claims its keys in one write and
 * marks them done in another, whatever its size. */
START_TEST(batch_keys_claimed_at_once)
{
    struct message *out, *again;
    struct message_input *in = inputs(30, 5, "key");
    struct error err = ERROR_INIT;

    make(USER, "s");
    ck_assert(append("s", in, 30, &out, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_CLAIM_MANY), 1);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_CLAIM), 0);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_COMPLETE_MANY), 1);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_COMPLETE), 0);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 30);
    ck_assert(append("s", in, 30, &again, &err));
    ck_assert(uuid_equal(&out[29].id, &again[29].id));
    ck_assert_int_eq(again[29].seq, 30);
}
END_TEST

/* A key another request claims between the lookup and the claim: the
 * claim reports it taken, and the key by key path waits for it or takes
 * it over; here its holder died long ago. */
struct stale_arg {
    const struct uuid *session;
};

static void
claim_meanwhile(void *arg)
{
    struct stale_arg *a = arg;
    struct idem_key dead = {{{0}}, 0, 1};
    struct error err = ERROR_INIT;

    uuid_generate(&dead.message_id);
    ck_assert(store_idem_claim(fx.store, &fx.ctx, USER, a->session, "key1",
                               &dead, &err));
}

START_TEST(batch_key_taken_meanwhile)
{
    struct message *out;
    struct message_input *in = inputs(3, 5, "key");
    struct error err = ERROR_INIT;
    struct session s;
    struct stale_arg arg;

    make(USER, "s");
    s = get(USER, "s");
    arg.session = &s.id;
    fake_store_on_call(fx.store, FAKE_IDEM_CLAIM_MANY, 1, claim_meanwhile,
                       &arg);
    ck_assert(append("s", in, 3, &out, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_IDEM_REPLACE), 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 3);
}
END_TEST

/* Keys of messages far apart are read by their ids. */
START_TEST(batch_replay_of_scattered_keys)
{
    struct message *out, *a, *b, *again;
    struct message_input *in = inputs(2, 5, "key");
    struct error err = ERROR_INIT;

    make(USER, "s");
    ck_assert(append("s", in, 1, &a, &err));
    ck_assert(append("s", inputs(10, 1, NULL), 10, &out, &err));
    ck_assert(append("s", in + 1, 1, &b, &err));
    ck_assert(append("s", in, 2, &again, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_GET_MANY), 1);
    ck_assert(uuid_equal(&again[0].id, &a[0].id));
    ck_assert(uuid_equal(&again[1].id, &b[0].id));
    ck_assert_int_eq(again[1].seq, 12);
}
END_TEST

/* Part stored, part not: 409, and nothing claimed for the rest. */
START_TEST(batch_part_replay_conflicts)
{
    struct message *out;
    struct message_input *in = inputs(4, 5, "key");
    struct error err = ERROR_INIT;
    size_t keys;

    make(USER, "s");
    ck_assert(append("s", in, 2, &out, &err));
    keys = fake_store_idem_count(fx.store);
    ck_assert(!append("s", in, 4, &out, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), keys);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 2);
}
END_TEST

/* ---- context --------------------------------------------------------------
 */

static size_t
size_100(const struct message *m)
{
    (void)m;
    return 99; /* + a comma: 100 per item */
}

START_TEST(context_ends_at_the_byte_bound)
{
    struct message *out;
    struct message_page page;
    struct error err = ERROR_INIT;
    int64_t tokens;
    bool cut;

    make(USER, "s");
    ck_assert(append("s", inputs(5, 4, NULL), 5, &out, &err));
    ck_assert(service_message_context_bounded(&fx.svc, &fx.ctx, USER, "s", 20,
                                              4000, 300, size_100, &page,
                                              &tokens, &cut, &err));
    ck_assert_uint_eq(page.len, 3);
    ck_assert_int_eq(page.items[0].seq, 3); /* the newest run, oldest first */
    ck_assert_int_eq(tokens, 3);
    ck_assert(cut);
    /* the token bound shorter: not cut by bytes */
    ck_assert(service_message_context_bounded(&fx.svc, &fx.ctx, USER, "s", 20,
                                              2, 300, size_100, &page, &tokens,
                                              &cut, &err));
    ck_assert_uint_eq(page.len, 2);
    ck_assert(!cut);
    /* never empty for the bytes alone */
    ck_assert(service_message_context_bounded(&fx.svc, &fx.ctx, USER, "s", 20,
                                              4000, 1, size_100, &page, &tokens,
                                              &cut, &err));
    ck_assert_uint_eq(page.len, 1);
    ck_assert(cut);
}
END_TEST

Suite *
quota_suite(void)
{
    Suite *s = suite_create("quota");
    TCase *t = tcase_create("messages");

    tcase_add_checked_fixture(t, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(t, append_up_to_the_message_quota);
    tcase_add_test(t, append_up_to_the_bytes_quota);
    tcase_add_test(t, append_errors_before_the_quota);
    tcase_add_test(t, failed_insert_gives_back);
    tcase_add_test(t, failed_cleanup_leaves_it_to_the_sweeper);
    tcase_add_test(t, crash_after_reservation_is_recounted);
    tcase_add_test(t, recount_yields_to_a_write);
    tcase_add_test(t, delete_and_clear_give_back);
    tcase_add_test(t, clear_racing_a_delete_never_undercounts);
    tcase_add_test(t, patch_reserves_growth_and_gives_back_shrinking);
    tcase_add_test(t, patch_racing_a_patch_counts_exactly);
    tcase_add_test(t, counters_never_negative);
    suite_add_tcase(s, t);

    t = tcase_create("memory");
    tcase_add_checked_fixture(t, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(t, memory_keys_quota);
    tcase_add_test(t, memory_put_racing_a_put);
    tcase_add_test(t, memory_pages);
    suite_add_tcase(s, t);

    t = tcase_create("sessions");
    tcase_add_checked_fixture(t, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(t, sessions_per_user);
    tcase_add_test(t, duplicate_gives_the_slot_back);
    tcase_add_test(t, user_counter_recounted);
    tcase_add_test(t, import_within_quotas);
    tcase_add_test(t, failed_import_gives_the_slot_back);
    suite_add_tcase(s, t);

    t = tcase_create("batches");
    tcase_add_checked_fixture(t, service_fixture_setup,
                              service_fixture_teardown);
    tcase_add_test(t, batch_replay_reads_twice);
    tcase_add_test(t, batch_keys_claimed_at_once);
    tcase_add_test(t, batch_replay_of_scattered_keys);
    tcase_add_test(t, batch_key_taken_meanwhile);
    tcase_add_test(t, batch_part_replay_conflicts);
    tcase_add_test(t, context_ends_at_the_byte_bound);
    suite_add_tcase(s, t);
    return s;
}

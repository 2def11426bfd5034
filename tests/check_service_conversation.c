/*
 * check_service_conversation.c - a conversation turn on the fake store with
 * a scripted agent backend: what the backend is given, what is stored
 * (all of the turn, or none of it on every kind of failure), the turn's
 * key (a replay does not ask the backend again, a key held by a running
 * turn is waited for and never run twice, a failed turn frees it), the
 * session a failed first turn made, the token usage, and the checks on
 * the request.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "clock.h"
#include "fake_store.h"
#include "service_conversation.h"
#include "service_fixture.h"
#include "suites.h"

/* The scripted backend: what it answers, and what it was given. */
struct script {
    int calls;
    bool fail;
    enum error_code code;
    const char *content;
    struct llm_tool_call tool_calls[2];
    size_t n_tool_calls;
    int64_t prompt_tokens, completion_tokens;
    bool poll_first;        /* ask cb->poll before answering */
    void (*during)(void *); /* runs inside the call */
    /* the last turn given */
    size_t n_context, n_messages;
    const char *instructions;
    const char *first_context, *first_message;
    bool stream;
    bool had_tools;
};

static struct script sc;
static struct agent *ag;

static bool
scripted_reply(struct agent *agent, const struct agent_turn *t,
               const struct llm_callbacks *cb, struct arena *a,
               struct llm_reply *out, struct error *err)
{
    struct script *s = agent_arg(agent);

    s->calls++;
    s->n_context = t->n_context;
    s->n_messages = t->n_messages;
    s->instructions = t->instructions;
    s->first_context = t->n_context > 0 ? t->context[0].content : NULL;
    s->first_message = t->n_messages > 0 ? t->messages[0].content : NULL;
    s->stream = t->stream;
    s->had_tools = t->tools != NULL;
    if (s->during != NULL)
        s->during(NULL);
    if (s->poll_first && cb->poll != NULL && !cb->poll(cb->arg, err))
        return false;
    if (s->fail)
        return error_set(err, s->code, NULL, "scripted failure");
    memset(out, 0, sizeof(*out));
    out->content = arena_strdup(a, s->content ? s->content : "");
    out->content_len = strlen(out->content);
    out->tool_calls = s->n_tool_calls > 0 ? s->tool_calls : NULL;
    out->n_tool_calls = s->n_tool_calls;
    out->finish_reason = s->n_tool_calls > 0 ? "tool_calls" : "stop";
    out->prompt_tokens = s->prompt_tokens;
    out->completion_tokens = s->completion_tokens;
    return true;
}

static const struct agent_backend scripted = {"scripted", true, scripted_reply};

static void
setup(void)
{
    service_fixture_setup();
    memset(&sc, 0, sizeof(sc));
    sc.content = "the reply";
    sc.prompt_tokens = sc.completion_tokens = -1;
    ag = agent_new_with(&fx.cfg, &scripted, &sc);
    fx.svc.agent = ag;
}

static void
teardown(void)
{
    agent_free(ag);
    service_fixture_teardown();
}

static const struct json_value *
jstr(const char *s)
{
    return json_new_string(&fx.arena, s, strlen(s));
}

/* n user messages "m0", "m1", ... */
static struct message_input *
inputs(size_t n)
{
    struct message_input *in = arena_calloc(&fx.arena, n * sizeof(*in));

    for (size_t i = 0; i < n; i++) {
        in[i].role = jstr("user");
        in[i].content = jstr(arena_printf(&fx.arena, "m%zu", i));
    }
    return in;
}

static struct conversation_input
turn_in(const char *sid, size_t n, const char *key)
{
    struct conversation_input in;

    memset(&in, 0, sizeof(in));
    in.messages = inputs(n);
    in.n = n;
    if (sid != NULL)
        in.session.session_id = jstr(sid);
    in.session.f.agent_instructions = jstr("Be brief.");
    if (key != NULL)
        in.client_message_id = jstr(key);
    return in;
}

static bool
run(const struct conversation_input *in, struct conversation_result *out,
    struct error *err)
{
    return service_conversation_turn(&fx.svc, &fx.ctx, "alice", in, NULL, out,
                                     err);
}

static int64_t
stored(const char *sid)
{
    struct session s;
    struct error err = ERROR_INIT;

    if (!store_session_get(fx.store, &fx.ctx, "alice", sid, &s, &err))
        return -1;
    return s.message_count;
}

START_TEST(turn_stores_messages_and_reply_together)
{
    struct conversation_input in = turn_in("s1", 2, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;

    ck_assert_msg(run(&in, &out, &err), "%s", err.message);
    ck_assert_int_eq(sc.calls, 1);
    ck_assert_str_eq(sc.instructions, "Be brief.");
    ck_assert_int_eq(sc.n_context, 0); /* a new session has no history */
    ck_assert_int_eq(sc.n_messages, 2);
    ck_assert_str_eq(sc.first_message, "m0");
    ck_assert_str_eq(out.session_id, "s1");
    ck_assert_str_eq(out.response, "the reply");
    ck_assert_int_eq(out.messages_count, 3);
    ck_assert(out.session_active);
    ck_assert(!out.replayed);
    ck_assert_int_eq(out.message.seq, 3);
    ck_assert_int_eq(out.message.role, ROLE_ASSISTANT);
    ck_assert_ptr_null(out.message.extra_data);
    /* one reservation for the three: the messages and the reply are one
     * batch */
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_RESERVE_SEQ), 1);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_MESSAGE_INSERT), 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 3);

    /* the next turn is sent the history */
    in = turn_in("s1", 1, NULL);
    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(sc.n_context, 3);
    ck_assert_str_eq(sc.first_context, "m0");
    ck_assert_int_eq(out.messages_count, 5);
}
END_TEST

START_TEST(history_follows_the_context_settings)
{
    struct conversation_input in = turn_in("s1", 3, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;

    fx.cfg.llm_context_messages = 2;
    ck_assert(run(&in, &out, &err));
    in = turn_in("s1", 1, NULL);
    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(sc.n_context, 2); /* m2 and the reply */
    ck_assert_str_eq(sc.first_context, "m2");
    /* "the reply" is 9 bytes: 3 tokens */
    fx.cfg.llm_context_messages = 20;
    fx.cfg.llm_context_tokens = 3;
    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(sc.n_context, 1);
    fx.cfg.llm_context_messages = 0;
    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(sc.n_context, 0);
}
END_TEST

START_TEST(backend_failure_stores_nothing)
{
    static const enum error_code codes[] = {ERR_UPSTREAM, ERR_UPSTREAM_TIMEOUT,
                                            ERR_CLIENT_GONE};
    struct conversation_input in = turn_in("s1", 1, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;

    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(stored("s1"), 2);
    sc.fail = true;
    for (size_t i = 0; i < 3; i++) {
        sc.code = codes[i];
        in = turn_in("s1", 2, "k1");
        ck_assert(!run(&in, &out, &err));
        ck_assert_int_eq(err.code, codes[i]);
        ck_assert_int_eq(stored("s1"), 2);
        ck_assert_uint_eq(fake_store_message_count(fx.store), 2);
        /* the key is free again */
        ck_assert_uint_eq(fake_store_idem_count(fx.store), 0);
    }
    ck_assert_int_eq(sc.calls, 4);
}
END_TEST

START_TEST(failed_first_turn_takes_its_session_back)
{
    struct conversation_input in = turn_in("new", 1, "k1");
    struct conversation_result out;
    struct error err = ERROR_INIT;

    sc.fail = true;
    sc.code = ERR_UPSTREAM;
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(err.code, ERR_UPSTREAM);
    ck_assert_int_eq(stored("new"), -1);
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 0);
    /* a session named by the server too */
    in = turn_in(NULL, 1, NULL);
    ck_assert(!run(&in, &out, &err));
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
}
END_TEST

/* Another request stores a message in the new session while the turn
 * waits on the backend: the failed turn must leave it. */
static void
append_meanwhile(void *arg)
{
    struct message_input *one = inputs(1);
    struct message *out;
    struct error err = ERROR_INIT;
    bool created;

    (void)arg;
    ck_assert(service_message_append(&fx.svc, &fx.ctx, "alice", "new", one, 1,
                                     false, NULL, &out, &created, &err));
}

START_TEST(session_used_meanwhile_stays)
{
    struct conversation_input in = turn_in("new", 1, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;

    sc.fail = true;
    sc.code = ERR_UPSTREAM;
    sc.during = append_meanwhile;
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(stored("new"), 1);
    ck_assert_uint_eq(fake_store_tombstone_count(fx.store), 0);
}
END_TEST

START_TEST(store_failure_stores_nothing)
{
    struct conversation_input in = turn_in("s1", 2, "k1");
    struct conversation_result out;
    struct error err = ERROR_INIT;

    fake_store_fail_insert(fx.store, 2, 2, ERR_INTERNAL, RETRY_NEVER);
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(sc.calls, 1);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    /* and then it works, the key with it */
    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(out.messages_count, 3);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 1);
}
END_TEST

START_TEST(replay_answers_the_stored_turn)
{
    struct conversation_input in = turn_in("s1", 1, "k1");
    struct conversation_result first, again;
    struct error err = ERROR_INIT;
    char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];

    ck_assert(run(&in, &first, &err));
    sc.content = "another reply";
    ck_assert(run(&in, &again, &err));
    ck_assert_int_eq(sc.calls, 1);
    ck_assert(again.replayed);
    uuid_format(&first.message.id, a);
    uuid_format(&again.message.id, b);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(again.response, "the reply");
    ck_assert_int_eq(again.messages_count, 2);
    ck_assert_int_eq(again.message.seq, 2);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 2);
    /* the Idempotency-Key header is the same key */
    in.client_message_id = NULL;
    in.idem_header = "k1";
    ck_assert(run(&in, &again, &err));
    ck_assert(again.replayed);
    ck_assert_int_eq(sc.calls, 1);
    /* another key is another turn */
    in.idem_header = "k2";
    ck_assert(run(&in, &again, &err));
    ck_assert(!again.replayed);
    ck_assert_int_eq(sc.calls, 2);
    ck_assert_int_eq(again.messages_count, 4);
}
END_TEST

/* A replay arriving while the first turn still waits on the backend: it
 * must wait (here, until its own short deadline) and never ask the
 * backend itself. */
static int nested_code;

static void
replay_meanwhile(void *arg)
{
    struct conversation_input in = turn_in("s1", 1, "k1");
    struct conversation_result out;
    struct error err = ERROR_INIT;
    struct store_ctx ctx = fx.ctx;
    bool ok;

    (void)arg;
    sc.during = NULL;
    ctx.deadline_ms = clock_mono_ms() + 400;
    ok = service_conversation_turn(&fx.svc, &ctx, "alice", &in, NULL, &out,
                                   &err);
    nested_code = ok ? 0 : (int)err.code;
}

START_TEST(concurrent_replay_waits_and_never_runs_twice)
{
    struct conversation_input in = turn_in("s1", 1, "k1");
    struct conversation_result out;
    struct error err = ERROR_INIT;
    int64_t t0;

    /* the session exists first, so both requests find it */
    {
        struct conversation_input first = turn_in("s1", 1, NULL);

        ck_assert(run(&first, &out, &err));
    }
    sc.during = replay_meanwhile;
    t0 = clock_mono_ms();
    ck_assert(run(&in, &out, &err));
    ck_assert_int_ge(clock_mono_ms() - t0, 300); /* it did wait */
    ck_assert_int_eq(nested_code, ERR_CONFLICT);
    ck_assert_int_eq(sc.calls, 2); /* the first turn and this one only */
    ck_assert_int_eq(out.messages_count, 4);
    /* once stored, the replay answers it */
    ck_assert(run(&in, &out, &err));
    ck_assert(out.replayed);
    ck_assert_int_eq(sc.calls, 2);
}
END_TEST

START_TEST(tool_calls_stored_in_extra_data)
{
    struct conversation_input in = turn_in("s1", 1, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;
    const struct json_value *calls, *c0, *c1, *fn;

    sc.content = "";
    sc.tool_calls[0] =
        (struct llm_tool_call){"call_a", "get_weather", "{\"city\":\"Paris\"}"};
    sc.tool_calls[1] = (struct llm_tool_call){"", "get_time", NULL};
    sc.n_tool_calls = 2;
    in.tools = service_fixture_json("[{\"type\":\"function\"}]");
    ck_assert(run(&in, &out, &err));
    ck_assert(sc.had_tools);
    ck_assert_str_eq(out.response, "");
    calls = json_get(out.message.extra_data, "tool_calls");
    ck_assert_ptr_nonnull(calls);
    ck_assert_uint_eq(calls->u.a.len, 2);
    c0 = calls->u.a.items[0];
    ck_assert_str_eq(json_get(c0, "id")->u.s.ptr, "call_a");
    ck_assert_str_eq(json_get(c0, "type")->u.s.ptr, "function");
    fn = json_get(c0, "function");
    ck_assert_str_eq(json_get(fn, "name")->u.s.ptr, "get_weather");
    ck_assert_str_eq(json_get(fn, "arguments")->u.s.ptr,
                     "{\"city\":\"Paris\"}");
    /* a call the model gave no id gets one, so its result can name it */
    c1 = calls->u.a.items[1];
    ck_assert_int_eq(strncmp(json_get(c1, "id")->u.s.ptr, "call_", 5), 0);
    ck_assert_uint_eq(json_get(c1, "id")->u.s.len, 29);
    ck_assert_str_eq(json_get(json_get(c1, "function"), "arguments")->u.s.ptr,
                     "{}");
    ck_assert_ptr_null(json_get(out.message.extra_data, "finish_reason"));
}
END_TEST

START_TEST(reply_that_cannot_be_stored_stores_nothing)
{
    struct conversation_input in = turn_in("s1", 1, "k1");
    struct conversation_result out;
    struct error err = ERROR_INIT;
    char *args = arena_alloc(&fx.arena, 20001);

    memset(args, 'a', 20000);
    args[20000] = '\0';
    sc.tool_calls[0] = (struct llm_tool_call){"call_a", "f", args};
    sc.n_tool_calls = 1;
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(err.code, ERR_UPSTREAM);
    ck_assert_ptr_nonnull(strstr(err.message, "extra_data"));
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
    ck_assert_uint_eq(fake_store_idem_count(fx.store), 0);
    /* content past max_content_bytes */
    sc.n_tool_calls = 0;
    fx.cfg.max_content_bytes = 5;
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(err.code, ERR_UPSTREAM);
    ck_assert_uint_eq(fake_store_message_count(fx.store), 0);
}
END_TEST

START_TEST(usage_added_to_the_session)
{
    struct conversation_input in = turn_in("s1", 1, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;
    struct session s;

    sc.prompt_tokens = 11;
    sc.completion_tokens = 3;
    ck_assert(run(&in, &out, &err));
    sc.prompt_tokens = 20;
    sc.completion_tokens = -1; /* not reported: nothing added */
    ck_assert(run(&in, &out, &err));
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &s, &err));
    ck_assert_int_eq(s.prompt_tokens, 31);
    ck_assert_int_eq(s.completion_tokens, 3);
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_ADD_USAGE), 2);
    /* none at all: no write */
    sc.prompt_tokens = -1;
    ck_assert(run(&in, &out, &err));
    ck_assert_int_eq(fake_store_calls(fx.store, FAKE_SESSION_ADD_USAGE), 2);
}
END_TEST

static bool
client_gone(void *arg, struct error *err)
{
    (void)arg;
    return error_set(err, ERR_CLIENT_GONE, NULL, "gone");
}

START_TEST(client_gone_stores_nothing)
{
    struct conversation_input in = turn_in("s1", 1, NULL);
    struct conversation_hooks hooks = {{NULL, client_gone, NULL}, NULL};
    struct conversation_result out;
    struct error err = ERROR_INIT;

    ck_assert(run(&in, &out, &err)); /* the session, with a turn */
    ck_assert(!service_conversation_turn(&fx.svc, &fx.ctx, "alice", &in, &hooks,
                                         &out, &err));
    ck_assert_int_eq(err.code, ERR_CLIENT_GONE);
    ck_assert_int_eq(stored("s1"), 2);
    /* also when the backend asks */
    sc.poll_first = true;
    ck_assert(!service_conversation_turn(&fx.svc, &fx.ctx, "alice", &in, &hooks,
                                         &out, &err));
    ck_assert_int_eq(err.code, ERR_CLIENT_GONE);
    ck_assert_int_eq(stored("s1"), 2);
}
END_TEST

START_TEST(inactive_session_is_409_and_never_asks)
{
    struct conversation_input in = turn_in("s1", 1, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;
    struct session s;
    struct session_change ch = {SET_STATUS,      NULL, NULL, NULL, NULL,
                                STATUS_INACTIVE, NULL, 1};

    ck_assert(run(&in, &out, &err));
    ck_assert(store_session_get(fx.store, &fx.ctx, "alice", "s1", &s, &err));
    ck_assert(store_session_update(fx.store, &fx.ctx, "alice", &s.id, s.version,
                                   &ch, &s, &err));
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(err.code, ERR_CONFLICT);
    ck_assert_int_eq(sc.calls, 1);
    ck_assert_int_eq(stored("s1"), 2);
}
END_TEST

/* A session that cannot take the turn is 403 before the backend is
 * asked; a failed first turn gives its session slot back. */
START_TEST(quota_before_asking)
{
    struct conversation_input in = turn_in("s1", 2, NULL);
    struct conversation_result out;
    struct error err = ERROR_INIT;

    fx.cfg.quota_messages_per_session = 5;
    ck_assert(run(&in, &out, &err));  /* 3 */
    ck_assert(!run(&in, &out, &err)); /* 3 + 3 > 5 */
    ck_assert_int_eq(err.code, ERR_QUOTA_EXCEEDED);
    ck_assert_str_eq(err.param, "quota_messages_per_session");
    ck_assert_int_eq(sc.calls, 1);
    ck_assert_int_eq(stored("s1"), 3);
    in = turn_in("s1", 1, NULL);
    ck_assert(run(&in, &out, &err)); /* exactly 5 */
    ck_assert_int_eq(stored("s1"), 5);

    fx.cfg.quota_sessions_per_user = 2;
    sc.fail = true;
    sc.code = ERR_UPSTREAM;
    in = turn_in("new", 1, NULL);
    ck_assert(!run(&in, &out, &err));
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, "alice"), 1);
    sc.fail = false;
    ck_assert(run(&in, &out, &err));
    ck_assert_uint_eq(fake_store_user_sessions(fx.store, "alice"), 2);
    in = turn_in("third", 1, NULL);
    ck_assert(!run(&in, &out, &err));
    ck_assert_int_eq(err.code, ERR_QUOTA_EXCEEDED);
    ck_assert_str_eq(err.param, "quota_sessions_per_user");
}
END_TEST

START_TEST(request_checks_before_anything)
{
    struct conversation_result out;
    struct error err = ERROR_INIT;
    struct conversation_input in;
    struct message_input *m;

    /* a key on a message rather than on the turn */
    in = turn_in("s1", 2, NULL);
    m = inputs(2);
    m[1].client_message_id = jstr("k");
    in.messages = m;
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "messages[1].client_message_id");
    /* stream, tools, tool_choice */
    in = turn_in("s1", 1, NULL);
    in.stream = jstr("yes");
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "stream");
    in = turn_in("s1", 1, NULL);
    in.tools = service_fixture_json("{\"type\":\"function\"}");
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "tools");
    in = turn_in("s1", 1, NULL);
    in.tool_choice = service_fixture_json("5");
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "tool_choice");
    /* keys: bad, and body and header disagreeing */
    in = turn_in("s1", 1, "has space");
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "client_message_id");
    in = turn_in("s1", 1, NULL);
    in.idem_header = "";
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "Idempotency-Key");
    in = turn_in("s1", 1, "a");
    in.idem_header = "b";
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "client_message_id");
    /* count: the reply takes a place in the batch */
    in = turn_in("s1", (size_t)fx.cfg.max_batch_messages, NULL);
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "messages");
    in = turn_in("s1", 0, NULL);
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "messages");
    /* a bad message */
    in = turn_in("s1", 2, NULL);
    m = inputs(2);
    m[1].role = jstr("bogus");
    in.messages = m;
    ck_assert(!run(&in, &out, &err));
    ck_assert_str_eq(err.param, "messages[1].role");
    ck_assert_int_eq(sc.calls, 0);
    ck_assert_uint_eq(fake_store_count(fx.store), 0);
    /* the most a turn takes */
    in = turn_in("s1", (size_t)fx.cfg.max_batch_messages - 1, NULL);
    ck_assert_msg(run(&in, &out, &err), "%s", err.message);
    ck_assert_int_eq(out.messages_count, fx.cfg.max_batch_messages);
}
END_TEST

Suite *
service_conversation_suite(void)
{
    Suite *s = suite_create("service_conversation");
    TCase *t = tcase_create("turn");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, turn_stores_messages_and_reply_together);
    tcase_add_test(t, history_follows_the_context_settings);
    tcase_add_test(t, backend_failure_stores_nothing);
    tcase_add_test(t, failed_first_turn_takes_its_session_back);
    tcase_add_test(t, session_used_meanwhile_stays);
    tcase_add_test(t, store_failure_stores_nothing);
    tcase_add_test(t, replay_answers_the_stored_turn);
    tcase_add_test(t, concurrent_replay_waits_and_never_runs_twice);
    tcase_add_test(t, tool_calls_stored_in_extra_data);
    tcase_add_test(t, reply_that_cannot_be_stored_stores_nothing);
    tcase_add_test(t, usage_added_to_the_session);
    tcase_add_test(t, client_gone_stores_nothing);
    tcase_add_test(t, inactive_session_is_409_and_never_asks);
    tcase_add_test(t, request_checks_before_anything);
    tcase_add_test(t, quota_before_asking);
    suite_add_tcase(s, t);
    return s;
}

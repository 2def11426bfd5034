/*
 * check_agent.c - src/agent.c: the messages a model is sent for a turn
 * (the system message, the order, tool calls paired with their results as
 * Chat Completions requires, what is left out), the echo backend, and the
 * configuration checks.  The openai backend's wire format is
 * tests/check_llm.c's; through parley, tests/check_conversation.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "agent.h"
#include "buf.h"
#include "suites.h"

static struct arena a;
static struct config cfg;

static void
setup(void)
{
    struct error err = ERROR_INIT;

    arena_init(&a, 0);
    setenv("PARLEY_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
}

static void
teardown(void)
{
    config_release(&cfg);
    arena_release(&a);
    unsetenv("PARLEY_AGENT_BACKEND");
    unsetenv("PARLEY_LLM_BASE_URL");
    unsetenv("PARLEY_LLM_MODEL");
    unsetenv("PARLEY_LLM_API_KEY_FILE");
}

static const struct json_value *
json(const char *text)
{
    struct error err = ERROR_INIT;
    const struct json_value *v = json_parse(&a, text, strlen(text), 32, &err);

    ck_assert_msg(v != NULL, "bad test JSON %s: %s", text, err.message);
    return v;
}

static struct message
msg(enum message_role role, const char *content)
{
    struct message m;

    memset(&m, 0, sizeof(m));
    m.role = role;
    m.content = content;
    return m;
}

static struct message
tool(const char *call, const char *content)
{
    struct message m = msg(ROLE_TOOL, content);

    m.tool_call_id = call;
    return m;
}

/* An assistant message whose extra_data is the JSON given. */
static struct message
calls(const char *content, const char *extra_data)
{
    struct message m = msg(ROLE_ASSISTANT, content);

    m.extra_data = json(extra_data);
    return m;
}

/* What was built, one line per message: "role:content" with
 * "[id,name,args;...]" for calls and "<-id" for a tool's call; a NULL
 * content shows as "null". */
static const char *
show(const struct agent_turn *t)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    struct llm_message *m;
    size_t n = agent_chat_messages(t, &a, &m);
    struct buf b;
    const char *out;

    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s:%s", roles[m[i].role],
                   m[i].content ? m[i].content : "null");
        if (m[i].n_tool_calls > 0) {
            buf_addch(&b, '[');
            for (size_t k = 0; k < m[i].n_tool_calls; k++)
                buf_printf(&b, "%s%s,%s,%s", k ? ";" : "",
                           m[i].tool_calls[k].id, m[i].tool_calls[k].name,
                           m[i].tool_calls[k].arguments
                               ? m[i].tool_calls[k].arguments
                               : "NULL");
            buf_addch(&b, ']');
        }
        if (m[i].tool_call_id != NULL)
            buf_printf(&b, "<-%s", m[i].tool_call_id);
        buf_addch(&b, '\n');
    }
    out = arena_strndup(&a, b.data ? b.data : "", b.len);
    buf_release(&b);
    return out;
}

START_TEST(system_first_then_history_then_new)
{
    struct message hist[] = {msg(ROLE_USER, "h1"), msg(ROLE_ASSISTANT, "h2"),
                             msg(ROLE_SYSTEM, "h3")};
    struct message now[] = {msg(ROLE_USER, "n1"), msg(ROLE_USER, "n2"),
                            msg(ROLE_DEVELOPER, "n3")};
    struct agent_turn t = {"Be brief.", hist, 3, now, 3, NULL, NULL, false, 0};

    /* a developer message goes as a system one: every server knows it */
    ck_assert_str_eq(show(&t), "system:Be brief.\nuser:h1\nassistant:h2\n"
                               "system:h3\nuser:n1\nuser:n2\nsystem:n3\n");
    t.n_messages = 2;
    /* no instructions, no system message */
    t.instructions = "";
    ck_assert_str_eq(show(&t), "user:h1\nassistant:h2\nsystem:h3\nuser:n1\n"
                               "user:n2\n");
    t.instructions = NULL;
    t.n_context = 0;
    ck_assert_str_eq(show(&t), "user:n1\nuser:n2\n");
}
END_TEST

START_TEST(tool_calls_paired_with_their_results)
{
    /* What parley stores for a reply with two calls; the client answers
     * them in the next turn, in the other order. */
    struct message hist[] = {
        msg(ROLE_USER, "weather?"),
        calls("", "{\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                  "\"function\":{\"name\":\"get_weather\",\"arguments\":"
                  "\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"c2\","
                  "\"type\":\"function\",\"function\":{\"name\":\"get_time\","
                  "\"arguments\":\"{}\"}}]}"),
    };
    struct message now[] = {tool("c2", "noon"), tool("c1", "18C")};
    struct agent_turn t = {NULL, hist, 2, now, 2, NULL, NULL, false, 0};

    ck_assert_str_eq(show(&t),
                     "user:weather?\n"
                     "assistant:null[c1,get_weather,{\"city\":\"Paris\"};"
                     "c2,get_time,{}]\n"
                     "tool:18C<-c1\ntool:noon<-c2\n");
}
END_TEST

START_TEST(tool_result_moved_next_to_its_call)
{
    /* A user message between a call and its result: the result goes
     * right after the call, the user message after it. */
    struct message hist[] = {
        calls("let me look", "{\"tool_calls\":[{\"id\":\"c1\",\"function\":"
                             "{\"name\":\"f\",\"arguments\":\"{}\"}}]}"),
        msg(ROLE_USER, "hurry"),
    };
    struct message now[] = {tool("c1", "done")};
    struct agent_turn t = {NULL, hist, 2, now, 1, NULL, NULL, false, 0};

    ck_assert_str_eq(show(&t), "assistant:let me look[c1,f,{}]\n"
                               "tool:done<-c1\nuser:hurry\n");
}
END_TEST

START_TEST(unanswered_calls_and_orphan_results_left_out)
{
    struct message hist[] = {
        /* two calls, one answered: only that one is sent */
        calls("", "{\"tool_calls\":[{\"id\":\"c1\",\"function\":{\"name\":"
                  "\"f\",\"arguments\":\"{}\"}},{\"id\":\"c2\",\"function\":"
                  "{\"name\":\"g\",\"arguments\":\"{}\"}}]}"),
        tool("c1", "r1"),
        /* a call nobody answered, without text: not sent at all */
        calls("", "{\"tool_calls\":[{\"id\":\"c3\",\"function\":{\"name\":"
                  "\"h\",\"arguments\":\"{}\"}}]}"),
        /* with text: sent as text */
        calls("thinking", "{\"tool_calls\":[{\"id\":\"c4\",\"function\":{"
                          "\"name\":\"h\",\"arguments\":\"{}\"}}]}"),
        /* a result whose call is not there, and one answered twice */
        tool("c9", "orphan"),
        tool("c1", "again"),
    };
    struct message now[] = {msg(ROLE_USER, "next")};
    struct agent_turn t = {NULL, hist, 6, now, 1, NULL, NULL, false, 0};

    ck_assert_str_eq(show(&t), "assistant:null[c1,f,{}]\ntool:r1<-c1\n"
                               "assistant:thinking\nuser:next\n");
}
END_TEST

START_TEST(result_before_its_call_left_out)
{
    struct message hist[] = {
        tool("c1", "early"),
        calls("", "{\"tool_calls\":[{\"id\":\"c1\",\"function\":{\"name\":"
                  "\"f\"}}]}"),
    };
    struct message now[] = {msg(ROLE_USER, "x")};
    struct agent_turn t = {NULL, hist, 2, now, 1, NULL, NULL, false, 0};

    ck_assert_str_eq(show(&t), "user:x\n");
}
END_TEST

START_TEST(call_shapes)
{
    /* {"id","name","arguments"} with arguments an object; items without a
     * string id are not calls */
    struct message hist[] = {
        calls("", "{\"tool_calls\":[{\"id\":\"c1\",\"name\":\"f\","
                  "\"arguments\":{\"a\":[1,2]}},{\"id\":5},\"x\","
                  "{\"id\":\"c2\"}]}"),
        tool("c1", "r1"),
        tool("c2", "r2"),
    };
    /* the /api form: tool_call_id and tool_name, the content as the
     * arguments */
    struct message field = msg(ROLE_ASSISTANT, "{\"q\":1}");
    struct message hist2[2];
    struct agent_turn t = {NULL, hist, 3, NULL, 0, NULL, NULL, false, 0};

    ck_assert_str_eq(show(&t), "assistant:null[c1,f,{\"a\":[1,2]};c2,,NULL]\n"
                               "tool:r1<-c1\ntool:r2<-c2\n");
    field.tool_call_id = "c7";
    field.tool_name = "search";
    hist2[0] = field;
    hist2[1] = tool("c7", "found");
    t.context = hist2;
    t.n_context = 2;
    ck_assert_str_eq(show(&t),
                     "assistant:null[c7,search,{\"q\":1}]\ntool:found<-c7\n");
}
END_TEST

static int deltas;
static char streamed[256];

static bool
count_delta(void *arg, const struct llm_delta *d, struct error *err)
{
    (void)arg;
    (void)err;
    ck_assert_int_eq(d->kind, LLM_DELTA_CONTENT);
    deltas++;
    strncat(streamed, d->text, sizeof(streamed) - strlen(streamed) - 1);
    return true;
}

START_TEST(echo_answers_the_last_user_message)
{
    struct message now[] = {msg(ROLE_USER, "first"), msg(ROLE_SYSTEM, "sys"),
                            msg(ROLE_USER, "second caf\xc3\xa9"),
                            msg(ROLE_ASSISTANT, "ok")};
    struct agent_turn t = {NULL, NULL, 0, now, 4, NULL, NULL, false, 0};
    struct llm_callbacks cb = {count_delta, NULL, NULL};
    struct agent *ag = agent_new(&cfg);
    struct error err = ERROR_INIT;
    struct llm_reply r;

    ck_assert(!agent_uses_context(ag));
    ck_assert(agent_reply(ag, &t, &cb, &a, &r, &err));
    ck_assert_str_eq(r.content,
                     "This is a mock response to: second caf\xc3\xa9");
    ck_assert_int_eq(r.content_len, strlen(r.content));
    ck_assert_int_eq(r.n_tool_calls, 0);
    ck_assert_int_eq(r.prompt_tokens, -1);
    ck_assert_int_eq(deltas, 0);
    ck_assert(!r.streamed);
    /* streamed: one piece */
    t.stream = true;
    deltas = 0;
    streamed[0] = '\0';
    ck_assert(agent_reply(ag, &t, &cb, &a, &r, &err));
    ck_assert_int_eq(deltas, 1);
    ck_assert(r.streamed);
    ck_assert_str_eq(streamed, r.content);
    /* no user message: nothing after the colon */
    t.n_messages = 2;
    now[0] = msg(ROLE_SYSTEM, "only");
    t.stream = false;
    ck_assert(agent_reply(ag, &t, &cb, &a, &r, &err));
    ck_assert_str_eq(r.content, "This is a mock response to: ");
    agent_free(ag);
}
END_TEST

START_TEST(echo_reply_cut_to_what_can_be_stored)
{
    /* "This is a mock response to: " is 28 bytes; a 2-byte character
     * straddling the limit goes whole. */
    struct message now[] = {msg(ROLE_USER, "ab\xc3\xa9xyz")};
    struct agent_turn t = {NULL, NULL, 0, now, 1, NULL, NULL, false, 0};
    struct error err = ERROR_INIT;
    struct agent *ag;
    struct llm_reply r;

    cfg.max_content_bytes = 31;
    ag = agent_new(&cfg);
    ck_assert(agent_reply(ag, &t, NULL, &a, &r, &err));
    ck_assert_str_eq(r.content, "This is a mock response to: ab");
    ck_assert_int_eq(r.content_len, 30);
    agent_free(ag);
}
END_TEST

START_TEST(config_checks)
{
    struct error err = ERROR_INIT;
    struct config c;
    char key[] = "/tmp/parley-agent-key-XXXXXX";
    int fd;

    setenv("PARLEY_AGENT_BACKEND", "gpt", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "agent_backend");
    config_release(&c);
    setenv("PARLEY_AGENT_BACKEND", "openai", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "llm_base_url");
    config_release(&c);
    setenv("PARLEY_LLM_BASE_URL", "ftp://example.com", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "llm_model");
    config_release(&c);
    setenv("PARLEY_LLM_MODEL", "m", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "llm_base_url");
    config_release(&c);
    setenv("PARLEY_LLM_BASE_URL", "http://127.0.0.1:9/v1", 1);
    setenv("PARLEY_LLM_API_KEY_FILE", "/nonexistent/key", 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "llm_api_key_file");
    config_release(&c);
    fd = mkstemp(key);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "sk-secret-123\n", 14), 14);
    close(fd);
    setenv("PARLEY_LLM_API_KEY_FILE", key, 1);
    ck_assert_int_eq(config_load(&c, NULL, &err), 0);
    {
        struct agent *ag = agent_new(&c);

        ck_assert(agent_uses_context(ag));
        agent_free(ag);
    }
    config_release(&c);
    unlink(key);
}
END_TEST

Suite *
agent_suite(void)
{
    Suite *s = suite_create("agent");
    TCase *t = tcase_create("agent");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, system_first_then_history_then_new);
    tcase_add_test(t, tool_calls_paired_with_their_results);
    tcase_add_test(t, tool_result_moved_next_to_its_call);
    tcase_add_test(t, unanswered_calls_and_orphan_results_left_out);
    tcase_add_test(t, result_before_its_call_left_out);
    tcase_add_test(t, call_shapes);
    tcase_add_test(t, echo_answers_the_last_user_message);
    tcase_add_test(t, echo_reply_cut_to_what_can_be_stored);
    tcase_add_test(t, config_checks);
    suite_add_tcase(s, t);
    return s;
}

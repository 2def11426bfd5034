/*
 * agent.c - the agent backends: echo, and any Chat Completions server
 * through llm.c.  How a turn becomes the messages a model is sent (the
 * pairing of tool calls with their results) is described in agent.h.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "buf.h"
#include "log.h"
#include "retry.h"
#include "utf8.h"
#include "banned.h"

struct agent {
    const struct config *cfg;
    const struct agent_backend *backend;
    void *arg;
    struct llm_client *client; /* openai: made on the first turn */
};

/* --- echo ------------------------------------------------------------------
 */

static bool
echo_reply(struct agent *ag, const struct agent_turn *turn,
           const struct llm_callbacks *cb, struct arena *a,
           struct llm_reply *out, struct error *err)
{
    size_t max = (size_t)ag->cfg->max_content_bytes;
    const char *last = "";
    char *text;
    size_t len;

    for (size_t i = 0; i < turn->n_messages; i++)
        if (turn->messages[i].role == ROLE_USER)
            last = turn->messages[i].content;
    text = arena_printf(a, "This is a mock response to: %s", last);
    /* A reply must be storable: cut to the content limit, on a character
     * boundary. */
    len = strlen(text);
    if (len > max) {
        len = max;
        while (len > 0 && !utf8_valid(text, len))
            len--;
        text[len] = '\0';
    }
    memset(out, 0, sizeof(*out));
    out->content = text;
    out->content_len = len;
    out->finish_reason = "stop";
    out->prompt_tokens = out->completion_tokens = -1;
    out->retry_after_ms = -1;
    if (turn->stream && cb != NULL && cb->delta != NULL && len > 0) {
        struct llm_delta d = {LLM_DELTA_CONTENT, text, len, 0, NULL, NULL};

        out->streamed = true;
        if (!cb->delta(cb->arg, &d, err))
            return false;
    }
    return true;
}

/* --- what a model is sent ---------------------------------------------- */

static enum llm_role
llm_role_of(enum message_role r)
{
    switch (r) {
    case ROLE_ASSISTANT:
        return LLM_ROLE_ASSISTANT;
    case ROLE_SYSTEM:
    /* OpenAI's newer models take "developer" for what older ones and
     * other servers call "system"; every one of them knows "system". */
    case ROLE_DEVELOPER:
        return LLM_ROLE_SYSTEM;
    case ROLE_TOOL:
        return LLM_ROLE_TOOL;
    case ROLE_USER:
    default:
        return LLM_ROLE_USER;
    }
}

static const char *
string_member(const struct json_value *o, const char *key)
{
    const struct json_value *v = o != NULL ? json_get(o, key) : NULL;

    return v != NULL && v->type == JSON_STRING ? v->u.s.ptr : NULL;
}

/* A call's arguments: a string is the JSON text the model wrote; any
 * other value (a client may have stored an object) is sent as its JSON
 * text; none is "{}" (llm.h's NULL). */
static const char *
arguments_of(struct arena *a, const struct json_value *v)
{
    struct buf b;
    const char *text;

    if (v == NULL || v->type == JSON_NULL)
        return NULL;
    if (v->type == JSON_STRING)
        return v->u.s.ptr;
    buf_init(&b);
    json_write_value(&b, v);
    text = arena_strndup(a, b.data, b.len);
    buf_release(&b);
    return text;
}

/* The calls an assistant message made (see agent.h), into an array in a;
 * *from_fields: they came from tool_call_id/tool_name, so the content
 * held the arguments, not text. */
static size_t
calls_of(struct arena *a, const struct message *m, struct llm_tool_call **out,
         bool *from_fields)
{
    const struct json_value *list =
        m->extra_data != NULL && m->extra_data->type == JSON_OBJECT
            ? json_get(m->extra_data, "tool_calls")
            : NULL;
    struct llm_tool_call *calls;
    size_t n = 0;

    *from_fields = false;
    *out = NULL;
    if (list != NULL && list->type == JSON_ARRAY && list->u.a.len > 0) {
        calls = arena_calloc(a, list->u.a.len * sizeof(*calls));
        for (size_t i = 0; i < list->u.a.len; i++) {
            const struct json_value *item = list->u.a.items[i];
            const struct json_value *fn, *args;
            const char *name;

            if (item->type != JSON_OBJECT || string_member(item, "id") == NULL)
                continue;
            fn = json_get(item, "function");
            if (fn != NULL && fn->type != JSON_OBJECT)
                fn = NULL;
            name = string_member(fn, "name");
            args = fn != NULL ? json_get(fn, "arguments") : NULL;
            if (name == NULL)
                name = string_member(item, "name");
            if (args == NULL)
                args = json_get(item, "arguments");
            calls[n].id = string_member(item, "id");
            calls[n].name = name != NULL ? name : "";
            calls[n].arguments = arguments_of(a, args);
            n++;
        }
        if (n > 0) {
            *out = calls;
            return n;
        }
    }
    if (m->tool_call_id != NULL) {
        calls = arena_calloc(a, sizeof(*calls));
        calls[0].id = m->tool_call_id;
        calls[0].name = m->tool_name != NULL ? m->tool_name : "";
        calls[0].arguments = m->content[0] != '\0' ? m->content : NULL;
        *from_fields = true;
        *out = calls;
        return 1;
    }
    return 0;
}

size_t
agent_chat_messages(const struct agent_turn *turn, struct arena *a,
                    struct llm_message **out)
{
    size_t n = turn->n_context + turn->n_messages, k = 0;
    const struct message **all = arena_alloc(a, (n + 1) * sizeof(*all));
    bool *sent = arena_calloc(a, n + 1);
    struct llm_message *msgs = arena_calloc(a, (n + 1) * sizeof(*msgs));

    for (size_t i = 0; i < turn->n_context; i++)
        all[i] = &turn->context[i];
    for (size_t i = 0; i < turn->n_messages; i++)
        all[turn->n_context + i] = &turn->messages[i];
    if (turn->instructions != NULL && turn->instructions[0] != '\0')
        msgs[k++] = (struct llm_message){.role = LLM_ROLE_SYSTEM,
                                         .content = turn->instructions};
    for (size_t i = 0; i < n; i++) {
        const struct message *m = all[i];
        struct llm_tool_call *calls, *kept;
        size_t ncalls, nkept = 0, *answer;
        bool from_fields;
        const char *text;

        /* A tool message goes out right after its call, or not at all. */
        if (m->role == ROLE_TOOL)
            continue;
        if (m->role != ROLE_ASSISTANT) {
            msgs[k++] = (struct llm_message){.role = llm_role_of(m->role),
                                             .content = m->content};
            continue;
        }
        ncalls = calls_of(a, m, &calls, &from_fields);
        kept = arena_calloc(a, (ncalls + 1) * sizeof(*kept));
        answer = arena_calloc(a, (ncalls + 1) * sizeof(*answer));
        for (size_t c = 0; c < ncalls; c++) {
            for (size_t j = i + 1; j < n; j++) {
                if (all[j]->role != ROLE_TOOL || sent[j] ||
                    all[j]->tool_call_id == NULL ||
                    strcmp(all[j]->tool_call_id, calls[c].id) != 0)
                    continue;
                sent[j] = true;
                answer[nkept] = j;
                kept[nkept++] = calls[c];
                break;
            }
        }
        text = from_fields ? NULL : m->content;
        if (nkept == 0) {
            /* Only unanswered calls, no text: nothing worth sending. */
            if (ncalls > 0 && (text == NULL || text[0] == '\0'))
                continue;
            msgs[k++] = (struct llm_message){.role = LLM_ROLE_ASSISTANT,
                                             .content = text ? text : ""};
            continue;
        }
        msgs[k++] = (struct llm_message){
            .role = LLM_ROLE_ASSISTANT,
            .content = text != NULL && text[0] != '\0' ? text : NULL,
            .tool_calls = kept,
            .n_tool_calls = nkept};
        for (size_t c = 0; c < nkept; c++)
            msgs[k++] = (struct llm_message){.role = LLM_ROLE_TOOL,
                                             .content = all[answer[c]]->content,
                                             .tool_call_id =
                                                 all[answer[c]]->tool_call_id};
    }
    *out = msgs;
    return k;
}

/* --- openai ------------------------------------------------------------ */

static void
openai_settings(const struct config *cfg, struct llm_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->base_url = cfg->llm_base_url;
    s->api_key_file = cfg->llm_api_key_file;
    s->headers_file = cfg->llm_headers_file;
    s->ca_file = cfg->llm_ca_file;
    s->max_tokens_field = cfg->llm_max_tokens_field;
    s->timeout_ms = cfg->llm_timeout_ms;
    s->connect_timeout_ms = cfg->llm_connect_timeout_ms;
    /* Room for a reply of the largest storable content plus its tool
     * calls; what is stored is checked exactly by the conversation. */
    s->max_reply_bytes = (size_t)cfg->max_content_bytes +
                         (size_t)cfg->max_metadata_bytes + 16384;
}

static bool
openai_reply(struct agent *ag, const struct agent_turn *turn,
             const struct llm_callbacks *cb, struct arena *a,
             struct llm_reply *out, struct error *err)
{
    const struct config *cfg = ag->cfg;
    struct llm_request req;
    struct llm_message *msgs;
    struct retry_policy retry;

    memset(out, 0, sizeof(*out));
    out->content = "";
    out->prompt_tokens = out->completion_tokens = -1;
    if (ag->client == NULL) {
        struct llm_settings s;

        openai_settings(cfg, &s);
        ag->client = llm_client_new(&s, err);
        if (ag->client == NULL) {
            /* Checked at start, so a file changed or gone since: the
             * operator's to fix, and none of the client's business. */
            log_error("model client: %s (%s)", err->message,
                      err->param ? err->param : "-");
            return error_set(err, ERR_UPSTREAM, NULL,
                             "the model backend is not usable: see the "
                             "server's log");
        }
    }
    memset(&req, 0, sizeof(req));
    req.model = cfg->llm_model;
    req.n_messages = agent_chat_messages(turn, a, &msgs);
    req.messages = msgs;
    req.tools = turn->tools;
    req.tool_choice = turn->tool_choice;
    req.max_output_tokens = cfg->llm_max_output_tokens;
    req.stream = turn->stream;
    retry_policy_init(&retry, cfg);
    retry.max_attempts = cfg->llm_retry_max_attempts;
    return llm_chat(ag->client, &req, cb, turn->deadline_ms, &retry, a, out,
                    err);
}

/* --- the backends ------------------------------------------------------ */

static const struct agent_backend agent_backends[] = {
    {"echo", false, echo_reply},
    {"openai", true, openai_reply},
};

static const struct agent_backend *
agent_find(const char *name)
{
    for (size_t i = 0; i < sizeof(agent_backends) / sizeof(agent_backends[0]);
         i++)
        if (strcmp(agent_backends[i].name, name) == 0)
            return &agent_backends[i];
    return NULL;
}

bool
agent_check_config(const struct config *cfg, struct error *err)
{
    const struct agent_backend *b = agent_find(cfg->agent_backend);
    struct llm_settings s;

    if (b == NULL)
        return error_set(err, ERR_VALIDATION, "agent_backend",
                         "agent_backend must be echo or openai");
    if (strcmp(b->name, "openai") != 0)
        return true;
    if (cfg->llm_base_url[0] == '\0')
        return error_set(err, ERR_VALIDATION, "llm_base_url",
                         "agent_backend openai needs llm_base_url");
    if (cfg->llm_model[0] == '\0')
        return error_set(err, ERR_VALIDATION, "llm_model",
                         "agent_backend openai needs llm_model");
    openai_settings(cfg, &s);
    return llm_settings_check(&s, err);
}

struct agent *
agent_new_with(const struct config *cfg, const struct agent_backend *b,
               void *arg)
{
    struct agent *ag = calloc(1, sizeof(*ag));

    if (ag == NULL)
        abort();
    ag->cfg = cfg;
    ag->backend = b;
    ag->arg = arg;
    return ag;
}

struct agent *
agent_new(const struct config *cfg)
{
    const struct agent_backend *b =
        cfg->agent_backend != NULL ? agent_find(cfg->agent_backend) : NULL;

    return agent_new_with(cfg, b != NULL ? b : &agent_backends[0], NULL);
}

void
agent_free(struct agent *ag)
{
    if (ag == NULL)
        return;
    llm_client_free(ag->client);
    free(ag);
}

const struct config *
agent_config(const struct agent *ag)
{
    return ag->cfg;
}

void *
agent_arg(const struct agent *ag)
{
    return ag->arg;
}

bool
agent_uses_context(const struct agent *ag)
{
    return ag->backend->uses_context;
}

bool
agent_reply(struct agent *ag, const struct agent_turn *turn,
            const struct llm_callbacks *cb, struct arena *a,
            struct llm_reply *out, struct error *err)
{
    return ag->backend->reply(ag, turn, cb, a, out, err);
}

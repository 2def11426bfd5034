/*
 * agent.h - the conversation's agent backend: what answers a turn.
 *
 * The configuration names one (agent_backend):
 *   echo    answers "This is a mock response to: <content of the last
 *           user message of the turn>" (cut to max_content_bytes); reads
 *           no history and calls nothing.  The default.
 *   openai  asks a server speaking OpenAI's Chat Completions API (llm.h:
 *           OpenAI, vLLM, llama.cpp's server, Ollama, LiteLLM, ...) at
 *           llm_base_url for llm_model.
 *
 * What a model is sent, built from the turn by agent_chat_messages():
 *   1. the session's agent_instructions as the system message (none when
 *      they are empty);
 *   2. the context window (oldest first), then the turn's new messages,
 *      with tool calls paired as Chat Completions requires: an assistant
 *      message carries its calls, and right after it come the tool
 *      messages that answer them, in the order of the calls.  An
 *      assistant message's calls are the items of its
 *      extra_data.tool_calls[] that have a string "id", each
 *      {"id", "function": {"name", "arguments"}} (what parley stores) or
 *      {"id", "name", "arguments"}; with no such items, a tool_call_id
 *      field is one call named tool_name whose arguments are the
 *      message's content (the /api form of a function call).  A call
 *      that no later tool message answers is not sent (nor is an
 *      assistant message left with neither text nor calls), and neither
 *      is a tool message whose call was not sent before it: a model
 *      server refuses either;
 *   3. the client's tools and tool_choice, as given.
 * A developer message is sent as a system message (what every compatible
 * server knows).
 *
 * Process model: agent_new() in each worker, after the fork.  The openai
 * backend makes its HTTP client on the first turn and keeps it (and its
 * connection to the model server) until agent_free().
 */
#ifndef PARLEY_AGENT_H
#define PARLEY_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "error.h"
#include "json.h"
#include "llm.h"
#include "store.h"

/* One conversation turn as the backend sees it; borrowed for the call. */
struct agent_turn {
    const char *instructions;      /* the system message; NULL or "": none */
    const struct message *context; /* the history, oldest first */
    size_t n_context;
    const struct message *messages; /* the turn's new messages */
    size_t n_messages;
    const struct json_value *tools;       /* forwarded; NULL: absent */
    const struct json_value *tool_choice; /* forwarded; NULL: absent */
    bool stream;         /* hand the reply to cb->delta as it comes */
    int64_t deadline_ms; /* clock_mono_ms() time the reply must be in by */
};

struct agent;

/* A backend: reply() answers a turn for agent ag (agent_arg(ag) is the
 * state it was made with).  Tests bring their own with agent_new_with(). */
struct agent_backend {
    const char *name;
    bool uses_context; /* whether the turn needs the session's history */
    bool (*reply)(struct agent *ag, const struct agent_turn *turn,
                  const struct llm_callbacks *cb, struct arena *a,
                  struct llm_reply *out, struct error *err);
};

/* Checks agent_backend and, for openai, the llm_* settings (the URL, the
 * key and header files: llm_settings_check()), so that a bad setting
 * stops parley before any fork.  err->param names the setting. */
bool agent_check_config(const struct config *cfg, struct error *err);

/* The configured backend; cfg is borrowed for the agent's life.  Makes no
 * connection.  Never NULL (cfg has passed agent_check_config()). */
struct agent *agent_new(const struct config *cfg);
/* Any backend, with state arg for it. */
struct agent *agent_new_with(const struct config *cfg,
                             const struct agent_backend *b, void *arg);
void agent_free(struct agent *ag); /* NULL is fine */
const struct config *agent_config(const struct agent *ag);
void *agent_arg(const struct agent *ag);
bool agent_uses_context(const struct agent *ag);

/*
 * Answers the turn: the reply's text, tool calls, finish reason and
 * token usage into *out (strings in a).  With turn->stream, each piece
 * goes to cb->delta as it arrives; cb->poll is asked at least once a
 * second while the backend waits, and either stopping ends the call with
 * the error it set.  Fails with ERR_UPSTREAM (502) or
 * ERR_UPSTREAM_TIMEOUT (504) as llm_chat() does; 429 and 5xx answers are
 * retried (llm_retry_max_attempts, the database's full-jitter backoff,
 * Retry-After honoured) within turn->deadline_ms, never once a piece of
 * the reply went to cb->delta.
 */
bool agent_reply(struct agent *ag, const struct agent_turn *turn,
                 const struct llm_callbacks *cb, struct arena *a,
                 struct llm_reply *out, struct error *err);

/* The messages a model is sent for the turn, in order (see the top of
 * this file), into an array in a; returns how many. */
size_t agent_chat_messages(const struct agent_turn *turn, struct arena *a,
                           struct llm_message **out);

#endif

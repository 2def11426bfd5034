/*
 * llm.h - a client for OpenAI's Chat Completions API, for any server that
 * speaks it (OpenAI, vLLM, llama.cpp's server, Ollama, LiteLLM,
 * OpenRouter, ...).  The only module that includes libcurl; nothing of
 * libcurl shows here.
 *
 * One call, llm_chat(), sends a conversation and returns the assistant's
 * reply: its text, its tool calls, why it finished and the token usage the
 * server reported.  With `stream` set the reply is read as server-sent
 * events and every piece is handed to a callback as it arrives, while the
 * whole reply is assembled as well.  Failures become struct error values:
 *   ERR_UPSTREAM          (502) the server answered an HTTP error (its
 *                         error.message is kept, bounded, with the key
 *                         and header values blanked out), could not be
 *                         reached, broke the stream off, sent something
 *                         that is not a Chat Completions reply, or sent
 *                         more than max_reply_bytes;
 *   ERR_UPSTREAM_TIMEOUT  (504) no complete reply within the attempt's
 *                         time (timeout_ms, cut to the caller's deadline);
 *   anything a callback set when it stopped the transfer.
 * 408, 409, 429 and 5xx answers, failed connects and a connection closed
 * with no answer at all are marked RETRY_SAFE (err->retry; err->db_code
 * holds the HTTP status of an HTTP error); llm_chat() retries them itself
 * when given a policy (see there), never once a piece of the reply has
 * reached the delta callback.
 *
 * Secrets: the API key and the extra headers are read from files, sent
 * only in request headers, and never logged or put in an error message.
 * TLS peers are always verified (libcurl's defaults, with an optional CA
 * file); http_proxy / https_proxy / no_proxy are honoured (libcurl's
 * default); only http and https URLs are used and redirects are not
 * followed.
 *
 * Process model: llm_global_init() once in the process, before any fork
 * or thread (next to store_mongo_global_init()); then one client per
 * worker, made after the fork (a client keeps its connection to the model
 * server open between calls, which must not be shared between processes).
 * A client is used by one thread at a time.
 */
#ifndef PARLEY_LLM_H
#define PARLEY_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"
#include "json.h"
#include "retry.h"

/* The reply cap when llm_settings.max_reply_bytes is 0. */
#define LLM_DEFAULT_MAX_REPLY_BYTES (4 * 1024 * 1024)
/* The connect timeout when llm_settings.connect_timeout_ms is 0. */
#define LLM_DEFAULT_CONNECT_TIMEOUT_MS 10000
/* Most tool calls one reply may carry. */
#define LLM_MAX_TOOL_CALLS 128

/* Once per process before any fork or thread; libcurl's global state (and
 * OpenSSL's, which libmongoc shares).  Returns -1 with err set on failure.
 * llm_global_cleanup() at exit of the process that called it. */
int llm_global_init(struct error *err);
void llm_global_cleanup(void);

/* Where the model server is and how to talk to it.  Strings are borrowed
 * for the llm_client_new() or llm_settings_check() call only. */
struct llm_settings {
    /* "https://api.openai.com/v1"; "/chat/completions" is appended (a
     * trailing "/" is dropped first).  http:// or https:// only. */
    const char *base_url;
    /* A file holding the API key, sent as "Authorization: Bearer <key>".
     * NULL or "": no Authorization header (a local server).  At most 4 KiB;
     * trailing white space (a newline) is not part of the key, which must
     * be printable ASCII without spaces. */
    const char *api_key_file;
    /* A file of extra request headers, one "Name: value" per line (blank
     * lines and lines starting with '#' skipped), e.g. OpenAI-Organization
     * or Azure's api-key.  NULL or "": none.  At most 16 KiB and 32
     * headers; Host, Content-Length, Content-Type, Transfer-Encoding,
     * Connection and Expect may not be set; Authorization only when there
     * is no api_key_file.  Values are treated as secrets. */
    const char *headers_file;
    /* PEM CA bundle to verify the server with instead of the system's;
     * NULL or "": the system's. */
    const char *ca_file;
    /* The request member carrying max_output_tokens: NULL means
     * "max_tokens" (understood by every compatible server);
     * "max_completion_tokens" for OpenAI's reasoning models. */
    const char *max_tokens_field;
    int timeout_ms;         /* one attempt, connect to last byte; > 0 */
    int connect_timeout_ms; /* 0: LLM_DEFAULT_CONNECT_TIMEOUT_MS */
    /* Cap on a non-streamed reply's body and on a streamed reply's text
     * and tool-call arguments taken together (also on one event); 0:
     * LLM_DEFAULT_MAX_REPLY_BYTES. */
    size_t max_reply_bytes;
};

/* Everything llm_client_new() checks, without making a client: the URL's
 * form, the files (read, then wiped and freed), the header lines.  For
 * check-config and config_load(), so a bad setting stops parley before
 * any fork.  err->param names the setting ("llm_base_url",
 * "llm_api_key_file", "llm_headers_file", "llm_ca_file", ...). */
bool llm_settings_check(const struct llm_settings *s, struct error *err);

struct llm_client;

/* NULL with err set (as llm_settings_check()) on a bad setting.  Reads the
 * key and header files now: a changed key takes effect with the next
 * client (a worker restart or reload). */
struct llm_client *llm_client_new(const struct llm_settings *s,
                                  struct error *err);
/* Wipes the key and closes the connection.  NULL is fine. */
void llm_client_free(struct llm_client *c);

enum llm_role {
    LLM_ROLE_SYSTEM,
    LLM_ROLE_USER,
    LLM_ROLE_ASSISTANT,
    LLM_ROLE_TOOL,
};

/* A tool call an assistant message made (sent back in later turns as the
 * assistant message's "tool_calls", type "function"). */
struct llm_tool_call {
    const char *id;
    const char *name;
    const char *arguments; /* JSON text as the model wrote it; NULL: "{}" */
};

struct llm_message {
    enum llm_role role;
    /* NULL is sent as null (an assistant message with only tool calls);
     * any other role gets "" for NULL. */
    const char *content;
    const struct llm_tool_call *tool_calls; /* assistant only; n may be 0 */
    size_t n_tool_calls;
    const char *tool_call_id; /* LLM_ROLE_TOOL: the call it answers */
};

/* One conversation turn as sent.  Borrowed for the llm_chat() call. */
struct llm_request {
    const char *model;
    /* In the order they are sent: the system message first, the context
     * window, the new messages.  Tool calls must be paired as Chat
     * Completions wants (every tool message right after the assistant
     * message whose tool_calls holds its tool_call_id); the caller pairs
     * them, llm_chat() sends what it is given. */
    const struct llm_message *messages;
    size_t n_messages;
    const struct json_value *tools;       /* sent as given; NULL: absent */
    const struct json_value *tool_choice; /* sent as given; NULL: absent */
    int max_output_tokens;                /* 0: absent */
    /* Ask for server-sent events ("stream": true, with "stream_options":
     * {"include_usage": true} so the usage still arrives). */
    bool stream;
};

enum llm_delta_kind {
    LLM_DELTA_CONTENT,   /* a piece of the text */
    LLM_DELTA_TOOL_CALL, /* a piece of a tool call */
};

/* A piece of a streamed reply, borrowed for the callback only. */
struct llm_delta {
    enum llm_delta_kind kind;
    /* The text piece, or the tool call's next piece of arguments (may be
     * empty when the piece only names the call).  Valid UTF-8, never
     * empty for LLM_DELTA_CONTENT; text[len] is NUL. */
    const char *text;
    size_t len;
    int tool_index;      /* which tool call, 0-based, in the order they began */
    const char *tool_id; /* on the piece that carries it, else NULL */
    const char *tool_name; /* likewise */
};

/* What the caller hears during a call.  Either function may be NULL.  A
 * function that returns false stops the transfer at once and must set err;
 * llm_chat() then fails with that error as given. */
struct llm_callbacks {
    /* Each piece of a streamed reply, in order, as it arrives (only with
     * request.stream).  Once it has been called, llm_chat() will not
     * retry. */
    bool (*delta)(void *arg, const struct llm_delta *d, struct error *err);
    /* Called while a transfer waits or runs (at least once a second, at
     * most every 100 ms) and before each retry: the place to notice a
     * client that has gone away. */
    bool (*poll)(void *arg, struct error *err);
    void *arg;
};

/* The reply, in the caller's arena; also how the call went (set on
 * failure too). */
struct llm_reply {
    const char *content; /* never NULL; "" when the model wrote no text */
    size_t content_len;
    struct llm_tool_call *tool_calls; /* in order; NULL when none */
    size_t n_tool_calls;
    /* "stop", "length" (cut by max_output_tokens), "tool_calls",
     * "content_filter", ...; NULL when the server named none. */
    const char *finish_reason;
    int64_t prompt_tokens; /* as the server reported them; -1: not */
    int64_t completion_tokens;

    int attempts;           /* requests sent */
    int http_status;        /* of the last answer; 0: none */
    bool streamed;          /* a delta reached the callback */
    int64_t retry_after_ms; /* the last Retry-After (or retry-after-ms)
                               the server sent; -1: none */
};

/*
 * Sends req to the model server and fills *reply (strings in `a`).
 *
 * deadline_ms (clock_mono_ms() time) bounds the whole call, retries and
 * their sleeps included: each attempt gets min(timeout_ms, time left),
 * and when no time is left the call fails with ERR_UPSTREAM_TIMEOUT.
 *
 * retry: NULL for a single attempt.  Otherwise a failure marked
 * RETRY_SAFE (429, 5xx, ...) is tried again, up to retry->max_attempts
 * attempts in all, after the policy's full-jitter sleep for that try or
 * the server's Retry-After when that is longer; never when the sleep would
 * end past the deadline, and never after reply->streamed became true.
 * Only the policy's max_attempts, base_ms, max_ms, sleep_ms and
 * random_upto are used; time is clock_mono_ms().
 *
 * A streamed reply is complete at "data: [DONE]", or when the stream ends
 * cleanly after a finish_reason; ending sooner is ERR_UPSTREAM, as is a
 * server that answers with an error event part way.  A server that
 * answers a streamed request with a plain JSON reply is read as such (and
 * its text handed to the delta callback in one piece).
 */
bool llm_chat(struct llm_client *c, const struct llm_request *req,
              const struct llm_callbacks *cb, int64_t deadline_ms,
              const struct retry_policy *retry, struct arena *a,
              struct llm_reply *reply, struct error *err);

#endif

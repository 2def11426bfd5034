/*
 * config.h - configuration.
 *
 * One table (config.c) names every setting with its type, place in struct
 * config and default (nginx's ngx_command_t, redis's configs[]).  A file of
 * `key = value` lines is read first, then PARLEY_<KEY> environment variables
 * override it (PARLEY_MONGODB_URI overrides mongodb_uri).  Everything is
 * parsed and checked before any fork; afterwards only `const struct config
 * *` is passed around.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

enum jwt_alg_pin {
    JWT_PIN_HS256,
    JWT_PIN_RS256,
    JWT_PIN_ES256,
};

struct config {
    /* server */
    char *listen;    /* "unix:/path", "host:port", "fd:N", or "" = fd 0 */
    int socket_mode; /* permissions of a unix socket, octal in the file */
    int listen_backlog;
    int workers;
    int shutdown_timeout; /* seconds before SIGKILL on drain */
    char *log_level;      /* debug | info | warn | error */
    char *pid_file;

    /* database */
    char *mongodb_uri;
    char *mongodb_database;
    char *sessions_collection;
    char *messages_collection;
    char *memory_collection;
    char *idempotency_collection;
    char *tombstones_collection;
    char *users_collection; /* per-user counters (quota_sessions_per_user) */
    int db_retry_max_attempts;
    int db_retry_base_ms;
    int db_retry_max_ms;
    int request_deadline_ms;
    /* fairness (issue 12): docs/configuration.md */
    int export_deadline_ms;  /* an export's (or import's) whole time */
    int queue_clock_skew_ms; /* web server's clock vs ours, tolerated */
    int user_max_inflight;   /* per user per host; 0: max(1, workers / 2) */
    int user_max_bulk;       /* of those, bulk: exports, imports, batches */
    int worker_max_rss_mb;   /* replace a worker grown past it; 0: never */

    /* auth */
    char *jwt_algorithm; /* HS256 | RS256 | ES256 */
    char *jwt_secret;    /* HS256 */
    char *jwt_secret_file;
    char *jwt_public_key_file; /* RS256 / ES256, PEM */
    int jwt_leeway;
    char *jwt_issuer;     /* "" = not checked */
    char *jwt_audience;   /* "" = not checked */
    int jwt_max_lifetime; /* seconds of exp - iat; 0 = no limit */

    /* limits */
    int max_body_bytes;
    int max_name_chars;        /* session_name, agent_name, tool_* */
    int max_description_bytes; /* description */
    int max_instructions_bytes;
    int max_content_bytes;
    int max_metadata_bytes; /* metadata, extra_data, memory values */
    int max_metadata_depth;
    int max_json_depth;
    int max_batch_messages;
    int max_page_limit;
    int max_offset;

    /* quotas: checked before anything is written (docs/api.md) */
    int quota_sessions_per_user;
    int quota_messages_per_session;
    int quota_bytes_per_session; /* content + extra_data bytes */
    int quota_memory_keys_per_session;
    int page_max_bytes; /* any list response's body */

    /* agents (issue: messages) */
    char *agent_backend; /* echo | openai (agent.h) */
    /* the openai backend: a Chat Completions server (llm.h) */
    char *llm_base_url;
    char *llm_model;
    char *llm_api_key_file; /* "" = no Authorization header */
    char *llm_headers_file; /* "" = no extra headers */
    char *llm_ca_file;      /* "" = the system's CA bundle */
    char *llm_max_tokens_field;
    int llm_timeout_ms; /* one attempt */
    int llm_connect_timeout_ms;
    int llm_max_output_tokens; /* 0 = not sent */
    int llm_context_messages;  /* the history sent: /context's limit ... */
    int llm_context_tokens;    /* ... and max_tokens */
    int llm_retry_max_attempts;

    /* the conversation pool (supervisor.h) */
    int conversation_workers; /* 0 = the main workers serve it */
    /* "" = next to a unix listen socket (config_load resolves it), or no
     * pool when listen is not a unix socket. */
    char *conversation_listen;
    int conversation_deadline_ms;

    /* sweeper */
    int cleanup_interval;
    int idle_timeout;
    int max_inactive_time;
    int max_session_age;
    /* flock(2)ed by every sweep on this host; "" (the default) becomes
     * parley-sweeper.lock next to the unix socket, or
     * /tmp/parley-sweeper.lock without one (config_load resolves it). */
    char *sweeper_lock_file;

    /* derived by config_load(), not settable */
    enum jwt_alg_pin jwt_pin;
    char *jwt_key; /* secret bytes or PEM text */
    size_t jwt_key_len;
    char *source; /* file the settings came from, or "(defaults)" */
};

/* Fills c with defaults, then the file at path (NULL: no file), then the
 * environment.  Checks every value and the combination (a key for the
 * algorithm, ranges).  Returns -1 with err set on the first problem; its
 * message names the file, line and key. */
int config_load(struct config *c, const char *path, struct error *err);
void config_release(struct config *c);

/* Writes every setting as `key = value` (secrets shown as "(set)"). */
void config_dump(const struct config *c, FILE *out);

/* For tests: parse one `key = value` assignment into c. */
int config_set(struct config *c, const char *key, const char *value,
               struct error *err);

#endif

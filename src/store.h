/*
 * store.h - where sessions live.
 *
 * A store is a backend (a table of single-attempt operations; the MongoDB
 * one is store_mongo.c, tests bring fakes) plus the retry policy.  The
 * service calls the store_*() functions below, each of which runs its
 * backend operation through retry_run() under the request's deadline, so
 * every database call goes through the one wrapper.
 *
 * Scoping: every operation takes the caller's user id and every document
 * the backend reads, writes or deletes is filtered by it.  Values reach
 * the database as typed BSON values built field by field, never as a
 * query document taken from a request.
 *
 * Results are allocated from ctx->arena and live until the request ends.
 * Timestamps are ms since the epoch; the backend stores BSON datetimes and
 * ids as BSON binary subtype 4.
 */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"
#include "json.h"
#include "retry.h"
#include "status.h"
#include "uuid.h"

struct session {
    struct uuid id;
    const char *user_id;
    const char *session_id;
    const char *session_name; /* NULL stores and shows null */
    const char *description;
    const char *agent_name;
    const char *agent_instructions;
    enum session_status status;
    const struct json_value *metadata; /* an object; never NULL */
    int64_t message_count;
    int64_t last_seq; /* highest seq handed out; 0 for none */
    int64_t request_count;
    int64_t error_count;
    double total_processing_ms;
    int64_t version;
    int64_t created_at;
    int64_t updated_at;
    int64_t last_activity_at;
};

enum session_sort {
    SORT_UPDATED_DESC, /* default */
    SORT_UPDATED_ASC,
    SORT_CREATED_DESC,
    SORT_CREATED_ASC,
};

#define STORE_NO_TIME INT64_MIN

struct session_filter {
    const char *search;     /* literal, case-insensitive substring of
                               session_name; NULL: none */
    int status;             /* enum session_status, or -1 */
    int is_active;          /* 1, 0, or -1 for either */
    const char *agent_name; /* exact; NULL: none */
    int64_t created_after;  /* exclusive bounds; STORE_NO_TIME: none */
    int64_t created_before;
    int64_t updated_after;
    int64_t updated_before;
    enum session_sort sort; /* ties broken by id, so pages are stable */
};

struct session_page {
    struct session *items;
    size_t len;
    int64_t total; /* matching sessions, ignoring limit and offset */
};

/* Fields an update sets.  Each SET_* bit says the matching member holds
 * the new value (NULL for the string members means null). */
enum session_field {
    SET_SESSION_NAME = 1 << 0,
    SET_DESCRIPTION = 1 << 1,
    SET_AGENT_NAME = 1 << 2,
    SET_AGENT_INSTRUCTIONS = 1 << 3,
    SET_STATUS = 1 << 4,
    SET_METADATA = 1 << 5,
};

struct session_change {
    unsigned fields;
    const char *session_name;
    const char *description;
    const char *agent_name;
    const char *agent_instructions;
    enum session_status status;
    const struct json_value *metadata; /* the whole new object */
    int64_t now;                       /* becomes updated_at */
};

/* Per-request context of every store call. */
struct store_ctx {
    struct arena *arena;
    int64_t deadline_ms; /* monotonic; see clock_mono_ms() */
    struct retry_stats stats;
};

struct store;

/*
 * Backend operations: one attempt each, no retries, no sleeping.  They
 * return false with err set: ERR_NOT_FOUND where they say so,
 * ERR_DUPLICATE for a unique-index violation, and for database failures
 * ERR_UNAVAILABLE or ERR_INTERNAL with err->retry telling retry_run()
 * whether another try may help.
 */
struct store_backend {
    const char *name;
    bool (*ping)(struct store *s, struct error *err);
    bool (*ensure_indexes)(struct store *s, struct error *err);
    bool (*session_insert)(struct store *s, const struct session *sess,
                           struct error *err);
    /* ERR_NOT_FOUND if the user has no such session. */
    bool (*session_get)(struct store *s, struct arena *a, const char *user,
                        const char *session_id, struct session *out,
                        struct error *err);
    bool (*session_get_by_id)(struct store *s, struct arena *a,
                              const char *user, const struct uuid *id,
                              struct session *out, struct error *err);
    bool (*session_list)(struct store *s, struct arena *a, const char *user,
                         const struct session_filter *f, int64_t limit,
                         int64_t offset, struct session_page *out,
                         struct error *err);
    /* Applies change to the session with this id and version, bumping
     * version by one; ERR_NOT_FOUND if no such session has that version. */
    bool (*session_update)(struct store *s, struct arena *a, const char *user,
                           const struct uuid *id, int64_t version,
                           const struct session_change *change,
                           struct session *out, struct error *err);
    /* Deletes the session document with this id (and this version when
     * version >= 0); ERR_NOT_FOUND if none matched. */
    bool (*session_delete)(struct store *s, const char *user,
                           const struct uuid *id, int64_t version,
                           struct error *err);
    /* Deletes every message / memory entry of a session; idempotent. */
    bool (*session_purge)(struct store *s, const char *user,
                          const struct uuid *id, int64_t *messages_deleted,
                          struct error *err);
    void (*free)(struct store *s);
};

struct store {
    const struct store_backend *backend;
    void *impl; /* the backend's own state */
    struct retry_policy policy;
};

/* The retrying calls the service uses.  Same contracts as the backend
 * operations, plus: a retryable failure that outlives the attempts or the
 * deadline is ERR_UNAVAILABLE.  store_session_insert() treats a duplicate
 * on the session's own id (a retried insert that had in fact succeeded)
 * as success. */
bool store_ping(struct store *s, struct store_ctx *ctx, struct error *err);
bool store_ensure_indexes(struct store *s, struct store_ctx *ctx,
                          struct error *err);
bool store_session_insert(struct store *s, struct store_ctx *ctx,
                          const struct session *sess, struct error *err);
bool store_session_get(struct store *s, struct store_ctx *ctx,
                       const char *user, const char *session_id,
                       struct session *out, struct error *err);
bool store_session_list(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct session_filter *f,
                        int64_t limit, int64_t offset, struct session_page *out,
                        struct error *err);
bool store_session_update(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct uuid *id,
                          int64_t version, const struct session_change *change,
                          struct session *out, struct error *err);
bool store_session_delete(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct uuid *id,
                          int64_t version, struct error *err);
bool store_session_purge(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *id,
                         int64_t *messages_deleted, struct error *err);
void store_free(struct store *s);

#endif

/*
 * store.h - where sessions live.
 *
 * A store is a backend (a table of single-attempt operations; the MongoDB
 * one is store_mongo.c, tests bring fakes) plus the retry policy.  The
 * service calls the store_*() functions below, each of which runs its
 * backend operation in the retry loop (retry.h) under the request's
 * deadline, so every database call goes through the one loop.
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
    /* Quota counters (see "Counters" below): the bytes of its messages
     * (store_message_bytes()) and its memory entries; never shown. */
    int64_t content_bytes;
    int64_t memory_keys;
    /* When a change of the counters began that may not have finished
     * (ms); 0: none pending.  The sweeper recounts the session once this
     * is old and clears it. */
    int64_t dirty_at;
    int64_t request_count;
    int64_t error_count;
    double total_processing_ms;
    /* The model's token usage over the session's conversation turns. */
    int64_t prompt_tokens;
    int64_t completion_tokens;
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

enum message_role {
    ROLE_USER,
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
    ROLE_TOOL,
    ROLE_DEVELOPER, /* stored by name, so the order here is free */
};

#define ROLE_COUNT 5

struct message {
    struct uuid id;
    struct uuid session_uuid;
    const char *user_id;
    const char *session_id; /* the session's client name, for output */
    int64_t seq;
    enum message_role role;
    const char *content;                 /* valid UTF-8, no NUL */
    const char *tool_call_id;            /* NULL: null */
    const char *tool_name;               /* NULL: null */
    const struct json_value *extra_data; /* any JSON value; NULL: null */
    const char *client_message_id;       /* NULL: none; never shown */
    /* store_message_bytes() of the stored message, stored with it so a
     * recount can sum it; a message stored without it reads as its
     * store_message_bytes().  Never shown. */
    int64_t bytes;
    int64_t created_at;
    int64_t updated_at;
    /* An item written through /v1 (OpenAI's Conversations API), as the
     * client sent it less its "id": an object, NULL for a message written
     * through /api.  Never shown under /api, where role, content and the
     * tool fields carry what the item says. */
    const struct json_value *item;
    /* The id the client gave the item (e.g. a reasoning item's "rs_..."),
     * unique per session; NULL when the id is derived from the message's
     * UUID (service_openai.h). */
    const char *item_id;
};

/* What a message counts against quota_bytes_per_session: the UTF-8 bytes
 * of its content plus the encoded bytes of its extra_data and of its /v1
 * item.  The one definition of a message's size: a field stored on
 * messages later adds its bytes here, and every counter follows. */
int64_t store_message_bytes(const struct message *m);

#define STORE_NO_SEQ (-1)

struct message_filter {
    int64_t after_seq;     /* exclusive; STORE_NO_SEQ: none */
    int64_t before_seq;    /* exclusive; STORE_NO_SEQ: none */
    int role;              /* enum message_role, or -1 */
    const char *search;    /* literal, case-insensitive substring of content */
    int64_t created_after; /* exclusive; STORE_NO_TIME: none */
    int64_t created_before;
    bool descending; /* newest seq first */
    bool no_total;   /* skip counting: page->total is -1 */
};

struct message_page {
    struct message *items;
    size_t len;
    int64_t total; /* matching, ignoring limit and offset; -1 if not counted */
    /* Another message matches past the page: read (the backend asks for
     * one more than the limit), never computed from total.  A caller
     * that ends a page early (a byte cap) sets it too. */
    bool has_more;
};

/* What a message update sets. */
enum message_field {
    SET_CONTENT = 1 << 0,
    SET_EXTRA_DATA = 1 << 1,
    CLEAR_ITEM = 1 << 2, /* removes the /v1 item; item_id stays */
};

struct message_change {
    unsigned fields;
    const char *content;
    const struct json_value *extra_data; /* NULL: null */
    int64_t bytes; /* store_message_bytes() of the changed message */
    int64_t now;
    /* Applies only while the message's updated_at is this (or already
     * now, which a retry of this change finds); STORE_NO_TIME: always. */
    int64_t if_updated_at;
};

/*
 * Counters.  A session keeps message_count, content_bytes and
 * memory_keys, and each user a document {sessions}, so a quota is checked
 * by the write that moves its counter instead of a count query:
 * store_session_reserve_seq() and store_user_count() add only while the
 * result stays within the quota.  Every change of a counter is a
 * multi-step change (the counter, then the documents it counts, or the
 * reverse); its first write to the session (or user) document also sets
 * dirty_at = now, which store_session_mark() does for changes that start
 * elsewhere.  A change cut short leaves the counter too high, never too
 * low, and the sweeper recounts what has a dirty_at older than any
 * request (sweeper.h).
 */
struct store_counts {
    int64_t messages;
    int64_t bytes;
    int64_t memory_keys;
};

/* A reservation: what it adds to a session's counters (each >= 0), the
 * quotas the counters must stay within after it, and whether it is a
 * message write (the session must be active; updated_at and
 * last_activity_at become now). */
struct store_reserve {
    struct store_counts add;
    struct store_counts max;
    bool message_write;
    /* When not NULL, the session is the user's of this name (its
     * session_id) and the id argument is not used: an append without
     * idempotency keys reserves without reading the session first. */
    const char *session_id;
};

/* A user's counter document. */
struct user_counter {
    int64_t sessions;
    int64_t dirty_at; /* as struct session's; 0: none */
};

/* An idempotency key: the document's _id is {user, session, key}, which
 * is unique on every MongoDB (no partial index needed). */
struct idem_key {
    struct uuid message_id; /* the message the key stands for */
    int64_t seq;            /* its seq once known; 0 while pending */
    int64_t created_at;
};

/* The sweeper's rules (sweeper.h).  Each selects sessions on an index:
 *   SWEEP_AGE       created_at < cutoff                  ("created")
 *   SWEEP_INACTIVE  status != active, last_activity_at < cutoff and
 *                   updated_at < cutoff                  ("status_activity")
 *   SWEEP_IDLE      status == active, last_activity_at < cutoff
 *                                                        ("status_activity") */
enum sweep_rule {
    SWEEP_AGE,
    SWEEP_INACTIVE,
    SWEEP_IDLE,
};

/* A session a rule selected; user_id is arena memory. */
struct sweep_candidate {
    struct uuid id;
    const char *user_id;
};

/* What GET /api/agent-sessions/stats counts, by one aggregation. */
struct session_stats {
    int64_t total_sessions;
    int64_t by_status[STATUS_COUNT]; /* indexed by enum session_status */
    int64_t total_messages;          /* the sum of message_count */
};

/* The collections a user's data lives in (user erasure). */
enum store_collection {
    STORE_SESSIONS,
    STORE_MESSAGES,
    STORE_MEMORY,
    STORE_IDEMPOTENCY,
    STORE_TOMBSTONES,
    STORE_USERS, /* the user's counter document */
};

/* Per-request context of every store call. */
struct store_ctx {
    struct arena *arena;
    int64_t deadline_ms; /* monotonic; see clock_mono_ms() */
    struct retry_stats stats;
};

struct store;

/*
 * The backend operations, in the order of struct store_backend below:
 * X(member, MEMBER), the upper-case name for generated constants such as
 * the fake store's FAKE_SESSION_INSERT.  The backends' tables of
 * functions and the fake store's call counters are generated from it;
 * store.c checks at compile time that it names every member.
 *
 * Adding an operation touches this list and struct store_backend, one
 * wrapper in store.c (its prototype at the end of this file),
 * mongo_<member> in store_mongo.c and fake_<member> in tests/fake_store.c.
 */
#define STORE_OPERATIONS(X)                                                    \
    X(ping, PING)                                                              \
    X(ensure_indexes, ENSURE_INDEXES)                                          \
    X(session_insert, SESSION_INSERT)                                          \
    X(session_get, SESSION_GET)                                                \
    X(session_get_by_id, SESSION_GET_BY_ID)                                    \
    X(session_list, SESSION_LIST)                                              \
    X(session_update, SESSION_UPDATE)                                          \
    X(session_delete, SESSION_DELETE)                                          \
    X(session_purge, SESSION_PURGE)                                            \
    X(session_reserve_seq, SESSION_RESERVE_SEQ)                                \
    X(session_touch, SESSION_TOUCH)                                            \
    X(session_add_metrics, SESSION_ADD_METRICS)                                \
    X(session_mark, SESSION_MARK)                                              \
    X(session_tally, SESSION_TALLY)                                            \
    X(session_set_counts, SESSION_SET_COUNTS)                                  \
    X(session_add_usage, SESSION_ADD_USAGE)                                    \
    X(session_delete_unused, SESSION_DELETE_UNUSED)                            \
    X(message_insert, MESSAGE_INSERT)                                          \
    X(message_delete_ids, MESSAGE_DELETE_IDS)                                  \
    X(message_get, MESSAGE_GET)                                                \
    X(message_get_many, MESSAGE_GET_MANY)                                      \
    X(message_list, MESSAGE_LIST)                                              \
    X(message_update, MESSAGE_UPDATE)                                          \
    X(message_delete, MESSAGE_DELETE)                                          \
    X(message_clear, MESSAGE_CLEAR)                                            \
    X(idem_claim, IDEM_CLAIM)                                                  \
    X(idem_get, IDEM_GET)                                                      \
    X(idem_get_many, IDEM_GET_MANY)                                            \
    X(idem_claim_many, IDEM_CLAIM_MANY)                                        \
    X(idem_complete_many, IDEM_COMPLETE_MANY)                                  \
    X(idem_replace, IDEM_REPLACE)                                              \
    X(idem_complete, IDEM_COMPLETE)                                            \
    X(idem_release, IDEM_RELEASE)                                              \
    X(memory_list, MEMORY_LIST)                                                \
    X(memory_get, MEMORY_GET)                                                  \
    X(memory_put, MEMORY_PUT)                                                  \
    X(memory_delete, MEMORY_DELETE)                                            \
    X(sweep_candidates, SWEEP_CANDIDATES)                                      \
    X(sweep_expire_one, SWEEP_EXPIRE_ONE)                                      \
    X(sweep_delete_one, SWEEP_DELETE_ONE)                                      \
    X(session_stats, SESSION_STATS)                                            \
    X(user_delete_batch, USER_DELETE_BATCH)                                    \
    X(tombstone_put, TOMBSTONE_PUT)                                            \
    X(tombstone_delete, TOMBSTONE_DELETE)                                      \
    X(tombstone_list, TOMBSTONE_LIST)                                          \
    X(user_count, USER_COUNT)                                                  \
    X(user_get, USER_GET)                                                      \
    X(user_set_count, USER_SET_COUNT)                                          \
    X(dirty_list, DIRTY_LIST)                                                  \
    X(message_get_item, MESSAGE_GET_ITEM)

/*
 * Backend operations: one attempt each, no retries, no sleeping.  They
 * return false with err set: ERR_NOT_FOUND where they say so,
 * ERR_DUPLICATE for a unique-index violation, and for database failures
 * ERR_UNAVAILABLE or ERR_INTERNAL with err->retry telling the retry loop
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
    /* Deletes every message, memory entry and idempotency key of a
     * session; idempotent. */
    bool (*session_purge)(struct store *s, const char *user,
                          const struct uuid *id, int64_t *messages_deleted,
                          struct error *err);

    /* Adds r->add to the session's counters atomically, only while each
     * stays within r->max: one findAndModify on {_id, user_id,
     * message_count <= max - add, content_bytes <= max - add, memory_keys
     * <= max - add (a missing counter matches), and status "active" for
     * a message write} with $inc of the counters and of last_seq by
     * add.messages, $max {dirty_at: now}, and for a message write $set
     * {updated_at, last_activity_at: now}; returns the new document.  The
     * seq numbers handed out are out->last_seq - add.messages + 1 ..
     * out->last_seq.  ERR_NOT_FOUND if nothing matched: the session is
     * gone or not active, or a quota is in the way (the caller reads the
     * session to tell which). */
    bool (*session_reserve_seq)(struct store *s, struct arena *a,
                                const char *user, const struct uuid *id,
                                const struct store_reserve *r, int64_t now,
                                struct session *out, struct error *err);
    /* $inc the counters by delta (each may be negative or 0; a non-zero
     * one also sets $max {dirty_at: now}); with activity, $set updated_at
     * and last_activity_at to now.  Does not touch version.
     * ERR_NOT_FOUND if the session is gone. */
    bool (*session_touch)(struct store *s, const char *user,
                          const struct uuid *id,
                          const struct store_counts *delta, int64_t now,
                          bool activity, struct error *err);
    /* $inc metrics.request_count by requests, metrics.error_count by
     * errors and metrics.total_processing_ms by ms on {user_id,
     * session_id} (a worker batches its requests: tally.h); a session
     * that does not exist is not an error. */
    bool (*session_add_metrics)(struct store *s, const char *user,
                                const char *session_id, int64_t requests,
                                int64_t errors, double ms, struct error *err);
    /* Reads the session {user_id, session_id} as session_get does, in
     * one findAndModify that sets $max {dirty_at: now}: the first step of
     * a change that removes what a counter counts (Counters, above).
     * ERR_NOT_FOUND if the user has no such session. */
    bool (*session_mark)(struct store *s, struct arena *a, const char *user,
                         const char *session_id, int64_t now,
                         struct session *out, struct error *err);
    /* Counts what the session's counters count: its messages with seq <=
     * max_seq (STORE_NO_SEQ: all) and the sum of their bytes, and (with
     * max_seq STORE_NO_SEQ) its memory entries. */
    bool (*session_tally)(struct store *s, const char *user,
                          const struct uuid *id, int64_t max_seq,
                          struct store_counts *out, struct error *err);
    /* Sets the session's counters to c and removes its dirty_at, only if
     * it still has seen's dirty_at, last_seq and message_count (nothing
     * changed it since it was read); *changed: it did. */
    bool (*session_set_counts)(struct store *s, const char *user,
                               const struct uuid *id,
                               const struct session *seen,
                               const struct store_counts *c, bool *changed,
                               struct error *err);
    /* $inc metrics.prompt_tokens and metrics.completion_tokens on {_id,
     * user_id} (a conversation turn's token usage); a session that does
     * not exist is not an error. */
    bool (*session_add_usage)(struct store *s, const char *user,
                              const struct uuid *id, int64_t prompt_tokens,
                              int64_t completion_tokens, struct error *err);
    /* Deletes the session document {_id, user_id} only while it holds no
     * message (message_count 0 or absent): a conversation taking back the
     * session it made for a turn that failed, which must never take a
     * message another request stored meanwhile (reserve_seq's $inc comes
     * first).  ERR_NOT_FOUND if nothing matched. */
    bool (*session_delete_unused)(struct store *s, const char *user,
                                  const struct uuid *id, struct error *err);

    /* Ordered insert of msgs[0..n) (ids made by the caller). On
     * ERR_DUPLICATE or any failure *inserted says how many went in. */
    bool (*message_insert)(struct store *s, const struct message *msgs,
                           size_t n, size_t *inserted, struct error *err);
    /* Deletes the messages with these ids (of this user); cleanup after a
     * failed batch.  *deleted may be NULL. */
    bool (*message_delete_ids)(struct store *s, const char *user,
                               const struct uuid *ids, size_t n,
                               int64_t *deleted, struct error *err);
    bool (*message_get)(struct store *s, struct arena *a, const char *user,
                        const struct uuid *session_uuid, const struct uuid *id,
                        struct message *out, struct error *err);
    /* Sorted by seq (ascending unless f->descending), on the
     * {user_id, session_uuid, seq} index ({user_id, session_uuid, role,
     * seq} with a role filter); out->has_more from one document more
     * than limit; out->total counted over the filter unless
     * f->no_total. */
    bool (*message_list)(struct store *s, struct arena *a, const char *user,
                         const struct uuid *session_uuid,
                         const struct message_filter *f, int64_t limit,
                         int64_t offset, struct message_page *out,
                         struct error *err);
    /* findAndModify returning the new message; ERR_NOT_FOUND if none. */
    bool (*message_update)(struct store *s, struct arena *a, const char *user,
                           const struct uuid *session_uuid,
                           const struct uuid *id,
                           const struct message_change *change,
                           struct message *out, struct error *err);
    /* findAndModify with remove: *bytes is the deleted message's bytes.
     * ERR_NOT_FOUND if no such message. */
    bool (*message_delete)(struct store *s, const char *user,
                           const struct uuid *session_uuid,
                           const struct uuid *id, int64_t *bytes,
                           struct error *err);
    /* Deletes the messages of the session with seq <= max_seq
     * (STORE_NO_SEQ: all); *deleted = how many. */
    bool (*message_clear)(struct store *s, const char *user,
                          const struct uuid *session_uuid, int64_t max_seq,
                          int64_t *deleted, struct error *err);
    /* The messages among ids[0..n) (of this user and session), in one
     * query: found[i] says whether out[i] holds ids[i]'s. */
    bool (*message_get_many)(struct store *s, struct arena *a, const char *user,
                             const struct uuid *session_uuid,
                             const struct uuid *ids, size_t n,
                             struct message *out, bool *found,
                             struct error *err);

    /* Inserts the key document; ERR_DUPLICATE if the key exists. */
    bool (*idem_claim)(struct store *s, const char *user,
                       const struct uuid *session_uuid, const char *key,
                       const struct idem_key *k, struct error *err);
    /* ERR_NOT_FOUND if the key does not exist. */
    bool (*idem_get)(struct store *s, const char *user,
                     const struct uuid *session_uuid, const char *key,
                     struct idem_key *out, struct error *err);
    /* The keys among keys[0..n), in one query: found[i] says whether
     * out[i] holds keys[i]'s. */
    bool (*idem_get_many)(struct store *s, const char *user,
                          const struct uuid *session_uuid,
                          const char *const *keys, size_t n,
                          struct idem_key *out, bool *found, struct error *err);
    /* Inserts the key documents of keys[0..n) (k[i] for key i) in one
     * unordered insert: claimed[i] says key i's went in.  Keys that exist
     * are no error (claimed[i] false); on a failure every claimed[i] is
     * false, whatever went in. */
    bool (*idem_claim_many)(struct store *s, const char *user,
                            const struct uuid *session_uuid,
                            const char *const *keys, const struct idem_key *k,
                            size_t n, bool *claimed, struct error *err);
    /* idem_complete for keys[0..n) (message ids[i], seqs[i]) in one
     * unordered bulk write; a key that names another message by now is
     * left as it is. */
    bool (*idem_complete_many)(struct store *s, const char *user,
                               const struct uuid *session_uuid,
                               const char *const *keys, const struct uuid *ids,
                               const int64_t *seqs, size_t n,
                               struct error *err);
    /* Replaces the key's message id and time only if it still names
     * `expected` (taking over a key whose writer died); ERR_NOT_FOUND if
     * it changed meanwhile. */
    bool (*idem_replace)(struct store *s, const char *user,
                         const struct uuid *session_uuid, const char *key,
                         const struct uuid *expected, const struct idem_key *k,
                         struct error *err);
    /* Sets the key's seq once its message is stored. */
    bool (*idem_complete)(struct store *s, const char *user,
                          const struct uuid *session_uuid, const char *key,
                          const struct uuid *message_id, int64_t seq,
                          struct error *err);
    /* Deletes the key if it still names message_id (undo). */
    bool (*idem_release)(struct store *s, const char *user,
                         const struct uuid *session_uuid, const char *key,
                         const struct uuid *message_id, struct error *err);

    /* Memory: one document per {session_uuid, key}.  list: up to limit
     * entries with a key greater than after (NULL: from the first), in
     * ascending key order, as one JSON object, on the session_key
     * index. */
    bool (*memory_list)(struct store *s, struct arena *a, const char *user,
                        const struct uuid *session_uuid, const char *after,
                        int64_t limit, struct json_value **out_object,
                        struct error *err);
    /* ERR_NOT_FOUND when unset. */
    bool (*memory_get)(struct store *s, struct arena *a, const char *user,
                       const struct uuid *session_uuid, const char *key,
                       struct json_value **out_value, struct error *err);
    /* insert: a new key (ERR_DUPLICATE if it is set); otherwise the
     * value of a key that is set (ERR_NOT_FOUND if it is not). */
    bool (*memory_put)(struct store *s, const char *user,
                       const struct uuid *session_uuid, const char *key,
                       const struct json_value *value, int64_t now, bool insert,
                       struct error *err);
    /* ERR_NOT_FOUND when unset. */
    bool (*memory_delete)(struct store *s, const char *user,
                          const struct uuid *session_uuid, const char *key,
                          struct error *err);

    /* Sweeper.  Up to limit sessions the rule selects at cutoff (ms),
     * found on the rule's index (named with a hint) and read as _id and
     * user_id only; an array in a's memory. */
    bool (*sweep_candidates)(struct store *s, struct arena *a,
                             enum sweep_rule rule, int64_t cutoff,
                             int64_t limit, struct sweep_candidate **out,
                             size_t *n, struct error *err);
    /* update_one {_id, user_id, status: "active", last_activity_at <
     * cutoff}: $set status "expired" and updated_at now, $inc version 1
     * (last_activity_at stays).  *changed: this call modified it. */
    bool (*sweep_expire_one)(struct store *s, const struct sweep_candidate *c,
                             int64_t cutoff, int64_t now, bool *changed,
                             struct error *err);
    /* delete_one {_id, user_id} plus rule's condition at cutoff (AGE or
     * INACTIVE), so a session that no longer qualifies stays.
     * *deleted: this call deleted it. */
    bool (*sweep_delete_one)(struct store *s, enum sweep_rule rule,
                             const struct sweep_candidate *c, int64_t cutoff,
                             bool *deleted, struct error *err);
    /* One aggregation over the sessions of user (NULL: every user). */
    bool (*session_stats)(struct store *s, const char *user,
                          struct session_stats *out, struct error *err);
    /* Deletes up to limit documents of user from one collection (their
     * _ids found on a user_id index, then one delete_many);
     * *deleted = how many went. */
    bool (*user_delete_batch)(struct store *s, enum store_collection coll,
                              const char *user, int64_t limit, int64_t *deleted,
                              struct error *err);

    /* Tombstones: {_id: session UUID, user_id, at: datetime}, one per
     * session being deleted or imported, so the sweeper can finish what a
     * crash cut short.  put upserts {_id, user_id} with at = now (a repeat
     * refreshes at); delete removes {_id, user_id}, and one that is not
     * there is no error. */
    bool (*tombstone_put)(struct store *s, const char *user,
                          const struct uuid *id, int64_t now,
                          struct error *err);
    bool (*tombstone_delete)(struct store *s, const char *user,
                             const struct uuid *id, struct error *err);
    /* Up to limit tombstones with at < cutoff (ms), oldest first, on the
     * "at" index (hinted); an array in a's memory. */
    bool (*tombstone_list)(struct store *s, struct arena *a, int64_t cutoff,
                           int64_t limit, struct sweep_candidate **out,
                           size_t *n, struct error *err);

    /* The user's counter document {_id: user, user_id, sessions,
     * dirty_at}.  count: $inc sessions by delta with $max {dirty_at:
     * now}; a delta > 0 applies only while sessions + delta <= max
     * (ERR_QUOTA_EXCEEDED otherwise) and makes the document when there is
     * none; a delta <= 0 never makes one (0: only marks it). */
    bool (*user_count)(struct store *s, const char *user, int64_t delta,
                       int64_t max, int64_t now, struct error *err);
    /* ERR_NOT_FOUND if the user has no counter document. */
    bool (*user_get)(struct store *s, const char *user,
                     struct user_counter *out, struct error *err);
    /* Sets sessions and removes dirty_at, only if the document still
     * holds seen's; *changed: it did. */
    bool (*user_set_count)(struct store *s, const char *user,
                           const struct user_counter *seen, int64_t sessions,
                           bool *changed, struct error *err);
    /* Up to limit sessions (coll STORE_SESSIONS: id and user_id) or users
     * (STORE_USERS: user_id only) with dirty_at < cutoff (ms), on their
     * "dirty" index (hinted); an array in a's memory. */
    bool (*dirty_list)(struct store *s, struct arena *a,
                       enum store_collection coll, int64_t cutoff,
                       int64_t limit, struct sweep_candidate **out, size_t *n,
                       struct error *err);
    /* The message of the session whose item_id (the id a /v1 client gave
     * its item) is item_id, on the unique {session_uuid, item_id} index;
     * ERR_NOT_FOUND if none. */
    bool (*message_get_item)(struct store *s, struct arena *a, const char *user,
                             const struct uuid *session_uuid,
                             const char *item_id, struct message *out,
                             struct error *err);

    void (*free)(struct store *s);
};

struct store {
    const struct store_backend *backend;
    void *impl; /* the backend's own state */
    struct retry_policy policy;
};

/* True if one try of s, started now, can end before ctx's deadline (see
 * retry_policy.try_ms).  For work worth doing only then: cleanup after a
 * failure, which a stalled database would otherwise hold past the
 * deadline. */
bool store_try_fits(const struct store *s, const struct store_ctx *ctx);

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
bool store_session_get(struct store *s, struct store_ctx *ctx, const char *user,
                       const char *session_id, struct session *out,
                       struct error *err);
bool store_session_get_by_id(struct store *s, struct store_ctx *ctx,
                             const char *user, const struct uuid *id,
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
/* Retrying wrappers of the message, idempotency, memory and counter
 * operations.  Those whose repetition would change the outcome are
 * retried only on RETRY_SAFE errors: session_reserve_seq, session_touch
 * and session_add_metrics ($inc), message_delete and memory_delete (a
 * repeat answers not-found), idem_replace (conditional on the old value),
 * memory_put of a new key (a repeat answers duplicate).  The others are
 * retried on RETRY_IDEMPOTENT errors too; session_mark's $max and
 * message_update's condition (the old updated_at or its own) make a
 * repeat harmless.
 * store_message_insert continues an ordered insert that a retry finds
 * partly done: a duplicate on a message's own _id is that message
 * stored.  store_idem_claim's duplicate may be the caller's own earlier
 * try; the caller compares the stored message id with its own. */
bool store_session_reserve_seq(struct store *s, struct store_ctx *ctx,
                               const char *user, const struct uuid *id,
                               const struct store_reserve *r, int64_t now,
                               struct session *out, struct error *err);
bool store_session_touch(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *id,
                         const struct store_counts *delta, int64_t now,
                         bool activity, struct error *err);
bool store_session_add_metrics(struct store *s, struct store_ctx *ctx,
                               const char *user, const char *session_id,
                               int64_t requests, int64_t errors, double ms,
                               struct error *err);
bool store_session_mark(struct store *s, struct store_ctx *ctx,
                        const char *user, const char *session_id, int64_t now,
                        struct session *out, struct error *err);
bool store_session_tally(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *id,
                         int64_t max_seq, struct store_counts *out,
                         struct error *err);
bool store_session_set_counts(struct store *s, struct store_ctx *ctx,
                              const char *user, const struct uuid *id,
                              const struct session *seen,
                              const struct store_counts *c, bool *changed,
                              struct error *err);
/* session_add_usage is an $inc: retried only on RETRY_SAFE errors.
 * session_delete_unused is retried on RETRY_IDEMPOTENT errors too: a
 * repeat of one that went through answers ERR_NOT_FOUND, which the caller
 * treats as "not deleted" (the purge after it is idempotent either way). */
bool store_session_add_usage(struct store *s, struct store_ctx *ctx,
                             const char *user, const struct uuid *id,
                             int64_t prompt_tokens, int64_t completion_tokens,
                             struct error *err);
bool store_session_delete_unused(struct store *s, struct store_ctx *ctx,
                                 const char *user, const struct uuid *id,
                                 struct error *err);
bool store_message_insert(struct store *s, struct store_ctx *ctx,
                          const struct message *msgs, size_t n,
                          struct error *err);
bool store_message_delete_ids(struct store *s, struct store_ctx *ctx,
                              const char *user, const struct uuid *ids,
                              size_t n, struct error *err);
bool store_message_get(struct store *s, struct store_ctx *ctx, const char *user,
                       const struct uuid *session_uuid, const struct uuid *id,
                       struct message *out, struct error *err);
bool store_message_list(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct uuid *session_uuid,
                        const struct message_filter *f, int64_t limit,
                        int64_t offset, struct message_page *out,
                        struct error *err);
bool store_message_update(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct uuid *session_uuid,
                          const struct uuid *id,
                          const struct message_change *change,
                          struct message *out, struct error *err);
bool store_message_delete(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct uuid *session_uuid,
                          const struct uuid *id, int64_t *bytes,
                          struct error *err);
bool store_message_clear(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *session_uuid,
                         int64_t max_seq, int64_t *deleted, struct error *err);
bool store_message_get_many(struct store *s, struct store_ctx *ctx,
                            const char *user, const struct uuid *session_uuid,
                            const struct uuid *ids, size_t n,
                            struct message *out, bool *found,
                            struct error *err);
bool store_idem_claim(struct store *s, struct store_ctx *ctx, const char *user,
                      const struct uuid *session_uuid, const char *key,
                      const struct idem_key *k, struct error *err);
bool store_idem_get(struct store *s, struct store_ctx *ctx, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    struct idem_key *out, struct error *err);
bool store_idem_get_many(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *session_uuid,
                         const char *const *keys, size_t n,
                         struct idem_key *out, bool *found, struct error *err);
/* A claim_many retried after a lost reply finds its own keys there and
 * reports them not claimed; the caller's per-key claim recognises them
 * by their message id. */
bool store_idem_claim_many(struct store *s, struct store_ctx *ctx,
                           const char *user, const struct uuid *session_uuid,
                           const char *const *keys, const struct idem_key *k,
                           size_t n, bool *claimed, struct error *err);
bool store_idem_complete_many(struct store *s, struct store_ctx *ctx,
                              const char *user, const struct uuid *session_uuid,
                              const char *const *keys, const struct uuid *ids,
                              const int64_t *seqs, size_t n, struct error *err);
bool store_idem_replace(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct uuid *session_uuid,
                        const char *key, const struct uuid *expected,
                        const struct idem_key *k, struct error *err);
bool store_idem_complete(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *session_uuid,
                         const char *key, const struct uuid *message_id,
                         int64_t seq, struct error *err);
bool store_idem_release(struct store *s, struct store_ctx *ctx,
                        const char *user, const struct uuid *session_uuid,
                        const char *key, const struct uuid *message_id,
                        struct error *err);
bool store_memory_list(struct store *s, struct store_ctx *ctx, const char *user,
                       const struct uuid *session_uuid, const char *after,
                       int64_t limit, struct json_value **out_object,
                       struct error *err);
bool store_memory_get(struct store *s, struct store_ctx *ctx, const char *user,
                      const struct uuid *session_uuid, const char *key,
                      struct json_value **out_value, struct error *err);
bool store_memory_put(struct store *s, struct store_ctx *ctx, const char *user,
                      const struct uuid *session_uuid, const char *key,
                      const struct json_value *value, int64_t now, bool insert,
                      struct error *err);
bool store_memory_delete(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *session_uuid,
                         const char *key, struct error *err);
/* Sweeper, stats and erasure.  sweep_candidates, session_stats and
 * user_delete_batch are retried on RETRY_IDEMPOTENT errors too (reads;
 * deleting again finds what is left).  sweep_expire_one and
 * sweep_delete_one are as well: their filters re-check the rule, so a
 * repeat can never apply twice, but a repeat after a try whose reply was
 * lost reports "not changed" for the change that try made;
 * ctx->stats.attempts > 1 tells the caller that may have happened. */
bool store_sweep_candidates(struct store *s, struct store_ctx *ctx,
                            enum sweep_rule rule, int64_t cutoff, int64_t limit,
                            struct sweep_candidate **out, size_t *n,
                            struct error *err);
bool store_sweep_expire_one(struct store *s, struct store_ctx *ctx,
                            const struct sweep_candidate *c, int64_t cutoff,
                            int64_t now, bool *changed, struct error *err);
bool store_sweep_delete_one(struct store *s, struct store_ctx *ctx,
                            enum sweep_rule rule,
                            const struct sweep_candidate *c, int64_t cutoff,
                            bool *deleted, struct error *err);
bool store_session_stats(struct store *s, struct store_ctx *ctx,
                         const char *user, struct session_stats *out,
                         struct error *err);
bool store_user_delete_batch(struct store *s, struct store_ctx *ctx,
                             enum store_collection coll, const char *user,
                             int64_t limit, int64_t *deleted,
                             struct error *err);
/* Tombstones; all three are retried on RETRY_IDEMPOTENT errors too (an
 * upsert, a delete whose repeat is no error, a read). */
bool store_tombstone_put(struct store *s, struct store_ctx *ctx,
                         const char *user, const struct uuid *id, int64_t now,
                         struct error *err);
bool store_tombstone_delete(struct store *s, struct store_ctx *ctx,
                            const char *user, const struct uuid *id,
                            struct error *err);
bool store_tombstone_list(struct store *s, struct store_ctx *ctx,
                          int64_t cutoff, int64_t limit,
                          struct sweep_candidate **out, size_t *n,
                          struct error *err);
/* The user counter and the recount.  user_count is retried only on
 * RETRY_SAFE errors ($inc); user_get and dirty_list on RETRY_IDEMPOTENT
 * too (reads), and so are session_tally (a read) and the two set_counts
 * (conditional on what was read: a repeat after a lost reply reports
 * "not changed" for the change the first try made). */
bool store_user_count(struct store *s, struct store_ctx *ctx, const char *user,
                      int64_t delta, int64_t max, int64_t now,
                      struct error *err);
bool store_user_get(struct store *s, struct store_ctx *ctx, const char *user,
                    struct user_counter *out, struct error *err);
bool store_user_set_count(struct store *s, struct store_ctx *ctx,
                          const char *user, const struct user_counter *seen,
                          int64_t sessions, bool *changed, struct error *err);
bool store_dirty_list(struct store *s, struct store_ctx *ctx,
                      enum store_collection coll, int64_t cutoff, int64_t limit,
                      struct sweep_candidate **out, size_t *n,
                      struct error *err);
/* A read: retried on RETRY_IDEMPOTENT errors too. */
bool store_message_get_item(struct store *s, struct store_ctx *ctx,
                            const char *user, const struct uuid *session_uuid,
                            const char *item_id, struct message *out,
                            struct error *err);
void store_free(struct store *s);

#endif

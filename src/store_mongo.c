/*
 * store_mongo.c - the MongoDB backend of the store interface.
 *
 * Data model (database cfg->mongodb_database):
 *
 *   sessions (cfg->sessions_collection), one document per session:
 *     {_id: UUID (binary subtype 4, struct session.id),
 *      user_id: string, session_id: string,
 *      session_name, description, agent_name, agent_instructions:
 *          string | null,
 *      status: string (status_name()),
 *      metadata: document,
 *      message_count: int64, last_seq: int64,
 *      content_bytes: int64, memory_keys: int64 (quota counters),
 *      dirty_at: datetime (only while a counter may be off; store.h),
 *      metrics: {request_count: int64, error_count: int64,
 *                total_processing_ms: double,
 *                prompt_tokens, completion_tokens: int64 (once a
 *                conversation turn reported usage)},
 *      version: int64,
 *      created_at, updated_at, last_activity_at: datetime}
 *   messages (cfg->messages_collection), one document per message:
 *     {_id: UUID, user_id: string, session_uuid: UUID (the session's _id),
 *      session_id: string (the session's client name, copied for output),
 *      seq: int64, role: "user" | "assistant" | "system" | "tool" |
 *          "developer",
 *      content: string, tool_call_id, tool_name: string | null,
 *      extra_data: any value (null for none),
 *      client_message_id: string (only when the client gave one),
 *      bytes: int64 (store_message_bytes(); older messages lack it),
 *      created_at, updated_at: datetime,
 *      item: document (an OpenAI item written through /v1, less its id;
 *          absent for a message written through /api, and removed by a
 *          PATCH of its content),
 *      item_id: string (only when the /v1 client gave the item an id)}
 *   memory (cfg->memory_collection), one document per session and key:
 *     {_id: {s: session UUID, k: key}, user_id, session_uuid: UUID,
 *      key: string, value: any, updated_at: datetime}
 *   idempotency keys (cfg->idempotency_collection):
 *     {_id: {u: user_id, s: session UUID, k: key}, user_id,
 *      session_uuid: UUID, message_id: UUID, seq: int64 (0 while the
 *      message is not stored yet), created_at: datetime}
 *   tombstones (cfg->tombstones_collection), one per session being
 *   deleted or imported (service_session_delete, the import):
 *     {_id: session UUID, user_id: string, at: datetime}
 *   users (cfg->users_collection), one per user who has made a session:
 *     {_id: user_id, user_id, sessions: int64, dirty_at: datetime (only
 *      while the count may be off)}
 *   Both compound _ids are built with their fields in the order shown:
 *   MongoDB compares embedded documents field by field, in order.
 *
 * Indexes (ensure_indexes, by name, so a rerun is a no-op):
 *   sessions  user_session_id      {user_id: 1, session_id: 1} unique
 *             user_updated         {user_id: 1, updated_at: -1}
 *             user_status_updated  {user_id: 1, status: 1, updated_at: -1}
 *             status_activity      {status: 1, last_activity_at: 1}
 *             user_created         {user_id: 1, created_at: -1}
 *             created              {created_at: 1} (the sweeper's age rule)
 *             dirty                {dirty_at: 1} (the sweeper's recount)
 *   messages  session_seq          {session_uuid: 1, seq: 1} unique
 *             user_session_seq     {user_id: 1, session_uuid: 1, seq: 1}
 *             (it replaces user_session {user_id: 1, session_uuid: 1},
 *             which ensure_indexes drops)
 *             session_item_id      {session_uuid: 1, item_id: 1} unique,
 *             partial {item_id: {$exists: true}} (a /v1 item by the id
 *             its client gave it)
 *   memory    session_key          {session_uuid: 1, key: 1} unique
 *             user_session         {user_id: 1, session_uuid: 1} (erasure)
 *   idempotency keys
 *             user_session         {user_id: 1, session_uuid: 1}
 *   tombstones at                  {at: 1} (the sweeper, oldest first)
 *             user                 {user_id: 1} (erasure)
 *   users     dirty                {dirty_at: 1} (the sweeper's recount)
 *
 * Every filter carries user_id, and every value is appended as a typed
 * BSON value, so nothing a client sends can become a query operator.
 * Numbers are read with bson_iter_as_int64() because other tools (and the
 * development server) may hand an int64 back as int32 or double.
 *
 * docs/storage.md's shard keys are sessions {user_id: 1} and {session_uuid: 1}
 * for the other three: every request-path filter on those collections
 * carries session_uuid at the top level (the compound _ids repeat it), so
 * each operation goes to one shard and the memory upsert names the whole
 * key.  Keep it so when adding a query.
 *
 * No operation passes its own read preference, read concern or write
 * concern: the URI's apply to all of them (store_mongo_describe()).
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libbson's atomics cast away const; pkg-config hands its directory over
 * with -I, not -isystem, so silence that one warning for its headers. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <mongoc/mongoc.h>
#pragma GCC diagnostic pop

#include "clock.h"
#include "log.h"
#include "role.h"
#include "store_mongo.h"
#include "utf8.h"
#include "banned.h"

/* Deeper than anything we write (metadata depth is capped well below);
 * the bound only keeps a hostile stored document from exhausting the
 * stack while it is decoded. */
#define MONGO_MAX_DEPTH 100

#define MONGO_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The store's four collections, as indexes into mongo_store.colls. */
enum mongo_coll {
    MONGO_SESSIONS,
    MONGO_MESSAGES,
    MONGO_MEMORY,
    MONGO_IDEMPOTENCY,
    MONGO_TOMBSTONES,
    MONGO_USERS,
    MONGO_NCOLLS
};

struct mongo_store {
    mongoc_client_pool_t *pool;
    /* One client popped at first use and kept until store_free(), with
     * its handles on the four collections: see mongo_client(). */
    mongoc_client_t *client;
    mongoc_collection_t *colls[MONGO_NCOLLS];
    char *database;
    char *sessions;
    char *messages;
    char *memory;
    char *idempotency;
    char *tombstones;
    char *users;
};

/* ---- logging and secrets ---------------------------------------------- */

static size_t
mongo_emit(char *out, size_t n, size_t o, const char *s)
{
    while (*s != '\0' && o + 1 < n)
        out[o++] = *s++;
    return o;
}

/*
 * Copies in to out[n], hiding the user information of any URI
 * ("scheme://user:pass@host" -> "scheme://<redacted>@host") and the value
 * of any "...password=" option.  Driver messages can quote the URI, and
 * the URI may carry the database password.
 */
static void
mongo_redact(const char *in, char *out, size_t n)
{
    const char *p = in;
    size_t o = 0;

    if (n == 0)
        return;
    while (*p != '\0' && o + 1 < n) {
        if (strncmp(p, "://", 3) == 0) {
            const char *host = p + 3;
            size_t span = strcspn(host, " \t\r\n'\"`,;");
            const char *at = memrchr(host, '@', span);

            o = mongo_emit(out, n, o, "://");
            p = host;
            if (at != NULL) {
                o = mongo_emit(out, n, o, "<redacted>");
                p = at;
            }
            continue;
        }
        if (strncasecmp(p, "password=", 9) == 0) {
            while (o + 1 < n && *p != '=')
                out[o++] = *p++;
            o = mongo_emit(out, n, o, "=<redacted>");
            p++;
            p += strcspn(p, "& \t\r\n'\"`,;");
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}

static void
mongo_log_handler(mongoc_log_level_t level, const char *domain,
                  const char *message, void *user_data)
{
    char clean[512];

    (void)user_data;
    if (level == MONGOC_LOG_LEVEL_TRACE)
        return;
    mongo_redact(message != NULL ? message : "", clean, sizeof(clean));
    if (level <= MONGOC_LOG_LEVEL_WARNING)
        log_warn("mongoc %s: %s", domain != NULL ? domain : "-", clean);
    else
        log_debug("mongoc %s: %s", domain != NULL ? domain : "-", clean);
}

void
store_mongo_global_init(void)
{
    /* The handler is set before mongoc_init() so even init's own
     * messages go through our logger and its redaction. */
    mongoc_log_set_handler(mongo_log_handler, NULL);
    mongoc_log_trace_disable();
    mongoc_init();
}

void
store_mongo_global_cleanup(void)
{
    mongoc_cleanup();
}

/* ---- error classification --------------------------------------------- */

/* The retryable-writes specification's codes (plus LegacyNotPrimary and
 * ReadConcernMajorityNotAvailableYet from the retryable-reads one): the
 * server refused the operation before running it, because it is not the
 * primary, is shutting down, or could not reach a shard. */
static bool
mongo_code_retryable(int64_t code)
{
    switch (code) {
    case 6:     /* HostUnreachable */
    case 7:     /* HostNotFound */
    case 89:    /* NetworkTimeout */
    case 91:    /* ShutdownInProgress */
    case 134:   /* ReadConcernMajorityNotAvailableYet */
    case 189:   /* PrimarySteppedDown */
    case 262:   /* ExceededTimeLimit */
    case 9001:  /* SocketException */
    case 10058: /* LegacyNotPrimary */
    case 10107: /* NotWritablePrimary */
    case 11600: /* InterruptedAtShutdown */
    case 11602: /* InterruptedDueToReplStateChange */
    case 13435: /* NotPrimaryNoSecondaryOk */
    case 13436: /* NotPrimaryOrSecondary */
    /* Index management meeting another host's or process's index build
     * (mongo_ensure_indexes): nothing was done, and it passes. */
    case 276:   /* IndexBuildAborted */
    case 12587: /* BackgroundOperationInProgressForNamespace */
        return true;
    default:
        return false;
    }
}

static bool
mongo_code_duplicate(int64_t code)
{
    return code == 11000 || code == 11001 || code == 12582;
}

/* The name of the error a reply reports (a command's own, or that of its
 * write concern or first write error), for the log; "" if none. */
static const char *
mongo_code_name(const bson_t *reply)
{
    static const char *const paths[] = {
        "codeName", "writeConcernError.codeName",
        "writeConcernErrors.0.codeName", "writeErrors.0.codeName"};
    bson_iter_t it, found;

    for (size_t i = 0; reply != NULL && i < MONGO_COUNT(paths); i++)
        if (bson_iter_init(&it, reply) &&
            bson_iter_find_descendant(&it, paths[i], &found) &&
            BSON_ITER_HOLDS_UTF8(&found))
            return bson_iter_utf8(&found, NULL);
    return "";
}

/*
 * The one place a driver failure becomes a struct error (see
 * store_mongo.h for the table).  The transport domains are looked at
 * before the RetryableWriteError label: the driver labels a socket error
 * in a retryable write too, but the label promises safety only to a retry
 * that reuses the transaction number, which ours does not.  So is a
 * write-concern error: the write ran on the primary, and only whether it
 * reached a majority (or the journal) is unknown; the server labels it
 * when the primary stepped down or shut down while waiting, but the
 * write may still survive, so only an idempotent call may run again.
 * A failed authentication is the database refusing us, not a bug: 503,
 * never retried (another try would be refused the same way).
 *
 * A server's message can quote document content (a duplicate key error
 * shows the key's values), so for server errors only the code and its
 * name are kept.  Driver messages name hosts and causes; they are
 * redacted in case they quote the URI.
 */
static void
mongo_classify(const char *op, const bson_error_t *e, const bson_t *reply,
               struct error *err)
{
    char clean[sizeof(err->message)];
    const char *code_name;
    bool server = e->domain == MONGOC_ERROR_SERVER ||
                  e->domain == MONGOC_ERROR_WRITE_CONCERN;
    bool labelled =
        reply != NULL && mongoc_error_has_label(reply, "RetryableWriteError");

    if (err == NULL)
        return;
    code_name = mongo_code_name(reply);
    mongo_redact(e->message, clean, sizeof(clean));

    if (e->domain == MONGOC_ERROR_SERVER_SELECTION) {
        error_set(err, ERR_UNAVAILABLE, NULL, "%s: %s", op, clean);
        err->retry = RETRY_SAFE;
    } else if (e->domain == MONGOC_ERROR_STREAM) {
        error_set(err, ERR_UNAVAILABLE, NULL, "%s: %s", op, clean);
        /* Failing to connect or resolve means nothing was sent; any
         * other stream failure may have hit after the server ran it. */
        if (e->code == MONGOC_ERROR_STREAM_CONNECT ||
            e->code == MONGOC_ERROR_STREAM_NOT_ESTABLISHED ||
            e->code == MONGOC_ERROR_STREAM_NAME_RESOLUTION)
            err->retry = RETRY_SAFE;
        else
            err->retry = RETRY_IDEMPOTENT;
    } else if (e->domain == MONGOC_ERROR_WRITE_CONCERN) {
        error_set(err, ERR_UNAVAILABLE, NULL,
                  "%s: write concern error %u %.40s", op, (unsigned)e->code,
                  code_name);
        err->retry = RETRY_IDEMPOTENT;
    } else if ((e->domain == MONGOC_ERROR_CLIENT &&
                e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
               (server && e->code == 18)) {
        error_set(err, ERR_UNAVAILABLE, NULL,
                  "%s: the database refused our credentials (check the user "
                  "and password of mongodb_uri)",
                  op);
    } else if (server && mongo_code_duplicate(e->code)) {
        error_set(err, ERR_DUPLICATE, NULL, "%s: duplicate key (%u)", op,
                  (unsigned)e->code);
    } else if ((server && mongo_code_retryable(e->code)) || labelled) {
        error_set(err, ERR_UNAVAILABLE, NULL, "%s: server error %u %.40s", op,
                  (unsigned)e->code, code_name);
        err->retry = RETRY_SAFE;
    } else if (server) {
        error_set(err, ERR_INTERNAL, NULL, "%s: server error %u %.40s", op,
                  (unsigned)e->code, code_name);
    } else {
        error_set(err, ERR_INTERNAL, NULL, "%s: %s", op, clean);
    }
    err->db_code = (int)e->code;
}

bool
store_mongo_classify_json(const char *op, uint32_t domain, uint32_t code,
                          const char *message, const char *reply_json,
                          struct error *err)
{
    bson_error_t e;
    bson_t *reply = NULL;

    memset(&e, 0, sizeof(e));
    e.domain = domain;
    e.code = code;
    bson_strncpy(e.message, message, sizeof(e.message));
    if (reply_json != NULL && reply_json[0] != '\0') {
        reply = bson_new_from_json((const uint8_t *)reply_json, -1, NULL);
        if (reply == NULL)
            return false;
    }
    mongo_classify(op, &e, reply, err);
    bson_destroy(reply);
    return true;
}

static bool
mongo_fail(struct error *err, const char *op, const char *what)
{
    return error_set(err, ERR_INTERNAL, NULL, "%s: %s", op, what);
}

/* ---- JSON <-> BSON ---------------------------------------------------- */

/* Appends v under key.  Keys MongoDB would read as operators or paths
 * were refused by validation; they are checked again here because
 * storing one would be a bug, not a client error. */
static bool
mongo_append_json(bson_t *b, const char *key, size_t key_len,
                  const struct json_value *v, int depth)
{
    bson_t child;
    char idx[16];
    const char *ikey;
    bool ok = true;

    if (depth > MONGO_MAX_DEPTH || key_len > INT_MAX)
        return false;
    switch (v->type) {
    case JSON_NULL:
        return bson_append_null(b, key, (int)key_len);
    case JSON_BOOL:
        return bson_append_bool(b, key, (int)key_len, v->u.b);
    case JSON_INT:
        return bson_append_int64(b, key, (int)key_len, v->u.i);
    case JSON_DOUBLE:
        return bson_append_double(b, key, (int)key_len, v->u.d);
    case JSON_STRING:
        if (v->u.s.len > INT_MAX)
            return false;
        return bson_append_utf8(b, key, (int)key_len, v->u.s.ptr,
                                (int)v->u.s.len);
    case JSON_ARRAY:
        if (!bson_append_array_begin(b, key, (int)key_len, &child))
            return false;
        for (size_t i = 0; i < v->u.a.len && ok; i++) {
            size_t n =
                bson_uint32_to_string((uint32_t)i, &ikey, idx, sizeof(idx));
            ok = mongo_append_json(&child, ikey, n, v->u.a.items[i], depth + 1);
        }
        return bson_append_array_end(b, &child) && ok;
    case JSON_OBJECT:
        if (!bson_append_document_begin(b, key, (int)key_len, &child))
            return false;
        for (size_t i = 0; i < v->u.o.len && ok; i++) {
            const struct json_member *m = &v->u.o.members[i];

            ok = m->key_len > 0 && m->key[0] != '$' &&
                 memchr(m->key, '.', m->key_len) == NULL &&
                 mongo_append_json(&child, m->key, m->key_len, m->value,
                                   depth + 1);
        }
        return bson_append_document_end(b, &child) && ok;
    }
    return false;
}

/* Any JSON value under key; NULL stores null.  extra_data and memory
 * values may be scalars or arrays, which a BSON field holds as well as a
 * document. */
static bool
mongo_append_value(bson_t *b, const char *key, const struct json_value *v)
{
    if (v == NULL)
        return bson_append_null(b, key, -1);
    return mongo_append_json(b, key, strlen(key), v, 0);
}

/* metadata is an object by contract; NULL stores {}. */
static bool
mongo_append_metadata(bson_t *b, const struct json_value *meta,
                      struct error *err)
{
    if (meta == NULL) {
        bson_t empty = BSON_INITIALIZER;
        bool ok = bson_append_document(b, "metadata", -1, &empty);

        bson_destroy(&empty);
        if (!ok)
            return mongo_fail(err, "store", "metadata not storable");
        return true;
    }
    if (meta->type != JSON_OBJECT ||
        !mongo_append_json(b, "metadata", 8, meta, 0))
        return mongo_fail(err, "store", "metadata not storable");
    return true;
}

static char *
mongo_hex(struct arena *a, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *s = arena_alloc(a, n * 2 + 1);

    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 0x0f];
    }
    s[n * 2] = '\0';
    return s;
}

static struct json_value *
mongo_json_cstr(struct arena *a, const char *s)
{
    return json_new_string(a, s, strlen(s));
}

static struct json_value *
mongo_json_time(struct arena *a, int64_t ms)
{
    char text[CLOCK_RFC3339_LEN + 1];

    clock_format(ms, text);
    return mongo_json_cstr(a, text);
}

static struct json_value *mongo_to_json(struct arena *a, const bson_iter_t *it,
                                        int depth);

/* The members of the document or array `it` points at; NULL if it is
 * malformed, too deep, or holds a key or string that is not UTF-8. */
static struct json_value *
mongo_container_to_json(struct arena *a, const bson_iter_t *it, bool array,
                        int depth)
{
    bson_iter_t child;
    const uint8_t *data = NULL;
    uint32_t len = 0;
    bson_t doc;
    struct json_value *out;

    if (depth > MONGO_MAX_DEPTH)
        return NULL;
    if (array)
        bson_iter_array(it, &len, &data);
    else
        bson_iter_document(it, &len, &data);
    if (data == NULL || !bson_init_static(&doc, data, len) ||
        !bson_iter_init(&child, &doc))
        return NULL;
    out = array ? json_new_array(a, bson_count_keys(&doc))
                : json_new_object(a, bson_count_keys(&doc));
    while (bson_iter_next(&child)) {
        struct json_value *v = mongo_to_json(a, &child, depth + 1);

        if (v == NULL)
            return NULL;
        if (array) {
            json_array_push(a, out, v);
        } else {
            const char *key = bson_iter_key(&child);
            size_t key_len = bson_iter_key_len(&child);

            if (!utf8_valid(key, key_len))
                return NULL;
            json_object_put(a, out, key, key_len, v);
        }
    }
    /* bson_iter_next() also stops on corruption; only a clean end of
     * document leaves the iterator with no error offset. */
    return child.err_off == 0 ? out : NULL;
}

/* A BSON string of any kind (string, symbol, code) as a JSON string;
 * NULL if it is not UTF-8. */
static struct json_value *
mongo_string_to_json(struct arena *a, const bson_iter_t *it)
{
    const char *s = NULL;
    uint32_t len = 0;
    const uint8_t *scope;
    uint32_t scope_len;

    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &len);
        break;
    case BSON_TYPE_SYMBOL:
        s = bson_iter_symbol(it, &len);
        break;
    case BSON_TYPE_CODE:
        s = bson_iter_code(it, &len);
        break;
    case BSON_TYPE_CODEWSCOPE:
        s = bson_iter_codewscope(it, &len, &scope_len, &scope);
        break;
    default:
        return NULL;
    }
    if (!utf8_valid(s, len))
        return NULL;
    return json_new_string(a, s, len);
}

/* A binary value: a UUID in its text form, anything else in hex. */
static struct json_value *
mongo_binary_to_json(struct arena *a, const bson_iter_t *it)
{
    bson_subtype_t sub;
    const uint8_t *bin = NULL;
    uint32_t len = 0;
    struct uuid u;
    char text[UUID_STR_LEN + 1];

    bson_iter_binary(it, &sub, &len, &bin);
    if ((sub != BSON_SUBTYPE_UUID && sub != BSON_SUBTYPE_UUID_DEPRECATED) ||
        len != 16)
        return mongo_json_cstr(a, mongo_hex(a, bin, len));
    memcpy(u.b, bin, 16);
    uuid_format(&u, text);
    return mongo_json_cstr(a, text);
}

/* A value of a type JSON lacks, as its usual text: times as RFC 3339,
 * ids as hex, a decimal as its digits, a regex as /pattern/options. */
static struct json_value *
mongo_text_to_json(struct arena *a, const bson_iter_t *it)
{
    char oid_text[25];
    char dec_text[BSON_DECIMAL128_STRING];
    const bson_oid_t *oid = NULL;
    bson_decimal128_t dec;
    uint32_t t, inc, len;
    const char *s, *options = NULL;

    switch (bson_iter_type(it)) {
    case BSON_TYPE_DATE_TIME:
        return mongo_json_time(a, bson_iter_date_time(it));
    case BSON_TYPE_TIMESTAMP:
        bson_iter_timestamp(it, &t, &inc);
        return mongo_json_time(a, (int64_t)t * 1000);
    case BSON_TYPE_BINARY:
        return mongo_binary_to_json(a, it);
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), oid_text);
        return mongo_json_cstr(a, oid_text);
    case BSON_TYPE_DBPOINTER:
        bson_iter_dbpointer(it, &len, &s, &oid);
        bson_oid_to_string(oid, oid_text);
        return mongo_json_cstr(a, oid_text);
    case BSON_TYPE_DECIMAL128:
        bson_iter_decimal128(it, &dec);
        bson_decimal128_to_string(&dec, dec_text);
        return mongo_json_cstr(a, dec_text);
    case BSON_TYPE_REGEX:
        s = bson_iter_regex(it, &options);
        s = arena_printf(a, "/%s/%s", s, options != NULL ? options : "");
        if (!utf8_valid(s, strlen(s)))
            return NULL;
        return mongo_json_cstr(a, s);
    default:
        return NULL;
    }
}

/* One BSON value as JSON.  Types JSON lacks become their usual text. */
static struct json_value *
mongo_to_json(struct arena *a, const bson_iter_t *it, int depth)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        return json_new_double(a, bson_iter_double(it));
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        return json_new_int(a, bson_iter_as_int64(it));
    case BSON_TYPE_BOOL:
        return json_new_bool(a, bson_iter_bool(it));
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
    case BSON_TYPE_CODE:
    case BSON_TYPE_CODEWSCOPE:
        return mongo_string_to_json(a, it);
    case BSON_TYPE_DOCUMENT:
        return mongo_container_to_json(a, it, false, depth);
    case BSON_TYPE_ARRAY:
        return mongo_container_to_json(a, it, true, depth);
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_TIMESTAMP:
    case BSON_TYPE_BINARY:
    case BSON_TYPE_OID:
    case BSON_TYPE_DBPOINTER:
    case BSON_TYPE_DECIMAL128:
    case BSON_TYPE_REGEX:
        return mongo_text_to_json(a, it);
    case BSON_TYPE_EOD:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
    case BSON_TYPE_MAXKEY:
    case BSON_TYPE_MINKEY:
        return json_new_null(a);
    }
    return json_new_null(a);
}

/* ---- sessions <-> BSON ------------------------------------------------ */

static void
mongo_append_uuid(bson_t *b, const char *key, const struct uuid *u)
{
    bson_append_binary(b, key, -1, BSON_SUBTYPE_UUID, u->b, sizeof(u->b));
}

/* NULL stores null, as the nullable session strings do. */
static void
mongo_append_nullable(bson_t *b, const char *key, const char *s)
{
    if (s == NULL)
        bson_append_null(b, key, -1);
    else
        bson_append_utf8(b, key, -1, s, -1);
}

/* The filter every single-session operation starts from. */
static void
mongo_id_filter(bson_t *q, const char *user, const struct uuid *id)
{
    mongo_append_uuid(q, "_id", id);
    bson_append_utf8(q, "user_id", -1, user, -1);
}

static bool
mongo_build_session(bson_t *b, const struct session *sess, struct error *err)
{
    bson_t metrics;

    mongo_append_uuid(b, "_id", &sess->id);
    bson_append_utf8(b, "user_id", -1, sess->user_id, -1);
    bson_append_utf8(b, "session_id", -1, sess->session_id, -1);
    mongo_append_nullable(b, "session_name", sess->session_name);
    mongo_append_nullable(b, "description", sess->description);
    mongo_append_nullable(b, "agent_name", sess->agent_name);
    mongo_append_nullable(b, "agent_instructions", sess->agent_instructions);
    bson_append_utf8(b, "status", -1, status_name(sess->status), -1);
    if (!mongo_append_metadata(b, sess->metadata, err))
        return false;
    bson_append_int64(b, "message_count", -1, sess->message_count);
    bson_append_int64(b, "last_seq", -1, sess->last_seq);
    bson_append_int64(b, "content_bytes", -1, sess->content_bytes);
    bson_append_int64(b, "memory_keys", -1, sess->memory_keys);
    if (sess->dirty_at != 0)
        bson_append_date_time(b, "dirty_at", -1, sess->dirty_at);
    bson_append_document_begin(b, "metrics", -1, &metrics);
    bson_append_int64(&metrics, "request_count", -1, sess->request_count);
    bson_append_int64(&metrics, "error_count", -1, sess->error_count);
    bson_append_double(&metrics, "total_processing_ms", -1,
                       sess->total_processing_ms);
    bson_append_document_end(b, &metrics);
    bson_append_int64(b, "version", -1, sess->version);
    bson_append_date_time(b, "created_at", -1, sess->created_at);
    bson_append_date_time(b, "updated_at", -1, sess->updated_at);
    bson_append_date_time(b, "last_activity_at", -1, sess->last_activity_at);
    return true;
}

static bool
mongo_get_string(struct arena *a, const bson_iter_t *it, bool nullable,
                 const char **out)
{
    const char *s;
    uint32_t len = 0;

    if (nullable && (BSON_ITER_HOLDS_NULL(it) ||
                     bson_iter_type(it) == BSON_TYPE_UNDEFINED)) {
        *out = NULL;
        return true;
    }
    if (!BSON_ITER_HOLDS_UTF8(it))
        return false;
    s = bson_iter_utf8(it, &len);
    if (!utf8_valid(s, len))
        return false;
    *out = arena_strndup(a, s, len);
    return true;
}

static bool
mongo_get_int(const bson_iter_t *it, int64_t *out)
{
    if (!BSON_ITER_HOLDS_NUMBER(it))
        return false;
    *out = bson_iter_as_int64(it);
    return true;
}

static bool
mongo_get_time(const bson_iter_t *it, int64_t *out)
{
    if (BSON_ITER_HOLDS_DATE_TIME(it)) {
        *out = bson_iter_date_time(it);
        return true;
    }
    return mongo_get_int(it, out);
}

static bool
mongo_get_uuid(const bson_iter_t *it, struct uuid *out)
{
    bson_subtype_t sub;
    uint32_t len = 0;
    const uint8_t *bin = NULL;

    if (!BSON_ITER_HOLDS_BINARY(it))
        return false;
    bson_iter_binary(it, &sub, &len, &bin);
    if ((sub != BSON_SUBTYPE_UUID && sub != BSON_SUBTYPE_UUID_DEPRECATED) ||
        len != sizeof(out->b))
        return false;
    memcpy(out->b, bin, sizeof(out->b));
    return true;
}

/*
 * Decoding stored documents.  A document kind is a table of its fields,
 * each read into the decoded struct at offset by a reader; mongo_decode()
 * walks the document once and skips keys it does not know.  A field of
 * the wrong type is ERR_INTERNAL naming the field: the document was not
 * written by us, or not by this version.  Missing counters read as 0 and
 * missing nullable strings as null, so older documents still load; a
 * missing required field is ERR_INTERNAL too.  The arena may be NULL for
 * a kind none of whose fields is a string or JSON.
 */
typedef bool mongo_reader(struct arena *a, const bson_iter_t *it, void *dst);

struct mongo_field {
    const char *key;
    mongo_reader *read;
    size_t offset; /* of the member read into */
    bool required;
};

struct mongo_doc {
    const char *name; /* "session": for errors */
    size_t size;      /* of the struct decoded into */
    const struct mongo_field *fields;
    size_t nfields; /* at most 32 */
    /* Fills in what a document may lack, after decoding; or NULL. */
    void (*finish)(struct arena *a, void *out);
    /* What the log calls a find, list or count of this kind. */
    const char *find_op, *list_op, *count_op;
};

static bool
mongo_read_uuid(struct arena *a, const bson_iter_t *it, void *dst)
{
    (void)a;
    return mongo_get_uuid(it, dst);
}

static bool
mongo_read_string(struct arena *a, const bson_iter_t *it, void *dst)
{
    return mongo_get_string(a, it, false, dst);
}

static bool
mongo_read_nullable(struct arena *a, const bson_iter_t *it, void *dst)
{
    return mongo_get_string(a, it, true, dst);
}

static bool
mongo_read_int(struct arena *a, const bson_iter_t *it, void *dst)
{
    (void)a;
    return mongo_get_int(it, dst);
}

static bool
mongo_read_time(struct arena *a, const bson_iter_t *it, void *dst)
{
    (void)a;
    return mongo_get_time(it, dst);
}

static bool
mongo_decode(struct arena *a, const bson_t *doc, const struct mongo_doc *kind,
             void *out, struct error *err)
{
    bson_iter_t it;
    uint32_t seen = 0; /* bit i: fields[i] was read */
    size_t i = 0;      /* where the search for the next key starts */
    const char *bad = NULL;

    memset(out, 0, kind->size);
    if (!bson_iter_init(&it, doc))
        return error_set(err, ERR_INTERNAL, NULL,
                         "decode %s: malformed document", kind->name);
    while (bad == NULL && bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);

        /* The documents we write keep the table's order, so the search
         * starts after the field found last and usually ends at once. */
        for (size_t n = 0; n < kind->nfields; n++, i++) {
            const struct mongo_field *f;

            if (i == kind->nfields)
                i = 0;
            f = &kind->fields[i];
            if (strcmp(key, f->key) != 0)
                continue;
            if (f->read(a, &it, (char *)out + f->offset))
                seen |= UINT32_C(1) << i;
            else
                bad = key; /* used before doc can go */
            i++;
            break;
        }
    }
    if (bad == NULL && it.err_off != 0)
        bad = "(document)";
    for (i = 0; bad == NULL && i < kind->nfields; i++)
        if (kind->fields[i].required && !(seen & UINT32_C(1) << i))
            bad = kind->fields[i].key;
    if (kind->finish != NULL)
        kind->finish(a, out);
    if (bad != NULL)
        return error_set(err, ERR_INTERNAL, NULL,
                         "stored %s has a bad %.60s field", kind->name, bad);
    return true;
}

/* ---- sessions: the special fields and the table ----------------------- */

static bool
mongo_read_status(struct arena *a, const bson_iter_t *it, void *dst)
{
    int st =
        BSON_ITER_HOLDS_UTF8(it) ? status_parse(bson_iter_utf8(it, NULL)) : -1;

    (void)a;
    if (st < 0)
        return false;
    *(enum session_status *)dst = (enum session_status)st;
    return true;
}

/* A document, or null for the empty object mongo_session_finish() puts
 * in. */
static bool
mongo_read_metadata(struct arena *a, const bson_iter_t *it, void *dst)
{
    const struct json_value **meta = dst;

    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return BSON_ITER_HOLDS_NULL(it);
    *meta = mongo_container_to_json(a, it, false, 1);
    return *meta != NULL;
}

/* dst is the whole session: the metrics document fills five members. */
static bool
mongo_read_metrics(struct arena *a, const bson_iter_t *it, void *dst)
{
    struct session *out = dst;
    bson_iter_t m;

    (void)a;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &m))
        return false;
    while (bson_iter_next(&m)) {
        const char *key = bson_iter_key(&m);

        if (strcmp(key, "request_count") == 0) {
            if (!mongo_get_int(&m, &out->request_count))
                return false;
        } else if (strcmp(key, "error_count") == 0) {
            if (!mongo_get_int(&m, &out->error_count))
                return false;
        } else if (strcmp(key, "total_processing_ms") == 0) {
            if (!BSON_ITER_HOLDS_NUMBER(&m))
                return false;
            out->total_processing_ms = bson_iter_as_double(&m);
        } else if (strcmp(key, "prompt_tokens") == 0) {
            if (!mongo_get_int(&m, &out->prompt_tokens))
                return false;
        } else if (strcmp(key, "completion_tokens") == 0) {
            if (!mongo_get_int(&m, &out->completion_tokens))
                return false;
        }
    }
    return true;
}

static void
mongo_session_finish(struct arena *a, void *out)
{
    struct session *sess = out;

    if (sess->metadata == NULL)
        sess->metadata = json_new_object(a, 0);
}

#define SESSION_FIELD(key, read, member, required)                             \
    {                                                                          \
        key, read, offsetof(struct session, member), required                  \
    }
static const struct mongo_field mongo_session_fields[] = {
    SESSION_FIELD("_id", mongo_read_uuid, id, true),
    SESSION_FIELD("user_id", mongo_read_string, user_id, true),
    SESSION_FIELD("session_id", mongo_read_string, session_id, true),
    SESSION_FIELD("session_name", mongo_read_nullable, session_name, false),
    SESSION_FIELD("description", mongo_read_nullable, description, false),
    SESSION_FIELD("agent_name", mongo_read_nullable, agent_name, false),
    SESSION_FIELD("agent_instructions", mongo_read_nullable, agent_instructions,
                  false),
    SESSION_FIELD("status", mongo_read_status, status, true),
    SESSION_FIELD("metadata", mongo_read_metadata, metadata, false),
    SESSION_FIELD("message_count", mongo_read_int, message_count, false),
    SESSION_FIELD("last_seq", mongo_read_int, last_seq, false),
    SESSION_FIELD("content_bytes", mongo_read_int, content_bytes, false),
    SESSION_FIELD("memory_keys", mongo_read_int, memory_keys, false),
    SESSION_FIELD("dirty_at", mongo_read_time, dirty_at, false),
    {"metrics", mongo_read_metrics, 0, false},
    SESSION_FIELD("version", mongo_read_int, version, true),
    SESSION_FIELD("created_at", mongo_read_time, created_at, false),
    SESSION_FIELD("updated_at", mongo_read_time, updated_at, false),
    SESSION_FIELD("last_activity_at", mongo_read_time, last_activity_at, false),
};
_Static_assert(MONGO_COUNT(mongo_session_fields) <= 32,
               "mongo_decode() counts in 32 bits");
#undef SESSION_FIELD

static const struct mongo_doc mongo_session_doc = {
    .name = "session",
    .size = sizeof(struct session),
    .fields = mongo_session_fields,
    .nfields = MONGO_COUNT(mongo_session_fields),
    .finish = mongo_session_finish,
    .find_op = "find session",
    .list_op = "list sessions",
    .count_op = "count sessions",
};

/* Decodes one stored session into arena memory (mongo_decode()). */
static bool
mongo_decode_session(struct arena *a, const bson_t *doc, struct session *out,
                     struct error *err)
{
    return mongo_decode(a, doc, &mongo_session_doc, out, err);
}

/* ---- plumbing --------------------------------------------------------- */

static struct mongo_store *
mongo_impl(struct store *s)
{
    return s->impl;
}

/*
 * The store's client.  A store is used by one thread (a worker, the
 * sweeper, the supervisor before it forks), one operation at a time, so
 * instead of a pop and a push around every operation (each a lock and a
 * look at the pool's topology) it pops one client at first use and keeps
 * it; store_free() pushes it back.  The pool stays: its background
 * monitoring notices a failed or changed server at once, where a
 * single-threaded client would wait out a 5 s cooldown after a failed
 * check.  The kept client is still the pool's: it reconnects as any
 * pooled client does.
 */
static mongoc_client_t *
mongo_client(struct mongo_store *m)
{
    if (m->client == NULL)
        m->client = mongoc_client_pool_pop(m->pool);
    return m->client;
}

/* The name of one of the store's collections. */
static const char *
mongo_coll_name(const struct mongo_store *m, enum mongo_coll which)
{
    switch (which) {
    case MONGO_SESSIONS:
        return m->sessions;
    case MONGO_MESSAGES:
        return m->messages;
    case MONGO_MEMORY:
        return m->memory;
    case MONGO_IDEMPOTENCY:
        return m->idempotency;
    case MONGO_USERS:
        return m->users;
    case MONGO_TOMBSTONES:
    case MONGO_NCOLLS:
        break;
    }
    return m->tombstones;
}

/* The kept client's handle on collection `name`, which is one of the
 * store's four (every caller passes m->sessions, m->messages, m->memory
 * or m->idempotency), made at first use.  Borrowed: callers never destroy
 * it; store_free() does. */
static mongoc_collection_t *
mongo_collection(struct store *s, mongoc_client_t *client, const char *name)
{
    struct mongo_store *m = mongo_impl(s);
    const char *names[MONGO_NCOLLS] = {
        [MONGO_SESSIONS] = m->sessions,
        [MONGO_MESSAGES] = m->messages,
        [MONGO_MEMORY] = m->memory,
        [MONGO_IDEMPOTENCY] = m->idempotency,
        [MONGO_TOMBSTONES] = m->tombstones,
        [MONGO_USERS] = m->users,
    };

    for (size_t i = 0; i < MONGO_NCOLLS; i++) {
        if (name != names[i] && strcmp(name, names[i]) != 0)
            continue;
        if (m->colls[i] == NULL)
            m->colls[i] =
                mongoc_client_get_collection(client, m->database, names[i]);
        return m->colls[i];
    }
    /* A collection the store does not own would have no one to free its
     * handle: a bug, caught on the first test that reaches it. */
    log_error("store: unknown collection %s", name);
    abort();
}

/* A count of a write's reply (deletedCount, matchedCount, ...); -1 if the
 * reply does not have it. */
static int64_t
mongo_reply_count(const bson_t *reply, const char *field)
{
    bson_iter_t it;

    if (reply != NULL && bson_iter_init_find(&it, reply, field) &&
        BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return -1;
}

/* The deletedCount of a delete reply. */
static int64_t
mongo_deleted_count(const bson_t *reply)
{
    int64_t n = mongo_reply_count(reply, "deletedCount");

    return n > 0 ? n : 0;
}

/* ---- operations ------------------------------------------------------- */

static bool mongo_cursor_ok(mongoc_cursor_t *cursor, const char *op,
                            struct error *err);

static bool
mongo_ping(struct store *s, struct error *err)
{
    mongoc_client_t *client = mongo_client(mongo_impl(s));
    bson_t cmd = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    bson_append_int32(&cmd, "ping", -1, 1);
    ok = mongoc_client_command_simple(client, "admin", &cmd, NULL, &reply, &e);
    if (!ok)
        mongo_classify("ping", &e, &reply, err);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

struct mongo_index_key {
    const char *field;
    int dir;
};

struct mongo_index {
    const char *name;
    bool unique;
    struct mongo_index_key keys[4]; /* ends at the first NULL field */
};

/*
 * The session list sorts on {updated_at or created_at, _id} (the _id
 * breaks ties, so pages never overlap): each list index ends in both,
 * so the sort comes from the index, never from a blocking SORT stage.
 * The status ones serve a status filter (is_active=false is the other
 * statuses, $in, which MongoDB merges in order: SORT_MERGE) and stats.
 */
/* Indexes that hold only the documents that have a field:
 * partialFilterExpression {<field>: {$exists: true}}. */
static const struct {
    const char *index;
    const char *field;
} mongo_partial_indexes[] = {
    {"session_item_id", "item_id"},
};

/* The field an index is partial on, or NULL. */
static const char *
mongo_partial_field(const char *index)
{
    for (size_t i = 0; i < MONGO_COUNT(mongo_partial_indexes); i++)
        if (strcmp(mongo_partial_indexes[i].index, index) == 0)
            return mongo_partial_indexes[i].field;
    return NULL;
}

static const struct mongo_index mongo_session_indexes[] = {
    {"user_session_id", true, {{"user_id", 1}, {"session_id", 1}}},
    {"user_updated_id",
     false,
     {{"user_id", 1}, {"updated_at", -1}, {"_id", -1}}},
    {"user_status_updated_id",
     false,
     {{"user_id", 1}, {"status", 1}, {"updated_at", -1}, {"_id", -1}}},
    {"user_created_id",
     false,
     {{"user_id", 1}, {"created_at", -1}, {"_id", -1}}},
    {"user_status_created_id",
     false,
     {{"user_id", 1}, {"status", 1}, {"created_at", -1}, {"_id", -1}}},
    {"status_activity", false, {{"status", 1}, {"last_activity_at", 1}}},
    {"created", false, {{"created_at", 1}}},
    {"dirty", false, {{"dirty_at", 1}}},
};

/* user_session_seq serves every user-scoped message query: the list (a
 * seq range, sorted by seq), its count, context, export, clear and
 * purge; user_session_role_seq the same with a role filter. */
static const struct mongo_index mongo_message_indexes[] = {
    {"session_seq", true, {{"session_uuid", 1}, {"seq", 1}}},
    {"user_session_seq",
     false,
     {{"user_id", 1}, {"session_uuid", 1}, {"seq", 1}}},
    {"user_session_role_seq",
     false,
     {{"user_id", 1}, {"session_uuid", 1}, {"role", 1}, {"seq", 1}}},
    /* Unique only among the messages that have an item_id (partial). */
    {"session_item_id", true, {{"session_uuid", 1}, {"item_id", 1}}},
};

static const struct mongo_index mongo_memory_indexes[] = {
    {"session_key", true, {{"session_uuid", 1}, {"key", 1}}},
    /* A user's erasure finds every entry of the user, including those a
     * cut-short purge left behind. */
    {"user_session", false, {{"user_id", 1}, {"session_uuid", 1}}},
};

/* For purge; lookups go by _id. */
static const struct mongo_index mongo_idem_indexes[] = {
    {"user_session", false, {{"user_id", 1}, {"session_uuid", 1}}},
};

static const struct mongo_index mongo_tombstone_indexes[] = {
    {"at", false, {{"at", 1}}},
    {"user", false, {{"user_id", 1}}},
};

/* Lookups go by _id (the user id). */
static const struct mongo_index mongo_user_indexes[] = {
    {"dirty", false, {{"dirty_at", 1}}},
};

/* Each collection's indexes, and those an older parley made there that
 * the ones above replace (dropped once the new ones are built). */
static const struct mongo_index_set {
    enum mongo_coll coll;
    const struct mongo_index *ix;
    size_t n;
    const char *legacy[4]; /* ends at the first NULL */
} mongo_index_sets[] = {
    {MONGO_SESSIONS,
     mongo_session_indexes,
     MONGO_COUNT(mongo_session_indexes),
     {"user_updated", "user_status_updated", "user_created"}},
    {MONGO_MESSAGES,
     mongo_message_indexes,
     MONGO_COUNT(mongo_message_indexes),
     {"user_session"}},
    {MONGO_MEMORY,
     mongo_memory_indexes,
     MONGO_COUNT(mongo_memory_indexes),
     {NULL}},
    {MONGO_IDEMPOTENCY,
     mongo_idem_indexes,
     MONGO_COUNT(mongo_idem_indexes),
     {NULL}},
    {MONGO_TOMBSTONES,
     mongo_tombstone_indexes,
     MONGO_COUNT(mongo_tombstone_indexes),
     {NULL}},
    {MONGO_USERS, mongo_user_indexes, MONGO_COUNT(mongo_user_indexes), {NULL}},
};

/* One createIndexes command for a collection.  The server answers a
 * request for indexes that already exist with this exact name and spec
 * with success ("all indexes already exist"), so reruns are free, and
 * one that meets the same build under way (another worker, host or
 * `parley ensure-indexes`) waits for it and answers the same; one with
 * the same name and another spec fails, which we want to hear. */
static bool
mongo_create_indexes(mongoc_database_t *db, const char *coll,
                     const struct mongo_index *ix, size_t n, bool wait,
                     struct error *err)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bson_t wc;
    bson_t list, spec, keys;
    bson_error_t e;
    char idx[16];
    const char *ikey, *partial;
    bool ok;

    bson_append_utf8(&cmd, "createIndexes", -1, coll, -1);
    bson_append_array_begin(&cmd, "indexes", -1, &list);
    for (size_t i = 0; i < n; i++) {
        size_t len =
            bson_uint32_to_string((uint32_t)i, &ikey, idx, sizeof(idx));

        bson_append_document_begin(&list, ikey, (int)len, &spec);
        bson_append_document_begin(&spec, "key", -1, &keys);
        for (size_t k = 0;
             k < MONGO_COUNT(ix[i].keys) && ix[i].keys[k].field != NULL; k++)
            bson_append_int32(&keys, ix[i].keys[k].field, -1,
                              ix[i].keys[k].dir);
        bson_append_document_end(&spec, &keys);
        bson_append_utf8(&spec, "name", -1, ix[i].name, -1);
        if (ix[i].unique)
            bson_append_bool(&spec, "unique", -1, true);
        if ((partial = mongo_partial_field(ix[i].name)) != NULL) {
            bson_t pfe, exists;

            bson_append_document_begin(&spec, "partialFilterExpression", -1,
                                       &pfe);
            bson_append_document_begin(&pfe, partial, -1, &exists);
            bson_append_bool(&exists, "$exists", -1, true);
            bson_append_document_end(&pfe, &exists);
            bson_append_document_end(&spec, &pfe);
        }
        bson_append_document_end(&list, &spec);
    }
    bson_append_array_end(&cmd, &list);
    /* Only the last command waits for the URI's write concern (a
     * majority): once it is majority-committed, so is every oplog entry
     * before it, and a new database's indexes are ready after one wait
     * for the majority instead of five. */
    if (!wait) {
        bson_append_document_begin(&opts, "writeConcern", -1, &wc);
        bson_append_int32(&wc, "w", -1, 1);
        bson_append_document_end(&opts, &wc);
    }
    ok = mongoc_database_write_command_with_opts(db, &cmd, &opts, &reply, &e);
    if (!ok)
        mongo_classify("createIndexes", &e, &reply, err);
    bson_destroy(&opts);
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

/* Whether the collection has an index of that name (listIndexes); a
 * collection that does not exist has none. */
static bool
mongo_has_index(mongoc_collection_t *coll, const char *name, bool *found,
                struct error *err)
{
    mongoc_cursor_t *cursor =
        mongoc_collection_find_indexes_with_opts(coll, NULL);
    const bson_t *doc = NULL;
    bson_iter_t it;
    bool ok;

    *found = false;
    while (mongoc_cursor_next(cursor, &doc))
        if (bson_iter_init_find(&it, doc, "name") &&
            BSON_ITER_HOLDS_UTF8(&it) &&
            strcmp(bson_iter_utf8(&it, NULL), name) == 0)
            *found = true;
    ok = mongo_cursor_ok(cursor, "listIndexes", err);
    mongoc_cursor_destroy(cursor);
    return ok;
}

/* Drops an index we no longer want, if it is there: listed first, so a
 * database that never had it (every new one) sends no dropIndexes at
 * all.  A dropIndexes while another process builds an index on the
 * collection is refused (12587, retried: mongo_code_retryable); "no such
 * index" (27) or collection (26) means another process dropped it
 * first, which is the point.  The names are compared too: the
 * development server says IndexNotFound with another code. */
static bool
mongo_drop_index(mongoc_database_t *db, mongoc_collection_t *coll,
                 const char *name, struct error *err)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool found = false;
    bool ok = mongo_has_index(coll, name, &found, err);

    if (!ok || !found)
        goto done;
    bson_append_utf8(&cmd, "dropIndexes", -1, mongoc_collection_get_name(coll),
                     -1);
    bson_append_utf8(&cmd, "index", -1, name, -1);
    ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, &reply, &e);
    if (!ok && e.domain == MONGOC_ERROR_SERVER) {
        const char *code_name = mongo_code_name(&reply);

        ok = e.code == 26 || e.code == 27 ||
             strcmp(code_name, "IndexNotFound") == 0 ||
             strcmp(code_name, "NamespaceNotFound") == 0;
    }
    if (!ok)
        mongo_classify("dropIndexes", &e, &reply, err);
done:
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

/* Each collection's indexes are built before the ones they replace are
 * dropped, so every query always has one to use. */
static bool
mongo_ensure_indexes(struct store *s, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_database_t *db = mongoc_client_get_database(client, m->database);
    bool ok = true;

    for (size_t i = 0; ok && i < MONGO_COUNT(mongo_index_sets); i++) {
        const struct mongo_index_set *set = &mongo_index_sets[i];
        mongoc_collection_t *coll =
            mongo_collection(s, client, mongo_coll_name(m, set->coll));

        ok = mongo_create_indexes(db, mongoc_collection_get_name(coll), set->ix,
                                  set->n,
                                  i + 1 == MONGO_COUNT(mongo_index_sets), err);
        for (size_t k = 0;
             ok && k < MONGO_COUNT(set->legacy) && set->legacy[k] != NULL; k++)
            ok = mongo_drop_index(db, coll, set->legacy[k], err);
    }
    mongoc_database_destroy(db);
    return ok;
}

static bool
mongo_session_insert(struct store *s, const struct session *sess,
                     struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t doc = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok = mongo_build_session(&doc, sess, err);

    if (!ok)
        goto done;
    ok = mongoc_collection_insert_one(coll, &doc, NULL, &reply, &e);
    if (!ok)
        mongo_classify("insert session", &e, &reply, err);
done:
    bson_destroy(&reply);
    bson_destroy(&doc);
    return ok;
}

/* False with err set if cursor failed; op names the read for the log. */
static bool
mongo_cursor_ok(mongoc_cursor_t *cursor, const char *op, struct error *err)
{
    const bson_t *reply = NULL;
    bson_error_t e;

    if (!mongoc_cursor_error_document(cursor, &e, &reply))
        return true;
    mongo_classify(op, &e, reply, err);
    return false;
}

/* A cursor on the first document matching filter in collection; opts,
 * an empty document the caller destroys, asks for one in one batch. */
static mongoc_cursor_t *
mongo_find_first(struct store *s, const char *collection, const bson_t *filter,
                 bson_t *opts)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, collection);

    bson_append_int64(opts, "limit", -1, 1);
    bson_append_bool(opts, "singleBatch", -1, true);
    return mongoc_collection_find_with_opts(coll, filter, opts, NULL);
}

/* The first document of kind matching filter in collection, decoded
 * into out straight from the driver's buffer; ERR_NOT_FOUND if none. */
static bool
mongo_find_decode(struct store *s, struct arena *a, const char *collection,
                  const struct mongo_doc *kind, const bson_t *filter, void *out,
                  struct error *err)
{
    bson_t opts = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = mongo_find_first(s, collection, filter, &opts);
    const bson_t *doc = NULL;
    bool ok = false;

    if (mongoc_cursor_next(cursor, &doc))
        ok = mongo_decode(a, doc, kind, out, err);
    else if (mongo_cursor_ok(cursor, kind->find_op, err))
        error_set(err, ERR_NOT_FOUND, NULL, "%s not found", kind->name);
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    return ok;
}

static bool
mongo_session_get(struct store *s, struct arena *a, const char *user,
                  const char *session_id, struct session *out,
                  struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bool ok;

    bson_append_utf8(&filter, "user_id", -1, user, -1);
    bson_append_utf8(&filter, "session_id", -1, session_id, -1);
    ok = mongo_find_decode(s, a, mongo_impl(s)->sessions, &mongo_session_doc,
                           &filter, out, err);
    bson_destroy(&filter);
    return ok;
}

static bool
mongo_session_get_by_id(struct store *s, struct arena *a, const char *user,
                        const struct uuid *id, struct session *out,
                        struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bool ok;

    mongo_id_filter(&filter, user, id);
    ok = mongo_find_decode(s, a, mongo_impl(s)->sessions, &mongo_session_doc,
                           &filter, out, err);
    bson_destroy(&filter);
    return ok;
}

/* The search term as a regex that matches it literally: every character
 * with a meaning in PCRE (and in JavaScript, for the development server)
 * is escaped, so a client can neither widen the match nor send a pattern
 * that backtracks for ever. */
static char *
mongo_regex_literal(struct arena *a, const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = arena_alloc(a, 2 * n + 1);

    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i]) != NULL)
            out[o++] = '\\';
        out[o++] = s[i];
    }
    out[o] = '\0';
    return out;
}

static void
mongo_append_range(bson_t *q, const char *field, int64_t after, int64_t before)
{
    bson_t range;

    if (after == STORE_NO_TIME && before == STORE_NO_TIME)
        return;
    bson_append_document_begin(q, field, -1, &range);
    if (after != STORE_NO_TIME)
        bson_append_date_time(&range, "$gt", -1, after);
    if (before != STORE_NO_TIME)
        bson_append_date_time(&range, "$lt", -1, before);
    bson_append_document_end(q, &range);
}

/*
 * The list filter.  status and is_active both constrain the one status
 * field; rather than an $and, a status that contradicts is_active means
 * nothing can match, reported through *empty.  is_active=false is every
 * other status, listed ($in rather than $ne): on a {user_id, status,
 * <sort>} index MongoDB reads each status's run in sort order and merges
 * them (SORT_MERGE), where a $ne range would need a blocking sort.
 * *by_status says the filter pins status to a value or a list.
 */
static void
mongo_list_filter(bson_t *q, struct arena *a, const char *user,
                  const struct session_filter *f, bool *empty, bool *by_status)
{
    *empty = false;
    *by_status = f->status >= 0 || f->is_active == 1 || f->is_active == 0;
    bson_append_utf8(q, "user_id", -1, user, -1);
    if (f->status >= 0) {
        if ((f->is_active == 1 && f->status != STATUS_ACTIVE) ||
            (f->is_active == 0 && f->status == STATUS_ACTIVE))
            *empty = true;
        bson_append_utf8(q, "status", -1,
                         status_name((enum session_status)f->status), -1);
    } else if (f->is_active == 1) {
        bson_append_utf8(q, "status", -1, status_name(STATUS_ACTIVE), -1);
    } else if (f->is_active == 0) {
        bson_t in, list;
        char idx[16];
        const char *ikey;
        uint32_t n = 0;

        bson_append_document_begin(q, "status", -1, &in);
        bson_append_array_begin(&in, "$in", -1, &list);
        for (int st = 0; st < STATUS_COUNT; st++) {
            size_t len;

            if (st == STATUS_ACTIVE)
                continue;
            len = bson_uint32_to_string(n++, &ikey, idx, sizeof(idx));
            bson_append_utf8(&list, ikey, (int)len,
                             status_name((enum session_status)st), -1);
        }
        bson_append_array_end(&in, &list);
        bson_append_document_end(q, &in);
    }
    if (f->agent_name != NULL)
        bson_append_utf8(q, "agent_name", -1, f->agent_name, -1);
    if (f->search != NULL) {
        bson_t re;

        bson_append_document_begin(q, "session_name", -1, &re);
        bson_append_utf8(&re, "$regex", -1, mongo_regex_literal(a, f->search),
                         -1);
        bson_append_utf8(&re, "$options", -1, "i", -1);
        bson_append_document_end(q, &re);
    }
    mongo_append_range(q, "created_at", f->created_after, f->created_before);
    mongo_append_range(q, "updated_at", f->updated_after, f->updated_before);
}

/* The sort {field: dir, _id: dir} and its index, named with a hint: a
 * list filtered by status reads that status's run of the sort
 * (user_status_*_id), any other the user's sessions in sort order
 * (user_*_id), whatever else the filter holds (searched, agent_name and
 * date filters are checked on the documents: at most the user's
 * sessions, which quota_sessions_per_user bounds, are read). */
static void
mongo_list_sort(bson_t *opts, enum session_sort sort, bool by_status)
{
    const char *field = "updated_at";
    int dir = -1;
    bson_t doc;

    switch (sort) {
    case SORT_UPDATED_DESC:
        break;
    case SORT_UPDATED_ASC:
        dir = 1;
        break;
    case SORT_CREATED_DESC:
        field = "created_at";
        break;
    case SORT_CREATED_ASC:
        field = "created_at";
        dir = 1;
        break;
    }
    bson_append_document_begin(opts, "sort", -1, &doc);
    bson_append_int32(&doc, field, -1, dir);
    bson_append_int32(&doc, "_id", -1, dir);
    bson_append_document_end(opts, &doc);
    if (field[0] == 'u')
        bson_append_utf8(
            opts, "hint", -1,
            by_status ? "user_status_updated_id" : "user_updated_id", -1);
    else
        bson_append_utf8(
            opts, "hint", -1,
            by_status ? "user_status_created_id" : "user_created_id", -1);
}

/* What a list read: items is an array of len structs of the kind in the
 * arena; total counts every match, -1 if not counted; has_more: another
 * document matches past the page. */
struct mongo_page {
    void *items;
    size_t len;
    int64_t total;
    bool has_more;
};

/* The total of a list page: a short page that is not past the end holds
 * the last matches, so the total is known without a second round trip;
 * otherwise the filter is counted, on the index the page used (opts'
 * hint). */
static bool
mongo_page_total(mongoc_collection_t *coll, const bson_t *filter,
                 const bson_t *opts, int64_t limit, int64_t offset,
                 const struct mongo_page *page, const char *what,
                 int64_t *total, struct error *err)
{
    bson_t reply = BSON_INITIALIZER;
    bson_t count_opts = BSON_INITIALIZER;
    bson_iter_t it;
    bson_error_t e;
    bool ok = true;

    if (limit > 0 && !page->has_more && (page->len > 0 || offset == 0)) {
        *total = offset + (int64_t)page->len;
    } else {
        if (bson_iter_init_find(&it, opts, "hint"))
            bson_append_iter(&count_opts, "hint", -1, &it);
        *total = mongoc_collection_count_documents(coll, filter, &count_opts,
                                                   NULL, &reply, &e);
        if (*total < 0) {
            *total = 0;
            mongo_classify(what, &e, &reply, err);
            ok = false;
        }
    }
    bson_destroy(&count_opts);
    bson_destroy(&reply);
    return ok;
}

/* A page of a list: up to limit documents of kind matching filter after
 * skipping offset, in the sort (and on the index) opts holds, decoded one
 * by one, and whether one more matches (page->has_more: one document
 * more than limit is asked for and not decoded); then, if count, the
 * total of all matches.  On failure the page is empty. */
static bool
mongo_list_page(mongoc_collection_t *coll, struct arena *a,
                const struct mongo_doc *kind, const bson_t *filter,
                bson_t *opts, int64_t limit, int64_t offset, bool count,
                struct mongo_page *page, struct error *err)
{
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    size_t cap = 0;
    bool ok = true;

    *page = (struct mongo_page){NULL, 0, count ? 0 : -1, false};
    if (offset < 0)
        offset = 0;
    if (limit > 0) {
        if (offset > 0)
            bson_append_int64(opts, "skip", -1, offset);
        bson_append_int64(opts, "limit", -1, limit + 1);
        /* The whole page in the first reply (up to 16 MiB). */
        bson_append_int64(opts, "batchSize", -1, limit + 1);
        cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
        while (ok && mongoc_cursor_next(cursor, &doc)) {
            if ((int64_t)page->len == limit) {
                page->has_more = true;
                break;
            }
            if (page->len == cap)
                page->items =
                    arena_grow(a, page->items, page->len, &cap, kind->size, 16);
            ok =
                mongo_decode(a, doc, kind,
                             (char *)page->items + page->len * kind->size, err);
            if (ok)
                page->len++;
        }
        ok = ok && mongo_cursor_ok(cursor, kind->list_op, err);
    }
    if (ok && count)
        ok = mongo_page_total(coll, filter, opts, limit, offset, page,
                              kind->count_op, &page->total, err);
    mongoc_cursor_destroy(cursor);
    if (!ok) {
        page->items = NULL;
        page->len = 0;
        page->has_more = false;
    }
    return ok;
}

static bool
mongo_session_list(struct store *s, struct arena *a, const char *user,
                   const struct session_filter *f, int64_t limit,
                   int64_t offset, struct session_page *out, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    struct mongo_page page = {NULL, 0, 0, false};
    bool empty, by_status;
    bool ok = true;

    mongo_list_filter(&filter, a, user, f, &empty, &by_status);
    if (!empty) {
        mongo_list_sort(&opts, f->sort, by_status);
        ok = mongo_list_page(coll, a, &mongo_session_doc, &filter, &opts, limit,
                             offset, true, &page, err);
    }
    out->items = page.items;
    out->len = page.len;
    out->total = page.total;
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

static bool
mongo_session_update(struct store *s, struct arena *a, const char *user,
                     const struct uuid *id, int64_t version,
                     const struct session_change *change, struct session *out,
                     struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_t set, value;
    bson_iter_t it;
    bson_error_t e;
    const uint8_t *data = NULL;
    uint32_t len = 0;
    unsigned f = change->fields;
    bool ok = false;

    if (version == INT64_MAX) {
        mongo_fail(err, "update session", "version overflow");
        goto done;
    }
    mongo_id_filter(&query, user, id);
    bson_append_int64(&query, "version", -1, version);

    bson_append_document_begin(&update, "$set", -1, &set);
    if (f & SET_SESSION_NAME)
        mongo_append_nullable(&set, "session_name", change->session_name);
    if (f & SET_DESCRIPTION)
        mongo_append_nullable(&set, "description", change->description);
    if (f & SET_AGENT_NAME)
        mongo_append_nullable(&set, "agent_name", change->agent_name);
    if (f & SET_AGENT_INSTRUCTIONS)
        mongo_append_nullable(&set, "agent_instructions",
                              change->agent_instructions);
    if (f & SET_STATUS)
        bson_append_utf8(&set, "status", -1, status_name(change->status), -1);
    /* The service has already merged the patch; the whole object is
     * written so the stored one is exactly what it validated. */
    if ((f & SET_METADATA) &&
        !mongo_append_metadata(&set, change->metadata, err)) {
        bson_append_document_end(&update, &set);
        goto done;
    }
    bson_append_date_time(&set, "updated_at", -1, change->now);
    bson_append_int64(&set, "version", -1, version + 1);
    bson_append_document_end(&update, &set);

    mongoc_find_and_modify_opts_set_update(fam, &update);
    mongoc_find_and_modify_opts_set_flags(fam,
                                          MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    if (!mongoc_collection_find_and_modify_with_opts(coll, &query, fam, &reply,
                                                     &e)) {
        mongo_classify("update session", &e, &reply, err);
        goto done;
    }
    if (!bson_iter_init_find(&it, &reply, "value") ||
        !BSON_ITER_HOLDS_DOCUMENT(&it)) {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        goto done;
    }
    bson_iter_document(&it, &len, &data);
    if (!bson_init_static(&value, data, len)) {
        mongo_fail(err, "update session", "malformed reply");
        goto done;
    }
    ok = mongo_decode_session(a, &value, out, err);
done:
    bson_destroy(&reply);
    bson_destroy(&update);
    bson_destroy(&query);
    mongoc_find_and_modify_opts_destroy(fam);
    return ok;
}

static bool
mongo_session_delete(struct store *s, const char *user, const struct uuid *id,
                     int64_t version, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t query = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    mongo_id_filter(&query, user, id);
    if (version >= 0)
        bson_append_int64(&query, "version", -1, version);
    ok = mongoc_collection_delete_one(coll, &query, NULL, &reply, &e);
    if (!ok)
        mongo_classify("delete session", &e, &reply, err);
    else if (mongo_deleted_count(&reply) == 0)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    bson_destroy(&reply);
    bson_destroy(&query);
    return ok;
}

/* delete_many of {user_id, session_uuid} in one collection. */
static bool
mongo_delete_by_session(struct store *s, mongoc_client_t *client,
                        const char *collection, const char *op,
                        const char *user, const struct uuid *id,
                        int64_t *deleted, struct error *err)
{
    mongoc_collection_t *coll = mongo_collection(s, client, collection);
    bson_t query = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    bson_append_utf8(&query, "user_id", -1, user, -1);
    mongo_append_uuid(&query, "session_uuid", id);
    ok = mongoc_collection_delete_many(coll, &query, NULL, &reply, &e);
    if (!ok)
        mongo_classify(op, &e, &reply, err);
    else if (deleted != NULL)
        *deleted = mongo_deleted_count(&reply);
    bson_destroy(&reply);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_session_purge(struct store *s, const char *user, const struct uuid *id,
                    int64_t *messages_deleted, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    int64_t n = 0;
    bool ok =
        mongo_delete_by_session(s, client, m->messages, "purge messages", user,
                                id, &n, err) &&
        mongo_delete_by_session(s, client, m->memory, "purge memory", user, id,
                                NULL, err) &&
        mongo_delete_by_session(s, client, m->idempotency,
                                "purge idempotency keys", user, id, NULL, err);

    if (messages_deleted != NULL)
        *messages_deleted = ok ? n : 0;
    return ok;
}

/* ---- shared steps of the operations below ----------------------------- */

/* update_one, upserting when asked.  *matched is the reply's matchedCount,
 * or -1 when the reply has none (an unacknowledged write concern), which
 * callers take as a match: there is no way to know. */
static bool
mongo_update_one(struct store *s, const char *collection, const char *op,
                 const bson_t *query, const bson_t *update, bool upsert,
                 int64_t *matched, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, collection);
    bson_t opts = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    if (upsert)
        bson_append_bool(&opts, "upsert", -1, true);
    ok = mongoc_collection_update_one(coll, query, update, &opts, &reply, &e);
    if (!ok)
        mongo_classify(op, &e, &reply, err);
    else if (matched != NULL)
        *matched = mongo_reply_count(&reply, "matchedCount");
    bson_destroy(&reply);
    bson_destroy(&opts);
    return ok;
}

/* delete_one or delete_many; *deleted (may be NULL) = deletedCount. */
static bool
mongo_delete(struct store *s, const char *collection, const char *op,
             const bson_t *query, bool many, int64_t *deleted,
             struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, collection);
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    ok = many ? mongoc_collection_delete_many(coll, query, NULL, &reply, &e)
              : mongoc_collection_delete_one(coll, query, NULL, &reply, &e);
    if (!ok)
        mongo_classify(op, &e, &reply, err);
    else if (deleted != NULL)
        *deleted = mongo_deleted_count(&reply);
    bson_destroy(&reply);
    return ok;
}

/* The first document matching filter, appended to out (an empty document
 * the caller made); *found says whether there was one. */
static bool
mongo_find_one(struct store *s, const char *collection, const char *op,
               const bson_t *filter, bson_t *out, bool *found,
               struct error *err)
{
    bson_t opts = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = mongo_find_first(s, collection, filter, &opts);
    const bson_t *doc = NULL;
    bool ok = true;

    *found = false;
    if (mongoc_cursor_next(cursor, &doc)) {
        *found = bson_concat(out, doc);
        if (!*found)
            ok = mongo_fail(err, op, "document too large");
    } else {
        ok = mongo_cursor_ok(cursor, op, err);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    return ok;
}

/* findAndModify returning the new document (or with update NULL,
 * removing the document and returning it), appended to out (an empty
 * document the caller made); *found says whether one matched. */
static bool
mongo_find_and_modify(struct store *s, const char *collection, const char *op,
                      const bson_t *query, const bson_t *update, bson_t *out,
                      bool *found, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, collection);
    mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
    bson_t reply = BSON_INITIALIZER;
    bson_t value;
    bson_iter_t it;
    bson_error_t e;
    const uint8_t *data = NULL;
    uint32_t len = 0;
    bool ok = false;

    *found = false;
    if (update != NULL) {
        mongoc_find_and_modify_opts_set_update(fam, update);
        mongoc_find_and_modify_opts_set_flags(
            fam, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    } else {
        mongoc_find_and_modify_opts_set_flags(fam,
                                              MONGOC_FIND_AND_MODIFY_REMOVE);
    }
    if (!mongoc_collection_find_and_modify_with_opts(coll, query, fam, &reply,
                                                     &e)) {
        mongo_classify(op, &e, &reply, err);
        goto done;
    }
    if (bson_iter_init_find(&it, &reply, "value") &&
        BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&value, data, len) || !bson_concat(out, &value)) {
            mongo_fail(err, op, "malformed reply");
            goto done;
        }
        *found = true;
    }
    ok = true;
done:
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(fam);
    return ok;
}

/* ---- session counters ------------------------------------------------- */

/* Appends to the $and array `and` (its element i) the condition that
 * field, a counter, is at most limit; a session that predates the
 * counter (no field) matches, and is recounted (store.h). */
static void
mongo_append_room(bson_t *and, uint32_t i, const char *field, int64_t limit)
{
    bson_t cond, or, alt, range, exists;
    char idx[16];
    const char *ikey;

    bson_uint32_to_string(i, &ikey, idx, sizeof(idx));
    bson_append_document_begin(and, ikey, -1, &cond);
    bson_append_array_begin(&cond, "$or", -1, & or);
    bson_append_document_begin(& or, "0", -1, &alt);
    bson_append_document_begin(&alt, field, -1, &range);
    bson_append_int64(&range, "$lte", -1, limit);
    bson_append_document_end(&alt, &range);
    bson_append_document_end(& or, &alt);
    bson_append_document_begin(& or, "1", -1, &alt);
    bson_append_document_begin(&alt, field, -1, &exists);
    bson_append_bool(&exists, "$exists", -1, false);
    bson_append_document_end(&alt, &exists);
    bson_append_document_end(& or, &alt);
    bson_append_array_end(&cond, & or);
    bson_append_document_end(and, &cond);
}

/* The reservation's filter: the session, active for a message write, and
 * room under each quota for what is added (a counter that does not grow
 * is not checked, so lowering a quota never blocks a write that adds
 * nothing to it). */
static void
mongo_reserve_filter(bson_t *q, const char *user, const struct uuid *id,
                     const struct store_reserve *r)
{
    bson_t range, and;
    uint32_t n = 0;

    if (r->session_id != NULL) {
        bson_append_utf8(q, "user_id", -1, user, -1);
        bson_append_utf8(q, "session_id", -1, r->session_id, -1);
    } else {
        mongo_id_filter(q, user, id);
    }
    if (r->message_write)
        bson_append_utf8(q, "status", -1, status_name(STATUS_ACTIVE), -1);
    if (r->add.messages > 0) {
        bson_append_document_begin(q, "message_count", -1, &range);
        bson_append_int64(&range, "$lte", -1,
                          r->max.messages - r->add.messages);
        bson_append_document_end(q, &range);
    }
    if (r->add.bytes <= 0 && r->add.memory_keys <= 0)
        return;
    bson_append_array_begin(q, "$and", -1, &and);
    if (r->add.bytes > 0)
        mongo_append_room(&and, n++, "content_bytes",
                          r->max.bytes - r->add.bytes);
    if (r->add.memory_keys > 0)
        mongo_append_room(&and, n++, "memory_keys",
                          r->max.memory_keys - r->add.memory_keys);
    bson_append_array_end(q, &and);
}

/* $inc of the three counters by c (and last_seq by c->messages when
 * with_seq), and $max {dirty_at: now}. */
static void
mongo_append_counts(bson_t *update, const struct store_counts *c, bool with_seq,
                    int64_t now)
{
    bson_t inc, max;

    bson_append_document_begin(update, "$inc", -1, &inc);
    if (with_seq)
        bson_append_int64(&inc, "last_seq", -1, c->messages);
    bson_append_int64(&inc, "message_count", -1, c->messages);
    bson_append_int64(&inc, "content_bytes", -1, c->bytes);
    bson_append_int64(&inc, "memory_keys", -1, c->memory_keys);
    bson_append_document_end(update, &inc);
    bson_append_document_begin(update, "$max", -1, &max);
    bson_append_date_time(&max, "dirty_at", -1, now);
    bson_append_document_end(update, &max);
}

static void
mongo_append_activity(bson_t *update, int64_t now)
{
    bson_t set;

    bson_append_document_begin(update, "$set", -1, &set);
    bson_append_date_time(&set, "updated_at", -1, now);
    bson_append_date_time(&set, "last_activity_at", -1, now);
    bson_append_document_end(update, &set);
}

static bool
mongo_session_reserve_seq(struct store *s, struct arena *a, const char *user,
                          const struct uuid *id, const struct store_reserve *r,
                          int64_t now, struct session *out, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t doc = BSON_INITIALIZER;
    bool found = false;
    bool ok = false;

    if (r->add.messages < 0 || r->add.bytes < 0 || r->add.memory_keys < 0) {
        mongo_fail(err, "reserve", "negative reservation");
        goto done;
    }
    /* The conditions make the checks and the reservation one atomic
     * step: a session deactivated or filled meanwhile hands out
     * nothing. */
    mongo_reserve_filter(&query, user, id, r);
    mongo_append_counts(&update, &r->add, true, now);
    if (r->message_write)
        mongo_append_activity(&update, now);
    if (!mongo_find_and_modify(s, mongo_impl(s)->sessions, "reserve", &query,
                               &update, &doc, &found, err))
        goto done;
    if (!found) {
        error_set(err, ERR_NOT_FOUND, NULL, "no session with room");
        goto done;
    }
    ok = mongo_decode_session(a, &doc, out, err);
done:
    bson_destroy(&doc);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* A counter counted down matches only while it stays at 0 or more. */
static void
mongo_append_floor(bson_t *q, const char *field, int64_t delta)
{
    bson_t range;

    if (delta >= 0)
        return;
    bson_append_document_begin(q, field, -1, &range);
    bson_append_int64(&range, "$gte", -1, -delta);
    bson_append_document_end(q, &range);
}

/* A count down that would take a counter below 0 (it was already off: a
 * session counted by an older parley, or drift) is not applied: the
 * session is only marked, and the recount sets it.  Counters are never
 * negative. */
static bool
mongo_session_touch(struct store *s, const char *user, const struct uuid *id,
                    const struct store_counts *delta, int64_t now,
                    bool activity, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t mark = BSON_INITIALIZER;
    bson_t max;
    int64_t matched = 0;
    bool ok = true;

    mongo_id_filter(&query, user, id);
    mongo_append_floor(&query, "message_count", delta->messages);
    mongo_append_floor(&query, "content_bytes", delta->bytes);
    mongo_append_floor(&query, "memory_keys", delta->memory_keys);
    if (delta->messages != 0 || delta->bytes != 0 || delta->memory_keys != 0)
        mongo_append_counts(&update, delta, false, now);
    if (activity)
        mongo_append_activity(&update, now);
    if (bson_empty(&update))
        mongo_append_activity(&update, now); /* never an empty update */
    ok = mongo_update_one(s, mongo_impl(s)->sessions, "touch session", &query,
                          &update, false, &matched, err);
    if (ok && matched == 0) {
        bson_reinit(&query);
        mongo_id_filter(&query, user, id);
        bson_append_document_begin(&mark, "$max", -1, &max);
        bson_append_date_time(&max, "dirty_at", -1, now);
        bson_append_document_end(&mark, &max);
        ok = mongo_update_one(s, mongo_impl(s)->sessions, "mark session",
                              &query, &mark, false, &matched, err);
        if (ok && matched == 0)
            ok = error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        else if (ok)
            log_warn("store: a session's counter was below what was taken "
                     "off it; left for the recount");
    }
    bson_destroy(&mark);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_session_mark(struct store *s, struct arena *a, const char *user,
                   const char *session_id, int64_t now, struct session *out,
                   struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t doc = BSON_INITIALIZER;
    bson_t max;
    bool found = false;
    bool ok = false;

    bson_append_utf8(&query, "user_id", -1, user, -1);
    bson_append_utf8(&query, "session_id", -1, session_id, -1);
    bson_append_document_begin(&update, "$max", -1, &max);
    bson_append_date_time(&max, "dirty_at", -1, now);
    bson_append_document_end(&update, &max);
    if (!mongo_find_and_modify(s, mongo_impl(s)->sessions, "mark session",
                               &query, &update, &doc, &found, err))
        goto done;
    if (!found) {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        goto done;
    }
    ok = mongo_decode_session(a, &doc, out, err);
done:
    bson_destroy(&doc);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/*
 * [{$match: {user_id, session_uuid[, seq <= max_seq]}}, {$group: {_id:
 * null, n: {$sum: 1}, bytes: {$sum: {$ifNull: ["$bytes", {$strLenBytes:
 * "$content"}]}}}}] on user_session_seq: a message stored before messages
 * had bytes counts its content (its extra_data is left to its first
 * change).
 */
static void
mongo_tally_pipeline(bson_t *pipeline, const char *user, const struct uuid *id,
                     int64_t max_seq)
{
    bson_t stages, stage, body, field, sum, ifnull, len, range;

    bson_append_array_begin(pipeline, "pipeline", -1, &stages);
    bson_append_document_begin(&stages, "0", -1, &stage);
    bson_append_document_begin(&stage, "$match", -1, &body);
    bson_append_utf8(&body, "user_id", -1, user, -1);
    mongo_append_uuid(&body, "session_uuid", id);
    if (max_seq != STORE_NO_SEQ) {
        bson_append_document_begin(&body, "seq", -1, &range);
        bson_append_int64(&range, "$lte", -1, max_seq);
        bson_append_document_end(&body, &range);
    }
    bson_append_document_end(&stage, &body);
    bson_append_document_end(&stages, &stage);
    bson_append_document_begin(&stages, "1", -1, &stage);
    bson_append_document_begin(&stage, "$group", -1, &body);
    bson_append_null(&body, "_id", -1);
    bson_append_document_begin(&body, "n", -1, &field);
    bson_append_int32(&field, "$sum", -1, 1);
    bson_append_document_end(&body, &field);
    bson_append_document_begin(&body, "bytes", -1, &field);
    bson_append_document_begin(&field, "$sum", -1, &sum);
    bson_append_array_begin(&sum, "$ifNull", -1, &ifnull);
    bson_append_utf8(&ifnull, "0", -1, "$bytes", -1);
    bson_append_document_begin(&ifnull, "1", -1, &len);
    bson_append_utf8(&len, "$strLenBytes", -1, "$content", -1);
    bson_append_document_end(&ifnull, &len);
    bson_append_array_end(&sum, &ifnull);
    bson_append_document_end(&field, &sum);
    bson_append_document_end(&body, &field);
    bson_append_document_end(&stage, &body);
    bson_append_document_end(&stages, &stage);
    bson_append_array_end(pipeline, &stages);
}

/* The messages' count and bytes, read from the primary whatever the URI
 * prefers: a recount taken from a secondary that lags would set the
 * counters to an old state. */
static bool
mongo_tally_messages(struct store *s, mongoc_client_t *client, const char *user,
                     const struct uuid *id, int64_t max_seq,
                     struct store_counts *out, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_collection_t *coll = mongo_collection(s, client, m->messages);
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    bson_t pipeline = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    bson_iter_t it;
    bool ok;

    mongo_tally_pipeline(&pipeline, user, id, max_seq);
    bson_append_utf8(&opts, "hint", -1, "user_session_seq", -1);
    cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, &pipeline,
                                         &opts, primary);
    /* No group comes back when there are no messages. */
    if (mongoc_cursor_next(cursor, &doc)) {
        if (bson_iter_init_find(&it, doc, "n") && BSON_ITER_HOLDS_NUMBER(&it))
            out->messages = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "bytes") &&
            BSON_ITER_HOLDS_NUMBER(&it))
            out->bytes = bson_iter_as_int64(&it);
    }
    ok = mongo_cursor_ok(cursor, "tally messages", err);

    mongoc_cursor_destroy(cursor);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(&opts);
    bson_destroy(&pipeline);
    return ok;
}

static bool
mongo_session_tally(struct store *s, const char *user, const struct uuid *id,
                    int64_t max_seq, struct store_counts *out,
                    struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_read_prefs_t *primary = NULL;
    bson_t filter = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    memset(out, 0, sizeof(*out));
    ok = mongo_tally_messages(s, client, user, id, max_seq, out, err);
    if (!ok || max_seq != STORE_NO_SEQ)
        goto done;
    primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    bson_append_utf8(&filter, "user_id", -1, user, -1);
    mongo_append_uuid(&filter, "session_uuid", id);
    out->memory_keys = mongoc_collection_count_documents(
        mongo_collection(s, client, m->memory), &filter, NULL, primary, &reply,
        &e);
    if (out->memory_keys < 0) {
        out->memory_keys = 0;
        mongo_classify("tally memory", &e, &reply, err);
        ok = false;
    }
done:
    mongoc_read_prefs_destroy(primary);
    bson_destroy(&reply);
    bson_destroy(&filter);
    return ok;
}

/* The condition "field is v", where 0 stands for a field that is not
 * there (a counter or dirty_at a session never had). */
static void
mongo_append_seen(bson_t *q, const char *field, int64_t v, bool time)
{
    bson_t exists;

    if (v == 0 && time) {
        bson_append_document_begin(q, field, -1, &exists);
        bson_append_bool(&exists, "$exists", -1, false);
        bson_append_document_end(q, &exists);
    } else if (time) {
        bson_append_date_time(q, field, -1, v);
    } else {
        bson_append_int64(q, field, -1, v);
    }
}

static bool
mongo_session_set_counts(struct store *s, const char *user,
                         const struct uuid *id, const struct session *seen,
                         const struct store_counts *c, bool *changed,
                         struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t set, unset;
    int64_t matched = 0;
    bool ok;

    *changed = false;
    mongo_id_filter(&query, user, id);
    mongo_append_seen(&query, "dirty_at", seen->dirty_at, true);
    mongo_append_seen(&query, "last_seq", seen->last_seq, false);
    mongo_append_seen(&query, "message_count", seen->message_count, false);
    bson_append_document_begin(&update, "$set", -1, &set);
    bson_append_int64(&set, "message_count", -1, c->messages);
    bson_append_int64(&set, "content_bytes", -1, c->bytes);
    bson_append_int64(&set, "memory_keys", -1, c->memory_keys);
    bson_append_document_end(&update, &set);
    bson_append_document_begin(&update, "$unset", -1, &unset);
    bson_append_utf8(&unset, "dirty_at", -1, "", -1);
    bson_append_document_end(&update, &unset);
    ok = mongo_update_one(s, mongo_impl(s)->sessions, "set session counts",
                          &query, &update, false, &matched, err);
    if (ok)
        *changed = matched != 0;
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* Server counters change neither version nor updated_at, so the update is
 * $inc alone. */
static bool
mongo_session_add_metrics(struct store *s, const char *user,
                          const char *session_id, int64_t requests,
                          int64_t errors, double ms, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t inc;
    bool ok;

    /* A NaN would poison the sum for good. */
    if (!isfinite(ms) || ms < 0)
        ms = 0;
    bson_append_utf8(&query, "user_id", -1, user, -1);
    bson_append_utf8(&query, "session_id", -1, session_id, -1);
    bson_append_document_begin(&update, "$inc", -1, &inc);
    bson_append_int64(&inc, "metrics.request_count", -1, requests);
    bson_append_int64(&inc, "metrics.error_count", -1, errors);
    bson_append_double(&inc, "metrics.total_processing_ms", -1, ms);
    bson_append_document_end(&update, &inc);
    ok = mongo_update_one(s, mongo_impl(s)->sessions, "add metrics", &query,
                          &update, false, NULL, err);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* A conversation turn's token usage; like the other counters it changes
 * neither version nor updated_at. */
static bool
mongo_session_add_usage(struct store *s, const char *user,
                        const struct uuid *id, int64_t prompt_tokens,
                        int64_t completion_tokens, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t inc;
    bool ok;

    mongo_id_filter(&query, user, id);
    bson_append_document_begin(&update, "$inc", -1, &inc);
    bson_append_int64(&inc, "metrics.prompt_tokens", -1, prompt_tokens);
    bson_append_int64(&inc, "metrics.completion_tokens", -1, completion_tokens);
    bson_append_document_end(&update, &inc);
    ok = mongo_update_one(s, mongo_impl(s)->sessions, "add usage", &query,
                          &update, false, NULL, err);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* Deletes the session only while it holds no message: message_count is
 * 0 or absent.  reserve_seq's $inc and this delete are each atomic on the
 * one document, and a message is counted before it is inserted, so one
 * stored meanwhile always wins. */
static bool
mongo_session_delete_unused(struct store *s, const char *user,
                            const struct uuid *id, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t query = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_t in;
    bson_error_t e;
    bool ok;

    mongo_id_filter(&query, user, id);
    /* {message_count: {$in: [0, null]}}: null also matches a missing
     * field. */
    bson_append_document_begin(&query, "message_count", -1, &in);
    {
        bson_t list;

        bson_append_array_begin(&in, "$in", -1, &list);
        bson_append_int64(&list, "0", -1, 0);
        bson_append_null(&list, "1", -1);
        bson_append_array_end(&in, &list);
    }
    bson_append_document_end(&query, &in);
    ok = mongoc_collection_delete_one(coll, &query, NULL, &reply, &e);
    if (!ok)
        mongo_classify("delete unused session", &e, &reply, err);
    else if (mongo_deleted_count(&reply) == 0)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "session not found or used");
    bson_destroy(&reply);
    bson_destroy(&query);
    return ok;
}

/* ---- messages <-> BSON ------------------------------------------------ */

static bool
mongo_build_message(bson_t *b, const struct message *msg, struct error *err)
{
    if ((unsigned)msg->role >= ROLE_COUNT)
        return mongo_fail(err, "store", "message role out of range");
    mongo_append_uuid(b, "_id", &msg->id);
    bson_append_utf8(b, "user_id", -1, msg->user_id, -1);
    mongo_append_uuid(b, "session_uuid", &msg->session_uuid);
    bson_append_utf8(b, "session_id", -1, msg->session_id, -1);
    bson_append_int64(b, "seq", -1, msg->seq);
    bson_append_utf8(b, "role", -1, role_name(msg->role), -1);
    bson_append_utf8(b, "content", -1, msg->content, -1);
    mongo_append_nullable(b, "tool_call_id", msg->tool_call_id);
    mongo_append_nullable(b, "tool_name", msg->tool_name);
    if (!mongo_append_value(b, "extra_data", msg->extra_data))
        return mongo_fail(err, "store", "extra_data not storable");
    if (msg->client_message_id != NULL)
        bson_append_utf8(b, "client_message_id", -1, msg->client_message_id,
                         -1);
    bson_append_int64(b, "bytes", -1, msg->bytes);
    bson_append_date_time(b, "created_at", -1, msg->created_at);
    bson_append_date_time(b, "updated_at", -1, msg->updated_at);
    /* Only /v1 items have these: the partial index holds only messages
     * with an item_id. */
    if (msg->item != NULL && (msg->item->type != JSON_OBJECT ||
                              !mongo_append_value(b, "item", msg->item)))
        return mongo_fail(err, "store", "item not storable");
    if (msg->item_id != NULL)
        bson_append_utf8(b, "item_id", -1, msg->item_id, -1);
    return true;
}

static bool
mongo_read_role(struct arena *a, const bson_iter_t *it, void *dst)
{
    int r =
        BSON_ITER_HOLDS_UTF8(it) ? role_parse(bson_iter_utf8(it, NULL)) : -1;

    (void)a;
    if (r < 0)
        return false;
    *(enum message_role *)dst = (enum message_role)r;
    return true;
}

/* Any value; null (or undefined) reads as NULL. */
static bool
mongo_read_extra(struct arena *a, const bson_iter_t *it, void *dst)
{
    const struct json_value **extra = dst;

    if (BSON_ITER_HOLDS_NULL(it) || bson_iter_type(it) == BSON_TYPE_UNDEFINED)
        return true;
    *extra = mongo_to_json(a, it, 1);
    return *extra != NULL;
}

#define MESSAGE_FIELD(key, read, member, required)                             \
    {                                                                          \
        key, read, offsetof(struct message, member), required                  \
    }
static const struct mongo_field mongo_message_fields[] = {
    MESSAGE_FIELD("_id", mongo_read_uuid, id, true),
    MESSAGE_FIELD("user_id", mongo_read_string, user_id, true),
    MESSAGE_FIELD("session_uuid", mongo_read_uuid, session_uuid, true),
    MESSAGE_FIELD("session_id", mongo_read_string, session_id, true),
    MESSAGE_FIELD("seq", mongo_read_int, seq, true),
    MESSAGE_FIELD("role", mongo_read_role, role, true),
    MESSAGE_FIELD("content", mongo_read_string, content, true),
    MESSAGE_FIELD("tool_call_id", mongo_read_nullable, tool_call_id, false),
    MESSAGE_FIELD("tool_name", mongo_read_nullable, tool_name, false),
    MESSAGE_FIELD("extra_data", mongo_read_extra, extra_data, false),
    MESSAGE_FIELD("client_message_id", mongo_read_nullable, client_message_id,
                  false),
    MESSAGE_FIELD("bytes", mongo_read_int, bytes, false),
    MESSAGE_FIELD("created_at", mongo_read_time, created_at, false),
    MESSAGE_FIELD("updated_at", mongo_read_time, updated_at, false),
    MESSAGE_FIELD("item", mongo_read_extra, item, false),
    MESSAGE_FIELD("item_id", mongo_read_nullable, item_id, false),
};
_Static_assert(MONGO_COUNT(mongo_message_fields) <= 32,
               "mongo_decode() counts in 32 bits");
#undef MESSAGE_FIELD

/* A message stored before messages had bytes reads as its
 * store_message_bytes(); for any other, that is what was stored (0 only
 * for empty content without extra_data, which computes to 0 too). */
static void
mongo_message_finish(struct arena *a, void *out)
{
    struct message *msg = out;

    (void)a;
    if (msg->bytes == 0 && msg->content != NULL)
        msg->bytes = store_message_bytes(msg);
}

static const struct mongo_doc mongo_message_doc = {
    .name = "message",
    .size = sizeof(struct message),
    .fields = mongo_message_fields,
    .nfields = MONGO_COUNT(mongo_message_fields),
    .finish = mongo_message_finish,
    .find_op = "find message",
    .list_op = "list messages",
    .count_op = "count messages",
};

/* Decodes one stored message into arena memory (mongo_decode()). */
static bool
mongo_decode_message(struct arena *a, const bson_t *doc, struct message *out,
                     struct error *err)
{
    return mongo_decode(a, doc, &mongo_message_doc, out, err);
}

/* The filter of every single-message operation. */
static void
mongo_message_filter(bson_t *q, const char *user,
                     const struct uuid *session_uuid, const struct uuid *id)
{
    mongo_append_uuid(q, "_id", id);
    bson_append_utf8(q, "user_id", -1, user, -1);
    mongo_append_uuid(q, "session_uuid", session_uuid);
}

/* ---- messages --------------------------------------------------------- */

/* How many documents of a failed insert_many went in: insertedCount, or
 * the bulk API's nInserted, or the index of the first write error (an
 * ordered insert stops there).  0 when the reply says nothing (the
 * connection broke), which a retry then finds out. */
static size_t
mongo_inserted_count(const bson_t *reply, size_t n)
{
    bson_iter_t it, errs, first;
    int64_t count = mongo_reply_count(reply, "insertedCount");

    if (count < 0)
        count = mongo_reply_count(reply, "nInserted");
    if (count < 0 && bson_iter_init_find(&it, reply, "writeErrors") &&
        BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &errs) &&
        bson_iter_next(&errs) && BSON_ITER_HOLDS_DOCUMENT(&errs) &&
        bson_iter_recurse(&errs, &first) && bson_iter_find(&first, "index") &&
        BSON_ITER_HOLDS_NUMBER(&first))
        count = bson_iter_as_int64(&first);
    if (count < 0)
        return 0;
    return (uint64_t)count < n ? (size_t)count : n;
}

/* Whether the reply's writeErrors hold a duplicate key, for a driver
 * that reports another code in the error itself. */
static bool
mongo_reply_has_duplicate(const bson_t *reply)
{
    bson_iter_t it, errs, one;

    if (!bson_iter_init_find(&it, reply, "writeErrors") ||
        !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &errs))
        return false;
    while (bson_iter_next(&errs)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&errs) && bson_iter_recurse(&errs, &one) &&
            bson_iter_find(&one, "code") && BSON_ITER_HOLDS_NUMBER(&one) &&
            mongo_code_duplicate(bson_iter_as_int64(&one)))
            return true;
    }
    return false;
}

static bool
mongo_message_insert(struct store *s, const struct message *msgs, size_t n,
                     size_t *inserted, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    bson_t *docs = calloc(n > 0 ? n : 1, sizeof(*docs));
    const bson_t **ptrs = calloc(n > 0 ? n : 1, sizeof(*ptrs));
    mongoc_client_t *client = NULL;
    mongoc_collection_t *coll = NULL;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    size_t built = 0, count = 0;
    bool ok = false;

    if (docs == NULL || ptrs == NULL) {
        mongo_fail(err, "insert messages", "out of memory");
        goto done;
    }
    while (built < n) {
        bson_init(&docs[built]);
        ptrs[built] = &docs[built];
        built++;
        if (!mongo_build_message(&docs[built - 1], &msgs[built - 1], err))
            goto done;
    }
    if (n == 0) {
        ok = true;
        goto done;
    }
    client = mongo_client(m);
    coll = mongo_collection(s, client, m->messages);
    /* Ordered (the default): the server stops at the first failure, so
     * msgs[0..count) are in and the rest are not. */
    ok = mongoc_collection_insert_many(coll, ptrs, n, NULL, &reply, &e);
    if (ok) {
        count = n;
    } else {
        count = mongo_inserted_count(&reply, n);
        mongo_classify("insert messages", &e, &reply, err);
        if (err != NULL && err->code != ERR_DUPLICATE &&
            mongo_reply_has_duplicate(&reply)) {
            error_set(err, ERR_DUPLICATE, NULL,
                      "insert messages: duplicate key (11000)");
            err->db_code = 11000;
        }
    }
done:
    if (inserted != NULL)
        *inserted = count;
    for (size_t i = 0; i < built; i++)
        bson_destroy(&docs[i]);
    free(docs);
    free(ptrs);
    bson_destroy(&reply);
    return ok;
}

/* {_id: {$in: [ids]}}, appended to q. */
static void
mongo_append_id_in(bson_t *q, const struct uuid *ids, size_t n)
{
    bson_t id, in;
    char idx[16];
    const char *ikey;

    bson_append_document_begin(q, "_id", -1, &id);
    bson_append_array_begin(&id, "$in", -1, &in);
    for (size_t i = 0; i < n; i++) {
        size_t len =
            bson_uint32_to_string((uint32_t)i, &ikey, idx, sizeof(idx));

        bson_append_binary(&in, ikey, (int)len, BSON_SUBTYPE_UUID, ids[i].b,
                           sizeof(ids[i].b));
    }
    bson_append_array_end(&id, &in);
    bson_append_document_end(q, &id);
}

static bool
mongo_message_delete_ids(struct store *s, const char *user,
                         const struct uuid *ids, size_t n, int64_t *deleted,
                         struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bool ok;

    if (deleted != NULL)
        *deleted = 0;
    if (n == 0)
        return true;
    bson_append_utf8(&query, "user_id", -1, user, -1);
    mongo_append_id_in(&query, ids, n);
    ok = mongo_delete(s, mongo_impl(s)->messages, "delete messages", &query,
                      true, deleted, err);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_message_get(struct store *s, struct arena *a, const char *user,
                  const struct uuid *session_uuid, const struct uuid *id,
                  struct message *out, struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bool ok;

    mongo_message_filter(&filter, user, session_uuid, id);
    ok = mongo_find_decode(s, a, mongo_impl(s)->messages, &mongo_message_doc,
                           &filter, out, err);
    bson_destroy(&filter);
    return ok;
}

/* The list filter; its equality fields and the seq range are the prefix
 * of user_session_seq, which also gives the sort. */
static void
mongo_message_list_filter(bson_t *q, struct arena *a, const char *user,
                          const struct uuid *session_uuid,
                          const struct message_filter *f)
{
    bson_append_utf8(q, "user_id", -1, user, -1);
    mongo_append_uuid(q, "session_uuid", session_uuid);
    if (f->after_seq != STORE_NO_SEQ || f->before_seq != STORE_NO_SEQ) {
        bson_t range;

        bson_append_document_begin(q, "seq", -1, &range);
        if (f->after_seq != STORE_NO_SEQ)
            bson_append_int64(&range, "$gt", -1, f->after_seq);
        if (f->before_seq != STORE_NO_SEQ)
            bson_append_int64(&range, "$lt", -1, f->before_seq);
        bson_append_document_end(q, &range);
    }
    if (f->role >= 0 && f->role < ROLE_COUNT)
        bson_append_utf8(q, "role", -1, role_name((enum message_role)f->role),
                         -1);
    if (f->search != NULL) {
        bson_t re;

        bson_append_document_begin(q, "content", -1, &re);
        bson_append_utf8(&re, "$regex", -1, mongo_regex_literal(a, f->search),
                         -1);
        bson_append_utf8(&re, "$options", -1, "i", -1);
        bson_append_document_end(q, &re);
    }
    mongo_append_range(q, "created_at", f->created_after, f->created_before);
}

static bool
mongo_message_list(struct store *s, struct arena *a, const char *user,
                   const struct uuid *session_uuid,
                   const struct message_filter *f, int64_t limit,
                   int64_t offset, struct message_page *out, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->messages);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bson_t sort;
    struct mongo_page page;
    bool ok;

    mongo_message_list_filter(&filter, a, user, session_uuid, f);
    bson_append_document_begin(&opts, "sort", -1, &sort);
    bson_append_int32(&sort, "seq", -1, f->descending ? -1 : 1);
    bson_append_document_end(&opts, &sort);
    /* The seq range (and the role) bound the index scan; search and
     * date filters are checked on the documents, so such a page reads at
     * most the session's messages (quota_messages_per_session). */
    bson_append_utf8(&opts, "hint", -1,
                     f->role >= 0 && f->role < ROLE_COUNT
                         ? "user_session_role_seq"
                         : "user_session_seq",
                     -1);
    ok = mongo_list_page(coll, a, &mongo_message_doc, &filter, &opts, limit,
                         offset, !f->no_total, &page, err);
    out->items = page.items;
    out->len = page.len;
    out->total = page.total;
    out->has_more = page.has_more;
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

static bool
mongo_message_update(struct store *s, struct arena *a, const char *user,
                     const struct uuid *session_uuid, const struct uuid *id,
                     const struct message_change *change, struct message *out,
                     struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t doc = BSON_INITIALIZER;
    bson_t set;
    bool found = false;
    bool ok = false;
    bool built = true;

    mongo_message_filter(&query, user, session_uuid, id);
    /* As read, or already this change (a retry after a lost reply). */
    if (change->if_updated_at != STORE_NO_TIME) {
        bson_t cond, in;

        bson_append_document_begin(&query, "updated_at", -1, &cond);
        bson_append_array_begin(&cond, "$in", -1, &in);
        bson_append_date_time(&in, "0", -1, change->if_updated_at);
        bson_append_date_time(&in, "1", -1, change->now);
        bson_append_array_end(&cond, &in);
        bson_append_document_end(&query, &cond);
    }
    bson_append_document_begin(&update, "$set", -1, &set);
    if (change->fields & SET_CONTENT)
        bson_append_utf8(&set, "content", -1, change->content, -1);
    if (change->fields & SET_EXTRA_DATA)
        built = mongo_append_value(&set, "extra_data", change->extra_data);
    bson_append_int64(&set, "bytes", -1, change->bytes);
    bson_append_date_time(&set, "updated_at", -1, change->now);
    bson_append_document_end(&update, &set);
    if (change->fields & CLEAR_ITEM) {
        bson_t unset;

        bson_append_document_begin(&update, "$unset", -1, &unset);
        bson_append_utf8(&unset, "item", -1, "", -1);
        bson_append_document_end(&update, &unset);
    }
    if (!built) {
        mongo_fail(err, "update message", "extra_data not storable");
        goto done;
    }
    if (!mongo_find_and_modify(s, mongo_impl(s)->messages, "update message",
                               &query, &update, &doc, &found, err))
        goto done;
    if (!found) {
        error_set(err, ERR_NOT_FOUND, NULL, "message not found");
        goto done;
    }
    ok = mongo_decode_message(a, &doc, out, err);
done:
    bson_destroy(&doc);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* findAndModify with remove, so the one request that deleted the message
 * learns its bytes and gives them back. */
static bool
mongo_message_delete(struct store *s, const char *user,
                     const struct uuid *session_uuid, const struct uuid *id,
                     int64_t *bytes, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t doc = BSON_INITIALIZER;
    struct message gone;
    struct arena a;
    bool found = false;
    bool ok;

    *bytes = 0;
    arena_init(&a, 1024);
    mongo_message_filter(&query, user, session_uuid, id);
    ok = mongo_find_and_modify(s, mongo_impl(s)->messages, "delete message",
                               &query, NULL, &doc, &found, err);
    if (ok && !found)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "message not found");
    /* It is gone either way; a document we cannot read counts 0 and is
     * left to the recount. */
    if (ok && mongo_decode_message(&a, &doc, &gone, NULL))
        *bytes = gone.bytes;
    arena_release(&a);
    bson_destroy(&doc);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_message_clear(struct store *s, const char *user,
                    const struct uuid *session_uuid, int64_t max_seq,
                    int64_t *deleted, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t range;
    int64_t n = 0;
    bool ok;

    bson_append_utf8(&query, "user_id", -1, user, -1);
    mongo_append_uuid(&query, "session_uuid", session_uuid);
    if (max_seq != STORE_NO_SEQ) {
        bson_append_document_begin(&query, "seq", -1, &range);
        bson_append_int64(&range, "$lte", -1, max_seq);
        bson_append_document_end(&query, &range);
    }
    ok = mongo_delete(s, mongo_impl(s)->messages, "clear messages", &query,
                      true, &n, err);
    if (deleted != NULL)
        *deleted = ok ? n : 0;
    bson_destroy(&query);
    return ok;
}

/* One find for a batch's replay: every message it names, whatever their
 * number (a batch is at most max_batch_messages). */
static bool
mongo_message_get_many(struct store *s, struct arena *a, const char *user,
                       const struct uuid *session_uuid, const struct uuid *ids,
                       size_t n, struct message *out, bool *found,
                       struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->messages);
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    bool ok = true;

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (n == 0) {
        bson_destroy(&filter);
        return true;
    }
    mongo_append_id_in(&filter, ids, n);
    bson_append_utf8(&filter, "user_id", -1, user, -1);
    mongo_append_uuid(&filter, "session_uuid", session_uuid);
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    while (ok && mongoc_cursor_next(cursor, &doc)) {
        struct message msg;

        ok = mongo_decode_message(a, doc, &msg, err);
        for (size_t i = 0; ok && i < n; i++)
            if (!found[i] && uuid_equal(&ids[i], &msg.id)) {
                out[i] = msg;
                found[i] = true;
            }
    }
    ok = ok && mongo_cursor_ok(cursor, "find messages", err);
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    return ok;
}

/* On session_item_id, hinted: user_session_seq also starts with the
 * query's equality fields, and a planner that picked it would read the
 * whole session. */
static bool
mongo_message_get_item(struct store *s, struct arena *a, const char *user,
                       const struct uuid *session_uuid, const char *item_id,
                       struct message *out, struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    mongoc_cursor_t *cursor;
    const bson_t *doc = NULL;
    bool ok = false;

    bson_append_utf8(&filter, "user_id", -1, user, -1);
    mongo_append_uuid(&filter, "session_uuid", session_uuid);
    bson_append_utf8(&filter, "item_id", -1, item_id, -1);
    bson_append_utf8(&opts, "hint", -1, "session_item_id", -1);
    cursor = mongo_find_first(s, mongo_impl(s)->messages, &filter, &opts);
    if (mongoc_cursor_next(cursor, &doc))
        ok = mongo_decode_message(a, doc, out, err);
    else if (mongo_cursor_ok(cursor, "find item", err))
        error_set(err, ERR_NOT_FOUND, NULL, "item not found");
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

/* ---- idempotency keys ------------------------------------------------- */

/* {_id: {u, s, k}, user_id, session_uuid}: the key document of one
 * client key.  session_uuid repeats _id.s at the top level so that, with
 * the collection sharded on {session_uuid: 1}, every key operation names
 * its shard (see docs/storage.md, "Sharding"). */
static void
mongo_idem_filter(bson_t *q, const char *user, const struct uuid *session_uuid,
                  const char *key)
{
    bson_t id;

    bson_append_document_begin(q, "_id", -1, &id);
    bson_append_utf8(&id, "u", -1, user, -1);
    mongo_append_uuid(&id, "s", session_uuid);
    bson_append_utf8(&id, "k", -1, key, -1);
    bson_append_document_end(q, &id);
    bson_append_utf8(q, "user_id", -1, user, -1);
    mongo_append_uuid(q, "session_uuid", session_uuid);
}

static bool
mongo_idem_claim(struct store *s, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 const struct idem_key *k, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->idempotency);
    bson_t doc = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok;

    mongo_idem_filter(&doc, user, session_uuid, key);
    mongo_append_uuid(&doc, "message_id", &k->message_id);
    bson_append_int64(&doc, "seq", -1, k->seq);
    bson_append_date_time(&doc, "created_at", -1, k->created_at);
    ok = mongoc_collection_insert_one(coll, &doc, NULL, &reply, &e);
    if (!ok)
        mongo_classify("claim idempotency key", &e, &reply, err);
    bson_destroy(&reply);
    bson_destroy(&doc);
    return ok;
}

/* One unordered insert for a batch's keys: each key that exists comes
 * back as a duplicate write error at its index, and the others go in. */
static bool
mongo_idem_claim_many(struct store *s, const char *user,
                      const struct uuid *session_uuid, const char *const *keys,
                      const struct idem_key *k, size_t n, bool *claimed,
                      struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_collection_t *coll =
        mongo_collection(s, mongo_client(m), m->idempotency);
    bson_t *docs = calloc(n > 0 ? n : 1, sizeof(*docs));
    const bson_t **ptrs = calloc(n > 0 ? n : 1, sizeof(*ptrs));
    bson_t opts = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_iter_t it, errs, one;
    bson_error_t e;
    bool ok = false, other = false;

    for (size_t i = 0; i < n; i++)
        claimed[i] = false;
    if (docs == NULL || ptrs == NULL) {
        mongo_fail(err, "claim idempotency keys", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        bson_init(&docs[i]);
        ptrs[i] = &docs[i];
        mongo_idem_filter(&docs[i], user, session_uuid, keys[i]);
        mongo_append_uuid(&docs[i], "message_id", &k[i].message_id);
        bson_append_int64(&docs[i], "seq", -1, k[i].seq);
        bson_append_date_time(&docs[i], "created_at", -1, k[i].created_at);
    }
    if (n == 0) {
        ok = true;
        goto done;
    }
    bson_append_bool(&opts, "ordered", -1, false);
    if (mongoc_collection_insert_many(coll, ptrs, n, &opts, &reply, &e)) {
        for (size_t i = 0; i < n; i++)
            claimed[i] = true;
        ok = true;
        goto done;
    }
    /* Only duplicates: the rest went in.  Anything else (no reply, a
     * write concern error, another write error) is a failure. */
    if (!bson_iter_init_find(&it, &reply, "writeErrors") ||
        !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &errs) ||
        bson_iter_init_find(&it, &reply, "writeConcernErrors")) {
        mongo_classify("claim idempotency keys", &e, &reply, err);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        claimed[i] = true;
    while (bson_iter_next(&errs)) {
        int64_t idx = -1, code = 0;

        if (!BSON_ITER_HOLDS_DOCUMENT(&errs) || !bson_iter_recurse(&errs, &one))
            continue;
        while (bson_iter_next(&one)) {
            if (strcmp(bson_iter_key(&one), "index") == 0 &&
                BSON_ITER_HOLDS_NUMBER(&one))
                idx = bson_iter_as_int64(&one);
            else if (strcmp(bson_iter_key(&one), "code") == 0 &&
                     BSON_ITER_HOLDS_NUMBER(&one))
                code = bson_iter_as_int64(&one);
        }
        if (idx >= 0 && (uint64_t)idx < n && mongo_code_duplicate(code))
            claimed[idx] = false;
        else
            other = true;
    }
    ok = !other;
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            claimed[i] = false;
        mongo_classify("claim idempotency keys", &e, &reply, err);
    }
done:
    for (size_t i = 0; docs != NULL && ptrs != NULL && i < n; i++)
        bson_destroy(&docs[i]);
    free(docs);
    free(ptrs);
    bson_destroy(&reply);
    bson_destroy(&opts);
    return ok;
}

/* One unordered bulk write of update_one's, each conditional on the key
 * still naming its message. */
static bool
mongo_idem_complete_many(struct store *s, const char *user,
                         const struct uuid *session_uuid,
                         const char *const *keys, const struct uuid *ids,
                         const int64_t *seqs, size_t n, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_collection_t *coll =
        mongo_collection(s, mongo_client(m), m->idempotency);
    mongoc_bulk_operation_t *bulk = NULL;
    bson_t opts = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    bool ok = true;

    if (n == 0)
        goto done;
    bson_append_bool(&opts, "ordered", -1, false);
    bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
    for (size_t i = 0; ok && i < n; i++) {
        bson_t query = BSON_INITIALIZER;
        bson_t update = BSON_INITIALIZER;
        bson_t set;

        mongo_idem_filter(&query, user, session_uuid, keys[i]);
        mongo_append_uuid(&query, "message_id", &ids[i]);
        bson_append_document_begin(&update, "$set", -1, &set);
        bson_append_int64(&set, "seq", -1, seqs[i]);
        bson_append_document_end(&update, &set);
        ok = mongoc_bulk_operation_update_one_with_opts(bulk, &query, &update,
                                                        NULL, &e);
        if (!ok)
            mongo_classify("complete idempotency keys", &e, NULL, err);
        bson_destroy(&update);
        bson_destroy(&query);
    }
    if (ok && mongoc_bulk_operation_execute(bulk, &reply, &e) == 0) {
        mongo_classify("complete idempotency keys", &e, &reply, err);
        ok = false;
    }
done:
    mongoc_bulk_operation_destroy(bulk);
    bson_destroy(&reply);
    bson_destroy(&opts);
    return ok;
}

#define IDEM_FIELD(key, read, member, required)                                \
    {                                                                          \
        key, read, offsetof(struct idem_key, member), required                 \
    }
static const struct mongo_field mongo_idem_fields[] = {
    IDEM_FIELD("message_id", mongo_read_uuid, message_id, true),
    IDEM_FIELD("seq", mongo_read_int, seq, false),
    IDEM_FIELD("created_at", mongo_read_time, created_at, false),
};
_Static_assert(MONGO_COUNT(mongo_idem_fields) <= 32,
               "mongo_decode() counts in 32 bits");
#undef IDEM_FIELD

static const struct mongo_doc mongo_idem_doc = {
    .name = "idempotency key",
    .size = sizeof(struct idem_key),
    .fields = mongo_idem_fields,
    .nfields = MONGO_COUNT(mongo_idem_fields),
    .find_op = "find idempotency key",
};

static bool
mongo_idem_get(struct store *s, const char *user,
               const struct uuid *session_uuid, const char *key,
               struct idem_key *out, struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bool ok;

    memset(out, 0, sizeof(*out));
    mongo_idem_filter(&filter, user, session_uuid, key);
    /* No arena: none of the key's fields is a string or JSON. */
    ok = mongo_find_decode(s, NULL, mongo_impl(s)->idempotency, &mongo_idem_doc,
                           &filter, out, err);
    bson_destroy(&filter);
    return ok;
}

/* The client key of a key document: its _id.k. */
static const char *
mongo_idem_key_of(const bson_t *doc)
{
    bson_iter_t it, id;

    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &id) && bson_iter_find(&id, "k") &&
        BSON_ITER_HOLDS_UTF8(&id))
        return bson_iter_utf8(&id, NULL);
    return NULL;
}

/* One find on the _id index for every key of a batch: {_id: {$in: [{u,
 * s, k}, ...]}, user_id, session_uuid}. */
static bool
mongo_idem_get_many(struct store *s, const char *user,
                    const struct uuid *session_uuid, const char *const *keys,
                    size_t n, struct idem_key *out, bool *found,
                    struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->idempotency);
    bson_t filter = BSON_INITIALIZER;
    bson_t id, in, one;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    char idx[16];
    const char *ikey;
    bool ok = true;

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (n == 0) {
        bson_destroy(&filter);
        return true;
    }
    bson_append_document_begin(&filter, "_id", -1, &id);
    bson_append_array_begin(&id, "$in", -1, &in);
    for (size_t i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t)i, &ikey, idx, sizeof(idx));
        bson_append_document_begin(&in, ikey, -1, &one);
        bson_append_utf8(&one, "u", -1, user, -1);
        mongo_append_uuid(&one, "s", session_uuid);
        bson_append_utf8(&one, "k", -1, keys[i], -1);
        bson_append_document_end(&in, &one);
    }
    bson_append_array_end(&id, &in);
    bson_append_document_end(&filter, &id);
    bson_append_utf8(&filter, "user_id", -1, user, -1);
    mongo_append_uuid(&filter, "session_uuid", session_uuid);
    cursor = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    while (ok && mongoc_cursor_next(cursor, &doc)) {
        const char *k = mongo_idem_key_of(doc);
        struct idem_key held;

        if (k == NULL)
            continue; /* not a document we wrote */
        ok = mongo_decode(NULL, doc, &mongo_idem_doc, &held, err);
        for (size_t i = 0; ok && i < n; i++)
            if (!found[i] && strcmp(keys[i], k) == 0) {
                out[i] = held;
                found[i] = true;
            }
    }
    ok = ok && mongo_cursor_ok(cursor, "find idempotency keys", err);
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    return ok;
}

/* Applies $set to the key while it still names message_id; if it names
 * another by now, ERR_NOT_FOUND saying `moved`. */
static bool
mongo_idem_set(struct store *s, const char *user,
               const struct uuid *session_uuid, const char *key,
               const struct uuid *message_id, const bson_t *set, const char *op,
               const char *moved, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    int64_t matched = 0;
    bool ok;

    mongo_idem_filter(&query, user, session_uuid, key);
    mongo_append_uuid(&query, "message_id", message_id);
    bson_append_document(&update, "$set", -1, set);
    ok = mongo_update_one(s, mongo_impl(s)->idempotency, op, &query, &update,
                          false, &matched, err);
    if (ok && matched == 0)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "%s", moved);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* Conditional on the old message id, so of two writers taking over the
 * same abandoned key only one succeeds. */
static bool
mongo_idem_replace(struct store *s, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *expected, const struct idem_key *k,
                   struct error *err)
{
    bson_t set = BSON_INITIALIZER;
    bool ok;

    mongo_append_uuid(&set, "message_id", &k->message_id);
    bson_append_int64(&set, "seq", -1, k->seq);
    bson_append_date_time(&set, "created_at", -1, k->created_at);
    ok = mongo_idem_set(s, user, session_uuid, key, expected, &set,
                        "replace idempotency key",
                        "idempotency key changed meanwhile", err);
    bson_destroy(&set);
    return ok;
}

/* ERR_NOT_FOUND when the key no longer names message_id: another writer
 * took it over (idem_replace) and is storing its own message, which the
 * caller may want to know. */
static bool
mongo_idem_complete(struct store *s, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    const struct uuid *message_id, int64_t seq,
                    struct error *err)
{
    bson_t set = BSON_INITIALIZER;
    bool ok;

    bson_append_int64(&set, "seq", -1, seq);
    ok = mongo_idem_set(s, user, session_uuid, key, message_id, &set,
                        "complete idempotency key",
                        "idempotency key names another message", err);
    bson_destroy(&set);
    return ok;
}

/* A key already gone or taken over is left alone; either way it no longer
 * stands for our message, which is what undoing wants. */
static bool
mongo_idem_release(struct store *s, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *message_id, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bool ok;

    mongo_idem_filter(&query, user, session_uuid, key);
    mongo_append_uuid(&query, "message_id", message_id);
    ok = mongo_delete(s, mongo_impl(s)->idempotency, "release idempotency key",
                      &query, false, NULL, err);
    bson_destroy(&query);
    return ok;
}

/* ---- memory ----------------------------------------------------------- */

/* {_id: {s, k}, user_id, session_uuid}: one memory entry.  session_uuid
 * repeats _id.s at the top level: with the collection sharded on
 * {session_uuid: 1}, an upsert must name the whole shard key, and every
 * other operation is then sent to one shard. */
static void
mongo_memory_filter(bson_t *q, const char *user,
                    const struct uuid *session_uuid, const char *key)
{
    bson_t id;

    bson_append_document_begin(q, "_id", -1, &id);
    mongo_append_uuid(&id, "s", session_uuid);
    bson_append_utf8(&id, "k", -1, key, -1);
    bson_append_document_end(q, &id);
    bson_append_utf8(q, "user_id", -1, user, -1);
    mongo_append_uuid(q, "session_uuid", session_uuid);
}

/* The value field of a memory document as JSON; a missing one is null. */
static struct json_value *
mongo_memory_value(struct arena *a, const bson_t *doc)
{
    bson_iter_t it;

    if (!bson_iter_init_find(&it, doc, "value"))
        return json_new_null(a);
    return mongo_to_json(a, &it, 1);
}

/* On session_key ({session_uuid, key}), which gives the order and the
 * range after `after`; user_id is checked on the documents it finds. */
static bool
mongo_memory_list(struct store *s, struct arena *a, const char *user,
                  const struct uuid *session_uuid, const char *after,
                  int64_t limit, struct json_value **out_object,
                  struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->memory);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bson_t sort, range;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    struct json_value *obj = json_new_object(a, 0);
    bool ok = false;

    *out_object = NULL;
    if (limit < 1) {
        *out_object = obj;
        ok = true;
        goto done;
    }
    mongo_append_uuid(&filter, "session_uuid", session_uuid);
    bson_append_utf8(&filter, "user_id", -1, user, -1);
    if (after != NULL) {
        bson_append_document_begin(&filter, "key", -1, &range);
        bson_append_utf8(&range, "$gt", -1, after, -1);
        bson_append_document_end(&filter, &range);
    }
    bson_append_document_begin(&opts, "sort", -1, &sort);
    bson_append_int32(&sort, "key", -1, 1);
    bson_append_document_end(&opts, &sort);
    bson_append_utf8(&opts, "hint", -1, "session_key", -1);
    bson_append_int64(&opts, "limit", -1, limit);
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    while (mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        const char *key = NULL;
        struct json_value *value = NULL;

        /* Keys are unique: they are part of _id. */
        if (bson_iter_init_find(&it, doc, "key"))
            mongo_get_string(a, &it, false, &key);
        if (key != NULL)
            value = mongo_memory_value(a, doc);
        if (key == NULL || value == NULL) {
            error_set(err, ERR_INTERNAL, NULL,
                      "stored memory entry has a bad %s field",
                      key == NULL ? "key" : "value");
            goto done;
        }
        json_object_put(a, obj, key, strlen(key), value);
    }
    if (!mongo_cursor_ok(cursor, "list memory", err))
        goto done;
    *out_object = obj;
    ok = true;
done:
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

static bool
mongo_memory_get(struct store *s, struct arena *a, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 struct json_value **out_value, struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t doc = BSON_INITIALIZER;
    bool found = false;
    bool ok;

    *out_value = NULL;
    mongo_memory_filter(&filter, user, session_uuid, key);
    ok = mongo_find_one(s, mongo_impl(s)->memory, "find memory", &filter, &doc,
                        &found, err);
    if (ok && !found) {
        ok = error_set(err, ERR_NOT_FOUND, NULL, "memory key not found");
    } else if (ok) {
        *out_value = mongo_memory_value(a, &doc);
        if (*out_value == NULL)
            ok = error_set(err, ERR_INTERNAL, NULL,
                           "stored memory entry has a bad value field");
    }
    bson_destroy(&doc);
    bson_destroy(&filter);
    return ok;
}

/*
 * A new key is an insert, so it makes a document only where none is (the
 * caller has reserved a memory_keys slot for it); an existing key's value
 * is an update that never makes one.  user_id and session_uuid come from
 * the filter and never change after: leaving them out of $set keeps a put
 * from ever touching the shard key of a sharded collection.
 */
static bool
mongo_memory_put(struct store *s, const char *user,
                 const struct uuid *session_uuid, const char *key,
                 const struct json_value *value, int64_t now, bool insert,
                 struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_t set;
    bson_t *doc = insert ? &query : &set;
    bson_error_t e;
    int64_t matched = 0;
    bool ok = false;

    mongo_memory_filter(&query, user, session_uuid, key);
    if (!insert)
        bson_append_document_begin(&update, "$set", -1, &set);
    if (!mongo_append_value(doc, "value", value)) {
        if (!insert)
            bson_append_document_end(&update, &set);
        mongo_fail(err, "put memory", "value not storable");
        goto done;
    }
    bson_append_date_time(doc, "updated_at", -1, now);
    bson_append_utf8(doc, "key", -1, key, -1);
    if (insert) {
        mongoc_collection_t *coll =
            mongo_collection(s, mongo_client(m), m->memory);

        ok = mongoc_collection_insert_one(coll, &query, NULL, &reply, &e);
        if (!ok)
            mongo_classify("insert memory", &e, &reply, err);
        goto done;
    }
    bson_append_document_end(&update, &set);
    ok = mongo_update_one(s, m->memory, "put memory", &query, &update, false,
                          &matched, err);
    if (ok && matched == 0)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "memory key not found");
done:
    bson_destroy(&reply);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_memory_delete(struct store *s, const char *user,
                    const struct uuid *session_uuid, const char *key,
                    struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    int64_t deleted = 0;
    bool ok;

    mongo_memory_filter(&query, user, session_uuid, key);
    ok = mongo_delete(s, mongo_impl(s)->memory, "delete memory", &query, false,
                      &deleted, err);
    if (ok && deleted == 0)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "memory key not found");
    bson_destroy(&query);
    return ok;
}

/* ---- sweeper ----------------------------------------------------------- */

/* The index each rule's candidate query must use; see store.h.  The hint
 * makes a real server use it or fail, never fall back to a collection
 * scan (the development server ignores hints). */
static const char *
mongo_sweep_index(enum sweep_rule rule)
{
    return rule == SWEEP_AGE ? "created" : "status_activity";
}

/* The rule's condition.  The candidate query and the per-document write
 * both use it, so a write re-checks exactly what selected the session. */
static void
mongo_sweep_filter(bson_t *q, enum sweep_rule rule, int64_t cutoff)
{
    bson_t doc;

    switch (rule) {
    case SWEEP_AGE:
        mongo_append_range(q, "created_at", STORE_NO_TIME, cutoff);
        break;
    case SWEEP_INACTIVE:
        bson_append_document_begin(q, "status", -1, &doc);
        bson_append_utf8(&doc, "$ne", -1, status_name(STATUS_ACTIVE), -1);
        bson_append_document_end(q, &doc);
        mongo_append_range(q, "last_activity_at", STORE_NO_TIME, cutoff);
        mongo_append_range(q, "updated_at", STORE_NO_TIME, cutoff);
        break;
    case SWEEP_IDLE:
        bson_append_utf8(q, "status", -1, status_name(STATUS_ACTIVE), -1);
        mongo_append_range(q, "last_activity_at", STORE_NO_TIME, cutoff);
        break;
    }
}

/* Finds the {_id, user_id} of up to limit documents matching filter on
 * the index hint, in the sort opts holds (if any), into an array in a's
 * memory: (*out)[0..*n).  A document without both fields is one we did
 * not write, and not ours to act on: it is skipped. */
static bool
mongo_read_candidates(mongoc_collection_t *coll, const bson_t *filter,
                      bson_t *opts, const char *hint, struct arena *a,
                      int64_t limit, struct sweep_candidate **out, size_t *n,
                      const char *what, struct error *err)
{
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    bson_t proj;
    bool ok = true;

    *out = NULL;
    *n = 0;
    if (limit < 1)
        return true;
    *out = arena_alloc(a, (size_t)limit * sizeof(**out));
    bson_append_document_begin(opts, "projection", -1, &proj);
    bson_append_int32(&proj, "_id", -1, 1);
    bson_append_int32(&proj, "user_id", -1, 1);
    bson_append_document_end(opts, &proj);
    bson_append_utf8(opts, "hint", -1, hint, -1);
    bson_append_int64(opts, "limit", -1, limit);
    bson_append_int64(opts, "batchSize", -1, limit);
    cursor = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    while (ok && *n < (size_t)limit && mongoc_cursor_next(cursor, &doc)) {
        struct sweep_candidate *c = &(*out)[*n];
        bson_iter_t it;
        bool have_id = false, have_user = false;

        ok = bson_iter_init(&it, doc);
        if (!ok) {
            mongo_fail(err, what, "malformed document");
            break;
        }
        while (bson_iter_next(&it)) {
            if (strcmp(bson_iter_key(&it), "_id") == 0)
                have_id = mongo_get_uuid(&it, &c->id);
            else if (strcmp(bson_iter_key(&it), "user_id") == 0)
                have_user = mongo_get_string(a, &it, false, &c->user_id);
        }
        if (have_id && have_user)
            (*n)++;
    }
    ok = ok && mongo_cursor_ok(cursor, what, err);
    if (!ok)
        *n = 0;
    mongoc_cursor_destroy(cursor);
    return ok;
}

static bool
mongo_sweep_candidates(struct store *s, struct arena *a, enum sweep_rule rule,
                       int64_t cutoff, int64_t limit,
                       struct sweep_candidate **out, size_t *n,
                       struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bool ok;

    mongo_sweep_filter(&filter, rule, cutoff);
    ok = mongo_read_candidates(coll, &filter, &opts, mongo_sweep_index(rule), a,
                               limit, out, n, "sweep candidates", err);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

static bool
mongo_sweep_expire_one(struct store *s, const struct sweep_candidate *c,
                       int64_t cutoff, int64_t now, bool *changed,
                       struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_t set, inc;
    bson_error_t e;
    bool ok;

    *changed = false;
    mongo_id_filter(&query, c->user_id, &c->id);
    mongo_sweep_filter(&query, SWEEP_IDLE, cutoff);
    bson_append_document_begin(&update, "$set", -1, &set);
    bson_append_utf8(&set, "status", -1, status_name(STATUS_EXPIRED), -1);
    bson_append_date_time(&set, "updated_at", -1, now);
    bson_append_document_end(&update, &set);
    bson_append_document_begin(&update, "$inc", -1, &inc);
    bson_append_int64(&inc, "version", -1, 1);
    bson_append_document_end(&update, &inc);
    ok = mongoc_collection_update_one(coll, &query, &update, NULL, &reply, &e);
    if (!ok)
        mongo_classify("expire session", &e, &reply, err);
    else
        *changed = mongo_reply_count(&reply, "modifiedCount") > 0;
    bson_destroy(&reply);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_sweep_delete_one(struct store *s, enum sweep_rule rule,
                       const struct sweep_candidate *c, int64_t cutoff,
                       bool *deleted, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    int64_t n = 0;
    bool ok;

    *deleted = false;
    if (rule == SWEEP_IDLE) {
        bson_destroy(&query);
        return mongo_fail(err, "sweep delete", "the idle rule deletes nothing");
    }
    mongo_id_filter(&query, c->user_id, &c->id);
    mongo_sweep_filter(&query, rule, cutoff);
    ok = mongo_delete(s, mongo_impl(s)->sessions, "sweep delete", &query, false,
                      &n, err);
    if (ok)
        *deleted = n > 0;
    bson_destroy(&query);
    return ok;
}

/* ---- stats ------------------------------------------------------------- */

/*
 * [{$match: {user_id}}, {$group: {_id: "$status", n: {$sum: 1},
 * messages: {$sum: "$message_count"}}}]: five groups at most come back,
 * whatever the number of sessions.  The match runs on user_status_updated
 * ({user_id, status, ...}); without a user (an admin's all=true) every
 * session is read, which is what was asked for.
 */
/* The pipeline of mongo_session_stats(), and the hint that goes with its
 * $match. */
static void
mongo_stats_pipeline(bson_t *pipeline, bson_t *opts, const char *user)
{
    bson_t stages, stage, body, field;
    int i = 0;

    bson_append_array_begin(pipeline, "pipeline", -1, &stages);
    if (user != NULL) {
        bson_append_document_begin(&stages, i++ == 0 ? "0" : "1", -1, &stage);
        bson_append_document_begin(&stage, "$match", -1, &body);
        bson_append_utf8(&body, "user_id", -1, user, -1);
        bson_append_document_end(&stage, &body);
        bson_append_document_end(&stages, &stage);
        bson_append_utf8(opts, "hint", -1, "user_status_updated_id", -1);
    }
    bson_append_document_begin(&stages, i++ == 0 ? "0" : "1", -1, &stage);
    bson_append_document_begin(&stage, "$group", -1, &body);
    bson_append_utf8(&body, "_id", -1, "$status", -1);
    bson_append_document_begin(&body, "n", -1, &field);
    bson_append_int32(&field, "$sum", -1, 1);
    bson_append_document_end(&body, &field);
    bson_append_document_begin(&body, "messages", -1, &field);
    bson_append_utf8(&field, "$sum", -1, "$message_count", -1);
    bson_append_document_end(&body, &field);
    bson_append_document_end(&stage, &body);
    bson_append_document_end(&stages, &stage);
    bson_append_array_end(pipeline, &stages);
}

/* Adds one group {_id: status, n, messages} to out. */
static bool
mongo_stats_add(struct session_stats *out, const bson_t *doc, struct error *err)
{
    bson_iter_t it;
    int status = -1;
    int64_t count = 0, messages = 0;

    if (!bson_iter_init(&it, doc))
        return mongo_fail(err, "session stats", "malformed document");
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);

        if (strcmp(key, "_id") == 0 && BSON_ITER_HOLDS_UTF8(&it))
            status = status_parse(bson_iter_utf8(&it, NULL));
        else if (strcmp(key, "n") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            count = bson_iter_as_int64(&it);
        else if (strcmp(key, "messages") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            messages = bson_iter_as_int64(&it);
    }
    /* A status we do not know (a document not written by us) still
     * counts in the totals. */
    out->total_sessions += count;
    out->total_messages += messages;
    if (status >= 0)
        out->by_status[status] += count;
    return true;
}

static bool
mongo_session_stats(struct store *s, const char *user,
                    struct session_stats *out, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    bson_t pipeline = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    bool ok = true;

    memset(out, 0, sizeof(*out));
    mongo_stats_pipeline(&pipeline, &opts, user);
    cursor = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, &pipeline,
                                         &opts, NULL);
    while (ok && mongoc_cursor_next(cursor, &doc))
        ok = mongo_stats_add(out, doc, err);
    ok = ok && mongo_cursor_ok(cursor, "session stats", err);
    if (!ok)
        memset(out, 0, sizeof(*out));
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&pipeline);
    return ok;
}

/* ---- user erasure ------------------------------------------------------ */

/* The collection `which` names, and in *hint its user_id index. */
static const char *
mongo_erase_target(const struct mongo_store *m, enum store_collection which,
                   const char **hint)
{
    switch (which) {
    case STORE_SESSIONS:
        break;
    case STORE_MESSAGES:
        *hint = "user_session_seq";
        return m->messages;
    case STORE_MEMORY:
        *hint = "user_session";
        return m->memory;
    case STORE_IDEMPOTENCY:
        *hint = "user_session";
        return m->idempotency;
    case STORE_TOMBSTONES:
        *hint = "user";
        return m->tombstones;
    case STORE_USERS:
        *hint = "_id_";
        return m->users;
    }
    *hint = "user_session_id";
    return m->sessions;
}

/* Appends {_id: {$in: [...]}} to query with the _ids of up to limit
 * documents of user, found on the index hint; *found says how many. */
static bool
mongo_find_user_ids(mongoc_collection_t *coll, const char *user,
                    const char *hint, int64_t limit, bson_t *query,
                    uint32_t *found, struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bson_t proj, in, ids;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    bool ok = true;

    *found = 0;
    bson_append_utf8(&filter, "user_id", -1, user, -1);
    bson_append_document_begin(&opts, "projection", -1, &proj);
    bson_append_int32(&proj, "_id", -1, 1);
    bson_append_document_end(&opts, &proj);
    bson_append_utf8(&opts, "hint", -1, hint, -1);
    bson_append_int64(&opts, "limit", -1, limit);
    bson_append_int64(&opts, "batchSize", -1, limit);

    bson_append_document_begin(query, "_id", -1, &in);
    bson_append_array_begin(&in, "$in", -1, &ids);
    cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
    while (ok && (int64_t)*found < limit && mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        char idx[16];
        const char *ikey;

        if (!bson_iter_init_find(&it, doc, "_id"))
            continue;
        bson_uint32_to_string(*found, &ikey, idx, sizeof(idx));
        ok = bson_append_iter(&ids, ikey, -1, &it);
        if (ok)
            (*found)++;
        else
            mongo_fail(err, "erase user", "batch too large");
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(query, &in);
    ok = ok && mongo_cursor_ok(cursor, "erase user: find", err);
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

/*
 * One batch: the _ids of up to limit documents of user, found on the
 * collection's user_id index (hinted), then delete_many {_id: {$in: ids},
 * user_id}.  Two steps rather than one unbounded delete_many, so no single
 * command runs longer than a batch.
 */
static bool
mongo_user_delete_batch(struct store *s, enum store_collection which,
                        const char *user, int64_t limit, int64_t *deleted,
                        struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    const char *hint = NULL;
    const char *name = mongo_erase_target(m, which, &hint);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, name);
    bson_t query = BSON_INITIALIZER;
    bson_t reply = BSON_INITIALIZER;
    bson_error_t e;
    uint32_t found = 0;
    bool ok;

    *deleted = 0;
    if (which == STORE_USERS) {
        /* One document, whose _id is the user. */
        bson_append_utf8(&query, "_id", -1, user, -1);
        bson_append_utf8(&query, "user_id", -1, user, -1);
        ok = mongo_delete(s, name, "erase user: counter", &query, false,
                          deleted, err);
        bson_destroy(&query);
        bson_destroy(&reply);
        return ok;
    }
    ok = mongo_find_user_ids(coll, user, hint, limit, &query, &found, err);
    if (ok && found > 0) {
        bson_append_utf8(&query, "user_id", -1, user, -1);
        ok = mongoc_collection_delete_many(coll, &query, NULL, &reply, &e);
        if (!ok)
            mongo_classify("erase user: delete", &e, &reply, err);
        else
            *deleted = mongo_deleted_count(&reply);
    }
    bson_destroy(&reply);
    bson_destroy(&query);
    return ok;
}

/* ---- tombstones -------------------------------------------------------- */

static bool
mongo_tombstone_put(struct store *s, const char *user, const struct uuid *id,
                    int64_t now, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t set;
    bool ok;

    mongo_id_filter(&query, user, id);
    bson_append_document_begin(&update, "$set", -1, &set);
    bson_append_date_time(&set, "at", -1, now);
    bson_append_document_end(&update, &set);
    ok = mongo_update_one(s, mongo_impl(s)->tombstones, "put tombstone", &query,
                          &update, true, NULL, err);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_tombstone_delete(struct store *s, const char *user, const struct uuid *id,
                       struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bool ok;

    mongo_id_filter(&query, user, id);
    ok = mongo_delete(s, mongo_impl(s)->tombstones, "delete tombstone", &query,
                      false, NULL, err);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_tombstone_list(struct store *s, struct arena *a, int64_t cutoff,
                     int64_t limit, struct sweep_candidate **out, size_t *n,
                     struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->tombstones);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bson_t sort;
    bool ok;

    mongo_append_range(&filter, "at", STORE_NO_TIME, cutoff);
    bson_append_document_begin(&opts, "sort", -1, &sort);
    bson_append_int32(&sort, "at", -1, 1);
    bson_append_document_end(&opts, &sort);
    ok = mongo_read_candidates(coll, &filter, &opts, "at", a, limit, out, n,
                               "list tombstones", err);
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

/* ---- user counters and recounts --------------------------------------- */

/* {_id: user, user_id: user}: the user's counter document. */
static void
mongo_user_filter(bson_t *q, const char *user)
{
    bson_append_utf8(q, "_id", -1, user, -1);
    bson_append_utf8(q, "user_id", -1, user, -1);
}

static bool
mongo_user_get(struct store *s, const char *user, struct user_counter *out,
               struct error *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_t doc = BSON_INITIALIZER;
    bson_iter_t it;
    bool found = false;
    bool ok;

    memset(out, 0, sizeof(*out));
    mongo_user_filter(&filter, user);
    ok = mongo_find_one(s, mongo_impl(s)->users, "find user counter", &filter,
                        &doc, &found, err);
    if (ok && !found)
        ok = error_set(err, ERR_NOT_FOUND, NULL, "no user counter");
    if (ok && bson_iter_init_find(&it, &doc, "sessions"))
        mongo_get_int(&it, &out->sessions);
    if (ok && bson_iter_init_find(&it, &doc, "dirty_at"))
        mongo_get_time(&it, &out->dirty_at);
    bson_destroy(&doc);
    bson_destroy(&filter);
    return ok;
}

/* One conditional update: with upsert, a missing document is made with
 * sessions = delta; an existing one without room does not match, so the
 * upsert tries to insert its _id again and fails as a duplicate. */
static bool
mongo_user_inc(struct store *s, const char *user, int64_t delta, int64_t max,
               int64_t now, int64_t *matched, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t inc, mx, range;
    bool ok;

    mongo_user_filter(&query, user);
    /* A count down that would go below 0 is not applied (a user counted
     * by an older parley, or drift): see mongo_user_count(). */
    if (delta < 0) {
        bson_append_document_begin(&query, "sessions", -1, &range);
        bson_append_int64(&range, "$gte", -1, -delta);
        bson_append_document_end(&query, &range);
    }
    if (delta > 0) {
        bson_append_document_begin(&query, "sessions", -1, &range);
        bson_append_int64(&range, "$lte", -1, max - delta);
        bson_append_document_end(&query, &range);
    }
    bson_append_document_begin(&update, "$inc", -1, &inc);
    bson_append_int64(&inc, "sessions", -1, delta);
    bson_append_document_end(&update, &inc);
    bson_append_document_begin(&update, "$max", -1, &mx);
    bson_append_date_time(&mx, "dirty_at", -1, now);
    bson_append_document_end(&update, &mx);
    ok = mongo_update_one(s, mongo_impl(s)->users, "count user sessions",
                          &query, &update, delta > 0, matched, err);
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

static bool
mongo_user_count(struct store *s, const char *user, int64_t delta, int64_t max,
                 int64_t now, struct error *err)
{
    struct user_counter held;
    struct error e = ERROR_INIT;
    int64_t matched = 0;

    /* A count down that found the counter too low (or no counter) marks
     * it instead, for the recount.  Counters are never negative. */
    if (delta < 0)
        return mongo_user_inc(s, user, delta, max, now, &matched, err) &&
               (matched != 0 ||
                mongo_user_inc(s, user, 0, max, now, &matched, err));
    /* Twice at most: a duplicate may also be another request's upsert
     * that made the document between our filter's miss and our insert;
     * the document exists then, and the second try updates it. */
    for (int tries = 0; tries < 2; tries++) {
        if (mongo_user_inc(s, user, delta, max, now, &matched, err))
            return true;
        if (delta <= 0 || err == NULL || err->code != ERR_DUPLICATE)
            return false;
        if (!mongo_user_get(s, user, &held, &e)) {
            if (err != NULL)
                *err = e;
            return false;
        }
        if (held.sessions + delta > max)
            return error_set(err, ERR_QUOTA_EXCEEDED, NULL,
                             "the user has %lld sessions",
                             (long long)held.sessions);
    }
    return false;
}

static bool
mongo_user_set_count(struct store *s, const char *user,
                     const struct user_counter *seen, int64_t sessions,
                     bool *changed, struct error *err)
{
    bson_t query = BSON_INITIALIZER;
    bson_t update = BSON_INITIALIZER;
    bson_t set, unset;
    int64_t matched = 0;
    bool ok;

    *changed = false;
    mongo_user_filter(&query, user);
    mongo_append_seen(&query, "dirty_at", seen->dirty_at, true);
    mongo_append_seen(&query, "sessions", seen->sessions, false);
    bson_append_document_begin(&update, "$set", -1, &set);
    bson_append_int64(&set, "sessions", -1, sessions);
    bson_append_document_end(&update, &set);
    bson_append_document_begin(&update, "$unset", -1, &unset);
    bson_append_utf8(&unset, "dirty_at", -1, "", -1);
    bson_append_document_end(&update, &unset);
    ok = mongo_update_one(s, mongo_impl(s)->users, "set user count", &query,
                          &update, false, &matched, err);
    if (ok)
        *changed = matched != 0;
    bson_destroy(&update);
    bson_destroy(&query);
    return ok;
}

/* Users' _ids are their ids, so a candidate has user_id only. */
static bool
mongo_dirty_users(mongoc_collection_t *coll, const bson_t *filter,
                  struct arena *a, int64_t limit, struct sweep_candidate **out,
                  size_t *n, struct error *err)
{
    bson_t opts = BSON_INITIALIZER;
    mongoc_cursor_t *cursor = NULL;
    const bson_t *doc = NULL;
    bool ok;

    *out = arena_calloc(a, (size_t)limit * sizeof(**out));
    bson_append_utf8(&opts, "hint", -1, "dirty", -1);
    bson_append_int64(&opts, "limit", -1, limit);
    cursor = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    while (*n < (size_t)limit && mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;

        if (bson_iter_init_find(&it, doc, "user_id") &&
            mongo_get_string(a, &it, false, &(*out)[*n].user_id))
            (*n)++;
    }
    ok = mongo_cursor_ok(cursor, "dirty users", err);
    if (!ok)
        *n = 0;
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    return ok;
}

static bool
mongo_dirty_list(struct store *s, struct arena *a, enum store_collection coll,
                 int64_t cutoff, int64_t limit, struct sweep_candidate **out,
                 size_t *n, struct error *err)
{
    struct mongo_store *m = mongo_impl(s);
    mongoc_client_t *client = mongo_client(m);
    bson_t filter = BSON_INITIALIZER;
    bson_t opts = BSON_INITIALIZER;
    bool ok;

    *out = NULL;
    *n = 0;
    if (limit < 1) {
        bson_destroy(&filter);
        return true;
    }
    mongo_append_range(&filter, "dirty_at", STORE_NO_TIME, cutoff);
    if (coll == STORE_USERS)
        ok = mongo_dirty_users(mongo_collection(s, client, m->users), &filter,
                               a, limit, out, n, err);
    else if (coll == STORE_SESSIONS)
        ok = mongo_read_candidates(mongo_collection(s, client, m->sessions),
                                   &filter, &opts, "dirty", a, limit, out, n,
                                   "dirty sessions", err);
    else
        ok = mongo_fail(err, "dirty list", "not a counted collection");
    bson_destroy(&opts);
    bson_destroy(&filter);
    return ok;
}

static void
mongo_free(struct store *s)
{
    struct mongo_store *m;

    if (s == NULL)
        return;
    m = mongo_impl(s);
    if (m != NULL) {
        for (size_t i = 0; i < MONGO_NCOLLS; i++)
            mongoc_collection_destroy(m->colls[i]);
        if (m->client != NULL)
            mongoc_client_pool_push(m->pool, m->client);
        if (m->pool != NULL)
            mongoc_client_pool_destroy(m->pool);
        free(m->database);
        free(m->sessions);
        free(m->messages);
        free(m->memory);
        free(m->idempotency);
        free(m->tombstones);
        free(m->users);
        free(m);
    }
    free(s);
}

#define MONGO_OPERATION(name, NAME) .name = mongo_##name,
static const struct store_backend mongo_backend = {
    .name = "mongodb",
    .free = mongo_free,
    /* .ping = mongo_ping, ... for every operation in store.h's list */
    STORE_OPERATIONS(MONGO_OPERATION)};
#undef MONGO_OPERATION

/* ---- construction ----------------------------------------------------- */

/* Sets a timeout unless the operator's URI already chose one. */
static void
mongo_default_timeout(mongoc_uri_t *uri, const char *option, int32_t ms)
{
    if (!mongoc_uri_has_option(uri, option) &&
        !mongoc_uri_set_option_as_int32(uri, option, ms))
        log_warn("mongodb: could not set %s", option);
}

/*
 * What parley acknowledges must survive the primary going: unless the URI
 * says otherwise (w or journal), a write is acknowledged once a majority
 * of the members have it in their journals (w=majority, journal=true).
 * Unless the URI sets wtimeoutMS, such a write waits for the majority at
 * most 3/8 of the request deadline (1500 ms of 4000): three quarters of
 * socketTimeoutMS, so the server's answer comes before the socket gives
 * up, and a retry still fits.  A write-concern timeout is a write that
 * ran on the primary but is not known to be durable: mongo_classify()
 * makes it a 503 that only idempotent calls retry (an insert that meets
 * its own _id, an upsert), so a keyed append answers 503 with
 * Retry-After and the client resends it with its key.
 */
static void
mongo_write_concern_defaults(mongoc_uri_t *uri, const struct config *cfg)
{
    const mongoc_write_concern_t *given = mongoc_uri_get_write_concern(uri);
    mongoc_write_concern_t *wc = mongoc_write_concern_copy(given);
    int32_t w = mongoc_write_concern_get_w(wc);
    int32_t wtimeout = cfg->request_deadline_ms * 3 / 8;

    if (w == MONGOC_WRITE_CONCERN_W_DEFAULT &&
        !mongoc_write_concern_journal_is_set(wc)) {
        mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
        mongoc_write_concern_set_journal(wc, true);
        w = MONGOC_WRITE_CONCERN_W_MAJORITY;
    }
    if (wtimeout < 100)
        wtimeout = 100;
    /* wtimeoutMS=0 in the URI means "wait for ever", its author's
     * choice; only an absent one gets ours, and only where it means
     * anything (w beyond the primary alone). */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_WTIMEOUTMS) &&
        (w == MONGOC_WRITE_CONCERN_W_MAJORITY ||
         w == MONGOC_WRITE_CONCERN_W_TAG || w > 1))
        mongoc_write_concern_set_wtimeout_int64(wc, wtimeout);
    mongoc_uri_set_write_concern(uri, wc);
    mongoc_write_concern_destroy(wc);
}

/*
 * One try gets its share of the request's deadline to find a server and
 * connect, so the retry loop has time for the others; a reply (or a new
 * connection's handshake) may wait half the deadline.  Reads are retried
 * by the retry loop alone (retryReads off unless the URI turns it on):
 * the driver's own retry would wait a second time inside one try, where
 * no deadline sees it.  Writes keep retryWrites: on a replica set its one
 * retry carries the transaction number that makes a retried $inc or
 * update exactly-once.
 */
static void
mongo_uri_defaults(mongoc_uri_t *uri, const struct config *cfg)
{
    int attempts =
        cfg->db_retry_max_attempts > 0 ? cfg->db_retry_max_attempts : 1;
    int32_t per_try = cfg->request_deadline_ms / attempts;

    if (per_try < 100)
        per_try = 100;
    mongo_default_timeout(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, per_try);
    mongo_default_timeout(uri, MONGOC_URI_CONNECTTIMEOUTMS, per_try);
    mongo_default_timeout(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                          cfg->request_deadline_ms / 2);
    mongo_write_concern_defaults(uri, cfg);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYREADS) &&
        !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false))
        log_warn("mongodb: could not set %s", MONGOC_URI_RETRYREADS);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "parley");
}

/* So a try waits once, for at most the longest of the three timeouts:
 * the retry loop starts a retry only if that much time is left (try_ms),
 * and a stalled server is answered 503 by the deadline.  A URI timeout of
 * 0 (none) or one beyond the deadline leaves retries ungated (0), as its
 * author chose. */
static int64_t
mongo_try_ms(const mongoc_uri_t *uri, const struct config *cfg)
{
    static const char *const waits[] = {MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                        MONGOC_URI_CONNECTTIMEOUTMS,
                                        MONGOC_URI_SOCKETTIMEOUTMS};
    int64_t try_ms = 0;

    for (size_t i = 0; i < MONGO_COUNT(waits); i++) {
        int32_t ms = mongoc_uri_get_option_as_int32(uri, waits[i], 0);

        if (ms <= 0 || ms >= cfg->request_deadline_ms)
            return 0;
        if (ms > try_ms)
            try_ms = ms;
    }
    return try_ms;
}

/* A mongodb_uri the driver refused, in its words without the password. */
static bool
mongo_uri_error(struct error *err, const bson_error_t *e)
{
    char clean[sizeof(err->message)];

    mongo_redact(e->message, clean, sizeof(clean));
    return error_set(err, ERR_VALIDATION, "mongodb_uri", "mongodb_uri: %s",
                     clean);
}

/* The database and collection names, copied: cfg need not outlive us. */
static bool
mongo_copy_names(struct mongo_store *m, const struct config *cfg)
{
    m->database = strdup(cfg->mongodb_database);
    m->sessions = strdup(cfg->sessions_collection);
    m->messages = strdup(cfg->messages_collection);
    m->memory = strdup(cfg->memory_collection);
    m->idempotency = strdup(cfg->idempotency_collection);
    m->tombstones = strdup(cfg->tombstones_collection);
    m->users = strdup(cfg->users_collection);
    return m->database != NULL && m->sessions != NULL && m->messages != NULL &&
           m->memory != NULL && m->idempotency != NULL &&
           m->tombstones != NULL && m->users != NULL;
}

struct store *
store_mongo_new(const struct config *cfg, struct error *err)
{
    struct store *s = calloc(1, sizeof(*s));
    struct mongo_store *m = calloc(1, sizeof(*m));
    mongoc_uri_t *uri = NULL;
    bson_error_t e;

    if (s == NULL || m == NULL || !mongo_copy_names(m, cfg)) {
        error_set(err, ERR_INTERNAL, NULL, "out of memory");
        goto fail;
    }
    s->backend = &mongo_backend;
    s->impl = m;
    uri = mongoc_uri_new_with_error(cfg->mongodb_uri, &e);
    if (uri == NULL) {
        mongo_uri_error(err, &e);
        goto fail;
    }
    mongo_uri_defaults(uri, cfg);
    m->pool = mongoc_client_pool_new_with_error(uri, &e);
    if (m->pool == NULL) {
        mongo_uri_error(err, &e);
        goto fail;
    }
    /* Version 2 reports every server error in MONGOC_ERROR_SERVER with
     * the server's own code, which mongo_classify() depends on. */
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    retry_policy_init(&s->policy, cfg);
    s->policy.try_ms = mongo_try_ms(uri, cfg);
    mongoc_uri_destroy(uri);
    return s;

fail:
    mongoc_uri_destroy(uri);
    if (s != NULL) {
        s->impl = m;
        mongo_free(s);
    } else {
        free(m);
    }
    return NULL;
}

/* ---- effective settings ------------------------------------------------ */

static const char *
mongo_read_mode_name(mongoc_read_mode_t mode)
{
    switch (mode) {
    case MONGOC_READ_PRIMARY:
        return "primary";
    case MONGOC_READ_PRIMARY_PREFERRED:
        return "primaryPreferred";
    case MONGOC_READ_SECONDARY:
        return "secondary";
    case MONGOC_READ_SECONDARY_PREFERRED:
        return "secondaryPreferred";
    case MONGOC_READ_NEAREST:
        return "nearest";
    }
    return "unknown";
}

/* Appends printf-style text to out[n] at *o, stopping (terminated) when
 * out is full. */
static void mongo_describe_add(char *out, size_t n, size_t *o, const char *fmt,
                               ...) BSON_GNUC_PRINTF(4, 5);

static void
mongo_describe_add(char *out, size_t n, size_t *o, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*o + 1 >= n)
        return;
    va_start(ap, fmt);
    w = vsnprintf(out + *o, n - *o, fmt, ap);
    va_end(ap);
    if (w > 0)
        *o = (size_t)w < n - *o ? *o + (size_t)w : n - 1;
}

void
store_mongo_describe(struct store *s, char *out, size_t n)
{
    struct mongo_store *m = mongo_impl(s);
    /* A pooled client and one of its collections carry exactly what every
     * operation above runs with (none passes its own read preference,
     * read concern or write concern). */
    mongoc_client_t *client = mongo_client(m);
    mongoc_collection_t *coll = mongo_collection(s, client, m->sessions);
    const mongoc_uri_t *uri = mongoc_client_get_uri(client);
    const mongoc_host_list_t *hosts = mongoc_uri_get_hosts(uri);
    const mongoc_read_prefs_t *rp = mongoc_collection_get_read_prefs(coll);
    const mongoc_write_concern_t *wc =
        mongoc_collection_get_write_concern(coll);
    const mongoc_read_concern_t *rc = mongoc_collection_get_read_concern(coll);
    const char *rs = mongoc_uri_get_replica_set(uri);
    const char *level = mongoc_read_concern_get_level(rc);
    int32_t w = mongoc_write_concern_get_w(wc);
    int64_t staleness = mongoc_read_prefs_get_max_staleness_seconds(rp);
    size_t o = 0;

    if (n == 0)
        goto done;
    out[0] = '\0';
    mongo_describe_add(out, n, &o, "hosts=");
    for (const mongoc_host_list_t *h = hosts; h != NULL; h = h->next)
        mongo_describe_add(out, n, &o, "%s%s", h == hosts ? "" : ",",
                           h->host_and_port);
    mongo_describe_add(out, n, &o, " replicaSet=%s",
                       rs != NULL ? rs : "(none)");
    mongo_describe_add(out, n, &o, " tls=%s",
                       mongoc_uri_get_tls(uri) ? "true" : "false");
    mongo_describe_add(out, n, &o, " readPreference=%s",
                       mongo_read_mode_name(mongoc_read_prefs_get_mode(rp)));
    if (staleness > 0)
        mongo_describe_add(out, n, &o, " maxStalenessSeconds=%lld",
                           (long long)staleness);
    if (w == MONGOC_WRITE_CONCERN_W_MAJORITY)
        mongo_describe_add(out, n, &o, " w=majority");
    else if (w == MONGOC_WRITE_CONCERN_W_TAG)
        mongo_describe_add(out, n, &o, " w=%s",
                           mongoc_write_concern_get_wtag(wc));
    else if (w == MONGOC_WRITE_CONCERN_W_DEFAULT)
        mongo_describe_add(out, n, &o, " w=default");
    else
        mongo_describe_add(out, n, &o, " w=%d", (int)w);
    mongo_describe_add(out, n, &o, " journal=%s",
                       !mongoc_write_concern_journal_is_set(wc) ? "default"
                       : mongoc_write_concern_get_journal(wc)   ? "true"
                                                                : "false");
    if (mongoc_write_concern_get_wtimeout_int64(wc) > 0)
        mongo_describe_add(
            out, n, &o, " wtimeoutMS=%lld",
            (long long)mongoc_write_concern_get_wtimeout_int64(wc));
    mongo_describe_add(out, n, &o, " readConcernLevel=%s",
                       level != NULL ? level : "default");
    /* The fallbacks below are libmongoc's own defaults (retryable reads and
     * writes on, 30 s server selection); store_mongo_new() sets the three
     * timeouts whenever the URI does not, so they show what it chose. */
    mongo_describe_add(
        out, n, &o, " retryWrites=%s retryReads=%s",
        mongoc_uri_get_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true)
            ? "true"
            : "false",
        mongoc_uri_get_option_as_bool(uri, MONGOC_URI_RETRYREADS, true)
            ? "true"
            : "false");
    mongo_describe_add(
        out, n, &o,
        " serverSelectionTimeoutMS=%d connectTimeoutMS=%d socketTimeoutMS=%d",
        (int)mongoc_uri_get_option_as_int32(
            uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000),
        (int)mongoc_uri_get_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
                                            MONGOC_DEFAULT_CONNECTTIMEOUTMS),
        (int)mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
                                            MONGOC_DEFAULT_SOCKETTIMEOUTMS));
done:
    return; /* a label must label a statement (clang refuses "done: }") */
}

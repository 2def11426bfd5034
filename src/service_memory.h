/*
 * service_memory.h - a session's memory: one JSON value per key (a name of
 * 1 to 128 characters of [A-Za-z0-9._:-]), stored beside the session's
 * messages and bounded as metadata is (max_metadata_bytes and
 * max_metadata_depth).  Every call needs the caller's session (404 when it
 * has none); a key not set is a 404 of its own.  A PUT of a new key past
 * quota_memory_keys_per_session is 403 quota_exceeded, nothing written.
 */
#ifndef PARLEY_SERVICE_MEMORY_H
#define PARLEY_SERVICE_MEMORY_H

#include <stdbool.h>

#include "json.h"
#include "service.h"
#include "store.h"

/* GET .../memory's limit is 1 to this (default SERVICE_MEMORY_LIMIT). */
#define SERVICE_MEMORY_MAX_LIMIT 1000
#define SERVICE_MEMORY_LIMIT     100

/* A page of a session's memory: up to limit entries, key to value, in
 * ascending key order; has_more: another entry follows. */
struct memory_page {
    const struct json_value *items; /* an object */
    bool has_more;
};

/* The entries with a key after `after` (NULL: from the first; a key,
 * 400 "after" otherwise), limit 1 to SERVICE_MEMORY_MAX_LIMIT. */
bool service_memory_list(struct service *svc, struct store_ctx *ctx,
                         const char *user, const char *session_id,
                         const char *after, int64_t limit,
                         struct memory_page *out, struct error *err);
bool service_memory_get(struct service *svc, struct store_ctx *ctx,
                        const char *user, const char *session_id,
                        const char *key, struct json_value **value,
                        struct error *err);
bool service_memory_put(struct service *svc, struct store_ctx *ctx,
                        const char *user, const char *session_id,
                        const char *key, const struct json_value *value,
                        struct error *err);
bool service_memory_delete(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *session_id,
                           const char *key, struct error *err);

#endif

/*
 * service_memory.h - a session's memory: one JSON value per key (a name of
 * 1 to 128 characters of [A-Za-z0-9._:-]), stored beside the session's
 * messages and bounded as metadata is (max_metadata_bytes and
 * max_metadata_depth).  Every call needs the caller's session (404 when it
 * has none); a key not set is a 404 of its own.
 */
#ifndef PARLEY_SERVICE_MEMORY_H
#define PARLEY_SERVICE_MEMORY_H

#include <stdbool.h>

#include "json.h"
#include "service.h"
#include "store.h"

/* Every entry of the session as one JSON object, key to value. */
bool service_memory_list(struct service *svc, struct store_ctx *ctx,
                         const char *user, const char *session_id,
                         struct json_value **items, struct error *err);
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

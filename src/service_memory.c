/*
 * service_memory.c - a session's memory: named JSON values kept beside its
 * messages (GET, PUT and DELETE .../memory/{key}, GET .../memory).
 */
#include "clock.h"
#include "service_memory.h"
#include "service_session.h"
#include "validate.h"
#include "banned.h"

static bool
memory_session(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, const char *key, struct session *s,
               struct error *err)
{
    if (!service_session_get(svc, ctx, user, session_id, s, err))
        return false;
    return key == NULL || validate_name("key", key, 128, err);
}

bool
service_memory_list(struct service *svc, struct store_ctx *ctx,
                    const char *user, const char *session_id,
                    struct json_value **items, struct error *err)
{
    struct session s;

    return memory_session(svc, ctx, user, session_id, NULL, &s, err) &&
           store_memory_list(svc->store, ctx, user, &s.id, items, err);
}

bool
service_memory_get(struct service *svc, struct store_ctx *ctx, const char *user,
                   const char *session_id, const char *key,
                   struct json_value **value, struct error *err)
{
    struct session s;

    if (!memory_session(svc, ctx, user, session_id, key, &s, err))
        return false;
    if (!store_memory_get(svc->store, ctx, user, &s.id, key, value, err)) {
        if (err->code == ERR_NOT_FOUND)
            error_set(err, ERR_NOT_FOUND, NULL, "memory key not set");
        return false;
    }
    return true;
}

bool
service_memory_put(struct service *svc, struct store_ctx *ctx, const char *user,
                   const char *session_id, const char *key,
                   const struct json_value *value, struct error *err)
{
    struct session s;

    return memory_session(svc, ctx, user, session_id, key, &s, err) &&
           validate_document("value", value,
                             (size_t)svc->cfg->max_metadata_bytes,
                             svc->cfg->max_metadata_depth, false, err) &&
           store_memory_put(svc->store, ctx, user, &s.id, key, value,
                            clock_now_ms(), err);
}

bool
service_memory_delete(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id, const char *key,
                      struct error *err)
{
    struct session s;

    if (!memory_session(svc, ctx, user, session_id, key, &s, err))
        return false;
    if (!store_memory_delete(svc->store, ctx, user, &s.id, key, err)) {
        if (err->code == ERR_NOT_FOUND)
            error_set(err, ERR_NOT_FOUND, NULL, "memory key not set");
        return false;
    }
    return true;
}

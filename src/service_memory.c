/*
 * service_memory.c - a session's memory: named JSON values kept beside its
 * messages (GET, PUT and DELETE .../memory/{key}, GET .../memory).
 *
 * The session counts its keys (memory_keys) for
 * quota_memory_keys_per_session: a new key reserves its slot before it is
 * written, a deleted one gives it back after; store.h's "Counters" says
 * why the counter is never too low and how the sweeper fixes one left too
 * high.
 */
#include "clock.h"
#include "log.h"
#include "service_memory.h"
#include "service_session.h"
#include "validate.h"
#include "banned.h"

/* How often a PUT goes round when other requests make and delete the
 * same key between its steps. */
#define MAX_PUT_ROUNDS 5

static bool
memory_session(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, const char *key, struct session *s,
               struct error *err)
{
    if (!service_session_get(svc, ctx, user, session_id, s, err))
        return false;
    return key == NULL || validate_name("key", key, 128, err);
}

static bool
not_set(struct error *err)
{
    if (err->code == ERR_NOT_FOUND)
        error_set(err, ERR_NOT_FOUND, NULL, "memory key not set");
    return false;
}

bool
service_memory_list(struct service *svc, struct store_ctx *ctx,
                    const char *user, const char *session_id, const char *after,
                    int64_t limit, struct memory_page *out, struct error *err)
{
    struct session s;
    struct json_value *items;

    out->items = NULL;
    out->has_more = false;
    if (after != NULL && !validate_name("after", after, 128, err))
        return false;
    if (limit < 1 || limit > SERVICE_MEMORY_MAX_LIMIT)
        return error_set(err, ERR_VALIDATION, "limit", "limit must be 1 to %d",
                         SERVICE_MEMORY_MAX_LIMIT);
    /* One more than the page: whether it exists is has_more. */
    if (!memory_session(svc, ctx, user, session_id, NULL, &s, err) ||
        !store_memory_list(svc->store, ctx, user, &s.id, after, limit + 1,
                           &items, err))
        return false;
    if ((int64_t)items->u.o.len > limit) {
        items->u.o.len = (size_t)limit;
        out->has_more = true;
    }
    out->items = items;
    return true;
}

bool
service_memory_get(struct service *svc, struct store_ctx *ctx, const char *user,
                   const char *session_id, const char *key,
                   struct json_value **value, struct error *err)
{
    struct session s;

    if (!memory_session(svc, ctx, user, session_id, key, &s, err))
        return false;
    if (!store_memory_get(svc->store, ctx, user, &s.id, key, value, err))
        return not_set(err);
    return true;
}

/*
 * A new key: reserve its slot (quota_memory_keys_per_session), then
 * insert it.  *again: another request made the key in between; the slot
 * is given back and the caller sets the key that is now there.  A failed
 * insert gives its slot back unless it may have gone in (a lost reply):
 * then the slot stays counted until the sweeper recounts.
 */
static bool
put_new_key(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct session *s, const char *key,
            const struct json_value *value, int64_t now, bool *again,
            struct error *err)
{
    struct store_reserve r = {
        {0, 0, 1}, service_session_quotas(svc->cfg), false, NULL};
    struct store_counts back = {0, 0, -1};
    struct session after;
    struct error e;

    *again = false;
    if (!service_reserve(svc, ctx, user, &s->id, &r, now, &after, err))
        return false;
    if (store_memory_put(svc->store, ctx, user, &s->id, key, value, now, true,
                         err))
        return true;
    e = *err;
    if (e.retry != RETRY_IDEMPOTENT &&
        !store_session_touch(svc->store, ctx, user, &s->id, &back, now, false,
                             err))
        log_warn("could not give back a memory key slot (the sweeper "
                 "recounts): %s",
                 err->message);
    *err = e;
    *again = e.code == ERR_DUPLICATE;
    return false;
}

bool
service_memory_put(struct service *svc, struct store_ctx *ctx, const char *user,
                   const char *session_id, const char *key,
                   const struct json_value *value, struct error *err)
{
    struct session s;

    if (!memory_session(svc, ctx, user, session_id, key, &s, err) ||
        !validate_document("value", value, (size_t)svc->cfg->max_metadata_bytes,
                           svc->cfg->max_metadata_depth, false, err))
        return false;
    for (int round = 0; round < MAX_PUT_ROUNDS; round++) {
        int64_t now = clock_now_ms();
        bool again = false;

        /* A key that is set takes the new value without counting. */
        if (store_memory_put(svc->store, ctx, user, &s.id, key, value, now,
                             false, err))
            return true;
        if (err->code != ERR_NOT_FOUND)
            return false;
        error_clear(err);
        if (put_new_key(svc, ctx, user, &s, key, value, now, &again, err))
            return true;
        if (!again)
            return false;
        error_clear(err);
    }
    return error_set(err, ERR_CONFLICT, "key",
                     "the key is changing too fast; try again");
}

/* The session is marked before the key goes (store.h, "Counters"), then
 * the slot is given back. */
bool
service_memory_delete(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id, const char *key,
                      struct error *err)
{
    struct store_counts back = {0, 0, -1};
    struct session s;
    int64_t now = clock_now_ms();

    if (!validate_session_id(session_id, NULL))
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    if (!store_session_mark(svc->store, ctx, user, session_id, now, &s, err)) {
        if (err->code == ERR_NOT_FOUND)
            error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        return false;
    }
    if (!validate_name("key", key, 128, err))
        return false;
    if (!store_memory_delete(svc->store, ctx, user, &s.id, key, err))
        return not_set(err);
    if (!store_session_touch(svc->store, ctx, user, &s.id, &back, now, false,
                             err)) {
        log_warn("memory key deleted but its slot not given back (the "
                 "sweeper recounts): %s",
                 err->message);
        error_clear(err);
    }
    return true;
}

#include "service.h"
#include "status.h"
#include "validate.h"
#include "banned.h"

/* How often a reservation is tried again when the session changed
 * between the reservation's miss and the read that explains it. */
#define RESERVE_ROUNDS 3

bool
service_text(const char *field, const struct json_value *v, size_t max_chars,
             size_t max_bytes, const char **out, struct error *err)
{
    *out = NULL;
    if (v == NULL || v->type == JSON_NULL)
        return true;
    if (!validate_text(field, v, max_chars, max_bytes, err))
        return false;
    *out = v->u.s.ptr;
    return true;
}

struct store_counts
service_session_quotas(const struct config *cfg)
{
    struct store_counts q = {cfg->quota_messages_per_session,
                             cfg->quota_bytes_per_session,
                             cfg->quota_memory_keys_per_session};

    return q;
}

/* Why a reservation found no room in cur: the first quota it would pass,
 * as ERR_QUOTA_EXCEEDED; false with err untouched if none would. */
static bool
quota_full(const struct session *cur, const struct store_reserve *r,
           struct error *err)
{
    const struct {
        int64_t have, add, max;
        const char *param, *what;
    } q[] = {
        {cur->message_count, r->add.messages, r->max.messages,
         "quota_messages_per_session", "messages"},
        {cur->content_bytes, r->add.bytes, r->max.bytes,
         "quota_bytes_per_session", "bytes of content"},
        {cur->memory_keys, r->add.memory_keys, r->max.memory_keys,
         "quota_memory_keys_per_session", "memory keys"},
    };

    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        if (q[i].add > 0 && q[i].have + q[i].add > q[i].max) {
            error_set(err, ERR_QUOTA_EXCEEDED, q[i].param,
                      "the session holds %lld %s; %lld more would pass the "
                      "quota of %lld",
                      (long long)q[i].have, q[i].what, (long long)q[i].add,
                      (long long)q[i].max);
            return true;
        }
    return false;
}

bool
service_reserve(struct service *svc, struct store_ctx *ctx, const char *user,
                const struct uuid *id, const struct store_reserve *r,
                int64_t now, struct session *out, struct error *err)
{
    for (int round = 0; round < RESERVE_ROUNDS; round++) {
        struct session cur;

        if (store_session_reserve_seq(svc->store, ctx, user, id, r, now, out,
                                      err))
            return true;
        if (err->code != ERR_NOT_FOUND)
            return false;
        if (!store_session_get_by_id(svc->store, ctx, user, id, &cur, err)) {
            if (err->code == ERR_NOT_FOUND)
                error_set(err, ERR_NOT_FOUND, NULL, "session not found");
            return false;
        }
        if (r->message_write && cur.status != STATUS_ACTIVE)
            return error_set(err, ERR_CONFLICT, "status",
                             "the session is %s; only an active session takes "
                             "message writes",
                             status_name(cur.status));
        if (quota_full(&cur, r, err))
            return false;
        error_clear(err); /* it changed in between: try again */
    }
    return error_set(err, ERR_CONFLICT, NULL,
                     "the session is changing too fast; try again");
}

bool
service_quota_room(struct service *svc, const struct session *s,
                   const struct store_counts *add, struct error *err)
{
    struct store_reserve r = {*add, service_session_quotas(svc->cfg), true,
                              NULL};

    return !quota_full(s, &r, err);
}

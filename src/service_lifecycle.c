#include <string.h>

#include "clock.h"
#include "log.h"
#include "service_export.h"
#include "service_lifecycle.h"
#include "service_session.h"
#include "utf8.h"
#include "banned.h"

bool
service_lifecycle_stats(struct service *svc, struct store_ctx *ctx,
                        const char *user, struct session_stats *out,
                        struct error *err)
{
    return store_session_stats(svc->store, ctx, user, out, err);
}

bool
service_lifecycle_health(struct service *svc, struct store_ctx *ctx,
                         const char *user, const char *session_id, int64_t now,
                         struct session_health *out, struct error *err)
{
    struct session s;

    if (!service_session_get(svc, ctx, user, session_id, &s, err))
        return false;
    out->session_id = s.session_id;
    out->message_count = s.message_count;
    out->hours_inactive = health_hours(s.last_activity_at, now);
    health_score(s.message_count, out->hours_inactive,
                 s.status == STATUS_ACTIVE, &out->report);
    return true;
}

bool
service_lifecycle_cleanup(struct service *svc, struct store_ctx *ctx,
                          struct sweep_counts *out, struct error *err)
{
    struct store *s = svc->store;
    struct sweep_limits lim = {SWEEPER_BATCH, SWEEPER_MAX_BATCHES, NULL, 0};
    int fd;
    bool ok;

    (void)ctx; /* the pass gives each of its calls a deadline of its own */
    memset(out, 0, sizeof(*out));
    fd = sweeper_lock(svc->cfg, err);
    if (fd < 0)
        return false;
    /* Within one request's time (plus the last call's), so the answer
     * comes before the web server gives up on it; the rest waits for the
     * next pass. */
    lim.deadline_ms =
        s->policy.now_ms(s->policy.env) + svc->cfg->request_deadline_ms;
    ok = sweeper_run_limits(svc->cfg, s, clock_now_ms(), &lim, out, err);
    sweeper_unlock(fd);
    return ok;
}

/* Deletes one collection's documents of user, batch by batch, until a
 * batch comes back short. */
static bool
erase_collection(struct service *svc, struct store_ctx *ctx,
                 enum store_collection coll, const char *user, int64_t limit,
                 int64_t *count, struct error *err)
{
    struct store *s = svc->store;

    for (;;) {
        int64_t n = 0;

        /* Each batch its own deadline, the whole at most `limit`. */
        ctx->deadline_ms =
            s->policy.now_ms(s->policy.env) + svc->cfg->request_deadline_ms;
        if (ctx->deadline_ms > limit)
            ctx->deadline_ms = limit;
        if (!store_user_delete_batch(s, ctx, coll, user, LIFECYCLE_ERASE_BATCH,
                                     &n, err))
            return false;
        *count += n;
        if (n < LIFECYCLE_ERASE_BATCH)
            return true;
    }
}

bool
service_lifecycle_erase_user(struct service *svc, struct store_ctx *ctx,
                             const char *user_id, struct erase_counts *out,
                             struct error *err)
{
    int64_t tombstones = 0, counters = 0, limit;
    size_t chars;
    bool ok;

    memset(out, 0, sizeof(*out));
    chars = user_id != NULL ? utf8_count(user_id, strlen(user_id)) : 0;
    if (chars < 1 || chars > 255)
        return error_set(err, ERR_VALIDATION, "user_id",
                         "user_id must be 1 to 255 characters");
    /* An erasure is a bulk request: export_deadline_ms from its arrival
     * bounds it; one cut short says so and is run again.  The session
     * counter first: cut short after it, the sessions left are counted
     * again when the user next makes one (a new counter is marked for the
     * sweeper's recount); after them, it would stay. */
    limit = service_export_deadline(svc->cfg, ctx->deadline_ms);
    ok = erase_collection(svc, ctx, STORE_USERS, user_id, limit, &counters,
                          err) &&
         erase_collection(svc, ctx, STORE_SESSIONS, user_id, limit,
                          &out->sessions, err) &&
         erase_collection(svc, ctx, STORE_MESSAGES, user_id, limit,
                          &out->messages, err) &&
         erase_collection(svc, ctx, STORE_MEMORY, user_id, limit, &out->memory,
                          err) &&
         erase_collection(svc, ctx, STORE_IDEMPOTENCY, user_id, limit,
                          &out->idempotency_keys, err) &&
         /* Last: they point the sweeper at what is erased above anyway. */
         erase_collection(svc, ctx, STORE_TOMBSTONES, user_id, limit,
                          &tombstones, err);
    /* Counts and never the user id: the log outlives the erasure. */
    log_info("erased a user: %lld sessions, %lld messages, %lld memory "
             "entries, %lld idempotency keys%s",
             (long long)out->sessions, (long long)out->messages,
             (long long)out->memory, (long long)out->idempotency_keys,
             ok ? "" : " (cut short; run it again)");
    return ok;
}

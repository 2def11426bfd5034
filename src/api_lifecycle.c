/*
 * api_lifecycle.c - handlers of the stats, health and admin routes (the
 * table is in api.c).
 */
#include <string.h>

#include "api.h"
#include "clock.h"
#include "service_lifecycle.h"
#include "banned.h"

/* Admin routes answer 403 to any other valid token; a missing or bad
 * token was a 401 before the handler ran. */
static bool
require_admin(const struct api_call *call, struct error *err)
{
    if (!call->user.admin)
        return error_set(err, ERR_FORBIDDEN, NULL,
                         "this route needs a token with the admin role");
    return true;
}

static void
write_count(struct buf *b, const char *key, int64_t n, bool first)
{
    if (!first)
        buf_addch(b, ',');
    json_write_key(b, key);
    json_write_int(b, n);
}

bool
api_lifecycle_stats(struct api_call *call, struct error *err)
{
    struct buf *b = &call->resp->body;
    struct session_stats st;
    double average = 0.0;
    int all = 0;

    if (!query_bool(&call->query, "all", &all, err) ||
        !query_check_unused(&call->query, err))
        return false;
    if (all == 1 && !call->user.admin)
        return error_set(err, ERR_FORBIDDEN, "all",
                         "all=true needs a token with the admin role");
    if (!service_lifecycle_stats(call->svc, &call->ctx,
                                 all == 1 ? NULL : call->user.sub, &st, err))
        return false;
    /* Hundredths, half up, in integers (both counts are >= 0). */
    if (st.total_sessions > 0)
        average = (double)((st.total_messages * 200 + st.total_sessions) /
                           (2 * st.total_sessions)) /
                  100.0;
    buf_addch(b, '{');
    write_count(b, "total_sessions", st.total_sessions, true);
    write_count(b, "active_sessions", st.by_status[STATUS_ACTIVE], false);
    buf_adds(b, ",\"by_status\":{");
    for (int i = 0; i < STATUS_COUNT; i++)
        write_count(b, status_name((enum session_status)i), st.by_status[i],
                    i == 0);
    buf_addch(b, '}');
    write_count(b, "total_messages", st.total_messages, false);
    buf_adds(b, ",\"average_messages_per_session\":");
    json_write_double(b, average);
    buf_addch(b, '}');
    return true;
}

bool
api_lifecycle_health(struct api_call *call, struct error *err)
{
    struct buf *b = &call->resp->body;
    struct session_health h;

    if (!query_check_unused(&call->query, err) ||
        !service_lifecycle_health(call->svc, &call->ctx, call->user.sub,
                                  api_session_param(call), clock_now_ms(), &h,
                                  err))
        return false;
    buf_adds(b, "{\"session_id\":");
    json_write_cstr(b, h.session_id);
    write_count(b, "message_count", h.message_count, false);
    buf_adds(b, ",\"hours_inactive\":");
    json_write_double(b, h.hours_inactive);
    write_count(b, "health_score", h.report.score, false);
    buf_adds(b, ",\"recommendations\":[");
    for (size_t i = 0; i < h.report.n; i++) {
        if (i > 0)
            buf_addch(b, ',');
        json_write_cstr(b, h.report.recommendations[i]);
    }
    buf_adds(b, "]}");
    return true;
}

bool
api_lifecycle_cleanup(struct api_call *call, struct error *err)
{
    struct sweep_counts counts;

    if (!require_admin(call, err) || !query_check_unused(&call->query, err))
        return false;
    if (!service_lifecycle_cleanup(call->svc, &call->ctx, &counts, err)) {
        if (err->code == ERR_CONFLICT)
            error_set(err, ERR_CONFLICT, NULL, "a cleanup is already running");
        return false;
    }
    sweeper_format(&call->resp->body, &counts);
    return true;
}

bool
api_lifecycle_erase_user(struct api_call *call, struct error *err)
{
    struct buf *b = &call->resp->body;
    struct erase_counts n;

    if (!require_admin(call, err) || !query_check_unused(&call->query, err) ||
        !service_lifecycle_erase_user(call->svc, &call->ctx,
                                      router_param(call->match, "user_id"), &n,
                                      err))
        return false;
    buf_addch(b, '{');
    write_count(b, "deleted_sessions", n.sessions, true);
    write_count(b, "deleted_messages", n.messages, false);
    write_count(b, "deleted_memory", n.memory, false);
    buf_addch(b, '}');
    return true;
}

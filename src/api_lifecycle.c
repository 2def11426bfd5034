/*
 * api_lifecycle.c - handlers of the stats, health and admin routes (the
 * table is in api.c).
 */
#include <string.h>

#include "api.h"
#include "clock.h"
#include "encode.h"
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

bool
api_lifecycle_stats(struct api_call *call, struct error *err)
{
    static const struct api_query_param params[] = {
        {"all", API_QUERY_BOOL, 0, 0, 0, NULL},
    };
    struct session_stats st;
    int all = 0;

    if (!api_query(call, params, API_NFIELDS(params), &all, err))
        return false;
    if (all == 1 && !call->user.admin)
        return error_set(err, ERR_FORBIDDEN, "all",
                         "all=true needs a token with the admin role");
    if (!service_lifecycle_stats(call->svc, &call->ctx,
                                 all == 1 ? NULL : call->user.sub, &st, err))
        return false;
    encode_stats(&call->resp->body, &st);
    return true;
}

bool
api_lifecycle_health(struct api_call *call, struct error *err)
{
    struct session_health h;

    if (!api_query(call, NULL, 0, NULL, err) ||
        !service_lifecycle_health(call->svc, &call->ctx, call->user.sub,
                                  api_session_param(call), clock_now_ms(), &h,
                                  err))
        return false;
    encode_session_health(&call->resp->body, &h);
    return true;
}

bool
api_lifecycle_cleanup(struct api_call *call, struct error *err)
{
    struct sweep_counts counts;

    if (!require_admin(call, err) || !api_query(call, NULL, 0, NULL, err))
        return false;
    if (!service_lifecycle_cleanup(call->svc, &call->ctx, &counts, err)) {
        if (err->code == ERR_CONFLICT)
            error_set(err, ERR_CONFLICT, NULL, "a cleanup is already running");
        return false;
    }
    encode_sweep_counts(&call->resp->body, &counts);
    return true;
}

bool
api_lifecycle_erase_user(struct api_call *call, struct error *err)
{
    struct erase_counts n;

    if (!require_admin(call, err) || !api_query(call, NULL, 0, NULL, err) ||
        !service_lifecycle_erase_user(call->svc, &call->ctx,
                                      router_param(call->match, "user_id"), &n,
                                      err))
        return false;
    encode_erase_counts(&call->resp->body, &n);
    return true;
}

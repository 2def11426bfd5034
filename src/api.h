/*
 * api.h - the routes and their handlers.
 *
 * A handler turns one decoded request into a service call and the result
 * into the response body; it never sees FastCGI, yajl or MongoDB.  The
 * route table says what app.c must do before calling it (authenticate,
 * decode a JSON body, make sure the indexes exist).
 */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "http.h"
#include "json.h"
#include "query.h"
#include "router.h"
#include "service.h"
#include "store.h"

enum api_flags {
    API_AUTH = 1 << 0,     /* needs a valid bearer token */
    API_BODY = 1 << 1,     /* takes a JSON object body ({} when empty) */
    API_DB = 1 << 2,       /* uses the database: indexes must exist first */
    API_BODY_ANY = 1 << 3, /* takes any JSON value as the body */
};

struct api_call {
    const struct config *cfg;
    struct service *svc;
    struct request *req;
    struct response *resp;
    const struct router_match *match;
    struct auth_user user;
    struct query query;
    const struct json_value *body; /* an object for API_BODY routes */
    struct store_ctx ctx;
    bool *indexes_ready;
    /* The session the request names (its {session_id}, or the one the
     * conversation route made), whose metrics count this request. */
    const char *session_named;
};

/* Maps a body member onto a `const struct json_value *` slot of a struct
 * at `offset`; a member not in the table is 400 unknown_field. */
struct api_body_field {
    const char *name;
    size_t offset;
};

bool api_decode_fields(const struct json_value *body,
                       const struct api_body_field *fields, size_t n, void *out,
                       struct error *err);
/* limit/offset or page/size (never both), limit defaulting to
 * default_limit. */
bool api_paging(struct api_call *call, int64_t default_limit, int64_t *limit,
                int64_t *offset, struct error *err);
/* The {session_id} of the path. */
const char *api_session_param(const struct api_call *call);
/* status, ETag and the session as the body. */
void api_respond_session(struct api_call *call, int status,
                         const struct session *s);

/* Handlers in api_message.c. */
bool api_message_append(struct api_call *call, struct error *err);
bool api_message_list(struct api_call *call, struct error *err);
bool api_message_get(struct api_call *call, struct error *err);
bool api_message_patch(struct api_call *call, struct error *err);
bool api_message_delete(struct api_call *call, struct error *err);
bool api_message_clear(struct api_call *call, struct error *err);
bool api_message_context(struct api_call *call, struct error *err);
bool api_message_conversation(struct api_call *call, struct error *err);
bool api_message_memory_list(struct api_call *call, struct error *err);
bool api_message_memory_get(struct api_call *call, struct error *err);
bool api_message_memory_put(struct api_call *call, struct error *err);
bool api_message_memory_delete(struct api_call *call, struct error *err);

/* GET /metrics, in api_metrics.c: Prometheus text, no token (the web
 * server keeps it off the public site). */
bool api_metrics(struct api_call *call, struct error *err);

/* Handlers in api_export.c: GET .../{session_id}/export (streamed) and
 * POST /api/agent-sessions/import. */
bool api_export_session(struct api_call *call, struct error *err);
bool api_export_import(struct api_call *call, struct error *err);

/* Handlers in api_lifecycle.c: GET /api/agent-sessions/stats,
 * GET .../{session_id}/health, and the admin routes POST
 * /api/admin/cleanup and DELETE /api/admin/users/{user_id} (403 without
 * the admin role). */
bool api_lifecycle_stats(struct api_call *call, struct error *err);
bool api_lifecycle_health(struct api_call *call, struct error *err);
bool api_lifecycle_cleanup(struct api_call *call, struct error *err);
bool api_lifecycle_erase_user(struct api_call *call, struct error *err);

extern const struct route api_routes[];
extern const size_t api_nroutes;

/* Runs the route's handler.  On failure err says what to answer. */
bool api_dispatch(struct api_call *call, struct error *err);

/* If-Match as a version, IF_MATCH_ANY or IF_MATCH_NEVER (service.h). */
bool api_if_match(const char *header, int64_t *version, struct error *err);

#endif

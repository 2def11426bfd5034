/*
 * api.h - the routes and their handlers.
 *
 * A handler turns one decoded request into a service call and the result
 * into the response body (encode.h); it never sees FastCGI, yajl or
 * MongoDB.  The route table (api.c) is one row per route: method, pattern,
 * handler, and flags that say what app.c must do before calling it
 * (authenticate, decode a JSON body, make sure the indexes exist).  A
 * handler declares the body members and query parameters it takes as
 * tables (api_body_field, api_query_param) and hands them to
 * api_decode_fields() and api_query(), which refuse anything else.
 */
#ifndef PARLEY_API_H
#define PARLEY_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    /* A conversation turn: its deadline is conversation_deadline_ms, and
     * the web server sends it to the conversation pool (supervisor.h). */
    API_CONVERSATION = 1 << 4,
};

struct api_call {
    const struct config *cfg;
    struct service *svc;
    struct request *req;
    struct response *resp;
    const struct router_match *match;
    /* When the web server passed the request on (monotonic ms): the
     * request's deadlines run from it (ctx.deadline_ms, and an export's
     * export_deadline_ms). */
    int64_t received_ms;
    struct auth_user user;
    struct query query;
    const struct json_value *body; /* an object for API_BODY routes */
    struct store_ctx ctx;
    bool indexes_ready; /* known to exist (app.h); else API_DB is 503 */
    /* The session the request names (its {session_id}, or the one the
     * conversation route made), whose metrics count this request. */
    const char *session_named;
};

/* --- the body ------------------------------------------------------------ */

/* Maps a body member onto a `const struct json_value *` slot of a struct
 * at `offset`; a member not in the table is 400 unknown_field. */
struct api_body_field {
    const char *name;
    size_t offset;
};

/* The rows of the session members create, PATCH and import share
 * (struct session_fields), for a struct whose member `f` holds them. */
#define API_SESSION_FIELDS(type, f)                                            \
    {"session_name", offsetof(type, f.session_name)},                          \
        {"description", offsetof(type, f.description)},                        \
        {"agent_name", offsetof(type, f.agent_name)},                          \
        {"agent_instructions", offsetof(type, f.agent_instructions)},          \
        {"metadata", offsetof(type, f.metadata)},                              \
    {                                                                          \
        "is_active", offsetof(type, f.is_active)                               \
    }

#define API_NFIELDS(table) (sizeof(table) / sizeof((table)[0]))

bool api_decode_fields(const struct json_value *body,
                       const struct api_body_field *fields, size_t n, void *out,
                       struct error *err);
/* Decodes every item of the array list (each must be an object) with the
 * table into out + i * size; errors name "messages[i]" or
 * "messages[i].<member>", so a client can find the bad message. */
bool api_decode_messages(struct api_call *call, const struct json_value *list,
                         const struct api_body_field *fields, size_t n,
                         void *out, size_t size, struct error *err);

/* --- the query string ------------------------------------------------------
 */

enum api_query_kind {
    API_QUERY_INT,    /* int64_t, a decimal integer in [min, max] */
    API_QUERY_BOOL,   /* int, 1 for "true" and 0 for "false" */
    API_QUERY_ENUM,   /* int, the value's index in names */
    API_QUERY_TIME,   /* int64_t, an RFC 3339 date-time as ms */
    API_QUERY_STRING, /* const char *, 1 to max characters */
    /* struct api_page: limit and offset, or page and size (never both);
     * the row's name is NULL and min is the default limit. */
    API_QUERY_PAGING,
};

/* A max that the configuration sets: max_page_limit, max_name_chars. */
#define API_MAX_PAGE_LIMIT (-1)
#define API_MAX_NAME_CHARS (-2)

/* One query parameter a route takes, and where its value goes: the
 * offset of its slot in the route's struct (see the kinds for the slot's
 * type).  A parameter not given leaves its slot as it was. */
struct api_query_param {
    const char *name;
    enum api_query_kind kind;
    size_t offset;
    int64_t min, max;         /* INT; STRING: max only; PAGING: see above */
    const char *const *names; /* ENUM: NULL-terminated */
};

struct api_page {
    int64_t limit;
    int64_t offset;
};

/* Reads params[0..n) from the query string in the table's order into the
 * struct at out, then refuses any parameter the table does not name (400
 * naming it).  A route that takes none passes n = 0. */
bool api_query(struct api_call *call, const struct api_query_param *params,
               size_t n, void *out, struct error *err);
/* limit/offset or page/size (never both), limit defaulting to
 * default_limit (API_QUERY_PAGING). */
bool api_paging(struct api_call *call, int64_t default_limit, int64_t *limit,
                int64_t *offset, struct error *err);

/* --- what handlers share ---------------------------------------------------
 */

/* Whether a raw request path is under /v1 (OpenAI's Conversations API),
 * whose errors have OpenAI's shape (app.c). */
bool api_is_openai_path(const char *path);
/* The {session_id} of the path. */
const char *api_session_param(const struct api_call *call);
/* If-Match as a version, IF_MATCH_ANY or IF_MATCH_NEVER (service.h). */
bool api_if_match(const char *header, int64_t *version, struct error *err);
/* status, ETag and the session as the body. */
void api_respond_session(struct api_call *call, int status,
                         const struct session *s);
/* 201, Location, ETag and the session: one this request made. */
void api_respond_new_session(struct api_call *call, const struct session *s);
/* This request is a bulk one (an export, an import, a batch append): at
 * most user_max_bulk of one user's run at once on a host (0: no limit
 * but user_max_inflight's); beyond, 429 too_many_requests.  Called by the
 * handler before any work; released with the request (app.c). */
bool api_bulk_enter(struct api_call *call, struct error *err);

/* --- handlers, one file per resource ---------------------------------------
 */

/* api_ops.c: GET /healthz, GET /readyz and GET /metrics (Prometheus text;
 * no token, the web server keeps it off the public site). */
route_handler api_ops_healthz, api_ops_readyz, api_ops_metrics;

/* api_session.c: the sessions and their status changes. */
route_handler api_session_create, api_session_list, api_session_get,
    api_session_patch, api_session_delete, api_session_activate,
    api_session_deactivate, api_session_end;

/* api_message.c: messages and the context window. */
route_handler api_message_append, api_message_list, api_message_get,
    api_message_patch, api_message_delete, api_message_clear,
    api_message_context;

/* api_conversation.c: POST /api/agent-sessions/conversation, answered as
 * JSON or, with "stream": true, as server-sent events. */
route_handler api_conversation_turn;

/* api_memory.c: a session's memory. */
route_handler api_memory_list, api_memory_get, api_memory_put,
    api_memory_delete;

/* api_export.c: GET .../{session_id}/export (streamed) and POST
 * /api/agent-sessions/import. */
route_handler api_export_session, api_export_import;

/* api_lifecycle.c: GET /api/agent-sessions/stats, GET
 * .../{session_id}/health, and the admin routes POST /api/admin/cleanup
 * and DELETE /api/admin/users/{user_id} (403 without the admin role). */
route_handler api_lifecycle_stats, api_lifecycle_health, api_lifecycle_cleanup,
    api_lifecycle_erase_user;

/* api_openai.c: OpenAI's Conversations API under /v1/conversations. */
route_handler api_openai_create, api_openai_get, api_openai_update,
    api_openai_delete, api_openai_items_create, api_openai_items_list,
    api_openai_item_get, api_openai_item_delete;

/* The route table: one row per route.  metrics.h counts by a row's
 * place in it. */
extern const struct route api_routes[];
extern const size_t api_nroutes;

#endif

/*
 * service.h - what the API does, independent of HTTP.
 *
 * The service checks every value against the contract (validate.h), keeps
 * the status machine and the version rules, and talks to the store.  Its
 * inputs were decoded by api.c (right fields, right JSON types); its
 * outputs are store structs that encode.c turns into JSON.  The user id
 * is always the token's sub, and every store call is scoped by it.
 */
#ifndef PARLEY_SERVICE_H
#define PARLEY_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "json.h"
#include "store.h"

struct service {
    const struct config *cfg;
    struct store *store;
};

/* A create body, decoded.  A NULL json_value pointer means "not given";
 * a JSON_NULL value means null. */
struct session_create {
    const struct json_value *session_id;
    const struct json_value *session_name;
    const struct json_value *description;
    const struct json_value *agent_name;
    const struct json_value *agent_instructions;
    const struct json_value *metadata;
    const struct json_value *is_active;
    const struct json_value *if_exists;
};

/* A PATCH body, decoded the same way. */
struct session_patch {
    const struct json_value *session_name;
    const struct json_value *description;
    const struct json_value *agent_name;
    const struct json_value *agent_instructions;
    const struct json_value *metadata;
    const struct json_value *is_active;
    const struct json_value *status;
};

/* If-Match: IF_MATCH_ANY for none or "*", IF_MATCH_NEVER for a weak tag,
 * else the version it names. */
#define IF_MATCH_ANY   (-1)
#define IF_MATCH_NEVER (-2)

/* The checks create makes on the client's fields (all but if_exists),
 * shared with import: sets s->session_id (when given), session_name,
 * description, agent_name and agent_instructions from in, and leaves the
 * rest of s alone.  Errors name the field ("session_name"). */
bool service_session_check_create(const struct config *cfg,
                                  const struct session_create *in,
                                  struct session *s, struct error *err);
/* *created tells 201 from 200 (if_exists = "return"). */
bool service_session_create(struct service *svc, struct store_ctx *ctx,
                            const char *user, const struct session_create *in,
                            struct session *out, bool *created,
                            struct error *err);
bool service_session_get(struct service *svc, struct store_ctx *ctx,
                         const char *user, const char *session_id,
                         struct session *out, struct error *err);
bool service_session_list(struct service *svc, struct store_ctx *ctx,
                          const char *user, const struct session_filter *f,
                          int64_t limit, int64_t offset,
                          struct session_page *out, struct error *err);
bool service_session_patch(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *session_id,
                           int64_t if_match, const struct session_patch *in,
                           struct session *out, struct error *err);
bool service_session_delete(struct service *svc, struct store_ctx *ctx,
                            const char *user, const char *session_id,
                            int64_t if_match, struct error *err);
/* activate, deactivate and end: move to `to` if the machine allows. */
bool service_session_set_status(struct service *svc, struct store_ctx *ctx,
                                const char *user, const char *session_id,
                                int64_t if_match, enum session_status to,
                                struct session *out, struct error *err);

#endif

/*
 * service_session.h - sessions: create, read, list, patch, the status
 * machine (activate, deactivate, end) and delete.
 *
 * Writes are read-modify-write under the session's version: a change is
 * applied with a conditional update on the version it was read at, and
 * read again (a few rounds at most) when another writer got there first.
 * If-Match pins the version the client saw instead.  Delete leaves a
 * tombstone first, so what a delete cut short leaves behind is found by
 * the sweeper.
 */
#ifndef PARLEY_SERVICE_SESSION_H
#define PARLEY_SERVICE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "json.h"
#include "service.h"
#include "store.h"

/* The members create, PATCH and import share, decoded: a NULL
 * json_value pointer means "not given"; a JSON_NULL value means null. */
struct session_fields {
    const struct json_value *session_name;
    const struct json_value *description;
    const struct json_value *agent_name;
    const struct json_value *agent_instructions;
    const struct json_value *metadata;
    const struct json_value *is_active;
};

/* A create body, decoded the same way. */
struct session_create {
    const struct json_value *session_id;
    struct session_fields f;
    const struct json_value *if_exists;
};

/* A PATCH body. */
struct session_patch {
    struct session_fields f;
    const struct json_value *status;
};

/* The checks create makes on the client's fields (all but if_exists),
 * shared with import: sets s->session_id (when given), session_name,
 * description, agent_name and agent_instructions from in, and leaves the
 * rest of s alone.  Errors name the field ("session_name"). */
bool service_session_check_create(const struct config *cfg,
                                  const struct session_create *in,
                                  struct session *s, struct error *err);
/* The status a body's status and is_active members ask for (is_active
 * already checked to be a bool), or -1 when it gives neither: status if
 * given, else is_active's.  Both given must agree.  Errors name "status"
 * or "is_active" (PATCH and import share the rule). */
bool service_session_wanted_status(const struct json_value *status,
                                   const struct json_value *is_active, int *to,
                                   struct error *err);
/* *created tells 201 from 200 (if_exists = "return"). */
bool service_session_create(struct service *svc, struct store_ctx *ctx,
                            const char *user, const struct session_create *in,
                            struct session *out, bool *created,
                            struct error *err);
/* The user's session counter: reserve one slot before a session is made
 * (403 quota_exceeded, param quota_sessions_per_user, when the quota is
 * full), give it back when one is not made after all or is deleted.  A
 * failure `why` whose outcome is unknown (RETRY_IDEMPOTENT: the session
 * may exist) keeps the slot, too high, for the sweeper; NULL gives it
 * back.  The give-back logs what it cannot do. */
bool service_session_reserve_user(struct service *svc, struct store_ctx *ctx,
                                  const char *user, int64_t now,
                                  struct error *err);
void service_session_release_user(struct service *svc, struct store_ctx *ctx,
                                  const char *user, const struct error *why);
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
/* Replaces the metadata whole (an object, checked as create checks it),
 * where PATCH merges: the /v1 update (OpenAI's "set").  The version goes
 * up by one, as for any change a client makes. */
bool service_session_set_metadata(struct service *svc, struct store_ctx *ctx,
                                  const char *user, const char *session_id,
                                  const struct json_value *metadata,
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

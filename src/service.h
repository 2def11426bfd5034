/*
 * service.h - what the API does, independent of HTTP: what every service
 * module shares.
 *
 * The service checks every value against the contract (validate.h), keeps
 * the status machine and the version rules, and talks to the store.  Its
 * inputs were decoded by the api_*.c handlers (right fields, right JSON
 * types); its outputs are store structs that encode.c turns into JSON.
 * The user id is always the token's sub, and every store call is scoped
 * by it.  One module per resource: service_session.c, service_message.c,
 * service_memory.c, service_export.c, service_lifecycle.c.
 */
#ifndef PARLEY_SERVICE_H
#define PARLEY_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "json.h"
#include "store.h"

struct agent;

struct service {
    const struct config *cfg;
    struct store *store;
    /* The conversation's backend (agent.h); NULL where no conversation is
     * served (the tests of the other services). */
    struct agent *agent;
};

/* If-Match: IF_MATCH_ANY for none or "*", IF_MATCH_NEVER for a weak tag,
 * else the version it names. */
#define IF_MATCH_ANY   (-1)
#define IF_MATCH_NEVER (-2)

/* An optional text member: absent (NULL), null, or a string within
 * max_chars characters and max_bytes bytes (0: no such limit, as
 * validate_text).  *out is the string, or NULL for absent and null.
 * Errors name `field` (borrowed: a literal or arena memory). */
bool service_text(const char *field, const struct json_value *v,
                  size_t max_chars, size_t max_bytes, const char **out,
                  struct error *err);

/* Reserves r on the session with this id (see store_session_reserve_seq:
 * the counters grow only while they stay within r->max), into *out.
 * When nothing matched it reads the session to say why:
 * ERR_NOT_FOUND when it is gone, ERR_CONFLICT ("status") when a message
 * write meets a session that is not active, ERR_QUOTA_EXCEEDED with
 * param naming the quota that is full; a session that changed between
 * the two is tried again. */
bool service_reserve(struct service *svc, struct store_ctx *ctx,
                     const char *user, const struct uuid *id,
                     const struct store_reserve *r, int64_t now,
                     struct session *out, struct error *err);
/* Whether session s, as read, has room for add under the session quotas
 * (ERR_QUOTA_EXCEEDED naming the first it would pass if not): a check
 * before expensive work, such as asking a model, that the reservation
 * itself makes again atomically when the write comes. */
bool service_quota_room(struct service *svc, const struct session *s,
                        const struct store_counts *add, struct error *err);
/* The quotas a session's counters are held to (cfg's quota_*). */
struct store_counts service_session_quotas(const struct config *cfg);

#endif

#include <string.h>

#include "clock.h"
#include "log.h"
#include "service_session.h"
#include "validate.h"
#include "banned.h"

/* How often a read-modify-write is retried when another writer changed the
 * session between our read and our conditional update.  Each round trip
 * is cheap; a session that changes this often under one client is a bug
 * on the client's side, answered with 409. */
#define MAX_UPDATE_ROUNDS 5

static bool
check_bool(const char *field, const struct json_value *v, struct error *err)
{
    if (v != NULL && v->type != JSON_BOOL)
        return error_set(err, ERR_VALIDATION, field, "%s must be true or false",
                         field);
    return true;
}

/* Checks the members create, PATCH and import share, in the order the
 * contract lists them, and sets the four texts (NULL: absent or null). */
static bool
check_fields(const struct config *cfg, const struct session_fields *f,
             const char **session_name, const char **description,
             const char **agent_name, const char **agent_instructions,
             struct error *err)
{
    return service_text("session_name", f->session_name,
                        (size_t)cfg->max_name_chars, 0, session_name, err) &&
           service_text("description", f->description, 0,
                        (size_t)cfg->max_description_bytes, description, err) &&
           service_text("agent_name", f->agent_name,
                        (size_t)cfg->max_name_chars, 0, agent_name, err) &&
           service_text("agent_instructions", f->agent_instructions, 0,
                        (size_t)cfg->max_instructions_bytes, agent_instructions,
                        err) &&
           (f->metadata == NULL ||
            validate_document("metadata", f->metadata,
                              (size_t)cfg->max_metadata_bytes,
                              cfg->max_metadata_depth, true, err)) &&
           check_bool("is_active", f->is_active, err);
}

bool
service_session_check_create(const struct config *cfg,
                             const struct session_create *in, struct session *s,
                             struct error *err)
{
    if (in->session_id != NULL) {
        if (in->session_id->type != JSON_STRING)
            return error_set(err, ERR_VALIDATION, "session_id",
                             "session_id must be a string");
        if (!validate_session_id(in->session_id->u.s.ptr, err))
            return false;
        s->session_id = in->session_id->u.s.ptr;
    }
    return check_fields(cfg, &in->f, &s->session_name, &s->description,
                        &s->agent_name, &s->agent_instructions, err);
}

bool
service_session_wanted_status(const struct json_value *status,
                              const struct json_value *is_active, int *to,
                              struct error *err)
{
    *to = -1;
    if (status != NULL && (status->type != JSON_STRING ||
                           (*to = status_parse(status->u.s.ptr)) < 0))
        return error_set(err, ERR_VALIDATION, "status",
                         "status must be active, inactive, completed, "
                         "failed or expired");
    if (is_active != NULL) {
        if (*to >= 0 && (*to == STATUS_ACTIVE) != is_active->u.b)
            return error_set(err, ERR_VALIDATION, "is_active",
                             "is_active contradicts status");
        if (*to < 0)
            *to = is_active->u.b ? STATUS_ACTIVE : STATUS_INACTIVE;
    }
    return true;
}

/* A user's sessions are counted in their counter document, so
 * quota_sessions_per_user is held by one conditional update (store.h,
 * "Counters"). */
bool
service_session_reserve_user(struct service *svc, struct store_ctx *ctx,
                             const char *user, int64_t now, struct error *err)
{
    int64_t max = svc->cfg->quota_sessions_per_user;

    if (store_user_count(svc->store, ctx, user, 1, max, now, err))
        return true;
    if (err->code == ERR_QUOTA_EXCEEDED)
        error_set(err, ERR_QUOTA_EXCEEDED, "quota_sessions_per_user",
                  "the user has %lld sessions, the quota", (long long)max);
    return false;
}

void
service_session_release_user(struct service *svc, struct store_ctx *ctx,
                             const char *user, const struct error *why)
{
    struct error e = ERROR_INIT;

    if (why != NULL && why->retry == RETRY_IDEMPOTENT)
        return;
    if (!store_user_count(svc->store, ctx, user, -1, 0, clock_now_ms(), &e))
        log_warn("could not give back a session slot (the sweeper "
                 "recounts): %s",
                 e.message);
}

bool
service_session_create(struct service *svc, struct store_ctx *ctx,
                       const char *user, const struct session_create *in,
                       struct session *out, bool *created, struct error *err)
{
    bool if_exists_return = false;
    char uuid_text[UUID_STR_LEN + 1];
    struct session s;

    memset(&s, 0, sizeof(s));
    *created = false;
    if (!service_session_check_create(svc->cfg, in, &s, err))
        return false;
    if (in->if_exists != NULL) {
        const struct json_value *v = in->if_exists;

        if (v->type != JSON_STRING || (strcmp(v->u.s.ptr, "error") != 0 &&
                                       strcmp(v->u.s.ptr, "return") != 0))
            return error_set(err, ERR_VALIDATION, "if_exists",
                             "if_exists must be \"error\" or \"return\"");
        if_exists_return = strcmp(v->u.s.ptr, "return") == 0;
    }

    uuid_generate(&s.id);
    if (s.session_id == NULL) {
        uuid_format(&s.id, uuid_text);
        s.session_id = arena_strdup(ctx->arena, uuid_text);
    }
    s.user_id = user;
    s.status = in->f.is_active != NULL && !in->f.is_active->u.b
                   ? STATUS_INACTIVE
                   : STATUS_ACTIVE;
    s.metadata = in->f.metadata != NULL ? in->f.metadata
                                        : json_new_object(ctx->arena, 0);
    s.version = 1;
    s.created_at = s.updated_at = s.last_activity_at = clock_now_ms();

    /* "return" is asked mostly of sessions that exist (the conversation
     * endpoint asks it on every turn): one read answers those, where
     * reserving a slot first would cost two writes for nothing. */
    if (if_exists_return && in->session_id != NULL) {
        if (store_session_get(svc->store, ctx, user, s.session_id, out, err))
            return true;
        if (err->code != ERR_NOT_FOUND)
            return false;
        error_clear(err);
    }
    /* The user's slot first (quota_sessions_per_user); a full quota is
     * no reason to refuse a session that exists, so that is looked for
     * before the 403. */
    if (!service_session_reserve_user(svc, ctx, user, s.created_at, err)) {
        struct error full = *err;

        if (full.code != ERR_QUOTA_EXCEEDED)
            return false;
        if (store_session_get(svc->store, ctx, user, s.session_id, out, err)) {
            if (if_exists_return)
                return true;
            return error_set(err, ERR_CONFLICT, "session_id",
                             "a session with this session_id already exists");
        }
        if (err->code != ERR_NOT_FOUND)
            return false;
        *err = full;
        return false;
    }
    if (store_session_insert(svc->store, ctx, &s, err)) {
        *out = s;
        *created = true;
        return true;
    }
    /* Not made: the slot goes back, unless the insert may have happened
     * after all (ERR_UNAVAILABLE after an unknown outcome keeps it, too
     * high, for the sweeper's recount). */
    service_session_release_user(svc, ctx, user, err);
    if (err->code != ERR_DUPLICATE)
        return false;
    if (if_exists_return) {
        /* The one that exists is answered as it is: nothing of this body
         * is applied to it. */
        if (store_session_get(svc->store, ctx, user, s.session_id, out, err))
            return true;
        if (err->code != ERR_NOT_FOUND)
            return false;
        /* Deleted between our insert and our read: say so rather than
         * guess. */
    }
    return error_set(err, ERR_CONFLICT, "session_id",
                     "a session with this session_id already exists");
}

bool
service_session_get(struct service *svc, struct store_ctx *ctx,
                    const char *user, const char *session_id,
                    struct session *out, struct error *err)
{
    /* A name that cannot be valid cannot exist either. */
    if (!validate_session_id(session_id, NULL))
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    if (!store_session_get(svc->store, ctx, user, session_id, out, err)) {
        if (err->code == ERR_NOT_FOUND)
            error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        return false;
    }
    return true;
}

bool
service_session_list(struct service *svc, struct store_ctx *ctx,
                     const char *user, const struct session_filter *f,
                     int64_t limit, int64_t offset, struct session_page *out,
                     struct error *err)
{
    return store_session_list(svc->store, ctx, user, f, limit, offset, out,
                              err);
}

/* Reads the session and checks If-Match against it. */
static bool
load_for_write(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, int64_t if_match, struct session *cur,
               struct error *err)
{
    if (!service_session_get(svc, ctx, user, session_id, cur, err))
        return false;
    if (if_match != IF_MATCH_ANY && cur->version != if_match)
        return error_set(err, ERR_PRECONDITION_FAILED, "If-Match",
                         "the session is at version %lld",
                         (long long)cur->version);
    return true;
}

/* What one round of a read-modify-write makes of the session it read:
 * fills the change (or sets *noop when there is nothing to write), or
 * fails with err set. */
typedef bool session_prepare_fn(const struct session *cur, const void *arg,
                                struct arena *a, struct session_change *change,
                                bool *noop, struct error *err);

/* Reads the session, lets prepare() make the change, and applies it with
 * a conditional update on the version read; another writer getting there
 * first means reading again (MAX_UPDATE_ROUNDS at most), unless If-Match
 * pinned the version, which makes it a 412.  A no-op answers the session
 * as read, its version unchanged. */
static bool
update_session(struct service *svc, struct store_ctx *ctx, const char *user,
               const char *session_id, int64_t if_match,
               session_prepare_fn *prepare, const void *arg,
               struct session_change *change, struct session *out,
               struct error *err)
{
    for (int round = 0; round < MAX_UPDATE_ROUNDS; round++) {
        struct session cur;
        bool noop = false;

        if (!load_for_write(svc, ctx, user, session_id, if_match, &cur, err) ||
            !prepare(&cur, arg, ctx->arena, change, &noop, err))
            return false;
        if (noop) {
            *out = cur;
            return true;
        }
        change->now = clock_now_ms();
        if (store_session_update(svc->store, ctx, user, &cur.id, cur.version,
                                 change, out, err))
            return true;
        if (err->code != ERR_NOT_FOUND)
            return false;
        if (if_match != IF_MATCH_ANY)
            return error_set(err, ERR_PRECONDITION_FAILED, "If-Match",
                             "the session changed");
        error_clear(err);
    }
    return error_set(err, ERR_CONFLICT, NULL,
                     "the session is changing too fast; try again");
}

static bool
status_conflict(enum session_status from, enum session_status to,
                struct error *err)
{
    return error_set(err, ERR_CONFLICT, "status",
                     "a %s session cannot become %s", status_name(from),
                     status_name(to));
}

static const struct json_member *
find_member(const struct json_value *obj, const char *key)
{
    for (size_t i = 0; i < obj->u.o.len; i++)
        if (strcmp(obj->u.o.members[i].key, key) == 0)
            return &obj->u.o.members[i];
    return NULL;
}

/* The merged metadata: cur's keys in their order with patched values,
 * then new keys; a null in the patch removes the key. */
static struct json_value *
merge_metadata(struct arena *a, const struct json_value *cur,
               const struct json_value *patch)
{
    struct json_value *merged =
        json_new_object(a, cur->u.o.len + patch->u.o.len);

    for (size_t i = 0; i < cur->u.o.len; i++) {
        const struct json_member *m = &cur->u.o.members[i];
        const struct json_member *pm = find_member(patch, m->key);

        if (pm == NULL)
            json_object_put(a, merged, m->key, m->key_len, m->value);
        else if (pm->value->type != JSON_NULL)
            json_object_put(a, merged, m->key, m->key_len, pm->value);
    }
    for (size_t i = 0; i < patch->u.o.len; i++) {
        const struct json_member *m = &patch->u.o.members[i];

        if (m->value->type != JSON_NULL && find_member(cur, m->key) == NULL)
            json_object_put(a, merged, m->key, m->key_len, m->value);
    }
    return merged;
}

/* A PATCH, checked: the body and the status it asks for (-1: none). */
struct patch_plan {
    const struct config *cfg;
    const struct session_patch *in;
    int to;
};

static bool
prepare_patch(const struct session *cur, const void *arg, struct arena *a,
              struct session_change *change, bool *noop, struct error *err)
{
    const struct patch_plan *p = arg;

    if (change->fields == 0) {
        *noop = true; /* {} changes nothing, not even the version */
        return true;
    }
    if (p->to >= 0) {
        /* is_active: true on an expired session reactivates it, and
         * is_active: false keeps a session that is already not active as
         * it is. */
        if (p->in->status == NULL && p->to == STATUS_INACTIVE &&
            cur->status != STATUS_ACTIVE)
            change->status = cur->status;
        else
            change->status = (enum session_status)p->to;
        if (!status_can_change(cur->status, change->status))
            return status_conflict(cur->status, change->status, err);
    }
    if (p->in->f.metadata != NULL) {
        change->metadata = merge_metadata(a, cur->metadata, p->in->f.metadata);
        if (json_encoded_size(change->metadata) >
            (size_t)p->cfg->max_metadata_bytes)
            return error_set(err, ERR_VALIDATION, "metadata",
                             "merged metadata must be at most %d bytes "
                             "encoded",
                             p->cfg->max_metadata_bytes);
    }
    return true;
}

bool
service_session_patch(struct service *svc, struct store_ctx *ctx,
                      const char *user, const char *session_id,
                      int64_t if_match, const struct session_patch *in,
                      struct session *out, struct error *err)
{
    struct patch_plan plan = {svc->cfg, in, -1};
    const struct session_fields *f = &in->f;
    struct session_change change;

    memset(&change, 0, sizeof(change));
    if (!check_fields(svc->cfg, f, &change.session_name, &change.description,
                      &change.agent_name, &change.agent_instructions, err) ||
        !service_session_wanted_status(in->status, f->is_active, &plan.to, err))
        return false;
    change.fields = (f->session_name ? SET_SESSION_NAME : 0) |
                    (f->description ? SET_DESCRIPTION : 0) |
                    (f->agent_name ? SET_AGENT_NAME : 0) |
                    (f->agent_instructions ? SET_AGENT_INSTRUCTIONS : 0) |
                    (f->metadata ? SET_METADATA : 0) |
                    (plan.to >= 0 ? SET_STATUS : 0);
    return update_session(svc, ctx, user, session_id, if_match, prepare_patch,
                          &plan, &change, out, err);
}

static bool
prepare_status(const struct session *cur, const void *arg, struct arena *a,
               struct session_change *change, bool *noop, struct error *err)
{
    (void)arg;
    (void)a;
    if (cur->status == change->status) {
        *noop = true; /* already there: not a change */
        return true;
    }
    if (!status_can_change(cur->status, change->status))
        return status_conflict(cur->status, change->status, err);
    return true;
}

bool
service_session_set_status(struct service *svc, struct store_ctx *ctx,
                           const char *user, const char *session_id,
                           int64_t if_match, enum session_status to,
                           struct session *out, struct error *err)
{
    struct session_change change;

    memset(&change, 0, sizeof(change));
    change.fields = SET_STATUS;
    change.status = to;
    return update_session(svc, ctx, user, session_id, if_match, prepare_status,
                          NULL, &change, out, err);
}

/* Nothing to prepare: the change holds the new metadata already. */
static bool
prepare_metadata(const struct session *cur, const void *arg, struct arena *a,
                 struct session_change *change, bool *noop, struct error *err)
{
    (void)cur;
    (void)arg;
    (void)a;
    (void)change;
    (void)noop;
    (void)err;
    return true;
}

bool
service_session_set_metadata(struct service *svc, struct store_ctx *ctx,
                             const char *user, const char *session_id,
                             const struct json_value *metadata,
                             struct session *out, struct error *err)
{
    struct session_change change;

    memset(&change, 0, sizeof(change));
    if (!validate_document("metadata", metadata,
                           (size_t)svc->cfg->max_metadata_bytes,
                           svc->cfg->max_metadata_depth, true, err))
        return false;
    change.fields = SET_METADATA;
    change.metadata = metadata;
    return update_session(svc, ctx, user, session_id, IF_MATCH_ANY,
                          prepare_metadata, NULL, &change, out, err);
}

bool
service_session_delete(struct service *svc, struct store_ctx *ctx,
                       const char *user, const char *session_id,
                       int64_t if_match, struct error *err)
{
    struct session cur;
    int64_t purged = 0;

    if (!load_for_write(svc, ctx, user, session_id, if_match, &cur, err))
        return false;
    /* The tombstone goes in before anything is deleted: a crash or a
     * failure anywhere after it leaves a record the sweeper finds, and it
     * purges what hangs off the UUID once the session document is gone.
     * If the tombstone cannot be written, nothing is deleted. */
    if (!store_tombstone_put(svc->store, ctx, user, &cur.id, clock_now_ms(),
                             err))
        return false;
    /* The user's counter is marked before the session goes and counted
     * down after (store.h, "Counters"): cut short in between, it is left
     * too high, never too low, for the sweeper's recount. */
    if (!store_user_count(svc->store, ctx, user, 0, 0, clock_now_ms(), err))
        return false;
    /* Then the session document: from then on the session and its
     * messages are unreachable, whatever happens to the purge below.  A
     * failure from here on leaves the tombstone for the sweeper (also
     * when the document stays: then it only drops the tombstone). */
    if (!store_session_delete(svc->store, ctx, user, &cur.id,
                              if_match == IF_MATCH_ANY ? -1 : cur.version,
                              err)) {
        if (err->code == ERR_NOT_FOUND && if_match != IF_MATCH_ANY)
            return error_set(err, ERR_PRECONDITION_FAILED, "If-Match",
                             "the session changed");
        if (err->code == ERR_NOT_FOUND)
            error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        return false;
    }
    service_session_release_user(svc, ctx, user, NULL);
    if (!store_session_purge(svc->store, ctx, user, &cur.id, &purged, err)) {
        log_warn("session deleted but its messages not yet purged (the "
                 "sweeper will): %s",
                 err->message);
        error_clear(err);
        return true;
    }
    if (!store_tombstone_delete(svc->store, ctx, user, &cur.id, err)) {
        log_warn("session deleted and purged but its tombstone stays (the "
                 "sweeper drops it): %s",
                 err->message);
        error_clear(err);
    }
    return true;
}

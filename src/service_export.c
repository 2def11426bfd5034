#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "service_export.h"
#include "service_openai.h"
#include "service_session.h"
#include "status.h"
#include "banned.h"

/* --- export -------------------------------------------------------------- */

int64_t
service_export_deadline(const struct config *cfg, int64_t ctx_deadline_ms)
{
    int64_t extra = (int64_t)cfg->export_deadline_ms - cfg->request_deadline_ms;

    /* Saturating: a test's context may have no deadline (INT64_MAX). */
    if (extra > 0 && ctx_deadline_ms > INT64_MAX - extra)
        return INT64_MAX;
    if (extra < 0 && ctx_deadline_ms < INT64_MIN - extra)
        return INT64_MIN;
    return ctx_deadline_ms + extra;
}

void
service_export_pages_init(struct service_export_pages *p, struct service *svc,
                          const char *user, const struct session *s,
                          int64_t deadline_ms)
{
    memset(p, 0, sizeof(*p));
    p->svc = svc;
    p->user = user;
    p->session_uuid = s->id;
    p->deadline_ms = deadline_ms;
    arena_init(&p->arena, 0);
    p->ctx.arena = &p->arena;
}

void
service_export_pages_release(struct service_export_pages *p)
{
    arena_release(&p->arena);
}

bool
service_export_pages_next(void *pages, int64_t after_seq, int64_t limit,
                          struct message_page *page, struct error *err)
{
    struct service_export_pages *p = pages;
    struct message_filter f;

    service_message_filter_all(&f);
    f.after_seq = after_seq;
    f.no_total = true;
    /* The previous page has been written out: its memory can go.  Each
     * page gets a whole request deadline, since the export as a whole may
     * take far longer than one request should. */
    arena_reset(&p->arena);
    p->ctx.deadline_ms =
        clock_mono_ms() + (int64_t)p->svc->cfg->request_deadline_ms;
    if (p->ctx.deadline_ms > p->deadline_ms)
        p->ctx.deadline_ms = p->deadline_ms;
    return store_message_list(p->svc->store, &p->ctx, p->user, &p->session_uuid,
                              &f, limit, 0, page, err);
}

/* --- import -------------------------------------------------------------- */

/* Gives an import step a deadline of its own, as export's pages have: an
 * import may hold far more messages than one append.  Never past `limit`,
 * the whole import's deadline. */
static void
extend_deadline(const struct service *svc, struct store_ctx *ctx, int64_t limit)
{
    int64_t d = clock_mono_ms() + (int64_t)svc->cfg->request_deadline_ms;

    if (d > limit)
        d = limit;
    if (d > ctx->deadline_ms)
        ctx->deadline_ms = d;
}

/* Removes what a failed import wrote: the session document if it may
 * have gone in, then the messages, then the import's tombstone.  Best
 * effort with a deadline of its own (the failure may have been the
 * deadline); what it cannot remove it logs and leaves to the sweeper,
 * which the tombstone, kept then, points at. */
static void
undo_import(struct service *svc, struct store_ctx *ctx, const char *user,
            const struct session *s, bool session_maybe_in,
            const struct message *msgs, size_t n)
{
    struct store_ctx undo = *ctx;
    struct error e = ERROR_INIT;
    struct uuid *ids;

    undo.deadline_ms = clock_mono_ms() + svc->cfg->request_deadline_ms;
    if (session_maybe_in &&
        !store_session_delete(svc->store, &undo, user, &s->id, -1, &e) &&
        e.code != ERR_NOT_FOUND) {
        log_warn("import failed; its session may remain: %s", e.message);
        return;
    }
    ids = arena_alloc(ctx->arena, (n > 0 ? n : 1) * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = msgs[i].id;
    for (size_t done = 0; done < n; done += SERVICE_IMPORT_BATCH) {
        size_t k =
            n - done < SERVICE_IMPORT_BATCH ? n - done : SERVICE_IMPORT_BATCH;

        if (!store_message_delete_ids(svc->store, &undo, user, ids + done, k,
                                      &e)) {
            log_warn("import failed; %zu of its messages may remain until "
                     "the sweeper removes them: %s",
                     n - done, e.message);
            return;
        }
    }
    if (!store_tombstone_delete(svc->store, &undo, user, &s->id, &e))
        log_warn("import undone but its tombstone stays: %s", e.message);
}

/* The new session's counters, which must start within the session quotas
 * as an append's would (the session quota is the user's, checked by the
 * reservation before anything is written). */
static bool
check_import_quotas(struct service *svc, struct message *msgs, size_t n,
                    struct session *s, struct error *err)
{
    const struct config *cfg = svc->cfg;

    s->content_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        msgs[i].bytes = store_message_bytes(&msgs[i]);
        s->content_bytes += msgs[i].bytes;
    }
    if ((int64_t)n > cfg->quota_messages_per_session)
        return error_set(err, ERR_QUOTA_EXCEEDED, "quota_messages_per_session",
                         "the import holds %zu messages; the quota is %d", n,
                         cfg->quota_messages_per_session);
    if (s->content_bytes > cfg->quota_bytes_per_session)
        return error_set(err, ERR_QUOTA_EXCEEDED, "quota_bytes_per_session",
                         "the import holds %lld bytes of content; the quota "
                         "is %d",
                         (long long)s->content_bytes,
                         cfg->quota_bytes_per_session);
    return true;
}

/* A message's item id and its index, sorted by id, then index. */
struct id_at {
    const char *id;
    size_t i;
};

static int
by_id(const void *x, const void *y)
{
    const struct id_at *a = x, *b = y;
    int c = strcmp(a->id, b->id);

    return c != 0 ? c : (a->i > b->i) - (a->i < b->i);
}

static int
same_id(const void *key, const void *elem)
{
    return strcmp(key, ((const struct id_at *)elem)->id);
}

/* The message whose item id is id, among the k sorted (and by then
 * distinct) ids; SIZE_MAX for none. */
static size_t
find_id(const struct id_at *ids, size_t k, const char *id)
{
    const struct id_at *at = bsearch(id, ids, k, sizeof(*ids), same_id);

    return at != NULL ? at->i : SIZE_MAX;
}

/* No item id twice in the import (the session's unique index on them
 * would refuse the insert), and none of the form "<id>.<k>" where <id>
 * is another imported message's that /v1 shows with its tool calls (the
 * id of its k-th call: two items would answer to it, and paging by
 * `after` could come back to the same place): 400 naming the first. */
static bool
check_item_ids(struct arena *a, const struct message *msgs, size_t n,
               struct error *err)
{
    struct id_at *ids = arena_alloc(a, (n > 0 ? n : 1) * sizeof(*ids));
    size_t k = 0, dup = SIZE_MAX, shadow = SIZE_MAX;

    for (size_t i = 0; i < n; i++)
        if (msgs[i].item_id != NULL)
            ids[k++] = (struct id_at){msgs[i].item_id, i};
    qsort(ids, k, sizeof(*ids), by_id);
    for (size_t j = 1; j < k; j++)
        if (strcmp(ids[j - 1].id, ids[j].id) == 0 && ids[j].i < dup)
            dup = ids[j].i;
    if (dup != SIZE_MAX)
        return error_set(err, ERR_VALIDATION,
                         arena_printf(a, "messages[%zu].item_id", dup),
                         "item_id repeats within the import");
    for (size_t j = 0; j < k; j++) {
        const char *base;
        int part;
        size_t owner;

        if (ids[j].i >= shadow ||
            !service_openai_split_part_id(a, ids[j].id, &base, &part))
            continue;
        owner = find_id(ids, k, base);
        if (owner != SIZE_MAX &&
            service_openai_call(&msgs[owner], part) != NULL)
            shadow = ids[j].i;
    }
    if (shadow != SIZE_MAX)
        return error_set(err, ERR_VALIDATION,
                         arena_printf(a, "messages[%zu].item_id", shadow),
                         "item_id is another imported message's id with "
                         "\".<n>\" after it, the id of that message's "
                         "n-th tool call");
    return true;
}

/* Every check an import makes before it writes: the count, the session
 * as on create and its status as on PATCH (errors "session.<field>"),
 * then every message as on append ("messages[i].<field>").  Fills s's
 * client fields and status, and *msgs. */
static bool
check_import(struct service *svc, struct store_ctx *ctx,
             const struct import_input *in, struct session *s,
             struct message **msgs, struct error *err)
{
    int to;

    if (in->n > SERVICE_IMPORT_MAX_MESSAGES)
        return error_set(err, ERR_VALIDATION, "messages",
                         "an import holds at most %d messages",
                         SERVICE_IMPORT_MAX_MESSAGES);
    if (!service_session_check_create(svc->cfg, &in->session, s, err) ||
        !service_session_wanted_status(in->status, in->session.f.is_active, &to,
                                       err)) {
        if (err->param != NULL)
            err->param = arena_printf(ctx->arena, "session.%s", err->param);
        return false;
    }
    /* Neither status nor is_active: active, as on create. */
    s->status = to < 0 ? STATUS_ACTIVE : (enum session_status)to;
    *msgs = arena_calloc(ctx->arena, (in->n > 0 ? in->n : 1) * sizeof(**msgs));
    for (size_t i = 0; i < in->n; i++) {
        struct message_input m = in->messages[i];

        m.item = NULL;
        m.item_id = NULL;
        if ((in->items != NULL &&
             !service_openai_import_item(svc->cfg, ctx->arena, i,
                                         in->items[i].item,
                                         in->items[i].item_id, &m, err)) ||
            !service_message_decode(svc, ctx, true, i, &m, &(*msgs)[i], err))
            return false;
    }
    return check_item_ids(ctx->arena, *msgs, in->n, err) &&
           check_import_quotas(svc, *msgs, in->n, s, err);
}

/* Inserts the n messages of session s, SERVICE_IMPORT_BATCH at a time,
 * with seq 1..n; on failure removes what went in (undo_import). */
static bool
import_messages(struct service *svc, struct store_ctx *ctx, const char *user,
                const struct session *s, struct message *msgs, size_t n,
                int64_t now, int64_t limit, struct error *err)
{
    const struct retry_policy *p = &svc->store->policy;
    int64_t put_at = 0;

    for (size_t i = 0; i < n; i++) {
        uuid_generate(&msgs[i].id);
        msgs[i].session_uuid = s->id;
        msgs[i].user_id = user;
        msgs[i].session_id = s->session_id;
        msgs[i].seq = (int64_t)i + 1;
        msgs[i].client_message_id = NULL;
        msgs[i].created_at = msgs[i].updated_at = now;
    }
    /* The tombstone, before the first message: should this import die
     * before its session document is in, the sweeper finds the messages
     * by it.  Put again before a batch once half a request_deadline_ms
     * has passed since the last put, it stays younger than the sweeper's
     * cutoff (2 x request_deadline_ms at least) for as long as the import
     * is alive, however many batches it has. */
    for (size_t done = 0; done < n; done += SERVICE_IMPORT_BATCH) {
        size_t k =
            n - done < SERVICE_IMPORT_BATCH ? n - done : SERVICE_IMPORT_BATCH;
        int64_t t0;

        extend_deadline(svc, ctx, limit);
        /* The user's counter is marked again with it: a recount while the
         * import runs would not see the session it has counted. */
        if (done == 0 ||
            clock_now_ms() - put_at >= svc->cfg->request_deadline_ms / 2) {
            put_at = clock_now_ms();
            if (!store_tombstone_put(svc->store, ctx, user, &s->id, put_at,
                                     err) ||
                !store_user_count(svc->store, ctx, user, 0, 0, put_at, err)) {
                struct error e = *err;

                if (done > 0)
                    undo_import(svc, ctx, user, s, false, msgs, done);
                *err = e;
                return false;
            }
        }
        t0 = p->now_ms(p->env);
        if (!store_message_insert(svc->store, ctx, msgs + done, k, err)) {
            struct error e = *err;

            /* A failed ordered insert may have stored part of its batch:
             * the ids not stored are simply not found by the delete. */
            undo_import(svc, ctx, user, s, false, msgs, done + k);
            *err = e;
            return false;
        }
        /* Yield (service_export.h), never past the import's deadline. */
        if (done + k < n) {
            int64_t pause = (p->now_ms(p->env) - t0) * SERVICE_IMPORT_YIELD;

            if (pause > limit - clock_mono_ms())
                pause = limit - clock_mono_ms();
            if (pause > 0)
                p->sleep_ms(p->env, pause);
        }
    }
    return true;
}

bool
service_export_import(struct service *svc, struct store_ctx *ctx,
                      const char *user, const struct import_input *in,
                      struct session *out, struct error *err)
{
    char uuid_text[UUID_STR_LEN + 1];
    struct message *msgs = NULL;
    struct session s, existing;
    int64_t now, limit = service_export_deadline(svc->cfg, ctx->deadline_ms);

    memset(&s, 0, sizeof(s));
    if (!check_import(svc, ctx, in, &s, &msgs, err))
        return false;
    uuid_generate(&s.id);
    if (s.session_id == NULL) {
        uuid_format(&s.id, uuid_text);
        s.session_id = arena_strdup(ctx->arena, uuid_text);
    }
    /* The insert of the session document at the end would find a taken
     * session_id too; asking first spares writing every message for
     * nothing in the common case. */
    if (store_session_get(svc->store, ctx, user, s.session_id, &existing, err))
        return error_set(err, ERR_CONFLICT, "session_id",
                         "a session with this session_id already exists");
    if (err->code != ERR_NOT_FOUND)
        return false;
    error_clear(err);

    now = clock_now_ms();
    /* Its slot under quota_sessions_per_user, before anything is
     * written; every failure below gives it back. */
    if (!service_session_reserve_user(svc, ctx, user, now, err))
        return false;
    if (!import_messages(svc, ctx, user, &s, msgs, in->n, now, limit, err)) {
        service_session_release_user(svc, ctx, user, NULL);
        return false;
    }
    s.user_id = user;
    s.metadata = in->session.f.metadata != NULL
                     ? in->session.f.metadata
                     : json_new_object(ctx->arena, 0);
    s.message_count = s.last_seq = (int64_t)in->n;
    s.version = 1;
    s.created_at = s.updated_at = s.last_activity_at = now;
    extend_deadline(svc, ctx, limit);
    if (!store_session_insert(svc->store, ctx, &s, err)) {
        struct error e = *err;

        /* Anything but a duplicate may have been written with its reply
         * lost: remove the document too, so no session is left whose
         * messages are gone. */
        undo_import(svc, ctx, user, &s, e.code != ERR_DUPLICATE, msgs, in->n);
        service_session_release_user(svc, ctx, user, &e);
        if (e.code == ERR_DUPLICATE)
            return error_set(err, ERR_CONFLICT, "session_id",
                             "a session with this session_id already "
                             "exists");
        *err = e;
        return false;
    }
    /* The import is whole; a tombstone left by a failure here only costs
     * the sweeper a lookup (it finds the session and drops it). */
    if (in->n > 0 &&
        !store_tombstone_delete(svc->store, ctx, user, &s.id, err)) {
        log_warn("import done but its tombstone stays: %s", err->message);
        error_clear(err);
    }
    *out = s;
    return true;
}

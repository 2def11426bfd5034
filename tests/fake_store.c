#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fake_store.h"
#include "banned.h"

#define FAKE_MAX_STEPS 8

struct fake_step {
    int times;
    enum error_code code;
    enum retry_class retry;
    bool applied;
};

struct fake_impl {
    struct arena arena; /* stored copies; freed with the store */
    struct session *sessions;
    size_t len, cap;
    struct fake_clock *clock;
    struct fake_step steps[FAKE_OP_COUNT][FAKE_MAX_STEPS];
    int nsteps[FAKE_OP_COUNT];
    int calls[FAKE_OP_COUNT];
    int ncalls;
    int64_t call_at[FAKE_MAX_RECORDED];
};

static const char *const op_names[FAKE_OP_COUNT] = {
    "ping",           "ensure_indexes",    "session_insert",
    "session_get",    "session_get_by_id", "session_list",
    "session_update", "session_delete",    "session_purge",
};

/* --- the fake clock ------------------------------------------------------ */

static int64_t
clock_now(void *env)
{
    return ((struct fake_clock *)env)->now;
}

static void
clock_sleep(void *env, int64_t ms)
{
    struct fake_clock *c = env;

    if (c->nsleeps < FAKE_MAX_RECORDED)
        c->sleeps[c->nsleeps] = ms;
    c->nsleeps++;
    c->now += ms;
}

static uint64_t
clock_random(void *env, uint64_t n)
{
    struct fake_clock *c = env;

    if (c->nrandoms < FAKE_MAX_RECORDED)
        c->randoms[c->nrandoms] = n;
    c->nrandoms++;
    switch (c->random) {
    case FAKE_RANDOM_ZERO:
        return 0;
    case FAKE_RANDOM_HALF:
        return n / 2;
    case FAKE_RANDOM_CAP:
        break;
    }
    return n;
}

void
fake_clock_policy(struct retry_policy *p, struct fake_clock *c,
                  int max_attempts, int base_ms, int max_ms)
{
    p->max_attempts = max_attempts;
    p->base_ms = base_ms;
    p->max_ms = max_ms;
    p->now_ms = clock_now;
    p->sleep_ms = clock_sleep;
    p->random_upto = clock_random;
    p->env = c;
}

/* --- copies -------------------------------------------------------------- */

static const char *
dup_str(struct arena *a, const char *s)
{
    return s != NULL ? arena_strdup(a, s) : NULL;
}

static struct json_value *
dup_json(struct arena *a, const struct json_value *v)
{
    struct json_value *c = arena_alloc(a, sizeof(*c));

    *c = *v;
    switch (v->type) {
    case JSON_STRING:
        c->u.s.ptr = arena_strndup(a, v->u.s.ptr, v->u.s.len);
        break;
    case JSON_ARRAY:
        c->u.a.items = arena_alloc(a, v->u.a.len * sizeof(*c->u.a.items) + 1);
        for (size_t i = 0; i < v->u.a.len; i++)
            c->u.a.items[i] = dup_json(a, v->u.a.items[i]);
        break;
    case JSON_OBJECT:
        c->u.o.members =
            arena_alloc(a, v->u.o.len * sizeof(*c->u.o.members) + 1);
        for (size_t i = 0; i < v->u.o.len; i++) {
            const struct json_member *m = &v->u.o.members[i];

            c->u.o.members[i].key = arena_strndup(a, m->key, m->key_len);
            c->u.o.members[i].key_len = m->key_len;
            c->u.o.members[i].value = dup_json(a, m->value);
        }
        break;
    default:
        break;
    }
    return c;
}

static void
copy_session(struct arena *a, const struct session *in, struct session *out)
{
    *out = *in;
    out->user_id = dup_str(a, in->user_id);
    out->session_id = dup_str(a, in->session_id);
    out->session_name = dup_str(a, in->session_name);
    out->description = dup_str(a, in->description);
    out->agent_name = dup_str(a, in->agent_name);
    out->agent_instructions = dup_str(a, in->agent_instructions);
    if (in->metadata != NULL)
        out->metadata = dup_json(a, in->metadata);
}

/* --- the script ---------------------------------------------------------- */

static struct fake_impl *
impl(const struct store *s)
{
    return s->impl;
}

/* Counts the call, moves the clock, and says whether the script wants it
 * to fail (in *step). */
static bool
begin(struct store *s, enum fake_op op, struct fake_step *step)
{
    struct fake_impl *f = impl(s);

    f->calls[op]++;
    if (f->ncalls < FAKE_MAX_RECORDED)
        f->call_at[f->ncalls] = f->clock != NULL ? f->clock->now : 0;
    f->ncalls++;
    if (f->clock != NULL)
        f->clock->now += f->clock->op_ms;
    if (f->nsteps[op] == 0)
        return false;
    *step = f->steps[op][0];
    if (--f->steps[op][0].times == 0) {
        memmove(&f->steps[op][0], &f->steps[op][1],
                (size_t)(f->nsteps[op] - 1) * sizeof(f->steps[op][0]));
        f->nsteps[op]--;
    }
    return true;
}

/* Ends a call: a scripted failure replaces its outcome.  Operations
 * check failing && !step.applied before doing any work. */
static bool
end(enum fake_op op, bool failing, const struct fake_step *step, bool ok,
    struct error *err)
{
    if (!failing)
        return ok;
    error_set(err, step->code, NULL, "fake %s failure", op_names[op]);
    err->retry = step->retry;
    err->db_code = 42;
    return false;
}

void
fake_store_fail(struct store *s, enum fake_op op, int times,
                enum error_code code, enum retry_class retry, bool applied)
{
    struct fake_impl *f = impl(s);

    if (times <= 0 || f->nsteps[op] == FAKE_MAX_STEPS)
        abort(); /* a broken test */
    f->steps[op][f->nsteps[op]++] =
        (struct fake_step){times, code, retry, applied};
}

int
fake_store_calls(const struct store *s, enum fake_op op)
{
    return impl(s)->calls[op];
}

int
fake_store_ncalls(const struct store *s)
{
    return impl(s)->ncalls;
}

int64_t
fake_store_call_at(const struct store *s, int i)
{
    return i >= 0 && i < FAKE_MAX_RECORDED ? impl(s)->call_at[i] : -1;
}

size_t
fake_store_count(const struct store *s)
{
    return impl(s)->len;
}

/* --- the data ------------------------------------------------------------ */

static struct session *
find_name(struct fake_impl *f, const char *user, const char *session_id)
{
    for (size_t i = 0; i < f->len; i++)
        if (strcmp(f->sessions[i].user_id, user) == 0 &&
            strcmp(f->sessions[i].session_id, session_id) == 0)
            return &f->sessions[i];
    return NULL;
}

static struct session *
find_id(struct fake_impl *f, const char *user, const struct uuid *id)
{
    for (size_t i = 0; i < f->len; i++)
        if (strcmp(f->sessions[i].user_id, user) == 0 &&
            uuid_equal(&f->sessions[i].id, id))
            return &f->sessions[i];
    return NULL;
}

static bool
do_insert(struct fake_impl *f, const struct session *sess, struct error *err)
{
    for (size_t i = 0; i < f->len; i++)
        if (uuid_equal(&f->sessions[i].id, &sess->id))
            return error_set(err, ERR_DUPLICATE, NULL, "duplicate _id");
    if (find_name(f, sess->user_id, sess->session_id) != NULL)
        return error_set(err, ERR_DUPLICATE, NULL, "duplicate session_id");
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct session *p = realloc(f->sessions, cap * sizeof(*p));

        if (p == NULL)
            abort();
        f->sessions = p;
        f->cap = cap;
    }
    copy_session(&f->arena, sess, &f->sessions[f->len++]);
    return true;
}

static bool
matches(const struct session *s, const char *user,
        const struct session_filter *f)
{
    if (strcmp(s->user_id, user) != 0)
        return false;
    if (f == NULL)
        return true;
    if (f->search != NULL && (s->session_name == NULL ||
                              strcasestr(s->session_name, f->search) == NULL))
        return false;
    if (f->status >= 0 && (int)s->status != f->status)
        return false;
    if (f->is_active >= 0 &&
        (s->status == STATUS_ACTIVE) != (f->is_active == 1))
        return false;
    if (f->agent_name != NULL &&
        (s->agent_name == NULL || strcmp(s->agent_name, f->agent_name) != 0))
        return false;
    if (f->created_after != STORE_NO_TIME && s->created_at <= f->created_after)
        return false;
    if (f->created_before != STORE_NO_TIME &&
        s->created_at >= f->created_before)
        return false;
    if (f->updated_after != STORE_NO_TIME && s->updated_at <= f->updated_after)
        return false;
    if (f->updated_before != STORE_NO_TIME &&
        s->updated_at >= f->updated_before)
        return false;
    return true;
}

static int
compare(const void *pa, const void *pb, void *arg)
{
    const struct session *a = *(const struct session *const *)pa;
    const struct session *b = *(const struct session *const *)pb;
    enum session_sort sort = *(const enum session_sort *)arg;
    bool created = sort == SORT_CREATED_ASC || sort == SORT_CREATED_DESC;
    bool desc = sort == SORT_UPDATED_DESC || sort == SORT_CREATED_DESC;
    int64_t ka = created ? a->created_at : a->updated_at;
    int64_t kb = created ? b->created_at : b->updated_at;
    int c = ka < kb ? -1 : ka > kb;

    if (c == 0)
        c = memcmp(a->id.b, b->id.b, sizeof(a->id.b));
    return desc ? -c : c;
}

static bool
do_list(struct fake_impl *f, struct arena *a, const char *user,
        const struct session_filter *filter, int64_t limit, int64_t offset,
        struct session_page *out)
{
    const struct session **hits = malloc((f->len + 1) * sizeof(*hits));
    enum session_sort sort = filter != NULL ? filter->sort : SORT_UPDATED_DESC;
    size_t n = 0;

    if (hits == NULL)
        abort();
    for (size_t i = 0; i < f->len; i++)
        if (matches(&f->sessions[i], user, filter))
            hits[n++] = &f->sessions[i];
    qsort_r(hits, n, sizeof(*hits), compare, &sort);
    out->total = (int64_t)n;
    out->len = 0;
    out->items = arena_alloc(a, sizeof(*out->items) * (size_t)limit + 1);
    for (int64_t i = offset; i < (int64_t)n && i < offset + limit; i++)
        copy_session(a, hits[i], &out->items[out->len++]);
    free(hits);
    return true;
}

static void
apply(struct arena *a, struct session *s, const struct session_change *c)
{
    if (c->fields & SET_SESSION_NAME)
        s->session_name = dup_str(a, c->session_name);
    if (c->fields & SET_DESCRIPTION)
        s->description = dup_str(a, c->description);
    if (c->fields & SET_AGENT_NAME)
        s->agent_name = dup_str(a, c->agent_name);
    if (c->fields & SET_AGENT_INSTRUCTIONS)
        s->agent_instructions = dup_str(a, c->agent_instructions);
    if (c->fields & SET_STATUS)
        s->status = c->status;
    if ((c->fields & SET_METADATA) && c->metadata != NULL)
        s->metadata = dup_json(a, c->metadata);
    s->version++;
    s->updated_at = c->now;
}

/* --- the backend --------------------------------------------------------- */

static bool
fake_ping(struct store *s, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_PING, &step);

    return end(FAKE_PING, failing, &step, true, err);
}

static bool
fake_ensure_indexes(struct store *s, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_ENSURE_INDEXES, &step);

    return end(FAKE_ENSURE_INDEXES, failing, &step, true, err);
}

static bool
fake_insert(struct store *s, const struct session *sess, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_INSERT, &step);

    if (failing && !step.applied)
        return end(FAKE_INSERT, failing, &step, false, err);
    return end(FAKE_INSERT, failing, &step, do_insert(impl(s), sess, err), err);
}

static bool
fake_get(struct store *s, struct arena *a, const char *user,
         const char *session_id, struct session *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_GET, &step);
    struct session *found = find_name(impl(s), user, session_id);

    if (failing)
        return end(FAKE_GET, failing, &step, false, err);
    if (found == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    copy_session(a, found, out);
    return true;
}

static bool
fake_get_by_id(struct store *s, struct arena *a, const char *user,
               const struct uuid *id, struct session *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_GET_BY_ID, &step);
    struct session *found = find_id(impl(s), user, id);

    if (failing)
        return end(FAKE_GET_BY_ID, failing, &step, false, err);
    if (found == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    copy_session(a, found, out);
    return true;
}

static bool
fake_list(struct store *s, struct arena *a, const char *user,
          const struct session_filter *f, int64_t limit, int64_t offset,
          struct session_page *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_LIST, &step);

    if (failing)
        return end(FAKE_LIST, failing, &step, false, err);
    return do_list(impl(s), a, user, f, limit, offset, out);
}

static bool
fake_update(struct store *s, struct arena *a, const char *user,
            const struct uuid *id, int64_t version,
            const struct session_change *change, struct session *out,
            struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_UPDATE, &step);
    struct session *found = find_id(impl(s), user, id);
    bool ok;

    if (failing && !step.applied)
        return end(FAKE_UPDATE, failing, &step, false, err);
    ok = found != NULL && found->version == version;
    if (ok) {
        apply(&impl(s)->arena, found, change);
        copy_session(a, found, out);
    } else {
        error_set(err, ERR_NOT_FOUND, NULL, "no session with that version");
    }
    return end(FAKE_UPDATE, failing, &step, ok, err);
}

static bool
fake_delete(struct store *s, const char *user, const struct uuid *id,
            int64_t version, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_DELETE, &step);
    struct fake_impl *f = impl(s);
    struct session *found = find_id(f, user, id);
    bool ok;

    if (failing && !step.applied)
        return end(FAKE_DELETE, failing, &step, false, err);
    ok = found != NULL && (version < 0 || found->version == version);
    if (ok) {
        size_t i = (size_t)(found - f->sessions);

        memmove(&f->sessions[i], &f->sessions[i + 1],
                (f->len - i - 1) * sizeof(f->sessions[0]));
        f->len--;
    } else {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    }
    return end(FAKE_DELETE, failing, &step, ok, err);
}

static bool
fake_purge(struct store *s, const char *user, const struct uuid *id,
           int64_t *messages_deleted, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_PURGE, &step);

    (void)user;
    (void)id;
    if (messages_deleted != NULL)
        *messages_deleted = 0;
    return end(FAKE_PURGE, failing, &step, true, err);
}

static void
fake_free(struct store *s)
{
    struct fake_impl *f = impl(s);

    arena_release(&f->arena);
    free(f->sessions);
    free(f);
    free(s);
}

static const struct store_backend fake_backend = {
    .name = "fake",
    .ping = fake_ping,
    .ensure_indexes = fake_ensure_indexes,
    .session_insert = fake_insert,
    .session_get = fake_get,
    .session_get_by_id = fake_get_by_id,
    .session_list = fake_list,
    .session_update = fake_update,
    .session_delete = fake_delete,
    .session_purge = fake_purge,
    .free = fake_free,
};

struct store *
fake_store_new(const struct retry_policy *policy, struct fake_clock *clock)
{
    struct store *s = calloc(1, sizeof(*s));
    struct fake_impl *f = calloc(1, sizeof(*f));

    if (s == NULL || f == NULL)
        abort();
    arena_init(&f->arena, 4096);
    f->clock = clock;
    s->backend = &fake_backend;
    s->impl = f;
    if (policy != NULL) {
        s->policy = *policy;
    } else {
        struct config cfg = {0};

        cfg.db_retry_max_attempts = 3;
        retry_policy_init(&s->policy, &cfg);
    }
    return s;
}

void
fake_session(struct session *sess, struct arena *a, const char *user,
             const char *session_id, int64_t now)
{
    struct json_value *meta = arena_calloc(a, sizeof(*meta));

    meta->type = JSON_OBJECT;
    memset(sess, 0, sizeof(*sess));
    uuid_generate(&sess->id);
    sess->user_id = arena_strdup(a, user);
    sess->session_id = arena_strdup(a, session_id);
    sess->status = STATUS_ACTIVE;
    sess->metadata = meta;
    sess->version = 1;
    sess->created_at = now;
    sess->updated_at = now;
    sess->last_activity_at = now;
}

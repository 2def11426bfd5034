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
    bool partial; /* message insert: store `stored`, report `reported` */
    size_t stored;
    size_t reported;
};

struct fake_memory {
    struct uuid session;
    const char *user;
    const char *key;
    struct json_value *value; /* never NULL: null is a JSON_NULL */
    int64_t updated_at;
};

struct fake_idem {
    struct uuid session;
    const char *user;
    const char *key;
    struct idem_key k;
};

struct fake_tombstone {
    struct uuid session;
    const char *user;
    int64_t at;
};

struct fake_user {
    const char *user;
    struct user_counter c;
};

struct fake_impl {
    struct arena arena; /* stored copies; freed with the store */
    struct session *sessions;
    size_t len, cap;
    struct message *messages;
    size_t nmessages, cmessages;
    struct fake_idem *idem;
    size_t nidem, cidem;
    struct fake_memory *memory;
    size_t nmemory, cmemory;
    struct fake_tombstone *tombs;
    size_t ntombs, ctombs;
    struct fake_user *users;
    size_t nusers, cusers;
    struct fake_clock *clock;
    struct fake_step steps[FAKE_OP_COUNT][FAKE_MAX_STEPS];
    int nsteps[FAKE_OP_COUNT];
    int calls[FAKE_OP_COUNT];
    int ncalls;
    int64_t call_at[FAKE_MAX_RECORDED];
    struct {
        enum fake_op op;
        int nth;
        void (*fn)(void *arg);
        void *arg;
    } hook;
};

#define FAKE_OP_NAME(name, NAME) [FAKE_##NAME] = #name,
static const char *const op_names[FAKE_OP_COUNT] = {
    STORE_OPERATIONS(FAKE_OP_NAME)};
#undef FAKE_OP_NAME

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
    p->try_ms = 0;
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

/* The real store keeps a null extra_data as null and reads it back as
 * NULL. */
static const struct json_value *
dup_extra(struct arena *a, const struct json_value *v)
{
    return v != NULL && v->type != JSON_NULL ? dup_json(a, v) : NULL;
}

/* As the real store reads a message stored without bytes. */
static void
copy_message(struct arena *a, const struct message *in, struct message *out)
{
    *out = *in;
    if (out->bytes == 0 && in->content != NULL)
        out->bytes = store_message_bytes(in);
    out->user_id = dup_str(a, in->user_id);
    out->session_id = dup_str(a, in->session_id);
    out->content = dup_str(a, in->content);
    out->tool_call_id = dup_str(a, in->tool_call_id);
    out->tool_name = dup_str(a, in->tool_name);
    out->extra_data = dup_extra(a, in->extra_data);
    out->client_message_id = dup_str(a, in->client_message_id);
    out->item = dup_extra(a, in->item);
    out->item_id = dup_str(a, in->item_id);
}

/* Makes room for one more element in a malloc'd array. */
static void *
grow(void *p, size_t len, size_t *cap, size_t size)
{
    size_t ncap;

    if (len < *cap)
        return p;
    ncap = *cap ? *cap * 2 : 8;
    p = realloc(p, ncap * size);
    if (p == NULL)
        abort();
    *cap = ncap;
    return p;
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
    if (f->hook.fn != NULL && f->hook.op == op && f->hook.nth == f->calls[op]) {
        void (*fn)(void *arg) = f->hook.fn;

        f->hook.fn = NULL; /* once, and not again from inside fn */
        fn(f->hook.arg);
    }
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
        (struct fake_step){times, code, retry, applied, false, 0, 0};
}

void
fake_store_fail_insert(struct store *s, size_t stored, size_t reported,
                       enum error_code code, enum retry_class retry)
{
    struct fake_impl *f = impl(s);
    enum fake_op op = FAKE_MESSAGE_INSERT;

    if (f->nsteps[op] == FAKE_MAX_STEPS)
        abort();
    f->steps[op][f->nsteps[op]++] =
        (struct fake_step){1, code, retry, true, true, stored, reported};
}

void
fake_store_on_call(struct store *s, enum fake_op op, int nth,
                   void (*fn)(void *arg), void *arg)
{
    struct fake_impl *f = impl(s);

    f->hook.op = op;
    f->hook.nth = nth;
    f->hook.fn = fn;
    f->hook.arg = arg;
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

size_t
fake_store_message_count(const struct store *s)
{
    return impl(s)->nmessages;
}

size_t
fake_store_idem_count(const struct store *s)
{
    return impl(s)->nidem;
}

size_t
fake_store_memory_count(const struct store *s)
{
    return impl(s)->nmemory;
}

size_t
fake_store_tombstone_count(const struct store *s)
{
    return impl(s)->ntombs;
}

bool
fake_store_tombstone(const struct store *s, const char *user,
                     const struct uuid *id, int64_t *at)
{
    const struct fake_impl *f = impl(s);

    for (size_t i = 0; i < f->ntombs; i++) {
        if (strcmp(f->tombs[i].user, user) != 0 ||
            !uuid_equal(&f->tombs[i].session, id))
            continue;
        if (at != NULL)
            *at = f->tombs[i].at;
        return true;
    }
    return false;
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
fake_session_insert(struct store *s, const struct session *sess,
                    struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_INSERT, &step);

    if (failing && !step.applied)
        return end(FAKE_SESSION_INSERT, failing, &step, false, err);
    return end(FAKE_SESSION_INSERT, failing, &step,
               do_insert(impl(s), sess, err), err);
}

static bool
fake_session_get(struct store *s, struct arena *a, const char *user,
                 const char *session_id, struct session *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_GET, &step);
    struct session *found = find_name(impl(s), user, session_id);

    if (failing)
        return end(FAKE_SESSION_GET, failing, &step, false, err);
    if (found == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    copy_session(a, found, out);
    return true;
}

static bool
fake_session_get_by_id(struct store *s, struct arena *a, const char *user,
                       const struct uuid *id, struct session *out,
                       struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_GET_BY_ID, &step);
    struct session *found = find_id(impl(s), user, id);

    if (failing)
        return end(FAKE_SESSION_GET_BY_ID, failing, &step, false, err);
    if (found == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    copy_session(a, found, out);
    return true;
}

static bool
fake_session_list(struct store *s, struct arena *a, const char *user,
                  const struct session_filter *f, int64_t limit, int64_t offset,
                  struct session_page *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_LIST, &step);

    if (failing)
        return end(FAKE_SESSION_LIST, failing, &step, false, err);
    return do_list(impl(s), a, user, f, limit, offset, out);
}

static bool
fake_session_update(struct store *s, struct arena *a, const char *user,
                    const struct uuid *id, int64_t version,
                    const struct session_change *change, struct session *out,
                    struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_UPDATE, &step);
    struct session *found = find_id(impl(s), user, id);
    bool ok;

    if (failing && !step.applied)
        return end(FAKE_SESSION_UPDATE, failing, &step, false, err);
    ok = found != NULL && found->version == version;
    if (ok) {
        apply(&impl(s)->arena, found, change);
        copy_session(a, found, out);
    } else {
        error_set(err, ERR_NOT_FOUND, NULL, "no session with that version");
    }
    return end(FAKE_SESSION_UPDATE, failing, &step, ok, err);
}

static bool
fake_session_delete(struct store *s, const char *user, const struct uuid *id,
                    int64_t version, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_DELETE, &step);
    struct fake_impl *f = impl(s);
    struct session *found = find_id(f, user, id);
    bool ok;

    if (failing && !step.applied)
        return end(FAKE_SESSION_DELETE, failing, &step, false, err);
    ok = found != NULL && (version < 0 || found->version == version);
    if (ok) {
        size_t i = (size_t)(found - f->sessions);

        memmove(&f->sessions[i], &f->sessions[i + 1],
                (f->len - i - 1) * sizeof(f->sessions[0]));
        f->len--;
    } else {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found");
    }
    return end(FAKE_SESSION_DELETE, failing, &step, ok, err);
}

/* Removes the elements of an array for which drop() says so; returns how
 * many went. */
static size_t
sweep(void *base, size_t *len, size_t size,
      bool (*drop)(const void *elem, const void *arg), const void *arg)
{
    char *p = base;
    size_t kept = 0;

    for (size_t i = 0; i < *len; i++) {
        if (drop(p + i * size, arg))
            continue;
        if (kept != i)
            memmove(p + kept * size, p + i * size, size);
        kept++;
    }
    kept = *len - kept;
    *len -= kept;
    return kept;
}

struct owner {
    const char *user;
    const struct uuid *session;
};

static bool
message_owned(const void *elem, const void *arg)
{
    const struct message *m = elem;
    const struct owner *o = arg;

    return strcmp(m->user_id, o->user) == 0 &&
           uuid_equal(&m->session_uuid, o->session);
}

static bool
idem_owned(const void *elem, const void *arg)
{
    const struct fake_idem *k = elem;
    const struct owner *o = arg;

    return strcmp(k->user, o->user) == 0 && uuid_equal(&k->session, o->session);
}

static bool
memory_owned(const void *elem, const void *arg)
{
    const struct fake_memory *e = elem;
    const struct owner *o = arg;

    return strcmp(e->user, o->user) == 0 && uuid_equal(&e->session, o->session);
}

static bool
fake_session_purge(struct store *s, const char *user, const struct uuid *id,
                   int64_t *messages_deleted, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_PURGE, &step);
    struct fake_impl *f = impl(s);
    struct owner o = {user, id};
    size_t n;

    if (messages_deleted != NULL)
        *messages_deleted = 0;
    if (failing && !step.applied)
        return end(FAKE_SESSION_PURGE, failing, &step, false, err);
    n = sweep(f->messages, &f->nmessages, sizeof(*f->messages), message_owned,
              &o);
    sweep(f->idem, &f->nidem, sizeof(*f->idem), idem_owned, &o);
    sweep(f->memory, &f->nmemory, sizeof(*f->memory), memory_owned, &o);
    if (messages_deleted != NULL && !failing)
        *messages_deleted = (int64_t)n;
    return end(FAKE_SESSION_PURGE, failing, &step, true, err);
}

/* --- counters ------------------------------------------------------------ */

/* Whether counter `have` has room for add under max; a reservation
 * checks only the counters it grows, as the real one does. */
static bool
room(int64_t have, int64_t add, int64_t max)
{
    return add <= 0 || have <= max - add;
}

static void
add_counts(struct session *x, const struct store_counts *c, int64_t now)
{
    x->message_count += c->messages;
    x->content_bytes += c->bytes;
    x->memory_keys += c->memory_keys;
    if (now > x->dirty_at)
        x->dirty_at = now;
}

static bool
fake_session_reserve_seq(struct store *s, struct arena *a, const char *user,
                         const struct uuid *id, const struct store_reserve *r,
                         int64_t now, struct session *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_RESERVE_SEQ, &step);
    struct session *found = r->session_id != NULL
                                ? find_name(impl(s), user, r->session_id)
                                : find_id(impl(s), user, id);
    bool ok;

    if (failing && !step.applied)
        return end(FAKE_SESSION_RESERVE_SEQ, failing, &step, false, err);
    if (r->add.messages < 0 || r->add.bytes < 0 || r->add.memory_keys < 0)
        return error_set(err, ERR_INTERNAL, NULL, "negative reservation");
    ok = found != NULL &&
         (!r->message_write || found->status == STATUS_ACTIVE) &&
         room(found->message_count, r->add.messages, r->max.messages) &&
         room(found->content_bytes, r->add.bytes, r->max.bytes) &&
         room(found->memory_keys, r->add.memory_keys, r->max.memory_keys);
    if (ok) {
        found->last_seq += r->add.messages;
        add_counts(found, &r->add, now);
        if (r->message_write) {
            found->updated_at = now;
            found->last_activity_at = now;
        }
        copy_session(a, found, out);
    } else {
        error_set(err, ERR_NOT_FOUND, NULL, "no session with room");
    }
    return end(FAKE_SESSION_RESERVE_SEQ, failing, &step, ok, err);
}

static bool
fake_session_touch(struct store *s, const char *user, const struct uuid *id,
                   const struct store_counts *delta, int64_t now, bool activity,
                   struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_TOUCH, &step);
    struct session *found = find_id(impl(s), user, id);

    if (failing && !step.applied)
        return end(FAKE_SESSION_TOUCH, failing, &step, false, err);
    if (found == NULL) {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        return end(FAKE_SESSION_TOUCH, failing, &step, false, err);
    }
    /* A count down past 0 only marks it, as the real one. */
    if (found->message_count + delta->messages < 0 ||
        found->content_bytes + delta->bytes < 0 ||
        found->memory_keys + delta->memory_keys < 0) {
        if (now > found->dirty_at)
            found->dirty_at = now;
        return end(FAKE_SESSION_TOUCH, failing, &step, true, err);
    }
    if (delta->messages != 0 || delta->bytes != 0 || delta->memory_keys != 0)
        add_counts(found, delta, now);
    if (activity || (delta->messages == 0 && delta->bytes == 0 &&
                     delta->memory_keys == 0)) {
        found->updated_at = now;
        found->last_activity_at = now;
    }
    return end(FAKE_SESSION_TOUCH, failing, &step, true, err);
}

static bool
fake_session_add_metrics(struct store *s, const char *user,
                         const char *session_id, int64_t requests,
                         int64_t errors, double ms, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_ADD_METRICS, &step);
    struct session *found = find_name(impl(s), user, session_id);

    if (failing && !step.applied)
        return end(FAKE_SESSION_ADD_METRICS, failing, &step, false, err);
    if (found != NULL) {
        found->request_count += requests;
        found->error_count += errors;
        found->total_processing_ms += ms;
    }
    return end(FAKE_SESSION_ADD_METRICS, failing, &step, true, err);
}

static bool
fake_session_mark(struct store *s, struct arena *a, const char *user,
                  const char *session_id, int64_t now, struct session *out,
                  struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_MARK, &step);
    struct session *found = find_name(impl(s), user, session_id);

    if (failing && !step.applied)
        return end(FAKE_SESSION_MARK, failing, &step, false, err);
    if (found == NULL) {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found");
        return end(FAKE_SESSION_MARK, failing, &step, false, err);
    }
    if (now > found->dirty_at)
        found->dirty_at = now;
    copy_session(a, found, out);
    return end(FAKE_SESSION_MARK, failing, &step, true, err);
}

static bool
fake_session_tally(struct store *s, const char *user, const struct uuid *id,
                   int64_t max_seq, struct store_counts *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_TALLY, &step);
    struct fake_impl *f = impl(s);

    memset(out, 0, sizeof(*out));
    if (failing)
        return end(FAKE_SESSION_TALLY, failing, &step, false, err);
    for (size_t i = 0; i < f->nmessages; i++) {
        const struct message *m = &f->messages[i];

        if (strcmp(m->user_id, user) != 0 ||
            !uuid_equal(&m->session_uuid, id) ||
            (max_seq != STORE_NO_SEQ && m->seq > max_seq))
            continue;
        out->messages++;
        out->bytes += m->bytes != 0 ? m->bytes : store_message_bytes(m);
    }
    if (max_seq == STORE_NO_SEQ)
        for (size_t i = 0; i < f->nmemory; i++)
            if (strcmp(f->memory[i].user, user) == 0 &&
                uuid_equal(&f->memory[i].session, id))
                out->memory_keys++;
    return true;
}

static bool
fake_session_set_counts(struct store *s, const char *user,
                        const struct uuid *id, const struct session *seen,
                        const struct store_counts *c, bool *changed,
                        struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_SET_COUNTS, &step);
    struct session *found = find_id(impl(s), user, id);

    *changed = false;
    if (failing && !step.applied)
        return end(FAKE_SESSION_SET_COUNTS, failing, &step, false, err);
    if (found != NULL && found->dirty_at == seen->dirty_at &&
        found->last_seq == seen->last_seq &&
        found->message_count == seen->message_count) {
        found->message_count = c->messages;
        found->content_bytes = c->bytes;
        found->memory_keys = c->memory_keys;
        found->dirty_at = 0;
        *changed = !failing;
    }
    return end(FAKE_SESSION_SET_COUNTS, failing, &step, true, err);
}

static bool
fake_session_add_usage(struct store *s, const char *user, const struct uuid *id,
                       int64_t prompt_tokens, int64_t completion_tokens,
                       struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_ADD_USAGE, &step);
    struct session *found = find_id(impl(s), user, id);

    if (failing && !step.applied)
        return end(FAKE_SESSION_ADD_USAGE, failing, &step, false, err);
    if (found != NULL) {
        found->prompt_tokens += prompt_tokens;
        found->completion_tokens += completion_tokens;
    }
    return end(FAKE_SESSION_ADD_USAGE, failing, &step, true, err);
}

static bool
fake_session_delete_unused(struct store *s, const char *user,
                           const struct uuid *id, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_DELETE_UNUSED, &step);
    struct fake_impl *f = impl(s);
    struct session *found = find_id(f, user, id);
    bool ok;

    if (failing && !step.applied)
        return end(FAKE_SESSION_DELETE_UNUSED, failing, &step, false, err);
    ok = found != NULL && found->message_count == 0;
    if (ok) {
        size_t i = (size_t)(found - f->sessions);

        memmove(&f->sessions[i], &f->sessions[i + 1],
                (f->len - i - 1) * sizeof(f->sessions[0]));
        f->len--;
    } else {
        error_set(err, ERR_NOT_FOUND, NULL, "session not found or used");
    }
    return end(FAKE_SESSION_DELETE_UNUSED, failing, &step, ok, err);
}

/* --- messages ------------------------------------------------------------ */

static struct message *
find_message(struct fake_impl *f, const char *user,
             const struct uuid *session_uuid, const struct uuid *id)
{
    for (size_t i = 0; i < f->nmessages; i++) {
        struct message *m = &f->messages[i];

        if (strcmp(m->user_id, user) == 0 &&
            uuid_equal(&m->session_uuid, session_uuid) &&
            uuid_equal(&m->id, id))
            return m;
    }
    return NULL;
}

static bool
do_message_insert(struct fake_impl *f, const struct message *m,
                  struct error *err)
{
    for (size_t i = 0; i < f->nmessages; i++) {
        if (uuid_equal(&f->messages[i].id, &m->id))
            return error_set(err, ERR_DUPLICATE, NULL, "duplicate _id");
        if (uuid_equal(&f->messages[i].session_uuid, &m->session_uuid) &&
            f->messages[i].seq == m->seq)
            return error_set(err, ERR_DUPLICATE, NULL, "duplicate seq");
        /* The real index is partial: messages without an item_id never
         * collide on it. */
        if (m->item_id != NULL && f->messages[i].item_id != NULL &&
            uuid_equal(&f->messages[i].session_uuid, &m->session_uuid) &&
            strcmp(f->messages[i].item_id, m->item_id) == 0)
            return error_set(err, ERR_DUPLICATE, NULL, "duplicate item_id");
    }
    f->messages =
        grow(f->messages, f->nmessages, &f->cmessages, sizeof(*f->messages));
    copy_message(&f->arena, m, &f->messages[f->nmessages++]);
    return true;
}

static bool
fake_message_insert(struct store *s, const struct message *msgs, size_t n,
                    size_t *inserted, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_INSERT, &step);
    size_t limit = n, count = 0;
    bool ok = true;

    *inserted = 0;
    if (failing && !step.applied)
        return end(FAKE_MESSAGE_INSERT, failing, &step, false, err);
    if (failing && step.partial && step.stored < n)
        limit = step.stored;
    while (ok && count < limit) {
        ok = do_message_insert(impl(s), &msgs[count], err);
        if (ok)
            count++;
    }
    if (failing) {
        *inserted = step.partial ? step.reported : 0;
        return end(FAKE_MESSAGE_INSERT, failing, &step, false, err);
    }
    *inserted = count;
    return ok;
}

struct id_set {
    const char *user;
    const struct uuid *ids;
    size_t n;
};

static bool
message_listed(const void *elem, const void *arg)
{
    const struct message *m = elem;
    const struct id_set *set = arg;

    if (strcmp(m->user_id, set->user) != 0)
        return false;
    for (size_t i = 0; i < set->n; i++)
        if (uuid_equal(&m->id, &set->ids[i]))
            return true;
    return false;
}

static bool
fake_message_delete_ids(struct store *s, const char *user,
                        const struct uuid *ids, size_t n, int64_t *deleted,
                        struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_DELETE_IDS, &step);
    struct fake_impl *f = impl(s);
    struct id_set set = {user, ids, n};
    size_t gone;

    if (deleted != NULL)
        *deleted = 0;
    if (failing && !step.applied)
        return end(FAKE_MESSAGE_DELETE_IDS, failing, &step, false, err);
    gone = sweep(f->messages, &f->nmessages, sizeof(*f->messages),
                 message_listed, &set);
    if (deleted != NULL && !failing)
        *deleted = (int64_t)gone;
    return end(FAKE_MESSAGE_DELETE_IDS, failing, &step, true, err);
}

static bool
fake_message_get(struct store *s, struct arena *a, const char *user,
                 const struct uuid *session_uuid, const struct uuid *id,
                 struct message *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_GET, &step);
    struct message *found = find_message(impl(s), user, session_uuid, id);

    if (failing)
        return end(FAKE_MESSAGE_GET, failing, &step, false, err);
    if (found == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "message not found");
    copy_message(a, found, out);
    return true;
}

static bool
fake_message_get_item(struct store *s, struct arena *a, const char *user,
                      const struct uuid *session_uuid, const char *item_id,
                      struct message *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_GET_ITEM, &step);
    struct fake_impl *f = impl(s);

    if (failing)
        return end(FAKE_MESSAGE_GET_ITEM, failing, &step, false, err);
    for (size_t i = 0; i < f->nmessages; i++) {
        const struct message *m = &f->messages[i];

        if (m->item_id != NULL && strcmp(m->user_id, user) == 0 &&
            uuid_equal(&m->session_uuid, session_uuid) &&
            strcmp(m->item_id, item_id) == 0) {
            copy_message(a, m, out);
            return true;
        }
    }
    return error_set(err, ERR_NOT_FOUND, NULL, "item not found");
}

static bool
message_matches(const struct message *m, const char *user,
                const struct uuid *session_uuid, const struct message_filter *f)
{
    if (strcmp(m->user_id, user) != 0 ||
        !uuid_equal(&m->session_uuid, session_uuid))
        return false;
    if (f == NULL)
        return true;
    if (f->after_seq != STORE_NO_SEQ && m->seq <= f->after_seq)
        return false;
    if (f->before_seq != STORE_NO_SEQ && m->seq >= f->before_seq)
        return false;
    if (f->role >= 0 && (int)m->role != f->role)
        return false;
    if (f->search != NULL && strcasestr(m->content, f->search) == NULL)
        return false;
    if (f->created_after != STORE_NO_TIME && m->created_at <= f->created_after)
        return false;
    if (f->created_before != STORE_NO_TIME &&
        m->created_at >= f->created_before)
        return false;
    return true;
}

static int
compare_seq(const void *pa, const void *pb, void *arg)
{
    const struct message *a = *(const struct message *const *)pa;
    const struct message *b = *(const struct message *const *)pb;
    bool desc = *(const bool *)arg;
    int c = a->seq < b->seq ? -1 : a->seq > b->seq;

    return desc ? -c : c;
}

static bool
fake_message_list(struct store *s, struct arena *a, const char *user,
                  const struct uuid *session_uuid,
                  const struct message_filter *filter, int64_t limit,
                  int64_t offset, struct message_page *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_LIST, &step);
    struct fake_impl *f = impl(s);
    const struct message **hits;
    bool desc = filter != NULL && filter->descending;
    size_t n = 0;

    if (failing)
        return end(FAKE_MESSAGE_LIST, failing, &step, false, err);
    if (offset < 0)
        offset = 0;
    if (limit < 0)
        limit = 0;
    hits = malloc((f->nmessages + 1) * sizeof(*hits));
    if (hits == NULL)
        abort();
    for (size_t i = 0; i < f->nmessages; i++)
        if (message_matches(&f->messages[i], user, session_uuid, filter))
            hits[n++] = &f->messages[i];
    qsort_r(hits, n, sizeof(*hits), compare_seq, &desc);
    out->total = filter != NULL && filter->no_total ? -1 : (int64_t)n;
    out->len = 0;
    out->items = arena_alloc(a, sizeof(*out->items) * (size_t)limit + 1);
    for (int64_t i = offset; i < (int64_t)n && i < offset + limit; i++)
        copy_message(a, hits[i], &out->items[out->len++]);
    out->has_more = offset + limit < (int64_t)n;
    free(hits);
    return true;
}

static bool
fake_message_update(struct store *s, struct arena *a, const char *user,
                    const struct uuid *session_uuid, const struct uuid *id,
                    const struct message_change *change, struct message *out,
                    struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_UPDATE, &step);
    struct fake_impl *f = impl(s);
    struct message *found = find_message(f, user, session_uuid, id);

    if (failing && !step.applied)
        return end(FAKE_MESSAGE_UPDATE, failing, &step, false, err);
    /* The condition on updated_at: as read, or already this change's. */
    if (found == NULL || (change->if_updated_at != STORE_NO_TIME &&
                          found->updated_at != change->if_updated_at &&
                          found->updated_at != change->now)) {
        error_set(err, ERR_NOT_FOUND, NULL, "message not found");
        return end(FAKE_MESSAGE_UPDATE, failing, &step, false, err);
    }
    found->bytes = change->bytes;
    if (change->fields & SET_CONTENT)
        found->content = dup_str(&f->arena, change->content);
    if (change->fields & SET_EXTRA_DATA)
        found->extra_data = dup_extra(&f->arena, change->extra_data);
    if (change->fields & CLEAR_ITEM)
        found->item = NULL;
    found->updated_at = change->now;
    copy_message(a, found, out);
    return end(FAKE_MESSAGE_UPDATE, failing, &step, true, err);
}

static bool
fake_message_delete(struct store *s, const char *user,
                    const struct uuid *session_uuid, const struct uuid *id,
                    int64_t *bytes, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_DELETE, &step);
    struct fake_impl *f = impl(s);
    struct message *found = find_message(f, user, session_uuid, id);

    *bytes = 0;
    if (failing && !step.applied)
        return end(FAKE_MESSAGE_DELETE, failing, &step, false, err);
    if (found == NULL) {
        error_set(err, ERR_NOT_FOUND, NULL, "message not found");
        return end(FAKE_MESSAGE_DELETE, failing, &step, false, err);
    }
    *bytes = found->bytes != 0 ? found->bytes : store_message_bytes(found);
    memmove(found, found + 1,
            (size_t)(f->messages + f->nmessages - found - 1) * sizeof(*found));
    f->nmessages--;
    return end(FAKE_MESSAGE_DELETE, failing, &step, true, err);
}

struct owner_upto {
    const char *user;
    const struct uuid *session;
    int64_t max_seq;
};

static bool
message_owned_upto(const void *elem, const void *arg)
{
    const struct message *m = elem;
    const struct owner_upto *o = arg;

    return strcmp(m->user_id, o->user) == 0 &&
           uuid_equal(&m->session_uuid, o->session) &&
           (o->max_seq == STORE_NO_SEQ || m->seq <= o->max_seq);
}

static bool
fake_message_clear(struct store *s, const char *user,
                   const struct uuid *session_uuid, int64_t max_seq,
                   int64_t *deleted, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_CLEAR, &step);
    struct fake_impl *f = impl(s);
    struct owner_upto o = {user, session_uuid, max_seq};
    size_t n;

    if (deleted != NULL)
        *deleted = 0;
    if (failing && !step.applied)
        return end(FAKE_MESSAGE_CLEAR, failing, &step, false, err);
    n = sweep(f->messages, &f->nmessages, sizeof(*f->messages),
              message_owned_upto, &o);
    if (deleted != NULL && !failing)
        *deleted = (int64_t)n;
    return end(FAKE_MESSAGE_CLEAR, failing, &step, true, err);
}

static bool
fake_message_get_many(struct store *s, struct arena *a, const char *user,
                      const struct uuid *session_uuid, const struct uuid *ids,
                      size_t n, struct message *out, bool *found,
                      struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MESSAGE_GET_MANY, &step);

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (failing)
        return end(FAKE_MESSAGE_GET_MANY, failing, &step, false, err);
    for (size_t i = 0; i < n; i++) {
        struct message *m = find_message(impl(s), user, session_uuid, &ids[i]);

        if (m != NULL) {
            copy_message(a, m, &out[i]);
            found[i] = true;
        }
    }
    return true;
}

/* --- idempotency keys ---------------------------------------------------- */

static struct fake_idem *
find_idem(struct fake_impl *f, const char *user,
          const struct uuid *session_uuid, const char *key)
{
    for (size_t i = 0; i < f->nidem; i++) {
        struct fake_idem *k = &f->idem[i];

        if (strcmp(k->user, user) == 0 &&
            uuid_equal(&k->session, session_uuid) && strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

static bool
fake_idem_claim(struct store *s, const char *user,
                const struct uuid *session_uuid, const char *key,
                const struct idem_key *k, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_CLAIM, &step);
    struct fake_impl *f = impl(s);
    struct fake_idem *slot;

    if (failing && !step.applied)
        return end(FAKE_IDEM_CLAIM, failing, &step, false, err);
    if (find_idem(f, user, session_uuid, key) != NULL) {
        error_set(err, ERR_DUPLICATE, NULL, "duplicate idempotency key");
        return end(FAKE_IDEM_CLAIM, failing, &step, false, err);
    }
    f->idem = grow(f->idem, f->nidem, &f->cidem, sizeof(*f->idem));
    slot = &f->idem[f->nidem++];
    slot->session = *session_uuid;
    slot->user = arena_strdup(&f->arena, user);
    slot->key = arena_strdup(&f->arena, key);
    slot->k = *k;
    return end(FAKE_IDEM_CLAIM, failing, &step, true, err);
}

static bool
fake_idem_get(struct store *s, const char *user,
              const struct uuid *session_uuid, const char *key,
              struct idem_key *out, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_GET, &step);
    struct fake_idem *found = find_idem(impl(s), user, session_uuid, key);

    if (failing)
        return end(FAKE_IDEM_GET, failing, &step, false, err);
    if (found == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "idempotency key not found");
    *out = found->k;
    return true;
}

static bool
fake_idem_get_many(struct store *s, const char *user,
                   const struct uuid *session_uuid, const char *const *keys,
                   size_t n, struct idem_key *out, bool *found,
                   struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_GET_MANY, &step);

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (failing)
        return end(FAKE_IDEM_GET_MANY, failing, &step, false, err);
    for (size_t i = 0; i < n; i++) {
        struct fake_idem *k = find_idem(impl(s), user, session_uuid, keys[i]);

        if (k != NULL) {
            out[i] = k->k;
            found[i] = true;
        }
    }
    return true;
}

static bool
fake_idem_claim_many(struct store *s, const char *user,
                     const struct uuid *session_uuid, const char *const *keys,
                     const struct idem_key *k, size_t n, bool *claimed,
                     struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_CLAIM_MANY, &step);
    struct fake_impl *f = impl(s);

    for (size_t i = 0; i < n; i++)
        claimed[i] = false;
    if (failing && !step.applied)
        return end(FAKE_IDEM_CLAIM_MANY, failing, &step, false, err);
    for (size_t i = 0; i < n; i++) {
        struct fake_idem *slot;

        if (find_idem(f, user, session_uuid, keys[i]) != NULL)
            continue;
        f->idem = grow(f->idem, f->nidem, &f->cidem, sizeof(*f->idem));
        slot = &f->idem[f->nidem++];
        slot->session = *session_uuid;
        slot->user = arena_strdup(&f->arena, user);
        slot->key = arena_strdup(&f->arena, keys[i]);
        slot->k = k[i];
        claimed[i] = !failing;
    }
    return end(FAKE_IDEM_CLAIM_MANY, failing, &step, true, err);
}

static bool
fake_idem_complete_many(struct store *s, const char *user,
                        const struct uuid *session_uuid,
                        const char *const *keys, const struct uuid *ids,
                        const int64_t *seqs, size_t n, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_COMPLETE_MANY, &step);

    if (failing && !step.applied)
        return end(FAKE_IDEM_COMPLETE_MANY, failing, &step, false, err);
    for (size_t i = 0; i < n; i++) {
        struct fake_idem *found =
            find_idem(impl(s), user, session_uuid, keys[i]);

        if (found != NULL && uuid_equal(&found->k.message_id, &ids[i]))
            found->k.seq = seqs[i];
    }
    return end(FAKE_IDEM_COMPLETE_MANY, failing, &step, true, err);
}

static bool
fake_idem_replace(struct store *s, const char *user,
                  const struct uuid *session_uuid, const char *key,
                  const struct uuid *expected, const struct idem_key *k,
                  struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_REPLACE, &step);
    struct fake_idem *found = find_idem(impl(s), user, session_uuid, key);

    if (failing && !step.applied)
        return end(FAKE_IDEM_REPLACE, failing, &step, false, err);
    if (found == NULL || !uuid_equal(&found->k.message_id, expected)) {
        error_set(err, ERR_NOT_FOUND, NULL, "idempotency key changed");
        return end(FAKE_IDEM_REPLACE, failing, &step, false, err);
    }
    found->k = *k;
    return end(FAKE_IDEM_REPLACE, failing, &step, true, err);
}

static bool
fake_idem_complete(struct store *s, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   const struct uuid *message_id, int64_t seq,
                   struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_COMPLETE, &step);
    struct fake_idem *found = find_idem(impl(s), user, session_uuid, key);

    if (failing && !step.applied)
        return end(FAKE_IDEM_COMPLETE, failing, &step, false, err);
    if (found == NULL || !uuid_equal(&found->k.message_id, message_id)) {
        error_set(err, ERR_NOT_FOUND, NULL,
                  "idempotency key names another message");
        return end(FAKE_IDEM_COMPLETE, failing, &step, false, err);
    }
    found->k.seq = seq;
    return end(FAKE_IDEM_COMPLETE, failing, &step, true, err);
}

static bool
fake_idem_release(struct store *s, const char *user,
                  const struct uuid *session_uuid, const char *key,
                  const struct uuid *message_id, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_IDEM_RELEASE, &step);
    struct fake_impl *f = impl(s);
    struct fake_idem *found = find_idem(f, user, session_uuid, key);

    if (failing && !step.applied)
        return end(FAKE_IDEM_RELEASE, failing, &step, false, err);
    if (found != NULL && uuid_equal(&found->k.message_id, message_id)) {
        memmove(found, found + 1,
                (size_t)(f->idem + f->nidem - found - 1) * sizeof(*found));
        f->nidem--;
    }
    return end(FAKE_IDEM_RELEASE, failing, &step, true, err);
}

/* --- memory -------------------------------------------------------------- */

/* By session and key alone, the unique key; the caller checks the user. */
static struct fake_memory *
find_memory(struct fake_impl *f, const struct uuid *session_uuid,
            const char *key)
{
    for (size_t i = 0; i < f->nmemory; i++)
        if (uuid_equal(&f->memory[i].session, session_uuid) &&
            strcmp(f->memory[i].key, key) == 0)
            return &f->memory[i];
    return NULL;
}

static int
compare_key(const void *pa, const void *pb)
{
    const struct fake_memory *a = *(const struct fake_memory *const *)pa;
    const struct fake_memory *b = *(const struct fake_memory *const *)pb;

    return strcmp(a->key, b->key);
}

static bool
fake_memory_list(struct store *s, struct arena *a, const char *user,
                 const struct uuid *session_uuid, const char *after,
                 int64_t limit, struct json_value **out_object,
                 struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MEMORY_LIST, &step);
    struct fake_impl *f = impl(s);
    const struct fake_memory **hits;
    size_t n = 0;

    if (failing)
        return end(FAKE_MEMORY_LIST, failing, &step, false, err);
    hits = malloc((f->nmemory + 1) * sizeof(*hits));
    if (hits == NULL)
        abort();
    for (size_t i = 0; i < f->nmemory; i++)
        if (strcmp(f->memory[i].user, user) == 0 &&
            uuid_equal(&f->memory[i].session, session_uuid) &&
            (after == NULL || strcmp(f->memory[i].key, after) > 0))
            hits[n++] = &f->memory[i];
    qsort(hits, n, sizeof(*hits), compare_key);
    if (limit < 0)
        limit = 0;
    if ((int64_t)n > limit)
        n = (size_t)limit;
    *out_object = json_new_object(a, n);
    for (size_t i = 0; i < n; i++)
        json_object_put(a, *out_object, hits[i]->key, strlen(hits[i]->key),
                        dup_json(a, hits[i]->value));
    free(hits);
    return true;
}

static bool
fake_memory_get(struct store *s, struct arena *a, const char *user,
                const struct uuid *session_uuid, const char *key,
                struct json_value **out_value, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MEMORY_GET, &step);
    struct fake_memory *found = find_memory(impl(s), session_uuid, key);

    if (failing)
        return end(FAKE_MEMORY_GET, failing, &step, false, err);
    if (found == NULL || strcmp(found->user, user) != 0)
        return error_set(err, ERR_NOT_FOUND, NULL, "memory key not found");
    *out_value = dup_json(a, found->value);
    return true;
}

static bool
fake_memory_put(struct store *s, const char *user,
                const struct uuid *session_uuid, const char *key,
                const struct json_value *value, int64_t now, bool insert,
                struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MEMORY_PUT, &step);
    struct fake_impl *f = impl(s);
    struct fake_memory *found = find_memory(f, session_uuid, key);
    struct json_value null_value = {.type = JSON_NULL};

    if (failing && !step.applied)
        return end(FAKE_MEMORY_PUT, failing, &step, false, err);
    if (insert && found != NULL) {
        /* The real insert meets the unique _id, whoever's it is. */
        error_set(err, ERR_DUPLICATE, NULL, "duplicate memory _id");
        return end(FAKE_MEMORY_PUT, failing, &step, false, err);
    }
    if (!insert && (found == NULL || strcmp(found->user, user) != 0)) {
        error_set(err, ERR_NOT_FOUND, NULL, "memory key not found");
        return end(FAKE_MEMORY_PUT, failing, &step, false, err);
    }
    if (found == NULL) {
        f->memory =
            grow(f->memory, f->nmemory, &f->cmemory, sizeof(*f->memory));
        found = &f->memory[f->nmemory++];
        found->session = *session_uuid;
        found->user = arena_strdup(&f->arena, user);
        found->key = arena_strdup(&f->arena, key);
    }
    found->value = dup_json(&f->arena, value != NULL ? value : &null_value);
    found->updated_at = now;
    return end(FAKE_MEMORY_PUT, failing, &step, true, err);
}

static bool
fake_memory_delete(struct store *s, const char *user,
                   const struct uuid *session_uuid, const char *key,
                   struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_MEMORY_DELETE, &step);
    struct fake_impl *f = impl(s);
    struct fake_memory *found = find_memory(f, session_uuid, key);

    if (failing && !step.applied)
        return end(FAKE_MEMORY_DELETE, failing, &step, false, err);
    if (found == NULL || strcmp(found->user, user) != 0) {
        error_set(err, ERR_NOT_FOUND, NULL, "memory key not found");
        return end(FAKE_MEMORY_DELETE, failing, &step, false, err);
    }
    memmove(found, found + 1,
            (size_t)(f->memory + f->nmemory - found - 1) * sizeof(*found));
    f->nmemory--;
    return end(FAKE_MEMORY_DELETE, failing, &step, true, err);
}

/* --- sweeper, stats, erasure --------------------------------------------- */

/* The rule's condition, as store_mongo.c's mongo_sweep_filter(). */
static bool
sweep_matches(const struct session *s, enum sweep_rule rule, int64_t cutoff)
{
    switch (rule) {
    case SWEEP_AGE:
        return s->created_at < cutoff;
    case SWEEP_INACTIVE:
        return s->status != STATUS_ACTIVE && s->last_activity_at < cutoff &&
               s->updated_at < cutoff;
    case SWEEP_IDLE:
        return s->status == STATUS_ACTIVE && s->last_activity_at < cutoff;
    }
    return false;
}

static bool
fake_sweep_candidates(struct store *s, struct arena *a, enum sweep_rule rule,
                      int64_t cutoff, int64_t limit,
                      struct sweep_candidate **out, size_t *n,
                      struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SWEEP_CANDIDATES, &step);
    struct fake_impl *f = impl(s);

    *out = NULL;
    *n = 0;
    if (failing)
        return end(FAKE_SWEEP_CANDIDATES, failing, &step, false, err);
    *out = arena_alloc(a, (size_t)(limit > 0 ? limit : 0) * sizeof(**out) + 1);
    for (size_t i = 0; i < f->len && (int64_t)*n < limit; i++) {
        if (!sweep_matches(&f->sessions[i], rule, cutoff))
            continue;
        (*out)[*n].id = f->sessions[i].id;
        (*out)[*n].user_id = arena_strdup(a, f->sessions[i].user_id);
        (*n)++;
    }
    return true;
}

static bool
fake_sweep_expire_one(struct store *s, const struct sweep_candidate *c,
                      int64_t cutoff, int64_t now, bool *changed,
                      struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SWEEP_EXPIRE_ONE, &step);
    struct session *found = find_id(impl(s), c->user_id, &c->id);

    *changed = false;
    if (failing && !step.applied)
        return end(FAKE_SWEEP_EXPIRE_ONE, failing, &step, false, err);
    if (found != NULL && sweep_matches(found, SWEEP_IDLE, cutoff)) {
        found->status = STATUS_EXPIRED;
        found->version++;
        found->updated_at = now;
        *changed = !failing;
    }
    return end(FAKE_SWEEP_EXPIRE_ONE, failing, &step, true, err);
}

static bool
fake_sweep_delete_one(struct store *s, enum sweep_rule rule,
                      const struct sweep_candidate *c, int64_t cutoff,
                      bool *deleted, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SWEEP_DELETE_ONE, &step);
    struct fake_impl *f = impl(s);
    struct session *found = find_id(f, c->user_id, &c->id);

    *deleted = false;
    if (failing && !step.applied)
        return end(FAKE_SWEEP_DELETE_ONE, failing, &step, false, err);
    if (rule == SWEEP_IDLE)
        return error_set(err, ERR_INTERNAL, NULL, "the idle rule deletes");
    if (found != NULL && sweep_matches(found, rule, cutoff)) {
        size_t i = (size_t)(found - f->sessions);

        memmove(&f->sessions[i], &f->sessions[i + 1],
                (f->len - i - 1) * sizeof(f->sessions[0]));
        f->len--;
        *deleted = !failing;
    }
    return end(FAKE_SWEEP_DELETE_ONE, failing, &step, true, err);
}

static bool
fake_session_stats(struct store *s, const char *user, struct session_stats *out,
                   struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_SESSION_STATS, &step);
    struct fake_impl *f = impl(s);

    memset(out, 0, sizeof(*out));
    if (failing)
        return end(FAKE_SESSION_STATS, failing, &step, false, err);
    for (size_t i = 0; i < f->len; i++) {
        const struct session *x = &f->sessions[i];

        if (user != NULL && strcmp(x->user_id, user) != 0)
            continue;
        out->total_sessions++;
        out->by_status[x->status]++;
        out->total_messages += x->message_count;
    }
    return true;
}

struct user_limit {
    const char *user;
    int64_t *left; /* how many more may go */
};

static bool
session_of_user(const void *elem, const void *arg)
{
    const struct session *x = elem;
    const struct user_limit *u = arg;

    if (*u->left == 0 || strcmp(x->user_id, u->user) != 0)
        return false;
    (*u->left)--;
    return true;
}

static bool
message_of_user(const void *elem, const void *arg)
{
    const struct message *m = elem;
    const struct user_limit *u = arg;

    if (*u->left == 0 || strcmp(m->user_id, u->user) != 0)
        return false;
    (*u->left)--;
    return true;
}

static bool
memory_of_user(const void *elem, const void *arg)
{
    const struct fake_memory *e = elem;
    const struct user_limit *u = arg;

    if (*u->left == 0 || strcmp(e->user, u->user) != 0)
        return false;
    (*u->left)--;
    return true;
}

static bool
idem_of_user(const void *elem, const void *arg)
{
    const struct fake_idem *k = elem;
    const struct user_limit *u = arg;

    if (*u->left == 0 || strcmp(k->user, u->user) != 0)
        return false;
    (*u->left)--;
    return true;
}

static bool
tomb_of_user(const void *elem, const void *arg)
{
    const struct fake_tombstone *t = elem;
    const struct user_limit *u = arg;

    if (*u->left == 0 || strcmp(t->user, u->user) != 0)
        return false;
    (*u->left)--;
    return true;
}

static bool
counter_of_user(const void *elem, const void *arg)
{
    const struct fake_user *x = elem;
    const struct user_limit *u = arg;

    if (*u->left == 0 || strcmp(x->user, u->user) != 0)
        return false;
    (*u->left)--;
    return true;
}

static bool
fake_user_delete_batch(struct store *s, enum store_collection coll,
                       const char *user, int64_t limit, int64_t *deleted,
                       struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_USER_DELETE_BATCH, &step);
    struct fake_impl *f = impl(s);
    int64_t left = limit;
    struct user_limit u = {user, &left};
    size_t n = 0;

    *deleted = 0;
    if (failing && !step.applied)
        return end(FAKE_USER_DELETE_BATCH, failing, &step, false, err);
    switch (coll) {
    case STORE_SESSIONS:
        n = sweep(f->sessions, &f->len, sizeof(*f->sessions), session_of_user,
                  &u);
        break;
    case STORE_MESSAGES:
        n = sweep(f->messages, &f->nmessages, sizeof(*f->messages),
                  message_of_user, &u);
        break;
    case STORE_MEMORY:
        n = sweep(f->memory, &f->nmemory, sizeof(*f->memory), memory_of_user,
                  &u);
        break;
    case STORE_IDEMPOTENCY:
        n = sweep(f->idem, &f->nidem, sizeof(*f->idem), idem_of_user, &u);
        break;
    case STORE_TOMBSTONES:
        n = sweep(f->tombs, &f->ntombs, sizeof(*f->tombs), tomb_of_user, &u);
        break;
    case STORE_USERS:
        n = sweep(f->users, &f->nusers, sizeof(*f->users), counter_of_user, &u);
        break;
    }
    if (!failing)
        *deleted = (int64_t)n;
    return end(FAKE_USER_DELETE_BATCH, failing, &step, true, err);
}

/* --- tombstones ---------------------------------------------------------- */

static struct fake_tombstone *
find_tomb(struct fake_impl *f, const char *user, const struct uuid *id)
{
    for (size_t i = 0; i < f->ntombs; i++)
        if (strcmp(f->tombs[i].user, user) == 0 &&
            uuid_equal(&f->tombs[i].session, id))
            return &f->tombs[i];
    return NULL;
}

static bool
fake_tombstone_put(struct store *s, const char *user, const struct uuid *id,
                   int64_t now, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_TOMBSTONE_PUT, &step);
    struct fake_impl *f = impl(s);
    struct fake_tombstone *t;

    if (failing && !step.applied)
        return end(FAKE_TOMBSTONE_PUT, failing, &step, false, err);
    t = find_tomb(f, user, id);
    if (t == NULL) {
        f->tombs = grow(f->tombs, f->ntombs, &f->ctombs, sizeof(*f->tombs));
        t = &f->tombs[f->ntombs++];
        t->session = *id;
        t->user = arena_strdup(&f->arena, user);
    }
    t->at = now;
    return end(FAKE_TOMBSTONE_PUT, failing, &step, true, err);
}

static bool
fake_tombstone_delete(struct store *s, const char *user, const struct uuid *id,
                      struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_TOMBSTONE_DELETE, &step);
    struct fake_impl *f = impl(s);
    struct fake_tombstone *t;

    if (failing && !step.applied)
        return end(FAKE_TOMBSTONE_DELETE, failing, &step, false, err);
    t = find_tomb(f, user, id);
    if (t != NULL) {
        size_t i = (size_t)(t - f->tombs);

        memmove(&f->tombs[i], &f->tombs[i + 1],
                (f->ntombs - i - 1) * sizeof(f->tombs[0]));
        f->ntombs--;
    }
    return end(FAKE_TOMBSTONE_DELETE, failing, &step, true, err);
}

/* Oldest first, as the real one reads them off its "at" index. */
static bool
fake_tombstone_list(struct store *s, struct arena *a, int64_t cutoff,
                    int64_t limit, struct sweep_candidate **out, size_t *n,
                    struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_TOMBSTONE_LIST, &step);
    struct fake_impl *f = impl(s);
    int64_t last = INT64_MIN;

    *out = NULL;
    *n = 0;
    if (failing)
        return end(FAKE_TOMBSTONE_LIST, failing, &step, false, err);
    *out = arena_alloc(a, (size_t)(limit > 0 ? limit : 0) * sizeof(**out) + 1);
    /* Selection by increasing at; ties in insertion order. */
    while ((int64_t)*n < limit) {
        const struct fake_tombstone *next = NULL;

        for (size_t i = 0; i < f->ntombs; i++) {
            const struct fake_tombstone *t = &f->tombs[i];

            if (t->at >= cutoff || t->at < last)
                continue;
            if (t->at == last && *n > 0) {
                bool taken = false;

                for (size_t k = 0; k < *n && !taken; k++)
                    taken = uuid_equal(&(*out)[k].id, &t->session) &&
                            strcmp((*out)[k].user_id, t->user) == 0;
                if (taken)
                    continue;
            }
            if (next == NULL || t->at < next->at)
                next = t;
        }
        if (next == NULL)
            break;
        (*out)[*n].id = next->session;
        (*out)[*n].user_id = arena_strdup(a, next->user);
        last = next->at;
        (*n)++;
    }
    return true;
}

/* --- user counters and recounts ----------------------------------------- */

static struct fake_user *
find_user(struct fake_impl *f, const char *user)
{
    for (size_t i = 0; i < f->nusers; i++)
        if (strcmp(f->users[i].user, user) == 0)
            return &f->users[i];
    return NULL;
}

static bool
fake_user_count(struct store *s, const char *user, int64_t delta, int64_t max,
                int64_t now, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_USER_COUNT, &step);
    struct fake_impl *f = impl(s);
    struct fake_user *u = find_user(f, user);

    if (failing && !step.applied)
        return end(FAKE_USER_COUNT, failing, &step, false, err);
    if (u == NULL && delta > 0) {
        f->users = grow(f->users, f->nusers, &f->cusers, sizeof(*f->users));
        u = &f->users[f->nusers++];
        memset(u, 0, sizeof(*u));
        u->user = arena_strdup(&f->arena, user);
    }
    if (u == NULL)
        return end(FAKE_USER_COUNT, failing, &step, true, err);
    if (delta > 0 && u->c.sessions + delta > max) {
        error_set(err, ERR_QUOTA_EXCEEDED, NULL, "the user has %lld sessions",
                  (long long)u->c.sessions);
        return end(FAKE_USER_COUNT, failing, &step, false, err);
    }
    if (u->c.sessions + delta >= 0)
        u->c.sessions += delta;
    if (now > u->c.dirty_at)
        u->c.dirty_at = now;
    return end(FAKE_USER_COUNT, failing, &step, true, err);
}

static bool
fake_user_get(struct store *s, const char *user, struct user_counter *out,
              struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_USER_GET, &step);
    struct fake_user *u = find_user(impl(s), user);

    memset(out, 0, sizeof(*out));
    if (failing)
        return end(FAKE_USER_GET, failing, &step, false, err);
    if (u == NULL)
        return error_set(err, ERR_NOT_FOUND, NULL, "no user counter");
    *out = u->c;
    return true;
}

static bool
fake_user_set_count(struct store *s, const char *user,
                    const struct user_counter *seen, int64_t sessions,
                    bool *changed, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_USER_SET_COUNT, &step);
    struct fake_user *u = find_user(impl(s), user);

    *changed = false;
    if (failing && !step.applied)
        return end(FAKE_USER_SET_COUNT, failing, &step, false, err);
    if (u != NULL && u->c.dirty_at == seen->dirty_at &&
        u->c.sessions == seen->sessions) {
        u->c.sessions = sessions;
        u->c.dirty_at = 0;
        *changed = !failing;
    }
    return end(FAKE_USER_SET_COUNT, failing, &step, true, err);
}

static bool
fake_dirty_list(struct store *s, struct arena *a, enum store_collection coll,
                int64_t cutoff, int64_t limit, struct sweep_candidate **out,
                size_t *n, struct error *err)
{
    struct fake_step step;
    bool failing = begin(s, FAKE_DIRTY_LIST, &step);
    struct fake_impl *f = impl(s);

    *out = NULL;
    *n = 0;
    if (failing)
        return end(FAKE_DIRTY_LIST, failing, &step, false, err);
    *out = arena_calloc(a, (size_t)(limit > 0 ? limit : 0) * sizeof(**out) + 1);
    if (coll == STORE_USERS) {
        for (size_t i = 0; i < f->nusers && (int64_t)*n < limit; i++)
            if (f->users[i].c.dirty_at != 0 && f->users[i].c.dirty_at < cutoff)
                (*out)[(*n)++].user_id = arena_strdup(a, f->users[i].user);
        return true;
    }
    for (size_t i = 0; i < f->len && (int64_t)*n < limit; i++) {
        const struct session *x = &f->sessions[i];

        if (x->dirty_at == 0 || x->dirty_at >= cutoff)
            continue;
        (*out)[*n].id = x->id;
        (*out)[*n].user_id = arena_strdup(a, x->user_id);
        (*n)++;
    }
    return true;
}

size_t
fake_store_user_sessions(const struct store *s, const char *user)
{
    const struct fake_user *u = find_user(impl(s), user);

    return u != NULL ? (size_t)u->c.sessions : 0;
}

static void
fake_free(struct store *s)
{
    struct fake_impl *f = impl(s);

    arena_release(&f->arena);
    free(f->sessions);
    free(f->messages);
    free(f->idem);
    free(f->memory);
    free(f->tombs);
    free(f->users);
    free(f);
    free(s);
}

#define FAKE_OPERATION(name, NAME) .name = fake_##name,
static const struct store_backend fake_backend = {
    .name = "fake",
    .free = fake_free,
    /* .ping = fake_ping, ... for every operation in store.h's list */
    STORE_OPERATIONS(FAKE_OPERATION)};
#undef FAKE_OPERATION

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

void
fake_message(struct message *m, struct arena *a, const struct session *sess,
             int64_t seq, enum message_role role, const char *content,
             int64_t now)
{
    memset(m, 0, sizeof(*m));
    uuid_generate(&m->id);
    m->session_uuid = sess->id;
    m->user_id = arena_strdup(a, sess->user_id);
    m->session_id = arena_strdup(a, sess->session_id);
    m->seq = seq;
    m->role = role;
    m->content = arena_strdup(a, content);
    m->created_at = now;
    m->updated_at = now;
}

/*
 * mongo_explain.c - every query shape parley issues, explained on a real
 * mongod (tests/explain.sh starts the replica set and runs this).
 *
 *   tests/mongo_explain URI DATABASE
 *
 * It seeds DATABASE through parley's own store (store_mongo.c: the
 * documents and indexes are exactly parley's), turns the profiler on for
 * it ({profile: 2, slowms: 0}, a capped system.profile of its own size),
 * then runs each shape, named below, through the store's functions.
 * Every command the store sent for a shape is read back from
 * system.profile (so what is checked is what parley issued, not a copy),
 * run again under `explain` with verbosity executionStats, and checked:
 *
 *   - the plan uses only the shape's intended indexes (IXSCAN, COUNT_SCAN
 *     or IDHACK on them), and at least one;
 *   - no COLLSCAN and no blocking SORT stage anywhere in the plan;
 *   - keys and documents examined within the shape's bound: the
 *     documents it returned, matched or deleted plus SLACK for exact
 *     shapes; plus the offset for a page by offset (skip reads what it
 *     skips); twice the returned for a delete by a list of _ids ($in
 *     seeks each); the documents of the session or the user for filters
 *     no index can bound (a regex search, agent_name, created_* on
 *     messages, stats: the per-session and per-user quotas bound them);
 *   - every hint names an index that exists (explain fails otherwise).
 *
 * Inserts have no plan and are only counted.  It prints one line per
 * command (shape, operation, collection, indexes, keys/docs examined,
 * returned, bound, verdict) and the indexes no shape used, and exits 0
 * when every check held, 1 otherwise.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libbson's atomics cast const away (Debian 12's 1.23). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <mongoc/mongoc.h>
#pragma GCC diagnostic pop

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "store.h"
#include "store_mongo.h"
#include "uuid.h"
#include "banned.h"

/* What an exact shape may examine beyond what it returns: the index scan
 * looks at one key past its range, a SORT_MERGE of k statuses one per
 * input, a limit+1 page one document more. */
#define SLACK 6

/* One message of 40 bytes, within quotas no seed comes near. */
static const struct store_reserve one_message = {
    {1, 40, 0}, {1000000000, INT64_C(1) << 40, 1000000000}, true, NULL};

/* The seed. */
#define A_SESSIONS   300  /* user ua */
#define BIG_MESSAGES 3000 /* ua's session "big" */
#define B_SESSIONS   20   /* user ub */
#define B_MESSAGES   500  /* ub's own session "big" */
#define MEMORY_KEYS  100
#define IDEM_KEYS    200
#define TOMBSTONES   40

enum bound_kind {
    EXACT,  /* returned + SLACK */
    OFFSET, /* returned + extra + SLACK */
    IN,     /* 2 * returned + SLACK */
    QUOTA,  /* extra: what the quota bounds (the session's or user's docs) */
};

struct explain {
    const char *dbname;
    struct config cfg;
    struct store *store;
    mongoc_client_t *admin;
    mongoc_database_t *db;
    struct arena arena;
    struct store_ctx ctx;
    int64_t profile_seen;
    int64_t base_ms; /* the seed's clock */
    /* The shape being run. */
    const char *shape;
    enum bound_kind kind;
    int64_t extra;
    const char *indexes; /* allowed, comma-separated */
    int commands;        /* that the shape issued */
    /* Totals. */
    int checked, failed, inserts;
    char used[2048]; /* " coll.index" for every index a plan used */
    /* Seeded ids. */
    struct uuid big, b_big, clearme, uc_session;
    struct uuid sessions[A_SESSIONS];
    struct uuid msg_ids[BIG_MESSAGES];
};

static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "mongo_explain: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* A fresh per-call context: arena reset, a generous deadline. */
static struct store_ctx *
ctx(struct explain *x)
{
    arena_reset(&x->arena);
    memset(&x->ctx, 0, sizeof(x->ctx));
    x->ctx.arena = &x->arena;
    x->ctx.deadline_ms = clock_mono_ms() + 30000;
    return &x->ctx;
}

static void
must(bool ok, const struct error *err, const char *what)
{
    if (!ok)
        die("%s: %s", what, err->message);
}

/* ---- the seed ------------------------------------------------------------ */

static void
seed_session(struct explain *x, const char *user, const char *sid, int i,
             int64_t messages, struct uuid *id)
{
    struct error err = ERROR_INIT;
    struct session s;
    char name[64], agent[32];

    memset(&s, 0, sizeof(s));
    uuid_generate(&s.id);
    snprintf(name, sizeof(name), "Session %d of %s", i, user);
    snprintf(agent, sizeof(agent), "agent-%d", i % 7);
    s.user_id = user;
    s.session_id = sid;
    s.session_name = name;
    s.agent_name = agent;
    /* Mostly active; every 10th inactive, 25th expired, 50th completed. */
    s.status = i % 50 == 0   ? STATUS_COMPLETED
               : i % 25 == 0 ? STATUS_EXPIRED
               : i % 10 == 0 ? STATUS_INACTIVE
                             : STATUS_ACTIVE;
    s.message_count = s.last_seq = messages;
    s.version = 1;
    s.created_at = x->base_ms + (int64_t)i * 60000;
    s.updated_at = s.created_at + (i % 13) * 1000;
    s.last_activity_at = s.updated_at;
    must(store_session_insert(x->store, ctx(x), &s, &err), &err,
         "seed session");
    if (id != NULL)
        *id = s.id;
}

/* n messages seq 1..n in session id of user, inserted 500 at a time;
 * ids[] (may be NULL) gets their ids. */
static void
seed_messages(struct explain *x, const char *user, const char *sid,
              const struct uuid *id, int n, struct uuid *ids)
{
    struct error err = ERROR_INIT;
    struct message batch[500];
    char text[500][48];
    char items[500][24];

    for (int done = 0; done < n;) {
        int k = n - done < 500 ? n - done : 500;

        for (int j = 0; j < k; j++) {
            int seq = done + j + 1;
            struct message *m = &batch[j];

            memset(m, 0, sizeof(*m));
            uuid_generate(&m->id);
            if (ids != NULL)
                ids[seq - 1] = m->id;
            m->session_uuid = *id;
            m->user_id = user;
            m->session_id = sid;
            m->seq = seq;
            /* system messages are rare: a role filter must not read
             * the others to find them. */
            m->role = seq % 100 == 0  ? ROLE_SYSTEM
                      : seq % 50 == 0 ? ROLE_TOOL
                      : seq % 2       ? ROLE_USER
                                      : ROLE_ASSISTANT;
            snprintf(text[j], sizeof(text[j]), "message %d lorem ipsum", seq);
            m->content = text[j];
            /* Every tenth has the id a /v1 client gave its item. */
            if (seq % 10 == 0) {
                snprintf(items[j], sizeof(items[j]), "msg_%d", seq);
                m->item_id = items[j];
            }
            m->created_at = m->updated_at = x->base_ms + (int64_t)seq * 1000;
        }
        must(store_message_insert(x->store, ctx(x), batch, (size_t)k, &err),
             &err, "seed messages");
        done += k;
    }
}

static void
seed(struct explain *x)
{
    struct error err = ERROR_INIT;
    char sid[32];

    x->base_ms = clock_now_ms() - 30LL * 24 * 3600 * 1000;
    for (int i = 0; i < A_SESSIONS; i++) {
        snprintf(sid, sizeof(sid), "s%03d", i);
        seed_session(x, "ua", sid, i, 0, &x->sessions[i]);
    }
    /* The sessions the shapes read from are young: no sweeper rule takes
     * them (i >= 5000: days after the cutoffs below). */
    seed_session(x, "ua", "big", 5001, BIG_MESSAGES, &x->big);
    seed_messages(x, "ua", "big", &x->big, BIG_MESSAGES, x->msg_ids);
    seed_session(x, "ua", "clearme", 5003, 100, &x->clearme);
    seed_messages(x, "ua", "clearme", &x->clearme, 100, NULL);
    for (int i = 0; i < B_SESSIONS; i++) {
        snprintf(sid, sizeof(sid), "s%03d", i);
        seed_session(x, "ub", sid, i, 0, NULL);
    }
    seed_session(x, "ub", "big", 5007, B_MESSAGES, &x->b_big);
    seed_messages(x, "ub", "big", &x->b_big, B_MESSAGES, NULL);
    seed_session(x, "uc", "erase-me", 5009, 300, &x->uc_session);
    seed_messages(x, "uc", "erase-me", &x->uc_session, 300, NULL);

    for (int i = 0; i < MEMORY_KEYS; i++) {
        struct json_value *v = json_new_int(&x->arena, i);
        char key[16];

        snprintf(key, sizeof(key), "k%03d", i);
        must(store_memory_put(x->store, ctx(x), "ua", &x->big, key, v,
                              clock_now_ms(), true, &err),
             &err, "seed memory");
        if (i < 20)
            must(store_memory_put(x->store, ctx(x), "ub", &x->b_big, key, v,
                                  clock_now_ms(), true, &err) &&
                     store_memory_put(x->store, ctx(x), "uc", &x->uc_session,
                                      key, v, clock_now_ms(), true, &err),
                 &err, "seed memory");
    }
    for (int i = 0; i < IDEM_KEYS; i++) {
        struct idem_key k = {x->msg_ids[i], i + 1, clock_now_ms()};
        char key[16];

        snprintf(key, sizeof(key), "c-%03d", i);
        must(store_idem_claim(x->store, ctx(x), "ua", &x->big, key, &k, &err),
             &err, "seed key");
        if (i < 20)
            must(store_idem_claim(x->store, ctx(x), "uc", &x->uc_session, key,
                                  &k, &err),
                 &err, "seed key");
    }
    for (int i = 0; i < TOMBSTONES; i++) {
        struct uuid id;

        uuid_generate(&id);
        /* Half of them old enough for the sweeper. */
        must(store_tombstone_put(
                 x->store, ctx(x), i % 4 == 0 ? "uc" : "ub", &id,
                 i % 2 ? clock_now_ms() : x->base_ms + (int64_t)i * 1000, &err),
             &err, "seed tombstone");
    }
}

/* ---- the profiler and explain -------------------------------------------- */

static bool
command_simple(struct explain *x, const char *db, const bson_t *cmd,
               bson_t *reply, bson_error_t *e)
{
    return mongoc_client_command_simple(x->admin, db, cmd, NULL, reply, e);
}

/* system.profile capped at 64 MiB (the default 1 MiB would wrap within a
 * shape), every operation, and how many entries there are now. */
static void
profile_on(struct explain *x)
{
    bson_t reply;
    bson_error_t e;
    bson_t *cmd;

    cmd = BCON_NEW("profile", BCON_INT32(0));
    if (!command_simple(x, x->dbname, cmd, &reply, &e))
        die("profile 0: %s", e.message);
    bson_destroy(cmd);
    bson_destroy(&reply);
    cmd = BCON_NEW("drop", BCON_UTF8("system.profile"));
    command_simple(x, x->dbname, cmd, &reply, &e); /* may not exist */
    bson_destroy(cmd);
    bson_destroy(&reply);
    cmd = BCON_NEW("create", BCON_UTF8("system.profile"), "capped",
                   BCON_BOOL(true), "size", BCON_INT64(64 << 20));
    if (!command_simple(x, x->dbname, cmd, &reply, &e))
        die("create system.profile: %s", e.message);
    bson_destroy(cmd);
    bson_destroy(&reply);
    cmd = BCON_NEW("profile", BCON_INT32(2), "slowms", BCON_INT32(0));
    if (!command_simple(x, x->dbname, cmd, &reply, &e))
        die("profile 2: %s", e.message);
    bson_destroy(cmd);
    bson_destroy(&reply);
    x->profile_seen = 0;
}

/* What a plan tree holds. */
struct plan {
    char indexes[256]; /* " a b" */
    bool collscan, blocking_sort;
    char stages[256]; /* "FETCH<IXSCAN" */
};

static void
plan_add(char *list, size_t n, const char *word)
{
    char pad[128];

    snprintf(pad, sizeof(pad), " %s ", word);
    if (strstr(list, pad) != NULL)
        return;
    if (strlen(list) + strlen(word) + 3 < n)
        snprintf(list + strlen(list), n - strlen(list), "%s%s ",
                 list[0] ? "" : " ", word);
}

static void
plan_walk(const bson_t *doc, struct plan *p, int depth)
{
    bson_iter_t it, child;

    if (depth > 40 || !bson_iter_init(&it, doc))
        return;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        const uint8_t *data;
        uint32_t len;
        bson_t sub;

        if (strcmp(key, "stage") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            const char *stage = bson_iter_utf8(&it, NULL);

            if (strcmp(stage, "COLLSCAN") == 0)
                p->collscan = true;
            if (strcmp(stage, "SORT") == 0)
                p->blocking_sort = true;
            if (strcmp(stage, "IDHACK") == 0)
                plan_add(p->indexes, sizeof(p->indexes), "_id_");
            if (strlen(p->stages) + strlen(stage) + 2 < sizeof(p->stages))
                snprintf(p->stages + strlen(p->stages),
                         sizeof(p->stages) - strlen(p->stages), "%s%s",
                         p->stages[0] ? "<" : "", stage);
        } else if (strcmp(key, "indexName") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            plan_add(p->indexes, sizeof(p->indexes), bson_iter_utf8(&it, NULL));
        } else if (strcmp(key, "inputStage") == 0 &&
                   BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&sub, data, len))
                plan_walk(&sub, p, depth + 1);
        } else if (strcmp(key, "inputStages") == 0 &&
                   BSON_ITER_HOLDS_ARRAY(&it) &&
                   bson_iter_recurse(&it, &child)) {
            while (bson_iter_next(&child)) {
                if (!BSON_ITER_HOLDS_DOCUMENT(&child))
                    continue;
                bson_iter_document(&child, &len, &data);
                if (bson_init_static(&sub, data, len))
                    plan_walk(&sub, p, depth + 1);
            }
        }
    }
}

/* The first document under key `name` anywhere in doc (depth first): its
 * bytes, inside doc. */
static bool
find_doc_at(const bson_t *doc, const char *name, const uint8_t **out,
            uint32_t *out_len, int depth)
{
    bson_iter_t it;

    if (depth > 20 || !bson_iter_init(&it, doc))
        return false;
    while (bson_iter_next(&it)) {
        const uint8_t *data;
        uint32_t len;
        bson_t sub;

        if (!BSON_ITER_HOLDS_DOCUMENT(&it) && !BSON_ITER_HOLDS_ARRAY(&it))
            continue;
        if (BSON_ITER_HOLDS_DOCUMENT(&it))
            bson_iter_document(&it, &len, &data);
        else
            bson_iter_array(&it, &len, &data);
        if (!bson_init_static(&sub, data, len))
            continue;
        if (strcmp(bson_iter_key(&it), name) == 0 &&
            BSON_ITER_HOLDS_DOCUMENT(&it)) {
            *out = data;
            *out_len = len;
            return true;
        }
        if (find_doc_at(&sub, name, out, out_len, depth + 1))
            return true;
    }
    return false;
}

/* find_doc_at() into out, a static bson_t on those bytes (a bson_t cannot
 * be copied: a static one points into itself). */
#define find_doc(doc, name, out, depth) find_doc_static((doc), (name), (out))

static bool
find_doc_static(const bson_t *doc, const char *name, bson_t *out)
{
    const uint8_t *data = NULL;
    uint32_t len = 0;

    return find_doc_at(doc, name, &data, &len, 0) &&
           bson_init_static(out, data, len);
}

static int64_t
get_int(const bson_t *doc, const char *path)
{
    bson_iter_t it, found;

    if (bson_iter_init(&it, doc) &&
        bson_iter_find_descendant(&it, path, &found) &&
        BSON_ITER_HOLDS_NUMBER(&found))
        return bson_iter_as_int64(&found);
    return -1;
}

static const char *
get_str(const bson_t *doc, const char *path)
{
    bson_iter_t it, found;

    if (bson_iter_init(&it, doc) &&
        bson_iter_find_descendant(&it, path, &found) &&
        BSON_ITER_HOLDS_UTF8(&found))
        return bson_iter_utf8(&found, NULL);
    return "";
}

/* The command to explain for a profile entry: the command as sent, less
 * the fields explain refuses inside it; an update or remove entry holds
 * one statement, wrapped back into its command. */
static bool
explain_command(const bson_t *entry, const char *coll, bson_t *out)
{
    static const char *const drop[] = {"lsid",         "$db",
                                       "$clusterTime", "txnNumber",
                                       "writeConcern", "$readPreference",
                                       "readConcern",  "maxTimeMS"};
    const char *op = get_str(entry, "op");
    bson_t command, stmt, list;
    bson_iter_t it;

    if (!find_doc(entry, "command", &command, 0))
        return false;
    if (strcmp(op, "update") == 0 || strcmp(op, "remove") == 0) {
        bool update = op[0] == 'u';

        bson_append_utf8(out, update ? "update" : "delete", -1, coll, -1);
        bson_append_array_begin(out, update ? "updates" : "deletes", -1, &list);
        bson_append_document_begin(&list, "0", -1, &stmt);
        bson_iter_init(&it, &command);
        while (bson_iter_next(&it))
            bson_append_iter(&stmt, NULL, 0, &it);
        bson_append_document_end(&list, &stmt);
        bson_append_array_end(out, &list);
        return true;
    }
    bson_iter_init(&it, &command);
    while (bson_iter_next(&it)) {
        bool skip = false;

        for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
            skip = skip || strcmp(bson_iter_key(&it), drop[i]) == 0;
        if (!skip)
            bson_append_iter(out, NULL, 0, &it);
    }
    return true;
}

/* What the executed plan returned, matched or deleted: the most of the
 * counts its stages report. */
static int64_t
stats_returned(const bson_t *stats)
{
    static const char *const paths[] = {
        "nReturned", "executionStages.nReturned", "executionStages.nMatched",
        "executionStages.nWouldDelete", "executionStages.nWouldModify"};
    int64_t n = 0;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int64_t v = get_int(stats, paths[i]);

        if (v > n)
            n = v;
    }
    return n;
}

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* What the profiled command returned, matched or deleted. */
static int64_t
profile_returned(const bson_t *entry)
{
    static const char *const fields[] = {"nreturned", "ndeleted", "nMatched",
                                         "nModified", "ninserted"};
    int64_t n = 0;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        n = max64(n, get_int(entry, fields[i]));
    return n;
}

/* Each index of `have` (" a b ") must be in the comma-separated list. */
static bool
indexes_allowed(const char *have, const char *allowed, char *bad, size_t n)
{
    char word[128];
    const char *p = have;

    bad[0] = '\0';
    while (sscanf(p, " %127s", word) == 1) {
        char pad[160], list[512];

        snprintf(pad, sizeof(pad), ",%s,", word);
        snprintf(list, sizeof(list), ",%s,", allowed);
        if (strstr(list, pad) == NULL) {
            snprintf(bad, n, "%s", word);
            return false;
        }
        p = strstr(p, word) + strlen(word);
    }
    return have[0] != '\0';
}

static void
check_entry(struct explain *x, const bson_t *entry)
{
    const char *ns = get_str(entry, "ns");
    const char *op = get_str(entry, "op");
    const char *coll = strchr(ns, '.') != NULL ? strchr(ns, '.') + 1 : ns;
    bson_t cmd = BSON_INITIALIZER, wrapped = BSON_INITIALIZER, reply;
    bson_t winning, stats;
    bson_error_t e;
    struct plan plan;
    char bad[128], what[64];
    int64_t keys = -1, docs = -1, n = 0, bound = 0;
    const char *verdict = "ok";

    memset(&plan, 0, sizeof(plan));
    x->commands++;
    snprintf(what, sizeof(what), "%s", op);
    if (strcmp(op, "command") == 0 && find_doc(entry, "command", &cmd, 0)) {
        bson_iter_t it;

        if (bson_iter_init(&it, &cmd) && bson_iter_next(&it))
            snprintf(what, sizeof(what), "%s", bson_iter_key(&it));
        bson_init(&cmd);
    }
    if (!explain_command(entry, coll, &cmd)) {
        verdict = "FAIL: no command in the profile entry";
        goto report;
    }
    bson_append_document(&wrapped, "explain", -1, &cmd);
    bson_append_utf8(&wrapped, "verbosity", -1, "executionStats", -1);
    if (!command_simple(x, x->dbname, &wrapped, &reply, &e)) {
        /* A hint naming no index lands here too. */
        verdict = "FAIL: explain refused it";
        fprintf(stderr, "  explain: %s\n", e.message);
        bson_destroy(&reply);
        goto report;
    }
    if (!find_doc(&reply, "winningPlan", &winning, 0) ||
        !find_doc(&reply, "executionStats", &stats, 0)) {
        verdict = "FAIL: no plan in the explain";
        bson_destroy(&reply);
        goto report;
    }
    plan_walk(&winning, &plan, 0);
    /* The profile has what the command did when parley sent it; the
     * explain re-runs it now, when a write has already changed or
     * removed what it matched: the larger of each is checked. */
    keys = max64(get_int(&stats, "totalKeysExamined"),
                 get_int(entry, "keysExamined"));
    docs = max64(get_int(&stats, "totalDocsExamined"),
                 get_int(entry, "docsExamined"));
    n = max64(stats_returned(&stats), profile_returned(entry));
    switch (x->kind) {
    case EXACT:
        bound = n + SLACK;
        break;
    case OFFSET:
        bound = n + x->extra + SLACK;
        break;
    case IN:
        bound = 2 * n + SLACK;
        break;
    case QUOTA:
        bound = x->extra + SLACK;
        break;
    }
    if (plan.collscan)
        verdict = "FAIL: COLLSCAN";
    else if (plan.blocking_sort)
        verdict = "FAIL: blocking SORT";
    else if (!indexes_allowed(plan.indexes, x->indexes, bad, sizeof(bad)))
        verdict =
            bad[0] ? "FAIL: not the intended index" : "FAIL: no index used";
    else if (keys > bound || docs > bound)
        verdict = "FAIL: examined more than the bound";
    bson_destroy(&reply);
    {
        char word[128];
        const char *p = plan.indexes;

        while (sscanf(p, " %127s", word) == 1) {
            char entry_name[200];

            snprintf(entry_name, sizeof(entry_name), "%s.%s", coll, word);
            plan_add(x->used, sizeof(x->used), entry_name);
            p = strstr(p, word) + strlen(word);
        }
    }
report:
    x->checked++;
    if (strncmp(verdict, "FAIL", 4) == 0)
        x->failed++;
    printf("%-44s %-15s %-16s %-30s %6" PRId64 " %6" PRId64 " %6" PRId64
           " %6" PRId64 "  %s%s%s\n",
           x->shape, what, coll, plan.indexes[0] ? plan.indexes + 1 : "-", keys,
           docs, n, bound, verdict,
           strncmp(verdict, "FAIL", 4) == 0 ? "  plan: " : "",
           strncmp(verdict, "FAIL", 4) == 0 ? plan.stages : "");
    bson_destroy(&wrapped);
    bson_destroy(&cmd);
}

static void
shape_begin(struct explain *x, const char *shape, enum bound_kind kind,
            int64_t extra, const char *indexes)
{
    x->shape = shape;
    x->kind = kind;
    x->extra = extra;
    x->indexes = indexes;
    x->commands = 0;
}

/* Every profile entry since the last: parley's (appname "parley") are
 * checked, inserts counted. */
static void
shape_end(struct explain *x)
{
    mongoc_collection_t *profile =
        mongoc_database_get_collection(x->db, "system.profile");
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "$natural", BCON_INT32(1), "}", "skip",
                            BCON_INT64(x->profile_seen));
    mongoc_cursor_t *cursor =
        mongoc_collection_find_with_opts(profile, &filter, opts, NULL);
    const bson_t *doc;
    bson_t *entries[256];
    size_t n = 0;
    bson_error_t e;

    while (mongoc_cursor_next(cursor, &doc)) {
        x->profile_seen++;
        if (strcmp(get_str(doc, "appName"), "parley") != 0)
            continue;
        if (n < sizeof(entries) / sizeof(entries[0]))
            entries[n++] = bson_copy(doc);
    }
    if (mongoc_cursor_error(cursor, &e))
        die("reading system.profile: %s", e.message);
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(profile);
    /* Explained after the read: explain's own entries come after. */
    for (size_t i = 0; i < n; i++) {
        const char *op = get_str(entries[i], "op");

        if (strcmp(op, "insert") == 0)
            x->inserts++;
        else if (strcmp(op, "getmore") != 0 && strcmp(op, "killcursors") != 0)
            check_entry(x, entries[i]);
        bson_destroy(entries[i]);
    }
    if (x->commands == 0 && n == 0) {
        printf("%-44s FAIL: issued no command\n", x->shape);
        x->failed++;
    }
    /* Skip the explains' own entries. */
    {
        bson_t count_filter = BSON_INITIALIZER;
        mongoc_collection_t *p =
            mongoc_database_get_collection(x->db, "system.profile");
        int64_t total = mongoc_collection_count_documents(p, &count_filter,
                                                          NULL, NULL, NULL, &e);

        if (total > x->profile_seen)
            x->profile_seen = total;
        bson_destroy(&count_filter);
        mongoc_collection_destroy(p);
    }
}

/* ---- the shapes ------------------------------------------------------------
 */

static void
session_filter_none(struct session_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->status = -1;
    f->is_active = -1;
    f->created_after = f->created_before = STORE_NO_TIME;
    f->updated_after = f->updated_before = STORE_NO_TIME;
}

static void
message_filter_none(struct message_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->after_seq = f->before_seq = STORE_NO_SEQ;
    f->role = -1;
    f->created_after = f->created_before = STORE_NO_TIME;
}

/* A session list page of 20 at offset 40 (full, so the total is
 * counted too) and the last page (short: no count). */
static void
session_list(struct explain *x, const char *shape, enum bound_kind kind,
             const char *indexes, const struct session_filter *f)
{
    struct error err = ERROR_INIT;
    struct session_page page;

    shape_begin(x, shape, kind, kind == QUOTA ? A_SESSIONS + 2 : 40, indexes);
    must(store_session_list(x->store, ctx(x), "ua", f, 20, 40, &page, &err),
         &err, shape);
    shape_end(x);
}

static void
session_shapes(struct explain *x)
{
    static const struct {
        const char *name;
        enum session_sort sort;
        const char *index;
    } sorts[] = {
        {"sessions: -updated_at", SORT_UPDATED_DESC, "user_updated_id"},
        {"sessions: updated_at", SORT_UPDATED_ASC, "user_updated_id"},
        {"sessions: -created_at", SORT_CREATED_DESC, "user_created_id"},
        {"sessions: created_at", SORT_CREATED_ASC, "user_created_id"},
    };
    struct session_filter f;
    struct error err = ERROR_INIT;
    struct session s;
    char name[96];

    for (size_t i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++) {
        const char *by_status = sorts[i].index[5] == 'u'
                                    ? "user_status_updated_id"
                                    : "user_status_created_id";

        session_filter_none(&f);
        f.sort = sorts[i].sort;
        session_list(x, sorts[i].name, OFFSET, sorts[i].index, &f);
        f.status = STATUS_ACTIVE;
        snprintf(name, sizeof(name), "%s status=active", sorts[i].name);
        session_list(x, name, OFFSET, by_status, &f);
        f.status = -1;
        f.is_active = 0;
        snprintf(name, sizeof(name), "%s is_active=false", sorts[i].name);
        session_list(x, name, OFFSET, by_status, &f);
        f.is_active = -1;
        f.agent_name = "agent-3";
        snprintf(name, sizeof(name), "%s agent_name", sorts[i].name);
        session_list(x, name, QUOTA, sorts[i].index, &f);
        f.agent_name = NULL;
        f.search = "Session 1";
        snprintf(name, sizeof(name), "%s search", sorts[i].name);
        session_list(x, name, QUOTA, sorts[i].index, &f);
        f.search = NULL;
        /* A date range on the sort's own field bounds the scan; on the
         * other field it is checked on the documents. */
        f.created_after = x->base_ms + 50LL * 60000;
        f.created_before = x->base_ms + 250LL * 60000;
        snprintf(name, sizeof(name), "%s created range", sorts[i].name);
        session_list(x, name, sorts[i].index[5] == 'c' ? OFFSET : QUOTA,
                     sorts[i].index, &f);
        f.created_after = f.created_before = STORE_NO_TIME;
        f.updated_after = x->base_ms + 50LL * 60000;
        snprintf(name, sizeof(name), "%s updated_after", sorts[i].name);
        session_list(x, name, sorts[i].index[5] == 'u' ? OFFSET : QUOTA,
                     sorts[i].index, &f);
    }
    session_filter_none(&f);
    f.is_active = 1;
    session_list(x, "sessions: is_active=true", OFFSET,
                 "user_status_updated_id", &f);

    shape_begin(x, "session by session_id", EXACT, 0, "user_session_id");
    must(store_session_get(x->store, ctx(x), "ua", "s123", &s, &err), &err,
         "get");
    shape_end(x);
    shape_begin(x, "session by id (sweeper, import)", EXACT, 0, "_id_");
    must(store_session_get_by_id(x->store, ctx(x), "ua", &x->sessions[5], &s,
                                 &err),
         &err, "get by id");
    shape_end(x);
    shape_begin(x, "session PATCH (version compare-and-set)", EXACT, 0, "_id_");
    {
        struct session_change c = {.fields = SET_SESSION_NAME,
                                   .session_name = "renamed",
                                   .now = clock_now_ms()};

        must(store_session_update(x->store, ctx(x), "ua", &x->sessions[5], 1,
                                  &c, &s, &err),
             &err, "update");
    }
    shape_end(x);
    shape_begin(x, "append: seq reservation", EXACT, 0, "_id_");
    must(store_session_reserve_seq(x->store, ctx(x), "ua", &x->sessions[11],
                                   &one_message, clock_now_ms(), &s, &err),
         &err, "reserve");
    shape_end(x);
    shape_begin(x, "message delete: touch session", EXACT, 0, "_id_");
    {
        struct store_counts minus = {-1, -40, 0};

        must(store_session_touch(x->store, ctx(x), "ua", &x->sessions[11],
                                 &minus, clock_now_ms(), true, &err),
             &err, "touch");
    }
    shape_end(x);
    shape_begin(x, "per-session metrics", EXACT, 0, "user_session_id");
    must(store_session_add_metrics(x->store, ctx(x), "ua", "s011", 3, 1, 2.5,
                                   &err),
         &err, "metrics");
    shape_end(x);
    shape_begin(x, "stats (quota: the user's sessions)", QUOTA, A_SESSIONS + 2,
                "user_status_updated_id");
    {
        struct session_stats st;

        must(store_session_stats(x->store, ctx(x), "ua", &st, &err), &err,
             "stats");
    }
    shape_end(x);
}

static void
message_list(struct explain *x, const char *shape, enum bound_kind kind,
             int64_t extra, const char *index, const struct message_filter *f,
             int64_t limit, int64_t offset)
{
    struct error err = ERROR_INIT;
    struct message_page page;

    shape_begin(x, shape, kind, extra, index);
    must(store_message_list(x->store, ctx(x), "ua", &x->big, f, limit, offset,
                            &page, &err),
         &err, shape);
    shape_end(x);
}

static void
message_shapes(struct explain *x)
{
    struct message_filter f;
    struct error err = ERROR_INIT;
    struct message m;
    const char *seq = "user_session_seq";
    const char *role = "user_session_role_seq";

    message_filter_none(&f);
    f.no_total = true; /* unfiltered: the service takes message_count */
    message_list(x, "messages: first page", EXACT, 0, seq, &f, 50, 0);
    message_list(x, "messages: page by offset 1000", OFFSET, 1000, seq, &f, 50,
                 1000);
    f.after_seq = BIG_MESSAGES - 100;
    message_list(x, "messages: after_seq deep", EXACT, 0, seq, &f, 50, 0);
    f.after_seq = STORE_NO_SEQ;
    f.before_seq = 200;
    message_list(x, "messages: before_seq", EXACT, 0, seq, &f, 50, 0);
    f.before_seq = STORE_NO_SEQ;
    f.descending = true;
    message_list(x, "messages: order=desc", EXACT, 0, seq, &f, 50, 0);
    f.before_seq = 1000;
    message_list(x, "messages: order=desc before_seq", EXACT, 0, seq, &f, 50,
                 0);
    message_filter_none(&f);
    f.role = ROLE_SYSTEM;
    message_list(x, "messages: role=system (rare) + count", EXACT, 0, role, &f,
                 20, 0);
    f.role = ROLE_USER;
    f.after_seq = 1000;
    message_list(x, "messages: role=user after_seq + count", EXACT, 0, role, &f,
                 20, 0);
    f.after_seq = STORE_NO_SEQ;
    f.descending = true;
    message_list(x, "messages: role=user order=desc offset + count", OFFSET, 40,
                 role, &f, 20, 40);
    message_filter_none(&f);
    f.search = "lorem";
    message_list(x, "messages: search + count (quota)", QUOTA, BIG_MESSAGES,
                 seq, &f, 50, 0);
    message_filter_none(&f);
    f.created_after = x->base_ms + 1000LL * 1000;
    f.created_before = x->base_ms + 2000LL * 1000;
    message_list(x, "messages: created range + count (quota)", QUOTA,
                 BIG_MESSAGES, seq, &f, 50, 0);
    message_filter_none(&f);
    f.descending = true;
    f.no_total = true;
    message_list(x, "context: newest first", EXACT, 0, seq, &f, 20, 0);
    message_filter_none(&f);
    f.after_seq = 1500;
    f.no_total = true;
    message_list(x, "export: a page by after_seq", EXACT, 0, seq, &f, 500, 0);

    shape_begin(x, "message get", EXACT, 0, "_id_");
    must(store_message_get(x->store, ctx(x), "ua", &x->big, &x->msg_ids[10], &m,
                           &err),
         &err, "get");
    shape_end(x);
    shape_begin(x, "/v1 item by its client's id", EXACT, 0, "session_item_id");
    must(store_message_get_item(x->store, ctx(x), "ua", &x->big, "msg_1230", &m,
                                &err),
         &err, "get item");
    shape_end(x);
    shape_begin(x, "message PATCH", EXACT, 0, "_id_");
    {
        struct message_change c = {.fields = SET_CONTENT,
                                   .content = "edited",
                                   .now = clock_now_ms(),
                                   .if_updated_at = STORE_NO_TIME};

        must(store_message_update(x->store, ctx(x), "ua", &x->big,
                                  &x->msg_ids[10], &c, &m, &err),
             &err, "update");
    }
    shape_end(x);
    shape_begin(x, "message DELETE", EXACT, 0, "_id_");
    {
        int64_t bytes = 0;

        must(store_message_delete(x->store, ctx(x), "ua", &x->big,
                                  &x->msg_ids[11], &bytes, &err),
             &err, "delete");
    }
    shape_end(x);
    shape_begin(x, "append undone: delete by ids", IN, 0, "_id_");
    must(store_message_delete_ids(x->store, ctx(x), "ua", &x->msg_ids[20], 10,
                                  &err),
         &err, "delete ids");
    shape_end(x);
    shape_begin(x, "clear-messages", EXACT, 0,
                "user_session_seq,session_seq,user_session_role_seq");
    {
        int64_t n = 0;

        must(store_message_clear(x->store, ctx(x), "ua", &x->clearme, 100, &n,
                                 &err),
             &err, "clear");
    }
    shape_end(x);
}

/* A keyed append as the service makes it: claim the key (insert),
 * reserve the seq, insert the message, mark the key done. */
static void
append_shape(struct explain *x)
{
    struct error err = ERROR_INIT;
    struct session s;
    struct message m;
    struct idem_key k;

    memset(&m, 0, sizeof(m));
    uuid_generate(&m.id);
    k = (struct idem_key){m.id, 0, clock_now_ms()};
    shape_begin(x, "append with client_message_id", EXACT, 0, "_id_");
    must(store_idem_claim(x->store, ctx(x), "ua", &x->big, "append-1", &k,
                          &err) &&
             store_session_reserve_seq(x->store, ctx(x), "ua", &x->big,
                                       &one_message, clock_now_ms(), &s, &err),
         &err, "append");
    m.session_uuid = x->big;
    m.user_id = "ua";
    m.session_id = "big";
    m.seq = s.last_seq;
    m.role = ROLE_USER;
    m.content = "appended";
    m.client_message_id = "append-1";
    m.created_at = m.updated_at = clock_now_ms();
    must(store_message_insert(x->store, ctx(x), &m, 1, &err) &&
             store_idem_complete(x->store, ctx(x), "ua", &x->big, "append-1",
                                 &m.id, m.seq, &err),
         &err, "append");
    shape_end(x);
}

static void
key_and_memory_shapes(struct explain *x)
{
    struct error err = ERROR_INIT;
    struct idem_key k;
    struct json_value *v = NULL;

    append_shape(x);
    shape_begin(x, "idempotency key: look up", EXACT, 0, "_id_");
    must(store_idem_get(x->store, ctx(x), "ua", &x->big, "c-007", &k, &err),
         &err, "idem get");
    shape_end(x);
    shape_begin(x, "idempotency key: take over", EXACT, 0, "_id_");
    {
        struct idem_key nk = {x->msg_ids[100], 0, clock_now_ms()};

        must(store_idem_replace(x->store, ctx(x), "ua", &x->big, "c-007",
                                &k.message_id, &nk, &err),
             &err, "idem replace");
        k = nk;
    }
    shape_end(x);
    shape_begin(x, "idempotency key: complete", EXACT, 0, "_id_");
    must(store_idem_complete(x->store, ctx(x), "ua", &x->big, "c-007",
                             &k.message_id, 101, &err),
         &err, "idem complete");
    shape_end(x);
    shape_begin(x, "idempotency key: release", EXACT, 0, "_id_");
    must(store_idem_release(x->store, ctx(x), "ua", &x->big, "c-007",
                            &k.message_id, &err),
         &err, "idem release");
    shape_end(x);

    shape_begin(x, "memory: list", EXACT, 0, "session_key");
    must(store_memory_list(x->store, ctx(x), "ua", &x->big, NULL, 50, &v, &err),
         &err, "memory list");
    shape_end(x);
    shape_begin(x, "memory: a page after a key", EXACT, 0, "session_key");
    must(store_memory_list(x->store, ctx(x), "ua", &x->big, "k049", 50, &v,
                           &err),
         &err, "memory list after");
    shape_end(x);
    shape_begin(x, "memory: get", EXACT, 0, "_id_");
    must(store_memory_get(x->store, ctx(x), "ua", &x->big, "k042", &v, &err),
         &err, "memory get");
    shape_end(x);
    shape_begin(x, "memory: put (upsert)", EXACT, 0, "_id_");
    must(store_memory_put(x->store, ctx(x), "ua", &x->big, "k042",
                          json_new_int(&x->arena, 7), clock_now_ms(), false,
                          &err),
         &err, "memory put");
    shape_end(x);
    shape_begin(x, "memory: delete", EXACT, 0, "_id_");
    must(store_memory_delete(x->store, ctx(x), "ua", &x->big, "k042", &err),
         &err, "memory delete");
    shape_end(x);
}

static void
sweeper_shapes(struct explain *x)
{
    struct error err = ERROR_INIT;
    struct sweep_candidate *c = NULL;
    size_t n = 0;
    int64_t cutoff = x->base_ms + 100LL * 60000;
    bool done = false;

    shape_begin(x, "sweeper: age candidates", EXACT, 0, "created");
    must(store_sweep_candidates(x->store, ctx(x), SWEEP_AGE, cutoff, 200, &c,
                                &n, &err),
         &err, "age");
    shape_end(x);
    shape_begin(x, "sweeper: inactive candidates", EXACT, 0, "status_activity");
    must(store_sweep_candidates(x->store, ctx(x), SWEEP_INACTIVE, cutoff, 200,
                                &c, &n, &err),
         &err, "inactive");
    shape_end(x);
    shape_begin(x, "sweeper: idle candidates", EXACT, 0, "status_activity");
    must(store_sweep_candidates(x->store, ctx(x), SWEEP_IDLE, cutoff, 200, &c,
                                &n, &err),
         &err, "idle");
    shape_end(x);
    if (n < 2)
        die("the idle rule found %zu candidates; the seed is wrong", n);
    shape_begin(x, "sweeper: expire one", EXACT, 0, "_id_");
    must(store_sweep_expire_one(x->store, ctx(x), &c[0], cutoff, clock_now_ms(),
                                &done, &err),
         &err, "expire");
    shape_end(x);
    shape_begin(x, "sweeper: delete one", EXACT, 0, "_id_");
    must(store_sweep_delete_one(x->store, ctx(x), SWEEP_AGE, &c[1], cutoff,
                                &done, &err),
         &err, "delete");
    shape_end(x);
    shape_begin(x, "session purge (DELETE, sweeper)", EXACT, 0,
                "user_session_seq,session_seq,user_session_role_seq,"
                "user_session,session_key");
    must(store_session_purge(x->store, ctx(x), c[1].user_id, &c[1].id, NULL,
                             &err),
         &err, "purge");
    shape_end(x);
    shape_begin(x, "session delete", EXACT, 0, "_id_");
    must(
        store_session_delete(x->store, ctx(x), "ua", &x->sessions[2], -1, &err),
        &err, "session delete");
    shape_end(x);

    shape_begin(x, "tombstones: put (upsert)", EXACT, 0, "_id_");
    must(store_tombstone_put(x->store, ctx(x), "ua", &x->sessions[2],
                             clock_now_ms(), &err),
         &err, "tombstone put");
    shape_end(x);
    shape_begin(x, "tombstones: delete", EXACT, 0, "_id_");
    must(store_tombstone_delete(x->store, ctx(x), "ua", &x->sessions[2], &err),
         &err, "tombstone delete");
    shape_end(x);
    shape_begin(x, "tombstones: sweeper's oldest first", EXACT, 0, "at");
    must(store_tombstone_list(x->store, ctx(x), clock_now_ms() - 3600000, 200,
                              &c, &n, &err),
         &err, "tombstone list");
    shape_end(x);
}

static void
erasure_shapes(struct explain *x)
{
    static const struct {
        enum store_collection coll;
        const char *name, *indexes;
    } colls[] = {
        {STORE_MESSAGES, "user erasure: messages", "user_session_seq,_id_"},
        {STORE_MEMORY, "user erasure: memory", "user_session,_id_"},
        {STORE_IDEMPOTENCY, "user erasure: idempotency keys",
         "user_session,_id_"},
        {STORE_TOMBSTONES, "user erasure: tombstones", "user,_id_"},
        {STORE_SESSIONS, "user erasure: sessions", "user_session_id,_id_"},
        {STORE_USERS, "user erasure: the user counter", "_id_"},
    };

    for (size_t i = 0; i < sizeof(colls) / sizeof(colls[0]); i++) {
        struct error err = ERROR_INIT;
        int64_t n = 0;

        /* A find on the user's index, then a delete by the _ids it
         * found ($in: IN bound). */
        shape_begin(x, colls[i].name, IN, 0, colls[i].indexes);
        must(store_user_delete_batch(x->store, ctx(x), colls[i].coll, "uc",
                                     1000, &n, &err),
             &err, colls[i].name);
        shape_end(x);
    }
}

/* The counters and quotas: marks, the user counter, the recount. */
static void
counter_shapes(struct explain *x)
{
    struct error err = ERROR_INIT;
    struct session s;
    struct store_counts c;
    struct user_counter u;
    struct sweep_candidate *cand = NULL;
    size_t n = 0;
    bool changed = false;

    shape_begin(x, "a counted change: mark the session", EXACT, 0,
                "user_session_id");
    must(store_session_mark(x->store, ctx(x), "ua", "s013", clock_now_ms(), &s,
                            &err),
         &err, "mark");
    shape_end(x);
    shape_begin(x, "recount: the sweeper's dirty sessions", EXACT, 0, "dirty");
    must(store_dirty_list(x->store, ctx(x), STORE_SESSIONS,
                          clock_now_ms() + 60000, 200, &cand, &n, &err),
         &err, "dirty sessions");
    shape_end(x);
    /* A session's tally reads its messages and memory: at most what the
     * quotas allow. */
    shape_begin(x, "recount: a session's tally (quota)", QUOTA,
                BIG_MESSAGES + MEMORY_KEYS,
                "user_session_seq,session_seq,user_session_role_seq,"
                "session_key,user_session");
    must(store_session_tally(x->store, ctx(x), "ua", &x->big, STORE_NO_SEQ, &c,
                             &err),
         &err, "tally");
    shape_end(x);
    shape_begin(x, "recount: the session as it is", EXACT, 0,
                "user_session_id");
    must(store_session_get(x->store, ctx(x), "ua", "s013", &s, &err), &err,
         "get");
    shape_end(x);
    shape_begin(x, "recount: set a session's counts", EXACT, 0, "_id_");
    must(store_session_set_counts(x->store, ctx(x), "ua", &s.id, &s, &c,
                                  &changed, &err),
         &err, "set counts");
    shape_end(x);
    shape_begin(x, "conversation: add token usage", EXACT, 0, "_id_");
    must(store_session_add_usage(x->store, ctx(x), "ua", &x->sessions[14], 10,
                                 20, &err),
         &err, "usage");
    shape_end(x);
    shape_begin(x, "user counter: count a session", EXACT, 0, "_id_");
    must(store_user_count(x->store, ctx(x), "ua", 1, 1000000, clock_now_ms(),
                          &err),
         &err, "user count");
    shape_end(x);
    shape_begin(x, "user counter: read", EXACT, 0, "_id_");
    must(store_user_get(x->store, ctx(x), "ua", &u, &err), &err, "user get");
    shape_end(x);
    shape_begin(x, "user counter: set (recount)", EXACT, 0, "_id_");
    must(store_user_set_count(x->store, ctx(x), "ua", &u, u.sessions, &changed,
                              &err),
         &err, "user set");
    shape_end(x);
    shape_begin(x, "recount: the sweeper's dirty users", EXACT, 0, "dirty");
    must(store_dirty_list(x->store, ctx(x), STORE_USERS, clock_now_ms() + 60000,
                          200, &cand, &n, &err),
         &err, "dirty users");
    shape_end(x);
    shape_begin(x, "a failed first turn: delete the unused session", EXACT, 0,
                "_id_");
    {
        struct uuid id;

        seed_session(x, "ua", "unused", 5011, 0, &id);
        must(store_session_delete_unused(x->store, ctx(x), "ua", &id, &err),
             &err, "delete unused");
    }
    shape_end(x);
}

/* A keyed batch as the service makes it now: the keys looked up and
 * claimed together, the messages read back by their ids on a replay. */
static void
batch_shapes(struct explain *x)
{
    static const char *const keys[] = {"b-1", "b-2", "b-3", "c-010", "c-011"};
    enum { NK = sizeof(keys) / sizeof(keys[0]) };
    struct error err = ERROR_INIT;
    struct idem_key got[NK], k[NK];
    bool found[NK], claimed[NK];
    struct message msgs[NK];
    struct uuid ids[NK];
    int64_t seqs[NK];

    shape_begin(x, "keyed batch: look the keys up", IN, 0, "_id_");
    must(store_idem_get_many(x->store, ctx(x), "ua", &x->big, keys, NK, got,
                             found, &err),
         &err, "idem get many");
    shape_end(x);
    for (size_t i = 0; i < NK; i++) {
        uuid_generate(&ids[i]);
        k[i] = (struct idem_key){ids[i], 0, clock_now_ms()};
        seqs[i] = 5000 + (int64_t)i;
    }
    shape_begin(x, "keyed batch: claim the keys (insert)", EXACT, 0, "_id_");
    must(store_idem_claim_many(x->store, ctx(x), "ua", &x->big, keys, k, NK,
                               claimed, &err),
         &err, "idem claim many");
    shape_end(x);
    shape_begin(x, "keyed batch: complete the keys", EXACT, 0, "_id_");
    must(store_idem_complete_many(x->store, ctx(x), "ua", &x->big, keys, ids,
                                  seqs, 3, &err),
         &err, "idem complete many");
    shape_end(x);
    shape_begin(x, "keyed batch replayed: the messages by id", IN, 0, "_id_");
    must(store_message_get_many(x->store, ctx(x), "ua", &x->big, x->msg_ids, NK,
                                msgs, found, &err),
         &err, "message get many");
    shape_end(x);
}

/* Import's reads and writes are the shapes above (session by session_id,
 * tombstone put and delete, inserts, delete by ids); the session insert
 * and the message inserts have no plan. */

static void
report_unused(struct explain *x)
{
    static const char *const colls[] = {"sessions", "messages", "memory",
                                        "idempotency_keys", "tombstones"};

    for (size_t i = 0; i < sizeof(colls) / sizeof(colls[0]); i++) {
        mongoc_collection_t *c =
            mongoc_database_get_collection(x->db, colls[i]);
        mongoc_cursor_t *cursor =
            mongoc_collection_find_indexes_with_opts(c, NULL);
        const bson_t *doc;

        while (mongoc_cursor_next(cursor, &doc)) {
            char pad[200];

            snprintf(pad, sizeof(pad), " %s.%s ", colls[i],
                     get_str(doc, "name"));
            if (strstr(x->used, pad) == NULL)
                printf("index %s.%s: in no plan here%s\n", colls[i],
                       get_str(doc, "name"),
                       strcmp(get_str(doc, "name"), "session_seq") == 0
                           ? " (kept for uniqueness of seq)"
                           : "");
        }
        mongoc_cursor_destroy(cursor);
        mongoc_collection_destroy(c);
    }
}

int
main(int argc, char **argv)
{
    struct explain *x = calloc(1, sizeof(*x));
    struct error err = ERROR_INIT;
    mongoc_uri_t *uri;
    bson_error_t e;
    int64_t t0 = clock_mono_ms();
    int rc;

    if (argc != 3 || x == NULL) {
        fprintf(stderr, "usage: mongo_explain URI DATABASE\n");
        return 2;
    }
    x->dbname = argv[2];
    setenv("PARLEY_JWT_SECRET", "mongo-explain-0123456789abcdef0123456789", 1);
    if (config_load(&x->cfg, NULL, &err) != 0 ||
        config_set(&x->cfg, "mongodb_uri", argv[1], &err) != 0 ||
        config_set(&x->cfg, "mongodb_database", argv[2], &err) != 0)
        die("config: %s", err.message);
    store_mongo_global_init();
    arena_init(&x->arena, 64 * 1024);
    x->store = store_mongo_new(&x->cfg, &err);
    if (x->store == NULL)
        die("store: %s", err.message);
    uri = mongoc_uri_new_with_error(argv[1], &e);
    if (uri == NULL)
        die("URI: %s", e.message);
    mongoc_uri_set_appname(uri, "parley-explain");
    x->admin = mongoc_client_new_from_uri_with_error(uri, &e);
    if (x->admin == NULL)
        die("client: %s", e.message);
    mongoc_uri_destroy(uri);
    mongoc_client_set_error_api(x->admin, MONGOC_ERROR_API_VERSION_2);
    x->db = mongoc_client_get_database(x->admin, x->dbname);

    must(store_ensure_indexes(x->store, ctx(x), &err), &err, "indexes");
    seed(x);
    printf("seeded in %" PRId64 " ms: ua %d sessions, a session of %d "
           "messages, ub %d sessions and %d messages, %d memory keys, %d "
           "idempotency keys, %d tombstones\n",
           clock_mono_ms() - t0, A_SESSIONS, BIG_MESSAGES, B_SESSIONS,
           B_MESSAGES, MEMORY_KEYS, IDEM_KEYS, TOMBSTONES);
    profile_on(x);
    printf("%-44s %-15s %-16s %-30s %6s %6s %6s %6s  %s\n", "shape", "command",
           "collection", "indexes", "keys", "docs", "n", "bound", "verdict");
    session_shapes(x);
    message_shapes(x);
    key_and_memory_shapes(x);
    batch_shapes(x);
    counter_shapes(x);
    sweeper_shapes(x);
    erasure_shapes(x);
    report_unused(x);
    printf("%d commands explained, %d inserts (no plan), %d failed, in %" PRId64
           " ms\n",
           x->checked, x->inserts, x->failed, clock_mono_ms() - t0);
    rc = x->failed == 0 ? 0 : 1;

    mongoc_database_destroy(x->db);
    mongoc_client_destroy(x->admin);
    store_free(x->store);
    arena_release(&x->arena);
    config_release(&x->cfg);
    store_mongo_global_cleanup();
    free(x);
    return rc;
}

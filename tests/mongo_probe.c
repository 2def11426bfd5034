/*
 * mongo_probe.c - what a real replica set answers while its primary goes
 * away, and what parley makes of each answer (tests/failover.sh runs it
 * beside parley during every fault).
 *
 *   tests/mongo_probe URI DATABASE OUT
 *
 * Until SIGTERM, SIGINT or SIGUSR1 it runs parley's kinds of operation in
 * a loop on DATABASE.probe, with two clients on URI: one as parley
 * configures the driver (w=majority, journal=true, wtimeoutMS=1500,
 * retryWrites on, retryReads off, the timeouts of a 4 s deadline), and
 * one with retryWrites off too, so that the errors the driver's own retry
 * would hide from parley are seen as well.  The operations: an insert with
 * its own _id, a findAndModify $inc, an upsert, a find by _id, a count
 * (aggregate), and every tenth round a createIndexes.
 *
 * Every failure is one JSON line in OUT:
 *   {"client": "parley"|"noretry", "op": ..., "domain": N, "code": N,
 *    "codeName": ..., "labels": [...], "message": ..., "reply": {...},
 *    "verdict": {"status": 503, "retry": "safe"|"idempotent"|"never"}}
 * where the verdict is store_mongo_classify_json()'s: the status parley
 * answers when its retries run out, and whether it retries.  At exit a
 * last line {"summary": {"ok": N, "failed": N}} follows.  Exit 0; 2 for
 * bad arguments.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <mongoc/mongoc.h>
#pragma GCC diagnostic pop

#include "clock.h"
#include "error.h"
#include "store_mongo.h"
#include "banned.h"

static volatile sig_atomic_t probe_stop = 0;

static void
probe_on_stop(int sig)
{
    (void)sig;
    probe_stop = 1;
}

struct probe {
    FILE *out;
    long ok, failed;
};

static const char *
probe_retry_name(enum retry_class r)
{
    switch (r) {
    case RETRY_SAFE:
        return "safe";
    case RETRY_IDEMPOTENT:
        return "idempotent";
    case RETRY_NEVER:
        break;
    }
    return "never";
}

static void
probe_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* Records one operation's outcome. */
static void
probe_record(struct probe *p, const char *client, const char *op, bool ok,
             const bson_error_t *e, const bson_t *reply)
{
    struct error verdict = ERROR_INIT;
    char *json = NULL;
    bson_iter_t it, found;
    const char *code_name = "";

    if (ok) {
        p->ok++;
        return;
    }
    p->failed++;
    if (reply != NULL && !bson_empty(reply))
        json = bson_as_relaxed_extended_json(reply, NULL);
    store_mongo_classify_json(op, e->domain, e->code, e->message, json,
                              &verdict);
    if (reply != NULL && bson_iter_init(&it, reply) &&
        (bson_iter_find_descendant(&it, "codeName", &found) ||
         (bson_iter_init(&it, reply) &&
          bson_iter_find_descendant(&it, "writeConcernErrors.0.codeName",
                                    &found)) ||
         (bson_iter_init(&it, reply) &&
          bson_iter_find_descendant(&it, "writeConcernError.codeName",
                                    &found))) &&
        BSON_ITER_HOLDS_UTF8(&found))
        code_name = bson_iter_utf8(&found, NULL);
    fprintf(p->out,
            "{\"t\":%lld,\"client\":\"%s\",\"op\":\"%s\","
            "\"domain\":%u,\"code\":%u,\"codeName\":",
            (long long)clock_now_ms(), client, op, e->domain, e->code);
    probe_json_string(p->out, code_name);
    fprintf(p->out, ",\"labels\":[");
    if (reply != NULL) {
        static const char *const labels[] = {
            "RetryableWriteError", "TransientTransactionError", "NetworkError"};
        bool first = true;

        for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
            if (mongoc_error_has_label(reply, labels[i])) {
                fprintf(p->out, "%s\"%s\"", first ? "" : ",", labels[i]);
                first = false;
            }
    }
    fprintf(p->out, "],\"message\":");
    probe_json_string(p->out, e->message);
    fprintf(p->out,
            ",\"reply\":%s,\"verdict\":{\"status\":%d,\"retry\":\"%s\","
            "\"code\":\"%s\"}}\n",
            json != NULL ? json : "null", error_http_status(verdict.code),
            probe_retry_name(verdict.retry), error_code_name(verdict.code));
    fflush(p->out);
    bson_free(json);
}

static void
probe_round(struct probe *p, mongoc_client_t *client, const char *name,
            const char *db, long round)
{
    mongoc_collection_t *coll =
        mongoc_client_get_collection(client, db, "probe");
    bson_t reply;
    bson_error_t e;
    bson_oid_t oid;
    bson_t *doc, *query, *update, *opts;
    bool ok;

    bson_oid_init(&oid, NULL);
    doc = BCON_NEW("_id", BCON_OID(&oid), "round", BCON_INT64(round));
    ok = mongoc_collection_insert_one(coll, doc, NULL, &reply, &e);
    probe_record(p, name, "insert", ok, &e, &reply);
    bson_destroy(&reply);
    bson_destroy(doc);

    {
        mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();

        query = BCON_NEW("_id", BCON_UTF8("counter"));
        update = BCON_NEW("$inc", "{", "n", BCON_INT64(1), "}");
        mongoc_find_and_modify_opts_set_update(fam, update);
        mongoc_find_and_modify_opts_set_flags(
            fam,
            MONGOC_FIND_AND_MODIFY_UPSERT | MONGOC_FIND_AND_MODIFY_RETURN_NEW);
        ok = mongoc_collection_find_and_modify_with_opts(coll, query, fam,
                                                         &reply, &e);
        probe_record(p, name, "findAndModify", ok, &e, &reply);
        bson_destroy(&reply);
        bson_destroy(update);
        bson_destroy(query);
        mongoc_find_and_modify_opts_destroy(fam);
    }

    query = BCON_NEW("_id", BCON_UTF8("upserted"));
    update = BCON_NEW("$set", "{", "round", BCON_INT64(round), "}");
    opts = BCON_NEW("upsert", BCON_BOOL(true));
    ok = mongoc_collection_update_one(coll, query, update, opts, &reply, &e);
    probe_record(p, name, "update", ok, &e, &reply);
    bson_destroy(&reply);
    bson_destroy(opts);
    bson_destroy(update);
    bson_destroy(query);

    {
        const bson_t *found = NULL;
        mongoc_cursor_t *cursor;
        const bson_t *err_doc = NULL;

        query = BCON_NEW("_id", BCON_OID(&oid));
        opts = BCON_NEW("limit", BCON_INT64(1));
        cursor = mongoc_collection_find_with_opts(coll, query, opts, NULL);
        while (mongoc_cursor_next(cursor, &found))
            ;
        ok = !mongoc_cursor_error_document(cursor, &e, &err_doc);
        probe_record(p, name, "find", ok, &e, err_doc);
        mongoc_cursor_destroy(cursor);
        bson_destroy(opts);
        bson_destroy(query);
    }

    query = BCON_NEW("round", "{", "$gte", BCON_INT64(round - 5), "}");
    ok = mongoc_collection_count_documents(coll, query, NULL, NULL, &reply,
                                           &e) >= 0;
    probe_record(p, name, "count", ok, &e, &reply);
    bson_destroy(&reply);
    bson_destroy(query);

    if (round % 10 == 0) {
        mongoc_database_t *d = mongoc_client_get_database(client, db);
        bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8("probe"), "indexes",
                               "[", "{", "key", "{", "round", BCON_INT32(1),
                               "}", "name", BCON_UTF8("round"), "}", "]");

        ok = mongoc_database_write_command_with_opts(d, cmd, NULL, &reply, &e);
        probe_record(p, name, "createIndexes", ok, &e, &reply);
        bson_destroy(&reply);
        bson_destroy(cmd);
        mongoc_database_destroy(d);
    }
    mongoc_collection_destroy(coll);
}

/* A client popped from a pool configured as parley's (store_mongo.c: a
 * pool, whose monitor threads notice a new primary at once), or with
 * retryWrites off too. */
static mongoc_client_t *
probe_client(const char *uri_text, bool retry_writes,
             mongoc_client_pool_t **pool)
{
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_text, &e);
    mongoc_write_concern_t *wc;
    mongoc_client_t *client;

    if (uri == NULL) {
        fprintf(stderr, "mongo_probe: %s\n", e.message);
        exit(2);
    }
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                   1333);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 1333);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 2000);
    mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false);
    mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYWRITES, retry_writes);
    mongoc_uri_set_appname(uri, retry_writes ? "parley-probe"
                                             : "parley-probe-noretry");
    wc = mongoc_write_concern_new();
    mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
    mongoc_write_concern_set_journal(wc, true);
    mongoc_write_concern_set_wtimeout_int64(wc, 1500);
    mongoc_uri_set_write_concern(uri, wc);
    mongoc_write_concern_destroy(wc);
    *pool = mongoc_client_pool_new_with_error(uri, &e);
    mongoc_uri_destroy(uri);
    if (*pool == NULL) {
        fprintf(stderr, "mongo_probe: %s\n", e.message);
        exit(2);
    }
    mongoc_client_pool_set_error_api(*pool, MONGOC_ERROR_API_VERSION_2);
    client = mongoc_client_pool_pop(*pool);
    return client;
}

int
main(int argc, char **argv)
{
    struct probe p = {NULL, 0, 0};
    struct sigaction sa;
    mongoc_client_t *parley, *noretry;
    mongoc_client_pool_t *parley_pool, *noretry_pool;
    long round = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: mongo_probe URI DATABASE OUT\n");
        return 2;
    }
    p.out = fopen(argv[3], "a");
    if (p.out == NULL) {
        perror(argv[3]);
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = probe_on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    mongoc_init();
    mongoc_log_set_handler(NULL, NULL);
    parley = probe_client(argv[1], true, &parley_pool);
    noretry = probe_client(argv[1], false, &noretry_pool);
    while (!probe_stop) {
        probe_round(&p, parley, "parley", argv[2], round);
        probe_round(&p, noretry, "noretry", argv[2], round);
        round++;
        clock_sleep_ms(20);
    }
    fprintf(p.out, "{\"summary\":{\"ok\":%ld,\"failed\":%ld}}\n", p.ok,
            p.failed);
    fclose(p.out);
    mongoc_client_pool_push(noretry_pool, noretry);
    mongoc_client_pool_push(parley_pool, parley);
    mongoc_client_pool_destroy(noretry_pool);
    mongoc_client_pool_destroy(parley_pool);
    mongoc_cleanup();
    return 0;
}

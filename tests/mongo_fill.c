/*
 * mongo_fill.c - fills a session with N messages fast, straight into the
 * database through parley's own store (store_mongo.c), so the documents
 * are exactly parley's: scripts/bench's way to a session of 10^6 messages
 * on a real mongod, where appending them through the API would take hours.
 *
 *   tests/mongo_fill URI DATABASE USER SESSION_ID N
 *
 * The session must exist (made through the API).  One seq reservation of N
 * (the session's last_seq and message_count grow by N, as N appends would
 * make them), then the messages, those seqs in order, 1000 to an ordered
 * insert_many, roles alternating user and assistant, contents of some 60
 * bytes.  Give a URI with w=1 for speed (parley's w=majority default
 * applies only when the URI sets neither w nor journal); the secondaries
 * still replicate everything.  Prints the time taken; exit 0, 1 on
 * failure, 2 for bad arguments.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "config.h"
#include "store.h"
#include "store_mongo.h"
#include "uuid.h"
#include "banned.h"

#define FILL_BATCH 1000

int
main(int argc, char **argv)
{
    static struct message batch[FILL_BATCH];
    static char text[FILL_BATCH][80];
    struct config cfg;
    struct error err = ERROR_INIT;
    struct store *store = NULL;
    struct arena arena;
    struct store_ctx ctx;
    struct session s;
    struct store_reserve reserve;
    char *end;
    long long n;
    int64_t first, t0 = clock_mono_ms(), now = clock_now_ms();
    int rc = 1;

    memset(&reserve, 0, sizeof(reserve));
    if (argc != 6 || (n = strtoll(argv[5], &end, 10)) < 1 || *end != '\0') {
        fprintf(stderr,
                "usage: mongo_fill URI DATABASE USER SESSION_ID N (N >= 1)\n");
        return 2;
    }
    setenv("PARLEY_JWT_SECRET", "mongo-fill-0123456789abcdef0123456789ab", 1);
    if (config_load(&cfg, NULL, &err) != 0 ||
        config_set(&cfg, "mongodb_uri", argv[1], &err) != 0 ||
        config_set(&cfg, "mongodb_database", argv[2], &err) != 0 ||
        config_set(&cfg, "request_deadline_ms", "60000", &err) != 0) {
        fprintf(stderr, "mongo_fill: %s\n", err.message);
        return 2;
    }
    store_mongo_global_init();
    arena_init(&arena, 64 * 1024);
    store = store_mongo_new(&cfg, &err);
    if (store == NULL)
        goto done;
    memset(&ctx, 0, sizeof(ctx));
    ctx.arena = &arena;
    ctx.deadline_ms = clock_mono_ms() + 60000;
    /* The counters grow as n appends of ~45 bytes would make them; the
     * quotas given are beyond any fill. */
    reserve.add.messages = n;
    reserve.add.bytes = n * 45;
    reserve.max.messages = INT64_C(1) << 40;
    reserve.max.bytes = INT64_C(1) << 50;
    reserve.max.memory_keys = INT64_C(1) << 40;
    reserve.message_write = true;
    if (!store_session_get(store, &ctx, argv[3], argv[4], &s, &err) ||
        !store_session_reserve_seq(store, &ctx, argv[3], &s.id, &reserve, now,
                                   &s, &err))
        goto done;
    first = s.last_seq - n + 1;
    for (long long done = 0; done < n;) {
        size_t k = n - done < FILL_BATCH ? (size_t)(n - done) : FILL_BATCH;

        for (size_t j = 0; j < k; j++) {
            struct message *m = &batch[j];
            int64_t seq = first + done + (int64_t)j;

            memset(m, 0, sizeof(*m));
            uuid_generate(&m->id);
            m->session_uuid = s.id;
            m->user_id = argv[3];
            m->session_id = argv[4];
            m->seq = seq;
            m->role = seq % 2 ? ROLE_USER : ROLE_ASSISTANT;
            snprintf(text[j], sizeof(text[j]),
                     "fill message %" PRId64 " of a session, bench", seq);
            m->content = text[j];
            m->created_at = m->updated_at = now;
        }
        ctx.deadline_ms = clock_mono_ms() + 60000;
        if (!store_message_insert(store, &ctx, batch, k, &err))
            goto done;
        done += (long long)k;
        if (done % 100000 == 0 || done == n)
            fprintf(stderr, "mongo_fill: %lld of %lld in %" PRId64 " ms\n",
                    done, n, clock_mono_ms() - t0);
    }
    printf("filled %s with %lld messages (seq %" PRId64 "..%" PRId64
           ") in %.1f s\n",
           argv[4], n, first, s.last_seq,
           (double)(clock_mono_ms() - t0) / 1000.0);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "mongo_fill: %s\n", err.message);
    store_free(store);
    arena_release(&arena);
    config_release(&cfg);
    store_mongo_global_cleanup();
    return rc;
}

/*
 * fake_store.h - an in-memory store backend for unit tests, whose
 * operations can be told to fail (libmongoc's mock server idea), and a
 * fake clock for the retry policy.
 *
 * The backend keeps sessions, messages, idempotency keys, memory,
 * tombstones and user counters in
 * memory with the same unique keys as the real one (session: id, user +
 * session_id; message: id, session + seq; idempotency key: user +
 * session + key; memory: session + key), copies what it is given and
 * hands out copies from the caller's arena, so a test may reset its arena
 * between calls.  As the real one does, it reads a stored null extra_data
 * back as NULL.
 *
 * A script makes calls fail: fake_store_fail(s, FAKE_SESSION_INSERT, 2,
 * ERR_UNAVAILABLE, RETRY_SAFE, false) makes the next two inserts fail; later
 * calls succeed again.  Scripted steps queue per operation.  With
 * `applied` the call does its work and then reports the failure, as a
 * write whose reply was lost does (an applied message insert reports 0
 * messages inserted).  fake_store_fail_insert() scripts a message insert
 * that stores only part of its batch.
 */
#ifndef PARLEY_TEST_FAKE_STORE_H
#define PARLEY_TEST_FAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "retry.h"
#include "store.h"

/* One per backend operation, from store.h's list: FAKE_PING,
 * FAKE_SESSION_INSERT, ... */
#define FAKE_OP_ENUM(name, NAME) FAKE_##NAME,
enum fake_op { STORE_OPERATIONS(FAKE_OP_ENUM) FAKE_OP_COUNT };
#undef FAKE_OP_ENUM

#define FAKE_MAX_RECORDED 64

enum fake_random {
    FAKE_RANDOM_CAP,  /* random_upto(n) answers n: the longest sleep */
    FAKE_RANDOM_ZERO, /* answers 0 */
    FAKE_RANDOM_HALF, /* answers n / 2 */
};

/* Monotonic time that moves only when the policy sleeps or the fake
 * store is called.  Zero-initialise, then set the fields you need. */
struct fake_clock {
    int64_t now;
    int64_t op_ms; /* each fake store call takes this long */
    enum fake_random random;
    int nsleeps; /* every sleep, in order (the first FAKE_MAX_RECORDED) */
    int64_t sleeps[FAKE_MAX_RECORDED];
    int nrandoms; /* every n given to random_upto(), in order */
    uint64_t randoms[FAKE_MAX_RECORDED];
};

/* Fills p with the limits and c's time, sleep and randomness. */
void fake_clock_policy(struct retry_policy *p, struct fake_clock *c,
                       int max_attempts, int base_ms, int max_ms);

/* A store on the fake backend with a copy of policy (NULL: three tries,
 * no sleeping, the real clock).  clock may be NULL; if not, every call
 * advances it by clock->op_ms and is recorded with its start time.
 * Free with store_free(). */
struct store *fake_store_new(const struct retry_policy *policy,
                             struct fake_clock *clock);

/* Queues: the next `times` calls of op fail with code and retry. */
void fake_store_fail(struct store *s, enum fake_op op, int times,
                     enum error_code code, enum retry_class retry,
                     bool applied);
/* Queues a message insert that stores the first `stored` messages of its
 * batch (fewer if a unique key stops it first), then fails with code and
 * retry, reporting *inserted = reported (0: the reply was lost). */
void fake_store_fail_insert(struct store *s, size_t stored, size_t reported,
                            enum error_code code, enum retry_class retry);
/* Runs fn(arg) once, at the start of call number nth (1-based) of op,
 * before that call does anything: another client's work interleaved at an
 * exact point (fn may call the store; its calls count too).  One hook at
 * a time; a new one replaces the old. */
void fake_store_on_call(struct store *s, enum fake_op op, int nth,
                        void (*fn)(void *arg), void *arg);
/* Calls of op so far, failed ones included. */
int fake_store_calls(const struct store *s, enum fake_op op);
/* Start time (clock->now) of call number i across all operations; calls
 * are counted from 0, the first FAKE_MAX_RECORDED are kept. */
int fake_store_ncalls(const struct store *s);
int64_t fake_store_call_at(const struct store *s, int i);
/* Sessions held. */
size_t fake_store_count(const struct store *s);
/* Messages, idempotency keys and memory entries held (of every user). */
size_t fake_store_message_count(const struct store *s);
size_t fake_store_idem_count(const struct store *s);
size_t fake_store_memory_count(const struct store *s);
/* Tombstones held (of every user); and whether the one of {user, id} is
 * there, with its time in *at (at may be NULL). */
size_t fake_store_tombstone_count(const struct store *s);
bool fake_store_tombstone(const struct store *s, const char *user,
                          const struct uuid *id, int64_t *at);

/* The user's session counter (0 without a counter document). */
size_t fake_store_user_sessions(const struct store *s, const char *user);

/* A minimal valid session of user: fresh id, the given session_id,
 * status active, version 1, empty metadata from a, times at now. */
void fake_session(struct session *sess, struct arena *a, const char *user,
                  const char *session_id, int64_t now);
/* A message of sess: fresh id, the given seq, role and content (copied
 * to a), null tool fields and extra_data, times at now. */
void fake_message(struct message *m, struct arena *a,
                  const struct session *sess, int64_t seq,
                  enum message_role role, const char *content, int64_t now);

#endif

/*
 * tally.h - per-session metrics, batched per worker.
 *
 * Every request that names one of the caller's sessions adds to that
 * session's metrics (request_count, error_count, total_processing_ms).
 * Writing them one $inc per request cost a database round trip per
 * request, about as much as serving a GET; so a worker adds each request
 * to a small table of pending deltas keyed by (user, session_id) and
 * writes them with store_session_add_metrics(), one update per distinct
 * session, when
 *   - the oldest pending delta is TALLY_MAX_AGE_MS old, whether the worker
 *     is busy or idle (an idle one waits for a connection at most that
 *     long; worker.c), so a count is written within about 100 ms of its
 *     request's answer, and a client that sends one request at a time
 *     costs one write per 100 ms, not one per request;
 *   - the table holds TALLY_MAX_SESSIONS sessions;
 *   - the worker stops (SIGTERM drains it).
 * All of that happens after the response has been sent: the client never
 * waits for it.  The price: a worker killed outright (SIGKILL, a crash)
 * loses the deltas it had not written yet, at most about TALLY_MAX_AGE_MS
 * worth of requests.  Metrics are best effort, as they were.
 *
 * A tally belongs to one worker (one thread) and is never shared.
 */
#ifndef PARLEY_TALLY_H
#define PARLEY_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define TALLY_MAX_SESSIONS 64
#define TALLY_MAX_AGE_MS   100

struct tally;

/* Aborts on out-of-memory, as the arena does. */
struct tally *tally_new(void);
/* Frees the table and anything still pending in it, unwritten; NULL is
 * fine.  Call tally_flush() first to keep the deltas. */
void tally_free(struct tally *t);

/* Counts one request for the session user/session_id (both copied: the
 * caller's strings may die with its request), an error when error, and
 * ms of serving time.  now_ms is monotonic (clock_mono_ms()).  Returns
 * false, counting nothing, only when the table is full and has no entry
 * for this session yet: flush, then add again. */
bool tally_add(struct tally *t, const char *user, const char *session_id,
               bool error, double ms, int64_t now_ms);

/* Distinct sessions pending. */
size_t tally_pending(const struct tally *t);

/* How long the pending deltas may still wait, in ms: -1 when nothing is
 * pending (wait as long as you like), 0 when they are due now (the table
 * is full, or the oldest is TALLY_MAX_AGE_MS old), else the time until
 * the oldest is. */
int tally_wait_ms(const struct tally *t, int64_t now_ms);

/* Writes every pending session's deltas (store_session_add_metrics, one
 * update each), all within deadline_ms (monotonic), and empties the table
 * whatever happened: a delta that could not be written is dropped, as a
 * write that failed always was.  After a failure that says the database
 * is unavailable the rest are dropped without trying: they would wait
 * for the same dead server one after another.  Returns how many sessions'
 * deltas were written; errors are logged at debug level. */
size_t tally_flush(struct tally *t, struct store *store, int64_t deadline_ms);

#endif

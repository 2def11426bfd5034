/*
 * worker.h - one pre-forked child: serves requests until told to stop.
 */
#ifndef PARLEY_WORKER_H
#define PARLEY_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Runs in the child right after fork(): makes the child's own RNG seed,
 * MongoDB client pool and FastCGI state, then serves.  Returns the exit
 * status for the child.  indexes_ready is the supervisor's shared flag:
 * until it is set, database requests answer 503 (app.h). */
int worker_main(const struct config *cfg, int listen_fd,
                const atomic_bool *indexes_ready);

/* The exit status of a worker that ends itself to be replaced (its RSS
 * grew past worker_max_rss_mb): the supervisor starts the next one at
 * once, without the back-off of a worker that died. */
#define WORKER_EXIT_RECYCLE 3

/* The resident set size of this process in bytes, from
 * /proc/self/statm; -1 when it cannot be read. */
int64_t worker_rss_bytes(void);

#endif

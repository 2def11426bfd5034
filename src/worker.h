/*
 * worker.h - one pre-forked child: serves requests until told to stop.
 */
#ifndef PARLEY_WORKER_H
#define PARLEY_WORKER_H

#include <stdatomic.h>

#include "config.h"

/* Runs in the child right after fork(): makes the child's own RNG seed,
 * MongoDB client pool and FastCGI state, then serves.  Returns the exit
 * status for the child.  indexes_ready is the supervisor's shared flag:
 * until it is set, database requests answer 503 (app.h). */
int worker_main(const struct config *cfg, int listen_fd,
                const atomic_bool *indexes_ready);

#endif

/*
 * worker.h - one pre-forked child: serves requests until told to stop.
 */
#ifndef PARLEY_WORKER_H
#define PARLEY_WORKER_H

#include <stdbool.h>

#include "config.h"

/* Runs in the child right after fork(): makes the child's own RNG seed,
 * MongoDB client pool and FastCGI state, then serves.  Returns the exit
 * status for the child.  indexes_ready says the supervisor made the
 * indexes; if not, the worker makes them before the first database
 * request. */
int worker_main(const struct config *cfg, int listen_fd, bool indexes_ready);

#endif

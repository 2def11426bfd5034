/*
 * supervisor.h - the parent of the pre-forked workers.
 *
 * It opens the listening socket, makes the indexes (or, if the database
 * does not answer, forks an indexer child that makes them once it does;
 * workers answer database requests 503 until then), forks `workers`
 * children and then only waits for signals, synchronously, with
 * sigtimedwait(2) on a blocked set (SIGCHLD, SIGTERM, SIGINT, SIGHUP): a
 * signal that arrives while the parent is busy stays pending until the
 * next wait, so none is lost, and there is no handler to race with.
 *   SIGCHLD  reap every exited child (waitpid loop) and respawn it,
 *            rate-limited: a child that dies within 2 s of its start is
 *            replaced after an exponential delay (0.1 s .. 10 s).
 *   SIGTERM, SIGINT  drain: SIGTERM every child (each finishes the
 *            request it holds, then exits), wait for all of them, SIGKILL
 *            whatever is left after shutdown_timeout seconds (or, with a
 *            conversation pool, conversation_deadline_ms + 1 s if that
 *            is longer: a turn is never cut by a drain), exit.
 *   SIGHUP   re-read the configuration and replace the workers
 *            gracefully: start a new generation, then drain the old one.
 *            listen and conversation_listen cannot change without a
 *            restart.
 * Two pools, the way php-fpm runs pools, each on its own socket with its
 * own workers, respawned, drained and reloaded alike: `workers` on listen,
 * serving every route, and `conversation_workers` on conversation_listen
 * (next to a unix listen socket by default), for the web server to send
 * the conversation route to: its turns wait on a model for seconds, and
 * must never hold the workers that the fast routes need.  With
 * conversation_workers 0, or no conversation_listen (TCP or an inherited
 * socket), there is one pool, which serves conversations too.
 * Every cleanup_interval seconds (the first time after at most a minute;
 * 0: never) it forks one short-lived sweeper child (sweeper_main), never
 * more than one at a time and never respawned; one still running when the
 * next is due makes that one skip, one running past its interval (1 to 10
 * minutes) is killed, and a drain stops it with the workers.
 */
#ifndef PARLEY_SUPERVISOR_H
#define PARLEY_SUPERVISOR_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

/* Takes ownership of *cfg (released at exit).  Returns the process exit
 * status. */
int supervisor_run(struct config *cfg, const char *config_path);

/* Makes the indexes (store_ensure_indexes: each round under a request
 * deadline), trying again until they are made, *stop (may be NULL) is
 * set, or the monotonic time give_up_ms (0: never) would pass; between
 * rounds it pauses 250 ms after an unreachable database, up to 5 s after
 * one that answered with an error.  Safe while other processes and hosts
 * do the same.  Makes its own store: call it where no pool may be
 * inherited by a later fork, or in a process that does not fork.  The
 * supervisor and `parley ensure-indexes` use it. */
bool supervisor_ensure_indexes(const struct config *cfg, int64_t give_up_ms,
                               const volatile sig_atomic_t *stop,
                               struct error *err);

#endif

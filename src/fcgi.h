/*
 * fcgi.h - the FastCGI adapter.  The only module that includes fcgiapp.h.
 *
 * The supervisor opens the listening socket once, before forking
 * (fcgi_listen); each worker then waits for connections on it with
 * fcgi_accept(), which sleeps in ppoll(2) with the caller's "signals
 * allowed while idle" mask.  So a worker takes SIGTERM only while idle:
 * never in the middle of a request (libfcgi's own SIGTERM handling would
 * cut a request short), and never lost between a check of the stop flag
 * and a blocking accept (the classic lost wake-up).  The listening socket
 * is non-blocking: when several idle workers wake for one connection, the
 * losers go back to ppoll instead of blocking in accept().
 */
#ifndef PARLEY_FCGI_H
#define PARLEY_FCGI_H

#include <signal.h>
#include <stdbool.h>

#include "arena.h"
#include "config.h"
#include "error.h"
#include "http.h"

struct fcgi_listener {
    int fd;
    char *unix_path; /* to unlink at exit; NULL if not ours */
};

/* Opens cfg->listen: "unix:/path" (a stale socket file is replaced,
 * permissions set to socket_mode), "host:port", "fd:N", or "" for the
 * socket inherited on fd 0 (spawn-fcgi, Apache mod_fcgid).  Returns -1
 * with err set. */
int fcgi_listen(const struct config *cfg, struct fcgi_listener *l,
                struct error *err);
/* The same for another address of the same forms (the conversation
 * pool's conversation_listen), with cfg's socket_mode and backlog. */
int fcgi_listen_at(const struct config *cfg, const char *address,
                   struct fcgi_listener *l, struct error *err);
/* True if fd 0 is a listening socket we could serve on. */
bool fcgi_stdin_is_listener(void);
void fcgi_listener_close(struct fcgi_listener *l, bool unlink_socket);

struct fcgi_conn;

/* Per-worker state; call after fork.  io_timeout_ms (0: none) bounds how
 * long one read of a request's body or one write of its answer may block:
 * a web server that stops sending or reading (a broken peer, a client
 * that reads nothing through a front that does not buffer) cannot hold a
 * worker longer than that. */
struct fcgi_conn *fcgi_conn_new(int listen_fd, int io_timeout_ms);
void fcgi_conn_free(struct fcgi_conn *c);

/* Waits for the next request, at most timeout_ms (-1: no limit).
 * Returns 1 with a request accepted; 0 when a signal in wait_mask's
 * complement arrived (the caller checks its flags), when timeout_ms
 * passed, or, with a timeout, when another worker took the connection
 * this one woke for (the caller has the idle moment it asked for); -1 on
 * a fatal error. */
int fcgi_accept(struct fcgi_conn *c, const sigset_t *wait_mask, int timeout_ms);

/* Fills req from the accepted request: parameters, headers we use, and
 * the body (read whole, up to cfg->max_body_bytes; beyond that the rest is
 * drained and req->body_too_large set; a body that ends before its
 * Content-Length, the peer gone or timed out, sets req->body_short).
 * Strings live in the arena. */
void fcgi_read_request(struct fcgi_conn *c, const struct config *cfg,
                       struct arena *a, struct request *req);

/* Sends status, headers and body (no body for HEAD); for a streamed
 * response, only the rest of the body. */
void fcgi_send(struct fcgi_conn *c, const struct request *req,
               const struct response *resp);
/* A sink that streams a response of this request through c. */
void fcgi_sink(struct fcgi_conn *c, const struct request *req,
               struct response_sink *sink);

/* Ends the request: flushes and closes the connection so the web server
 * sees the response complete.  Work after this costs the client nothing. */
void fcgi_finish(struct fcgi_conn *c);

#endif

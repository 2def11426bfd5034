#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi.h"
#include "log.h"
#include "banned.h"

struct fcgi_conn {
    FCGX_Request req;
    int listen_fd;
    bool active;    /* a request is accepted and not yet finished */
    bool head_only; /* the current request is HEAD: no body is sent */
    bool broken;    /* a write of the current request failed */
    int io_timeout_ms;
};

bool
fcgi_stdin_is_listener(void)
{
    int listening = 0;
    socklen_t len = sizeof(listening);

    return getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
           listening;
}

static int
set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int
listen_unix(const struct config *cfg, const char *address,
            struct fcgi_listener *l, struct error *err)
{
    const char *path = address + 5;
    struct sockaddr_un sa;
    int fd = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        error_set(err, ERR_VALIDATION, "listen", "socket path too long");
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* A socket file left by a previous run that died would make bind fail;
     * it is only removed if it really is a socket. */
    {
        struct stat st;

        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto fail;
    if (chmod(path, (mode_t)cfg->socket_mode) < 0)
        goto fail;
    if (listen(fd, cfg->listen_backlog) < 0)
        goto fail;
    l->fd = fd;
    l->unix_path = strdup(path);
    if (l->unix_path == NULL)
        abort();
    return 0;
fail:
    error_set(err, ERR_INTERNAL, "listen", "cannot listen on %s: %s", address,
              strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static int
listen_tcp(const struct config *cfg, const char *address,
           struct fcgi_listener *l, struct error *err)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    const char *port = colon + 1;
    size_t hlen = (size_t)(colon - address);
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, on = 1, rc;

    if (hlen >= sizeof(host)) {
        error_set(err, ERR_VALIDATION, "listen", "host name too long");
        return -1;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    /* "[::1]:9000" */
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        error_set(err, ERR_VALIDATION, "listen", "cannot resolve %s: %s",
                  address, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, cfg->listen_backlog) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        error_set(err, ERR_INTERNAL, "listen", "cannot listen on %s: %s",
                  address, strerror(errno));
        return -1;
    }
    l->fd = fd;
    l->unix_path = NULL;
    return 0;
}

int
fcgi_listen(const struct config *cfg, struct fcgi_listener *l,
            struct error *err)
{
    return fcgi_listen_at(cfg, cfg->listen, l, err);
}

int
fcgi_listen_at(const struct config *cfg, const char *address,
               struct fcgi_listener *l, struct error *err)
{
    int rc;

    l->fd = -1;
    l->unix_path = NULL;
    if (address[0] == '\0' || strncmp(address, "fd:", 3) == 0) {
        char *end;
        long fd = address[0] ? strtol(address + 3, &end, 10) : 0;
        int listening = 0;
        socklen_t len = sizeof(listening);

        if (address[0] && (*end != '\0' || fd < 0 || fd > 65535)) {
            error_set(err, ERR_VALIDATION, "listen", "bad fd in %s", address);
            return -1;
        }
        if (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) <
                0 ||
            !listening) {
            error_set(err, ERR_VALIDATION, "listen",
                      "fd %ld is not a listening socket (set listen = "
                      "unix:/path or host:port, or start parley from "
                      "spawn-fcgi or mod_fcgid)",
                      fd);
            return -1;
        }
        l->fd = (int)fd;
        rc = 0;
    } else if (strncmp(address, "unix:", 5) == 0) {
        rc = listen_unix(cfg, address, l, err);
    } else {
        rc = listen_tcp(cfg, address, l, err);
    }
    if (rc == 0 && set_nonblock(l->fd) < 0) {
        error_set(err, ERR_INTERNAL, "listen", "fcntl: %s", strerror(errno));
        return -1;
    }
    return rc;
}

void
fcgi_listener_close(struct fcgi_listener *l, bool unlink_socket)
{
    if (l->fd >= 0)
        close(l->fd);
    if (unlink_socket && l->unix_path != NULL)
        unlink(l->unix_path);
    free(l->unix_path);
    l->fd = -1;
    l->unix_path = NULL;
}

struct fcgi_conn *
fcgi_conn_new(int listen_fd, int io_timeout_ms)
{
    struct fcgi_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        abort();
    /* FCGX_Init installs libfcgi's signal handlers only where the
     * disposition is still SIG_DFL; the worker has set its own first. */
    if (FCGX_Init() != 0)
        abort();
    FCGX_InitRequest(&c->req, listen_fd, 0);
    c->listen_fd = listen_fd;
    c->io_timeout_ms = io_timeout_ms;
    return c;
}

void
fcgi_conn_free(struct fcgi_conn *c)
{
    if (c == NULL)
        return;
    if (c->active)
        FCGX_Finish_r(&c->req);
    FCGX_Free(&c->req, 1);
    free(c);
}

/* A read or write that blocks past io_timeout_ms fails (EAGAIN): libfcgi
 * then marks the stream in error, read_body() sees the body end short,
 * and fcgi_put() marks the request broken. */
static void
fcgi_set_timeouts(struct fcgi_conn *c)
{
    struct timeval tv;

    if (c->io_timeout_ms <= 0 || c->req.ipcFd < 0)
        return;
    tv.tv_sec = c->io_timeout_ms / 1000;
    tv.tv_usec = (c->io_timeout_ms % 1000) * 1000;
    (void)setsockopt(c->req.ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(c->req.ipcFd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int
fcgi_accept(struct fcgi_conn *c, const sigset_t *wait_mask, int timeout_ms)
{
    for (;;) {
        struct pollfd pfd = {.fd = c->listen_fd, .events = POLLIN};
        struct timespec ts = {timeout_ms / 1000,
                              (long)(timeout_ms % 1000) * 1000000L};
        int rc = ppoll(&pfd, 1, timeout_ms < 0 ? NULL : &ts, wait_mask);

        if (rc == 0)
            return 0; /* timed out */
        if (rc < 0) {
            if (errno == EINTR)
                return 0;
            log_error("ppoll: %s", strerror(errno));
            return -1;
        }
        if (pfd.revents & (POLLERR | POLLNVAL)) {
            log_error("listening socket failed");
            return -1;
        }
        rc = FCGX_Accept_r(&c->req);
        if (rc == 0) {
            c->active = true;
            c->broken = false;
            fcgi_set_timeouts(c);
            return 1;
        }
        /* Another worker won the race (EAGAIN), or the peer gave up
         * between connect and accept: wait again, or, for a caller with
         * a timeout (work of its own pending), return to it, so that
         * waking for a connection someone else took never restarts its
         * clock. */
        if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -ECONNABORTED ||
            rc == -EINTR || rc == -EPROTO) {
            if (timeout_ms >= 0)
                return 0;
            continue;
        }
        log_error("FastCGI accept failed: %d", rc);
        return -1;
    }
}

static const char *
param(struct fcgi_conn *c, struct arena *a, const char *name)
{
    const char *v = FCGX_GetParam(name, c->req.envp);

    /* libfcgi frees its parameters at FCGX_Finish_r; the request's strings
     * must outlive that (metrics are written after finishing). */
    return v != NULL ? arena_strdup(a, v) : NULL;
}

/* The request line and the headers we use, from the FastCGI
 * parameters. */
static void
read_params(struct fcgi_conn *c, struct arena *a, struct request *req)
{
    const char *uri, *q, *cl;

    req->method_name = param(c, a, "REQUEST_METHOD");
    if (req->method_name == NULL)
        req->method_name = "GET";
    req->method = http_method_parse(req->method_name);
    uri = param(c, a, "REQUEST_URI");
    if (uri == NULL) /* not nginx or Apache: build it from the CGI parts */
        uri = param(c, a, "SCRIPT_NAME");
    if (uri == NULL)
        uri = "/";
    q = strchr(uri, '?');
    if (q != NULL) {
        req->path = arena_strndup(a, uri, (size_t)(q - uri));
        req->query = q + 1;
    } else {
        req->path = uri;
        q = param(c, a, "QUERY_STRING");
        req->query = q != NULL ? q : "";
    }
    req->authorization = param(c, a, "HTTP_AUTHORIZATION");
    req->content_type = param(c, a, "CONTENT_TYPE");
    req->if_match = param(c, a, "HTTP_IF_MATCH");
    req->idempotency_key = param(c, a, "HTTP_IDEMPOTENCY_KEY");
    /* nginx: PARLEY_REQUEST_START $msec; Apache (mod_headers):
     * RequestHeader set X-Request-Start "%t". */
    q = param(c, a, "PARLEY_REQUEST_START");
    if (q == NULL || q[0] == '\0')
        q = param(c, a, "HTTP_X_REQUEST_START");
    req->web_start_ms = q != NULL ? http_parse_request_start(q) : 0;
    req->request_id = param(c, a, "PARLEY_REQUEST_ID");
    if (req->request_id == NULL || req->request_id[0] == '\0')
        req->request_id = param(c, a, "HTTP_X_REQUEST_ID");
    if (req->content_type != NULL && req->content_type[0] == '\0')
        req->content_type = NULL;
    cl = param(c, a, "CONTENT_LENGTH");
    req->content_length = -1;
    if (cl != NULL && cl[0] != '\0') {
        char *end;
        long long v = strtoll(cl, &end, 10);

        if (*end == '\0' && v >= 0)
            req->content_length = v;
    }
}

/* Reads the body whole.  A Content-Length over the limit is refused
 * without storing it; the bytes are still drained so the web server can
 * take the response. */
static void
read_body(struct fcgi_conn *c, size_t max, struct arena *a, struct request *req)
{
    size_t cap, len = 0;
    char *body;
    int n;

    if (req->content_length > (int64_t)max)
        req->body_too_large = true;
    cap = req->content_length >= 0 && !req->body_too_large
              ? (size_t)req->content_length
              : 4096;
    body = arena_alloc(a, cap + 1);
    for (;;) {
        if (len == cap) {
            char *bigger;

            if (req->body_too_large || cap > max)
                break;
            cap *= 2;
            bigger = arena_alloc(a, cap + 1);
            memcpy(bigger, body, len);
            body = bigger;
        }
        n = FCGX_GetStr(body + len, (int)(cap - len), c->req.in);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len > max) {
            req->body_too_large = true;
            break;
        }
    }
    if (req->body_too_large) {
        char sink[16384];
        size_t drained = 0;

        /* Bounded: the web server enforces its own limit, but a broken
         * peer must not keep a worker reading forever. */
        while (drained < 64u << 20 &&
               (n = FCGX_GetStr(sink, sizeof(sink), c->req.in)) > 0)
            drained += (size_t)n;
        len = 0;
    } else if (req->content_length >= 0 && (int64_t)len < req->content_length) {
        /* The stream ended (the peer went away, or stopped sending for
         * longer than the timeout) before the length it announced. */
        req->body_short = true;
    }
    body[len] = '\0';
    req->body = len > 0 ? body : NULL;
    req->body_len = len;
}

void
fcgi_read_request(struct fcgi_conn *c, const struct config *cfg,
                  struct arena *a, struct request *req)
{
    memset(req, 0, sizeof(*req));
    req->arena = a;
    read_params(c, a, req);
    read_body(c, (size_t)cfg->max_body_bytes, a, req);
}

/* Status and headers; with_length adds Content-Length (not for a
 * streamed body, whose length is not known yet). */
/* Appends s (n bytes) to the header block head of *len bytes if it fits
 * (with room for the final CRLF); false if it does not. */
static bool
fcgi_head_add(char *head, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + n + 2 > size)
        return false;
    memcpy(head + *len, s, n);
    *len += n;
    return true;
}

/* "name: value\r\n" appended to the header block. */
static bool
fcgi_head_line(char *head, size_t size, size_t *len, const char *name,
               const char *value)
{
    return fcgi_head_add(head, size, len, name, strlen(name)) &&
           fcgi_head_add(head, size, len, ": ", 2) &&
           fcgi_head_add(head, size, len, value, strlen(value)) &&
           fcgi_head_add(head, size, len, "\r\n", 2);
}

/* Status and headers; with_length adds Content-Length (not for a
 * streamed body, whose length is not known yet).  Put together with
 * memcpy: snprintf() cost some 800 instructions a line, a twentieth of
 * a whole GET's own work. */
static void
fcgi_send_head(struct fcgi_conn *c, const struct response *resp,
               bool with_length)
{
    static const char failed[] = "Status: 500 Internal Server Error\r\n";
    bool body = resp->status != 204 && resp->status != 304;
    char head[2048];
    char status[64], length[24];
    size_t n = 0;
    bool ok;

    snprintf(status, sizeof(status), "%d %s", resp->status,
             http_reason(resp->status));
    ok = fcgi_head_line(head, sizeof(head), &n, "Status", status);
    if (ok && body)
        ok = fcgi_head_line(head, sizeof(head), &n, "Content-Type",
                            resp->content_type ? resp->content_type
                                               : "application/json");
    if (ok && body && with_length) {
        char *p = length + sizeof(length);
        size_t v = resp->body.len;

        *--p = '\0';
        do {
            *--p = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0);
        ok = fcgi_head_line(head, sizeof(head), &n, "Content-Length", p);
    }
    for (size_t i = 0; ok && i < resp->nheaders; i++)
        ok = fcgi_head_line(head, sizeof(head), &n, resp->headers[i].name,
                            resp->headers[i].value);
    if (!ok) {
        /* Our own headers are short; this cannot happen with the ones we
         * set, and a truncated header block must never be sent. */
        log_error("response headers too long");
        n = sizeof(failed) - 1;
        memcpy(head, failed, n);
    }
    memcpy(head + n, "\r\n", 2);
    n += 2;
    FCGX_PutStr(head, (int)n, c->req.out);
}

static void
fcgi_put(struct fcgi_conn *c, const char *data, size_t n)
{
    while (n > 0 && !c->broken) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;

        /* The web server went away (EPIPE: SIGPIPE is ignored): nothing
         * more is written, and sink_gone() says so from now on. */
        if (FCGX_PutStr(data, chunk, c->req.out) < 0)
            c->broken = true;
        data += chunk;
        n -= (size_t)chunk;
    }
}

void
fcgi_send(struct fcgi_conn *c, const struct request *req,
          const struct response *resp)
{
    bool body =
        resp->status != 204 && resp->status != 304 && req->method != HTTP_HEAD;

    if (!resp->streamed)
        fcgi_send_head(c, resp, true);
    if (body && resp->body.len > 0)
        fcgi_put(c, resp->body.data, resp->body.len);
}

static void
sink_head(void *ctx, const struct response *r)
{
    struct fcgi_conn *c = ctx;

    fcgi_send_head(c, r, false);
}

static void
sink_body(void *ctx, const char *data, size_t n)
{
    struct fcgi_conn *c = ctx;

    if (!c->head_only)
        fcgi_put(c, data, n);
}

/* libfcgi keeps what was written in its stream buffer until the buffer
 * fills or the request ends; an event a client is waiting for goes out
 * now.  A write that failed (EPIPE: SIGPIPE is ignored) marks the stream
 * in error for good. */
static bool
sink_push(void *ctx)
{
    struct fcgi_conn *c = ctx;

    if (FCGX_FFlush(c->req.out) < 0)
        return false;
    return FCGX_GetError(c->req.out) == 0;
}

/* The web server sends nothing after the request's body, so the
 * connection turning readable means it was closed (a read would return
 * 0): nginx does that when the client goes away, unless
 * fastcgi_ignore_client_abort is on.  Costs one poll(2), no read. */
static bool
sink_gone(void *ctx)
{
    struct fcgi_conn *c = ctx;
    struct pollfd pfd = {.fd = c->req.ipcFd, .events = POLLIN | POLLRDHUP};
    char byte;

    if (!c->active || c->req.ipcFd < 0 || c->broken)
        return true;
    if (FCGX_GetError(c->req.out) != 0)
        return true;
    if (poll(&pfd, 1, 0) <= 0)
        return false;
    if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP))
        return true;
    /* Readable: a close, or (not from nginx or Apache) more bytes. */
    return recv(c->req.ipcFd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void
fcgi_sink(struct fcgi_conn *c, const struct request *req,
          struct response_sink *sink)
{
    c->head_only = req->method == HTTP_HEAD;
    sink->head = sink_head;
    sink->body = sink_body;
    sink->push = sink_push;
    sink->gone = sink_gone;
    sink->ctx = c;
}

void
fcgi_finish(struct fcgi_conn *c)
{
    if (!c->active)
        return;
    FCGX_Finish_r(&c->req);
    c->active = false;
    c->broken = false;
}

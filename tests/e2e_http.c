/*
 * e2e_http.c - the end-to-end tests' HTTP/1.1 client.
 *
 * Every exchange is one non-blocking socket driven by a poll loop, so one
 * loop serves a single request and a burst of hundreds alike.  A response
 * is parsed again from the start after every read until it is complete:
 * responses here are small, and a parser that never keeps state is one
 * that cannot get out of step with the bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "e2e_http.h"
#include "banned.h"

enum parse_result {
    PARSE_ERROR = -1,
    PARSE_MORE = 0,
    PARSE_DONE = 1,
};

struct conn {
    int fd;     /* -1: slot free */
    size_t idx; /* which request / response */
    bool connecting;
    struct buf out;
    size_t out_off;
    bool out_done;
    int send_errno; /* the server stopped reading (EPIPE, ECONNRESET) */
    struct buf in;
    bool eof;
    bool head; /* HEAD: the response has no body */
    int64_t deadline_ms;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 2, 3)))
fail(struct e2e_http_response *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    out->status = 0;
}

int
e2e_http_client_init(struct e2e_http_client *c, const char *url, char *errbuf,
                     size_t errlen)
{
    const char *p = url, *host, *host_end, *port;
    char hostname[256], portbuf[16];
    struct addrinfo hints, *res = NULL;
    size_t hlen, plen;
    int rc;

    memset(c, 0, sizeof *c);
    c->timeout_ms = E2E_HTTP_TIMEOUT_MS;
    if (url == NULL || strncmp(p, "http://", 7) != 0) {
        snprintf(errbuf, errlen, "URL must start with http://: %s",
                 url ? url : "(null)");
        return -1;
    }
    p += 7;
    if (*p == '[') { /* IPv6 literal */
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            snprintf(errbuf, errlen, "unterminated [ in URL: %s", url);
            return -1;
        }
        port = host_end + 1;
    } else {
        host = p;
        host_end = host + strcspn(host, ":/");
        port = host_end;
    }
    hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof hostname) {
        snprintf(errbuf, errlen, "bad host in URL: %s", url);
        return -1;
    }
    memcpy(hostname, host, hlen);
    hostname[hlen] = '\0';
    if (*port == ':') {
        port++;
        plen = strspn(port, "0123456789");
    } else {
        plen = 0;
    }
    if (plen >= sizeof portbuf) {
        snprintf(errbuf, errlen, "bad port in URL: %s", url);
        return -1;
    }
    if (plen == 0) {
        snprintf(portbuf, sizeof portbuf, "80");
    } else {
        memcpy(portbuf, port, plen);
        portbuf[plen] = '\0';
    }
    if (strcmp(port + plen, "") != 0 && strcmp(port + plen, "/") != 0) {
        snprintf(errbuf, errlen, "URL must be http://host:port: %s", url);
        return -1;
    }

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(hostname, portbuf, &hints, &res);
    if (rc != 0) {
        snprintf(errbuf, errlen, "%s: %s", hostname, gai_strerror(rc));
        return -1;
    }
    memcpy(&c->server, res->ai_addr, res->ai_addrlen);
    c->server_len = res->ai_addrlen;
    freeaddrinfo(res);
    /* Host is the authority exactly as the URL wrote it. */
    snprintf(c->host, sizeof c->host, "%.*s", (int)(port + plen - p), p);
    return 0;
}

/* ---- response parsing -------------------------------------------------- */

/* Decodes a chunked body from p[0..len) into body (NULL: only checks that
 * it is complete). */
static enum parse_result
parse_chunked(const char *p, size_t len, struct buf *body, char *why,
              size_t whylen)
{
    size_t pos = 0;

    for (;;) {
        const char *crlf = memmem(p + pos, len - pos, "\r\n", 2);
        size_t size = 0, digits = 0;
        const char *q;

        if (crlf == NULL)
            return PARSE_MORE;
        for (q = p + pos; q < crlf && *q != ';'; q++, digits++) {
            int d;

            if (*q >= '0' && *q <= '9')
                d = *q - '0';
            else if (*q >= 'a' && *q <= 'f')
                d = *q - 'a' + 10;
            else if (*q >= 'A' && *q <= 'F')
                d = *q - 'A' + 10;
            else
                break;
            if (size > (SIZE_MAX >> 4)) {
                snprintf(why, whylen, "chunk size overflows");
                return PARSE_ERROR;
            }
            size = size * 16 + (size_t)d;
        }
        if (digits == 0) {
            snprintf(why, whylen, "bad chunk size line");
            return PARSE_ERROR;
        }
        pos = (size_t)(crlf - p) + 2;
        if (size == 0) {
            /* Trailer lines end with an empty line. */
            for (;;) {
                crlf = memmem(p + pos, len - pos, "\r\n", 2);
                if (crlf == NULL)
                    return PARSE_MORE;
                if (crlf == p + pos)
                    return PARSE_DONE;
                pos = (size_t)(crlf - p) + 2;
            }
        }
        if (len - pos < size || len - pos - size < 2)
            return PARSE_MORE;
        if (p[pos + size] != '\r' || p[pos + size + 1] != '\n') {
            snprintf(why, whylen, "chunk not followed by CRLF");
            return PARSE_ERROR;
        }
        if (body != NULL)
            buf_add(body, p + pos, size);
        pos += size + 2;
    }
}

static void
add_header(struct e2e_http_response *out, const char *name, size_t nlen,
           const char *value, size_t vlen)
{
    struct e2e_http_header *h;

    h = realloc(out->headers, (out->nheaders + 1) * sizeof *h);
    if (h == NULL)
        abort();
    out->headers = h;
    h[out->nheaders].name = strndup(name, nlen);
    h[out->nheaders].value = strndup(value, vlen);
    if (h[out->nheaders].name == NULL || h[out->nheaders].value == NULL)
        abort();
    out->nheaders++;
}

/*
 * Parses data[0..len).  With out == NULL it only tells whether the
 * response is complete; with out it fills it (call it so once PARSE_DONE
 * was seen).  eof: the server has closed, so a body without framing ends
 * here and anything short is an error.
 */
static enum parse_result
parse_response(const char *data, size_t len, bool eof, bool head,
               struct e2e_http_response *out, char *why, size_t whylen)
{
    size_t pos = 0;

    for (;;) {
        const char *start = data + pos, *end, *line, *eol;
        size_t body_start, avail;
        bool chunked = false, has_length = false;
        unsigned long long length = 0;
        int status;

        end = memmem(start, len - pos, "\r\n\r\n", 4);
        if (end == NULL) {
            if (!eof)
                return PARSE_MORE;
            snprintf(why, whylen,
                     len == 0 ? "connection closed without a response"
                              : "connection closed inside the headers");
            return PARSE_ERROR;
        }
        if (end - start < 12 || strncmp(start, "HTTP/1.", 7) != 0 ||
            start[8] != ' ' || start[9] < '1' || start[9] > '5' ||
            start[10] < '0' || start[10] > '9' || start[11] < '0' ||
            start[11] > '9') {
            snprintf(why, whylen, "bad status line");
            return PARSE_ERROR;
        }
        status =
            (start[9] - '0') * 100 + (start[10] - '0') * 10 + (start[11] - '0');
        body_start = (size_t)(end - data) + 4;
        if (status < 200) { /* 100 Continue and friends: skip */
            pos = body_start;
            continue;
        }
        if (out != NULL)
            out->status = status;

        eol = memmem(start, (size_t)(end + 2 - start), "\r\n", 2);
        for (line = eol + 2; line < end + 2; line = eol + 2) {
            const char *colon, *v, *ve;

            eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
            colon = memchr(line, ':', (size_t)(eol - line));
            if (colon == NULL || colon == line) {
                snprintf(why, whylen, "bad header line");
                return PARSE_ERROR;
            }
            for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
                ;
            for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
                ;
            if ((size_t)(colon - line) == 17 &&
                strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                /* "chunked" must be the last coding; it is the only one
                 * nginx sends us. */
                chunked = (size_t)(ve - v) >= 7 &&
                          strncasecmp(ve - 7, "chunked", 7) == 0;
            } else if ((size_t)(colon - line) == 14 &&
                       strncasecmp(line, "Content-Length", 14) == 0) {
                char tmp[32];
                char *endp;

                if ((size_t)(ve - v) == 0 || (size_t)(ve - v) >= sizeof tmp ||
                    strspn(v, "0123456789") < (size_t)(ve - v)) {
                    snprintf(why, whylen, "bad Content-Length");
                    return PARSE_ERROR;
                }
                memcpy(tmp, v, (size_t)(ve - v));
                tmp[ve - v] = '\0';
                length = strtoull(tmp, &endp, 10);
                has_length = true;
            }
            if (out != NULL)
                add_header(out, line, (size_t)(colon - line), v,
                           (size_t)(ve - v));
        }

        avail = len - body_start;
        if (head || status == 204 || status == 304) {
            if (out != NULL) {
                out->body = calloc(1, 1);
                if (out->body == NULL)
                    abort();
            }
            return PARSE_DONE;
        } else if (chunked) {
            struct buf body;
            enum parse_result r;

            buf_init(&body);
            r = parse_chunked(data + body_start, avail,
                              out != NULL ? &body : NULL, why, whylen);
            if (r == PARSE_MORE && eof) {
                snprintf(why, whylen, "connection closed inside a chunk");
                r = PARSE_ERROR;
            }
            if (out != NULL && r == PARSE_DONE)
                out->body = buf_detach(&body, &out->body_len);
            buf_release(&body);
            return r;
        } else if (has_length) {
            if (avail < length) {
                if (!eof)
                    return PARSE_MORE;
                snprintf(why, whylen,
                         "connection closed after %zu of %llu body bytes",
                         avail, length);
                return PARSE_ERROR;
            }
            avail = (size_t)length;
        } else if (!eof) {
            return PARSE_MORE; /* the body runs to the close */
        }
        if (out != NULL) {
            struct buf body;

            buf_init(&body);
            buf_add(&body, data + body_start, avail);
            out->body = buf_detach(&body, &out->body_len);
        }
        return PARSE_DONE;
    }
}

/* ---- connections ------------------------------------------------------- */

static void
conn_close(struct conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    buf_release(&k->out);
    buf_release(&k->in);
}

static int
conn_open(struct conn *k, const struct e2e_http_client *c,
          const struct e2e_http_request *req, size_t idx,
          struct e2e_http_response *out)
{
    const struct sockaddr *sa = (const struct sockaddr *)&c->server;
    bool has_body = req->body != NULL;

    memset(k, 0, sizeof *k);
    k->fd = -1;
    k->idx = idx;
    buf_init(&k->out);
    buf_init(&k->in);
    k->head = strcmp(req->method, "HEAD") == 0;
    k->deadline_ms = now_ms() + c->timeout_ms;

    k->fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        fail(out, "socket: %s", strerror(errno));
        goto fail;
    }
    if (req->source != NULL) {
        struct sockaddr_in src;
        int one = 1;

        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        if (sa->sa_family != AF_INET ||
            inet_pton(AF_INET, req->source, &src.sin_addr) != 1) {
            fail(out, "cannot bind source %s for this server", req->source);
            goto fail;
        }
        /* Pick the port at connect(), so many sources can share the
         * ephemeral range. */
        (void)setsockopt(k->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                         sizeof one);
        if (bind(k->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            fail(out, "bind %s: %s", req->source, strerror(errno));
            goto fail;
        }
    }
    if (connect(k->fd, sa, c->server_len) < 0) {
        if (errno != EINPROGRESS) {
            fail(out, "connect: %s", strerror(errno));
            goto fail;
        }
        k->connecting = true;
    }

    buf_printf(&k->out, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n",
               req->method, req->target, c->host);
    for (const char *const *h = req->headers; h != NULL && *h != NULL; h++)
        buf_printf(&k->out, "%s\r\n", *h);
    if (has_body && req->chunked)
        buf_adds(&k->out, "Transfer-Encoding: chunked\r\n");
    else if (has_body)
        buf_printf(&k->out, "Content-Length: %zu\r\n", req->body_len);
    else if (strcmp(req->method, "POST") == 0 ||
             strcmp(req->method, "PUT") == 0 ||
             strcmp(req->method, "PATCH") == 0)
        buf_adds(&k->out, "Content-Length: 0\r\n");
    buf_adds(&k->out, "\r\n");
    if (has_body && req->chunked) {
        /* Small chunks, so the server must join several. */
        for (size_t off = 0; off < req->body_len; off += 7) {
            size_t n = req->body_len - off < 7 ? req->body_len - off : 7;

            buf_printf(&k->out, "%zx\r\n", n);
            buf_add(&k->out, req->body + off, n);
            buf_adds(&k->out, "\r\n");
        }
        buf_adds(&k->out, "0\r\n\r\n");
    } else if (has_body) {
        buf_add(&k->out, req->body, req->body_len);
    }
    return 0;

fail:
    conn_close(k);
    return -1;
}

/* Moves bytes after poll said something happened.  Returns PARSE_DONE when
 * out is complete, PARSE_ERROR with out->error set, PARSE_MORE otherwise. */
static enum parse_result
conn_step(struct conn *k, short revents, struct e2e_http_response *out)
{
    char why[200] = "";
    enum parse_result r;

    if (k->connecting) {
        int soerr = 0;
        socklen_t slen = sizeof soerr;

        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return PARSE_MORE;
        if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
            soerr = errno;
        if (soerr != 0) {
            fail(out, "connect: %s", strerror(soerr));
            return PARSE_ERROR;
        }
        k->connecting = false;
    }

    while (!k->out_done) {
        ssize_t n = send(k->fd, k->out.data + k->out_off,
                         k->out.len - k->out_off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            if (errno == EPIPE || errno == ECONNRESET) {
                /* The server answered early (413) and stopped reading:
                 * its response may still be waiting to be read. */
                k->send_errno = errno;
                k->out_done = true;
                break;
            }
            fail(out, "send: %s", strerror(errno));
            return PARSE_ERROR;
        }
        k->out_off += (size_t)n;
        if (k->out_off == k->out.len)
            k->out_done = true;
    }

    for (;;) {
        ssize_t n;

        buf_grow(&k->in, 65536);
        n = recv(k->fd, k->in.data + k->in.len, k->in.cap - k->in.len - 1, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            if (errno == ECONNRESET) {
                k->eof = true;
                break;
            }
            fail(out, "recv: %s", strerror(errno));
            return PARSE_ERROR;
        }
        if (n == 0) {
            k->eof = true;
            break;
        }
        k->in.len += (size_t)n;
        k->in.data[k->in.len] = '\0';
    }

    r = parse_response(k->in.data, k->in.len, k->eof, k->head, NULL, why,
                       sizeof why);
    if (r == PARSE_DONE) {
        r = parse_response(k->in.data, k->in.len, k->eof, k->head, out, why,
                           sizeof why);
    }
    if (r == PARSE_ERROR) {
        fail(out, "%s%s%s", why, k->send_errno ? "; send: " : "",
             k->send_errno ? strerror(k->send_errno) : "");
    } else if (r == PARSE_MORE && k->eof) {
        fail(out, "connection closed early");
        r = PARSE_ERROR;
    }
    return r;
}

int
e2e_http_do_many(const struct e2e_http_client *c,
                 const struct e2e_http_request *reqs, size_t n, size_t window,
                 struct e2e_http_response *out)
{
    struct conn *conns = NULL;
    struct pollfd *pfds = NULL;
    size_t *slot_of = NULL;
    size_t next = 0, active = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        memset(&out[i], 0, sizeof out[i]);
    if (window == 0)
        window = 1;
    if (window > n)
        window = n;
    conns = calloc(window ? window : 1, sizeof *conns);
    pfds = calloc(window ? window : 1, sizeof *pfds);
    slot_of = calloc(window ? window : 1, sizeof *slot_of);
    if (conns == NULL || pfds == NULL || slot_of == NULL)
        abort();
    for (size_t s = 0; s < window; s++)
        conns[s].fd = -1;

    while (next < n || active > 0) {
        int64_t now, wait_ms = -1;
        nfds_t npfd = 0;

        for (size_t s = 0; s < window && next < n; s++) {
            if (conns[s].fd >= 0)
                continue;
            if (conn_open(&conns[s], c, &reqs[next], next, &out[next]) < 0)
                rc = -1;
            else
                active++;
            next++;
        }
        if (active == 0)
            continue;

        now = now_ms();
        for (size_t s = 0; s < window; s++) {
            struct conn *k = &conns[s];
            int64_t left;

            if (k->fd < 0)
                continue;
            pfds[npfd].fd = k->fd;
            pfds[npfd].events = POLLIN;
            if (k->connecting || !k->out_done)
                pfds[npfd].events |= POLLOUT;
            pfds[npfd].revents = 0;
            slot_of[npfd++] = s;
            left = k->deadline_ms - now;
            if (left < 0)
                left = 0;
            if (wait_ms < 0 || left < wait_ms)
                wait_ms = left;
        }
        if (poll(pfds, npfd, (int)wait_ms) < 0 && errno != EINTR) {
            for (nfds_t i = 0; i < npfd; i++) {
                struct conn *k = &conns[slot_of[i]];

                fail(&out[k->idx], "poll: %s", strerror(errno));
                conn_close(k);
            }
            rc = -1;
            active = 0;
            continue;
        }

        now = now_ms();
        for (nfds_t i = 0; i < npfd; i++) {
            struct conn *k = &conns[slot_of[i]];
            struct e2e_http_response *o = &out[k->idx];
            enum parse_result r = PARSE_MORE;

            if (pfds[i].revents != 0)
                r = conn_step(k, pfds[i].revents, o);
            if (r == PARSE_MORE && now >= k->deadline_ms) {
                fail(o, "no complete response within %d ms (%zu bytes read)",
                     c->timeout_ms, k->in.len);
                r = PARSE_ERROR;
            }
            if (r == PARSE_MORE)
                continue;
            if (r == PARSE_ERROR) {
                e2e_http_response_release(o);
                rc = -1;
            }
            conn_close(k);
            active--;
        }
    }

    free(slot_of);
    free(pfds);
    free(conns);
    return rc;
}

int
e2e_http_do(const struct e2e_http_client *c, const struct e2e_http_request *req,
            struct e2e_http_response *out)
{
    return e2e_http_do_many(c, req, 1, 1, out);
}

const char *
e2e_http_header(const struct e2e_http_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

size_t
e2e_http_header_count(const struct e2e_http_response *r, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            n++;
    return n;
}

/* Frees what the response owns and leaves it empty, keeping status and
 * error so a failed exchange can still be reported. */
void
e2e_http_response_release(struct e2e_http_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    r->headers = NULL;
    r->nheaders = 0;
    r->body = NULL;
    r->body_len = 0;
}

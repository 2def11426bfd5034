/*
 * e2e_http.h - a small blocking HTTP/1.1 client for the end-to-end tests.
 *
 * Raw sockets, no library: the tests must see exactly what nginx sends.
 * Every request carries `Connection: close`, so a response ends at the
 * latest when the server closes; bodies framed by Content-Length or chunked
 * transfer coding are decoded.  Every exchange has a deadline (poll), so a
 * server that hangs fails the test instead of wedging it.
 *
 * nginx rate-limits per client address, so a request can name the source
 * address to bind before connecting: every 127.x.y.z is loopback on Linux,
 * which gives each test case addresses of its own.
 */
#ifndef PARLEY_E2E_HTTP_H
#define PARLEY_E2E_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define E2E_HTTP_TIMEOUT_MS 15000

struct e2e_http_client {
    struct sockaddr_storage server;
    socklen_t server_len;
    char host[300]; /* the Host header: "127.0.0.1:8080" */
    int timeout_ms; /* deadline of one exchange, from connect to close */
};

struct e2e_http_request {
    const char *method;
    const char *target; /* path and query, sent as given */
    /* Extra header lines "Name: value", NULL-terminated; NULL for none.
     * Host, Connection and Content-Length are added here (Content-Length
     * whenever there is a body, and 0 for a bodiless POST/PUT/PATCH), or
     * Transfer-Encoding when chunked. */
    const char *const *headers;
    const char *body; /* NULL: no body */
    size_t body_len;
    const char *source; /* dotted IPv4 address to bind, or NULL */
    bool chunked;       /* send the body with chunked transfer coding instead */
};

struct e2e_http_header {
    char *name;
    char *value;
};

/* Everything here is owned by the response; e2e_http_response_release()
 * frees it. */
struct e2e_http_response {
    int status; /* 0: no response, see error */
    struct e2e_http_header *headers;
    size_t nheaders;
    char *body; /* decoded, NUL-terminated (may also contain NULs) */
    size_t body_len;
    char error[256]; /* why status is 0 */
};

/* Reads "http://host:port" (a trailing "/" allowed).  Returns -1 with a
 * message in errbuf when the URL is not one or the host does not
 * resolve. */
int e2e_http_client_init(struct e2e_http_client *c, const char *url,
                         char *errbuf, size_t errlen);

/* One exchange.  Returns 0 when a response arrived (any status), -1 with
 * out->error set otherwise.  out is always initialised. */
int e2e_http_do(const struct e2e_http_client *c,
                const struct e2e_http_request *req,
                struct e2e_http_response *out);

/* n exchanges, at most `window` of them open at once (all sockets are
 * driven by one poll loop, so the server sees them concurrently).  out[i]
 * answers reqs[i].  Returns 0 when every exchange got a response, else
 * -1 (the failed ones have status 0). */
int e2e_http_do_many(const struct e2e_http_client *c,
                     const struct e2e_http_request *reqs, size_t n,
                     size_t window, struct e2e_http_response *out);

/* The value of the first header called name (case-insensitive), or NULL.
 * Borrowed from r. */
const char *e2e_http_header(const struct e2e_http_response *r,
                            const char *name);
/* How many times a header appears. */
size_t e2e_http_header_count(const struct e2e_http_response *r,
                             const char *name);

void e2e_http_response_release(struct e2e_http_response *r);

#endif

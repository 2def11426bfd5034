/*
 * http.h - the request and response as the application sees them,
 * independent of FastCGI (fcgi.c fills and sends them).
 */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "error.h"

enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_OTHER,
};

#define HTTP_METHOD_COUNT 8

struct request {
    enum http_method method;
    const char *method_name;
    const char *path;  /* raw, still percent-encoded, without the query */
    const char *query; /* raw, without '?'; "" when none */
    /* Headers we use; NULL when absent. */
    const char *authorization;
    const char *content_type;
    const char *if_match;
    const char *idempotency_key;
    const char *request_id; /* from nginx's $request_id, or made here */
    int64_t content_length; /* -1 when absent */
    const char *body;       /* NUL-terminated; NULL when none */
    size_t body_len;
    bool body_too_large; /* more than max_body_bytes was sent */
    bool body_short;     /* the body ended before its Content-Length */
    /* When the web server passed the request on (nginx's $msec as the
     * PARLEY_REQUEST_START parameter, or an X-Request-Start header of
     * "t=<µs>"): wall-clock ms, 0 when not told.  app.c measures the time
     * the request waited for a worker from it. */
    int64_t web_start_ms;
    int64_t started_ms;  /* monotonic */
    int64_t started_us;  /* the same instant in µs, for timing */
    struct arena *arena; /* the request's arena */
};

#define HTTP_MAX_HEADERS 12

struct response;

/* Where a streamed response goes: set once by the worker. */
struct response_sink {
    void (*head)(void *ctx, const struct response *r); /* status, headers */
    void (*body)(void *ctx, const char *data, size_t n);
    /* Sends what head() and body() wrote on to the web server now rather
     * than when a buffer fills (events a client waits for); false once
     * the connection to the web server is broken.  NULL: not supported. */
    bool (*push)(void *ctx);
    /* True when the web server has closed the connection: the client went
     * away (nginx with fastcgi_ignore_client_abort off, Apache), so
     * nothing more can reach it (or a write to it failed).  NULL: never
     * known. */
    bool (*gone)(void *ctx);
    void *ctx;
};

struct response {
    int status;
    const char *content_type; /* NULL: application/json */
    struct {
        const char *name;
        const char *value;
    } headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    struct buf body;
    /* Streaming: a handler whose body could be large calls
     * response_stream_begin() once status and headers are final, then
     * response_stream_flush() whenever body holds a chunk; memory stays
     * bounded by the chunk.  Once begun, status can no longer change: a
     * failure mid-stream can only cut the body short (and is logged). */
    struct response_sink sink;
    bool streamed;
};

const char *http_method_name(enum http_method m);
enum http_method http_method_parse(const char *name);
const char *http_reason(int status);
/* The time a web server says it passed a request on, in wall-clock ms:
 * nginx's $msec ("1700000000.123", seconds), or mod_headers' %t
 * ("t=1700000000123456", µs); also "t=" with seconds and a fraction, or
 * a bare integer of ms.  0 for anything else, or a time before 2001. */
int64_t http_parse_request_start(const char *value);

void response_init(struct response *r);
void response_reset(struct response *r);
void response_release(struct response *r);
/* name and value are borrowed until the request ends (arena or literal). */
void response_header(struct response *r, const char *name, const char *value);
void response_stream_begin(struct response *r);
void response_stream_flush(struct response *r);
/* response_stream_flush(), then the sink's push: the chunk reaches the
 * web server now.  False when it cannot (the client has gone). */
bool response_stream_push(struct response *r);
/* True when the sink knows the client has gone (see push and gone). */
bool response_client_gone(const struct response *r);
/* Replaces the body with the contract's error object. */
void response_error(struct response *r, const struct error *err);
/* Appends the contract's error object for err to b (response_error()'s
 * body; a streamed response sends it as an event). */
void response_error_body(struct buf *b, const struct error *err);
/* The same in OpenAI's shape, for the /v1 routes:
 * {"error":{"message","type","param","code"}} with error_openai_type()
 * and parley's code name as `code`. */
void response_error_openai(struct response *r, const struct error *err);

#endif

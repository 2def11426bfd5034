#include <stdint.h>
#include <string.h>

#include "http.h"
#include "json.h"
#include "utf8.h"
#include "banned.h"

static const char *const method_names[HTTP_METHOD_COUNT] = {
    [HTTP_GET] = "GET",         [HTTP_HEAD] = "HEAD",
    [HTTP_POST] = "POST",       [HTTP_PUT] = "PUT",
    [HTTP_PATCH] = "PATCH",     [HTTP_DELETE] = "DELETE",
    [HTTP_OPTIONS] = "OPTIONS", [HTTP_OTHER] = "OTHER",
};

const char *
http_method_name(enum http_method m)
{
    return (unsigned)m < HTTP_METHOD_COUNT ? method_names[m] : "OTHER";
}

enum http_method
http_method_parse(const char *name)
{
    for (int i = 0; i < HTTP_OTHER; i++)
        if (strcmp(name, method_names[i]) == 0)
            return (enum http_method)i;
    return HTTP_OTHER;
}

const char *
http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 499:
        return "Client Closed Request";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

int64_t
http_parse_request_start(const char *v)
{
    int64_t whole = 0, frac_ms = 0;
    int digits = 0, frac_digits = 0;

    if (v[0] == 't' && v[1] == '=')
        v += 2;
    for (; *v >= '0' && *v <= '9'; v++, digits++) {
        if (digits >= 18)
            return 0; /* past int64 (and any sane time) */
        whole = whole * 10 + (*v - '0');
    }
    if (digits == 0)
        return 0;
    if (*v == '.') {
        /* Seconds with a fraction: its first three digits are the ms. */
        for (v++; *v >= '0' && *v <= '9'; v++, frac_digits++)
            if (frac_digits < 3)
                frac_ms = frac_ms * 10 + (*v - '0');
        for (int k = frac_digits; k < 3; k++)
            frac_ms *= 10;
        if (*v != '\0' || frac_digits == 0 || whole > INT64_MAX / 1000 - 1)
            return 0;
        whole = whole * 1000 + frac_ms;
    } else if (*v != '\0') {
        return 0;
    } else if (whole >= INT64_C(100000000000000)) {
        whole /= 1000; /* µs (mod_headers' %t) */
    } else if (whole < INT64_C(100000000000)) {
        whole *= 1000; /* whole seconds */
    }
    /* 978307200000 is 2001-01-01: anything older is not a clock. */
    return whole >= INT64_C(978307200000) ? whole : 0;
}

void
response_init(struct response *r)
{
    r->status = 200;
    r->content_type = NULL;
    r->nheaders = 0;
    r->streamed = false;
    memset(&r->sink, 0, sizeof(r->sink));
    buf_init(&r->body);
}

void
response_reset(struct response *r)
{
    r->status = 200;
    r->content_type = NULL;
    r->nheaders = 0;
    r->streamed = false;
    buf_reset(&r->body);
}

void
response_stream_begin(struct response *r)
{
    if (r->streamed || r->sink.head == NULL)
        return;
    r->sink.head(r->sink.ctx, r);
    r->streamed = true;
}

void
response_stream_flush(struct response *r)
{
    if (!r->streamed || r->body.len == 0)
        return;
    r->sink.body(r->sink.ctx, r->body.data, r->body.len);
    buf_reset(&r->body);
}

bool
response_stream_push(struct response *r)
{
    if (!r->streamed)
        return false;
    response_stream_flush(r);
    return r->sink.push == NULL || r->sink.push(r->sink.ctx);
}

bool
response_client_gone(const struct response *r)
{
    return r->sink.gone != NULL && r->sink.gone(r->sink.ctx);
}

void
response_release(struct response *r)
{
    buf_release(&r->body);
}

void
response_header(struct response *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcmp(r->headers[i].name, name) == 0) {
            r->headers[i].value = value;
            return;
        }
    }
    if (r->nheaders < HTTP_MAX_HEADERS) {
        r->headers[r->nheaders].name = name;
        r->headers[r->nheaders].value = value;
        r->nheaders++;
    }
}

/* err's message, cut back to whole UTF-8 characters: one that quotes a
 * client's key may have been cut inside a multi-byte character, and the
 * body must stay valid UTF-8. */
static const char *
error_message(const struct error *err, int status,
              char out[sizeof(err->message)])
{
    size_t n = strnlen(err->message, sizeof(err->message) - 1);

    memcpy(out, err->message, n);
    while (n > 0 && !utf8_valid(out, n))
        n--;
    out[n] = '\0';
    return out[0] ? out : http_reason(status);
}

void
response_error(struct response *r, const struct error *err)
{
    r->status = error_http_status(err->code);
    r->content_type = NULL;
    buf_reset(&r->body);
    response_error_body(&r->body, err);
}

void
response_error_body(struct buf *b, const struct error *err)
{
    int status = error_http_status(err->code);
    char message[sizeof(err->message)];

    buf_printf(b, "{\"error\":{\"status\":%d,\"code\":", status);
    json_write_cstr(b, error_code_name(err->code));
    buf_adds(b, ",\"message\":");
    json_write_cstr(b, error_message(err, status, message));
    buf_adds(b, ",\"param\":");
    json_write_cstr(b, err->param);
    buf_adds(b, "}}");
}

void
response_error_openai(struct response *r, const struct error *err)
{
    int status = error_http_status(err->code);
    char message[sizeof(err->message)];

    r->status = status;
    r->content_type = NULL;
    buf_reset(&r->body);
    buf_adds(&r->body, "{\"error\":{\"message\":");
    json_write_cstr(&r->body, error_message(err, status, message));
    buf_adds(&r->body, ",\"type\":");
    json_write_cstr(&r->body, error_openai_type(err->code));
    buf_adds(&r->body, ",\"param\":");
    json_write_cstr(&r->body, err->param);
    buf_adds(&r->body, ",\"code\":");
    json_write_cstr(&r->body, error_code_name(err->code));
    buf_adds(&r->body, "}}");
}

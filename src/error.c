#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "banned.h"

bool
error_set(struct error *err, enum error_code code, const char *param,
          const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return false;
    err->code = code;
    err->retry = RETRY_NEVER;
    err->db_code = 0;
    err->param = param;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return false;
}

void
error_clear(struct error *err)
{
    memset(err, 0, sizeof(*err));
}

int
error_http_status(enum error_code code)
{
    switch (code) {
    case ERR_NONE:
        return 200;
    case ERR_INVALID_JSON:
    case ERR_VALIDATION:
    case ERR_UNKNOWN_FIELD:
        return 400;
    case ERR_UNAUTHORIZED:
        return 401;
    case ERR_FORBIDDEN:
    case ERR_QUOTA_EXCEEDED:
        return 403;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_METHOD_NOT_ALLOWED:
        return 405;
    case ERR_CONFLICT:
    case ERR_DUPLICATE:
        return 409;
    case ERR_PRECONDITION_FAILED:
        return 412;
    case ERR_PAYLOAD_TOO_LARGE:
        return 413;
    case ERR_UNSUPPORTED_MEDIA_TYPE:
        return 415;
    case ERR_UNAVAILABLE:
        return 503;
    case ERR_INTERNAL:
        return 500;
    case ERR_UPSTREAM:
        return 502;
    case ERR_UPSTREAM_TIMEOUT:
        return 504;
    case ERR_TOO_MANY_REQUESTS:
        return 429;
    case ERR_CLIENT_GONE:
        return 499;
    }
    return 500;
}

const char *
error_code_name(enum error_code code)
{
    switch (code) {
    case ERR_NONE:
        return "ok";
    case ERR_INVALID_JSON:
        return "invalid_json";
    case ERR_VALIDATION:
        return "validation_error";
    case ERR_UNKNOWN_FIELD:
        return "unknown_field";
    case ERR_UNAUTHORIZED:
        return "unauthorized";
    case ERR_FORBIDDEN:
        return "forbidden";
    case ERR_QUOTA_EXCEEDED:
        return "quota_exceeded";
    case ERR_NOT_FOUND:
        return "not_found";
    case ERR_METHOD_NOT_ALLOWED:
        return "method_not_allowed";
    case ERR_CONFLICT:
    case ERR_DUPLICATE:
        return "conflict";
    case ERR_PRECONDITION_FAILED:
        return "precondition_failed";
    case ERR_PAYLOAD_TOO_LARGE:
        return "payload_too_large";
    case ERR_UNSUPPORTED_MEDIA_TYPE:
        return "unsupported_media_type";
    case ERR_UNAVAILABLE:
        return "service_unavailable";
    case ERR_INTERNAL:
        return "internal_error";
    case ERR_UPSTREAM:
        return "upstream_error";
    case ERR_UPSTREAM_TIMEOUT:
        return "upstream_timeout";
    case ERR_TOO_MANY_REQUESTS:
        return "too_many_requests";
    case ERR_CLIENT_GONE:
        return "client_closed_request";
    }
    return "internal_error";
}

const char *
error_openai_type(enum error_code code)
{
    int status = error_http_status(code);

    /* By status and name, so codes added for 403 and 429 map without
     * another case here. */
    if (status >= 500)
        return "server_error";
    if (status == 429)
        return "requests";
    if (status == 403 && strcmp(error_code_name(code), "quota_exceeded") == 0)
        return "insufficient_quota";
    return "invalid_request_error";
}

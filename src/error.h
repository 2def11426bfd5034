/*
 * error.h - errors as values.
 *
 * A function that can fail takes a `struct error *err` out-parameter (the
 * way libmongoc takes a bson_error_t) and returns false or -1.  The error
 * travels back up unchanged and becomes an HTTP status exactly once, in
 * app.c.  `param` names the offending field, query parameter or header
 * where there is one; it must point at a string that lives at least until
 * the request ends (a literal, or arena memory).
 */
#ifndef PARLEY_ERROR_H
#define PARLEY_ERROR_H

#include <stdbool.h>

enum error_code {
    ERR_NONE = 0,
    ERR_INVALID_JSON,           /* 400: body is not acceptable JSON */
    ERR_VALIDATION,             /* 400: a value is outside its set */
    ERR_UNKNOWN_FIELD,          /* 400: a body field we do not take */
    ERR_UNAUTHORIZED,           /* 401 */
    ERR_FORBIDDEN,              /* 403 */
    ERR_QUOTA_EXCEEDED,         /* 403: a quota (param names it) is full */
    ERR_NOT_FOUND,              /* 404 */
    ERR_METHOD_NOT_ALLOWED,     /* 405 */
    ERR_CONFLICT,               /* 409 */
    ERR_PRECONDITION_FAILED,    /* 412 */
    ERR_PAYLOAD_TOO_LARGE,      /* 413 */
    ERR_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    ERR_UNAVAILABLE,            /* 503: database gone after retries */
    ERR_INTERNAL,               /* 500: a bug or a broken server, never input */
    ERR_UPSTREAM,               /* 502: the model server failed or misbehaved */
    ERR_UPSTREAM_TIMEOUT,  /* 504: the model server did not answer in time */
    ERR_TOO_MANY_REQUESTS, /* 429: over the user's concurrent requests */
    /* Store-level codes; the service maps them before they reach HTTP. */
    ERR_DUPLICATE, /* unique index violated (MongoDB 11000) */
    /* 499 (nginx's "client closed request"): the client went away before
     * the answer; nothing reaches it, the status is for the log and the
     * metrics. */
    ERR_CLIENT_GONE,
};

/*
 * How a failed database call may be retried.  Only the store sets this.
 * RETRY_SAFE: the operation certainly did not run (no server selected, no
 * connection), or the server says it is safe (RetryableWriteError label,
 * not-primary and shutdown codes).  RETRY_IDEMPOTENT: the outcome is
 * unknown (socket error mid-operation); retry only an idempotent call.
 */
enum retry_class {
    RETRY_NEVER = 0,
    RETRY_SAFE,
    RETRY_IDEMPOTENT,
};

struct error {
    enum error_code code;
    enum retry_class retry;
    int db_code;       /* server or driver code, for logs; 0 if none */
    const char *param; /* offending field, or NULL */
    char message[160];
};

#define ERROR_INIT                                                             \
    {                                                                          \
        ERR_NONE, RETRY_NEVER, 0, NULL,                                        \
        {                                                                      \
            0                                                                  \
        }                                                                      \
    }

/* Sets err (if not NULL) and returns false, so `return error_set(...)`
 * reads naturally in a bool function. */
bool error_set(struct error *err, enum error_code code, const char *param,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void error_clear(struct error *err);

int error_http_status(enum error_code code);
/* The stable machine-readable code of the error body, e.g. "not_found". */
const char *error_code_name(enum error_code code);
/* The error's `type` in OpenAI's error body (the /v1 routes), by its
 * HTTP status: "server_error" for 5xx, "requests" for 429 (OpenAI's
 * request rate limit), "insufficient_quota" for a quota_exceeded 403,
 * "invalid_request_error" for every other status (OpenAI's type for bad
 * input, a bad key, a missing object and conflicts alike). */
const char *error_openai_type(enum error_code code);

#endif

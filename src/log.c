/*
 * log.c - JSON lines on stderr.
 *
 * The level (per process) and the current request id (per thread) are
 * globals: logging is the one place where threading a context through
 * every call would cost more clarity than it buys (redis keeps its
 * verbosity global the same way).
 * Each line is formatted into one buffer and written with one write(2),
 * so lines from different workers sharing stderr never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "banned.h"

static enum log_level log_min = LOG_INFO;
/* Per thread: libmongoc's monitoring threads log through us too, and
 * their lines belong to no request (they must neither borrow the serving
 * thread's id nor read it while the request's arena is reset). */
static _Thread_local const char *log_request = NULL;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

int
log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

void
log_set_level(enum log_level level)
{
    log_min = level;
}

void
log_set_request(const char *request_id)
{
    log_request = request_id;
}

/* Appends s as the inside of a JSON string, escaping what JSON needs. */
static size_t
log_escape(char *out, size_t cap, size_t n, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            /* Non-ASCII is escaped byte by byte: log lines stay valid
             * JSON whatever a client put in a path. */
            out[n++] = '\\';
            out[n++] = 'u';
            out[n++] = '0';
            out[n++] = '0';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        } else {
            out[n++] = (char)ch;
        }
    }
    return n;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    char msg[1024], line[2400], ts[CLOCK_RFC3339_LEN + 1];
    va_list ap;
    size_t n;
    int k;

    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_format(clock_now_ms(), ts);
    k = snprintf(line, sizeof(line),
                 "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,\"req\":\"", ts,
                 log_names[level], (long)getpid());
    n = (size_t)k;
    n = log_escape(line, sizeof(line), n,
                   log_request != NULL ? log_request : "-");
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"msg\":\"");
    n = log_escape(line, sizeof(line) - 3, n, msg);
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    /* One write per line; a short write to a pipe under PIPE_BUF cannot
     * happen, and there is nothing useful to do about other failures. */
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

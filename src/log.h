/*
 * log.h - one JSON line per event on stderr.
 *
 * Every line carries the time, level, pid and the current request id (set
 * by the worker for the request it serves; "-" outside requests).  Never
 * log message content, tokens or secrets: log sizes and ids instead.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
};

/* Returns -1 for an unknown level name. */
int log_level_parse(const char *name);
void log_set_level(enum log_level level);
/* For the calling thread only (other threads log "-").  Borrowed: the
 * pointer must stay valid until log_set_request(NULL). */
void log_set_request(const char *request_id);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif

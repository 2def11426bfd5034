/*
 * check_log.c - one JSON object per line on stderr: its fields, the
 * request id on every line ("-" outside requests), escaping that keeps a
 * line valid JSON whatever it holds, the level filter, and truncation.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "buf.h"
#include "capture.h"
#include "json.h"
#include "log.h"
#include "suites.h"

static struct arena arena;
static struct buf out;

static void
setup(void)
{
    arena_init(&arena, 0);
    buf_init(&out);
    log_set_level(LOG_INFO);
    log_set_request(NULL);
}

static void
teardown(void)
{
    log_set_level(LOG_INFO);
    log_set_request(NULL);
    buf_release(&out);
    arena_release(&arena);
}

/* The one line in out, parsed; fails unless out is exactly one line of
 * valid JSON. */
static const struct json_value *
one_line(void)
{
    struct error err = ERROR_INIT;
    const struct json_value *v;

    ck_assert_uint_gt(out.len, 0);
    ck_assert_int_eq(out.data[out.len - 1], '\n');
    ck_assert_ptr_eq(memchr(out.data, '\n', out.len), out.data + out.len - 1);
    v = json_parse(&arena, out.data, out.len - 1, 8, &err);
    ck_assert_msg(v != NULL, "not JSON (%s): %s", err.message, out.data);
    ck_assert_int_eq(v->type, JSON_OBJECT);
    return v;
}

static const char *
field(const struct json_value *v, const char *key)
{
    const struct json_value *f = json_get(v, key);

    ck_assert_msg(f != NULL && f->type == JSON_STRING, "no string %s", key);
    return f->u.s.ptr;
}

START_TEST(test_log_fields)
{
    const struct json_value *v;
    const struct json_value *pid;

    log_set_request("0123456789abcdef0123456789abcdef");
    capture_begin();
    log_info("GET %s %d", "/healthz", 200);
    capture_end(&out);
    v = one_line();
    /* Exactly these fields, in this order. */
    ck_assert_uint_eq(v->u.o.len, 5);
    ck_assert_str_eq(v->u.o.members[0].key, "ts");
    ck_assert_str_eq(v->u.o.members[1].key, "level");
    ck_assert_str_eq(v->u.o.members[2].key, "pid");
    ck_assert_str_eq(v->u.o.members[3].key, "req");
    ck_assert_str_eq(v->u.o.members[4].key, "msg");
    ck_assert_uint_eq(strlen(field(v, "ts")),
                      strlen("2026-11-21T05:19:49.123Z"));
    ck_assert_int_eq(field(v, "ts")[23], 'Z');
    ck_assert_str_eq(field(v, "level"), "info");
    pid = json_get(v, "pid");
    ck_assert_int_eq(pid->type, JSON_INT);
    ck_assert_int_eq(pid->u.i, (int64_t)getpid());
    ck_assert_str_eq(field(v, "req"), "0123456789abcdef0123456789abcdef");
    ck_assert_str_eq(field(v, "msg"), "GET /healthz 200");
}
END_TEST

START_TEST(test_log_request_id)
{
    const struct json_value *v;
    char *p;

    /* Outside a request: "-". */
    capture_begin();
    log_warn("idle");
    capture_end(&out);
    v = one_line();
    ck_assert_str_eq(field(v, "req"), "-");
    ck_assert_str_eq(field(v, "level"), "warn");

    /* Inside one, every line carries its id, whatever the level. */
    buf_reset(&out);
    log_set_request("req-1");
    capture_begin();
    log_info("a");
    log_warn("b");
    log_error("c");
    capture_end(&out);
    log_set_request(NULL);
    for (p = out.data; *p != '\0'; p = strchr(p, '\n') + 1)
        ck_assert_msg(
            strncmp(strstr(p, ",\"req\":"), ",\"req\":\"req-1\",", 15) == 0,
            "line without the id: %s", p);
    ck_assert_ptr_nonnull(strstr(out.data, "\"level\":\"error\""));

    /* And after it, "-" again. */
    buf_reset(&out);
    capture_begin();
    log_info("after");
    capture_end(&out);
    ck_assert_str_eq(field(one_line(), "req"), "-");
}
END_TEST

static void *
log_from_thread(void *arg)
{
    (void)arg;
    log_warn("from another thread");
    return NULL;
}

/* libmongoc's monitoring threads log through log.c while a worker serves
 * a request: their lines are no request's. */
START_TEST(test_log_request_id_per_thread)
{
    pthread_t t;

    log_set_request("served");
    capture_begin();
    ck_assert_int_eq(pthread_create(&t, NULL, log_from_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    capture_end(&out);
    ck_assert_str_eq(field(one_line(), "req"), "-");
    buf_reset(&out);
    capture_begin();
    log_info("here");
    capture_end(&out);
    ck_assert_str_eq(field(one_line(), "req"), "served");
}
END_TEST

START_TEST(test_log_escaping)
{
    const struct json_value *v;

    log_set_request("a\"b");
    capture_begin();
    log_info("q\" b\\ nl\n tab\t e\xc3\xa9 del\x7f");
    capture_end(&out);
    /* Control, non-ASCII and DEL bytes become \u00XX: the line is plain
     * ASCII and valid JSON whatever a client put in a path. */
    for (size_t i = 0; i + 1 < out.len; i++)
        ck_assert(out.data[i] >= 0x20 && out.data[i] < 0x7f);
    ck_assert_ptr_nonnull(strstr(
        out.data, "\"msg\":\"q\\\" b\\\\ nl\\u000a tab\\u0009 e\\u00c3\\u00a9 "
                  "del\\u007f\"}"));
    v = one_line();
    ck_assert_str_eq(field(v, "req"), "a\"b");
}
END_TEST

START_TEST(test_log_levels)
{
    capture_begin();
    log_set_level(LOG_WARN);
    log_debug("no");
    log_info("no");
    log_warn("yes");
    log_set_level(LOG_ERROR);
    log_warn("no");
    log_error("yes too");
    log_set_level(LOG_DEBUG);
    log_debug("and this");
    capture_end(&out);
    ck_assert_ptr_null(strstr(out.data, "\"msg\":\"no\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"msg\":\"yes\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"msg\":\"yes too\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"level\":\"debug\",\"pid\""));

    ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
    ck_assert_int_eq(log_level_parse("info"), LOG_INFO);
    ck_assert_int_eq(log_level_parse("warn"), LOG_WARN);
    ck_assert_int_eq(log_level_parse("error"), LOG_ERROR);
    ck_assert_int_eq(log_level_parse("INFO"), -1);
    ck_assert_int_eq(log_level_parse("warning"), -1);
}
END_TEST

START_TEST(test_log_long_line)
{
    char big[3000];

    memset(big, '\n', sizeof(big) - 1); /* escapes to six bytes each */
    big[sizeof(big) - 1] = '\0';
    capture_begin();
    log_error("%s", big);
    capture_end(&out);
    /* Cut short, but still one line of valid JSON. */
    (void)one_line();
    ck_assert_uint_le(out.len, 2400);
}
END_TEST

Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *t = tcase_create("log");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_log_fields);
    tcase_add_test(t, test_log_request_id);
    tcase_add_test(t, test_log_request_id_per_thread);
    tcase_add_test(t, test_log_escaping);
    tcase_add_test(t, test_log_levels);
    tcase_add_test(t, test_log_long_line);
    suite_add_tcase(s, t);
    return s;
}

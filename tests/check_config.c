/*
 * check_config.c - defaults, the file format, environment overrides, and
 * every check config_load() makes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "suites.h"

#define SECRET "0123456789abcdef0123456789abcdef"

static char path[64];

static void
setup(void)
{
    int fd;

    unsetenv("PARLEY_WORKERS");
    unsetenv("PARLEY_MONGODB_URI");
    unsetenv("PARLEY_JWT_ALGORITHM");
    unsetenv("PARLEY_JWT_PUBLIC_KEY_FILE");
    setenv("PARLEY_JWT_SECRET", SECRET, 1);
    snprintf(path, sizeof(path), "/tmp/parley-config-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void
teardown(void)
{
    unlink(path);
    unsetenv("PARLEY_JWT_SECRET");
}

static void
write_file(const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int
load(struct config *c, const char *file, struct error *err)
{
    int rc = config_load(c, file, err);

    if (rc != 0)
        config_release(c);
    return rc;
}

START_TEST(defaults_are_the_documented_ones)
{
    struct config c;
    struct error err = ERROR_INIT;

    ck_assert_int_eq(load(&c, NULL, &err), 0);
    ck_assert_int_eq(c.workers, 4);
    ck_assert_int_eq(c.db_retry_max_attempts, 3);
    ck_assert_int_eq(c.db_retry_base_ms, 100);
    ck_assert_int_eq(c.db_retry_max_ms, 1000);
    ck_assert_int_eq(c.request_deadline_ms, 4000);
    ck_assert_int_eq(c.export_deadline_ms, 30000);
    ck_assert_int_eq(c.queue_clock_skew_ms, 100);
    ck_assert_int_eq(c.user_max_inflight, 0); /* half the workers */
    ck_assert_int_eq(c.worker_max_rss_mb, 512);
    ck_assert_int_eq(c.jwt_max_lifetime, 0);
    ck_assert_int_eq(c.jwt_leeway, 60);
    ck_assert_int_eq(c.max_body_bytes, 1048576);
    ck_assert_int_eq(c.max_json_depth, 32);
    ck_assert_int_eq(c.max_metadata_bytes, 16384);
    ck_assert_int_eq(c.max_metadata_depth, 16);
    ck_assert_int_eq(c.max_page_limit, 200);
    ck_assert_int_eq(c.socket_mode, 0660);
    ck_assert_int_eq(c.cleanup_interval, 3600);
    ck_assert_int_eq(c.max_inactive_time, 86400);
    ck_assert_int_eq(c.max_session_age, 604800);
    ck_assert_int_eq(c.idle_timeout, 1800);
    ck_assert_str_eq(c.mongodb_database, "parley");
    ck_assert_int_eq(c.jwt_pin, JWT_PIN_HS256);
    ck_assert_uint_eq(c.jwt_key_len, strlen(SECRET));
    config_release(&c);
}
END_TEST

START_TEST(file_then_environment)
{
    struct config c;
    struct error err = ERROR_INIT;

    write_file("# comment\n\n  workers = 7  \nmongodb_database = \"my db\"\n"
               "socket_mode = 0600\nlisten = 127.0.0.1:9000\n");
    ck_assert_int_eq(load(&c, path, &err), 0);
    ck_assert_int_eq(c.workers, 7);
    ck_assert_str_eq(c.mongodb_database, "my db");
    ck_assert_int_eq(c.socket_mode, 0600);
    ck_assert_str_eq(c.listen, "127.0.0.1:9000");
    config_release(&c);

    setenv("PARLEY_WORKERS", "2", 1);
    ck_assert_int_eq(load(&c, path, &err), 0);
    ck_assert_int_eq(c.workers, 2);
    config_release(&c);
    unsetenv("PARLEY_WORKERS");
}
END_TEST

START_TEST(bad_files_name_the_line)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"workers = 0\n", ":1: workers must be an integer from 1 to 256"},
        {"workers = 4x\n", ":1: workers"},
        {"\nnope = 1\n", ":2: unknown setting \"nope\""},
        {"workers\n", ":1: expected \"key = value\""},
        {"socket_mode = 999\n", "socket_mode"},
        {"log_level = loud\n", "log_level"},
        {"db_retry_base_ms = 5000\n", "db_retry_base_ms must not exceed"},
        {"jwt_algorithm = none\n", "jwt_algorithm must be HS256"},
        {"jwt_algorithm = RS256\n", "needs jwt_public_key_file"},
        {"listen = nowhere\n", "listen must be"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        struct error err = ERROR_INIT;

        write_file(cases[i].text);
        ck_assert_int_eq(load(&c, path, &err), -1);
        ck_assert_msg(strstr(err.message, cases[i].needle) != NULL,
                      "case %zu: \"%s\" lacks \"%s\"", i, err.message,
                      cases[i].needle);
    }
}
END_TEST

START_TEST(short_or_missing_secret_refused)
{
    struct config c;
    struct error err = ERROR_INIT;

    setenv("PARLEY_JWT_SECRET", "short", 1);
    ck_assert_int_eq(load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "jwt_secret");
    unsetenv("PARLEY_JWT_SECRET");
    ck_assert_int_eq(load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "jwt_secret");
}
END_TEST

START_TEST(secret_file_loses_its_newline)
{
    struct config c;
    struct error err = ERROR_INIT;
    char conf[128];

    unsetenv("PARLEY_JWT_SECRET");
    write_file(SECRET "\n");
    snprintf(conf, sizeof(conf), "%s.conf", path);
    {
        FILE *f = fopen(conf, "w");

        ck_assert_ptr_nonnull(f);
        fprintf(f, "jwt_secret_file = %s\n", path);
        fclose(f);
    }
    ck_assert_int_eq(load(&c, conf, &err), 0);
    ck_assert_uint_eq(c.jwt_key_len, strlen(SECRET));
    ck_assert_mem_eq(c.jwt_key, SECRET, strlen(SECRET));
    config_release(&c);
    unlink(conf);
}
END_TEST

START_TEST(public_key_algorithms)
{
    struct config c;
    struct error err = ERROR_INIT;
    char pem[128];

    snprintf(pem, sizeof(pem), "%s/tests/keys/rsa_public.pem",
             getenv("top_srcdir") ? getenv("top_srcdir") : ".");
    if (access(pem, R_OK) != 0)
        return; /* run from an unusual directory: covered by auth tests */
    setenv("PARLEY_JWT_ALGORITHM", "RS256", 1);
    setenv("PARLEY_JWT_PUBLIC_KEY_FILE", pem, 1);
    ck_assert_int_eq(load(&c, NULL, &err), 0);
    ck_assert_int_eq(c.jwt_pin, JWT_PIN_RS256);
    ck_assert_ptr_nonnull(strstr(c.jwt_key, "BEGIN PUBLIC KEY"));
    config_release(&c);
    setenv("PARLEY_JWT_PUBLIC_KEY_FILE", path, 1); /* not a PEM */
    write_file("hello\n");
    ck_assert_int_eq(load(&c, NULL, &err), -1);
    ck_assert_str_eq(err.param, "jwt_public_key_file");
    unsetenv("PARLEY_JWT_ALGORITHM");
    unsetenv("PARLEY_JWT_PUBLIC_KEY_FILE");
}
END_TEST

START_TEST(dump_hides_secrets)
{
    struct config c;
    struct error err = ERROR_INIT;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_int_eq(load(&c, NULL, &err), 0);
    config_dump(&c, f);
    fclose(f);
    ck_assert_ptr_null(strstr(text, SECRET));
    ck_assert_ptr_nonnull(strstr(text, "jwt_secret = (set)\n"));
    ck_assert_ptr_nonnull(strstr(text, "workers = 4\n"));
    free(text);
    config_release(&c);
}
END_TEST

Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults_are_the_documented_ones);
    tcase_add_test(tc, file_then_environment);
    tcase_add_test(tc, bad_files_name_the_line);
    tcase_add_test(tc, short_or_missing_secret_refused);
    tcase_add_test(tc, secret_file_loses_its_newline);
    tcase_add_test(tc, public_key_algorithms);
    tcase_add_test(tc, dump_hides_secrets);
    suite_add_tcase(s, tc);
    return s;
}

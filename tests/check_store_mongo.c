/*
 * check_store_mongo.c - the MongoDB backend takes the URI's topology
 * options as given: replicaSet, readPreference, w, journal, wtimeoutMS,
 * readConcernLevel, retryWrites and retryReads reach the collections every
 * operation runs on, and parley's defaults (derived timeouts, w=majority
 * with journal=true) apply only where the URI sets none.
 * store_mongo_describe() reads them back from a pooled client, as
 * libmongoc resolved them.
 *
 * No server is contacted: the hosts are closed ports on 127.0.0.1, and
 * describing only starts the pool's monitoring, which fails quietly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "store.h"
#include "store_mongo.h"
#include "suites.h"

static struct config cfg;

static void
setup(void)
{
    struct error err = ERROR_INIT;

    unsetenv("PARLEY_MONGODB_URI");
    unsetenv("PARLEY_REQUEST_DEADLINE_MS");
    unsetenv("PARLEY_DB_RETRY_MAX_ATTEMPTS");
    setenv("PARLEY_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    ck_assert_int_eq(config_load(&cfg, NULL, &err), 0);
    store_mongo_global_init();
}

static void
teardown(void)
{
    store_mongo_global_cleanup();
    config_release(&cfg);
    unsetenv("PARLEY_JWT_SECRET");
}

/* The settings string of a store made on uri (with the default deadline
 * of 4000 ms over 3 attempts unless the test changed cfg). */
static void
describe(const char *uri, char *out, size_t n)
{
    struct error err = ERROR_INIT;
    struct store *s;

    ck_assert_int_eq(config_set(&cfg, "mongodb_uri", uri, &err), 0);
    s = store_mongo_new(&cfg, &err);
    ck_assert_msg(s != NULL, "store_mongo_new: %s", err.message);
    store_mongo_describe(s, out, n);
    store_free(s);
}

START_TEST(test_replica_set_options_honoured)
{
    char got[512];

    describe("mongodb://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3/parley"
             "?replicaSet=rs0&w=majority&journal=true&retryWrites=true"
             "&readPreference=primary",
             got, sizeof(got));
    /* 4000 ms / 3 attempts = 1333 ms to select and connect; half the
     * deadline for a reply.  Reads are retried by parley's wrapper, not
     * the driver, unless the URI says otherwise. */
    ck_assert_str_eq(
        got, "hosts=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3 replicaSet=rs0 "
             "tls=false readPreference=primary w=majority journal=true "
             "wtimeoutMS=1500 readConcernLevel=default retryWrites=true "
             "retryReads=false serverSelectionTimeoutMS=1333 "
             "connectTimeoutMS=1333 socketTimeoutMS=2000");
}
END_TEST

/* Every option the operator may turn the other way is taken as given,
 * timeouts included: parley only fills in what the URI leaves out. */
START_TEST(test_other_choices_honoured)
{
    char got[512];

    describe("mongodb://127.0.0.1:1/?replicaSet=other&w=2&journal=false"
             "&wtimeoutMS=5000&readPreference=secondaryPreferred"
             "&maxStalenessSeconds=120&readConcernLevel=majority"
             "&retryWrites=false&retryReads=false"
             "&serverSelectionTimeoutMS=700&connectTimeoutMS=300"
             "&socketTimeoutMS=900",
             got, sizeof(got));
    ck_assert_str_eq(got, "hosts=127.0.0.1:1 replicaSet=other tls=false "
                          "readPreference=secondaryPreferred "
                          "maxStalenessSeconds=120 w=2 journal=false "
                          "wtimeoutMS=5000 readConcernLevel=majority "
                          "retryWrites=false retryReads=false "
                          "serverSelectionTimeoutMS=700 connectTimeoutMS=300 "
                          "socketTimeoutMS=900");
}
END_TEST

/* A bare URI gets the driver's defaults and parley's: derived timeouts,
 * retryReads off, and a write acknowledged once a majority journaled it,
 * waiting at most 3/8 of the deadline. */
START_TEST(test_defaults)
{
    struct error err = ERROR_INIT;
    char got[512];

    ck_assert_int_eq(config_set(&cfg, "request_deadline_ms", "6000", &err), 0);
    ck_assert_int_eq(config_set(&cfg, "db_retry_max_attempts", "2", &err), 0);
    describe("mongodb://127.0.0.1:1", got, sizeof(got));
    ck_assert_str_eq(got, "hosts=127.0.0.1:1 replicaSet=(none) tls=false "
                          "readPreference=primary w=majority journal=true "
                          "wtimeoutMS=2250 readConcernLevel=default "
                          "retryWrites=true retryReads=false "
                          "serverSelectionTimeoutMS=3000 "
                          "connectTimeoutMS=3000 socketTimeoutMS=3000");
}
END_TEST

/* w=majority and journal=true are the defaults only when the URI sets
 * neither w nor journal; wtimeoutMS is added only when the URI has none
 * and w waits for more than the primary. */
START_TEST(test_write_concern_defaults)
{
    static const struct {
        const char *options, *want;
    } cases[] = {
        {"replicaSet=rs0", " w=majority journal=true wtimeoutMS=1500 "},
        {"w=1", " w=1 journal=default readConcernLevel"},
        {"w=0", " w=0 journal=default readConcernLevel"},
        {"journal=false", " w=default journal=false readConcernLevel"},
        {"journal=true", " w=default journal=true readConcernLevel"},
        {"w=majority", " w=majority journal=default wtimeoutMS=1500 "},
        {"w=2&journal=true", " w=2 journal=true wtimeoutMS=1500 "},
        {"wtimeoutMS=700", " w=majority journal=true wtimeoutMS=700 "},
        {"wtimeoutMS=0", " w=majority journal=true readConcernLevel"},
    };
    char got[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char uri[128];

        snprintf(uri, sizeof(uri), "mongodb://127.0.0.1:1/?%s",
                 cases[i].options);
        describe(uri, got, sizeof(got));
        ck_assert_msg(strstr(got, cases[i].want) != NULL, "%s: %s lacks %s",
                      cases[i].options, got, cases[i].want);
    }
}
END_TEST

/* retryReads is off only by default: a URI that turns it on has it. */
START_TEST(test_retry_reads_honoured)
{
    char got[512];

    describe("mongodb://127.0.0.1:1/?retryReads=true", got, sizeof(got));
    ck_assert_ptr_nonnull(strstr(got, " retryReads=true "));
}
END_TEST

/* Credentials in the URI never reach the description (it is logged). */
START_TEST(test_no_credentials)
{
    char got[512];

    describe("mongodb://parley:s3cret-pw@127.0.0.1:1/parley?authSource=admin",
             got, sizeof(got));
    ck_assert_ptr_null(strstr(got, "s3cret"));
    ck_assert_ptr_null(strstr(got, "parley:"));
    ck_assert_ptr_nonnull(strstr(got, "hosts=127.0.0.1:1 "));
}
END_TEST

/* A short buffer gets a terminated prefix, never an overflow. */
START_TEST(test_truncates)
{
    char got[16];

    memset(got, 'x', sizeof(got));
    describe("mongodb://127.0.0.1:1/?replicaSet=rs0", got, 12);
    ck_assert_str_eq(got, "hosts=127.0");
    ck_assert_int_eq(got[12], 'x');
}
END_TEST

/* An option libmongoc cannot take, or a contradiction, is refused when
 * the store is made (before any worker starts), with the key named and
 * the driver's reason, never silently replaced by a default. */
START_TEST(test_bad_options_refused)
{
    static const struct {
        const char *uri, *reason;
    } cases[] = {
        {"mongodb://127.0.0.1:1/?w=majority&journal=maybe",
         "Unsupported value for \"journal\""},
        {"mongodb://127.0.0.1:1/?w=0&journal=true",
         "Journal conflicts with w value"},
        {"mongodb://127.0.0.1:1/?readPreference=bogus",
         "Unsupported readPreference value"},
        {"mongodb://127.0.0.1:1/?readPreference=primary"
         "&maxStalenessSeconds=120",
         "Invalid readPreferences"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct error err = ERROR_INIT;
        struct store *s;

        ck_assert_int_eq(config_set(&cfg, "mongodb_uri", cases[i].uri, &err),
                         0);
        s = store_mongo_new(&cfg, &err);
        ck_assert_msg(s == NULL, "accepted %s", cases[i].uri);
        ck_assert_str_eq(err.param, "mongodb_uri");
        ck_assert_msg(strstr(err.message, cases[i].reason) != NULL,
                      "%s: \"%s\" lacks \"%s\"", cases[i].uri, err.message,
                      cases[i].reason);
    }
}
END_TEST

Suite *
store_mongo_suite(void)
{
    Suite *s = suite_create("store_mongo");
    TCase *tc = tcase_create("uri");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_replica_set_options_honoured);
    tcase_add_test(tc, test_other_choices_honoured);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_write_concern_defaults);
    tcase_add_test(tc, test_retry_reads_honoured);
    tcase_add_test(tc, test_no_credentials);
    tcase_add_test(tc, test_truncates);
    tcase_add_test(tc, test_bad_options_refused);
    suite_add_tcase(s, tc);
    return s;
}

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
#include "error.h"
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

/*
 * What the store makes of each error a real replica set answered while its
 * primary went away: the driver's error (domain, code, message) and the
 * reply document as parley's store received them, recorded by
 * tests/mongo_probe beside parley (tests/failover.sh) on mongod 4.4.6 with
 * libmongoc 1.23, through the same driver calls and settings as
 * store_mongo.c.  "failCommand:" marks a reply of the real server whose
 * error was injected with its failCommand fail point (enableTestCommands),
 * for the codes a 4.4 stepdown or shutdown rarely shows in a short test.
 * The verdicts are the README's: a command the server refused (not primary,
 * shutting down, no member to select) is retried (RETRY_SAFE); a socket
 * error mid-operation, and a write-concern error (the write ran on the
 * primary; whether a majority has it is unknown), only for idempotent
 * calls (RETRY_IDEMPOTENT); each ends as 503, never 500.
 */
static const struct {
    const char *what;
    const char *op;
    uint32_t domain, code;
    const char *message;
    const char *reply; /* extended JSON; "" for none */
    enum error_code want;
    enum retry_class retry;
} failover_errors[] = {
    {"a replSetStepDown of the primary, a write waiting for the ma"
     "jority",
     "insert", 16, 11602, "operation was interrupted",
     "{\"insertedCount\":1,\"writeConcernErrors\":[{\"code\":11602,\"code"
     "Name\":\"InterruptedDueToReplStateChange\",\"errmsg\":\"operation "
     "was interrupted\",\"errInfo\":{\"writeConcern\":{\"w\":\"majority\",\""
     "j\":true,\"wtimeout\":1500,\"provenance\":\"clientSupplied\"}}}],\"e"
     "rrorLabels\":[\"RetryableWriteError\"]}",
     ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"SIGTERM of the primary, retryWrites off", "findAndModify", 16, 11602,
     "Write Concern error: operation was interrupted",
     "{\"lastErrorObject\":{\"n\":1,\"updatedExisting\":true},\"value\":{\""
     "_id\":\"counter\",\"n\":2},\"writeConcernError\":{\"code\":11602,\"cod"
     "eName\":\"InterruptedDueToReplStateChange\",\"errmsg\":\"operation"
     " was interrupted\",\"errInfo\":{\"writeConcern\":{\"w\":\"majority\","
     "\"j\":true,\"wtimeout\":1500,\"provenance\":\"clientSupplied\"}}},\"o"
     "k\":1.0,\"topologyVersion\":{\"processId\":{\"$oid\":\"6b16f953424cf"
     "db526cdd050\"},\"counter\":15},\"$clusterTime\":{\"clusterTime\":{\""
     "$timestamp\":{\"t\":1796669846,\"i\":1}},\"signature\":{\"hash\":{\"$b"
     "inary\":{\"base64\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"subType\":\"0"
     "0\"}},\"keyId\":0}},\"operationTime\":{\"$timestamp\":{\"t\":17966698"
     "46,\"i\":1}}}",
     ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"SIGTERM of the primary: no member to select", "update", 15, 13053,
     "No suitable servers found: `serverSelectionTimeoutMS` expire"
     "d",
     "", ERR_UNAVAILABLE, RETRY_SAFE},
    {"SIGKILL/SIGSTOP of the primary mid-operation", "findAndModify", 2, 4,
     "Failed to send \"findAndModify\" command with database \"parley"
     "_failover_9cba440b_probe\": Failed to read 4 bytes: socket er"
     "ror or timeout",
     "", ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"SIGKILL/SIGSTOP of the primary mid-operation", "update", 2, 4,
     "Failed to send \"update\" command with database \"parley_failov"
     "er_9cba440b_probe\": Failed to read 4 bytes: socket error or "
     "timeout",
     "{\"modifiedCount\":0,\"matchedCount\":0,\"upsertedCount\":0}",
     ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"SIGKILL/SIGSTOP of the primary: reconnecting", "find", 2, 4,
     "Failed to send \"isMaster\" command with database \"admin\": soc"
     "ket error or timeout",
     "", ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"failCommand: ShutdownInProgress, retryWrites on", "insert", 17, 91,
     "Failing command due to 'failCommand' failpoint",
     "{\"insertedCount\":0,\"errorLabels\":[\"RetryableWriteError\"]}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: ShutdownInProgress as a write-concern error", "update", 16,
     91, "injected",
     "{\"modifiedCount\":1,\"matchedCount\":1,\"upsertedCount\":0,\"write"
     "ConcernErrors\":[{\"code\":91,\"errmsg\":\"injected\"}],\"errorLabel"
     "s\":[\"RetryableWriteError\"]}",
     ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"failCommand: InterruptedAtShutdown", "find", 17, 11600,
     "Failing command due to 'failCommand' failpoint",
     "{\"operationTime\":{\"$timestamp\":{\"t\":1796669894,\"i\":4}},\"ok\":"
     "0.0,\"errmsg\":\"Failing command due to 'failCommand' failpoint"
     "\",\"code\":11600,\"codeName\":\"InterruptedAtShutdown\",\"$clusterT"
     "ime\":{\"clusterTime\":{\"$timestamp\":{\"t\":1796669894,\"i\":4}},\"s"
     "ignature\":{\"hash\":{\"$binary\":{\"base64\":\"AAAAAAAAAAAAAAAAAAAA"
     "AAAAAAA=\",\"subType\":\"00\"}},\"keyId\":0}}}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: NotPrimaryNoSecondaryOk, retryWrites on", "findAndModify",
     17, 13435, "Failing command due to 'failCommand' failpoint",
     "{\"errorLabels\":[\"RetryableWriteError\"],\"topologyVersion\":{\"p"
     "rocessId\":{\"$oid\":\"6b1701ad5608431f6d38982a\"},\"counter\":6},\""
     "operationTime\":{\"$timestamp\":{\"t\":1796669902,\"i\":3}},\"ok\":0."
     "0,\"errmsg\":\"Failing command due to 'failCommand' failpoint\","
     "\"code\":13435,\"codeName\":\"NotPrimaryNoSecondaryOk\",\"$clusterT"
     "ime\":{\"clusterTime\":{\"$timestamp\":{\"t\":1796669902,\"i\":3}},\"s"
     "ignature\":{\"hash\":{\"$binary\":{\"base64\":\"AAAAAAAAAAAAAAAAAAAA"
     "AAAAAAA=\",\"subType\":\"00\"}},\"keyId\":0}}}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: NotWritablePrimary, retryWrites off", "insert", 17, 10107,
     "Failing command due to 'failCommand' failpoint", "{\"insertedCount\":0}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: WriteConcernFailed", "insert", 16, 64, "injected",
     "{\"insertedCount\":1,\"writeConcernErrors\":[{\"code\":64,\"errmsg\""
     ":\"injected\"}]}",
     ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"failCommand: PrimarySteppedDown, retryWrites on", "findAndModify", 17,
     189, "Failing command due to 'failCommand' failpoint",
     "{\"errorLabels\":[\"RetryableWriteError\"],\"topologyVersion\":{\"p"
     "rocessId\":{\"$oid\":\"6b1701ad5608431f6d38982a\"},\"counter\":6},\""
     "operationTime\":{\"$timestamp\":{\"t\":1796669927,\"i\":28}},\"ok\":0"
     ".0,\"errmsg\":\"Failing command due to 'failCommand' failpoint\""
     ",\"code\":189,\"codeName\":\"PrimarySteppedDown\",\"$clusterTime\":{"
     "\"clusterTime\":{\"$timestamp\":{\"t\":1796669927,\"i\":28}},\"signat"
     "ure\":{\"hash\":{\"$binary\":{\"base64\":\"AAAAAAAAAAAAAAAAAAAAAAAAA"
     "AA=\",\"subType\":\"00\"}},\"keyId\":0}}}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: PrimarySteppedDown, retryWrites off", "insert", 17, 189,
     "Failing command due to 'failCommand' failpoint", "{\"insertedCount\":0}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: InterruptedDueToReplStateChange, retryWrites on", "insert",
     17, 11602, "Failing command due to 'failCommand' failpoint",
     "{\"insertedCount\":0,\"errorLabels\":[\"RetryableWriteError\"]}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"failCommand: InterruptedDueToReplStateChange, a read", "find", 17, 11602,
     "Failing command due to 'failCommand' failpoint",
     "{\"topologyVersion\":{\"processId\":{\"$oid\":\"6b1701ad5608431f6d3"
     "8982a\"},\"counter\":6},\"operationTime\":{\"$timestamp\":{\"t\":1796"
     "669936,\"i\":20}},\"ok\":0.0,\"errmsg\":\"Failing command due to 'f"
     "ailCommand' failpoint\",\"code\":11602,\"codeName\":\"InterruptedD"
     "ueToReplStateChange\",\"$clusterTime\":{\"clusterTime\":{\"$timest"
     "amp\":{\"t\":1796669936,\"i\":20}},\"signature\":{\"hash\":{\"$binary\""
     ":{\"base64\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"subType\":\"00\"}},\""
     "keyId\":0}}}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    /* Captured with tests/mongo_cmd, the replies of commands: */
    {"an insert sent to a secondary", "createIndexes", 17, 10107, "not primary",
     "{\"topologyVersion\":{\"processId\":{\"$oid\":"
     "\"6b16f953424cfdb526cdd050\"},"
     "\"counter\":9},\"operationTime\":{\"$timestamp\":{\"t\":1796669756,\"i\":"
     "1}},"
     "\"ok\":0.0,\"errmsg\":\"not primary\",\"code\":10107,\"codeName\":"
     "\"NotWritablePrimary\"}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    {"w:majority, wtimeout 1000, both secondaries paused", "insert", 16, 64,
     "waiting for replication timed out",
     "{\"n\":1,\"ok\":1.0,\"writeConcernError\":{\"code\":64,\"codeName\":"
     "\"WriteConcernFailed\",\"errmsg\":\"waiting for replication timed out\","
     "\"errInfo\":{\"wtimeout\":true,\"writeConcern\":{\"w\":\"majority\","
     "\"wtimeout\":1000,\"provenance\":\"clientSupplied\"}}}}",
     ERR_UNAVAILABLE, RETRY_IDEMPOTENT},
    {"dropIndexes while another process builds an index", "dropIndexes", 17,
     12587,
     "cannot perform operation: a background operation is currently running "
     "for collection t9.messages",
     "{\"ok\":0.0,\"errmsg\":\"cannot perform operation: a background "
     "operation is currently running for collection t9.messages\",\"code\":"
     "12587,\"codeName\":\"BackgroundOperationInProgressForNamespace\"}",
     ERR_UNAVAILABLE, RETRY_SAFE},
    /* and what must not be retried, for contrast */
    {"a duplicate _id", "insert", 17, 11000,
     "E11000 duplicate key error collection: fx.d index: _id_ dup key: { _id: "
     "1 }",
     "{\"n\":0,\"writeErrors\":[{\"index\":0,\"code\":11000,\"keyPattern\":"
     "{\"_id\":1},\"keyValue\":{\"_id\":1},\"errmsg\":\"E11000 duplicate key "
     "error collection: fx.d index: _id_ dup key: { _id: 1 }\"}],\"ok\":1.0}",
     ERR_DUPLICATE, RETRY_NEVER},
};

START_TEST(test_failover_errors_classified)
{
    for (size_t i = 0; i < sizeof(failover_errors) / sizeof(failover_errors[0]);
         i++) {
        struct error err = ERROR_INIT;

        ck_assert_msg(store_mongo_classify_json(
                          failover_errors[i].op, failover_errors[i].domain,
                          failover_errors[i].code, failover_errors[i].message,
                          failover_errors[i].reply, &err),
                      "fixture %zu (%s): the reply does not parse", i,
                      failover_errors[i].what);
        ck_assert_msg(err.code == failover_errors[i].want &&
                          err.retry == failover_errors[i].retry,
                      "fixture %zu (%s, %s %u/%u): status %d retry %d, want "
                      "%d retry %d",
                      i, failover_errors[i].what, failover_errors[i].op,
                      failover_errors[i].domain, failover_errors[i].code,
                      error_http_status(err.code), err.retry,
                      error_http_status(failover_errors[i].want),
                      failover_errors[i].retry);
        ck_assert_int_eq(err.db_code, (int)failover_errors[i].code);
        /* The server's message may quote document content: never kept. */
        ck_assert_ptr_null(strstr(err.message, "dup key"));
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
    tc = tcase_create("errors");
    tcase_add_test(tc, test_failover_errors_classified);
    suite_add_tcase(s, tc);
    return s;
}

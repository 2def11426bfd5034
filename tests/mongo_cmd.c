/*
 * mongo_cmd.c - run one MongoDB command and print the server's reply: the
 * test harness's (scripts/lib.sh) way to talk to a real mongod, so that it
 * needs nothing a parley build does not already have (libmongoc), not a
 * mongo shell nor a Python or Node driver.
 *
 *   tests/mongo_cmd URI DB COMMAND
 *
 * COMMAND is the command document as MongoDB extended JSON, its first key
 * the command's name, e.g. '{"replSetGetStatus": 1}'.  It is sent as is
 * (no read or write concern added) to the primary, or to the one server a
 * URI with directConnection=true names (any member, initiated or not).
 * Unless the URI sets them, server selection gives up after 5 s and a
 * connection attempt after 2 s.
 *
 * The reply is printed on stdout as one line of relaxed extended JSON, also
 * when the command failed (a failed command's reply is the error document
 * the server sent, labels included).  Exit status: 0 the server answered
 * ok: 1; 1 it answered ok: 0 (its code and message also go to stderr);
 * 2 no server answered, or the arguments were wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libbson's atomics cast const away (Debian 12's 1.23). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <mongoc/mongoc.h>
#pragma GCC diagnostic pop

#include "banned.h"

static int
mongo_cmd_run(const char *uri_text, const char *db, const char *json)
{
    bson_error_t error;
    bson_t reply = BSON_INITIALIZER;
    bson_t *cmd = NULL;
    mongoc_uri_t *uri = NULL;
    mongoc_client_t *client = NULL;
    char *out = NULL;
    int rc = 2;

    cmd = bson_new_from_json((const uint8_t *)json, -1, &error);
    if (cmd == NULL) {
        fprintf(stderr, "mongo_cmd: the command is not JSON: %s\n",
                error.message);
        goto done;
    }
    uri = mongoc_uri_new_with_error(uri_text, &error);
    if (uri == NULL) {
        fprintf(stderr, "mongo_cmd: bad URI: %s\n", error.message);
        goto done;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       5000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
    client = mongoc_client_new_from_uri_with_error(uri, &error);
    if (client == NULL) {
        fprintf(stderr, "mongo_cmd: %s\n", error.message);
        goto done;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(client, "parley-mongo_cmd");

    if (mongoc_client_command_simple(client, db, cmd, NULL, &reply, &error)) {
        rc = 0;
    } else if (error.domain == MONGOC_ERROR_SERVER ||
               error.domain == MONGOC_ERROR_WRITE_CONCERN) {
        fprintf(stderr, "mongo_cmd: server error %u: %s\n", error.code,
                error.message);
        rc = 1;
    } else {
        fprintf(stderr, "mongo_cmd: %s\n", error.message);
        goto done;
    }
    out = bson_as_relaxed_extended_json(&reply, NULL);
    if (out != NULL)
        printf("%s\n", out);

done:
    bson_free(out);
    bson_destroy(&reply);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    bson_destroy(cmd);
    return rc;
}

int
main(int argc, char **argv)
{
    int rc;

    if (argc != 4) {
        fprintf(stderr, "usage: mongo_cmd URI DB COMMAND_JSON\n");
        return 2;
    }
    mongoc_init();
    /* The command's outcome is reported once, above; the driver's own
     * warnings (a member not reachable yet) would only repeat it. */
    mongoc_log_set_handler(NULL, NULL);
    rc = mongo_cmd_run(argv[1], argv[2], argv[3]);
    mongoc_cleanup();
    return rc;
}

/*
 * bare_db_responder.c - the floor: a libfcgi responder that does only the
 * database call parley's request needs.
 *
 *   bare_db_responder SOCKET CHILDREN URI DATABASE USER
 *
 * scripts/bench runs it beside parley, behind the same nginx, with as many
 * children as parley has workers and on the same database, so that
 * parley's CPU per request can be compared with what the database call
 * alone costs a worker (libfcgi, libmongoc, libbson).  It does nothing
 * else: no token, no validation, no limits, no metrics, no logging.
 *
 *   GET  .../agent-sessions/ID            find {user_id, session_id: ID}
 *        on the sessions collection, limit 1 in a single batch (what
 *        parley sends; the unique index user_session_id serves it), the
 *        document back as relaxed extended JSON.
 *   GET  .../agent-sessions[?...]         parley's first page of the
 *        session list: find {user_id} sorted {updated_at: -1, _id: -1},
 *        hint user_updated_id, limit 21 (a page of 20 and one to tell
 *        has_more), and when there is more, countDocuments on the same
 *        index for the total (parley's list answers a total, and counts
 *        only when the page does not tell it); the documents back as a
 *        JSON array.
 *   POST .../agent-sessions/ID/messages   one insert_one into the messages
 *        collection of a document shaped like parley's (the body, unread
 *        as JSON, as its content; this child's own session_uuid and a seq
 *        of its own, so the unique session_seq index never refuses it),
 *        the document back as JSON, 201.
 *   anything else                         404.
 *
 * The JSON is written from the BSON with libbson's iterator (floor_json),
 * not with bson_as_relaxed_extended_json(), which costs more than parley's
 * whole request (see floor_json).
 *
 * USER is the user_id every query is scoped by (the bench token's sub).
 * The client is parley's kind: a pool (its monitoring threads watch the
 * servers) from which each child pops one client and keeps it; the
 * collection handles are made once per child.  Write concern: the URI's,
 * and when the URI sets none parley's default, w=majority with journal
 * (and a wtimeout), so that on a replica set the insert waits for what
 * parley's append waits for.  retryReads is off, as in parley.
 *
 * The process skeleton (fork CHILDREN up front, SIGTERM stops them all, a
 * child that dies stops the rest and the parent exits 1) is
 * bare_responder.c's.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
/* libbson's atomics cast const away (bson-atomic.h). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <mongoc/mongoc.h>
#pragma GCC diagnostic pop

#include "banned.h"

#define FLOOR_MAX_CHILDREN 256
#define FLOOR_BACKLOG      1024
#define FLOOR_MAX_BODY     (64 * 1024)
#define FLOOR_PAGE         20

static volatile sig_atomic_t floor_stop;

struct floor_out {
    char *p;
    size_t len, cap;
};

struct floor {
    mongoc_client_pool_t *pool;
    mongoc_client_t *client;
    mongoc_collection_t *sessions;
    mongoc_collection_t *messages;
    const char *user;
    uint8_t session_uuid[16];
    int64_t seq;
    struct floor_out out;
};

static void
floor_on_signal(int sig)
{
    (void)sig;
    floor_stop = 1;
}

static void
floor_on_child(int sig)
{
    (void)sig;
}

/* The answer's JSON, written straight from the BSON with libbson's
 * iterator: strings escaped, numbers and dates (ms) as numbers, binary
 * and ObjectIds as hex strings.  Not bson_as_relaxed_extended_json():
 * that costs about 125,000 instructions for one session document (its
 * escaping appends a character at a time, with a realloc check each),
 * several times what parley's whole request costs, and would make the
 * floor no floor. */
static void
floor_put(struct floor_out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        char *p;

        while (cap < o->len + n + 1)
            cap *= 2;
        p = realloc(o->p, cap);
        if (p == NULL)
            abort();
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void
floor_put_str(struct floor_out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    floor_put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        esc[0] = '\\';
        esc[1] = 'u';
        esc[2] = esc[3] = '0';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        floor_put(o, s + run, i - run);
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            floor_put(o, esc, 2);
        } else {
            floor_put(o, esc, 6);
        }
        run = i + 1;
    }
    floor_put(o, s + run, n - run);
    floor_put(o, "\"", 1);
}

/* An integer in decimal (snprintf costs about a thousand instructions). */
static void
floor_put_int(struct floor_out *o, int64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *--p = '-';
    floor_put(o, p, (size_t)(buf + sizeof(buf) - p));
}

static void
floor_put_hex(struct floor_out *o, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char buf[64];

    floor_put(o, "\"", 1);
    while (n > 0) {
        size_t k = n > sizeof(buf) / 2 ? sizeof(buf) / 2 : n;

        for (size_t i = 0; i < k; i++) {
            buf[2 * i] = hex[p[i] >> 4];
            buf[2 * i + 1] = hex[p[i] & 15];
        }
        floor_put(o, buf, 2 * k);
        p += k;
        n -= k;
    }
    floor_put(o, "\"", 1);
}

static void
floor_json(struct floor_out *o, const bson_t *doc, bool array)
{
    bson_iter_t it;
    bool first = true;

    floor_put(o, array ? "[" : "{", 1);
    if (bson_iter_init(&it, doc)) {
        while (bson_iter_next(&it)) {
            char num[32];
            int n = 0;

            if (!first)
                floor_put(o, ",", 1);
            first = false;
            if (!array) {
                floor_put_str(o, bson_iter_key(&it), bson_iter_key_len(&it));
                floor_put(o, ":", 1);
            }
            switch (bson_iter_type(&it)) {
            case BSON_TYPE_UTF8: {
                uint32_t len;
                const char *s = bson_iter_utf8(&it, &len);

                floor_put_str(o, s, len);
                break;
            }
            case BSON_TYPE_INT32:
                floor_put_int(o, bson_iter_int32(&it));
                break;
            case BSON_TYPE_INT64:
                floor_put_int(o, bson_iter_int64(&it));
                break;
            case BSON_TYPE_DATE_TIME:
                floor_put_int(o, bson_iter_date_time(&it));
                break;
            case BSON_TYPE_DOUBLE:
                n = snprintf(num, sizeof(num), "%.17g", bson_iter_double(&it));
                break;
            case BSON_TYPE_BOOL:
                floor_put(o, bson_iter_bool(&it) ? "true" : "false",
                          bson_iter_bool(&it) ? 4 : 5);
                break;
            case BSON_TYPE_DOCUMENT:
            case BSON_TYPE_ARRAY: {
                const uint8_t *data;
                uint32_t len;
                bson_t sub;

                if (bson_iter_type(&it) == BSON_TYPE_DOCUMENT)
                    bson_iter_document(&it, &len, &data);
                else
                    bson_iter_array(&it, &len, &data);
                if (bson_init_static(&sub, data, len))
                    floor_json(o, &sub, bson_iter_type(&it) == BSON_TYPE_ARRAY);
                else
                    floor_put(o, "null", 4);
                break;
            }
            case BSON_TYPE_BINARY: {
                const uint8_t *data;
                uint32_t len;
                bson_subtype_t sub;

                bson_iter_binary(&it, &sub, &len, &data);
                floor_put_hex(o, data, len);
                break;
            }
            case BSON_TYPE_OID:
                floor_put_hex(o, bson_iter_oid(&it)->bytes, 12);
                break;
            default:
                floor_put(o, "null", 4);
                break;
            }
            if (n > 0)
                floor_put(o, num, (size_t)n);
        }
    }
    floor_put(o, array ? "]" : "}", 1);
}

static void
floor_reply(FCGX_Request *req, const char *status, const char *body)
{
    size_t n = strlen(body);
    char head[160];
    int h = snprintf(head, sizeof(head),
                     "Status: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, n);

    FCGX_PutStr(head, h, req->out);
    FCGX_PutStr(body, (int)n, req->out);
}

static void
floor_error(FCGX_Request *req, const char *status, const bson_error_t *e)
{
    char body[700];

    snprintf(body, sizeof(body), "{\"error\":\"%u.%u\"}",
             e != NULL ? e->domain : 0u, e != NULL ? e->code : 0u);
    floor_reply(req, status, body);
}

static void
floor_get(struct floor *f, FCGX_Request *req, const char *sid, size_t len)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    const bson_t *doc;
    bson_error_t e;
    mongoc_cursor_t *cursor;

    bson_append_utf8(&filter, "user_id", -1, f->user, -1);
    bson_append_utf8(&filter, "session_id", -1, sid, (int)len);
    bson_append_int64(&opts, "limit", -1, 1);
    bson_append_bool(&opts, "singleBatch", -1, true);
    cursor =
        mongoc_collection_find_with_opts(f->sessions, &filter, &opts, NULL);
    if (mongoc_cursor_next(cursor, &doc)) {
        f->out.len = 0;
        floor_json(&f->out, doc, false);
        floor_reply(req, "200 OK", f->out.p);
    } else if (mongoc_cursor_error(cursor, &e)) {
        floor_error(req, "503 Service Unavailable", &e);
    } else {
        floor_reply(req, "404 Not Found", "{\"error\":\"not_found\"}");
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(&opts);
    bson_destroy(&filter);
}

static void
floor_list(struct floor *f, FCGX_Request *req)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    bson_t count_opts = BSON_INITIALIZER;
    const bson_t *doc;
    bson_error_t e;
    mongoc_cursor_t *cursor;
    int64_t n = 0, total;
    bool more = false, failed;

    bson_append_utf8(&filter, "user_id", -1, f->user, -1);
    bson_append_document_begin(&opts, "sort", -1, &sort);
    bson_append_int32(&sort, "updated_at", -1, -1);
    bson_append_int32(&sort, "_id", -1, -1);
    bson_append_document_end(&opts, &sort);
    bson_append_utf8(&opts, "hint", -1, "user_updated_id", -1);
    bson_append_int64(&opts, "limit", -1, FLOOR_PAGE + 1);
    bson_append_int64(&opts, "batchSize", -1, FLOOR_PAGE + 1);
    cursor =
        mongoc_collection_find_with_opts(f->sessions, &filter, &opts, NULL);
    f->out.len = 0;
    floor_put(&f->out, "{\"items\":[", 10);
    while (mongoc_cursor_next(cursor, &doc)) {
        if (n == FLOOR_PAGE) {
            more = true;
            break;
        }
        if (n++ > 0)
            floor_put(&f->out, ",", 1);
        floor_json(&f->out, doc, false);
    }
    failed = mongoc_cursor_error(cursor, &e);
    mongoc_cursor_destroy(cursor);
    total = n;
    if (!failed && more) {
        bson_append_utf8(&count_opts, "hint", -1, "user_updated_id", -1);
        total = mongoc_collection_count_documents(f->sessions, &filter,
                                                  &count_opts, NULL, NULL, &e);
        failed = total < 0;
    }
    if (failed) {
        floor_error(req, "503 Service Unavailable", &e);
    } else {
        char tail[64];
        int k =
            snprintf(tail, sizeof(tail), "],\"total\":%lld,\"has_more\":%s}",
                     (long long)total, more ? "true" : "false");

        floor_put(&f->out, tail, (size_t)k);
        floor_reply(req, "200 OK", f->out.p);
    }
    bson_destroy(&count_opts);
    bson_destroy(&opts);
    bson_destroy(&filter);
}

static void
floor_append(struct floor *f, FCGX_Request *req, const char *sid, size_t len)
{
    static char body[FLOOR_MAX_BODY + 1];
    bson_t doc = BSON_INITIALIZER;
    bson_error_t e;
    int64_t now;
    struct timespec ts;
    uint8_t id[16];
    int n = FCGX_GetStr(body, FLOOR_MAX_BODY, req->in);

    if (n < 0)
        n = 0;
    body[n] = '\0';
    if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
        memset(id, 0, sizeof(id));
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    bson_append_binary(&doc, "_id", -1, BSON_SUBTYPE_UUID, id, sizeof(id));
    bson_append_utf8(&doc, "user_id", -1, f->user, -1);
    bson_append_binary(&doc, "session_uuid", -1, BSON_SUBTYPE_UUID,
                       f->session_uuid, sizeof(f->session_uuid));
    bson_append_utf8(&doc, "session_id", -1, sid, (int)len);
    bson_append_int64(&doc, "seq", -1, ++f->seq);
    bson_append_utf8(&doc, "role", -1, "user", -1);
    bson_append_utf8(&doc, "content", -1, body, n);
    bson_append_null(&doc, "tool_call_id", -1);
    bson_append_null(&doc, "tool_name", -1);
    bson_append_null(&doc, "extra_data", -1);
    bson_append_int64(&doc, "bytes", -1, n);
    bson_append_date_time(&doc, "created_at", -1, now);
    bson_append_date_time(&doc, "updated_at", -1, now);
    if (mongoc_collection_insert_one(f->messages, &doc, NULL, NULL, &e)) {
        f->out.len = 0;
        floor_json(&f->out, &doc, false);
        floor_reply(req, "201 Created", f->out.p);
    } else {
        floor_error(req, "503 Service Unavailable", &e);
    }
    bson_destroy(&doc);
}

/* Routes SCRIPT_NAME/DOCUMENT_URI (nginx's fastcgi_params give both; the
 * query string is not part of them) to the three calls. */
static void
floor_handle(struct floor *f, FCGX_Request *req)
{
    static const char prefix[] = "/api/agent-sessions";
    const char *method = FCGX_GetParam("REQUEST_METHOD", req->envp);
    const char *uri = FCGX_GetParam("DOCUMENT_URI", req->envp);
    const char *rest, *slash;

    if (uri == NULL)
        uri = FCGX_GetParam("SCRIPT_NAME", req->envp);
    if (method == NULL || uri == NULL ||
        strncmp(uri, prefix, sizeof(prefix) - 1) != 0) {
        floor_reply(req, "404 Not Found", "{\"error\":\"not_found\"}");
        return;
    }
    rest = uri + sizeof(prefix) - 1;
    if (*rest == '\0' && strcmp(method, "GET") == 0) {
        floor_list(f, req);
        return;
    }
    if (*rest != '/' || rest[1] == '\0') {
        floor_reply(req, "404 Not Found", "{\"error\":\"not_found\"}");
        return;
    }
    rest++;
    slash = strchr(rest, '/');
    if (slash == NULL && strcmp(method, "GET") == 0)
        floor_get(f, req, rest, strlen(rest));
    else if (slash != NULL && strcmp(slash, "/messages") == 0 &&
             strcmp(method, "POST") == 0)
        floor_append(f, req, rest, (size_t)(slash - rest));
    else
        floor_reply(req, "404 Not Found", "{\"error\":\"not_found\"}");
}

static mongoc_client_pool_t *
floor_pool(const char *uri_string)
{
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_string, &e);
    mongoc_client_pool_t *pool;

    if (uri == NULL) {
        fprintf(stderr, "bare_db_responder: bad URI: %s\n", e.message);
        return NULL;
    }
    /* parley's defaults where the URI says nothing (store_mongo.c):
     * w=majority with journal, wtimeout 3/8 of the 4 s deadline, no
     * driver retry of reads. */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_W) &&
        !mongoc_uri_has_option(uri, MONGOC_URI_JOURNAL)) {
        mongoc_write_concern_t *wc = mongoc_write_concern_new();

        mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
        mongoc_write_concern_set_journal(wc, true);
        if (!mongoc_uri_has_option(uri, MONGOC_URI_WTIMEOUTMS))
            mongoc_write_concern_set_wtimeout_int64(wc, 1500);
        mongoc_uri_set_write_concern(uri, wc);
        mongoc_write_concern_destroy(wc);
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_RETRYREADS))
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_RETRYREADS, false);
    pool = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (pool != NULL)
        mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    return pool;
}

static int
floor_serve(int listen_fd, const char *uri, const char *database,
            const char *user)
{
    struct floor f = {0};
    FCGX_Request req;
    char sink[8192];

    mongoc_init();
    f.pool = floor_pool(uri);
    if (f.pool == NULL)
        return -1;
    f.client = mongoc_client_pool_pop(f.pool);
    f.sessions = mongoc_client_get_collection(f.client, database, "sessions");
    f.messages = mongoc_client_get_collection(f.client, database, "messages");
    f.user = user;
    if (getrandom(f.session_uuid, sizeof(f.session_uuid), 0) !=
        (ssize_t)sizeof(f.session_uuid))
        return -1;
    if (FCGX_InitRequest(&req, listen_fd, 0) != 0)
        return -1;
    while (FCGX_Accept_r(&req) >= 0) {
        floor_handle(&f, &req);
        while (FCGX_GetStr(sink, (int)sizeof(sink), req.in) > 0)
            ;
        FCGX_Finish_r(&req);
    }
    return -1;
}

static void
floor_signal_children(const pid_t *pids, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], sig);
}

int
main(int argc, char **argv)
{
    pid_t pids[FLOOR_MAX_CHILDREN] = {0};
    int children, listen_fd, alive = 0, rc = 0;
    sigset_t block, old;
    struct sigaction sa;

    if (argc != 6 || (children = atoi(argv[2])) < 1 ||
        children > FLOOR_MAX_CHILDREN) {
        fprintf(stderr, "usage: %s SOCKET CHILDREN(1..%d) URI DATABASE USER\n",
                argv[0], FLOOR_MAX_CHILDREN);
        return 2;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "bare_db_responder: FCGX_Init failed\n");
        return 1;
    }
    unlink(argv[1]);
    listen_fd = FCGX_OpenSocket(argv[1], FLOOR_BACKLOG);
    if (listen_fd < 0 || chmod(argv[1], 0666) != 0) {
        fprintf(stderr, "bare_db_responder: cannot listen on %s: %s\n", argv[1],
                strerror(errno));
        return 1;
    }

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);

    /* Each child makes its own pool after the fork: libmongoc's threads
     * and sockets do not survive one. */
    for (int i = 0; i < children; i++) {
        pid_t pid = fork();

        if (pid < 0) {
            fprintf(stderr, "bare_db_responder: fork: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (pid == 0) {
            signal(SIGPIPE, SIG_IGN);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            sigprocmask(SIG_SETMASK, &old, NULL);
            floor_serve(listen_fd, argv[3], argv[4], argv[5]);
            _exit(1);
        }
        pids[i] = pid;
        alive++;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = floor_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = floor_on_child;
    sigaction(SIGCHLD, &sa, NULL);

    while (rc == 0 && !floor_stop) {
        pid_t pid;

        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
            for (int i = 0; i < children; i++)
                if (pids[i] == pid)
                    pids[i] = 0;
            alive--;
            fprintf(stderr, "bare_db_responder: child %ld died\n", (long)pid);
            rc = 1;
        }
        if (rc == 0 && !floor_stop) {
            sigset_t wait_mask = old;

            sigdelset(&wait_mask, SIGTERM);
            sigdelset(&wait_mask, SIGINT);
            sigdelset(&wait_mask, SIGCHLD);
            sigsuspend(&wait_mask);
        }
    }

    floor_signal_children(pids, children, SIGTERM);
    while (alive > 0 && wait(NULL) > 0)
        alive--;
    unlink(argv[1]);
    return rc;
}

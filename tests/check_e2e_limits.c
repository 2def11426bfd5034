/*
 * check_e2e_limits.c - every fairness limit end to end, each test failing
 * when its limit is not enforced: the per-user limit on requests in
 * flight (429, and no slot leaked by a worker killed mid-request), work
 * for a client that has gone (an export stops at its next page; a request
 * that waited in the queue is not served), the queue-wait deadline (503
 * without work), the export deadline (the truncation marker), the worker
 * memory ceiling, the token lifetime, ids in lowercase only, and nginx's
 * side: connection limits per client, JSON error pages with their
 * headers, Cache-Control and nosniff everywhere, idle connections.
 *
 * tests/limits.sh starts the dev DB (or a replica set), parley with small
 * limits (four workers, so user_max_inflight's default is 2 and
 * user_max_bulk's 1; export and memory limits in limits.sh) and nginx with the
 * repo's snippets, and runs this program with check_e2e's environment
 * (PARLEY_E2E_URL, _SECRET, _BIN, _CONFIG) plus PARLEY_E2E_SOCKET  parley's
 * unix socket: some tests talk FastCGI to it directly, as nginx does, to hold a
 * worker (a peer that reads nothing, or sends half a body), to say when a
 * request arrived, or to read /metrics PARLEY_E2E_PID     the supervisor's pid
 * (its children are the workers) PARLEY_E2E_ERASE   a user id the erasure test
 * erases; limits.sh then checks no log holds it
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "arena.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "e2e_http.h"
#include "e2e_util.h"
#include "json.h"
#include "banned.h"

/* The big session every export test reads: BIG_N messages of about
 * BIG_BYTES, in batches of 100. */
#define BIG_N     4000
#define BIG_BYTES 1000

static const char *sock_path;
static pid_t parley_pid;
static struct user owner; /* has the big session "big" */
static char owner_name[128], owner_token[2048];

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ====================================================================== */
/* FastCGI, spoken directly to parley's socket (as nginx does). */

enum {
    FC_BEGIN = 1,
    FC_END = 3,
    FC_PARAMS = 4,
    FC_STDIN = 5,
    FC_STDOUT = 6,
};

static int
fc_open(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    ck_assert(strlen(sock_path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0,
                  "connect %s: %s", sock_path, strerror(errno));
    return fd;
}

static void
fc_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);

        ck_assert_msg(w > 0, "FastCGI write: %s", strerror(errno));
        c += w;
        n -= (size_t)w;
    }
}

static void
fc_record(int fd, int type, const void *data, size_t n)
{
    unsigned char h[8] = {1,
                          (unsigned char)type,
                          0,
                          1,
                          (unsigned char)(n >> 8),
                          (unsigned char)n,
                          0,
                          0};

    ck_assert(n <= 65535);
    fc_write_all(fd, h, 8);
    if (n > 0)
        fc_write_all(fd, data, n);
}

static void
fc_pair(struct buf *b, const char *name, const char *value)
{
    size_t ln = strlen(name), lv = strlen(value);
    const size_t lens[2] = {ln, lv};

    for (int k = 0; k < 2; k++) {
        if (lens[k] < 128) {
            buf_addch(b, (char)lens[k]);
        } else {
            buf_addch(b, (char)(0x80 | (lens[k] >> 24)));
            buf_addch(b, (char)(lens[k] >> 16));
            buf_addch(b, (char)(lens[k] >> 8));
            buf_addch(b, (char)lens[k]);
        }
    }
    buf_add(b, name, ln);
    buf_add(b, value, lv);
}

/* Sends the begin record and the parameters of one request, then
 * `send` bytes of its body, and ends the body when `end` is set.
 * start_ms: PARLEY_REQUEST_START in wall-clock ms, 0 for none. */
static int
fc_request(const char *method, const char *uri, const char *token,
           int64_t start_ms, const char *body, size_t send, bool end)
{
    static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    int fd = fc_open();
    struct buf p;
    char n[64];

    fc_record(fd, FC_BEGIN, begin, 8);
    buf_init(&p);
    fc_pair(&p, "REQUEST_METHOD", method);
    fc_pair(&p, "REQUEST_URI", uri);
    fc_pair(&p, "PARLEY_REQUEST_ID", "limits-direct");
    if (token != NULL) {
        char *auth = NULL;

        ck_assert(asprintf(&auth, "Bearer %s", token) > 0);
        fc_pair(&p, "HTTP_AUTHORIZATION", auth);
        free(auth);
    }
    if (start_ms > 0) {
        snprintf(n, sizeof n, "%lld.%03lld", (long long)(start_ms / 1000),
                 (long long)(start_ms % 1000));
        fc_pair(&p, "PARLEY_REQUEST_START", n);
    }
    if (body != NULL) {
        snprintf(n, sizeof n, "%zu", strlen(body));
        fc_pair(&p, "CONTENT_LENGTH", n);
        fc_pair(&p, "CONTENT_TYPE", "application/json");
    }
    fc_record(fd, FC_PARAMS, p.data, p.len);
    fc_record(fd, FC_PARAMS, NULL, 0);
    buf_release(&p);
    if (body != NULL && send > 0)
        fc_record(fd, FC_STDIN, body, send);
    if (end)
        fc_record(fd, FC_STDIN, NULL, 0);
    return fd;
}

/* Reads records until the end of the request, EOF or timeout_ms;
 * appends what the answer's stdout holds to out.  With chunk > 0, reads
 * at most chunk bytes every interval_ms (a slow reader).  Returns 1 when
 * the request ended, 0 at EOF or timeout. */
static int
fc_read(int fd, struct buf *out, int timeout_ms, size_t chunk, int interval_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct buf in;
    int ended = 0;

    buf_init(&in);
    while (!ended) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - mono_ms();
        char tmp[65536];
        size_t want = chunk > 0 && chunk < sizeof tmp ? chunk : sizeof tmp;
        ssize_t r;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        r = read(fd, tmp, want);
        if (r <= 0)
            break;
        buf_add(&in, tmp, (size_t)r);
        /* Whole records out of what came so far. */
        for (;;) {
            const unsigned char *h = (const unsigned char *)in.data;
            size_t clen, total;

            if (in.len < 8)
                break;
            clen = ((size_t)h[4] << 8) | h[5];
            total = 8 + clen + h[6];
            if (in.len < total)
                break;
            if (h[1] == FC_STDOUT)
                buf_add(out, in.data + 8, clen);
            if (h[1] == FC_END)
                ended = 1;
            memmove(in.data, in.data + total, in.len - total);
            in.len -= total;
        }
        if (chunk > 0 && !ended)
            sleep_ms(interval_ms);
    }
    buf_release(&in);
    return ended;
}

struct fc_resp {
    int status;
    const char *head; /* the header lines */
    const char *body;
    size_t body_len;
};

/* Splits an answer's stdout ("Status: 200 OK\r\n...\r\n\r\nbody"); it
 * stays in raw. */
static struct fc_resp
fc_parse(struct buf *raw)
{
    struct fc_resp r = {0, "", "", 0};
    char *sep;

    buf_addch(raw, '\0');
    raw->len--;
    sep = strstr(raw->data, "\r\n\r\n");
    if (sep == NULL)
        return r;
    *sep = '\0';
    r.head = raw->data;
    r.body = sep + 4;
    r.body_len = raw->len - (size_t)(sep + 4 - raw->data);
    if (strncmp(raw->data, "Status: ", 8) == 0)
        r.status = atoi(raw->data + 8);
    return r;
}

/* One whole direct request; the answer in *raw. */
static struct fc_resp
fc_do(const char *method, const char *uri, const char *token, int64_t start_ms,
      const char *body, struct buf *raw)
{
    int fd = fc_request(method, uri, token, start_ms, body,
                        body ? strlen(body) : 0, true);

    buf_init(raw);
    ck_assert_msg(fc_read(fd, raw, 10000, 0, 0) == 1,
                  "%s %s: no end of request", method, uri);
    close(fd);
    return fc_parse(raw);
}

/* A series of /metrics, read directly (the public nginx refuses it). */
static double
metric(const char *series)
{
    struct buf raw;
    struct fc_resp r = fc_do("GET", "/metrics", NULL, 0, NULL, &raw);
    const char *p = r.body;
    size_t n = strlen(series);
    double v = -1;

    ck_assert_int_eq(r.status, 200);
    while ((p = strstr(p, series)) != NULL) {
        if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p++;
    }
    buf_release(&raw);
    ck_assert_msg(v >= 0, "no series %s in /metrics", series);
    return v;
}

/* ====================================================================== */
/* Requests through nginx. */

static const char *
bigpath(const char *suffix)
{
    return str(SESSIONS "/big%s", suffix);
}

/* A request as `u` from 127.0.0.1 (a trusted peer: nginx keys it by
 * token). */
static int
status_as(const struct user *u, const char *method, const char *target,
          const char *body)
{
    const char *lines[] = {str("Authorization: Bearer %s", u->token), NULL};
    const char *json[] = {lines[0], JSON_CT, NULL};
    struct e2e_http_request req;
    struct e2e_http_response out;
    int st;

    memset(&req, 0, sizeof req);
    req.method = method;
    req.target = target;
    req.headers = body != NULL ? json : lines;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    (void)e2e_http_do(&env.client, &req, &out);
    st = out.status;
    e2e_http_response_release(&out);
    return st;
}

static int
status_of(const struct user *u, const char *target)
{
    return status_as(u, "GET", target, NULL);
}

/* HEAD of the owner's export: 200 when one of its bulk requests may
 * start, 429 while its one bulk slot is taken. */
static int
export_slot(void)
{
    return status_as(&owner, "HEAD", bigpath("/export"), NULL);
}

/* Polls the owner's export slot until it is free, up to within_ms;
 * returns the ms it took, or -1. */
static int64_t
until_export_slot(int within_ms)
{
    int64_t t0 = mono_ms();

    while (mono_ms() - t0 <= within_ms) {
        if (export_slot() == 200)
            return mono_ms() - t0;
        sleep_ms(20);
    }
    return -1;
}

/* A raw exchange with nginx: bytes out, everything until it closes (or
 * timeout_ms) back. */
static void
raw_http(const char *bytes, size_t n, struct buf *out, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int64_t deadline = mono_ms() + timeout_ms;

    ck_assert_int_ge(fd, 0);
    ck_assert(connect(fd, (struct sockaddr *)&env.client.server,
                      env.client.server_len) == 0);
    fc_write_all(fd, bytes, n);
    buf_init(out);
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - mono_ms();
        char tmp[16384];
        ssize_t r;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        r = read(fd, tmp, sizeof tmp);
        if (r <= 0)
            break;
        buf_add(out, tmp, (size_t)r);
    }
    close(fd);
    buf_addch(out, '\0');
    out->len--;
}

/* The value of header `name` in a raw HTTP answer (case-insensitive), or
 * NULL; *count gets how many times it appears. */
static const char *
raw_header(const char *raw, const char *name, int *count)
{
    const char *end = strstr(raw, "\r\n\r\n"), *p = strstr(raw, "\r\n");
    const char *found = NULL;
    size_t n = strlen(name);

    *count = 0;
    while (p != NULL && end != NULL && p < end) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            const char *e = strstr(v, "\r\n");

            while (*v == ' ')
                v++;
            if (found == NULL)
                found = arena_strndup(&tc.arena, v, (size_t)(e - v));
            (*count)++;
        }
        p = strstr(p, "\r\n");
    }
    return found;
}

/* nginx answered status itself, with the contract's JSON error body and
 * the headers every API answer carries. */
static void
expect_nginx_error(const char *what, const char *raw, int status)
{
    const char *body = strstr(raw, "\r\n\r\n");
    const struct json_value *v, *e;
    struct error err = ERROR_INIT;
    int count;
    const char *h;

    ck_assert_msg(strncmp(raw, "HTTP/1.1 ", 9) == 0 && atoi(raw + 9) == status,
                  "%s: want %d, got: %.200s", what, status, raw);
    ck_assert_msg(body != NULL, "%s: no header end", what);
    v = json_parse(&tc.arena, body + 4, strlen(body + 4), 8, &err);
    ck_assert_msg(v != NULL, "%s: body is not JSON: %.200s", what, body + 4);
    e = jobj(v, "error");
    ck_assert_int_eq(jint(e, "status"), status);
    (void)jstr(e, "code");
    (void)jstr(e, "message");
    ck_assert(jis_null(e, "param"));
    h = raw_header(raw, "Content-Type", &count);
    ck_assert_msg(h != NULL && strcmp(h, "application/json") == 0,
                  "%s: Content-Type %s", what, h ? h : "(none)");
    h = raw_header(raw, "Cache-Control", &count);
    ck_assert_msg(h != NULL && strcmp(h, "no-store") == 0 && count == 1,
                  "%s: Cache-Control %s (%d)", what, h ? h : "(none)", count);
    h = raw_header(raw, "X-Content-Type-Options", &count);
    ck_assert_msg(h != NULL && strcmp(h, "nosniff") == 0 && count == 1,
                  "%s: X-Content-Type-Options %s (%d)", what, h ? h : "(none)",
                  count);
    ck_assert_msg(raw_header(raw, "X-Request-Id", &count) != NULL,
                  "%s: no X-Request-Id", what);
}

/* ====================================================================== */
/* Per-user requests in flight. */

/* A worker held by a FastCGI peer that asks for the owner's big export
 * and reads nothing: the worker blocks writing it, holding the owner's
 * bulk slot and one of its slots in flight, for up to
 * request_deadline_ms. */
static int
hold_owner_export(void)
{
    int fd =
        fc_request("GET", bigpath("/export"), owner.token, 0, NULL, 0, true);

    sleep_ms(300); /* taken, and blocked on a full socket */
    return fd;
}

#define IS_B(i) ((i) == 5 || (i) == 11)

/* user_max_inflight (2 here: half of 4 workers): a user's burst of
 * requests at once gets 429 for those beyond it, with Retry-After and the
 * contract's body, while another user's burst meanwhile gets none. */
START_TEST(test_user_inflight_429)
{
    enum { N = 18 }; /* a's 16, b's 2 (b's own limit is 2 too) */
    struct user a = user_new("inflight-a"), b = user_new("inflight-b");
    const char *la[] = {str("Authorization: Bearer %s", a.token), NULL};
    const char *lb[] = {str("Authorization: Bearer %s", b.token), NULL};
    struct e2e_http_request reqs[N];
    struct e2e_http_response out[N];
    double before = metric("parley_user_inflight_rejected_total{kind=\"all\"}");
    int n429 = 0, n200 = 0, b429 = 0;

    (void)create(&a, "{\"session_id\":\"s\"}");
    memset(reqs, 0, sizeof reqs);
    /* b's two amid a's: they reach the workers together. */
    for (int i = 0; i < N; i++) {
        reqs[i].method = "GET";
        reqs[i].target = IS_B(i) ? SESSIONS : session_path("s");
        reqs[i].headers = IS_B(i) ? lb : la;
    }
    (void)e2e_http_do_many(&env.client, reqs, N, N, out);
    for (int i = 0; i < N; i++) {
        if (IS_B(i)) {
            b429 += out[i].status == 429;
            ck_assert_msg(out[i].status == 200, "b got %d: %.200s",
                          out[i].status, out[i].body ? out[i].body : "");
        } else if (out[i].status == 429) {
            const char *ra = e2e_http_header(&out[i], "Retry-After");
            const struct json_value *v, *e;
            struct error err = ERROR_INIT;

            n429++;
            ck_assert_msg(ra != NULL && strcmp(ra, "1") == 0, "Retry-After %s",
                          ra ? ra : "(none)");
            v = json_parse(&tc.arena, out[i].body, out[i].body_len, 8, &err);
            ck_assert_ptr_nonnull(v);
            e = jobj(v, "error");
            ck_assert_str_eq(jstr(e, "code"), "too_many_requests");
            ck_assert_int_eq(jint(e, "status"), 429);
        } else {
            ck_assert_msg(out[i].status == 200, "a got %d: %.200s",
                          out[i].status, out[i].body ? out[i].body : "");
            n200++;
        }
        e2e_http_response_release(&out[i]);
    }
    ck_assert_msg(n429 > 0, "%d of a's %d requests at once, none refused", n200,
                  N - 2);
    ck_assert_int_eq(b429, 0);
    ck_assert_double_ge(
        metric("parley_user_inflight_rejected_total{kind=\"all\"}"),
        before + n429);
}
END_TEST

/* user_max_bulk (1): while the owner's export runs, its batch append is
 * 429, its single append is not; once the export's client has gone, the
 * batch is taken. */
START_TEST(test_user_bulk_429)
{
    const char *batch = "{\"messages\":[{\"role\":\"user\",\"content\":\"1\"},"
                        "{\"role\":\"user\",\"content\":\"2\"}]}";
    const char *one = "{\"role\":\"user\",\"content\":\"single\"}";
    double before =
        metric("parley_user_inflight_rejected_total{kind=\"bulk\"}");
    int fd;

    (void)create(&owner, "{\"session_id\":\"bulk\"}");
    fd = hold_owner_export();
    ck_assert_int_eq(
        status_as(&owner, "POST", SESSIONS "/bulk/messages", batch), 429);
    ck_assert_int_eq(export_slot(), 429);
    ck_assert_int_eq(status_as(&owner, "POST", SESSIONS "/bulk/messages", one),
                     201);
    ck_assert_double_ge(
        metric("parley_user_inflight_rejected_total{kind=\"bulk\"}"),
        before + 2);
    close(fd);
    ck_assert_int_ge(until_export_slot(1000), 0);
    ck_assert_int_eq(
        status_as(&owner, "POST", SESSIONS "/bulk/messages", batch), 201);
}
END_TEST

/* The supervisor's table of children, from /proc: the workers. */
static int
workers_of(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL && n < max) {
        char path[300], line[512];
        FILE *f;
        pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;

        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(line, sizeof line, f) != NULL) {
            const char *rp = strrchr(line, ')');

            if (rp != NULL)
                (void)sscanf(rp + 2, "%*c %d", &ppid);
        }
        fclose(f);
        if (ppid == parent)
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

/* A worker killed while it serves the owner must not leave the owner's
 * slot taken: the owner's bulk slot is free again with the
 * replacements. */
START_TEST(test_user_inflight_killed_worker)
{
    pid_t pids[16];
    int n, fd, st = 0;
    int64_t t0;

    fd = hold_owner_export();
    ck_assert_int_eq(export_slot(), 429);
    n = workers_of(parley_pid, pids, 16);
    ck_assert_int_ge(n, 2);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(kill(pids[i], SIGKILL), 0);
    close(fd);
    /* replaced within the supervisor's respawn delay; then served */
    t0 = mono_ms();
    while (mono_ms() - t0 < 8000 && (st = export_slot()) != 200)
        sleep_ms(50);
    ck_assert_msg(st == 200, "the owner still gets %d after its worker died",
                  st);
}
END_TEST

/* ====================================================================== */
/* A client that has gone. */

/* GET target through nginx from a raw socket; reads for read_ms, then
 * closes; returns the bytes it got. */
static size_t
abandon_after(const char *target, const char *token, int read_ms)
{
    char *reqtext = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int64_t end;
    size_t got = 0;

    ck_assert(asprintf(&reqtext,
                       "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
                       "%s\r\nConnection: close\r\n\r\n",
                       target, env.client.host, token) > 0);
    ck_assert(connect(fd, (struct sockaddr *)&env.client.server,
                      env.client.server_len) == 0);
    fc_write_all(fd, reqtext, strlen(reqtext));
    free(reqtext);
    end = mono_ms() + read_ms;
    while (mono_ms() < end) {
        struct pollfd pfd = {fd, POLLIN, 0};
        char tmp[65536];
        ssize_t r;

        if (poll(&pfd, 1, (int)(end - mono_ms())) <= 0)
            continue;
        r = read(fd, tmp, sizeof tmp);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got;
}

/* Through nginx: a client that reads 0.2 s of a big export and leaves.
 * nginx closes its FastCGI connection; the worker stops before its next
 * page, so the owner's single slot is free long before the export would
 * have ended.  Meaningful only when the whole export takes long enough
 * to tell (it does on the dev DB; a fast database may serve it first):
 * the time is measured first. */
START_TEST(test_export_abandoned_through_nginx)
{
    double before;
    int64_t t0, full, freed;

    t0 = mono_ms();
    {
        const char *lines[] = {str("Authorization: Bearer %s", owner.token),
                               NULL};
        struct e2e_http_request req;
        struct e2e_http_response out;

        memset(&req, 0, sizeof req);
        req.method = "GET";
        req.target = bigpath("/export");
        req.headers = lines;
        ck_assert_int_eq(e2e_http_do(&env.client, &req, &out), 0);
        ck_assert_int_eq(out.status, 200);
        e2e_http_response_release(&out);
    }
    full = mono_ms() - t0;
    if (full < 1500) {
        fprintf(stderr,
                "limits: a whole export takes %lld ms here, too little to "
                "tell through nginx whether an abandoned one stops; "
                "test_export_abandoned_direct covers parley's side\n",
                (long long)full);
        return;
    }
    before = metric("parley_client_gone_total{when=\"serving\"}");
    (void)abandon_after(bigpath("/export"), owner.token, 200);
    freed = until_export_slot((int)full);
    ck_assert_msg(freed >= 0 && freed < full / 2,
                  "the owner's bulk slot came free %lld ms after the client "
                  "left (a whole export takes %lld ms)",
                  (long long)freed, (long long)full);
    ck_assert_double_ge(metric("parley_client_gone_total{when=\"serving\"}"),
                        before + 1);
}
END_TEST

/* Directly: the web server closes the connection of an export it has
 * read 64 KiB of; the worker stops within a page. */
START_TEST(test_export_abandoned_direct)
{
    double before = metric("parley_client_gone_total{when=\"serving\"}");
    int fd =
        fc_request("GET", bigpath("/export"), owner.token, 0, NULL, 0, true);
    struct buf got;
    int64_t freed;

    /* 64 KiB of it, then the web server goes: the rest (5 MB) would
     * still be on its way even from a fast database. */
    buf_init(&got);
    while (got.len < 65536) {
        struct pollfd pfd = {fd, POLLIN, 0};
        char tmp[4096];
        ssize_t r;

        if (poll(&pfd, 1, 5000) <= 0)
            break;
        r = read(fd, tmp, sizeof tmp);
        if (r <= 0)
            break;
        buf_add(&got, tmp, (size_t)r);
    }
    ck_assert_uint_ge(got.len, 65536);
    close(fd);
    freed = until_export_slot(2000);
    ck_assert_msg(freed >= 0 && freed < 1000,
                  "the owner's bulk slot came free only after %lld ms",
                  (long long)freed);
    ck_assert_double_ge(metric("parley_client_gone_total{when=\"serving\"}"),
                        before + 1);
    buf_release(&got);
}
END_TEST

/* Half a body: a peer that announced 100 bytes and sent 10, and keeps
 * the connection open.  Holds a worker. */
static int
hold_half_body(void)
{
    static const char body[101] =
        "{\"session_id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";

    return fc_request("POST", SESSIONS, owner.token, 0, body, 10, false);
}

/* A request whose client left while it waited for a worker is not
 * served: both workers held, one request queued and abandoned, then the
 * workers freed. */
/* Every worker held by half a body (closed by close_holders). */
static void
hold_all_workers(int *fds)
{
    for (int i = 0; i < env.cfg.workers; i++) {
        fds[i] = hold_half_body();
        sleep_ms(50);
    }
    sleep_ms(200); /* each worker reads a body that never comes */
}

static void
close_holders(const int *fds)
{
    for (int i = 0; i < env.cfg.workers; i++)
        close(fds[i]);
}

START_TEST(test_queued_request_of_a_gone_client)
{
    double before = metric("parley_client_gone_total{when=\"queued\"}");
    int holders[64], q;

    ck_assert_int_le(env.cfg.workers, 64);
    hold_all_workers(holders);
    q = fc_request("GET", SESSIONS, owner.token, 0, NULL, 0, true);
    sleep_ms(100);
    close(q); /* gone while queued */
    /* the holders go: their bodies end short, and a worker takes the
     * queued request, whose client has gone */
    close_holders(holders);
    sleep_ms(300);
    ck_assert_double_ge(metric("parley_client_gone_total{when=\"queued\"}"),
                        before + 1);
}
END_TEST

/* A body that stops short of its Content-Length is refused, not parsed
 * as if it were all of it. */
START_TEST(test_short_body_refused)
{
    int fd = hold_half_body();
    struct buf raw;
    struct fc_resp r;

    /* the peer ends the body early (an empty stdin record) */
    fc_record(fd, FC_STDIN, NULL, 0);
    buf_init(&raw);
    ck_assert_int_eq(fc_read(fd, &raw, 10000, 0, 0), 1);
    r = fc_parse(&raw);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "ended before its Content-Length"));
    close(fd);
    buf_release(&raw);
}
END_TEST

/* ====================================================================== */
/* Deadlines. */

/* A request that says it reached the web server 10 s ago waited past its
 * deadline: 503 at once, no work. */
START_TEST(test_queue_expired)
{
    double before = metric("parley_queue_expired_total");
    struct buf raw;
    struct fc_resp r =
        fc_do("GET", bigpath(""), owner.token, wall_ms() - 10000, NULL, &raw);

    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.head, "\r\nRetry-After: 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "waited too long for a worker"));
    ck_assert_double_eq(metric("parley_queue_expired_total"), before + 1);
    buf_release(&raw);
    /* one that waited less than its deadline is served */
    r = fc_do("GET", bigpath(""), owner.token, wall_ms() - 1000, NULL, &raw);
    ck_assert_int_eq(r.status, 200);
    buf_release(&raw);
}
END_TEST

/* An export that runs into export_deadline_ms ends with the marker.  The
 * request says it arrived export_deadline_ms - 1.2 s ago (but less than
 * request_deadline_ms, so it is served), and is read slowly, so its
 * deadline comes long before the end of the session. */
static const char *
read_cut_export(const char *format)
{
    int64_t start = wall_ms() - (env.cfg.export_deadline_ms - 1200);
    int fd = fc_request("GET", bigpath(str("/export?format=%s", format)),
                        owner.token, start, NULL, 0, true);
    struct buf raw;
    struct fc_resp r;

    ck_assert_int_lt(env.cfg.export_deadline_ms - 1200,
                     env.cfg.request_deadline_ms);
    buf_init(&raw);
    /* 16 KiB every 20 ms: about 0.8 MB/s, 6 s for the whole session */
    ck_assert_int_eq(fc_read(fd, &raw, 20000, 16384, 20), 1);
    close(fd);
    r = fc_parse(&raw);
    ck_assert_int_eq(r.status, 200);
    return arena_strndup(&tc.arena, r.body, r.body_len);
}

START_TEST(test_export_deadline_marker)
{
    double before = metric("parley_export_truncated_total");
    const char *body = read_cut_export("json");
    struct error err = ERROR_INIT;
    const struct json_value *doc =
        json_parse(&tc.arena, body, strlen(body), 64, &err);
    const struct json_value *msgs;
    size_t n;

    ck_assert_msg(doc != NULL, "a cut JSON export must parse: %s (%.100s)",
                  err.message, body + strlen(body) - 60);
    msgs = jarr(doc, "messages");
    n = msgs->u.a.len;
    ck_assert_msg(n > 0 && n < BIG_N, "%zu of %d messages", n, BIG_N);
    ck_assert(jbool(doc, "truncated"));
    ck_assert_str_eq(doc->u.o.members[doc->u.o.len - 1].key, "truncated");
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(jint(msgs->u.a.items[i], "seq"), (int64_t)i + 1);

    body = read_cut_export("csv");
    n = strlen(body);
    ck_assert_msg(n > 15 && strcmp(body + n - 13, "# truncated\r\n") == 0,
                  "CSV ends with: %s", body + (n > 60 ? n - 60 : 0));
    ck_assert_double_ge(metric("parley_export_truncated_total"), before + 2);

    /* An import of a cut export is refused */
    {
        struct resp r = api(&owner, "POST", SESSIONS "/import",
                            str("{\"session\":{\"session_id\":\"cut\"},"
                                "\"messages\":[],\"truncated\":true}"));

        assert_error(r, 400, "validation_error", "truncated");
    }
}
END_TEST

/* Through nginx, the whole export either arrives whole or says it was
 * cut: never a silent cut. */
START_TEST(test_export_never_silently_cut)
{
    struct resp r = api(&owner, "GET", bigpath("/export"), NULL);
    const struct json_value *t = NULL;
    size_t n;

    expect_status(r, 200);
    n = jarr(r.json, "messages")->u.a.len;
    for (size_t i = 0; i < r.json->u.o.len; i++)
        if (strcmp(r.json->u.o.members[i].key, "truncated") == 0)
            t = r.json->u.o.members[i].value;
    if (t == NULL)
        ck_assert_uint_eq(n, BIG_N);
    else
        ck_assert(t->type == JSON_BOOL && t->u.b && n < BIG_N);
}
END_TEST

/* ====================================================================== */
/* Worker memory. */

/* A request that makes a worker grow past the ceiling limits.sh set (a
 * warm worker's peak plus 4 MiB): a 1 MB import of 30 000 messages, the
 * last of them invalid, so nothing is written and the database is not
 * involved, only the parse.  That worker is replaced after the request,
 * which itself was answered. */
START_TEST(test_worker_replaced_past_rss_ceiling)
{
    struct user u = user_new("rss");
    double before = metric("parley_worker_recycled_total{reason=\"rss\"}");
    struct buf b;
    struct resp r;
    int64_t t0;

    buf_init(&b);
    buf_adds(&b, "{\"session\":{\"session_id\":\"heavy\"},\"messages\":[");
    for (int i = 0; i < 30000; i++)
        buf_adds(&b, "{\"role\":\"user\",\"content\":\"x\"},");
    buf_adds(&b, "{\"role\":\"nobody\",\"content\":\"x\"}]}");
    r = api(&u, "POST", SESSIONS "/import", b.data);
    assert_error(r, 400, "validation_error", "messages[30000].role");
    buf_release(&b);
    t0 = mono_ms();
    while (mono_ms() - t0 < 3000 &&
           metric("parley_worker_recycled_total{reason=\"rss\"}") <= before)
        sleep_ms(50);
    ck_assert_double_gt(metric("parley_worker_recycled_total{reason=\"rss\"}"),
                        before);
    /* and the service goes on */
    r = api(&u, "GET", SESSIONS, NULL);
    expect_status(r, 200);
}
END_TEST

/* ====================================================================== */
/* Smaller findings. */

/* jwt_max_lifetime (limits.sh: 3600): longer tokens, and tokens without
 * iat, are refused. */
START_TEST(test_token_lifetime)
{
    const char *name = uniq("life");
    int64_t now = (int64_t)time(NULL);
    struct user ok = {name, mint(&env.cfg, name, now, 3600)};
    struct user longer = {name, mint(&env.cfg, name, now, 3601)};
    struct resp r;

    ck_assert_int_eq(env.cfg.jwt_max_lifetime, 3600);
    r = api(&ok, "GET", SESSIONS, NULL);
    expect_status(r, 200);
    r = api(&longer, "GET", SESSIONS, NULL);
    assert_error(r, 401, "unauthorized", NULL);
    ck_assert_ptr_nonnull(strstr(r.body, "lifetime"));
    /* no iat at all: the token's lifetime cannot be known */
    {
        const char *head = b64url_str("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
        const char *payload = b64url_str(
            str("{\"sub\":\"%s\",\"exp\":%lld}", name, (long long)now + 60));
        unsigned char mac[32];
        unsigned int len = 0;
        const char *signing = str("%s.%s", head, payload);

        ck_assert_ptr_nonnull(
            HMAC(EVP_sha256(), env.cfg.jwt_key, (int)env.cfg.jwt_key_len,
                 (const unsigned char *)signing, strlen(signing), mac, &len));
        r = with_auth(str("Bearer %s.%s", signing, b64url(mac, len)), "GET",
                      SESSIONS);
        assert_error(r, 401, "unauthorized", NULL);
        ck_assert_ptr_nonnull(strstr(r.body, "missing iat"));
    }
}
END_TEST

/* Message ids are matched in their canonical lowercase form only. */
START_TEST(test_message_id_lowercase_only)
{
    struct user u = user_new("ids");
    struct resp r;
    char upper[64];
    const char *id;

    (void)create(&u, "{\"session_id\":\"s\"}");
    r = api(&u, "POST", SESSIONS "/s/messages",
            "{\"role\":\"user\",\"content\":\"hi\"}");
    expect_status(r, 201);
    id = jstr(r.json, "id");
    r = api(&u, "GET", str(SESSIONS "/s/messages/%s", id), NULL);
    expect_status(r, 200);
    snprintf(upper, sizeof upper, "%s", id);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    ck_assert_str_ne(upper, id);
    r = api(&u, "GET", str(SESSIONS "/s/messages/%s", upper), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "DELETE", str(SESSIONS "/s/messages/%s", upper), NULL);
    assert_error(r, 404, "not_found", NULL);
    r = api(&u, "GET", str(SESSIONS "/s/messages/%s", id), NULL);
    expect_status(r, 200);
}
END_TEST

/* Erasing a user: limits.sh checks afterwards that no log holds its id. */
START_TEST(test_erase_user)
{
    const char *id = getenv("PARLEY_E2E_ERASE");
    struct user victim, admin;
    struct resp r;
    char *t;
    struct error err = ERROR_INIT;

    ck_assert_ptr_nonnull(id);
    victim.name = id;
    victim.token = mint(&env.cfg, id, (int64_t)time(NULL), 600);
    (void)create(&victim, "{\"session_id\":\"doomed\"}");
    t = auth_mint(&env.cfg, "limits-admin", (int64_t)time(NULL), 600, true,
                  &err);
    ck_assert_ptr_nonnull(t);
    admin.name = "limits-admin";
    admin.token = arena_strdup(&tc.arena, t);
    free(t);
    r = api(&admin, "DELETE", str("/api/admin/users/%s", id), NULL);
    expect_status(r, 200);
    ck_assert_int_eq(jint(r.json, "deleted_sessions"), 1);
}
END_TEST

/* ====================================================================== */
/* nginx. */

/* Every answer nginx makes itself is JSON with the API's headers. */
START_TEST(test_nginx_error_pages)
{
    struct buf raw;
    char *big;
    const char *host = env.client.host;

    {
        static const char *const allow = "GET, HEAD, POST, PUT, PATCH, DELETE";
        const char *req = str("TRACE /api/agent-sessions HTTP/1.1\r\nHost: "
                              "%s\r\nConnection: close\r\n\r\n",
                              host);
        int count;

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("TRACE", raw.data, 405);
        ck_assert_str_eq(raw_header(raw.data, "Allow", &count), allow);
        buf_release(&raw);
    }
    {
        const char *req =
            str("GET /healthz HTTP/2.0\r\nHost: %s\r\n\r\n", host);

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("HTTP/2.0 request line", raw.data, 505);
        buf_release(&raw);
    }
    {
        const char *req = str("POST /api/agent-sessions HTTP/1.1\r\nHost: "
                              "%s\r\nTransfer-Encoding: gzip\r\nConnection: "
                              "close\r\n\r\n",
                              host);

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("unknown Transfer-Encoding", raw.data, 501);
        buf_release(&raw);
    }
    {
        const char *req = "GARBAGE\r\n\r\n";

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("garbage", raw.data, 400);
        buf_release(&raw);
    }
    big = arena_alloc(&tc.arena, 20001);
    memset(big, 'a', 20000);
    big[20000] = '\0';
    {
        const char *req = str("GET /api/%s HTTP/1.1\r\nHost: %s\r\nConnection: "
                              "close\r\n\r\n",
                              big, host);

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("long URI", raw.data, 414);
        buf_release(&raw);
    }
    {
        const char *req = str("GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Big: "
                              "%s\r\nConnection: close\r\n\r\n",
                              host, big);

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("long header", raw.data, 431);
        buf_release(&raw);
    }
    {
        const char *req = str("POST /api/agent-sessions HTTP/1.1\r\nHost: "
                              "%s\r\nContent-Length: 2000000\r\nContent-Type: "
                              "application/json\r\nConnection: close\r\n\r\n",
                              host);

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("large body", raw.data, 413);
        buf_release(&raw);
    }
    {
        const char *req = str("GET /_parley/error/502 HTTP/1.1\r\nHost: "
                              "%s\r\nConnection: close\r\n\r\n",
                              host);

        raw_http(req, strlen(req), &raw, 3000);
        expect_nginx_error("internal page", raw.data, 404);
        buf_release(&raw);
    }
}
END_TEST

/* parley's own answers carry the two headers once each (nginx adds none
 * of its own on top). */
START_TEST(test_api_headers_once)
{
    struct buf raw;
    const char *req = str("GET /api/agent-sessions HTTP/1.1\r\nHost: "
                          "%s\r\nAuthorization: Bearer %s\r\nConnection: "
                          "close\r\n\r\n",
                          env.client.host, owner.token);
    int count;
    const char *h;

    raw_http(req, strlen(req), &raw, 5000);
    ck_assert_msg(strncmp(raw.data, "HTTP/1.1 200", 12) == 0, "%.100s",
                  raw.data);
    h = raw_header(raw.data, "Cache-Control", &count);
    ck_assert(h != NULL && strcmp(h, "no-store") == 0 && count == 1);
    h = raw_header(raw.data, "X-Content-Type-Options", &count);
    ck_assert(h != NULL && strcmp(h, "nosniff") == 0 && count == 1);
    buf_release(&raw);
}
END_TEST

/* limit_conn: one client (a user, from the trusted loopback backend; an
 * address otherwise) has at most 32 requests in progress in nginx; the
 * rest are 429 at once.  Every worker is held, so the requests wait in
 * nginx. */
START_TEST(test_nginx_connection_limit)
{
    enum { N = 48 };
    struct user u = user_new("conns");
    struct e2e_http_request reqs[N];
    struct e2e_http_response out[N];
    const char *lines[] = {str("Authorization: Bearer %s", u.token), NULL};
    int holders[64], n429 = 0, other = 0;
    struct e2e_http_client quick = env.client;

    ck_assert_int_le(env.cfg.workers, 64);
    hold_all_workers(holders);
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < N; i++) {
        reqs[i].method = "GET";
        reqs[i].target = "/api/agent-sessions";
        reqs[i].headers = lines;
    }
    /* The held workers free themselves after request_deadline_ms: the
     * queued requests are then answered (or 503 if they waited past it). */
    quick.timeout_ms = 15000;
    (void)e2e_http_do_many(&quick, reqs, N, N, out);
    close_holders(holders);
    for (int i = 0; i < N; i++) {
        if (out[i].status == 429) {
            const struct json_value *v;
            struct error err = ERROR_INIT;

            n429++;
            v = json_parse(&tc.arena, out[i].body, out[i].body_len, 8, &err);
            ck_assert_ptr_nonnull(v);
            ck_assert_str_eq(jstr(jobj(v, "error"), "code"), "rate_limited");
        } else {
            other++;
        }
        e2e_http_response_release(&out[i]);
    }
    ck_assert_msg(n429 >= N - 32 && other <= 32,
                  "%d of %d refused by the connection limit", n429, N);
}
END_TEST

/* 2 200 connections from one address that send nothing do not exhaust
 * nginx: a request still gets its answer at once. */
START_TEST(test_nginx_idle_connections)
{
    enum { IDLE = 2200 };
    int *fds = calloc(IDLE, sizeof *fds);
    int opened = 0;
    int64_t t0;
    int st;

    ck_assert_ptr_nonnull(fds);
    for (int i = 0; i < IDLE; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0)
            break;
        if (connect(fds[i], (struct sockaddr *)&env.client.server,
                    env.client.server_len) != 0) {
            close(fds[i]);
            break;
        }
        opened++;
    }
    ck_assert_int_eq(opened, IDLE);
    sleep_ms(200);
    t0 = mono_ms();
    st = status_of(&owner, SESSIONS);
    ck_assert_int_eq(st, 200);
    ck_assert_int_lt(mono_ms() - t0, 2000);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
}
END_TEST

/* ====================================================================== */

/* The big session, made once before the tests fork: BIG_N messages in
 * batches of 100 through nginx. */
static int
make_big_session(void)
{
    struct e2e_http_request req;
    struct e2e_http_response out;
    char auth[2200];
    const char *lines[] = {auth, "Content-Type: application/json", NULL};
    struct buf b;
    char *content = malloc(BIG_BYTES + 1);

    if (content == NULL)
        return -1;
    memset(content, 'b', BIG_BYTES);
    content[BIG_BYTES] = '\0';
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", owner.token);
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.target = SESSIONS;
    req.headers = lines;
    req.body = "{\"session_id\":\"big\"}";
    req.body_len = strlen(req.body);
    if (e2e_http_do(&env.client, &req, &out) != 0 || out.status != 201) {
        fprintf(stderr, "limits: create big: %d %s\n", out.status, out.error);
        return -1;
    }
    e2e_http_response_release(&out);
    buf_init(&b);
    for (int i = 0; i < BIG_N / 100; i++) {
        buf_reset(&b);
        buf_adds(&b, "{\"messages\":[");
        for (int k = 0; k < 100; k++)
            buf_printf(&b, "%s{\"role\":\"user\",\"content\":\"%d %s\"}",
                       k ? "," : "", i * 100 + k, content);
        buf_adds(&b, "]}");
        req.target = SESSIONS "/big/messages";
        req.body = b.data;
        req.body_len = b.len;
        if (e2e_http_do(&env.client, &req, &out) != 0 || out.status != 201) {
            fprintf(stderr, "limits: batch %d: %d %s %.200s\n", i, out.status,
                    out.error, out.body ? out.body : "");
            return -1;
        }
        e2e_http_response_release(&out);
    }
    buf_release(&b);
    free(content);
    return 0;
}

static Suite *
limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *t;

    t = tcase(s, "inflight", 60);
    tcase_add_test(t, test_user_inflight_429);
    tcase_add_test(t, test_user_bulk_429);
    tcase_add_test(t, test_user_inflight_killed_worker);

    t = tcase(s, "gone", 60);
    tcase_add_test(t, test_export_abandoned_direct);
    tcase_add_test(t, test_export_abandoned_through_nginx);
    tcase_add_test(t, test_queued_request_of_a_gone_client);
    tcase_add_test(t, test_short_body_refused);

    t = tcase(s, "deadlines", 60);
    tcase_add_test(t, test_queue_expired);
    tcase_add_test(t, test_export_deadline_marker);
    tcase_add_test(t, test_export_never_silently_cut);

    t = tcase(s, "memory", 60);
    tcase_add_test(t, test_worker_replaced_past_rss_ceiling);

    t = tcase(s, "findings", 60);
    tcase_add_test(t, test_token_lifetime);
    tcase_add_test(t, test_message_id_lowercase_only);
    tcase_add_test(t, test_erase_user);

    t = tcase(s, "nginx", 60);
    tcase_add_test(t, test_nginx_error_pages);
    tcase_add_test(t, test_api_headers_once);
    tcase_add_test(t, test_nginx_connection_limit);
    tcase_add_test(t, test_nginx_idle_connections);
    return s;
}

int
main(void)
{
    SRunner *sr;
    const char *pid;
    int failed;
    char *tok;
    struct error err = ERROR_INIT;

    if (env_init() < 0) {
        env_release();
        return 99;
    }
    sock_path = getenv("PARLEY_E2E_SOCKET");
    pid = getenv("PARLEY_E2E_PID");
    if (sock_path == NULL || pid == NULL) {
        fprintf(stderr, "check_e2e_limits: PARLEY_E2E_SOCKET and "
                        "PARLEY_E2E_PID must be set (tests/limits.sh)\n");
        return 99;
    }
    parley_pid = (pid_t)atoi(pid);
    snprintf(owner_name, sizeof owner_name, "limits-owner-%ld", (long)getpid());
    tok =
        auth_mint(&env.cfg, owner_name, (int64_t)time(NULL), 3600, false, &err);
    if (tok == NULL) {
        fprintf(stderr, "check_e2e_limits: mint: %s\n", err.message);
        return 99;
    }
    snprintf(owner_token, sizeof owner_token, "%s", tok);
    free(tok);
    owner.name = owner_name;
    owner.token = owner_token;
    if (make_big_session() != 0)
        return 99;
    sr = srunner_create(limits_suite());
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    env_release();
    return failed == 0 ? 0 : 1;
}

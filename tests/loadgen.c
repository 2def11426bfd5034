/*
 * loadgen.c - a steady HTTP load for tests/faults.sh that records every
 * single request, so a fault test can say which requests failed and when.
 *
 *   tests/loadgen [options] URL
 *     -c N      clients (threads), each sending one request at a time
 *               (default 4)
 *     -r SPEC   a request: "METHOD PATH" or "METHOD PATH BODY"; give several
 *               and client k sends the (k mod count)-th (default "GET
 *               /healthz")
 *     -H LINE   a header line "Name: value" for every request (repeatable)
 *     -g N      {g} in a template is the client number mod N (default 1)
 *     -n N      at most N requests per client (default: no limit)
 *     -d MS     stop starting requests after MS ms (default: only at a
 *               signal)
 *     -w MS     pause between one client's requests (default 0)
 *     -t MS     give up on one exchange after MS ms (default 15000)
 *     -o FILE   where the records go (default stdout)
 *
 * In PATH, BODY and header lines, {c} is the client number, {i} the
 * request's number within its client (from 0) and {g} the client's group.
 * A body gets Content-Type: application/json.  Every request is a new
 * connection (Connection: close), as nginx hands each one to parley on a
 * connection of its own anyway.
 *
 * SIGUSR1, SIGTERM or SIGINT: start no new request; the requests under
 * way finish (or time out), their records are written, and loadgen exits
 * 0.  So a test can stop the load at a known moment and still learn how
 * every request it sent ended.
 *
 * One record per request, tab-separated, written when it ends:
 *   client index start_ms end_ms status retry_after id seq code request_id
 *   error version
 * start and end are wall-clock ms since the epoch (comparable with
 * `date +%s%3N`); status 0 means no HTTP response (error says why);
 * retry_after is the Retry-After header or "-"; id, seq, code and version
 * are the first "id", "seq", "code" and "version" members in the body ("-"
 * when absent);
 * request_id is the X-Request-Id header (parley's log names it).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "e2e_http.h"
#include "banned.h"

#define LOADGEN_MAX_SPECS   16
#define LOADGEN_MAX_HEADERS 16

struct loadgen_spec {
    char *method;
    char *path;
    char *body; /* NULL: none */
};

/* Shared by every client thread; read-only once they start, except the
 * stop flag and the output, which has its own lock. */
struct loadgen {
    struct e2e_http_client client;
    struct loadgen_spec specs[LOADGEN_MAX_SPECS];
    size_t nspecs;
    const char *headers[LOADGEN_MAX_HEADERS];
    size_t nheaders;
    long groups;
    long max_requests; /* per client; < 0: no limit */
    long pause_ms;
    atomic_int stop;
    atomic_long finished; /* clients that ran out of requests (-n) */
    pthread_mutex_t out_lock;
    FILE *out;
};

struct loadgen_client {
    struct loadgen *lg;
    long id;
    pthread_t thread;
};

static int64_t
loadgen_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* t with {c}, {i} and {g} replaced; the caller frees. */
static char *
loadgen_expand(const char *t, long c, long i, long g)
{
    struct buf b;

    buf_init(&b);
    while (*t != '\0') {
        if (strncmp(t, "{c}", 3) == 0) {
            buf_printf(&b, "%ld", c);
            t += 3;
        } else if (strncmp(t, "{i}", 3) == 0) {
            buf_printf(&b, "%ld", i);
            t += 3;
        } else if (strncmp(t, "{g}", 3) == 0) {
            buf_printf(&b, "%ld", g);
            t += 3;
        } else {
            buf_add(&b, t, 1);
            t++;
        }
    }
    return buf_detach(&b, NULL);
}

/* The first "name": value in body, as text without quotes, into out[n];
 * "-" when there is none.  Enough for the flat fields this tool looks at
 * (a UUID, a small integer, an error code). */
static void
loadgen_member(const char *body, size_t len, const char *name, char *out,
               size_t n)
{
    char pat[32];
    const char *p, *end = body + len;
    size_t k = 0;

    snprintf(out, n, "-");
    if (body == NULL)
        return;
    snprintf(pat, sizeof(pat), "\"%s\":", name);
    p = memmem(body, len, pat, strlen(pat));
    if (p == NULL)
        return;
    p += strlen(pat);
    if (p < end && *p == '"')
        p++;
    while (p < end && *p != '"' && *p != ',' && *p != '}' && k + 1 < n)
        out[k++] = *p++;
    if (k > 0)
        out[k] = '\0';
}

/* Spaces and tabs would split the record's fields. */
static void
loadgen_one_word(char *s)
{
    if (*s == '\0') {
        s[0] = '-';
        s[1] = '\0';
    }
    for (; *s != '\0'; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            *s = '_';
}

static void
loadgen_record(struct loadgen *lg, long c, long i, int64_t start, int64_t end,
               const struct e2e_http_response *r)
{
    const char *ra = e2e_http_header(r, "Retry-After");
    const char *rid = e2e_http_header(r, "X-Request-Id");
    char id[64], seq[32], code[64], error[256], version[32];

    loadgen_member(r->body, r->body_len, "id", id, sizeof(id));
    loadgen_member(r->body, r->body_len, "seq", seq, sizeof(seq));
    loadgen_member(r->body, r->body_len, "version", version, sizeof(version));
    loadgen_member(r->body, r->body_len, "code", code, sizeof(code));
    snprintf(error, sizeof(error), "%s", r->status == 0 ? r->error : "-");
    loadgen_one_word(error);
    pthread_mutex_lock(&lg->out_lock);
    fprintf(lg->out,
            "%ld\t%ld\t%lld\t%lld\t%d\t%.16s\t%s\t%s\t%s\t%.64s\t%s\t%s\n", c,
            i, (long long)start, (long long)end, r->status,
            ra != NULL ? ra : "-", id, seq, code, rid != NULL ? rid : "-",
            error, version);
    fflush(lg->out);
    pthread_mutex_unlock(&lg->out_lock);
}

static void *
loadgen_client_run(void *arg)
{
    struct loadgen_client *cl = arg;
    struct loadgen *lg = cl->lg;
    const struct loadgen_spec *spec = &lg->specs[(size_t)cl->id % lg->nspecs];
    long g = cl->id % lg->groups;

    for (long i = 0; lg->max_requests < 0 || i < lg->max_requests; i++) {
        char *path, *body = NULL;
        const char *lines[LOADGEN_MAX_HEADERS + 2];
        char *owned[LOADGEN_MAX_HEADERS];
        size_t n = 0;
        struct e2e_http_request req;
        struct e2e_http_response resp;
        int64_t start, end;

        if (atomic_load(&lg->stop))
            break;
        path = loadgen_expand(spec->path, cl->id, i, g);
        if (spec->body != NULL)
            body = loadgen_expand(spec->body, cl->id, i, g);
        for (size_t h = 0; h < lg->nheaders; h++) {
            owned[h] = loadgen_expand(lg->headers[h], cl->id, i, g);
            lines[n++] = owned[h];
        }
        if (body != NULL)
            lines[n++] = "Content-Type: application/json";
        lines[n] = NULL;
        memset(&req, 0, sizeof(req));
        req.method = spec->method;
        req.target = path;
        req.headers = lines;
        req.body = body;
        req.body_len = body != NULL ? strlen(body) : 0;
        start = loadgen_wall_ms();
        e2e_http_do(&lg->client, &req, &resp);
        end = loadgen_wall_ms();
        loadgen_record(lg, cl->id, i, start, end, &resp);
        e2e_http_response_release(&resp);
        for (size_t h = 0; h < lg->nheaders; h++)
            free(owned[h]);
        free(body);
        free(path);
        if (lg->pause_ms > 0 && !atomic_load(&lg->stop))
            usleep((useconds_t)lg->pause_ms * 1000);
    }
    atomic_fetch_add(&lg->finished, 1);
    return NULL;
}

/* "METHOD PATH [BODY]" into spec; -1 if it is not that. */
static int
loadgen_parse_spec(const char *text, struct loadgen_spec *spec)
{
    const char *sp1 = strchr(text, ' '), *sp2;

    if (sp1 == NULL || sp1 == text || sp1[1] != '/')
        return -1;
    sp2 = strchr(sp1 + 1, ' ');
    spec->method = strndup(text, (size_t)(sp1 - text));
    spec->path = sp2 != NULL ? strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1))
                             : strdup(sp1 + 1);
    spec->body = sp2 != NULL ? strdup(sp2 + 1) : NULL;
    if (spec->method == NULL || spec->path == NULL ||
        (sp2 != NULL && spec->body == NULL))
        abort();
    return 0;
}

static long
loadgen_number(const char *opt, const char *text, long min)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v < min) {
        fprintf(stderr, "loadgen: -%s needs an integer >= %ld, not '%s'\n", opt,
                min, text);
        exit(2);
    }
    return v;
}

static void
loadgen_usage(void)
{
    fprintf(stderr,
            "usage: loadgen [-c N] [-r 'METHOD PATH [BODY]']... [-H LINE]... "
            "[-g N] [-n N] [-d MS] [-w MS] [-t MS] [-o FILE] URL\n");
}

int
main(int argc, char **argv)
{
    static struct loadgen lg; /* large; one per process */
    struct loadgen_client *clients = NULL;
    long nclients = 4, duration_ms = 0, timeout_ms = E2E_HTTP_TIMEOUT_MS;
    const char *out_path = NULL;
    char errbuf[256];
    sigset_t set;
    int opt, rc = 1;
    long started = 0;

    lg.groups = 1;
    lg.max_requests = -1;
    lg.out = stdout;
    pthread_mutex_init(&lg.out_lock, NULL);
    while ((opt = getopt(argc, argv, "c:r:H:g:n:d:w:t:o:h")) != -1) {
        switch (opt) {
        case 'c':
            nclients = loadgen_number("c", optarg, 1);
            break;
        case 'r':
            if (lg.nspecs == LOADGEN_MAX_SPECS ||
                loadgen_parse_spec(optarg, &lg.specs[lg.nspecs]) != 0) {
                fprintf(stderr, "loadgen: bad or too many -r: %s\n", optarg);
                return 2;
            }
            lg.nspecs++;
            break;
        case 'H':
            if (lg.nheaders == LOADGEN_MAX_HEADERS) {
                fprintf(stderr, "loadgen: too many -H\n");
                return 2;
            }
            lg.headers[lg.nheaders++] = optarg;
            break;
        case 'g':
            lg.groups = loadgen_number("g", optarg, 1);
            break;
        case 'n':
            lg.max_requests = loadgen_number("n", optarg, 0);
            break;
        case 'd':
            duration_ms = loadgen_number("d", optarg, 1);
            break;
        case 'w':
            lg.pause_ms = loadgen_number("w", optarg, 0);
            break;
        case 't':
            timeout_ms = loadgen_number("t", optarg, 1);
            break;
        case 'o':
            out_path = optarg;
            break;
        default:
            loadgen_usage();
            return 2;
        }
    }
    if (optind + 1 != argc) {
        loadgen_usage();
        return 2;
    }
    if (lg.nspecs == 0)
        loadgen_parse_spec("GET /healthz", &lg.specs[lg.nspecs++]);
    if (e2e_http_client_init(&lg.client, argv[optind], errbuf,
                             sizeof(errbuf)) != 0) {
        fprintf(stderr, "loadgen: %s\n", errbuf);
        return 2;
    }
    lg.client.timeout_ms = (int)timeout_ms;
    if (out_path != NULL) {
        lg.out = fopen(out_path, "w");
        if (lg.out == NULL) {
            fprintf(stderr, "loadgen: %s: %s\n", out_path, strerror(errno));
            return 1;
        }
    }

    /* The signals are taken by this thread alone, with sigtimedwait; the
     * clients inherit the blocked mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    clients = calloc((size_t)nclients, sizeof(*clients));
    if (clients == NULL)
        goto done;
    for (; started < nclients; started++) {
        clients[started].lg = &lg;
        clients[started].id = started;
        if (pthread_create(&clients[started].thread, NULL, loadgen_client_run,
                           &clients[started]) != 0) {
            fprintf(stderr, "loadgen: cannot start client %ld\n", started);
            atomic_store(&lg.stop, 1);
            break;
        }
    }
    {
        int64_t until = loadgen_wall_ms() + duration_ms;

        while (!atomic_load(&lg.stop) && atomic_load(&lg.finished) < started) {
            struct timespec ts = {0, 100 * 1000000L};

            if (sigtimedwait(&set, NULL, &ts) > 0 ||
                (duration_ms > 0 && loadgen_wall_ms() >= until))
                atomic_store(&lg.stop, 1);
        }
    }
    for (long k = 0; k < started; k++)
        pthread_join(clients[k].thread, NULL);
    rc = started == nclients ? 0 : 1;
done:
    if (lg.out != stdout && lg.out != NULL)
        fclose(lg.out);
    free(clients);
    for (size_t k = 0; k < lg.nspecs; k++) {
        free(lg.specs[k].method);
        free(lg.specs[k].path);
        free(lg.specs[k].body);
    }
    return rc;
}

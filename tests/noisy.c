/*
 * noisy.c - the noisy-neighbour test's load (tests/noisy.sh runs it).
 *
 *   tests/noisy [-s SECONDS] [-p P99_MS] [-B] URL
 *
 * Two users of one parley behind nginx.  User A does, for SECONDS
 * (default 20), the worst it can at once:
 *   - exports of its 20 000-message session, each abandoned by the client
 *     after 0.2 s (4 clients);
 *   - imports of 1 000-message sessions (2 clients);
 *   - batch appends of 100 messages to that same session, which holds as
 *     many messages as quota_messages_per_session allows when the server
 *     has that quota (noisy.sh sets it to 20 000), so they are refused
 *     403; without the quota they are stored (2 clients);
 *   - memory floods: PUTs of 16 KiB values under ever new keys (2
 *     clients);
 *   - 2 000 idle connections to nginx, kept open (and opened again when
 *     nginx closes them).
 * Each of A's clients has a token of its own (one user, several tokens: a
 * limit per token alone would not hold it).  A waits 10 ms after a
 * refusal and its client processes run at nice 10: they share this
 * machine's cores with the server, which on a real deployment they would
 * not (see a_count() and spawn_a()).  Meanwhile user B sends GET
 * of its session and appends to it, one at a time each (2 clients), and
 * every one of B's answers is timed.
 *
 * A's session is made with one import, or with -B (a real replica set,
 * where an import of 20 000 messages takes longer than its deadline) with
 * batch appends of 100 from two clients.
 *
 * It prints A's figures (requests and answers per kind) and B's (count,
 * errors, p50/p99/max latency), and exits 1 when any of B's requests
 * failed (anything but 200 for a GET, 201 for an append, or no answer),
 * or, with -p, when B's p99 is P99_MS or more; 2 when the set-up failed.
 *
 * Environment: PARLEY_E2E_CONFIG and PARLEY_E2E_SECRET (to mint the
 * tokens), as for check_e2e.  Requests go from 127.0.0.1, which the
 * repo's nginx snippets trust as an agent backend: nginx keys its limits
 * by token.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "e2e_http.h"
#include "banned.h"

#define BIG_MESSAGES 20000
/* NOISY_BIG overrides it (quicker experiments). */
static int big_messages = BIG_MESSAGES;
#define IDLE_CONNS  2000
#define MAX_SAMPLES 200000

enum kind {
    K_EXPORT,
    K_IMPORT,
    K_BATCH,
    K_MEMORY,
    K_B_GET,
    K_B_APPEND,
    K_KINDS,
};

static const char *const kind_names[K_KINDS] = {
    "export (abandoned after 0.2 s)",
    "import of 1000 messages",
    "batch append of 100",
    "memory PUT of 16 KiB",
    "B: GET session",
    "B: append"};

/* Status classes counted per kind: an index into counts[kind][]. */
enum { S_NONE, S_200, S_201, S_403, S_429, S_503, S_504, S_OTHER, S_N };

static const char *const status_names[S_N] = {
    "no answer", "200", "201", "403", "429", "503", "504", "other"};

struct shared {
    atomic_int stop;
    atomic_long counts[K_KINDS][S_N];
    atomic_long idle_open; /* idle connections held at the end */
    atomic_long idle_reopened;
    atomic_long nsamples;
    uint32_t samples_us[MAX_SAMPLES]; /* B's latencies */
    atomic_long nkind[2];
    uint32_t kind_us[2][MAX_SAMPLES]; /* the same, GET and append apart */
    char first_error[512];
    atomic_int has_error;
};

static struct shared *sh;
static struct e2e_http_client client;
static struct config cfg;

static int64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static int
status_class(int st)
{
    switch (st) {
    case 0:
        return S_NONE;
    case 200:
        return S_200;
    case 201:
        return S_201;
    case 403:
        return S_403;
    case 429:
        return S_429;
    case 503:
        return S_503;
    case 504:
        return S_504;
    default:
        return S_OTHER;
    }
}

static char *
mint_token(const char *sub)
{
    struct error err = ERROR_INIT;
    char *t = auth_mint(&cfg, sub, (int64_t)time(NULL), 3600, false, &err);

    if (t == NULL) {
        fprintf(stderr, "noisy: mint: %s\n", err.message);
        exit(2);
    }
    return t;
}

/* One request; returns the status (0: none), the body in *body if asked
 * (the caller frees). */
static int
request(const char *token, const char *method, const char *target,
        const char *body, size_t body_len, char **out_body)
{
    char auth[4096];
    const char *lines[] = {auth, "Content-Type: application/json", NULL};
    struct e2e_http_request req;
    struct e2e_http_response out;
    int st;

    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    memset(&req, 0, sizeof req);
    req.method = method;
    req.target = target;
    req.headers = lines;
    req.body = body;
    req.body_len = body_len;
    (void)e2e_http_do(&client, &req, &out);
    st = out.status;
    if (out_body != NULL)
        *out_body = out.body != NULL ? strdup(out.body) : strdup(out.error);
    e2e_http_response_release(&out);
    return st;
}

/* {"messages":[n messages]} or, with session_id, an import body. */
static char *
messages_body(const char *session_id, int n, const char *content)
{
    struct buf b;

    buf_init(&b);
    if (session_id != NULL)
        buf_printf(&b, "{\"session\":{\"session_id\":\"%s\"},\"messages\":[",
                   session_id);
    else
        buf_adds(&b, "{\"messages\":[");
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s{\"role\":\"%s\",\"content\":\"%s %d\"}",
                   i ? "," : "", i % 2 ? "assistant" : "user", content, i);
    buf_adds(&b, "]}");
    return buf_detach(&b, NULL);
}

static void
count(enum kind k, int st)
{
    atomic_fetch_add(&sh->counts[k][status_class(st)], 1);
}

/* --- A ------------------------------------------------------------------ */

/* A's answer counted; after a refusal (429, 503) A waits 10 ms before its
 * next request, as a client that hammers but does not spin.  Without it,
 * A's ten client processes would spend the machine's two cores on
 * connecting and being refused, and B would measure this test's own CPU
 * rather than parley's fairness (on a real deployment A's clients run
 * elsewhere). */
static void
a_count(enum kind k, int st)
{
    count(k, st);
    if (st == 429 || st == 503 || st == 0)
        sleep_ms(10);
}

/* GET the export, read for 0.2 s, close: the client gives up. */
static void
a_exporter(const char *token)
{
    char req[4096];

    snprintf(req, sizeof req,
             "GET /api/agent-sessions/big/export HTTP/1.1\r\nHost: "
             "%s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n",
             client.host, token);
    while (!atomic_load(&sh->stop)) {
        int fd = socket(client.server.ss_family, SOCK_STREAM, 0);
        int64_t end;
        char head[16] = {0}, buf[65536];
        int st = 0;
        size_t got = 0;

        if (fd < 0 ||
            connect(fd, (struct sockaddr *)&client.server, client.server_len) !=
                0 ||
            write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
            if (fd >= 0)
                close(fd);
            a_count(K_EXPORT, 0);
            continue;
        }
        end = mono_us() + 200000;
        while (mono_us() < end) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int left = (int)((end - mono_us()) / 1000);
            ssize_t r;

            if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
                continue;
            r = read(fd, buf, sizeof buf);
            if (r <= 0)
                break;
            /* The status line's start; the rest is read and dropped. */
            for (ssize_t k = 0; k < r && got < sizeof head - 1; k++)
                head[got++] = buf[k];
        }
        close(fd);
        if (strncmp(head, "HTTP/1.1 ", 9) == 0)
            st = atoi(head + 9);
        a_count(K_EXPORT, st);
    }
}

static void
a_importer(const char *token, int id)
{
    long i = 0;

    while (!atomic_load(&sh->stop)) {
        char sid[64];
        char *body;
        int st;

        snprintf(sid, sizeof sid, "imp-%d-%ld", id, i++);
        body = messages_body(sid, 1000, "imported message");
        st = request(token, "POST", "/api/agent-sessions/import", body,
                     strlen(body), NULL);
        free(body);
        a_count(K_IMPORT, st);
    }
}

static void
a_batcher(const char *token)
{
    char *body = messages_body(NULL, 100, "batch message");

    while (!atomic_load(&sh->stop))
        a_count(K_BATCH,
                request(token, "POST", "/api/agent-sessions/big/messages", body,
                        strlen(body), NULL));
    free(body);
}

static void
a_memory(const char *token, int id)
{
    struct buf v;
    long i = 0;

    buf_init(&v);
    buf_addch(&v, '"');
    for (int k = 0; k < 16000; k++)
        buf_addch(&v, (char)('a' + k % 26));
    buf_addch(&v, '"');
    while (!atomic_load(&sh->stop)) {
        char target[128];

        snprintf(target, sizeof target,
                 "/api/agent-sessions/mem/memory/k-%d-%ld", id, i++);
        a_count(K_MEMORY, request(token, "PUT", target, v.data, v.len, NULL));
    }
    buf_release(&v);
}

/* IDLE_CONNS connections that send nothing; nginx closes them after its
 * header timeout, and they are opened again. */
static void
a_idle(void)
{
    int *fds = calloc(IDLE_CONNS, sizeof *fds);
    struct pollfd *pfds = calloc(IDLE_CONNS, sizeof *pfds);
    long open_now = 0;

    if (fds == NULL || pfds == NULL)
        exit(2);
    for (int i = 0; i < IDLE_CONNS; i++)
        fds[i] = -1;
    while (!atomic_load(&sh->stop)) {
        open_now = 0;
        for (int i = 0; i < IDLE_CONNS; i++) {
            if (fds[i] < 0) {
                fds[i] = socket(client.server.ss_family, SOCK_STREAM, 0);
                if (fds[i] >= 0 &&
                    connect(fds[i], (struct sockaddr *)&client.server,
                            client.server_len) != 0) {
                    close(fds[i]);
                    fds[i] = -1;
                }
                if (fds[i] >= 0)
                    atomic_fetch_add(&sh->idle_reopened, 1);
            }
            pfds[i].fd = fds[i];
            pfds[i].events = POLLIN;
            pfds[i].revents = 0;
            open_now += fds[i] >= 0;
        }
        atomic_store(&sh->idle_open, open_now);
        /* Closed by nginx: readable with EOF. */
        if (poll(pfds, IDLE_CONNS, 200) > 0)
            for (int i = 0; i < IDLE_CONNS; i++)
                if (fds[i] >= 0 && (pfds[i].revents & (POLLIN | POLLHUP))) {
                    close(fds[i]);
                    fds[i] = -1;
                }
    }
    for (int i = 0; i < IDLE_CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(pfds);
}

/* --- B ------------------------------------------------------------------ */

static void
b_error(const char *what, int st, const char *body)
{
    if (atomic_exchange(&sh->has_error, 1) == 0)
        snprintf(sh->first_error, sizeof sh->first_error, "%s: %d %.400s", what,
                 st, body ? body : "");
}

static void
b_client(const char *token, bool append)
{
    long i = 0;
    char body[256];

    while (!atomic_load(&sh->stop)) {
        int64_t t0 = mono_us();
        char *answer = NULL;
        int st, want = append ? 201 : 200;
        long n;

        if (append) {
            snprintf(body, sizeof body,
                     "{\"role\":\"user\",\"content\":\"B's message %ld\"}",
                     i++);
            st = request(token, "POST", "/api/agent-sessions/b/messages", body,
                         strlen(body), &answer);
        } else {
            st = request(token, "GET", "/api/agent-sessions/b", NULL, 0,
                         &answer);
        }
        n = atomic_fetch_add(&sh->nsamples, 1);
        if (n < MAX_SAMPLES)
            sh->samples_us[n] = (uint32_t)(mono_us() - t0);
        n = atomic_fetch_add(&sh->nkind[append], 1);
        if (n < MAX_SAMPLES)
            sh->kind_us[append][n] = (uint32_t)(mono_us() - t0);
        count(append ? K_B_APPEND : K_B_GET, st);
        if (st != want)
            b_error(append ? "B append" : "B GET", st, answer);
        free(answer);
        sleep_ms(10);
    }
}

/* --- set-up, run, report ---------------------------------------------------
 */

static void
setup_or_die(const char *what, int st, int want, const char *body)
{
    if (st != want) {
        fprintf(stderr, "noisy: set-up: %s: %d %.300s\n", what, st,
                body ? body : "");
        exit(2);
    }
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* A's session filled with BIG_MESSAGES messages, 100 per append, from
 * two clients (A's limit of requests at once is 2). */
static void
fill_by_batches(const char *tok1, const char *tok2)
{
    pid_t pids[2];
    const char *toks[2] = {tok1, tok2};

    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        if (pids[c] < 0)
            exit(2);
        if (pids[c] == 0) {
            char *b = messages_body(NULL, 100, "m");

            for (int i = c; i < big_messages / 100; i += 2) {
                char *answer = NULL;
                int st =
                    request(toks[c], "POST", "/api/agent-sessions/big/messages",
                            b, strlen(b), &answer);

                /* a 429 when the other client's request has not left
                 * yet: again */
                if (st == 429) {
                    free(answer);
                    sleep_ms(20);
                    i -= 2;
                    continue;
                }
                setup_or_die("a batch of A's session", st, 201, answer);
                free(answer);
            }
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int status;

        waitpid(pids[c], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            exit(2);
    }
}

static pid_t
spawn(void (*fn)(const char *, int), const char *token, int id)
{
    pid_t pid = fork();

    if (pid < 0) {
        perror("noisy: fork");
        exit(2);
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        fn(token, id);
        _exit(0);
    }
    return pid;
}

/* spawn(), for one of A's loads, at a lower CPU priority (nice 10): A's
 * client processes share the machine with the server here, where on a
 * real deployment they would run elsewhere; the server's processes and
 * B's client keep theirs.  What A sends is unchanged. */
static void
run_niced(void (*fn)(const char *, int), const char *token, int id)
{
    errno = 0;
    if (nice(10) == -1 && errno != 0)
        perror("noisy: nice");
    fn(token, id);
}

static void (*niced_fn)(const char *, int);

static void
run_niced_entry(const char *token, int id)
{
    run_niced(niced_fn, token, id);
}

static pid_t
spawn_a(void (*fn)(const char *, int), const char *token, int id)
{
    niced_fn = fn; /* read by the child right after the fork */
    return spawn(run_niced_entry, token, id);
}

static void
run_exporter(const char *t, int id)
{
    (void)id;
    a_exporter(t);
}
static void
run_importer(const char *t, int id)
{
    a_importer(t, id);
}
static void
run_batcher(const char *t, int id)
{
    (void)id;
    a_batcher(t);
}
static void
run_memory(const char *t, int id)
{
    a_memory(t, id);
}
static void
run_idle(const char *t, int id)
{
    (void)t;
    (void)id;
    a_idle();
}
static void
run_b_get(const char *t, int id)
{
    (void)id;
    b_client(t, false);
}
static void
run_b_append(const char *t, int id)
{
    (void)id;
    b_client(t, true);
}

int
main(int argc, char **argv)
{
    int seconds = 20, p99_limit_ms = 0, opt;
    bool by_batches = false;
    /* NOISY_A: which of A's loads run (all by default), to see which
     * one costs B what. */
    const char *a_kinds = getenv("NOISY_A") != NULL
                              ? getenv("NOISY_A")
                              : "idle,export,import,batch,memory";
    const char *conf = getenv("PARLEY_E2E_CONFIG");
    const char *secret = getenv("PARLEY_E2E_SECRET");
    struct error err = ERROR_INIT;
    char msg[256], *answer = NULL, *a_tok[11], *b_tok;
    const char *body;
    pid_t pids[32];
    int np = 0, st, rc = 0;
    long n, errors;
    int64_t t0;

    while ((opt = getopt(argc, argv, "s:p:B")) != -1) {
        if (opt == 's')
            seconds = atoi(optarg);
        else if (opt == 'p')
            p99_limit_ms = atoi(optarg);
        else if (opt == 'B')
            by_batches = true;
        else
            return 2;
    }
    if (getenv("NOISY_BIG") != NULL)
        big_messages = atoi(getenv("NOISY_BIG"));
    if (optind != argc - 1 || conf == NULL) {
        fprintf(stderr, "usage: PARLEY_E2E_CONFIG=F noisy [-s S] [-p MS] "
                        "URL\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (e2e_http_client_init(&client, argv[optind], msg, sizeof msg) < 0) {
        fprintf(stderr, "noisy: %s\n", msg);
        return 2;
    }
    client.timeout_ms = 30000;
    if (config_load(&cfg, conf, &err) < 0) {
        fprintf(stderr, "noisy: config: %s\n", err.message);
        return 2;
    }
    if (secret != NULL) {
        free(cfg.jwt_key);
        cfg.jwt_pin = JWT_PIN_HS256;
        cfg.jwt_key = strdup(secret);
        cfg.jwt_key_len = strlen(secret);
    }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("noisy: mmap");
        return 2;
    }
    for (int i = 0; i < 11; i++)
        a_tok[i] = mint_token("noisy-a");
    b_tok = mint_token("noisy-b");

    /* A's 20 000-message session (imported in one request, as nothing
     * else makes one as fast), A's memory session, B's session. */
    t0 = mono_us();
    if (!by_batches) {
        struct buf b;

        buf_init(&b);
        buf_adds(&b, "{\"session\":{\"session_id\":\"big\"},\"messages\":[");
        for (int i = 0; i < big_messages; i++)
            buf_printf(&b, "%s{\"role\":\"user\",\"content\":\"m%d\"}",
                       i ? "," : "", i);
        buf_adds(&b, "]}");
        st = request(a_tok[0], "POST", "/api/agent-sessions/import", b.data,
                     b.len, &answer);
        setup_or_die("A's 20 000-message session", st, 201, answer);
        free(answer);
        buf_release(&b);
    } else {
        body = "{\"session_id\":\"big\"}";
        st = request(a_tok[0], "POST", "/api/agent-sessions", body,
                     strlen(body), &answer);
        setup_or_die("A's session", st, 201, answer);
        free(answer);
        fill_by_batches(a_tok[0], a_tok[1]);
    }
    body = "{\"session_id\":\"mem\"}";
    st = request(a_tok[0], "POST", "/api/agent-sessions", body, strlen(body),
                 &answer);
    setup_or_die("A's memory session", st, 201, answer);
    free(answer);
    body = "{\"session_id\":\"b\"}";
    st = request(b_tok, "POST", "/api/agent-sessions", body, strlen(body),
                 &answer);
    setup_or_die("B's session", st, 201, answer);
    free(answer);
    printf("noisy: set-up (A's %d-message session) took %.1f s\n", big_messages,
           (double)(mono_us() - t0) / 1e6);
    fflush(stdout);

    if (strstr(a_kinds, "idle") != NULL) {
        pids[np++] = spawn_a(run_idle, NULL, 0);
        sleep_ms(500); /* the idle connections first */
    }
    for (int i = 0; i < 4 && strstr(a_kinds, "export") != NULL; i++)
        pids[np++] = spawn_a(run_exporter, a_tok[i], i);
    for (int i = 0; i < 2 && strstr(a_kinds, "import") != NULL; i++)
        pids[np++] = spawn_a(run_importer, a_tok[4 + i], i);
    for (int i = 0; i < 2 && strstr(a_kinds, "batch") != NULL; i++)
        pids[np++] = spawn_a(run_batcher, a_tok[6 + i], i);
    for (int i = 0; i < 2 && strstr(a_kinds, "memory") != NULL; i++)
        pids[np++] = spawn_a(run_memory, a_tok[8 + i], i);
    pids[np++] = spawn(run_b_get, b_tok, 0);
    pids[np++] = spawn(run_b_append, b_tok, 1);
    sleep_ms(seconds * 1000);
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < np; i++)
        waitpid(pids[i], NULL, 0);

    printf("noisy: A during %d s (idle connections held: %ld, opened %ld "
           "times in all):\n",
           seconds, atomic_load(&sh->idle_open),
           atomic_load(&sh->idle_reopened));
    for (int k = 0; k < K_KINDS; k++) {
        long total = 0;

        if (k == K_B_GET)
            printf("noisy: B:\n");
        for (int s = 0; s < S_N; s++)
            total += atomic_load(&sh->counts[k][s]);
        printf("noisy:   %-32s %6ld:", kind_names[k], total);
        for (int s = 0; s < S_N; s++) {
            long v = atomic_load(&sh->counts[k][s]);

            if (v > 0)
                printf(" %s %ld", status_names[s], v);
        }
        printf("\n");
    }
    n = atomic_load(&sh->nsamples);
    if (n > MAX_SAMPLES)
        n = MAX_SAMPLES;
    errors = 0;
    for (int k = K_B_GET; k <= K_B_APPEND; k++)
        for (int s = 0; s < S_N; s++)
            if (!((k == K_B_GET && s == S_200) ||
                  (k == K_B_APPEND && s == S_201)))
                errors += atomic_load(&sh->counts[k][s]);
    if (n == 0) {
        printf("noisy: B got no answer at all\n");
        return 1;
    }
    for (int k = 0; k < 2; k++) {
        long m = atomic_load(&sh->nkind[k]);

        if (m > MAX_SAMPLES)
            m = MAX_SAMPLES;
        if (m == 0)
            continue;
        qsort(sh->kind_us[k], (size_t)m, sizeof sh->kind_us[k][0], cmp_u32);
        printf("noisy: B %-6s latency p50 %.1f ms, p99 %.1f ms\n",
               k ? "append" : "GET", sh->kind_us[k][(m - 1) / 2] / 1000.0,
               sh->kind_us[k][(m * 99 + 99) / 100 - 1] / 1000.0);
    }
    qsort(sh->samples_us, (size_t)n, sizeof sh->samples_us[0], cmp_u32);
    {
        double p50 = sh->samples_us[(n - 1) / 2] / 1000.0;
        double p99 = sh->samples_us[(n * 99 + 99) / 100 - 1] / 1000.0;
        double max = sh->samples_us[n - 1] / 1000.0;

        printf("noisy: B: %ld requests, %ld errors, latency p50 %.1f ms, p99 "
               "%.1f ms, max %.1f ms\n",
               n, errors, p50, p99, max);
        if (errors > 0) {
            printf("noisy: FAIL: B had %ld errors; the first: %s\n", errors,
                   sh->first_error);
            rc = 1;
        }
        if (p99_limit_ms > 0 && p99 >= p99_limit_ms) {
            printf("noisy: FAIL: B's p99 %.1f ms is not under %d ms\n", p99,
                   p99_limit_ms);
            rc = 1;
        }
    }
    config_release(&cfg);
    return rc;
}

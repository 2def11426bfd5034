/*
 * metrics.c - the shared counter region and its text exposition.
 *
 * The region pointer is the one piece of process-wide state here: it is
 * written once by the supervisor before it forks and only read afterwards,
 * and passing it through every store call and the request flow would
 * cost more clarity than it buys (log.c keeps its level the same way).
 * The counters themselves live in the shared mapping, never in a worker's
 * own memory, so a worker that dies loses nothing it counted.
 *
 * Everything in the region is an atomic 64-bit integer updated with
 * relaxed ordering: each counter only ever grows, and a scrape that sees
 * one counter a request newer than another is harmless.  A histogram's
 * count is the sum of its buckets as read, so "+Inf" and _count always
 * agree.  Durations are kept in microseconds, as integers, because C11
 * has no atomic add for doubles.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "clock.h"
#include "metrics.h"
#include "banned.h"

/* Cross-process atomics must not fall back to a lock in the process's
 * own memory. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free to be shared by processes");

/* Status codes with their own series: what parley answers and what nginx
 * answers itself in front of it.  Any other code counts under its class. */
static const int metrics_codes[] = {200, 201, 204, 304, 400, 401, 403,
                                    404, 405, 409, 412, 413, 414, 415,
                                    429, 431, 499, 500, 502, 503, 504};

#define N_CODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]))
/* After the codes: "1xx" .. "5xx", then "other" for nonsense. */
#define N_STATUS (N_CODES + 6)

/* Upper bounds (le) of the latency buckets, in µs and as printed: 1 ms to
 * 10 s, roughly 1-2.5-5 per decade.  The +Inf bucket follows them. */
static const uint64_t metrics_bounds_us[] = {
    1000,   2500,   5000,    10000,   25000,   50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const metrics_bounds[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

#define N_BOUNDS  (sizeof(metrics_bounds_us) / sizeof(metrics_bounds_us[0]))
#define N_BUCKETS (N_BOUNDS + 1)

enum metrics_db_kind {
    DB_UNAVAILABLE,
    DB_INTERNAL,
    DB_KINDS,
};

static const char *const metrics_db_kinds[DB_KINDS] = {"unavailable",
                                                       "internal"};

/* One slot per (route row or "unmatched", method); each slot has N_STATUS
 * request counters, N_BUCKETS latency buckets and one µs sum. */
struct metrics_region {
    size_t size; /* of the mapping */
    size_t nroutes;
    int64_t start_ms; /* wall clock, written before fork */
    uint64_t seed;    /* of the user hashes, written before fork */
    atomic_llong workers;
    atomic_ullong db_calls;
    atomic_ullong db_retries;
    atomic_ullong db_errors[DB_KINDS];
    atomic_ullong events[METRICS_EVENTS];
    /* metrics.h: each worker's user hash (0: none), and one past the
     * highest slot ever used, so a count scans only those. */
    atomic_ullong inflight[METRICS_WORKER_SLOTS];
    atomic_ullong bulk[METRICS_WORKER_SLOTS]; /* the same, bulk requests */
    atomic_ullong conv[METRICS_WORKER_SLOTS]; /* conversation turns */
    atomic_int inflight_top;
    atomic_ullong cells[];
};

static struct metrics_region *metrics_region = NULL;
/* This process's slot in inflight[], or -1 (not a worker). */
static int metrics_slot = -1;

static size_t
metrics_slots(size_t nroutes)
{
    return (nroutes + 1) * HTTP_METHOD_COUNT;
}

static atomic_ullong *
metrics_requests(struct metrics_region *m, size_t slot)
{
    return &m->cells[slot * N_STATUS];
}

static atomic_ullong *
metrics_buckets(struct metrics_region *m, size_t slot)
{
    return &m->cells[metrics_slots(m->nroutes) * N_STATUS + slot * N_BUCKETS];
}

static atomic_ullong *
metrics_sum_us(struct metrics_region *m, size_t slot)
{
    return &m->cells[metrics_slots(m->nroutes) * (N_STATUS + N_BUCKETS) + slot];
}

int
metrics_init(size_t nroutes, struct error *err)
{
    size_t ncells = metrics_slots(nroutes) * (N_STATUS + N_BUCKETS + 1);
    size_t size =
        sizeof(struct metrics_region) + ncells * sizeof(atomic_ullong);
    struct metrics_region *m;

    metrics_release();
    /* Anonymous memory starts zeroed, which is every counter's start. */
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
             0);
    if (m == MAP_FAILED) {
        error_set(err, ERR_INTERNAL, NULL,
                  "cannot map %zu bytes for metrics: %s", size,
                  strerror(errno));
        return -1;
    }
    m->size = size;
    m->nroutes = nroutes;
    m->start_ms = clock_now_ms();
    if (getrandom(&m->seed, sizeof(m->seed), 0) != (ssize_t)sizeof(m->seed))
        m->seed = (uint64_t)m->start_ms;
    metrics_region = m;
    return 0;
}

void
metrics_release(void)
{
    if (metrics_region == NULL)
        return;
    munmap(metrics_region, metrics_region->size);
    metrics_region = NULL;
    metrics_slot = -1;
}

static size_t
metrics_status_index(int status)
{
    for (size_t i = 0; i < N_CODES; i++)
        if (metrics_codes[i] == status)
            return i;
    if (status >= 100 && status <= 599)
        return N_CODES + (size_t)(status / 100 - 1);
    return N_CODES + 5;
}

void
metrics_observe(int route, enum http_method method, int status, double seconds)
{
    struct metrics_region *m = metrics_region;
    size_t row, slot, b;
    uint64_t us;

    if (m == NULL)
        return;
    row = route >= 0 && (size_t)route < m->nroutes ? (size_t)route : m->nroutes;
    if ((unsigned)method >= HTTP_METHOD_COUNT)
        method = HTTP_OTHER;
    slot = row * HTTP_METHOD_COUNT + (size_t)method;
    /* NaN and negative times (a clock that stepped) count as zero; a
     * day caps what one request can add to the sum. */
    us = seconds > 0 ? (seconds < 86400 ? (uint64_t)(seconds * 1e6 + 0.5)
                                        : UINT64_C(86400000000))
                     : 0;
    for (b = 0; b < N_BOUNDS && us > metrics_bounds_us[b]; b++)
        ;
    atomic_fetch_add_explicit(
        &metrics_requests(m, slot)[metrics_status_index(status)], 1,
        memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_buckets(m, slot)[b], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(metrics_sum_us(m, slot), us,
                              memory_order_relaxed);
}

void
metrics_db(int retries, enum error_code failure)
{
    struct metrics_region *m = metrics_region;

    if (m == NULL)
        return;
    atomic_fetch_add_explicit(&m->db_calls, 1, memory_order_relaxed);
    if (retries > 0)
        atomic_fetch_add_explicit(&m->db_retries, (unsigned long long)retries,
                                  memory_order_relaxed);
    if (failure == ERR_UNAVAILABLE)
        atomic_fetch_add_explicit(&m->db_errors[DB_UNAVAILABLE], 1,
                                  memory_order_relaxed);
    else if (failure == ERR_INTERNAL)
        atomic_fetch_add_explicit(&m->db_errors[DB_INTERNAL], 1,
                                  memory_order_relaxed);
}

void
metrics_set_workers(int n)
{
    if (metrics_region != NULL)
        atomic_store_explicit(&metrics_region->workers, n,
                              memory_order_relaxed);
}

void
metrics_count(enum metrics_event e)
{
    if (metrics_region != NULL && (unsigned)e < METRICS_EVENTS)
        atomic_fetch_add_explicit(&metrics_region->events[e], 1,
                                  memory_order_relaxed);
}

/* --- requests in flight per user ------------------------------------------ */

static uint64_t
metrics_user_hash(const struct metrics_region *m, const char *user)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ m->seed;

    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        h ^= *p;
        h *= UINT64_C(1099511628211);
    }
    /* One more round over the seed, so users differing only in their
     * last byte do not differ only in the low bits. */
    h ^= m->seed >> 17;
    h *= UINT64_C(1099511628211);
    return h != 0 ? h : 1; /* 0 marks a free slot */
}

void
metrics_worker_slot(int slot)
{
    struct metrics_region *m = metrics_region;
    int top;

    if (m == NULL || slot < 0 || slot >= METRICS_WORKER_SLOTS)
        return;
    metrics_slot = slot;
    atomic_store(&m->inflight[slot], 0);
    atomic_store(&m->bulk[slot], 0);
    atomic_store(&m->conv[slot], 0);
    top = atomic_load(&m->inflight_top);
    while (top < slot + 1 &&
           !atomic_compare_exchange_weak(&m->inflight_top, &top, slot + 1))
        ;
}

void
metrics_worker_gone(int slot)
{
    if (metrics_region != NULL && slot >= 0 && slot < METRICS_WORKER_SLOTS) {
        atomic_store(&metrics_region->bulk[slot], 0);
        atomic_store(&metrics_region->conv[slot], 0);
        atomic_store(&metrics_region->inflight[slot], 0);
    }
}

static int
metrics_scan(struct metrics_region *m, atomic_ullong *table, uint64_t h)
{
    int top = atomic_load(&m->inflight_top), n = 0;

    for (int i = 0; i < top && i < METRICS_WORKER_SLOTS; i++)
        if (atomic_load(&table[i]) == h)
            n++;
    return n;
}

/* Publishes this slot's hash for user in table, then counts: see
 * metrics.h. */
static bool
metrics_table_enter(atomic_ullong *table, const char *user, int limit)
{
    struct metrics_region *m = metrics_region;
    uint64_t h;

    if (m == NULL || metrics_slot < 0 || user == NULL)
        return true;
    h = metrics_user_hash(m, user);
    atomic_store(&table[metrics_slot], h);
    if (metrics_scan(m, table, h) <= limit)
        return true;
    atomic_store(&table[metrics_slot], 0);
    return false;
}

bool
metrics_inflight_enter(const char *user, int limit)
{
    return metrics_region == NULL ||
           metrics_table_enter(metrics_region->inflight, user, limit);
}

bool
metrics_bulk_enter(const char *user, int limit)
{
    return metrics_region == NULL ||
           metrics_table_enter(metrics_region->bulk, user, limit);
}

bool
metrics_conversation_enter(const char *user, int limit)
{
    return metrics_region == NULL ||
           metrics_table_enter(metrics_region->conv, user, limit);
}

void
metrics_inflight_leave(void)
{
    if (metrics_region != NULL && metrics_slot >= 0) {
        atomic_store(&metrics_region->bulk[metrics_slot], 0);
        atomic_store(&metrics_region->conv[metrics_slot], 0);
        atomic_store(&metrics_region->inflight[metrics_slot], 0);
    }
}

int
metrics_inflight_count(const char *user)
{
    struct metrics_region *m = metrics_region;

    return m != NULL && user != NULL
               ? metrics_scan(m, m->inflight, metrics_user_hash(m, user))
               : 0;
}

int
metrics_bulk_count(const char *user)
{
    struct metrics_region *m = metrics_region;

    return m != NULL && user != NULL
               ? metrics_scan(m, m->bulk, metrics_user_hash(m, user))
               : 0;
}

int
metrics_conversation_count(const char *user)
{
    struct metrics_region *m = metrics_region;

    return m != NULL && user != NULL
               ? metrics_scan(m, m->conv, metrics_user_hash(m, user))
               : 0;
}

static unsigned long long
metrics_load(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* A label value: backslash, double quote and newline escaped, as the
 * exposition format requires. */
static void
metrics_label(struct buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            buf_addch(out, '\\');
        if (*s == '\n')
            buf_adds(out, "\\n");
        else
            buf_addch(out, *s);
    }
}

static void
metrics_status(struct buf *out, size_t i)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx",
                                          "4xx", "5xx", "other"};

    if (i < N_CODES)
        buf_printf(out, "%d", metrics_codes[i]);
    else
        buf_adds(out, classes[i - N_CODES]);
}

/* `route="...",method="..."` for a slot. */
static void
metrics_slot_labels(struct buf *out, const struct route *routes, size_t n,
                    size_t slot)
{
    size_t row = slot / HTTP_METHOD_COUNT;

    buf_adds(out, "route=\"");
    metrics_label(out, row < n ? routes[row].pattern : "unmatched");
    buf_printf(out, "\",method=\"%s\"",
               http_method_name((enum http_method)(slot % HTTP_METHOD_COUNT)));
}

static void
metrics_head(struct buf *out, const char *name, const char *type,
             const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_render_http(struct buf *out, struct metrics_region *m,
                    const struct route *routes, size_t n)
{
    size_t nslots = metrics_slots(m->nroutes);

    metrics_head(out, "parley_http_requests_total", "counter",
                 "Requests answered, by route pattern, method and status.");
    for (size_t slot = 0; slot < nslots; slot++) {
        atomic_ullong *req = metrics_requests(m, slot);

        for (size_t i = 0; i < N_STATUS; i++) {
            unsigned long long v = metrics_load(&req[i]);

            if (v == 0)
                continue;
            buf_adds(out, "parley_http_requests_total{");
            metrics_slot_labels(out, routes, n, slot);
            buf_adds(out, ",status=\"");
            metrics_status(out, i);
            buf_printf(out, "\"} %llu\n", v);
        }
    }

    metrics_head(out, "parley_http_request_duration_seconds", "histogram",
                 "Time from taking a request to sending its last byte, by "
                 "route pattern and method.");
    for (size_t slot = 0; slot < nslots; slot++) {
        atomic_ullong *bucket = metrics_buckets(m, slot);
        unsigned long long seen[N_BUCKETS], count = 0, sum_us;

        for (size_t b = 0; b < N_BUCKETS; b++) {
            seen[b] = metrics_load(&bucket[b]);
            count += seen[b];
        }
        if (count == 0)
            continue;
        sum_us = metrics_load(metrics_sum_us(m, slot));
        count = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            count += seen[b];
            buf_adds(out, "parley_http_request_duration_seconds_bucket{");
            metrics_slot_labels(out, routes, n, slot);
            buf_printf(out, ",le=\"%s\"} %llu\n",
                       b < N_BOUNDS ? metrics_bounds[b] : "+Inf", count);
        }
        buf_adds(out, "parley_http_request_duration_seconds_sum{");
        metrics_slot_labels(out, routes, n, slot);
        buf_printf(out, "} %llu.%06llu\n", sum_us / 1000000, sum_us % 1000000);
        buf_adds(out, "parley_http_request_duration_seconds_count{");
        metrics_slot_labels(out, routes, n, slot);
        buf_printf(out, "} %llu\n", count);
    }
}

static void
metrics_render_fairness(struct buf *out, struct metrics_region *m)
{
    unsigned long long v[METRICS_EVENTS];

    for (int e = 0; e < METRICS_EVENTS; e++)
        v[e] = metrics_load(&m->events[e]);
    metrics_head(out, "parley_user_inflight_rejected_total", "counter",
                 "Requests refused with 429 because their user already had "
                 "user_max_inflight requests (kind=\"all\"), user_max_bulk "
                 "bulk requests (kind=\"bulk\") or half the conversation "
                 "pool's turns (kind=\"conversation\") served on this "
                 "host.");
    buf_printf(out, "parley_user_inflight_rejected_total{kind=\"all\"} %llu\n",
               v[METRICS_INFLIGHT_REJECTED]);
    buf_printf(out, "parley_user_inflight_rejected_total{kind=\"bulk\"} %llu\n",
               v[METRICS_BULK_REJECTED]);
    metrics_head(out, "parley_queue_expired_total", "counter",
                 "Requests answered 503 without any work because they had "
                 "waited for a worker past their deadline.");
    buf_printf(out, "parley_queue_expired_total %llu\n",
               v[METRICS_QUEUE_EXPIRED]);
    metrics_head(out, "parley_client_gone_total", "counter",
                 "Requests whose client had gone: before a worker took them "
                 "(not served) or while they were served (stopped).");
    buf_printf(out, "parley_client_gone_total{when=\"queued\"} %llu\n",
               v[METRICS_GONE_QUEUED]);
    buf_printf(out, "parley_client_gone_total{when=\"serving\"} %llu\n",
               v[METRICS_GONE_SERVING]);
    metrics_head(out, "parley_export_truncated_total", "counter",
                 "Exports cut short by export_deadline_ms (the body ends "
                 "with the truncation marker).");
    buf_printf(out, "parley_export_truncated_total %llu\n",
               v[METRICS_EXPORT_TRUNCATED]);
    metrics_head(out, "parley_worker_recycled_total", "counter",
                 "Workers replaced after a request, by reason (rss: past "
                 "worker_max_rss_mb).");
    buf_printf(out, "parley_worker_recycled_total{reason=\"rss\"} %llu\n",
               v[METRICS_RECYCLED_RSS]);
}

bool
metrics_render(struct buf *out, const struct route *routes, size_t n)
{
    struct metrics_region *m = metrics_region;

    if (m == NULL)
        return false;
    if (n > m->nroutes)
        n = m->nroutes;
    metrics_render_http(out, m, routes, n);

    metrics_head(out, "parley_db_calls_total", "counter",
                 "Database calls made (each with its retries).");
    buf_printf(out, "parley_db_calls_total %llu\n", metrics_load(&m->db_calls));
    metrics_head(out, "parley_db_retries_total", "counter",
                 "Database tries repeated after a transient failure.");
    buf_printf(out, "parley_db_retries_total %llu\n",
               metrics_load(&m->db_retries));
    metrics_head(out, "parley_db_errors_total", "counter",
                 "Database calls that failed for good, by kind "
                 "(unavailable: 503 after retries; internal: 500).");
    for (int k = 0; k < DB_KINDS; k++)
        buf_printf(out, "parley_db_errors_total{kind=\"%s\"} %llu\n",
                   metrics_db_kinds[k], metrics_load(&m->db_errors[k]));

    metrics_render_fairness(out, m);

    metrics_head(out, "parley_workers", "gauge",
                 "Worker processes alive (during a reload, old and new).");
    buf_printf(out, "parley_workers %lld\n",
               atomic_load_explicit(&m->workers, memory_order_relaxed));
    metrics_head(out, "parley_build_info", "gauge",
                 "Always 1; the version is in the label.");
    buf_printf(out, "parley_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    metrics_head(out, "process_start_time_seconds", "gauge",
                 "When the supervisor started, in seconds since the epoch.");
    buf_printf(out, "process_start_time_seconds %lld.%03lld\n",
               (long long)(m->start_ms / 1000),
               (long long)(m->start_ms % 1000));
    return true;
}

/*
 * fuzz_router.c - the router over the real route table, the query-string
 * parser and its typed getters, paging and If-Match.
 *
 * Input: the first byte picks the method; the rest is the request target,
 * path and query split at the first '?' as fcgi.c splits REQUEST_URI.
 * Properties:
 *   - router_match() finds a route of this method (HEAD: a GET route)
 *     with exactly the parameters its pattern names, each a non-empty,
 *     NUL-free, valid UTF-8 string; or 404; or 405 with an Allow list of
 *     known methods that does not hold the one asked for;
 *   - query_parse() gives at most 64 distinct non-empty keys, keys and
 *     values valid UTF-8; or 400;
 *   - every typed getter, asked for every key, answers true with a value
 *     inside its set, or 400 naming that key; after all of them no key is
 *     unused;
 *   - api_paging() gives limit 1..max_page_limit and offset
 *     0..max_offset, or 400; api_if_match() (the query as a header value)
 *     a version >= 1, "any" or "never", or 400 naming If-Match;
 *   - api_query() over a table with a row of each kind fills every slot
 *     within its row's bounds (or leaves it alone) and takes no key the
 *     table does not name, or answers 400.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "arena.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "fuzz_util.h"
#include "query.h"
#include "router.h"
#include "service.h"
#include "utf8.h"
#include "banned.h"

static size_t
count_params(const char *pattern)
{
    size_t n = 0;

    for (const char *p = pattern; *p != '\0'; p++)
        n += *p == '{';
    return n;
}

static void
check_match(enum http_method method, const char *path,
            const struct router_match *m)
{
    const struct route *r = m->route;

    FUZZ_CHECK(r >= api_routes && r < api_routes + api_nroutes,
               "route outside the table");
    FUZZ_CHECK(r->method == method ||
                   (method == HTTP_HEAD && r->method == HTTP_GET),
               "%s matched a %s route", http_method_name(method),
               http_method_name(r->method));
    FUZZ_CHECK(m->params.n == count_params(r->pattern),
               "%zu params for %s (path %.100s)", m->params.n, r->pattern,
               path);
    for (size_t i = 0; i < m->params.n; i++) {
        const char *v = m->params.p[i].value;

        FUZZ_CHECK(v != NULL && v[0] != '\0', "empty param");
        FUZZ_CHECK(utf8_valid(v, strlen(v)), "param not UTF-8");
        FUZZ_CHECK(router_param(m, m->params.p[i].name) == v,
                   "router_param disagrees");
    }
}

static void
check_allow(enum http_method method, const struct router_match *m)
{
    const char *own = http_method_name(method == HTTP_HEAD ? HTTP_GET : method);
    char copy[sizeof(m->allow)];
    char *p = copy, *item;

    FUZZ_CHECK(m->allow[0] != '\0', "405 without Allow");
    memcpy(copy, m->allow, sizeof(copy));
    /* "GET, PATCH, DELETE": names from the enum, comma and space apart. */
    while ((item = strsep(&p, ",")) != NULL) {
        if (item != copy) {
            FUZZ_CHECK(item[0] == ' ', "Allow separator: %s", m->allow);
            item++;
        }
        FUZZ_CHECK(http_method_parse(item) != HTTP_OTHER, "Allow holds \"%s\"",
                   item);
        FUZZ_CHECK(method == HTTP_OTHER || strcmp(item, own) != 0,
                   "405 for %s, which Allow lists", own);
    }
}

static void
check_getters(struct query *q)
{
    static const char *const names[] = {"asc", "desc", "-updated_at", NULL};

    for (size_t i = 0; i < q->n; i++) {
        const char *key = q->items[i].key;
        const char *value = q->items[i].value;
        struct error err = ERROR_INIT;
        int64_t n = 7, t = 7;
        int b = -1, e = -1;
        const char *s = NULL;
        bool again = false;

        /* A list key (name[]) may repeat: the getters answer its first
         * value, so only the first occurrence is checked against them. */
        for (size_t j = 0; j < i && !again; j++)
            again = strcmp(q->items[j].key, key) == 0;
        if (again)
            continue;

#define GETTER(call, ok_check)                                                 \
    do {                                                                       \
        error_clear(&err);                                                     \
        if (call) {                                                            \
            FUZZ_CHECK(ok_check, "%s accepted %s=%.80s", #call, key, value);   \
        } else {                                                               \
            FUZZ_CHECK(err.code == ERR_VALIDATION && err.param != NULL &&      \
                           strcmp(err.param, key) == 0,                        \
                       "%s refused %s with code %d param %s", #call, key,      \
                       err.code, err.param ? err.param : "(null)");            \
        }                                                                      \
    } while (0)

        GETTER(query_int(q, key, 0, 100000, &n, &err),
               n >= 0 && n <= 100000 && strtoll(value, NULL, 10) == n);
        GETTER(query_int(q, key, INT64_MIN, INT64_MAX, &n, &err),
               strtoll(value, NULL, 10) == n);
        GETTER(query_bool(q, key, &b, &err),
               (b == 1 && strcmp(value, "true") == 0) ||
                   (b == 0 && strcmp(value, "false") == 0));
        GETTER(query_enum(q, key, names, &e, &err),
               e >= 0 && e < 3 && strcmp(names[e], value) == 0);
        GETTER(query_time(q, key, &t, &err), clock_parse(value, &n) && n == t);
        GETTER(query_string(q, key, 255, &s, &err),
               s == value && s[0] != '\0' && utf8_count(s, strlen(s)) <= 255);
#undef GETTER
        FUZZ_CHECK(query_get(q, key) == value, "query_get disagrees");
        FUZZ_CHECK(query_has(q, key), "query_has disagrees");
    }
    {
        struct error err = ERROR_INIT;

        FUZZ_CHECK(query_check_unused(q, &err), "a key unused after all: %s",
                   err.param ? err.param : "(null)");
    }
}

static void
check_paging(const struct config *cfg, const char *raw, struct arena *a)
{
    struct api_call call;
    struct error err = ERROR_INIT;
    int64_t limit = -1, offset = -1;

    memset(&call, 0, sizeof(call));
    call.cfg = cfg;
    if (!query_parse(&call.query, raw, a, &err))
        return;
    if (api_paging(&call, 20, &limit, &offset, &err)) {
        FUZZ_CHECK(limit >= 1 && limit <= cfg->max_page_limit, "limit %lld",
                   (long long)limit);
        FUZZ_CHECK(offset >= 0 && offset <= cfg->max_offset, "offset %lld",
                   (long long)offset);
    } else {
        FUZZ_CHECK(err.code == ERR_VALIDATION && err.param != NULL,
                   "paging refused with code %d", err.code);
    }
}

/* One row of each kind, as a list route declares its parameters. */
struct fuzz_query {
    struct api_page page;
    int64_t n, t;
    int b, e;
    const char *s, *name;
};

static bool
known_key(const char *k)
{
    static const char *const keys[] = {
        "limit", "offset", "page", "size", "n", "t", "b", "e", "s", "name"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static void
check_query_table(const struct config *cfg, const char *raw, struct arena *a)
{
    static const char *const names[] = {"asc", "desc", NULL};
#define F(m) offsetof(struct fuzz_query, m)
    static const struct api_query_param params[] = {
        {NULL, API_QUERY_PAGING, F(page), .min = 20},
        {"n", API_QUERY_INT, F(n), -5, 5, NULL},
        {"t", API_QUERY_TIME, F(t), 0, 0, NULL},
        {"b", API_QUERY_BOOL, F(b), 0, 0, NULL},
        {"e", API_QUERY_ENUM, F(e), .names = names},
        {"s", API_QUERY_STRING, F(s), .max = 8},
        {"name", API_QUERY_STRING, F(name), .max = API_MAX_NAME_CHARS},
    };
#undef F
    struct fuzz_query out = {{-1, -1}, 99, 99, 9, 9, NULL, NULL};
    struct api_call call;
    struct error err = ERROR_INIT;

    memset(&call, 0, sizeof(call));
    call.cfg = cfg;
    if (!query_parse(&call.query, raw, a, &err))
        return;
    if (!api_query(&call, params, sizeof(params) / sizeof(params[0]), &out,
                   &err)) {
        FUZZ_CHECK(err.code == ERR_VALIDATION && err.param != NULL,
                   "api_query refused with code %d", err.code);
        return;
    }
    for (size_t i = 0; i < call.query.n; i++)
        FUZZ_CHECK(known_key(call.query.items[i].key),
                   "api_query took unknown %.80s", call.query.items[i].key);
    FUZZ_CHECK(out.page.limit >= 1 && out.page.limit <= cfg->max_page_limit &&
                   out.page.offset >= 0 && out.page.offset <= cfg->max_offset,
               "page %lld/%lld", (long long)out.page.limit,
               (long long)out.page.offset);
    FUZZ_CHECK(out.n == 99 || (out.n >= -5 && out.n <= 5), "n %lld",
               (long long)out.n);
    FUZZ_CHECK(out.b == 9 || out.b == 0 || out.b == 1, "b %d", out.b);
    FUZZ_CHECK(out.e == 9 || out.e == 0 || out.e == 1, "e %d", out.e);
    FUZZ_CHECK(out.s == NULL ||
                   (out.s[0] != '\0' && utf8_count(out.s, strlen(out.s)) <= 8),
               "s %.80s", out.s);
    FUZZ_CHECK(out.name == NULL || (out.name[0] != '\0' &&
                                    utf8_count(out.name, strlen(out.name)) <=
                                        (size_t)cfg->max_name_chars),
               "name %.80s", out.name);
}

static void
check_if_match(const char *value)
{
    struct error err = ERROR_INIT;
    int64_t version = 0;

    if (api_if_match(value, &version, &err))
        FUZZ_CHECK(version >= 1 || version == IF_MATCH_ANY ||
                       version == IF_MATCH_NEVER,
                   "If-Match %.80s gave %lld", value, (long long)version);
    else
        FUZZ_CHECK(err.code == ERR_VALIDATION && err.param != NULL &&
                       strcmp(err.param, "If-Match") == 0,
                   "If-Match refused with code %d", err.code);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum http_method method =
        (enum http_method)(size > 0 ? data[0] % HTTP_METHOD_COUNT : 0);
    struct config cfg;
    struct arena a;
    struct router_match m;
    struct query q;
    struct error err = ERROR_INIT;
    char *target, *path, *query;

    arena_init(&a, 16 * 1024);
    memset(&cfg, 0, sizeof(cfg));
    cfg.max_page_limit = 200;
    cfg.max_offset = 100000;
    cfg.max_name_chars = 16;
    target = fuzz_cstr(&a, data + (size > 0), size > 0 ? size - 1 : 0);
    path = target;
    query = strchr(target, '?');
    if (query != NULL)
        *query++ = '\0';
    else
        query = path + strlen(path);

    memset(&m, 0, sizeof(m));
    if (router_match(api_routes, api_nroutes, method, path, &a, &m, &err)) {
        FUZZ_CHECK(err.code == ERR_NONE, "matched with an error set");
        check_match(method, path, &m);
    } else {
        FUZZ_CHECK(m.route == NULL, "refused with a route");
        FUZZ_CHECK(err.code == ERR_NOT_FOUND ||
                       err.code == ERR_METHOD_NOT_ALLOWED,
                   "router failed with code %d", err.code);
        if (err.code == ERR_METHOD_NOT_ALLOWED)
            check_allow(method, &m);
    }

    error_clear(&err);
    if (query_parse(&q, query, &a, &err)) {
        FUZZ_CHECK(q.n <= 64, "%zu pairs", q.n);
        for (size_t i = 0; i < q.n; i++) {
            const char *k = q.items[i].key, *v = q.items[i].value;

            FUZZ_CHECK(k[0] != '\0' && utf8_valid(k, strlen(k)), "bad key");
            FUZZ_CHECK(utf8_valid(v, strlen(v)) || v[0] == '\0', "bad value");
            size_t n = strlen(k);
            /* only a list key ("include[]") may repeat */
            bool list = n > 2 && k[n - 2] == '[' && k[n - 1] == ']';

            for (size_t j = 0; j < i && !list; j++)
                FUZZ_CHECK(strcmp(k, q.items[j].key) != 0, "key twice: %s", k);
        }
        check_getters(&q);
    } else {
        FUZZ_CHECK(err.code == ERR_VALIDATION, "query refused with code %d",
                   err.code);
    }
    check_paging(&cfg, query, &a);
    check_query_table(&cfg, query, &a);
    check_if_match(query);
    arena_release(&a);
    return 0;
}

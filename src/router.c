#include <stdio.h>
#include <string.h>

#include "router.h"
#include "url.h"
#include "banned.h"

/*
 * Path rules, beyond what router.h says:
 *   - The path must start with '/'.  One trailing '/' is ignored, so
 *     "/api/agent-sessions/" is "/api/agent-sessions" (clients add it
 *     often, and no two of our resources differ by it).
 *   - An empty segment ("//", or a second trailing '/') matches nothing:
 *     it has no meaning here, and accepting it would give one resource
 *     many names.
 *   - Segments are decoded before matching, literals too, so
 *     "/api/agent%2Dsessions" is the same resource (RFC 3986 6.2.2.2).
 *   - At most ROUTER_MAX_SEGMENTS segments; a longer path matches nothing.
 * Among the patterns the path matches, the one whose first differing
 * segment is literal wins; only that pattern's routes are then asked
 * about the method, so DELETE /api/agent-sessions/stats is a 405 (stats
 * is no session), not a delete of a session called "stats".
 */

struct segments {
    size_t n;
    const char *s[ROUTER_MAX_SEGMENTS]; /* decoded, NUL-terminated */
    size_t len[ROUTER_MAX_SEGMENTS];    /* strlen(s[i]) */
};

static bool
split_path(const char *path, struct arena *a, struct segments *segs)
{
    const char *p, *end;
    size_t len;

    segs->n = 0;
    if (path == NULL || path[0] != '/')
        return false;
    len = strlen(path);
    /* Drop one trailing '/', but not from "//" or "/a//", whose empty
     * segment must still refuse them. */
    if (len > 1 && path[len - 1] == '/' && path[len - 2] != '/')
        len--;
    end = path + len;
    p = path + 1;
    if (p == end)
        return true; /* "/" */
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash != NULL ? slash : end;

        if (seg_end == p || segs->n == ROUTER_MAX_SEGMENTS)
            return false;
        segs->s[segs->n] = url_decode(a, p, (size_t)(seg_end - p), false);
        if (segs->s[segs->n] == NULL)
            return false;
        segs->len[segs->n] = strlen(segs->s[segs->n]);
        segs->n++;
        if (slash == NULL)
            return true;
        p = slash + 1;
    }
}

/* Matches a pattern against decoded segments.  Returns false if it does
 * not match; else true with *rank set: bit (ROUTER_MAX_SEGMENTS - 1 - i)
 * is set when segment i is literal, so a higher rank means the earliest
 * difference is a literal. */
static bool
pattern_match(const char *pattern, const struct segments *segs, unsigned *rank)
{
    const char *p = pattern;
    size_t i = 0, params = 0;

    *rank = 0;
    if (p[0] != '/')
        return false;
    p++;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);

        if (i == segs->n)
            return false;
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (++params > ROUTER_MAX_PARAMS)
                return false;
        } else {
            if (segs->len[i] != len || memcmp(segs->s[i], p, len) != 0)
                return false;
            *rank |= 1u << (ROUTER_MAX_SEGMENTS - 1 - i);
        }
        i++;
        p += len + (slash != NULL);
    }
    return i == segs->n;
}

static void
fill_params(const char *pattern, const struct segments *segs, struct arena *a,
            struct route_params *params)
{
    const char *p = pattern + 1;
    size_t i = 0;

    params->n = 0;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);

        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            params->p[params->n].name = arena_strndup(a, p + 1, len - 2);
            params->p[params->n].value = segs->s[i];
            params->n++;
        }
        i++;
        p += len + (slash != NULL);
    }
}

/* The Allow header: the methods of the winning pattern in enum order
 * (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS).  HEAD is answered for
 * every GET route but only listed when a route names it, so Allow reads
 * "GET, PATCH, DELETE". */
static void
fill_allow(unsigned methods, char *allow, size_t size)
{
    static const char *const names[HTTP_METHOD_COUNT] = {
        [HTTP_GET] = "GET",         [HTTP_HEAD] = "HEAD",
        [HTTP_POST] = "POST",       [HTTP_PUT] = "PUT",
        [HTTP_PATCH] = "PATCH",     [HTTP_DELETE] = "DELETE",
        [HTTP_OPTIONS] = "OPTIONS",
    };
    size_t len = 0;

    allow[0] = '\0';
    for (int m = 0; m < HTTP_METHOD_COUNT; m++) {
        int w;

        if (!(methods & 1u << m) || names[m] == NULL || len >= size)
            continue;
        w = snprintf(allow + len, size - len, "%s%s", len > 0 ? ", " : "",
                     names[m]);
        len += w > 0 ? (size_t)w : 0;
    }
}

bool
router_match(const struct route *routes, size_t n, enum http_method method,
             const char *path, struct arena *a, struct router_match *m,
             struct error *err)
{
    struct segments segs;
    unsigned rank, best_rank = 0, methods = 0;
    bool any = false;
    const struct route *exact = NULL, *fallback = NULL;

    m->route = NULL;
    m->params.n = 0;
    m->allow[0] = '\0';
    if (!split_path(path, a, &segs))
        return error_set(err, ERR_NOT_FOUND, NULL, "not found");

    /* One pass: the routes of the best rank seen so far, reset when a
     * better one matches. */
    for (size_t i = 0; i < n; i++) {
        if (!pattern_match(routes[i].pattern, &segs, &rank) ||
            (any && rank < best_rank))
            continue;
        if (!any || rank > best_rank) {
            best_rank = rank;
            any = true;
            methods = 0;
            exact = fallback = NULL;
        }
        methods |= 1u << routes[i].method;
        if (routes[i].method == method && exact == NULL)
            exact = &routes[i];
        else if (method == HTTP_HEAD && routes[i].method == HTTP_GET &&
                 fallback == NULL)
            fallback = &routes[i];
    }
    if (!any)
        return error_set(err, ERR_NOT_FOUND, NULL, "not found");
    m->route = exact != NULL ? exact : fallback;
    if (m->route == NULL) {
        fill_allow(methods, m->allow, sizeof(m->allow));
        return error_set(err, ERR_METHOD_NOT_ALLOWED, NULL,
                         "method not allowed");
    }
    fill_params(m->route->pattern, &segs, a, &m->params);
    return true;
}

const char *
router_param(const struct router_match *m, const char *name)
{
    for (size_t i = 0; i < m->params.n; i++)
        if (strcmp(m->params.p[i].name, name) == 0)
            return m->params.p[i].value;
    return NULL;
}

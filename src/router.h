/*
 * router.h - routes as a const table (nginx, kore).
 *
 * A pattern is a path of literal segments and `{name}` segments, e.g.
 * "/api/agent-sessions/{session_id}/messages/{message_id}".  Literal
 * segments win over parameters, so "/api/agent-sessions/stats" never
 * reaches the "{session_id}" route.  A path that matches some pattern but
 * not with this method is a 405 whose Allow header lists the methods that
 * would match; a path that matches no pattern is a 404.  Parameters are
 * percent-decoded per segment (a decoded '/' stays inside its segment);
 * an invalid escape, a NUL, or invalid UTF-8 makes the path match nothing.
 */
#ifndef PARLEY_ROUTER_H
#define PARLEY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "error.h"
#include "http.h"

#define ROUTER_MAX_PARAMS   4
#define ROUTER_MAX_SEGMENTS 12

struct route_params {
    size_t n;
    struct {
        const char *name;  /* from the pattern */
        const char *value; /* decoded, arena */
    } p[ROUTER_MAX_PARAMS];
};

struct api_call;

/* What a route runs (api.h): true, or false with err saying what to
 * answer. */
typedef bool route_handler(struct api_call *call, struct error *err);

/* One row per route, handler and all (git's commands[], redis's command
 * table).  A row's place in its table is its index for metrics.h. */
struct route {
    enum http_method method;
    const char *pattern;
    route_handler *handler; /* the router does not call it */
    unsigned flags;         /* the caller's; the router does not read them */
};

struct router_match {
    const struct route *route; /* NULL when not matched */
    struct route_params params;
    char allow[64]; /* "GET, PATCH, DELETE" on 405 */
};

/* Matches method and raw path against routes[0..n).  Returns true with
 * m->route set; false with err = ERR_NOT_FOUND or ERR_METHOD_NOT_ALLOWED
 * (and m->allow filled).  HEAD matches GET routes. */
bool router_match(const struct route *routes, size_t n, enum http_method method,
                  const char *path, struct arena *a, struct router_match *m,
                  struct error *err);

/* The decoded value of a named parameter, or NULL. */
const char *router_param(const struct router_match *m, const char *name);

#endif

/*
 * check_router.c - matching, 404 against 405, Allow, HEAD, literal over
 * parameter, percent-decoding.
 */
#include <string.h>

#include "router.h"
#include "suites.h"

enum {
    H_LIST = 1,
    H_CREATE,
    H_STATS,
    H_IMPORT,
    H_CONVERSATION,
    H_GET,
    H_PATCH,
    H_DELETE,
    H_ACTIVATE,
    H_DEACTIVATE,
    H_END,
    H_HEALTH,
    H_EXPORT,
    H_MSG_LIST,
    H_MSG_APPEND,
    H_MSG_GET,
    H_MSG_PATCH,
    H_MSG_DELETE,
    H_CLEAR,
    H_CONTEXT,
    H_MEM_LIST,
    H_MEM_GET,
    H_MEM_PUT,
    H_MEM_DELETE,
    H_CLEANUP,
    H_HEALTHZ,
    H_READYZ,
};

#define S   "/api/agent-sessions"
#define SID S "/{session_id}"

/* Shaped like the real table: the order does not decide precedence. */
static const struct route routes[] = {
    {HTTP_GET, S, NULL, H_LIST},
    {HTTP_POST, S, NULL, H_CREATE},
    {HTTP_GET, SID, NULL, H_GET},
    {HTTP_PATCH, SID, NULL, H_PATCH},
    {HTTP_DELETE, SID, NULL, H_DELETE},
    {HTTP_GET, S "/stats", NULL, H_STATS},
    {HTTP_POST, S "/import", NULL, H_IMPORT},
    {HTTP_POST, S "/conversation", NULL, H_CONVERSATION},
    {HTTP_PUT, SID "/activate", NULL, H_ACTIVATE},
    {HTTP_PUT, SID "/deactivate", NULL, H_DEACTIVATE},
    {HTTP_POST, SID "/end", NULL, H_END},
    {HTTP_GET, SID "/health", NULL, H_HEALTH},
    {HTTP_GET, SID "/export", NULL, H_EXPORT},
    {HTTP_GET, SID "/messages", NULL, H_MSG_LIST},
    {HTTP_POST, SID "/messages", NULL, H_MSG_APPEND},
    {HTTP_DELETE, SID "/messages/{message_id}", NULL, H_MSG_DELETE},
    {HTTP_PATCH, SID "/messages/{message_id}", NULL, H_MSG_PATCH},
    {HTTP_GET, SID "/messages/{message_id}", NULL, H_MSG_GET},
    {HTTP_DELETE, SID "/clear-messages", NULL, H_CLEAR},
    {HTTP_GET, SID "/context", NULL, H_CONTEXT},
    {HTTP_GET, SID "/memory", NULL, H_MEM_LIST},
    {HTTP_GET, SID "/memory/{key}", NULL, H_MEM_GET},
    {HTTP_PUT, SID "/memory/{key}", NULL, H_MEM_PUT},
    {HTTP_DELETE, SID "/memory/{key}", NULL, H_MEM_DELETE},
    {HTTP_POST, "/api/admin/cleanup", NULL, H_CLEANUP},
    {HTTP_GET, "/healthz", NULL, H_HEALTHZ},
    {HTTP_GET, "/readyz", NULL, H_READYZ},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static struct arena arena;

static void
setup(void)
{
    arena_init(&arena, 0);
}

static void
teardown(void)
{
    arena_release(&arena);
}

/* The router neither calls a row's handler nor reads its flags, so each
 * row here is tagged by its flags.  Matches and returns the tag, 0 for
 * 404, -1 for 405. */
static int
match(enum http_method method, const char *path, struct router_match *m)
{
    struct error err = ERROR_INIT;

    if (router_match(routes, NROUTES, method, path, &arena, m, &err)) {
        ck_assert_ptr_nonnull(m->route);
        ck_assert_int_eq(err.code, ERR_NONE);
        ck_assert_str_eq(m->allow, "");
        return (int)m->route->flags;
    }
    ck_assert_ptr_null(m->route);
    if (err.code == ERR_NOT_FOUND) {
        ck_assert_str_eq(m->allow, "");
        ck_assert_int_eq(error_http_status(err.code), 404);
        return 0;
    }
    ck_assert_int_eq(err.code, ERR_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(error_http_status(err.code), 405);
    ck_assert_str_ne(m->allow, "");
    return -1;
}

START_TEST(test_matches_routes)
{
    static const struct {
        enum http_method method;
        const char *path;
        int handler;
    } cases[] = {
        {HTTP_GET, S, H_LIST},
        {HTTP_POST, S, H_CREATE},
        {HTTP_GET, S "/abc", H_GET},
        {HTTP_PATCH, S "/abc", H_PATCH},
        {HTTP_DELETE, S "/abc", H_DELETE},
        {HTTP_PUT, S "/abc/activate", H_ACTIVATE},
        {HTTP_PUT, S "/abc/deactivate", H_DEACTIVATE},
        {HTTP_POST, S "/abc/end", H_END},
        {HTTP_GET, S "/abc/health", H_HEALTH},
        {HTTP_GET, S "/abc/export", H_EXPORT},
        {HTTP_GET, S "/abc/messages", H_MSG_LIST},
        {HTTP_POST, S "/abc/messages", H_MSG_APPEND},
        {HTTP_GET, S "/abc/messages/m1", H_MSG_GET},
        {HTTP_PATCH, S "/abc/messages/m1", H_MSG_PATCH},
        {HTTP_DELETE, S "/abc/messages/m1", H_MSG_DELETE},
        {HTTP_DELETE, S "/abc/clear-messages", H_CLEAR},
        {HTTP_GET, S "/abc/context", H_CONTEXT},
        {HTTP_GET, S "/abc/memory", H_MEM_LIST},
        {HTTP_PUT, S "/abc/memory/k", H_MEM_PUT},
        {HTTP_POST, "/api/admin/cleanup", H_CLEANUP},
        {HTTP_GET, "/healthz", H_HEALTHZ},
        {HTTP_GET, "/readyz", H_READYZ},
    };
    struct router_match m;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(match(cases[i].method, cases[i].path, &m) ==
                          cases[i].handler,
                      "%s", cases[i].path);
}
END_TEST

START_TEST(test_params)
{
    struct router_match m;

    ck_assert_int_eq(match(HTTP_GET, S "/sess-1.a:b_c/messages/m-9", &m),
                     H_MSG_GET);
    ck_assert_uint_eq(m.params.n, 2);
    ck_assert_str_eq(m.params.p[0].name, "session_id");
    ck_assert_str_eq(m.params.p[0].value, "sess-1.a:b_c");
    ck_assert_str_eq(m.params.p[1].name, "message_id");
    ck_assert_str_eq(m.params.p[1].value, "m-9");
    ck_assert_str_eq(router_param(&m, "session_id"), "sess-1.a:b_c");
    ck_assert_str_eq(router_param(&m, "message_id"), "m-9");
    ck_assert_ptr_null(router_param(&m, "key"));
    ck_assert_ptr_null(router_param(&m, "session"));

    ck_assert_int_eq(match(HTTP_GET, S, &m), H_LIST);
    ck_assert_uint_eq(m.params.n, 0);
    ck_assert_ptr_null(router_param(&m, "session_id"));

    ck_assert_int_eq(match(HTTP_DELETE, S "/s/memory/k%3A1", &m), H_MEM_DELETE);
    ck_assert_str_eq(router_param(&m, "session_id"), "s");
    ck_assert_str_eq(router_param(&m, "key"), "k:1");
}
END_TEST

START_TEST(test_literal_beats_param)
{
    struct router_match m;

    ck_assert_int_eq(match(HTTP_GET, S "/stats", &m), H_STATS);
    ck_assert_uint_eq(m.params.n, 0);
    ck_assert_int_eq(match(HTTP_POST, S "/import", &m), H_IMPORT);
    ck_assert_int_eq(match(HTTP_POST, S "/conversation", &m), H_CONVERSATION);
    /* stats, import and conversation are resources of their own, so
     * methods of the {session_id} route do not reach them. */
    ck_assert_int_eq(match(HTTP_DELETE, S "/stats", &m), -1);
    ck_assert_str_eq(m.allow, "GET");
    ck_assert_int_eq(match(HTTP_GET, S "/import", &m), -1);
    ck_assert_str_eq(m.allow, "POST");
    ck_assert_int_eq(match(HTTP_PATCH, S "/conversation", &m), -1);
    ck_assert_str_eq(m.allow, "POST");
    /* Below them the parameter is an ordinary segment again. */
    ck_assert_int_eq(match(HTTP_GET, S "/stats/messages", &m), H_MSG_LIST);
    ck_assert_str_eq(router_param(&m, "session_id"), "stats");
    /* Near misses are parameters. */
    ck_assert_int_eq(match(HTTP_GET, S "/statsx", &m), H_GET);
    ck_assert_int_eq(match(HTTP_GET, S "/Stats", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "Stats");
}
END_TEST

START_TEST(test_literal_beats_param_whatever_the_order)
{
    static const struct route table[] = {
        {HTTP_GET, "/a/{x}/c", NULL, 1},
        {HTTP_GET, "/a/{x}/{y}", NULL, 2},
        {HTTP_GET, "/a/b/{y}", NULL, 3},
        {HTTP_GET, "/{w}/b/c", NULL, 4},
    };
    struct router_match m;
    struct error err = ERROR_INIT;

    /* The leftmost literal decides: /a/b/{y} over /a/{x}/c. */
    ck_assert(router_match(table, 4, HTTP_GET, "/a/b/c", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 3);
    ck_assert(router_match(table, 4, HTTP_GET, "/a/z/c", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 1);
    ck_assert(router_match(table, 4, HTTP_GET, "/a/z/q", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 2);
    ck_assert(router_match(table, 4, HTTP_GET, "/q/b/c", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 4);
    ck_assert_str_eq(router_param(&m, "w"), "q");
}
END_TEST

START_TEST(test_not_found)
{
    static const char *const paths[] = {
        "",
        "api/agent-sessions",
        "/",
        "/api",
        "/api/agent-sessionsx",
        "/api/agent-sessions/abc/unknown",
        "/api/agent-sessions/abc/messages/m1/extra",
        "/api/admin",
        "/healthz/x",
        "/api//agent-sessions",
        "//api/agent-sessions",
        "/api/agent-sessions//",
        "/api/agent-sessions//abc",
        "/api/agent-sessions/abc//messages",
        "/api/agent-sessions/abc/messages//",
        "//",
        "/HEALTHZ",
    };
    struct router_match m;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        for (int meth = HTTP_GET; meth <= HTTP_OTHER; meth++)
            ck_assert_msg(match((enum http_method)meth, paths[i], &m) == 0,
                          "%s", paths[i]);
}
END_TEST

START_TEST(test_null_path_not_found)
{
    struct router_match m;
    struct error err = ERROR_INIT;

    ck_assert(!router_match(routes, NROUTES, HTTP_GET, NULL, &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    static const struct {
        enum http_method method;
        const char *path;
        const char *allow;
    } cases[] = {
        {HTTP_PUT, S "/abc", "GET, PATCH, DELETE"},
        {HTTP_POST, S "/abc", "GET, PATCH, DELETE"},
        {HTTP_OPTIONS, S "/abc", "GET, PATCH, DELETE"},
        {HTTP_OTHER, S "/abc", "GET, PATCH, DELETE"},
        {HTTP_DELETE, S, "GET, POST"},
        {HTTP_PATCH, S, "GET, POST"},
        {HTTP_GET, S "/abc/activate", "PUT"},
        {HTTP_POST, S "/abc/deactivate", "PUT"},
        {HTTP_GET, S "/abc/end", "POST"},
        {HTTP_PUT, S "/abc/messages", "GET, POST"},
        {HTTP_POST, S "/abc/messages/m1", "GET, PATCH, DELETE"},
        {HTTP_GET, S "/abc/clear-messages", "DELETE"},
        {HTTP_POST, S "/abc/memory/k", "GET, PUT, DELETE"},
        {HTTP_GET, "/api/admin/cleanup", "POST"},
        {HTTP_HEAD, "/api/admin/cleanup", "POST"},
        {HTTP_POST, "/healthz", "GET"},
        {HTTP_DELETE, "/readyz/", "GET"},
    };
    struct router_match m;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(match(cases[i].method, cases[i].path, &m) == -1, "%s",
                      cases[i].path);
        ck_assert_str_eq(m.allow, cases[i].allow);
    }
}
END_TEST

START_TEST(test_allow_lists_explicit_head_and_options)
{
    static const struct route table[] = {
        {HTTP_OPTIONS, "/x", NULL, 1}, {HTTP_DELETE, "/x", NULL, 2},
        {HTTP_HEAD, "/x", NULL, 3},    {HTTP_GET, "/x", NULL, 4},
        {HTTP_PUT, "/x", NULL, 5},     {HTTP_POST, "/x", NULL, 6},
        {HTTP_PATCH, "/x", NULL, 7},
    };
    static const struct route small[] = {{HTTP_POST, "/x", NULL, 6}};
    struct router_match m;
    struct error err = ERROR_INIT;

    ck_assert(!router_match(table, 7, HTTP_OTHER, "/x", &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    /* An explicit HEAD route beats the GET one for HEAD. */
    ck_assert(router_match(table, 7, HTTP_HEAD, "/x", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 3);
    ck_assert(router_match(table, 7, HTTP_GET, "/x", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 4);
    ck_assert(!router_match(small, 1, HTTP_GET, "/x", &arena, &m, &err));
    ck_assert_str_eq(m.allow, "POST");
}
END_TEST

START_TEST(test_head_matches_get)
{
    struct router_match m;

    ck_assert_int_eq(match(HTTP_HEAD, S "/abc", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "abc");
    ck_assert_int_eq(match(HTTP_HEAD, S, &m), H_LIST);
    ck_assert_int_eq(match(HTTP_HEAD, "/healthz", &m), H_HEALTHZ);
    ck_assert_int_eq(match(HTTP_HEAD, S "/stats", &m), H_STATS);
    ck_assert_int_eq(match(HTTP_HEAD, S "/abc/activate", &m), -1);
    ck_assert_str_eq(m.allow, "PUT");
    ck_assert_int_eq(match(HTTP_HEAD, "/nowhere", &m), 0);
}
END_TEST

START_TEST(test_trailing_slash)
{
    struct router_match m;

    ck_assert_int_eq(match(HTTP_GET, S "/", &m), H_LIST);
    ck_assert_int_eq(match(HTTP_POST, S "/", &m), H_CREATE);
    ck_assert_int_eq(match(HTTP_GET, S "/abc/", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "abc");
    ck_assert_int_eq(match(HTTP_GET, S "/stats/", &m), H_STATS);
    ck_assert_int_eq(match(HTTP_GET, "/healthz/", &m), H_HEALTHZ);
    ck_assert_int_eq(match(HTTP_PUT, S "/abc/", &m), -1);
    ck_assert_str_eq(m.allow, "GET, PATCH, DELETE");
    /* Only one. */
    ck_assert_int_eq(match(HTTP_GET, S "//", &m), 0);
    ck_assert_int_eq(match(HTTP_GET, "/healthz//", &m), 0);
}
END_TEST

START_TEST(test_root_pattern)
{
    static const struct route table[] = {{HTTP_GET, "/", NULL, 1}};
    struct router_match m;
    struct error err = ERROR_INIT;

    ck_assert(router_match(table, 1, HTTP_GET, "/", &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 1);
    ck_assert(!router_match(table, 1, HTTP_GET, "//", &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(!router_match(table, 1, HTTP_GET, "/a", &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
    ck_assert(!router_match(table, 1, HTTP_POST, "/", &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(m.allow, "GET");
}
END_TEST

START_TEST(test_percent_decoding)
{
    struct router_match m;

    ck_assert_int_eq(match(HTTP_GET, S "/a%20b", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "a b");
    /* '+' is not a space in a path. */
    ck_assert_int_eq(match(HTTP_GET, S "/a+b", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "a+b");
    /* A decoded '/' stays inside its segment. */
    ck_assert_int_eq(match(HTTP_GET, S "/a%2Fb/messages", &m), H_MSG_LIST);
    ck_assert_str_eq(router_param(&m, "session_id"), "a/b");
    ck_assert_int_eq(match(HTTP_GET, S "/a%2fb", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "a/b");
    /* Hex digits in either case; multi-byte UTF-8. */
    ck_assert_int_eq(match(HTTP_GET, S "/%41%62%63", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "Abc");
    ck_assert_int_eq(match(HTTP_GET, S "/caf%c3%a9", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "caf\xc3\xa9");
    ck_assert_int_eq(match(HTTP_GET, S "/%F0%9F%98%80", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "\xf0\x9f\x98\x80");
    /* Raw UTF-8 is as good as escaped. */
    ck_assert_int_eq(match(HTTP_GET, S "/caf\xc3\xa9", &m), H_GET);
    /* "%25" is a literal percent and is not decoded twice. */
    ck_assert_int_eq(match(HTTP_GET, S "/a%2541", &m), H_GET);
    ck_assert_str_eq(router_param(&m, "session_id"), "a%41");
    /* Literal segments compare decoded. */
    ck_assert_int_eq(match(HTTP_GET, "/api/agent%2Dsessions/%73tats", &m),
                     H_STATS);
    ck_assert_int_eq(match(HTTP_GET, "/api/agent%2dsessions", &m), H_LIST);
}
END_TEST

START_TEST(test_bad_escapes_not_found)
{
    static const char *const bad[] = {
        S "/%",
        S "/a%",
        S "/a%2",
        S "/%zz",
        S "/%2g",
        S "/%g2",
        S "/%00",
        S "/a%00b",
        S "/%ff",
        S "/%c3",
        S "/%c3%28",
        S "/%c0%af",
        S "/%e0%80%af",
        S "/%ed%a0%80",
        S "/%f4%90%80%80",
        S "/%80",
        S "/a\xff",
        S "/abc/messages/%",
        "/api/agent-sessions%",
        "/%/agent-sessions",
    };
    struct router_match m;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(match(HTTP_GET, bad[i], &m) == 0, "%s", bad[i]);
        ck_assert_msg(match(HTTP_PUT, bad[i], &m) == 0, "%s", bad[i]);
    }
}
END_TEST

START_TEST(test_max_segments)
{
    static const struct route table[] = {
        {HTTP_GET, "/1/2/3/4/5/6/7/8/9/10/11/{x}", NULL, 1},
        {HTTP_GET, "/1/2/3/4/5/6/7/8/9/10/11/12/{x}", NULL, 2},
    };
    char deep[4096];
    struct router_match m;
    struct error err = ERROR_INIT;
    size_t len = 0;

    ck_assert_int_eq(ROUTER_MAX_SEGMENTS, 12);
    ck_assert(router_match(table, 2, HTTP_GET, "/1/2/3/4/5/6/7/8/9/10/11/z",
                           &arena, &m, &err));
    ck_assert_int_eq((int)m.route->flags, 1);
    ck_assert_str_eq(router_param(&m, "x"), "z");
    ck_assert(!router_match(table, 2, HTTP_GET, "/1/2/3/4/5/6/7/8/9/10/11/12/z",
                            &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);

    for (int i = 0; i < 1000; i++) {
        deep[len++] = '/';
        deep[len++] = 'a';
    }
    deep[len] = '\0';
    ck_assert(!router_match(table, 2, HTTP_GET, deep, &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_max_params)
{
    static const struct route table[] = {
        {HTTP_GET, "/{a}/{b}/{c}/{d}", NULL, 1},
        {HTTP_GET, "/{a}/{b}/{c}/{d}/{e}", NULL, 2},
    };
    struct router_match m;
    struct error err = ERROR_INIT;

    ck_assert_int_eq(ROUTER_MAX_PARAMS, 4);
    ck_assert(router_match(table, 2, HTTP_GET, "/1/2/3/4", &arena, &m, &err));
    ck_assert_uint_eq(m.params.n, 4);
    ck_assert_str_eq(router_param(&m, "d"), "4");
    /* A pattern with more parameters than fit matches nothing. */
    ck_assert(
        !router_match(table, 2, HTTP_GET, "/1/2/3/4/5", &arena, &m, &err));
    ck_assert_int_eq(err.code, ERR_NOT_FOUND);
}
END_TEST

Suite *
router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_matches_routes);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_literal_beats_param);
    tcase_add_test(tc, test_literal_beats_param_whatever_the_order);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_null_path_not_found);
    tcase_add_test(tc, test_method_not_allowed);
    tcase_add_test(tc, test_allow_lists_explicit_head_and_options);
    tcase_add_test(tc, test_head_matches_get);
    tcase_add_test(tc, test_trailing_slash);
    tcase_add_test(tc, test_root_pattern);
    tcase_add_test(tc, test_percent_decoding);
    tcase_add_test(tc, test_bad_escapes_not_found);
    tcase_add_test(tc, test_max_segments);
    tcase_add_test(tc, test_max_params);
    suite_add_tcase(s, tc);
    return s;
}

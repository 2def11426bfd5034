/*
 * e2e_util.h - what the end-to-end suites (check_e2e.c,
 * check_e2e_messages.c) share.
 *
 * main() calls env_init() once before any test forks; afterwards `env` is
 * read-only.  Every test case runs with case_setup()/case_teardown() as its
 * checked fixture (tcase() adds them), which reset `tc` in the test's own
 * process.  Strings, parsed bodies and responses are owned by the test
 * (tc.arena and tc.held) and stay valid until it ends: nothing returned
 * here is freed by the caller.
 *
 * The expectation macros pass the caller's __LINE__, which failure
 * messages name (Check reports the helper's own line).
 */
#ifndef PARLEY_E2E_UTIL_H
#define PARLEY_E2E_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "e2e_http.h"
#include "json.h"

#define SESSIONS "/api/agent-sessions"
/* What an empty session's memory list and context window answer. */
#define EMPTY_MEMORY                                                           \
    "{\"items\":{},\"limit\":100,\"has_more\":false,\"next_after\":null}"
#define EMPTY_CONTEXT "{\"items\":[],\"tokens\":0,\"has_more\":false}"
/* A whole memory list of the given items (an object's text). */
#define MEMORY_PAGE(items)                                                     \
    "{\"items\":" items ",\"limit\":100,\"has_more\":false,"                   \
    "\"next_after\":null}"
#define JSON_CT "Content-Type: application/json"

/* The environment: set up once in main() before any test forks, read-only
 * afterwards. */
struct e2e_env {
    struct e2e_http_client client;
    struct config cfg;    /* parley's config: mints tokens */
    char *url;            /* nginx */
    char *secret;         /* HS256 secret, or NULL: the config's */
    char *bin;            /* parley binary, or NULL */
    char *config_path;    /* parley's config file, or NULL */
    unsigned *next_block; /* shared with forked tests (mmap) */
};

extern struct e2e_env env;

/* Per-test state.  Check's test functions take no arguments, so what one
 * test needs lives here. */
struct e2e_case {
    unsigned block;     /* source addresses 127.(1 + block/256).(block%256).x */
    unsigned nreq;      /* rotates x */
    struct arena arena; /* parsed bodies and strings, freed at teardown */
    struct e2e_http_response **held;
    size_t nheld;
};

extern struct e2e_case tc;

struct user {
    const char *name;
    const char *token;
};

struct resp {
    int status;
    const char *method;
    const char *target;
    const struct e2e_http_response *raw;
    const char *body;
    size_t body_len;
    const struct json_value *json; /* NULL when the body is not JSON */
};

/* Marks an expectation that accepts any code or param.  Compared by
 * address, so there is exactly one (in e2e_util.c). */
extern const char e2e_any[];
#define ANY e2e_any

/* The suites check_e2e's main() runs besides its own. */
Suite *e2e_messages_suite(void);
Suite *e2e_export_suite(void); /* check_e2e_export.c */
Suite *e2e_admin_suite(void);
Suite *e2e_attack_suite(void); /* check_e2e_attack.c */
Suite *e2e_openai_suite(void); /* check_e2e_openai.c */

/* Reads PARLEY_E2E_* (see check_e2e.c), loads parley's config and maps the
 * address-block counter.  Returns -1 with a message on stderr. */
int env_init(void);
void env_release(void);

/* A test case with the per-test fixture and a timeout (seconds). */
TCase *tcase(Suite *s, const char *name, double timeout);
void case_setup(void);
void case_teardown(void);
/* A source address of this test's block; host 1..250. */
const char *case_source(unsigned host);

/* Strings (arena memory, valid until the test ends). */
const char *str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *rep(const char *unit, size_t n); /* unit repeated n times */
const char *uniq(const char *tag);           /* "<tag>-<12 random hex>" */
const char *b64url(const void *data, size_t len);
const char *b64url_str(const char *s);

/* Users and tokens. */
const char *mint(const struct config *cfg, const char *sub, int64_t now,
                 int64_t ttl);
/* A fresh user with a token valid for an hour. */
struct user user_new(const char *tag);

/* Requests.  Each waits for the response, checks what holds for every
 * response (it arrived, no 5xx, X-Request-Id, JSON Content-Type when there
 * is a body, the body parses) and keeps it until the test ends. */
const char *hdr(const struct resp *r, const char *name);
/* Takes ownership of raw (calloc'd). */
struct resp wrap(const char *method, const char *target,
                 struct e2e_http_response *raw);
/* req as given, plus u's token (u NULL: none) and the next source
 * address. */
struct resp send_req(const struct user *u, struct e2e_http_request req);
/* hdrs: extra lines, NULL-terminated, or NULL.  No Content-Type is added. */
struct resp send_raw(const struct user *u, const char *method,
                     const char *target, const char *const *hdrs,
                     const char *body, size_t body_len);
/* A JSON body with its Content-Type (body NULL: none). */
struct resp api(const struct user *u, const char *method, const char *target,
                const char *body);
/* The same with one more header line. */
struct resp api_h(const struct user *u, const char *method, const char *target,
                  const char *header, const char *body);
/* A request with exactly the given Authorization value (NULL: none). */
struct resp with_auth(const char *authorization, const char *method,
                      const char *target);

/* JSON access.  Each fails the test when the field is missing or has
 * another type. */
const struct json_value *jget(const struct json_value *o, const char *key,
                              enum json_type want);
const char *jstr(const struct json_value *o, const char *key);
int64_t jint(const struct json_value *o, const char *key);
bool jbool(const struct json_value *o, const char *key);
bool jis_null(const struct json_value *o, const char *key);
const struct json_value *jobj(const struct json_value *o, const char *key);
const struct json_value *jarr(const struct json_value *o, const char *key);
/* A string field or NULL when it is JSON null. */
const char *jstr_or_null(const struct json_value *o, const char *key);
const char *json_text(const struct json_value *v);
/* Structural equality; object members compare regardless of order. */
bool json_same(const struct json_value *a, const struct json_value *b);
/* A JSON literal the test wrote; fails the test if it does not parse. */
const struct json_value *parse(const char *text);

bool is_uuid(const char *s);
bool is_timestamp(const char *s); /* 2026-11-21T05:19:49.123Z */

/* Expectations. */
#define expect_json(v, text) expect_json_at(__LINE__, (v), (text))
void expect_json_at(int line, const struct json_value *v, const char *text);

#define expect_status(r, st) expect_status_at(__LINE__, &(r), (st))
void expect_status_at(int line, const struct resp *r, int status);

/* Whether a request target is under /v1 (OpenAI's Conversations API). */
bool e2e_is_v1(const char *target);

/* The contract's error body: {"error":{"status","code","message","param"}},
 * or for a /v1 target OpenAI's {"error":{"message","type","param","code"}}
 * with the type of the status.  code/param may be ANY; param NULL means
 * JSON null. */
#define assert_error(r, st, code, param)                                       \
    assert_error_at(__LINE__, &(r), (st), (code), (param))
void assert_error_at(int line, const struct resp *r, int status,
                     const char *code, const char *param);

#define expect_header(r, name, value)                                          \
    expect_header_at(__LINE__, &(r), (name), (value))
void expect_header_at(int line, const struct resp *r, const char *name,
                      const char *value);

/* A session object exactly as the contract shapes it. */
void check_session_shape(int line, const struct json_value *s);
/* A response carrying one session: status, shape, and ETag = version. */
#define expect_session(r, st) expect_session_at(__LINE__, &(r), (st))
const struct json_value *expect_session_at(int line, const struct resp *r,
                                           int status);

/* Sessions. */
/* POST body, expecting 201 and a session. */
#define create(u, body) create_at(__LINE__, (u), (body))
const struct json_value *create_at(int line, const struct user *u,
                                   const char *body);
/* GET, expecting 200 and a session. */
#define get_session(u, sid) get_session_at(__LINE__, (u), (sid))
const struct json_value *get_session_at(int line, const struct user *u,
                                        const char *sid);
/* Creates a session called sid with the given status, through the routes
 * a client would use.  fields: more members for the create body (",..."),
 * or "". */
#define create_in_state(u, sid, status, fields)                                \
    create_in_state_at(__LINE__, (u), (sid), (status), (fields))
const struct json_value *create_in_state_at(int line, const struct user *u,
                                            const char *sid, const char *status,
                                            const char *fields);
const char *session_path(const char *sid);
/* The fields a client can set, compared between two session objects. */
#define expect_same_session(a, b) expect_same_session_at(__LINE__, (a), (b))
void expect_same_session_at(int line, const struct json_value *a,
                            const struct json_value *b);

/* Session lists. */
#define expect_list(r, total, limit, offset, n, more)                          \
    expect_list_at(__LINE__, &(r), (total), (limit), (offset), (n), (more))
const struct json_value *expect_list_at(int line, const struct resp *r,
                                        int64_t total, int64_t limit,
                                        int64_t offset, size_t n,
                                        bool has_more);
/* The list's session_ids are exactly want[0..n) in any order, and total
 * is n. */
#define expect_ids(r, ...)                                                     \
    do {                                                                       \
        const char *want_[] = {__VA_ARGS__};                                   \
        expect_ids_at(__LINE__, &(r), want_, sizeof want_ / sizeof want_[0]);  \
    } while (0)
void expect_ids_at(int line, const struct resp *r, const char *const *want,
                   size_t n);

#endif

/*
 * llm.c - Chat Completions over libcurl's easy interface.
 *
 * Why the easy interface: a worker serves one request at a time, so a
 * blocking transfer is what it wants; the callbacks (body, headers,
 * progress) give every place where the transfer must be watched or
 * stopped.  One easy handle lives as long as the client, so its
 * connection (and TLS session) to the model server is reused from one turn
 * to the next; curl_easy_reset() between transfers clears the options but
 * keeps the connection.
 *
 * The body is read as it arrives: a JSON reply or an error body into a
 * buffer (bounded), server-sent events line by line into the reply being
 * assembled, every piece handed to the caller's delta callback at once.
 * Parsed JSON lives in the client's scratch arena, reset after each event
 * so a long stream does not grow it; what the caller keeps is copied into
 * the caller's arena at the end.
 *
 * Error messages are built from our own words, libcurl's generic
 * curl_easy_strerror() text (never its error buffer, which names hosts)
 * and the model server's error.message with every secret we hold blanked
 * out.  The error buffer's detail goes to the log, as does the status; the
 * model server's own words do not (they may quote the conversation).
 */
#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "json.h"
#include "llm.h"
#include "log.h"
#include "banned.h"

#define LLM_MAX_URL           2048
#define LLM_MAX_KEY_BYTES     4096
#define LLM_MAX_HEADERS_BYTES 16384
#define LLM_MAX_HEADERS       32
#define LLM_MAX_ERROR_BODY    16384
#define LLM_JSON_DEPTH        64
#define LLM_POLL_EVERY_MS     100
#define LLM_SLEEP_SLICE_MS    250
/* A Retry-After beyond this is no hint we could ever follow. */
#define LLM_MAX_RETRY_AFTER_MS (24LL * 3600 * 1000)
/* Room the model server's words get in an error message. */
#define LLM_MAX_SERVER_WORDS 112

struct llm_client {
    CURL *curl;
    char *url; /* base_url + "/chat/completions" */
    char *ca_file;
    char *max_tokens_field;
    /* Request headers for JSON and for event-stream replies; they hold the
     * key and the extra headers, so they are wiped before being freed. */
    struct curl_slist *headers_json;
    struct curl_slist *headers_sse;
    /* The key and every extra header value, blanked out of anything the
     * model server says before it goes into an error message. */
    char **secrets;
    size_t n_secrets;
    int timeout_ms;
    int connect_timeout_ms;
    size_t max_reply;
    struct arena scratch;
};

int
llm_global_init(struct error *err)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (rc != CURLE_OK) {
        error_set(err, ERR_INTERNAL, NULL, "libcurl initialisation failed: %s",
                  curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

void
llm_global_cleanup(void)
{
    curl_global_cleanup();
}

/* --- settings ------------------------------------------------------------ */

static void
wipe_free(char *s, size_t n)
{
    if (s == NULL)
        return;
    /* volatile so the compiler does not drop the stores before free(). */
    for (volatile char *p = s; n > 0; n--)
        *p++ = '\0';
    free(s);
}

static char *
xstrdup(const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        abort();
    return d;
}

static bool
unset(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* Reads at most max bytes of path; the caller wipes and frees.  The error
 * names the setting and the file, never what is in it. */
static char *
read_small(const char *path, size_t max, const char *param, size_t *len,
           struct error *err)
{
    FILE *f = fopen(path, "rb");
    char *data;
    size_t n;

    if (f == NULL) {
        error_set(err, ERR_VALIDATION, param, "%s: cannot open %.80s: %s",
                  param, path, strerror(errno));
        return NULL;
    }
    data = malloc(max + 1);
    if (data == NULL)
        abort();
    n = fread(data, 1, max + 1, f);
    if (ferror(f) || n > max) {
        error_set(err, ERR_VALIDATION, param,
                  "%s: %.80s is unreadable or larger than %zu bytes", param,
                  path, max);
        wipe_free(data, max + 1);
        fclose(f);
        return NULL;
    }
    fclose(f);
    data[n] = '\0';
    *len = n;
    return data;
}

static void
add_secret(struct llm_client *c, const char *s, size_t n)
{
    char *copy;

    /* A value of a byte or two would blank out half of any message. */
    if (n < 4)
        return;
    copy = malloc(n + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, s, n);
    copy[n] = '\0';
    c->secrets = realloc(c->secrets, (c->n_secrets + 1) * sizeof(char *));
    if (c->secrets == NULL)
        abort();
    c->secrets[c->n_secrets++] = copy;
}

static void
add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        abort();
    *list = l;
}

/* Both header lists get the line. */
static void
add_header_both(struct llm_client *c, const char *line)
{
    add_header(&c->headers_json, line);
    add_header(&c->headers_sse, line);
}

static void
wipe_headers(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p != NULL; p = p->next)
        for (volatile char *q = p->data; *q != '\0'; q++)
            *q = '\0';
    curl_slist_free_all(l);
}

static bool
check_url(const char *url, struct error *err)
{
    size_t n = unset(url) ? 0 : strlen(url);
    size_t skip;

    if (n == 0)
        return error_set(err, ERR_VALIDATION, "llm_base_url",
                         "llm_base_url must be set");
    if (n > LLM_MAX_URL)
        return error_set(err, ERR_VALIDATION, "llm_base_url",
                         "llm_base_url is longer than %d bytes", LLM_MAX_URL);
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return error_set(err, ERR_VALIDATION, "llm_base_url",
                         "llm_base_url must start with http:// or https://");
    if (url[skip] == '\0' || url[skip] == '/')
        return error_set(err, ERR_VALIDATION, "llm_base_url",
                         "llm_base_url names no host");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)url[i];

        if (ch <= 0x20 || ch >= 0x7f)
            return error_set(err, ERR_VALIDATION, "llm_base_url",
                             "llm_base_url holds a space or a character "
                             "that is not printable ASCII");
    }
    return true;
}

static bool
load_key(struct llm_client *c, const char *path, struct error *err)
{
    size_t len = 0, cap;
    char *key =
        read_small(path, LLM_MAX_KEY_BYTES, "llm_api_key_file", &len, err);
    struct buf line;
    bool ok = false;

    if (key == NULL)
        return false;
    cap = LLM_MAX_KEY_BYTES + 1;
    /* A trailing newline from `echo > file` is not part of it. */
    while (len > 0 && isspace((unsigned char)key[len - 1]))
        key[--len] = '\0';
    if (len == 0) {
        error_set(err, ERR_VALIDATION, "llm_api_key_file",
                  "llm_api_key_file: %.80s holds no key", path);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)key[i];

        if (ch < 0x21 || ch > 0x7e) {
            error_set(err, ERR_VALIDATION, "llm_api_key_file",
                      "llm_api_key_file: the key in %.80s holds a space or "
                      "a character that is not printable ASCII",
                      path);
            goto done;
        }
    }
    add_secret(c, key, len);
    buf_init(&line);
    buf_adds(&line, "Authorization: Bearer ");
    buf_add(&line, key, len);
    add_header_both(c, line.data);
    wipe_free(buf_detach(&line, NULL), len + 22);
    ok = true;
done:
    wipe_free(key, cap);
    return ok;
}

static bool
token_char(unsigned char ch)
{
    return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool
load_headers(struct llm_client *c, const char *path, bool have_key,
             struct error *err)
{
    static const char *const forbidden[] = {
        "host",       "content-length", "content-type", "transfer-encoding",
        "connection", "expect",
    };
    size_t len = 0, n_headers = 0;
    char *text =
        read_small(path, LLM_MAX_HEADERS_BYTES, "llm_headers_file", &len, err);
    char *p, *next;
    int lineno = 0;
    bool ok = false;

    if (text == NULL)
        return false;
    if (memchr(text, '\0', len) != NULL) {
        error_set(err, ERR_VALIDATION, "llm_headers_file",
                  "llm_headers_file: %.80s holds a NUL byte", path);
        goto done;
    }
    for (p = text; p != NULL && *p != '\0'; p = next) {
        char *end, *colon, *name, *value;
        size_t name_len;

        lineno++;
        next = strchr(p, '\n');
        end = next != NULL ? next : p + strlen(p);
        if (next != NULL)
            *next++ = '\0';
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        colon = strchr(p, ':');
        name = p;
        name_len = colon != NULL ? (size_t)(colon - p) : 0;
        while (name_len > 0 &&
               (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
            name_len--;
        for (size_t i = 0; i < name_len; i++)
            if (!token_char((unsigned char)name[i]))
                name_len = 0;
        if (colon == NULL || name_len == 0) {
            error_set(err, ERR_VALIDATION, "llm_headers_file",
                      "llm_headers_file line %d: expected \"Name: value\"",
                      lineno);
            goto done;
        }
        value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (*value == '\0') {
            error_set(err, ERR_VALIDATION, "llm_headers_file",
                      "llm_headers_file line %d: %.*s has no value", lineno,
                      (int)(name_len > 64 ? 64 : name_len), name);
            goto done;
        }
        for (const char *v = value; *v != '\0'; v++) {
            unsigned char ch = (unsigned char)*v;

            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                error_set(err, ERR_VALIDATION, "llm_headers_file",
                          "llm_headers_file line %d: a control character "
                          "in the value of %.*s",
                          lineno, (int)(name_len > 64 ? 64 : name_len), name);
                goto done;
            }
        }
        for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
            if (strlen(forbidden[i]) == name_len &&
                strncasecmp(name, forbidden[i], name_len) == 0) {
                error_set(err, ERR_VALIDATION, "llm_headers_file",
                          "llm_headers_file line %d: %.*s is set by parley",
                          lineno, (int)name_len, name);
                goto done;
            }
        }
        if (have_key && name_len == 13 &&
            strncasecmp(name, "authorization", 13) == 0) {
            error_set(err, ERR_VALIDATION, "llm_headers_file",
                      "llm_headers_file line %d: Authorization comes from "
                      "llm_api_key_file; set one or the other",
                      lineno);
            goto done;
        }
        if (++n_headers > LLM_MAX_HEADERS) {
            error_set(err, ERR_VALIDATION, "llm_headers_file",
                      "llm_headers_file: more than %d headers",
                      LLM_MAX_HEADERS);
            goto done;
        }
        add_secret(c, value, strlen(value));
        /* "Name: value" as written, the white space around ':' tidied. */
        {
            struct buf line;
            size_t line_len;

            buf_init(&line);
            buf_add(&line, name, name_len);
            buf_adds(&line, ": ");
            buf_adds(&line, value);
            line_len = line.len;
            add_header_both(c, line.data);
            wipe_free(buf_detach(&line, NULL), line_len);
        }
    }
    ok = true;
done:
    wipe_free(text, LLM_MAX_HEADERS_BYTES + 1);
    return ok;
}

static void
client_release(struct llm_client *c)
{
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->url);
    free(c->ca_file);
    free(c->max_tokens_field);
    wipe_headers(c->headers_json);
    wipe_headers(c->headers_sse);
    for (size_t i = 0; i < c->n_secrets; i++)
        wipe_free(c->secrets[i], strlen(c->secrets[i]));
    free(c->secrets);
    arena_release(&c->scratch);
}

/* Everything but the curl handle. */
static bool
client_load(struct llm_client *c, const struct llm_settings *s,
            struct error *err)
{
    size_t n;

    memset(c, 0, sizeof(*c));
    arena_init(&c->scratch, 16384);
    if (!check_url(s->base_url, err))
        return false;
    n = strlen(s->base_url);
    while (n > 0 && s->base_url[n - 1] == '/')
        n--;
    if (asprintf(&c->url, "%.*s/chat/completions", (int)n, s->base_url) < 0)
        abort();
    if (s->timeout_ms <= 0)
        return error_set(err, ERR_VALIDATION, "llm_timeout_ms",
                         "llm_timeout_ms must be positive");
    if (s->connect_timeout_ms < 0)
        return error_set(err, ERR_VALIDATION, "llm_connect_timeout_ms",
                         "llm_connect_timeout_ms must not be negative");
    c->timeout_ms = s->timeout_ms;
    c->connect_timeout_ms = s->connect_timeout_ms > 0
                                ? s->connect_timeout_ms
                                : LLM_DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_reply = s->max_reply_bytes > 0 ? s->max_reply_bytes
                                          : LLM_DEFAULT_MAX_REPLY_BYTES;
    if (unset(s->max_tokens_field)) {
        c->max_tokens_field = xstrdup("max_tokens");
    } else if (strcmp(s->max_tokens_field, "max_tokens") == 0 ||
               strcmp(s->max_tokens_field, "max_completion_tokens") == 0) {
        c->max_tokens_field = xstrdup(s->max_tokens_field);
    } else {
        return error_set(err, ERR_VALIDATION, "llm_max_tokens_field",
                         "llm_max_tokens_field must be max_tokens or "
                         "max_completion_tokens");
    }
    if (!unset(s->ca_file)) {
        if (access(s->ca_file, R_OK) != 0)
            return error_set(err, ERR_VALIDATION, "llm_ca_file",
                             "llm_ca_file: cannot read %.80s: %s", s->ca_file,
                             strerror(errno));
        c->ca_file = xstrdup(s->ca_file);
    }
    add_header(&c->headers_json, "Accept: application/json");
    add_header(&c->headers_sse, "Accept: text/event-stream");
    add_header_both(c, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before a large body. */
    add_header_both(c, "Expect:");
    if (!unset(s->api_key_file) && !load_key(c, s->api_key_file, err))
        return false;
    if (!unset(s->headers_file) &&
        !load_headers(c, s->headers_file, !unset(s->api_key_file), err))
        return false;
    return true;
}

bool
llm_settings_check(const struct llm_settings *s, struct error *err)
{
    struct llm_client c;
    bool ok = client_load(&c, s, err);

    client_release(&c);
    return ok;
}

struct llm_client *
llm_client_new(const struct llm_settings *s, struct error *err)
{
    struct llm_client *c = malloc(sizeof(*c));

    if (c == NULL)
        abort();
    if (!client_load(c, s, err))
        goto fail;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        error_set(err, ERR_INTERNAL, NULL, "curl_easy_init failed");
        goto fail;
    }
    return c;
fail:
    client_release(c);
    free(c);
    return NULL;
}

void
llm_client_free(struct llm_client *c)
{
    if (c == NULL)
        return;
    client_release(c);
    free(c);
}

/* --- the request --------------------------------------------------------- */

static const char *
role_name(enum llm_role r)
{
    switch (r) {
    case LLM_ROLE_SYSTEM:
        return "system";
    case LLM_ROLE_USER:
        return "user";
    case LLM_ROLE_ASSISTANT:
        return "assistant";
    case LLM_ROLE_TOOL:
        return "tool";
    }
    return "user";
}

static void
write_message(struct buf *b, const struct llm_message *m)
{
    buf_addch(b, '{');
    json_write_key(b, "role");
    json_write_cstr(b, role_name(m->role));
    buf_addch(b, ',');
    json_write_key(b, "content");
    if (m->content != NULL)
        json_write_cstr(b, m->content);
    else if (m->role == LLM_ROLE_ASSISTANT)
        json_write_null(b);
    else
        json_write_cstr(b, "");
    if (m->role == LLM_ROLE_ASSISTANT && m->n_tool_calls > 0) {
        buf_addch(b, ',');
        json_write_key(b, "tool_calls");
        buf_addch(b, '[');
        for (size_t i = 0; i < m->n_tool_calls; i++) {
            const struct llm_tool_call *t = &m->tool_calls[i];

            if (i > 0)
                buf_addch(b, ',');
            buf_addch(b, '{');
            json_write_key(b, "id");
            json_write_cstr(b, t->id != NULL ? t->id : "");
            buf_adds(b, ",\"type\":\"function\",");
            json_write_key(b, "function");
            buf_addch(b, '{');
            json_write_key(b, "name");
            json_write_cstr(b, t->name != NULL ? t->name : "");
            buf_addch(b, ',');
            json_write_key(b, "arguments");
            json_write_cstr(b, t->arguments != NULL ? t->arguments : "{}");
            buf_adds(b, "}}");
        }
        buf_addch(b, ']');
    }
    if (m->role == LLM_ROLE_TOOL) {
        buf_addch(b, ',');
        json_write_key(b, "tool_call_id");
        json_write_cstr(b, m->tool_call_id != NULL ? m->tool_call_id : "");
    }
    buf_addch(b, '}');
}

static void
write_request(struct buf *b, const struct llm_client *c,
              const struct llm_request *req)
{
    buf_addch(b, '{');
    json_write_key(b, "model");
    json_write_cstr(b, req->model != NULL ? req->model : "");
    buf_addch(b, ',');
    json_write_key(b, "messages");
    buf_addch(b, '[');
    for (size_t i = 0; i < req->n_messages; i++) {
        if (i > 0)
            buf_addch(b, ',');
        write_message(b, &req->messages[i]);
    }
    buf_addch(b, ']');
    if (req->max_output_tokens > 0) {
        buf_addch(b, ',');
        json_write_key(b, c->max_tokens_field);
        json_write_int(b, req->max_output_tokens);
    }
    if (req->tools != NULL) {
        buf_addch(b, ',');
        json_write_key(b, "tools");
        json_write_value(b, req->tools);
    }
    if (req->tool_choice != NULL) {
        buf_addch(b, ',');
        json_write_key(b, "tool_choice");
        json_write_value(b, req->tool_choice);
    }
    if (req->stream)
        buf_adds(b, ",\"stream\":true,\"stream_options\":"
                    "{\"include_usage\":true}");
    buf_addch(b, '}');
}

/* --- one transfer -------------------------------------------------------- */

struct llm_tool_part {
    struct buf id, name, args;
    bool indexed;       /* the server gave it an index: */
    int64_t wire_index; /* that index */
};

struct llm_xfer {
    struct llm_client *c;
    const struct llm_request *req;
    const struct llm_callbacks *cb;
    struct llm_reply *reply;
    int64_t next_poll_ms;

    /* the answer's head */
    int status; /* from the status line; 0 until it came */
    bool sse;   /* Content-Type: text/event-stream */
    int64_t retry_after_ms;
    int64_t retry_after_ms_hdr; /* from retry-after-ms, which wins */

    /* a JSON reply or an error's body */
    struct buf body;
    bool body_full; /* an error body was cut at LLM_MAX_ERROR_BODY */

    /* server-sent events */
    struct buf line;
    struct buf data;
    bool has_data;
    bool error_event; /* "event: error" */
    bool after_cr;
    bool done; /* "data: [DONE]" */

    /* the reply assembled */
    struct buf content;
    struct llm_tool_part *tools;
    size_t n_tools;
    size_t assembled; /* bytes of text and arguments */
    char finish[64];
    bool has_finish;
    int64_t prompt_tokens;
    int64_t completion_tokens;

    /* why the transfer was stopped from a callback */
    bool stopped;
    struct error stop_err;
};

static void
xfer_init(struct llm_xfer *x, struct llm_client *c,
          const struct llm_request *req, const struct llm_callbacks *cb,
          struct llm_reply *reply)
{
    memset(x, 0, sizeof(*x));
    x->c = c;
    x->req = req;
    x->cb = cb;
    x->reply = reply;
    x->retry_after_ms = -1;
    x->retry_after_ms_hdr = -1;
    x->prompt_tokens = -1;
    x->completion_tokens = -1;
    buf_init(&x->body);
    buf_init(&x->line);
    buf_init(&x->data);
    buf_init(&x->content);
}

static void
xfer_release(struct llm_xfer *x)
{
    buf_release(&x->body);
    buf_release(&x->line);
    buf_release(&x->data);
    buf_release(&x->content);
    for (size_t i = 0; i < x->n_tools; i++) {
        buf_release(&x->tools[i].id);
        buf_release(&x->tools[i].name);
        buf_release(&x->tools[i].args);
    }
    free(x->tools);
}

/* Stops the transfer with an error of our own; returns false. */
static bool
xfer_stop(struct llm_xfer *x, enum error_code code, const char *fmt,
          const char *detail)
{
    if (!x->stopped) {
        error_set(&x->stop_err, code, NULL, fmt, detail);
        x->stopped = true;
    }
    return false;
}

/*
 * The model server's own words for an error: error.message, or error
 * (a string), message or detail; sanitised into out: every secret we hold
 * blanked out, control characters made spaces, cut to fit at a UTF-8
 * boundary.  "" when it said nothing usable.
 */
static void
server_words(const struct llm_client *c, const struct json_value *v, char *out,
             size_t n)
{
    const struct json_value *e = json_get(v, "error"), *m = NULL;
    struct buf b;
    size_t len;

    out[0] = '\0';
    if (e != NULL && e->type == JSON_OBJECT)
        m = json_get(e, "message");
    else if (e != NULL && e->type == JSON_STRING)
        m = e;
    if (m == NULL || m->type != JSON_STRING)
        m = json_get(v, "message");
    if (m == NULL || m->type != JSON_STRING)
        m = json_get(v, "detail");
    if (m == NULL || m->type != JSON_STRING || m->u.s.len == 0)
        return;
    buf_init(&b);
    buf_add(&b, m->u.s.ptr, m->u.s.len);
    for (size_t i = 0; i < c->n_secrets; i++) {
        const char *s = c->secrets[i];
        size_t slen = strlen(s);
        char *hit;

        while ((hit = memmem(b.data, b.len, s, slen)) != NULL) {
            struct buf r;
            size_t at = (size_t)(hit - b.data);

            buf_init(&r);
            buf_add(&r, b.data, at);
            buf_adds(&r, "[redacted]");
            buf_add(&r, hit + slen, b.len - at - slen);
            buf_release(&b);
            b = r;
        }
    }
    len = b.len < n - 1 ? b.len : n - 1;
    /* Never end inside a UTF-8 sequence. */
    if (len < b.len)
        while (len > 0 && ((unsigned char)b.data[len] & 0xc0) == 0x80)
            len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)b.data[i];

        out[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    out[len] = '\0';
    buf_release(&b);
}

static bool
deliver(struct llm_xfer *x, const struct llm_delta *d)
{
    if (!x->req->stream || x->cb == NULL || x->cb->delta == NULL)
        return true;
    x->reply->streamed = true;
    if (!x->cb->delta(x->cb->arg, d, &x->stop_err)) {
        x->stopped = true;
        if (x->stop_err.code == ERR_NONE)
            error_set(&x->stop_err, ERR_INTERNAL, NULL,
                      "the model reply's reader stopped without a reason");
        return false;
    }
    return true;
}

static bool
grow_assembled(struct llm_xfer *x, size_t n)
{
    if (n > x->c->max_reply || x->assembled > x->c->max_reply - n) {
        char limit[32];

        snprintf(limit, sizeof(limit), "%zu", x->c->max_reply);
        return xfer_stop(x, ERR_UPSTREAM,
                         "the model's reply is larger than %s bytes", limit);
    }
    x->assembled += n;
    return true;
}

static bool
add_content(struct llm_xfer *x, const struct json_value *v)
{
    struct llm_delta d = {LLM_DELTA_CONTENT, NULL, 0, 0, NULL, NULL};

    if (v == NULL || v->type == JSON_NULL)
        return true;
    if (v->type != JSON_STRING)
        return xfer_stop(x, ERR_UPSTREAM, "%s",
                         "the model server sent content that is not text");
    if (v->u.s.len == 0)
        return true;
    if (!grow_assembled(x, v->u.s.len))
        return false;
    buf_add(&x->content, v->u.s.ptr, v->u.s.len);
    d.text = v->u.s.ptr;
    d.len = v->u.s.len;
    return deliver(x, &d);
}

static struct llm_tool_part *
tool_part_new(struct llm_xfer *x, bool indexed, int64_t wire_index, size_t *pos)
{
    struct llm_tool_part *t;

    if (x->n_tools >= LLM_MAX_TOOL_CALLS)
        return NULL;
    x->tools = realloc(x->tools, (x->n_tools + 1) * sizeof(*x->tools));
    if (x->tools == NULL)
        abort();
    t = &x->tools[x->n_tools];
    buf_init(&t->id);
    buf_init(&t->name);
    buf_init(&t->args);
    t->indexed = indexed;
    t->wire_index = wire_index;
    *pos = x->n_tools++;
    return t;
}

/* Which call a fragment belongs to: the one with its index (the API's
 * way); without an index (some servers), the one with its id, a new id
 * starting a new call; with neither, the call the last fragment was for.
 * An entry of a whole reply's tool_calls is always a call of its own. */
static struct llm_tool_part *
tool_part(struct llm_xfer *x, const struct json_value *idx,
          const struct json_value *id, bool whole, size_t *pos)
{
    if (whole)
        return tool_part_new(x, false, 0, pos);
    for (size_t i = 0; i < x->n_tools; i++) {
        const struct llm_tool_part *t = &x->tools[i];
        bool same = idx != NULL ? t->indexed && t->wire_index == idx->u.i
                    : id != NULL && id->u.s.len > 0
                        ? t->id.len == id->u.s.len &&
                              memcmp(t->id.data, id->u.s.ptr, id->u.s.len) == 0
                        : i + 1 == x->n_tools;

        if (same) {
            *pos = i;
            return &x->tools[i];
        }
    }
    return tool_part_new(x, idx != NULL, idx != NULL ? idx->u.i : 0, pos);
}

static const struct json_value *
member_of(const struct json_value *o, const char *key, enum json_type type)
{
    const struct json_value *v = json_get(o, key);

    return v != NULL && v->type == type ? v : NULL;
}

/* One tool call of a reply, or a fragment of one in a stream.  Arguments
 * may come as text (the API) or as an object (some servers). */
static bool
add_tool_call(struct llm_xfer *x, const struct json_value *tc, bool whole)
{
    const struct json_value *idx, *id, *fn, *name = NULL, *args = NULL;
    struct llm_delta d = {LLM_DELTA_TOOL_CALL, "", 0, 0, NULL, NULL};
    struct llm_tool_part *t;
    size_t pos = 0;
    struct buf obj;

    if (tc->type != JSON_OBJECT)
        return xfer_stop(x, ERR_UPSTREAM, "%s",
                         "the model server sent a malformed tool call");
    idx = member_of(tc, "index", JSON_INT);
    id = member_of(tc, "id", JSON_STRING);
    fn = member_of(tc, "function", JSON_OBJECT);
    if (fn != NULL) {
        name = member_of(fn, "name", JSON_STRING);
        args = json_get(fn, "arguments");
    }
    t = tool_part(x, idx, id, whole, &pos);
    if (t == NULL) {
        char limit[16];

        snprintf(limit, sizeof(limit), "%d", LLM_MAX_TOOL_CALLS);
        return xfer_stop(x, ERR_UPSTREAM,
                         "the model asked for more than %s tool calls", limit);
    }
    d.tool_index = (int)pos;
    if (id != NULL && id->u.s.len > 0 && t->id.len == 0) {
        if (!grow_assembled(x, id->u.s.len))
            return false;
        buf_add(&t->id, id->u.s.ptr, id->u.s.len);
        d.tool_id = t->id.data;
    }
    if (name != NULL && name->u.s.len > 0 && t->name.len == 0) {
        if (!grow_assembled(x, name->u.s.len))
            return false;
        buf_add(&t->name, name->u.s.ptr, name->u.s.len);
        d.tool_name = t->name.data;
    }
    buf_init(&obj);
    if (args != NULL && args->type == JSON_STRING) {
        d.text = args->u.s.ptr;
        d.len = args->u.s.len;
    } else if (args != NULL && args->type == JSON_OBJECT) {
        json_write_value(&obj, args);
        d.text = obj.data;
        d.len = obj.len;
    } else if (args != NULL && args->type != JSON_NULL) {
        buf_release(&obj);
        return xfer_stop(x, ERR_UPSTREAM, "%s",
                         "the model server sent malformed tool-call arguments");
    }
    if (!grow_assembled(x, d.len)) {
        buf_release(&obj);
        return false;
    }
    buf_add(&t->args, d.text, d.len);
    if (!deliver(x, &d)) {
        buf_release(&obj);
        return false;
    }
    buf_release(&obj);
    return true;
}

static void
take_usage(struct llm_xfer *x, const struct json_value *v)
{
    const struct json_value *u = member_of(v, "usage", JSON_OBJECT), *p, *q;

    if (u == NULL)
        return;
    p = member_of(u, "prompt_tokens", JSON_INT);
    q = member_of(u, "completion_tokens", JSON_INT);
    if (p != NULL && p->u.i >= 0)
        x->prompt_tokens = p->u.i;
    if (q != NULL && q->u.i >= 0)
        x->completion_tokens = q->u.i;
}

static void
take_finish(struct llm_xfer *x, const struct json_value *choice)
{
    const struct json_value *f =
        member_of(choice, "finish_reason", JSON_STRING);

    if (f == NULL || f->u.s.len == 0)
        return;
    snprintf(x->finish, sizeof(x->finish), "%.*s",
             (int)(f->u.s.len < sizeof(x->finish) - 1 ? f->u.s.len
                                                      : sizeof(x->finish) - 1),
             f->u.s.ptr);
    x->has_finish = true;
}

/* The choice we asked for (index 0; n is never more than 1), or NULL. */
static const struct json_value *
first_choice(const struct json_value *choices)
{
    for (size_t i = 0; i < choices->u.a.len; i++) {
        const struct json_value *ch = choices->u.a.items[i];
        const struct json_value *idx = member_of(ch, "index", JSON_INT);

        if (ch->type == JSON_OBJECT && (idx == NULL || idx->u.i == 0))
            return ch;
    }
    return NULL;
}

/* An error the server reported inside a 2xx body or event. */
static bool
server_error(struct llm_xfer *x, const struct json_value *v, const char *fmt)
{
    char words[LLM_MAX_SERVER_WORDS];

    server_words(x->c, v, words, sizeof(words));
    return xfer_stop(x, ERR_UPSTREAM, fmt,
                     words[0] != '\0' ? words : "(no message)");
}

/* One event's data: a chat.completion.chunk. */
static bool
sse_chunk(struct llm_xfer *x, const char *data, size_t len)
{
    struct error perr = ERROR_INIT;
    const struct json_value *v, *choices, *choice, *delta, *calls;
    bool ok = false;

    v = json_parse(&x->c->scratch, data, len, LLM_JSON_DEPTH, &perr);
    if (v == NULL || v->type != JSON_OBJECT) {
        xfer_stop(x, ERR_UPSTREAM, "%s",
                  "the model server sent a malformed event");
        goto done;
    }
    if (x->error_event || json_get(v, "error") != NULL) {
        server_error(x, v, "the model server failed mid-stream: %s");
        goto done;
    }
    take_usage(x, v);
    choices = json_get(v, "choices");
    if (choices != NULL && choices->type != JSON_ARRAY) {
        xfer_stop(x, ERR_UPSTREAM, "%s",
                  "the model server sent a malformed event");
        goto done;
    }
    choice = choices != NULL ? first_choice(choices) : NULL;
    if (choice == NULL) {
        ok = true;
        goto done;
    }
    delta = member_of(choice, "delta", JSON_OBJECT);
    if (delta != NULL) {
        if (!add_content(x, json_get(delta, "content")))
            goto done;
        calls = json_get(delta, "tool_calls");
        if (calls != NULL && calls->type == JSON_ARRAY) {
            for (size_t i = 0; i < calls->u.a.len; i++)
                if (!add_tool_call(x, calls->u.a.items[i], false))
                    goto done;
        } else if (calls != NULL && calls->type != JSON_NULL) {
            xfer_stop(x, ERR_UPSTREAM, "%s",
                      "the model server sent a malformed tool call");
            goto done;
        }
    }
    take_finish(x, choice);
    ok = true;
done:
    arena_reset(&x->c->scratch);
    return ok;
}

static bool
sse_dispatch(struct llm_xfer *x)
{
    bool ok = true;

    if (x->has_data && !x->done) {
        if (x->data.len == 6 && memcmp(x->data.data, "[DONE]", 6) == 0)
            x->done = true;
        else
            ok = sse_chunk(x, x->data.data, x->data.len);
    }
    buf_reset(&x->data);
    x->has_data = false;
    x->error_event = false;
    return ok;
}

/* One line of the event stream (WHATWG's rules: "field: value", a blank
 * line ends an event, ':' starts a comment). */
static bool
sse_line(struct llm_xfer *x)
{
    const char *line = x->line.data, *colon, *value;
    size_t len = x->line.len, name_len, value_len;

    if (len == 0)
        return sse_dispatch(x);
    if (line[0] == ':')
        return true;
    colon = memchr(line, ':', len);
    name_len = colon != NULL ? (size_t)(colon - line) : len;
    value = colon != NULL ? colon + 1 : line + len;
    if (value < line + len && *value == ' ')
        value++;
    value_len = (size_t)(line + len - value);
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (x->has_data)
            buf_addch(&x->data, '\n');
        buf_add(&x->data, value, value_len);
        x->has_data = true;
        if (x->data.len > x->c->max_reply)
            return grow_assembled(x, x->c->max_reply + 1);
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        x->error_event = value_len == 5 && memcmp(value, "error", 5) == 0;
    }
    return true;
}

static bool
sse_feed(struct llm_xfer *x, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t run = i;

        if (x->after_cr) {
            x->after_cr = false;
            if (p[i] == '\n') {
                i++;
                continue;
            }
        }
        while (run < n && p[run] != '\n' && p[run] != '\r')
            run++;
        if (x->line.len + (run - i) > x->c->max_reply)
            return grow_assembled(x, x->c->max_reply + 1);
        buf_add(&x->line, p + i, run - i);
        if (run == n)
            break;
        x->after_cr = p[run] == '\r';
        if (!sse_line(x))
            return false;
        buf_reset(&x->line);
        i = run + 1;
    }
    return true;
}

static int64_t
parse_retry_after(const char *v, size_t n, bool in_ms)
{
    char text[64];
    char *end;
    double d;
    time_t when;

    if (n == 0 || n >= sizeof(text))
        return -1;
    memcpy(text, v, n);
    text[n] = '\0';
    errno = 0;
    d = strtod(text, &end);
    if (end != text && *end == '\0' && errno == 0) {
        if (!(d >= 0))
            return -1;
        d = in_ms ? d : d * 1000;
        return d > (double)LLM_MAX_RETRY_AFTER_MS ? LLM_MAX_RETRY_AFTER_MS
                                                  : (int64_t)d;
    }
    if (in_ms)
        return -1;
    /* An HTTP-date. */
    when = curl_getdate(text, NULL);
    if (when < 0)
        return -1;
    when -= time(NULL);
    if (when <= 0)
        return 0;
    return when > LLM_MAX_RETRY_AFTER_MS / 1000 ? LLM_MAX_RETRY_AFTER_MS
                                                : (int64_t)when * 1000;
}

static size_t
on_header(char *p, size_t size, size_t nitems, void *arg)
{
    struct llm_xfer *x = arg;
    size_t n = size * nitems, name_len, vlen;
    const char *colon, *v;

    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx, the final one): forget the last. */
        const char *sp = memchr(p, ' ', n);

        x->status = 0;
        x->sse = false;
        x->retry_after_ms = -1;
        x->retry_after_ms_hdr = -1;
        if (sp != NULL && (size_t)(sp - p) + 4 <= n &&
            isdigit((unsigned char)sp[1]) && isdigit((unsigned char)sp[2]) &&
            isdigit((unsigned char)sp[3]))
            x->status =
                (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        return n;
    }
    colon = memchr(p, ':', n);
    if (colon == NULL)
        return n;
    name_len = (size_t)(colon - p);
    v = colon + 1;
    while (v < p + n && (*v == ' ' || *v == '\t'))
        v++;
    vlen = (size_t)(p + n - v);
    while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
        vlen--;
    if (name_len == 12 && strncasecmp(p, "content-type", 12) == 0)
        x->sse = vlen >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    else if (name_len == 11 && strncasecmp(p, "retry-after", 11) == 0)
        x->retry_after_ms = parse_retry_after(v, vlen, false);
    else if (name_len == 14 && strncasecmp(p, "retry-after-ms", 14) == 0)
        x->retry_after_ms_hdr = parse_retry_after(v, vlen, true);
    return n;
}

static bool
success(int status)
{
    return status >= 200 && status <= 299;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct llm_xfer *x = arg;
    size_t n = size * nmemb;

    if (!success(x->status)) {
        size_t room = LLM_MAX_ERROR_BODY - x->body.len;

        /* Enough of an error body to find its message; the rest is not
         * worth waiting for. */
        buf_add(&x->body, p, n < room ? n : room);
        if (n >= room) {
            x->body_full = true;
            return 0;
        }
        return n;
    }
    if (x->sse)
        return sse_feed(x, p, n) ? n : 0;
    if (x->body.len + n > x->c->max_reply) {
        char limit[32];

        snprintf(limit, sizeof(limit), "%zu", x->c->max_reply);
        xfer_stop(x, ERR_UPSTREAM, "the model's reply is larger than %s bytes",
                  limit);
        return 0;
    }
    buf_add(&x->body, p, n);
    return n;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
    struct llm_xfer *x = arg;
    int64_t now;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (x->cb == NULL || x->cb->poll == NULL)
        return 0;
    now = clock_mono_ms();
    if (now < x->next_poll_ms)
        return 0;
    x->next_poll_ms = now + LLM_POLL_EVERY_MS;
    if (!x->cb->poll(x->cb->arg, &x->stop_err)) {
        x->stopped = true;
        if (x->stop_err.code == ERR_NONE)
            error_set(&x->stop_err, ERR_INTERNAL, NULL,
                      "the model call was stopped without a reason");
        return 1;
    }
    return 0;
}

/* A 2xx JSON body: a chat.completion. */
static bool
parse_reply(struct llm_xfer *x)
{
    struct error perr = ERROR_INIT;
    const struct json_value *v, *choices, *choice, *msg, *calls;

    v = json_parse(&x->c->scratch, x->body.data, x->body.len, LLM_JSON_DEPTH,
                   &perr);
    if (v == NULL || v->type != JSON_OBJECT)
        return xfer_stop(x, ERR_UPSTREAM, "%s",
                         "the model server sent a malformed reply");
    choices = json_get(v, "choices");
    if (choices == NULL && json_get(v, "error") != NULL)
        return server_error(x, v, "the model server failed: %s");
    if (choices == NULL || choices->type != JSON_ARRAY ||
        (choice = first_choice(choices)) == NULL ||
        (msg = member_of(choice, "message", JSON_OBJECT)) == NULL)
        return xfer_stop(x, ERR_UPSTREAM, "%s",
                         "the model server sent a reply without a message");
    if (!add_content(x, json_get(msg, "content")))
        return false;
    calls = json_get(msg, "tool_calls");
    if (calls != NULL && calls->type == JSON_ARRAY) {
        for (size_t i = 0; i < calls->u.a.len; i++)
            if (!add_tool_call(x, calls->u.a.items[i], true))
                return false;
    } else if (calls != NULL && calls->type != JSON_NULL) {
        return xfer_stop(x, ERR_UPSTREAM, "%s",
                         "the model server sent a malformed tool call");
    }
    take_finish(x, choice);
    take_usage(x, v);
    return true;
}

/* Maps a finished transfer to success or an error. */
static bool
outcome(struct llm_xfer *x, CURLcode rc, const char *errbuf, int64_t timeout,
        struct error *err)
{
    if (x->stopped) {
        *err = x->stop_err;
        return false;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        log_warn("llm: no complete reply within %lld ms (HTTP %d): %s",
                 (long long)timeout, x->status, errbuf);
        return error_set(err, ERR_UPSTREAM_TIMEOUT, NULL,
                         "the model server did not answer within %lld ms",
                         (long long)timeout);
    }
    if (x->status != 0 && !success(x->status)) {
        struct error perr = ERROR_INIT;
        const struct json_value *v = json_parse(
            &x->c->scratch, x->body.data, x->body.len, LLM_JSON_DEPTH, &perr);
        char words[LLM_MAX_SERVER_WORDS] = "";
        int s = x->status;

        if (v != NULL)
            server_words(x->c, v, words, sizeof(words));
        log_warn("llm: the model server answered HTTP %d", s);
        if (words[0] != '\0')
            error_set(err, ERR_UPSTREAM, NULL,
                      "the model server answered %d: %s", s, words);
        else
            error_set(err, ERR_UPSTREAM, NULL, "the model server answered %d",
                      s);
        if (s == 408 || s == 409 || s == 429 || s >= 500)
            err->retry = RETRY_SAFE;
        err->db_code = s;
        return false;
    }
    if (rc != CURLE_OK) {
        log_warn("llm: transfer failed (curl %d, HTTP %d): %s", (int)rc,
                 x->status, errbuf);
        if (x->status == 0) {
            error_set(err, ERR_UPSTREAM, NULL,
                      "the model server could not be reached: %s",
                      curl_easy_strerror(rc));
            /* Nothing was sent (or nothing answered), and the server may
             * well be back in a moment. */
            if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_GOT_NOTHING)
                err->retry = RETRY_SAFE;
        } else {
            error_set(err, ERR_UPSTREAM, NULL,
                      "the model server broke its reply off: %s",
                      curl_easy_strerror(rc));
        }
        return false;
    }
    if (x->sse) {
        /* A last line without its blank line (or newline) still counts
         * when the stream ended cleanly. */
        if (x->line.len > 0 && !sse_line(x)) {
            *err = x->stop_err;
            return false;
        }
        if (!sse_dispatch(x)) {
            *err = x->stop_err;
            return false;
        }
        if (!x->done && !x->has_finish)
            return error_set(err, ERR_UPSTREAM, NULL,
                             "the model server's stream ended before the "
                             "reply was complete");
        return true;
    }
    if (!parse_reply(x)) {
        *err = x->stop_err;
        return false;
    }
    return true;
}

static bool
attempt(struct llm_client *c, const struct llm_request *req,
        const struct buf *body, int64_t deadline_ms, struct llm_xfer *x,
        struct error *err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    int64_t left = deadline_ms - clock_mono_ms(), timeout;
    CURL *h = c->curl;
    CURLcode rc;
    long status = 0;

    if (left <= 0)
        return error_set(err, ERR_UPSTREAM_TIMEOUT, NULL,
                         "no time was left to ask the model server");
    timeout = left < c->timeout_ms ? left : c->timeout_ms;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "parley/" PACKAGE_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER,
                     req->stream ? c->headers_sse : c->headers_json);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(timeout < c->connect_timeout_ms
                                ? timeout
                                : c->connect_timeout_ms));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    if (c->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    /* Nothing may point at this frame once it returns (the connection
     * stays). */
    curl_easy_reset(h);
    x->reply->http_status = (int)status;
    x->reply->retry_after_ms =
        x->retry_after_ms_hdr >= 0 ? x->retry_after_ms_hdr : x->retry_after_ms;
    if (errbuf[0] == '\0')
        snprintf(errbuf, sizeof(errbuf), "%s", curl_easy_strerror(rc));
    return outcome(x, rc, errbuf, timeout, err);
}

static char *
arena_copy(struct arena *a, const struct buf *b)
{
    return arena_strndup(a, b->data, b->len);
}

static void
take_reply(struct llm_xfer *x, struct arena *a, struct llm_reply *r)
{
    r->content = arena_copy(a, &x->content);
    r->content_len = x->content.len;
    if (x->n_tools > 0) {
        r->tool_calls = arena_calloc(a, x->n_tools * sizeof(*r->tool_calls));
        for (size_t i = 0; i < x->n_tools; i++) {
            r->tool_calls[i].id = arena_copy(a, &x->tools[i].id);
            r->tool_calls[i].name = arena_copy(a, &x->tools[i].name);
            r->tool_calls[i].arguments = arena_copy(a, &x->tools[i].args);
        }
        r->n_tool_calls = x->n_tools;
    }
    r->finish_reason = x->has_finish ? arena_strdup(a, x->finish) : NULL;
    r->prompt_tokens = x->prompt_tokens;
    r->completion_tokens = x->completion_tokens;
}

/* Sleeps ms in slices, asking cb->poll between them. */
static bool
nap(const struct retry_policy *p, const struct llm_callbacks *cb, int64_t ms,
    struct error *err)
{
    while (ms > 0) {
        int64_t slice = ms < LLM_SLEEP_SLICE_MS ? ms : LLM_SLEEP_SLICE_MS;

        if (cb != NULL && cb->poll != NULL && !cb->poll(cb->arg, err)) {
            if (err->code == ERR_NONE)
                error_set(err, ERR_INTERNAL, NULL,
                          "the model call was stopped without a reason");
            return false;
        }
        p->sleep_ms(p->env, slice);
        ms -= slice;
    }
    return true;
}

bool
llm_chat(struct llm_client *c, const struct llm_request *req,
         const struct llm_callbacks *cb, int64_t deadline_ms,
         const struct retry_policy *retry, struct arena *a,
         struct llm_reply *reply, struct error *err)
{
    int64_t t0 = clock_mono_ms();
    struct buf body;
    bool ok = false;

    memset(reply, 0, sizeof(*reply));
    reply->content = "";
    reply->prompt_tokens = -1;
    reply->completion_tokens = -1;
    reply->retry_after_ms = -1;
    buf_init(&body);
    write_request(&body, c, req);
    for (;;) {
        struct llm_xfer x;
        int64_t wait, now;

        xfer_init(&x, c, req, cb, reply);
        reply->attempts++;
        ok = attempt(c, req, &body, deadline_ms, &x, err);
        if (ok)
            take_reply(&x, a, reply);
        xfer_release(&x);
        arena_reset(&c->scratch);
        if (ok || retry == NULL || err->retry != RETRY_SAFE ||
            reply->streamed || reply->attempts >= retry->max_attempts)
            break;
        wait = (int64_t)retry->random_upto(
            retry->env,
            (uint64_t)retry_backoff_cap(retry, reply->attempts - 1));
        if (reply->retry_after_ms > wait)
            wait = reply->retry_after_ms;
        now = clock_mono_ms();
        if (now + wait >= deadline_ms)
            break;
        log_warn("llm: retrying in %lld ms (attempt %d failed with HTTP %d)",
                 (long long)wait, reply->attempts, reply->http_status);
        if (!nap(retry, cb, wait, err))
            break;
    }
    if (ok)
        log_debug("llm: HTTP %d in %lld ms, %d attempt(s), %zu bytes, "
                  "%zu tool call(s), tokens %lld+%lld%s",
                  reply->http_status, (long long)(clock_mono_ms() - t0),
                  reply->attempts, reply->content_len, reply->n_tool_calls,
                  (long long)reply->prompt_tokens,
                  (long long)reply->completion_tokens,
                  req->stream ? ", streamed" : "");
    buf_release(&body);
    return ok;
}

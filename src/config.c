/*
 * config.c - the settings table and its loader.
 *
 * Each row names a setting, its type, where it lives in struct config and
 * its default as text, so defaults go through the same parser as the file
 * and the environment.  Adding a setting is one row here and a field in
 * config.h; docs/configuration.md's table lists them all (the README's
 * "Add a configuration key" says what else a new one needs).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "banned.h"

enum config_type {
    CONF_STR,
    CONF_INT,
    CONF_OCTAL,
};

struct config_entry {
    const char *name;
    enum config_type type;
    size_t offset;
    const char *def;
    long min, max; /* for CONF_INT / CONF_OCTAL */
    bool secret;   /* never printed */
};

#define S(name, def)                                                           \
    {                                                                          \
#name, CONF_STR, offsetof(struct config, name), def, 0, 0, false       \
    }
#define SECRET(name, def)                                                      \
    {                                                                          \
#name, CONF_STR, offsetof(struct config, name), def, 0, 0, true        \
    }
#define I(name, def, lo, hi)                                                   \
    {                                                                          \
#name, CONF_INT, offsetof(struct config, name), #def, lo, hi, false    \
    }

static const struct config_entry config_table[] = {
    /* server */
    S(listen, "unix:/run/parley/parley.sock"),
    {"socket_mode", CONF_OCTAL, offsetof(struct config, socket_mode), "0660", 0,
     0777, false},
    I(listen_backlog, 1024, 1, 65535),
    I(workers, 4, 1, 256),
    I(shutdown_timeout, 10, 1, 3600),
    S(log_level, "info"),
    S(pid_file, ""),
    /* database */
    SECRET(mongodb_uri, "mongodb://127.0.0.1:27017/?retryWrites=true"),
    S(mongodb_database, "parley"),
    S(sessions_collection, "sessions"),
    S(messages_collection, "messages"),
    S(memory_collection, "memory"),
    S(idempotency_collection, "idempotency_keys"),
    S(tombstones_collection, "tombstones"),
    S(users_collection, "users"),
    I(db_retry_max_attempts, 3, 1, 10),
    I(db_retry_base_ms, 100, 1, 60000),
    I(db_retry_max_ms, 1000, 1, 600000),
    I(request_deadline_ms, 4000, 100, 600000),
    I(export_deadline_ms, 30000, 100, 3600000),
    I(queue_clock_skew_ms, 100, 0, 60000),
    I(user_max_inflight, 0, 0, 1024),
    I(user_max_bulk, 1, 0, 1024),
    I(worker_max_rss_mb, 512, 0, 1048576),
    /* auth */
    S(jwt_algorithm, "HS256"),
    SECRET(jwt_secret, ""),
    S(jwt_secret_file, ""),
    S(jwt_public_key_file, ""),
    I(jwt_leeway, 60, 0, 3600),
    S(jwt_issuer, ""),
    S(jwt_audience, ""),
    I(jwt_max_lifetime, 0, 0, 315360000),
    /* limits */
    I(max_body_bytes, 1048576, 1024, 67108864),
    I(max_name_chars, 255, 1, 65535),
    I(max_description_bytes, 4096, 1, 1048576),
    I(max_instructions_bytes, 65536, 1, 4194304),
    I(max_content_bytes, 524288, 1, 16777216),
    I(max_metadata_bytes, 16384, 2, 1048576),
    I(max_metadata_depth, 16, 1, 64),
    I(max_json_depth, 32, 2, 128),
    I(max_batch_messages, 100, 1, 10000),
    I(max_page_limit, 200, 1, 10000),
    I(max_offset, 100000, 0, 100000000),
    /* quotas */
    I(quota_sessions_per_user, 10000, 1, 2147483647),
    I(quota_messages_per_session, 100000, 1, 2147483647),
    I(quota_bytes_per_session, 67108864, 1, 2147483647),
    I(quota_memory_keys_per_session, 1000, 1, 2147483647),
    I(page_max_bytes, 8388608, 4096, 1073741824),
    /* agents */
    S(agent_backend, "echo"),
    S(llm_base_url, ""),
    S(llm_model, ""),
    S(llm_api_key_file, ""),
    S(llm_headers_file, ""),
    S(llm_ca_file, ""),
    S(llm_max_tokens_field, "max_tokens"),
    I(llm_timeout_ms, 60000, 100, 3600000),
    I(llm_connect_timeout_ms, 10000, 100, 600000),
    I(llm_max_output_tokens, 0, 0, 100000000),
    I(llm_context_messages, 20, 0, 10000),
    I(llm_context_tokens, 4000, 0, 100000000),
    I(llm_retry_max_attempts, 3, 1, 10),
    /* the conversation pool */
    I(conversation_workers, 4, 0, 256),
    S(conversation_listen, ""),
    I(conversation_deadline_ms, 120000, 1000, 3600000),
    /* sweeper; 0 turns a rule off */
    I(cleanup_interval, 3600, 0, 31536000),
    I(idle_timeout, 1800, 0, 315360000),
    I(max_inactive_time, 86400, 0, 315360000),
    I(max_session_age, 604800, 0, 315360000),
    S(sweeper_lock_file, ""),
};

#undef S
#undef SECRET
#undef I

#define N_ENTRIES (sizeof(config_table) / sizeof(config_table[0]))

static const struct config_entry *
config_find(const char *key)
{
    for (size_t i = 0; i < N_ENTRIES; i++)
        if (strcmp(config_table[i].name, key) == 0)
            return &config_table[i];
    return NULL;
}

static int
config_apply(struct config *c, const struct config_entry *e, const char *value,
             const char *where, struct error *err)
{
    char *end;
    long v;

    switch (e->type) {
    case CONF_STR: {
        char **slot = (char **)((char *)c + e->offset);
        char *copy = strdup(value);

        if (copy == NULL)
            abort();
        free(*slot);
        *slot = copy;
        return 0;
    }
    case CONF_INT:
    case CONF_OCTAL:
        errno = 0;
        v = strtol(value, &end, e->type == CONF_OCTAL ? 8 : 10);
        if (errno != 0 || end == value || *end != '\0' || v < e->min ||
            v > e->max) {
            error_set(err, ERR_VALIDATION, e->name,
                      "%s: %s must be %s from %ld to %ld", where, e->name,
                      e->type == CONF_OCTAL ? "an octal number" : "an integer",
                      e->min, e->max);
            return -1;
        }
        *(int *)((char *)c + e->offset) = (int)v;
        return 0;
    }
    return -1;
}

int
config_set(struct config *c, const char *key, const char *value,
           struct error *err)
{
    const struct config_entry *e = config_find(key);

    if (e == NULL) {
        error_set(err, ERR_VALIDATION, NULL, "unknown setting \"%.64s\"", key);
        return -1;
    }
    return config_apply(c, e, value, "config", err);
}

static char *
trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int
config_read_file(struct config *c, const char *path, struct error *err)
{
    FILE *f = fopen(path, "r");
    char line[8192], where[600];
    int lineno = 0, rc = -1;

    if (f == NULL) {
        error_set(err, ERR_VALIDATION, NULL, "cannot open %s: %s", path,
                  strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p, *eq, *key, *value;
        const struct config_entry *e;
        size_t vlen;

        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            error_set(err, ERR_VALIDATION, NULL, "%s: line too long", where);
            goto done;
        }
        p = trim(line);
        if (*p == '\0' || *p == '#')
            continue;
        eq = strchr(p, '=');
        if (eq == NULL) {
            error_set(err, ERR_VALIDATION, NULL, "%s: expected \"key = value\"",
                      where);
            goto done;
        }
        *eq = '\0';
        key = trim(p);
        value = trim(eq + 1);
        /* A value may be quoted to keep leading or trailing spaces or a
         * '#'; there are no escapes inside quotes. */
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        e = config_find(key);
        if (e == NULL) {
            error_set(err, ERR_VALIDATION, NULL,
                      "%s: unknown setting \"%.64s\"", where, key);
            goto done;
        }
        if (config_apply(c, e, value, where, err) != 0)
            goto done;
    }
    if (ferror(f)) {
        error_set(err, ERR_VALIDATION, NULL, "%s: read error", path);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

static int
config_read_env(struct config *c, struct error *err)
{
    for (size_t i = 0; i < N_ENTRIES; i++) {
        const struct config_entry *e = &config_table[i];
        char var[64] = "PARLEY_", where[80];
        size_t n = strlen(var);
        const char *value;

        for (const char *k = e->name; *k != '\0' && n + 1 < sizeof(var); k++)
            var[n++] = (char)toupper((unsigned char)*k);
        var[n] = '\0';
        value = getenv(var);
        if (value == NULL)
            continue;
        snprintf(where, sizeof(where), "environment %s", var);
        if (config_apply(c, e, value, where, err) != 0)
            return -1;
    }
    return 0;
}

static char *
read_small_file(const char *path, size_t max, size_t *len, struct error *err)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t n;

    if (f == NULL) {
        error_set(err, ERR_VALIDATION, NULL, "cannot open %s: %s", path,
                  strerror(errno));
        return NULL;
    }
    data = malloc(max + 1);
    if (data == NULL)
        abort();
    n = fread(data, 1, max + 1, f);
    if (ferror(f) || n > max) {
        error_set(err, ERR_VALIDATION, NULL,
                  "%s: unreadable or larger than %zu bytes", path, max);
        free(data);
        data = NULL;
    } else {
        data[n] = '\0';
        *len = n;
    }
    fclose(f);
    return data;
}

/* An unset sweeper_lock_file goes next to the unix socket: a directory
 * parley writes anyway, as private as the socket, and the same for every
 * process started with this configuration (cron's `parley cleanup`
 * included).  Without a socket there is only /tmp. */
static void
config_default_lock(struct config *c)
{
    const char *dir = "/tmp", *sock, *slash;
    int dir_len = 4;
    char *path = NULL;

    if (c->sweeper_lock_file[0] != '\0')
        return;
    if (strncmp(c->listen, "unix:", 5) == 0) {
        sock = c->listen + 5;
        slash = strrchr(sock, '/');
        dir = slash == NULL ? "." : sock;
        dir_len = slash == NULL ? 1 : (int)(slash - sock);
    }
    if (asprintf(&path, "%.*s/parley-sweeper.lock", dir_len, dir) < 0)
        abort();
    free(c->sweeper_lock_file);
    c->sweeper_lock_file = path;
}

/* An unset conversation_listen goes next to a unix listen socket:
 * unix:/run/parley/parley.sock -> unix:/run/parley/parley-conversation.sock.
 * Listening on TCP or an inherited descriptor, there is no pool of its own
 * unless conversation_listen names an address. */
static int
config_conversation_listen(struct config *c, struct error *err)
{
    const char *sock = c->listen + 5;
    size_t n;
    char *path = NULL;

    if (c->conversation_listen[0] == '\0' &&
        strncmp(c->listen, "unix:", 5) == 0) {
        n = strlen(sock);
        if (n > 5 && strcmp(sock + n - 5, ".sock") == 0)
            n -= 5;
        if (asprintf(&path, "unix:%.*s-conversation.sock", (int)n, sock) < 0)
            abort();
        free(c->conversation_listen);
        c->conversation_listen = path;
    }
    if (c->conversation_listen[0] == '\0')
        return 0;
    if (strcmp(c->conversation_listen, c->listen) == 0) {
        error_set(err, ERR_VALIDATION, "conversation_listen",
                  "conversation_listen must differ from listen");
        return -1;
    }
    if (strncmp(c->conversation_listen, "fd:", 3) == 0 ||
        (strncmp(c->conversation_listen, "unix:", 5) != 0 &&
         strrchr(c->conversation_listen, ':') == NULL)) {
        error_set(err, ERR_VALIDATION, "conversation_listen",
                  "conversation_listen must be unix:/path or host:port");
        return -1;
    }
    if (strncmp(c->conversation_listen, "unix:", 5) == 0 &&
        strlen(c->conversation_listen + 5) >= 108) {
        error_set(err, ERR_VALIDATION, "conversation_listen",
                  "unix socket path longer than 107 bytes");
        return -1;
    }
    return 0;
}

/* Checks what no single row can: the key for the pinned algorithm, the
 * listen address's form, the retry bounds' order. */
static int
config_check(struct config *c, struct error *err)
{
    size_t len = 0;

    if (log_level_parse(c->log_level) < 0) {
        error_set(err, ERR_VALIDATION, "log_level",
                  "log_level must be debug, info, warn or error");
        return -1;
    }
    if (c->listen[0] != '\0' && strncmp(c->listen, "unix:", 5) != 0 &&
        strncmp(c->listen, "fd:", 3) != 0 && strrchr(c->listen, ':') == NULL) {
        error_set(err, ERR_VALIDATION, "listen",
                  "listen must be unix:/path, host:port or fd:N");
        return -1;
    }
    if (strncmp(c->listen, "unix:", 5) == 0 && strlen(c->listen + 5) >= 108) {
        error_set(err, ERR_VALIDATION, "listen",
                  "unix socket path longer than 107 bytes");
        return -1;
    }
    if (c->db_retry_base_ms > c->db_retry_max_ms) {
        error_set(err, ERR_VALIDATION, "db_retry_base_ms",
                  "db_retry_base_ms must not exceed db_retry_max_ms");
        return -1;
    }
    if (!agent_check_config(c, err))
        return -1;
    if (config_conversation_listen(c, err) != 0)
        return -1;
    config_default_lock(c);
    free(c->jwt_key);
    c->jwt_key = NULL;
    if (strcmp(c->jwt_algorithm, "HS256") == 0) {
        c->jwt_pin = JWT_PIN_HS256;
        if (c->jwt_secret_file[0] != '\0' && c->jwt_secret[0] == '\0') {
            c->jwt_key = read_small_file(c->jwt_secret_file, 4096, &len, err);
            if (c->jwt_key == NULL)
                return -1;
            /* A trailing newline from `echo > file` is not part of it. */
            while (len > 0 &&
                   (c->jwt_key[len - 1] == '\n' || c->jwt_key[len - 1] == '\r'))
                c->jwt_key[--len] = '\0';
        } else {
            c->jwt_key = strdup(c->jwt_secret);
            if (c->jwt_key == NULL)
                abort();
            len = strlen(c->jwt_key);
        }
        /* RFC 7518 3.2: a key at least as long as the hash. */
        if (len < 32) {
            error_set(err, ERR_VALIDATION, "jwt_secret",
                      "HS256 needs jwt_secret (or jwt_secret_file) of at "
                      "least 32 bytes");
            return -1;
        }
    } else if (strcmp(c->jwt_algorithm, "RS256") == 0 ||
               strcmp(c->jwt_algorithm, "ES256") == 0) {
        c->jwt_pin = c->jwt_algorithm[0] == 'R' ? JWT_PIN_RS256 : JWT_PIN_ES256;
        if (c->jwt_public_key_file[0] == '\0') {
            error_set(err, ERR_VALIDATION, "jwt_public_key_file",
                      "%s needs jwt_public_key_file (PEM)", c->jwt_algorithm);
            return -1;
        }
        c->jwt_key = read_small_file(c->jwt_public_key_file, 65536, &len, err);
        if (c->jwt_key == NULL)
            return -1;
        if (strstr(c->jwt_key, "-----BEGIN PUBLIC KEY-----") == NULL) {
            error_set(err, ERR_VALIDATION, "jwt_public_key_file",
                      "%s is not a PEM public key", c->jwt_public_key_file);
            return -1;
        }
    } else {
        error_set(err, ERR_VALIDATION, "jwt_algorithm",
                  "jwt_algorithm must be HS256, RS256 or ES256");
        return -1;
    }
    c->jwt_key_len = len;
    return 0;
}

int
config_load(struct config *c, const char *path, struct error *err)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_ENTRIES; i++)
        if (config_apply(c, &config_table[i], config_table[i].def, "default",
                         err) != 0)
            return -1;
    c->source = strdup(path != NULL ? path : "(defaults)");
    if (c->source == NULL)
        abort();
    if (path != NULL && config_read_file(c, path, err) != 0)
        return -1;
    if (config_read_env(c, err) != 0)
        return -1;
    return config_check(c, err);
}

void
config_release(struct config *c)
{
    for (size_t i = 0; i < N_ENTRIES; i++) {
        if (config_table[i].type == CONF_STR) {
            char **slot = (char **)((char *)c + config_table[i].offset);

            free(*slot);
            *slot = NULL;
        }
    }
    if (c->jwt_key != NULL) {
        /* Do not leave the secret lying in freed memory. */
        memset(c->jwt_key, 0, c->jwt_key_len);
        free(c->jwt_key);
    }
    free(c->source);
    memset(c, 0, sizeof(*c));
}

void
config_dump(const struct config *c, FILE *out)
{
    fprintf(out, "# from %s\n", c->source);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        const struct config_entry *e = &config_table[i];
        const char *p = (const char *)c + e->offset;

        switch (e->type) {
        case CONF_STR: {
            const char *v = *(char *const *)(const void *)p;

            if (e->secret && v[0] != '\0')
                fprintf(out, "%s = (set)\n", e->name);
            else
                fprintf(out, "%s = %s\n", e->name, v);
            break;
        }
        case CONF_INT:
            fprintf(out, "%s = %d\n", e->name, *(const int *)(const void *)p);
            break;
        case CONF_OCTAL:
            fprintf(out, "%s = %04o\n", e->name,
                    (unsigned)*(const int *)(const void *)p);
            break;
        }
    }
}

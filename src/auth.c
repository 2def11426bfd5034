/*
 * auth.c - bearer tokens on top of libjwt 1.10.2.
 *
 * libjwt is trusted for one thing only: checking a signature with a key
 * and an algorithm we have already chosen.  Three of its habits decide the
 * order of the work below:
 *   - it takes the algorithm from the token, so an attacker who names
 *     HS256 on a server configured for RS256 gets the public key's PEM
 *     text used as an HMAC secret (the classic key-confusion forgery);
 *     hence the token's "alg" is read and pinned before libjwt sees it;
 *   - with a NULL or empty key, or "alg":"none", it checks no signature at
 *     all; hence the key is never empty and "none" never gets past the pin;
 *   - it checks no claims; hence exp/nbf/iat/iss/aud/sub are decoded and
 *     checked here, with json.h, whose types tell an integer from a
 *     string or a float (jwt_get_grant_int() cannot).
 * The token itself is held to the compact JWS syntax (RFC 7515 section 7.1)
 * before anything decodes it, so every later step sees only three
 * non-empty runs of the base64url alphabet.
 */
#include <jwt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "json.h"
#include "utf8.h"
#include "banned.h"

/* Deep enough for the claim sets identity providers issue (Keycloak nests
 * roles three levels down), shallow enough that nothing odd gets through. */
#define AUTH_JSON_DEPTH    16
#define AUTH_SUB_MAX_CHARS 255
#define AUTH_TTL_MAX       31536000 /* one year */

static const char *
auth_pin_name(enum jwt_alg_pin pin)
{
    switch (pin) {
    case JWT_PIN_HS256:
        return "HS256";
    case JWT_PIN_RS256:
        return "RS256";
    case JWT_PIN_ES256:
        return "ES256";
    }
    return NULL;
}

static jwt_alg_t
auth_pin_alg(enum jwt_alg_pin pin)
{
    switch (pin) {
    case JWT_PIN_HS256:
        return JWT_ALG_HS256;
    case JWT_PIN_RS256:
        return JWT_ALG_RS256;
    case JWT_PIN_ES256:
        return JWT_ALG_ES256;
    }
    return JWT_ALG_INVAL;
}

static int
auth_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Decodes unpadded base64url src[0..n) into arena memory (NUL-terminated,
 * so json_parse() and error paths never run off the end).  Only canonical
 * encodings are taken: a length of 1 mod 4 cannot come from any input, and
 * the unused low bits of the last character must be zero (RFC 4648
 * section 3.5), so each decoded text has exactly one spelling.
 */
static bool
auth_b64url_decode(struct arena *a, const char *src, size_t n, char **out,
                   size_t *out_len)
{
    unsigned char *dst;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return false;
    dst = arena_alloc(a, n / 4 * 3 + 3);
    for (size_t i = 0; i < n; i++) {
        int v = auth_b64_value((unsigned char)src[i]);

        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return false;
    dst[o] = '\0';
    *out = (char *)dst;
    *out_len = o;
    return true;
}

static bool
auth_str_eq(const struct json_value *v, const char *s)
{
    size_t n = strlen(s);

    return v != NULL && v->type == JSON_STRING && v->u.s.len == n &&
           memcmp(v->u.s.ptr, s, n) == 0;
}

/* t + leeway < now, without overflow whatever the token says. */
static bool
auth_too_old(int64_t t, int64_t leeway, int64_t now)
{
    return t < now && (uint64_t)now - (uint64_t)t > (uint64_t)leeway;
}

/* t - leeway > now, likewise. */
static bool
auth_too_new(int64_t t, int64_t leeway, int64_t now)
{
    return t > now && (uint64_t)t - (uint64_t)now > (uint64_t)leeway;
}

/*
 * The subject becomes the owner of every stored document, and shows up in
 * logs and admin listings, so it is held to printable text: well-formed
 * UTF-8, 1-255 code points, no C0, DEL or C1 control characters.  Returns
 * what is wrong, or NULL.
 */
static const char *
auth_sub_problem(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    if (n == 0)
        return "sub claim is empty";
    if (!utf8_valid(s, n))
        return "sub claim is not valid UTF-8";
    if (utf8_count(s, n) > AUTH_SUB_MAX_CHARS)
        return "sub claim is longer than 255 characters";
    for (size_t i = 0; i < n; i++) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return "sub claim has control characters";
        /* U+0080..U+009F are C2 80..C2 9F. */
        if (u[i] == 0xc2 && i + 1 < n && u[i + 1] <= 0x9f)
            return "sub claim has control characters";
    }
    return NULL;
}

/*
 * Splits "Bearer <token>" and holds the token to the compact syntax.  The
 * scheme is case-insensitive (RFC 7235 section 2.1); exactly one space
 * follows it, and the token runs to the end of the value, so any other
 * white space lands in the token and fails the alphabet check.
 */
static bool
auth_split(const char *authorization, const char **token, size_t parts[3],
           struct error *err)
{
    const char *t;
    size_t len, part = 0, run = 0;

    if (authorization == NULL || authorization[0] == '\0')
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "missing Authorization header");
    if (strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\0'))
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "Authorization scheme must be Bearer");
    if (authorization[6] == '\0' || authorization[7] == '\0')
        return error_set(err, ERR_UNAUTHORIZED, NULL, "missing bearer token");
    t = authorization + 7;
    len = strnlen(t, AUTH_MAX_TOKEN_BYTES + 1);
    if (len > AUTH_MAX_TOKEN_BYTES)
        return error_set(err, ERR_UNAUTHORIZED, NULL, "token too long");
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (part == 2)
                return error_set(err, ERR_UNAUTHORIZED, NULL,
                                 "token must have three parts");
            parts[part++] = run;
            run = 0;
        } else if (auth_b64_value((unsigned char)t[i]) >= 0) {
            run++;
        } else {
            return error_set(err, ERR_UNAUTHORIZED, NULL,
                             "token is not base64url");
        }
    }
    if (part != 2)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "token must have three parts");
    parts[2] = run;
    if (parts[0] == 0 || parts[1] == 0 || parts[2] == 0)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "token has an empty part");
    *token = t;
    return true;
}

/* Decodes one part to a JSON object. */
static const struct json_value *
auth_decode_part(struct arena *a, const char *src, size_t n, const char *what,
                 struct error *err)
{
    struct error jerr = ERROR_INIT;
    const struct json_value *v;
    char *text = NULL;
    size_t text_len = 0;

    if (!auth_b64url_decode(a, src, n, &text, &text_len)) {
        error_set(err, ERR_UNAUTHORIZED, NULL, "token %s is not base64url",
                  what);
        return NULL;
    }
    v = json_parse(a, text, text_len, AUTH_JSON_DEPTH, &jerr);
    if (v == NULL) {
        error_set(err, ERR_UNAUTHORIZED, NULL, "token %s is not JSON", what);
        return NULL;
    }
    if (v->type != JSON_OBJECT) {
        error_set(err, ERR_UNAUTHORIZED, NULL, "token %s is not a JSON object",
                  what);
        return NULL;
    }
    return v;
}

static bool
auth_check_header(const struct config *cfg, const struct json_value *h,
                  struct error *err)
{
    const struct json_value *alg = json_get(h, "alg");
    const struct json_value *typ = json_get(h, "typ");

    if (alg == NULL || alg->type != JSON_STRING)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "token header has no alg");
    /* Exact, case-sensitive (RFC 7515 section 4.1.1): "none", "None",
     * "hs256" and every other algorithm are all just "not ours". */
    if (!auth_str_eq(alg, auth_pin_name(cfg->jwt_pin)))
        return error_set(err, ERR_UNAUTHORIZED, NULL, "algorithm not allowed");
    if (typ != NULL && (typ->type != JSON_STRING || typ->u.s.len != 3 ||
                        strcasecmp(typ->u.s.ptr, "JWT") != 0))
        return error_set(err, ERR_UNAUTHORIZED, NULL, "token type must be JWT");
    /* We understand no extension, so a token that says it needs one must
     * be refused (RFC 7515 section 4.1.11). */
    if (json_get(h, "crit") != NULL)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "token header has unsupported crit");
    return true;
}

static bool
auth_check_claims(const struct config *cfg, const struct json_value *p,
                  int64_t now, const struct json_value **sub_out, bool *admin,
                  int64_t *exp_out, struct error *err)
{
    const struct json_value *exp = json_get(p, "exp");
    const struct json_value *nbf = json_get(p, "nbf");
    const struct json_value *iat = json_get(p, "iat");
    const struct json_value *sub = json_get(p, "sub");
    const struct json_value *roles = json_get(p, "roles");
    int64_t leeway = cfg->jwt_leeway > 0 ? cfg->jwt_leeway : 0;
    const char *problem;

    if (exp == NULL)
        return error_set(err, ERR_UNAUTHORIZED, NULL, "missing exp claim");
    if (exp->type != JSON_INT)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "exp claim must be an integer");
    if (auth_too_old(exp->u.i, leeway, now))
        return error_set(err, ERR_UNAUTHORIZED, NULL, "token expired");
    if (nbf != NULL && nbf->type != JSON_INT)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "nbf claim must be an integer");
    if (nbf != NULL && auth_too_new(nbf->u.i, leeway, now))
        return error_set(err, ERR_UNAUTHORIZED, NULL, "token not yet valid");
    if (iat != NULL && iat->type != JSON_INT)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "iat claim must be an integer");
    if (iat != NULL && auth_too_new(iat->u.i, leeway, now))
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "token issued in the future");
    /* jwt_max_lifetime: a token meant to live longer is refused (a leaked
     * long-lived token stays good too long), and iat is then needed to
     * know its lifetime. */
    if (cfg->jwt_max_lifetime > 0) {
        if (iat == NULL)
            return error_set(err, ERR_UNAUTHORIZED, NULL,
                             "missing iat claim (needed to check the "
                             "token's lifetime)");
        if (exp->u.i < iat->u.i)
            return error_set(err, ERR_UNAUTHORIZED, NULL,
                             "token expires before it was issued");
        if ((uint64_t)exp->u.i - (uint64_t)iat->u.i >
            (uint64_t)cfg->jwt_max_lifetime)
            return error_set(err, ERR_UNAUTHORIZED, NULL,
                             "token lifetime (exp - iat) longer than %d s",
                             cfg->jwt_max_lifetime);
    }

    if (cfg->jwt_issuer != NULL && cfg->jwt_issuer[0] != '\0') {
        const struct json_value *iss = json_get(p, "iss");

        if (iss == NULL)
            return error_set(err, ERR_UNAUTHORIZED, NULL, "missing iss claim");
        if (!auth_str_eq(iss, cfg->jwt_issuer))
            return error_set(err, ERR_UNAUTHORIZED, NULL, "wrong issuer");
    }
    if (cfg->jwt_audience != NULL && cfg->jwt_audience[0] != '\0') {
        const struct json_value *aud = json_get(p, "aud");
        bool found = auth_str_eq(aud, cfg->jwt_audience);

        if (aud == NULL)
            return error_set(err, ERR_UNAUTHORIZED, NULL, "missing aud claim");
        /* RFC 7519 section 4.1.3: one string, or an array of them. */
        if (aud->type == JSON_ARRAY)
            for (size_t i = 0; i < aud->u.a.len && !found; i++)
                found = auth_str_eq(aud->u.a.items[i], cfg->jwt_audience);
        if (!found)
            return error_set(err, ERR_UNAUTHORIZED, NULL, "wrong audience");
    }

    if (sub == NULL)
        return error_set(err, ERR_UNAUTHORIZED, NULL, "missing sub claim");
    if (sub->type != JSON_STRING)
        return error_set(err, ERR_UNAUTHORIZED, NULL,
                         "sub claim must be a string");
    problem = auth_sub_problem(sub->u.s.ptr, sub->u.s.len);
    if (problem != NULL)
        return error_set(err, ERR_UNAUTHORIZED, NULL, "%s", problem);

    /* roles is an application claim, not a registered one: anything but an
     * array holding "admin" simply grants nothing. */
    *admin = false;
    if (roles != NULL && roles->type == JSON_ARRAY)
        for (size_t i = 0; i < roles->u.a.len && !*admin; i++)
            *admin = auth_str_eq(roles->u.a.items[i], "admin");
    *sub_out = sub;
    *exp_out = exp->u.i;
    return true;
}

/* An empty key would make libjwt skip the signature; config_load() never
 * allows one, so meeting it here is a bug, not a bad token. */
static bool
auth_key_usable(const struct config *cfg, struct error *err)
{
    if (cfg->jwt_key == NULL || cfg->jwt_key_len == 0 ||
        cfg->jwt_key_len > INT_MAX || auth_pin_name(cfg->jwt_pin) == NULL)
        return error_set(err, ERR_INTERNAL, NULL,
                         "no usable JWT key configured");
    return true;
}

/* Everything after the key and syntax checks: token is the compact token
 * auth_split() found, parts its part lengths.  On success fills *user
 * from the arena and *exp with the exp claim. */
static bool
auth_verify(const struct config *cfg, struct arena *a, const char *token,
            const size_t parts[3], int64_t now, struct auth_user *user,
            int64_t *exp, struct error *err)
{
    jwt_t *jwt = NULL;
    const struct json_value *header = NULL, *payload = NULL, *sub = NULL;
    bool admin = false;
    bool ok = false;

    header = auth_decode_part(a, token, parts[0], "header", err);
    if (header == NULL || !auth_check_header(cfg, header, err))
        goto done;
    /* The payload is parsed now only so a malformed one gets an accurate
     * message (libjwt would call it a bad signature); its claims are not
     * looked at until the signature has been checked. */
    payload =
        auth_decode_part(a, token + parts[0] + 1, parts[1], "payload", err);
    if (payload == NULL)
        goto done;

    if (jwt_decode(&jwt, token, (const unsigned char *)cfg->jwt_key,
                   (int)cfg->jwt_key_len) != 0) {
        error_set(err, ERR_UNAUTHORIZED, NULL, "bad signature");
        goto done;
    }
    /* libjwt parsed the header again with its own JSON parser; make sure
     * it verified with the algorithm we pinned, not one it read itself. */
    if (jwt_get_alg(jwt) != auth_pin_alg(cfg->jwt_pin)) {
        error_set(err, ERR_UNAUTHORIZED, NULL, "algorithm not allowed");
        goto done;
    }

    /* The claims come from our decoding of the signed payload text, not
     * from libjwt's, so their JSON types are ours to judge. */
    if (!auth_check_claims(cfg, payload, now, &sub, &admin, exp, err))
        goto done;

    user->sub = arena_strndup(a, sub->u.s.ptr, sub->u.s.len);
    user->admin = admin;
    ok = true;
done:
    jwt_free(jwt);
    return ok;
}

bool
auth_check(const struct config *cfg, struct arena *a, const char *authorization,
           int64_t now, struct auth_user *user, struct error *err)
{
    const char *token = NULL;
    size_t parts[3] = {0, 0, 0};
    int64_t exp = 0;

    user->sub = NULL;
    user->admin = false;
    return auth_key_usable(cfg, err) &&
           auth_split(authorization, &token, parts, err) &&
           auth_verify(cfg, a, token, parts, now, user, &exp, err);
}

/* --- the cache of verified tokens -------------------------------------- */

struct auth_cache_entry {
    char *token; /* malloc'd; NULL: the slot is empty */
    size_t token_len;
    char *sub; /* malloc'd */
    bool admin;
    int64_t verified; /* wall-clock second of the full check */
    int64_t until;    /* last second the answer holds */
};

struct auth_cache {
    struct auth_cache_entry slots[AUTH_CACHE_SLOTS];
    /* The settings the entries were verified under; key NULL: none yet. */
    char *key;
    size_t key_len;
    enum jwt_alg_pin pin;
    int leeway;
    int max_lifetime;
    char *issuer;
    char *audience;
    uint64_t hits;
};

struct auth_cache *
auth_cache_new(void)
{
    struct auth_cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        abort();
    return c;
}

static char *
auth_memdup(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d == NULL)
        abort();
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* A token is a credential and the key a secret: neither is left behind
 * in freed memory. */
static void
auth_cache_slot_clear(struct auth_cache_entry *e)
{
    if (e->token != NULL)
        OPENSSL_cleanse(e->token, e->token_len);
    free(e->token);
    free(e->sub);
    memset(e, 0, sizeof(*e));
}

static void
auth_cache_clear(struct auth_cache *c)
{
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
        auth_cache_slot_clear(&c->slots[i]);
    if (c->key != NULL)
        OPENSSL_cleanse(c->key, c->key_len);
    free(c->key);
    free(c->issuer);
    free(c->audience);
    c->key = NULL;
    c->key_len = 0;
    c->issuer = NULL;
    c->audience = NULL;
}

uint64_t
auth_cache_hits(const struct auth_cache *c)
{
    return c->hits;
}

void
auth_cache_free(struct auth_cache *c)
{
    if (c == NULL)
        return;
    auth_cache_clear(c);
    free(c);
}

static bool
auth_same_text(const char *cached, const char *configured)
{
    return strcmp(cached, configured != NULL ? configured : "") == 0;
}

/* Makes sure the entries were verified under cfg's settings: if not, they
 * are dropped and cfg's settings recorded.  Compared by value, not by the
 * config's address, so that a config freed and another made at the same
 * address cannot inherit answers. */
static void
auth_cache_settings(struct auth_cache *c, const struct config *cfg)
{
    if (c->key != NULL && c->key_len == cfg->jwt_key_len &&
        memcmp(c->key, cfg->jwt_key, c->key_len) == 0 &&
        c->pin == cfg->jwt_pin && c->leeway == cfg->jwt_leeway &&
        c->max_lifetime == cfg->jwt_max_lifetime &&
        auth_same_text(c->issuer, cfg->jwt_issuer) &&
        auth_same_text(c->audience, cfg->jwt_audience))
        return;
    auth_cache_clear(c);
    c->key = auth_memdup(cfg->jwt_key, cfg->jwt_key_len);
    c->key_len = cfg->jwt_key_len;
    c->pin = cfg->jwt_pin;
    c->leeway = cfg->jwt_leeway;
    c->max_lifetime = cfg->jwt_max_lifetime;
    c->issuer = auth_memdup(cfg->jwt_issuer ? cfg->jwt_issuer : "",
                            cfg->jwt_issuer ? strlen(cfg->jwt_issuer) : 0);
    c->audience =
        auth_memdup(cfg->jwt_audience ? cfg->jwt_audience : "",
                    cfg->jwt_audience ? strlen(cfg->jwt_audience) : 0);
}

/* FNV-1a: only spreads tokens over the slots.  A client that makes its
 * tokens collide only evicts its own entries or costs others a full
 * check; correctness rests on the full compare, never on the hash. */
static size_t
auth_cache_slot(const char *token, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)token[i];
        h *= UINT64_C(1099511628211);
    }
    return (size_t)(h % AUTH_CACHE_SLOTS);
}

bool
auth_check_cached(struct auth_cache *c, const struct config *cfg,
                  struct arena *a, const char *authorization, int64_t now,
                  struct auth_user *user, struct error *err)
{
    const char *token = NULL;
    size_t parts[3] = {0, 0, 0}, n;
    struct auth_cache_entry *e;
    int64_t exp = 0, leeway;

    if (c == NULL)
        return auth_check(cfg, a, authorization, now, user, err);
    user->sub = NULL;
    user->admin = false;
    if (!auth_key_usable(cfg, err) ||
        !auth_split(authorization, &token, parts, err))
        return false;
    n = parts[0] + parts[1] + parts[2] + 2;
    auth_cache_settings(c, cfg);
    e = &c->slots[auth_cache_slot(token, n)];
    /* Constant time, so that timing cannot tell how much of a cached
     * token a guess got right. */
    if (e->token != NULL && e->token_len == n &&
        CRYPTO_memcmp(e->token, token, n) == 0) {
        if (now >= e->verified && now <= e->until) {
            user->sub = arena_strdup(a, e->sub);
            user->admin = e->admin;
            c->hits++;
            return true;
        }
        auth_cache_slot_clear(e); /* expired: the full check says why */
    }

    if (!auth_verify(cfg, a, token, parts, now, user, &exp, err))
        return false;
    /* until = min(exp + leeway, now + AUTH_CACHE_TTL), without overflow
     * whatever the token says; exp + leeway >= now, or it was expired. */
    leeway = cfg->jwt_leeway > 0 ? cfg->jwt_leeway : 0;
    auth_cache_slot_clear(e);
    e->token = auth_memdup(token, n);
    e->token_len = n;
    e->sub = auth_memdup(user->sub, strlen(user->sub));
    e->admin = user->admin;
    e->verified = now;
    e->until =
        now <= INT64_MAX - AUTH_CACHE_TTL ? now + AUTH_CACHE_TTL : INT64_MAX;
    if (exp <= INT64_MAX - leeway && exp + leeway < e->until)
        e->until = exp + leeway;
    return true;
}

char *
auth_mint(const struct config *cfg, const char *sub, int64_t now, int64_t ttl,
          bool admin, struct error *err)
{
    jwt_t *jwt = NULL;
    char *token = NULL;
    const char *problem;

    if (cfg->jwt_pin != JWT_PIN_HS256) {
        error_set(err, ERR_VALIDATION, NULL,
                  "token minting needs jwt_algorithm = HS256");
        goto done;
    }
    if (cfg->jwt_key == NULL || cfg->jwt_key_len == 0 ||
        cfg->jwt_key_len > INT_MAX) {
        error_set(err, ERR_INTERNAL, NULL, "no usable JWT key configured");
        goto done;
    }
    problem = sub == NULL ? "missing sub" : auth_sub_problem(sub, strlen(sub));
    if (problem != NULL) {
        error_set(err, ERR_VALIDATION, "sub", "%s", problem);
        goto done;
    }
    if (ttl < 1 || ttl > AUTH_TTL_MAX) {
        error_set(err, ERR_VALIDATION, "ttl", "ttl must be 1-%d seconds",
                  AUTH_TTL_MAX);
        goto done;
    }
    /* libjwt stores integer grants as long. */
    if (now < 0 || now > LONG_MAX - ttl) {
        error_set(err, ERR_VALIDATION, NULL, "clock out of range");
        goto done;
    }
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", sub) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) != 0 ||
        (admin && jwt_add_grants_json(jwt, "{\"roles\":[\"admin\"]}") != 0) ||
        (cfg->jwt_issuer != NULL && cfg->jwt_issuer[0] != '\0' &&
         jwt_add_grant(jwt, "iss", cfg->jwt_issuer) != 0) ||
        (cfg->jwt_audience != NULL && cfg->jwt_audience[0] != '\0' &&
         jwt_add_grant(jwt, "aud", cfg->jwt_audience) != 0) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_key,
                    (int)cfg->jwt_key_len) != 0) {
        error_set(err, ERR_INTERNAL, NULL, "cannot build token");
        goto done;
    }
    /* libjwt 1.10 allocates with plain malloc() (no jwt_set_alloc() yet),
     * so the caller's free() matches, as auth.h promises. */
    token = jwt_encode_str(jwt);
    if (token == NULL)
        error_set(err, ERR_INTERNAL, NULL, "cannot encode token");
done:
    jwt_free(jwt);
    return token;
}

/*
 * check_auth.c - bearer-token checks, all through auth_check()/auth_mint()
 * with a struct config filled by hand.
 *
 * Signed tokens are made two ways: with libjwt (RS256, ES256, HS512) and
 * by hand, base64url of exact JSON text plus OpenSSL's HMAC() (so this
 * file links -lcrypto), which lets a test put any bytes it likes in the
 * header and payload and still carry a valid HS256 signature.  The RSA and
 * EC keys in tests/keys/ were made for these tests only and protect
 * nothing; they are found under $top_srcdir (set by `make check`), else
 * the current directory.
 */
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "error.h"
#include "suites.h"

#define NOW          INT64_C(1763700000)
#define SECRET       "0123456789abcdef0123456789abcdef-test-secret"
#define OTHER_SECRET "fedcba9876543210fedcba9876543210-other-secret"
#define HDR_HS256    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static struct arena ta;

static void
setup(void)
{
    arena_init(&ta, 0);
}

static void
teardown(void)
{
    arena_release(&ta);
}

static struct config
cfg_with(enum jwt_alg_pin pin, const char *key, size_t key_len)
{
    struct config c;

    memset(&c, 0, sizeof(c));
    c.jwt_pin = pin;
    c.jwt_key = (char *)(uintptr_t)key; /* never written through */
    c.jwt_key_len = key_len;
    c.jwt_leeway = 60;
    c.jwt_issuer = "";
    c.jwt_audience = "";
    return c;
}

static struct config
cfg_hs(void)
{
    return cfg_with(JWT_PIN_HS256, SECRET, strlen(SECRET));
}

static const char *
read_key(const char *name, size_t *len)
{
    const char *top = getenv("top_srcdir");
    char *path = arena_printf(&ta, "%s/tests/keys/%s",
                              top != NULL && top[0] != '\0' ? top : ".", name);
    FILE *f = fopen(path, "rb");
    char *data = arena_alloc(&ta, 16384);
    size_t n;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    n = fread(data, 1, 16383, f);
    fclose(f);
    ck_assert_uint_gt(n, 0);
    data[n] = '\0';
    *len = n;
    return data;
}

static char *
b64url(const void *data, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = data;
    char *out = arena_alloc(&ta, n / 3 * 4 + 5);
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        out[o++] = tab[s[i] >> 2];
        out[o++] = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        out[o++] = tab[s[i + 2] & 63];
    }
    if (n - i == 1) {
        out[o++] = tab[s[i] >> 2];
        out[o++] = tab[(s[i] & 3) << 4];
    } else if (n - i == 2) {
        out[o++] = tab[s[i] >> 2];
        out[o++] = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = tab[(s[i + 1] & 15) << 2];
    }
    out[o] = '\0';
    return out;
}

/* "<b64 header>.<b64 payload>" signed with HMAC-SHA256 under key. */
static char *
hs_token_key(const char *key, size_t key_len, const char *header,
             const char *payload)
{
    char *input = arena_printf(&ta, "%s.%s", b64url(header, strlen(header)),
                               b64url(payload, strlen(payload)));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)key_len,
                               (const unsigned char *)input, strlen(input), mac,
                               &mac_len));
    return arena_printf(&ta, "%s.%s", input, b64url(mac, mac_len));
}

static char *
hs_token(const char *header, const char *payload)
{
    return hs_token_key(SECRET, strlen(SECRET), header, payload);
}

/* A token signed by libjwt; payload is a JSON object of grants. */
static char *
lib_token(jwt_alg_t alg, const char *key, size_t key_len, const char *payload)
{
    jwt_t *jwt = NULL;
    char *s, *copy;

    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, payload), 0);
    ck_assert_int_eq(
        jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)key_len), 0);
    s = jwt_encode_str(jwt);
    jwt_free(jwt);
    ck_assert_ptr_nonnull(s);
    copy = arena_strdup(&ta, s);
    free(s);
    return copy;
}

/* A payload with exp an hour ahead and the given extra members. */
static char *
claims(const char *extra)
{
    return arena_printf(&ta, "{\"sub\":\"alice\",\"exp\":%lld%s%s}",
                        (long long)(NOW + 3600), extra[0] ? "," : "", extra);
}

static bool
check_header(const struct config *c, const char *authorization,
             struct auth_user *u, struct error *e)
{
    error_clear(e);
    u->sub = "untouched";
    u->admin = true;
    return auth_check(c, &ta, authorization, NOW, u, e);
}

static bool
check_tok(const struct config *c, const char *tok, struct auth_user *u,
          struct error *e)
{
    return check_header(c, arena_printf(&ta, "Bearer %s", tok), u, e);
}

/* Macros, so a failure names the test's own line. */
#define ACCEPT(c, tok, want_sub, want_admin)                                   \
    do {                                                                       \
        struct auth_user u_;                                                   \
        struct error e_;                                                       \
        bool ok_ = check_tok((c), (tok), &u_, &e_);                            \
        ck_assert_msg(ok_, "rejected: %s", e_.message);                        \
        ck_assert_int_eq(e_.code, ERR_NONE);                                   \
        ck_assert_str_eq(u_.sub, (want_sub));                                  \
        ck_assert(u_.admin == (want_admin));                                   \
    } while (0)

#define REJECT_HEADER(c, authz, want_msg)                                      \
    do {                                                                       \
        struct auth_user u_;                                                   \
        struct error e_;                                                       \
        bool ok_ = check_header((c), (authz), &u_, &e_);                       \
        ck_assert(!ok_);                                                       \
        ck_assert_int_eq(e_.code, ERR_UNAUTHORIZED);                           \
        ck_assert_str_eq(e_.message, (want_msg));                              \
        ck_assert_ptr_null(e_.param);                                          \
        ck_assert_ptr_null(u_.sub);                                            \
        ck_assert(!u_.admin);                                                  \
    } while (0)

#define REJECT(c, tok, want_msg)                                               \
    REJECT_HEADER((c), arena_printf(&ta, "Bearer %s", (tok)), (want_msg))

/* --- valid tokens ------------------------------------------------------- */

START_TEST(valid_hs256_user)
{
    struct config c = cfg_hs();

    ACCEPT(&c, hs_token(HDR_HS256, claims("")), "alice", false);
    /* typ is optional, and compared case-insensitively. */
    ACCEPT(&c, hs_token("{\"alg\":\"HS256\"}", claims("")), "alice", false);
    ACCEPT(&c, hs_token("{\"typ\":\"jwt\",\"alg\":\"HS256\"}", claims("")),
           "alice", false);
    /* Made by libjwt, so its base64 and JSON are not only ours. */
    ACCEPT(&c, lib_token(JWT_ALG_HS256, SECRET, strlen(SECRET), claims("")),
           "alice", false);
}
END_TEST

START_TEST(valid_hs256_admin)
{
    struct config c = cfg_hs();

    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":[\"admin\"]")), "alice",
           true);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":[\"reader\",\"admin\"]")),
           "alice", true);
}
END_TEST

START_TEST(roles_that_grant_nothing)
{
    struct config c = cfg_hs();

    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":\"admin\"")), "alice",
           false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":{\"admin\":true}")),
           "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":[\"Admin\",1,null]")),
           "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":[[\"admin\"]]")), "alice",
           false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"roles\":[]")), "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"admin\":true")), "alice", false);
}
END_TEST

START_TEST(sub_is_copied_to_the_arena)
{
    struct config c = cfg_hs();
    char *tok = hs_token(HDR_HS256, claims(""));
    char *authz = arena_printf(&ta, "Bearer %s", tok);
    struct auth_user u;
    struct error e = ERROR_INIT;

    ck_assert(auth_check(&c, &ta, authz, NOW, &u, &e));
    memset(authz, 'x', strlen(authz)); /* the header's buffer goes away */
    ck_assert_str_eq(u.sub, "alice");
}
END_TEST

/* --- the Authorization header ------------------------------------------- */

START_TEST(missing_header)
{
    struct config c = cfg_hs();

    REJECT_HEADER(&c, NULL, "missing Authorization header");
    REJECT_HEADER(&c, "", "missing Authorization header");
}
END_TEST

START_TEST(wrong_scheme)
{
    struct config c = cfg_hs();
    char *tok = hs_token(HDR_HS256, claims(""));

    REJECT_HEADER(&c, "Basic x", "Authorization scheme must be Bearer");
    REJECT_HEADER(&c, arena_printf(&ta, "Basic %s", tok),
                  "Authorization scheme must be Bearer");
    REJECT_HEADER(&c, arena_printf(&ta, "Bearer%s", tok),
                  "Authorization scheme must be Bearer");
    REJECT_HEADER(&c, arena_printf(&ta, "Bearer\t%s", tok),
                  "Authorization scheme must be Bearer");
    REJECT_HEADER(&c, arena_printf(&ta, "Bear %s", tok),
                  "Authorization scheme must be Bearer");
    REJECT_HEADER(&c, arena_printf(&ta, " Bearer %s", tok),
                  "Authorization scheme must be Bearer");
    REJECT_HEADER(&c, "Bearer", "missing bearer token");
    REJECT_HEADER(&c, "Bearer ", "missing bearer token");
    REJECT_HEADER(&c, arena_printf(&ta, "Bearer  %s", tok),
                  "token is not base64url");
    REJECT_HEADER(&c, arena_printf(&ta, "Bearer %s ", tok),
                  "token is not base64url");
    REJECT_HEADER(&c, arena_printf(&ta, "Bearer %s x", tok),
                  "token is not base64url");
}
END_TEST

START_TEST(scheme_is_case_insensitive)
{
    struct config c = cfg_hs();
    char *tok = hs_token(HDR_HS256, claims(""));
    const char *schemes[] = {"bearer", "BEARER", "bEaReR"};

    for (size_t i = 0; i < 3; i++) {
        struct auth_user u;
        struct error e;

        ck_assert_msg(check_header(&c,
                                   arena_printf(&ta, "%s %s", schemes[i], tok),
                                   &u, &e),
                      "%s: %s", schemes[i], e.message);
        ck_assert_str_eq(u.sub, "alice");
    }
}
END_TEST

/* A correctly signed token of exactly `want` bytes, or NULL. */
static char *
token_of_length(size_t want)
{
    /* Base64 lengths 36 and 38: between them every total is reachable,
     * though unpadded base64 is never 1 mod 4 long. */
    const char *headers[] = {HDR_HS256, "{\"alg\":\"HS256\",\"typ\":\"JWT\" }"};

    /* The payload's base64 grows 4 characters per 3 bytes of padding;
     * start a little short of the length wanted and walk up. */
    for (size_t pad = (want - 200) / 4 * 3; pad < want; pad++) {
        char *fill = arena_alloc(&ta, pad + 1);

        memset(fill, 'p', pad);
        fill[pad] = '\0';
        for (size_t h = 0; h < 2; h++) {
            char *tok = hs_token(
                headers[h], claims(arena_printf(&ta, "\"pad\":\"%s\"", fill)));
            size_t n = strlen(tok);

            if (n == want)
                return tok;
            if (h == 0 && n > want + 8)
                return NULL;
        }
    }
    return NULL;
}

START_TEST(token_length_limit)
{
    struct config c = cfg_hs();
    char *at_limit = token_of_length(AUTH_MAX_TOKEN_BYTES);
    char *over = token_of_length(AUTH_MAX_TOKEN_BYTES + 1);

    ck_assert_ptr_nonnull(at_limit);
    ck_assert_ptr_nonnull(over);
    ck_assert_uint_eq(strlen(at_limit), 8192);
    ck_assert_uint_eq(strlen(over), 8193);
    ACCEPT(&c, at_limit, "alice", false);
    REJECT(&c, over, "token too long");

    /* Far past the limit, and not even a token: the length check comes
     * first and reads no further than limit + 1. */
    {
        char *huge = arena_alloc(&ta, 100001);

        memset(huge, 'A', 100000);
        huge[100000] = '\0';
        REJECT(&c, huge, "token too long");
    }
}
END_TEST

START_TEST(part_structure)
{
    struct config c = cfg_hs();
    char *tok = hs_token(HDR_HS256, claims(""));
    char *first_dot = strchr(tok, '.');
    char *last_dot = strrchr(tok, '.');
    char *hp = arena_strndup(&ta, tok, (size_t)(last_dot - tok));

    REJECT(&c, "abc", "token must have three parts");
    REJECT(&c, hp, "token must have three parts");
    REJECT(&c, arena_printf(&ta, "%s.xyz", tok), "token must have three parts");
    REJECT(&c, arena_printf(&ta, "%s.", tok), "token must have three parts");
    REJECT(&c, "a.b.c.d", "token must have three parts");
    REJECT(&c, "..", "token has an empty part");
    REJECT(&c, arena_printf(&ta, ".%s", first_dot + 1),
           "token has an empty part");
    REJECT(&c,
           arena_printf(&ta, "%.*s..%s", (int)(first_dot - tok), tok,
                        last_dot + 1),
           "token has an empty part");
    /* A stripped signature: "header.payload." */
    REJECT(&c, arena_printf(&ta, "%s.", hp), "token has an empty part");
}
END_TEST

START_TEST(part_alphabet)
{
    struct config c = cfg_hs();
    char *tok = hs_token(HDR_HS256, claims(""));
    char *last_dot = strrchr(tok, '.');
    char *hp = arena_strndup(&ta, tok, (size_t)(last_dot - tok));

    /* '=' padding, the standard alphabet's '+' and '/', white space and
     * anything else are all outside base64url. */
    REJECT(&c, arena_printf(&ta, "%s=", tok), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.abc=", hp), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.ab+c", hp), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.ab/c", hp), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.ab c", hp), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.ab\tc", hp), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.ab!c", hp), "token is not base64url");
    REJECT(&c, arena_printf(&ta, "%s.ab\xc3\xa9", hp),
           "token is not base64url");
    REJECT(&c, "a+b.c.d", "token is not base64url");
}
END_TEST

START_TEST(part_not_decodable)
{
    struct config c = cfg_hs();
    char *tok = hs_token(HDR_HS256, claims(""));
    char *first_dot = strchr(tok, '.');

    /* Five characters (1 mod 4) cannot be base64 of anything. */
    REJECT(&c, arena_printf(&ta, "eyJhb%s", first_dot),
           "token header is not base64url");
    /* "e30" is "{}"; "e31" would decode to the same bytes but leaves
     * non-zero bits behind, so it is no canonical encoding of anything. */
    REJECT(&c, arena_printf(&ta, "e30%s", first_dot),
           "token header has no alg");
    REJECT(&c, arena_printf(&ta, "e31%s", first_dot),
           "token header is not base64url");
}
END_TEST

/* --- the header --------------------------------------------------------- */

START_TEST(header_not_json)
{
    struct config c = cfg_hs();
    const char *p = claims("");

    REJECT(&c, hs_token("{alg:HS256}", p), "token header is not JSON");
    REJECT(&c, hs_token("{\"alg\":\"HS256\"", p), "token header is not JSON");
    REJECT(&c, hs_token("{\"alg\":\"HS256\"} x", p),
           "token header is not JSON");
    REJECT(&c, hs_token("[\"HS256\"]", p), "token header is not a JSON object");
    REJECT(&c, hs_token("\"HS256\"", p), "token header is not a JSON object");
    REJECT(&c, hs_token("{}", p), "token header has no alg");
    REJECT(&c, hs_token("{\"alg\":256}", p), "token header has no alg");
    REJECT(&c, hs_token("{\"alg\":null}", p), "token header has no alg");
    REJECT(&c, hs_token("{\"alg\":[\"HS256\"]}", p), "token header has no alg");
}
END_TEST

START_TEST(header_typ_and_crit)
{
    struct config c = cfg_hs();
    const char *p = claims("");

    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", p),
           "token type must be JWT");
    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"typ\":\"JWTX\"}", p),
           "token type must be JWT");
    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", p),
           "token type must be JWT");
    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"typ\":1}", p),
           "token type must be JWT");
    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"typ\":null}", p),
           "token type must be JWT");
    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p),
           "token header has unsupported crit");
    REJECT(&c, hs_token("{\"alg\":\"HS256\",\"crit\":[]}", p),
           "token header has unsupported crit");
}
END_TEST

START_TEST(alg_none)
{
    struct config c = cfg_hs();
    const char *nones[] = {"none", "None", "NONE", "nOnE"};
    const char *p = claims("\"roles\":[\"admin\"]");

    for (size_t i = 0; i < 4; i++) {
        char *h =
            arena_printf(&ta, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", nones[i]);
        char *signed_tok = hs_token(h, p);
        char *unsigned_tok =
            arena_strndup(&ta, signed_tok,
                          (size_t)(strrchr(signed_tok, '.') + 1 - signed_tok));

        /* The usual form: an empty signature. */
        REJECT(&c, unsigned_tok, "token has an empty part");
        /* With a signature, even one made with the right secret. */
        REJECT(&c, signed_tok, "algorithm not allowed");
        REJECT(&c, arena_printf(&ta, "%sc2ln", unsigned_tok),
               "algorithm not allowed");
    }
}
END_TEST

START_TEST(alg_other_than_pinned)
{
    struct config c = cfg_hs();
    const char *p = claims("");

    /* Signed with the configured secret, but not with the configured
     * algorithm. */
    REJECT(&c, lib_token(JWT_ALG_HS512, SECRET, strlen(SECRET), p),
           "algorithm not allowed");
    REJECT(&c, lib_token(JWT_ALG_HS384, SECRET, strlen(SECRET), p),
           "algorithm not allowed");
    REJECT(&c, hs_token("{\"alg\":\"hs256\"}", p), "algorithm not allowed");
    REJECT(&c, hs_token("{\"alg\":\"HS256 \"}", p), "algorithm not allowed");
    REJECT(&c, hs_token("{\"alg\":\"RS256\"}", p), "algorithm not allowed");
    REJECT(&c, hs_token("{\"alg\":\"\"}", p), "algorithm not allowed");
}
END_TEST

START_TEST(duplicate_alg_in_header)
{
    struct config c = cfg_hs();
    struct auth_user u;
    struct error e;

    /* jansson (libjwt's parser) keeps the last duplicate; json.h refuses
     * duplicates, so the two can never disagree about the algorithm. */
    ck_assert(!check_tok(
        &c, hs_token("{\"alg\":\"none\",\"alg\":\"HS256\"}", claims("")), &u,
        &e));
    ck_assert_int_eq(e.code, ERR_UNAUTHORIZED);
    ck_assert(!check_tok(
        &c, hs_token("{\"alg\":\"HS256\",\"alg\":\"HS512\"}", claims("")), &u,
        &e));
    ck_assert_int_eq(e.code, ERR_UNAUTHORIZED);
}
END_TEST

/* --- signatures --------------------------------------------------------- */

START_TEST(hs256_with_public_key_confusion)
{
    size_t pub_len = 0, priv_len = 0;
    const char *pub = read_key("rsa_public.pem", &pub_len);
    const char *priv = read_key("rsa_private.pem", &priv_len);
    struct config c = cfg_with(JWT_PIN_RS256, pub, pub_len);
    char *forged =
        hs_token_key(pub, pub_len, HDR_HS256, claims("\"roles\":[\"admin\"]"));
    jwt_t *jwt = NULL;

    /* The attack is real: libjwt on its own takes the forgery. */
    ck_assert_int_eq(
        jwt_decode(&jwt, forged, (const unsigned char *)pub, (int)pub_len), 0);
    jwt_free(jwt);

    REJECT(&c, forged, "algorithm not allowed");
    /* The same forgery with the header claiming RS256 fails the RSA check. */
    REJECT(&c,
           hs_token_key(pub, pub_len, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                        claims("")),
           "bad signature");
    ACCEPT(&c, lib_token(JWT_ALG_RS256, priv, priv_len, claims("")), "alice",
           false);
}
END_TEST

START_TEST(valid_rs256)
{
    size_t pub_len = 0, priv_len = 0;
    const char *pub = read_key("rsa_public.pem", &pub_len);
    const char *priv = read_key("rsa_private.pem", &priv_len);
    struct config c = cfg_with(JWT_PIN_RS256, pub, pub_len);

    ACCEPT(&c, lib_token(JWT_ALG_RS256, priv, priv_len, claims("")), "alice",
           false);
    ACCEPT(&c,
           lib_token(JWT_ALG_RS256, priv, priv_len,
                     claims("\"roles\":[\"admin\"]")),
           "alice", true);
    REJECT(&c, lib_token(JWT_ALG_RS512, priv, priv_len, claims("")),
           "algorithm not allowed");
}
END_TEST

START_TEST(es256_pinned)
{
    size_t pub_len = 0, priv_len = 0, rpriv_len = 0;
    const char *pub = read_key("ec_public.pem", &pub_len);
    const char *priv = read_key("ec_private.pem", &priv_len);
    const char *rpriv = read_key("rsa_private.pem", &rpriv_len);
    struct config c = cfg_with(JWT_PIN_ES256, pub, pub_len);
    char *good = lib_token(JWT_ALG_ES256, priv, priv_len, claims(""));

    ACCEPT(&c, good, "alice", false);
    REJECT(&c, lib_token(JWT_ALG_RS256, rpriv, rpriv_len, claims("")),
           "algorithm not allowed");
    REJECT(&c, hs_token_key(pub, pub_len, HDR_HS256, claims("")),
           "algorithm not allowed");
    REJECT(&c, lib_token(JWT_ALG_ES384, priv, priv_len, claims("")),
           "algorithm not allowed");
    /* An RS256-shaped signature under an ES256 header. */
    {
        char *rs = lib_token(JWT_ALG_RS256, rpriv, rpriv_len, claims(""));
        char *hp =
            arena_strndup(&ta, good, (size_t)(strrchr(good, '.') - good));

        REJECT(&c, arena_printf(&ta, "%s%s", hp, strrchr(rs, '.')),
               "bad signature");
    }
}
END_TEST

START_TEST(foreign_signature)
{
    struct config c = cfg_hs();
    char *mine = hs_token(HDR_HS256, claims(""));
    char *other_key =
        hs_token_key(OTHER_SECRET, strlen(OTHER_SECRET), HDR_HS256, claims(""));
    char *other_payload = hs_token(HDR_HS256, claims("\"roles\":[\"admin\"]"));
    char *hp_mine =
        arena_strndup(&ta, mine, (size_t)(strrchr(mine, '.') - mine));
    char *hp_admin =
        arena_strndup(&ta, other_payload,
                      (size_t)(strrchr(other_payload, '.') - other_payload));

    REJECT(&c, other_key, "bad signature");
    /* mine's payload with the signature of another payload, and back. */
    REJECT(&c, arena_printf(&ta, "%s%s", hp_admin, strrchr(mine, '.')),
           "bad signature");
    REJECT(&c, arena_printf(&ta, "%s%s", hp_mine, strrchr(other_payload, '.')),
           "bad signature");
    /* Short, long and flipped signatures. */
    REJECT(&c, arena_printf(&ta, "%s.AAAA", hp_mine), "bad signature");
    REJECT(&c, arena_printf(&ta, "%s%sAAAA", hp_mine, strrchr(mine, '.')),
           "bad signature");
    {
        char *flipped = arena_strdup(&ta, mine);
        char *sig = strrchr(flipped, '.') + 1;

        sig[0] = sig[0] == 'A' ? 'B' : 'A';
        REJECT(&c, flipped, "bad signature");
    }
    /* The message never carries the token or its signature. */
    {
        struct auth_user u;
        struct error e;

        ck_assert(!check_tok(&c, other_key, &u, &e));
        ck_assert_ptr_null(strstr(e.message, strrchr(other_key, '.') + 1));
        ck_assert_ptr_null(strstr(e.message, "eyJ"));
    }
}
END_TEST

START_TEST(empty_key_is_refused)
{
    struct config c = cfg_with(JWT_PIN_HS256, "", 0);
    struct config n = cfg_with(JWT_PIN_HS256, NULL, 0);
    char *tok = hs_token_key("", 0, HDR_HS256, claims(""));
    struct auth_user u;
    struct error e;

    ck_assert(!check_tok(&c, tok, &u, &e));
    ck_assert_int_eq(e.code, ERR_INTERNAL);
    ck_assert_str_eq(e.message, "no usable JWT key configured");
    ck_assert_ptr_null(u.sub);
    ck_assert(!check_tok(&n, tok, &u, &e));
    ck_assert_int_eq(e.code, ERR_INTERNAL);
}
END_TEST

/* --- claims ------------------------------------------------------------- */

static char *
with_exp(int64_t exp)
{
    return arena_printf(&ta, "{\"sub\":\"alice\",\"exp\":%lld}",
                        (long long)exp);
}

START_TEST(exp_claim)
{
    struct config c = cfg_hs();

    REJECT(&c, hs_token(HDR_HS256, "{\"sub\":\"alice\"}"), "missing exp claim");
    REJECT(&c,
           hs_token(HDR_HS256, "{\"sub\":\"alice\",\"exp\":\"9999999999\"}"),
           "exp claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, "{\"sub\":\"alice\",\"exp\":1.5e10}"),
           "exp claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, "{\"sub\":\"alice\",\"exp\":9999999999.0}"),
           "exp claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, "{\"sub\":\"alice\",\"exp\":true}"),
           "exp claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, "{\"sub\":\"alice\",\"exp\":null}"),
           "exp claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, "{\"sub\":\"alice\",\"exp\":[9999999999]}"),
           "exp claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, with_exp(NOW - 61)), "token expired");
    REJECT(&c, hs_token(HDR_HS256, with_exp(INT64_MIN)), "token expired");
    ACCEPT(&c, hs_token(HDR_HS256, with_exp(NOW - 60)), "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, with_exp(NOW - 59)), "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, with_exp(NOW)), "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, with_exp(INT64_MAX)), "alice", false);
}
END_TEST

START_TEST(exp_with_zero_leeway)
{
    struct config c = cfg_hs();

    c.jwt_leeway = 0;
    ACCEPT(&c, hs_token(HDR_HS256, with_exp(NOW)), "alice", false);
    REJECT(&c, hs_token(HDR_HS256, with_exp(NOW - 1)), "token expired");
}
END_TEST

START_TEST(time_claims_with_zero_leeway)
{
    struct config c = cfg_hs();

    c.jwt_leeway = 0;
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, "\"nbf\":%lld", (long long)NOW))),
           "alice", false);
    REJECT(&c,
           hs_token(HDR_HS256, claims(arena_printf(&ta, "\"nbf\":%lld",
                                                   (long long)(NOW + 1)))),
           "token not yet valid");
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, "\"iat\":%lld", (long long)NOW))),
           "alice", false);
    REJECT(&c,
           hs_token(HDR_HS256, claims(arena_printf(&ta, "\"iat\":%lld",
                                                   (long long)(NOW + 1)))),
           "token issued in the future");
}
END_TEST

START_TEST(nbf_claim)
{
    struct config c = cfg_hs();
    const char *fmt = "\"nbf\":%lld";

    REJECT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)(NOW + 61)))),
           "token not yet valid");
    REJECT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)INT64_MAX))),
           "token not yet valid");
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)(NOW + 60)))),
           "alice", false);
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)(NOW + 59)))),
           "alice", false);
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)(NOW - 86400)))),
           "alice", false);
    REJECT(&c, hs_token(HDR_HS256, claims("\"nbf\":\"0\"")),
           "nbf claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, claims("\"nbf\":1.5")),
           "nbf claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, claims("\"nbf\":null")),
           "nbf claim must be an integer");
}
END_TEST

START_TEST(iat_claim)
{
    struct config c = cfg_hs();
    const char *fmt = "\"iat\":%lld";

    REJECT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)(NOW + 61)))),
           "token issued in the future");
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    claims(arena_printf(&ta, fmt, (long long)(NOW + 59)))),
           "alice", false);
    ACCEPT(&c,
           hs_token(HDR_HS256, claims(arena_printf(&ta, fmt, (long long)NOW))),
           "alice", false);
    REJECT(&c, hs_token(HDR_HS256, claims("\"iat\":1e9")),
           "iat claim must be an integer");
    REJECT(&c, hs_token(HDR_HS256, claims("\"iat\":\"1700000000\"")),
           "iat claim must be an integer");
}
END_TEST

/* jwt_max_lifetime: exp - iat at most that, and iat then required. */
START_TEST(max_lifetime)
{
    struct config c = cfg_hs();
    const char *pair = "\"sub\":\"alice\",\"iat\":%lld,\"exp\":%lld";

    /* off (0): a ten-year token with no iat is fine */
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    arena_printf(&ta, "{\"sub\":\"alice\",\"exp\":%lld}",
                                 (long long)(NOW + 315360000))),
           "alice", false);
    c.jwt_max_lifetime = 3600;
    REJECT(&c, hs_token(HDR_HS256, claims("")),
           "missing iat claim (needed to check the token's lifetime)");
    ACCEPT(&c,
           hs_token(HDR_HS256,
                    arena_printf(&ta, "{%s}",
                                 arena_printf(&ta, pair, (long long)NOW,
                                              (long long)(NOW + 3600)))),
           "alice", false);
    REJECT(&c,
           hs_token(HDR_HS256,
                    arena_printf(&ta, "{%s}",
                                 arena_printf(&ta, pair, (long long)NOW,
                                              (long long)(NOW + 3601)))),
           "token lifetime (exp - iat) longer than 3600 s");
    /* issued long ago, still inside exp: its lifetime is what counts */
    REJECT(
        &c,
        hs_token(HDR_HS256,
                 arena_printf(&ta, "{%s}",
                              arena_printf(&ta, pair, (long long)(NOW - 86400),
                                           (long long)(NOW + 60)))),
        "token lifetime (exp - iat) longer than 3600 s");
    REJECT(&c,
           hs_token(HDR_HS256,
                    arena_printf(&ta, "{%s}",
                                 arena_printf(&ta, pair, (long long)(NOW - 200),
                                              (long long)(NOW - 100)))),
           "token expired");
    REJECT(
        &c,
        hs_token(HDR_HS256, arena_printf(&ta, "{%s}",
                                         arena_printf(&ta, pair, (long long)NOW,
                                                      (long long)(NOW - 30)))),
        "token expires before it was issued");
    /* the extremes of int64 do not wrap into a short lifetime */
    REJECT(&c,
           hs_token(HDR_HS256, arena_printf(&ta,
                                            "{\"sub\":\"alice\",\"iat\":%lld,"
                                            "\"exp\":9223372036854775807}",
                                            (long long)(NOW - 10))),
           "token lifetime (exp - iat) longer than 3600 s");
}
END_TEST

START_TEST(iss_claim)
{
    struct config c = cfg_hs();

    /* Not configured: not looked at. */
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"iss\":\"anyone\"")), "alice",
           false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"iss\":5")), "alice", false);

    c.jwt_issuer = "https://issuer.example";
    ACCEPT(&c,
           hs_token(HDR_HS256, claims("\"iss\":\"https://issuer.example\"")),
           "alice", false);
    REJECT(&c, hs_token(HDR_HS256, claims("")), "missing iss claim");
    REJECT(&c, hs_token(HDR_HS256, claims("\"iss\":\"https://evil.example\"")),
           "wrong issuer");
    REJECT(&c,
           hs_token(HDR_HS256, claims("\"iss\":\"https://issuer.example/\"")),
           "wrong issuer");
    REJECT(&c, hs_token(HDR_HS256, claims("\"iss\":\"https://issuer.exampl\"")),
           "wrong issuer");
    REJECT(&c,
           hs_token(HDR_HS256, claims("\"iss\":[\"https://issuer.example\"]")),
           "wrong issuer");
    REJECT(&c, hs_token(HDR_HS256, claims("\"iss\":null")), "wrong issuer");
}
END_TEST

START_TEST(aud_claim)
{
    struct config c = cfg_hs();

    ACCEPT(&c, hs_token(HDR_HS256, claims("\"aud\":\"whatever\"")), "alice",
           false);

    c.jwt_audience = "parley";
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"aud\":\"parley\"")), "alice",
           false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"aud\":[\"other\",\"parley\"]")),
           "alice", false);
    ACCEPT(&c, hs_token(HDR_HS256, claims("\"aud\":[\"parley\"]")), "alice",
           false);
    REJECT(&c, hs_token(HDR_HS256, claims("")), "missing aud claim");
    REJECT(&c, hs_token(HDR_HS256, claims("\"aud\":\"other\"")),
           "wrong audience");
    REJECT(&c, hs_token(HDR_HS256, claims("\"aud\":\"Parley\"")),
           "wrong audience");
    REJECT(&c, hs_token(HDR_HS256, claims("\"aud\":[\"other\",\"more\"]")),
           "wrong audience");
    REJECT(&c, hs_token(HDR_HS256, claims("\"aud\":[]")), "wrong audience");
    REJECT(&c, hs_token(HDR_HS256, claims("\"aud\":[[\"parley\"]]")),
           "wrong audience");
    REJECT(&c, hs_token(HDR_HS256, claims("\"aud\":{\"parley\":1}")),
           "wrong audience");
}
END_TEST

static char *
with_sub(const char *sub_json)
{
    return arena_printf(&ta, "{\"sub\":%s,\"exp\":%lld}", sub_json,
                        (long long)(NOW + 3600));
}

static char *
repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = arena_alloc(&ta, n * times + 1);

    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

START_TEST(sub_claim)
{
    struct config c = cfg_hs();
    char *ascii255 = repeat("a", 255);
    /* 255 characters, 1 + 2 + 3 + 4 bytes each in turn (638 bytes). */
    char *multi255 = arena_printf(
        &ta, "%s%s%s", repeat("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 63),
        "a\xc3\xa9", "\xe2\x82\xac");

    REJECT(&c, hs_token(HDR_HS256, with_sub("\"\"")), "sub claim is empty");
    REJECT(&c,
           hs_token(HDR_HS256, arena_printf(&ta, "{\"exp\":%lld}",
                                            (long long)(NOW + 3600))),
           "missing sub claim");
    /* json.h refuses a NUL escape outright. */
    REJECT(&c, hs_token(HDR_HS256, with_sub("\"a\\u0000b\"")),
           "token payload is not JSON");
    REJECT(&c, hs_token(HDR_HS256, with_sub("42")),
           "sub claim must be a string");
    REJECT(&c, hs_token(HDR_HS256, with_sub("null")),
           "sub claim must be a string");
    REJECT(&c, hs_token(HDR_HS256, with_sub("[\"alice\"]")),
           "sub claim must be a string");
    REJECT(&c, hs_token(HDR_HS256, with_sub("{\"id\":\"alice\"}")),
           "sub claim must be a string");

    ACCEPT(&c,
           hs_token(HDR_HS256, with_sub(arena_printf(&ta, "\"%s\"", ascii255))),
           ascii255, false);
    REJECT(
        &c,
        hs_token(HDR_HS256, with_sub(arena_printf(&ta, "\"%sa\"", ascii255))),
        "sub claim is longer than 255 characters");
    ACCEPT(&c,
           hs_token(HDR_HS256, with_sub(arena_printf(&ta, "\"%s\"", multi255))),
           multi255, false);
    REJECT(&c,
           hs_token(HDR_HS256,
                    with_sub(arena_printf(&ta, "\"%s\xc3\xa9\"", multi255))),
           "sub claim is longer than 255 characters");
    /* The same characters written as JSON escapes count the same. */
    ACCEPT(&c,
           hs_token(HDR_HS256, with_sub(arena_printf(&ta, "\"%s\"",
                                                     repeat("\\u00e9", 255)))),
           repeat("\xc3\xa9", 255), false);

    /* C0, DEL and C1 controls, escaped or raw. */
    REJECT(&c, hs_token(HDR_HS256, with_sub("\"a\\u0001b\"")),
           "sub claim has control characters");
    REJECT(&c, hs_token(HDR_HS256, with_sub("\"a\\nb\"")),
           "sub claim has control characters");
    REJECT(&c, hs_token(HDR_HS256, with_sub("\"a\\tb\"")),
           "sub claim has control characters");
    REJECT(&c,
           hs_token(HDR_HS256, with_sub("\"a\x7f"
                                        "b\"")),
           "sub claim has control characters");
    REJECT(&c, hs_token(HDR_HS256, with_sub("\"a\\u0085b\"")),
           "sub claim has control characters");
    REJECT(&c, hs_token(HDR_HS256, with_sub("\"a\\u009fb\"")),
           "sub claim has control characters");
    /* U+00A0 is the first character past C1: fine. */
    ACCEPT(&c, hs_token(HDR_HS256, with_sub("\"a\\u00a0b\"")),
           "a\xc2\xa0"
           "b",
           false);
}
END_TEST

START_TEST(payload_shape)
{
    struct config c = cfg_hs();

    REJECT(&c, hs_token(HDR_HS256, "[1]"),
           "token payload is not a JSON object");
    REJECT(&c, hs_token(HDR_HS256, "\"alice\""),
           "token payload is not a JSON object");
    REJECT(&c, hs_token(HDR_HS256, "1"), "token payload is not a JSON object");
    REJECT(&c, hs_token(HDR_HS256, "null"),
           "token payload is not a JSON object");
    REJECT(&c, hs_token(HDR_HS256, "{"), "token payload is not JSON");
    REJECT(&c, hs_token(HDR_HS256, "sub=alice"), "token payload is not JSON");
    REJECT(&c, hs_token(HDR_HS256, claims("\"exp\":1")),
           "token payload is not JSON"); /* a duplicate key */
}
END_TEST

/* --- auth_mint ---------------------------------------------------------- */

START_TEST(mint_round_trip)
{
    struct config c = cfg_hs();
    struct error e = ERROR_INIT;
    char *user_tok = auth_mint(&c, "alice", NOW, 3600, false, &e);
    char *admin_tok = auth_mint(&c, "root", NOW, 3600, true, &e);
    struct auth_user u;

    ck_assert_ptr_nonnull(user_tok);
    ck_assert_ptr_nonnull(admin_tok);
    ACCEPT(&c, user_tok, "alice", false);
    ACCEPT(&c, admin_tok, "root", true);

    /* exp = now + ttl, with the leeway on top. */
    ck_assert(auth_check(&c, &ta, arena_printf(&ta, "Bearer %s", user_tok),
                         NOW + 3600 + 60, &u, &e));
    ck_assert(!auth_check(&c, &ta, arena_printf(&ta, "Bearer %s", user_tok),
                          NOW + 3600 + 61, &u, &e));
    ck_assert_str_eq(e.message, "token expired");
    /* iat = now. */
    ck_assert(!auth_check(&c, &ta, arena_printf(&ta, "Bearer %s", user_tok),
                          NOW - 61, &u, &e));
    ck_assert_str_eq(e.message, "token issued in the future");

    free(user_tok);
    free(admin_tok);
}
END_TEST

START_TEST(mint_with_iss_and_aud)
{
    struct config c = cfg_hs();
    struct error e = ERROR_INIT;
    char *tok;
    struct config other;

    c.jwt_issuer = "https://issuer.example";
    c.jwt_audience = "parley";
    tok = auth_mint(&c, "alice", NOW, 60, false, &e);
    ck_assert_ptr_nonnull(tok);
    ACCEPT(&c, tok, "alice", false);

    other = c;
    other.jwt_audience = "elsewhere";
    REJECT(&other, tok, "wrong audience");
    other = c;
    other.jwt_issuer = "https://other.example";
    REJECT(&other, tok, "wrong issuer");
    other = cfg_with(JWT_PIN_HS256, OTHER_SECRET, strlen(OTHER_SECRET));
    REJECT(&other, tok, "bad signature");
    free(tok);
}
END_TEST

START_TEST(mint_multibyte_sub)
{
    struct config c = cfg_hs();
    struct error e = ERROR_INIT;
    char *sub = repeat("\xc3\xa9", 255);
    char *tok = auth_mint(&c, sub, NOW, 60, false, &e);

    ck_assert_ptr_nonnull(tok);
    ACCEPT(&c, tok, sub, false);
    free(tok);
}
END_TEST

#define MINT_FAILS(c, sub, ttl, want_code, want_msg)                           \
    do {                                                                       \
        struct error e_ = ERROR_INIT;                                          \
        char *t_ = auth_mint((c), (sub), NOW, (ttl), false, &e_);              \
        ck_assert_ptr_null(t_);                                                \
        ck_assert_int_eq(e_.code, (want_code));                                \
        ck_assert_str_eq(e_.message, (want_msg));                              \
    } while (0)

START_TEST(mint_refusals)
{
    struct config c = cfg_hs();
    size_t pub_len = 0;
    const char *pub = read_key("rsa_public.pem", &pub_len);
    struct config rs = cfg_with(JWT_PIN_RS256, pub, pub_len);
    struct config es = cfg_with(JWT_PIN_ES256, pub, pub_len);
    struct error e = ERROR_INIT;
    char *tok;

    MINT_FAILS(&rs, "alice", 60, ERR_VALIDATION,
               "token minting needs jwt_algorithm = HS256");
    MINT_FAILS(&es, "alice", 60, ERR_VALIDATION,
               "token minting needs jwt_algorithm = HS256");
    MINT_FAILS(&c, "", 60, ERR_VALIDATION, "sub claim is empty");
    MINT_FAILS(&c, repeat("a", 256), 60, ERR_VALIDATION,
               "sub claim is longer than 255 characters");
    MINT_FAILS(&c, "a\nb", 60, ERR_VALIDATION,
               "sub claim has control characters");
    MINT_FAILS(&c, "\xff", 60, ERR_VALIDATION, "sub claim is not valid UTF-8");
    MINT_FAILS(&c, "alice", 0, ERR_VALIDATION,
               "ttl must be 1-31536000 seconds");
    MINT_FAILS(&c, "alice", -5, ERR_VALIDATION,
               "ttl must be 1-31536000 seconds");
    MINT_FAILS(&c, "alice", 31536001, ERR_VALIDATION,
               "ttl must be 1-31536000 seconds");

    tok = auth_mint(&c, "alice", NOW, 31536000, false, &e);
    ck_assert_ptr_nonnull(tok);
    free(tok);
    tok = auth_mint(&c, "alice", NOW, 1, false, &e);
    ck_assert_ptr_nonnull(tok);
    free(tok);
}
END_TEST

/* --- the cache of verified tokens ---------------------------------------- */

/* Checks tok at `now` through cache k; the user and error are left in
 * *u and *e. */
static bool
cached_at(struct auth_cache *k, const struct config *c, const char *tok,
          int64_t now, struct auth_user *u, struct error *e)
{
    error_clear(e);
    u->sub = "untouched";
    u->admin = true;
    return auth_check_cached(k, c, &ta, arena_printf(&ta, "Bearer %s", tok),
                             now, u, e);
}

/* Accepted as want_sub/want_admin, from the cache if want_hit (a NULL
 * cache counts no hits). */
#define CACHED_OK(k, c, tok, now, want_sub, want_admin, want_hit)              \
    do {                                                                       \
        struct auth_user u_;                                                   \
        struct error e_;                                                       \
        uint64_t hits_ = (k) ? auth_cache_hits(k) : 0;                         \
        bool ok_ = cached_at((k), (c), (tok), (now), &u_, &e_);                \
        ck_assert_msg(ok_, "rejected: %s", e_.message);                        \
        ck_assert_int_eq(e_.code, ERR_NONE);                                   \
        ck_assert_str_eq(u_.sub, (want_sub));                                  \
        ck_assert(u_.admin == (want_admin));                                   \
        if ((k) != NULL)                                                       \
            ck_assert_uint_eq(auth_cache_hits(k),                              \
                              hits_ + ((want_hit) ? 1 : 0));                   \
    } while (0)

#define CACHED_REJECT(k, c, tok, now, want_msg)                                \
    do {                                                                       \
        struct auth_user u_;                                                   \
        struct error e_;                                                       \
        uint64_t hits_ = auth_cache_hits(k);                                   \
        bool ok_ = cached_at((k), (c), (tok), (now), &u_, &e_);                \
        ck_assert(!ok_);                                                       \
        ck_assert_int_eq(e_.code, ERR_UNAUTHORIZED);                           \
        ck_assert_str_eq(e_.message, (want_msg));                              \
        ck_assert_ptr_null(u_.sub);                                            \
        ck_assert(!u_.admin);                                                  \
        ck_assert_uint_eq(auth_cache_hits(k), hits_);                          \
    } while (0)

START_TEST(cache_hits)
{
    struct config c = cfg_hs();
    struct auth_cache *k = auth_cache_new();
    char *user = hs_token(HDR_HS256, claims(""));
    char *admin = hs_token(HDR_HS256, claims("\"roles\":[\"admin\"]"));
    struct auth_user u;
    struct error e = ERROR_INIT;
    const char *first;

    CACHED_OK(k, &c, user, NOW, "alice", false, false);
    CACHED_OK(k, &c, user, NOW, "alice", false, true);
    CACHED_OK(k, &c, admin, NOW, "alice", true, false);
    CACHED_OK(k, &c, admin, NOW + 1, "alice", true, true);
    CACHED_OK(k, &c, user, NOW + 2, "alice", false, true);

    /* Each answer's sub is the request's own arena copy. */
    ck_assert(cached_at(k, &c, user, NOW, &u, &e));
    first = u.sub;
    ck_assert(cached_at(k, &c, user, NOW, &u, &e));
    ck_assert_ptr_ne(first, u.sub);
    ck_assert_str_eq(u.sub, "alice");

    /* The header is still checked on a hit. */
    ck_assert(!auth_check_cached(
        k, &c, &ta, arena_printf(&ta, "Basic %s", user), NOW, &u, &e));
    ck_assert_str_eq(e.message, "Authorization scheme must be Bearer");
    ck_assert(!auth_check_cached(
        k, &c, &ta, arena_printf(&ta, "Bearer %s ", user), NOW, &u, &e));
    ck_assert_str_eq(e.message, "token is not base64url");

    /* No cache: the plain check. */
    CACHED_OK(NULL, &c, user, NOW, "alice", false, false);
    auth_cache_free(k);
    auth_cache_free(NULL);
}
END_TEST

START_TEST(cache_expires_on_time)
{
    struct config c = cfg_hs();
    struct auth_cache *k = auth_cache_new();
    char *tok = hs_token(HDR_HS256,
                         arena_printf(&ta, "{\"sub\":\"alice\",\"exp\":%lld}",
                                      (long long)(NOW + 100)));
    char *strict;

    /* exp + leeway = NOW + 160; an entry answers for AUTH_CACHE_TTL. */
    CACHED_OK(k, &c, tok, NOW, "alice", false, false);
    CACHED_OK(k, &c, tok, NOW + AUTH_CACHE_TTL, "alice", false, true);
    CACHED_OK(k, &c, tok, NOW + AUTH_CACHE_TTL + 1, "alice", false, false);
    CACHED_OK(k, &c, tok, NOW + 2 * AUTH_CACHE_TTL + 1, "alice", false, true);
    /* The next entry ends where the token does. */
    CACHED_OK(k, &c, tok, NOW + 2 * AUTH_CACHE_TTL + 2, "alice", false, false);
    CACHED_OK(k, &c, tok, NOW + 160, "alice", false, true);
    CACHED_REJECT(k, &c, tok, NOW + 161, "token expired");
    CACHED_REJECT(k, &c, tok, NOW + 161, "token expired");

    /* Without leeway, on the second exp names. */
    c.jwt_leeway = 0;
    strict =
        hs_token(HDR_HS256, arena_printf(&ta, "{\"sub\":\"bob\",\"exp\":%lld}",
                                         (long long)(NOW + 5)));
    CACHED_OK(k, &c, strict, NOW, "bob", false, false);
    CACHED_OK(k, &c, strict, NOW + 5, "bob", false, true);
    CACHED_REJECT(k, &c, strict, NOW + 6, "token expired");
    auth_cache_free(k);
}
END_TEST

START_TEST(cache_clock_stepped_back)
{
    struct config c = cfg_hs();
    struct auth_cache *k = auth_cache_new();
    char *tok = hs_token(
        HDR_HS256, claims(arena_printf(&ta, "\"iat\":%lld", (long long)NOW)));

    CACHED_OK(k, &c, tok, NOW, "alice", false, false);
    /* Before the verification, iat is not known to be past: a full
     * check, which the leeway still lets through ... */
    CACHED_OK(k, &c, tok, NOW - 60, "alice", false, false);
    CACHED_OK(k, &c, tok, NOW - 60, "alice", false, true);
    /* ... and no further. */
    CACHED_REJECT(k, &c, tok, NOW - 61, "token issued in the future");
    auth_cache_free(k);
}
END_TEST

START_TEST(cache_other_key_misses)
{
    struct config a = cfg_hs();
    struct config b =
        cfg_with(JWT_PIN_HS256, OTHER_SECRET, strlen(OTHER_SECRET));
    struct auth_cache *k = auth_cache_new();
    char *tok_a = hs_token(HDR_HS256, claims(""));
    char *tok_b = hs_token_key(OTHER_SECRET, strlen(OTHER_SECRET), HDR_HS256,
                               claims("\"roles\":[\"admin\"]"));
    char same[] = SECRET;
    struct config copy = cfg_with(JWT_PIN_HS256, same, strlen(same));

    CACHED_OK(k, &a, tok_a, NOW, "alice", false, false);
    CACHED_OK(k, &a, tok_a, NOW, "alice", false, true);
    CACHED_REJECT(k, &b, tok_a, NOW, "bad signature");
    CACHED_OK(k, &b, tok_b, NOW, "alice", true, false);
    CACHED_OK(k, &b, tok_b, NOW, "alice", true, true);
    CACHED_REJECT(k, &a, tok_b, NOW, "bad signature");
    CACHED_OK(k, &a, tok_a, NOW, "alice", false, false);

    /* The same key bytes elsewhere are the same key ... */
    CACHED_OK(k, &copy, tok_a, NOW, "alice", false, true);
    /* ... and a key changed in place is another one. */
    same[0] = 'X';
    CACHED_REJECT(k, &copy, tok_a, NOW, "bad signature");
    CACHED_OK(k, &a, tok_a, NOW, "alice", false, false);

    /* So are other claim rules: issuer, audience, leeway, algorithm. */
    b = a;
    b.jwt_audience = "parley";
    CACHED_REJECT(k, &b, tok_a, NOW, "missing aud claim");
    CACHED_OK(k, &a, tok_a, NOW, "alice", false, false);
    b = a;
    b.jwt_issuer = "https://issuer.example";
    CACHED_REJECT(k, &b, tok_a, NOW, "missing iss claim");
    CACHED_OK(k, &a, tok_a, NOW, "alice", false, false);
    b = a;
    b.jwt_leeway = 0;
    CACHED_OK(k, &a, tok_a, NOW + 3600 + 30, "alice", false, false);
    CACHED_REJECT(k, &b, tok_a, NOW + 3600 + 30, "token expired");
    b = a;
    b.jwt_pin = JWT_PIN_RS256;
    CACHED_OK(k, &a, tok_a, NOW, "alice", false, false);
    CACHED_REJECT(k, &b, tok_a, NOW, "algorithm not allowed");
    auth_cache_free(k);
}
END_TEST

/* A cached answer does not outlive a stricter jwt_max_lifetime. */
START_TEST(cache_max_lifetime_misses)
{
    struct config a = cfg_hs(), b;
    struct auth_cache *k = auth_cache_new();
    char *tok = hs_token(HDR_HS256, claims(""));

    CACHED_OK(k, &a, tok, NOW, "alice", false, false);
    CACHED_OK(k, &a, tok, NOW, "alice", false, true);
    b = a;
    b.jwt_max_lifetime = 60;
    CACHED_REJECT(k, &b, tok, NOW,
                  "missing iat claim (needed to check the token's lifetime)");
    auth_cache_free(k);
}
END_TEST

START_TEST(cache_modified_token_misses)
{
    struct config c = cfg_hs();
    struct auth_cache *k = auth_cache_new();
    char *tok = hs_token(HDR_HS256, claims(""));
    char *dot = strrchr(tok, '.');
    char *t;

    CACHED_OK(k, &c, tok, NOW, "alice", false, false);
    CACHED_OK(k, &c, tok, NOW, "alice", false, true);

    /* One character of the signature, of the payload, one more or one
     * fewer at the end: none of them is the cached token. */
    t = arena_strdup(&ta, tok);
    t[dot - tok + 5] = t[dot - tok + 5] == 'A' ? 'B' : 'A';
    CACHED_REJECT(k, &c, t, NOW, "bad signature");
    t = arena_strdup(&ta, tok);
    t[dot - tok - 3] = t[dot - tok - 3] == 'A' ? 'B' : 'A';
    {
        struct auth_user u;
        struct error e;

        ck_assert(!cached_at(k, &c, t, NOW, &u, &e));
        ck_assert_int_eq(e.code, ERR_UNAUTHORIZED);
    }
    CACHED_REJECT(k, &c, arena_printf(&ta, "%sA", tok), NOW, "bad signature");
    t = arena_strdup(&ta, tok);
    t[strlen(t) - 1] = '\0';
    {
        struct auth_user u;
        struct error e;

        ck_assert(!cached_at(k, &c, t, NOW, &u, &e));
        ck_assert_int_eq(e.code, ERR_UNAUTHORIZED);
    }
    /* The original is still there. */
    CACHED_OK(k, &c, tok, NOW, "alice", false, true);
    auth_cache_free(k);
}
END_TEST

START_TEST(cache_many_tokens)
{
    struct config c = cfg_hs();
    struct auth_cache *k = auth_cache_new();
    enum { N = 3 * AUTH_CACHE_SLOTS };
    char *toks[N], *subs[N];

    /* More tokens than slots: whatever shares a slot, each answer is its
     * own token's. */
    for (int i = 0; i < N; i++) {
        subs[i] = arena_printf(&ta, "user-%d", i);
        toks[i] = hs_token(HDR_HS256,
                           arena_printf(&ta, "{\"sub\":\"%s\",\"exp\":%lld}",
                                        subs[i], (long long)(NOW + 3600)));
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++) {
            struct auth_user u;
            struct error e = ERROR_INIT;

            ck_assert(cached_at(k, &c, toks[i], NOW, &u, &e));
            ck_assert_str_eq(u.sub, subs[i]);
            ck_assert(!u.admin);
            /* The one just checked is always a hit. */
            CACHED_OK(k, &c, toks[i], NOW, subs[i], false, true);
        }
    auth_cache_free(k);
}
END_TEST

Suite *
auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *header = tcase_create("header");
    TCase *token = tcase_create("token");
    TCase *sig = tcase_create("signature");
    TCase *claim = tcase_create("claims");
    TCase *mint = tcase_create("mint");
    TCase *cache = tcase_create("cache");
    TCase *all[] = {header, token, sig, claim, mint, cache};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        suite_add_tcase(s, all[i]);
    }

    tcase_add_test(header, missing_header);
    tcase_add_test(header, wrong_scheme);
    tcase_add_test(header, scheme_is_case_insensitive);

    tcase_add_test(token, valid_hs256_user);
    tcase_add_test(token, valid_hs256_admin);
    tcase_add_test(token, roles_that_grant_nothing);
    tcase_add_test(token, sub_is_copied_to_the_arena);
    tcase_add_test(token, token_length_limit);
    tcase_add_test(token, part_structure);
    tcase_add_test(token, part_alphabet);
    tcase_add_test(token, part_not_decodable);
    tcase_add_test(token, header_not_json);
    tcase_add_test(token, header_typ_and_crit);
    tcase_add_test(token, payload_shape);

    tcase_add_test(sig, alg_none);
    tcase_add_test(sig, alg_other_than_pinned);
    tcase_add_test(sig, duplicate_alg_in_header);
    tcase_add_test(sig, hs256_with_public_key_confusion);
    tcase_add_test(sig, valid_rs256);
    tcase_add_test(sig, es256_pinned);
    tcase_add_test(sig, foreign_signature);
    tcase_add_test(sig, empty_key_is_refused);

    tcase_add_test(claim, exp_claim);
    tcase_add_test(claim, max_lifetime);
    tcase_add_test(claim, exp_with_zero_leeway);
    tcase_add_test(claim, time_claims_with_zero_leeway);
    tcase_add_test(claim, nbf_claim);
    tcase_add_test(claim, iat_claim);
    tcase_add_test(claim, iss_claim);
    tcase_add_test(claim, aud_claim);
    tcase_add_test(claim, sub_claim);

    tcase_add_test(mint, mint_round_trip);
    tcase_add_test(mint, mint_with_iss_and_aud);
    tcase_add_test(mint, mint_multibyte_sub);
    tcase_add_test(mint, mint_refusals);

    tcase_add_test(cache, cache_hits);
    tcase_add_test(cache, cache_expires_on_time);
    tcase_add_test(cache, cache_clock_stepped_back);
    tcase_add_test(cache, cache_other_key_misses);
    tcase_add_test(cache, cache_max_lifetime_misses);
    tcase_add_test(cache, cache_modified_token_misses);
    tcase_add_test(cache, cache_many_tokens);
    return s;
}

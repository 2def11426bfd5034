/*
 * fuzz_auth.c - the Authorization header and the token's claims.
 *
 * Random bytes almost never carry a valid HMAC, so the first input byte
 * picks what the rest is:
 *   0  the whole Authorization header value;
 *   1  the payload (claims) text of a token the harness signs with the
 *      configured key, under a correct header;
 *   2  the header text of a signed token with valid claims;
 *   3  as 1, with an issuer and an audience configured.
 * Properties:
 *   - auth_check() answers true, or false with ERR_UNAUTHORIZED and a
 *     message that does not quote the token;
 *   - true means the token is "Bearer" + exactly three base64url parts
 *     whose signature is HMAC-SHA256 under the configured key (checked
 *     here with OpenSSL, independently of libjwt), whose header says
 *     "alg":"HS256", and whose claims hold: exp an integer not past
 *     now + leeway, nbf and iat (if any) integers not beyond now +
 *     leeway, iss/aud as configured, and sub a string equal to the user
 *     returned, 1-255 chars of valid UTF-8.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "auth.h"
#include "config.h"
#include "error.h"
#include "fuzz_util.h"
#include "json.h"
#include "utf8.h"
#include "banned.h"

#define SECRET "fuzz-secret-0123456789abcdef-0123456789abcdef"
#define NOW    1800000000
#define LEEWAY 60
#define ISSUER "https://issuer.example"
#define AUD    "parley"

static const char b64tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
b64url(struct arena *a, const void *data, size_t n)
{
    const unsigned char *s = data;
    char *out = arena_alloc(a, n / 3 * 4 + 5);
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        out[o++] = b64tab[s[i] >> 2];
        out[o++] = b64tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = b64tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
        out[o++] = b64tab[s[i + 2] & 63];
    }
    if (n - i == 1) {
        out[o++] = b64tab[s[i] >> 2];
        out[o++] = b64tab[(s[i] & 3) << 4];
    } else if (n - i == 2) {
        out[o++] = b64tab[s[i] >> 2];
        out[o++] = b64tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
        out[o++] = b64tab[(s[i + 1] & 15) << 2];
    }
    out[o] = '\0';
    return out;
}

/* Lenient base64url decoding for the oracle (auth.c is the strict one);
 * NULL on a character outside the alphabet. */
static char *
b64url_decode(struct arena *a, const char *s, size_t n, size_t *out_len)
{
    char *out = arena_alloc(a, n + 1);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(b64tab, s[i], 64);

        if (p == NULL || s[i] == '\0')
            return NULL;
        acc = acc << 6 | (uint32_t)(p - b64tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static char *
hmac_b64(struct arena *a, const char *input, size_t n)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;

    FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
                    (const unsigned char *)input, n, mac, &mac_len) != NULL,
               "HMAC failed");
    return b64url(a, mac, mac_len);
}

/* "Bearer " + header.payload.signature, signed here. */
static char *
signed_header_value(struct arena *a, const uint8_t *header, size_t hlen,
                    const uint8_t *payload, size_t plen)
{
    char *input = arena_printf(a, "%s.%s", b64url(a, header, hlen),
                               b64url(a, payload, plen));

    return arena_printf(a, "Bearer %s.%s", input,
                        hmac_b64(a, input, strlen(input)));
}

static const struct json_value *
decode_part(struct arena *a, const char *s, size_t n)
{
    struct error err = ERROR_INIT;
    size_t len;
    char *text = b64url_decode(a, s, n, &len);

    FUZZ_CHECK(text != NULL, "accepted a part that is not base64url");
    return json_parse(a, text, len, 64, &err);
}

static bool
is_int(const struct json_value *v)
{
    return v != NULL && v->type == JSON_INT;
}

static bool
str_is(const struct json_value *v, const char *s)
{
    return v != NULL && v->type == JSON_STRING && strlen(s) == v->u.s.len &&
           memcmp(v->u.s.ptr, s, v->u.s.len) == 0;
}

/* The oracle for an accepted header value. */
static void
check_accepted(struct arena *a, const struct config *cfg, const char *value,
               const struct auth_user *user)
{
    const char *tok, *d1, *d2;
    const struct json_value *h, *p, *v;
    bool aud_ok = false;

    FUZZ_CHECK(strncasecmp(value, "Bearer ", 7) == 0, "scheme: %.80s", value);
    tok = value + 7;
    FUZZ_CHECK(strlen(tok) <= AUTH_MAX_TOKEN_BYTES, "token too long accepted");
    d1 = strchr(tok, '.');
    FUZZ_CHECK(d1 != NULL, "no first dot");
    d2 = strchr(d1 + 1, '.');
    FUZZ_CHECK(d2 != NULL && strchr(d2 + 1, '.') == NULL, "not three parts");
    FUZZ_CHECK(strcmp(d2 + 1, hmac_b64(a, tok, (size_t)(d2 - tok))) == 0,
               "accepted a token whose HMAC is not ours");

    h = decode_part(a, tok, (size_t)(d1 - tok));
    p = decode_part(a, d1 + 1, (size_t)(d2 - d1 - 1));
    FUZZ_CHECK(h != NULL && h->type == JSON_OBJECT, "header not an object");
    FUZZ_CHECK(p != NULL && p->type == JSON_OBJECT, "payload not an object");
    FUZZ_CHECK(str_is(json_get(h, "alg"), "HS256"), "alg is not HS256");
    FUZZ_CHECK(json_get(h, "crit") == NULL, "crit accepted");

    v = json_get(p, "exp");
    FUZZ_CHECK(is_int(v) && v->u.i >= NOW - LEEWAY, "exp not honoured");
    v = json_get(p, "nbf");
    FUZZ_CHECK(v == NULL || (is_int(v) && v->u.i <= NOW + LEEWAY),
               "nbf not honoured");
    v = json_get(p, "iat");
    FUZZ_CHECK(v == NULL || (is_int(v) && v->u.i <= NOW + LEEWAY),
               "iat not honoured");
    if (cfg->jwt_issuer[0] != '\0')
        FUZZ_CHECK(str_is(json_get(p, "iss"), cfg->jwt_issuer),
                   "iss not honoured");
    if (cfg->jwt_audience[0] != '\0') {
        v = json_get(p, "aud");
        aud_ok = str_is(v, cfg->jwt_audience);
        if (v != NULL && v->type == JSON_ARRAY)
            for (size_t i = 0; i < v->u.a.len; i++)
                aud_ok = aud_ok || str_is(v->u.a.items[i], cfg->jwt_audience);
        FUZZ_CHECK(aud_ok, "aud not honoured");
    }
    v = json_get(p, "sub");
    FUZZ_CHECK(v != NULL && v->type == JSON_STRING, "sub not a string");
    FUZZ_CHECK(user->sub != NULL && strlen(user->sub) == v->u.s.len &&
                   memcmp(user->sub, v->u.s.ptr, v->u.s.len) == 0,
               "user is not the token's sub");
    FUZZ_CHECK(v->u.s.len > 0 && utf8_valid(v->u.s.ptr, v->u.s.len) &&
                   utf8_count(v->u.s.ptr, v->u.s.len) <= 255,
               "sub outside 1-255 chars of UTF-8");
    for (size_t i = 0; i < v->u.s.len; i++)
        FUZZ_CHECK((unsigned char)v->u.s.ptr[i] >= 0x20 &&
                       v->u.s.ptr[i] != 0x7f,
                   "sub with a control character");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char good_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct config cfg;
    struct arena a;
    struct error err = ERROR_INIT;
    struct auth_user user = {NULL, false};
    const char *value;
    const char *sig;
    int mode = size > 0 ? data[0] % 4 : 0;
    const uint8_t *rest = size > 0 ? data + 1 : data;
    size_t n = size > 0 ? size - 1 : 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.jwt_pin = JWT_PIN_HS256;
    cfg.jwt_algorithm = (char *)(uintptr_t) "HS256";
    cfg.jwt_key = (char *)(uintptr_t)SECRET; /* never written through */
    cfg.jwt_key_len = strlen(SECRET);
    cfg.jwt_leeway = LEEWAY;
    cfg.jwt_issuer = (char *)(uintptr_t)(mode == 3 ? ISSUER : "");
    cfg.jwt_audience = (char *)(uintptr_t)(mode == 3 ? AUD : "");
    arena_init(&a, 16 * 1024);

    if (mode == 0) {
        value = fuzz_cstr(&a, rest, n);
    } else if (mode == 2) {
        char *claims =
            arena_printf(&a, "{\"sub\":\"fuzz\",\"exp\":%d}", NOW + 600);

        value = signed_header_value(&a, rest, n, (const uint8_t *)claims,
                                    strlen(claims));
    } else {
        value = signed_header_value(&a, (const uint8_t *)good_header,
                                    strlen(good_header), rest, n);
    }

    if (auth_check(&cfg, &a, value, NOW, &user, &err)) {
        FUZZ_CHECK(err.code == ERR_NONE, "accepted with an error set");
        check_accepted(&a, &cfg, value, &user);
    } else {
        FUZZ_CHECK(err.code == ERR_UNAUTHORIZED, "code %d: %s", err.code,
                   err.message);
        FUZZ_CHECK(err.message[0] != '\0', "no message");
        FUZZ_CHECK(user.sub == NULL, "refused but a user was set");
        /* The message may name what was wrong, never echo the token: its
         * signature part is the part a log must not get. */
        sig = strrchr(value, '.');
        if (sig != NULL && strlen(sig + 1) >= 8)
            FUZZ_CHECK(strstr(err.message, sig + 1) == NULL,
                       "message quotes the token: %s", err.message);
    }
    arena_release(&a);
    return 0;
}

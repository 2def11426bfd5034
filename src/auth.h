/*
 * auth.h - bearer tokens.  The only module that includes jwt.h.
 *
 * Debian's libjwt 1.10.2 checks a signature with whatever algorithm the
 * token names and validates no claims, so this module does the rest
 * itself: the header must be exactly "Bearer <token>", the token at most
 * 8 KiB of three base64url parts, the token's "alg" must be the configured
 * one (read from the header before libjwt sees the token, and confirmed
 * with jwt_get_alg() after), libjwt always gets a non-empty key, and the
 * claims are decoded and checked here with json.h:
 *   exp   required, a JSON integer; expired when exp + leeway < now
 *   nbf   optional integer; rejected when nbf - leeway > now
 *   iat   optional integer; rejected when iat - leeway > now; required
 *         when jwt_max_lifetime is set, and then exp - iat must not
 *         exceed it
 *   iss   checked when configured: a string equal to it
 *   aud   checked when configured: a string equal to it, or an array
 *         holding it
 *   sub   required string, 1-255 Unicode chars, valid UTF-8
 *   roles optional; an array containing "admin" makes the caller an admin
 * Every failure is ERR_UNAUTHORIZED; the message says what was wrong but
 * never echoes the token.
 */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "error.h"

#define AUTH_MAX_TOKEN_BYTES 8192

struct auth_user {
    const char *sub; /* arena memory, valid until the request ends */
    bool admin;
};

/* Checks the Authorization header value (NULL when absent).  now is the
 * wall clock in seconds.  On success fills *user from the arena. */
bool auth_check(const struct config *cfg, struct arena *a,
                const char *authorization, int64_t now, struct auth_user *user,
                struct error *err);

/*
 * A worker's cache of tokens it has verified: a client sends the same
 * token with every request, and checking it again (two base64 and JSON
 * decodes here, two more in libjwt, an HMAC) cost a fifth of serving a
 * GET.  AUTH_CACHE_SLOTS entries, keyed by the whole token (its hash picks
 * the slot, then the token is compared in constant time), each holding
 * what the check found: sub, admin, and until when the answer holds,
 * min(exp + leeway, verified + AUTH_CACHE_TTL).  A hit re-checks that
 * against now, so a cached token expires on the second it would have, and
 * a clock that stepped back before the verification misses (nbf and iat
 * were only known to be past then).  Only successes are cached; anything
 * else (a miss, an expired entry, a token that differs in one byte) goes
 * through auth_check() in full, with its exact error.  The entries belong
 * to the settings they were verified under (algorithm, key bytes, leeway,
 * maximum lifetime, issuer, audience): a config with any of them
 * different empties the cache first.  One per worker (one thread); not
 * to be shared.
 */
#define AUTH_CACHE_SLOTS 32
#define AUTH_CACHE_TTL   60 /* seconds */

struct auth_cache;

/* Aborts on out-of-memory, as the arena does. */
struct auth_cache *auth_cache_new(void);
/* Frees it, wiping the tokens and key it holds; NULL is fine. */
void auth_cache_free(struct auth_cache *c);

/* auth_check() through cache c (NULL: no cache); same contract, same
 * answers, same errors. */
bool auth_check_cached(struct auth_cache *c, const struct config *cfg,
                       struct arena *a, const char *authorization, int64_t now,
                       struct auth_user *user, struct error *err);
/* Answers c gave from an entry, without a full check, so far. */
uint64_t auth_cache_hits(const struct auth_cache *c);

/* Mints an HS256 token for `sub` valid for ttl seconds from now, with
 * "roles": ["admin"] when admin.  Needs cfg->jwt_pin == JWT_PIN_HS256.
 * Returns a malloc'd string the caller frees, or NULL with err set. */
char *auth_mint(const struct config *cfg, const char *sub, int64_t now,
                int64_t ttl, bool admin, struct error *err);

#endif

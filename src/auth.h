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
 *   iat   optional integer; rejected when iat - leeway > now
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
                const char *authorization, int64_t now,
                struct auth_user *user, struct error *err);

/* Mints an HS256 token for `sub` valid for ttl seconds from now, with
 * "roles": ["admin"] when admin.  Needs cfg->jwt_pin == JWT_PIN_HS256.
 * Returns a malloc'd string the caller frees, or NULL with err set. */
char *auth_mint(const struct config *cfg, const char *sub, int64_t now,
                int64_t ttl, bool admin, struct error *err);

#endif

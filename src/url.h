/*
 * url.h - percent-decoding for paths and query strings.
 */
#ifndef PARLEY_URL_H
#define PARLEY_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"

/* Decodes raw[0..len) into the arena (plus_is_space: '+' is a space, as
 * in a query string).  NULL for an invalid escape, or a result holding a
 * NUL or invalid UTF-8. */
const char *url_decode(struct arena *a, const char *raw, size_t len,
                       bool plus_is_space);

/* The byte that the hex digits p[0] p[1] (either case) stand for, as in a
 * %XX escape, or -1 if either is not a hex digit (p[1] is not read when
 * p[0] is not one, so a NUL at p[0] ends it).  uuid_parse() reads its
 * pairs with it too. */
int url_hex_byte(const char *p);

#endif

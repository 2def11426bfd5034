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

#endif

/*
 * utf8.h - UTF-8 checks.  "chars" in the API contract are Unicode code
 * points; lengths in bytes are UTF-8 bytes.
 */
#ifndef PARLEY_UTF8_H
#define PARLEY_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, no
 * code points past U+10FFFF) and holds no NUL byte. */
bool utf8_valid(const char *s, size_t n);
/* Code points in well-formed UTF-8 s[0..n). */
size_t utf8_count(const char *s, size_t n);

#endif

/*
 * buf.h - a growable byte buffer (git's strbuf).
 *
 * The buffer owns its memory (malloc); buf_release() frees it, buf_reset()
 * empties it and keeps the memory for reuse.  data is always NUL-terminated
 * so it can be handed to C string functions, but may also hold NULs.
 * Out of memory aborts.
 */
#ifndef PARLEY_BUF_H
#define PARLEY_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* never NULL after buf_init() */
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Drops what follows the first len bytes (nothing if it is shorter). */
void buf_truncate(struct buf *b, size_t len);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Takes the contents; the caller frees the result, b is left empty. */
char *buf_detach(struct buf *b, size_t *len);

#endif

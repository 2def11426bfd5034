#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "banned.h"

static char buf_empty[1];

void
buf_init(struct buf *b)
{
    b->data = buf_empty;
    b->len = 0;
    b->cap = 0;
}

void
buf_release(struct buf *b)
{
    if (b->cap != 0)
        free(b->data);
    buf_init(b);
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->cap != 0)
        b->data[0] = '\0';
}

void
buf_truncate(struct buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

void
buf_grow(struct buf *b, size_t extra)
{
    size_t want = b->len + extra + 1, cap;
    char *p;

    if (want < b->len)
        abort();
    if (want <= b->cap)
        return;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    p = b->cap ? realloc(b->data, cap) : malloc(cap);
    if (p == NULL)
        abort();
    if (b->cap == 0)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
}

void
buf_add(struct buf *b, const void *data, size_t n)
{
    buf_grow(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void
buf_addch(struct buf *b, char c)
{
    buf_grow(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    if (b->cap == 0 || (size_t)n >= b->cap - b->len) {
        buf_grow(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *
buf_detach(struct buf *b, size_t *len)
{
    char *p;

    if (b->cap == 0)
        buf_grow(b, 0);
    p = b->data;
    if (len != NULL)
        *len = b->len;
    buf_init(b);
    return p;
}

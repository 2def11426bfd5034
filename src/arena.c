#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "banned.h"

struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

static struct arena_chunk *
chunk_new(size_t size)
{
    struct arena_chunk *c = malloc(sizeof(*c) + size);

    if (c == NULL)
        abort();
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

void
arena_init(struct arena *a, size_t chunk_size)
{
    a->chunk_size = chunk_size ? chunk_size : 16384;
    a->head = NULL;
    a->total = 0;
}

void
arena_reset(struct arena *a)
{
    struct arena_chunk *c = a->head, *next;

    if (c == NULL)
        return;
    /* Keep the oldest chunk (the last in the list): it is the one of the
     * default size, and most requests fit in it. */
    while (c->next != NULL) {
        next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
    a->total = 0;
}

void
arena_release(struct arena *a)
{
    struct arena_chunk *c = a->head, *next;

    while (c != NULL) {
        next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *
arena_alloc(struct arena *a, size_t n)
{
    struct arena_chunk *c = a->head;
    size_t need = (n + 15) & ~(size_t)15;
    void *p;

    if (need < n)
        abort();
    if (c == NULL || c->size - c->used < need) {
        size_t size = need > a->chunk_size ? need : a->chunk_size;

        if (c != NULL && need > a->chunk_size) {
            /* A large block gets a chunk of its own, placed behind the
             * current one so the current one's free space stays usable. */
            struct arena_chunk *big = chunk_new(size);

            big->next = c->next;
            c->next = big;
            big->used = need;
            a->total += need;
            return big->data;
        }
        c = chunk_new(size);
        c->next = a->head;
        a->head = c;
    }
    p = c->data + c->used;
    c->used += need;
    a->total += need;
    return p;
}

void *
arena_calloc(struct arena *a, size_t n)
{
    void *p = arena_alloc(a, n);

    memset(p, 0, n);
    return p;
}

void *
arena_grow(struct arena *a, const void *old, size_t len, size_t *cap,
           size_t elem, size_t initial)
{
    size_t n = *cap > len ? *cap : len;
    void *p;

    n = n ? n * 2 : initial;
    if (n > SIZE_MAX / elem)
        abort();
    p = arena_alloc(a, n * elem);
    if (len > 0)
        memcpy(p, old, len * elem);
    *cap = n;
    return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

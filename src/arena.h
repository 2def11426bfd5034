/*
 * arena.h - a per-request bump allocator (nginx's pools).
 *
 * Everything a request makes that does not outlive it comes from the
 * request's arena, and arena_reset() frees it all at once between accepts.
 * Allocation never fails softly: on out-of-memory the process aborts, which
 * the supervisor turns into a respawn.  Memory is 16-byte aligned.
 */
#ifndef PARLEY_ARENA_H
#define PARLEY_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head; /* newest chunk first */
    size_t chunk_size;        /* default size of a new chunk */
    size_t total;             /* bytes handed out since the last reset */
};

void arena_init(struct arena *a, size_t chunk_size);
/* Frees every chunk but the first, which is kept for the next request. */
void arena_reset(struct arena *a);
void arena_release(struct arena *a);

void *arena_alloc(struct arena *a, size_t n);  /* uninitialised */
void *arena_calloc(struct arena *a, size_t n); /* zeroed */
/* Grows an arena array of len elements of elem bytes to twice its room
 * (initial when empty), copying the elements; *cap gets the new room.  The
 * old array stays in the arena until the reset (geometric growth keeps
 * that waste under the final size). */
void *arena_grow(struct arena *a, const void *old, size_t len, size_t *cap,
                 size_t elem, size_t initial);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

/*
 * uuid.h - random (version 4) UUIDs.  Stored as BSON binary subtype 4,
 * shown as 36 lowercase characters.
 */
#ifndef PARLEY_UUID_H
#define PARLEY_UUID_H

#include <stdbool.h>
#include <stdint.h>

#define UUID_STR_LEN 36

struct uuid {
    uint8_t b[16];
};

/* From the kernel's CSPRNG (getrandom), so ids are unguessable and never
 * shared between forked workers. */
void uuid_generate(struct uuid *u);
/* Writes 36 chars and a NUL into out[37]. */
void uuid_format(const struct uuid *u, char out[UUID_STR_LEN + 1]);
/* Accepts only the canonical 8-4-4-4-12 form in lowercase hex, as
 * uuid_format() writes it: "A"-"F" make it no id. */
bool uuid_parse(const char *s, struct uuid *u);
bool uuid_equal(const struct uuid *a, const struct uuid *b);

#endif

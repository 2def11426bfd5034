#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "rng.h"
#include "banned.h"

/* The one piece of per-process mutable state besides signal flags and the
 * log level: a PRNG has to keep its state somewhere, and threading it
 * through every call that may back off would help nobody. */
static uint64_t rng_state[4];

static uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void
rng_bytes(void *out, size_t n)
{
    unsigned char *p = out;

    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            abort(); /* no entropy source: nothing safe to do */
        }
        p += got;
        n -= (size_t)got;
    }
}

void
rng_seed(void)
{
    do
        rng_bytes(rng_state, sizeof(rng_state));
    while ((rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0);
}

uint64_t
rng_u64(void)
{
    uint64_t *s = rng_state;
    uint64_t result, t;

    if ((s[0] | s[1] | s[2] | s[3]) == 0)
        rng_seed();
    result = rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t
rng_upto(uint64_t n)
{
    uint64_t bound, r;

    if (n == UINT64_MAX)
        return rng_u64();
    bound = n + 1;
    /* Reject the top sliver so every value is equally likely. */
    do
        r = rng_u64();
    while (r >= UINT64_MAX - (UINT64_MAX % bound));
    return r % bound;
}

/*
 * rng.h - randomness for one process.
 *
 * rng_seed() must be called in every process after fork(): the state
 * would otherwise be shared by all workers, and with it their backoff
 * jitter.  rng_u64() is a fast non-cryptographic generator (xoshiro256**)
 * for jitter; rng_bytes() takes from the kernel for ids and secrets.
 */
#ifndef PARLEY_RNG_H
#define PARLEY_RNG_H

#include <stddef.h>
#include <stdint.h>

void rng_seed(void);
uint64_t rng_u64(void);
/* Uniform in [0, n]; n may be 0. */
uint64_t rng_upto(uint64_t n);
void rng_bytes(void *out, size_t n);

#endif

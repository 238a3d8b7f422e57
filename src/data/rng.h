/* The data side's random numbers: splitmix64, seeded from (seed, epoch, index)
 * and the like, so a sample's augmentation depends on where it is in the data
 * order and on nothing else (not on threads or timing). Small enough that a test
 * can replay it: tests/test_data_transforms.py does. */
#ifndef GF_DATA_RNG_H
#define GF_DATA_RNG_H

#include <stdint.h>

typedef struct gf_rng {
    uint64_t state;
} gf_rng;

static inline uint64_t rng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_next(gf_rng *r)
{
    r->state += 0x9E3779B97F4A7C15ull;
    return rng_mix(r->state);
}

/* A generator for (a, b, c): each word hashed into the state in turn. */
static inline gf_rng rng_seeded(uint64_t a, uint64_t b, uint64_t c)
{
    gf_rng r = {rng_mix(rng_mix(rng_mix(a) ^ b) ^ c)};
    return r;
}

/* Uniform in [0, 1), 53 bits. */
static inline double rng_uniform(gf_rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [lo, hi). */
static inline double rng_range(gf_rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

/* Uniform integer in [0, n), n >= 1. */
static inline int64_t rng_below(gf_rng *r, int64_t n) { return (int64_t)(rng_uniform(r) * (double)n); }

#endif

/* The one deterministic generator (xoshiro256** seeded by splitmix64) and its
 * mixer, shared by weight init, dropout, shuffling and sampling. */
#ifndef LPL_RNG_H
#define LPL_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } lpl_rng;

/* splitmix64's finaliser: a bijective 64-bit hash (also keys dropout masks). Inline,
 * as lpl_dropout_scale: a call per masked element was about a tenth of a training
 * step with base-model dropout on. */
static inline uint64_t lpl_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Inverted-dropout multiplier of element idx of mask stream `stream` under key:
 * 0 with probability p, else 1/(1-p). A counter-based hash, so a backward pass
 * regenerates the forward's mask instead of storing it; stream must be < 2^24 and
 * idx < 2^40 for the (stream, idx) pairs to stay distinct. */
static inline float lpl_dropout_scale(uint64_t key, uint64_t stream, uint64_t idx, float p)
{
    uint64_t h = lpl_mix64(key ^ lpl_mix64((stream << 40) ^ idx));
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    return u < p ? 0.0f : 1.0f / (1.0f - p);
}

void lpl_rng_seed(lpl_rng *r, uint64_t seed);
uint64_t lpl_rng_next(lpl_rng *r);
float lpl_rng_uniform(lpl_rng *r);           /* [0, 1) */
float lpl_rng_normal(lpl_rng *r);            /* N(0, 1) */

#endif

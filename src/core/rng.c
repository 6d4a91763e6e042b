/* xoshiro256** seeded by splitmix64; uniform and normal floats. */
#include "lpl/core/rng.h"

#include <math.h>

#include "lpl/core/common.h"

/* splitmix64: a Weyl sequence through the mixer fills the state. */
void lpl_rng_seed(lpl_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = lpl_mix64(seed += 0x9e3779b97f4a7c15ULL);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
uint64_t lpl_rng_next(lpl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float lpl_rng_uniform(lpl_rng *r)
{
    return (float)(lpl_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Box-Muller on two uniforms; the first is shifted into (0, 1] so log never sees 0. */
float lpl_rng_normal(lpl_rng *r)
{
    double u1 = ((double)(lpl_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(lpl_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * LPL_PI * u2));
}

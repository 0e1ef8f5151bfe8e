/* xoshiro256** (Blackman & Vigna), seeded through splitmix64. The state is a plain value
 * owned by the caller: no global generator, so runs are reproducible and checkpointable. */
#include "nabla.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void nb_rng_seed(nb_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nb_rng_next(nb_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float nb_rng_uniform(nb_rng *rng)
{
    return (float)(nb_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

float nb_rng_normal(nb_rng *rng)
{
    /* Box–Muller: u1 in (0, 1] so the logarithm is finite. */
    double u1 = ((double)(nb_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(nb_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t nb_rng_below(nb_rng *rng, uint32_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased for any n. */
    uint64_t m = (uint64_t)(uint32_t)nb_rng_next(rng) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)nb_rng_next(rng) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

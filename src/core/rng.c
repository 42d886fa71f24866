/* rng.c — PCG32 (XSH-RR 64/32) random numbers with streams named from one seed. */
#include "crossrec/core.h"

#include <math.h>
#include <string.h>

#define PCG_MULT 6364136223846793005ULL

uint32_t cr_rng_u32(cr_rng *r) {
    uint64_t old = r->state;
    r->state = old * PCG_MULT + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

void cr_rng_seed(cr_rng *r, uint64_t initstate, uint64_t initseq) {
    r->state = 0;
    r->inc = (initseq << 1u) | 1u;
    cr_rng_u32(r);
    r->state += initstate;
    cr_rng_u32(r);
}

void cr_rng_named(cr_rng *r, uint64_t seed, const char *stream) {
    cr_rng_seed(r, seed, cr_hash64(stream, strlen(stream)));
}

uint64_t cr_rng_u64(cr_rng *r) {
    uint64_t hi = cr_rng_u32(r);
    return (hi << 32) | cr_rng_u32(r);
}

uint32_t cr_rng_below(cr_rng *r, uint32_t bound) {
    CR_ASSERT(bound > 0);
    uint32_t threshold = (uint32_t)(-bound) % bound;   /* rejects the short last run: no modulo bias */
    for (;;) {
        uint32_t x = cr_rng_u32(r);
        if (x >= threshold) return x % bound;
    }
}

double cr_rng_uniform(cr_rng *r) { return (double)(cr_rng_u64(r) >> 11) * 0x1.0p-53; }

double cr_rng_normal(cr_rng *r) {
    double u1 = cr_rng_uniform(r), u2 = cr_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

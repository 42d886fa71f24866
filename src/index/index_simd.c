/* index_simd.c — the index's kernels: dot products of one query with many rows (float32 and float16 rows),
 * a threshold mask over a chunk of scores, and float32 <-> float16 conversion.
 *
 * Two sets: portable C, and AVX2 + FMA + F16C compiled with __attribute__((target)) so that the default
 * (generic x86-64) build carries them and picks them at run time when the CPU has the three features. The
 * dot kernels may sum in any order: the search bounds |fast - reference| for every order (index.h), so the
 * sets need not agree bit for bit. The conversions must: F16C and the portable code give identical bits, NaN
 * included (tests compare them on all 65,536 halves and on random floats). */
#include "index/index_impl.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---- portable ------------------------------------------------------------------------------------------- */

uint16_t cr_f32_to_f16_ref(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    uint32_t sign = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
    if (a >= 0x7f800000u)                       /* inf; NaN made quiet, top 9 payload bits kept (as F16C) */
        return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* >= 65520: rounds to infinity */
    if (a >= 0x38800000u) {                     /* >= 2^-14: a normal half */
        uint32_t m = a - (112u << 23);          /* exponent rebased from 127 to 15 */
        m += 0xfffu + ((m >> 13) & 1u);         /* round to nearest even at bit 13; a carry moves the exponent */
        return (uint16_t)(sign | (m >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)sign;   /* <= 2^-25: zero (2^-25 itself ties to even, 0) */
    /* a subnormal half: units of 2^-24 */
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;   /* 14 <= shift <= 24 */
    uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

float cr_f16_to_f32_ref(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, b;
    if (e == 0x1f) b = sign | 0x7f800000u | (m ? 0x400000u | (m << 13) : 0);   /* inf; NaN made quiet */
    else if (e) b = sign | ((e + 112) << 23) | (m << 13);
    else {
        float v = (float)m * 0x1p-24f;          /* zero or subnormal: exact */
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static void to_f16_portable(const float *x, uint16_t *h, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = cr_f32_to_f16_ref(x[i]);
}

static void to_f32_portable(const uint16_t *h, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = cr_f16_to_f32_ref(h[i]);
}

static float dot_portable(const float *q, const float *y, int64_t d) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;       /* four chains: not the reference order, which is fine */
    int64_t j = 0;
    for (; j + 4 <= d; j += 4) s0 += q[j] * y[j], s1 += q[j + 1] * y[j + 1], s2 += q[j + 2] * y[j + 2], s3 += q[j + 3] * y[j + 3];
    for (; j < d; j++) s0 += q[j] * y[j];
    return (s0 + s1) + (s2 + s3);
}

static void dots_f32_portable(const float *q, const float *Y, int64_t n, int64_t d, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = dot_portable(q, Y + i * d, d);
}

static void dots_f16_portable(const float *q, const uint16_t *Y, int64_t n, int64_t dh, float *out) {
    for (int64_t i = 0; i < n; i++) {
        const uint16_t *y = Y + i * dh;
        float s0 = 0, s1 = 0;
        for (int64_t j = 0; j < dh; j += 2) s0 += q[j] * cr_f16_to_f32_ref(y[j]), s1 += q[j + 1] * cr_f16_to_f32_ref(y[j + 1]);
        out[i] = s0 + s1;
    }
}

static int64_t find_ge_portable(const float *s, int64_t n, float thr, int32_t *pos) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        pos[m] = (int32_t)i;
        m += s[i] >= thr;   /* branch-free: a hit is rare once the top-K has filled */
    }
    return m;
}

static const cr_index_kernels portable = {"portable", dots_f32_portable, dots_f16_portable, find_ge_portable, to_f16_portable,
                                          to_f32_portable};

/* ---- AVX2 + FMA + F16C ---------------------------------------------------------------------------------- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_AVX2 1
#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Sum of the eight lanes of each of a0..a7, as one vector [sum a0, ..., sum a7]. */
AVX2 static inline __m256 hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6, __m256 a7) {
    __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3), h45 = _mm256_hadd_ps(a4, a5), h67 = _mm256_hadd_ps(a6, a7);
    __m256 h0123 = _mm256_hadd_ps(h01, h23), h4567 = _mm256_hadd_ps(h45, h67);
    return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20), _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

AVX2 static inline float hsum1(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Lanes 0..r-1 set, for the last d % 8 columns (maskload reads nothing past them). */
AVX2 static inline __m256i tail_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Eight rows at a time, one accumulator per row over the columns, eight lanes wide; then a transposing
 * horizontal sum gives the eight scores in one vector. */
AVX2 static void dots_f32_avx2(const float *q, const float *Y, int64_t n, int64_t d, float *out) {
    int64_t d8 = d & ~(int64_t)7, r = d - d8;
    __m256i tm = tail_mask(r);
    __m256 qt = r ? _mm256_maskload_ps(q + d8, tm) : _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float *y = Y + i * d;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int64_t j = 0; j < d8; j += 8) {
            __m256 qv = _mm256_loadu_ps(q + j);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(y + j), qv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(y + d + j), qv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 2 * d + j), qv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 3 * d + j), qv, a3);
            a4 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 4 * d + j), qv, a4);
            a5 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 5 * d + j), qv, a5);
            a6 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 6 * d + j), qv, a6);
            a7 = _mm256_fmadd_ps(_mm256_loadu_ps(y + 7 * d + j), qv, a7);
        }
        if (r) {
            a0 = _mm256_fmadd_ps(_mm256_maskload_ps(y + d8, tm), qt, a0);
            a1 = _mm256_fmadd_ps(_mm256_maskload_ps(y + d + d8, tm), qt, a1);
            a2 = _mm256_fmadd_ps(_mm256_maskload_ps(y + 2 * d + d8, tm), qt, a2);
            a3 = _mm256_fmadd_ps(_mm256_maskload_ps(y + 3 * d + d8, tm), qt, a3);
            a4 = _mm256_fmadd_ps(_mm256_maskload_ps(y + 4 * d + d8, tm), qt, a4);
            a5 = _mm256_fmadd_ps(_mm256_maskload_ps(y + 5 * d + d8, tm), qt, a5);
            a6 = _mm256_fmadd_ps(_mm256_maskload_ps(y + 6 * d + d8, tm), qt, a6);
            a7 = _mm256_fmadd_ps(_mm256_maskload_ps(y + 7 * d + d8, tm), qt, a7);
        }
        _mm256_storeu_ps(out + i, hsum8(a0, a1, a2, a3, a4, a5, a6, a7));
    }
    for (; i < n; i++) {
        const float *y = Y + i * d;
        __m256 a = r ? _mm256_mul_ps(_mm256_maskload_ps(y + d8, tm), qt) : _mm256_setzero_ps();
        for (int64_t j = 0; j < d8; j += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(y + j), _mm256_loadu_ps(q + j), a);
        out[i] = hsum1(a);
    }
}

AVX2 static inline __m256 load_h8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

AVX2 static void dots_f16_avx2(const float *q, const uint16_t *Y, int64_t n, int64_t dh, float *out) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16_t *y = Y + i * dh;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int64_t j = 0; j < dh; j += 8) {
            __m256 qv = _mm256_loadu_ps(q + j);
            a0 = _mm256_fmadd_ps(load_h8(y + j), qv, a0);
            a1 = _mm256_fmadd_ps(load_h8(y + dh + j), qv, a1);
            a2 = _mm256_fmadd_ps(load_h8(y + 2 * dh + j), qv, a2);
            a3 = _mm256_fmadd_ps(load_h8(y + 3 * dh + j), qv, a3);
            a4 = _mm256_fmadd_ps(load_h8(y + 4 * dh + j), qv, a4);
            a5 = _mm256_fmadd_ps(load_h8(y + 5 * dh + j), qv, a5);
            a6 = _mm256_fmadd_ps(load_h8(y + 6 * dh + j), qv, a6);
            a7 = _mm256_fmadd_ps(load_h8(y + 7 * dh + j), qv, a7);
        }
        _mm256_storeu_ps(out + i, hsum8(a0, a1, a2, a3, a4, a5, a6, a7));
    }
    for (; i < n; i++) {
        const uint16_t *y = Y + i * dh;
        __m256 a = _mm256_setzero_ps();
        for (int64_t j = 0; j < dh; j += 8) a = _mm256_fmadd_ps(load_h8(y + j), _mm256_loadu_ps(q + j), a);
        out[i] = hsum1(a);
    }
}

/* 64 scores per step: the maximum of eight vectors against thr rejects the step with one compare (the common
 * case once the top-K has filled); a step with a hit is resolved with eight masks. */
AVX2 static int64_t find_ge_avx2(const float *s, int64_t n, float thr, int32_t *pos) {
    __m256 t = _mm256_set1_ps(thr);
    int64_t m = 0, i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 v0 = _mm256_loadu_ps(s + i), v1 = _mm256_loadu_ps(s + i + 8), v2 = _mm256_loadu_ps(s + i + 16), v3 = _mm256_loadu_ps(s + i + 24);
        __m256 v4 = _mm256_loadu_ps(s + i + 32), v5 = _mm256_loadu_ps(s + i + 40), v6 = _mm256_loadu_ps(s + i + 48), v7 = _mm256_loadu_ps(s + i + 56);
        __m256 mx = _mm256_max_ps(_mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3)), _mm256_max_ps(_mm256_max_ps(v4, v5), _mm256_max_ps(v6, v7)));
        if (!_mm256_movemask_ps(_mm256_cmp_ps(mx, t, _CMP_GE_OQ))) continue;
        __m256 vs[8] = {v0, v1, v2, v3, v4, v5, v6, v7};
        for (int g = 0; g < 8; g++) {
            unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(vs[g], t, _CMP_GE_OQ));
            while (bits) {
                pos[m++] = (int32_t)(i + 8 * g + __builtin_ctz(bits));
                bits &= bits - 1;
            }
        }
    }
    for (; i < n; i++)
        if (s[i] >= thr) pos[m++] = (int32_t)i;
    return m;
}

AVX2 static void to_f16_avx2(const float *x, uint16_t *h, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        __m128i v = _mm_cvtps_ph(_mm_set_ss(x[i]), _MM_FROUND_TO_NEAREST_INT);
        h[i] = (uint16_t)_mm_extract_epi16(v, 0);
    }
}

AVX2 static void to_f32_avx2(const uint16_t *h, float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, load_h8(h + i));
    for (; i < n; i++) x[i] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h[i])));
}

static const cr_index_kernels avx2 = {"avx2", dots_f32_avx2, dots_f16_avx2, find_ge_avx2, to_f16_avx2, to_f32_avx2};

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    unsigned a, b, c, d;
    int f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    /* __builtin_cpu_supports("avx2") also checks that the OS saves the AVX registers */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}
#else
#define HAVE_AVX2 0
#endif

/* ---- dispatch ------------------------------------------------------------------------------------------- */

static const cr_index_kernels *best = &portable, *current;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
#if HAVE_AVX2
    if (cpu_has_avx2()) best = &avx2;
#endif
    if (!current) current = best;
}

const cr_index_kernels *cr_index_kernels_get(void) {
    pthread_once(&once, choose);
    return current;
}

void cr_index_force_portable(int on) {
    pthread_once(&once, choose);
    current = on ? &portable : best;
}

const char *cr_index_kernel(void) { return cr_index_kernels_get()->name; }

void cr_f32_to_f16(const float *x, uint16_t *h, int64_t n) { cr_index_kernels_get()->to_f16(x, h, n); }
void cr_f16_to_f32(const uint16_t *h, float *x, int64_t n) { cr_index_kernels_get()->to_f32(h, x, n); }

/* index_impl.h — private parts of the top-K index (include/crossrec/index.h): the index struct and the kernel
 * table that index_simd.c fills at run time (AVX2 + FMA + F16C when the CPU has them, else portable C). */
#ifndef CROSSREC_INDEX_IMPL_H
#define CROSSREC_INDEX_IMPL_H

#include "crossrec/index.h"

/* Items are grouped in chunks of CR_INDEX_CHUNK for the error bound (one max norm per chunk) and for scanning
 * scores against a threshold (one 64-bit mask per chunk). */
#define CR_INDEX_CHUNK 64

struct cr_index {
    int64_t n, dim;
    const float *items;         /* (n, dim) borrowed or == own_items */
    float *own_items;           /* copy, or NULL when borrowed */
    uint16_t *items_h;          /* (n, dim_h) float16 copy, rows zero-padded to dim_h; NULL without f16 */
    int64_t dim_h;              /* dim rounded up to a multiple of 8 */
    const int32_t *domain;      /* (n) or NULL; borrowed or == own_domain */
    int32_t *own_domain;
    int64_t n_chunks;           /* ceil(n / CR_INDEX_CHUNK) */
    double *chunk_norm;         /* (n_chunks) largest Euclidean norm of the chunk's float32 rows */
    double *chunk_norm_h;       /* (n_chunks) the same for the decoded float16 rows; NULL without f16 */
    double max_norm, max_norm_h;
};

typedef struct {
    const char *name;
    /* out[i] = q . Y[i] for i < n, rows of Y d floats apart; any summation order (the bound covers it). */
    void (*dots_f32)(const float *q, const float *Y, int64_t n, int64_t d, float *out);
    /* The same over float16 rows dh halves apart (dh a multiple of 8, zero-padded); q has dh floats. */
    void (*dots_f16)(const float *q, const uint16_t *Y, int64_t n, int64_t dh, float *out);
    /* Writes the positions i < n with s[i] >= thr, ascending, to pos (room for n); returns their number. */
    int64_t (*find_ge)(const float *s, int64_t n, float thr, int32_t *pos);
    void (*to_f16)(const float *x, uint16_t *h, int64_t n);
    void (*to_f32)(const uint16_t *h, float *x, int64_t n);
} cr_index_kernels;

/* The kernel set in use (chosen once, thread-safely; cr_index_force_portable overrides). */
const cr_index_kernels *cr_index_kernels_get(void);

#endif

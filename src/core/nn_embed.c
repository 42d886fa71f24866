/* nn_embed.c — the embedding bag of nn_tower.h: weighted sums (or means) of table rows over a ragged batch, its
 * sparse backward pass, and the list of touched rows for lazy optimizer updates.
 *
 * The _ref functions are single-threaded loops in entry order. The fast forward splits bags over threads (each
 * bag's row is its own). The fast backward cannot split bags, since two bags may share a table row; instead
 * every table row has one owner thread (row mod threads) which walks all entries in input order and adds
 * those of its rows, so each dE element receives the same additions in the same order as in the reference —
 * the result is bit-identical at any thread count, with no atomics and no per-thread copies of the table. */
#include "nn_tower.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* below this many multiply-adds a batch is not worth waking threads for */
#define EMBBAG_PAR_WORK 32768

static float bag_scale(const int64_t *offsets, int64_t b, cr_bag_mode mode) {
    int64_t n = offsets[b + 1] - offsets[b];
    return mode == CR_BAG_MEAN && n > 0 ? 1.0f / (float)n : 1.0f;
}

/* One bag: out (d) = scale sum_k w_k E[idx_k]. */
static void bag_forward(float *out, const float *E, int64_t n_rows, int64_t d, const int64_t *offsets, const int32_t *idx,
                        const float *w, int64_t b, cr_bag_mode mode) {
    CR_ASSERT(offsets[b] <= offsets[b + 1]);
    memset(out, 0, (size_t)d * sizeof *out);
    for (int64_t k = offsets[b]; k < offsets[b + 1]; k++) {
        CR_ASSERT(idx[k] >= 0 && idx[k] < n_rows);
        const float *e = E + (int64_t)idx[k] * d;
        float wk = w ? w[k] : 1.0f;
        for (int64_t c = 0; c < d; c++) out[c] += wk * e[c];
    }
    float s = bag_scale(offsets, b, mode);
    if (s != 1.0f)
        for (int64_t c = 0; c < d; c++) out[c] *= s;
}

void cr_embbag_forward_ref(float *out, const float *E, int64_t n_rows, int64_t d, const int64_t *offsets,
                           const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode) {
    for (int64_t b = 0; b < B; b++) bag_forward(out + b * d, E, n_rows, d, offsets, idx, w, b, mode);
}

void cr_embbag_forward(float *out, const float *E, int64_t n_rows, int64_t d, const int64_t *offsets, const int32_t *idx,
                       const float *w, int64_t B, cr_bag_mode mode) {
    int par = B > 1 && (offsets[B] - offsets[0]) * d >= EMBBAG_PAR_WORK;
    (void)par;
    CR_OMP(omp parallel for schedule(static) if (par))
    for (int64_t b = 0; b < B; b++) bag_forward(out + b * d, E, n_rows, d, offsets, idx, w, b, mode);
}

/* The per-entry weight gradients: dw_k += scale_b <dout_b, E[idx_k]>, each entry its own. */
static void bag_dw(float *dw, const float *dout, const float *E, int64_t d, const int64_t *offsets, const int32_t *idx,
                   int64_t b, cr_bag_mode mode) {
    float s = bag_scale(offsets, b, mode);
    const float *g = dout + b * d;
    for (int64_t k = offsets[b]; k < offsets[b + 1]; k++) {
        const float *e = E + (int64_t)idx[k] * d;
        float dot = 0.0f;
        for (int64_t c = 0; c < d; c++) dot += g[c] * e[c];
        dw[k] += s * dot;
    }
}

/* Adds the entries of bags [0, B) whose row r satisfies r % nt == t into dE, in entry order. */
static void rows_backward(float *dE, const float *dout, int64_t n_rows, int64_t d, const int64_t *offsets,
                          const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode, int64_t t, int64_t nt) {
    for (int64_t b = 0; b < B; b++) {
        CR_ASSERT(offsets[b] <= offsets[b + 1]);
        float s = bag_scale(offsets, b, mode);
        const float *g = dout + b * d;
        for (int64_t k = offsets[b]; k < offsets[b + 1]; k++) {
            int32_t r = idx[k];
            CR_ASSERT(r >= 0 && r < n_rows);
            if (r % nt != t) continue;
            float a = s * (w ? w[k] : 1.0f);
            float *de = dE + (int64_t)r * d;
            CR_OMP(omp simd)
            for (int64_t c = 0; c < d; c++) de[c] += a * g[c];
        }
    }
}

void cr_embbag_backward_ref(float *dE, float *dw, const float *dout, const float *E, int64_t n_rows, int64_t d,
                            const int64_t *offsets, const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode) {
    if (dE) rows_backward(dE, dout, n_rows, d, offsets, idx, w, B, mode, 0, 1);
    if (dw)
        for (int64_t b = 0; b < B; b++) bag_dw(dw, dout, E, d, offsets, idx, b, mode);
}

void cr_embbag_backward(float *dE, float *dw, const float *dout, const float *E, int64_t n_rows, int64_t d,
                        const int64_t *offsets, const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode) {
    int par = B > 1 && (offsets[B] - offsets[0]) * d >= EMBBAG_PAR_WORK;
    (void)par;
    if (dE) {
        CR_OMP(omp parallel if (par))
        {
            int64_t t = 0, nt = 1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
            rows_backward(dE, dout, n_rows, d, offsets, idx, w, B, mode, t, nt);
        }
    }
    if (dw) {
        CR_OMP(omp parallel for schedule(static) if (par))
        for (int64_t b = 0; b < B; b++) bag_dw(dw, dout, E, d, offsets, idx, b, mode);
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int64_t cr_embbag_touched(int32_t *rows, uint8_t *seen, const int32_t *idx, int64_t n) {
    int64_t m = 0;
    for (int64_t k = 0; k < n; k++)
        if (!seen[idx[k]]) seen[idx[k]] = 1, rows[m++] = idx[k];
    for (int64_t k = 0; k < m; k++) seen[rows[k]] = 0;
    qsort(rows, (size_t)m, sizeof *rows, cmp_i32);
    return m;
}

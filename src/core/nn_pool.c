/* nn_pool.c — pooling over a padded batch of ragged sequences (nn_tower.h): target-domain attention pooling and
 * mean pooling, forward and backward.
 *
 * h is (B, L, d), sequence b's first len[b] rows valid. Rows are independent, so threads split them; the only
 * cross-row sum, the query gradient (one query row shared by every sequence of that domain), is added on one
 * thread in row order from per-row score gradients, so results do not depend on the thread count. */
#include "nn_tower.h"

#include <math.h>
#include <string.h>

#define POOL_PAR_WORK 32768

void cr_attnpool_forward(float *out, float *att, const float *h, const int64_t *len, const float *q, const int32_t *dom,
                         int64_t B, int64_t L, int64_t d) {
    float scale = 1.0f / sqrtf((float)d);
    int par = B > 1 && B * L * d >= POOL_PAR_WORK;
    (void)par;
    CR_OMP(omp parallel for schedule(static) if (par))
    for (int64_t b = 0; b < B; b++) {
        int64_t n = len[b];
        CR_ASSERT(n >= 0 && n <= L && dom[b] >= 0);
        const float *qb = q + (int64_t)dom[b] * d, *hb = h + b * L * d;
        float *a = att + b * L, *o = out + b * d;
        memset(a, 0, (size_t)L * sizeof *a);
        memset(o, 0, (size_t)d * sizeof *o);
        if (n == 0) continue;
        /* a = softmax over the valid scores, after subtracting their max */
        float mx = -INFINITY;
        for (int64_t k = 0; k < n; k++) {
            float s = 0.0f;
            for (int64_t c = 0; c < d; c++) s += qb[c] * hb[k * d + c];
            a[k] = s * scale;
            if (a[k] > mx) mx = a[k];
        }
        float z = 0.0f;
        for (int64_t k = 0; k < n; k++) z += a[k] = expf(a[k] - mx);
        for (int64_t k = 0; k < n; k++) {
            a[k] /= z;
            for (int64_t c = 0; c < d; c++) o[c] += a[k] * hb[k * d + c];
        }
    }
}

/* sum_j a_j <dout_b, h_bj> over the valid j: the softmax backward's centring term of row b. */
static float attnpool_centre(const float *g, const float *hb, const float *a, int64_t n, int64_t d) {
    float m = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        float s = 0.0f;
        for (int64_t c = 0; c < d; c++) s += g[c] * hb[k * d + c];
        m += a[k] * s;
    }
    return m;
}

/* The scaled score gradient of position k: ds_k / sqrt(d) with ds_k = a_k (<dout, h_k> - m). */
static float attnpool_ds(const float *g, const float *hk, float ak, float m, float scale, int64_t d) {
    float s = 0.0f;
    for (int64_t c = 0; c < d; c++) s += g[c] * hk[c];
    return ak * (s - m) * scale;
}

void cr_attnpool_backward(float *dh, float *dq, const float *dout, const float *h, const int64_t *len, const float *q,
                          const int32_t *dom, const float *att, int64_t B, int64_t L, int64_t d) {
    /* out = sum_k a_k h_k, s_k = <q, h_k> scale: dh_k += a_k dout + ds_k scale q, dq += sum_k ds_k scale h_k.
     * ds is recomputed by each pass rather than stored, which needs no scratch and costs two dot products. */
    float scale = 1.0f / sqrtf((float)d);
    int par = B > 1 && B * L * d >= POOL_PAR_WORK;
    (void)par;
    if (dh) {
        CR_OMP(omp parallel for schedule(static) if (par))
        for (int64_t b = 0; b < B; b++) {
            const float *g = dout + b * d, *qb = q + (int64_t)dom[b] * d, *a = att + b * L, *hb = h + b * L * d;
            float *dhb = dh + b * L * d;
            float m = attnpool_centre(g, hb, a, len[b], d);
            for (int64_t k = 0; k < len[b]; k++) {
                float ds = attnpool_ds(g, hb + k * d, a[k], m, scale, d);
                for (int64_t c = 0; c < d; c++) dhb[k * d + c] += a[k] * g[c] + ds * qb[c];
            }
        }
    }
    if (dq)     /* rows of one domain add into one query: on one thread, in row order */
        for (int64_t b = 0; b < B; b++) {
            const float *g = dout + b * d, *a = att + b * L, *hb = h + b * L * d;
            float *dqb = dq + (int64_t)dom[b] * d;
            float m = attnpool_centre(g, hb, a, len[b], d);
            for (int64_t k = 0; k < len[b]; k++) {
                float ds = attnpool_ds(g, hb + k * d, a[k], m, scale, d);
                for (int64_t c = 0; c < d; c++) dqb[c] += ds * hb[k * d + c];
            }
        }
}

void cr_meanpool_forward(float *out, const float *h, const int64_t *len, int64_t B, int64_t L, int64_t d) {
    for (int64_t b = 0; b < B; b++) {
        int64_t n = len[b];
        CR_ASSERT(n >= 0 && n <= L);
        float *o = out + b * d;
        memset(o, 0, (size_t)d * sizeof *o);
        for (int64_t k = 0; k < n; k++)
            for (int64_t c = 0; c < d; c++) o[c] += h[(b * L + k) * d + c];
        if (n > 0) {
            float inv = 1.0f / (float)n;
            for (int64_t c = 0; c < d; c++) o[c] *= inv;
        }
    }
}

void cr_meanpool_backward(float *dh, const float *dout, const int64_t *len, int64_t B, int64_t L, int64_t d) {
    for (int64_t b = 0; b < B; b++) {
        int64_t n = len[b];
        if (n == 0) continue;
        float inv = 1.0f / (float)n;
        for (int64_t k = 0; k < n; k++)
            for (int64_t c = 0; c < d; c++) dh[(b * L + k) * d + c] += dout[b * d + c] * inv;
    }
}

/* nn_dense.c — the row-wise layers of nn_tower.h: the BLAS linear layer, layer norm, GELU, dropout, id dropout,
 * gradient reversal and L2 normalisation.
 *
 * All but the linear layer are plain loops over rows, and those loops are their own reference. Per-row sums
 * (means, variances, dot products) are accumulated in float in index order, as llm.c does; the networks are
 * small (d <= 256), where float sums lose nothing that matters against a float32 reference. Sums over rows (the
 * gamma/beta and bias gradients) run in row order on one thread, so results never depend on the thread count.
 *
 * Invariants: gradients are accumulated (+=); forward passes never write their inputs (except the documented
 * in-place cases); nothing here allocates. */
#include "nn_tower.h"

#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <string.h>

/* ---- linear through BLAS ---- */

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users, blas_saved;

void cr_blas_single_enter(void) {
    pthread_mutex_lock(&blas_lock);
    if (blas_users++ == 0) {
        blas_saved = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_lock);
}

void cr_blas_single_leave(void) {
    pthread_mutex_lock(&blas_lock);
    if (--blas_users == 0) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_lock);
}

static int fits_int(int64_t a, int64_t b, int64_t c) { return a <= INT_MAX && b <= INT_MAX && c <= INT_MAX; }

void cr_linear_forward_blas(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out) {
    CR_ASSERT(fits_int(B, in, out));
    if (B <= 0 || out <= 0) return;
    /* y starts as the bias rows, then y += x @ W^T in one sgemm (beta = 1) */
    for (int64_t r = 0; r < B; r++) {
        if (b) memcpy(y + r * out, b, (size_t)out * sizeof *y);
        else memset(y + r * out, 0, (size_t)out * sizeof *y);
    }
    if (in > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)out, (int)in, 1.0f, x, (int)in, w, (int)in, 1.0f, y,
                    (int)out);
}

void cr_linear_backward_blas(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                             int64_t in, int64_t out) {
    CR_ASSERT(fits_int(B, in, out));
    if (B <= 0 || out <= 0) return;
    if (dx && in > 0)      /* dx (B, in) += dy (B, out) @ W (out, in) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)in, (int)out, 1.0f, dy, (int)out, w, (int)in, 1.0f,
                    dx, (int)in);
    if (dw && in > 0)      /* dw (out, in) += dy^T (out, B) @ x (B, in) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)B, 1.0f, dy, (int)out, x, (int)in, 1.0f,
                    dw, (int)in);
    if (db)                /* in row order, as the reference */
        for (int64_t r = 0; r < B; r++)
            for (int64_t o = 0; o < out; o++) db[o] += dy[r * out + o];
}

/* ---- layer norm ---- */

void cr_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                          int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++) {
        const float *xr = x + r * d;
        float m = 0.0f;
        for (int64_t k = 0; k < d; k++) m += xr[k];
        m /= (float)d;
        /* two passes: the variance from centred values does not cancel when the mean is large */
        float v = 0.0f;
        for (int64_t k = 0; k < d; k++) {
            float c = xr[k] - m;
            v += c * c;
        }
        v /= (float)d;
        float s = 1.0f / sqrtf(v + CR_LN_EPS);
        float *yr = y + r * d;
        for (int64_t k = 0; k < d; k++) yr[k] = (xr[k] - m) * s * gamma[k] + beta[k];
        mean[r] = m;
        rstd[r] = s;
    }
}

void cr_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *gamma, int64_t N, int64_t d) {
    /* With xhat = (x - m) s and g = dy * gamma: dx = s (g - mean(g) - xhat mean(g xhat)). */
    for (int64_t r = 0; r < N; r++) {
        const float *dyr = dy + r * d, *xr = x + r * d;
        float m = mean[r], s = rstd[r];
        float gm = 0.0f, gxm = 0.0f;
        for (int64_t k = 0; k < d; k++) {
            float xh = (xr[k] - m) * s, g = dyr[k] * gamma[k];
            gm += g;
            gxm += g * xh;
        }
        gm /= (float)d;
        gxm /= (float)d;
        for (int64_t k = 0; k < d; k++) {
            float xh = (xr[k] - m) * s;
            if (dbeta) dbeta[k] += dyr[k];
            if (dgamma) dgamma[k] += dyr[k] * xh;
            if (dx) dx[r * d + k] += s * (dyr[k] * gamma[k] - gm - xh * gxm);
        }
    }
}

/* ---- GELU ---- */

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

void cr_gelu_forward(float *y, const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++) y[k] = 0.5f * x[k] * (1.0f + erff(x[k] * INV_SQRT2));
}

void cr_gelu_backward(float *dx, const float *dy, const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        float cdf = 0.5f * (1.0f + erff(x[k] * INV_SQRT2)), pdf = INV_SQRT_2PI * expf(-0.5f * x[k] * x[k]);
        dx[k] += dy[k] * (cdf + x[k] * pdf);
    }
}

/* ---- dropout ---- */

void cr_dropout_apply(float *y, const float *x, const uint8_t *mask, int64_t n, float p) {
    CR_ASSERT(p >= 0.0f && p < 1.0f);
    float scale = 1.0f / (1.0f - p);
    for (int64_t k = 0; k < n; k++) y[k] = mask[k] ? x[k] * scale : 0.0f;
}

void cr_dropout_forward(float *y, uint8_t *mask, const float *x, int64_t n, float p, cr_rng *r) {
    CR_ASSERT(p >= 0.0f && p < 1.0f);
    if (p > 0.0f)
        for (int64_t k = 0; k < n; k++) mask[k] = cr_rng_uniform(r) >= (double)p;
    else
        memset(mask, 1, (size_t)n);
    cr_dropout_apply(y, x, mask, n, p);
}

void cr_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t n, float p) {
    float scale = 1.0f / (1.0f - p);
    for (int64_t k = 0; k < n; k++)
        if (mask[k]) dx[k] += dy[k] * scale;
}

void cr_id_dropout_apply(float *y, const float *x, const uint8_t *keep, int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++) {
        if (!keep[r]) memset(y + r * d, 0, (size_t)d * sizeof *y);
        else if (y != x) memmove(y + r * d, x + r * d, (size_t)d * sizeof *y);
    }
}

void cr_id_dropout_forward(float *y, uint8_t *keep, const float *x, int64_t N, int64_t d, float p, cr_rng *r) {
    CR_ASSERT(p >= 0.0f && p <= 1.0f);
    if (p > 0.0f)
        for (int64_t k = 0; k < N; k++) keep[k] = cr_rng_uniform(r) >= (double)p;
    else
        memset(keep, 1, (size_t)N);
    cr_id_dropout_apply(y, x, keep, N, d);
}

void cr_id_dropout_backward(float *dx, const float *dy, const uint8_t *keep, int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++)
        if (keep[r])
            for (int64_t k = 0; k < d; k++) dx[r * d + k] += dy[r * d + k];
}

/* ---- gradient reversal ---- */

void cr_grl_forward(float *y, const float *x, int64_t n) {
    if (y != x) memmove(y, x, (size_t)n * sizeof *y);
}

void cr_grl_backward(float *dx, const float *dy, int64_t n, float lambda) {
    for (int64_t k = 0; k < n; k++) dx[k] += -lambda * dy[k];
}

/* ---- L2 normalisation ---- */

void cr_l2norm_forward(float *y, float *norm, const float *x, int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++) {
        const float *xr = x + r * d;
        float s = 0.0f;
        for (int64_t k = 0; k < d; k++) s += xr[k] * xr[k];
        float n = sqrtf(s), inv = 1.0f / (n > CR_L2_EPS ? n : CR_L2_EPS);
        for (int64_t k = 0; k < d; k++) y[r * d + k] = xr[k] * inv;
        norm[r] = n;
    }
}

void cr_l2norm_backward(float *dx, const float *dy, const float *y, const float *norm, int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++) {
        const float *dyr = dy + r * d, *yr = y + r * d;
        float *dxr = dx + r * d;
        if (!(norm[r] > CR_L2_EPS)) {
            /* below eps the forward pass was x / eps, a linear map */
            for (int64_t k = 0; k < d; k++) dxr[k] += dyr[k] / CR_L2_EPS;
            continue;
        }
        /* d(x/|x|) = (I - y y^T) / |x| */
        float yd = 0.0f, inv = 1.0f / norm[r];
        for (int64_t k = 0; k < d; k++) yd += yr[k] * dyr[k];
        for (int64_t k = 0; k < d; k++) dxr[k] += (dyr[k] - yr[k] * yd) * inv;
    }
}

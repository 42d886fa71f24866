/* nn_loss.c — the training losses of nn_tower.h: sampled softmax with log-Q correction and accidental-hit masks,
 * BPR, InfoNCE (through L2 normalisation) and softmax cross-entropy.
 *
 * Every softmax is taken after subtracting its row's (or column's) maximum, with the exponentials summed in
 * double, so no logit can overflow and a masked logit (-inf) contributes an exact 0. A loss is the mean over
 * rows of per-row terms that are summed in row order on one thread, so it does not depend on the thread count.
 *
 * The fast versions compute the logit matrices and the two gradient products with cblas_sgemm and split the
 * softmax rows over threads; the _ref versions are the same algorithm with scalar loops for the products and
 * one thread. Gradients are ADDED (scaled by `weight`) into the caller's buffers. */
#include "nn_tower.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#define LOSS_PAR_WORK 65536

/* ---- the two products, as BLAS or as loops ---- */

/* z (M, N) = alpha x (M, d) @ y (N, d)^T */
static void gemm_nt(int blas, float *z, const float *x, const float *y, int64_t M, int64_t N, int64_t d, float alpha) {
    if (M <= 0 || N <= 0) return;
    if (blas) {
        CR_ASSERT(M <= INT_MAX && N <= INT_MAX && d <= INT_MAX);
        if (d > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)d, alpha, x, (int)d, y, (int)d, 0.0f, z,
                        (int)N);
        else
            memset(z, 0, (size_t)(M * N) * sizeof *z);
        return;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (int64_t c = 0; c < d; c++) s += x[i * d + c] * y[j * d + c];
            z[i * N + j] = alpha * s;
        }
}

/* gx (M, d) += g (M, N) @ y (N, d) and gy (N, d) += g^T @ x (M, d) (either NULL). */
static void gemm_back(int blas, float *gx, float *gy, const float *g, const float *x, const float *y, int64_t M, int64_t N,
                      int64_t d) {
    if (M <= 0 || N <= 0 || d <= 0) return;
    if (blas) {
        if (gx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)d, (int)N, 1.0f, g, (int)N, y, (int)d, 1.0f, gx,
                        (int)d);
        if (gy)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)M, 1.0f, g, (int)N, x, (int)d, 1.0f, gy,
                        (int)d);
        return;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float gij = g[i * N + j];
            if (gx)
                for (int64_t c = 0; c < d; c++) gx[i * d + c] += gij * y[j * d + c];
            if (gy)
                for (int64_t c = 0; c < d; c++) gy[j * d + c] += gij * x[i * d + c];
        }
}

/* ---- sampled softmax ---- */

void cr_hitmask_from_items(uint64_t *mask, const int32_t *cand_item, int64_t B, int64_t N) {
    CR_ASSERT(B <= N);
    memset(mask, 0, (size_t)(B * cr_hitmask_words(N)) * sizeof *mask);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++)
            if (j != b && cand_item[j] == cand_item[b]) cr_hitmask_set(mask, N, b, j);
}

/* One row's logits z (N) in place: the log-Q correction and the mask applied; returns their logsumexp. */
static float ssm_lse(float *z, int64_t b, int64_t N, const float *log_q, const uint64_t *hit_mask) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < N; j++) {
        if (log_q) z[j] -= log_q[j];
        if (hit_mask && j != b && cr_hitmask_get(hit_mask, N, b, j)) z[j] = -INFINITY;
        if (z[j] > mx) mx = z[j];
    }
    double sum = 0.0;
    for (int64_t j = 0; j < N; j++) sum += exp((double)(z[j] - mx));      /* exp(-inf) = 0 */
    return mx + (float)log(sum);
}

/* One row: z (N) logits in place -> row gradient factor (p_j - t_j) scaled by `scale`, where t is the target
 * distribution (row b's positive, [j == b], when target is NULL); returns the row's loss -sum_j t_j log p_j. */
static float ssm_row(float *z, int64_t b, int64_t N, const float *log_q, const uint64_t *hit_mask, const float *target,
                     float scale) {
    const float lse = ssm_lse(z, b, N, log_q, hit_mask);
    float loss = 0.0f;
    if (!target) loss = lse - z[b];
    else
        for (int64_t j = 0; j < N; j++)
            if (target[j] > 0.0f) loss += target[j] * (lse - z[j]);
    for (int64_t j = 0; j < N; j++) z[j] = scale * (expf(z[j] - lse) - (target ? target[j] : j == b ? 1.0f : 0.0f));
    return loss;
}

static double sampled_softmax(int fast, float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B,
                              int64_t N, int64_t d, float temperature, const float *log_q, const uint64_t *hit_mask,
                              const float *target, float weight) {
    CR_ASSERT(B >= 0 && N >= B && temperature > 0.0f);
    if (B == 0) return 0.0;
    float inv_t = 1.0f / temperature;
    gemm_nt(fast, probs, U, C, B, N, d, inv_t);
    /* the gradient of weight * mean_b loss_b w.r.t. the logits, with the 1/temperature of the product folded in */
    float scale = weight / (float)B * inv_t;
    double loss = 0.0;
    int par = fast && B > 1 && B * N >= LOSS_PAR_WORK;
    (void)par;
    /* Row losses are summed in row order whatever the thread count: threads store them for a chunk of rows,
     * one thread adds them up. probs then holds the logit gradients, which the two products turn into dU, dC. */
    enum { CHUNK = 256 };
    for (int64_t b0 = 0; b0 < B; b0 += CHUNK) {
        int64_t nb = B - b0 < CHUNK ? B - b0 : CHUNK;
        float row_loss[CHUNK];
        CR_OMP(omp parallel for schedule(static) if (par))
        for (int64_t i = 0; i < nb; i++)
            row_loss[i] = ssm_row(probs + (b0 + i) * N, b0 + i, N, log_q, hit_mask, target ? target + (b0 + i) * N : NULL, scale);
        for (int64_t i = 0; i < nb; i++) loss += row_loss[i];
    }
    gemm_back(fast, dU, dC, probs, U, C, B, N, d);
    return loss / (double)B;
}

double cr_sampled_softmax(float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B, int64_t N,
                          int64_t d, float temperature, const float *log_q, const uint64_t *hit_mask, float weight) {
    return sampled_softmax(1, dU, dC, probs, U, C, B, N, d, temperature, log_q, hit_mask, NULL, weight);
}

double cr_sampled_softmax_ref(float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B, int64_t N,
                              int64_t d, float temperature, const float *log_q, const uint64_t *hit_mask, float weight) {
    return sampled_softmax(0, dU, dC, probs, U, C, B, N, d, temperature, log_q, hit_mask, NULL, weight);
}

double cr_softmax_distill(float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B, int64_t N, int64_t d,
                          float temperature, const float *log_q, const uint64_t *hit_mask, const float *target, float weight) {
    return sampled_softmax(1, dU, dC, probs, U, C, B, N, d, temperature, log_q, hit_mask, target, weight);
}

void cr_softmax_rows(float *p, const float *U, const float *C, int64_t B, int64_t N, int64_t d, float temperature,
                     const float *log_q, const uint64_t *hit_mask) {
    CR_ASSERT(B >= 0 && N >= B && temperature > 0.0f);
    if (B == 0) return;
    gemm_nt(1, p, U, C, B, N, d, 1.0f / temperature);
    for (int64_t b = 0; b < B; b++) {
        float *z = p + b * N;
        const float lse = ssm_lse(z, b, N, log_q, hit_mask);
        for (int64_t j = 0; j < N; j++) z[j] = expf(z[j] - lse);
    }
}

/* ---- BPR ---- */

double cr_bpr_loss(float *du, float *dpos, float *dneg, const float *u, const float *pos, const float *neg, int64_t B,
                   int64_t d, float weight) {
    if (B <= 0) return 0.0;
    double loss = 0.0;
    for (int64_t b = 0; b < B; b++) {
        const float *ub = u + b * d, *pb = pos + b * d, *nb = neg + b * d;
        float x = 0.0f;
        for (int64_t c = 0; c < d; c++) x += ub[c] * (pb[c] - nb[c]);
        /* -log sigmoid(x) = softplus(-x) = max(-x, 0) + log1p(exp(-|x|)); d/dx = -sigmoid(-x) */
        loss += (x < 0 ? -(double)x : 0.0) + log1p(exp(-fabs((double)x)));
        float e = expf(-fabsf(x)), sig_neg = x >= 0 ? e / (1.0f + e) : 1.0f / (1.0f + e);
        float g = -weight / (float)B * sig_neg;
        for (int64_t c = 0; c < d; c++) {
            if (du) du[b * d + c] += g * (pb[c] - nb[c]);
            if (dpos) dpos[b * d + c] += g * ub[c];
            if (dneg) dneg[b * d + c] -= g * ub[c];
        }
    }
    return loss / (double)B;
}

/* ---- InfoNCE ---- */

int64_t cr_infonce_scratch_size(int64_t n, int64_t d) { return n * n + 4 * n * d + 6 * n; }

static double infonce(int fast, float *da, float *db, float *scratch, const float *a, const float *b, int64_t n, int64_t d,
                      float tau, int symmetric, float weight) {
    CR_ASSERT(tau > 0.0f && n >= 0);
    if (n == 0) return 0.0;
    /* scratch: z (n, n), an, bn (n, d) normalised inputs, gan, gbn (n, d) their gradients, na, nb (n) norms,
     * row_lse, col_lse, row_loss, col_loss (n) */
    float *z = scratch, *an = z + n * n, *bn = an + n * d, *gan = bn + n * d, *gbn = gan + n * d;
    float *na = gbn + n * d, *nb = na + n, *row_lse = nb + n, *col_lse = row_lse + n, *row_loss = col_lse + n,
          *col_loss = row_loss + n;
    float inv_t = 1.0f / tau;
    cr_l2norm_forward(an, na, a, n, d);
    cr_l2norm_forward(bn, nb, b, n, d);
    gemm_nt(fast, z, an, bn, n, n, d, inv_t);
    int par = fast && n > 1 && n * n >= LOSS_PAR_WORK;
    (void)par;
    CR_OMP(omp parallel for schedule(static) if (par))
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z + i * n;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) mx = zi[j] > mx ? zi[j] : mx;
        double s = 0.0;
        for (int64_t j = 0; j < n; j++) s += exp((double)(zi[j] - mx));
        row_lse[i] = mx + (float)log(s);
        row_loss[i] = row_lse[i] - zi[i];
    }
    if (symmetric) {
        CR_OMP(omp parallel for schedule(static) if (par))
        for (int64_t j = 0; j < n; j++) {
            float mx = -INFINITY;
            for (int64_t i = 0; i < n; i++) mx = z[i * n + j] > mx ? z[i * n + j] : mx;
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) s += exp((double)(z[i * n + j] - mx));
            col_lse[j] = mx + (float)log(s);
            col_loss[j] = col_lse[j] - z[j * n + j];
        }
    }
    double loss = 0.0, loss_col = 0.0;
    for (int64_t i = 0; i < n; i++) loss += row_loss[i];
    loss /= (double)n;
    if (symmetric) {
        for (int64_t j = 0; j < n; j++) loss_col += col_loss[j];
        loss = 0.5 * (loss + loss_col / (double)n);
    }
    /* dz_ij = c ((P_ij - [i == j]) + (Q_ij - [i == j])), P the row softmax, Q the column softmax (symmetric only),
     * c = weight / n (halved when symmetric) / tau for the product's scale; in place, element by element */
    float c = weight / (float)n * (symmetric ? 0.5f : 1.0f) * inv_t;
    CR_OMP(omp parallel for schedule(static) if (par))
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            float zij = z[i * n + j], g = expf(zij - row_lse[i]) - (i == j ? 1.0f : 0.0f);
            if (symmetric) g += expf(zij - col_lse[j]) - (i == j ? 1.0f : 0.0f);
            z[i * n + j] = c * g;
        }
    memset(gan, 0, (size_t)(2 * n * d) * sizeof *gan);
    gemm_back(fast, gan, gbn, z, an, bn, n, n, d);
    if (da) cr_l2norm_backward(da, gan, an, na, n, d);
    if (db) cr_l2norm_backward(db, gbn, bn, nb, n, d);
    return loss;
}

double cr_infonce(float *da, float *db, float *scratch, const float *a, const float *b, int64_t n, int64_t d, float tau,
                  int symmetric, float weight) {
    return infonce(1, da, db, scratch, a, b, n, d, tau, symmetric, weight);
}

double cr_infonce_ref(float *da, float *db, float *scratch, const float *a, const float *b, int64_t n, int64_t d,
                      float tau, int symmetric, float weight) {
    return infonce(0, da, db, scratch, a, b, n, d, tau, symmetric, weight);
}

/* ---- softmax cross-entropy ---- */

double cr_softmax_xent(float *dlogits, const float *logits, const int32_t *labels, int64_t B, int64_t K, float weight) {
    if (B <= 0) return 0.0;
    double loss = 0.0;
    float scale = weight / (float)B;
    for (int64_t b = 0; b < B; b++) {
        const float *z = logits + b * K;
        CR_ASSERT(labels[b] >= 0 && labels[b] < K);
        float mx = -INFINITY;
        for (int64_t k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (int64_t k = 0; k < K; k++) s += exp((double)(z[k] - mx));
        float lse = mx + (float)log(s);
        loss += (double)(lse - z[labels[b]]);
        if (dlogits)
            for (int64_t k = 0; k < K; k++) dlogits[b * K + k] += scale * (expf(z[k] - lse) - (k == labels[b] ? 1.0f : 0.0f));
    }
    return loss / (double)B;
}

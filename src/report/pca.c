/* pca.c — the two leading principal components of a float matrix (report.h cr_pca2), for the item maps.
 *
 * Covariance C (d, d) = sum of centred rows' outer products / (n - 1), accumulated in double by OpenBLAS dsyrk
 * over blocks of rows (memory: one block, not a centred copy of x). Its top-2 eigenspace by block power
 * iteration: V (d, 2) <- orthonormalise(C V) until V stops moving; then the 2 x 2 matrix H = V^T C V is
 * diagonalised in closed form and V rotated onto its eigenvectors, which are C's to the accuracy of the
 * subspace. The start is fixed (a named PCG stream), so results are reproducible. */
#include "crossrec/report.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define PCA_BLOCK_ROWS 4096
#define PCA_MAX_ITER 3000
#define PCA_TOL 1e-12

/* Gram-Schmidt on the two columns of v (d, 2) row-major. A column that vanishes (a covariance of rank < 2)
 * becomes the unit vector e_j least aligned with the first column, made orthogonal to it. */
static void orthonormalise(double *v, int64_t d) {
    for (int c = 0; c < 2; c++) {
        double dot = 0, norm = 0;
        for (int64_t j = 0; j < d && c; j++) dot += v[j * 2] * v[j * 2 + 1];
        for (int64_t j = 0; j < d; j++) v[j * 2 + c] -= dot * v[j * 2], norm += v[j * 2 + c] * v[j * 2 + c];
        if (norm < 1e-300) {
            int64_t at = 0;
            for (int64_t j = 1; j < d && c; j++)
                if (fabs(v[j * 2]) < fabs(v[at * 2])) at = j;
            dot = c ? v[at * 2] : 0;
            norm = 0;
            for (int64_t j = 0; j < d; j++) v[j * 2 + c] = (j == at) - dot * (c ? v[j * 2] : 0), norm += v[j * 2 + c] * v[j * 2 + c];
        }
        norm = sqrt(norm);
        for (int64_t j = 0; j < d; j++) v[j * 2 + c] /= norm;
    }
}

/* w (d, 2) = C v, C (d, d) symmetric with its upper triangle filled (dsyrk's). */
static void cov_times(const double *c, const double *v, double *w, int64_t d) {
    cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, (int)d, 2, 1.0, c, (int)d, v, 2, 0.0, w, 2);
}

cr_status cr_pca2(const float *x, int64_t n, int64_t d, float *out, double var_share[2]) {
    if (n < 2 || d < 1) return cr_fail(CR_ERR_ARG, "PCA needs at least 2 rows and 1 column (got %lld x %lld)", (long long)n, (long long)d);
    double *mean = cr_calloc((size_t)d, sizeof *mean);
    double *cov = cr_calloc((size_t)(d * d), sizeof *cov);
    double *blk = cr_malloc((size_t)(PCA_BLOCK_ROWS * d) * sizeof *blk);
    double *v = cr_malloc((size_t)(2 * d) * sizeof *v), *w = cr_malloc((size_t)(2 * d) * sizeof *w);
    if (!mean || !cov || !blk || !v || !w) {
        cr_free(mean), cr_free(cov), cr_free(blk), cr_free(v), cr_free(w);
        return cr_fail(CR_ERR_NOMEM, "out of memory (PCA of %lld x %lld)", (long long)n, (long long)d);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
    for (int64_t i0 = 0; i0 < n; i0 += PCA_BLOCK_ROWS) {
        int64_t rows = n - i0 < PCA_BLOCK_ROWS ? n - i0 : PCA_BLOCK_ROWS;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < d; j++) blk[i * d + j] = (double)x[(i0 + i) * d + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0 / (double)(n - 1), blk, (int)d, 1.0, cov,
                    (int)d);
    }
    double trace = 0;
    for (int64_t j = 0; j < d; j++) trace += cov[j * d + j];

    cr_rng r;
    cr_rng_named(&r, 42, "pca");
    for (int64_t k = 0; k < 2 * d; k++) v[k] = cr_rng_normal(&r);
    if (d == 1) v[1] = 0;
    else orthonormalise(v, d);
    for (int it = 0; it < PCA_MAX_ITER && d > 1; it++) {
        cov_times(cov, v, w, d);
        orthonormalise(w, d);
        double moved = 0;
        for (int64_t k = 0; k < 2 * d; k++) moved = fmax(moved, fabs(w[k] - v[k]));
        memcpy(v, w, (size_t)(2 * d) * sizeof *v);
        if (moved < PCA_TOL) break;
    }
    double lambda[2] = {trace, 0};
    if (d == 1) {
        v[0] = 1;
    } else {
        /* H = V^T C V (2 x 2), its eigenvectors by the closed form of a symmetric 2 x 2 */
        cov_times(cov, v, w, d);
        double h00 = 0, h01 = 0, h11 = 0;
        for (int64_t j = 0; j < d; j++) h00 += v[j * 2] * w[j * 2], h01 += v[j * 2] * w[j * 2 + 1], h11 += v[j * 2 + 1] * w[j * 2 + 1];
        double theta = 0.5 * atan2(2 * h01, h00 - h11), cs = cos(theta), sn = sin(theta);
        lambda[0] = h00 * cs * cs + 2 * h01 * cs * sn + h11 * sn * sn;
        lambda[1] = h00 * sn * sn - 2 * h01 * cs * sn + h11 * cs * cs;
        for (int64_t j = 0; j < d; j++) {
            double a = v[j * 2], b = v[j * 2 + 1];
            v[j * 2] = cs * a + sn * b;
            v[j * 2 + 1] = -sn * a + cs * b;
        }
        if (lambda[1] > lambda[0]) {
            double t = lambda[0];
            lambda[0] = lambda[1], lambda[1] = t;
            for (int64_t j = 0; j < d; j++) t = v[j * 2], v[j * 2] = v[j * 2 + 1], v[j * 2 + 1] = t;
        }
        /* sign: the largest coefficient of each component positive */
        for (int c = 0; c < 2; c++) {
            int64_t at = 0;
            for (int64_t j = 1; j < d; j++)
                if (fabs(v[j * 2 + c]) > fabs(v[at * 2 + c])) at = j;
            if (v[at * 2 + c] < 0)
                for (int64_t j = 0; j < d; j++) v[j * 2 + c] = -v[j * 2 + c];
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double p0 = 0, p1 = 0;
        for (int64_t j = 0; j < d; j++) {
            double c = (double)x[i * d + j] - mean[j];
            p0 += c * v[j * 2], p1 += c * v[j * 2 + 1];
        }
        out[i * 2] = (float)p0, out[i * 2 + 1] = (float)(d == 1 ? 0 : p1);
    }
    if (var_share) {
        var_share[0] = trace > 0 ? lambda[0] / trace : 0;
        var_share[1] = trace > 0 ? lambda[1] / trace : 0;
    }
    cr_free(mean), cr_free(cov), cr_free(blk), cr_free(v), cr_free(w);
    return CR_OK;
}

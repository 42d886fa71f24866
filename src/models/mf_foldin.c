/* mf_foldin.c — fold-in for implicit ALS: the vector of a user the model has no trained row for, solved from the
 * user's history against the fixed item factors (the exact-solve form of implicit's recalculate_user).
 *
 * With item factors Y (n_items, dim), regularisation reg and confidence alpha, a history H (item indices, a
 * repeated item counting once per occurrence) gives each distinct item i in H the confidence
 * c_i = 1 + alpha * (occurrences of i) and preference 1; every other item has confidence 1 and preference 0.
 * The user's vector minimises sum_i c_i (p_i - x.y_i)^2 + reg |x|^2, i.e. solves
 *
 *     (Y^T Y + reg I + sum_{i in H} (c_i - 1) y_i y_i^T) x = sum_{i in H} c_i y_i,
 *
 * the same system an ALS user half-step solves for a trained user with these events (fit_als.c).
 *
 * Which items count: a history may hold items of any domain. The model keeps no item -> domain table, and needs
 * none: ALS leaves every item without training events in the trained domain(s) at exactly zero factors (a
 * target-only model zeroes all items of the other domains), and such an item would only add zeros to the
 * system. So items whose factor row is all zero are skipped, and a history with no other item cannot be
 * represented.
 *
 * Precision: Y^T Y + reg I is kept in float (m->yty, made once by cr_mf_prepare_fold_in); the per-user system is
 * built and factorised (Cholesky) in double, because with a large alpha the matrix is dominated by a few
 * rank-one terms and its condition number can be large; dim^3 / 6 multiplications per call are cheap next to
 * scoring every candidate for dim up to a few hundred. */
#include "model_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cr_status cr_mf_prepare_fold_in(cr_mf_model *m) {
    const int64_t dim = m->dim;
    const int it = cr_slab_find(&m->params, "item");
    CR_ASSERT(it >= 0 && m->params.t[it].cols == dim);
    const int64_t n_items = m->params.t[it].rows;
    /* Allocated once: the fitting code calls this after every epoch, and dim never changes. */
    if (!m->yty && !(m->yty = cr_malloc((size_t)(dim * dim) * sizeof *m->yty)))
        return cr_fail(CR_ERR_NOMEM, "out of memory for the fold-in matrix (%lld x %lld)", (long long)dim, (long long)dim);
    float *G = m->yty;  /* (dim, dim) */
    memset(G, 0, (size_t)(dim * dim) * sizeof *G);
    /* Y is (n_items, dim) row-major: G = Y^T Y, upper triangle written by BLAS. */
    if (n_items > 0)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)n_items, 1.0f, cr_slab_at(&m->params, it),
                    (int)dim, 0.0f, G, (int)dim);
    for (int64_t a = 0; a < dim; a++) {
        for (int64_t b = 0; b < a; b++) G[a * dim + b] = G[b * dim + a];
        G[a * dim + a] += (float)m->reg;
    }
    return CR_OK;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int all_zero(const float *y, int64_t dim) {
    for (int64_t k = 0; k < dim; k++)
        if (y[k] != 0.0f) return 0;
    return 1;
}

/* Solves A x = b for symmetric positive definite A (n, n), of which only the lower triangle is read; A is
 * overwritten by its Cholesky factor L (A = L L^T) and b by x. Returns -1 when a pivot is not positive (A is
 * not positive definite: only possible with reg = 0 and degenerate item factors). */
static int cholesky_solve(double *A, double *b, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double *Lj = A + j * n;
        double d = Lj[j];
        for (int64_t k = 0; k < j; k++) d -= Lj[k] * Lj[k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        Lj[j] = d;
        for (int64_t i = j + 1; i < n; i++) {
            double *Li = A + i * n;
            double s = Li[j];
            for (int64_t k = 0; k < j; k++) s -= Li[k] * Lj[k];
            Li[j] = s / d;
        }
    }
    /* L z = b, then L^T x = z */
    for (int64_t i = 0; i < n; i++) {
        double s = b[i];
        for (int64_t k = 0; k < i; k++) s -= A[i * n + k] * b[k];
        b[i] = s / A[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (int64_t k = i + 1; k < n; k++) s -= A[k * n + i] * b[k];
        b[i] = s / A[i * n + i];
    }
    return 0;
}

int cr_mf_fold_in(const cr_mf_model *m, const int32_t *hist, int64_t n, float *x) {
    const int64_t dim = m->dim;
    memset(x, 0, (size_t)dim * sizeof *x);
    if (n <= 0) return 0;
    CR_ASSERT(m->yty);
    const float *Y = cr_slab_at(&m->params, cr_slab_find(&m->params, "item"));   /* (n_items, dim) */
    const double alpha = m->als_alpha;
    /* One block per call (the model is shared by scoring threads): A (dim, dim), b (dim), the sorted history (n).
     * Sorting groups repeated items so that each distinct item is added once with its total confidence. */
    double *A = cr_malloc((size_t)(dim * dim + dim) * sizeof(double) + (size_t)n * sizeof(int32_t));
    if (!A) {
        cr_fail(CR_ERR_NOMEM, "out of memory folding in a history of %lld items", (long long)n);
        return -1;
    }
    double *b = A + dim * dim;
    int32_t *items = (int32_t *)(b + dim);
    memcpy(items, hist, (size_t)n * sizeof *items);
    qsort(items, (size_t)n, sizeof *items, cmp_i32);
    for (int64_t a = 0; a < dim; a++) {
        for (int64_t c = 0; c <= a; c++) A[a * dim + c] = m->yty[a * dim + c];
        b[a] = 0;
    }
    int64_t used = 0;
    for (int64_t k = 0; k < n;) {
        int64_t run = 1;
        while (k + run < n && items[k + run] == items[k]) run++;
        const float *y = Y + (int64_t)items[k] * dim;
        k += run;
        if (all_zero(y, dim)) continue;     /* outside the trained domain(s), or never seen in training */
        used++;
        const double w = alpha * (double)run;  /* c - 1 */
        for (int64_t a = 0; a < dim; a++) {
            const double wya = w * y[a];
            double *Aa = A + a * dim;
            for (int64_t c = 0; c <= a; c++) Aa[c] += wya * y[c];     /* lower triangle */
            b[a] += (1.0 + w) * y[a];
        }
    }
    int ok = used > 0 && cholesky_solve(A, b, dim) == 0;
    if (ok)
        for (int64_t a = 0; a < dim; a++) x[a] = (float)b[a];
    cr_free(A);
    return ok;
}

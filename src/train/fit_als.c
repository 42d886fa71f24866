/* fit_als.c — implicit ALS (Hu, Koren, Volinsky, "Collaborative Filtering for Implicit Feedback Datasets",
 * 2008), with conjugate-gradient row solves as the `implicit` library does them (Takács et al. 2011).
 *
 * The model is a cr_mf_model of type "als" (src/models/mf.c): score(u, i) = <x_u, y_i>. Every (user, item) pair
 * of the trained domain(s) with events is observed: its events' values are summed into v (a user who bought an
 * item twice counts it twice), giving confidence c = 1 + alpha |v| and preference p = [v > 0] (a negative sum
 * is an explicit dislike: p = 0 with extra confidence, as in implicit; a sum of exactly 0 is the same as no
 * event and the pair is dropped). Every other pair has c = 1, p = 0. The objective is
 *
 *     L = sum_{all u, i} c_ui (p_ui - x_u.y_i)^2 + reg (|X|^2 + |Y|^2).
 *
 * An epoch is one alternation: with Y fixed each x_u solves (Y^T Y + reg I + sum_{i in u} (c_ui - 1) y_i y_i^T)
 * x_u = sum_{i in u} c_ui p_ui y_i, then with X fixed each y_i solves the symmetric system. Y^T Y (dim, dim) is
 * formed once per half-step with BLAS (ssyrk); each row is then cg_steps conjugate-gradient iterations
 * warm-started from its current vector, using the matrix only through products (dim^2 + 2 n dim each), so a
 * half-step costs O(n dim^2 + nnz dim) per CG step. A few steps from the previous solution are enough in
 * practice; CG would be exact after dim steps in exact arithmetic.
 *
 * Reported loss: L at the end of the epoch, divided by the number of observed pairs. It is exact, not a proxy,
 * and cheap: sum over all pairs of (x_u.y_i)^2 is sum_i y_i^T (X^T X) y_i, so with the X^T X + reg I of the item
 * half-step each item contributes y_i^T (X^T X + reg I) y_i + sum_{u in i} [c (p - s)^2 - s^2] (s = x_u.y_i),
 * O(n_items dim^2 + nnz dim) in all, and reg |X|^2 is added once.
 *
 * Target-only (p->domain >= 0): only events whose item is in that domain are used. In either case users without
 * a pair have user_known = 0 and zero vectors (they are folded in when scored), and items without a pair (all
 * items outside the domain) stay exactly zero: fold-in relies on this (mf_foldin.c).
 *
 * Init: factors N(0, 0.01^2) from the stream "als.init" of p->seed, then every row without pairs is zeroed.
 * Determinism: a row's solve reads only the fixed side and writes only its own vector, with per-thread scratch
 * allocated before the epochs; the only reductions over rows (Y^T Y in BLAS, the loss) do not depend on the
 * number of OpenMP threads (the loss sums per-row terms in row order), so a seed gives byte-identical factors
 * at any thread count.
 *
 * Early stopping and the per-epoch table are cr_train_loop's: after each epoch the model's fold-in matrix is
 * refreshed so that validation scores cold users with the current item factors, and after the loop once more,
 * because the loop may have restored an earlier epoch's parameters. */
#include "train_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ALS_DEFAULT_REG 0.01
#define ALS_INIT_STD 0.01
#define ALS_CG_EPS 1e-20f   /* implicit's threshold on r.r below which a row counts as solved */

/* ---- training pairs ---- */

void cr_als_data_free(cr_als_data *a) {
    cr_free(a->u_ptr);
    cr_free(a->u_idx);
    cr_free(a->u_val);
    cr_free(a->i_ptr);
    cr_free(a->i_idx);
    cr_free(a->i_val);
    memset(a, 0, sizeof *a);
}

cr_status cr_als_data_init(cr_als_data *a, const cr_interactions *v, int32_t domain) {
    memset(a, 0, sizeof *a);
    const int64_t nu = v->n_users, ni = v->n_items;
    int64_t n_ev = 0;   /* events of the trained domain(s): an upper bound on the pairs */
    if (domain < 0) n_ev = v->user_ptr[nu];
    else
        for (int64_t e = 0; e < v->user_ptr[nu]; e++) n_ev += v->item_domain[v->user_items[e]] == domain;
    a->n_users = nu, a->n_items = ni;
    a->u_ptr = cr_malloc(((size_t)nu + 1) * sizeof *a->u_ptr);
    a->u_idx = cr_malloc(((size_t)n_ev + 1) * sizeof *a->u_idx);
    a->u_val = cr_malloc(((size_t)n_ev + 1) * sizeof *a->u_val);
    a->i_ptr = cr_calloc((size_t)ni + 1, sizeof *a->i_ptr);
    a->i_idx = cr_malloc(((size_t)n_ev + 1) * sizeof *a->i_idx);
    a->i_val = cr_malloc(((size_t)n_ev + 1) * sizeof *a->i_val);
    /* last[i]: the last user that had item i, slot[i]: where that user's pair for i is */
    int32_t *last = cr_malloc(((size_t)ni + 1) * sizeof *last);
    int64_t *slot = cr_malloc(((size_t)ni + 1) * sizeof *slot);
    if (!a->u_ptr || !a->u_idx || !a->u_val || !a->i_ptr || !a->i_idx || !a->i_val || !last || !slot) {
        cr_free(last);
        cr_free(slot);
        cr_als_data_free(a);
        return cr_fail(CR_ERR_NOMEM, "out of memory for the ALS training pairs (%lld events)", (long long)n_ev);
    }
    for (int64_t i = 0; i < ni; i++) last[i] = -1;
    int64_t nnz = 0;
    a->u_ptr[0] = 0;
    for (int64_t u = 0; u < nu; u++) {
        const int64_t start = nnz;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            const int32_t it = v->user_items[e];
            if (domain >= 0 && v->item_domain[it] != domain) continue;
            const float val = v->user_values ? v->user_values[e] : 1.0f;
            if (last[it] != (int32_t)u) {
                last[it] = (int32_t)u;
                slot[it] = nnz;
                a->u_idx[nnz] = it;
                a->u_val[nnz++] = val;
            } else {
                a->u_val[slot[it]] += val;  /* in event order: the same sum every time */
            }
        }
        int64_t w = start;  /* drop pairs whose values cancel: they are indistinguishable from no event */
        for (int64_t k = start; k < nnz; k++)
            if (a->u_val[k] != 0.0f) a->u_idx[w] = a->u_idx[k], a->u_val[w++] = a->u_val[k];
        nnz = w;
        a->u_ptr[u + 1] = nnz;
    }
    a->nnz = nnz;
    /* by item: counting sort over users in ascending order keeps each item's users ascending */
    for (int64_t k = 0; k < nnz; k++) a->i_ptr[a->u_idx[k] + 1]++;
    for (int64_t i = 0; i < ni; i++) a->i_ptr[i + 1] += a->i_ptr[i];
    for (int64_t i = 0; i < ni; i++) slot[i] = a->i_ptr[i];
    for (int64_t u = 0; u < nu; u++)
        for (int64_t k = a->u_ptr[u]; k < a->u_ptr[u + 1]; k++) {
            const int64_t at = slot[a->u_idx[k]]++;
            a->i_idx[at] = (int32_t)u;
            a->i_val[at] = a->u_val[k];
        }
    cr_free(last);
    cr_free(slot);
    return CR_OK;
}

/* ---- the row solver ---- */

/* Eight partial sums in a fixed order: vectorisable without -ffast-math, and the same bits on every call. */
static inline float dot(const float *restrict a, const float *restrict b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[k + l] * b[k + l];
    float tail = 0.0f;
    for (; k < n; k++) tail += a[k] * b[k];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/* y += a x, in blocks of 8 that the compiler turns into vector instructions at -O2 without a pragma (GCC's
 * -O2 cost model does not vectorise loops that need a scalar epilogue; clang with sanitizers rejects omp simd). */
static inline void axpy(float a, const float *restrict x, float *restrict y, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; l++) y[k + l] += a * x[k + l];
    for (; k < n; k++) y[k] += a * x[k];
}

/* out = s * G v (G symmetric (n, n)), column by column: every out[i] accumulates in the same order, and the
 * inner loop is an axpy. */
static inline void gemv_sym(const float *restrict G, const float *restrict v, int64_t n, float s, float *restrict out) {
    for (int64_t i = 0; i < n; i++) out[i] = 0.0f;
    for (int64_t j = 0; j < n; j++) axpy(s * v[j], G + j * n, out, n);
}

void cr_als_solve_row(const float *G, const float *F, int64_t dim, const int32_t *idx, const float *val, int64_t n,
                      double alpha, int64_t cg_steps, float *x, float *scratch) {
    float *r = scratch, *p = scratch + dim, *Ap = scratch + 2 * dim;    /* (dim) each */
    const float al = (float)alpha;
    /* r = b - A x = sum_k [c p - (c - 1) (f.x)] f - G x */
    gemv_sym(G, x, dim, -1.0f, r);
    for (int64_t k = 0; k < n; k++) {
        const float *f = F + (int64_t)idx[k] * dim;
        const float v = val[k], cm1 = al * fabsf(v);
        axpy((v > 0 ? 1.0f + cm1 : 0.0f) - cm1 * dot(f, x, dim), f, r, dim);
    }
    memcpy(p, r, (size_t)dim * sizeof *p);
    float rsold = dot(r, r, dim);
    for (int64_t it = 0; it < cg_steps && rsold >= ALS_CG_EPS; it++) {
        /* Ap = G p + sum_k (c - 1) (f.p) f */
        gemv_sym(G, p, dim, 1.0f, Ap);
        for (int64_t k = 0; k < n; k++) {
            const float *f = F + (int64_t)idx[k] * dim;
            axpy(al * fabsf(val[k]) * dot(f, p, dim), f, Ap, dim);
        }
        const float pAp = dot(p, Ap, dim);
        if (!(pAp > 0)) break;  /* only with reg = 0 and degenerate factors: keep the current x */
        const float a = rsold / pAp;
        axpy(a, p, x, dim);
        axpy(-a, Ap, r, dim);
        const float rsnew = dot(r, r, dim);
        if (rsnew < ALS_CG_EPS) break;
        const float beta = rsnew / rsold;
        for (int64_t k = 0; k < dim; k++) p[k] = r[k] + beta * p[k];
        rsold = rsnew;
    }
}

/* Row r's part of the objective after its solve: x^T G x + sum_k [c (p - s)^2 - s^2], s = f_k.x, in double.
 * tmp: dim floats. */
static double row_objective(const float *G, const float *F, int64_t dim, const int32_t *idx, const float *val, int64_t n,
                            double alpha, const float *x, float *tmp) {
    gemv_sym(G, x, dim, 1.0f, tmp);
    double obj = 0;
    for (int64_t k = 0; k < dim; k++) obj += (double)x[k] * tmp[k];
    for (int64_t k = 0; k < n; k++) {
        const double s = dot(F + (int64_t)idx[k] * dim, x, dim), c = 1.0 + alpha * fabs((double)val[k]);
        const double e = (val[k] > 0 ? 1.0 : 0.0) - s;
        obj += c * e * e - s * s;
    }
    return obj;
}

/* G = F^T F + reg I, full (dim, dim). */
static void gram(const float *F, int64_t n, int64_t dim, double reg, float *G) {
    memset(G, 0, (size_t)(dim * dim) * sizeof *G);
    if (n > 0) cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, (int)n, 1.0f, F, (int)dim, 0.0f, G, (int)dim);
    for (int64_t a = 0; a < dim; a++) {
        for (int64_t b = 0; b < a; b++) G[a * dim + b] = G[b * dim + a];
        G[a * dim + a] += (float)reg;
    }
}

void cr_als_half_step(const cr_als_step *s, const float *F, int64_t n_fixed, const int64_t *ptr, const int32_t *idx,
                      const float *val, int64_t n_rows, float *X) {
    const int64_t dim = s->dim;
    gram(F, n_fixed, dim, s->reg, s->gram);
    const float *G = s->gram;
    /* Row costs differ by their number of pairs: hand rows out dynamically (which thread solves a row does not
     * change its result). */
    CR_OMP(omp parallel for num_threads(s->threads) schedule(dynamic, 64))
    for (int64_t r = 0; r < n_rows; r++) {
#ifdef _OPENMP
        float *scratch = s->scratch + (int64_t)omp_get_thread_num() * 3 * dim;
#else
        float *scratch = s->scratch;
#endif
        float *x = X + r * dim;
        const int64_t b = ptr[r], n = ptr[r + 1] - b;
        if (n == 0) {
            memset(x, 0, (size_t)dim * sizeof *x);  /* the exact solution of a row without pairs */
            if (s->row_loss) s->row_loss[r] = 0;
            continue;
        }
        cr_als_solve_row(G, F, dim, idx + b, val + b, n, s->alpha, s->cg_steps, x, scratch);
        if (s->row_loss) s->row_loss[r] = row_objective(G, F, dim, idx + b, val + b, n, s->alpha, x, scratch);
    }
}

/* ---- fitting ---- */

typedef struct {
    cr_fit fit;             /* first: the loop's callbacks get this struct */
    cr_mf_model *m;
    cr_als_data data;
    cr_als_step step;
    double *row_loss;       /* (n_items) each item's part of the objective */
    int user_t, item_t;     /* tensor indices in m->params */
} als_fit;

static cr_status als_epoch(cr_fit *f, int64_t epoch, double *loss) {
    als_fit *a = (als_fit *)f;
    cr_mf_model *m = a->m;
    const cr_als_data *D = &a->data;
    const int64_t dim = m->dim;
    float *X = cr_slab_at(&m->params, a->user_t), *Y = cr_slab_at(&m->params, a->item_t);    /* (n_users, dim), (n_items, dim) */
    a->step.row_loss = NULL;
    cr_als_half_step(&a->step, Y, D->n_items, D->u_ptr, D->u_idx, D->u_val, D->n_users, X);
    a->step.row_loss = a->row_loss;
    cr_als_half_step(&a->step, X, D->n_users, D->i_ptr, D->i_idx, D->i_val, D->n_items, Y);
    /* in row order: the same sum at any thread count */
    double obj = 0, xx = 0;
    for (int64_t i = 0; i < D->n_items; i++) obj += a->row_loss[i];
    for (int64_t k = 0; k < D->n_users * dim; k++) xx += (double)X[k] * X[k];
    obj += a->step.reg * xx;
    *loss = D->nnz ? obj / (double)D->nnz : 0.0;
    (void)epoch;
    return cr_mf_prepare_fold_in(m);    /* validation may fold users in; allocates nothing after the first call */
}

static const cr_model *als_model(cr_fit *f) { return &((als_fit *)f)->m->base; }

static int resolve_threads(int threads) {
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

cr_status cr_fit_als(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    *out = NULL;
    const double reg = p->reg < 0 ? ALS_DEFAULT_REG : p->reg;
    const int64_t dim = p->dim;
    als_fit a;
    memset(&a, 0, sizeof a);
    cr_mf_model *m = NULL;
    cr_status st = cr_mf_new(&m, "als", train->n_users, train->n_items, train->n_domains, dim);
    if (st) return st;
    a.m = m;
    m->base.dataset_crc = cr_dataset_file_crc(d);
    m->domain = p->domain;
    m->fold_in = 1;
    m->als_alpha = p->als_alpha;
    m->reg = reg;
    a.user_t = cr_slab_find(&m->params, "user");
    a.item_t = cr_slab_find(&m->params, "item");
    CR_ASSERT(a.user_t >= 0 && a.item_t >= 0);
    if ((st = cr_als_data_init(&a.data, train, p->domain))) goto fail;
    const int threads = resolve_threads(p->threads);
    a.step = (cr_als_step){.dim = dim, .cg_steps = p->cg_steps, .alpha = p->als_alpha, .reg = reg, .threads = threads};
    a.step.gram = cr_malloc((size_t)(dim * dim) * sizeof(float));
    a.step.scratch = cr_malloc((size_t)threads * 3 * (size_t)dim * sizeof(float));
    a.row_loss = cr_malloc(((size_t)train->n_items + 1) * sizeof *a.row_loss);
    if (!a.step.gram || !a.step.scratch || !a.row_loss) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory for ALS scratch (%d threads, dim %lld)", threads, (long long)dim);
        goto fail;
    }
    for (int64_t u = 0; u < train->n_users; u++) m->user_known[u] = a.data.u_ptr[u + 1] > a.data.u_ptr[u];

    cr_rng rng;
    cr_rng_named(&rng, p->seed, "als.init");
    cr_slab_normal(&m->params, a.user_t, ALS_INIT_STD, &rng);
    cr_slab_normal(&m->params, a.item_t, ALS_INIT_STD, &rng);
    /* Rows without pairs are zero from the start: the first user half-step's Y^T Y must not see items of other
     * domains, and nothing would ever move them. */
    float *X = cr_slab_at(&m->params, a.user_t), *Y = cr_slab_at(&m->params, a.item_t);
    for (int64_t u = 0; u < train->n_users; u++)
        if (!m->user_known[u]) memset(X + u * dim, 0, (size_t)dim * sizeof *X);
    for (int64_t i = 0; i < train->n_items; i++)
        if (a.data.i_ptr[i + 1] == a.data.i_ptr[i]) memset(Y + i * dim, 0, (size_t)dim * sizeof *Y);
    /* allocates the fold-in matrix now, so that no epoch allocates */
    if ((st = cr_mf_prepare_fold_in(m))) goto fail;

    char settings[256], dom[128];
    if (p->domain >= 0) snprintf(dom, sizeof dom, "domain %s only", cr_dataset_domain_name(d, p->domain));
    else snprintf(dom, sizeof dom, "all domains");
    snprintf(settings, sizeof settings, "als: dim %lld, alpha %g, reg %g, %lld CG steps, %s, %lld epochs max, patience %d",
             (long long)dim, p->als_alpha, reg, (long long)p->cg_steps, dom, (long long)p->epochs, p->patience);
    a.fit.epoch = als_epoch;
    a.fit.model = als_model;
    a.fit.params = &m->params;
    cr_loop_params lp = cr_loop_params_of(p);
    cr_loop_report rep;
    if ((st = cr_train_loop(&a.fit, p->valid, &lp, settings, &rep))) goto fail;
    /* the loop may have restored an earlier epoch's factors */
    if ((st = cr_mf_prepare_fold_in(m))) goto fail;
    cr_als_data_free(&a.data);
    cr_free(a.step.gram);
    cr_free(a.step.scratch);
    cr_free(a.row_loss);
    *out = &m->base;
    return CR_OK;
fail:
    cr_als_data_free(&a.data);
    cr_free(a.step.gram);
    cr_free(a.step.scratch);
    cr_free(a.row_loss);
    cr_model_free(&m->base);
    return st;
}

/* mf.c — the matrix-factorisation model shared by bpr, als and cmf: score(u, i) = <user_u, item_i>.
 *
 * Main type: cr_mf_model (model_impl.h). Both types use the code here; they differ in their fitting routine
 * (src/train/fit_bpr.c, fit_als.c), their name, and fold_in (als: a user without a vector is folded in from its
 * history by mf_foldin.c; bpr: such a user cannot be represented, can = 0).
 *
 * Scoring: a row's vector is its user's row of the "user" tensor when the user is known (had training events
 * in the trained domain(s)), else the fold-in solve of its history (als), else none. Scores come from
 * cr_mf_dot, a blocked kernel that computes each (row, candidate) dot product with the same arithmetic as the
 * scalar cr_mf_dot_ref: a pair gets the same float whatever else is in the request, and the call is safe from
 * any number of threads (scratch per call). BLAS is not used: evaluation already runs requests on every core,
 * and the pthread OpenBLAS called from those threads would start threads of its own.
 *
 * Invariants (checked on load): dim in 1..4096; domain in -1..n_domains-1; fold_in 0 or 1; als_alpha and reg
 * finite and >= 0; every factor finite; user_known[u] in {0, 1}.
 *
 * .crm keys: mf.dim, mf.domain, mf.fold_in, mf.als_alpha (f64), mf.reg (f64); arrays mf.user f32
 * (n_users * dim), mf.item f32 (n_items * dim), mf.user_known u8 (n_users). A loaded model copies the factors
 * into its own slab (the file holds them as two arrays, the slab as one) and closes the file. */
#include "model_impl.h"

#include <math.h>
#include <string.h>

#define MF_MAX_DIM 4096

/* ---- scoring ---- */

/* Both kernels add the products in k order into a float that starts at 0, with no contraction into FMA (GCC
 * in ISO C mode does not contract; clang must be told), so they agree to the bit. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

void cr_mf_dot_ref(const float *const *u, int64_t n_rows, const float *Q, const int32_t *cand, int64_t n_cand, int64_t dim,
                   float *scores) {
    for (int64_t r = 0; r < n_rows; r++) {
        if (!u[r]) continue;
        for (int64_t c = 0; c < n_cand; c++) {
            const float *q = Q + (int64_t)cand[c] * dim;
            float s = 0.0f;
            for (int64_t k = 0; k < dim; k++) s += u[r][k] * q[k];
            scores[r * n_cand + c] = s;
        }
    }
}

/* Candidates in blocks of B: the block's item vectors are transposed into qt (dim, B) once, then every row runs
 * down k with B sums side by side (one vector lane per candidate), so nothing is reduced across lanes. The
 * vectors are GCC/clang vector extensions, 8 lanes where AVX is enabled (NATIVE=1), else the 4 of SSE2. */
#if defined(__GNUC__)
#if defined(__AVX__)
#define MF_LANES 8
#else
#define MF_LANES 4
#endif
typedef float mf_vec __attribute__((vector_size(MF_LANES * sizeof(float))));
#if defined(__clang__)
#define MF_UNROLL _Pragma("unroll")
#else
#define MF_UNROLL _Pragma("GCC unroll 16")
#endif
#endif

void cr_mf_dot(const float *const *u, int64_t n_rows, const float *Q, const int32_t *cand, int64_t n_cand, int64_t dim,
               float *scores, float *scratch) {
    enum { B = CR_MF_DOT_BLOCK };
    float *qt = scratch;    /* (dim, B) */
    for (int64_t c0 = 0; c0 < n_cand; c0 += B) {
        int64_t nb = n_cand - c0 < B ? n_cand - c0 : B;
        for (int64_t l = 0; l < B; l++) {
            const float *q = l < nb ? Q + (int64_t)cand[c0 + l] * dim : NULL;
            for (int64_t k = 0; k < dim; k++) qt[k * B + l] = q ? q[k] : 0.0f;
        }
        for (int64_t r = 0; r < n_rows; r++) {
            const float *ur = u[r];
            if (!ur) continue;
            float acc[B];
#if defined(__GNUC__)
            enum { NV = B / MF_LANES };
            /* fully unrolled, so that the NV sums live in registers (-O2 does not unroll by itself) */
            mf_vec a[NV];
            MF_UNROLL
            for (int v = 0; v < NV; v++) a[v] = (mf_vec){0};
            for (int64_t k = 0; k < dim; k++) {
                mf_vec x = (mf_vec){0} + ur[k];     /* broadcast */
                MF_UNROLL
                for (int v = 0; v < NV; v++) {
                    mf_vec q;
                    memcpy(&q, qt + k * B + v * MF_LANES, sizeof q);
                    a[v] += x * q;
                }
            }
            memcpy(acc, a, sizeof acc);
#else
            for (int l = 0; l < B; l++) acc[l] = 0.0f;
            for (int64_t k = 0; k < dim; k++)
                for (int l = 0; l < B; l++) acc[l] += ur[k] * qt[k * B + l];
#endif
            memcpy(scores + r * n_cand + c0, acc, (size_t)nb * sizeof *acc);
        }
    }
}

void cr_mf_copy_rows(const float *const *u, int64_t n_rows, int64_t dim, float *vecs, uint8_t *can) {
    for (int64_t r = 0; r < n_rows; r++) {
        can[r] = u[r] != NULL;
        if (u[r]) memcpy(vecs + r * dim, u[r], (size_t)dim * sizeof *vecs);
        else memset(vecs + r * dim, 0, (size_t)dim * sizeof *vecs);
    }
}

/* Per call, so that concurrent callers share nothing: u (nr) row r's vector, pointing into the "user" tensor or
 * into folded (nr, dim) for folded-in rows, NULL when none. */
typedef struct {
    const float **u;
    float *folded;
} mf_rows;

static void mf_rows_free(mf_rows *w) {
    cr_free(w->u);
    cr_free(w->folded);
}

static cr_status mf_rows_fill(const cr_mf_model *m, const cr_score_request *q, mf_rows *w) {
    const int64_t dim = m->dim, nr = q->n_rows;
    const float *P = cr_slab_at(&m->params, 0);     /* (n_users, dim) */
    w->u = cr_malloc(((size_t)nr + 1) * sizeof *w->u);
    w->folded = m->fold_in ? cr_malloc(((size_t)nr * (size_t)dim + 1) * sizeof *w->folded) : NULL;
    if (!w->u || (m->fold_in && !w->folded)) {
        mf_rows_free(w);
        return cr_fail(CR_ERR_NOMEM, "out of memory scoring with %s (%lld rows)", m->base.ops->name, (long long)nr);
    }
    for (int64_t r = 0; r < nr; r++) {
        int32_t user = q->users ? q->users[r] : -1;
        w->u[r] = NULL;
        if (user >= 0 && m->user_known[user]) {
            w->u[r] = P + (int64_t)user * dim;
        } else if (m->fold_in) {
            float *x = w->folded + r * dim;
            int64_t n = q->hist_ptr[r + 1] - q->hist_ptr[r];
            int rc = cr_mf_fold_in(m, n ? q->hist_items + q->hist_ptr[r] : NULL, n, x);
            if (rc < 0) {   /* its scratch; the message is set */
                mf_rows_free(w);
                return CR_ERR_NOMEM;
            }
            if (rc > 0) w->u[r] = x;
        }
    }
    return CR_OK;
}

static cr_status mf_score(const cr_model *mm, const cr_score_request *q, float *scores, uint8_t *can) {
    const cr_mf_model *m = (const cr_mf_model *)mm;
    int64_t dim = m->dim, nr = q->n_rows, nc = q->n_cand;
    mf_rows w;
    cr_status st = mf_rows_fill(m, q, &w);
    if (st) return st;
    float *scratch = cr_malloc((size_t)CR_MF_DOT_SCRATCH(dim) * sizeof *scratch);
    if (!scratch) {
        mf_rows_free(&w);
        return cr_fail(CR_ERR_NOMEM, "out of memory scoring with %s (%lld rows)", m->base.ops->name, (long long)nr);
    }
    for (int64_t r = 0; r < nr; r++) {
        can[r] = w.u[r] != NULL;
        if (!w.u[r] && nc) memset(scores + r * nc, 0, (size_t)nc * sizeof *scores);
    }
    cr_mf_dot(w.u, nr, cr_slab_at(&m->params, 1), q->cand, nc, dim, scores, scratch);
    cr_free(scratch);
    mf_rows_free(&w);
    return CR_OK;
}

static cr_status mf_user_vectors(const cr_model *mm, const cr_score_request *q, float *vecs, uint8_t *can) {
    const cr_mf_model *m = (const cr_mf_model *)mm;
    mf_rows w;
    cr_status st = mf_rows_fill(m, q, &w);
    if (st) return st;
    cr_mf_copy_rows(w.u, q->n_rows, m->dim, vecs, can);
    mf_rows_free(&w);
    return CR_OK;
}

static const float *mf_item_vectors(const cr_model *mm, int64_t *dim) {
    const cr_mf_model *m = (const cr_mf_model *)mm;
    *dim = m->dim;
    return cr_slab_at(&m->params, 1);
}

/* ---- save, free ---- */

static cr_status mf_save(const cr_model *mm, cr_filew *w) {
    const cr_mf_model *m = (const cr_mf_model *)mm;
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "mf.dim", m->dim)) || (st = cr_filew_meta_i64(w, "mf.domain", m->domain)) ||
        (st = cr_filew_meta_i64(w, "mf.fold_in", m->fold_in)) || (st = cr_filew_meta_f64(w, "mf.als_alpha", m->als_alpha)) ||
        (st = cr_filew_meta_f64(w, "mf.reg", m->reg)) ||
        (st = cr_filew_array(w, "mf.user", CR_DT_F32, cr_slab_at(&m->params, 0), m->base.n_users * m->dim)) ||
        (st = cr_filew_array(w, "mf.item", CR_DT_F32, cr_slab_at(&m->params, 1), m->base.n_items * m->dim)) ||
        (st = cr_filew_array(w, "mf.user_known", CR_DT_U8, m->user_known, m->base.n_users)))
        return st;
    return CR_OK;
}

static void mf_free(cr_model *mm) {
    cr_mf_model *m = (cr_mf_model *)mm;
    cr_slab_free(&m->params);
    cr_free(m->user_known);
    cr_free(m->yty);
    cr_free(m);
}

static const cr_model_ops bpr_ops = {.name = "bpr", .score = mf_score, .save = mf_save, .free = mf_free,
                                     .item_vectors = mf_item_vectors, .user_vectors = mf_user_vectors};
static const cr_model_ops als_ops = {.name = "als", .score = mf_score, .save = mf_save, .free = mf_free,
                                     .item_vectors = mf_item_vectors, .user_vectors = mf_user_vectors};
static const cr_model_ops cmf_ops = {.name = "cmf", .score = mf_score, .save = mf_save, .free = mf_free,
                                     .item_vectors = mf_item_vectors, .user_vectors = mf_user_vectors};

/* ---- construction ---- */

cr_status cr_mf_new(cr_mf_model **out, const char *type, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim) {
    *out = NULL;
    const cr_model_ops *ops = !strcmp(type, "bpr")   ? &bpr_ops
                              : !strcmp(type, "als") ? &als_ops
                              : !strcmp(type, "cmf") ? &cmf_ops
                                                     : NULL;
    if (!ops) return cr_fail(CR_ERR_ARG, "'%s' is not a matrix-factorisation model (bpr, als, cmf)", type);
    if (dim < 1 || dim > MF_MAX_DIM || n_users < 0 || n_items < 0)
        return cr_fail(CR_ERR_ARG, "bad factorisation shape (users %lld, items %lld, dim %lld)", (long long)n_users,
                       (long long)n_items, (long long)dim);
    cr_mf_model *m = cr_calloc(1, sizeof *m);
    uint8_t *known = cr_calloc((size_t)n_users + 1, 1);
    if (!m || !known) {
        cr_free(m);
        cr_free(known);
        return cr_fail(CR_ERR_NOMEM, "out of memory for a %s model (%lld users)", type, (long long)n_users);
    }
    cr_tensor t[2] = {{"user", n_users, dim, 0}, {"item", n_items, dim, 0}};
    cr_status st = cr_slab_init(&m->params, t, 2);
    if (st) {
        cr_free(m);
        cr_free(known);
        return st;
    }
    m->base.ops = ops;
    m->base.n_users = n_users;
    m->base.n_items = n_items;
    m->base.n_domains = n_domains;
    m->dim = dim;
    m->domain = -1;
    m->user_known = known;
    m->fold_in = ops == &als_ops;
    *out = m;
    return CR_OK;
}

/* ---- load ---- */

/* Index of the first value that is NaN or infinite, or -1. */
static int64_t first_not_finite(const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(x[k])) return k;
    return -1;
}

static cr_status mf_load(cr_model **out, cr_file *f, const char *path, const cr_model *base, const char *type) {
    int64_t dim, domain, fold_in;
    double alpha, reg;
    const void *a[3];
    cr_mf_model *m = NULL;
    cr_status st;
    if ((st = cr_file_get_i64(f, "mf.dim", &dim)) || (st = cr_file_get_i64(f, "mf.domain", &domain)) ||
        (st = cr_file_get_i64(f, "mf.fold_in", &fold_in)) || (st = cr_file_get_f64(f, "mf.als_alpha", &alpha)) ||
        (st = cr_file_get_f64(f, "mf.reg", &reg)))
        goto fail;
    if (dim < 1 || dim > MF_MAX_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: mf.dim = %lld is outside 1..%d", path, (long long)dim, MF_MAX_DIM);
        goto fail;
    }
    if (domain < -1 || domain >= base->n_domains) {
        st = cr_fail(CR_ERR_FORMAT, "%s: mf.domain = %lld is outside -1..%lld", path, (long long)domain,
                     (long long)base->n_domains - 1);
        goto fail;
    }
    if (fold_in != 0 && fold_in != 1) {
        st = cr_fail(CR_ERR_FORMAT, "%s: mf.fold_in = %lld (expected 0 or 1)", path, (long long)fold_in);
        goto fail;
    }
    if (!isfinite(alpha) || alpha < 0 || !isfinite(reg) || reg < 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: mf.als_alpha = %g and mf.reg = %g must be finite and >= 0", path, alpha, reg);
        goto fail;
    }
    /* counts are < INT32_MAX (checked by model.c) and dim <= 4096: the products cannot overflow */
    if ((st = cr_file_get_array(f, "mf.user", CR_DT_F32, base->n_users * dim, &a[0], NULL)) ||
        (st = cr_file_get_array(f, "mf.item", CR_DT_F32, base->n_items * dim, &a[1], NULL)) ||
        (st = cr_file_get_array(f, "mf.user_known", CR_DT_U8, base->n_users, &a[2], NULL)))
        goto fail;
    const char *names[2] = {"mf.user", "mf.item"};
    for (int t = 0; t < 2; t++) {
        int64_t n = (t ? base->n_items : base->n_users) * dim, k = first_not_finite(a[t], n);
        if (k >= 0) {
            st = cr_fail(CR_ERR_FORMAT, "%s: %s[%lld] = %g is not a finite number", path, names[t], (long long)k,
                         (double)((const float *)a[t])[k]);
            goto fail;
        }
    }
    const uint8_t *known = a[2];
    for (int64_t u = 0; u < base->n_users; u++)
        if (known[u] > 1) {
            st = cr_fail(CR_ERR_FORMAT, "%s: mf.user_known[%lld] = %d (expected 0 or 1)", path, (long long)u, known[u]);
            goto fail;
        }
    if ((st = cr_mf_new(&m, type, base->n_users, base->n_items, base->n_domains, dim))) goto fail;
    m->base.dataset_crc = base->dataset_crc;
    m->domain = (int32_t)domain;
    m->fold_in = (int)fold_in;
    m->als_alpha = alpha;
    m->reg = reg;
    memcpy(cr_slab_at(&m->params, 0), a[0], (size_t)(base->n_users * dim) * sizeof(float));
    memcpy(cr_slab_at(&m->params, 1), a[1], (size_t)(base->n_items * dim) * sizeof(float));
    memcpy(m->user_known, known, (size_t)base->n_users);
    cr_file_close(f);
    f = NULL;
    if (m->fold_in && (st = cr_mf_prepare_fold_in(m))) goto fail;
    *out = &m->base;
    return CR_OK;
fail:
    if (m) mf_free(&m->base);
    cr_file_close(f);
    return st;
}

static cr_status bpr_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    return mf_load(out, f, path, base, "bpr");
}

static cr_status als_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    return mf_load(out, f, path, base, "als");
}

static cr_status cmf_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    return mf_load(out, f, path, base, "cmf");
}

/* Fitted by the training engine (src/train/fit_bpr.c, fit_als.c): no train function here. */
const cr_model_type cr_bpr_type = {"bpr", NULL, bpr_load};
const cr_model_type cr_als_type = {"als", NULL, als_load};
const cr_model_type cr_cmf_type = {"cmf", NULL, cmf_load};    /* fit_cmf.c; fold_in 0, like bpr */

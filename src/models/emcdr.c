/* emcdr.c — the EMCDR model (embedding and mapping, Man et al. 2017): scoring, saving, loading. Fitting is in
 * src/train/fit_emcdr.c; the struct is cr_emcdr_model (emcdr_impl.h).
 *
 * Scoring: a row's vector is its user's target factors when the user had target training events (warm in
 * T); else the mapping f applied to its source factors when it had source training events (cold in T, warm in
 * the source: the case EMCDR exists for); else none, can = 0. Rows given by history only (user -1) have
 * neither: EMCDR learns per-user source vectors, it does not fold a history in, so it cannot represent them.
 * Scores are <vector, target item factors> from cr_mf_dot (model_impl.h), so a pair's score does not depend on
 * the rest of the request. The mapping runs one row at a time (B = 1) on per-call scratch: thread-safe.
 *
 * The model includes train/nn.h for the MLP forward pass it needs at scoring time; nn.h depends on core only.
 *
 * Invariants (checked on load): dim in 1..4096; hidden in 1..8192; domain in 0..n_domains-1; every factor
 * and weight finite; tgt_known[u], src_known[u] in {0, 1}.
 *
 * .crm keys: emcdr.dim, emcdr.hidden, emcdr.domain; arrays emcdr.user, emcdr.item, emcdr.src_user f32
 * ((n_users | n_items | n_users) * dim), emcdr.map.w0 f32 (hidden * dim), emcdr.map.b0 (hidden), emcdr.map.w1
 * (dim * hidden), emcdr.map.b1 (dim), emcdr.user_known u8 (n_users), emcdr.src_known u8 (n_users). A loaded
 * model copies everything into its own slabs and closes the file. */
#include "emcdr_impl.h"

#include <math.h>
#include <string.h>

#define EMCDR_PREFIX "emcdr.map."
static const char *const factor_names[3] = {"emcdr.user", "emcdr.item", "emcdr.src_user"};

/* ---- scoring ---- */

/* Row r's vector into u[r]: the user's target factors, or f(source factors) written into mapped (nr, dim), or
 * NULL. scratch: f's pre-activations and activations for one row (2 cr_mlp_act_size(mlp, 1) floats). */
static void emcdr_rows(const cr_emcdr_model *m, const cr_score_request *q, const float **u, float *mapped, float *scratch) {
    const int64_t dim = m->dim, na = cr_mlp_act_size(&m->mlp, 1);
    const float *P = cr_slab_at(&m->factors, 0);    /* (n_users, dim) */
    const float *S = cr_slab_at(&m->factors, 2);    /* (n_users, dim) */
    float *pre = scratch, *acts = pre + na;
    for (int64_t r = 0; r < q->n_rows; r++) {
        int32_t user = q->users ? q->users[r] : -1;
        u[r] = NULL;
        if (user >= 0 && m->tgt_known[user]) {
            u[r] = P + (int64_t)user * dim;
        } else if (user >= 0 && m->src_known[user]) {
            cr_mlp_forward(&m->mlp, &m->map, S + (int64_t)user * dim, 1, pre, acts);
            /* the network's output is the last block of acts: (1, dim) */
            memcpy(mapped + r * dim, acts + na - dim, (size_t)dim * sizeof *mapped);
            u[r] = mapped + r * dim;
        }
    }
}

/* Scores (vecs == NULL) or user vectors (scores == NULL) of a request. */
static cr_status emcdr_run(const cr_emcdr_model *m, const cr_score_request *q, float *scores, float *vecs, uint8_t *can) {
    int64_t dim = m->dim, nr = q->n_rows, nc = q->n_cand, na = cr_mlp_act_size(&m->mlp, 1);
    /* per call: u[r] (row r's vector or NULL), mapped (nr, dim) for rows that go through f, the kernel's
     * scratch, and f's pre-activations and activations for one row */
    const float **u = cr_malloc(((size_t)nr + 1) * sizeof *u);
    float *mapped = cr_malloc(((size_t)nr * (size_t)dim + 1) * sizeof *mapped);
    float *scratch = cr_malloc(((size_t)CR_MF_DOT_SCRATCH(dim) + 2 * (size_t)na) * sizeof *scratch);
    if (!u || !mapped || !scratch) {
        cr_free(u);
        cr_free(mapped);
        cr_free(scratch);
        return cr_fail(CR_ERR_NOMEM, "out of memory scoring with emcdr (%lld rows)", (long long)nr);
    }
    emcdr_rows(m, q, u, mapped, scratch + CR_MF_DOT_SCRATCH(dim));
    if (vecs) {
        cr_mf_copy_rows(u, nr, dim, vecs, can);
    } else {
        for (int64_t r = 0; r < nr; r++) {
            can[r] = u[r] != NULL;
            if (!u[r] && nc) memset(scores + r * nc, 0, (size_t)nc * sizeof *scores);
        }
        cr_mf_dot(u, nr, cr_slab_at(&m->factors, 1), q->cand, nc, dim, scores, scratch);
    }
    cr_free(u);
    cr_free(mapped);
    cr_free(scratch);
    return CR_OK;
}

static cr_status emcdr_score(const cr_model *mm, const cr_score_request *q, float *scores, uint8_t *can) {
    return emcdr_run((const cr_emcdr_model *)mm, q, scores, NULL, can);
}

static cr_status emcdr_user_vectors(const cr_model *mm, const cr_score_request *q, float *vecs, uint8_t *can) {
    return emcdr_run((const cr_emcdr_model *)mm, q, NULL, vecs, can);
}

static const float *emcdr_item_vectors(const cr_model *mm, int64_t *dim) {
    const cr_emcdr_model *m = (const cr_emcdr_model *)mm;
    *dim = m->dim;
    return cr_slab_at(&m->factors, 1);
}

/* ---- array helpers, shared with ptupcdr (emcdr_impl.h) ---- */

cr_status cr_slab_save_arrays(cr_filew *w, const cr_slab *s, const char *const *names) {
    cr_status st;
    for (int t = 0; t < s->n; t++) {
        const cr_tensor *x = &s->t[t];
        if ((st = cr_filew_array(w, names ? names[t] : x->name, CR_DT_F32, cr_slab_at(s, t), x->rows * x->cols))) return st;
    }
    return CR_OK;
}

static int64_t first_not_finite(const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(x[k])) return k;
    return -1;
}

cr_status cr_slab_load_arrays(cr_file *f, const char *path, cr_slab *s, const char *const *names) {
    cr_status st;
    for (int t = 0; t < s->n; t++) {
        const char *name = names ? names[t] : s->t[t].name;
        int64_t n = s->t[t].rows * s->t[t].cols;
        const void *a;
        if ((st = cr_file_get_array(f, name, CR_DT_F32, n, &a, NULL))) return st;
        int64_t k = first_not_finite(a, n);
        if (k >= 0)
            return cr_fail(CR_ERR_FORMAT, "%s: %s[%lld] = %g is not a finite number", path, name, (long long)k,
                           (double)((const float *)a)[k]);
        memcpy(cr_slab_at(s, t), a, (size_t)n * sizeof(float));
    }
    return CR_OK;
}

cr_status cr_load_known(cr_file *f, const char *path, const char *name, uint8_t *dst, int64_t n) {
    const void *a;
    cr_status st = cr_file_get_array(f, name, CR_DT_U8, n, &a, NULL);
    if (st) return st;
    const uint8_t *known = a;
    for (int64_t u = 0; u < n; u++)
        if (known[u] > 1) return cr_fail(CR_ERR_FORMAT, "%s: %s[%lld] = %d (expected 0 or 1)", path, name, (long long)u, known[u]);
    memcpy(dst, known, (size_t)n);
    return CR_OK;
}

/* ---- save, free ---- */

static cr_status emcdr_save(const cr_model *mm, cr_filew *w) {
    const cr_emcdr_model *m = (const cr_emcdr_model *)mm;
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "emcdr.dim", m->dim)) || (st = cr_filew_meta_i64(w, "emcdr.hidden", m->mlp.width[1])) ||
        (st = cr_filew_meta_i64(w, "emcdr.domain", m->domain)))
        return st;
    /* the map slab's tensor names already carry the "emcdr." prefix and live as long as the model */
    if ((st = cr_slab_save_arrays(w, &m->factors, factor_names)) || (st = cr_slab_save_arrays(w, &m->map, NULL))) return st;
    if ((st = cr_filew_array(w, "emcdr.user_known", CR_DT_U8, m->tgt_known, m->base.n_users)) ||
        (st = cr_filew_array(w, "emcdr.src_known", CR_DT_U8, m->src_known, m->base.n_users)))
        return st;
    return CR_OK;
}

static void emcdr_free(cr_model *mm) {
    cr_emcdr_model *m = (cr_emcdr_model *)mm;
    cr_slab_free(&m->factors);
    cr_slab_free(&m->map);
    cr_free(m->tgt_known);     /* src_known is the second half of the same block */
    cr_free(m);
}

static const cr_model_ops emcdr_ops = {.name = "emcdr", .score = emcdr_score, .save = emcdr_save, .free = emcdr_free,
                                       .item_vectors = emcdr_item_vectors, .user_vectors = emcdr_user_vectors};

/* ---- construction ---- */

cr_status cr_emcdr_new(cr_emcdr_model **out, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim,
                       int64_t hidden, int32_t domain) {
    *out = NULL;
    if (dim < 1 || dim > CR_EMCDR_MAX_DIM || hidden < 1 || hidden > 2 * CR_EMCDR_MAX_DIM || n_users < 0 || n_items < 0 ||
        domain < 0 || domain >= n_domains)
        return cr_fail(CR_ERR_ARG, "bad emcdr shape (users %lld, items %lld, dim %lld, hidden %lld, domain %d of %lld)",
                       (long long)n_users, (long long)n_items, (long long)dim, (long long)hidden, domain,
                       (long long)n_domains);
    cr_emcdr_model *m = cr_calloc(1, sizeof *m);
    uint8_t *known = cr_calloc(2 * (size_t)n_users + 1, 1);
    if (!m || !known) {
        cr_free(m);
        cr_free(known);
        return cr_fail(CR_ERR_NOMEM, "out of memory for an emcdr model (%lld users)", (long long)n_users);
    }
    m->base.ops = &emcdr_ops;
    m->base.n_users = n_users;
    m->base.n_items = n_items;
    m->base.n_domains = n_domains;
    m->dim = dim;
    m->domain = domain;
    m->tgt_known = known;
    m->src_known = known + n_users;
    m->mlp.n_layers = 2;
    m->mlp.width[0] = dim, m->mlp.width[1] = hidden, m->mlp.width[2] = dim;
    m->mlp.act = CR_ACT_TANH;
    cr_tensor ft[3] = {{"user", n_users, dim, 0}, {"item", n_items, dim, 0}, {"src_user", n_users, dim, 0}};
    cr_tensor mt[2 * CR_MLP_MAX_LAYERS];
    int nmt = cr_mlp_tensors(&m->mlp, EMCDR_PREFIX, mt, 0);
    cr_status st = cr_slab_init(&m->factors, ft, 3);
    if (!st) st = cr_slab_init(&m->map, mt, nmt);
    if (!st) st = cr_mlp_bind(&m->mlp, &m->map, EMCDR_PREFIX);
    if (st) {
        emcdr_free(&m->base);
        return st;
    }
    *out = m;
    return CR_OK;
}

/* ---- load ---- */

static cr_status emcdr_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    int64_t dim, hidden, domain;
    cr_emcdr_model *m = NULL;
    cr_status st;
    if ((st = cr_file_get_i64(f, "emcdr.dim", &dim)) || (st = cr_file_get_i64(f, "emcdr.hidden", &hidden)) ||
        (st = cr_file_get_i64(f, "emcdr.domain", &domain)))
        goto fail;
    if (dim < 1 || dim > CR_EMCDR_MAX_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: emcdr.dim = %lld is outside 1..%d", path, (long long)dim, CR_EMCDR_MAX_DIM);
        goto fail;
    }
    if (hidden < 1 || hidden > 2 * CR_EMCDR_MAX_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: emcdr.hidden = %lld is outside 1..%d", path, (long long)hidden, 2 * CR_EMCDR_MAX_DIM);
        goto fail;
    }
    if (domain < 0 || domain >= base->n_domains) {
        st = cr_fail(CR_ERR_FORMAT, "%s: emcdr.domain = %lld is outside 0..%lld", path, (long long)domain,
                     (long long)base->n_domains - 1);
        goto fail;
    }
    /* The file must hold the per-user and per-item arrays these counts ask for before memory is laid out for
     * them: a small damaged or crafted file must not make the loader allocate gigabytes. Then an empty model of
     * these shapes gives the expected count of every array. Counts are < INT32_MAX (model.c) and dim, hidden
     * <= 8192, so no product overflows; with the shapes checked, only CR_ERR_NOMEM can stop cr_emcdr_new. */
    const void *a;
    if ((st = cr_file_get_array(f, "emcdr.user", CR_DT_F32, base->n_users * dim, &a, NULL)) ||
        (st = cr_file_get_array(f, "emcdr.item", CR_DT_F32, base->n_items * dim, &a, NULL)))
        goto fail;
    if ((st = cr_emcdr_new(&m, base->n_users, base->n_items, base->n_domains, dim, hidden, (int32_t)domain))) goto fail;
    if ((st = cr_slab_load_arrays(f, path, &m->factors, factor_names)) || (st = cr_slab_load_arrays(f, path, &m->map, NULL)) ||
        (st = cr_load_known(f, path, "emcdr.user_known", m->tgt_known, base->n_users)) ||
        (st = cr_load_known(f, path, "emcdr.src_known", m->src_known, base->n_users)))
        goto fail;
    m->base.dataset_crc = base->dataset_crc;
    cr_file_close(f);
    *out = &m->base;
    return CR_OK;
fail:
    if (m) emcdr_free(&m->base);
    cr_file_close(f);
    return st;
}

/* Fitted by the training engine (src/train/fit_emcdr.c): no train function here. */
const cr_model_type cr_emcdr_type = {"emcdr", NULL, emcdr_load};

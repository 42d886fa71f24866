/* ptupcdr.c — the PTUPCDR model (personalised transfer of user preferences, Zhu et al. 2022): the bridge's
 * forward pass, scoring, saving, loading. Fitting is in src/train/fit_ptupcdr.c; the struct and the formulas are
 * in ptupcdr_impl.h.
 *
 * Scoring: a row's vector is its user's target factors when the user had target training events (warm in T);
 * else its "mapped" row, W_u s_u computed by the fitting code from the user's source history, when it had
 * source training events (cold in T, warm in the source); else none, can = 0. Rows given by history only (user
 * -1) have neither, as in emcdr. Scores are <vector, target item factors> from cr_mf_dot, so a pair's score
 * does not depend on the rest of the request. Thread-safe (per-call scratch).
 *
 * Invariants (checked on load): dim in 1..CR_PTUPCDR_MAX_DIM; domain in 0..n_domains-1; every factor and
 * weight finite; tgt_known[u], src_known[u] in {0, 1}.
 *
 * .crm keys: ptupcdr.dim, ptupcdr.domain; arrays ptupcdr.user, ptupcdr.item, ptupcdr.mapped f32
 * ((n_users | n_items | n_users) * dim); the nets' tensors under their slab names (ptupcdr_impl.h) f32;
 * ptupcdr.user_known, ptupcdr.src_known u8 (n_users). The array helpers are emcdr's (emcdr_impl.h). A loaded
 * model copies everything into its own slabs and closes the file. */
#include "ptupcdr_impl.h"

#include "emcdr_impl.h"

#include <math.h>
#include <string.h>

#define ENC_PREFIX "ptupcdr.enc."
#define META_PREFIX "ptupcdr.meta."
static const char *const factor_names[3] = {"ptupcdr.user", "ptupcdr.item", "ptupcdr.mapped"};

/* ---- the bridge ---- */

cr_status cr_ptupcdr_ws_init(cr_ptupcdr_ws *ws, const cr_ptupcdr_model *m, int64_t cap) {
    memset(ws, 0, sizeof *ws);
    const int64_t dim = m->dim, ne = cr_mlp_act_size(&m->enc, cap), nm = cr_mlp_act_size(&m->meta, 1);
    const int64_t ns = 2 * (cap * dim > dim * dim ? cap * dim : dim * dim);
    const int64_t total = 2 * ne + cap + dim + 2 * nm + dim + dim * dim + dim + cap + ns;
    ws->buf = cr_malloc((size_t)total * sizeof(float));
    if (!ws->buf) return cr_fail(CR_ERR_NOMEM, "out of memory for ptupcdr's bridge scratch (%lld floats)", (long long)total);
    ws->cap = cap, ws->dim = dim;
    float *p = ws->buf;
    ws->enc_pre = p, p += ne;
    ws->enc_acts = p, p += ne;
    ws->a = p, p += cap;
    ws->c = p, p += dim;
    ws->meta_pre = p, p += nm;
    ws->meta_acts = p, p += nm;
    ws->t = p, p += dim;
    ws->dw = p, p += dim * dim;
    ws->dc = p, p += dim;
    ws->de = p, p += cap;
    ws->scratch = p;
    return CR_OK;
}

void cr_ptupcdr_ws_free(cr_ptupcdr_ws *ws) {
    cr_free(ws->buf);
    memset(ws, 0, sizeof *ws);
}

void cr_ptupcdr_forward(const cr_ptupcdr_model *m, cr_ptupcdr_ws *ws, const float *V, int64_t n, const float *s) {
    const int64_t dim = m->dim;
    CR_ASSERT(n >= 1 && n <= ws->cap && dim == ws->dim);
    /* attention: e (n) = h(V), the last n floats of h's activations for n rows; a = softmax(e) */
    cr_mlp_forward(&m->enc, &m->nets, V, n, ws->enc_pre, ws->enc_acts);
    ws->e = ws->enc_acts + cr_mlp_act_size(&m->enc, n) - n;
    double mx = ws->e[0], z = 0;
    for (int64_t j = 1; j < n; j++) mx = ws->e[j] > mx ? ws->e[j] : mx;
    for (int64_t j = 0; j < n; j++) z += exp((double)ws->e[j] - mx);
    for (int64_t j = 0; j < n; j++) ws->a[j] = (float)(exp((double)ws->e[j] - mx) / z);
    /* c (dim) = sum_j a_j v_j */
    memset(ws->c, 0, (size_t)dim * sizeof *ws->c);
    for (int64_t j = 0; j < n; j++)
        for (int64_t k = 0; k < dim; k++) ws->c[k] += ws->a[j] * V[j * dim + k];
    /* W_u (dim, dim) = g(c), then t = W_u s */
    cr_mlp_forward(&m->meta, &m->nets, ws->c, 1, ws->meta_pre, ws->meta_acts);
    ws->w = ws->meta_acts + cr_mlp_act_size(&m->meta, 1) - dim * dim;
    for (int64_t k = 0; k < dim; k++) {
        float acc = 0;
        for (int64_t l = 0; l < dim; l++) acc += ws->w[k * dim + l] * s[l];
        ws->t[k] = acc;
    }
}

/* ---- scoring ---- */

/* Row r's vector: the user's target factors, else its mapped row, else NULL. */
static const float *ptupcdr_row(const cr_ptupcdr_model *m, int32_t user) {
    const int64_t dim = m->dim;
    if (user < 0) return NULL;
    if (m->tgt_known[user]) return cr_slab_at(&m->factors, 0) + (int64_t)user * dim;
    return m->src_known[user] ? cr_slab_at(&m->factors, 2) + (int64_t)user * dim : NULL;
}

static cr_status ptupcdr_score(const cr_model *mm, const cr_score_request *q, float *scores, uint8_t *can) {
    const cr_ptupcdr_model *m = (const cr_ptupcdr_model *)mm;
    const int64_t dim = m->dim, nr = q->n_rows, nc = q->n_cand;
    const float **u = cr_malloc(((size_t)nr + 1) * sizeof *u);       /* (nr) row r's vector or NULL */
    float *scratch = cr_malloc((size_t)CR_MF_DOT_SCRATCH(dim) * sizeof *scratch);
    if (!u || !scratch) {
        cr_free(u);
        cr_free(scratch);
        return cr_fail(CR_ERR_NOMEM, "out of memory scoring with ptupcdr (%lld rows)", (long long)nr);
    }
    for (int64_t r = 0; r < nr; r++) {
        u[r] = ptupcdr_row(m, q->users ? q->users[r] : -1);
        can[r] = u[r] != NULL;
        if (!u[r] && nc) memset(scores + r * nc, 0, (size_t)nc * sizeof *scores);
    }
    cr_mf_dot(u, nr, cr_slab_at(&m->factors, 1), q->cand, nc, dim, scores, scratch);
    cr_free(u);
    cr_free(scratch);
    return CR_OK;
}

static cr_status ptupcdr_user_vectors(const cr_model *mm, const cr_score_request *q, float *vecs, uint8_t *can) {
    const cr_ptupcdr_model *m = (const cr_ptupcdr_model *)mm;
    for (int64_t r = 0; r < q->n_rows; r++) {
        const float *u = ptupcdr_row(m, q->users ? q->users[r] : -1);
        cr_mf_copy_rows(&u, 1, m->dim, vecs + r * m->dim, can + r);
    }
    return CR_OK;
}

static const float *ptupcdr_item_vectors(const cr_model *mm, int64_t *dim) {
    const cr_ptupcdr_model *m = (const cr_ptupcdr_model *)mm;
    *dim = m->dim;
    return cr_slab_at(&m->factors, 1);
}

/* ---- save, free ---- */

static cr_status ptupcdr_save(const cr_model *mm, cr_filew *w) {
    const cr_ptupcdr_model *m = (const cr_ptupcdr_model *)mm;
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "ptupcdr.dim", m->dim)) || (st = cr_filew_meta_i64(w, "ptupcdr.domain", m->domain)) ||
        (st = cr_slab_save_arrays(w, &m->factors, factor_names)) || (st = cr_slab_save_arrays(w, &m->nets, NULL)) ||
        (st = cr_filew_array(w, "ptupcdr.user_known", CR_DT_U8, m->tgt_known, m->base.n_users)) ||
        (st = cr_filew_array(w, "ptupcdr.src_known", CR_DT_U8, m->src_known, m->base.n_users)))
        return st;
    return CR_OK;
}

static void ptupcdr_free(cr_model *mm) {
    cr_ptupcdr_model *m = (cr_ptupcdr_model *)mm;
    cr_slab_free(&m->factors);
    cr_slab_free(&m->nets);
    cr_free(m->tgt_known);     /* src_known is the second half of the same block */
    cr_free(m);
}

static const cr_model_ops ptupcdr_ops = {.name = "ptupcdr", .score = ptupcdr_score, .save = ptupcdr_save,
                                         .free = ptupcdr_free, .item_vectors = ptupcdr_item_vectors,
                                         .user_vectors = ptupcdr_user_vectors};

/* ---- construction ---- */

cr_status cr_ptupcdr_new(cr_ptupcdr_model **out, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim,
                         int32_t domain) {
    *out = NULL;
    if (dim < 1 || dim > CR_PTUPCDR_MAX_DIM || n_users < 0 || n_items < 0 || domain < 0 || domain >= n_domains)
        return cr_fail(CR_ERR_ARG, "bad ptupcdr shape (users %lld, items %lld, dim %lld of at most %d, domain %d of %lld)",
                       (long long)n_users, (long long)n_items, (long long)dim, CR_PTUPCDR_MAX_DIM, domain,
                       (long long)n_domains);
    cr_ptupcdr_model *m = cr_calloc(1, sizeof *m);
    uint8_t *known = cr_calloc(2 * (size_t)n_users + 1, 1);
    if (!m || !known) {
        cr_free(m);
        cr_free(known);
        return cr_fail(CR_ERR_NOMEM, "out of memory for a ptupcdr model (%lld users)", (long long)n_users);
    }
    m->base.ops = &ptupcdr_ops;
    m->base.n_users = n_users;
    m->base.n_items = n_items;
    m->base.n_domains = n_domains;
    m->dim = dim;
    m->domain = domain;
    m->tgt_known = known;
    m->src_known = known + n_users;
    m->enc.n_layers = m->meta.n_layers = 2;
    m->enc.act = m->meta.act = CR_ACT_TANH;
    m->enc.width[0] = dim, m->enc.width[1] = dim, m->enc.width[2] = 1;
    m->meta.width[0] = dim, m->meta.width[1] = dim, m->meta.width[2] = dim * dim;
    cr_tensor ft[3] = {{"user", n_users, dim, 0}, {"item", n_items, dim, 0}, {"mapped", n_users, dim, 0}};
    cr_tensor nt[4 * CR_MLP_MAX_LAYERS];
    int nn = cr_mlp_tensors(&m->enc, ENC_PREFIX, nt, 0);
    nn = cr_mlp_tensors(&m->meta, META_PREFIX, nt, nn);
    cr_status st = cr_slab_init(&m->factors, ft, 3);
    if (!st) st = cr_slab_init(&m->nets, nt, nn);
    if (!st) st = cr_mlp_bind(&m->enc, &m->nets, ENC_PREFIX);
    if (!st) st = cr_mlp_bind(&m->meta, &m->nets, META_PREFIX);
    if (st) {
        ptupcdr_free(&m->base);
        return st;
    }
    *out = m;
    return CR_OK;
}

/* ---- load ---- */

static cr_status ptupcdr_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    int64_t dim, domain;
    cr_ptupcdr_model *m = NULL;
    cr_status st;
    if ((st = cr_file_get_i64(f, "ptupcdr.dim", &dim)) || (st = cr_file_get_i64(f, "ptupcdr.domain", &domain))) goto fail;
    if (dim < 1 || dim > CR_PTUPCDR_MAX_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: ptupcdr.dim = %lld is outside 1..%d", path, (long long)dim, CR_PTUPCDR_MAX_DIM);
        goto fail;
    }
    if (domain < 0 || domain >= base->n_domains) {
        st = cr_fail(CR_ERR_FORMAT, "%s: ptupcdr.domain = %lld is outside 0..%lld", path, (long long)domain,
                     (long long)base->n_domains - 1);
        goto fail;
    }
    /* The file must hold the per-user and per-item arrays these counts ask for before memory is laid out for
     * them (a small damaged or crafted file must not make the loader allocate gigabytes); then an empty model of
     * these shapes gives the expected size of every array; with the shapes checked, only CR_ERR_NOMEM can stop
     * cr_ptupcdr_new. */
    const void *a;
    if ((st = cr_file_get_array(f, "ptupcdr.user", CR_DT_F32, base->n_users * dim, &a, NULL)) ||
        (st = cr_file_get_array(f, "ptupcdr.item", CR_DT_F32, base->n_items * dim, &a, NULL)))
        goto fail;
    if ((st = cr_ptupcdr_new(&m, base->n_users, base->n_items, base->n_domains, dim, (int32_t)domain))) goto fail;
    if ((st = cr_slab_load_arrays(f, path, &m->factors, factor_names)) || (st = cr_slab_load_arrays(f, path, &m->nets, NULL)) ||
        (st = cr_load_known(f, path, "ptupcdr.user_known", m->tgt_known, base->n_users)) ||
        (st = cr_load_known(f, path, "ptupcdr.src_known", m->src_known, base->n_users)))
        goto fail;
    m->base.dataset_crc = base->dataset_crc;
    cr_file_close(f);
    *out = &m->base;
    return CR_OK;
fail:
    if (m) ptupcdr_free(&m->base);
    cr_file_close(f);
    return st;
}

/* Fitted by the training engine (src/train/fit_ptupcdr.c): no train function here. */
const cr_model_type cr_ptupcdr_type = {"ptupcdr", NULL, ptupcdr_load};

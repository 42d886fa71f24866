/* tower.c — the `tower` model (tower_impl.h): its parameters, the item and user towers' forward passes,
 * scoring, and .crm save/load. Fitting is src/train/fit_tower.c.
 *
 * Scoring uses the item vectors g(i) of every item, computed once from the parameters (cr_tower_refresh_items,
 * after fitting and after loading), and runs the user tower on each row's history: the L most recent history
 * items of any domain. An empty history is represented too: the head of the target domain alone, a learned
 * "what users of this domain take" direction. */
#include "tower_impl.h"

#include "emcdr_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const pool_names[] = {"mean", "attention", "transformer"};

const char *cr_tower_pool_name(int pool) { return pool >= 0 && pool < 3 ? pool_names[pool] : "unknown"; }

int cr_tower_pool_from_name(const char *name) {
    for (int k = 0; name && k < 3; k++)
        if (!strcmp(name, pool_names[k])) return k;
    return -1;
}

static void tower_free(cr_model *mm) {
    cr_tower_model *m = (cr_tower_model *)mm;
    if (!m) return;
    cr_slab_free(&m->params);
    cr_free(m->text_ptr);
    cr_free(m->text_col);
    cr_free(m->text_val);
    cr_free(m->item_domain);
    cr_free(m->item_known);
    cr_free(m->items);
    cr_free(m->item_vec);
    cr_free(m->user_known);
    cr_free(m);
}

static const cr_model_ops tower_ops;

cr_status cr_tower_new(cr_tower_model **out, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim, int pool,
                       int64_t hist_len, int64_t n_buckets, int64_t nnz, int64_t vec_dim, int user_id) {
    *out = NULL;
    if (dim < 1 || dim > CR_TOWER_MAX_DIM) return cr_fail(CR_ERR_ARG, "tower: dim must be 1..%d (got %lld)", CR_TOWER_MAX_DIM, (long long)dim);
    if (hist_len < 1 || hist_len > CR_TOWER_MAX_HIST)
        return cr_fail(CR_ERR_ARG, "tower: history length must be 1..%d (got %lld)", CR_TOWER_MAX_HIST, (long long)hist_len);
    if (pool < 0 || pool > 2) return cr_fail(CR_ERR_ARG, "tower: unknown pooling %d", pool);
    if (n_buckets < 1 || n_buckets > CR_TEXT_MAX_BUCKETS || nnz < 0)
        return cr_fail(CR_ERR_ARG, "tower: text buckets must be 1..%d", CR_TEXT_MAX_BUCKETS);
    if (pool == CR_TOWER_POOL_TRANSFORMER && dim % 4)
        return cr_fail(CR_ERR_ARG, "tower: the transformer needs dim divisible by its 4 heads (got %lld)", (long long)dim);
    if (vec_dim < 0 || vec_dim > CR_TOWER_MAX_VEC_DIM)
        return cr_fail(CR_ERR_ARG, "tower: item vectors must have 0..%d columns (got %lld)", CR_TOWER_MAX_VEC_DIM, (long long)vec_dim);
    cr_tower_model *m = cr_calloc(1, sizeof *m);
    if (!m) return cr_fail(CR_ERR_NOMEM, "out of memory for a tower model");
    m->base = (cr_model){&tower_ops, n_users, n_items, n_domains, 0, NULL};
    m->dim = dim, m->pool = pool, m->hist_len = hist_len;
    m->item_mlp = (cr_mlp){.n_layers = 2, .width = {dim, dim, dim}, .act = CR_ACT_RELU};
    m->tfm = (cr_tfm){.n_layers = 2, .dim = dim, .n_heads = 4, .max_len = hist_len};
    cr_tensor t[CR_MAX_TENSORS];
    int n = 0;
    t[n++] = (cr_tensor){.name = "tower.id", .rows = n_items, .cols = dim};
    t[n++] = (cr_tensor){.name = "tower.text", .rows = n_buckets, .cols = dim};
    if (user_id) t[n++] = (cr_tensor){.name = "tower.user", .rows = n_users, .cols = dim};
    t[n++] = (cr_tensor){.name = "tower.dom", .rows = n_domains, .cols = dim};
    if (vec_dim) t[n++] = (cr_tensor){.name = "tower.vec.w", .rows = dim, .cols = vec_dim};
    n = cr_mlp_tensors(&m->item_mlp, "tower.item.", t, n);
    t[n++] = (cr_tensor){.name = "tower.query", .rows = n_domains, .cols = dim};
    t[n++] = (cr_tensor){.name = "tower.head.w", .rows = n_domains * dim, .cols = dim};
    t[n++] = (cr_tensor){.name = "tower.head.b", .rows = n_domains, .cols = dim};
    t[n++] = (cr_tensor){.name = "tower.disc.w", .rows = n_domains, .cols = dim};
    t[n++] = (cr_tensor){.name = "tower.disc.b", .rows = 1, .cols = n_domains};
    if (pool == CR_TOWER_POOL_TRANSFORMER) n = cr_tfm_tensors(&m->tfm, "tower.tfm.", t, n);
    cr_status st = cr_slab_init(&m->params, t, n);
    if (st) goto fail;
    m->t_id = 0, m->t_text = 1;
    m->t_user = cr_slab_find(&m->params, "tower.user");
    m->t_dom = cr_slab_find(&m->params, "tower.dom");
    m->t_vec = cr_slab_find(&m->params, "tower.vec.w");
    m->vec_dim = vec_dim;
    m->t_query = cr_slab_find(&m->params, "tower.query");
    m->t_head_w = cr_slab_find(&m->params, "tower.head.w");
    m->t_head_b = cr_slab_find(&m->params, "tower.head.b");
    m->t_disc_w = cr_slab_find(&m->params, "tower.disc.w");
    m->t_disc_b = cr_slab_find(&m->params, "tower.disc.b");
    m->dense_off = m->params.t[m->t_dom].offset;
    if ((st = cr_mlp_bind(&m->item_mlp, &m->params, "tower.item.")) ||
        (pool == CR_TOWER_POOL_TRANSFORMER && (st = cr_tfm_bind(&m->tfm, &m->params, "tower.tfm."))))
        goto fail;
    m->text_ptr = cr_calloc((size_t)n_items + 1, sizeof *m->text_ptr);
    m->text_col = cr_calloc((size_t)nnz + 1, sizeof *m->text_col);
    m->text_val = cr_calloc((size_t)nnz + 1, sizeof *m->text_val);
    m->item_domain = cr_calloc((size_t)n_items + 1, sizeof *m->item_domain);
    m->item_known = cr_calloc((size_t)n_items + 1, 1);
    m->items = cr_calloc((size_t)(n_items * dim) + 1, sizeof *m->items);
    m->item_vec = cr_calloc((size_t)(n_items * vec_dim) + 1, sizeof *m->item_vec);
    if (user_id) m->user_known = cr_calloc((size_t)n_users + 1, 1);
    if (!m->text_ptr || !m->text_col || !m->text_val || !m->item_domain || !m->item_known || !m->items || !m->item_vec ||
        (user_id && !m->user_known)) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory for a tower model (%lld items)", (long long)n_items);
        goto fail;
    }
    *out = m;
    return CR_OK;
fail:
    tower_free(&m->base);
    return st;
}

/* ---- the item tower ---- */

cr_status cr_tower_item_ws_init(cr_tower_item_ws *ws, const cr_tower_model *m, int64_t cap) {
    memset(ws, 0, sizeof *ws);
    const int64_t d = m->dim, na = cr_mlp_act_size(&m->item_mlp, cap);
    int64_t total = 2 * cap * d + 2 * na + 2 * cap * d + cap + cap * m->vec_dim + cap * d, longest = 0;
    for (int64_t i = 0; i < m->base.n_items; i++)
        if (m->text_ptr[i + 1] - m->text_ptr[i] > longest) longest = m->text_ptr[i + 1] - m->text_ptr[i];
    ws->cap_bag = cap * longest;
    ws->buf = cr_malloc((size_t)total * sizeof(float));
    ws->bag_off = cr_malloc(((size_t)cap + 1) * sizeof *ws->bag_off);
    ws->bag_idx = cr_malloc(((size_t)ws->cap_bag + 1) * sizeof *ws->bag_idx);
    ws->bag_w = cr_malloc(((size_t)ws->cap_bag + 1) * sizeof *ws->bag_w);
    ws->use_id = cr_malloc((size_t)cap + 1);
    if (!ws->buf || !ws->bag_off || !ws->bag_idx || !ws->bag_w || !ws->use_id) {
        cr_tower_item_ws_free(ws);
        return cr_fail(CR_ERR_NOMEM, "out of memory for the item tower's scratch (%lld items)", (long long)cap);
    }
    float *p = ws->buf;
    ws->x0 = p, p += cap * d;
    ws->text = p, p += cap * d;
    ws->pre = p, p += na;
    ws->acts = p, p += na;
    ws->gpre = p, p += cap * d;
    ws->g = p, p += cap * d;
    ws->norm = p, p += cap;
    ws->vec = p, p += cap * m->vec_dim;
    ws->vproj = p;
    ws->cap = cap, ws->dim = d;
    return CR_OK;
}

void cr_tower_item_ws_free(cr_tower_item_ws *ws) {
    if (!ws) return;
    cr_free(ws->buf);
    cr_free(ws->bag_off);
    cr_free(ws->bag_idx);
    cr_free(ws->bag_w);
    cr_free(ws->use_id);
    memset(ws, 0, sizeof *ws);
}

void cr_tower_item_forward(const cr_tower_model *m, cr_tower_item_ws *ws, const int32_t *items, int64_t n,
                           const uint8_t *use_id) {
    const int64_t d = m->dim;
    CR_ASSERT(n <= ws->cap);
    const float *id = cr_slab_at(&m->params, m->t_id), *dom = cr_slab_at(&m->params, m->t_dom);
    /* the text part: the items' weighted bags of bucket embeddings */
    int64_t nb = 0;
    ws->bag_off[0] = 0;
    for (int64_t s = 0; s < n; s++) {
        for (int64_t k = m->text_ptr[items[s]]; k < m->text_ptr[items[s] + 1]; k++)
            ws->bag_idx[nb] = m->text_col[k], ws->bag_w[nb++] = m->text_val[k];
        ws->bag_off[s + 1] = nb;
    }
    cr_embbag_forward(ws->text, cr_slab_at(&m->params, m->t_text), m->params.t[m->t_text].rows, d, ws->bag_off, ws->bag_idx,
                      ws->bag_w, n, CR_BAG_SUM);
    for (int64_t s = 0; s < n; s++) {
        const int32_t i = items[s];
        ws->use_id[s] = m->item_known[i] && (!use_id || use_id[s]);
        float *x = ws->x0 + s * d;
        const float *xt = ws->text + s * d, *xd = dom + (int64_t)m->item_domain[i] * d, *xi = id + (int64_t)i * d;
        for (int64_t q = 0; q < d; q++) x[q] = xt[q] + xd[q] + (ws->use_id[s] ? xi[q] : 0.0f);
    }
    if (m->vec_dim) {
        const int64_t k = m->vec_dim;
        for (int64_t s = 0; s < n; s++) memcpy(ws->vec + s * k, m->item_vec + (int64_t)items[s] * k, (size_t)k * sizeof(float));
        cr_linear_forward(ws->vproj, ws->vec, cr_slab_at(&m->params, m->t_vec), NULL, n, k, d);
        for (int64_t q = 0; q < n * d; q++) ws->x0[q] += ws->vproj[q];
    }
    cr_mlp_forward(&m->item_mlp, &m->params, ws->x0, n, ws->pre, ws->acts);
    const float *h = ws->acts + cr_mlp_act_size(&m->item_mlp, n) - n * d;
    for (int64_t k = 0; k < n * d; k++) ws->gpre[k] = ws->x0[k] + h[k];
    cr_l2norm_forward(ws->g, ws->norm, ws->gpre, n, d);
}

cr_status cr_tower_refresh_items(cr_tower_model *m) {
    const int64_t n_items = m->base.n_items, d = m->dim, chunk = 4096;
    cr_tower_item_ws ws;
    cr_status st = cr_tower_item_ws_init(&ws, m, n_items < chunk ? (n_items ? n_items : 1) : chunk);
    if (st) return st;
    int32_t idx[4096];
    for (int64_t s = 0; s < n_items; s += chunk) {
        int64_t n = n_items - s < chunk ? n_items - s : chunk;
        for (int64_t k = 0; k < n; k++) idx[k] = (int32_t)(s + k);
        cr_tower_item_forward(m, &ws, idx, n, NULL);
        memcpy(m->items + s * d, ws.g, (size_t)(n * d) * sizeof(float));
    }
    cr_tower_item_ws_free(&ws);
    return CR_OK;
}

/* ---- the user tower ---- */

cr_status cr_tower_user_ws_init(cr_tower_user_ws *ws, const cr_tower_model *m, int64_t cap) {
    memset(ws, 0, sizeof *ws);
    const int64_t d = m->dim, L = m->hist_len;
    const int tfm = m->pool == CR_TOWER_POOL_TRANSFORMER;
    int64_t nt = tfm ? cap * L * d + cr_tfm_act_size(&m->tfm, cap, L) : 0;
    int64_t total = cap * L * d + nt + cap * L + 3 * cap * d + cap;
    ws->buf = cr_malloc((size_t)total * sizeof(float));
    ws->len = cr_malloc(((size_t)cap + 1) * sizeof *ws->len);
    ws->dom = cr_malloc(((size_t)cap + 1) * sizeof *ws->dom);
    ws->user = cr_malloc(((size_t)cap + 1) * sizeof *ws->user);
    if (!ws->buf || !ws->len || !ws->dom || !ws->user) {
        cr_tower_user_ws_free(ws);
        return cr_fail(CR_ERR_NOMEM, "out of memory for the user tower's scratch (%lld rows)", (long long)cap);
    }
    float *p = ws->buf;
    ws->seq = p, p += cap * L * d;
    if (tfm) {
        ws->tfm_out = p, p += cap * L * d;
        ws->tfm_acts = p, p += cr_tfm_act_size(&m->tfm, cap, L);
    }
    ws->att = p, p += cap * L;
    ws->pooled = p, p += cap * d;
    ws->z = p, p += cap * d;
    ws->f = p, p += cap * d;
    ws->norm = p;
    ws->cap = cap, ws->dim = d, ws->L = L;
    for (int64_t b = 0; b < cap; b++) ws->user[b] = -1;
    return CR_OK;
}

void cr_tower_user_ws_free(cr_tower_user_ws *ws) {
    if (!ws) return;
    cr_free(ws->buf);
    cr_free(ws->len);
    cr_free(ws->dom);
    cr_free(ws->user);
    memset(ws, 0, sizeof *ws);
}

void cr_tower_user_forward(const cr_tower_model *m, cr_tower_user_ws *ws, int64_t B) {
    const int64_t d = m->dim, L = m->hist_len;
    CR_ASSERT(B <= ws->cap);
    switch (m->pool) {
    case CR_TOWER_POOL_MEAN:
        cr_meanpool_forward(ws->pooled, ws->seq, ws->len, B, L, d);
        break;
    case CR_TOWER_POOL_ATTENTION:
        cr_attnpool_forward(ws->pooled, ws->att, ws->seq, ws->len, cr_slab_at(&m->params, m->t_query), ws->dom, B, L, d);
        break;
    default:
        /* the transformer's output at each sequence's last item sums up the history */
        cr_tfm_forward(&m->tfm, &m->params, ws->tfm_out, ws->tfm_acts, ws->seq, ws->len, B, L);
        for (int64_t b = 0; b < B; b++) {
            if (ws->len[b] > 0) memcpy(ws->pooled + b * d, ws->tfm_out + (b * L + ws->len[b] - 1) * d, (size_t)d * sizeof(float));
            else memset(ws->pooled + b * d, 0, (size_t)d * sizeof(float));
        }
        break;
    }
    if (m->t_user >= 0) {
        const float *U = cr_slab_at(&m->params, m->t_user);
        for (int64_t b = 0; b < B; b++)
            if (ws->user[b] >= 0)
                for (int64_t q = 0; q < d; q++) ws->pooled[b * d + q] += U[(int64_t)ws->user[b] * d + q];
    }
    /* the head of each row's target domain, residual: z = h + W_T h + b_T */
    const float *W = cr_slab_at(&m->params, m->t_head_w), *bias = cr_slab_at(&m->params, m->t_head_b);
    for (int64_t b = 0; b < B; b++) {
        const float *h = ws->pooled + b * d, *Wt = W + (int64_t)ws->dom[b] * d * d, *bt = bias + (int64_t)ws->dom[b] * d;
        float *z = ws->z + b * d;
        for (int64_t o = 0; o < d; o++) {
            float s = h[o] + bt[o];
            for (int64_t k = 0; k < d; k++) s += Wt[o * d + k] * h[k];
            z[o] = s;
        }
    }
    cr_l2norm_forward(ws->f, ws->norm, ws->z, B, d);
}

/* ---- scoring ---- */

#define SCORE_ROWS 64

/* The user tower's input for request rows r0..r0+B-1 with target domain T: each row's L most recent history
 * items (oldest first) and its user when it has a trained embedding. */
static void fill_rows(const cr_tower_model *m, const cr_score_request *q, cr_tower_user_ws *ws, int64_t r0, int64_t B, int32_t T) {
    const int64_t d = m->dim, L = m->hist_len;
    for (int64_t b = 0; b < B; b++) {
        const int64_t r = r0 + b;
        int64_t lo = q->hist_ptr ? q->hist_ptr[r] : 0, hi = q->hist_ptr ? q->hist_ptr[r + 1] : 0;
        if (hi - lo > L) lo = hi - L;
        ws->len[b] = hi - lo;
        ws->dom[b] = T;
        const int32_t user = q->users ? q->users[r] : -1;
        ws->user[b] = m->user_known && user >= 0 && m->user_known[user] ? user : -1;
        for (int64_t k = lo; k < hi; k++)
            memcpy(ws->seq + (b * L + (k - lo)) * d, m->items + (int64_t)q->hist_items[k] * d, (size_t)d * sizeof(float));
    }
}

static cr_status tower_score(const cr_model *mm, const cr_score_request *q, float *scores, uint8_t *can) {
    const cr_tower_model *m = (const cr_tower_model *)mm;
    const int64_t d = m->dim, nr = q->n_rows, nc = q->n_cand;
    int32_t T = q->domain;
    if (T < 0) T = nc > 0 ? m->item_domain[q->cand[0]] : 0;
    cr_tower_user_ws ws;
    cr_status st = cr_tower_user_ws_init(&ws, m, nr < SCORE_ROWS ? (nr ? nr : 1) : SCORE_ROWS);
    float *scratch = cr_malloc((size_t)CR_MF_DOT_SCRATCH(d) * sizeof *scratch);
    const float **u = cr_malloc(SCORE_ROWS * sizeof *u);
    if (st || !scratch || !u) {
        cr_tower_user_ws_free(&ws);
        cr_free(scratch);
        cr_free(u);
        return st ? st : cr_fail(CR_ERR_NOMEM, "out of memory scoring with tower");
    }
    for (int64_t r0 = 0; r0 < nr; r0 += SCORE_ROWS) {
        const int64_t B = nr - r0 < SCORE_ROWS ? nr - r0 : SCORE_ROWS;
        fill_rows(m, q, &ws, r0, B, T);
        cr_tower_user_forward(m, &ws, B);
        for (int64_t b = 0; b < B; b++) u[b] = ws.f + b * d, can[r0 + b] = 1;
        cr_mf_dot(u, B, m->items, q->cand, nc, d, scores + r0 * nc, scratch);
    }
    cr_tower_user_ws_free(&ws);
    cr_free(scratch);
    cr_free(u);
    return CR_OK;
}

/* The user tower's f(H, T) of every row (the vector form of tower_score, model.h). */
static cr_status tower_user_vectors(const cr_model *mm, const cr_score_request *q, float *vecs, uint8_t *can) {
    const cr_tower_model *m = (const cr_tower_model *)mm;
    const int64_t d = m->dim, nr = q->n_rows;
    if (q->domain < 0) return cr_fail(CR_ERR_ARG, "tower: user vectors need a target domain (its head)");
    cr_tower_user_ws ws;
    cr_status st = cr_tower_user_ws_init(&ws, m, nr < SCORE_ROWS ? nr : SCORE_ROWS);
    if (st) return st;
    for (int64_t r0 = 0; r0 < nr; r0 += SCORE_ROWS) {
        const int64_t B = nr - r0 < SCORE_ROWS ? nr - r0 : SCORE_ROWS;
        fill_rows(m, q, &ws, r0, B, q->domain);
        cr_tower_user_forward(m, &ws, B);
        memcpy(vecs + r0 * d, ws.f, (size_t)(B * d) * sizeof(float));
        memset(can + r0, 1, (size_t)B);
    }
    cr_tower_user_ws_free(&ws);
    return CR_OK;
}

static const float *tower_item_vectors(const cr_model *mm, int64_t *dim) {
    const cr_tower_model *m = (const cr_tower_model *)mm;
    *dim = m->dim;
    return m->items;
}

/* ---- save, load ---- */

static cr_status tower_save(const cr_model *mm, cr_filew *w) {
    const cr_tower_model *m = (const cr_tower_model *)mm;
    const int64_t n_items = m->base.n_items;
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "tower.dim", m->dim)) || (st = cr_filew_meta_i64(w, "tower.hist_len", m->hist_len)) ||
        (st = cr_filew_meta_str(w, "tower.pool", cr_tower_pool_name(m->pool))) ||
        (st = cr_filew_meta_f64(w, "tower.temperature", m->temperature)) || (st = cr_text_hashing_write(w, &m->hashing)) ||
        (st = cr_filew_meta_i64(w, "tower.vec_dim", m->vec_dim)) || (st = cr_filew_meta_i64(w, "tower.user_id", m->t_user >= 0)) ||
        (st = cr_slab_save_arrays(w, &m->params, NULL)) ||
        (st = cr_filew_array(w, "tower.text_ptr", CR_DT_I64, m->text_ptr, n_items + 1)) ||
        (st = cr_filew_array(w, "tower.text_col", CR_DT_I32, m->text_col, m->text_ptr[n_items])) ||
        (st = cr_filew_array(w, "tower.text_val", CR_DT_F32, m->text_val, m->text_ptr[n_items])) ||
        (st = cr_filew_array(w, "tower.item_domain", CR_DT_I32, m->item_domain, n_items)) ||
        (st = cr_filew_array(w, "tower.item_known", CR_DT_U8, m->item_known, n_items)) ||
        (st = cr_filew_array(w, "tower.items", CR_DT_F32, m->items, n_items * m->dim)) ||
        (m->vec_dim && (st = cr_filew_array(w, "tower.item_vec", CR_DT_F32, m->item_vec, n_items * m->vec_dim))) ||
        (m->user_known && (st = cr_filew_array(w, "tower.user_known", CR_DT_U8, m->user_known, m->base.n_users))))
        return st;
    return CR_OK;
}

static cr_status tower_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    int64_t dim, hist_len, nnz, vec_dim, user_id;
    double temperature;
    const char *pool_name;
    cr_text_hashing h;
    cr_tower_model *m = NULL;
    const void *a;
    cr_status st;
    if ((st = cr_file_get_i64(f, "tower.dim", &dim)) || (st = cr_file_get_i64(f, "tower.hist_len", &hist_len)) ||
        (st = cr_file_get_str(f, "tower.pool", &pool_name)) || (st = cr_file_get_f64(f, "tower.temperature", &temperature)) ||
        (st = cr_text_hashing_read(f, &h)) || (st = cr_file_get_i64(f, "tower.vec_dim", &vec_dim)) ||
        (st = cr_file_get_i64(f, "tower.user_id", &user_id)) || (st = cr_file_get_array(f, "tower.text_col", CR_DT_I32, -1, &a, &nnz)))
        goto fail;
    int pool = cr_tower_pool_from_name(pool_name);
    if (pool < 0 || dim < 1 || dim > CR_TOWER_MAX_DIM || hist_len < 1 || hist_len > CR_TOWER_MAX_HIST || !(temperature > 0) ||
        (pool == CR_TOWER_POOL_TRANSFORMER && dim % 4)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: tower settings out of range (dim %lld, history %lld, pool '%s', temperature %g)", path,
                     (long long)dim, (long long)hist_len, pool_name, temperature);
        goto fail;
    }
    /* The file must hold the arrays the counts ask for before memory is laid out for them: a small damaged or
     * crafted file must not make the loader allocate gigabytes. */
    if (vec_dim < 0 || vec_dim > CR_TOWER_MAX_VEC_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: tower.vec_dim = %lld is outside 0..%d", path, (long long)vec_dim, CR_TOWER_MAX_VEC_DIM);
        goto fail;
    }
    if ((st = cr_file_get_array(f, "tower.id", CR_DT_F32, base->n_items * dim, &a, NULL)) ||
        (st = cr_file_get_array(f, "tower.text", CR_DT_F32, h.n_buckets * dim, &a, NULL)) ||
        (st = cr_file_get_array(f, "tower.head.w", CR_DT_F32, base->n_domains * dim * dim, &a, NULL)) ||
        (user_id && (st = cr_file_get_array(f, "tower.user", CR_DT_F32, base->n_users * dim, &a, NULL))) ||
        (vec_dim && (st = cr_file_get_array(f, "tower.item_vec", CR_DT_F32, base->n_items * vec_dim, &a, NULL))))
        goto fail;
    if ((st = cr_tower_new(&m, base->n_users, base->n_items, base->n_domains, dim, pool, hist_len, h.n_buckets, nnz, vec_dim,
                           user_id != 0))) {
        if (st == CR_ERR_ARG) st = CR_ERR_FORMAT, cr_errmsg_prefix("%s", path);
        goto fail;
    }
    m->temperature = (float)temperature;
    m->hashing = h;
    const int64_t n_items = base->n_items;
    if ((st = cr_slab_load_arrays(f, path, &m->params, NULL)) || (st = cr_load_known(f, path, "tower.item_known", m->item_known, n_items)))
        goto fail;
    if ((st = cr_file_get_array(f, "tower.text_ptr", CR_DT_I64, n_items + 1, &a, NULL))) goto fail;
    memcpy(m->text_ptr, a, (size_t)(n_items + 1) * sizeof *m->text_ptr);
    if (m->text_ptr[0] != 0 || m->text_ptr[n_items] != nnz) {
        st = cr_fail(CR_ERR_FORMAT, "%s: tower.text_ptr does not span the %lld text entries", path, (long long)nnz);
        goto fail;
    }
    for (int64_t i = 0; i < n_items; i++)
        if (m->text_ptr[i + 1] < m->text_ptr[i]) {
            st = cr_fail(CR_ERR_FORMAT, "%s: tower.text_ptr decreases at item %lld", path, (long long)i);
            goto fail;
        }
    if ((st = cr_file_get_array(f, "tower.text_col", CR_DT_I32, nnz, &a, NULL))) goto fail;
    memcpy(m->text_col, a, (size_t)nnz * sizeof *m->text_col);
    for (int64_t k = 0; k < nnz; k++)
        if (m->text_col[k] < 0 || m->text_col[k] >= h.n_buckets) {
            st = cr_fail(CR_ERR_FORMAT, "%s: tower.text_col[%lld] = %d is outside 0..%lld", path, (long long)k, m->text_col[k],
                         (long long)h.n_buckets - 1);
            goto fail;
        }
    if ((st = cr_file_get_array(f, "tower.text_val", CR_DT_F32, nnz, &a, NULL))) goto fail;
    memcpy(m->text_val, a, (size_t)nnz * sizeof *m->text_val);
    for (int64_t k = 0; k < nnz; k++)
        if (!isfinite(m->text_val[k])) {
            st = cr_fail(CR_ERR_FORMAT, "%s: tower.text_val[%lld] is not a finite number", path, (long long)k);
            goto fail;
        }
    if ((st = cr_file_get_array(f, "tower.item_domain", CR_DT_I32, n_items, &a, NULL))) goto fail;
    memcpy(m->item_domain, a, (size_t)n_items * sizeof *m->item_domain);
    for (int64_t i = 0; i < n_items; i++)
        if (m->item_domain[i] < 0 || m->item_domain[i] >= base->n_domains) {
            st = cr_fail(CR_ERR_FORMAT, "%s: tower.item_domain[%lld] = %d is outside 0..%lld", path, (long long)i,
                         m->item_domain[i], (long long)base->n_domains - 1);
            goto fail;
        }
    if (vec_dim) {
        if ((st = cr_file_get_array(f, "tower.item_vec", CR_DT_F32, n_items * vec_dim, &a, NULL))) goto fail;
        memcpy(m->item_vec, a, (size_t)(n_items * vec_dim) * sizeof *m->item_vec);
        for (int64_t k = 0; k < n_items * vec_dim; k++)
            if (!isfinite(m->item_vec[k])) {
                st = cr_fail(CR_ERR_FORMAT, "%s: tower.item_vec[%lld] is not a finite number", path, (long long)k);
                goto fail;
            }
    }
    if (user_id && (st = cr_load_known(f, path, "tower.user_known", m->user_known, base->n_users))) goto fail;
    /* the item vectors are recomputed from the parameters rather than trusted from the file */
    if ((st = cr_tower_refresh_items(m))) goto fail;
    m->base.dataset_crc = base->dataset_crc;
    cr_file_close(f);
    *out = &m->base;
    return CR_OK;
fail:
    if (m) tower_free(&m->base);
    cr_file_close(f);
    return st;
}

static const cr_model_ops tower_ops = {.name = "tower", .score = tower_score, .save = tower_save, .free = tower_free,
                                       .item_vectors = tower_item_vectors, .user_vectors = tower_user_vectors};

/* Fitted by the training engine (src/train/fit_tower.c). */
const cr_model_type cr_tower_type = {"tower", NULL, tower_load};

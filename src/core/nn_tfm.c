/* nn_tfm.c — the small causal transformer of nn_tower.h (GPT-2's block, llm.c's layout): learned positions,
 * pre-LN multi-head causal self-attention and a pre-LN GELU feed-forward network, each with a residual, over a
 * right-padded batch of short sequences (L <= 64), and a final layer norm; forward keeps every activation the
 * backward pass reads, backward is complete (all parameters and the input).
 *
 * The linear layers go through BLAS (cr_linear_*_blas) or, with m->ref, through nn.c's scalar loops. Attention
 * is plain loops per (sequence, head) pair, llm.c's attention_forward/backward with a padding bound: those
 * pairs write disjoint slices of their outputs, so threads split them and the result is bit-identical at any
 * thread count. Everything else is row-wise (nn_dense.c).
 *
 * Activation buffer (N = B L rows; per layer, in this order; then the final norm's statistics):
 *   enc (N, d)                                   input + positions, padding rows 0
 *   per layer: ln1 (N, d) ln1_mean (N) ln1_rstd (N) qkv (N, 3d) att (B, H, L, L) atty (N, d) res2 (N, d)
 *              ln2 (N, d) ln2_mean (N) ln2_rstd (N) fch (N, 4d) fchg (N, 4d) res3 (N, d)
 *   lnf_mean (N) lnf_rstd (N)
 * Backward scratch: dres (N, d), dbuf (N, d), dqkv (N, 3d), dfch (N, 4d), dfchg (N, 4d). */
#include "nn_tower.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fchg, *res3;
} layer_acts;

typedef struct {
    float *enc, *lnf_mean, *lnf_rstd;
    layer_acts layer[CR_TFM_MAX_LAYERS];
} tfm_acts;

static int64_t layer_act_size(const cr_tfm *m, int64_t B, int64_t L) {
    int64_t N = B * L, d = m->dim;
    return N * (16 * d + 4) + B * m->n_heads * L * L;
}

int64_t cr_tfm_act_size(const cr_tfm *m, int64_t B, int64_t L) {
    return B * L * m->dim + m->n_layers * layer_act_size(m, B, L) + 2 * B * L;
}

int64_t cr_tfm_scratch_size(const cr_tfm *m, int64_t B, int64_t L) { return 13 * B * L * m->dim; }

static void bind_acts(const cr_tfm *m, float *p, int64_t B, int64_t L, tfm_acts *a) {
    int64_t N = B * L, d = m->dim;
    a->enc = p, p += N * d;
    for (int l = 0; l < m->n_layers; l++) {
        layer_acts *la = &a->layer[l];
        la->ln1 = p, p += N * d;
        la->ln1_mean = p, p += N;
        la->ln1_rstd = p, p += N;
        la->qkv = p, p += N * 3 * d;
        la->att = p, p += B * m->n_heads * L * L;
        la->atty = p, p += N * d;
        la->res2 = p, p += N * d;
        la->ln2 = p, p += N * d;
        la->ln2_mean = p, p += N;
        la->ln2_rstd = p, p += N;
        la->fch = p, p += N * 4 * d;
        la->fchg = p, p += N * 4 * d;
        la->res3 = p, p += N * d;
    }
    a->lnf_mean = p, p += N;
    a->lnf_rstd = p;
}

/* ---- parameters ---- */

/* The tensors in slab order: name, shape as multiples (rows = rl n_layers rd d + rc, cols = cd d). */
static const struct {
    const char *name;
    size_t field;           /* offsetof the index in cr_tfm */
    int per_layer, rows_d, cols_d;
} TENSORS[CR_TFM_N_TENSORS] = {
    {"wpe", offsetof(cr_tfm, wpe), 0, 0, 1},      /* rows: max_len */
    {"ln1w", offsetof(cr_tfm, ln1w), 1, 0, 1},    {"ln1b", offsetof(cr_tfm, ln1b), 1, 0, 1},
    {"qkvw", offsetof(cr_tfm, qkvw), 1, 3, 1},    {"qkvb", offsetof(cr_tfm, qkvb), 1, 0, 3},
    {"projw", offsetof(cr_tfm, projw), 1, 1, 1},  {"projb", offsetof(cr_tfm, projb), 1, 0, 1},
    {"ln2w", offsetof(cr_tfm, ln2w), 1, 0, 1},    {"ln2b", offsetof(cr_tfm, ln2b), 1, 0, 1},
    {"fcw", offsetof(cr_tfm, fcw), 1, 4, 1},      {"fcb", offsetof(cr_tfm, fcb), 1, 0, 4},
    {"fc2w", offsetof(cr_tfm, fc2w), 1, 1, 4},    {"fc2b", offsetof(cr_tfm, fc2b), 1, 0, 1},
    {"lnfw", offsetof(cr_tfm, lnfw), 0, 0, 1},    {"lnfb", offsetof(cr_tfm, lnfb), 0, 0, 1},
};

static void tensor_shape(const cr_tfm *m, int i, int64_t *rows, int64_t *cols) {
    int64_t d = m->dim;
    if (i == 0) *rows = m->max_len;
    else if (TENSORS[i].per_layer) *rows = m->n_layers * (TENSORS[i].rows_d ? TENSORS[i].rows_d * d : 1);
    else *rows = 1;
    *cols = TENSORS[i].cols_d * d;
}

static int *field(cr_tfm *m, int i) { return (int *)((char *)m + TENSORS[i].field); }

const char *cr_tfm_check(const cr_tfm *m) {
    if (m->n_layers < 1 || m->n_layers > CR_TFM_MAX_LAYERS) return "transformer: n_layers must be 1 .. 4";
    if (m->dim < 1 || m->n_heads < 1 || m->dim % m->n_heads) return "transformer: n_heads must divide dim (both >= 1)";
    if (m->max_len < 1 || m->max_len > CR_TFM_MAX_LEN) return "transformer: max_len must be 1 .. 64";
    return NULL;
}

int cr_tfm_tensors(const cr_tfm *m, const char *prefix, cr_tensor *t, int n) {
    CR_ASSERT(!cr_tfm_check(m));
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) {
        cr_tensor *x = &t[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s%s", prefix, TENSORS[i].name);
        tensor_shape(m, i, &x->rows, &x->cols);
    }
    return n;
}

cr_status cr_tfm_bind(cr_tfm *m, const cr_slab *s, const char *prefix) {
    const char *bad = cr_tfm_check(m);
    if (bad) return cr_fail(CR_ERR_FORMAT, "%s", bad);
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, TENSORS[i].name);
        int k = cr_slab_find(s, name);
        if (k < 0) return cr_fail(CR_ERR_FORMAT, "transformer: tensor '%s' is missing", name);
        int64_t rows, cols;
        tensor_shape(m, i, &rows, &cols);
        if (s->t[k].rows != rows || s->t[k].cols != cols)
            return cr_fail(CR_ERR_FORMAT, "transformer: tensor '%s' is (%lld, %lld), expected (%lld, %lld)", name,
                           (long long)s->t[k].rows, (long long)s->t[k].cols, (long long)rows, (long long)cols);
        *field(m, i) = k;
    }
    return CR_OK;
}

void cr_tfm_init(const cr_tfm *m, cr_slab *s, cr_rng *r) {
    double proj_std = 0.02 / sqrt(2.0 * m->n_layers);
    cr_slab_normal(s, m->wpe, 0.01, r);
    cr_slab_normal(s, m->qkvw, 0.02, r);
    cr_slab_normal(s, m->projw, proj_std, r);
    cr_slab_normal(s, m->fcw, 0.02, r);
    cr_slab_normal(s, m->fc2w, proj_std, r);
    const int zero[] = {m->ln1b, m->qkvb, m->projb, m->ln2b, m->fcb, m->fc2b, m->lnfb};
    const int one[] = {m->ln1w, m->ln2w, m->lnfw};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        memset(cr_slab_at(s, zero[i]), 0, (size_t)(s->t[zero[i]].rows * s->t[zero[i]].cols) * sizeof(float));
    for (size_t i = 0; i < sizeof one / sizeof *one; i++) {
        float *g = cr_slab_at(s, one[i]);
        for (int64_t k = 0; k < s->t[one[i]].rows * s->t[one[i]].cols; k++) g[k] = 1.0f;
    }
}

/* One layer's parameters (or their gradients, from a slab of the same layout). */
typedef struct {
    float *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb, *ln2w, *ln2b, *fcw, *fcb, *fc2w, *fc2b;
} layer_params;

static layer_params layer_at(const cr_tfm *m, const cr_slab *s, int l) {
    int64_t d = m->dim;
    layer_params p;
    p.ln1w = cr_slab_at(s, m->ln1w) + l * d;
    p.ln1b = cr_slab_at(s, m->ln1b) + l * d;
    p.qkvw = cr_slab_at(s, m->qkvw) + l * 3 * d * d;
    p.qkvb = cr_slab_at(s, m->qkvb) + l * 3 * d;
    p.projw = cr_slab_at(s, m->projw) + l * d * d;
    p.projb = cr_slab_at(s, m->projb) + l * d;
    p.ln2w = cr_slab_at(s, m->ln2w) + l * d;
    p.ln2b = cr_slab_at(s, m->ln2b) + l * d;
    p.fcw = cr_slab_at(s, m->fcw) + l * 4 * d * d;
    p.fcb = cr_slab_at(s, m->fcb) + l * 4 * d;
    p.fc2w = cr_slab_at(s, m->fc2w) + l * 4 * d * d;
    p.fc2b = cr_slab_at(s, m->fc2b) + l * d;
    return p;
}

static void lin_fwd(const cr_tfm *m, float *y, const float *x, const float *w, const float *b, int64_t N, int64_t in,
                    int64_t out) {
    if (m->ref) cr_linear_forward(y, x, w, b, N, in, out);
    else cr_linear_forward_blas(y, x, w, b, N, in, out);
}

static void lin_bwd(const cr_tfm *m, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                    int64_t N, int64_t in, int64_t out) {
    if (m->ref) cr_linear_backward(dx, dw, db, dy, x, w, N, in, out);
    else cr_linear_backward_blas(dx, dw, db, dy, x, w, N, in, out);
}

/* ---- causal attention ---- */

/* Keys visible to query t of a sequence of n valid rows: s < min(t + 1, n). */
static int64_t visible(int64_t t, int64_t n) { return t + 1 < n ? t + 1 : n; }

/* atty (N, d) from qkv (N, 3d); att (B, H, L, L) receives the softmax rows (0 beyond the visible keys). */
static void attention_forward(float *atty, float *att, const float *qkv, const int64_t *len, int64_t B, int64_t L,
                              int64_t d, int64_t H) {
    int64_t hs = d / H;
    float scale = 1.0f / sqrtf((float)hs);
    CR_OMP(omp parallel for schedule(static) if (B * H > 1 && B * L * L * d >= 32768))
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, n = len[b];
        CR_ASSERT(n >= 0 && n <= L);
        for (int64_t t = 0; t < L; t++) {
            const float *q = qkv + (b * L + t) * 3 * d + h * hs;
            float *p = att + (bh * L + t) * L, *y = atty + (b * L + t) * d + h * hs;
            int64_t nv = visible(t, n);
            memset(p, 0, (size_t)L * sizeof *p);
            memset(y, 0, (size_t)hs * sizeof *y);
            if (nv == 0) continue;
            float mx = -INFINITY;
            for (int64_t s = 0; s < nv; s++) {
                const float *k = qkv + (b * L + s) * 3 * d + d + h * hs;
                float dot = 0.0f;
                for (int64_t c = 0; c < hs; c++) dot += q[c] * k[c];
                p[s] = dot * scale;
                if (p[s] > mx) mx = p[s];
            }
            float z = 0.0f;
            for (int64_t s = 0; s < nv; s++) z += p[s] = expf(p[s] - mx);
            float inv = 1.0f / z;
            for (int64_t s = 0; s < nv; s++) {
                p[s] *= inv;
                const float *v = qkv + (b * L + s) * 3 * d + 2 * d + h * hs;
                for (int64_t c = 0; c < hs; c++) y[c] += p[s] * v[c];
            }
        }
    }
}

/* dqkv (N, 3d) += from datty (N, d). Each (b, h) pair writes only its own columns of its own rows. */
static void attention_backward(float *dqkv, const float *datty, const float *qkv, const float *att, const int64_t *len,
                               int64_t B, int64_t L, int64_t d, int64_t H) {
    int64_t hs = d / H;
    float scale = 1.0f / sqrtf((float)hs);
    CR_OMP(omp parallel for schedule(static) if (B * H > 1 && B * L * L * d >= 32768))
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, n = len[b];
        float dp[CR_TFM_MAX_LEN];
        for (int64_t t = 0; t < L; t++) {
            int64_t nv = visible(t, n);
            const float *p = att + (bh * L + t) * L, *dy = datty + (b * L + t) * d + h * hs;
            const float *q = qkv + (b * L + t) * 3 * d + h * hs;
            float *dq = dqkv + (b * L + t) * 3 * d + h * hs;
            /* y = sum_s p_s v_s: dp_s = <dy, v_s>, dv_s += p_s dy; softmax: ds_s = p_s (dp_s - sum_r p_r dp_r) */
            float m = 0.0f;
            for (int64_t s = 0; s < nv; s++) {
                const float *v = qkv + (b * L + s) * 3 * d + 2 * d + h * hs;
                float *dv = dqkv + (b * L + s) * 3 * d + 2 * d + h * hs;
                float dot = 0.0f;
                for (int64_t c = 0; c < hs; c++) {
                    dot += dy[c] * v[c];
                    dv[c] += p[s] * dy[c];
                }
                dp[s] = dot;
                m += p[s] * dot;
            }
            /* score_s = <q, k_s> scale: dq += ds_s scale k_s, dk_s += ds_s scale q */
            for (int64_t s = 0; s < nv; s++) {
                float ds = p[s] * (dp[s] - m) * scale;
                const float *k = qkv + (b * L + s) * 3 * d + d + h * hs;
                float *dk = dqkv + (b * L + s) * 3 * d + d + h * hs;
                for (int64_t c = 0; c < hs; c++) {
                    dq[c] += ds * k[c];
                    dk[c] += ds * q[c];
                }
            }
        }
    }
}

/* ---- the stack ---- */

void cr_tfm_forward(const cr_tfm *m, const cr_slab *s, float *out, float *acts, const float *x, const int64_t *len,
                    int64_t B, int64_t L) {
    CR_ASSERT(!cr_tfm_check(m) && L >= 0 && L <= m->max_len);
    int64_t N = B * L, d = m->dim, H = m->n_heads;
    tfm_acts a;
    bind_acts(m, acts, B, L, &a);
    const float *wpe = cr_slab_at(s, m->wpe);
    for (int64_t b = 0; b < B; b++) {
        CR_ASSERT(len[b] >= 0 && len[b] <= L);
        for (int64_t t = 0; t < L; t++) {
            float *e = a.enc + (b * L + t) * d;
            const float *xr = x + (b * L + t) * d;
            if (t < len[b])
                for (int64_t c = 0; c < d; c++) e[c] = xr[c] + wpe[t * d + c];
            else
                memset(e, 0, (size_t)d * sizeof *e);
        }
    }
    const float *res = a.enc;
    for (int l = 0; l < m->n_layers; l++) {
        layer_acts *la = &a.layer[l];
        layer_params p = layer_at(m, s, l);
        cr_layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, res, p.ln1w, p.ln1b, N, d);
        lin_fwd(m, la->qkv, la->ln1, p.qkvw, p.qkvb, N, d, 3 * d);
        attention_forward(la->atty, la->att, la->qkv, len, B, L, d, H);
        lin_fwd(m, la->res2, la->atty, p.projw, p.projb, N, d, d);
        for (int64_t k = 0; k < N * d; k++) la->res2[k] += res[k];
        cr_layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res2, p.ln2w, p.ln2b, N, d);
        lin_fwd(m, la->fch, la->ln2, p.fcw, p.fcb, N, d, 4 * d);
        cr_gelu_forward(la->fchg, la->fch, N * 4 * d);
        lin_fwd(m, la->res3, la->fchg, p.fc2w, p.fc2b, N, 4 * d, d);
        for (int64_t k = 0; k < N * d; k++) la->res3[k] += la->res2[k];
        res = la->res3;
    }
    cr_layernorm_forward(out, a.lnf_mean, a.lnf_rstd, res, cr_slab_at(s, m->lnfw), cr_slab_at(s, m->lnfb), N, d);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = len[b]; t < L; t++) memset(out + (b * L + t) * d, 0, (size_t)d * sizeof *out);
}

void cr_tfm_backward(const cr_tfm *m, const cr_slab *s, cr_slab *g, float *dx, const float *dout, const float *acts,
                     const int64_t *len, int64_t B, int64_t L, float *scratch) {
    CR_ASSERT(!cr_tfm_check(m) && L >= 0 && L <= m->max_len);
    int64_t N = B * L, d = m->dim, H = m->n_heads;
    tfm_acts a;
    bind_acts(m, (float *)acts, B, L, &a);    /* read only */
    float *dres = scratch, *dbuf = dres + N * d, *dqkv = dbuf + N * d, *dfch = dqkv + N * 3 * d, *dfchg = dfch + N * 4 * d;
    /* the padding rows of dout are ignored: the forward pass wrote zeros there, whatever the parameters. From a
     * zero row every gradient below stays zero on padding rows (valid queries see only valid keys), so those
     * rows add nothing to the parameter gradients. */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < L; t++) {
            float *r = dbuf + (b * L + t) * d;
            if (t < len[b]) memcpy(r, dout + (b * L + t) * d, (size_t)d * sizeof *r);
            else memset(r, 0, (size_t)d * sizeof *r);
        }
    memset(dres, 0, (size_t)(N * d) * sizeof *dres);
    const float *last = m->n_layers ? a.layer[m->n_layers - 1].res3 : a.enc;
    cr_layernorm_backward(dres, cr_slab_at(g, m->lnfw), cr_slab_at(g, m->lnfb), dbuf, last, a.lnf_mean, a.lnf_rstd,
                          cr_slab_at(s, m->lnfw), N, d);
    for (int l = m->n_layers - 1; l >= 0; l--) {
        const layer_acts *la = &a.layer[l];
        const float *res_in = l ? a.layer[l - 1].res3 : a.enc;
        layer_params p = layer_at(m, s, l), gp = layer_at(m, g, l);
        /* res3 = res2 + fc2(GELU(fc(LN2(res2)))): dres carries d res3 = the residual's share of d res2 */
        memset(dfchg, 0, (size_t)(N * 4 * d) * sizeof *dfchg);
        lin_bwd(m, dfchg, gp.fc2w, gp.fc2b, dres, la->fchg, p.fc2w, N, 4 * d, d);
        memset(dfch, 0, (size_t)(N * 4 * d) * sizeof *dfch);
        cr_gelu_backward(dfch, dfchg, la->fch, N * 4 * d);
        memset(dbuf, 0, (size_t)(N * d) * sizeof *dbuf);
        lin_bwd(m, dbuf, gp.fcw, gp.fcb, dfch, la->ln2, p.fcw, N, d, 4 * d);
        cr_layernorm_backward(dres, gp.ln2w, gp.ln2b, dbuf, la->res2, la->ln2_mean, la->ln2_rstd, p.ln2w, N, d);
        /* res2 = res_in + proj(attn(LN1(res_in))): dres is now d res2 */
        memset(dbuf, 0, (size_t)(N * d) * sizeof *dbuf);
        lin_bwd(m, dbuf, gp.projw, gp.projb, dres, la->atty, p.projw, N, d, d);
        memset(dqkv, 0, (size_t)(N * 3 * d) * sizeof *dqkv);
        attention_backward(dqkv, dbuf, la->qkv, la->att, len, B, L, d, H);
        memset(dbuf, 0, (size_t)(N * d) * sizeof *dbuf);
        lin_bwd(m, dbuf, gp.qkvw, gp.qkvb, dqkv, la->ln1, p.qkvw, N, d, 3 * d);
        cr_layernorm_backward(dres, gp.ln1w, gp.ln1b, dbuf, res_in, la->ln1_mean, la->ln1_rstd, p.ln1w, N, d);
    }
    /* enc = x + wpe[t] on valid rows: dres is d enc */
    float *dwpe = cr_slab_at(g, m->wpe);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < len[b]; t++)
            for (int64_t c = 0; c < d; c++) {
                float v = dres[(b * L + t) * d + c];
                dwpe[t * d + c] += v;
                if (dx) dx[(b * L + t) * d + c] += v;
            }
}

/* test_nn_golden.c — a tiny tower built from the layers of src/core/nn_tower.h against PyTorch (tools/ref/
 * tower_layers.py, which wrote tests/golden/tower_layers.txt), and the same tower at realistic sizes run at 1 and
 * 2 OpenMP threads, which must give the same bits.
 *
 * tower_run does what the script does, with crossrec's layers: item tower (embedding bag -> linear -> layer norm
 * -> GELU -> dropout with a fixed mask -> linear, plus an id embedding under id dropout), user tower (target-domain
 * attention pooling + a 2-layer causal transformer with mean pooling), the four losses (sampled softmax with log-Q
 * and an accidental-hit mask, BPR, symmetric InfoNCE, a domain classifier behind gradient reversal), then the
 * whole backward pass. Each loss runs twice: once alone with weight 1 (its input gradients are compared one by one)
 * and once with its weight into the shared gradient buffers (the total's gradients are compared).
 *
 * The file's inputs are read by name; every output tensor in the file is compared with the tensor of the same
 * name and shape: |crossrec - torch| <= 1e-5 (|torch| + max |torch| of the tensor), the max diff printed per
 * tensor. The reader is local to this test (the file format is `name rows cols` + values, `name value`). */
#include "test.h"

#include "core/nn_tower.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- named float tensors ---- */

typedef struct {
    char name[48];
    int64_t rows, cols;
    float *p;
    int owned;
} tref;

typedef struct {
    tref t[96];
    int n;
} treg;

static tref *reg_find(treg *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->t[i].name, name)) return &r->t[i];
    return NULL;
}

static float *reg_add(treg *r, const char *name, int64_t rows, int64_t cols, float *view) {
    CR_ASSERT(r->n < 96 && !reg_find(r, name));
    tref *t = &r->t[r->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows, t->cols = cols;
    t->owned = !view;
    t->p = view ? view : calloc((size_t)(rows * cols > 0 ? rows * cols : 1), sizeof(float));
    CR_ASSERT(t->p);
    return t->p;
}

static float *reg(treg *r, const char *name) {
    tref *t = reg_find(r, name);
    CR_ASSERT(t);
    return t->p;
}

static void reg_free(treg *r) {
    for (int i = 0; i < r->n; i++)
        if (r->t[i].owned) free(r->t[i].p);
    r->n = 0;
}

/* ---- the tower ---- */

typedef struct {
    int64_t V, D, NI, H1, NDOM, B, L, heads, layers, max_len, n_idx, n_ids;
    float p_drop, temp, tau, lambda, temp_teacher, w_bpr, w_nce, w_dom;
    int64_t *offsets, *len;     /* (NI + 1), (B) */
    int32_t *idx, *item_id, *dom, *neg, *item_dom;
    uint8_t *keep, *mask;       /* (NI), (NI, H1) */
} tower_cfg;

static const char *const INPUTS[] = {"E", "tfidf", "W1", "b1", "gamma", "beta", "W2", "b2", "idE", "H", "q", "X", "Wd", "bd",
                                     "R", "log_q"};
enum { N_INPUTS = sizeof INPUTS / sizeof *INPUTS, N_LOSSES = 8 };

/* Registers the float inputs with their shapes (zeroed). */
static void tower_inputs(const tower_cfg *c, treg *in) {
    const int64_t shape[N_INPUTS][2] = {{c->V, c->D},   {1, c->n_idx},   {c->H1, c->D}, {1, c->H1}, {1, c->H1},
                                        {1, c->H1},     {c->D, c->H1},   {1, c->D},     {c->n_ids, c->D},
                                        {c->B, c->L * c->D}, {c->NDOM, c->D}, {c->NI, c->D}, {c->NDOM, c->D},
                                        {1, c->NDOM},   {c->NI, c->D},   {1, c->NI}};
    for (int i = 0; i < N_INPUTS; i++) reg_add(in, INPUTS[i], shape[i][0], shape[i][1], NULL);
}

/* The transformer's slab with prefix "tfm." (names as in the golden file). */
static void tower_tfm(const tower_cfg *c, cr_tfm *m, cr_slab *s, cr_slab *g) {
    memset(m, 0, sizeof *m);
    m->n_layers = (int)c->layers, m->dim = c->D, m->n_heads = c->heads, m->max_len = c->max_len;
    cr_tensor t[CR_TFM_N_TENSORS];
    CHECK(cr_tfm_check(m) == NULL);
    cr_tfm_tensors(m, "tfm.", t, 0);
    CHECK_OK(cr_slab_init(s, t, CR_TFM_N_TENSORS));
    CHECK_OK(cr_tfm_bind(m, s, "tfm."));
    CHECK_OK(cr_slab_like(g, s));
}

/* Forward and backward of the whole tower; outputs and gradients into `out` by the golden file's names, the
 * losses into loss[] (ssm, bpr, nce, nce1, dom, total, mean_bag). */
static void tower_run(const tower_cfg *c, treg *in, const cr_tfm *m, const cr_slab *ts, cr_slab *tg, treg *out,
                      double *loss) {
    const int64_t V = c->V, D = c->D, NI = c->NI, H1 = c->H1, NDOM = c->NDOM, B = c->B, L = c->L;
    const float *E = reg(in, "E"), *tfidf = reg(in, "tfidf"), *W1 = reg(in, "W1"), *b1 = reg(in, "b1");
    const float *gamma = reg(in, "gamma"), *beta = reg(in, "beta"), *W2 = reg(in, "W2"), *b2 = reg(in, "b2");
    const float *idE = reg(in, "idE"), *H = reg(in, "H"), *q = reg(in, "q"), *X = reg(in, "X"), *Wd = reg(in, "Wd");
    const float *bd = reg(in, "bd"), *R = reg(in, "R"), *log_q = reg(in, "log_q");

    /* ---- forward: item tower ---- */
    float *bag = reg_add(out, "bag", NI, D, NULL), *h1 = reg_add(out, "h1", NI, H1, NULL);
    float *ln = reg_add(out, "ln", NI, H1, NULL), *gel = reg_add(out, "gelu", NI, H1, NULL);
    float *G = reg_add(out, "G", NI, D, NULL), *bag_mean = reg_add(out, "bag_mean", NI, D, NULL);
    float *mean1 = malloc(NI * sizeof *mean1), *rstd1 = malloc(NI * sizeof *rstd1);
    float *drop = malloc(NI * H1 * sizeof *drop), *idv = malloc(NI * D * sizeof *idv), *idk = malloc(NI * D * sizeof *idk);
    int64_t *id_off = malloc((NI + 1) * sizeof *id_off);
    for (int64_t i = 0; i <= NI; i++) id_off[i] = i;
    cr_embbag_forward(bag, E, V, D, c->offsets, c->idx, tfidf, NI, CR_BAG_SUM);
    cr_linear_forward_blas(h1, bag, W1, b1, NI, D, H1);
    cr_layernorm_forward(ln, mean1, rstd1, h1, gamma, beta, NI, H1);
    cr_gelu_forward(gel, ln, NI * H1);
    cr_dropout_apply(drop, gel, c->mask, NI * H1, c->p_drop);
    cr_linear_forward_blas(G, drop, W2, b2, NI, H1, D);
    cr_embbag_forward(idv, idE, c->n_ids, D, id_off, c->item_id, NULL, NI, CR_BAG_SUM);     /* one id per item */
    cr_id_dropout_apply(idk, idv, c->keep, NI, D);
    for (int64_t k = 0; k < NI * D; k++) G[k] += idk[k];
    cr_embbag_forward(bag_mean, E, V, D, c->offsets, c->idx, NULL, NI, CR_BAG_MEAN);

    /* ---- forward: user tower ---- */
    float *att = reg_add(out, "att", B, L, NULL), *u_att = reg_add(out, "u_att", B, D, NULL);
    float *T = reg_add(out, "T", B, L * D, NULL), *u_tfm = reg_add(out, "u_tfm", B, D, NULL), *U = reg_add(out, "U", B, D, NULL);
    float *acts = malloc((size_t)cr_tfm_act_size(m, B, L) * sizeof *acts);
    float *tscratch = malloc((size_t)cr_tfm_scratch_size(m, B, L) * sizeof *tscratch);
    cr_attnpool_forward(u_att, att, H, c->len, q, c->dom, B, L, D);
    cr_tfm_forward(m, ts, T, acts, H, c->len, B, L);
    cr_meanpool_forward(u_tfm, T, c->len, B, L, D);
    for (int64_t k = 0; k < B * D; k++) U[k] = u_att[k] + u_tfm[k];

    /* ---- losses, each alone (weight 1) and into the total's gradients (its weight) ---- */
    float *gU = calloc(B * D, sizeof *gU), *gG = calloc(NI * D, sizeof *gG), *dX = reg_add(out, "dX", NI, D, NULL);
    float *ssm_dU = reg_add(out, "ssm_dU", B, D, NULL), *ssm_dC = reg_add(out, "ssm_dC", NI, D, NULL);
    uint64_t *hit = malloc(B * cr_hitmask_words(NI) * sizeof *hit);
    float *probs = malloc(B * NI * sizeof *probs);
    cr_hitmask_from_items(hit, c->item_id, B, NI);
    loss[0] = cr_sampled_softmax(ssm_dU, ssm_dC, probs, U, G, B, NI, D, c->temp, log_q, hit, 1.0f);
    cr_sampled_softmax(gU, gG, probs, U, G, B, NI, D, c->temp, log_q, hit, 1.0f);
    /* distillation, standalone: the teacher is the attention-pooled users against the same candidates */
    float *target = reg_add(out, "distill_target", B, NI, NULL);
    float *distill_dU = reg_add(out, "distill_dU", B, D, NULL), *distill_dC = reg_add(out, "distill_dC", NI, D, NULL);
    cr_softmax_rows(target, u_att, G, B, NI, D, c->temp_teacher, log_q, hit);
    loss[7] = cr_softmax_distill(distill_dU, distill_dC, probs, U, G, B, NI, D, c->temp, log_q, hit, target, 1.0f);

    float *negG = malloc(B * D * sizeof *negG), *gneg = calloc(B * D, sizeof *gneg);
    for (int64_t b = 0; b < B; b++) memcpy(negG + b * D, G + (int64_t)c->neg[b] * D, D * sizeof *negG);
    float *bpr_du = reg_add(out, "bpr_du", B, D, NULL), *bpr_dpos = reg_add(out, "bpr_dpos", B, D, NULL);
    float *bpr_dneg = reg_add(out, "bpr_dneg", B, D, NULL);
    loss[1] = cr_bpr_loss(bpr_du, bpr_dpos, bpr_dneg, U, G, negG, B, D, 1.0f);
    cr_bpr_loss(gU, gG, gneg, U, G, negG, B, D, c->w_bpr);        /* the positives are G's first B rows */
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < D; k++) gG[(int64_t)c->neg[b] * D + k] += gneg[b * D + k];

    float *nscratch = malloc((size_t)cr_infonce_scratch_size(NI, D) * sizeof *nscratch);
    float *nce_dA = reg_add(out, "nce_dA", NI, D, NULL), *nce_dB = reg_add(out, "nce_dB", NI, D, NULL);
    float *nce1_dA = reg_add(out, "nce1_dA", NI, D, NULL), *nce1_dB = reg_add(out, "nce1_dB", NI, D, NULL);
    loss[2] = cr_infonce(nce_dA, nce_dB, nscratch, G, X, NI, D, c->tau, 1, 1.0f);
    loss[3] = cr_infonce(nce1_dA, nce1_dB, nscratch, G, X, NI, D, c->tau, 0, 1.0f);
    cr_infonce(gG, dX, nscratch, G, X, NI, D, c->tau, 1, c->w_nce);

    float *Zin = malloc(NI * D * sizeof *Zin), *Z = reg_add(out, "dom_logits", NI, NDOM, NULL);
    float *dom_dZ = reg_add(out, "dom_dZ", NI, NDOM, NULL), *dom_dG = reg_add(out, "dom_dG", NI, D, NULL);
    float *dZ = calloc(NI * NDOM, sizeof *dZ), *dZin = calloc(NI * D, sizeof *dZin);
    float *dWd = reg_add(out, "dWd", NDOM, D, NULL), *dbd = reg_add(out, "dbd", 1, NDOM, NULL);
    cr_grl_forward(Zin, G, NI * D);
    cr_linear_forward_blas(Z, Zin, Wd, bd, NI, D, NDOM);
    loss[4] = cr_softmax_xent(dom_dZ, Z, c->item_dom, NI, NDOM, 1.0f);
    cr_linear_backward_blas(dZin, NULL, NULL, dom_dZ, Zin, Wd, NI, D, NDOM);
    cr_grl_backward(dom_dG, dZin, NI * D, c->lambda);
    cr_softmax_xent(dZ, Z, c->item_dom, NI, NDOM, c->w_dom);
    memset(dZin, 0, NI * D * sizeof *dZin);
    cr_linear_backward_blas(dZin, dWd, dbd, dZ, Zin, Wd, NI, D, NDOM);
    cr_grl_backward(gG, dZin, NI * D, c->lambda);
    loss[5] = loss[0] + c->w_bpr * loss[1] + c->w_nce * loss[2] + c->w_dom * loss[4];

    /* ---- backward: user tower ---- */
    float *dH = reg_add(out, "dH", B, L * D, NULL), *dq = reg_add(out, "dq", NDOM, D, NULL);
    float *dT = calloc(B * L * D, sizeof *dT);
    cr_attnpool_backward(dH, dq, gU, H, c->len, q, c->dom, att, B, L, D);
    cr_meanpool_backward(dT, gU, c->len, B, L, D);
    cr_tfm_backward(m, ts, tg, dH, dT, acts, c->len, B, L, tscratch);
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) {
        char name[64];
        snprintf(name, sizeof name, "d%s", tg->t[i].name);
        reg_add(out, name, tg->t[i].rows, tg->t[i].cols, cr_slab_at(tg, i));
    }

    /* ---- backward: item tower ---- */
    float *didE = reg_add(out, "didE", c->n_ids, D, NULL), *gidv = calloc(NI * D, sizeof *gidv);
    cr_id_dropout_backward(gidv, gG, c->keep, NI, D);
    cr_embbag_backward(didE, NULL, gidv, idE, c->n_ids, D, id_off, c->item_id, NULL, NI, CR_BAG_SUM);
    float *dW2 = reg_add(out, "dW2", D, H1, NULL), *db2 = reg_add(out, "db2", 1, D, NULL);
    float *gdrop = calloc(NI * H1, sizeof *gdrop), *ggel = calloc(NI * H1, sizeof *ggel);
    float *gln = calloc(NI * H1, sizeof *gln), *gh1 = calloc(NI * H1, sizeof *gh1), *gbag = calloc(NI * D, sizeof *gbag);
    cr_linear_backward_blas(gdrop, dW2, db2, gG, drop, W2, NI, H1, D);
    cr_dropout_backward(ggel, gdrop, c->mask, NI * H1, c->p_drop);
    cr_gelu_backward(gln, ggel, ln, NI * H1);
    float *dgamma = reg_add(out, "dgamma", 1, H1, NULL), *dbeta = reg_add(out, "dbeta", 1, H1, NULL);
    cr_layernorm_backward(gh1, dgamma, dbeta, gln, h1, mean1, rstd1, gamma, NI, H1);
    float *dW1 = reg_add(out, "dW1", H1, D, NULL), *db1 = reg_add(out, "db1", 1, H1, NULL);
    cr_linear_backward_blas(gbag, dW1, db1, gh1, bag, W1, NI, D, H1);
    float *dE = reg_add(out, "dE", V, D, NULL), *dtfidf = reg_add(out, "dtfidf", 1, c->n_idx, NULL);
    cr_embbag_backward(dE, dtfidf, gbag, E, V, D, c->offsets, c->idx, tfidf, NI, CR_BAG_SUM);

    /* ---- the mean-mode bag alone: loss sum(R * bag_mean) ---- */
    float *mean_dE = reg_add(out, "mean_bag_dE", V, D, NULL);
    cr_embbag_backward(mean_dE, NULL, R, E, V, D, c->offsets, c->idx, NULL, NI, CR_BAG_MEAN);
    loss[6] = 0;
    for (int64_t k = 0; k < NI * D; k++) loss[6] += (double)R[k] * bag_mean[k];

    free(mean1), free(rstd1), free(drop), free(idv), free(idk), free(id_off), free(acts), free(tscratch), free(gU), free(gG);
    free(hit), free(probs), free(negG), free(gneg), free(nscratch), free(Zin), free(dZ), free(dZin), free(dT), free(gidv);
    free(gdrop), free(ggel), free(gln), free(gh1), free(gbag);
}

static void cfg_free(tower_cfg *c) {
    free(c->offsets), free(c->len), free(c->idx), free(c->item_id), free(c->dom), free(c->neg), free(c->item_dom);
    free(c->keep), free(c->mask);
}

/* ---- the golden file ---- */

typedef struct {
    char *text, *at;
} gold;

static const char *gold_next(gold *g) {
    for (;;) {
        while (*g->at == ' ' || *g->at == '\n' || *g->at == '\t' || *g->at == '\r') g->at++;
        if (*g->at == '#') {
            while (*g->at && *g->at != '\n') g->at++;
            continue;
        }
        if (!*g->at) return NULL;
        char *s = g->at;
        while (*g->at && *g->at != ' ' && *g->at != '\n' && *g->at != '\t' && *g->at != '\r') g->at++;
        if (*g->at) *g->at++ = '\0';
        return s;
    }
}

static double gold_num(gold *g) {
    const char *s = gold_next(g);
    CHECK_MSG(s, "tower_layers.txt ends early");
    char *end;
    double v = strtod(s, &end);
    CHECK_MSG(*end == '\0', "tower_layers.txt: '%s' is not a number", s);
    return v;
}

static void gold_key(gold *g, const char *key) {
    const char *s = gold_next(g);
    CHECK_MSG(s && !strcmp(s, key), "tower_layers.txt: expected '%s', found '%s'", key, s ? s : "(end)");
}

static double gold_scalar(gold *g, const char *key) {
    gold_key(g, key);
    return gold_num(g);
}

/* `rows cols` + values of tensor `key` (already read) into dst (doubles), the shape checked. */
static void gold_values(gold *g, const char *key, int64_t rows, int64_t cols, double *dst) {
    int64_t r = (int64_t)gold_num(g), c = (int64_t)gold_num(g);
    CHECK_MSG(r == rows && c == cols, "tower_layers.txt: '%s' is (%lld, %lld), expected (%lld, %lld)", key, (long long)r,
              (long long)c, (long long)rows, (long long)cols);
    for (int64_t k = 0; k < rows * cols; k++) dst[k] = gold_num(g);
}

/* `key rows cols` + values. */
static void gold_tensor(gold *g, const char *key, int64_t rows, int64_t cols, double *dst) {
    gold_key(g, key);
    gold_values(g, key, rows, cols, dst);
}

/* An index list `key 1 n` into int64 / int32 / byte arrays. */
static void *gold_ints(gold *g, const char *key, int64_t n, size_t elem) {
    double *v = malloc((size_t)n * sizeof *v);
    gold_tensor(g, key, 1, n, v);
    void *out = malloc((size_t)n * elem);
    for (int64_t k = 0; k < n; k++) {
        CHECK(v[k] == floor(v[k]));
        if (elem == 8) ((int64_t *)out)[k] = (int64_t)v[k];
        else if (elem == 4) ((int32_t *)out)[k] = (int32_t)v[k];
        else ((uint8_t *)out)[k] = (uint8_t)v[k];
    }
    free(v);
    return out;
}

TEST(nn_tower_golden) {
    gold g = {cr_test_read("tests/golden/tower_layers.txt", NULL), NULL};
    CHECK_MSG(g.text, "tests/golden/tower_layers.txt not found (run the tests from the repository root)");
    g.at = g.text;
    tower_cfg c;
    memset(&c, 0, sizeof c);
    c.V = (int64_t)gold_scalar(&g, "rows"), c.D = (int64_t)gold_scalar(&g, "dim"), c.NI = (int64_t)gold_scalar(&g, "items");
    c.H1 = (int64_t)gold_scalar(&g, "hidden"), c.NDOM = (int64_t)gold_scalar(&g, "domains");
    c.B = (int64_t)gold_scalar(&g, "users"), c.L = (int64_t)gold_scalar(&g, "max_hist");
    c.heads = (int64_t)gold_scalar(&g, "heads"), c.layers = (int64_t)gold_scalar(&g, "layers");
    c.max_len = (int64_t)gold_scalar(&g, "max_len");
    c.p_drop = (float)gold_scalar(&g, "p_drop"), c.temp = (float)gold_scalar(&g, "temperature");
    c.tau = (float)gold_scalar(&g, "tau"), c.lambda = (float)gold_scalar(&g, "grl_lambda");
    c.temp_teacher = (float)gold_scalar(&g, "temperature_teacher");
    c.w_bpr = (float)gold_scalar(&g, "w_bpr"), c.w_nce = (float)gold_scalar(&g, "w_nce");
    c.w_dom = (float)gold_scalar(&g, "w_dom");
    CHECK(c.D == 6 && c.NI == 6 && c.B == 4 && c.L == 5 && c.layers == 2 && c.heads == 2);
    c.offsets = gold_ints(&g, "offsets", c.NI + 1, 8);
    c.n_idx = c.offsets[c.NI];
    c.idx = gold_ints(&g, "idx", c.n_idx, 4);
    c.item_id = gold_ints(&g, "item_id", c.NI, 4);
    c.keep = gold_ints(&g, "keep", c.NI, 1);
    c.len = gold_ints(&g, "len", c.B, 8);
    c.dom = gold_ints(&g, "dom", c.B, 4);
    c.neg = gold_ints(&g, "neg", c.B, 4);
    c.item_dom = gold_ints(&g, "item_dom", c.NI, 4);
    double *buf = malloc(4096 * sizeof *buf);
    gold_tensor(&g, "dropout_mask", c.NI, c.H1, buf);
    c.mask = malloc((size_t)(c.NI * c.H1));
    for (int64_t k = 0; k < c.NI * c.H1; k++) c.mask[k] = buf[k] != 0;
    c.n_ids = 10;

    treg in, out;
    memset(&in, 0, sizeof in), memset(&out, 0, sizeof out);
    tower_inputs(&c, &in);
    cr_tfm m;
    cr_slab ts, tg;
    tower_tfm(&c, &m, &ts, &tg);
    for (int i = 0; i < N_INPUTS; i++) {
        tref *t = &in.t[i];
        CR_ASSERT(t->rows * t->cols <= 4096);
        gold_tensor(&g, t->name, t->rows, t->cols, buf);
        for (int64_t k = 0; k < t->rows * t->cols; k++) t->p[k] = (float)buf[k];
    }
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) {
        gold_tensor(&g, ts.t[i].name, ts.t[i].rows, ts.t[i].cols, buf);
        for (int64_t k = 0; k < ts.t[i].rows * ts.t[i].cols; k++) cr_slab_at(&ts, i)[k] = (float)buf[k];
    }
    /* NaN in the history's padding rows: the pooling and the transformer must not read them */
    float *H = reg(&in, "H");
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t t = c.len[b]; t < c.L; t++)
            for (int64_t k = 0; k < c.D; k++) H[(b * c.L + t) * c.D + k] = NAN;

    double loss[N_LOSSES];
    tower_run(&c, &in, &m, &ts, &tg, &out, loss);

    /* every output in the file, in its order */
    static const char *const LOSS_NAMES[N_LOSSES] = {"loss_ssm", "loss_bpr", "loss_nce", "loss_nce1", "loss_dom",
                                                      "loss_total", "loss_mean_bag", "loss_distill"};
    int n_cmp = 0, n_bad = 0, n_loss = 0;
    double worst_all = 0;
    const char *key;
    char line[4096];
    int at = 0;
    while ((key = gold_next(&g))) {
        int li = -1;
        for (int i = 0; i < N_LOSSES; i++)
            if (!strcmp(key, LOSS_NAMES[i])) li = i;
        if (li >= 0) {
            double want = gold_num(&g), diff = fabs(loss[li] - want);
            printf("     %-14s crossrec %.9g  torch %.9g  |diff| %.3g\n", key, loss[li], want, diff);
            CHECK_MSG(diff <= 1e-5 * fabs(want), "%s: crossrec %.9g, torch %.9g", key, loss[li], want);
            n_loss++;
            continue;
        }
        tref *t = reg_find(&out, key);
        CHECK_MSG(t, "tower_layers.txt: '%s' is not an output of the tower", key);
        char name[48];
        snprintf(name, sizeof name, "%s", key);
        gold_values(&g, name, t->rows, t->cols, buf);
        double scale = 0, worst = 0;
        int64_t n = t->rows * t->cols, bad = -1;
        for (int64_t k = 0; k < n; k++) scale = fmax(scale, fabs(buf[k]));
        for (int64_t k = 0; k < n; k++) {
            double diff = fabs(t->p[k] - buf[k]);
            if (!(diff <= 1e-5 * (fabs(buf[k]) + scale)) && bad < 0) bad = k;
            if (!(diff <= worst)) worst = diff;
        }
        if (bad >= 0) {
            printf("     %s[%lld]: crossrec %.9g, torch %.9g (max |diff| %.3g)\n", name, (long long)bad, t->p[bad], buf[bad],
                   worst);
            n_bad++;
        }
        worst_all = fmax(worst_all, worst);
        at += snprintf(line + at, sizeof line - (size_t)at, "%s%s %.2g", at ? ", " : "", name, worst);
        if (at > 100) {
            printf("     max |diff|: %s\n", line);
            at = 0;
        }
        n_cmp++;
    }
    if (at) printf("     max |diff|: %s\n", line);
    printf("     %d tensors and %d losses compared with PyTorch, worst |diff| %.3g (tol 1e-5 (|torch| + max |torch|))\n", n_cmp,
           n_loss, worst_all);
    CHECK_EQ(n_bad, 0);
    CHECK_EQ(n_loss, N_LOSSES);
    CHECK_EQ(n_cmp, out.n);     /* every output the tower computes has a golden counterpart */

    /* the embedding table's untouched rows got exactly nothing */
    int32_t rows[64];
    uint8_t seen[64] = {0};
    int64_t nt = cr_embbag_touched(rows, seen, c.idx, c.n_idx);
    float *dE = reg(&out, "dE");
    for (int64_t r = 0, j = 0; r < c.V; r++) {
        int touched = j < nt && rows[j] == r;
        j += touched;
        for (int64_t k = 0; k < c.D; k++) CHECK(touched || dE[r * c.D + k] == 0.0f);
    }
    free(buf);
    free(g.text);
    reg_free(&in), reg_free(&out);
    cr_slab_free(&ts), cr_slab_free(&tg);
    cfg_free(&c);
}

/* ---- determinism: the tower at realistic sizes, 1 and 2 threads ---- */

TEST(nn_tower_deterministic_across_threads) {
    tower_cfg c;
    memset(&c, 0, sizeof c);
    c.V = 3000, c.D = 32, c.NI = 600, c.H1 = 48, c.NDOM = 4, c.B = 128, c.L = 24, c.heads = 4, c.layers = 2, c.max_len = 32;
    c.n_ids = 400;
    c.p_drop = 0.2f, c.temp = 0.1f, c.tau = 0.1f, c.lambda = 0.5f, c.temp_teacher = 0.2f, c.w_bpr = 0.3f, c.w_nce = 0.5f, c.w_dom = 0.2f;
    cr_rng r;
    cr_rng_named(&r, 41, "test.nn.tower.threads");
    c.offsets = malloc((c.NI + 1) * sizeof *c.offsets);
    c.offsets[0] = 0;
    for (int64_t i = 0; i < c.NI; i++) c.offsets[i + 1] = c.offsets[i] + cr_rng_below(&r, 12);
    c.n_idx = c.offsets[c.NI];
    c.idx = malloc((size_t)c.n_idx * sizeof *c.idx);
    for (int64_t k = 0; k < c.n_idx; k++) c.idx[k] = (int32_t)cr_rng_below(&r, (uint32_t)c.V);
    c.item_id = malloc(c.NI * sizeof *c.item_id), c.item_dom = malloc(c.NI * sizeof *c.item_dom), c.keep = malloc(c.NI);
    for (int64_t i = 0; i < c.NI; i++)
        c.item_id[i] = (int32_t)cr_rng_below(&r, (uint32_t)c.n_ids), c.item_dom[i] = (int32_t)cr_rng_below(&r, 4);
    for (int64_t i = 0; i < c.NI; i++) c.keep[i] = cr_rng_uniform(&r) >= 0.3;
    c.mask = malloc((size_t)(c.NI * c.H1));
    float *tmp = malloc(c.NI * c.H1 * sizeof *tmp);
    for (int64_t k = 0; k < c.NI * c.H1; k++) tmp[k] = 1.0f;
    cr_dropout_forward(tmp, c.mask, tmp, c.NI * c.H1, c.p_drop, &r);
    free(tmp);
    c.len = malloc(c.B * sizeof *c.len), c.dom = malloc(c.B * sizeof *c.dom), c.neg = malloc(c.B * sizeof *c.neg);
    for (int64_t b = 0; b < c.B; b++) {
        c.len[b] = cr_rng_below(&r, (uint32_t)c.L + 1);
        c.dom[b] = (int32_t)cr_rng_below(&r, (uint32_t)c.NDOM);
        c.neg[b] = (int32_t)(c.B + cr_rng_below(&r, (uint32_t)(c.NI - c.B)));
    }
    treg in;
    memset(&in, 0, sizeof in);
    tower_inputs(&c, &in);
    for (int i = 0; i < in.n; i++) {
        tref *t = &in.t[i];
        for (int64_t k = 0; k < t->rows * t->cols; k++) t->p[k] = (float)(0.3 * cr_rng_normal(&r));
    }
    float *lq = reg(&in, "log_q");
    for (int64_t j = 0; j < c.NI; j++) lq[j] = (float)log(1e-4 + 1e-2 * cr_rng_uniform(&r));
    cr_tfm m;
    cr_slab ts, tg[2];
    tower_tfm(&c, &m, &ts, &tg[0]);
    CHECK_OK(cr_slab_like(&tg[1], &ts));
    cr_tfm_init(&m, &ts, &r);
    treg out[2];
    memset(out, 0, sizeof out);
    double loss[2][N_LOSSES];
#ifdef _OPENMP
    int saved = omp_get_max_threads();
#endif
    for (int t = 0; t < 2; t++) {
#ifdef _OPENMP
        omp_set_num_threads(t + 1);
#endif
        tower_run(&c, &in, &m, &ts, &tg[t], &out[t], loss[t]);
    }
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    CHECK_EQ(out[0].n, out[1].n);
    int64_t n_values = 0;
    for (int i = 0; i < out[0].n; i++) {
        const tref *a = &out[0].t[i], *b = &out[1].t[i];
        CHECK_STR(a->name, b->name);
        CHECK_MSG(!memcmp(a->p, b->p, (size_t)(a->rows * a->cols) * sizeof(float)), "%s differs between 1 and 2 threads",
                  a->name);
        n_values += a->rows * a->cols;
    }
    CHECK(!memcmp(loss[0], loss[1], sizeof loss[0]));
    printf("     tower with %lld items, %lld users x %lld history, d %lld: %d tensors (%lld values) and %d losses "
           "bit-identical at 1 and 2 threads (total loss %.6g)\n",
           (long long)c.NI, (long long)c.B, (long long)c.L, (long long)c.D, out[0].n, (long long)n_values, N_LOSSES,
           loss[0][5]);
    for (int i = 0; i < 2; i++) reg_free(&out[i]), cr_slab_free(&tg[i]);
    reg_free(&in);
    cr_slab_free(&ts);
    cfg_free(&c);
}

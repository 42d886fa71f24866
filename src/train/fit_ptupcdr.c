/* fit_ptupcdr.c — fitting PTUPCDR (Zhu et al., "Personalized Transfer of User Preferences for Cross-domain
 * Recommendation", WSDM 2022), implicit-feedback version, into a cr_ptupcdr_model (src/models/ptupcdr.c; the
 * bridge's formulas are in ptupcdr_impl.h).
 *
 * Target domain T: p->domain when >= 0, else the target of p->valid, else an error. The source is every other
 * domain, taken together.
 *
 * Step 1, embeddings: emcdr's (cr_fit_two_sides): BPR-MF on the source events and on T's events, fixed from
 * then on. Each user's history for the encoder: its distinct source training items, the CR_PTUPCDR_HIST most
 * recent (events are in time order per user).
 *
 * Step 2, the bridge (task-oriented): on every target training event (u, i) of the overlapping users (target
 * and source training events), with a negative j drawn from T (cr_sampler, p->neg_alpha; redrawn while it is
 * i, a few times), the loss -log sigmoid(<W_u s_u, q_i - q_j>) is minimised over h's and g's parameters only
 * (s, q fixed), by Adam (lr PTUPCDR_LR, weight decay PTUPCDR_WD; one step per batch, the k-th corrected with
 * t = k: cr_opt_dense_step) on mini-batches of PTUPCDR_BATCH events (mean loss), events shuffled each epoch and
 * negatives drawn from the stream "ptupcdr.<epoch>" of p->seed; weights start from "ptupcdr.init". The stage
 * runs in cr_train_loop for p->epochs epochs with p->valid, p->patience, p->log_path and p->quiet (loss column:
 * mean BPR loss per event); the model callback refreshes the "mapped" rows (users cold in T with source factors)
 * for validation, and they are refreshed again from the kept epoch's nets at the end.
 *
 * Determinism: one thread, fixed order, named streams of one seed: a seed gives the same model at any thread
 * count. */
#include "train_impl.h"

#include "../models/ptupcdr_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PTUPCDR_BATCH 32
#define PTUPCDR_LR CR_PTUPCDR_LR     /* ptupcdr_impl.h */
#define PTUPCDR_WD CR_PTUPCDR_WD
#define PTUPCDR_REDRAWS 5

/* ---- one event ---- */

double cr_ptupcdr_event(const cr_ptupcdr_model *m, cr_ptupcdr_ws *ws, cr_slab *grad, const float *V, int64_t n,
                        const float *s, const float *qi, const float *qj, float scale) {
    const int64_t dim = m->dim;
    cr_ptupcdr_forward(m, ws, V, n, s);
    double x = 0;
    for (int64_t k = 0; k < dim; k++) x += (double)ws->t[k] * ((double)qi[k] - qj[k]);
    /* loss = softplus(-x), stable both ways; d loss / dx = -sigmoid(-x) */
    double loss = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
    float gx = (float)(-scale / (1 + exp(x)));
    /* dt = gx (qi - qj); W_u = g(c): dW[k][l] = dt_k s_l */
    for (int64_t k = 0; k < dim; k++) {
        float dt = gx * (qi[k] - qj[k]);
        for (int64_t l = 0; l < dim; l++) ws->dw[k * dim + l] = dt * s[l];
    }
    cr_mlp_backward(&m->meta, &m->nets, grad, ws->c, 1, ws->meta_pre, ws->meta_acts, ws->dw, ws->dc, ws->scratch);
    /* c = sum_j a_j v_j: da_j = <dc, v_j>; softmax: de_j = a_j (da_j - sum_k a_k da_k) */
    double mean = 0;
    for (int64_t j = 0; j < n; j++) {
        double da = 0;
        for (int64_t k = 0; k < dim; k++) da += (double)ws->dc[k] * V[j * dim + k];
        ws->de[j] = (float)da;
        mean += ws->a[j] * da;
    }
    for (int64_t j = 0; j < n; j++) ws->de[j] = (float)(ws->a[j] * (ws->de[j] - mean));
    cr_mlp_backward(&m->enc, &m->nets, grad, V, n, ws->enc_pre, ws->enc_acts, ws->de, NULL, ws->scratch);
    return loss;
}

/* ---- a batch of events ---- */

cr_status cr_ptupcdr_bws_init(cr_ptupcdr_bws *ws, const cr_ptupcdr_model *m, int64_t cap_batch, int64_t cap_rows) {
    memset(ws, 0, sizeof *ws);
    const int64_t dim = m->dim, ne = cr_mlp_act_size(&m->enc, cap_rows), nm = cr_mlp_act_size(&m->meta, cap_batch);
    /* cr_mlp_backward's scratch: 2 rows x widest layer, for the encoder's rows and for the meta network's */
    int64_t scratch = 2 * (cap_rows * dim > cap_batch * dim * dim ? cap_rows * dim : cap_batch * dim * dim);
    int64_t total = 2 * ne + 2 * cap_rows + 2 * cap_batch * dim + 2 * nm + cap_batch * dim * dim + scratch;
    if (!(ws->buf = cr_malloc((size_t)total * sizeof(float))))
        return cr_fail(CR_ERR_NOMEM, "out of memory for ptupcdr's batch scratch (%lld floats)", (long long)total);
    float *p = ws->buf;
    ws->enc_pre = p, p += ne;
    ws->enc_acts = p, p += ne;
    ws->a = p, p += cap_rows;
    ws->de = p, p += cap_rows;
    ws->C = p, p += cap_batch * dim;
    ws->dC = p, p += cap_batch * dim;
    ws->meta_pre = p, p += nm;
    ws->meta_acts = p, p += nm;
    ws->dW = p, p += cap_batch * dim * dim;
    ws->scratch = p;
    ws->cap_batch = cap_batch, ws->cap_rows = cap_rows, ws->dim = dim;
    return CR_OK;
}

void cr_ptupcdr_bws_free(cr_ptupcdr_bws *ws) {
    if (!ws) return;
    cr_free(ws->buf);
    memset(ws, 0, sizeof *ws);
}

double cr_ptupcdr_batch(const cr_ptupcdr_model *m, cr_ptupcdr_bws *ws, cr_slab *grad, const float *V, const int64_t *hist_off,
                        int64_t B, const float *const *s, const float *const *qi, const float *const *qj, float scale) {
    const int64_t dim = m->dim, R = hist_off[B], dd = dim * dim;
    CR_ASSERT(B >= 1 && B <= ws->cap_batch && R <= ws->cap_rows && dim == ws->dim);
    /* forward: attention scores of every history row, a softmax per event, the pooled vectors C (B, dim) */
    cr_mlp_forward(&m->enc, &m->nets, V, R, ws->enc_pre, ws->enc_acts);
    const float *e = ws->enc_acts + cr_mlp_act_size(&m->enc, R) - R;
    memset(ws->C, 0, (size_t)(B * dim) * sizeof *ws->C);
    for (int64_t k = 0; k < B; k++) {
        const int64_t lo = hist_off[k], hi = hist_off[k + 1];
        CR_ASSERT(hi > lo);
        double mx = e[lo], z = 0;
        for (int64_t j = lo + 1; j < hi; j++) mx = e[j] > mx ? e[j] : mx;
        for (int64_t j = lo; j < hi; j++) z += exp((double)e[j] - mx);
        for (int64_t j = lo; j < hi; j++) ws->a[j] = (float)(exp((double)e[j] - mx) / z);
        float *c = ws->C + k * dim;
        for (int64_t j = lo; j < hi; j++)
            for (int64_t q = 0; q < dim; q++) c[q] += ws->a[j] * V[j * dim + q];
    }
    /* the bridges W (B, dim * dim) = g(C); per event t = W_k s_k, the loss, and dW_k = dt s_k^T */
    cr_mlp_forward(&m->meta, &m->nets, ws->C, B, ws->meta_pre, ws->meta_acts);
    const float *W = ws->meta_acts + cr_mlp_act_size(&m->meta, B) - B * dd;
    double total = 0;
    for (int64_t k = 0; k < B; k++) {
        const float *Wk = W + k * dd, *sk = s[k];
        double x = 0;
        for (int64_t r = 0; r < dim; r++) {
            float t = 0;
            for (int64_t l = 0; l < dim; l++) t += Wk[r * dim + l] * sk[l];
            x += (double)t * ((double)qi[k][r] - qj[k][r]);
        }
        total += x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
        float gx = (float)(-scale / (1 + exp(x)));
        float *dWk = ws->dW + k * dd;
        for (int64_t r = 0; r < dim; r++) {
            float dt = gx * (qi[k][r] - qj[k][r]);
            for (int64_t l = 0; l < dim; l++) dWk[r * dim + l] = dt * sk[l];
        }
    }
    cr_mlp_backward(&m->meta, &m->nets, grad, ws->C, B, ws->meta_pre, ws->meta_acts, ws->dW, ws->dC, ws->scratch);
    /* back through the pooling and each event's softmax, then the encoder on all rows at once */
    for (int64_t k = 0; k < B; k++) {
        const int64_t lo = hist_off[k], hi = hist_off[k + 1];
        const float *dc = ws->dC + k * dim;
        double mean = 0;
        for (int64_t j = lo; j < hi; j++) {
            double da = 0;
            for (int64_t q = 0; q < dim; q++) da += (double)dc[q] * V[j * dim + q];
            ws->de[j] = (float)da;
            mean += ws->a[j] * da;
        }
        for (int64_t j = lo; j < hi; j++) ws->de[j] = (float)(ws->a[j] * (ws->de[j] - mean));
    }
    cr_mlp_backward(&m->enc, &m->nets, grad, V, R, ws->enc_pre, ws->enc_acts, ws->de, NULL, ws->scratch);
    return total;
}

/* ---- the bridge stage ---- */

typedef struct {
    cr_fit fit;                 /* first: the loop's callbacks get &fit back */
    cr_ptupcdr_model *m;
    const float *S, *SQ;        /* (n_users, dim) source user factors, (n_items, dim) source item factors */
    int64_t *hist_ptr;          /* (n_users + 1) */
    int32_t *hist;              /* (hist_ptr[n_users]) each user's history items, most recent first */
    int64_t n_ev;
    int32_t *ev;                /* (2 n_ev) (user, item) training events of the overlapping users */
    int64_t *order;             /* (n_ev) shuffled each epoch */
    float *V;                   /* (PTUPCDR_BATCH * CR_PTUPCDR_HIST, dim) a batch's history vectors */
    cr_ptupcdr_ws ws;           /* one user's bridge (refresh_mapped) */
    cr_ptupcdr_bws bws;         /* a batch's (bridge_epoch) */
    cr_sampler smp;
    cr_slab grad;               /* layout of m->nets */
    cr_optimizer opt;
    uint64_t seed;
} bridge_fit;

/* Gathers user u's history vectors into V; returns their count. */
static int64_t gather(bridge_fit *b, int64_t u, float *V) {
    const int64_t dim = b->m->dim, n = b->hist_ptr[u + 1] - b->hist_ptr[u];
    for (int64_t j = 0; j < n; j++)
        memcpy(V + j * dim, b->SQ + (int64_t)b->hist[b->hist_ptr[u] + j] * dim, (size_t)dim * sizeof(float));
    return n;
}

/* Recomputes the "mapped" row of every user cold in T with source factors. */
static void refresh_mapped(bridge_fit *b) {
    cr_ptupcdr_model *m = b->m;
    const int64_t dim = m->dim;
    float *M = cr_slab_at(&m->factors, 2);
    for (int64_t u = 0; u < m->base.n_users; u++) {
        if (m->tgt_known[u] || !m->src_known[u]) continue;
        int64_t n = gather(b, u, b->V);
        if (n == 0) continue;   /* src_known implies source events, so a history; kept zero otherwise */
        cr_ptupcdr_forward(m, &b->ws, b->V, n, b->S + u * dim);
        memcpy(M + u * dim, b->ws.t, (size_t)dim * sizeof(float));
    }
}

static cr_status bridge_epoch(cr_fit *f, int64_t epoch, double *loss) {
    bridge_fit *b = (bridge_fit *)f;
    cr_ptupcdr_model *m = b->m;
    const int64_t dim = m->dim, n = b->n_ev;
    const float *Q = cr_slab_at(&m->factors, 1);
    char name[48];
    cr_rng r;
    snprintf(name, sizeof name, "ptupcdr.%lld", (long long)epoch);
    cr_rng_named(&r, b->seed, name);
    /* Fisher-Yates from the identity, so epoch e's order depends on (seed, e) only */
    for (int64_t k = 0; k < n; k++) b->order[k] = k;
    for (int64_t k = n - 1; k > 0; k--) {
        int64_t j = (int64_t)cr_rng_below(&r, (uint32_t)(k + 1));
        int64_t tmp = b->order[k];
        b->order[k] = b->order[j];
        b->order[j] = tmp;
    }
    double total = 0;
    int64_t off[PTUPCDR_BATCH + 1];
    const float *su[PTUPCDR_BATCH], *qi[PTUPCDR_BATCH], *qj[PTUPCDR_BATCH];
    for (int64_t s = 0; s < n; s += PTUPCDR_BATCH) {
        int64_t B = n - s < PTUPCDR_BATCH ? n - s : PTUPCDR_BATCH;
        memset(b->grad.data, 0, (size_t)b->grad.size * sizeof(float));
        off[0] = 0;
        for (int64_t k = 0; k < B; k++) {
            int64_t e = b->order[s + k];
            int32_t u = b->ev[2 * e], i = b->ev[2 * e + 1], j = cr_sampler_draw(&b->smp, &r);
            for (int t = 0; t < PTUPCDR_REDRAWS && j == i; t++) j = cr_sampler_draw(&b->smp, &r);
            off[k + 1] = off[k] + gather(b, u, b->V + off[k] * dim);
            su[k] = b->S + (int64_t)u * dim, qi[k] = Q + (int64_t)i * dim, qj[k] = Q + (int64_t)j * dim;
        }
        total += cr_ptupcdr_batch(m, &b->bws, &b->grad, b->V, off, B, su, qi, qj, 1.0f / (float)B);
        cr_opt_dense_step(&b->opt, &m->nets, &b->grad);    /* Adam at PTUPCDR_LR, the optimizer's lr */
    }
    *loss = n ? total / (double)n : NAN;
    return CR_OK;
}

static const cr_model *bridge_model(cr_fit *f) {
    bridge_fit *b = (bridge_fit *)f;
    refresh_mapped(b);
    return &b->m->base;
}

static void bridge_fit_free(bridge_fit *b) {
    cr_free(b->hist_ptr);
    cr_free(b->hist);
    cr_free(b->ev);
    cr_free(b->order);
    cr_free(b->V);
    cr_ptupcdr_ws_free(&b->ws);
    cr_ptupcdr_bws_free(&b->bws);
    cr_sampler_free(&b->smp);
    cr_slab_free(&b->grad);
    cr_opt_free(&b->opt);
}

/* Each source-known user's distinct source items, most recent first, at most CR_PTUPCDR_HIST; and the target
 * events of the overlapping users (those with a history). */
static cr_status build_data(bridge_fit *b, const cr_interactions *v, int32_t T) {
    const cr_ptupcdr_model *m = b->m;
    b->hist_ptr = cr_malloc(((size_t)v->n_users + 1) * sizeof *b->hist_ptr);
    b->hist = cr_malloc(((size_t)v->n_users * CR_PTUPCDR_HIST + 1) * sizeof *b->hist);
    if (!b->hist_ptr || !b->hist) return cr_fail(CR_ERR_NOMEM, "out of memory for ptupcdr's histories (%lld users)", (long long)v->n_users);
    int64_t at = 0, n_ev = 0;
    b->hist_ptr[0] = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        int64_t first = at;
        for (int64_t e = v->user_ptr[u + 1] - 1; m->src_known[u] && e >= v->user_ptr[u] && at - first < CR_PTUPCDR_HIST; e--) {
            int32_t i = v->user_items[e];
            if (v->item_domain[i] == T) continue;
            int dup = 0;
            for (int64_t k = first; k < at && !dup; k++) dup = b->hist[k] == i;
            if (!dup) b->hist[at++] = i;
        }
        b->hist_ptr[u + 1] = at;
        if (m->tgt_known[u] && at > first)
            for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) n_ev += v->item_domain[v->user_items[e]] == T;
    }
    b->n_ev = n_ev;
    b->ev = cr_malloc((2 * (size_t)n_ev + 1) * sizeof *b->ev);
    b->order = cr_malloc(((size_t)n_ev + 1) * sizeof *b->order);
    if (!b->ev || !b->order) return cr_fail(CR_ERR_NOMEM, "out of memory for ptupcdr's %lld bridge events", (long long)n_ev);
    at = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        if (!m->tgt_known[u] || b->hist_ptr[u + 1] == b->hist_ptr[u]) continue;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
            if (v->item_domain[v->user_items[e]] == T) b->ev[at++] = (int32_t)u, b->ev[at++] = v->user_items[e];
    }
    return CR_OK;
}

cr_status cr_fit_ptupcdr(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    *out = NULL;
    const cr_interactions *v = train;
    int32_t T = cr_train_target(p);
    if (T < 0) return cr_fail(CR_ERR_ARG, "ptupcdr needs a target domain (--domain T)");
    if (p->dim > CR_PTUPCDR_MAX_DIM)
        return cr_fail(CR_ERR_ARG, "ptupcdr's dimension must be 1..%d (its meta network has dim^3 weights; got %lld)",
                       CR_PTUPCDR_MAX_DIM, (long long)p->dim);
    const char *tname = cr_dataset_domain_name(d, T);

    cr_mf_model *ms = NULL, *mt = NULL;
    cr_ptupcdr_model *m = NULL;
    bridge_fit b;
    memset(&b, 0, sizeof b);
    cr_status st = cr_fit_two_sides(&ms, &mt, d, v, p, T, "ptupcdr");
    if (st) return st;
    if ((st = cr_ptupcdr_new(&m, v->n_users, v->n_items, v->n_domains, p->dim, T))) goto done;
    m->base.dataset_crc = cr_dataset_file_crc(d);      /* validation checks it against the split's dataset */
    cr_mf_take(mt, 0, cr_slab_at(&m->factors, 0), v->n_users, m->tgt_known);
    cr_mf_take(mt, 1, cr_slab_at(&m->factors, 1), v->n_items, NULL);
    memcpy(m->src_known, ms->user_known, (size_t)v->n_users);
    cr_model_free(&mt->base);
    mt = NULL;

    const int64_t dim = p->dim;
    b.m = m;
    b.seed = p->seed;
    b.S = cr_slab_at(&ms->params, 0);
    b.SQ = cr_slab_at(&ms->params, 1);
    if ((st = build_data(&b, v, T))) goto done;
    if (b.n_ev == 0) {
        st = cr_fail(CR_ERR_ARG, "ptupcdr: no user has training events both in '%s' and in another domain", tname);
        goto done;
    }
    b.V = cr_malloc((size_t)(PTUPCDR_BATCH * CR_PTUPCDR_HIST * dim) * sizeof(float));
    if (!b.V) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory for ptupcdr's bridge");
        goto done;
    }
    if ((st = cr_ptupcdr_ws_init(&b.ws, m, CR_PTUPCDR_HIST)) ||
        (st = cr_ptupcdr_bws_init(&b.bws, m, PTUPCDR_BATCH, PTUPCDR_BATCH * CR_PTUPCDR_HIST)) || (st = cr_sampler_init(&b.smp, v, T, p->neg_alpha)) ||
        (st = cr_slab_like(&b.grad, &m->nets)))
        goto done;
    cr_rng r;
    cr_rng_named(&r, p->seed, "ptupcdr.init");
    cr_mlp_init(&m->enc, &m->nets, &r);
    cr_mlp_init(&m->meta, &m->nets, &r);
    cr_opt_params op = cr_opt_default_params(CR_OPT_ADAM);
    op.lr = PTUPCDR_LR;
    op.weight_decay = PTUPCDR_WD;
    if ((st = cr_opt_init(&b.opt, &m->nets, &op))) goto done;

    char settings[256];
    snprintf(settings, sizeof settings,
             "ptupcdr: target %s, dim %lld, bpr (%s lr %g) on source and target, bridge on %lld target events of "
             "overlapping users (adam lr %g, batch %d), %lld epochs max, patience %d",
             tname, (long long)dim, p->optimizer ? p->optimizer : "adagrad", p->lr > 0 ? p->lr : 0.05, (long long)b.n_ev,
             (double)PTUPCDR_LR, PTUPCDR_BATCH, (long long)p->epochs, p->patience);
    b.fit.epoch = bridge_epoch;
    b.fit.model = bridge_model;
    b.fit.params = &m->nets;
    b.fit.opt = &b.opt;
    cr_loop_params lp = cr_loop_params_of(p);
    cr_loop_report rep;
    if ((st = cr_train_loop(&b.fit, p->valid, &lp, settings, &rep))) goto done;
    refresh_mapped(&b);     /* from the kept epoch's nets */
    *out = &m->base;
    m = NULL;
done:
    bridge_fit_free(&b);
    if (ms) cr_model_free(&ms->base);
    if (mt) cr_model_free(&mt->base);
    if (m) cr_model_free(&m->base);
    return st;
}

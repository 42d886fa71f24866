/* fit_emcdr.c — fitting EMCDR (Man et al., "Cross-Domain Recommendation: An Embedding and Mapping Approach",
 * IJCAI 2017), implicit-feedback version, into a cr_emcdr_model (src/models/emcdr.c).
 *
 * Target domain T: p->domain when >= 0, else the target of p->valid, else an error. The source is every other
 * domain, taken together.
 *
 * Step 1, embeddings: BPR-MF (cr_fit_bpr) on the source events and BPR-MF on the target events, each with
 * p's dim, optimizer, lr, reg, neg_alpha and epochs. The source fit runs on a filtered copy of the training
 * CSR that holds only source-domain events (same users and items), with domain -1, so negatives come from the
 * positive's own source domain; the target fit runs on the training view with domain T, which uses exactly
 * T's events. Both run quiet, without a log and without validation: the split's validation users are scored
 * in T, which a source model cannot do, and the target model alone cannot represent the cold users the split
 * validates on. The source fit uses seed p->seed ^ EMCDR_SRC_SEED so the two fits draw different streams.
 *
 * Step 2, mapping: an MLP f (dim -> 2 dim, tanh -> dim) from a user's source vector to its target vector,
 * fitted with mean squared error on the overlapping users (training events on both sides), Adam (lr
 * EMCDR_MAP_LR, weight decay EMCDR_MAP_WD; one step per batch, the k-th corrected with t = k), mini-batches of
 * EMCDR_BATCH users (cr_emcdr_map_grad, then cr_opt_dense_step), order shuffled each epoch from
 * the stream "emcdr.map.<epoch>" of p->seed; weights start from "emcdr.map.init". This stage runs in
 * cr_train_loop for p->epochs epochs (--epochs is reused: the same count for the two BPR fits and for the
 * mapping), with p->valid, p->patience, p->log_path and p->quiet: the loss column of the table and the log is
 * the mapping's mean MSE per (user, factor), before each batch's update, and early stopping keeps the mapping
 * of the epoch with the best validation NDCG@10 of the whole model (target factors for warm users, f for
 * cold ones).
 *
 * Determinism: every stage runs on one thread in a fixed order from named streams of one seed, so a seed
 * gives the same model at any thread count.
 *
 * Step 1 is cr_fit_two_sides (train_impl.h), shared with ptupcdr (fit_ptupcdr.c). */
#include "train_impl.h"

#include "../models/emcdr_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define EMCDR_BATCH 64
#define EMCDR_MAP_LR CR_EMCDR_MAP_LR      /* emcdr_impl.h */
#define EMCDR_MAP_WD CR_EMCDR_MAP_WD
#define EMCDR_SRC_SEED 0x5eed5eed5eed5eedULL

/* ---- the source-only view ---- */

/* A cr_interactions holding the events of v whose item is outside domain `target`, plus the arrays it owns. */
typedef struct {
    cr_interactions v;
    int64_t *user_ptr, *item_ptr, *user_times;
    int32_t *user_items, *item_users;
    float *user_values;
} src_view;

static void src_view_free(src_view *s) {
    cr_free(s->user_ptr);
    cr_free(s->item_ptr);
    cr_free(s->user_times);
    cr_free(s->user_items);
    cr_free(s->item_users);
    cr_free(s->user_values);
    memset(s, 0, sizeof *s);
}

static cr_status src_view_init(src_view *s, const cr_interactions *v, int32_t target) {
    memset(s, 0, sizeof *s);
    int64_t n = 0;
    for (int64_t e = 0; e < v->n_inter; e++) n += v->item_domain[v->user_items[e]] != target;
    s->user_ptr = cr_malloc(((size_t)v->n_users + 1) * sizeof *s->user_ptr);
    s->item_ptr = cr_malloc(((size_t)v->n_items + 1) * sizeof *s->item_ptr);
    s->user_times = cr_malloc(((size_t)n + 1) * sizeof *s->user_times);
    s->user_items = cr_malloc(((size_t)n + 1) * sizeof *s->user_items);
    s->item_users = cr_malloc(((size_t)n + 1) * sizeof *s->item_users);
    s->user_values = cr_malloc(((size_t)n + 1) * sizeof *s->user_values);
    if (!s->user_ptr || !s->item_ptr || !s->user_times || !s->user_items || !s->item_users || !s->user_values) {
        src_view_free(s);
        return cr_fail(CR_ERR_NOMEM, "out of memory for a source-only view (%lld events)", (long long)n);
    }
    /* user side: the kept events of each user, in their original (time) order */
    int64_t at = 0;
    s->user_ptr[0] = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            if (v->item_domain[i] == target) continue;
            s->user_items[at] = i;
            s->user_times[at] = v->user_times ? v->user_times[e] : 0;
            s->user_values[at] = v->user_values ? v->user_values[e] : 1.0f;
            at++;
        }
        s->user_ptr[u + 1] = at;
    }
    /* item side: an item keeps all its events (source item) or none (target item); users stay ascending */
    at = 0;
    s->item_ptr[0] = 0;
    for (int64_t i = 0; i < v->n_items; i++) {
        if (v->item_domain[i] != target)
            for (int64_t e = v->item_ptr[i]; e < v->item_ptr[i + 1]; e++) s->item_users[at++] = v->item_users[e];
        s->item_ptr[i + 1] = at;
    }
    CR_ASSERT(at == n);
    s->v = *v;
    s->v.n_inter = n;
    s->v.user_ptr = s->user_ptr;
    s->v.user_items = s->user_items;
    s->v.user_times = s->user_times;
    s->v.user_values = s->user_values;
    s->v.item_ptr = s->item_ptr;
    s->v.item_users = s->item_users;
    return CR_OK;
}

/* ---- the mapping stage ---- */

double cr_emcdr_map_grad(const cr_emcdr_model *m, cr_slab *grad, const float *x, const float *t, int64_t B, float *pre,
                         float *acts, float *dy, float *scratch) {
    const int64_t dim = m->dim;
    cr_mlp_forward(&m->mlp, &m->map, x, B, pre, acts);
    /* with B rows the output block is the last B * dim floats of the first cr_mlp_act_size(B) */
    const float *y = acts + cr_mlp_act_size(&m->mlp, B) - B * dim;     /* (B, dim) */
    double l = cr_mse(dy, y, t, B * dim);
    cr_mlp_backward(&m->mlp, &m->map, grad, x, B, pre, acts, dy, NULL, scratch);
    return l;
}

typedef struct {
    cr_fit fit;                 /* first: the loop's callbacks get &fit back */
    cr_emcdr_model *m;
    cr_slab grad;               /* layout of m->map */
    cr_optimizer opt;
    uint64_t seed;
    int64_t n_pairs;
    int32_t *users;             /* (n_pairs) the overlapping users; shuffled each epoch */
    float *x, *t, *dy;          /* (EMCDR_BATCH, dim) source vectors, target vectors, d loss / d output */
    float *pre, *acts;          /* (cr_mlp_act_size(EMCDR_BATCH)) */
    float *scratch;             /* (2 * EMCDR_BATCH * hidden) for cr_mlp_backward */
} map_fit;

static cr_status map_epoch(cr_fit *f, int64_t epoch, double *loss) {
    map_fit *b = (map_fit *)f;
    cr_emcdr_model *m = b->m;
    const int64_t dim = m->dim, n = b->n_pairs;
    const float *P = cr_slab_at(&m->factors, 0), *S = cr_slab_at(&m->factors, 2);  /* (n_users, dim) each */
    char name[48];
    cr_rng r;
    snprintf(name, sizeof name, "emcdr.map.%lld", (long long)epoch);
    cr_rng_named(&r, b->seed, name);
    /* Fisher-Yates from the ascending order, so epoch e's order depends on (seed, e) only */
    int64_t at = 0;
    for (int64_t u = 0; u < m->base.n_users; u++)
        if (m->tgt_known[u] && m->src_known[u]) b->users[at++] = (int32_t)u;
    for (int64_t k = n - 1; k > 0; k--) {
        int64_t j = (int64_t)cr_rng_below(&r, (uint32_t)(k + 1));
        int32_t tmp = b->users[k];
        b->users[k] = b->users[j];
        b->users[j] = tmp;
    }
    double total = 0.0;
    for (int64_t s = 0; s < n; s += EMCDR_BATCH) {
        int64_t B = n - s < EMCDR_BATCH ? n - s : EMCDR_BATCH;
        for (int64_t k = 0; k < B; k++) {
            int64_t u = b->users[s + k];
            memcpy(b->x + k * dim, S + u * dim, (size_t)dim * sizeof(float));
            memcpy(b->t + k * dim, P + u * dim, (size_t)dim * sizeof(float));
        }
        memset(b->grad.data, 0, (size_t)b->grad.size * sizeof(float));
        total += cr_emcdr_map_grad(m, &b->grad, b->x, b->t, B, b->pre, b->acts, b->dy, b->scratch) * (double)B;
        cr_opt_dense_step(&b->opt, &m->map, &b->grad);     /* Adam at EMCDR_MAP_LR, the optimizer's lr */
    }
    *loss = n ? total / (double)n : NAN;
    return CR_OK;
}

static const cr_model *map_model(cr_fit *f) { return &((map_fit *)f)->m->base; }

static void map_fit_free(map_fit *b) {
    cr_slab_free(&b->grad);
    cr_opt_free(&b->opt);
    cr_free(b->users);
    cr_free(b->x);
    cr_free(b->t);
    cr_free(b->dy);
    cr_free(b->pre);
    cr_free(b->acts);
    cr_free(b->scratch);
}

void cr_mf_take(const cr_mf_model *mf, int t, float *dst, int64_t rows, uint8_t *known) {
    memcpy(dst, cr_slab_at(&mf->params, t), (size_t)(rows * mf->dim) * sizeof(float));
    if (known) memcpy(known, mf->user_known, (size_t)mf->base.n_users);
}

cr_status cr_fit_two_sides(cr_mf_model **src_out, cr_mf_model **tgt_out, const cr_dataset *d, const cr_interactions *v,
                           const cr_train_params *p, int32_t T, const char *who) {
    *src_out = *tgt_out = NULL;
    if (v->n_domains < 2) return cr_fail(CR_ERR_ARG, "%s needs a source domain besides the target (the data has one domain)", who);
    src_view sv;
    cr_model *src = NULL, *tgt = NULL;
    cr_status st = src_view_init(&sv, v, T);
    if (st) return st;
    if (sv.v.n_inter == 0) {
        st = cr_fail(CR_ERR_ARG, "%s: no training events outside the target domain '%s'", who, cr_dataset_domain_name(d, T));
        goto done;
    }
    cr_train_params ip = *p;
    ip.model = "bpr";
    ip.valid = NULL;
    ip.quiet = 1;
    ip.log_path = NULL;
    ip.checkpoint = ip.resume = NULL;   /* the mapping stage's loop owns the run's state file */
    ip.pause_after = 0;
    ip.domain = -1;
    ip.seed = p->seed ^ EMCDR_SRC_SEED;
    if ((st = cr_fit_bpr(&src, d, &sv.v, &ip))) goto done;
    ip.domain = T;
    ip.seed = p->seed;
    if ((st = cr_fit_bpr(&tgt, d, v, &ip))) goto done;
    *src_out = (cr_mf_model *)src;
    *tgt_out = (cr_mf_model *)tgt;
    src = tgt = NULL;
done:
    src_view_free(&sv);
    cr_model_free(src);
    cr_model_free(tgt);
    return st;
}

cr_status cr_fit_emcdr(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    *out = NULL;
    const cr_interactions *v = train;
    int32_t T = cr_train_target(p);
    if (T < 0) return cr_fail(CR_ERR_ARG, "emcdr needs a target domain (--domain T)");
    const char *tname = cr_dataset_domain_name(d, T);

    cr_mf_model *ms = NULL, *mt = NULL;
    cr_emcdr_model *m = NULL;
    map_fit b;
    memset(&b, 0, sizeof b);

    /* step 1: the two embeddings */
    cr_status st = cr_fit_two_sides(&ms, &mt, d, v, p, T, "emcdr");
    if (st) return st;

    if ((st = cr_emcdr_new(&m, v->n_users, v->n_items, v->n_domains, p->dim, 2 * p->dim, T))) goto done;
    m->base.dataset_crc = cr_dataset_file_crc(d);      /* validation checks it against the split's dataset */
    cr_mf_take(mt, 0, cr_slab_at(&m->factors, 0), v->n_users, m->tgt_known);
    cr_mf_take(mt, 1, cr_slab_at(&m->factors, 1), v->n_items, NULL);
    cr_mf_take(ms, 0, cr_slab_at(&m->factors, 2), v->n_users, m->src_known);
    cr_model_free(&ms->base);
    cr_model_free(&mt->base);
    ms = mt = NULL;

    /* step 2: the mapping, on the overlapping users */
    int64_t n_pairs = 0;
    for (int64_t u = 0; u < v->n_users; u++) n_pairs += m->tgt_known[u] && m->src_known[u];
    if (n_pairs == 0) {
        st = cr_fail(CR_ERR_ARG, "emcdr: no user has training events both in '%s' and in another domain", tname);
        goto done;
    }
    const int64_t dim = p->dim, hidden = 2 * p->dim, na = cr_mlp_act_size(&m->mlp, EMCDR_BATCH);
    b.m = m;
    b.seed = p->seed;
    b.n_pairs = n_pairs;
    b.users = cr_malloc((size_t)n_pairs * sizeof *b.users);
    b.x = cr_malloc((size_t)(EMCDR_BATCH * dim) * sizeof(float));
    b.t = cr_malloc((size_t)(EMCDR_BATCH * dim) * sizeof(float));
    b.dy = cr_malloc((size_t)(EMCDR_BATCH * dim) * sizeof(float));
    b.pre = cr_malloc((size_t)na * sizeof(float));
    b.acts = cr_malloc((size_t)na * sizeof(float));
    b.scratch = cr_malloc((size_t)(2 * EMCDR_BATCH * hidden) * sizeof(float));
    if (!b.users || !b.x || !b.t || !b.dy || !b.pre || !b.acts || !b.scratch) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory for emcdr's mapping (%lld users)", (long long)n_pairs);
        goto done;
    }
    if ((st = cr_slab_like(&b.grad, &m->map))) goto done;
    cr_rng r;
    cr_rng_named(&r, p->seed, "emcdr.map.init");
    cr_mlp_init(&m->mlp, &m->map, &r);
    cr_opt_params op = cr_opt_default_params(CR_OPT_ADAM);
    op.lr = EMCDR_MAP_LR;
    op.weight_decay = EMCDR_MAP_WD;
    if ((st = cr_opt_init(&b.opt, &m->map, &op))) goto done;

    char settings[256];
    snprintf(settings, sizeof settings,
             "emcdr: target %s, dim %lld, bpr (%s lr %g) on source and target, mapping %lld -> %lld tanh -> %lld on %lld "
             "overlapping users (adam lr %g, batch %d), %lld epochs max, patience %d",
             tname, (long long)dim, p->optimizer ? p->optimizer : "adagrad", p->lr > 0 ? p->lr : 0.05, (long long)dim, (long long)hidden,
             (long long)dim, (long long)n_pairs, (double)EMCDR_MAP_LR, EMCDR_BATCH, (long long)p->epochs, p->patience);
    b.fit.epoch = map_epoch;
    b.fit.model = map_model;
    b.fit.params = &m->map;
    b.fit.opt = &b.opt;
    cr_loop_params lp = cr_loop_params_of(p);
    cr_loop_report rep;
    if ((st = cr_train_loop(&b.fit, p->valid, &lp, settings, &rep))) goto done;
    *out = &m->base;
    m = NULL;
done:
    map_fit_free(&b);
    if (ms) cr_model_free(&ms->base);
    if (mt) cr_model_free(&mt->base);
    if (m) cr_model_free(&m->base);
    return st;
}

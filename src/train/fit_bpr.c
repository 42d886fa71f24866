/* fit_bpr.c — BPR-MF: matrix factorisation fitted to pairwise preferences with sampled negatives (Rendle et
 * al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", 2009).
 *
 * The model is a cr_mf_model of type "bpr" (src/models/mf.c): score(u, i) = <p_u, q_i>. One sample is a
 * training event (u, i) and a negative j; with x = <p_u, q_i - q_j> and c = 1 - sigmoid(x):
 *     loss = -log sigmoid(x)         d/dp_u = -c (q_i - q_j)     d/dq_i = -c p_u     d/dq_j = c p_u
 * plus the L2 term (reg/2)(|p_u|^2 + |q_i|^2 + |q_j|^2) on the three touched rows, which the optimizer applies
 * as weight decay. Each sample counts one optimizer step (cr_opt_step, before its updates, so that Adam's bias
 * correction of the k-th sample uses t = k) and updates its three rows through cr_opt_update (lazy: only those
 * rows and their moments change): a batch is one sample (cr_mf_pair_step, train_impl.h).
 *
 * An epoch is n samples, n the number of training events (of the trained domain): each draws an event
 * uniformly (a user with more events is drawn more often, a repeated event counts each time), then a negative
 * from the sampler of the positive's domain, weighted by (training count + 1)^neg_alpha. With --domain T
 * (target-only) only T's events are used and negatives come from T. With all domains, negatives still come
 * from the positive's own domain: BPR then learns to rank items within a domain, which is how the model is
 * evaluated (candidates are one domain's items), and a cross-domain negative would mostly teach which domain
 * a user is active in. A negative the user has a training event with (of the used ones) is redrawn up to 10
 * times; a sample still without a negative is skipped (it happens only for users who have nearly every item of
 * a domain). With in-batch sampling (p->inbatch = B > 0) the samples go in batches of B and a negative is
 * another sample's positive from the same batch (cr_inbatch_draw), of the positive's domain and not the user's
 * — so items are drawn in proportion to their training events; when the batch offers none after the redraws,
 * the sampler above gives one.
 *
 * Determinism: the samples are processed in order on one thread (p->threads only affects validation), the
 * initial factors come from the stream "bpr.init", epoch e's events from "bpr.events.<e>" and its negatives
 * from "bpr.negatives.<e>" of one seed, so a seed gives byte-identical factors at any thread count. The epoch
 * runs as a short software pipeline (draw, read, prefetch a few samples ahead of the update) because an update
 * is cheap next to the cache misses of its random rows; it applies the samples in the same order as a plain
 * loop would. Factors start as N(0, 0.1^2); rows that training never touches (users without events, items
 * outside a target-only model's domain) are zero.
 *
 * Early stopping and the per-epoch table are cr_train_loop's (train.h): the loop keeps the parameter slab of
 * the epoch with the best validation NDCG@10. The loss it reports is the mean -log sigmoid(x) of the epoch's
 * samples, before each sample's update, without the L2 term.
 *
 * The same routine fits cmf (fit_cmf.c) through cr_fit_mf_pairs with a loss weight per domain: a sample of
 * domain d has its data term, and so its three gradients, multiplied by w_d (the L2 weight decay is not
 * weighted), and the reported loss is the w-weighted mean. Events of a domain with w_d = 0 are not used at
 * all, as if they were outside the trained domain. With no weights (bpr) nothing is multiplied. */
#include "train_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The `omp simd` loops below are hints. Sanitizer builds (null, alignment and pointer-overflow checks on every
 * load) keep clang from vectorising them, which it reports as an error under -Werror; that loss is harmless. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#define BPR_REDRAWS 10
#define BPR_DEFAULT_REG 1e-4
#define BPR_DEFAULT_LR 0.05
#define BPR_INIT_STD 0.1

/* The margin x = <p_u, q_i - q_j>, its c = sigmoid(-x) and the loss softplus(-x). Not inlined, so that the
 * reduction's order, and with it every bit of x, is the same in cr_bpr_grad and in sgd_pair_step. */
__attribute__((noinline)) static float bpr_margin(const float *restrict pu, const float *restrict qi, const float *restrict qj,
                                                  int64_t dim, float *c_out) {
    float x = 0.0f;
    CR_OMP(omp simd reduction(+ : x))
    for (int64_t k = 0; k < dim; k++) x += pu[k] * (qi[k] - qj[k]);
    /* From e = exp(-|x|) <= 1 nothing overflows: c = sigmoid(-x), loss = log(1 + exp(-x)) = softplus(-x). */
    float e = expf(-fabsf(x));
    if (x >= 0) {
        *c_out = e / (1.0f + e);
        return log1pf(e);
    }
    *c_out = 1.0f / (1.0f + e);
    return -x + log1pf(e);
}

float cr_bpr_grad(const float *restrict pu, const float *restrict qi, const float *restrict qj, int64_t dim,
                  float *restrict gu, float *restrict gi, float *restrict gj) {
    float c, loss = bpr_margin(pu, qi, qj, dim, &c);
    CR_OMP(omp simd)
    for (int64_t k = 0; k < dim; k++) {
        gu[k] = -c * (qi[k] - qj[k]);
        gi[k] = -c * pu[k];
        gj[k] = c * pu[k];
    }
    return loss;
}

/* Who counts the optimizer's steps: the sample itself, the sample atomically (hogwild workers sharing an Adam
 * optimizer, whose bias correction reads the count), or the worker's caller once per run (hogwild with sgd or
 * adagrad, which never read it: one contended atomic per sample would cost more than the update). */
enum { STEP_OWN, STEP_SHARED, STEP_CALLER };

/* One sample (cr_mf_pair_step, train_impl.h), rows given by slab offsets. The optimizer step is counted before
 * the updates, so Adam's bias correction of sample k uses t = k. A weight of exactly 1 (bpr) multiplies
 * nothing, which is the same in every bit. */
static inline float pair_step(cr_optimizer *o, cr_slab *P, int64_t ou, int64_t oi, int64_t oj, int64_t dim, float w, float lr,
                              float *grad, int step_mode) {
    float *gu = grad, *gi = gu + dim, *gj = gi + dim;
    if (step_mode == STEP_SHARED) __atomic_fetch_add(&o->step, 1, __ATOMIC_RELAXED);
    else if (step_mode == STEP_OWN) cr_opt_step(o);
    float l = cr_bpr_grad(P->data + ou, P->data + oi, P->data + oj, dim, gu, gi, gj);
    /* the weight scales the data term, hence its gradients; the optimizer's L2 stays unweighted */
    if (w != 1.0f)
        for (int64_t k = 0; k < 3 * dim; k++) grad[k] *= w;    /* gu, gi, gj */
    /* all three gradients come from the parameters before this sample's update */
    cr_opt_update(o, P, ou, gu, dim, lr);
    cr_opt_update(o, P, oi, gi, dim, lr);
    cr_opt_update(o, P, oj, gj, dim, lr);
    return l;
}

/* pair_step for plain SGD in one pass over the three rows, without gradient buffers: the same operations on the
 * same values as cr_bpr_grad followed by cr_opt_update's SGD case, so the same bits (the rows are distinct: j is
 * never the user's item i, and p_u lives in another tensor). */
static inline float sgd_pair_step(cr_slab *P, int64_t ou, int64_t oi, int64_t oj, int64_t dim, float w, float lr, float wd) {
    float *restrict pu = P->data + ou, *restrict qi = P->data + oi, *restrict qj = P->data + oj;
    float c, l = bpr_margin(pu, qi, qj, dim, &c);
    /* the weight scales the data term as pair_step does; multiplying by w = 1 (bpr) is exact */
    CR_OMP(omp simd)
    for (int64_t k = 0; k < dim; k++) {
        float u = pu[k], a = qi[k], b = qj[k];
        float gu = -c * (a - b) * w, ga = -c * u * w, gb = c * u * w;
        pu[k] = u - lr * (gu + wd * u);
        qi[k] = a - lr * (ga + wd * a);
        qj[k] = b - lr * (gb + wd * b);
    }
    return l;
}

float cr_mf_pair_step(cr_optimizer *o, cr_slab *params, int64_t dim, int32_t u, int32_t i, int32_t j, float w, float lr,
                      float *grad) {
    const int64_t uo = params->t[0].offset, io = params->t[1].offset;
    return pair_step(o, params, uo + (int64_t)u * dim, io + (int64_t)i * dim, io + (int64_t)j * dim, dim, w, lr, grad, STEP_OWN);
}

typedef struct {
    cr_fit fit;                 /* first: the loop's callbacks get &fit back */
    cr_mf_model *m;
    cr_optimizer opt;
    float lr;
    uint64_t seed;
    int64_t n_ev;               /* training events used (of the trained domain) */
    int32_t *ev;                /* (n_ev, 2) user and item of each used event (one cache line for both) */
    uint64_t *pairs;            /* (pair_mask + 1) set of the used (user, item) pairs: (u << 32 | i) + 1, 0 empty */
    uint64_t pair_mask;         /* slots - 1, slots a power of two, at most half full */
    cr_sampler *samplers;       /* (n_domains) by the positive's domain (all domains), or (1) for domain >= 0 */
    int64_t n_samplers;
    const int32_t *item_domain; /* (n_items) */
    int32_t domain;
    const float *weight;        /* (n_domains) loss weight of each domain (cmf), or NULL: all 1 (bpr) */
    float *grad;                /* (workers, 3, dim) gradients of p_u, q_i, q_j, per worker */
    int64_t inbatch;            /* > 0: in-batch negatives from batches of this many samples */
    int64_t *batch_ev;          /* (workers, 2, inbatch) events of the current and the previous batch */
    int32_t *batch_items;       /* (workers, 2, inbatch) their items */
    int workers;                /* 1, or the thread count with hogwild */
    int64_t skipped;            /* samples without an acceptable negative, all epochs */
} bpr_fit;

/* The set of used (user, item) pairs is an open-addressed table with linear probing: a membership test is
 * one random access, which the sample pipeline prefetches (a binary search in the user's sorted item list
 * was a chain of dependent cache misses, most of an epoch's time for users with long lists). */
static uint64_t pair_key(int32_t u, int32_t i) { return ((uint64_t)(uint32_t)u << 32 | (uint32_t)i) + 1; }

static uint64_t pair_slot(const bpr_fit *b, uint64_t key) { return (key * 0x9E3779B97F4A7C15ull >> 20) & b->pair_mask; }

static int has_pair(const bpr_fit *b, int32_t u, int32_t i) {
    uint64_t key = pair_key(u, i);
    for (uint64_t s = pair_slot(b, key);; s = (s + 1) & b->pair_mask) {
        if (b->pairs[s] == key) return 1;
        if (b->pairs[s] == 0) return 0;
    }
}

static void add_pair(bpr_fit *b, int32_t u, int32_t i) {
    uint64_t key = pair_key(u, i), s = pair_slot(b, key);
    while (b->pairs[s] != 0 && b->pairs[s] != key) s = (s + 1) & b->pair_mask;
    b->pairs[s] = key;
}

/* Uniform in [0, n), n >= 1. cr_rng_below is unbiased but 32-bit; beyond that the modulo bias is < 2^-31. */
static int64_t draw_below(cr_rng *r, int64_t n) {
    if (n <= (int64_t)UINT32_MAX) return (int64_t)cr_rng_below(r, (uint32_t)n);
    return (int64_t)(cr_rng_u64(r) % (uint64_t)n);
}

/* Asks for the cache lines of n bytes at x. */
static inline void prefetch(const void *x, int64_t n) {
#if defined(__GNUC__)
    for (int64_t k = 0; k < n; k += 64) __builtin_prefetch((const char *)x + k, 1, 3);
#else
    (void)x, (void)n;
#endif
}

/* A sample on its way through the pipeline of bpr_epoch. */
typedef struct {
    int64_t e;          /* the event drawn */
    int32_t u, i, j;    /* its user and item, the negative (-1: none acceptable) */
    int32_t c;          /* the first candidate negative (table sampler) */
} bpr_sample;

/* Stages, in samples ahead of the update. Every random access of a sample (its event, the item's domain, the
 * pair-set slots of its negatives, three parameter rows and their moments) is a likely cache miss; each stage
 * asks for what a later one reads. The results do not depend on the depths: events and negatives come from two
 * streams, each drawn in sample order (a sample's first candidate is drawn one stage before its redraws, and
 * that stage runs after the previous sample's redraws). */
#define AHEAD_EVENT 8   /* draw the event; prefetch it */
#define AHEAD_USER 5    /* read (u, i); prefetch the item's domain */
#define AHEAD_DRAW 3    /* draw the first candidate negative (table sampler); prefetch its pair-set slot */
#define AHEAD_NEG 2     /* test it, redraw if needed; prefetch the three rows and their moments */
#define RING 16          /* > AHEAD_EVENT, a power of two */

/* What one worker did in an epoch. */
typedef struct {
    double total, used;     /* sums of w * loss and of w over the applied samples */
    int64_t skipped;
} bpr_tally;

/* Draws and applies n samples with the given streams and gradient buffer (3, dim). One worker is the
 * deterministic default; with hogwild several run at once on the same parameters without locks. */
static void bpr_run(bpr_fit *b, int64_t n, cr_rng *rev_in, cr_rng *rneg_in, float *grad, int64_t *batch_ev,
                    int32_t *batch_items, bpr_tally *out) {
    cr_mf_model *m = b->m;
    const int64_t dim = m->dim, n_ev = b->n_ev, row_bytes = dim * (int64_t)sizeof(float), B = b->inbatch;
    cr_slab *P = &m->params;
    const int64_t user_off = P->t[0].offset, item_off = P->t[1].offset;
    float *moment[2] = {b->opt.v.data, b->opt.m.data};     /* NULL where the optimizer keeps none */
    cr_rng rev = *rev_in, rneg = *rneg_in;
    bpr_sample ring[RING];
    double total = 0.0, used = 0.0;
    int64_t skipped = 0, applied = 0;
    const int step_mode = b->workers <= 1 ? STEP_OWN : b->opt.p.kind == CR_OPT_ADAM ? STEP_SHARED : STEP_CALLER;
    const int sgd = b->opt.p.kind == CR_OPT_SGD;
    const float wd = b->opt.p.weight_decay;
    /* at time t, sample t is drawn and sample t - AHEAD_EVENT is applied */
    for (int64_t t = 0; t < n + AHEAD_EVENT; t++) {
        if (t < n) {
            bpr_sample *x = &ring[t & (RING - 1)];
            if (B > 0) {
                /* in-batch: a batch's events are drawn together (the same stream, in the same order), so that
                 * its items are known when its first negative is drawn; two buffers, as a batch's negatives
                 * are drawn while the next batch's events already are */
                int64_t slot = (t / B) & 1, *bev = batch_ev + slot * B;
                if (t % B == 0)
                    for (int64_t k = 0; k < B && t + k < n; k++) {
                        bev[k] = draw_below(&rev, n_ev);
                        batch_items[slot * B + k] = b->ev[2 * bev[k] + 1];
                    }
                x->e = bev[t % B];
            } else {
                x->e = draw_below(&rev, n_ev);
            }
            prefetch(b->ev + 2 * x->e, 8);
        }
        int64_t s = t - (AHEAD_EVENT - AHEAD_USER);
        if (s >= 0 && s < n) {
            bpr_sample *x = &ring[s & (RING - 1)];
            x->u = b->ev[2 * x->e];
            x->i = b->ev[2 * x->e + 1];
            prefetch(b->item_domain + x->i, 4);
        }
        /* the redraw stage of sample s runs before the first draw of sample s + 1: one stream, sample order */
        s = t - (AHEAD_EVENT - AHEAD_NEG);
        if (s >= 0 && s < n) {
            bpr_sample *x = &ring[s & (RING - 1)];
            const cr_sampler *smp = &b->samplers[b->domain >= 0 ? 0 : b->item_domain[x->i]];
            x->j = -1;
            if (B > 0) {
                /* another sample's positive from the same batch, of the positive's domain and not the user's */
                int64_t first = s / B * B, nb = n - first < B ? n - first : B;
                const int32_t *items = batch_items + ((s / B) & 1) * B;
                for (int k = 0; k <= BPR_REDRAWS && x->j < 0; k++) {
                    int32_t c = cr_inbatch_draw(items, nb, s - first, &rneg);
                    if (c < 0) break;
                    if (b->item_domain[c] == b->item_domain[x->i] && !has_pair(b, x->u, c)) x->j = c;
                }
            } else if (!has_pair(b, x->u, x->c)) {
                x->j = x->c;
            }
            /* the table sampler (also when the batch offered no acceptable negative); without in-batch
             * negatives the first of its 1 + BPR_REDRAWS candidates was drawn at AHEAD_DRAW */
            for (int k = B > 0 ? 0 : 1; k <= BPR_REDRAWS && x->j < 0; k++) {
                int32_t c = cr_sampler_draw(smp, &rneg);
                if (!has_pair(b, x->u, c)) x->j = c;
            }
            if (x->j >= 0) {
                int64_t off[3] = {user_off + (int64_t)x->u * dim, item_off + (int64_t)x->i * dim, item_off + (int64_t)x->j * dim};
                for (int k = 0; k < 3; k++) {
                    prefetch(P->data + off[k], row_bytes);
                    for (int q = 0; q < 2; q++)
                        if (moment[q]) prefetch(moment[q] + off[k], row_bytes);
                }
            }
        }
        s = t - (AHEAD_EVENT - AHEAD_DRAW);
        if (B == 0 && s >= 0 && s < n) {
            bpr_sample *x = &ring[s & (RING - 1)];
            x->c = cr_sampler_draw(&b->samplers[b->domain >= 0 ? 0 : b->item_domain[x->i]], &rneg);
            prefetch(b->pairs + pair_slot(b, pair_key(x->u, x->c)), 8);
        }
        s = t - AHEAD_EVENT;
        if (s >= 0) {
            const bpr_sample *x = &ring[s & (RING - 1)];
            if (x->j < 0) {
                skipped++;
                continue;
            }
            int64_t ou = user_off + (int64_t)x->u * dim, oi = item_off + (int64_t)x->i * dim, oj = item_off + (int64_t)x->j * dim;
            float w = b->weight ? b->weight[b->item_domain[x->i]] : 1.0f;
            float l;
            if (sgd) {
                if (step_mode == STEP_OWN) cr_opt_step(&b->opt);
                l = sgd_pair_step(P, ou, oi, oj, dim, w, b->lr, wd);
            } else {
                l = pair_step(&b->opt, P, ou, oi, oj, dim, w, b->lr, grad, step_mode);
            }
            total += (double)w * l;
            used += w;
            applied++;
        }
    }
    if (step_mode == STEP_CALLER) __atomic_fetch_add(&b->opt.step, applied, __ATOMIC_RELAXED);
    out->total = total, out->used = used, out->skipped = skipped;
}

static cr_status bpr_epoch(cr_fit *f, int64_t epoch, double *loss) {
    bpr_fit *b = (bpr_fit *)f;
    char name[64];
    bpr_tally tally[256] = {{0}};
    if (b->workers <= 1) {
        cr_rng rev, rneg;
        snprintf(name, sizeof name, "bpr.events.%lld", (long long)epoch);
        cr_rng_named(&rev, b->seed, name);
        snprintf(name, sizeof name, "bpr.negatives.%lld", (long long)epoch);
        cr_rng_named(&rneg, b->seed, name);
        bpr_run(b, b->n_ev, &rev, &rneg, b->grad, b->batch_ev, b->batch_items, &tally[0]);
    } else {
        /* Hogwild: each worker draws its share of the samples from its own streams and updates the shared
         * parameters without locks; conflicting writes to one row are rare and only perturb it slightly.
         * Results then depend on timing. */
        CR_OMP(omp parallel for num_threads(b->workers) schedule(static, 1) private(name))
        for (int t = 0; t < b->workers; t++) {
            cr_rng rev, rneg;
            snprintf(name, sizeof name, "bpr.events.%lld.%d", (long long)epoch, t);
            cr_rng_named(&rev, b->seed, name);
            snprintf(name, sizeof name, "bpr.negatives.%lld.%d", (long long)epoch, t);
            cr_rng_named(&rneg, b->seed, name);
            int64_t share = b->n_ev / b->workers + (t < b->n_ev % b->workers);
            bpr_run(b, share, &rev, &rneg, b->grad + (int64_t)t * 3 * b->m->dim, b->batch_ev ? b->batch_ev + 2 * t * b->inbatch : NULL,
                    b->batch_items ? b->batch_items + 2 * t * b->inbatch : NULL, &tally[t]);
        }
    }
    double total = 0.0, used = 0.0;
    for (int t = 0; t < b->workers; t++) total += tally[t].total, used += tally[t].used, b->skipped += tally[t].skipped;
    *loss = used > 0 ? total / used : NAN;
    return CR_OK;
}

static const cr_model *bpr_model(cr_fit *f) { return &((bpr_fit *)f)->m->base; }

static void bpr_fit_free(bpr_fit *b) {
    cr_opt_free(&b->opt);
    cr_free(b->ev);
    cr_free(b->pairs);
    if (b->samplers)
        for (int64_t t = 0; t < b->n_samplers; t++) cr_sampler_free(&b->samplers[t]);
    cr_free(b->samplers);
    cr_free(b->grad);
    cr_free(b->batch_ev);
    cr_free(b->batch_items);
}

/* Whether events of domain t are used: inside the trained domain, and not weighted 0. */
static int domain_used(const bpr_fit *b, int32_t t) {
    return (b->domain < 0 || t == b->domain) && (!b->weight || b->weight[t] > 0);
}

/* The used events, the set of their (user, item) pairs, user_known, and one sampler per domain that has
 * positives. */
static cr_status bpr_prepare(bpr_fit *b, const cr_interactions *v, double alpha) {
    int64_t n_users = v->n_users, n = 0;
    int32_t dom = b->domain;
    for (int64_t e = 0; e < v->n_inter; e++)
        if (domain_used(b, v->item_domain[v->user_items[e]])) n++;
    b->n_ev = n;
    b->ev = cr_malloc(((size_t)n + 1) * 2 * sizeof *b->ev);
    uint64_t slots = 16;
    while (slots < 2 * (uint64_t)n) slots *= 2;
    b->pair_mask = slots - 1;
    b->pairs = cr_calloc(slots, sizeof *b->pairs);
    b->n_samplers = dom >= 0 ? 1 : v->n_domains;
    b->samplers = cr_calloc((size_t)b->n_samplers + 1, sizeof *b->samplers);
    b->grad = cr_malloc((size_t)(3 * b->m->dim * b->workers) * sizeof *b->grad);
    if (b->inbatch > 0) {
        b->batch_ev = cr_malloc((size_t)(2 * b->inbatch * b->workers) * sizeof *b->batch_ev);
        b->batch_items = cr_malloc((size_t)(2 * b->inbatch * b->workers) * sizeof *b->batch_items);
        if (!b->batch_ev || !b->batch_items) return cr_fail(CR_ERR_NOMEM, "out of memory for in-batch buffers");
    }
    if (!b->ev || !b->pairs || !b->samplers || !b->grad)
        return cr_fail(CR_ERR_NOMEM, "out of memory preparing bpr (%lld training events)", (long long)n);
    uint8_t *has_pos = cr_calloc((size_t)b->n_samplers + 1, 1);    /* (n_samplers) a domain has positives */
    if (!has_pos) return cr_fail(CR_ERR_NOMEM, "out of memory preparing bpr");
    int64_t at = 0;
    for (int64_t u = 0; u < n_users; u++) {
        int64_t first = at;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            if (!domain_used(b, v->item_domain[i])) continue;
            b->ev[2 * at] = (int32_t)u;
            b->ev[2 * at + 1] = i;
            add_pair(b, (int32_t)u, i);
            has_pos[dom >= 0 ? 0 : v->item_domain[i]] = 1;
            at++;
        }
        b->m->user_known[u] = at > first;
    }
    cr_status st = CR_OK;
    for (int64_t t = 0; t < b->n_samplers && !st; t++)
        if (has_pos[t]) st = cr_sampler_init(&b->samplers[t], v, dom >= 0 ? dom : (int32_t)t, alpha);
    cr_free(has_pos);
    return st;
}

cr_status cr_fit_bpr(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    return cr_fit_mf_pairs(out, d, train, p, "bpr", NULL);
}

cr_status cr_fit_mf_pairs(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p,
                          const char *type, const float *weight) {
    *out = NULL;
    const cr_interactions *v = train;
    double reg = p->reg < 0 ? BPR_DEFAULT_REG : p->reg;
    const char *opt_name = p->optimizer ? p->optimizer : "adagrad";
    const double lr = p->lr > 0 ? p->lr : BPR_DEFAULT_LR;
    cr_opt_kind kind;
    if (cr_opt_from_name(opt_name, &kind))
        return cr_fail(CR_ERR_ARG, "optimizer must be sgd, adagrad or adam (got '%s')", opt_name);
    const char *dom_name = p->domain >= 0 ? cr_dataset_domain_name(d, p->domain) : NULL;

    bpr_fit b;
    memset(&b, 0, sizeof b);
    cr_status st = cr_mf_new(&b.m, type, v->n_users, v->n_items, v->n_domains, p->dim);
    if (st) return st;
    cr_mf_model *m = b.m;
    m->domain = p->domain;
    m->reg = reg;
    m->base.dataset_crc = cr_dataset_file_crc(d);      /* validation checks it against the split's dataset */
    b.domain = p->domain;
    b.weight = weight;
    b.item_domain = v->item_domain;
    b.seed = p->seed;
    b.lr = (float)lr;
    b.workers = 1;
#ifdef _OPENMP
    if (p->hogwild) b.workers = p->threads > 0 ? p->threads : omp_get_max_threads();
#endif
    if (b.workers > 256) b.workers = 256;
    b.inbatch = p->inbatch;
    if ((st = bpr_prepare(&b, v, p->neg_alpha))) goto fail;
    if (b.n_ev == 0) {
        st = dom_name ? cr_fail(CR_ERR_ARG, "%s: no training events in domain '%s'", type, dom_name)
                      : cr_fail(CR_ERR_ARG, "%s: no training events%s", type, weight ? " in a domain of weight > 0" : "");
        goto fail;
    }

    cr_rng r;
    cr_rng_named(&r, p->seed, "bpr.init");
    cr_slab_normal(&m->params, 0, BPR_INIT_STD, &r);
    cr_slab_normal(&m->params, 1, BPR_INIT_STD, &r);
    /* rows no sample will touch stay zero, so they carry no noise into the file or into scores */
    float *U = cr_slab_at(&m->params, 0), *I = cr_slab_at(&m->params, 1);    /* (n_users, dim), (n_items, dim) */
    for (int64_t u = 0; u < v->n_users; u++)
        if (!m->user_known[u]) memset(U + u * m->dim, 0, (size_t)m->dim * sizeof *U);
    for (int64_t i = 0; i < v->n_items; i++)
        if (!domain_used(&b, v->item_domain[i])) memset(I + i * m->dim, 0, (size_t)m->dim * sizeof *I);

    cr_opt_params op = cr_opt_default_params(kind);
    op.lr = (float)lr;
    op.weight_decay = (float)reg;
    if ((st = cr_opt_init(&b.opt, &m->params, &op))) goto fail;

    char settings[384], negs[64], weights[96] = "";
    if (p->inbatch > 0) snprintf(negs, sizeof negs, "negatives in-batch (batches of %lld)", (long long)p->inbatch);
    else if (p->neg_alpha == 0) snprintf(negs, sizeof negs, "negatives uniform (alpha 0)");
    else snprintf(negs, sizeof negs, "negatives by (count + 1)^alpha (alpha %g)", p->neg_alpha);
    for (int64_t t = 0, n = 0; weight && t < v->n_domains && n < (int64_t)sizeof weights; t++)
        n += snprintf(weights + n, sizeof weights - (size_t)n, "%s%s %g", t ? ", " : ", loss weights ",
                      cr_dataset_domain_name(d, (int32_t)t), weight[t]);
    snprintf(settings, sizeof settings, "%s: dim %lld, %s lr %g, reg %g, %s, %s%s%s, %lld epochs max, patience %d%s", type,
             (long long)p->dim, opt_name, lr, reg, negs, dom_name ? "domain " : "all domains", dom_name ? dom_name : "",
             weights, (long long)p->epochs, p->patience, b.workers > 1 ? ", hogwild" : "");
    b.fit.epoch = bpr_epoch;
    b.fit.model = bpr_model;
    b.fit.params = &m->params;
    b.fit.opt = &b.opt;
    cr_loop_params lp = cr_loop_params_of(p);
    cr_loop_report rep;
    if ((st = cr_train_loop(&b.fit, p->valid, &lp, settings, &rep))) goto fail;
    if (b.skipped && !p->quiet)
        cr_log(CR_LOG_INFO, "%s: %lld samples skipped (no negative outside the user's items after %d redraws)",
               type, (long long)b.skipped, BPR_REDRAWS);
    bpr_fit_free(&b);
    *out = &m->base;
    return CR_OK;
fail:
    bpr_fit_free(&b);
    cr_model_free(&m->base);
    return st;
}

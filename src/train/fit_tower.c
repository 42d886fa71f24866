/* fit_tower.c — fitting the `tower` transfer model (src/models/tower_impl.h has the model's formulas).
 *
 * Examples: every training event (u, i) is a positive of the target domain T = domain(i) (all domains are
 * trained, one head each: the shared extractor learns from the rich domains; --domain T keeps T's events
 * only). The user is its history: its most recent hist_len training items of any domain other than i itself;
 * for a cold_sim share of the examples the history also loses every item of T (cold-start simulation: the
 * model learns to recommend in T from other domains alone, as it must for a cold user).
 *
 * Batches: an epoch shuffles each domain's events (stream "tower.order.<epoch>") and cuts them into batches of
 * `batch` events of one domain, then shuffles the batch order; a batch's positives are one another's
 * negatives, joined by `negatives` items drawn uniformly from the domain's items with training events
 * (sampled softmax over cosine scores / temperature, with the log-Q correction: the log of an item's expected
 * count among the candidates, B share(i) + N / known(T), or log share(i) without sampled negatives; a
 * candidate that is the row's own positive again is masked as an accidental hit). The uniform draws reach
 * the long tail that in-batch negatives, drawn by popularity, hardly ever contrast.
 * Id dropout: each item of a batch enters without its id embedding with probability id_dropout, so the tower
 * learns to place items from text and domain alone (cold items have nothing else). History dropout: each
 * history item of an example is left out with probability hist_dropout (a denoising input: a user is seen
 * ~20 times an epoch with nearly the same history, which the towers otherwise learn by heart — without it
 * validation peaks after the first epoch).
 *
 * Each batch computes g once per distinct item it touches (positives and history items), runs the user tower,
 * the loss, and the backward passes in reverse; gradients of an item reached from several places are summed
 * before its tower's backward pass. Options: dann (a domain classifier on item vectors behind a gradient
 * reversal layer: items of different domains share one space), align (InfoNCE between an item's text vector
 * and its id vector: an item known by text lands where its behaviour would put it).
 *
 * Optimizer: Adam (or p->optimizer), lazy for the embedding rows (id, text) a batch touches, dense for the rest;
 * step counted once per batch. Determinism: named streams of one seed (order, cold-sim and id-dropout draws);
 * the layers are bit-identical at any thread count (nn_tower.h). */
#include "train_impl.h"

#include "../models/tower_impl.h"
#include "crossrec/embed.h"
#include "crossrec/textenc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TOWER_DEFAULT_LR 0.002
#define TOWER_INIT_STD 0.1
#define TOWER_ALIGN_TAU 0.1f
#define ROW_PAR_WORK 65536     /* floats of embedding rows to update before threads pay off */

typedef struct {
    cr_fit fit;                 /* first: the loop's callbacks get &fit back */
    cr_tower_model *m;
    const cr_interactions *v;
    cr_slab grad;
    cr_optimizer opt;
    float lr;
    uint64_t seed;
    int64_t B, L, d, cap;
    int64_t N;                  /* extra sampled negatives per batch (--negatives) */
    double cold_sim, id_dropout, hist_dropout, dann, align;
    /* examples */
    int64_t *dom_ptr;           /* (n_domains + 1) */
    int64_t *dom_ev;            /* events of each domain, shuffled each epoch from dom_ev0 */
    int64_t *dom_ev0;           /* the same in event order: every epoch's order depends on (seed, epoch) only */
    int32_t *ev_user;           /* (n_inter) user of each training event */
    float *log_q;               /* (n_items) */
    int64_t *known_ptr;         /* (n_domains + 1) each domain's items with training events, in known_item */
    int32_t *known_item;
    int64_t *batch_at;          /* (n_batches) first position in dom_ev */
    int32_t *batch_n;           /* (n_batches) events */
    int32_t *batch_dom;         /* (n_batches) */
    int64_t n_batches, max_batches;
    /* one batch */
    int32_t *slot_of;           /* (n_items) slot of an item in the batch, -1 */
    int32_t *uniq;              /* (cap) item of each slot */
    uint8_t *keep;              /* (cap) id dropout draws */
    int32_t *pos_item, *pos_slot;   /* (B + N) the candidates: rows' positives, then the sampled negatives */
    int32_t *seq_slot;          /* (B, L) */
    cr_tower_item_ws iw;
    cr_tower_user_ws uw;
    float *C, *dU, *dC, *probs, *logq_col;  /* (B + N, d), (B, d), (B + N, d), (B, B + N), (B + N) */
    uint64_t *mask;             /* (B, words(B + N)) */
    float *dG, *dgpre, *dx0, *dxm, *dtext;  /* (cap, d) each */
    float *dseq;                /* (B, L, d) */
    float *dpooled, *dz;        /* (B, d) */
    float *dtfm_out, *tfm_scratch;
    float *mlp_scratch;
    float *logits, *dlogits, *dg_disc;      /* (cap, n_domains) x2, (cap, d) */
    int32_t *labels;            /* (cap) */
    float *al_a, *al_b, *al_da, *al_db, *al_scratch;   /* (cap, d) x4, infonce scratch */
    int32_t *al_slot;           /* (cap) */
    int32_t *touched;           /* (iw.cap_bag) text rows touched */
    uint8_t *seen;              /* (n_buckets) */
    int head_only;              /* --finetune head: only the query, head.w and head.b tensors are updated */
    int bpr;                    /* --loss bpr: each row's positive against the next row's (another item) */
    float *bpr_U, *bpr_pos, *bpr_neg, *bpr_dU, *bpr_dpos, *bpr_dneg;  /* (B, d) each */
    int32_t *bpr_j;             /* (B) the row whose positive is row b's negative, -1: none */
    /* distillation (--distill): the teacher, its user tower's scratch, its candidates and soft targets */
    cr_tower_model *teacher;
    cr_tower_user_ws tuw;
    float *teacher_C, *target;  /* (B + N, teacher dim), (B, B + N) */
    float distill_weight;
} tower_fit;

/* ---- examples ---- */

static cr_status prepare_examples(tower_fit *t, int32_t only) {
    const cr_interactions *v = t->v;
    const int64_t nd = v->n_domains;
    t->dom_ptr = cr_calloc((size_t)nd + 2, sizeof *t->dom_ptr);
    t->dom_ev = cr_malloc(((size_t)v->n_inter + 1) * sizeof *t->dom_ev);
    t->dom_ev0 = cr_malloc(((size_t)v->n_inter + 1) * sizeof *t->dom_ev0);
    t->ev_user = cr_malloc(((size_t)v->n_inter + 1) * sizeof *t->ev_user);
    t->log_q = cr_calloc((size_t)v->n_items + 1, sizeof *t->log_q);
    if (!t->dom_ptr || !t->dom_ev || !t->dom_ev0 || !t->ev_user || !t->log_q) return cr_fail(CR_ERR_NOMEM, "out of memory for tower's examples");
    for (int64_t u = 0; u < v->n_users; u++)
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            t->ev_user[e] = (int32_t)u;
            int32_t T = v->item_domain[v->user_items[e]];
            if (only < 0 || T == only) t->dom_ptr[T + 1]++;
        }
    for (int64_t T = 0; T < nd; T++) t->dom_ptr[T + 1] += t->dom_ptr[T];
    int64_t *at = cr_malloc(((size_t)nd + 1) * sizeof *at);
    if (!at) return cr_fail(CR_ERR_NOMEM, "out of memory for tower's examples");
    memcpy(at, t->dom_ptr, (size_t)nd * sizeof *at);
    for (int64_t e = 0; e < v->n_inter; e++) {
        int32_t T = v->item_domain[v->user_items[e]];
        if (only < 0 || T == only) t->dom_ev0[at[T]++] = e;
    }
    cr_free(at);
    /* each domain's items with training events: the pool of the sampled negatives */
    t->known_ptr = cr_calloc((size_t)nd + 2, sizeof *t->known_ptr);
    t->known_item = cr_malloc(((size_t)v->n_items + 1) * sizeof *t->known_item);
    if (!t->known_ptr || !t->known_item) return cr_fail(CR_ERR_NOMEM, "out of memory for tower's examples");
    for (int64_t i = 0; i < v->n_items; i++)
        if (v->item_ptr[i + 1] > v->item_ptr[i]) t->known_ptr[v->item_domain[i] + 1]++;
    for (int64_t T = 0; T < nd; T++) t->known_ptr[T + 1] += t->known_ptr[T];
    if (!(at = cr_malloc(((size_t)nd + 1) * sizeof *at))) return cr_fail(CR_ERR_NOMEM, "out of memory for tower's examples");
    memcpy(at, t->known_ptr, (size_t)nd * sizeof *at);
    for (int64_t i = 0; i < v->n_items; i++)
        if (v->item_ptr[i + 1] > v->item_ptr[i]) t->known_item[at[v->item_domain[i]]++] = (int32_t)i;
    cr_free(at);
    /* log-Q: in-batch negatives of domain T are T's positives, drawn in proportion to their events; with N
     * sampled negatives an item's expected count among a batch's candidates is B share(i) + N / known(T) */
    for (int64_t i = 0; i < v->n_items; i++) {
        const int32_t T = v->item_domain[i];
        const int64_t c = v->item_ptr[i + 1] - v->item_ptr[i], nT = t->dom_ptr[T + 1] - t->dom_ptr[T];
        const int64_t nk = t->known_ptr[T + 1] - t->known_ptr[T];
        if (c <= 0 || nT <= 0) continue;
        t->log_q[i] = t->N > 0 ? (float)log((double)t->B * (double)c / (double)nT + (double)t->N / (double)nk)
                               : (float)log((double)c / (double)nT);
    }
    t->max_batches = 0;
    for (int64_t T = 0; T < nd; T++) t->max_batches += (t->dom_ptr[T + 1] - t->dom_ptr[T] + t->B - 1) / t->B;
    t->batch_at = cr_malloc(((size_t)t->max_batches + 1) * sizeof *t->batch_at);
    t->batch_n = cr_malloc(((size_t)t->max_batches + 1) * sizeof *t->batch_n);
    t->batch_dom = cr_malloc(((size_t)t->max_batches + 1) * sizeof *t->batch_dom);
    if (!t->batch_at || !t->batch_n || !t->batch_dom) return cr_fail(CR_ERR_NOMEM, "out of memory for tower's batches");
    return CR_OK;
}

static void shuffle_i64(int64_t *a, int64_t n, cr_rng *r) {
    for (int64_t k = n - 1; k > 0; k--) {
        int64_t j = (int64_t)cr_rng_below(r, (uint32_t)(k + 1)), x = a[k];
        a[k] = a[j], a[j] = x;
    }
}

/* This epoch's batches: each domain's events shuffled and cut, then the batches shuffled (by an index
 * permutation applied to the three arrays). A last piece of fewer than 2 events is dropped (nothing to
 * contrast it with). */
static void make_batches(tower_fit *t, cr_rng *r) {
    const int64_t nd = t->v->n_domains;
    memcpy(t->dom_ev, t->dom_ev0, (size_t)t->dom_ptr[nd] * sizeof *t->dom_ev);
    t->n_batches = 0;
    for (int64_t T = 0; T < nd; T++) {
        int64_t lo = t->dom_ptr[T], hi = t->dom_ptr[T + 1];
        shuffle_i64(t->dom_ev + lo, hi - lo, r);
        for (int64_t s = lo; s < hi; s += t->B) {
            int64_t n = hi - s < t->B ? hi - s : t->B;
            if (n < 2) continue;
            t->batch_at[t->n_batches] = s, t->batch_n[t->n_batches] = (int32_t)n, t->batch_dom[t->n_batches] = (int32_t)T;
            t->n_batches++;
        }
    }
    for (int64_t k = t->n_batches - 1; k > 0; k--) {
        int64_t j = (int64_t)cr_rng_below(r, (uint32_t)(k + 1));
        int64_t a = t->batch_at[k];
        int32_t n = t->batch_n[k], T = t->batch_dom[k];
        t->batch_at[k] = t->batch_at[j], t->batch_n[k] = t->batch_n[j], t->batch_dom[k] = t->batch_dom[j];
        t->batch_at[j] = a, t->batch_n[j] = n, t->batch_dom[j] = T;
    }
}

/* ---- one batch ---- */

static int32_t slot(tower_fit *t, int32_t item, int64_t *n_uniq) {
    if (t->slot_of[item] < 0) {
        t->slot_of[item] = (int32_t)*n_uniq;
        t->uniq[(*n_uniq)++] = item;
    }
    return t->slot_of[item];
}

static int nonzero(const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        if (x[k] != 0.0f) return 1;
    return 0;
}

/* --loss bpr: row b's positive against the positive of the next row holding another item, on cosine scores
 * divided by the temperature; rows without such a row are left out. Adds to dU and dC; returns the mean loss. */
static double bpr_loss(tower_fit *t, int64_t B) {
    const int64_t d = t->d;
    const float inv_t = 1.0f / t->m->temperature;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t j = -1;
        for (int64_t k = 1; k < B && j < 0; k++)
            if (t->pos_item[(b + k) % B] != t->pos_item[b]) j = (b + k) % B;
        t->bpr_j[b] = (int32_t)j;
        if (j < 0) continue;
        for (int64_t q = 0; q < d; q++) t->bpr_U[n * d + q] = t->uw.f[b * d + q] * inv_t;
        memcpy(t->bpr_neg + n * d, t->C + j * d, (size_t)d * sizeof(float));
        memcpy(t->bpr_pos + n * d, t->C + b * d, (size_t)d * sizeof(float));
        n++;
    }
    if (n == 0) return 0.0;
    memset(t->bpr_dU, 0, (size_t)(3 * n * d) * sizeof(float));     /* dU, dpos, dneg */
    double loss = cr_bpr_loss(t->bpr_dU, t->bpr_dpos, t->bpr_dneg, t->bpr_U, t->bpr_pos, t->bpr_neg, n, d, 1.0f);
    for (int64_t b = 0, r = 0; b < B; b++) {
        const int64_t j = t->bpr_j[b];
        if (j < 0) continue;
        for (int64_t q = 0; q < d; q++) {
            t->dU[b * d + q] += t->bpr_dU[r * d + q] * inv_t;
            t->dC[b * d + q] += t->bpr_dpos[r * d + q];
            t->dC[j * d + q] += t->bpr_dneg[r * d + q];
        }
        r++;
    }
    return loss;
}

/* The teacher's softmax over the batch's nC candidates, from the same histories (its own item vectors, ids
 * included: the teacher is fixed), into t->target. */
static void teacher_targets(tower_fit *t, int64_t B, int64_t nC) {
    const cr_tower_model *T = t->teacher;
    const int64_t dT = T->dim, L = t->L;
    cr_tower_user_ws *w = &t->tuw;
    for (int64_t k = 0; k < B; k++) {
        /* the most recent of the history when the teacher reads fewer items */
        const int64_t n = t->uw.len[k] < w->L ? t->uw.len[k] : w->L, skip = t->uw.len[k] - n;
        w->len[k] = n, w->dom[k] = t->uw.dom[k];
        w->user[k] = T->t_user >= 0 ? t->uw.user[k] : -1;
        for (int64_t x = 0; x < n; x++)
            memcpy(w->seq + (k * w->L + x) * dT, T->items + (int64_t)t->uniq[t->seq_slot[k * L + skip + x]] * dT,
                   (size_t)dT * sizeof(float));
    }
    for (int64_t k = 0; k < nC; k++)
        memcpy(t->teacher_C + k * dT, T->items + (int64_t)t->pos_item[k] * dT, (size_t)dT * sizeof(float));
    cr_tower_user_forward(T, w, B);
    cr_softmax_rows(t->target, w->f, t->teacher_C, B, nC, dT, T->temperature, t->logq_col, t->mask);
}

/* Runs batch b forward and backward, applies the optimizer; returns the batch's mean loss. */
static double run_batch(tower_fit *t, int64_t b, cr_rng *r) {
    cr_tower_model *m = t->m;
    const cr_interactions *v = t->v;
    const int64_t d = t->d, L = t->L, B = t->batch_n[b], nd = v->n_domains;
    const int32_t T = t->batch_dom[b];
    cr_slab *P = &m->params, *G = &t->grad;

    /* examples: positives and histories, each item given one slot */
    int64_t n_uniq = 0;
    for (int64_t k = 0; k < B; k++) {
        const int64_t e = t->dom_ev[t->batch_at[b] + k];
        const int32_t u = t->ev_user[e], i = v->user_items[e];
        t->pos_item[k] = i;
        t->pos_slot[k] = slot(t, i, &n_uniq);
        const int cold = cr_rng_uniform(r) < t->cold_sim;
        int64_t n = 0;
        int32_t *seq = t->seq_slot + k * L;
        for (int64_t x = v->user_ptr[u + 1] - 1; x >= v->user_ptr[u] && n < L; x--) {
            const int32_t j = v->user_items[x];
            if (j == i || (cold && v->item_domain[j] == T)) continue;
            if (t->hist_dropout > 0 && cr_rng_uniform(r) < t->hist_dropout) continue;
            seq[n++] = slot(t, j, &n_uniq);
        }
        for (int64_t a = 0, z = n - 1; a < z; a++, z--) {     /* oldest first */
            int32_t s = seq[a];
            seq[a] = seq[z], seq[z] = s;
        }
        t->uw.len[k] = n;
        t->uw.dom[k] = T;
        /* a cold-simulated row hides the user's own embedding too: it has learned the user's target items */
        t->uw.user[k] = m->t_user >= 0 && !cold ? u : -1;
    }
    /* sampled negatives: uniform over T's items with training events (the positives' own draws are masked) */
    const int64_t nk = t->known_ptr[T + 1] - t->known_ptr[T], N = nk > 0 ? t->N : 0, nC = B + N;
    for (int64_t k = B; k < nC; k++) {
        t->pos_item[k] = t->known_item[t->known_ptr[T] + (int64_t)cr_rng_below(r, (uint32_t)nk)];
        t->pos_slot[k] = slot(t, t->pos_item[k], &n_uniq);
    }
    for (int64_t s = 0; s < n_uniq; s++) t->keep[s] = !(cr_rng_uniform(r) < t->id_dropout);

    /* forward */
    cr_tower_item_forward(m, &t->iw, t->uniq, n_uniq, t->keep);
    const float *g = t->iw.g;
    for (int64_t k = 0; k < B; k++)
        for (int64_t x = 0; x < t->uw.len[k]; x++)
            memcpy(t->uw.seq + (k * L + x) * d, g + (int64_t)t->seq_slot[k * L + x] * d, (size_t)d * sizeof(float));
    cr_tower_user_forward(m, &t->uw, B);
    for (int64_t k = 0; k < nC; k++) {
        memcpy(t->C + k * d, g + (int64_t)t->pos_slot[k] * d, (size_t)d * sizeof(float));
        t->logq_col[k] = t->log_q[t->pos_item[k]];
    }
    cr_hitmask_from_items(t->mask, t->pos_item, B, nC);
    memset(t->dU, 0, (size_t)(B * d) * sizeof(float));
    memset(t->dC, 0, (size_t)(nC * d) * sizeof(float));
    double loss;
    if (t->bpr) {
        loss = bpr_loss(t, B);
    } else if (t->teacher) {
        teacher_targets(t, B, nC);
        const float w = t->distill_weight;
        loss = (1.0f - w) * cr_sampled_softmax(t->dU, t->dC, t->probs, t->uw.f, t->C, B, nC, d, m->temperature, t->logq_col,
                                               t->mask, 1.0f - w);
        loss += w * cr_softmax_distill(t->dU, t->dC, t->probs, t->uw.f, t->C, B, nC, d, m->temperature, t->logq_col, t->mask,
                                       t->target, w);
    } else {
        loss = cr_sampled_softmax(t->dU, t->dC, t->probs, t->uw.f, t->C, B, nC, d, m->temperature, t->logq_col, t->mask, 1.0f);
    }

    /* backward through the user tower */
    memset(t->dz, 0, (size_t)(B * d) * sizeof(float));
    cr_l2norm_backward(t->dz, t->dU, t->uw.f, t->uw.norm, B, d);
    memcpy(t->dpooled, t->dz, (size_t)(B * d) * sizeof(float));     /* the head's residual */
    const int64_t ow = P->t[m->t_head_w].offset + (int64_t)T * d * d, ob = P->t[m->t_head_b].offset + (int64_t)T * d;
    cr_linear_backward(t->dpooled, G->data + ow, G->data + ob, t->dz, t->uw.pooled, P->data + ow, B, d, d);
    if (m->t_user >= 0) {
        float *gu = cr_slab_at(G, m->t_user);
        for (int64_t k = 0; k < B; k++)
            if (t->uw.user[k] >= 0)
                for (int64_t q = 0; q < d; q++) gu[(int64_t)t->uw.user[k] * d + q] += t->dpooled[k * d + q];
    }
    memset(t->dseq, 0, (size_t)(B * L * d) * sizeof(float));
    if (m->pool == CR_TOWER_POOL_MEAN) {
        cr_meanpool_backward(t->dseq, t->dpooled, t->uw.len, B, L, d);
    } else if (m->pool == CR_TOWER_POOL_ATTENTION) {
        cr_attnpool_backward(t->dseq, cr_slab_at(G, m->t_query), t->dpooled, t->uw.seq, t->uw.len, cr_slab_at(P, m->t_query),
                             t->uw.dom, t->uw.att, B, L, d);
    } else {
        memset(t->dtfm_out, 0, (size_t)(B * L * d) * sizeof(float));
        for (int64_t k = 0; k < B; k++)
            if (t->uw.len[k] > 0) memcpy(t->dtfm_out + (k * L + t->uw.len[k] - 1) * d, t->dpooled + k * d, (size_t)d * sizeof(float));
        cr_tfm_backward(&m->tfm, P, G, t->dseq, t->dtfm_out, t->uw.tfm_acts, t->uw.len, B, L, t->tfm_scratch);
    }
    /* every use of an item's vector adds to its gradient */
    memset(t->dG, 0, (size_t)(n_uniq * d) * sizeof(float));
    for (int64_t k = 0; k < B; k++) {
        for (int64_t x = 0; x < t->uw.len[k]; x++) {
            float *dg = t->dG + (int64_t)t->seq_slot[k * L + x] * d;
            const float *ds = t->dseq + (k * L + x) * d;
            for (int64_t q = 0; q < d; q++) dg[q] += ds[q];
        }
    }
    for (int64_t k = 0; k < nC; k++) {
        float *dg = t->dG + (int64_t)t->pos_slot[k] * d;
        for (int64_t q = 0; q < d; q++) dg[q] += t->dC[k * d + q];
    }
    if (t->dann > 0) {
        /* the classifier learns the item's domain; the tower, through the reversed gradient, to hide it */
        const float *Wd = cr_slab_at(P, m->t_disc_w), *bd = cr_slab_at(P, m->t_disc_b);
        for (int64_t s = 0; s < n_uniq; s++) t->labels[s] = v->item_domain[t->uniq[s]];
        cr_linear_forward(t->logits, g, Wd, bd, n_uniq, d, nd);
        memset(t->dlogits, 0, (size_t)(n_uniq * nd) * sizeof(float));
        cr_softmax_xent(t->dlogits, t->logits, t->labels, n_uniq, nd, (float)t->dann);
        memset(t->dg_disc, 0, (size_t)(n_uniq * d) * sizeof(float));
        cr_linear_backward(t->dg_disc, cr_slab_at(G, m->t_disc_w), cr_slab_at(G, m->t_disc_b), t->dlogits, g, Wd, n_uniq, d, nd);
        cr_grl_backward(t->dG, t->dg_disc, n_uniq * d, 1.0f);
    }

    /* backward through the item tower: g = normalize(x0 + MLP(x0)) */
    memset(t->dgpre, 0, (size_t)(n_uniq * d) * sizeof(float));
    cr_l2norm_backward(t->dgpre, t->dG, g, t->iw.norm, n_uniq, d);
    cr_mlp_backward(&m->item_mlp, P, G, t->iw.x0, n_uniq, t->iw.pre, t->iw.acts, t->dgpre, t->dxm, t->mlp_scratch);
    for (int64_t k = 0; k < n_uniq * d; k++) t->dx0[k] = t->dgpre[k] + t->dxm[k];
    if (m->vec_dim)
        cr_linear_backward(NULL, cr_slab_at(G, m->t_vec), NULL, t->dx0, t->iw.vec, cr_slab_at(P, m->t_vec), n_uniq, m->vec_dim, d);
    memcpy(t->dtext, t->dx0, (size_t)(n_uniq * d) * sizeof(float));
    float *gid = cr_slab_at(G, m->t_id), *gdom = cr_slab_at(G, m->t_dom);
    const float *id = cr_slab_at(P, m->t_id);
    int64_t n_al = 0;
    if (t->align > 0) {
        /* the text vector of a known item and its id vector are each other's positives */
        for (int64_t s = 0; s < n_uniq; s++)
            if (m->item_known[t->uniq[s]]) {
                memcpy(t->al_a + n_al * d, t->iw.text + s * d, (size_t)d * sizeof(float));
                memcpy(t->al_b + n_al * d, id + (int64_t)t->uniq[s] * d, (size_t)d * sizeof(float));
                t->al_slot[n_al++] = (int32_t)s;
            }
        if (n_al >= 2) {
            memset(t->al_da, 0, (size_t)(n_al * d) * sizeof(float));
            memset(t->al_db, 0, (size_t)(n_al * d) * sizeof(float));
            cr_infonce(t->al_da, t->al_db, t->al_scratch, t->al_a, t->al_b, n_al, d, TOWER_ALIGN_TAU, 1, (float)t->align);
            for (int64_t a = 0; a < n_al; a++) {
                float *dt = t->dtext + (int64_t)t->al_slot[a] * d, *di = gid + (int64_t)t->uniq[t->al_slot[a]] * d;
                for (int64_t q = 0; q < d; q++) dt[q] += t->al_da[a * d + q], di[q] += t->al_db[a * d + q];
            }
        } else {
            n_al = 0;
        }
    }
    for (int64_t s = 0; s < n_uniq; s++) {
        const int32_t i = t->uniq[s];
        const float *dx = t->dx0 + s * d;
        float *gd = gdom + (int64_t)v->item_domain[i] * d;
        for (int64_t q = 0; q < d; q++) gd[q] += dx[q];
        if (t->iw.use_id[s]) {
            float *gi = gid + (int64_t)i * d;
            for (int64_t q = 0; q < d; q++) gi[q] += dx[q];
        }
    }
    /* the text bags the forward pass gathered */
    float *gtext = cr_slab_at(G, m->t_text);
    const int64_t n_buckets = P->t[m->t_text].rows, nb = t->iw.bag_off[n_uniq];
    cr_embbag_backward(gtext, NULL, t->dtext, NULL, n_buckets, d, t->iw.bag_off, t->iw.bag_idx, t->iw.bag_w, n_uniq, CR_BAG_SUM);

    /* the optimizer: dense tensors whole, embedding rows where the batch put a gradient */
    cr_opt_step(&t->opt);
    if (t->head_only) {
        /* the query, head.w and head.b tensors lie one after another (cr_tower_new) */
        const cr_tensor *q = &P->t[m->t_query], *hb = &P->t[m->t_head_b];
        const int64_t lo = q->offset, hi = hb->offset + hb->rows * hb->cols;
        cr_opt_update(&t->opt, P, lo, G->data + lo, hi - lo, t->lr);
    } else {
        cr_opt_update(&t->opt, P, m->dense_off, G->data + m->dense_off, P->size - m->dense_off, t->lr);
    }
    memset(G->data + m->dense_off, 0, (size_t)(P->size - m->dense_off) * sizeof(float));
    const int64_t id_off = P->t[m->t_id].offset, text_off = P->t[m->t_text].offset;
    /* rows are distinct: threads update them independently, each row the same arithmetic at any count */
    CR_OMP(omp parallel for schedule(static) if (n_uniq * d >= ROW_PAR_WORK))
    for (int64_t s = 0; s < n_uniq; s++) {
        const int64_t i = t->uniq[s];
        if (!t->iw.use_id[s] && !(n_al && m->item_known[i])) continue;
        if (!t->head_only) cr_opt_update(&t->opt, P, id_off + i * d, gid + i * d, d, t->lr);
        memset(gid + i * d, 0, (size_t)d * sizeof(float));
    }
    int64_t n_touched = cr_embbag_touched(t->touched, t->seen, t->iw.bag_idx, nb);
    CR_OMP(omp parallel for schedule(static) if (n_touched * d >= ROW_PAR_WORK))
    for (int64_t k = 0; k < n_touched; k++) {
        const int64_t row = t->touched[k];
        if (!t->head_only) cr_opt_update(&t->opt, P, text_off + row * d, gtext + row * d, d, t->lr);
        memset(gtext + row * d, 0, (size_t)d * sizeof(float));
    }
    if (m->t_user >= 0) {
        const int64_t user_off = P->t[m->t_user].offset;
        float *gu = cr_slab_at(G, m->t_user);
        for (int64_t k = 0; k < B; k++) {
            const int64_t u = t->uw.user[k];
            if (u < 0) continue;
            /* a user in several rows: its summed gradient is applied once, then zeroed */
            if (!t->head_only && nonzero(gu + u * d, d))
                cr_opt_update(&t->opt, P, user_off + u * d, gu + u * d, d, t->lr);
            memset(gu + u * d, 0, (size_t)d * sizeof(float));
        }
    }
    for (int64_t s = 0; s < n_uniq; s++) t->slot_of[t->uniq[s]] = -1;
    return loss;
}

static cr_status tower_epoch(cr_fit *f, int64_t epoch, double *loss) {
    tower_fit *t = (tower_fit *)f;
    char name[48];
    cr_rng r;
    snprintf(name, sizeof name, "tower.order.%lld", (long long)epoch);
    cr_rng_named(&r, t->seed, name);
    make_batches(t, &r);
    snprintf(name, sizeof name, "tower.draws.%lld", (long long)epoch);
    cr_rng_named(&r, t->seed, name);
    double total = 0;
    int64_t n = 0;
    for (int64_t b = 0; b < t->n_batches; b++) {
        total += run_batch(t, b, &r) * t->batch_n[b];
        n += t->batch_n[b];
    }
    *loss = n ? total / (double)n : NAN;
    return CR_OK;
}

static const cr_model *tower_model(cr_fit *f) {
    tower_fit *t = (tower_fit *)f;
    /* validation scores with every item's current vector; a failure here (memory) leaves the old ones */
    if (cr_tower_refresh_items(t->m)) return NULL;
    return &t->m->base;
}

/* ---- setup ---- */

static void tower_fit_free(tower_fit *t) {
    void *bufs[] = {t->dom_ptr, t->dom_ev, t->dom_ev0, t->ev_user, t->log_q, t->known_ptr, t->known_item, t->batch_at,
                    t->batch_n, t->batch_dom, t->slot_of, t->uniq, t->keep, t->pos_item, t->pos_slot, t->seq_slot, t->C, t->mask, t->dG, t->dseq,
                    t->dtfm_out, t->mlp_scratch, t->logits, t->labels, t->al_a, t->al_slot, t->touched, t->seen, t->bpr_U, t->bpr_j};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) cr_free(bufs[k]);
    cr_tower_item_ws_free(&t->iw);
    cr_tower_user_ws_free(&t->uw);
    cr_tower_user_ws_free(&t->tuw);
    cr_free(t->teacher_C);
    if (t->teacher) cr_model_free(&t->teacher->base);
    cr_slab_free(&t->grad);
    cr_opt_free(&t->opt);
}

static cr_status alloc_batch(tower_fit *t) {
    const cr_tower_model *m = t->m;
    const int64_t B = t->B, L = t->L, d = t->d, cap = t->cap, nd = t->v->n_domains, nC = B + t->N;
    const int64_t n_buckets = m->params.t[m->t_text].rows;
    cr_status st;
    if ((st = cr_tower_item_ws_init(&t->iw, m, cap)) || (st = cr_tower_user_ws_init(&t->uw, m, B))) return st;
    int64_t maxw = d, tfm_scratch = m->pool == CR_TOWER_POOL_TRANSFORMER ? cr_tfm_scratch_size(&m->tfm, B, L) : 0;
    t->slot_of = cr_malloc(((size_t)t->v->n_items + 1) * sizeof *t->slot_of);
    t->uniq = cr_malloc((size_t)cap * sizeof *t->uniq);
    t->keep = cr_malloc((size_t)cap);
    t->pos_item = cr_malloc((size_t)nC * sizeof *t->pos_item);
    t->pos_slot = cr_malloc((size_t)nC * sizeof *t->pos_slot);
    t->seq_slot = cr_malloc((size_t)(B * L) * sizeof *t->seq_slot);
    t->C = cr_malloc((size_t)(2 * nC * d + 3 * B * d + B * nC + nC) * sizeof(float));
    t->mask = cr_malloc((size_t)(B * cr_hitmask_words(nC)) * sizeof *t->mask);
    t->dG = cr_malloc((size_t)(5 * cap * d) * sizeof(float));
    t->dseq = cr_malloc((size_t)(B * L * d) * sizeof(float));
    t->dtfm_out = cr_malloc((size_t)(B * L * d + tfm_scratch + 1) * sizeof(float));
    t->mlp_scratch = cr_malloc((size_t)(2 * cap * maxw) * sizeof(float));
    t->logits = cr_malloc((size_t)(2 * cap * nd + cap * d) * sizeof(float));
    t->labels = cr_malloc((size_t)cap * sizeof *t->labels);
    t->al_a = cr_malloc((size_t)(4 * cap * d + cr_infonce_scratch_size(cap, d)) * sizeof(float));
    t->al_slot = cr_malloc((size_t)cap * sizeof *t->al_slot);
    t->touched = cr_malloc(((size_t)t->iw.cap_bag + 1) * sizeof *t->touched);
    t->seen = cr_calloc((size_t)n_buckets + 1, 1);
    t->bpr_U = cr_malloc((size_t)(6 * B * d) * sizeof(float));
    t->bpr_j = cr_malloc((size_t)B * sizeof *t->bpr_j);
    if (!t->slot_of || !t->uniq || !t->keep || !t->pos_item || !t->pos_slot || !t->seq_slot || !t->C || !t->mask || !t->dG ||
        !t->dseq || !t->dtfm_out || !t->mlp_scratch || !t->logits || !t->labels || !t->al_a || !t->al_slot || !t->touched ||
        !t->seen || !t->bpr_U || !t->bpr_j)
        return cr_fail(CR_ERR_NOMEM, "out of memory for tower's batch buffers (%lld items a batch)", (long long)cap);
    for (int64_t i = 0; i < t->v->n_items; i++) t->slot_of[i] = -1;
    t->dU = t->C + nC * d, t->dC = t->dU + B * d, t->probs = t->dC + nC * d, t->logq_col = t->probs + B * nC;
    t->dpooled = t->logq_col + nC, t->dz = t->dpooled + B * d;
    t->dgpre = t->dG + cap * d, t->dx0 = t->dgpre + cap * d, t->dxm = t->dx0 + cap * d, t->dtext = t->dxm + cap * d;
    t->tfm_scratch = t->dtfm_out + B * L * d;
    t->bpr_pos = t->bpr_U + B * d, t->bpr_neg = t->bpr_pos + B * d;
    t->bpr_dU = t->bpr_neg + B * d, t->bpr_dpos = t->bpr_dU + B * d, t->bpr_dneg = t->bpr_dpos + B * d;
    t->dlogits = t->logits + cap * nd, t->dg_disc = t->dlogits + cap * nd;
    t->al_b = t->al_a + cap * d, t->al_da = t->al_b + cap * d, t->al_db = t->al_da + cap * d, t->al_scratch = t->al_db + cap * d;
    return CR_OK;
}

/* The items' text bags: TF-IDF over hashed words and character n-grams of title and text, each item keeping
 * its `keep` heaviest buckets, renormalised to unit L2 norm. */
static cr_status text_bags(cr_tower_model **out, const cr_dataset *d, const cr_interactions *v, const cr_train_params *p,
                           int pool, int64_t vec_dim) {
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = p->text_buckets > 0 ? p->text_buckets : 1;
    cr_text_csr csr;
    memset(&csr, 0, sizeof csr);
    cr_status st = CR_OK;
    if (p->text_buckets > 0 && (st = cr_text_item_matrix(d, &h, NULL, &csr, NULL))) return st;
    const int64_t keep = p->text_per_item;
    int64_t nnz = 0;
    for (int64_t i = 0; p->text_buckets > 0 && i < v->n_items; i++) {
        int64_t n = csr.row_ptr[i + 1] - csr.row_ptr[i];
        nnz += n < keep ? n : keep;
    }
    cr_tower_model *m = NULL;
    if ((st = cr_tower_new(&m, v->n_users, v->n_items, v->n_domains, p->dim, pool, p->hist_len, h.n_buckets, nnz, vec_dim,
                           p->user_id)))
        goto out;
    m->hashing = h;
    int64_t at = 0;
    for (int64_t i = 0; i < v->n_items; i++) {
        m->text_ptr[i] = at;
        if (p->text_buckets <= 0) continue;
        const int64_t lo = csr.row_ptr[i], n = csr.row_ptr[i + 1] - lo;
        /* the `keep` largest weights: a partial selection by repeated maximum (rows are short) */
        int64_t first = at;
        for (int64_t c = 0; c < n && at - first < keep; c++) {
            int64_t best = -1;
            for (int64_t k = lo; k < lo + n; k++) {
                int taken = 0;
                for (int64_t x = first; x < at && !taken; x++) taken = m->text_col[x] == csr.col[k];
                if (!taken && (best < 0 || csr.val[k] > csr.val[best])) best = k;
            }
            if (best < 0) break;
            m->text_col[at] = csr.col[best], m->text_val[at++] = csr.val[best];
        }
        double norm = 0;
        for (int64_t k = first; k < at; k++) norm += (double)m->text_val[k] * m->text_val[k];
        for (int64_t k = first; k < at && norm > 0; k++) m->text_val[k] = (float)(m->text_val[k] / sqrt(norm));
    }
    m->text_ptr[v->n_items] = at;
    *out = m;
out:
    cr_text_csr_free(&csr);
    return st;
}

/* ---- dense item vectors ---- */

/* --item-vectors: a .npy of one row per item, or an embed method computed now; rows L2-normalised (a zero row,
 * an item without text, stays zero), so that every source enters at one scale. */
static cr_status item_vectors(const cr_dataset *d, const cr_train_params *p, float **out, int64_t *dim) {
    const char *spec = p->item_vectors;
    const size_t n = strlen(spec);
    const int64_t n_items = cr_dataset_inter(d)->n_items;
    cr_status st;
    *out = NULL, *dim = 0;
    if (n > 4 && !strcmp(spec + n - 4, ".npy")) {
        int64_t rows;
        if ((st = cr_npy_read_f32(spec, out, &rows, dim))) return st;
        if (rows != n_items) {
            cr_free(*out), *out = NULL;
            cr_set_hint("`crossrec embed DATA.crd --method M -o FILE.npy` writes one row per item of that dataset");
            return cr_fail(CR_ERR_ARG, "%s: %lld rows, but the dataset has %lld items", spec, (long long)rows, (long long)n_items);
        }
    } else {
        cr_embed_params ep = cr_embed_default_params();
        ep.threads = p->threads;
        if ((st = cr_embed_parse_method(spec, &ep)) || (st = cr_embed_items(d, &ep, out, dim))) return st;
    }
    if (*dim < 1 || *dim > CR_TOWER_MAX_VEC_DIM) {
        cr_free(*out), *out = NULL;
        return cr_fail(CR_ERR_ARG, "%s: item vectors of %lld columns (1..%d allowed)", spec, (long long)*dim, CR_TOWER_MAX_VEC_DIM);
    }
    for (int64_t i = 0; i < n_items; i++) {
        float *x = *out + i * *dim;
        double ss = 0;
        for (int64_t k = 0; k < *dim; k++) ss += (double)x[k] * x[k];
        if (!isfinite(ss)) {
            cr_free(*out), *out = NULL;
            return cr_fail(CR_ERR_ARG, "%s: row %lld (item %lld) is not finite", spec, (long long)i, (long long)i);
        }
        for (int64_t k = 0; k < *dim && ss > 0; k++) x[k] = (float)(x[k] / sqrt(ss));
    }
    return CR_OK;
}

/* ---- starting from another model, learning from a teacher ---- */

static cr_status load_tower(cr_tower_model **out, const char *path, const char *what) {
    cr_model *x = NULL;
    *out = NULL;
    cr_status st = cr_model_load(&x, path);
    if (st) return st;
    if (strcmp(cr_model_name(x), "tower")) {
        st = cr_fail(CR_ERR_ARG, "%s: %s must be a tower model (this one is '%s')", path, what, cr_model_name(x));
        cr_model_free(x);
        return st;
    }
    *out = (cr_tower_model *)x;
    return CR_OK;
}

/* From a text encoder of `crossrec pretrain` (crossrec/textenc.h): its bucket table becomes the text table, its
 * residual MLP the item MLP (the same layout); the rest keeps its fresh start. */
static cr_status init_from_encoder(cr_tower_model *m, const cr_textenc *e, const char *path, char *summary, size_t cap) {
    cr_textenc_weights w;
    cr_textenc_get_weights(e, &w);
    if (w.dim != m->dim || !cr_text_hashing_equal(cr_textenc_hashing(e), &m->hashing)) {
        cr_set_hint("pretrain and train with the same --dim and text buckets (default 64 and 2^16)");
        return cr_fail(CR_ERR_ARG, "%s: the text encoder has dim %lld and %lld buckets, this run dim %lld and %lld buckets", path,
                       (long long)w.dim, (long long)w.n_buckets, (long long)m->dim, (long long)m->hashing.n_buckets);
    }
    const int64_t d = m->dim;
    memcpy(cr_slab_at(&m->params, m->t_text), w.emb, (size_t)(w.n_buckets * d) * sizeof(float));
    const char *names[4] = {"tower.item.w0", "tower.item.b0", "tower.item.w1", "tower.item.b1"};
    const float *src[4] = {w.w0, w.b0, w.w1, w.b1};
    for (int k = 0; k < 4; k++) {
        const int t = cr_slab_find(&m->params, names[k]);
        CR_ASSERT(t >= 0 && m->params.t[t].rows * m->params.t[t].cols == (k % 2 ? d : d * d));
        memcpy(cr_slab_at(&m->params, t), src[k], (size_t)(k % 2 ? d : d * d) * sizeof(float));
    }
    snprintf(summary, cap, "text table and item MLP from the text encoder %s", path);
    return CR_OK;
}

/* Copies the parameters of the model at `path` into m. From a model of the same dataset every tensor (the
 * per-item id embeddings and the per-domain ones included); from another dataset only what does not depend on
 * its items and domains: the text table (same hashing), the item MLP and the transformer. The settings that
 * shape the tensors (dim, pooling, history length of a transformer) must agree. `summary` names the copy. */
static cr_status init_from(cr_tower_model *m, const char *path, char *summary, size_t cap) {
    cr_textenc *e = NULL;
    if (cr_textenc_load(&e, path) == CR_OK) {
        cr_status st = init_from_encoder(m, e, path, summary, cap);
        cr_textenc_free(e);
        return st;
    }
    cr_tower_model *x;
    cr_status st = load_tower(&x, path, "--init");
    if (st) return st;
    const int same_data = x->base.dataset_crc == m->base.dataset_crc && x->base.n_items == m->base.n_items &&
                          x->base.n_domains == m->base.n_domains;
    if (x->dim != m->dim || x->pool != m->pool) {
        st = cr_fail(CR_ERR_ARG, "%s: --init model has dim %lld and %s pooling, this run dim %lld and %s pooling", path,
                     (long long)x->dim, cr_tower_pool_name(x->pool), (long long)m->dim, cr_tower_pool_name(m->pool));
        cr_set_hint("give the same --dim and --pool as the model you start from");
        goto out;
    }
    const cr_text_hashing *hx = &x->hashing, *hm = &m->hashing;
    if (!cr_text_hashing_equal(hx, hm)) {
        st = cr_fail(CR_ERR_ARG, "%s: --init model hashes text differently (%lld buckets, n-grams %d-%d, seed %u) from this run "
                     "(%lld buckets, n-grams %d-%d, seed %u)", path, (long long)hx->n_buckets, hx->ngram_min, hx->ngram_max,
                     hx->seed, (long long)hm->n_buckets, hm->ngram_min, hm->ngram_max, hm->seed);
        cr_set_hint("give the same --text-buckets as the model you start from");
        goto out;
    }
    int copied = 0;
    for (int k = 0; k < m->params.n; k++) {
        const cr_tensor *a = &m->params.t[k];
        const int per_item_or_domain = k == m->t_id || k == m->t_user || k == m->t_dom || k == m->t_query || k == m->t_head_w ||
                                       k == m->t_head_b || k == m->t_disc_w || k == m->t_disc_b;
        if (per_item_or_domain && !same_data) continue;
        const int j = cr_slab_find(&x->params, a->name);
        if (j < 0 || x->params.t[j].rows != a->rows || x->params.t[j].cols != a->cols) {
            st = cr_fail(CR_ERR_ARG, "%s: --init model's tensor '%s' does not match this run's", path, a->name);
            cr_set_hint("give the same --hist-len, --item-vectors and --user-id as the model you start from");
            goto out;
        }
        memcpy(cr_slab_at(&m->params, k), cr_slab_at(&x->params, j), (size_t)(a->rows * a->cols) * sizeof(float));
        copied++;
    }
    snprintf(summary, cap, "started from %s (%d tensors%s)", path, copied, same_data ? "" : ", another dataset: shared parts only");
out:
    cr_model_free(&x->base);
    return st;
}

static cr_status load_teacher(tower_fit *t, const char *path) {
    cr_status st = load_tower(&t->teacher, path, "--distill teacher");
    if (st) return st;
    const cr_model *T = &t->teacher->base, *m = &t->m->base;
    if (T->dataset_crc != m->dataset_crc || T->n_items != m->n_items || T->n_domains != m->n_domains)
        return cr_fail(CR_ERR_ARG, "%s: the --distill teacher was trained on another dataset", path);
    if ((st = cr_tower_user_ws_init(&t->tuw, t->teacher, t->B))) return st;
    const int64_t nC = t->B + t->N;
    t->teacher_C = cr_malloc((size_t)(nC * t->teacher->dim + t->B * nC) * sizeof(float));
    if (!t->teacher_C) return cr_fail(CR_ERR_NOMEM, "out of memory for the teacher's targets");
    t->target = t->teacher_C + nC * t->teacher->dim;
    return CR_OK;
}

static cr_status fit_tower(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);

/* The layers and the embedding-row updates split their loops over OpenMP's threads, but a batch's loops are
 * short: on an idle 2-core machine two threads train 1.35x faster than one (bench_tower: 18,730 vs 13,895
 * examples/s), on one shared with other work they spun waiting and were slower than one. So the fit runs on one
 * thread unless --threads asks for more (the model is the same at any count), and OpenBLAS runs its small
 * products on the calling thread. */
cr_status cr_fit_tower(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    cr_blas_single_enter();
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(p->threads > 0 ? p->threads : 1);
    cr_status st = fit_tower(out, d, train, p);
    omp_set_num_threads(saved);
#else
    cr_status st = fit_tower(out, d, train, p);
#endif
    cr_blas_single_leave();
    return st;
}

static cr_status fit_tower(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    *out = NULL;
    const cr_interactions *v = train;
    const int pool = cr_tower_pool_from_name(p->pool ? p->pool : "attention");
    if (pool < 0) return cr_fail(CR_ERR_ARG, "tower: --pool must be mean, attention or transformer (got '%s')", p->pool);
    if (p->batch < 2 || p->batch > 65536) return cr_fail(CR_ERR_ARG, "tower: batch must be 2..65536 (got %lld)", (long long)p->batch);
    if (p->negatives < 0 || p->negatives > 65536)
        return cr_fail(CR_ERR_ARG, "tower: --negatives must be 0..65536 (got %lld)", (long long)p->negatives);
    if (!(p->cold_sim >= 0 && p->cold_sim <= 1) || !(p->id_dropout >= 0 && p->id_dropout <= 1))
        return cr_fail(CR_ERR_ARG, "tower: --cold-sim and --id-dropout must be in [0, 1]");
    if (!(p->hist_dropout >= 0 && p->hist_dropout < 1))
        return cr_fail(CR_ERR_ARG, "tower: --hist-dropout must be in [0, 1) (got %g)", p->hist_dropout);
    if (!(p->temperature > 0) || !isfinite(p->temperature)) return cr_fail(CR_ERR_ARG, "tower: temperature must be > 0");
    if (!(p->dann >= 0) || !(p->align >= 0) || !isfinite(p->dann) || !isfinite(p->align))
        return cr_fail(CR_ERR_ARG, "tower: --dann and --align must be finite and >= 0");
    if (p->text_buckets < 0 || p->text_buckets > CR_TEXT_MAX_BUCKETS || p->text_per_item < 1)
        return cr_fail(CR_ERR_ARG, "tower: text buckets must be 0..%d and text per item >= 1", CR_TEXT_MAX_BUCKETS);
    if (p->finetune && strcmp(p->finetune, "all") && strcmp(p->finetune, "head") && strcmp(p->finetune, "none"))
        return cr_fail(CR_ERR_ARG, "tower: --finetune must be all, head or none (got '%s')", p->finetune);
    if (p->finetune && !p->init && !p->resume)
        return cr_fail(CR_ERR_ARG, "tower: --finetune %s needs --init MODEL.crm, the model to start from", p->finetune);
    if (p->distill && !(p->distill_weight >= 0 && p->distill_weight <= 1))
        return cr_fail(CR_ERR_ARG, "tower: --distill-weight must be in [0, 1] (got %g)", p->distill_weight);
    if (p->loss && strcmp(p->loss, "softmax") && strcmp(p->loss, "bpr"))
        return cr_fail(CR_ERR_ARG, "tower: --loss must be softmax or bpr (got '%s')", p->loss);
    if (p->loss && !strcmp(p->loss, "bpr") && p->distill)
        return cr_fail(CR_ERR_ARG, "tower: --distill learns the teacher's softmax; it does not combine with --loss bpr");
    const char *opt_name = p->optimizer ? p->optimizer : "adam";
    cr_opt_kind kind;
    if (cr_opt_from_name(opt_name, &kind)) return cr_fail(CR_ERR_ARG, "optimizer must be sgd, adagrad or adam (got '%s')", opt_name);

    tower_fit t;
    memset(&t, 0, sizeof t);
    t.v = v;
    t.B = p->batch, t.L = p->hist_len, t.d = p->dim, t.N = p->negatives;
    t.cold_sim = p->cold_sim, t.id_dropout = p->id_dropout, t.hist_dropout = p->hist_dropout;
    t.dann = p->dann, t.align = p->align;
    t.seed = p->seed;
    t.lr = (float)(p->lr > 0 ? p->lr : TOWER_DEFAULT_LR);
    t.distill_weight = (float)p->distill_weight;
    t.bpr = p->loss && !strcmp(p->loss, "bpr");
    if (t.bpr) t.N = 0;     /* bpr contrasts each positive with another row's */
    float *vec = NULL;
    int64_t vec_dim = 0;
    cr_status st;
    if (p->item_vectors && (st = item_vectors(d, p, &vec, &vec_dim))) return st;
    st = text_bags(&t.m, d, v, p, pool, vec_dim);
    if (!st && vec_dim) memcpy(t.m->item_vec, vec, (size_t)(v->n_items * vec_dim) * sizeof *vec);
    cr_free(vec);
    if (st) return st;
    cr_tower_model *m = t.m;
    for (int64_t u = 0; m->user_known && u < v->n_users; u++) m->user_known[u] = v->user_ptr[u + 1] > v->user_ptr[u];
    m->temperature = (float)p->temperature;
    m->base.dataset_crc = cr_dataset_file_crc(d);
    for (int64_t i = 0; i < v->n_items; i++) {
        m->item_domain[i] = v->item_domain[i];
        m->item_known[i] = v->item_ptr[i + 1] > v->item_ptr[i];
    }
    t.cap = t.B * (t.L + 1) + t.N < v->n_items ? t.B * (t.L + 1) + t.N : v->n_items;
    if ((st = prepare_examples(&t, p->domain)) || (st = alloc_batch(&t))) goto fail;
    if (t.dom_ptr[v->n_domains] == 0) {
        st = cr_fail(CR_ERR_ARG, "tower: no training events%s", p->domain >= 0 ? " in the chosen domain" : "");
        goto fail;
    }

    cr_rng r;
    cr_rng_named(&r, p->seed, "tower.init");
    cr_slab *P = &m->params;
    cr_slab_normal(P, m->t_id, TOWER_INIT_STD, &r);
    cr_slab_normal(P, m->t_text, TOWER_INIT_STD, &r);
    cr_slab_normal(P, m->t_dom, TOWER_INIT_STD, &r);
    if (m->t_vec >= 0) cr_slab_normal(P, m->t_vec, TOWER_INIT_STD, &r);     /* unit vectors in: components of std 0.1 out */
    /* the user embeddings start at 0: the history alone at first */
    cr_mlp_init(&m->item_mlp, P, &r);
    cr_slab_normal(P, m->t_query, TOWER_INIT_STD, &r);
    cr_slab_normal(P, m->t_disc_w, TOWER_INIT_STD, &r);
    if (pool == CR_TOWER_POOL_TRANSFORMER) cr_tfm_init(&m->tfm, P, &r);
    /* the heads start as the identity (W 0, b 0): pooling alone at first */
    char from[256] = "";
    if (p->init && (st = init_from(m, p->init, from, sizeof from))) goto fail;
    t.head_only = p->finetune && !strcmp(p->finetune, "head");
    if (p->finetune && !strcmp(p->finetune, "none")) {
        /* the initial model as it is, on this dataset */
        if (!p->quiet) printf("tower: %s, no fine-tuning\n", from);
        if ((st = cr_tower_refresh_items(m))) goto fail;
        tower_fit_free(&t);
        *out = &m->base;
        return CR_OK;
    }
    if (p->distill && (st = load_teacher(&t, p->distill))) goto fail;
    if ((st = cr_slab_like(&t.grad, P))) goto fail;
    cr_opt_params op = cr_opt_default_params(kind);
    op.lr = t.lr;
    op.weight_decay = p->reg > 0 ? (float)p->reg : 0.0f;
    if ((st = cr_opt_init(&t.opt, P, &op))) goto fail;

    char settings[512];
    snprintf(settings, sizeof settings,
             "tower: dim %lld, %s pooling of %lld history items, batch %lld + %lld sampled negatives, %s lr %g, "
             "temperature %g, cold-sim %g, id dropout %g, history dropout %g, text %lld buckets (%lld per item)%s%s%s%s%s, "
             "dann %g, align %g, %s loss, %lld epochs max, patience %d%s%s%s%s%s",
             (long long)t.d, cr_tower_pool_name(pool), (long long)t.L, (long long)t.B, (long long)t.N, opt_name, (double)t.lr,
             p->temperature, t.cold_sim, t.id_dropout, t.hist_dropout, (long long)p->text_buckets, (long long)p->text_per_item,
             m->vec_dim ? ", item vectors " : "",
             m->vec_dim ? p->item_vectors : "", m->t_user >= 0 ? ", user ids" : "", p->domain >= 0 ? ", domain " : "",
             p->domain >= 0 ? cr_dataset_domain_name(d, p->domain) : "", t.dann, t.align, t.bpr ? "bpr" : "softmax",
             (long long)p->epochs, p->patience,
             *from ? "; " : "", from, t.head_only ? " (fine-tuning the heads only)" : "", t.teacher ? "; distilling " : "",
             t.teacher ? p->distill : "");
    t.fit.epoch = tower_epoch;
    t.fit.model = tower_model;
    t.fit.params = P;
    t.fit.opt = &t.opt;
    cr_loop_params lp = cr_loop_params_of(p);
    cr_loop_report rep;
    if ((st = cr_train_loop(&t.fit, p->valid, &lp, settings, &rep))) goto fail;
    /* the loop may have restored an earlier epoch's parameters */
    if ((st = cr_tower_refresh_items(m))) goto fail;
    tower_fit_free(&t);
    *out = &m->base;
    return CR_OK;
fail:
    tower_fit_free(&t);
    cr_model_free(&m->base);
    return st;
}

/* evaluate.c — evaluation of a model on a split: full ranking over the candidates, streamed in blocks.
 *
 * Users are processed in batches of rows. The union of the batch's positives (ground truth that is a ranked
 * candidate) is scored first, as one request, so every positive's score is known before any negative is
 * counted; then the other candidates stream through in blocks: seen items are skipped (unless keep_seen),
 * negatives go to the rank counter, everything to the top-K heap. Every (row, candidate) pair is scored exactly
 * once, so ranks are exact even for models whose floating-point results depend on the shape of the request
 * (BLAS kernels do). Memory is bounded by the batch times the block, whatever the number of items. Per-user
 * results land in arrays indexed by the user's position and are summed in order afterwards, so results are
 * identical at any thread count. */
#include "crossrec/eval.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BATCH_ROWS 32
#define TEXT_BUCKETS (1u << 20)

cr_eval_params cr_eval_default_params(void) {
    cr_eval_params p;
    memset(&p, 0, sizeof p);
    p.ks[0] = 10, p.ks[1] = 20, p.ks[2] = 50;
    p.n_k = 3;
    p.part = CR_PART_TEST;
    p.block_items = 8192;
    return p;
}

void cr_eval_result_free(cr_eval_result *r) {
    if (!r) return;
    cr_free(r->per_user);
    cr_free(r->users);
    cr_free(r->domain_gt_n);
    cr_free(r->domain_recall);
    cr_free(r->curve_recall);
    cr_free(r->curve_ndcg);
    cr_free(r);
}

/* ---- item text vectors for intra-list diversity ---------------------------------------------------- */

/* Hashed bag of words of title + text: tokens are runs of letters/digits (bytes >= 0x80 count as letters, so
 * UTF-8 words stay whole), ASCII lower-cased, hashed into TEXT_BUCKETS; term counts as weights. Only the
 * candidate items get a vector. Returns CR_OK with *has_text = 0 when no candidate has any text. */
typedef struct {
    int64_t *ptr;       /* (n_items + 1) */
    int32_t *idx;
    float *val;
} text_vectors;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int is_word_byte(unsigned char c) { return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }

static int64_t tokenize(const char *s, uint32_t *out, int64_t n, int64_t cap) {
    char word[64];
    while (*s && n < cap) {
        while (*s && !is_word_byte((unsigned char)*s)) s++;
        int64_t len = 0;
        while (*s && is_word_byte((unsigned char)*s)) {
            unsigned char c = (unsigned char)*s++;
            if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
            if (len < (int64_t)sizeof word) word[len++] = (char)c;
        }
        if (len) out[n++] = cr_hash32(word, (size_t)len, 0) & (TEXT_BUCKETS - 1);
    }
    return n;
}

static cr_status build_text_vectors(const cr_dataset *d, const int32_t *cand, int64_t n_cand, text_vectors *tv, int *has_text) {
    int64_t n_items = cr_dataset_inter(d)->n_items;
    enum { MAX_TOKENS = 512 };
    uint32_t tok[MAX_TOKENS];
    memset(tv, 0, sizeof *tv);
    *has_text = 0;
    int64_t cap = 0, nnz = 0;
    if (!(tv->ptr = cr_calloc((size_t)n_items + 1, sizeof *tv->ptr))) return cr_fail(CR_ERR_NOMEM, "out of memory (text vectors)");
    /* items are visited in ascending order (candidates are ascending), so ptr is filled as a CSR */
    int64_t next = 0;
    for (int64_t c = 0; c < n_cand; c++) {
        int32_t i = cand[c];
        for (; next <= i; next++) tv->ptr[next] = nnz;
        int64_t n = tokenize(cr_dataset_item_title(d, i), tok, 0, MAX_TOKENS);
        n = tokenize(cr_dataset_item_text(d, i), tok, n, MAX_TOKENS);
        qsort(tok, (size_t)n, sizeof *tok, cmp_u32);
        cr_status st;
        if ((st = cr_grow((void **)&tv->idx, &cap, nnz + n, sizeof *tv->idx))) return st;
        float *val = cr_realloc(tv->val, (size_t)(cap ? cap : 1) * sizeof *tv->val);
        if (!val) return cr_fail(CR_ERR_NOMEM, "out of memory (text vectors)");
        tv->val = val;
        for (int64_t k = 0; k < n; k++) {
            if (k && tok[k] == tok[k - 1]) {
                tv->val[nnz - 1] += 1;
                continue;
            }
            tv->idx[nnz] = (int32_t)tok[k];
            tv->val[nnz++] = 1;
        }
        if (n) *has_text = 1;
    }
    for (; next <= n_items; next++) tv->ptr[next] = nnz;
    return CR_OK;
}

static void free_text_vectors(text_vectors *tv) {
    cr_free(tv->ptr), cr_free(tv->idx), cr_free(tv->val);
}

/* ---- per-thread scratch ------------------------------------------------------------------------------ */

typedef struct {
    float *scores;          /* (cap_scores) rows x candidates of one request */
    int64_t cap_scores;
    float *neg;             /* (cap_neg) negatives of one row in one request */
    int64_t cap_neg;
    float *neg_cold;        /* (cap_neg_cold) the cold items among them */
    int64_t cap_neg_cold;
    int32_t *cold_item;     /* (max_gt) a row's cold positives */
    float *cold_score;
    int32_t *uni;           /* (cap_uni) union of the batch's positives, ascending */
    int64_t cap_uni;
    int32_t *blk;           /* (block) candidates of one streamed block */
    int32_t *seen;          /* (n_items) row marker of the row's training items, -1 = none */
    int32_t *pos_of;        /* (n_items) row marker of the row's positives, -1 = none */
    int64_t *in_uni;        /* (n_items) batch marker (batch + 1) of the union's items */
    int32_t *uni_at;        /* (n_items) position in uni, valid where in_uni matches */
    int32_t *pos_item;      /* (BATCH_ROWS * max_gt) positives per row */
    float *pos_score;
    int64_t *ranks;         /* (max_gt) */
    int64_t *exposure;      /* (n_k * n_items) top-K exposure per K */
    int64_t *dom_hits;      /* (n_domains * n_k) hits@K among ground truth of each domain */
    int64_t *dom_gt;        /* (n_domains) ground-truth items of each domain */
    int32_t *top;           /* (kmax) */
    double *norm;           /* (kmax) */
    cr_topk topk[BATCH_ROWS];
    cr_rank_counter rc[BATCH_ROWS];
    cr_rank_counter rc_cold[BATCH_ROWS];    /* the cold positives ranked among the cold candidates only */
    int64_t n_neg[BATCH_ROWS];
} scratch;

static void scratch_free(scratch *w) {
    cr_free(w->scores), cr_free(w->neg), cr_free(w->neg_cold), cr_free(w->cold_item), cr_free(w->cold_score);
    cr_free(w->uni), cr_free(w->blk), cr_free(w->seen), cr_free(w->pos_of);
    cr_free(w->in_uni), cr_free(w->uni_at), cr_free(w->pos_item), cr_free(w->pos_score), cr_free(w->ranks);
    cr_free(w->exposure), cr_free(w->dom_hits), cr_free(w->dom_gt), cr_free(w->top), cr_free(w->norm);
    for (int r = 0; r < BATCH_ROWS; r++) cr_topk_free(&w->topk[r]);
    memset(w, 0, sizeof *w);
}

static cr_status scratch_init(scratch *w, int64_t block, int64_t n_items, int64_t n_domains, int64_t max_gt, int n_k, int kmax) {
    memset(w, 0, sizeof *w);
    size_t ni = (size_t)(n_items ? n_items : 1), ng = (size_t)(max_gt ? max_gt : 1);
    w->blk = cr_malloc((size_t)block * sizeof *w->blk);
    w->seen = cr_malloc(ni * sizeof *w->seen);
    w->pos_of = cr_malloc(ni * sizeof *w->pos_of);
    w->in_uni = cr_calloc(ni, sizeof *w->in_uni);
    w->uni_at = cr_malloc(ni * sizeof *w->uni_at);
    w->pos_item = cr_malloc(BATCH_ROWS * ng * sizeof *w->pos_item);
    w->pos_score = cr_malloc(BATCH_ROWS * ng * sizeof *w->pos_score);
    w->ranks = cr_malloc(ng * sizeof *w->ranks);
    w->cold_item = cr_malloc(ng * sizeof *w->cold_item);
    w->cold_score = cr_malloc(ng * sizeof *w->cold_score);
    w->exposure = cr_calloc((size_t)n_k * ni, sizeof *w->exposure);
    w->dom_hits = cr_calloc((size_t)(n_domains * n_k) + 1, sizeof *w->dom_hits);
    w->dom_gt = cr_calloc((size_t)n_domains + 1, sizeof *w->dom_gt);
    w->top = cr_malloc((size_t)kmax * sizeof *w->top);
    w->norm = cr_malloc((size_t)kmax * sizeof *w->norm);
    cr_status st = CR_OK;
    if (!w->blk || !w->seen || !w->pos_of || !w->in_uni || !w->uni_at || !w->pos_item || !w->pos_score || !w->ranks ||
        !w->cold_item || !w->cold_score ||
        !w->exposure || !w->dom_hits || !w->dom_gt || !w->top || !w->norm)
        st = cr_fail(CR_ERR_NOMEM, "out of memory (evaluation buffers)");
    for (int r = 0; r < BATCH_ROWS && !st; r++) st = cr_topk_init(&w->topk[r], kmax);
    if (st) {
        scratch_free(w);
        return st;
    }
    memset(w->seen, 0xff, ni * sizeof *w->seen);
    memset(w->pos_of, 0xff, ni * sizeof *w->pos_of);
    return CR_OK;
}

/* ---- the evaluation ---------------------------------------------------------------------------------- */

typedef struct {
    const cr_split *s;
    const cr_model *m;
    const cr_eval_params *p;
    const cr_interactions *train;
    const cr_ground_truth *gt;
    const int32_t *cand;
    int64_t n_cand, block, n_items;
    int32_t target;
    uint8_t *is_cand;           /* (n_items) */
    int64_t *item_pop;          /* (n_items) distinct training users */
    int kmax;
    text_vectors tv;
    int has_text;
    /* per user outputs, by position in gt->users */
    cr_user_metrics *um;
    uint8_t *represented;
    int64_t *n_ranked;
    double *ild, *novelty;      /* (n_users * n_k) */
    int64_t *group_hits;        /* (n_users * N_ITEM_GROUPS * n_k) hits@K among ground truth of each item group */
    int64_t *group_gt;          /* (n_users * N_ITEM_GROUPS) ground-truth items per item group */
    uint8_t *item_group;        /* (n_items) COLD, HEAD or TAIL */
    double *curve_sum;          /* (n_batches * 2 * curve_k) per batch: recall@K sums, then NDCG@K sums */
    int64_t users_done;         /* for progress reports */
} evaluation;

static int cmp_pop_desc(const void *a, const void *b, void *ctx) {
    const int64_t *pop = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (pop[x] != pop[y]) return pop[x] > pop[y] ? -1 : 1;
    return (x > y) - (x < y);
}

/* Item groups: cold (no training event), head (the most popular 20% of the candidates with training events),
 * tail (the rest); then the cold ground truth again, ranked among the cold candidates only (COLD_AMONG_COLD:
 * a slate of new items, where only a model that reads their content can do better than chance). */
enum { COLD, HEAD, TAIL, COLD_AMONG_COLD, N_ITEM_GROUPS };

/* Distinct training users per item, and the items' groups. */
static cr_status item_statistics(evaluation *ev) {
    const cr_interactions *t = ev->train;
    ev->item_pop = cr_calloc((size_t)ev->n_items + 1, sizeof *ev->item_pop);
    ev->item_group = cr_calloc((size_t)ev->n_items + 1, 1);
    int32_t *order = cr_malloc((size_t)(ev->n_cand ? ev->n_cand : 1) * sizeof *order);
    if (!ev->item_pop || !ev->item_group || !order) {
        cr_free(order);
        return cr_fail(CR_ERR_NOMEM, "out of memory (item statistics)");
    }
    for (int64_t i = 0; i < ev->n_items; i++)
        for (int64_t e = t->item_ptr[i]; e < t->item_ptr[i + 1]; e++)
            if (e == t->item_ptr[i] || t->item_users[e] != t->item_users[e - 1]) ev->item_pop[i]++;
    int64_t warm = 0;
    for (int64_t c = 0; c < ev->n_cand; c++)
        if (ev->item_pop[ev->cand[c]] > 0) order[warm++] = ev->cand[c];
    qsort_r(order, (size_t)warm, sizeof *order, cmp_pop_desc, ev->item_pop);
    int64_t head = (warm + 4) / 5;
    for (int64_t k = 0; k < warm; k++) ev->item_group[order[k]] = k < head ? HEAD : TAIL;
    cr_free(order);
    return CR_OK;
}

static void mark_seen(scratch *w, const int32_t *hist, int64_t n, int32_t row) {
    for (int64_t e = 0; e < n; e++) w->seen[hist[e]] = row;
}

/* Feeds one row's scores of a request to its top-K heap and rank counters: seen items are skipped (unless
 * keep_seen: then nothing is marked seen), the row's positives only enter the heap; cold negatives also go to
 * the cold-only counter. */
static void take_scores(scratch *w, int64_t r, const float *sc, const int32_t *cand, int64_t n, const uint8_t *group) {
    int64_t nn = 0, nc = 0;
    for (int64_t k = 0; k < n; k++) {
        int32_t i = cand[k];
        if (w->seen[i] == (int32_t)r) continue;
        cr_topk_push(&w->topk[r], sc[k], i);
        if (w->pos_of[i] == (int32_t)r) continue;
        w->neg[nn++] = sc[k];
        if (group[i] == COLD) w->neg_cold[nc++] = sc[k];
    }
    cr_rank_counter_add(&w->rc[r], w->neg, nn);
    cr_rank_counter_add(&w->rc_cold[r], w->neg_cold, nc);
    w->n_neg[r] += nn;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Adds one user's recall@K and NDCG@K for K = 1..n_curve to sums (recall, then NDCG): ranks of its ranked
 * positives ascending (n_ranked), n_pos ground-truth items; the definitions of cr_metrics_from_ranks. */
static void add_curve(const int64_t *ranks, int64_t n_ranked, int64_t n_pos, int n_curve, double *sums) {
    int64_t hits = 0;
    double dcg = 0, idcg = 0;
    for (int64_t k = 1; k <= n_curve; k++) {
        for (; hits < n_ranked && ranks[hits] <= k; hits++) dcg += 1.0 / log2((double)ranks[hits] + 1.0);
        if (k <= n_pos) idcg += 1.0 / log2((double)k + 1.0);
        sums[k - 1] += (double)hits / (double)n_pos;
        sums[n_curve + k - 1] += dcg / idcg;
    }
}

/* Evaluates rows [u0, u1) of the ground truth (at most BATCH_ROWS) as batch number `batch`. */
static cr_status eval_batch(evaluation *ev, scratch *w, int64_t u0, int64_t u1, int64_t batch) {
    const cr_ground_truth *gt = ev->gt;
    const cr_interactions *t = ev->train;
    const cr_eval_params *p = ev->p;
    int64_t nr = u1 - u0;
    int32_t users[BATCH_ROWS];
    int64_t hist_ptr[BATCH_ROWS + 1], pos_at[BATCH_ROWS + 1];
    uint8_t can[BATCH_ROWS], can_block[BATCH_ROWS];
    cr_status st = CR_OK;
    /* histories are the users' training events (all domains): slices of the training CSR, made contiguous */
    hist_ptr[0] = 0;
    for (int64_t r = 0; r < nr; r++) {
        users[r] = gt->users[u0 + r];
        hist_ptr[r + 1] = hist_ptr[r] + (t->user_ptr[users[r] + 1] - t->user_ptr[users[r]]);
    }
    int32_t *hist = cr_malloc((size_t)(hist_ptr[nr] ? hist_ptr[nr] : 1) * sizeof *hist);
    if (!hist) return cr_fail(CR_ERR_NOMEM, "out of memory (histories)");
    for (int64_t r = 0; r < nr; r++)
        memcpy(hist + hist_ptr[r], t->user_items + t->user_ptr[users[r]], (size_t)(hist_ptr[r + 1] - hist_ptr[r]) * sizeof *hist);

    /* positives: ground truth that is a candidate and not excluded as seen; their union, ascending */
    int64_t n_uni = 0;
    pos_at[0] = 0;
    for (int64_t r = 0; r < nr && !st; r++) {
        int64_t n = 0;
        if (!p->keep_seen) mark_seen(w, hist + hist_ptr[r], hist_ptr[r + 1] - hist_ptr[r], (int32_t)r);
        for (int64_t g = gt->gt_ptr[u0 + r]; g < gt->gt_ptr[u0 + r + 1] && !st; g++) {
            int32_t i = gt->gt_items[g];
            if (!ev->is_cand[i] || w->seen[i] == (int32_t)r) continue;
            w->pos_item[pos_at[r] + n++] = i;
            if (w->in_uni[i] == batch + 1) continue;
            w->in_uni[i] = batch + 1;
            if (!(st = cr_grow((void **)&w->uni, &w->cap_uni, n_uni + 1, sizeof *w->uni))) w->uni[n_uni++] = i;
        }
        pos_at[r + 1] = pos_at[r] + n;
        if (!p->keep_seen) mark_seen(w, hist + hist_ptr[r], hist_ptr[r + 1] - hist_ptr[r], -1);
    }
    if (n_uni) qsort(w->uni, (size_t)n_uni, sizeof *w->uni, cmp_i32);   /* uni may still be NULL */
    for (int64_t k = 0; k < n_uni; k++) w->uni_at[w->uni[k]] = (int32_t)k;
    int64_t width = n_uni > ev->block ? n_uni : ev->block;
    if (!st) st = cr_grow((void **)&w->scores, &w->cap_scores, nr * width + 1, sizeof *w->scores);
    if (!st) st = cr_grow((void **)&w->neg, &w->cap_neg, width + 1, sizeof *w->neg);
    if (!st) st = cr_grow((void **)&w->neg_cold, &w->cap_neg_cold, width + 1, sizeof *w->neg_cold);
    if (st) {
        cr_free(hist);
        return st;
    }
    cr_score_request req = {nr, users, hist_ptr, hist, ev->target, n_uni, w->uni};
    if ((st = cr_model_score(ev->m, &req, w->scores, can))) {
        cr_free(hist);
        return st;
    }
    int n_init = 0;
    for (int64_t r = 0; r < nr && !st; r++, n_init++) {
        int64_t np = pos_at[r + 1] - pos_at[r];
        for (int64_t j = 0; j < np; j++) w->pos_score[pos_at[r] + j] = w->scores[r * n_uni + w->uni_at[w->pos_item[pos_at[r] + j]]];
        if ((st = cr_rank_counter_init(&w->rc[r], w->pos_score + pos_at[r], w->pos_item + pos_at[r], np))) break;
        int64_t n_cold = 0;
        for (int64_t j = pos_at[r]; j < pos_at[r + 1]; j++)
            if (ev->item_group[w->pos_item[j]] == COLD)
                w->cold_item[n_cold] = w->pos_item[j], w->cold_score[n_cold++] = w->pos_score[j];
        if ((st = cr_rank_counter_init(&w->rc_cold[r], w->cold_score, w->cold_item, n_cold))) {
            cr_rank_counter_free(&w->rc[r]);
            break;
        }
        cr_topk_reset(&w->topk[r]);
        w->n_neg[r] = 0;
        if (!can[r]) continue;
        if (!p->keep_seen) mark_seen(w, hist + hist_ptr[r], hist_ptr[r + 1] - hist_ptr[r], (int32_t)r);
        for (int64_t j = 0; j < np; j++) w->pos_of[w->pos_item[pos_at[r] + j]] = (int32_t)r;
        take_scores(w, r, w->scores + r * n_uni, w->uni, n_uni, ev->item_group);
        for (int64_t j = 0; j < np; j++) w->pos_of[w->pos_item[pos_at[r] + j]] = -1;
        if (!p->keep_seen) mark_seen(w, hist + hist_ptr[r], hist_ptr[r + 1] - hist_ptr[r], -1);
    }
    /* stream the other candidates: none of them is a positive of any row of the batch */
    for (int64_t c = 0; c < ev->n_cand && !st;) {
        int64_t nb = 0;
        for (; c < ev->n_cand && nb < ev->block; c++)
            if (w->in_uni[ev->cand[c]] != batch + 1) w->blk[nb++] = ev->cand[c];
        if (!nb) break;
        req.cand = w->blk;
        req.n_cand = nb;
        if ((st = cr_model_score(ev->m, &req, w->scores, can_block))) break;
        for (int64_t r = 0; r < nr; r++) {
            if (!can[r]) continue;
            if (!p->keep_seen) mark_seen(w, hist + hist_ptr[r], hist_ptr[r + 1] - hist_ptr[r], (int32_t)r);
            take_scores(w, r, w->scores + r * nb, w->blk, nb, ev->item_group);
            if (!p->keep_seen) mark_seen(w, hist + hist_ptr[r], hist_ptr[r + 1] - hist_ptr[r], -1);
        }
    }
    /* metrics per row */
    for (int64_t r = 0; r < n_init; r++) {
        int64_t ui = u0 + r;
        int64_t n_gt = gt->gt_ptr[ui + 1] - gt->gt_ptr[ui];
        int64_t np = can[r] ? pos_at[r + 1] - pos_at[r] : 0;
        if (!st) {
            if (np) cr_rank_counter_ranks(&w->rc[r], w->ranks);
            cr_metrics_from_ranks(w->ranks, np, n_gt, can[r] ? w->n_neg[r] : 0, p->ks, p->n_k, &ev->um[ui]);
            ev->represented[ui] = can[r];
            ev->n_ranked[ui] = pos_at[r + 1] - pos_at[r];
            int64_t n_top = can[r] ? cr_topk_sorted(&w->topk[r], w->top, NULL) : 0;
            for (int q = 0; q < p->n_k; q++) {
                int64_t k = p->ks[q] < n_top ? p->ks[q] : n_top;
                for (int64_t j = 0; j < k; j++) w->exposure[q * ev->n_items + w->top[j]]++;
                ev->novelty[ui * p->n_k + q] = k ? cr_novelty(w->top, k, ev->item_pop, t->n_users) : 0;
            }
            if (ev->has_text)
                cr_ild_prefixes(w->top, n_top, ev->tv.ptr, ev->tv.idx, ev->tv.val, p->ks, p->n_k, w->norm, ev->ild + ui * p->n_k);
            /* item-group and domain recall: ground truth of each group and domain, and its hits at each K */
            for (int64_t g = gt->gt_ptr[ui]; g < gt->gt_ptr[ui + 1]; g++) {
                ev->group_gt[ui * N_ITEM_GROUPS + ev->item_group[gt->gt_items[g]]]++;
                w->dom_gt[t->item_domain[gt->gt_items[g]]]++;
            }
            /* ranks ascending belong to the counter's positives read from its end (its ranking order) */
            const cr_rank_counter *rc = &w->rc[r];
            for (int64_t j = 0; j < np; j++) {
                int32_t item = rc->pos_item[rc->n_pos - 1 - j];
                for (int q = 0; q < p->n_k; q++)
                    if (w->ranks[j] <= p->ks[q]) {
                        ev->group_hits[(ui * N_ITEM_GROUPS + ev->item_group[item]) * p->n_k + q]++;
                        w->dom_hits[t->item_domain[item] * p->n_k + q]++;
                    }
            }
            if (ev->curve_sum) add_curve(w->ranks, np, n_gt, p->curve_k, ev->curve_sum + batch * 2 * p->curve_k);
            /* the cold ground truth again, ranked among the cold candidates only (a new-item slate); w->ranks is
               free again */
            ev->group_gt[ui * N_ITEM_GROUPS + COLD_AMONG_COLD] = ev->group_gt[ui * N_ITEM_GROUPS + COLD];
            const int64_t n_cold = can[r] ? w->rc_cold[r].n_pos : 0;
            if (n_cold) cr_rank_counter_ranks(&w->rc_cold[r], w->ranks);
            for (int64_t j = 0; j < n_cold; j++)
                for (int q = 0; q < p->n_k; q++)
                    if (w->ranks[j] <= p->ks[q]) ev->group_hits[(ui * N_ITEM_GROUPS + COLD_AMONG_COLD) * p->n_k + q]++;
        }
        cr_rank_counter_free(&w->rc[r]);
        cr_rank_counter_free(&w->rc_cold[r]);
    }
    cr_free(hist);
    return st;
}

/* The sampled view: each ground-truth pair ranked against its stored negatives (pessimistic ties). */
static cr_status eval_sampled(evaluation *ev, cr_eval_result *r) {
    int64_t n_neg;
    const int32_t *neg = cr_split_sampled(ev->s, ev->p->part, &n_neg);
    if (!neg || !n_neg) return CR_OK;
    const cr_ground_truth *gt = ev->gt;
    const cr_interactions *t = ev->train;
    int32_t *cand = cr_malloc((size_t)(n_neg + 1) * sizeof *cand);
    float *sc = cr_malloc((size_t)(n_neg + 1) * sizeof *sc);
    if (!cand || !sc) {
        cr_free(cand), cr_free(sc);
        return cr_fail(CR_ERR_NOMEM, "out of memory (sampled view)");
    }
    cr_status st = CR_OK;
    double sum[5 * CR_MAX_K + 2] = {0};
    for (int64_t ui = 0; ui < gt->n_users && !st; ui++) {
        int32_t u = gt->users[ui];
        int64_t hp[2] = {0, t->user_ptr[u + 1] - t->user_ptr[u]};
        for (int64_t g = gt->gt_ptr[ui]; g < gt->gt_ptr[ui + 1] && !st; g++) {
            int64_t n = 0;
            cand[n++] = gt->gt_items[g];
            for (int64_t k = 0; k < n_neg; k++)
                if (neg[g * n_neg + k] >= 0) cand[n++] = neg[g * n_neg + k];
            cr_score_request req = {1, &u, hp, t->user_items + t->user_ptr[u], ev->target, n, cand};
            uint8_t can;
            if ((st = cr_model_score(ev->m, &req, sc, &can))) break;
            cr_user_metrics um;
            int64_t rank = 1;
            for (int64_t k = 1; k < n; k++) rank += sc[k] >= sc[0] || isnan(sc[0]);
            cr_metrics_from_ranks(&rank, can ? 1 : 0, 1, n - 1, ev->p->ks, ev->p->n_k, &um);
            for (int q = 0; q < ev->p->n_k; q++) {
                sum[q] += um.precision[q], sum[CR_MAX_K + q] += um.recall[q], sum[2 * CR_MAX_K + q] += um.ndcg[q];
                sum[3 * CR_MAX_K + q] += um.hr[q], sum[4 * CR_MAX_K + q] += um.map[q];
            }
            sum[5 * CR_MAX_K] += um.mrr, sum[5 * CR_MAX_K + 1] += um.auc;
            r->sampled_pairs++;
        }
    }
    cr_free(cand), cr_free(sc);
    double n = r->sampled_pairs ? (double)r->sampled_pairs : 1;
    for (int q = 0; q < ev->p->n_k; q++) {
        r->sampled.precision[q] = sum[q] / n, r->sampled.recall[q] = sum[CR_MAX_K + q] / n;
        r->sampled.ndcg[q] = sum[2 * CR_MAX_K + q] / n, r->sampled.hr[q] = sum[3 * CR_MAX_K + q] / n;
        r->sampled.map[q] = sum[4 * CR_MAX_K + q] / n;
    }
    r->sampled.mrr = sum[5 * CR_MAX_K] / n, r->sampled.auc = sum[5 * CR_MAX_K + 1] / n;
    return st;
}

static const char *const user_group_names[] = {"cold in target", "warm in target", "history 0", "history 1-5",
                                               "history 6-20", "history 21-100", "history >100"};

/* User groups: 0/1 cold or warm in the target domain (training events there), 2..6 history-length buckets. */
static void user_groups(const evaluation *ev, int32_t u, int g[2]) {
    const cr_interactions *t = ev->train;
    int64_t n = t->user_ptr[u + 1] - t->user_ptr[u], in_target = 0;
    for (int64_t e = t->user_ptr[u]; e < t->user_ptr[u + 1] && !in_target; e++)
        in_target = ev->target < 0 || t->item_domain[t->user_items[e]] == ev->target;
    g[0] = in_target ? 1 : 0;
    g[1] = n == 0 ? 2 : n <= 5 ? 3 : n <= 20 ? 4 : n <= 100 ? 5 : 6;
}

static cr_status write_per_user(const evaluation *ev, const cr_eval_result *r) {
    const cr_dataset *d = cr_split_dataset(ev->s);
    FILE *f = fopen(ev->p->per_user_path, "w");
    if (!f) return cr_fail(CR_ERR_IO, "%s: cannot write: %s", ev->p->per_user_path, strerror(errno));
    fprintf(f, "user\ttarget_history\thistory\tground_truth\tranked\trepresented");
    for (int q = 0; q < r->n_k; q++) fprintf(f, "\trecall@%d\tndcg@%d\thr@%d", r->ks[q], r->ks[q], r->ks[q]);
    fprintf(f, "\tmrr\tauc\n");
    for (int64_t ui = 0; ui < r->n_users; ui++) {
        int32_t u = r->users[ui];
        int g[2];
        user_groups(ev, u, g);
        const cr_user_metrics *m = &r->per_user[ui];
        fprintf(f, "%s\t%s\t%lld\t%lld\t%lld\t%d", cr_dataset_user_id(d, u), g[0] ? "warm" : "cold",
                (long long)(ev->train->user_ptr[u + 1] - ev->train->user_ptr[u]), (long long)(ev->gt->gt_ptr[ui + 1] - ev->gt->gt_ptr[ui]),
                (long long)ev->n_ranked[ui], ev->represented[ui]);
        for (int q = 0; q < r->n_k; q++) fprintf(f, "\t%.6f\t%.6f\t%.0f", m->recall[q], m->ndcg[q], m->hr[q]);
        fprintf(f, "\t%.6f\t%.6f\n", m->mrr, m->auc);
    }
    if (fclose(f)) return cr_fail(CR_ERR_IO, "%s: write failed: %s", ev->p->per_user_path, strerror(errno));
    return CR_OK;
}

static void free_evaluation(evaluation *ev) {
    cr_free(ev->is_cand), cr_free(ev->item_pop), cr_free(ev->item_group), cr_free(ev->represented), cr_free(ev->n_ranked);
    cr_free(ev->ild), cr_free(ev->novelty), cr_free(ev->group_hits), cr_free(ev->group_gt), cr_free(ev->um);
    cr_free(ev->curve_sum);
    free_text_vectors(&ev->tv);
}

cr_status cr_evaluate(const cr_split *s, const cr_model *m, const cr_eval_params *p, cr_eval_result **out) {
    *out = NULL;
    double t0 = cr_now();
    if (p->n_k < 1 || p->n_k > CR_MAX_K) return cr_fail(CR_ERR_ARG, "between 1 and %d cut-offs K", CR_MAX_K);
    for (int q = 0; q < p->n_k; q++)
        if (p->ks[q] < 1) return cr_fail(CR_ERR_ARG, "cut-off K must be at least 1 (got %d)", p->ks[q]);
    if (p->curve_k < 0 || p->curve_k > CR_MAX_CURVE_K)
        return cr_fail(CR_ERR_ARG, "curves reach K = 1..%d (got %d)", CR_MAX_CURVE_K, p->curve_k);
    const cr_dataset *d = cr_split_dataset(s);
    if (m->dataset_crc && cr_dataset_file_crc(d) && m->dataset_crc != cr_dataset_file_crc(d))
        return cr_fail(CR_ERR_ARG, "the model was trained on another dataset (checksum %08x, the split's dataset %08x)",
                       m->dataset_crc, cr_dataset_file_crc(d));
    if (m->n_items != cr_dataset_inter(d)->n_items)
        return cr_fail(CR_ERR_ARG, "the model knows %lld items, the split's dataset %lld", (long long)m->n_items,
                       (long long)cr_dataset_inter(d)->n_items);
    evaluation ev = {.s = s, .m = m, .p = p, .train = cr_split_train(s), .gt = cr_split_truth(s, p->part), .target = cr_split_target(s)};
    const int64_t n_domains = cr_dataset_inter(d)->n_domains;
    cr_ground_truth subset = {0};
    int32_t *sub_users = NULL;
    int64_t *sub_ptr = NULL;
    if (p->max_users > 0 && ev.gt->n_users > p->max_users) {
        /* users at positions floor(k * n / max): evenly spaced and the same for every evaluation */
        const cr_ground_truth *all = ev.gt;
        int64_t n = p->max_users;
        sub_users = cr_malloc((size_t)n * sizeof *sub_users);
        sub_ptr = cr_malloc((size_t)(n + 1) * sizeof *sub_ptr);
        int32_t *sub_items = NULL;
        int64_t total = 0;
        if (sub_users && sub_ptr) {
            for (int64_t k = 0; k < n; k++) {
                int64_t at = (int64_t)((double)k * (double)all->n_users / (double)n);
                total += all->gt_ptr[at + 1] - all->gt_ptr[at];
            }
            sub_items = cr_malloc((size_t)(total ? total : 1) * sizeof *sub_items);
        }
        if (!sub_users || !sub_ptr || !sub_items) {
            cr_free(sub_users), cr_free(sub_ptr), cr_free(sub_items);
            return cr_fail(CR_ERR_NOMEM, "out of memory (user subset)");
        }
        sub_ptr[0] = 0;
        for (int64_t k = 0; k < n; k++) {
            int64_t at = (int64_t)((double)k * (double)all->n_users / (double)n), len = all->gt_ptr[at + 1] - all->gt_ptr[at];
            sub_users[k] = all->users[at];
            memcpy(sub_items + sub_ptr[k], all->gt_items + all->gt_ptr[at], (size_t)len * sizeof *sub_items);
            sub_ptr[k + 1] = sub_ptr[k] + len;
        }
        subset = (cr_ground_truth){n, sub_users, sub_ptr, sub_items};
        ev.gt = &subset;
    }
    ev.cand = cr_split_candidates(s, &ev.n_cand);
    ev.n_items = cr_dataset_inter(d)->n_items;
    ev.block = p->block_items > 0 ? p->block_items : 8192;
    for (int q = 0; q < p->n_k; q++) ev.kmax = p->ks[q] > ev.kmax ? p->ks[q] : ev.kmax;
    int64_t nu = ev.gt->n_users, nk = p->n_k, max_gt = 0;
    for (int64_t ui = 0; ui < nu; ui++)
        if (ev.gt->gt_ptr[ui + 1] - ev.gt->gt_ptr[ui] > max_gt) max_gt = ev.gt->gt_ptr[ui + 1] - ev.gt->gt_ptr[ui];
    cr_status st = CR_OK;
    cr_eval_result *r = cr_calloc(1, sizeof *r);
    ev.is_cand = cr_calloc((size_t)ev.n_items + 1, 1);
    ev.um = cr_calloc((size_t)nu + 1, sizeof *ev.um);
    ev.represented = cr_calloc((size_t)nu + 1, 1);
    ev.n_ranked = cr_calloc((size_t)nu + 1, sizeof *ev.n_ranked);
    ev.ild = cr_calloc((size_t)(nu * nk) + 1, sizeof *ev.ild);
    ev.novelty = cr_calloc((size_t)(nu * nk) + 1, sizeof *ev.novelty);
    ev.group_hits = cr_calloc((size_t)(nu * N_ITEM_GROUPS * nk) + 1, sizeof *ev.group_hits);
    ev.group_gt = cr_calloc((size_t)(nu * N_ITEM_GROUPS) + 1, sizeof *ev.group_gt);
    int64_t *exposure = cr_calloc((size_t)(nk * ev.n_items) + 1, sizeof *exposure);
    if (r) {
        r->domain_gt_n = cr_calloc((size_t)n_domains + 1, sizeof *r->domain_gt_n);
        r->domain_recall = cr_calloc((size_t)(n_domains * nk) + 1, sizeof *r->domain_recall);
    }
    int64_t *dom_hits = cr_calloc((size_t)(n_domains * nk) + 1, sizeof *dom_hits);
    if (!r || !ev.is_cand || !ev.um || !ev.represented || !ev.n_ranked || !ev.ild || !ev.novelty || !ev.group_hits ||
        !ev.group_gt || !exposure || !r->domain_gt_n || !r->domain_recall || !dom_hits) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (evaluation of %lld users)", (long long)nu);
        goto done;
    }
    for (int64_t c = 0; c < ev.n_cand; c++) ev.is_cand[ev.cand[c]] = 1;
    if ((st = item_statistics(&ev)) || (st = build_text_vectors(d, ev.cand, ev.n_cand, &ev.tv, &ev.has_text))) goto done;

    /* Batches: up to BATCH_ROWS rows, fewer when the rows' ground truth is large, so that rows x union of
     * positives stays within about 4M scores. Fixed before the threads start: results do not depend on them. */
    int64_t *batch_at = cr_malloc((size_t)(nu + 2) * sizeof *batch_at), n_batches = 0;
    if (!batch_at) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t u = 0; u < nu;) {
        int64_t rows = 0, sum_gt = 0;
        batch_at[n_batches++] = u;
        while (u < nu && rows < BATCH_ROWS) {
            int64_t g = ev.gt->gt_ptr[u + 1] - ev.gt->gt_ptr[u];
            if (rows && (rows + 1) * (sum_gt + g) > ((int64_t)1 << 22)) break;
            rows++, sum_gt += g, u++;
        }
    }
    batch_at[n_batches] = nu;
    if (p->curve_k && !(ev.curve_sum = cr_calloc((size_t)(n_batches * 2 * p->curve_k) + 1, sizeof *ev.curve_sum))) {
        cr_free(batch_at);
        st = cr_fail(CR_ERR_NOMEM, "out of memory (curves of %lld users)", (long long)nu);
        goto done;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = p->threads > 0 ? p->threads : omp_get_max_threads();
#endif
    if (threads > n_batches) threads = n_batches > 0 ? (int)n_batches : 1;
    cr_status thread_st[256] = {CR_OK};
    if (threads > 256) threads = 256;
    CR_OMP(omp parallel num_threads(threads))
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        scratch w;
        cr_status ts = scratch_init(&w, ev.block, ev.n_items, n_domains, max_gt, (int)nk, ev.kmax);
        CR_OMP(omp for schedule(dynamic, 1))
        for (int64_t b = 0; b < n_batches; b++) {
            if (ts) continue;
            ts = eval_batch(&ev, &w, batch_at[b], batch_at[b + 1], b);
            if (!ts && p->progress.fn) {
                CR_OMP(omp critical(cr_eval_progress))
                {
                    ev.users_done += batch_at[b + 1] - batch_at[b];
                    cr_progress_report(&p->progress, ev.users_done, nu);
                }
            }
        }
        if (!ts) {
            /* integer counts: the sums do not depend on the order the threads arrive in */
            CR_OMP(omp critical)
            {
                for (int64_t k = 0; k < nk * ev.n_items; k++) exposure[k] += w.exposure[k];
                for (int64_t k = 0; k < nk * n_domains; k++) dom_hits[k] += w.dom_hits[k];
                for (int64_t k = 0; k < n_domains; k++) r->domain_gt_n[k] += w.dom_gt[k];
            }
        }
        scratch_free(&w);
        thread_st[tid] = ts;
    }
    cr_free(batch_at);
    for (int k = 0; k < threads && !st; k++) st = thread_st[k];
    if (st) goto done;

    /* summary: means over users in position order (identical at any thread count) */
    r->n_users = nu;
    r->n_no_truth = p->part == CR_PART_TEST ? cr_split_stats_of(s)->test_no_truth : cr_split_stats_of(s)->valid_no_truth;
    r->n_k = p->n_k;
    memcpy(r->ks, p->ks, sizeof r->ks);
    double sum_ild[CR_MAX_K] = {0}, sum_nov[CR_MAX_K] = {0};
    int64_t ug_n[8] = {0};
    double ug_recall[8][CR_MAX_K] = {{0}}, ug_ndcg[8][CR_MAX_K] = {{0}};
    int64_t ig_gt[N_ITEM_GROUPS] = {0}, ig_hits[N_ITEM_GROUPS][CR_MAX_K] = {{0}};
    for (int64_t ui = 0; ui < nu; ui++) {
        const cr_user_metrics *um = &ev.um[ui];
        for (int q = 0; q < nk; q++) {
            r->mean.precision[q] += um->precision[q], r->mean.recall[q] += um->recall[q], r->mean.ndcg[q] += um->ndcg[q];
            r->mean.hr[q] += um->hr[q], r->mean.map[q] += um->map[q];
            sum_ild[q] += ev.ild[ui * nk + q], sum_nov[q] += ev.novelty[ui * nk + q];
        }
        r->mean.mrr += um->mrr, r->mean.auc += um->auc;
        if (!ev.represented[ui]) r->n_unrepresented++;
        r->n_gt_outside += (ev.gt->gt_ptr[ui + 1] - ev.gt->gt_ptr[ui]) - ev.n_ranked[ui];
        int g[2];
        user_groups(&ev, ev.gt->users[ui], g);
        for (int k = 0; k < 2; k++) {
            ug_n[g[k]]++;
            for (int q = 0; q < nk; q++) ug_recall[g[k]][q] += um->recall[q], ug_ndcg[g[k]][q] += um->ndcg[q];
        }
        for (int k = 0; k < N_ITEM_GROUPS; k++) {
            ig_gt[k] += ev.group_gt[ui * N_ITEM_GROUPS + k];
            for (int q = 0; q < nk; q++) ig_hits[k][q] += ev.group_hits[(ui * N_ITEM_GROUPS + k) * nk + q];
        }
    }
    double n = nu ? (double)nu : 1;
    for (int q = 0; q < nk; q++) {
        r->mean.precision[q] /= n, r->mean.recall[q] /= n, r->mean.ndcg[q] /= n, r->mean.hr[q] /= n, r->mean.map[q] /= n;
        r->ild[q] = ev.has_text ? sum_ild[q] / n : NAN;
        r->novelty[q] = sum_nov[q] / n;
    }
    r->mean.mrr /= n, r->mean.auc /= n;
    /* Gini over the candidate items only (items outside the candidates can never be shown) */
    int64_t *cand_exp = cr_malloc((size_t)(ev.n_cand ? ev.n_cand : 1) * sizeof *cand_exp);
    if (!cand_exp) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (exposure)");
        goto done;
    }
    for (int q = 0; q < nk; q++) {
        for (int64_t c = 0; c < ev.n_cand; c++) cand_exp[c] = exposure[q * ev.n_items + ev.cand[c]];
        r->coverage[q] = cr_coverage(cand_exp, ev.n_cand);
        r->gini[q] = cr_gini(cand_exp, ev.n_cand);
        if (isnan(r->gini[q])) st = CR_ERR_NOMEM;      /* its scratch; the message is set */
    }
    cr_free(cand_exp);
    if (st) goto done;
    r->n_user_groups = 7;
    r->n_item_groups = N_ITEM_GROUPS;
    for (int k = 0; k < 7; k++) {
        r->user_group_name[k] = user_group_names[k];
        r->user_group_n[k] = ug_n[k];
        for (int q = 0; q < nk; q++) {
            r->user_group_recall[k][q] = ug_n[k] ? ug_recall[k][q] / (double)ug_n[k] : 0;
            r->user_group_ndcg[k][q] = ug_n[k] ? ug_ndcg[k][q] / (double)ug_n[k] : 0;
        }
    }
    static const char *const item_group_names[N_ITEM_GROUPS] = {"cold items", "head items", "tail items", "cold among cold"};
    for (int k = 0; k < N_ITEM_GROUPS; k++) {
        r->item_group_name[k] = item_group_names[k];
        r->item_group_n[k] = ig_gt[k];
        for (int q = 0; q < nk; q++) r->item_group_recall[k][q] = ig_gt[k] ? (double)ig_hits[k][q] / (double)ig_gt[k] : 0;
    }
    r->n_domains = n_domains;
    for (int64_t k = 0; k < n_domains; k++)
        for (int q = 0; q < nk; q++)
            r->domain_recall[k * nk + q] = r->domain_gt_n[k] ? (double)dom_hits[k * nk + q] / (double)r->domain_gt_n[k] : 0;
    if (p->curve_k) {
        /* batch sums added in batch order: identical at any thread count */
        r->curve_k = p->curve_k;
        r->curve_recall = cr_calloc((size_t)p->curve_k, sizeof *r->curve_recall);
        r->curve_ndcg = cr_calloc((size_t)p->curve_k, sizeof *r->curve_ndcg);
        if (!r->curve_recall || !r->curve_ndcg) {
            st = cr_fail(CR_ERR_NOMEM, "out of memory (curves)");
            goto done;
        }
        for (int64_t b = 0; b < n_batches; b++)
            for (int k = 0; k < p->curve_k; k++) {
                r->curve_recall[k] += ev.curve_sum[b * 2 * p->curve_k + k];
                r->curve_ndcg[k] += ev.curve_sum[b * 2 * p->curve_k + p->curve_k + k];
            }
        for (int k = 0; k < p->curve_k; k++) r->curve_recall[k] /= n, r->curve_ndcg[k] /= n;
    }
    r->per_user = ev.um;
    ev.um = NULL;
    if (!(r->users = cr_malloc((size_t)(nu ? nu : 1) * sizeof *r->users))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(r->users, ev.gt->users, (size_t)nu * sizeof *r->users);
    if ((st = eval_sampled(&ev, r))) goto done;
    if (p->per_user_path && (st = write_per_user(&ev, r))) goto done;
    r->seconds = cr_now() - t0;
done:
    if (sub_users) cr_free((void *)subset.gt_items);
    cr_free(sub_users), cr_free(sub_ptr);
    cr_free(exposure);
    cr_free(dom_hits);
    free_evaluation(&ev);
    if (st) cr_eval_result_free(r);
    else *out = r;
    return st;
}

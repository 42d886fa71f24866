/* metrics.c — exact ranking metrics of one user, positive ranks (full-sort reference and streaming counter),
 * beyond-accuracy metrics over top-K lists, rating errors, and the paired bootstrap (eval.h, DESIGN §4).
 *
 * Ranking convention (eval.h): score descending; among equal scores negatives before positives; then item
 * index ascending; ranks are 1-based. NaN ranks below every number (-inf included) and NaNs tie with each
 * other; -0 and +0 are equal. score_key() maps a float to an integer key whose order is exactly this score
 * order, so that the sorts never depend on a NaN comparison (the search in cr_rank_counter_add uses plain
 * float comparisons on purpose: a NaN negative compares false with everything, which is the right answer).
 *
 * cr_rank_counter: one allocation holding, in this order, ahead (n_pos + 1 int64), pos_score (n_pos float),
 * pos_item (n_pos int32). The positives are sorted by score ascending, ties by item descending, so that
 * reading the arrays from the end gives the ranking order (score desc, item asc). ahead[m] counts the
 * negatives ranked before exactly the first m positives of that ascending order (the top n_pos - m ones are
 * ahead of it); the negatives before positive j are sum_{m > j} ahead[m]. */
#include "crossrec/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Order-preserving integer key of a score: key(a) < key(b) iff a ranks below b. NaN -> 0, below -inf
 * (whose key is 0x007fffff). -0 is folded into +0 so that they tie, as they compare equal. */
static inline uint32_t score_key(float s) {
    if (isnan(s)) return 0;
    if (s == 0.0f) s = 0.0f;
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* ---- metrics of one user from the positives' ranks ------------------------------------------------- */

void cr_metrics_from_ranks(const int64_t *ranks, int64_t n_ranked, int64_t n_pos, int64_t n_neg, const int *ks, int n_k,
                           cr_user_metrics *out) {
    CR_ASSERT(n_pos > 0 && n_ranked >= 0 && n_ranked <= n_pos && n_neg >= 0);
    CR_ASSERT(n_k >= 1 && n_k <= CR_MAX_K);
    /* Ranks strictly ascending from 1; r_i - i (1-based i) negatives precede positive i, never more than
     * there are. r_i - i is non-decreasing, so checking the last one bounds them all. */
    for (int64_t i = 0; i < n_ranked; i++) CR_ASSERT(i == 0 ? ranks[0] >= 1 : ranks[i] > ranks[i - 1]);
    if (n_ranked) CR_ASSERT(ranks[n_ranked - 1] - n_ranked <= n_neg);
    memset(out, 0, sizeof *out);

    /* Visit the cut-offs in ascending order so that one pass over the ranks serves all of them: the sums
     * up to K are the sums up to the previous K plus the ranks in between (same summation order as a
     * per-K loop, so the results do not depend on how ks is ordered). */
    int order[CR_MAX_K];
    for (int j = 0; j < n_k; j++) {
        CR_ASSERT(ks[j] >= 1);
        int q = j;
        for (; q > 0 && ks[order[q - 1]] > ks[j]; q--) order[q] = order[q - 1];
        order[q] = j;
    }
    int64_t hits = 0, next = 0, n_ideal = 0;
    double dcg = 0, idcg = 0, ap = 0;
    for (int o = 0; o < n_k; o++) {
        int j = order[o];
        int64_t k = ks[j];
        for (; next < n_ranked && ranks[next] <= k; next++) {
            hits++;
            dcg += 1.0 / log2((double)ranks[next] + 1.0);
            ap += (double)hits / (double)ranks[next];   /* hits = this positive's position among positives */
        }
        int64_t m = n_pos < k ? n_pos : k;             /* the best possible list holds min(|GT|, K) hits */
        for (; n_ideal < m; n_ideal++) idcg += 1.0 / log2((double)n_ideal + 2.0);
        /* precision divides by K even when fewer than K candidates were ranked: the standard definition,
         * and the one that makes numbers comparable across candidate counts. */
        out->precision[j] = (double)hits / (double)k;
        out->recall[j] = (double)hits / (double)n_pos;
        out->hr[j] = hits > 0 ? 1.0 : 0.0;
        out->ndcg[j] = dcg / idcg;
        out->map[j] = ap / (double)m;
    }
    out->mrr = n_ranked ? 1.0 / (double)ranks[0] : 0.0;
    if (n_neg == 0) {
        out->auc = 0.5;
    } else {
        /* Positive i (1-based) has r_i - i negatives before it and n_neg - (r_i - i) after; counted exactly
         * in integers, divided once. Missing positives add nothing. */
        int64_t right = 0;
        for (int64_t i = 0; i < n_ranked; i++) right += n_neg - (ranks[i] - (i + 1));
        out->auc = (double)right / ((double)n_neg * (double)n_pos);
    }
}

/* ---- reference ranks: full sort ---------------------------------------------------------------------- */

typedef struct {
    uint32_t key;
    int32_t item;
    int32_t pos;
} rank_rec;

/* Ranking order: key descending, negatives (pos 0) before positives, item ascending. */
static int rank_rec_cmp(const void *pa, const void *pb) {
    const rank_rec *a = pa, *b = pb;
    if (a->key != b->key) return a->key > b->key ? -1 : 1;
    if (a->pos != b->pos) return a->pos < b->pos ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

int64_t cr_rank_ref(const float *scores, const int32_t *items, const uint8_t *is_pos, int64_t n, int64_t *ranks) {
    CR_ASSERT(n >= 0);
    if (n == 0) return 0;
    rank_rec *rec = cr_malloc((size_t)n * sizeof *rec);
    if (!rec) {
        cr_fail(CR_ERR_NOMEM, "out of memory (ranking %lld candidates)", (long long)n);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        rec[i].key = score_key(scores[i]);
        rec[i].item = items ? items[i] : (int32_t)i;
        rec[i].pos = is_pos[i] ? 1 : 0;
    }
    qsort(rec, (size_t)n, sizeof *rec, rank_rec_cmp);
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; i++)
        if (rec[i].pos) ranks[n_out++] = i + 1;
    cr_free(rec);
    return n_out;
}

/* ---- streaming ranks ------------------------------------------------------------------------------------ */

typedef struct {
    float score;
    int32_t item;
} pos_pair;

/* Score ascending, ties by item DESCENDING: reversed, that is the ranking order (score desc, item asc). */
static int pos_pair_cmp(const void *pa, const void *pb) {
    const pos_pair *a = pa, *b = pb;
    uint32_t ka = score_key(a->score), kb = score_key(b->score);
    if (ka != kb) return ka < kb ? -1 : 1;
    return (a->item < b->item) - (a->item > b->item);
}

cr_status cr_rank_counter_init(cr_rank_counter *c, const float *pos_scores, const int32_t *pos_items, int64_t n_pos) {
    CR_ASSERT(n_pos >= 0);
    memset(c, 0, sizeof *c);
    size_t bytes = (size_t)(n_pos + 1) * sizeof(int64_t) + (size_t)n_pos * (sizeof(float) + sizeof(int32_t));
    char *block = cr_malloc(bytes);
    if (!block) return cr_fail(CR_ERR_NOMEM, "out of memory (rank counter of %lld positives)", (long long)n_pos);
    c->n_pos = n_pos;
    c->ahead = (int64_t *)block;
    c->pos_score = (float *)(block + (size_t)(n_pos + 1) * sizeof(int64_t));
    c->pos_item = (int32_t *)(c->pos_score + n_pos);
    /* Sort (score, item) pairs in the ahead array's space ((n_pos + 1) * 8 bytes >= n_pos pairs of 8), so
     * that init makes a single allocation; ahead is cleared afterwards. */
    pos_pair *pairs = (pos_pair *)block;
    for (int64_t i = 0; i < n_pos; i++) pairs[i] = (pos_pair){pos_scores[i], pos_items[i]};
    qsort(pairs, (size_t)n_pos, sizeof *pairs, pos_pair_cmp);
    for (int64_t i = 0; i < n_pos; i++) {
        c->pos_score[i] = pairs[i].score;
        c->pos_item[i] = pairs[i].item;
    }
    memset(c->ahead, 0, (size_t)(n_pos + 1) * sizeof *c->ahead);
    return CR_OK;
}

void cr_rank_counter_add(cr_rank_counter *c, const float *neg_scores, int64_t n) {
    const float *ps = c->pos_score;
    int64_t n_pos = c->n_pos;
    /* NaN positives sort first (lowest). A NaN negative ties with them and so is ahead of exactly them; a
     * number is ahead of all of them. Find their count once per block. */
    int64_t lo = 0, hi = n_pos;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (isnan(ps[mid])) lo = mid + 1;
        else hi = mid;
    }
    int64_t n_nan = lo, len = n_pos - n_nan;
    const float *first = ps + n_nan;    /* the non-NaN positives, in plain float order */
    if (len == 0) {
        c->ahead[n_nan] += n;           /* every negative is ahead of every (NaN) positive */
    } else {
        for (int64_t i = 0; i < n; i++) {
            float s = neg_scores[i];
            /* m = positives with score <= s (a tie puts the negative first) = n_nan + upper bound of s in
             * first[0..len). Branch-free search (the range halves, the comparison picks a side by a
             * conditional move), because random scores make a branchy one mispredict. A NaN s compares
             * false throughout, giving m = n_nan: it ties with exactly the NaN positives. */
            const float *b = first;
            for (int64_t w = len; w > 1; w -= w / 2) b = b[w / 2] <= s ? b + w / 2 : b;
            c->ahead[(b - ps) + (b[0] <= s)]++;
        }
    }
    c->n_neg += n;
}

void cr_rank_counter_ranks(const cr_rank_counter *c, int64_t *ranks) {
    int64_t n_pos = c->n_pos, neg = 0;
    /* From the top positive (j = n_pos - 1) down: rank = 1 + (n_pos - 1 - j) positives ahead + negatives
     * ahead, strictly increasing, so it comes out ascending. */
    for (int64_t j = n_pos - 1; j >= 0; j--) {
        neg += c->ahead[j + 1];
        ranks[n_pos - 1 - j] = (n_pos - j) + neg;
    }
}

void cr_rank_counter_free(cr_rank_counter *c) {
    if (!c) return;
    cr_free(c->ahead);   /* the one block (see init) */
    memset(c, 0, sizeof *c);
}

/* ---- beyond accuracy -------------------------------------------------------------------------------- */

double cr_coverage(const int64_t *exposure, int64_t n_items) {
    if (n_items <= 0) return 0.0;
    int64_t shown = 0;
    for (int64_t i = 0; i < n_items; i++) shown += exposure[i] > 0;
    return (double)shown / (double)n_items;
}

static int i64_cmp(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

double cr_gini(const int64_t *exposure, int64_t n_items) {
    if (n_items <= 0) return 0.0;
    int64_t *x = cr_malloc((size_t)n_items * sizeof *x);
    if (!x) {
        cr_fail(CR_ERR_NOMEM, "out of memory (gini over %lld items)", (long long)n_items);
        return NAN;
    }
    memcpy(x, exposure, (size_t)n_items * sizeof *x);
    qsort(x, (size_t)n_items, sizeof *x, i64_cmp);
    /* G = sum_i (2i - n - 1) x_i / (n sum x), i = 1..n over x ascending; in double because the weighted
     * sum can exceed int64 for millions of items. */
    double num = 0, sum = 0, n = (double)n_items;
    for (int64_t i = 0; i < n_items; i++) {
        num += (2.0 * (double)(i + 1) - n - 1.0) * (double)x[i];
        sum += (double)x[i];
    }
    cr_free(x);
    return sum > 0 ? num / (n * sum) : 0.0;
}

double cr_novelty(const int32_t *items, int64_t n, const int64_t *item_pop, int64_t n_users) {
    if (n <= 0) return 0.0;
    double total = 0, base = log2((double)n_users + 1.0);
    for (int64_t i = 0; i < n; i++) total += base - log2((double)item_pop[items[i]] + 1.0);
    return total / (double)n;
}

/* Dot product of two sparse rows with ascending indices (merge join). */
static double sparse_dot(const int32_t *ia, const float *va, int64_t na, const int32_t *ib, const float *vb,
                         int64_t nb) {
    /* branch-free merge: the comparisons are unpredictable, so advance both cursors arithmetically */
    double dot = 0;
    int64_t p = 0, q = 0;
    while (p < na && q < nb) {
        int32_t x = ia[p], y = ib[q];
        double prod = (double)va[p] * (double)vb[q];
        dot += x == y ? prod : 0.0;
        p += x <= y;
        q += y <= x;
    }
    return dot;
}

static double sparse_norm(const float *v, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)v[i] * (double)v[i];
    return sqrt(s);
}

double cr_ild(const int32_t *items, int64_t n, const int64_t *vec_ptr, const int32_t *vec_idx, const float *vec_val) {
    if (n < 2) return 0.0;
    double total = 0;
    for (int64_t a = 0; a < n; a++) {
        int64_t a0 = vec_ptr[items[a]], na = vec_ptr[items[a] + 1] - a0;
        double norm_a = sparse_norm(vec_val + a0, na);
        for (int64_t b = a + 1; b < n; b++) {
            int64_t b0 = vec_ptr[items[b]], nb = vec_ptr[items[b] + 1] - b0;
            double norm_b = sparse_norm(vec_val + b0, nb), cos = 0;
            /* a zero vector has no direction: cosine 0 with anything (distance 1) */
            if (norm_a > 0 && norm_b > 0) {
                cos = sparse_dot(vec_idx + a0, vec_val + a0, na, vec_idx + b0, vec_val + b0, nb) / (norm_a * norm_b);
                if (cos > 1.0) cos = 1.0;      /* rounding of parallel vectors */
                if (cos < -1.0) cos = -1.0;
            }
            total += 1.0 - cos;
        }
    }
    return total / ((double)n * (double)(n - 1) / 2.0);
}

void cr_ild_prefixes(const int32_t *items, int64_t n, const int64_t *vec_ptr, const int32_t *vec_idx, const float *vec_val,
                     const int *ks, int n_k, double *norm, double *out) {
    for (int64_t a = 0; a < n; a++) norm[a] = sparse_norm(vec_val + vec_ptr[items[a]], vec_ptr[items[a] + 1] - vec_ptr[items[a]]);
    /* pairs (a, b), a < b, enter every cut K > b: accumulate per b, then prefix-sum */
    double below = 0;   /* sum of distances of pairs with both members before b */
    int64_t kmax = 0;
    for (int q = 0; q < n_k; q++) kmax = ks[q] > kmax ? ks[q] : kmax;
    if (kmax > n) kmax = n;
    for (int q = 0; q < n_k; q++) out[q] = 0;
    for (int64_t b = 0; b < kmax; b++) {
        int64_t b0 = vec_ptr[items[b]], nb = vec_ptr[items[b] + 1] - b0;
        for (int64_t a = 0; a < b; a++) {
            int64_t a0 = vec_ptr[items[a]], na = vec_ptr[items[a] + 1] - a0;
            double cos = 0;
            if (norm[a] > 0 && norm[b] > 0) {
                cos = sparse_dot(vec_idx + a0, vec_val + a0, na, vec_idx + b0, vec_val + b0, nb) / (norm[a] * norm[b]);
                if (cos > 1.0) cos = 1.0;
                if (cos < -1.0) cos = -1.0;
            }
            below += 1.0 - cos;
        }
        /* `below` now covers the first b + 1 items: the cut K = b + 1 */
        for (int q = 0; q < n_k; q++) {
            int64_t k = ks[q] < n ? ks[q] : n;
            if (k == b + 1 && k >= 2) out[q] = below / ((double)k * (double)(k - 1) / 2.0);
        }
    }
}

/* ---- rating errors ---------------------------------------------------------------------------------- */

double cr_mae(const float *pred, const float *truth, int64_t n) {
    if (n <= 0) return 0.0;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)pred[i] - (double)truth[i]);
    return s / (double)n;
}

double cr_rmse(const float *pred, const float *truth, int64_t n) {
    if (n <= 0) return 0.0;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)pred[i] - (double)truth[i];
        s += e * e;
    }
    return sqrt(s / (double)n);
}

/* ---- paired bootstrap --------------------------------------------------------------------------------- */

static int double_cmp(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

cr_status cr_bootstrap_diff(const double *a, const double *b, int64_t n, int reps, uint64_t seed, double *mean,
                            double *lo, double *hi) {
    if (n <= 0) return cr_fail(CR_ERR_ARG, "bootstrap: no users to compare (n = %lld)", (long long)n);
    if (n > (int64_t)UINT32_MAX) return cr_fail(CR_ERR_ARG, "bootstrap: too many users (%lld)", (long long)n);
    if (reps < 1) return cr_fail(CR_ERR_ARG, "bootstrap: reps must be >= 1, got %d", reps);
    double *rep = cr_malloc((size_t)reps * sizeof *rep);
    if (!rep) return cr_fail(CR_ERR_NOMEM, "out of memory (bootstrap of %d resamples)", reps);
    double sum = 0;
    for (int64_t u = 0; u < n; u++) sum += b[u] - a[u];
    *mean = sum / (double)n;
    /* Each resample draws n user indices in turn from the "bootstrap" stream, so results depend only on
     * (a, b, n, reps, seed). */
    cr_rng r;
    cr_rng_named(&r, seed, "bootstrap");
    for (int k = 0; k < reps; k++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = cr_rng_below(&r, (uint32_t)n);
            s += b[u] - a[u];
        }
        rep[k] = s / (double)n;
    }
    qsort(rep, (size_t)reps, sizeof *rep, double_cmp);
    /* Nearest-rank percentiles: the P-th is the ceil(P/100 * reps)-th smallest (1-based), computed in
     * integers (per mille) so that 2.5% of 1000 is exactly the 25th, not the 26th after rounding. */
    int64_t r_lo = (25 * (int64_t)reps + 999) / 1000, r_hi = (975 * (int64_t)reps + 999) / 1000;   /* >= 1 */
    *lo = rep[r_lo - 1];
    *hi = rep[r_hi - 1];
    cr_free(rep);
    return CR_OK;
}

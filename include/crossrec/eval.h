/* crossrec/eval.h — exact ranking metrics (DESIGN §4) and the evaluation of a model on a split.
 *
 * Ranking convention, everywhere: candidates are ordered by score descending; among equal scores negatives
 * come before positives (the pessimistic order: a tie never helps the model), then by item index ascending.
 * A positive that is not among the ranked candidates (excluded as seen, outside the target domain, or a user
 * the model cannot represent) is a miss: it has no rank. */
#ifndef CROSSREC_EVAL_H
#define CROSSREC_EVAL_H

#include "crossrec/model.h"
#include "crossrec/split.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metric kernels -------------------------------------------------------------------------------- */

/* Scores, in every kernel below: NaN ranks below every number (-inf included) and NaNs tie with each other;
 * -0 and +0 are equal. Kernels are deterministic and thread-safe on distinct objects. */

#define CR_MAX_K 8

/* Metrics of one user. Cut-off metrics per K (same order as the ks given). */
typedef struct {
    double precision[CR_MAX_K], recall[CR_MAX_K], ndcg[CR_MAX_K], hr[CR_MAX_K], map[CR_MAX_K];
    double mrr;     /* 1 / rank of the first positive, 0 if none ranked */
    double auc;     /* share of (ranked positive, negative) pairs in the right order, over all positives:
                       a positive without a rank counts 0; 0.5 when there are no negatives */
} cr_user_metrics;

/* From the ranks of the ranked positives (1-based, ascending, n_ranked of them), the number of positives
 * |GT| (n_pos >= n_ranked, > 0), and the number of ranked negatives. ks: n_k values in 1..CR_MAX_K entries.
 *   precision@K = hits@K / K          recall@K = hits@K / |GT|        hr@K = [hits@K > 0]
 *   ndcg@K = sum_{r<=K} 1/log2(r+1) / sum_{i=1..min(|GT|,K)} 1/log2(i+1)
 *   map@K = (1/min(|GT|,K)) sum_{i: r_i<=K} i / r_i     (i = position among the positives)
 *   mrr = 1 / r_1 (0 if none ranked)     auc = (1/|GT|) sum_i (n_neg - (r_i - i)) / n_neg  (0.5 if n_neg = 0)
 * precision@K divides by K even when fewer than K candidates were ranked (the standard definition).
 * Ranks that are not strictly ascending from 1, or that leave more than n_neg negatives before a positive,
 * are a bug of the caller (CR_ASSERT). */
void cr_metrics_from_ranks(const int64_t *ranks, int64_t n_ranked, int64_t n_pos, int64_t n_neg, const int *ks, int n_k,
                           cr_user_metrics *out);

/* Scalar reference: ranks of the positives among n scored candidates (is_pos[i] marks positives), by a full
 * sort in the convention above. items NULL means candidate i is item i. ranks (n_pos_among_candidates)
 * ascending. Returns the number written, or -1 (CR_ERR_NOMEM message) if its (n) scratch array cannot be
 * allocated. The oracle for cr_rank_counter. */
int64_t cr_rank_ref(const float *scores, const int32_t *items, const uint8_t *is_pos, int64_t n, int64_t *ranks);

/* Streaming ranks: the positives' scores are known first; negatives then arrive in blocks of any size. */
typedef struct {
    int64_t n_pos;
    float *pos_score;       /* (n_pos) sorted ascending */
    int32_t *pos_item;      /* (n_pos) in the same order */
    int64_t *ahead;         /* (n_pos + 1) difference array: ahead[m] = negatives ranked before exactly the
                               first m positives in this ascending order; before positive j: sum_{m>j} */
    int64_t n_neg;
} cr_rank_counter;

/* Copies and sorts the positives (score ascending, equal scores by item DESCENDING, so that read from the end
 * they are in ranking order). One allocation; CR_ERR_NOMEM leaves *c empty (free is then a no-op). */
cr_status cr_rank_counter_init(cr_rank_counter *c, const float *pos_scores, const int32_t *pos_items, int64_t n_pos);
/* Adds negatives (their item indices are not needed: a tie always puts the negative first). O(n log n_pos),
 * no allocation. */
void cr_rank_counter_add(cr_rank_counter *c, const float *neg_scores, int64_t n);
/* Writes the n_pos ranks ascending. */
void cr_rank_counter_ranks(const cr_rank_counter *c, int64_t *ranks);
void cr_rank_counter_free(cr_rank_counter *c);

/* Bounded top-K of (score, item): higher score first, equal scores by item index ascending. */
typedef struct {
    int64_t k, n;
    float *score;       /* (k) heap */
    int32_t *item;      /* (k) */
} cr_topk;

cr_status cr_topk_init(cr_topk *t, int64_t k);
void cr_topk_reset(cr_topk *t);
void cr_topk_push(cr_topk *t, float score, int32_t item);
/* Sorts the kept entries best first into items/scores (either may be NULL); returns their number (<= k).
 * The heap is consumed: the top-K is left empty, as after reset. push: O(log k), no allocation. */
int64_t cr_topk_sorted(cr_topk *t, int32_t *items, float *scores);
void cr_topk_free(cr_topk *t);

/* Beyond accuracy, over all users' top-K lists. exposure: (n_items) times each candidate item was in a top-K. */
double cr_coverage(const int64_t *exposure, int64_t n_items);   /* share of items shown at least once */
/* Gini over exposure ascending x_1..x_n: sum_i (2i - n - 1) x_i / (n sum x); 0 if n or sum x is 0; all on one
 * item gives (n - 1)/n. Sorts a copy: NAN (with a CR_ERR_NOMEM message) if that cannot be allocated. */
double cr_gini(const int64_t *exposure, int64_t n_items);       /* 0 = equal exposure, -> 1 = concentrated;
                                                                   NaN with a CR_ERR_NOMEM message when its
                                                                   sorted copy cannot be allocated */
/* Novelty of a list: mean of -log2((pop(i) + 1) / (n_users + 1)), pop = training users of the item. */
double cr_novelty(const int32_t *items, int64_t n, const int64_t *item_pop, int64_t n_users);
/* Intra-list diversity: mean over pairs of 1 - cosine of the items' sparse vectors (CSR: vec_ptr, vec_idx
 * ascending, vec_val). A zero vector has cosine 0 with anything. 0 for lists of fewer than two items. */
double cr_ild(const int32_t *items, int64_t n, const int64_t *vec_ptr, const int32_t *vec_idx, const float *vec_val);
/* cr_ild of the first min(K, n) items for each K, in one pass over the pairs (the same arithmetic per pair as
 * cr_ild, which is its reference). norm: scratch of n doubles. */
void cr_ild_prefixes(const int32_t *items, int64_t n, const int64_t *vec_ptr, const int32_t *vec_idx, const float *vec_val,
                     const int *ks, int n_k, double *norm, double *out);
/* Rating error of predictions (0 when n is 0). */
double cr_mae(const float *pred, const float *truth, int64_t n);
double cr_rmse(const float *pred, const float *truth, int64_t n);

/* Paired bootstrap of mean(b - a) over n users: reps resamples of n users with replacement, drawn from the
 * stream cr_rng_named(seed, "bootstrap"); writes the mean difference and the 2.5% / 97.5% percentiles of the
 * resample means by the nearest-rank method (the ceil(P/100 * reps)-th smallest). CR_ERR_ARG if n < 1,
 * n > UINT32_MAX or reps < 1; CR_ERR_NOMEM. */
cr_status cr_bootstrap_diff(const double *a, const double *b, int64_t n, int reps, uint64_t seed, double *mean,
                            double *lo, double *hi);

/* ---- evaluation of a model on a split ----------------------------------------------------------------- */

typedef struct {
    int ks[CR_MAX_K];
    int n_k;                    /* default 10, 20, 50 */
    cr_part part;               /* default CR_PART_TEST */
    int keep_seen;              /* rank items already in the user's training history too (default: excluded) */
    int threads;                /* 0 = OpenMP default; results are identical at any count */
    int64_t block_items;        /* candidates scored per block (memory bound; default 8192) */
    const char *per_user_path;  /* write one TSV row per evaluated user */
    int64_t max_users;          /* > 0: evaluate an evenly spaced, fixed subset of at most this many users
                                   (validation during training); 0: all */
    int curve_k;                /* > 0: also recall@K and NDCG@K at every K = 1..curve_k (at most
                                   CR_MAX_CURVE_K), for plots; 0 (default): not computed */
    cr_progress progress;       /* evaluated users of the n_users, as batches finish (default: none) */
} cr_eval_params;

#define CR_MAX_CURVE_K 1000

cr_eval_params cr_eval_default_params(void);

/* Per-user results, averaged into the summary below. */
typedef struct {
    int64_t n_users;            /* users with ground truth in the part */
    int64_t n_no_truth;         /* users the split held out for the part who have no ground truth: skipped */
    int64_t n_unrepresented;    /* of those, users the model could not represent (all positives missed) */
    int64_t n_gt_outside;       /* ground-truth items that were not candidates (seen-excluded or other domain) */
    int ks[CR_MAX_K];
    int n_k;
    cr_user_metrics mean;       /* averaged over n_users */
    double coverage[CR_MAX_K], gini[CR_MAX_K], ild[CR_MAX_K], novelty[CR_MAX_K];
    cr_user_metrics sampled;    /* the sampled view (when the split has one): averaged over held-out pairs */
    int64_t sampled_pairs;
    /* breakdowns: recall@K per user group and per item group (cold, head, tail; then "cold among cold": the cold
       ground truth ranked among the cold candidates only) */
    int n_user_groups, n_item_groups;
    const char *user_group_name[8], *item_group_name[4];
    int64_t user_group_n[8], item_group_n[4];
    double user_group_recall[8][CR_MAX_K], user_group_ndcg[8][CR_MAX_K], item_group_recall[4][CR_MAX_K];
    /* by the domain of the ground-truth items (several when the candidates span domains: a warm split without
       a target): items and recall@K, as for item groups */
    int64_t n_domains;
    int64_t *domain_gt_n;       /* (n_domains) ground-truth items of each domain */
    double *domain_recall;      /* (n_domains * n_k) hits@K among them / domain_gt_n (0 when none) */
    /* curves (params.curve_k > 0), means over users like `mean`: index K - 1 for K = 1..curve_k; NULL else */
    int curve_k;
    double *curve_recall, *curve_ndcg;
    cr_user_metrics *per_user;  /* (n_users) for paired comparisons */
    int32_t *users;             /* (n_users) */
    double seconds;
} cr_eval_result;

/* Evaluates m on part p->part of s. Errors: CR_ERR_ARG (no or too many cut-offs, a K < 1, curve_k outside
 * 0..CR_MAX_CURVE_K, a model of another dataset), CR_ERR_NOMEM, CR_ERR_IO (per_user_path), and the model's
 * scoring errors. *r is owned by the caller (cr_eval_result_free). */
cr_status cr_evaluate(const cr_split *s, const cr_model *m, const cr_eval_params *p, cr_eval_result **r);
void cr_eval_result_free(cr_eval_result *r);
void cr_eval_print(const cr_eval_result *r, const char *model_name, FILE *out);
cr_status cr_eval_json(const cr_eval_result *r, const char *model_name, FILE *out);

/* ---- comparing models on one split (src/eval/compare.c): what `crossrec compare` and `crossrec report` show --- */

/* The columns of a comparison: recall@K, ndcg@K and hr@K for each K of the results, then mrr. */
static inline int cr_compare_n_cols(int n_k) { return 3 * n_k + 1; }
/* Column col of metrics m (a user's or a mean). */
double cr_compare_value(const cr_user_metrics *m, int col, int n_k);
/* "recall@10", "ndcg@50", "mrr". */
void cr_compare_col_name(int col, const int *ks, int n_k, char *buf, size_t cap);
/* The highest mean of column col over the n results. */
double cr_compare_best(const cr_eval_result *const *res, int n, int col);

typedef struct {
    double mean, lo, hi;    /* mean difference and its 95% interval */
} cr_interval;

/* For each result k = 1..n-1 and column c, the paired bootstrap (cr_bootstrap_diff, reps resamples, seed) of
 * res[k] minus res[0] over their users: diff[(k - 1) * n_cols + c]. The results must be of the same users and
 * cut-offs (CR_ERR_ARG otherwise), as cr_evaluate gives for one split and parameters. CR_ERR_NOMEM. */
cr_status cr_compare_bootstrap(const cr_eval_result *const *res, int n, int reps, uint64_t seed, cr_interval *diff);

#ifdef __cplusplus
}
#endif
#endif

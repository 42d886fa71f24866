/* test_metrics.c — metric kernels of eval.h: ranks with pessimistic ties (full-sort reference and streaming
 * counter), per-user metrics pinned to hand-computed tables, top-K, coverage/Gini/novelty/ILD, MAE/RMSE,
 * the paired bootstrap, and allocation failures. Expected numbers are literals worked out by hand in the
 * comments, never produced by the code under test. */
#include "test.h"

#include "crossrec/eval.h"

#include <stdlib.h>

#define TOL 1e-12

/* Both rank implementations on one candidate set; checks they agree with each other and with want. */
static void check_ranks(const float *scores, const int32_t *items, const uint8_t *is_pos, int64_t n, const int64_t *want,
                        int64_t n_want) {
    int64_t ref[64], got[64];
    float ps[64], ns[64];
    int32_t pi[64];
    CR_ASSERT(n <= 64);
    CHECK_EQ(cr_rank_ref(scores, items, is_pos, n, ref), n_want);
    for (int64_t i = 0; i < n_want; i++) CHECK_EQ(ref[i], want[i]);
    int64_t np = 0, nn = 0;
    for (int64_t i = 0; i < n; i++) {
        if (is_pos[i]) ps[np] = scores[i], pi[np++] = items ? items[i] : (int32_t)i;
        else ns[nn++] = scores[i];
    }
    cr_rank_counter c;
    CHECK_OK(cr_rank_counter_init(&c, ps, pi, np));
    cr_rank_counter_add(&c, ns, nn);
    cr_rank_counter_ranks(&c, got);
    CHECK_EQ(c.n_neg, nn);
    cr_rank_counter_free(&c);
    for (int64_t i = 0; i < n_want; i++) CHECK_EQ(got[i], want[i]);
}

/* ---- ranks --------------------------------------------------------------------------------------------- */

TEST(metrics_ranks_pessimistic_ties) {
    /* items 0..5, scores {0.9, 0.5, 0.5, 0.3, 0.5, 0.1}, positives at items 2 and 4.
     * Order: item 0 (0.9) rank 1; the 0.5 group {1 neg, 2 pos, 4 pos}: the negative first -> item 1 rank 2,
     * then the positives by item -> item 2 rank 3, item 4 rank 4; item 3 (0.3) rank 5; item 5 (0.1) rank 6.
     * Ranks {3, 4}. (Positives-first ties would give {2, 3}.) */
    float s[6] = {0.9f, 0.5f, 0.5f, 0.3f, 0.5f, 0.1f};
    uint8_t pos[6] = {0, 0, 1, 0, 1, 0};
    int64_t want[2] = {3, 4};
    check_ranks(s, NULL, pos, 6, want, 2);
}

TEST(metrics_ranks_negative_between_tied_positives) {
    /* All three at 0.5: positive item 2, negative item 3, positive item 4, plus a negative item 1 at 0.7.
     * Item 1 rank 1; in the 0.5 group the negative (item 3) goes first although its index lies between the
     * positives' -> item 3 rank 2, item 2 rank 3, item 4 rank 4. Ranks {3, 4}; ordering the whole group by
     * item alone would give {2, 4}. Candidates listed out of item order on purpose. */
    float s[4] = {0.5f, 0.5f, 0.7f, 0.5f};
    int32_t it[4] = {4, 3, 1, 2};
    uint8_t pos[4] = {1, 0, 0, 1};
    int64_t want[2] = {3, 4};
    check_ranks(s, it, pos, 4, want, 2);
}

TEST(metrics_ranks_nan_and_signed_zero) {
    /* item 0: NaN pos, item 1: -inf neg, item 2: NaN neg, item 3: +0 pos, item 4: -0 neg.
     * -0 ties +0, so the negative goes first: item 4 rank 1, item 3 rank 2; then -inf: item 1 rank 3; NaN is
     * below -inf and NaNs tie: negative item 2 rank 4, positive item 0 rank 5. Ranks {2, 5}. */
    float s[5] = {NAN, -INFINITY, NAN, 0.0f, -0.0f};
    uint8_t pos[5] = {1, 0, 0, 1, 0};
    int64_t want[2] = {2, 5};
    check_ranks(s, NULL, pos, 5, want, 2);
}

TEST(metrics_rank_counter_sorts_positives) {
    /* Positives (score, item): (0.5, 4) (0.5, 2) (0.9, 7) (0.1, 1) (NaN, 3).
     * Ascending score with NaN lowest, equal scores by item DESCENDING: NaN/3, 0.1/1, 0.5/4, 0.5/2, 0.9/7 —
     * read from the end that is 7, 2, 4, 1, 3: the ranking order (score desc, item asc). */
    float ps[5] = {0.5f, 0.5f, 0.9f, 0.1f, NAN};
    int32_t pi[5] = {4, 2, 7, 1, 3};
    cr_rank_counter c;
    CHECK_OK(cr_rank_counter_init(&c, ps, pi, 5));
    int32_t want_item[5] = {3, 1, 4, 2, 7};
    for (int i = 0; i < 5; i++) CHECK_EQ(c.pos_item[i], want_item[i]);
    CHECK(isnan(c.pos_score[0]) && c.pos_score[1] == 0.1f && c.pos_score[4] == 0.9f);
    /* Negatives 0.5, 0.2, NaN in two blocks: 0.5 is ahead of every positive but 0.9 (tie with the 0.5s),
     * 0.2 ahead of 0.1 and NaN, NaN ahead of the NaN positive only. Ranks: 0.9 -> 1; 0.5/2 -> 1 + 1 pos
     * + 1 neg = 3; 0.5/4 -> 4; 0.1 -> 1 + 3 pos + 2 neg = 6; NaN/3 -> 1 + 4 pos + 3 neg = 8. */
    float n1[2] = {0.5f, 0.2f}, n2[1] = {NAN};
    cr_rank_counter_add(&c, n1, 2);
    cr_rank_counter_add(&c, n2, 1);
    cr_rank_counter_add(&c, NULL, 0);
    int64_t r[5], want[5] = {1, 3, 4, 6, 8};
    cr_rank_counter_ranks(&c, r);
    for (int i = 0; i < 5; i++) CHECK_EQ(r[i], want[i]);
    CHECK_EQ(c.n_neg, 3);
    cr_rank_counter_free(&c);
    cr_rank_counter_free(&c);   /* a freed counter is empty; freeing again is a no-op */
    cr_rank_counter_free(NULL);
}

/* Independent oracle for the random test: a before b in the ranking order, spelled out rule by rule. */
static int brute_before(float sa, int32_t ia, int pa, float sb, int32_t ib, int pb) {
    int na = isnan(sa), nb = isnan(sb);
    if (na != nb) return nb;                       /* a number before NaN */
    if (!na && sa != sb) return sa > sb;           /* higher score first */
    if (pa != pb) return !pa;                      /* tie: the negative first */
    return ia < ib;
}

TEST(metrics_rank_counter_matches_reference) {
    static const float pool[8] = {NAN, -INFINITY, -1.0f, -0.0f, 0.0f, 0.5f, 1.0f, INFINITY};
    cr_rng r;
    cr_rng_named(&r, 7, "test-rank-counter");
    int saw_single = 0, saw_all = 0, saw_ties = 0;
    for (int t = 0; t < 500; t++) {
        int64_t n = 1 + cr_rng_below(&r, 40);
        uint32_t n_vals = 1 + cr_rng_below(&r, t % 2 ? 3 : 8);   /* few distinct values: heavy ties */
        float scores[40], ps[40], ns[40];
        int32_t items[40], pi[40];
        uint8_t pos[40] = {0};
        int order[40];
        for (int64_t i = 0; i < n; i++) {
            scores[i] = pool[(cr_rng_below(&r, n_vals) + (t % 4 == 1 ? 3 : 0)) % 8];   /* some cases without NaN */
            items[i] = (int32_t)(3 * i);
            order[i] = (int)i;
        }
        for (int64_t i = n - 1; i > 0; i--) {   /* shuffle item indices and the choice of positives */
            int64_t j = cr_rng_below(&r, (uint32_t)i + 1);
            int32_t tmp = items[i];
            items[i] = items[j], items[j] = tmp;
            int o = order[i];
            order[i] = order[j], order[j] = o;
        }
        int64_t np = t % 3 == 0 ? 1 : t % 3 == 1 ? n : 1 + cr_rng_below(&r, (uint32_t)n);
        saw_single += np == 1, saw_all += np == n;
        for (int64_t i = 0; i < np; i++) pos[order[i]] = 1;
        /* oracle: rank of a positive = 1 + candidates before it */
        int64_t want[40], n_want = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!pos[i]) continue;
            int64_t before = 0;
            for (int64_t j = 0; j < n; j++)
                if (j != i) before += brute_before(scores[j], items[j], pos[j], scores[i], items[i], 1);
            want[n_want++] = before + 1;
        }
        for (int64_t i = 1; i < n_want; i++)   /* insertion sort ascending */
            for (int64_t j = i; j > 0 && want[j - 1] > want[j]; j--) {
                int64_t tmp = want[j];
                want[j] = want[j - 1], want[j - 1] = tmp;
            }
        int64_t ref[40], got[40];
        CHECK_EQ(cr_rank_ref(scores, items, pos, n, ref), np);
        for (int64_t i = 0; i < np; i++) CHECK_MSG(ref[i] == want[i], "case %d: ref rank %lld != %lld", t, (long long)ref[i], (long long)want[i]);
        /* counter: positives in shuffled order, negatives in random blocks (empty ones included) */
        int64_t nn = 0, q = 0;
        for (int64_t i = 0; i < n; i++) {
            if (pos[order[i]]) ps[q] = scores[order[i]], pi[q++] = items[order[i]];
            if (!pos[i]) ns[nn++] = scores[i];
        }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                if (i != j && pos[i] && !pos[j] && scores[i] == scores[j]) saw_ties = 1;
        cr_rank_counter c;
        CHECK_OK(cr_rank_counter_init(&c, ps, pi, np));
        for (int64_t at = 0; at < nn;) {
            int64_t len = cr_rng_below(&r, 5);
            if (len > nn - at) len = nn - at;
            cr_rank_counter_add(&c, ns + at, len);
            at += len;
        }
        cr_rank_counter_ranks(&c, got);
        CHECK_EQ(c.n_neg, nn);
        cr_rank_counter_free(&c);
        for (int64_t i = 0; i < np; i++) CHECK_MSG(got[i] == want[i], "case %d: counter rank %lld != %lld", t, (long long)got[i], (long long)want[i]);
    }
    CHECK(saw_single && saw_all && saw_ties);
}

/* ---- metrics of one user ------------------------------------------------------------------------------- */

TEST(metrics_from_ranks_tied_user) {
    /* The user of metrics_ranks_pessimistic_ties: ranks {3, 4}, |GT| = 2, 4 negatives, 6 candidates.
     * ks given out of order {10, 1, 3, 5}; K = 10 exceeds the candidate count.
     *   hits@1 = 0, @3 = 1, @5 = 2, @10 = 2
     *   precision = hits/K: 0, 1/3, 2/5, 2/10 (divided by K = 10 although only 6 candidates)
     *   recall = hits/2: 0, 0.5, 1, 1          hr: 0, 1, 1, 1
     *   ndcg@3 = (1/log2 4) / (1 + 1/log2 3) = 0.5 / 1.6309297535714575 = 0.3065735963827292
     *   ndcg@5 = ndcg@10 = (0.5 + 1/log2 5) / 1.6309297535714575 = 0.9306765580733931 / 1.63093 = 0.5706417189553201
     *   map@3 = (1/3) / min(2,3) = 1/6;  map@5 = (1/3 + 2/4) / 2 = 5/12
     *   mrr = 1/3
     *   auc: positive 1 has 3 - 1 = 2 negatives ahead, positive 2 has 4 - 2 = 2: ((4-2)/4 + (4-2)/4) / 2 = 0.5
     *        (a tie counts against the model; half-credit ties would give 0.625) */
    int64_t ranks[2] = {3, 4};
    int ks[4] = {10, 1, 3, 5};
    cr_user_metrics m;
    cr_metrics_from_ranks(ranks, 2, 2, 4, ks, 4, &m);
    double prec[4] = {0.2, 0, 1.0 / 3, 0.4}, rec[4] = {1, 0, 0.5, 1}, hr[4] = {1, 0, 1, 1};
    double ndcg[4] = {0.5706417189553201, 0, 0.3065735963827292, 0.5706417189553201};
    double map[4] = {5.0 / 12, 0, 1.0 / 6, 5.0 / 12};
    for (int j = 0; j < 4; j++) {
        CHECK_NEAR(m.precision[j], prec[j], TOL);
        CHECK_NEAR(m.recall[j], rec[j], TOL);
        CHECK_NEAR(m.hr[j], hr[j], TOL);
        CHECK_NEAR(m.ndcg[j], ndcg[j], TOL);
        CHECK_NEAR(m.map[j], map[j], TOL);
    }
    CHECK_NEAR(m.mrr, 1.0 / 3, TOL);
    CHECK_NEAR(m.auc, 0.5, TOL);
}

TEST(metrics_from_ranks_missing_positives) {
    /* |GT| = 3, but only two positives were ranked, at {1, 3}; 3 negatives (5 candidates).
     *   K = 5: hits 2; precision 2/5; recall 2/3;
     *          ndcg = (1 + 1/log2 4) / (1 + 1/log2 3 + 1/log2 4) = 1.5 / 2.1309297535714578 = 0.7039180890341347
     *          map = (1/1 + 2/3) / min(3,5) = 5/9
     *   K = 2: hits 1; precision 1/2; recall 1/3; ndcg = 1 / (1 + 1/log2 3) = 0.6131471927654584;
     *          map = (1/1) / min(3,2) = 1/2
     *   K = 1: hits 1; precision 1; recall 1/3; ndcg = 1/1 = 1; map = 1/1 = 1
     *   mrr = 1/1
     *   auc = (1/3) * ((3 - 0)/3 + (3 - (3 - 2))/3 + 0 for the missing one) = (1 + 2/3) / 3 = 5/9 */
    int64_t ranks[2] = {1, 3};
    int ks[3] = {5, 2, 1};
    cr_user_metrics m;
    cr_metrics_from_ranks(ranks, 2, 3, 3, ks, 3, &m);
    CHECK_NEAR(m.precision[0], 0.4, TOL);
    CHECK_NEAR(m.recall[0], 2.0 / 3, TOL);
    CHECK_NEAR(m.ndcg[0], 0.7039180890341347, TOL);
    CHECK_NEAR(m.map[0], 5.0 / 9, TOL);
    CHECK_NEAR(m.precision[1], 0.5, TOL);
    CHECK_NEAR(m.recall[1], 1.0 / 3, TOL);
    CHECK_NEAR(m.ndcg[1], 0.6131471927654584, TOL);
    CHECK_NEAR(m.map[1], 0.5, TOL);
    CHECK_NEAR(m.precision[2], 1.0, TOL);
    CHECK_NEAR(m.recall[2], 1.0 / 3, TOL);
    CHECK_NEAR(m.ndcg[2], 1.0, TOL);
    CHECK_NEAR(m.map[2], 1.0, TOL);
    CHECK_NEAR(m.hr[0] + m.hr[1] + m.hr[2], 3.0, TOL);
    CHECK_NEAR(m.mrr, 1.0, TOL);
    CHECK_NEAR(m.auc, 5.0 / 9, TOL);
}

TEST(metrics_from_ranks_one_positive) {
    /* One positive at rank 4 among 10 candidates (9 negatives).
     *   K = 3: all zero.  K = 5: precision 1/5, recall 1, hr 1, ndcg = (1/log2 5) / 1 = 0.43067655807339306,
     *   map = (1/4) / 1 = 0.25.  mrr = 1/4.  auc = (9 - 3) / 9 = 2/3. */
    int64_t ranks[1] = {4};
    int ks[2] = {3, 5};
    cr_user_metrics m;
    cr_metrics_from_ranks(ranks, 1, 1, 9, ks, 2, &m);
    CHECK(m.precision[0] == 0 && m.recall[0] == 0 && m.hr[0] == 0 && m.ndcg[0] == 0 && m.map[0] == 0);
    CHECK_NEAR(m.precision[1], 0.2, TOL);
    CHECK_NEAR(m.recall[1], 1.0, TOL);
    CHECK_NEAR(m.hr[1], 1.0, TOL);
    CHECK_NEAR(m.ndcg[1], 0.43067655807339306, TOL);
    CHECK_NEAR(m.map[1], 0.25, TOL);
    CHECK_NEAR(m.mrr, 0.25, TOL);
    CHECK_NEAR(m.auc, 2.0 / 3, TOL);
}

TEST(metrics_from_ranks_map_example) {
    /* Ranks {1, 3, 6} of |GT| = 4, 10 negatives.
     *   map@2  = (1/1) / min(4,2) = 1/2                        (rank 3 is beyond K)
     *   map@5  = (1/1 + 2/3) / min(4,5) = (5/3)/4 = 5/12
     *   map@10 = (1/1 + 2/3 + 3/6) / 4 = (13/6)/4 = 13/24
     *   ndcg@10 = (1 + 1/log2 4 + 1/log2 7) / (1 + 1/log2 3 + 1/log2 4 + 1/log2 5)
     *           = (1.5 + 0.35620718710802218) / (2.1309297535714578 + 0.43067655807339306) = 0.72466...
     *   auc = (1/4) ((10-0) + (10-1) + (10-3) + 0) / 10 = 26/40 = 0.65 */
    int64_t ranks[3] = {1, 3, 6};
    int ks[3] = {2, 5, 10};
    cr_user_metrics m;
    cr_metrics_from_ranks(ranks, 3, 4, 10, ks, 3, &m);
    CHECK_NEAR(m.map[0], 0.5, TOL);
    CHECK_NEAR(m.map[1], 5.0 / 12, TOL);
    CHECK_NEAR(m.map[2], 13.0 / 24, TOL);
    CHECK_NEAR(m.ndcg[2], (1.5 + 0.35620718710802218) / (2.1309297535714578 + 0.43067655807339306), TOL);
    CHECK_NEAR(m.auc, 0.65, TOL);
}

TEST(metrics_from_ranks_edge_cases) {
    int ks[2] = {1, 20};
    cr_user_metrics m;
    /* nothing ranked (user the model cannot represent): all zero, auc 0 */
    cr_metrics_from_ranks(NULL, 0, 2, 5, ks, 2, &m);
    CHECK(m.precision[1] == 0 && m.recall[1] == 0 && m.ndcg[1] == 0 && m.map[1] == 0 && m.hr[1] == 0);
    CHECK(m.mrr == 0 && m.auc == 0);
    /* no negatives at all: auc 0.5 by definition; ranks {1, 2} of 2, 2 candidates, K = 20:
     * precision 2/20, recall 1, ndcg 1, map (1/1 + 2/2)/2 = 1 */
    int64_t ranks[2] = {1, 2};
    cr_metrics_from_ranks(ranks, 2, 2, 0, ks, 2, &m);
    CHECK_NEAR(m.auc, 0.5, TOL);
    CHECK_NEAR(m.precision[1], 0.1, TOL);
    CHECK_NEAR(m.ndcg[1], 1.0, TOL);
    CHECK_NEAR(m.map[1], 1.0, TOL);
    CHECK_NEAR(m.precision[0], 1.0, TOL);
    CHECK_NEAR(m.recall[0], 0.5, TOL);
}

TEST(metrics_auc_with_ties_end_to_end) {
    /* positive item 0 at 0.8 tied with negatives items 1, 2 (0.8), negative item 3 at 0.2.
     * Pessimistic: items 1, 2 first, the positive is rank 3, one negative below it: auc = 1/3
     * (optimistic ties would give 1, half-credit 2/3). */
    float s[4] = {0.8f, 0.8f, 0.8f, 0.2f};
    uint8_t pos[4] = {1, 0, 0, 0};
    int64_t want[1] = {3};
    check_ranks(s, NULL, pos, 4, want, 1);
    int ks[1] = {2};
    cr_user_metrics m;
    cr_metrics_from_ranks(want, 1, 1, 3, ks, 1, &m);
    CHECK_NEAR(m.auc, 1.0 / 3, TOL);
    CHECK_NEAR(m.hr[0], 0.0, TOL);
}

/* ---- top-K ---------------------------------------------------------------------------------------------- */

TEST(metrics_topk_hand) {
    /* (item, score): (7, 0.5) (3, 0.9) (2, 0.5) (9, 0.5) (5, NaN) (4, -inf); k = 3.
     * Best first: 3 (0.9), then the 0.5s by item: 2, 7 — item 9 is the fourth. */
    cr_topk t;
    CHECK_OK(cr_topk_init(&t, 3));
    float s[6] = {0.5f, 0.9f, 0.5f, 0.5f, NAN, -INFINITY};
    int32_t it[6] = {7, 3, 2, 9, 5, 4};
    for (int i = 0; i < 6; i++) cr_topk_push(&t, s[i], it[i]);
    int32_t items[3];
    float sc[3];
    CHECK_EQ(cr_topk_sorted(&t, items, sc), 3);
    CHECK(items[0] == 3 && items[1] == 2 && items[2] == 7);
    CHECK(sc[0] == 0.9f && sc[1] == 0.5f && sc[2] == 0.5f);
    CHECK_EQ(t.n, 0);   /* consumed */
    /* reuse after reset, k larger than the input: -inf before NaN */
    cr_topk_reset(&t);
    cr_topk_push(&t, NAN, 1);
    cr_topk_push(&t, -INFINITY, 8);
    CHECK_EQ(cr_topk_sorted(&t, items, NULL), 2);
    CHECK(items[0] == 8 && items[1] == 1);
    CHECK_EQ(cr_topk_sorted(&t, NULL, NULL), 0);
    cr_topk_free(&t);
    cr_topk_free(&t);
    cr_topk_free(NULL);
}

typedef struct { float s; int32_t item; } scored;

/* Full-sort oracle: NaN last, score descending, item ascending. */
static int scored_cmp(const void *pa, const void *pb) {
    const scored *a = pa, *b = pb;
    int na = isnan(a->s), nb = isnan(b->s);
    if (na != nb) return na - nb;
    if (!na && a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

TEST(metrics_topk_matches_full_sort) {
    static const float pool[6] = {NAN, -INFINITY, -0.0f, 0.0f, 0.25f, 1.0f};
    cr_rng r;
    cr_rng_named(&r, 11, "test-topk");
    for (int c = 0; c < 400; c++) {
        int64_t n = cr_rng_below(&r, 60), k = 1 + cr_rng_below(&r, 65);   /* k > n often */
        scored all[60];
        for (int64_t i = 0; i < n; i++) {
            all[i].s = c % 2 ? pool[cr_rng_below(&r, 6)] : (float)cr_rng_below(&r, 1000) / 7.0f;
            all[i].item = (int32_t)cr_rng_below(&r, 1u << 30);
            for (int64_t j = 0; j < i; j++)
                if (all[j].item == all[i].item) all[i].item++, j = -1;   /* distinct items */
        }
        cr_topk t;
        CHECK_OK(cr_topk_init(&t, k));
        for (int64_t i = 0; i < n; i++) cr_topk_push(&t, all[i].s, all[i].item);
        int32_t items[70];
        float sc[70];
        int64_t m = cr_topk_sorted(&t, items, sc);
        cr_topk_free(&t);
        qsort(all, (size_t)n, sizeof *all, scored_cmp);
        CHECK_EQ(m, n < k ? n : k);
        for (int64_t i = 0; i < m; i++) {
            CHECK_MSG(items[i] == all[i].item, "case %d pos %lld: item %d != %d", c, (long long)i, items[i], all[i].item);
            CHECK(isnan(sc[i]) ? isnan(all[i].s) : sc[i] == all[i].s);
        }
    }
}

/* ---- beyond accuracy ------------------------------------------------------------------------------------ */

TEST(metrics_coverage_gini) {
    int64_t e1[4] = {0, 3, 0, 1};
    CHECK_NEAR(cr_coverage(e1, 4), 0.5, TOL);   /* 2 of 4 shown */
    CHECK_NEAR(cr_coverage(e1, 0), 0.0, TOL);
    int64_t eq[3] = {2, 2, 2};
    CHECK_NEAR(cr_gini(eq, 3), 0.0, TOL);
    /* all on one item, n = 4: sorted 0,0,0,4, sum 4: (2*4 - 4 - 1) * 4 / (4 * 4) = 3/4 = (n-1)/n */
    int64_t one[4] = {0, 4, 0, 0};
    CHECK_NEAR(cr_gini(one, 4), 0.75, TOL);
    /* {3, 1, 4, 2} sorts to 1,2,3,4, sum 10, weights 2i-5 = -3,-1,1,3: (-3 - 2 + 3 + 12) / (4 * 10) = 0.25 */
    int64_t e2[4] = {3, 1, 4, 2};
    CHECK_NEAR(cr_gini(e2, 4), 0.25, TOL);
    int64_t zero[3] = {0, 0, 0};
    CHECK_NEAR(cr_gini(zero, 3), 0.0, TOL);
    CHECK_NEAR(cr_gini(NULL, 0), 0.0, TOL);
}

TEST(metrics_novelty) {
    /* 7 users; pops 7, 3, 0: -log2(8/8) = 0, -log2(4/8) = 1, -log2(1/8) = 3; mean 4/3 */
    int64_t pop[3] = {7, 3, 0};
    int32_t list[3] = {0, 1, 2};
    CHECK_NEAR(cr_novelty(list, 3, pop, 7), 4.0 / 3, TOL);
    int32_t l2[2] = {2, 2};
    CHECK_NEAR(cr_novelty(l2, 2, pop, 7), 3.0, TOL);
    CHECK_NEAR(cr_novelty(list, 0, pop, 7), 0.0, TOL);
}

TEST(metrics_ild) {
    /* item 0: {0:1, 2:1}; item 1: {0:1}; item 2: {} (zero); item 3: {1:2}; item 4: {0:1, 1:1, 2:1} */
    int64_t ptr[6] = {0, 2, 3, 3, 4, 7};
    int32_t idx[7] = {0, 2, 0, 1, 0, 1, 2};
    float val[7] = {1, 1, 1, 2, 1, 1, 1};
    /* {0, 1}: cos = 1 / (sqrt 2 * 1) -> 1 - 0.7071067811865476 = 0.29289321881345254 */
    int32_t a[2] = {0, 1};
    CHECK_NEAR(cr_ild(a, 2, ptr, idx, val), 0.29289321881345254, TOL);
    /* {0, 4}: partial overlap, dot = 1 + 1 = 2 over norms sqrt 2, sqrt 3: 1 - 2/sqrt 6 = 0.18350341907227385 */
    int32_t b[2] = {0, 4};
    CHECK_NEAR(cr_ild(b, 2, ptr, idx, val), 0.18350341907227385, TOL);
    /* {0,1,2,3}: (0,1) 0.29289; (0,2) (1,2) (2,3) zero vector -> 1 each; (0,3) (1,3) orthogonal -> 1 each:
     * (5 + 0.29289321881345254) / 6 = 0.882148869802242 */
    int32_t c[4] = {0, 1, 2, 3};
    CHECK_NEAR(cr_ild(c, 4, ptr, idx, val), 0.882148869802242, TOL);
    int32_t d[2] = {4, 4};   /* the same item twice: distance 0 */
    CHECK_NEAR(cr_ild(d, 2, ptr, idx, val), 0.0, TOL);
    CHECK_NEAR(cr_ild(d, 1, ptr, idx, val), 0.0, TOL);
}

TEST(metrics_mae_rmse) {
    /* errors -1, 0, 2: mae (1 + 0 + 2)/3 = 1; rmse sqrt((1 + 0 + 4)/3) = sqrt(5/3) = 1.2909944487358056 */
    float pred[3] = {1, 2, 4}, truth[3] = {2, 2, 2};
    CHECK_NEAR(cr_mae(pred, truth, 3), 1.0, TOL);
    CHECK_NEAR(cr_rmse(pred, truth, 3), 1.2909944487358056, TOL);
    CHECK_NEAR(cr_mae(pred, truth, 0), 0.0, TOL);
    CHECK_NEAR(cr_rmse(pred, truth, 0), 0.0, TOL);
}

/* ---- bootstrap ------------------------------------------------------------------------------------------ */

TEST(metrics_bootstrap_equal_and_shift) {
    double a[50], b[50];
    cr_rng r;
    cr_rng_named(&r, 3, "test-bootstrap");
    for (int i = 0; i < 50; i++) a[i] = b[i] = cr_rng_uniform(&r);
    double mean, lo, hi;
    CHECK_OK(cr_bootstrap_diff(a, b, 50, 200, 1, &mean, &lo, &hi));
    CHECK(mean == 0 && lo == 0 && hi == 0);
    for (int i = 0; i < 50; i++) b[i] = a[i] + 0.25;   /* every resample mean is the shift */
    CHECK_OK(cr_bootstrap_diff(a, b, 50, 200, 1, &mean, &lo, &hi));
    CHECK_NEAR(mean, 0.25, 1e-12);
    CHECK_NEAR(lo, 0.25, 1e-12);
    CHECK_NEAR(hi, 0.25, 1e-12);
    CHECK_STATUS(cr_bootstrap_diff(a, b, 0, 200, 1, &mean, &lo, &hi), CR_ERR_ARG);
    CHECK_STATUS(cr_bootstrap_diff(a, b, 50, 0, 1, &mean, &lo, &hi), CR_ERR_ARG);
}

/* The documented procedure, restated: reps rounds of n draws from the "bootstrap" stream; nearest rank. */
static int dcmp(const void *pa, const void *pb) {
    double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

TEST(metrics_bootstrap_deterministic_nearest_rank) {
    /* 30 users with generic values, so that resample means are distinct and an off-by-one rank shows */
    enum { N = 30 };
    double a[N], b[N], sum = 0;
    cr_rng g;
    cr_rng_named(&g, 4, "test-bootstrap-rank");
    for (int i = 0; i < N; i++) {
        a[i] = cr_rng_uniform(&g), b[i] = cr_rng_uniform(&g);
        sum += b[i] - a[i];
    }
    double m1 = 0, lo1 = 0, hi1 = 0, m2, lo2, hi2;
    static double reps_mean[1000];
    int reps_list[3] = {40, 1000, 1};
    for (int q = 0; q < 3; q++) {
        int reps = reps_list[q];
        CHECK_OK(cr_bootstrap_diff(a, b, N, reps, 99, &m1, &lo1, &hi1));
        CHECK_OK(cr_bootstrap_diff(a, b, N, reps, 99, &m2, &lo2, &hi2));
        CHECK(m1 == m2 && lo1 == lo2 && hi1 == hi2);
        cr_rng r;
        cr_rng_named(&r, 99, "bootstrap");
        for (int k = 0; k < reps; k++) {
            double s = 0;
            for (int i = 0; i < N; i++) {
                uint32_t u = cr_rng_below(&r, N);
                s += b[u] - a[u];
            }
            reps_mean[k] = s / N;
        }
        qsort(reps_mean, (size_t)reps, sizeof *reps_mean, dcmp);
        /* nearest rank ceil(P/100 * reps): reps 40 -> 1st and 39th; 1000 -> 25th and 975th; 1 -> 1st, 1st */
        int want_lo = reps == 40 ? 1 : reps == 1000 ? 25 : 1, want_hi = reps == 40 ? 39 : reps == 1000 ? 975 : 1;
        CHECK(lo1 == reps_mean[want_lo - 1]);
        CHECK(hi1 == reps_mean[want_hi - 1]);
        if (reps > 1) CHECK(reps_mean[want_lo] != reps_mean[want_lo - 1] && reps_mean[want_hi] != reps_mean[want_hi - 1]);
        CHECK_NEAR(m1, sum / N, 1e-12);
    }
    CHECK_OK(cr_bootstrap_diff(a, b, N, 1000, 99, &m1, &lo1, &hi1));
    CHECK_OK(cr_bootstrap_diff(a, b, N, 1000, 100, &m2, &lo2, &hi2));
    CHECK(m1 == m2 && (lo2 != lo1 || hi2 != hi1));   /* another seed, another resampling, same mean */
}

TEST(metrics_bootstrap_covers_true_difference) {
    /* b = a + 0.1 + noise(sd 0.5), 400 users: the CI has half-width about 1.96 * 0.5 / 20 = 0.049 and,
     * for this seed, contains the true difference 0.1. */
    enum { N = 400 };
    static double a[N], b[N];
    cr_rng r;
    cr_rng_named(&r, 5, "test-bootstrap-noise");
    double sum = 0;
    for (int i = 0; i < N; i++) {
        a[i] = cr_rng_uniform(&r);
        b[i] = a[i] + 0.1 + 0.5 * cr_rng_normal(&r);
        sum += b[i] - a[i];
    }
    double mean, lo, hi;
    CHECK_OK(cr_bootstrap_diff(a, b, N, 2000, 17, &mean, &lo, &hi));
    CHECK_NEAR(mean, sum / N, 1e-12);
    CHECK(lo < mean && mean < hi);
    CHECK(lo < 0.1 && 0.1 < hi);
    CHECK_MSG(hi - lo > 0.07 && hi - lo < 0.13, "CI width %g, expected about 0.098", hi - lo);
}

/* ---- allocation failures -------------------------------------------------------------------------------- */

TEST(metrics_alloc_failures) {
    float ps[3] = {0.1f, 0.2f, 0.3f};
    int32_t pi[3] = {1, 2, 3};
    cr_rank_counter c;
    cr_alloc_fail_nth(1);
    CHECK_STATUS(cr_rank_counter_init(&c, ps, pi, 3), CR_ERR_NOMEM);
    CHECK(cr_alloc_fault_hit());
    CHECK(c.ahead == NULL && c.n_pos == 0);
    cr_rank_counter_free(&c);

    for (int n = 1; n <= 2; n++) {
        cr_topk t;
        cr_alloc_fail_nth(n);
        CHECK_STATUS(cr_topk_init(&t, 10), CR_ERR_NOMEM);
        CHECK(cr_alloc_fault_hit());
        cr_topk_free(&t);
    }

    double a[3] = {1, 2, 3}, b[3] = {2, 2, 2}, m, lo, hi;
    cr_alloc_fail_nth(1);
    CHECK_STATUS(cr_bootstrap_diff(a, b, 3, 10, 1, &m, &lo, &hi), CR_ERR_NOMEM);
    CHECK(cr_alloc_fault_hit());

    uint8_t pos[3] = {1, 0, 1};
    int64_t ranks[3];
    cr_alloc_fail_nth(1);
    CHECK_EQ(cr_rank_ref(ps, NULL, pos, 3, ranks), -1);
    CHECK_CONTAINS(cr_errmsg(), "out of memory");

    int64_t e[3] = {1, 0, 2};
    cr_alloc_fail_nth(1);
    CHECK(isnan(cr_gini(e, 3)));
    cr_alloc_fail_nth(0);
}

/* The one-pass ILD over every cut equals the reference cr_ild of each prefix. */
TEST(metrics_ild_prefixes_match_reference) {
    cr_rng rng;
    cr_rng_named(&rng, 3, "ild-test");
    enum { ITEMS = 40, DIM = 12 };
    int64_t ptr[ITEMS + 1];
    int32_t idx[ITEMS * DIM];
    float val[ITEMS * DIM];
    int64_t nnz = 0;
    for (int i = 0; i < ITEMS; i++) {
        ptr[i] = nnz;
        for (int d = 0; d < DIM; d++)
            if (i % 7 != 3 && cr_rng_below(&rng, 3) == 0) idx[nnz] = d, val[nnz++] = (float)cr_rng_uniform(&rng);   /* some zero vectors */
    }
    ptr[ITEMS] = nnz;
    int32_t list[25];
    for (int k = 0; k < 25; k++) list[k] = (int32_t)cr_rng_below(&rng, ITEMS);
    const int ks[4] = {1, 5, 10, 50};
    double out[4], norm[25];
    cr_ild_prefixes(list, 25, ptr, idx, val, ks, 4, norm, out);
    CHECK_NEAR(out[0], 0, 0);   /* one item: no pair */
    CHECK_NEAR(out[1], cr_ild(list, 5, ptr, idx, val), 1e-12);
    CHECK_NEAR(out[2], cr_ild(list, 10, ptr, idx, val), 1e-12);
    CHECK_NEAR(out[3], cr_ild(list, 25, ptr, idx, val), 1e-12);   /* K beyond the list: the whole list */
}

/* topk.c — bounded top-K of (score, item) pairs (eval.h).
 *
 * cr_topk keeps at most k entries in a binary heap whose root is the WORST kept entry, so a new candidate is
 * compared with the root only (O(1) rejection, the common case when scanning millions of candidates) and
 * replaces it in O(log k). Order: higher score first, equal scores by item index ascending (the larger
 * index is the worse), NaN below every number — the ranking convention of eval.h restricted to one class.
 * Invariant: for every node i > 0, entry i is not worse than its parent (i - 1) / 2. */
#include "crossrec/eval.h"

#include <math.h>
#include <string.h>

/* 1 if (sa, ia) comes strictly before (sb, ib). Written with float comparisons (the hot path is the first
 * test); metrics.c implements the same order with integer keys, and the tests hold each against the other. */
static inline int topk_before(float sa, int32_t ia, float sb, int32_t ib) {
    if (sa > sb) return 1;
    if (sa < sb) return 0;
    int na = isnan(sa), nb = isnan(sb);   /* equal, or unordered because of a NaN */
    if (na != nb) return nb;              /* a number comes before NaN */
    return ia < ib;
}

cr_status cr_topk_init(cr_topk *t, int64_t k) {
    CR_ASSERT(k >= 1);
    memset(t, 0, sizeof *t);
    t->score = cr_malloc((size_t)k * sizeof *t->score);
    t->item = cr_malloc((size_t)k * sizeof *t->item);
    if (!t->score || !t->item) {
        cr_topk_free(t);
        return cr_fail(CR_ERR_NOMEM, "out of memory (top-%lld list)", (long long)k);
    }
    t->k = k;
    return CR_OK;
}

void cr_topk_reset(cr_topk *t) { t->n = 0; }

/* Moves the entry (s, it) down from node i of a heap of n entries to its place. */
static void sift_down(float *sc, int32_t *im, int64_t n, int64_t i, float s, int32_t it) {
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && topk_before(sc[c], im[c], sc[c + 1], im[c + 1])) c++;   /* the worse child */
        if (!topk_before(s, it, sc[c], im[c])) break;
        sc[i] = sc[c];
        im[i] = im[c];
        i = c;
    }
    sc[i] = s;
    im[i] = it;
}

void cr_topk_push(cr_topk *t, float score, int32_t item) {
    float *sc = t->score;
    int32_t *im = t->item;
    if (t->n < t->k) {
        int64_t i = t->n++;
        while (i > 0) {
            int64_t p = (i - 1) / 2;
            if (!topk_before(sc[p], im[p], score, item)) break;   /* parent already worse or equal */
            sc[i] = sc[p];
            im[i] = im[p];
            i = p;
        }
        sc[i] = score;
        im[i] = item;
        return;
    }
    if (!topk_before(score, item, sc[0], im[0])) return;
    sift_down(sc, im, t->n, 0, score, item);
}

int64_t cr_topk_sorted(cr_topk *t, int32_t *items, float *scores) {
    int64_t n = t->n;
    float *sc = t->score;
    int32_t *im = t->item;
    /* Heap sort: the root (worst) goes to the end of the shrinking heap, so the array ends best first. */
    for (int64_t end = n - 1; end > 0; end--) {
        float s = sc[end];
        int32_t it = im[end];
        sc[end] = sc[0];
        im[end] = im[0];
        sift_down(sc, im, end, 0, s, it);
    }
    if (items) memcpy(items, im, (size_t)n * sizeof *items);
    if (scores) memcpy(scores, sc, (size_t)n * sizeof *scores);
    t->n = 0;
    return n;
}

void cr_topk_free(cr_topk *t) {
    if (!t) return;
    cr_free(t->score);
    cr_free(t->item);
    memset(t, 0, sizeof *t);
}

/* sampler.c — negative samplers: Walker's alias method over the items of a domain, and in-batch draws.
 *
 * Item j of the sampler (s->items[j], ascending item index) has weight w_j = (c_j + 1)^alpha, c_j its number
 * of training events. A draw picks a column uniformly and keeps it with probability prob[column], else takes
 * its alias: O(1) per draw, two random numbers.
 *
 * Construction (Vose's variant of Walker's method, fully deterministic): q_j = n w_j / sum w. Columns with
 * q < 1 go on a "small" stack and the others on a "large" stack, pushed in ascending column order. While both
 * stacks hold columns, pop one small s and one large l: prob[s] = q_s, alias[s] = l, q_l -= 1 - q_s, and l goes
 * back on the small or large stack by its new q. Columns left on either stack (only rounding puts one on the
 * small stack) get prob 1 and alias themselves. Weights are formed in log space relative to the largest, so a
 * large alpha cannot overflow. */
#include "crossrec/train.h"

#include <math.h>
#include <string.h>

cr_status cr_sampler_init(cr_sampler *s, const cr_interactions *train, int32_t domain, double alpha) {
    memset(s, 0, sizeof *s);
    if (domain < -1 || domain >= train->n_domains)
        return cr_fail(CR_ERR_ARG, "sampler: domain %d is outside -1..%lld", domain, (long long)train->n_domains - 1);
    if (!isfinite(alpha)) return cr_fail(CR_ERR_ARG, "sampler: alpha must be a finite number (got %g)", alpha);
    int64_t n = 0;
    for (int64_t i = 0; i < train->n_items; i++)
        if (domain < 0 || train->item_domain[i] == domain) n++;
    if (n == 0) {
        if (domain < 0) return cr_fail(CR_ERR_ARG, "sampler: the dataset has no items");
        return cr_fail(CR_ERR_ARG, "sampler: domain %d has no items to draw negatives from", domain);
    }
    double *q = NULL;           /* (n) scaled weights, then what is left of each large column */
    int32_t *small = NULL, *large = NULL;   /* (n) work stacks */
    s->n = n;
    s->items = cr_malloc((size_t)n * sizeof *s->items);
    s->prob = cr_malloc((size_t)n * sizeof *s->prob);
    s->alias = cr_malloc((size_t)n * sizeof *s->alias);
    q = cr_malloc((size_t)n * sizeof *q);
    small = cr_malloc((size_t)n * sizeof *small);
    large = cr_malloc((size_t)n * sizeof *large);
    if (!s->items || !s->prob || !s->alias || !q || !small || !large) {
        cr_free(q), cr_free(small), cr_free(large);
        cr_sampler_free(s);
        return cr_fail(CR_ERR_NOMEM, "out of memory (negative sampler over %lld items)", (long long)n);
    }

    /* log weights; the largest becomes weight 1 */
    int64_t j = 0;
    double lmax = -INFINITY;
    for (int64_t i = 0; i < train->n_items; i++) {
        if (domain >= 0 && train->item_domain[i] != domain) continue;
        s->items[j] = (int32_t)i;
        q[j] = alpha * log((double)(train->item_ptr[i + 1] - train->item_ptr[i]) + 1.0);
        if (q[j] > lmax) lmax = q[j];
        j++;
    }
    double sum = 0;
    for (j = 0; j < n; j++) sum += (q[j] = exp(q[j] - lmax));
    int64_t ns = 0, nl = 0;
    for (j = 0; j < n; j++) {
        q[j] = q[j] * (double)n / sum;
        if (q[j] < 1.0) small[ns++] = (int32_t)j;
        else large[nl++] = (int32_t)j;
    }
    while (ns > 0 && nl > 0) {
        int32_t a = small[--ns], b = large[--nl];
        s->prob[a] = (float)q[a];
        s->alias[a] = b;
        q[b] -= 1.0 - q[a];
        if (q[b] < 1.0) small[ns++] = b;
        else large[nl++] = b;
    }
    while (nl > 0) {
        int32_t b = large[--nl];
        s->prob[b] = 1.0f, s->alias[b] = b;
    }
    while (ns > 0) {
        int32_t a = small[--ns];
        s->prob[a] = 1.0f, s->alias[a] = a;
    }
    cr_free(q), cr_free(small), cr_free(large);
    return CR_OK;
}

int32_t cr_sampler_draw(const cr_sampler *s, cr_rng *r) {
    uint32_t c = cr_rng_below(r, (uint32_t)s->n);
    double coin = cr_rng_uniform(r);
    return s->items[coin < (double)s->prob[c] ? c : (uint32_t)s->alias[c]];
}

void cr_sampler_free(cr_sampler *s) {
    if (!s) return;
    cr_free(s->items);
    cr_free(s->prob);
    cr_free(s->alias);
    memset(s, 0, sizeof *s);
}

int32_t cr_inbatch_draw(const int32_t *items, int64_t n, int64_t row, cr_rng *r) {
    if (n < 2 || n > (int64_t)UINT32_MAX) return -1;
    /* one of the n - 1 other rows: k in [0, n-1), shifted past `row` */
    int64_t k = (int64_t)cr_rng_below(r, (uint32_t)(n - 1));
    return items[k + (k >= row)];
}

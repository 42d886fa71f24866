/* pop.c — popularity: every user gets the same ranking, by training events per item.
 *
 * Main type: pop_model. score(i) = count[i], or with by_domain count[i] / domain_events[item_domain[i]], so that
 * when candidates span domains a big domain's items do not crowd out a small domain's (each domain's items
 * then score their share of that domain's events). The model needs no user and no history: can[r] = 1.
 *
 * Invariants (checked on load): count[i] >= 0; item_domain[i] in 0..n_domains-1; domain_events[t] equals the
 * sum of count over the items of domain t; when trained on one domain (domain >= 0), items of other domains
 * have count 0.
 *
 * .crm keys: pop.by_domain, pop.domain; arrays pop.count i64 (n_items), pop.item_domain i32 (n_items),
 * pop.domain_events i64 (n_domains). */
#include "model_impl.h"

#include <string.h>

typedef struct {
    cr_model base;
    int by_domain;
    int32_t domain;                 /* trained on this domain's events only, or -1 */
    const int64_t *count;           /* (n_items) training events of each item */
    const int64_t *domain_events;   /* (n_domains) training events of each domain */
    const int32_t *item_domain;     /* (n_items) copied from the dataset, so the model stands alone */
    void *slab;                     /* trained: owns the three arrays; loaded: NULL */
    cr_file *file;                  /* loaded: the arrays point into its mapping */
} pop_model;

static cr_status pop_score(const cr_model *mm, const cr_score_request *q, float *scores, uint8_t *can) {
    const pop_model *m = (const pop_model *)mm;
    /* Every row gets the same scores: compute the first, copy it. */
    for (int64_t c = 0; c < q->n_cand; c++) {
        int32_t i = q->cand[c];
        if (!m->by_domain) {
            scores[c] = (float)m->count[i];
        } else {
            int64_t total = m->domain_events[m->item_domain[i]];
            scores[c] = total ? (float)((double)m->count[i] / (double)total) : 0.0f;
        }
    }
    for (int64_t r = 0; r < q->n_rows; r++) {
        can[r] = 1;
        if (r && q->n_cand) memcpy(scores + r * q->n_cand, scores, (size_t)q->n_cand * sizeof *scores);
    }
    return CR_OK;
}

static cr_status pop_save(const cr_model *mm, cr_filew *w) {
    const pop_model *m = (const pop_model *)mm;
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "pop.by_domain", m->by_domain)) || (st = cr_filew_meta_i64(w, "pop.domain", m->domain)) ||
        (st = cr_filew_array(w, "pop.count", CR_DT_I64, m->count, m->base.n_items)) ||
        (st = cr_filew_array(w, "pop.item_domain", CR_DT_I32, m->item_domain, m->base.n_items)) ||
        (st = cr_filew_array(w, "pop.domain_events", CR_DT_I64, m->domain_events, m->base.n_domains)))
        return st;
    return CR_OK;
}

static void pop_free(cr_model *mm) {
    pop_model *m = (pop_model *)mm;
    cr_free(m->slab);
    cr_file_close(m->file);
    cr_free(m);
}

static const cr_model_ops pop_ops = {"pop", pop_score, pop_save, pop_free, NULL, NULL, NULL};

static cr_status pop_train(cr_model **out, const cr_dataset *d, const cr_interactions *v, const cr_train_params *p) {
    int64_t n_items = v->n_items, n_dom = v->n_domains;
    pop_model *m = cr_calloc(1, sizeof *m);
    /* slab: count (n_items) and domain_events (n_domains) as i64, then item_domain (n_items) as i32 */
    void *slab = cr_calloc((size_t)(n_items + n_dom) * sizeof(int64_t) + (size_t)n_items * sizeof(int32_t), 1);
    if (!m || !slab) {
        cr_free(m);
        cr_free(slab);
        return cr_fail(CR_ERR_NOMEM, "out of memory training pop (%lld items)", (long long)n_items);
    }
    int64_t *count = slab, *dom_events = count + n_items;
    int32_t *item_domain = (int32_t *)(dom_events + n_dom);
    memcpy(item_domain, v->item_domain, (size_t)n_items * sizeof *item_domain);
    for (int64_t u = 0; u < v->n_users; u++)
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            if (p->domain < 0 || item_domain[i] == p->domain) count[i]++;
        }
    for (int64_t i = 0; i < n_items; i++) dom_events[item_domain[i]] += count[i];
    m->base.ops = &pop_ops;
    m->by_domain = p->pop_by_domain != 0;
    m->domain = p->domain;
    m->count = count;
    m->domain_events = dom_events;
    m->item_domain = item_domain;
    m->slab = slab;
    *out = &m->base;
    return CR_OK;
}

static cr_status pop_check(const pop_model *m, const char *path) {
    int64_t n_items = m->base.n_items, n_dom = m->base.n_domains;
    for (int64_t i = 0; i < n_items; i++) {
        if (m->count[i] < 0)
            return cr_fail(CR_ERR_FORMAT, "%s: pop.count[%lld] = %lld is negative", path, (long long)i, (long long)m->count[i]);
        if (m->item_domain[i] < 0 || m->item_domain[i] >= n_dom)
            return cr_fail(CR_ERR_FORMAT, "%s: pop.item_domain[%lld] = %d is outside 0..%lld", path, (long long)i, m->item_domain[i],
                           (long long)n_dom - 1);
        if (m->domain >= 0 && m->item_domain[i] != m->domain && m->count[i] != 0)
            return cr_fail(CR_ERR_FORMAT, "%s: pop.count[%lld] = %lld, but the model was trained on domain %d only", path,
                           (long long)i, (long long)m->count[i], m->domain);
    }
    /* Recompute the domain totals; a total that overflows cannot match anything stored. */
    int64_t *sum = cr_calloc((size_t)n_dom + 1, sizeof *sum);
    if (!sum) return cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
    cr_status st = CR_OK;
    for (int64_t i = 0; i < n_items && !st; i++) {
        int64_t *s = &sum[m->item_domain[i]];
        if (*s > INT64_MAX - m->count[i]) st = cr_fail(CR_ERR_FORMAT, "%s: pop.count sums overflow", path);
        else *s += m->count[i];
    }
    for (int64_t t = 0; t < n_dom && !st; t++)
        if (sum[t] != m->domain_events[t])
            st = cr_fail(CR_ERR_FORMAT, "%s: pop.domain_events[%lld] = %lld, but the counts of its items sum to %lld", path,
                         (long long)t, (long long)m->domain_events[t], (long long)sum[t]);
    cr_free(sum);
    return st;
}

static cr_status pop_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    pop_model *m = cr_calloc(1, sizeof *m);
    if (!m) {
        cr_file_close(f);
        return cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
    }
    m->base = *base;
    m->base.ops = &pop_ops;
    m->file = f;
    int64_t by_domain, domain;
    const void *a[3];
    cr_status st;
    if ((st = cr_file_get_i64(f, "pop.by_domain", &by_domain)) || (st = cr_file_get_i64(f, "pop.domain", &domain)) ||
        (st = cr_file_get_array(f, "pop.count", CR_DT_I64, base->n_items, &a[0], NULL)) ||
        (st = cr_file_get_array(f, "pop.item_domain", CR_DT_I32, base->n_items, &a[1], NULL)) ||
        (st = cr_file_get_array(f, "pop.domain_events", CR_DT_I64, base->n_domains, &a[2], NULL)))
        goto fail;
    if (by_domain != 0 && by_domain != 1) {
        st = cr_fail(CR_ERR_FORMAT, "%s: pop.by_domain = %lld (expected 0 or 1)", path, (long long)by_domain);
        goto fail;
    }
    if (domain < -1 || domain >= base->n_domains) {
        st = cr_fail(CR_ERR_FORMAT, "%s: pop.domain = %lld is outside -1..%lld", path, (long long)domain,
                     (long long)base->n_domains - 1);
        goto fail;
    }
    m->by_domain = (int)by_domain;
    m->domain = (int32_t)domain;
    m->count = a[0];
    m->item_domain = a[1];
    m->domain_events = a[2];
    if ((st = pop_check(m, path))) goto fail;
    *out = &m->base;
    return CR_OK;
fail:
    pop_free(&m->base);
    return st;
}

const cr_model_type cr_pop_type = {"pop", pop_train, pop_load};

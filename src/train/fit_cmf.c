/* fit_cmf.c — collective matrix factorisation for implicit feedback (after Singh and Gordon, "Relational
 * Learning via Collective Matrix Factorization", 2008), fitted with BPR pairs.
 *
 * The model is a cr_mf_model of type "cmf" (src/models/mf.c): score(u, i) = <p_u, q_i>, one user vector shared by
 * every domain and one vector per item (items belong to one domain, so item factors are per domain). The
 * shared user vector is what carries knowledge across domains: a user with no target-domain training events
 * (a cold user of the cold-user protocol) still has a vector learned from its source-domain events, placed in
 * the space where the target items are ranked. Such a user can be represented as soon as it has training
 * events in any domain of weight > 0; users without any are not (can = 0; no fold-in).
 *
 * Objective: for a training event (u, i) of domain d and a negative j drawn from domain d's items,
 *     w_d * -log sigmoid(<p_u, q_i - q_j>)  +  L2 on the touched rows (unweighted, as the optimizer's decay),
 * with w_T = 1 for the target domain T and w_d = p->source_weight for the others. The target domain is
 * p->domain when >= 0, else the target of p->valid when it has one; without a target every domain has weight
 * 1 (cmf is then BPR-MF on all domains, factor for factor). Note that p->domain names the target here and does
 * not restrict training to it, unlike bpr: restricting would remove the very events cmf exists to use.
 *
 * Sampling: each epoch draws as many events as there are used training events, uniformly, and multiplies each
 * sample's gradient by w_d (rather than drawing domains in proportion to events x w_d): the sampler, the
 * negatives and the pipeline are then exactly fit_bpr.c's, which this file calls (cr_fit_mf_pairs) instead of
 * repeating. source_weight 0 drops source events altogether, which makes cmf target-only training: cold users
 * then have no vector. Determinism, early stopping on the split's validation users and the epoch table are
 * those of fit_bpr.c. */
#include "train_impl.h"

cr_status cr_fit_cmf(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    *out = NULL;
    int32_t target = cr_train_target(p);
    int64_t nd = train->n_domains;
    float *weight = cr_malloc(((size_t)nd + 1) * sizeof *weight);     /* (n_domains) */
    if (!weight) return cr_fail(CR_ERR_NOMEM, "out of memory for cmf's domain weights");
    for (int64_t t = 0; t < nd; t++) weight[t] = target < 0 || t == target ? 1.0f : (float)p->source_weight;
    /* all domains are trained; the target only sets the weights */
    cr_train_params q = *p;
    q.domain = -1;
    cr_status st = cr_fit_mf_pairs(out, d, train, &q, "cmf", weight);
    cr_free(weight);
    return st;
}

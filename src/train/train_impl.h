/* train_impl.h — private to src/train: the fitting routines of each model type. */
#ifndef CROSSREC_TRAIN_IMPL_H
#define CROSSREC_TRAIN_IMPL_H

#include "../models/model_impl.h"
#include "crossrec/train.h"

/* bpr: BPR-MF with sampled negatives, the optimizer of p->optimizer, early stopping (fit_bpr.c). */
cr_status cr_fit_bpr(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
/* The BPR fitting of fit_bpr.c for a cr_mf_model of `type` ("bpr" or "cmf"), with an optional loss weight per
 * domain (weight: n_domains floats >= 0, read during the call only; NULL: all 1). A sample of domain d has its
 * data term and gradients multiplied by weight[d]; domains of weight 0 are not used at all. */
cr_status cr_fit_mf_pairs(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p,
                          const char *type, const float *weight);
/* cmf: collective MF, user factors shared by all domains, target and source domains weighted (fit_cmf.c). */
cr_status cr_fit_cmf(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
/* One BPR sample's loss and data-term gradients (fit_bpr.c): with x = <pu, qi - qj> and c = 1 - sigmoid(x),
 * returns -log sigmoid(x) and writes gu = -c (qi - qj), gi = -c pu, gj = c pu (dim floats each; outputs must
 * not overlap the inputs). The L2 term is not included: the optimizer adds it as weight decay. Exposed for the
 * finite-difference and golden tests. Thread-safe. */
float cr_bpr_grad(const float *restrict pu, const float *restrict qi, const float *restrict qj, int64_t dim,
                  float *restrict gu, float *restrict gi, float *restrict gj);
/* One sample of the bpr/cmf loop on one worker (fit_bpr.c): counts one optimizer step (cr_opt_step) FIRST, so
 * that Adam corrects this sample's updates with t = the sample's 1-based index in the run; then takes
 * cr_bpr_grad of user row u and item rows i, j (i != j) of params (the "user" and "item" tensors of an MF slab,
 * dim columns), multiplies the three data-term gradients by the sample's loss weight w (cmf's domain weight; 1
 * for bpr), and updates the three rows with cr_opt_update at learning rate lr (the L2 term is the optimizer's
 * weight decay, unweighted). grad: (3, dim) scratch, left holding the weighted gu, gi, gj. Returns the
 * unweighted -log sigmoid(x). Exposed for the golden test. */
float cr_mf_pair_step(cr_optimizer *o, cr_slab *params, int64_t dim, int32_t u, int32_t i, int32_t j, float w, float lr,
                      float *grad);
/* One optimizer step on every parameter of a dense slab, from its gradient `grad` (a slab of the same layout),
 * at the optimizer's own learning rate: the mini-batch step of emcdr's mapping and of ptupcdr's bridge. The step
 * is counted first, so that Adam corrects the k-th step with t = k (counting it after the update would correct
 * the first two steps both with t = 1). */
static inline void cr_opt_dense_step(cr_optimizer *o, cr_slab *params, const cr_slab *grad) {
    cr_opt_step(o);
    cr_opt_update(o, params, 0, grad->data, grad->size, o->p.lr);
}
/* tower: crossrec's transfer model, item tower from id, text and domain, user tower over the history, a head
 * per domain, sampled softmax with in-batch negatives (fit_tower.c). */
cr_status cr_fit_tower(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
/* als: implicit ALS, confidence 1 + alpha * value, conjugate-gradient solves (fit_als.c). */
cr_status cr_fit_als(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
/* emcdr: BPR-MF per side, then an MLP mapping source to target user factors on overlapping users (fit_emcdr.c). */
cr_status cr_fit_emcdr(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
/* Step 1 of emcdr and ptupcdr (fit_emcdr.c): BPR-MF (cr_fit_bpr) on the training events outside domain T (the
 * source, each positive's negatives from its own domain, seed p->seed ^ a constant) and BPR-MF on T's events
 * (seed p->seed), both with p's dim, optimizer, lr, reg, neg_alpha and epochs, quiet, without log or
 * validation. `who` names the model in messages. Errors: CR_ERR_ARG (one domain only, no source events, no
 * target events), CR_ERR_NOMEM; *src and *tgt are NULL on failure. */
cr_status cr_fit_two_sides(cr_mf_model **src, cr_mf_model **tgt, const cr_dataset *d, const cr_interactions *v,
                           const cr_train_params *p, int32_t T, const char *who);
/* Copies tensor t (0 "user", 1 "item") of an MF model, `rows` rows, into dst (rows, dim), and its user_known
 * into known (n_users bytes) when known is not NULL (fit_emcdr.c). */
void cr_mf_take(const cr_mf_model *mf, int t, float *dst, int64_t rows, uint8_t *known);
/* ptupcdr: emcdr's two sides, then a personalised bridge W_u = g(attention-pooled source history) trained with
 * BPR on overlapping users' target events (fit_ptupcdr.c). */
cr_status cr_fit_ptupcdr(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);

/* ALS training pairs (fit_als.c): the events of the trained domain(s) with repeated (user, item) events merged
 * into one pair whose value is the sum of theirs (pairs summing to 0 dropped), stored by user (items in order of
 * first event) and by item (users ascending). A pair of value v has confidence c = 1 + alpha |v| and preference
 * p = [v > 0]. Exposed for the tests. */
typedef struct {
    int64_t n_users, n_items, nnz;
    int64_t *u_ptr;     /* (n_users + 1) */
    int32_t *u_idx;     /* (nnz) item of each pair */
    float *u_val;       /* (nnz) summed value */
    int64_t *i_ptr;     /* (n_items + 1) */
    int32_t *i_idx;     /* (nnz) user of each pair */
    float *i_val;       /* (nnz) */
} cr_als_data;

/* domain -1: all events. CR_ERR_NOMEM leaves *a empty (free is then a no-op). */
cr_status cr_als_data_init(cr_als_data *a, const cr_interactions *train, int32_t domain);
void cr_als_data_free(cr_als_data *a);

/* One row's least-squares solve by conjugate gradient, warm-started from x (dim), cg_steps iterations at most:
 *     (G + sum_k (c_k - 1) f_k f_k^T) x = sum_k c_k p_k f_k,   f_k = F[idx[k]] (F: (n_other, dim) fixed factors),
 * with G = F^T F + reg I (dim, dim, full symmetric) and (c_k, p_k) from val[k] and alpha as above. The matrix is
 * never formed: each product costs dim^2 + 2 n dim. scratch: 3 dim floats. Deterministic; thread-safe on
 * distinct x and scratch. */
void cr_als_solve_row(const float *G, const float *F, int64_t dim, const int32_t *idx, const float *val, int64_t n,
                      double alpha, int64_t cg_steps, float *x, float *scratch);

/* Settings and scratch of a half-step. */
typedef struct {
    int64_t dim, cg_steps;
    double alpha, reg;
    int threads;        /* >= 1: OpenMP threads, and slices of `scratch` */
    float *gram;        /* (dim, dim) scratch: receives F^T F + reg I */
    float *scratch;     /* (threads, 3 dim) */
    double *row_loss;   /* (n_rows) or NULL: receives each row's part of the objective (fit_als.c) */
} cr_als_step;

/* Holds the other side F (n_fixed, dim) fixed and re-solves every row r of X (n_rows, dim) from its pairs
 * [ptr[r], ptr[r+1]) with cr_als_solve_row; a row without pairs becomes exactly zero. Rows are split over
 * s->threads threads; the result does not depend on their number. */
void cr_als_half_step(const cr_als_step *s, const float *F, int64_t n_fixed, const int64_t *ptr, const int32_t *idx,
                      const float *val, int64_t n_rows, float *X);

/* The loop's position, saved in and restored from a training state file (state.c). */
typedef struct {
    int64_t epochs_done, best_epoch, since_best;
    int finished;           /* early stopping ended the run */
    double best_ndcg, seconds;
} cr_loop_state;

/* Writes f's parameters, best (may be NULL or empty), f's optimizer and ls to a .crt at path, atomically. */
cr_status cr_state_save(const char *path, const cr_loop_params *p, const cr_fit *f, const cr_slab *best,
                        const cr_loop_state *ls);
/* Checks the .crt at path against p's fingerprint and f's parameter layout, then restores f's parameters,
 * best (when best->data), f's optimizer and *ls. Errors: those of cr_file_open, CR_ERR_ARG (other settings),
 * CR_ERR_FORMAT (arrays or counts that do not fit); nothing is changed then. */
cr_status cr_state_restore(const char *path, const cr_loop_params *p, cr_fit *f, cr_slab *best, cr_loop_state *ls);

/* The target domain of a cross-domain fit: --domain T when given, else the split's target, else -1. */
static inline int32_t cr_train_target(const cr_train_params *p) {
    return p->domain >= 0 ? p->domain : p->valid ? cr_split_target(p->valid) : -1;
}

#endif

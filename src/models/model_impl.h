/* model_impl.h — the private side of the model interface: the registry entry each model type provides, and
 * helpers shared by the model files.
 *
 * A type registers {name, train, load} in the table of model.c. The generic code owns everything that is the
 * same for every type: parameter checks, the base fields of cr_model, the generic .crm metadata, opening and
 * validating the container, dispatch by the "model" key. A type's code owns its struct, its arrays and its
 * own metadata keys (prefixed "<type>.").
 *
 * Invariant for loaders: every array taken from a file is validated completely (sizes, index ranges, CSR
 * monotone, finite values) before the model is handed out, so scoring code may trust a loaded model as much
 * as a trained one. */
#ifndef CROSSREC_MODEL_IMPL_H
#define CROSSREC_MODEL_IMPL_H

#include "crossrec/model.h"


typedef struct {
    const char *name;
    /* Fits a model on `train` (a view of d; counts already checked equal to d's, parameters checked by
     * cr_model_train). The base fields other than ops are filled in by the caller afterwards. NULL for types
     * fitted by the training engine (src/train). */
    cr_status (*train)(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
    /* Builds a model from an open, CRC-checked .crm whose generic metadata has been read into `base` (ops
     * NULL; counts in range). Takes ownership of f in every case: keeps it open inside the model (arrays may
     * point into its mapping) or closes it on failure. Errors: CR_ERR_FORMAT naming path and the bad value. */
    cr_status (*load)(cr_model **out, cr_file *f, const char *path, const cr_model *base);
} cr_model_type;

extern const cr_model_type cr_pop_type;
extern const cr_model_type cr_itemknn_type;
extern const cr_model_type cr_bpr_type;     /* both are cr_mf_model (mf.c) */
extern const cr_model_type cr_als_type;
extern const cr_model_type cr_emcdr_type;  /* cr_emcdr_model (emcdr.c, emcdr_impl.h) */
extern const cr_model_type cr_ptupcdr_type;    /* cr_ptupcdr_model (ptupcdr.c, ptupcdr_impl.h) */
extern const cr_model_type cr_tower_type;    /* cr_tower_model (tower.c, tower_impl.h) */
extern const cr_model_type cr_cmf_type;     /* cr_mf_model too, fitted like bpr with per-domain loss weights */

/* ---- matrix factorisation (bpr, als): src/models/mf.c ---- */

/* score(u, i) = <user_u, item_i>. Parameters in one slab: tensor 0 "user" (n_users, dim), tensor 1 "item"
 * (n_items, dim). A user has a vector when it had training events in the trained domain(s) (user_known[u]).
 * Other users — cold users of the cold-user protocol, users given by history only — are folded in when
 * fold_in is set (als): their vector solves the ALS least-squares problem for their history (items of the
 * trained domain(s)) against the fixed item factors, as implicit's recalculate_user does; otherwise (bpr) the
 * model cannot represent them (can = 0). */
typedef struct {
    cr_model base;
    int64_t dim;
    int32_t domain;             /* trained on this domain's events only, or -1 */
    cr_slab params;             /* "user", "item" */
    uint8_t *user_known;        /* (n_users) owned (a loaded model copies everything and closes the file) */
    int fold_in;                /* als */
    double als_alpha, reg;      /* fold-in: confidence 1 + alpha * value (value 1 for histories), L2 */
    float *yty;                 /* (dim, dim) item_factors^T item_factors + reg I, for fold-in; owned */
} cr_mf_model;

/* A zeroed model of n_users x n_items x dim for the fitting code (bpr or als ops by `type`). */
cr_status cr_mf_new(cr_mf_model **m, const char *type, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim);
/* Recomputes yty from the item factors (call after fitting an als model, before scoring). */
cr_status cr_mf_prepare_fold_in(cr_mf_model *m);
/* The fold-in solve for one history (item indices; each counts with confidence 1 + alpha): writes dim floats.
 * Returns 1 on success, 0 when no history item is in the trained domain(s) (the user cannot be represented),
 * -1 when its scratch cannot be allocated (a CR_ERR_NOMEM message is set; scoring then fails with it). */
int cr_mf_fold_in(const cr_mf_model *m, const int32_t *hist, int64_t n, float *x);
/* The scoring kernel: scores[r * n_cand + c] = sum over k of u[r][k] * Q[cand[c] * dim + k], summed in k order in
 * float, for the rows with u[r] != NULL (other rows untouched). cr_mf_dot blocks candidates and needs scratch
 * of CR_MF_DOT_SCRATCH(dim) floats; it gives the same bits as cr_mf_dot_ref, the scalar oracle, so a pair's
 * score never depends on the rest of the request. Thread-safe. */
#define CR_MF_DOT_BLOCK 16
#define CR_MF_DOT_SCRATCH(dim) ((dim) * CR_MF_DOT_BLOCK)
void cr_mf_dot(const float *const *u, int64_t n_rows, const float *Q, const int32_t *cand, int64_t n_cand, int64_t dim,
               float *scores, float *scratch);
void cr_mf_dot_ref(const float *const *u, int64_t n_rows, const float *Q, const int32_t *cand, int64_t n_cand, int64_t dim,
                   float *scores);
/* The user_vectors op of the dot-product models from their rows' vectors u[r] (NULL: the row cannot be
 * represented): copies each into vecs (n_rows, dim), zeros for NULL rows, and sets can. */
void cr_mf_copy_rows(const float *const *u, int64_t n_rows, int64_t dim, float *vecs, uint8_t *can);

#endif

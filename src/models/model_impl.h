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

/* OpenMP pragmas that vanish in builds without OpenMP (OMP=0), where -Wunknown-pragmas would otherwise
 * turn them into errors. */
#ifdef _OPENMP
#define CR_OMP(x) _Pragma(#x)
#else
#define CR_OMP(x)
#endif

typedef struct {
    const char *name;
    /* Fits a model on `train` (a view of d; counts already checked equal to d's, parameters checked by
     * cr_model_train). The base fields other than ops are filled in by the caller afterwards. */
    cr_status (*train)(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
    /* Builds a model from an open, CRC-checked .crm whose generic metadata has been read into `base` (ops
     * NULL; counts in range). Takes ownership of f in every case: keeps it open inside the model (arrays may
     * point into its mapping) or closes it on failure. Errors: CR_ERR_FORMAT naming path and the bad value. */
    cr_status (*load)(cr_model **out, cr_file *f, const char *path, const cr_model *base);
} cr_model_type;

extern const cr_model_type cr_pop_type;
extern const cr_model_type cr_itemknn_type;

#endif

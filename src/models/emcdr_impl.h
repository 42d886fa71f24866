/* emcdr_impl.h — private to src/models and src/train: the emcdr model's struct (src/models/emcdr.c), shared
 * with its fitting routine (src/train/fit_emcdr.c).
 *
 * EMCDR (Man et al., "Cross-Domain Recommendation: An Embedding and Mapping Approach", IJCAI 2017): one MF
 * per side (target domain T; all other domains together as the source), and an MLP f that maps a user's
 * source vector to a target vector, learned on users with training events on both sides. Score(u, i) =
 * <v_u, q_i> with q_i the target item factors and v_u the user's target factors when it has them, else
 * f(source factors) when it has those, else none (can = 0; a user given by history only has neither). */
#ifndef CROSSREC_EMCDR_IMPL_H
#define CROSSREC_EMCDR_IMPL_H

#include "model_impl.h"
#include "core/nn.h"

#define CR_EMCDR_MAX_DIM 4096

typedef struct {
    cr_model base;
    int64_t dim;
    int32_t domain;             /* the target domain, 0..n_domains-1 */
    cr_slab factors;            /* "user" (n_users, dim) target user factors; "item" (n_items, dim) target item
                                   factors (zero outside T); "src_user" (n_users, dim) source user factors */
    cr_slab map;                /* the mapping MLP's tensors "emcdr.map.w0" (hidden, dim), "emcdr.map.b0" (1, hidden),
                                   "emcdr.map.w1" (dim, hidden), "emcdr.map.b1" (1, dim) */
    cr_mlp mlp;                 /* dim -> hidden (tanh) -> dim, bound to `map` */
    uint8_t *tgt_known;         /* (n_users) 1: the user had target training events (its "user" row is trained) */
    uint8_t *src_known;         /* (n_users) 1: the user had source training events (its "src_user" row is trained) */
} cr_emcdr_model;

/* The mapping's optimizer in fit_emcdr.c: Adam (default betas and eps) with this learning rate and weight decay,
 * one step per mini-batch. Here so that the golden test can check its reference uses the fit's settings. */
#define CR_EMCDR_MAP_LR 0.01f
#define CR_EMCDR_MAP_WD 1e-4f

/* One mini-batch of the mapping's gradient (fit_emcdr.c): for B rows x (B, dim) (source user vectors) and
 * targets t (B, dim) (target user vectors), y = f(x), returns the mean over the B dim entries of (y - t)^2,
 * writes dy = 2 (y - t) / (B dim) and accumulates the loss's gradient with respect to f's parameters into grad (a
 * slab of m->map's layout; the caller zeroes it). pre, acts: cr_mlp_act_size(&m->mlp, B) floats each (f's output
 * y is the last B dim of acts); dy: B dim floats; scratch: 2 B hidden floats. Exposed for the golden test. */
double cr_emcdr_map_grad(const cr_emcdr_model *m, cr_slab *grad, const float *x, const float *t, int64_t B, float *pre,
                         float *acts, float *dy, float *scratch);

/* A zeroed model (factors and mapping all zero, both known arrays 0). CR_ERR_ARG for a bad shape (dim outside
 * 1..4096, hidden outside 1..2*4096, domain outside 0..n_domains-1), CR_ERR_NOMEM; *m NULL on failure. */
cr_status cr_emcdr_new(cr_emcdr_model **m, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim,
                       int64_t hidden, int32_t domain);

/* Array helpers for the .crm files of emcdr and ptupcdr (emcdr.c). cr_slab_save_arrays writes every tensor of s
 * as an f32 array named names[t] (names NULL: the tensor's own name). cr_slab_load_arrays reads them back into
 * s, each of exactly its tensor's size, refusing a value that is not finite (CR_ERR_FORMAT "path: name[k] = v is
 * not a finite number"). cr_load_known reads u8 array `name` of n values, each 0 or 1, into dst. */
cr_status cr_slab_save_arrays(cr_filew *w, const cr_slab *s, const char *const *names);
cr_status cr_slab_load_arrays(cr_file *f, const char *path, cr_slab *s, const char *const *names);
cr_status cr_load_known(cr_file *f, const char *path, const char *name, uint8_t *dst, int64_t n);

#endif

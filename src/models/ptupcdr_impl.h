/* ptupcdr_impl.h — private to src/models and src/train: the ptupcdr model's struct (src/models/ptupcdr.c), its
 * bridge's forward pass, and the per-event loss and gradient of its fitting routine (src/train/fit_ptupcdr.c).
 *
 * PTUPCDR (Zhu et al., "Personalized Transfer of User Preferences for Cross-domain Recommendation", WSDM 2022),
 * implicit-feedback version: BPR-MF per side as in emcdr (cr_fit_two_sides), then a personalised bridge. For a
 * user u with source factors s_u and source history items j (distinct, the PTUPCDR_HIST most recent) of source
 * item factors v_j:
 *     a_j = softmax_j h(v_j)        h: dim -> dim (tanh) -> 1, the characteristic encoder
 *     c_u = sum_j a_j v_j           (dim)
 *     W_u = g(c_u)                  g: dim -> dim (tanh) -> dim * dim, the meta network; W_u (dim, dim) row-major
 *     target vector = W_u s_u       (dim)
 * Score(u, i) = <x_u, q_i>, q the target item factors, x_u the user's target factors when it had target
 * training events, else its mapped vector W_u s_u when it had source ones, else none (can = 0). */
#ifndef CROSSREC_PTUPCDR_IMPL_H
#define CROSSREC_PTUPCDR_IMPL_H

#include "model_impl.h"
#include "core/nn.h"

#define CR_PTUPCDR_MAX_DIM 256      /* g's output layer holds dim^3 weights */
#define CR_PTUPCDR_HIST 50          /* source history items per user, most recent first */

typedef struct {
    cr_model base;
    int64_t dim;
    int32_t domain;             /* the target domain, 0..n_domains-1 */
    cr_slab factors;            /* "user" (n_users, dim) target user factors; "item" (n_items, dim) target item
                                   factors (zero outside T); "mapped" (n_users, dim) W_u s_u for users cold in T
                                   with source factors (zero for the others) */
    cr_slab nets;               /* h: "ptupcdr.enc.w0" (dim, dim), "ptupcdr.enc.b0" (1, dim), "ptupcdr.enc.w1"
                                   (1, dim), "ptupcdr.enc.b1" (1, 1); g: "ptupcdr.meta.w0" (dim, dim),
                                   "ptupcdr.meta.b0" (1, dim), "ptupcdr.meta.w1" (dim*dim, dim), "ptupcdr.meta.b1"
                                   (1, dim*dim) */
    cr_mlp enc, meta;           /* h and g, bound to `nets` */
    uint8_t *tgt_known;         /* (n_users) 1: the user had target training events */
    uint8_t *src_known;         /* (n_users) 1: the user had source training events */
} cr_ptupcdr_model;

/* The bridge's optimizer in fit_ptupcdr.c: Adam (default betas and eps) with this learning rate and weight decay,
 * one step per mini-batch. Here so that the golden test can check its reference uses the fit's settings. */
#define CR_PTUPCDR_LR 0.005f
#define CR_PTUPCDR_WD 0.0f

/* A zeroed model. CR_ERR_ARG for a bad shape (dim outside 1..CR_PTUPCDR_MAX_DIM, domain outside
 * 0..n_domains-1), CR_ERR_NOMEM; *m NULL on failure. */
cr_status cr_ptupcdr_new(cr_ptupcdr_model **m, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim,
                         int32_t domain);

/* Scratch of the bridge for histories of at most `cap` items: the forward pass's intermediates (read by the
 * backward pass in fit_ptupcdr.c) and the backward pass's buffers. One allocation. */
typedef struct {
    int64_t cap, dim;
    float *enc_pre, *enc_acts;      /* (cr_mlp_act_size(enc, cap)) each */
    float *e, *a;                   /* (cap) the scores h(v_j) (view into enc_acts) and attention weights */
    float *c;                       /* (dim) c_u */
    float *meta_pre, *meta_acts;    /* (cr_mlp_act_size(meta, 1)) each */
    float *w;                       /* (dim * dim) W_u (view into meta_acts) */
    float *t;                       /* (dim) W_u s_u */
    float *dw, *dc, *de;            /* (dim * dim), (dim), (cap) backward */
    float *scratch;                 /* (2 max(cap dim, dim dim)) for cr_mlp_backward */
    float *buf;                     /* the allocation */
} cr_ptupcdr_ws;

cr_status cr_ptupcdr_ws_init(cr_ptupcdr_ws *ws, const cr_ptupcdr_model *m, int64_t cap);   /* CR_ERR_NOMEM */
void cr_ptupcdr_ws_free(cr_ptupcdr_ws *ws);
/* The bridge for one user: V (n, dim) its history's source item vectors, n in 1..ws->cap; s (dim) its source
 * factors. Writes a, c, w, t of ws (t = W_u s). Thread-safe on distinct ws. */
void cr_ptupcdr_forward(const cr_ptupcdr_model *m, cr_ptupcdr_ws *ws, const float *V, int64_t n, const float *s);

/* One training event (fit_ptupcdr.c): with x = <W_u s, qi - qj> (the bridge run on V, n, s), returns
 * -log sigmoid(x) and accumulates scale times its gradient with respect to h's and g's parameters into grad
 * (a slab of m->nets' layout). s, qi, qj are constants. Exposed for the finite-difference test. */
double cr_ptupcdr_event(const cr_ptupcdr_model *m, cr_ptupcdr_ws *ws, cr_slab *grad, const float *V, int64_t n,
                        const float *s, const float *qi, const float *qj, float scale);

/* Scratch of cr_ptupcdr_batch for batches of at most cap_batch events and cap_rows history rows in all. */
typedef struct {
    int64_t cap_batch, cap_rows, dim;
    float *enc_pre, *enc_acts;      /* (cr_mlp_act_size(enc, cap_rows)) each */
    float *a, *de;                  /* (cap_rows) attention weights, their gradient */
    float *C, *dC;                  /* (cap_batch, dim) pooled histories, their gradient */
    float *meta_pre, *meta_acts;    /* (cr_mlp_act_size(meta, cap_batch)) each */
    float *dW;                      /* (cap_batch, dim * dim) */
    float *scratch;                 /* for cr_mlp_backward */
    float *buf;                     /* the allocation */
} cr_ptupcdr_bws;
cr_status cr_ptupcdr_bws_init(cr_ptupcdr_bws *ws, const cr_ptupcdr_model *m, int64_t cap_batch, int64_t cap_rows);  /* CR_ERR_NOMEM */
void cr_ptupcdr_bws_free(cr_ptupcdr_bws *ws);
/* A mini-batch of B events at once (fit_ptupcdr.c): the same loss and gradient as cr_ptupcdr_event summed over
 * the events, computed with matrix products across the batch — the encoder on every history row together, the
 * meta network on the B pooled vectors — so the dim x dim bridge costs BLAS products, not B separate ones.
 * V holds the histories' vectors one after the other, event k's rows [hist_off[k], hist_off[k+1]) (at least
 * one each); s, qi, qj: B pointers to dim floats. Returns the summed loss; accumulates scale times the summed
 * gradient into grad. Equal to the per-event sums up to float rounding (tested). */
double cr_ptupcdr_batch(const cr_ptupcdr_model *m, cr_ptupcdr_bws *ws, cr_slab *grad, const float *V, const int64_t *hist_off,
                        int64_t B, const float *const *s, const float *const *qi, const float *const *qj, float scale);
#endif

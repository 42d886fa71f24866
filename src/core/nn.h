/* nn.h — small dense layers with hand-written forward and backward passes (llm.c
 * style), in core so that models can run them forward and the training engine backward; used by the mapping
 * networks of emcdr and ptupcdr. Every backward pass has a finite-difference test.
 *
 * Shapes are given with every call; activations are row-major (batch, features). Weights live in a cr_slab
 * (core.h): a linear layer is a weight tensor (out, in) and a bias tensor (1, out). Gradients go to a slab of
 * the same layout and are ACCUMULATED (+=), so the caller zeroes them once per batch. The layers of the `tower`
 * model (embedding bag, layer norm, GELU, dropout, pooling, a causal transformer, the ranking losses) extend this
 * header in nn_tower.h. */
#ifndef CROSSREC_NN_H
#define CROSSREC_NN_H

#include "crossrec/core.h"

/* y (B, out) = x (B, in) @ W^T (W: out, in) + b (out). */
void cr_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out);
/* Given dy (B, out): dx (B, in) += dy @ W (dx may be NULL); dw (out, in) += dy^T @ x; db (out) += sum_B dy. */
void cr_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                        int64_t in, int64_t out);
/* The same contracts as cr_linear_forward / cr_linear_backward (nn.h, their scalar references), computed with
 * cblas_sgemm: y (B, out) = x (B, in) @ W^T + b (b may be NULL); dx (B, in) += dy @ W, dw (out, in) += dy^T @ x,
 * db (out) += column sums of dy (each may be NULL). Sizes must fit in int (BLAS). */
void cr_linear_forward_blas(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out);
void cr_linear_backward_blas(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                             int64_t in, int64_t out);
/* OpenBLAS's thread count is process-wide. Code that runs products on its own threads (each product on one)
 * brackets that work with these: the first caller in progress saves the setting and sets 1, the last one to leave
 * restores it. Thread-safe. */
void cr_blas_single_enter(void);
void cr_blas_single_leave(void);
/* Scalar references of the two (the products above go through OpenBLAS beyond a small size). */
void cr_linear_forward_ref(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out);
void cr_linear_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                            int64_t in, int64_t out);

typedef enum { CR_ACT_NONE = 0, CR_ACT_RELU, CR_ACT_TANH } cr_activation;

/* y = act(x) elementwise over n values; in place allowed. */
void cr_act_forward(float *y, const float *x, int64_t n, cr_activation act);
/* dx += dy * act'(x), with y = act(x) (tanh' uses y, relu' uses x). */
void cr_act_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, cr_activation act);

/* Mean squared error over n values: returns mean (y - t)^2 and writes dy = 2 (y - t) / n. */
double cr_mse(float *dy, const float *y, const float *t, int64_t n);

/* A multi-layer perceptron: layers[0].in = input width, each layer feeds the next; activation after every
 * layer but the last. Its parameters are tensors "<prefix>w<k>" (out, in) and "<prefix>b<k>" (1, out) of a
 * slab, found with cr_mlp_bind after the slab is laid out. */
#define CR_MLP_MAX_LAYERS 4

typedef struct {
    int n_layers;
    int64_t width[CR_MLP_MAX_LAYERS + 1];   /* width[0] input, width[k+1] output of layer k */
    cr_activation act;
    int w_index[CR_MLP_MAX_LAYERS], b_index[CR_MLP_MAX_LAYERS];    /* tensor indices in the slab */
} cr_mlp;

/* Appends the MLP's tensors to a tensor list (for cr_slab_init); returns the new count. */
int cr_mlp_tensors(const cr_mlp *m, const char *prefix, cr_tensor *t, int n);
/* Finds the MLP's tensors in a laid-out slab (CR_ERR_FORMAT if missing or misshapen). */
cr_status cr_mlp_bind(cr_mlp *m, const cr_slab *s, const char *prefix);
/* Initialises weights with N(0, 1/in) and zero biases. */
void cr_mlp_init(cr_mlp *m, cr_slab *s, cr_rng *r);
/* Forward for B rows: acts holds every layer's output (sum of B * width[k+1] floats), pre holds the
 * pre-activations (same size); the network output is the last block of acts. */
void cr_mlp_forward(const cr_mlp *m, const cr_slab *s, const float *x, int64_t B, float *pre, float *acts);
/* Backward from dout (B, width[n_layers]): accumulates parameter gradients into g (slab of the same layout),
 * writes dx (B, width[0]) if not NULL. scratch: 2 * B * max width floats. */
void cr_mlp_backward(const cr_mlp *m, const cr_slab *s, cr_slab *g, const float *x, int64_t B, const float *pre,
                     const float *acts, const float *dout, float *dx, float *scratch);
/* Floats needed for pre / acts of B rows. */
int64_t cr_mlp_act_size(const cr_mlp *m, int64_t B);

#endif

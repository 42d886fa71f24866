/* nn_tower.h — the layers the `tower` transfer model (DESIGN.md §5) is built from, each with a forward and a
 * backward pass written out by hand (llm.c style): a BLAS linear layer, embedding bag, layer norm, GELU,
 * dropout and id dropout, attention and mean pooling over ragged sequences, a small causal transformer,
 * L2 normalisation, gradient reversal, and the losses (sampled softmax with log-Q correction, BPR, InfoNCE,
 * softmax cross-entropy).
 *
 * Conventions (those of nn.h):
 *  - Activations are row-major float arrays with explicit sizes; shapes are given in the comments as
 *    (rows, cols). Parameters live in a cr_slab (core.h); gradients go to a slab of the same layout.
 *  - Backward passes ACCUMULATE (+=) into every gradient buffer they are given, parameters and inputs alike,
 *    so the caller zeroes them once per batch and several consumers of one tensor can add into one buffer.
 *    A gradient pointer may be NULL when that gradient is not wanted (said per function).
 *  - Losses return the (unweighted) mean loss in double and ADD `weight` times its gradient into their input
 *    gradient buffers (unlike cr_mse, which writes), so that a weighted sum of losses feeds one buffer.
 *  - Ragged batches: a bag or sequence b of a packed batch is entries [offsets[b], offsets[b+1]); a padded
 *    batch of sequences is (B, L, d) with len[b] <= L valid rows at the front ("right-padded"). Padding rows
 *    are never read for the result, their outputs are written as zeros and they receive no gradient.
 *  - Where a kernel has a fast path that computes differently (BLAS, threads) there is a plain scalar `_ref`
 *    version that is never deleted; the tests compare the two on odd sizes.
 *  - OpenMP: threads split rows (bags, sequences, heads) whose results are independent, or give every output
 *    row one owner thread that adds in input order, so results are bit-identical at any thread count. The
 *    thread count is OpenMP's current one (omp_set_num_threads / OMP_NUM_THREADS). Nothing here allocates;
 *    functions that need scratch space take it, with a size function beside them.
 *  - Every function may be called from several threads at once on different buffers, except that a cr_rng
 *    is never shared. */
#ifndef CROSSREC_NN_TOWER_H
#define CROSSREC_NN_TOWER_H

#include "nn.h"


/* ---- embedding bag ------------------------------------------------------------------------------------ */

typedef enum { CR_BAG_SUM = 0, CR_BAG_MEAN } cr_bag_mode;

/* out (B, d): bag b is the entries k in [offsets[b], offsets[b+1]) of idx (rows of E (n_rows, d)) with
 * optional per-entry weights w (TF-IDF; NULL: all 1):
 *   SUM:  out[b] = sum_k w_k E[idx_k]
 *   MEAN: out[b] = (1 / n_b) sum_k w_k E[idx_k], n_b = the entry count (PyTorch's mode='mean' when w is NULL;
 *         for a weighted average pass weights that sum to 1 with SUM).
 * An empty bag gives a zero row. offsets (B + 1) non-decreasing; every idx in [0, n_rows) (asserted). The fast
 * version splits bags over threads; the result is bit-identical to the _ref one. */
void cr_embbag_forward(float *out, const float *E, int64_t n_rows, int64_t d, const int64_t *offsets, const int32_t *idx,
                       const float *w, int64_t B, cr_bag_mode mode);
void cr_embbag_forward_ref(float *out, const float *E, int64_t n_rows, int64_t d, const int64_t *offsets,
                           const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode);
/* Given dout (B, d): dE[idx_k] += scale_b w_k dout[b] for every entry (scale_b = 1, or 1/n_b for MEAN) — only
 * the rows named in idx are touched, so dE may be a full-size gradient tensor that the optimizer updates
 * lazily (cr_embbag_touched); dw (entries) += scale_b <dout[b], E[idx_k]> when dw is not NULL (E is read only
 * then; it may be NULL otherwise). The fast version gives each row of dE one owner thread that adds the
 * entries in input order, so it is bit-identical to the _ref one at any thread count. */
void cr_embbag_backward(float *dE, float *dw, const float *dout, const float *E, int64_t n_rows, int64_t d,
                        const int64_t *offsets, const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode);
void cr_embbag_backward_ref(float *dE, float *dw, const float *dout, const float *E, int64_t n_rows, int64_t d,
                            const int64_t *offsets, const int32_t *idx, const float *w, int64_t B, cr_bag_mode mode);
/* The distinct rows among idx[0 .. n), ascending, into rows (room for n); returns their count. seen (n_rows
 * bytes) must be all zero on entry and is all zero again on return, so one buffer serves every batch at O(n)
 * per call. For lazy sparse optimizer updates: update, then zero, only these rows of the gradient. */
int64_t cr_embbag_touched(int32_t *rows, uint8_t *seen, const int32_t *idx, int64_t n);

/* ---- layer norm ---------------------------------------------------------------------------------------- */

#define CR_LN_EPS 1e-5f

/* Over the last dimension of x (N, d): y = (x - mean) / sqrt(var + CR_LN_EPS) * gamma + beta, var biased
 * (PyTorch's nn.LayerNorm). mean, rstd (N) are written for the backward pass. */
void cr_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *gamma, const float *beta,
                          int64_t N, int64_t d);
/* Given dy (N, d): dx += dL/dx, dgamma (d) += sum_N dy xhat, dbeta (d) += sum_N dy (each may be NULL). */
void cr_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *gamma, int64_t N, int64_t d);

/* ---- GELU, dropout, id dropout, gradient reversal --------------------------------------------------------- */

/* GELU with the exact erf form, y = x/2 (1 + erf(x / sqrt 2)), which is PyTorch's nn.GELU() default
 * (approximate='none'); the tanh approximation is not used. In place allowed. */
void cr_gelu_forward(float *y, const float *x, int64_t n);
/* dx += dy * GELU'(x), GELU'(x) = Phi(x) + x phi(x). */
void cr_gelu_backward(float *dx, const float *dy, const float *x, int64_t n);

/* Inverted dropout: each of n values is dropped with probability p (mask 0) and the kept ones are scaled by
 * 1 / (1 - p), so the expectation is unchanged and inference uses no dropout. p in [0, 1). Draws the mask
 * with r (n uniform draws when p > 0, none when p == 0: then the mask is all 1), then applies it. In place
 * allowed. */
void cr_dropout_forward(float *y, uint8_t *mask, const float *x, int64_t n, float p, cr_rng *r);
/* Applies a given mask (n): y = mask ? x / (1 - p) : 0. */
void cr_dropout_apply(float *y, const float *x, const uint8_t *mask, int64_t n, float p);
/* dx += mask ? dy / (1 - p) : 0. */
void cr_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t n, float p);

/* Id dropout: zeroes whole rows of x (N, d) with probability p each, WITHOUT rescaling the kept ones — an id
 * embedding is absent at inference for cold items, and training without it for a share of rows teaches the
 * rest of the tower to do the same. keep (N) is drawn with r (N draws when p > 0, none when p == 0) and kept
 * for the backward pass; rows with keep 0 need not be looked up. In place allowed. */
void cr_id_dropout_forward(float *y, uint8_t *keep, const float *x, int64_t N, int64_t d, float p, cr_rng *r);
/* Applies a given keep mask (N): y[r] = keep[r] ? x[r] : 0. */
void cr_id_dropout_apply(float *y, const float *x, const uint8_t *keep, int64_t N, int64_t d);
/* dx[r] += keep[r] ? dy[r] : 0. */
void cr_id_dropout_backward(float *dx, const float *dy, const uint8_t *keep, int64_t N, int64_t d);

/* Gradient reversal (Ganin & Lempitsky 2015, DANN): forward is the identity (y = x; in place allowed, then a
 * no-op), backward multiplies by -lambda: dx += -lambda dy. */
void cr_grl_forward(float *y, const float *x, int64_t n);
void cr_grl_backward(float *dx, const float *dy, int64_t n, float lambda);

/* ---- L2 normalisation ---------------------------------------------------------------------------------- */

#define CR_L2_EPS 1e-12f

/* y (N, d) = x / max(|x|, CR_L2_EPS) per row (PyTorch's F.normalize); norm (N) = |x| is written for the
 * backward pass. In place allowed. */
void cr_l2norm_forward(float *y, float *norm, const float *x, int64_t N, int64_t d);
/* dx += (dy - y <y, dy>) / |x| per row (dy / CR_L2_EPS where |x| <= CR_L2_EPS). */
void cr_l2norm_backward(float *dx, const float *dy, const float *y, const float *norm, int64_t N, int64_t d);

/* ---- pooling over ragged sequences ----------------------------------------------------------------------- */

/* Target-domain attention pooling. h (B, L, d) right-padded with len (B) valid rows each (0 <= len <= L);
 * q (n_domains, d) one learned query per target domain; dom (B) the target domain of each row. Scores
 * s_k = <q[dom_b], h_bk> / sqrt(d) over the valid k only, a = softmax(s), out[b] = sum_k a_k h_bk (a zero row
 * when len is 0). att (B, L) receives a (0 at padding) for the backward pass. */
void cr_attnpool_forward(float *out, float *att, const float *h, const int64_t *len, const float *q, const int32_t *dom,
                         int64_t B, int64_t L, int64_t d);
/* Given dout (B, d): dh (B, L, d) += (padding rows untouched), dq (n_domains, d) += (rows of the domains
 * present; the per-row terms added in row order). Either may be NULL. */
void cr_attnpool_backward(float *dh, float *dq, const float *dout, const float *h, const int64_t *len, const float *q,
                          const int32_t *dom, const float *att, int64_t B, int64_t L, int64_t d);

/* Mean pooling: out[b] = (1 / len_b) sum_{k < len_b} h_bk (a zero row when len is 0); backward
 * dh_bk += dout[b] / len_b for the valid k. */
void cr_meanpool_forward(float *out, const float *h, const int64_t *len, int64_t B, int64_t L, int64_t d);
void cr_meanpool_backward(float *dh, const float *dout, const int64_t *len, int64_t B, int64_t L, int64_t d);

/* ---- causal transformer for short sequences ---------------------------------------------------------------- */

/* A GPT-2 style stack over a padded batch x (B, L, d) of input vectors (the item-tower vectors of a user's
 * history, oldest first):
 *   r = x + wpe[t]                         (learned positions; padding rows are set to 0)
 *   per layer: r = r + proj(causal_attn(LN1(r)));  r = r + fc2(GELU(fc(LN2(r))))     (pre-LN, FFN d -> 4d -> d)
 *   out = LNf(r)                           (padding rows written as 0)
 * Multi-head causal self-attention with n_heads dividing d: position t attends to positions s <= t that are
 * valid (s < len_b); scores scaled by 1/sqrt(d / n_heads). Because the batch is right-padded and attention is
 * causal, valid positions never see padding; a padding position sees only valid ones (its output is dropped).
 * No dropout inside the stack. Limits: L <= max_len <= CR_TFM_MAX_LEN, n_layers <= CR_TFM_MAX_LAYERS.
 *
 * Parameters are tensors of a slab, each layer's stacked along the rows (llm.c's layout; l = layer):
 *   <p>wpe (max_len, d)      <p>ln1w, <p>ln1b (n_layers, d)    <p>qkvw (n_layers 3d, d) <p>qkvb (n_layers, 3d)
 *   <p>projw (n_layers d, d) <p>projb (n_layers, d)            <p>ln2w, <p>ln2b (n_layers, d)
 *   <p>fcw (n_layers 4d, d)  <p>fcb (n_layers, 4d)             <p>fc2w (n_layers d, 4d) <p>fc2b (n_layers, d)
 *   <p>lnfw, <p>lnfb (1, d)
 * The qkv projection's output row is [q (d) | k (d) | v (d)], head h taking columns h d/H .. (h+1) d/H - 1 of
 * each part (PyTorch's split + view). */
#define CR_TFM_MAX_LAYERS 4
#define CR_TFM_MAX_LEN 64
#define CR_TFM_N_TENSORS 15

typedef struct {
    int n_layers;
    int64_t dim, n_heads, max_len;
    int ref;                    /* 1: scalar reference linear layers instead of BLAS (tests) */
    int wpe, ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fcw, fcb, fc2w, fc2b, lnfw, lnfb; /* slab indices */
} cr_tfm;

/* Checks the shape parameters: NULL if usable, else a message. */
const char *cr_tfm_check(const cr_tfm *m);
/* Appends the CR_TFM_N_TENSORS tensors to a tensor list (for cr_slab_init); returns the new count. */
int cr_tfm_tensors(const cr_tfm *m, const char *prefix, cr_tensor *t, int n);
/* Finds the tensors in a laid-out slab (CR_ERR_FORMAT if missing or misshapen). */
cr_status cr_tfm_bind(cr_tfm *m, const cr_slab *s, const char *prefix);
/* GPT-2 initialisation: weights N(0, 0.02^2), the two output projections N(0, (0.02 / sqrt(2 n_layers))^2),
 * wpe N(0, 0.01^2), biases 0, layer norms gamma 1, beta 0. */
void cr_tfm_init(const cr_tfm *m, cr_slab *s, cr_rng *r);
/* Floats of the activation buffer that forward fills and backward reads, and of backward's scratch. */
int64_t cr_tfm_act_size(const cr_tfm *m, int64_t B, int64_t L);
int64_t cr_tfm_scratch_size(const cr_tfm *m, int64_t B, int64_t L);
/* out (B, L, d) from x (B, L, d) and len (B) (0 <= len <= L <= max_len); acts (cr_tfm_act_size) keeps what the
 * backward pass needs. Threads split (sequence, head) pairs in attention; BLAS does the linear layers. */
void cr_tfm_forward(const cr_tfm *m, const cr_slab *s, float *out, float *acts, const float *x, const int64_t *len,
                    int64_t B, int64_t L);
/* Given dout (B, L, d) (padding rows ignored): parameter gradients += into g (same layout as s), dx (B, L, d)
 * += (padding rows untouched; dx may be NULL). x, len, acts as given to / filled by the forward pass. */
void cr_tfm_backward(const cr_tfm *m, const cr_slab *s, cr_slab *g, float *dx, const float *dout, const float *acts,
                     const int64_t *len, int64_t B, int64_t L, float *scratch);

/* ---- losses ------------------------------------------------------------------------------------------------ */

/* Accidental-hit masks: a (B, N) bit matrix, row b in cr_hitmask_words(N) 64-bit words, bit j of row b set =
 * logit (b, j) is masked (-inf). */
static inline int64_t cr_hitmask_words(int64_t N) { return (N + 63) / 64; }
static inline void cr_hitmask_set(uint64_t *m, int64_t N, int64_t b, int64_t j) {
    m[b * cr_hitmask_words(N) + (j >> 6)] |= (uint64_t)1 << (j & 63);
}
static inline int cr_hitmask_get(const uint64_t *m, int64_t N, int64_t b, int64_t j) {
    return (int)((m[b * cr_hitmask_words(N) + (j >> 6)] >> (j & 63)) & 1);
}
/* Zeroes the mask and sets (b, j), j != b, wherever candidate j is the same item as row b's positive
 * (cand_item[j] == cand_item[b]: an item repeated in the batch, or sampled as a negative of its own row).
 * cand_item (N), B <= N. */
void cr_hitmask_from_items(uint64_t *mask, const int32_t *cand_item, int64_t B, int64_t N);

/* Sampled softmax cross-entropy (Yi et al. 2019). U (B, d) user vectors; C (N, d) candidates, N >= B, of which
 * column b is row b's positive (in-batch) and columns B .. N-1 are extra sampled negatives. Logits
 *   z_bj = <U_b, C_j> / temperature - log_q[j]        (log-Q correction; log_q NULL: none)
 * with z_bj = -inf where hit_mask has bit (b, j) (NULL: none; the bit (b, b) is ignored: a positive is never
 * masked). Loss = mean_b (logsumexp_j z_bj - z_bb), through max subtraction. dU (B, d) and dC (N, d) (either
 * NULL) += weight dLoss. probs (B, N) is scratch (it holds the logit gradients on return). The fast version uses BLAS
 * for the two products and splits rows over threads. */
double cr_sampled_softmax(float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B, int64_t N,
                          int64_t d, float temperature, const float *log_q, const uint64_t *hit_mask, float weight);
double cr_sampled_softmax_ref(float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B, int64_t N,
                              int64_t d, float temperature, const float *log_q, const uint64_t *hit_mask, float weight);

/* Distillation through the same softmax: the loss is the cross-entropy -sum_j target_bj log p_bj against a
 * target distribution (B, N) per row (a teacher's cr_softmax_rows over the same candidates) instead of row b's
 * positive; otherwise as cr_sampled_softmax (which is the one-hot target). */
double cr_softmax_distill(float *dU, float *dC, float *probs, const float *U, const float *C, int64_t B, int64_t N, int64_t d,
                          float temperature, const float *log_q, const uint64_t *hit_mask, const float *target, float weight);
/* The distributions p (B, N) of cr_sampled_softmax's rows: softmax_j of the corrected, masked logits. */
void cr_softmax_rows(float *p, const float *U, const float *C, int64_t B, int64_t N, int64_t d, float temperature,
                     const float *log_q, const uint64_t *hit_mask);

/* BPR (Rendle et al. 2009) over B triples of vectors (B, d): loss = mean_b -log sigmoid(<u,pos> - <u,neg>),
 * computed as softplus(-x); du, dpos, dneg (each may be NULL) += weight dLoss. */
double cr_bpr_loss(float *du, float *dpos, float *dneg, const float *u, const float *pos, const float *neg, int64_t B,
                   int64_t d, float weight);

/* InfoNCE between two batches of n vectors a (n, d), b (n, d) whose rows i are the positive pairs: both are L2
 * normalised inside (cr_l2norm), z_ij = <a_i, b_j> / tau, loss = mean_i CE(z_i., i); symmetric: the mean of
 * that and mean_j CE(z_.j, j) (CLIP). da, db (either NULL) += weight dLoss, through the normalisation.
 * scratch: cr_infonce_scratch_size(n, d) floats. The fast version uses BLAS for the products. */
int64_t cr_infonce_scratch_size(int64_t n, int64_t d);
double cr_infonce(float *da, float *db, float *scratch, const float *a, const float *b, int64_t n, int64_t d, float tau,
                  int symmetric, float weight);
double cr_infonce_ref(float *da, float *db, float *scratch, const float *a, const float *b, int64_t n, int64_t d,
                      float tau, int symmetric, float weight);

/* Softmax cross-entropy of logits (B, K) against labels (B) in [0, K): mean_b (logsumexp_k z_bk - z_b,label);
 * dlogits (may be NULL) += weight dLoss. For the domain classifier of adversarial alignment. */
double cr_softmax_xent(float *dlogits, const float *logits, const int32_t *labels, int64_t B, int64_t K, float weight);

#endif

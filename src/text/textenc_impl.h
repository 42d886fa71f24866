/* textenc_impl.h — private to src/text and src/train: the text encoder's struct (crossrec/textenc.h), its
 * batched forward pass and training loss with their backward passes (src/text/textenc.c), shared with the
 * pretraining loop (src/train/pretrain.c) and the gradient test.
 *
 * Parameters live in one slab: "textenc.emb" (n_buckets, dim), the residual MLP "textenc.mlp.w0/b0/w1/b1", and,
 * for an encoder trained with a teacher, the distillation map "textenc.distill.w" (teacher_dim, dim). */
#ifndef CROSSREC_TEXTENC_IMPL_H
#define CROSSREC_TEXTENC_IMPL_H

#include "core/nn_tower.h"
#include "crossrec/textenc.h"

struct cr_textenc {
    int64_t dim, per_item, teacher_dim;
    cr_text_hashing hashing;
    cr_text_stats stats;        /* df (n_buckets), n_docs, n_tokens of the training catalogue */
    cr_slab params;
    int t_emb, t_distill;       /* slab indices; t_distill -1 without a teacher */
    int64_t dense_off;          /* slab offset of the first dense tensor (the MLP): [dense_off, size) */
    cr_mlp mlp;
    int threads;
    cr_textenc_train_params trained;    /* how it was trained (informational, saved as metadata) */
    int64_t n_init;                     /* rows of the table set from word vectors */
};

/* A zeroed encoder: slab laid out, stats of n_buckets zero buckets. teacher_dim 0: no distillation map.
 * CR_ERR_ARG for a bad shape or hashing, CR_ERR_NOMEM. */
cr_status cr_textenc_new(cr_textenc **e, const cr_text_hashing *h, int64_t dim, int64_t per_item, int64_t teacher_dim);

/* Weighted bags in CSR form: bag r is entries [off[r], off[r+1]) of (idx, w). */
typedef struct {
    int64_t n;
    int64_t *off;               /* (n + 1) */
    int32_t *idx;               /* bucket */
    float *w;                   /* weight */
} cr_textenc_bags;
void cr_textenc_bags_free(cr_textenc_bags *b);

/* The encoder's bag of a hashed text (crossrec/textenc.h): TF-IDF weights against e->stats, the per_item
 * heaviest kept in descending weight (ties: lower bucket first), scaled to unit L2 norm. idx, w need room for
 * bag->n entries, tmp bag->n floats. Returns the entries written. */
int64_t cr_textenc_weigh(const cr_textenc *e, const cr_text_bag *bag, float *tmp, int32_t *idx, float *w);

/* Fills e->stats from n items (document = title and text joined by a space) and builds each item's two views'
 * bags: title[i] and text[i] (an empty bag where the field has no token). Errors: CR_ERR_LIMIT for a text over
 * CR_TEXT_MAX_LEN (message names the item's index), CR_ERR_NOMEM; on error nothing is left allocated. */
cr_status cr_textenc_prepare(cr_textenc *e, const char *const *titles, const char *const *texts, int64_t n,
                             cr_textenc_bags *title, cr_textenc_bags *text);

/* One training batch of n items: bags 0..n-1 are the items' first views, n..2n-1 their second views. */
typedef struct {
    int64_t n;
    const int64_t *off;         /* (2n + 1) */
    const int32_t *idx;
    const float *w;
    const float *teacher;       /* (n, e->teacher_dim) unit rows, or NULL */
} cr_textenc_batch;

/* Scratch of the forward and backward passes for up to cap bags. */
typedef struct {
    int64_t cap, dim, tdim;
    float *x0, *pre, *acts, *gpre, *g, *norm;           /* forward: (cap, dim) but pre/acts (mlp act size), norm (cap) */
    float *dg, *dgpre, *dx0, *dxm, *mlp_scratch;        /* backward: (cap, dim) each, scratch (2 cap dim) */
    float *nce_scratch;                                 /* cr_infonce_scratch_size(cap / 2, dim) */
    float *y, *yn, *ynorm, *dyn, *dy;                   /* distillation: (cap, tdim) but ynorm (cap) */
    float *buf;
} cr_textenc_ws;
cr_status cr_textenc_ws_init(cr_textenc_ws *ws, const cr_textenc *e, int64_t cap);
void cr_textenc_ws_free(cr_textenc_ws *ws);

/* g (n, dim) in ws->g for n bags (n <= ws->cap), filling every buffer the backward pass reads. */
void cr_textenc_forward(const cr_textenc *e, cr_textenc_ws *ws, const int64_t *off, const int32_t *idx, const float *w,
                        int64_t n);

/* The training loss of a batch and its gradient, ADDED into grad (a slab of the parameters' layout; of the
 * table only the rows of the batch's buckets are touched):
 *   L = InfoNCE(g[0..n), g[n..2n); tau, symmetric) + distill * mean_r (1 - <normalize(Wd g_r), t_(r mod n)>)
 * the second term over all 2n rows, only with b->teacher and distill > 0. *nce and *dist receive the two
 * parts (unweighted). */
double cr_textenc_loss(const cr_textenc *e, cr_textenc_ws *ws, const cr_textenc_batch *b, float tau, float distill,
                       cr_slab *grad, double *nce, double *dist);

#endif

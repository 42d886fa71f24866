/* tower_impl.h — private to src/models and src/train: crossrec's transfer model `tower` (DESIGN §5), its
 * struct, the item tower and the user tower's forward passes (src/models/tower.c), shared by scoring and by
 * the fitting routine (src/train/fit_tower.c), which adds the backward passes.
 *
 *   item tower   x0(i) = [known(i)] id[i] + sum_k w_ik text[b_ik] + dom[domain(i)] (+ W_v v(i))
 *                g(i)  = normalize(x0 + MLP(x0))            MLP: dim -> dim (relu) -> dim
 *   user tower   h     = pool(g(j) for the user's L most recent history items j, any domain, oldest first)
 *                         mean, attention with a learned query per target domain, or a causal transformer
 *                         (the output at the last item)   (+ user[u] for a user with training events, --user-id)
 *                f(H,T) = normalize(h + W_T h + b_T)        one head per target domain T
 *   score(u, i) = <f(H_u, T), g(i)>                          (cosine; training divides by a temperature)
 *
 * known(i): the item had training events, so its id embedding was trained; for other items (new, cold) the
 * item vector rides on text and domain alone. (b_ik, w_ik): the item's hashed text buckets (text.h) with the
 * highest TF-IDF weights, at most text_per_item, renormalised to unit L2 norm. v(i): optional dense item vectors
 * (--item-vectors: MiniLM sentence vectors, a pretrained text encoder's, images'...), kept in the model file so
 * that the item vectors can be recomputed, projected by the trained W_v (dim, vec_dim). */
#ifndef CROSSREC_TOWER_IMPL_H
#define CROSSREC_TOWER_IMPL_H

#include "model_impl.h"
#include "core/nn_tower.h"
#include "crossrec/text.h"

enum { CR_TOWER_POOL_MEAN = 0, CR_TOWER_POOL_ATTENTION = 1, CR_TOWER_POOL_TRANSFORMER = 2 };
const char *cr_tower_pool_name(int pool);
int cr_tower_pool_from_name(const char *name);      /* -1: unknown */

#define CR_TOWER_MAX_DIM 1024
#define CR_TOWER_MAX_HIST CR_TFM_MAX_LEN
#define CR_TOWER_MAX_VEC_DIM 4096

typedef struct {
    cr_model base;
    int64_t dim, hist_len;
    int pool;
    float temperature;
    cr_slab params;             /* "tower.id" (n_items, dim), "tower.text" (n_buckets, dim), then the dense
                                   tensors: "tower.dom" (n_domains, dim), the item MLP "tower.item.w0/b0/w1/b1",
                                   "tower.query" (n_domains, dim), "tower.head.w" (n_domains dim, dim),
                                   "tower.head.b" (n_domains, dim), "tower.disc.w" (n_domains, dim),
                                   "tower.disc.b" (1, n_domains), and with a transformer its tensors "tower.tfm.*" */
    int t_id, t_text, t_user, t_dom, t_vec, t_query, t_head_w, t_head_b, t_disc_w, t_disc_b;  /* t_user, t_vec: -1 */
    int64_t dense_off;          /* slab offset of the first dense tensor: [dense_off, size) is updated densely */
    cr_mlp item_mlp;
    cr_tfm tfm;
    cr_text_hashing hashing;
    int64_t *text_ptr;          /* (n_items + 1) the items' text bags */
    int32_t *text_col;          /* (text_ptr[n_items]) bucket */
    float *text_val;            /* (text_ptr[n_items]) weight */
    int32_t *item_domain;       /* (n_items) */
    uint8_t *item_known;        /* (n_items) */
    int64_t vec_dim;            /* columns of item_vec (0: none) */
    float *item_vec;            /* (n_items, vec_dim) dense item vectors v(i) */
    uint8_t *user_known;        /* (n_users) the user had training events (with --user-id; else NULL) */
    float *items;               /* (n_items, dim) g(i) of every item, for scoring (cr_tower_refresh_items) */
} cr_tower_model;

/* A model with its parameter slab laid out (zeroed) and its per-item arrays allocated (zeroed, text_col/val
 * of nnz entries, item_vec of vec_dim columns, user_known and the "tower.user" tensor when user_id). The
 * tensors updated row by row (id, text, user) come first, then the dense ones. CR_ERR_ARG for a bad shape,
 * CR_ERR_NOMEM. */
cr_status cr_tower_new(cr_tower_model **m, int64_t n_users, int64_t n_items, int64_t n_domains, int64_t dim, int pool,
                       int64_t hist_len, int64_t n_buckets, int64_t nnz, int64_t vec_dim, int user_id);

/* Scratch of the item tower for up to cap items. */
typedef struct {
    int64_t cap, dim;
    float *x0, *text;           /* (cap, dim) the tower's input, and its text part alone */
    float *vec, *vproj;         /* (cap, vec_dim) the items' dense vectors, (cap, dim) their projection */
    float *pre, *acts;          /* (cr_mlp_act_size(item_mlp, cap)) */
    float *gpre, *g, *norm;     /* (cap, dim), (cap, dim), (cap) */
    int64_t *bag_off;           /* (cap + 1) the items' text bags, gathered for the embedding bag */
    int32_t *bag_idx;           /* (cap_bag) buckets */
    float *bag_w;               /* (cap_bag) weights */
    int64_t cap_bag;            /* cap times the longest bag of the model's items */
    uint8_t *use_id;            /* (cap) */
    float *buf;
} cr_tower_item_ws;
cr_status cr_tower_item_ws_init(cr_tower_item_ws *ws, const cr_tower_model *m, int64_t cap);
void cr_tower_item_ws_free(cr_tower_item_ws *ws);

/* g for items[0..n) (n <= ws->cap) into ws->g; use_id[s] says whether item s's id embedding enters (training
 * drops some; NULL: every known item's). Fills every ws buffer the backward pass reads, the gathered text bags
 * (bag_off, bag_idx, bag_w: the embedding bag's backward input) included. */
void cr_tower_item_forward(const cr_tower_model *m, cr_tower_item_ws *ws, const int32_t *items, int64_t n,
                           const uint8_t *use_id);

/* Scratch of the user tower for up to cap rows. */
typedef struct {
    int64_t cap, dim, L;
    float *seq;                 /* (cap, L, dim) history vectors, right-padded */
    int64_t *len;               /* (cap) */
    int32_t *dom;               /* (cap) target domain of each row */
    int32_t *user;              /* (cap) dataset user of each row whose user-id embedding enters, or -1 */
    float *tfm_out, *tfm_acts;  /* transformer: (cap, L, dim), cr_tfm_act_size */
    float *att;                 /* attention: (cap, L) */
    float *pooled, *z, *f, *norm;   /* (cap, dim) x3, (cap) */
    float *buf;
} cr_tower_user_ws;
cr_status cr_tower_user_ws_init(cr_tower_user_ws *ws, const cr_tower_model *m, int64_t cap);
void cr_tower_user_ws_free(cr_tower_user_ws *ws);

/* f for B rows whose seq, len, dom and user are filled in ws (B <= cap): pooled (user embedding included), z, f,
 * norm. */
void cr_tower_user_forward(const cr_tower_model *m, cr_tower_user_ws *ws, int64_t B);

/* Recomputes m->items (every item's g, id embeddings of known items included) from the parameters. */
cr_status cr_tower_refresh_items(cr_tower_model *m);

#endif

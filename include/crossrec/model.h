/* crossrec/model.h — the model interface every recommender implements (DESIGN §5), the registry of model
 * types, and .crm model files.
 *
 * A model is fitted on training interactions, then scores (user, history) rows against candidate items.
 * Users are represented by their index in the dataset (models that learned per-user parameters use it) and
 * by their training history in any domain (models that work from history use it), so a history-based model
 * scores a user it never saw in training. A model that cannot represent a row (a target-only MF for a cold
 * user; item-kNN for a history none of whose items has a neighbour: an empty one, or one entirely outside
 * the domain a target-only item-kNN was trained on) says so through can[r] = 0; evaluation then counts that
 * user's positives as misses and reports how many users were affected — no other model is substituted. */
#ifndef CROSSREC_MODEL_H
#define CROSSREC_MODEL_H

#include "crossrec/data.h"
#include "crossrec/io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n_rows;
    const int32_t *users;       /* (n_rows) dataset user index of each row, or -1 for a user given by history only;
                                   NULL: every row is -1 */
    const int64_t *hist_ptr;    /* (n_rows + 1) row r's history is hist_items[hist_ptr[r] .. hist_ptr[r+1]);
                                   NULL: every history is empty */
    const int32_t *hist_items;  /* history items of each row (training events, any domain, time order) */
    int32_t domain;             /* target domain, or -1 */
    int64_t n_cand;
    const int32_t *cand;        /* (n_cand) candidate item indices */
} cr_score_request;

typedef struct cr_model cr_model;

typedef struct {
    const char *name;           /* "pop" */
    /* Fills scores (n_rows x n_cand, row-major) and can (n_rows). Must be safe to call from several threads
     * at once on the same model. Higher score = better. */
    cr_status (*score)(const cr_model *m, const cr_score_request *req, float *scores, uint8_t *can);
    /* Adds the model's own metadata and arrays; the generic part (model name, counts, dataset checksum) is
     * written by cr_model_save. Arrays must stay valid until the commit inside cr_model_save returns. */
    cr_status (*save)(const cr_model *m, cr_filew *w);
    void (*free)(cr_model *m);
    /* Optional, for models whose score is a dot product, score(r, i) = <u_r, y_i> (bpr, als, cmf, emcdr,
     * ptupcdr, tower); NULL for the others. item_vectors returns the (n_items, dim) matrix y, owned by the model,
     * and sets *dim. user_vectors fills vecs (n_rows x dim, row-major) with u_r and can (n_rows) as score would
     * (candidates unused); rows with can[r] = 0 have unspecified vectors. Same thread-safety as score. */
    const float *(*item_vectors)(const cr_model *m, int64_t *dim);
    cr_status (*user_vectors)(const cr_model *m, const cr_score_request *req, float *vecs, uint8_t *can);
    /* Optional, for models that keep item-item neighbour lists (itemknn): sets *items and *sims to item i's
     * list, best first, pointers owned by the model, and returns its length. */
    int64_t (*neighbors)(const cr_model *m, int32_t i, const int32_t **items, const float **sims);
} cr_model_ops;

/* The common part of every model; a model type embeds it first in its own struct. */
struct cr_model {
    const cr_model_ops *ops;
    int64_t n_users, n_items, n_domains;    /* of the dataset it was trained on */
    uint32_t dataset_crc;                   /* CRC32C of that dataset's .crd file (0 if unknown) */
    char *dataset_path;                     /* absolute path of that .crd when trained, owned; NULL if unknown */
};

/* Training settings for all model types; each type reads the fields it needs. */
typedef struct {
    const char *model;          /* a name of cr_model_names() */
    int32_t domain;             /* restrict training to one domain (target-only models), -1 = all domains */
    int pop_by_domain;          /* pop: score = count / events of the item's domain, so domains compete fairly */
    int64_t knn_neighbors;      /* itemknn: neighbours kept per item in each domain (default 100) */
    double knn_shrink;          /* itemknn: cosine shrinkage, sim = co / (sqrt(n_i n_j) + shrink) (default 0) */
    int threads;                /* 0 = OpenMP default */
    uint64_t seed;
    /* matrix factorisation: bpr, als */
    int64_t dim;                /* factors per user and item (default 64) */
    int64_t epochs;             /* at most this many epochs (default 20) */
    int patience;               /* stop after this many epochs without better validation NDCG@10 (default 3; 0 off) */
    const char *optimizer;      /* "sgd", "adagrad" or "adam"; NULL: the model's default (bpr, cmf adagrad; tower adam) */
    double lr;                  /* learning rate; 0: the model's default (bpr, cmf 0.05; tower 0.002) */
    double reg;                 /* L2 regularisation; negative: the model's default (bpr 1e-4, als 0.01) */
    double neg_alpha;           /* bpr: negatives drawn with probability ~ (training count + 1)^neg_alpha (0: uniform) */
    int64_t inbatch;            /* bpr/cmf: > 0: negatives are other samples' positives in batches of this many
                                   (in-batch sampling, popularity-weighted without a table); 0: the sampler above */
    double als_alpha;           /* als: confidence 1 + als_alpha * value (default 40) */
    int64_t cg_steps;           /* als: conjugate-gradient steps per least-squares solve (default 3) */
    double source_weight;       /* cmf: loss weight of events outside the target domain (default 0.5) */
    const char *log_path;       /* one TSV row per epoch */
    int quiet;                  /* no settings table or epoch rows */
    cr_progress progress;       /* epochs done of the iterative models' epochs (default: none) */
    int hogwild;                /* bpr/cmf: `threads` workers update the parameters without locks (faster, results
                                   then depend on timing); default off: one worker, deterministic */
    /* tower (DESIGN §5): item tower from id, text and domain; user tower pooling the history's item vectors */
    const char *pool;           /* "mean", "attention" (a learned query per target domain) or "transformer" */
    int64_t hist_len;           /* most recent history items a user is represented by (default 50) */
    int64_t batch;              /* examples per batch; in-batch negatives (default 256) */
    int64_t negatives;          /* extra negatives per batch, drawn uniformly from the target domain's items with
                                   training events (softmax loss; default 1024; 0: in-batch negatives only) */
    double cold_sim;            /* share of examples whose history loses its target-domain items (default 0.5) */
    double id_dropout;          /* probability that an item's id embedding is left out in training (default 0.5) */
    double hist_dropout;        /* probability that a history item is left out of a training example (default 0.8) */
    double temperature;         /* softmax temperature over cosine scores (default 0.05) */
    int64_t text_buckets;       /* hashed text features (default 2^16; 0: no text) */
    int64_t text_per_item;      /* an item keeps its this many highest-weighted text buckets (default 24) */
    double dann;                /* weight of the adversarial domain classifier on item vectors (0: off) */
    double align;               /* weight of the InfoNCE between an item's text and id vectors (0: off) */
    const char *item_vectors;   /* tower: dense item vectors added to the item tower through a trained projection:
                                   a .npy (n_items rows, the dataset's item order) or an embed method ("minilm",
                                   "hash-tfidf", "wordvec:FILE") computed at the start; NULL: none */
    int user_id;                /* tower: a user embedding for users with training events, added to the pooled history */
    const char *loss;           /* tower: "softmax" (sampled softmax over in-batch negatives, default) or "bpr" */
    const char *init;           /* tower: start from this tower model's parameters (NULL: a fresh start) */
    const char *finetune;       /* tower with init: "all" (default), "head" (only the per-domain heads and
                                   queries train; the towers stay frozen) or "none" (no training) */
    const char *distill;        /* tower: a teacher tower model of the same dataset; the run learns its softmax
                                   over each batch's candidates (NULL: off) */
    double distill_weight;      /* share of the teacher's soft targets in the loss, the rest the positives (0.5) */
    const struct cr_split *valid;   /* split whose validation users drive early stopping; NULL: none */
    /* training state (.crt, train.h): the iterative models (bpr, als, cmf, emcdr, ptupcdr) */
    const char *checkpoint;     /* write the training state here after every epoch (NULL: none) */
    const char *resume;         /* continue the run whose state this file holds (NULL: start afresh) */
    int64_t pause_after;        /* end this run after this many epochs (0: no limit), to be resumed later */
} cr_train_params;

cr_train_params cr_train_default_params(void);

/* Fits model p->model on `train` (a view of d: same users and items, e.g. cr_split_train()); *m is owned by
 * the caller (cr_model_free) and does not refer to d or train afterwards. Records d's counts,
 * cr_dataset_file_crc(d) and, for a dataset loaded from a file, that file's absolute path. Errors: CR_ERR_ARG (unknown model type, naming the known ones; domain out of range;
 * knn_neighbors < 1; knn_shrink negative or not finite; threads < 0; train not shaped like d), CR_ERR_NOMEM.
 * Results do not depend on the thread count. */
cr_status cr_model_train(cr_model **m, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
/* Names of the registered model types, NULL-terminated, in registry order ("pop", "itemknn"). */
const char *const *cr_model_names(void);

/* Checks the request (every user, history item and candidate index in range, history offsets
 * non-decreasing: CR_ERR_ARG naming the first bad one), then fills scores (n_rows x n_cand, row-major) and
 * can (n_rows). Rows with can[r] = 0 have unspecified scores (0 for pop and itemknn). CR_ERR_NOMEM when the
 * per-call scratch cannot be allocated. Thread-safe: any number of threads may score one model at once. */
cr_status cr_model_score(const cr_model *m, const cr_score_request *req, float *scores, uint8_t *can);
const char *cr_model_name(const cr_model *m);

/* The vector form of a dot-product model (cr_model_ops.item_vectors): the (n_items, *dim) item matrix, borrowed
 * from the model, or NULL with *dim = 0 for a type without any (pop, itemknn). bpr, als, cmf: the item factors;
 * emcdr, ptupcdr: the target item factors (zero rows outside the target domain); tower: g(i), the item tower's
 * output. */
const float *cr_model_item_vectors(const cr_model *m, int64_t *dim);
/* User vectors of the request's rows (candidates are not used): vecs (n_rows x dim), can (n_rows). For every
 * row with can[r] = 1, cr_model_score's score of item i is <vecs[r], item i's vector> (summed in float, in
 * dimension order). Checks the request as cr_model_score does; CR_ERR_ARG when the model has no vectors. */
cr_status cr_model_user_vectors(const cr_model *m, const cr_score_request *req, float *vecs, uint8_t *can);
/* Item i's neighbour list (cr_model_ops.neighbors) into *items and *sims, best first; returns its length, or -1
 * when the model keeps no neighbour lists (then the pointers are NULL). i must be in 0..n_items-1. */
int64_t cr_model_item_neighbors(const cr_model *m, int32_t i, const int32_t **items, const float **sims);
/* Writes a .crm atomically (io.h), the dataset's path included. Errors: CR_ERR_IO, CR_ERR_NOMEM. */
cr_status cr_model_save(const cr_model *m, const char *path);
/* Maps a .crm and validates it completely (the container, the generic counts, and every array of the model
 * type: sizes, index ranges, offsets, finite values) before returning a model that may point into the
 * mapping. Errors: CR_ERR_IO, CR_ERR_VERSION, CR_ERR_FORMAT naming the path and the bad value ("m.crm: model
 * type 'x' is not known to this crossrec (known: pop, itemknn)"), CR_ERR_NOMEM. *m is NULL on failure. */
cr_status cr_model_load(cr_model **m, const char *path);
void cr_model_free(cr_model *m);

#define CR_CRM_VERSION 1

#ifdef __cplusplus
}
#endif
#endif

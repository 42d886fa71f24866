/* crossrec/textenc.h — crossrec's own text encoder, pretrained on a catalogue's item text alone (`crossrec
 * pretrain`, DESIGN §5 "text pretraining"; docs/TEXT.md §7 is the specification).
 *
 * The encoder maps any text to a unit vector of `dim` floats:
 *   bag     the text's hashed buckets (text.h: words, character n-grams, CJK characters and bigrams) weighed by
 *           TF-IDF against the document frequencies of the catalogue it was trained on, scaled to unit L2 norm;
 *           only the per_item heaviest buckets are kept (ties: the lower bucket) and scaled to unit norm again
 *   x0      = sum_k w_k E[b_k]                         embedding bag, E (n_buckets, dim)
 *   g       = normalize(x0 + W1 relu(W0 x0 + b0) + b1) residual MLP dim -> dim -> dim
 * A text without any token gets a zero vector. The bag and the layers are those of the `tower` model's item
 * text part (src/models/tower_impl.h: 2^16 buckets, dim 64, the same residual MLP; the tower keeps the 24
 * heaviest buckets of a text, the encoder all of them by default, which ranks neighbours better), so a tower can
 * start from a pretrained encoder's weights (cr_textenc_get_weights).
 *
 * Training (cr_textenc_train): title <-> attributes contrastive. Each item gives two views of itself: its title
 * and its other text (the `text` column: attributes, category path, brand, description). Both go through the
 * same encoder; a batch's items are one another's negatives (symmetric InfoNCE over cosine / temperature).
 * An item with only one of the two fields gives two views of that field, each dropping every bucket with
 * probability view_dropout. Optional: the table E starts from word vectors (cr_wordvec_init_buckets), and a
 * distillation loss pulls both views towards a teacher vector of the item (MiniLM), through a linear map
 * dim -> teacher_dim learned alongside (kept in the file, not used to encode).
 *
 * Thread-safety: a loaded or trained encoder is read-only; any number of threads may encode with it at once.
 * Encoding gives the same bits at any thread count; training gives the same bits for a seed at one thread. */
#ifndef CROSSREC_TEXTENC_H
#define CROSSREC_TEXTENC_H

#include "crossrec/text.h"
#include "crossrec/wordvec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CR_TEXTENC_CRM_VERSION 1        /* version of the .crm holding an encoder */
#define CR_TEXTENC_MAX_DIM 1024
#define CR_TEXTENC_MAX_TEACHER_DIM 65536

typedef struct cr_textenc cr_textenc;

/* ---- using an encoder ------------------------------------------------------------------------------- */

/* Loads an encoder written by cr_textenc_save. Errors: those of cr_file_open (CR_ERR_IO for a missing file,
 * CR_ERR_FORMAT for a damaged one, CR_ERR_VERSION for a newer one); CR_ERR_FORMAT naming the file and the key
 * or array for a crossrec file of another model type, a bad hashing, a shape or count out of range, a document
 * frequency above the document count, a weight that is not finite; CR_ERR_NOMEM. */
cr_status cr_textenc_load(cr_textenc **e, const char *path);
/* Writes the encoder as a crossrec file of kind "CRM" (metadata model = "text-encoder"), atomically.
 * docs/TEXT.md §7 lists its keys and arrays. Errors of cr_filew. */
cr_status cr_textenc_save(const cr_textenc *e, const char *path);
void cr_textenc_free(cr_textenc *e);

int64_t cr_textenc_dim(const cr_textenc *e);
const cr_text_hashing *cr_textenc_hashing(const cr_textenc *e);
/* Threads that encode (0, the default: OpenMP's default). The result does not depend on it. */
void cr_textenc_set_threads(cr_textenc *e, int threads);

/* out (n, dim): the vectors of n NUL-terminated texts. Errors: CR_ERR_LIMIT for a text over CR_TEXT_MAX_LEN
 * (message names its index), CR_ERR_NOMEM. */
cr_status cr_textenc_encode(const cr_textenc *e, const char *const *texts, int64_t n, float *out);
/* out (n_items, dim): the vectors of a dataset's items, in its item order; fields: CR_TEXT_FIELD_TITLE and/or
 * CR_TEXT_FIELD_TEXT (both: joined by a space). Errors as cr_textenc_encode, CR_ERR_ARG for bad fields. */
cr_status cr_textenc_encode_items(const cr_textenc *e, const cr_dataset *d, int fields, float *out);

/* The weights, to start another model from them (borrowed; valid until cr_textenc_free). The `tower` model's
 * "tower.text" takes emb, "tower.item.w0/b0/w1/b1" take the MLP. */
typedef struct {
    int64_t dim, n_buckets;
    int64_t per_item;           /* heaviest buckets kept per text (0: all) */
    const float *emb;           /* (n_buckets, dim) */
    const float *w0, *b0;       /* (dim, dim), (dim) first layer, then relu */
    const float *w1, *b1;       /* (dim, dim), (dim) second layer; its output is added to x0 */
    const int32_t *df;          /* (n_buckets) document frequencies of the training catalogue */
    int64_t n_docs;
} cr_textenc_weights;
void cr_textenc_get_weights(const cr_textenc *e, cr_textenc_weights *w);

/* ---- training --------------------------------------------------------------------------------------- */

typedef struct {
    int epoch;                  /* 1-based */
    double loss;                /* mean batch loss: InfoNCE + distill * distillation */
    double infonce, distill;    /* the two parts (distill 0 without a teacher) */
    double valid_r1;            /* held-out items: share whose title finds its own text first among the held-out
                                   items' texts (cosine); NaN without held-out items */
    double seconds;             /* this epoch, validation included */
} cr_textenc_epoch;

typedef struct {
    int64_t dim;                /* 1..CR_TEXTENC_MAX_DIM (64) */
    cr_text_hashing hashing;    /* the default hashing with 2^16 buckets */
    int64_t per_item;           /* heaviest buckets kept per text, 0: all (0; the tower keeps 24) */
    int epochs;                 /* 1..100000 (5; more overfit the Amazon catalogue) */
    int64_t batch;              /* items per batch, 2..65536 (256) */
    double lr;                  /* Adam's learning rate (0.002) */
    double temperature;         /* InfoNCE's, > 0 (0.05) */
    double view_dropout;        /* one-field items: each bucket of a view dropped with this probability, in
                                   [0, 1) (0.3) */
    int64_t valid;              /* items held out of training for valid_r1, evenly spaced (1000; 0: none) */
    const cr_wordvec *init;     /* word vectors to start E from (cr_wordvec_init_buckets; their dim must be dim;
                                   seeded rows are scaled to the random rows' mean norm), or NULL */
    const float *teacher;       /* (n, teacher_dim) unit teacher vectors, one per text / item, or NULL */
    int64_t teacher_dim;
    double distill;             /* weight of the distillation loss, >= 0 (5; 1 ranked neighbours worse) */
    int threads;                /* OpenMP threads, 0: OpenMP's default (0) */
    uint64_t seed;              /* initial weights, batch order, view dropout (42) */
    void (*on_epoch)(const cr_textenc_epoch *e, void *user);               /* after each epoch (may be NULL) */
    void (*on_batch)(int epoch, int64_t done, int64_t total, void *user);  /* after each batch (may be NULL) */
    void *user;
} cr_textenc_train_params;

cr_textenc_train_params cr_textenc_default_train_params(void);
/* NULL when p is usable, else a constant message naming the first bad field. */
const char *cr_textenc_check_train_params(const cr_textenc_train_params *p);

typedef struct {
    int64_t n_pairs;            /* trained items with both a title and a text */
    int64_t n_single;           /* trained items with one of them (two dropout views) */
    int64_t n_empty;            /* items without any token: skipped */
    int64_t n_valid;            /* held out */
    int64_t n_init;             /* rows of E set from word vectors */
    int64_t steps;              /* optimizer steps */
    double loss, valid_r1;      /* of the last epoch */
    double seconds;             /* the whole call */
} cr_textenc_train_report;

/* Trains an encoder on n items given by their title and text (NUL-terminated; "" for none): document
 * frequencies over every item's title and text joined by a space, then `epochs` passes of contrastive training
 * (above). The seed's named streams "textenc.init", "textenc.order.<epoch>" and "textenc.views.<epoch>" drive
 * all randomness. Errors: CR_ERR_ARG (message from cr_textenc_check_train_params;
 * word vectors of another dim; fewer than 2 items with tokens to train on), CR_ERR_LIMIT for a text over
 * CR_TEXT_MAX_LEN, CR_ERR_NOMEM. r may be NULL. */
cr_status cr_textenc_train_texts(cr_textenc **e, const char *const *titles, const char *const *texts, int64_t n,
                                 const cr_textenc_train_params *p, cr_textenc_train_report *r);
/* The same over a dataset's items (their title and text; teacher rows in item order). */
cr_status cr_textenc_train(cr_textenc **e, const cr_dataset *d, const cr_textenc_train_params *p,
                           cr_textenc_train_report *r);

#ifdef __cplusplus
}
#endif
#endif

/* crossrec/embed.h — dense item vectors from item text, one row per item in the dataset's item order, by one
 * of the text representations of the library (DESIGN §6; docs/TEXT.md "Item vectors"):
 *
 *   hash-tfidf   the TF-IDF item x bucket matrix (cr_text_item_matrix, default hashing and weights), projected
 *                to dim columns by a fixed sparse random sign matrix (sparse Johnson-Lindenstrauss: every bucket
 *                adds +-w to CR_EMBED_JL_NNZ columns given by a 64-bit hash of (seed, bucket); src/text/embed.c
 *                has the exact rule), then each row L2-normalised. When n_buckets <= dim the matrix is densified directly instead (column b = bucket
 *                b, the rest zero).
 *   minilm       all-MiniLM-L6-v2 (cr_bert_load of `path`, default models/minilm.crm; cr_bert_encode), 384-d.
 *   wordvec      word vectors from `path` (cr_wordvec_load; cr_wordvec_item_matrix, TF-IDF pooling), their dim.
 *   pretrained   crossrec's own text encoder from `path` (cr_textenc_load, written by `crossrec pretrain`;
 *                cr_textenc_encode_items), its dim.
 *
 * Items without text get a zero row (hash-tfidf, wordvec, pretrained) or the encoding of the empty text (minilm).
 * Results do not depend on the thread count. Thread-safety: no shared state. */
#ifndef CROSSREC_EMBED_H
#define CROSSREC_EMBED_H

#include "crossrec/data.h"
#include "crossrec/text.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CR_EMBED_JL_NNZ 4               /* non-zeros per bucket of the hash-tfidf projection */
#define CR_EMBED_MAX_DIM 65536          /* columns are 16-bit fractions of dim */
#define CR_EMBED_DEFAULT_MINILM "models/minilm.crm"

typedef enum { CR_EMBED_HASH_TFIDF = 1, CR_EMBED_MINILM, CR_EMBED_WORDVEC, CR_EMBED_PRETRAINED } cr_embed_method;

typedef struct {
    cr_embed_method method;     /* CR_EMBED_HASH_TFIDF */
    const char *path;           /* minilm: the model (NULL: CR_EMBED_DEFAULT_MINILM); wordvec: the vectors file;
                                   pretrained: the encoder */
    int fields;                 /* CR_TEXT_FIELD_TITLE and/or CR_TEXT_FIELD_TEXT (CR_TEXT_FIELD_TITLE) */
    int64_t dim;                /* hash-tfidf output columns, 1..CR_EMBED_MAX_DIM (256); others: their own */
    int threads;                /* 0: OpenMP's default */
    uint64_t seed;              /* hash-tfidf projection (42) */
    int64_t batch;              /* minilm: texts per cr_bert_encode call (1024) */
    cr_progress progress;       /* items done of n_items: minilm after each batch, the others at the end */
} cr_embed_params;

cr_embed_params cr_embed_default_params(void);
/* Sets p->method (and p->path) from "hash-tfidf", "minilm", "wordvec:FILE" or "pretrained:FILE"; p->path points
 * into spec.
 * CR_ERR_ARG naming the method, with a hint listing the methods. */
cr_status cr_embed_parse_method(const char *spec, cr_embed_params *p);
const char *cr_embed_method_name(cr_embed_method m);

/* Computes the item vectors of d: *out (n_items, *dim), row-major, allocated with cr_malloc (caller cr_free()s).
 * Errors: CR_ERR_ARG for bad params; those of cr_bert_load (a missing model: CR_ERR_IO with the hint to run
 * `make models`), cr_wordvec_load, cr_textenc_load, cr_text_item_matrix, cr_bert_encode; CR_ERR_NOMEM. *out NULL on
 * error. */
cr_status cr_embed_items(const cr_dataset *d, const cr_embed_params *p, float **out, int64_t *dim);

/* The hash-tfidf projection of a CSR matrix m (n_rows, n_cols) to out (n_rows, dim), rows L2-normalised (a zero
 * row stays zero). Same definition as above. CR_ERR_ARG for dim out of range; CR_ERR_NOMEM. */
cr_status cr_embed_project(const cr_text_csr *m, int64_t dim, uint64_t seed, int threads, float *out);

#ifdef __cplusplus
}
#endif
#endif

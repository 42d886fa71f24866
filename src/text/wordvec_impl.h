/* wordvec_impl.h — the private side of word vectors: the cr_wordvec struct shared by wordvec.c (loading,
 * lookups, item vectors, export) and sgns.c (training, .crm save), and the SGNS step that tests check.
 *
 * Invariants of a finished cr_wordvec:
 *  - words.n == n; row r's word is cr_strpool_get(&words, r); map finds every word at its row, and the words
 *    are distinct;
 *  - vec holds n * dim finite floats (trained vectors: row r is the mean of the table rows sub[sub_ptr[r] ..
 *    sub_ptr[r + 1]), computed once when the vectors were made);
 *  - has_sub: table holds h.n_buckets * dim floats (owned in own_table, or mapped from `file`), every sub entry
 *    is < h.n_buckets and every word has at least one (its own bucket, first). */
#ifndef CROSSREC_WORDVEC_IMPL_H
#define CROSSREC_WORDVEC_IMPL_H

#include "crossrec/wordvec.h"
#include "data/idmap.h"
#include "text_impl.h"

struct cr_wordvec {
    cr_strpool words;           /* (n) normalised words, in row order */
    cr_idmap map;               /* word -> row */
    float *vec;                 /* (n, dim) */
    int64_t n, dim, cap_rows;
    cr_wordvec_info info;

    /* trained vectors (info.has_subwords) */
    const float *table;         /* (h.n_buckets, dim): own_table, or inside file */
    float *own_table;
    cr_file *file;              /* the .crm the table is mapped from, or NULL */
    int64_t *sub_ptr;           /* (n + 1) */
    int32_t *sub;               /* (sub_ptr[n]) buckets of each word: its own, then its n-grams' */
    int64_t *count;             /* (n) corpus count of each word */
    cr_wordvec_train_params params;   /* how the vectors were trained (recorded by cr_wordvec_save) */
    int64_t train_tokens;       /* corpus tokens per epoch */
};

/* An empty cr_wordvec of dimension dim (words, map ready). CR_ERR_NOMEM. */
cr_status cr_wordvec_new_empty(cr_wordvec **wv, int64_t dim);
/* vec[r] = mean of table rows sub[sub_ptr[r] .. sub_ptr[r+1]) for every row (trained vectors). */
void cr_wordvec_compose_all(cr_wordvec *wv);
/* Loads a .crm written by cr_wordvec_save from an open file (which the vectors then own, also on error). */
cr_status cr_wordvec_load_crm(cr_wordvec **wv, cr_file *f, const char *name);

/* One skip-gram negative-sampling step, for one centre word and the targets of its window. The input is
 * h = mean of the n_rows rows `rows` of `in` (rows of dim floats: the word's own bucket and its n-grams'); the
 * targets are rows of `out`, labels[t] 1 for a context word and 0 for a negative sample. For each target t in
 * order: s = out_t . h, a = lr * (label - sigmoid(s)), grad += a * out_t (before out_t changes), out_t += a * h;
 * then every input row += grad (a row listed twice moves twice). Returns the loss before the update:
 * sum_t softplus(-s) for context words, softplus(s) for negatives.
 *
 * With lr = 1 and distinct targets, each output row moves by minus the loss's gradient and each input row by
 * minus n_rows times it: like fastText's skip-gram, the input gradient is not divided by the number of rows
 * (only fastText's supervised mode normalises it), which makes subword rows learn as fast as whole words.
 * Tests check both by finite differences against cr_sgns_loss. fastText steps once per (centre, context) pair;
 * crossrec takes the whole window in one step (h computed once per centre, the input rows updated once): the
 * same sum of updates, up to h staying fixed within the window, for a fraction of the work. hidden, grad:
 * scratch of dim floats. cr_sgns_step is the vectorised version of the scalar reference cr_sgns_step_ref. */
float cr_sgns_step(float *in, const int32_t *rows, int n_rows, float *out, const int32_t *targets,
                   const uint8_t *labels, int n_t, int64_t dim, float lr, float *hidden, float *grad);
float cr_sgns_step_ref(float *in, const int32_t *rows, int n_rows, float *out, const int32_t *targets,
                       const uint8_t *labels, int n_t, int64_t dim, float lr, float *hidden, float *grad);
/* The same loss in double, without any update (the reference for gradient checks). */
double cr_sgns_loss(const float *in, const int32_t *rows, int n_rows, const float *out, const int32_t *targets,
                    const uint8_t *labels, int n_t, int64_t dim);

#endif

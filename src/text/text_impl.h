/* text_impl.h — the private side of the text module: the workspace and what its files share.
 *
 * Every buffer of a cr_text_work grows by doubling (cr_grow) and is kept for the next text, so that a loop
 * over many texts allocates only while the buffers reach their largest size. */
#ifndef CROSSREC_TEXT_IMPL_H
#define CROSSREC_TEXT_IMPL_H

#include "crossrec/text.h"

/* OpenMP pragmas that vanish in builds without OpenMP (OMP=0). */
#ifdef _OPENMP
#define CR_TEXT_OMP(x) _Pragma(#x)
#else
#define CR_TEXT_OMP(x)
#endif

struct cr_text_work {
    int32_t *cp;            /* (cap_cp) decomposed code points of the text being normalised */
    int64_t cap_cp;
    char *norm;             /* (cap_norm) the normalised text, NUL-terminated */
    int64_t cap_norm, norm_len;
    int32_t *off;           /* (cap_off) byte offsets of a word's code points, plus its end */
    int64_t cap_off;
    uint32_t *ids, *ids_tmp;   /* (cap_ids) buckets of one text in token order; radix sort scratch */
    int64_t cap_ids, cap_ids_tmp, n_ids;
    cr_text_token *tok;     /* (cap_tok) tokens of cr_text_tokenize */
    int64_t cap_tok, n_tok;
    char *tok_bytes;        /* (cap_tok_bytes) their bytes, each NUL-terminated */
    int64_t cap_tok_bytes, n_tok_bytes;
    int64_t replaced_last, replaced_total;
};

/* Normalises s into w->norm / w->norm_len (cr_text_normalize without the out parameters). */
cr_status cr_text_normalize_into(cr_text_work *w, const char *s, int64_t len);
/* Appends the buckets of the tokens of s to w->ids (after w->n_ids); adds replacements to *n_replaced. */
cr_status cr_text_collect_ids(cr_text_work *w, const cr_text_hashing *h, const char *s, int64_t len,
                              int64_t *n_replaced);
/* Turns w->ids[0 .. n_ids) into bag (sorted, counted) and resets n_ids. */
cr_status cr_text_ids_to_bag(cr_text_work *w, const cr_text_hashing *h, cr_text_bag *bag);
/* The idf factor of cr_text_weigh for a bucket in df of n_docs documents (1 for CR_TEXT_W_COUNT). */
double cr_text_idf(const cr_text_weight_params *p, int64_t n_docs, int64_t df);
/* The weights of one row (see cr_text_weigh; p and the buckets already checked). idf_by_df: NULL, or
 * cr_text_idf for every df in 0 .. st->n_docs. */
void cr_text_weigh_row(const cr_text_stats *st, const cr_text_weight_params *p, const double *idf_by_df,
                       const int32_t *bucket, const int32_t *count, int64_t n, int64_t n_tokens, float *w);

#endif

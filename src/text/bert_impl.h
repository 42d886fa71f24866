/* bert_impl.h — private pieces of the BERT encoder shared by src/text/bert.c, wordpiece.c and the tests: the
 * vocabulary constructor over a string pool, and the small kernels, each with the scalar `_ref` version (double
 * accumulation, libm) the fast one is tested against. All kernels work on row-major (rows, dim) float arrays
 * and never allocate. */
#ifndef CROSSREC_BERT_IMPL_H
#define CROSSREC_BERT_IMPL_H

#include "crossrec/bert.h"

/* A tokenizer over n tokens stored back to back: token i is bytes[off[i] .. off[i+1]-1) including its NUL
 * (cr_strpool layout). Copied. Same checks as cr_wordpiece_new. */
cr_status cr_wordpiece_new_pool(cr_wordpiece **wp, const char *bytes, int64_t n_bytes, const int64_t *off, int64_t n);

/* y (rows, dim) = (x - mean) / sqrt(var + eps) * w + b per row (biased variance); in place allowed. */
void cr_bert_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps);
void cr_bert_layernorm_ref(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps);
/* y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) over n values (exact GELU, not the tanh approximation). */
void cr_bert_gelu(float *y, const float *x, int64_t n);
void cr_bert_gelu_ref(float *y, const float *x, int64_t n);
/* Softmax of each row in place: exp(x - max) / sum. */
void cr_bert_softmax(float *x, int64_t rows, int64_t dim);
void cr_bert_softmax_ref(float *x, int64_t rows, int64_t dim);

#endif

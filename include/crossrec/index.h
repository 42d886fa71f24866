/* crossrec/index.h — exact top-K inner-product search over an item matrix (DESIGN §10).
 *
 * An index holds an (n_items, dim) float32 item matrix, row-major, copied or borrowed (a mapped model file),
 * optionally a float16 copy, and optionally each item's domain. A search returns, per query vector q, the K
 * items with the highest scores q . y_i among the items that pass the filters.
 *
 * The result is defined by the scalar reference cr_index_search_ref, and every search returns exactly it:
 *   score(q, i) = (float) sum_j (double) q_j * (double) y_ij, summed in order j = 0, 1, ... in double
 *                 (every product is exact in double, so the value does not depend on FMA contraction);
 *   order       = score descending, equal scores by item index ascending (the lower index wins).
 * The fast paths (SIMD dot products for one query, blocked OpenBLAS sgemm for a batch) compute scores in
 * other orders, which can differ from the reference in the last bits. They use those scores only to select
 * candidates: with a rigorous bound E on |fast - reference| (Cauchy-Schwarz: E = 2 (dim + 2) 2^-24 |q| max|y|
 * over blocks of items, plus an underflow term), an item can be in the reference top-K only if its fast score
 * is within 2E of the K-th best; those candidates are rescored with the reference formula and ranked in the
 * reference order. Items, order and scores are therefore identical, bit for bit, to the reference at any
 * thread count, block size and kernel, ties and near-ties included. (A query with |q| max|y| > 1e36, whose
 * float32 scores could overflow, is scored by the reference directly.) Typically K + a few items are
 * rescored; many items within 2E of the K-th score (duplicated rows) make the candidate lists grow.
 *
 * Item and query values must be finite (checked: CR_ERR_ARG). Thread-safety: an index is read-only after
 * init; any number of searches may run on it at once. */
#ifndef CROSSREC_INDEX_H
#define CROSSREC_INDEX_H

#include "crossrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CR_INDEX_MAX_K 1000

typedef struct cr_index cr_index;

typedef struct {
    int borrow;                 /* 1: keep the caller's item matrix (and item_domain) instead of copying them; they
                                   must stay valid and unchanged until cr_index_free (default 0: copy) */
    int f16;                    /* also build a float16 copy of the items (round to nearest even), searched with
                                   CR_INDEX_F16 (default 0) */
    const int32_t *item_domain; /* (n_items) domain of each item, for the domain filter; NULL: none */
} cr_index_params;

cr_index_params cr_index_default_params(void);

/* Builds an index over items (n_items, dim), row-major. n_items in 0..INT32_MAX, dim >= 1. One pass over the
 * matrix checks that it is finite and computes norms; with f16, every value must fit float16 (|x| <= 65504).
 * CR_ERR_ARG (message names the item and column), CR_ERR_NOMEM. *out is NULL on failure. */
cr_status cr_index_init(cr_index **out, const float *items, int64_t n_items, int64_t dim, const cr_index_params *p);
void cr_index_free(cr_index *ix);

int64_t cr_index_n_items(const cr_index *ix);
int64_t cr_index_dim(const cr_index *ix);
int cr_index_has_f16(const cr_index *ix);
/* (n_items, dim) float32 rows, as given or copied. */
const float *cr_index_items(const cr_index *ix);

typedef enum {
    CR_INDEX_F32 = 0,           /* score the float32 matrix */
    CR_INDEX_F16 = 1            /* score the float16 copy (exact search over the rounded matrix; needs p.f16) */
} cr_index_precision;

typedef struct {
    int64_t k;                  /* results per query, 1..CR_INDEX_MAX_K (default 10); fewer come back when fewer
                                   items pass the filters */
    int32_t domain;             /* only items of this domain (needs item_domain); -1: any (default) */
    const uint64_t *allow;      /* bitset over items, bit i & 63 of word i >> 6: only these items; NULL: all */
    const uint64_t *deny;       /* bitset over items: never these items; NULL: none */
    cr_index_precision precision;   /* default CR_INDEX_F32 */
    int threads;                /* OpenMP threads, 0: OpenMP default. Results do not depend on it. */
    int64_t mem_cap;            /* batch search: bytes for the (query block x item block) score buffers of all
                                   threads together (default 64 MiB; blocks are at most 512 x 512, 1 MiB, per
                                   thread; at least 64 floats per thread are used). Per thread also: K + 2K + 64
                                   candidate slots per query of the block, and with CR_INDEX_F16 the decoded item
                                   block (item block x dim floats). */
} cr_index_search_params;

cr_index_search_params cr_index_search_default_params(void);

/* Top-K of one query vector q (dim). exclude: n_exclude item indices to leave out (the user's seen items),
 * sorted ascending (repeats allowed), each in 0..n_items-1; NULL when n_exclude is 0.
 * Writes items (k) and scores (k; may be NULL) best first and *n_found (may be NULL) = min(k, items passing
 * the filters); slots past n_found get item -1 and score NAN.
 * Single thread below about 64K multiply-adds, else p.threads threads over item ranges.
 * CR_ERR_ARG (bad k, domain without item_domain, F16 without a float16 copy, non-finite query, unsorted or
 * out-of-range exclude), CR_ERR_NOMEM. */
cr_status cr_index_search(const cr_index *ix, const float *q, const int32_t *exclude, int64_t n_exclude,
                          const cr_index_search_params *p, int32_t *items, float *scores, int64_t *n_found);

/* Top-K of n_queries query vectors (n_queries, dim), row-major. Query r excludes exclude[exclude_ptr[r] ..
 * exclude_ptr[r+1]) (sorted per query as above); exclude_ptr NULL: nothing excluded. Outputs are (n_queries,
 * k) row-major, and n_found (n_queries); same contents as n_queries calls of cr_index_search.
 * Blocks of queries x blocks of items are scored with cblas_sgemm into buffers within p.mem_cap, and the
 * blocks of queries are shared among p.threads OpenMP threads, each calling sgemm on its own block. OpenBLAS
 * should then run one thread per call (openblas_set_num_threads(1) or OPENBLAS_NUM_THREADS=1); with more,
 * results are the same. Errors as cr_index_search, for the first query at fault. */
cr_status cr_index_search_batch(const cr_index *ix, const float *queries, int64_t n_queries, const int64_t *exclude_ptr,
                                const int32_t *exclude, const cr_index_search_params *p, int32_t *items, float *scores,
                                int64_t *n_found);

/* The scalar reference: for each query, every item passing the filters is scored with the reference formula
 * and kept in a bounded heap. Same arguments, checks and outputs as cr_index_search_batch (p.threads and
 * p.mem_cap unused). The oracle of the tests. */
cr_status cr_index_search_ref(const cr_index *ix, const float *queries, int64_t n_queries, const int64_t *exclude_ptr,
                              const int32_t *exclude, const cr_index_search_params *p, int32_t *items, float *scores,
                              int64_t *n_found);

/* ---- float16 ------------------------------------------------------------------------------------------- */

/* IEEE binary16 <-> float32. cr_f32_to_f16 rounds to nearest even (overflow to infinity, NaN stays NaN, with
 * its payload's top bits and the quiet bit set); cr_f16_to_f32 is exact. The _ref versions are portable C;
 * the plain ones use F16C when the CPU has it, and give identical results. */
uint16_t cr_f32_to_f16_ref(float x);
float cr_f16_to_f32_ref(uint16_t h);
void cr_f32_to_f16(const float *x, uint16_t *h, int64_t n);
void cr_f16_to_f32(const uint16_t *h, float *x, int64_t n);

/* ---- kernels (for tests and benchmarks) ---------------------------------------------------------------- */

/* Name of the kernel set in use: "avx2" (AVX2 + FMA + F16C, chosen at run time when the CPU has them) or
 * "portable". cr_index_force_portable(1) selects the portable kernels from now on (0: back to the best);
 * not thread-safe against running searches. */
const char *cr_index_kernel(void);
void cr_index_force_portable(int on);

#ifdef __cplusplus
}
#endif
#endif

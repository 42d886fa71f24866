/* crossrec/text.h — item text as sparse features: normalisation, tokens, feature hashing, TF-IDF / BM25
 * weights, and the item x bucket matrix of a dataset (DESIGN §6; docs/TEXT.md is the exact specification).
 *
 * The pipeline, for any bytes:
 *   normalise   invalid UTF-8 replaced by U+FFFD (one per maximal invalid subpart, counted), then NFKC with
 *               Unicode case folding, default-ignorable code points removed, control characters removed
 *               (tab and line ends become a space): what utf8proc_map gives with STABLE | COMPOSE | COMPAT |
 *               CASEFOLD | IGNORE | STRIPCC on valid input.
 *   tokenise    words are runs of letters, marks and numbers (a '.' or ',' between two numerals stays inside);
 *               everything else separates, except that each code point of category So (emoji, pictographs)
 *               is a token by itself. Han, kana and Hangul runs give each character and each pair of adjacent
 *               characters. Words that are not numbers also give their character n-grams of "<word>"
 *               (fastText's boundary marks), n from ngram_min to ngram_max code points.
 *   hash        bucket = MurmurHash3_x86_32(token bytes, seed XOR kind * 0x9E3779B9) mod n_buckets.
 *   bag         the buckets of a text with their counts, ascending by bucket.
 *   weigh       counts, TF-IDF or BM25 from corpus document frequencies, optionally L2-normalised.
 *
 * The rules and the hash are part of the file format: files that depend on them record a cr_text_hashing
 * (cr_text_hashing_write) and readers refuse an unknown hash or a newer rule version (cr_text_hashing_read).
 *
 * Thread-safety: a cr_text_work, bag or stats is used by one thread at a time; cr_text_hashing and
 * cr_text_weight_params are plain read-only values. */
#ifndef CROSSREC_TEXT_H
#define CROSSREC_TEXT_H

#include "crossrec/data.h"
#include "crossrec/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the hashing definition, recorded in files ------------------------------------------------------ */

#define CR_TEXT_HASH_MURMUR3_32 CR_HASH_ID_MURMUR3_32   /* the only hash so far (1) */
#define CR_TEXT_VERSION 1               /* normalisation + tokenisation rules; a change bumps it */
#define CR_TEXT_MAX_LEN (1 << 24)       /* longest text in bytes that the pipeline accepts (16 MiB) */
#define CR_TEXT_MAX_NGRAM 16
#define CR_TEXT_MAX_BUCKETS (1 << 28)

typedef struct {
    int32_t hash_id;        /* CR_TEXT_HASH_MURMUR3_32 */
    int32_t version;        /* CR_TEXT_VERSION */
    uint32_t seed;          /* MurmurHash3 seed before the per-kind salt (0) */
    int64_t n_buckets;      /* 1 .. CR_TEXT_MAX_BUCKETS = 2^28 (2^20) */
    int32_t ngram_min;      /* character n-grams of words, in code points: 1 <= min <= max <= */
    int32_t ngram_max;      /* CR_TEXT_MAX_NGRAM, or both 0 for none (3, 5) */
} cr_text_hashing;

cr_text_hashing cr_text_default_hashing(void);
/* NULL when h is usable, else a constant message naming the first bad field. */
const char *cr_text_check_hashing(const cr_text_hashing *h);
/* Whether a and b hash every text into the same buckets (every field equal; padding ignored). */
int cr_text_hashing_equal(const cr_text_hashing *a, const cr_text_hashing *b);
/* Records h in a file's metadata: text.hash, text.version, text.seed, text.buckets, text.ngram_min,
 * text.ngram_max (i64) and text.unicode (string, the Unicode version of utf8proc; informational).
 * CR_ERR_ARG when h is not valid (message from cr_text_check_hashing); errors of cr_filew_meta_*. */
cr_status cr_text_hashing_write(cr_filew *w, const cr_text_hashing *h);
/* Reads what cr_text_hashing_write recorded. CR_ERR_FORMAT naming the file and key when a key is missing,
 * the hash id is unknown or a value is out of range; CR_ERR_VERSION for rules newer than CR_TEXT_VERSION. */
cr_status cr_text_hashing_read(const cr_file *f, cr_text_hashing *h);

/* ---- workspace -------------------------------------------------------------------------------------- */

/* Buffers reused from one text to the next, so that steady-state processing does not allocate. */
typedef struct cr_text_work cr_text_work;

cr_status cr_text_work_new(cr_text_work **w);
void cr_text_work_free(cr_text_work *w);
/* Invalid UTF-8 sequences replaced by U+FFFD, by the last call that normalised a text / since creation. */
int64_t cr_text_work_replaced_last(const cr_text_work *w);
int64_t cr_text_work_replaced_total(const cr_text_work *w);

/* ---- normalisation ---------------------------------------------------------------------------------- */

/* Normalises len bytes of s (any bytes; NUL bytes are control characters and removed). *out is the result,
 * NUL-terminated, *out_len bytes of valid UTF-8 without control characters; it lives in w until the next
 * call on w. CR_ERR_LIMIT when len > CR_TEXT_MAX_LEN; CR_ERR_NOMEM. */
cr_status cr_text_normalize(cr_text_work *w, const char *s, int64_t len, const char **out, int64_t *out_len);

/* ---- tokens ----------------------------------------------------------------------------------------- */

/* Token kinds. The value is part of the hash (the seed's salt), so it never changes. */
typedef enum {
    CR_TEXT_TOK_WORD = 0,   /* a word or a number */
    CR_TEXT_TOK_NGRAM = 1,  /* n code points of "<word>" */
    CR_TEXT_TOK_CJK = 2,    /* one Han, kana or Hangul character */
    CR_TEXT_TOK_BIGRAM = 3, /* two adjacent CJK characters */
    CR_TEXT_TOK_SYMBOL = 4, /* one code point of category So (emoji) */
} cr_text_tok_kind;

typedef struct {
    const char *p;          /* NUL-terminated UTF-8, in the work's buffer */
    int32_t len;            /* bytes */
    cr_text_tok_kind kind;
} cr_text_token;

/* Normalises s and splits it into tokens, in text order: a word, then its n-grams (by start, then length);
 * a CJK run's characters, then its bigrams. *toks (n_toks entries) lives in w until the next call on w.
 * Only h's n-gram range is used. Errors as cr_text_normalize, and CR_ERR_ARG for an invalid h. */
cr_status cr_text_tokenize(cr_text_work *w, const cr_text_hashing *h, const char *s, int64_t len,
                           const cr_text_token **toks, int64_t *n_toks);

/* The bucket of a token: MurmurHash3_x86_32(p, len, h->seed ^ ((uint32_t)kind * 0x9E3779B9)) % n_buckets. */
int32_t cr_text_bucket(const cr_text_hashing *h, cr_text_tok_kind kind, const char *p, int64_t len);

/* ---- bags: the hashed tokens of one text -------------------------------------------------------------- */

/* Owned by the caller; start from a zeroed struct and reuse it (arrays grow, never shrink). */
typedef struct {
    int32_t *bucket;        /* (n) strictly ascending */
    int32_t *count;         /* (n) tokens that fell into bucket[i], >= 1 */
    int64_t n;
    int64_t n_tokens;       /* sum of count: the text's length in tokens (BM25) */
    int64_t n_replaced;     /* invalid UTF-8 sequences replaced in the text */
    int64_t cap;
} cr_text_bag;

void cr_text_bag_free(cr_text_bag *b);
/* Normalises, tokenises and hashes s into bag (previous content replaced). Errors as cr_text_tokenize. */
cr_status cr_text_hash_bag(cr_text_work *w, const cr_text_hashing *h, const char *s, int64_t len, cr_text_bag *bag);

/* ---- corpus statistics and weights ------------------------------------------------------------------- */

/* Document frequencies per bucket: buckets are enough for the models, and no vocabulary of exact tokens is
 * kept. Every added bag is one document, an empty one included. */
typedef struct {
    int64_t n_buckets;
    int32_t *df;            /* (n_buckets) documents whose bag holds the bucket */
    int64_t n_docs;         /* < 2^31, as item indices */
    int64_t n_tokens;       /* sum of the documents' n_tokens (BM25's average length) */
    int64_t n_empty;        /* documents without any token */
    int64_t n_replaced;     /* invalid UTF-8 sequences replaced, all documents */
} cr_text_stats;

/* Zeroed stats for n_buckets buckets. CR_ERR_ARG for n_buckets outside 1..CR_TEXT_MAX_BUCKETS; CR_ERR_NOMEM. */
cr_status cr_text_stats_init(cr_text_stats *st, int64_t n_buckets);
/* Adds one document. CR_ERR_ARG (stats unchanged) when a bucket is >= st->n_buckets; CR_ERR_LIMIT at 2^31 - 1
 * documents. */
cr_status cr_text_stats_add(cr_text_stats *st, const cr_text_bag *bag);
void cr_text_stats_free(cr_text_stats *st);

typedef enum {
    CR_TEXT_W_COUNT = 1,    /* w = count */
    CR_TEXT_W_TFIDF,        /* w = count * (ln((1 + N) / (1 + df)) + 1)   (scikit-learn's smooth idf) */
    CR_TEXT_W_BM25,         /* w = ln(1 + (N - df + 0.5) / (df + 0.5)) * count * (k1 + 1) /
                                   (count + k1 * (1 - b + b * len / avg_len))   (Lucene's BM25) */
} cr_text_weighting;

typedef struct {
    cr_text_weighting weighting;    /* CR_TEXT_W_TFIDF */
    double k1, b;                   /* BM25: k1 >= 0 (1.2), 0 <= b <= 1 (0.75) */
    int l2_normalize;               /* scale each row to unit L2 norm (an all-zero row stays zero) (1) */
} cr_text_weight_params;

cr_text_weight_params cr_text_default_weight_params(void);
/* NULL when p is usable, else a constant message naming the first bad field. */
const char *cr_text_check_weight_params(const cr_text_weight_params *p);
/* Weighs a bag against corpus statistics: w[i] for bag->bucket[i] (w has bag->n entries). N = st->n_docs,
 * df = st->df[bucket], len = bag->n_tokens, avg_len = st->n_tokens / N (BM25 takes len / avg_len = 1 when
 * the corpus has no token). Computed in double, stored as float. CR_ERR_ARG for invalid p or a bucket
 * >= st->n_buckets. */
cr_status cr_text_weigh(const cr_text_stats *st, const cr_text_weight_params *p, const cr_text_bag *bag, float *w);

/* ---- the item x bucket matrix of a dataset ------------------------------------------------------------ */

typedef struct {
    int64_t n_rows, n_cols, nnz;
    int64_t *row_ptr;       /* (n_rows + 1) row r is [row_ptr[r], row_ptr[r+1]) */
    int32_t *col;           /* (nnz) bucket, strictly ascending within a row */
    float *val;             /* (nnz) weight */
} cr_text_csr;

void cr_text_csr_free(cr_text_csr *m);

enum { CR_TEXT_FIELD_TITLE = 1, CR_TEXT_FIELD_TEXT = 2 };

typedef struct {
    int fields;                     /* which item strings, CR_TEXT_FIELD_* bits; both are hashed as if joined
                                       by a space (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT) */
    cr_text_weight_params weight;
    int threads;                    /* 0: OpenMP's default; the result is the same for any count */
} cr_text_matrix_params;

cr_text_matrix_params cr_text_default_matrix_params(void);

/* Builds the (n_items x h->n_buckets) matrix of item text weights: one bag per item, document frequencies
 * over all items (each item is a document, an empty one too), then each row weighed (cr_text_weigh). *m is
 * owned by the caller (cr_text_csr_free). stats, when not NULL, receives the corpus statistics (caller frees),
 * to weigh other texts the same way. p == NULL: defaults. Errors: CR_ERR_ARG for invalid h or p,
 * CR_ERR_LIMIT for an item text longer than CR_TEXT_MAX_LEN (message names the item), CR_ERR_NOMEM; on error
 * *m and *stats are zeroed and nothing is leaked. */
cr_status cr_text_item_matrix(const cr_dataset *d, const cr_text_hashing *h, const cr_text_matrix_params *p,
                              cr_text_csr *m, cr_text_stats *stats);

#ifdef __cplusplus
}
#endif
#endif

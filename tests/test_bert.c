/* test_bert.c — the text encoder of src/text: safetensors parsing (good and malformed buffers), the kernels
 * against their scalar references, WordPiece on a handmade vocabulary, the converter and forward pass on a tiny
 * random BERT against an independent double-precision forward written here, and — when `make models` has run —
 * all-MiniLM-L6-v2 against sentence-transformers' golden token ids (exact) and vectors (cosine >= 0.9999) from
 * tools/ref/minilm_golden.py. */
#include "test.h"

#include "crossrec/bert.h"
#include "crossrec/io.h"
#include "text/bert_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- safetensors ---- */

/* A safetensors image: u64 header length, the header, then data_len bytes of 0x11. Caller free()s. */
static uint8_t *st_image(const char *header, size_t data_len, size_t *len) {
    size_t n = strlen(header);
    *len = 8 + n + data_len;
    uint8_t *b = malloc(*len ? *len : 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    memset(b + 8 + n, 0x11, data_len);
    return b;
}

static cr_status st_parse(const char *header, size_t data_len) {
    size_t len;
    uint8_t *b = st_image(header, data_len, &len);
    cr_safetensors *s;
    cr_status st = cr_safetensors_parse(&s, b, len, "t.safetensors");
    cr_safetensors_free(s);
    free(b);
    return st;
}

/* A failed allocation inside jansson is CR_ERR_NOMEM, not a malformed header (jansson reports some of them as
 * syntax errors). */
TEST(safetensors_alloc_failures_are_nomem) {
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},\"weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
    int64_t n;
    for (n = 1; n < 10000; n++) {
        cr_alloc_fail_nth(n);
        cr_status st = st_parse(h, 12);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "failing allocation %lld gave %s: %s", (long long)n, cr_status_str(st), cr_errmsg());
    }
    CHECK(n > 5);
}

TEST(safetensors_good) {
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]},"
                    "\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                    "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[32,34]},"
                    "\"z\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[34,34]}}   ";
    size_t len;
    uint8_t *b = st_image(h, 34, &len);
    cr_safetensors *s;
    CHECK_OK(cr_safetensors_parse(&s, b, len, "t"));
    CHECK_EQ(cr_safetensors_count(s), 4);
    const cr_st_tensor *a = cr_safetensors_at(s, 0), *bt = cr_safetensors_find(s, "b");
    CHECK_STR(a->name, "a");
    CHECK(a->dtype == CR_ST_I64 && a->count == 1 && a->nbytes == 8 && a->data == b + 8 + strlen(h));
    CHECK(bt && bt->dtype == CR_ST_F32 && bt->ndim == 2 && bt->shape[0] == 2 && bt->shape[1] == 3);
    CHECK(bt->count == 6 && bt->nbytes == 24 && (const uint8_t *)bt->data == b + 8 + strlen(h) + 8);
    const cr_st_tensor *sc = cr_safetensors_find(s, "s"), *z = cr_safetensors_find(s, "z");
    CHECK(sc && sc->ndim == 0 && sc->count == 1 && sc->nbytes == 2);
    CHECK(z && z->count == 0 && z->nbytes == 0);
    CHECK(cr_safetensors_find(s, "c") == NULL && cr_safetensors_find(s, "__metadata__") == NULL);
    CHECK_STR(cr_st_dtype_name(CR_ST_BF16), "BF16");
    cr_safetensors_free(s);
    free(b);
    /* an empty header object and no data is a valid (empty) file */
    CHECK_OK(st_parse("{}", 0));
}

TEST(safetensors_malformed) {
    cr_safetensors *s;
    CHECK_STATUS(cr_safetensors_parse(&s, "\x02\0\0", 3, "short"), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "too short");
    uint8_t big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    CHECK_STATUS(cr_safetensors_parse(&s, big, sizeof big, "huge"), CR_ERR_LIMIT);
    uint8_t over[12] = {20, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    CHECK_STATUS(cr_safetensors_parse(&s, over, sizeof over, "over"), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "only 4 bytes follow");
    CHECK_STATUS(st_parse("{\"a\":", 0), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "not valid JSON");
    CHECK_STATUS(st_parse("[1,2]", 0), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "not a JSON object");
    CHECK_STATUS(st_parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), CR_ERR_FORMAT);
    CHECK_STATUS(st_parse("{\"__metadata__\":{\"k\":1}}", 0), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "__metadata__");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "unsupported dtype 'F8_E4M3'");
    CHECK_STATUS(st_parse("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "dtype");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "outside the 4 data bytes");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "need 8");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "negative");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4), CR_ERR_FORMAT);
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4),
                 CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "overflows");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1), CR_ERR_LIMIT);
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4), CR_ERR_FORMAT);
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4), CR_ERR_FORMAT);
    /* holes, overlaps and bytes left over */
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "hole");
    CHECK_STATUS(st_parse("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "overlap");
    CHECK_STATUS(st_parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "cover 4 data bytes, the file has 6");
}

/* ---- kernels ---- */

TEST(bert_kernels_match_ref) {
    cr_rng r;
    cr_rng_named(&r, 5, "test.bert.kernels");
    enum { ROWS = 7, DIM = 389 };   /* odd sizes: the 8-lane loops have tails */
    static float x[ROWS * DIM], w[DIM], b[DIM], y[ROWS * DIM], yr[ROWS * DIM];
    for (int i = 0; i < ROWS * DIM; i++) x[i] = (float)(3 * cr_rng_normal(&r) + 1.5);
    for (int i = 0; i < DIM; i++) w[i] = (float)cr_rng_normal(&r), b[i] = (float)cr_rng_normal(&r);
    cr_bert_layernorm(y, x, w, b, ROWS, DIM, 1e-12f);
    cr_bert_layernorm_ref(yr, x, w, b, ROWS, DIM, 1e-12f);
    double md = 0;
    for (int i = 0; i < ROWS * DIM; i++) md = fmax(md, fabs(y[i] - yr[i]));
    printf("     layernorm max |fast - ref| %.3g\n", md);
    CHECK(md < 2e-5);
    /* mean 0 and variance 1 before the affine part: with w = 1, b = 0 */
    for (int i = 0; i < DIM; i++) w[i] = 1, b[i] = 0;
    cr_bert_layernorm_ref(yr, x, w, b, 1, DIM, 1e-12f);
    double m = 0, v = 0;
    for (int i = 0; i < DIM; i++) m += yr[i];
    for (int i = 0; i < DIM; i++) v += (yr[i] - m / DIM) * (yr[i] - m / DIM);
    CHECK_NEAR(m / DIM, 0, 1e-6);
    CHECK_NEAR(v / DIM, 1, 1e-5);

    cr_bert_gelu(y, x, ROWS * DIM);
    cr_bert_gelu_ref(yr, x, ROWS * DIM);
    md = 0;
    for (int i = 0; i < ROWS * DIM; i++) md = fmax(md, fabs(y[i] - yr[i]) / fmax(1, fabs(yr[i])));
    /* and a sweep over [-12, 12] (erf's approximation is clamped at |x / sqrt 2| = 4) */
    enum { SWEEP = 24001 };
    static float sx[SWEEP], sy[SWEEP], sr[SWEEP];
    for (int i = 0; i < SWEEP; i++) sx[i] = -12.0f + (float)i * 1e-3f;
    cr_bert_gelu(sy, sx, SWEEP);
    cr_bert_gelu_ref(sr, sx, SWEEP);
    for (int i = 0; i < SWEEP; i++) md = fmax(md, fabs(sy[i] - sr[i]) / fmax(1, fabs(sr[i])));
    printf("     gelu max |fast - ref| / max(1, |ref|) %.3g\n", md);
    CHECK(md < 2e-6);
    float g[3] = {0, 1, -1};
    cr_bert_gelu_ref(g, g, 3);
    CHECK_NEAR(g[0], 0, 0);
    CHECK_NEAR(g[1], 0.8413447460685429, 1e-7);    /* Phi(1): exact GELU, not the tanh form (0.841192) */
    CHECK_NEAR(g[2], -0.15865525393145707, 1e-7);

    memcpy(y, x, sizeof x);
    memcpy(yr, x, sizeof x);
    cr_bert_softmax(y, ROWS, DIM);
    cr_bert_softmax_ref(yr, ROWS, DIM);
    md = 0;
    for (int i = 0; i < ROWS * DIM; i++) md = fmax(md, fabs(y[i] - yr[i]));
    printf("     softmax max |fast - ref| %.3g\n", md);
    CHECK(md < 1e-6);
    double s = 0;
    for (int i = 0; i < DIM; i++) s += yr[i];
    CHECK_NEAR(s, 1, 1e-6);
    float big[3] = {1000, 1000, -1000};   /* the max is subtracted: no overflow */
    cr_bert_softmax(big, 1, 3);
    CHECK_NEAR(big[0], 0.5, 1e-7);
    CHECK_NEAR(big[2], 0, 0);
}

/* ---- WordPiece on a handmade vocabulary ---- */

static const char *const tiny_vocab[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able", "!", ",", "cafe",
    "creme", "蓝", "色", "a", "##a", "hello", "##b", "b", "i", "stanbul", "istanbul", "x",
};
#define TINY_N ((int64_t)(sizeof tiny_vocab / sizeof tiny_vocab[0]))

static const char *tiny_tokens(const cr_wordpiece *wp, const char *text, size_t len, int64_t max) {
    static char out[1024];
    int32_t ids[300];
    int64_t n;
    CR_ASSERT(max <= 300);
    if (cr_wordpiece_tokenize(wp, text, len, ids, max, &n)) return "(error)";
    size_t at = 0;
    out[0] = '\0';
    for (int64_t i = 0; i < n; i++)
        at += (size_t)snprintf(out + at, sizeof out - at, "%s%s", i ? " " : "", cr_wordpiece_token(wp, ids[i]));
    return out;
}
#define TOK(wp, s) tiny_tokens(wp, s, strlen(s), 300)

TEST(wordpiece_tiny_vocab) {
    cr_wordpiece *wp;
    CHECK_OK(cr_wordpiece_new(&wp, tiny_vocab, TINY_N));
    CHECK_EQ(cr_wordpiece_size(wp), TINY_N);
    CHECK_EQ(cr_wordpiece_id(wp, "##able"), 7);
    CHECK_EQ(cr_wordpiece_id(wp, "nope"), -1);
    CHECK(cr_wordpiece_token(wp, (int32_t)TINY_N) == NULL && cr_wordpiece_token(wp, -1) == NULL);
    /* greedy longest match first, "##" continuations; an unmatched rest makes the whole word [UNK] */
    CHECK_STR(TOK(wp, "unaffable"), "[CLS] un ##aff ##able [SEP]");
    CHECK_STR(TOK(wp, "affable unable"), "[CLS] aff ##able un ##able [SEP]");
    CHECK_STR(TOK(wp, "unaffablex"), "[CLS] [UNK] [SEP]");
    CHECK_STR(TOK(wp, "aaab"), "[CLS] a ##a ##a ##b [SEP]");
    /* lower case, accents stripped after NFD (precomposed and combining alike), punctuation split off */
    CHECK_STR(TOK(wp, "Hello, CAFÉ!Crème"), "[CLS] hello , cafe ! creme [SEP]");
    CHECK_STR(TOK(wp, "cafe\xcc\x81"), "[CLS] cafe [SEP]");
    /* CJK ideographs are words of their own even without spaces */
    CHECK_STR(TOK(wp, "a蓝色b"), "[CLS] a 蓝 色 b [SEP]");
    /* whitespace of every kind separates; controls, format characters, private use and U+FFFD vanish */
    CHECK_STR(TOK(wp, "a\tb\n\xc2\xa0" "a\xe3\x80\x80" "b"), "[CLS] a b a b [SEP]");
    CHECK_STR(TOK(wp, "he\x07llo\xe2\x80\x8b \xee\x80\x80x\xef\xbf\xbd"), "[CLS] hello x [SEP]");
    CHECK_STR(tiny_tokens(wp, "hel\0lo", 6, 300), "[CLS] hello [SEP]");
    /* invalid UTF-8 bytes count as U+FFFD and are dropped */
    CHECK_STR(TOK(wp, "hel\xff\xc3lo"), "[CLS] hello [SEP]");
    /* İ decomposes to I + a combining dot, which is stripped */
    CHECK_STR(TOK(wp, "\xc4\xb0stanbul"), "[CLS] istanbul [SEP]");
    /* special tokens written literally are kept, case-sensitively; the rest is tokenized around them */
    CHECK_STR(TOK(wp, "x[SEP]un[MASK] [sep]"), "[CLS] x [SEP] un [MASK] [UNK] [UNK] [UNK] [SEP]");
    /* 100 code points is still a word, 101 is [UNK] */
    char w[128];
    memset(w, 'a', 101);
    w[100] = '\0';
    const char *t100 = TOK(wp, w);
    CHECK(!strncmp(t100, "[CLS] a ##a ##a", 15) && !strstr(t100, "[UNK]"));
    w[100] = 'a', w[101] = '\0';
    CHECK_STR(TOK(wp, w), "[CLS] [UNK] [SEP]");
    /* empty and blank texts */
    CHECK_STR(TOK(wp, ""), "[CLS] [SEP]");
    CHECK_STR(TOK(wp, " \t "), "[CLS] [SEP]");
    /* truncation keeps [CLS] first and [SEP] last */
    CHECK_STR(tiny_tokens(wp, "a b a b a", 9, 4), "[CLS] a b [SEP]");
    CHECK_STR(tiny_tokens(wp, "unaffable", 9, 3), "[CLS] un [SEP]");
    CHECK_STR(tiny_tokens(wp, "unaffable", 9, 2), "[CLS] [SEP]");
    int32_t ids[2];
    int64_t n;
    CHECK_STATUS(cr_wordpiece_tokenize(wp, "a", 1, ids, 1, &n), CR_ERR_ARG);
    cr_wordpiece_free(wp);

    const char *dup[] = {"[UNK]", "[CLS]", "[SEP]", "a", "a"};
    CHECK_STATUS(cr_wordpiece_new(&wp, dup, 5), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "twice");
    const char *nounk[] = {"[CLS]", "[SEP]", "a"};
    CHECK_STATUS(cr_wordpiece_new(&wp, nounk, 3), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "[UNK]");
}

/* ---- a tiny random BERT: converter + forward against a double-precision forward written here ---- */

enum { TV = 26, TH = 8, TNH = 2, TF = 12, TL = 2, TP = 16, TSEQ = 12 };

typedef struct {
    const char *name;
    int64_t rows, cols;     /* cols 0: a vector */
    float *data;
} tiny_tensor;

static const char *const tiny_layer_names[16] = {
    "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
    "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
};

typedef struct {
    tiny_tensor t[5 + 16 * TL];
    int n;
    char names[5 + 16 * TL][80];
} tiny_model;

static void tiny_add(tiny_model *m, const char *name, int64_t rows, int64_t cols, cr_rng *r, double mean, double sd) {
    tiny_tensor *t = &m->t[m->n];
    snprintf(m->names[m->n], sizeof m->names[0], "%s", name);
    t->name = m->names[m->n++];
    t->rows = rows, t->cols = cols;
    int64_t n = rows * (cols ? cols : 1);
    t->data = malloc((size_t)n * sizeof *t->data);
    for (int64_t k = 0; k < n; k++) t->data[k] = (float)(mean + sd * cr_rng_normal(r));
}

static const float *tiny_get(const tiny_model *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return m->t[i].data;
    CR_ASSERT(0);
    return NULL;
}

static void tiny_make(tiny_model *m) {
    cr_rng r;
    cr_rng_named(&r, 9, "test.bert.tiny");
    m->n = 0;
    tiny_add(m, "embeddings.word_embeddings.weight", TV, TH, &r, 0, 1);
    tiny_add(m, "embeddings.position_embeddings.weight", TP, TH, &r, 0, 0.5);
    tiny_add(m, "embeddings.token_type_embeddings.weight", 2, TH, &r, 0, 0.5);
    tiny_add(m, "embeddings.LayerNorm.weight", TH, 0, &r, 1, 0.1);
    tiny_add(m, "embeddings.LayerNorm.bias", TH, 0, &r, 0, 0.1);
    int64_t rows[16] = {TH, TH, TH, TH, TH, TH, TH, TH, TH, TH, TF, TF, TH, TH, TH, TH};
    int64_t cols[16] = {TH, 0, TH, 0, TH, 0, TH, 0, 0, 0, TH, 0, TF, 0, 0, 0};
    for (int l = 0; l < TL; l++)
        for (int k = 0; k < 16; k++) {
            char n[80];
            snprintf(n, sizeof n, "encoder.layer.%d.%s", l, tiny_layer_names[k]);
            int ln_w = k == 8 || k == 14;
            tiny_add(m, n, rows[k], cols[k], &r, ln_w ? 1 : 0, cols[k] ? 0.5 : 0.1);
        }
}

static void tiny_free(tiny_model *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
}

/* Writes the tiny model as a sentence-transformers folder (tensors in reverse order, plus an unused one, to
 * show that order and extras do not matter). */
static const char *tiny_folder(const tiny_model *m, const char *name, int with_vocab_txt) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", cr_test_path(name));
    mkdir(dir, 0755);
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/1_Pooling", dir);
    mkdir(sub, 0755);
    json_t *h = json_object();
    int64_t off = 0;
    for (int i = m->n - 1; i >= -1; i--) {
        int64_t rows = i >= 0 ? m->t[i].rows : 3, cols = i >= 0 ? m->t[i].cols : 0;
        int64_t nb = rows * (cols ? cols : 1) * 4;
        json_t *shape = cols ? json_pack("[II]", (json_int_t)rows, (json_int_t)cols) : json_pack("[I]", (json_int_t)rows);
        json_object_set_new(h, i >= 0 ? m->t[i].name : "pooler.unused",
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                                      (json_int_t)off, (json_int_t)(off + nb)));
        off += nb;
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t hl = strlen(hs);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(hl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hs, 1, hl, f);
    json_malloc_t jm;
    json_free_t jf;
    json_get_alloc_funcs(&jm, &jf);   /* crossrec may have given jansson its own allocator */
    jf(hs);
    float pad[3] = {0, 0, 0};
    for (int i = m->n - 1; i >= -1; i--) {
        if (i < 0) fwrite(pad, 4, 3, f);
        else fwrite(m->t[i].data, 4, (size_t)(m->t[i].rows * (m->t[i].cols ? m->t[i].cols : 1)), f);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"hidden_size\": %d, \"num_hidden_layers\": %d,"
               " \"num_attention_heads\": %d, \"intermediate_size\": %d, \"vocab_size\": %d,"
               " \"max_position_embeddings\": %d, \"layer_norm_eps\": 1e-12, \"type_vocab_size\": 2}",
            TH, TL, TNH, TF, TV, TP);
    fclose(f);
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"max_seq_length\": %d, \"do_lower_case\": false}", TSEQ);
    fclose(f);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"do_lower_case\": true, \"strip_accents\": null}");
    fclose(f);
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"pooling_mode_mean_tokens\": true, \"pooling_mode_cls_token\": false}");
    fclose(f);
    snprintf(path, sizeof path, "%s/modules.json", dir);
    f = fopen(path, "w");
    fprintf(f, "[{\"type\": \"sentence_transformers.models.Transformer\"}, {\"type\": \"sentence_transformers.models.Pooling\"},"
               " {\"type\": \"sentence_transformers.models.Normalize\"}]");
    fclose(f);
    if (with_vocab_txt) {
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        f = fopen(path, "w");
        for (int i = 0; i < TV; i++) fprintf(f, "%s\n", i < TINY_N ? tiny_vocab[i] : "extra");
        fclose(f);
    } else {
        json_t *v = json_object();
        for (int i = 0; i < TV; i++) json_object_set_new(v, i < TINY_N ? tiny_vocab[i] : "extra", json_integer(i));
        json_t *tj = json_pack("{s:{s:s, s:o}}", "model", "type", "WordPiece", "vocab", v);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        json_dump_file(tj, path, 0);
        json_decref(tj);
    }
    return dir;
}

/* The forward pass of one sequence in double precision, straight from the definition. */
static void tiny_forward_ref(const tiny_model *m, const int32_t *ids, int L, double *out) {
    static double x[TSEQ][TH], q[TSEQ][TH], k[TSEQ][TH], v[TSEQ][TH], c[TSEQ][TH], t[TSEQ][TH], g[TSEQ][TF];
    const float *we = tiny_get(m, "embeddings.word_embeddings.weight"), *pe = tiny_get(m, "embeddings.position_embeddings.weight"),
                *te = tiny_get(m, "embeddings.token_type_embeddings.weight");
    const float *lw = tiny_get(m, "embeddings.LayerNorm.weight"), *lb = tiny_get(m, "embeddings.LayerNorm.bias");
#define LN(dst, src, w_, b_)                                                                      \
    for (int i = 0; i < L; i++) {                                                                 \
        double mu = 0, var = 0;                                                                   \
        for (int d = 0; d < TH; d++) mu += src[i][d];                                             \
        mu /= TH;                                                                                 \
        for (int d = 0; d < TH; d++) var += (src[i][d] - mu) * (src[i][d] - mu);                  \
        var /= TH;                                                                                \
        for (int d = 0; d < TH; d++) dst[i][d] = (src[i][d] - mu) / sqrt(var + 1e-12) * w_[d] + b_[d]; \
    }
    for (int i = 0; i < L; i++)
        for (int d = 0; d < TH; d++) t[i][d] = (double)we[ids[i] * TH + d] + pe[i * TH + d] + te[d];
    LN(x, t, lw, lb);
    for (int l = 0; l < TL; l++) {
        const float *P[16];
        for (int n = 0; n < 16; n++) {
            char nm[80];
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s", l, tiny_layer_names[n]);
            P[n] = tiny_get(m, nm);
        }
        for (int i = 0; i < L; i++)
            for (int o = 0; o < TH; o++) {
                double sq = P[1][o], sk = P[3][o], sv = P[5][o];
                for (int d = 0; d < TH; d++)
                    sq += P[0][o * TH + d] * x[i][d], sk += P[2][o * TH + d] * x[i][d], sv += P[4][o * TH + d] * x[i][d];
                q[i][o] = sq, k[i][o] = sk, v[i][o] = sv;
            }
        int hd = TH / TNH;
        for (int h = 0; h < TNH; h++)
            for (int i = 0; i < L; i++) {
                double s[TSEQ], mx = -1e300, z = 0;
                for (int j = 0; j < L; j++) {
                    s[j] = 0;
                    for (int d = 0; d < hd; d++) s[j] += q[i][h * hd + d] * k[j][h * hd + d];
                    s[j] /= sqrt((double)hd);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < L; j++) z += (s[j] = exp(s[j] - mx));
                for (int d = 0; d < hd; d++) {
                    double a = 0;
                    for (int j = 0; j < L; j++) a += s[j] / z * v[j][h * hd + d];
                    c[i][h * hd + d] = a;
                }
            }
        for (int i = 0; i < L; i++)
            for (int o = 0; o < TH; o++) {
                double a = P[7][o];
                for (int d = 0; d < TH; d++) a += P[6][o * TH + d] * c[i][d];
                t[i][o] = a + x[i][o];
            }
        LN(x, t, P[8], P[9]);
        for (int i = 0; i < L; i++)
            for (int o = 0; o < TF; o++) {
                double a = P[11][o];
                for (int d = 0; d < TH; d++) a += P[10][o * TH + d] * x[i][d];
                g[i][o] = 0.5 * a * (1 + erf(a / sqrt(2.0)));
            }
        for (int i = 0; i < L; i++)
            for (int o = 0; o < TH; o++) {
                double a = P[13][o];
                for (int d = 0; d < TF; d++) a += P[12][o * TF + d] * g[i][d];
                t[i][o] = a + x[i][o];
            }
        LN(x, t, P[14], P[15]);
    }
#undef LN
    double norm = 0;
    for (int d = 0; d < TH; d++) {
        out[d] = 0;
        for (int i = 0; i < L; i++) out[d] += x[i][d] / L;
        norm += out[d] * out[d];
    }
    for (int d = 0; d < TH; d++) out[d] /= sqrt(norm);
}

TEST(bert_tiny_model_forward) {
    tiny_model tm;
    tiny_make(&tm);
    const char *dir = tiny_folder(&tm, "tiny-st", 1);
    const char *crm = cr_test_path("tiny.crm");
    CHECK_OK(cr_bert_convert(dir, crm, "abc123"));
    cr_bert *m;
    CHECK_OK(cr_bert_load(&m, crm));
    const cr_bert_config *c = cr_bert_get_config(m);
    CHECK(c->n_layers == TL && c->hidden == TH && c->n_heads == TNH && c->ffn == TF && c->vocab == TV &&
          c->max_pos == TP && c->max_seq == TSEQ && c->normalize == 1 && c->ln_eps == 1e-12);
    /* texts of different lengths in one packed batch, one truncated at max_seq */
    const char *texts[] = {"hello unaffable", "", "a b a b a b a b a b a b a b a b", "creme, cafe! x [MASK]", "hello"};
    enum { NT = 5 };
    float out[NT * TH], one[TH];
    CHECK_OK(cr_bert_encode(m, texts, NT, out));
    double worst = 1;
    for (int t = 0; t < NT; t++) {
        int32_t ids[TSEQ + 4];
        int64_t n;
        CHECK_OK(cr_bert_tokenize(m, texts[t], ids, TSEQ + 4, &n));
        CHECK(n <= TSEQ);
        double ref[TH], dot = 0, nr = 0, no = 0;
        tiny_forward_ref(&tm, ids, (int)n, ref);
        for (int d = 0; d < TH; d++) {
            dot += ref[d] * out[t * TH + d], nr += ref[d] * ref[d], no += (double)out[t * TH + d] * out[t * TH + d];
            CHECK_NEAR(out[t * TH + d], ref[d], 2e-5);
        }
        CHECK_NEAR(no, 1, 1e-5);
        worst = fmin(worst, dot / sqrt(nr * no));
        /* alone it gives the same vector as in the batch */
        CHECK_OK(cr_bert_encode(m, &texts[t], 1, one));
        for (int d = 0; d < TH; d++) CHECK_NEAR(one[d], out[t * TH + d], 1e-6);
    }
    printf("     tiny BERT: min cosine to the double-precision reference %.9f\n", worst);
    int32_t ids[TSEQ];
    int64_t n;
    CHECK_OK(cr_bert_tokenize(m, texts[2], ids, 100, &n));
    CHECK_EQ(n, TSEQ);
    cr_bert_free(m);

    /* a folder without vocab.txt reads the vocabulary from tokenizer.json: same file contents */
    const char *dir2 = tiny_folder(&tm, "tiny-st-json", 0);
    const char *crm2 = cr_test_path("tiny2.crm");
    CHECK_OK(cr_bert_convert(dir2, crm2, NULL));
    CHECK_OK(cr_bert_load(&m, crm2));
    float out2[NT * TH];
    CHECK_OK(cr_bert_encode(m, texts, NT, out2));
    CHECK(!memcmp(out, out2, sizeof out));
    cr_bert_free(m);
    tiny_free(&tm);
}

TEST(bert_convert_refuses) {
    tiny_model tm;
    tiny_make(&tm);
    const char *dir = tiny_folder(&tm, "tiny-bad", 1);
    const char *crm = cr_test_path("bad.crm");
    char path[700];
    /* an activation this encoder does not compute */
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *cfg = cr_test_read(path, NULL);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"hidden_act\": \"relu\", \"hidden_size\": 8}");
    fclose(f);
    CHECK_STATUS(cr_bert_convert(dir, crm, NULL), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "hidden_act");
    /* heads that do not divide the hidden size */
    f = fopen(path, "w");
    fprintf(f, "%s", cfg);
    fclose(f);
    char *bad = strstr(cfg, "\"num_attention_heads\": 2");
    CHECK(bad);
    bad[strlen("\"num_attention_heads\": ")] = '3';
    f = fopen(path, "w");
    fprintf(f, "%s", cfg);
    fclose(f);
    CHECK_STATUS(cr_bert_convert(dir, crm, NULL), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "heads 3");
    bad[strlen("\"num_attention_heads\": ")] = '2';
    /* fewer layers in the config than in the weights */
    char *layers = strstr(cfg, "\"num_hidden_layers\": 2");
    layers[strlen("\"num_hidden_layers\": ")] = '1';
    f = fopen(path, "w");
    fprintf(f, "%s", cfg);
    fclose(f);
    CHECK_STATUS(cr_bert_convert(dir, crm, NULL), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "more layers");
    layers[strlen("\"num_hidden_layers\": ")] = '2';
    f = fopen(path, "w");
    fprintf(f, "%s", cfg);
    fclose(f);
    free(cfg);
    /* CLS pooling */
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"pooling_mode_mean_tokens\": false, \"pooling_mode_cls_token\": true}");
    fclose(f);
    CHECK_STATUS(cr_bert_convert(dir, crm, NULL), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "pooling_mode_mean_tokens");
    f = fopen(path, "w");
    fprintf(f, "{\"pooling_mode_mean_tokens\": true}");
    fclose(f);
    /* a vocabulary that disagrees with vocab_size */
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    f = fopen(path, "a");
    fprintf(f, "one-more\n");
    fclose(f);
    CHECK_STATUS(cr_bert_convert(dir, crm, NULL), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "27 tokens");
    CHECK(!cr_test_file_exists(crm));
    /* a missing folder */
    CHECK_STATUS(cr_bert_convert(cr_test_path("no-such-folder"), crm, NULL), CR_ERR_IO);
    tiny_free(&tm);
}

/* Every allocation of the loader, the tokenizer and the encoder failed in turn: CR_ERR_NOMEM and nothing leaked
 * (the harness checks). The converter is left out: jansson itself asserts on some allocation failures while
 * lexing (load.c lex_scan_string), so its JSON reading cannot be put through this. */
TEST(bert_alloc_failures) {
    tiny_model tm;
    tiny_make(&tm);
    const char *dir = tiny_folder(&tm, "tiny-alloc", 1);
    const char *crm = cr_test_path("alloc.crm");
    CHECK_OK(cr_bert_convert(dir, crm, NULL));
    const char *texts[] = {"hello unaffable", "creme, cafe! x [MASK]", ""};
    float out[3 * TH];
    int64_t k;
    for (k = 1; k < 100000; k++) {
        cr_alloc_fail_nth(k);
        cr_bert *m = NULL;
        int32_t ids[TSEQ];
        int64_t nt;
        cr_status st = cr_bert_load(&m, crm);
        if (st == CR_OK) st = cr_bert_tokenize(m, texts[0], ids, TSEQ, &nt);
        if (st == CR_OK) st = cr_bert_encode(m, texts, 3, out);
        cr_bert_free(m);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "load/encode, failing allocation %lld: %s: %s", (long long)k, cr_status_str(st),
                  cr_errmsg());
    }
    printf("     load, tokenize, encode: %lld allocations failed one at a time\n", (long long)k - 1);
    CHECK(k > 5);
    tiny_free(&tm);
}

TEST(bert_load_errors) {
    cr_bert *m;
    CHECK_STATUS(cr_bert_load(&m, cr_test_path("absent.crm")), CR_ERR_IO);
    CHECK_CONTAINS(cr_errhint(), "make models");
    /* a .crm of another model type */
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", 1));
    CHECK_OK(cr_filew_meta_str(w, "model", "pop"));
    const char *p = cr_test_path("pop.crm");
    CHECK_OK(cr_filew_commit(w, p));
    cr_filew_free(w);
    CHECK_STATUS(cr_bert_load(&m, p), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "'pop' model");
    /* the right type with impossible settings */
    CHECK_OK(cr_filew_new(&w, "CRM", 1));
    CHECK_OK(cr_filew_meta_str(w, "model", "minilm"));
    const char *keys[] = {"minilm.n_layers", "minilm.hidden", "minilm.n_heads", "minilm.ffn", "minilm.vocab",
                          "minilm.max_pos", "minilm.max_seq", "minilm.normalize"};
    int64_t vals[] = {1, 10, 3, 4, 5, 8, 8, 1};
    for (int i = 0; i < 8; i++) CHECK_OK(cr_filew_meta_i64(w, keys[i], vals[i]));
    CHECK_OK(cr_filew_meta_f64(w, "minilm.ln_eps", 1e-12));
    p = cr_test_path("bad-minilm.crm");
    CHECK_OK(cr_filew_commit(w, p));
    cr_filew_free(w);
    CHECK_STATUS(cr_bert_load(&m, p), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "impossible");
}

/* ---- all-MiniLM-L6-v2 against sentence-transformers ---- */

#define GOLDEN_TOKENS "tests/golden/minilm_tokens.txt"
#define GOLDEN_VECTORS "tests/golden/minilm_vectors.txt"
#define MAX_GOLDEN 128

typedef struct {
    int n;
    char *text[MAX_GOLDEN];
    int32_t ids[MAX_GOLDEN][256];
    int64_t n_ids[MAX_GOLDEN];
} golden;

static golden *golden_read(void) {
    char *buf = cr_test_read(GOLDEN_TOKENS, NULL);
    CHECK_MSG(buf, "%s missing", GOLDEN_TOKENS);
    golden *g = calloc(1, sizeof *g);
    char *save, *line = strtok_r(buf, "\n", &save);
    for (; line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        CR_ASSERT(tab && g->n < MAX_GOLDEN);
        *tab = '\0';
        json_error_t e;
        json_t *s = json_loads(line, JSON_DECODE_ANY, &e);
        CR_ASSERT(json_is_string(s));
        g->text[g->n] = strdup(json_string_value(s));
        json_decref(s);
        char *p = tab + 1, *end;
        int64_t k = 0;
        for (long v = strtol(p, &end, 10); end != p; p = end, v = strtol(p, &end, 10)) {
            CR_ASSERT(k < 256);
            g->ids[g->n][k++] = (int32_t)v;
        }
        g->n_ids[g->n++] = k;
    }
    free(buf);
    return g;
}

static void golden_free(golden *g) {
    for (int i = 0; i < g->n; i++) free(g->text[i]);
    free(g);
}

static cr_bert *minilm_or_skip(void) {
    struct stat sb;
    if (stat(CR_BERT_MODEL_PATH, &sb) != 0) cr_test_skip(CR_BERT_MODEL_PATH " absent: run make models");
    cr_bert *m;
    CHECK_OK(cr_bert_load(&m, CR_BERT_MODEL_PATH));
    return m;
}

TEST(minilm_golden_tokens) {
    cr_bert *m = minilm_or_skip();
    golden *g = golden_read();
    int match = 0;
    char first_bad[512] = "";
    for (int t = 0; t < g->n; t++) {
        int32_t ids[300];
        int64_t n;
        CHECK_OK(cr_bert_tokenize(m, g->text[t], ids, 300, &n));
        int same = n == g->n_ids[t] && !memcmp(ids, g->ids[t], (size_t)n * sizeof *ids);
        match += same;
        if (!same && !first_bad[0]) {
            int64_t k = 0;
            while (k < n && k < g->n_ids[t] && ids[k] == g->ids[t][k]) k++;
            snprintf(first_bad, sizeof first_bad, "text %d (%.60s): %lld vs %lld ids, first difference at %lld: %d vs %d",
                     t, g->text[t], (long long)n, (long long)g->n_ids[t], (long long)k, k < n ? ids[k] : -1,
                     k < g->n_ids[t] ? g->ids[t][k] : -1);
        }
    }
    printf("     token ids identical for %d of %d golden texts\n", match, g->n);
    int n = g->n;
    golden_free(g);
    cr_bert_free(m);
    CHECK_MSG(match == n, "%s", first_bad);
}

TEST(minilm_golden_vectors) {
    cr_bert *m = minilm_or_skip();
    golden *g = golden_read();
    int64_t H = cr_bert_get_config(m)->hidden;
    CHECK_EQ(H, 384);
    float *out = malloc((size_t)(g->n * H) * sizeof *out), *ref = malloc((size_t)(g->n * H) * sizeof *ref);
    char *vb = cr_test_read(GOLDEN_VECTORS, NULL);
    CHECK_MSG(vb, "%s missing", GOLDEN_VECTORS);
    char *p = vb, *end;
    for (int64_t k = 0; k < g->n * H; k++, p = end) {
        ref[k] = strtof(p, &end);
        CR_ASSERT(end != p);
    }
    free(vb);
    cr_bert_set_threads(m, 2);
    CHECK_OK(cr_bert_encode(m, (const char *const *)g->text, g->n, out));
    double min_cos = 1, max_diff = 0;
    int worst = 0;
    for (int t = 0; t < g->n; t++) {
        double dot = 0, na = 0, nb = 0;
        for (int64_t d = 0; d < H; d++) {
            double a = out[t * H + d], b = ref[t * H + d];
            dot += a * b, na += a * a, nb += b * b;
            max_diff = fmax(max_diff, fabs(a - b));
        }
        double cos = dot / sqrt(na * nb);
        if (cos < min_cos) min_cos = cos, worst = t;
    }
    printf("     %d golden texts: min cosine %.9f (1 - cos = %.2g, text %d), max |diff| %.3g\n", g->n, min_cos,
           1 - min_cos, worst, max_diff);
    CHECK_MSG(min_cos >= 0.9999, "text %d: cosine %.7f", worst, min_cos);
    /* one thread gives the same numbers */
    float *one = malloc((size_t)(g->n * H) * sizeof *one);
    cr_bert_set_threads(m, 1);
    CHECK_OK(cr_bert_encode(m, (const char *const *)g->text, g->n, one));
    CHECK_MSG(!memcmp(one, out, (size_t)(g->n * H) * sizeof *one), "1 and 2 threads give different bits");
    free(one), free(out), free(ref);
    golden_free(g);
    cr_bert_free(m);
}

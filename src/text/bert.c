/* bert.c — the BERT sentence encoder of bert.h: kernels, loading a converted model, the batched forward pass,
 * and the converter from a sentence-transformers folder (safetensors + JSON configs + vocabulary) to .crm.
 *
 * Forward pass for a chunk of texts packed back to back without padding (T tokens in all, hidden H, FFN F):
 *   X (T, H)  = LayerNorm(word[id] + position[p] + token_type[0])
 *   per layer:  Q, K, V (T, H) = X W^T + b                          three sgemm
 *               ctx (T, H): per text and head, softmax(Q K^T / sqrt(H / heads)) V over that text's tokens only,
 *                           which is what the attention mask does to a padded batch
 *               X = LayerNorm(X + ctx Wo^T + bo)                    sgemm, the residual preloaded into C
 *               G (T, F) = gelu(X Wi^T + bi)                        sgemm
 *               X = LayerNorm(X + G Wo2^T + bo2)                    sgemm
 *   out (n, H) = per text the mean of its rows of X, L2-normalised (eps 1e-12, as torch's F.normalize).
 * Chunks hold up to CHUNK_TOKENS tokens (one text at least); scratch is allocated once per encode call.
 *
 * Invariants: a loaded cr_bert is read-only (weights point into the read-only mapping of the .crm); every
 * array's dtype and count were checked against the metadata at load. */
#include "bert_impl.h"
#include "core/nn.h"

#include "crossrec/io.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* GELU, the one elementwise kernel that shows in profiles, is compiled for AVX-512 and AVX2 as well and picked
 * at load time by the CPU (GCC/clang function multiversioning), because the build targets baseline x86-64. It
 * has no reduction across vector lanes and crossrec builds with -std=c17 (no FMA contraction), so every
 * version gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(CR_NO_CLONES)
#define CR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CR_CLONES
#endif

#define CHUNK_TOKENS 512   /* tokens per forward chunk: sgemm is fastest while a chunk stays in L2 */
#define MODEL_NAME "minilm"

/* ---- kernels ---- */

void cr_bert_layernorm_ref(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        double mean = 0, var = 0;
        for (int64_t k = 0; k < dim; k++) mean += xr[k];
        mean /= (double)dim;
        for (int64_t k = 0; k < dim; k++) var += (xr[k] - mean) * (xr[k] - mean);
        var /= (double)dim;
        double inv = 1.0 / sqrt(var + eps);
        float *yr = y + r * dim;
        for (int64_t k = 0; k < dim; k++) yr[k] = (float)((xr[k] - mean) * inv * w[k] + b[k]);
    }
}

static void layernorm_row(float *y, const float *x, const float *w, const float *b, int64_t dim, float eps) {
    float sum = 0, var = 0;
    #pragma omp simd reduction(+ : sum)
    for (int64_t k = 0; k < dim; k++) sum += x[k];
    float mean = sum / (float)dim;
    #pragma omp simd reduction(+ : var)
    for (int64_t k = 0; k < dim; k++) var += (x[k] - mean) * (x[k] - mean);
    float inv = 1.0f / sqrtf(var / (float)dim + eps);
    #pragma omp simd
    for (int64_t k = 0; k < dim; k++) y[k] = (x[k] - mean) * inv * w[k] + b[k];
}

void cr_bert_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps) {
    for (int64_t r = 0; r < rows; r++) layernorm_row(y + r * dim, x + r * dim, w, b, dim, eps);
}

void cr_bert_gelu_ref(float *y, const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++) y[k] = (float)(0.5 * x[k] * (1.0 + erf(x[k] / sqrt(2.0))));
}

/* erf by Eigen's rational approximation (odd numerator of degree 13 over even denominator of degree 8, input
 * clamped to [-4, 4] where erf is +-1 in float): within 4.3e-7 of erf, branch-free, so the loop vectorizes,
 * unlike calls to erff. The test compares it with the double-precision reference. */
CR_CLONES static void gelu_kernel(float *y, const float *x, int64_t n) {
    #pragma omp simd
    for (int64_t k = 0; k < n; k++) {
        float v = x[k] * 0.70710678118654752f;
        v = v > 4.f ? 4.f : v < -4.f ? -4.f : v;
        float v2 = v * v;
        float p = v2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
        p = v2 * p - 2.10102402082508e-06f;
        p = v2 * p - 5.69250639462346e-05f;
        p = v2 * p - 7.34990630326855e-04f;
        p = v2 * p - 2.95459980854025e-03f;
        p = v2 * p - 1.60960333262415e-02f;
        float q = v2 * -1.45660718464996e-05f - 2.13374055278905e-04f;
        q = v2 * q - 1.68282697438203e-03f;
        q = v2 * q - 7.37332916720468e-03f;
        q = v2 * q - 1.42647390514189e-02f;
        y[k] = 0.5f * x[k] * (1.0f + v * p / q);
    }
}

/* A plain wrapper: clang 14 emits a multiversioned function's dispatcher only where it is called. */
void cr_bert_gelu(float *y, const float *x, int64_t n) { gelu_kernel(y, x, n); }

void cr_bert_softmax_ref(float *x, int64_t rows, int64_t dim) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        double mx = -INFINITY, s = 0;
        for (int64_t k = 0; k < dim; k++) mx = xr[k] > mx ? xr[k] : mx;
        for (int64_t k = 0; k < dim; k++) s += exp(xr[k] - mx);
        for (int64_t k = 0; k < dim; k++) xr[k] = (float)(exp(xr[k] - mx) / s);
    }
}

void cr_bert_softmax(float *x, int64_t rows, int64_t dim) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        float mx = xr[0];
        for (int64_t k = 1; k < dim; k++) mx = xr[k] > mx ? xr[k] : mx;
        float s = 0;
        for (int64_t k = 0; k < dim; k++) s += (xr[k] = expf(xr[k] - mx));
        float inv = 1.0f / s;
        for (int64_t k = 0; k < dim; k++) xr[k] *= inv;
    }
}

/* ---- the model ---- */

typedef struct {
    const float *wq, *bq, *wk, *bk, *wv, *bv;   /* (H, H), (H) */
    const float *wo, *bo, *ln1_w, *ln1_b;       /* attention output dense (H, H) and its LayerNorm */
    const float *wi, *bi;                       /* (F, H), (F) */
    const float *wo2, *bo2, *ln2_w, *ln2_b;     /* (H, F), (H) and the output LayerNorm */
} bert_layer;

#define MAX_LAYERS 64

struct cr_bert {
    cr_file *f;
    cr_bert_config cfg;
    const float *word;          /* (vocab, H) */
    const float *pos;           /* (max_pos, H) */
    const float *type0;         /* (H) token type 0 */
    const float *emb_ln_w, *emb_ln_b;
    bert_layer layers[MAX_LAYERS];
    cr_wordpiece *wp;
    int threads;
};

/* The names are HuggingFace's, so that `crossrec inspect` output reads like the original checkpoint. */
static const char *const layer_names[16] = {
    "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
    "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
};

/* Element counts of the 16 layer tensors, in layer_names order. */
static void layer_counts(const cr_bert_config *c, int64_t cnt[16]) {
    int64_t H = c->hidden, F = c->ffn;
    int64_t v[16] = {H * H, H, H * H, H, H * H, H, H * H, H, H, H, F * H, F, H * F, H, H, H};
    memcpy(cnt, v, sizeof v);
}

static cr_status check_config(const cr_bert_config *c, const char *path) {
    if (c->n_layers < 1 || c->n_layers > MAX_LAYERS || c->hidden < 1 || c->hidden > 8192 || c->n_heads < 1 ||
        c->hidden % c->n_heads || c->ffn < 1 || c->ffn > 65536 || c->vocab < 3 || c->vocab > 10000000 ||
        c->max_pos < 2 || c->max_pos > 65536 || c->max_seq < 2 || c->max_seq > c->max_pos || !(c->ln_eps > 0) ||
        c->ln_eps > 1)
        return cr_fail(CR_ERR_FORMAT,
                       "%s: impossible BERT settings (layers %lld, hidden %lld, heads %lld, ffn %lld, vocab %lld, "
                       "positions %lld, max_seq %lld, eps %g)",
                       path, (long long)c->n_layers, (long long)c->hidden, (long long)c->n_heads, (long long)c->ffn,
                       (long long)c->vocab, (long long)c->max_pos, (long long)c->max_seq, c->ln_eps);
    return CR_OK;
}

static cr_status get_f32(const cr_file *f, const char *name, int64_t count, const float **out) {
    const void *p;
    int64_t n;
    cr_status st = cr_file_get_array(f, name, CR_DT_F32, count, &p, &n);
    *out = p;
    return st;
}

cr_status cr_bert_load(cr_bert **out, const char *path) {
    *out = NULL;
    cr_bert *m = cr_calloc(1, sizeof *m);
    if (!m) return cr_fail(CR_ERR_NOMEM, "%s: out of memory", path);
    cr_status st = cr_file_open(&m->f, path, "CRM", CR_BERT_FILE_VERSION);
    if (st) {
        if (st == CR_ERR_IO && access(path, F_OK) != 0)
            cr_set_hint("`make models` downloads all-MiniLM-L6-v2 and converts it to %s", CR_BERT_MODEL_PATH);
        cr_free(m);
        return st;
    }
    const cr_file *f = m->f;
    const char *name;
    cr_bert_config *c = &m->cfg;
    int64_t normalize = 0;
    if ((st = cr_file_get_str(f, "model", &name))) goto fail;
    if (strcmp(name, MODEL_NAME)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: a '%s' model, not a text encoder ('%s')", path, name, MODEL_NAME);
        goto fail;
    }
    if ((st = cr_file_get_i64(f, "minilm.n_layers", &c->n_layers)) || (st = cr_file_get_i64(f, "minilm.hidden", &c->hidden)) ||
        (st = cr_file_get_i64(f, "minilm.n_heads", &c->n_heads)) || (st = cr_file_get_i64(f, "minilm.ffn", &c->ffn)) ||
        (st = cr_file_get_i64(f, "minilm.vocab", &c->vocab)) || (st = cr_file_get_i64(f, "minilm.max_pos", &c->max_pos)) ||
        (st = cr_file_get_i64(f, "minilm.max_seq", &c->max_seq)) || (st = cr_file_get_f64(f, "minilm.ln_eps", &c->ln_eps)) ||
        (st = cr_file_get_i64(f, "minilm.normalize", &normalize)) || (st = check_config(c, path)))
        goto fail;
    c->normalize = normalize != 0;
    int64_t H = c->hidden;
    const void *type;
    int64_t n_type;
    if ((st = get_f32(f, "embeddings.word_embeddings.weight", c->vocab * H, &m->word)) ||
        (st = get_f32(f, "embeddings.position_embeddings.weight", c->max_pos * H, &m->pos)) ||
        (st = cr_file_get_array(f, "embeddings.token_type_embeddings.weight", CR_DT_F32, -1, &type, &n_type)) ||
        (st = get_f32(f, "embeddings.LayerNorm.weight", H, &m->emb_ln_w)) ||
        (st = get_f32(f, "embeddings.LayerNorm.bias", H, &m->emb_ln_b)))
        goto fail;
    if (n_type < H || n_type % H) {   /* (type_vocab, H); only type 0 is used */
        st = cr_fail(CR_ERR_FORMAT, "%s: token type embeddings of %lld floats for hidden size %lld", path,
                     (long long)n_type, (long long)H);
        goto fail;
    }
    m->type0 = type;
    int64_t cnt[16];
    layer_counts(c, cnt);
    for (int64_t l = 0; l < c->n_layers; l++) {
        bert_layer *L = &m->layers[l];
        const float **dst[16] = {&L->wq, &L->bq, &L->wk, &L->bk, &L->wv, &L->bv, &L->wo, &L->bo, &L->ln1_w, &L->ln1_b,
                                 &L->wi, &L->bi, &L->wo2, &L->bo2, &L->ln2_w, &L->ln2_b};
        for (int k = 0; k < 16; k++) {
            char an[96];
            snprintf(an, sizeof an, "encoder.layer.%lld.%s", (long long)l, layer_names[k]);
            if ((st = get_f32(f, an, cnt[k], dst[k]))) goto fail;
        }
    }
    const void *vb, *vo;
    int64_t nb, no;
    if ((st = cr_file_get_array(f, "vocab.bytes", CR_DT_U8, -1, &vb, &nb)) ||
        (st = cr_file_get_array(f, "vocab.offsets", CR_DT_I64, c->vocab + 1, &vo, &no)))
        goto fail;
    if ((st = cr_wordpiece_new_pool(&m->wp, vb, nb, vo, c->vocab))) {
        cr_errmsg_prefix("%s", path);
        if (st == CR_ERR_ARG) st = CR_ERR_FORMAT;
        goto fail;
    }
    *out = m;
    return CR_OK;
fail:
    cr_bert_free(m);
    return st;
}

const cr_bert_config *cr_bert_get_config(const cr_bert *m) { return &m->cfg; }
const cr_wordpiece *cr_bert_vocab(const cr_bert *m) { return m->wp; }
void cr_bert_set_threads(cr_bert *m, int threads) { m->threads = threads > 0 ? threads : 0; }

void cr_bert_free(cr_bert *m) {
    if (!m) return;
    cr_wordpiece_free(m->wp);
    cr_file_close(m->f);
    cr_free(m);
}

cr_status cr_bert_tokenize(const cr_bert *m, const char *text, int32_t *ids, int64_t max, int64_t *n) {
    return cr_wordpiece_tokenize(m->wp, text, strlen(text), ids, max < m->cfg.max_seq ? max : m->cfg.max_seq, n);
}

/* ---- forward ---- */

/* One thread's buffers for a chunk of at most T_max tokens. */
typedef struct {
    float *x, *q, *k, *v, *ctx, *tmp;       /* (T_max, H) each */
    float *g;                               /* (T_max, F) */
    float *p;                               /* (max_seq, max_seq) one head's attention weights */
    int64_t *start;                         /* (T_max + 1) first row of each text */
} scratch;

static int64_t scratch_floats(const cr_bert_config *c, int64_t T_max) {
    return T_max * (6 * c->hidden + c->ffn) + c->max_seq * c->max_seq;
}

static void scratch_bind(scratch *S, float *buf, int64_t *start, const cr_bert_config *c, int64_t T_max) {
    int64_t H = c->hidden;
    S->x = buf, S->q = buf + T_max * H, S->k = buf + 2 * T_max * H, S->v = buf + 3 * T_max * H;
    S->ctx = buf + 4 * T_max * H, S->tmp = buf + 5 * T_max * H, S->g = buf + 6 * T_max * H;
    S->p = S->g + T_max * c->ffn;
    S->start = start;
}

/* C (T, out) += A (T, in) @ W^T, W (out, in) */
static void matmul_acc(float *c, const float *a, const float *w, int64_t T, int64_t in, int64_t out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)out, (int)in, 1.0f, a, (int)in, w, (int)in,
                1.0f, c, (int)out);
}

/* Rows of dst = bias (+ add when not NULL). */
static void fill_rows(float *dst, const float *bias, const float *add, int64_t T, int64_t dim) {
    for (int64_t t = 0; t < T; t++) {
        float *d = dst + t * dim;
        if (add) {
            const float *a = add + t * dim;
            #pragma omp simd
            for (int64_t k = 0; k < dim; k++) d[k] = bias[k] + a[k];
        } else {
            memcpy(d, bias, (size_t)dim * sizeof *d);
        }
    }
}

/* ctx of every (text, head) pair of the chunk: each text attends to its own tokens only. Per pair two small
 * sgemm: scores (L, L) = Q_h K_h^T * scale, then softmax rows, then ctx_h (L, hd) = P V_h. */
static void attention(const cr_bert *m, scratch *S, int64_t n_seq) {
    int64_t H = m->cfg.hidden, nh = m->cfg.n_heads, hd = H / nh;
    float scale = 1.0f / sqrtf((float)hd);
    float *p = S->p;
    for (int64_t s = 0; s < n_seq; s++) {
        int64_t r0 = S->start[s], L = S->start[s + 1] - r0;
        for (int64_t h = 0; h < nh; h++) {
            const float *q = S->q + r0 * H + h * hd, *k = S->k + r0 * H + h * hd, *v = S->v + r0 * H + h * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)L, (int)L, (int)hd, scale, q, (int)H, k, (int)H,
                        0.0f, p, (int)L);
            cr_bert_softmax(p, L, L);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)L, (int)hd, (int)L, 1.0f, p, (int)L, v, (int)H,
                        0.0f, S->ctx + r0 * H + h * hd, (int)H);
        }
    }
}

/* Runs the n_seq texts of one chunk on the calling thread: ids + s * max_seq holds text s's lens[s] ids; writes
 * rows of out. */
static void forward_chunk(const cr_bert *m, scratch *S, const int32_t *ids, const int64_t *lens, int64_t n_seq,
                          float *out) {
    const cr_bert_config *c = &m->cfg;
    int64_t H = c->hidden, F = c->ffn, ms = c->max_seq;
    float eps = (float)c->ln_eps;
    int64_t *start = S->start;
    start[0] = 0;
    for (int64_t s = 0; s < n_seq; s++) start[s + 1] = start[s] + lens[s];
    int64_t T = start[n_seq];
    for (int64_t s = 0; s < n_seq; s++)
        for (int64_t i = 0; i < lens[s]; i++) {
            float *xr = S->tmp + (start[s] + i) * H;
            const float *we = m->word + (int64_t)ids[s * ms + i] * H, *pe = m->pos + i * H;
            #pragma omp simd
            for (int64_t k = 0; k < H; k++) xr[k] = we[k] + pe[k] + m->type0[k];
        }
    cr_bert_layernorm(S->x, S->tmp, m->emb_ln_w, m->emb_ln_b, T, H, eps);
    for (int64_t l = 0; l < c->n_layers; l++) {
        const bert_layer *L = &m->layers[l];
        fill_rows(S->q, L->bq, NULL, T, H);
        fill_rows(S->k, L->bk, NULL, T, H);
        fill_rows(S->v, L->bv, NULL, T, H);
        matmul_acc(S->q, S->x, L->wq, T, H, H);
        matmul_acc(S->k, S->x, L->wk, T, H, H);
        matmul_acc(S->v, S->x, L->wv, T, H, H);
        attention(m, S, n_seq);
        fill_rows(S->tmp, L->bo, S->x, T, H);   /* residual + bias, then += ctx Wo^T */
        matmul_acc(S->tmp, S->ctx, L->wo, T, H, H);
        cr_bert_layernorm(S->x, S->tmp, L->ln1_w, L->ln1_b, T, H, eps);
        fill_rows(S->g, L->bi, NULL, T, F);
        matmul_acc(S->g, S->x, L->wi, T, H, F);
        cr_bert_gelu(S->g, S->g, T * F);
        fill_rows(S->tmp, L->bo2, S->x, T, H);
        matmul_acc(S->tmp, S->g, L->wo2, T, F, H);
        cr_bert_layernorm(S->x, S->tmp, L->ln2_w, L->ln2_b, T, H, eps);
    }
    for (int64_t s = 0; s < n_seq; s++) {
        float *o = out + s * H;
        double norm = 0;
        for (int64_t k = 0; k < H; k++) {
            double acc = 0;
            for (int64_t i = start[s]; i < start[s + 1]; i++) acc += S->x[i * H + k];
            o[k] = (float)(acc / (double)lens[s]);
            norm += (double)o[k] * o[k];
        }
        if (c->normalize) {
            double inv = 1.0 / fmax(sqrt(norm), 1e-12);
            for (int64_t k = 0; k < H; k++) o[k] = (float)(o[k] * inv);
        }
    }
}

static int n_threads(const cr_bert *m) {
#ifdef _OPENMP
    return m->threads > 0 ? m->threads : omp_get_max_threads();
#else
    (void)m;
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Texts tokenized per round: bounds the id buffer (BATCH_TEXTS * max_seq int32) for any n_texts. */
#define BATCH_TEXTS 4096

cr_status cr_bert_encode(const cr_bert *m, const char *const *texts, int64_t n_texts, float *out) {
    if (n_texts <= 0) return CR_OK;
    const cr_bert_config *c = &m->cfg;
    int64_t H = c->hidden, ms = c->max_seq;
    int th = n_threads(m);
    int64_t batch = n_texts < BATCH_TEXTS ? n_texts : BATCH_TEXTS;
    int64_t T_max = CHUNK_TOKENS > ms ? CHUNK_TOKENS : ms, per = scratch_floats(c, T_max);
    int32_t *ids = cr_malloc((size_t)(batch * ms) * sizeof *ids);
    int64_t *lens = cr_malloc((size_t)batch * sizeof *lens);
    int64_t *chunk = cr_malloc((size_t)(batch + 1) * sizeof *chunk);   /* first text of each chunk */
    float *buf = cr_malloc((size_t)(per * th) * sizeof *buf);
    int64_t *starts = cr_malloc((size_t)((T_max + 1) * th) * sizeof *starts);
    if (!ids || !lens || !chunk || !buf || !starts) {
        cr_free(ids), cr_free(lens), cr_free(chunk), cr_free(buf), cr_free(starts);
        return cr_fail(CR_ERR_NOMEM, "bert: out of memory for a batch of %lld texts on %d threads", (long long)batch, th);
    }
    cr_status st = CR_OK;
    for (int64_t b0 = 0; b0 < n_texts && !st; b0 += batch) {
        int64_t nb = n_texts - b0 < batch ? n_texts - b0 : batch;
        int failed = 0;
        #pragma omp parallel for num_threads(th) schedule(dynamic, 16) reduction(| : failed)
        for (int64_t i = 0; i < nb; i++)
            failed |= cr_wordpiece_tokenize(m->wp, texts[b0 + i], strlen(texts[b0 + i]), ids + i * ms, ms, &lens[i]) != CR_OK;
        if (failed) {
            st = cr_fail(CR_ERR_NOMEM, "bert: out of memory while tokenizing");
            break;
        }
        /* Whole texts packed into chunks of at most T_max tokens; each chunk runs on one thread with
         * single-threaded sgemm, which on small matrices beats splitting each product across threads. */
        int64_t n_chunks = 0;
        for (int64_t s = 0; s < nb;) {
            chunk[n_chunks++] = s;
            for (int64_t T = 0; s < nb && T + lens[s] <= T_max;) T += lens[s++];
        }
        chunk[n_chunks] = nb;
        int workers = n_chunks < th ? (int)n_chunks : th;
        (void)workers;   /* unused without OpenMP */
        cr_blas_single_enter();   /* encoding runs every product single-threaded: the threads are ours */
        #pragma omp parallel num_threads(workers)
        {
            scratch S;
            int id = thread_id();
            scratch_bind(&S, buf + per * id, starts + (T_max + 1) * id, c, T_max);
            #pragma omp for schedule(dynamic, 1)
            for (int64_t k = 0; k < n_chunks; k++) {
                int64_t s0 = chunk[k], s1 = chunk[k + 1];
                forward_chunk(m, &S, ids + s0 * ms, lens + s0, s1 - s0, out + (b0 + s0) * H);
            }
        }
        cr_blas_single_leave();
    }
    cr_free(ids), cr_free(lens), cr_free(chunk), cr_free(buf), cr_free(starts);
    return st;
}

/* ---- conversion from a sentence-transformers folder ---- */

static json_t *load_json(const char *dir, const char *file, int required, cr_status *st) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    *st = CR_OK;
    if (!required && access(path, F_OK) != 0) return NULL;
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        *st = cr_fail(json_error_code(&e) == json_error_out_of_memory ? CR_ERR_NOMEM
                      : access(path, F_OK)                            ? CR_ERR_IO
                                                                      : CR_ERR_PARSE,
                      "%s:%d: %s", path, e.line, e.text);
    else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        *st = cr_fail(CR_ERR_PARSE, "%s: not a JSON object", path);
    }
    return j;
}

static cr_status json_i64(json_t *o, const char *file, const char *key, int64_t *v) {
    json_t *x = json_object_get(o, key);
    if (!json_is_integer(x)) return cr_fail(CR_ERR_PARSE, "%s: \"%s\" missing or not an integer", file, key);
    *v = json_integer_value(x);
    return CR_OK;
}

/* Fails unless o[key] is absent (when allowed) or equal to the string / boolean wanted. */
static cr_status json_want_str(json_t *o, const char *file, const char *key, const char *want, int absent_ok) {
    json_t *x = json_object_get(o, key);
    if (!x && absent_ok) return CR_OK;
    if (!json_is_string(x) || strcmp(json_string_value(x), want))
        return cr_fail(CR_ERR_FORMAT, "%s: \"%s\" must be \"%s\" for crossrec's BERT encoder", file, key, want);
    return CR_OK;
}

static cr_status json_want_bool(json_t *o, const char *file, const char *key, int want, int absent_ok) {
    json_t *x = json_object_get(o, key);
    if (!x && absent_ok) return CR_OK;
    if (!json_is_boolean(x) || json_is_true(x) != want)
        return cr_fail(CR_ERR_FORMAT, "%s: \"%s\" must be %s for crossrec's BERT encoder", file, key, want ? "true" : "false");
    return CR_OK;
}

typedef struct {
    char *bytes;
    int64_t *off;
    int64_t n, n_bytes;
} vocab_buf;

static void vocab_free(vocab_buf *v) {
    cr_free(v->bytes);
    cr_free(v->off);
}

/* vocab.txt: one token per line ('\n', a trailing '\r' dropped), id = line number. */
static cr_status vocab_from_txt(vocab_buf *v, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return cr_fail(CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cr_strpool p;
    cr_strpool_init(&p);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    cr_status st = CR_OK;
    while (!st && (len = getline(&line, &cap, fp)) >= 0) {
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        if (memchr(line, 0, (size_t)len)) st = cr_fail(CR_ERR_PARSE, "%s:%lld: NUL byte in a token", path, (long long)p.n + 1);
        else st = cr_strpool_add(&p, line, (size_t)len, NULL);
    }
    free(line);
    fclose(fp);
    if (!st && p.n == 0) st = cr_fail(CR_ERR_PARSE, "%s: empty vocabulary", path);
    if (st) {
        cr_strpool_free(&p);
        return st;
    }
    v->bytes = p.data, v->off = p.off, v->n = p.n, v->n_bytes = p.n_bytes;
    return CR_OK;
}

/* tokenizer.json: model.vocab maps token -> id; the ids must be 0 .. n-1, each once. */
static cr_status vocab_from_json(vocab_buf *v, json_t *tj, const char *path) {
    json_t *vocab = json_object_get(json_object_get(tj, "model"), "vocab");
    if (!json_is_object(vocab) || !json_object_size(vocab))
        return cr_fail(CR_ERR_PARSE, "%s: no model.vocab object", path);
    int64_t n = (int64_t)json_object_size(vocab);
    const char **tok = cr_calloc((size_t)n, sizeof *tok);
    if (!tok) return cr_fail(CR_ERR_NOMEM, "%s: out of memory", path);
    const char *key;
    json_t *val;
    cr_status st = CR_OK;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= n || tok[id]) {
            st = cr_fail(CR_ERR_PARSE, "%s: token '%s' has id %lld, not a unique id below %lld", path, key, (long long)id, (long long)n);
            break;
        }
        tok[id] = key;
    }
    cr_strpool p;
    cr_strpool_init(&p);
    for (int64_t i = 0; i < n && !st; i++) st = cr_strpool_add(&p, tok[i], strlen(tok[i]), NULL);
    cr_free(tok);
    if (st) {
        cr_strpool_free(&p);
        return st;
    }
    v->bytes = p.data, v->off = p.off, v->n = p.n, v->n_bytes = p.n_bytes;
    return CR_OK;
}

typedef struct {
    void *map;
    size_t len;
} mapping;

static cr_status map_file(mapping *mp, const char *path) {
    mp->map = NULL, mp->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cr_fail(CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size == 0) {
        close(fd);
        return cr_fail(CR_ERR_IO, "%s: not a non-empty regular file", path);
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return cr_fail(CR_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    mp->map = p, mp->len = (size_t)sb.st_size;
    return CR_OK;
}

/* Checks one safetensors tensor's dtype and shape (rows, cols; cols 0 for a vector) and adds it. */
static cr_status add_tensor(cr_filew *w, const cr_safetensors *sf, const char *path, const char *name, int64_t rows,
                            int64_t cols) {
    const cr_st_tensor *t = cr_safetensors_find(sf, name);
    if (!t) return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' is missing", path, name);
    int ok = t->dtype == CR_ST_F32 &&
             (cols ? t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols : t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
        char shape[128] = "";
        for (int k = 0, n = 0; k < t->ndim && n < (int)sizeof shape - 24; k++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' is %s [%s], expected F32 [%lld%s%.0lld]", path, name,
                       cr_st_dtype_name(t->dtype), shape, (long long)rows, cols ? ", " : "", (long long)cols);
    }
    return cr_filew_array(w, name, CR_DT_F32, t->data, t->count);
}

cr_status cr_bert_convert(const char *dir, const char *out_path, const char *source_sha256) {
    cr_status st = CR_OK;
    json_t *cfg = NULL, *sbert = NULL, *tokc = NULL, *pool = NULL, *mods = NULL, *tokj = NULL;
    mapping mp = {NULL, 0};
    cr_safetensors *sf = NULL;
    cr_filew *w = NULL;
    vocab_buf vb = {NULL, NULL, 0, 0};
    cr_bert_config c;
    memset(&c, 0, sizeof c);
    char path[4096];

    if (!(cfg = load_json(dir, "config.json", 1, &st))) goto done;
    if (!(sbert = load_json(dir, "sentence_bert_config.json", 1, &st))) goto done;
    if (!(tokc = load_json(dir, "tokenizer_config.json", 1, &st))) goto done;
    if (!(pool = load_json(dir, "1_Pooling/config.json", 0, &st)) && st) goto done;
    if ((st = json_want_str(cfg, "config.json", "model_type", "bert", 1)) ||
        (st = json_want_str(cfg, "config.json", "hidden_act", "gelu", 0)) ||
        (st = json_want_str(cfg, "config.json", "position_embedding_type", "absolute", 1)) ||
        (st = json_i64(cfg, "config.json", "num_hidden_layers", &c.n_layers)) ||
        (st = json_i64(cfg, "config.json", "hidden_size", &c.hidden)) ||
        (st = json_i64(cfg, "config.json", "num_attention_heads", &c.n_heads)) ||
        (st = json_i64(cfg, "config.json", "intermediate_size", &c.ffn)) ||
        (st = json_i64(cfg, "config.json", "vocab_size", &c.vocab)) ||
        (st = json_i64(cfg, "config.json", "max_position_embeddings", &c.max_pos)) ||
        (st = json_i64(sbert, "sentence_bert_config.json", "max_seq_length", &c.max_seq)) ||
        (st = json_want_bool(tokc, "tokenizer_config.json", "do_lower_case", 1, 1)) ||
        (st = json_want_bool(tokc, "tokenizer_config.json", "tokenize_chinese_chars", 1, 1)))
        goto done;
    json_t *eps = json_object_get(cfg, "layer_norm_eps"), *sa = json_object_get(tokc, "strip_accents");
    c.ln_eps = json_is_number(eps) ? json_number_value(eps) : 1e-12;
    if (sa && !json_is_null(sa) && !json_is_true(sa)) {
        st = cr_fail(CR_ERR_FORMAT, "tokenizer_config.json: \"strip_accents\" must be null or true for crossrec's BERT encoder");
        goto done;
    }
    if (pool) {
        static const char *const others[] = {"pooling_mode_cls_token", "pooling_mode_max_tokens",
                                             "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                                             "pooling_mode_lasttoken"};
        if ((st = json_want_bool(pool, "1_Pooling/config.json", "pooling_mode_mean_tokens", 1, 0))) goto done;
        for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
            if ((st = json_want_bool(pool, "1_Pooling/config.json", others[i], 0, 1))) goto done;
    }
    /* modules.json lists the pipeline (Transformer, Pooling, Normalize); without it, no normalisation. */
    c.normalize = 0;
    snprintf(path, sizeof path, "%s/modules.json", dir);
    if (access(path, F_OK) == 0) {
        json_error_t e;
        if (!(mods = json_load_file(path, 0, &e))) {
            st = cr_fail(CR_ERR_PARSE, "%s:%d: %s", path, e.line, e.text);
            goto done;
        }
        if (!json_is_array(mods)) {
            st = cr_fail(CR_ERR_PARSE, "%s: not a list of modules", path);
            goto done;
        }
        size_t i;
        json_t *mod;
        json_array_foreach(mods, i, mod) {
            const char *type = json_string_value(json_object_get(mod, "type"));
            size_t tl = type ? strlen(type) : 0;
            if (tl >= 9 && !strcmp(type + tl - 9, "Normalize")) c.normalize = 1;
        }
    }
    if ((st = check_config(&c, "config.json"))) goto done;

    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (access(path, F_OK) == 0) {
        if ((st = vocab_from_txt(&vb, path))) goto done;
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if (!(tokj = load_json(dir, "tokenizer.json", 1, &st))) goto done;
        if ((st = vocab_from_json(&vb, tokj, path))) goto done;
    }
    if (vb.n != c.vocab) {
        st = cr_fail(CR_ERR_FORMAT, "%s: %lld tokens, config.json says vocab_size %lld", path, (long long)vb.n, (long long)c.vocab);
        goto done;
    }
    cr_wordpiece *wp;   /* refuses duplicates and a vocabulary without [UNK] [CLS] [SEP] */
    if ((st = cr_wordpiece_new_pool(&wp, vb.bytes, vb.n_bytes, vb.off, vb.n))) {
        cr_errmsg_prefix("%s", path);
        goto done;
    }
    cr_wordpiece_free(wp);

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((st = map_file(&mp, path)) || (st = cr_safetensors_parse(&sf, mp.map, mp.len, path))) goto done;
    int64_t H = c.hidden, F = c.ffn, type_rows = 0;
    const cr_st_tensor *tt = cr_safetensors_find(sf, "embeddings.token_type_embeddings.weight");
    if (tt && tt->ndim == 2) type_rows = tt->shape[0];
    char extra[64];
    snprintf(extra, sizeof extra, "encoder.layer.%lld.attention.self.query.weight", (long long)c.n_layers);
    if (cr_safetensors_find(sf, extra)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: more layers than num_hidden_layers = %lld in config.json", path, (long long)c.n_layers);
        goto done;
    }
    if ((st = cr_filew_new(&w, "CRM", CR_BERT_FILE_VERSION)) || (st = cr_filew_meta_str(w, "model", MODEL_NAME)) ||
        (st = cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING)) ||
        /* the generic .crm keys, zero: not a recommender, so cr_model_load names the type instead */
        (st = cr_filew_meta_i64(w, "n_users", 0)) || (st = cr_filew_meta_i64(w, "n_items", 0)) ||
        (st = cr_filew_meta_i64(w, "n_domains", 0)) || (st = cr_filew_meta_i64(w, "dataset_crc", 0)) ||
        (st = cr_filew_meta_i64(w, "minilm.n_layers", c.n_layers)) || (st = cr_filew_meta_i64(w, "minilm.hidden", H)) ||
        (st = cr_filew_meta_i64(w, "minilm.n_heads", c.n_heads)) || (st = cr_filew_meta_i64(w, "minilm.ffn", F)) ||
        (st = cr_filew_meta_i64(w, "minilm.vocab", c.vocab)) || (st = cr_filew_meta_i64(w, "minilm.max_pos", c.max_pos)) ||
        (st = cr_filew_meta_i64(w, "minilm.max_seq", c.max_seq)) || (st = cr_filew_meta_f64(w, "minilm.ln_eps", c.ln_eps)) ||
        (st = cr_filew_meta_i64(w, "minilm.normalize", c.normalize)) ||
        (st = cr_filew_meta_str(w, "minilm.tokenizer", "bert-uncased-wordpiece")) ||
        (st = cr_filew_meta_str(w, "minilm.pooling", "mean")) ||
        (st = cr_filew_meta_str(w, "minilm.source_sha256", source_sha256 ? source_sha256 : "")) ||
        (st = add_tensor(w, sf, path, "embeddings.word_embeddings.weight", c.vocab, H)) ||
        (st = add_tensor(w, sf, path, "embeddings.position_embeddings.weight", c.max_pos, H)) ||
        (st = add_tensor(w, sf, path, "embeddings.token_type_embeddings.weight", type_rows > 0 ? type_rows : 2, H)) ||
        (st = add_tensor(w, sf, path, "embeddings.LayerNorm.weight", H, 0)) ||
        (st = add_tensor(w, sf, path, "embeddings.LayerNorm.bias", H, 0)))
        goto done;
    int64_t rows[16] = {H, H, H, H, H, H, H, H, H, H, F, F, H, H, H, H};
    int64_t cols[16] = {H, 0, H, 0, H, 0, H, 0, 0, 0, H, 0, F, 0, 0, 0};
    for (int64_t l = 0; l < c.n_layers; l++)
        for (int k = 0; k < 16; k++) {
            char tn[128];
            snprintf(tn, sizeof tn, "encoder.layer.%lld.%s", (long long)l, layer_names[k]);
            if ((st = add_tensor(w, sf, path, tn, rows[k], cols[k]))) goto done;
        }
    if ((st = cr_filew_array(w, "vocab.bytes", CR_DT_U8, vb.bytes, vb.n_bytes)) ||
        (st = cr_filew_array(w, "vocab.offsets", CR_DT_I64, vb.off, vb.n + 1)) || (st = cr_filew_commit(w, out_path)))
        goto done;
done:
    cr_filew_free(w);
    cr_safetensors_free(sf);
    if (mp.map) munmap(mp.map, mp.len);
    vocab_free(&vb);
    json_decref(cfg), json_decref(sbert), json_decref(tokc), json_decref(pool), json_decref(mods), json_decref(tokj);
    return st;
}

/* embed.c — dense item vectors from item text by one of four representations (crossrec/embed.h):
 * hash-tfidf (TF-IDF buckets + a sparse random sign projection), minilm (the BERT encoder), word vectors and
 * crossrec's pretrained text encoder.
 *
 * The projection of hash-tfidf: with hc = mix(seed ^ b) and hs = mix(hc) (mix: splitmix64's finaliser), bucket
 * b adds (bit j of hs ? -w : +w) to column ((hc >> 16j) & 0xffff) * dim >> 16 for j < CR_EMBED_JL_NNZ. The
 * matrix is computed, not stored: a stored one (n_buckets x 4 entries, 16 MiB for 2^20 buckets) costs a cache
 * miss per non-zero and was 5x slower. Two of a bucket's columns may coincide (probability ~6/dim); they then
 * add up or cancel, which keeps the projection a sparse random sign matrix. Rows are then L2-normalised, which
 * also removes the usual 1/sqrt(nnz) scale. Each row is computed by one thread in a fixed order: results do not
 * depend on the thread count. */
#include "crossrec/embed.h"

#include "crossrec/bert.h"
#include "crossrec/textenc.h"
#include "crossrec/wordvec.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

cr_embed_params cr_embed_default_params(void) {
    cr_embed_params p = {0};
    p.method = CR_EMBED_HASH_TFIDF;
    p.fields = CR_TEXT_FIELD_TITLE;
    p.dim = 256;
    p.seed = 42;
    p.batch = 1024;
    return p;
}

const char *cr_embed_method_name(cr_embed_method m) {
    switch (m) {
    case CR_EMBED_HASH_TFIDF: return "hash-tfidf";
    case CR_EMBED_MINILM: return "minilm";
    case CR_EMBED_WORDVEC: return "wordvec";
    case CR_EMBED_PRETRAINED: return "pretrained";
    }
    return "?";
}

cr_status cr_embed_parse_method(const char *spec, cr_embed_params *p) {
    if (!spec) spec = "";
    if (!strcmp(spec, "hash-tfidf")) {
        p->method = CR_EMBED_HASH_TFIDF;
        p->path = NULL;
    } else if (!strcmp(spec, "minilm")) {
        p->method = CR_EMBED_MINILM;
        p->path = NULL;
    } else if (!strncmp(spec, "minilm:", 7) && spec[7]) {
        p->method = CR_EMBED_MINILM;
        p->path = spec + 7;
    } else if (!strncmp(spec, "wordvec:", 8) && spec[8]) {
        p->method = CR_EMBED_WORDVEC;
        p->path = spec + 8;
    } else if (!strncmp(spec, "pretrained:", 11) && spec[11]) {
        p->method = CR_EMBED_PRETRAINED;
        p->path = spec + 11;
    } else {
        cr_status st;
        if (!strcmp(spec, "wordvec") || !strcmp(spec, "wordvec:") || !strcmp(spec, "pretrained") || !strcmp(spec, "pretrained:"))
            st = cr_fail(CR_ERR_ARG, "method '%.*s' needs a file: %.*s:FILE", (int)strcspn(spec, ":"), spec,
                         (int)strcspn(spec, ":"), spec);
        else
            st = cr_fail(CR_ERR_ARG, "unknown text method '%s'", spec);
        cr_set_hint("methods: hash-tfidf, minilm, wordvec:FILE (a word2vec/GloVe/fastText .vec or a trained .crm), "
                    "pretrained:FILE.crm (from `crossrec pretrain`)");
        return st;
    }
    return CR_OK;
}

static int pick_threads(int want, int64_t n) {
#ifdef _OPENMP
    int64_t t = want > 0 ? want : omp_get_max_threads();
#else
    int64_t t = 1;
    (void)want;
#endif
    if (t > n) t = n;
    return t < 1 ? 1 : (int)t;
}

static void l2_normalize(float *x, int64_t dim) {
    double s = 0;
    for (int64_t j = 0; j < dim; j++) s += (double)x[j] * x[j];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int64_t j = 0; j < dim; j++) x[j] *= inv;
    }
}

/* splitmix64's finaliser: a bijection on 64 bits with full avalanche. */
static inline uint64_t jl_mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

cr_status cr_embed_project(const cr_text_csr *m, int64_t dim, uint64_t seed, int threads, float *out) {
    if (dim < 1 || dim > CR_EMBED_MAX_DIM)
        return cr_fail(CR_ERR_ARG, "dim %lld out of range 1..%d", (long long)dim, CR_EMBED_MAX_DIM);
    int64_t n_rows = m->n_rows, n_cols = m->n_cols;
    memset(out, 0, (size_t)n_rows * (size_t)dim * sizeof *out);
    int nt = pick_threads(threads, n_rows / 256 + 1);
    if (n_cols <= dim) {
        /* Few buckets: the TF-IDF matrix itself, densified. */
        CR_OMP(omp parallel for num_threads(nt) schedule(static, 256))
        for (int64_t r = 0; r < n_rows; r++) {
            float *o = out + r * dim;
            for (int64_t e = m->row_ptr[r]; e < m->row_ptr[r + 1]; e++) o[m->col[e]] += m->val[e];
            l2_normalize(o, dim);
        }
        return CR_OK;
    }
    CR_OMP(omp parallel for num_threads(nt) schedule(static, 256))
    for (int64_t r = 0; r < n_rows; r++) {
        float *o = out + r * dim;
        for (int64_t e = m->row_ptr[r]; e < m->row_ptr[r + 1]; e++) {
            /* The bucket's CR_EMBED_JL_NNZ (column, sign) pairs, from one 64-bit hash: 16 bits per column
             * (multiply-shift onto 0..dim-1) and 4 sign bits from a second hash. */
            uint64_t hc = jl_mix(seed ^ (uint64_t)(uint32_t)m->col[e]);
            uint64_t hs = jl_mix(hc);
            /* Branch-free signs (a random branch mispredicts half the time): +v and -v in a table. */
            const float pm[2] = {m->val[e], -m->val[e]};
            for (int j = 0; j < CR_EMBED_JL_NNZ; j++) {
                uint64_t c = (((hc >> (16 * j)) & 0xffff) * (uint64_t)dim) >> 16;
                o[c] += pm[(hs >> j) & 1];
            }
        }
        l2_normalize(o, dim);
    }
    return CR_OK;
}

static cr_status embed_hash_tfidf(const cr_dataset *d, const cr_embed_params *p, float **out, int64_t *dim) {
    cr_text_hashing h = cr_text_default_hashing();
    cr_text_matrix_params mp = cr_text_default_matrix_params();
    mp.fields = p->fields;
    mp.threads = p->threads;
    cr_text_csr m = {0};
    cr_status st = cr_text_item_matrix(d, &h, &mp, &m, NULL);
    if (st) return st;
    float *o = cr_malloc((size_t)(m.n_rows ? m.n_rows : 1) * (size_t)p->dim * sizeof *o);
    if (!o) {
        cr_text_csr_free(&m);
        return cr_fail(CR_ERR_NOMEM, "out of memory for %lld x %lld item vectors", (long long)m.n_rows, (long long)p->dim);
    }
    st = cr_embed_project(&m, p->dim, p->seed, p->threads, o);
    cr_text_csr_free(&m);
    if (st) {
        cr_free(o);
        return st;
    }
    *out = o;
    *dim = p->dim;
    return CR_OK;
}

static cr_status embed_minilm(const cr_dataset *d, const cr_embed_params *p, float **out, int64_t *dim) {
    cr_bert *m;
    cr_status st = cr_bert_load(&m, p->path ? p->path : CR_EMBED_DEFAULT_MINILM);
    if (st) return st;
    cr_bert_set_threads(m, p->threads);
    int64_t n = cr_dataset_inter(d)->n_items, hid = cr_bert_get_config(m)->hidden;
    int64_t batch = p->batch > 0 ? p->batch : 1024;
    float *o = cr_malloc((size_t)(n ? n : 1) * (size_t)hid * sizeof *o);
    const char **texts = cr_malloc((size_t)batch * sizeof *texts);
    char **owned = cr_calloc((size_t)batch, sizeof *owned);
    if (!o || !texts || !owned) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory for %lld x %lld item vectors", (long long)n, (long long)hid);
        goto done;
    }
    int both = (p->fields & CR_TEXT_FIELD_TITLE) && (p->fields & CR_TEXT_FIELD_TEXT);
    for (int64_t s = 0; s < n && !st; s += batch) {
        int64_t e = s + batch < n ? s + batch : n;
        for (int64_t i = s; i < e; i++) {
            const char *title = cr_dataset_item_title(d, (int32_t)i), *text = cr_dataset_item_text(d, (int32_t)i);
            if (!both) {
                texts[i - s] = (p->fields & CR_TEXT_FIELD_TEXT) ? text : title;
                continue;
            }
            /* Title and text joined by a space, as the other methods read both fields. */
            size_t a = strlen(title), b = strlen(text);
            char *j = cr_malloc(a + b + 2);
            if (!j) {
                st = cr_fail(CR_ERR_NOMEM, "out of memory joining item texts");
                break;
            }
            memcpy(j, title, a);
            j[a] = ' ';
            memcpy(j + a + 1, text, b + 1);
            owned[i - s] = j;
            texts[i - s] = j;
        }
        if (!st) st = cr_bert_encode(m, texts, e - s, o + s * hid);
        if (!st) cr_progress_report(&p->progress, e, n);
        for (int64_t i = 0; i < batch; i++) {
            cr_free(owned[i]);
            owned[i] = NULL;
        }
    }
done:
    cr_free(texts);
    cr_free(owned);
    cr_bert_free(m);
    if (st) {
        cr_free(o);
        return st;
    }
    *out = o;
    *dim = hid;
    return CR_OK;
}

static cr_status embed_wordvec(const cr_dataset *d, const cr_embed_params *p, float **out, int64_t *dim) {
    if (!p->path) return cr_fail(CR_ERR_ARG, "method 'wordvec' needs a file: wordvec:FILE");
    cr_wordvec *wv;
    cr_status st = cr_wordvec_load(&wv, p->path, NULL);
    if (st) return st;
    int64_t n = cr_dataset_inter(d)->n_items, dv = cr_wordvec_dim(wv);
    float *o = cr_malloc((size_t)(n ? n : 1) * (size_t)dv * sizeof *o);
    if (!o) {
        cr_wordvec_free(wv);
        return cr_fail(CR_ERR_NOMEM, "out of memory for %lld x %lld item vectors", (long long)n, (long long)dv);
    }
    cr_wordvec_item_params ip = cr_wordvec_default_item_params();
    ip.fields = p->fields;
    ip.threads = p->threads;
    st = cr_wordvec_item_matrix(wv, d, &ip, o, NULL);
    cr_wordvec_free(wv);
    if (st) {
        cr_free(o);
        return st;
    }
    *out = o;
    *dim = dv;
    return CR_OK;
}

static cr_status embed_pretrained(const cr_dataset *d, const cr_embed_params *p, float **out, int64_t *dim) {
    if (!p->path) return cr_fail(CR_ERR_ARG, "method 'pretrained' needs a file: pretrained:FILE");
    cr_textenc *e;
    cr_status st = cr_textenc_load(&e, p->path);
    if (st) return st;
    cr_textenc_set_threads(e, p->threads);
    int64_t n = cr_dataset_inter(d)->n_items, de = cr_textenc_dim(e);
    float *o = cr_malloc((size_t)(n ? n : 1) * (size_t)de * sizeof *o);
    if (!o) st = cr_fail(CR_ERR_NOMEM, "out of memory for %lld x %lld item vectors", (long long)n, (long long)de);
    else st = cr_textenc_encode_items(e, d, p->fields, o);
    cr_textenc_free(e);
    if (st) {
        cr_free(o);
        return st;
    }
    *out = o;
    *dim = de;
    return CR_OK;
}

cr_status cr_embed_items(const cr_dataset *d, const cr_embed_params *p, float **out, int64_t *dim) {
    *out = NULL;
    *dim = 0;
    cr_embed_params q = p ? *p : cr_embed_default_params();
    if (!(q.fields & (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT)) || (q.fields & ~(CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT)))
        return cr_fail(CR_ERR_ARG, "fields must be title, text or both");
    if (q.threads < 0) return cr_fail(CR_ERR_ARG, "threads must be >= 0");
    cr_status st;
    switch (q.method) {
    case CR_EMBED_HASH_TFIDF:
        if (q.dim < 1 || q.dim > CR_EMBED_MAX_DIM)
            return cr_fail(CR_ERR_ARG, "dim %lld out of range 1..%d", (long long)q.dim, CR_EMBED_MAX_DIM);
        st = embed_hash_tfidf(d, &q, out, dim);
        break;
    case CR_EMBED_MINILM: st = embed_minilm(d, &q, out, dim); break;
    case CR_EMBED_WORDVEC: st = embed_wordvec(d, &q, out, dim); break;
    case CR_EMBED_PRETRAINED: st = embed_pretrained(d, &q, out, dim); break;
    default: return cr_fail(CR_ERR_ARG, "unknown text method %d", (int)q.method);
    }
    if (!st) cr_progress_report(&q.progress, cr_dataset_inter(d)->n_items, cr_dataset_inter(d)->n_items);
    return st;
}

/* sgns.c — crossrec's own word vectors: skip-gram with negative sampling over a catalogue's text, with
 * fastText's subword hashing; and their .crm file (cr_wordvec_save, cr_wordvec_load_crm).
 *
 * Model (fastText's skipgram, Bojanowski et al. 2017): one hashed input table of B rows (the text hashing's
 * buckets) holds words and character n-grams alike; a vocabulary word's input vector is the mean of the rows of
 * its own bucket and of its n-grams' buckets (its "subwords", stored per word in sub_ptr / sub). Each
 * vocabulary word also has an output vector (out, (n, dim)). For each word of a text, the context words within
 * a window drawn from 1..window are raised (sigmoid(out_ctx . h)) and, for each, `negatives` words drawn from
 * unigram^0.75 (Walker's alias method, as src/train/sampler.c) lowered — all of one window in one
 * cr_sgns_step (see wordvec_impl.h for how that differs from fastText's per-pair step).
 *
 * Steps: (1) the vocabulary pass tokenises every text once (cr_text_tokenize), interns words, counts them,
 * records each new word's subword buckets from the n-gram tokens that follow it, and keeps the corpus as
 * word ids; (2) words below min_count are dropped and the rest ordered by count (descending, then first
 * appearance); (3) training: threads take contiguous item ranges of equal token counts, each with its own
 * RNG stream and learning-rate schedule (lr * (1 - its tokens done / its tokens in all epochs)), so one thread
 * gives the same bytes for a seed; several threads update the shared tables without locks (Hogwild).
 * Scratch is allocated before the loop; nothing is allocated while training. */
#include "wordvec_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

cr_wordvec_train_params cr_wordvec_default_train_params(void) {
    cr_wordvec_train_params p;
    memset(&p, 0, sizeof p);
    p.dim = 100;
    p.hashing = cr_text_default_hashing();
    p.hashing.n_buckets = 1 << 18;
    p.window = 5;
    p.negatives = 5;
    p.epochs = 5;
    p.lr = 0.05;
    p.min_count = 2;
    p.sample = 1e-4;
    p.fields = CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT;
    p.threads = 1;
    p.seed = 42;
    return p;
}

const char *cr_wordvec_check_train_params(const cr_wordvec_train_params *p) {
    if (p->dim < 1 || p->dim > CR_WORDVEC_MAX_DIM) return "dim must be in 1..65536";
    const char *why = cr_text_check_hashing(&p->hashing);
    if (why) return why;
    if (p->window < 1 || p->window > 1000) return "window must be in 1..1000";
    if (p->negatives < 1 || p->negatives > 1000) return "negatives must be in 1..1000";
    if (p->epochs < 1 || p->epochs > 10000) return "epochs must be in 1..10000";
    if (!(p->lr > 0 && p->lr <= 10)) return "lr must be in (0, 10]";
    if (p->min_count < 1) return "min_count must be >= 1";
    if (!(p->sample >= 0 && p->sample <= 1)) return "sample must be in 0..1";
    if (p->fields < 1 || p->fields > (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT))
        return "fields must be CR_TEXT_FIELD_TITLE, CR_TEXT_FIELD_TEXT or both";
    if (p->threads < 0) return "threads must be >= 0";
    return NULL;
}

/* ---- the SGNS step ------------------------------------------------------------------------------------- */

static inline float sigmoidf(float s) { return 1.0f / (1.0f + expf(-s)); }
static inline float softplusf(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

float cr_sgns_step_ref(float *in, const int32_t *rows, int n_rows, float *out, const int32_t *targets,
                       const uint8_t *labels, int n_t, int64_t dim, float lr, float *hidden, float *grad) {
    memset(hidden, 0, (size_t)dim * sizeof *hidden);
    for (int k = 0; k < n_rows; k++) {
        const float *r = in + (int64_t)rows[k] * dim;
        for (int64_t j = 0; j < dim; j++) hidden[j] += r[j];
    }
    float inv = 1.0f / (float)n_rows;
    for (int64_t j = 0; j < dim; j++) hidden[j] *= inv, grad[j] = 0;
    float loss = 0;
    for (int t = 0; t < n_t; t++) {
        float *u = out + (int64_t)targets[t] * dim;
        float s = 0;
        for (int64_t j = 0; j < dim; j++) s += u[j] * hidden[j];
        loss += softplusf(labels[t] ? -s : s);
        float a = lr * ((float)labels[t] - sigmoidf(s));
        for (int64_t j = 0; j < dim; j++) {
            grad[j] += a * u[j];
            u[j] += a * hidden[j];
        }
    }
    for (int k = 0; k < n_rows; k++) {
        float *r = in + (int64_t)rows[k] * dim;
        for (int64_t j = 0; j < dim; j++) r[j] += grad[j];
    }
    return loss;
}

/* The same with GCC/clang vector extensions: 4 floats per operation (SSE2 on any x86-64, NEON on arm64), the
 * dot product in two accumulators. Unaligned access through a typedef of alignment 4. */
typedef float v4f __attribute__((vector_size(16), aligned(4), may_alias));

static inline float dot_v(const float *a, const float *b, int64_t n) {
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        s0 += *(const v4f *)(a + j) * *(const v4f *)(b + j);
        s1 += *(const v4f *)(a + j + 4) * *(const v4f *)(b + j + 4);
    }
    if (j + 4 <= n) s0 += *(const v4f *)(a + j) * *(const v4f *)(b + j), j += 4;
    s0 += s1;
    float s = (s0[0] + s0[1]) + (s0[2] + s0[3]);
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/* y += x */
static inline void add_v(float *y, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) *(v4f *)(y + j) += *(const v4f *)(x + j);
    for (; j < n; j++) y[j] += x[j];
}

/* g += a * u; u += a * h */
static inline void update_v(float *g, float *u, const float *h, float a, int64_t n) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        v4f uu = *(v4f *)(u + j);
        *(v4f *)(g + j) += a * uu;
        *(v4f *)(u + j) = uu + a * *(const v4f *)(h + j);
    }
    for (; j < n; j++) {
        g[j] += a * u[j];
        u[j] += a * h[j];
    }
}

float cr_sgns_step(float *in, const int32_t *rows, int n_rows, float *out, const int32_t *targets,
                   const uint8_t *labels, int n_t, int64_t dim, float lr, float *hidden, float *grad) {
    memset(hidden, 0, (size_t)dim * sizeof *hidden);
    for (int k = 0; k < n_rows; k++) add_v(hidden, in + (int64_t)rows[k] * dim, dim);
    float inv = 1.0f / (float)n_rows;
    for (int64_t j = 0; j < dim; j++) hidden[j] *= inv;
    memset(grad, 0, (size_t)dim * sizeof *grad);
    float loss = 0;
    for (int t = 0; t < n_t; t++) {
        float *u = out + (int64_t)targets[t] * dim;
        float s = dot_v(u, hidden, dim);
        loss += softplusf(labels[t] ? -s : s);
        update_v(grad, u, hidden, lr * ((float)labels[t] - sigmoidf(s)), dim);
    }
    for (int k = 0; k < n_rows; k++) add_v(in + (int64_t)rows[k] * dim, grad, dim);
    return loss;
}

double cr_sgns_loss(const float *in, const int32_t *rows, int n_rows, const float *out, const int32_t *targets,
                    const uint8_t *labels, int n_t, int64_t dim) {
    double loss = 0;
    for (int t = 0; t < n_t; t++) {
        const float *u = out + (int64_t)targets[t] * dim;
        double s = 0;
        for (int64_t j = 0; j < dim; j++) {
            double h = 0;
            for (int k = 0; k < n_rows; k++) h += in[(int64_t)rows[k] * dim + j];
            s += u[j] * (h / n_rows);
        }
        double x = labels[t] ? -s : s;   /* softplus(x) = log(1 + e^x) */
        loss += x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    }
    return loss;
}

/* ---- the corpus and its vocabulary ------------------------------------------------------------------------ */

typedef struct {
    const cr_dataset *d;
    const char *const *texts;
    int64_t n;
    int fields;
} corpus;

/* Text f (0 title, 1 text) of document i, or NULL when that field is not used. */
static const char *corpus_text(const corpus *c, int64_t i, int f) {
    if (c->texts) return f == 0 ? c->texts[i] : NULL;
    if (!(c->fields & (f ? CR_TEXT_FIELD_TEXT : CR_TEXT_FIELD_TITLE))) return NULL;
    return f ? cr_dataset_item_text(c->d, (int32_t)i) : cr_dataset_item_title(c->d, (int32_t)i);
}

typedef struct {
    cr_strpool pool;
    cr_idmap map;
    int64_t *count, *sub_ptr;   /* (pool.n), (pool.n + 1) */
    int32_t *sub;
    int64_t cap_count, cap_sub_ptr, cap_sub;
    int32_t *seq;               /* (n_seq) the corpus as word ids */
    int64_t n_seq, cap_seq;
    int64_t *doc_ptr;           /* (n_docs + 1) document i is seq[doc_ptr[i] .. doc_ptr[i+1]) */
} raw_vocab;

static void raw_vocab_free(raw_vocab *v) {
    cr_idmap_free(&v->map);
    cr_strpool_free(&v->pool);
    cr_free(v->count), cr_free(v->sub_ptr), cr_free(v->sub), cr_free(v->seq), cr_free(v->doc_ptr);
}

static int is_seq_kind(cr_text_tok_kind k) {
    return k == CR_TEXT_TOK_WORD || k == CR_TEXT_TOK_CJK || k == CR_TEXT_TOK_SYMBOL;
}

static cr_status build_raw_vocab(const corpus *c, const cr_text_hashing *h, raw_vocab *v) {
    cr_text_work *w = NULL;
    cr_status st;
    if ((st = cr_text_work_new(&w)) || (st = cr_idmap_init(&v->map, &v->pool))) goto done;
    if (!(v->doc_ptr = cr_malloc(((size_t)c->n + 1) * sizeof *v->doc_ptr))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (corpus of %lld texts)", (long long)c->n);
        goto done;
    }
    if ((st = cr_grow((void **)&v->sub_ptr, &v->cap_sub_ptr, 1, sizeof *v->sub_ptr))) goto done;
    v->sub_ptr[0] = 0;
    v->doc_ptr[0] = 0;
    for (int64_t i = 0; i < c->n; i++) {
        for (int f = 0; f < 2; f++) {
            const char *s = corpus_text(c, i, f);
            if (!s) continue;
            const cr_text_token *t;
            int64_t n;
            if ((st = cr_text_tokenize(w, h, s, (int64_t)strlen(s), &t, &n))) {
                if (c->d) cr_errmsg_prefix("item '%s'", cr_dataset_item_id(c->d, (int32_t)i));
                else cr_errmsg_prefix("text %lld", (long long)i);
                goto done;
            }
            for (int64_t k = 0; k < n; k++) {
                if (!is_seq_kind(t[k].kind)) continue;
                int32_t id;
                int added;
                if ((st = cr_idmap_intern(&v->map, &v->pool, t[k].p, t[k].len, &id, &added))) goto done;
                if (added) {
                    /* its subwords: its own bucket, then the buckets of the n-grams the tokenizer gave after it */
                    int64_t at = v->sub_ptr[id];
                    for (int64_t g = k; g < n && (g == k || t[g].kind == CR_TEXT_TOK_NGRAM); g++) {
                        if ((st = cr_grow((void **)&v->sub, &v->cap_sub, at + 1, sizeof *v->sub))) goto done;
                        v->sub[at++] = cr_text_bucket(h, t[g].kind, t[g].p, t[g].len);
                    }
                    if ((st = cr_grow((void **)&v->sub_ptr, &v->cap_sub_ptr, (int64_t)id + 2, sizeof *v->sub_ptr)) ||
                        (st = cr_grow((void **)&v->count, &v->cap_count, (int64_t)id + 1, sizeof *v->count)))
                        goto done;
                    v->sub_ptr[id + 1] = at;
                    v->count[id] = 0;
                }
                v->count[id]++;
                if ((st = cr_grow((void **)&v->seq, &v->cap_seq, v->n_seq + 1, sizeof *v->seq))) goto done;
                v->seq[v->n_seq++] = id;
            }
        }
        v->doc_ptr[i + 1] = v->n_seq;
    }
done:
    cr_text_work_free(w);
    return st;
}

typedef struct {
    int64_t count;
    int32_t id;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The vocabulary of wv (words with count >= min_count, by count descending then first appearance), and the
 * corpus rewritten in its ids without the dropped words (in place in raw). */
static cr_status select_vocab(raw_vocab *raw, const cr_wordvec_train_params *p, cr_wordvec *wv, int64_t n_docs,
                              int64_t *n_dropped) {
    int64_t nr = raw->pool.n, nk = 0;
    for (int64_t i = 0; i < nr; i++) nk += raw->count[i] >= p->min_count;
    *n_dropped = nr - nk;
    if (nk < 2) {
        cr_fail(CR_ERR_ARG, "the corpus has %lld distinct word%s seen at least min_count = %lld times; training needs 2",
                (long long)nk, nk == 1 ? "" : "s", (long long)p->min_count);
        cr_set_hint("lower min_count, or train on more text");
        return CR_ERR_ARG;
    }
    ranked *order = cr_malloc((size_t)nk * sizeof *order);
    int32_t *newid = cr_malloc((size_t)nr * sizeof *newid);
    cr_status st = CR_OK;
    if (!order || !newid ||
        !(wv->count = cr_malloc((size_t)nk * sizeof *wv->count)) ||
        !(wv->sub_ptr = cr_malloc(((size_t)nk + 1) * sizeof *wv->sub_ptr))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (vocabulary of %lld words)", (long long)nk);
        goto done;
    }
    int64_t j = 0, n_sub = 0;
    for (int64_t i = 0; i < nr; i++) {
        newid[i] = -1;
        if (raw->count[i] >= p->min_count) {
            order[j].count = raw->count[i], order[j++].id = (int32_t)i;
            n_sub += raw->sub_ptr[i + 1] - raw->sub_ptr[i];
        }
    }
    qsort(order, (size_t)nk, sizeof *order, cmp_ranked);
    if (!(wv->sub = cr_malloc((size_t)n_sub * sizeof *wv->sub))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (subwords of %lld words)", (long long)nk);
        goto done;
    }
    wv->sub_ptr[0] = 0;
    for (int64_t r = 0; r < nk; r++) {
        int32_t old = order[r].id, idx;
        int added;
        if ((st = cr_idmap_intern(&wv->map, &wv->words, cr_strpool_get(&raw->pool, old), cr_strpool_len(&raw->pool, old),
                                  &idx, &added)))
            goto done;
        CR_ASSERT(added && idx == r);
        newid[old] = (int32_t)r;
        wv->count[r] = order[r].count;
        int64_t a = raw->sub_ptr[old], b = raw->sub_ptr[old + 1];
        memcpy(wv->sub + wv->sub_ptr[r], raw->sub + a, (size_t)(b - a) * sizeof *wv->sub);
        wv->sub_ptr[r + 1] = wv->sub_ptr[r] + (b - a);
    }
    wv->n = nk;
    /* the corpus in the new ids, dropped words removed */
    int64_t o = 0;
    for (int64_t i = 0; i < n_docs; i++) {
        int64_t a = raw->doc_ptr[i], b = raw->doc_ptr[i + 1];
        raw->doc_ptr[i] = o;
        for (int64_t k = a; k < b; k++)
            if (newid[raw->seq[k]] >= 0) raw->seq[o++] = newid[raw->seq[k]];
    }
    raw->doc_ptr[n_docs] = o;
    raw->n_seq = o;
done:
    cr_free(order), cr_free(newid);
    return st;
}

/* ---- negatives: Walker's alias method over count^0.75 ------------------------------------------------------ */

static void alias_build(const int64_t *count, int64_t n, float *prob, int32_t *alias, double *q, int32_t *small,
                        int32_t *large) {
    double sum = 0;
    for (int64_t j = 0; j < n; j++) sum += (q[j] = pow((double)count[j], 0.75));
    int64_t ns = 0, nl = 0;
    for (int64_t j = 0; j < n; j++) {
        q[j] = q[j] * (double)n / sum;
        if (q[j] < 1.0) small[ns++] = (int32_t)j;
        else large[nl++] = (int32_t)j;
    }
    while (ns > 0 && nl > 0) {
        int32_t a = small[--ns], b = large[--nl];
        prob[a] = (float)q[a];
        alias[a] = b;
        q[b] -= 1.0 - q[a];
        if (q[b] < 1.0) small[ns++] = b;
        else large[nl++] = b;
    }
    while (nl > 0) {
        int32_t b = large[--nl];
        prob[b] = 1.0f, alias[b] = b;
    }
    while (ns > 0) {
        int32_t a = small[--ns];
        prob[a] = 1.0f, alias[a] = a;
    }
}

static inline float uniform24(cr_rng *r) { return (float)(cr_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

static inline int32_t alias_draw(const float *prob, const int32_t *alias, uint32_t n, cr_rng *r) {
    uint32_t j = cr_rng_below(r, n);
    return uniform24(r) < prob[j] ? (int32_t)j : alias[j];
}

/* ---- training ------------------------------------------------------------------------------------------------ */

typedef struct {
    int64_t lo, hi;             /* documents [lo, hi) */
    int64_t tokens;             /* their tokens, per epoch */
    double loss;                /* this epoch (written once at its end) */
    int64_t pairs;              /* this epoch */
    char pad[24];               /* one cache line per thread */
} share;

typedef struct {
    const cr_wordvec_train_params *p;
    cr_wordvec *wv;
    const raw_vocab *corp;
    float *out;                 /* (n, dim) output vectors */
    const float *prob;          /* (n) alias table */
    const int32_t *alias;
    const float *keep;          /* (n) subsampling: probability to keep each word */
    share *sh;                  /* (nt) */
    float *scratch;             /* (nt, 2 * dim_pad) hidden, grad */
    int64_t dim_pad;            /* dim rounded up to 16 */
    int32_t *lines;             /* (nt, max_doc) the kept words of a document */
    int32_t *targets;           /* (nt, 2 * window * (1 + negatives)) output rows of one step */
    uint8_t *labels;            /* (nt, 2 * window * (1 + negatives)) 1 for a context word, 0 for a negative */
    int64_t max_doc;            /* rounded up to 16: each thread's scratch starts on its own cache line */
    int64_t per;                /* 2 * window * (1 + negatives) targets of one window at most, rounded up to 64 */
    int nt;
    int64_t total_pairs;
    double last_loss;
} trainer;

static void train_thread(trainer *T, int t) {
    const cr_wordvec_train_params *p = T->p;
    cr_wordvec *wv = T->wv;
    share *sh = &T->sh[t];
    int64_t dim = wv->dim, n = wv->n;
    float *hidden = T->scratch + (int64_t)t * 2 * T->dim_pad, *grad = hidden + T->dim_pad;
    int32_t *line = T->lines + (int64_t)t * T->max_doc, *tg = T->targets + (int64_t)t * T->per;
    uint8_t *lab = T->labels + (int64_t)t * T->per;
    float *in = wv->own_table;
    char name[48];
    snprintf(name, sizeof name, "wordvec.sgns.%d", t);
    cr_rng rng;
    cr_rng_named(&rng, p->seed, name);
    double total = sh->tokens > 0 ? (double)sh->tokens * p->epochs : 1, done = 0;
    for (int e = 0; e < p->epochs; e++) {
        double t0 = cr_now(), loss = 0;
        int64_t pairs = 0;   /* local: a shared counter would bounce between the threads' caches */
        for (int64_t d = sh->lo; d < sh->hi; d++) {
            int64_t a = T->corp->doc_ptr[d], b = T->corp->doc_ptr[d + 1], m = 0;
            for (int64_t k = a; k < b; k++) {
                int32_t wd = T->corp->seq[k];
                if (T->keep[wd] >= 1.0f || uniform24(&rng) < T->keep[wd]) line[m++] = wd;
            }
            float lr = (float)(p->lr * (1.0 - done / total));
            for (int64_t i = 0; i < m; i++) {
                /* the centre's contexts, each followed by its negatives: one step for the whole window */
                int64_t win = 1 + (int64_t)cr_rng_below(&rng, (uint32_t)p->window);
                int n_t = 0;
                for (int64_t c = i - win; c <= i + win; c++) {
                    if (c < 0 || c >= m || c == i) continue;
                    int32_t pos = line[c];
                    tg[n_t] = pos, lab[n_t++] = 1;
                    for (int g = 0; g < p->negatives; g++) {
                        int32_t neg;
                        int tries = 0;
                        do neg = alias_draw(T->prob, T->alias, (uint32_t)n, &rng);
                        while (neg == pos && ++tries < 64);
                        if (neg != pos) tg[n_t] = neg, lab[n_t++] = 0;
                    }
                    pairs++;
                }
                if (n_t == 0) continue;
                const int32_t *rows = wv->sub + wv->sub_ptr[line[i]];
                int n_rows = (int)(wv->sub_ptr[line[i] + 1] - wv->sub_ptr[line[i]]);
                loss += cr_sgns_step(in, rows, n_rows, T->out, tg, lab, n_t, dim, lr, hidden, grad);
            }
            done += (double)(b - a);
        }
        sh->loss = loss;
        sh->pairs = pairs;
        /* Every thread has finished the epoch; one reports it. */
        CR_OMP(omp barrier)
        CR_OMP(omp master)
        {
            double all_loss = 0;
            int64_t all_pairs = 0, tokens = 0;
            for (int k = 0; k < T->nt; k++)
                all_loss += T->sh[k].loss, all_pairs += T->sh[k].pairs, tokens += T->sh[k].tokens;
            T->total_pairs += all_pairs;
            T->last_loss = all_pairs ? all_loss / (double)all_pairs : 0;
            double dt = cr_now() - t0;
            if (p->on_epoch) p->on_epoch(e + 1, T->last_loss, dt > 0 ? (double)tokens / dt : 0, p->user);
        }
        CR_OMP(omp barrier)
    }
}

static int train_threads(int want) {
#ifdef _OPENMP
    return want > 0 ? want : omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

static cr_status train_corpus(cr_wordvec **out, const corpus *c, const cr_wordvec_train_params *p,
                              cr_wordvec_train_report *r) {
    *out = NULL;
    cr_wordvec_train_report rep;
    memset(&rep, 0, sizeof rep);
    if (r) *r = rep;
    if (!p) return cr_fail(CR_ERR_ARG, "word vector training: no parameters");
    const char *why = cr_wordvec_check_train_params(p);
    if (why) return cr_fail(CR_ERR_ARG, "word vector training: %s", why);

    raw_vocab raw;
    memset(&raw, 0, sizeof raw);
    cr_strpool_init(&raw.pool);
    cr_wordvec *wv = NULL;
    trainer T;
    memset(&T, 0, sizeof T);
    float *prob = NULL, *keep = NULL;
    int32_t *alias = NULL, *small = NULL, *large = NULL;
    double *q = NULL;
    cr_status st;
    int64_t dim = p->dim, B = p->hashing.n_buckets;
    if ((st = build_raw_vocab(c, &p->hashing, &raw)) || (st = cr_wordvec_new_empty(&wv, dim)) ||
        (st = select_vocab(&raw, p, wv, c->n, &rep.n_dropped)))
        goto done;
    int64_t n = wv->n;
    rep.n_vocab = n;
    rep.n_tokens = raw.n_seq;

    int nt = train_threads(p->threads);
    if (nt > c->n) nt = c->n > 0 ? (int)c->n : 1;
    for (int64_t i = 0; i < c->n; i++)
        if (raw.doc_ptr[i + 1] - raw.doc_ptr[i] > T.max_doc) T.max_doc = raw.doc_ptr[i + 1] - raw.doc_ptr[i];
    T.max_doc = (T.max_doc + 15) / 16 * 16;
    T.per = (2 * (int64_t)p->window * (1 + p->negatives) + 63) / 64 * 64;
    T.dim_pad = (dim + 15) / 16 * 16;
    wv->own_table = cr_malloc((size_t)B * (size_t)dim * sizeof(float));
    T.out = cr_calloc((size_t)n * (size_t)dim, sizeof(float));
    prob = cr_malloc((size_t)n * sizeof *prob);
    alias = cr_malloc((size_t)n * sizeof *alias);
    keep = cr_malloc((size_t)n * sizeof *keep);
    q = cr_malloc((size_t)n * sizeof *q);
    small = cr_malloc((size_t)n * sizeof *small);
    large = cr_malloc((size_t)n * sizeof *large);
    T.sh = cr_calloc((size_t)nt, sizeof *T.sh);
    T.scratch = cr_malloc((size_t)nt * 2 * (size_t)T.dim_pad * sizeof *T.scratch);
    T.lines = cr_malloc(((size_t)nt * (size_t)T.max_doc + 1) * sizeof *T.lines);
    T.targets = cr_malloc((size_t)nt * (size_t)T.per * sizeof *T.targets);
    T.labels = cr_malloc((size_t)nt * (size_t)T.per * sizeof *T.labels);
    wv->vec = cr_malloc((size_t)n * (size_t)dim * sizeof *wv->vec);
    if (!wv->own_table || !T.out || !prob || !alias || !keep || !q || !small || !large || !T.sh || !T.scratch ||
        !T.lines || !T.targets || !T.labels || !wv->vec) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (word vectors: %lld buckets and %lld words of dimension %lld)",
                     (long long)B, (long long)n, (long long)dim);
        goto done;
    }
    wv->table = wv->own_table;
    wv->cap_rows = n;

    /* fastText's initialisation: input rows uniform in (-1/dim, 1/dim), output vectors zero */
    cr_rng init;
    cr_rng_named(&init, p->seed, "wordvec.init");
    float scale = 1.0f / (float)dim;
    for (int64_t k = 0; k < B * dim; k++) wv->own_table[k] = (2.0f * uniform24(&init) - 1.0f) * scale;
    alias_build(wv->count, n, prob, alias, q, small, large);
    for (int64_t j = 0; j < n; j++) {
        double f = (double)wv->count[j] / (double)raw.n_seq, t = p->sample;
        keep[j] = t > 0 ? (float)fmin(1.0, sqrt(t / f) + t / f) : 1.0f;
    }

    /* Thread t takes the documents that hold tokens [n_seq * t / nt, n_seq * (t+1) / nt). */
    int64_t d = 0;
    for (int t = 0; t < nt; t++) {
        int64_t end = raw.n_seq * (t + 1) / nt;
        T.sh[t].lo = d;
        while (d < c->n && (raw.doc_ptr[d + 1] <= end || t == nt - 1)) d++;
        T.sh[t].hi = d;
        T.sh[t].tokens = raw.doc_ptr[T.sh[t].hi] - raw.doc_ptr[T.sh[t].lo];
    }
    T.p = p, T.wv = wv, T.corp = &raw, T.prob = prob, T.alias = alias, T.keep = keep, T.nt = nt;
    double t0 = cr_now();
    CR_OMP(omp parallel num_threads(nt))
    {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        train_thread(&T, t);   /* every thread, so that the per-epoch barriers meet */
    }
    rep.seconds = cr_now() - t0;
    rep.n_pairs = T.total_pairs;
    rep.loss = T.last_loss;
    rep.words_per_sec = rep.seconds > 0 ? (double)raw.n_seq * p->epochs / rep.seconds : 0;

    cr_wordvec_compose_all(wv);
    wv->info.n_words = n;
    wv->info.n_lines = n;
    wv->info.has_subwords = 1;
    wv->info.hashing = p->hashing;
    wv->params = *p;
    wv->params.on_epoch = NULL;
    wv->params.user = NULL;
    wv->train_tokens = raw.n_seq;
done:
    raw_vocab_free(&raw);
    cr_free(T.out), cr_free(T.sh), cr_free(T.scratch), cr_free(T.lines), cr_free(T.targets), cr_free(T.labels);
    cr_free(prob), cr_free(alias), cr_free(keep), cr_free(q), cr_free(small), cr_free(large);
    if (st) {
        cr_wordvec_free(wv);
        return st;
    }
    if (r) *r = rep;
    *out = wv;
    return CR_OK;
}

cr_status cr_wordvec_train(cr_wordvec **wv, const cr_dataset *d, const cr_wordvec_train_params *p,
                           cr_wordvec_train_report *r) {
    corpus c = {d, NULL, cr_dataset_inter(d)->n_items, p ? p->fields : 0};
    return train_corpus(wv, &c, p, r);
}

cr_status cr_wordvec_train_texts(cr_wordvec **wv, const char *const *texts, int64_t n, const cr_wordvec_train_params *p,
                                 cr_wordvec_train_report *r) {
    *wv = NULL;
    if (n < 0 || (n > 0 && !texts)) return cr_fail(CR_ERR_ARG, "word vector training: bad text list");
    for (int64_t i = 0; i < n; i++)
        if (!texts[i]) return cr_fail(CR_ERR_ARG, "word vector training: text %lld is NULL", (long long)i);
    corpus c = {NULL, texts, n, CR_TEXT_FIELD_TITLE};
    return train_corpus(wv, &c, p, r);
}

/* ---- the .crm file ------------------------------------------------------------------------------------------- */

cr_status cr_wordvec_save(const cr_wordvec *wv, const char *path) {
    if (!wv->info.has_subwords)
        return cr_fail(CR_ERR_ARG, "%s: only trained word vectors are saved as .crm (export loaded ones as .vec)", path);
    const cr_wordvec_train_params *p = &wv->params;
    int64_t B = wv->info.hashing.n_buckets;
    cr_filew *w;
    cr_status st = cr_filew_new(&w, "CRM", CR_WORDVEC_CRM_VERSION);
    if (st) return st;
    if ((st = cr_filew_meta_str(w, "model", "wordvec")) || (st = cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING)) ||
        (st = cr_text_hashing_write(w, &wv->info.hashing)) || (st = cr_filew_meta_i64(w, "wordvec.dim", wv->dim)) ||
        (st = cr_filew_meta_i64(w, "wordvec.words", wv->n)) ||
        (st = cr_filew_meta_i64(w, "wordvec.window", p->window)) ||
        (st = cr_filew_meta_i64(w, "wordvec.negatives", p->negatives)) ||
        (st = cr_filew_meta_i64(w, "wordvec.epochs", p->epochs)) || (st = cr_filew_meta_f64(w, "wordvec.lr", p->lr)) ||
        (st = cr_filew_meta_i64(w, "wordvec.min_count", p->min_count)) ||
        (st = cr_filew_meta_f64(w, "wordvec.sample", p->sample)) ||
        (st = cr_filew_meta_i64(w, "wordvec.fields", p->fields)) ||
        (st = cr_filew_meta_i64(w, "wordvec.seed", (int64_t)p->seed)) ||
        (st = cr_filew_meta_i64(w, "wordvec.tokens", wv->train_tokens)) ||
        (st = cr_filew_array(w, "table", CR_DT_F32, wv->table, B * wv->dim)) ||
        (st = cr_filew_array(w, "vocab.bytes", CR_DT_U8, wv->words.data, wv->words.n_bytes)) ||
        (st = cr_filew_array(w, "vocab.off", CR_DT_I64, wv->words.off, wv->n + 1)) ||
        (st = cr_filew_array(w, "vocab.count", CR_DT_I64, wv->count, wv->n)) ||
        (st = cr_filew_array(w, "vocab.sub_ptr", CR_DT_I64, wv->sub_ptr, wv->n + 1)) ||
        (st = cr_filew_array(w, "vocab.sub", CR_DT_I32, wv->sub, wv->sub_ptr[wv->n])) || (st = cr_filew_commit(w, path))) {
        cr_filew_free(w);
        return st;
    }
    cr_filew_free(w);
    return CR_OK;
}

/* An i64 / f64 metadata value, or def when the key is absent (informational keys). */
static int64_t meta_i64(const cr_file *f, const char *key, int64_t def) {
    for (int64_t i = 0; i < cr_file_n_meta(f); i++) {
        const cr_meta *m = cr_file_meta_at(f, i);
        if (!strcmp(m->key, key) && m->type == CR_META_I64) return m->i64;
    }
    return def;
}

static double meta_f64(const cr_file *f, const char *key, double def) {
    for (int64_t i = 0; i < cr_file_n_meta(f); i++) {
        const cr_meta *m = cr_file_meta_at(f, i);
        if (!strcmp(m->key, key) && m->type == CR_META_F64) return m->f64;
    }
    return def;
}

static cr_status bad(const char *name, const char *what, long long i) {
    return cr_fail(CR_ERR_FORMAT, "%s: word vectors: %s (entry %lld)", name, what, i);
}

cr_status cr_wordvec_load_crm(cr_wordvec **out, cr_file *f, const char *name) {
    *out = NULL;
    cr_wordvec *wv = NULL;
    const char *model;
    int64_t dim, B;
    cr_text_hashing h;
    cr_status st;
    if ((st = cr_file_get_str(f, "model", &model))) goto fail;
    if (strcmp(model, "wordvec") != 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: a crossrec model of type '%s', not word vectors", name, model);
        cr_set_hint("word vectors come from a text file (.vec, .txt, GloVe) or a .crm trained by crossrec's wordvec");
        goto fail;
    }
    if ((st = cr_text_hashing_read(f, &h))) {
        cr_errmsg_prefix("%s", name);
        goto fail;
    }
    if ((st = cr_file_get_i64(f, "wordvec.dim", &dim))) goto fail;
    if (dim < 1 || dim > CR_WORDVEC_MAX_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: wordvec.dim is %lld (must be in 1..%d)", name, (long long)dim, CR_WORDVEC_MAX_DIM);
        goto fail;
    }
    B = h.n_buckets;
    const float *table;
    const int64_t *off, *count, *sub_ptr;
    const int32_t *sub;
    const char *bytes;
    int64_t n_off, n_bytes, n_sub;
    if ((st = cr_file_get_array(f, "table", CR_DT_F32, B * dim, (const void **)&table, NULL)) ||
        (st = cr_file_get_array(f, "vocab.off", CR_DT_I64, -1, (const void **)&off, &n_off)) ||
        (st = cr_file_get_array(f, "vocab.bytes", CR_DT_U8, -1, (const void **)&bytes, &n_bytes)))
        goto fail;
    if (n_off < 1 || n_off - 1 > CR_WORDVEC_MAX_WORDS) {
        st = cr_fail(CR_ERR_FORMAT, "%s: vocab.off has %lld entries", name, (long long)n_off);
        goto fail;
    }
    int64_t n = n_off - 1;
    if ((st = cr_file_get_array(f, "vocab.count", CR_DT_I64, n, (const void **)&count, NULL)) ||
        (st = cr_file_get_array(f, "vocab.sub_ptr", CR_DT_I64, n + 1, (const void **)&sub_ptr, NULL)) ||
        (st = cr_file_get_array(f, "vocab.sub", CR_DT_I32, -1, (const void **)&sub, &n_sub)))
        goto fail;
    /* Every offset and index before anything is used. */
    if (off[0] != 0 || off[n] != n_bytes) {
        st = bad(name, "vocab.off does not span vocab.bytes", 0);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) {
        if (off[i + 1] - off[i] < 2 || off[i + 1] > n_bytes) {   /* one byte and the NUL at least; monotone */
            st = bad(name, "vocab.off is not increasing by at least 2", i);
            goto fail;
        }
        int64_t len = off[i + 1] - off[i] - 1;
        if (bytes[off[i] + len] != 0 || memchr(bytes + off[i], 0, (size_t)len) || cr_utf8_invalid_at(bytes + off[i], len) >= 0) {
            st = bad(name, "a word is not NUL-terminated valid UTF-8", i);
            goto fail;
        }
        if (count[i] < 0) {
            st = bad(name, "negative word count", i);
            goto fail;
        }
    }
    if (sub_ptr[0] != 0 || sub_ptr[n] != n_sub) {
        st = bad(name, "vocab.sub_ptr does not span vocab.sub", 0);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++)
        if (sub_ptr[i + 1] - sub_ptr[i] < 1 || sub_ptr[i + 1] > n_sub) {
            st = bad(name, "vocab.sub_ptr is not strictly increasing", i);
            goto fail;
        }
    for (int64_t k = 0; k < n_sub; k++)
        if (sub[k] < 0 || sub[k] >= B) {
            st = bad(name, "a subword bucket is outside the table", k);
            goto fail;
        }
    for (int64_t k = 0; k < B * dim; k++)
        if (!isfinite(table[k])) {
            st = bad(name, "the table holds NaN or infinity", k);
            goto fail;
        }

    if ((st = cr_wordvec_new_empty(&wv, dim))) goto fail;
    wv->count = cr_malloc(((size_t)n + 1) * sizeof *wv->count);
    wv->sub_ptr = cr_malloc(((size_t)n + 1) * sizeof *wv->sub_ptr);
    wv->sub = cr_malloc(((size_t)n_sub + 1) * sizeof *wv->sub);
    wv->vec = cr_malloc(((size_t)n * (size_t)dim + 1) * sizeof *wv->vec);
    if (!wv->count || !wv->sub_ptr || !wv->sub || !wv->vec) {
        st = cr_fail(CR_ERR_NOMEM, "%s: out of memory (%lld word vectors)", name, (long long)n);
        goto fail;
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t idx;
        int added;
        if ((st = cr_idmap_intern(&wv->map, &wv->words, bytes + off[i], off[i + 1] - off[i] - 1, &idx, &added))) goto fail;
        if (!added) {
            st = bad(name, "duplicate word", i);
            goto fail;
        }
    }
    memcpy(wv->count, count, (size_t)n * sizeof *count);
    memcpy(wv->sub_ptr, sub_ptr, ((size_t)n + 1) * sizeof *sub_ptr);
    memcpy(wv->sub, sub, (size_t)n_sub * sizeof *sub);
    wv->n = n;
    wv->cap_rows = n;
    wv->table = table;
    wv->file = f;
    f = NULL;
    cr_wordvec_compose_all(wv);
    wv->info.n_words = n;
    wv->info.n_lines = n;
    wv->info.has_subwords = 1;
    wv->info.hashing = h;
    cr_wordvec_train_params *p = &wv->params;
    *p = cr_wordvec_default_train_params();
    p->dim = dim;
    p->hashing = h;
    p->window = (int)meta_i64(wv->file, "wordvec.window", p->window);
    p->negatives = (int)meta_i64(wv->file, "wordvec.negatives", p->negatives);
    p->epochs = (int)meta_i64(wv->file, "wordvec.epochs", p->epochs);
    p->lr = meta_f64(wv->file, "wordvec.lr", p->lr);
    p->min_count = meta_i64(wv->file, "wordvec.min_count", p->min_count);
    p->sample = meta_f64(wv->file, "wordvec.sample", p->sample);
    p->fields = (int)meta_i64(wv->file, "wordvec.fields", p->fields);
    p->seed = (uint64_t)meta_i64(wv->file, "wordvec.seed", (int64_t)p->seed);
    wv->train_tokens = meta_i64(wv->file, "wordvec.tokens", 0);
    *out = wv;
    return CR_OK;
fail:
    cr_wordvec_free(wv);
    cr_file_close(f);
    return st;
}

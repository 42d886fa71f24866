/* textenc.c — the pretrained text encoder (crossrec/textenc.h, textenc_impl.h): its bags, its batched forward
 * pass and training loss with their backward passes, encoding of texts and items, and its .crm file.
 * Training is src/train/pretrain.c.
 *
 * Encoding runs in chunks of ENCODE_CHUNK texts, each chunk on one thread with single-threaded BLAS: the texts'
 * bags and embedding-bag sums, then the MLP on the chunk as one batch. Chunk boundaries do not depend on the
 * thread count, so the vectors are the same bits at any thread count. */
#include "text_impl.h"
#include "textenc_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ENCODE_CHUNK 256

/* ---- the struct ---- */

cr_status cr_textenc_new(cr_textenc **out, const cr_text_hashing *h, int64_t dim, int64_t per_item, int64_t teacher_dim) {
    *out = NULL;
    const char *why = cr_text_check_hashing(h);
    if (why) return cr_fail(CR_ERR_ARG, "text encoder: hashing: %s", why);
    if (dim < 1 || dim > CR_TEXTENC_MAX_DIM)
        return cr_fail(CR_ERR_ARG, "text encoder: dim must be 1..%d (got %lld)", CR_TEXTENC_MAX_DIM, (long long)dim);
    if (per_item < 0) return cr_fail(CR_ERR_ARG, "text encoder: buckets per text must be >= 0 (got %lld)", (long long)per_item);
    if (teacher_dim < 0 || teacher_dim > CR_TEXTENC_MAX_TEACHER_DIM)
        return cr_fail(CR_ERR_ARG, "text encoder: teacher dim must be 0..%d (got %lld)", CR_TEXTENC_MAX_TEACHER_DIM,
                       (long long)teacher_dim);
    cr_textenc *e = cr_calloc(1, sizeof *e);
    if (!e) return cr_fail(CR_ERR_NOMEM, "out of memory for a text encoder");
    e->dim = dim, e->per_item = per_item, e->teacher_dim = teacher_dim, e->hashing = *h;
    e->mlp = (cr_mlp){.n_layers = 2, .width = {dim, dim, dim}, .act = CR_ACT_RELU};
    e->t_distill = -1;
    cr_tensor t[CR_MAX_TENSORS];
    int n = 0;
    t[n++] = (cr_tensor){.name = "textenc.emb", .rows = h->n_buckets, .cols = dim};
    n = cr_mlp_tensors(&e->mlp, "textenc.mlp.", t, n);
    if (teacher_dim > 0) t[n++] = (cr_tensor){.name = "textenc.distill.w", .rows = teacher_dim, .cols = dim};
    cr_status st;
    if ((st = cr_slab_init(&e->params, t, n)) || (st = cr_mlp_bind(&e->mlp, &e->params, "textenc.mlp.")) ||
        (st = cr_text_stats_init(&e->stats, h->n_buckets))) {
        cr_textenc_free(e);
        return st;
    }
    e->t_emb = 0;
    if (teacher_dim > 0) e->t_distill = n - 1;
    e->dense_off = e->params.t[1].offset;
    *out = e;
    return CR_OK;
}

void cr_textenc_free(cr_textenc *e) {
    if (!e) return;
    cr_slab_free(&e->params);
    cr_text_stats_free(&e->stats);
    cr_free(e);
}

int64_t cr_textenc_dim(const cr_textenc *e) { return e->dim; }
const cr_text_hashing *cr_textenc_hashing(const cr_textenc *e) { return &e->hashing; }
void cr_textenc_set_threads(cr_textenc *e, int threads) { e->threads = threads > 0 ? threads : 0; }

void cr_textenc_get_weights(const cr_textenc *e, cr_textenc_weights *w) {
    const cr_slab *s = &e->params;
    w->dim = e->dim, w->n_buckets = e->hashing.n_buckets, w->per_item = e->per_item;
    w->emb = cr_slab_at(s, e->t_emb);
    w->w0 = cr_slab_at(s, e->mlp.w_index[0]), w->b0 = cr_slab_at(s, e->mlp.b_index[0]);
    w->w1 = cr_slab_at(s, e->mlp.w_index[1]), w->b1 = cr_slab_at(s, e->mlp.b_index[1]);
    w->df = e->stats.df, w->n_docs = e->stats.n_docs;
}

/* ---- training settings (the training itself is src/train/pretrain.c) ---- */

cr_textenc_train_params cr_textenc_default_train_params(void) {
    cr_textenc_train_params p;
    memset(&p, 0, sizeof p);
    p.dim = 64;
    p.hashing = cr_text_default_hashing();
    p.hashing.n_buckets = 1 << 16;
    p.per_item = 0;
    p.epochs = 5;
    p.batch = 256;
    p.lr = 0.002;
    p.temperature = 0.05;
    p.view_dropout = 0.3;
    p.valid = 1000;
    p.distill = 5.0;
    p.seed = 42;
    return p;
}

const char *cr_textenc_check_train_params(const cr_textenc_train_params *p) {
    if (p->dim < 1 || p->dim > CR_TEXTENC_MAX_DIM) return "dim must be in 1..1024";
    const char *why = cr_text_check_hashing(&p->hashing);
    if (why) return why;
    if (p->per_item < 0) return "buckets per text must be >= 0 (0: all)";
    if (p->epochs < 1 || p->epochs > 100000) return "epochs must be in 1..100000";
    if (p->batch < 2 || p->batch > 65536) return "batch must be in 2..65536";
    if (!(p->lr > 0 && p->lr <= 10)) return "lr must be in (0, 10]";
    if (!(p->temperature > 0 && p->temperature <= 100)) return "temperature must be in (0, 100]";
    if (!(p->view_dropout >= 0 && p->view_dropout < 1)) return "view dropout must be in [0, 1)";
    if (p->valid < 0) return "held-out items must be >= 0";
    if (!(p->distill >= 0 && p->distill <= 1e6)) return "distillation weight must be in 0..1e6";
    if (p->teacher && (p->teacher_dim < 1 || p->teacher_dim > CR_TEXTENC_MAX_TEACHER_DIM))
        return "teacher dim must be in 1..65536";
    if (p->threads < 0) return "threads must be >= 0";
    return NULL;
}

/* ---- bags ---- */

int64_t cr_textenc_weigh(const cr_textenc *e, const cr_text_bag *bag, float *tmp, int32_t *idx, float *w) {
    const cr_text_weight_params wp = cr_text_default_weight_params();
    cr_status st = cr_text_weigh(&e->stats, &wp, bag, tmp);
    CR_ASSERT(st == CR_OK);     /* the bag was hashed with the encoder's own bucket count */
    const int64_t K = e->per_item > 0 && e->per_item < bag->n ? e->per_item : bag->n;
    int64_t m = 0;
    /* insertion into the K heaviest so far; buckets come ascending, so an equal weight stays behind */
    for (int64_t k = 0; k < bag->n; k++) {
        const float v = tmp[k];
        if (m == K && !(v > w[m - 1])) continue;
        int64_t at = m < K ? m++ : K - 1;
        for (; at > 0 && v > w[at - 1]; at--) w[at] = w[at - 1], idx[at] = idx[at - 1];
        w[at] = v, idx[at] = bag->bucket[k];
    }
    double ss = 0;
    for (int64_t k = 0; k < m; k++) ss += (double)w[k] * w[k];
    for (int64_t k = 0; k < m && ss > 0; k++) w[k] = (float)(w[k] / sqrt(ss));
    return m;
}

void cr_textenc_bags_free(cr_textenc_bags *b) {
    if (!b) return;
    cr_free(b->off), cr_free(b->idx), cr_free(b->w);
    memset(b, 0, sizeof *b);
}

/* Hashed bags (bucket counts) back to back, kept for weighing once the document frequencies are complete. */
typedef struct {
    int32_t *bucket, *count;    /* entries of all bags back to back */
    int64_t n, cap_b, cap_c;
    int64_t *off, *n_tokens;    /* (n_bags + 1), (n_bags) */
} hashed_bags;

static cr_status keep_bag(hashed_bags *hb, int64_t r, const cr_text_bag *bag) {
    cr_status st;
    if ((st = cr_grow((void **)&hb->bucket, &hb->cap_b, hb->n + bag->n, sizeof *hb->bucket)) ||
        (st = cr_grow((void **)&hb->count, &hb->cap_c, hb->n + bag->n, sizeof *hb->count)))
        return st;
    memcpy(hb->bucket + hb->n, bag->bucket, (size_t)bag->n * sizeof *bag->bucket);
    memcpy(hb->count + hb->n, bag->count, (size_t)bag->n * sizeof *bag->count);
    hb->n += bag->n;
    hb->off[r + 1] = hb->n;
    hb->n_tokens[r] = bag->n_tokens;
    return CR_OK;
}

/* Weighs bags [first, first + n) of hb into out (CSR form), against the encoder's finished stats. */
static cr_status weigh_bags(const cr_textenc *e, const hashed_bags *hb, int64_t first, int64_t n, cr_textenc_bags *out) {
    int64_t total = hb->off[first + n] - hb->off[first], longest = 0;
    for (int64_t r = first; r < first + n; r++)
        longest = hb->off[r + 1] - hb->off[r] > longest ? hb->off[r + 1] - hb->off[r] : longest;
    out->n = n;
    out->off = cr_malloc(((size_t)n + 1) * sizeof *out->off);
    out->idx = cr_malloc(((size_t)total + 1) * sizeof *out->idx);
    out->w = cr_malloc(((size_t)total + 1) * sizeof *out->w);
    float *tmp = cr_malloc(((size_t)longest + 1) * sizeof *tmp);
    if (!out->off || !out->idx || !out->w || !tmp) {
        cr_free(tmp);
        cr_textenc_bags_free(out);
        return cr_fail(CR_ERR_NOMEM, "out of memory for the bags of %lld texts", (long long)n);
    }
    out->off[0] = 0;
    for (int64_t r = 0; r < n; r++) {
        const int64_t a = hb->off[first + r];
        const cr_text_bag bag = {hb->bucket + a, hb->count + a, hb->off[first + r + 1] - a, hb->n_tokens[first + r], 0, 0};
        out->off[r + 1] = out->off[r] + cr_textenc_weigh(e, &bag, tmp, out->idx + out->off[r], out->w + out->off[r]);
    }
    cr_free(tmp);
    return CR_OK;
}

cr_status cr_textenc_prepare(cr_textenc *e, const char *const *titles, const char *const *texts, int64_t n,
                             cr_textenc_bags *title, cr_textenc_bags *text) {
    memset(title, 0, sizeof *title);
    memset(text, 0, sizeof *text);
    if (n >= INT32_MAX) return cr_fail(CR_ERR_LIMIT, "text encoder: more than %d items", INT32_MAX - 1);
    hashed_bags hb = {0};
    cr_text_work *w = NULL;
    cr_text_bag bag = {0};
    cr_status st = cr_text_work_new(&w);
    hb.off = cr_calloc(2 * (size_t)n + 1, sizeof *hb.off);
    hb.n_tokens = cr_calloc(2 * (size_t)n + 1, sizeof *hb.n_tokens);
    if (!st && (!hb.off || !hb.n_tokens)) st = cr_fail(CR_ERR_NOMEM, "out of memory for the bags of %lld items", (long long)n);
    cr_text_stats *s = &e->stats;
    memset(s->df, 0, (size_t)s->n_buckets * sizeof *s->df);
    s->n_docs = s->n_tokens = s->n_empty = s->n_replaced = 0;
    /* rows 0..n-1: the titles, n..2n-1: the texts */
    for (int64_t r = 0; r < 2 * n && !st; r++) {
        const char *str = r < n ? titles[r] : texts[r - n];
        if ((st = cr_text_hash_bag(w, &e->hashing, str, (int64_t)strlen(str), &bag))) {
            cr_errmsg_prefix("text encoder: item %lld's %s", (long long)(r % n), r < n ? "title" : "text");
            break;
        }
        s->n_replaced += bag.n_replaced;
        st = keep_bag(&hb, r, &bag);
    }
    /* a document is an item's title and text joined by a space, whose bag is the sum of the two bags: a bucket
     * in either counts once in its document frequency */
    for (int64_t i = 0; i < n && !st; i++) {
        int64_t a = hb.off[i], ae = hb.off[i + 1], b = hb.off[n + i], be = hb.off[n + i + 1];
        while (a < ae || b < be) {
            int32_t x = b >= be || (a < ae && hb.bucket[a] <= hb.bucket[b]) ? hb.bucket[a] : hb.bucket[b];
            a += a < ae && hb.bucket[a] == x;
            b += b < be && hb.bucket[b] == x;
            s->df[x]++;
        }
        s->n_tokens += hb.n_tokens[i] + hb.n_tokens[n + i];
        s->n_empty += hb.n_tokens[i] + hb.n_tokens[n + i] == 0;
        s->n_docs++;
    }
    if (!st && !(st = weigh_bags(e, &hb, 0, n, title))) st = weigh_bags(e, &hb, n, n, text);
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
    cr_free(hb.bucket), cr_free(hb.count), cr_free(hb.off), cr_free(hb.n_tokens);
    if (st) cr_textenc_bags_free(title), cr_textenc_bags_free(text);
    return st;
}

/* ---- forward, loss, backward ---- */

cr_status cr_textenc_ws_init(cr_textenc_ws *ws, const cr_textenc *e, int64_t cap) {
    memset(ws, 0, sizeof *ws);
    const int64_t d = e->dim, na = cr_mlp_act_size(&e->mlp, cap), td = e->teacher_dim;
    const int64_t total = 9 * cap * d + 2 * na + cap + cr_infonce_scratch_size(cap / 2 + 1, d) + 4 * cap * td + cap;
    if (!(ws->buf = cr_malloc((size_t)total * sizeof(float))))
        return cr_fail(CR_ERR_NOMEM, "out of memory for the text encoder's scratch (%lld texts)", (long long)cap);
    float *p = ws->buf;
    ws->x0 = p, p += cap * d;
    ws->pre = p, p += na;
    ws->acts = p, p += na;
    ws->gpre = p, p += cap * d;
    ws->g = p, p += cap * d;
    ws->norm = p, p += cap;
    ws->dg = p, p += cap * d;
    ws->dgpre = p, p += cap * d;
    ws->dx0 = p, p += cap * d;
    ws->dxm = p, p += cap * d;
    ws->mlp_scratch = p, p += 2 * cap * d;
    ws->nce_scratch = p, p += cr_infonce_scratch_size(cap / 2 + 1, d);
    ws->y = p, p += cap * td;
    ws->yn = p, p += cap * td;
    ws->dyn = p, p += cap * td;
    ws->dy = p, p += cap * td;
    ws->ynorm = p;
    ws->cap = cap, ws->dim = d, ws->tdim = td;
    return CR_OK;
}

void cr_textenc_ws_free(cr_textenc_ws *ws) {
    if (!ws) return;
    cr_free(ws->buf);
    memset(ws, 0, sizeof *ws);
}

void cr_textenc_forward(const cr_textenc *e, cr_textenc_ws *ws, const int64_t *off, const int32_t *idx, const float *w,
                        int64_t n) {
    const int64_t d = e->dim;
    CR_ASSERT(n <= ws->cap);
    cr_embbag_forward(ws->x0, cr_slab_at(&e->params, e->t_emb), e->hashing.n_buckets, d, off, idx, w, n, CR_BAG_SUM);
    cr_mlp_forward(&e->mlp, &e->params, ws->x0, n, ws->pre, ws->acts);
    const float *h = ws->acts + cr_mlp_act_size(&e->mlp, n) - n * d;    /* the last layer's output (n, d) */
    for (int64_t k = 0; k < n * d; k++) ws->gpre[k] = ws->x0[k] + h[k];
    cr_l2norm_forward(ws->g, ws->norm, ws->gpre, n, d);
}

/* Distillation: mean over the 2n rows of 1 - <normalize(Wd g_r), t_(r mod n)>; adds weight * its gradient into
 * ws->dg and the map's gradient. */
static double distill_loss(const cr_textenc *e, cr_textenc_ws *ws, const float *teacher, int64_t n, float weight, cr_slab *grad) {
    const int64_t d = e->dim, td = e->teacher_dim, R = 2 * n;
    const float *Wd = cr_slab_at(&e->params, e->t_distill);
    cr_linear_forward(ws->y, ws->g, Wd, NULL, R, d, td);
    cr_l2norm_forward(ws->yn, ws->ynorm, ws->y, R, td);
    double loss = 0;
    const float c = -weight / (float)R;
    for (int64_t r = 0; r < R; r++) {
        const float *yr = ws->yn + r * td, *t = teacher + (r % n) * td;
        float *dr = ws->dyn + r * td;
        double dot = 0;
        for (int64_t k = 0; k < td; k++) dot += (double)yr[k] * t[k], dr[k] = c * t[k];
        loss += 1 - dot;
    }
    memset(ws->dy, 0, (size_t)(R * td) * sizeof(float));
    cr_l2norm_backward(ws->dy, ws->dyn, ws->yn, ws->ynorm, R, td);
    cr_linear_backward(ws->dg, cr_slab_at(grad, e->t_distill), NULL, ws->dy, ws->g, Wd, R, d, td);
    return loss / (double)R;
}

double cr_textenc_loss(const cr_textenc *e, cr_textenc_ws *ws, const cr_textenc_batch *b, float tau, float distill,
                       cr_slab *grad, double *nce, double *dist) {
    const int64_t d = e->dim, n = b->n, R = 2 * n;
    cr_textenc_forward(e, ws, b->off, b->idx, b->w, R);
    memset(ws->dg, 0, (size_t)(R * d) * sizeof(float));
    *nce = cr_infonce(ws->dg, ws->dg + n * d, ws->nce_scratch, ws->g, ws->g + n * d, n, d, tau, 1, 1.0f);
    *dist = b->teacher && distill > 0 && e->t_distill >= 0 ? distill_loss(e, ws, b->teacher, n, distill, grad) : 0.0;
    /* g = normalize(x0 + MLP(x0)) */
    memset(ws->dgpre, 0, (size_t)(R * d) * sizeof(float));
    cr_l2norm_backward(ws->dgpre, ws->dg, ws->g, ws->norm, R, d);
    cr_mlp_backward(&e->mlp, &e->params, grad, ws->x0, R, ws->pre, ws->acts, ws->dgpre, ws->dxm, ws->mlp_scratch);
    for (int64_t k = 0; k < R * d; k++) ws->dx0[k] = ws->dgpre[k] + ws->dxm[k];
    cr_embbag_backward(cr_slab_at(grad, e->t_emb), NULL, ws->dx0, NULL, e->hashing.n_buckets, d, b->off, b->idx, b->w, R,
                       CR_BAG_SUM);
    return *nce + (double)distill * *dist;
}

/* ---- encoding ---- */

/* A thread's buffers for encoding. */
typedef struct {
    cr_text_work *work;
    cr_text_bag bag;
    float *tmp, *w;
    int32_t *idx;
    int64_t cap;
    char *join;                 /* title and text joined */
    int64_t cap_join;
    cr_textenc_ws ws;
    uint8_t *any;               /* (ENCODE_CHUNK) whether the text has a token */
    cr_status st;
    char msg[256];
} enc_thread;

/* Where the texts come from: an array, or a dataset's items. */
typedef struct {
    const char *const *texts;
    const cr_dataset *d;
    int fields;
} text_source;

static cr_status source_text(const text_source *src, enc_thread *t, int64_t i, const char **s, int64_t *len) {
    if (src->texts) {
        *s = src->texts[i];
        *len = (int64_t)strlen(*s);
        return CR_OK;
    }
    const char *title = cr_dataset_item_title(src->d, (int32_t)i), *text = cr_dataset_item_text(src->d, (int32_t)i);
    if (src->fields != (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT)) {
        *s = src->fields == CR_TEXT_FIELD_TEXT ? text : title;
        *len = (int64_t)strlen(*s);
        return CR_OK;
    }
    int64_t a = (int64_t)strlen(title), b = (int64_t)strlen(text);
    cr_status st = cr_grow((void **)&t->join, &t->cap_join, a + b + 2, 1);
    if (st) return st;
    memcpy(t->join, title, (size_t)a);
    t->join[a] = ' ';
    memcpy(t->join + a + 1, text, (size_t)b + 1);
    *s = t->join;
    *len = a + b + 1;
    return CR_OK;
}

/* x0 (d) of text i and whether it has any token. */
static cr_status encode_bag(const cr_textenc *e, const text_source *src, enc_thread *t, int64_t i, float *x0, uint8_t *any) {
    const char *s;
    int64_t len;
    cr_status st;
    if ((st = source_text(src, t, i, &s, &len)) || (st = cr_text_hash_bag(t->work, &e->hashing, s, len, &t->bag))) return st;
    if (t->bag.n > t->cap) {
        int64_t c1 = t->cap, c2 = t->cap;
        if ((st = cr_grow((void **)&t->tmp, &t->cap, t->bag.n, sizeof *t->tmp)) ||
            (st = cr_grow((void **)&t->w, &c1, t->bag.n, sizeof *t->w)) ||
            (st = cr_grow((void **)&t->idx, &c2, t->bag.n, sizeof *t->idx)))
            return st;
    }
    const int64_t m = cr_textenc_weigh(e, &t->bag, t->tmp, t->idx, t->w), off[2] = {0, m};
    cr_embbag_forward_ref(x0, cr_slab_at(&e->params, e->t_emb), e->hashing.n_buckets, e->dim, off, t->idx, t->w, 1, CR_BAG_SUM);
    *any = m > 0;
    return CR_OK;
}

/* Texts [s, s + m) (m <= ENCODE_CHUNK) into out rows s.. : their bags' sums, then the MLP on the whole chunk. */
static cr_status encode_chunk(const cr_textenc *e, const text_source *src, enc_thread *t, int64_t s, int64_t m, float *out) {
    const int64_t d = e->dim;
    cr_textenc_ws *ws = &t->ws;
    cr_status st;
    for (int64_t k = 0; k < m; k++)
        if ((st = encode_bag(e, src, t, s + k, ws->x0 + k * d, &t->any[k]))) {
            cr_errmsg_prefix("text %lld", (long long)(s + k));
            return st;
        }
    cr_mlp_forward(&e->mlp, &e->params, ws->x0, m, ws->pre, ws->acts);
    const float *h = ws->acts + cr_mlp_act_size(&e->mlp, m) - m * d;
    for (int64_t k = 0; k < m * d; k++) ws->gpre[k] = ws->x0[k] + h[k];
    cr_l2norm_forward(out + s * d, ws->norm, ws->gpre, m, d);
    for (int64_t k = 0; k < m; k++)
        if (!t->any[k]) memset(out + (s + k) * d, 0, (size_t)d * sizeof(float));
    return CR_OK;
}

static cr_status encode(const cr_textenc *e, const text_source *src, int64_t n, float *out) {
    const int64_t C = ENCODE_CHUNK, n_chunks = (n + C - 1) / C;
#ifdef _OPENMP
    int64_t want = e->threads > 0 ? e->threads : omp_get_max_threads();
#else
    int64_t want = 1;
#endif
    const int nt = (int)(want < n_chunks ? want : n_chunks > 0 ? n_chunks : 1);
    enc_thread *th = cr_calloc((size_t)nt, sizeof *th);
    cr_status st = th ? CR_OK : cr_fail(CR_ERR_NOMEM, "out of memory for text encoding on %d threads", nt);
    for (int t = 0; !st && t < nt; t++)
        if (!(st = cr_text_work_new(&th[t].work)) && !(st = cr_textenc_ws_init(&th[t].ws, e, C)) &&
            !(th[t].any = cr_malloc((size_t)C)))
            st = cr_fail(CR_ERR_NOMEM, "out of memory for text encoding on %d threads", nt);
    if (!st) {
        cr_blas_single_enter();     /* each chunk's products on its own thread */
        CR_OMP(omp parallel for num_threads(nt) schedule(dynamic, 1))
        for (int64_t c = 0; c < n_chunks; c++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            enc_thread *t = &th[tid];
            if (t->st) continue;
            if ((t->st = encode_chunk(e, src, t, c * C, n - c * C < C ? n - c * C : C, out)))
                snprintf(t->msg, sizeof t->msg, "%s", cr_errmsg());
        }
        cr_blas_single_leave();
        for (int t = 0; t < nt && !st; t++)
            if (th[t].st) st = cr_fail(th[t].st, "%s", th[t].msg);
    }
    for (int t = 0; th && t < nt; t++) {
        cr_text_work_free(th[t].work);
        cr_text_bag_free(&th[t].bag);
        cr_textenc_ws_free(&th[t].ws);
        cr_free(th[t].tmp), cr_free(th[t].w), cr_free(th[t].idx), cr_free(th[t].join), cr_free(th[t].any);
    }
    cr_free(th);
    return st;
}

cr_status cr_textenc_encode(const cr_textenc *e, const char *const *texts, int64_t n, float *out) {
    const text_source src = {texts, NULL, 0};
    return encode(e, &src, n, out);
}

cr_status cr_textenc_encode_items(const cr_textenc *e, const cr_dataset *d, int fields, float *out) {
    if (!(fields & (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT)) || (fields & ~(CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT)))
        return cr_fail(CR_ERR_ARG, "text encoder: fields must be title, text or both");
    const text_source src = {NULL, d, fields};
    return encode(e, &src, cr_dataset_inter(d)->n_items, out);
}

/* ---- the .crm file ---- */

cr_status cr_textenc_save(const cr_textenc *e, const char *path) {
    const cr_textenc_train_params *p = &e->trained;
    cr_filew *w;
    cr_status st = cr_filew_new(&w, "CRM", CR_TEXTENC_CRM_VERSION);
    if (st) return st;
    /* the generic .crm keys, zero: not a recommender, so cr_model_load names the type instead */
    if ((st = cr_filew_meta_str(w, "model", "text-encoder")) || (st = cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING)) ||
        (st = cr_filew_meta_i64(w, "n_users", 0)) || (st = cr_filew_meta_i64(w, "n_items", 0)) ||
        (st = cr_filew_meta_i64(w, "n_domains", 0)) || (st = cr_filew_meta_i64(w, "dataset_crc", 0)) ||
        (st = cr_text_hashing_write(w, &e->hashing)) || (st = cr_filew_meta_i64(w, "textenc.dim", e->dim)) ||
        (st = cr_filew_meta_i64(w, "textenc.per_item", e->per_item)) ||
        (st = cr_filew_meta_str(w, "textenc.weighting", "tfidf")) ||
        (st = cr_filew_meta_i64(w, "textenc.n_docs", e->stats.n_docs)) ||
        (st = cr_filew_meta_i64(w, "textenc.n_tokens", e->stats.n_tokens)) ||
        (st = cr_filew_meta_i64(w, "textenc.teacher_dim", e->teacher_dim)) ||
        (st = cr_filew_meta_str(w, "textenc.objective", "contrastive")) ||
        (st = cr_filew_meta_i64(w, "textenc.epochs", p->epochs)) || (st = cr_filew_meta_i64(w, "textenc.batch", p->batch)) ||
        (st = cr_filew_meta_f64(w, "textenc.lr", p->lr)) || (st = cr_filew_meta_f64(w, "textenc.temperature", p->temperature)) ||
        (st = cr_filew_meta_f64(w, "textenc.view_dropout", p->view_dropout)) ||
        (st = cr_filew_meta_f64(w, "textenc.distill", p->distill)) ||
        (st = cr_filew_meta_i64(w, "textenc.init_rows", e->n_init)) ||
        (st = cr_filew_meta_i64(w, "textenc.seed", (int64_t)p->seed)) ||
        (st = cr_filew_array(w, "textenc.df", CR_DT_I32, e->stats.df, e->hashing.n_buckets)))
        goto out;
    for (int t = 0; t < e->params.n; t++) {
        const cr_tensor *x = &e->params.t[t];
        if ((st = cr_filew_array(w, x->name, CR_DT_F32, cr_slab_at(&e->params, t), x->rows * x->cols))) goto out;
    }
    st = cr_filew_commit(w, path);
out:
    cr_filew_free(w);
    return st;
}

/* A metadata value that is informational: def when absent. */
static int64_t meta_i64_or(const cr_file *f, const char *key, int64_t def) {
    int64_t v;
    return cr_file_get_i64(f, key, &v) == CR_OK ? v : (cr_clear_error(), def);
}

static double meta_f64_or(const cr_file *f, const char *key, double def) {
    double v;
    return cr_file_get_f64(f, key, &v) == CR_OK ? v : (cr_clear_error(), def);
}

cr_status cr_textenc_load(cr_textenc **out, const char *path) {
    *out = NULL;
    cr_file *f;
    cr_status st = cr_file_open(&f, path, "CRM", CR_TEXTENC_CRM_VERSION);
    if (st) return st;
    cr_textenc *e = NULL;
    const char *model;
    cr_text_hashing h;
    int64_t dim, per_item, n_docs, n_tokens, tdim;
    if ((st = cr_file_get_str(f, "model", &model))) goto fail;
    if (strcmp(model, "text-encoder")) {
        st = cr_fail(CR_ERR_FORMAT, "%s: a crossrec model of type '%s', not a text encoder", path, model);
        cr_set_hint("text encoders are written by `crossrec pretrain`");
        goto fail;
    }
    if ((st = cr_text_hashing_read(f, &h))) {
        cr_errmsg_prefix("%s", path);
        goto fail;
    }
    if ((st = cr_file_get_i64(f, "textenc.dim", &dim)) || (st = cr_file_get_i64(f, "textenc.per_item", &per_item)) ||
        (st = cr_file_get_i64(f, "textenc.n_docs", &n_docs)) || (st = cr_file_get_i64(f, "textenc.n_tokens", &n_tokens)) ||
        (st = cr_file_get_i64(f, "textenc.teacher_dim", &tdim)))
        goto fail;
    if (dim < 1 || dim > CR_TEXTENC_MAX_DIM || per_item < 0 || n_docs < 0 || n_docs >= INT32_MAX || n_tokens < 0 || tdim < 0 ||
        tdim > CR_TEXTENC_MAX_TEACHER_DIM) {
        st = cr_fail(CR_ERR_FORMAT, "%s: text encoder settings out of range (dim %lld, per_item %lld, n_docs %lld, n_tokens %lld, "
                     "teacher_dim %lld)", path, (long long)dim, (long long)per_item, (long long)n_docs, (long long)n_tokens,
                     (long long)tdim);
        goto fail;
    }
    /* the file must hold the bucket table the settings ask for before memory is laid out for it (a small
     * damaged or crafted file must not make the loader allocate gigabytes) */
    const void *a;
    if ((st = cr_file_get_array(f, "textenc.emb", CR_DT_F32, h.n_buckets * dim, &a, NULL)) ||
        (st = cr_file_get_array(f, "textenc.df", CR_DT_I32, h.n_buckets, &a, NULL)))
        goto fail;
    const int32_t *df = a;
    if ((st = cr_textenc_new(&e, &h, dim, per_item, tdim))) goto fail;
    for (int64_t b = 0; b < h.n_buckets; b++)
        if (df[b] < 0 || df[b] > n_docs) {
            st = cr_fail(CR_ERR_FORMAT, "%s: textenc.df[%lld] = %d is outside 0..%lld (the document count)", path, (long long)b,
                         df[b], (long long)n_docs);
            goto fail;
        }
    memcpy(e->stats.df, df, (size_t)h.n_buckets * sizeof *df);
    e->stats.n_docs = n_docs, e->stats.n_tokens = n_tokens;
    for (int t = 0; t < e->params.n; t++) {
        const cr_tensor *x = &e->params.t[t];
        const int64_t cnt = x->rows * x->cols;
        if ((st = cr_file_get_array(f, x->name, CR_DT_F32, cnt, &a, NULL))) goto fail;
        const float *v = a;
        for (int64_t k = 0; k < cnt; k++)
            if (!isfinite(v[k])) {
                st = cr_fail(CR_ERR_FORMAT, "%s: %s[%lld] is not a finite number", path, x->name, (long long)k);
                goto fail;
            }
        memcpy(cr_slab_at(&e->params, t), v, (size_t)cnt * sizeof(float));
    }
    cr_textenc_train_params *p = &e->trained;
    *p = cr_textenc_default_train_params();
    p->dim = dim, p->hashing = h, p->per_item = per_item, p->teacher_dim = tdim;
    p->epochs = (int)meta_i64_or(f, "textenc.epochs", p->epochs);
    p->batch = meta_i64_or(f, "textenc.batch", p->batch);
    p->lr = meta_f64_or(f, "textenc.lr", p->lr);
    p->temperature = meta_f64_or(f, "textenc.temperature", p->temperature);
    p->view_dropout = meta_f64_or(f, "textenc.view_dropout", p->view_dropout);
    p->distill = meta_f64_or(f, "textenc.distill", p->distill);
    p->seed = (uint64_t)meta_i64_or(f, "textenc.seed", (int64_t)p->seed);
    e->n_init = meta_i64_or(f, "textenc.init_rows", 0);
    cr_file_close(f);
    *out = e;
    return CR_OK;
fail:
    cr_textenc_free(e);
    cr_file_close(f);
    return st;
}

/* pretrain.c — training crossrec's text encoder on item text alone (crossrec/textenc.h; `crossrec pretrain`).
 *
 * Examples: every item with a token gives two views of itself (src/text/textenc_impl.h has the encoder and its
 * loss). An item with a title and a text pairs the two (title <-> attributes); an item with one of them pairs two
 * dropout views of it, each keeping every bucket with probability 1 - view_dropout (at least its heaviest one),
 * weights rescaled to unit norm. Up to `valid` items that have both fields, evenly spaced, are held out: after
 * each epoch their titles are encoded and each looks for its own text among theirs (valid_r1).
 *
 * Each epoch shuffles the training items (stream "textenc.order.<epoch>") and cuts them into batches of `batch`;
 * a last batch of one item is dropped (nothing to contrast it with). Adam updates the MLP (and the distillation
 * map) densely and the table rows a batch touched lazily, one step per batch. One thread gives the same bits for a
 * seed; the layers are bit-identical at any thread count, OpenBLAS's products at a given one. */
#include "train_impl.h"

#include "../text/textenc_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TEXTENC_INIT_STD 0.1    /* the table's initial rows, as the tower's text table */

typedef struct {
    const cr_textenc_train_params *p;
    cr_textenc *e;
    cr_textenc_bags title, text;
    int32_t *train;             /* (n_train) items trained on, shuffled each epoch */
    int32_t *valid;             /* (n_valid) held-out items */
    int64_t n_train, n_valid;
    float *teacher;             /* (n, teacher_dim) unit rows, or NULL */
    cr_slab grad;
    cr_optimizer opt;
    cr_textenc_ws ws;
    int64_t *boff;              /* (2 batch + 1) the batch's bags */
    int32_t *bidx;              /* (cap_bag) */
    float *bw;                  /* (cap_bag) */
    float *bteach;              /* (batch, teacher_dim) */
    int32_t *touched;           /* (cap_bag) */
    uint8_t *seen;              /* (n_buckets) */
    float *vg;                  /* (2 n_valid, dim) held-out titles, then texts */
} pretrain;

static void pretrain_free(pretrain *t) {
    cr_textenc_bags_free(&t->title);
    cr_textenc_bags_free(&t->text);
    void *bufs[] = {t->train, t->valid, t->teacher, t->boff, t->bidx, t->bw, t->bteach, t->touched, t->seen, t->vg};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) cr_free(bufs[k]);
    cr_slab_free(&t->grad);
    cr_opt_free(&t->opt);
    cr_textenc_ws_free(&t->ws);
}

static int64_t bag_len(const cr_textenc_bags *b, int64_t i) { return b->off[i + 1] - b->off[i]; }

/* Appends bag i of b to the batch as bag r: every entry (drop 0), or each kept with probability 1 - drop (at least
 * the heaviest) and the weights scaled back to unit norm. */
static void put_view(pretrain *t, int64_t r, const cr_textenc_bags *b, int64_t i, float drop, cr_rng *rng) {
    int64_t at = t->boff[r], a = b->off[i], n = bag_len(b, i);
    if (drop <= 0) {
        memcpy(t->bidx + at, b->idx + a, (size_t)n * sizeof *t->bidx);
        memcpy(t->bw + at, b->w + a, (size_t)n * sizeof *t->bw);
        t->boff[r + 1] = at + n;
        return;
    }
    int64_t m = 0;
    double ss = 0;
    for (int64_t k = 0; k < n; k++)
        if (!(cr_rng_uniform(rng) < drop)) {
            t->bidx[at + m] = b->idx[a + k], t->bw[at + m] = b->w[a + k];
            ss += (double)b->w[a + k] * b->w[a + k];
            m++;
        }
    if (m == 0) {   /* the heaviest bucket (bags are in descending weight) */
        t->bidx[at] = b->idx[a], t->bw[at] = b->w[a];
        ss = (double)b->w[a] * b->w[a];
        m = 1;
    }
    for (int64_t k = 0; k < m; k++) t->bw[at + k] = (float)(t->bw[at + k] / sqrt(ss));
    t->boff[r + 1] = at + m;
}

/* Runs items[0..B) as one batch: views, loss, backward, Adam. Returns the loss and its parts. */
static double run_batch(pretrain *t, const int32_t *items, int64_t B, cr_rng *rng, double *nce, double *dist) {
    cr_textenc *e = t->e;
    const int64_t d = e->dim, td = e->teacher_dim;
    const float drop = (float)t->p->view_dropout;
    t->boff[0] = 0;
    /* first views at rows 0..B-1, second views at B..2B-1: filled in that order, each row once */
    for (int pass = 0; pass < 2; pass++)
        for (int64_t k = 0; k < B; k++) {
            const int32_t i = items[k];
            const int64_t r = pass * B + k;
            if (bag_len(&t->title, i) > 0 && bag_len(&t->text, i) > 0) put_view(t, r, pass ? &t->text : &t->title, i, 0, rng);
            else put_view(t, r, bag_len(&t->title, i) > 0 ? &t->title : &t->text, i, drop, rng);
        }
    for (int64_t k = 0; t->teacher && k < B; k++)
        memcpy(t->bteach + k * td, t->teacher + (int64_t)items[k] * td, (size_t)td * sizeof(float));
    const cr_textenc_batch b = {B, t->boff, t->bidx, t->bw, t->teacher ? t->bteach : NULL};
    double loss = cr_textenc_loss(e, &t->ws, &b, (float)t->p->temperature, (float)t->p->distill, &t->grad, nce, dist);

    cr_slab *P = &e->params, *G = &t->grad;
    const float lr = (float)t->p->lr;
    cr_opt_step(&t->opt);
    cr_opt_update(&t->opt, P, e->dense_off, G->data + e->dense_off, P->size - e->dense_off, lr);
    memset(G->data + e->dense_off, 0, (size_t)(P->size - e->dense_off) * sizeof(float));
    const int64_t emb_off = P->t[e->t_emb].offset;
    float *gemb = cr_slab_at(G, e->t_emb);
    const int64_t n_touched = cr_embbag_touched(t->touched, t->seen, t->bidx, t->boff[2 * B]);
    for (int64_t k = 0; k < n_touched; k++) {
        const int64_t row = t->touched[k];
        cr_opt_update(&t->opt, P, emb_off + row * d, gemb + row * d, d, lr);
        memset(gemb + row * d, 0, (size_t)d * sizeof(float));
    }
    return loss;
}

/* Share of held-out items whose title's vector is nearer to its own text's than to any other held-out text's (a
 * tie counts against it). */
static double valid_r1(pretrain *t) {
    const cr_textenc *e = t->e;
    const int64_t d = e->dim, nv = t->n_valid, cap = t->ws.cap;
    if (nv == 0) return NAN;
    for (int f = 0; f < 2; f++) {
        const cr_textenc_bags *b = f ? &t->text : &t->title;
        for (int64_t s = 0; s < nv; s += cap) {
            const int64_t m = nv - s < cap ? nv - s : cap;
            t->boff[0] = 0;
            for (int64_t k = 0; k < m; k++) put_view(t, k, b, t->valid[s + k], 0, NULL);
            cr_textenc_forward(e, &t->ws, t->boff, t->bidx, t->bw, m);
            memcpy(t->vg + (f * nv + s) * d, t->ws.g, (size_t)(m * d) * sizeof(float));
        }
    }
    int64_t hits = 0;
    for (int64_t i = 0; i < nv; i++) {
        const float *q = t->vg + i * d;
        float own = 0;
        for (int64_t c = 0; c < d; c++) own += q[c] * t->vg[(nv + i) * d + c];
        int first = 1;
        for (int64_t j = 0; j < nv && first; j++) {
            if (j == i) continue;
            float s = 0;
            for (int64_t c = 0; c < d; c++) s += q[c] * t->vg[(nv + j) * d + c];
            first = s < own;
        }
        hits += first;
    }
    return (double)hits / (double)nv;
}

static void shuffle_i32(int32_t *a, int64_t n, cr_rng *r) {
    for (int64_t k = n - 1; k > 0; k--) {
        int64_t j = (int64_t)cr_rng_below(r, (uint32_t)(k + 1));
        int32_t x = a[k];
        a[k] = a[j], a[j] = x;
    }
}

/* Training and held-out items: those with a token; up to p->valid items with both fields, evenly spaced among them
 * (at most a fifth of them), are held out. */
static cr_status choose_items(pretrain *t, int64_t n, cr_textenc_train_report *r) {
    int64_t n_pairs = 0;
    for (int64_t i = 0; i < n; i++) n_pairs += bag_len(&t->title, i) > 0 && bag_len(&t->text, i) > 0;
    t->n_valid = t->p->valid < n_pairs / 5 ? t->p->valid : n_pairs / 5;
    t->train = cr_malloc(((size_t)n + 1) * sizeof *t->train);
    t->valid = cr_malloc(((size_t)t->n_valid + 1) * sizeof *t->valid);
    if (!t->train || !t->valid) return cr_fail(CR_ERR_NOMEM, "out of memory for %lld items", (long long)n);
    int64_t seen_pairs = 0, nv = 0;
    for (int64_t i = 0; i < n; i++) {
        const int has_title = bag_len(&t->title, i) > 0, has_text = bag_len(&t->text, i) > 0;
        if (!has_title && !has_text) {
            r->n_empty++;
            continue;
        }
        if (has_title && has_text) {
            /* pair number seen_pairs is held out when it is the next of the evenly spaced positions */
            const int held = nv < t->n_valid && seen_pairs == nv * n_pairs / t->n_valid;
            seen_pairs++;
            if (held) {
                t->valid[nv++] = (int32_t)i;
                continue;
            }
            r->n_pairs++;
        } else {
            r->n_single++;
        }
        t->train[t->n_train++] = (int32_t)i;
    }
    r->n_valid = t->n_valid;
    if (t->n_train < 2)
        return cr_fail(CR_ERR_ARG, "text encoder: %lld item%s with text to train on (at least 2 needed)", (long long)t->n_train,
                       t->n_train == 1 ? "" : "s");
    return CR_OK;
}

/* Random initial weights; the table's rows from word vectors where they have them, scaled to the random rows'
 * expected norm so that the optimizer's steps mean the same for both kinds of rows. */
static cr_status init_weights(pretrain *t, cr_textenc_train_report *r) {
    cr_textenc *e = t->e;
    const int64_t d = e->dim, nb = e->hashing.n_buckets;
    cr_rng rng;
    cr_rng_named(&rng, t->p->seed, "textenc.init");
    cr_slab_normal(&e->params, e->t_emb, TEXTENC_INIT_STD, &rng);
    cr_mlp_init(&e->mlp, &e->params, &rng);
    if (e->t_distill >= 0) cr_slab_normal(&e->params, e->t_distill, sqrt(1.0 / (double)d), &rng);
    const cr_wordvec *wv = t->p->init;
    if (!wv) return CR_OK;
    if (cr_wordvec_dim(wv) != d)
        return cr_fail(CR_ERR_ARG, "text encoder: the word vectors have dim %lld, the encoder %lld", (long long)cr_wordvec_dim(wv),
                       (long long)d);
    float *table = cr_malloc((size_t)(nb * d) * sizeof *table);
    if (!table) return cr_fail(CR_ERR_NOMEM, "out of memory for word vector initialisation (%lld rows)", (long long)nb);
    for (int64_t k = 0; k < nb * d; k++) table[k] = NAN;   /* rows left NaN: no word vector */
    int64_t n_set = 0;
    cr_status st = cr_wordvec_init_buckets(wv, &e->hashing, table, &n_set);
    double norms = 0;
    int64_t n_rows = 0;
    for (int64_t b = 0; !st && b < nb; b++) {
        if (isnan(table[b * d])) continue;
        double s = 0;
        for (int64_t c = 0; c < d; c++) s += (double)table[b * d + c] * table[b * d + c];
        norms += sqrt(s), n_rows++;
    }
    const double scale = n_rows && norms > 0 ? TEXTENC_INIT_STD * sqrt((double)d) / (norms / (double)n_rows) : 1.0;
    float *emb = cr_slab_at(&e->params, e->t_emb);
    for (int64_t b = 0; !st && b < nb; b++)
        if (!isnan(table[b * d]))
            for (int64_t c = 0; c < d; c++) emb[b * d + c] = (float)(table[b * d + c] * scale);
    cr_free(table);
    e->n_init = r->n_init = n_rows;
    return st;
}

static cr_status alloc_batch(pretrain *t) {
    const cr_textenc *e = t->e;
    const int64_t B = t->p->batch, d = e->dim, td = e->teacher_dim, nb = e->hashing.n_buckets;
    int64_t longest = 1;
    for (int64_t i = 0; i < t->title.n; i++) {
        longest = bag_len(&t->title, i) > longest ? bag_len(&t->title, i) : longest;
        longest = bag_len(&t->text, i) > longest ? bag_len(&t->text, i) : longest;
    }
    const int64_t cap_bag = 2 * B * longest;
    cr_status st;
    if ((st = cr_slab_like(&t->grad, &e->params)) || (st = cr_textenc_ws_init(&t->ws, e, 2 * B))) return st;
    t->boff = cr_malloc(((size_t)2 * B + 1) * sizeof *t->boff);
    t->bidx = cr_malloc((size_t)cap_bag * sizeof *t->bidx);
    t->bw = cr_malloc((size_t)cap_bag * sizeof *t->bw);
    t->bteach = cr_malloc(((size_t)(B * td) + 1) * sizeof *t->bteach);
    t->touched = cr_malloc((size_t)cap_bag * sizeof *t->touched);
    t->seen = cr_calloc((size_t)nb, 1);
    t->vg = cr_malloc(((size_t)(2 * t->n_valid * d) + 1) * sizeof *t->vg);
    if (!t->boff || !t->bidx || !t->bw || !t->bteach || !t->touched || !t->seen || !t->vg)
        return cr_fail(CR_ERR_NOMEM, "out of memory for the text encoder's batch buffers (%lld items a batch)", (long long)B);
    return CR_OK;
}

/* The teacher rows, copied and scaled to unit length (a zero row stays zero). */
static cr_status copy_teacher(pretrain *t, int64_t n) {
    const int64_t td = t->p->teacher_dim;
    if (!(t->teacher = cr_malloc(((size_t)(n * td) + 1) * sizeof *t->teacher)))
        return cr_fail(CR_ERR_NOMEM, "out of memory for %lld teacher vectors", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        const float *src = t->p->teacher + i * td;
        float *dst = t->teacher + i * td;
        double s = 0;
        for (int64_t c = 0; c < td; c++) {
            if (!isfinite(src[c])) return cr_fail(CR_ERR_ARG, "text encoder: teacher vector %lld is not finite", (long long)i);
            s += (double)src[c] * src[c];
        }
        for (int64_t c = 0; c < td; c++) dst[c] = s > 0 ? (float)(src[c] / sqrt(s)) : 0.0f;
    }
    return CR_OK;
}

static cr_status train_epochs(pretrain *t, cr_textenc_train_report *r) {
    const cr_textenc_train_params *p = t->p;
    const int64_t B = p->batch, n_batches = (t->n_train + B - 1) / B;
    for (int ep = 0; ep < p->epochs; ep++) {
        const double t0 = cr_now();
        char name[48];
        cr_rng order, views;
        snprintf(name, sizeof name, "textenc.order.%d", ep);
        cr_rng_named(&order, p->seed, name);
        snprintf(name, sizeof name, "textenc.views.%d", ep);
        cr_rng_named(&views, p->seed, name);
        shuffle_i32(t->train, t->n_train, &order);
        double sum = 0, sum_nce = 0, sum_dist = 0;
        int64_t n_rows = 0;
        for (int64_t b = 0; b < n_batches; b++) {
            const int64_t s = b * B, m = t->n_train - s < B ? t->n_train - s : B;
            if (m >= 2) {
                double nce, dist, loss = run_batch(t, t->train + s, m, &views, &nce, &dist);
                sum += loss * (double)m, sum_nce += nce * (double)m, sum_dist += dist * (double)m;
                n_rows += m;
                r->steps++;
            }
            if (p->on_batch) p->on_batch(ep + 1, b + 1, n_batches, p->user);
        }
        cr_textenc_epoch row = {ep + 1, sum / (double)n_rows, sum_nce / (double)n_rows, sum_dist / (double)n_rows, valid_r1(t), 0};
        row.seconds = cr_now() - t0;
        if (!isfinite(row.loss))
            return cr_fail(CR_ERR_ARG, "text encoder: the loss diverged in epoch %d", ep + 1);
        r->loss = row.loss, r->valid_r1 = row.valid_r1;
        if (p->on_epoch) p->on_epoch(&row, p->user);
    }
    return CR_OK;
}

cr_status cr_textenc_train_texts(cr_textenc **out, const char *const *titles, const char *const *texts, int64_t n,
                                 const cr_textenc_train_params *p, cr_textenc_train_report *rep) {
    *out = NULL;
    cr_textenc_train_report dummy;
    cr_textenc_train_report *r = rep ? rep : &dummy;
    memset(r, 0, sizeof *r);
    const double t0 = cr_now();
    const char *why = cr_textenc_check_train_params(p);
    if (why) return cr_fail(CR_ERR_ARG, "text encoder: %s", why);
    if (n < 0 || (n > 0 && (!titles || !texts))) return cr_fail(CR_ERR_ARG, "text encoder: bad text lists");
    for (int64_t i = 0; i < n; i++)
        if (!titles[i] || !texts[i]) return cr_fail(CR_ERR_ARG, "text encoder: item %lld has a NULL title or text", (long long)i);
#ifdef _OPENMP
    const int saved_threads = omp_get_max_threads();
    if (p->threads > 0) omp_set_num_threads(p->threads);
#endif
    pretrain t;
    memset(&t, 0, sizeof t);
    t.p = p;
    cr_status st = cr_textenc_new(&t.e, &p->hashing, p->dim, p->per_item, p->teacher ? p->teacher_dim : 0);
    if (!st) {
        t.e->trained = *p;
        t.e->trained.init = NULL, t.e->trained.teacher = NULL, t.e->trained.on_epoch = NULL, t.e->trained.on_batch = NULL;
        t.e->trained.user = NULL;
        if (!p->teacher) t.e->trained.distill = 0;
    }
    cr_opt_params op = cr_opt_default_params(CR_OPT_ADAM);
    op.lr = (float)p->lr;
    if (!st && !(st = cr_textenc_prepare(t.e, titles, texts, n, &t.title, &t.text)) && !(st = choose_items(&t, n, r)) &&
        !(st = init_weights(&t, r)) && !(st = p->teacher ? copy_teacher(&t, n) : CR_OK) && !(st = alloc_batch(&t)) &&
        !(st = cr_opt_init(&t.opt, &t.e->params, &op)))
        st = train_epochs(&t, r);
#ifdef _OPENMP
    omp_set_num_threads(saved_threads);
#endif
    pretrain_free(&t);
    r->seconds = cr_now() - t0;
    if (st) {
        cr_textenc_free(t.e);
        return st;
    }
    *out = t.e;
    return CR_OK;
}

cr_status cr_textenc_train(cr_textenc **e, const cr_dataset *d, const cr_textenc_train_params *p, cr_textenc_train_report *r) {
    const int64_t n = cr_dataset_inter(d)->n_items;
    const char **titles = cr_malloc(((size_t)n + 1) * sizeof *titles), **texts = cr_malloc(((size_t)n + 1) * sizeof *texts);
    if (!titles || !texts) {
        cr_free(titles), cr_free(texts);
        *e = NULL;
        return cr_fail(CR_ERR_NOMEM, "out of memory for the text of %lld items", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) titles[i] = cr_dataset_item_title(d, (int32_t)i), texts[i] = cr_dataset_item_text(d, (int32_t)i);
    cr_status st = cr_textenc_train_texts(e, titles, texts, n, p, r);
    cr_free(titles), cr_free(texts);
    return st;
}

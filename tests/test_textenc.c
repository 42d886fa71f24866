/* test_textenc.c — crossrec's pretrained text encoder (crossrec/textenc.h): the training loss's gradient against
 * central differences of an independent double-precision forward pass, save -> load -> the same vectors, the
 * same bits for a seed at one thread and at any encoding thread count, bad files, word vector initialisation,
 * learning on a synthetic catalogue whose titles and texts share no word, and the `pretrain` and `embed
 * --method pretrained:FILE` commands. */
#include "test.h"

#include "crossrec/data.h"
#include "crossrec/embed.h"
#include "text/textenc_impl.h"

#include <stdlib.h>

/* ---- the bag ---- */

TEST(textenc_bag_keeps_the_heaviest_buckets) {
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 16;
    cr_textenc *e;
    CHECK_OK(cr_textenc_new(&e, &h, 4, 2, 0));
    /* 4 documents; idf = ln(5 / (1 + df)) + 1: df 1 -> 1.9163, df 2 -> 1.5108, df 4 -> 1 */
    e->stats.n_docs = 4;
    e->stats.df[3] = 1, e->stats.df[5] = 4, e->stats.df[7] = 1, e->stats.df[9] = 2;
    int32_t bucket[4] = {3, 5, 7, 9}, count[4] = {1, 1, 1, 1}, idx[4];
    const cr_text_bag bag = {bucket, count, 4, 4, 0, 0};
    float tmp[4], w[4];
    /* two kept: the tie of buckets 3 and 7 (both df 1), lower bucket first, scaled to unit norm */
    CHECK_EQ(cr_textenc_weigh(e, &bag, tmp, idx, w), 2);
    CHECK(idx[0] == 3 && idx[1] == 7);
    CHECK_NEAR(w[0], sqrt(0.5), 1e-6);
    CHECK_NEAR(w[1], sqrt(0.5), 1e-6);
    e->per_item = 1;
    CHECK_EQ(cr_textenc_weigh(e, &bag, tmp, idx, w), 1);
    CHECK(idx[0] == 3 && w[0] == 1.0f);
    /* all, in descending weight */
    e->per_item = 0;
    CHECK_EQ(cr_textenc_weigh(e, &bag, tmp, idx, w), 4);
    CHECK(idx[0] == 3 && idx[1] == 7 && idx[2] == 9 && idx[3] == 5);
    const double a = log(2.5) + 1, b = log(5.0 / 3) + 1, norm = sqrt(2 * a * a + b * b + 1);
    CHECK_NEAR(w[0], a / norm, 1e-6);
    CHECK_NEAR(w[2], b / norm, 1e-6);
    CHECK_NEAR(w[3], 1 / norm, 1e-6);
    cr_textenc_free(e);
}

/* ---- the loss against finite differences ---- */

enum { G_BUCKETS = 12, G_DIM = 6, G_TDIM = 5, G_N = 3 };

typedef struct {
    const cr_textenc *e;        /* for the tensor offsets */
    const int64_t *off;         /* (2 G_N + 1) */
    const int32_t *idx;
    const float *w;
    const double *teacher;      /* (G_N, G_TDIM) */
    double tau, distill;
} grad_ctx;

/* L of textenc_impl.h in double, the parameters read from theta (the slab's layout). */
static double ref_loss(const double *theta, const void *vctx) {
    const grad_ctx *c = vctx;
    const cr_slab *s = &c->e->params;
    const double *E = theta + s->t[c->e->t_emb].offset, *W0 = theta + s->t[c->e->mlp.w_index[0]].offset,
                 *b0 = theta + s->t[c->e->mlp.b_index[0]].offset, *W1 = theta + s->t[c->e->mlp.w_index[1]].offset,
                 *b1 = theta + s->t[c->e->mlp.b_index[1]].offset, *Wd = theta + s->t[c->e->t_distill].offset;
    double g[2 * G_N][G_DIM];
    for (int r = 0; r < 2 * G_N; r++) {
        double x0[G_DIM] = {0}, h[G_DIM], ss = 0;
        for (int64_t k = c->off[r]; k < c->off[r + 1]; k++)
            for (int q = 0; q < G_DIM; q++) x0[q] += c->w[k] * E[c->idx[k] * G_DIM + q];
        for (int o = 0; o < G_DIM; o++) {
            double a = b0[o];
            for (int q = 0; q < G_DIM; q++) a += W0[o * G_DIM + q] * x0[q];
            h[o] = a > 0 ? a : 0;
        }
        for (int o = 0; o < G_DIM; o++) {
            double m = b1[o];
            for (int q = 0; q < G_DIM; q++) m += W1[o * G_DIM + q] * h[q];
            g[r][o] = x0[o] + m;
            ss += g[r][o] * g[r][o];
        }
        for (int o = 0; o < G_DIM; o++) g[r][o] /= sqrt(ss);
    }
    /* symmetric InfoNCE between the first and second views */
    double z[G_N][G_N], rows = 0, cols = 0;
    for (int i = 0; i < G_N; i++)
        for (int j = 0; j < G_N; j++) {
            double dot = 0;
            for (int q = 0; q < G_DIM; q++) dot += g[i][q] * g[G_N + j][q];
            z[i][j] = dot / c->tau;
        }
    for (int i = 0; i < G_N; i++) {
        double sr = 0, sc = 0;
        for (int j = 0; j < G_N; j++) sr += exp(z[i][j]), sc += exp(z[j][i]);
        rows += log(sr) - z[i][i], cols += log(sc) - z[i][i];
    }
    double L = 0.5 * (rows / G_N + cols / G_N), dist = 0;
    for (int r = 0; r < 2 * G_N; r++) {
        double y[G_TDIM], ss = 0, dot = 0;
        for (int o = 0; o < G_TDIM; o++) {
            y[o] = 0;
            for (int q = 0; q < G_DIM; q++) y[o] += Wd[o * G_DIM + q] * g[r][q];
            ss += y[o] * y[o];
        }
        for (int o = 0; o < G_TDIM; o++) dot += y[o] / sqrt(ss) * c->teacher[(r % G_N) * G_TDIM + o];
        dist += 1 - dot;
    }
    return L + c->distill * dist / (2 * G_N);
}

TEST(textenc_loss_gradient_matches_finite_differences) {
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = G_BUCKETS;
    cr_textenc *e;
    CHECK_OK(cr_textenc_new(&e, &h, G_DIM, 0, G_TDIM));
    cr_rng r;
    cr_rng_seed(&r, 7, 1);
    for (int64_t k = 0; k < e->params.size; k++) e->params.data[k] = (float)(0.5 * cr_rng_normal(&r));
    /* six bags over the buckets: ragged, buckets shared between bags, weights of unit norm */
    const int64_t off[2 * G_N + 1] = {0, 3, 5, 9, 11, 12, 15};
    const int32_t idx[15] = {0, 4, 7, 1, 4, 2, 3, 8, 11, 0, 5, 9, 6, 7, 10};
    float w[15];
    for (int b = 0; b < 2 * G_N; b++) {
        double ss = 0;
        for (int64_t k = off[b]; k < off[b + 1]; k++) w[k] = (float)(0.3 + cr_rng_uniform(&r)), ss += (double)w[k] * w[k];
        for (int64_t k = off[b]; k < off[b + 1]; k++) w[k] = (float)(w[k] / sqrt(ss));
    }
    float teacher[G_N * G_TDIM];
    double teacher_d[G_N * G_TDIM];
    for (int i = 0; i < G_N; i++) {
        double ss = 0;
        for (int o = 0; o < G_TDIM; o++) teacher[i * G_TDIM + o] = (float)cr_rng_normal(&r), ss += (double)teacher[i * G_TDIM + o] * teacher[i * G_TDIM + o];
        for (int o = 0; o < G_TDIM; o++) teacher[i * G_TDIM + o] = (float)(teacher[i * G_TDIM + o] / sqrt(ss));
    }
    for (int k = 0; k < G_N * G_TDIM; k++) teacher_d[k] = teacher[k];
    const float tau = 0.5f, distill = 0.7f;
    cr_textenc_ws ws;
    cr_slab grad;
    CHECK_OK(cr_textenc_ws_init(&ws, e, 2 * G_N));
    CHECK_OK(cr_slab_like(&grad, &e->params));
    for (int64_t k = 0; k < grad.size; k++) grad.data[k] = 0.25f;     /* the loss must add, not overwrite */
    const cr_textenc_batch b = {G_N, off, idx, w, teacher};
    double nce, dist, L = cr_textenc_loss(e, &ws, &b, tau, distill, &grad, &nce, &dist);
    double *theta = malloc((size_t)e->params.size * sizeof *theta);
    CHECK(theta);
    for (int64_t k = 0; k < e->params.size; k++) theta[k] = e->params.data[k];
    const grad_ctx ctx = {e, off, idx, w, teacher_d, tau, distill};
    CHECK_NEAR(L, ref_loss(theta, &ctx), 1e-5);
    CHECK_NEAR(L, nce + distill * dist, 1e-9);
    CHECK(dist > 0 && nce > 0);
    /* every parameter (padding between tensors included: its gradient must stay 0) */
    double worst = 0;
    int64_t n_nonzero = 0;
    for (int64_t k = 0; k < e->params.size; k++) {
        double save = theta[k], hh[2] = {1e-4, 5e-5}, num[2];
        for (int q = 0; q < 2; q++) {
            theta[k] = save + hh[q];
            double lp = ref_loss(theta, &ctx);
            theta[k] = save - hh[q];
            num[q] = (lp - ref_loss(theta, &ctx)) / (2 * hh[q]);
        }
        theta[k] = save;
        const double an = grad.data[k] - 0.25f;
        CHECK_MSG(fabs(num[0] - num[1]) <= 1e-6 + 1e-4 * fabs(num[1]), "parameter %lld: differences at h and h/2 disagree",
                  (long long)k);
        CHECK_MSG(fabs(an - num[1]) <= 5e-5 + 5e-4 * fabs(num[1]), "parameter %lld: analytic %.9g, numeric %.9g", (long long)k,
                  an, num[1]);
        worst = fmax(worst, fabs(an - num[1]));
        n_nonzero += fabs(num[1]) > 1e-6;
    }
    /* table rows of buckets no bag holds (bucket 1 is in one; none holds more than 12) get no gradient */
    CHECK(n_nonzero > 100);
    printf("     text encoder loss (InfoNCE + distillation): %lld parameters, max |analytic - numeric| %.3g\n",
           (long long)e->params.size, worst);
    free(theta);
    cr_slab_free(&grad);
    cr_textenc_ws_free(&ws);
    cr_textenc_free(e);
}

/* ---- a synthetic catalogue: titles and texts share no word, only a topic ---- */

enum { S_TOPICS = 12, S_WORDS = 6 };

/* Item i of topic t: the title is three of the topic's title words, the text two of its text words (the two word
 * sets are disjoint, so only training can tie them). Every 10th item has no text, every 50th nothing at all. */
static void synth_item(cr_rng *r, int64_t i, int t, char *title, char *text, size_t cap) {
    if (i % 50 == 49) {
        title[0] = text[0] = '\0';
        return;
    }
    snprintf(title, cap, "tw%da%u tw%db%u tw%dc%u", t, cr_rng_below(r, S_WORDS), t, cr_rng_below(r, S_WORDS), t,
             cr_rng_below(r, S_WORDS));
    if (i % 10 == 9) text[0] = '\0';
    else snprintf(text, cap, "xq%dy%u xq%dz%u", t, cr_rng_below(r, S_WORDS), t, cr_rng_below(r, S_WORDS));
}

typedef struct {
    int64_t n;
    char (*title)[64], (*text)[64];
    const char **tp, **xp;
    int *topic;
} synth;

static void synth_make(synth *s, int64_t n, uint64_t seed) {
    cr_rng r;
    cr_rng_seed(&r, seed, 3);
    s->n = n;
    s->title = malloc((size_t)n * sizeof *s->title);
    s->text = malloc((size_t)n * sizeof *s->text);
    s->tp = malloc((size_t)n * sizeof *s->tp);
    s->xp = malloc((size_t)n * sizeof *s->xp);
    s->topic = malloc((size_t)n * sizeof *s->topic);
    CR_ASSERT(s->title && s->text && s->tp && s->xp && s->topic);
    for (int64_t i = 0; i < n; i++) {
        s->topic[i] = (int)cr_rng_below(&r, S_TOPICS);
        synth_item(&r, i, s->topic[i], s->title[i], s->text[i], 64);
        s->tp[i] = s->title[i], s->xp[i] = s->text[i];
    }
}

static void synth_free(synth *s) { free(s->title), free(s->text), free(s->tp), free(s->xp), free(s->topic); }

static cr_textenc_train_params small_params(void) {
    cr_textenc_train_params p = cr_textenc_default_train_params();
    p.dim = 16;
    p.hashing.n_buckets = 1 << 12;
    p.batch = 32;
    p.epochs = 8;
    p.lr = 0.01;
    p.temperature = 0.1;
    p.valid = 40;
    p.threads = 1;
    return p;
}

typedef struct {
    double first, last, first_dist, last_dist, r1;
    int rows;
} epoch_log;

static void record(const cr_textenc_epoch *e, void *user) {
    epoch_log *l = user;
    if (l->rows++ == 0) l->first = e->loss, l->first_dist = e->distill;
    l->last = e->loss, l->last_dist = e->distill, l->r1 = e->valid_r1;
}

/* Share of (i, j) pairs of fresh items of different topics where title i is nearer to its own text than to j's. */
static double pair_auc(const cr_textenc *e, const synth *fresh) {
    const int64_t n = fresh->n, d = cr_textenc_dim(e);
    float *a = cr_malloc((size_t)(n * d) * sizeof *a), *b = cr_malloc((size_t)(n * d) * sizeof *b);
    CR_ASSERT(a && b);
    CHECK_OK(cr_textenc_encode(e, fresh->tp, n, a));
    CHECK_OK(cr_textenc_encode(e, fresh->xp, n, b));
    int64_t wins = 0, pairs = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!fresh->tp[i][0] || !fresh->xp[i][0]) continue;
        double own = 0;
        for (int64_t q = 0; q < d; q++) own += (double)a[i * d + q] * b[i * d + q];
        for (int64_t j = 0; j < n; j++) {
            if (fresh->topic[j] == fresh->topic[i] || !fresh->xp[j][0]) continue;
            double other = 0;
            for (int64_t q = 0; q < d; q++) other += (double)a[i * d + q] * b[j * d + q];
            wins += own > other, pairs++;
        }
    }
    cr_free(a), cr_free(b);
    return (double)wins / (double)pairs;
}

TEST(textenc_learns_title_text_pairs) {
    synth s, fresh;
    synth_make(&s, 600, 1);
    synth_make(&fresh, 120, 2);
    /* a teacher: one random unit vector per topic, for the distillation part */
    enum { TD = 8 };
    float *teacher = malloc((size_t)(600 * TD) * sizeof *teacher), topic_vec[S_TOPICS][TD];
    cr_rng r;
    cr_rng_seed(&r, 5, 5);
    for (int t = 0; t < S_TOPICS; t++)
        for (int q = 0; q < TD; q++) topic_vec[t][q] = (float)cr_rng_normal(&r);
    for (int64_t i = 0; i < 600; i++) memcpy(teacher + i * TD, topic_vec[s.topic[i]], sizeof topic_vec[0]);
    cr_textenc_train_params p = small_params();
    epoch_log log = {0};
    p.on_epoch = record, p.user = &log;
    p.teacher = teacher, p.teacher_dim = TD;
    cr_textenc *e;
    cr_textenc_train_report rep;
    CHECK_OK(cr_textenc_train_texts(&e, s.tp, s.xp, 600, &p, &rep));
    CHECK_EQ(log.rows, 8);
    CHECK_EQ(rep.n_empty, 12);                  /* items 49, 99, ... */
    CHECK_EQ(rep.n_valid, 40);
    CHECK_EQ(rep.n_single, 60 - 12);            /* every 10th has no text; the 12 empty ones are among them */
    CHECK_EQ(rep.n_pairs + rep.n_single + rep.n_valid + rep.n_empty, 600);
    CHECK_MSG(log.last < 0.5 * log.first, "loss %.4f -> %.4f", log.first, log.last);
    CHECK_MSG(log.last_dist < 0.5 * log.first_dist, "distillation %.4f -> %.4f", log.first_dist, log.last_dist);
    /* held-out items find their own text among 40 far above chance (1/40; a topic has ~3 of them) */
    CHECK_MSG(log.r1 > 0.2, "held-out recall@1 %.3f", log.r1);
    /* fresh items: titles and texts share no word, so only what training tied together can rank the own text above
     * another topic's; an untrained encoder sits at 0.5 */
    double auc = pair_auc(e, &fresh);
    CHECK_MSG(auc > 0.9, "pair AUC %.3f", auc);
    printf("     synthetic catalogue: loss %.3f -> %.3f, held-out recall@1 %.3f, fresh pair AUC %.3f\n", log.first, log.last,
           log.r1, auc);
    cr_textenc_free(e);
    free(teacher);
    synth_free(&s);
    synth_free(&fresh);
}

TEST(textenc_save_load_and_determinism) {
    synth s;
    synth_make(&s, 300, 9);
    cr_textenc_train_params p = small_params();
    p.epochs = 2;
    cr_textenc *a, *b, *c, *loaded;
    CHECK_OK(cr_textenc_train_texts(&a, s.tp, s.xp, 300, &p, NULL));
    CHECK_OK(cr_textenc_train_texts(&b, s.tp, s.xp, 300, &p, NULL));
    p.seed = 43;
    CHECK_OK(cr_textenc_train_texts(&c, s.tp, s.xp, 300, &p, NULL));
    CHECK(!memcmp(a->params.data, b->params.data, (size_t)a->params.size * sizeof(float)));
    CHECK(memcmp(a->params.data, c->params.data, (size_t)a->params.size * sizeof(float)));
    const char *path = cr_test_path("enc.crm");
    CHECK_OK(cr_textenc_save(a, path));
    CHECK_OK(cr_textenc_load(&loaded, path));
    CHECK_EQ(cr_textenc_dim(loaded), 16);
    CHECK_EQ(cr_textenc_hashing(loaded)->n_buckets, 1 << 12);
    cr_textenc_weights wa, wl;
    cr_textenc_get_weights(a, &wa);
    cr_textenc_get_weights(loaded, &wl);
    CHECK_EQ(wl.per_item, 0);
    CHECK_EQ(wl.n_docs, 300);
    CHECK(!memcmp(wa.emb, wl.emb, (size_t)(wa.n_buckets * wa.dim) * sizeof(float)));
    CHECK(!memcmp(wa.df, wl.df, (size_t)wa.n_buckets * sizeof(int32_t)));
    /* the same vectors, and the same bits at 1 and 2 encoding threads; an empty text gives a zero row */
    const char *texts[] = {"tw1a2 tw1b3 tw1c0", "xq4y1 xq4z2", "", "brand new words", "tw2a1"};
    float va[5 * 16], vl[5 * 16], v2[5 * 16];
    CHECK_OK(cr_textenc_encode(a, texts, 5, va));
    cr_textenc_set_threads(loaded, 1);
    CHECK_OK(cr_textenc_encode(loaded, texts, 5, vl));
    cr_textenc_set_threads(loaded, 2);
    CHECK_OK(cr_textenc_encode(loaded, texts, 5, v2));
    CHECK(!memcmp(va, vl, sizeof va));
    CHECK(!memcmp(va, v2, sizeof va));
    for (int i = 0; i < 5; i++) {
        double ss = 0;
        for (int q = 0; q < 16; q++) ss += (double)va[i * 16 + q] * va[i * 16 + q];
        CHECK_NEAR(ss, i == 2 ? 0.0 : 1.0, 1e-5);
    }
    cr_textenc_free(a), cr_textenc_free(b), cr_textenc_free(c), cr_textenc_free(loaded);
    synth_free(&s);
}

TEST(textenc_bad_files) {
    cr_textenc *e;
    CHECK_STATUS(cr_textenc_load(&e, cr_test_path("absent.crm")), CR_ERR_IO);
    CHECK(e == NULL);
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 64;
    cr_textenc *x;
    CHECK_OK(cr_textenc_new(&x, &h, 4, 24, 0));
    x->stats.n_docs = 3;
    const char *good = cr_test_path("good.crm");
    CHECK_OK(cr_textenc_save(x, good));
    CHECK_OK(cr_textenc_load(&e, good));
    cr_textenc_free(e);
    /* a flipped byte fails the checksum */
    size_t len;
    char *bytes = cr_test_read(good, &len);
    CHECK(bytes);
    bytes[len / 2] ^= 1;
    CHECK_STATUS(cr_textenc_load(&e, cr_test_write("flip.crm", bytes, (long)len)), CR_ERR_FORMAT);
    free(bytes);
    /* a document frequency above the document count, a weight that is not finite */
    x->stats.df[5] = 4;
    CHECK_OK(cr_textenc_save(x, cr_test_path("df.crm")));
    CHECK_STATUS(cr_textenc_load(&e, cr_test_path("df.crm")), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "textenc.df[5] = 4 is outside 0..3");
    x->stats.df[5] = 0;
    cr_slab_at(&x->params, x->mlp.w_index[1])[2] = NAN;
    CHECK_OK(cr_textenc_save(x, cr_test_path("nan.crm")));
    CHECK_STATUS(cr_textenc_load(&e, cr_test_path("nan.crm")), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "textenc.mlp.w1[2] is not a finite number");
    cr_textenc_free(x);
    /* another model type; settings out of range; a newer version */
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", CR_TEXTENC_CRM_VERSION));
    CHECK_OK(cr_filew_meta_str(w, "model", "pop"));
    CHECK_OK(cr_filew_commit(w, cr_test_path("pop.crm")));
    cr_filew_free(w);
    CHECK_STATUS(cr_textenc_load(&e, cr_test_path("pop.crm")), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "a crossrec model of type 'pop', not a text encoder");
    CHECK_OK(cr_filew_new(&w, "CRM", CR_TEXTENC_CRM_VERSION));
    CHECK_OK(cr_filew_meta_str(w, "model", "text-encoder"));
    CHECK_OK(cr_text_hashing_write(w, &h));
    const char *keys[] = {"textenc.dim", "textenc.per_item", "textenc.n_docs", "textenc.n_tokens", "textenc.teacher_dim"};
    for (int k = 0; k < 5; k++) CHECK_OK(cr_filew_meta_i64(w, keys[k], k == 0 ? 5000 : 1));
    CHECK_OK(cr_filew_commit(w, cr_test_path("dim.crm")));
    cr_filew_free(w);
    CHECK_STATUS(cr_textenc_load(&e, cr_test_path("dim.crm")), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "dim 5000");
    CHECK_OK(cr_filew_new(&w, "CRM", CR_TEXTENC_CRM_VERSION + 1));
    CHECK_OK(cr_filew_commit(w, cr_test_path("new.crm")));
    cr_filew_free(w);
    CHECK_STATUS(cr_textenc_load(&e, cr_test_path("new.crm")), CR_ERR_VERSION);
}

TEST(textenc_init_from_word_vectors) {
    /* 4-d vectors of two words; every other table row keeps its random start */
    const char *vec = cr_test_write("init.vec", "2 4\npen 3 0 0 4\nink 0 1 0 0\n", -1);
    cr_wordvec *wv;
    CHECK_OK(cr_wordvec_load(&wv, vec, NULL));
    const char *titles[] = {"pen ink", "ink jar", "pen case", "jar lid"}, *texts[] = {"", "", "", ""};
    cr_textenc_train_params p = small_params();
    p.dim = 4, p.epochs = 1, p.lr = 1e-9, p.valid = 0, p.init = wv;
    cr_textenc *e;
    cr_textenc_train_report rep;
    CHECK_OK(cr_textenc_train_texts(&e, titles, texts, 4, &p, &rep));
    CHECK_EQ(rep.n_init, 2);
    CHECK_EQ(rep.n_single, 4);
    const float *emb = cr_slab_at(&e->params, e->t_emb);
    const int32_t bp = cr_text_bucket(&p.hashing, CR_TEXT_TOK_WORD, "pen", 3), bi = cr_text_bucket(&p.hashing, CR_TEXT_TOK_WORD, "ink", 3);
    /* scaled so that the seeded rows' mean norm is the random rows' 0.1 sqrt(4) = 0.2: |pen| 5, |ink| 1 -> x 1/15 */
    CHECK_NEAR(emb[bp * 4 + 0], 3.0 / 15, 1e-6);
    CHECK_NEAR(emb[bp * 4 + 3], 4.0 / 15, 1e-6);
    CHECK_NEAR(emb[bi * 4 + 1], 1.0 / 15, 1e-6);
    CHECK_NEAR(emb[bi * 4 + 0], 0.0, 1e-6);
    cr_textenc_free(e);
    p.dim = 8;
    CHECK_STATUS(cr_textenc_train_texts(&e, titles, texts, 4, &p, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "the word vectors have dim 4, the encoder 8");
    cr_wordvec_free(wv);
}

TEST(textenc_bad_params) {
    const char *titles[] = {"a b", ""}, *texts[] = {"", ""};
    cr_textenc_train_params p = small_params();
    cr_textenc *e;
    /* one item with text: nothing to contrast it with */
    CHECK_STATUS(cr_textenc_train_texts(&e, titles, texts, 2, &p, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "1 item with text to train on");
    p.temperature = 0;
    CHECK(cr_textenc_check_train_params(&p) != NULL);
    p = small_params();
    p.view_dropout = 1;
    CHECK_STATUS(cr_textenc_train_texts(&e, titles, texts, 2, &p, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "view dropout");
    CHECK(e == NULL);
}

/* ---- the commands ---- */

static const char *cli_dataset(void) {
    static char crd[1024];
    char items[8192] = "item\tdomain\ttitle\ttext\n", inter[4096] = "user\titem\n";
    cr_rng r;
    cr_rng_seed(&r, 11, 1);
    for (int i = 0; i < 80; i++) {
        char title[64], text[64], line[200];
        int t = i % S_TOPICS;
        synth_item(&r, i % 49, t, title, text, sizeof title);
        snprintf(line, sizeof line, "i%d\t%s\t%s\t%s\n", i, t % 2 ? "office" : "arts", title, text);
        strcat(items, line);
        snprintf(line, sizeof line, "u%d\ti%d\nu%d\ti%d\n", i % 7, i, (i + 3) % 7, i);
        strcat(inter, line);
    }
    const char *ip = cr_test_write("te_items.tsv", items, -1), *up = cr_test_write("te_inter.tsv", inter, -1);
    snprintf(crd, sizeof crd, "%s", cr_test_path("te.crd"));
    char *out;
    int rc = cr_test_cli(&out, "import --interactions '%s' --items '%s' -o '%s' -q", up, ip, crd);
    CHECK_MSG(rc == 0, "import: %s", out);
    free(out);
    return crd;
}

TEST(cli_pretrain_and_embed_pretrained) {
    const char *crd = cli_dataset();
    char enc[1024], log[1024], npy[1024];
    snprintf(enc, sizeof enc, "%s", cr_test_path("te.crm"));
    snprintf(log, sizeof log, "%s", cr_test_path("te_log.tsv"));
    snprintf(npy, sizeof npy, "%s", cr_test_path("te.npy"));
    char *out;
    int rc = cr_test_cli(&out, "pretrain '%s' --epochs 3 --dim 8 --text-buckets 1024 --batch 16 --valid 10 --threads 1 --log '%s' -o '%s'",
                         crd, log, enc);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "contrastive title <-> text, dim 8, 1024 buckets");
    CHECK_CONTAINS(out, "valid_r@1");
    CHECK_CONTAINS(out, "80 items (");
    free(out);
    char *tsv = cr_test_read(log, NULL);
    CHECK(tsv);
    int lines = 0;
    for (char *c = tsv; *c; c++) lines += *c == '\n';
    CHECK_EQ(lines, 4);
    CHECK(!strncmp(tsv, "epoch\tloss\tinfonce\tdistill\tvalid_r1\tseconds\n1\t", 46));
    free(tsv);
    rc = cr_test_cli(&out, "embed '%s' --method pretrained:'%s' -o '%s' --threads 2", crd, enc, npy);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "80 items x 8 (pretrained:");
    free(out);
    /* the rows are the library's encoding of the titles, in the dataset's item order */
    float *y;
    int64_t rows, cols;
    CHECK_OK(cr_npy_read_f32(npy, &y, &rows, &cols));
    CHECK_EQ(rows, 80);
    CHECK_EQ(cols, 8);
    cr_dataset *d;
    cr_textenc *e;
    CHECK_OK(cr_dataset_load(&d, crd));
    CHECK_OK(cr_textenc_load(&e, enc));
    float *z = cr_malloc(80 * 8 * sizeof *z);
    CHECK_OK(cr_textenc_encode_items(e, d, CR_TEXT_FIELD_TITLE, z));
    CHECK(!memcmp(y, z, 80 * 8 * sizeof *z));
    cr_free(y), cr_free(z);
    cr_textenc_free(e);
    cr_dataset_free(d);
    rc = cr_test_cli(&out, "similar-text '%s' --item i0 -k 3 --method pretrained:'%s'", crd, enc);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_CONTAINS(out, "item\tdomain\tscore\ttitle\n");
    free(out);
}

TEST(cli_pretrain_errors) {
    const char *crd = cli_dataset();
    char *out;
    int rc = cr_test_cli(&out, "pretrain '%s' --text-objective masked -o '%s'", crd, cr_test_path("x.crm"));
    CHECK_EQ(rc, 2);
    CHECK_CONTAINS(out, "--text-objective 'masked' is not supported (supported: contrastive)");
    free(out);
    rc = cr_test_cli(&out, "pretrain '%s' --temperature 0 -o '%s'", crd, cr_test_path("x.crm"));
    CHECK_EQ(rc, 2);
    CHECK_CONTAINS(out, "temperature must be in (0, 100]");
    free(out);
    rc = cr_test_cli(&out, "pretrain '%s' --teacher '%s' -o '%s'", crd, cr_test_path("absent.npy"), cr_test_path("x.crm"));
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(out, "absent.npy");
    free(out);
    CHECK(!cr_test_file_exists(cr_test_path("x.crm")));
    rc = cr_test_cli(&out, "embed '%s' --method pretrained -o '%s'", crd, cr_test_path("x.npy"));
    CHECK_EQ(rc, 2);
    CHECK_CONTAINS(out, "method 'pretrained' needs a file: pretrained:FILE");
    free(out);
    rc = cr_test_cli(&out, "embed '%s' --method pretrained:'%s' -o '%s'", crd, cr_test_path("absent.crm"), cr_test_path("x.npy"));
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(out, "absent.crm");
    free(out);
}

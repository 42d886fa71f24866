/* test_tower.c — the `tower` transfer model (src/models/tower.c, src/train/fit_tower.c): on a synthetic
 * cold-user split it ranks the target-cold test users' items far better than at random with each pooling;
 * scores survive save/load bit for bit and are what the towers say; an item without training events still
 * gets a vector from its text; the same seed gives the same file at 1 and 2 threads; bad settings are refused.
 * (Every layer's gradient is checked in test_nn_tower.c against finite differences and PyTorch.) */
#include "test.h"

#include "cdr_fixtures.h"

#include "crossrec/eval.h"
#include "crossrec/textenc.h"
#include "models/tower_impl.h"

#include <stdlib.h>

static cr_train_params tower_params(const cr_split *s, const char *pool, int64_t epochs) {
    cr_train_params p = cr_train_default_params();
    p.model = "tower";
    p.pool = pool;
    p.dim = 16;
    p.epochs = epochs;
    p.patience = 0;
    p.batch = 64;
    p.hist_len = 12;
    p.text_buckets = 4096;
    p.text_per_item = 16;
    p.lr = 0.005;
    p.negatives = 64;
    p.hist_dropout = 0.5;
    p.quiet = 1;
    p.valid = s;
    return p;
}

/* Recall@10 of random scores on the split: the floor every trained model must clear. */
static double random_recall10(const cr_dataset *d, const cr_split *s) {
    cr_model rnd = cr_test_random_model(d);
    cr_eval_result *r = cr_test_evaluate_at(s, &rnd, 10, 50);
    const double base = r->mean.recall[0];
    cr_eval_result_free(r);
    return base;
}

static cr_model *train_tower(const cr_dataset *d, const cr_split *s, const cr_train_params *p) {
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), p));
    CHECK_STR(cr_model_name(m), "tower");
    return m;
}

TEST(tower_cold_users_synthetic_every_pooling) {
    cr_dataset *d = cr_test_cdr_data("tower-cold", 400, 240, 6000, 2, 21);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    const double base = random_recall10(d, s);
    const char *pools[3] = {"mean", "attention", "transformer"};
    for (int k = 0; k < 3; k++) {
        cr_train_params p = tower_params(s, pools[k], 4);
        cr_model *m = train_tower(d, s, &p);
        cr_eval_result *r = cr_test_evaluate_at(s, m, 10, 50);
        printf("     synthetic cold-user split, %s pooling: tower recall@10 %.4f (random %.4f), %lld of %lld users represented\n",
               pools[k], r->mean.recall[0], base, (long long)(r->n_users - r->n_unrepresented), (long long)r->n_users);
        CHECK_MSG(r->mean.recall[0] > 2 * base && r->mean.recall[0] > base + 0.05, "%s: recall@10 %.4f vs random %.4f", pools[k],
                  r->mean.recall[0], base);
        CHECK_EQ(r->n_unrepresented, 0);
        cr_eval_result_free(r);
        cr_model_free(m);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Scores against a direct computation from the model's parts, before and after a save/load round trip. */
TEST(tower_scores_save_load_and_cold_items) {
    cr_dataset *d = cr_test_cdr_data("tower-io", 300, 200, 5000, 2, 5);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    cr_train_params p = tower_params(s, "attention", 2);
    cr_model *m = train_tower(d, s, &p);
    const cr_tower_model *tm = (const cr_tower_model *)m;
    const cr_interactions *v = cr_split_train(s);
    const int64_t n_items = v->n_items, dim = tm->dim;

    /* every item vector is unit length, items without training events included (text and domain) */
    int64_t cold = 0;
    for (int64_t i = 0; i < n_items; i++) {
        double n2 = 0;
        for (int64_t q = 0; q < dim; q++) n2 += (double)tm->items[i * dim + q] * tm->items[i * dim + q];
        CHECK_NEAR(n2, 1.0, 1e-4);
        cold += !tm->item_known[i];
    }
    printf("     %lld of %lld items have no training event and are placed by text and domain\n", (long long)cold, (long long)n_items);

    /* three rows: a user's history, an empty history, a history of one item; candidates: every item */
    int32_t *cand = malloc((size_t)n_items * sizeof *cand);
    for (int64_t i = 0; i < n_items; i++) cand[i] = (int32_t)i;
    int32_t users[3] = {3, -1, -1};
    int64_t u = 3, h0 = v->user_ptr[u], h1 = v->user_ptr[u + 1];
    int32_t hist[64];
    int64_t nh = h1 - h0 < 60 ? h1 - h0 : 60;
    for (int64_t k = 0; k < nh; k++) hist[k] = v->user_items[h0 + k];
    hist[nh] = 7;
    int64_t hp[4] = {0, nh, nh, nh + 1};
    cr_score_request req = {3, users, hp, hist, 0, n_items, cand};
    float *sc = malloc((size_t)(3 * n_items) * sizeof *sc), *sc2 = malloc((size_t)(3 * n_items) * sizeof *sc2);
    uint8_t can[3], can2[3];
    CHECK_OK(cr_model_score(m, &req, sc, can));
    CHECK(can[0] && can[1] && can[2]);
    /* row 2 by hand: one history item, mean of one vector = that vector whatever the pooling weights */
    cr_tower_user_ws ws;
    CHECK_OK(cr_tower_user_ws_init(&ws, tm, 1));
    memcpy(ws.seq, tm->items + 7 * dim, (size_t)dim * sizeof(float));
    ws.len[0] = 1, ws.dom[0] = 0;
    cr_tower_user_forward(tm, &ws, 1);
    for (int64_t i = 0; i < n_items; i += 17) {
        double dot = 0;
        for (int64_t q = 0; q < dim; q++) dot += (double)ws.f[q] * tm->items[i * dim + q];
        CHECK_NEAR(sc[2 * n_items + i], dot, 1e-5);
    }
    cr_tower_user_ws_free(&ws);

    const char *path = cr_test_path("tower.crm");
    CHECK_OK(cr_model_save(m, path));
    cr_model *m2 = NULL;
    CHECK_OK(cr_model_load(&m2, path));
    CHECK_OK(cr_model_score(m2, &req, sc2, can2));
    CHECK(!memcmp(sc, sc2, (size_t)(3 * n_items) * sizeof *sc));
    cr_model_free(m2);
    free(sc);
    free(sc2);
    free(cand);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(tower_deterministic) {
    cr_dataset *d = cr_test_cdr_data("tower-det", 200, 120, 3000, 2, 9);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    char *files[2];
    size_t lens[2];
    for (int t = 0; t < 2; t++) {
        cr_train_params p = tower_params(s, "transformer", 2);
        p.threads = t + 1;
        p.dann = 0.1;
        p.align = 0.1;
        p.hist_dropout = 0.3;
        cr_model *m = train_tower(d, s, &p);
        const char *path = cr_test_path("tower-det.crm");
        CHECK_OK(cr_model_save(m, path));
        cr_model_free(m);
        files[t] = cr_test_read(path, &lens[t]);
    }
    CHECK_MSG(lens[0] == lens[1] && !memcmp(files[0], files[1], lens[0]), "tower: 1 and 2 threads give different files");
    free(files[0]);
    free(files[1]);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(tower_refuses_bad_settings) {
    cr_dataset *d = cr_test_cdr_data("tower-bad", 100, 60, 1000, 2, 3);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    cr_model *m = NULL;
    cr_train_params p = tower_params(s, "maxpool", 1);
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "mean, attention or transformer");
    p = tower_params(s, "attention", 1);
    p.batch = 1;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    p = tower_params(s, "attention", 1);
    p.hist_len = 0;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    p = tower_params(s, "transformer", 1);
    p.dim = 18;     /* not divisible by the 4 heads */
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    p = tower_params(s, "attention", 1);
    p.cold_sim = 1.5;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    p = tower_params(s, "attention", 1);
    p.hist_dropout = 1;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "--hist-dropout");
    p = tower_params(s, "attention", 1);
    p.negatives = -1;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "--negatives");
    CHECK(m == NULL);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Whether tensor `name` of two towers holds the same bytes. */
static int same_tensor(const cr_tower_model *a, const cr_tower_model *b, const char *name) {
    int i = cr_slab_find(&a->params, name), j = cr_slab_find(&b->params, name);
    CHECK(i >= 0 && j >= 0);
    const cr_tensor *t = &a->params.t[i];
    return !memcmp(cr_slab_at(&a->params, i), cr_slab_at(&b->params, j), (size_t)(t->rows * t->cols) * sizeof(float));
}

/* --init with --finetune none, head and all; the source-only then target recipe. */
TEST(tower_init_and_finetune) {
    cr_dataset *d = cr_test_cdr_data("tower-ft", 300, 200, 5000, 2, 13);
    const int32_t T = cr_test_thinnest_domain(d);
    cr_split *s = cr_test_cold_split(d, T, 0.3);
    /* source-only pretraining: the other domain's events */
    cr_train_params p = tower_params(s, "attention", 2);
    p.domain = 1 - T;
    cr_model *src = train_tower(d, s, &p);
    const char *src_path = cr_test_path("tower-src.crm");
    CHECK_OK(cr_model_save(src, src_path));
    const cr_tower_model *a = (const cr_tower_model *)src;
    const char *names[] = {"tower.id", "tower.text", "tower.dom", "tower.item.w0", "tower.query", "tower.head.w", "tower.head.b"};

    /* none: the initial model, scores and all */
    p = tower_params(s, "attention", 2);
    p.init = src_path, p.finetune = "none";
    cr_model *m = train_tower(d, s, &p);
    const cr_tower_model *b = (const cr_tower_model *)m;
    for (int k = 0; k < 7; k++) CHECK_MSG(same_tensor(a, b, names[k]), "finetune none changed %s", names[k]);
    CHECK(!memcmp(a->items, b->items, (size_t)(a->base.n_items * a->dim) * sizeof(float)));
    cr_model_free(m);

    /* head: the towers frozen bit for bit, the target heads trained */
    p.finetune = "head", p.domain = T;
    m = train_tower(d, s, &p);
    b = (const cr_tower_model *)m;
    for (int k = 0; k < 4; k++) CHECK_MSG(same_tensor(a, b, names[k]), "finetune head changed the frozen %s", names[k]);
    for (int k = 4; k < 7; k++) CHECK_MSG(!same_tensor(a, b, names[k]), "finetune head left %s untrained", names[k]);
    cr_eval_result *r_src = cr_test_evaluate_at(s, src, 10, 50), *r_head = cr_test_evaluate_at(s, m, 10, 50);
    cr_model_free(m);

    /* all: every tensor moves, and the run is better on the target than the source-only model */
    p.finetune = "all";
    m = train_tower(d, s, &p);
    b = (const cr_tower_model *)m;
    for (int k = 0; k < 7; k++) CHECK_MSG(!same_tensor(a, b, names[k]) || k == 2, "finetune all left %s untrained", names[k]);
    cr_eval_result *r_all = cr_test_evaluate_at(s, m, 10, 50);
    printf("     target recall@50: source-only %.4f, + heads %.4f, + all %.4f\n", r_src->mean.recall[1], r_head->mean.recall[1],
           r_all->mean.recall[1]);
    CHECK(r_all->mean.recall[1] > r_src->mean.recall[1]);
    cr_eval_result_free(r_src), cr_eval_result_free(r_head), cr_eval_result_free(r_all);
    cr_model_free(m);

    /* refused: a mode without a model, another dim, another model type */
    p = tower_params(s, "attention", 1);
    p.finetune = "head";
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "needs --init");
    p.init = src_path, p.finetune = "some";
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "all, head or none");
    p.finetune = NULL, p.dim = 8;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "has dim 16");
    cr_train_params pp = cr_train_default_params();
    pp.model = "pop", pp.quiet = 1;
    cr_model *pop = NULL;
    CHECK_OK(cr_model_train(&pop, d, cr_split_train(s), &pp));
    const char *pop_path = cr_test_path("tower-pop.crm");
    CHECK_OK(cr_model_save(pop, pop_path));
    cr_model_free(pop);
    p = tower_params(s, "attention", 1);
    p.init = pop_path;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "must be a tower model");
    CHECK(m == NULL);
    cr_model_free(src);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Share of the top-10 items of each of the first n users (history: training events, target T) that two models
 * agree on. */
static double top10_agreement(const cr_model *x, const cr_model *y, const cr_interactions *v, int32_t T, int64_t n) {
    int64_t n_cand = 0;
    int32_t *cand = malloc((size_t)v->n_items * sizeof *cand);
    for (int64_t i = 0; i < v->n_items; i++)
        if (v->item_domain[i] == T) cand[n_cand++] = (int32_t)i;
    float *sx = malloc((size_t)n_cand * sizeof *sx), *sy = malloc((size_t)n_cand * sizeof *sy);
    int64_t shared = 0;
    for (int64_t u = 0; u < n; u++) {
        int32_t user = (int32_t)u;
        int64_t hp[2] = {0, v->user_ptr[u + 1] - v->user_ptr[u]};
        cr_score_request q = {1, &user, hp, v->user_items + v->user_ptr[u], T, n_cand, cand};
        uint8_t can;
        CHECK_OK(cr_model_score(x, &q, sx, &can));
        CHECK_OK(cr_model_score(y, &q, sy, &can));
        int32_t tx[10], ty[10];
        float vx[10], vy[10];
        cr_topk kx, ky;
        CHECK_OK(cr_topk_init(&kx, 10));
        CHECK_OK(cr_topk_init(&ky, 10));
        for (int64_t c = 0; c < n_cand; c++) cr_topk_push(&kx, sx[c], cand[c]), cr_topk_push(&ky, sy[c], cand[c]);
        int64_t nx = cr_topk_sorted(&kx, tx, vx), ny = cr_topk_sorted(&ky, ty, vy);
        for (int64_t i = 0; i < nx; i++)
            for (int64_t j = 0; j < ny; j++) shared += tx[i] == ty[j];
        cr_topk_free(&kx), cr_topk_free(&ky);
    }
    free(cand), free(sx), free(sy);
    return (double)shared / (10.0 * (double)n);
}

/* --distill: weight 0 is plain training bit for bit; weight 1 makes a small student rank like its teacher. */
TEST(tower_distill) {
    cr_dataset *d = cr_test_cdr_data("tower-distill", 300, 200, 5000, 2, 17);
    const int32_t T = cr_test_thinnest_domain(d);
    cr_split *s = cr_test_cold_split(d, T, 0.3);
    cr_train_params p = tower_params(s, "attention", 4);
    p.dim = 32;
    cr_model *teacher = train_tower(d, s, &p);
    const char *tpath = cr_test_path("tower-teacher.crm");
    CHECK_OK(cr_model_save(teacher, tpath));

    char *files[2];
    size_t lens[2];
    cr_model *small[2];
    for (int k = 0; k < 2; k++) {
        p = tower_params(s, "attention", 2);
        p.dim = 8;
        if (k) p.distill = tpath, p.distill_weight = 0.0;
        small[k] = train_tower(d, s, &p);
        CHECK_OK(cr_model_save(small[k], cr_test_path("tower-small.crm")));
        files[k] = cr_test_read(cr_test_path("tower-small.crm"), &lens[k]);
    }
    CHECK_MSG(lens[0] == lens[1] && !memcmp(files[0], files[1], lens[0]), "distill weight 0 differs from plain training");
    free(files[0]), free(files[1]);
    cr_model_free(small[1]);

    p = tower_params(s, "attention", 2);
    p.dim = 8, p.distill = tpath, p.distill_weight = 1.0;
    cr_model *student = train_tower(d, s, &p);
    const cr_interactions *v = cr_split_train(s);
    double plain = top10_agreement(teacher, small[0], v, T, 100), taught = top10_agreement(teacher, student, v, T, 100);
    printf("     top-10 agreement with the teacher (dim 32) of a dim-8 model: trained alone %.3f, distilled %.3f\n", plain, taught);
    CHECK(taught > plain);
    p.distill_weight = 1.5;
    cr_model *m = NULL;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    cr_model_free(student), cr_model_free(small[0]), cr_model_free(teacher);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* --item-vectors (a .npy), --user-id and --loss bpr: each trains, ranks better than chance, survives save/load
 * bit for bit, and does what it says (an item's vector moves its g; a known user's embedding moves its scores). */
TEST(tower_item_vectors_user_id_bpr) {
    cr_dataset *d = cr_test_cdr_data("tower-opts", 300, 200, 5000, 2, 19);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    const cr_interactions *v = cr_split_train(s);
    const int64_t n_items = v->n_items, K = 5;
    const double base = random_recall10(d, s);
    /* item vectors: 5 columns, each item's domain and index in a few of them */
    float *vec = malloc((size_t)(n_items * K) * sizeof *vec);
    for (int64_t i = 0; i < n_items; i++)
        for (int64_t k = 0; k < K; k++) vec[i * K + k] = (float)(k == v->item_domain[i]) + 0.1f * (float)((i * (k + 3)) % 7);
    const char *npy = cr_test_path("tower-vec.npy");
    CHECK_OK(cr_npy_write_f32(npy, vec, n_items, K));
    for (int variant = 0; variant < 3; variant++) {
        cr_train_params p = tower_params(s, "attention", 3);
        if (variant == 0) p.item_vectors = npy;
        if (variant == 1) p.user_id = 1;
        if (variant == 2) p.loss = "bpr", p.temperature = 0.2;
        cr_model *m = train_tower(d, s, &p);
        cr_tower_model *tm = (cr_tower_model *)m;
        cr_eval_result *r = cr_test_evaluate_at(s, m, 10, 50);
        printf("     %s: recall@10 %.4f (random %.4f)\n", variant == 0 ? "item vectors" : variant == 1 ? "user ids" : "bpr loss",
               r->mean.recall[0], base);
        CHECK(r->mean.recall[0] > 2 * base && r->mean.recall[0] > base + 0.05);
        cr_eval_result_free(r);
        const char *path = cr_test_path("tower-opts.crm");
        CHECK_OK(cr_model_save(m, path));
        cr_model *m2 = NULL;
        CHECK_OK(cr_model_load(&m2, path));
        const cr_tower_model *tm2 = (const cr_tower_model *)m2;
        CHECK(!memcmp(tm->items, tm2->items, (size_t)(n_items * tm->dim) * sizeof(float)));
        CHECK_EQ(tm2->vec_dim, variant == 0 ? K : 0);
        CHECK_EQ(tm2->t_user >= 0, variant == 1);
        if (variant == 2) {
            /* the same run with the softmax loss ends elsewhere: the bpr loss is what trained it */
            p.loss = NULL;
            cr_model *soft = train_tower(d, s, &p);
            CHECK(memcmp(tm->items, ((const cr_tower_model *)soft)->items, (size_t)(n_items * tm->dim) * sizeof(float)));
            cr_model_free(soft);
        }
        if (variant == 0) {
            /* the stored vectors are the unit rows of the file, and they move the item */
            double n2 = 0;
            for (int64_t k = 0; k < K; k++) n2 += (double)tm->item_vec[7 * K + k] * tm->item_vec[7 * K + k];
            CHECK_NEAR(n2, 1.0, 1e-6);
            float before[64];
            memcpy(before, tm->items + 7 * tm->dim, (size_t)tm->dim * sizeof(float));
            for (int64_t k = 0; k < K; k++) tm->item_vec[7 * K + k] = k == 4 ? 1.0f : 0.0f;
            CHECK_OK(cr_tower_refresh_items(tm));
            CHECK(memcmp(before, tm->items + 7 * tm->dim, (size_t)tm->dim * sizeof(float)));
        }
        if (variant == 1) {
            /* user 3 (trained) scored as itself and as an anonymous history: different scores; loaded: the same */
            int32_t cand[20], users[2] = {3, -1};
            for (int k = 0; k < 20; k++) cand[k] = k;
            int64_t h0 = v->user_ptr[3], nh = v->user_ptr[4] - h0;
            int32_t hist[128];
            for (int64_t k = 0; k < nh && k < 64; k++) hist[k] = v->user_items[h0 + k], hist[64 + k] = hist[k];
            nh = nh < 64 ? nh : 64;
            int64_t hp[3] = {0, nh, 2 * nh};
            memmove(hist + nh, hist + 64, (size_t)nh * sizeof *hist);
            cr_score_request q = {2, users, hp, hist, 0, 20, cand};
            float sc[40], sc2[40];
            uint8_t can[2];
            CHECK(tm->user_known[3]);
            CHECK_OK(cr_model_score(m, &q, sc, can));
            CHECK_OK(cr_model_score(m2, &q, sc2, can));
            CHECK(memcmp(sc, sc + 20, sizeof(float) * 20));
            CHECK(!memcmp(sc, sc2, sizeof sc));
        }
        cr_model_free(m2);
        cr_model_free(m);
    }
    /* refused: a file of another row count, an unknown loss */
    CHECK_OK(cr_npy_write_f32(npy, vec, n_items - 1, K));
    cr_train_params p = tower_params(s, "attention", 1);
    p.item_vectors = npy;
    cr_model *m = NULL;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "rows, but the dataset has");
    p = tower_params(s, "attention", 1);
    p.loss = "hinge";
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK(m == NULL);
    free(vec);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* --init from a text encoder of `crossrec pretrain`: its table and MLP become the item tower's text part. */
TEST(tower_init_from_text_encoder) {
    cr_dataset *d = cr_test_cdr_data("tower-enc", 200, 120, 3000, 2, 23);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    cr_textenc_train_params tp = cr_textenc_default_train_params();
    tp.dim = 16;
    tp.hashing.n_buckets = 4096;
    tp.epochs = 1;
    cr_textenc *e = NULL;
    cr_textenc_train_report rep;
    CHECK_OK(cr_textenc_train(&e, d, &tp, &rep));
    const char *path = cr_test_path("tower-enc.crm");
    CHECK_OK(cr_textenc_save(e, path));
    cr_textenc_weights w;
    cr_textenc_get_weights(e, &w);
    cr_train_params p = tower_params(s, "attention", 1);
    p.init = path, p.finetune = "none";
    cr_model *m = train_tower(d, s, &p);
    const cr_tower_model *tm = (const cr_tower_model *)m;
    CHECK(!memcmp(cr_slab_at(&tm->params, tm->t_text), w.emb, (size_t)(w.n_buckets * w.dim) * sizeof(float)));
    CHECK(!memcmp(cr_slab_at(&tm->params, cr_slab_find(&tm->params, "tower.item.w1")), w.w1, (size_t)(16 * 16) * sizeof(float)));
    cr_model_free(m);
    /* another dim is refused, naming both */
    p.dim = 8;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "the text encoder has dim 16");
    cr_textenc_free(e);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Sampled negatives and history dropout, each alone and together, against in-batch negatives only and whole
 * histories: each trains a model that ranks the cold users' items far above random, and each changes the
 * model (the option is not ignored). */
TEST(tower_sampled_negatives_and_history_dropout) {
    cr_dataset *d = cr_test_cdr_data("tower-neg", 400, 240, 6000, 2, 21);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    const double base = random_recall10(d, s);
    const int64_t negatives[4] = {0, 256, 0, 256};
    const double hist_dropout[4] = {0, 0, 0.5, 0.5};
    float first_item[4];
    for (int k = 0; k < 4; k++) {
        cr_train_params p = tower_params(s, "attention", 4);
        p.negatives = negatives[k], p.hist_dropout = hist_dropout[k];
        cr_model *m = train_tower(d, s, &p);
        cr_eval_result *r = cr_test_evaluate_at(s, m, 10, 50);
        printf("     negatives %lld, history dropout %.1f: recall@10 %.4f (random %.4f)\n", (long long)negatives[k],
               hist_dropout[k], r->mean.recall[0], base);
        CHECK_MSG(r->mean.recall[0] > 2 * base && r->mean.recall[0] > base + 0.05, "recall@10 %.4f vs random %.4f",
                  r->mean.recall[0], base);
        first_item[k] = ((cr_tower_model *)m)->items[0];
        for (int j = 0; j < k; j++) CHECK_MSG(first_item[j] != first_item[k], "settings %d and %d gave the same model", j, k);
        cr_eval_result_free(r);
        cr_model_free(m);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

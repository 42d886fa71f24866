/* test_tower.c — the `tower` transfer model (src/models/tower.c, src/train/fit_tower.c): on a synthetic
 * cold-user split it ranks the target-cold test users' items far better than at random with each pooling;
 * scores survive save/load bit for bit and are what the towers say; an item without training events still
 * gets a vector from its text; the same seed gives the same file at 1 and 2 threads; bad settings are refused.
 * (Every layer's gradient is checked in test_nn_tower.c against finite differences and PyTorch.) */
#include "test.h"

#include "cdr_fixtures.h"

#include "crossrec/eval.h"
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
    p.quiet = 1;
    p.valid = s;
    return p;
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
    cr_model rnd = cr_test_random_model(d);
    cr_eval_result *rr = cr_test_evaluate_at(s, &rnd, 10, 50);
    const double base = rr->mean.recall[0];
    cr_eval_result_free(rr);
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
    CHECK(m == NULL);
    cr_split_free(s);
    cr_dataset_free(d);
}

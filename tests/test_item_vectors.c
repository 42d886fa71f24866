/* test_item_vectors.c — cr_model_item_vectors, the optional op of the model interface: absent for pop and
 * itemknn; for bpr the item factors that its scores are made of (score = <user factors, item vector>); for emcdr
 * the target item factors (zero outside the target); for tower g(i), unit vectors that survive save/load. */
#include "test.h"

#include "cdr_fixtures.h"
#include "models/model_impl.h"

static cr_model *train(const cr_dataset *d, const cr_split *s, const char *name, int32_t domain) {
    cr_train_params p = cr_train_default_params();
    p.model = name;
    p.domain = domain;
    p.dim = 16;
    p.epochs = 2;
    p.patience = 0;
    p.batch = 64;
    p.text_buckets = 4096;
    p.quiet = 1;
    p.valid = s;
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
    return m;
}

TEST(item_vectors_absent_for_pop_and_itemknn) {
    cr_dataset *d = cr_test_cdr_data("iv-none", 200, 120, 3000, 2, 3);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.2);
    const char *names[] = {"pop", "itemknn"};
    for (int k = 0; k < 2; k++) {
        cr_model *m = train(d, s, names[k], -1);
        int64_t dim = 7;
        CHECK(cr_model_item_vectors(m, &dim) == NULL);
        CHECK_EQ(dim, 0);
        cr_model_free(m);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(item_vectors_bpr_are_what_scores_are_made_of) {
    cr_dataset *d = cr_test_cdr_data("iv-bpr", 200, 120, 3000, 2, 3);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.2);
    cr_model *m = train(d, s, "bpr", -1);
    int64_t dim = 0, n = m->n_items;
    const float *q = cr_model_item_vectors(m, &dim);
    CHECK(q != NULL);
    CHECK_EQ(dim, 16);
    const cr_mf_model *mf = (const cr_mf_model *)m;
    int32_t user = -1;
    for (int32_t u = 0; u < m->n_users && user < 0; u++)
        if (mf->user_known[u]) user = u;
    CHECK(user >= 0);
    const float *pu = cr_slab_at(&mf->params, 0) + (int64_t)user * dim;
    int32_t *cand = cr_malloc((size_t)n * sizeof *cand);
    float *scores = cr_malloc((size_t)n * sizeof *scores);
    for (int32_t i = 0; i < n; i++) cand[i] = i;
    uint8_t can = 0;
    cr_score_request req = {1, &user, NULL, NULL, -1, n, cand};
    CHECK_OK(cr_model_score(m, &req, scores, &can));
    CHECK(can);
    double zero_rows = 0;
    for (int64_t i = 0; i < n; i++) {
        double dot = 0, norm = 0;
        for (int64_t k = 0; k < dim; k++) dot += (double)pu[k] * q[i * dim + k], norm += (double)q[i * dim + k] * q[i * dim + k];
        CHECK_NEAR(scores[i], dot, 1e-5);
        zero_rows += norm == 0;
    }
    CHECK(zero_rows == 0);
    cr_free(cand), cr_free(scores);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(item_vectors_emcdr_target_items_only) {
    cr_dataset *d = cr_test_cdr_data("iv-emcdr", 300, 160, 5000, 2, 5);
    int32_t target = cr_test_thinnest_domain(d);
    cr_split *s = cr_test_cold_split(d, target, 0.2);
    cr_model *m = train(d, s, "emcdr", target);
    int64_t dim = 0;
    const float *q = cr_model_item_vectors(m, &dim);
    CHECK(q != NULL);
    CHECK_EQ(dim, 16);
    const cr_interactions *v = cr_dataset_inter(d);
    int64_t nonzero_target = 0;
    for (int64_t i = 0; i < v->n_items; i++) {
        int nonzero = 0;
        for (int64_t k = 0; k < dim; k++) nonzero |= q[i * dim + k] != 0;
        if (v->item_domain[i] != target) CHECK_MSG(!nonzero, "item %lld outside the target has a vector", (long long)i);
        else nonzero_target += nonzero;
    }
    CHECK(nonzero_target > 0);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(item_vectors_tower_unit_and_saved) {
    cr_dataset *d = cr_test_cdr_data("iv-tower", 200, 120, 3000, 2, 7);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.2);
    cr_model *m = train(d, s, "tower", -1), *l = NULL;
    int64_t dim = 0, dim_l = 0;
    const float *g = cr_model_item_vectors(m, &dim);
    CHECK(g != NULL);
    CHECK_EQ(dim, 16);
    for (int64_t i = 0; i < m->n_items; i++) {
        double norm = 0;
        for (int64_t k = 0; k < dim; k++) norm += (double)g[i * dim + k] * g[i * dim + k];
        CHECK_NEAR(norm, 1.0, 1e-4);
    }
    const char *path = cr_test_path("iv-tower.crm");
    CHECK_OK(cr_model_save(m, path));
    CHECK_OK(cr_model_load(&l, path));
    const float *gl = cr_model_item_vectors(l, &dim_l);
    CHECK_EQ(dim_l, dim);
    CHECK(!memcmp(g, gl, (size_t)(m->n_items * dim) * sizeof *g));
    cr_model_free(l);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

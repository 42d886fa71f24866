/* test_models.c — the model interface, pop and itemknn: hand-computed popularity and similarity tables (ties,
 * shrink, truncation to a quota per domain, repeated events, one-domain training), cross-domain scoring of a
 * cold user, scores surviving save/load, corrupted and unknown .crm files, byte-identical training at any
 * thread count, a brute-force reference for itemknn on synthetic data, fault injection, and the real dataset
 * when present.
 *
 * Models are trained on cr_dataset_inter(d) directly, so these tests do not depend on splits. Neighbour lists
 * are read back from the saved .crm with the public file reader, which also pins the file layout. */
#include "test.h"

#include "crossrec/data.h"
#include "crossrec/io.h"
#include "crossrec/model.h"
#include "crossrec/split.h"

#include <pthread.h>
#include <stdlib.h>

/* Two domains. Item indices follow the catalogue: a1=0 a2=1 a3=2 a4=3 (domain A), b1=4 b2=5 (domain B).
 *   u1: a1 a2 b1      u2: a1 b1 b1      u3: a2 a3 b2      u4: a3 b2 a3      u5: a4
 * u2 repeats b1 and u4 repeats a3: events for pop, one user each for itemknn. */
static const char *ITEMS = "item\tdomain\ttitle\ttext\n"
                           "a1\tA\t\t\n"
                           "a2\tA\t\t\n"
                           "a3\tA\t\t\n"
                           "a4\tA\t\t\n"
                           "b1\tB\t\t\n"
                           "b2\tB\t\t\n";
static const char *INTER = "user\titem\ttimestamp\tvalue\n"
                           "u1\ta1\t1\t1\nu1\ta2\t2\t1\nu1\tb1\t3\t1\n"
                           "u2\ta1\t1\t1\nu2\tb1\t2\t1\nu2\tb1\t3\t1\n"
                           "u3\ta2\t1\t1\nu3\ta3\t2\t1\nu3\tb2\t3\t1\n"
                           "u4\ta3\t1\t1\nu4\tb2\t2\t1\nu4\ta3\t3\t1\n"
                           "u5\ta4\t1\t1\n";
enum { A1, A2, A3, A4, B1, B2, N_ITEMS };

static cr_dataset *small_dataset(void) {
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = cr_test_write("models-inter.tsv", INTER, -1);
    p.items[p.n_items++] = cr_test_write("models-items.tsv", ITEMS, -1);
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    CHECK_EQ(cr_dataset_inter(d)->n_items, N_ITEMS);
    CHECK_EQ(cr_dataset_find_item(d, "b1"), B1);
    return d;
}

/* A synthetic dataset with three domains (imported from cr_synth_write's files). */
static cr_dataset *synth_dataset(int64_t users, int64_t items, int64_t inter, uint64_t seed) {
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = users, sp.n_items = items, sp.n_inter = inter, sp.n_domains = 3, sp.seed = seed;
    char dir[512], pi[600], pt[600];
    snprintf(dir, sizeof dir, "%s", cr_test_path("models-synth"));
    CHECK_OK(cr_synth_write(dir, &sp));
    snprintf(pi, sizeof pi, "%s/interactions.tsv", dir);
    snprintf(pt, sizeof pt, "%s/items.tsv", dir);
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = pi;
    p.items[p.n_items++] = pt;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    return d;
}

static cr_model *train(const cr_dataset *d, const char *model, int32_t domain, int64_t k, double shrink, int threads) {
    cr_train_params p = cr_train_default_params();
    p.model = model;
    p.domain = domain;
    p.knn_neighbors = k;
    p.knn_shrink = shrink;
    p.threads = threads;
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_dataset_inter(d), &p));
    CHECK_STR(cr_model_name(m), model);
    return m;
}

/* Scores one history-only row (user -1) against cand; returns can. */
static int score_row(const cr_model *m, const int32_t *hist, int64_t n_hist, const int32_t *cand, int64_t n_cand, float *scores) {
    int64_t hp[2] = {0, n_hist};
    int32_t user = -1;
    cr_score_request q = {1, &user, hp, hist, -1, n_cand, cand};
    uint8_t can = 7;
    CHECK_OK(cr_model_score(m, &q, scores, &can));
    CHECK(can == 0 || can == 1);
    return can;
}

/* ---- neighbour lists read back from a saved model ---- */

typedef struct {
    cr_file *f;
    int64_t n_items, nnz;
    const int64_t *ptr;
    const int32_t *idx;
    const float *sim;
} knn_view;

static void knn_view_open(knn_view *k, const cr_model *m, const char *name) {
    char file[256];
    snprintf(file, sizeof file, "models-%s", name);     /* the test folder is shared by all tests */
    const char *path = cr_test_path(file);
    CHECK_OK(cr_model_save(m, path));
    CHECK_OK(cr_file_open(&k->f, path, "CRM", CR_CRM_VERSION));
    const void *a[3];
    int64_t nsim;
    CHECK_OK(cr_file_get_i64(k->f, "n_items", &k->n_items));
    CHECK_OK(cr_file_get_array(k->f, "knn.ptr", CR_DT_I64, k->n_items + 1, &a[0], NULL));
    CHECK_OK(cr_file_get_array(k->f, "knn.idx", CR_DT_I32, -1, &a[1], &k->nnz));
    CHECK_OK(cr_file_get_array(k->f, "knn.sim", CR_DT_F32, -1, &a[2], &nsim));
    CHECK_EQ(nsim, k->nnz);
    k->ptr = a[0], k->idx = a[1], k->sim = a[2];
}

/* Row i must be exactly the n (item, similarity) pairs given, in order. */
static void check_row(const knn_view *k, int32_t i, int n, const int32_t *js, const float *ss) {
    CHECK_MSG(k->ptr[i + 1] - k->ptr[i] == n, "item %d: %lld neighbours, expected %d", i, (long long)(k->ptr[i + 1] - k->ptr[i]), n);
    for (int t = 0; t < n; t++) {
        CHECK_MSG(k->idx[k->ptr[i] + t] == js[t], "item %d neighbour %d: item %d, expected %d", i, t, k->idx[k->ptr[i] + t], js[t]);
        CHECK_NEAR(k->sim[k->ptr[i] + t], ss[t], 1e-7);
    }
}
#define ROW(k, i, ...)                                                                              \
    do { const struct { int32_t j; float s; } r_[] = {__VA_ARGS__};                                 \
         int32_t js_[8]; float ss_[8]; int n_ = (int)(sizeof r_ / sizeof r_[0]);                     \
         for (int t_ = 0; t_ < n_; t_++) js_[t_] = r_[t_].j, ss_[t_] = r_[t_].s;                    \
         check_row(k, i, n_, js_, ss_); } while (0)
#define EMPTY_ROW(k, i) check_row(k, i, 0, NULL, NULL)

/* ---- pop ---- */

TEST(models_pop_counts_and_by_domain) {
    cr_dataset *d = small_dataset();
    /* events: a1 2 (u1 u2), a2 2 (u1 u3), a3 3 (u3 u4 u4), a4 1, b1 3 (u1 u2 u2), b2 2 (u3 u4);
     * domain A has 8 events, B 5 */
    const int32_t cand[N_ITEMS] = {A1, A2, A3, A4, B1, B2};
    const float want[N_ITEMS] = {2, 2, 3, 1, 3, 2};
    const float want_dom[N_ITEMS] = {2 / 8.f, 2 / 8.f, 3 / 8.f, 1 / 8.f, 3 / 5.f, 2 / 5.f};
    float s[2 * N_ITEMS];
    cr_model *m = train(d, "pop", -1, 100, 0, 0);
    /* two rows, one a known user with no history: popularity needs neither */
    int32_t users[2] = {0, -1};
    int64_t hp[3] = {0, 0, 1};
    int32_t hist[1] = {A1};
    uint8_t can[2] = {0, 0};
    cr_score_request q = {2, users, hp, hist, -1, N_ITEMS, cand};
    CHECK_OK(cr_model_score(m, &q, s, can));
    CHECK(can[0] == 1 && can[1] == 1);
    for (int c = 0; c < N_ITEMS; c++) {
        CHECK_NEAR(s[c], want[c], 0);
        CHECK_NEAR(s[N_ITEMS + c], want[c], 0);
    }
    cr_model_free(m);

    cr_train_params p = cr_train_default_params();
    p.model = "pop";
    p.pop_by_domain = 1;
    CHECK_OK(cr_model_train(&m, d, cr_dataset_inter(d), &p));
    CHECK_EQ(score_row(m, NULL, 0, cand, N_ITEMS, s), 1);
    for (int c = 0; c < N_ITEMS; c++) CHECK_NEAR(s[c], want_dom[c], 1e-7);
    /* b1 (3 of B's 5) now beats a3 (3 of A's 8), which the raw counts tie */
    CHECK(s[B1] > s[A3]);
    cr_model_free(m);

    /* trained on B only: A items count 0 */
    m = train(d, "pop", 1, 100, 0, 0);
    CHECK_EQ(score_row(m, NULL, 0, cand, N_ITEMS, s), 1);
    for (int c = 0; c < N_ITEMS; c++) CHECK_NEAR(s[c], c >= B1 ? want[c] : 0, 0);
    cr_model_free(m);
    cr_dataset_free(d);
}

/* ---- itemknn: hand-computed tables ---- */

/* Distinct users: n = 2 for every item but a4 (1). Co-occurrence: a1-a2 1 (u1), a1-b1 2 (u1 u2; u2's repeat
 * counts once), a2-a3 1 (u3), a2-b1 1 (u1), a2-b2 1 (u3), a3-b2 2 (u3 u4); a4 none.
 * sim = co / sqrt(2 * 2): co 1 -> 0.5, co 2 -> 1.0. Equal similarities are listed by item index. */
TEST(models_itemknn_similarity_table) {
    cr_dataset *d = small_dataset();
    cr_model *m = train(d, "itemknn", -1, 100, 0, 0);
    knn_view k;
    knn_view_open(&k, m, "table.crm");
    ROW(&k, A1, {B1, 1.0f}, {A2, 0.5f});
    ROW(&k, A2, {A1, 0.5f}, {A3, 0.5f}, {B1, 0.5f}, {B2, 0.5f});
    ROW(&k, A3, {B2, 1.0f}, {A2, 0.5f});
    EMPTY_ROW(&k, A4);
    ROW(&k, B1, {A1, 1.0f}, {A2, 0.5f});
    ROW(&k, B2, {A3, 1.0f}, {A2, 0.5f});
    CHECK_EQ(k.nnz, 12);
    cr_file_close(k.f);
    cr_model_free(m);
    cr_dataset_free(d);
}

TEST(models_itemknn_shrink) {
    cr_dataset *d = small_dataset();
    /* shrink 1: co 2 -> 2 / (2 + 1), co 1 -> 1 / (2 + 1) */
    cr_model *m = train(d, "itemknn", -1, 100, 1.0, 0);
    knn_view k;
    knn_view_open(&k, m, "shrink.crm");
    ROW(&k, A1, {B1, 2.0f / 3}, {A2, 1.0f / 3});
    ROW(&k, A2, {A1, 1.0f / 3}, {A3, 1.0f / 3}, {B1, 1.0f / 3}, {B2, 1.0f / 3});
    ROW(&k, B2, {A3, 2.0f / 3}, {A2, 1.0f / 3});
    cr_file_close(k.f);
    cr_model_free(m);
    /* a shrink so large that every similarity rounds to 0 as a float: no neighbours (sim > 0 is an invariant
     * of the file, so the model must still load) */
    m = train(d, "itemknn", -1, 100, 1e300, 0);
    knn_view_open(&k, m, "shrink-huge.crm");
    CHECK_EQ(k.nnz, 0);
    cr_file_close(k.f);
    cr_model *l = NULL;
    CHECK_OK(cr_model_load(&l, cr_test_path("models-shrink-huge.crm")));
    cr_model_free(l);
    cr_model_free(m);
    cr_dataset_free(d);
}

TEST(models_itemknn_truncation_keeps_lowest_index_on_ties) {
    cr_dataset *d = small_dataset();
    /* K = 1 keeps the best neighbour of each domain (rows as in models_itemknn_similarity_table). a2's four
     * neighbours all tie at 0.5: in A it keeps a1 over a3, in B b1 over b2, and the row lists them by index.
     * a1 keeps b1 (1.0) and a2 (0.5), one per domain, and a3 likewise b2 and a2: rows of two, ordered by
     * similarity across domains. b1 and b2 have neighbours in A only: a1 (1.0) over a2 for b1, a3 (1.0) over
     * a2 for b2. a4 has none. */
    cr_model *m = train(d, "itemknn", -1, 1, 0, 0);
    knn_view k;
    knn_view_open(&k, m, "k1.crm");
    ROW(&k, A1, {B1, 1.0f}, {A2, 0.5f});
    ROW(&k, A2, {A1, 0.5f}, {B1, 0.5f});
    ROW(&k, A3, {B2, 1.0f}, {A2, 0.5f});
    EMPTY_ROW(&k, A4);
    ROW(&k, B1, {A1, 1.0f});
    ROW(&k, B2, {A3, 1.0f});
    CHECK_EQ(k.nnz, 8);
    cr_file_close(k.f);
    cr_model_free(m);
    /* K = 2: no item has more than two neighbours in one domain, so nothing is cut and the table is the full
     * one, a2 keeping all four (two per domain, more than K in the row) */
    m = train(d, "itemknn", -1, 2, 0, 0);
    knn_view_open(&k, m, "k2.crm");
    ROW(&k, A1, {B1, 1.0f}, {A2, 0.5f});
    ROW(&k, A2, {A1, 0.5f}, {A3, 0.5f}, {B1, 0.5f}, {B2, 0.5f});
    ROW(&k, A3, {B2, 1.0f}, {A2, 0.5f});
    EMPTY_ROW(&k, A4);
    ROW(&k, B1, {A1, 1.0f}, {A2, 0.5f});
    ROW(&k, B2, {A3, 1.0f}, {A2, 0.5f});
    CHECK_EQ(k.nnz, 12);
    cr_file_close(k.f);
    cr_model_free(m);
    cr_dataset_free(d);
}

/* Two domains, items a1=0 a2=1 a3=2 (A), b1=3 b2=4 (B), one event per (user, item):
 *   q1: a1 a2 a3 b1    q2: a1 a2 a3    q3: a1 a2 a3    q4: a1 a2 b2    q5: a3 b2    q6: b2    q7: b2
 * Distinct users n: a1 4, a2 4, a3 4 (q1 q2 q3 q5), b1 1, b2 4 (q4 q5 q6 q7). Co-occurrence: a1-a2 4,
 * a1-a3 3, a2-a3 3, a1-b1 a2-b1 a3-b1 1, a1-b2 a2-b2 a3-b2 1 (q4, q4, q5), b1-b2 0. sim = co / sqrt(n_i n_j):
 *   a1-a2 4/4 = 1, a1-a3 a2-a3 3/4 = 0.75, a1-b1 a2-b1 a3-b1 1/2 = 0.5, a1-b2 a2-b2 a3-b2 1/4 = 0.25.
 * a1's best B neighbour (b1, 0.5) ranks below both A ones: a global top 1 or top 2 would keep no B item. */
static const char *QUOTA_ITEMS = "item\tdomain\ttitle\ttext\n"
                                 "a1\tA\t\t\n"
                                 "a2\tA\t\t\n"
                                 "a3\tA\t\t\n"
                                 "b1\tB\t\t\n"
                                 "b2\tB\t\t\n";
static const char *QUOTA_INTER = "user\titem\ttimestamp\tvalue\n"
                                 "q1\ta1\t1\t1\nq1\ta2\t2\t1\nq1\ta3\t3\t1\nq1\tb1\t4\t1\n"
                                 "q2\ta1\t1\t1\nq2\ta2\t2\t1\nq2\ta3\t3\t1\n"
                                 "q3\ta1\t1\t1\nq3\ta2\t2\t1\nq3\ta3\t3\t1\n"
                                 "q4\ta1\t1\t1\nq4\ta2\t2\t1\nq4\tb2\t3\t1\n"
                                 "q5\ta3\t1\t1\nq5\tb2\t2\t1\n"
                                 "q6\tb2\t1\t1\n"
                                 "q7\tb2\t1\t1\n";

TEST(models_itemknn_quota_per_domain) {
    enum { QA1, QA2, QA3, QB1, QB2, QN };
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = cr_test_write("models-quota-inter.tsv", QUOTA_INTER, -1);
    p.items[p.n_items++] = cr_test_write("models-quota-items.tsv", QUOTA_ITEMS, -1);
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    CHECK_EQ(cr_dataset_inter(d)->n_items, QN);
    CHECK_EQ(cr_dataset_inter(d)->n_domains, 2);
    CHECK_EQ(cr_dataset_find_item(d, "b1"), QB1);
    CHECK_EQ(cr_dataset_find_item(d, "b2"), QB2);
    /* K = 1: every item keeps its best A neighbour and its best B neighbour. a3's A neighbours tie at 0.75
     * (a1 kept); b1 and b2 have no B neighbour, so one entry each. */
    cr_model *m = train(d, "itemknn", -1, 1, 0, 0);
    knn_view k;
    knn_view_open(&k, m, "quota.crm");
    ROW(&k, QA1, {QA2, 1.0f}, {QB1, 0.5f});
    ROW(&k, QA2, {QA1, 1.0f}, {QB1, 0.5f});
    ROW(&k, QA3, {QA1, 0.75f}, {QB1, 0.5f});
    ROW(&k, QB1, {QA1, 0.5f});
    ROW(&k, QB2, {QA1, 0.25f});
    CHECK_EQ(k.nnz, 8);
    cr_file_close(k.f);
    /* a user cold in B, history {a1}: b1 is reached through a1's B neighbour; b2 (cut from B) and a3 (cut
     * from A) score 0 */
    const int32_t hist[1] = {QA1}, cand[4] = {QB1, QB2, QA2, QA3};
    float s[4];
    CHECK_EQ(score_row(m, hist, 1, cand, 4, s), 1);
    CHECK_NEAR(s[0], 0.5, 0); CHECK_NEAR(s[1], 0.0, 0); CHECK_NEAR(s[2], 1.0, 0); CHECK_NEAR(s[3], 0.0, 0);
    /* every A item's row reaches b1: {a2, a3} scores b1 = 0.5 + 0.5 */
    const int32_t hist2[2] = {QA2, QA3};
    CHECK_EQ(score_row(m, hist2, 2, cand, 1, s), 1);
    CHECK_NEAR(s[0], 1.0, 0);
    /* the other way, a user cold in A, history {b2}: a1 = 0.25 */
    const int32_t hist3[1] = {QB2}, cand3[3] = {QA1, QA2, QB1};
    CHECK_EQ(score_row(m, hist3, 1, cand3, 3, s), 1);
    CHECK_NEAR(s[0], 0.25, 0); CHECK_NEAR(s[1], 0.0, 0); CHECK_NEAR(s[2], 0.0, 0);
    cr_model_free(m);
    /* K = 2: a1 keeps all four (two per domain), still by similarity across domains */
    m = train(d, "itemknn", -1, 2, 0, 0);
    knn_view_open(&k, m, "quota2.crm");
    ROW(&k, QA1, {QA2, 1.0f}, {QA3, 0.75f}, {QB1, 0.5f}, {QB2, 0.25f});
    ROW(&k, QB1, {QA1, 0.5f}, {QA2, 0.5f});
    cr_file_close(k.f);
    cr_model_free(m);
    cr_dataset_free(d);
}

TEST(models_itemknn_one_domain_training) {
    cr_dataset *d = small_dataset();
    /* domain A only: the B events vanish, A's co-occurrence stays: a1-a2 (u1), a2-a3 (u3); n = 2 for a1 a2 a3 */
    cr_model *m = train(d, "itemknn", 0, 100, 0, 0);
    knn_view k;
    knn_view_open(&k, m, "domA.crm");
    ROW(&k, A1, {A2, 0.5f});
    ROW(&k, A2, {A1, 0.5f}, {A3, 0.5f});
    ROW(&k, A3, {A2, 0.5f});
    EMPTY_ROW(&k, B1);
    EMPTY_ROW(&k, B2);
    cr_file_close(k.f);
    cr_model_free(m);
    /* domain B only: b1 and b2 share no user, so no row has a neighbour */
    m = train(d, "itemknn", 1, 100, 0, 0);
    knn_view_open(&k, m, "domB.crm");
    CHECK_EQ(k.nnz, 0);
    cr_file_close(k.f);
    /* ... and a user known by A items alone cannot be represented by it */
    const int32_t hist[1] = {A1}, cand[2] = {B1, B2};
    float s[2];
    CHECK_EQ(score_row(m, hist, 1, cand, 2, s), 0);
    cr_model_free(m);
    cr_dataset_free(d);
}

/* A user with history only in A (cold in B) gets B scores through items that co-occur across domains. */
TEST(models_itemknn_cross_domain_cold_user) {
    cr_dataset *d = small_dataset();
    cr_model *m = train(d, "itemknn", -1, 100, 0, 0);
    const int32_t cand[2] = {B1, B2};
    float s[2];
    /* {a1}: b1 = sim(a1,b1) = 1, b2 = 0 */
    const int32_t h1[1] = {A1};
    CHECK_EQ(score_row(m, h1, 1, cand, 2, s), 1);
    CHECK_NEAR(s[0], 1.0, 0); CHECK_NEAR(s[1], 0.0, 0);
    /* {a1, a2}: b1 = 1 + 0.5, b2 = 0.5 */
    const int32_t h2[2] = {A1, A2};
    CHECK_EQ(score_row(m, h2, 2, cand, 2, s), 1);
    CHECK_NEAR(s[0], 1.5, 0); CHECK_NEAR(s[1], 0.5, 0);
    /* {a3, a2, a3, a3}: repeats count once: b1 = 0.5 (via a2), b2 = 1 + 0.5 */
    const int32_t h3[4] = {A3, A2, A3, A3};
    CHECK_EQ(score_row(m, h3, 4, cand, 2, s), 1);
    CHECK_NEAR(s[0], 0.5, 0); CHECK_NEAR(s[1], 1.5, 0);
    /* the same candidate twice, and history items among the candidates (scored by their neighbours) */
    const int32_t cand2[4] = {B1, A2, B1, A1};
    float s2[4];
    CHECK_EQ(score_row(m, h1, 1, cand2, 4, s2), 1);
    CHECK_NEAR(s2[0], 1.0, 0); CHECK_NEAR(s2[1], 0.5, 0); CHECK_NEAR(s2[2], 1.0, 0); CHECK_NEAR(s2[3], 0.0, 0);
    cr_model_free(m);
    cr_dataset_free(d);
}

TEST(models_itemknn_cannot_score_without_neighbours) {
    cr_dataset *d = small_dataset();
    cr_model *m = train(d, "itemknn", -1, 100, 0, 0);
    /* three rows in one request: empty history, only a4 (no co-occurrence), a4 then a1 */
    const int32_t cand[3] = {A2, B1, B2};
    int32_t users[3] = {4, 4, -1};
    int64_t hp[4] = {0, 0, 1, 3};
    const int32_t hist[3] = {A4, A4, A1};
    float s[9];
    uint8_t can[3] = {9, 9, 9};
    cr_score_request q = {3, users, hp, hist, 1, 3, cand};
    CHECK_OK(cr_model_score(m, &q, s, can));
    CHECK_EQ(can[0], 0);
    CHECK_EQ(can[1], 0);
    CHECK_EQ(can[2], 1);
    for (int c = 0; c < 6; c++) CHECK_NEAR(s[c], 0.0, 0);
    CHECK_NEAR(s[6], 0.5, 0); CHECK_NEAR(s[7], 1.0, 0); CHECK_NEAR(s[8], 0.0, 0);
    /* no history array at all: every row is empty */
    q.hist_ptr = NULL, q.hist_items = NULL;
    CHECK_OK(cr_model_score(m, &q, s, can));
    CHECK(can[0] == 0 && can[1] == 0 && can[2] == 0);
    cr_model_free(m);
    cr_dataset_free(d);
}

/* ---- itemknn against a brute-force reference ---- */

typedef struct { float s; int32_t j; } ref_nb;
static int ref_cmp(const void *pa, const void *pb) {
    const ref_nb *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

/* Dense users x items incidence, co-occurrence by pairs, full sort per item, then the first K of each domain in
 * that order (the sorted row filtered, so the order is kept). Returns the number of rows longer than K (which
 * only a quota per domain allows) through *over, and of rows where some domain lost neighbours through *cut. */
static void check_against_reference(const cr_dataset *d, const cr_model *m, int32_t domain, int64_t K, double shrink,
                                    const char *name, int64_t *over, int64_t *cut) {
    const cr_interactions *v = cr_dataset_inter(d);
    int64_t nu = v->n_users, ni = v->n_items;
    uint8_t *has = calloc((size_t)(nu * ni), 1);   /* (n_users, n_items) */
    int64_t *n = calloc((size_t)ni, sizeof *n);
    ref_nb *row = malloc((size_t)ni * sizeof *row);
    int64_t *per = malloc((size_t)v->n_domains * sizeof *per);     /* (n_domains) kept so far in the row */
    *over = *cut = 0;
    for (int64_t u = 0; u < nu; u++)
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
            if (domain < 0 || v->item_domain[v->user_items[e]] == domain) has[u * ni + v->user_items[e]] = 1;
    for (int64_t i = 0; i < ni; i++)
        for (int64_t u = 0; u < nu; u++) n[i] += has[u * ni + i];
    knn_view k;
    knn_view_open(&k, m, name);
    int64_t entries = 0;
    for (int64_t i = 0; i < ni; i++) {
        int64_t nr = 0;
        for (int64_t j = 0; j < ni; j++) {
            if (j == i) continue;
            int64_t co = 0;
            for (int64_t u = 0; u < nu; u++) co += has[u * ni + i] & has[u * ni + j];
            if (!co) continue;
            float s = (float)((double)co / (sqrt((double)n[i] * (double)n[j]) + shrink));
            if (s > 0) row[nr++] = (ref_nb){s, (int32_t)j};
        }
        qsort(row, (size_t)nr, sizeof *row, ref_cmp);
        memset(per, 0, (size_t)v->n_domains * sizeof *per);
        int64_t kept = 0;
        for (int64_t t = 0; t < nr; t++)
            if (per[v->item_domain[row[t].j]]++ < K) row[kept++] = row[t];
        *cut += kept < nr;
        nr = kept;
        *over += nr > K;
        CHECK_MSG(k.ptr[i + 1] - k.ptr[i] == nr, "item %lld: %lld neighbours, reference %lld", (long long)i,
                  (long long)(k.ptr[i + 1] - k.ptr[i]), (long long)nr);
        for (int64_t t = 0; t < nr; t++) {
            CHECK_MSG(k.idx[k.ptr[i] + t] == row[t].j && k.sim[k.ptr[i] + t] == row[t].s,
                      "item %lld entry %lld: (%d, %.9g), reference (%d, %.9g)", (long long)i, (long long)t,
                      k.idx[k.ptr[i] + t], k.sim[k.ptr[i] + t], row[t].j, row[t].s);
        }
        entries += nr;
    }
    CHECK_EQ(k.nnz, entries);
    cr_file_close(k.f);
    free(has), free(n), free(row), free(per);
}

TEST(models_itemknn_matches_brute_force_reference) {
    cr_dataset *d = synth_dataset(150, 120, 2500, 7);
    const struct { int32_t domain; int64_t K; double shrink; int threads; } cases[] = {
        {-1, 100, 0, 1}, {-1, 5, 0, 3}, {-1, 1, 2.5, 2}, {1, 10, 0.5, 0}, {-1, 1000, 0, 4},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cr_model *m = train(d, "itemknn", cases[c].domain, cases[c].K, cases[c].shrink, cases[c].threads);
        int64_t over, cut;
        check_against_reference(d, m, cases[c].domain, cases[c].K, cases[c].shrink, "ref.crm", &over, &cut);
        cr_model_free(m);
        /* the small K cut rows, and over all domains keep rows longer than K; one domain's model can't */
        if (cases[c].K <= 10) CHECK_MSG(cut > 0, "case %zu: no row was cut", c);
        if (cases[c].K <= 5) CHECK_MSG(over > 0, "case %zu: no row is longer than K", c);
        if (cases[c].domain >= 0) CHECK_EQ(over, 0);
        if (cases[c].K == 1000) CHECK_EQ(cut, 0);
    }
    cr_dataset_free(d);
}

/* Scoring against a reference sum over the saved neighbour lists, for random histories. */
TEST(models_itemknn_scores_match_reference_sum) {
    cr_dataset *d = synth_dataset(150, 120, 2500, 8);
    int64_t ni = cr_dataset_inter(d)->n_items;
    cr_model *m = train(d, "itemknn", -1, 20, 0, 0);
    knn_view k;
    knn_view_open(&k, m, "sum.crm");
    cr_rng rng;
    cr_rng_named(&rng, 1, "models-test");
    int32_t *cand = malloc((size_t)ni * sizeof *cand);
    float *s = malloc((size_t)ni * sizeof *s);
    double *want = malloc((size_t)ni * sizeof *want);
    for (int64_t c = 0; c < ni; c++) cand[c] = (int32_t)c;
    for (int trial = 0; trial < 50; trial++) {
        int32_t hist[12];
        int64_t nh = cr_rng_below(&rng, 12);
        for (int64_t e = 0; e < nh; e++) hist[e] = (int32_t)cr_rng_below(&rng, (uint32_t)ni);
        int can = score_row(m, hist, nh, cand, ni, s);
        memset(want, 0, (size_t)ni * sizeof *want);
        int any = 0;
        for (int64_t e = 0; e < nh; e++) {
            int dup = 0;
            for (int64_t f = 0; f < e; f++) dup |= hist[f] == hist[e];
            if (dup) continue;
            for (int64_t t = k.ptr[hist[e]]; t < k.ptr[hist[e] + 1]; t++) want[k.idx[t]] += k.sim[t], any = 1;
        }
        CHECK_EQ(can, any);
        for (int64_t c = 0; c < ni; c++) CHECK_NEAR(s[c], want[c], 1e-5);
    }
    free(cand), free(s), free(want);
    cr_file_close(k.f);
    cr_model_free(m);
    cr_dataset_free(d);
}

/* ---- files ---- */

/* Random rows (known and history-only users, histories with repeats) against random candidates. */
static void check_same_scores(const cr_model *a, const cr_model *b, int64_t n_users, int64_t n_items, uint64_t seed) {
    enum { ROWS = 40, CAND = 30, HIST = 200 };
    cr_rng rng;
    cr_rng_named(&rng, seed, "models-requests");
    int32_t users[ROWS], hist[HIST], cand[CAND];
    int64_t hp[ROWS + 1];
    hp[0] = 0;
    for (int r = 0; r < ROWS; r++) {
        users[r] = cr_rng_below(&rng, 4) ? (int32_t)cr_rng_below(&rng, (uint32_t)n_users) : -1;
        hp[r + 1] = hp[r] + (r % 5 == 0 ? 0 : (int64_t)cr_rng_below(&rng, 8));
    }
    for (int64_t e = 0; e < hp[ROWS]; e++) hist[e] = (int32_t)cr_rng_below(&rng, (uint32_t)n_items);
    for (int c = 0; c < CAND; c++) cand[c] = (int32_t)cr_rng_below(&rng, (uint32_t)n_items);
    cr_score_request q = {ROWS, users, hp, hist, -1, CAND, cand};
    float sa[ROWS * CAND], sb[ROWS * CAND];
    uint8_t ca[ROWS], cb[ROWS];
    memset(sa, 0xAA, sizeof sa), memset(sb, 0x55, sizeof sb);
    CHECK_OK(cr_model_score(a, &q, sa, ca));
    CHECK_OK(cr_model_score(b, &q, sb, cb));
    CHECK(!memcmp(sa, sb, sizeof sa));
    CHECK(!memcmp(ca, cb, sizeof ca));
}

TEST(models_save_load_gives_identical_scores) {
    cr_dataset *d = synth_dataset(200, 150, 3000, 9);
    const cr_interactions *v = cr_dataset_inter(d);
    const char *path = cr_test_path("models-m.crm");
    const char *names[] = {"pop", "pop", "itemknn", "itemknn"};
    for (int t = 0; t < 4; t++) {
        cr_train_params p = cr_train_default_params();
        p.model = names[t];
        p.pop_by_domain = t == 1;
        p.knn_neighbors = t == 3 ? 7 : 100;
        p.knn_shrink = t == 3 ? 3.5 : 0;
        p.domain = t == 3 ? 2 : -1;
        cr_model *m = NULL, *l = NULL;
        CHECK_OK(cr_model_train(&m, d, v, &p));
        CHECK_OK(cr_model_save(m, path));
        CHECK_OK(cr_model_load(&l, path));
        CHECK_STR(cr_model_name(l), names[t]);
        CHECK_EQ(l->n_users, v->n_users);
        CHECK_EQ(l->n_items, v->n_items);
        CHECK_EQ(l->n_domains, v->n_domains);
        CHECK_EQ(l->dataset_crc, 0);    /* an imported dataset has no file */
        check_same_scores(m, l, v->n_users, v->n_items, (uint64_t)t);
        cr_model_free(m);
        cr_model_free(l);
    }
    /* a dataset loaded from a .crd: the model records the file's checksum */
    const char *crd = cr_test_path("models-m.crd");
    CHECK_OK(cr_dataset_save(d, crd));
    cr_dataset_free(d);
    CHECK_OK(cr_dataset_load(&d, crd));
    cr_model *m = train(d, "pop", -1, 100, 0, 0), *l = NULL;
    CHECK(m->dataset_crc == cr_dataset_file_crc(d) && m->dataset_crc != 0);
    CHECK_OK(cr_model_save(m, path));
    CHECK_OK(cr_model_load(&l, path));
    CHECK(l->dataset_crc == m->dataset_crc);
    cr_model_free(m);
    cr_model_free(l);
    cr_dataset_free(d);
}

/* Rewrites a valid .crm through cr_filew (so the CRC is valid) with one change made by `edit`. */
typedef void (*crm_edit)(const char *name, void *copy, int64_t count, int victim);

static const char *rewrite_crm(const char *src, const char *dst, const char *meta_key, const char *meta_str,
                               int64_t meta_i64, crm_edit edit, int victim) {
    cr_file *f;
    CHECK_OK(cr_file_open(&f, src, "CRM", CR_CRM_VERSION));
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", CR_CRM_VERSION));
    for (int64_t k = 0; k < cr_file_n_meta(f); k++) {
        const cr_meta *m = cr_file_meta_at(f, k);
        int hit = meta_key && !strcmp(m->key, meta_key);
        if (m->type == CR_META_I64) CHECK_OK(cr_filew_meta_i64(w, m->key, hit ? meta_i64 : m->i64));
        else if (m->type == CR_META_F64) CHECK_OK(cr_filew_meta_f64(w, m->key, m->f64));
        else CHECK_OK(cr_filew_meta_str(w, m->key, hit ? meta_str : m->str));
    }
    void *copies[16] = {0};
    CHECK(cr_file_n_arrays(f) <= 16);
    for (int64_t k = 0; k < cr_file_n_arrays(f); k++) {
        const cr_array *a = cr_file_array_at(f, k);
        copies[k] = malloc((size_t)a->nbytes + 1);
        memcpy(copies[k], a->data, (size_t)a->nbytes);
        if (edit) edit(a->name, copies[k], a->count, victim);
        CHECK_OK(cr_filew_array(w, a->name, a->dtype, copies[k], a->count));
    }
    CHECK_OK(cr_filew_commit(w, dst));
    cr_filew_free(w);
    for (int k = 0; k < 16; k++) free(copies[k]);
    cr_file_close(f);
    return dst;
}

/* Damage done to the small dataset's itemknn model (rows as in models_itemknn_similarity_table). */
static void knn_damage(const char *name, void *copy, int64_t count, int victim) {
    int32_t *idx = copy;
    float *sim = copy;
    int64_t *ptr = copy;
    if (!strcmp(name, "knn.idx")) {
        if (victim == 0) idx[0] = 99;           /* out of range */
        if (victim == 1) idx[0] = A1;           /* a1's first neighbour is a1 itself */
        if (victim == 2) idx[1] = B1;           /* a1 lists b1 twice */
    } else if (!strcmp(name, "knn.sim")) {
        if (victim == 3) sim[0] = NAN;
        if (victim == 4) sim[0] = 0.25f;        /* a1: 0.25 before 0.5 breaks the order */
        if (victim == 5) sim[1] = -0.5f;
    } else if (!strcmp(name, "knn.ptr")) {
        if (victim == 6) ptr[1] = 5, ptr[2] = 4;   /* decreasing */
        if (victim == 7) ptr[N_ITEMS] = count;     /* does not end at the entry count */
    }
}

static void pop_damage(const char *name, void *copy, int64_t count, int victim) {
    int64_t *c = copy;
    int32_t *dom = copy;
    if (!strcmp(name, "pop.count") && victim == 0) c[0] = -1;
    if (!strcmp(name, "pop.count") && victim == 1) c[0] = 3;    /* domain A's total no longer matches */
    if (!strcmp(name, "pop.item_domain") && victim == 2) dom[0] = 2;
    if (!strcmp(name, "pop.count") && victim == 3) c[0] = INT64_MAX, c[1] = INT64_MAX;
}

TEST(models_load_rejects_corrupt_files) {
    cr_dataset *d = small_dataset();
    const char *good = cr_test_path("models-good.crm"), *bad = cr_test_path("models-bad.crm");
    cr_model *m = train(d, "itemknn", -1, 100, 0, 0), *l = NULL;
    CHECK_OK(cr_model_save(m, good));
    cr_model_free(m);
    /* the unmodified copy loads: the damage below is what gets refused */
    CHECK_OK(cr_model_load(&l, rewrite_crm(good, bad, NULL, NULL, 0, NULL, 0)));
    cr_model_free(l);
    const char *knn_msgs[8] = {"bad.crm: knn.idx[0] = 99 is not a neighbour of item 0", "knn.idx[0] = 0 is not a neighbour of item 0",
                               "item 0 lists neighbour 4 twice", "knn.sim[0] = nan is not a finite positive",
                               "neighbours of item 0 are not in (similarity desc, item asc) order at 1",
                               "knn.sim[1] = -0.5 is not", "knn.ptr decreases at 1", "knn.ptr does not span 0..12"};
    for (int victim = 0; victim < 8; victim++) {
        rewrite_crm(good, bad, NULL, NULL, 0, knn_damage, victim);
        l = NULL;
        CHECK_STATUS(cr_model_load(&l, bad), CR_ERR_FORMAT);
        CHECK(l == NULL);
        CHECK_CONTAINS(cr_errmsg(), knn_msgs[victim]);
    }
    /* more neighbours in a row than the model says it keeps: a2 has 4, two per domain; with 2 domains the limit
     * is neighbors x 2, so 2 still loads and 1 does not (a1's 2 are allowed, a2 is the first refused) */
    CHECK_OK(cr_model_load(&l, rewrite_crm(good, bad, "itemknn.neighbors", NULL, 2, NULL, 0)));
    cr_model_free(l);
    l = NULL;
    CHECK_STATUS(cr_model_load(&l, rewrite_crm(good, bad, "itemknn.neighbors", NULL, 1, NULL, 0)), CR_ERR_FORMAT);
    CHECK(l == NULL);
    CHECK_CONTAINS(cr_errmsg(), "bad.crm: item 1 has 4 neighbours, more than itemknn.neighbors = 1 per domain");
    CHECK_STATUS(cr_model_load(&l, rewrite_crm(good, bad, "n_items", NULL, 5, NULL, 0)), CR_ERR_FORMAT);
    CHECK_STATUS(cr_model_load(&l, rewrite_crm(good, bad, "itemknn.domain", NULL, 2, NULL, 0)), CR_ERR_FORMAT);

    m = train(d, "pop", -1, 100, 0, 0);
    CHECK_OK(cr_model_save(m, good));
    cr_model_free(m);
    const char *pop_msgs[4] = {"bad.crm: pop.count[0] = -1 is negative",
                               "bad.crm: pop.domain_events[0] = 8, but the counts of its items sum to 9",
                               "bad.crm: pop.item_domain[0] = 2 is outside 0..1", "bad.crm: pop.count sums overflow"};
    for (int victim = 0; victim < 4; victim++) {
        CHECK_STATUS(cr_model_load(&l, rewrite_crm(good, bad, NULL, NULL, 0, pop_damage, victim)), CR_ERR_FORMAT);
        CHECK_CONTAINS(cr_errmsg(), pop_msgs[victim]);
    }
    CHECK_STATUS(cr_model_load(&l, rewrite_crm(good, bad, "pop.by_domain", NULL, 2, NULL, 0)), CR_ERR_FORMAT);
    /* a dataset file is not a model */
    const char *crd = cr_test_path("models-small.crd");
    CHECK_OK(cr_dataset_save(d, crd));
    CHECK_STATUS(cr_model_load(&l, crd), CR_ERR_FORMAT);
    CHECK_STATUS(cr_model_load(&l, cr_test_path("models-absent.crm")), CR_ERR_IO);
    cr_dataset_free(d);
}

TEST(models_load_unknown_type) {
    cr_dataset *d = small_dataset();
    const char *good = cr_test_path("models-good.crm"), *bad = cr_test_path("models-m.crm");
    cr_model *m = train(d, "pop", -1, 100, 0, 0), *l = NULL;
    CHECK_OK(cr_model_save(m, good));
    cr_model_free(m);
    CHECK_STATUS(cr_model_load(&l, rewrite_crm(good, bad, "model", "tower9", 0, NULL, 0)), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "m.crm: model type 'tower9' is not known to this crossrec (known: pop, itemknn, bpr, als");
    CHECK(l == NULL);
    cr_dataset_free(d);
}

TEST(models_train_and_score_refuse_bad_arguments) {
    cr_dataset *d = small_dataset();
    const cr_interactions *v = cr_dataset_inter(d);
    cr_train_params p = cr_train_default_params();
    CHECK_STR(p.model, "pop");
    CHECK_EQ(p.domain, -1);
    CHECK_EQ(p.knn_neighbors, 100);
    cr_model *m = NULL;
    p.model = "itemnkk";
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "model type 'itemnkk' is not known (known: pop, itemknn, bpr, als");
    p.model = "itemknn";
    p.domain = 2;
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    p.domain = -1;
    p.knn_neighbors = 0;
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    p.knn_neighbors = 10;
    p.knn_shrink = -1;
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    p.knn_shrink = 0;
    cr_interactions other = *v;
    other.n_items--;
    CHECK_STATUS(cr_model_train(&m, d, &other, &p), CR_ERR_ARG);
    CHECK(m == NULL);
    const char *const *names = cr_model_names();
    CHECK_STR(names[0], "pop");
    CHECK_STR(names[1], "itemknn");
    CHECK_STR(names[2], "bpr");
    CHECK_STR(names[3], "als");
    CHECK_STR(names[6], "ptupcdr");
    CHECK_STR(names[7], "tower");
    CHECK(names[8] == NULL);
    int n_names = 4;    /* types registered later (cmf, ...) follow; the list must end with NULL */
    while (n_names < 64 && names[n_names]) n_names++;
    CHECK(n_names < 64);

    CHECK_OK(cr_model_train(&m, d, v, &p));
    int32_t cand[2] = {A1, N_ITEMS}, hist[1] = {A1}, user = 0;
    int64_t hp[2] = {0, 1};
    float s[2];
    uint8_t can;
    cr_score_request q = {1, &user, hp, hist, -1, 2, cand};
    CHECK_STATUS(cr_model_score(m, &q, s, &can), CR_ERR_ARG);   /* candidate out of range */
    CHECK_CONTAINS(cr_errmsg(), "candidate 1 is item 6");
    cand[1] = B1;
    hist[0] = -3;
    CHECK_STATUS(cr_model_score(m, &q, s, &can), CR_ERR_ARG);
    hist[0] = A1;
    user = 5;
    CHECK_STATUS(cr_model_score(m, &q, s, &can), CR_ERR_ARG);
    user = 4;
    hp[1] = -1;
    CHECK_STATUS(cr_model_score(m, &q, s, &can), CR_ERR_ARG);
    hp[1] = 1;
    CHECK_OK(cr_model_score(m, &q, s, &can));
    CHECK_NEAR(s[1], 1.0, 0);
    cr_model_free(m);
    cr_dataset_free(d);
}

TEST(models_itemknn_threads_give_identical_files) {
    cr_dataset *d = synth_dataset(1500, 800, 30000, 11);
    char *first = NULL;
    size_t first_len = 0;
    const int threads[] = {1, 2, 4, 0};
    for (int t = 0; t < 4; t++) {
        cr_model *m = train(d, "itemknn", -1, 25, 0.5, threads[t]);
        const char *path = cr_test_path("models-threads.crm");
        CHECK_OK(cr_model_save(m, path));
        cr_model_free(m);
        size_t len;
        char *bytes = cr_test_read(path, &len);
        if (!first) {
            first = bytes, first_len = len;
            continue;
        }
        int same = len == first_len && !memcmp(bytes, first, len);
        free(bytes);
        CHECK_MSG(same, "itemknn trained with %d threads differs from 1 thread", threads[t]);
    }
    free(first);
    cr_dataset_free(d);
}

TEST(models_alloc_failures_are_clean) {
    cr_dataset *d = small_dataset();
    const char *path = cr_test_path("models-fault.crm");
    const char *names[] = {"pop", "itemknn"};
    for (int t = 0; t < 2; t++) {
        cr_train_params p = cr_train_default_params();
        p.model = names[t];
        p.threads = 2;      /* the per-thread scratch allocations fail too */
        int64_t n;
        for (n = 1; n < 100000; n++) {
            remove(path);
            cr_alloc_fail_nth(n);
            cr_model *m = NULL, *l = NULL;
            cr_status st = cr_model_train(&m, d, cr_dataset_inter(d), &p);
            if (st == CR_OK) st = cr_model_save(m, path);
            if (st == CR_OK) st = cr_model_load(&l, path);
            float s[N_ITEMS];
            int32_t cand[N_ITEMS] = {A1, A2, A3, A4, B1, B2}, hist[2] = {A1, B2}, user = 0;
            int64_t hp[2] = {0, 2};
            uint8_t can;
            cr_score_request q = {1, &user, hp, hist, -1, N_ITEMS, cand};
            if (st == CR_OK) st = cr_model_score(l, &q, s, &can);
            cr_model_free(m);
            cr_model_free(l);
            int hit = cr_alloc_fault_hit();
            cr_alloc_fail_nth(0);
            if (!hit) {
                CHECK_OK(st);
                break;
            }
            /* a failed shrink of the neighbour arrays is absorbed; anything else must be NOMEM */
            CHECK_MSG(st == CR_ERR_NOMEM || st == CR_OK, "%s: failing allocation %lld gave %s: %s", names[t], (long long)n,
                      cr_status_str(st), cr_errmsg());
        }
        CHECK(n > 5);
    }
    cr_dataset_free(d);
}

/* Several threads score one model at once (as evaluation and the server do) and get the sequential answers. */
typedef struct {
    const cr_model *m;
    const cr_score_request *q;
    float *scores;
    uint8_t *can;
    cr_status st;
} score_job;

static void *score_thread(void *arg) {
    score_job *j = arg;
    for (int rep = 0; rep < 20 && !j->st; rep++) j->st = cr_model_score(j->m, j->q, j->scores, j->can);
    return NULL;
}

TEST(models_concurrent_scoring_matches_sequential) {
    cr_dataset *d = synth_dataset(300, 200, 5000, 12);
    const cr_interactions *v = cr_dataset_inter(d);
    enum { T = 4, ROWS = 64 };
    int32_t users[ROWS], cand[200];
    int64_t hp[ROWS + 1];
    for (int r = 0; r < ROWS; r++) users[r] = r;
    for (int r = 0; r <= ROWS; r++) hp[r] = v->user_ptr[r];     /* the users' own events as histories */
    for (int c = 0; c < 200; c++) cand[c] = c;
    cr_score_request q = {ROWS, users, hp, v->user_items, -1, v->n_items, cand};
    const char *names[2] = {"pop", "itemknn"};
    float *want = malloc(ROWS * 200 * sizeof *want), *got[T];
    uint8_t want_can[ROWS], got_can[T][ROWS];
    for (int t = 0; t < T; t++) got[t] = malloc(ROWS * 200 * sizeof *got[t]);
    for (int k = 0; k < 2; k++) {
        cr_model *m = train(d, names[k], -1, 30, 0, 0);
        CHECK_OK(cr_model_score(m, &q, want, want_can));
        pthread_t th[T];
        score_job jobs[T];
        for (int t = 0; t < T; t++) {
            jobs[t] = (score_job){m, &q, got[t], got_can[t], CR_OK};
            CHECK(pthread_create(&th[t], NULL, score_thread, &jobs[t]) == 0);
        }
        for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < T; t++) {
            CHECK_OK(jobs[t].st);
            CHECK(!memcmp(got[t], want, (size_t)(ROWS * v->n_items) * sizeof *want));
            CHECK(!memcmp(got_can[t], want_can, sizeof want_can));
        }
        cr_model_free(m);
    }
    free(want);
    for (int t = 0; t < T; t++) free(got[t]);
    cr_dataset_free(d);
}

/* `crossrec train` end to end: synth -> import -> split -> train, and its usage errors. */
TEST(models_cli_train) {
    /* cr_test_path's buffers rotate (and cr_test_cli uses one), so keep copies */
    char dir[512], crd[512], crs[512], knn[512], lib[512];
    snprintf(dir, sizeof dir, "%s", cr_test_path("models-cli-synth"));
    snprintf(crd, sizeof crd, "%s", cr_test_path("models-cli.crd"));
    snprintf(crs, sizeof crs, "%s", cr_test_path("models-cli.crs"));
    snprintf(knn, sizeof knn, "%s", cr_test_path("models-cli-knn.crm"));
    snprintf(lib, sizeof lib, "%s", cr_test_path("models-lib-knn.crm"));
    char *text;
    int rc = cr_test_cli(&text, "synth -o '%s' --users 400 --items 300 --interactions 6000 --domains 3 --seed 4", dir);
    CHECK_MSG(rc == 0, "synth: %s", text);
    free(text);
    rc = cr_test_cli(&text, "import '%s' -o '%s' -q", dir, crd);
    CHECK_MSG(rc == 0, "import: %s", text);
    free(text);
    rc = cr_test_cli(&text, "split '%s' --protocol cold-user --target music -o '%s' -q", crd, crs);
    CHECK_MSG(rc == 0, "split: %s", text);
    free(text);
    cr_split *s = NULL;
    CHECK_OK(cr_split_load(&s, crs));
    const cr_interactions *tr = cr_split_train(s);
    int32_t music = cr_dataset_find_domain(cr_split_dataset(s), "music");
    int64_t n_music = 0;
    for (int64_t e = 0; e < tr->n_inter; e++) n_music += tr->item_domain[tr->user_items[e]] == music;
    char want[128], num[32];
    /* the printed count is the training events the model saw, with thousands separators */
    rc = cr_test_cli(&text, "train '%s' --model itemknn --neighbors 20 --shrink 1.5 --threads 2 -o '%s'", crs, knn);
    CHECK_MSG(rc == 0, "train: %s", text);
    snprintf(num, sizeof num, "%lld,%03lld", (long long)(tr->n_inter / 1000), (long long)(tr->n_inter % 1000));
    snprintf(want, sizeof want, "trained itemknn (20 neighbours per domain, shrink 1.5, all domains) on %s training events in ", num);
    CHECK_CONTAINS(text, want);
    free(text);
    cr_model *m = NULL;
    CHECK_OK(cr_model_load(&m, knn));
    CHECK_STR(cr_model_name(m), "itemknn");
    CHECK(m->dataset_crc == cr_dataset_file_crc(cr_split_dataset(s)));
    cr_model_free(m);
    /* the same model trained here on the split's training events gives the same file */
    cr_train_params p = cr_train_default_params();
    p.model = "itemknn", p.knn_neighbors = 20, p.knn_shrink = 1.5;
    CHECK_OK(cr_model_train(&m, cr_split_dataset(s), tr, &p));
    CHECK_OK(cr_model_save(m, lib));
    cr_model_free(m);
    size_t la, lb;
    char *fa = cr_test_read(knn, &la), *fb = cr_test_read(lib, &lb);
    CHECK(la == lb && !memcmp(fa, fb, la));
    free(fa), free(fb);

    rc = cr_test_cli(&text, "train '%s' --model pop --pop-by-domain --domain music -o '%s'", crs, cr_test_path("models-cli-pop.crm"));
    CHECK_MSG(rc == 0, "train: %s", text);
    snprintf(want, sizeof want, "trained pop (by domain, domain music) on %lld training events", (long long)n_music);
    if (n_music >= 1000) snprintf(want, sizeof want, "trained pop (by domain, domain music) on %lld,%03lld training events",
                                  (long long)(n_music / 1000), (long long)(n_music % 1000));
    CHECK_CONTAINS(text, want);
    free(text);
    cr_split_free(s);

    CHECK_EQ(cr_test_cli(&text, "train '%s' --model itemnkn -o x.crm", crs), 2);
    CHECK_CONTAINS(text, "unknown model 'itemnkn' (did you mean itemknn?); models: pop, itemknn");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "train '%s' --model pop --domain musc -o x.crm", crs), 2);
    CHECK_CONTAINS(text, "--domain 'musc' is not a domain of the dataset (did you mean music?)");
    CHECK_CONTAINS(text, "music");
    CHECK_CONTAINS(text, "books");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "train '%s' --model itemknn --neighbors 0 -o x.crm", crs), 2);
    free(text);
    CHECK_EQ(cr_test_cli(&text, "train '%s' --model pop", crs), 2);
    CHECK_CONTAINS(text, "-o model.crm");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "train '%s' --model pop -o x.crm", cr_test_path("models-absent.crs")), 1);
    CHECK_CONTAINS(text, "absent.crs");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "train --help"), 0);
    CHECK_CONTAINS(text, "--neighbors K");
    CHECK_CONTAINS(text, "(default: 100)");
    free(text);
}

/* The real dataset (../shared/data/amazon-art-office): training time is printed, not asserted. */
TEST(models_shared_amazon_itemknn) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char pi[512], pt[512];
    snprintf(pi, sizeof pi, "%s/amazon-art-office/interactions.tsv", root);
    snprintf(pt, sizeof pt, "%s/amazon-art-office/items.tsv", root);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = pi;
    ip.items[ip.n_items++] = pt;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &ip, NULL));
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(v->n_inter, 208541);
    for (int threads = 1; threads >= 0; threads--) {
        cr_train_params p = cr_train_default_params();
        p.model = "itemknn";
        p.threads = threads;
        cr_model *m = NULL;
        double t0 = cr_now();
        CHECK_OK(cr_model_train(&m, d, v, &p));
        double secs = cr_now() - t0;
        knn_view k;
        knn_view_open(&k, m, "amazon.crm");
        printf("     itemknn on amazon-art-office (%lld events, %lld items, K=100): %.3f s with %s thread%s, %lld neighbour entries\n",
               (long long)v->n_inter, (long long)v->n_items, secs, threads ? "1" : "all", threads == 1 ? "" : "s",
               (long long)k.nnz);
        CHECK(k.nnz > 0);
        cr_file_close(k.f);
        cr_model_free(m);
    }
    cr_dataset_free(d);
}

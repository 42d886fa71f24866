/* test_recommend.c — the recommender (serve.h) and the recommend / similar commands: for every dot-product model
 * the top-K index gives the same lists as scoring every item with cr_model_score; user vectors reproduce the
 * model's scores; seen items are left out; similar items are the brute-force cosine ranking (or item-kNN's
 * lists) in any domain; a model finds its dataset by its recorded path, next to itself, or by --data, and
 * refuses another dataset; the CLI writes TSV and JSON Lines and names bad input. */
#include "test.h"

#include "cdr_fixtures.h"

#include "crossrec/index.h"
#include "crossrec/serve.h"

#include <stdlib.h>

/* A model of type `name` trained on a cold-user split of d (target t), saved under tmpdir/file. "tower-user-id":
 * a tower with user embeddings. */
static void train_to_file(const cr_dataset *d, const cr_split *s, const char *name, int32_t domain, const char *file) {
    cr_train_params p = cr_train_default_params();
    p.user_id = !strcmp(name, "tower-user-id");
    p.model = p.user_id ? "tower" : name;
    p.dim = 16;
    p.epochs = 3;
    p.patience = 0;
    p.quiet = 1;
    p.valid = s;
    p.domain = domain;
    p.batch = 64;
    p.hist_len = 8;
    p.text_buckets = 1024;
    p.text_per_item = 8;
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
    CHECK_OK(cr_model_save(m, cr_test_path(file)));
    cr_model_free(m);
}

static cr_rec *open_rec(const char *file, int use_index) {
    cr_rec_params p = cr_rec_default_params();
    p.use_index = use_index;
    cr_rec *r = NULL;
    CHECK_OK(cr_rec_open(&r, cr_test_path(file), &p));
    CHECK_EQ(cr_rec_uses_index(r), use_index);
    return r;
}

/* Every user and three ad-hoc histories, for every domain, with and without seen items: both recommenders give
 * the same items and n_found, and scores equal up to the summation order. Returns the lists compared. */
static int64_t compare_paths(const cr_rec *a, const cr_rec *b, int64_t k) {
    const cr_interactions *I = cr_dataset_inter(cr_rec_dataset(a));
    const int64_t n = I->n_users + 3;
    cr_rec_query *q = calloc((size_t)n, sizeof *q);
    int32_t hist[3][4] = {{0, 5, 9, 2}, {7}, {3, 3, 1, 4}};
    int64_t hlen[3] = {4, 1, 4};
    for (int64_t u = 0; u < I->n_users; u++) q[u].user = (int32_t)u;
    for (int j = 0; j < 3; j++) q[I->n_users + j] = (cr_rec_query){.user = -1, .history = hist[j], .n_history = hlen[j]};
    int32_t *ia = malloc((size_t)(n * k) * sizeof *ia), *ib = malloc((size_t)(n * k) * sizeof *ib);
    float *sa = malloc((size_t)(n * k) * sizeof *sa), *sb = malloc((size_t)(n * k) * sizeof *sb);
    int64_t *fa = malloc((size_t)n * sizeof *fa), *fb = malloc((size_t)n * sizeof *fb), lists = 0;
    for (int32_t t = 0; t < I->n_domains; t++)
        for (int ex = 0; ex < 2; ex++) {
            cr_rec_options o = cr_rec_default_options();
            o.domain = t, o.k = k, o.exclude_seen = ex;
            CHECK_OK(cr_rec_recommend(a, q, n, &o, ia, sa, fa));
            CHECK_OK(cr_rec_recommend(b, q, n, &o, ib, sb, fb));
            for (int64_t j = 0; j < n; j++) {
                CHECK_MSG(fa[j] == fb[j], "%s domain %d query %lld: %lld vs %lld found", cr_model_name(cr_rec_model(a)), t,
                          (long long)j, (long long)fa[j], (long long)fb[j]);
                for (int64_t x = 0; x < fa[j]; x++) {
                    int64_t at = j * k + x;
                    /* two items whose scores differ only by rounding may come out in either order (the paths sum
                       in different orders): then the item is in the other list with its score, or both are last */
                    int same = ia[at] == ib[at];
                    for (int64_t y = 0; y < fa[j] && !same; y++)
                        same = ib[j * k + y] == ia[at] && fabs(sb[j * k + y] - sa[at]) <= 1e-6 * (1 + fabs(sa[at]));
                    same = same || (x == fa[j] - 1 && fabs(sb[at] - sa[at]) <= 1e-6 * (1 + fabs(sa[at])));
                    CHECK_MSG(same, "%s domain %d query %lld rank %lld: item %d vs %d (%.9g vs %.9g)",
                              cr_model_name(cr_rec_model(a)), t, (long long)j, (long long)x, ia[at], ib[at], sa[at], sb[at]);
                    CHECK_NEAR(sa[at], sb[at], 1e-5 * (1 + fabs(sb[at])));
                    CHECK_EQ(I->item_domain[ia[at]], t);
                }
                for (int64_t x = fa[j] < 0 ? 0 : fa[j]; x < k; x++) CHECK(ia[j * k + x] == -1 && isnan(sa[j * k + x]));
                lists += fa[j] > 0;
            }
        }
    free(q), free(ia), free(ib), free(sa), free(sb), free(fa), free(fb);
    return lists;
}

TEST(rec_index_path_equals_score_path) {
    cr_dataset *d = cr_test_cdr_data("rec-paths", 160, 120, 3000, 3, 5);
    int32_t target = cr_test_thinnest_domain(d);
    cr_split *s = cr_test_cold_split(d, target, 0.3);
    const char *models[] = {"bpr", "als", "cmf", "emcdr", "ptupcdr", "tower", "tower-user-id"};
    for (int k = 0; k < 7; k++) {
        char file[64];
        snprintf(file, sizeof file, "paths-%s.crm", models[k]);
        train_to_file(d, s, models[k], -1, file);
        cr_rec *by_index = open_rec(file, 1), *by_score = open_rec(file, 0);
        int64_t lists = compare_paths(by_index, by_score, 7);
        printf("     %s: %lld lists identical through the index and through cr_model_score\n", models[k], (long long)lists);
        CHECK(lists > 0);
        cr_rec_free(by_index);
        cr_rec_free(by_score);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

/* The vector form of every dot-product model reproduces its scores, and the models without one say so. */
TEST(rec_user_vectors_reproduce_scores) {
    cr_dataset *d = cr_test_cdr_data("rec-vectors", 120, 80, 2000, 2, 6);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.3);
    const char *models[] = {"bpr", "als", "emcdr", "tower", "tower-user-id", "pop"};
    for (int k = 0; k < 6; k++) {
        train_to_file(d, s, models[k], -1, "vectors.crm");
        cr_model *m = NULL;
        CHECK_OK(cr_model_load(&m, cr_test_path("vectors.crm")));
        int64_t dim;
        const float *Y = cr_model_item_vectors(m, &dim);
        int32_t users[3] = {0, 1, -1}, hist[2] = {3, 4}, cand[80];
        int64_t hist_ptr[4] = {0, 0, 0, 2};
        for (int c = 0; c < 80; c++) cand[c] = c;
        cr_score_request q = {.n_rows = 3, .users = users, .hist_ptr = hist_ptr, .hist_items = hist, .domain = 0, .n_cand = 80, .cand = cand};
        float vecs[3 * 64], scores[3 * 80];
        uint8_t can[3], can_s[3];
        if (!strcmp(models[k], "pop")) {
            CHECK(Y == NULL && dim == 0);
            CHECK_STATUS(cr_model_user_vectors(m, &q, vecs, can), CR_ERR_ARG);
            CHECK_CONTAINS(cr_errmsg(), "pop scores without user and item vectors");
            cr_model_free(m);
            continue;
        }
        CHECK(Y != NULL && dim == 16);
        CHECK_OK(cr_model_user_vectors(m, &q, vecs, can));
        CHECK_OK(cr_model_score(m, &q, scores, can_s));
        for (int r = 0; r < 3; r++) {
            CHECK_EQ(can[r], can_s[r]);
            for (int c = 0; c < 80 && can[r]; c++) {
                double dot = 0;
                for (int64_t j = 0; j < dim; j++) dot += (double)vecs[r * dim + j] * Y[c * dim + j];
                CHECK_NEAR(scores[r * 80 + c], dot, 1e-5 * (1 + fabs(dot)));
            }
        }
        /* als folds a history in and tower reads it; bpr and emcdr cannot represent a user given by history only */
        CHECK_EQ(can[2], !strcmp(models[k], "als") || !strncmp(models[k], "tower", 5));
        cr_model_free(m);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

/* exclude_seen leaves out exactly the history's items; without it they may come back. */
TEST(rec_exclude_seen) {
    cr_dataset *d = cr_test_cdr_data("rec-seen", 100, 60, 2500, 2, 7);
    cr_split *s = cr_test_cold_split(d, 0, 0.3);
    const cr_interactions *I = cr_dataset_inter(d);
    train_to_file(d, s, "itemknn", -1, "seen-knn.crm");
    train_to_file(d, s, "bpr", -1, "seen-bpr.crm");
    const char *files[2] = {"seen-knn.crm", "seen-bpr.crm"};
    for (int f = 0; f < 2; f++) {
        cr_rec *r = open_rec(files[f], f == 1);
        int64_t came_back = 0;
        for (int32_t u = 0; u < I->n_users; u++) {
            cr_rec_query q = {.user = u};
            cr_rec_options o = cr_rec_default_options();
            o.domain = 0, o.k = 40;
            int32_t items[40];
            float scores[40];
            int64_t n;
            for (int ex = 0; ex < 2; ex++) {
                o.exclude_seen = ex;
                CHECK_OK(cr_rec_recommend(r, &q, 1, &o, items, scores, &n));
                for (int64_t x = 0; x < n; x++) {
                    int seen = 0;
                    for (int64_t e = I->user_ptr[u]; e < I->user_ptr[u + 1]; e++) seen |= I->user_items[e] == items[x];
                    CHECK_MSG(!(ex && seen), "user %d: seen item %d recommended", u, items[x]);
                    came_back += !ex && seen;
                }
            }
        }
        CHECK(came_back > 0);
        cr_rec_free(r);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Similar items: the brute-force cosine ranking of the item vectors, in the asked domain, without the item. */
TEST(rec_similar_cosine_and_neighbours) {
    cr_dataset *d = cr_test_cdr_data("rec-similar", 150, 90, 3000, 3, 8);
    cr_split *s = cr_test_cold_split(d, 1, 0.3);
    const cr_interactions *I = cr_dataset_inter(d);
    train_to_file(d, s, "bpr", -1, "sim-bpr.crm");
    cr_rec *r = open_rec("sim-bpr.crm", 1);
    CHECK_STR(cr_rec_similar_method(r), "cosine");
    int64_t dim;
    const float *Y = cr_model_item_vectors(cr_rec_model(r), &dim);
    for (int32_t item = 0; item < 90; item += 11)
        for (int32_t t = -1; t < 3; t++) {
            int32_t items[5];
            float scores[5];
            int64_t n;
            CHECK_OK(cr_rec_similar(r, item, t, 5, items, scores, &n));
            /* reference: cosine in double, best first, ties by index */
            double best[5] = {-2, -2, -2, -2, -2};
            int32_t best_i[5] = {-1, -1, -1, -1, -1};
            const float *x = Y + item * dim;
            for (int32_t j = 0; j < 90; j++) {
                if (j == item || (t >= 0 && I->item_domain[j] != t)) continue;
                double xy = 0, xx = 0, yy = 0;
                for (int64_t c = 0; c < dim; c++) xy += (double)x[c] * Y[j * dim + c], xx += (double)x[c] * x[c], yy += (double)Y[j * dim + c] * Y[j * dim + c];
                double cs = xy / sqrt(xx * yy);
                for (int p = 0; p < 5; p++)
                    if (cs > best[p]) {
                        memmove(best + p + 1, best + p, (size_t)(4 - p) * sizeof *best);
                        memmove(best_i + p + 1, best_i + p, (size_t)(4 - p) * sizeof *best_i);
                        best[p] = cs, best_i[p] = j;
                        break;
                    }
            }
            CHECK_EQ(n, 5);
            for (int p = 0; p < 5; p++) {
                CHECK_EQ(items[p], best_i[p]);
                CHECK_NEAR(scores[p], best[p], 1e-5);
            }
        }
    cr_rec_free(r);

    /* item-kNN: its own list, cut to the domain */
    train_to_file(d, s, "itemknn", -1, "sim-knn.crm");
    r = open_rec("sim-knn.crm", 0);
    CHECK_STR(cr_rec_similar_method(r), "neighbors");
    const int32_t *nb;
    const float *sim;
    int64_t len = cr_model_item_neighbors(cr_rec_model(r), 4, &nb, &sim), checked = 0;
    for (int32_t t = 0; t < 3; t++) {
        int32_t items[200];
        float scores[200];
        int64_t n;
        CHECK_OK(cr_rec_similar(r, 4, t, 200, items, scores, &n));
        int64_t x = 0;
        for (int64_t e = 0; e < len; e++)
            if (I->item_domain[nb[e]] == t) {
                CHECK(x < n && items[x] == nb[e] && scores[x] == sim[e]);
                x++;
            }
        CHECK_EQ(n, x);
        checked += n;
    }
    CHECK(checked > 0);
    cr_rec_free(r);

    /* pop has neither; emcdr has no vector for items outside its target */
    train_to_file(d, s, "pop", -1, "sim-pop.crm");
    r = open_rec("sim-pop.crm", 0);
    int32_t items[3];
    float scores[3];
    int64_t n;
    CHECK(cr_rec_similar_method(r) == NULL);
    CHECK_STATUS(cr_rec_similar(r, 0, -1, 3, items, scores, &n), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "pop model has neither item vectors nor neighbour lists");
    cr_rec_free(r);
    train_to_file(d, s, "emcdr", -1, "sim-emcdr.crm");
    r = open_rec("sim-emcdr.crm", 1);
    int32_t outside = 0;
    while (I->item_domain[outside] == 1) outside++;
    CHECK_STATUS(cr_rec_similar(r, outside, -1, 3, items, scores, &n), CR_ERR_NOTFOUND);
    CHECK_CONTAINS(cr_errmsg(), "has no vector in this emcdr model");
    cr_rec_free(r);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* A bpr model trained on one domain cannot represent a user without events there: n_found -1, no items. */
TEST(rec_unrepresented_users) {
    cr_dataset *d = cr_test_cdr_data("rec-cold", 150, 90, 2500, 2, 9);
    cr_split *s = cr_test_cold_split(d, 1, 0.3);
    train_to_file(d, s, "bpr", 1, "cold-bpr.crm");
    cr_rec *r = open_rec("cold-bpr.crm", 1);
    const cr_ground_truth *g = cr_split_truth(s, CR_PART_TEST);
    cr_rec_query q[2] = {{.user = g->users[0]}, {.user = -1}};
    cr_rec_options o = cr_rec_default_options();
    o.domain = 1, o.k = 4;
    int32_t items[8];
    float scores[8];
    int64_t n[2];
    CHECK_OK(cr_rec_recommend(r, q, 2, &o, items, scores, n));
    CHECK_EQ(n[0], -1);
    CHECK_EQ(n[1], -1);
    for (int x = 0; x < 8; x++) CHECK(items[x] == -1 && isnan(scores[x]));
    /* bad queries and options */
    o.k = 0;
    CHECK_STATUS(cr_rec_recommend(r, q, 1, &o, items, scores, n), CR_ERR_ARG);
    o.k = CR_INDEX_MAX_K + 1;
    CHECK_STATUS(cr_rec_recommend(r, q, 1, &o, items, scores, n), CR_ERR_ARG);
    o.k = 4, o.domain = 2;
    CHECK_STATUS(cr_rec_recommend(r, q, 1, &o, items, scores, n), CR_ERR_ARG);
    o.domain = 0;
    int32_t bad_item = 90;
    cr_rec_query bad[2] = {{.user = 150}, {.user = -1, .history = &bad_item, .n_history = 1}};
    CHECK_STATUS(cr_rec_recommend(r, bad, 1, &o, items, scores, n), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "query 0 has user 150, outside -1..149");
    CHECK_STATUS(cr_rec_recommend(r, bad + 1, 1, &o, items, scores, n), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "history item 90, outside 0..89");
    cr_rec_free(r);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* The dataset: the recorded path, else the model's folder, else --data; another dataset is refused. */
TEST(rec_finds_its_dataset) {
    cr_dataset *d = cr_test_cdr_data("rec-data", 80, 50, 1200, 2, 10);
    cr_split *s = cr_test_cold_split(d, 0, 0.3);
    train_to_file(d, s, "pop", -1, "rec-data/pop.crm");
    cr_rec_params p = cr_rec_default_params();
    cr_rec *r = NULL;
    CHECK_OK(cr_rec_open(&r, cr_test_path("rec-data/pop.crm"), &p));
    cr_rec_free(r);
    /* moved together to another folder: found next to the model */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mv '%s'/dataset.crd '%s'/pop.crm '%s'/", cr_test_path("moved"), cr_test_path("rec-data"),
             cr_test_path("rec-data"), cr_test_path("moved"));
    CHECK_EQ(system(cmd), 0);
    CHECK_OK(cr_rec_open(&r, cr_test_path("moved/pop.crm"), &p));
    cr_rec_free(r);
    /* the model alone: not found, with a hint; --data finds it */
    snprintf(cmd, sizeof cmd, "mv '%s' '%s'", cr_test_path("moved/dataset.crd"), cr_test_path("elsewhere.crd"));
    CHECK_EQ(system(cmd), 0);
    CHECK_STATUS(cr_rec_open(&r, cr_test_path("moved/pop.crm"), &p), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "pop.crm: cannot load its dataset");
    CHECK_CONTAINS(cr_errhint(), "--data");
    p.data_path = cr_test_path("elsewhere.crd");
    CHECK_OK(cr_rec_open(&r, cr_test_path("moved/pop.crm"), &p));
    cr_rec_free(r);
    /* another dataset */
    cr_dataset *other = cr_test_cdr_data("rec-other", 80, 50, 1200, 2, 11);
    p.data_path = cr_dataset_path(other);
    CHECK_STATUS(cr_rec_open(&r, cr_test_path("moved/pop.crm"), &p), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "was trained on another dataset");
    CHECK(r == NULL);
    cr_dataset_free(other);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- the commands -------------------------------------------------------------------------------------- */

/* tmpdir/cli-rec: a synthetic dataset, a cold-user split on music, a bpr and an itemknn model. */
static void cli_fixture(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", cr_test_path("cli-rec"));
    const char *steps[] = {"synth -o '%s' --users 120 --items 80 --interactions 2000 --domains 3 --seed 3",
                           "import '%s' -o '%s/d.crd' -q", "split '%s/d.crd' --protocol cold-user --target music -o '%s/s.crs' -q",
                           "train '%s/s.crs' --model bpr --epochs 2 --dim 8 -o '%s/bpr.crm' -q",
                           "train '%s/s.crs' --model itemknn -o '%s/knn.crm' -q"};
    for (int k = 0; k < 5; k++) {
        char *out;
        int rc = cr_test_cli(&out, steps[k], dir, dir);
        CHECK_MSG(rc == 0, "fixture step %d: %s", k, out);
        free(out);
    }
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

TEST(cli_recommend_outputs) {
    cli_fixture();
    char dir[512];  /* a copy: cr_test_path's buffers rotate */
    snprintf(dir, sizeof dir, "%s", cr_test_path("cli-rec"));
    char *out;
    /* one user: header + k rows, ranks 1..k, every item of the domain */
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user u000001 --domain music -k 4", dir), 0);
    CHECK_EQ(count_lines(out), 5);
    CHECK(!strncmp(out, "user\trank\titem\tscore\tdomain\nu000001\t1\ti", 33));
    CHECK_CONTAINS(out, "\tmusic\n");
    CHECK(!strstr(out, "\tbooks\n") && !strstr(out, "\tmovies\n"));
    free(out);
    /* a users file, to a file: k rows per user */
    cr_test_write("cli-rec/users.tsv", "user\tnote\nu000001\ta\nu000002\tb\nu000003\tc\n", -1);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/knn.crm' --users '%s/users.tsv' --domain books -k 3 -o '%s/out.tsv'", dir, dir, dir), 0);
    free(out);
    char *file = cr_test_read(cr_test_path("cli-rec/out.tsv"), NULL);
    CHECK(file && count_lines(file) == 10);
    CHECK_CONTAINS(file, "\nu000003\t3\t");
    free(file);
    CHECK(!cr_test_file_exists(cr_test_path("cli-rec/out.tsv.tmp")));
    /* a history, JSON Lines with titles */
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/knn.crm' --history 'i000001 i000002,i000003' --domain movies -k 2 --format jsonl", dir), 0);
    CHECK_EQ(count_lines(out), 1);
    CHECK(!strncmp(out, "{\"user\":null,\"domain\":\"movies\",\"items\":[{\"item\":\"i", 50));
    CHECK_CONTAINS(out, "\"title\":\"");
    free(out);
    /* similar, across domains */
    CHECK_EQ(cr_test_cli(&out, "similar '%s/bpr.crm' --item i000001 --domain movies -k 3", dir), 0);
    CHECK_EQ(count_lines(out), 4);
    CHECK(!strncmp(out, "item\tdomain\tscore\ttitle\ni", 25));
    CHECK_CONTAINS(out, "\tmovies\t");
    free(out);
}

TEST(cli_recommend_errors) {
    cli_fixture();
    char dir[512];  /* a copy: cr_test_path's buffers rotate */
    snprintf(dir, sizeof dir, "%s", cr_test_path("cli-rec"));
    char *out;
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user nobody --domain music", dir), 1);
    CHECK_CONTAINS(out, "crossrec: error: user 'nobody' is not in the dataset");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user u000001 --domain jazz", dir), 1);
    CHECK_CONTAINS(out, "unknown domain 'jazz' (domains: music, books, movies)");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --history 'i000001 nothing' --domain music", dir), 1);
    CHECK_CONTAINS(out, "--history: item 'nothing' is not in the dataset");
    free(out);
    cr_test_write("cli-rec/bad-users.tsv", "user\nu000001\nstranger\n", -1);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --users '%s/bad-users.tsv' --domain music -o '%s/x.tsv'", dir, dir, dir), 1);
    CHECK_CONTAINS(out, "bad-users.tsv:3: user 'stranger' is not in the dataset");
    CHECK(!cr_test_file_exists(cr_test_path("cli-rec/x.tsv")) && !cr_test_file_exists(cr_test_path("cli-rec/x.tsv.tmp")));
    free(out);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user u000001", dir), 2);
    CHECK_CONTAINS(out, "give --domain T");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user u000001 --history i000001 --domain music", dir), 2);
    CHECK_CONTAINS(out, "give one of --users FILE, --user ID or --history");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user u000001 --domain music -k 1001", dir), 2);
    CHECK_CONTAINS(out, "-k must be 1..1000");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "similar '%s/bpr.crm' --item nothing", dir), 1);
    CHECK_CONTAINS(out, "item 'nothing' is not in the dataset");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "recommend '%s/bpr.crm' --user u000001 --domain music --data '%s/s.crs'", dir, dir), 1);
    CHECK_CONTAINS(out, "s.crs");
    free(out);
}

/* test_eval.c — the evaluation engine end to end: a hand-computed case through a real split and model,
 * pessimistic ties, unrepresented users, the score-consistency guard, seen-item exclusion, thread and block
 * independence, and the shared Amazon data when present. */
#include "test.h"
#include "cdr_fixtures.h"

#include "crossrec/eval.h"

#include <stdlib.h>

/* Writes TSV files, imports, saves and reloads the dataset (splits need a dataset file). */
static cr_dataset *load_dataset(const char *inter, const char *items) {
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = cr_test_write("e_inter.tsv", inter, -1);
    p.items[p.n_items++] = cr_test_write("e_items.tsv", items, -1);
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    const char *path = cr_test_path("e_data.crd");
    CHECK_OK(cr_dataset_save(d, path));
    cr_dataset_free(d);
    CHECK_OK(cr_dataset_load(&d, path));
    return d;
}

/* Domains A (a1, a2) and B (b1, b2, b3). u1 is the test user of a cold-user split on B: its B event (b2) is
 * hidden. Training counts in B: b1 = 2 (u2, u3), b2 = 1 (u4), b3 = 1 (u2). Popularity ranks b1 (2), then b2 and
 * b3 tie at 1: the negative b3 goes first, so u1's positive b2 has rank 3.
 *   recall@1 = recall@2 = 0, recall@3 = 1; ndcg@3 = 1/log2(4) = 0.5; mrr = 1/3; auc = (2 - 2) / 2 = 0. */
static const char *ITEMS = "item\tdomain\ttitle\ttext\na1\tA\tred pen\t\na2\tA\tblue ink\t\n"
                           "b1\tB\tred paper\t\nb2\tB\tgreen card\t\nb3\tB\tblue card\t\n";
static const char *INTER = "user\titem\ttimestamp\tvalue\n"
                           "u1\ta1\t1\t1\nu1\tb2\t2\t1\n"
                           "u2\ta1\t1\t1\nu2\tb1\t2\t1\nu2\tb3\t3\t1\n"
                           "u3\ta2\t1\t1\nu3\tb1\t2\t1\n"
                           "u4\ta2\t1\t1\nu4\tb2\t2\t1\n"
                           "u5\ta1\t3\t1\n";

static cr_split *cold_split(cr_dataset *d, const char *users_tsv) {
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = "B";
    sp.users_file = cr_test_write("e_users.tsv", users_tsv, -1);
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    return s;
}

TEST(eval_hand_computed_pessimistic_ties) {
    cr_dataset *d = load_dataset(INTER, ITEMS);
    /* u5 is held out too but has no B event: no ground truth, skipped and counted */
    cr_split *s = cold_split(d, "user\tsplit\nu1\ttest\nu5\ttest\n");
    cr_model *m = NULL;
    cr_train_params tp = cr_train_default_params();
    tp.model = "pop";
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &tp));
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 1, ep.ks[1] = 2, ep.ks[2] = 3;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    CHECK_EQ(r->n_users, 1);
    CHECK_EQ(r->n_no_truth, 1);
    CHECK_NEAR(r->mean.recall[0], 0, 0);
    CHECK_NEAR(r->mean.recall[1], 0, 0);
    CHECK_NEAR(r->mean.recall[2], 1, 0);
    CHECK_NEAR(r->mean.ndcg[2], 0.5, 1e-12);
    CHECK_NEAR(r->mean.mrr, 1.0 / 3.0, 1e-12);
    CHECK_NEAR(r->mean.auc, 0, 1e-12);
    CHECK_NEAR(r->mean.precision[2], 1.0 / 3.0, 1e-12);
    /* u1's list is b1, b3, b2: coverage@1 = 1/3 of B's items; @3 all three */
    CHECK_NEAR(r->coverage[0], 1.0 / 3.0, 1e-12);
    CHECK_NEAR(r->coverage[2], 1.0, 1e-12);
    CHECK_EQ(r->user_group_n[0], 1);   /* cold in target */
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* A model for the checks below: scores = item index (so rankings are known); rows of odd users cannot be
 * represented; `calls` (n_users x n_items) counts how often each pair was scored. */
typedef struct {
    cr_model base;
    int seen_first;     /* score items the user has in its history highest */
    int32_t *calls;
} probe_model;

static cr_status probe_score(const cr_model *m, const cr_score_request *req, float *scores, uint8_t *can) {
    const probe_model *pm = (const probe_model *)m;
    for (int64_t r = 0; r < req->n_rows; r++) {
        can[r] = req->users[r] % 2 == 0;
        for (int64_t c = 0; c < req->n_cand; c++) {
            float s = (float)req->cand[c];
            if (pm->calls) __atomic_fetch_add(&pm->calls[req->users[r] * pm->base.n_items + req->cand[c]], 1, __ATOMIC_RELAXED);
            if (pm->seen_first)
                for (int64_t e = req->hist_ptr[r]; e < req->hist_ptr[r + 1]; e++)
                    if (req->hist_items[e] == req->cand[c]) s += 1000;
            scores[r * req->n_cand + c] = s;
        }
    }
    return CR_OK;
}

static void probe_free(cr_model *m) { (void)m; }
static const cr_model_ops probe_ops = {.name = "probe", .score = probe_score, .save = NULL, .free = probe_free};

static probe_model make_probe(const cr_dataset *d) {
    const cr_interactions *v = cr_dataset_inter(d);
    probe_model pm = {.base = {&probe_ops, v->n_users, v->n_items, v->n_domains, 0, NULL}};
    return pm;
}

static cr_dataset *synth_dataset(const char *name, int64_t users, int64_t items, int64_t inter, int domains) {
    return cr_test_cdr_data(name, users, items, inter, domains, cr_synth_default_params().seed);
}

static cr_split *warm_split(cr_dataset *d) {
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_WARM;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    return s;
}

/* Every (user, candidate) pair is scored exactly once: positives are scored with the batch's union and never
 * again, so a model whose float results depend on the request's shape (BLAS) still ranks exactly. */
TEST(eval_unrepresented_users_and_each_pair_scored_once) {
    cr_dataset *d = synth_dataset("guard", 300, 200, 4000, 2);
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = cr_dataset_domain_name(d, 1);
    sp.beta = 0.5;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    probe_model pm = make_probe(d);
    const cr_interactions *v = cr_dataset_inter(d);
    pm.calls = calloc((size_t)(v->n_users * v->n_items), sizeof *pm.calls);
    cr_eval_params ep = cr_eval_default_params();
    ep.block_items = 13;
    ep.threads = 2;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &r));
    const cr_ground_truth *gt = cr_split_truth(s, CR_PART_TEST);
    int64_t n_cand;
    const int32_t *cand = cr_split_candidates(s, &n_cand);
    for (int64_t k = 0; k < gt->n_users; k++) {
        int64_t total = 0;
        for (int64_t c = 0; c < n_cand; c++) CHECK_EQ(pm.calls[gt->users[k] * v->n_items + cand[c]], 1);
        for (int64_t i = 0; i < v->n_items; i++) total += pm.calls[gt->users[k] * v->n_items + i];
        CHECK_EQ(total, n_cand);
    }
    free(pm.calls);
    int64_t odd = 0;
    for (int64_t k = 0; k < gt->n_users; k++) odd += gt->users[k] % 2;
    CHECK(odd > 0);
    CHECK_EQ(r->n_unrepresented, odd);
    for (int64_t k = 0; k < r->n_users; k++)
        if (r->users[k] % 2) CHECK(r->per_user[k].recall[2] == 0 && r->per_user[k].mrr == 0);
    cr_eval_result_free(r);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Every allocation of an evaluation can fail: the result is CR_ERR_NOMEM with a message, never a report with a
 * metric left NaN (the Gini's sorted copy failed silently before). */
TEST(eval_alloc_failures_are_reported) {
    cr_dataset *d = synth_dataset("evalfault", 120, 60, 1500, 2);
    cr_split *s = cr_test_cold_split(d, 1, 0.4);
    probe_model pm = make_probe(d);
    cr_eval_params ep = cr_eval_default_params();
    ep.threads = 1;
    int64_t n;
    for (n = 1; n < 100000; n++) {
        cr_eval_result *r = NULL;
        cr_alloc_fail_nth(n);
        cr_status st = cr_evaluate(s, &pm.base, &ep, &r);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            for (int q = 0; q < r->n_k; q++) CHECK(!isnan(r->gini[q]));
            cr_eval_result_free(r);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM && r == NULL && cr_errmsg()[0], "failing allocation %lld gave %s: %s", (long long)n,
                  cr_status_str(st), cr_errmsg());
    }
    CHECK(n > 10);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(eval_seen_items_excluded_unless_keep_seen) {
    cr_dataset *d = synth_dataset("seen", 200, 100, 3000, 1);
    cr_split *s = warm_split(d);
    probe_model pm = make_probe(d);
    pm.seen_first = 1;
    cr_eval_params ep = cr_eval_default_params();
    cr_eval_result *a = NULL, *b = NULL;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &a));
    ep.keep_seen = 1;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &b));
    /* with seen items kept, they crowd the top of the list: recall@10 can only drop */
    CHECK(b->mean.recall[0] < a->mean.recall[0]);
    cr_eval_result_free(a);
    cr_eval_result_free(b);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(eval_identical_across_threads_and_blocks) {
    cr_dataset *d = synth_dataset("threads", 600, 400, 12000, 3);
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = cr_dataset_domain_name(d, 0);
    sp.sampled = 20;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    cr_train_params tp = cr_train_default_params();
    tp.model = "itemknn";
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &tp));
    cr_eval_params ep = cr_eval_default_params();
    cr_eval_result *r[3];
    ep.threads = 1;
    CHECK_OK(cr_evaluate(s, m, &ep, &r[0]));
    ep.threads = 2;
    CHECK_OK(cr_evaluate(s, m, &ep, &r[1]));
    ep.block_items = 7;   /* odd block size: many partial blocks */
    CHECK_OK(cr_evaluate(s, m, &ep, &r[2]));
    for (int k = 1; k < 3; k++) {
        CHECK_EQ(r[k]->n_users, r[0]->n_users);
        CHECK(!memcmp(r[k]->per_user, r[0]->per_user, (size_t)r[0]->n_users * sizeof *r[0]->per_user));
        CHECK(!memcmp(&r[k]->mean, &r[0]->mean, sizeof r[0]->mean));
        CHECK(!memcmp(r[k]->coverage, r[0]->coverage, sizeof r[0]->coverage));
        CHECK(!memcmp(r[k]->gini, r[0]->gini, sizeof r[0]->gini));
        CHECK(!memcmp(&r[k]->sampled, &r[0]->sampled, sizeof r[0]->sampled));
    }
    CHECK(r[0]->sampled_pairs > 0);
    CHECK(r[0]->mean.recall[2] > 0);   /* co-occurrence carries signal on synthetic data */
    for (int k = 0; k < 3; k++) cr_eval_result_free(r[k]);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* The acceptance run: the upstream cold-user partition of Amazon Arts -> Office. */
TEST(eval_shared_amazon_cold_user_office) {
    cr_dataset *d = NULL;
    cr_split *s = NULL;
    cr_test_amazon_cold_split("office", "aao.crd", &d, &s);
    const char *names[2] = {"pop", "itemknn"};
    for (int k = 0; k < 2; k++) {
        cr_train_params tp = cr_train_default_params();
        tp.model = names[k];
        cr_model *m = NULL;
        CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &tp));
        cr_eval_params ep = cr_eval_default_params();
        ep.ks[0] = 10, ep.ks[1] = 50, ep.n_k = 2;
        cr_eval_result *r = NULL;
        CHECK_OK(cr_evaluate(s, m, &ep, &r));
        CHECK_EQ(r->n_users, 1000);
        printf("     %-8s recall@10 %.4f ndcg@10 %.4f hr@10 %.4f | recall@50 %.4f ndcg@50 %.4f hr@50 %.4f (%.2f s)\n", names[k],
               r->mean.recall[0], r->mean.ndcg[0], r->mean.hr[0], r->mean.recall[1], r->mean.ndcg[1], r->mean.hr[1], r->seconds);
        cr_eval_result_free(r);
        cr_model_free(m);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Validation during training ranks a fixed, evenly spaced subset of the users. */
TEST(eval_max_users_subset) {
    cr_dataset *d = synth_dataset("subset", 300, 120, 4000, 1);
    cr_split *s = warm_split(d);
    probe_model pm = make_probe(d);
    cr_eval_params ep = cr_eval_default_params();
    cr_eval_result *all = NULL, *sub = NULL;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &all));
    ep.max_users = 10;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &sub));
    CHECK_EQ(sub->n_users, 10);
    for (int64_t k = 0; k < 10; k++) {
        int64_t at = (int64_t)((double)k * (double)all->n_users / 10.0);
        CHECK_EQ(sub->users[k], all->users[at]);
        CHECK(!memcmp(&sub->per_user[k], &all->per_user[at], sizeof sub->per_user[k]));
    }
    ep.max_users = all->n_users + 5;   /* more than there are: everyone */
    cr_eval_result *same = NULL;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &same));
    CHECK_EQ(same->n_users, all->n_users);
    cr_eval_result_free(all);
    cr_eval_result_free(sub);
    cr_eval_result_free(same);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Curves for every K: the hand-computed case above ranks u1's only positive third. */
TEST(eval_curves_hand_computed) {
    cr_dataset *d = load_dataset(INTER, ITEMS);
    cr_split *s = cold_split(d, "user\tsplit\nu1\ttest\n");
    cr_model *m = NULL;
    cr_train_params tp = cr_train_default_params();
    tp.model = "pop";
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &tp));
    cr_eval_params ep = cr_eval_default_params();
    ep.curve_k = 5;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    const double recall[5] = {0, 0, 1, 1, 1}, ndcg[5] = {0, 0, 0.5, 0.5, 0.5};
    CHECK_EQ(r->curve_k, 5);
    for (int k = 0; k < 5; k++) {
        CHECK_NEAR(r->curve_recall[k], recall[k], 1e-15);
        CHECK_NEAR(r->curve_ndcg[k], ndcg[k], 1e-15);
    }
    cr_eval_result_free(r);
    ep.curve_k = CR_MAX_CURVE_K + 1;
    CHECK_STATUS(cr_evaluate(s, m, &ep, &r), CR_ERR_ARG);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

typedef struct {
    int64_t calls, last, total, decreased;
} progress_log;

static void log_progress(void *user, int64_t done, int64_t total) {
    progress_log *l = user;
    l->decreased |= done < l->last;
    l->calls++, l->last = done, l->total = total;
}

/* The curves agree with the cut-off metrics where both exist and do not depend on the thread count; progress
 * reaches every user. */
TEST(eval_curves_match_cutoffs_and_threads) {
    cr_dataset *d = synth_dataset("curves", 600, 300, 9000, 3);
    cr_split *s = cr_test_cold_split(d, 1, 0.3);
    cr_train_params tp = cr_train_default_params();
    tp.model = "itemknn";
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &tp));
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 1, ep.ks[1] = 7, ep.ks[2] = 40;
    ep.curve_k = 60;
    progress_log log = {0};
    ep.progress = (cr_progress){log_progress, &log};
    cr_eval_result *r[2];
    ep.threads = 1;
    CHECK_OK(cr_evaluate(s, m, &ep, &r[0]));
    CHECK(log.calls >= 2 && !log.decreased);
    CHECK_EQ(log.last, r[0]->n_users);
    CHECK_EQ(log.total, r[0]->n_users);
    ep.threads = 2;
    log = (progress_log){0};
    CHECK_OK(cr_evaluate(s, m, &ep, &r[1]));
    CHECK(!log.decreased);
    CHECK_EQ(log.last, r[1]->n_users);
    for (int q = 0; q < 3; q++) {
        CHECK_NEAR(r[0]->curve_recall[ep.ks[q] - 1], r[0]->mean.recall[q], 1e-12);
        CHECK_NEAR(r[0]->curve_ndcg[ep.ks[q] - 1], r[0]->mean.ndcg[q], 1e-12);
    }
    CHECK(!memcmp(r[0]->curve_recall, r[1]->curve_recall, 60 * sizeof(double)));
    CHECK(!memcmp(r[0]->curve_ndcg, r[1]->curve_ndcg, 60 * sizeof(double)));
    for (int k = 1; k < 60; k++) CHECK(r[0]->curve_recall[k] >= r[0]->curve_recall[k - 1]);
    CHECK(r[0]->curve_recall[59] > r[0]->curve_recall[0]);
    for (int k = 0; k < 2; k++) cr_eval_result_free(r[k]);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Recall by the domain of the ground-truth items on a warm split over all domains, against a brute force: the
 * probe scores items by index, so a positive's rank is 1 + the unseen candidates of higher index; odd users
 * cannot be represented and miss everything. */
TEST(eval_recall_by_domain_brute_force) {
    cr_dataset *d = synth_dataset("bydomain", 300, 160, 5000, 3);
    cr_split *s = warm_split(d);
    probe_model pm = make_probe(d);
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 5, ep.ks[1] = 30, ep.n_k = 2;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &r));
    const cr_interactions *v = cr_dataset_inter(d), *t = cr_split_train(s);
    const cr_ground_truth *gt = cr_split_truth(s, CR_PART_TEST);
    int64_t gt_n[3] = {0}, hits[3][2] = {{0}};
    uint8_t *seen = calloc((size_t)v->n_items, 1);
    for (int64_t k = 0; k < gt->n_users; k++) {
        int32_t u = gt->users[k];
        memset(seen, 0, (size_t)v->n_items);
        for (int64_t e = t->user_ptr[u]; e < t->user_ptr[u + 1]; e++) seen[t->user_items[e]] = 1;
        for (int64_t g = gt->gt_ptr[k]; g < gt->gt_ptr[k + 1]; g++) {
            int32_t i = gt->gt_items[g], dom = v->item_domain[i];
            gt_n[dom]++;
            if (u % 2 || seen[i]) continue;
            int64_t rank = 1;
            for (int32_t j = i + 1; j < v->n_items; j++) rank += !seen[j];
            for (int q = 0; q < 2; q++) hits[dom][q] += rank <= ep.ks[q];
        }
    }
    free(seen);
    CHECK_EQ(r->n_domains, 3);
    int64_t total = 0;
    for (int dom = 0; dom < 3; dom++) {
        CHECK_EQ(r->domain_gt_n[dom], gt_n[dom]);
        CHECK(gt_n[dom] > 0);
        total += gt_n[dom];
        for (int q = 0; q < 2; q++) CHECK_NEAR(r->domain_recall[dom * 2 + q], (double)hits[dom][q] / (double)gt_n[dom], 1e-15);
    }
    CHECK_EQ(total, cr_split_stats_of(s)->test_pairs);
    CHECK(hits[0][1] + hits[1][1] + hits[2][1] > 0);
    cr_eval_result_free(r);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* Item groups against brute force: cold (no training event), head (the most popular 20% of the warm
 * candidates, by distinct training users), tail, and the cold ground truth ranked among the cold candidates
 * only; the probe scores an item by its index, so every rank is known. */
TEST(eval_item_groups_brute_force) {
    cr_dataset *d = synth_dataset("groups", 300, 400, 3000, 2);
    cr_split *s = warm_split(d);
    probe_model pm = make_probe(d);
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 3, ep.ks[1] = 40, ep.n_k = 2;
    ep.curve_k = 40;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, &pm.base, &ep, &r));
    /* the curves read the same full-ranking ranks as the cut-offs, not the cold-only ones */
    CHECK_NEAR(r->curve_recall[2], r->mean.recall[0], 1e-12);
    CHECK_NEAR(r->curve_recall[39], r->mean.recall[1], 1e-12);
    CHECK_NEAR(r->curve_ndcg[39], r->mean.ndcg[1], 1e-12);
    const cr_interactions *v = cr_dataset_inter(d), *t = cr_split_train(s);
    const cr_ground_truth *gt = cr_split_truth(s, CR_PART_TEST);
    int64_t n_cand;
    const int32_t *cand = cr_split_candidates(s, &n_cand);
    uint8_t *is_cand = calloc((size_t)v->n_items, 1), *seen = calloc((size_t)v->n_items, 1);
    int64_t *users = calloc((size_t)v->n_items, sizeof *users);
    for (int64_t c = 0; c < n_cand; c++) is_cand[cand[c]] = 1;
    /* distinct training users per item; head: the warm candidates with more users than all but 20% of them
       (ties by the lower index first, as the evaluation sorts) */
    for (int64_t u = 0; u < t->n_users; u++) {
        memset(seen, 0, (size_t)v->n_items);
        for (int64_t e = t->user_ptr[u]; e < t->user_ptr[u + 1]; e++)
            if (!seen[t->user_items[e]]) seen[t->user_items[e]] = 1, users[t->user_items[e]]++;
    }
    int64_t warm = 0;
    for (int64_t c = 0; c < n_cand; c++) warm += users[cand[c]] > 0;
    uint8_t *group = calloc((size_t)v->n_items, 1);     /* 0 cold, 1 head, 2 tail */
    for (int64_t c = 0; c < n_cand; c++) {
        int32_t i = cand[c];
        if (!users[i]) continue;
        int64_t before = 0;
        for (int64_t x = 0; x < n_cand; x++) {
            int32_t j = cand[x];
            before += users[j] > users[i] || (users[j] == users[i] && j < i && users[j] > 0);
        }
        group[i] = before < (warm + 4) / 5 ? 1 : 2;
    }
    int64_t gt_n[4] = {0}, hits[4][2] = {{0}};
    for (int64_t k = 0; k < gt->n_users; k++) {
        int32_t u = gt->users[k];
        memset(seen, 0, (size_t)v->n_items);
        for (int64_t e = t->user_ptr[u]; e < t->user_ptr[u + 1]; e++) seen[t->user_items[e]] = 1;
        for (int64_t g = gt->gt_ptr[k]; g < gt->gt_ptr[k + 1]; g++) {
            int32_t i = gt->gt_items[g];
            gt_n[group[i]]++;
            if (group[i] == 0) gt_n[3]++;
            if (u % 2 || seen[i] || !is_cand[i]) continue;
            /* negatives ahead of i: higher-index candidates the user has not seen and that are not its positives */
            int64_t rank = 1, rank_cold = 1;
            for (int32_t j = i + 1; j < v->n_items; j++) {
                int pos = 0;
                for (int64_t x = gt->gt_ptr[k]; x < gt->gt_ptr[k + 1]; x++) pos |= gt->gt_items[x] == j;
                if (!is_cand[j] || seen[j] || pos) continue;
                rank++;
                rank_cold += users[j] == 0;
            }
            /* positives ahead of i count too (each positive's rank is among negatives and the positives above it) */
            for (int64_t x = gt->gt_ptr[k]; x < gt->gt_ptr[k + 1]; x++) {
                int32_t j = gt->gt_items[x];
                if (j > i && is_cand[j] && !seen[j]) rank++, rank_cold += users[j] == 0;
            }
            for (int q = 0; q < 2; q++) {
                hits[group[i]][q] += rank <= ep.ks[q];
                if (group[i] == 0) hits[3][q] += rank_cold <= ep.ks[q];
            }
        }
    }
    CHECK_EQ(r->n_item_groups, 4);
    CHECK_STR(r->item_group_name[3], "cold among cold");
    CHECK(gt_n[0] > 0 && gt_n[1] > 0 && gt_n[2] > 0);
    CHECK(hits[3][1] > hits[0][1]);     /* the cold-only slate is easier: the case is not vacuous */
    for (int g = 0; g < 4; g++) {
        CHECK_EQ(r->item_group_n[g], gt_n[g]);
        for (int q = 0; q < 2; q++)
            CHECK_NEAR(r->item_group_recall[g][q], gt_n[g] ? (double)hits[g][q] / (double)gt_n[g] : 0, 1e-15);
    }
    free(is_cand), free(seen), free(users), free(group);
    cr_eval_result_free(r);
    cr_split_free(s);
    cr_dataset_free(d);
}

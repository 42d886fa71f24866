/* test_bpr.c — BPR-MF and the shared matrix-factorisation model: the per-sample gradient against central
 * differences, one SGD step against the NumPy reference (tests/golden/bpr_step.txt), learning on synthetic
 * data (beats random scoring, the loss falls), scores surviving save/load and matching dot products, byte-identical
 * fits for one seed, cold users unrepresented by a target-only model, hand-written and damaged .crm files,
 * fault injection, and the shared Amazon data when present. */
#include "test.h"
#include "cdr_fixtures.h"
#include "golden.h"

#include "crossrec/eval.h"
#include "crossrec/io.h"
#include "train/train_impl.h"

#include <stdlib.h>

/* ---- helpers ---- */

/* A synthetic dataset, imported, saved and loaded again (splits need a dataset file). */
static cr_dataset *synth_crd(const char *name, int64_t users, int64_t items, int64_t inter, int domains, uint64_t seed) {
    return cr_test_cdr_data(name, users, items, inter, domains, seed);
}

static cr_split *make_split(const cr_dataset *d, cr_protocol proto, const char *target, double beta) {
    cr_split_params sp = cr_split_default_params();
    sp.protocol = proto;
    sp.target = target;
    if (beta > 0) sp.beta = beta;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    return s;
}

static cr_train_params bpr_params(int64_t dim, int64_t epochs) {
    cr_train_params p = cr_train_default_params();
    p.model = "bpr";
    p.dim = dim;
    p.epochs = epochs;
    p.quiet = 1;
    return p;
}

static cr_model *fit(const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, train, p));
    CHECK_STR(cr_model_name(m), "bpr");
    return m;
}

static double recall_at(const cr_split *s, const cr_model *m, int k, cr_eval_result **keep) {
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = k, ep.n_k = 1;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    double v = r->mean.recall[0];
    if (keep) *keep = r;
    else cr_eval_result_free(r);
    return v;
}

/* Random scoring: a hash of (user, item), the baseline a trained model has to beat. */
static cr_status random_score(const cr_model *m, const cr_score_request *q, float *scores, uint8_t *can) {
    for (int64_t r = 0; r < q->n_rows; r++) {
        can[r] = 1;
        for (int64_t c = 0; c < q->n_cand; c++) {
            int32_t key[2] = {q->users ? q->users[r] : -1, q->cand[c]};
            scores[r * q->n_cand + c] = (float)(cr_hash32(key, sizeof key, 7) >> 8);
        }
    }
    return CR_OK;
}
static void random_free(cr_model *m) { (void)m; }
static const cr_model_ops random_ops = {.name = "random", .score = random_score, .save = NULL, .free = random_free};

/* ---- the gradient ---- */

/* L = -log sigmoid(<pu, qi - qj>) + (reg/2)(|pu|^2 + |qi|^2 + |qj|^2) in double; theta = (pu, qi, qj). */
static double loss_ref(const double *theta, int dim, double reg) {
    const double *pu = theta, *qi = theta + dim, *qj = theta + 2 * dim;
    double x = 0, n2 = 0;
    for (int k = 0; k < dim; k++) {
        x += pu[k] * (qi[k] - qj[k]);
        n2 += pu[k] * pu[k] + qi[k] * qi[k] + qj[k] * qj[k];
    }
    double softplus = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
    return softplus + 0.5 * reg * n2;
}

TEST(bpr_gradient_finite_difference) {
    enum { DIM = 8, N = 3 * DIM };
    const double reg = 0.01, h = 1e-4;
    cr_rng r;
    cr_rng_named(&r, 3, "test.bpr.grad");
    double worst = 0;
    /* scale 0.3 keeps x near 0 (sigmoid's steep part); 3 gives |x| of tens, where a naive log(sigmoid) breaks */
    const double scales[] = {0.3, 0.3, 1.0, 3.0, 3.0};
    for (int trial = 0; trial < 5; trial++) {
        float f[N], g[N];
        double theta[N];
        for (int k = 0; k < N; k++) theta[k] = f[k] = (float)(scales[trial] * cr_rng_normal(&r));
        float loss = cr_bpr_grad(f, f + DIM, f + 2 * DIM, DIM, g, g + DIM, g + 2 * DIM);
        CHECK(isfinite(loss));
        CHECK_NEAR(loss, loss_ref(theta, DIM, 0), 1e-6 * (1 + fabs(loss)));
        for (int k = 0; k < N; k++) {
            double analytic = g[k] + reg * theta[k];    /* the optimizer adds reg * param as weight decay */
            double save = theta[k];
            theta[k] = save + h;
            double lp = loss_ref(theta, DIM, reg);
            theta[k] = save - h;
            double lm = loss_ref(theta, DIM, reg);
            theta[k] = save;
            double numeric = (lp - lm) / (2 * h);
            double diff = fabs(analytic - numeric);
            if (diff > worst) worst = diff;
            CHECK_MSG(diff <= 1e-5 + 1e-4 * fabs(numeric), "trial %d, parameter %d: analytic %.9g, numeric %.9g", trial, k,
                      analytic, numeric);
        }
    }
    printf("     max |analytic - central difference| = %.3g\n", worst);
    /* gj = -gi always, and for x -> -inf the loss grows like -x without overflow */
    float pu[2] = {10, 10}, qi[2] = {-10, -10}, qj[2] = {10, 10}, gu[2], gi[2], gj[2];
    float loss = cr_bpr_grad(pu, qi, qj, 2, gu, gi, gj);
    CHECK_NEAR(loss, 400, 1e-3);
    CHECK_NEAR(gi[0], -10, 1e-6);
    CHECK_NEAR(gj[0], 10, 1e-6);
    CHECK_NEAR(gu[1], 20, 1e-6);
}

/* ---- one SGD step against NumPy ---- */

/* `key r v_1 .. v_dim` for r = 0 .. rows-1: the rows of one factor matrix, as bpr_step.py writes them. */
static void golden_rows(cr_golden *g, const char *key, int rows, int dim, double *dst) {
    for (int r = 0; r < rows; r++) {
        cr_golden_key(g, key);
        CHECK_EQ(cr_golden_num(g), r);
        for (int k = 0; k < dim; k++) dst[r * dim + k] = cr_golden_num(g);
    }
}

TEST(bpr_golden_step) {
    cr_golden gf;
    cr_golden_open(&gf, "tests/golden/bpr_step.txt");
    const double lr = cr_golden_scalar(&gf, "lr"), reg = cr_golden_scalar(&gf, "reg");
    cr_golden_key(&gf, "sample");
    const int u = (int)cr_golden_num(&gf), i = (int)cr_golden_num(&gf), j = (int)cr_golden_num(&gf);
    cr_golden_key(&gf, "dims");
    const int nu = (int)cr_golden_num(&gf), ni = (int)cr_golden_num(&gf), dim = (int)cr_golden_num(&gf);
    enum { MAXR = 8, MAXD = 8 };
    CHECK(nu > 0 && nu <= MAXR && ni > 0 && ni <= MAXR && dim > 0 && dim <= MAXD);
    CHECK(lr > 0 && reg >= 0 && u >= 0 && u < nu && i >= 0 && i < ni && j >= 0 && j < ni);
    double init_user[MAXR * MAXD], init_item[MAXR * MAXD], want_user[MAXR * MAXD], want_item[MAXR * MAXD];
    golden_rows(&gf, "init_user", nu, dim, init_user);
    golden_rows(&gf, "init_item", ni, dim, init_item);
    const double want_loss = cr_golden_scalar(&gf, "loss");
    golden_rows(&gf, "user", nu, dim, want_user);
    golden_rows(&gf, "item", ni, dim, want_item);

    cr_slab s;
    cr_tensor t[2] = {{"user", nu, dim, 0}, {"item", ni, dim, 0}};
    CHECK_OK(cr_slab_init(&s, t, 2));
    float *P = cr_slab_at(&s, 0), *Q = cr_slab_at(&s, 1);
    for (int k = 0; k < nu * dim; k++) P[k] = (float)init_user[k];     /* float32-exact in the file */
    for (int k = 0; k < ni * dim; k++) Q[k] = (float)init_item[k];
    cr_opt_params op = cr_opt_default_params(CR_OPT_SGD);
    op.lr = (float)lr;
    op.weight_decay = (float)reg;
    cr_optimizer o;
    CHECK_OK(cr_opt_init(&o, &s, &op));
    float g[3 * MAXD];
    float loss = cr_bpr_grad(P + u * dim, Q + i * dim, Q + j * dim, dim, g, g + dim, g + 2 * dim);
    cr_opt_update(&o, &s, s.t[0].offset + u * dim, g, dim, (float)lr);
    cr_opt_update(&o, &s, s.t[1].offset + i * dim, g + dim, dim, (float)lr);
    cr_opt_update(&o, &s, s.t[1].offset + j * dim, g + 2 * dim, dim, (float)lr);
    cr_opt_step(&o);
    cr_golden_cmp(&gf, "loss", &loss, &want_loss, 1, 0, 1e-6);
    cr_golden_cmp(&gf, "user", P, want_user, nu * dim, 0, 1e-6);
    cr_golden_cmp(&gf, "item", Q, want_item, ni * dim, 0, 1e-6);
    /* the step moved what it should: the sampled rows changed, the others did not */
    CHECK(P[u * dim] != (float)init_user[u * dim] && Q[i * dim] != (float)init_item[i * dim] &&
          Q[j * dim] != (float)init_item[j * dim]);
    cr_opt_free(&o);
    cr_slab_free(&s);
    cr_golden_done(&gf);
}

/* ---- learning ---- */

/* Reads the loss column of the loop's TSV log; returns the number of epochs. */
static int read_losses(const char *path, double *loss, int cap) {
    char *text = cr_test_read(path, NULL);
    CHECK_MSG(text, "no training log at %s", path);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long long e;
        double l;
        if (sscanf(line, "%lld\t%lf", &e, &l) == 2 && n < cap) loss[n++] = l;   /* the header does not parse */
    }
    free(text);
    return n;
}

TEST(bpr_learns) {
    cr_dataset *d = synth_crd("bpr-learn", 500, 300, 10000, 2, 5);
    cr_split *s = make_split(d, CR_PROTO_WARM, NULL, 0);
    cr_train_params p = bpr_params(32, 15);
    char logp[512];
    snprintf(logp, sizeof logp, "%s", cr_test_path("bpr-learn.tsv"));
    p.log_path = logp;
    p.patience = 0;
    cr_model *m = fit(d, cr_split_train(s), &p);
    double losses[64];
    int n = read_losses(logp, losses, 64);
    CHECK_EQ(n, 15);
    /* the data term starts at log 2 (factors near 0: x = 0), falls within the first epoch, and keeps falling */
    CHECK_MSG(losses[0] < log(2.0) && losses[0] > 0.4, "first epoch's loss %.4f", losses[0]);
    CHECK_MSG(losses[n - 1] < 0.8 * losses[0], "loss %.4f -> %.4f", losses[0], losses[n - 1]);
    for (int e = 1; e < n; e++) CHECK_MSG(losses[e] < losses[e - 1] + 0.01, "loss rose at epoch %d: %.4f -> %.4f", e + 1, losses[e - 1], losses[e]);

    const cr_interactions *v = cr_dataset_inter(d);
    cr_model rnd = {&random_ops, v->n_users, v->n_items, v->n_domains, 0, NULL};
    double rec = recall_at(s, m, 10, NULL), base = recall_at(s, &rnd, 10, NULL);
    printf("     synthetic warm split: bpr recall@10 %.4f, random %.4f; loss %.4f -> %.4f over %d epochs\n", rec, base,
           losses[0], losses[n - 1], n);
    CHECK_MSG(rec > 2 * base && rec > base + 0.05, "bpr recall@10 %.4f vs random %.4f", rec, base);
    cr_model_free(m);

    /* with validation users the loop keeps the best epoch; it must still learn */
    p.valid = s;
    p.patience = 2;
    p.log_path = NULL;
    m = fit(d, cr_split_train(s), &p);
    CHECK(recall_at(s, m, 10, NULL) > 2 * base);
    cr_model_free(m);

    /* hogwild: two workers update without locks; not deterministic, but it must learn as well */
    p.valid = NULL;
    p.hogwild = 1;
    p.threads = 2;
    m = fit(d, cr_split_train(s), &p);
    double hog = recall_at(s, m, 10, NULL);
    printf("     hogwild (2 workers) recall@10 %.4f\n", hog);
    CHECK_MSG(hog > 2 * base && hog > base + 0.05, "hogwild bpr recall@10 %.4f vs random %.4f", hog, base);
    cr_model_free(m);

    /* in-batch negatives: learns as well, deterministically, and differs from the table sampler */
    p.hogwild = 0;
    p.threads = 1;
    p.inbatch = 64;
    m = fit(d, cr_split_train(s), &p);
    double inb = recall_at(s, m, 10, NULL);
    cr_model *m2 = fit(d, cr_split_train(s), &p);
    CHECK_NEAR(recall_at(s, m2, 10, NULL), inb, 0);
    printf("     in-batch negatives (batches of 64) recall@10 %.4f\n", inb);
    CHECK_MSG(inb > 2 * base && inb > base + 0.05, "in-batch bpr recall@10 %.4f vs random %.4f", inb, base);
    cr_model_free(m);
    cr_model_free(m2);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- the model: scores, files ---- */

/* The blocked scoring kernel against its scalar oracle on odd shapes: the same bits, rows without a vector
 * untouched, and both near a double-precision dot product. */
TEST(bpr_dot_kernel_matches_ref) {
    cr_rng r;
    cr_rng_named(&r, 4, "test.mf.dot");
    const int64_t dims[] = {1, 3, 7, 16, 33, 64};
    const int64_t ncands[] = {0, 1, 15, 16, 17, 37};
    enum { NI = 50, NR = 5, MAXD = 64, MAXC = 37 };
    float *Q = malloc(NI * MAXD * sizeof *Q), *U = malloc(NR * MAXD * sizeof *U);
    float *scratch = malloc(CR_MF_DOT_SCRATCH(MAXD) * sizeof *scratch);
    float fast[NR * MAXC], ref[NR * MAXC];
    int32_t cand[MAXC];
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            int64_t dim = dims[a], nc = ncands[b];
            for (int k = 0; k < NI * dim; k++) Q[k] = (float)cr_rng_normal(&r);
            for (int k = 0; k < NR * dim; k++) U[k] = (float)cr_rng_normal(&r);
            for (int64_t c = 0; c < nc; c++) cand[c] = (int32_t)cr_rng_below(&r, NI);   /* repeats allowed */
            const float *u[NR];
            for (int k = 0; k < NR; k++) u[k] = k == 2 ? NULL : U + k * dim;
            for (int k = 0; k < NR * MAXC; k++) fast[k] = ref[k] = -7.0f;
            cr_mf_dot(u, NR, Q, cand, nc, dim, fast, scratch);
            cr_mf_dot_ref(u, NR, Q, cand, nc, dim, ref);
            CHECK_MSG(!memcmp(fast, ref, sizeof fast), "dim %lld, %lld candidates: kernel and reference differ", (long long)dim,
                      (long long)nc);
            for (int64_t row = 0; row < NR; row++)
                for (int64_t c = 0; c < nc; c++) {
                    double want = 0;
                    for (int64_t k = 0; k < dim; k++) want += (double)U[row * dim + k] * Q[cand[c] * dim + k];
                    CHECK_NEAR(fast[row * nc + c], row == 2 ? -7.0 : want, 1e-4);
                }
        }
    free(Q), free(U), free(scratch);
}

TEST(bpr_save_load_identical_scores) {
    cr_dataset *d = synth_crd("bpr-save", 200, 120, 3000, 2, 6);
    const cr_interactions *v = cr_dataset_inter(d);
    cr_train_params p = bpr_params(16, 3);
    p.domain = 1;       /* target-only: users without domain-1 events cannot be represented */
    cr_model *m = fit(d, v, &p);
    const cr_mf_model *mf = (const cr_mf_model *)m;
    /* rows: every user, then two history-only rows (-1) */
    enum { R = 202 };
    int32_t users[R], cand[120];
    for (int r = 0; r < R; r++) users[r] = r < 200 ? r : -1;
    for (int c = 0; c < 120; c++) cand[c] = 119 - c;
    int64_t hp[R + 1];
    for (int r = 0; r <= R; r++) hp[r] = v->user_ptr[r < 200 ? r : 200];
    cr_score_request q = {R, users, hp, v->user_items, -1, 120, cand};
    float *a = malloc(R * 120 * sizeof *a), *b = malloc(R * 120 * sizeof *b);
    uint8_t ca[R], cb[R];
    CHECK_OK(cr_model_score(m, &q, a, ca));
    int64_t known = 0;
    for (int r = 0; r < R; r++) {
        int has_dom1 = 0;
        if (r < 200)
            for (int64_t e = v->user_ptr[r]; e < v->user_ptr[r + 1]; e++) has_dom1 |= v->item_domain[v->user_items[e]] == 1;
        CHECK_MSG(ca[r] == has_dom1, "row %d: can %d, has domain-1 events %d", r, ca[r], has_dom1);
        known += ca[r];
        for (int c = 0; c < 120; c++) {
            double want = 0;
            if (ca[r])
                for (int64_t k = 0; k < mf->dim; k++)
                    want += (double)cr_slab_at(&mf->params, 0)[r * mf->dim + k] * cr_slab_at(&mf->params, 1)[cand[c] * mf->dim + k];
            CHECK_NEAR(a[r * 120 + c], want, 1e-5);
            /* items outside the trained domain have zero factors */
            if (v->item_domain[cand[c]] != 1) CHECK(a[r * 120 + c] == 0);
        }
    }
    CHECK(known > 20 && known < 200);
    const char *path = cr_test_path("bpr-save.crm");
    CHECK_OK(cr_model_save(m, path));
    cr_model *l = NULL;
    CHECK_OK(cr_model_load(&l, path));
    CHECK_STR(cr_model_name(l), "bpr");
    CHECK(l->dataset_crc == cr_dataset_file_crc(d) && l->dataset_crc != 0);
    CHECK_OK(cr_model_score(l, &q, b, cb));
    CHECK(!memcmp(a, b, R * 120 * sizeof *a));
    CHECK(!memcmp(ca, cb, sizeof ca));
    /* one row at a time gives the same floats as the whole request */
    for (int r = 0; r < R; r += 37) {
        cr_score_request one = {1, users + r, hp + r, v->user_items, -1, 120, cand};
        uint8_t c1;
        CHECK_OK(cr_model_score(l, &one, b, &c1));
        CHECK(c1 == ca[r] && !memcmp(b, a + r * 120, 120 * sizeof *b));
    }
    const cr_mf_model *lf = (const cr_mf_model *)l;
    CHECK_EQ(lf->dim, 16);
    CHECK_EQ(lf->domain, 1);
    CHECK_EQ(lf->fold_in, 0);
    CHECK_NEAR(lf->reg, 1e-4, 0);
    /* the same file once more: save(load(x)) is x, byte for byte */
    const char *path2 = cr_test_path("bpr-save2.crm");
    CHECK_OK(cr_model_save(l, path2));
    size_t la, lb;
    char *fa = cr_test_read(path, &la), *fb = cr_test_read(cr_test_path("bpr-save2.crm"), &lb);
    CHECK(la == lb && !memcmp(fa, fb, la));
    free(fa), free(fb), free(a), free(b);
    cr_model_free(l);
    cr_model_free(m);
    cr_dataset_free(d);
}

TEST(bpr_deterministic) {
    cr_dataset *d = synth_crd("bpr-det", 300, 150, 5000, 2, 7);
    const cr_interactions *v = cr_dataset_inter(d);
    const char *opts[3] = {"adagrad", "sgd", "adam"};
    for (int o = 0; o < 3; o++) {
        char *files[3];
        size_t lens[3];
        const int threads[3] = {1, 4, 1};
        const uint64_t seeds[3] = {9, 9, 10};
        for (int t = 0; t < 3; t++) {
            cr_train_params p = bpr_params(8, 2);
            p.optimizer = opts[o];
            p.threads = threads[t];
            p.seed = seeds[t];
            p.neg_alpha = o == 1 ? 0.5 : 0;
            cr_model *m = fit(d, v, &p);
            const char *path = cr_test_path("bpr-det.crm");
            CHECK_OK(cr_model_save(m, path));
            cr_model_free(m);
            files[t] = cr_test_read(path, &lens[t]);
        }
        CHECK_MSG(lens[0] == lens[1] && !memcmp(files[0], files[1], lens[0]), "%s: two fits with seed 9 differ", opts[o]);
        CHECK_MSG(lens[0] != lens[2] || memcmp(files[0], files[2], lens[0]), "%s: the seed changes nothing", opts[o]);
        for (int t = 0; t < 3; t++) free(files[t]);
    }
    cr_dataset_free(d);
}

TEST(bpr_cold_user_unrepresented) {
    cr_dataset *d = synth_crd("bpr-cold", 400, 200, 8000, 2, 8);
    const char *target = cr_dataset_domain_name(d, 1);
    cr_split *s = make_split(d, CR_PROTO_COLD_USER, target, 0.3);
    const cr_interactions *tr = cr_split_train(s);
    /* the protocol: test users have no target training events */
    const cr_ground_truth *gt = cr_split_truth(s, CR_PART_TEST);
    CHECK(gt->n_users > 10);
    for (int64_t k = 0; k < gt->n_users; k++) {
        int32_t u = gt->users[k];
        for (int64_t e = tr->user_ptr[u]; e < tr->user_ptr[u + 1]; e++) CHECK(tr->item_domain[tr->user_items[e]] != 1);
    }
    cr_train_params p = bpr_params(16, 5);
    p.domain = 1;
    cr_model *m = fit(d, tr, &p);
    cr_eval_result *r = NULL;
    recall_at(s, m, 10, &r);
    CHECK(r->n_users > 10);
    CHECK_EQ(r->n_unrepresented, r->n_users);
    CHECK_NEAR(r->mean.recall[0], 0, 0);
    cr_eval_result_free(r);
    cr_model_free(m);
    p.domain = -1;
    m = fit(d, tr, &p);
    double rec = recall_at(s, m, 10, &r);
    CHECK_EQ(r->n_unrepresented, 0);
    printf("     cold users (%lld): target-only bpr represents none; all-domain bpr recall@10 %.4f\n", (long long)r->n_users, rec);
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* A .crm written by hand: 2 users, 3 items, 1 domain, dim 2. */
typedef struct {
    int64_t dim, domain, fold_in, user_count;
    double reg;
    float user[4], item[6];
    uint8_t known[2];
} hand_mf;

static hand_mf hand_default(void) {
    hand_mf h = {2, -1, 0, 4, 1e-4, {1, 2, 0.5f, -1}, {1, 0, 0, 1, -2, 3}, {1, 0}};
    return h;
}

static const char *write_hand(const hand_mf *h, const char *name) {
    const char *path = cr_test_path(name);
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", CR_CRM_VERSION));
    CHECK_OK(cr_filew_meta_str(w, "model", "bpr"));
    CHECK_OK(cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING));
    CHECK_OK(cr_filew_meta_i64(w, "n_users", 2));
    CHECK_OK(cr_filew_meta_i64(w, "n_items", 3));
    CHECK_OK(cr_filew_meta_i64(w, "n_domains", 1));
    CHECK_OK(cr_filew_meta_i64(w, "dataset_crc", 0));
    CHECK_OK(cr_filew_meta_i64(w, "mf.dim", h->dim));
    CHECK_OK(cr_filew_meta_i64(w, "mf.domain", h->domain));
    CHECK_OK(cr_filew_meta_i64(w, "mf.fold_in", h->fold_in));
    CHECK_OK(cr_filew_meta_f64(w, "mf.als_alpha", 0));
    CHECK_OK(cr_filew_meta_f64(w, "mf.reg", h->reg));
    CHECK_OK(cr_filew_array(w, "mf.user", CR_DT_F32, h->user, h->user_count));
    CHECK_OK(cr_filew_array(w, "mf.item", CR_DT_F32, h->item, 6));
    CHECK_OK(cr_filew_array(w, "mf.user_known", CR_DT_U8, h->known, 2));
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
    return path;
}

TEST(bpr_corrupt_file) {
    /* the good file first: user 0 = (1, 2) scores items (1,0) (0,1) (-2,3) as 1, 2, 4; user 1 is not known */
    hand_mf h = hand_default();
    cr_model *m = NULL;
    CHECK_OK(cr_model_load(&m, write_hand(&h, "bpr-hand.crm")));
    int32_t users[3] = {0, 1, -1}, cand[3] = {0, 1, 2};
    cr_score_request q = {3, users, NULL, NULL, -1, 3, cand};
    float s[9];
    uint8_t can[3];
    CHECK_OK(cr_model_score(m, &q, s, can));
    CHECK(can[0] == 1 && can[1] == 0 && can[2] == 0);
    const float want[9] = {1, 2, 4, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 9; k++) CHECK_NEAR(s[k], want[k], 0);
    cr_model_free(m);

    hand_mf bad[7];
    const char *msgs[7] = {"mf.item[1] = nan is not a finite number", "mf.user[3] = inf is not a finite number",
                           "mf.user_known[1] = 2 (expected 0 or 1)", "mf.dim = 0 is outside 1..4096",
                           "mf.domain = 1 is outside -1..0", "mf.fold_in = 2", "mf.user"};
    for (int k = 0; k < 7; k++) bad[k] = hand_default();
    bad[0].item[1] = NAN;
    bad[1].user[3] = INFINITY;
    bad[2].known[1] = 2;
    bad[3].dim = 0;
    bad[4].domain = 1;
    bad[5].fold_in = 2;
    bad[6].user_count = 3;    /* n_users x dim = 4 floats expected */
    for (int k = 0; k < 7; k++) {
        m = NULL;
        CHECK_STATUS(cr_model_load(&m, write_hand(&bad[k], "bpr-bad.crm")), CR_ERR_FORMAT);
        CHECK(m == NULL);
        CHECK_CONTAINS(cr_errmsg(), "bpr-bad.crm: ");
        CHECK_CONTAINS(cr_errmsg(), msgs[k]);
    }
    h = hand_default();
    h.reg = -1;
    CHECK_STATUS(cr_model_load(&m, write_hand(&h, "bpr-bad.crm")), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "mf.reg = -1");
}

/* Parameter and data errors that only bpr can see. */
TEST(bpr_refuses_bad_input) {
    cr_dataset *d = synth_crd("bpr-args", 100, 60, 1000, 2, 9);
    const char *target = cr_dataset_domain_name(d, 1);
    cr_split *s = make_split(d, CR_PROTO_NEW_DOMAIN, target, 0);
    cr_train_params p = bpr_params(8, 1);
    cr_model *m = NULL;
    p.domain = 1;   /* new-domain: every target event left training */
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "bpr: no training events in domain '");
    CHECK(m == NULL);
    p.domain = -1;
    p.optimizer = "rmsprop";
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    p.optimizer = "sgd";
    p.dim = 0;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(bpr_alloc_failures_are_clean) {
    cr_dataset *d = synth_crd("bpr-fault", 40, 30, 300, 2, 10);
    cr_split *s = make_split(d, CR_PROTO_WARM, NULL, 0);
    const char *path = cr_test_path("bpr-fault.crm");
    cr_train_params p = bpr_params(4, 1);
    p.valid = s;        /* the loop's validation allocates too */
    int64_t n;
    for (n = 1; n < 100000; n++) {
        remove(path);
        cr_alloc_fail_nth(n);
        cr_model *m = NULL, *l = NULL;
        cr_status st = cr_model_train(&m, d, cr_split_train(s), &p);
        if (st == CR_OK) st = cr_model_save(m, path);
        if (st == CR_OK) st = cr_model_load(&l, path);
        int32_t user = 0, cand[3] = {0, 1, 2};
        float sc[3];
        uint8_t can;
        cr_score_request q = {1, &user, NULL, NULL, -1, 3, cand};
        if (st == CR_OK) st = cr_model_score(l, &q, sc, &can);
        cr_model_free(m);
        cr_model_free(l);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM || st == CR_OK, "failing allocation %lld gave %s: %s", (long long)n, cr_status_str(st),
                  cr_errmsg());
    }
    CHECK(n > 10);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* The real dataset: the upstream cold-user partition of Amazon Arts -> Office. Figures are printed, not pinned. */
TEST(bpr_shared_amazon_cold_user_office) {
    cr_dataset *d = NULL;
    cr_split *s = NULL;
    cr_test_amazon_cold_split("office", "bpr-aao.crd", &d, &s);
    /* sanitizer builds run the hot loops tens of times slower: fewer epochs there, the same code paths */
    int64_t epochs = 10;
#if defined(__SANITIZE_ADDRESS__)
    epochs = 2;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    epochs = 2;
#endif
#endif
    cr_train_params p = bpr_params(64, epochs);
    p.valid = s;
    cr_model *m = NULL;
    double t0 = cr_now();
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
    double secs = cr_now() - t0;
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 10, ep.ks[1] = 50, ep.n_k = 2;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    CHECK_EQ(r->n_users, 1000);
    printf("     bpr (dim 64, adagrad, %lld epochs max, early stopping on valid) recall@10 %.4f ndcg@10 %.4f | recall@50 %.4f "
           "(train %.2f s, eval %.2f s)\n",
           (long long)epochs, r->mean.recall[0], r->mean.ndcg[0], r->mean.recall[1], secs, r->seconds);
    CHECK(r->mean.recall[0] > 0 && r->mean.recall[1] > 0);
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

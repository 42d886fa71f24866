/* test_cmf.c — collective MF (fit_cmf.c): the domain-weighted BPR gradient against central differences, five
 * weighted two-domain samples (adagrad and adam) against a NumPy golden file (tools/ref/cmf_step.py), cmf
 * with every weight 1 being BPR-MF on all domains factor for factor, transfer to users cold in the target
 * domain (source weight 0.5 represents and ranks them, weight 0 cannot), save/load, byte-identical fits for
 * one seed, parameter errors, fault injection, and the shared Amazon cold-user split when present. */
#include "test.h"
#include "cdr_fixtures.h"
#include "golden.h"

#include "crossrec/eval.h"
#include "crossrec/io.h"
#include "train/train_impl.h"

#include <stdlib.h>

/* ---- fixtures ---- */

/* Synthetic data written by cr_synth_write and taken through the .crd file (splits refer to it), and a split
 * of it: cold-user with the domain of fewest events as target when cold, else warm. */
typedef struct {
    cr_dataset *d;
    cr_split *s;
    int32_t target;
} cmf_fixture;

static cmf_fixture fixture(const char *name, int64_t users, int64_t items, int64_t inter, uint64_t seed, int cold) {
    cmf_fixture x = {NULL, NULL, -1};
    x.d = cr_test_cdr_data(name, users, items, inter, 2, seed);
    const cr_interactions *v = cr_dataset_inter(x.d);
    int64_t per_domain[2] = {0, 0};
    for (int64_t e = 0; e < v->n_inter; e++) per_domain[v->item_domain[v->user_items[e]]]++;
    x.target = per_domain[1] < per_domain[0];
    cr_split_params sp = cr_split_default_params();
    sp.protocol = cold ? CR_PROTO_COLD_USER : CR_PROTO_WARM;
    sp.target = cold ? cr_dataset_domain_name(x.d, x.target) : NULL;
    CHECK_OK(cr_split_make(&x.s, x.d, &sp));
    return x;
}

static void fixture_free(cmf_fixture *x) {
    cr_split_free(x->s);
    cr_dataset_free(x->d);
}

static cr_train_params cmf_params(int64_t dim, int64_t epochs, double source_weight) {
    cr_train_params p = cr_train_default_params();
    p.model = "cmf";
    p.dim = dim;
    p.epochs = epochs;
    p.source_weight = source_weight;
    p.quiet = 1;
    return p;
}

static cr_model *train_cmf(const cmf_fixture *x, const cr_train_params *p) {
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, x->d, cr_split_train(x->s), p));
    CHECK_STR(cr_model_name(m), p->model);
    return m;
}

/* Test-part metrics at k = 10 and 50 (caller frees). */
static cr_eval_result *evaluate_test(const cr_split *s, const cr_model *m) {
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 10, ep.ks[1] = 50, ep.n_k = 2;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    return r;
}

/* A model that ranks candidates by a hash of (user, item): what "beats random" is measured against. */
static cr_status hashed_score(const cr_model *m, const cr_score_request *q, float *scores, uint8_t *can) {
    for (int64_t r = 0; r < q->n_rows; r++) {
        can[r] = 1;
        for (int64_t c = 0; c < q->n_cand; c++) {
            uint32_t key[2] = {(uint32_t)(q->users ? q->users[r] : -1), (uint32_t)q->cand[c]};
            scores[r * q->n_cand + c] = (float)(cr_hash32(key, sizeof key, 11) & 0xffffff);
        }
    }
    return CR_OK;
}
static void hashed_free(cr_model *m) { (void)m; }
static const cr_model_ops hashed_ops = {.name = "hashed", .score = hashed_score, .save = NULL, .free = hashed_free};

/* ---- the weighted gradient ---- */

/* w softplus(-<pu, qi - qj>) + (reg/2)|theta|^2 in double, theta = (pu, qi, qj). */
static double weighted_loss(const double *theta, int dim, double w, double reg) {
    double x = 0, sq = 0;
    for (int k = 0; k < dim; k++) {
        x += theta[k] * (theta[dim + k] - theta[2 * dim + k]);
        sq += theta[k] * theta[k] + theta[dim + k] * theta[dim + k] + theta[2 * dim + k] * theta[2 * dim + k];
    }
    return w * (x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x))) + 0.5 * reg * sq;
}

/* fit_bpr.c scales cr_bpr_grad's data-term gradients by the sample's domain weight and leaves the optimizer's
 * weight decay unweighted: w * g + reg * theta must be the gradient of the weighted objective. */
TEST(cmf_weighted_gradient_finite_difference) {
    enum { DIM = 6, N = 3 * DIM };
    const double reg = 0.02, h = 1e-4, weights[] = {0.5, 1.0, 0.1, 2.0};
    cr_rng r;
    cr_rng_named(&r, 21, "test.cmf.grad");
    double worst = 0;
    for (int trial = 0; trial < 4; trial++) {
        float f[N], g[N];
        double theta[N], w = weights[trial];
        for (int k = 0; k < N; k++) theta[k] = f[k] = (float)((trial == 3 ? 2.0 : 0.4) * cr_rng_normal(&r));
        float l = cr_bpr_grad(f, f + DIM, f + 2 * DIM, DIM, g, g + DIM, g + 2 * DIM);
        CHECK_NEAR(w * l, weighted_loss(theta, DIM, w, 0), 1e-6 * (1 + fabs(w * l)));
        for (int k = 0; k < N; k++) {
            double keep = theta[k];
            theta[k] = keep + h;
            double up = weighted_loss(theta, DIM, w, reg);
            theta[k] = keep - h;
            double down = weighted_loss(theta, DIM, w, reg);
            theta[k] = keep;
            double numeric = (up - down) / (2 * h), analytic = (float)w * g[k] + reg * keep;
            worst = fmax(worst, fabs(analytic - numeric));
            CHECK_MSG(fabs(analytic - numeric) <= 1e-5 + 1e-4 * fabs(numeric),
                      "weight %g, parameter %d: analytic %.9g, numeric %.9g", w, k, analytic, numeric);
        }
    }
    printf("     max |analytic - central difference| = %.3g\n", worst);
}

/* ---- steps against NumPy ---- */

/* tools/ref/cmf_step.py: five samples of two domains (weights 1 for the target, 0.5 for the source) run through
 * cr_mf_pair_step, the step of fit_bpr.c's loop, on a shared user matrix: with adagrad (cmf's default) every
 * sample's loss and weighted gradients, the factors after the run and a cmf model's target-domain scores of
 * them (user 2 has source samples only); with adam the factors after the run (global step t = 1 .. 5, lazy rows). */
TEST(cmf_golden_steps) {
    enum { NU = 3, NI = 6, D = 4, NS = 5 };
    cr_golden g;
    cr_golden_open(&g, "tests/golden/cmf_step.txt");
    CHECK_EQ(cr_golden_int(&g, "dim"), D);
    const int32_t target = (int32_t)cr_golden_int(&g, "target");
    const double source_weight = cr_golden_scalar(&g, "source_weight"), reg = cr_golden_scalar(&g, "reg");
    const double eps = cr_golden_scalar(&g, "eps");
    double dom[NI];
    cr_golden_list(&g, "item_domain", NI, dom);
    float P0[NU * D], Q0[NI * D];
    cr_golden_tensor_f(&g, "init_user", NU, D, P0);
    cr_golden_tensor_f(&g, "init_item", NI, D, Q0);
    CHECK_EQ(cr_golden_int(&g, "samples"), NS);
    int32_t smp[NS][3];
    for (int n = 0; n < NS; n++)
        for (int k = 0; k < 3; k++) smp[n][k] = (int32_t)cr_golden_num(&g);
    /* the optimizer's defaults are the reference's */
    cr_opt_params op = cr_opt_default_params(CR_OPT_ADAGRAD);
    CHECK(op.eps == (float)eps);

    cr_mf_model *m = NULL;
    CHECK_OK(cr_mf_new(&m, "cmf", NU, NI, 2, D));
    cr_slab *S = &m->params;
    float *P = cr_slab_at(S, 0), *Q = cr_slab_at(S, 1), grad[3 * D];
    float losses[NS], grads[NS * 3 * D];            /* adagrad: each sample's loss and weighted gradients */
    double want_loss[NS], want_g[NS * 3 * D];
    for (int pass = 0; pass < 2; pass++) {
        const int adam = pass == 1;
        if (!adam) {
            op.lr = (float)cr_golden_scalar(&g, "adagrad_lr");
        } else {
            cr_golden_key(&g, "adam");
            op = cr_opt_default_params(CR_OPT_ADAM);
            op.lr = (float)cr_golden_num(&g);
            CHECK(op.beta1 == (float)cr_golden_num(&g) && op.beta2 == (float)cr_golden_num(&g) && op.eps == (float)eps);
        }
        op.weight_decay = (float)reg;
        cr_optimizer o;
        CHECK_OK(cr_opt_init(&o, S, &op));
        memcpy(P, P0, sizeof P0);
        memcpy(Q, Q0, sizeof Q0);
        for (int n = 0; n < NS; n++) {
            int32_t u = smp[n][0], i = smp[n][1], j = smp[n][2];
            CHECK(u >= 0 && u < NU && i >= 0 && i < NI && j >= 0 && j < NI && dom[i] == dom[j]);
            /* cmf's weight rule (fit_cmf.c): 1 for the target domain, the source weight elsewhere */
            float w = dom[i] == target ? 1.0f : (float)source_weight;
            float loss = cr_mf_pair_step(&o, S, D, u, i, j, w, op.lr, grad);
            CHECK_EQ(o.step, n + 1);
            if (adam) continue;
            CHECK_EQ(cr_golden_int(&g, "sample"), n);
            losses[n] = loss;
            memcpy(grads + n * 3 * D, grad, sizeof grad);
            want_loss[n] = cr_golden_scalar(&g, "loss");
            CHECK_NEAR(w, cr_golden_scalar(&g, "weight"), 0);
            cr_golden_tensor(&g, "grad", 3, D, want_g + n * 3 * D);
        }
        if (!adam) {
            cr_golden_cmp(&g, "losses", losses, want_loss, NS, 1e-5, 1e-6);
            cr_golden_cmp(&g, "weighted gradients", grads, want_g, NS * 3 * D, 1e-5, 1e-7);
        }
        double want_p[NU * D], want_q[NI * D];
        cr_golden_tensor(&g, "user", NU, D, want_p);
        cr_golden_tensor(&g, "item", NI, D, want_q);
        cr_golden_cmp(&g, adam ? "adam user" : "adagrad user", P, want_p, NU * D, 1e-5, 1e-6);
        cr_golden_cmp(&g, adam ? "adam item" : "adagrad item", Q, want_q, NI * D, 1e-5, 1e-6);
        cr_opt_free(&o);
        if (adam) break;
        /* the cmf model's scores of the target items: <user row, item row>, also for user 2, cold in the target */
        int32_t users[NU] = {0, 1, 2}, cand[NI];
        int nc = 0;
        for (int32_t i = 0; i < NI; i++)
            if (dom[i] == target) cand[nc++] = i;
        for (int u = 0; u < NU; u++) m->user_known[u] = 1;
        cr_score_request q = {NU, users, NULL, NULL, target, nc, cand};
        float scores[NU * NI];
        uint8_t can[NU];
        double want_s[NU * NI];
        CHECK_OK(cr_model_score(&m->base, &q, scores, can));
        CHECK(can[0] && can[1] && can[2]);
        cr_golden_tensor(&g, "scores", NU, nc, want_s);
        cr_golden_cmp(&g, "scores", scores, want_s, NU * nc, 1e-5, 1e-6);
    }
    cr_model_free(&m->base);
    cr_golden_done(&g);
}

/* With every weight 1 (no target: no domain, no validation split) cmf is BPR-MF on all domains: the same
 * samples and the same updates, so the same factors to the bit. A source weight != 1 must change them. */
TEST(cmf_all_weights_one_is_bpr) {
    cmf_fixture x = fixture("cmf-bpr", 200, 100, 3000, 22, 0);
    cr_train_params p = cmf_params(8, 2, 0.5);
    cr_model *c = train_cmf(&x, &p);
    p.model = "bpr";
    cr_model *b = train_cmf(&x, &p);
    const cr_slab *pc = &((const cr_mf_model *)c)->params, *pb = &((const cr_mf_model *)b)->params;
    CHECK(pc->n == pb->n && !memcmp(pc->data, pb->data, (size_t)pc->n * sizeof *pc->data));
    cr_model_free(c);
    /* a target with weight 1 elsewhere as well: still bpr */
    p.model = "cmf";
    p.domain = x.target;
    p.source_weight = 1;
    c = train_cmf(&x, &p);
    pc = &((const cr_mf_model *)c)->params;
    CHECK(!memcmp(pc->data, pb->data, (size_t)pc->n * sizeof *pc->data));
    CHECK_EQ(((const cr_mf_model *)c)->domain, -1);    /* the target does not restrict training */
    cr_model_free(c);
    p.source_weight = 0.5;
    c = train_cmf(&x, &p);
    pc = &((const cr_mf_model *)c)->params;
    CHECK(memcmp(pc->data, pb->data, (size_t)pc->n * sizeof *pc->data));
    cr_model_free(c);
    cr_model_free(b);
    fixture_free(&x);
}

/* ---- transfer to cold users ---- */

TEST(cmf_cold_users) {
    cmf_fixture x = fixture("cmf-cold", 500, 300, 10000, 23, 1);
    CHECK_EQ(cr_split_target(x.s), x.target);
    const cr_interactions *v = cr_dataset_inter(x.d);
    cr_model rnd = {&hashed_ops, v->n_users, v->n_items, v->n_domains, 0, NULL};
    cr_eval_result *base = evaluate_test(x.s, &rnd);
    CHECK(base->n_users > 10);
    /* the target comes from the validation split (no --domain) */
    const double weights[] = {0.5, 0.0, 1.0, 0.25};
    double rec10[4], rec50[4];
    for (int k = 0; k < 4; k++) {
        cr_train_params p = cmf_params(32, 15, weights[k]);
        p.valid = x.s;
        p.patience = 3;
        cr_model *m = train_cmf(&x, &p);
        cr_eval_result *r = evaluate_test(x.s, m);
        CHECK_EQ(r->n_users, base->n_users);
        rec10[k] = r->mean.recall[0], rec50[k] = r->mean.recall[1];
        if (weights[k] > 0) CHECK_EQ(r->n_unrepresented, 0);     /* every cold user has source events */
        else CHECK_EQ(r->n_unrepresented, r->n_users);           /* target-only: no vector for any of them */
        cr_eval_result_free(r);
        cr_model_free(m);
    }
    printf("     cold users (%lld) in the thinner domain: recall@10 / @50 random %.4f / %.4f", (long long)base->n_users,
           base->mean.recall[0], base->mean.recall[1]);
    for (int k = 0; k < 4; k++) printf(", w %.2g: %.4f / %.4f", weights[k], rec10[k], rec50[k]);
    printf("\n");
    CHECK_MSG(rec10[0] > 2 * base->mean.recall[0] && rec10[0] > base->mean.recall[0] + 0.03,
              "cmf recall@10 %.4f vs random %.4f", rec10[0], base->mean.recall[0]);
    CHECK(rec50[0] > base->mean.recall[1]);
    CHECK(rec10[0] > rec10[1] && rec50[0] > rec50[1]);
    CHECK_NEAR(rec10[1], 0, 0);
    cr_eval_result_free(base);
    fixture_free(&x);
}

/* ---- files, determinism ---- */

TEST(cmf_save_load_deterministic) {
    cmf_fixture x = fixture("cmf-file", 200, 120, 3000, 24, 1);
    cr_train_params p = cmf_params(16, 3, 0.5);
    p.valid = x.s;
    cr_model *m = train_cmf(&x, &p);
    enum { R = 200, C = 120 };
    int32_t users[R], cand[C];
    for (int r = 0; r < R; r++) users[r] = r;
    for (int c = 0; c < C; c++) cand[c] = (c * 7) % C;
    cr_score_request q = {R, users, NULL, NULL, x.target, C, cand};
    float *a = malloc(R * C * sizeof *a), *b = malloc(R * C * sizeof *b);
    uint8_t ca[R], cb[R];
    CHECK_OK(cr_model_score(m, &q, a, ca));
    /* a user is represented exactly when it has training events in some domain (all weights are > 0) */
    const cr_interactions *tr = cr_split_train(x.s);
    int64_t cold = 0;
    for (int r = 0; r < R; r++) {
        CHECK_EQ(ca[r], tr->user_ptr[r + 1] > tr->user_ptr[r]);
        int has_target = 0;
        for (int64_t e = tr->user_ptr[r]; e < tr->user_ptr[r + 1]; e++)
            has_target |= tr->item_domain[tr->user_items[e]] == x.target;
        cold += ca[r] && !has_target;
    }
    CHECK(cold > 0);    /* represented without a target event: through the shared user factors */
    const char *path = cr_test_path("cmf-a.crm");
    CHECK_OK(cr_model_save(m, path));
    cr_model *l = NULL;
    CHECK_OK(cr_model_load(&l, path));
    CHECK_STR(cr_model_name(l), "cmf");
    CHECK(l->dataset_crc == cr_dataset_file_crc(x.d));
    CHECK_OK(cr_model_score(l, &q, b, cb));
    CHECK(!memcmp(a, b, R * C * sizeof *a) && !memcmp(ca, cb, sizeof ca));
    cr_model_free(l);
    cr_model_free(m);
    /* a second fit with the seed, at another thread count, writes the same bytes; another seed does not */
    p.threads = 3;
    m = train_cmf(&x, &p);
    CHECK_OK(cr_model_save(m, cr_test_path("cmf-b.crm")));
    cr_model_free(m);
    p.seed = 43;
    m = train_cmf(&x, &p);
    CHECK_OK(cr_model_save(m, cr_test_path("cmf-c.crm")));
    cr_model_free(m);
    size_t n1, n2, n3;
    char *f1 = cr_test_read(path, &n1), *f2 = cr_test_read(cr_test_path("cmf-b.crm"), &n2),
         *f3 = cr_test_read(cr_test_path("cmf-c.crm"), &n3);
    CHECK(n1 == n2 && !memcmp(f1, f2, n1));
    CHECK(n1 != n3 || memcmp(f1, f3, n1));
    free(f1), free(f2), free(f3), free(a), free(b);
    fixture_free(&x);
}

/* ---- errors ---- */

TEST(cmf_refuses_bad_input) {
    cmf_fixture x = fixture("cmf-args", 100, 60, 1000, 25, 1);
    cr_model *m = NULL;
    const double bad[] = {-0.5, NAN, INFINITY};
    for (int k = 0; k < 3; k++) {
        cr_train_params p = cmf_params(4, 1, bad[k]);
        CHECK_STATUS(cr_model_train(&m, x.d, cr_split_train(x.s), &p), CR_ERR_ARG);
        CHECK_CONTAINS(cr_errmsg(), "source weight");
        CHECK(m == NULL);
    }
    /* new-domain: no target event is in training, so weight 0 on the sources leaves nothing to fit */
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_NEW_DOMAIN;
    sp.target = cr_dataset_domain_name(x.d, x.target);
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, x.d, &sp));
    cr_train_params p = cmf_params(4, 1, 0);
    p.domain = x.target;
    CHECK_STATUS(cr_model_train(&m, x.d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "cmf: no training events");
    CHECK(m == NULL);
    cr_split_free(s);
    fixture_free(&x);
}

TEST(cmf_alloc_failures_are_clean) {
    cmf_fixture x = fixture("cmf-fault", 40, 30, 300, 26, 1);
    const char *path = cr_test_path("cmf-fault.crm");
    cr_train_params p = cmf_params(4, 1, 0.5);
    p.valid = x.s;
    int64_t n;
    for (n = 1; n < 100000; n++) {
        remove(path);
        cr_alloc_fail_nth(n);
        cr_model *m = NULL, *l = NULL;
        cr_status st = cr_model_train(&m, x.d, cr_split_train(x.s), &p);
        if (!st) st = cr_model_save(m, path);
        if (!st) st = cr_model_load(&l, path);
        cr_model_free(m);
        cr_model_free(l);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM || st == CR_OK, "allocation %lld failed: %s (%s)", (long long)n, cr_status_str(st),
                  cr_errmsg());
    }
    CHECK(n > 5);
    fixture_free(&x);
}

/* ---- the shared Amazon data: cold users of Office (upstream users.tsv). Printed, not pinned. ---- */

/* AddressSanitizer makes the sampling loop tens of times slower: the Amazon run keeps its code paths with one
 * epoch there. GCC says so with a macro, clang through __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define CMF_SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CMF_SLOW_BUILD 1
#endif
#endif
#ifndef CMF_SLOW_BUILD
#define CMF_SLOW_BUILD 0
#endif

TEST(cmf_shared_amazon_cold_user_office) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char files[3][512];
    const char *names[3] = {"interactions", "items", "users"};
    for (int k = 0; k < 3; k++) snprintf(files[k], sizeof files[k], "%s/amazon-art-office/%s.tsv", root, names[k]);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = files[0];
    ip.items[ip.n_items++] = files[1];
    cmf_fixture x = {NULL, NULL, -1};
    const char *crd = cr_test_path("cmf-aao.crd");
    CHECK_OK(cr_dataset_import(&x.d, &ip, NULL));
    CHECK_OK(cr_dataset_save(x.d, crd));
    cr_dataset_free(x.d);
    CHECK_OK(cr_dataset_load(&x.d, crd));
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = "office";
    sp.users_file = files[2];
    CHECK_OK(cr_split_make(&x.s, x.d, &sp));
    cr_train_params p = cmf_params(64, CMF_SLOW_BUILD ? 1 : 5, 0.5);
    p.valid = x.s;
    double t0 = cr_now();
    cr_model *m = train_cmf(&x, &p);
    double secs = cr_now() - t0;
    cr_eval_result *r = evaluate_test(x.s, m);
    printf("     cmf (dim 64, adagrad, source weight 0.5, %lld epochs max) on %lld cold users: recall@10 %.4f ndcg@10 %.4f | "
           "recall@50 %.4f (unrepresented %lld; train %.2f s)\n",
           (long long)p.epochs, (long long)r->n_users, r->mean.recall[0], r->mean.ndcg[0], r->mean.recall[1],
           (long long)r->n_unrepresented, secs);
    CHECK(r->mean.recall[0] > 0 && r->mean.recall[1] > 0);
    cr_eval_result_free(r);
    cr_model_free(m);
    fixture_free(&x);
}

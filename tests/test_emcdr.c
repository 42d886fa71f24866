/* test_emcdr.c — the EMCDR model (src/models/emcdr.c, src/train/fit_emcdr.c): two Adam steps of the mapping
 * (output, loss, gradients, weights) against a NumPy golden file (tools/ref/emcdr_step.py); on a synthetic
 * cold-user split the target-cold test users are represented through the mapping and ranked far better than at
 * random, and the mapping's loss falls; scores survive save/load and are what the model's parts say (target
 * factors for warm users, f(source factors) for cold ones, nothing for users given by history only); the same
 * seed gives the same file at any thread count; damaged files and bad parameters are refused; failing
 * allocations leave no leak; and the shared Amazon cold-user split, when present, prints its figures. */
#include "test.h"

#include "cdr_fixtures.h"
#include "golden.h"

#include "crossrec/eval.h"
#include "crossrec/io.h"
#include "models/emcdr_impl.h"
#include "train/train_impl.h"

#include <stdlib.h>

/* ---- helpers ---- */

static cr_train_params emcdr_params(int32_t target, int64_t dim, int64_t epochs) {
    cr_train_params p = cr_train_default_params();
    p.model = "emcdr";
    p.domain = target;
    p.dim = dim;
    p.epochs = epochs;
    p.quiet = 1;
    return p;
}

/* ---- learning on a cold-user split ---- */

TEST(emcdr_cold_users_synthetic) {
    cr_dataset *d = cr_test_cdr_data("emcdr-cold", 500, 300, 10000, 2, 21);
    int32_t target = cr_test_thinnest_domain(d);
    cr_split *s = cr_test_cold_split(d, target, 0.3);
    const cr_interactions *tr = cr_split_train(s);
    cr_train_params p = emcdr_params(target, 32, 20);
    char logp[512];
    snprintf(logp, sizeof logp, "%s", cr_test_path("emcdr-cold.tsv"));
    p.log_path = logp;
    p.patience = 0;
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, tr, &p));
    CHECK_STR(cr_model_name(m), "emcdr");

    double loss[64];
    int n = cr_test_log_losses(logp, loss, 64);
    CHECK_EQ(n, 20);
    CHECK_MSG(loss[n - 1] < 0.7 * loss[0], "mapping loss %.5f -> %.5f", loss[0], loss[n - 1]);

    /* every test user is cold in the target but has source events, so the mapping represents all of them */
    const cr_emcdr_model *em = (const cr_emcdr_model *)m;
    const cr_ground_truth *gt = cr_split_truth(s, CR_PART_TEST);
    CHECK(gt->n_users > 20);
    for (int64_t k = 0; k < gt->n_users; k++) {
        int32_t u = gt->users[k];
        CHECK(em->tgt_known[u] == 0 && em->src_known[u] == 1);
    }
    cr_eval_result *r = cr_test_evaluate_at(s, m, 10, 50);
    cr_model rnd = cr_test_random_model(d);
    cr_eval_result *rb = cr_test_evaluate_at(s, &rnd, 10, 50);
    printf("     synthetic cold-user split (target %s, %lld test users): emcdr recall@10 %.4f @50 %.4f, random %.4f %.4f; "
           "mapping loss %.5f -> %.5f\n",
           cr_dataset_domain_name(d, target), (long long)r->n_users, r->mean.recall[0], r->mean.recall[1],
           rb->mean.recall[0], rb->mean.recall[1], loss[0], loss[n - 1]);
    CHECK_EQ(r->n_unrepresented, 0);
    CHECK_MSG(r->mean.recall[0] > 2 * rb->mean.recall[0] && r->mean.recall[0] > rb->mean.recall[0] + 0.05,
              "emcdr recall@10 %.4f vs random %.4f", r->mean.recall[0], rb->mean.recall[0]);
    cr_eval_result_free(r);
    cr_eval_result_free(rb);
    cr_model_free(m);

    /* the target comes from the split when --domain is not given; validation then drives early stopping */
    p.domain = -1;
    p.valid = s;
    p.patience = 3;
    p.log_path = NULL;
    m = NULL;
    CHECK_OK(cr_model_train(&m, d, tr, &p));
    CHECK_EQ(((const cr_emcdr_model *)m)->domain, target);
    r = cr_test_evaluate_at(s, m, 10, 50);
    CHECK_EQ(r->n_unrepresented, 0);
    CHECK(r->mean.recall[0] > 0.05);
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- mapping steps against NumPy ---- */

/* tools/ref/emcdr_step.py: two mini-batches of the mapping f (dim 3 -> 6 tanh -> 3) through cr_emcdr_map_grad
 * and cr_opt_dense_step, the step of fit_emcdr.c's epoch: for each, f's output, the MSE, dL/dy, the gradients
 * of the four tensors and the weights after Adam's step (t = 1, then t = 2 on a smaller batch). */
TEST(emcdr_golden_step) {
    enum { D = 3, H = 6, MAXB = 4 };
    static const char *const names[4] = {"w0", "b0", "w1", "b1"};
    cr_golden g;
    cr_golden_open(&g, "tests/golden/emcdr_step.txt");
    CHECK_EQ(cr_golden_int(&g, "dim"), D);
    CHECK_EQ(cr_golden_int(&g, "hidden"), H);
    cr_golden_key(&g, "adam");
    cr_opt_params op = cr_opt_default_params(CR_OPT_ADAM);
    op.lr = (float)cr_golden_num(&g);
    op.weight_decay = (float)cr_golden_num(&g);
    /* the reference's settings are fit_emcdr.c's and the optimizer's defaults */
    CHECK(op.lr == CR_EMCDR_MAP_LR && op.weight_decay == CR_EMCDR_MAP_WD);
    CHECK(op.beta1 == (float)cr_golden_num(&g) && op.beta2 == (float)cr_golden_num(&g) && op.eps == (float)cr_golden_num(&g));

    cr_emcdr_model *m = NULL;
    CHECK_OK(cr_emcdr_new(&m, 1, 1, 2, D, H, 1));
    int idx[4];
    for (int k = 0; k < 4; k++) {
        char name[32], key[32];
        snprintf(name, sizeof name, "emcdr.map.%s", names[k]);
        snprintf(key, sizeof key, "init_%s", names[k]);
        idx[k] = cr_slab_find(&m->map, name);
        CHECK(idx[k] >= 0);
        const cr_tensor *t = &m->map.t[idx[k]];
        cr_golden_tensor_f(&g, key, t->rows, t->cols, cr_slab_at(&m->map, idx[k]));
    }
    cr_slab grad;
    CHECK_OK(cr_slab_like(&grad, &m->map));
    cr_optimizer o;
    CHECK_OK(cr_opt_init(&o, &m->map, &op));
    const int64_t na = cr_mlp_act_size(&m->mlp, MAXB);
    float x[MAXB * D], t[MAXB * D], dy[MAXB * D], pre[MAXB * (H + D)], acts[MAXB * (H + D)], scratch[2 * MAXB * H];
    double want[H * D];
    CHECK(na <= MAXB * (H + D));
    for (int step = 1; step <= 2; step++) {
        const int64_t B = step == 1 ? 4 : 3;
        char name[48];
        cr_golden_tensor_f(&g, "x", B, D, x);
        cr_golden_tensor_f(&g, "t", B, D, t);
        memset(grad.data, 0, (size_t)grad.size * sizeof *grad.data);
        double loss = cr_emcdr_map_grad(m, &grad, x, t, B, pre, acts, dy, scratch);
        const float *y = acts + cr_mlp_act_size(&m->mlp, B) - B * D;
        snprintf(name, sizeof name, "%d: y", step);
        cr_golden_tensor(&g, "y", B, D, want);
        cr_golden_cmp(&g, name, y, want, B * D, 1e-5, 1e-6);
        want[0] = cr_golden_scalar(&g, "loss");
        snprintf(name, sizeof name, "%d: loss", step);
        cr_golden_cmp_d(&g, name, &loss, want, 1, 1e-5, 1e-6);
        cr_golden_tensor(&g, "dy", B, D, want);
        snprintf(name, sizeof name, "%d: dy", step);
        cr_golden_cmp(&g, name, dy, want, B * D, 1e-5, 1e-6);
        for (int k = 0; k < 4; k++) {
            const cr_tensor *tt = &m->map.t[idx[k]];
            snprintf(name, sizeof name, "grad_%s", names[k]);
            cr_golden_tensor(&g, name, tt->rows, tt->cols, want);
            snprintf(name, sizeof name, "%d: grad_%s", step, names[k]);
            cr_golden_cmp(&g, name, cr_slab_at(&grad, idx[k]), want, tt->rows * tt->cols, 1e-5, 1e-7);
        }
        cr_opt_dense_step(&o, &m->map, &grad);
        CHECK_EQ(o.step, step);
        for (int k = 0; k < 4; k++) {
            const cr_tensor *tt = &m->map.t[idx[k]];
            cr_golden_tensor(&g, names[k], tt->rows, tt->cols, want);
            snprintf(name, sizeof name, "%d: %s", step, names[k]);
            cr_golden_cmp(&g, name, cr_slab_at(&m->map, idx[k]), want, tt->rows * tt->cols, 1e-5, 1e-6);
        }
    }
    cr_opt_free(&o);
    cr_slab_free(&grad);
    cr_model_free(&m->base);
    cr_golden_done(&g);
}

/* ---- scores, files ---- */

TEST(emcdr_scores_and_save_load) {
    cr_dataset *d = cr_test_cdr_data("emcdr-save", 200, 120, 3000, 2, 22);
    const cr_interactions *v = cr_dataset_inter(d);
    int32_t target = 1;
    cr_split *s = cr_test_cold_split(d, target, 0.3);
    const cr_interactions *tr = cr_split_train(s);
    cr_train_params p = emcdr_params(target, 8, 3);
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, tr, &p));
    const cr_emcdr_model *em = (const cr_emcdr_model *)m;
    CHECK_EQ(em->dim, 8);
    CHECK_EQ(em->mlp.width[1], 16);
    /* rows: every user, then one row given by history only */
    enum { NU = 200, R = NU + 1, NC = 120 };
    int32_t users[R], cand[NC];
    int64_t hp[R + 1];
    for (int r = 0; r < R; r++) users[r] = r < NU ? r : -1;
    /* emcdr reads no history: the real rows get none, the history-only row gets user 0's training events and
     * is still unrepresentable */
    for (int r = 0; r <= NU; r++) hp[r] = 0;
    hp[R] = tr->user_ptr[1];
    for (int c = 0; c < NC; c++) cand[c] = (int32_t)((c * 7) % NC);
    cr_score_request q = {R, users, hp, tr->user_items, target, NC, cand};
    float *a = malloc(R * NC * sizeof *a), *b = malloc(R * NC * sizeof *b);
    uint8_t ca[R], cb[R];
    CHECK_OK(cr_model_score(m, &q, a, ca));
    int64_t warm = 0, mapped = 0, none = 0;
    const float *P = cr_slab_at(&em->factors, 0), *Q = cr_slab_at(&em->factors, 1), *S = cr_slab_at(&em->factors, 2);
    int64_t na = cr_mlp_act_size(&em->mlp, 1);
    float pre[64], acts[64];
    CHECK(na <= 64);
    for (int r = 0; r < R; r++) {
        int has_t = 0, has_s = 0;
        if (r < NU)
            for (int64_t e = tr->user_ptr[r]; e < tr->user_ptr[r + 1]; e++) {
                if (tr->item_domain[tr->user_items[e]] == target) has_t = 1;
                else has_s = 1;
            }
        CHECK_MSG(ca[r] == (has_t || has_s), "row %d: can %d, target events %d, source events %d", r, ca[r], has_t, has_s);
        const float *vec = NULL;
        if (has_t) vec = P + r * 8, warm++;
        else if (has_s) {
            cr_mlp_forward(&em->mlp, &em->map, S + r * 8, 1, pre, acts);
            vec = acts + na - 8;
            mapped++;
        } else none++;
        for (int c = 0; c < NC; c++) {
            double want = 0;
            if (vec)
                for (int k = 0; k < 8; k++) want += (double)vec[k] * Q[cand[c] * 8 + k];
            CHECK_NEAR(a[r * NC + c], want, 1e-5);
            /* items outside the target have zero factors */
            if (v->item_domain[cand[c]] != target) CHECK(a[r * NC + c] == 0);
        }
    }
    CHECK(warm > 20 && mapped > 20);
    CHECK(none >= 1 && ca[NU] == 0);
    printf("     %lld rows: %lld by target factors, %lld through the mapping, %lld unrepresented\n", (long long)R,
           (long long)warm, (long long)mapped, (long long)none);

    const char *path = cr_test_path("emcdr-save.crm");
    CHECK_OK(cr_model_save(m, path));
    cr_model *l = NULL;
    CHECK_OK(cr_model_load(&l, path));
    CHECK_STR(cr_model_name(l), "emcdr");
    CHECK(l->dataset_crc == cr_dataset_file_crc(d) && l->dataset_crc != 0);
    CHECK_OK(cr_model_score(l, &q, b, cb));
    CHECK(!memcmp(a, b, R * NC * sizeof *a));
    CHECK(!memcmp(ca, cb, sizeof ca));
    /* one row at a time gives the same floats */
    for (int r = 0; r < NU; r += 23) {
        cr_score_request one = {1, users + r, hp + r, tr->user_items, target, NC, cand};
        uint8_t c1;
        CHECK_OK(cr_model_score(l, &one, b, &c1));
        CHECK(c1 == ca[r] && !memcmp(b, a + r * NC, NC * sizeof *b));
    }
    /* save(load(x)) is x, byte for byte */
    const char *path2 = cr_test_path("emcdr-save2.crm");
    CHECK_OK(cr_model_save(l, path2));
    size_t la, lb;
    char *fa = cr_test_read(path, &la), *fb = cr_test_read(path2, &lb);
    CHECK(la == lb && !memcmp(fa, fb, la));
    free(fa), free(fb);

    /* damaged files: poison the trained model, save it, and expect the loader to name the bad value */
    cr_emcdr_model *pm = (cr_emcdr_model *)m;
    const char *bad = cr_test_path("emcdr-bad.crm");
    float keep = cr_slab_at(&pm->map, pm->mlp.w_index[1])[3];
    cr_slab_at(&pm->map, pm->mlp.w_index[1])[3] = NAN;
    CHECK_OK(cr_model_save(m, bad));
    cr_model *x = NULL;
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK(x == NULL);
    CHECK_CONTAINS(cr_errmsg(), "emcdr-bad.crm: emcdr.map.w1[3] = nan is not a finite number");
    cr_slab_at(&pm->map, pm->mlp.w_index[1])[3] = keep;
    keep = cr_slab_at(&pm->factors, 2)[5];
    cr_slab_at(&pm->factors, 2)[5] = INFINITY;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "emcdr.src_user[5] = inf");
    cr_slab_at(&pm->factors, 2)[5] = keep;
    pm->src_known[7] = 2;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "emcdr.src_known[7] = 2 (expected 0 or 1)");
    pm->src_known[7] = 1;
    pm->domain = 2;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "emcdr.domain = 2 is outside 0..1");
    pm->domain = target;
    pm->mlp.width[1] = 15;      /* the saved hidden width no longer matches the arrays */
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "emcdr.map.w0");
    pm->mlp.width[1] = 16;
    pm->dim = 0;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "emcdr.dim = 0 is outside 1..4096");
    pm->dim = 8;

    free(a), free(b);
    cr_model_free(l);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(emcdr_deterministic) {
    cr_dataset *d = cr_test_cdr_data("emcdr-det", 200, 120, 3000, 2, 23);
    const cr_interactions *v = cr_dataset_inter(d);
    char *files[3];
    size_t lens[3];
    const int threads[3] = {1, 4, 1};
    const uint64_t seeds[3] = {5, 5, 6};
    for (int t = 0; t < 3; t++) {
        cr_train_params p = emcdr_params(0, 8, 2);
        p.threads = threads[t];
        p.seed = seeds[t];
        cr_model *m = NULL;
        CHECK_OK(cr_model_train(&m, d, v, &p));
        const char *path = cr_test_path("emcdr-det.crm");
        CHECK_OK(cr_model_save(m, path));
        cr_model_free(m);
        files[t] = cr_test_read(path, &lens[t]);
    }
    CHECK_MSG(lens[0] == lens[1] && !memcmp(files[0], files[1], lens[0]), "two fits with seed 5 differ");
    CHECK_MSG(lens[0] != lens[2] || memcmp(files[0], files[2], lens[0]), "the seed changes nothing");
    for (int t = 0; t < 3; t++) free(files[t]);
    cr_dataset_free(d);
}

TEST(emcdr_refuses_bad_input) {
    cr_dataset *d = cr_test_cdr_data("emcdr-args", 100, 60, 1000, 2, 24);
    const cr_interactions *v = cr_dataset_inter(d);
    cr_model *m = NULL;
    cr_train_params p = emcdr_params(-1, 8, 1);     /* no --domain and no split */
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "emcdr needs a target domain (--domain T)");
    CHECK(m == NULL);
    /* a split whose training part has no target events at all: the target fit has nothing */
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_NEW_DOMAIN;
    sp.target = cr_dataset_domain_name(d, 1);
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    p.domain = 1;
    CHECK_STATUS(cr_model_train(&m, d, cr_split_train(s), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "no training events in domain");
    CHECK(m == NULL);
    cr_split_free(s);
    cr_dataset_free(d);
    /* one domain: nothing to transfer from */
    d = cr_test_cdr_data("emcdr-args1", 50, 30, 400, 1, 25);
    p.domain = 0;
    CHECK_STATUS(cr_model_train(&m, d, cr_dataset_inter(d), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "emcdr needs a source domain");
    cr_dataset_free(d);
}

TEST(emcdr_alloc_failures_are_clean) {
    cr_dataset *d = cr_test_cdr_data("emcdr-fault", 40, 30, 300, 2, 26);
    cr_split *s = cr_test_cold_split(d, 1, 0.3);
    const char *path = cr_test_path("emcdr-fault.crm");
    cr_train_params p = emcdr_params(-1, 4, 1);
    p.valid = s;        /* the target from the split, and the loop's validation allocates too */
    int64_t n;
    for (n = 1; n < 100000; n++) {
        remove(path);
        cr_alloc_fail_nth(n);
        cr_model *m = NULL, *l = NULL;
        cr_status st = cr_model_train(&m, d, cr_split_train(s), &p);
        if (st == CR_OK) st = cr_model_save(m, path);
        if (st == CR_OK) st = cr_model_load(&l, path);
        int32_t users[2] = {0, 1}, cand[3] = {0, 1, 2};
        float sc[6];
        uint8_t can[2];
        cr_score_request q = {2, users, NULL, NULL, -1, 3, cand};
        if (st == CR_OK) st = cr_model_score(l, &q, sc, can);
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
    printf("     %lld allocations failed one at a time\n", (long long)n - 1);
    CHECK(n > 20);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* The shared data: the upstream cold-user partition of Amazon Arts -> Office. Printed, not pinned. */
TEST(emcdr_shared_amazon_cold_user_office) {
    cr_dataset *d = NULL;
    cr_split *s = NULL;
    cr_test_amazon_cold_split("office", "emcdr-aao.crd", &d, &s);
    int64_t epochs = 5;
#if defined(__SANITIZE_ADDRESS__)
    epochs = 1;     /* sanitizer builds run the loops far slower: the same code paths, fewer passes */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    epochs = 1;
#endif
#endif
    cr_train_params p = emcdr_params(-1, 64, epochs);
    p.valid = s;
    cr_model *m = NULL;
    double t0 = cr_now();
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
    double secs = cr_now() - t0;
    cr_eval_result *r = cr_test_evaluate_at(s, m, 10, 50);
    printf("     emcdr (dim 64, %lld epochs) on amazon arts -> office cold users: recall@10 %.4f ndcg@10 %.4f recall@50 %.4f, "
           "%lld of %lld users unrepresented (train %.1f s)\n",
           (long long)epochs, r->mean.recall[0], r->mean.ndcg[0], r->mean.recall[1], (long long)r->n_unrepresented,
           (long long)r->n_users, secs);
    CHECK(r->n_users > 0);
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

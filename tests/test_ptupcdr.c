/* test_ptupcdr.c — the PTUPCDR model (src/models/ptupcdr.c, src/train/fit_ptupcdr.c): the per-event loss's
 * gradient with respect to the encoder h and the meta network g against central differences of an independent
 * double-precision reference; two Adam steps of the bridge (attention, bridge matrix, mapped vector, loss,
 * gradients, weights) against a NumPy golden file (tools/ref/ptupcdr_step.py); on a synthetic cold-user split
 * the target-cold test users are represented through the personalised bridge and ranked far better than at
 * random, and the bridge's BPR loss falls; scores survive save/load and are what the model's parts say; the
 * same seed gives the same file at any thread count; bad parameters and damaged files are refused; failing
 * allocations leave no leak. */
#include "test.h"

#include "cdr_fixtures.h"
#include "golden.h"
#include "crossrec/io.h"
#include "models/ptupcdr_impl.h"
#include "train/train_impl.h"

#include <stdlib.h>

static cr_train_params ptupcdr_params(int32_t target, int64_t dim, int64_t epochs) {
    cr_train_params p = cr_train_default_params();
    p.model = "ptupcdr";
    p.domain = target;
    p.dim = dim;
    p.epochs = epochs;
    p.quiet = 1;
    return p;
}

/* ---- the per-event gradient ---- */

enum { FD_DIM = 3, FD_N = 4 };

typedef struct {
    const cr_ptupcdr_model *m;
    const double *V, *s, *qi, *qj;      /* (FD_N, FD_DIM), (FD_DIM) x 3 */
} fd_ctx;

/* tensor `k`'s weight (w) or bias (b) of an MLP, in theta (a double copy of the nets slab) */
static const double *wt(const double *theta, const cr_ptupcdr_model *m, const cr_mlp *net, int k, int bias) {
    return theta + m->nets.t[bias ? net->b_index[k] : net->w_index[k]].offset;
}

/* y (out) = tanh?(W x + b), W (out, in) */
static void ref_layer(double *y, const double *x, const double *w, const double *b, int64_t in, int64_t out, int act) {
    for (int64_t o = 0; o < out; o++) {
        double acc = b[o];
        for (int64_t i = 0; i < in; i++) acc += w[o * in + i] * x[i];
        y[o] = act ? tanh(acc) : acc;
    }
}

/* -log sigmoid(<W_u s, qi - qj>), every step in double */
static double ref_loss(const double *theta, const void *vctx) {
    const fd_ctx *x = vctx;
    const cr_ptupcdr_model *m = x->m;
    enum { D = FD_DIM };
    double e[FD_N], h[D], mx = -INFINITY, z = 0, c[D] = {0}, w[D * D], t[D];
    for (int j = 0; j < FD_N; j++) {
        ref_layer(h, x->V + j * D, wt(theta, m, &m->enc, 0, 0), wt(theta, m, &m->enc, 0, 1), D, D, 1);
        ref_layer(e + j, h, wt(theta, m, &m->enc, 1, 0), wt(theta, m, &m->enc, 1, 1), D, 1, 0);
        mx = e[j] > mx ? e[j] : mx;
    }
    for (int j = 0; j < FD_N; j++) z += exp(e[j] - mx);
    for (int j = 0; j < FD_N; j++)
        for (int k = 0; k < D; k++) c[k] += exp(e[j] - mx) / z * x->V[j * D + k];
    ref_layer(h, c, wt(theta, m, &m->meta, 0, 0), wt(theta, m, &m->meta, 0, 1), D, D, 1);
    ref_layer(w, h, wt(theta, m, &m->meta, 1, 0), wt(theta, m, &m->meta, 1, 1), D, D * D, 0);
    double xv = 0;
    for (int k = 0; k < D; k++) {
        t[k] = 0;
        for (int l = 0; l < D; l++) t[k] += w[k * D + l] * x->s[l];
        xv += t[k] * (x->qi[k] - x->qj[k]);
    }
    return log1p(exp(-xv));
}

static double central(double *theta, int64_t k, double h, const fd_ctx *x) {
    double save = theta[k];
    theta[k] = save + h;
    double lp = ref_loss(theta, x);
    theta[k] = save - h;
    double lm = ref_loss(theta, x);
    theta[k] = save;
    return (lp - lm) / (2 * h);
}

TEST(ptupcdr_event_gradient_matches_finite_differences) {
    cr_ptupcdr_model *m = NULL;
    CHECK_OK(cr_ptupcdr_new(&m, 1, 1, 2, FD_DIM, 0));
    cr_rng r;
    cr_rng_seed(&r, 7, 1);
    /* random weights and biases: zero biases would hide a transposed bias index */
    for (int64_t k = 0; k < m->nets.size; k++) m->nets.data[k] = (float)(0.7 * cr_rng_normal(&r));
    float V[FD_N * FD_DIM], s[FD_DIM], qi[FD_DIM], qj[FD_DIM];
    double Vd[FD_N * FD_DIM], sd[FD_DIM], qid[FD_DIM], qjd[FD_DIM];
    for (int k = 0; k < FD_N * FD_DIM; k++) Vd[k] = V[k] = (float)cr_rng_normal(&r);
    for (int k = 0; k < FD_DIM; k++) {
        sd[k] = s[k] = (float)cr_rng_normal(&r);
        qid[k] = qi[k] = (float)(0.3 * cr_rng_normal(&r));
        qjd[k] = qj[k] = (float)(0.3 * cr_rng_normal(&r));
    }
    cr_ptupcdr_ws ws;
    cr_slab g;
    CHECK_OK(cr_ptupcdr_ws_init(&ws, m, FD_N));
    CHECK_OK(cr_slab_like(&g, &m->nets));
    /* the gradient accumulates (+=) and is scaled: start from 1 everywhere, scale 2 */
    for (int64_t k = 0; k < g.size; k++) g.data[k] = 1.0f;
    double loss = cr_ptupcdr_event(m, &ws, &g, V, FD_N, s, qi, qj, 2.0f);
    double *theta = cr_malloc((size_t)m->nets.size * sizeof *theta);
    CHECK(theta);
    for (int64_t k = 0; k < m->nets.size; k++) theta[k] = m->nets.data[k];
    fd_ctx x = {m, Vd, sd, qid, qjd};
    CHECK_NEAR(loss, ref_loss(theta, &x), 1e-4);
    CHECK_MSG(loss > 0.05, "loss %g: saturated, the check would be weak", loss);
    int checked = 0;
    double worst = 0;
    for (int t = 0; t < m->nets.n; t++) {
        const cr_tensor *tt = &m->nets.t[t];
        int64_t n = tt->rows * tt->cols;
        /* the first three entries and the last of every tensor of h and g */
        for (int64_t q = 0; q < 4 && q < n; q++) {
            int64_t k = tt->offset + (q < 3 ? q : n - 1);
            double n1 = central(theta, k, 1e-3, &x), n2 = central(theta, k, 5e-4, &x);
            CHECK_MSG(fabs(n1 - n2) <= 1e-6 + 1e-4 * fabs(n2), "%s: differences at h and h/2 disagree: %.9g vs %.9g",
                      tt->name, n1, n2);
            double analytic = (g.data[k] - 1.0) / 2.0, diff = fabs(analytic - n2);
            CHECK_MSG(diff <= 5e-5 + 5e-4 * fabs(n2), "%s[%lld]: analytic %.9g, numeric %.9g", tt->name,
                      (long long)(k - tt->offset), analytic, n2);
            worst = diff > worst ? diff : worst;
            checked++;
        }
    }
    CHECK_EQ(m->nets.n, 8);
    printf("     loss %.6f; %d parameters of h and g checked, worst |analytic - numeric| %.2g\n", loss, checked, worst);
    cr_free(theta);
    cr_slab_free(&g);
    cr_ptupcdr_ws_free(&ws);
    cr_model_free(&m->base);
}

/* The batched path of the bridge stage (cr_ptupcdr_batch: BLAS products across the batch) against the sum of
 * its events run one by one (cr_ptupcdr_event, checked above against finite differences and NumPy): the same
 * loss and gradient, at dim 16 (products above the BLAS threshold) with histories of 1 to 7 items. */
TEST(ptupcdr_batch_equals_summed_events) {
    enum { D = 16, NB = 5, HMAX = 7 };
    cr_ptupcdr_model *m = NULL;
    CHECK_OK(cr_ptupcdr_new(&m, 1, 1, 2, D, 0));
    cr_rng r;
    cr_rng_seed(&r, 8, 1);
    for (int64_t k = 0; k < m->nets.size; k++) m->nets.data[k] = (float)(0.3 * cr_rng_normal(&r));
    float V[NB * HMAX * D], S[NB * D], QI[NB * D], QJ[NB * D];
    int64_t off[NB + 1] = {0};
    for (int k = 0; k < NB; k++) off[k + 1] = off[k] + 1 + (k * 3) % HMAX;
    for (int64_t k = 0; k < off[NB] * D; k++) V[k] = (float)cr_rng_normal(&r);
    for (int k = 0; k < NB * D; k++) S[k] = (float)cr_rng_normal(&r), QI[k] = (float)(0.3 * cr_rng_normal(&r)),
                                     QJ[k] = (float)(0.3 * cr_rng_normal(&r));
    const float *s[NB], *qi[NB], *qj[NB];
    for (int k = 0; k < NB; k++) s[k] = S + k * D, qi[k] = QI + k * D, qj[k] = QJ + k * D;
    cr_ptupcdr_ws ws;
    cr_ptupcdr_bws bws;
    cr_slab g1, g2;
    CHECK_OK(cr_ptupcdr_ws_init(&ws, m, HMAX));
    CHECK_OK(cr_ptupcdr_bws_init(&bws, m, NB, NB * HMAX));
    CHECK_OK(cr_slab_like(&g1, &m->nets));
    CHECK_OK(cr_slab_like(&g2, &m->nets));
    double l1 = 0;
    for (int k = 0; k < NB; k++) l1 += cr_ptupcdr_event(m, &ws, &g1, V + off[k] * D, off[k + 1] - off[k], s[k], qi[k], qj[k], 0.2f);
    double l2 = cr_ptupcdr_batch(m, &bws, &g2, V, off, NB, s, qi, qj, 0.2f);
    CHECK_NEAR(l1, l2, 1e-5 * fabs(l1));
    double worst = 0, scale = 0;
    for (int64_t k = 0; k < g1.size; k++) worst = fmax(worst, fabs(g1.data[k] - g2.data[k])), scale = fmax(scale, fabs(g1.data[k]));
    printf("     batch of %d events: loss %.6f vs %.6f, max gradient difference %.2g (largest entry %.2g)\n", NB, l1, l2, worst, scale);
    CHECK(scale > 1e-3);
    CHECK_MSG(worst <= 1e-5 * scale + 1e-7, "gradients differ by %.3g", worst);
    cr_slab_free(&g1);
    cr_slab_free(&g2);
    cr_ptupcdr_ws_free(&ws);
    cr_ptupcdr_bws_free(&bws);
    cr_model_free(&m->base);
}

/* ---- bridge steps against NumPy ---- */

/* tools/ref/ptupcdr_step.py (dim 3): a batch of two users' events (histories of 3 and 2 items) through
 * cr_ptupcdr_event with scale 1/B and cr_opt_dense_step, the batch step of fit_ptupcdr.c: each event's attention
 * logits and weights, pooled history c, bridge W_u, mapped vector W_u s and loss; the gradients of h's and g's
 * eight tensors; the weights after Adam's step (t = 1); then a one-event batch from there (t = 2). h's output
 * bias cannot change the softmax, so its gradient is 0 up to rounding, which Adam's normalisation turns into a
 * step of up to lr: its gradient is checked against 0, its value after a step is not compared, and the logits
 * are compared without it (e_j - b1e on each side, which is what the softmax sees). */
TEST(ptupcdr_golden_step) {
    enum { D = 3, MAXN = 4, NT = 8 };
    static const char *const names[NT] = {"enc.w0", "enc.b0", "enc.w1", "enc.b1", "meta.w0", "meta.b0", "meta.w1", "meta.b1"};
    cr_golden g;
    cr_golden_open(&g, "tests/golden/ptupcdr_step.txt");
    CHECK_EQ(cr_golden_int(&g, "dim"), D);
    cr_golden_key(&g, "adam");
    cr_opt_params op = cr_opt_default_params(CR_OPT_ADAM);
    op.lr = (float)cr_golden_num(&g);
    op.weight_decay = (float)cr_golden_num(&g);
    /* the reference's settings are fit_ptupcdr.c's and the optimizer's defaults */
    CHECK(op.lr == CR_PTUPCDR_LR && op.weight_decay == CR_PTUPCDR_WD);
    CHECK(op.beta1 == (float)cr_golden_num(&g) && op.beta2 == (float)cr_golden_num(&g) && op.eps == (float)cr_golden_num(&g));

    cr_ptupcdr_model *m = NULL;
    CHECK_OK(cr_ptupcdr_new(&m, 1, 1, 2, D, 1));
    int idx[NT];
    for (int k = 0; k < NT; k++) {
        char name[48];
        snprintf(name, sizeof name, "ptupcdr.%s", names[k]);
        idx[k] = cr_slab_find(&m->nets, name);
        CHECK(idx[k] >= 0);
        snprintf(name, sizeof name, "init_%s", names[k]);
        const cr_tensor *t = &m->nets.t[idx[k]];
        cr_golden_tensor_f(&g, name, t->rows, t->cols, cr_slab_at(&m->nets, idx[k]));
    }
    CHECK_EQ(m->nets.n, NT);
    cr_ptupcdr_ws ws;
    cr_slab grad;
    cr_optimizer o;
    CHECK_OK(cr_ptupcdr_ws_init(&ws, m, MAXN));
    CHECK_OK(cr_slab_like(&grad, &m->nets));
    CHECK_OK(cr_opt_init(&o, &m->nets, &op));
    double want[D * D * D], b1_ref = cr_slab_at(&m->nets, idx[3])[0];  /* the reference's enc.b1 */
    char name[64];
    for (int step = 1; step <= 2; step++) {
        const int64_t B = cr_golden_int(&g, "events");
        CHECK(B >= 1 && B <= 2);
        memset(grad.data, 0, (size_t)grad.size * sizeof *grad.data);
        double batch = 0;
        for (int64_t ev = 0; ev < B; ev++) {
            cr_golden_key(&g, "history");
            const int64_t n = (int64_t)cr_golden_num(&g);
            CHECK(n >= 1 && n <= MAXN && cr_golden_num(&g) == D);
            float V[MAXN * D], s[D], qi[D], qj[D];
            for (int64_t k = 0; k < n * D; k++) V[k] = (float)cr_golden_num(&g);
            cr_golden_tensor_f(&g, "s", 1, D, s);
            cr_golden_tensor_f(&g, "qi", 1, D, qi);
            cr_golden_tensor_f(&g, "qj", 1, D, qj);
            /* the batch's loss is the events' mean: each event's gradient scaled 1/B, as bridge_epoch does */
            double loss = cr_ptupcdr_event(m, &ws, &grad, V, n, s, qi, qj, 1.0f / (float)B);
            batch += loss / (double)B;
            /* the forward pass's intermediates, left in ws */
            static const char *const fwd[5] = {"e", "a", "c", "bridge", "mapped"};     /* named as in the file */
            const float *got[5] = {ws.e, ws.a, ws.c, ws.w, ws.t};
            const int64_t len[5] = {n, n, D, D * D, D};
            float e[MAXN];     /* the logits without h's output bias, each side's own (see above) */
            for (int64_t j = 0; j < n; j++) e[j] = ws.e[j] - cr_slab_at(&m->nets, idx[3])[0];
            got[0] = e;
            for (int k = 0; k < 5; k++) {
                cr_golden_tensor(&g, fwd[k], k == 3 ? D : 1, k == 3 ? D : len[k], want);
                for (int64_t j = 0; j < n && k == 0; j++) want[j] -= b1_ref;
                snprintf(name, sizeof name, "%d.%lld: %s", step, (long long)ev, fwd[k]);
                cr_golden_cmp(&g, name, got[k], want, len[k], 1e-5, 1e-6);
            }
            double x = 0;      /* <W_u s, qi - qj> from crossrec's mapped vector */
            for (int k = 0; k < D; k++) x += (double)ws.t[k] * ((double)qi[k] - qj[k]);
            want[0] = cr_golden_scalar(&g, "x");
            snprintf(name, sizeof name, "%d.%lld: x", step, (long long)ev);
            cr_golden_cmp_d(&g, name, &x, want, 1, 1e-5, 1e-6);
            want[0] = cr_golden_scalar(&g, "loss");
            snprintf(name, sizeof name, "%d.%lld: loss", step, (long long)ev);
            cr_golden_cmp_d(&g, name, &loss, want, 1, 1e-5, 1e-6);
        }
        want[0] = cr_golden_scalar(&g, "batch_loss");
        snprintf(name, sizeof name, "%d: batch loss", step);
        cr_golden_cmp_d(&g, name, &batch, want, 1, 1e-5, 1e-6);
        for (int k = 0; k < NT; k++) {
            const cr_tensor *t = &m->nets.t[idx[k]];
            char key[48];
            snprintf(key, sizeof key, "grad_%s", names[k]);
            cr_golden_tensor(&g, key, t->rows, t->cols, want);
            snprintf(name, sizeof name, "%d: %s", step, key);
            /* enc.b1: exactly 0 in NumPy, rounding noise here */
            cr_golden_cmp(&g, name, cr_slab_at(&grad, idx[k]), want, t->rows * t->cols, 1e-5, k == 3 ? 1e-8 : 1e-7);
        }
        cr_opt_dense_step(&o, &m->nets, &grad);
        CHECK_EQ(o.step, step);
        for (int k = 0; k < NT; k++) {
            const cr_tensor *t = &m->nets.t[idx[k]];
            cr_golden_tensor(&g, names[k], t->rows, t->cols, want);
            if (k == 3) {      /* enc.b1: see above */
                b1_ref = want[0];
                continue;
            }
            snprintf(name, sizeof name, "%d: %s", step, names[k]);
            cr_golden_cmp(&g, name, cr_slab_at(&m->nets, idx[k]), want, t->rows * t->cols, 1e-5, 1e-6);
        }
    }
    cr_opt_free(&o);
    cr_slab_free(&grad);
    cr_ptupcdr_ws_free(&ws);
    cr_model_free(&m->base);
    cr_golden_done(&g);
}

/* ---- learning on a cold-user split ---- */

TEST(ptupcdr_cold_users_synthetic) {
    cr_dataset *d = cr_test_cdr_data("ptupcdr-cold", 500, 300, 10000, 2, 21);
    int32_t target = cr_test_thinnest_domain(d);
    cr_split *s = cr_test_cold_split(d, target, 0.3);
    const cr_interactions *tr = cr_split_train(s);
    cr_train_params p = ptupcdr_params(target, 16, 20);
    char logp[512];
    snprintf(logp, sizeof logp, "%s", cr_test_path("ptupcdr-cold.tsv"));
    p.log_path = logp;
    p.patience = 0;
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, tr, &p));
    CHECK_STR(cr_model_name(m), "ptupcdr");
    double loss[64];
    int n = cr_test_log_losses(logp, loss, 64);
    CHECK_EQ(n, 20);
    CHECK_MSG(loss[n - 1] < 0.8 * loss[0], "bridge loss %.5f -> %.5f", loss[0], loss[n - 1]);

    /* every test user is cold in the target but has source events, so the bridge represents all of them */
    const cr_ptupcdr_model *pm = (const cr_ptupcdr_model *)m;
    const cr_ground_truth *gt = cr_split_truth(s, CR_PART_TEST);
    CHECK(gt->n_users > 20);
    for (int64_t k = 0; k < gt->n_users; k++) {
        int32_t u = gt->users[k];
        CHECK(pm->tgt_known[u] == 0 && pm->src_known[u] == 1);
    }
    cr_eval_result *r = cr_test_evaluate_at(s, m, 10, 50);
    cr_model rnd = cr_test_random_model(d);
    cr_eval_result *rb = cr_test_evaluate_at(s, &rnd, 10, 50);
    printf("     synthetic cold-user split (target %s, %lld test users): ptupcdr recall@10 %.4f @50 %.4f, random %.4f %.4f; "
           "bridge loss %.5f -> %.5f\n",
           cr_dataset_domain_name(d, target), (long long)r->n_users, r->mean.recall[0], r->mean.recall[1],
           rb->mean.recall[0], rb->mean.recall[1], loss[0], loss[n - 1]);
    CHECK_EQ(r->n_unrepresented, 0);
    CHECK_MSG(r->mean.recall[0] > 2 * rb->mean.recall[0] && r->mean.recall[0] > rb->mean.recall[0] + 0.05,
              "ptupcdr recall@10 %.4f vs random %.4f", r->mean.recall[0], rb->mean.recall[0]);
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
    CHECK_EQ(((const cr_ptupcdr_model *)m)->domain, target);
    r = cr_test_evaluate_at(s, m, 10, 50);
    CHECK_EQ(r->n_unrepresented, 0);
    CHECK(r->mean.recall[0] > 0.05);
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- scores, files ---- */

TEST(ptupcdr_scores_and_save_load) {
    cr_dataset *d = cr_test_cdr_data("ptupcdr-save", 200, 120, 3000, 2, 22);
    const cr_interactions *v = cr_dataset_inter(d);
    int32_t target = 1;
    cr_split *s = cr_test_cold_split(d, target, 0.3);
    const cr_interactions *tr = cr_split_train(s);
    cr_train_params p = ptupcdr_params(target, 8, 2);
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, tr, &p));
    const cr_ptupcdr_model *pm = (const cr_ptupcdr_model *)m;
    CHECK_EQ(pm->dim, 8);
    CHECK_EQ(pm->meta.width[2], 64);
    enum { NU = 200, R = NU + 1, NC = 120 };
    int32_t users[R], cand[NC];
    int64_t hp[R + 1];
    for (int r = 0; r < R; r++) users[r] = r < NU ? r : -1;
    /* ptupcdr reads no history at scoring time: the history-only row gets user 0's events, still unrepresentable */
    for (int r = 0; r <= NU; r++) hp[r] = 0;
    hp[R] = tr->user_ptr[1];
    for (int c = 0; c < NC; c++) cand[c] = (int32_t)((c * 7) % NC);
    cr_score_request q = {R, users, hp, tr->user_items, target, NC, cand};
    float *a = malloc(R * NC * sizeof *a), *b = malloc(R * NC * sizeof *b);
    uint8_t ca[R], cb[R];
    CHECK_OK(cr_model_score(m, &q, a, ca));
    int64_t warm = 0, mapped = 0, none = 0;
    const float *P = cr_slab_at(&pm->factors, 0), *Q = cr_slab_at(&pm->factors, 1), *M = cr_slab_at(&pm->factors, 2);
    for (int r = 0; r < R; r++) {
        int has_t = 0, has_s = 0;
        if (r < NU)
            for (int64_t e = tr->user_ptr[r]; e < tr->user_ptr[r + 1]; e++) {
                if (tr->item_domain[tr->user_items[e]] == target) has_t = 1;
                else has_s = 1;
            }
        CHECK_MSG(ca[r] == (has_t || has_s), "row %d: can %d, target events %d, source events %d", r, ca[r], has_t, has_s);
        const float *vec = has_t ? P + r * 8 : has_s ? M + r * 8 : NULL;
        if (has_t) warm++;
        else if (has_s) {
            double norm = 0;
            for (int k = 0; k < 8; k++) norm += fabs(M[r * 8 + k]);
            CHECK_MSG(norm > 0, "row %d: cold in the target with source events, but no mapped vector", r);
            mapped++;
        } else none++;
        for (int c = 0; c < NC; c++) {
            double want = 0;
            if (vec)
                for (int k = 0; k < 8; k++) want += (double)vec[k] * Q[cand[c] * 8 + k];
            CHECK_NEAR(a[r * NC + c], want, 1e-5);
            if (v->item_domain[cand[c]] != target) CHECK(a[r * NC + c] == 0);
        }
    }
    CHECK(warm > 20 && mapped > 20);
    CHECK(none >= 1 && ca[NU] == 0);
    printf("     %lld rows: %lld by target factors, %lld through the bridge, %lld unrepresented\n", (long long)R,
           (long long)warm, (long long)mapped, (long long)none);

    const char *path = cr_test_path("ptupcdr-save.crm");
    CHECK_OK(cr_model_save(m, path));
    cr_model *l = NULL;
    CHECK_OK(cr_model_load(&l, path));
    CHECK_STR(cr_model_name(l), "ptupcdr");
    CHECK(l->dataset_crc == cr_dataset_file_crc(d) && l->dataset_crc != 0);
    CHECK_OK(cr_model_score(l, &q, b, cb));
    CHECK(!memcmp(a, b, R * NC * sizeof *a));
    CHECK(!memcmp(ca, cb, sizeof ca));
    /* the loaded nets are the trained ones: the bridge gives the same vector */
    const cr_ptupcdr_model *lm = (const cr_ptupcdr_model *)l;
    CHECK(lm->nets.size == pm->nets.size && !memcmp(lm->nets.data, pm->nets.data, (size_t)pm->nets.size * sizeof(float)));
    const char *path2 = cr_test_path("ptupcdr-save2.crm");
    CHECK_OK(cr_model_save(l, path2));
    size_t la, lb;
    char *fa = cr_test_read(path, &la), *fb = cr_test_read(path2, &lb);
    CHECK(la == lb && !memcmp(fa, fb, la));
    free(fa), free(fb);

    /* damaged files name the bad value */
    cr_ptupcdr_model *wm = (cr_ptupcdr_model *)m;
    const char *bad = cr_test_path("ptupcdr-bad.crm");
    float *w1 = cr_slab_at(&wm->nets, wm->meta.w_index[1]), keep = w1[3];
    w1[3] = NAN;
    CHECK_OK(cr_model_save(m, bad));
    cr_model *x = NULL;
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK(x == NULL);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr-bad.crm: ptupcdr.meta.w1[3] = nan is not a finite number");
    w1[3] = keep;
    wm->src_known[7] = 2;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr.src_known[7] = 2 (expected 0 or 1)");
    wm->src_known[7] = 1;
    wm->dim = 300;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr.dim = 300 is outside 1..256");
    wm->dim = 8;
    wm->domain = 2;
    CHECK_OK(cr_model_save(m, bad));
    CHECK_STATUS(cr_model_load(&x, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr.domain = 2 is outside 0..1");
    wm->domain = target;

    free(a), free(b);
    cr_model_free(l);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(ptupcdr_deterministic) {
    cr_dataset *d = cr_test_cdr_data("ptupcdr-det", 200, 120, 3000, 2, 23);
    const cr_interactions *v = cr_dataset_inter(d);
    char *files[3];
    size_t lens[3];
    const int threads[3] = {1, 4, 1};
    const uint64_t seeds[3] = {5, 5, 6};
    for (int t = 0; t < 3; t++) {
        cr_train_params p = ptupcdr_params(0, 8, 2);
        p.threads = threads[t];
        p.seed = seeds[t];
        cr_model *m = NULL;
        CHECK_OK(cr_model_train(&m, d, v, &p));
        const char *path = cr_test_path("ptupcdr-det.crm");
        CHECK_OK(cr_model_save(m, path));
        cr_model_free(m);
        files[t] = cr_test_read(path, &lens[t]);
    }
    CHECK_MSG(lens[0] == lens[1] && !memcmp(files[0], files[1], lens[0]), "two fits with seed 5 differ");
    CHECK_MSG(lens[0] != lens[2] || memcmp(files[0], files[2], lens[0]), "the seed changes nothing");
    for (int t = 0; t < 3; t++) free(files[t]);
    cr_dataset_free(d);
}

TEST(ptupcdr_refuses_bad_input) {
    cr_dataset *d = cr_test_cdr_data("ptupcdr-args", 100, 60, 1000, 2, 24);
    const cr_interactions *v = cr_dataset_inter(d);
    cr_model *m = NULL;
    cr_train_params p = ptupcdr_params(-1, 8, 1);
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr needs a target domain (--domain T)");
    p.domain = 1;
    p.dim = 257;
    CHECK_STATUS(cr_model_train(&m, d, v, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr's dimension must be 1..256");
    CHECK(m == NULL);
    cr_dataset_free(d);
    d = cr_test_cdr_data("ptupcdr-args1", 50, 30, 400, 1, 25);
    p.domain = 0;
    p.dim = 8;
    CHECK_STATUS(cr_model_train(&m, d, cr_dataset_inter(d), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "ptupcdr needs a source domain");
    cr_dataset_free(d);
}

TEST(ptupcdr_alloc_failures_are_clean) {
    cr_dataset *d = cr_test_cdr_data("ptupcdr-fault", 40, 30, 300, 2, 26);
    cr_split *s = cr_test_cold_split(d, 1, 0.3);
    const char *path = cr_test_path("ptupcdr-fault.crm");
    cr_train_params p = ptupcdr_params(-1, 4, 1);
    p.valid = s;
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

/* test_als.c — implicit ALS: the conjugate-gradient row solver against a dense Cholesky solve, one user
 * half-step against a NumPy golden file (tools/ref/als_step.py), the training pairs (merged repeats, dropped
 * cancellations, one domain), fold-in against the training system, learning on synthetic data (recall against
 * random, the objective falling every epoch and equal to an independent computation, fold-in scoring of cold
 * users), byte-identical files at 1 and 2 threads, scores surviving save/load, fault injection, bad parameters,
 * and the real dataset when present.
 *
 * The solver and the half-step are reached through src/train/train_impl.h, the model's arrays through
 * src/models/model_impl.h: the tests check the numbers, not only that training runs. */
#include "test.h"
#include "cdr_fixtures.h"
#include "golden.h"

#include "crossrec/data.h"
#include "crossrec/eval.h"
#include "crossrec/model.h"
#include "crossrec/split.h"
#include "train/train_impl.h"

#include <stdlib.h>

/* ---- dense references (double precision) ---- */

/* Solves A x = b (A symmetric positive definite (n, n), copied) by Cholesky; returns 0, or -1 if A is not PD. */
static int ref_solve(const double *A0, const double *b, int64_t n, double *x) {
    double *L = malloc((size_t)(n * n) * sizeof *L);
    CR_ASSERT(L);
    memcpy(L, A0, (size_t)(n * n) * sizeof *L);
    for (int64_t j = 0; j < n; j++) {
        double d = L[j * n + j];
        for (int64_t k = 0; k < j; k++) d -= L[j * n + k] * L[j * n + k];
        if (!(d > 0)) {
            free(L);
            return -1;
        }
        L[j * n + j] = sqrt(d);
        for (int64_t i = j + 1; i < n; i++) {
            double s = L[i * n + j];
            for (int64_t k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = s / L[j * n + j];
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double s = b[i];
        for (int64_t k = 0; k < i; k++) s -= L[i * n + k] * x[k];
        x[i] = s / L[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        double s = x[i];
        for (int64_t k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
        x[i] = s / L[i * n + i];
    }
    free(L);
    return 0;
}

/* The system of one row, as the model defines it: A = G + sum_k (c_k - 1) f_k f_k^T, b = sum_k c_k p_k f_k with
 * c = 1 + alpha |v|, p = [v > 0]. G (dim, dim) float. */
static void ref_system(const float *G, const float *F, int64_t dim, const int32_t *idx, const float *val, int64_t n,
                       double alpha, double *A, double *b) {
    for (int64_t a = 0; a < dim * dim; a++) A[a] = G[a];
    for (int64_t a = 0; a < dim; a++) b[a] = 0;
    for (int64_t k = 0; k < n; k++) {
        const float *f = F + (int64_t)idx[k] * dim;
        double c = 1.0 + alpha * fabs((double)val[k]), p = val[k] > 0;
        for (int64_t a = 0; a < dim; a++) {
            for (int64_t e = 0; e < dim; e++) A[a * dim + e] += (c - 1) * f[a] * f[e];
            b[a] += c * p * f[a];
        }
    }
}

/* |b - A x| */
static double ref_residual(const double *A, const double *b, const float *x, int64_t dim) {
    double s = 0;
    for (int64_t a = 0; a < dim; a++) {
        double r = b[a];
        for (int64_t e = 0; e < dim; e++) r -= A[a * dim + e] * x[e];
        s += r * r;
    }
    return sqrt(s);
}

/* G = F^T F + reg I in double, rounded to float (the solver's input). */
static void ref_gram(const float *F, int64_t n, int64_t dim, double reg, float *G) {
    for (int64_t a = 0; a < dim; a++)
        for (int64_t e = 0; e < dim; e++) {
            double s = a == e ? reg : 0;
            for (int64_t i = 0; i < n; i++) s += (double)F[i * dim + a] * F[i * dim + e];
            G[a * dim + e] = (float)s;
        }
}

static double max_abs_diff(const float *a, const double *b, int64_t n) {
    double m = 0;
    for (int64_t k = 0; k < n; k++) m = fmax(m, fabs((double)a[k] - b[k]));
    return m;
}

/* ---- the row solver ---- */

TEST(als_cg_matches_direct_solve) {
    enum { DIM = 6, NI = 10, NP = 5 };
    cr_rng r;
    cr_rng_named(&r, 7, "test.als.cg");
    float F[NI * DIM], G[DIM * DIM], x[DIM], scratch[3 * DIM];
    for (int k = 0; k < NI * DIM; k++) F[k] = (float)(0.5 * cr_rng_normal(&r));
    ref_gram(F, NI, DIM, 0.05, G);
    /* five pairs: values 1, 3 (a merged repeat), 0.5, -1 (a dislike), 2 */
    const int32_t idx[NP] = {7, 2, 9, 4, 0};
    const float val[NP] = {1, 3, 0.5f, -1, 2};
    const double alpha = 4;
    double A[DIM * DIM], b[DIM], want[DIM];
    ref_system(G, F, DIM, idx, val, NP, alpha, A, b);
    CHECK_EQ(ref_solve(A, b, DIM, want), 0);

    /* From zero and from a random warm start: CG is exact after dim steps in exact arithmetic; in float, rounding
     * leaves a small error after dim steps (here about 1e-4 of |x|) that the next step or two remove. */
    for (int start = 0; start < 2; start++) {
        float xs[DIM];
        for (int a = 0; a < DIM; a++) xs[a] = start ? (float)cr_rng_normal(&r) : 0.0f;
        double d[2];
        for (int k = 0; k < 2; k++) {
            memcpy(x, xs, sizeof x);
            cr_als_solve_row(G, F, DIM, idx, val, NP, alpha, (k + 1) * DIM, x, scratch);
            d[k] = max_abs_diff(x, want, DIM);
        }
        printf("     CG from a %s start vs Cholesky: max diff %.3g after %d steps, %.3g after %d\n", start ? "random" : "zero",
               d[0], DIM, d[1], 2 * DIM);
        CHECK_MSG(d[0] < 1e-3, "CG after dim steps differs from the direct solve by %g", d[0]);
        CHECK_MSG(d[1] < 1e-5, "CG after 2 dim steps differs from the direct solve by %g", d[1]);
    }

    /* one step from a point away from the solution: the residual must fall, and not to zero */
    float x0[DIM];
    for (int a = 0; a < DIM; a++) x0[a] = x[a] = (float)cr_rng_normal(&r);
    double r0 = ref_residual(A, b, x0, DIM);
    cr_als_solve_row(G, F, DIM, idx, val, NP, alpha, 1, x, scratch);
    double r1 = ref_residual(A, b, x, DIM);
    /* more steps keep improving towards the solution */
    float x2[DIM];
    memcpy(x2, x0, sizeof x2);
    cr_als_solve_row(G, F, DIM, idx, val, NP, alpha, 3, x2, scratch);
    double r3 = ref_residual(A, b, x2, DIM);
    printf("     residual: start %.4g, 1 step %.4g, 3 steps %.4g\n", r0, r1, r3);
    CHECK(r1 < r0);
    CHECK(r1 > 1e-3 * r0);
    CHECK(r3 < r1);

    /* a row without pairs solves G x = 0 */
    for (int a = 0; a < DIM; a++) x[a] = 1.0f;
    cr_als_solve_row(G, F, DIM, idx, val, 0, alpha, DIM, x, scratch);
    for (int a = 0; a < DIM; a++) CHECK_NEAR(x[a], 0, 1e-5);
    /* an already solved row stays put (r.r below the threshold: no step, no division by zero) */
    for (int a = 0; a < DIM; a++) x[a] = 0.0f;
    cr_als_solve_row(G, F, DIM, idx, val, 0, alpha, DIM, x, scratch);
    for (int a = 0; a < DIM; a++) CHECK(x[a] == 0.0f);
}

/* ---- training pairs ---- */

/* A hand-built interactions view: events (user, item, value) given by user in order. */
typedef struct {
    cr_interactions v;
    int64_t user_ptr[8];
    int32_t items[32];
    float values[32];
    int32_t item_domain[8];
} hand_inter;

static void hand_init(hand_inter *h, int64_t n_users, int64_t n_items, const int *ev, int n_ev, const int32_t *domains) {
    memset(h, 0, sizeof *h);
    CR_ASSERT(n_users < 8 && n_items <= 8 && n_ev <= 32);
    for (int e = 0; e < n_ev; e++) {
        h->user_ptr[ev[3 * e] + 1]++;
        h->items[e] = ev[3 * e + 1];
        h->values[e] = (float)ev[3 * e + 2];
        if (e) CR_ASSERT(ev[3 * e] >= ev[3 * (e - 1)]);
    }
    for (int u = 0; u < n_users; u++) h->user_ptr[u + 1] += h->user_ptr[u];
    for (int i = 0; i < n_items; i++) h->item_domain[i] = domains ? domains[i] : 0;
    h->v.n_users = n_users, h->v.n_items = n_items, h->v.n_domains = 2, h->v.n_inter = n_ev;
    h->v.user_ptr = h->user_ptr, h->v.user_items = h->items, h->v.user_values = h->values;
    h->v.item_domain = h->item_domain;
}

TEST(als_pairs_merge_repeats_and_keep_one_domain) {
    /* u0: i1 i0 i1 (repeat)   u1: i2 +1, i2 -1 (cancel), i3 -2   u2: none   u3: i0 */
    const int ev[] = {0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 2, 1, 1, 2, -1, 1, 3, -2, 3, 0, 1};
    const int32_t dom[4] = {0, 1, 1, 0};
    hand_inter h;
    hand_init(&h, 4, 4, ev, 7, dom);
    cr_als_data a;
    CHECK_OK(cr_als_data_init(&a, &h.v, -1));
    CHECK_EQ(a.nnz, 4);
    /* by user, items in order of first event, values summed */
    const int64_t uptr[5] = {0, 2, 3, 3, 4};
    const int32_t uidx[4] = {1, 0, 3, 0};
    const float uval[4] = {2, 1, -2, 1};
    for (int k = 0; k < 5; k++) CHECK_EQ(a.u_ptr[k], uptr[k]);
    for (int k = 0; k < 4; k++) {
        CHECK_EQ(a.u_idx[k], uidx[k]);
        CHECK(a.u_val[k] == uval[k]);
    }
    /* by item, users ascending */
    const int64_t iptr[5] = {0, 2, 3, 3, 4};
    const int32_t iidx[4] = {0, 3, 0, 1};
    const float ival[4] = {1, 1, 2, -2};
    for (int k = 0; k < 5; k++) CHECK_EQ(a.i_ptr[k], iptr[k]);
    for (int k = 0; k < 4; k++) {
        CHECK_EQ(a.i_idx[k], iidx[k]);
        CHECK(a.i_val[k] == ival[k]);
    }
    cr_als_data_free(&a);
    /* domain 1 (items 1, 2): u0's i1 only (u1's i2 cancels) */
    CHECK_OK(cr_als_data_init(&a, &h.v, 1));
    CHECK_EQ(a.nnz, 1);
    CHECK_EQ(a.u_ptr[1], 1);
    CHECK_EQ(a.u_ptr[4], 1);
    CHECK_EQ(a.u_idx[0], 1);
    CHECK(a.u_val[0] == 2);
    CHECK_EQ(a.i_ptr[1], 0);
    CHECK_EQ(a.i_ptr[2], 1);
    cr_als_data_free(&a);
    for (int64_t n = 1; n <= 8; n++) {
        cr_alloc_fail_nth(n);
        cr_status st = cr_als_data_init(&a, &h.v, -1);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        CHECK(st == (hit ? CR_ERR_NOMEM : CR_OK));
        cr_als_data_free(&a);
    }
}

/* ---- golden half-step ---- */

TEST(als_golden_step) {
    cr_golden g;
    cr_golden_open(&g, "tests/golden/als_step.txt");
    const int64_t dim = cr_golden_int(&g, "dim");
    const double alpha = cr_golden_scalar(&g, "alpha");
    const double reg = cr_golden_scalar(&g, "reg");
    const int64_t ni = cr_golden_int(&g, "items");
    CHECK(dim == 3 && ni == 5);
    float Y[5 * 3], X[4 * 3], scratch[2 * 3 * 3], gram[9];
    for (int64_t k = 0; k < ni * dim; k++) Y[k] = (float)cr_golden_num(&g);
    const int64_t nu = cr_golden_int(&g, "users");
    CHECK(nu == 4);
    for (int64_t k = 0; k < nu * dim; k++) X[k] = (float)cr_golden_num(&g);
    const int n_ev = (int)cr_golden_int(&g, "events");
    CHECK(n_ev <= 32);
    int ev[3 * 32];
    for (int e = 0; e < 3 * n_ev; e++) ev[e] = (int)cr_golden_num(&g);
    const double objective = cr_golden_scalar(&g, "objective");
    CHECK_EQ(cr_golden_int(&g, "solution"), nu);
    double want[4 * 3];
    for (int64_t k = 0; k < nu * dim; k++) want[k] = cr_golden_num(&g);

    hand_inter h;
    hand_init(&h, nu, ni, ev, n_ev, NULL);
    cr_als_data a;
    CHECK_OK(cr_als_data_init(&a, &h.v, -1));
    double row_loss[4];
    for (int threads = 1; threads <= 2; threads++) {
        float X1[4 * 3];
        memcpy(X1, X, sizeof X1);
        cr_als_step s = {.dim = dim, .cg_steps = dim, .alpha = alpha, .reg = reg, .threads = threads, .gram = gram,
                         .scratch = scratch, .row_loss = row_loss};
        cr_als_half_step(&s, Y, ni, a.u_ptr, a.u_idx, a.u_val, nu, X1);
        /* the objective: users' parts plus reg |Y|^2 */
        double obj = 0, yy = 0;
        for (int64_t u = 0; u < nu; u++) obj += row_loss[u];
        for (int64_t k = 0; k < ni * dim; k++) yy += (double)Y[k] * Y[k];
        obj += reg * yy;
        /* conjugate gradient in float, exact after dim steps up to rounding: 1e-4 absolute on the factors */
        cr_golden_cmp(&g, threads == 1 ? "solution (1 thread)" : "solution (2 threads)", X1, want, nu * dim, 0, 1e-4);
        cr_golden_cmp_d(&g, threads == 1 ? "objective (1 thread)" : "objective (2 threads)", &obj, &objective, 1, 1e-4, 0);
    }
    cr_als_data_free(&a);
    cr_golden_done(&g);
}

/* ---- datasets and models ---- */

/* A synthetic dataset with two domains (books, music), saved and loaded (splits need a .crd). */
static cr_dataset *synth_two_domains(const char *name, int64_t users, int64_t items, int64_t inter, uint64_t seed) {
    return cr_test_cdr_data(name, users, items, inter, 2, seed);
}

static cr_train_params als_params(int64_t dim, int64_t epochs, int32_t domain, int threads) {
    cr_train_params p = cr_train_default_params();
    p.model = "als";
    p.dim = dim;
    p.epochs = epochs;
    p.domain = domain;
    p.threads = threads;
    p.quiet = 1;
    return p;
}

static const float *item_factors(const cr_mf_model *m) { return cr_slab_at(&m->params, cr_slab_find(&m->params, "item")); }

/* ---- fold-in ---- */

TEST(als_fold_in_matches_training_solve) {
    cr_dataset *d = synth_two_domains("als-foldin", 200, 150, 3000, 11);
    const cr_interactions *v = cr_dataset_inter(d);
    const int64_t dim = 8;
    for (int32_t domain = -1; domain <= 1; domain++) {
        cr_train_params p = als_params(dim, 3, domain, 1);
        cr_model *mm = NULL;
        CHECK_OK(cr_model_train(&mm, d, v, &p));
        const cr_mf_model *m = (const cr_mf_model *)mm;
        const float *Y = item_factors(m);
        CHECK(m->fold_in == 1 && m->reg == 0.01 && m->als_alpha == 40 && m->domain == domain);
        /* yty = Y^T Y + reg I */
        float G[8 * 8];
        ref_gram(Y, v->n_items, dim, m->reg, G);
        for (int64_t k = 0; k < dim * dim; k++) CHECK_NEAR(m->yty[k], G[k], 1e-4 * (1 + fabs(G[k])));
        /* items outside the trained domain are exactly zero */
        for (int64_t i = 0; i < v->n_items; i++)
            if (domain >= 0 && v->item_domain[i] != domain)
                for (int64_t k = 0; k < dim; k++) CHECK(Y[i * dim + k] == 0.0f);

        int checked = 0;
        for (int32_t u = 0; u < v->n_users && checked < 20; u++) {
            int64_t b = v->user_ptr[u], n = v->user_ptr[u + 1] - b;
            const int32_t *hist = v->user_items + b;
            /* the training pairs of this history: items of the trained domain(s), counted (value 1 each) */
            int32_t idx[256];
            float val[256];
            int64_t np = 0, n_in = 0;
            for (int64_t e = 0; e < n && n < 256; e++) {
                if (domain >= 0 && v->item_domain[hist[e]] != domain) continue;
                n_in++;
                int64_t k = 0;
                while (k < np && idx[k] != hist[e]) k++;
                if (k == np) idx[np] = hist[e], val[np++] = 0;
                val[k] += 1;
            }
            if (n >= 256) continue;
            float x[8], xs[8] = {0}, scratch[3 * 8];
            int ok = cr_mf_fold_in(m, hist, n, x);
            CHECK_EQ(ok, n_in > 0);
            CHECK_EQ(m->user_known[u], n_in > 0);
            if (!ok) {
                for (int64_t k = 0; k < dim; k++) CHECK(x[k] == 0.0f);
                continue;
            }
            double A[8 * 8], rb[8], want[8];
            ref_system(m->yty, Y, dim, idx, val, np, m->als_alpha, A, rb);
            CHECK_EQ(ref_solve(A, rb, dim, want), 0);
            cr_als_solve_row(m->yty, Y, dim, idx, val, np, m->als_alpha, 4 * dim, xs, scratch);
            double scale = 0;
            for (int64_t k = 0; k < dim; k++) scale = fmax(scale, fabs(want[k]));
            CHECK_MSG(max_abs_diff(x, want, dim) < 1e-4 * (1 + scale), "user %d: fold-in differs from the direct solve by %g",
                      u, max_abs_diff(x, want, dim));
            double xd[8];
            for (int64_t k = 0; k < dim; k++) xd[k] = x[k];
            CHECK_MSG(max_abs_diff(xs, xd, dim) < 1e-4 * (1 + scale), "user %d: fold-in differs from the CG solve by %g", u,
                      max_abs_diff(xs, xd, dim));
            /* scoring a history-only row uses exactly this vector */
            int32_t cand[3] = {0, 1, (int32_t)v->n_items - 1}, none = -1;
            int64_t hp[2] = {0, n};
            cr_score_request q = {1, &none, hp, hist, -1, 3, cand};
            float s[3];
            uint8_t can = 0;
            CHECK_OK(cr_model_score(mm, &q, s, &can));
            CHECK_EQ(can, 1);
            for (int c = 0; c < 3; c++) {
                double ref = 0;
                for (int64_t k = 0; k < dim; k++) ref += (double)x[k] * Y[(int64_t)cand[c] * dim + k];
                CHECK_NEAR(s[c], ref, 1e-5 * (1 + fabs(ref)));
            }
            checked++;
        }
        CHECK(checked >= 10);

        /* items without factors are ignored: a history of only such items cannot be represented, and adding them
         * to a history changes nothing */
        int32_t zero_items[4], nz = 0, some = -1;
        for (int32_t i = 0; i < v->n_items; i++) {
            int z = 1;
            for (int64_t k = 0; k < dim; k++) z &= Y[(int64_t)i * dim + k] == 0.0f;
            if (z && nz < 4) zero_items[nz++] = i;
            if (!z && some < 0) some = i;
        }
        float x1[8], x2[8];
        CHECK(some >= 0);
        CHECK_EQ(cr_mf_fold_in(m, &some, 1, x1), 1);
        if (nz > 0) {
            CHECK_EQ(cr_mf_fold_in(m, zero_items, nz, x2), 0);
            int32_t mixed[5];
            memcpy(mixed, zero_items, (size_t)nz * sizeof *mixed);
            mixed[nz] = some;
            CHECK_EQ(cr_mf_fold_in(m, mixed, nz + 1, x2), 1);
            CHECK(!memcmp(x1, x2, sizeof x1));
        }
        CHECK(domain < 0 || nz > 0);    /* the target-only models have zero items to try */
        CHECK_EQ(cr_mf_fold_in(m, NULL, 0, x2), 0);
        /* a repeated item counts more: its confidence grows */
        int32_t twice[2] = {some, some};
        CHECK_EQ(cr_mf_fold_in(m, twice, 2, x2), 1);
        CHECK(memcmp(x1, x2, sizeof x1));
        cr_model_free(mm);
    }
    cr_dataset_free(d);
}

/* ---- learning ---- */

/* The objective L (fit_als.c) of a model on training pairs, by brute force over all (user, item) pairs. */
static double brute_objective(const cr_mf_model *m, const cr_als_data *a) {
    const float *X = cr_slab_at(&m->params, cr_slab_find(&m->params, "user")), *Y = item_factors(m);
    const int64_t dim = m->dim;
    double L = 0, reg2 = 0;
    for (int64_t u = 0; u < a->n_users; u++) {
        int64_t k = a->u_ptr[u];
        for (int64_t i = 0; i < a->n_items; i++) {
            double s = 0;
            for (int64_t e = 0; e < dim; e++) s += (double)X[u * dim + e] * Y[i * dim + e];
            double c = 1, p = 0;
            /* pairs of u in order of first event: look the item up */
            for (int64_t j = k; j < a->u_ptr[u + 1]; j++)
                if (a->u_idx[j] == i) c = 1 + m->als_alpha * fabs((double)a->u_val[j]), p = a->u_val[j] > 0;
            L += c * (p - s) * (p - s);
        }
    }
    for (int64_t k = 0; k < (a->n_users + a->n_items) * dim; k++) {
        double w = k < a->n_users * dim ? X[k] : Y[k - a->n_users * dim];
        reg2 += w * w;
    }
    return L + m->reg * reg2;
}

/* Reads the loss column of a training log (epoch loss valid seconds); returns the number of rows. */
static int read_losses(const char *path, double *loss, int cap) {
    char *text = cr_test_read(path, NULL);
    CHECK_MSG(text, "no training log at %s", path);
    int n = 0;
    char *line = strchr(text, '\n');
    while (line && line[1] && n < cap) {
        long long e;
        double l;
        CHECK(sscanf(line + 1, "%lld\t%lf", &e, &l) == 2);
        CHECK_EQ(e, n + 1);
        loss[n++] = l;
        line = strchr(line + 1, '\n');
    }
    free(text);
    return n;
}

static char *file_bytes(const char *path, size_t *len) {
    char *b = cr_test_read(path, len);
    CHECK_MSG(b, "cannot read %s", path);
    return b;
}

TEST(als_learns) {
    cr_dataset *d = synth_two_domains("als-learn", 500, 300, 10000, 5);
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = "music";
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    const cr_interactions *train = cr_split_train(s);
    const int64_t epochs = 8;

    cr_model *m[2] = {NULL, NULL};
    char *bytes[2];
    size_t len[2];
    for (int t = 0; t < 2; t++) {
        cr_train_params p = als_params(32, epochs, -1, t + 1);
        p.patience = 0;
        p.log_path = cr_test_path(t ? "als-learn-2.tsv" : "als-learn-1.tsv");
        CHECK_OK(cr_model_train(&m[t], d, train, &p));
        const char *path = cr_test_path(t ? "als-learn-2.crm" : "als-learn-1.crm");
        CHECK_OK(cr_model_save(m[t], path));
        bytes[t] = file_bytes(path, &len[t]);
    }
    CHECK_MSG(len[0] == len[1] && !memcmp(bytes[0], bytes[1], len[0]), "ALS trained with 2 threads differs from 1 thread");
    free(bytes[0]);
    free(bytes[1]);

    /* the objective falls every epoch, and the last reported value is the objective of the model */
    double loss[32];
    CHECK_EQ(read_losses(cr_test_path("als-learn-1.tsv"), loss, 32), epochs);
    printf("     objective / pair:");
    for (int e = 0; e < epochs; e++) printf(" %.4f", loss[e]);
    printf("\n");
    for (int e = 1; e < epochs; e++) CHECK_MSG(loss[e] <= loss[e - 1] * (1 + 1e-6), "loss rose at epoch %d", e + 1);
    CHECK(loss[epochs - 1] < 0.8 * loss[0]);
    cr_als_data a;
    CHECK_OK(cr_als_data_init(&a, train, -1));
    double brute = brute_objective((const cr_mf_model *)m[0], &a) / (double)a.nnz;
    printf("     last epoch: reported %.6f, brute force %.6f\n", loss[epochs - 1], brute);
    CHECK_NEAR(loss[epochs - 1], brute, 1e-5 * brute + 1e-6);   /* the log keeps 6 decimals */
    cr_als_data_free(&a);

    /* recall@10 of the cold test users against a random ranking (expected K / candidates) and popularity */
    int64_t n_cand;
    cr_split_candidates(s, &n_cand);
    cr_eval_params ep = cr_eval_default_params();
    ep.threads = 1;
    cr_eval_result *r = NULL, *rf = NULL, *rp = NULL;
    CHECK_OK(cr_evaluate(s, m[0], &ep, &r));
    CHECK(r->n_users > 20);
    CHECK_EQ(r->n_unrepresented, 0);
    /* the same users folded in from their histories (as if they were unknown to the model) */
    cr_mf_model *mf = (cr_mf_model *)m[1];
    memset(mf->user_known, 0, (size_t)mf->base.n_users);
    CHECK_OK(cr_evaluate(s, m[1], &ep, &rf));
    CHECK_EQ(rf->n_unrepresented, 0);
    cr_train_params pp = cr_train_default_params();
    pp.model = "pop";
    cr_model *pop = NULL;
    CHECK_OK(cr_model_train(&pop, d, train, &pp));
    CHECK_OK(cr_evaluate(s, pop, &ep, &rp));
    double random = 10.0 / (double)n_cand;
    printf("     recall@10 on %lld cold users: als %.4f, als folded in %.4f, pop %.4f, random %.4f (%lld candidates)\n",
           (long long)r->n_users, r->mean.recall[0], rf->mean.recall[0], rp->mean.recall[0], random, (long long)n_cand);
    CHECK(r->mean.recall[0] > 2 * random);
    CHECK(rf->mean.recall[0] > 2 * random);
    cr_eval_result_free(r);
    cr_eval_result_free(rf);
    cr_eval_result_free(rp);
    cr_model_free(pop);
    cr_model_free(m[0]);
    cr_model_free(m[1]);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* With validation users the loop keeps the best epoch; the fold-in matrix must follow the kept factors. */
TEST(als_validation_keeps_fold_in_consistent) {
    cr_dataset *d = synth_two_domains("als-valid", 300, 200, 5000, 9);
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = "music";
    sp.valid_share = 0.5;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    cr_train_params p = als_params(16, 6, -1, 2);
    p.valid = s;
    p.patience = 2;
    cr_model *mm = NULL;
    CHECK_OK(cr_model_train(&mm, d, cr_split_train(s), &p));
    const cr_mf_model *m = (const cr_mf_model *)mm;
    float G[16 * 16];
    ref_gram(item_factors(m), m->base.n_items, m->dim, m->reg, G);
    for (int64_t k = 0; k < m->dim * m->dim; k++) CHECK_NEAR(m->yty[k], G[k], 1e-4 * (1 + fabs(G[k])));
    cr_model_free(mm);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- files ---- */

TEST(als_save_load_identical_scores) {
    cr_dataset *d = synth_two_domains("als-saveload", 120, 80, 1500, 3);
    const cr_interactions *v = cr_dataset_inter(d);
    for (int32_t domain = -1; domain <= 0; domain++) {
        cr_train_params p = als_params(12, 3, domain, 2);
        cr_model *m = NULL, *l = NULL;
        CHECK_OK(cr_model_train(&m, d, v, &p));
        const char *path = cr_test_path("als-saveload.crm");
        CHECK_OK(cr_model_save(m, path));
        CHECK_OK(cr_model_load(&l, path));
        CHECK_STR(cr_model_name(l), "als");
        /* rows: every known user by index, then every user by history only (folded in) */
        int64_t nr = 2 * v->n_users, nc = v->n_items;
        int32_t *users = malloc((size_t)nr * sizeof *users), *cand = malloc((size_t)nc * sizeof *cand);
        int64_t *hp = malloc(((size_t)nr + 1) * sizeof *hp);
        int32_t *hist = malloc((size_t)(2 * v->n_inter) * sizeof *hist);
        hp[0] = 0;
        for (int64_t r = 0; r < nr; r++) {
            int64_t u = r % v->n_users;
            users[r] = r < v->n_users ? (int32_t)u : -1;
            int64_t n = v->user_ptr[u + 1] - v->user_ptr[u];
            memcpy(hist + hp[r], v->user_items + v->user_ptr[u], (size_t)n * sizeof *hist);
            hp[r + 1] = hp[r] + n;
        }
        for (int64_t c = 0; c < nc; c++) cand[c] = (int32_t)c;
        cr_score_request q = {nr, users, hp, hist, -1, nc, cand};
        float *s0 = malloc((size_t)(nr * nc) * sizeof *s0), *s1 = malloc((size_t)(nr * nc) * sizeof *s1);
        uint8_t *c0 = malloc((size_t)nr), *c1 = malloc((size_t)nr);
        CHECK_OK(cr_model_score(m, &q, s0, c0));
        CHECK_OK(cr_model_score(l, &q, s1, c1));
        CHECK(!memcmp(c0, c1, (size_t)nr));
        int64_t folded = 0;
        for (int64_t r = 0; r < nr; r++) {
            if (c0[r]) CHECK(!memcmp(s0 + r * nc, s1 + r * nc, (size_t)nc * sizeof *s0));
            folded += r >= v->n_users && c0[r];
        }
        CHECK(folded > v->n_users / 2);
        printf("     domain %d: %lld of %lld users folded in, scores identical after save/load\n", domain, (long long)folded,
               (long long)v->n_users);
        free(users), free(cand), free(hp), free(hist), free(s0), free(s1), free(c0), free(c1);
        cr_model_free(m);
        cr_model_free(l);
    }
    cr_dataset_free(d);
}

TEST(als_alloc_failures_are_clean) {
    cr_dataset *d = synth_two_domains("als-fault", 20, 16, 120, 4);
    const cr_interactions *v = cr_dataset_inter(d);
    const char *path = cr_test_path("als-fault.crm");
    cr_train_params p = als_params(4, 2, -1, 2);     /* 2 threads: the per-thread scratch is allocated too */
    int32_t cand[16], hist[3] = {0, 5, 5}, users[2] = {0, -1};
    for (int c = 0; c < 16; c++) cand[c] = c;
    int64_t hp[3] = {0, 0, 3};
    cr_score_request q = {2, users, hp, hist, -1, 16, cand};
    float want[32];
    uint8_t want_can[2];
    {
        cr_model *m = NULL;
        CHECK_OK(cr_model_train(&m, d, v, &p));
        CHECK_OK(cr_model_score(m, &q, want, want_can));
        CHECK(want_can[0] == 1 && want_can[1] == 1);
        cr_model_free(m);
    }
    int64_t n;
    for (n = 1; n < 100000; n++) {
        remove(path);
        cr_alloc_fail_nth(n);
        cr_model *m = NULL, *l = NULL;
        cr_status st = cr_model_train(&m, d, v, &p);
        if (st == CR_OK) st = cr_model_save(m, path);
        if (st == CR_OK) st = cr_model_load(&l, path);
        float s[32];
        uint8_t can[2];
        if (st == CR_OK) st = cr_model_score(l, &q, s, can);
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
        /* a failure that is not reported must not change the answer (a fold-in that could not allocate) */
        if (st == CR_OK)
            CHECK_MSG(!memcmp(can, want_can, 2) && !memcmp(s, want, sizeof s), "failing allocation %lld changed the scores",
                      (long long)n);
    }
    CHECK(n > 10);
    cr_dataset_free(d);
}

TEST(als_bad_params) {
    cr_dataset *d = synth_two_domains("als-bad", 20, 16, 120, 4);
    const cr_interactions *v = cr_dataset_inter(d);
    struct {
        const char *word;
        cr_train_params p;
    } cases[8];
    int n = 0;
    cases[n].p = als_params(4, 2, -1, 1), cases[n].p.cg_steps = 0, cases[n++].word = "conjugate-gradient";
    cases[n].p = als_params(4, 2, -1, 1), cases[n].p.als_alpha = -1, cases[n++].word = "alpha";
    cases[n].p = als_params(4, 2, -1, 1), cases[n].p.als_alpha = NAN, cases[n++].word = "alpha";
    cases[n].p = als_params(0, 2, -1, 1), cases[n++].word = "dimension";
    cases[n].p = als_params(4, 0, -1, 1), cases[n++].word = "epochs";
    cases[n].p = als_params(4, 2, 2, 1), cases[n++].word = "domain";
    cases[n].p = als_params(4, 2, -1, 1), cases[n].p.reg = INFINITY, cases[n++].word = "regularisation";
    cases[n].p = als_params(4, 2, -1, -1), cases[n++].word = "threads";
    for (int k = 0; k < n; k++) {
        cr_model *m = (cr_model *)&cases[k];     /* must be reset to NULL */
        CHECK_STATUS(cr_model_train(&m, d, v, &cases[k].p), CR_ERR_ARG);
        CHECK(m == NULL);
        CHECK_CONTAINS(cr_errmsg(), cases[k].word);
    }
    /* reg 0 and alpha 0 are allowed; a negative reg means the default 0.01 */
    cr_train_params p = als_params(4, 2, -1, 1);
    p.reg = 0;
    p.als_alpha = 0;
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, v, &p));
    CHECK(((cr_mf_model *)m)->reg == 0);
    cr_model_free(m);
    p = als_params(4, 2, -1, 1);
    p.reg = -5;
    CHECK_OK(cr_model_train(&m, d, v, &p));
    CHECK(((cr_mf_model *)m)->reg == 0.01);
    cr_model_free(m);
    cr_dataset_free(d);
}

/* ---- the real dataset ---- */

TEST(als_shared_amazon_cold_user_office) {
    cr_dataset *d = NULL;
    cr_split *s = NULL;
    cr_test_amazon_cold_split("office", "als-aao.crd", &d, &s);
    cr_train_params p = als_params(64, 10, -1, 0);
    p.patience = 0;     /* all 10 epochs, timed */
    p.quiet = 0;
    cr_model *m = NULL;
    double t0 = cr_now();
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
    double secs = cr_now() - t0;
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 10, ep.ks[1] = 50, ep.n_k = 2;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    CHECK_EQ(r->n_users, 1000);
    printf("     als (dim 64, alpha 40, reg 0.01, 3 CG steps, 10 epochs): %.2f s training (%.3f s/epoch) | recall@10 %.4f "
           "ndcg@10 %.4f | recall@50 %.4f ndcg@50 %.4f | %lld unrepresented\n",
           secs, secs / 10, r->mean.recall[0], r->mean.ndcg[0], r->mean.recall[1], r->mean.ndcg[1],
           (long long)r->n_unrepresented);
    CHECK(r->mean.recall[1] > 0);
    cr_eval_result_free(r);
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

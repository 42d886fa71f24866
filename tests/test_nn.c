/* test_nn.c — the dense layers of src/train/nn.c against central differences.
 *
 * Each test takes a scalar loss of the layer's output (a fixed random weighting sum_k c_k y_k, or the MSE
 * itself), computes it with an independent double-precision reference of the forward pass, and compares every
 * analytic gradient entry with the central difference (L(θ + h) - L(θ - h)) / 2h. "Double-checked": the
 * difference is taken at two step sizes, h and h/2, which must agree with each other (the reference is smooth
 * there, so a disagreement means a kink or a bad reference) and both with the analytic value. Shapes are odd
 * and unequal so that a transposed index cannot pass. Gradient buffers start non-zero, to check that the
 * backward passes accumulate (+=). */
#include "test.h"

#include "core/nn.h"

#include <stdlib.h>

#define FD_H 1e-3

/* Central difference of f at theta[k] with step h, theta restored. */
typedef double (*loss_fn)(const double *theta, const void *ctx);

static double central(loss_fn f, double *theta, int64_t k, double h, const void *ctx) {
    double save = theta[k];
    theta[k] = save + h;
    double lp = f(theta, ctx);
    theta[k] = save - h;
    double lm = f(theta, ctx);
    theta[k] = save;
    return (lp - lm) / (2 * h);
}

/* Compares analytic[k] for k in [0, n) with the central differences of f at theta[off + k]; returns the worst
 * |analytic - numeric|. */
static double check_grad(const char *what, loss_fn f, double *theta, int64_t off, const double *analytic, int64_t n,
                         const void *ctx) {
    double worst = 0;
    for (int64_t k = 0; k < n; k++) {
        double n1 = central(f, theta, off + k, FD_H, ctx), n2 = central(f, theta, off + k, FD_H / 2, ctx);
        CHECK_MSG(fabs(n1 - n2) <= 1e-6 + 1e-4 * fabs(n2), "%s[%lld]: differences at h and h/2 disagree: %.9g vs %.9g", what,
                  (long long)k, n1, n2);
        double diff = fabs(analytic[k] - n2);
        CHECK_MSG(diff <= 2e-5 + 2e-4 * fabs(n2), "%s[%lld]: analytic %.9g, numeric %.9g", what, (long long)k, analytic[k], n2);
        if (diff > worst) worst = diff;
    }
    return worst;
}

static void fill_normal(float *x, double *xd, int64_t n, double scale, cr_rng *r) {
    for (int64_t k = 0; k < n; k++) {
        x[k] = (float)(scale * cr_rng_normal(r));
        if (xd) xd[k] = x[k];
    }
}

/* ---- linear ---- */

enum { LB = 3, LIN = 5, LOUT = 7 };

/* theta = (x (LB, LIN), w (LOUT, LIN), b (LOUT)); ctx = c (LB, LOUT); L = sum c * (x W^T + b) */
static double linear_loss(const double *theta, const void *ctx) {
    const double *x = theta, *w = x + LB * LIN, *b = w + LOUT * LIN, *c = ctx;
    double L = 0;
    for (int r = 0; r < LB; r++)
        for (int o = 0; o < LOUT; o++) {
            double y = b[o];
            for (int k = 0; k < LIN; k++) y += x[r * LIN + k] * w[o * LIN + k];
            L += c[r * LOUT + o] * y;
        }
    return L;
}

TEST(nn_linear_finite_difference) {
    enum { NX = LB * LIN, NW = LOUT * LIN, NB = LOUT, N = NX + NW + NB };
    cr_rng r;
    cr_rng_named(&r, 11, "test.nn.linear");
    float f[N], c[LB * LOUT], y[LB * LOUT];
    double theta[N], cd[LB * LOUT];
    fill_normal(f, theta, N, 1.0, &r);
    fill_normal(c, cd, LB * LOUT, 1.0, &r);
    const float *x = f, *w = f + NX, *b = f + NX + NW;
    cr_linear_forward(y, x, w, b, LB, LIN, LOUT);
    double L = 0;
    for (int k = 0; k < LB * LOUT; k++) L += (double)c[k] * y[k];
    CHECK_NEAR(L, linear_loss(theta, cd), 1e-4);
    /* gradients start at 0.25: the pass must add to them */
    float g[N];
    for (int k = 0; k < N; k++) g[k] = 0.25f;
    cr_linear_backward(g, g + NX, g + NX + NW, c, x, w, LB, LIN, LOUT);
    double an[N];
    for (int k = 0; k < N; k++) an[k] = g[k] - 0.25;
    double worst = check_grad("dx", linear_loss, theta, 0, an, NX, cd);
    worst = fmax(worst, check_grad("dw", linear_loss, theta, NX, an + NX, NW, cd));
    worst = fmax(worst, check_grad("db", linear_loss, theta, NX + NW, an + NX + NW, NB, cd));
    printf("     linear (%d x %d -> %d): max |analytic - central difference| = %.3g\n", LB, LIN, LOUT, worst);
    /* dx may be NULL, and the parameter gradients do not depend on it */
    float g2[N];
    memset(g2, 0, sizeof g2);
    cr_linear_backward(NULL, g2 + NX, g2 + NX + NW, c, x, w, LB, LIN, LOUT);
    for (int k = NX; k < N; k++) CHECK_NEAR(g2[k], an[k], 1e-6);
}

/* The BLAS path of the linear layer (products of 2^14 multiply-adds and more) against the scalar reference,
 * on odd shapes on both sides of the threshold, gradients accumulated onto non-zero starting values. */
TEST(nn_linear_blas_matches_reference) {
    const int64_t shapes[][3] = {{1, 7, 5}, {3, 40, 150}, {33, 64, 4096 / 8}, {32, 64, 64}, {5, 129, 31}};
    cr_rng r;
    cr_rng_named(&r, 12, "test.nn.linear.blas");
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int64_t B = shapes[t][0], in = shapes[t][1], out = shapes[t][2];
        int64_t nx = B * in, nw = out * in, ny = B * out;
        float *buf = cr_malloc((size_t)(3 * nx + 3 * nw + 3 * out + 3 * ny) * sizeof(float));
        CHECK(buf);
        float *x = buf, *w = x + nx, *b = w + nw, *dy = b + out, *y = dy + ny, *y_ref = y + ny;
        float *dx = y_ref + ny, *dx_ref = dx + nx, *dw = dx_ref + nx, *dw_ref = dw + nw, *db = dw_ref + nw, *db_ref = db + out;
        for (int64_t k = 0; k < nx; k++) x[k] = (float)cr_rng_normal(&r);
        for (int64_t k = 0; k < nw; k++) w[k] = (float)cr_rng_normal(&r);
        for (int64_t k = 0; k < out; k++) b[k] = (float)cr_rng_normal(&r);
        for (int64_t k = 0; k < ny; k++) dy[k] = (float)cr_rng_normal(&r);
        for (int64_t k = 0; k < nx; k++) dx[k] = dx_ref[k] = 0.5f;
        for (int64_t k = 0; k < nw; k++) dw[k] = dw_ref[k] = -0.25f;
        for (int64_t k = 0; k < out; k++) db[k] = db_ref[k] = 1.0f;
        cr_linear_forward(y, x, w, b, B, in, out);
        cr_linear_forward_ref(y_ref, x, w, b, B, in, out);
        cr_linear_backward(dx, dw, db, dy, x, w, B, in, out);
        cr_linear_backward_ref(dx_ref, dw_ref, db_ref, dy, x, w, B, in, out);
        /* sums of up to ~130 unit-normal products: float rounding differs by order, not by more than 1e-4 */
        double worst = 0;
        for (int64_t k = 0; k < ny; k++) worst = fmax(worst, fabs(y[k] - y_ref[k]));
        for (int64_t k = 0; k < nx; k++) worst = fmax(worst, fabs(dx[k] - dx_ref[k]));
        for (int64_t k = 0; k < nw; k++) worst = fmax(worst, fabs(dw[k] - dw_ref[k]));
        for (int64_t k = 0; k < out; k++) worst = fmax(worst, fabs(db[k] - db_ref[k]));
        CHECK_MSG(worst < 1e-4, "linear %lld x %lld -> %lld: BLAS vs reference differ by %.3g", (long long)B, (long long)in,
                  (long long)out, worst);
        cr_free(buf);
    }
}

/* ---- activations ---- */

enum { AN = 11 };
typedef struct {
    const double *c;
    cr_activation act;
} act_ctx;

static double act_loss(const double *x, const void *vctx) {
    const act_ctx *a = vctx;
    double L = 0;
    for (int k = 0; k < AN; k++) {
        double y = a->act == CR_ACT_TANH ? tanh(x[k]) : a->act == CR_ACT_RELU ? (x[k] > 0 ? x[k] : 0) : x[k];
        L += a->c[k] * y;
    }
    return L;
}

TEST(nn_activation_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 12, "test.nn.act");
    const cr_activation acts[3] = {CR_ACT_RELU, CR_ACT_TANH, CR_ACT_NONE};
    const char *names[3] = {"relu", "tanh", "none"};
    for (int a = 0; a < 3; a++) {
        float x[AN], y[AN], c[AN], dx[AN];
        double xd[AN], cd[AN], an[AN];
        fill_normal(x, xd, AN, 1.5, &r);
        fill_normal(c, cd, AN, 1.0, &r);
        /* keep relu's inputs away from its kink, where a central difference straddles two slopes */
        for (int k = 0; k < AN; k++)
            if (fabsf(x[k]) < 0.05f) x[k] = xd[k] = x[k] < 0 ? -0.5f : 0.5f;
        cr_act_forward(y, x, AN, acts[a]);
        act_ctx ctx = {cd, acts[a]};
        double L = 0;
        for (int k = 0; k < AN; k++) L += (double)c[k] * y[k];
        CHECK_NEAR(L, act_loss(xd, &ctx), 1e-5);
        for (int k = 0; k < AN; k++) dx[k] = -1.0f;
        cr_act_backward(dx, c, x, y, AN, acts[a]);
        for (int k = 0; k < AN; k++) an[k] = dx[k] + 1.0;
        double worst = check_grad(names[a], act_loss, xd, 0, an, AN, &ctx);
        printf("     %s (%d values): max |analytic - central difference| = %.3g\n", names[a], AN, worst);
        /* in place gives the same values */
        float z[AN];
        memcpy(z, x, sizeof z);
        cr_act_forward(z, z, AN, acts[a]);
        CHECK(!memcmp(z, y, sizeof z));
    }
    /* relu at exactly 0 passes no gradient; tanh saturates without NaN */
    float x0[2] = {0.0f, 40.0f}, y0[2], d0[2] = {0, 0}, one[2] = {1, 1};
    cr_act_forward(y0, x0, 2, CR_ACT_RELU);
    cr_act_backward(d0, one, x0, y0, 2, CR_ACT_RELU);
    CHECK(d0[0] == 0 && d0[1] == 1);
    cr_act_forward(y0, x0, 2, CR_ACT_TANH);
    d0[0] = d0[1] = 0;
    cr_act_backward(d0, one, x0, y0, 2, CR_ACT_TANH);
    CHECK(y0[1] == 1.0f && d0[1] == 0 && d0[0] == 1);
}

/* ---- mse ---- */

enum { MN = 13 };

static double mse_loss(const double *y, const void *ctx) {
    const double *t = ctx;
    double s = 0;
    for (int k = 0; k < MN; k++) s += (y[k] - t[k]) * (y[k] - t[k]);
    return s / MN;
}

TEST(nn_mse_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 13, "test.nn.mse");
    float y[MN], t[MN], dy[MN];
    double yd[MN], td[MN], an[MN];
    fill_normal(y, yd, MN, 1.0, &r);
    fill_normal(t, td, MN, 1.0, &r);
    double L = cr_mse(dy, y, t, MN);
    CHECK_NEAR(L, mse_loss(yd, td), 1e-6);
    for (int k = 0; k < MN; k++) an[k] = dy[k];
    double worst = check_grad("dy", mse_loss, yd, 0, an, MN, td);
    printf("     mse (%d values): max |analytic - central difference| = %.3g\n", MN, worst);
    /* a hand-computed case: y = (1, 2), t = (0, 4): mean of 1 and 4, dy = (1, -2) */
    float y2[2] = {1, 2}, t2[2] = {0, 4}, d2[2];
    CHECK_NEAR(cr_mse(d2, y2, t2, 2), 2.5, 0);
    CHECK(d2[0] == 1.0f && d2[1] == -2.0f);
}

/* ---- a 2-layer MLP ---- */

enum { MB = 3, MW0 = 5, MW1 = 7, MW2 = 3 };
enum { P_W0 = MW1 * MW0, P_B0 = MW1, P_W1 = MW2 * MW1, P_B1 = MW2, NP = P_W0 + P_B0 + P_W1 + P_B1, NXM = MB * MW0 };

typedef struct {
    const double *t;        /* (MB, MW2) regression target */
    cr_activation act;
} mlp_ctx;

/* theta = (w0 (MW1, MW0), b0 (MW1), w1 (MW2, MW1), b1 (MW2), x (MB, MW0)); L = mse(f(x), t) */
static double mlp_loss(const double *theta, const void *vctx) {
    const mlp_ctx *c = vctx;
    const double *w0 = theta, *b0 = w0 + P_W0, *w1 = b0 + P_B0, *b1 = w1 + P_W1, *x = b1 + P_B1;
    double s = 0;
    for (int r = 0; r < MB; r++) {
        double h[MW1];
        for (int o = 0; o < MW1; o++) {
            double z = b0[o];
            for (int k = 0; k < MW0; k++) z += w0[o * MW0 + k] * x[r * MW0 + k];
            h[o] = c->act == CR_ACT_TANH ? tanh(z) : (z > 0 ? z : 0);
        }
        for (int o = 0; o < MW2; o++) {
            double z = b1[o];
            for (int k = 0; k < MW1; k++) z += w1[o * MW1 + k] * h[k];
            s += (z - c->t[r * MW2 + o]) * (z - c->t[r * MW2 + o]);
        }
    }
    return s / (MB * MW2);
}

TEST(nn_mlp_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 14, "test.nn.mlp");
    const cr_activation acts[2] = {CR_ACT_TANH, CR_ACT_RELU};
    for (int a = 0; a < 2; a++) {
        cr_mlp m;
        memset(&m, 0, sizeof m);
        m.n_layers = 2;
        m.width[0] = MW0, m.width[1] = MW1, m.width[2] = MW2;
        m.act = acts[a];
        cr_tensor t[2 * CR_MLP_MAX_LAYERS];
        int nt = cr_mlp_tensors(&m, "f.", t, 0);
        CHECK_EQ(nt, 4);
        CHECK_STR(t[0].name, "f.w0");
        CHECK_STR(t[3].name, "f.b1");
        cr_slab s, g;
        CHECK_OK(cr_slab_init(&s, t, nt));
        CHECK_OK(cr_mlp_bind(&m, &s, "f."));
        CHECK_OK(cr_slab_like(&g, &s));
        cr_mlp_init(&m, &s, &r);
        /* init: biases zero, weights of about variance 1/in */
        CHECK(cr_slab_at(&s, m.b_index[0])[0] == 0 && cr_slab_at(&s, m.w_index[0])[0] != 0);
        /* non-zero biases, so that their gradient paths are exercised with a real offset */
        fill_normal(cr_slab_at(&s, m.b_index[0]), NULL, MW1, 0.3, &r);
        fill_normal(cr_slab_at(&s, m.b_index[1]), NULL, MW2, 0.3, &r);
        double theta[NP + NXM], td[MB * MW2];
        float x[NXM], tgt[MB * MW2];
        fill_normal(x, NULL, NXM, 1.0, &r);
        fill_normal(tgt, td, MB * MW2, 1.0, &r);
        const int idx[4] = {m.w_index[0], m.b_index[0], m.w_index[1], m.b_index[1]};
        const int64_t len[4] = {P_W0, P_B0, P_W1, P_B1};
        int64_t o = 0;
        for (int q = 0; q < 4; q++)
            for (int64_t k = 0; k < len[q]; k++) theta[o++] = cr_slab_at(&s, idx[q])[k];
        for (int k = 0; k < NXM; k++) theta[NP + k] = x[k];
        mlp_ctx ctx = {td, acts[a]};
        if (acts[a] == CR_ACT_RELU) {
            /* a pre-activation within h of 0 would put relu's kink inside the difference: nudge that bias */
            for (int tries = 0; tries < 50; tries++) {
                int moved = 0;
                for (int rr = 0; rr < MB; rr++)
                    for (int oo = 0; oo < MW1; oo++) {
                        double z = theta[P_W0 + oo];
                        for (int k = 0; k < MW0; k++) z += theta[oo * MW0 + k] * theta[NP + rr * MW0 + k];
                        if (fabs(z) < 0.01) theta[P_W0 + oo] += 0.05, moved = 1;
                    }
                if (!moved) break;
            }
            for (int k = 0; k < P_B0; k++) cr_slab_at(&s, m.b_index[0])[k] = (float)theta[P_W0 + k];
            for (int k = 0; k < P_B0; k++) theta[P_W0 + k] = cr_slab_at(&s, m.b_index[0])[k];
        }

        int64_t na = cr_mlp_act_size(&m, MB);
        CHECK_EQ(na, MB * (MW1 + MW2));
        float pre[MB * (MW1 + MW2)], out[MB * (MW1 + MW2)], dy[MB * MW2], dx[NXM];
        float scratch[2 * MB * MW1];
        cr_mlp_forward(&m, &s, x, MB, pre, out);
        double L = cr_mse(dy, out + MB * MW1, tgt, MB * MW2);
        CHECK_NEAR(L, mlp_loss(theta, &ctx), 1e-5);
        /* parameter gradients accumulate: start from 0.5 and subtract it */
        for (int64_t k = 0; k < g.size; k++) g.data[k] = 0.5f;
        for (int k = 0; k < NXM; k++) dx[k] = 123.0f;     /* dx is written, not accumulated */
        cr_mlp_backward(&m, &s, &g, x, MB, pre, out, dy, dx, scratch);
        double an[NP + NXM];
        o = 0;
        for (int q = 0; q < 4; q++)
            for (int64_t k = 0; k < len[q]; k++) an[o++] = g.data[g.t[idx[q]].offset + k] - 0.5;
        for (int k = 0; k < NXM; k++) an[NP + k] = dx[k];
        double worst = check_grad(acts[a] == CR_ACT_TANH ? "mlp(tanh)" : "mlp(relu)", mlp_loss, theta, 0, an, NP + NXM, &ctx);
        printf("     mlp %d -> %d (%s) -> %d, batch %d: max |analytic - central difference| = %.3g over %d values\n", MW0, MW1,
               acts[a] == CR_ACT_TANH ? "tanh" : "relu", MW2, MB, worst, NP + NXM);
        /* without dx the parameter gradients are the same */
        memset(g.data, 0, (size_t)g.size * sizeof(float));
        cr_mlp_backward(&m, &s, &g, x, MB, pre, out, dy, NULL, scratch);
        o = 0;
        for (int q = 0; q < 4; q++)
            for (int64_t k = 0; k < len[q]; k++, o++) CHECK_NEAR(g.data[g.t[idx[q]].offset + k], an[o], 1e-6);
        cr_slab_free(&s);
        cr_slab_free(&g);
    }
}

TEST(nn_mlp_bind_refuses_misshapen) {
    cr_mlp m;
    memset(&m, 0, sizeof m);
    m.n_layers = 2;
    m.width[0] = 4, m.width[1] = 6, m.width[2] = 2;
    cr_tensor t[4];
    int nt = cr_mlp_tensors(&m, "g.", t, 0);
    t[2].cols = 5;      /* g.w1 should be (2, 6) */
    cr_slab s;
    CHECK_OK(cr_slab_init(&s, t, nt));
    CHECK_STATUS(cr_mlp_bind(&m, &s, "g."), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "'g.w1' is (2, 5), expected (2, 6)");
    CHECK_STATUS(cr_mlp_bind(&m, &s, "h."), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "'h.w0' is missing");
    cr_slab_free(&s);
}

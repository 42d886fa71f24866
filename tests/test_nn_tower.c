/* test_nn_tower.c — the tower layers of src/core/nn_tower.h against central differences, and their fast paths
 * against the scalar references.
 *
 * Each finite-difference test writes an independent double-precision forward pass of the layer (or stack) and a
 * scalar loss of its output (a fixed random weighting sum_k c_k y_k, or the loss itself), runs crossrec's float
 * forward and backward on the same float-exact inputs, and compares every analytic gradient entry with the
 * central difference (L(θ + h) - L(θ - h)) / 2h, taken at h and h/2 (which must agree: a disagreement means a
 * kink or a bad reference). Tolerance per entry: |analytic - numeric| <= 2e-5 + 2e-4 |numeric|; each test prints
 * the max absolute difference and the max relative error |a - n| / max(|a|, |n|, 1% of the largest |n|).
 * Shapes are small, odd and unequal; gradient buffers start non-zero to check that backward passes add (+=);
 * ragged batches include empty rows and padding filled with NaN, which must not reach any result. */
#include "test.h"

#include "core/nn_tower.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define FD_H 1e-4

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

/* Compares an[k] with the central differences of f at theta[k] for k < n; prints a summary line. */
static void fd_check(const char *what, loss_fn f, double *theta, const double *an, int64_t n, const void *ctx) {
    double *num = malloc((size_t)n * sizeof *num), worst = 0, worst_rel = 0, gmax = 0;
    CR_ASSERT(num);
    for (int64_t k = 0; k < n; k++) {
        double n1 = central(f, theta, k, FD_H, ctx), n2 = central(f, theta, k, FD_H / 2, ctx);
        if (!(fabs(n1 - n2) <= 1e-6 + 1e-4 * fabs(n2))) free(num);
        CHECK_MSG(fabs(n1 - n2) <= 1e-6 + 1e-4 * fabs(n2), "%s[%lld]: differences at h and h/2 disagree: %.9g vs %.9g", what,
                  (long long)k, n1, n2);
        num[k] = n2;
        gmax = fmax(gmax, fabs(n2));
    }
    for (int64_t k = 0; k < n; k++) {
        double diff = fabs(an[k] - num[k]), tol = 2e-5 + 2e-4 * fabs(num[k]);
        /* relative to the entry, but not below 1% of the largest gradient: tiny entries carry float rounding from
         * the large ones and are judged by the absolute bound */
        double rel = diff / fmax(fmax(fabs(an[k]), fabs(num[k])), fmax(0.01 * gmax, 1e-12));
        worst = fmax(worst, diff);
        worst_rel = fmax(worst_rel, rel);
        if (!(diff <= tol)) {
            double nk = num[k];
            free(num);
            CHECK_MSG(0, "%s[%lld]: analytic %.9g, numeric %.9g", what, (long long)k, an[k], nk);
        }
    }
    free(num);
    printf("     %s: %lld gradients, max |analytic - numeric| %.3g, max relative error %.3g (tol 2e-5 + 2e-4 |numeric|)\n",
           what, (long long)n, worst, worst_rel);
}

static void fill(float *x, int64_t n, double scale, cr_rng *r) {
    for (int64_t k = 0; k < n; k++) x[k] = (float)(scale * cr_rng_normal(r));
}

static void to_double(double *t, const float *x, int64_t n) {
    for (int64_t k = 0; k < n; k++) t[k] = x[k];
}

static double wsum(const double *c, const double *y, int64_t n) {
    double s = 0;
    for (int64_t k = 0; k < n; k++) s += c[k] * y[k];
    return s;
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- double-precision references ---- */

static void d_linear(double *y, const double *x, const double *w, const double *b, int64_t N, int64_t in, int64_t out) {
    for (int64_t r = 0; r < N; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int64_t k = 0; k < in; k++) s += x[r * in + k] * w[o * in + k];
            y[r * out + o] = s;
        }
}

static void d_layernorm(double *y, const double *x, const double *g, const double *b, int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++) {
        double m = 0, v = 0;
        for (int64_t k = 0; k < d; k++) m += x[r * d + k];
        m /= d;
        for (int64_t k = 0; k < d; k++) v += (x[r * d + k] - m) * (x[r * d + k] - m);
        v /= d;
        double s = 1 / sqrt(v + (double)CR_LN_EPS);
        for (int64_t k = 0; k < d; k++) y[r * d + k] = (x[r * d + k] - m) * s * g[k] + b[k];
    }
}

static double d_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }

/* log sum_k exp(z_k) over k < n (stride apart); -inf entries allowed */
static double d_lse(const double *z, int64_t n, int64_t stride) {
    double mx = -INFINITY, s = 0;
    for (int64_t k = 0; k < n; k++) mx = fmax(mx, z[k * stride]);
    for (int64_t k = 0; k < n; k++) s += exp(z[k * stride] - mx);
    return mx + log(s);
}

static void d_l2norm(double *y, const double *x, int64_t N, int64_t d) {
    for (int64_t r = 0; r < N; r++) {
        double s = 0;
        for (int64_t k = 0; k < d; k++) s += x[r * d + k] * x[r * d + k];
        double n = fmax(sqrt(s), (double)CR_L2_EPS);
        for (int64_t k = 0; k < d; k++) y[r * d + k] = x[r * d + k] / n;
    }
}

/* ---- linear through BLAS against nn.c's scalar reference ---- */

TEST(nn_linear_blas_matches_reference) {
    enum { B = 7, IN = 13, OUT = 5 };
    cr_rng r;
    cr_rng_named(&r, 21, "test.nn.blas");
    float x[B * IN], w[OUT * IN], b[OUT], dy[B * OUT], y1[B * OUT], y2[B * OUT];
    fill(x, B * IN, 1, &r), fill(w, OUT * IN, 1, &r), fill(b, OUT, 1, &r), fill(dy, B * OUT, 1, &r);
    cr_linear_forward(y1, x, w, b, B, IN, OUT);
    cr_linear_forward_blas(y2, x, w, b, B, IN, OUT);
    double worst = 0;
    for (int k = 0; k < B * OUT; k++) worst = fmax(worst, fabs(y1[k] - y2[k]));
    float g1[B * IN + OUT * IN + OUT], g2[B * IN + OUT * IN + OUT];
    for (int k = 0; k < B * IN + OUT * IN + OUT; k++) g1[k] = g2[k] = 0.5f;
    cr_linear_backward(g1, g1 + B * IN, g1 + B * IN + OUT * IN, dy, x, w, B, IN, OUT);
    cr_linear_backward_blas(g2, g2 + B * IN, g2 + B * IN + OUT * IN, dy, x, w, B, IN, OUT);
    for (int k = 0; k < B * IN + OUT * IN + OUT; k++) worst = fmax(worst, fabs(g1[k] - g2[k]));
    printf("     linear %d x %d -> %d, BLAS vs scalar: max |diff| %.3g over outputs and gradients\n", B, IN, OUT, worst);
    CHECK(worst < 1e-5);
    /* without bias: zeros, not the previous contents */
    float y3[B * OUT];
    for (int k = 0; k < B * OUT; k++) y3[k] = 99.0f;
    cr_linear_forward_blas(y3, x, w, NULL, B, IN, OUT);
    cr_linear_forward(y1, x, w, NULL, B, IN, OUT);
    for (int k = 0; k < B * OUT; k++) CHECK_NEAR(y3[k], y1[k], 1e-5);
}

/* ---- embedding bag ---- */

enum { EB_ROWS = 9, EB_D = 5, EB_B = 5, EB_N = 11 };
static const int64_t eb_off[EB_B + 1] = {0, 3, 3, 4, 8, 11};        /* bag 1 is empty */
static const int32_t eb_idx[EB_N] = {2, 7, 2, 0, 8, 1, 7, 7, 3, 4, 2}; /* repeats inside and across bags */

typedef struct {
    const double *c;    /* (EB_B, EB_D) */
    cr_bag_mode mode;
    int weighted;
} eb_ctx;

/* theta = (E (EB_ROWS, EB_D), w (EB_N)) */
static double embbag_loss(const double *theta, const void *vctx) {
    const eb_ctx *c = vctx;
    const double *E = theta, *w = theta + EB_ROWS * EB_D;
    double L = 0;
    for (int b = 0; b < EB_B; b++) {
        int64_t n = eb_off[b + 1] - eb_off[b];
        for (int col = 0; col < EB_D; col++) {
            double s = 0;
            for (int64_t k = eb_off[b]; k < eb_off[b + 1]; k++) s += (c->weighted ? w[k] : 1.0) * E[eb_idx[k] * EB_D + col];
            if (c->mode == CR_BAG_MEAN && n) s /= (double)n;
            L += c->c[b * EB_D + col] * s;
        }
    }
    return L;
}

TEST(nn_embbag_finite_difference) {
    enum { NT = EB_ROWS * EB_D + EB_N };
    cr_rng r;
    cr_rng_named(&r, 22, "test.nn.embbag");
    for (int v = 0; v < 4; v++) {
        eb_ctx ctx = {NULL, v & 1 ? CR_BAG_MEAN : CR_BAG_SUM, v >> 1};
        float f[NT], c[EB_B * EB_D], out[EB_B * EB_D], g[NT];
        double theta[NT], cd[EB_B * EB_D], an[NT];
        fill(f, NT, 1, &r);
        fill(c, EB_B * EB_D, 1, &r);
        to_double(theta, f, NT);
        to_double(cd, c, EB_B * EB_D);
        ctx.c = cd;
        const float *w = ctx.weighted ? f + EB_ROWS * EB_D : NULL;
        cr_embbag_forward(out, f, EB_ROWS, EB_D, eb_off, eb_idx, w, EB_B, ctx.mode);
        double y[EB_B * EB_D];
        to_double(y, out, EB_B * EB_D);
        CHECK_NEAR(wsum(cd, y, EB_B * EB_D), embbag_loss(theta, &ctx), 1e-5);
        for (int k = 0; k < EB_D; k++) CHECK(out[1 * EB_D + k] == 0.0f);      /* the empty bag */
        for (int k = 0; k < NT; k++) g[k] = 0.25f;
        cr_embbag_backward(g, ctx.weighted ? g + EB_ROWS * EB_D : NULL, c, f, EB_ROWS, EB_D, eb_off, eb_idx, w, EB_B, ctx.mode);
        for (int k = 0; k < NT; k++) an[k] = g[k] - 0.25;
        /* rows no entry names get nothing: 5 and 6 */
        for (int k = 0; k < EB_D; k++) CHECK(g[5 * EB_D + k] == 0.25f && g[6 * EB_D + k] == 0.25f);
        char name[64];
        snprintf(name, sizeof name, "embedding bag (%s%s)", ctx.mode == CR_BAG_MEAN ? "mean" : "sum", ctx.weighted ? ", weighted" : "");
        fd_check(name, embbag_loss, theta, an, ctx.weighted ? NT : EB_ROWS * EB_D, &ctx);
        /* the reference gives the same bits */
        float out2[EB_B * EB_D], g2[NT];
        cr_embbag_forward_ref(out2, f, EB_ROWS, EB_D, eb_off, eb_idx, w, EB_B, ctx.mode);
        CHECK(!memcmp(out, out2, sizeof out));
        for (int k = 0; k < NT; k++) g2[k] = 0.25f;
        cr_embbag_backward_ref(g2, ctx.weighted ? g2 + EB_ROWS * EB_D : NULL, c, f, EB_ROWS, EB_D, eb_off, eb_idx, w, EB_B,
                               ctx.mode);
        CHECK(!memcmp(g, g2, sizeof g));
    }
    /* the touched rows: distinct, ascending; the marker buffer is clean afterwards */
    int32_t rows[EB_N];
    uint8_t seen[EB_ROWS];
    memset(seen, 0, sizeof seen);
    int64_t m = cr_embbag_touched(rows, seen, eb_idx, EB_N);
    CHECK_EQ(m, 7);
    const int32_t want[7] = {0, 1, 2, 3, 4, 7, 8};
    for (int k = 0; k < 7; k++) CHECK_EQ(rows[k], want[k]);
    for (int k = 0; k < EB_ROWS; k++) CHECK(seen[k] == 0);
}

TEST(nn_embbag_threads_match_reference) {
    /* a batch big enough for the threaded paths: bit-identical to the reference at 1, 2 and 3 threads */
    enum { ROWS = 300, D = 64, B = 200 };
    cr_rng r;
    cr_rng_named(&r, 23, "test.nn.embbag.threads");
    int64_t *off = malloc((B + 1) * sizeof *off);
    off[0] = 0;
    for (int b = 0; b < B; b++) off[b + 1] = off[b] + cr_rng_below(&r, 9);
    int64_t n = off[B];
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    float *w = malloc((size_t)n * sizeof *w), *E = malloc(ROWS * D * sizeof *E), *dout = malloc(B * D * sizeof *dout);
    for (int64_t k = 0; k < n; k++) idx[k] = (int32_t)cr_rng_below(&r, 40) * 7 % ROWS;     /* many shared rows */
    fill(w, n, 1, &r), fill(E, ROWS * D, 1, &r), fill(dout, B * D, 1, &r);
    CHECK(n * D >= 32768);
    float *o1 = malloc(B * D * sizeof *o1), *o2 = malloc(B * D * sizeof *o2);
    float *g1 = calloc(ROWS * D, sizeof *g1), *g2 = calloc(ROWS * D, sizeof *g2);
    float *w1 = calloc((size_t)n, sizeof *w1), *w2 = calloc((size_t)n, sizeof *w2);
    cr_embbag_forward_ref(o1, E, ROWS, D, off, idx, w, B, CR_BAG_MEAN);
    cr_embbag_backward_ref(g1, w1, dout, E, ROWS, D, off, idx, w, B, CR_BAG_MEAN);
    int saved = max_threads();
    for (int t = 1; t <= 3; t++) {
        set_threads(t);
        memset(g2, 0, ROWS * D * sizeof *g2);
        memset(w2, 0, (size_t)n * sizeof *w2);
        cr_embbag_forward(o2, E, ROWS, D, off, idx, w, B, CR_BAG_MEAN);
        cr_embbag_backward(g2, w2, dout, E, ROWS, D, off, idx, w, B, CR_BAG_MEAN);
        CHECK_MSG(!memcmp(o1, o2, B * D * sizeof *o1), "forward differs at %d threads", t);
        CHECK_MSG(!memcmp(g1, g2, ROWS * D * sizeof *g1), "dE differs at %d threads", t);
        CHECK_MSG(!memcmp(w1, w2, (size_t)n * sizeof *w1), "dw differs at %d threads", t);
    }
    set_threads(saved);
    free(off), free(idx), free(w), free(E), free(dout), free(o1), free(o2), free(g1), free(g2), free(w1), free(w2);
}

/* ---- layer norm ---- */

enum { LN_N = 4, LN_D = 7 };

static double layernorm_loss(const double *theta, const void *ctx) {
    const double *x = theta, *g = x + LN_N * LN_D, *b = g + LN_D;
    double y[LN_N * LN_D];
    d_layernorm(y, x, g, b, LN_N, LN_D);
    return wsum(ctx, y, LN_N * LN_D);
}

TEST(nn_layernorm_finite_difference) {
    enum { NT = LN_N * LN_D + 2 * LN_D };
    cr_rng r;
    cr_rng_named(&r, 24, "test.nn.layernorm");
    float f[NT], c[LN_N * LN_D], y[LN_N * LN_D], mean[LN_N], rstd[LN_N], g[NT];
    double theta[NT], cd[LN_N * LN_D], an[NT], yd[LN_N * LN_D];
    fill(f, NT, 1, &r), fill(c, LN_N * LN_D, 1, &r);
    for (int k = 0; k < LN_D; k++) f[3 * LN_D + k] += 40.0f;     /* a row with a large mean */
    to_double(theta, f, NT), to_double(cd, c, LN_N * LN_D);
    cr_layernorm_forward(y, mean, rstd, f, f + LN_N * LN_D, f + LN_N * LN_D + LN_D, LN_N, LN_D);
    to_double(yd, y, LN_N * LN_D);
    CHECK_NEAR(wsum(cd, yd, LN_N * LN_D), layernorm_loss(theta, cd), 1e-4);
    for (int k = 0; k < NT; k++) g[k] = -0.5f;
    cr_layernorm_backward(g, g + LN_N * LN_D, g + LN_N * LN_D + LN_D, c, f, mean, rstd, f + LN_N * LN_D, LN_N, LN_D);
    for (int k = 0; k < NT; k++) an[k] = g[k] + 0.5;
    fd_check("layer norm", layernorm_loss, theta, an, NT, cd);
}

/* ---- GELU, dropout, id dropout, gradient reversal ---- */

enum { GN = 13 };

static double gelu_loss(const double *x, const void *c) {
    double y[GN];
    for (int k = 0; k < GN; k++) y[k] = d_gelu(x[k]);
    return wsum(c, y, GN);
}

TEST(nn_gelu_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 25, "test.nn.gelu");
    float x[GN], c[GN], y[GN], dx[GN];
    double xd[GN], cd[GN], an[GN];
    fill(x, GN, 2, &r), fill(c, GN, 1, &r);
    x[0] = 0.0f, x[1] = -6.0f, x[2] = 7.0f;
    to_double(xd, x, GN), to_double(cd, c, GN);
    cr_gelu_forward(y, x, GN);
    for (int k = 0; k < GN; k++) CHECK_NEAR(y[k], d_gelu(xd[k]), 2e-6 * (1 + fabs(xd[k])));
    for (int k = 0; k < GN; k++) dx[k] = 1.0f;
    cr_gelu_backward(dx, c, x, GN);
    for (int k = 0; k < GN; k++) an[k] = dx[k] - 1.0;
    fd_check("gelu (erf)", gelu_loss, xd, an, GN, cd);
    /* PyTorch's nn.GELU() (exact erf form): gelu(1) = 0.841344746, gelu(-0.5) = -0.154268769; the tanh
     * approximation would give 0.841191990 and -0.154285988 */
    float v[2] = {1.0f, -0.5f}, gv[2];
    cr_gelu_forward(gv, v, 2);
    CHECK_NEAR(gv[0], 0.841344746, 1e-7);
    CHECK_NEAR(gv[1], -0.154268769, 1e-7);
}

TEST(nn_dropout) {
    enum { N = 100000 };
    cr_rng r, r2;
    cr_rng_named(&r, 26, "test.nn.dropout");
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *dx = malloc(N * sizeof *dx), *dy = malloc(N * sizeof *dy);
    uint8_t *mask = malloc(N);
    for (int k = 0; k < N; k++) x[k] = 1.0f, dy[k] = 2.0f, dx[k] = 0.5f;
    const float p = 0.3f;
    cr_dropout_forward(y, mask, x, N, p, &r);
    int64_t dropped = 0;
    double mean = 0;
    for (int k = 0; k < N; k++) {
        dropped += !mask[k];
        mean += y[k];
        CHECK(mask[k] ? y[k] == 1.0f / (1.0f - p) : y[k] == 0.0f);
    }
    /* the share dropped within 5 sigma of p, and the mean preserved */
    printf("     dropout p = %.2f: dropped %.4f of %d, output mean %.4f\n", p, (double)dropped / N, N, mean / N);
    CHECK(fabs((double)dropped / N - p) < 5 * sqrt(p * (1 - p) / N));
    CHECK(fabs(mean / N - 1.0) < 0.01);
    /* backward: dy scaled where kept, nothing where dropped, added */
    cr_dropout_backward(dx, dy, mask, N, p);
    for (int k = 0; k < N; k++) CHECK(dx[k] == (mask[k] ? 0.5f + 2.0f / (1.0f - p) : 0.5f));
    /* the same seed gives the same mask; apply reproduces forward; in place works */
    cr_rng_named(&r2, 26, "test.nn.dropout");
    uint8_t *mask2 = malloc(N);
    memcpy(dx, x, N * sizeof *x);
    cr_dropout_forward(dx, mask2, dx, N, p, &r2);
    CHECK(!memcmp(mask, mask2, N) && !memcmp(dx, y, N * sizeof *y));
    cr_dropout_apply(dx, x, mask, N, p);
    CHECK(!memcmp(dx, y, N * sizeof *y));
    /* p = 0 draws nothing and is the identity */
    cr_rng before = r;
    cr_dropout_forward(y, mask, x, N, 0.0f, &r);
    CHECK(r.state == before.state && !memcmp(y, x, N * sizeof *x));
    free(x), free(y), free(dx), free(dy), free(mask), free(mask2);
}

TEST(nn_id_dropout) {
    enum { N = 20000, D = 3 };
    cr_rng r;
    cr_rng_named(&r, 27, "test.nn.iddrop");
    float *x = malloc(N * D * sizeof *x), *y = malloc(N * D * sizeof *y), *dx = malloc(N * D * sizeof *dx);
    uint8_t *keep = malloc(N);
    fill(x, N * D, 1, &r);
    cr_id_dropout_forward(y, keep, x, N, D, 0.25f, &r);
    int64_t kept = 0;
    for (int i = 0; i < N; i++) {
        kept += keep[i];
        for (int k = 0; k < D; k++) CHECK(y[i * D + k] == (keep[i] ? x[i * D + k] : 0.0f));     /* not rescaled */
    }
    printf("     id dropout p = 0.25: kept %.4f of %d rows\n", (double)kept / N, N);
    CHECK(fabs((double)kept / N - 0.75) < 5 * sqrt(0.25 * 0.75 / N));
    for (int k = 0; k < N * D; k++) dx[k] = 1.0f;
    cr_id_dropout_backward(dx, x, keep, N, D);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) CHECK(dx[i * D + k] == (keep[i] ? 1.0f + x[i * D + k] : 1.0f));
    /* in place, with a given mask */
    memcpy(dx, x, N * D * sizeof *x);
    cr_id_dropout_apply(dx, dx, keep, N, D);
    CHECK(!memcmp(dx, y, N * D * sizeof *y));
    free(x), free(y), free(dx), free(keep);
}

TEST(nn_gradient_reversal) {
    float x[5] = {1, -2, 3, 0.5f, 0}, y[5], dx[5] = {1, 1, 1, 1, 1}, dy[5] = {0.5f, 1, -2, 4, 8};
    cr_grl_forward(y, x, 5);
    CHECK(!memcmp(x, y, sizeof x));
    cr_grl_forward(x, x, 5);
    cr_grl_backward(dx, dy, 5, 0.25f);
    for (int k = 0; k < 5; k++) CHECK(dx[k] == 1.0f - 0.25f * dy[k]);
}

/* ---- L2 normalisation ---- */

enum { L2_N = 4, L2_D = 5 };

static double l2norm_loss(const double *x, const void *c) {
    double y[L2_N * L2_D];
    d_l2norm(y, x, L2_N, L2_D);
    return wsum(c, y, L2_N * L2_D);
}

TEST(nn_l2norm_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 28, "test.nn.l2norm");
    float x[L2_N * L2_D], c[L2_N * L2_D], y[L2_N * L2_D], nrm[L2_N], dx[L2_N * L2_D];
    double xd[L2_N * L2_D], cd[L2_N * L2_D], an[L2_N * L2_D], yd[L2_N * L2_D];
    fill(x, L2_N * L2_D, 1, &r), fill(c, L2_N * L2_D, 1, &r);
    for (int k = 0; k < L2_D; k++) x[2 * L2_D + k] *= 0.1f;       /* a short row */
    to_double(xd, x, L2_N * L2_D), to_double(cd, c, L2_N * L2_D);
    cr_l2norm_forward(y, nrm, x, L2_N, L2_D);
    to_double(yd, y, L2_N * L2_D);
    CHECK_NEAR(wsum(cd, yd, L2_N * L2_D), l2norm_loss(xd, cd), 1e-5);
    for (int k = 0; k < L2_N * L2_D; k++) dx[k] = 0.125f;
    cr_l2norm_backward(dx, c, y, nrm, L2_N, L2_D);
    for (int k = 0; k < L2_N * L2_D; k++) an[k] = dx[k] - 0.125;
    fd_check("l2 normalisation", l2norm_loss, xd, an, L2_N * L2_D, cd);
    /* a zero row: zero output and a finite gradient, no NaN */
    float z[3] = {0, 0, 0}, zy[3], zn, zd[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    cr_l2norm_forward(zy, &zn, z, 1, 3);
    cr_l2norm_backward(zd, one, zy, &zn, 1, 3);
    for (int k = 0; k < 3; k++) CHECK(zy[k] == 0.0f && isfinite(zd[k]));
}

/* ---- pooling ---- */

enum { PB = 4, PL = 5, PD = 6, PDOM = 3 };
static const int64_t p_len[PB] = {5, 2, 0, 3};
static const int32_t p_dom[PB] = {2, 0, 1, 2};     /* domain 2 twice: its query gradient sums two rows */

/* theta = (h (PB, PL, PD), q (PDOM, PD)) */
static double attnpool_loss(const double *theta, const void *c) {
    const double *h = theta, *q = theta + PB * PL * PD;
    double out[PB * PD];
    for (int b = 0; b < PB; b++) {
        double s[PL];
        for (int k = 0; k < p_len[b]; k++) {
            s[k] = 0;
            for (int j = 0; j < PD; j++) s[k] += q[p_dom[b] * PD + j] * h[(b * PL + k) * PD + j];
            s[k] /= sqrt((double)PD);
        }
        double lse = p_len[b] ? d_lse(s, p_len[b], 1) : 0;
        for (int j = 0; j < PD; j++) {
            out[b * PD + j] = 0;
            for (int k = 0; k < p_len[b]; k++) out[b * PD + j] += exp(s[k] - lse) * h[(b * PL + k) * PD + j];
        }
    }
    return wsum(c, out, PB * PD);
}

static double meanpool_loss(const double *h, const void *c) {
    double out[PB * PD];
    for (int b = 0; b < PB; b++)
        for (int j = 0; j < PD; j++) {
            out[b * PD + j] = 0;
            for (int k = 0; k < p_len[b]; k++) out[b * PD + j] += h[(b * PL + k) * PD + j];
            if (p_len[b]) out[b * PD + j] /= (double)p_len[b];
        }
    return wsum(c, out, PB * PD);
}

TEST(nn_pooling_finite_difference) {
    enum { NH = PB * PL * PD, NT = NH + PDOM * PD };
    cr_rng r;
    cr_rng_named(&r, 29, "test.nn.pool");
    float f[NT], c[PB * PD], out[PB * PD], att[PB * PL], g[NT];
    double theta[NT], cd[PB * PD], an[NT], od[PB * PD];
    fill(f, NT, 1, &r), fill(c, PB * PD, 1, &r);
    to_double(theta, f, NT), to_double(cd, c, PB * PD);
    /* padding rows hold NaN in the float input: nothing may read them (the double copy keeps numbers, so the
     * reference, which skips them too, has a defined zero derivative there) */
    for (int b = 0; b < PB; b++)
        for (int k = (int)p_len[b]; k < PL; k++)
            for (int j = 0; j < PD; j++) f[(b * PL + k) * PD + j] = NAN;

    cr_attnpool_forward(out, att, f, p_len, f + NH, p_dom, PB, PL, PD);
    to_double(od, out, PB * PD);
    CHECK_NEAR(wsum(cd, od, PB * PD), attnpool_loss(theta, cd), 1e-5);
    for (int k = 0; k < PD; k++) CHECK(out[2 * PD + k] == 0.0f);      /* the empty sequence */
    double asum = 0;
    for (int k = 0; k < PL; k++) asum += att[k];
    for (int k = 2; k < PL; k++) CHECK(att[PL + k] == 0.0f);       /* row 1's padding */
    CHECK_NEAR(asum, 1.0, 1e-6);
    for (int k = 0; k < NT; k++) g[k] = 0.5f;
    cr_attnpool_backward(g, g + NH, c, f, p_len, f + NH, p_dom, att, PB, PL, PD);
    for (int k = 0; k < NT; k++) an[k] = g[k] - 0.5;
    fd_check("attention pooling (h, q)", attnpool_loss, theta, an, NT, cd);
    /* query 1 belongs only to the empty sequence */
    for (int j = 0; j < PD; j++) CHECK(g[NH + PD + j] == 0.5f);

    cr_meanpool_forward(out, f, p_len, PB, PL, PD);
    to_double(od, out, PB * PD);
    CHECK_NEAR(wsum(cd, od, PB * PD), meanpool_loss(theta, cd), 1e-5);
    for (int k = 0; k < NH; k++) g[k] = 0.5f;
    cr_meanpool_backward(g, c, p_len, PB, PL, PD);
    for (int k = 0; k < NH; k++) an[k] = g[k] - 0.5;
    fd_check("mean pooling", meanpool_loss, theta, an, NH, cd);
}

TEST(nn_attnpool_threads_match) {
    /* big enough for the threaded paths: bit-identical at 1 and 2 threads */
    enum { B = 96, L = 24, D = 32, NDOM = 4 };
    cr_rng r;
    cr_rng_named(&r, 30, "test.nn.pool.threads");
    float *h = malloc(B * L * D * sizeof *h), *q = malloc(NDOM * D * sizeof *q), *dout = malloc(B * D * sizeof *dout);
    int64_t len[B];
    int32_t dom[B];
    fill(h, B * L * D, 1, &r), fill(q, NDOM * D, 1, &r), fill(dout, B * D, 1, &r);
    for (int b = 0; b < B; b++) len[b] = cr_rng_below(&r, L + 1), dom[b] = (int32_t)cr_rng_below(&r, NDOM);
    float *o[2], *a[2], *dh[2], *dq[2];
    int saved = max_threads();
    for (int t = 0; t < 2; t++) {
        set_threads(t + 1);
        o[t] = malloc(B * D * sizeof(float)), a[t] = malloc(B * L * sizeof(float));
        dh[t] = calloc(B * L * D, sizeof(float)), dq[t] = calloc(NDOM * D, sizeof(float));
        cr_attnpool_forward(o[t], a[t], h, len, q, dom, B, L, D);
        cr_attnpool_backward(dh[t], dq[t], dout, h, len, q, dom, a[t], B, L, D);
    }
    set_threads(saved);
    CHECK(!memcmp(o[0], o[1], B * D * sizeof(float)) && !memcmp(a[0], a[1], B * L * sizeof(float)));
    CHECK(!memcmp(dh[0], dh[1], B * L * D * sizeof(float)) && !memcmp(dq[0], dq[1], NDOM * D * sizeof(float)));
    for (int t = 0; t < 2; t++) free(o[t]), free(a[t]), free(dh[t]), free(dq[t]);
    free(h), free(q), free(dout);
}

/* ---- causal transformer ---- */

enum { TB = 3, TL = 4, TD = 8, TH = 2, TLAYERS = 2, TMAXLEN = 5 };
static const int64_t t_len[TB] = {4, 2, 0};

/* theta holds the 15 tensors back to back in slab order (rows * cols each, no padding), then x (TB, TL, TD). */
typedef struct {
    int64_t off[CR_TFM_N_TENSORS + 1];  /* start of tensor i in theta; off[15] = x */
    const double *c;                    /* (TB, TL, TD) output weighting, also on padding rows */
} tfm_ctx;

static void d_tfm_forward(double *out, const double *theta, const tfm_ctx *ctx) {
    enum { N = TB * TL, D = TD, HS = TD / TH };
    const double *P[CR_TFM_N_TENSORS];
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) P[i] = theta + ctx->off[i];
    const double *x = theta + ctx->off[CR_TFM_N_TENSORS];
    /* order: wpe ln1w ln1b qkvw qkvb projw projb ln2w ln2b fcw fcb fc2w fc2b lnfw lnfb */
    static double res[N * D], ln[N * D], qkv[N * 3 * D], y[N * D], tmp[N * 4 * D], fc[N * 4 * D];
    for (int b = 0; b < TB; b++)
        for (int t = 0; t < TL; t++)
            for (int j = 0; j < D; j++) res[(b * TL + t) * D + j] = t < t_len[b] ? x[(b * TL + t) * D + j] + P[0][t * D + j] : 0;
    for (int l = 0; l < TLAYERS; l++) {
        d_layernorm(ln, res, P[1] + l * D, P[2] + l * D, N, D);
        d_linear(qkv, ln, P[3] + l * 3 * D * D, P[4] + l * 3 * D, N, D, 3 * D);
        for (int b = 0; b < TB; b++)
            for (int h = 0; h < TH; h++)
                for (int t = 0; t < TL; t++) {
                    int64_t nv = t + 1 < t_len[b] ? t + 1 : t_len[b];
                    double s[TL];
                    for (int u = 0; u < nv; u++) {
                        s[u] = 0;
                        for (int j = 0; j < HS; j++)
                            s[u] += qkv[(b * TL + t) * 3 * D + h * HS + j] * qkv[(b * TL + u) * 3 * D + D + h * HS + j];
                        s[u] /= sqrt((double)HS);
                    }
                    double lse = nv ? d_lse(s, nv, 1) : 0;
                    for (int j = 0; j < HS; j++) {
                        double a = 0;
                        for (int u = 0; u < nv; u++) a += exp(s[u] - lse) * qkv[(b * TL + u) * 3 * D + 2 * D + h * HS + j];
                        y[(b * TL + t) * D + h * HS + j] = a;
                    }
                }
        d_linear(tmp, y, P[5] + l * D * D, P[6] + l * D, N, D, D);
        for (int k = 0; k < N * D; k++) res[k] += tmp[k];
        d_layernorm(ln, res, P[7] + l * D, P[8] + l * D, N, D);
        d_linear(fc, ln, P[9] + l * 4 * D * D, P[10] + l * 4 * D, N, D, 4 * D);
        for (int k = 0; k < N * 4 * D; k++) fc[k] = d_gelu(fc[k]);
        d_linear(tmp, fc, P[11] + l * 4 * D * D, P[12] + l * D, N, 4 * D, D);
        for (int k = 0; k < N * D; k++) res[k] += tmp[k];
    }
    d_layernorm(out, res, P[13], P[14], N, D);
    for (int b = 0; b < TB; b++)
        for (int t = (int)t_len[b]; t < TL; t++)
            for (int j = 0; j < D; j++) out[(b * TL + t) * D + j] = 0;
}

static double tfm_loss(const double *theta, const void *vctx) {
    const tfm_ctx *ctx = vctx;
    double out[TB * TL * TD];
    d_tfm_forward(out, theta, ctx);
    return wsum(ctx->c, out, TB * TL * TD);
}

static void tfm_setup(cr_tfm *m, cr_slab *s, cr_slab *g, tfm_ctx *ctx, cr_rng *r) {
    memset(m, 0, sizeof *m);
    m->n_layers = TLAYERS, m->dim = TD, m->n_heads = TH, m->max_len = TMAXLEN;
    cr_tensor t[CR_TFM_N_TENSORS];
    CHECK(cr_tfm_check(m) == NULL);
    CHECK_EQ(cr_tfm_tensors(m, "u.", t, 0), CR_TFM_N_TENSORS);
    CHECK_OK(cr_slab_init(s, t, CR_TFM_N_TENSORS));
    CHECK_OK(cr_tfm_bind(m, s, "u."));
    CHECK_OK(cr_slab_like(g, s));
    cr_tfm_init(m, s, r);
    CHECK(cr_slab_at(s, m->lnfw)[0] == 1.0f && cr_slab_at(s, m->qkvb)[0] == 0.0f && cr_slab_at(s, m->fcw)[0] != 0.0f);
    /* larger weights than the initialisation, and non-trivial norms and biases, so every path carries signal */
    for (int i = 0; i < s->n; i++) {
        float *p = cr_slab_at(s, i);
        int64_t n = s->t[i].rows * s->t[i].cols;
        int is_gain = i == m->ln1w || i == m->ln2w || i == m->lnfw;
        for (int64_t k = 0; k < n; k++) p[k] = (float)((is_gain ? 1.0 : 0.0) + 0.4 * cr_rng_normal(r));
    }
    int64_t o = 0;
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) ctx->off[i] = o, o += s->t[i].rows * s->t[i].cols;
    ctx->off[CR_TFM_N_TENSORS] = o;
}

TEST(nn_transformer_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 31, "test.nn.tfm");
    cr_tfm m;
    cr_slab s, g;
    tfm_ctx ctx;
    tfm_setup(&m, &s, &g, &ctx, &r);
    const int64_t NX = TB * TL * TD, NP = ctx.off[CR_TFM_N_TENSORS], NT = NP + NX;
    printf("     transformer: %d layers, d %d, %d heads, batch %d x %d (lengths 4, 2, 0), %lld parameters\n", TLAYERS, TD, TH,
           TB, TL, (long long)NP);
    double *theta = malloc((size_t)NT * sizeof *theta), *an = malloc((size_t)NT * sizeof *an), cd[TB * TL * TD];
    float x[TB * TL * TD], c[TB * TL * TD], out[TB * TL * TD], dx[TB * TL * TD];
    fill(x, NX, 1, &r), fill(c, NX, 1, &r);
    for (int i = 0; i < CR_TFM_N_TENSORS; i++) to_double(theta + ctx.off[i], cr_slab_at(&s, i), s.t[i].rows * s.t[i].cols);
    to_double(theta + NP, x, NX);
    to_double(cd, c, NX);
    ctx.c = cd;
    for (int b = 0; b < TB; b++)     /* NaN padding in the float input */
        for (int t = (int)t_len[b]; t < TL; t++)
            for (int j = 0; j < TD; j++) x[(b * TL + t) * TD + j] = NAN;
    float *acts = malloc((size_t)cr_tfm_act_size(&m, TB, TL) * sizeof *acts);
    float *scratch = malloc((size_t)cr_tfm_scratch_size(&m, TB, TL) * sizeof *scratch);
    cr_tfm_forward(&m, &s, out, acts, x, t_len, TB, TL);
    double od[TB * TL * TD];
    to_double(od, out, NX);
    CHECK_NEAR(wsum(cd, od, NX), tfm_loss(theta, &ctx), 1e-4);
    for (int k = 0; k < NX; k++) CHECK(isfinite(out[k]));
    /* gradients accumulate: start at 0.25 */
    for (int64_t k = 0; k < g.size; k++) g.data[k] = 0.25f;
    for (int k = 0; k < NX; k++) dx[k] = 0.25f;
    cr_tfm_backward(&m, &s, &g, dx, c, acts, t_len, TB, TL, scratch);
    for (int i = 0; i < CR_TFM_N_TENSORS; i++)
        for (int64_t k = 0; k < s.t[i].rows * s.t[i].cols; k++) an[ctx.off[i] + k] = cr_slab_at(&g, i)[k] - 0.25;
    for (int k = 0; k < NX; k++) an[NP + k] = dx[k] - 0.25;
    fd_check("causal transformer (all parameters and the input)", tfm_loss, theta, an, NT, &ctx);
    /* positions never valid (4: beyond L) get no gradient, nor do padding rows of the input */
    for (int j = 0; j < TD; j++) CHECK(cr_slab_at(&g, m.wpe)[4 * TD + j] == 0.25f);
    for (int b = 0; b < TB; b++)
        for (int t = (int)t_len[b]; t < TL; t++)
            for (int j = 0; j < TD; j++) CHECK(dx[(b * TL + t) * TD + j] == 0.25f);

    /* the scalar-reference linear layers agree with BLAS */
    cr_tfm mr = m;
    mr.ref = 1;
    float out2[TB * TL * TD];
    cr_tfm_forward(&mr, &s, out2, acts, x, t_len, TB, TL);
    double worst = 0;
    for (int k = 0; k < NX; k++) worst = fmax(worst, fabs(out[k] - out2[k]));
    cr_slab g2;
    CHECK_OK(cr_slab_like(&g2, &s));
    for (int64_t k = 0; k < g2.size; k++) g2.data[k] = 0.25f;
    cr_tfm_backward(&mr, &s, &g2, NULL, c, acts, t_len, TB, TL, scratch);
    for (int64_t k = 0; k < g.size; k++) worst = fmax(worst, fabs(g.data[k] - g2.data[k]));
    printf("     transformer, BLAS vs scalar linear layers: max |diff| %.3g over outputs and parameter gradients\n", worst);
    CHECK(worst < 1e-5);
    cr_slab_free(&g2);
    free(theta), free(an), free(acts), free(scratch);
    cr_slab_free(&s);
    cr_slab_free(&g);
}

TEST(nn_transformer_bind_refuses_misshapen) {
    cr_tfm m;
    memset(&m, 0, sizeof m);
    m.n_layers = 2, m.dim = 8, m.n_heads = 3, m.max_len = 8;
    CHECK_CONTAINS(cr_tfm_check(&m), "n_heads must divide dim");
    m.n_heads = 2, m.max_len = 65;
    CHECK_CONTAINS(cr_tfm_check(&m), "max_len");
    m.max_len = 8;
    cr_tensor t[CR_TFM_N_TENSORS];
    cr_tfm_tensors(&m, "t.", t, 0);
    CHECK_STR(t[3].name, "t.qkvw");
    CHECK(t[3].rows == 48 && t[3].cols == 8 && t[11].rows == 16 && t[11].cols == 32);
    t[9].rows = 63;
    cr_slab s;
    CHECK_OK(cr_slab_init(&s, t, CR_TFM_N_TENSORS));
    CHECK_STATUS(cr_tfm_bind(&m, &s, "t."), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "'t.fcw' is (63, 8), expected (64, 8)");
    CHECK_STATUS(cr_tfm_bind(&m, &s, "x."), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "'x.wpe' is missing");
    cr_slab_free(&s);
}

/* ---- sampled softmax ---- */

enum { SB = 4, SN = 7, SD = 5 };
typedef struct {
    const double *log_q;
    const uint64_t *mask;
    double temp;
} ssm_ctx;

/* theta = (U (SB, SD), C (SN, SD)) */
static double ssm_loss(const double *theta, const void *vctx) {
    const ssm_ctx *c = vctx;
    const double *U = theta, *C = theta + SB * SD;
    double L = 0;
    for (int b = 0; b < SB; b++) {
        double z[SN];
        for (int j = 0; j < SN; j++) {
            double s = 0;
            for (int k = 0; k < SD; k++) s += U[b * SD + k] * C[j * SD + k];
            z[j] = s / c->temp - (c->log_q ? c->log_q[j] : 0);
            if (c->mask && j != b && cr_hitmask_get(c->mask, SN, b, j)) z[j] = -INFINITY;
        }
        L += d_lse(z, SN, 1) - z[b];
    }
    return L / SB;
}

TEST(nn_sampled_softmax_finite_difference) {
    enum { NT = SB * SD + SN * SD };
    cr_rng r;
    cr_rng_named(&r, 32, "test.nn.ssm");
    float f[NT], lq[SN], probs[SB * SN], g[NT], g2[NT], probs2[SB * SN];
    double theta[NT], lqd[SN], an[NT];
    fill(f, NT, 1, &r);
    for (int j = 0; j < SN; j++) lq[j] = (float)log(0.05 + 0.1 * j);
    to_double(theta, f, NT), to_double(lqd, lq, SN);
    /* candidates 5 and 6 are sampled copies of items 1 and 3 (accidental hits of rows 1 and 3), and row 0's own
     * bit is set, which must be ignored */
    const int32_t item[SN] = {10, 11, 12, 13, 14, 11, 13};
    uint64_t mask[SB];
    cr_hitmask_from_items(mask, item, SB, SN);
    CHECK(cr_hitmask_get(mask, SN, 1, 5) && cr_hitmask_get(mask, SN, 3, 6) && !cr_hitmask_get(mask, SN, 0, 5));
    CHECK(!cr_hitmask_get(mask, SN, 1, 1) && !cr_hitmask_get(mask, SN, 2, 5));
    cr_hitmask_set(mask, SN, 0, 0);
    const float weight = 0.7f;
    for (int v = 0; v < 3; v++) {
        ssm_ctx ctx = {v >= 1 ? lqd : NULL, v >= 2 ? mask : NULL, v >= 1 ? 0.5 : 1.0};
        for (int k = 0; k < NT; k++) g[k] = g2[k] = 0.5f;
        double L = cr_sampled_softmax(g, g + SB * SD, probs, f, f + SB * SD, SB, SN, SD, (float)ctx.temp, v >= 1 ? lq : NULL,
                                      ctx.mask, weight);
        CHECK_NEAR(L, ssm_loss(theta, &ctx), 1e-5);
        for (int k = 0; k < NT; k++) an[k] = (g[k] - 0.5) / weight;
        fd_check(v == 0 ? "sampled softmax (in-batch + 3 sampled)" : v == 1 ? "sampled softmax (log-Q, temperature 0.5)"
                                                                             : "sampled softmax (log-Q, temperature, hit mask)",
                 ssm_loss, theta, an, NT, &ctx);
        double L2 = cr_sampled_softmax_ref(g2, g2 + SB * SD, probs2, f, f + SB * SD, SB, SN, SD, (float)ctx.temp,
                                           v >= 1 ? lq : NULL, ctx.mask, weight);
        CHECK_NEAR(L, L2, 1e-6);
        for (int k = 0; k < NT; k++) CHECK_NEAR(g[k], g2[k], 1e-6);
    }
    /* probs holds the logit gradients: exactly 0 at the masked (1, 5) and (3, 6), not at the unmasked (0, 5) */
    CHECK(probs[1 * SN + 5] == 0.0f && probs[3 * SN + 6] == 0.0f && probs[0 * SN + 5] != 0.0f);
    /* huge logits stay finite */
    float big[NT];
    for (int k = 0; k < NT; k++) big[k] = f[k] * 300.0f;
    memset(g, 0, sizeof g);
    double Lb = cr_sampled_softmax(g, g + SB * SD, probs, big, big + SB * SD, SB, SN, SD, 1.0f, NULL, mask, 1.0f);
    CHECK(isfinite(Lb));
    for (int k = 0; k < NT; k++) CHECK(isfinite(g[k]));
}

/* distillation: theta = (U, C) as above; the loss is the cross-entropy against fixed target rows */
typedef struct {
    ssm_ctx s;
    const double *target;   /* (SB, SN) */
} distill_ctx;

static double distill_loss(const double *theta, const void *vctx) {
    const distill_ctx *c = vctx;
    const double *U = theta, *C = theta + SB * SD;
    double L = 0;
    for (int b = 0; b < SB; b++) {
        double z[SN];
        for (int j = 0; j < SN; j++) {
            double s = 0;
            for (int k = 0; k < SD; k++) s += U[b * SD + k] * C[j * SD + k];
            z[j] = s / c->s.temp - (c->s.log_q ? c->s.log_q[j] : 0);
            if (c->s.mask && j != b && cr_hitmask_get(c->s.mask, SN, b, j)) z[j] = -INFINITY;
        }
        double lse = d_lse(z, SN, 1);
        for (int j = 0; j < SN; j++)
            if (c->target[b * SN + j] > 0) L += c->target[b * SN + j] * (lse - z[j]);
    }
    return L / SB;
}

TEST(nn_softmax_distill_finite_difference) {
    enum { NT = SB * SD + SN * SD };
    cr_rng r;
    cr_rng_named(&r, 34, "test.nn.distill");
    float f[NT], teacher[NT], lq[SN], probs[SB * SN], target[SB * SN], g[NT];
    double theta[NT], lqd[SN], an[NT], td[SB * SN];
    fill(f, NT, 1, &r), fill(teacher, NT, 1, &r);
    for (int j = 0; j < SN; j++) lq[j] = (float)log(0.05 + 0.1 * j);
    to_double(theta, f, NT), to_double(lqd, lq, SN);
    const int32_t item[SN] = {10, 11, 12, 13, 14, 11, 13};
    uint64_t mask[SB];
    cr_hitmask_from_items(mask, item, SB, SN);
    /* the target: a teacher's distributions over the same candidates; rows sum to 1, masked entries are 0 */
    cr_softmax_rows(target, teacher, teacher + SB * SD, SB, SN, SD, 0.3f, lq, mask);
    for (int b = 0; b < SB; b++) {
        double sum = 0;
        for (int j = 0; j < SN; j++) sum += target[b * SN + j];
        CHECK_NEAR(sum, 1.0, 1e-6);
    }
    CHECK(target[1 * SN + 5] == 0.0f && target[3 * SN + 6] == 0.0f);
    to_double(td, target, SB * SN);
    distill_ctx ctx = {{lqd, mask, 0.5}, td};
    for (int k = 0; k < NT; k++) g[k] = 0.5f;
    const float weight = 0.7f;
    double L = cr_softmax_distill(g, g + SB * SD, probs, f, f + SB * SD, SB, SN, SD, 0.5f, lq, mask, target, weight);
    CHECK_NEAR(L, distill_loss(theta, &ctx), 1e-5);
    for (int k = 0; k < NT; k++) an[k] = (g[k] - 0.5) / weight;
    fd_check("softmax distillation (soft targets, log-Q, temperature, hit mask)", distill_loss, theta, an, NT, &ctx);
    /* a one-hot target is the sampled softmax */
    float onehot[SB * SN] = {0}, g1[NT] = {0}, g2[NT] = {0};
    for (int b = 0; b < SB; b++) onehot[b * SN + b] = 1.0f;
    double L1 = cr_softmax_distill(g1, g1 + SB * SD, probs, f, f + SB * SD, SB, SN, SD, 0.5f, lq, mask, onehot, 1.0f);
    double L2 = cr_sampled_softmax(g2, g2 + SB * SD, probs, f, f + SB * SD, SB, SN, SD, 0.5f, lq, mask, 1.0f);
    CHECK_NEAR(L1, L2, 1e-6);
    for (int k = 0; k < NT; k++) CHECK_NEAR(g1[k], g2[k], 1e-7);
}

TEST(nn_sampled_softmax_fast_matches_reference) {
    /* larger, odd sizes: BLAS and threads against the scalar loops; bit-identical at 1 and 2 threads */
    enum { B = 67, N = 1031, D = 24 };
    cr_rng r;
    cr_rng_named(&r, 33, "test.nn.ssm.fast");
    float *U = malloc(B * D * sizeof *U), *C = malloc(N * D * sizeof *C), *lq = malloc(N * sizeof *lq);
    float *p = malloc(B * N * sizeof *p);
    fill(U, B * D, 1, &r), fill(C, N * D, 1, &r);
    for (int j = 0; j < N; j++) lq[j] = (float)log(1e-4 + cr_rng_uniform(&r) * 1e-2);
    int32_t *item = malloc(N * sizeof *item);
    for (int j = 0; j < N; j++) item[j] = (int32_t)cr_rng_below(&r, 500);
    uint64_t *mask = malloc(B * cr_hitmask_words(N) * sizeof *mask);
    cr_hitmask_from_items(mask, item, B, N);
    float *g[3];
    double L[3];
    int saved = max_threads();
    for (int v = 0; v < 3; v++) {
        g[v] = calloc((B + N) * D, sizeof(float));
        set_threads(v == 2 ? 2 : 1);
        L[v] = (v ? cr_sampled_softmax : cr_sampled_softmax_ref)(g[v], g[v] + B * D, p, U, C, B, N, D, 0.2f, lq, mask, 1.0f);
    }
    set_threads(saved);
    double worst = 0, gmax = 0;
    for (int k = 0; k < (B + N) * D; k++) worst = fmax(worst, fabs(g[0][k] - g[1][k])), gmax = fmax(gmax, fabs(g[0][k]));
    printf("     sampled softmax %d x %d (d %d): loss %.9g (ref %.9g), max |grad diff| BLAS vs scalar %.3g (max |grad| %.3g)\n", B,
           N, D, L[1], L[0], worst, gmax);
    CHECK_NEAR(L[0], L[1], 1e-5 * fabs(L[0]));
    CHECK(worst < 1e-5 * gmax);
    CHECK(L[1] == L[2] && !memcmp(g[1], g[2], (B + N) * D * sizeof(float)));
    for (int v = 0; v < 3; v++) free(g[v]);
    free(U), free(C), free(lq), free(p), free(item), free(mask);
}

/* ---- BPR ---- */

enum { BB = 5, BD = 4 };

static double bpr_ref(const double *theta, const void *ctx) {
    const double *u = theta, *p = u + BB * BD, *n = p + BB * BD;
    double L = 0;
    for (int b = 0; b < BB; b++) {
        double x = 0;
        for (int k = 0; k < BD; k++) x += u[b * BD + k] * (p[b * BD + k] - n[b * BD + k]);
        L += log1p(exp(-x));
    }
    return L / BB;
}

TEST(nn_bpr_finite_difference) {
    enum { NT = 3 * BB * BD };
    cr_rng r;
    cr_rng_named(&r, 34, "test.nn.bpr");
    float f[NT], g[NT];
    double theta[NT], an[NT];
    fill(f, NT, 1.2, &r);
    to_double(theta, f, NT);
    for (int k = 0; k < NT; k++) g[k] = 1.0f;
    double L = cr_bpr_loss(g, g + BB * BD, g + 2 * BB * BD, f, f + BB * BD, f + 2 * BB * BD, BB, BD, 2.0f);
    CHECK_NEAR(L, bpr_ref(theta, NULL), 1e-6);
    for (int k = 0; k < NT; k++) an[k] = (g[k] - 1.0) / 2.0;
    fd_check("bpr (u, pos, neg)", bpr_ref, theta, an, NT, NULL);
    /* far margins: softplus without overflow */
    float u[1] = {100}, p[1] = {-100}, n[1] = {100}, du[1] = {0};
    CHECK_NEAR(cr_bpr_loss(du, NULL, NULL, u, p, n, 1, 1, 1.0f), 20000, 1e-3);
    CHECK_NEAR(du[0], 200, 1e-4);     /* d/du softplus(-(u (p - n))) = -(p - n) sigmoid(...) = 200 */
    p[0] = 100, n[0] = -100;
    CHECK_NEAR(cr_bpr_loss(NULL, NULL, NULL, u, p, n, 1, 1, 1.0f), 0, 1e-12);
}

/* ---- InfoNCE ---- */

enum { IN_N = 5, IN_D = 4 };
typedef struct {
    double tau;
    int sym;
} nce_ctx;

static double infonce_ref_loss(const double *theta, const void *vctx) {
    const nce_ctx *c = vctx;
    double a[IN_N * IN_D], b[IN_N * IN_D], z[IN_N * IN_N];
    d_l2norm(a, theta, IN_N, IN_D);
    d_l2norm(b, theta + IN_N * IN_D, IN_N, IN_D);
    for (int i = 0; i < IN_N; i++)
        for (int j = 0; j < IN_N; j++) {
            double s = 0;
            for (int k = 0; k < IN_D; k++) s += a[i * IN_D + k] * b[j * IN_D + k];
            z[i * IN_N + j] = s / c->tau;
        }
    double row = 0, col = 0;
    for (int i = 0; i < IN_N; i++) row += d_lse(z + i * IN_N, IN_N, 1) - z[i * IN_N + i];
    for (int j = 0; j < IN_N; j++) col += d_lse(z + j, IN_N, IN_N) - z[j * IN_N + j];
    return c->sym ? 0.5 * (row + col) / IN_N : row / IN_N;
}

TEST(nn_infonce_finite_difference) {
    enum { NT = 2 * IN_N * IN_D };
    cr_rng r;
    cr_rng_named(&r, 35, "test.nn.infonce");
    float f[NT], g[NT], g2[NT];
    double theta[NT], an[NT];
    fill(f, NT, 1, &r);
    to_double(theta, f, NT);
    float *scratch = malloc((size_t)cr_infonce_scratch_size(IN_N, IN_D) * sizeof *scratch);
    for (int sym = 0; sym < 2; sym++) {
        nce_ctx ctx = {0.2, sym};
        for (int k = 0; k < NT; k++) g[k] = g2[k] = -1.0f;
        double L = cr_infonce(g, g + IN_N * IN_D, scratch, f, f + IN_N * IN_D, IN_N, IN_D, 0.2f, sym, 0.5f);
        CHECK_NEAR(L, infonce_ref_loss(theta, &ctx), 1e-5);
        for (int k = 0; k < NT; k++) an[k] = (g[k] + 1.0) / 0.5;
        fd_check(sym ? "infonce (symmetric, tau 0.2, through L2 normalisation)" : "infonce (one-sided, tau 0.2)",
                 infonce_ref_loss, theta, an, NT, &ctx);
        double L2 = cr_infonce_ref(g2, g2 + IN_N * IN_D, scratch, f, f + IN_N * IN_D, IN_N, IN_D, 0.2f, sym, 0.5f);
        CHECK_NEAR(L, L2, 1e-6);
        for (int k = 0; k < NT; k++) CHECK_NEAR(g[k], g2[k], 1e-6);
    }
    free(scratch);
}

TEST(nn_infonce_fast_matches_reference) {
    enum { N = 301, D = 17 };
    cr_rng r;
    cr_rng_named(&r, 36, "test.nn.infonce.fast");
    float *a = malloc(N * D * sizeof *a), *b = malloc(N * D * sizeof *b);
    float *scratch = malloc((size_t)cr_infonce_scratch_size(N, D) * sizeof *scratch);
    fill(a, N * D, 1, &r), fill(b, N * D, 1, &r);
    for (int k = 0; k < N * D; k++) b[k] = 0.7f * a[k] + 0.3f * b[k];     /* aligned pairs, a real signal */
    float *g[3];
    double L[3];
    int saved = max_threads();
    for (int v = 0; v < 3; v++) {
        g[v] = calloc(2 * N * D, sizeof(float));
        set_threads(v == 2 ? 2 : 1);
        L[v] = (v ? cr_infonce : cr_infonce_ref)(g[v], g[v] + N * D, scratch, a, b, N, D, 0.1f, 1, 1.0f);
    }
    set_threads(saved);
    double worst = 0;
    for (int k = 0; k < 2 * N * D; k++) worst = fmax(worst, fabs(g[0][k] - g[1][k]));
    printf("     infonce n %d d %d: loss %.9g (ref %.9g), max |grad diff| BLAS vs scalar %.3g\n", N, D, L[1], L[0], worst);
    CHECK_NEAR(L[0], L[1], 1e-5 * fabs(L[0]));
    CHECK(worst < 1e-6);
    CHECK(L[1] == L[2] && !memcmp(g[1], g[2], 2 * N * D * sizeof(float)));
    for (int v = 0; v < 3; v++) free(g[v]);
    free(a), free(b), free(scratch);
}

/* ---- softmax cross-entropy ---- */

enum { XB = 4, XK = 3 };
static const int32_t x_lab[XB] = {2, 0, 1, 2};

static double xent_ref(const double *z, const void *ctx) {
    double L = 0;
    for (int b = 0; b < XB; b++) L += d_lse(z + b * XK, XK, 1) - z[b * XK + x_lab[b]];
    return L / XB;
}

TEST(nn_softmax_xent_finite_difference) {
    cr_rng r;
    cr_rng_named(&r, 37, "test.nn.xent");
    float z[XB * XK], g[XB * XK];
    double zd[XB * XK], an[XB * XK];
    fill(z, XB * XK, 2, &r);
    to_double(zd, z, XB * XK);
    for (int k = 0; k < XB * XK; k++) g[k] = 0.1f;
    double L = cr_softmax_xent(g, z, x_lab, XB, XK, 1.0f);
    CHECK_NEAR(L, xent_ref(zd, NULL), 1e-6);
    for (int k = 0; k < XB * XK; k++) an[k] = g[k] - 0.1;
    fd_check("softmax cross-entropy", xent_ref, zd, an, XB * XK, NULL);
    /* logits of 1e4: the max subtraction keeps it finite; the loss of a sure right answer is 0 */
    float big[3] = {1e4f, 0, -1e4f}, gb[3] = {0, 0, 0};
    int32_t lab = 0;
    CHECK_NEAR(cr_softmax_xent(gb, big, &lab, 1, 3, 1.0f), 0, 1e-12);
    lab = 2;
    CHECK_NEAR(cr_softmax_xent(gb, big, &lab, 1, 3, 1.0f), 2e4, 1e-2);
    for (int k = 0; k < 3; k++) CHECK(isfinite(gb[k]));
}

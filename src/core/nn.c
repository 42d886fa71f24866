/* nn.c — small dense layers with hand-written forward and backward passes (nn.h): linear, elementwise
 * activations (relu, tanh), mean squared error, and a multi-layer perceptron built from them.
 *
 * Everything is a plain scalar loop over row-major float arrays with explicit sizes, except the linear layer's
 * products above a small size, which go to OpenBLAS (cr_linear_*_blas, nn_dense.c); the scalar loops stay as its reference
 * (cr_linear_*_ref), against which the tests check it. Scalar sums are accumulated in float in index order; the
 * BLAS products in OpenBLAS's order, which is fixed for given shapes and thread count.
 *
 * Invariants: gradients are accumulated (+=) into buffers the caller zeroed; forward passes never write
 * their inputs (except the documented in-place activation); nothing here allocates. */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- linear ---- */

void cr_linear_forward_ref(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out) {
    /* y (B, out), x (B, in), w (out, in), b (out) */
    for (int64_t r = 0; r < B; r++) {
        const float *xr = x + r * in;
        for (int64_t o = 0; o < out; o++) {
            const float *wo = w + o * in;
            float s = b ? b[o] : 0.0f;
            for (int64_t k = 0; k < in; k++) s += wo[k] * xr[k];
            y[r * out + o] = s;
        }
    }
}

void cr_linear_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                            int64_t in, int64_t out) {
    /* dy (B, out), x (B, in), w (out, in); dx (B, in), dw (out, in), db (out) */
    for (int64_t r = 0; r < B; r++) {
        const float *dyr = dy + r * out, *xr = x + r * in;
        for (int64_t o = 0; o < out; o++) {
            float g = dyr[o];
            if (db) db[o] += g;
            if (dw) {
                float *dwo = dw + o * in;
                for (int64_t k = 0; k < in; k++) dwo[k] += g * xr[k];
            }
            if (dx) {
                const float *wo = w + o * in;
                float *dxr = dx + r * in;
                for (int64_t k = 0; k < in; k++) dxr[k] += g * wo[k];
            }
        }
    }
}

/* Below this many multiply-adds a product stays in the scalar loops (a BLAS call costs more than it saves). */
#define LINEAR_BLAS_MIN (1 << 14)

static int use_blas(int64_t B, int64_t in, int64_t out) {
    return B * in * out >= LINEAR_BLAS_MIN && B <= INT32_MAX && in <= INT32_MAX && out <= INT32_MAX;
}

void cr_linear_forward(float *y, const float *x, const float *w, const float *b, int64_t B, int64_t in, int64_t out) {
    if (use_blas(B, in, out)) cr_linear_forward_blas(y, x, w, b, B, in, out);
    else cr_linear_forward_ref(y, x, w, b, B, in, out);
}

void cr_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int64_t B,
                        int64_t in, int64_t out) {
    if (use_blas(B, in, out)) cr_linear_backward_blas(dx, dw, db, dy, x, w, B, in, out);
    else cr_linear_backward_ref(dx, dw, db, dy, x, w, B, in, out);
}

/* ---- activations ---- */

void cr_act_forward(float *y, const float *x, int64_t n, cr_activation act) {
    switch (act) {
    case CR_ACT_NONE:
        if (y != x) memmove(y, x, (size_t)n * sizeof *y);
        break;
    case CR_ACT_RELU:
        for (int64_t k = 0; k < n; k++) y[k] = x[k] > 0 ? x[k] : 0.0f;
        break;
    case CR_ACT_TANH:
        for (int64_t k = 0; k < n; k++) y[k] = tanhf(x[k]);
        break;
    }
}

void cr_act_backward(float *dx, const float *dy, const float *x, const float *y, int64_t n, cr_activation act) {
    switch (act) {
    case CR_ACT_NONE:
        for (int64_t k = 0; k < n; k++) dx[k] += dy[k];
        break;
    case CR_ACT_RELU:
        /* the subgradient at exactly 0 is taken as 0 */
        for (int64_t k = 0; k < n; k++) dx[k] += x[k] > 0 ? dy[k] : 0.0f;
        break;
    case CR_ACT_TANH:
        /* tanh'(x) = 1 - tanh(x)^2, from the forward output: no second tanhf */
        for (int64_t k = 0; k < n; k++) dx[k] += dy[k] * (1.0f - y[k] * y[k]);
        break;
    }
}

/* ---- loss ---- */

double cr_mse(float *dy, const float *y, const float *t, int64_t n) {
    if (n <= 0) return 0.0;
    /* the loss in double: it is reported and compared across epochs, and n may be a whole batch of vectors */
    double s = 0.0;
    float scale = (float)(2.0 / (double)n);
    for (int64_t k = 0; k < n; k++) {
        float e = y[k] - t[k];
        s += (double)e * e;
        if (dy) dy[k] = scale * e;
    }
    return s / (double)n;
}

/* ---- multi-layer perceptron ---- */

int cr_mlp_tensors(const cr_mlp *m, const char *prefix, cr_tensor *t, int n) {
    CR_ASSERT(m->n_layers >= 1 && m->n_layers <= CR_MLP_MAX_LAYERS);
    for (int k = 0; k < m->n_layers; k++) {
        cr_tensor *w = &t[n++], *b = &t[n++];
        memset(w, 0, sizeof *w);
        memset(b, 0, sizeof *b);
        snprintf(w->name, sizeof w->name, "%sw%d", prefix, k);
        snprintf(b->name, sizeof b->name, "%sb%d", prefix, k);
        w->rows = m->width[k + 1], w->cols = m->width[k];      /* (out, in) */
        b->rows = 1, b->cols = m->width[k + 1];                 /* (1, out) */
    }
    return n;
}

cr_status cr_mlp_bind(cr_mlp *m, const cr_slab *s, const char *prefix) {
    if (m->n_layers < 1 || m->n_layers > CR_MLP_MAX_LAYERS)
        return cr_fail(CR_ERR_FORMAT, "mlp '%s': %d layers (expected 1..%d)", prefix, m->n_layers, CR_MLP_MAX_LAYERS);
    for (int k = 0; k < m->n_layers; k++) {
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "%sw%d", prefix, k);
        snprintf(bn, sizeof bn, "%sb%d", prefix, k);
        int wi = cr_slab_find(s, wn), bi = cr_slab_find(s, bn);
        if (wi < 0 || bi < 0) return cr_fail(CR_ERR_FORMAT, "mlp: tensor '%s' is missing", wi < 0 ? wn : bn);
        const cr_tensor *w = &s->t[wi], *b = &s->t[bi];
        if (w->rows != m->width[k + 1] || w->cols != m->width[k])
            return cr_fail(CR_ERR_FORMAT, "mlp: tensor '%s' is (%lld, %lld), expected (%lld, %lld)", wn, (long long)w->rows,
                           (long long)w->cols, (long long)m->width[k + 1], (long long)m->width[k]);
        if (b->rows != 1 || b->cols != m->width[k + 1])
            return cr_fail(CR_ERR_FORMAT, "mlp: tensor '%s' is (%lld, %lld), expected (1, %lld)", bn, (long long)b->rows,
                           (long long)b->cols, (long long)m->width[k + 1]);
        m->w_index[k] = wi;
        m->b_index[k] = bi;
    }
    return CR_OK;
}

void cr_mlp_init(cr_mlp *m, cr_slab *s, cr_rng *r) {
    for (int k = 0; k < m->n_layers; k++) {
        /* variance 1/in keeps the pre-activations of unit-variance inputs near unit variance (LeCun) */
        cr_slab_normal(s, m->w_index[k], sqrt(1.0 / (double)m->width[k]), r);
        memset(cr_slab_at(s, m->b_index[k]), 0, (size_t)m->width[k + 1] * sizeof(float));
    }
}

int64_t cr_mlp_act_size(const cr_mlp *m, int64_t B) {
    int64_t n = 0;
    for (int k = 0; k < m->n_layers; k++) n += B * m->width[k + 1];
    return n;
}

void cr_mlp_forward(const cr_mlp *m, const cr_slab *s, const float *x, int64_t B, float *pre, float *acts) {
    /* layer k's block of pre / acts is (B, width[k+1]), the blocks one after the other */
    const float *in = x;
    int64_t off = 0;
    for (int k = 0; k < m->n_layers; k++) {
        int64_t ni = m->width[k], no = m->width[k + 1];
        float *p = pre + off, *a = acts + off;
        cr_linear_forward(p, in, cr_slab_at(s, m->w_index[k]), cr_slab_at(s, m->b_index[k]), B, ni, no);
        cr_act_forward(a, p, B * no, k + 1 < m->n_layers ? m->act : CR_ACT_NONE);
        in = a;
        off += B * no;
    }
}

void cr_mlp_backward(const cr_mlp *m, const cr_slab *s, cr_slab *g, const float *x, int64_t B, const float *pre,
                     const float *acts, const float *dout, float *dx, float *scratch) {
    int64_t maxw = 0;
    for (int k = 0; k <= m->n_layers; k++) maxw = m->width[k] > maxw ? m->width[k] : maxw;
    /* Two buffers of (B, maxw): `delta` holds the gradient of the current layer's pre-activation, `dact` the
     * gradient of its input (the previous layer's output), which the next step down turns into its delta. */
    float *delta = scratch, *dact = scratch + B * maxw;
    int64_t off[CR_MLP_MAX_LAYERS];
    int64_t o = 0;
    for (int k = 0; k < m->n_layers; k++) off[k] = o, o += B * m->width[k + 1];
    const float *d = dout;     /* gradient of layer k's pre-activation; the last layer has no activation */
    for (int k = m->n_layers - 1; k >= 0; k--) {
        int64_t ni = m->width[k], no = m->width[k + 1];
        if (k + 1 < m->n_layers) {
            /* dact holds d(loss)/d(acts_k) (B, no) from the layer above */
            memset(delta, 0, (size_t)(B * no) * sizeof *delta);
            cr_act_backward(delta, dact, pre + off[k], acts + off[k], B * no, m->act);
            d = delta;
        }
        const float *in = k ? acts + off[k - 1] : x;    /* (B, ni) */
        float *dx_k = k ? dact : dx;                    /* (B, ni) or NULL */
        if (dx_k) memset(dx_k, 0, (size_t)(B * ni) * sizeof *dx_k);
        cr_linear_backward(dx_k, g->data + g->t[m->w_index[k]].offset, g->data + g->t[m->b_index[k]].offset, d, in,
                           cr_slab_at(s, m->w_index[k]), B, ni, no);
    }
}

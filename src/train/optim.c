/* optim.c — optimizers over parameter slabs: SGD, Adagrad and Adam, lazy (sparse-row) updates.
 *
 * Moments live in slabs of the parameter slab's layout (Adagrad: v; Adam: m and v; SGD: none), so a model
 * updates a row by its slab offset and the moments of exactly those entries change. Adam's bias correction
 * uses the optimizer's global step (cr_opt_step once per batch), not a per-entry count: that is the common
 * "lazy Adam" of sparse embeddings.
 *
 * cr_opt_update_ref is the scalar oracle. cr_opt_update is the same arithmetic with the loop invariants
 * hoisted and the loop vectorised; it must give bit-identical results, so every expression below is written
 * once per element in the same order and type in both versions (float; the bias corrections are computed in
 * double by one helper and rounded to float), and contraction into FMA is off so that the vectorised loop
 * cannot round differently from the scalar one. */
#include "crossrec/train.h"

#include <math.h>
#include <string.h>

/* GCC in ISO C mode (-std=c17) already does not contract; clang needs to be told. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* `omp simd` only asks for vectorisation (no threads). GCC only: without OpenMP (make OMP=0) the pragma would
 * be an unknown one, and clang turns a loop it cannot vectorise (sanitizer builds; sqrtf, which may set errno
 * unless built with -fno-math-errno) into a -Werror failure. clang vectorises the plain loops by itself. */
#if defined(_OPENMP) && !defined(__clang__)
#define CR_OPT_SIMD _Pragma("omp simd")
#else
#define CR_OPT_SIMD
#endif

cr_opt_params cr_opt_default_params(cr_opt_kind kind) {
    cr_opt_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.lr = kind == CR_OPT_ADAM ? 0.001f : 0.05f;
    p.beta1 = 0.9f;
    p.beta2 = 0.999f;
    /* Adagrad and Adam both use 1e-8: it only guards the first update of an entry whose gradient is still 0
     * (0 / (0 + eps) = 0 instead of NaN) and is far below sqrt(v) for any gradient that matters. */
    p.eps = 1e-8f;
    p.weight_decay = 0.0f;
    return p;
}

static const char *const opt_names[] = {"sgd", "adagrad", "adam"};

const char *cr_opt_name(cr_opt_kind kind) {
    if ((int)kind < 0 || (int)kind >= (int)(sizeof opt_names / sizeof opt_names[0])) return "unknown";
    return opt_names[kind];
}

int cr_opt_from_name(const char *name, cr_opt_kind *kind) {
    if (!name) return -1;
    for (int i = 0; i < (int)(sizeof opt_names / sizeof opt_names[0]); i++)
        if (!strcmp(name, opt_names[i])) {
            *kind = (cr_opt_kind)i;
            return 0;
        }
    return -1;
}

cr_status cr_opt_init(cr_optimizer *o, const cr_slab *params, const cr_opt_params *p) {
    memset(o, 0, sizeof *o);
    if ((int)p->kind < CR_OPT_SGD || p->kind > CR_OPT_ADAM) return cr_fail(CR_ERR_ARG, "unknown optimizer kind %d", (int)p->kind);
    if (!isfinite(p->lr) || p->lr < 0) return cr_fail(CR_ERR_ARG, "learning rate must be a finite number >= 0 (got %g)", (double)p->lr);
    if (!isfinite(p->weight_decay) || p->weight_decay < 0)
        return cr_fail(CR_ERR_ARG, "weight decay must be a finite number >= 0 (got %g)", (double)p->weight_decay);
    if (p->kind != CR_OPT_SGD && !(p->eps > 0 && isfinite(p->eps)))
        return cr_fail(CR_ERR_ARG, "%s: eps must be a finite number > 0 (got %g)", cr_opt_name(p->kind), (double)p->eps);
    if (p->kind == CR_OPT_ADAM && !(p->beta1 >= 0 && p->beta1 < 1 && p->beta2 >= 0 && p->beta2 < 1))
        return cr_fail(CR_ERR_ARG, "adam: beta1 and beta2 must be in [0, 1) (got %g, %g)", (double)p->beta1, (double)p->beta2);
    o->p = *p;
    cr_status st;
    if (p->kind != CR_OPT_SGD && (st = cr_slab_like(&o->v, params)) != CR_OK) goto fail;
    if (p->kind == CR_OPT_ADAM && (st = cr_slab_like(&o->m, params)) != CR_OK) goto fail;
    return CR_OK;
fail:
    cr_errmsg_prefix("optimizer moments");
    cr_opt_free(o);
    return st;
}

void cr_opt_free(cr_optimizer *o) {
    if (!o) return;
    cr_slab_free(&o->m);
    cr_slab_free(&o->v);
    memset(o, 0, sizeof *o);
}

/* 1 - beta^t for Adam's bias correction, t = max(step, 1) so that an update before the first cr_opt_step
 * is corrected as step 1 rather than divided by zero. */
static float bias_correction(float beta, int64_t step) {
    double t = (double)(step > 1 ? step : 1);
    return (float)(1.0 - pow((double)beta, t));
}

void cr_opt_update_ref(cr_optimizer *o, cr_slab *params, int64_t off, const float *g, int64_t n, float lr) {
    CR_ASSERT(off >= 0 && n >= 0 && off + n <= params->size);
    const cr_opt_params *p = &o->p;
    for (int64_t k = 0; k < n; k++) {
        float *x = &params->data[off + k];
        float grad = g[k] + p->weight_decay * *x;
        switch (p->kind) {
        case CR_OPT_SGD:
            *x -= lr * grad;
            break;
        case CR_OPT_ADAGRAD: {
            float *v = &o->v.data[off + k];
            *v += grad * grad;
            *x -= lr * grad / (sqrtf(*v) + p->eps);
            break;
        }
        case CR_OPT_ADAM: {
            float *m = &o->m.data[off + k], *v = &o->v.data[off + k];
            *m = p->beta1 * *m + (1.0f - p->beta1) * grad;
            *v = p->beta2 * *v + (1.0f - p->beta2) * (grad * grad);
            float mhat = *m / bias_correction(p->beta1, o->step);
            float vhat = *v / bias_correction(p->beta2, o->step);
            *x -= lr * mhat / (sqrtf(vhat) + p->eps);
            break;
        }
        }
    }
}

void cr_opt_update(cr_optimizer *o, cr_slab *params, int64_t off, const float *g, int64_t n, float lr) {
    CR_ASSERT(off >= 0 && n >= 0 && off + n <= params->size);
    const float wd = o->p.weight_decay, eps = o->p.eps;
    float *restrict x = params->data + off;     /* (n) */
    const float *restrict gr = g;               /* (n) */
    switch (o->p.kind) {
    case CR_OPT_SGD:
        CR_OPT_SIMD
        for (int64_t k = 0; k < n; k++) {
            float grad = gr[k] + wd * x[k];
            x[k] -= lr * grad;
        }
        break;
    case CR_OPT_ADAGRAD: {
        float *restrict v = o->v.data + off;
        CR_OPT_SIMD
        for (int64_t k = 0; k < n; k++) {
            float grad = gr[k] + wd * x[k];
            v[k] += grad * grad;
            x[k] -= lr * grad / (sqrtf(v[k]) + eps);
        }
        break;
    }
    case CR_OPT_ADAM: {
        float *restrict m = o->m.data + off, *restrict v = o->v.data + off;
        const float b1 = o->p.beta1, b2 = o->p.beta2, c1 = 1.0f - b1, c2 = 1.0f - b2;
        const float bc1 = bias_correction(b1, o->step), bc2 = bias_correction(b2, o->step);
        CR_OPT_SIMD
        for (int64_t k = 0; k < n; k++) {
            float grad = gr[k] + wd * x[k];
            m[k] = b1 * m[k] + c1 * grad;
            v[k] = b2 * v[k] + c2 * (grad * grad);
            float mhat = m[k] / bc1;
            float vhat = v[k] / bc2;
            x[k] -= lr * mhat / (sqrtf(vhat) + eps);
        }
        break;
    }
    }
}

/* slab.c — parameter slabs: named tensors as views into one 64-byte aligned float array. */
#include "crossrec/core.h"

#include <math.h>
#include <string.h>

/* cr_malloc keeps 16-byte alignment; slabs want 64 (cache lines, AVX-512 loads): over-allocate and keep the
 * original pointer just before the aligned block. */
static float *alloc_aligned(int64_t n) {
    size_t bytes = (size_t)n * sizeof(float) + 64 + sizeof(void *);
    unsigned char *raw = cr_malloc(bytes);
    if (!raw) return NULL;
    uintptr_t at = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    memcpy((void *)(at - sizeof(void *)), &raw, sizeof raw);
    memset((void *)at, 0, (size_t)n * sizeof(float));
    return (float *)at;
}

static void free_aligned(float *p) {
    if (!p) return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    cr_free(raw);
}

cr_status cr_slab_init(cr_slab *s, const cr_tensor *tensors, int n) {
    memset(s, 0, sizeof *s);
    if (n < 0 || n > CR_MAX_TENSORS) return cr_fail(CR_ERR_ARG, "a slab holds at most %d tensors (got %d)", CR_MAX_TENSORS, n);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        const cr_tensor *t = &tensors[i];
        if (t->rows < 0 || t->cols < 0 || (t->cols && t->rows > INT64_MAX / 4 / t->cols))
            return cr_fail(CR_ERR_ARG, "tensor '%s' has a bad shape (%lld, %lld)", t->name, (long long)t->rows, (long long)t->cols);
        if (!memchr(t->name, 0, sizeof t->name)) return cr_fail(CR_ERR_ARG, "tensor name too long");
        s->t[i] = *t;
        s->t[i].offset = at;
        at += (t->rows * t->cols + 15) / 16 * 16;
    }
    s->n = n;
    s->size = at;
    if (!(s->data = alloc_aligned(at ? at : 16))) return cr_fail(CR_ERR_NOMEM, "out of memory (parameters: %lld floats)", (long long)at);
    return CR_OK;
}

cr_status cr_slab_like(cr_slab *dst, const cr_slab *src) { return cr_slab_init(dst, src->t, src->n); }

void cr_slab_free(cr_slab *s) {
    if (!s->borrowed) free_aligned(s->data);
    memset(s, 0, sizeof *s);
}

int cr_slab_find(const cr_slab *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return i;
    return -1;
}

void cr_slab_normal(cr_slab *s, int i, double std, cr_rng *r) {
    float *x = cr_slab_at(s, i);
    int64_t n = s->t[i].rows * s->t[i].cols;
    for (int64_t k = 0; k < n; k++) x[k] = std > 0 ? (float)(std * cr_rng_normal(r)) : 0.0f;
}

/* alloc.c — the allocation table: counting malloc/realloc/free, fault injection, arena, string pool.
 *
 * Every block carries a 16-byte header holding its size, so frees can be counted exactly. Counters are
 * C11 atomics so OpenMP workers may allocate. Fault injection counts down allocations and fails one. */
#include "crossrec/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16  /* keeps malloc's 16-byte alignment for the caller */

static _Atomic int64_t live_bytes, peak_bytes, n_allocs, n_live;
static _Atomic int64_t fail_countdown;   /* > 0: allocations left before the one that fails */
static _Atomic int fault_hit;

static int should_fail(void) {
    if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) <= 0) return 0;
    if (atomic_fetch_sub(&fail_countdown, 1) == 1) {
        atomic_store(&fault_hit, 1);
        return 1;
    }
    return 0;
}

static void account(int64_t delta) {
    int64_t now = atomic_fetch_add(&live_bytes, delta) + delta;
    int64_t peak = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
}

void *cr_malloc(size_t size) {
    if (size > SIZE_MAX - HDR || should_fail()) return NULL;
    unsigned char *p = malloc(size + HDR);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    account((int64_t)size);
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&n_live, 1);
    return p + HDR;
}

void *cr_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = cr_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *cr_realloc(void *ptr, size_t size) {
    if (!ptr) return cr_malloc(size);
    if (size > SIZE_MAX - HDR || should_fail()) return NULL;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *p = realloc(base, size + HDR);
    if (!p) return NULL;
    memcpy(p, &size, sizeof size);
    account((int64_t)size - (int64_t)old);
    atomic_fetch_add(&n_allocs, 1);
    return p + HDR;
}

void cr_free(void *ptr) {
    if (!ptr) return;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    account(-(int64_t)old);
    atomic_fetch_sub(&n_live, 1);
    free(base);
}

cr_status cr_grow(void **p, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return CR_OK;
    int64_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap *= 2;
    if ((uint64_t)ncap > SIZE_MAX / elem) return cr_fail(CR_ERR_NOMEM, "out of memory (array of %lld)", (long long)need);
    void *q = cr_realloc(*p, (size_t)ncap * elem);
    if (!q) return cr_fail(CR_ERR_NOMEM, "out of memory growing an array to %lld bytes", (long long)(ncap * (int64_t)elem));
    *p = q;
    *cap = ncap;
    return CR_OK;
}

cr_alloc_stats cr_alloc_get_stats(void) {
    cr_alloc_stats s = {atomic_load(&live_bytes), atomic_load(&peak_bytes), atomic_load(&n_allocs), atomic_load(&n_live)};
    return s;
}

void cr_alloc_reset_peak(void) { atomic_store(&peak_bytes, atomic_load(&live_bytes)); }

void cr_alloc_fail_nth(int64_t n) {
    atomic_store(&fault_hit, 0);
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}

int cr_alloc_fault_hit(void) { return atomic_load(&fault_hit); }

/* ---- arena ---- */

struct cr_arena_block {
    cr_arena_block *next;
    size_t size, used;
    unsigned char data[];
};

void cr_arena_init(cr_arena *a, size_t block_size) {
    a->head = NULL;
    a->block_size = block_size ? block_size : (size_t)1 << 16;
    a->used = 0;
}

/* Offset into b's data at which an `align`-aligned object can start. */
static size_t align_at(const cr_arena_block *b, size_t from, size_t align) {
    uintptr_t addr = (uintptr_t)(b->data + from);
    return from + (size_t)((align - (addr & (align - 1))) & (align - 1));
}

void *cr_arena_alloc(cr_arena *a, size_t size, size_t align) {
    CR_ASSERT(align && (align & (align - 1)) == 0 && align <= 4096);
    cr_arena_block *b = a->head;
    if (b) {
        size_t at = align_at(b, b->used, align);
        if (at <= b->size && size <= b->size - at) {
            b->used = at + size;
            a->used += (int64_t)size;
            return b->data + at;
        }
    }
    if (size > SIZE_MAX - align - sizeof(cr_arena_block)) return NULL;
    size_t need = size + align;
    size_t bsize = need > a->block_size ? need : a->block_size;
    cr_arena_block *nb = cr_malloc(sizeof(cr_arena_block) + bsize);
    if (!nb) return NULL;
    nb->size = bsize;
    nb->next = a->head;
    a->head = nb;
    size_t at = align_at(nb, 0, align);
    nb->used = at + size;
    a->used += (int64_t)size;
    return nb->data + at;
}

char *cr_arena_strndup(cr_arena *a, const char *s, size_t n) {
    char *d = cr_arena_alloc(a, n + 1, 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void cr_arena_reset(cr_arena *a) {
    if (!a->head) return;
    /* keep the oldest block (the last in the list), usually sized for the steady state */
    cr_arena_block *b = a->head, *keep = NULL;
    while (b) {
        cr_arena_block *next = b->next;
        if (!next) keep = b;
        else cr_free(b);
        b = next;
    }
    keep->used = 0;
    keep->next = NULL;
    a->head = keep;
    a->used = 0;
}

void cr_arena_free(cr_arena *a) {
    cr_arena_block *b = a->head;
    while (b) {
        cr_arena_block *next = b->next;
        cr_free(b);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- string pool ---- */

void cr_strpool_init(cr_strpool *p) { memset(p, 0, sizeof *p); }

cr_status cr_strpool_add(cr_strpool *p, const char *s, size_t len, int64_t *index_out) {
    if (p->off == NULL || p->n + 2 > p->cap_n) {
        cr_status st = cr_grow((void **)&p->off, &p->cap_n, p->n + 2, sizeof(int64_t));
        if (st) return st;
        if (p->n == 0) p->off[0] = 0;
    }
    cr_status st = cr_grow((void **)&p->data, &p->cap_bytes, p->n_bytes + (int64_t)len + 1, 1);
    if (st) return st;
    memcpy(p->data + p->n_bytes, s, len);
    p->data[p->n_bytes + (int64_t)len] = '\0';
    p->n_bytes += (int64_t)len + 1;
    p->off[++p->n] = p->n_bytes;
    if (index_out) *index_out = p->n - 1;
    return CR_OK;
}

void cr_strpool_free(cr_strpool *p) {
    cr_free(p->data);
    cr_free(p->off);
    memset(p, 0, sizeof *p);
}

/* idmap.c — string id hash map over a string pool (see idmap.h). */
#include "idmap.h"

#include <string.h>

#define ID_HASH_SEED 0x9e3779b9u

static cr_status rehash(cr_idmap *m, int64_t new_cap) {
    int32_t *slots = cr_malloc((size_t)new_cap * sizeof *slots);
    if (!slots) return cr_fail(CR_ERR_NOMEM, "out of memory (id table of %lld slots)", (long long)new_cap);
    memset(slots, 0xff, (size_t)new_cap * sizeof *slots);
    uint64_t mask = (uint64_t)new_cap - 1;
    for (int64_t s = 0; s < m->cap; s++) {
        int32_t id = m->slots[s];
        if (id < 0) continue;
        uint64_t h = m->hashes[id] & mask;
        while (slots[h] >= 0) h = (h + 1) & mask;
        slots[h] = id;
    }
    cr_free(m->slots);
    m->slots = slots;
    m->cap = new_cap;
    return CR_OK;
}

cr_status cr_idmap_init(cr_idmap *m, const cr_strpool *pool) {
    memset(m, 0, sizeof *m);
    m->pool = pool;
    return rehash(m, 1024);
}

void cr_idmap_free(cr_idmap *m) {
    cr_free(m->slots);
    cr_free(m->hashes);
    memset(m, 0, sizeof *m);
}

static inline int same(const cr_strpool *p, int32_t id, const char *s, int64_t len) {
    return cr_strpool_len(p, id) == len && memcmp(cr_strpool_get(p, id), s, (size_t)len) == 0;
}

static int32_t lookup(const cr_idmap *m, const char *s, int64_t len, uint32_t h, uint64_t *slot) {
    uint64_t mask = (uint64_t)m->cap - 1, at = h & mask;
    for (;;) {
        int32_t id = m->slots[at];
        if (id < 0) break;
        if (m->hashes[id] == h && same(m->pool, id, s, len)) {
            *slot = at;
            return id;
        }
        at = (at + 1) & mask;
    }
    *slot = at;
    return -1;
}

int32_t cr_idmap_find(const cr_idmap *m, const char *s, int64_t len) {
    uint64_t slot;
    return lookup(m, s, len, cr_hash32(s, (size_t)len, ID_HASH_SEED), &slot);
}

/* Records string id's hash and places it; the pool already holds it. */
static cr_status place(cr_idmap *m, int32_t id, uint32_t h) {
    cr_status st = cr_grow((void **)&m->hashes, &m->hash_cap, (int64_t)id + 1, sizeof *m->hashes);
    if (st) return st;
    m->hashes[id] = h;
    if ((m->n + 1) * 2 > m->cap && (st = rehash(m, m->cap * 2))) return st;
    uint64_t mask = (uint64_t)m->cap - 1, at = h & mask;
    while (m->slots[at] >= 0) at = (at + 1) & mask;
    m->slots[at] = id;
    m->n++;
    return CR_OK;
}

cr_status cr_idmap_intern(cr_idmap *m, cr_strpool *pool, const char *s, int64_t len, int32_t *index, int *added) {
    CR_ASSERT(pool == m->pool);
    uint32_t h = cr_hash32(s, (size_t)len, ID_HASH_SEED);
    uint64_t slot;
    int32_t id = lookup(m, s, len, h, &slot);
    if (added) *added = id < 0;
    if (id >= 0) {
        *index = id;
        return CR_OK;
    }
    if (pool->n >= INT32_MAX - 1) return cr_fail(CR_ERR_LIMIT, "more than %d distinct ids", INT32_MAX - 1);
    int64_t at;
    cr_status st = cr_strpool_add(pool, s, (size_t)len, &at);
    if (st) return st;
    if ((st = place(m, (int32_t)at, h))) {
        pool->n--;   /* keep pool and map consistent: forget the string we could not index */
        pool->n_bytes = pool->off[pool->n];
        return st;
    }
    *index = (int32_t)at;
    return CR_OK;
}

cr_status cr_idmap_index(cr_idmap *m, const char *what) {
    const cr_strpool *p = m->pool;
    if (p->n > INT32_MAX - 1) return cr_fail(CR_ERR_LIMIT, "more than %d %s", INT32_MAX - 1, what);
    int64_t cap = m->cap;
    while (cap < 2 * (p->n + 1)) cap *= 2;
    cr_status st = cap > m->cap ? rehash(m, cap) : CR_OK;
    if (st) return st;
    for (int64_t i = 0; i < p->n; i++) {
        const char *s = cr_strpool_get(p, i);
        int64_t len = cr_strpool_len(p, i);
        uint32_t h = cr_hash32(s, (size_t)len, ID_HASH_SEED);
        uint64_t slot;
        int32_t prev = lookup(m, s, len, h, &slot);
        if (prev >= 0) return cr_fail(CR_ERR_FORMAT, "duplicate %s '%s' (entries %d and %lld)", what, s, prev, (long long)i);
        if ((st = place(m, (int32_t)i, h))) return st;
    }
    return CR_OK;
}

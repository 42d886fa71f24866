/* idmap.c — string id hash map over a string pool (see idmap.h). */
#include "idmap.h"

#include <string.h>

#define ID_HASH_SEED 0x9e3779b9u

#define INLINE_MAX 7   /* keys up to this length are compared inside the slot */

static inline int32_t slot_id(uint64_t meta) { return (int32_t)(uint32_t)meta - 1; }

static inline uint64_t slot_key(const char *s, int64_t len) {
    uint64_t k = 0;
    memcpy(&k, s, (size_t)(len < INLINE_MAX ? len : INLINE_MAX));
    k &= 0x00ffffffffffffffull;   /* 7 bytes on little-endian hosts; on others the key is still a pure function */
    return k | (uint64_t)(len < 255 ? len : 255) << 56;
}

static cr_status rehash(cr_idmap *m, int64_t new_cap) {
    cr_idmap_slot *slots = cr_calloc((size_t)new_cap, sizeof *slots);
    if (!slots) return cr_fail(CR_ERR_NOMEM, "out of memory (id table of %lld slots)", (long long)new_cap);
    uint64_t mask = (uint64_t)new_cap - 1;
    for (int64_t i = 0; i < m->cap; i++) {
        cr_idmap_slot s = m->slots[i];
        if (!s.meta) continue;
        uint64_t at = (s.meta >> 32) & mask;
        while (slots[at].meta) at = (at + 1) & mask;
        slots[at] = s;
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
    memset(m, 0, sizeof *m);
}

/* Index of (s, len) with hash h, or -1; *at is its slot or the empty slot where it would go. */
static int32_t lookup(const cr_idmap *m, const char *s, int64_t len, uint32_t h, uint64_t *at) {
    const cr_strpool *p = m->pool;
    uint64_t mask = (uint64_t)m->cap - 1, i = h & mask, key = slot_key(s, len);
    for (;;) {
        cr_idmap_slot slot = m->slots[i];
        if (!slot.meta) break;
        if ((uint32_t)(slot.meta >> 32) == h && slot.key == key) {
            int32_t id = slot_id(slot.meta);
            if (len <= INLINE_MAX ||
                (cr_strpool_len(p, id) == len && memcmp(cr_strpool_get(p, id), s, (size_t)len) == 0)) {
                *at = i;
                return id;
            }
        }
        i = (i + 1) & mask;
    }
    *at = i;
    return -1;
}

uint32_t cr_idmap_hash(const char *s, int64_t len) { return cr_hash32(s, (size_t)len, ID_HASH_SEED); }

void cr_idmap_prefetch(const cr_idmap *m, uint32_t hash) {
    __builtin_prefetch(&m->slots[hash & (uint64_t)(m->cap - 1)]);
}

int32_t cr_idmap_find_hashed(const cr_idmap *m, const char *s, int64_t len, uint32_t hash) {
    uint64_t at;
    return lookup(m, s, len, hash, &at);
}

int32_t cr_idmap_find(const cr_idmap *m, const char *s, int64_t len) {
    return cr_idmap_find_hashed(m, s, len, cr_idmap_hash(s, len));
}

/* Stores string id (hash h) in the empty slot `at`, growing the table first when it would pass half full. */
static cr_status place(cr_idmap *m, int32_t id, uint32_t h, uint64_t at) {
    if ((m->n + 1) * 2 > m->cap) {
        cr_status st = rehash(m, m->cap * 2);
        if (st) return st;
        uint64_t mask = (uint64_t)m->cap - 1;
        for (at = h & mask; m->slots[at].meta; at = (at + 1) & mask) {
        }
    }
    m->slots[at].meta = (uint64_t)h << 32 | (uint32_t)(id + 1);
    m->slots[at].key = slot_key(cr_strpool_get(m->pool, id), cr_strpool_len(m->pool, id));
    m->n++;
    return CR_OK;
}

cr_status cr_idmap_intern(cr_idmap *m, cr_strpool *pool, const char *s, int64_t len, int32_t *index, int *added) {
    CR_ASSERT(pool == m->pool);
    uint32_t h = cr_idmap_hash(s, len);
    uint64_t at;
    int32_t id = lookup(m, s, len, h, &at);
    if (added) *added = id < 0;
    if (id >= 0) {
        *index = id;
        return CR_OK;
    }
    if (pool->n >= INT32_MAX - 1) return cr_fail(CR_ERR_LIMIT, "more than %d distinct ids", INT32_MAX - 1);
    int64_t new_id;
    cr_status st = cr_strpool_add(pool, s, (size_t)len, &new_id);
    if (st) return st;
    if ((st = place(m, (int32_t)new_id, h, at))) {
        pool->n--;   /* keep pool and map consistent: forget the string we could not index */
        pool->n_bytes = pool->off[pool->n];
        return st;
    }
    *index = (int32_t)new_id;
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
        uint32_t h = cr_idmap_hash(s, len);
        uint64_t at;
        int32_t prev = lookup(m, s, len, h, &at);
        if (prev >= 0) return cr_fail(CR_ERR_FORMAT, "duplicate %s '%s' (entries %d and %lld)", what, s, prev, (long long)i);
        if ((st = place(m, (int32_t)i, h, at))) return st;
    }
    return CR_OK;
}

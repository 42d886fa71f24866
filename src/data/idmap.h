/* idmap.h — external string id <-> dense int32 index, over a cr_strpool.
 *
 * Open addressing with linear probing, capacity a power of two kept at most half full. A slot holds the
 * string's 32-bit hash, its index + 1 (0 = empty), its length and first 7 bytes; ids of up to 7 bytes (the
 * usual numeric ids) are thus matched without touching the pool, so a lookup costs one cache miss, which is
 * what bounds import speed. Not thread-safe for writers; concurrent lookups on a finished map are fine. */
#ifndef CROSSREC_IDMAP_H
#define CROSSREC_IDMAP_H

#include "crossrec/core.h"

typedef struct {
    uint64_t meta;              /* hash << 32 | (index + 1); 0 = empty */
    uint64_t key;               /* first 7 bytes (zero padded) | min(length, 255) << 56 */
} cr_idmap_slot;

typedef struct {
    const cr_strpool *pool;     /* the strings (owned by the caller) */
    cr_idmap_slot *slots;       /* (cap) */
    int64_t cap, n;
} cr_idmap;

/* Creates an empty map over `pool` (then fill it with cr_idmap_intern, or index a full pool with
 * cr_idmap_index). */
cr_status cr_idmap_init(cr_idmap *m, const cr_strpool *pool);
/* Index of (s, len), or -1. */
int32_t cr_idmap_find(const cr_idmap *m, const char *s, int64_t len);
/* For batched lookups that hide memory latency: hash a key, prefetch its first slot, then find it by hash. */
uint32_t cr_idmap_hash(const char *s, int64_t len);
void cr_idmap_prefetch(const cr_idmap *m, uint32_t hash);
int32_t cr_idmap_find_hashed(const cr_idmap *m, const char *s, int64_t len, uint32_t hash);
/* Index of (s, len), adding it to the pool (and *added = 1) when new. Fails with CR_ERR_LIMIT beyond
 * INT32_MAX - 1 ids and CR_ERR_NOMEM. The pool must only grow through this function while the map lives. */
cr_status cr_idmap_intern(cr_idmap *m, cr_strpool *pool, const char *s, int64_t len, int32_t *index, int *added);
/* Indexes every string already in the pool; fails with CR_ERR_FORMAT naming the first duplicate. */
cr_status cr_idmap_index(cr_idmap *m, const char *what);
void cr_idmap_free(cr_idmap *m);

#endif

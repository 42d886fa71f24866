/* idmap.h — external string id <-> dense int32 index, over a cr_strpool.
 *
 * Open addressing with linear probing; the table holds indices into the pool (-1 = empty), capacity a power
 * of two kept at most half full. Strings are compared by length then bytes, so ids may be any bytes except
 * NUL. Not thread-safe for writers; concurrent lookups on a finished map are fine. */
#ifndef CROSSREC_IDMAP_H
#define CROSSREC_IDMAP_H

#include "crossrec/core.h"

typedef struct {
    const cr_strpool *pool;     /* the strings (owned by the caller) */
    int32_t *slots;             /* (cap) index into pool, or -1 */
    uint32_t *hashes;           /* (pool size, grown with it) hash of each string, to skip most compares */
    int64_t cap, n, hash_cap;
} cr_idmap;

/* Creates an empty map over `pool` (which must be empty or already fully indexed with cr_idmap_index). */
cr_status cr_idmap_init(cr_idmap *m, const cr_strpool *pool);
/* Index of (s, len), or -1. */
int32_t cr_idmap_find(const cr_idmap *m, const char *s, int64_t len);
/* Index of (s, len), adding it to the pool (and *added = 1) when new. Fails with CR_ERR_LIMIT beyond
 * INT32_MAX - 1 ids and CR_ERR_NOMEM. The pool must only grow through this function while the map lives. */
cr_status cr_idmap_intern(cr_idmap *m, cr_strpool *pool, const char *s, int64_t len, int32_t *index, int *added);
/* Indexes every string already in the pool; fails with CR_ERR_FORMAT naming the first duplicate. */
cr_status cr_idmap_index(cr_idmap *m, const char *what);
void cr_idmap_free(cr_idmap *m);

#endif

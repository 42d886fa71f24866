/* index.c — exact top-K inner-product search (index.h): building the index, the scalar reference, and the two
 * fast paths (SIMD dot products for one query, blocked sgemm for a batch), which both select candidates with
 * an error bound and rescore them with the reference formula.
 *
 * Candidate selection (a "collector" per query): the fast score s of item i lies within E of the reference
 * score, where E is fixed per query and chunk of CR_INDEX_CHUNK items (index.h gives the bound). The collector
 * keeps a min-heap of the K largest lower bounds s - E seen so far (its root tau can only grow) and a list of
 * every item whose upper bound s + E reached tau when it arrived, each with that upper bound. The reference
 * K-th score is >= the final tau (K items have reference scores above their lower bounds), so every item of
 * the reference top-K has an upper bound >= tau and is in the list; items whose upper bound falls below the
 * current tau are dropped when the list is full. The survivors (K + a few, unless many items are within 2E of
 * the K-th: ties, duplicated rows) are rescored with the reference formula and ranked in the reference order.
 * Invariant: the collector's heap holds min(K, items added) lower bounds; tau = root when full, else -inf. */
#include "index/index_impl.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Single-query search runs on one thread below this many multiply-adds (a parallel region costs a few us). */
#define PARALLEL_MIN_MACS ((int64_t)1 << 16)
/* Batch blocks: queries x items per sgemm, when the memory cap allows; items a multiple of CR_INDEX_CHUNK. The
 * score block (QB x IB floats, 1 MiB) stays in a core's L2 cache until it is scanned; many queries per block
 * spread sgemm's packing of the item block (measured on 50,000 x 64: 512 x 512 used ~15% less CPU than
 * 128 x 2048). */
#define QB 512
#define IB 512
/* Single query: items scored per kernel call, then scanned (a multiple of CR_INDEX_CHUNK; on the stack). */
#define SPAN 512

cr_index_params cr_index_default_params(void) {
    cr_index_params p = {0};
    return p;
}

cr_index_search_params cr_index_search_default_params(void) {
    cr_index_search_params p = {.k = 10, .domain = -1, .precision = CR_INDEX_F32, .mem_cap = (int64_t)64 << 20};
    return p;
}

int64_t cr_index_n_items(const cr_index *ix) { return ix->n; }
int64_t cr_index_dim(const cr_index *ix) { return ix->dim; }
int cr_index_has_f16(const cr_index *ix) { return ix->items_h != NULL; }
const float *cr_index_items(const cr_index *ix) { return ix->items; }

void cr_index_free(cr_index *ix) {
    if (!ix) return;
    cr_free(ix->own_items);
    cr_free(ix->items_h);
    cr_free(ix->own_domain);
    cr_free(ix->chunk_norm);
    cr_free(ix->chunk_norm_h);
    cr_free(ix);
}

/* Largest row norm of each chunk of `n` rows of `d` floats, in double (no overflow for finite floats). */
static double chunk_norms(const float *Y, int64_t n, int64_t d, double *out) {
    double mx = 0;
    for (int64_t c = 0; c * CR_INDEX_CHUNK < n; c++) {
        double cm = 0;
        int64_t end = (c + 1) * CR_INDEX_CHUNK < n ? (c + 1) * CR_INDEX_CHUNK : n;
        for (int64_t i = c * CR_INDEX_CHUNK; i < end; i++) {
            double s = 0;
            for (int64_t j = 0; j < d; j++) s += (double)Y[i * d + j] * (double)Y[i * d + j];
            cm = s > cm ? s : cm;
        }
        out[c] = sqrt(cm);
        mx = out[c] > mx ? out[c] : mx;
    }
    return mx;
}

cr_status cr_index_init(cr_index **out, const float *items, int64_t n_items, int64_t dim, const cr_index_params *p) {
    *out = NULL;
    cr_index_params dp = cr_index_default_params();
    if (!p) p = &dp;
    if (n_items < 0 || n_items > INT32_MAX || dim < 1 || dim > ((int64_t)1 << 20))
        return cr_fail(CR_ERR_ARG, "index: bad shape (%lld items x %lld dims; need 0..2^31-1 items, 1..2^20 dims)",
                       (long long)n_items, (long long)dim);
    if (n_items > 0 && !items) return cr_fail(CR_ERR_ARG, "index: no item matrix");
    for (int64_t t = 0; t < n_items * dim; t++)
        if (!isfinite(items[t]))
            return cr_fail(CR_ERR_ARG, "index: item %lld has a non-finite value (%g) in column %lld", (long long)(t / dim),
                           (double)items[t], (long long)(t % dim));
        else if (p->f16 && fabsf(items[t]) >= 65520.0f)
            return cr_fail(CR_ERR_ARG, "index: item %lld column %lld (%g) is outside the float16 range (|x| <= 65504)",
                           (long long)(t / dim), (long long)(t % dim), (double)items[t]);
    if (p->item_domain)
        for (int64_t i = 0; i < n_items; i++)
            if (p->item_domain[i] < 0)
                return cr_fail(CR_ERR_ARG, "index: item %lld has a negative domain (%d)", (long long)i, (int)p->item_domain[i]);
    cr_index *ix = cr_calloc(1, sizeof *ix);
    if (!ix) return cr_fail(CR_ERR_NOMEM, "out of memory (index)");
    ix->n = n_items;
    ix->dim = dim;
    ix->dim_h = (dim + 7) & ~(int64_t)7;
    ix->n_chunks = (n_items + CR_INDEX_CHUNK - 1) / CR_INDEX_CHUNK;
    size_t nd = (size_t)(n_items * dim);
    int bad = 0;
    if (p->borrow) {
        ix->items = items;
        ix->domain = p->item_domain;
    } else {
        if (nd) bad |= !(ix->own_items = cr_malloc(nd * sizeof(float)));
        if (!bad && nd) memcpy(ix->own_items, items, nd * sizeof(float));
        ix->items = ix->own_items;
        if (p->item_domain && n_items) {
            bad |= !(ix->own_domain = cr_malloc((size_t)n_items * sizeof(int32_t)));
            if (!bad) memcpy(ix->own_domain, p->item_domain, (size_t)n_items * sizeof(int32_t));
            ix->domain = ix->own_domain;
        }
    }
    if (!bad) bad |= !(ix->chunk_norm = cr_malloc((size_t)(ix->n_chunks + 1) * sizeof(double)));
    if (!bad) ix->max_norm = chunk_norms(ix->items, n_items, dim, ix->chunk_norm);
    if (!bad && p->f16) {
        const cr_index_kernels *K = cr_index_kernels_get();
        bad |= !(ix->items_h = cr_calloc((size_t)(n_items * ix->dim_h) + 1, sizeof(uint16_t)));
        bad |= !(ix->chunk_norm_h = cr_malloc((size_t)(ix->n_chunks + 1) * sizeof(double)));
        float *row = bad ? NULL : cr_malloc((size_t)ix->dim_h * sizeof(float));
        bad |= !row;
        if (!bad) {
            for (int64_t i = 0; i < n_items; i++) K->to_f16(ix->items + i * dim, ix->items_h + i * ix->dim_h, dim);
            /* norms of the rounded rows: the float16 search is exact over them */
            ix->max_norm_h = 0;
            for (int64_t c = 0; c < ix->n_chunks; c++) {
                double cm = 0;
                for (int64_t i = c * CR_INDEX_CHUNK; i < n_items && i < (c + 1) * CR_INDEX_CHUNK; i++) {
                    K->to_f32(ix->items_h + i * ix->dim_h, row, dim);
                    double s = 0;
                    for (int64_t j = 0; j < dim; j++) s += (double)row[j] * (double)row[j];
                    cm = s > cm ? s : cm;
                }
                ix->chunk_norm_h[c] = sqrt(cm);
                ix->max_norm_h = ix->chunk_norm_h[c] > ix->max_norm_h ? ix->chunk_norm_h[c] : ix->max_norm_h;
            }
        }
        cr_free(row);
    }
    if (bad) {
        cr_index_free(ix);
        return cr_fail(CR_ERR_NOMEM, "out of memory (index of %lld x %lld)", (long long)n_items, (long long)dim);
    }
    *out = ix;
    return CR_OK;
}

/* ---- the reference formula and order -------------------------------------------------------------------- */

static float ref_dot(const float *q, const float *y, int64_t d) {
    double acc = 0;
    for (int64_t j = 0; j < d; j++) acc += (double)q[j] * (double)y[j];   /* exact products: no contraction issue */
    return (float)acc;
}

static float ref_dot_h(const float *q, const uint16_t *y, int64_t d) {
    double acc = 0;
    for (int64_t j = 0; j < d; j++) acc += (double)q[j] * (double)cr_f16_to_f32_ref(y[j]);
    return (float)acc;
}

static inline float ref_score(const cr_index *ix, int f16, const float *q, int32_t i) {
    return f16 ? ref_dot_h(q, ix->items_h + (int64_t)i * ix->dim_h, ix->dim) : ref_dot(q, ix->items + (int64_t)i * ix->dim, ix->dim);
}

/* 1 if (sa, ia) ranks before (sb, ib): higher score, then lower index. Scores are never NaN here. */
static inline int before(float sa, int32_t ia, float sb, int32_t ib) { return sa > sb || (sa == sb && ia < ib); }

/* Bounded selection of the best k (score, item) pairs; the root is the worst kept pair. */
typedef struct {
    int64_t k, n;
    float *s;
    int32_t *it;
} topsel;

static void sel_sift(topsel *t, int64_t n, int64_t i, float s, int32_t it) {
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(t->s[c], t->it[c], t->s[c + 1], t->it[c + 1])) c++;
        if (!before(s, it, t->s[c], t->it[c])) break;
        t->s[i] = t->s[c], t->it[i] = t->it[c];
        i = c;
    }
    t->s[i] = s, t->it[i] = it;
}

static void sel_push(topsel *t, float s, int32_t it) {
    if (t->n < t->k) {
        int64_t i = t->n++;
        while (i > 0) {
            int64_t p = (i - 1) / 2;
            if (!before(t->s[p], t->it[p], s, it)) break;
            t->s[i] = t->s[p], t->it[i] = t->it[p];
            i = p;
        }
        t->s[i] = s, t->it[i] = it;
    } else if (before(s, it, t->s[0], t->it[0])) {
        sel_sift(t, t->n, 0, s, it);
    }
}

/* Writes the kept pairs best first into row (k slots; the rest -1 / NAN) and empties the selection. */
static void sel_write(topsel *t, int32_t *items, float *scores, int64_t *n_found) {
    int64_t n = t->n;
    for (int64_t end = n - 1; end > 0; end--) {
        float s = t->s[end];
        int32_t it = t->it[end];
        t->s[end] = t->s[0], t->it[end] = t->it[0];
        sel_sift(t, end, 0, s, it);
    }
    for (int64_t j = 0; j < t->k; j++) {
        items[j] = j < n ? t->it[j] : -1;
        if (scores) scores[j] = j < n ? t->s[j] : NAN;
    }
    if (n_found) *n_found = n;
    t->n = 0;
}

/* ---- filters and argument checks ------------------------------------------------------------------------ */

typedef struct {
    const int32_t *domain;
    int32_t want;           /* -1: any domain */
    const uint64_t *allow, *deny;
    const int32_t *ex;      /* sorted */
    int64_t n_ex;
} filter;

static inline int excluded(const int32_t *ex, int64_t n, int32_t i) {
    int64_t lo = 0, hi = n;     /* first position with ex[pos] >= i */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ex[mid] < i) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ex[lo] == i;
}

static inline int eligible(const filter *f, int32_t i) {
    if (f->want >= 0 && f->domain[i] != f->want) return 0;
    if (f->allow && !((f->allow[i >> 6] >> (i & 63)) & 1)) return 0;
    if (f->deny && ((f->deny[i >> 6] >> (i & 63)) & 1)) return 0;
    return !f->n_ex || !excluded(f->ex, f->n_ex, i);
}

static cr_status check_params(const cr_index *ix, const cr_index_search_params *p) {
    if (p->k < 1 || p->k > CR_INDEX_MAX_K) return cr_fail(CR_ERR_ARG, "index search: k = %lld (need 1..%d)", (long long)p->k, CR_INDEX_MAX_K);
    if (p->domain < -1) return cr_fail(CR_ERR_ARG, "index search: domain %d (need >= 0, or -1 for any)", (int)p->domain);
    if (p->domain >= 0 && !ix->domain) return cr_fail(CR_ERR_ARG, "index search: a domain filter needs the items' domains");
    if (p->precision != CR_INDEX_F32 && p->precision != CR_INDEX_F16)
        return cr_fail(CR_ERR_ARG, "index search: unknown precision %d", (int)p->precision);
    if (p->precision == CR_INDEX_F16 && !ix->items_h)
        return cr_fail(CR_ERR_ARG, "index search: float16 search on an index built without the float16 copy");
    return CR_OK;
}

/* Checks query r: finite values, exclude list sorted and in range. */
static cr_status check_query(const cr_index *ix, const float *q, int64_t r, const int32_t *ex, int64_t n_ex) {
    for (int64_t j = 0; j < ix->dim; j++)
        if (!isfinite(q[j]))
            return cr_fail(CR_ERR_ARG, "index search: query %lld has a non-finite value (%g) in column %lld", (long long)r,
                           (double)q[j], (long long)j);
    if (n_ex < 0 || (n_ex > 0 && !ex)) return cr_fail(CR_ERR_ARG, "index search: query %lld: bad exclude list", (long long)r);
    for (int64_t t = 0; t < n_ex; t++)
        if (ex[t] < 0 || ex[t] >= ix->n || (t > 0 && ex[t] < ex[t - 1]))
            return cr_fail(CR_ERR_ARG, "index search: query %lld: exclude[%lld] = %d is %s", (long long)r, (long long)t, (int)ex[t],
                           ex[t] < 0 || ex[t] >= ix->n ? "not an item" : "out of order (the list must be sorted)");
    return CR_OK;
}

static cr_status check_batch(const cr_index *ix, const float *Q, int64_t nq, const int64_t *ex_ptr, const int32_t *ex,
                             const cr_index_search_params *p) {
    cr_status st = check_params(ix, p);
    if (st) return st;
    if (nq < 0 || (nq > 0 && !Q)) return cr_fail(CR_ERR_ARG, "index search: bad query matrix");
    if (ex_ptr && ex_ptr[0] != 0) return cr_fail(CR_ERR_ARG, "index search: exclude_ptr[0] must be 0");
    for (int64_t r = 0; r < nq; r++) {
        if (ex_ptr && ex_ptr[r + 1] < ex_ptr[r]) return cr_fail(CR_ERR_ARG, "index search: exclude_ptr decreases at query %lld", (long long)r);
        if ((st = check_query(ix, Q + r * ix->dim, r, ex_ptr ? ex + ex_ptr[r] : NULL, ex_ptr ? ex_ptr[r + 1] - ex_ptr[r] : 0))) return st;
    }
    return CR_OK;
}

static filter make_filter(const cr_index *ix, const cr_index_search_params *p, const int64_t *ex_ptr, const int32_t *ex, int64_t r) {
    filter f = {ix->domain, p->domain, p->allow, p->deny, NULL, 0};
    if (ex_ptr) f.ex = ex + ex_ptr[r], f.n_ex = ex_ptr[r + 1] - ex_ptr[r];
    return f;
}

/* ---- the reference search ------------------------------------------------------------------------------- */

/* One query by the reference: every eligible item scored with the reference formula. */
static void ref_one(const cr_index *ix, int f16, const float *q, const filter *f, topsel *t, int32_t *items, float *scores,
                    int64_t *n_found) {
    for (int32_t i = 0; i < ix->n; i++)
        if (eligible(f, i)) sel_push(t, ref_score(ix, f16, q, i), i);
    sel_write(t, items, scores, n_found);
}

static cr_status sel_init(topsel *t, int64_t k) {
    t->k = k, t->n = 0;
    t->s = cr_malloc((size_t)k * sizeof *t->s);
    t->it = cr_malloc((size_t)k * sizeof *t->it);
    if (t->s && t->it) return CR_OK;
    cr_free(t->s), cr_free(t->it);
    t->s = NULL, t->it = NULL;
    return cr_fail(CR_ERR_NOMEM, "out of memory (top-%lld selection)", (long long)k);
}

static void sel_free(topsel *t) {
    cr_free(t->s), cr_free(t->it);
    t->s = NULL, t->it = NULL;
}

cr_status cr_index_search_ref(const cr_index *ix, const float *Q, int64_t nq, const int64_t *ex_ptr, const int32_t *ex,
                              const cr_index_search_params *p, int32_t *items, float *scores, int64_t *n_found) {
    cr_status st = check_batch(ix, Q, nq, ex_ptr, ex, p);
    if (st) return st;
    topsel t;
    if ((st = sel_init(&t, p->k))) return st;
    for (int64_t r = 0; r < nq; r++) {
        filter f = make_filter(ix, p, ex_ptr, ex, r);
        ref_one(ix, p->precision == CR_INDEX_F16, Q + r * ix->dim, &f, &t, items + r * p->k, scores ? scores + r * p->k : NULL,
                n_found ? n_found + r : NULL);
    }
    sel_free(&t);
    return CR_OK;
}

/* ---- candidate collection ------------------------------------------------------------------------------- */

typedef struct {
    int64_t k, nh;
    double *lb;             /* (k) min-heap of lower bounds */
    double tau;             /* lb[0] when nh == k, else -inf */
    int64_t nc, cap;
    int32_t *cid;           /* (cap) candidates */
    double *cub;            /* (cap) their upper bounds */
} collector;

static cr_status coll_init(collector *c, int64_t k) {
    memset(c, 0, sizeof *c);
    c->k = k;
    c->cap = 2 * k + 64;
    c->lb = cr_malloc((size_t)k * sizeof *c->lb);
    c->cid = cr_malloc((size_t)c->cap * sizeof *c->cid);
    c->cub = cr_malloc((size_t)c->cap * sizeof *c->cub);
    c->tau = -INFINITY;
    if (c->lb && c->cid && c->cub) return CR_OK;
    cr_free(c->lb), cr_free(c->cid), cr_free(c->cub);
    memset(c, 0, sizeof *c);
    return CR_ERR_NOMEM;
}

static void coll_free(collector *c) {
    if (!c) return;
    cr_free(c->lb), cr_free(c->cid), cr_free(c->cub);
    memset(c, 0, sizeof *c);
}

static void coll_reset(collector *c) {
    c->nh = c->nc = 0;
    c->tau = -INFINITY;
}

/* Drops candidates below tau; doubles the list when that frees less than half of it. */
static cr_status coll_make_room(collector *c) {
    int64_t m = 0;
    for (int64_t j = 0; j < c->nc; j++)
        if (c->cub[j] >= c->tau) c->cid[m] = c->cid[j], c->cub[m] = c->cub[j], m++;
    c->nc = m;
    if (m <= c->cap / 2) return CR_OK;
    int64_t cap = 2 * c->cap;
    int32_t *id = cr_realloc(c->cid, (size_t)cap * sizeof *id);
    if (!id) return CR_ERR_NOMEM;
    c->cid = id;
    double *ub = cr_realloc(c->cub, (size_t)cap * sizeof *ub);
    if (!ub) return CR_ERR_NOMEM;
    c->cub = ub;
    c->cap = cap;
    return CR_OK;
}

/* Offers item i with fast score s, |s - reference| <= E. Returns CR_ERR_NOMEM (no message) when the list
 * cannot grow. */
static inline cr_status coll_add(collector *c, int32_t i, float s, double E) {
    double lb = (double)s - E, ub = (double)s + E;
    if (ub < c->tau) return CR_OK;
    double *h = c->lb;
    if (c->nh < c->k) {
        int64_t j = c->nh++;
        while (j > 0 && h[(j - 1) / 2] > lb) h[j] = h[(j - 1) / 2], j = (j - 1) / 2;
        h[j] = lb;
        if (c->nh == c->k) c->tau = h[0];
    } else if (lb > h[0]) {
        int64_t j = 0, n = c->nh;
        for (;;) {
            int64_t ch = 2 * j + 1;
            if (ch >= n) break;
            if (ch + 1 < n && h[ch + 1] < h[ch]) ch++;
            if (h[ch] >= lb) break;
            h[j] = h[ch];
            j = ch;
        }
        h[j] = lb;
        c->tau = h[0];
    }
    if (c->nc == c->cap) {
        cr_status st = coll_make_room(c);
        if (st) return st;
    }
    c->cid[c->nc] = i, c->cub[c->nc] = ub, c->nc++;
    return CR_OK;
}

/* The threshold for fast scores of a chunk with bound E, as a float at or below tau - E, so that no candidate
 * is missed: lowered by 2^-20 relative (more than the half float ulp the conversion may round up) and by
 * FLT_MIN (for a threshold near zero). */
static inline float coll_thr(const collector *c, double E) {
    double t = c->tau - E;
    return (float)(t - fabs(t) * 0x1p-20 - FLT_MIN);
}

/* The bound on |fast - reference| for a query of norm qn over rows of norm <= rn (index.h): float32 dot
 * products in any order err by at most gamma_d sum|q_j y_j| <= gamma_d |q| |y| (gamma_d = d u / (1 - d u),
 * u = 2^-24); the reference by at most u |q . y| plus a double-rounding term; the factor 2 covers both and the
 * (1 - d u) denominator. Underflow (gradual or flushed) adds at most FLT_MIN per operation. */
static inline double err_bound(double alpha, double abs_slack, double qn, double rn) { return alpha * qn * rn + abs_slack; }

typedef struct {
    double alpha, abs_slack;
} bound;

static bound make_bound(int64_t d) {
    double u = 0x1p-24, du = (double)(d + 2) * u;
    bound b = {2.0 * du / (1.0 - du), (double)(2 * d + 4) * FLT_MIN};
    return b;
}

/* Above this |q| max|y| the fast scores could overflow: such a query goes to the reference. */
#define FAST_NORM_LIMIT 1e36

static double norm2(const float *q, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += (double)q[j] * (double)q[j];
    return sqrt(s);
}

/* Offers the fast scores s[0..n) of items base .. base+n-1 to the collector. The scan compares them with one
 * threshold from the largest chunk norm in the range (cn_max); a hit is then checked with its own chunk's
 * bound. While the collector's heap is not full (threshold -inf) the range is taken one chunk at a time, so
 * that the threshold rises early instead of every item of the first range becoming a candidate. pos: scratch
 * of n. */
static inline cr_status scan_scores(const cr_index_kernels *K, collector *c, const filter *f, const float *s, int64_t n, int32_t base,
                                    bound bd, double qn, const double *cn, double cn_max, int32_t *pos) {
    double E_max = err_bound(bd.alpha, bd.abs_slack, qn, cn_max);
    for (int64_t at = 0; at < n;) {
        int64_t len = c->nh < c->k && n - at > CR_INDEX_CHUNK ? CR_INDEX_CHUNK : n - at;
        int64_t m = K->find_ge(s + at, len, coll_thr(c, E_max), pos);
        for (int64_t j = 0; j < m; j++) {
            int64_t o = at + pos[j];
            int32_t i = base + (int32_t)o;
            double E = err_bound(bd.alpha, bd.abs_slack, qn, cn[i / CR_INDEX_CHUNK]);
            if ((double)s[o] + E < c->tau || !eligible(f, i)) continue;
            cr_status st = coll_add(c, i, s[o], E);
            if (st) return st;
        }
        at += len;
    }
    return CR_OK;
}

static inline double max_of(const double *a, int64_t from, int64_t to) {
    double m = 0;
    for (int64_t t = from; t < to; t++) m = a[t] > m ? a[t] : m;
    return m;
}

/* Rescores the candidates of collectors cs[0..nc) (those still >= their own tau) with the reference formula
 * and writes the top-k. */
static void finish(const cr_index *ix, int f16, const float *q, collector *cs, int ncoll, topsel *t, int32_t *items, float *scores,
                   int64_t *n_found) {
    for (int g = 0; g < ncoll; g++) {
        const collector *c = &cs[g];
        for (int64_t j = 0; j < c->nc; j++)
            if (c->cub[j] >= c->tau) sel_push(t, ref_score(ix, f16, q, c->cid[j]), c->cid[j]);
    }
    sel_write(t, items, scores, n_found);
}

/* ---- one query ------------------------------------------------------------------------------------------ */

static int threads_of(const cr_index_search_params *p) {
#ifdef _OPENMP
    return p->threads > 0 ? p->threads : omp_get_max_threads();
#else
    (void)p;
    return 1;
#endif
}

cr_status cr_index_search(const cr_index *ix, const float *q, const int32_t *exclude, int64_t n_exclude, const cr_index_search_params *p,
                          int32_t *items, float *scores, int64_t *n_found) {
    cr_status st = check_params(ix, p);
    if (st || (st = check_query(ix, q, 0, exclude, n_exclude))) return st;
    int f16 = p->precision == CR_INDEX_F16;
    int64_t d = ix->dim, k = p->k;
    filter f = {ix->domain, p->domain, p->allow, p->deny, exclude, n_exclude};
    topsel t;
    if ((st = sel_init(&t, k))) return st;
    double qn = norm2(q, d);
    if (qn * (f16 ? ix->max_norm_h : ix->max_norm) > FAST_NORM_LIMIT) {
        ref_one(ix, f16, q, &f, &t, items, scores, n_found);
        sel_free(&t);
        return CR_OK;
    }
    const cr_index_kernels *K = cr_index_kernels_get();
    int T = ix->n * d >= PARALLEL_MIN_MACS ? threads_of(p) : 1;
    if (T > ix->n_chunks) T = ix->n_chunks > 0 ? (int)ix->n_chunks : 1;
    collector *cs = cr_calloc((size_t)T, sizeof *cs);
    float *qh = f16 ? cr_calloc((size_t)ix->dim_h, sizeof *qh) : NULL;   /* the query zero-padded to dim_h */
    int bad = !cs || (f16 && !qh);
    for (int g = 0; g < T && !bad; g++) bad = coll_init(&cs[g], k) != CR_OK;
    if (bad) {
        for (int g = 0; cs && g < T; g++) coll_free(&cs[g]);
        cr_free(cs), cr_free(qh), sel_free(&t);
        return cr_fail(CR_ERR_NOMEM, "out of memory (top-%lld search)", (long long)k);
    }
    if (f16) memcpy(qh, q, (size_t)d * sizeof *qh);
    bound bd = make_bound(d);
    const double *cn = f16 ? ix->chunk_norm_h : ix->chunk_norm;
    int fail = 0;
    #pragma omp parallel num_threads(T) if (T > 1) reduction(| : fail)
    {
        int g = 0;
#ifdef _OPENMP
        g = omp_get_thread_num();
#endif
        /* thread g scans chunks [c0, c1), SPAN items at a time */
        int64_t c0 = ix->n_chunks * g / T, c1 = ix->n_chunks * (g + 1) / T;
        float s[SPAN];
        int32_t pos[SPAN];
        for (int64_t ch = c0; ch < c1 && !fail; ch += SPAN / CR_INDEX_CHUNK) {
            int64_t ch_end = ch + SPAN / CR_INDEX_CHUNK < c1 ? ch + SPAN / CR_INDEX_CHUNK : c1;
            int64_t i0 = ch * CR_INDEX_CHUNK, i1 = ch_end * CR_INDEX_CHUNK < ix->n ? ch_end * CR_INDEX_CHUNK : ix->n;
            if (f16) K->dots_f16(qh, ix->items_h + i0 * ix->dim_h, i1 - i0, ix->dim_h, s);
            else K->dots_f32(q, ix->items + i0 * d, i1 - i0, d, s);
            fail = scan_scores(K, &cs[g], &f, s, i1 - i0, (int32_t)i0, bd, qn, cn, max_of(cn, ch, ch_end), pos) != CR_OK;
        }
    }
    if (!fail) finish(ix, f16, q, cs, T, &t, items, scores, n_found);
    for (int g = 0; g < T; g++) coll_free(&cs[g]);
    cr_free(cs), cr_free(qh), sel_free(&t);
    return fail ? cr_fail(CR_ERR_NOMEM, "out of memory (top-%lld candidates)", (long long)k) : CR_OK;
}

/* ---- batches -------------------------------------------------------------------------------------------- */

typedef struct {
    float *S;               /* (qb, ib) scores */
    float *Yf;              /* (ib, dim_h) decoded float16 item block, F16 only */
    collector *cs;          /* (qb) */
    double *qn;             /* (qb) */
    int32_t *pos;           /* (ib) scan hits */
    topsel t;
    int64_t qb;
} worker;

static void worker_free(worker *w) {
    for (int64_t r = 0; w->cs && r < w->qb; r++) coll_free(&w->cs[r]);
    cr_free(w->S), cr_free(w->Yf), cr_free(w->cs), cr_free(w->qn), cr_free(w->pos);
    sel_free(&w->t);
    memset(w, 0, sizeof *w);
}

static cr_status worker_init(worker *w, const cr_index *ix, int f16, int64_t qb, int64_t ib, int64_t k) {
    memset(w, 0, sizeof *w);
    int bad = !(w->S = cr_malloc((size_t)(qb * ib) * sizeof *w->S));
    if (f16) bad |= !(w->Yf = cr_malloc((size_t)(ib * ix->dim_h) * sizeof *w->Yf));
    bad |= !(w->cs = cr_calloc((size_t)qb, sizeof *w->cs));
    bad |= !(w->qn = cr_malloc((size_t)qb * sizeof *w->qn));
    bad |= !(w->pos = cr_malloc((size_t)ib * sizeof *w->pos));
    if (!bad) w->qb = qb;
    for (int64_t r = 0; r < qb && !bad; r++) bad = coll_init(&w->cs[r], k) != CR_OK;
    if (!bad) bad = sel_init(&w->t, k) != CR_OK;
    if (bad) {
        worker_free(w);
        return CR_ERR_NOMEM;
    }
    return CR_OK;
}

/* Queries q0 .. q0+nq-1 against all items, ib items per sgemm. */
static cr_status batch_block(const cr_index *ix, worker *w, int f16, const float *Q, int64_t q0, int64_t nq, int64_t ib,
                             const int64_t *ex_ptr, const int32_t *ex, const cr_index_search_params *p, int32_t *items, float *scores,
                             int64_t *n_found) {
    const cr_index_kernels *K = cr_index_kernels_get();
    int64_t d = ix->dim, k = p->k, dh = ix->dim_h;
    bound bd = make_bound(d);
    const double *cn = f16 ? ix->chunk_norm_h : ix->chunk_norm;
    double maxn = f16 ? ix->max_norm_h : ix->max_norm;
    int any_fast = 0;
    for (int64_t r = 0; r < nq; r++) {
        w->qn[r] = norm2(Q + (q0 + r) * d, d);
        coll_reset(&w->cs[r]);
        any_fast |= w->qn[r] * maxn <= FAST_NORM_LIMIT;
    }
    for (int64_t i0 = 0; any_fast && i0 < ix->n; i0 += ib) {
        int64_t nb = ix->n - i0 < ib ? ix->n - i0 : ib;
        const float *Y = ix->items + i0 * d;
        int64_t ldy = d;
        if (f16) {
            for (int64_t i = 0; i < nb; i++) K->to_f32(ix->items_h + (i0 + i) * dh, w->Yf + i * dh, dh);
            Y = w->Yf, ldy = dh;
        }
        /* S (nq, nb) = Q block (nq, d) . Y block (nb, d)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nb, (int)d, 1.0f, Q + q0 * d, (int)d, Y, (int)ldy, 0.0f, w->S,
                    (int)nb);
        double bn = max_of(cn, i0 / CR_INDEX_CHUNK, (i0 + nb + CR_INDEX_CHUNK - 1) / CR_INDEX_CHUNK);
        for (int64_t r = 0; r < nq; r++) {
            if (w->qn[r] * maxn > FAST_NORM_LIMIT) continue;
            filter f = make_filter(ix, p, ex_ptr, ex, q0 + r);
            cr_status st = scan_scores(K, &w->cs[r], &f, w->S + r * nb, nb, (int32_t)i0, bd, w->qn[r], cn, bn, w->pos);
            if (st) return st;
        }
    }
    for (int64_t r = 0; r < nq; r++) {
        int64_t g = q0 + r;
        filter f = make_filter(ix, p, ex_ptr, ex, g);
        int32_t *it = items + g * k;
        float *sc = scores ? scores + g * k : NULL;
        int64_t *nf = n_found ? n_found + g : NULL;
        if (w->qn[r] * maxn > FAST_NORM_LIMIT) ref_one(ix, f16, Q + g * d, &f, &w->t, it, sc, nf);
        else finish(ix, f16, Q + g * d, &w->cs[r], 1, &w->t, it, sc, nf);
    }
    return CR_OK;
}

cr_status cr_index_search_batch(const cr_index *ix, const float *Q, int64_t nq, const int64_t *ex_ptr, const int32_t *ex,
                                const cr_index_search_params *p, int32_t *items, float *scores, int64_t *n_found) {
    cr_status st = check_batch(ix, Q, nq, ex_ptr, ex, p);
    if (st || nq == 0) return st;
    int f16 = p->precision == CR_INDEX_F16;
    /* Block sizes: at most QB queries x IB items; the queries split into a multiple of T blocks of equal size
     * (so that the threads finish together); fewer queries, then fewer items (a multiple of the chunk) when
     * the cap per thread requires it. */
    int T = threads_of(p);
    if (T > 256) T = 256;
    int64_t rounds = (nq + (int64_t)T * QB - 1) / ((int64_t)T * QB), qb = (nq + T * rounds - 1) / (T * rounds);
    int64_t cap = (p->mem_cap > 0 ? p->mem_cap : cr_index_search_default_params().mem_cap) / T / (int64_t)sizeof(float);
    int64_t n_round = (ix->n + CR_INDEX_CHUNK - 1) / CR_INDEX_CHUNK * CR_INDEX_CHUNK;
    int64_t ib = IB < n_round ? IB : n_round;
    if (ib < CR_INDEX_CHUNK) ib = CR_INDEX_CHUNK;
    if (qb * ib > cap) qb = cap / ib;
    if (qb < 1) {
        qb = 1;
        ib = cap / CR_INDEX_CHUNK * CR_INDEX_CHUNK;
        if (ib < CR_INDEX_CHUNK) ib = CR_INDEX_CHUNK;
    }
    int64_t n_qblocks = (nq + qb - 1) / qb;
    if (T > n_qblocks) T = (int)n_qblocks;
    cr_status ts[256] = {CR_OK};
    #pragma omp parallel num_threads(T) if (T > 1)
    {
        int g = 0;
#ifdef _OPENMP
        g = omp_get_thread_num();
#endif
        worker w;
        cr_status s = worker_init(&w, ix, f16, qb, ib, p->k);
        #pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n_qblocks; b++) {
            if (s) continue;
            int64_t q0 = b * qb, n = nq - q0 < qb ? nq - q0 : qb;
            s = batch_block(ix, &w, f16, Q, q0, n, ib, ex_ptr, ex, p, items, scores, n_found);
        }
        worker_free(&w);
        ts[g] = s;
    }
    for (int g = 0; g < T; g++)
        if (ts[g]) return cr_fail(CR_ERR_NOMEM, "out of memory (batch top-%lld search of %lld queries)", (long long)p->k, (long long)nq);
    return CR_OK;
}

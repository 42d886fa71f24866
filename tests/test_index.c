/* test_index.c — the exact top-K index (index.h).
 *
 * The oracle is cr_index_search_ref, itself checked against a full sort of every eligible item's reference
 * score. The fast paths (single query, both kernel sets, one and several threads; batches with the default and
 * tiny memory caps, so that queries and items are split into many blocks) must give identical items, order,
 * counts and scores, bit for bit: on random data of odd shapes, exact ties (duplicated rows), near-ties that a
 * float32 sum gets wrong (cancellation, rows one ulp apart), all filters, k = 1 and k > n. Plus float16
 * conversion against F16C, argument errors, huge norms, and allocation failures. */
#include "test.h"

#include "crossrec/index.h"

#include <stdlib.h>

static float *rand_matrix(int64_t n, int64_t d, uint64_t seed) {
    float *m = malloc((size_t)(n * d + 1) * sizeof *m);
    cr_rng r;
    cr_rng_seed(&r, seed, 7);
    for (int64_t t = 0; t < n * d; t++) m[t] = (float)cr_rng_normal(&r);
    return m;
}

/* ---- an independent oracle for the reference: full sort ---------------------------------------------------- */

typedef struct {
    float s;
    int32_t i;
} pair;

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static float half_to_float(uint16_t h) { return cr_f16_to_f32_ref(h); }

/* Top-k of one query by sorting every eligible item: the reference formula written out again. */
static int64_t sort_topk(const float *Y, int64_t n, int64_t d, int f16, const float *q, int64_t k, const int32_t *dom, int32_t want,
                         const uint64_t *allow, const uint64_t *deny, const int32_t *ex, int64_t n_ex, int32_t *items, float *scores) {
    pair *all = malloc((size_t)(n + 1) * sizeof *all);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (want >= 0 && dom[i] != want) continue;
        if (allow && !((allow[i / 64] >> (i % 64)) & 1)) continue;
        if (deny && ((deny[i / 64] >> (i % 64)) & 1)) continue;
        int skip = 0;
        for (int64_t t = 0; t < n_ex; t++) skip |= ex[t] == i;
        if (skip) continue;
        double acc = 0;
        for (int64_t j = 0; j < d; j++) acc += (double)q[j] * (double)(f16 ? half_to_float(cr_f32_to_f16_ref(Y[i * d + j])) : Y[i * d + j]);
        all[m].s = (float)acc, all[m].i = (int32_t)i, m++;
    }
    qsort(all, (size_t)m, sizeof *all, pair_cmp);
    int64_t got = m < k ? m : k;
    for (int64_t j = 0; j < got; j++) items[j] = all[j].i, scores[j] = all[j].s;
    free(all);
    return got;
}

/* ---- comparing every path with the reference ----------------------------------------------------------------- */

typedef struct {
    const int64_t *ex_ptr;
    const int32_t *ex;
} excl;

static void check_same(const char *what, const int32_t *ia, const float *sa, const int64_t *na, const int32_t *ib, const float *sb,
                       const int64_t *nb, int64_t nq, int64_t k) {
    for (int64_t r = 0; r < nq; r++) {
        CHECK_MSG(na[r] == nb[r], "%s: query %lld: %lld vs %lld results", what, (long long)r, (long long)na[r], (long long)nb[r]);
        for (int64_t j = 0; j < k; j++) {
            CHECK_MSG(ia[r * k + j] == ib[r * k + j], "%s: query %lld rank %lld: item %d vs %d (scores %.9g vs %.9g)", what, (long long)r,
                      (long long)j, ia[r * k + j], ib[r * k + j], sa[r * k + j], sb[r * k + j]);
            CHECK_MSG(!memcmp(&sa[r * k + j], &sb[r * k + j], sizeof(float)), "%s: query %lld rank %lld: score %.9g vs %.9g", what,
                      (long long)r, (long long)j, sa[r * k + j], sb[r * k + j]);
        }
    }
}

/* Runs the reference, the batch (threads 1 and 3; default and 1 KiB caps) and single queries (threads 1 and 2)
 * with both kernel sets, and checks they all agree. Returns the reference results (caller frees). */
static void all_paths(const cr_index *ix, const float *Q, int64_t nq, excl e, cr_index_search_params p, int32_t **items_out,
                      float **scores_out, int64_t **nf_out) {
    int64_t k = p.k;
    int32_t *ri = malloc((size_t)(nq * k + 1) * sizeof *ri), *bi = malloc((size_t)(nq * k + 1) * sizeof *bi);
    float *rs = malloc((size_t)(nq * k + 1) * sizeof *rs), *bs = malloc((size_t)(nq * k + 1) * sizeof *bs);
    int64_t *rn = malloc((size_t)(nq + 1) * sizeof *rn), *bn = malloc((size_t)(nq + 1) * sizeof *bn);
    CHECK_OK(cr_index_search_ref(ix, Q, nq, e.ex_ptr, e.ex, &p, ri, rs, rn));
    int64_t d = cr_index_dim(ix);
    for (int portable = 0; portable <= 1; portable++) {
        cr_index_force_portable(portable);
        for (int th = 1; th <= 3; th += 2)
            for (int cap = 0; cap < 2; cap++) {
                cr_index_search_params bp = p;
                bp.threads = th;
                bp.mem_cap = cap ? 1024 : p.mem_cap;
                memset(bi, 0x55, (size_t)(nq * k) * sizeof *bi);
                CHECK_OK(cr_index_search_batch(ix, Q, nq, e.ex_ptr, e.ex, &bp, bi, bs, bn));
                char what[96];
                snprintf(what, sizeof what, "batch (%s, %d threads, cap %lld)", cr_index_kernel(), th, (long long)bp.mem_cap);
                check_same(what, ri, rs, rn, bi, bs, bn, nq, k);
            }
        for (int th = 1; th <= 2; th++) {
            cr_index_search_params sp = p;
            sp.threads = th;
            for (int64_t r = 0; r < nq; r++) {
                const int32_t *ex = e.ex_ptr ? e.ex + e.ex_ptr[r] : NULL;
                int64_t n_ex = e.ex_ptr ? e.ex_ptr[r + 1] - e.ex_ptr[r] : 0;
                CHECK_OK(cr_index_search(ix, Q + r * d, ex, n_ex, &sp, bi + r * k, bs + r * k, bn + r));
            }
            char what[96];
            snprintf(what, sizeof what, "single (%s, %d threads)", cr_index_kernel(), th);
            check_same(what, ri, rs, rn, bi, bs, bn, nq, k);
        }
    }
    cr_index_force_portable(0);
    free(bi), free(bs), free(bn);
    if (items_out) *items_out = ri, *scores_out = rs, *nf_out = rn;
    else free(ri), free(rs), free(rn);
}

/* Checks the reference results against the full sort. */
static void check_ref_sorted(const float *Y, int64_t n, int64_t d, const float *Q, int64_t nq, excl e, const cr_index_search_params *p,
                             const int32_t *dom, const int32_t *ri, const float *rs, const int64_t *rn) {
    int64_t k = p->k;
    int32_t *it = malloc((size_t)k * sizeof *it);
    float *sc = malloc((size_t)k * sizeof *sc);
    for (int64_t r = 0; r < nq; r++) {
        const int32_t *ex = e.ex_ptr ? e.ex + e.ex_ptr[r] : NULL;
        int64_t n_ex = e.ex_ptr ? e.ex_ptr[r + 1] - e.ex_ptr[r] : 0;
        int64_t got = sort_topk(Y, n, d, p->precision == CR_INDEX_F16, Q + r * d, k, dom, p->domain, p->allow, p->deny, ex, n_ex, it, sc);
        CHECK_MSG(got == rn[r], "reference: query %lld: %lld results, sort gives %lld", (long long)r, (long long)rn[r], (long long)got);
        for (int64_t j = 0; j < got; j++)
            CHECK_MSG(it[j] == ri[r * k + j] && sc[j] == rs[r * k + j], "reference: query %lld rank %lld: %d (%.9g), sort gives %d (%.9g)",
                      (long long)r, (long long)j, ri[r * k + j], rs[r * k + j], it[j], sc[j]);
        for (int64_t j = got; j < k; j++) CHECK(ri[r * k + j] == -1 && isnan(rs[r * k + j]));
    }
    free(it), free(sc);
}

/* ---- float16 ----------------------------------------------------------------------------------------------- */

TEST(index_f16_conversion) {
    /* hand-checked values */
    CHECK_EQ(cr_f32_to_f16_ref(1.0f), 0x3c00);
    CHECK_EQ(cr_f32_to_f16_ref(-2.0f), 0xc000);
    CHECK_EQ(cr_f32_to_f16_ref(65504.0f), 0x7bff);
    CHECK_EQ(cr_f32_to_f16_ref(65519.996f), 0x7bff);
    CHECK_EQ(cr_f32_to_f16_ref(65520.0f), 0x7c00);                  /* the midpoint ties to even: infinity */
    CHECK_EQ(cr_f32_to_f16_ref(0x1p-24f), 0x0001);
    CHECK_EQ(cr_f32_to_f16_ref(0x1p-25f), 0x0000);                  /* ties to even: zero */
    CHECK_EQ(cr_f32_to_f16_ref(0x1.8p-25f), 0x0001);
    CHECK_EQ(cr_f32_to_f16_ref(0x3p-25f), 0x0002);                  /* 1.5 units ties to 2 */
    CHECK_EQ(cr_f32_to_f16_ref(1.0f + 0x1p-11f), 0x3c00);           /* tie, even mantissa stays */
    CHECK_EQ(cr_f32_to_f16_ref(1.0f + 0x3p-11f), 0x3c02);           /* tie, odd mantissa rounds up */
    CHECK_EQ(cr_f32_to_f16_ref(0x1.ffcp-15f), 0x0400);              /* rounds up into the smallest normal */
    CHECK_EQ(cr_f32_to_f16_ref(-0.0f), 0x8000);
    CHECK_EQ(cr_f32_to_f16_ref(INFINITY), 0x7c00);
    CHECK(cr_f16_to_f32_ref(0x0001) == 0x1p-24f);
    CHECK(cr_f16_to_f32_ref(0x7bff) == 65504.0f);
    CHECK(cr_f16_to_f32_ref(0xfc00) == -INFINITY);
    /* every half: the round trip is the identity (NaNs stay NaN), and the fast conversion gives the same bits */
    static uint16_t h[65536], h2[65536];
    static float f[65536], f2[65536];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    cr_f16_to_f32(h, f, 65536);
    for (int i = 0; i < 65536; i++) {
        f2[i] = cr_f16_to_f32_ref(h[i]);
        CHECK_MSG(!memcmp(&f[i], &f2[i], 4), "half %04x: %a (%s) vs %a (portable)", i, f[i], cr_index_kernel(), f2[i]);
    }
    cr_f32_to_f16(f, h2, 65536);
    for (int i = 0; i < 65536; i++) {
        int nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
        CHECK_MSG(nan ? (h2[i] & 0x7c00) == 0x7c00 && (h2[i] & 0x3ff) : h2[i] == i, "half %04x -> %a -> %04x", i, f[i], h2[i]);
        CHECK_EQ(cr_f32_to_f16_ref(f[i]), h2[i]);
    }
    /* random float bit patterns (all classes: NaN, subnormal, overflow) and values near half-ulp ties */
    cr_rng r;
    cr_rng_seed(&r, 11, 3);
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < 65536; i++) {
            uint32_t b = cr_rng_u32(&r);
            if (i & 1) b = (b & 0x80000000u) | ((0x33000000u + (b & 0x0fffffffu)) & 0x7fffffffu);   /* ~[2^-25, 2^5) */
            if (i % 8 == 3) b = (b & 0xffffe000u) | 0x1000u;                                      /* an exact tie */
            memcpy(&f[i], &b, 4);
        }
        cr_f32_to_f16(f, h, 65536);
        for (int i = 0; i < 65536; i++)
            CHECK_MSG(h[i] == cr_f32_to_f16_ref(f[i]), "%a: %04x (%s) vs %04x (portable)", f[i], h[i], cr_index_kernel(),
                      cr_f32_to_f16_ref(f[i]));
    }
}

/* ---- search: shapes, ties, near-ties, filters -------------------------------------------------------------- */

TEST(index_odd_shapes_all_paths) {
    static const int64_t ns[] = {1, 7, 1003}, ds[] = {1, 3, 17, 64};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++) {
            int64_t n = ns[a], d = ds[b], nq = 13;
            float *Y = rand_matrix(n, d, 100 + (uint64_t)(a * 4 + b)), *Q = rand_matrix(nq, d, 200 + (uint64_t)(a * 4 + b));
            cr_index_params ip = cr_index_default_params();
            ip.f16 = 1;
            cr_index *ix = NULL;
            CHECK_OK(cr_index_init(&ix, Y, n, d, &ip));
            static const int64_t ks[] = {1, 10, 1000};
            for (int kk = 0; kk < 3; kk++)
                for (int prec = 0; prec < 2; prec++) {
                    cr_index_search_params p = cr_index_search_default_params();
                    p.k = ks[kk];
                    p.precision = prec ? CR_INDEX_F16 : CR_INDEX_F32;
                    int32_t *ri;
                    float *rs;
                    int64_t *rn;
                    excl e = {NULL, NULL};
                    all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
                    check_ref_sorted(Y, n, d, Q, nq, e, &p, NULL, ri, rs, rn);
                    for (int64_t r = 0; r < nq; r++) CHECK_EQ(rn[r], n < p.k ? n : p.k);   /* k > n gives n */
                    free(ri), free(rs), free(rn);
                }
            cr_index_free(ix);
            free(Y), free(Q);
        }
}

TEST(index_exact_ties_duplicated_rows) {
    /* 1000 + 3 rows, each a copy of one of 5 patterns (and some zero rows): every score is tied with ~200 others,
     * so the top-10 is decided by item index alone */
    int64_t n = 1003, d = 17, nq = 9;
    float *base = rand_matrix(5, d, 1), *Y = malloc((size_t)(n * d) * sizeof *Y), *Q = rand_matrix(nq, d, 2);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) Y[i * d + j] = i % 97 == 0 ? 0.0f : base[(i * 7 % 5) * d + j];
    cr_index *ix = NULL;
    cr_index_params ip = cr_index_default_params();
    ip.f16 = 1;
    CHECK_OK(cr_index_init(&ix, Y, n, d, &ip));
    for (int64_t k = 1; k <= 1000; k *= 10) {
        cr_index_search_params p = cr_index_search_default_params();
        p.k = k;
        int32_t *ri;
        float *rs;
        int64_t *rn;
        excl e = {NULL, NULL};
        all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
        check_ref_sorted(Y, n, d, Q, nq, e, &p, NULL, ri, rs, rn);
        /* ties ranked by index */
        for (int64_t r = 0; r < nq; r++)
            for (int64_t j = 1; j < rn[r]; j++)
                CHECK(rs[r * k + j - 1] > rs[r * k + j] || (rs[r * k + j - 1] == rs[r * k + j] && ri[r * k + j - 1] < ri[r * k + j]));
        free(ri), free(rs), free(rn);
    }
    cr_index_free(ix);
    /* all rows identical: every item is a candidate (the lists must grow), the answer is 0..k-1 */
    for (int64_t i = 0; i < n; i++) memcpy(Y + i * d, base, (size_t)d * sizeof *Y);
    CHECK_OK(cr_index_init(&ix, Y, n, d, NULL));
    cr_index_search_params p = cr_index_search_default_params();
    p.k = 10;
    int32_t *ri;
    float *rs;
    int64_t *rn;
    excl e = {NULL, NULL};
    all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
    for (int64_t r = 0; r < nq; r++)
        for (int64_t j = 0; j < 10; j++) CHECK_EQ(ri[r * 10 + j], j);
    free(ri), free(rs), free(rn);
    cr_index_free(ix);
    free(base), free(Y), free(Q);
}

TEST(index_near_ties) {
    /* Row 0 = (2^24, 1, -2^24, ...): its exact score with q = (1, 1, 1, ...) is 1 (the reference gets it), while a
     * left-to-right float32 sum gives 0. Row 1 scores 0.5 everywhere. Rows 2.. are row 3's values with one
     * coordinate moved by one ulp, up or down, so their scores differ in the last bits; the rest is noise of
     * the same size (scaled by 0.01, so that rows 0 and 1 lead for q = 1). The reference order must come out of every path. */
    int64_t n = 300, d = 19, nq = 4;
    float *Y = rand_matrix(n, d, 5), *Q = malloc((size_t)(nq * d) * sizeof *Q);
    for (int64_t j = 0; j < d; j++) Y[j] = 0, Y[d + j] = 0;
    Y[0] = 0x1p24f, Y[1] = 1.0f, Y[2] = -0x1p24f, Y[d + 1] = 0.5f;
    for (int64_t t = 3 * d; t < n * d; t++) Y[t] *= 0.01f;
    for (int64_t i = 4; i < 200; i++) {
        memcpy(Y + i * d, Y + 3 * d, (size_t)d * sizeof *Y);
        int64_t j = i % d;
        Y[i * d + j] = nextafterf(Y[i * d + j], i % 2 ? INFINITY : -INFINITY);
    }
    for (int64_t r = 0; r < nq; r++)
        for (int64_t j = 0; j < d; j++) Q[r * d + j] = r == 0 ? 1.0f : Y[3 * d + j] * (float)(r + 1) + (r == 3 ? 0x1p-20f * (float)j : 0);
    cr_index *ix = NULL;
    CHECK_OK(cr_index_init(&ix, Y, n, d, NULL));
    for (int64_t k = 1; k <= 100; k *= 10) {
        cr_index_search_params p = cr_index_search_default_params();
        p.k = k;
        int32_t *ri;
        float *rs;
        int64_t *rn;
        excl e = {NULL, NULL};
        all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
        check_ref_sorted(Y, n, d, Q, nq, e, &p, NULL, ri, rs, rn);
        if (k == 1) CHECK_EQ(ri[0], 0);   /* score 1 beats 0.5 */
        free(ri), free(rs), free(rn);
    }
    cr_index_free(ix);
    free(Y), free(Q);
}

TEST(index_filters) {
    int64_t n = 1003, d = 17, nq = 6;
    float *Y = rand_matrix(n, d, 8), *Q = rand_matrix(nq, d, 9);
    for (int64_t i = 500; i < 540; i++) memcpy(Y + i * d, Y + 100 * d, (size_t)d * sizeof *Y);   /* some ties too */
    int32_t *dom = malloc((size_t)n * sizeof *dom);
    for (int64_t i = 0; i < n; i++) dom[i] = (int32_t)(i % 3 == 0 ? 2 : i % 5 == 0);
    int64_t words = (n + 63) / 64;
    uint64_t *allow = calloc((size_t)words, 8), *deny = calloc((size_t)words, 8), *none = calloc((size_t)words, 8);
    cr_rng r;
    cr_rng_seed(&r, 3, 4);
    for (int64_t i = 0; i < n; i++) {
        if (cr_rng_below(&r, 3)) allow[i / 64] |= 1ull << (i % 64);
        if (!cr_rng_below(&r, 4)) deny[i / 64] |= 1ull << (i % 64);
    }
    /* per-query sorted exclude lists, with repeats; query 5 excludes everything */
    int64_t ex_ptr[7] = {0};
    int32_t *ex = malloc((size_t)(n + 6 * 300) * sizeof *ex);
    int64_t m = 0;
    for (int64_t q = 0; q < nq; q++) {
        if (q == 5)
            for (int32_t i = 0; i < n; i++) ex[m++] = i;
        else
            for (int32_t i = 0; i < n; i += 1 + (int32_t)cr_rng_below(&r, 8 + 4 * (uint32_t)q)) {
                ex[m++] = i;
                if (i % 11 == 0) ex[m++] = i;
            }
        ex_ptr[q + 1] = m;
    }
    cr_index_params ip = cr_index_default_params();
    ip.item_domain = dom;
    ip.f16 = 1;
    cr_index *ix = NULL;
    CHECK_OK(cr_index_init(&ix, Y, n, d, &ip));
    for (int variant = 0; variant < 16; variant++) {
        cr_index_search_params p = cr_index_search_default_params();
        p.k = variant % 3 == 0 ? 1 : variant % 3 == 1 ? 10 : 1000;
        p.domain = variant & 1 ? (int32_t)(variant % 3) : -1;
        p.allow = variant & 2 ? allow : NULL;
        p.deny = variant & 4 ? deny : NULL;
        p.precision = variant == 7 ? CR_INDEX_F16 : CR_INDEX_F32;
        excl e = {variant & 8 ? ex_ptr : NULL, ex};
        int32_t *ri;
        float *rs;
        int64_t *rn;
        all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
        check_ref_sorted(Y, n, d, Q, nq, e, &p, dom, ri, rs, rn);
        if (variant & 8) CHECK_EQ(rn[5], 0);
        free(ri), free(rs), free(rn);
    }
    /* an empty allow list: no results, every slot -1 / NaN */
    cr_index_search_params p = cr_index_search_default_params();
    p.allow = none;
    int32_t *ri;
    float *rs;
    int64_t *rn;
    excl e = {NULL, NULL};
    all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
    for (int64_t q = 0; q < nq; q++) {
        CHECK_EQ(rn[q], 0);
        for (int j = 0; j < 10; j++) CHECK(ri[q * 10 + j] == -1 && isnan(rs[q * 10 + j]));
    }
    free(ri), free(rs), free(rn);
    /* a domain no item has */
    p = cr_index_search_default_params();
    p.domain = 7;
    int32_t it[10];
    int64_t nf = -1;
    CHECK_OK(cr_index_search(ix, Q, NULL, 0, &p, it, NULL, &nf));
    CHECK_EQ(nf, 0);
    cr_index_free(ix);
    free(Y), free(Q), free(dom), free(allow), free(deny), free(none), free(ex);
}

TEST(index_huge_norms_and_borrow) {
    /* |q| max|y| beyond 1e36: float32 scores could overflow, so such queries take the reference path */
    int64_t n = 200, d = 8, nq = 3;
    float *Y = rand_matrix(n, d, 12), *Q = rand_matrix(nq, d, 13);
    for (int64_t t = 0; t < n * d; t++) Y[t] *= 1e19f;
    Q[0] *= 1e18f;
    cr_index_params ip = cr_index_default_params();
    ip.borrow = 1;
    cr_index *ix = NULL;
    CHECK_OK(cr_index_init(&ix, Y, n, d, &ip));
    CHECK(cr_index_items(ix) == Y);   /* borrowed, not copied */
    cr_index_search_params p = cr_index_search_default_params();
    int32_t *ri;
    float *rs;
    int64_t *rn;
    excl e = {NULL, NULL};
    all_paths(ix, Q, nq, e, p, &ri, &rs, &rn);
    check_ref_sorted(Y, n, d, Q, nq, e, &p, NULL, ri, rs, rn);
    free(ri), free(rs), free(rn);
    cr_index_free(ix);
    /* an empty index */
    CHECK_OK(cr_index_init(&ix, NULL, 0, 4, NULL));
    int32_t it[10];
    int64_t nf = -1;
    CHECK_OK(cr_index_search(ix, Q, NULL, 0, &p, it, NULL, &nf));
    CHECK_EQ(nf, 0);
    CHECK_EQ(it[0], -1);
    CHECK_OK(cr_index_search_batch(ix, Q, 1, NULL, NULL, &p, it, NULL, &nf));
    CHECK_EQ(nf, 0);
    cr_index_free(ix);
    free(Y), free(Q);
}

TEST(index_f16_recall) {
    /* float16 search is exact over the rounded matrix; against float32 its top-10 should overlap almost fully */
    int64_t n = 5000, d = 32, nq = 50, k = 10;
    float *Y = rand_matrix(n, d, 21), *Q = rand_matrix(nq, d, 22);
    cr_index_params ip = cr_index_default_params();
    ip.f16 = 1;
    cr_index *ix = NULL;
    CHECK_OK(cr_index_init(&ix, Y, n, d, &ip));
    CHECK(cr_index_has_f16(ix));
    int32_t a[50 * 10], b[50 * 10];
    cr_index_search_params p = cr_index_search_default_params();
    CHECK_OK(cr_index_search_batch(ix, Q, nq, NULL, NULL, &p, a, NULL, NULL));
    p.precision = CR_INDEX_F16;
    CHECK_OK(cr_index_search_batch(ix, Q, nq, NULL, NULL, &p, b, NULL, NULL));
    int hits = 0;
    for (int64_t r = 0; r < nq; r++)
        for (int64_t x = 0; x < k; x++)
            for (int64_t y = 0; y < k; y++) hits += a[r * k + x] == b[r * k + y];
    double recall = hits / (double)(nq * k);
    CHECK_MSG(recall >= 0.95 && recall <= 1.0, "float16 recall@10 %.3f", recall);
    cr_index_free(ix);
    free(Y), free(Q);
}

/* ---- errors ------------------------------------------------------------------------------------------------ */

TEST(index_argument_errors) {
    int64_t n = 20, d = 3;
    float *Y = rand_matrix(n, d, 31), q[3] = {1, 2, 3};
    cr_index *ix = NULL;
    Y[7 * d + 2] = NAN;
    CHECK_STATUS(cr_index_init(&ix, Y, n, d, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "item 7");
    CHECK(ix == NULL);
    Y[7 * d + 2] = 70000.0f;
    cr_index_params ip = cr_index_default_params();
    ip.f16 = 1;
    CHECK_STATUS(cr_index_init(&ix, Y, n, d, &ip), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "float16");
    CHECK_STATUS(cr_index_init(&ix, Y, n, 0, NULL), CR_ERR_ARG);
    CHECK_OK(cr_index_init(&ix, Y, n, d, NULL));
    int32_t it[1000];
    float sc[1000];
    cr_index_search_params p = cr_index_search_default_params();
    p.k = 0;
    CHECK_STATUS(cr_index_search(ix, q, NULL, 0, &p, it, sc, NULL), CR_ERR_ARG);
    p.k = CR_INDEX_MAX_K + 1;
    CHECK_STATUS(cr_index_search_batch(ix, q, 1, NULL, NULL, &p, it, sc, NULL), CR_ERR_ARG);
    p = cr_index_search_default_params();
    p.domain = 0;
    CHECK_STATUS(cr_index_search(ix, q, NULL, 0, &p, it, sc, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "domain");
    p = cr_index_search_default_params();
    p.precision = CR_INDEX_F16;
    CHECK_STATUS(cr_index_search_ref(ix, q, 1, NULL, NULL, &p, it, sc, NULL), CR_ERR_ARG);
    p = cr_index_search_default_params();
    int32_t unsorted[2] = {5, 3}, outside[1] = {20};
    CHECK_STATUS(cr_index_search(ix, q, unsorted, 2, &p, it, sc, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "sorted");
    CHECK_STATUS(cr_index_search(ix, q, outside, 1, &p, it, sc, NULL), CR_ERR_ARG);
    float Q2[6] = {1, 2, 3, 4, INFINITY, 6};
    CHECK_STATUS(cr_index_search_batch(ix, Q2, 2, NULL, NULL, &p, it, sc, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "query 1");
    cr_index_free(ix);
    cr_index_free(NULL);
    free(Y);
}

TEST(index_out_of_memory) {
    /* every allocation of init, single, batch (two threads) and reference search fails in turn: CR_ERR_NOMEM,
     * nothing leaked (the harness counts blocks). The rows are all equal so that candidate lists grow. */
    int64_t n = 700, d = 9, nq = 5;
    float *Y = rand_matrix(n, d, 41), *Q = rand_matrix(nq, d, 42);
    for (int64_t i = 300; i < n; i++) memcpy(Y + i * d, Y, (size_t)d * sizeof *Y);
    int32_t it[5 * 50];
    float sc[5 * 50];
    int64_t nf[5];
    for (int what = 0; what < 8; what++) {
        int done = 0;
        for (int64_t nth = 1; !done && nth < 10000; nth++) {
            cr_index_params ip = cr_index_default_params();
            ip.f16 = 1;
            cr_index *ix = NULL;
            cr_index_search_params p = cr_index_search_default_params();
            p.k = 50;
            p.threads = 2;
            p.mem_cap = 4096;
            p.precision = what >= 4 ? CR_INDEX_F16 : CR_INDEX_F32;
            if (what % 4 > 0) CHECK_OK(cr_index_init(&ix, Y, n, d, &ip));
            cr_alloc_fail_nth(nth);
            cr_status st = what % 4 == 0   ? cr_index_init(&ix, Y, n, d, &ip)
                           : what % 4 == 1 ? cr_index_search(ix, Q, NULL, 0, &p, it, sc, nf)
                           : what % 4 == 2 ? cr_index_search_batch(ix, Q, nq, NULL, NULL, &p, it, sc, nf)
                                       : cr_index_search_ref(ix, Q, nq, NULL, NULL, &p, it, sc, nf);
            int hit = cr_alloc_fault_hit();
            cr_alloc_fail_nth(0);
            if (hit) {
                CHECK_MSG(st == CR_ERR_NOMEM, "case %d, allocation %lld failed: got %s", what, (long long)nth, cr_status_str(st));
                if (what % 4 == 0) CHECK(ix == NULL);
            } else {
                CHECK_OK(st);
                done = 1;
            }
            cr_index_free(ix);
        }
        CHECK_MSG(done, "case %d never completed", what);
    }
    free(Y), free(Q);
}

/* itemknn.c — item-based k-nearest neighbours on training co-occurrence (cosine with shrinkage).
 *
 * Main type: knn_model, a CSR of neighbour lists. With n_i the number of distinct training users of item i and
 * co(i, j) the number of distinct users with both:
 *     sim(i, j) = co(i, j) / (sqrt(n_i * n_j) + shrink)
 * Users with repeated events count once per item. Each item keeps, in every domain, its `neighbors` best
 * j != i of that domain with sim > 0 — a quota per domain, because the neighbours of an item in a rich domain
 * would otherwise all come from its own domain and leave nothing to transfer to a thin one. Rows are ordered
 * by (sim descending, item index ascending); that order also breaks ties when truncating.
 *
 * Scoring a row: H = the distinct items of its history, in any domain — this is what lets the model score a
 * user who is cold in the target domain through co-occurrence seen in other domains. score(j) = sum over i
 * in H of sim(i, j), over the neighbour lists of H. can[r] = 0 when no item of H has a neighbour: the model
 * then knows nothing about the user (an empty history, or, for a model trained on one domain, a history
 * entirely outside it).
 *
 * Training is parallel over items (OpenMP): each item's row is computed on its own from read-only inputs with
 * integer co-occurrence counts, so the result is the same at any thread count, byte for byte.
 *
 * Invariants (checked on load): ptr[0] = 0, ptr monotone, ptr[n_items] = number of entries; each row has at
 * most `neighbors` x n_domains entries; idx in 0..n_items-1, != the row's item and not repeated in the row; sim finite
 * and > 0; entries strictly in (sim desc, idx asc) order.
 *
 * .crm keys: itemknn.neighbors, itemknn.shrink (f64), itemknn.domain; arrays knn.ptr i64 (n_items + 1),
 * knn.idx i32 (ptr[n_items]), knn.sim f32 (ptr[n_items]). */
#include "model_impl.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    cr_model base;
    int64_t neighbors;
    double shrink;
    int32_t domain;             /* trained on this domain's events only, or -1 */
    const int64_t *ptr;         /* (n_items + 1) */
    const int32_t *idx;         /* (ptr[n_items]) neighbour items, per item by (sim desc, index asc) */
    const float *sim;           /* (ptr[n_items]) */
    int64_t *own_ptr;           /* trained: owned arrays; loaded: NULL (the pointers above are in the mapping) */
    int32_t *own_idx;
    float *own_sim;
    cr_file *file;
} knn_model;

/* ---- scoring ---- */

static cr_status knn_score(const cr_model *mm, const cr_score_request *q, float *scores, uint8_t *can) {
    const knn_model *m = (const knn_model *)mm;
    int64_t n_items = m->base.n_items;
    /* Per call, so that concurrent callers share nothing: acc (n_items) sums, seen (n_items) marks H. Both are
     * all zero between rows; they are cleared by walking the row's history again. */
    float *acc = cr_calloc((size_t)n_items + 1, sizeof *acc);
    uint8_t *seen = cr_calloc((size_t)n_items + 1, 1);
    if (!acc || !seen) {
        cr_free(acc);
        cr_free(seen);
        return cr_fail(CR_ERR_NOMEM, "out of memory scoring with itemknn (%lld items)", (long long)n_items);
    }
    for (int64_t r = 0; r < q->n_rows; r++) {
        int any = 0;
        for (int64_t e = q->hist_ptr[r]; e < q->hist_ptr[r + 1]; e++) {
            int32_t i = q->hist_items[e];
            if (seen[i]) continue;      /* a repeated history item counts once */
            seen[i] = 1;
            int64_t k0 = m->ptr[i], k1 = m->ptr[i + 1];
            any |= k1 > k0;
            for (int64_t k = k0; k < k1; k++) acc[m->idx[k]] += m->sim[k];
        }
        can[r] = (uint8_t)any;
        for (int64_t c = 0; c < q->n_cand; c++) scores[r * q->n_cand + c] = acc[q->cand[c]];
        for (int64_t e = q->hist_ptr[r]; e < q->hist_ptr[r + 1]; e++) {
            int32_t i = q->hist_items[e];
            if (!seen[i]) continue;
            seen[i] = 0;
            for (int64_t k = m->ptr[i]; k < m->ptr[i + 1]; k++) acc[m->idx[k]] = 0.0f;
        }
    }
    cr_free(acc);
    cr_free(seen);
    return CR_OK;
}

/* ---- save, free ---- */

static cr_status knn_save(const cr_model *mm, cr_filew *w) {
    const knn_model *m = (const knn_model *)mm;
    int64_t nnz = m->ptr[m->base.n_items];
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "itemknn.neighbors", m->neighbors)) || (st = cr_filew_meta_f64(w, "itemknn.shrink", m->shrink)) ||
        (st = cr_filew_meta_i64(w, "itemknn.domain", m->domain)) ||
        (st = cr_filew_array(w, "knn.ptr", CR_DT_I64, m->ptr, m->base.n_items + 1)) ||
        (st = cr_filew_array(w, "knn.idx", CR_DT_I32, m->idx, nnz)) || (st = cr_filew_array(w, "knn.sim", CR_DT_F32, m->sim, nnz)))
        return st;
    return CR_OK;
}

static void knn_free(cr_model *mm) {
    knn_model *m = (knn_model *)mm;
    cr_free(m->own_ptr);
    cr_free(m->own_idx);
    cr_free(m->own_sim);
    cr_file_close(m->file);
    cr_free(m);
}

static int64_t knn_neighbors(const cr_model *mm, int32_t i, const int32_t **items, const float **sims) {
    const knn_model *m = (const knn_model *)mm;
    *items = m->idx + m->ptr[i];
    *sims = m->sim + m->ptr[i];
    return m->ptr[i + 1] - m->ptr[i];
}

static const cr_model_ops knn_ops = {.name = "itemknn", .score = knn_score, .save = knn_save, .free = knn_free,
                                     .neighbors = knn_neighbors};

/* ---- training ---- */

/* A CSR of distinct entries: rows [ptr[r], ptr[r+1]) of idx. */
typedef struct {
    int64_t *ptr;
    int32_t *idx;
} csr;

static void csr_free(csr *c) {
    cr_free(c->ptr);
    cr_free(c->idx);
}

/* user -> distinct items (first appearance order) and item -> distinct users (ascending), restricted to the
 * items of `domain` when it is >= 0. */
static cr_status build_distinct(const cr_interactions *v, int32_t domain, csr *ui, csr *iu) {
    int64_t n_users = v->n_users, n_items = v->n_items;
    memset(ui, 0, sizeof *ui);
    memset(iu, 0, sizeof *iu);
    int32_t *last = cr_malloc(((size_t)n_items + 1) * sizeof *last);   /* (n_items) last user seen with the item */
    ui->ptr = cr_malloc(((size_t)n_users + 1) * sizeof *ui->ptr);
    ui->idx = cr_malloc(((size_t)v->n_inter + 1) * sizeof *ui->idx);
    iu->ptr = cr_calloc((size_t)n_items + 1, sizeof *iu->ptr);
    if (!last || !ui->ptr || !ui->idx || !iu->ptr) goto oom;
    for (int64_t i = 0; i < n_items; i++) last[i] = -1;
    int64_t nnz = 0;
    ui->ptr[0] = 0;
    for (int64_t u = 0; u < n_users; u++) {
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            if ((domain >= 0 && v->item_domain[i] != domain) || last[i] == (int32_t)u) continue;
            last[i] = (int32_t)u;
            ui->idx[nnz++] = i;
            iu->ptr[i + 1]++;
        }
        ui->ptr[u + 1] = nnz;
    }
    for (int64_t i = 0; i < n_items; i++) iu->ptr[i + 1] += iu->ptr[i];
    if (!(iu->idx = cr_malloc(((size_t)nnz + 1) * sizeof *iu->idx))) goto oom;
    /* fill by ascending user, using last[] as each item's fill position */
    for (int64_t i = 0; i < n_items; i++) last[i] = 0;
    for (int64_t u = 0; u < n_users; u++)
        for (int64_t k = ui->ptr[u]; k < ui->ptr[u + 1]; k++) {
            int32_t i = ui->idx[k];
            iu->idx[iu->ptr[i] + last[i]++] = (int32_t)u;
        }
    cr_free(last);
    return CR_OK;
oom:
    cr_free(last);
    csr_free(ui);
    csr_free(iu);
    return cr_fail(CR_ERR_NOMEM, "out of memory training itemknn (%lld events)", (long long)v->n_inter);
}

typedef struct {
    float sim;
    int32_t idx;
} nb;

/* The ranking order of neighbours: higher similarity first, then lower item index. */
static int nb_better(nb a, nb b) { return a.sim > b.sim || (a.sim == b.sim && a.idx < b.idx); }

static int nb_cmp(const void *pa, const void *pb) {
    nb a = *(const nb *)pa, b = *(const nb *)pb;
    return nb_better(a, b) ? -1 : nb_better(b, a) ? 1 : 0;
}

/* Per-thread scratch for one item row: co (n_items) counts, zero between rows; touched (n_items) the items
 * with co > 0; cand (n_items) the candidates with their similarity. */
typedef struct {
    int32_t *co;
    int32_t *touched;
    nb *cand;
} row_scratch;

/* Candidates grouped by domain (ctx: item_domain), each group in ranking order, for the per-domain quota. */
static int nb_cmp_domain(const void *pa, const void *pb, void *ctx) {
    const int32_t *dom = ctx;
    nb a = *(const nb *)pa, b = *(const nb *)pb;
    if (dom[a.idx] != dom[b.idx]) return dom[a.idx] < dom[b.idx] ? -1 : 1;
    return nb_cmp(pa, pb);
}

/* Computes item i's neighbour list into idx/sim (room for at least the returned count); returns the count. */
static int64_t knn_row(int64_t i, const csr *ui, const csr *iu, const int32_t *item_domain, int64_t K, double shrink,
                       row_scratch *s, int32_t *idx, float *sim) {
    int64_t nt = 0;
    for (int64_t k = iu->ptr[i]; k < iu->ptr[i + 1]; k++) {
        int32_t u = iu->idx[k];
        for (int64_t e = ui->ptr[u]; e < ui->ptr[u + 1]; e++) {
            int32_t j = ui->idx[e];
            if (s->co[j]++ == 0) s->touched[nt++] = j;
        }
    }
    double n_i = (double)(iu->ptr[i + 1] - iu->ptr[i]);
    int64_t nc = 0;
    for (int64_t t = 0; t < nt; t++) {
        int32_t j = s->touched[t];
        int32_t co = s->co[j];
        s->co[j] = 0;
        if (j == i) continue;
        double n_j = (double)(iu->ptr[j + 1] - iu->ptr[j]);
        nb x = {(float)((double)co / (sqrt(n_i * n_j) + shrink)), j};
        if (x.sim > 0) s->cand[nc++] = x;  /* > 0 unless shrink is huge: co >= 1 */
    }
    /* the best K of each domain, then the row in ranking order */
    qsort_r(s->cand, (size_t)nc, sizeof *s->cand, nb_cmp_domain, (void *)item_domain);
    int64_t kept = 0;
    for (int64_t c = 0, run = 0; c < nc; c++) {
        run = c > 0 && item_domain[s->cand[c].idx] == item_domain[s->cand[c - 1].idx] ? run + 1 : 0;
        if (run < K) s->cand[kept++] = s->cand[c];
    }
    qsort(s->cand, (size_t)kept, sizeof *s->cand, nb_cmp);
    for (int64_t k = 0; k < kept; k++) idx[k] = s->cand[k].idx, sim[k] = s->cand[k].sim;
    return kept;
}

static int train_threads(const cr_train_params *p) {
#ifdef _OPENMP
    return p->threads > 0 ? p->threads : omp_get_max_threads();
#else
    return 1;
#endif
}

static cr_status knn_train(cr_model **out, const cr_dataset *d, const cr_interactions *v, const cr_train_params *p) {
    int64_t n_items = v->n_items, K = p->knn_neighbors;
    csr ui, iu;
    cr_status st = build_distinct(v, p->domain, &ui, &iu);
    if (st) return st;
    knn_model *m = cr_calloc(1, sizeof *m);
    /* Room per item before the rows are known: at most K, at most n_items - 1, and at most the number of
     * (user, other item) pairs through the item's users. Rows are written there, then packed. */
    int64_t *ptr = cr_malloc(((size_t)n_items + 1) * sizeof *ptr);    /* (n_items + 1) room, then final offsets */
    int64_t *cnt = cr_malloc(((size_t)n_items + 1) * sizeof *cnt);    /* (n_items) entries written per item */
    int32_t *idx = NULL;
    float *sim = NULL;
    if (!m || !ptr || !cnt) goto oom;
    ptr[0] = 0;
    for (int64_t i = 0; i < n_items; i++) {
        int64_t pairs = 0;
        for (int64_t k = iu.ptr[i]; k < iu.ptr[i + 1] && pairs < K * v->n_domains; k++) {
            int32_t u = iu.idx[k];
            pairs += ui.ptr[u + 1] - ui.ptr[u] - 1;
        }
        int64_t quota = K * v->n_domains, room = pairs < quota ? pairs : quota;
        if (room > n_items - 1) room = n_items - 1;
        ptr[i + 1] = ptr[i] + room;
    }
    int64_t total = ptr[n_items];
    idx = cr_malloc(((size_t)total + 1) * sizeof *idx);
    sim = cr_malloc(((size_t)total + 1) * sizeof *sim);
    if (!idx || !sim) goto oom;

    int failed = 0;
    int nthreads = train_threads(p);
    (void)nthreads;
    CR_OMP(omp parallel num_threads(nthreads))
    {
        row_scratch s = {cr_calloc((size_t)n_items + 1, sizeof(int32_t)), cr_malloc(((size_t)n_items + 1) * sizeof(int32_t)),
                         cr_malloc(((size_t)n_items + 1) * sizeof(nb))};
        int ok = s.co && s.touched && s.cand;
        if (!ok) {
            CR_OMP(omp atomic write)
            failed = 1;
        }
        /* Rows cost very different amounts (popular items touch many users): hand them out dynamically. */
        CR_OMP(omp for schedule(dynamic, 32))
        for (int64_t i = 0; i < n_items; i++) {
            int stop;
            CR_OMP(omp atomic read)
            stop = failed;
            if (!ok || stop) continue;  /* training fails as a whole; skipping rows is harmless */
            cnt[i] = knn_row(i, &ui, &iu, v->item_domain, K, p->knn_shrink, &s, idx + ptr[i], sim + ptr[i]);
            CR_ASSERT(cnt[i] <= ptr[i + 1] - ptr[i]);
        }
        cr_free(s.co);
        cr_free(s.touched);
        cr_free(s.cand);
    }
    if (failed) goto oom;
    csr_free(&ui);
    csr_free(&iu);

    /* Pack the rows to the front; each row only moves left, and ptr[i] is read before it is overwritten. */
    int64_t at = 0;
    for (int64_t i = 0; i < n_items; i++) {
        int64_t from = ptr[i];
        ptr[i] = at;
        memmove(idx + at, idx + from, (size_t)cnt[i] * sizeof *idx);
        memmove(sim + at, sim + from, (size_t)cnt[i] * sizeof *sim);
        at += cnt[i];
    }
    ptr[n_items] = at;
    cr_free(cnt);
    if (at < total) {   /* give back the unused room; if shrinking fails, the larger block is still good */
        int32_t *idx2 = cr_realloc(idx, ((size_t)at + 1) * sizeof *idx);
        if (idx2) idx = idx2;
        float *sim2 = cr_realloc(sim, ((size_t)at + 1) * sizeof *sim);
        if (sim2) sim = sim2;
    }
    m->base.ops = &knn_ops;
    m->neighbors = K;
    m->shrink = p->knn_shrink;
    m->domain = p->domain;
    m->ptr = m->own_ptr = ptr;
    m->idx = m->own_idx = idx;
    m->sim = m->own_sim = sim;
    *out = &m->base;
    return CR_OK;
oom:
    csr_free(&ui);
    csr_free(&iu);
    cr_free(m);
    cr_free(ptr);
    cr_free(cnt);
    cr_free(idx);
    cr_free(sim);
    return cr_fail(CR_ERR_NOMEM, "out of memory training itemknn (%lld items, %lld neighbours)", (long long)n_items, (long long)K);
}

/* ---- load ---- */

static cr_status knn_check(const knn_model *m, const char *path, int64_t nnz) {
    int64_t n = m->base.n_items;
    const int64_t *ptr = m->ptr;
    if (ptr[0] != 0 || ptr[n] != nnz)
        return cr_fail(CR_ERR_FORMAT, "%s: knn.ptr does not span 0..%lld", path, (long long)nnz);
    for (int64_t i = 0; i < n; i++)
        if (ptr[i + 1] < ptr[i]) return cr_fail(CR_ERR_FORMAT, "%s: knn.ptr decreases at %lld", path, (long long)i);
    /* owner[j] = the last row that listed j, to find a neighbour listed twice (the order check alone lets a
     * repeat with a different similarity through) */
    int32_t *owner = cr_malloc(((size_t)n + 1) * sizeof *owner);
    if (!owner) return cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
    for (int64_t j = 0; j < n; j++) owner[j] = -1;
    cr_status st = CR_OK;
    for (int64_t i = 0; i < n && !st; i++) {
        if (ptr[i + 1] - ptr[i] > m->neighbors * m->base.n_domains) {
            st = cr_fail(CR_ERR_FORMAT, "%s: item %lld has %lld neighbours, more than itemknn.neighbors = %lld per domain", path,
                         (long long)i, (long long)(ptr[i + 1] - ptr[i]), (long long)m->neighbors);
            break;
        }
        for (int64_t k = ptr[i]; k < ptr[i + 1]; k++) {
            int32_t j = m->idx[k];
            float s = m->sim[k];
            if (j < 0 || j >= n || j == i) {
                st = cr_fail(CR_ERR_FORMAT, "%s: knn.idx[%lld] = %d is not a neighbour of item %lld (items 0..%lld, not itself)",
                             path, (long long)k, j, (long long)i, (long long)n - 1);
                break;
            }
            if (owner[j] == (int32_t)i) {
                st = cr_fail(CR_ERR_FORMAT, "%s: item %lld lists neighbour %d twice", path, (long long)i, j);
                break;
            }
            owner[j] = (int32_t)i;
            if (!(s > 0) || s > FLT_MAX) {
                st = cr_fail(CR_ERR_FORMAT, "%s: knn.sim[%lld] = %g is not a finite positive similarity", path, (long long)k, s);
                break;
            }
            if (k > ptr[i] && !nb_better((nb){m->sim[k - 1], m->idx[k - 1]}, (nb){s, j})) {
                st = cr_fail(CR_ERR_FORMAT, "%s: neighbours of item %lld are not in (similarity desc, item asc) order at %lld",
                             path, (long long)i, (long long)k);
                break;
            }
        }
    }
    cr_free(owner);
    return st;
}

static cr_status knn_load(cr_model **out, cr_file *f, const char *path, const cr_model *base) {
    knn_model *m = cr_calloc(1, sizeof *m);
    if (!m) {
        cr_file_close(f);
        return cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
    }
    m->base = *base;
    m->base.ops = &knn_ops;
    m->file = f;
    int64_t domain, nnz, nsim;
    const void *a[3];
    cr_status st;
    if ((st = cr_file_get_i64(f, "itemknn.neighbors", &m->neighbors)) || (st = cr_file_get_f64(f, "itemknn.shrink", &m->shrink)) ||
        (st = cr_file_get_i64(f, "itemknn.domain", &domain)) ||
        (st = cr_file_get_array(f, "knn.ptr", CR_DT_I64, base->n_items + 1, &a[0], NULL)) ||
        (st = cr_file_get_array(f, "knn.idx", CR_DT_I32, -1, &a[1], &nnz)) ||
        (st = cr_file_get_array(f, "knn.sim", CR_DT_F32, -1, &a[2], &nsim)))
        goto fail;
    if (m->neighbors < 1 || m->neighbors > INT32_MAX) {
        st = cr_fail(CR_ERR_FORMAT, "%s: itemknn.neighbors = %lld is outside 1..%d", path, (long long)m->neighbors, INT32_MAX);
        goto fail;
    }
    if (!isfinite(m->shrink) || m->shrink < 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: itemknn.shrink = %g is not a finite number >= 0", path, m->shrink);
        goto fail;
    }
    if (domain < -1 || domain >= base->n_domains) {
        st = cr_fail(CR_ERR_FORMAT, "%s: itemknn.domain = %lld is outside -1..%lld", path, (long long)domain,
                     (long long)base->n_domains - 1);
        goto fail;
    }
    if (nsim != nnz) {
        st = cr_fail(CR_ERR_FORMAT, "%s: knn.idx has %lld entries but knn.sim has %lld", path, (long long)nnz, (long long)nsim);
        goto fail;
    }
    m->domain = (int32_t)domain;
    m->ptr = a[0];
    m->idx = a[1];
    m->sim = a[2];
    if ((st = knn_check(m, path, nnz))) goto fail;
    *out = &m->base;
    return CR_OK;
fail:
    knn_free(&m->base);
    return st;
}

const cr_model_type cr_itemknn_type = {"itemknn", knn_train, knn_load};

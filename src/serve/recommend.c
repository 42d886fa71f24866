/* recommend.c — the recommender (serve.h): a model with its dataset, the items of each domain, the top-K index
 * over a dot-product model's item vectors, and the cosine index behind similar items.
 *
 * Main type: cr_rec. Recommendations go through one of two paths with the same ranking order:
 *   index path  user vectors (cr_model_user_vectors) -> cr_index_search(_batch) on the index of the asked
 *               domain's items, the seen items as exclusion lists (an index per domain scores only that domain's
 *               items, where one index with a domain filter would score them all);
 *   score path  cr_model_score over the domain's items -> a bounded heap (cr_topk), seen items skipped.
 * Queries are answered in chunks of rows, each with its own scratch, so a call allocates O(chunk) memory
 * whatever n is, and concurrent calls share nothing.
 *
 * Invariants: dom_ptr/dom_items list every item once, by domain, ascending within a domain, so a domain index's
 * row order is the items' index order and its ties break as the global order does; dom_vecs holds the item
 * vectors in dom_items order; unit holds them scaled to unit length (zero vectors stay zero and are marked in
 * no_vector). */
#include "crossrec/serve.h"

#include "crossrec/eval.h"
#include "crossrec/index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cr_rec {
    cr_model *m;
    cr_dataset *d;
    int64_t n_users, n_items, n_domains, dim;
    int64_t *dom_ptr;           /* (n_domains + 1) */
    int32_t *dom_items;         /* (n_items) items by domain, ascending index within one */
    cr_index **dom_ix;          /* (n_domains) index t over dom_vecs rows dom_ptr[t]..dom_ptr[t+1]; NULL: the score path */
    float *dom_vecs;            /* (n_items, dim) */
    cr_index *cos;              /* over unit; NULL when the model has no item vectors */
    float *unit;                /* (n_items, dim) */
    uint64_t *no_vector;        /* bitset over items: a zero vector */
};

cr_rec_params cr_rec_default_params(void) { return (cr_rec_params){.data_path = NULL, .use_index = 1}; }

cr_rec_options cr_rec_default_options(void) { return (cr_rec_options){.domain = 0, .k = 10, .exclude_seen = 0, .threads = 0}; }

const cr_model *cr_rec_model(const cr_rec *r) { return r->m; }
const cr_dataset *cr_rec_dataset(const cr_rec *r) { return r->d; }
int cr_rec_uses_index(const cr_rec *r) { return r->dom_ix != NULL; }

const char *cr_rec_similar_method(const cr_rec *r) { return r->cos ? "cosine" : r->m->ops->neighbors ? "neighbors" : NULL; }

const int32_t *cr_rec_domain_items(const cr_rec *r, int32_t t, int64_t *n) {
    CR_ASSERT(t >= 0 && t < r->n_domains);
    *n = r->dom_ptr[t + 1] - r->dom_ptr[t];
    return r->dom_items + r->dom_ptr[t];
}

void cr_rec_free(cr_rec *r) {
    if (!r) return;
    for (int64_t t = 0; r->dom_ix && t < r->n_domains; t++) cr_index_free(r->dom_ix[t]);
    cr_free(r->dom_ix);
    cr_free(r->dom_vecs);
    cr_index_free(r->cos);
    cr_model_free(r->m);
    cr_dataset_free(r->d);
    cr_free(r->dom_ptr);
    cr_free(r->dom_items);
    cr_free(r->unit);
    cr_free(r->no_vector);
    cr_free(r);
}

/* ---- construction -------------------------------------------------------------------------------------- */

static cr_status nomem(const char *what) { return cr_fail(CR_ERR_NOMEM, "out of memory (%s)", what); }

/* Items by domain (a counting sort keeps each domain's items ascending). */
static cr_status build_domains(cr_rec *r, const int32_t *item_domain) {
    r->dom_ptr = cr_calloc((size_t)r->n_domains + 1, sizeof *r->dom_ptr);
    r->dom_items = cr_malloc(((size_t)r->n_items + 1) * sizeof *r->dom_items);
    if (!r->dom_ptr || !r->dom_items) return nomem("items by domain");
    for (int64_t i = 0; i < r->n_items; i++) r->dom_ptr[item_domain[i] + 1]++;
    for (int64_t t = 0; t < r->n_domains; t++) r->dom_ptr[t + 1] += r->dom_ptr[t];
    int64_t *fill = cr_malloc(((size_t)r->n_domains + 1) * sizeof *fill);
    if (!fill) return nomem("items by domain");
    memcpy(fill, r->dom_ptr, (size_t)r->n_domains * sizeof *fill);
    for (int64_t i = 0; i < r->n_items; i++) r->dom_items[fill[item_domain[i]]++] = (int32_t)i;
    cr_free(fill);
    return CR_OK;
}

/* The item vectors regrouped by domain, and an index over each domain's rows. */
static cr_status build_domain_indexes(cr_rec *r, const float *Y) {
    const int64_t dim = r->dim;
    r->dom_vecs = cr_malloc(((size_t)(r->n_items * dim) + 1) * sizeof *r->dom_vecs);
    r->dom_ix = cr_calloc((size_t)r->n_domains + 1, sizeof *r->dom_ix);
    if (!r->dom_vecs || !r->dom_ix) return nomem("item vectors by domain");
    for (int64_t x = 0; x < r->n_items; x++) memcpy(r->dom_vecs + x * dim, Y + (int64_t)r->dom_items[x] * dim, (size_t)dim * sizeof *Y);
    cr_index_params ip = cr_index_default_params();
    ip.borrow = 1;
    for (int64_t t = 0; t < r->n_domains; t++) {
        cr_status st = cr_index_init(&r->dom_ix[t], r->dom_vecs + r->dom_ptr[t] * dim, r->dom_ptr[t + 1] - r->dom_ptr[t], dim, &ip);
        if (st) return st;
    }
    return CR_OK;
}

/* The unit-length copy of the item vectors and the cosine index over it. */
static cr_status build_cosine(cr_rec *r, const float *Y, const int32_t *item_domain) {
    const int64_t n = r->n_items, dim = r->dim;
    r->unit = cr_malloc(((size_t)(n * dim) + 1) * sizeof *r->unit);
    r->no_vector = cr_calloc((size_t)(n >> 6) + 1, sizeof *r->no_vector);
    if (!r->unit || !r->no_vector) return nomem("unit item vectors");
    for (int64_t i = 0; i < n; i++) {
        const float *y = Y + i * dim;
        float *u = r->unit + i * dim;
        double ss = 0;
        for (int64_t j = 0; j < dim; j++) ss += (double)y[j] * y[j];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int64_t j = 0; j < dim; j++) u[j] = (float)(y[j] * inv);
        if (!(ss > 0)) r->no_vector[i >> 6] |= (uint64_t)1 << (i & 63);
    }
    cr_index_params ip = cr_index_default_params();
    ip.borrow = 1;
    ip.item_domain = item_domain;
    return cr_index_init(&r->cos, r->unit, n, dim, &ip);
}

cr_status cr_rec_new(cr_rec **out, cr_model *m, cr_dataset *d, const cr_rec_params *p) {
    *out = NULL;
    const cr_interactions *I = cr_dataset_inter(d);
    cr_status st = CR_OK;
    if (m->n_users != I->n_users || m->n_items != I->n_items || m->n_domains != I->n_domains) {
        st = cr_fail(CR_ERR_ARG, "the model has %lld users, %lld items and %lld domains; the dataset %lld, %lld and %lld",
                     (long long)m->n_users, (long long)m->n_items, (long long)m->n_domains, (long long)I->n_users,
                     (long long)I->n_items, (long long)I->n_domains);
        cr_model_free(m);
        cr_dataset_free(d);
        return st;
    }
    uint32_t crc = cr_dataset_file_crc(d);
    if (m->dataset_crc && crc && m->dataset_crc != crc) {
        st = cr_fail(CR_ERR_FORMAT, "the %s model was trained on another dataset (checksum %08x; %s has %08x)", cr_model_name(m),
                     (unsigned)m->dataset_crc, cr_dataset_path(d) ? cr_dataset_path(d) : "the dataset", (unsigned)crc);
        cr_set_hint("give the .crd the model was trained on (--data)");
        cr_model_free(m);
        cr_dataset_free(d);
        return st;
    }
    cr_rec *r = cr_calloc(1, sizeof *r);
    if (!r) {
        cr_model_free(m);
        cr_dataset_free(d);
        return nomem("recommender");
    }
    r->m = m, r->d = d;
    r->n_users = I->n_users, r->n_items = I->n_items, r->n_domains = I->n_domains;
    const float *Y = cr_model_item_vectors(m, &r->dim);
    if ((st = build_domains(r, I->item_domain))) goto fail;
    if (Y && (st = build_cosine(r, Y, I->item_domain))) goto fail;
    if (Y && p->use_index && (st = build_domain_indexes(r, Y))) goto fail;
    *out = r;
    return CR_OK;
fail:
    cr_rec_free(r);
    return st;
}

cr_status cr_rec_open(cr_rec **out, const char *model_path, const cr_rec_params *p) {
    *out = NULL;
    cr_model *m;
    cr_dataset *d = NULL;
    cr_status st = cr_model_load(&m, model_path);
    if (st) return st;
    if (p->data_path) {
        st = cr_dataset_load(&d, p->data_path);
    } else if (m->dataset_path) {
        const char *slash = strrchr(m->dataset_path, '/');
        st = cr_dataset_load_ref(&d, m->dataset_path, slash ? slash + 1 : m->dataset_path, m->dataset_crc, model_path);
        if (st && st != CR_ERR_NOMEM) cr_set_hint("give the dataset the model was trained on with --data FILE.crd");
    } else {
        st = cr_fail(CR_ERR_ARG, "%s does not record the dataset it was trained on", model_path);
        cr_set_hint("give it with --data FILE.crd (models trained before crossrec recorded it, or on a dataset not read from a file)");
    }
    if (st) {
        cr_model_free(m);
        return st;
    }
    st = cr_rec_new(out, m, d, p);
    if (st) cr_errmsg_prefix("%s", model_path);
    return st;
}

/* ---- recommend ----------------------------------------------------------------------------------------- */

/* Scratch of one chunk of rows: the score request, the exclusion lists, and the scores or vectors. */
typedef struct {
    int32_t *users;             /* (chunk) */
    int64_t *hist_ptr;          /* (chunk + 1) */
    int32_t *hist;              /* (cap_hist) */
    int64_t cap_hist;
    int64_t *ex_ptr;            /* (chunk + 1) */
    int32_t *ex;                /* (cap_ex) each row's seen items of the target domain, ascending (as item indices,
                                   or for the index path as positions in the domain's item list) */
    int64_t cap_ex;
    float *buf;                 /* (chunk, dim) user vectors, or (chunk, n_cand) scores */
    uint8_t *can;               /* (chunk) */
    cr_topk heap;               /* score path */
} chunk_ws;

static void chunk_ws_free(chunk_ws *w) {
    cr_free(w->users);
    cr_free(w->hist_ptr);
    cr_free(w->hist);
    cr_free(w->ex_ptr);
    cr_free(w->ex);
    cr_free(w->buf);
    cr_free(w->can);
    cr_topk_free(&w->heap);
}

static cr_status chunk_ws_init(chunk_ws *w, int64_t chunk, int64_t width, int64_t k, int heap) {
    memset(w, 0, sizeof *w);
    w->users = cr_malloc((size_t)chunk * sizeof *w->users);
    w->hist_ptr = cr_malloc(((size_t)chunk + 1) * sizeof *w->hist_ptr);
    w->ex_ptr = cr_malloc(((size_t)chunk + 1) * sizeof *w->ex_ptr);
    w->buf = cr_malloc(((size_t)(chunk * width) + 1) * sizeof *w->buf);
    w->can = cr_malloc((size_t)chunk);
    if (!w->users || !w->hist_ptr || !w->ex_ptr || !w->buf || !w->can) {
        chunk_ws_free(w);
        return nomem("recommendation scratch");
    }
    cr_status st = heap ? cr_topk_init(&w->heap, k) : CR_OK;
    if (st) chunk_ws_free(w);
    return st;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Fills the request rows of queries q[0..n): users, histories and (exclude_seen) the seen items of the domain. */
static cr_status chunk_fill(const cr_rec *r, chunk_ws *w, const cr_rec_query *q, int64_t n, const cr_rec_options *o) {
    const cr_interactions *I = cr_dataset_inter(r->d);
    int64_t nh = 0, ne = 0;
    w->hist_ptr[0] = w->ex_ptr[0] = 0;
    for (int64_t j = 0; j < n; j++) {
        const int32_t *h = q[j].user >= 0 ? I->user_items + I->user_ptr[q[j].user] : q[j].history;
        int64_t len = q[j].user >= 0 ? I->user_ptr[q[j].user + 1] - I->user_ptr[q[j].user] : q[j].n_history;
        cr_status st = cr_grow((void **)&w->hist, &w->cap_hist, nh + len, sizeof *w->hist);
        if (st) return st;
        if (len) memcpy(w->hist + nh, h, (size_t)len * sizeof *h);
        if (o->exclude_seen) {
            if ((st = cr_grow((void **)&w->ex, &w->cap_ex, ne + len, sizeof *w->ex))) return st;
            int64_t e0 = ne;
            for (int64_t k = 0; k < len; k++)
                if (I->item_domain[h[k]] == o->domain) w->ex[ne++] = h[k];
            qsort(w->ex + e0, (size_t)(ne - e0), sizeof *w->ex, cmp_i32);
            if (r->dom_ix) {
                /* positions in the domain's ascending item list: still ascending */
                int64_t n_dom;
                const int32_t *dom = cr_rec_domain_items(r, o->domain, &n_dom);
                for (int64_t e = e0; e < ne; e++)
                    w->ex[e] = (int32_t)((const int32_t *)bsearch(&w->ex[e], dom, (size_t)n_dom, sizeof *dom, cmp_i32) - dom);
            }
        }
        w->users[j] = q[j].user;
        nh += len;
        w->hist_ptr[j + 1] = nh;
        w->ex_ptr[j + 1] = ne;
    }
    return CR_OK;
}

/* Score path for rows [0, n) of the chunk: scores of the domain's items, then a heap per row. */
static cr_status chunk_by_score(const cr_rec *r, chunk_ws *w, int64_t n, const cr_rec_options *o, int32_t *items,
                                float *scores, int64_t *n_found) {
    int64_t n_cand;
    const int32_t *cand = cr_rec_domain_items(r, o->domain, &n_cand);
    cr_score_request req = {.n_rows = n, .users = w->users, .hist_ptr = w->hist_ptr, .hist_items = w->hist,
                            .domain = o->domain, .n_cand = n_cand, .cand = cand};
    cr_status st = cr_model_score(r->m, &req, w->buf, w->can);
    if (st) return st;
    for (int64_t j = 0; j < n; j++) {
        if (!w->can[j]) {
            n_found[j] = -1;
            continue;
        }
        const float *s = w->buf + j * n_cand;
        /* w->ex stays NULL until some row has a seen item: no offset may be added to it then */
        const int32_t *ex = w->ex ? w->ex + w->ex_ptr[j] : NULL, *ex_end = w->ex ? w->ex + w->ex_ptr[j + 1] : NULL;
        cr_topk_reset(&w->heap);
        /* candidates and seen items are both ascending: one merge skips the seen ones */
        for (int64_t c = 0; c < n_cand; c++) {
            while (ex < ex_end && *ex < cand[c]) ex++;
            if (ex < ex_end && *ex == cand[c]) continue;
            cr_topk_push(&w->heap, s[c], cand[c]);
        }
        n_found[j] = cr_topk_sorted(&w->heap, items + j * o->k, scores + j * o->k);
    }
    return CR_OK;
}

/* Index path for rows [0, n) of the chunk: user vectors, then the domain's index; positions back to items. */
static cr_status chunk_by_index(const cr_rec *r, chunk_ws *w, int64_t n, const cr_rec_options *o, int32_t *items,
                                float *scores, int64_t *n_found) {
    cr_score_request req = {.n_rows = n, .users = w->users, .hist_ptr = w->hist_ptr, .hist_items = w->hist,
                            .domain = o->domain};
    cr_status st = cr_model_user_vectors(r->m, &req, w->buf, w->can);
    if (st) return st;
    cr_index_search_params sp = cr_index_search_default_params();
    sp.k = o->k;
    sp.threads = o->threads;
    const cr_index *ix = r->dom_ix[o->domain];
    if (n == 1) st = cr_index_search(ix, w->buf, w->ex, w->ex_ptr[1], &sp, items, scores, n_found);
    else st = cr_index_search_batch(ix, w->buf, n, w->ex_ptr, w->ex, &sp, items, scores, n_found);
    if (st) return st;
    int64_t n_dom;
    const int32_t *dom = cr_rec_domain_items(r, o->domain, &n_dom);
    for (int64_t j = 0; j < n; j++) {
        if (!w->can[j]) n_found[j] = -1;
        for (int64_t x = 0; x < n_found[j]; x++) items[j * o->k + x] = dom[items[j * o->k + x]];
    }
    return CR_OK;
}

static cr_status check_queries(const cr_rec *r, const cr_rec_query *q, int64_t n, const cr_rec_options *o) {
    if (n < 0) return cr_fail(CR_ERR_ARG, "recommend: negative number of queries");
    if (o->domain < 0 || o->domain >= r->n_domains)
        return cr_fail(CR_ERR_ARG, "recommend: domain %d is outside 0..%lld", o->domain, (long long)r->n_domains - 1);
    if (o->k < 1 || o->k > CR_INDEX_MAX_K)
        return cr_fail(CR_ERR_ARG, "recommend: k = %lld is outside 1..%d", (long long)o->k, CR_INDEX_MAX_K);
    if (o->threads < 0) return cr_fail(CR_ERR_ARG, "recommend: threads must be >= 0");
    for (int64_t j = 0; j < n; j++) {
        if (q[j].user < -1 || q[j].user >= r->n_users)
            return cr_fail(CR_ERR_ARG, "recommend: query %lld has user %d, outside -1..%lld", (long long)j, q[j].user,
                           (long long)r->n_users - 1);
        if (q[j].user >= 0) continue;
        if (q[j].n_history < 0 || (q[j].n_history > 0 && !q[j].history))
            return cr_fail(CR_ERR_ARG, "recommend: query %lld has a bad history", (long long)j);
        for (int64_t k = 0; k < q[j].n_history; k++)
            if (q[j].history[k] < 0 || q[j].history[k] >= r->n_items)
                return cr_fail(CR_ERR_ARG, "recommend: query %lld has history item %d, outside 0..%lld", (long long)j,
                               q[j].history[k], (long long)r->n_items - 1);
    }
    return CR_OK;
}

/* Rows per chunk: user vectors are small; score rows hold every candidate's score, kept near 16 MB. */
#define CHUNK_ROWS 256
#define CHUNK_SCORES ((int64_t)1 << 22)

cr_status cr_rec_recommend(const cr_rec *r, const cr_rec_query *q, int64_t n, const cr_rec_options *o, int32_t *items,
                           float *scores, int64_t *n_found) {
    cr_status st = check_queries(r, q, n, o);
    if (st || n == 0) return st;
    const int64_t k = o->k;
    for (int64_t x = 0; x < n * k; x++) items[x] = -1, scores[x] = NAN;
    int64_t n_cand = r->dom_ptr[o->domain + 1] - r->dom_ptr[o->domain];
    int64_t chunk = r->dom_ix ? CHUNK_ROWS : CHUNK_SCORES / (n_cand + 1);
    chunk = chunk < 1 ? 1 : chunk > CHUNK_ROWS ? CHUNK_ROWS : chunk;
    if (chunk > n) chunk = n;
    chunk_ws w;
    if ((st = chunk_ws_init(&w, chunk, r->dom_ix ? r->dim : n_cand, k, !r->dom_ix))) return st;
    for (int64_t j0 = 0; j0 < n && !st; j0 += chunk) {
        const int64_t m = n - j0 < chunk ? n - j0 : chunk;
        if ((st = chunk_fill(r, &w, q + j0, m, o))) break;
        if (r->dom_ix) st = chunk_by_index(r, &w, m, o, items + j0 * k, scores + j0 * k, n_found + j0);
        else st = chunk_by_score(r, &w, m, o, items + j0 * k, scores + j0 * k, n_found + j0);
    }
    for (int64_t j = 0; j < n && !st; j++)
        for (int64_t x = n_found[j] < 0 ? 0 : n_found[j]; x < k; x++) items[j * k + x] = -1, scores[j * k + x] = NAN;
    chunk_ws_free(&w);
    return st;
}

/* ---- similar ------------------------------------------------------------------------------------------- */

cr_status cr_rec_similar(const cr_rec *r, int32_t item, int32_t domain, int64_t k, int32_t *items, float *scores,
                         int64_t *n_found) {
    *n_found = 0;
    if (item < 0 || item >= r->n_items)
        return cr_fail(CR_ERR_ARG, "similar: item %d is outside 0..%lld", item, (long long)r->n_items - 1);
    if (domain < -1 || domain >= r->n_domains)
        return cr_fail(CR_ERR_ARG, "similar: domain %d is outside -1..%lld", domain, (long long)r->n_domains - 1);
    if (k < 1 || k > CR_INDEX_MAX_K) return cr_fail(CR_ERR_ARG, "similar: k = %lld is outside 1..%d", (long long)k, CR_INDEX_MAX_K);
    const char *id = cr_dataset_item_id(r->d, item), *model = cr_model_name(r->m);
    if (r->cos) {
        if (r->no_vector[item >> 6] >> (item & 63) & 1) {
            cr_status st = cr_fail(CR_ERR_NOTFOUND, "item '%s' has no vector in this %s model", id, model);
            cr_set_hint("%s learned item vectors for the items of its training domain only", model);
            return st;
        }
        cr_index_search_params sp = cr_index_search_default_params();
        sp.k = k;
        sp.domain = domain;
        sp.deny = r->no_vector;
        sp.threads = 1;
        return cr_index_search(r->cos, r->unit + (int64_t)item * r->dim, &item, 1, &sp, items, scores, n_found);
    }
    const int32_t *nb;
    const float *sim;
    int64_t len = cr_model_item_neighbors(r->m, item, &nb, &sim);
    if (len < 0) {
        cr_status st = cr_fail(CR_ERR_ARG, "a %s model has neither item vectors nor neighbour lists to find similar items", model);
        cr_set_hint("use a model with item vectors (bpr, als, cmf, emcdr, ptupcdr, tower) or itemknn");
        return st;
    }
    const int32_t *item_domain = cr_dataset_inter(r->d)->item_domain;
    int64_t found = 0;
    /* the list is already in ranking order (sim descending, index ascending) */
    for (int64_t e = 0; e < len && found < k; e++)
        if (domain < 0 || item_domain[nb[e]] == domain) items[found] = nb[e], scores[found++] = sim[e];
    for (int64_t x = found; x < k; x++) items[x] = -1, scores[x] = NAN;
    *n_found = found;
    return CR_OK;
}

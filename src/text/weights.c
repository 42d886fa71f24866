/* weights.c — corpus statistics (document frequency per bucket), TF-IDF and BM25 weights, and the item x
 * bucket matrix of a dataset.
 *
 * cr_text_item_matrix works in three steps: bags of all items (threads take contiguous item ranges, each
 * with its own workspace, and keep their rows in item order), the rows copied into one CSR in item order
 * and document frequencies counted from it, then each row weighed on its own. Every number therefore
 * comes from the same operations in the same order whatever the thread count. */
#include "text_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

cr_status cr_text_stats_init(cr_text_stats *st, int64_t n_buckets) {
    memset(st, 0, sizeof *st);
    if (n_buckets < 1 || n_buckets > CR_TEXT_MAX_BUCKETS)
        return cr_fail(CR_ERR_ARG, "text stats: n_buckets %lld is not in 1..2^28", (long long)n_buckets);
    st->df = cr_calloc((size_t)n_buckets, sizeof *st->df);
    if (!st->df) return cr_fail(CR_ERR_NOMEM, "out of memory (document frequencies of %lld buckets)", (long long)n_buckets);
    st->n_buckets = n_buckets;
    return CR_OK;
}

static cr_status check_buckets(const cr_text_stats *st, const cr_text_bag *bag) {
    for (int64_t i = 0; i < bag->n; i++)
        if (bag->bucket[i] < 0 || bag->bucket[i] >= st->n_buckets)
            return cr_fail(CR_ERR_ARG, "bucket %d is outside the %lld buckets of the text statistics (another hashing?)",
                           (int)bag->bucket[i], (long long)st->n_buckets);
    return CR_OK;
}

cr_status cr_text_stats_add(cr_text_stats *st, const cr_text_bag *bag) {
    cr_status s = check_buckets(st, bag);
    if (s) return s;
    if (st->n_docs >= INT32_MAX) return cr_fail(CR_ERR_LIMIT, "text stats: more than %d documents", INT32_MAX - 1);
    for (int64_t i = 0; i < bag->n; i++) st->df[bag->bucket[i]]++;
    st->n_docs++;
    st->n_tokens += bag->n_tokens;
    st->n_empty += bag->n_tokens == 0;
    st->n_replaced += bag->n_replaced;
    return CR_OK;
}

void cr_text_stats_free(cr_text_stats *st) {
    if (!st) return;
    cr_free(st->df);
    memset(st, 0, sizeof *st);
}

cr_text_weight_params cr_text_default_weight_params(void) {
    cr_text_weight_params p = {CR_TEXT_W_TFIDF, 1.2, 0.75, 1};
    return p;
}

const char *cr_text_check_weight_params(const cr_text_weight_params *p) {
    if (p->weighting != CR_TEXT_W_COUNT && p->weighting != CR_TEXT_W_TFIDF && p->weighting != CR_TEXT_W_BM25)
        return "weighting must be CR_TEXT_W_COUNT, CR_TEXT_W_TFIDF or CR_TEXT_W_BM25";
    if (!(p->k1 >= 0 && p->k1 <= 1e6)) return "k1 must be in 0..1e6";
    if (!(p->b >= 0 && p->b <= 1)) return "b must be in 0..1";
    if (p->l2_normalize != 0 && p->l2_normalize != 1) return "l2_normalize must be 0 or 1";
    return NULL;
}

double cr_text_idf(const cr_text_weight_params *p, int64_t n_docs, int64_t df) {
    double N = (double)n_docs, f = (double)df;
    if (p->weighting == CR_TEXT_W_TFIDF) return log((1 + N) / (1 + f)) + 1;
    if (p->weighting == CR_TEXT_W_BM25) return log(1 + (N - f + 0.5) / (f + 0.5));
    return 1;
}

void cr_text_weigh_row(const cr_text_stats *st, const cr_text_weight_params *p, const double *idf_by_df,
                       const int32_t *bucket, const int32_t *count, int64_t n, int64_t n_tokens, float *w) {
    double K = p->k1;   /* BM25: k1 * (1 - b + b * len / avg_len) */
    if (st->n_docs > 0 && st->n_tokens > 0)
        K *= 1 - p->b + p->b * (double)n_tokens / ((double)st->n_tokens / (double)st->n_docs);
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t df = st->df[bucket[i]];
        double tf = count[i], idf = idf_by_df ? idf_by_df[df] : cr_text_idf(p, st->n_docs, df);
        double v = p->weighting == CR_TEXT_W_BM25 ? idf * tf * (p->k1 + 1) / (tf + K) : tf * idf;
        w[i] = (float)v;
        ss += v * v;
    }
    if (p->l2_normalize && ss > 0) {
        double inv = 1 / sqrt(ss);
        for (int64_t i = 0; i < n; i++) w[i] = (float)(w[i] * inv);
    }
}

cr_status cr_text_weigh(const cr_text_stats *st, const cr_text_weight_params *p, const cr_text_bag *bag, float *w) {
    const char *why = cr_text_check_weight_params(p);
    if (why) return cr_fail(CR_ERR_ARG, "text weights: %s", why);
    cr_status s = check_buckets(st, bag);
    if (s) return s;
    cr_text_weigh_row(st, p, NULL, bag->bucket, bag->count, bag->n, bag->n_tokens, w);
    return CR_OK;
}

void cr_text_csr_free(cr_text_csr *m) {
    if (!m) return;
    cr_free(m->row_ptr), cr_free(m->col), cr_free(m->val);
    memset(m, 0, sizeof *m);
}

cr_text_matrix_params cr_text_default_matrix_params(void) {
    cr_text_matrix_params p = {CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT, cr_text_default_weight_params(), 0};
    return p;
}

/* One thread's share of the items: the rows of items [lo, hi) back to back. */
typedef struct {
    int64_t lo, hi;
    int32_t *bucket, *count;    /* (n) */
    int64_t n, cap_bucket, cap_count;
    int64_t n_replaced;
    cr_status st;
    char msg[256];              /* the thread's error message, re-raised by the calling thread */
} part;

static cr_status bag_items(const cr_dataset *d, const cr_text_hashing *h, int fields, part *pt, int64_t *row_len,
                           int64_t *n_tokens) {
    cr_text_work *w = NULL;
    cr_text_bag bag = {0};
    cr_status st = cr_text_work_new(&w);
    for (int64_t i = pt->lo; i < pt->hi && !st; i++) {
        const char *title = cr_dataset_item_title(d, (int32_t)i), *text = cr_dataset_item_text(d, (int32_t)i);
        w->n_ids = 0;
        if (fields & CR_TEXT_FIELD_TITLE) st = cr_text_collect_ids(w, h, title, (int64_t)strlen(title), &pt->n_replaced);
        if (!st && (fields & CR_TEXT_FIELD_TEXT))
            st = cr_text_collect_ids(w, h, text, (int64_t)strlen(text), &pt->n_replaced);
        if (st) {
            cr_errmsg_prefix("item '%s'", cr_dataset_item_id(d, (int32_t)i));
            break;
        }
        if ((st = cr_text_ids_to_bag(w, h, &bag)) ||
            (st = cr_grow((void **)&pt->bucket, &pt->cap_bucket, pt->n + bag.n, sizeof *pt->bucket)) ||
            (st = cr_grow((void **)&pt->count, &pt->cap_count, pt->n + bag.n, sizeof *pt->count)))
            break;
        memcpy(pt->bucket + pt->n, bag.bucket, (size_t)bag.n * sizeof *bag.bucket);
        memcpy(pt->count + pt->n, bag.count, (size_t)bag.n * sizeof *bag.count);
        pt->n += bag.n;
        row_len[i] = bag.n;
        n_tokens[i] = bag.n_tokens;
    }
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
    return st;
}

static int n_threads(int want, int64_t n_items) {
#ifdef _OPENMP
    int64_t t = want > 0 ? want : omp_get_max_threads();
#else
    int64_t t = 1;
    (void)want;
#endif
    if (t > n_items) t = n_items;
    return t < 1 ? 1 : (int)t;
}

cr_status cr_text_item_matrix(const cr_dataset *d, const cr_text_hashing *h, const cr_text_matrix_params *p,
                              cr_text_csr *m, cr_text_stats *stats) {
    cr_text_matrix_params defaults = cr_text_default_matrix_params();
    if (!p) p = &defaults;
    memset(m, 0, sizeof *m);
    if (stats) memset(stats, 0, sizeof *stats);
    const char *why = cr_text_check_hashing(h);
    if (why) return cr_fail(CR_ERR_ARG, "text hashing: %s", why);
    if ((why = cr_text_check_weight_params(&p->weight))) return cr_fail(CR_ERR_ARG, "text weights: %s", why);
    if (p->fields < 1 || p->fields > (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT))
        return cr_fail(CR_ERR_ARG, "text matrix: fields must be CR_TEXT_FIELD_TITLE, CR_TEXT_FIELD_TEXT or both");
    if (p->threads < 0) return cr_fail(CR_ERR_ARG, "text matrix: threads must be >= 0");

    int64_t n = cr_dataset_inter(d)->n_items;
    int nt = n_threads(p->threads, n);
    cr_text_stats s = {0};
    int64_t *row_len = cr_calloc((size_t)n + 1, sizeof *row_len), *n_tokens = cr_calloc((size_t)n + 1, sizeof *n_tokens);
    int32_t *count = NULL;
    double *idf = NULL;
    part *parts = cr_calloc((size_t)nt, sizeof *parts);
    cr_status st = CR_OK;
    if (!row_len || !n_tokens || !parts) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (text matrix of %lld items)", (long long)n);
        goto done;
    }
    if ((st = cr_text_stats_init(&s, h->n_buckets))) goto done;

    for (int t = 0; t < nt; t++) parts[t].lo = n * t / nt, parts[t].hi = n * (t + 1) / nt;
    CR_TEXT_OMP(omp parallel for num_threads(nt) schedule(static, 1))
    for (int t = 0; t < nt; t++) {
        parts[t].st = bag_items(d, h, p->fields, &parts[t], row_len, n_tokens);
        if (parts[t].st) snprintf(parts[t].msg, sizeof parts[t].msg, "%s", cr_errmsg());
    }
    for (int t = 0; t < nt; t++) {
        if (parts[t].st) {
            st = cr_fail(parts[t].st, "%s", parts[t].msg);
            goto done;
        }
        s.n_replaced += parts[t].n_replaced;
    }

    /* Rows in item order; document frequencies. */
    int64_t nnz = 0;
    for (int t = 0; t < nt; t++) nnz += parts[t].n;
    m->row_ptr = cr_malloc(((size_t)n + 1) * sizeof *m->row_ptr);
    m->col = cr_malloc((size_t)(nnz ? nnz : 1) * sizeof *m->col);
    m->val = cr_malloc((size_t)(nnz ? nnz : 1) * sizeof *m->val);
    count = cr_malloc((size_t)(nnz ? nnz : 1) * sizeof *count);
    if (!m->row_ptr || !m->col || !m->val || !count) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (text matrix of %lld items, %lld entries)", (long long)n, (long long)nnz);
        goto done;
    }
    m->row_ptr[0] = 0;
    for (int64_t i = 0; i < n; i++) m->row_ptr[i + 1] = m->row_ptr[i] + row_len[i];
    int64_t at = 0;
    for (int t = 0; t < nt; t++) {
        memcpy(m->col + at, parts[t].bucket, (size_t)parts[t].n * sizeof *m->col);
        memcpy(count + at, parts[t].count, (size_t)parts[t].n * sizeof *count);
        at += parts[t].n;
    }
    for (int64_t k = 0; k < nnz; k++) s.df[m->col[k]]++;
    for (int64_t i = 0; i < n; i++) s.n_tokens += n_tokens[i], s.n_empty += n_tokens[i] == 0;
    s.n_docs = n;

    /* idf depends on df alone, so it is computed once per df value, with the expression cr_text_weigh uses. */
    if (!(idf = cr_malloc(((size_t)n + 1) * sizeof *idf))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (idf table of %lld entries)", (long long)n + 1);
        goto done;
    }
    for (int64_t f = 0; f <= n; f++) idf[f] = cr_text_idf(&p->weight, n, f);
    CR_TEXT_OMP(omp parallel for num_threads(nt) schedule(static, 256))
    for (int64_t i = 0; i < n; i++) {
        int64_t a = m->row_ptr[i];
        cr_text_weigh_row(&s, &p->weight, idf, m->col + a, count + a, m->row_ptr[i + 1] - a, n_tokens[i], m->val + a);
    }
    m->n_rows = n, m->n_cols = h->n_buckets, m->nnz = nnz;

done:
    for (int t = 0; parts && t < nt; t++) cr_free(parts[t].bucket), cr_free(parts[t].count);
    cr_free(parts), cr_free(row_len), cr_free(n_tokens), cr_free(count), cr_free(idf);
    if (st) {
        cr_text_csr_free(m);
        cr_text_stats_free(&s);
    } else if (stats) {
        *stats = s;
    } else {
        cr_text_stats_free(&s);
    }
    return st;
}

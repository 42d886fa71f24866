/* model.c — the model registry, training dispatch with parameter checks, the checked scoring entry point, and
 * the generic part of .crm files (save, load with dispatch by the "model" key).
 *
 * .crm version 1, generic metadata: model (type name), crossrec (writer version, informational), n_users,
 * n_items, n_domains, dataset_crc (CRC32C of the .crd the model was trained on, 0 if unknown), dataset_path
 * (that .crd's absolute path, "" if unknown; optional: older files do not have it). Everything else
 * belongs to the type and carries its prefix ("pop.", "itemknn.", "knn."). Loading validates the generic
 * counts here and leaves the type's arrays to the type's loader (model_impl.h). */
#include "model_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Registry of the types a .crm can hold (fitting is in src/train/train.c). */
static const cr_model_type *const types[] = {&cr_pop_type, &cr_itemknn_type, &cr_bpr_type, &cr_als_type, &cr_cmf_type, &cr_emcdr_type, &cr_ptupcdr_type, &cr_tower_type};
#define N_TYPES ((int)(sizeof types / sizeof types[0]))

static const cr_model_type *find_type(const char *name) {
    for (int i = 0; i < N_TYPES; i++)
        if (!strcmp(types[i]->name, name)) return types[i];
    return NULL;
}

/* "pop, itemknn" for messages, into the caller's buffer (no shared state: callers may be on any thread). */
#define KNOWN_CAP 256
static const char *known_list(char *buf) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_TYPES && n < KNOWN_CAP; i++)
        n += (size_t)snprintf(buf + n, KNOWN_CAP - n, "%s%s", i ? ", " : "", types[i]->name);
    return buf;
}

/* Everything a type's score function relies on, so that types index their arrays without checks. */
static cr_status check_request(const cr_model *m, const cr_score_request *q, const float *scores, const uint8_t *can) {
    if (q->n_rows < 0 || q->n_cand < 0)
        return cr_fail(CR_ERR_ARG, "score request: negative size (rows %lld, candidates %lld)", (long long)q->n_rows,
                       (long long)q->n_cand);
    if (q->n_cand > 0 && !q->cand) return cr_fail(CR_ERR_ARG, "score request: NULL candidates");
    if (q->n_rows > 0 && (!can || (q->n_cand > 0 && !scores))) return cr_fail(CR_ERR_ARG, "score request: NULL output");
    if (q->domain < -1 || q->domain >= m->n_domains)
        return cr_fail(CR_ERR_ARG, "score request: domain %d is outside -1..%lld", q->domain, (long long)m->n_domains - 1);
    for (int64_t c = 0; c < q->n_cand; c++)
        if (q->cand[c] < 0 || q->cand[c] >= m->n_items)
            return cr_fail(CR_ERR_ARG, "score request: candidate %lld is item %d, outside 0..%lld", (long long)c, q->cand[c],
                           (long long)m->n_items - 1);
    if (q->users)
        for (int64_t r = 0; r < q->n_rows; r++)
            if (q->users[r] < -1 || q->users[r] >= m->n_users)
                return cr_fail(CR_ERR_ARG, "score request: row %lld has user %d, outside -1..%lld", (long long)r, q->users[r],
                               (long long)m->n_users - 1);
    if (q->hist_ptr && q->n_rows > 0) {
        if (q->hist_ptr[0] < 0) return cr_fail(CR_ERR_ARG, "score request: negative history offset");
        for (int64_t r = 0; r < q->n_rows; r++)
            if (q->hist_ptr[r + 1] < q->hist_ptr[r])
                return cr_fail(CR_ERR_ARG, "score request: history offsets decrease at row %lld", (long long)r);
        if (q->hist_ptr[q->n_rows] > q->hist_ptr[0] && !q->hist_items) return cr_fail(CR_ERR_ARG, "score request: NULL history");
        for (int64_t e = q->hist_ptr[0]; e < q->hist_ptr[q->n_rows]; e++)
            if (q->hist_items[e] < 0 || q->hist_items[e] >= m->n_items)
                return cr_fail(CR_ERR_ARG, "score request: history item %d is outside 0..%lld", q->hist_items[e],
                               (long long)m->n_items - 1);
    }
    return CR_OK;
}

/* Checks a request and runs a type's score or user_vectors op on it. */
typedef cr_status (*row_op)(const cr_model *m, const cr_score_request *req, float *out, uint8_t *can);

static cr_status run_rows(const cr_model *m, const cr_score_request *req, float *out, uint8_t *can, row_op op) {
    cr_status st = check_request(m, req, out, can);
    if (st) return st;
    if (req->n_rows == 0) return CR_OK;
    /* Types may assume a history array; an absent one means every history is empty. */
    cr_score_request q = *req;
    int64_t *zeros = NULL;
    if (!q.hist_ptr) {
        if (!(zeros = cr_calloc((size_t)q.n_rows + 1, sizeof *zeros)))
            return cr_fail(CR_ERR_NOMEM, "out of memory scoring %lld rows", (long long)q.n_rows);
        q.hist_ptr = zeros;
    }
    st = op(m, &q, out, can);
    cr_free(zeros);
    return st;
}

cr_status cr_model_score(const cr_model *m, const cr_score_request *req, float *scores, uint8_t *can) {
    return run_rows(m, req, scores, can, m->ops->score);
}

const char *cr_model_name(const cr_model *m) { return m->ops->name; }

const float *cr_model_item_vectors(const cr_model *m, int64_t *dim) {
    *dim = 0;
    return m->ops->item_vectors ? m->ops->item_vectors(m, dim) : NULL;
}

cr_status cr_model_user_vectors(const cr_model *m, const cr_score_request *req, float *vecs, uint8_t *can) {
    if (!m->ops->user_vectors) return cr_fail(CR_ERR_ARG, "%s scores without user and item vectors", m->ops->name);
    /* the candidates are not used: checked as an empty list, and vecs stands in for the score output */
    cr_score_request q = *req;
    q.n_cand = 0;
    q.cand = NULL;
    return run_rows(m, &q, vecs, can, m->ops->user_vectors);
}

int64_t cr_model_item_neighbors(const cr_model *m, int32_t i, const int32_t **items, const float **sims) {
    *items = NULL;
    *sims = NULL;
    CR_ASSERT(i >= 0 && i < m->n_items);
    return m->ops->neighbors ? m->ops->neighbors(m, i, items, sims) : -1;
}

void cr_model_free(cr_model *m) {
    if (!m) return;
    char *path = m->dataset_path;   /* the generic part's own allocation; the type frees its struct */
    m->ops->free(m);
    cr_free(path);
}

cr_status cr_model_save(const cr_model *m, const char *path) {
    cr_filew *w;
    cr_status st = cr_filew_new(&w, "CRM", CR_CRM_VERSION);
    if (st) return st;
    if ((st = cr_filew_meta_str(w, "model", m->ops->name)) || (st = cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING)) ||
        (st = cr_filew_meta_i64(w, "n_users", m->n_users)) || (st = cr_filew_meta_i64(w, "n_items", m->n_items)) ||
        (st = cr_filew_meta_i64(w, "n_domains", m->n_domains)) ||
        (st = cr_filew_meta_i64(w, "dataset_crc", (int64_t)m->dataset_crc)) ||
        (st = cr_filew_meta_str(w, "dataset_path", m->dataset_path ? m->dataset_path : "")) || (st = m->ops->save(m, w)) ||
        (st = cr_filew_commit(w, path))) {
        cr_filew_free(w);
        return st;
    }
    cr_filew_free(w);
    return CR_OK;
}

cr_status cr_model_load(cr_model **out, const char *path) {
    *out = NULL;
    cr_file *f;
    cr_status st = cr_file_open(&f, path, "CRM", CR_CRM_VERSION);
    if (st) return st;
    const char *name;
    int64_t crc;
    cr_model base;
    memset(&base, 0, sizeof base);
    if ((st = cr_file_get_str(f, "model", &name)) || (st = cr_file_get_i64(f, "n_users", &base.n_users)) ||
        (st = cr_file_get_i64(f, "n_items", &base.n_items)) || (st = cr_file_get_i64(f, "n_domains", &base.n_domains)) ||
        (st = cr_file_get_i64(f, "dataset_crc", &crc)))
        goto fail;
    const cr_model_type *t = find_type(name);
    if (!t) {
        char known[KNOWN_CAP];
        st = cr_fail(CR_ERR_FORMAT, "%s: model type '%s' is not known to this crossrec (known: %s)", path, name,
                     known_list(known));
        cr_set_hint("the file may come from a newer crossrec; `crossrec inspect %s` shows its metadata", path);
        goto fail;
    }
    /* Dataset indices are int32 everywhere, so larger counts cannot come from a real dataset. */
    if (base.n_users < 0 || base.n_users >= INT32_MAX || base.n_items < 0 || base.n_items >= INT32_MAX ||
        base.n_domains < 0 || base.n_domains >= INT32_MAX || crc < 0 || crc > (int64_t)UINT32_MAX) {
        st = cr_fail(CR_ERR_FORMAT, "%s: impossible counts (users %lld, items %lld, domains %lld, dataset_crc %lld)", path,
                     (long long)base.n_users, (long long)base.n_items, (long long)base.n_domains, (long long)crc);
        goto fail;
    }
    base.dataset_crc = (uint32_t)crc;
    /* copied before the type's loader takes the file */
    const cr_meta *dp = cr_file_find_meta(f, "dataset_path");
    char *ds_path = NULL;
    if (dp && dp->type == CR_META_STR && dp->str[0]) {
        size_t n = strlen(dp->str);
        if (!(ds_path = cr_malloc(n + 1))) {
            st = cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
            goto fail;
        }
        memcpy(ds_path, dp->str, n + 1);
    }
    if ((st = t->load(out, f, path, &base))) {
        cr_free(ds_path);
        return st;
    }
    (*out)->dataset_path = ds_path;
    return CR_OK;
fail:
    cr_file_close(f);
    return st;
}

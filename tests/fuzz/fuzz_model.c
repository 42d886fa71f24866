/* fuzz_model.c — the model reader (cr_model_load, .crm of every model type) on arbitrary bytes.
 *
 * Seeds: a model of each type trained on the seeds' dataset (tests/fuzz/make_seeds.sh). Each input is loaded as
 * written and with the container's size and CRC repaired, so each type's own loader (shapes, counts, ranges)
 * is reached. Whatever loads is used as the server would: scored for a known user, an unknown one with a
 * history, and one with none, against every item (at most 256), in every domain and in none; its item and
 * user vectors read; its neighbour lists walked. */
#include "crossrec/model.h"
#include "fuzz.h"

#define MAX_CAND 256

static void use(const cr_model *m) {
    float sum = 0.0f;
    int64_t n_cand = m->n_items < MAX_CAND ? m->n_items : MAX_CAND;
    int32_t cand[MAX_CAND], users[3] = {0, -1, -1}, hist[2] = {0, (int32_t)(m->n_items - 1)};
    int64_t hist_ptr[4] = {0, 0, m->n_items > 0 ? 2 : 0, m->n_items > 0 ? 2 : 0};
    for (int64_t k = 0; k < n_cand; k++) cand[k] = (int32_t)k;
    if (m->n_users == 0) users[0] = -1;
    static float scores[3 * MAX_CAND];
    uint8_t can[3];
    int64_t dim;
    const float *y = cr_model_item_vectors(m, &dim);    /* the same for every request */
    for (int64_t k = 0; y && k < m->n_items * dim; k++) sum += y[k];
    for (int64_t dom = -1; dom < m->n_domains && dom < 4; dom++) {
        cr_score_request rq = {.n_rows = 3, .users = users, .hist_ptr = hist_ptr, .hist_items = hist, .domain = (int32_t)dom,
                               .n_cand = n_cand, .cand = cand};
        if (cr_model_score(m, &rq, scores, can) == CR_OK)
            for (int64_t k = 0; k < 3 * n_cand; k++) sum += can[k / n_cand] ? scores[k] : 0.0f;
        if (y) {
            float *u = malloc((size_t)(3 * dim + 1) * sizeof *u);
            if (u && cr_model_user_vectors(m, &rq, u, can) == CR_OK)
                for (int64_t k = 0; k < 3 * dim; k++) sum += can[k / dim] ? u[k] : 0.0f;
            free(u);
        }
    }
    for (int64_t i = 0; i < m->n_items && i < MAX_CAND; i++) {
        const int32_t *items;
        const float *sims;
        int64_t n = cr_model_item_neighbors(m, (int32_t)i, &items, &sims);
        for (int64_t k = 0; k < n; k++) {
            if (items[k] < 0 || items[k] >= m->n_items) __builtin_trap();
            sum += sims[k];
        }
    }
    volatile float sink = sum;   /* the reads must happen */
    (void)sink;
}

static void try_load(const uint8_t *data, size_t size, int repair) {
    char path[256];
    cr_model *m;
    cr_status st = cr_model_load(&m, cr_fuzz_file("fuzz.crm", data, size, repair, path, sizeof path));
    if (st == CR_ERR_NOMEM) __builtin_trap();   /* a file of at most 64 KiB must not ask for more memory than there is */
    if (st != CR_OK) return;
    use(m);
    cr_model_free(m);
}

CR_FUZZ_TARGET(model) {
    try_load(data, size, 0);
    try_load(data, size, 1);
    return 0;
}

/* bench_eval.c — full-ranking evaluation speed: 1,000 users over 20,000 items with a dot-product model of
 * dimension 64 (random factors; scores through OpenBLAS sgemm, top-K through the bounded heap).
 *
 *   build/current/bench/bench_eval [--users N] [--items N] [--dim D]
 *
 * The split is warm leave-last-out over all items, so every user is ranked against every item. Prints the
 * seconds at 1 and 2 threads and checks that both give the same metrics. */
#include "crossrec/eval.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cr_model base;
    int64_t dim;
    float *user_vec;    /* (n_users, dim) */
    float *item_vec;    /* (n_items, dim) */
} dot_model;

static cr_status dot_score(const cr_model *m, const cr_score_request *req, float *scores, uint8_t *can) {
    const dot_model *dm = (const dot_model *)m;
    int64_t d = dm->dim, nr = req->n_rows, nc = req->n_cand;
    float *u = malloc((size_t)(nr * d) * sizeof *u);
    int contiguous = 1;
    for (int64_t k = 1; k < nc && contiguous; k++) contiguous = req->cand[k] == req->cand[0] + k;
    float *v = contiguous || !nc ? NULL : malloc((size_t)(nc * d) * sizeof *v);
    for (int64_t r = 0; r < nr; r++) {
        memcpy(u + r * d, dm->user_vec + req->users[r] * d, (size_t)d * sizeof *u);
        can[r] = 1;
    }
    if (v)
        for (int64_t k = 0; k < nc; k++) memcpy(v + k * d, dm->item_vec + req->cand[k] * d, (size_t)d * sizeof *v);
    const float *items = v ? v : nc ? dm->item_vec + req->cand[0] * d : NULL;
    if (nc) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)nc, (int)d, 1.0f, u, (int)d, items, (int)d, 0.0f, scores, (int)nc);
    free(u);
    free(v);
    return CR_OK;
}

static void dot_free(cr_model *m) { (void)m; }
static const cr_model_ops dot_ops = {"dot", dot_score, NULL, dot_free, NULL, NULL, NULL};

int main(int argc, char **argv) {
    int64_t users = 1000, items = 20000, dim = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--users")) users = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--items")) items = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) dim = atoll(argv[i + 1]);
    }
    openblas_set_num_threads(1);   /* threads come from the evaluation's OpenMP loop over users */
    const char *dir = "bench/out/eval";
    char crd[256], crs[256];
    snprintf(crd, sizeof crd, "%s/data.crd", dir);
    snprintf(crs, sizeof crs, "%s/s.crs", dir);
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = users, sp.n_items = items, sp.n_inter = users * 20, sp.n_domains = 1, sp.new_item_share = 0;
    cr_import_params ip = cr_import_default_params();
    char inter[256], items_path[256];
    snprintf(inter, sizeof inter, "%s/interactions.tsv", dir);
    snprintf(items_path, sizeof items_path, "%s/items.tsv", dir);
    ip.interactions[ip.n_interactions++] = inter;
    ip.items[ip.n_items++] = items_path;
    cr_dataset *d;
    cr_split *s;
    cr_split_params pp = cr_split_default_params();
    pp.protocol = CR_PROTO_WARM;
    if (cr_synth_write(dir, &sp) || cr_dataset_import(&d, &ip, NULL) || cr_dataset_save(d, crd)) {
        fprintf(stderr, "setup failed: %s\n", cr_errmsg());
        return 1;
    }
    cr_dataset_free(d);
    if (cr_dataset_load(&d, crd) || cr_split_make(&s, d, &pp) || cr_split_save(s, crs)) {
        fprintf(stderr, "split failed: %s\n", cr_errmsg());
        return 1;
    }
    cr_split_free(s);
    if (cr_split_load(&s, crs)) {
        fprintf(stderr, "split load failed: %s\n", cr_errmsg());
        return 1;
    }
    const cr_interactions *v = cr_dataset_inter(cr_split_dataset(s));
    dot_model m = {.base = {&dot_ops, v->n_users, v->n_items, v->n_domains, 0, NULL}, .dim = dim};
    m.user_vec = malloc((size_t)(v->n_users * dim) * sizeof(float));
    m.item_vec = malloc((size_t)(v->n_items * dim) * sizeof(float));
    cr_rng rng;
    cr_rng_named(&rng, 1, "bench");
    for (int64_t k = 0; k < v->n_users * dim; k++) m.user_vec[k] = (float)cr_rng_normal(&rng);
    for (int64_t k = 0; k < v->n_items * dim; k++) m.item_vec[k] = (float)cr_rng_normal(&rng);
    int64_t n_cand;
    cr_split_candidates(s, &n_cand);
    printf("full-ranking evaluation: %lld users x %lld candidate items, dimension %lld, K = 10,20,50\n",
           (long long)cr_split_truth(s, CR_PART_TEST)->n_users, (long long)n_cand, (long long)dim);
    cr_eval_result *res[2];
    for (int t = 1; t <= 2; t++) {
        cr_eval_params p = cr_eval_default_params();
        p.threads = t;
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            if (cr_evaluate(s, &m.base, &p, &res[t - 1])) {
                fprintf(stderr, "eval failed: %s\n", cr_errmsg());
                return 1;
            }
            best = res[t - 1]->seconds < best ? res[t - 1]->seconds : best;
            if (rep < 4) cr_eval_result_free(res[t - 1]);
        }
        printf("%d thread%s: %.3f s (best of 5; target < 0.3 s on 2 cores); recall@10 %.4f\n", t, t > 1 ? "s" : "", best,
               res[t - 1]->mean.recall[0]);
    }
    int same = !memcmp(&res[0]->mean, &res[1]->mean, sizeof res[0]->mean) && !memcmp(res[0]->coverage, res[1]->coverage, sizeof res[0]->coverage);
    printf("metrics identical at 1 and 2 threads: %s\n", same ? "yes" : "NO");
    cr_eval_result_free(res[0]);
    cr_eval_result_free(res[1]);
    cr_split_free(s);
    cr_dataset_free(d);
    free(m.user_vec), free(m.item_vec);
    return same ? 0 : 1;
}

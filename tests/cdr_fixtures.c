/* cdr_fixtures.c — fixtures shared by the cross-domain model tests (cdr_fixtures.h). */
#include "cdr_fixtures.h"

#include "test.h"

#include "crossrec/io.h"

#include <stdlib.h>

cr_dataset *cr_test_cdr_data(const char *name, int64_t users, int64_t items, int64_t inter, int domains, uint64_t seed) {
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = users;
    sp.n_items = items;
    sp.n_inter = inter;
    sp.n_domains = domains;
    sp.seed = seed;
    char dir[512], inter_path[600], items_path[600], crd[600];
    snprintf(dir, sizeof dir, "%s", cr_test_path(name));
    CHECK_OK(cr_synth_write(dir, &sp));
    snprintf(inter_path, sizeof inter_path, "%s/interactions.tsv", dir);
    snprintf(items_path, sizeof items_path, "%s/items.tsv", dir);
    snprintf(crd, sizeof crd, "%s/dataset.crd", dir);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = inter_path;
    ip.items[ip.n_items++] = items_path;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &ip, NULL));
    CHECK_OK(cr_dataset_save(d, crd));
    cr_dataset_free(d);
    d = NULL;
    CHECK_OK(cr_dataset_load(&d, crd));
    return d;
}

int32_t cr_test_thinnest_domain(const cr_dataset *d) {
    const cr_interactions *v = cr_dataset_inter(d);
    int64_t count[8] = {0};
    CHECK(v->n_domains <= 8);
    for (int64_t e = 0; e < v->n_inter; e++) count[v->item_domain[v->user_items[e]]]++;
    int32_t best = 0;
    for (int32_t t = 1; t < v->n_domains; t++)
        if (count[t] < count[best]) best = t;
    return best;
}

cr_split *cr_test_cold_split(const cr_dataset *d, int32_t target, double beta) {
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = cr_dataset_domain_name(d, target);
    sp.beta = beta;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    return s;
}

static cr_status hashed_score(const cr_model *m, const cr_score_request *q, float *scores, uint8_t *can) {
    for (int64_t r = 0; r < q->n_rows; r++) {
        can[r] = 1;
        for (int64_t c = 0; c < q->n_cand; c++) {
            uint32_t key[2] = {(uint32_t)(q->users ? q->users[r] : -1), (uint32_t)q->cand[c]};
            scores[r * q->n_cand + c] = (float)(cr_hash32(key, sizeof key, 99) >> 8);
        }
    }
    return CR_OK;
}
static void hashed_free(cr_model *m) { (void)m; }
static const cr_model_ops hashed_ops = {.name = "hashed", .score = hashed_score, .save = NULL, .free = hashed_free};

cr_model cr_test_random_model(const cr_dataset *d) {
    const cr_interactions *v = cr_dataset_inter(d);
    cr_model m = {&hashed_ops, v->n_users, v->n_items, v->n_domains, 0, NULL};
    return m;
}

cr_eval_result *cr_test_evaluate_at(const cr_split *s, const cr_model *m, int k0, int k1) {
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = k0, ep.ks[1] = k1, ep.n_k = 2;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(s, m, &ep, &r));
    return r;
}

int cr_test_log_losses(const char *path, double *loss, int cap) {
    char *text = cr_test_read(path, NULL);
    CHECK_MSG(text, "no training log at %s", path);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long long epoch;
        double l;
        if (sscanf(line, "%lld\t%lf", &epoch, &l) == 2 && n < cap) loss[n++] = l;
    }
    free(text);
    return n;
}

void cr_test_amazon_cold_split(const char *target, const char *crd_name, cr_dataset **d, cr_split **s) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char pi[512], pt[512], pu[512];
    snprintf(pi, sizeof pi, "%s/amazon-art-office/interactions.tsv", root);
    snprintf(pt, sizeof pt, "%s/amazon-art-office/items.tsv", root);
    snprintf(pu, sizeof pu, "%s/amazon-art-office/users.tsv", root);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = pi;
    ip.items[ip.n_items++] = pt;
    CHECK_OK(cr_dataset_import(d, &ip, NULL));
    const char *crd = cr_test_path(crd_name);
    CHECK_OK(cr_dataset_save(*d, crd));
    cr_dataset_free(*d);
    *d = NULL;
    CHECK_OK(cr_dataset_load(d, crd));
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = target;
    sp.users_file = pu;
    CHECK_OK(cr_split_make(s, *d, &sp));
}

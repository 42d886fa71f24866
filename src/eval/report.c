/* report.c — printing an evaluation result as tables or as one JSON object. */
#include "crossrec/eval.h"

#include <jansson.h>
#include <math.h>

void cr_eval_print(const cr_eval_result *r, const char *model_name, FILE *out) {
    fprintf(out, "%s: %lld users with ground truth", model_name, (long long)r->n_users);
    if (r->n_no_truth) fprintf(out, " (%lld held-out users without any were skipped)", (long long)r->n_no_truth);
    if (r->n_unrepresented) fprintf(out, "; %lld users the model cannot represent (their positives count as misses)", (long long)r->n_unrepresented);
    if (r->n_gt_outside) fprintf(out, "; %lld ground-truth items not ranked (already seen, or not candidates)", (long long)r->n_gt_outside);
    fprintf(out, "\n%6s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "K", "recall", "ndcg", "hr", "precision", "map", "coverage",
            "gini", "ild", "novelty");
    for (int q = 0; q < r->n_k; q++)
        fprintf(out, "%6d %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %9.3f\n", r->ks[q], r->mean.recall[q], r->mean.ndcg[q],
                r->mean.hr[q], r->mean.precision[q], r->mean.map[q], r->coverage[q], r->gini[q], r->ild[q], r->novelty[q]);
    fprintf(out, "mrr %.4f   auc %.4f   (%.2f s)\n", r->mean.mrr, r->mean.auc, r->seconds);
    if (r->sampled_pairs) {
        fprintf(out, "sampled view, %lld held-out pairs against their stored negatives:", (long long)r->sampled_pairs);
        for (int q = 0; q < r->n_k; q++) fprintf(out, "  hr@%d %.4f ndcg@%d %.4f", r->ks[q], r->sampled.hr[q], r->ks[q], r->sampled.ndcg[q]);
        fprintf(out, "  mrr %.4f  auc %.4f\n", r->sampled.mrr, r->sampled.auc);
    }
    fprintf(out, "by user group (users: recall@K / ndcg@K):\n");
    for (int g = 0; g < r->n_user_groups; g++) {
        if (!r->user_group_n[g]) continue;
        fprintf(out, "  %-16s %6lld", r->user_group_name[g], (long long)r->user_group_n[g]);
        for (int q = 0; q < r->n_k; q++) fprintf(out, "   @%d %.4f / %.4f", r->ks[q], r->user_group_recall[g][q], r->user_group_ndcg[g][q]);
        fprintf(out, "\n");
    }
    fprintf(out, "by item group (ground-truth items: recall@K):\n");
    for (int g = 0; g < r->n_item_groups; g++) {
        fprintf(out, "  %-16s %6lld", r->item_group_name[g], (long long)r->item_group_n[g]);
        for (int q = 0; q < r->n_k; q++) fprintf(out, "   @%d %.4f", r->ks[q], r->item_group_recall[g][q]);
        fprintf(out, "\n");
    }
}

/* NaN (ILD without item text) has no JSON number: null. */
static json_t *num(double x) { return isnan(x) ? json_null() : json_real(x); }

static json_t *metrics_json(const cr_user_metrics *m, const int *ks, int n_k) {
    json_t *o = json_object();
    char key[32];
    for (int q = 0; q < n_k; q++) {
        snprintf(key, sizeof key, "recall@%d", ks[q]), json_object_set_new(o, key, num(m->recall[q]));
        snprintf(key, sizeof key, "ndcg@%d", ks[q]), json_object_set_new(o, key, num(m->ndcg[q]));
        snprintf(key, sizeof key, "hr@%d", ks[q]), json_object_set_new(o, key, num(m->hr[q]));
        snprintf(key, sizeof key, "precision@%d", ks[q]), json_object_set_new(o, key, num(m->precision[q]));
        snprintf(key, sizeof key, "map@%d", ks[q]), json_object_set_new(o, key, num(m->map[q]));
    }
    json_object_set_new(o, "mrr", num(m->mrr));
    json_object_set_new(o, "auc", num(m->auc));
    return o;
}

cr_status cr_eval_json(const cr_eval_result *r, const char *model_name, FILE *out) {
    json_t *root = json_object();
    if (!root) return cr_fail(CR_ERR_NOMEM, "out of memory (JSON)");
    json_object_set_new(root, "model", json_string(model_name));
    json_object_set_new(root, "users", json_integer(r->n_users));
    json_object_set_new(root, "skipped_users_without_truth", json_integer(r->n_no_truth));
    json_object_set_new(root, "unrepresented_users", json_integer(r->n_unrepresented));
    json_object_set_new(root, "ground_truth_not_ranked", json_integer(r->n_gt_outside));
    json_t *m = metrics_json(&r->mean, r->ks, r->n_k);
    char key[32];
    for (int q = 0; q < r->n_k; q++) {
        snprintf(key, sizeof key, "coverage@%d", r->ks[q]), json_object_set_new(m, key, num(r->coverage[q]));
        snprintf(key, sizeof key, "gini@%d", r->ks[q]), json_object_set_new(m, key, num(r->gini[q]));
        snprintf(key, sizeof key, "ild@%d", r->ks[q]), json_object_set_new(m, key, num(r->ild[q]));
        snprintf(key, sizeof key, "novelty@%d", r->ks[q]), json_object_set_new(m, key, num(r->novelty[q]));
    }
    json_object_set_new(root, "metrics", m);
    if (r->sampled_pairs) {
        json_object_set_new(root, "sampled_pairs", json_integer(r->sampled_pairs));
        json_object_set_new(root, "sampled", metrics_json(&r->sampled, r->ks, r->n_k));
    }
    json_t *ug = json_object(), *ig = json_object();
    for (int g = 0; g < r->n_user_groups; g++) {
        json_t *o = json_object();
        json_object_set_new(o, "users", json_integer(r->user_group_n[g]));
        for (int q = 0; q < r->n_k; q++) {
            snprintf(key, sizeof key, "recall@%d", r->ks[q]), json_object_set_new(o, key, num(r->user_group_recall[g][q]));
            snprintf(key, sizeof key, "ndcg@%d", r->ks[q]), json_object_set_new(o, key, num(r->user_group_ndcg[g][q]));
        }
        json_object_set_new(ug, r->user_group_name[g], o);
    }
    for (int g = 0; g < r->n_item_groups; g++) {
        json_t *o = json_object();
        json_object_set_new(o, "ground_truth_items", json_integer(r->item_group_n[g]));
        for (int q = 0; q < r->n_k; q++)
            snprintf(key, sizeof key, "recall@%d", r->ks[q]), json_object_set_new(o, key, num(r->item_group_recall[g][q]));
        json_object_set_new(ig, r->item_group_name[g], o);
    }
    json_object_set_new(root, "user_groups", ug);
    json_object_set_new(root, "item_groups", ig);
    json_object_set_new(root, "seconds", json_real(r->seconds));
    cr_status st = CR_OK;
    if (json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) || fputc('\n', out) == EOF) st = cr_fail(CR_ERR_IO, "cannot write JSON");
    json_decref(root);
    return st;
}

/* compare.c — the comparison of several models evaluated on the same users: table columns, best values, and
 * paired bootstrap intervals of each model's difference to the first. Shared by `crossrec compare` and
 * `crossrec report`, so both show the same numbers. */
#include "crossrec/eval.h"

#include <stdio.h>
#include <string.h>

double cr_compare_value(const cr_user_metrics *m, int col, int n_k) {
    if (col == 3 * n_k) return m->mrr;
    int q = col / 3;
    return col % 3 == 0 ? m->recall[q] : col % 3 == 1 ? m->ndcg[q] : m->hr[q];
}

void cr_compare_col_name(int col, const int *ks, int n_k, char *buf, size_t cap) {
    static const char *const names[] = {"recall", "ndcg", "hr"};
    if (col == 3 * n_k) snprintf(buf, cap, "mrr");
    else snprintf(buf, cap, "%s@%d", names[col % 3], ks[col / 3]);
}

double cr_compare_best(const cr_eval_result *const *res, int n, int col) {
    double best = cr_compare_value(&res[0]->mean, col, res[0]->n_k);
    for (int k = 1; k < n; k++) {
        double v = cr_compare_value(&res[k]->mean, col, res[k]->n_k);
        if (v > best) best = v;
    }
    return best;
}

cr_status cr_compare_bootstrap(const cr_eval_result *const *res, int n, int reps, uint64_t seed, cr_interval *diff) {
    const int64_t nu = res[0]->n_users;
    const int n_k = res[0]->n_k, n_cols = cr_compare_n_cols(n_k);
    for (int k = 1; k < n; k++)
        if (res[k]->n_users != nu || res[k]->n_k != n_k || memcmp(res[k]->ks, res[0]->ks, sizeof res[0]->ks) ||
            memcmp(res[k]->users, res[0]->users, (size_t)nu * sizeof *res[0]->users))
            return cr_fail(CR_ERR_ARG, "compare: result %d is not of the same users and cut-offs as the first", k);
    if (n < 2) return CR_OK;
    double *a = cr_malloc((size_t)(nu ? nu : 1) * sizeof *a), *b = cr_malloc((size_t)(nu ? nu : 1) * sizeof *b);
    cr_status st = a && b ? CR_OK : cr_fail(CR_ERR_NOMEM, "out of memory (bootstrap of %lld users)", (long long)nu);
    for (int k = 1; k < n && !st; k++)
        for (int c = 0; c < n_cols && !st; c++) {
            for (int64_t u = 0; u < nu; u++)
                a[u] = cr_compare_value(&res[0]->per_user[u], c, n_k), b[u] = cr_compare_value(&res[k]->per_user[u], c, n_k);
            cr_interval *iv = &diff[(k - 1) * n_cols + c];
            st = cr_bootstrap_diff(a, b, nu, reps, seed, &iv->mean, &iv->lo, &iv->hi);
        }
    cr_free(a), cr_free(b);
    return st;
}

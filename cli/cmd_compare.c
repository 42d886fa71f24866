/* cmd_compare.c — `crossrec compare s.crs m1.crm m2.crm ...`: one table, paired bootstrap intervals of the
 * difference to the first model, best value per column marked. */
#include "cli.h"
#include "crossrec/eval.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define MAX_MODELS 32

static const cli_cmd_info info = {
    "compare",
    "compare s.crs m1.crm m2.crm ... [--k 10,50] [--split valid|test] [--bootstrap 1000] [--seed 42] [--json]",
    "Evaluates several models on the same split and users. For each model after the first, the paired bootstrap\n"
    "95% interval of its difference to the first model (resampling users). '*' marks the best value per column.",
};

int cmd_compare(int argc, char **argv) {
    const char *ks_text = "10,50", *part_name = "test";
    int json = 0;
    int64_t reps = 1000, seed = 42, threads = 0;
    const cli_opt opts[] = {
        {"k", 'k', CLI_STR, &ks_text, NULL, 0, "LIST", "cut-offs"},
        {"split", 0, CLI_STR, &part_name, NULL, 0, "PART", "valid or test"},
        {"bootstrap", 0, CLI_INT, &reps, NULL, 0, "N", "bootstrap resamples"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "bootstrap seed"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads (0 = all cores)"},
        {"json", 0, CLI_FLAG, &json, NULL, 0, NULL, "one JSON object"},
        {0},
    };
    const char *pos[MAX_MODELS + 1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, MAX_MODELS + 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos < 2) return cli_usage_error(&info, "give a split file and at least one model file");
    cr_eval_params p = cr_eval_default_params();
    if (cli_parse_ks(ks_text, p.ks, &p.n_k, CR_MAX_K)) return cli_usage_error(&info, "--k wants up to %d positive integers", CR_MAX_K);
    if (!strcmp(part_name, "valid")) p.part = CR_PART_VALID;
    else if (strcmp(part_name, "test")) return cli_usage_error(&info, "--split must be valid or test");
    if (reps < 10) return cli_usage_error(&info, "--bootstrap must be at least 10");
    p.threads = (int)threads;
    int n_models = n_pos - 1, n_cols = cr_compare_n_cols(p.n_k);
    cr_split *s;
    cr_status st = cr_split_load(&s, pos[0]);
    if (st) return cli_fail(st);
    cr_eval_result *res[MAX_MODELS] = {0};
    const char *names[MAX_MODELS];
    for (int k = 0; k < n_models && !st; k++) {
        cr_model *m;
        if ((st = cr_model_load(&m, pos[k + 1]))) break;
        st = cr_evaluate(s, m, &p, &res[k]);
        const char *slash = strrchr(pos[k + 1], '/');
        names[k] = slash ? slash + 1 : pos[k + 1];   /* the table shows file names; paths are in the arguments */
        cr_model_free(m);
    }
    int64_t nu = st ? 0 : res[0]->n_users;
    cr_interval diff[(MAX_MODELS - 1) * (3 * CR_MAX_K + 1)];
    if (!st) st = cr_compare_bootstrap((const cr_eval_result *const *)res, n_models, (int)reps, (uint64_t)seed, diff);
    if (!st && !json) {
        printf("%lld %s users; paired bootstrap 95%% intervals (%lld resamples) of the difference to %s\n\n", (long long)nu,
               part_name, (long long)reps, names[0]);
        printf("%-28s", "model");
        for (int c = 0; c < n_cols; c++) {
            char cn[32];
            cr_compare_col_name(c, p.ks, p.n_k, cn, sizeof cn);
            printf(" %15s", cn);
        }
        printf("\n");
        for (int k = 0; k < n_models; k++) {
            printf("%-28.28s", names[k]);
            for (int c = 0; c < n_cols; c++) {
                double v = cr_compare_value(&res[k]->mean, c, p.n_k);
                double best = cr_compare_best((const cr_eval_result *const *)res, n_models, c);
                printf(" %14.4f%s", v, v == best && n_models > 1 ? "*" : " ");
            }
            printf("\n");
            if (k == 0) continue;
            printf("%-28s", "  difference, 95% interval");
            for (int c = 0; c < n_cols; c++) printf(" %+14.4f ", diff[(k - 1) * n_cols + c].mean);
            printf("\n%-28s", "");
            for (int c = 0; c < n_cols; c++) {
                char iv[32];
                snprintf(iv, sizeof iv, "[%+.3f,%+.3f]", diff[(k - 1) * n_cols + c].lo, diff[(k - 1) * n_cols + c].hi);
                printf(" %15s", iv);
            }
            printf("\n");
        }
    } else if (!st) {
        json_t *root = json_object(), *arr = json_array();
        for (int k = 0; k < n_models; k++) {
            json_t *o = json_object(), *vals = json_object(), *dj = json_object();
            json_object_set_new(o, "model", json_string(names[k]));
            for (int c = 0; c < n_cols; c++) {
                char cn[32];
                cr_compare_col_name(c, p.ks, p.n_k, cn, sizeof cn);
                json_object_set_new(vals, cn, json_real(cr_compare_value(&res[k]->mean, c, p.n_k)));
                const cr_interval *iv = k ? &diff[(k - 1) * n_cols + c] : NULL;
                if (iv) json_object_set_new(dj, cn, json_pack("{s:f, s:f, s:f}", "mean", iv->mean, "lo", iv->lo, "hi", iv->hi));
            }
            json_object_set_new(o, "metrics", vals);
            if (k) json_object_set_new(o, "difference_to_first", dj);
            else json_decref(dj);
            json_array_append_new(arr, o);
        }
        json_object_set_new(root, "users", json_integer(nu));
        json_object_set_new(root, "split", json_string(part_name));
        json_object_set_new(root, "models", arr);
        json_dumpf(root, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(root);
    }
    for (int k = 0; k < n_models; k++) cr_eval_result_free(res[k]);
    cr_split_free(s);
    return st ? cli_fail(st) : 0;
}

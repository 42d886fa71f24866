/* cmd_eval.c — `crossrec eval s.crs m.crm`: exact metrics of one model on a split. */
#include "cli.h"
#include "crossrec/eval.h"

#include <stdio.h>
#include <string.h>

static const cli_cmd_info info = {
    "eval",
    "eval s.crs m.crm [--k 10,20,50] [--split valid|test] [--keep-seen] [--json] [--per-user FILE]",
    "Ranks all candidate items of the split for every evaluated user and reports Recall, NDCG, HR, Precision,\n"
    "MAP at each K, MRR, AUC, coverage, Gini, intra-list diversity and novelty, the sampled view when the split\n"
    "has one, and breakdowns by user and item group. Ties count against the model. Model selection belongs on\n"
    "--split valid; report test once.",
};

int cmd_eval(int argc, char **argv) {
    const char *ks_text = "10,20,50", *part_name = "test", *per_user = NULL;
    int json = 0, keep_seen = 0, quiet = 0;
    int64_t threads = 0;
    const cli_opt opts[] = {
        {"k", 'k', CLI_STR, &ks_text, NULL, 0, "LIST", "cut-offs"},
        {"split", 0, CLI_STR, &part_name, NULL, 0, "PART", "valid or test"},
        {"keep-seen", 0, CLI_FLAG, &keep_seen, NULL, 0, NULL, "also rank items already in the user's training history"},
        {"json", 0, CLI_FLAG, &json, NULL, 0, NULL, "one JSON object"},
        {"per-user", 0, CLI_STR, &per_user, NULL, 0, "FILE", "write one TSV row per evaluated user"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads (0 = all cores); results do not depend on it"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "no progress line and no summary line on stderr"},
        {0},
    };
    const char *pos[2];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 2, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 2) return cli_usage_error(&info, "give a split file and a model file");
    cr_eval_params p = cr_eval_default_params();
    if (cli_parse_ks(ks_text, p.ks, &p.n_k, CR_MAX_K)) return cli_usage_error(&info, "--k wants up to %d positive integers like 10,20,50", CR_MAX_K);
    if (!strcmp(part_name, "test")) p.part = CR_PART_TEST;
    else if (!strcmp(part_name, "valid")) p.part = CR_PART_VALID;
    else return cli_usage_error(&info, "--split must be valid or test");
    p.keep_seen = keep_seen;
    p.per_user_path = per_user;
    p.threads = (int)threads;
    cr_split *s;
    cr_status st = cr_split_load(&s, pos[0]);
    if (st) return cli_fail(st);
    cr_model *m;
    if ((st = cr_model_load(&m, pos[1]))) {
        cr_split_free(s);
        return cli_fail(st);
    }
    cr_eval_result *r;
    cli_progress pr;
    p.progress = cli_progress_start(&pr, "eval", "user", quiet);
    st = cr_evaluate(s, m, &p, &r);
    if (st) {
        cli_progress_end(&pr, stderr, NULL);
    } else {
        int64_t n_cand;
        char nu[32], nc[32];
        cr_split_candidates(s, &n_cand);
        cli_progress_end(&pr, stderr, "eval: %s users x %s candidates in %.2f s (%.0f users/s)", cli_commas(r->n_users, nu, sizeof nu),
                         cli_commas(n_cand, nc, sizeof nc), r->seconds, r->seconds > 0 ? (double)r->n_users / r->seconds : 0.0);
        char name[512];
        snprintf(name, sizeof name, "%s (%s) on %s, %s users", pos[1], cr_model_name(m), pos[0], part_name);
        if (json) st = cr_eval_json(r, cr_model_name(m), stdout);
        else cr_eval_print(r, name, stdout);
        cr_eval_result_free(r);
    }
    cr_model_free(m);
    cr_split_free(s);
    return st ? cli_fail(st) : 0;
}

/* cmd_report.c — `crossrec report s.crs m1.crm m2.crm ... [--log run.tsv ...] -o report.html`: one HTML page with
 * the comparison table, curves, groups, learning curves, item maps and example users (report.h). */
#include "cli.h"
#include "crossrec/report.h"

#include <stdio.h>
#include <string.h>

#define MAX_MODELS 32

static const cli_cmd_info info = {
    "report",
    "report s.crs m1.crm m2.crm ... [--log run.tsv ...] -o report.html [--k 10,50] [--split valid|test] [--bootstrap 1000]",
    "Evaluates the models on the split and writes one self-contained HTML page (inline SVG and CSS, nothing\n"
    "loaded from elsewhere, no script): the comparison table with paired bootstrap intervals (the numbers of\n"
    "`crossrec compare` with the same --k, --split, --bootstrap and --seed), NDCG@K and Recall@K for K = 1..--curve-k,\n"
    "recall of cold and warm users and of cold, head and tail items, per domain when the candidates span several,\n"
    "learning curves from training logs (--log, from `crossrec train --log`), a 2-D map of each model's item\n"
    "vectors coloured by domain (principal components), and example users with their history and each model's\n"
    "top 10, hits marked.",
};

int cmd_report(int argc, char **argv) {
    cr_report_params p = cr_report_default_params();
    const char *ks_text = "10,50", *part_name = "test", *output = NULL, *logs[MAX_MODELS];
    int64_t reps = p.bootstrap, seed = (int64_t)p.seed, curve_k = p.curve_k, examples = p.n_examples, points = p.map_points,
            threads = 0;
    int quiet = 0, n_logs = 0;
    const cli_opt opts[] = {
        {"output", 'o', CLI_STR, &output, NULL, 0, "FILE", "HTML file to write"},
        {"log", 0, CLI_STR_LIST, logs, &n_logs, MAX_MODELS, "FILE", "training log (TSV of crossrec train --log) for the learning curves"},
        {"k", 'k', CLI_STR, &ks_text, NULL, 0, "LIST", "cut-offs of the table"},
        {"split", 0, CLI_STR, &part_name, NULL, 0, "PART", "valid or test"},
        {"bootstrap", 0, CLI_INT, &reps, NULL, 0, "N", "bootstrap resamples"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "bootstrap seed"},
        {"curve-k", 0, CLI_INT, &curve_k, NULL, 0, "K", "curves for K = 1..K"},
        {"examples", 0, CLI_INT, &examples, NULL, 0, "N", "example users shown"},
        {"map-points", 0, CLI_INT, &points, NULL, 0, "N", "items drawn on each item map"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads (0 = all cores)"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "no progress line and no summary line"},
        {0},
    };
    const char *pos[MAX_MODELS + 1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, MAX_MODELS + 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos < 2) return cli_usage_error(&info, "give a split file and at least one model file");
    if (!output) return cli_usage_error(&info, "no output file: give -o report.html");
    if (cli_parse_ks(ks_text, p.ks, &p.n_k, CR_MAX_K)) return cli_usage_error(&info, "--k wants up to %d positive integers", CR_MAX_K);
    if (!strcmp(part_name, "valid")) p.part = CR_PART_VALID;
    else if (strcmp(part_name, "test")) return cli_usage_error(&info, "--split must be valid or test");
    if (reps < 10 || reps > 1000000) return cli_usage_error(&info, "--bootstrap must be 10..1000000");
    if (seed < 0) return cli_usage_error(&info, "--seed must be >= 0");
    if (curve_k < 1 || curve_k > CR_MAX_CURVE_K) return cli_usage_error(&info, "--curve-k must be 1..%d", CR_MAX_CURVE_K);
    if (examples < 0 || examples > 64) return cli_usage_error(&info, "--examples must be 0..64");
    if (points < 0) return cli_usage_error(&info, "--map-points must be >= 0");
    if (threads < 0 || threads > 4096) return cli_usage_error(&info, "--threads must be 0..4096");
    p.bootstrap = (int)reps, p.seed = (uint64_t)seed, p.curve_k = (int)curve_k, p.n_examples = (int)examples;
    p.map_points = points, p.threads = (int)threads, p.logs = logs, p.n_logs = n_logs;
    char command[2048];
    size_t used = (size_t)snprintf(command, sizeof command, "crossrec");
    for (int i = 0; i < argc && used < sizeof command; i++)
        used += (size_t)snprintf(command + used, sizeof command - used, " %s", argv[i]);
    p.command = command;

    cr_split *s;
    cr_status st = cr_split_load(&s, pos[0]);
    if (st) return cli_fail(st);
    double t0 = cr_now();
    cli_progress pr;
    p.progress = cli_progress_start(&pr, "report", "model", quiet);
    st = cr_report_write(s, pos + 1, n_pos - 1, &p, output);
    cr_split_free(s);
    if (st) {
        cli_progress_end(&pr, stderr, NULL);
        return cli_fail(st);
    }
    cli_progress_end(&pr, stdout, "report: %d models on %s in %.1f s -> %s (open it in a browser)", n_pos - 1, pos[0], cr_now() - t0,
                     output);
    return 0;
}

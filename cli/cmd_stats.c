/* cmd_stats.c — `crossrec stats data.crd [--json]`. */
#include "cli.h"
#include "crossrec/data.h"

#include <stdio.h>

static const cli_cmd_info info = {
    "stats",
    "stats data.crd [--json]",
    "Describes a dataset: per domain users, items, interactions, density and items never interacted; the\n"
    "matrix of users active in both of two domains; quantiles of events per user.",
};

int cmd_stats(int argc, char **argv) {
    int json = 0;
    const cli_opt opts[] = {
        {"json", 0, CLI_FLAG, &json, NULL, 0, NULL, "one JSON object instead of tables"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&info, "give one dataset file");
    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, pos[0]);
    if (st) return cli_fail(st);
    cr_stats s;
    if ((st = cr_dataset_stats(d, &s))) {
        cr_dataset_free(d);
        return cli_fail(st);
    }
    if (json) st = cr_stats_json(d, &s, stdout);
    else cr_stats_print(d, &s, stdout);
    cr_stats_free(&s);
    cr_dataset_free(d);
    return st ? cli_fail(st) : 0;
}

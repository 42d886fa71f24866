/* cmd_split.c — `crossrec split`: a dataset -> an evaluation split (.crs), optionally exported as TSV. */
#include "cli.h"
#include "crossrec/split.h"

#include <stdio.h>
#include <string.h>

static const cli_cmd_info info = {
    "split",
    "split data.crd --protocol cold-user|warm|new-domain [--target T] [options] -o split.crs [--export DIR]",
    "Decides once which events train and which are held out for validation and test, and the candidates they\n"
    "are ranked against; every model is then evaluated on the same split (docs/EVAL.md).\n"
    "  cold-user   a share --beta of the users active in --target and another domain (or the users named\n"
    "              valid/test in --users-file) lose all their --target events to the ground truth\n"
    "  warm        per user the last event is test, the one before valid (--by time), or 80/10/10 (--by random)\n"
    "  new-domain  every --target event leaves training, except --few-shot K earliest per item",
};

static const char *const protocols[] = {"cold-user", "warm", "new-domain"};

int cmd_split(int argc, char **argv) {
    cr_split_params p = cr_split_default_params();
    const char *protocol = NULL, *by = "time", *output = NULL, *export_dir = NULL;
    int64_t seed = (int64_t)p.seed;
    int quiet = 0;
    const cli_opt opts[] = {
        {"protocol", 0, CLI_STR, &protocol, NULL, 0, "NAME", "cold-user, warm or new-domain"},
        {"target", 0, CLI_STR, &p.target, NULL, 0, "DOMAIN", "domain held out (required for cold-user and new-domain)"},
        {"beta", 0, CLI_F64, &p.beta, NULL, 0, "X", "cold-user: share of overlapping users held out"},
        {"users-file", 0, CLI_STR, &p.users_file, NULL, 0, "FILE", "cold-user: TSV `user split` (train/valid/test) instead of --beta"},
        {"valid-share", 0, CLI_F64, &p.valid_share, NULL, 0, "X", "share of held-out users used for validation"},
        {"by", 0, CLI_STR, &by, NULL, 0, "HOW", "warm: time (leave last out) or random (80/10/10)"},
        {"few-shot", 0, CLI_INT, &p.few_shot, NULL, 0, "K", "new-domain: keep the K earliest events of each target item"},
        {"sampled", 0, CLI_INT, &p.sampled, NULL, 0, "N", "also draw N fixed negatives per held-out pair"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "random seed"},
        {"output", 'o', CLI_STR, &output, NULL, 0, "FILE", "split file to write (.crs)"},
        {"export", 0, CLI_STR, &export_dir, NULL, 0, "DIR", "also write DIR/train.tsv, valid.tsv, test.tsv"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "print nothing on success"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&info, "give one dataset file");
    if (!protocol) return cli_usage_error(&info, "give --protocol cold-user, warm or new-domain");
    if (cr_protocol_from_name(protocol, &p.protocol)) {
        int best = 0, best_d = 1 << 30;
        for (int i = 0; i < 3; i++) {
            /* "cold" or "new" are prefixes, far by edit distance but clearly meant */
            int d = strncmp(protocols[i], protocol, strlen(protocol)) ? cli_edit_distance(protocol, protocols[i]) : 0;
            if (d < best_d) best_d = d, best = i;
        }
        if (best_d <= 3)
            return cli_usage_error(&info, "unknown protocol '%s' (did you mean %s?)", protocol, protocols[best]);
        return cli_usage_error(&info, "unknown protocol '%s': cold-user, warm or new-domain", protocol);
    }
    if (!strcmp(by, "random")) p.warm_random = 1;
    else if (strcmp(by, "time")) return cli_usage_error(&info, "--by must be time or random (got '%s')", by);
    if (seed < 0) return cli_usage_error(&info, "--seed must be >= 0");
    p.seed = (uint64_t)seed;
    const char *msg = cr_split_check_params(&p);
    if (msg) return cli_usage_error(&info, "%s", msg);
    if (!output) return cli_usage_error(&info, "no output file: give -o split.crs");

    double t0 = cr_now();
    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, pos[0]);
    if (st) return cli_fail(st);
    cr_split *s = NULL;
    if ((st = cr_split_make(&s, d, &p)) || (st = cr_split_save(s, output)) || (export_dir && (st = cr_split_export(s, export_dir)))) {
        cr_split_free(s);
        cr_dataset_free(d);
        return cli_fail(st);
    }
    if (!quiet) {
        const cr_split_stats *c = cr_split_stats_of(s);
        int32_t t = cr_split_target(s);
        const char *tname = t >= 0 ? cr_dataset_domain_name(d, t) : NULL;
        printf("split %s%s%s, seed %llu, in %.2f s -> %s\n", protocol, tname ? " of " : "", tname ? tname : "",
               (unsigned long long)p.seed, cr_now() - t0, output);
        printf("  events      %lld train, %lld held out (%lld valid, %lld test), %lld hidden\n", (long long)c->n_train,
               (long long)(c->n_valid + c->n_test), (long long)c->n_valid, (long long)c->n_test, (long long)c->n_hidden);
        if (p.protocol == CR_PROTO_COLD_USER && !p.users_file)
            printf("  eligible    %lld users with events in %s and another domain\n", (long long)c->eligible_users, tname);
        const char *part_names[2] = {"valid", "test"};
        int64_t held[2] = {c->held_valid_users, c->held_test_users}, none[2] = {c->valid_no_truth, c->test_no_truth};
        int64_t pairs[2] = {c->valid_pairs, c->test_pairs};
        for (int k = 0; k < 2; k++) {
            printf("  %-11s %lld users, %lld (user, item) pairs", part_names[k], (long long)(held[k] - none[k]), (long long)pairs[k]);
            if (none[k]) printf("; %lld more held-out users have no %s events (not evaluated)", (long long)none[k], tname);
            printf("\n");
        }
        if (tname) printf("  candidates  %lld items of %s\n", (long long)c->n_candidates, tname);
        else printf("  candidates  %lld items (all domains)\n", (long long)c->n_candidates);
        if (p.sampled) printf("  sampled     %lld negatives per held-out pair\n", (long long)p.sampled);
        if (export_dir) printf("  exported    %s/train.tsv, valid.tsv, test.tsv\n", export_dir);
    }
    cr_split_free(s);
    cr_dataset_free(d);
    return 0;
}

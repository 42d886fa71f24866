/* cmd_synth.c — `crossrec synth`: writes a synthetic multi-domain dataset (interactions.tsv, items.tsv) with
 * cr_synth_write. Option defaults come from cr_synth_default_params(), so --help shows the live values. */
#include "cli.h"

#include "crossrec/data.h"

#include <limits.h>
#include <stdio.h>

static const cli_cmd_info info = {
    "synth",
    "synth -o DIR [--users N] [--items N] [--interactions N] [--domains N] [--topics N] [--item-zipf X] "
    "[--user-zipf X] [--multi-domain X] [--topic-share X] [--new-items X] [--seed N]",
    "Write a synthetic multi-domain dataset to DIR/interactions.tsv and DIR/items.tsv (the layout `crossrec\n"
    "import` reads). Latent topics are shared across domains: users keep their tastes from one domain to the\n"
    "next, and item titles carry their topics' words, so cross-domain and text-based transfer can be learned.\n"
    "The same options give byte-identical files.",
};

int cmd_synth(int argc, char **argv) {
    cr_synth_params p = cr_synth_default_params();
    const char *out = NULL;
    /* the parser stores int64_t and double; narrow fields go through these */
    int64_t domains = p.n_domains, topics = p.n_topics, seed = (int64_t)p.seed;
    cli_opt opts[] = {
        {"out", 'o', CLI_STR, &out, NULL, 0, "DIR", "output directory (created with its parents)"},
        {"users", 0, CLI_INT, &p.n_users, NULL, 0, "N", "users; each has at least one interaction"},
        {"items", 0, CLI_INT, &p.n_items, NULL, 0, "N", "catalogue items (at least --domains)"},
        {"interactions", 0, CLI_INT, &p.n_inter, NULL, 0, "N", "interaction lines, exactly (at least --users)"},
        {"domains", 0, CLI_INT, &domains, NULL, 0, "N", "domains: books, music, movies, office, ... (1..1000)"},
        {"topics", 0, CLI_INT, &topics, NULL, 0, "N", "latent topics shared across domains (1..1000)"},
        {"item-zipf", 0, CLI_F64, &p.item_zipf, NULL, 0, "X", "item popularity exponent within a domain"},
        {"user-zipf", 0, CLI_F64, &p.user_zipf, NULL, 0, "X", "user activity exponent"},
        {"multi-domain", 0, CLI_F64, &p.multi_domain_share, NULL, 0, "X", "share of users active in 2+ domains"},
        {"topic-share", 0, CLI_F64, &p.topic_share, NULL, 0, "X",
         "share of events chosen by user taste (0: popularity only, no personal signal)"},
        {"new-items", 0, CLI_F64, &p.new_item_share, NULL, 0, "X", "share of items with no interaction (new arrivals)"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "random seed"},
        {NULL, 0, CLI_FLAG, NULL, NULL, 0, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 0, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (!out) return cli_usage_error(&info, "no output directory (-o DIR)");
    if (domains < INT_MIN || domains > INT_MAX) return cli_usage_error(&info, "--domains %lld is out of range", (long long)domains);
    if (topics < INT_MIN || topics > INT_MAX) return cli_usage_error(&info, "--topics %lld is out of range", (long long)topics);
    p.n_domains = (int)domains;
    p.n_topics = (int)topics;
    p.seed = (uint64_t)seed;
    const char *bad = cr_synth_check_params(&p);
    if (bad) return cli_usage_error(&info, "%s", bad);

    double t0 = cr_now();
    cr_status st = cr_synth_write(out, &p);
    if (st) return cli_fail(st);
    printf("wrote %s/interactions.tsv (%lld interactions, %lld users) and %s/items.tsv (%lld items, %d domains, "
           "%d topics) in %.2f s\n",
           out, (long long)p.n_inter, (long long)p.n_users, out, (long long)p.n_items, p.n_domains, p.n_topics,
           cr_now() - t0);
    return 0;
}

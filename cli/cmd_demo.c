/* cmd_demo.c — `crossrec demo`: the whole pipeline on built-in synthetic data, as the commands a person would
 * type (each printed, then run through the same code as on the command line): synth, import, stats, a
 * cold-user split on the thinnest domain, pop, itemknn, cmf and tower, compare, report. Ends with what to open
 * and what to try next. */
#include "cli.h"
#include "crossrec/data.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const cli_cmd_info info = {
    "demo",
    "demo [--dir DIR] [--seed N] [--threads N]",
    "Generates a synthetic multi-domain dataset (shared latent topics, Zipf popularity, titles that carry the\n"
    "topics), imports and describes it, holds out users cold in the thinnest domain (cold-user protocol), trains\n"
    "pop, itemknn, cmf and tower, compares them and writes DIR/report.html. Every step is printed as the command\n"
    "that does it, so the same pipeline runs on your data by changing the file names.",
};

/* Prints argv as a command line (arguments with spaces in quotes) and runs it; returns its exit code. */
static int run(int (*fn)(int, char **), int argc, char **argv) {
    printf("\n$ crossrec");
    for (int i = 0; i < argc; i++) printf(strchr(argv[i], ' ') ? " '%s'" : " %s", argv[i]);
    printf("\n");
    fflush(stdout);
    return fn(argc, argv);
}
#define RUN(fn, ...)                                                                   \
    do {                                                                               \
        char *args_[] = {__VA_ARGS__};                                                 \
        int rc_ = run(fn, (int)(sizeof args_ / sizeof args_[0]), args_);               \
        if (rc_) return rc_;                                                           \
    } while (0)

/* The domain with the fewest events: where transfer matters. Writes its name into buf. */
static cr_status thinnest_domain(const char *crd, char *buf, size_t cap) {
    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, crd);
    if (st) return st;
    const cr_interactions *v = cr_dataset_inter(d);
    int64_t *events = cr_calloc((size_t)v->n_domains, sizeof *events);
    if (!events) {
        cr_dataset_free(d);
        return cr_fail(CR_ERR_NOMEM, "out of memory");
    }
    for (int64_t e = 0; e < v->n_inter; e++) events[v->item_domain[v->user_items[e]]]++;
    int32_t target = 0;
    for (int32_t k = 1; k < (int32_t)v->n_domains; k++)
        if (events[k] < events[target]) target = k;
    snprintf(buf, cap, "%s", cr_dataset_domain_name(d, target));
    cr_free(events);
    cr_dataset_free(d);
    return CR_OK;
}

int cmd_demo(int argc, char **argv) {
    const char *dir = "demo";
    int64_t seed = (int64_t)cr_synth_default_params().seed, threads = 1;
    const cli_opt opts[] = {
        {"dir", 0, CLI_STR, &dir, NULL, 0, "DIR", "where to write the demo files"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "N", "random seed"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N",
         "threads (0: all cores); the demo's models are small, and one thread is the fastest on a busy machine"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 0, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (seed < 0) return cli_usage_error(&info, "--seed must be >= 0");
    if (threads < 0 || threads > 4096) return cli_usage_error(&info, "--threads must be 0..4096");
    if (threads > 0) {
        /* OpenMP and OpenBLAS alike: small batches gain nothing from more threads and lose much when cores are shared */
#ifdef _OPENMP
        omp_set_num_threads((int)threads);
#endif
        openblas_set_num_threads((int)threads);
    }
    double t0 = cr_now();
    char data[4096], crd[4200], crs[4300], pop[4200], knn[4200], cmf[4200], tower[4200], cmf_log[4200], tower_log[4200],
        html[4200], seed_text[32], target[256];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(crd, sizeof crd, "%s/data.crd", dir);
    snprintf(pop, sizeof pop, "%s/pop.crm", dir);
    snprintf(knn, sizeof knn, "%s/itemknn.crm", dir);
    snprintf(cmf, sizeof cmf, "%s/cmf.crm", dir);
    snprintf(tower, sizeof tower, "%s/tower.crm", dir);
    snprintf(cmf_log, sizeof cmf_log, "%s/cmf.tsv", dir);
    snprintf(tower_log, sizeof tower_log, "%s/tower.tsv", dir);
    snprintf(html, sizeof html, "%s/report.html", dir);
    snprintf(seed_text, sizeof seed_text, "%lld", (long long)seed);

    printf("crossrec demo: a shop with several product categories (domains), users who buy in some of them, and a\n"
           "thin category where many users have never bought. Can what they did elsewhere predict what they take there?\n");
    printf("\n== 1. data: synthetic interactions and a catalogue with titles, in the layout `crossrec import` reads\n");
    RUN(cmd_synth, "synth", "-o", data, "--seed", seed_text);
    RUN(cmd_import, "import", data, "-o", crd);
    RUN(cmd_stats, "stats", crd);

    cr_status st = thinnest_domain(crd, target, sizeof target);
    if (st) return cli_fail(st);
    snprintf(crs, sizeof crs, "%s/cold-%s.crs", dir, target);
    printf("\n== 2. split: the thinnest domain, '%s', is the target. 20%% of the users active there and elsewhere lose\n"
           "   their '%s' history: the test (and validation) users, cold in '%s', known only by their other domains.\n",
           target, target, target);
    RUN(cmd_split, "split", crd, "--protocol", "cold-user", "--target", target, "--seed", seed_text, "-o", crs);

    printf("\n== 3. models: popularity, item-kNN over all domains, collective MF (user factors shared by the domains) and\n"
           "   tower, crossrec's transfer model (item tower from id, text and domain; user tower over the history)\n");
    RUN(cmd_train, "train", crs, "--model", "pop", "-o", pop);
    RUN(cmd_train, "train", crs, "--model", "itemknn", "-o", knn);
    RUN(cmd_train, "train", crs, "--model", "cmf", "--log", cmf_log, "-o", cmf);
    RUN(cmd_train, "train", crs, "--model", "tower", "--dim", "32", "--text-buckets", "4096", "--epochs", "3", "--log", tower_log,
        "-o", tower);

    printf("\n== 4. comparison on the test users: every '%s' item ranked for each, ties counted against the model\n", target);
    RUN(cmd_compare, "compare", crs, pop, knn, cmf, tower, "--k", "10");
    RUN(cmd_report, "report", crs, pop, knn, cmf, tower, "--log", cmf_log, "--log", tower_log, "-o", html, "--quiet");

    char *abs = realpath(html, NULL);
    printf("\ndone in %.1f s.\n\nOpen the report in a browser (one file, nothing to install or fetch):\n  file://%s\n", cr_now() - t0,
           abs ? abs : html);
    free(abs);
    printf("\nTry next:\n");
    printf("  crossrec eval %s %s --per-user per-user.tsv       # every metric, and one row per user\n", crs, tower);
    printf("  crossrec train %s --model tower --dim 32 --text-buckets 4096 --epochs 3 --dann 0.1 -o %s/tower-dann.crm\n", crs,
           dir);
    printf("      # domain-adversarial alignment; add it to the report and compare the item maps\n");
    printf("\nOn your own data (docs/TUTORIAL.md goes through it on Amazon Arts -> Office):\n");
    printf("  crossrec import --interactions interactions.tsv --items items.tsv -o data.crd\n");
    printf("  crossrec stats data.crd\n");
    printf("  crossrec split data.crd --protocol cold-user --target CATEGORY -o s.crs\n");
    printf("  crossrec train s.crs --model itemknn -o knn.crm\n");
    printf("  crossrec train s.crs --model tower --log tower.tsv -o tower.crm\n");
    printf("  crossrec report s.crs knn.crm tower.crm --log tower.tsv -o report.html\n");
    return 0;
}

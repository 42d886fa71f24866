/* cmd_import.c — `crossrec import`: text logs and catalogues -> .crd dataset. */
#include "cli.h"
#include "crossrec/data.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const cli_cmd_info info = {
    "import",
    "import --interactions FILE [--items FILE] -o data.crd [options]\n       crossrec import DIR -o data.crd   "
    "(DIR/interactions.tsv[.gz] and DIR/items.tsv[.gz])",
    "Reads interaction logs (TSV, CSV, JSON Lines or RecBole .inter, optionally gzip'ed) and item catalogues into a\n"
    "dataset file. Without column options the canonical layout is read (user item timestamp value / item domain\n"
    "title text) or common aliases (user_id, item_id, rating, ...). Several --interactions files without a\n"
    "catalogue become one domain each, named after the file.",
};

static const char *format_names[] = {"auto", "tsv", "csv", "jsonl", "recbole"};

/* DIR/name or DIR/name.gz, whichever exists, into buf; 0 if neither. */
static int find_in_dir(const char *dir, const char *name, char *buf, size_t cap) {
    struct stat st;
    snprintf(buf, cap, "%s/%s", dir, name);
    if (stat(buf, &st) == 0) return 1;
    snprintf(buf, cap, "%s/%s.gz", dir, name);
    return stat(buf, &st) == 0;
}

int cmd_import(int argc, char **argv) {
    cr_import_params p = cr_import_default_params();
    const char *output = NULL, *format = "auto", *delimiter = NULL;
    int64_t max_line = p.table.max_line;
    int quiet = 0;
    const cli_opt opts[] = {
        {"interactions", 0, CLI_STR_LIST, p.interactions, &p.n_interactions, CR_MAX_INPUT_FILES, "FILE", "interaction log"},
        {"items", 0, CLI_STR_LIST, p.items, &p.n_items, CR_MAX_INPUT_FILES, "FILE", "item catalogue"},
        {"output", 'o', CLI_STR, &output, NULL, 0, "FILE", "dataset file to write (.crd)"},
        {"format", 0, CLI_STR, &format, NULL, 0, "FMT", "auto|tsv|csv|jsonl|recbole"},
        {"delimiter", 0, CLI_STR, &delimiter, NULL, 0, "C", "CSV delimiter (detected from the header when absent)"},
        {"user-col", 0, CLI_STR, &p.user_col, NULL, 0, "NAME", "user column"},
        {"item-col", 0, CLI_STR, &p.item_col, NULL, 0, "NAME", "item column (interactions and catalogue)"},
        {"time-col", 0, CLI_STR, &p.time_col, NULL, 0, "NAME", "timestamp column (integer)"},
        {"value-col", 0, CLI_STR, &p.value_col, NULL, 0, "NAME", "value/rating column"},
        {"domain-col", 0, CLI_STR, &p.domain_col, NULL, 0, "NAME", "catalogue domain/category column"},
        {"title-col", 0, CLI_STR, &p.title_col, NULL, 0, "NAME", "catalogue title column"},
        {"text-col", 0, CLI_STR, &p.text_col, NULL, 0, "NAME", "catalogue text column"},
        {"skip-bad-lines", 0, CLI_FLAG, &p.skip_bad_lines, NULL, 0, NULL, "skip malformed lines, count and report them"},
        {"allow-unknown-items", 0, CLI_FLAG, &p.allow_unknown_items, NULL, 0, NULL, "items missing from the catalogue get domain 'unknown'"},
        {"dedup", 0, CLI_FLAG, &p.dedup, NULL, 0, NULL, "merge repeated (user, item) events (keeps the latest)"},
        {"max-line", 0, CLI_INT, &max_line, NULL, 0, "BYTES", "longest accepted line"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "print nothing on success"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    char dir_inter[4096], dir_items[4096];
    if (n_pos == 1) {
        if (p.n_interactions) return cli_usage_error(&info, "give either a directory or --interactions, not both");
        if (!find_in_dir(pos[0], "interactions.tsv", dir_inter, sizeof dir_inter))
            return cli_usage_error(&info, "%s has no interactions.tsv or interactions.tsv.gz", pos[0]);
        p.interactions[p.n_interactions++] = dir_inter;
        if (!p.n_items && find_in_dir(pos[0], "items.tsv", dir_items, sizeof dir_items)) p.items[p.n_items++] = dir_items;
    }
    if (!p.n_interactions) return cli_usage_error(&info, "no input: give --interactions FILE (or a directory)");
    if (!output) return cli_usage_error(&info, "no output file: give -o data.crd");
    int fmt = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(format, format_names[i])) fmt = i;
    if (fmt < 0) return cli_usage_error(&info, "--format must be one of auto, tsv, csv, jsonl, recbole (got '%s')", format);
    p.table.format = (cr_table_format)fmt;
    if (delimiter) {
        if (!strcmp(delimiter, "\\t") || !strcmp(delimiter, "tab")) p.table.delimiter = '\t';
        else if (strlen(delimiter) == 1) p.table.delimiter = delimiter[0];
        else return cli_usage_error(&info, "--delimiter must be one character (or 'tab')");
    }
    if (max_line < 16) return cli_usage_error(&info, "--max-line must be at least 16");
    p.table.max_line = max_line;

    double t0 = cr_now();
    cli_progress pr;
    p.progress = cli_progress_start(&pr, "import", "byte", quiet);
    cr_dataset *d;
    cr_import_report rep;
    cr_status st = cr_dataset_import(&d, &p, &rep);
    if (!st && (st = cr_dataset_save(d, output))) cr_dataset_free(d);
    if (st) {
        cli_progress_end(&pr, stderr, NULL);
        return cli_fail(st);
    }
    const cr_interactions *v = cr_dataset_inter(d);
    cli_progress_end(&pr, stdout, "imported %lld interactions (%lld users, %lld items, %lld domains) from %lld lines in %.2f s -> %s",
                     (long long)v->n_inter, (long long)v->n_users, (long long)v->n_items, (long long)v->n_domains,
                     (long long)rep.lines, cr_now() - t0, output);
    if (!quiet) {
        if (rep.skipped)
            printf("skipped %lld bad lines (--skip-bad-lines); the first: %s\n", (long long)rep.skipped, rep.first_skipped);
        if (rep.duplicates)
            printf("kept %lld repeated (user, item) events as separate events (--dedup merges them)\n", (long long)rep.duplicates);
        if (rep.merged) printf("merged %lld repeated (user, item) events (--dedup)\n", (long long)rep.merged);
        if (rep.unknown_items)
            printf("%lld items were not in the catalogue and have domain 'unknown'\n", (long long)rep.unknown_items);
    }
    cr_dataset_free(d);
    return 0;
}

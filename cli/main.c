/* main.c — the crossrec binary: dispatches to one cmd_*.c per subcommand. The only place that exits. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"import", cmd_import, "read interaction logs and a catalogue (tsv/csv/jsonl/RecBole, .gz) into a .crd dataset"},
    {"stats", cmd_stats, "describe a dataset: per-domain counts, user overlap between domains, history lengths"},
    {"inspect", cmd_inspect, "print the metadata and arrays of any crossrec file and verify its checksum"},
    {"split", cmd_split, "hold out events once for evaluation: cold-user, warm or new-domain protocols (.crs)"},
    {"synth", cmd_synth, "write a synthetic multi-domain dataset (interactions.tsv, items.tsv)"},
    {"train", cmd_train, "fit a model (pop, itemknn, bpr, als, cmf, emcdr, ptupcdr, tower) on a split's training part (.crm)"},
    {"eval", cmd_eval, "exact metrics of a model on a split (full ranking, pessimistic ties), with breakdowns"},
    {"compare", cmd_compare, "several models on one split: one table, bootstrap intervals of the differences"},
    {"report", cmd_report, "an HTML page of several models on one split: table, curves, groups, item maps, examples"},
    {"pretrain", cmd_pretrain, "train a text encoder on the catalogue's item text alone (title <-> attributes contrastive)"},
    {"embed", cmd_embed, "item vectors from item text (hash-tfidf, minilm, word vectors, pretrained) as a NumPy .npy file"},
    {"similar-text", cmd_similar_text, "an item's nearest items by text (cosine), in its domain or any"},
    {"recommend", cmd_recommend, "top-K items of a domain for known users or an ad-hoc history (tsv or jsonl)"},
    {"similar", cmd_similar, "an item's most similar items by a model, in its domain or another"},
    {"serve", cmd_serve, "answer recommendations over HTTP (JSON API, metrics, reload, a web page)"},
    {"demo", cmd_demo, "run the whole pipeline on built-in synthetic data"},
    {"models", cmd_models, NULL},   /* used by `make models`; not listed */
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *out) {
    fprintf(out, "crossrec %s — cross-domain recommendation by transfer learning\n\n", CR_VERSION_STRING);
    fprintf(out, "usage: crossrec COMMAND [options]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        if (commands[i].summary) fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  crossrec COMMAND --help     the command's options, each with its default\n"
                 "  crossrec help --all         every command's options\n"
                 "  crossrec --version          the version\n"
                 "\nStart with `crossrec demo`; docs/TUTORIAL.md goes from raw files to a served model.\n");
}

/* The command named `name`, or NULL after printing the nearest names as a hint. */
static const command *find_command(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return &commands[i];
    int best = -1, best_d = 1 << 30;
    for (int i = 0; i < N_COMMANDS; i++) {
        int d = cli_edit_distance(name, commands[i].name);
        if (d < best_d) best_d = d, best = i;
    }
    fprintf(stderr, "crossrec: unknown command '%s'\n", name);
    if (best >= 0 && best_d <= 3) fprintf(stderr, "hint: did you mean 'crossrec %s'?\n", commands[best].name);
    else fprintf(stderr, "hint: run 'crossrec --help' for the list of commands\n");
    return NULL;
}

/* `crossrec help [COMMAND | --all]` (or --help, -h) */
static int help(int argc, char **argv) {
    if (argc < 3) {
        usage(stdout);
        return 0;
    }
    char opt[] = "--help", *args[2] = {NULL, opt};
    if (strcmp(argv[2], "--all")) {
        const command *c = find_command(argv[2]);
        if (!c) return 2;
        args[0] = (char *)c->name;
        return c->fn(2, args);
    }
    usage(stdout);
    for (int i = 0; i < N_COMMANDS; i++) {
        if (!commands[i].summary) continue;
        printf("\n--------------------------------------------------------------------------------\n");
        args[0] = (char *)commands[i].name;
        commands[i].fn(2, args);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) return help(argc, argv);
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("crossrec %s\n", CR_VERSION_STRING);
        return 0;
    }
    const command *c = find_command(name);
    return c ? c->fn(argc - 1, argv + 1) : 2;
}

/* cli.h — shared pieces of the crossrec command line: option parsing, error printing, command table.
 * Each subcommand is `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand name) returning the
 * exit code: 0 ok, 1 runtime error, 2 usage error. Only main() calls exit(). */
#ifndef CROSSREC_CLI_H
#define CROSSREC_CLI_H

#include "crossrec/core.h"

#include <stdint.h>
#include <stdio.h>

typedef enum { CLI_FLAG, CLI_STR, CLI_INT, CLI_F64, CLI_STR_LIST } cli_kind;

typedef struct {
    const char *name;       /* long name without dashes: "interactions" */
    char short_name;        /* 'o', or 0 */
    cli_kind kind;
    void *dest;             /* int* (FLAG), const char** (STR), int64_t* (INT), double* (F64), const char** (LIST) */
    int *count;             /* LIST: number stored so far */
    int max;                /* LIST: capacity of dest */
    const char *meta;       /* value placeholder in help: "FILE" */
    const char *help;       /* one line; the live default is appended from *dest */
} cli_opt;

typedef struct {
    const char *name;       /* "import" */
    const char *usage;      /* "import --interactions F [--items F] -o data.crd" */
    const char *summary;    /* one line */
} cli_cmd_info;

/* Parses long options anywhere (--name value, --name=value, -o value), positional arguments into pos[] (at
 * most max_pos), `--` ends options. Returns 0 to go on, 2 after printing a usage error (with the nearest
 * option name when the name is unknown), and -1 after printing help for --help/-h (caller returns 0). */
int cli_parse(const cli_cmd_info *info, const cli_opt *opts, int argc, char **argv, const char **pos, int max_pos,
              int *n_pos);
void cli_print_help(const cli_cmd_info *info, const cli_opt *opts);
/* Prints "crossrec: error: <message>" and "hint: <hint>" (when set) to stderr; returns 1. */
int cli_fail(cr_status st);
/* Prints a usage error ("crossrec CMD: ...") with the usage line; returns 2. */
int cli_usage_error(const cli_cmd_info *info, const char *fmt, ...) CR_PRINTF(2, 3);
/* Edit distance, for "did you mean" suggestions. */
int cli_edit_distance(const char *a, const char *b);
/* Parses "10,20,50" into ks (at most max values, each 1..100000); 0 on success, -1 if malformed. */
int cli_parse_ks(const char *text, int *ks, int *n_k, int max);
/* Whether stderr is a terminal (progress lines only then). */
int cli_stderr_tty(void);
/* 1234567 -> "1,234,567" into buf; returns buf. */
const char *cli_commas(int64_t v, char *buf, size_t cap);

/* The progress line of a long command and its summary line (progress.c). */
typedef struct {
    const char *task;       /* "eval" */
    const char *unit_one;   /* "user" */
    char unit[24];          /* "users" */
    int bytes;              /* the unit is "byte": shown as MB */
    int quiet, shown;
    double t0, last_draw;
    int64_t last_done;      /* at the last draw */
} cli_progress;

/* Starts the clock of `task` counted in `unit` (singular: "user", "epoch", "item"; "byte" shows MB) and returns
 * the sink to put into the library call's params: one that draws on stderr when it is a terminal and quiet is 0,
 * else a silent one. p must stay in place until cli_progress_end. */
cr_progress cli_progress_start(cli_progress *p, const char *task, const char *unit, int quiet);
/* Takes the progress line down and, unless quiet, prints fmt (the command's summary line, NULL for none) and a
 * newline to out. */
void cli_progress_end(cli_progress *p, FILE *out, const char *fmt, ...) CR_PRINTF(3, 4);

int cmd_import(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_similar_text(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_similar(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);

#endif

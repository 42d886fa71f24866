/* cli.c — option parsing with live defaults in help, "did you mean", error printing. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return 1 << 20;
    int row[65];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

int cli_stderr_tty(void) { return isatty(2); }

int cli_fail(cr_status st) {
    const char *msg = cr_errmsg();
    fprintf(stderr, "crossrec: error: %s\n", msg[0] ? msg : cr_status_str(st));
    if (cr_errhint()[0]) fprintf(stderr, "hint: %s\n", cr_errhint());
    return 1;
}

int cli_usage_error(const cli_cmd_info *info, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "crossrec %s: %s\nusage: crossrec %s\nhint: crossrec %s --help lists the options\n", info->name, buf,
            info->usage, info->name);
    return 2;
}

/* The option's current value (set from the live defaults before parsing) as " (default: X)" into buf. */
static void format_default(const cli_opt *o, char *buf, size_t cap) {
    buf[0] = '\0';
    switch (o->kind) {
    case CLI_FLAG: break;
    case CLI_STR:
        if (*(const char **)o->dest) snprintf(buf, cap, " (default: %s)", *(const char **)o->dest);
        break;
    case CLI_INT: snprintf(buf, cap, " (default: %lld)", (long long)*(int64_t *)o->dest); break;
    case CLI_F64: snprintf(buf, cap, " (default: %g)", *(double *)o->dest); break;
    case CLI_STR_LIST: if (o->max > 1) snprintf(buf, cap, " (repeatable)"); break;
    }
}

#define HELP_COL 33     /* where the help text starts */
#define HELP_WIDTH 118  /* longest line before wrapping */

/* Prints text from column HELP_COL, wrapped at spaces to HELP_WIDTH, continuation lines indented to HELP_COL. */
static void print_wrapped(const char *text) {
    int col = HELP_COL;
    for (const char *s = text; *s;) {
        while (*s == ' ') s++;
        size_t len = strcspn(s, " ");
        if (!len) break;
        if (col > HELP_COL && col + 1 + (int)len > HELP_WIDTH) {
            printf("\n%*s", HELP_COL, "");
            col = HELP_COL;
        } else if (col > HELP_COL) {
            putchar(' ');
            col++;
        }
        printf("%.*s", (int)len, s);
        col += (int)len;
        s += len;
    }
    putchar('\n');
}

void cli_print_help(const cli_cmd_info *info, const cli_opt *opts) {
    printf("usage: crossrec %s\n\n%s\n\noptions:\n", info->usage, info->summary);
    for (const cli_opt *o = opts; o && o->name; o++) {
        char left[96], def[160], text[1024];
        int n = o->short_name ? snprintf(left, sizeof left, "-%c, --%s", o->short_name, o->name)
                              : snprintf(left, sizeof left, "    --%s", o->name);
        if (o->kind != CLI_FLAG && o->meta) snprintf(left + n, sizeof left - (size_t)n, " %s", o->meta);
        format_default(o, def, sizeof def);
        snprintf(text, sizeof text, "%s%s", o->help ? o->help : "", def);
        printf("  %-30s ", left);
        if ((int)strlen(left) > 30) printf("\n%*s", HELP_COL, "");
        print_wrapped(text);
    }
    printf("  %-30s %s\n", "-h, --help", "print this help");
}

static int set_value(const cli_cmd_info *info, const cli_opt *o, const char *v) {
    char *end;
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = 1; return 0;
    case CLI_STR: *(const char **)o->dest = v; return 0;
    case CLI_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) return cli_usage_error(info, "--%s expects an integer, got '%s'", o->name, v);
        *(int64_t *)o->dest = x;
        return 0;
    }
    case CLI_F64: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end) return cli_usage_error(info, "--%s expects a number, got '%s'", o->name, v);
        *(double *)o->dest = x;
        return 0;
    }
    case CLI_STR_LIST:
        if (*o->count >= o->max) return cli_usage_error(info, "--%s given more than %d times", o->name, o->max);
        ((const char **)o->dest)[(*o->count)++] = v;
        return 0;
    }
    return 0;
}

int cli_parse(const cli_cmd_info *info, const cli_opt *opts, int argc, char **argv, const char **pos, int max_pos,
              int *n_pos) {
    int np = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
            if (np >= max_pos) return cli_usage_error(info, "unexpected argument '%s'", a);
            pos[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_print_help(info, opts);
            return -1;
        }
        const cli_opt *o = NULL;
        const char *inline_val = NULL;
        char name[128];
        if (a[1] == '-') {
            snprintf(name, sizeof name, "%s", a + 2);
            char *eq = strchr(name, '=');
            if (eq) {
                *eq = '\0';
                inline_val = a + 2 + (eq - name) + 1;
            }
            for (const cli_opt *p = opts; p && p->name; p++)
                if (!strcmp(p->name, name)) o = p;
        } else if (a[1] && !a[2]) {
            snprintf(name, sizeof name, "%s", a + 1);
            for (const cli_opt *p = opts; p && p->name; p++)
                if (p->short_name == a[1]) o = p;
        } else {
            snprintf(name, sizeof name, "%s", a + 1);
        }
        if (!o) {
            const cli_opt *best = NULL;
            int best_d = 1 << 30;
            for (const cli_opt *p = opts; p && p->name; p++) {
                int d = cli_edit_distance(name, p->name);
                if (d < best_d) best_d = d, best = p;
            }
            if (best && best_d <= 3) return cli_usage_error(info, "unknown option '%s' (did you mean --%s?)", a, best->name);
            return cli_usage_error(info, "unknown option '%s'", a);
        }
        if (o->kind == CLI_FLAG) {
            if (inline_val) return cli_usage_error(info, "--%s takes no value", o->name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *v = inline_val;
        if (!v) {
            if (i + 1 >= argc) return cli_usage_error(info, "option --%s needs a value (%s)", o->name, o->meta ? o->meta : "VALUE");
            v = argv[++i];
        }
        int rc = set_value(info, o, v);
        if (rc) return rc;
    }
    *n_pos = np;
    return 0;
}

int cli_parse_ks(const char *text, int *ks, int *n_k, int max) {
    int n = 0;
    const char *s = text;
    while (*s) {
        char *end;
        long k = strtol(s, &end, 10);
        if (end == s || k < 1 || k > 100000 || n >= max || (*end && *end != ',')) return -1;
        ks[n++] = (int)k;
        s = *end ? end + 1 : end;
    }
    *n_k = n;
    return n ? 0 : -1;
}

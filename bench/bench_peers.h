/* bench_peers.h — what the bench programs share to run their peers: shell commands, whole-file reads, and the
 * bench-only Python environment bench/.venv, made on first use from bench/peers/requirements.txt (one
 * environment for all peers: LightFM, implicit, faiss). Header-only, included by the bench programs (each of
 * which is one file: the Makefile builds every bench C file as a program). */
#ifndef CROSSREC_BENCH_PEERS_H
#define CROSSREC_BENCH_PEERS_H

#include "crossrec/core.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define VENV "bench/.venv"
#define REQUIREMENTS "bench/peers/requirements.txt"
#define BENCH_UNUSED __attribute__((unused))

/* Runs a shell command; returns its exit status (-1 when it could not run or was killed). */
BENCH_UNUSED static int sh(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* The whole file as a NUL-terminated string (caller frees), or NULL. */
BENCH_UNUSED static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    fclose(f);
    if (b) b[n] = '\0';
    return b;
}

/* Prints the last `lines` lines of a file, indented, so a failure shows its cause. */
BENCH_UNUSED static void print_tail(const char *path, int lines) {
    char *s = slurp(path);
    if (!s) return;
    size_t n = strlen(s);
    while (n && s[n - 1] == '\n') s[--n] = '\0';
    char *p = s + n;
    for (int k = 0; p > s && k < lines; k++) {
        p--;
        while (p > s && p[-1] != '\n') p--;
    }
    for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n")) printf("    | %s\n", line);
    free(s);
}

BENCH_UNUSED static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* The last line of a file that parses as a JSON object (caller json_decref's), or NULL. */
BENCH_UNUSED static json_t *last_json(const char *path) {
    char *s = slurp(path);
    if (!s) return NULL;
    json_t *best = NULL;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '{') continue;
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        if (j && json_is_object(j)) {
            json_decref(best);
            best = j;
        } else {
            json_decref(j);
        }
    }
    free(s);
    return best;
}

/* Makes bench/.venv and installs bench/peers/requirements.txt into it, unless the copy of the requirements
 * kept from the last good install is identical. Lines marked "# legacy-build" are installed in a second
 * step with --no-use-pep517 (see the file). Returns 0 when the environment is complete, else prints why
 * (after which the peers that did install still run; a missing one reports itself). */
BENCH_UNUSED static int ensure_venv(const char *logdir) {
    char *want = slurp(REQUIREMENTS);
    if (!want) {
        printf("peers: %s not found (run from the repository root)\n", REQUIREMENTS);
        return -1;
    }
    char *have = slurp(VENV "/.installed-requirements");
    int same = have && !strcmp(have, want);
    free(have);
    if (same && file_exists(VENV "/bin/python")) {
        free(want);
        return 0;
    }
    char log[4200];
    snprintf(log, sizeof log, "%s/venv.log", logdir);
    if (!file_exists(VENV "/bin/python")) {
        printf("peers: creating %s (python3 -m venv) ...\n", VENV);
        fflush(stdout);
        if (sh("python3 -m venv " VENV " > '%s' 2>&1", log)) {
            printf("peers: cannot create %s (Debian: apt-get install python3-venv); peers left out:\n", VENV);
            print_tail(log, 5);
            free(want);
            return -1;
        }
    }
    FILE *plain = fopen(VENV "/requirements-plain.txt", "w"), *legacy = fopen(VENV "/requirements-legacy.txt", "w");
    int n_legacy = 0;
    if (!plain || !legacy) {
        printf("peers: cannot write into %s\n", VENV);
        if (plain) fclose(plain);
        if (legacy) fclose(legacy);
        free(want);
        return -1;
    }
    char *copy = strdup(want), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int is_legacy = strstr(line, "# legacy-build") != NULL;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        if (!line[strspn(line, " \t\r")]) continue;
        fprintf(is_legacy ? legacy : plain, "%s\n", line);
        n_legacy += is_legacy;
    }
    free(copy);
    fclose(plain);
    fclose(legacy);
    printf("peers: installing %s into %s (pip; once) ...\n", REQUIREMENTS, VENV);
    fflush(stdout);
    int bad = 0;
    if (sh(VENV "/bin/pip install -q -r " VENV "/requirements-plain.txt >> '%s' 2>&1", log)) {
        printf("peers: pip install of %s failed (see %s):\n", REQUIREMENTS, log);
        print_tail(log, 6);
        bad = 1;
    }
    if (!bad && n_legacy && sh(VENV "/bin/pip install -q --no-use-pep517 -r " VENV "/requirements-legacy.txt >> '%s' 2>&1", log)) {
        printf("peers: pip install --no-use-pep517 of the legacy-build lines failed (see %s):\n", log);
        print_tail(log, 6);
        bad = 1;
    }
    if (!bad) {
        FILE *f = fopen(VENV "/.installed-requirements", "w");
        if (f) fputs(want, f), fclose(f);
    }
    free(want);
    return bad ? -1 : 0;
}

#endif

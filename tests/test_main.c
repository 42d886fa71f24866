/* test_main.c — registry and runner for the harness in test.h. */
#include "test.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct { const char *name; cr_test_fn fn; } tests[MAX_TESTS];
static int n_tests;
static jmp_buf test_jmp;
static char fail_msg[2048];
static int skipped;

void cr_test_register(const char *name, cr_test_fn fn) {
    CR_ASSERT(n_tests < MAX_TESTS);
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

void cr_test_fail(const char *file, int line, const char *fmt, ...) {
    int n = snprintf(fail_msg, sizeof fail_msg, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg + n, sizeof fail_msg - (size_t)n, fmt, ap);
    va_end(ap);
    longjmp(test_jmp, 1);
}

void cr_test_skip(const char *why) {
    snprintf(fail_msg, sizeof fail_msg, "%s", why);
    skipped = 1;
    longjmp(test_jmp, 1);
}

static char tmpdir[256];

const char *cr_test_tmpdir(void) {
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/crossrec-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

const char *cr_test_path(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, 512, "%s/%s", cr_test_tmpdir(), name);
    return b;
}

const char *cr_test_write(const char *name, const char *data, long len) {
    const char *path = cr_test_path(name);
    FILE *f = fopen(path, "wb");
    CR_ASSERT(f);
    size_t n = len < 0 ? strlen(data) : (size_t)len;
    CR_ASSERT(fwrite(data, 1, n, f) == n);
    fclose(f);
    return path;
}

char *cr_test_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int cr_test_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

const char *cr_test_shared_data(void) {
    const char *env = getenv("CROSSREC_SHARED_DATA");
    const char *dir = env && *env ? env : "../shared/data";
    return cr_test_file_exists(dir) ? dir : NULL;
}

int cr_test_cli(char **out, const char *args_fmt, ...) {
    char args[4096], cmd[4608];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    const char *bin = getenv("CROSSREC_BIN");
    const char *outpath = cr_test_path("cli-output.txt");
    snprintf(cmd, sizeof cmd, "%s %s >'%s' 2>&1 </dev/null", bin && *bin ? bin : "build/current/crossrec", args, outpath);
    int rc = system(cmd);
    char *text = cr_test_read(outpath, NULL);
    if (out) *out = text;
    else free(text);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
}

int cr_test_cli_tty(char **out, const char *args_fmt, ...) {
    if (system("command -v script >/dev/null 2>&1")) cr_test_skip("script(1) is not installed (package bsdutils)");
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof args, args_fmt, ap);
    va_end(ap);
    const char *bin = getenv("CROSSREC_BIN");
    const char *outpath = cr_test_path("cli-tty-output.txt");
    /* script runs the command through the shell: the command line goes in single quotes, so args must not hold any */
    snprintf(cmd, sizeof cmd, "script -qec '%s %s' /dev/null >'%s' 2>&1 </dev/null", bin && *bin ? bin : "build/current/crossrec",
             args, outpath);
    int rc = system(cmd);
    char *text = cr_test_read(outpath, NULL);
    if (out) *out = text;
    else free(text);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int matches(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

/* Runs test i; returns 1 if it passed, 0 if it failed, -1 if skipped (with fail_msg set). */
static int run_one(int i, double *ms) {
    cr_alloc_stats before = cr_alloc_get_stats();
    skipped = 0;
    fail_msg[0] = '\0';
    cr_clear_error();
    cr_alloc_fail_nth(0);
    double t0 = cr_now();
    if (setjmp(test_jmp) != 0) {
        cr_alloc_fail_nth(0);
        *ms = 1e3 * (cr_now() - t0);
        return skipped ? -1 : 0;
    }
    tests[i].fn();
    *ms = 1e3 * (cr_now() - t0);
    cr_alloc_stats after = cr_alloc_get_stats();
    if (after.n_live != before.n_live) {
        snprintf(fail_msg, sizeof fail_msg, "leaked %lld blocks (%lld bytes) allocated through cr_malloc",
                 (long long)(after.n_live - before.n_live), (long long)(after.live_bytes - before.live_bytes));
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, n_skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!matches(tests[i].name, argc, argv)) continue;
        double ms;
        int r = run_one(i, &ms);
        if (r < 0) {
            n_skipped++;
            printf("skip %s (%s)\n", tests[i].name, fail_msg);
        } else if (r == 0) {
            failed++;
            printf("FAIL %s: %s\n", tests[i].name, fail_msg);
        } else {
            passed++;
            printf("ok   %s (%.0f ms)\n", tests[i].name, ms);
        }
        fflush(stdout);
    }
    if (tmpdir[0] && !getenv("CR_TEST_KEEP")) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (n_skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, n_skipped);
    else printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

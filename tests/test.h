/* test.h — the crossrec test harness: named tests in a registry, CHECK macros, temp files, CLI runs.
 *
 *   TEST(hash_vectors) { CHECK(cr_hash32("", 0, 0) == 0); }
 *
 * `crossrec_tests [substring...]` runs the tests whose names contain any substring (all by default) and ends
 * with the line `N passed, N failed`. A test fails on its first failed CHECK, or if it leaves blocks allocated
 * through cr_malloc behind. Tests run in one process, in registration order, single-threaded. */
#ifndef CROSSREC_TEST_H
#define CROSSREC_TEST_H

#include "crossrec/core.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef void (*cr_test_fn)(void);
void cr_test_register(const char *name, cr_test_fn fn);
/* Records a failure and leaves the current test. */
CR_NORETURN void cr_test_fail(const char *file, int line, const char *fmt, ...) CR_PRINTF(3, 4);
/* Marks the current test skipped (e.g. ../shared/data absent) and leaves it. */
CR_NORETURN void cr_test_skip(const char *why);

#define TEST(name)                                                                              \
    static void test_##name(void);                                                              \
    __attribute__((constructor)) static void register_##name(void) { cr_test_register(#name, test_##name); } \
    static void test_##name(void)

#define CHECK(c) \
    do { if (!(c)) cr_test_fail(__FILE__, __LINE__, "CHECK(%s)", #c); } while (0)
#define CHECK_MSG(c, ...) \
    do { if (!(c)) cr_test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_EQ(a, b)                                                                          \
    do { long long a_ = (long long)(a), b_ = (long long)(b);                                    \
         if (a_ != b_) cr_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define CHECK_NEAR(a, b, tol)                                                                   \
    do { double a_ = (double)(a), b_ = (double)(b);                                             \
         if (!(fabs(a_ - b_) <= (tol))) cr_test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); } while (0)
#define CHECK_STR(a, b)                                                                         \
    do { const char *a_ = (a), *b_ = (b);                                                       \
         if (!a_ || !b_ || strcmp(a_, b_)) cr_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define CHECK_CONTAINS(hay, needle)                                                             \
    do { const char *h_ = (hay), *n_ = (needle);                                                \
         if (!h_ || !strstr(h_, n_)) cr_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); } while (0)
/* Expects CR_OK; on failure prints the status and the error message. */
#define CHECK_OK(expr)                                                                          \
    do { cr_status s_ = (expr);                                                                 \
         if (s_ != CR_OK) cr_test_fail(__FILE__, __LINE__, "%s -> %s: %s", #expr, cr_status_str(s_), cr_errmsg()); } while (0)
/* Expects a given failure status. */
#define CHECK_STATUS(expr, want)                                                                \
    do { cr_status s_ = (expr);                                                                 \
         if (s_ != (want)) cr_test_fail(__FILE__, __LINE__, "%s -> %s, want %s (%s)", #expr, cr_status_str(s_), cr_status_str(want), cr_errmsg()); } while (0)

/* A fresh temporary directory for this run (removed at exit unless CR_TEST_KEEP is set). */
const char *cr_test_tmpdir(void);
/* Path tmpdir/name in a static rotating buffer (valid for the next 8 calls). */
const char *cr_test_path(const char *name);
/* Writes `len` bytes (len < 0: strlen) to tmpdir/name; returns the path (as cr_test_path). */
const char *cr_test_write(const char *name, const char *data, long len);
/* Reads a whole file into a malloc'ed NUL-terminated buffer (caller free()s), NULL if absent. */
char *cr_test_read(const char *path, size_t *len);
/* The shared research data folder (../shared/data or $CROSSREC_SHARED_DATA), or NULL if absent. */
const char *cr_test_shared_data(void);
/* Runs `crossrec ARGS` through the shell (binary from $CROSSREC_BIN, default build/crossrec) with stdout and
 * stderr captured together into *out (malloc'ed, caller free()s); returns the exit code. */
int cr_test_cli(char **out, const char *args_fmt, ...) CR_PRINTF(2, 3);
/* The same with the command's stdin, stdout and stderr on a pseudo-terminal (script(1)), so it behaves as in a
 * person's terminal; *out gets what the terminal showed (line ends as CR LF). Skips the current test when
 * script(1) is not installed. */
int cr_test_cli_tty(char **out, const char *args_fmt, ...) CR_PRINTF(2, 3);
int cr_test_file_exists(const char *path);

#endif

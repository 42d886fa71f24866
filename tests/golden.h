/* golden.h — reading the NumPy golden files of tests/golden/ (written by the scripts of tools/ref/) and
 * comparing crossrec's numbers with them.
 *
 * A golden file is a sequence of whitespace-separated tokens; a line whose first character is '#' is a comment.
 * Values are read in the order the script wrote them, each after the key that names it: a scalar is `key value`,
 * a tensor is `key rows cols` followed by its rows*cols values (row-major). Every reader fails the current test
 * (cr_test_fail) on a missing file, a key other than the expected one, a shape other than the expected one, a
 * token that is not a number, or an early end, naming the file and what it expected.
 *
 *   cr_golden g;
 *   cr_golden_open(&g, "tests/golden/x_step.txt");
 *   double lr = cr_golden_scalar(&g, "lr");
 *   cr_golden_tensor(&g, "init_user", 3, 4, want);           // want: 12 doubles
 *   ...
 *   cr_golden_cmp(&g, "user", P, want_user, 12, 1e-5, 1e-6);  // records, prints the first bad entry if any
 *   cr_golden_done(&g);   // checks the file is used up, prints the max diff per tensor, fails if any was bad
 */
#ifndef CROSSREC_TESTS_GOLDEN_H
#define CROSSREC_TESTS_GOLDEN_H

#include <stdint.h>

typedef struct {
    char *text, *at;        /* the file (malloc'ed, NUL-terminated, cut into tokens in place) and the read position */
    const char *path;
    int n_bad;              /* tensors compared so far that were outside their tolerance */
    double worst;           /* the largest |crossrec - numpy| over every comparison so far */
    char summary[1536];     /* "name maxdiff, ..." of the comparisons so far (cut short if long) */
} cr_golden;

/* Reads the file (paths are relative to the repository root, where the tests run). */
void cr_golden_open(cr_golden *g, const char *path);
/* The next token, or NULL at the end of the file. */
const char *cr_golden_next(cr_golden *g);
/* The next token as a number. */
double cr_golden_num(cr_golden *g);
/* Expects the next token to be `key`. */
void cr_golden_key(cr_golden *g, const char *key);
/* `key value`: the value. */
double cr_golden_scalar(cr_golden *g, const char *key);
/* `key value` with an integer value. */
int64_t cr_golden_int(cr_golden *g, const char *key);
/* `key n v1 .. vn`, n == count: the values into dst (doubles). */
void cr_golden_list(cr_golden *g, const char *key, int64_t count, double *dst);
/* `key rows cols` and the values, the shape as given: into dst (rows*cols doubles) or, for the _f version,
 * rounded to float (inputs that crossrec holds as float32, which the scripts wrote float32-exact). */
void cr_golden_tensor(cr_golden *g, const char *key, int64_t rows, int64_t cols, double *dst);
void cr_golden_tensor_f(cr_golden *g, const char *key, int64_t rows, int64_t cols, float *dst);

/* Compares got[k] with want[k] for k < n: each must satisfy |got - want| <= atol + rtol |want|. Adds `name` and
 * its max |got - want| to the summary; when an entry is outside, prints the tensor's max diff and its worst
 * entry and counts the tensor bad (the test goes on, so that every tensor is reported; cr_golden_done fails it).
 * Returns the max |got - want|. */
double cr_golden_cmp(cr_golden *g, const char *name, const float *got, const double *want, int64_t n, double rtol,
                     double atol);
/* The same for values crossrec computes in double (losses). */
double cr_golden_cmp_d(cr_golden *g, const char *name, const double *got, const double *want, int64_t n, double rtol,
                       double atol);
/* Expects the end of the file, prints "     max |crossrec - numpy|: name d, ..." and fails the test if a
 * comparison was bad. Frees the text. */
void cr_golden_done(cr_golden *g);

#endif

/* golden.c — the golden-file reader and comparisons of golden.h. */
#include "golden.h"

#include "test.h"

#include <stdlib.h>

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

void cr_golden_open(cr_golden *g, const char *path) {
    memset(g, 0, sizeof *g);
    g->path = path;
    g->text = cr_test_read(path, NULL);
    CHECK_MSG(g->text, "%s not found (run the tests from the repository root)", path);
    g->at = g->text;
}

const char *cr_golden_next(cr_golden *g) {
    for (;;) {
        while (is_space(*g->at)) g->at++;
        if (*g->at == '#') {
            while (*g->at && *g->at != '\n') g->at++;
            continue;
        }
        if (!*g->at) return NULL;
        char *s = g->at;
        while (*g->at && !is_space(*g->at)) g->at++;
        if (*g->at) *g->at++ = '\0';
        return s;
    }
}

double cr_golden_num(cr_golden *g) {
    const char *s = cr_golden_next(g);
    CHECK_MSG(s, "%s ends early", g->path);
    char *end;
    double v = strtod(s, &end);
    CHECK_MSG(end != s && *end == '\0', "%s: '%s' is not a number", g->path, s);
    return v;
}

void cr_golden_key(cr_golden *g, const char *key) {
    const char *s = cr_golden_next(g);
    CHECK_MSG(s && !strcmp(s, key), "%s: expected '%s', found '%s'", g->path, key, s ? s : "(end)");
}

double cr_golden_scalar(cr_golden *g, const char *key) {
    cr_golden_key(g, key);
    return cr_golden_num(g);
}

int64_t cr_golden_int(cr_golden *g, const char *key) {
    double v = cr_golden_scalar(g, key);
    CHECK_MSG(v == (double)(int64_t)v, "%s: %s = %.9g is not an integer", g->path, key, v);
    return (int64_t)v;
}

void cr_golden_list(cr_golden *g, const char *key, int64_t count, double *dst) {
    int64_t n = cr_golden_int(g, key);
    CHECK_MSG(n == count, "%s: %s has %lld values, expected %lld", g->path, key, (long long)n, (long long)count);
    for (int64_t k = 0; k < n; k++) dst[k] = cr_golden_num(g);
}

static void tensor_head(cr_golden *g, const char *key, int64_t rows, int64_t cols) {
    cr_golden_key(g, key);
    double r = cr_golden_num(g), c = cr_golden_num(g);
    CHECK_MSG(r == (double)rows && c == (double)cols, "%s: %s is (%g, %g), expected (%lld, %lld)", g->path, key, r, c,
              (long long)rows, (long long)cols);
}

void cr_golden_tensor(cr_golden *g, const char *key, int64_t rows, int64_t cols, double *dst) {
    tensor_head(g, key, rows, cols);
    for (int64_t k = 0; k < rows * cols; k++) dst[k] = cr_golden_num(g);
}

void cr_golden_tensor_f(cr_golden *g, const char *key, int64_t rows, int64_t cols, float *dst) {
    tensor_head(g, key, rows, cols);
    for (int64_t k = 0; k < rows * cols; k++) dst[k] = (float)cr_golden_num(g);
}

/* got as float (f != NULL) or double */
static double compare(cr_golden *g, const char *name, const float *f, const double *d, const double *want, int64_t n,
                      double rtol, double atol) {
    double maxdiff = 0, worst_excess = 0;
    int64_t worst = -1;
    for (int64_t k = 0; k < n; k++) {
        double got = f ? (double)f[k] : d[k], diff = fabs(got - want[k]);
        if (!(diff <= maxdiff)) maxdiff = diff;      /* NaN sticks */
        double excess = diff - (atol + rtol * fabs(want[k]));
        if (!(excess <= 0) && (worst < 0 || !(excess <= worst_excess))) worst = k, worst_excess = excess;
    }
    if (worst >= 0) {
        double got = f ? (double)f[worst] : d[worst];
        printf("     %s: %s outside the tolerance (%g + %g |numpy|): max |crossrec - numpy| = %.3g; worst at [%lld]: "
               "crossrec %.9g, numpy %.9g\n",
               g->path, name, atol, rtol, maxdiff, (long long)worst, got, want[worst]);
        g->n_bad++;
    }
    if (!(maxdiff <= g->worst)) g->worst = maxdiff;
    size_t len = strlen(g->summary);
    if (len + 64 < sizeof g->summary)
        snprintf(g->summary + len, sizeof g->summary - len, "%s%s %.2g", len ? ", " : "", name, maxdiff);
    return maxdiff;
}

double cr_golden_cmp(cr_golden *g, const char *name, const float *got, const double *want, int64_t n, double rtol,
                     double atol) {
    return compare(g, name, got, NULL, want, n, rtol, atol);
}

double cr_golden_cmp_d(cr_golden *g, const char *name, const double *got, const double *want, int64_t n, double rtol,
                       double atol) {
    return compare(g, name, NULL, got, want, n, rtol, atol);
}

void cr_golden_done(cr_golden *g) {
    const char *extra = cr_golden_next(g);
    CHECK_MSG(!extra, "%s: unexpected '%s' after the last value read", g->path, extra);
    printf("     max |crossrec - numpy|: %s\n", g->summary);
    free(g->text);
    g->text = g->at = NULL;
    CHECK_MSG(g->n_bad == 0, "%s: %d tensor(s) outside the tolerance (above)", g->path, g->n_bad);
}

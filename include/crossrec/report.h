/* crossrec/report.h — one self-contained HTML page that shows how models do on a split (`crossrec report`):
 * the comparison table with bootstrap intervals, NDCG@K and Recall@K curves, user and item groups, results per
 * domain, learning curves from training logs, a 2-D map of item vectors coloured by domain, and example users.
 * The plots are inline SVG drawn here, the styles inline CSS; the page loads nothing and runs no script.
 *
 * The numbers are those of `crossrec compare` on the same split, cut-offs, bootstrap resamples and seed: both
 * come from cr_evaluate and cr_compare_bootstrap (eval.h). */
#ifndef CROSSREC_REPORT_H
#define CROSSREC_REPORT_H

#include "crossrec/eval.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 2-D principal components ------------------------------------------------------------------------- */

/* The coordinates of the n rows of x (n, d) on their two leading principal components (rows centred), into
 * out (n, 2), and the share of the total variance each component explains into var_share[0..1] (may be NULL).
 * The covariance (d, d) comes from OpenBLAS (dsyrk, in double); its top two eigenvectors from a block power
 * iteration from a fixed start, then the exact eigenvectors of the 2 x 2 projected matrix, so the result does
 * not depend on the start. Each component's sign makes its largest coefficient positive. With d = 1 the second
 * coordinate is 0. Errors: CR_ERR_ARG (n < 2, d < 1), CR_ERR_NOMEM. Thread-safe. */
cr_status cr_pca2(const float *x, int64_t n, int64_t d, float *out, double var_share[2]);

/* ---- training logs ---------------------------------------------------------------------------------------- */

/* The rows of a training log written by `crossrec train --log` (columns epoch, loss, valid_ndcg@10; others
 * ignored). valid_ndcg is NaN where the log says "nan" (no validation users). */
typedef struct {
    int64_t n;
    double *epoch, *loss, *valid_ndcg;     /* (n) each, one allocation; cr_train_log_free */
} cr_train_log;

/* Reads a log. Errors: those of cr_table_open (CR_ERR_IO, ...), CR_ERR_NOTFOUND for a missing column,
 * CR_ERR_PARSE naming file:line and field for a value that is not a number, CR_ERR_NOMEM. */
cr_status cr_train_log_read(const char *path, cr_train_log *log);
void cr_train_log_free(cr_train_log *log);

/* ---- the report ------------------------------------------------------------------------------------------ */

typedef struct {
    int ks[CR_MAX_K];           /* cut-offs of the table (default 10, 50: as `crossrec compare`) */
    int n_k;
    cr_part part;               /* CR_PART_TEST */
    int bootstrap;              /* paired bootstrap resamples (1000) */
    uint64_t seed;              /* bootstrap seed (42) */
    int curve_k;                /* curves for K = 1..curve_k (100) */
    int n_examples;             /* example users shown (4) */
    int64_t map_points;         /* items drawn on each map, evenly spaced over the items with training events (3000) */
    int threads;                /* evaluation threads (0: all cores) */
    const char *const *logs;    /* training logs (TSV of `crossrec train --log`), n_logs of them, shown as learning curves */
    int n_logs;
    const char *command;        /* the command line, printed at the foot of the page (NULL: none) */
    cr_progress progress;       /* models done of the n models */
} cr_report_params;

cr_report_params cr_report_default_params(void);

/* Evaluates each model file on split s (one at a time: one model in memory), and writes the HTML page to path
 * atomically (io.h cr_write_atomic). Models are named by their file names, as in `crossrec compare`. Errors:
 * CR_ERR_ARG (no model, more than 32, a parameter out of range), those of cr_model_load, cr_evaluate,
 * cr_train_log_read and cr_pca2, CR_ERR_IO, CR_ERR_NOMEM. */
cr_status cr_report_write(const cr_split *s, const char *const *model_paths, int n_models, const cr_report_params *p,
                          const char *path);

#ifdef __cplusplus
}
#endif
#endif

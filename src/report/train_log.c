/* train_log.c — reading the TSV log of `crossrec train --log` (report.h cr_train_log) for learning curves.
 * Columns are found by name through the table reader, so a log with extra columns still reads; a value that is
 * not a number is an error naming file:line:column and field. */
#include "crossrec/report.h"

#include <math.h>
#include <string.h>

#define MAX_LOG_ROWS 1000000

static cr_status not_a_number(const cr_table *t, const cr_field *f, const char *col) {
    return cr_fail(CR_ERR_PARSE, "%s:%lld:%lld: field '%s': expected a number, found '%.*s'", cr_table_name(t),
                   (long long)cr_table_line(t), (long long)f->col, col, (int)(f->len < 40 ? f->len : 40), f->p);
}

void cr_train_log_free(cr_train_log *log) {
    if (!log) return;
    cr_free(log->epoch);
    memset(log, 0, sizeof *log);
}

cr_status cr_train_log_read(const char *path, cr_train_log *log) {
    memset(log, 0, sizeof *log);
    cr_table *t;
    cr_status st = cr_table_open(&t, path, NULL);
    if (st) return st;
    static const char *const cols[3] = {"epoch", "loss", "valid_ndcg@10"};
    cr_field f[3];
    int64_t cap = 0;
    double *buf = NULL;     /* (cap, 3) rows of epoch, loss, ndcg */
    if ((st = cr_table_select(t, cols, NULL, 3))) goto done;
    while ((st = cr_table_next(t, f)) == CR_OK) {
        if (log->n == MAX_LOG_ROWS) {
            st = cr_fail(CR_ERR_LIMIT, "%s: more than %d epochs", path, MAX_LOG_ROWS);
            break;
        }
        if ((st = cr_grow((void **)&buf, &cap, 3 * (log->n + 1), sizeof *buf))) break;
        for (int c = 0; c < 3 && !st; c++) {
            float v;
            if (c == 2 && f[c].len == 3 && !memcmp(f[c].p, "nan", 3)) v = NAN;    /* no validation users */
            else if (cr_parse_f32(f[c].p, f[c].len, &v)) st = not_a_number(t, &f[c], cols[c]);
            buf[3 * log->n + c] = v;
        }
        if (!st) log->n++;
        else break;
    }
    if (st == CR_DONE) st = CR_OK;
done:
    cr_table_close(t);
    if (!st && !(log->epoch = cr_malloc((size_t)(3 * log->n + 1) * sizeof *log->epoch)))
        st = cr_fail(CR_ERR_NOMEM, "out of memory (training log %s)", path);
    if (!st) {
        log->loss = log->epoch + log->n, log->valid_ndcg = log->epoch + 2 * log->n;
        for (int64_t r = 0; r < log->n; r++)
            log->epoch[r] = buf[3 * r], log->loss[r] = buf[3 * r + 1], log->valid_ndcg[r] = buf[3 * r + 2];
    } else {
        memset(log, 0, sizeof *log);
    }
    cr_free(buf);
    return st;
}

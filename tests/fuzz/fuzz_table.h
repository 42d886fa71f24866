/* fuzz_table.h — the body shared by the table-reader fuzz targets: open arbitrary bytes (gzip'ed ones too)
 * with a small max_line so that the length limit is reached, select three columns (required if present),
 * touch every field byte and parse it as numbers, and read on after every recoverable error. */
#ifndef CROSSREC_FUZZ_TABLE_H
#define CROSSREC_FUZZ_TABLE_H

#include "crossrec/data.h"

static inline void cr_fuzz_read_table(const uint8_t *data, size_t size, cr_table_format fmt, char delim,
                                      const char *name, const char *const names[3]) {
    cr_table_opts o = cr_table_default_opts();
    o.format = fmt;
    o.delimiter = delim;
    o.max_line = 4096;
    cr_table *t;
    if (cr_table_open_mem(&t, data, size, name, &o) != CR_OK) return;
    for (int i = 0; i < cr_table_n_cols(t); i++) (void)cr_table_has_col(t, cr_table_col_name(t, i));
    int req[3] = {1, 0, 0};
    if (cr_table_select(t, names, req, 3) != CR_OK) {
        req[0] = 0;
        if (cr_table_select(t, names, req, 3) != CR_OK) __builtin_trap();   /* optional columns never fail */
    }
    cr_field f[3];
    volatile unsigned sum = 0;
    for (;;) {
        cr_status st = cr_table_next(t, f);
        if (st == CR_ERR_PARSE || st == CR_ERR_LIMIT) continue;
        if (st != CR_OK) break;
        for (int i = 0; i < 3; i++) {
            for (int64_t k = 0; k < f[i].len; k++) sum += (unsigned char)f[i].p[k];
            int64_t v;
            float x;
            if (f[i].p) sum += (unsigned)cr_parse_i64(f[i].p, f[i].len, &v) + (unsigned)cr_parse_f32(f[i].p, f[i].len, &x);
        }
    }
    (void)sum;
    cr_table_close(t);
}

#endif

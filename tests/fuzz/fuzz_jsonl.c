/* fuzz_jsonl.c — the JSONL reader on arbitrary bytes (gzip'ed ones too): small max_line so that the line
 * limit is reached, every field byte touched, reading on after each recoverable error. */
#include "fuzz.h"
#include "crossrec/data.h"

CR_FUZZ_TARGET(jsonl) {
    cr_table_opts o = cr_table_default_opts();
    o.format = CR_FMT_JSONL;
    o.max_line = 4096;
    cr_table *t;
    if (cr_table_open_mem(&t, data, size, "fuzz.jsonl", &o) != CR_OK) return 0;
    for (int i = 0; i < cr_table_n_cols(t); i++) (void)cr_table_has_col(t, cr_table_col_name(t, i));
    const char *names[3] = {"user", "item", "rating"};
    int req[3] = {1, 0, 0};
    if (cr_table_select(t, names, req, 3) != CR_OK) {
        req[0] = 0;
        if (cr_table_select(t, names, req, 3) != CR_OK) __builtin_trap();
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
    return 0;
}

/* fuzz_crfile.c — the crossrec container reader (cr_file_open_mem) on arbitrary bytes.
 *
 * Each input is opened twice: as given (exercises magic, size and CRC checks), and, when it is at least a header
 * and trailer long, with the header's file_size and the trailer's CRC and "CEND" repaired, because a fuzzer
 * cannot forge a CRC and would otherwise never reach the metadata and table parsers. Whatever opens is walked
 * completely: every metadata value and every byte of every array is read, and every lookup is tried. */
#include "crossrec/io.h"
#include "fuzz.h"

#include <string.h>

static uint64_t touch(const cr_file *f) {
    uint64_t sum = (uint64_t)cr_file_size(f) + cr_file_version(f) + cr_file_crc(f) + strlen(cr_file_kind(f));
    for (int64_t i = 0; i < cr_file_n_meta(f); i++) {
        const cr_meta *m = cr_file_meta_at(f, i);
        int64_t v;
        double d;
        const char *s;
        sum += strlen(m->key);
        switch (m->type) {
        case CR_META_I64: sum += cr_file_get_i64(f, m->key, &v) == CR_OK ? (uint64_t)v : 0; break;
        case CR_META_F64: sum += cr_file_get_f64(f, m->key, &d) == CR_OK && d == d ? 1 : 0; break;
        case CR_META_STR: sum += cr_file_get_str(f, m->key, &s) == CR_OK ? strlen(s) : 0; break;
        }
    }
    for (int64_t i = 0; i < cr_file_n_arrays(f); i++) {
        const cr_array *a = cr_file_array_at(f, i);
        const void *data;
        int64_t count;
        if (cr_file_get_array(f, a->name, a->dtype, a->count, &data, &count) != CR_OK) __builtin_trap();
        const uint8_t *p = data;
        for (int64_t k = 0; k < a->nbytes; k++) sum += p[k];
    }
    return sum;
}

static void try_open(const uint8_t *data, size_t size) {
    cr_file *f;
    if (cr_file_open_mem(&f, data, size, "fuzz", NULL, UINT32_MAX) == CR_OK) {
        volatile uint64_t sink = touch(f);
        (void)sink;
        cr_file_close(f);
    }
}

CR_FUZZ_TARGET(crfile) {
    try_open(data, size);
    if (size < 72) return 0;
    uint8_t *copy = cr_malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    cr_fuzz_repair(copy, size);
    try_open(copy, size);
    cr_free(copy);
    return 0;
}

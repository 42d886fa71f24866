/* fuzz_npy.c — the NumPy reader (cr_npy_read_f32, `--item-vectors FILE.npy`) on arbitrary bytes.
 *
 * Each input is read as a file; half of them first get a well-formed magic and version, so the fuzzer spends its
 * time in the header dictionary and the shape arithmetic. Whatever reads must hold rows x cols floats, all of
 * which are touched. */
#include "fuzz.h"

CR_FUZZ_TARGET(npy) {
    char path[256];
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (size >= 8 && (data[0] & 1)) memcpy(copy, "\x93NUMPY\x01\x00", 8);
    for (int k = 0; k < 2; k++) {
        float *x = NULL;
        int64_t rows = -1, cols = -1;
        if (cr_npy_read_f32(cr_fuzz_file("fuzz.npy", k ? copy : data, size, 0, path, sizeof path), &x, &rows, &cols) == CR_OK) {
            if (rows < 0 || cols < 0) __builtin_trap();
            float sum = 0.0f;
            for (int64_t i = 0; i < rows * cols; i++) sum += x[i];
            volatile float sink = sum;   /* the reads must happen */
            (void)sink;
            cr_free(x);
        }
    }
    free(copy);
    return 0;
}

/* npy.c — NumPy .npy files of float32 matrices: a writer (format 1.0, '<f4', C order, shape (rows, cols),
 * written atomically with cr_write_atomic) and a
 * reader for the same kind of file (tests, benches, `similar-text --vectors`).
 *
 * The header is byte for byte what numpy.save writes (numpy/lib/format.py, NumPy >= 1.24):
 *   "\x93NUMPY" 0x01 0x00, u16 little-endian HLEN, then HLEN bytes of
 *   "{'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }" + (21 - digits(R)) spaces (room to grow
 *   the first axis in place) + spaces + "\n", padded so that 10 + HLEN is a multiple of 64 (a full 64 more
 *   when it already is). The data follows, little-endian float32, row after row. */
#include "crossrec/io.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21

cr_status cr_npy_header_f32(int64_t rows, int64_t cols, char *buf, size_t cap, size_t *len) {
    if (rows < 0 || cols < 0) return cr_fail(CR_ERR_ARG, "npy: negative shape (%lld, %lld)", (long long)rows, (long long)cols);
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    char r[32];
    int rd = snprintf(r, sizeof r, "%lld", (long long)rows);
    for (int i = rd; i < NPY_GROWTH_DIGITS; i++) dict[n++] = ' ';
    size_t hlen = (size_t)n + 1;   /* with the final '\n' */
    size_t pad = NPY_ALIGN - ((8 + 2 + hlen) % NPY_ALIGN);
    size_t total = 10 + hlen + pad;
    if (total > cap) return cr_fail(CR_ERR_ARG, "npy: header buffer of %zu bytes, %zu needed", cap, total);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t h = hlen + pad;
    buf[8] = (char)(h & 0xff);
    buf[9] = (char)(h >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[total - 1] = '\n';
    *len = total;
    return CR_OK;
}

cr_status cr_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols) {
    if (!path || !*path) return cr_fail(CR_ERR_ARG, "cr_npy_write_f32: empty path");
    char hdr[256];
    size_t hlen;
    cr_status st = cr_npy_header_f32(rows, cols, hdr, sizeof hdr, &hlen);
    if (st) return st;
    size_t nbytes = (size_t)rows * (size_t)cols * sizeof(float);
    if (!strcmp(path, "-")) {
        if (fwrite(hdr, 1, hlen, stdout) != hlen || (nbytes && fwrite(data, 1, nbytes, stdout) != nbytes) ||
            fflush(stdout) != 0)
            return cr_fail(CR_ERR_IO, "standard output: write failed: %s", strerror(errno));
        return CR_OK;
    }
    const cr_span parts[2] = {{hdr, hlen}, {data, nbytes}};
    return cr_write_atomic(path, parts, 2);
}

/* Reads an integer from *p, skipping spaces; -1 when there is none or it overflows. */
static int64_t parse_dim(const char **p) {
    while (**p == ' ') (*p)++;
    if (**p < '0' || **p > '9') return -1;
    int64_t v = 0;
    while (**p >= '0' && **p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    return v;
}

cr_status cr_npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols) {
    *data = NULL;
    *rows = *cols = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cr_fail(CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cr_status st = CR_OK;
    unsigned char pre[10];
    char *h = NULL;
    float *out = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: not a NumPy .npy file (bad magic)", path);
        goto done;
    }
    if (pre[6] != 1) {
        st = cr_fail(CR_ERR_FORMAT, "%s: .npy format version %d.%d, only 1.0 is read", path, pre[6], pre[7]);
        goto done;
    }
    size_t hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    h = cr_malloc(hlen + 1);
    if (!h) {
        st = cr_fail(CR_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(h, 1, hlen, f) != hlen) {
        st = cr_fail(CR_ERR_FORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    h[hlen] = '\0';
    if (!strstr(h, "'descr': '<f4'")) {
        st = cr_fail(CR_ERR_FORMAT, "%s: .npy dtype is not '<f4' (float32)", path);
        goto done;
    }
    if (!strstr(h, "'fortran_order': False")) {
        st = cr_fail(CR_ERR_FORMAT, "%s: .npy array is in Fortran order, C order expected", path);
        goto done;
    }
    const char *s = strstr(h, "'shape': (");
    int64_t r = -1, c = -1;
    if (s) {
        s += strlen("'shape': (");
        r = parse_dim(&s);
        while (*s == ' ') s++;
        if (r >= 0 && *s == ',') {
            s++;
            c = parse_dim(&s);
            while (*s == ' ') s++;
            if (*s == ',') s++;
            while (*s == ' ') s++;
            if (*s != ')') c = -1;
        }
    }
    if (r < 0 || c < 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: .npy shape is not (rows, cols)", path);
        goto done;
    }
    if (c && r > INT64_MAX / 4 / c) {
        st = cr_fail(CR_ERR_FORMAT, "%s: .npy shape (%lld, %lld) too large", path, (long long)r, (long long)c);
        goto done;
    }
    size_t nbytes = (size_t)r * (size_t)c * sizeof(float);
    /* The file must hold exactly the data the header announces. */
    long at = ftell(f);
    if (fseek(f, 0, SEEK_END) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
        goto done;
    }
    long end = ftell(f);
    if (at < 0 || end < 0 || (size_t)(end - at) != nbytes) {
        st = cr_fail(CR_ERR_FORMAT, "%s: .npy data is %ld bytes, shape (%lld, %lld) needs %zu", path, end - at,
                     (long long)r, (long long)c, nbytes);
        goto done;
    }
    fseek(f, at, SEEK_SET);
    out = cr_malloc(nbytes ? nbytes : 1);
    if (!out) {
        st = cr_fail(CR_ERR_NOMEM, "%s: out of memory for %zu bytes", path, nbytes);
        goto done;
    }
    if (nbytes && fread(out, 1, nbytes, f) != nbytes) {
        st = cr_fail(CR_ERR_IO, "%s: read failed", path);
        goto done;
    }
    *data = out;
    out = NULL;
    *rows = r;
    *cols = c;
done:
    cr_free(out);
    cr_free(h);
    fclose(f);
    return st;
}

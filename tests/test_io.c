/* test_io.c — CRC32C (vectors, fast paths against the reference), the file container (round trip of every
 * type, the exact byte layout, lookups, version/kind checks, truncation, bit flips, hostile fields with a valid
 * CRC), atomic commit (failures leave no temp file and the old file intact) and allocation fault injection. */
#include "test.h"

#include "crossrec/io.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the trailer CRC so that a deliberately patched field gets past the checksum to its own check. */
static void fix_crc(uint8_t *b, size_t len) { put_le(b + len - 8, cr_crc32c_ref(0, b, len - 8), 4); }

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static const char *make_dir(const char *name) {
    const char *p = cr_test_path(name);
    CR_ASSERT(mkdir(p, 0755) == 0 || errno == EEXIST);
    return p;
}

/* The 208-byte file pinned in io_layout_pinned: kind CRT v2, meta n=5, array a = u8 {1,2,3}. */
static void write_tiny(const char *path) {
    cr_filew *w;
    static const uint8_t a[3] = {1, 2, 3};
    CHECK_OK(cr_filew_new(&w, "CRT", 2));
    CHECK_OK(cr_filew_meta_i64(w, "n", 5));
    CHECK_OK(cr_filew_array(w, "a", CR_DT_U8, a, 3));
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
}

/* A small file with every meta type and a few arrays (about 700 bytes), for the exhaustive damage tests. */
static void write_small(const char *path) {
    static const uint8_t u8[3] = {7, 8, 9};
    static const double f64[2] = {1.5, -2.5};
    static const int32_t i32[5] = {1, -2, 3, -4, 5};
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRD", 1));
    CHECK_OK(cr_filew_meta_i64(w, "n_users", 42));
    CHECK_OK(cr_filew_meta_f64(w, "alpha", 0.25));
    CHECK_OK(cr_filew_meta_str(w, "name", "books"));
    CHECK_OK(cr_filew_array(w, "bytes", CR_DT_U8, u8, 3));
    CHECK_OK(cr_filew_array(w, "vals", CR_DT_F64, f64, 2));
    CHECK_OK(cr_filew_array(w, "none", CR_DT_I64, NULL, 0));
    CHECK_OK(cr_filew_array(w, "ids", CR_DT_I32, i32, 5));
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
}

/* ---- CRC32C ---- */

TEST(io_crc32c_vectors) {
    /* "123456789" is the standard check value; the 32-byte vectors are from RFC 3720 appendix B.4. */
    uint8_t zeros[32] = {0}, ones[32], inc[32], dec[32];
    for (int i = 0; i < 32; i++) ones[i] = 0xff, inc[i] = (uint8_t)i, dec[i] = (uint8_t)(31 - i);
    uint32_t (*fns[3])(uint32_t, const void *, size_t) = {cr_crc32c_ref, cr_crc32c_sw, cr_crc32c};
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(fns[k](0, "123456789", 9), 0xE3069283u);
        CHECK_EQ(fns[k](0, "", 0), 0);
        CHECK_EQ(fns[k](0, zeros, 32), 0x8A9136AAu);
        CHECK_EQ(fns[k](0, ones, 32), 0x62A8AB43u);
        CHECK_EQ(fns[k](0, inc, 32), 0x46DD794Eu);
        CHECK_EQ(fns[k](0, dec, 32), 0x113FDB5Cu);
        /* continuation: crc(a + b) == crc(crc(a), b) */
        CHECK_EQ(fns[k](fns[k](0, "1234", 4), "56789", 5), 0xE3069283u);
    }
    if (cr_crc32c_hw_available()) CHECK_EQ(cr_crc32c_hw(0, "123456789", 9), 0xE3069283u);
}

TEST(io_crc32c_fast_matches_ref) {
    size_t big = (size_t)1 << 20;
    uint8_t *buf = cr_malloc(big + 64);
    CHECK(buf);
    cr_rng r;
    cr_rng_named(&r, 1, "io_crc");
    for (size_t i = 0; i < big + 64; i++) buf[i] = (uint8_t)cr_rng_u32(&r);
    int hw = cr_crc32c_hw_available();
    for (size_t off = 0; off < 16; off++)
        for (size_t len = 0; len <= 300; len++) {
            uint32_t seed = (uint32_t)(len * 2654435761u);
            uint32_t want = cr_crc32c_ref(seed, buf + off, len);
            CHECK_MSG(cr_crc32c_sw(seed, buf + off, len) == want, "sw off %zu len %zu", off, len);
            CHECK_MSG(cr_crc32c(seed, buf + off, len) == want, "fast off %zu len %zu", off, len);
            if (hw) CHECK_MSG(cr_crc32c_hw(seed, buf + off, len) == want, "hw off %zu len %zu", off, len);
        }
    for (size_t off = 0; off < 3; off++) {
        uint32_t want = cr_crc32c_ref(0, buf + off, big);
        CHECK_EQ(cr_crc32c_sw(0, buf + off, big), want);
        CHECK_EQ(cr_crc32c(0, buf + off, big), want);
        if (hw) CHECK_EQ(cr_crc32c_hw(0, buf + off, big), want);
        /* continuation across odd split points */
        for (size_t split = 1; split < big; split = split * 3 + 1)
            CHECK_EQ(cr_crc32c(cr_crc32c(0, buf + off, split), buf + off + split, big - split), want);
    }
    cr_free(buf);
}

/* ---- round trip ---- */

#define N_BIG ((1 << 20) + 3)   /* 4 MiB of f32: larger than the writer's 1 MiB buffer */

TEST(io_roundtrip_all_types) {
    static const uint8_t u8[3] = {1, 2, 255};
    static const double f64[5] = {1.5, -2.25, 1e300, -0.0, 4.9e-324};
    int32_t i32[7];
    int64_t i64[7];
    float f32[7];
    uint16_t f16[7];
    for (int i = 0; i < 7; i++) {
        i32[i] = (i - 3) * 1000003;
        i64[i] = (int64_t)(i - 3) * 1000000000007LL;
        f32[i] = (float)i / 3.0f;
        f16[i] = (uint16_t)(0x3c00 + i);
    }
    float *big = cr_malloc(sizeof(float) * N_BIG);
    CHECK(big);
    for (int i = 0; i < N_BIG; i++) big[i] = (float)i * 0.5f;
    char long_str[1001], long_key[201];
    for (int i = 0; i < 1000; i++) long_str[i] = (char)(' ' + i % 95);
    long_str[1000] = '\0';
    memset(long_key, 'k', 200);
    long_key[200] = '\0';
    char name63[64];    /* the longest array name: 63 bytes and the NUL */
    memset(name63, 'n', 63);
    name63[63] = '\0';
    uint64_t nan_bits = 0x7ff8000000000123ull;
    double nan_payload;
    memcpy(&nan_payload, &nan_bits, 8);

    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", 7));
    CHECK_OK(cr_filew_meta_i64(w, "zero", 0));
    CHECK_OK(cr_filew_meta_i64(w, "neg", -1));
    CHECK_OK(cr_filew_meta_i64(w, "min", INT64_MIN));
    CHECK_OK(cr_filew_meta_i64(w, "max", INT64_MAX));
    CHECK_OK(cr_filew_meta_f64(w, "pi", 3.141592653589793));
    CHECK_OK(cr_filew_meta_f64(w, "negzero", -0.0));
    CHECK_OK(cr_filew_meta_f64(w, "inf", INFINITY));
    CHECK_OK(cr_filew_meta_f64(w, "nan", nan_payload));
    CHECK_OK(cr_filew_meta_f64(w, "denorm", 4.9e-324));
    CHECK_OK(cr_filew_meta_str(w, "empty", ""));
    CHECK_OK(cr_filew_meta_str(w, "utf8", "h\xc3\xa9llo \xe2\x9c\x93"));
    CHECK_OK(cr_filew_meta_str(w, "long", long_str));
    CHECK_OK(cr_filew_meta_i64(w, long_key, 9));
    CHECK_OK(cr_filew_array(w, "u8_3", CR_DT_U8, u8, 3));
    CHECK_OK(cr_filew_array(w, "f64_after", CR_DT_F64, f64, 5));   /* must land 64-aligned after 3 bytes */
    CHECK_OK(cr_filew_array(w, "empty_i32", CR_DT_I32, NULL, 0));
    CHECK_OK(cr_filew_array(w, "i32", CR_DT_I32, i32, 7));
    CHECK_OK(cr_filew_array(w, "i64", CR_DT_I64, i64, 7));
    CHECK_OK(cr_filew_array(w, "f32", CR_DT_F32, f32, 7));
    CHECK_OK(cr_filew_array(w, "f16", CR_DT_F16, f16, 7));
    CHECK_OK(cr_filew_array(w, "empty_u8_last", CR_DT_U8, u8, 0));
    CHECK_OK(cr_filew_array(w, "big", CR_DT_F32, big, N_BIG));
    CHECK_OK(cr_filew_array(w, name63, CR_DT_U8, u8, 1));
    const char *path = cr_test_path("all.crm");
    CHECK_OK(cr_filew_commit(w, path));
    char path2[512];
    snprintf(path2, sizeof path2, "%s", cr_test_path("all2.crm"));
    CHECK_OK(cr_filew_commit(w, path2));
    cr_filew_free(w);

    /* Same inputs, same bytes. */
    size_t len1, len2;
    char *b1 = cr_test_read(path, &len1), *b2 = cr_test_read(path2, &len2);
    CHECK(b1 && b2 && len1 == len2 && memcmp(b1, b2, len1) == 0);
    free(b2);

    cr_file *f;
    CHECK_OK(cr_file_open(&f, path, "CRM", 7));
    CHECK_STR(cr_file_kind(f), "CRM");
    CHECK_EQ(cr_file_version(f), 7);
    CHECK_EQ(cr_file_size(f), (int64_t)len1);
    CHECK_EQ(cr_file_crc(f), cr_crc32c_ref(0, b1, len1 - 8));
    free(b1);

    int64_t v;
    double d;
    const char *s;
    CHECK_EQ(cr_file_n_meta(f), 13);
    CHECK_STR(cr_file_meta_at(f, 0)->key, "zero");    /* file order is insertion order */
    CHECK_STR(cr_file_meta_at(f, 12)->key, long_key);
    CHECK_OK(cr_file_get_i64(f, "zero", &v)); CHECK_EQ(v, 0);
    CHECK_OK(cr_file_get_i64(f, "neg", &v)); CHECK_EQ(v, -1);
    CHECK_OK(cr_file_get_i64(f, "min", &v)); CHECK(v == INT64_MIN);
    CHECK_OK(cr_file_get_i64(f, "max", &v)); CHECK(v == INT64_MAX);
    CHECK_OK(cr_file_get_i64(f, long_key, &v)); CHECK_EQ(v, 9);
    CHECK_OK(cr_file_get_f64(f, "pi", &d)); CHECK(d == 3.141592653589793);
    CHECK_OK(cr_file_get_f64(f, "negzero", &d)); CHECK(d == 0.0 && signbit(d));
    CHECK_OK(cr_file_get_f64(f, "inf", &d)); CHECK(isinf(d) && d > 0);
    CHECK_OK(cr_file_get_f64(f, "denorm", &d)); CHECK(d == 4.9e-324);
    CHECK_OK(cr_file_get_f64(f, "nan", &d));
    uint64_t got_bits;
    memcpy(&got_bits, &d, 8);
    CHECK(got_bits == nan_bits);
    CHECK_OK(cr_file_get_str(f, "empty", &s)); CHECK_STR(s, "");
    CHECK_OK(cr_file_get_str(f, "utf8", &s)); CHECK_STR(s, "h\xc3\xa9llo \xe2\x9c\x93");
    CHECK_OK(cr_file_get_str(f, "long", &s)); CHECK_STR(s, long_str);

    CHECK_EQ(cr_file_n_arrays(f), 10);
    for (int64_t i = 0; i < cr_file_n_arrays(f); i++) {
        const cr_array *a = cr_file_array_at(f, i);
        CHECK_MSG(a->offset % 64 == 0 && (uintptr_t)a->data % 64 == 0, "array %s at %lld", a->name, (long long)a->offset);
        CHECK_EQ(a->nbytes, a->count * (int64_t)cr_dtype_size(a->dtype));
    }
    const void *p;
    int64_t n;
    CHECK_OK(cr_file_get_array(f, "u8_3", CR_DT_U8, 3, &p, &n)); CHECK(n == 3 && !memcmp(p, u8, 3));
    CHECK_OK(cr_file_get_array(f, "f64_after", CR_DT_F64, 5, &p, &n)); CHECK(!memcmp(p, f64, sizeof f64));
    CHECK(cr_file_array_at(f, 1)->offset == cr_file_array_at(f, 0)->offset + 64);
    CHECK_OK(cr_file_get_array(f, "empty_i32", CR_DT_I32, 0, &p, &n)); CHECK_EQ(n, 0);
    CHECK_OK(cr_file_get_array(f, "i32", CR_DT_I32, 7, &p, NULL)); CHECK(!memcmp(p, i32, sizeof i32));
    CHECK_OK(cr_file_get_array(f, "i64", CR_DT_I64, 7, &p, NULL)); CHECK(!memcmp(p, i64, sizeof i64));
    CHECK_OK(cr_file_get_array(f, "f32", CR_DT_F32, -1, &p, &n)); CHECK(n == 7 && !memcmp(p, f32, sizeof f32));
    CHECK_OK(cr_file_get_array(f, "f16", CR_DT_F16, 7, &p, NULL)); CHECK(!memcmp(p, f16, sizeof f16));
    CHECK_OK(cr_file_get_array(f, "empty_u8_last", CR_DT_U8, 0, NULL, NULL));
    CHECK_OK(cr_file_get_array(f, "big", CR_DT_F32, N_BIG, &p, NULL)); CHECK(!memcmp(p, big, sizeof(float) * N_BIG));
    CHECK_OK(cr_file_get_array(f, name63, CR_DT_U8, 1, &p, NULL));
    cr_file_close(f);
    cr_free(big);

    /* An empty file: no metadata, no arrays. */
    CHECK_OK(cr_filew_new(&w, "CRS", 1));
    CHECK_OK(cr_filew_commit(w, cr_test_path("empty.crs")));
    cr_filew_free(w);
    CHECK_OK(cr_file_open(&f, cr_test_path("empty.crs"), "CRS", 1));
    CHECK_EQ(cr_file_n_meta(f), 0);
    CHECK_EQ(cr_file_n_arrays(f), 0);
    CHECK_EQ(cr_file_size(f), 72);
    CHECK_STATUS(cr_file_get_i64(f, "x", &v), CR_ERR_FORMAT);
    CHECK_STATUS(cr_file_get_array(f, "x", CR_DT_U8, -1, &p, &n), CR_ERR_FORMAT);
    cr_file_close(f);
}

TEST(io_layout_pinned) {
    /* Every byte of a tiny file, spelled out from the layout in io.h, so that a format change cannot slip in
     * unnoticed: header 64, one meta entry (8 + 1 + 8 -> 24), table at 88 (96 bytes, ends 184), array at 192,
     * 3 bytes, trailer at 200, file 208. */
    uint8_t want[208] = {0};
    memcpy(want, "\x7f" "CRCRT\r\n", 8);
    put_le(want + 8, 2, 4);
    put_le(want + 12, 64, 4);
    put_le(want + 16, 208, 8);
    put_le(want + 24, 64, 8);
    put_le(want + 32, 24, 8);
    put_le(want + 40, 88, 8);
    put_le(want + 48, 1, 8);
    want[64] = 1;                   /* i64 */
    put_le(want + 66, 1, 2);        /* key_len */
    put_le(want + 68, 8, 4);        /* value_len */
    want[72] = 'n';
    put_le(want + 73, 5, 8);
    want[88] = 'a';
    put_le(want + 152, CR_DT_U8, 4);
    put_le(want + 156, 1, 4);
    put_le(want + 160, 3, 8);
    put_le(want + 168, 192, 8);
    put_le(want + 176, 3, 8);
    want[192] = 1, want[193] = 2, want[194] = 3;
    put_le(want + 200, cr_crc32c_ref(0, want, 200), 4);
    memcpy(want + 204, "CEND", 4);

    const char *path = cr_test_path("tiny.crt");
    write_tiny(path);
    size_t len;
    char *got = cr_test_read(path, &len);
    CHECK(got);
    CHECK_EQ(len, sizeof want);
    for (size_t i = 0; i < len; i++) CHECK_MSG((uint8_t)got[i] == want[i], "byte %zu: %u != %u", i, (uint8_t)got[i], want[i]);
    free(got);
}

TEST(io_lookup_errors) {
    const char *path = cr_test_path("small.crd");
    write_small(path);
    cr_file *f;
    CHECK_OK(cr_file_open(&f, path, "CRD", 1));
    int64_t v;
    double d;
    const char *s;
    const void *p;
    int64_t n;
    CHECK_STATUS(cr_file_get_i64(f, "name", &v), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "small.crd: metadata 'name' is string, expected i64");
    CHECK_STATUS(cr_file_get_f64(f, "n_users", &d), CR_ERR_FORMAT);
    CHECK_STATUS(cr_file_get_str(f, "alpha", &s), CR_ERR_FORMAT);
    CHECK_STATUS(cr_file_get_i64(f, "n_items", &v), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "missing metadata key 'n_items'");
    CHECK_STATUS(cr_file_get_array(f, "ids", CR_DT_I64, -1, &p, &n), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "array 'ids' has dtype i32, expected i64");
    CHECK_STATUS(cr_file_get_array(f, "ids", CR_DT_I32, 4, &p, &n), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "array 'ids' has 5 elements, expected 4");
    CHECK_STATUS(cr_file_get_array(f, "idz", CR_DT_I32, -1, &p, &n), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "missing array 'idz'");
    CHECK_OK(cr_file_get_i64(f, "n_users", &v));
    CHECK_EQ(v, 42);
    CHECK_OK(cr_file_get_f64(f, "alpha", &d));
    CHECK(d == 0.25);
    CHECK_OK(cr_file_get_str(f, "name", &s));
    CHECK_STR(s, "books");
    CHECK_OK(cr_file_get_array(f, "ids", CR_DT_I32, 5, &p, &n));
    CHECK(((const int32_t *)p)[3] == -4);
    cr_file_close(f);
}

TEST(io_version_and_kind) {
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", 3));
    CHECK_OK(cr_filew_meta_i64(w, "dim", 8));
    const char *path = cr_test_path("v3.crm");
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
    cr_file *f;
    CHECK_STATUS(cr_file_open(&f, path, "CRM", 2), CR_ERR_VERSION);
    CHECK(f == NULL);
    CHECK_CONTAINS(cr_errmsg(), "v3.crm: file version 3 is newer than this crossrec supports (2); upgrade crossrec");
    CHECK(!strstr(cr_errmsg(), "damaged"));
    /* a version 1 file whose version bits are flipped to 3 (the corruption campaign's case): the message says it
     * may be damage rather than a newer writer */
    CHECK_OK(cr_filew_new(&w, "CRM", 1));
    const char *v1 = cr_test_path("v1.crm");
    CHECK_OK(cr_filew_commit(w, v1));
    cr_filew_free(w);
    size_t len;
    char *bytes = cr_test_read(v1, &len);
    CHECK(bytes && bytes[8] == 1);
    bytes[8] = 3;
    v1 = cr_test_write("v1.crm", bytes, (long)len);
    free(bytes);
    CHECK_STATUS(cr_file_open(&f, v1, "CRM", 2), CR_ERR_VERSION);
    CHECK_CONTAINS(cr_errmsg(), "v1.crm: file version 3 is newer than this crossrec supports (2); upgrade crossrec (unless the "
                                "file is damaged: its checksum does not match)");
    CHECK_STATUS(cr_file_open(&f, path, "CRD", 3), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "is a crossrec CRM file, expected CRD");
    CHECK_OK(cr_file_open(&f, path, "CRM", 3));
    cr_file_close(f);
    CHECK_OK(cr_file_open(&f, path, NULL, UINT32_MAX));
    CHECK_STR(cr_file_kind(f), "CRM");
    cr_file_close(f);
}

TEST(io_writer_arg_errors) {
    cr_filew *w;
    CHECK_STATUS(cr_filew_new(&w, "CR", 1), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_new(&w, "CRDX", 1), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_new(&w, "crd", 1), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_new(&w, "CRD", 0), CR_ERR_ARG);
    CHECK_OK(cr_filew_new(&w, "CRD", 1));
    uint8_t x[4] = {0};
    char name64[65];
    memset(name64, 'a', 64);
    name64[64] = '\0';
    CHECK_STATUS(cr_filew_array(w, name64, CR_DT_U8, x, 4), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_array(w, "", CR_DT_U8, x, 4), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_array(w, "a", (cr_dtype)0, x, 4), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_array(w, "a", (cr_dtype)7, x, 4), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_array(w, "a", CR_DT_U8, x, -1), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_array(w, "a", CR_DT_F64, x, INT64_MAX / 4), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_array(w, "a", CR_DT_U8, NULL, 4), CR_ERR_ARG);
    CHECK_OK(cr_filew_array(w, "a", CR_DT_U8, x, 4));
    CHECK_STATUS(cr_filew_array(w, "a", CR_DT_I32, x, 1), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "'a' added twice");
    CHECK_STATUS(cr_filew_meta_i64(w, "", 1), CR_ERR_ARG);
    CHECK_OK(cr_filew_meta_i64(w, "k", 1));
    CHECK_STATUS(cr_filew_meta_str(w, "k", "v"), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_meta_str(w, "s", NULL), CR_ERR_ARG);
    CHECK_STATUS(cr_filew_commit(w, ""), CR_ERR_ARG);
    cr_filew_free(w);
    cr_filew_free(NULL);
    cr_file_close(NULL);
}

/* ---- damaged and hostile files ---- */

TEST(io_open_errors) {
    cr_file *f;
    CHECK_STATUS(cr_file_open(&f, cr_test_path("no-such.crd"), NULL, 1), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "no-such.crd: cannot open: No such file");
    CHECK_STATUS(cr_file_open(&f, make_dir("a-dir"), NULL, 1), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "not a regular file");
    CHECK_STATUS(cr_file_open(&f, cr_test_write("empty.crd", "", 0), NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "empty.crd: empty file");
    CHECK_STATUS(cr_file_open(&f, cr_test_write("ten.crd", "0123456789", 10), NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "10 bytes is too small");
    char text[200];
    memset(text, 'x', sizeof text);
    CHECK_STATUS(cr_file_open(&f, cr_test_write("text.crd", text, sizeof text), NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "text.crd: not a crossrec file");
    CHECK(f == NULL);
}

TEST(io_truncation_rejected) {
    const char *path = cr_test_path("trunc.crd");
    write_small(path);
    size_t len;
    char *full = cr_test_read(path, &len);
    CHECK(full && len > 200);
    cr_file *f;
    CHECK_OK(cr_file_open_mem(&f, full, len, "trunc", NULL, 1));
    cr_file_close(f);
    for (size_t n = 0; n < len; n++) {
        /* An exact-size copy, so that the sanitizers would see any read past the end. */
        uint8_t *b = cr_malloc(n ? n : 1);
        CHECK(b);
        memcpy(b, full, n);
        cr_status st = cr_file_open_mem(&f, b, n, "trunc", NULL, 1);
        cr_free(b);
        CHECK_MSG(st == CR_ERR_FORMAT && f == NULL, "prefix of %zu bytes -> %s", n, cr_status_str(st));
    }
    /* Through the file path too, including the sizes that must not be mapped. */
    size_t cuts[] = {0, 1, 71, 72, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *p = cr_test_write("cut.crd", full, (long)cuts[i]);
        CHECK_STATUS(cr_file_open(&f, p, NULL, 1), CR_ERR_FORMAT);
    }
    /* An extended file is refused as well. */
    char *ext = malloc(len + 8);
    memcpy(ext, full, len);
    memset(ext + len, 0, 8);
    CHECK_STATUS(cr_file_open_mem(&f, ext, len + 8, "ext", NULL, 1), CR_ERR_FORMAT);
    free(ext);
    memcpy(full + 16, "\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
    CHECK_STATUS(cr_file_open_mem(&f, full, len, "trunc.crd", NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "truncated or extended: header says 9223372036854775807 bytes, file has");
    free(full);
}

TEST(io_bitflip_rejected) {
    const char *path = cr_test_path("flip.crd");
    write_small(path);
    size_t len;
    char *orig = cr_test_read(path, &len);
    CHECK(orig);
    uint8_t *b = cr_malloc(len);
    CHECK(b);
    memcpy(b, orig, len);
    int64_t n_format = 0, n_version = 0;
    cr_file *f;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            cr_status st = cr_file_open_mem(&f, b, len, "flip", "CRD", 1);
            b[i] ^= (uint8_t)(1u << bit);
            CHECK_MSG(st == CR_ERR_FORMAT || st == CR_ERR_VERSION, "flipping bit %d of byte %zu -> %s", bit, i,
                      cr_status_str(st));
            n_format += st == CR_ERR_FORMAT;
            n_version += st == CR_ERR_VERSION;
        }
    CHECK(n_version > 0 && n_format > 0);   /* the version field's high bits make it "newer" */
    CHECK_OK(cr_file_open_mem(&f, b, len, "flip", "CRD", 1));
    cr_file_close(f);
    /* The CRC message names both values. */
    b[100] ^= 1;
    CHECK_STATUS(cr_file_open_mem(&f, b, len, "flip.crd", "CRD", 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "flip.crd: checksum mismatch: stored crc32c 0x");
    CHECK_CONTAINS(cr_errmsg(), ", computed 0x");
    cr_free(b);
    free(orig);
}

typedef struct {
    size_t at;              /* byte offset in the tiny file */
    int width;              /* bytes to write little-endian (0: memcpy `bytes`) */
    uint64_t value;
    const char *bytes;
    const char *want;       /* substring of the message */
} patch_case;

/* Each case breaks one field of the tiny file (layout in io_layout_pinned) and repairs the CRC, so that the
 * field's own check has to catch it. */
TEST(io_hostile_fields_rejected) {
    const char *path = cr_test_path("hostile.crt");
    write_tiny(path);
    size_t len;
    char *orig = cr_test_read(path, &len);
    CHECK(orig && len == 208);
    static const patch_case cases[] = {
        {3, 0, 0, "c", "bad magic"},
        {8, 4, 0, NULL, "bad file version 0"},
        {12, 4, 65, NULL, "header size 65, expected 64"},
        {60, 1, 1, NULL, "reserved header bytes"},
        {24, 8, 0, NULL, "metadata block at offset 0"},
        {24, 8, UINT64_MAX - 7, NULL, "metadata block at offset 18446744073709551608"},
        {32, 8, UINT64_MAX, NULL, "length 18446744073709551615 lies outside"},
        {32, 8, 200, NULL, "length 200 lies outside"},
        {40, 8, 64, NULL, "array table offset 64 lies outside"},
        {40, 8, UINT64_MAX, NULL, "array table offset 18446744073709551615"},
        {48, 8, (uint64_t)1 << 63, NULL, "9223372036854775808 arrays do not fit"},
        {48, 8, UINT64_MAX, NULL, "18446744073709551615 arrays do not fit"},
        {48, 8, 2, NULL, "2 arrays do not fit"},
        {64, 1, 0, NULL, "unknown type 0"},
        {64, 1, 4, NULL, "unknown type 4"},
        {65, 1, 1, NULL, "reserved byte is 1"},
        {66, 2, 0, NULL, "empty key"},
        {66, 2, 0xffff, NULL, "key 65535 + value 8 bytes run past"},
        {68, 4, 0xffffffffu, NULL, "value 4294967295 bytes run past"},
        {68, 4, 4, NULL, "'n': i64 value of 4 bytes, expected 8"},
        {72, 1, 0, NULL, "key contains a NUL byte"},
        {87, 1, 1, NULL, "'n': padding bytes are not zero"},
        {88, 0, 0, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "not NUL-terminated within 64 bytes"},
        {88, 1, 0, NULL, "array entry 0: empty name"},
        {100, 1, 'z', NULL, "'a': name padding is not zero"},
        {152, 4, 0, NULL, "'a': unknown dtype 0"},
        {152, 4, 99, NULL, "'a': unknown dtype 99"},
        {156, 4, 4, NULL, "element size 4, but dtype u8 has 1"},
        {160, 8, (uint64_t)1 << 63, NULL, "element count 9223372036854775808 is too large"},
        {160, 8, 4, NULL, "3 bytes, but 4 elements of 1 bytes make 4"},
        {168, 8, 193, NULL, "offset 193 is not a multiple of 64"},
        {168, 8, 128, NULL, "3 bytes at offset 128 lie outside the data region [184, 200)"},
        {168, 8, UINT64_MAX - 63, NULL, "lie outside the data region"},
        {168, 8, 256, NULL, "lie outside the data region"},
    };
    uint8_t *b = cr_malloc(len);
    CHECK(b);
    cr_file *f;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const patch_case *c = &cases[i];
        memcpy(b, orig, len);
        if (c->width) put_le(b + c->at, c->value, c->width);
        else memcpy(b + c->at, c->bytes, strlen(c->bytes));
        fix_crc(b, len);
        cr_status st = cr_file_open_mem(&f, b, len, "hostile.crt", NULL, 100);
        CHECK_MSG(st == CR_ERR_FORMAT, "case %zu (byte %zu): %s", i, c->at, cr_status_str(st));
        CHECK_MSG(strstr(cr_errmsg(), c->want) && strstr(cr_errmsg(), "hostile.crt: "), "case %zu: \"%s\" lacks \"%s\"",
                  i, cr_errmsg(), c->want);
    }
    /* count 9 with matching nbytes would read 1 byte into the trailer. */
    memcpy(b, orig, len);
    put_le(b + 160, 9, 8);
    put_le(b + 176, 9, 8);
    fix_crc(b, len);
    CHECK_STATUS(cr_file_open_mem(&f, b, len, "hostile.crt", NULL, 100), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "9 bytes at offset 192 lie outside the data region [184, 200)");
    /* count 8 ends exactly at the trailer: allowed (the padding becomes data). */
    put_le(b + 160, 8, 8);
    put_le(b + 176, 8, 8);
    fix_crc(b, len);
    CHECK_OK(cr_file_open_mem(&f, b, len, "hostile.crt", NULL, 100));
    cr_file_close(f);
    cr_free(b);
    free(orig);
}

TEST(io_duplicates_rejected) {
    static const uint8_t x[2] = {1, 2};
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRD", 1));
    CHECK_OK(cr_filew_meta_i64(w, "k1", 1));
    CHECK_OK(cr_filew_meta_str(w, "k2", "ab"));
    CHECK_OK(cr_filew_array(w, "a1", CR_DT_U8, x, 2));
    CHECK_OK(cr_filew_array(w, "a2", CR_DT_U8, x, 2));
    const char *path = cr_test_path("dup.crd");
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
    size_t len;
    char *orig = cr_test_read(path, &len);
    CHECK(orig);
    char *key2 = memmem(orig, len, "k2", 2), *arr2 = memmem(orig, len, "a2", 2);
    CHECK(key2 && arr2);
    cr_file *f;
    key2[1] = '1';
    fix_crc((uint8_t *)orig, len);
    CHECK_STATUS(cr_file_open_mem(&f, orig, len, "dup.crd", NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "dup.crd: duplicate metadata key 'k1'");
    key2[1] = '2';
    arr2[1] = '1';
    fix_crc((uint8_t *)orig, len);
    CHECK_STATUS(cr_file_open_mem(&f, orig, len, "dup.crd", NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "dup.crd: duplicate array name 'a1'");
    arr2[1] = '2';
    /* A NUL inside a string value would silently shorten it. */
    char *val = memmem(orig, len, "ab", 2);
    CHECK(val);
    val[1] = '\0';
    fix_crc((uint8_t *)orig, len);
    CHECK_STATUS(cr_file_open_mem(&f, orig, len, "dup.crd", NULL, 1), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "'k2': string value contains a NUL byte");
    free(orig);
}

/* ---- atomic commit ---- */

TEST(io_commit_unwritable_dir) {
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRD", 1));
    CHECK_OK(cr_filew_meta_i64(w, "n", 1));
    /* A path through a regular file fails for every user, root included. */
    char path[600];
    snprintf(path, sizeof path, "%s/out.crd", cr_test_write("plain", "x", 1));
    CHECK_STATUS(cr_filew_commit(w, path), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), path);
    CHECK_CONTAINS(cr_errmsg(), "Not a directory");
    snprintf(path, sizeof path, "%s/out.crd", cr_test_path("missing-dir"));
    CHECK_STATUS(cr_filew_commit(w, path), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "No such file");
    /* A directory without write permission (root ignores permissions, so only as another user). */
    if (geteuid() != 0) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s", make_dir("readonly"));
        CHECK(chmod(dir, 0555) == 0);
        snprintf(path, sizeof path, "%s/out.crd", dir);
        cr_status st = cr_filew_commit(w, path);
        int n_tmp = count_tmp_files(dir);
        chmod(dir, 0755);
        CHECK_STATUS(st, CR_ERR_IO);
        CHECK_CONTAINS(cr_errmsg(), "Permission denied");
        CHECK_EQ(n_tmp, 0);
        CHECK(!cr_test_file_exists(path));
    }
    cr_filew_free(w);
}

TEST(io_commit_write_failure_keeps_old) {
    /* RLIMIT_FSIZE makes write(2) fail with EFBIG part-way through, for root as well: the temp file must go
     * and the previous file must stay as it was. */
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", make_dir("fsize"));
    snprintf(path, sizeof path, "%s/model.crm", dir);
    write_tiny(path);
    size_t old_len;
    char *old = cr_test_read(path, &old_len);
    CHECK(old);

    int64_t n = 1 << 20;
    uint8_t *big = cr_calloc((size_t)n, 1);
    CHECK(big);
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRM", 1));
    CHECK_OK(cr_filew_array(w, "big", CR_DT_U8, big, n));
    struct rlimit saved;
    CHECK(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    struct rlimit small = {64 * 1024, saved.rlim_max};
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    cr_status st = cr_filew_commit(w, path);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, old_handler);
    CHECK_STATUS(st, CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "model.crm: write failed: File too large");
    CHECK_EQ(count_tmp_files(dir), 0);
    size_t now_len;
    char *now = cr_test_read(path, &now_len);
    CHECK(now && now_len == old_len && !memcmp(now, old, old_len));
    free(now);
    /* Without the limit the same writer succeeds. */
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
    cr_free(big);
    free(old);
}

TEST(io_commit_replaces_existing) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", make_dir("replace"));
    snprintf(path, sizeof path, "%s/data.crd", dir);
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRD", 1));
    CHECK_OK(cr_filew_meta_str(w, "which", "old"));
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
    cr_file *old;
    CHECK_OK(cr_file_open(&old, path, "CRD", 1));

    CHECK_OK(cr_filew_new(&w, "CRD", 1));
    CHECK_OK(cr_filew_meta_str(w, "which", "new"));
    CHECK_OK(cr_filew_meta_i64(w, "extra", 1));
    CHECK_OK(cr_filew_commit(w, path));
    cr_filew_free(w);
    CHECK_EQ(count_tmp_files(dir), 0);

    /* The rename swapped in a new inode: the open mapping still sees the complete old file. */
    const char *s;
    CHECK_OK(cr_file_get_str(old, "which", &s));
    CHECK_STR(s, "old");
    cr_file *now;
    CHECK_OK(cr_file_open(&now, path, "CRD", 1));
    CHECK_OK(cr_file_get_str(now, "which", &s));
    CHECK_STR(s, "new");
    cr_file_close(now);
    cr_file_close(old);

    /* The file gets the mode an ordinary create gives, not mkstemp's 0600. */
    mode_t mask = umask(022);
    umask(mask);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    CHECK_EQ(sb.st_mode & 0777, 0666 & ~mask);
}

/* A writer killed before its rename leaves PATH.tmp.PID.N; the next write of PATH removes those of processes
 * that no longer run, and only those: not a live process's (ours), not another target's, not other names. */
TEST(io_commit_removes_temps_of_dead_writers) {
    char dir[512], path[600], name[700];
    snprintf(dir, sizeof dir, "%s", make_dir("stale"));
    snprintf(path, sizeof path, "%s/m.crm", dir);
    pid_t dead = fork();        /* a PID that no longer runs: a child that has exited and been reaped */
    if (dead == 0) _exit(0);
    CHECK(dead > 0 && waitpid(dead, NULL, 0) == dead);
    const char *kept[] = {"m.crm.tmp.%ld.0", "other.crm.tmp.%ld.0", "m.crm.tmp.abc%ld", "m.crm.tmp.%ld"};
    long kept_pid[] = {(long)getpid(), (long)dead, 0, (long)dead};
    for (int k = 0; k < 4; k++) {
        char base[64];
        snprintf(base, sizeof base, kept[k], kept_pid[k]);
        snprintf(name, sizeof name, "stale/%s", base);
        cr_test_write(name, "x", 1);
    }
    for (int n = 0; n < 3; n++) {
        snprintf(name, sizeof name, "stale/m.crm.tmp.%ld.%d", (long)dead, n);
        cr_test_write(name, "partial", -1);
    }
    CHECK_EQ(count_tmp_files(dir), 7);
    const uint8_t bytes[4] = {1, 2, 3, 4};
    for (int k = 0; k < 2; k++) {       /* both writers sweep: the container's and cr_write_atomic */
        if (k == 0) {
            cr_filew *w;
            CHECK_OK(cr_filew_new(&w, "CRM", 1));
            CHECK_OK(cr_filew_commit(w, path));
            cr_filew_free(w);
        } else {
            for (int n = 0; n < 2; n++) {
                snprintf(name, sizeof name, "stale/m.crm.tmp.%ld.%d", (long)dead, 10 + n);
                cr_test_write(name, "partial", -1);
            }
            cr_span part = {bytes, sizeof bytes};
            CHECK_OK(cr_write_atomic(path, &part, 1));
        }
        CHECK_EQ(count_tmp_files(dir), 4);   /* the live process's, the other target's, the two without PID.N */
        snprintf(name, sizeof name, "%s/m.crm.tmp.%ld.0", dir, (long)getpid());
        CHECK(cr_test_file_exists(name));
        snprintf(name, sizeof name, "%s/other.crm.tmp.%ld.0", dir, (long)dead);
        CHECK(cr_test_file_exists(name));
    }
}

/* ---- allocation failures ---- */

static cr_status write_then_read(const char *path) {
    static const int32_t ids[4] = {4, 3, 2, 1};
    static const double vals[3] = {0.5, 1.5, 2.5};
    cr_filew *w = NULL;
    cr_file *f = NULL;
    cr_status st = cr_filew_new(&w, "CRD", 1);
    if (!st) st = cr_filew_meta_i64(w, "n", 4);
    if (!st) st = cr_filew_meta_f64(w, "x", 0.5);
    if (!st) st = cr_filew_meta_str(w, "s", "hello");
    for (int i = 0; i < 20 && !st; i++) {   /* enough entries to make cr_grow reallocate */
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        st = cr_filew_meta_i64(w, key, i);
    }
    if (!st) st = cr_filew_array(w, "ids", CR_DT_I32, ids, 4);
    if (!st) st = cr_filew_array(w, "vals", CR_DT_F64, vals, 3);
    if (!st) st = cr_filew_commit(w, path);
    if (!st) st = cr_file_open(&f, path, "CRD", 1);
    const char *s;
    const void *p;
    if (!st) st = cr_file_get_str(f, "s", &s);
    if (!st) st = cr_file_get_array(f, "vals", CR_DT_F64, 3, &p, NULL);
    cr_file_close(f);
    cr_filew_free(w);
    return st;
}

TEST(io_fault_injection) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", make_dir("faults"));
    snprintf(path, sizeof path, "%s/f.crd", dir);
    int64_t live0 = cr_alloc_get_stats().n_live;
    int64_t n;
    for (n = 1; n < 1000; n++) {
        unlink(path);
        cr_alloc_fail_nth(n);
        cr_status st = write_then_read(path);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "allocation %lld failed -> %s (%s)", (long long)n, cr_status_str(st), cr_errmsg());
        CHECK_MSG(cr_alloc_get_stats().n_live == live0, "allocation %lld failed -> leaked %lld blocks", (long long)n,
                  (long long)(cr_alloc_get_stats().n_live - live0));
        CHECK_EQ(count_tmp_files(dir), 0);
    }
    CHECK(n > 10 && n < 1000);   /* the loop really went through the allocations and then succeeded */
}

/* ---- the inspect command (through the binary; skipped when it has not been built) ---- */

TEST(io_inspect_cli) {
    const char *bin = getenv("CROSSREC_BIN");
    if (!cr_test_file_exists(bin && *bin ? bin : "build/current/crossrec")) cr_test_skip("crossrec binary not built");
    char path[512];
    snprintf(path, sizeof path, "%s", cr_test_path("inspect.crd"));
    write_small(path);
    char *out;
    CHECK_EQ(cr_test_cli(&out, "inspect '%s'", path), 0);
    CHECK_CONTAINS(out, "kind       CRD (dataset)");
    CHECK_CONTAINS(out, "checksum   ok (crc32c 0x");
    CHECK_CONTAINS(out, "n_users  i64     42");
    CHECK_CONTAINS(out, "alpha    f64     0.25");
    CHECK_CONTAINS(out, "name     string  \"books\"");
    CHECK_CONTAINS(out, "  ids    i32");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "inspect --json '%s'", path), 0);
    CHECK_CONTAINS(out, "\"checksum\": \"ok\"");
    CHECK_CONTAINS(out, "\"key\": \"alpha\"");
    CHECK_CONTAINS(out, "\"dtype\": \"f64\"");
    free(out);
    /* A damaged file: exit 1 and the reader's message. */
    size_t len;
    char *b = cr_test_read(path, &len);
    CHECK(b);
    b[100] ^= 4;
    const char *bad = cr_test_write("inspect-bad.crd", b, (long)len);
    free(b);
    CHECK_EQ(cr_test_cli(&out, "inspect '%s'", bad), 1);
    CHECK_CONTAINS(out, "crossrec: error: ");
    CHECK_CONTAINS(out, "inspect-bad.crd: checksum mismatch");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "inspect"), 2);
    free(out);
}

/* test_embed.c — .npy files byte for byte as NumPy writes them, `crossrec embed` (hash-tfidf, word vectors,
 * minilm when models/minilm.crm exists) and `crossrec similar-text` on crafted catalogues, and their errors. */
#include "test.h"
#include "crossrec/data.h"
#include "crossrec/embed.h"
#include "crossrec/io.h"

#include <stdlib.h>

TEST(npy_header_matches_numpy) {
    /* numpy.save(f, np.zeros((2, 3), '<f4')): magic, version 1.0, HLEN = 118 (0x76), the dict, 20 spaces of
     * room for the first axis + 38 spaces of padding, '\n': 128 bytes before the data. */
    char want[128];
    memcpy(want, "\x93NUMPY\x01\x00\x76\x00", 10);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK_EQ(strlen(dict), 59);
    memcpy(want + 10, dict, 59);
    memset(want + 69, ' ', 58);
    want[127] = '\n';
    char got[256];
    size_t len = 0;
    CHECK_OK(cr_npy_header_f32(2, 3, got, sizeof got, &len));
    CHECK_EQ(len, 128);
    CHECK(!memcmp(got, want, 128));
    /* A first axis of 21 digits leaves no room; a dict already at a multiple of 64 gets a full 64 more. */
    CHECK_OK(cr_npy_header_f32(38396, 256, got, sizeof got, &len));
    CHECK_EQ(len, 128);
    CHECK_EQ((unsigned char)got[8] | ((unsigned char)got[9] << 8), 118);
    const char *dict2 = "{'descr': '<f4', 'fortran_order': False, 'shape': (38396, 256), }";
    CHECK(!memcmp(got + 10, dict2, strlen(dict2)));
    CHECK(got[10 + strlen(dict2) + 16] == ' ' && got[127] == '\n');
    CHECK_OK(cr_npy_header_f32(0, 5, got, sizeof got, &len));
    CHECK_EQ(len % 64, 0);
    CHECK_STATUS(cr_npy_header_f32(-1, 5, got, sizeof got, &len), CR_ERR_ARG);
}

TEST(npy_round_trip_and_bad_files) {
    float x[2 * 3] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-8f, -7.0f};
    const char *path = cr_test_path("m.npy");
    CHECK_OK(cr_npy_write_f32(path, x, 2, 3));
    size_t len;
    char *bytes = cr_test_read(path, &len);
    CHECK(bytes);
    CHECK_EQ(len, 128 + sizeof x);
    CHECK(!memcmp(bytes + 128, x, sizeof x));
    float *y;
    int64_t r, c;
    CHECK_OK(cr_npy_read_f32(path, &y, &r, &c));
    CHECK_EQ(r, 2);
    CHECK_EQ(c, 3);
    CHECK(!memcmp(x, y, sizeof x));
    cr_free(y);
    /* Truncated data, another dtype, a missing file, a bad directory (nothing left behind). */
    const char *bad = cr_test_write("trunc.npy", bytes, (long)len - 4);
    CHECK_STATUS(cr_npy_read_f32(bad, &y, &r, &c), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "trunc.npy: .npy data is 20 bytes");
    CHECK(y == NULL);
    bytes[22] = '8';   /* '<f4' -> '<f8' */
    bad = cr_test_write("f8.npy", bytes, (long)len);
    CHECK_STATUS(cr_npy_read_f32(bad, &y, &r, &c), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "float32");
    free(bytes);
    CHECK_STATUS(cr_npy_read_f32(cr_test_path("absent.npy"), &y, &r, &c), CR_ERR_IO);
    const char *nodir = cr_test_path("no/such/dir/m.npy");
    CHECK_STATUS(cr_npy_write_f32(nodir, x, 2, 3), CR_ERR_IO);
    CHECK(!cr_test_file_exists(nodir));
}

/* A small two-domain catalogue whose nearest neighbours are obvious: i2 is i1 with one word changed, i5 is i1's
 * words in the other domain, i7's title is one word. Returns the .crd path (a static buffer). */
static const char *crafted_dataset(void) {
    const char *items = cr_test_write("emb_items.tsv",
                                      "item\tdomain\ttitle\ttext\n"
                                      "i1\tbooks\tred wooden pencil box\tstationery\n"
                                      "i2\tbooks\tred wooden pencil case\tstationery\n"
                                      "i3\tbooks\tblue ocean novel\tfiction\n"
                                      "i4\tbooks\thistory of rome\thistory\n"
                                      "i5\tmusic\tred wooden pencil box song\tpop\n"
                                      "i6\tmusic\tjazz piano trio\tjazz\n"
                                      "i7\tmusic\tpiano\tjazz\n",
                                      -1);
    const char *inter = cr_test_write("emb_inter.tsv",
                                      "user\titem\n"
                                      "u1\ti1\nu1\ti2\nu1\ti5\nu2\ti3\nu2\ti4\nu2\ti6\nu3\ti7\nu3\ti1\n",
                                      -1);
    static char crd[1024];   /* cr_test_path's buffers rotate */
    snprintf(crd, sizeof crd, "%s", cr_test_path("emb.crd"));
    char *text;
    int rc = cr_test_cli(&text, "import --interactions '%s' --items '%s' -o '%s' -q", inter, items, crd);
    CHECK_MSG(rc == 0, "import: %s", text);
    free(text);
    return crd;
}

/* Reads an .npy and checks its shape and that every non-zero row has unit length. */
static float *read_rows(const char *path, int64_t want_rows, int64_t want_cols) {
    float *y;
    int64_t r, c;
    CHECK_OK(cr_npy_read_f32(path, &y, &r, &c));
    CHECK_EQ(r, want_rows);
    CHECK_EQ(c, want_cols);
    for (int64_t i = 0; i < r; i++) {
        double s = 0;
        for (int64_t j = 0; j < c; j++) s += (double)y[i * c + j] * y[i * c + j];
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    return y;
}

TEST(cli_embed_hash_tfidf) {
    const char *crd = crafted_dataset();
    const char *out = cr_test_path("h.npy"), *out2 = cr_test_path("h2.npy");
    char *text;
    int rc = cr_test_cli(&text, "embed '%s' --method hash-tfidf -o '%s' --dim 64 --threads 1", crd, out);
    CHECK_MSG(rc == 0, "%s", text);
    CHECK_CONTAINS(text, "7 items x 64 (hash-tfidf)");
    free(text);
    float *y = read_rows(out, 7, 64);
    /* Rows in the dataset's item order: the same as the library computes. */
    cr_dataset *d;
    CHECK_OK(cr_dataset_load(&d, crd));
    cr_embed_params p = cr_embed_default_params();
    p.dim = 64;
    float *z;
    int64_t dim;
    CHECK_OK(cr_embed_items(d, &p, &z, &dim));
    CHECK_EQ(dim, 64);
    CHECK(!memcmp(y, z, 7 * 64 * sizeof(float)));
    /* i1 is closer to i2 (one word changed) than to i3 (nothing in common). */
    int32_t i1 = cr_dataset_find_item(d, "i1"), i2 = cr_dataset_find_item(d, "i2"), i3 = cr_dataset_find_item(d, "i3");
    double s12 = 0, s13 = 0;
    for (int j = 0; j < 64; j++) s12 += y[i1 * 64 + j] * y[i2 * 64 + j], s13 += y[i1 * 64 + j] * y[i3 * 64 + j];
    CHECK_MSG(s12 > 0.5 && s12 > s13 + 0.3, "cos(i1,i2) %.3f cos(i1,i3) %.3f", s12, s13);
    cr_free(z);
    cr_dataset_free(d);
    /* Any thread count and --fields both: same bytes / other rows. */
    rc = cr_test_cli(&text, "embed '%s' -o '%s' --dim 64 --threads 2", crd, out2);
    CHECK_MSG(rc == 0, "%s", text);
    free(text);
    size_t la, lb;
    char *a = cr_test_read(out, &la), *b = cr_test_read(out2, &lb);
    CHECK(la == lb && !memcmp(a, b, la));
    free(b);
    rc = cr_test_cli(&text, "embed '%s' -o '%s' --dim 64 --fields both", crd, out2);
    CHECK_MSG(rc == 0, "%s", text);
    free(text);
    b = cr_test_read(out2, &lb);
    CHECK(la == lb && memcmp(a + 128, b + 128, la - 128));
    free(a);
    free(b);
    cr_free(y);
}

TEST(cli_embed_wordvec) {
    const char *crd = crafted_dataset();
    const char *vec = cr_test_write("small.vec",
                                    "8 3\n"
                                    "red 1 0 0\nwooden 0.8 0.2 0\npencil 0.9 0 0.1\nbox 1 0.1 0\n"
                                    "case 0.9 0.2 0\nocean 0 1 0\npiano 0 0.6 0.8\njazz 0 0.5 0.9\n",
                                    -1);
    const char *out = cr_test_path("w.npy");
    char *text;
    int rc = cr_test_cli(&text, "embed '%s' --method 'wordvec:%s' -o '%s'", crd, vec, out);
    CHECK_MSG(rc == 0, "%s", text);
    CHECK_CONTAINS(text, "7 items x 3");
    free(text);
    float *y;
    int64_t r, c;
    CHECK_OK(cr_npy_read_f32(out, &y, &r, &c));
    CHECK_EQ(r, 7);
    CHECK_EQ(c, 3);
    cr_dataset *d;
    CHECK_OK(cr_dataset_load(&d, crd));
    /* i7's title is the one word "piano": its row is that word's vector, normalised (already unit length). */
    int32_t i7 = cr_dataset_find_item(d, "i7"), i4 = cr_dataset_find_item(d, "i4");
    CHECK_NEAR(y[i7 * 3 + 0], 0.0, 1e-6);
    CHECK_NEAR(y[i7 * 3 + 1], 0.6, 1e-6);
    CHECK_NEAR(y[i7 * 3 + 2], 0.8, 1e-6);
    /* "history of rome": no known word, a zero row. */
    CHECK(y[i4 * 3] == 0 && y[i4 * 3 + 1] == 0 && y[i4 * 3 + 2] == 0);
    cr_free(y);
    cr_dataset_free(d);
}

TEST(cli_embed_minilm) {
    const char *crd = crafted_dataset();
    char *text;
    const char *out = cr_test_path("minilm.npy");
    if (!cr_test_file_exists("models/minilm.crm")) {
        /* Without the model: exit 1, the missing file named, the hint to run `make models`. */
        int rc = cr_test_cli(&text, "embed '%s' --method minilm -o '%s'", crd, out);
        CHECK_EQ(rc, 1);
        CHECK_CONTAINS(text, "models/minilm.crm");
        CHECK_CONTAINS(text, "make models");
        CHECK(!cr_test_file_exists(out));
        free(text);
        cr_test_skip("models/minilm.crm absent (make models); checked the error only");
    }
    int rc = cr_test_cli(&text, "embed '%s' --method minilm -o '%s'", crd, out);
    CHECK_MSG(rc == 0, "%s", text);
    free(text);
    float *y = read_rows(out, 7, 384);
    cr_free(y);
    rc = cr_test_cli(&text, "similar-text '%s' --item i1 -k 1 --method minilm", crd);
    CHECK_MSG(rc == 0, "%s", text);
    CHECK_CONTAINS(text, "\ni2\tbooks\t");
    free(text);
}

TEST(cli_similar_text) {
    const char *crd = crafted_dataset();
    char *text;
    int rc = cr_test_cli(&text, "similar-text '%s' --item i1 -k 2", crd);
    CHECK_MSG(rc == 0, "%s", text);
    /* Header, then i2 first; the same domain only, never the item itself. */
    CHECK_MSG(!strncmp(text, "item\tdomain\tscore\ttitle\ni2\tbooks\t", 33), "%s", text);
    CHECK_CONTAINS(text, "red wooden pencil case");
    CHECK(!strstr(text, "music"));
    CHECK(!strstr(text, "\ni1\t"));
    free(text);
    /* Any domain: i5 (i1's words plus one) comes first; --domain music restricts to it. */
    rc = cr_test_cli(&text, "similar-text '%s' --item i1 -k 3 --domain all", crd);
    CHECK_MSG(rc == 0, "%s", text);
    CHECK_MSG(!strncmp(text, "item\tdomain\tscore\ttitle\ni5\tmusic\t", 33), "%s", text);
    free(text);
    rc = cr_test_cli(&text, "similar-text '%s' --item i6 -k 1 --domain music", crd);
    CHECK_MSG(rc == 0, "%s", text);
    CHECK_CONTAINS(text, "\ni7\tmusic\t");
    free(text);
    /* Precomputed vectors give the same list. */
    const char *npy = cr_test_path("s.npy");
    CHECK_EQ(cr_test_cli(&text, "embed '%s' -o '%s' -q", crd, npy), 0);
    free(text);
    char *a, *b;
    CHECK_EQ(cr_test_cli(&a, "similar-text '%s' --item i3 -k 3", crd), 0);
    CHECK_EQ(cr_test_cli(&b, "similar-text '%s' --item i3 -k 3 --vectors '%s'", crd, npy), 0);
    CHECK_STR(a, b);
    free(a);
    free(b);
}

TEST(cli_embed_errors) {
    const char *crd = crafted_dataset();
    const char *out = cr_test_path("e.npy");
    char *text;
    CHECK_EQ(cr_test_cli(&text, "embed '%s' --method foo -o '%s'", crd, out), 2);
    CHECK_CONTAINS(text, "unknown text method 'foo'");
    CHECK_CONTAINS(text, "hint: methods: hash-tfidf, minilm, wordvec:FILE");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "embed '%s' --method wordvec -o '%s'", crd, out), 2);
    CHECK_CONTAINS(text, "wordvec:FILE");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "embed '%s' --method wordvec:/nonexistent/v.vec -o '%s'", crd, out), 1);
    CHECK_CONTAINS(text, "crossrec: error: /nonexistent/v.vec: cannot open");
    free(text);
    CHECK(!cr_test_file_exists(out));
    CHECK_EQ(cr_test_cli(&text, "embed '%s'", crd), 2);
    CHECK_CONTAINS(text, "-o items.npy");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "embed '%s' -o '%s' --fields body", crd, out), 2);
    CHECK_CONTAINS(text, "--fields must be title, text or both");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "similar-text '%s' --item zzz9", crd), 1);
    CHECK_CONTAINS(text, "crossrec: error: item 'zzz9' is not in");
    CHECK_CONTAINS(text, "hint:");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "similar-text '%s' --item i1 --domain films", crd), 1);
    CHECK_CONTAINS(text, "domain 'films' is not in");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "similar-text '%s'", crd), 2);
    CHECK_CONTAINS(text, "--item ID");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "similar-text '%s' --item i1 -k 0", crd), 2);
    free(text);
}

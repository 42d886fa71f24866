/* test_wordvec.c — word vectors: the text formats (word2vec / fastText header, GloVe, gzip, memory), every kind
 * of bad input with its file:line message, the memory cap against a hostile header, lookups and neighbours,
 * item vectors pinned to hand-computed averages, seeding a hashed table, the SGNS step against finite
 * differences, training (determinism, what it learns on a toy corpus), .crm save/load and .vec export round
 * trips, allocation failures, and the Amazon catalogue when ../shared/data is present. */
#include "test.h"

#include "crossrec/wordvec.h"
#include "text/wordvec_impl.h"

#include <stdlib.h>
#include <zlib.h>

/* ---- helpers ---- */

static cr_wordvec *load_ok(const char *name, const char *content, const cr_wordvec_load_opts *o) {
    cr_wordvec *wv = NULL;
    CHECK_OK(cr_wordvec_load(&wv, cr_test_write(name, content, -1), o));
    CHECK(wv != NULL);
    return wv;
}

/* Loading `content` fails with `want`, a message containing `needle`, and no vectors. */
static void load_fails(const char *name, const char *content, long len, const cr_wordvec_load_opts *o, cr_status want,
                       const char *needle) {
    cr_wordvec *wv = (cr_wordvec *)1;
    cr_status st = cr_wordvec_load(&wv, cr_test_write(name, content, len), o);
    CHECK_MSG(st == want, "%s: got %s (%s), want %s", name, cr_status_str(st), cr_errmsg(), cr_status_str(want));
    CHECK_MSG(wv == NULL, "%s: vectors returned on error", name);
    CHECK_CONTAINS(cr_errmsg(), needle);
}

static void check_vec(const cr_wordvec *wv, const char *word, const float *want) {
    int32_t r = cr_wordvec_find(wv, word, (int64_t)strlen(word));
    CHECK_MSG(r >= 0, "word '%s' not found", word);
    const float *v = cr_wordvec_vector(wv, r);
    for (int64_t j = 0; j < cr_wordvec_dim(wv); j++)
        CHECK_MSG(v[j] == want[j], "'%s'[%lld] = %.9g, want %.9g", word, (long long)j, v[j], want[j]);
    CHECK_STR(cr_wordvec_word(wv, r), word);
}

static void write_gz(const char *path, const char *data) {
    gzFile gz = gzopen(path, "wb");
    CR_ASSERT(gz);
    size_t n = strlen(data);
    CR_ASSERT(gzwrite(gz, data, (unsigned)n) == (int)n);
    CR_ASSERT(gzclose(gz) == Z_OK);
}

static double cosine(const float *a, const float *b, int64_t dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < dim; j++) ab += (double)a[j] * b[j], aa += (double)a[j] * a[j], bb += (double)b[j] * b[j];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* ---- the formats ---- */

/* fastText .vec: header, exact floats, normalised words, the first of two spellings wins, CR LF, a BOM, trailing
 * blanks, blank lines, a word that normalises to nothing, invalid UTF-8 repaired. */
static const char *VEC =
    "\xef\xbb\xbf" "6 3\r\n"
    "Pen 0.5 -1.25 3e-05 \r\n"
    "\r\n"
    "red\t1\t2\t-0\n"
    "PEN 9 9 9\n"
    "\xe2\x80\x8b 1 1 1\n"
    "b\xff" "d 0.1 0.2 0.3\n"
    "Caf\xc3\xa9 1e-3 -2.5E+2 .5\n";

TEST(wordvec_load_vec) {
    cr_wordvec *wv = load_ok("a.vec", VEC, NULL);
    const cr_wordvec_info *in = cr_wordvec_get_info(wv);
    CHECK_EQ(cr_wordvec_dim(wv), 3);
    CHECK_EQ(cr_wordvec_size(wv), 4);
    CHECK_EQ(in->n_words, 4);
    CHECK_EQ(in->header_words, 6);
    CHECK_EQ(in->n_lines, 6);
    CHECK_EQ(in->n_duplicates, 1);
    CHECK_EQ(in->n_empty, 1);
    CHECK_EQ(in->n_replaced, 1);
    CHECK_EQ(in->has_subwords, 0);
    check_vec(wv, "pen", (float[]){0.5f, -1.25f, 3e-05f});      /* the first "pen" wins */
    check_vec(wv, "red", (float[]){1, 2, -0.0f});
    check_vec(wv, "b\xef\xbf\xbd" "d", (float[]){0.1f, 0.2f, 0.3f});
    check_vec(wv, "café", (float[]){1e-3f, -250.0f, 0.5f});
    CHECK_EQ(cr_wordvec_find(wv, "pen", 3), 0);
    CHECK_EQ(cr_wordvec_find(wv, "Pen", 3), -1);   /* lookups take normalised words */
    CHECK_EQ(cr_wordvec_find(wv, "pe", 2), -1);
    CHECK(signbit(cr_wordvec_vector(wv, 1)[2]));
    cr_wordvec_free(wv);
}

TEST(wordvec_load_glove_and_word2vec) {
    /* GloVe: no header, D from the first line */
    cr_wordvec *wv = load_ok("glove.txt", "the 0.418 0.24968\n, 0.013441 0.23682\nof -0.1529 -0.24279\n", NULL);
    CHECK_EQ(cr_wordvec_dim(wv), 2);
    CHECK_EQ(cr_wordvec_size(wv), 3);
    CHECK_EQ(cr_wordvec_get_info(wv)->header_words, -1);
    check_vec(wv, ",", (float[]){0.013441f, 0.23682f});
    check_vec(wv, "of", (float[]){-0.1529f, -0.24279f});
    cr_wordvec_free(wv);

    /* word2vec text: header, and the trailing space its writer leaves on every line; no final newline */
    cr_wordvec_load_opts o = cr_wordvec_default_load_opts();
    o.format = CR_WORDVEC_HEADER;
    wv = load_ok("w2v.txt", "2 4\n</s> 0.001 -0.002 0.003 0.004 \nking 0.1 0.2 0.3 0.4 ", &o);
    CHECK_EQ(cr_wordvec_dim(wv), 4);
    check_vec(wv, "</s>", (float[]){0.001f, -0.002f, 0.003f, 0.004f});
    check_vec(wv, "king", (float[]){0.1f, 0.2f, 0.3f, 0.4f});
    cr_wordvec_free(wv);

    /* "123 4" is a header to AUTO, a word and its one number to GLOVE */
    o.format = CR_WORDVEC_GLOVE;
    wv = load_ok("one_dim.txt", "123 4\nabc 5\n", &o);
    CHECK_EQ(cr_wordvec_dim(wv), 1);
    check_vec(wv, "123", (float[]){4});
    check_vec(wv, "abc", (float[]){5});
    cr_wordvec_free(wv);
    wv = load_ok("header_empty.vec", "0 7\n", NULL);   /* a header announcing no words */
    CHECK_EQ(cr_wordvec_size(wv), 0);
    CHECK_EQ(cr_wordvec_dim(wv), 7);
    CHECK_EQ(cr_wordvec_find(wv, "x", 1), -1);
    cr_wordvec_free(wv);

    /* GloVe 840B has words with spaces; with a header giving D, the last D fields are the numbers */
    o = cr_wordvec_default_load_opts();
    o.words_with_spaces = 1;
    wv = load_ok("spaces.vec", "2 2\n. . . 0.5 1\nat name@domain.com 2 3\n", &o);
    check_vec(wv, ". . .", (float[]){0.5f, 1});
    check_vec(wv, "at name@domain.com", (float[]){2, 3});
    cr_wordvec_free(wv);
}

TEST(wordvec_load_gzip_memory_limit) {
    const char *gz = cr_test_path("a.vec.gz");
    write_gz(gz, VEC);
    cr_wordvec *a = load_ok("plain.vec", VEC, NULL), *b = NULL, *c = NULL;
    CHECK_OK(cr_wordvec_load(&b, gz, NULL));
    CHECK_OK(cr_wordvec_load_mem(&c, VEC, strlen(VEC), "mem.vec", NULL));
    CHECK_EQ(cr_wordvec_size(b), 4);
    CHECK_EQ(cr_wordvec_size(c), 4);
    for (int32_t r = 0; r < 4; r++) {
        CHECK_STR(cr_wordvec_word(a, r), cr_wordvec_word(b, r));
        CHECK_STR(cr_wordvec_word(a, r), cr_wordvec_word(c, r));
        CHECK(!memcmp(cr_wordvec_vector(a, r), cr_wordvec_vector(b, r), 3 * sizeof(float)));
        CHECK(!memcmp(cr_wordvec_vector(a, r), cr_wordvec_vector(c, r), 3 * sizeof(float)));
    }
    cr_wordvec_free(a), cr_wordvec_free(b), cr_wordvec_free(c);

    /* max_words reads the first lines only, and then the header's count is not checked */
    cr_wordvec_load_opts o = cr_wordvec_default_load_opts();
    o.max_words = 2;
    a = load_ok("first2.vec", VEC, &o);
    CHECK_EQ(cr_wordvec_size(a), 2);
    CHECK_EQ(cr_wordvec_get_info(a)->n_lines, 2);
    cr_wordvec_free(a);
}

/* Lines longer than the first buffer and spread over many refills, plain and gzip'ed. */
TEST(wordvec_load_long_lines) {
    const int64_t dim = 3000, n = 300;
    size_t cap = (size_t)n * (size_t)dim * 12 + 100, at = 0;
    char *s = malloc(cap);
    CHECK(s);
    at += (size_t)snprintf(s + at, cap - at, "%lld %lld\n", (long long)n, (long long)dim);
    for (int64_t i = 0; i < n; i++) {
        at += (size_t)snprintf(s + at, cap - at, "w%lld", (long long)i);
        for (int64_t j = 0; j < dim; j++) at += (size_t)snprintf(s + at, cap - at, " %.6g", (double)((i * 7 + j) % 8000) / 8);
        s[at++] = '\n';
    }
    s[at] = '\0';
    const char *gz = cr_test_path("long.vec.gz");
    write_gz(gz, s);
    cr_wordvec_load_opts o = cr_wordvec_default_load_opts();
    o.max_line = 64 << 10;
    for (int pass = 0; pass < 2; pass++) {
        cr_wordvec *wv = NULL;
        double t0 = cr_now();
        CHECK_OK(cr_wordvec_load(&wv, pass ? gz : cr_test_write("long.vec", s, (long)at), &o));
        double dt = cr_now() - t0;
        printf("     %s: %.1f MB in %.0f ms (%.0f MB/s of text)\n", pass ? "gzip" : "plain", (double)at / 1e6, dt * 1e3,
               (double)at / 1e6 / dt);
        CHECK_EQ(cr_wordvec_size(wv), n);
        for (int64_t i = 0; i < n; i += 37) {
            char w[32];
            snprintf(w, sizeof w, "w%lld", (long long)i);
            int32_t r = cr_wordvec_find(wv, w, (int64_t)strlen(w));
            CHECK_EQ(r, i);
            CHECK(cr_wordvec_vector(wv, r)[dim - 1] == (float)((double)((i * 7 + dim - 1) % 8000) / 8));
        }
        cr_wordvec_free(wv);
    }
    o.max_line = 1000;
    load_fails("long2.vec", s, (long)at, &o, CR_ERR_LIMIT, "long2.vec:2: line longer than 1000 bytes");
    /* one line longer than the first buffer (1 MiB): the buffer grows */
    const size_t big = (size_t)3 << 19;
    memcpy(s, "1 2\n", 4);
    memset(s + 4, 'q', big);
    memcpy(s + 4 + big, " 1 2\n", 6);
    cr_wordvec *wv = load_ok("bigword.vec", s, NULL);
    CHECK_EQ(cr_wordvec_size(wv), 1);
    CHECK_EQ(strlen(cr_wordvec_word(wv, 0)), big);
    cr_wordvec_free(wv);
    free(s);
}

/* ---- bad input: a clear message naming file:line, no vectors, nothing leaked ---- */

TEST(wordvec_load_errors) {
    cr_wordvec_load_opts o = cr_wordvec_default_load_opts();
    load_fails("cols.vec", "2 3\npen 1 2 3\nred 1 2 3 4 5\n", -1, NULL, CR_ERR_PARSE,
               "cols.vec:3: 5 numbers after the word, but the dimension is 3 (from the header, line 1)");
    load_fails("cols1.vec", "2 3\npen 1 2 3\nred\n", -1, NULL, CR_ERR_PARSE,
               "cols1.vec:3: expected 4 fields (a word and 3 numbers), found 1");
    load_fails("glove_dim.txt", "a 1 2\nb 1 2\n\nc 1\n", -1, NULL, CR_ERR_PARSE,
               "glove_dim.txt:4: 1 number after the word, but the dimension is 2 (from the first vector, line 1)");
    load_fails("glove_one.txt", "lonely\n", -1, NULL, CR_ERR_PARSE, "glove_one.txt:1: expected a word and its numbers");
    load_fails("nan.vec", "1 3\npen 1 NaN 3\n", -1, NULL, CR_ERR_PARSE,
               "nan.vec:2: field 3 (value 2 of 'pen'): 'NaN' is NaN or infinite (not allowed)");
    load_fails("inf.vec", "1 3\npen 1 2 -inf\n", -1, NULL, CR_ERR_PARSE,
               "inf.vec:2: field 4 (value 3 of 'pen'): '-inf' is NaN or infinite");
    load_fails("range.vec", "1 2\npen 1e39 0\n", -1, NULL, CR_ERR_PARSE,
               "range.vec:2: field 2 (value 1 of 'pen'): '1e39' is out of the float range");
    load_fails("nonum.vec", "1 2\npen 0.5 x1\n", -1, NULL, CR_ERR_PARSE,
               "nonum.vec:2: field 3 (value 2 of 'pen'): 'x1' is not a number");
    load_fails("comma.vec", "1 2\npen 0,5 1\n", -1, NULL, CR_ERR_PARSE, "'0,5' is not a number");
    load_fails("hex.vec", "1 1\npen 0x10\n", -1, NULL, CR_ERR_PARSE, "'0x10' is not a number");
    load_fails("fewer.vec", "3 2\na 1 2\nb 1 2\n\n", -1, NULL, CR_ERR_PARSE,
               "fewer.vec:4: the file ends after 2 vectors, but the header (line 1) announces 3");
    load_fails("more.vec", "1 2\na 1 2\nb 1 2\n", -1, NULL, CR_ERR_PARSE,
               "more.vec:3: more vectors than the 1 that the header (line 1) announces");
    o.format = CR_WORDVEC_HEADER;
    load_fails("nohead.vec", "pen 1 2\n", -1, &o, CR_ERR_PARSE,
               "nohead.vec:1: expected the header \"N D\" (word count and dimension), found 'pen 1 2'");
    load_fails("dim0.vec", "5 0\n", -1, NULL, CR_ERR_PARSE, "dim0.vec:1: the header gives dimension 0");
    load_fails("bigdim.vec", "1 70000\n", -1, NULL, CR_ERR_LIMIT, "bigdim.vec:1: dimension 70000 is above");
    load_fails("bign.vec", "99999999999 3\n", -1, NULL, CR_ERR_LIMIT, "bign.vec:1: the header announces 99999999999 words");
    load_fails("empty.vec", "", 0, NULL, CR_ERR_PARSE, "empty.vec: the file is empty");
    load_fails("blank.vec", "\n  \n\t\r\n", -1, NULL, CR_ERR_PARSE, "blank.vec: the file is empty");
    cr_wordvec *none = (cr_wordvec *)1;
    CHECK_STATUS(cr_wordvec_load(&none, cr_test_path("no_such_dir/none.vec"), NULL), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "none.vec: cannot open");
    CHECK(none == NULL);
    o = cr_wordvec_default_load_opts();
    o.words_with_spaces = 1;
    load_fails("spaces_glove.txt", "a b 1 2\n", -1, &o, CR_ERR_ARG, "needs a header");

    /* word2vec's binary format: same header, raw floats; the hint says so */
    load_fails("binary.bin", "2 3\npen \x01\x02\x03\x80\x3f\x00\x00\x00\x40 x\n", 20, NULL, CR_ERR_PARSE, "binary.bin:2:");
    CHECK_CONTAINS(cr_errhint(), "binary format");

    /* a corrupt gzip stream */
    const char *gz = cr_test_path("corrupt.vec.gz");
    write_gz(gz, VEC);
    size_t len;
    char *bytes = cr_test_read(gz, &len);
    CHECK(bytes && len > 30);
    bytes[len / 2] ^= 0x55;
    bytes[len / 2 + 1] ^= 0x55;
    load_fails("corrupt2.vec.gz", bytes, (long)len, NULL, CR_ERR_IO, "corrupt2.vec.gz");
    load_fails("truncated.vec.gz", bytes, 20, NULL, CR_ERR_IO, "truncated");
    free(bytes);

    cr_wordvec *wv = (cr_wordvec *)1;
    o = cr_wordvec_default_load_opts();
    o.max_line = 0;
    CHECK_STATUS(cr_wordvec_load(&wv, cr_test_path("a.vec"), &o), CR_ERR_ARG);
    CHECK(wv == NULL);
    o = cr_wordvec_default_load_opts(), o.format = 9;
    CHECK_STATUS(cr_wordvec_load_mem(&wv, "", 0, "x", &o), CR_ERR_ARG);
}

/* A header announcing 2^31 - 2 words of dimension 65536 (a petabyte) allocates by what is read, not by N; and
 * max_bytes stops a file whose real vectors outgrow it. */
TEST(wordvec_load_hostile_header) {
    cr_alloc_reset_peak();
    int64_t base = cr_alloc_get_stats().live_bytes;
    cr_wordvec *wv = NULL;
    load_fails("hostile.vec", "2147483646 65536\nx 1\n", -1, NULL, CR_ERR_PARSE,
               "hostile.vec:2: 1 number after the word, but the dimension is 65536 (from the header, line 1)");
    int64_t peak = cr_alloc_get_stats().peak_bytes - base;
    printf("     hostile header: peak %lld bytes\n", (long long)peak);
    CHECK(peak < (int64_t)80 << 20);   /* the first rows (64 MiB at most) and buffers */

    cr_wordvec_load_opts o = cr_wordvec_default_load_opts();
    o.max_bytes = 100 * 4 * 3;         /* 100 vectors of dimension 3 */
    char *s = malloc(20000);
    size_t at = 0;
    for (int i = 0; i < 500; i++) at += (size_t)snprintf(s + at, 20000 - at, "w%d 1 2 3\n", i);
    load_fails("capped.txt", s, (long)at, &o, CR_ERR_LIMIT, "capped.txt:");
    CHECK_CONTAINS(cr_errmsg(), "more than max_bytes (1200 bytes)");
    o.max_bytes = (int64_t)1 << 20;
    CHECK_OK(cr_wordvec_load_mem(&wv, s, at, "mem.txt", &o));
    CHECK_EQ(cr_wordvec_size(wv), 500);
    cr_wordvec_free(wv);
    free(s);
}

/* ---- lookups ---- */

static const char *SMALL = "5 3\npen 1 0 0\npencil 0.9 0.1 0\nred 0 1 0\nzero 0 0 0\nblue 0 0.8 0.6\n";

TEST(wordvec_nearest_and_embed) {
    cr_wordvec *wv = load_ok("small.vec", SMALL, NULL);
    int32_t rows[4];
    float sims[4];
    int n;
    const float q[3] = {1, 0, 0};
    CHECK_OK(cr_wordvec_nearest(wv, q, -1, 4, rows, sims, &n));
    CHECK_EQ(n, 4);   /* the zero vector is never a neighbour */
    CHECK_STR(cr_wordvec_word(wv, rows[0]), "pen");
    CHECK_STR(cr_wordvec_word(wv, rows[1]), "pencil");
    CHECK_NEAR(sims[0], 1, 1e-6);
    CHECK_NEAR(sims[1], 0.9 / sqrt(0.82), 1e-6);
    CHECK_NEAR(sims[2], 0, 1e-6);   /* red and blue tie at 0: by row */
    CHECK_STR(cr_wordvec_word(wv, rows[2]), "red");
    CHECK_STR(cr_wordvec_word(wv, rows[3]), "blue");
    CHECK_OK(cr_wordvec_nearest(wv, q, 0, 1, rows, sims, &n));
    CHECK_EQ(n, 1);
    CHECK_STR(cr_wordvec_word(wv, rows[0]), "pencil");

    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    float v[3];
    cr_wordvec_hit hit;
    CHECK_OK(cr_wordvec_embed_word(wv, w, "  RED!", 6, v, &hit));   /* normalised, first token */
    CHECK_EQ(hit, CR_WORDVEC_KNOWN);
    CHECK(v[0] == 0 && v[1] == 1 && v[2] == 0);
    CHECK_OK(cr_wordvec_embed_word(wv, w, "pens", 4, v, &hit));    /* no subwords in a .vec: unknown */
    CHECK_EQ(hit, CR_WORDVEC_OOV);
    CHECK(v[0] == 0 && v[1] == 0 && v[2] == 0);
    CHECK_OK(cr_wordvec_embed_word(wv, w, "...", 3, v, &hit));
    CHECK_EQ(hit, CR_WORDVEC_OOV);
    cr_text_work_free(w);
    cr_wordvec_free(wv);
}

/* ---- item vectors ---- */

static cr_dataset *items_dataset(void) {
    const char *items = "item\tdomain\ttitle\ttext\n"
                        "i0\toffice\tPen, red\tblue\n"
                        "i1\toffice\tpen\t\n"
                        "i2\toffice\tzzz\tpen\n"
                        "i3\toffice\t\t\n";
    const char *inter = "user\titem\ttimestamp\tvalue\nu0\ti0\t1\t1\n";
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = cr_test_write("wv_inter.tsv", inter, -1);
    p.items[p.n_items++] = cr_test_write("wv_items.tsv", items, -1);
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    return d;
}

TEST(wordvec_item_matrix_pinned) {
    cr_dataset *d = items_dataset();
    cr_wordvec *wv = load_ok("items.vec", "3 2\npen 1 0\nred 0 1\nblue 3 4\n", NULL);
    float m[4 * 2];
    cr_wordvec_item_params p = cr_wordvec_default_item_params();
    CHECK_EQ(p.fields, CR_TEXT_FIELD_TITLE);
    CHECK_EQ(p.pooling, CR_WORDVEC_POOL_TFIDF);
    cr_wordvec_item_report r;

    /* mean of the title words: i0 (pen + red) / 2, i1 pen, i2 only an unknown word, i3 nothing */
    p.pooling = CR_WORDVEC_POOL_MEAN, p.l2_normalize = 0, p.threads = 1;
    CHECK_OK(cr_wordvec_item_matrix(wv, d, &p, m, &r));
    float want_mean[8] = {0.5f, 0.5f, 1, 0, 0, 0, 0, 0};
    for (int k = 0; k < 8; k++) CHECK_NEAR(m[k], want_mean[k], 0);
    CHECK_EQ(r.n_tokens, 4);
    CHECK_EQ(r.n_known, 3);
    CHECK_EQ(r.n_oov, 1);
    CHECK_EQ(r.n_subword, 0);
    CHECK_EQ(r.n_empty_items, 2);

    /* TF-IDF over title + text, N = 4: df pen 3, red 1, blue 1; idf = ln(5 / (1 + df)) + 1 */
    p.pooling = CR_WORDVEC_POOL_TFIDF, p.fields = CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT;
    CHECK_OK(cr_wordvec_item_matrix(wv, d, &p, m, &r));
    double ip = log(5.0 / 4) + 1, ir = log(5.0 / 2) + 1, s = ip + 2 * ir;
    CHECK_NEAR(m[0], (ip * 1 + ir * 0 + ir * 3) / s, 1e-6);
    CHECK_NEAR(m[1], (ip * 0 + ir * 1 + ir * 4) / s, 1e-6);
    CHECK_NEAR(m[4], 1, 1e-6);   /* i2: its text "pen" */
    CHECK_NEAR(m[5], 0, 1e-6);
    CHECK_EQ(r.n_empty_items, 1);
    /* unit rows; the same bytes for 1 and 3 threads */
    p.l2_normalize = 1;
    float m3[8];
    CHECK_OK(cr_wordvec_item_matrix(wv, d, &p, m, NULL));
    p.threads = 3;
    CHECK_OK(cr_wordvec_item_matrix(wv, d, &p, m3, NULL));
    CHECK(!memcmp(m, m3, sizeof m));
    CHECK_NEAR(m[0] * m[0] + m[1] * m[1], 1, 1e-6);
    CHECK_NEAR(m[6] + m[7], 0, 0);

    p.fields = 0;
    CHECK_STATUS(cr_wordvec_item_matrix(wv, d, &p, m, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "fields");
    CHECK(m[2] == 0);   /* zeroed on error */
    cr_wordvec_free(wv);
    cr_dataset_free(d);
}

/* ---- seeding a hashed table ---- */

TEST(wordvec_init_buckets) {
    cr_wordvec *wv = load_ok("buckets.vec", "6 2\npen 1 2\n蓝 3 4\n蓝色 5 6\n😀 7 8\ndon't 9 9\nnew_york 9 9\n", NULL);
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 1000;
    int32_t b[4] = {cr_text_bucket(&h, CR_TEXT_TOK_WORD, "pen", 3), cr_text_bucket(&h, CR_TEXT_TOK_CJK, "蓝", 3),
                    cr_text_bucket(&h, CR_TEXT_TOK_BIGRAM, "蓝色", 6), cr_text_bucket(&h, CR_TEXT_TOK_SYMBOL, "😀", 4)};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) CHECK(b[i] != b[j]);
    float *t = malloc(1000 * 2 * sizeof *t);
    for (int k = 0; k < 2000; k++) t[k] = -1;
    int64_t set;
    CHECK_OK(cr_wordvec_init_buckets(wv, &h, t, &set));
    CHECK_EQ(set, 4);   /* don't and new_york are not one token each */
    for (int i = 0; i < 4; i++) {
        CHECK(t[2 * b[i]] == 1 + 2 * i);
        CHECK(t[2 * b[i] + 1] == 2 + 2 * i);
    }
    int64_t untouched = 0;
    for (int k = 0; k < 2000; k++) untouched += t[k] == -1;
    CHECK_EQ(untouched, 2000 - 8);
    /* one bucket: every word collides; the mean of the four */
    h.n_buckets = 1;
    CHECK_OK(cr_wordvec_init_buckets(wv, &h, t, &set));
    CHECK_EQ(set, 1);
    CHECK_NEAR(t[0], 4, 1e-6);
    CHECK_NEAR(t[1], 5, 1e-6);
    h.n_buckets = 0;
    CHECK_STATUS(cr_wordvec_init_buckets(wv, &h, t, &set), CR_ERR_ARG);
    free(t);
    cr_wordvec_free(wv);
}

/* ---- the SGNS step ---- */

/* With lr = 1 the step moves each output row by minus the loss's gradient and each input row by minus n_rows
 * times it (fastText's unnormalised input update); central differences of the double loss (step 2^-10, exact
 * in float) agree. The input is the mean of four rows, one of them listed twice; two context words and two
 * negatives. */
TEST(wordvec_sgns_gradient_check) {
    enum { DIM = 5, B = 6, N = 4 };
    cr_rng r;
    cr_rng_named(&r, 7, "sgns_grad");
    float in[B * DIM], out[N * DIM], in1[B * DIM], out1[N * DIM], hidden[DIM], grad[DIM];
    for (int k = 0; k < B * DIM; k++) in[k] = (float)(0.7 * cr_rng_normal(&r));
    for (int k = 0; k < N * DIM; k++) out[k] = (float)(0.7 * cr_rng_normal(&r));
    const int32_t rows[4] = {1, 3, 3, 5}, targets[4] = {2, 0, 3, 1};
    const uint8_t labels[4] = {1, 0, 1, 0};
    for (int fast = 0; fast < 2; fast++) {
        memcpy(in1, in, sizeof in);
        memcpy(out1, out, sizeof out);
        double l0 = cr_sgns_loss(in, rows, 4, out, targets, labels, 4, DIM);
        float ls = (fast ? cr_sgns_step : cr_sgns_step_ref)(in1, rows, 4, out1, targets, labels, 4, DIM, 1.0f, hidden, grad);
        CHECK_NEAR(ls, l0, 1e-5);
        CHECK(l0 > 0.1);
        const double eps = 1.0 / 1024;
        double max_diff = 0;
        for (int which = 0; which < 2; which++) {
            float *p = which ? out : in, *p1 = which ? out1 : in1;
            int count = which ? N * DIM : B * DIM;
            double scale = which ? 1 : 4;   /* n_rows */
            for (int k = 0; k < count; k++) {
                float keep = p[k];
                p[k] = keep + (float)eps;
                double lp = cr_sgns_loss(in, rows, 4, out, targets, labels, 4, DIM);
                p[k] = keep - (float)eps;
                double lm = cr_sgns_loss(in, rows, 4, out, targets, labels, 4, DIM);
                p[k] = keep;
                double num = (lp - lm) / (2 * eps), step = -(double)(p1[k] - p[k]) / scale;
                double diff = fabs(num - step);
                if (diff > max_diff) max_diff = diff;
                CHECK_MSG(diff <= 2e-5 + 1e-3 * fabs(num), "%s %s[%d]: finite difference %.8g, step %.8g",
                          fast ? "fast" : "ref", which ? "out" : "in", k, num, step);
            }
        }
        /* rows 0, 2 and 4 of `in` take no part: unchanged */
        for (int j = 0; j < DIM; j++) CHECK(in1[0 * DIM + j] == in[j] && in1[2 * DIM + j] == in[2 * DIM + j]);
        printf("     sgns step (%s) vs finite differences: max |diff| %.2e\n", fast ? "vectorised" : "reference", max_diff);
        /* a small step lowers the loss */
        memcpy(in1, in, sizeof in);
        memcpy(out1, out, sizeof out);
        (fast ? cr_sgns_step : cr_sgns_step_ref)(in1, rows, 4, out1, targets, labels, 4, DIM, 0.01f, hidden, grad);
        CHECK(cr_sgns_loss(in1, rows, 4, out1, targets, labels, 4, DIM) < l0);
    }
}

/* The vectorised step against the scalar reference on odd sizes, with repeated targets. */
TEST(wordvec_sgns_fast_vs_ref) {
    const int64_t dims[] = {1, 3, 4, 5, 7, 8, 9, 13, 16, 64, 67, 100};
    cr_rng r;
    cr_rng_named(&r, 3, "sgns_fast");
    double worst = 0;
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        int64_t dim = dims[di];
        enum { B = 9, N = 7, NT = 12 };
        float *in = malloc(B * dim * sizeof *in), *out = malloc(N * dim * sizeof *out);
        float *in2 = malloc(B * dim * sizeof *in), *out2 = malloc(N * dim * sizeof *out), *scr = malloc(4 * dim * sizeof *scr);
        for (int64_t k = 0; k < B * dim; k++) in[k] = in2[k] = (float)cr_rng_normal(&r);
        for (int64_t k = 0; k < N * dim; k++) out[k] = out2[k] = (float)cr_rng_normal(&r);
        int32_t rows[5], tg[NT];
        uint8_t lab[NT];
        for (int k = 0; k < 5; k++) rows[k] = (int32_t)cr_rng_below(&r, B);
        for (int k = 0; k < NT; k++) tg[k] = (int32_t)cr_rng_below(&r, N), lab[k] = k % 4 == 0;
        float la = cr_sgns_step_ref(in, rows, 5, out, tg, lab, NT, dim, 0.3f, scr, scr + dim);
        float lb = cr_sgns_step(in2, rows, 5, out2, tg, lab, NT, dim, 0.3f, scr + 2 * dim, scr + 3 * dim);
        CHECK_NEAR(la, lb, 1e-4 * (1 + fabs(la)));
        for (int64_t k = 0; k < B * dim; k++) {
            double d = fabs(in[k] - in2[k]) / (1 + fabs(in[k]));
            worst = d > worst ? d : worst;
            CHECK_MSG(d < 1e-4, "dim %lld in[%lld]: %.9g vs %.9g", (long long)dim, (long long)k, in[k], in2[k]);
        }
        for (int64_t k = 0; k < N * dim; k++) {
            double d = fabs(out[k] - out2[k]) / (1 + fabs(out[k]));
            worst = d > worst ? d : worst;
            CHECK_MSG(d < 1e-4, "dim %lld out[%lld]: %.9g vs %.9g", (long long)dim, (long long)k, out[k], out2[k]);
        }
        free(in), free(out), free(in2), free(out2), free(scr);
    }
    printf("     vectorised step vs reference: max relative diff %.2e over 12 sizes\n", worst);
}

/* ---- training ---- */

/* A toy corpus of two topics that never meet in a text: fruit and tools, with shared filler words. */
static const char *FRUIT[] = {"apple", "banana", "cherry", "grape", "mango", "melon"};
static const char *TOOLS[] = {"hammer", "wrench", "drill", "saw", "chisel", "pliers"};
static const char *FILL[] = {"the", "and", "with", "for", "new", "best"};

static char **toy_corpus(int64_t n) {
    char **t = malloc((size_t)n * sizeof *t);
    cr_rng r;
    cr_rng_named(&r, 1, "toy");
    for (int64_t i = 0; i < n; i++) {
        const char **topic = i % 2 ? TOOLS : FRUIT;
        t[i] = malloc(200);
        size_t at = 0;
        for (int k = 0; k < 8; k++) {
            const char *w = cr_rng_below(&r, 3) == 0 ? FILL[cr_rng_below(&r, 6)] : topic[cr_rng_below(&r, 6)];
            at += (size_t)snprintf(t[i] + at, 200 - at, "%s%s", k ? " " : "", k == 0 && i % 3 == 0 ? "The" : w);
        }
    }
    return t;
}

static void free_corpus(char **t, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(t[i]);
    free(t);
}

static cr_wordvec_train_params toy_params(void) {
    cr_wordvec_train_params p = cr_wordvec_default_train_params();
    p.dim = 16;
    p.hashing.n_buckets = 4096;
    p.epochs = 5;
    p.min_count = 1;
    p.sample = 0;
    p.lr = 0.05;
    return p;
}

static int epochs_seen;
static void count_epochs(int epoch, double loss, double wps, void *user) {
    (void)wps;
    CHECK(isfinite(loss) && loss > 0);
    CHECK_EQ(epoch, ++epochs_seen);
    *(double *)user = loss;
}

TEST(wordvec_train_toy) {
    const int64_t n = 400;
    char **texts = toy_corpus(n);
    cr_wordvec_train_params p = toy_params();
    double last = 0;
    p.on_epoch = count_epochs, p.user = &last;
    epochs_seen = 0;
    cr_wordvec *wv;
    cr_wordvec_train_report rep;
    CHECK_OK(cr_wordvec_train_texts(&wv, (const char *const *)texts, n, &p, &rep));
    CHECK_EQ(epochs_seen, 5);
    CHECK_EQ(rep.n_vocab, 18);
    CHECK_EQ(rep.n_tokens, n * 8);
    CHECK_EQ(rep.n_dropped, 0);
    CHECK_NEAR(rep.loss, last, 0);
    CHECK(rep.n_pairs > n * 8 * 5);
    const cr_wordvec_info *in = cr_wordvec_get_info(wv);
    CHECK(in->has_subwords);
    CHECK_EQ(in->hashing.n_buckets, 4096);
    CHECK_EQ(cr_wordvec_dim(wv), 16);
    CHECK_EQ(cr_wordvec_find(wv, "the", 3) >= 0, 1);   /* "The" was normalised */
    /* each topic's words are closer to each other than to the other topic's */
    double same = 0, cross = 0;
    int ns = 0, nc = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            const float *fa = cr_wordvec_vector(wv, cr_wordvec_find(wv, FRUIT[a], (int64_t)strlen(FRUIT[a])));
            const float *fb = cr_wordvec_vector(wv, cr_wordvec_find(wv, FRUIT[b], (int64_t)strlen(FRUIT[b])));
            const float *tb = cr_wordvec_vector(wv, cr_wordvec_find(wv, TOOLS[b], (int64_t)strlen(TOOLS[b])));
            if (a != b) same += cosine(fa, fb, 16), ns++;
            cross += cosine(fa, tb, 16), nc++;
        }
    printf("     toy corpus: mean cosine within a topic %.3f, across topics %.3f; loss %.3f\n", same / ns, cross / nc,
           rep.loss);
    CHECK(same / ns > cross / nc + 0.3);

    /* min_count drops words from vocabulary and corpus */
    p.on_epoch = NULL;
    p.min_count = 1000000;
    cr_wordvec *none = (cr_wordvec *)1;
    CHECK_STATUS(cr_wordvec_train_texts(&none, (const char *const *)texts, n, &p, NULL), CR_ERR_ARG);
    CHECK(none == NULL);
    CHECK_CONTAINS(cr_errmsg(), "min_count");
    p = toy_params(), p.window = 0;
    CHECK_STATUS(cr_wordvec_train_texts(&none, (const char *const *)texts, n, &p, NULL), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "window");
    cr_wordvec_free(wv);
    free_corpus(texts, n);
}

TEST(wordvec_train_deterministic) {
    const int64_t n = 200;
    char **texts = toy_corpus(n);
    cr_wordvec_train_params p = toy_params();
    p.sample = 1e-2;   /* subsampling draws too */
    cr_wordvec *a, *b, *c, *h;
    CHECK_OK(cr_wordvec_train_texts(&a, (const char *const *)texts, n, &p, NULL));
    CHECK_OK(cr_wordvec_train_texts(&b, (const char *const *)texts, n, &p, NULL));
    size_t tb = (size_t)p.hashing.n_buckets * (size_t)p.dim * sizeof(float);
    CHECK(!memcmp(a->table, b->table, tb));
    CHECK(!memcmp(a->vec, b->vec, (size_t)a->n * (size_t)a->dim * sizeof(float)));
    p.seed = 43;
    CHECK_OK(cr_wordvec_train_texts(&c, (const char *const *)texts, n, &p, NULL));
    CHECK(memcmp(a->table, c->table, tb) != 0);
    /* Hogwild on 3 threads: finite, and learning the same kind of thing */
    p.threads = 3;
    cr_wordvec_train_report rep;
    CHECK_OK(cr_wordvec_train_texts(&h, (const char *const *)texts, n, &p, &rep));
    for (int64_t k = 0; k < h->n * h->dim; k++) CHECK(isfinite(h->vec[k]));
    CHECK(isfinite(rep.loss) && rep.loss > 0);
    cr_wordvec_free(a), cr_wordvec_free(b), cr_wordvec_free(c), cr_wordvec_free(h);
    free_corpus(texts, n);
}

/* Trained vectors: .crm save/load gives the same vectors, subwords included; .vec export loads back to the same
 * floats; trained vectors seed a table of the same hashing with their whole table. */
TEST(wordvec_save_load_export) {
    const int64_t n = 200;
    char **texts = toy_corpus(n);
    cr_wordvec_train_params p = toy_params();
    p.epochs = 2;
    cr_wordvec *wv, *back, *vec;
    CHECK_OK(cr_wordvec_train_texts(&wv, (const char *const *)texts, n, &p, NULL));
    const char *crm = cr_test_path("wv.crm");
    CHECK_OK(cr_wordvec_save(wv, crm));
    CHECK_OK(cr_wordvec_load(&back, crm, NULL));
    CHECK_EQ(cr_wordvec_size(back), cr_wordvec_size(wv));
    CHECK_EQ(cr_wordvec_dim(back), 16);
    const cr_wordvec_info *in = cr_wordvec_get_info(back);
    CHECK(in->has_subwords);
    CHECK_EQ(in->hashing.n_buckets, 4096);
    CHECK_EQ(back->params.window, 5);
    CHECK_EQ(back->params.epochs, 2);
    CHECK_EQ(back->params.seed, 42);
    for (int32_t r = 0; r < wv->n; r++) {
        CHECK_STR(cr_wordvec_word(back, r), cr_wordvec_word(wv, r));
        CHECK(!memcmp(cr_wordvec_vector(back, r), cr_wordvec_vector(wv, r), 16 * sizeof(float)));
        CHECK_EQ(back->count[r], wv->count[r]);
    }
    CHECK(wv->count[0] >= wv->count[wv->n - 1]);   /* by count, descending */
    cr_file *f;
    CHECK_OK(cr_file_open(&f, crm, "CRM", 1));
    const char *model;
    CHECK_OK(cr_file_get_str(f, "model", &model));
    CHECK_STR(model, "wordvec");
    cr_file_close(f);

    /* an unknown word gets the mean of its n-grams, the same from both */
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    float v1[16], v2[16];
    cr_wordvec_hit h1, h2;
    CHECK_OK(cr_wordvec_embed_word(wv, w, "Bananas", 7, v1, &h1));
    CHECK_OK(cr_wordvec_embed_word(back, w, "bananas", 7, v2, &h2));
    CHECK_EQ(h1, CR_WORDVEC_SUBWORD);
    CHECK_EQ(h2, CR_WORDVEC_SUBWORD);
    CHECK(!memcmp(v1, v2, sizeof v1));
    const float *banana = cr_wordvec_vector(wv, cr_wordvec_find(wv, "banana", 6));
    CHECK(cosine(v1, banana, 16) > 0.5);   /* most of their n-grams are shared */
    CHECK_OK(cr_wordvec_embed_word(wv, w, "42", 2, v1, &h1));   /* a number has no n-grams */
    CHECK_EQ(h1, CR_WORDVEC_OOV);
    cr_text_work_free(w);

    /* .vec export -> load: the same words in the same rows, the same floats */
    const char *vp = cr_test_path("wv.vec");
    CHECK_OK(cr_wordvec_export_vec(back, vp));
    CHECK_OK(cr_wordvec_load(&vec, vp, NULL));
    CHECK_EQ(cr_wordvec_size(vec), wv->n);
    CHECK_EQ(cr_wordvec_get_info(vec)->header_words, wv->n);
    CHECK(!cr_wordvec_get_info(vec)->has_subwords);
    for (int32_t r = 0; r < wv->n; r++) {
        CHECK_STR(cr_wordvec_word(vec, r), cr_wordvec_word(wv, r));
        CHECK(!memcmp(cr_wordvec_vector(vec, r), cr_wordvec_vector(wv, r), 16 * sizeof(float)));
    }
    CHECK_STATUS(cr_wordvec_save(vec, cr_test_path("no.crm")), CR_ERR_ARG);

    /* the same hashing: the whole table, n-grams included */
    float *t = malloc((size_t)4096 * 16 * sizeof *t);
    int64_t set;
    CHECK_OK(cr_wordvec_init_buckets(wv, &p.hashing, t, &set));
    CHECK_EQ(set, 4096);
    CHECK(!memcmp(t, wv->table, (size_t)4096 * 16 * sizeof *t));
    free(t);
    cr_wordvec_free(wv), cr_wordvec_free(back), cr_wordvec_free(vec);
    free_corpus(texts, n);
}

/* .crm files that are not trained word vectors, or are inconsistent, are refused. */
TEST(wordvec_crm_errors) {
    cr_filew *fw;
    CHECK_OK(cr_filew_new(&fw, "CRM", 1));
    CHECK_OK(cr_filew_meta_str(fw, "model", "pop"));
    CHECK_OK(cr_filew_commit(fw, cr_test_path("pop.crm")));
    cr_filew_free(fw);
    cr_wordvec *wv = (cr_wordvec *)1;
    CHECK_STATUS(cr_wordvec_load(&wv, cr_test_path("pop.crm"), NULL), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "pop.crm: a crossrec model of type 'pop', not word vectors");
    CHECK(wv == NULL);

    /* a subword bucket outside the table */
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 4;
    float table[4 * 2] = {0};
    const char bytes[] = "ab\0cd";
    int64_t off[3] = {0, 3, 6}, count[2] = {5, 3}, sub_ptr[3] = {0, 1, 2};
    int32_t sub[2] = {1, 4};
    for (int pass = 0; pass < 2; pass++) {
        CHECK_OK(cr_filew_new(&fw, "CRM", 1));
        CHECK_OK(cr_filew_meta_str(fw, "model", "wordvec"));
        CHECK_OK(cr_text_hashing_write(fw, &h));
        CHECK_OK(cr_filew_meta_i64(fw, "wordvec.dim", 2));
        CHECK_OK(cr_filew_array(fw, "table", CR_DT_F32, table, 8));
        CHECK_OK(cr_filew_array(fw, "vocab.bytes", CR_DT_U8, bytes, 6));
        CHECK_OK(cr_filew_array(fw, "vocab.off", CR_DT_I64, off, 3));
        CHECK_OK(cr_filew_array(fw, "vocab.count", CR_DT_I64, count, 2));
        CHECK_OK(cr_filew_array(fw, "vocab.sub_ptr", CR_DT_I64, sub_ptr, 3));
        CHECK_OK(cr_filew_array(fw, "vocab.sub", CR_DT_I32, sub, 2));
        CHECK_OK(cr_filew_commit(fw, cr_test_path("bad.crm")));
        cr_filew_free(fw);
        if (pass == 0) {
            CHECK_STATUS(cr_wordvec_load(&wv, cr_test_path("bad.crm"), NULL), CR_ERR_FORMAT);
            CHECK_CONTAINS(cr_errmsg(), "bad.crm: word vectors: a subword bucket is outside the table (entry 1)");
            sub[1] = 3;
        }
    }
    CHECK_OK(cr_wordvec_load(&wv, cr_test_path("bad.crm"), NULL));   /* now consistent */
    CHECK_EQ(cr_wordvec_size(wv), 2);
    CHECK_EQ(cr_wordvec_find(wv, "cd", 2), 1);
    cr_wordvec_free(wv);
}

/* ---- allocation failures: each failing allocation gives CR_ERR_NOMEM and leaks nothing ---- */

static void fail_each_allocation(cr_status (*step)(void), const char *what) {
    int64_t n;
    for (n = 1; n < 100000; n++) {
        int64_t live = cr_alloc_get_stats().n_live;
        cr_alloc_fail_nth(n);
        cr_status st = step();
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        CHECK_MSG(cr_alloc_get_stats().n_live == live, "%s: allocation %lld failing leaked", what, (long long)n);
        if (!hit) {
            CHECK_MSG(st == CR_OK, "%s: %s", what, cr_errmsg());
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "%s: allocation %lld failing gave %s (%s)", what, (long long)n, cr_status_str(st),
                  cr_errmsg());
    }
    CHECK_MSG(n > 1, "%s allocates nothing?", what);
    printf("     %s: each of %lld allocations failed in turn\n", what, (long long)n - 1);
}

static const char *fault_path;
static cr_wordvec *fault_wv;
static cr_dataset *fault_dataset;

static cr_status step_load(void) {
    cr_wordvec *wv;
    cr_status st = cr_wordvec_load(&wv, fault_path, NULL);
    if (!st) CHECK(cr_wordvec_size(wv) >= 2);
    cr_wordvec_free(wv);
    return st;
}

static cr_status step_load_mem(void) {
    cr_wordvec *wv;
    cr_status st = cr_wordvec_load_mem(&wv, VEC, strlen(VEC), "mem.vec", NULL);
    if (!st) CHECK_EQ(cr_wordvec_size(wv), 4);
    cr_wordvec_free(wv);
    return st;
}

static cr_status step_train(void) {
    const char *texts[] = {"apple banana cherry", "hammer drill saw", "apple cherry", "saw hammer"};
    cr_wordvec_train_params p = toy_params();
    p.epochs = 1, p.dim = 4, p.hashing.n_buckets = 64;
    cr_wordvec *wv;
    cr_status st = cr_wordvec_train_texts(&wv, texts, 4, &p, NULL);
    cr_wordvec_free(wv);
    return st;
}

static cr_status step_item_matrix(void) {
    float m[4 * 16];
    cr_wordvec_item_params p = cr_wordvec_default_item_params();
    p.threads = 1;
    p.fields = CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT;
    return cr_wordvec_item_matrix(fault_wv, fault_dataset, &p, m, NULL);
}

static cr_status step_init_buckets(void) {
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 100;
    float t[100 * 16];
    return cr_wordvec_init_buckets(fault_wv, &h, t, NULL);
}

static cr_status step_save(void) { return cr_wordvec_save(fault_wv, cr_test_path("fault.crm")); }

TEST(wordvec_alloc_failures) {
    fault_path = cr_test_write("fault.vec", VEC, -1);
    fail_each_allocation(step_load, "load .vec");
    fault_path = cr_test_path("fault.vec.gz");
    write_gz(fault_path, VEC);
    fail_each_allocation(step_load, "load .vec.gz");
    fail_each_allocation(step_load_mem, "load from memory");
    fail_each_allocation(step_train, "train");

    const char *texts[] = {"pen red", "pen", "red blue", "blue pens"};
    cr_wordvec_train_params p = toy_params();
    p.epochs = 1;
    CHECK_OK(cr_wordvec_train_texts(&fault_wv, texts, 4, &p, NULL));
    fail_each_allocation(step_save, "save .crm");
    fault_path = cr_test_path("fault.crm");
    fail_each_allocation(step_load, "load .crm");
    fault_dataset = items_dataset();
    fail_each_allocation(step_item_matrix, "item matrix (subwords)");
    fail_each_allocation(step_init_buckets, "init buckets");
    cr_wordvec_free(fault_wv);
    char vec16[512];
    size_t at = (size_t)snprintf(vec16, sizeof vec16, "3 16\n");
    for (int w = 0; w < 3; w++) {
        at += (size_t)snprintf(vec16 + at, sizeof vec16 - at, "%s", (const char *[]){"pen", "red", "blue"}[w]);
        for (int j = 0; j < 16; j++) at += (size_t)snprintf(vec16 + at, sizeof vec16 - at, " %d", (w + j) % 3);
        vec16[at++] = '\n';
    }
    vec16[at] = '\0';
    fault_wv = load_ok("fault_items.vec", vec16, NULL);
    fail_each_allocation(step_item_matrix, "item matrix");
    cr_wordvec_free(fault_wv);
    fault_wv = NULL;
    cr_dataset_free(fault_dataset);
}

/* ---- the Amazon catalogue ---- */

static const float *vec_of(const cr_wordvec *wv, const char *w) {
    int32_t r = cr_wordvec_find(wv, w, (int64_t)strlen(w));
    return r >= 0 ? cr_wordvec_vector(wv, r) : NULL;
}

static void print_neighbours(const cr_wordvec *wv, const char *word) {
    int32_t r = cr_wordvec_find(wv, word, (int64_t)strlen(word)), rows[8];
    float sims[8];
    int n;
    if (r < 0) {
        printf("     %s: not in the vocabulary\n", word);
        return;
    }
    CHECK_OK(cr_wordvec_nearest(wv, cr_wordvec_vector(wv, r), r, 8, rows, sims, &n));
    printf("     %-8s ->", word);
    for (int i = 0; i < n; i++) printf(" %s (%.2f)", cr_wordvec_word(wv, rows[i]), sims[i]);
    printf("\n");
}

/* One epoch at D = 64 over titles and texts: words/s, neighbours, and related words closer than random ones. */
TEST(wordvec_amazon_train) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char pi[512], pt[512];
    snprintf(pi, sizeof pi, "%s/amazon-art-office/interactions.tsv", root);
    snprintf(pt, sizeof pt, "%s/amazon-art-office/items.tsv", root);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = pi;
    ip.items[ip.n_items++] = pt;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &ip, NULL));
    cr_wordvec_train_params p = cr_wordvec_default_train_params();
    p.dim = 64;
    p.epochs = 1;
    p.threads = 1;
    cr_wordvec *wv;
    cr_wordvec_train_report rep;
    double t0 = cr_now();
    CHECK_OK(cr_wordvec_train(&wv, d, &p, &rep));
    double total = cr_now() - t0;
    printf("     amazon: %lld words in the vocabulary (%lld dropped), %lld tokens, 1 epoch at D=64 in %.2f s "
           "(%.0f words/s, 1 thread; %.2f s with the vocabulary pass); loss %.3f\n",
           (long long)rep.n_vocab, (long long)rep.n_dropped, (long long)rep.n_tokens, rep.seconds, rep.words_per_sec,
           total, rep.loss);
    CHECK(rep.n_vocab > 10000);
    CHECK(rep.n_tokens > 500000);
    print_neighbours(wv, "pen");
    print_neighbours(wv, "paint");
    print_neighbours(wv, "stapler");

    /* Related words against random vocabulary words (seen at least 20 times). The pairs share no character
     * n-gram, so only training can bring them together (untrained, or with training broken, their cosines are
     * those of random words); the morphological pairs after them are printed, not judged. */
    static const char *pairs[][2] = {
        {"pen", "ink"},        {"paint", "brush"},       {"yarn", "knitting"},  {"fabric", "quilting"},
        {"canvas", "easel"},   {"toner", "cartridge"},    {"scissors", "cutting"}, {"glue", "adhesive"},
        {"notebook", "paper"}, {"folder", "file"},       {"stapler", "swingline"}, {"pencil", "eraser"},
        {"sewing", "thread"},  {"envelope", "mailing"},  {"label", "sticker"},  {"calendar", "planner"},
        {"pen", "pencil"},     {"stapler", "staples"},   {"marker", "markers"}, {"bead", "beading"},
    };
    const int n_semantic = 16, np = (int)(sizeof pairs / sizeof pairs[0]);
    int better = 0, used = 0;
    cr_rng r;
    cr_rng_named(&r, 1, "amazon_random_words");
    double rel = 0, rnd = 0;
    for (int i = 0; i < np; i++) {
        const float *a = vec_of(wv, pairs[i][0]), *b = vec_of(wv, pairs[i][1]);
        if (!a || !b) {
            printf("     (%s, %s): not both in the vocabulary\n", pairs[i][0], pairs[i][1]);
            continue;
        }
        double c = cosine(a, b, 64), cr = 0;
        int nr = 0;
        while (nr < 200) {
            int32_t k = (int32_t)cr_rng_below(&r, (uint32_t)wv->n);
            if (wv->count[k] < 20) continue;
            cr += cosine(a, cr_wordvec_vector(wv, k), 64), nr++;
        }
        cr /= nr;
        printf("     cos(%s, %s) = %.2f, vs %.2f for random words%s\n", pairs[i][0], pairs[i][1], c, cr,
               i < n_semantic ? "" : " (shares n-grams)");
        if (i >= n_semantic) continue;
        rel += c, rnd += cr, used++;
        better += c > cr + 0.05;
    }
    CHECK(used >= 12);
    printf("     pairs without shared n-grams: mean cosine %.3f, random words %.3f; %d of %d pairs above random + 0.05\n",
           rel / used, rnd / used, better, used);
    CHECK(rel / used > rnd / used + 0.1);
    CHECK(better * 3 >= used * 2);

    /* item vectors from the trained words: an item is closer to items of its own domain */
    int64_t n_items = cr_dataset_inter(d)->n_items;
    float *m = malloc((size_t)n_items * 64 * sizeof *m);
    cr_wordvec_item_report ir;
    t0 = cr_now();
    CHECK_OK(cr_wordvec_item_matrix(wv, d, NULL, m, &ir));
    printf("     item matrix (titles, TF-IDF): %.0f ms; %lld tokens, %lld known, %lld from subwords, %lld skipped, "
           "%lld empty items\n",
           (cr_now() - t0) * 1e3, (long long)ir.n_tokens, (long long)ir.n_known, (long long)ir.n_subword,
           (long long)ir.n_oov, (long long)ir.n_empty_items);
    CHECK(ir.n_known > ir.n_tokens * 9 / 10);
    free(m);
    cr_wordvec_free(wv);
    cr_dataset_free(d);
}

/* test_table.c — the text table readers (TSV, CSV, JSONL, RecBole, gzip), number parsing and UTF-8 checks.
 * Inputs are small in-memory buffers or files in the test's temp dir; one test reads ../shared/data when it
 * is there. */
#include "test.h"
#include "crossrec/data.h"

#include <stdlib.h>
#include <zlib.h>

/* Reads every record of t (n selected fields) into "a|b|c\n" lines; an absent field prints as "~", an error
 * as "!<status>@<line>\n". Stops at CR_DONE or a non-recoverable error. Returns the records read. */
static int64_t dump(cr_table *t, int n, char *out, size_t cap) {
    cr_field f[8];
    size_t w = 0;
    int64_t recs = 0;
    out[0] = '\0';
    for (;;) {
        cr_status st = cr_table_next(t, f);
        if (st == CR_DONE) break;
        if (st != CR_OK) {
            w += (size_t)snprintf(out + w, cap - w, "!%s@%lld\n", cr_status_str(st), (long long)cr_table_line(t));
            if (st != CR_ERR_PARSE && st != CR_ERR_LIMIT) break;
            continue;
        }
        recs++;
        for (int i = 0; i < n; i++) {
            if (f[i].p) w += (size_t)snprintf(out + w, cap - w, "%s%.*s", i ? "|" : "", (int)f[i].len, f[i].p);
            else w += (size_t)snprintf(out + w, cap - w, "%s~", i ? "|" : "");
        }
        w += (size_t)snprintf(out + w, cap - w, "\n");
        CR_ASSERT(w < cap);
    }
    return recs;
}

static cr_table *open_mem(const char *data, const char *name, cr_table_format fmt) {
    cr_table_opts o = cr_table_default_opts();
    o.format = fmt;
    cr_table *t = NULL;
    cr_status st = cr_table_open_mem(&t, data, strlen(data), name, &o);
    if (st != CR_OK) cr_test_fail(__FILE__, __LINE__, "open %s: %s", name, cr_errmsg());
    return t;
}

static void select_cols(cr_table *t, const char *a, const char *b, const char *c, const char *d) {
    const char *names[4] = {a, b, c, d};
    int n = d ? 4 : c ? 3 : b ? 2 : 1;
    int req[4] = {1, 1, 1, 1};
    cr_status st = cr_table_select(t, names, req, n);
    if (st != CR_OK) cr_test_fail(__FILE__, __LINE__, "select: %s", cr_errmsg());
}

static char out[1 << 16];

TEST(table_tsv_basic) {
    cr_table *t = open_mem("user\titem\ttimestamp\tvalue\nu1\ti1\t100\t5\nu2\ti2\t200\t1\n", "x.tsv", CR_FMT_AUTO);
    CHECK_EQ(cr_table_get_format(t), CR_FMT_TSV);
    CHECK_STR(cr_table_name(t), "x.tsv");
    CHECK_EQ(cr_table_n_cols(t), 4);
    CHECK_STR(cr_table_col_name(t, 2), "timestamp");
    CHECK(cr_table_col_name(t, 4) == NULL);
    CHECK(cr_table_has_col(t, "value"));
    CHECK(!cr_table_has_col(t, "title"));
    select_cols(t, "item", "user", "value", NULL);
    cr_field f[3];
    CHECK_OK(cr_table_next(t, f));
    CHECK_EQ(cr_table_line(t), 2);
    CHECK_EQ(f[0].len, 2);
    CHECK(memcmp(f[0].p, "i1", 2) == 0);
    CHECK_EQ(f[0].col, 4);
    CHECK(memcmp(f[1].p, "u1", 2) == 0);
    CHECK_EQ(f[1].col, 1);
    CHECK(memcmp(f[2].p, "5", 1) == 0 && f[2].len == 1);
    CHECK_OK(cr_table_next(t, f));
    CHECK_EQ(cr_table_line(t), 3);
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);     /* stays done */
    cr_table_close(t);
    cr_table_close(NULL);

    /* Empty fields, a quote that TSV does not interpret, and a last line without newline. */
    t = open_mem("a\tb\n\t\"x\n\"q\"\t\n", "y.txt", CR_FMT_AUTO);
    select_cols(t, "a", "b", NULL, NULL);
    CHECK_EQ(dump(t, 2, out, sizeof out), 2);
    CHECK_STR(out, "|\"x\n\"q\"|\n");
    cr_table_close(t);
}

TEST(table_tsv_crlf_bom_blank) {
    const char *lf = "user\titem\tvalue\nu1\ti1\t1\nu2\ti2\t2\n";
    const char *variants[] = {
        "user\titem\tvalue\r\nu1\ti1\t1\r\nu2\ti2\t2\r\n",
        "\xEF\xBB\xBFuser\titem\tvalue\nu1\ti1\t1\nu2\ti2\t2",
        "\xEF\xBB\xBFuser\titem\tvalue\r\n\r\nu1\ti1\t1\n\n\nu2\ti2\t2\r\n\n",
        "\n\nuser\titem\tvalue\nu1\ti1\t1\nu2\ti2\t2\n",
    };
    char want[256];
    cr_table *t = open_mem(lf, "lf.tsv", CR_FMT_TSV);
    select_cols(t, "user", "item", "value", NULL);
    CHECK_EQ(dump(t, 3, want, sizeof want), 2);
    cr_table_close(t);
    CHECK_STR(want, "u1|i1|1\nu2|i2|2\n");
    for (int v = 0; v < 4; v++) {
        t = open_mem(variants[v], "v.tsv", CR_FMT_TSV);
        CHECK_STR(cr_table_col_name(t, 0), "user");     /* the BOM is not part of the name */
        CHECK_STR(cr_table_col_name(t, 2), "value");    /* nor the CR */
        select_cols(t, "user", "item", "value", NULL);
        CHECK_EQ(dump(t, 3, out, sizeof out), 2);
        CHECK_STR(out, want);
        cr_table_close(t);
    }
    /* Line numbers count blank lines: u2 is on physical line 6 of variant 2. */
    t = open_mem(variants[2], "v.tsv", CR_FMT_TSV);
    cr_field f[1];
    select_cols(t, "user", NULL, NULL, NULL);
    CHECK_OK(cr_table_next(t, f));
    CHECK_EQ(cr_table_line(t), 3);
    CHECK_OK(cr_table_next(t, f));
    CHECK_EQ(cr_table_line(t), 6);
    cr_table_close(t);
}

TEST(table_tsv_header_only) {
    const char *cases[] = {"user\titem\n", "user\titem", "user\titem\r\n\r\n\n"};
    for (int i = 0; i < 3; i++) {
        cr_table *t = open_mem(cases[i], "h.tsv", CR_FMT_TSV);
        CHECK_EQ(cr_table_n_cols(t), 2);
        select_cols(t, "user", "item", NULL, NULL);
        cr_field f[2];
        CHECK_STATUS(cr_table_next(t, f), CR_DONE);
        cr_table_close(t);
    }
}

TEST(table_tsv_field_count) {
    cr_table *t = open_mem("user\titem\ttimestamp\tvalue\nu1\ti1\t1\t1\nu2\ti2\t2\nu3\ti3\t3\t3\t3\nu4\ti4\t4\t4\n",
                           "x.tsv", CR_FMT_TSV);
    select_cols(t, "user", NULL, NULL, NULL);
    cr_field f[1];
    CHECK_OK(cr_table_next(t, f));
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "x.tsv:3: expected 4 fields, found 3");
    CHECK_EQ(cr_table_line(t), 3);
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "x.tsv:4: expected 4 fields, found 5");
    CHECK_OK(cr_table_next(t, f));                  /* goes on after bad lines */
    CHECK(f[0].len == 2 && memcmp(f[0].p, "u4", 2) == 0);
    CHECK_EQ(cr_table_line(t), 5);
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);
}

TEST(table_tsv_utf8) {
    /* Line 3: "u2\tab\xff" -> the bad byte is at byte column 6 of the line. */
    cr_table *t = open_mem("user\ttitle\tjunk\nu1\tcaf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80\t\xff\n"
                           "u2\tab\xff\tok\nu3\t\xE4\xB8\tok\nu4\tz\n",
                           "x.tsv", CR_FMT_TSV);
    select_cols(t, "title", "user", NULL, NULL);
    cr_field f[2];
    CHECK_OK(cr_table_next(t, f));                  /* valid UTF-8; junk column is not selected, not checked */
    CHECK_EQ(f[0].len, 17);
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "x.tsv:3:6: invalid UTF-8 in field 'title' (byte 0xff)");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "x.tsv:4:4: invalid UTF-8 in field 'title' (byte 0xe4)");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "x.tsv:5: expected 3 fields, found 2");
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);

    /* A NUL byte (a UTF-16 file read as bytes) is refused too. */
    static const char nul[] = "a\tb\nx\ty\0z\n";
    cr_table *t2;
    CHECK_OK(cr_table_open_mem(&t2, nul, sizeof nul - 1, "n.tsv", NULL));
    select_cols(t2, "a", "b", NULL, NULL);
    CHECK_STATUS(cr_table_next(t2, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "n.tsv:2:4: NUL byte in field 'b' (is the file UTF-16?)");
    cr_table_close(t2);

    /* Bad bytes in the header are reported at open. */
    cr_table *t3;
    CHECK_STATUS(cr_table_open_mem(&t3, "a\tb\xc0\x80\n", 6, "h.tsv", NULL), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "h.tsv:1:4: invalid UTF-8 in the header (byte 0xc0)");
    CHECK(t3 == NULL);
}

/* A table with a line of exactly `len` bytes (made of 'x' in the second column) between two good lines. */
static char *long_line_table(int64_t len, const char *eol, size_t *n) {
    const char *head = "a\tb\nu1\tv1\n";
    size_t cap = (size_t)len + 64;
    char *s = malloc(cap);
    size_t w = (size_t)snprintf(s, cap, "%s", head);
    s[w++] = 'u';
    s[w++] = '\t';
    memset(s + w, 'x', (size_t)len - 2);
    w += (size_t)len - 2;
    w += (size_t)snprintf(s + w, cap - w, "%su3\tv3\n", eol);
    *n = w;
    return s;
}

TEST(table_tsv_long_line) {
    const int64_t max = (int64_t)1 << 20;
    for (int as_file = 0; as_file < 2; as_file++) {
        for (int crlf = 0; crlf < 2; crlf++) {
            /* Exactly max_line bytes: accepted (with CRLF too: the CR is not content). */
            size_t n;
            char *s = long_line_table(max, crlf ? "\r\n" : "\n", &n);
            cr_table *t;
            if (as_file) CHECK_OK(cr_table_open(&t, cr_test_write("long.tsv", s, (long)n), NULL));
            else CHECK_OK(cr_table_open_mem(&t, s, n, "long.tsv", NULL));
            select_cols(t, "a", "b", NULL, NULL);
            cr_field f[2];
            CHECK_OK(cr_table_next(t, f));
            CHECK_OK(cr_table_next(t, f));
            CHECK_EQ(f[1].len, max - 2);
            CHECK_OK(cr_table_next(t, f));
            CHECK_EQ(cr_table_line(t), 4);
            CHECK_STATUS(cr_table_next(t, f), CR_DONE);
            cr_table_close(t);
            free(s);

            /* max_line + 1: CR_ERR_LIMIT, then the next record still reads, on the right line. */
            s = long_line_table(max + 1, crlf ? "\r\n" : "\n", &n);
            if (as_file) CHECK_OK(cr_table_open(&t, cr_test_write("long.tsv", s, (long)n), NULL));
            else CHECK_OK(cr_table_open_mem(&t, s, n, "long.tsv", NULL));
            select_cols(t, "a", "b", NULL, NULL);
            CHECK_OK(cr_table_next(t, f));
            CHECK_STATUS(cr_table_next(t, f), CR_ERR_LIMIT);
            CHECK_CONTAINS(cr_errmsg(), "long.tsv:3: line longer than 1048576 bytes");
            if (!as_file) CHECK_STR(cr_errmsg(), "long.tsv:3: line longer than 1048576 bytes");
            CHECK_OK(cr_table_next(t, f));
            CHECK(f[0].len == 2 && memcmp(f[0].p, "u3", 2) == 0);
            CHECK_EQ(cr_table_line(t), 4);
            CHECK_STATUS(cr_table_next(t, f), CR_DONE);
            cr_table_close(t);
            free(s);
        }
    }
    /* Far longer than the buffer (9 MiB), as the last line without newline, and with a small max_line. */
    size_t n = (size_t)9 << 20;
    char *s = malloc(n + 32);
    memcpy(s, "a\tb\nu\tv\n", 8);
    memset(s + 8, 'y', n - 8);
    cr_table *t;
    CHECK_OK(cr_table_open(&t, cr_test_write("huge.tsv", s, (long)n), NULL));
    select_cols(t, "a", NULL, NULL, NULL);
    cr_field f[1];
    CHECK_OK(cr_table_next(t, f));
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_LIMIT);
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);
    free(s);

    cr_table_opts o = cr_table_default_opts();
    o.max_line = 5;
    const char *small = "a\tb\n1\t2\n123\t56\n1\t234\n";
    CHECK_OK(cr_table_open_mem(&t, small, strlen(small), "s.tsv", &o));
    select_cols(t, "a", "b", NULL, NULL);
    CHECK_EQ(dump(t, 2, out, sizeof out), 2);
    CHECK_STR(out, "1|2\n!limit exceeded@3\n1|234\n");
    cr_table_close(t);
}

/* Many lines of varying length across several buffer refills, plain and gzip'ed, compared record by record. */
TEST(table_tsv_refill_boundaries) {
    const int64_t n_lines = 400000;
    size_t cap = (size_t)n_lines * 48 + 64, w = 0;
    char *s = malloc(cap);
    w += (size_t)snprintf(s + w, cap - w, "user\titem\ttimestamp\tvalue\r\n");
    for (int64_t i = 0; i < n_lines; i++) {
        int pad = (int)(i % 17);
        w += (size_t)snprintf(s + w, cap - w, "u%lld\t%.*si%lld\t%lld\t%d%s", (long long)i, pad, "zzzzzzzzzzzzzzzzz",
                              (long long)(i * 7), (long long)(1000000 + i), (int)(i % 5), i % 3 ? "\n" : "\r\n");
        if (i % 1000 == 999) s[w++] = '\n';         /* blank lines now and then */
    }
    const char *plain = cr_test_write("many.tsv", s, (long)w);
    const char *gzpath = cr_test_path("many.tsv.gz");
    gzFile gz = gzopen(gzpath, "wb1");
    CHECK(gz);
    CHECK(gzwrite(gz, s, (unsigned)w) == (int)w);
    CHECK(gzclose(gz) == Z_OK);
    for (int pass = 0; pass < 2; pass++) {
        cr_table *t;
        CHECK_OK(cr_table_open(&t, pass ? gzpath : plain, NULL));
        select_cols(t, "timestamp", "user", "item", NULL);
        cr_field f[3];
        for (int64_t i = 0; i < n_lines; i++) {
            CHECK_OK(cr_table_next(t, f));
            int64_t ts, item_num;
            CHECK(cr_parse_i64(f[0].p, f[0].len, &ts) == 0);
            CHECK_EQ(ts, 1000000 + i);
            char want[32];
            int k = snprintf(want, sizeof want, "u%lld", (long long)i);
            CHECK(f[1].len == k && memcmp(f[1].p, want, (size_t)k) == 0);
            int pad = (int)(i % 17);
            CHECK(f[2].len > pad + 1);
            CHECK(cr_parse_i64(f[2].p + pad + 1, f[2].len - pad - 1, &item_num) == 0);
            CHECK_EQ(item_num, i * 7);
            CHECK_EQ(cr_table_line(t), 2 + i + i / 1000);
        }
        CHECK_STATUS(cr_table_next(t, f), CR_DONE);
        cr_table_close(t);
    }
    free(s);
}

TEST(table_select_columns) {
    cr_table *t = open_mem("user\titem\tvalue\nu\ti\t3\n", "x.tsv", CR_FMT_TSV);
    const char *names[] = {"user", "timestamp"};
    int req[] = {1, 1};
    CHECK_STATUS(cr_table_select(t, names, req, 2), CR_ERR_NOTFOUND);
    CHECK_STR(cr_errmsg(), "x.tsv: no column 'timestamp' (columns: user, item, value)");
    req[1] = 0;
    CHECK_OK(cr_table_select(t, names, req, 2));
    cr_field f[2];
    CHECK_OK(cr_table_next(t, f));
    CHECK(f[0].p && f[0].len == 1);
    CHECK(f[1].p == NULL && f[1].len == 0);
    cr_table_close(t);

    /* Without select, records are still checked; NULL `required` means all required. */
    t = open_mem("a\tb\n1\t2\n3\n", "y.tsv", CR_FMT_TSV);
    CHECK_OK(cr_table_next(t, NULL));
    CHECK_STATUS(cr_table_next(t, NULL), CR_ERR_PARSE);
    const char *nm[] = {"c"};
    CHECK_STATUS(cr_table_select(t, nm, NULL, 1), CR_ERR_NOTFOUND);
    CHECK_STATUS(cr_table_select(t, nm, NULL, -1), CR_ERR_ARG);
    cr_table_close(t);
}

TEST(table_csv_quotes) {
    const char *csv =
        "user,item,title,value\r\n"
        "u1,i1,plain,1\r\n"
        "u2,i2,\"with, comma\",2\r\n"
        "u3,i3,\"say \"\"hi\"\"\",3\n"
        "u4,i4,\"two\nlines\r\nthree\",4\n"
        "u5,i5,,5\n"
        "u6,i6,\"\",6\n"
        "u7,i7,5\" screen,7\n"
        "u8,i8,\"end\"";
    cr_table *t = open_mem(csv, "x.csv", CR_FMT_AUTO);
    CHECK_EQ(cr_table_get_format(t), CR_FMT_CSV);
    CHECK_EQ(cr_table_n_cols(t), 4);
    select_cols(t, "user", "title", NULL, NULL);
    cr_field f[2];
    int64_t want_line[] = {2, 3, 4, 5, 8, 9, 10, 11};
    const char *want_title[] = {"plain", "with, comma", "say \"hi\"", "two\nlines\r\nthree", "", "", "5\" screen",
                                "end"};
    for (int i = 0; i < 7; i++) {
        CHECK_OK(cr_table_next(t, f));
        CHECK_EQ(cr_table_line(t), want_line[i]);
        CHECK_EQ(f[1].len, (int64_t)strlen(want_title[i]));
        CHECK(memcmp(f[1].p, want_title[i], (size_t)f[1].len) == 0);
    }
    /* The last record ends at the end of the data, without a newline. */
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);   /* "u8,i8,\"end\"" has 3 fields */
    CHECK_STR(cr_errmsg(), "x.csv:11: expected 4 fields, found 3");
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);

    /* Quoted header names; quoted fields in the last column before CRLF. */
    t = open_mem("\"a b\",\"c\"\"d\"\r\n\"1\",\"2\"\r\n", "q.csv", CR_FMT_CSV);
    CHECK_STR(cr_table_col_name(t, 0), "a b");
    CHECK_STR(cr_table_col_name(t, 1), "c\"d");
    select_cols(t, "a b", "c\"d", NULL, NULL);
    CHECK_EQ(dump(t, 2, out, sizeof out), 1);
    CHECK_STR(out, "1|2\n");
    cr_table_close(t);
}

TEST(table_csv_delimiter) {
    /* Semicolons win over the comma inside a quoted field and a decimal comma. */
    cr_table *t = open_mem("user;\"a,b\";value\nu1;x;3,5\n", "s.csv", CR_FMT_CSV);
    CHECK_EQ(cr_table_n_cols(t), 3);
    CHECK_STR(cr_table_col_name(t, 1), "a,b");
    select_cols(t, "user", "value", NULL, NULL);
    CHECK_EQ(dump(t, 2, out, sizeof out), 1);
    CHECK_STR(out, "u1|3,5\n");
    cr_table_close(t);

    t = open_mem("a\tb\tc\n1\t2\t3\n", "t.csv", CR_FMT_CSV);
    CHECK_EQ(cr_table_n_cols(t), 3);
    cr_table_close(t);
    t = open_mem("single\nx\n", "o.csv", CR_FMT_CSV);
    CHECK_EQ(cr_table_n_cols(t), 1);
    cr_table_close(t);

    /* An explicit delimiter is used as given. */
    cr_table_opts o = cr_table_default_opts();
    o.format = CR_FMT_CSV;
    o.delimiter = ',';
    CHECK_OK(cr_table_open_mem(&t, "a;b,c\n1;2,3\n", 12, "e.csv", &o));
    CHECK_EQ(cr_table_n_cols(t), 2);
    CHECK_STR(cr_table_col_name(t, 0), "a;b");
    cr_table_close(t);
    o.delimiter = '"';
    CHECK_STATUS(cr_table_open_mem(&t, "a\n", 2, "e.csv", &o), CR_ERR_ARG);
}

TEST(table_csv_errors) {
    cr_table *t = open_mem("a,b\n1,\"ab\"c\n2,ok\n3,\"x\ny\"z\n4,\"never closed\n5,x\n", "e.csv", CR_FMT_CSV);
    select_cols(t, "a", "b", NULL, NULL);
    cr_field f[2];
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "e.csv:2:7: unexpected 'c' after a closing quote (expected a delimiter or a line end)");
    CHECK_OK(cr_table_next(t, f));                  /* continues on the next line */
    CHECK(f[0].len == 1 && f[0].p[0] == '2');
    CHECK_EQ(cr_table_line(t), 3);
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "e.csv:5:3: unexpected 'z' after a closing quote (expected a delimiter or a line end)");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "e.csv:6:3: unterminated quoted field (the file ends inside it)");
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);

    /* Invalid UTF-8 inside the second physical line of a quoted field: line and column of the byte itself. */
    t = open_mem("a,b\n1,\"x\nab\xfe\"\n", "u.csv", CR_FMT_CSV);
    select_cols(t, "b", NULL, NULL, NULL);
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "u.csv:3:3: invalid UTF-8 in field 'b' (byte 0xfe)");
    cr_table_close(t);

    /* A record longer than max_line, inside quotes across lines; reading goes on after it. */
    cr_table_opts o = cr_table_default_opts();
    o.max_line = 10;
    const char *s = "a,b\n1,\"abc\ndefgh\"\n2,\"0123456789\"\n3,x\n";
    CHECK_OK(cr_table_open_mem(&t, s, strlen(s), "l.csv", &o));
    select_cols(t, "a", "b", NULL, NULL);
    CHECK_EQ(dump(t, 2, out, sizeof out), 1);
    CHECK_STR(out, "!limit exceeded@2\n!limit exceeded@4\n3|x\n");
    CHECK_STR(cr_errmsg(), "l.csv:4: record longer than 10 bytes");
    cr_table_close(t);
}

TEST(table_csv_large_multiline) {
    /* Quoted multi-line fields crossing buffer refills, from a file: record count and line numbers. */
    const int64_t n = 300000;
    size_t cap = (size_t)n * 40 + 64, w = 0;
    char *s = malloc(cap);
    w += (size_t)snprintf(s + w, cap - w, "id;text\n");
    for (int64_t i = 0; i < n; i++)
        w += (size_t)snprintf(s + w, cap - w, "%lld;\"l1 \"\"q\"\";\nl2\"\n", (long long)i);
    cr_table *t;
    CHECK_OK(cr_table_open(&t, cr_test_write("ml.csv", s, (long)w), NULL));
    select_cols(t, "id", "text", NULL, NULL);
    cr_field f[2];
    for (int64_t i = 0; i < n; i++) {
        CHECK_OK(cr_table_next(t, f));
        CHECK_EQ(cr_table_line(t), 2 + 2 * i);
        int64_t id;
        CHECK(cr_parse_i64(f[0].p, f[0].len, &id) == 0 && id == i);
        CHECK(f[1].len == 10 && memcmp(f[1].p, "l1 \"q\";\nl2", 10) == 0);
    }
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);
    free(s);
}

TEST(table_jsonl) {
    const char *js =
        "{\"user\": \"u1\", \"item\": 17, \"ts\": 978300760.0, \"v\": 4.5, \"title\": \"caf\\u00e9 \\\"x\\\"\\n\"}\n"
        "\n"
        "{\"item\": \"i2\", \"user\": \"u2\", \"ts\": -5, \"v\": true, \"title\": null}\r\n"
        "{\"user\": \"u3\", \"item\": \"i3\", \"ts\": 1, \"v\": false}\n"
        "{\"user\": \"u4\", \"item\": 9223372036854775807, \"ts\": 0.1}\n";
    cr_table *t = open_mem(js, "x.jsonl", CR_FMT_AUTO);
    CHECK_EQ(cr_table_get_format(t), CR_FMT_JSONL);
    CHECK_EQ(cr_table_n_cols(t), 5);                /* keys of the first object, in file order */
    CHECK_STR(cr_table_col_name(t, 0), "user");
    CHECK_STR(cr_table_col_name(t, 4), "title");
    const char *names[] = {"user", "item", "ts", "v", "title"};
    int req[] = {1, 1, 1, 0, 0};
    CHECK_OK(cr_table_select(t, names, req, 5));
    CHECK_EQ(dump(t, 5, out, sizeof out), 4);
    CHECK_STR(out, "u1|17|978300760|4.5|caf\xC3\xA9 \"x\"\n\n"
                   "u2|i2|-5|1|~\n"
                   "u3|i3|1|0|~\n"
                   "u4|9223372036854775807|0.10000000000000001|~|~\n");
    cr_table_close(t);

    /* Line numbers: the blank line counts. */
    t = open_mem(js, "x.jsonl", CR_FMT_JSONL);
    cr_field f[5];
    CHECK_OK(cr_table_select(t, names, req, 5));
    CHECK_OK(cr_table_next(t, f));
    CHECK_EQ(cr_table_line(t), 1);
    CHECK_OK(cr_table_next(t, f));
    CHECK_EQ(cr_table_line(t), 3);
    cr_table_close(t);

    /* Errors, each followed by a good record. */
    const char *bad =
        "{\"user\": \"u0\", \"item\": \"i0\"}\n"
        "{\"item\": \"i1\"}\n"
        "{\"user\": null, \"item\": \"i1\"}\n"
        "{\"user\": \"u2\", \"item\": [1]}\n"
        "{\"user\": \"u3\", \"item\": \"i3\"\n"
        "[1, 2]\n"
        "{\"user\": \"\\ud800\", \"item\": \"x\"}\n"
        "{\"user\": \"u7\", \"item\": \"i7\"} x\n"
        "{\"user\": \"u8\", \"item\": \"i8\"}\n";
    t = open_mem(bad, "b.ndjson", CR_FMT_AUTO);
    const char *ui[] = {"user", "item"};
    CHECK_OK(cr_table_select(t, ui, NULL, 2));
    CHECK_OK(cr_table_next(t, f));
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "b.ndjson:2: field 'user' is missing");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "b.ndjson:3: field 'user' is null");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "b.ndjson:4: field 'item' is an array (expected a string, number or boolean)");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "b.ndjson:5:");
    CHECK_CONTAINS(cr_errmsg(), "invalid JSON: ");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "b.ndjson:6: expected a JSON object, found an array");
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "b.ndjson:7:");
    CHECK_CONTAINS(cr_errmsg(), "nvalid Unicode");  /* jansson: "invalid Unicode '\uD800'" */
    CHECK_STATUS(cr_table_next(t, f), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "b.ndjson:8:");
    CHECK_CONTAINS(cr_errmsg(), "end of file expected");
    CHECK_OK(cr_table_next(t, f));
    CHECK(f[0].len == 2 && memcmp(f[0].p, "u8", 2) == 0);
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);

    /* A required column absent from the first object fails at select; a bad first line fails at open. */
    t = open_mem("{\"a\": 1}\n", "c.jsonl", CR_FMT_JSONL);
    CHECK_STATUS(cr_table_select(t, ui, NULL, 2), CR_ERR_NOTFOUND);
    CHECK_STR(cr_errmsg(), "c.jsonl: no column 'user' (columns: a)");
    cr_table_close(t);
    cr_table *t2;
    CHECK_STATUS(cr_table_open_mem(&t2, "{\"a\": \n", 7, "d.jsonl", NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "d.jsonl:1:");
    CHECK_STATUS(cr_table_open_mem(&t2, "\n\n", 2, "d.jsonl", NULL), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "d.jsonl: file is empty (expected a header line)");
}

TEST(table_recbole) {
    const char *inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\ttags:token_seq\n"
                        "196\t242\t3\t881250949.0\ta b\n"
                        "186\t302\t3.5\t891717742.9\t\n";
    cr_table *t = open_mem(inter, "ml-100k.inter", CR_FMT_AUTO);
    CHECK_EQ(cr_table_get_format(t), CR_FMT_RECBOLE);
    CHECK_STR(cr_table_col_name(t, 0), "user_id");
    CHECK_STR(cr_table_col_name(t, 3), "timestamp");
    CHECK_STR(cr_table_col_name(t, 4), "tags");
    select_cols(t, "user_id", "timestamp", "rating", NULL);
    cr_field f[3];
    CHECK_OK(cr_table_next(t, f));
    int64_t ts;
    float r;
    CHECK(cr_parse_i64(f[1].p, f[1].len, &ts) == 0 && ts == 881250949);
    CHECK_OK(cr_table_next(t, f));
    CHECK(cr_parse_i64(f[1].p, f[1].len, &ts) == 0 && ts == 891717742);
    CHECK(cr_parse_f32(f[2].p, f[2].len, &r) == 0 && r == 3.5f);
    CHECK_STATUS(cr_table_next(t, f), CR_DONE);
    cr_table_close(t);

    /* The same header read as plain TSV keeps the suffixes; unknown types are kept in RecBole too. */
    t = open_mem("user_id:token\tx:weird\n", "a.tsv", CR_FMT_AUTO);
    CHECK_STR(cr_table_col_name(t, 0), "user_id:token");
    cr_table_close(t);
    t = open_mem("user_id:token\tx:weird\n", "a.item", CR_FMT_AUTO);
    CHECK_EQ(cr_table_get_format(t), CR_FMT_RECBOLE);
    CHECK_STR(cr_table_col_name(t, 1), "x:weird");
    cr_table_close(t);
}

TEST(table_format_names) {
    static const struct { const char *name; cr_table_format f; } cases[] = {
        {"a.tsv", CR_FMT_TSV},       {"a.TSV.gz", CR_FMT_TSV},     {"dir.csv/a", CR_FMT_TSV},
        {"a.csv.gz", CR_FMT_CSV},    {"a.jsonl", CR_FMT_JSONL},    {"a.json.gz", CR_FMT_JSONL},
        {"x.user", CR_FMT_RECBOLE},  {"x.inter.gz", CR_FMT_RECBOLE}, {"noext", CR_FMT_TSV},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_table *t;
        const char *data = cases[i].f == CR_FMT_JSONL ? "{\"a\":1}\n" : "a\n";
        CHECK_OK(cr_table_open_mem(&t, data, strlen(data), cases[i].name, NULL));
        CHECK_MSG(cr_table_get_format(t) == cases[i].f, "%s -> %s", cases[i].name,
                  cr_table_format_name(cr_table_get_format(t)));
        cr_table_close(t);
    }
    CHECK_STR(cr_table_format_name(CR_FMT_RECBOLE), "recbole");
    CHECK_STR(cr_table_format_name(CR_FMT_AUTO), "auto");
    cr_table_opts o = cr_table_default_opts();
    CHECK_EQ(o.max_line, 1 << 20);
    CHECK_EQ(o.format, CR_FMT_AUTO);
    o.max_line = -1;
    cr_table *t;
    CHECK_STATUS(cr_table_open_mem(&t, "a\n", 2, "a.tsv", &o), CR_ERR_ARG);
    o.max_line = 0;                                 /* zero means the default */
    CHECK_OK(cr_table_open_mem(&t, "a\n", 2, "a.tsv", &o));
    cr_table_close(t);
}

static void write_gz(const char *path, const char *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    CR_ASSERT(gz);
    CR_ASSERT(gzwrite(gz, data, (unsigned)n) == (int)n);
    CR_ASSERT(gzclose(gz) == Z_OK);
}

TEST(table_gzip) {
    const char *data = "user\titem\nu1\ti1\nu2\ti2\n";
    const char *p1 = cr_test_path("g.tsv.gz");
    write_gz(p1, data, strlen(data));
    const char *p2 = cr_test_path("disguised.tsv");  /* gzip whatever the name says */
    write_gz(p2, data, strlen(data));
    const char *paths[] = {p1, p2};
    for (int i = 0; i < 2; i++) {
        cr_table *t;
        CHECK_OK(cr_table_open(&t, paths[i], NULL));
        CHECK_EQ(cr_table_get_format(t), CR_FMT_TSV);
        select_cols(t, "item", "user", NULL, NULL);
        CHECK_EQ(dump(t, 2, out, sizeof out), 2);
        CHECK_STR(out, "i1|u1\ni2|u2\n");
        cr_table_close(t);
    }

    /* Two concatenated members plus zero padding (as `cat a.gz b.gz` and tape blocks make). */
    size_t n1, n2;
    const char *q1 = cr_test_path("m1.gz"), *q2 = cr_test_path("m2.gz");
    write_gz(q1, "user\titem\nu1\ti1\n", 16);
    write_gz(q2, "u2\ti2\n", 6);
    char *b1 = cr_test_read(q1, &n1), *b2 = cr_test_read(q2, &n2);
    char *cat = malloc(n1 + n2 + 8);
    memcpy(cat, b1, n1);
    memcpy(cat + n1, b2, n2);
    memset(cat + n1 + n2, 0, 8);
    const char *pc = cr_test_write("cat.tsv.gz", cat, (long)(n1 + n2 + 8));
    for (int mem = 0; mem < 2; mem++) {
        cr_table *t;
        if (mem) CHECK_OK(cr_table_open_mem(&t, cat, n1 + n2 + 8, "cat.tsv.gz", NULL));
        else CHECK_OK(cr_table_open(&t, pc, NULL));
        select_cols(t, "user", NULL, NULL, NULL);
        CHECK_EQ(dump(t, 1, out, sizeof out), 2);
        CHECK_STR(out, "u1\nu2\n");
        cr_table_close(t);
    }

    /* Trailing garbage after the last member is an error, not silently ignored. */
    memcpy(cat + n1 + n2, "junk", 4);
    cr_table *t;
    CHECK_OK(cr_table_open_mem(&t, cat, n1 + n2 + 4, "junk.gz", NULL));
    select_cols(t, "user", NULL, NULL, NULL);
    CHECK_EQ(dump(t, 1, out, sizeof out), 2);
    CHECK_STR(out, "u1\nu2\n!i/o error@3\n");
    CHECK_STR(cr_errmsg(), "junk.gz: unexpected bytes after the end of the gzip data");
    cr_table_close(t);

    /* Corrupt deflate data: CR_ERR_IO naming the file and zlib's message; the reader stays failed. */
    char *bad = malloc(n1);
    memcpy(bad, b1, n1);
    for (size_t i = 12; i < n1 - 8; i++) bad[i] = (char)0xff;
    const char *pb = cr_test_write("bad.tsv.gz", bad, (long)n1);
    cr_status st = cr_table_open(&t, pb, NULL);
    CHECK_STATUS(st, CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "bad.tsv.gz: corrupt gzip data: ");
    CHECK(t == NULL);
    /* A bad header (unknown compression method). */
    CHECK_STATUS(cr_table_open(&t, cr_test_write("hdr.gz", "\x1f\x8b\x09\x00\x00\x00\x00\x00\x00\x03xx", 12), NULL),
                 CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "hdr.gz: corrupt gzip data: unknown compression method");
    /* Truncated: the header line arrives, then the data stops. */
    size_t big_n = 200000;
    char *big = malloc(big_n);
    size_t w = (size_t)snprintf(big, big_n, "a\tb\n");
    for (uint32_t x = 1; w + 24 < big_n;) {
        x = x * 1103515245u + 12345u;
        w += (size_t)snprintf(big + w, big_n - w, "%u\t%u\n", x, x >> 7);
    }
    const char *pt = cr_test_path("trunc.gz");
    write_gz(pt, big, w);
    size_t tn;
    char *tb = cr_test_read(pt, &tn);
    pt = cr_test_write("trunc.gz", tb, (long)(tn / 2));
    CHECK_OK(cr_table_open(&t, pt, NULL));
    int64_t recs = dump(t, 0, out, sizeof out);
    CHECK(recs > 0);
    CHECK_CONTAINS(out, "!i/o error@");
    CHECK_CONTAINS(cr_errmsg(), "trunc.gz: gzip data is truncated (unexpected end of file)");
    CHECK_STATUS(cr_table_next(t, NULL), CR_ERR_IO);    /* and stays failed */
    cr_table_close(t);
    free(big);
    free(tb);
    free(bad);
    free(cat);
    free(b1);
    free(b2);
}

TEST(table_missing_empty) {
    cr_table *t = (cr_table *)1;
    const char *p = cr_test_path("nope.tsv");
    CHECK_STATUS(cr_table_open(&t, p, NULL), CR_ERR_IO);
    CHECK(t == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
    CHECK_STR(cr_errmsg(), want);

    p = cr_test_write("empty.tsv", "", 0);
    CHECK_STATUS(cr_table_open(&t, p, NULL), CR_ERR_PARSE);
    snprintf(want, sizeof want, "%s: file is empty (expected a header line)", p);
    CHECK_STR(cr_errmsg(), want);
    /* Blank lines or a lone BOM are empty too; so is an empty gzip stream. */
    CHECK_STATUS(cr_table_open(&t, cr_test_write("blank.tsv", "\n\r\n\n", -1), NULL), CR_ERR_PARSE);
    CHECK_STATUS(cr_table_open(&t, cr_test_write("bom.csv", "\xEF\xBB\xBF", -1), NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "bom.csv: file is empty");
    const char *pg = cr_test_path("empty.tsv.gz");
    write_gz(pg, "", 0);
    CHECK_STATUS(cr_table_open(&t, pg, NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "empty.tsv.gz: file is empty");
    CHECK_STATUS(cr_table_open_mem(&t, NULL, 0, "m.tsv", NULL), CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "m.tsv: file is empty (expected a header line)");
    /* A directory is not a table. */
    CHECK_STATUS(cr_table_open(&t, cr_test_tmpdir(), NULL), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "cannot open: Is a directory");
}

TEST(table_stdin) {
    const char *p = cr_test_write("stdin.tsv", "a\tb\n1\t2\n3\n", -1);
    CHECK(freopen(p, "r", stdin) != NULL);
    cr_table *t;
    CHECK_OK(cr_table_open(&t, "-", NULL));
    CHECK_STR(cr_table_name(t), "(stdin)");
    select_cols(t, "b", NULL, NULL, NULL);
    CHECK_EQ(dump(t, 1, out, sizeof out), 1);
    CHECK_STR(out, "2\n!parse error@3\n");
    CHECK_STR(cr_errmsg(), "(stdin):3: expected 2 fields, found 1");
    cr_table_close(t);
    CHECK(freopen("/dev/null", "r", stdin) != NULL);
}

TEST(table_parse_i64) {
    static const struct { const char *s; int ok; int64_t v; } cases[] = {
        {"0", 1, 0}, {"-0", 1, 0}, {"+7", 1, 7}, {"42", 1, 42}, {"1.5", 1, 1}, {"-1.5", 1, -1},
        {"978300760.0", 1, 978300760}, {"12.", 1, 12}, {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN}, {"9223372036854775808", 0, 0}, {"-9223372036854775809", 0, 0},
        {"99999999999999999999", 0, 0}, {"", 0, 0}, {"-", 0, 0}, {"+", 0, 0}, {"abc", 0, 0}, {" 1", 0, 0},
        {"1 ", 0, 0}, {"1e3", 0, 0}, {".5", 0, 0}, {"1.2.3", 0, 0}, {"0x10", 0, 0}, {"1-", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 12345;
        int r = cr_parse_i64(cases[i].s, (int64_t)strlen(cases[i].s), &v);
        CHECK_MSG(r == (cases[i].ok ? 0 : -1), "cr_parse_i64(\"%s\") returned %d", cases[i].s, r);
        if (cases[i].ok) CHECK_MSG(v == cases[i].v, "cr_parse_i64(\"%s\") = %lld", cases[i].s, (long long)v);
        else CHECK_EQ(v, 12345);                    /* untouched on failure */
    }
    /* Reads only the given length: "12" out of "123". */
    int64_t v;
    CHECK(cr_parse_i64("123", 2, &v) == 0 && v == 12);
    CHECK(cr_parse_i64(NULL, 0, &v) == -1);
}

TEST(table_parse_f32) {
    static const struct { const char *s; int ok; float v; } cases[] = {
        {"0", 1, 0.0f}, {"-0", 1, -0.0f}, {"1.5", 1, 1.5f}, {"1e3", 1, 1000.0f}, {"4", 1, 4.0f},
        {"3.25", 1, 3.25f}, {".5", 1, 0.5f}, {"5.", 1, 5.0f}, {"+2.5E-1", 1, 0.25f}, {"0.1", 1, 0.1f},
        {"16777217", 1, 16777216.0f}, {"123456789012345678901234567890", 1, 123456789012345678901234567890.0f},
        {"1e-50", 1, 0.0f}, {"3.4028235e38", 1, 3.4028235e38f}, {"0.00000000001", 1, 1e-11f},
        {"1e39", 0, 0}, {"", 0, 0}, {"abc", 0, 0}, {" 1", 0, 0}, {"1 ", 0, 0}, {"inf", 0, 0},
        {"nan", 0, 0}, {"-inf", 0, 0}, {"infinity", 0, 0}, {"0x1p3", 0, 0}, {"1e", 0, 0}, {"1e+", 0, 0},
        {".", 0, 0}, {"-", 0, 0}, {"1,5", 0, 0}, {"e5", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float v = 7.0f;
        int r = cr_parse_f32(cases[i].s, (int64_t)strlen(cases[i].s), &v);
        CHECK_MSG(r == (cases[i].ok ? 0 : -1), "cr_parse_f32(\"%s\") returned %d", cases[i].s, r);
        if (cases[i].ok) CHECK_MSG(v == cases[i].v, "cr_parse_f32(\"%s\") = %.9g", cases[i].s, (double)v);
    }
    float v;
    CHECK(cr_parse_f32("-0", 2, &v) == 0 && signbit(v));
    CHECK(cr_parse_f32("2.5xyz", 3, &v) == 0 && v == 2.5f);  /* length-bounded */
    /* The fast path agrees with strtof bit for bit on many short decimals. */
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        int k = snprintf(buf, sizeof buf, "%d.%0*d", i % 9973, 1 + i % 6, i);
        CHECK(cr_parse_f32(buf, k, &v) == 0);
        float ref = strtof(buf, NULL);
        CHECK_MSG(memcmp(&v, &ref, sizeof v) == 0, "%s: %.9g vs strtof %.9g", buf, (double)v, (double)ref);
    }
    /* A long number goes through the allocating slow path. */
    char longnum[300];
    memset(longnum, '1', sizeof longnum);
    longnum[1] = '.';
    CHECK(cr_parse_f32(longnum, (int64_t)sizeof longnum, &v) == 0);
    CHECK_NEAR(v, 1.1111111, 1e-6);
}

TEST(table_utf8_check) {
    static const struct { const char *s; int64_t bad; } cases[] = {
        {"", -1}, {"plain ascii text, longer than eight bytes", -1},
        {"\xE4\xB8\xAD\xE6\x96\x87", -1},                 /* 中文 */
        {"\xF0\x9F\x98\x80 emoji \xF0\x9F\x8E\x89", -1},   /* 😀 🎉 */
        {"caf\xC3\xA9", -1}, {"\xEF\xBF\xBF", -1}, {"\xF4\x8F\xBF\xBF", -1}, {"\xED\x9F\xBF", -1},
        {"\xC0\x80", 0},            /* overlong NUL */
        {"\xC1\xBF", 0},            /* overlong */
        {"\xE0\x80\x80", 0},        /* overlong 3-byte */
        {"\xF0\x80\x80\x80", 0},    /* overlong 4-byte */
        {"\xED\xA0\x80", 0},        /* surrogate U+D800 */
        {"\xED\xBF\xBF", 0},        /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 0},    /* U+110000 */
        {"\xF5\x80\x80\x80", 0}, {"\xFF", 0}, {"\x80", 0}, {"abcdefghij\xBF", 10},
        {"ab\xE4\xB8", 2},          /* truncated at the end */
        {"ab\xE4\xB8z", 2},         /* truncated before ASCII */
        {"\xC3", 0}, {"\xF0\x9F\x98", 0}, {"12345678\xC3\xA9\xC3", 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t at = cr_utf8_invalid_at(cases[i].s, (int64_t)strlen(cases[i].s));
        CHECK_MSG(at == cases[i].bad, "case %zu: got %lld, want %lld", i, (long long)at, (long long)cases[i].bad);
    }
    /* Length-bounded: the cut sequence is invalid, the whole one is not. */
    CHECK_EQ(cr_utf8_invalid_at("\xE4\xB8\xAD", 2), 0);
    CHECK_EQ(cr_utf8_invalid_at("\xE4\xB8\xAD", 3), -1);
}

TEST(table_alloc_failures) {
    /* Every allocation on the way (open, gzip, select, scratch, jansson) may fail: never a crash or a leak,
     * and a failure is reported as out of memory, not as bad data. */
    static const struct { const char *name; const char *data; } cases[] = {
        {"a.tsv", "user\titem\nu\ti\n"},
        {"a.csv", "user,item\n\"u\"\"\",i\n"},
        {"a.jsonl", "{\"user\":\"u\",\"item\":1.5}\n{\"user\":\"v\",\"item\":[1,{\"a\":2}]}\n"},
    };
    const char *names[] = {"user", "item"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int64_t nth = 1; nth < 200; nth++) {
            cr_alloc_fail_nth(nth);
            cr_table *t = NULL;
            cr_status st = cr_table_open_mem(&t, cases[c].data, strlen(cases[c].data), cases[c].name, NULL);
            if (st == CR_OK) {
                st = cr_table_select(t, names, NULL, 2);
                cr_field f[2];
                while (st == CR_OK) st = cr_table_next(t, f);
                if (st == CR_ERR_PARSE) st = cr_table_next(t, f);   /* the jsonl nested value */
                cr_table_close(t);
            }
            int hit = cr_alloc_fault_hit();
            cr_alloc_fail_nth(0);
            if (hit) CHECK_MSG(st == CR_ERR_NOMEM, "%s, allocation %lld: %s (%s)", cases[c].name, (long long)nth,
                               cr_status_str(st), cr_errmsg());
            else {
                CHECK_MSG(st == CR_DONE, "%s: %s", cases[c].name, cr_errmsg());
                break;
            }
        }
    }
    /* gzip from a file: the decoder's allocations. */
    const char *pg = cr_test_path("af.tsv.gz");
    write_gz(pg, "user\titem\nu\ti\n", 14);
    for (int64_t nth = 1; nth < 50; nth++) {
        cr_alloc_fail_nth(nth);
        cr_table *t = NULL;
        cr_status st = cr_table_open(&t, pg, NULL);
        while (st == CR_OK) st = cr_table_next(t, NULL);
        cr_table_close(t);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_STATUS(st, CR_DONE);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "allocation %lld: %s (%s)", (long long)nth, cr_status_str(st), cr_errmsg());
    }
}

TEST(table_shared_amazon) {
    const char *dir = cr_test_shared_data();
    if (!dir) cr_test_skip("no shared data folder");
    char path[512];
    snprintf(path, sizeof path, "%s/amazon-art-office/interactions.tsv", dir);
    if (!cr_test_file_exists(path)) cr_test_skip("amazon-art-office not present");
    cr_table *t;
    CHECK_OK(cr_table_open(&t, path, NULL));
    const char *names[] = {"user", "item", "timestamp", "value"};
    CHECK_OK(cr_table_select(t, names, NULL, 4));
    cr_field f[4];
    int64_t recs = 0, bad = 0;
    cr_status st;
    while ((st = cr_table_next(t, f)) == CR_OK) {
        int64_t ts;
        float v;
        bad += cr_parse_i64(f[2].p, f[2].len, &ts) != 0 || cr_parse_f32(f[3].p, f[3].len, &v) != 0;
        recs++;
    }
    CHECK_MSG(st == CR_DONE, "%s", cr_errmsg());
    CHECK_EQ(recs, 208541);
    CHECK_EQ(bad, 0);
    CHECK_EQ(cr_table_line(t), 208542);
    cr_table_close(t);
}

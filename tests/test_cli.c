/* test_cli.c — the crossrec binary as a user meets it: bad input gives one clear line naming file:line,
 * exit code 1 and no output file; usage errors exit 2 with a suggestion; import/stats/inspect/synth work; help
 * lists every option with its live default; long commands draw a progress line on a terminal only. */
#include "test.h"

#include "crossrec/model.h"

#include <stdlib.h>

static const char *HDR = "user\titem\ttimestamp\tvalue\n";
static const char *ITEMS = "item\tdomain\ttitle\ttext\ni1\tbooks\tA\tx\ni2\tmusic\tB\ty\n";

/* Runs `crossrec import` on an interactions file with the given content; expects failure with `want` in the
 * first line of the output, exit code 1, and no output file. */
static void expect_import_error(const char *content, long len, const char *want) {
    const char *inter = cr_test_write("bad.tsv", content, len);
    const char *items = cr_test_write("items.tsv", ITEMS, -1);
    const char *out = cr_test_path("out.crd");
    remove(out);
    char *text;
    int rc = cr_test_cli(&text, "import --interactions '%s' --items '%s' -o '%s'", inter, items, out);
    CHECK_MSG(rc == 1, "exit code %d, output: %s", rc, text);
    CHECK_CONTAINS(text, want);
    CHECK_CONTAINS(text, "crossrec: error: ");
    CHECK(!cr_test_file_exists(out));
    free(text);
}

TEST(cli_import_bad_input) {
    char buf[256];
    expect_import_error("", 0, "bad.tsv: file is empty");
    snprintf(buf, sizeof buf, "%s", HDR);
    expect_import_error(buf, -1, "no interactions");
    snprintf(buf, sizeof buf, "%su1\ti1\t1\t1\nu1\ti2\t2\n", HDR);
    expect_import_error(buf, -1, "bad.tsv:3: expected 4 fields, found 3");
    snprintf(buf, sizeof buf, "%su1\ti1\tnoon\t1\n", HDR);
    expect_import_error(buf, -1, "bad.tsv:2:7: field 'timestamp': expected an integer, found 'noon'");
    snprintf(buf, sizeof buf, "%su1\ti1\t1\tfive\n", HDR);
    expect_import_error(buf, -1, "bad.tsv:2:9: field 'value': expected a number, found 'five'");
    snprintf(buf, sizeof buf, "%su\xff\ti1\t1\t1\n", HDR);
    expect_import_error(buf, -1, "bad.tsv:2:2: invalid UTF-8");
    snprintf(buf, sizeof buf, "%su1\tnope\t1\t1\n", HDR);
    expect_import_error(buf, -1, "bad.tsv:2:4: item 'nope' is not in the catalogue");
    size_t big = (1u << 20) + 100;
    char *longline = malloc(big + 64);
    int n = snprintf(longline, 64, "%su1\t", HDR);
    memset(longline + n, 'x', big);
    memcpy(longline + n + big, "\t1\t1\n", 6);
    expect_import_error(longline, -1, "bad.tsv:2: line longer than 1048576 bytes");
    free(longline);
}

TEST(cli_import_missing_file_and_duplicate_items) {
    const char *out = cr_test_path("out.crd");
    char *text;
    int rc = cr_test_cli(&text, "import --interactions /nonexistent/x.tsv -o '%s'", out);
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(text, "/nonexistent/x.tsv: cannot open");
    free(text);
    const char *inter = cr_test_write("ok.tsv", "user\titem\ttimestamp\tvalue\nu1\ti1\t1\t1\n", -1);
    const char *items = cr_test_write("dup.tsv", "item\tdomain\ttitle\ttext\ni1\tb\tA\t\ni1\tb\tA\t\n", -1);
    rc = cr_test_cli(&text, "import --interactions '%s' --items '%s' -o '%s'", inter, items, out);
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(text, "dup.tsv:3: duplicate item id 'i1'");
    CHECK(!cr_test_file_exists(out));
    free(text);
}

/* CRLF line ends and a UTF-8 BOM are what spreadsheet exports produce: they import exactly like plain LF. */
TEST(cli_import_crlf_and_bom_are_accepted) {
    const char *items = cr_test_write("items.tsv", ITEMS, -1);
    const char *plain = cr_test_write("lf.tsv", "user\titem\ttimestamp\tvalue\nu1\ti1\t1\t1\nu2\ti2\t2\t4\n", -1);
    const char *crlf = cr_test_write("crlf.tsv", "\xef\xbb\xbfuser\titem\ttimestamp\tvalue\r\nu1\ti1\t1\t1\r\nu2\ti2\t2\t4\r\n", -1);
    char *text;
    CHECK_EQ(cr_test_cli(&text, "import --interactions '%s' --items '%s' -o '%s' -q", plain, items, cr_test_path("lf.crd")), 0);
    free(text);
    CHECK_EQ(cr_test_cli(&text, "import --interactions '%s' --items '%s' -o '%s' -q", crlf, items, cr_test_path("crlf.crd")), 0);
    free(text);
    /* the files differ only in the source metadata (it names the input file): compare what they hold */
    char *sa, *sb;
    CHECK_EQ(cr_test_cli(&sa, "stats --json '%s'", cr_test_path("lf.crd")), 0);
    CHECK_EQ(cr_test_cli(&sb, "stats --json '%s'", cr_test_path("crlf.crd")), 0);
    CHECK_STR(sa, sb);
    free(sa), free(sb);
}

TEST(cli_import_skip_bad_lines) {
    const char *items = cr_test_write("items.tsv", ITEMS, -1);
    const char *inter = cr_test_write("mixed.tsv", "user\titem\ttimestamp\tvalue\nu1\ti1\t1\t1\nu1\ti2\n\xff\ti1\t1\t1\nu2\ti2\t5\t1\n", -1);
    const char *out = cr_test_path("skip.crd");
    char *text;
    int rc = cr_test_cli(&text, "import --interactions '%s' --items '%s' -o '%s' --skip-bad-lines", inter, items, out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, text);
    CHECK_CONTAINS(text, "imported 2 interactions");
    CHECK_CONTAINS(text, "skipped 2 bad lines");
    CHECK_CONTAINS(text, "mixed.tsv:3: expected 4 fields, found 2");
    free(text);
}

TEST(cli_usage_errors) {
    char *text;
    CHECK_EQ(cr_test_cli(&text, "imprt"), 2);
    CHECK_CONTAINS(text, "did you mean 'crossrec import'");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "import --interaction x.tsv -o y.crd"), 2);
    CHECK_CONTAINS(text, "did you mean --interactions");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "import --interactions x.tsv"), 2);
    CHECK_CONTAINS(text, "-o data.crd");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "import --help"), 0);
    CHECK_CONTAINS(text, "--skip-bad-lines");
    CHECK_CONTAINS(text, "(default: 1048576)");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "stats"), 2);
    free(text);
}

TEST(cli_synth_import_stats_inspect) {
    const char *dir = cr_test_path("synth");
    char *text;
    int rc = cr_test_cli(&text, "synth -o '%s' --users 300 --items 200 --interactions 3000 --domains 3 --seed 5", dir);
    CHECK_MSG(rc == 0, "synth: %s", text);
    free(text);
    const char *out = cr_test_path("synth.crd");
    rc = cr_test_cli(&text, "import '%s' -o '%s'", dir, out);
    CHECK_MSG(rc == 0, "import: %s", text);
    CHECK_CONTAINS(text, "imported 3000 interactions (300 users, 200 items, 3 domains)");
    free(text);
    rc = cr_test_cli(&text, "stats '%s'", out);
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(text, "users active in both domains");
    free(text);
    rc = cr_test_cli(&text, "inspect '%s'", out);
    CHECK_MSG(rc == 0, "inspect: %s", text);
    CHECK_CONTAINS(text, "user_items");
    free(text);
    /* a damaged file is named and refused */
    size_t len;
    char *bytes = cr_test_read(out, &len);
    bytes[len / 2] ^= 0x10;
    const char *bad = cr_test_write("damaged.crd", bytes, (long)len);
    free(bytes);
    rc = cr_test_cli(&text, "stats '%s'", bad);
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(text, "damaged.crd");
    free(text);
}

/* Every command's help, wrapped, with the defaults the code uses (read here from the library). */
TEST(cli_help_every_option_with_its_default) {
    char *text, want[64];
    CHECK_EQ(cr_test_cli(&text, "--help"), 0);
    const char *commands[] = {"import", "stats", "split", "train", "eval", "compare", "report", "embed", "demo"};
    for (int i = 0; i < 9; i++) {
        snprintf(want, sizeof want, "\n  %s ", commands[i]);
        CHECK_CONTAINS(text, want);
    }
    free(text);
    CHECK_EQ(cr_test_cli(&text, "help --all"), 0);
    for (int i = 0; i < 9; i++) {
        snprintf(want, sizeof want, "usage: crossrec %s", commands[i]);
        CHECK_CONTAINS(text, want);
    }
    cr_train_params tp = cr_train_default_params();
    snprintf(want, sizeof want, "--dim D ");
    const char *dim = strstr(text, want);
    CHECK(dim != NULL);
    snprintf(want, sizeof want, "(default: %lld)", (long long)tp.dim);
    CHECK(strstr(dim, want) && strstr(dim, want) < strchr(dim, '\n') + 200);
    snprintf(want, sizeof want, "(default: %g)", tp.temperature);
    CHECK_CONTAINS(text, want);
    /* option lines wrap at 118 columns */
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (!strncmp(line, "  ", 2) && strncmp(line, "  crossrec", 10)) CHECK_MSG(len <= 118, "help line of %zu columns: %.*s", len, (int)len, line);
        line += len + (end != NULL);
    }
    free(text);
    CHECK_EQ(cr_test_cli(&text, "help trian"), 2);
    CHECK_CONTAINS(text, "did you mean 'crossrec train'");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "help eval"), 0);
    CHECK_CONTAINS(text, "usage: crossrec eval");
    CHECK_CONTAINS(text, "(default: 10,20,50)");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "train x.crs --model pop --epoch 3 -o m.crm"), 2);
    CHECK_CONTAINS(text, "did you mean --epochs");
    free(text);
}

/* A progress line with rate and ETA on a terminal, nothing when stderr is a file, nothing with --quiet; one
 * summary line at the end. */
TEST(cli_progress_line_on_a_terminal_only) {
    const char *dir = cr_test_path("progress");
    char crd[512], crs[512], crm[512], *text;
    snprintf(crd, sizeof crd, "%s.crd", dir);
    snprintf(crs, sizeof crs, "%s.crs", dir);
    snprintf(crm, sizeof crm, "%s.crm", dir);
    CHECK_EQ(cr_test_cli(NULL, "synth -o %s --users 400 --items 200 --interactions 6000 --domains 2", dir), 0);
    CHECK_EQ(cr_test_cli_tty(&text, "import %s -o %s", dir, crd), 0);
    CHECK_CONTAINS(text, "\rimport: ");
    CHECK_CONTAINS(text, " MB (");
    CHECK_CONTAINS(text, "imported 6000 interactions");
    free(text);
    CHECK_EQ(cr_test_cli(NULL, "split %s --protocol cold-user --target music --beta 0.5 -o %s", crd, crs), 0);
    CHECK_EQ(cr_test_cli_tty(&text, "train %s --model bpr --epochs 2 --patience 0 --dim 8 -o %s", crs, crm), 0);
    CHECK_CONTAINS(text, "\rtrain: 1/2 epochs (50%)");
    CHECK_CONTAINS(text, "ETA ");
    CHECK_CONTAINS(text, "trained bpr");
    free(text);

    CHECK_EQ(cr_test_cli_tty(&text, "eval %s %s", crs, crm), 0);
    CHECK_CONTAINS(text, "\reval: ");
    CHECK_CONTAINS(text, "users/s");
    CHECK_CONTAINS(text, "\033[K");
    CHECK_CONTAINS(text, "candidates in ");
    free(text);
    CHECK_EQ(cr_test_cli_tty(&text, "eval %s %s --quiet", crs, crm), 0);
    CHECK(!strstr(text, "eval: "));
    CHECK_CONTAINS(text, "recall");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "eval %s %s", crs, crm), 0);
    CHECK(!strchr(text, '\r') && !strstr(text, "\033["));
    CHECK_CONTAINS(text, "eval: ");   /* the summary line */
    free(text);
}

/* The demo runs the whole story through the commands and leaves a report to open. */
TEST(cli_demo_story_and_report) {
    const char *dir = cr_test_path("demo");
    char *text, html[512];
    int rc = cr_test_cli(&text, "demo --dir '%s'", dir);
    CHECK_MSG(rc == 0, "demo: %s", text);
    const char *steps[] = {"$ crossrec synth", "$ crossrec import", "$ crossrec split", "--model pop", "--model itemknn",
                           "--model cmf", "--model tower", "$ crossrec compare", "$ crossrec report", "Open the report",
                           "Try next", "On your own data"};
    for (int k = 0; k < 12; k++) CHECK_CONTAINS(text, steps[k]);
    free(text);
    snprintf(html, sizeof html, "%s/report.html", dir);
    char *page = cr_test_read(html, NULL);
    CHECK(page != NULL);
    const char *models[] = {"pop.crm", "itemknn.crm", "cmf.crm", "tower.crm"};
    for (int k = 0; k < 4; k++) CHECK_CONTAINS(page, models[k]);
    CHECK_CONTAINS(page, "tower.crm: item vectors");
    CHECK_CONTAINS(page, "Training loss: tower.tsv");
    free(page);
}

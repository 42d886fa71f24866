/* test_report.c — `crossrec report` and its parts: the 2-D PCA on hand-computed and planted data, training logs
 * (good, "nan", bad lines named by file:line), and the HTML page end to end through the binary: self-contained
 * (no URL, no script, nothing loaded), tags balanced, and every number of its table equal to what `crossrec
 * compare --json` prints for the same split and models. */
#include "test.h"

#include "crossrec/report.h"

#include <jansson.h>
#include <stdlib.h>

/* ---- PCA ---- */

/* (-1, 0), (1, 0), (0, -0.5), (0, 0.5): covariance diag(2/3, 1/6), so the components are the axes, with 80% and
 * 20% of the variance, and the coordinates are the points themselves. */
TEST(report_pca_hand_computed) {
    const float x[8] = {-1, 0, 1, 0, 0, -0.5f, 0, 0.5f};
    float out[8];
    double share[2];
    CHECK_OK(cr_pca2(x, 4, 2, out, share));
    for (int k = 0; k < 8; k++) CHECK_NEAR(out[k], x[k], 1e-6);
    CHECK_NEAR(share[0], 0.8, 1e-12);
    CHECK_NEAR(share[1], 0.2, 1e-12);
    /* the same points with their axes swapped: the first component follows the larger spread */
    const float y[8] = {0, -1, 0, 1, -0.5f, 0, 0.5f, 0};
    CHECK_OK(cr_pca2(y, 4, 2, out, share));
    for (int k = 0; k < 4; k++) {
        CHECK_NEAR(out[2 * k], y[2 * k + 1], 1e-6);
        CHECK_NEAR(out[2 * k + 1], y[2 * k], 1e-6);
    }
    /* one column: the second coordinate is 0; too few rows is an error */
    const float z[3] = {1, 2, 6};
    CHECK_OK(cr_pca2(z, 3, 1, out, share));
    CHECK_NEAR(out[0], -2, 1e-6);
    CHECK_NEAR(out[4], 3, 1e-6);
    CHECK_NEAR(out[1], 0, 0);
    CHECK_NEAR(share[0], 1, 1e-12);
    CHECK_STATUS(cr_pca2(z, 1, 1, out, share), CR_ERR_ARG);
}

/* Points spread 3 : 1 : 0.1 along three orthonormal directions of R^6 (rotated off the axes): the components
 * are the first two directions, the coordinates the planted ones. */
TEST(report_pca_recovers_planted_axes) {
    enum { N = 3000, D = 6 };
    double u[3][D] = {{1, 1, 1, 1, 1, 1}, {1, -1, 1, -1, 1, -1}, {1, 1, -1, -1, 1, 1}};
    for (int a = 0; a < 3; a++) {
        double norm = 0;
        for (int j = 0; j < D; j++) norm += u[a][j] * u[a][j];
        for (int j = 0; j < D; j++) u[a][j] /= sqrt(norm);
    }
    CHECK_NEAR(u[0][0] * u[1][0] + u[0][1] * u[1][1] + u[0][2] * u[1][2] + u[0][3] * u[1][3] + u[0][4] * u[1][4] + u[0][5] * u[1][5], 0, 1e-12);
    float *x = malloc(N * D * sizeof *x), *out = malloc(N * 2 * sizeof *out);
    double *c = malloc(N * 3 * sizeof *c), mean[3] = {0};
    cr_rng r;
    cr_rng_named(&r, 7, "pca-test");
    for (int i = 0; i < N; i++) {
        c[3 * i] = 3 * cr_rng_normal(&r), c[3 * i + 1] = cr_rng_normal(&r), c[3 * i + 2] = 0.1 * cr_rng_normal(&r);
        for (int a = 0; a < 3; a++) mean[a] += c[3 * i + a] / N;
        for (int j = 0; j < D; j++) x[i * D + j] = (float)(5 + c[3 * i] * u[0][j] + c[3 * i + 1] * u[1][j] + c[3 * i + 2] * u[2][j]);
    }
    double share[2];
    CHECK_OK(cr_pca2(x, N, D, out, share));
    /* coordinates agree with the planted ones up to the sign of each component */
    double dot[2] = {0, 0}, n0[2] = {0, 0}, n1[2] = {0, 0};
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++) {
            double planted = c[3 * i + k] - mean[k];
            dot[k] += planted * out[2 * i + k], n0[k] += planted * planted, n1[k] += (double)out[2 * i + k] * out[2 * i + k];
        }
    for (int k = 0; k < 2; k++) CHECK_MSG(fabs(dot[k]) / sqrt(n0[k] * n1[k]) > 0.999, "component %d: correlation %.5f", k, dot[k] / sqrt(n0[k] * n1[k]));
    CHECK_NEAR(share[0], 9.0 / 10.01, 0.03);
    CHECK_NEAR(share[1], 1.0 / 10.01, 0.01);
    free(x), free(out), free(c);
}

/* ---- training logs ---- */

TEST(report_train_log_read_and_errors) {
    const char *good = cr_test_write("log-good.tsv",
                                     "epoch\tloss\tvalid_ndcg@10\tseconds\ttrain_seconds\n"
                                     "1\t0.693147\t0.012000\t1.5\t1.2\n2\t0.500000\tnan\t1.4\t1.1\n", -1);
    cr_train_log log;
    CHECK_OK(cr_train_log_read(good, &log));
    CHECK_EQ(log.n, 2);
    CHECK_NEAR(log.epoch[1], 2, 0);
    CHECK_NEAR(log.loss[0], 0.693147, 1e-6);
    CHECK_NEAR(log.valid_ndcg[0], 0.012, 1e-7);
    CHECK(isnan(log.valid_ndcg[1]));
    cr_train_log_free(&log);
    const char *bad = cr_test_write("log-bad.tsv", "epoch\tloss\tvalid_ndcg@10\n1\t0.5\t0.1\n2\tx.y\t0.2\n", -1);
    CHECK_STATUS(cr_train_log_read(bad, &log), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "log-bad.tsv:3:");
    CHECK_CONTAINS(cr_errmsg(), "field 'loss': expected a number, found 'x.y'");
    CHECK_EQ(log.n, 0);
    const char *missing = cr_test_write("log-missing.tsv", "epoch\tloss\n1\t0.5\n", -1);
    CHECK_STATUS(cr_train_log_read(missing, &log), CR_ERR_NOTFOUND);
    CHECK_CONTAINS(cr_errmsg(), "valid_ndcg@10");
}

/* ---- the page ---- */

static const char *const void_elements[] = {"meta", "br", "img", "input", "link", "hr", NULL};

/* Checks that every element of the HTML (and its inline SVG) that is opened is closed, in order. Returns NULL, or
 * a message. */
static const char *unbalanced_tag(const char *html, char *msg, size_t cap) {
    char stack[256][24];
    int depth = 0;
    for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
        if (!strncmp(p, "<!DOCTYPE", 9)) continue;
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789");
        const char *end = strchr(p, '>');
        if (!len || !end || len >= sizeof stack[0]) {
            snprintf(msg, cap, "malformed tag at byte %ld", (long)(p - html));
            return msg;
        }
        char tag[24];
        snprintf(tag, sizeof tag, "%.*s", (int)len, name);
        if (closing) {
            if (!depth || strcmp(stack[depth - 1], tag)) {
                snprintf(msg, cap, "</%s> at byte %ld closes <%s>", tag, (long)(p - html), depth ? stack[depth - 1] : "nothing");
                return msg;
            }
            depth--;
            continue;
        }
        int is_void = end[-1] == '/';
        for (int k = 0; void_elements[k]; k++) is_void |= !strcmp(tag, void_elements[k]);
        if (is_void) continue;
        if (depth == 256) return "nesting deeper than 256";
        snprintf(stack[depth++], sizeof stack[0], "%s", tag);
        if (!strcmp(tag, "style")) p = strstr(p, "</style>") - 1;    /* CSS is not markup */
    }
    if (depth) {
        snprintf(msg, cap, "<%s> never closed", stack[depth - 1]);
        return msg;
    }
    return NULL;
}

/* The value of attribute `name` in the tag that holds `at`, parsed as a double. */
static int attr_value(const char *tag_start, const char *name, double *v) {
    const char *end = strchr(tag_start, '>');
    char key[48];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *a = strstr(tag_start, key);
    if (!a || a > end) return -1;
    *v = strtod(a + strlen(key), NULL);
    return 0;
}

/* The <td> of (model, metric) in the comparison table, or NULL. */
static const char *table_cell(const char *html, const char *model, const char *metric) {
    char key[256];
    snprintf(key, sizeof key, "data-model=\"%s\" data-metric=\"%s\"", model, metric);
    const char *at = strstr(html, key);
    if (!at) return NULL;
    while (at > html && strncmp(at, "<td", 3)) at--;
    return at;
}

/* A synthetic dataset, a split of it and three trained models under tmpdir/name; paths into the buffers. */
static void pipeline(const char *name, const char *split_args, char *crs, char *models, char *logp) {
    const char *dir = cr_test_path(name);
    char crd[512], *text;
    snprintf(crd, 512, "%s.crd", dir);
    snprintf(crs, 512, "%s.crs", dir);
    snprintf(logp, 512, "%s-bpr.tsv", dir);
    CHECK_EQ(cr_test_cli(NULL, "synth -o '%s' --users 500 --items 240 --interactions 9000 --domains 3 --seed 4", dir), 0);
    CHECK_EQ(cr_test_cli(NULL, "import '%s' -o '%s'", dir, crd), 0);
    int rc = cr_test_cli(&text, "split '%s' %s -o '%s'", crd, split_args, crs);
    CHECK_MSG(rc == 0, "split: %s", text);
    free(text);
    const char *names[3] = {"pop", "itemknn", "bpr"};
    size_t used = 0;
    for (int k = 0; k < 3; k++) {
        char crm[600];
        snprintf(crm, sizeof crm, "%s-%s.crm", dir, names[k]);
        rc = cr_test_cli(&text, "train '%s' --model %s --epochs 4 --dim 16 --log '%s' -o '%s' -q", crs, names[k], logp, crm);
        CHECK_MSG(rc == 0, "train %s: %s", names[k], text);
        free(text);
        used += (size_t)snprintf(models + used, 2048 - used, "%s'%s'", k ? " " : "", crm);
    }
}

TEST(report_page_self_contained_and_equal_to_compare) {
    char crs[512], models[2048], logp[512], *text;
    pipeline("rep", "--protocol cold-user --target music --beta 0.4", crs, models, logp);
    const char *html_path = cr_test_path("rep.html");
    int rc = cr_test_cli(&text, "report '%s' %s --log '%s' -o '%s' --k 5,20 --bootstrap 200 --seed 9", crs, models, logp, html_path);
    CHECK_MSG(rc == 0, "report: %s", text);
    CHECK_CONTAINS(text, "report: 3 models");
    free(text);
    rc = cr_test_cli(&text, "compare '%s' %s --json --k 5,20 --bootstrap 200 --seed 9", crs, models);
    CHECK_EQ(rc, 0);
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    CHECK_MSG(root != NULL, "compare --json: %s", err.text);
    free(text);
    char *html = cr_test_read(html_path, NULL);
    CHECK(html != NULL);

    /* self-contained: nothing is loaded, nothing runs */
    const char *banned[] = {"http://", "https://", "<script", " src=", " href=", "url(", "@import", "<link", "<iframe", "<img"};
    for (int k = 0; k < 10; k++) CHECK_MSG(!strstr(html, banned[k]), "the page contains '%s'", banned[k]);
    char msg[256];
    const char *bad = unbalanced_tag(html, msg, sizeof msg);
    CHECK_MSG(!bad, "unbalanced markup: %s", bad);
    CHECK(strstr(html, "<svg") != NULL);

    /* every number of the table is compare's */
    size_t n_models = json_array_size(json_object_get(root, "models"));
    CHECK_EQ(n_models, 3);
    int checked = 0;
    for (size_t k = 0; k < n_models; k++) {
        json_t *m = json_array_get(json_object_get(root, "models"), k);
        const char *name = json_string_value(json_object_get(m, "model"));
        const char *metric;
        json_t *value;
        json_object_foreach(json_object_get(m, "metrics"), metric, value) {
            const char *cell = table_cell(html, name, metric);
            CHECK_MSG(cell != NULL, "no cell for %s %s", name, metric);
            double v;
            CHECK(attr_value(cell, "data-value", &v) == 0);
            CHECK_MSG(v == json_real_value(value), "%s %s: page %.17g, compare %.17g", name, metric, v, json_real_value(value));
            char shown[32];
            snprintf(shown, sizeof shown, ">%.4f", v);
            CHECK_MSG(!strncmp(strchr(cell, '>'), shown, strlen(shown)), "%s %s shows something else than %s", name, metric, shown + 1);
            json_t *diff = json_object_get(json_object_get(m, "difference_to_first"), metric);
            const char *fields[3] = {"mean", "lo", "hi"};
            for (int f = 0; f < 3 && diff; f++) {
                char attr[16];
                snprintf(attr, sizeof attr, "data-%s", fields[f]);
                CHECK(attr_value(cell, attr, &v) == 0);
                CHECK_MSG(v == json_real_value(json_object_get(diff, fields[f])), "%s %s %s differs", name, metric, fields[f]);
            }
            checked++;
        }
    }
    CHECK_EQ(checked, 3 * 7);   /* recall, ndcg, hr at 5 and 20, and mrr */

    /* the sections: curves, groups, learning curves, a map for bpr only, example users with hits marked */
    CHECK_CONTAINS(html, "NDCG@K and Recall@K, K = 1..100");
    CHECK_CONTAINS(html, "aria-label=\"Recall@K\"");
    CHECK_CONTAINS(html, "cold in target (");
    CHECK_CONTAINS(html, "aria-label=\"Training loss: rep-bpr.tsv\"");
    CHECK_CONTAINS(html, "aria-label=\"Validation NDCG@10\"");
    CHECK_CONTAINS(html, "rep-bpr.crm: item vectors");
    CHECK_CONTAINS(html, "rep-pop.crm has no item vectors");
    CHECK_CONTAINS(html, "<h2 id=\"users\">");
    CHECK_CONTAINS(html, "<li class=\"hit\">");
    CHECK(!strstr(html, "Per domain"));     /* one target domain */
    json_decref(root);
    free(html);
}

/* Without a target domain the candidates span every domain: the page has results per domain. */
TEST(report_page_per_domain_and_bad_inputs) {
    char crs[512], models[2048], logp[512], *text;
    pipeline("repw", "--protocol warm", crs, models, logp);
    const char *html_path = cr_test_path("repw.html");
    int rc = cr_test_cli(&text, "report '%s' %s -o '%s' --bootstrap 50 --examples 2 --map-points 100", crs, models, html_path);
    CHECK_MSG(rc == 0, "report: %s", text);
    free(text);
    char *html = cr_test_read(html_path, NULL);
    char msg[256];
    const char *bad = unbalanced_tag(html, msg, sizeof msg);
    CHECK_MSG(!bad, "unbalanced markup: %s", bad);
    CHECK_CONTAINS(html, "<h2 id=\"domains\">Per domain</h2>");
    CHECK(!strstr(html, "Learning curves"));
    int users = 0;
    for (const char *p = strstr(html, "<div class=\"user\">"); p; p = strstr(p + 1, "<div class=\"user\">")) users++;
    CHECK_EQ(users, 2);
    free(html);

    const char *badlog = cr_test_write("repw-bad.tsv", "epoch\tloss\tvalid_ndcg@10\n1\tzero\t0.1\n", -1);
    CHECK_EQ(cr_test_cli(&text, "report '%s' %s --log '%s' -o '%s'", crs, models, badlog, html_path), 1);
    CHECK_CONTAINS(text, "repw-bad.tsv:2:");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "report '%s' '%s' -o '%s'", crs, cr_test_path("nope.crm"), html_path), 1);
    CHECK_CONTAINS(text, "nope.crm");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "report '%s' %s", crs, models), 2);
    CHECK_CONTAINS(text, "-o report.html");
    free(text);
    CHECK_EQ(cr_test_cli(&text, "report '%s' %s -o x.html --curve-k 0", crs, models), 2);
    free(text);
}

/* test_resume.c — training state files (.crt): a run paused and resumed gives the same model file, byte for
 * byte, as the uninterrupted run, for every model trained in epochs; a state that does not match the run is
 * refused with a message naming the difference, and a damaged one is detected. */
#include "cdr_fixtures.h"
#include "test.h"

#include "crossrec/io.h"
#include "crossrec/split.h"

#include <stdlib.h>

static cr_dataset *g_data;
static cr_split *g_split;

static void fixture(void) {
    g_data = cr_test_cdr_data("resume_data", 240, 160, 5000, 2, 11);
    g_split = cr_test_cold_split(g_data, cr_test_thinnest_domain(g_data), 0.25);
}

static void fixture_free(void) {
    cr_split_free(g_split);
    cr_dataset_free(g_data);
    g_split = NULL, g_data = NULL;
}

/* Settings for `model` with 4 epochs and the given patience, quiet, validated on the fixture's split. */
static cr_train_params params_for(const char *model, const char *optimizer, int patience) {
    cr_train_params p = cr_train_default_params();
    p.model = model;
    p.optimizer = optimizer;
    p.dim = 8;
    p.epochs = 4;
    p.patience = patience;
    p.quiet = 1;
    p.threads = 2;
    p.valid = g_split;
    if (!strcmp(model, "tower")) p.text_buckets = 4096, p.batch = 64, p.hist_len = 8;
    return p;
}

/* Trains with p and returns the saved model file's bytes (*len). */
static char *train_bytes(const cr_train_params *p, const char *name, size_t *len) {
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, g_data, cr_split_train(g_split), p));
    const char *path = cr_test_path(name);
    CHECK_OK(cr_model_save(m, path));
    cr_model_free(m);
    char *bytes = cr_test_read(path, len);
    CHECK(bytes);
    return bytes;
}

/* The training states at paths a and b are the same but for the time they took: every array (the last
 * epoch's parameters, the best epoch's, the optimizer's moments) and every other metadata entry. */
static void check_same_state(const char *a, const char *b, const char *what) {
    cr_file *fa = NULL, *fb = NULL;
    CHECK_OK(cr_file_open(&fa, a, "CRT", CR_CRT_VERSION));
    CHECK_OK(cr_file_open(&fb, b, "CRT", CR_CRT_VERSION));
    CHECK_EQ(cr_file_n_arrays(fa), cr_file_n_arrays(fb));
    CHECK(cr_file_n_arrays(fa) >= 1);
    for (int64_t k = 0; k < cr_file_n_arrays(fa); k++) {
        const cr_array *x = cr_file_array_at(fa, k), *y = cr_file_array_at(fb, k);
        CHECK_STR(x->name, y->name);
        CHECK_MSG(x->nbytes == y->nbytes && !memcmp(x->data, y->data, (size_t)x->nbytes), "%s: array %s differs", what, x->name);
    }
    CHECK_EQ(cr_file_n_meta(fa), cr_file_n_meta(fb));
    for (int64_t k = 0; k < cr_file_n_meta(fa); k++) {
        const cr_meta *x = cr_file_meta_at(fa, k), *y = cr_file_meta_at(fb, k);
        CHECK_STR(x->key, y->key);
        if (!strcmp(x->key, "seconds")) continue;
        CHECK_MSG(x->i64 == y->i64 && (x->type != CR_META_F64 || x->f64 == y->f64) && (x->type != CR_META_STR || !strcmp(x->str, y->str)),
                  "%s: %s differs", what, x->key);
    }
    cr_file_close(fa);
    cr_file_close(fb);
}

/* The uninterrupted run against the same run done in pieces of 1, 2 and the rest epochs: the same model file
 * and the same final training state. */
static void check_resume(const char *model, const char *optimizer, int patience) {
    cr_train_params p = params_for(model, optimizer, patience);
    size_t n_full, n_res;
    char crt[512], full_crt[512];
    snprintf(full_crt, sizeof full_crt, "%s", cr_test_path("full.crt"));
    p.checkpoint = full_crt;
    char *full = train_bytes(&p, "full.crm", &n_full);

    snprintf(crt, sizeof crt, "%s", cr_test_path("run.crt"));
    remove(crt);
    p.checkpoint = crt;
    p.pause_after = 1;
    free(train_bytes(&p, "piece.crm", NULL));
    p.resume = crt;
    p.pause_after = 2;
    free(train_bytes(&p, "piece.crm", NULL));
    p.pause_after = 0;
    char *resumed = train_bytes(&p, "resumed.crm", &n_res);
    CHECK_MSG(n_full == n_res && !memcmp(full, resumed, n_full), "%s (%s, patience %d): the resumed model differs", model,
              optimizer, patience);
    check_same_state(full_crt, crt, model);
    /* a state whose run has ended resumes to the same model again, running no epoch */
    char *again = train_bytes(&p, "again.crm", &n_res);
    CHECK_MSG(n_full == n_res && !memcmp(full, again, n_full), "%s: resuming a finished run changed the model", model);
    free(full);
    free(resumed);
    free(again);
}

TEST(resume_bpr_adam_and_sgd_exact) {
    fixture();
    check_resume("bpr", "adam", 0);
    check_resume("bpr", "sgd", 1);      /* patience 1 may end the run early: the stop is part of the state */
    fixture_free();
}

TEST(resume_als_exact) {
    fixture();
    check_resume("als", "adagrad", 0);
    fixture_free();
}

TEST(resume_cmf_exact) {
    fixture();
    check_resume("cmf", "adagrad", 2);
    fixture_free();
}

TEST(resume_emcdr_and_ptupcdr_exact) {
    fixture();
    check_resume("emcdr", "adagrad", 0);
    check_resume("ptupcdr", "adam", 0);
    fixture_free();
}

TEST(resume_tower_exact) {
    fixture();
    check_resume("tower", "adam", 0);
    fixture_free();
}

TEST(resume_refuses_other_settings_and_damaged_files) {
    fixture();
    char crt[512];
    snprintf(crt, sizeof crt, "%s", cr_test_path("refuse.crt"));
    cr_train_params p = params_for("bpr", "adagrad", 0);
    p.checkpoint = crt;
    p.pause_after = 1;
    free(train_bytes(&p, "r1.crm", NULL));
    cr_model *m = NULL;
    const cr_interactions *train = cr_split_train(g_split);

    /* the settings read back are the run's own */
    cr_train_params q = cr_train_default_params();
    CHECK_OK(cr_train_state_params(crt, &q));
    CHECK_STR(q.model, "bpr");
    CHECK_STR(q.optimizer, "adagrad");
    CHECK_EQ(q.dim, 8);
    CHECK_EQ(q.epochs, 4);
    CHECK_EQ(q.seed, p.seed);
    CHECK(q.lr == p.lr && q.reg == p.reg);

    /* another dimension, another seed, another split: refused, naming the setting */
    p.resume = crt;
    p.pause_after = 0;
    p.dim = 16;
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "dim=8");
    CHECK_CONTAINS(cr_errmsg(), "dim=16");
    p.dim = 8;
    p.seed = 7;
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "seed=");
    p.seed = cr_train_default_params().seed;
    cr_split *other = cr_test_cold_split(g_data, cr_test_thinnest_domain(g_data), 0.4);
    p.valid = other;
    CHECK_STATUS(cr_model_train(&m, g_data, cr_split_train(other), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "data=");
    cr_split_free(other);
    p.valid = g_split;
    /* another model type */
    p.model = "als";
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "model=bpr");
    p.model = "bpr";

    /* missing, truncated, bit-flipped */
    p.resume = cr_test_path("absent.crt");
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_IO);
    size_t len;
    char *bytes = cr_test_read(crt, &len);
    p.resume = cr_test_write("trunc.crt", bytes, (long)(len / 2));
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_FORMAT);
    bytes[len / 3] ^= 0x10;
    p.resume = cr_test_write("flip.crt", bytes, (long)len);
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_FORMAT);
    free(bytes);
    CHECK(m == NULL);

    /* models fitted in one pass have no state */
    p.model = "pop";
    p.resume = NULL;
    CHECK_STATUS(cr_model_train(&m, g_data, train, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "one pass");
    fixture_free();
}

TEST(resume_through_the_cli) {
    fixture();
    char crs[512];
    snprintf(crs, sizeof crs, "%s", cr_test_path("cli_resume.crs"));
    CHECK_OK(cr_split_save(g_split, crs));
    char *out = NULL;
    const char *common = "--model cmf --dim 8 --epochs 3 --patience 0 --threads 2";
    CHECK_EQ(cr_test_cli(&out, "train '%s' %s -q -o '%s'", crs, common, cr_test_path("cli_full.crm")), 0);
    free(out);
    CHECK_EQ(cr_test_cli(&out, "train '%s' %s --checkpoint '%s' --pause-after 1 -o '%s'", crs, common, cr_test_path("cli.crt"),
                         cr_test_path("cli_part.crm")), 0);
    CHECK_CONTAINS(out, "--resume");
    free(out);
    /* only the split, the state and the output: the settings come from the state file */
    CHECK_EQ(cr_test_cli(&out, "train '%s' --resume '%s' --log '%s' -o '%s'", crs, cr_test_path("cli.crt"), cr_test_path("cli.tsv"),
                         cr_test_path("cli_res.crm")), 0);
    CHECK_CONTAINS(out, "resuming from");
    free(out);
    size_t a, b;
    char *full = cr_test_read(cr_test_path("cli_full.crm"), &a), *res = cr_test_read(cr_test_path("cli_res.crm"), &b);
    CHECK(full && res && a == b && !memcmp(full, res, a));
    free(full);
    free(res);
    /* the resumed run's log has epochs 2 and 3 */
    double loss[8];
    CHECK_EQ(cr_test_log_losses(cr_test_path("cli.tsv"), loss, 8), 2);

    /* a conflicting option, and a pause with nowhere to keep the state */
    CHECK_EQ(cr_test_cli(&out, "train '%s' --resume '%s' --dim 4 -o '%s'", crs, cr_test_path("cli.crt"), cr_test_path("x.crm")), 1);
    CHECK_CONTAINS(out, "dim=8");
    free(out);
    CHECK_EQ(cr_test_cli(&out, "train '%s' %s --pause-after 1 -o '%s'", crs, common, cr_test_path("x.crm")), 2);
    CHECK_CONTAINS(out, "--checkpoint");
    free(out);
    fixture_free();
}

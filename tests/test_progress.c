/* test_progress.c — what the library tells a progress sink (core.h cr_progress): import counts the bytes of its
 * files up to their total size, the training loop counts epochs as they start and asks for a takedown before
 * each printed row, embedding counts items; never backwards. */
#include "test.h"

#include "cdr_fixtures.h"
#include "crossrec/embed.h"

#include <sys/stat.h>

typedef struct {
    int64_t calls, takedowns, last, total, decreased;
} progress_log;

static void log_progress(void *user, int64_t done, int64_t total) {
    progress_log *l = user;
    if (done < 0) {
        l->takedowns++;
        return;
    }
    l->decreased |= done < l->last;
    l->calls++, l->last = done, l->total = total;
}

static int64_t file_size(const char *path) {
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    return sb.st_size;
}

TEST(progress_import_counts_bytes_to_the_total) {
    const char *dir = cr_test_path("progress-import");
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = 3000, sp.n_items = 1000, sp.n_inter = 40000;
    CHECK_OK(cr_synth_write(dir, &sp));
    char inter[512], items[512];
    snprintf(inter, sizeof inter, "%s/interactions.tsv", dir);
    snprintf(items, sizeof items, "%s/items.tsv", dir);
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = inter;
    p.items[p.n_items++] = items;
    progress_log log = {0};
    p.progress = (cr_progress){log_progress, &log};
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    int64_t total = file_size(inter) + file_size(items);
    CHECK_EQ(log.total, total);
    CHECK_EQ(log.last, total);
    CHECK(!log.decreased);
    CHECK(log.calls >= 40000 / 8192);  /* every 8192 lines and at the end of each file */
    cr_dataset_free(d);
}

TEST(progress_training_epochs_and_takedowns) {
    cr_dataset *d = cr_test_cdr_data("progress-train", 200, 120, 3000, 2, 3);
    cr_split *s = cr_test_cold_split(d, cr_test_thinnest_domain(d), 0.2);
    cr_train_params p = cr_train_default_params();
    p.model = "bpr";
    p.dim = 8;
    p.epochs = 3;
    p.patience = 0;
    p.valid = s;
    p.quiet = 0;
    progress_log log = {0};
    p.progress = (cr_progress){log_progress, &log};
    cr_model *m = NULL;
    CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
    CHECK_EQ(log.calls, 3);        /* epochs 0, 1, 2 done as epochs 1, 2, 3 start */
    CHECK_EQ(log.last, 2);
    CHECK_EQ(log.total, 3);
    CHECK_EQ(log.takedowns, 3);    /* one before each epoch row */
    cr_model_free(m);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(progress_embed_counts_items) {
    cr_dataset *d = cr_test_cdr_data("progress-embed", 200, 120, 3000, 2, 3);
    cr_embed_params p = cr_embed_default_params();
    p.dim = 16;
    progress_log log = {0};
    p.progress = (cr_progress){log_progress, &log};
    float *x = NULL;
    int64_t dim = 0;
    CHECK_OK(cr_embed_items(d, &p, &x, &dim));
    CHECK_EQ(log.last, cr_dataset_inter(d)->n_items);
    CHECK_EQ(log.total, cr_dataset_inter(d)->n_items);
    cr_free(x);
    cr_dataset_free(d);
}

/* cmd_pretrain.c — `crossrec pretrain`: train crossrec's text encoder on a dataset's item text alone and write it
 * as a .crm (crossrec/textenc.h). Prints the settings, one row per epoch (a progress line on a terminal), and
 * writes the rows as TSV with --log. */
#include "cli.h"
#include "crossrec/data.h"
#include "crossrec/embed.h"
#include "crossrec/textenc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const cli_cmd_info info = {
    "pretrain",
    "pretrain data.crd [--text-objective contrastive] [--init-wordvec FILE|catalogue] [--distill-minilm | --teacher F.npy]\n"
    "       [--dim 64] [--epochs N] [--batch 256] [options] -o text.crm",
    "Trains a text encoder on the item text of a dataset, before any behaviour is seen: hashed words and character\n"
    "n-grams (TF-IDF weighted embedding bag) and a residual MLP, giving unit vectors. Objective: each item's title\n"
    "and its other text (attributes, category path, brand) are positives of each other, the other items of the\n"
    "batch negatives (InfoNCE); an item with only one of them pairs two views of it with random buckets dropped.\n"
    "--init-wordvec starts the bucket table from word vectors (a .vec/GloVe file of --dim dimensions, a .crm of\n"
    "trained vectors, or 'catalogue': skip-gram trained here on the dataset). --distill-minilm also pulls each\n"
    "item towards its all-MiniLM-L6-v2 title vector (models/minilm.crm from `make models`), so serving needs no\n"
    "large model; --teacher F.npy gives such vectors instead (`crossrec embed --method minilm`). Use the result\n"
    "with `crossrec embed --method pretrained:text.crm`.",
};

typedef struct {
    FILE *log;
    const char *log_path;
    int quiet, tty, failed;
    double t0;
} progress;

static void on_batch(int epoch, int64_t done, int64_t total, void *user) {
    progress *pr = user;
    if (!pr->tty || pr->quiet) return;
    if (done % 8 && done != total) return;
    fprintf(stderr, "\repoch %d  batch %lld/%lld  %.1f s elapsed", epoch, (long long)done, (long long)total, cr_now() - pr->t0);
    fflush(stderr);
}

static void on_epoch(const cr_textenc_epoch *e, void *user) {
    progress *pr = user;
    char r1[32];
    if (isnan(e->valid_r1)) snprintf(r1, sizeof r1, "-");
    else snprintf(r1, sizeof r1, "%.4f", e->valid_r1);
    if (!pr->quiet) {
        if (pr->tty) fprintf(stderr, "\r%60s\r", "");
        printf("%6d  %10.5f  %10.5f  %10.5f  %11s  %8.2f\n", e->epoch, e->loss, e->infonce, e->distill, r1, e->seconds);
        fflush(stdout);
    }
    if (pr->log && fprintf(pr->log, "%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.3f\n", e->epoch, e->loss, e->infonce, e->distill, e->valid_r1,
                           e->seconds) < 0)
        pr->failed = 1;
}

/* The MiniLM vectors of the items' titles, the distillation teacher. */
static cr_status minilm_teacher(const cr_dataset *d, const char *model, int threads, int quiet, float **t, int64_t *dim) {
    cr_embed_params ep = cr_embed_default_params();
    ep.method = CR_EMBED_MINILM;
    ep.path = model;
    ep.threads = threads;
    double t0 = cr_now();
    if (!quiet) fprintf(stderr, "pretrain: encoding the item titles with all-MiniLM-L6-v2 (the teacher) ...\n");
    cr_status st = cr_embed_items(d, &ep, t, dim);
    if (!st && !quiet) fprintf(stderr, "pretrain: teacher vectors in %.1f s\n", cr_now() - t0);
    return st;
}

/* Word vectors to start from: a file, or skip-gram on the dataset's text with the encoder's hashing and dim. */
static cr_status init_vectors(const cr_dataset *d, const char *spec, const cr_textenc_train_params *p, int quiet, cr_wordvec **wv) {
    if (strcmp(spec, "catalogue")) return cr_wordvec_load(wv, spec, NULL);
    cr_wordvec_train_params wp = cr_wordvec_default_train_params();
    wp.dim = p->dim;
    wp.hashing = p->hashing;
    wp.seed = p->seed;
    double t0 = cr_now();
    cr_status st = cr_wordvec_train(wv, d, &wp, NULL);
    if (!st && !quiet) fprintf(stderr, "pretrain: skip-gram word vectors trained on the catalogue in %.1f s\n", cr_now() - t0);
    return st;
}

int cmd_pretrain(int argc, char **argv) {
    cr_textenc_train_params p = cr_textenc_default_train_params();
    const char *objective = "contrastive", *out = NULL, *wordvec = NULL, *teacher_path = NULL, *minilm = NULL,
               *log_path = NULL;
    int64_t dim = p.dim, epochs = p.epochs, batch = p.batch, buckets = p.hashing.n_buckets, per_item = p.per_item,
            valid = p.valid, threads = 0, seed = (int64_t)p.seed;
    double lr = p.lr, temperature = p.temperature, dropout = p.view_dropout, distill = p.distill;
    int distill_minilm = 0, quiet = 0;
    const cli_opt opts[] = {
        {"output", 'o', CLI_STR, &out, NULL, 0, "FILE", "the encoder to write (.crm)"},
        {"text-objective", 0, CLI_STR, &objective, NULL, 0, "O", "training objective: contrastive (title <-> attributes)"},
        {"init-wordvec", 0, CLI_STR, &wordvec, NULL, 0, "F", "start the bucket table from word vectors: a file, or catalogue"},
        {"distill-minilm", 0, CLI_FLAG, &distill_minilm, NULL, 0, NULL, "distil all-MiniLM-L6-v2's title vectors"},
        {"minilm", 0, CLI_STR, &minilm, NULL, 0, "FILE", "the MiniLM model for --distill-minilm (models/minilm.crm)"},
        {"teacher", 0, CLI_STR, &teacher_path, NULL, 0, "F.npy", "teacher vectors, one row per item (implies distillation)"},
        {"distill-weight", 0, CLI_F64, &distill, NULL, 0, "W", "weight of the distillation loss"},
        {"dim", 0, CLI_INT, &dim, NULL, 0, "D", "vector dimension"},
        {"epochs", 0, CLI_INT, &epochs, NULL, 0, "N", "passes over the items"},
        {"batch", 0, CLI_INT, &batch, NULL, 0, "B", "items per batch (each other's negatives)"},
        {"lr", 0, CLI_F64, &lr, NULL, 0, "LR", "Adam learning rate"},
        {"temperature", 0, CLI_F64, &temperature, NULL, 0, "T", "InfoNCE temperature"},
        {"view-dropout", 0, CLI_F64, &dropout, NULL, 0, "P", "bucket dropout of the two views of one-field items"},
        {"text-buckets", 0, CLI_INT, &buckets, NULL, 0, "N", "hashing buckets"},
        {"text-per-item", 0, CLI_INT, &per_item, NULL, 0, "K", "heaviest buckets kept per text (0: all)"},
        {"valid", 0, CLI_INT, &valid, NULL, 0, "N", "items held out to report title -> text recall@1"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads, 0: all cores (1: the same bits for a seed)"},
        {"seed", 0, CLI_INT, &seed, NULL, 0, "S", "random seed"},
        {"log", 0, CLI_STR, &log_path, NULL, 0, "FILE", "one TSV row per epoch"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "no settings, rows or summary"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&info, "give one dataset file");
    if (!out) return cli_usage_error(&info, "give the output file with -o text.crm");
    if (strcmp(objective, "contrastive"))
        return cli_usage_error(&info, "--text-objective '%s' is not supported (supported: contrastive)", objective);
    if (distill_minilm && teacher_path) return cli_usage_error(&info, "give --distill-minilm or --teacher, not both");
    if (minilm && !distill_minilm) return cli_usage_error(&info, "--minilm goes with --distill-minilm");
    if (epochs < 1 || epochs > 100000) return cli_usage_error(&info, "--epochs must be 1..100000");
    if (threads < 0 || threads > 4096) return cli_usage_error(&info, "--threads must be 0..4096");
    if (buckets < 1 || buckets > CR_TEXT_MAX_BUCKETS) return cli_usage_error(&info, "--text-buckets must be 1..%d", CR_TEXT_MAX_BUCKETS);
    p.dim = dim, p.epochs = (int)epochs, p.batch = batch, p.hashing.n_buckets = buckets, p.per_item = per_item;
    p.valid = valid, p.threads = (int)threads, p.seed = (uint64_t)seed;
    p.lr = lr, p.temperature = temperature, p.view_dropout = dropout, p.distill = distill;
    const char *why = cr_textenc_check_train_params(&p);
    if (why) return cli_usage_error(&info, "%s", why);

    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, pos[0]);
    if (st) return cli_fail(st);
    const int64_t n = cr_dataset_inter(d)->n_items;
    float *teacher = NULL;
    int64_t tdim = 0, rows = 0;
    cr_wordvec *wv = NULL;
    cr_textenc *e = NULL;
    progress pr = {NULL, log_path, quiet, cli_stderr_tty(), 0, cr_now()};
    if (distill_minilm) {
        if ((st = minilm_teacher(d, minilm, (int)threads, quiet, &teacher, &tdim))) goto done;
    } else if (teacher_path) {
        if ((st = cr_npy_read_f32(teacher_path, &teacher, &rows, &tdim))) goto done;
        if (rows != n) {
            st = cr_fail(CR_ERR_ARG, "%s has %lld rows, the dataset %lld items", teacher_path, (long long)rows, (long long)n);
            cr_set_hint("write the teacher with `crossrec embed %s --method minilm -o F.npy`", pos[0]);
            goto done;
        }
    }
    p.teacher = teacher, p.teacher_dim = tdim;
    if (wordvec && (st = init_vectors(d, wordvec, &p, quiet, &wv))) goto done;
    p.init = wv;
    if (log_path) {
        if (!(pr.log = fopen(log_path, "w")) ||
            fprintf(pr.log, "epoch\tloss\tinfonce\tdistill\tvalid_r1\tseconds\n") < 0) {
            st = cr_fail(CR_ERR_IO, "%s: cannot write the training log: %s", log_path, strerror(errno));
            goto done;
        }
    }
    p.on_epoch = on_epoch, p.on_batch = on_batch, p.user = &pr;
    if (!quiet) {
        printf("pretrain: contrastive title <-> text, dim %lld, %lld buckets (%lld per text), batch %lld, adam lr %g, "
               "temperature %g, view dropout %g, %d epochs%s%s", (long long)p.dim, (long long)buckets, (long long)p.per_item,
               (long long)p.batch, p.lr, p.temperature, p.view_dropout, p.epochs, wv ? ", word vectors from " : "",
               wv ? wordvec : "");
        if (teacher) printf(", distillation weight %g of %lld-d teacher vectors", p.distill, (long long)tdim);
        printf("\n%6s  %10s  %10s  %10s  %11s  %8s\n", "epoch", "loss", "infonce", "distill", "valid_r@1", "seconds");
        fflush(stdout);
    }
    cr_textenc_train_report r;
    pr.t0 = cr_now();
    if ((st = cr_textenc_train(&e, d, &p, &r))) goto done;
    if (pr.failed || (pr.log && fclose(pr.log))) {
        pr.log = NULL;
        st = cr_fail(CR_ERR_IO, "%s: cannot write the training log: %s", log_path, strerror(errno));
        goto done;
    }
    pr.log = NULL;
    if ((st = cr_textenc_save(e, out))) goto done;
    if (!quiet)
        fprintf(stderr, "pretrain: %lld items (%lld title+text, %lld one field, %lld held out, %lld without text) in %.1f s -> %s\n",
                (long long)n, (long long)r.n_pairs, (long long)r.n_single, (long long)r.n_valid, (long long)r.n_empty, r.seconds,
                out);
done:
    if (pr.log) fclose(pr.log);
    cr_textenc_free(e);
    cr_wordvec_free(wv);
    cr_free(teacher);
    cr_dataset_free(d);
    return st ? cli_fail(st) : 0;
}

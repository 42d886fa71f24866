/* bench_text.c — the text representations of `crossrec embed` on a real catalogue: speed and a proxy of
 * quality.
 *
 * Imports ../shared/data/amazon-art-office ($CROSSREC_SHARED_DATA replaces ../shared/data) and, for each method
 * (hash-tfidf; minilm when models/minilm.crm exists; wordvec with vectors trained on the catalogue's titles by
 * cr_wordvec_train, or --wordvec FILE; pretrained: crossrec's text encoder trained here on the catalogue by
 * cr_textenc_train with default settings, contrastive only, then also distilled from the MiniLM title vectors —
 * those of the minilm row, or --teacher FILE.npy from `crossrec embed --method minilm` — or --pretrained FILE),
 * prints:
 *   co-interaction precision@10: over items with at least 5 interactions, the share of the item's 10 nearest
 *     items by text (same domain, cosine, itself excluded) that some user interacted with together with it;
 *   items/s of cr_embed_items at 1 and 2 threads (titles; wordvec's and pretrained's time includes loading their
 *     file, not training).
 * A "chance" row gives the expected precision of 10 random same-domain neighbours. Skips (exit 0) without data.
 * Usage: bench_text [--fields title|text|both] [--wordvec FILE] [--no-minilm] [--no-wordvec] [--teacher FILE.npy]
 *                   [--pretrained FILE.crm] [--epochs N] */
#include "crossrec/data.h"
#include "crossrec/embed.h"
#include "crossrec/index.h"
#include "crossrec/textenc.h"
#include "crossrec/wordvec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define K 10
#define MIN_INTER 5

/* Co-interaction precision@K of item vectors x (n_items, dim), L2-normalised rows. */
static double co_precision(const cr_dataset *d, const float *x, int64_t dim, int64_t *n_eval) {
    const cr_interactions *I = cr_dataset_inter(d);
    int64_t n = I->n_items;
    cr_index *ix;
    cr_index_params ip = cr_index_default_params();
    ip.borrow = 1;
    ip.item_domain = I->item_domain;
    if (cr_index_init(&ix, x, n, dim, &ip)) return -1;
    int32_t *stamp = calloc((size_t)n, sizeof *stamp);
    double sum = 0;
    int64_t cnt = 0;
    cr_index_search_params sp = cr_index_search_default_params();
    sp.k = K;
    sp.threads = 0;
    int32_t items[K];
    for (int32_t i = 0; i < n; i++) {
        if (I->item_ptr[i + 1] - I->item_ptr[i] < MIN_INTER) continue;
        for (int64_t e = I->item_ptr[i]; e < I->item_ptr[i + 1]; e++) {
            int32_t u = I->item_users[e];
            for (int64_t f = I->user_ptr[u]; f < I->user_ptr[u + 1]; f++) stamp[I->user_items[f]] = i + 1;
        }
        sp.domain = I->item_domain[i];
        int64_t nf = 0;
        if (cr_index_search(ix, x + (int64_t)i * dim, &i, 1, &sp, items, NULL, &nf)) {
            fprintf(stderr, "bench_text: search failed: %s\n", cr_errmsg());
            exit(1);
        }
        int hit = 0;
        for (int64_t r = 0; r < nf; r++) hit += stamp[items[r]] == i + 1;
        sum += (double)hit / K;
        cnt++;
    }
    free(stamp);
    cr_index_free(ix);
    *n_eval = cnt;
    return cnt ? sum / cnt : 0;
}

/* Expected precision of K uniform random same-domain neighbours (not the item itself). */
static double chance(const cr_dataset *d) {
    const cr_interactions *I = cr_dataset_inter(d);
    int64_t n = I->n_items, *dom_size = calloc((size_t)I->n_domains, sizeof *dom_size);
    for (int64_t i = 0; i < n; i++) dom_size[I->item_domain[i]]++;
    int32_t *stamp = calloc((size_t)n, sizeof *stamp);
    double sum = 0;
    int64_t cnt = 0;
    for (int32_t i = 0; i < n; i++) {
        if (I->item_ptr[i + 1] - I->item_ptr[i] < MIN_INTER) continue;
        int64_t co = 0;
        for (int64_t e = I->item_ptr[i]; e < I->item_ptr[i + 1]; e++) {
            int32_t u = I->item_users[e];
            for (int64_t f = I->user_ptr[u]; f < I->user_ptr[u + 1]; f++) {
                int32_t j = I->user_items[f];
                if (j != i && stamp[j] != i + 1 && I->item_domain[j] == I->item_domain[i]) co++;
                stamp[j] = i + 1;
            }
        }
        sum += (double)co / (double)(dom_size[I->item_domain[i]] - 1);
        cnt++;
    }
    free(stamp);
    free(dom_size);
    return cnt ? sum / cnt : 0;
}

/* One row of the table; keep (may be NULL) receives the vectors (caller cr_free()s), else they are freed. */
static void row(const cr_dataset *d, const char *name, const cr_embed_params *base, float **keep, int64_t *keep_dim) {
    double rate[2] = {0, 0};
    float *x = NULL;
    int64_t dim = 0, n = cr_dataset_inter(d)->n_items;
    for (int t = 1; t <= 2; t++) {
        cr_embed_params p = *base;
        p.threads = t;
        cr_free(x);
        double t0 = cr_now();
        if (cr_embed_items(d, &p, &x, &dim)) {
            printf("%-12s skipped: %s\n", name, cr_errmsg());
            return;
        }
        rate[t - 1] = n / (cr_now() - t0);
    }
    int64_t n_eval = 0;
    double prec = co_precision(d, x, dim, &n_eval);
    printf("%-12s %6lld %14.4f %14.0f %14.0f\n", name, (long long)dim, prec, rate[0], rate[1]);
    fflush(stdout);
    if (keep) *keep = x, *keep_dim = dim;
    else cr_free(x);
}

/* Trains an encoder on the catalogue (default settings; teacher NULL: contrastive only), saves it to path. */
static int pretrain(const cr_dataset *d, const float *teacher, int64_t tdim, int epochs, const char *path) {
    cr_textenc_train_params tp = cr_textenc_default_train_params();
    tp.teacher = teacher, tp.teacher_dim = tdim;
    if (epochs > 0) tp.epochs = epochs;
    cr_textenc *e = NULL;
    cr_textenc_train_report r;
    if (cr_textenc_train(&e, d, &tp, &r) || cr_textenc_save(e, path)) {
        printf("pretrained   skipped: %s\n", cr_errmsg());
        cr_textenc_free(e);
        return -1;
    }
    printf("(pretrained%s: %d epochs on the catalogue in %.1f s, not counted; held-out title -> text recall@1 %.3f)\n",
           teacher ? "+kd" : "", tp.epochs, r.seconds, r.valid_r1);
    cr_textenc_free(e);
    return 0;
}

int main(int argc, char **argv) {
    const char *wordvec = NULL, *fields = "title", *teacher_path = NULL, *pretrained = NULL;
    int minilm = 1, train_wordvec = 1, epochs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--wordvec") && i + 1 < argc) wordvec = argv[++i];
        else if (!strcmp(argv[i], "--fields") && i + 1 < argc) fields = argv[++i];
        else if (!strcmp(argv[i], "--teacher") && i + 1 < argc) teacher_path = argv[++i];
        else if (!strcmp(argv[i], "--pretrained") && i + 1 < argc) pretrained = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-minilm")) minilm = 0;
        else if (!strcmp(argv[i], "--no-wordvec")) train_wordvec = 0;
        else {
            fprintf(stderr, "usage: bench_text [--fields title|text|both] [--wordvec FILE] [--no-minilm] [--no-wordvec] "
                            "[--teacher FILE.npy] [--pretrained FILE.crm] [--epochs N]\n");
            return 2;
        }
    }
    const char *base = getenv("CROSSREC_SHARED_DATA") ? getenv("CROSSREC_SHARED_DATA") : "../shared/data";
    char inter[1024], items[1024];
    snprintf(inter, sizeof inter, "%s/amazon-art-office/interactions.tsv", base);
    snprintf(items, sizeof items, "%s/amazon-art-office/items.tsv", base);
    struct stat sb;
    if (stat(inter, &sb) || stat(items, &sb)) {
        printf("bench_text: skipped: %s absent\n", inter);
        return 0;
    }
    cr_import_params ip = cr_import_default_params();
    ip.interactions[0] = inter;
    ip.n_interactions = 1;
    ip.items[0] = items;
    ip.n_items = 1;
    cr_dataset *d;
    if (cr_dataset_import(&d, &ip, NULL)) {
        fprintf(stderr, "bench_text: %s\n", cr_errmsg());
        return 1;
    }
    cr_embed_params p = cr_embed_default_params();
    p.fields = !strcmp(fields, "both") ? CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT
               : !strcmp(fields, "text") ? CR_TEXT_FIELD_TEXT : CR_TEXT_FIELD_TITLE;
    const cr_interactions *I = cr_dataset_inter(d);
    int64_t n_eval = 0;
    for (int32_t i = 0; i < I->n_items; i++) n_eval += I->item_ptr[i + 1] - I->item_ptr[i] >= MIN_INTER;
    printf("bench_text: amazon-art-office, %lld items, %lld with >= %d interactions, fields %s\n",
           (long long)I->n_items, (long long)n_eval, MIN_INTER, fields);
    printf("%-12s %6s %14s %14s %14s\n", "method", "dim", "co-prec@10", "items/s 1T", "items/s 2T");
    printf("%-12s %6s %14.4f %14s %14s\n", "chance", "-", chance(d), "-", "-");
    p.method = CR_EMBED_HASH_TFIDF;
    row(d, "hash-tfidf", &p, NULL, NULL);
    float *teacher = NULL;
    int64_t tdim = 0;
    if (minilm) {
        p.method = CR_EMBED_MINILM;
        p.path = NULL;
        row(d, "minilm", &p, &teacher, &tdim);
    }
    /* Files trained here go to a temporary directory. */
    char tmp[] = "/tmp/bench_text_XXXXXX";
    const int have_tmp = mkdtemp(tmp) != NULL;
    static char wv_path[64], enc_path[64];
    snprintf(wv_path, sizeof wv_path, "%s/wv.crm", tmp);
    snprintf(enc_path, sizeof enc_path, "%s/enc.crm", tmp);
    /* Word vectors: a file given, or trained here on the catalogue (fastText-style, default settings). */
    if (!wordvec && train_wordvec && have_tmp) {
        cr_wordvec *wv = NULL;
        cr_wordvec_train_params tp = cr_wordvec_default_train_params();
        tp.fields = p.fields;
        double t0 = cr_now();
        if (cr_wordvec_train(&wv, d, &tp, NULL) || cr_wordvec_save(wv, wv_path)) {
            printf("%-12s skipped: %s\n", "wordvec", cr_errmsg());
        } else {
            wordvec = wv_path;
            printf("(wordvec: trained on the catalogue in %.1f s, not counted in items/s)\n", cr_now() - t0);
        }
        cr_wordvec_free(wv);
    }
    if (wordvec) {
        p.method = CR_EMBED_WORDVEC;
        p.path = wordvec;
        row(d, "wordvec", &p, NULL, NULL);
    }
    /* crossrec's own encoder: given, or trained here without and with the MiniLM teacher */
    p.method = CR_EMBED_PRETRAINED;
    if (pretrained) {
        p.path = pretrained;
        row(d, "pretrained", &p, NULL, NULL);
    } else if (have_tmp) {
        p.path = enc_path;
        if (pretrain(d, NULL, 0, epochs, enc_path) == 0) row(d, "pretrained", &p, NULL, NULL);
        if (teacher_path) {
            int64_t rows = 0;
            cr_free(teacher);
            teacher = NULL;
            if (cr_npy_read_f32(teacher_path, &teacher, &rows, &tdim) || rows != I->n_items) {
                printf("pretrained+kd skipped: %s is not one row per item (%s)\n", teacher_path, cr_errmsg());
                cr_free(teacher);
                teacher = NULL;
            }
        }
        if (teacher && pretrain(d, teacher, tdim, epochs, enc_path) == 0) row(d, "pretrained+kd", &p, NULL, NULL);
    }
    if (have_tmp) remove(wv_path), remove(enc_path), rmdir(tmp);
    cr_free(teacher);
    cr_dataset_free(d);
    return 0;
}

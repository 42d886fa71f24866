/* bench_text.c — the text representations of `crossrec embed` on a real catalogue: speed and a proxy of
 * quality.
 *
 * Imports ../shared/data/amazon-art-office ($CROSSREC_SHARED_DATA replaces ../shared/data) and, for each method
 * (hash-tfidf; minilm when models/minilm.crm exists; wordvec with vectors trained on the catalogue's titles by
 * cr_wordvec_train, or --wordvec FILE), prints:
 *   co-interaction precision@10: over items with at least 5 interactions, the share of the item's 10 nearest
 *     items by text (same domain, cosine, itself excluded) that some user interacted with together with it;
 *   items/s of cr_embed_items at 1 and 2 threads (titles; wordvec's time includes loading its vectors, not
 *     training them).
 * A "chance" row gives the expected precision of 10 random same-domain neighbours. Skips (exit 0) without data.
 * Usage: bench_text [--fields title|text|both] [--wordvec FILE] [--no-minilm] */
#include "crossrec/data.h"
#include "crossrec/embed.h"
#include "crossrec/index.h"
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

static void row(const cr_dataset *d, const char *name, const cr_embed_params *base) {
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
    cr_free(x);
}

int main(int argc, char **argv) {
    const char *wordvec = NULL, *fields = "title";
    int minilm = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--wordvec") && i + 1 < argc) wordvec = argv[++i];
        else if (!strcmp(argv[i], "--fields") && i + 1 < argc) fields = argv[++i];
        else if (!strcmp(argv[i], "--no-minilm")) minilm = 0;
        else {
            fprintf(stderr, "usage: bench_text [--fields title|text|both] [--wordvec FILE] [--no-minilm]\n");
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
    row(d, "hash-tfidf", &p);
    if (minilm) {
        p.method = CR_EMBED_MINILM;
        p.path = NULL;
        row(d, "minilm", &p);
    }
    /* Word vectors: a file given, or trained here on the catalogue (fastText-style, default settings). */
    char tmp[] = "/tmp/bench_text_wv_XXXXXX";
    int made = 0;
    if (!wordvec) {
        cr_wordvec *wv = NULL;
        cr_wordvec_train_params tp = cr_wordvec_default_train_params();
        tp.fields = p.fields;
        double t0 = cr_now();
        if (cr_wordvec_train(&wv, d, &tp, NULL) || !mkdtemp(tmp)) {
            printf("%-12s skipped: %s\n", "wordvec", cr_errmsg());
        } else {
            static char path[64];
            snprintf(path, sizeof path, "%s/wv.crm", tmp);
            if (cr_wordvec_save(wv, path) == CR_OK) wordvec = path, made = 1;
            printf("(wordvec: trained on the catalogue in %.1f s, not counted in items/s)\n", cr_now() - t0);
        }
        if (wv) cr_wordvec_free(wv);
    }
    if (wordvec) {
        p.method = CR_EMBED_WORDVEC;
        p.path = wordvec;
        row(d, "wordvec", &p);
    }
    if (made) {
        remove(wordvec);
        rmdir(tmp);
    }
    cr_dataset_free(d);
    return 0;
}

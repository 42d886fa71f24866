/* bench_bert.c — text encoding speed of all-MiniLM-L6-v2 (src/text/bert.c) on real catalogue titles.
 *
 *   build/current/bench/bench_bert [--n N] [--threads T] [--model FILE] [--items FILE]
 *
 * Encodes the first N (5000) item titles of ../shared/data/amazon-art-office/items.tsv (its "title" column;
 * $CROSSREC_SHARED_DATA replaces ../shared/data) with T (2) threads (cr_bert_set_threads), and prints
 * texts/s and tokens/s (best of 3 runs). Skips with a message, exit 0, when models/minilm.crm (`make models`)
 * or the data is absent. */
#include "crossrec/bert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The titles of items.tsv (tab-separated with a header line), malloc'ed; NULL when the file is absent. */
static char **read_titles(const char *path, int64_t max, int64_t *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int col = -1;
    if ((len = getline(&line, &cap, f)) > 0) {
        int c = 0;
        for (char *tok = strtok(line, "\t\r\n"); tok; tok = strtok(NULL, "\t\r\n"), c++)
            if (!strcmp(tok, "title")) col = c;
    }
    char **titles = col < 0 ? NULL : malloc((size_t)max * sizeof *titles);
    int64_t n = 0;
    while (titles && n < max && (len = getline(&line, &cap, f)) > 0) {
        char *p = line;
        for (int c = 0; c < col && p; c++) {
            p = strchr(p, '\t');
            if (p) p++;
        }
        if (!p) continue;
        size_t k = strcspn(p, "\t\r\n");
        titles[n] = malloc(k + 1);
        memcpy(titles[n], p, k);
        titles[n++][k] = '\0';
    }
    free(line);
    fclose(f);
    *n_out = n;
    return titles;
}

int main(int argc, char **argv) {
    int64_t n_max = 5000;
    int threads = 2;
    const char *model = CR_BERT_MODEL_PATH, *items = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n_max = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--items")) items = argv[i + 1];
    }
    char items_buf[1024];
    if (!items) {
        const char *base = getenv("CROSSREC_SHARED_DATA") ? getenv("CROSSREC_SHARED_DATA") : "../shared/data";
        snprintf(items_buf, sizeof items_buf, "%s/amazon-art-office/items.tsv", base);
        items = items_buf;
    }
    cr_bert *m;
    if (cr_bert_load(&m, model)) {
        printf("bench_bert: skipped: %s (%s)\n", cr_errmsg(), cr_errhint());
        return 0;
    }
    int64_t n = 0;
    char **titles = read_titles(items, n_max, &n);
    if (!titles || n == 0) {
        printf("bench_bert: skipped: no titles in %s\n", items);
        cr_bert_free(m);
        return 0;
    }
    const cr_bert_config *c = cr_bert_get_config(m);
    int32_t *ids = malloc((size_t)c->max_seq * sizeof *ids);
    int64_t tokens = 0, nt;
    for (int64_t i = 0; i < n; i++) {
        cr_bert_tokenize(m, titles[i], ids, c->max_seq, &nt);
        tokens += nt;
    }
    cr_bert_set_threads(m, threads);
    float *out = malloc((size_t)(n * c->hidden) * sizeof *out);
    printf("all-MiniLM-L6-v2 on %lld titles of %s: %lld tokens ([CLS] [SEP] included, %.1f per title)\n",
           (long long)n, items, (long long)tokens, (double)tokens / (double)n);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = cr_now();
        if (cr_bert_encode(m, (const char *const *)titles, n, out)) {
            fprintf(stderr, "bench_bert: %s\n", cr_errmsg());
            return 1;
        }
        double dt = cr_now() - t0;
        best = dt < best ? dt : best;
    }
    printf("%d thread%s: %.2f s (best of 3): %.0f texts/s, %.0f tokens/s\n", threads, threads > 1 ? "s" : "", best,
           (double)n / best, (double)tokens / best);
    for (int64_t i = 0; i < n; i++) free(titles[i]);
    free(titles), free(out), free(ids);
    cr_bert_free(m);
    return 0;
}

/* bench_bert.c — text encoding speed of all-MiniLM-L6-v2 (src/text/bert.c) on real catalogue titles, side by side
 * with sentence-transformers on PyTorch (CPU), and of crossrec's pretrained encoder (src/text/textenc.c).
 *
 *   build/current/bench/bench_bert [--n N] [--threads T] [--reps R] [--model FILE] [--items FILE] [--no-peer]
 *                                  [--pretrained FILE.crm]
 *
 * Encodes the first N (all: 38,396) item titles of ../shared/data/amazon-art-office/items.tsv (its "title"
 * column; $CROSSREC_SHARED_DATA replaces ../shared/data) at 1 and 2 threads (--threads T: only T), best of R (1)
 * runs, and prints texts/s and tokens/s. The peer, bench/peers/bert_torch.py in the bench venv (bench/.venv,
 * bench_peers.h; torch and sentence-transformers from bench/peers/requirements.txt), loads the same model files
 * (models/minilm-src, which `make models` extracted) and encodes the same titles with batch 64 on the same thread
 * count (torch.set_num_threads); the ratio C / PyTorch is printed. --pretrained adds a row for a text encoder
 * written by `crossrec pretrain`. Skips with a message, exit 0, when models/minilm.crm (`make models`) or the data
 * is absent; a peer that cannot run says why and its columns stay empty. */
#include "bench_peers.h"
#include "crossrec/bert.h"
#include "crossrec/textenc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEER_DIR "bench/out/bert"
#define MODEL_SRC "models/minilm-src"

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
    int64_t n = 0, room = 1024;
    char **titles = col < 0 ? NULL : malloc((size_t)room * sizeof *titles);
    while (titles && n < max && (len = getline(&line, &cap, f)) > 0) {
        if (n == room) {
            char **t = realloc(titles, (size_t)(room *= 2) * sizeof *titles);
            if (!t) break;
            titles = t;
        }
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

/* sentence-transformers on T threads over the first n titles: texts/s (and *cpu, its CPU seconds), or 0 when it
 * could not run. */
static double peer_rate(const char *items, int64_t n, int threads, int reps, double *cpu) {
    char log[256];
    snprintf(log, sizeof log, PEER_DIR "/torch-%d.log", threads);
    if (sh(VENV "/bin/python bench/peers/bert_torch.py --items '%s' --model " MODEL_SRC " --n %lld --threads %d --reps %d "
              "> '%s' 2>&1", items, (long long)n, threads, reps, log)) {
        printf("    sentence-transformers failed (%s):\n", log);
        print_tail(log, 4);
        return 0;
    }
    json_t *j = last_json(log);
    double rate = j ? json_number_value(json_object_get(j, "texts_per_sec")) : 0;
    *cpu = j ? json_number_value(json_object_get(j, "cpu_seconds")) : 0;
    json_decref(j);
    return rate;
}

/* Best of reps: seconds to encode the n titles with the C MiniLM or the pretrained encoder (*cpu: the process's CPU
 * seconds in that run). */
static double time_c(cr_bert *m, const cr_textenc *e, char **titles, int64_t n, int reps, float *out, double *cpu) {
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = cr_now();
        clock_t c0 = clock();
        cr_status st = m ? cr_bert_encode(m, (const char *const *)titles, n, out)
                         : cr_textenc_encode(e, (const char *const *)titles, n, out);
        if (st) {
            fprintf(stderr, "bench_bert: %s\n", cr_errmsg());
            exit(1);
        }
        double dt = cr_now() - t0;
        if (dt < best) best = dt, *cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    }
    return best;
}

int main(int argc, char **argv) {
    int64_t n_max = INT32_MAX;
    int only_threads = 0, reps = 1, peer = 1;
    const char *model = CR_BERT_MODEL_PATH, *items = NULL, *pretrained = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-peer")) peer = 0;
        else if (i + 1 >= argc) break;
        else if (!strcmp(argv[i], "--n")) n_max = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) only_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model")) model = argv[++i];
        else if (!strcmp(argv[i], "--items")) items = argv[++i];
        else if (!strcmp(argv[i], "--pretrained")) pretrained = argv[++i];
    }
    if (reps < 1) reps = 1;
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
    float *out = malloc((size_t)(n * c->hidden) * sizeof *out);
    printf("all-MiniLM-L6-v2 on %lld titles of %s: %lld tokens ([CLS] [SEP] included, %.1f per title), best of %d\n",
           (long long)n, items, (long long)tokens, (double)tokens / (double)n, reps);
    if (peer && (sh("mkdir -p " PEER_DIR) || ensure_venv(PEER_DIR) || !file_exists(MODEL_SRC "/model.safetensors"))) {
        printf("peers: sentence-transformers left out (no venv, or no %s: run `make models`)\n", MODEL_SRC);
        peer = 0;
    }
    printf("%-8s %-16s %10s %10s %12s %16s %10s %16s\n", "threads", "encoder", "texts/s", "tokens/s", "CPU ms/text",
           "PyTorch texts/s", "C/PyTorch", "PyTorch CPU ms");
    cr_textenc *e = NULL;
    if (pretrained && cr_textenc_load(&e, pretrained)) printf("pretrained encoder left out: %s\n", cr_errmsg());
    for (int threads = 1; threads <= 2; threads++) {
        if (only_threads && threads != only_threads) continue;
        cr_bert_set_threads(m, threads);
        double cpu = 0, pcpu = 0, dt = time_c(m, NULL, titles, n, reps, out, &cpu);
        double torch = peer ? peer_rate(items, n, threads, reps, &pcpu) : 0;
        char pt[32] = "-", ratio[32] = "-", pc[32] = "-";
        if (torch > 0) {
            snprintf(pt, sizeof pt, "%.0f", torch);
            snprintf(ratio, sizeof ratio, "%.2fx", (double)n / dt / torch);
            snprintf(pc, sizeof pc, "%.2f", 1000 * pcpu / (double)n);
        }
        printf("%-8d %-16s %10.0f %10.0f %12.2f %16s %10s %16s\n", threads, "minilm (C)", (double)n / dt, (double)tokens / dt,
               1000 * cpu / (double)n, pt, ratio, pc);
        fflush(stdout);
        if (e) {
            cr_textenc_set_threads(e, threads);
            float *v = realloc(out, (size_t)(n * cr_textenc_dim(e) > n * c->hidden ? n * cr_textenc_dim(e) : n * c->hidden) * sizeof *v);
            if (!v) break;
            out = v;
            dt = time_c(NULL, e, titles, n, reps, out, &cpu);
            printf("%-8d %-16s %10.0f %10s %12.4f %16s %10s %16s\n", threads, "pretrained (C)", (double)n / dt, "-",
                   1000 * cpu / (double)n, "-", "-", "-");
            fflush(stdout);
        }
    }
    for (int64_t i = 0; i < n; i++) free(titles[i]);
    free(titles), free(out), free(ids);
    cr_textenc_free(e);
    cr_bert_free(m);
    return 0;
}

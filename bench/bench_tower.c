/* bench_tower.c — training speed of the `tower` transfer model on the Amazon arts+office cold-user split
 * (office target, upstream users.tsv; ../shared/data/amazon-art-office).
 *
 *   build/current/bench/bench_tower [--threads T] [--data DIR] [--skip-full]
 *
 * 1. Throughput: one epoch at dim 64, 50 history items, batch 256 (the setting), T threads (2):
 *    training examples per second from the log's training seconds (validation excluded).
 * 2. The full run with the defaults (early stopping on validation users): wall seconds to the best epoch
 *    (training and validation of the epochs up to it) and of the whole process.
 * It drives the crossrec binary next to it, as a user would. */
#include "bench_peers.h"

#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* From a training log (epoch, loss, valid_ndcg@10, seconds, train_seconds): the epochs, the sum of the training
 * seconds, the best epoch (highest validation NDCG) and the seconds up to and including it. 0 rows: -1. */
static int read_log(const char *path, double *train_s, int *best, double *to_best, double *best_ndcg) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    double sum = 0;
    *train_s = 0, *best = 0, *to_best = 0, *best_ndcg = -1;
    while (fgets(line, sizeof line, f)) {
        int ep;
        double loss, ndcg, sec, tsec;
        if (sscanf(line, "%d %lf %lf %lf %lf", &ep, &loss, &ndcg, &sec, &tsec) != 5) continue;
        n++;
        sum += sec;
        *train_s += tsec;
        if (ndcg > *best_ndcg) *best_ndcg = ndcg, *best = ep, *to_best = sum;
    }
    fclose(f);
    return n ? n : -1;
}

int main(int argc, char **argv) {
    int threads = 2, skip_full = 0;
    const char *data = "../shared/data/amazon-art-office";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--skip-full")) skip_full = 1;
        else {
            fprintf(stderr, "usage: bench_tower [--threads T] [--data DIR] [--skip-full]\n");
            return 2;
        }
    }
    char bin[1024], dir[] = "bench/out/tower", crd[256], crs[256], users[1024];
    snprintf(bin, sizeof bin, "%s", argv[0]);
    char *slash = strrchr(bin, '/');
    snprintf(slash ? slash + 1 : bin, sizeof bin - (size_t)(slash ? slash + 1 - bin : 0), "../crossrec");
    snprintf(crd, sizeof crd, "%s/data.crd", dir);
    snprintf(crs, sizeof crs, "%s/office.crs", dir);
    snprintf(users, sizeof users, "%s/users.tsv", data);
    if (!file_exists(users)) {
        printf("bench_tower: %s not found; this bench needs the shared Amazon data (--data DIR)\n", users);
        return 0;
    }
    if (sh("mkdir -p %s && '%s' import '%s' -o %s > %s/prepare.log && '%s' split %s --protocol cold-user --target office "
           "--users-file '%s' -o %s >> %s/prepare.log", dir, bin, data, crd, dir, bin, crd, users, crs, dir)) {
        printf("bench_tower: preparing the split failed (see %s/prepare.log)\n", dir);
        return 1;
    }
    printf("tower training speed on amazon-art-office, office target (cold-user, users.tsv), %d threads\n\n", threads);

    /* 1. one epoch at dim 64, L 50, batch 256 */
    char log1[256], out1[256];
    snprintf(log1, sizeof log1, "%s/epoch.tsv", dir);
    snprintf(out1, sizeof out1, "%s/epoch.out", dir);
    remove(log1);
    double t0 = now();
    int st = sh("OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=1 '%s' train %s --model tower --dim 64 --hist-len 50 --batch 256 "
                "--epochs 1 --patience 0 --threads %d --log %s -o %s/epoch.crm > %s 2>&1",
                threads, bin, crs, threads, log1, dir, out1);
    double wall1 = now() - t0;
    double train_s, to_best, ndcg;
    int best;
    if (st || read_log(log1, &train_s, &best, &to_best, &ndcg) < 1) {
        printf("the one-epoch run failed (exit %d):\n", st);
        print_tail(out1, 6);
        return 1;
    }
    char *txt = slurp(out1);
    long long events = 0;
    const char *on = txt ? strstr(txt, " on ") : NULL;
    if (on) {
        /* "trained tower (all domains) on 203,113 training events in ..." */
        for (const char *c = on + 4; *c && *c != ' '; c++)
            if (*c >= '0' && *c <= '9') events = events * 10 + (*c - '0');
    }
    free(txt);
    printf("one epoch, dim 64, history 50, batch 256: %lld training examples in %.1f s of training (%.1f s with "
           "validation and I/O): %.0f examples/s\n", events, train_s, wall1, events / train_s);
    if (skip_full) return 0;

    /* 2. the defaults, early stopping */
    char log2[256], out2[256];
    snprintf(log2, sizeof log2, "%s/full.tsv", dir);
    snprintf(out2, sizeof out2, "%s/full.out", dir);
    remove(log2);
    t0 = now();
    st = sh("OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=1 '%s' train %s --model tower --threads %d --log %s -o %s/full.crm > %s 2>&1",
            threads, bin, crs, threads, log2, dir, out2);
    double wall2 = now() - t0;
    int n = read_log(log2, &train_s, &best, &to_best, &ndcg);
    if (st || n < 1) {
        printf("the full run failed (exit %d):\n", st);
        print_tail(out2, 6);
        return 1;
    }
    printf("defaults, early stopping: best epoch %d of %d (validation NDCG@10 %.4f), %.1f s to the end of the best epoch "
           "(target < 120 s), %.1f s the whole process\n", best, n, ndcg, to_best, wall2);
    return 0;
}

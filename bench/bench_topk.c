/* bench_topk.c — exact top-K inner-product search (src/index) against faiss-cpu's IndexFlatIP (issue 7).
 *
 *   build/current/bench/bench_topk [--items N] [--dim D] [--queries Q] [--single S] [--k K] [--threads T]
 *                                  [--no-peers] [--dir DIR]
 *
 * Defaults: 50,000 items x 64 dims and 10,000 queries, standard normal (fixed seed 42), top-10, 2 threads.
 * Run from the repository root (`make bench` does).
 *
 * crossrec: cr_index_search_batch over all queries (queries/s, best of 3 after a warm-up), then the first S
 * (2,000) queries one at a time through cr_index_search, each timed alone (p50, p99 latency); the same for the
 * float16 copy, with its recall@10 against the float32 result. The batched result of 200 queries is checked
 * against the scalar reference cr_index_search_ref (identical items and scores expected). OpenMP runs T
 * threads (omp_set_num_threads); OpenBLAS is set to one thread (openblas_set_num_threads(1)) because the batch
 * search shares its blocks among the OpenMP threads, each calling sgemm (index.h): T threads in all.
 *
 * faiss: the matrices are written to DIR/items.npy and DIR/queries.npy (DIR default bench/out/topk, git-
 * ignored) and bench/peers/topk_faiss.py runs in the bench-only environment bench/.venv (made from
 * bench/peers/requirements.txt on first use) with faiss.omp_set_num_threads(T), OMP_NUM_THREADS=T and
 * OPENBLAS_NUM_THREADS=T. Its batched ids come back in DIR/faiss_ids.npy and are compared row by row: identical
 * rows; rows that differ only among items whose reference scores are exactly equal (ties, which either order
 * may break differently); rows that differ only among items whose reference scores are within float32
 * rounding (the bound of index.h: faiss's sgemm cannot tell them apart); and other rows (a real disagreement;
 * expected 0). Prints a table and the ratios with the targets (batched >= faiss's queries/s; single-query p50
 * >= 2x faster than faiss's and <= 0.3 ms). If faiss cannot be installed or run, says why and still prints
 * crossrec's figures. Exits 1 only when crossrec itself fails or disagrees with its reference. */
#include "crossrec/index.h"

#include "bench_peers.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PEER_SCRIPT "bench/peers/topk_faiss.py"

/* Writes a C-order float32 matrix as a .npy file (format 1.0). */
static int write_npy_f32(const char *path, const float *a, int64_t rows, int64_t cols) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }", (long long)rows, (long long)cols);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;   /* header padded to a multiple of 64 bytes, ends in \n */
    uint16_t hlen = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f), fputc(hlen >> 8, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t cnt = (size_t)(rows * cols);
    int bad = fwrite(a, sizeof *a, cnt, f) != cnt;
    return fclose(f) || bad ? -1 : 0;
}

/* Reads a C-order int64 matrix written by numpy (format 1.x or 2.x); returns malloc'ed data or NULL. */
static int64_t *read_npy_i64(const char *path, int64_t *rows, int64_t *cols) {
    char *s = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[12];
    int64_t *out = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) goto done;
    uint32_t hlen = pre[8] | (uint32_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) goto done;
        hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    }
    s = calloc(hlen + 1, 1);
    if (!s || fread(s, 1, hlen, f) != hlen || !strstr(s, "'<i8'") || strstr(s, "'fortran_order': True")) goto done;
    const char *sh_at = strstr(s, "'shape': (");
    if (!sh_at || sscanf(sh_at + 10, "%lld, %lld", (long long *)rows, (long long *)cols) != 2) goto done;
    out = malloc((size_t)(*rows * *cols) * sizeof *out);
    if (out && fread(out, sizeof *out, (size_t)(*rows * *cols), f) != (size_t)(*rows * *cols)) {
        free(out);
        out = NULL;
    }
done:
    free(s);
    fclose(f);
    return out;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p-th percentile by nearest rank of n sorted values. */
static double pct(const double *sorted, int64_t n, double p) {
    int64_t r = (int64_t)ceil(p / 100.0 * (double)n);
    return sorted[r < 1 ? 0 : r > n ? n - 1 : r - 1];
}

static double ref_dot(const float *q, const float *y, int64_t d) {
    double acc = 0;
    for (int64_t j = 0; j < d; j++) acc += (double)q[j] * (double)y[j];
    return (float)acc;
}

typedef struct {
    double qps, cpu;        /* batched queries/s; CPU seconds of that run (all threads) */
    double p50, p99;        /* single-query latency, ms */
} figures;

/* CPU seconds used by this process so far (all threads). */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Times the batch (best of 3 after a warm-up) and S single queries; fills ids (nq x k) from the batch. */
static int run_crossrec(const cr_index *ix, const float *Q, int64_t nq, int64_t n_single, const cr_index_search_params *p, int32_t *ids,
                        float *scores, figures *fig) {
    int64_t d = cr_index_dim(ix), k = p->k;
    if (cr_index_search_batch(ix, Q, nq, NULL, NULL, p, ids, scores, NULL)) return -1;
    double best = INFINITY;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = cr_now(), c0 = cpu_now();
        if (cr_index_search_batch(ix, Q, nq, NULL, NULL, p, ids, scores, NULL)) return -1;
        double t = cr_now() - t0;
        if (t < best) best = t, fig->cpu = cpu_now() - c0;
    }
    fig->qps = (double)nq / best;
    int32_t one[CR_INDEX_MAX_K];
    float one_s[CR_INDEX_MAX_K];
    double *lat = malloc((size_t)n_single * sizeof *lat);
    for (int64_t r = 0; r < 50 && r < n_single; r++)   /* warm-up */
        if (cr_index_search(ix, Q + r * d, NULL, 0, p, one, one_s, NULL)) return -1;
    for (int64_t r = 0; r < n_single; r++) {
        double t0 = cr_now();
        cr_status st = cr_index_search(ix, Q + r * d, NULL, 0, p, one, one_s, NULL);
        lat[r] = (cr_now() - t0) * 1e3;
        if (st) return -1;
        if (memcmp(one, ids + r * k, (size_t)k * sizeof *one)) {
            printf("crossrec: single query %lld differs from the batch\n", (long long)r);
            free(lat);
            return -1;
        }
    }
    qsort(lat, (size_t)n_single, sizeof *lat, cmp_double);
    fig->p50 = pct(lat, n_single, 50);
    fig->p99 = pct(lat, n_single, 99);
    free(lat);
    return 0;
}

static void verdict(const char *what, double ratio, double target) {
    printf("  %-48s %6.2fx  (target >= %gx: %s)\n", what, ratio, target, ratio >= target ? "met" : "NOT met");
}

int main(int argc, char **argv) {
    long long n = 50000, dim = 64, nq = 10000, n_single = 2000, k = 10, threads = 2;
    int peers = 1;
    const char *dir = "bench/out/topk";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--items") && has) n = atoll(argv[++i]);
        else if (!strcmp(a, "--dim") && has) dim = atoll(argv[++i]);
        else if (!strcmp(a, "--queries") && has) nq = atoll(argv[++i]);
        else if (!strcmp(a, "--single") && has) n_single = atoll(argv[++i]);
        else if (!strcmp(a, "--k") && has) k = atoll(argv[++i]);
        else if (!strcmp(a, "--threads") && has) threads = atoll(argv[++i]);
        else if (!strcmp(a, "--dir") && has) dir = argv[++i];
        else if (!strcmp(a, "--no-peers")) peers = 0;
        else {
            fprintf(stderr, "usage: bench_topk [--items N] [--dim D] [--queries Q] [--single S] [--k K] [--threads T] [--no-peers] [--dir DIR]\n");
            return 2;
        }
    }
    if (n < 1 || dim < 1 || nq < 1 || n_single < 1 || n_single > nq || k < 1 || k > CR_INDEX_MAX_K || k > n || threads < 1) {
        fprintf(stderr, "bench_topk: need items, dim, queries, threads >= 1, 1 <= single <= queries, 1 <= k <= min(items, %d)\n",
                CR_INDEX_MAX_K);
        return 2;
    }
#ifdef _OPENMP
    omp_set_num_threads((int)threads);
#endif
    openblas_set_num_threads(1);

    /* data */
    float *Y = malloc((size_t)(n * dim) * sizeof *Y), *Q = malloc((size_t)(nq * dim) * sizeof *Q);
    cr_rng r;
    cr_rng_named(&r, 42, "bench_topk items");
    for (long long t = 0; t < n * dim; t++) Y[t] = (float)cr_rng_normal(&r);
    cr_rng_named(&r, 42, "bench_topk queries");
    for (long long t = 0; t < nq * dim; t++) Q[t] = (float)cr_rng_normal(&r);
    char items_npy[600], queries_npy[600], ids_npy[600];
    snprintf(items_npy, sizeof items_npy, "%s/items.npy", dir);
    snprintf(queries_npy, sizeof queries_npy, "%s/queries.npy", dir);
    snprintf(ids_npy, sizeof ids_npy, "%s/faiss_ids.npy", dir);
    if (sh("mkdir -p '%s'", dir) || write_npy_f32(items_npy, Y, n, dim) || write_npy_f32(queries_npy, Q, nq, dim)) {
        printf("bench_topk: cannot write %s and %s\n", items_npy, queries_npy);
        return 1;
    }
    printf("data: %lld items x %lld dims, %lld queries, standard normal (seed 42); top-%lld; %lld threads (machine: %ld cores)\n", n, dim,
           nq, k, threads, sysconf(_SC_NPROCESSORS_ONLN));
    printf("crossrec kernels: %s\n", cr_index_kernel());
    char *load = slurp("/proc/loadavg");
    if (load) {
        printf("load average before the run: %.2f (1 min) on %ld cores; other load slows both sides and spreads the figures\n", atof(load),
               sysconf(_SC_NPROCESSORS_ONLN));
        free(load);
    }

    cr_index *ix;
    cr_index_params ip = cr_index_default_params();
    ip.f16 = 1;
    double t0 = cr_now();
    if (cr_index_init(&ix, Y, n, dim, &ip)) {
        printf("bench_topk: %s\n", cr_errmsg());
        return 1;
    }
    printf("index built in %.1f ms (float32 + float16 copy)\n", (cr_now() - t0) * 1e3);

    cr_index_search_params p = cr_index_search_default_params();
    p.k = k;
    int32_t *ids = malloc((size_t)(nq * k) * sizeof *ids), *ids_h = malloc((size_t)(nq * k) * sizeof *ids_h);
    float *sc = malloc((size_t)(nq * k) * sizeof *sc), *sc_h = malloc((size_t)(nq * k) * sizeof *sc_h);
    figures f32, f16;
    if (run_crossrec(ix, Q, nq, n_single, &p, ids, sc, &f32)) {
        printf("bench_topk: crossrec float32 search failed: %s\n", cr_errmsg());
        return 1;
    }
    cr_index_search_params ph = p;
    ph.precision = CR_INDEX_F16;
    if (run_crossrec(ix, Q, nq, n_single, &ph, ids_h, sc_h, &f16)) {
        printf("bench_topk: crossrec float16 search failed: %s\n", cr_errmsg());
        return 1;
    }
    /* the reference on a sample */
    int64_t n_check = nq < 200 ? nq : 200;
    int32_t *ref_ids = malloc((size_t)(n_check * k) * sizeof *ref_ids);
    float *ref_sc = malloc((size_t)(n_check * k) * sizeof *ref_sc);
    if (cr_index_search_ref(ix, Q, n_check, NULL, NULL, &p, ref_ids, ref_sc, NULL)) return 1;
    int ref_same = !memcmp(ref_ids, ids, (size_t)(n_check * k) * sizeof *ids) && !memcmp(ref_sc, sc, (size_t)(n_check * k) * sizeof *sc);
    printf("crossrec batched = scalar reference on the first %lld queries (items and scores): %s\n", (long long)n_check,
           ref_same ? "yes" : "NO");
    int64_t hits = 0;
    for (long long q = 0; q < nq; q++)
        for (long long a = 0; a < k; a++)
            for (long long b = 0; b < k; b++) hits += ids[q * k + a] == ids_h[q * k + b];
    double recall_h = (double)hits / (double)(nq * k);

    /* faiss */
    int have_peer = 0;
    double fq = NAN, fp50 = NAN, fp99 = NAN, f_over = NAN, f_cpu = NAN;
    char fversion[64] = "";
    int64_t same = 0, ties = 0, near = 0, other = 0;
    if (peers && !file_exists(PEER_SCRIPT)) printf("faiss: %s not found (run from the repository root); left out\n", PEER_SCRIPT);
    else if (peers) ensure_venv(dir);   /* as in bench_train, a failed install of another peer does not stop this
                                           one: the script says when it cannot import faiss */
    if (peers && file_exists(PEER_SCRIPT) && !file_exists(VENV "/bin/python")) printf("faiss left out: no %s\n", VENV);
    else if (peers && file_exists(PEER_SCRIPT)) {
        char out[700];
        snprintf(out, sizeof out, "%s/faiss.out", dir);
        printf("running faiss (%s) ...\n", PEER_SCRIPT);
        fflush(stdout);
        int st = sh("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=%lld OMP_NUM_THREADS=%lld MKL_NUM_THREADS=%lld " VENV
                    "/bin/python " PEER_SCRIPT " --dir '%s' --k %lld --threads %lld --single %lld > '%s' 2>&1",
                    threads, threads, threads, dir, k, threads, n_single, out);
        json_t *j = last_json(out);
        const char *reason = j ? json_string_value(json_object_get(j, "reason")) : NULL;
        int64_t rows = 0, cols = 0;
        int64_t *fid = NULL;
        if (st || !j || !json_is_true(json_object_get(j, "ok"))) {
            printf("faiss left out: %s\n", reason ? reason : "the peer failed:");
            if (!reason) print_tail(out, 6);
        } else if (!(fid = read_npy_i64(ids_npy, &rows, &cols)) || rows != nq || cols != k) {
            printf("faiss left out: cannot read %s as %lld x %lld int64\n", ids_npy, nq, k);
        } else {
            have_peer = 1;
            fq = json_number_value(json_object_get(j, "batch_qps"));
            f_cpu = json_number_value(json_object_get(j, "batch_cpu_seconds"));
            fp50 = json_number_value(json_object_get(j, "single_p50_ms"));
            fp99 = json_number_value(json_object_get(j, "single_p99_ms"));
            f_over = json_number_value(json_object_get(j, "call_overhead_ms"));
            snprintf(fversion, sizeof fversion, "%s", json_string_value(json_object_get(j, "version")));
            /* compare rows; classify the differences by the reference scores of both lists */
            double max_norm = 0;
            for (long long i = 0; i < n; i++) {
                double s2 = 0;
                for (long long c = 0; c < dim; c++) s2 += (double)Y[i * dim + c] * Y[i * dim + c];
                max_norm = s2 > max_norm ? s2 : max_norm;
            }
            max_norm = sqrt(max_norm);
            for (long long q = 0; q < nq; q++) {
                int eq = 1;
                for (long long c = 0; c < k; c++) eq &= fid[q * k + c] == ids[q * k + c];
                if (eq) {
                    same++;
                    continue;
                }
                const float *qv = Q + q * dim;
                double qn = 0;
                for (long long c = 0; c < dim; c++) qn += (double)qv[c] * qv[c];
                double E = 2.0 * (double)(dim + 2) * 0x1p-24 * sqrt(qn) * max_norm;   /* index.h's bound */
                int exact = 1, close = 1;
                for (long long c = 0; c < k; c++) {
                    int64_t fi = fid[q * k + c];
                    double fs = fi >= 0 && fi < n ? ref_dot(qv, Y + fi * dim, dim) : -INFINITY;
                    double cs = sc[q * k + c];
                    exact &= fs == cs;
                    close &= fabs(fs - cs) <= 2 * E;
                }
                if (exact) ties++;
                else if (close) near++;
                else other++;
            }
        }
        free(fid);
        json_decref(j);
    }

    printf("\n%-20s %12s %12s %14s %14s %14s\n", "search", "batched q/s", "batch CPU s", "q/s per core", "single p50 ms",
           "single p99 ms");
    printf("%-20s %12.0f %12.3f %14.0f %14.4f %14.4f\n", "crossrec float32", f32.qps, f32.cpu, (double)nq / f32.cpu, f32.p50, f32.p99);
    printf("%-20s %12.0f %12.3f %14.0f %14.4f %14.4f\n", "crossrec float16", f16.qps, f16.cpu, (double)nq / f16.cpu, f16.p50, f16.p99);
    if (have_peer)
        printf("%-20s %12.0f %12.3f %14.0f %14.4f %14.4f\n", "faiss IndexFlatIP", fq, f_cpu, (double)nq / f_cpu, fp50, fp99);
    printf("batched: best of 3 runs of all %lld queries (wall clock); batch CPU s: CPU time of that run, all threads (q/s per core =\n"
           "queries / CPU s: less sensitive to other load on the machine); single: %lld queries one at a time%s.\n"
           "float16: recall@%lld against the float32 result %.4f\n",
           nq, n_single, have_peer ? " (faiss: each a Python call)" : "", k, recall_h);
    if (have_peer) printf("faiss: the same Python call on a 1-item index takes %.4f ms at p50\n", f_over);
    if (have_peer) {
        printf("faiss %s: result ids vs crossrec float32 over %lld queries: %lld identical rows; %lld differ only among exactly tied\n"
               "items; %lld only among items within float32 rounding of each other; %lld otherwise\n",
               fversion, nq, (long long)same, (long long)ties, (long long)near, (long long)other);
        printf("\nratios (crossrec / faiss):\n");
        verdict("batched queries/s vs faiss", f32.qps / fq, 1.0);
        verdict("single-query p50 speed vs faiss", fp50 / f32.p50, 2.0);
        printf("  %-48s %6.2fx\n", "single-query p99 speed vs faiss", fp99 / f32.p99);
        printf("  %-48s %6.2fx, single p50 %6.2fx\n", "float16 vs faiss: batched", f16.qps / fq, fp50 / f16.p50);
    }
    printf("  %-48s %.4f ms (target <= 0.3 ms: %s)\n", "crossrec single-query p50", f32.p50, f32.p50 <= 0.3 ? "met" : "NOT met");
    printf("  %-48s %6.2fx batched, %6.2fx single p50\n", "float16 vs float32 (crossrec)", f16.qps / f32.qps, f32.p50 / f16.p50);

    cr_index_free(ix);
    free(Y), free(Q), free(ids), free(ids_h), free(sc), free(sc_h), free(ref_ids), free(ref_sc);
    return ref_same ? 0 : 1;
}

/* bench_train.c — training speed, accuracy and peak memory of crossrec's bpr and als against implicit 0.7.3
 * (BPR, ALS) and LightFM 1.17 (BPR), side by side on the same data (issue 4).
 *
 *   build/current/bench/bench_train [--users N] [--items N] [--interactions N] [--epochs E] [--threads T]
 *                                    [--dim D] [--models bpr,als] [--no-peers] [--no-valid] [--dir DIR]
 *
 * Run from the repository root (`make bench` does); crossrec is $CROSSREC_BIN, else build/current/crossrec.
 * Defaults: 100,000 users x 50,000 items x 2,000,000 events, 5 epochs, 64 factors, 2 threads. A quick check:
 * --users 2000 --items 1000 --interactions 40000.
 *
 * Data (made once per size in DIR, default bench/out/train/uU-iI-nN): `crossrec synth` with one domain and item
 * popularity Zipf 0.8, `crossrec import`, then a warm leave-last-out split (`crossrec split --protocol warm`:
 * per user the last event is test, the one before validation) exported with --export, so crossrec and the
 * peers train on the same events (export/train.tsv) and are tested on the same held-out ones (export/test.tsv).
 *
 * crossrec: `crossrec train --model M --dim D --epochs E --patience 0 --threads T --optimizer sgd --hogwild --log LOG` under
 * /usr/bin/time -v; epoch seconds are the mean of the seconds column of LOG (a training-only column when the
 * log has one; the table marks a figure that includes the per-epoch validation pass). --no-valid instead
 * trains through the library (cr_model_train, the CLI's defaults, no validation split) in a child process of
 * this program, so the epochs are timed alone, as the peers' are. Accuracy is `crossrec eval --k 10 --json` on
 * the test users (full ranking over all items, training items excluded, pessimistic ties).
 * Peers: bench/peers/train_peers.py (its header says how each is configured and how ALS confidences are
 * matched) in the bench-only environment bench/.venv, made here on first use from bench/peers/requirements.txt.
 * Each peer fits in its own process under /usr/bin/time -v (BLAS and OpenMP limited to T threads,
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for that command only: they slow a current numpy) and is
 * evaluated in another process with the same metric definitions.
 *
 * Interactions/s = training events / epoch seconds (one BPR epoch draws one sample per training event).
 * Prints one table and the ratios against implicit (targets: bpr >= 2x implicit BPR's throughput with equal
 * or better accuracy at equal epochs; als epoch time <= implicit's; peak RSS <= implicit's). Exits 1 only when
 * crossrec itself fails; a peer that cannot be installed or run is reported with the reason and left out. */
#include "crossrec/model.h"
#include "crossrec/split.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_peers.h"

#define PEER_SCRIPT "bench/peers/train_peers.py"

typedef struct {
    char name[32];          /* "crossrec bpr", "implicit bpr", ... */
    const char *family;     /* "bpr" or "als" */
    int ok;
    double epoch_s;         /* mean seconds per epoch */
    int epoch_from_log;     /* 0: epoch_s is the whole process's seconds / epochs (no per-epoch timing) */
    int epoch_with_valid;   /* epoch_s counts crossrec's per-epoch validation too */
    double process_s;       /* wall seconds of the whole training process (load, fit, save; crossrec: + validation) */
    double recall, ndcg;
    double rss_mb;          /* peak resident set, MB (10^6 bytes) */
    char note[1024];
} row;

static int have_time;       /* /usr/bin/time exists */

/* Runs `cmd` with stdout and stderr to out_path, measuring peak RSS and wall time: through /usr/bin/time -v
 * (its "Maximum resident set size") when it exists, else through wait4's rusage of the shell running it (the
 * same figure: the largest resident set among the shell and the processes it waited for). Returns the exit
 * status. */
static int timed(const char *cmd, const char *out_path, double *wall, double *rss_mb) {
    char full[16384], tpath[4200];
    snprintf(tpath, sizeof tpath, "%s.time", out_path);
    *rss_mb = NAN;
    double t0 = cr_now();
    int st;
    if (have_time) {
        snprintf(full, sizeof full, "/usr/bin/time -v -o '%s' %s > '%s' 2>&1", tpath, cmd, out_path);
        st = sh("%s", full);
        char *t = slurp(tpath);
        const char *m = t ? strstr(t, "Maximum resident set size (kbytes):") : NULL;
        if (m) *rss_mb = atof(strchr(m, ':') + 1) * 1024.0 / 1e6;
        free(t);
    } else {
        snprintf(full, sizeof full, "%s > '%s' 2>&1", cmd, out_path);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/sh", "sh", "-c", full, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        struct rusage ru;
        if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return -1;
        *rss_mb = (double)ru.ru_maxrss * 1024.0 / 1e6;
        st = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    *wall = cr_now() - t0;
    return st;
}

static double jnum(const json_t *o, const char *key) {
    const json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Mean seconds per epoch from a `--log` TSV: one header row naming the columns, one row per epoch. The
 * seconds column is found by name: a column with "sec" or "time" in it, preferring one about training and
 * avoiding validation-only ones; a cumulative one ("elapsed", "total", "cum") is differenced. *with_valid is
 * set when that column is not a training-only one while a validation column has values (the loop's
 * `seconds` then counts each epoch's validation too). Returns the number of epoch rows read (0: no usable
 * column; `why` says what the header was). */
static int log_epoch_seconds(const char *path, double *mean, int *with_valid, char *why, size_t why_cap) {
    char *s = slurp(path);
    *mean = NAN;
    *with_valid = 0;
    if (!s) {
        snprintf(why, why_cap, "no log file %s", path);
        return 0;
    }
    char *save = NULL, *line = strtok_r(s, "\n", &save);
    if (!line) {
        snprintf(why, why_cap, "empty log %s", path);
        free(s);
        return 0;
    }
    char header[1024];
    snprintf(header, sizeof header, "%s", line);
    int col = -1, best = -1000, cumulative = 0, k = 0, valid_col = -1, valid_seen = 0;
    char *hs = NULL;
    for (char *name = strtok_r(line, "\t\r", &hs); name; name = strtok_r(NULL, "\t\r", &hs), k++) {
        char low[128];
        size_t n = 0;
        for (; name[n] && n + 1 < sizeof low; n++) low[n] = (char)((name[n] >= 'A' && name[n] <= 'Z') ? name[n] + 32 : name[n]);
        low[n] = '\0';
        int timing = strstr(low, "sec") || strstr(low, "time") || !strcmp(low, "s");
        if (!timing && strstr(low, "valid") && valid_col < 0) valid_col = k;
        if (!timing) continue;
        int score = 0;
        if (strstr(low, "train") || strstr(low, "epoch") || strstr(low, "fit")) score += 2;
        if (strstr(low, "valid") || strstr(low, "eval")) score -= 3;
        int cum = strstr(low, "elapsed") || strstr(low, "total") || strstr(low, "cum");
        if (cum) score -= 1;
        if (score > best) best = score, col = k, cumulative = cum;
    }
    if (col < 0) {
        snprintf(why, why_cap, "no seconds column in %s (header: %s)", path, header);
        free(s);
        return 0;
    }
    int rows = 0;
    double sum = 0, prev = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *fs = NULL, *f = strtok_r(line, "\t\r", &fs), *field = NULL, *end;
        for (int c = 0; f; c++, f = strtok_r(NULL, "\t\r", &fs)) {
            if (c == col) field = f;
            if (c == valid_col && isfinite(strtod(f, &end)) && end != f) valid_seen = 1;
        }
        f = field;
        double v = f ? strtod(f, &end) : NAN;
        if (!f || end == f || !isfinite(v)) continue;
        sum += cumulative ? v - prev : v;
        prev = v;
        rows++;
    }
    free(s);
    *with_valid = valid_seen && best < 2;
    if (rows) *mean = sum / rows;
    else snprintf(why, why_cap, "no epoch rows in %s", path);
    return rows;
}

/* Number of lines of a file minus its header. */
static int64_t data_lines(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int64_t n = 0;
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < got; i++) n += buf[i] == '\n';
    fclose(f);
    return n - 1;
}

static void verdict(const char *what, double ratio, double target, int at_least) {
    int met = at_least ? ratio >= target : ratio <= target;
    printf("  %-44s %6.2fx  (target %s %gx: %s)\n", what, ratio, at_least ? ">=" : "<=", target, met ? "met" : "NOT met");
}

static const row *find(const row *rows, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (rows[i].ok && !strcmp(rows[i].name, name)) return &rows[i];
    return NULL;
}

/* --fit-child CRS MODEL DIM EPOCHS THREADS LOG CRM: what --no-valid runs (under /usr/bin/time -v, in its own
 * process): the model fitted through the library's cr_model_train with the CLI's defaults but no validation
 * split, so no epoch is followed by a validation pass and the log's seconds are the epochs alone. */
static int fit_child(char **a) {
    cr_split *s;
    if (cr_split_load(&s, a[0])) {
        fprintf(stderr, "%s\n", cr_errmsg());
        return 1;
    }
    cr_train_params p = cr_train_default_params();
    p.model = a[1];
    p.dim = atoll(a[2]);
    p.epochs = atoll(a[3]);
    p.threads = atoi(a[4]);
    p.patience = 0;
    p.seed = 42;
    p.optimizer = "sgd";   /* implicit's BPR is plain SGD: compare like with like */
    p.hogwild = 1;         /* and runs its threads lock-free, as --hogwild does (als ignores it) */
    p.log_path = a[5];
    p.valid = NULL;
    cr_model *m = NULL;
    double t0 = cr_now();
    cr_status st = cr_model_train(&m, cr_split_dataset(s), cr_split_train(s), &p);
    if (!st) st = cr_model_save(m, a[6]);
    if (st) fprintf(stderr, "%s\n", cr_errmsg());
    else printf("trained %s without validation in %.2f s -> %s\n", a[1], cr_now() - t0, a[6]);
    cr_model_free(m);
    cr_split_free(s);
    return st ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 9 && !strcmp(argv[1], "--fit-child")) return fit_child(argv + 2);
    long long users = 100000, items = 50000, inter = 2000000, epochs = 5, threads = 2, dim = 64;
    const char *models = "bpr,als", *dir_arg = NULL;
    int peers = 1, no_valid = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--users") && has) users = atoll(argv[++i]);
        else if (!strcmp(a, "--items") && has) items = atoll(argv[++i]);
        else if (!strcmp(a, "--interactions") && has) inter = atoll(argv[++i]);
        else if (!strcmp(a, "--epochs") && has) epochs = atoll(argv[++i]);
        else if (!strcmp(a, "--threads") && has) threads = atoll(argv[++i]);
        else if (!strcmp(a, "--dim") && has) dim = atoll(argv[++i]);
        else if (!strcmp(a, "--models") && has) models = argv[++i];
        else if (!strcmp(a, "--dir") && has) dir_arg = argv[++i];
        else if (!strcmp(a, "--no-peers")) peers = 0;
        else if (!strcmp(a, "--no-valid")) no_valid = 1;
        else {
            fprintf(stderr, "usage: bench_train [--users N] [--items N] [--interactions N] [--epochs E] [--threads T] [--dim D]\n"
                            "                   [--models bpr,als] [--no-peers] [--no-valid] [--dir DIR]\n");
            return 2;
        }
    }
    if (users < 1 || items < 1 || inter < users || epochs < 1 || threads < 1 || dim < 1) {
        fprintf(stderr, "bench_train: need users, items, epochs, threads, dim >= 1 and interactions >= users\n");
        return 2;
    }
    const char *bin = getenv("CROSSREC_BIN") ? getenv("CROSSREC_BIN") : "build/current/crossrec";
    char self[1024];
    ssize_t self_n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (self_n <= 0) snprintf(self, sizeof self, "%s", argv[0]);
    else self[self_n] = '\0';
    if (access(bin, X_OK)) {
        fprintf(stderr, "bench_train: %s not found (build it with `make`, or set CROSSREC_BIN)\n", bin);
        return 1;
    }
    have_time = access("/usr/bin/time", X_OK) == 0;
    if (!have_time)
        printf("note: /usr/bin/time not found (Debian: apt-get install time); peak RSS comes from wait4 instead\n");

    char dir[512];
    if (dir_arg) snprintf(dir, sizeof dir, "%s", dir_arg);
    else snprintf(dir, sizeof dir, "bench/out/train/u%lld-i%lld-n%lld", users, items, inter);
    char crd[640], crs[640], ready[640], train_tsv[640];
    snprintf(crd, sizeof crd, "%s/data.crd", dir);
    snprintf(crs, sizeof crs, "%s/s.crs", dir);
    snprintf(ready, sizeof ready, "%s/.ready", dir);
    snprintf(train_tsv, sizeof train_tsv, "%s/export/train.tsv", dir);

    /* Data, once per size: synth, import, warm leave-last-out split with the TSV export. */
    if (!file_exists(ready) || !file_exists(crs) || !file_exists(train_tsv)) {
        printf("preparing %s: %lld users x %lld items x %lld events, 1 domain, item Zipf 0.8 ...\n", dir, users, items, inter);
        fflush(stdout);
        char log[640];
        snprintf(log, sizeof log, "%s/prepare.log", dir);
        if (sh("mkdir -p '%s'", dir) ||
            sh("'%s' synth -o '%s' --users %lld --items %lld --interactions %lld --domains 1 --item-zipf 0.8 --seed 42 > '%s' 2>&1",
               bin, dir, users, items, inter, log) ||
            sh("'%s' import '%s' -o '%s' >> '%s' 2>&1", bin, dir, crd, log) ||
            sh("'%s' split '%s' --protocol warm --seed 42 -o '%s' --export '%s/export' >> '%s' 2>&1", bin, crd, crs, dir, log)) {
            printf("bench_train: preparing the data failed:\n");
            print_tail(log, 8);
            return 1;
        }
        FILE *f = fopen(ready, "w");
        if (f) fclose(f);
    }
    int64_t events = data_lines(train_tsv);
    if (events <= 0) {
        printf("bench_train: %s has no training events\n", train_tsv);
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("data: %s — %lld users x %lld items, %lld training events (warm leave-last-out; test = each user's last event)\n",
           dir, users, items, (long long)events);
    printf("settings: %lld factors, %lld epochs, %lld threads (machine: %ld cores), seed 42\n\n", dim, epochs, threads, ncpu);

    row rows[8];
    int n_rows = 0, failed = 0;

    /* crossrec */
    for (int m = 0; m < 2; m++) {
        const char *model = m == 0 ? "bpr" : "als";
        if (!strstr(models, model)) continue;
        row *r = &rows[n_rows++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "crossrec %s", model);
        r->family = model;
        char cmd[8192], out[640], logp[640], crm[640], evalp[640];
        snprintf(out, sizeof out, "%s/crossrec-%s.out", dir, model);
        snprintf(logp, sizeof logp, "%s/crossrec-%s.log.tsv", dir, model);
        snprintf(crm, sizeof crm, "%s/crossrec-%s.crm", dir, model);
        snprintf(evalp, sizeof evalp, "%s/crossrec-%s.eval.json", dir, model);
        remove(logp);
        printf("running crossrec %s%s ...\n", no_valid ? "(library, no validation) " : "train --model ", model);
        fflush(stdout);
        if (no_valid)
            snprintf(cmd, sizeof cmd, "env OPENBLAS_NUM_THREADS=%lld OMP_NUM_THREADS=%lld '%s' --fit-child '%s' %s %lld %lld %lld '%s' '%s'",
                     threads, threads, self, crs, model, dim, epochs, threads, logp, crm);
        else
            snprintf(cmd, sizeof cmd,
                     "env OPENBLAS_NUM_THREADS=%lld OMP_NUM_THREADS=%lld '%s' train '%s' --model %s --dim %lld --epochs %lld --patience 0 "
                     "--threads %lld --seed 42 --optimizer sgd --hogwild --log '%s' -o '%s'",
                     threads, threads, bin, crs, model, dim, epochs, threads, logp, crm);
        int st = timed(cmd, out, &r->process_s, &r->rss_mb);
        if (st) {
            snprintf(r->note, sizeof r->note, "FAILED: crossrec train exited with %d (%s)", st, out);
            printf("crossrec train --model %s failed (exit %d):\n", model, st);
            print_tail(out, 6);
            failed = 1;
            continue;
        }
        char why[2048];
        int n_ep = log_epoch_seconds(logp, &r->epoch_s, &r->epoch_with_valid, why, sizeof why);
        r->epoch_from_log = n_ep > 0;
        if (r->epoch_with_valid)
            printf("note: the log's seconds include each epoch's validation (full ranking of the validation users): "
                   "--no-valid times the epochs alone\n");
        if (!n_ep) {
            printf("note: %s; epoch seconds = process seconds / epochs\n", why);
            r->epoch_s = r->process_s / (double)epochs;
        } else if (n_ep != epochs) {
            printf("note: %s has %d epoch rows, not %lld\n", logp, n_ep, epochs);
        }
        /* the JSON alone in the file: eval's summary line goes to stderr, kept beside it */
        if (sh("env OPENBLAS_NUM_THREADS=%lld OMP_NUM_THREADS=%lld '%s' eval '%s' '%s' --k 10 --json --threads %lld > '%s' 2> '%s.err'",
               threads, threads, bin, crs, crm, threads, evalp, evalp)) {
            snprintf(r->note, sizeof r->note, "FAILED: crossrec eval (%s)", evalp);
            printf("crossrec eval of %s failed:\n", crm);
            print_tail(evalp, 6);
            failed = 1;
            continue;
        }
        json_error_t err;
        json_t *j = json_load_file(evalp, 0, &err);
        json_t *metrics = j ? json_object_get(j, "metrics") : NULL;
        r->recall = jnum(metrics, "recall@10");
        r->ndcg = jnum(metrics, "ndcg@10");
        double unrep = jnum(j, "unrepresented_users");
        if (unrep > 0) printf("note: crossrec %s could not represent %.0f test users (counted as misses)\n", model, unrep);
        json_decref(j);
        r->ok = isfinite(r->recall) && isfinite(r->ndcg);
        if (!r->ok) {
            snprintf(r->note, sizeof r->note, "FAILED: no recall@10 / ndcg@10 in %s", evalp);
            failed = 1;
        }
    }

    /* peers */
    static const struct {
        const char *peer, *name, *family;
    } peer_list[] = {{"implicit-bpr", "implicit bpr", "bpr"}, {"lightfm-bpr", "lightfm bpr", "bpr"}, {"implicit-als", "implicit als", "als"}};
    if (peers && !file_exists(PEER_SCRIPT)) {
        printf("peers: %s not found (run from the repository root); peers left out\n", PEER_SCRIPT);
        peers = 0;
    }
    if (peers) {
        ensure_venv(dir);
        if (!file_exists(VENV "/bin/python")) peers = 0;
    }
    for (int p = 0; peers && p < 3; p++) {
        if (!strstr(models, peer_list[p].family)) continue;
        row *r = &rows[n_rows++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", peer_list[p].name);
        r->family = peer_list[p].family;
        char cmd[8192], out[640], evalp[640];
        snprintf(out, sizeof out, "%s/%s.out", dir, peer_list[p].peer);
        snprintf(evalp, sizeof evalp, "%s/%s.eval.out", dir, peer_list[p].peer);
        const char *env_fmt = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=%lld OMP_NUM_THREADS=%lld "
                              "MKL_NUM_THREADS=%lld " VENV "/bin/python " PEER_SCRIPT;
        char env[1024];
        snprintf(env, sizeof env, env_fmt, threads, threads, threads);
        printf("running %s ...\n", r->name);
        fflush(stdout);
        snprintf(cmd, sizeof cmd, "%s train --peer %s --data '%s' --out '%s/peers' --epochs %lld --factors %lld --threads %lld --seed 42",
                 env, peer_list[p].peer, dir, dir, epochs, dim, threads);
        int st = timed(cmd, out, &r->process_s, &r->rss_mb);
        json_t *j = last_json(out);
        const json_t *ok = j ? json_object_get(j, "ok") : NULL;
        if (st || !json_is_true(ok)) {
            const char *reason = j ? json_string_value(json_object_get(j, "reason")) : NULL;
            snprintf(r->note, sizeof r->note, "left out: %s", reason ? reason : "the peer failed (see below)");
            printf("%s left out: %s\n", r->name, reason ? reason : "");
            if (!reason) print_tail(out, 6);
            json_decref(j);
            continue;
        }
        const json_t *ep = json_object_get(j, "epoch_seconds");
        double sum = 0;
        size_t n_ep = json_array_size(ep);
        for (size_t k = 0; k < n_ep; k++) sum += json_number_value(json_array_get(ep, k));
        r->epoch_from_log = n_ep > 0;
        r->epoch_s = n_ep ? sum / (double)n_ep : jnum(j, "fit_seconds") / (double)epochs;
        const json_t *blas = json_object_get(j, "blas");
        for (size_t k = 0; p == 0 && k < json_array_size(blas); k++) {
            const json_t *b = json_array_get(blas, k);
            printf("peers: BLAS %s %s, kernel %s, %.0f threads\n", json_string_value(json_object_get(b, "internal_api")),
                   json_string_value(json_object_get(b, "version")), json_string_value(json_object_get(b, "architecture")),
                   jnum(b, "num_threads"));
        }
        double nnz = jnum(j, "nnz");
        if (p == 0 && nnz != (double)events)
            printf("peers: the matrix has %.0f distinct (user, item) pairs for %lld events (repeats summed)\n", nnz, (long long)events);
        json_decref(j);
        snprintf(cmd, sizeof cmd, "%s eval --peer %s --data '%s' --out '%s/peers' --k 10 > '%s' 2>&1", env, peer_list[p].peer, dir, dir, evalp);
        if (sh("%s", cmd) || !(j = last_json(evalp))) {
            snprintf(r->note, sizeof r->note, "left out: its evaluation failed (%s)", evalp);
            printf("%s: evaluation failed:\n", r->name);
            print_tail(evalp, 6);
            continue;
        }
        r->recall = jnum(j, "recall@10");
        r->ndcg = jnum(j, "ndcg@10");
        double unrep = jnum(j, "unrepresented_users");
        if (unrep > 0 && p == 0) printf("peers: %.0f test users have no training event (counted as misses)\n", unrep);
        json_decref(j);
        r->ok = 1;
    }

    /* table: crossrec and peers of each family together */
    printf("\n%-14s %13s %10s %9s %10s %9s %12s\n", "model", "interact./s", "epoch s", "process s", "recall@10", "ndcg@10", "peak RSS MB");
    for (int f = 0; f < 2; f++)
        for (int i = 0; i < n_rows; i++) {
            const row *r = &rows[i];
            if (strcmp(r->family, f == 0 ? "bpr" : "als")) continue;
            if (!r->ok) {
                printf("%-14s  %s\n", r->name, r->note);
                continue;
            }
            printf("%-14s %11.2f M %9.3f%s %9.2f %10.4f %9.4f %12.1f\n", r->name, (double)events / r->epoch_s / 1e6, r->epoch_s,
                   !r->epoch_from_log ? "*" : r->epoch_with_valid ? "+" : " ", r->process_s, r->recall, r->ndcg, r->rss_mb);
        }
    printf("interactions/s = %lld training events / epoch seconds; epoch s = mean of the timed epochs (* = process s / epochs,\n"
           "+ = including crossrec's per-epoch validation); process s = the whole training process (load, fit, save%s);\n"
           "peak RSS from %s\n",
           (long long)events, no_valid ? "" : "; crossrec validates after each epoch", have_time ? "/usr/bin/time -v" : "wait4");

    const row *cb = find(rows, n_rows, "crossrec bpr"), *ib = find(rows, n_rows, "implicit bpr"), *lb = find(rows, n_rows, "lightfm bpr");
    const row *ca = find(rows, n_rows, "crossrec als"), *ia = find(rows, n_rows, "implicit als");
    if ((cb && (ib || lb)) || (ca && ia)) printf("\nratios (crossrec / peer):\n");
    if (cb && ib) {
        verdict("bpr throughput vs implicit BPR", ib->epoch_s / cb->epoch_s, 2.0, 1);
        printf("  %-44s ndcg@10 %.4f vs %.4f, recall@10 %.4f vs %.4f (target: equal or better: %s)\n",
               "bpr accuracy at equal epochs vs implicit BPR", cb->ndcg, ib->ndcg, cb->recall, ib->recall,
               cb->ndcg >= ib->ndcg && cb->recall >= ib->recall ? "met" : "NOT met");
        verdict("bpr peak RSS vs implicit BPR", cb->rss_mb / ib->rss_mb, 1.0, 0);
    }
    if (cb && lb)
        printf("  %-44s %6.2fx  (ndcg@10 %.4f vs %.4f)\n", "bpr throughput vs LightFM BPR", lb->epoch_s / cb->epoch_s, cb->ndcg, lb->ndcg);
    if (ca && ia) {
        verdict("als epoch time vs implicit ALS", ca->epoch_s / ia->epoch_s, 1.0, 0);
        printf("  %-44s ndcg@10 %.4f vs %.4f, recall@10 %.4f vs %.4f\n", "als accuracy at equal epochs vs implicit ALS", ca->ndcg,
               ia->ndcg, ca->recall, ia->recall);
        verdict("als peak RSS vs implicit ALS", ca->rss_mb / ia->rss_mb, 1.0, 0);
    }
    return failed;
}

/* bench_import.c — import speed and memory on a synthetic interactions.tsv, against pandas.
 *
 *   build/current/bench/bench_import [--lines N] [--dir DIR] [--no-pandas]
 *
 * Writes DIR/interactions.tsv with `crossrec synth` parameters (5M lines by default) unless it exists, then
 * runs the import (parse, id maps, both CSRs; not the file write) in a child process, so its peak resident
 * memory is its own, and pandas read_csv(sep='\t') + factorize(user, item) on the same file in another
 * (Debian's python3-pandas). Prints lines/s, seconds, peak memory and the ratio. */
#include "crossrec/data.h"
#include "../src/data/dataset_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    double seconds;
    int64_t n_inter, n_users, n_items, alloc_peak, id_bytes;
} result;

/* Bytes held for external ids: the string pools and the hash maps over them. */
static int64_t id_bytes(const cr_dataset *d) {
    const cr_strpool *p[2] = {&d->users, &d->items};
    const cr_idmap *m[2] = {&d->user_map, &d->item_map};
    int64_t b = 0;
    for (int i = 0; i < 2; i++) b += p[i]->cap_bytes + p[i]->cap_n * 8 + m[i]->cap * (int64_t)sizeof(cr_idmap_slot);
    return b;
}

static int run_import(const char *path, result *r, int64_t *rss) {
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        cr_import_params p = cr_import_default_params();
        p.interactions[p.n_interactions++] = path;
        cr_alloc_reset_peak();
        double t0 = cr_now();
        cr_dataset *d;
        cr_status st = cr_dataset_import(&d, &p, NULL);
        result out = {0};
        out.seconds = cr_now() - t0;
        if (st) {
            fprintf(stderr, "import failed: %s\n", cr_errmsg());
            _exit(1);
        }
        const cr_interactions *v = cr_dataset_inter(d);
        out.n_inter = v->n_inter, out.n_users = v->n_users, out.n_items = v->n_items;
        out.alloc_peak = cr_alloc_get_stats().peak_bytes;
        out.id_bytes = id_bytes(d);
        if (write(fd[1], &out, sizeof out) != (ssize_t)sizeof out) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], r, sizeof *r);
    close(fd[0]);
    int status;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    *rss = (int64_t)ru.ru_maxrss * 1024;
    return got == (ssize_t)sizeof *r && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    int64_t lines = 5000000;
    const char *dir = "bench/out/import";
    int pandas = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lines") && i + 1 < argc) lines = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--no-pandas")) pandas = 0;
        else {
            fprintf(stderr, "usage: bench_import [--lines N] [--dir DIR] [--no-pandas]\n");
            return 2;
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/interactions.tsv", dir);
    struct stat sb;
    cr_synth_params sp = cr_synth_default_params();
    sp.n_inter = lines;
    sp.n_users = lines / 25;
    sp.n_items = lines / 50;
    sp.n_domains = 4;
    char want[64];
    snprintf(want, sizeof want, "%s/.lines-%lld", dir, (long long)lines);
    struct stat marker;
    if (stat(path, &sb) || stat(want, &marker)) {
        printf("writing %s (%lld lines, %lld users, %lld items)...\n", path, (long long)lines, (long long)sp.n_users, (long long)sp.n_items);
        if (cr_synth_write(dir, &sp)) {
            fprintf(stderr, "synth failed: %s\n", cr_errmsg());
            return 1;
        }
        FILE *f = fopen(want, "w");
        if (f) fclose(f);
        stat(path, &sb);
    }
    printf("file: %s, %.1f MB, %lld lines\n", path, (double)sb.st_size / 1e6, (long long)lines);

    result best = {0};
    int64_t rss = 0;
    for (int rep = 0; rep < 3; rep++) {
        result r;
        int64_t rr;
        if (run_import(path, &r, &rr)) {
            fprintf(stderr, "crossrec import failed\n");
            return 1;
        }
        if (rep == 0 || r.seconds < best.seconds) best = r, rss = rr;
    }
    double per = (double)(best.alloc_peak - best.id_bytes) / (double)best.n_inter;
    printf("crossrec import: %.3f s (best of 3), %.2f M lines/s; %lld users, %lld items\n", best.seconds,
           (double)best.n_inter / best.seconds / 1e6, (long long)best.n_users, (long long)best.n_items);
    printf("crossrec memory: peak RSS %.1f MB; allocated peak %.1f MB, of which ids (strings + maps) %.1f MB -> "
           "%.1f bytes per interaction beyond the ids (final layout: 20)\n",
           (double)rss / 1e6, (double)best.alloc_peak / 1e6, (double)best.id_bytes / 1e6, per);
    if (!pandas) return 0;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/pandas_import.py '%s'", path);
    double best_pd = 0;
    int64_t pd_rss = 0;
    for (int rep = 0; rep < 3; rep++) {
        FILE *p = popen(cmd, "r");
        double s = 0;
        long long r = 0, rows = 0;
        if (!p || fscanf(p, "%lf %lld %lld", &s, &r, &rows) != 3) {
            fprintf(stderr, "pandas run failed (is python3-pandas installed? `apt-get install python3-pandas`)\n");
            if (p) pclose(p);
            return 1;
        }
        pclose(p);
        if (rep == 0 || s < best_pd) best_pd = s, pd_rss = r;
    }
    printf("pandas read_csv + factorize: %.3f s (best of 3), %.2f M lines/s, peak RSS %.1f MB\n", best_pd,
           (double)lines / best_pd / 1e6, (double)pd_rss / 1e6);
    printf("ratio: crossrec is %.1fx faster than pandas (target >= 3x)\n", best_pd / best.seconds);
    return 0;
}

/* bench_serve.c — `crossrec serve` under load (issue 7): wrk on loopback posts /v1/recommend, top-10 of the
 * amazon-art-office office items with exclude_seen, for the cold-user test users (history in art only), to a
 * server holding a tower model.
 *
 *   build/current/bench/bench_serve [--seconds 30] [--connections 64] [--server-threads 2] [--wrk-threads 2]
 *                                   [--epochs 1] [--dir bench/out/serve]
 *
 * Run from the repository root (`make bench` does); crossrec is $CROSSREC_BIN, else build/current/crossrec. The
 * model is made once in DIR and reused: `crossrec import ../shared/data/amazon-art-office`, `crossrec split
 * --protocol cold-user --target office --users-file users.tsv`, `crossrec train --model tower --epochs E`. The
 * server runs as its own process (`crossrec serve --port 0 --threads T`); wrk (Debian package) runs a Lua script
 * that cycles through the request bodies of the test users and prints its summary. A 3-second warm-up run is
 * not counted. Prints requests/s, latency p50/p90/p99/max and errors (connect, read, write, timeout, non-200),
 * and the targets (>= 5,000 requests/s, p99 <= 20 ms, no errors). Skips (exit 0) without the shared data or wrk;
 * exits 1 when crossrec fails. The server and wrk share the machine's cores. */
#include "crossrec/core.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_peers.h"

#define MAX_USERS 2000      /* request bodies in the script */

static const char *crossrec_bin(void) {
    const char *b = getenv("CROSSREC_BIN");
    return b && *b ? b : "build/current/crossrec";
}

/* The model, made once: import, cold-user split on office with the upstream users, tower. A kept model that this
 * crossrec cannot answer with (an older format) is made again. */
static int prepare(const char *data, const char *dir, long epochs, char *model, size_t cap) {
    const char *bin = crossrec_bin();
    snprintf(model, cap, "%s/tower-e%ld.crm", dir, epochs);
    if (file_exists(model) && !sh("%s similar '%s' --item \"$(sed -n 2p '%s/items.tsv' | cut -f1)\" -k 1 >/dev/null 2>&1", bin, model, data))
        return 0;
    printf("preparing %s (import, split, train tower: a few minutes)\n", model);
    fflush(stdout);
    if (sh("mkdir -p '%s'", dir) || sh("%s import '%s' -o '%s/aao.crd' -q", bin, data, dir) ||
        sh("%s split '%s/aao.crd' --protocol cold-user --target office --users-file '%s/users.tsv' -o '%s/aao.crs' -q", bin, dir, data, dir) ||
        sh("%s train '%s/aao.crs' --model tower --epochs %ld -o '%s' -q", bin, dir, epochs, model)) {
        fprintf(stderr, "bench_serve: preparing the model failed\n");
        return -1;
    }
    return 0;
}

/* The wrk script: bodies for the users marked test in users.tsv, cycled per wrk thread; done() prints one
 * machine-readable line. */
static int write_script(const char *data, const char *path) {
    char users_path[1100];
    snprintf(users_path, sizeof users_path, "%s/users.tsv", data);
    FILE *in = fopen(users_path, "r"), *out = fopen(path, "w");
    if (!in || !out) {
        if (in) fclose(in);
        if (out) fclose(out);
        return -1;
    }
    fprintf(out, "local bodies = {\n");
    char line[1024];
    int n = 0;
    while (n < MAX_USERS && fgets(line, sizeof line, in)) {
        char user[512], part[64];
        if (sscanf(line, "%511[^\t]\t%63s", user, part) != 2 || strcmp(part, "test")) continue;
        fprintf(out, "  '{\"user\":\"%s\",\"domain\":\"office\",\"k\":10,\"exclude_seen\":true}',\n", user);
        n++;
    }
    fclose(in);
    fprintf(out, "}\n"
                 "local i = 0\n"
                 "wrk.method = 'POST'\n"
                 "wrk.headers['Content-Type'] = 'application/json'\n"
                 "request = function()\n"
                 "  i = i %% #bodies + 1\n"
                 "  return wrk.format(nil, '/v1/recommend', nil, bodies[i])\n"
                 "end\n"
                 "done = function(s, lat, req)\n"
                 "  io.write(string.format('BENCH %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n', s.requests, s.duration,\n"
                 "    s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,\n"
                 "    lat:percentile(50), lat:percentile(90), lat:percentile(99), lat.max, #bodies))\n"
                 "end\n");
    return fclose(out) || n == 0 ? -1 : 0;
}

int main(int argc, char **argv) {
    long seconds = 30, connections = 64, server_threads = 2, wrk_threads = 2, epochs = 1;
    const char *dir = "bench/out/serve";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) seconds = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--connections")) connections = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--server-threads")) server_threads = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--wrk-threads")) wrk_threads = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--epochs")) epochs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else {
            fprintf(stderr, "bench_serve: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const char *shared = getenv("CROSSREC_SHARED_DATA");
    char data[1024];
    snprintf(data, sizeof data, "%s/amazon-art-office", shared && *shared ? shared : "../shared/data");
    if (!file_exists(data)) {
        printf("bench_serve: skipped: %s is absent\n", data);
        return 0;
    }
    if (sh("command -v wrk >/dev/null 2>&1")) {
        printf("bench_serve: skipped: wrk is not installed (apt-get install wrk)\n");
        return 0;
    }
    char model[1024], script[1024], log[1024], url[256] = "";
    if (prepare(data, dir, epochs, model, sizeof model)) return 1;
    snprintf(script, sizeof script, "%s/recommend.lua", dir);
    snprintf(log, sizeof log, "%s/serve.log", dir);
    if (write_script(data, script)) {
        fprintf(stderr, "bench_serve: cannot write %s from %s/users.tsv\n", script, data);
        return 1;
    }

    remove(log);    /* a log of an earlier run would give its address */
    pid_t pid = fork();
    if (pid == 0) {
        char threads[32];
        snprintf(threads, sizeof threads, "%ld", server_threads);
        if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(127);
        execl(crossrec_bin(), "crossrec", "serve", model, "--port", "0", "--threads", threads, (char *)NULL);
        _exit(127);
    }
    for (int w = 0; w < 600 && !url[0]; w++) {
        char *text = slurp(log);
        const char *at = text ? strstr(text, " on http://") : NULL;
        if (at) sscanf(at + 4, "%255[^ ]", url);
        free(text);
        if (!url[0]) usleep(100 * 1000);
    }
    int rc = 1;
    if (!url[0]) {
        fprintf(stderr, "bench_serve: the server did not start:\n");
        print_tail(log, 5);
        goto done;
    }
    char out[1024], cmd[4096];
    snprintf(out, sizeof out, "%s/wrk.txt", dir);
    sh("wrk -t%ld -c%ld -d3s -s '%s' '%s' > /dev/null 2>&1", wrk_threads, connections, script, url);     /* warm-up */
    snprintf(cmd, sizeof cmd, "wrk -t%ld -c%ld -d%lds --timeout 2s -s '%s' '%s' > '%s' 2>&1", wrk_threads, connections, seconds, script, url, out);
    if (sh("%s", cmd)) {
        fprintf(stderr, "bench_serve: wrk failed:\n");
        print_tail(out, 10);
        goto done;
    }
    char *text = slurp(out);
    const char *b = text ? strstr(text, "BENCH ") : NULL;
    long long v[12];
    if (!b || sscanf(b + 6, "%lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                     &v[6], &v[7], &v[8], &v[9], &v[10], &v[11]) != 12) {
        fprintf(stderr, "bench_serve: no summary from wrk:\n");
        print_tail(out, 10);
        free(text);
        goto done;
    }
    free(text);
    double rps = v[0] / (v[1] * 1e-6), p50 = v[7] / 1e3, p90 = v[8] / 1e3, p99 = v[9] / 1e3, mx = v[10] / 1e3;
    long long errors = v[2] + v[3] + v[4] + v[5] + v[6];
    printf("POST /v1/recommend, tower on amazon-art-office, top-10 office items (exclude_seen), %lld cold-user test users\n", v[11]);
    printf("wrk: %ld connections, %ld threads, %ld s; server: %ld threads (same machine, shared cores)\n", connections, wrk_threads,
           seconds, server_threads);
    printf("%-12s %12s %9s %9s %9s %9s %8s\n", "", "requests/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors");
    printf("%-12s %12.0f %9.2f %9.2f %9.2f %9.2f %8lld\n", "crossrec", rps, p50, p90, p99, mx, errors);
    printf("errors: connect %lld, read %lld, write %lld, non-200 %lld, timeout %lld; %lld requests\n", v[2], v[3], v[4], v[5], v[6], v[0]);
    printf("targets: >= 5000 requests/s %s, p99 <= 20 ms %s, no errors %s\n", rps >= 5000 ? "met" : "MISSED", p99 <= 20 ? "met" : "MISSED",
           errors == 0 ? "met" : "MISSED");
    rc = 0;
done:
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return rc;
}

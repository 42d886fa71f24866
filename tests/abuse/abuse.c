/* abuse.c — `crossrec serve` under load and abuse (issue 9), run by `make test-abuse` (short form for CI:
 * `make test-abuse ABUSE=short`).
 *
 *   abuse --crossrec BIN --dir DIR [--short] [--connections N]
 *
 * Makes a small synthetic dataset and two models of it in DIR (bpr, answered through the top-K index, and
 * itemknn, through scoring), records what each model answers for a set of probe users (`crossrec recommend`),
 * then starts `BIN serve` (a build with AddressSanitizer and UBSan: `make test-abuse` builds one) with the
 * file-descriptor limit a login shell gives (soft 1024) and runs four parts against it:
 *   1. load + reload: wrk on /v1/recommend, /v1/similar and /healthz while a client POSTs /v1/reload swapping
 *      the two models back to back, and two checkers compare every answer for a probe user with the answer of
 *      the model the reply names (never a mix, never garbage);
 *   2. slowloris: hundreds of connections sending a request one byte every 2 s (the server's idle timeout is
 *      4 s, so only a deadline on the whole request closes them; the attacker reconnects at once), while a
 *      client measures the latency of normal requests;
 *   3. malformed requests: broken request lines, huge headers, bad methods, bad JSON, bad query strings,
 *      Content-Length lies, truncated bodies, pipelined garbage, each on its own connection: every answer is a
 *      4xx (or the connection is closed), never a 5xx; the probes still answer right afterwards;
 *   4. 1,000 concurrent connections (long form: 2,000; --connections N), each sending requests: all answered
 *      without waiting, so all accepted at once.
 * A thread samples the server's VmRSS throughout. At the end SIGTERM stops the server, which must exit 0
 * with nothing from the sanitizers (LeakSanitizer reports at exit) in DIR/serve.log. One summary line per
 * part; exit status 1 when a check failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVER_TIMEOUT_S 4      /* crossrec serve --timeout */
#define SLOW_BYTE_S 2.0         /* a slowloris client sends one byte this often (under the idle timeout) */
#define N_PROBES 24             /* probe users whose answers are checked */
#define PROBE_K 10
#define INCOMPLETE_WAIT_MS 250  /* how long a malformed request that may be incomplete waits for an answer */
#define MAX_FAIL_LINES 12       /* failure messages printed per part */

typedef struct {
    int is_short;
    double load_s, slow_s;      /* durations of parts 1 and 2 */
    int slow_conns, malformed, concurrent, rounds;
} plan;

static const char *bin, *dir;
static char model_path[2][PATH_MAX + 32];        /* [0] bpr, [1] itemknn */
static const char *model_name[2] = {"bpr", "itemknn"};
static int port;
static pid_t server_pid;
static atomic_int failures, fail_lines;
static atomic_long rss_max_kb, rss_part_max_kb;
static atomic_int stop_sampler;

typedef struct {
    char user[32], domain[32];
    char want[2][1024];         /* the item ids each model answers, comma-joined */
} probe;
static probe probes[N_PROBES];
static int n_probes;
static const char *const domains[] = {"books", "music", "movies"};

/* ---- small helpers ----------------------------------------------------------------------------------- */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fail(const char *fmt, ...) {
    atomic_fetch_add(&failures, 1);
    if (atomic_fetch_add(&fail_lines, 1) >= MAX_FAIL_LINES) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "abuse: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "abuse: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (server_pid > 0) kill(server_pid, SIGKILL);
    exit(1);
}

static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static uint64_t rng_next(uint64_t *s) {     /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_below(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of n values (sorted in place), in ms. */
static double percentile_ms(double *v, long n, double p) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    long at = (long)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[at] * 1e3;
}

/* ---- HTTP client over raw sockets -------------------------------------------------------------------- */

typedef struct {
    int fd;
    char *buf;                  /* bytes received and not consumed yet */
    size_t len, cap;
} conn;

typedef struct {
    int status;                 /* HTTP status; 0: no answer */
    char *body;                 /* NUL-terminated, malloc'ed */
    size_t body_len;
} reply;

static int connect_server(int nonblocking) {
    int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) && !(nonblocking && errno == EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Closing with a reset leaves no TIME_WAIT behind (100k connections would use up the ephemeral ports). */
static void close_reset(int fd) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static void conn_open(conn *c) {
    memset(c, 0, sizeof *c);
    c->fd = connect_server(0);
}

static void conn_close(conn *c) {
    if (c->fd >= 0) close_reset(c->fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* A complete response at the start of buf: its length, 0 when more bytes are needed (closed: the rest of the
 * stream is the body), -1 when it is not HTTP. */
static long parse_response(const char *buf, size_t len, int closed, reply *r) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return closed ? -1 : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) || sscanf(buf + 9, "%3d", &r->status) != 1) return -1;
    size_t head = (size_t)(end - buf) + 4;
    long long content_length = -1;
    for (const char *p = buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p)), p = p ? p + 1 : NULL)
        if (!strncasecmp(p, "Content-Length:", 15)) content_length = atoll(p + 15);
    size_t body = content_length >= 0 ? (size_t)content_length : len - head;
    if (content_length < 0 && !closed) return 0;
    if (head + body > len) return 0;
    r->body = malloc(body + 1);
    memcpy(r->body, buf + head, body);
    r->body[body] = '\0';
    r->body_len = body;
    return (long)(head + body);
}

/* Reads one response (up to timeout_ms). 0 with r filled; -1 closed or reset before a whole response; -2 timed
 * out; -3 not HTTP. */
static int conn_read(conn *c, int timeout_ms, reply *r) {
    memset(r, 0, sizeof *r);
    double deadline = now() + timeout_ms * 1e-3;
    int closed = 0;
    for (;;) {
        long used = c->len ? parse_response(c->buf, c->len, closed, r) : 0;
        if (used < 0) return -3;
        if (used > 0) {
            memmove(c->buf, c->buf + used, c->len - (size_t)used);
            c->len -= (size_t)used;
            return 0;
        }
        if (closed) return -1;
        int left = (int)((deadline - now()) * 1e3);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, left > 0 ? left : 0) <= 0) {
            if (left <= 0) return -2;
            continue;
        }
        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) closed = 1;
        else c->len += (size_t)n;
    }
}

static char *post_request(const char *path, const char *body) {
    char *req;
    if (asprintf(&req, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 path, strlen(body), body) < 0)
        die("out of memory");
    return req;
}

static const char get_healthz[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/* One request on a keep-alive connection (reopened when the server closed it): the status, 0 on no answer. */
static int exchange(conn *c, const char *req, int timeout_ms, reply *r) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0) conn_open(c);
        if (c->fd < 0) return 0;
        if (!send_all(c->fd, req, strlen(req)) && !conn_read(c, timeout_ms, r)) return r->status;
        conn_close(c);
    }
    memset(r, 0, sizeof *r);
    return 0;
}

/* ---- probes: what each model answers ---------------------------------------------------------------- */

static char *probe_body(const probe *p) {
    char *b;
    if (asprintf(&b, "{\"user\":\"%s\",\"domain\":\"%s\",\"k\":%d}", p->user, p->domain, PROBE_K) < 0) die("out of memory");
    return b;
}

/* The item ids of a JSON answer's "items", comma-joined, and its "model" (NULL when not JSON or no list). */
static int answer_items(const char *json, char *ids, size_t cap, char *model, size_t model_cap) {
    json_t *j = json_loads(json, 0, NULL);
    json_t *items = json_object_get(j, "items");
    if (!j || !json_is_array(items)) {
        json_decref(j);
        return -1;
    }
    size_t n = 0;
    ids[0] = '\0';
    for (size_t x = 0; x < json_array_size(items); x++) {
        const char *id = json_string_value(json_object_get(json_array_get(items, x), "item"));
        n += (size_t)snprintf(ids + n, n < cap ? cap - n : 0, "%s%s", x ? "," : "", id ? id : "?");
    }
    if (model) snprintf(model, model_cap, "%s", json_is_string(json_object_get(j, "model")) ? json_string_value(json_object_get(j, "model")) : "");
    json_decref(j);
    return n < cap ? 0 : -1;
}

/* Probe users u000000.. with a domain each; their answers from `crossrec recommend --format jsonl`. */
static void make_probes(void) {
    char users[1200];
    snprintf(users, sizeof users, "%s/probes.tsv", dir);
    for (int m = 0; m < 2; m++)
        for (int t = 0; t < 3; t++) {
            FILE *f = fopen(users, "w");
            if (!f) die("%s: cannot write", users);
            fprintf(f, "user\n");
            for (int p = t; p < N_PROBES; p += 3) fprintf(f, "u%06d\n", p);
            fclose(f);
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "'%s' recommend '%s' --users '%s' --domain %s -k %d --format jsonl", bin, model_path[m], users,
                     domains[t], PROBE_K);
            FILE *out = popen(cmd, "r");
            char line[65536];
            for (int p = t; p < N_PROBES; p += 3) {
                if (!out || !fgets(line, sizeof line, out)) die("%s: no answer for u%06d", cmd, p);
                snprintf(probes[p].user, sizeof probes[p].user, "u%06d", p);
                snprintf(probes[p].domain, sizeof probes[p].domain, "%s", domains[t]);
                if (answer_items(line, probes[p].want[m], sizeof probes[p].want[m], NULL, 0) || !probes[p].want[m][0])
                    die("%s: u%06d: %s", cmd, p, line);
            }
            if (pclose(out)) die("%s failed", cmd);
        }
    n_probes = N_PROBES;
}

/* Checks a probe's answer: HTTP 200, JSON, and the items of the model it names. 0 when right. */
static int check_probe(const probe *p, int status, const reply *r, const char *part) {
    char ids[1024], model[32];
    if (status != 200) {
        fail("%s: %s/%s: HTTP %d: %.200s", part, p->user, p->domain, status, r->body ? r->body : "(no answer)");
        return -1;
    }
    if (answer_items(r->body, ids, sizeof ids, model, sizeof model)) {
        fail("%s: %s/%s: not a list: %.200s", part, p->user, p->domain, r->body);
        return -1;
    }
    for (int m = 0; m < 2; m++)
        if (!strcmp(model, model_name[m])) {
            if (strcmp(ids, p->want[m])) {
                fail("%s: %s/%s: %s answered %s, want %s", part, p->user, p->domain, model, ids, p->want[m]);
                return -1;
            }
            return 0;
        }
    fail("%s: %s/%s: unknown model '%s'", part, p->user, p->domain, model);
    return -1;
}

/* Every probe once on a fresh connection; the number answered right. */
static int check_all_probes(const char *part) {
    int ok = 0;
    conn c;
    conn_open(&c);
    for (int p = 0; p < n_probes; p++) {
        char *body = probe_body(&probes[p]), *req = post_request("/v1/recommend", body);
        reply r;
        int status = exchange(&c, req, 10000, &r);
        ok += !check_probe(&probes[p], status, &r, part);
        free(r.body), free(req), free(body);
    }
    conn_close(&c);
    return ok;
}

/* ---- the server -------------------------------------------------------------------------------------- */

static void prepare(void) {
    char d[1100];
    snprintf(d, sizeof d, "%s", dir);
    if (sh("mkdir -p '%s'", d) ||
        sh("'%s' synth -o '%s/synth' --users 1000 --items 600 --interactions 20000 --domains 3 >/dev/null", bin, d) ||
        sh("'%s' import '%s/synth' -o '%s/data.crd' -q", bin, d, d) ||
        sh("'%s' split '%s/data.crd' --protocol warm -o '%s/warm.crs' -q", bin, d, d) ||
        sh("'%s' train '%s/warm.crs' --model bpr --dim 16 --epochs 3 -o '%s' -q", bin, d, model_path[0]) ||
        sh("'%s' train '%s/warm.crs' --model itemknn -o '%s' -q", bin, d, model_path[1]))
        die("preparing the dataset and models in %s failed", d);
}

static void start_server(void) {
    int out[2];
    if (pipe(out)) die("pipe: %s", strerror(errno));
    char log[1200], timeout[16];
    snprintf(log, sizeof log, "%s/serve.log", dir);
    snprintf(timeout, sizeof timeout, "%d", SERVER_TIMEOUT_S);
    server_pid = fork();
    if (server_pid < 0) die("fork: %s", strerror(errno));
    if (server_pid == 0) {
        /* the descriptor limit of a login shell: the server must raise its own */
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_max > 1024) rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(127);
        dup2(out[1], 1), dup2(fd, 2);
        close(out[0]), close(out[1]), close(fd);
        execl(bin, bin, "serve", model_path[0], "--port", "0", "--threads", "2", "--timeout", timeout, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[1024];
    if (!f || !fgets(line, sizeof line, f)) die("the server did not start (see %s)", log);
    const char *at = strstr(line, "http://127.0.0.1:");
    if (!at || (port = atoi(at + 17)) <= 0) die("the server's first line has no address: %s", line);
    fclose(f);
}

static long server_rss_kb(void) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)server_pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

static void *rss_sampler(void *arg) {
    while (!atomic_load(&stop_sampler)) {
        long kb = server_rss_kb();
        if (kb > atomic_load(&rss_max_kb)) atomic_store(&rss_max_kb, kb);
        if (kb > atomic_load(&rss_part_max_kb)) atomic_store(&rss_part_max_kb, kb);
        usleep(100 * 1000);
    }
    return NULL;
}

/* The part's maximum RSS in MiB, and a fresh maximum for the next part. */
static double part_rss_mb(void) {
    long kb = atomic_exchange(&rss_part_max_kb, server_rss_kb());
    return (double)kb / 1024.0;
}

static int server_alive(void) { return waitpid(server_pid, NULL, WNOHANG) == 0; }

/* ---- part 1: load while reloading -------------------------------------------------------------------- */

static atomic_int load_stop;
static atomic_long checked, reloads_ok, reloads_bad;

static void *reloader(void *arg) {
    conn c = {.fd = -1};
    for (int k = 1; !atomic_load(&load_stop); k++) {
        char body[1200], *req;
        snprintf(body, sizeof body, "{\"model\":\"%s\"}", model_path[k % 2]);
        req = post_request("/v1/reload", body);
        reply r;
        int status = exchange(&c, req, 30000, &r);
        char want[64];
        snprintf(want, sizeof want, "\"model\":\"%s\"", model_name[k % 2]);
        if (status == 200 && r.body && strstr(r.body, want)) {
            atomic_fetch_add(&reloads_ok, 1);
        } else {
            atomic_fetch_add(&reloads_bad, 1);
            fail("load: reload %d: HTTP %d: %.200s", k, status, r.body ? r.body : "(no answer)");
        }
        free(r.body), free(req);
    }
    conn_close(&c);
    return NULL;
}

static void *checker(void *arg) {
    uint64_t seed = (uint64_t)(intptr_t)arg;
    conn c = {.fd = -1};
    while (!atomic_load(&load_stop)) {
        const probe *p = &probes[rng_below(&seed, n_probes)];
        char *body = probe_body(p), *req = post_request("/v1/recommend", body);
        reply r;
        int status = exchange(&c, req, 30000, &r);
        check_probe(p, status, &r, "load");
        atomic_fetch_add(&checked, 1);
        free(r.body), free(req), free(body);
    }
    conn_close(&c);
    return NULL;
}

/* wrk's Lua script: every probe's recommend, similar items, /healthz, in turn; done() prints one line. */
static void write_wrk_script(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) die("%s: cannot write", path);
    fprintf(f, "local h = {['Content-Type'] = 'application/json'}\nlocal reqs = {\n");
    for (int p = 0; p < n_probes; p++)
        fprintf(f, "  wrk.format('POST', '/v1/recommend', h, '{\"user\":\"%s\",\"domain\":\"%s\",\"k\":%d,\"exclude_seen\":true}'),\n",
                probes[p].user, probes[p].domain, PROBE_K);
    for (int i = 0; i < 20; i++)
        fprintf(f, "  wrk.format('POST', '/v1/similar', h, '{\"item\":\"i%06d\",\"domain\":\"%s\",\"k\":5}'),\n", i * 7, domains[i % 3]);
    fprintf(f, "  wrk.format('GET', '/healthz'),\n}\n"
               "local i = 0\n"
               "request = function()\n  i = i %% #reqs + 1\n  return reqs[i]\nend\n"
               "done = function(s, lat, req)\n"
               "  io.write(string.format('WRK %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n', s.requests, s.duration, s.errors.connect,\n"
               "    s.errors.read, s.errors.write, s.errors.status, s.errors.timeout, lat:percentile(99), lat.max))\n"
               "end\n");
    fclose(f);
}

static void part_load(const plan *pl) {
    char script[1200], cmd[4096], line[512];
    snprintf(script, sizeof script, "%s/load.lua", dir);
    write_wrk_script(script);
    atomic_store(&load_stop, 0);
    pthread_t rl, ck[2];
    pthread_create(&rl, NULL, reloader, NULL);
    for (int k = 0; k < 2; k++) pthread_create(&ck[k], NULL, checker, (void *)(intptr_t)(k + 1));
    snprintf(cmd, sizeof cmd, "wrk -t1 -c32 -d%ds --timeout 10s -s '%s' http://127.0.0.1:%d/ 2>&1", (int)pl->load_s, script, port);
    FILE *w = popen(cmd, "r");
    long long requests = -1, duration_us = 1, e_connect = 0, e_read = 0, e_write = 0, e_status = 0, e_timeout = 0, p99_us = 0, max_us = 0;
    while (w && fgets(line, sizeof line, w))
        if (sscanf(line, "WRK %lld %lld %lld %lld %lld %lld %lld %lld %lld", &requests, &duration_us, &e_connect, &e_read, &e_write,
                   &e_status, &e_timeout, &p99_us, &max_us) != 9)
            fputs(line, stderr);
    if (!w || pclose(w) || requests < 0) fail("load: wrk failed (%s)", cmd);
    atomic_store(&load_stop, 1);
    pthread_join(rl, NULL);
    for (int k = 0; k < 2; k++) pthread_join(ck[k], NULL);
    long long errors = e_connect + e_read + e_write + e_status + e_timeout;
    if (errors) fail("load: wrk: %lld errors (connect %lld, read %lld, write %lld, status %lld, timeout %lld)", errors, e_connect, e_read,
                     e_write, e_status, e_timeout);
    if (atomic_load(&reloads_ok) < 2) fail("load: only %ld reloads", atomic_load(&reloads_ok));
    printf("part 1 load+reload: %lld wrk requests (%.0f/s, p99 %.1f ms, max %.1f ms), %lld errors; %ld answers checked against the "
           "models; %ld reloads, %ld failed; max RSS %.1f MiB\n",
           requests, (double)requests / ((double)duration_us * 1e-6), (double)p99_us * 1e-3, (double)max_us * 1e-3, errors,
           atomic_load(&checked), atomic_load(&reloads_ok), atomic_load(&reloads_bad), part_rss_mb());
}

/* ---- part 2: slowloris ------------------------------------------------------------------------------- */

static atomic_int slow_stop;
static atomic_long normal_ok, normal_bad;
static double *normal_lat;
static atomic_long n_normal_lat;
#define MAX_LAT 1000000

static void *normal_client(void *arg) {
    uint64_t seed = 99;
    while (!atomic_load(&slow_stop)) {
        const probe *p = &probes[rng_below(&seed, n_probes)];
        char *body = probe_body(p), *req = post_request("/v1/recommend", body);
        double t0 = now();
        conn c;
        conn_open(&c);
        reply r = {0};
        int status = c.fd >= 0 && !send_all(c.fd, req, strlen(req)) && !conn_read(&c, 10000, &r) ? r.status : 0;
        double t = now() - t0;
        conn_close(&c);
        if (!check_probe(p, status, &r, "slowloris: normal request")) atomic_fetch_add(&normal_ok, 1);
        else atomic_fetch_add(&normal_bad, 1);
        long at = atomic_fetch_add(&n_normal_lat, 1);
        if (at < MAX_LAT) normal_lat[at] = t;
        free(r.body), free(req), free(body);
        usleep(20 * 1000);
    }
    return NULL;
}

typedef struct {
    int fd;
    size_t sent;                /* bytes of the request sent */
    double opened, next;        /* when it connected; when its next byte goes */
} slow_conn;

static void part_slowloris(const plan *pl) {
    /* half send the head slowly; half send the head at once and the body slowly */
    const char *req = "POST /v1/recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n"
                      "{\"user\":\"u000001\",\"domain\":\"books\",\"k\":10,\"exclude_seen\":false,\"with_history\":false}";
    size_t head = strstr(req, "\r\n\r\n") + 4 - req;
    int n = pl->slow_conns;
    slow_conn *sc = calloc((size_t)n, sizeof *sc);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    normal_lat = malloc(MAX_LAT * sizeof *normal_lat);
    uint64_t seed = 7;
    long opened = 0, closed_by_server = 0, refused = 0, answered = 0;
    double longest = 0, t_end = now() + pl->slow_s;
    for (int k = 0; k < n; k++) sc[k].fd = -1;
    atomic_store(&slow_stop, 0);
    pthread_t normal;
    int normal_started = 0;
    while (now() < t_end) {
        double t = now();
        for (int k = 0; k < n; k++) {
            if (sc[k].fd < 0) {
                /* (re)connect at once, like an attacker keeping its connections */
                if ((sc[k].fd = connect_server(0)) < 0) {
                    refused++;
                    continue;
                }
                opened++;
                sc[k].sent = 0;
                sc[k].opened = t;
                sc[k].next = t + SLOW_BYTE_S * (double)rng_below(&seed, 1000) / 1000.0;
                if (k % 2 && send_all(sc[k].fd, req, head) == 0) sc[k].sent = head;
            }
            if (t >= sc[k].next && sc[k].sent < strlen(req)) {
                send(sc[k].fd, req + sc[k].sent, 1, MSG_NOSIGNAL);
                sc[k].sent++;
                sc[k].next = t + SLOW_BYTE_S;
            }
            pf[k] = (struct pollfd){.fd = sc[k].fd, .events = POLLIN};
        }
        if (!normal_started && t > t_end - pl->slow_s + 1.0) {
            /* the attack is in place: measure normal requests from now on */
            pthread_create(&normal, NULL, normal_client, NULL);
            normal_started = 1;
        }
        poll(pf, (nfds_t)n, 100);
        for (int k = 0; k < n; k++) {
            if (sc[k].fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t got = recv(sc[k].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got > 0) answered++;    /* the server answered a partial request: counted, and the connection dropped */
            else closed_by_server++;
            double lived = now() - sc[k].opened;
            if (lived > longest) longest = lived;
            close_reset(sc[k].fd);
            sc[k].fd = -1;
        }
    }
    atomic_store(&slow_stop, 1);
    if (normal_started) pthread_join(normal, NULL);
    double t = now();
    for (int k = 0; k < n; k++)
        if (sc[k].fd >= 0) {
            if (t - sc[k].opened > longest) longest = t - sc[k].opened;
            close_reset(sc[k].fd);
        }
    long nl = atomic_load(&n_normal_lat);
    if (nl > MAX_LAT) nl = MAX_LAT;
    double p50 = percentile_ms(normal_lat, nl, 50), p99 = percentile_ms(normal_lat, nl, 99);
    /* a connection must not outlive the timeout by more than the deadline's check interval and scheduling */
    double allowed = SERVER_TIMEOUT_S + 2.5;
    if (longest > allowed) fail("slowloris: a slow connection stayed open %.1f s (server timeout %d s)", longest, SERVER_TIMEOUT_S);
    if (closed_by_server == 0) fail("slowloris: the server closed no slow connection");
    if (answered) fail("slowloris: %ld partial requests were answered", answered);
    if (atomic_load(&normal_bad)) fail("slowloris: %ld normal requests failed", atomic_load(&normal_bad));
    if (atomic_load(&normal_ok) < 10) fail("slowloris: only %ld normal requests answered", atomic_load(&normal_ok));
    if (p99 > 1000) fail("slowloris: p99 latency of normal requests %.1f ms", p99);
    printf("part 2 slowloris: %d slow connections held (%ld opened, %ld closed by the server, longest %.1f s, %ld refused), "
           "%ld normal requests answered right, %ld failed, p50 %.1f ms, p99 %.1f ms; max RSS %.1f MiB\n",
           n, opened, closed_by_server, longest, refused, atomic_load(&normal_ok), atomic_load(&normal_bad), p50, p99, part_rss_mb());
    free(sc), free(pf), free(normal_lat);
}

/* ---- part 3: malformed requests ---------------------------------------------------------------------- */

/* What a malformed request may get: a 4xx or a closed connection; a 2xx for some that libmicrohttpd reads as a
 * request after all (an HTTP/0.9-style line, a URI cut at a NUL, a query string on a GET, which is ignored);
 * a 505 for an unknown HTTP version (libmicrohttpd's answer, as RFC 9110 says). No other 5xx. */
enum { ALLOW_4XX = 1, ALLOW_CLOSE = 2, ALLOW_2XX = 4, ALLOW_505 = 8 };

typedef struct {
    char *bytes;
    size_t len;
    int allow;
    int incomplete;             /* libmicrohttpd may take it for the start of a request and wait for the rest */
    const char *kind;
} bad_request;

static const char *const kinds[] = {"request line", "header", "method", "JSON body", "field values", "query string",
                                    "length lie", "truncated", "pipelined", "chunked"};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* A growable byte string. */
typedef struct {
    char *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}
static void putf(bytes *b, const char *fmt, ...) {
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) die("out of memory");
    put(b, s, (size_t)n);
    free(s);
}
static void put_rep(bytes *b, char c, size_t n) {
    for (size_t k = 0; k < n; k++) put(b, &c, 1);
}
static void put_random(bytes *b, uint64_t *s, size_t n) {
    for (size_t k = 0; k < n; k++) {
        char c = (char)rng_next(s);
        put(b, &c, 1);
    }
}

static void post_json(bytes *b, const char *path, const char *body, size_t len) {
    putf(b, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", path, len);
    put(b, body, len);
}

/* A JSON body for /v1/recommend with one field's value replaced by a hostile one. */
static void hostile_fields(bytes *b, uint64_t *s) {
    static const char *const values[] = {
        "\"k\":-1", "\"k\":0", "\"k\":1001", "\"k\":99999999999999999999999", "\"k\":-9223372036854775808", "\"k\":1e400",
        "\"k\":NaN", "\"k\":1.5", "\"k\":\"10\"", "\"k\":[]", "\"k\":{}", "\"user\":\"nobody\"",
        "\"user\":\"\"", "\"user\":\"u\\u0000000001\"", "\"user\":\"\xff\xfe\"", "\"user\":\"\xc0\xaf\"", "\"user\":\"\\ud800\"",
        "\"user\":123", "\"user\":true", "\"domain\":\"jazz\"", "\"domain\":\"\"", "\"domain\":\"books\\u0000\"",
        "\"history\":[\"nothing\"]", "\"history\":[]", "\"history\":[1,2]", "\"history\":\"i000001\"", "\"history\":[null]",
        "\"exclude_seen\":1", "\"exclude_seen\":\"yes\"", "\"with_history\":[]", "\"extra\":1", "\"user\":\"u000001\",\"user\":\"u000002\"",
    };
    int v = rng_below(s, (int)(sizeof values / sizeof values[0]));
    bytes j = {0};
    if (strstr(values[v], "\"user\"") || strstr(values[v], "\"history\"")) putf(&j, "{%s,\"domain\":\"books\"}", values[v]);
    else if (strstr(values[v], "\"domain\"")) putf(&j, "{\"user\":\"u000001\",%s}", values[v]);
    else putf(&j, "{\"user\":\"u000001\",\"domain\":\"books\",%s}", values[v]);
    if (rng_below(s, 4) == 0) {
        /* the same through /v1/similar */
        free(j.p);
        j = (bytes){0};
        static const char *const sim[] = {"{\"item\":\"nothing\"}", "{\"item\":\"i000001\",\"k\":0}", "{\"item\":\"i000001\",\"domain\":\"jazz\"}",
                                          "{\"item\":\"\xff\"}", "{\"item\":null}", "{\"item\":\"i000001\",\"k\":1e999}", "{}"};
        putf(&j, "%s", sim[rng_below(s, 7)]);
        post_json(b, "/v1/similar", j.p, j.len);
    } else {
        post_json(b, "/v1/recommend", j.p, j.len);
    }
    free(j.p);
}

static void make_bad_request(bad_request *q, uint64_t *s) {
    bytes b = {0};
    q->allow = ALLOW_4XX | ALLOW_CLOSE;
    q->incomplete = 0;
    int kind = rng_below(s, N_KINDS);
    q->kind = kinds[kind];
    const char *good = "{\"user\":\"u000001\",\"domain\":\"books\",\"k\":5}";
    switch (kind) {
    case 0: {   /* broken request lines (sizeof: some hold a NUL) */
#define LINE(text) {text, sizeof text - 1}
        static const struct {
            const char *text;
            size_t len;
        } lines[] = {
            LINE("GET\r\n\r\n"), LINE("GET /\r\n\r\n"), LINE("GET / HTTP/1.1 extra\r\n\r\n"), LINE(" GET / HTTP/1.1\r\n\r\n"),
            LINE("GET  / HTTP/1.1\r\n\r\n"), LINE("GET / HTTP/1.x\r\n\r\n"), LINE("GET / FTP/1.1\r\n\r\n"), LINE("\r\n\r\n\r\n"),
            LINE("GET /\x01\x02 HTTP/1.1\r\n\r\n"), LINE("GET /healthz HTTP/1.1\rHost: x\r\r"),
            LINE("G\0ET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), LINE("GET /\0healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
            LINE("GET /healthz HTTP/1.1\r\nHost: x\r\n"), LINE("GET /healthz HTTP/1.1\nHost: x\n\n"),
            LINE("GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n"), LINE("GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
            LINE("GET /healthz HTTP/1.1\r\n\r\n"), LINE("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
        };
#undef LINE
        const int n_lines = (int)(sizeof lines / sizeof lines[0]);
        int l = rng_below(s, n_lines + 2);
        if (l < n_lines) {
            put(&b, lines[l].text, lines[l].len);
            if (l == n_lines - 1) q->allow |= ALLOW_505;
            q->incomplete = 1;      /* a bare CR, empty lines, a head without its end */
            /* libmicrohttpd is lenient: "GET /" alone, extra spaces, LF line ends, a URI cut at a NUL are requests */
            q->allow |= ALLOW_2XX;
        } else if (l == n_lines) {
            put_random(&b, s, 1 + (size_t)rng_below(s, 300));
            put(&b, "\r\n\r\n", 4);
            q->incomplete = 1;
        } else {
            /* a URI over the header limit */
            putf(&b, "GET /");
            put_rep(&b, 'a', 40000 + (size_t)rng_below(s, 80000));
            putf(&b, " HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        break;
    }
    case 1: {   /* headers: huge, many, without a colon, with control bytes */
        putf(&b, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
        q->allow |= ALLOW_2XX;      /* headers within libmicrohttpd's 32 KiB that it reads past */
        int h = rng_below(s, 5);
        if (h == 0) {
            putf(&b, "X-Big: ");
            put_rep(&b, 'b', 20000 + (size_t)rng_below(s, 100000));
            putf(&b, "\r\n");
        } else if (h == 1) {
            for (int k = 0; k < 3000; k++) putf(&b, "X-%d: %d\r\n", k, k);
        } else if (h == 2) {
            putf(&b, "No colon here\r\n");
        } else if (h == 3) {
            put(&b, "X-Nul: a\0b\r\n", 12);
        } else {
            putf(&b, " continued: line\r\n\tfolded\r\n");
        }
        putf(&b, "\r\n");
        break;
    }
    case 2: {   /* methods */
        static const char *const methods[] = {"FOO", "get", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "POST\x7f", "G@T"};
        int m = rng_below(s, (int)(sizeof methods / sizeof methods[0]) + 1);
        if (m < (int)(sizeof methods / sizeof methods[0])) {
            putf(&b, "%s /v1/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", methods[m], rng_below(s, 2) ? "recommend" : "model");
        } else {
            put_rep(&b, 'M', 1000 + (size_t)rng_below(s, 5000));
            putf(&b, " /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        break;
    }
    case 3: {   /* invalid JSON: mutations of a good body, deep nesting, huge strings, bad UTF-8 */
        int j = rng_below(s, 6);
        bytes body = {0};
        if (j == 0) {
            putf(&body, "%s", good);
            int flips = 1 + rng_below(s, 4);
            for (int k = 0; k < flips; k++) body.p[rng_below(s, (int)body.len)] = (char)rng_next(s);
            q->allow |= ALLOW_2XX;  /* a flip may leave valid JSON ("k":5 -> "k":7) */
        } else if (j == 1) {
            putf(&body, "%s", good);
            body.len = (size_t)rng_below(s, (int)body.len);
        } else if (j == 2) {
            int depth = 1000 + rng_below(s, 100000);
            put_rep(&body, '[', (size_t)depth);
            put_rep(&body, ']', (size_t)depth);
        } else if (j == 3) {
            putf(&body, "{\"user\":\"");
            put_rep(&body, 'u', 100000 + (size_t)rng_below(s, 800000));
            putf(&body, "\",\"domain\":\"books\"}");
        } else if (j == 4) {
            putf(&body, "{\"user\":\"");
            put_random(&body, s, 1 + (size_t)rng_below(s, 64));
            putf(&body, "\",\"domain\":\"books\"}");
        } else {
            put_random(&body, s, (size_t)rng_below(s, 2000));
        }
        const char *path = rng_below(s, 3) ? "/v1/recommend" : rng_below(s, 2) ? "/v1/similar" : "/v1/reload";
        if (body.len == 0 && !strcmp(path, "/v1/reload")) q->allow |= ALLOW_2XX;     /* an empty body reloads the model */
        post_json(&b, path, body.p ? body.p : "", body.len);
        free(body.p);
        break;
    }
    case 4:     /* well-formed JSON with hostile values */
        hostile_fields(&b, s);
        break;
    case 5: {   /* query strings and percent-encoding (GET ignores the query: 2xx allowed) */
        static const char *const urls[] = {
            "/healthz?%", "/healthz?%zz=1", "/healthz?a=%00", "/healthz?a=%ff%fe", "/v1/model?k=-1", "/v1/model?k=99999999999999999999",
            "/healthz?a=1&a=2&&&==", "/healthz?\xff", "/%68ealthz", "/healthz%00", "/healthz/../healthz", "/v1/recommend%3f",
            "/%", "/%%", "/v1//model", "/v1/model/", "/healthz#frag", "/metrics?x=\xc0\xaf",
        };
        int u = rng_below(s, (int)(sizeof urls / sizeof urls[0]) + 1);
        if (u < (int)(sizeof urls / sizeof urls[0])) {
            putf(&b, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", urls[u]);
        } else {
            putf(&b, "GET /healthz?q=");
            put_rep(&b, 'q', 10000 + (size_t)rng_below(s, 60000));
            putf(&b, " HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        q->allow |= ALLOW_2XX;
        break;
    }
    case 6: {   /* Content-Length lies and nonsense */
        q->incomplete = 1;
        static const char *const lengths[] = {"-1", "abc", "99999999999999999999999", "18446744073709551615", "9223372036854775807",
                                              "2000000", "1 2", "+5", "0x10", " 10", ""};
        int l = rng_below(s, (int)(sizeof lengths / sizeof lengths[0]) + 3);
        if (l < (int)(sizeof lengths / sizeof lengths[0])) {
            putf(&b, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s", lengths[l], good);
        } else if (l == (int)(sizeof lengths / sizeof lengths[0])) {
            /* says less than sent: the rest is read as the next request (garbage) */
            putf(&b, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n%s", good);
        } else if (l == (int)(sizeof lengths / sizeof lengths[0]) + 1) {
            /* two lengths */
            putf(&b, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\nContent-Length: %zu\r\n\r\n%s",
                 strlen(good), good);
        } else {
            /* a length and chunked */
            putf(&b, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n");
        }
        break;
    }
    case 7: {   /* truncated: the connection closes (for writing) in the middle */
        q->incomplete = 1;
        bytes full = {0};
        post_json(&full, "/v1/recommend", good, strlen(good));
        size_t cut = 1 + (size_t)rng_below(s, (int)full.len - 1);
        put(&b, full.p, cut);
        free(full.p);
        break;
    }
    case 8: {   /* pipelined: a good request, then garbage on the same connection */
        post_json(&b, "/v1/recommend", good, strlen(good));
        put_random(&b, s, 1 + (size_t)rng_below(s, 500));
        putf(&b, "\r\n\r\n");
        q->allow |= ALLOW_2XX;  /* the first answer is the good request's */
        break;
    }
    default: {  /* chunked bodies: bad sizes, huge sizes, missing terminators */
        q->incomplete = 1;
        static const char *const chunks[] = {"zz\r\n{}\r\n0\r\n\r\n", "ffffffffffffffffff\r\n{}\r\n0\r\n\r\n", "2\r\n{}\r\n", "-2\r\n{}\r\n0\r\n\r\n",
                                             "2;ext=1\r\n{}\r\n0\r\n\r\n", "3\r\n{}\r\n0\r\n\r\n", "100000\r\n{}"};
        int c = rng_below(s, (int)(sizeof chunks / sizeof chunks[0]));
        putf(&b, "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%s", chunks[c]);
        break;
    }
    }
    q->bytes = b.p;
    q->len = b.len;
}

typedef struct {
    uint64_t seed;
    long count;
    long by_class[6];           /* 1xx..5xx by hundreds (index 1..5), [0]: closed without an answer */
    long timed_out, not_http, version_505, cut_short;
} bad_worker;

static void *bad_requests(void *arg) {
    bad_worker *w = arg;
    for (long k = 0; k < w->count; k++) {
        bad_request q;
        make_bad_request(&q, &w->seed);
        conn c;
        conn_open(&c);
        if (c.fd < 0) {
            fail("malformed: cannot connect: %s", strerror(errno));
            free(q.bytes);
            continue;
        }
        /* all of it (the server may close before), then the end of the stream. libmicrohttpd keeps a connection
         * whose request is incomplete until its timeout even after the client's end of stream, so a request that
         * may be incomplete gets INCOMPLETE_WAIT_MS, then the connection is reset (as a client giving up) */
        send_all(c.fd, q.bytes, q.len);
        shutdown(c.fd, SHUT_WR);
        reply r;
        int got = conn_read(&c, q.incomplete ? INCOMPLETE_WAIT_MS : (SERVER_TIMEOUT_S + 6) * 1000, &r);
        int cls = got == 0 ? r.status / 100 : 0;
        if (got == -2 && q.incomplete) {
            w->cut_short++;
        } else if (got == -2) {
            w->timed_out++;
            fail("malformed (%s): no answer and not closed within %d s: %.80s", q.kind, SERVER_TIMEOUT_S + 6, q.bytes);
        } else if (got == -3) {
            w->not_http++;
            fail("malformed (%s): the answer is not HTTP", q.kind);
        } else if (cls < 0 || cls > 5) {
            fail("malformed (%s): status %d", q.kind, r.status);
        } else {
            w->by_class[cls]++;
            int is_505 = r.status == 505 && (q.allow & ALLOW_505);
            w->version_505 += is_505;
            int ok = (cls == 4 && (q.allow & ALLOW_4XX)) || (cls == 0 && (q.allow & ALLOW_CLOSE)) || (cls == 2 && (q.allow & ALLOW_2XX)) || is_505;
            if (!ok) fail("malformed (%s): HTTP %d (%.120s) for %.120s", q.kind, r.status, r.body ? r.body : "", q.bytes);
        }
        free(r.body);
        conn_close(&c);
        free(q.bytes);
    }
    return NULL;
}

static void part_malformed(const plan *pl) {
    enum { WORKERS = 8 };       /* most of the time each waits for the server */
    bad_worker w[WORKERS];
    pthread_t th[WORKERS];
    double t0 = now();
    long half_rss = 0;
    for (int k = 0; k < WORKERS; k++) {
        memset(&w[k], 0, sizeof w[k]);
        w[k].seed = 1000 + (uint64_t)k;
        w[k].count = pl->malformed / WORKERS / 2 + (k < (pl->malformed / 2) % WORKERS);
    }
    /* two halves: the RSS after the second must not have grown much beyond the RSS after the first */
    long totals[6] = {0}, timed_out = 0, not_http = 0, version_505 = 0, cut_short = 0;
    for (int half = 0; half < 2; half++) {
        for (int k = 0; k < WORKERS; k++) pthread_create(&th[k], NULL, bad_requests, &w[k]);
        for (int k = 0; k < WORKERS; k++) pthread_join(th[k], NULL);
        if (half == 0) half_rss = server_rss_kb();
    }
    long end_rss = server_rss_kb();
    for (int k = 0; k < WORKERS; k++) {
        for (int c = 0; c < 6; c++) totals[c] += w[k].by_class[c];
        timed_out += w[k].timed_out, not_http += w[k].not_http, version_505 += w[k].version_505, cut_short += w[k].cut_short;
    }
    long sent = totals[0] + totals[1] + totals[2] + totals[3] + totals[4] + totals[5] + timed_out + not_http + cut_short;
    if (!server_alive()) fail("malformed: the server died");
    if (totals[5] > version_505) fail("malformed: %ld answers were 5xx", totals[5] - version_505);
    int right = check_all_probes("after malformed");
    if (right != n_probes) fail("malformed: afterwards %d of %d probes answered right", right, n_probes);
    double grown_mb = (double)(end_rss - half_rss) / 1024.0;
    if (grown_mb > 48) fail("malformed: the RSS grew %.1f MiB over the second half", grown_mb);
    printf("part 3 malformed: %ld requests in %.1f s: %ld 4xx, %ld closed, %ld 2xx (allowed), %ld 505 (HTTP/9.9), %ld other 5xx, "
           "%ld unanswered, %ld incomplete (reset by the client after %d ms); probes right afterwards %d/%d; RSS %.1f MiB after half, %.1f MiB at the end; "
           "max RSS %.1f MiB\n",
           sent, now() - t0, totals[4], totals[0], totals[2], version_505, totals[5] - version_505, timed_out + not_http, cut_short, INCOMPLETE_WAIT_MS, right,
           n_probes, (double)half_rss / 1024.0, (double)end_rss / 1024.0, part_rss_mb());
}

/* ---- part 4: many concurrent connections ------------------------------------------------------------- */

typedef struct {
    conn c;
    int state;                  /* 0 connecting, 1 waiting for an answer, 2 done */
    int done_requests, probe;
    char *req;
    double sent_at;             /* when its request went */
} client;

static void part_concurrent(const plan *pl) {
    int n = pl->concurrent;
    client *cl = calloc((size_t)n, sizeof *cl);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    long ok = 0, wrong = 0, closed = 0, unavailable = 0, connect_failed = 0;
    double slowest = 0;         /* the longest wait for an answer */
    double t0 = now();
    /* all connect first; then every one sends its requests, one at a time, with all the others in flight */
    for (int k = 0; k < n; k++) {
        cl[k].c.fd = connect_server(1);
        if (cl[k].c.fd < 0) {
            connect_failed++;
            cl[k].state = 2;
        }
        cl[k].probe = k % n_probes;
    }
    int connected = 0;
    for (double t_end = now() + 20; connected < n - connect_failed && now() < t_end;) {
        for (int k = 0; k < n; k++) pf[k] = (struct pollfd){.fd = cl[k].state == 0 ? cl[k].c.fd : -1, .events = POLLOUT};
        poll(pf, (nfds_t)n, 200);
        for (int k = 0; k < n; k++)
            if (pf[k].revents && cl[k].state == 0) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(cl[k].c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    connect_failed++;
                    conn_close(&cl[k].c);
                    cl[k].state = 2;
                } else {
                    cl[k].state = 1;
                    connected++;
                }
            }
    }
    double t_connected = now() - t0;
    int in_flight_max = 0;
    for (int k = 0; k < n; k++)
        if (cl[k].state == 1) {
            int fl = fcntl(cl[k].c.fd, F_GETFL);
            fcntl(cl[k].c.fd, F_SETFL, fl & ~O_NONBLOCK);
            char *body = probe_body(&probes[cl[k].probe]);
            cl[k].req = cl[k].done_requests % 2 ? strdup(get_healthz) : post_request("/v1/recommend", body);
            free(body);
            cl[k].sent_at = now();
            if (send_all(cl[k].c.fd, cl[k].req, strlen(cl[k].req))) {
                closed++;
                cl[k].state = 2;
            } else {
                in_flight_max++;
            }
        }
    for (double t_end = now() + 120; now() < t_end;) {
        int waiting = 0;
        for (int k = 0; k < n; k++) {
            pf[k] = (struct pollfd){.fd = cl[k].state == 1 ? cl[k].c.fd : -1, .events = POLLIN};
            waiting += cl[k].state == 1;
        }
        if (!waiting) break;
        poll(pf, (nfds_t)n, 200);
        for (int k = 0; k < n; k++) {
            if (cl[k].state != 1 || !pf[k].revents) continue;
            reply r;
            int got = conn_read(&cl[k].c, 0, &r);
            if (got == -2) continue;    /* not all of it yet */
            int is_probe = cl[k].done_requests % 2 == 0;
            if (!got && now() - cl[k].sent_at > slowest) slowest = now() - cl[k].sent_at;
            if (got) {
                closed++;
                cl[k].state = 2;
            } else if (r.status == 503) {
                unavailable++;
                cl[k].state = 2;
            } else if (is_probe ? check_probe(&probes[cl[k].probe], r.status, &r, "concurrent") : r.status != 200) {
                wrong++;
                cl[k].state = 2;
            } else {
                ok++;
                free(cl[k].req);
                cl[k].req = NULL;
                if (++cl[k].done_requests >= pl->rounds) {
                    cl[k].state = 2;
                } else {
                    char *body = probe_body(&probes[cl[k].probe]);
                    cl[k].req = cl[k].done_requests % 2 ? strdup(get_healthz) : post_request("/v1/recommend", body);
                    free(body);
                    cl[k].sent_at = now();
                    if (send_all(cl[k].c.fd, cl[k].req, strlen(cl[k].req))) {
                        closed++;
                        cl[k].state = 2;
                    }
                }
            }
            free(r.body);
        }
    }
    long unanswered = 0;
    for (int k = 0; k < n; k++) {
        unanswered += cl[k].state == 1;
        free(cl[k].req);
        conn_close(&cl[k].c);
    }
    long want = (long)n * pl->rounds;
    if (ok != want) fail("concurrent: %ld of %ld requests answered right (%ld connect failures, %ld closed, %ld 503, %ld wrong, %ld unanswered)",
                         ok, want, connect_failed, closed, unavailable, wrong, unanswered);
    /* every connection is served at once, none waits for others to be dropped (idle timeout) to be accepted */
    if (slowest > SERVER_TIMEOUT_S - 1) fail("concurrent: a request waited %.1f s for its answer", slowest);
    printf("part 4 concurrent: %d connections (all connected in %.2f s, %d requests in flight at once), %ld of %ld requests answered "
           "right in %.1f s (longest wait %.2f s), %ld connect failures, %ld closed, %ld 503, %ld wrong, %ld unanswered; max RSS %.1f MiB\n",
           n, t_connected, in_flight_max, ok, want, now() - t0, slowest, connect_failed, closed, unavailable, wrong, unanswered,
           part_rss_mb());
    free(cl), free(pf);
}

/* ---- main -------------------------------------------------------------------------------------------- */

/* SIGTERM; the server must exit 0 within 60 s (LeakSanitizer runs at exit) and its log hold no sanitizer
 * report. */
static void stop_server(void) {
    double t0 = now();
    kill(server_pid, SIGTERM);
    int status = -1;
    pid_t got = 0;
    while ((got = waitpid(server_pid, &status, WNOHANG)) == 0 && now() - t0 < 60) usleep(50 * 1000);
    if (got == 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, &status, 0);
        fail("shutdown: the server did not stop within 60 s of SIGTERM");
    }
    server_pid = 0;
    char log[1200];
    snprintf(log, sizeof log, "%s/serve.log", dir);
    int reports = sh("grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' '%s'", log) == 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("shutdown: the server exited with %s %d (see %s)", WIFEXITED(status) ? "status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log);
    if (reports) fail("shutdown: sanitizer report in %s", log);
    printf("shutdown: SIGTERM, exit status %d after %.1f s, %s; max RSS over the campaign %.1f MiB\n",
           WIFEXITED(status) ? WEXITSTATUS(status) : -1, now() - t0, reports ? "sanitizer report in the log" : "no sanitizer report",
           (double)atomic_load(&rss_max_kb) / 1024.0);
}

int main(int argc, char **argv) {
    plan pl = {.load_s = 120, .slow_s = 60, .slow_conns = 600, .malformed = 100000, .concurrent = 2000, .rounds = 6};
    int connections = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--crossrec") && i + 1 < argc) bin = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--connections") && i + 1 < argc) connections = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--short")) pl = (plan){.is_short = 1, .load_s = 20, .slow_s = 15, .slow_conns = 300, .malformed = 10000,
                                                          .concurrent = 1000, .rounds = 2};
        else die("usage: abuse --crossrec BIN --dir DIR [--short] [--connections N]");
    }
    if (!bin || !dir || connections < 0) die("usage: abuse --crossrec BIN --dir DIR [--short] [--connections N]");
    if (connections) pl.concurrent = connections;
    signal(SIGPIPE, SIG_IGN);
    /* this process holds up to a thousand sockets at once, and the server as many */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 4096) die("the hard limit on open files is %ld; raise it (ulimit -Hn 4096)", (long)rl.rlim_max);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    /* a small quarantine keeps the sanitized server's RSS meaningful; leaks are reported at exit */
    setenv("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=32", 0);
    static char abs_dir[PATH_MAX];
    if (sh("mkdir -p '%s'", dir) || !realpath(dir, abs_dir)) die("%s: cannot create", dir);
    dir = abs_dir;
    snprintf(model_path[0], sizeof model_path[0], "%s/bpr.crm", dir);
    snprintf(model_path[1], sizeof model_path[1], "%s/itemknn.crm", dir);

    double t0 = now();
    prepare();
    make_probes();
    start_server();
    printf("abuse (%s): crossrec serve on port %d (pid %d, --timeout %d, %s), %d probe users, models %s and %s\n",
           pl.is_short ? "short" : "long", port, (int)server_pid, SERVER_TIMEOUT_S, bin, n_probes, model_name[0], model_name[1]);
    fflush(stdout);
    pthread_t sampler;
    pthread_create(&sampler, NULL, rss_sampler, NULL);
    if (check_all_probes("start") != n_probes) die("the server does not answer the probes right at the start");

    part_load(&pl);
    fflush(stdout);
    if (server_alive()) part_slowloris(&pl);
    fflush(stdout);
    if (server_alive()) part_malformed(&pl);
    fflush(stdout);
    if (server_alive()) part_concurrent(&pl);
    fflush(stdout);
    if (!server_alive()) fail("the server died (see %s/serve.log)", dir);
    else if (check_all_probes("end") != n_probes) fail("the probes are not answered right at the end");
    atomic_store(&stop_sampler, 1);
    pthread_join(sampler, NULL);
    if (server_pid) stop_server();
    int f = atomic_load(&failures);
    printf("abuse: %s in %.0f s (%d failed checks)\n", f ? "FAILED" : "passed", now() - t0, f);
    return f ? 1 : 0;
}

/* alloc_faults.c — allocation-failure campaign (issue 9): each operation the command line runs (import, split,
 * train of every model type, resume, pretrain, embed, the loads, a recommendation, requests to the JSON API)
 * is run again and again with its N-th allocation failing, N = 1, 2, ... until it completes without the fault
 * firing. Every injected run must end in an error status with a message (no crash: ASan/UBSan abort), free
 * every block it allocated (cr_alloc_get_stats; LeakSanitizer covers the rest at exit), close every file
 * descriptor, and leave no output file: neither the final name nor a NAME.tmp.* next to it.
 *
 *   make test-faults [FAULTS=short]        or   alloc_faults short|long [OP]
 *
 * short: every STRIDE-th N (a stride that differs per operation, so all phases get hits); long: every N. OP
 * runs only the operations whose name contains it; N then runs only that injection (to debug a finding).
 * ALLOC_FAULTS_VERBOSE=1 lists the absorbed failures (the operation succeeded anyway). Prints a line per operation and a summary line; exit 1
 * when a run broke a rule. */
#include "fixture.h"

#include "crossrec/embed.h"
#include "crossrec/serve.h"
#include "crossrec/split.h"
#include "crossrec/textenc.h"
#include "crossrec/train.h"
#include "serve/serve_impl.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir;         /* inputs (the fixture) and outputs */

/* ---- the operations -------------------------------------------------------------------------------- */

static cr_status op_import(const char *arg, const char *out) {
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = fx_path(dir, "interactions.tsv");
    ip.items[ip.n_items++] = fx_path(dir, "items.tsv");
    cr_dataset *d = NULL;
    cr_status st = cr_dataset_import(&d, &ip, NULL);
    if (!st) st = cr_dataset_save(d, out);
    cr_dataset_free(d);
    return st;
}

static cr_status op_split(const char *arg, const char *out) {
    cr_dataset *d = NULL;
    cr_split *s = NULL;
    cr_split_params p = cr_split_default_params();
    p.protocol = CR_PROTO_COLD_USER;
    p.target = FX_TARGET;
    p.beta = 0.3;
    cr_status st = cr_dataset_load(&d, fx_path(dir, "data.crd"));
    if (!st) st = cr_split_make(&s, d, &p);
    if (!st) st = cr_split_save(s, out);
    cr_split_free(s);
    cr_dataset_free(d);
    return st;
}

/* `crossrec train split.crs --model ARG -o OUT`; ARG "resume" continues the fixture's paused bpr run. */
static cr_status op_train(const char *arg, const char *out) {
    cr_split *s = NULL;
    cr_model *m = NULL;
    cr_status st = cr_split_load(&s, fx_path(dir, "split.crs"));
    if (st) return st;
    cr_train_params p = fx_train_params(arg, s);
    if (!strcmp(arg, "resume")) p = fx_resumable_params(s), p.pause_after = 0, p.resume = fx_path(dir, "bpr.crt");
    st = cr_model_train(&m, cr_split_dataset(s), cr_split_train(s), &p);
    if (!st) st = cr_model_save(m, out);
    cr_model_free(m);
    cr_split_free(s);
    return st;
}

static cr_status op_pretrain(const char *arg, const char *out) {
    cr_dataset *d = NULL;
    cr_textenc *e = NULL;
    cr_textenc_train_params p = cr_textenc_default_train_params();
    p.dim = 8, p.hashing.n_buckets = 1024, p.epochs = 1, p.batch = 16, p.valid = 8, p.threads = 1;
    cr_status st = cr_dataset_load(&d, fx_path(dir, "data.crd"));
    if (!st) st = cr_textenc_train(&e, d, &p, NULL);
    if (!st) st = cr_textenc_save(e, out);
    cr_textenc_free(e);
    cr_dataset_free(d);
    return st;
}

/* `crossrec embed data.crd --method ARG -o OUT.npy` */
static cr_status op_embed(const char *arg, const char *out) {
    cr_dataset *d = NULL;
    cr_embed_params p = cr_embed_default_params();
    float *v = NULL;
    int64_t dim = 0;
    char spec[1100];
    snprintf(spec, sizeof spec, "%s%s%s", arg, strcmp(arg, "pretrained") ? "" : ":", strcmp(arg, "pretrained") ? "" : fx_path(dir, "text.crm"));
    cr_status st = cr_embed_parse_method(spec, &p);
    p.dim = 16, p.threads = 1;
    if (!st) st = cr_dataset_load(&d, fx_path(dir, "data.crd"));
    if (!st) st = cr_embed_items(d, &p, &v, &dim);
    if (!st) st = cr_npy_write_f32(out, v, cr_dataset_inter(d)->n_items, dim);
    cr_free(v);
    cr_dataset_free(d);
    return st;
}

/* Every model file and the other files a loader reads: the split (and its dataset), the encoder, the word vectors
 * (.crm and .vec), the .npy. */
static cr_status op_load(const char *arg, const char *out) {
    cr_split *s = NULL;
    cr_status st = cr_split_load(&s, fx_path(dir, "split.crs"));
    cr_split_free(s);
    char name[64];
    for (int k = 0; k < fx_n_models && !st; k++) {
        cr_model *m = NULL;
        snprintf(name, sizeof name, "%s.crm", fx_models[k]);
        st = cr_model_load(&m, fx_path(dir, name));
        cr_model_free(m);
    }
    cr_textenc *e = NULL;
    if (!st) st = cr_textenc_load(&e, fx_path(dir, "text.crm"));
    cr_textenc_free(e);
    const char *wv_files[] = {"wordvec.crm", "wordvec.vec"};
    for (int k = 0; k < 2 && !st; k++) {
        cr_wordvec *wv = NULL;
        st = cr_wordvec_load(&wv, fx_path(dir, wv_files[k]), NULL);
        cr_wordvec_free(wv);
    }
    float *v = NULL;
    int64_t rows, cols;
    if (!st) st = cr_npy_read_f32(fx_path(dir, "items.npy"), &v, &rows, &cols);
    cr_free(v);
    return st;
}

/* `crossrec recommend`: model ARG.crm with its dataset, one known user and one ad-hoc history. */
static cr_status op_recommend(const char *arg, const char *out) {
    char name[64];
    snprintf(name, sizeof name, "%s.crm", arg);
    cr_rec_params rp = cr_rec_default_params();
    cr_rec *r = NULL;
    cr_status st = cr_rec_open(&r, fx_path(dir, name), &rp);
    if (st) return st;
    cr_rec_options o = cr_rec_default_options();
    o.k = 5, o.threads = 1;
    o.domain = cr_dataset_find_domain(cr_rec_dataset(r), FX_TARGET);
    int32_t hist[2] = {0, 1}, items[2 * 5];
    float scores[2 * 5];
    int64_t found[2];
    cr_rec_query q[2] = {{.user = 0}, {.user = -1, .history = hist, .n_history = 2}};
    st = cr_rec_recommend(r, q, 2, &o, items, scores, found);
    cr_rec_free(r);
    return st;
}

/* The JSON API in process (what `crossrec serve` answers over HTTP): opening the model, then one request of each
 * kind. A request that fails must answer 500 with a JSON error; the op then fails with that body as message. */
static cr_status op_api(const char *arg, const char *out) {
    char name[64];
    snprintf(name, sizeof name, "%s.crm", arg);
    cr_rec_params rp = cr_rec_default_params();
    cr_rec *r = NULL;
    cr_api *a = NULL;
    cr_status st = cr_rec_open(&r, fx_path(dir, name), &rp);
    if (!st) st = cr_api_new(&a, r, fx_path(dir, name), NULL, 1 << 20, 1);
    if (st) return st;
    const cr_dataset *d = cr_rec_dataset(r);
    char rec_body[256], sim_body[256], hist_body[256];
    snprintf(rec_body, sizeof rec_body, "{\"user\": \"%s\", \"domain\": \"%s\", \"k\": 5, \"with_history\": true}",
             cr_dataset_user_id(d, 0), FX_TARGET);
    /* an ad-hoc history: the first two target-domain items with events */
    const cr_interactions *I = cr_dataset_inter(d);
    int32_t hist[2], n_hist = 0, target = cr_dataset_find_domain(d, FX_TARGET);
    for (int32_t i = 0; i < I->n_items && n_hist < 2; i++)
        if (I->item_domain[i] == target && I->item_ptr[i + 1] > I->item_ptr[i]) hist[n_hist++] = i;
    snprintf(hist_body, sizeof hist_body, "{\"history\": [\"%s\", \"%s\"], \"domain\": \"%s\", \"exclude_seen\": true}",
             cr_dataset_item_id(d, hist[0]), cr_dataset_item_id(d, hist[1]), FX_TARGET);
    snprintf(sim_body, sizeof sim_body, "{\"item\": \"%s\", \"k\": 3}", cr_dataset_item_id(d, 0));
    const struct {
        const char *method, *url, *body;
        int also_ok;    /* a clean answer besides 200: bpr cannot represent a history-only user (422) */
    } reqs[] = {
        {"GET", "/healthz", NULL, 0},           {"GET", "/v1/model", NULL, 0},         {"POST", "/v1/recommend", rec_body, 0},
        {"POST", "/v1/recommend", hist_body, 422}, {"POST", "/v1/similar", sim_body, 0}, {"GET", "/metrics", NULL, 0},
    };
    for (size_t k = 0; k < sizeof reqs / sizeof reqs[0] && !st; k++) {
        cr_api_response rs;
        const char *body = reqs[k].body;
        cr_api_request(a, reqs[k].method, reqs[k].url, body ? "application/json" : NULL, body, body ? strlen(body) : 0, &rs);
        if (rs.status != 200 && rs.status != reqs[k].also_ok)
            st = cr_fail(rs.status == 500 ? CR_ERR_NOMEM : CR_ERR_ARG, "%s %s: %d %.*s", reqs[k].method, reqs[k].url, rs.status,
                         (int)rs.len, rs.body);
        cr_api_response_free(&rs);
    }
    cr_api_free(a);
    return st;
}

typedef struct {
    const char *name;
    cr_status (*run)(const char *arg, const char *out);
    const char *arg;
    const char *out;            /* the file it writes, NULL: none */
    int stride;                 /* short form: every stride-th N */
} op;

static const op ops[] = {
    {"import", op_import, NULL, "out.crd", 7},
    {"split", op_split, NULL, "out.crs", 7},
    {"train pop", op_train, "pop", "out.crm", 11},
    {"train itemknn", op_train, "itemknn", "out.crm", 11},
    {"train bpr", op_train, "bpr", "out.crm", 11},
    {"train als", op_train, "als", "out.crm", 11},
    {"train cmf", op_train, "cmf", "out.crm", 11},
    {"train emcdr", op_train, "emcdr", "out.crm", 11},
    {"train ptupcdr", op_train, "ptupcdr", "out.crm", 11},
    {"train tower", op_train, "tower", "out.crm", 13},
    {"train --resume (bpr)", op_train, "resume", "out.crm", 11},
    {"pretrain", op_pretrain, NULL, "out.crm", 13},
    {"embed hash-tfidf", op_embed, "hash-tfidf", "out.npy", 7},
    {"embed pretrained", op_embed, "pretrained", "out.npy", 7},
    {"load (split, models, encoder, word vectors, npy)", op_load, NULL, NULL, 13},
    {"recommend bpr", op_recommend, "bpr", NULL, 7},
    {"recommend itemknn", op_recommend, "itemknn", NULL, 7},
    {"api bpr", op_api, "bpr", NULL, 7},
    {"api itemknn", op_api, "itemknn", NULL, 7},
};

/* ---- the rules ------------------------------------------------------------------------------------------- */

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A NAME.tmp.* in the work directory: a temporary file that a failed write left behind. */
static int find_temp(char *name, size_t cap) {
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        if (strstr(e->d_name, ".tmp")) found = 1, snprintf(name, cap, "%s", e->d_name);
    if (d) closedir(d);
    return found;
}

static int violations;

static void violation(const op *o, int64_t n, const char *fmt, const char *detail) {
    if (violations++ < 40) {
        fprintf(stderr, "alloc_faults: %s, allocation %lld failing: ", o->name, (long long)n);
        fprintf(stderr, fmt, detail);
        fprintf(stderr, "\n");
    }
}

/* Runs o with allocation n failing (n 0: none); checks the rules. Returns whether the fault fired. */
static int run_once(const op *o, int64_t n, int64_t *absorbed) {
    char out[1024] = "", tmp[256];
    if (o->out) snprintf(out, sizeof out, "%s", fx_path(dir, o->out));
    if (o->out) remove(out);
    cr_alloc_stats before = cr_alloc_get_stats();
    int fds = open_fds();
    cr_clear_error();
    cr_alloc_fail_nth(n);
    cr_status st = o->run(o->arg, out);
    int hit = cr_alloc_fault_hit();
    cr_alloc_fail_nth(0);
    cr_alloc_stats after = cr_alloc_get_stats();
    if (!hit && st) {
        violation(o, n, "fails without a fault: %s", cr_errmsg());
        return 0;
    }
    if (hit && st == CR_OK && getenv("ALLOC_FAULTS_VERBOSE")) printf("  %s: allocation %lld absorbed\n", o->name, (long long)n);
    if (hit && st == CR_OK) ++*absorbed;      /* the library coped (e.g. a failed shrink keeps the larger block) */
    if (hit && st && !cr_errmsg()[0]) violation(o, n, "%s with an empty message", cr_status_str(st));
    if (hit && st && st != CR_ERR_NOMEM) violation(o, n, "reported as another error: %s", cr_errmsg());
    if (after.n_live != before.n_live) {
        char what[96];
        snprintf(what, sizeof what, "%lld blocks (%lld bytes)", (long long)(after.n_live - before.n_live),
                 (long long)(after.live_bytes - before.live_bytes));
        violation(o, n, "leaks %s", what);
    }
    if (open_fds() != fds) violation(o, n, "%s", "leaves a file descriptor open");
    if (hit && st && o->out && access(out, F_OK) == 0) violation(o, n, "leaves its output %s", o->out);
    if (find_temp(tmp, sizeof tmp)) {
        violation(o, n, "leaves a temporary file %s", tmp);
        remove(fx_path(dir, tmp));
    }
    return hit;
}

int main(int argc, char **argv) {
    int is_short = argc > 1 && !strcmp(argv[1], "short");
    if (argc < 2 || (!is_short && strcmp(argv[1], "long"))) {
        fprintf(stderr, "usage: alloc_faults short|long [OP [N]]\n");
        return 2;
    }
    cr_log_set(NULL, NULL, CR_LOG_ERROR);       /* the warnings of failed runs are expected */
    dir = fx_tmpdir("alloc");
    fx_make_data(dir);
    fx_make_files(dir);
    int64_t total_points = 0;
    double t0 = cr_now();
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const op *o = &ops[k];
        if (argc > 2 && !strstr(o->name, argv[2])) continue;
        int64_t n_allocs = -cr_alloc_get_stats().n_allocs, absorbed = 0, runs = 0, n;
        double t1 = cr_now();
        run_once(o, 0, &absorbed);      /* the clean run: how many allocations the operation makes */
        n_allocs += cr_alloc_get_stats().n_allocs;
        int stride = is_short ? o->stride : 1;
        if (argc > 3) {     /* one injection, to reproduce a finding under a debugger */
            run_once(o, atoll(argv[3]), &absorbed);
            continue;
        }
        for (n = 1; run_once(o, n, &absorbed); n += stride) runs++;
        printf("alloc_faults: %-50s %6lld allocations, %5lld injected runs (N = 1..%lld step %d), %lld absorbed, %.1f s\n",
               o->name, (long long)n_allocs, (long long)runs, (long long)n - stride, stride, (long long)absorbed, cr_now() - t1);
        fflush(stdout);
        total_points += runs;
    }
    printf("alloc_faults: %s: %zu operations, %lld injection points, %d violations, %.0f s\n", argv[1],
           sizeof ops / sizeof ops[0], (long long)total_points, violations, cr_now() - t0);
    if (!violations) fx_rmdir(dir);
    else fprintf(stderr, "alloc_faults: files kept in %s\n", dir);
    return violations ? 1 : 0;
}

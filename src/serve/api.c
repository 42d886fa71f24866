/* api.c — the JSON API of `crossrec serve` (serve_impl.h): routing, request checks, the answers of every
 * endpoint, metrics, and the reference-counted swap of the recommender on reload.
 *
 * Main types: cr_api, and holder, one loaded recommender with its paths and reference count. The API keeps one
 * reference to the current holder; each request takes one more for as long as it runs (acquire/release under a
 * mutex held only to read the pointer and count). A reload builds the new holder outside any lock, swaps the
 * pointer and drops the API's reference to the old one, which the last request on it frees.
 *
 * Request bodies are parsed with jansson (duplicate keys and unknown fields are refused). Answers are built as
 * jansson trees and dumped into buffers from cr_malloc. */
#include "serve_impl.h"

#include "crossrec/data.h"
#include "crossrec/index.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define N_EXAMPLES 12           /* example users listed by /v1/model (for the page) */
#define HISTORY_SHOWN 50        /* most recent history items returned with with_history */
#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/* Latency buckets of the metrics histogram, seconds. */
static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
#define N_BUCKETS ((int)(sizeof bucket_le / sizeof bucket_le[0]))
/* Status codes counted one by one; others under "other". */
static const int counted_codes[] = {200, 400, 404, 405, 413, 415, 422, 500};
#define N_CODES ((int)(sizeof counted_codes / sizeof counted_codes[0]) + 1)

typedef struct {
    cr_rec *rec;
    char *model_path;           /* as opened; a reload without a path opens it again */
    int64_t generation;         /* 1 for the first model, +1 per successful reload */
    time_t loaded_at;
    int32_t examples[N_EXAMPLES];
    int n_examples;
    atomic_int refs;
} holder;

struct cr_api {
    pthread_mutex_t lock;           /* guards cur */
    pthread_mutex_t reload_lock;    /* one reload at a time */
    holder *cur;
    char *data_path;                /* the dataset reloads open unless told (NULL: the model's own) */
    int64_t max_body;
    int quiet;
    atomic_llong count[CR_EP_COUNT_][N_CODES];
    atomic_llong bucket[CR_EP_COUNT_][N_BUCKETS + 1];     /* last: above every bound */
    atomic_llong micros[CR_EP_COUNT_];
    atomic_llong reload_failures;
};

static const char *const ep_names[CR_EP_COUNT_] = {"page", "healthz", "model", "recommend", "similar", "reload", "metrics", "other"};

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *c = cr_malloc(n + 1);
    if (c) memcpy(c, s, n + 1);
    return c;
}

/* ---- the reference-counted recommender ---------------------------------------------------------------- */

static void holder_free(holder *h) {
    if (!h) return;
    cr_rec_free(h->rec);
    cr_free(h->model_path);
    cr_free(h);
}

/* The users with the most events among those active in more than one domain (any users if none is). */
static void pick_examples(holder *h) {
    const cr_interactions *I = cr_dataset_inter(cr_rec_dataset(h->rec));
    int64_t best[N_EXAMPLES];
    int n = 0;
    for (int pass = 0; pass < 2 && n == 0; pass++)
        for (int64_t u = 0; u < I->n_users; u++) {
            int64_t lo = I->user_ptr[u], hi = I->user_ptr[u + 1], multi = 0;
            for (int64_t e = lo + 1; e < hi && !multi; e++) multi = I->item_domain[I->user_items[e]] != I->item_domain[I->user_items[lo]];
            if (pass == 0 && !multi) continue;
            /* insertion into the list, most events first (equal counts: lower index first) */
            int at = n;
            while (at > 0 && I->user_ptr[best[at - 1] + 1] - I->user_ptr[best[at - 1]] < hi - lo) at--;
            if (at >= N_EXAMPLES) continue;
            if (n < N_EXAMPLES) n++;
            memmove(best + at + 1, best + at, (size_t)(n - 1 - at) * sizeof *best);
            best[at] = u;
        }
    for (int k = 0; k < n; k++) h->examples[k] = (int32_t)best[k];
    h->n_examples = n;
}

static cr_status holder_new(holder **out, cr_rec *r, const char *model_path, int64_t generation) {
    holder *h = cr_calloc(1, sizeof *h);
    if (!h || !(h->model_path = dup_str(model_path))) {
        cr_free(h);
        cr_rec_free(r);
        return cr_fail(CR_ERR_NOMEM, "out of memory (server model)");
    }
    h->rec = r;
    h->generation = generation;
    h->loaded_at = time(NULL);
    atomic_init(&h->refs, 1);
    pick_examples(h);
    *out = h;
    return CR_OK;
}

static holder *acquire(cr_api *a) {
    pthread_mutex_lock(&a->lock);
    holder *h = a->cur;
    atomic_fetch_add(&h->refs, 1);
    pthread_mutex_unlock(&a->lock);
    return h;
}

static void release(holder *h) {
    if (atomic_fetch_sub(&h->refs, 1) == 1) holder_free(h);
}

cr_status cr_api_new(cr_api **out, cr_rec *r, const char *model_path, const char *data_path, int64_t max_body, int quiet) {
    *out = NULL;
    cr_api *a = cr_calloc(1, sizeof *a);
    if (!a || (data_path && !(a->data_path = dup_str(data_path)))) {
        cr_free(a);
        cr_rec_free(r);
        return cr_fail(CR_ERR_NOMEM, "out of memory (server)");
    }
    cr_status st = holder_new(&a->cur, r, model_path, 1);
    if (st) {
        cr_free(a->data_path);
        cr_free(a);
        return st;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->reload_lock, NULL);
    a->max_body = max_body;
    a->quiet = quiet;
    json_object_seed(0);    /* before requests run on several threads */
    *out = a;
    return CR_OK;
}

void cr_api_free(cr_api *a) {
    if (!a) return;
    release(a->cur);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->reload_lock);
    cr_free(a->data_path);
    cr_free(a);
}

int64_t cr_api_max_body(const cr_api *a) { return a->max_body; }

cr_status cr_api_reload(cr_api *a, const char *model_path, const char *data_path) {
    pthread_mutex_lock(&a->reload_lock);
    holder *old = acquire(a);
    cr_rec_params p = cr_rec_default_params();
    p.data_path = data_path ? data_path : a->data_path;
    const char *path = model_path ? model_path : old->model_path;
    cr_rec *r;
    holder *h = NULL;
    cr_status st = cr_rec_open(&r, path, &p);
    if (!st) st = holder_new(&h, r, path, old->generation + 1);
    release(old);
    if (st) {
        atomic_fetch_add(&a->reload_failures, 1);
    } else {
        pthread_mutex_lock(&a->lock);
        old = a->cur;
        a->cur = h;
        pthread_mutex_unlock(&a->lock);
        release(old);   /* freed here, or by the last request still running on it */
        /* h->model_path, not path: a reload of the current file took path from the old holder, freed by now */
        if (!a->quiet) cr_log(CR_LOG_INFO, "reloaded %s (%s, generation %lld)", h->model_path, cr_model_name(cr_rec_model(h->rec)), (long long)h->generation);
    }
    pthread_mutex_unlock(&a->reload_lock);
    return st;
}

/* ---- responses ---------------------------------------------------------------------------------------- */

void cr_api_response_free(cr_api_response *rs) {
    if (rs->owned) cr_free(rs->body);
    memset(rs, 0, sizeof *rs);
}

static const char nomem_body[] = "{\"error\":\"out of memory\",\"status\":500}";

static void set_static(cr_api_response *rs, int status, const char *type, const char *body) {
    rs->status = status;
    rs->content_type = type;
    rs->body = (char *)body;
    rs->len = strlen(body);
    rs->owned = 0;
}

/* Dumps root (consumed; NULL after a failed allocation) as the answer: into a buffer of a size that holds most
 * answers, and only when it is too small once more into one of the size the first pass measured. */
static void set_json(cr_api_response *rs, int status, json_t *root) {
    size_t cap = 4096, n = 0;
    char *buf = root ? cr_malloc(cap) : NULL;
    if (buf && (n = json_dumpb(root, buf, cap, JSON_FLAGS)) > cap) {
        cr_free(buf);
        buf = cr_malloc(cap = n);
        if (buf && json_dumpb(root, buf, cap, JSON_FLAGS) != n) n = 0;
    }
    if (!buf || n == 0) {
        cr_free(buf);
        json_decref(root);
        set_static(rs, 500, "application/json", nomem_body);
        return;
    }
    json_decref(root);
    rs->status = status;
    rs->content_type = "application/json";
    rs->body = buf;
    rs->len = n;
    rs->owned = 1;
}

/* Messages quote request bytes and paths, perhaps cut inside a character; JSON strings must be valid UTF-8: the
 * bytes that are not become '?'. */
static const char *valid_utf8(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src);
    for (int64_t k; (k = cr_utf8_invalid_at(dst, (int64_t)strlen(dst))) >= 0;) dst[k] = '?';
    return dst;
}

static void error_with_hint(cr_api_response *rs, int status, const char *message, const char *hint) {
    char msg[1024], hnt[512];
    json_t *root = json_pack("{s:s, s:i}", "error", valid_utf8(msg, sizeof msg, message), "status", status);
    if (root && hint && hint[0] && json_object_set_new(root, "hint", json_string(valid_utf8(hnt, sizeof hnt, hint))))
        json_decref(root), root = NULL;
    set_json(rs, status, root);
}

void cr_api_error(cr_api_response *rs, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error_with_hint(rs, status, msg, NULL);
}

/* A failure of the library: its message and hint, NOMEM as 500, the rest as `status`. */
static void error_from(cr_api_response *rs, cr_status st, int status) {
    error_with_hint(rs, st == CR_ERR_NOMEM ? 500 : status, cr_errmsg(), cr_errhint());
}

/* ---- routing ------------------------------------------------------------------------------------------- */

static const struct {
    const char *path;
    cr_endpoint ep;
    int post;                   /* 1: POST with a JSON body; 0: GET (and HEAD) */
} routes[] = {
    {"/", CR_EP_PAGE, 0},         {"/index.html", CR_EP_PAGE, 0},     {"/healthz", CR_EP_HEALTHZ, 0},
    {"/v1/model", CR_EP_MODEL, 0}, {"/v1/recommend", CR_EP_RECOMMEND, 1}, {"/v1/similar", CR_EP_SIMILAR, 1},
    {"/v1/reload", CR_EP_RELOAD, 1}, {"/metrics", CR_EP_METRICS, 0},
};
#define N_ROUTES ((int)(sizeof routes / sizeof routes[0]))

/* application/json, any case, alone or followed by parameters ("; charset=utf-8"). */
static int is_json_type(const char *ct) {
    static const char want[] = "application/json";
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    if (strncasecmp(ct, want, sizeof want - 1)) return 0;
    ct += sizeof want - 1;
    while (*ct == ' ' || *ct == '\t') ct++;
    return *ct == '\0' || *ct == ';';
}

cr_endpoint cr_api_route(cr_api *a, const char *method, const char *url, const char *content_type, int64_t content_length,
                         cr_api_response *rs) {
    memset(rs, 0, sizeof *rs);
    size_t plen = strcspn(url, "?");
    int r = 0;
    while (r < N_ROUTES && (strlen(routes[r].path) != plen || strncmp(routes[r].path, url, plen))) r++;
    if (r == N_ROUTES) {
        cr_api_error(rs, 404, "no endpoint %.*s (endpoints: GET /, /healthz, /v1/model, /metrics; POST /v1/recommend, /v1/similar, /v1/reload)",
                     (int)(plen > 200 ? 200 : plen), url);
        return CR_EP_OTHER;
    }
    cr_endpoint ep = routes[r].ep;
    int ok_method = routes[r].post ? !strcmp(method, "POST") : !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!ok_method) {
        cr_api_error(rs, 405, "%s takes %s, not %.16s", routes[r].path, routes[r].post ? "POST" : "GET", method);
        rs->allow = routes[r].post ? "POST" : "GET, HEAD";
    } else if (routes[r].post && !is_json_type(content_type)) {
        cr_api_error(rs, 415, "%s takes a JSON body: send Content-Type: application/json (got %.64s)", routes[r].path,
                     content_type ? content_type : "none");
    } else if (content_length > a->max_body) {
        cr_api_error(rs, 413, "request body of %lld bytes is over the limit of %lld", (long long)content_length, (long long)a->max_body);
    }
    return ep;
}

/* ---- request bodies ------------------------------------------------------------------------------------ */

/* Parses body as a JSON object whose keys are all in `fields` (NULL-terminated); an empty body is {} when
 * empty_ok. NULL with the 400 answer in rs otherwise. */
static json_t *parse_body(const char *body, size_t len, int empty_ok, const char *const *fields, cr_api_response *rs) {
    if (len == 0 && empty_ok) {
        json_t *o = json_object();
        if (!o) set_static(rs, 500, "application/json", nomem_body);
        return o;
    }
    json_error_t err;
    int out_of_memory;
    json_t *root = cr_json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &err, &out_of_memory);
    if (out_of_memory) {    /* the server's fault, not the body's */
        set_static(rs, 500, "application/json", nomem_body);
        return NULL;
    }
    if (!root) {
        cr_api_error(rs, 400, "invalid JSON: %s (line %d, column %d)", err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        cr_api_error(rs, 400, "the body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        int known = 0;
        for (int f = 0; fields[f] && !known; f++) known = !strcmp(key, fields[f]);
        if (!known) {
            char list[256] = "";
            size_t n = 0;
            for (int f = 0; fields[f]; f++) n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", f ? ", " : "", fields[f]);
            cr_api_error(rs, 400, "unknown field '%.64s' (fields: %s)", key, list);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

/* Optional string field: *out NULL when absent; 0 on success, -1 with a 400 answer. */
static int get_string(json_t *o, const char *key, const char **out, cr_api_response *rs) {
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        cr_api_error(rs, 400, "'%s' must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Optional integer field in lo..hi (default def). */
static int get_int(json_t *o, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out, cr_api_response *rs) {
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        cr_api_error(rs, 400, "'%s' must be an integer in %lld..%lld", key, (long long)lo, (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(json_t *o, const char *key, int *out, cr_api_response *rs) {
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        cr_api_error(rs, 400, "'%s' must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* A domain by name: 0 and *t set, or -1 with a 404 naming the known domains. */
static int find_domain(const cr_dataset *d, const char *name, int32_t *t, cr_api_response *rs) {
    cr_status st = cr_dataset_domain_named(d, name, t);
    if (st) error_from(rs, st, 404);
    return st ? -1 : 0;
}

/* ---- answers ------------------------------------------------------------------------------------------- */

/* {"item", "domain", "title"} of an item, with "score" when score is finite. */
static json_t *item_json(const cr_dataset *d, int32_t i, double score) {
    const int32_t t = cr_dataset_inter(d)->item_domain[i];
    json_t *o = json_pack("{s:s, s:s, s:s}", "item", cr_dataset_item_id(d, i), "domain", cr_dataset_domain_name(d, t), "title",
                          cr_dataset_item_title(d, i));
    if (o && isfinite(score) && json_object_set_new(o, "score", json_real(score))) json_decref(o), o = NULL;
    return o;
}

/* A list of n items (scores NULL: none) as a JSON array; NULL when out of memory. */
static json_t *items_json(const cr_dataset *d, const int32_t *items, const float *scores, int64_t n) {
    json_t *a = json_array();
    for (int64_t x = 0; a && x < n; x++)
        if (json_array_append_new(a, item_json(d, items[x], scores ? scores[x] : NAN))) json_decref(a), a = NULL;
    return a;
}

static void answer_model(holder *h, cr_api_response *rs) {
    const cr_rec *r = h->rec;
    const cr_dataset *d = cr_rec_dataset(r);
    const cr_interactions *I = cr_dataset_inter(d);
    char when[32];
    struct tm tmv;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&h->loaded_at, &tmv));
    const char *sim = cr_rec_similar_method(r);
    json_t *root = json_pack("{s:s, s:s, s:s?, s:I, s:s, s:I, s:I, s:s, s:s?, s:i}", "model", cr_model_name(cr_rec_model(r)), "path",
                             h->model_path, "dataset", cr_dataset_path(d), "generation", (json_int_t)h->generation, "loaded_at",
                             when, "users", (json_int_t)I->n_users, "items", (json_int_t)I->n_items, "ranking",
                             cr_rec_uses_index(r) ? "index" : "score", "similar", sim, "max_k", CR_INDEX_MAX_K);
    json_t *doms = json_array(), *ex = json_array();
    for (int32_t t = 0; doms && t < I->n_domains; t++) {
        int64_t n;
        cr_rec_domain_items(r, t, &n);
        if (json_array_append_new(doms, json_pack("{s:s, s:I}", "name", cr_dataset_domain_name(d, t), "items", (json_int_t)n)))
            json_decref(doms), doms = NULL;
    }
    for (int k = 0; ex && k < h->n_examples; k++)
        if (json_array_append_new(ex, json_string(cr_dataset_user_id(d, h->examples[k])))) json_decref(ex), ex = NULL;
    if (!root || !doms || !ex) {
        json_decref(doms);
        json_decref(ex);
        json_decref(root);
        root = NULL;
    } else if (json_object_set_new(root, "domains", doms) | json_object_set_new(root, "example_users", ex)) {
        json_decref(root);      /* set_new took both values, on failure too */
        root = NULL;
    }
    set_json(rs, 200, root);
}

static const char *const recommend_fields[] = {"user", "history", "domain", "k", "exclude_seen", "with_history", NULL};

/* The ad-hoc history of a request: item ids -> indices (cr_malloc'ed), or -1 with the answer set. */
static int read_history(const cr_dataset *d, json_t *hist, int32_t **out, int64_t *n, cr_api_response *rs) {
    *out = NULL;
    *n = 0;
    if (!json_is_array(hist)) {
        cr_api_error(rs, 400, "'history' must be an array of item ids");
        return -1;
    }
    size_t len = json_array_size(hist);
    int32_t *items = cr_malloc((len + 1) * sizeof *items);
    if (!items) {
        set_static(rs, 500, "application/json", nomem_body);
        return -1;
    }
    for (size_t x = 0; x < len; x++) {
        json_t *v = json_array_get(hist, x);
        if (!json_is_string(v)) {
            cr_api_error(rs, 400, "'history' must be an array of item ids (strings); entry %zu is not", x);
        } else if ((items[x] = cr_dataset_find_item(d, json_string_value(v))) < 0) {
            cr_api_error(rs, 404, "unknown item '%.128s' (history entry %zu)", json_string_value(v), x);
        } else {
            continue;
        }
        cr_free(items);
        return -1;
    }
    *out = items;
    *n = (int64_t)len;
    return 0;
}

static void answer_recommend(holder *h, json_t *req, cr_api_response *rs) {
    const cr_rec *r = h->rec;
    const cr_dataset *d = cr_rec_dataset(r);
    const cr_interactions *I = cr_dataset_inter(d);
    const char *user_id, *domain;
    int64_t k;
    int exclude_seen, with_history;
    json_t *hist = json_object_get(req, "history");
    if (get_string(req, "user", &user_id, rs) || get_string(req, "domain", &domain, rs) ||
        get_int(req, "k", 10, 1, CR_INDEX_MAX_K, &k, rs) || get_bool(req, "exclude_seen", &exclude_seen, rs) ||
        get_bool(req, "with_history", &with_history, rs))
        return;
    if (!user_id == !(hist && !json_is_null(hist))) {
        cr_api_error(rs, 400, "give either 'user' (a known user's id) or 'history' (item ids, oldest first)");
        return;
    }
    if (!domain) {
        cr_api_error(rs, 400, "give 'domain', the domain to recommend items of");
        return;
    }
    cr_rec_options o = cr_rec_default_options();
    o.k = k;
    o.exclude_seen = exclude_seen;
    o.threads = 1;      /* requests run side by side on the server's threads */
    if (find_domain(d, domain, &o.domain, rs)) return;
    cr_rec_query q = {.user = -1};
    int32_t *hist_items = NULL;
    if (user_id && (q.user = cr_dataset_find_user(d, user_id)) < 0) {
        cr_api_error(rs, 404, "unknown user '%.128s'", user_id);
        return;
    }
    if (!user_id && read_history(d, hist, &hist_items, &q.n_history, rs)) return;
    q.history = hist_items;
    int32_t items[CR_INDEX_MAX_K];
    float scores[CR_INDEX_MAX_K];
    int64_t n_found;
    cr_status st = cr_rec_recommend(r, &q, 1, &o, items, scores, &n_found);
    if (st) {
        error_from(rs, st, 400);
    } else if (n_found < 0) {
        if (user_id) cr_api_error(rs, 422, "the %s model cannot represent user '%.128s' for domain %s", cr_model_name(cr_rec_model(r)), user_id, domain);
        else cr_api_error(rs, 422, "the %s model cannot represent this history for domain %s", cr_model_name(cr_rec_model(r)), domain);
    } else {
        json_t *root = json_pack("{s:s, s:s, s:s?, s:I, s:o}", "model", cr_model_name(cr_rec_model(r)), "domain", domain, "user",
                                 user_id, "generation", (json_int_t)h->generation, "items", items_json(d, items, scores, n_found));
        if (root && with_history) {
            /* the most recent HISTORY_SHOWN items, oldest first */
            const int32_t *hi = q.user >= 0 ? I->user_items + I->user_ptr[q.user] : q.history;
            int64_t n = q.user >= 0 ? I->user_ptr[q.user + 1] - I->user_ptr[q.user] : q.n_history;
            int64_t from = n > HISTORY_SHOWN ? n - HISTORY_SHOWN : 0;
            if (json_object_set_new(root, "history", items_json(d, hi + from, NULL, n - from)) ||
                json_object_set_new(root, "history_length", json_integer(n)))
                json_decref(root), root = NULL;
        }
        set_json(rs, 200, root);
    }
    cr_free(hist_items);
}

static const char *const similar_fields[] = {"item", "domain", "k", NULL};

static void answer_similar(holder *h, json_t *req, cr_api_response *rs) {
    const cr_rec *r = h->rec;
    const cr_dataset *d = cr_rec_dataset(r);
    const char *item_id, *domain;
    int64_t k;
    if (get_string(req, "item", &item_id, rs) || get_string(req, "domain", &domain, rs) ||
        get_int(req, "k", 10, 1, CR_INDEX_MAX_K, &k, rs))
        return;
    if (!item_id) {
        cr_api_error(rs, 400, "give 'item', the id of the item to find similar items for");
        return;
    }
    int32_t item = cr_dataset_find_item(d, item_id), t = -1;
    if (item < 0) {
        cr_api_error(rs, 404, "unknown item '%.128s'", item_id);
        return;
    }
    /* default: the item's own domain; "all": every domain */
    if (!domain) t = cr_dataset_inter(d)->item_domain[item];
    else if (strcmp(domain, "all") && find_domain(d, domain, &t, rs)) return;
    int32_t items[CR_INDEX_MAX_K];
    float scores[CR_INDEX_MAX_K];
    int64_t n_found;
    cr_status st = cr_rec_similar(r, item, t, k, items, scores, &n_found);
    if (st) {
        error_from(rs, st, 422);
        return;
    }
    json_t *root = json_pack("{s:s, s:s, s:o, s:s, s:o}", "model", cr_model_name(cr_rec_model(r)), "method", cr_rec_similar_method(r),
                             "item", item_json(d, item, NAN), "domain", t >= 0 ? cr_dataset_domain_name(d, t) : "all", "items",
                             items_json(d, items, scores, n_found));
    set_json(rs, 200, root);
}

static const char *const reload_fields[] = {"model", "data", NULL};

static void answer_reload(cr_api *a, json_t *req, cr_api_response *rs) {
    const char *model, *data;
    if (get_string(req, "model", &model, rs) || get_string(req, "data", &data, rs)) return;
    cr_status st = cr_api_reload(a, model, data);
    if (st) {
        error_from(rs, st, 422);
        return;
    }
    holder *h = acquire(a);
    answer_model(h, rs);
    release(h);
}

/* ---- metrics ------------------------------------------------------------------------------------------- */

/* A growing text buffer from cr_malloc; on a failed allocation it stays failed and frees its text. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) CR_PRINTF(2, 3);
static void tb_printf(text_buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *p = cr_realloc(b->p, cap);
        if (!p) {
            cr_free(b->p);
            memset(b, 0, sizeof *b);
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
}

static void answer_metrics(cr_api *a, holder *h, cr_api_response *rs) {
    text_buf b = {0};
    tb_printf(&b, "# HELP crossrec_requests_total Requests answered, by endpoint and HTTP status.\n"
                  "# TYPE crossrec_requests_total counter\n");
    for (int e = 0; e < CR_EP_COUNT_; e++)
        for (int c = 0; c < N_CODES; c++) {
            long long v = atomic_load_explicit(&a->count[e][c], memory_order_relaxed);
            if (!v) continue;
            if (c < N_CODES - 1) tb_printf(&b, "crossrec_requests_total{endpoint=\"%s\",code=\"%d\"} %lld\n", ep_names[e], counted_codes[c], v);
            else tb_printf(&b, "crossrec_requests_total{endpoint=\"%s\",code=\"other\"} %lld\n", ep_names[e], v);
        }
    tb_printf(&b, "# HELP crossrec_request_duration_seconds Time from a request's head to its answer.\n"
                  "# TYPE crossrec_request_duration_seconds histogram\n");
    for (int e = 0; e < CR_EP_COUNT_; e++) {
        long long cum = 0;
        for (int k = 0; k <= N_BUCKETS; k++) {
            cum += atomic_load_explicit(&a->bucket[e][k], memory_order_relaxed);
            if (k < N_BUCKETS) tb_printf(&b, "crossrec_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %lld\n", ep_names[e], bucket_le[k], cum);
            else tb_printf(&b, "crossrec_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %lld\n", ep_names[e], cum);
        }
        tb_printf(&b, "crossrec_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_names[e],
                  (double)atomic_load_explicit(&a->micros[e], memory_order_relaxed) * 1e-6);
        tb_printf(&b, "crossrec_request_duration_seconds_count{endpoint=\"%s\"} %lld\n", ep_names[e], cum);
    }
    tb_printf(&b, "# HELP crossrec_model_generation Models loaded so far (1 + successful reloads).\n"
                  "# TYPE crossrec_model_generation gauge\ncrossrec_model_generation %lld\n"
                  "# HELP crossrec_reload_failures_total Reloads that failed (the previous model stayed).\n"
                  "# TYPE crossrec_reload_failures_total counter\ncrossrec_reload_failures_total %lld\n",
              (long long)h->generation, (long long)atomic_load(&a->reload_failures));
    if (b.failed) {
        set_static(rs, 500, "application/json", nomem_body);
        return;
    }
    rs->status = 200;
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rs->body = b.p;
    rs->len = b.len;
    rs->owned = 1;
}

void cr_api_record(cr_api *a, cr_endpoint ep, int status, double seconds) {
    int c = 0;
    while (c < N_CODES - 1 && counted_codes[c] != status) c++;
    int k = 0;
    while (k < N_BUCKETS && seconds > bucket_le[k]) k++;
    atomic_fetch_add_explicit(&a->count[ep][c], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->bucket[ep][k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->micros[ep], (long long)(seconds * 1e6), memory_order_relaxed);
}

/* ---- dispatch ------------------------------------------------------------------------------------------ */

void cr_api_handle(cr_api *a, cr_endpoint ep, const char *body, size_t len, cr_api_response *rs) {
    memset(rs, 0, sizeof *rs);
    if (ep == CR_EP_PAGE) {
        set_static(rs, 200, "text/html; charset=utf-8", cr_serve_page);
        return;
    }
    if (ep == CR_EP_RELOAD) {
        json_t *req = parse_body(body, len, 1, reload_fields, rs);
        if (req) answer_reload(a, req, rs);
        json_decref(req);
        return;
    }
    holder *h = acquire(a);
    json_t *req = NULL;
    switch (ep) {
    case CR_EP_HEALTHZ:
        set_json(rs, 200, json_pack("{s:s, s:s, s:I}", "status", "ok", "model", cr_model_name(cr_rec_model(h->rec)), "generation", (json_int_t)h->generation));
        break;
    case CR_EP_MODEL:
        answer_model(h, rs);
        break;
    case CR_EP_RECOMMEND:
        if ((req = parse_body(body, len, 0, recommend_fields, rs))) answer_recommend(h, req, rs);
        break;
    case CR_EP_SIMILAR:
        if ((req = parse_body(body, len, 0, similar_fields, rs))) answer_similar(h, req, rs);
        break;
    case CR_EP_METRICS:
        answer_metrics(a, h, rs);
        break;
    default:
        cr_api_error(rs, 404, "no such endpoint");
        break;
    }
    json_decref(req);
    release(h);
}

void cr_api_request(cr_api *a, const char *method, const char *url, const char *content_type, const char *body, size_t len,
                    cr_api_response *rs) {
    double t0 = cr_now();
    cr_endpoint ep = cr_api_route(a, method, url, content_type, (int64_t)len, rs);
    if (!rs->status) cr_api_handle(a, ep, body, len, rs);
    cr_api_record(a, ep, rs->status, cr_now() - t0);
}

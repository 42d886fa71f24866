/* html_report.c — `crossrec report`: one HTML page about several models on one split (report.h).
 *
 * Models are loaded one at a time. Of each the page keeps its evaluation (cut-offs, curves, groups, domains),
 * the 2-D map of its item vectors, and the top-10 lists of a fixed pool of test users; then the model is freed.
 * The bootstrap intervals and the best values come from eval/compare.c, as in `crossrec compare`. The page is
 * written into memory and then to its file atomically.
 *
 * Every number of the comparison table is also in the cell's data-value attribute with 17 significant digits
 * (data-mean, data-lo, data-hi for the differences), so tests and scripts read the exact values that `crossrec
 * compare --json` prints. */
#include "report_impl.h"

#include "crossrec/io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 32
#define POOL_USERS 64       /* test users whose top-10 lists are kept; the examples are chosen among them */
#define TOP_N 10
#define HISTORY_SHOWN 10

typedef struct {
    char name[256];             /* file name, as compare shows it */
    cr_eval_result *res;
    int has_map;
    char map_note[512];
    int64_t n_points;           /* drawn on the map */
    float *xy;                  /* (n_points, 2) */
    int32_t *domain;            /* (n_points) */
    int32_t *top;               /* (n_pool, TOP_N) top-10 items of the pool users, -1 padded */
} model_page;

typedef struct {
    const cr_split *s;
    const cr_dataset *d;
    const cr_report_params *p;
    int n_models;
    model_page m[MAX_MODELS];
    cr_interval *diff;          /* ((n_models - 1) * n_cols) */
    int n_logs;
    cr_train_log logs[MAX_MODELS];
    int64_t n_pool;
    int32_t pool[POOL_USERS];   /* users, evenly spaced over the part's evaluated users */
    int64_t pool_gt[POOL_USERS];/* their position in the ground truth */
    cr_status page_st;          /* CR_ERR_NOMEM when writing the page ran out of memory */
} report;

static cr_status page_nomem(report *rp) { return rp->page_st = cr_fail(CR_ERR_NOMEM, "out of memory (the page)"); }

cr_report_params cr_report_default_params(void) {
    cr_report_params p;
    memset(&p, 0, sizeof p);
    p.ks[0] = 10, p.ks[1] = 50, p.n_k = 2;
    p.part = CR_PART_TEST;
    p.bootstrap = 1000;
    p.seed = 42;
    p.curve_k = 100;
    p.n_examples = 4;
    p.map_points = 3000;
    return p;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- what is kept of each model ---------------------------------------------------------------------------- */

/* The 2-D map of the item vectors of items with training events (a zero row is an item the model has no vector
 * for: left out), drawn for at most map_points evenly spaced ones. */
static cr_status item_map(report *rp, const cr_model *m, model_page *mp) {
    int64_t dim = 0;
    const float *vec = cr_model_item_vectors(m, &dim);
    if (!vec) {
        snprintf(mp->map_note, sizeof mp->map_note, "%s has no item vectors (%s scores without them); no map.", mp->name,
                 cr_model_name(m));
        return CR_OK;
    }
    const cr_interactions *t = cr_split_train(rp->s);
    int32_t *rows = cr_malloc((size_t)(t->n_items ? t->n_items : 1) * sizeof *rows);
    if (!rows) return cr_fail(CR_ERR_NOMEM, "out of memory (item map)");
    int64_t n = 0, zero = 0;
    for (int64_t i = 0; i < t->n_items; i++) {
        if (t->item_ptr[i + 1] == t->item_ptr[i]) continue;
        int nonzero = 0;
        for (int64_t k = 0; k < dim && !nonzero; k++) nonzero = vec[i * dim + k] != 0;
        if (nonzero) rows[n++] = (int32_t)i;
        else zero++;
    }
    if (n < 2 || rp->p->map_points == 0) {
        snprintf(mp->map_note, sizeof mp->map_note, "%s: %s; no map.", mp->name,
                 n < 2 ? "fewer than two items with training events have a vector" : "no points asked for (--map-points 0)");
        cr_free(rows);
        return CR_OK;
    }
    float *x = cr_malloc((size_t)(n * dim) * sizeof *x), *xy = cr_malloc((size_t)(2 * n) * sizeof *xy);
    int64_t shown = rp->p->map_points < n ? rp->p->map_points : n;
    mp->xy = cr_malloc((size_t)(2 * shown + 1) * sizeof *mp->xy);
    mp->domain = cr_malloc((size_t)(shown + 1) * sizeof *mp->domain);
    cr_status st = x && xy && mp->xy && mp->domain ? CR_OK : cr_fail(CR_ERR_NOMEM, "out of memory (item map of %lld items)", (long long)n);
    double share[2] = {0, 0};
    if (!st) {
        for (int64_t r = 0; r < n; r++) memcpy(x + r * dim, vec + (int64_t)rows[r] * dim, (size_t)dim * sizeof *x);
        st = cr_pca2(x, n, dim, xy, share);
    }
    if (!st) {
        for (int64_t k = 0; k < shown; k++) {
            int64_t r = (int64_t)((double)k * (double)n / (double)shown);
            mp->xy[2 * k] = xy[2 * r], mp->xy[2 * k + 1] = xy[2 * r + 1];
            mp->domain[k] = t->item_domain[rows[r]];
        }
        mp->n_points = shown;
        mp->has_map = 1;
        int len = snprintf(mp->map_note, sizeof mp->map_note,
                           "%s: %lld items with training events, %lld drawn; the two components explain %.0f%% and %.0f%% of the "
                           "variance of its %lld-d item vectors.",
                           mp->name, (long long)n, (long long)shown, 100 * share[0], 100 * share[1], (long long)dim);
        if (zero && len > 0 && (size_t)len < sizeof mp->map_note)
            snprintf(mp->map_note + len, sizeof mp->map_note - (size_t)len,
                     " %lld items have no vector in this model (outside the domain it learned item vectors for).", (long long)zero);
    }
    cr_free(rows), cr_free(x), cr_free(xy);
    return st;
}

/* Top-10 candidates of each pool user by the model's scores, training items excluded (as in evaluation), ties
 * by item index. One user per request: memory for one row of scores. */
static cr_status pool_tops(report *rp, const cr_model *m, model_page *mp) {
    const cr_interactions *t = cr_split_train(rp->s);
    int64_t n_cand;
    const int32_t *cand = cr_split_candidates(rp->s, &n_cand);
    float *scores = cr_malloc((size_t)(n_cand + 1) * sizeof *scores);
    uint8_t *seen = cr_calloc((size_t)t->n_items + 1, 1);
    mp->top = cr_malloc((size_t)(rp->n_pool * TOP_N + 1) * sizeof *mp->top);
    cr_topk heap = {0};
    cr_status st = scores && seen && mp->top ? cr_topk_init(&heap, TOP_N) : cr_fail(CR_ERR_NOMEM, "out of memory (example users)");
    for (int64_t r = 0; r < rp->n_pool && !st; r++) {
        int32_t u = rp->pool[r];
        const int64_t hist_ptr[2] = {t->user_ptr[u], t->user_ptr[u + 1]};   /* the user's slice of the training CSR */
        cr_score_request req = {1, &u, hist_ptr, t->user_items, cr_split_target(rp->s), n_cand, cand};
        uint8_t can;
        if ((st = cr_model_score(m, &req, scores, &can))) break;
        for (int64_t e = hist_ptr[0]; e < hist_ptr[1]; e++) seen[t->user_items[e]] = 1;
        cr_topk_reset(&heap);
        for (int64_t c = 0; c < n_cand && can; c++)
            if (!seen[cand[c]]) cr_topk_push(&heap, scores[c], cand[c]);
        int64_t k = cr_topk_sorted(&heap, mp->top + r * TOP_N, NULL);
        for (; k < TOP_N; k++) mp->top[r * TOP_N + k] = -1;
        for (int64_t e = hist_ptr[0]; e < hist_ptr[1]; e++) seen[t->user_items[e]] = 0;
    }
    cr_topk_free(&heap);
    cr_free(scores), cr_free(seen);
    return st;
}

static cr_status add_model(report *rp, const char *path, model_page *mp) {
    snprintf(mp->name, sizeof mp->name, "%s", base_name(path));
    cr_model *m;
    cr_status st = cr_model_load(&m, path);
    if (st) return st;
    cr_eval_params ep = cr_eval_default_params();
    memcpy(ep.ks, rp->p->ks, sizeof ep.ks);
    ep.n_k = rp->p->n_k;
    ep.part = rp->p->part;
    ep.threads = rp->p->threads;
    ep.curve_k = rp->p->curve_k;
    if (!(st = cr_evaluate(rp->s, m, &ep, &mp->res)) && !(st = item_map(rp, m, mp))) st = pool_tops(rp, m, mp);
    if (st) cr_errmsg_prefix("%s", path);
    cr_model_free(m);
    return st;
}

/* ---- the page ----------------------------------------------------------------------------------------------- */

static const char *CSS =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}"
    "main{max-width:1120px;margin:0 auto;padding:24px 28px 48px}"
    "h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 8px;border-bottom:1px solid #d9dde4;padding-bottom:4px}"
    "p.lead{color:#4a5263;margin:0 0 16px}.note{color:#5b6475;font-size:13px}"
    ".facts{display:flex;flex-wrap:wrap;gap:8px 24px;background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px}"
    ".facts b{font-weight:600}"
    "table{border-collapse:collapse;background:#fff;margin:8px 0}th,td{border:1px solid #dde1e8;padding:5px 9px;text-align:right;"
    "vertical-align:top}th{background:#eef1f5;font-weight:600}td.model,th.model{text-align:left}"
    "td.best{background:#e3f4e1;font-weight:600}td .ci{display:block;font-size:11px;color:#5b6475;font-weight:400;white-space:nowrap}"
    ".scroll{overflow-x:auto}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:16px}"
    "svg.chart{width:100%;height:auto;background:#fff;border:1px solid #dde1e8;border-radius:6px}"
    "svg .title{font-size:15px;font-weight:600;fill:#1d2330}svg .tick{font-size:11px;fill:#5b6475}"
    "svg .label{font-size:12px;fill:#3a4252}svg .legend{font-size:12px;fill:#1d2330}"
    "svg .grid line{stroke:#e6e9ee;stroke-width:1}svg line.axis{stroke:#8a93a3;stroke-width:1}"
    "svg path.line{fill:none;stroke-width:2}svg g.points{fill-opacity:.55}"
    ".users{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}"
    ".user{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px}.user h3{font-size:15px;margin:0 0 6px}"
    ".user ol,.user ul{margin:2px 0 8px;padding-left:22px}.user li{margin:1px 0}"
    ".dom{display:inline-block;font-size:11px;color:#fff;border-radius:3px;padding:0 5px;margin-right:6px}"
    ".recs{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:4px 16px}"
    "li.hit{background:#e3f4e1;font-weight:600}li.hit::marker{color:#2e7d32}.mark{color:#2e7d32}"
    "footer{margin-top:40px;color:#5b6475;font-size:12px}code{background:#eef1f5;padding:1px 4px;border-radius:3px}";

static void esc(FILE *out, const char *s) { cr_svg_escape(out, s); }

/* A domain badge in the domain's map colour. */
static void domain_badge(FILE *out, const cr_dataset *d, int32_t dom) {
    fprintf(out, "<span class=\"dom\" style=\"background:%s\">", cr_svg_color(dom));
    esc(out, cr_dataset_domain_name(d, dom));
    fputs("</span>", out);
}

static void item_line(FILE *out, const cr_dataset *d, int32_t item) {
    domain_badge(out, d, cr_dataset_inter(d)->item_domain[item]);
    const char *title = cr_dataset_item_title(d, item);
    esc(out, title[0] ? title : cr_dataset_item_id(d, item));
}

static void write_header(FILE *out, const report *rp) {
    const cr_split_params *sp = cr_split_params_of(rp->s);
    const cr_split_stats *ss = cr_split_stats_of(rp->s);
    int32_t target = cr_split_target(rp->s);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>crossrec report</title>\n<style>",
          out);
    fputs(CSS, out);
    fputs("</style>\n</head>\n<body>\n<main>\n<h1>crossrec report</h1>\n<p class=\"lead\">", out);
    fprintf(out, "%d model%s on the %s split", rp->n_models, rp->n_models > 1 ? "s" : "", cr_protocol_name(sp->protocol));
    if (target >= 0) {
        fputs(" with target domain <b>", out);
        esc(out, cr_dataset_domain_name(rp->d, target));
        fputs("</b>", out);
    }
    fputs(": every evaluated user's held-out items ranked among all candidate items, ties counted against the model.</p>\n", out);
    const cr_eval_result *r = rp->m[0].res;
    const char *path = cr_dataset_path(rp->d);
    int64_t n_cand;
    cr_split_candidates(rp->s, &n_cand);
    fputs("<div class=\"facts\"><span>dataset <b>", out);
    esc(out, path ? base_name(path) : "(memory)");
    fprintf(out, "</b></span><span><b>%lld</b> users, <b>%lld</b> items, <b>%lld</b> domains</span>",
            (long long)cr_dataset_inter(rp->d)->n_users, (long long)cr_dataset_inter(rp->d)->n_items,
            (long long)cr_dataset_inter(rp->d)->n_domains);
    fprintf(out, "<span><b>%lld</b> %s users evaluated", (long long)r->n_users, rp->p->part == CR_PART_TEST ? "test" : "validation");
    if (r->n_no_truth) fprintf(out, " (%lld held out without ground truth skipped)", (long long)r->n_no_truth);
    fprintf(out, "</span><span><b>%lld</b> candidates</span><span><b>%lld</b> training events</span></div>\n", (long long)n_cand,
            (long long)ss->n_train);
}

static void write_table(FILE *out, const report *rp) {
    const cr_eval_result *r0 = rp->m[0].res;
    const int n_cols = cr_compare_n_cols(r0->n_k);
    const cr_eval_result *res[MAX_MODELS];
    for (int k = 0; k < rp->n_models; k++) res[k] = rp->m[k].res;
    fputs("<h2 id=\"compare\">Comparison</h2>\n<p class=\"note\">Means over the evaluated users; the best value of each column "
          "is marked. Under each model after the first: the difference to ",
          out);
    esc(out, rp->m[0].name);
    fprintf(out, " and its paired bootstrap 95%% interval (%d resamples of the users, seed %llu); an interval without 0 is a "
                 "difference the users support. Same numbers as <code>crossrec compare</code>.</p>\n",
            rp->p->bootstrap, (unsigned long long)rp->p->seed);
    fputs("<div class=\"scroll\"><table class=\"compare\">\n<tr><th class=\"model\">model</th>", out);
    for (int c = 0; c < n_cols; c++) {
        char cn[32];
        cr_compare_col_name(c, r0->ks, r0->n_k, cn, sizeof cn);
        fprintf(out, "<th>%s</th>", cn);
    }
    fputs("</tr>\n", out);
    for (int k = 0; k < rp->n_models; k++) {
        fputs("<tr><td class=\"model\">", out);
        esc(out, rp->m[k].name);
        fputs("</td>", out);
        for (int c = 0; c < n_cols; c++) {
            char cn[32];
            cr_compare_col_name(c, r0->ks, r0->n_k, cn, sizeof cn);
            double v = cr_compare_value(&res[k]->mean, c, r0->n_k);
            int best = rp->n_models > 1 && v == cr_compare_best(res, rp->n_models, c);
            fprintf(out, "<td%s data-model=\"", best ? " class=\"best\"" : "");
            esc(out, rp->m[k].name);
            fprintf(out, "\" data-metric=\"%s\" data-value=\"%.17g\"", cn, v);
            const cr_interval *iv = k ? &rp->diff[(k - 1) * n_cols + c] : NULL;
            if (iv) fprintf(out, " data-mean=\"%.17g\" data-lo=\"%.17g\" data-hi=\"%.17g\"", iv->mean, iv->lo, iv->hi);
            fprintf(out, ">%.4f%s", v, best ? " &#9733;" : "");
            if (iv) fprintf(out, "<span class=\"ci\">%+.4f<br>[%+.4f, %+.4f]</span>", iv->mean, iv->lo, iv->hi);
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</table></div>\n", out);
    for (int k = 0; k < rp->n_models; k++)
        if (res[k]->n_unrepresented) {
            fputs("<p class=\"note\">", out);
            esc(out, rp->m[k].name);
            fprintf(out, " cannot represent %lld of the users (their items count as misses).</p>\n", (long long)res[k]->n_unrepresented);
        }
}

static void write_curves(FILE *out, const report *rp) {
    const char *names[MAX_MODELS];
    const double *x[MAX_MODELS], *rec[MAX_MODELS], *ndcg[MAX_MODELS];
    int64_t n[MAX_MODELS];
    int colors[MAX_MODELS];
    int kk = rp->p->curve_k;
    double ks[CR_MAX_CURVE_K];
    for (int k = 0; k < kk; k++) ks[k] = k + 1;
    for (int k = 0; k < rp->n_models; k++) {
        names[k] = rp->m[k].name, x[k] = ks, n[k] = kk, colors[k] = k;
        rec[k] = rp->m[k].res->curve_recall, ndcg[k] = rp->m[k].res->curve_ndcg;
    }
    fprintf(out, "<h2 id=\"curves\">NDCG@K and Recall@K, K = 1..%d</h2>\n<div class=\"charts\">\n", kk);
    cr_svg_lines c = {"NDCG@K", "K", "NDCG@K", rp->n_models, names, colors, x, ndcg, n, 0};
    cr_svg_line_chart(out, &c);
    c.title = "Recall@K", c.y_label = "Recall@K", c.y = rec;
    cr_svg_line_chart(out, &c);
    fputs("</div>\n", out);
}

/* Grouped bars of recall@K (the first cut-off) over the groups with members; `values(res, g)` picks a group. */
static void group_bars(FILE *out, report *rp, const char *title, int n_groups, const char *const *labels,
                       const int *group_of, double (*value)(const cr_eval_result *, int g)) {
    const char *names[MAX_MODELS];
    int colors[MAX_MODELS];
    double *v = cr_malloc((size_t)(n_groups * rp->n_models + 1) * sizeof *v);
    if (!v) {
        page_nomem(rp);
        return;
    }
    for (int k = 0; k < rp->n_models; k++) names[k] = rp->m[k].name, colors[k] = k;
    for (int g = 0; g < n_groups; g++)
        for (int k = 0; k < rp->n_models; k++) v[g * rp->n_models + k] = value(rp->m[k].res, group_of[g]);
    char y_label[32];
    snprintf(y_label, sizeof y_label, "recall@%d", rp->m[0].res->ks[0]);
    cr_svg_bars b = {title, y_label, n_groups, rp->n_models, labels, names, colors, v};
    cr_svg_bar_chart(out, &b);
    cr_free(v);
}

static double user_group_recall(const cr_eval_result *r, int g) { return r->user_group_recall[g][0]; }
static double item_group_recall(const cr_eval_result *r, int g) { return r->item_group_recall[g][0]; }
static double domain_recall(const cr_eval_result *r, int g) { return r->domain_recall[(int64_t)g * r->n_k]; }

static void write_groups(FILE *out, report *rp) {
    const cr_eval_result *r = rp->m[0].res;
    char label_buf[16][96];
    const char *labels[16];
    int group_of[16], n = 0;
    fprintf(out, "<h2 id=\"groups\">Cold and warm users, cold, head and tail items</h2>\n<p class=\"note\">Recall@%d by group. "
                 "Users: cold or warm in the target domain (training events there), and by training history length. Items: "
                 "ground-truth items with no training event (cold), among the most popular 20%% of the candidates (head), "
                 "the rest (tail); counts in brackets. Groups without members under this split are left out.</p>\n"
                 "<div class=\"charts\">\n",
            r->ks[0]);
    for (int g = 0; g < r->n_user_groups; g++)
        if (r->user_group_n[g]) {
            snprintf(label_buf[n], sizeof label_buf[n], "%s (%lld)", r->user_group_name[g], (long long)r->user_group_n[g]);
            labels[n] = label_buf[n], group_of[n++] = g;
        }
    group_bars(out, rp, "Users", n, labels, group_of, user_group_recall);
    n = 0;
    for (int g = 0; g < r->n_item_groups; g++)
        if (r->item_group_n[g]) {
            snprintf(label_buf[n], sizeof label_buf[n], "%s (%lld)", r->item_group_name[g], (long long)r->item_group_n[g]);
            labels[n] = label_buf[n], group_of[n++] = g;
        }
    group_bars(out, rp, "Ground-truth items", n, labels, group_of, item_group_recall);
    fputs("</div>\n", out);
}

static void write_domains(FILE *out, report *rp) {
    const cr_eval_result *r = rp->m[0].res;
    int n = 0;
    for (int64_t g = 0; g < r->n_domains; g++) n += r->domain_gt_n[g] > 0;
    if (n < 2) return;  /* one target domain: the table above is its result */
    const char **labels = cr_malloc((size_t)n * sizeof *labels);
    char *buf = cr_malloc((size_t)n * 96);
    int *group_of = cr_malloc((size_t)n * sizeof *group_of);
    if (!labels || !buf || !group_of) {
        page_nomem(rp);
        cr_free(labels), cr_free(buf), cr_free(group_of);
        return;
    }
    n = 0;
    for (int64_t g = 0; g < r->n_domains; g++)
        if (r->domain_gt_n[g]) {
            snprintf(buf + 96 * n, 96, "%s (%lld)", cr_dataset_domain_name(rp->d, (int32_t)g), (long long)r->domain_gt_n[g]);
            labels[n] = buf + 96 * n, group_of[n++] = (int)g;
        }
    fprintf(out, "<h2 id=\"domains\">Per domain</h2>\n<p class=\"note\">Recall@%d of the ground-truth items of each domain "
                 "(their count in brackets).</p>\n<div class=\"charts\">\n", r->ks[0]);
    group_bars(out, rp, "Ground-truth items by domain", n, labels, group_of, domain_recall);
    fputs("</div>\n", out);
    cr_free(labels), cr_free(buf), cr_free(group_of);
}

/* The colour of a log: its model's when the file names share a stem (tower.tsv, tower.crm), else one after
 * the models'. */
static int log_color(const report *rp, int l) {
    const char *name = base_name(rp->p->logs[l]);
    size_t stem = strcspn(name, ".");
    for (int k = 0; k < rp->n_models; k++)
        if (strcspn(rp->m[k].name, ".") == stem && !strncmp(rp->m[k].name, name, stem)) return k;
    return rp->n_models + l;
}

static void write_learning(FILE *out, const report *rp) {
    if (!rp->n_logs) return;
    const char *names[MAX_MODELS];
    const double *x[MAX_MODELS], *loss[MAX_MODELS], *ndcg[MAX_MODELS];
    int64_t n[MAX_MODELS];
    int colors[MAX_MODELS];
    for (int l = 0; l < rp->n_logs; l++) {
        names[l] = base_name(rp->p->logs[l]);
        x[l] = rp->logs[l].epoch, loss[l] = rp->logs[l].loss, ndcg[l] = rp->logs[l].valid_ndcg, n[l] = rp->logs[l].n;
        colors[l] = log_color(rp, l);
    }
    fputs("<h2 id=\"learning\">Learning curves</h2>\n<p class=\"note\">From the training logs (<code>crossrec train --log</code>): "
          "NDCG@10 on the validation users after each epoch, and the training loss, one chart per log (the losses of "
          "different models are on different scales).</p>\n<div class=\"charts\">\n",
          out);
    cr_svg_lines c = {"Validation NDCG@10", "epoch", "NDCG@10", rp->n_logs, names, colors, x, ndcg, n, 1};
    cr_svg_line_chart(out, &c);
    for (int l = 0; l < rp->n_logs; l++) {
        char title[300];
        snprintf(title, sizeof title, "Training loss: %s", names[l]);
        cr_svg_lines one = {title, "epoch", "loss", 1, names + l, colors + l, x + l, loss + l, n + l, 1};
        cr_svg_line_chart(out, &one);
    }
    fputs("</div>\n", out);
}

static void write_maps(FILE *out, report *rp) {
    const cr_interactions *v = cr_dataset_inter(rp->d);
    const char **dom_names = cr_malloc((size_t)(v->n_domains + 1) * sizeof *dom_names);
    if (!dom_names) {
        page_nomem(rp);
        return;
    }
    for (int64_t g = 0; g < v->n_domains; g++) dom_names[g] = cr_dataset_domain_name(rp->d, (int32_t)g);
    fputs("<h2 id=\"maps\">Item vectors</h2>\n<p class=\"note\">Each model's item vectors projected on their two principal "
          "components (computed in crossrec), coloured by domain. Domains that overlap share one space; separate clouds "
          "are domains the model keeps apart.</p>\n<div class=\"charts\">\n",
          out);
    for (int k = 0; k < rp->n_models; k++) {
        const model_page *mp = &rp->m[k];
        if (!mp->has_map) continue;
        char title[300];
        snprintf(title, sizeof title, "%s: item vectors", mp->name);
        cr_svg_scatter s = {title, "component 1", "component 2", mp->n_points, mp->xy, mp->domain, (int)v->n_domains, dom_names};
        cr_svg_scatter_chart(out, &s);
    }
    fputs("</div>\n", out);
    for (int k = 0; k < rp->n_models; k++) {
        fputs("<p class=\"note\">", out);
        esc(out, rp->m[k].map_note);
        fputs("</p>\n", out);
    }
    cr_free(dom_names);
}

/* Whether model k put one of pool user r's held-out items in its top 10. */
static int has_hit(const report *rp, int k, int64_t r) {
    const cr_ground_truth *gt = cr_split_truth(rp->s, rp->p->part);
    for (int j = 0; j < TOP_N; j++)
        for (int64_t g = gt->gt_ptr[rp->pool_gt[r]]; g < gt->gt_ptr[rp->pool_gt[r] + 1]; g++)
            if (rp->m[k].top[r * TOP_N + j] == gt->gt_items[g]) return 1;
    return 0;
}

/* Example users from the pool: those the best model (by the first NDCG column) serves with a hit, evenly
 * spaced, and one it misses, so the page shows both. Returns their number. */
static int choose_examples(const report *rp, int64_t *chosen) {
    int want = rp->p->n_examples < rp->n_pool ? rp->p->n_examples : (int)rp->n_pool, best = 0, n = 0;
    for (int k = 1; k < rp->n_models; k++)
        if (rp->m[k].res->mean.ndcg[0] > rp->m[best].res->mean.ndcg[0]) best = k;
    int64_t hits[POOL_USERS], n_hits = 0, miss = -1;
    for (int64_t r = 0; r < rp->n_pool; r++) {
        if (has_hit(rp, best, r)) hits[n_hits++] = r;
        else if (miss < 0) miss = r;
    }
    int from_hits = (int)(n_hits < want - (miss >= 0) ? n_hits : want - (miss >= 0));
    for (int k = 0; k < from_hits; k++) chosen[n++] = hits[(int64_t)((double)k * (double)n_hits / (double)from_hits)];
    if (miss >= 0 && n < want) chosen[n++] = miss;
    for (int64_t r = 0; r < rp->n_pool && n < want; r++) {
        int taken = 0;
        for (int k = 0; k < n; k++) taken |= chosen[k] == r;
        if (!taken) chosen[n++] = r;
    }
    for (int a = 1; a < n; a++)   /* pool order */
        for (int b = a; b > 0 && chosen[b] < chosen[b - 1]; b--) {
            int64_t t = chosen[b];
            chosen[b] = chosen[b - 1], chosen[b - 1] = t;
        }
    return n;
}

static void write_examples(FILE *out, const report *rp) {
    int64_t chosen[POOL_USERS];
    int n = choose_examples(rp, chosen);
    if (!n) return;
    const cr_interactions *t = cr_split_train(rp->s);
    const cr_ground_truth *gt = cr_split_truth(rp->s, rp->p->part);
    int32_t target = cr_split_target(rp->s);
    fputs("<h2 id=\"users\">Example users</h2>\n<p class=\"note\">What a user did (training history, most recent first) and what "
          "each model recommends: the top 10 of the candidates, items already in the history left out. "
          "<span class=\"mark\">&#10003;</span> marks a held-out item: a hit.</p>\n<div class=\"users\">\n",
          out);
    for (int e = 0; e < n; e++) {
        int64_t r = chosen[e], gi = rp->pool_gt[r];
        int32_t u = rp->pool[r];
        int64_t h0 = t->user_ptr[u], h1 = t->user_ptr[u + 1], n_target = 0;
        for (int64_t x = h0; x < h1; x++) n_target += target >= 0 && t->item_domain[t->user_items[x]] == target;
        fputs("<div class=\"user\"><h3>user ", out);
        esc(out, cr_dataset_user_id(rp->d, u));
        fprintf(out, "</h3><div class=\"note\">%lld training events", (long long)(h1 - h0));
        if (target >= 0) {
            fprintf(out, ", %lld of them in ", (long long)n_target);
            esc(out, cr_dataset_domain_name(rp->d, target));
        }
        fprintf(out, "; %lld held-out item%s</div>\n<b>history</b><ol>", (long long)(gt->gt_ptr[gi + 1] - gt->gt_ptr[gi]),
                gt->gt_ptr[gi + 1] - gt->gt_ptr[gi] == 1 ? "" : "s");
        for (int64_t x = h1 - 1; x >= h0 && x >= h1 - HISTORY_SHOWN; x--) {
            fputs("<li>", out);
            item_line(out, rp->d, t->user_items[x]);
            fputs("</li>", out);
        }
        if (h1 - h0 > HISTORY_SHOWN) fprintf(out, "<li class=\"note\">and %lld earlier</li>", (long long)(h1 - h0 - HISTORY_SHOWN));
        fputs("</ol>\n<b>held out</b><ul>", out);
        for (int64_t g = gt->gt_ptr[gi]; g < gt->gt_ptr[gi + 1] && g < gt->gt_ptr[gi] + HISTORY_SHOWN; g++) {
            fputs("<li>", out);
            item_line(out, rp->d, gt->gt_items[g]);
            fputs("</li>", out);
        }
        fputs("</ul>\n<div class=\"recs\">", out);
        for (int k = 0; k < rp->n_models; k++) {
            fputs("<div><b>", out);
            esc(out, rp->m[k].name);
            fputs("</b><ol>", out);
            int any = 0;
            for (int j = 0; j < TOP_N; j++) {
                int32_t item = rp->m[k].top[r * TOP_N + j];
                if (item < 0) continue;
                int hit = 0;
                for (int64_t g = gt->gt_ptr[gi]; g < gt->gt_ptr[gi + 1] && !hit; g++) hit = gt->gt_items[g] == item;
                fputs(hit ? "<li class=\"hit\"><span class=\"mark\">&#10003;</span> " : "<li>", out);
                item_line(out, rp->d, item);
                fputs("</li>", out);
                any = 1;
            }
            if (!any) fputs("<li class=\"note\">cannot represent this user</li>", out);
            fputs("</ol></div>", out);
        }
        fputs("</div></div>\n", out);
    }
    fputs("</div>\n", out);
}

static void write_page(FILE *out, report *rp) {
    write_header(out, rp);
    write_table(out, rp);
    write_curves(out, rp);
    write_groups(out, rp);
    write_domains(out, rp);
    write_learning(out, rp);
    write_maps(out, rp);
    write_examples(out, rp);
    fprintf(out, "<footer>Written by crossrec %s", CR_VERSION_STRING);
    if (rp->p->command) {
        fputs(": <code>", out);
        esc(out, rp->p->command);
        fputs("</code>", out);
    }
    fputs("</footer>\n</main>\n</body>\n</html>\n", out);
}

/* ---- the entry point ---------------------------------------------------------------------------------------- */

static const char *check_params(const cr_report_params *p, int n_models) {
    if (n_models < 1 || n_models > MAX_MODELS) return "a report shows 1 to 32 models";
    if (p->n_k < 1 || p->n_k > CR_MAX_K) return "between 1 and 8 cut-offs K";
    for (int q = 0; q < p->n_k; q++)
        if (p->ks[q] < 1) return "cut-offs K must be at least 1";
    if (p->part != CR_PART_TEST && p->part != CR_PART_VALID) return "part must be valid or test";
    if (p->bootstrap < 1) return "bootstrap resamples must be at least 1";
    if (p->curve_k < 1 || p->curve_k > CR_MAX_CURVE_K) return "curves reach K = 1..1000";
    if (p->n_examples < 0 || p->n_examples > POOL_USERS) return "0 to 64 example users";
    if (p->map_points < 0) return "map points must be >= 0";
    if (p->n_logs < 0 || p->n_logs > MAX_MODELS || (p->n_logs && !p->logs)) return "at most 32 training logs";
    return NULL;
}

cr_status cr_report_write(const cr_split *s, const char *const *model_paths, int n_models, const cr_report_params *p,
                          const char *path) {
    const char *bad = check_params(p, n_models);
    if (bad) return cr_fail(CR_ERR_ARG, "report: %s", bad);
    report *rp = cr_calloc(1, sizeof *rp);
    if (!rp) return cr_fail(CR_ERR_NOMEM, "out of memory (report)");
    rp->s = s, rp->d = cr_split_dataset(s), rp->p = p, rp->n_models = n_models;
    cr_status st = CR_OK;
    for (int l = 0; l < p->n_logs && !st; l++)
        if (!(st = cr_train_log_read(p->logs[l], &rp->logs[l]))) rp->n_logs++;
    const cr_ground_truth *gt = cr_split_truth(s, p->part);
    rp->n_pool = gt->n_users < POOL_USERS ? gt->n_users : POOL_USERS;
    for (int64_t r = 0; r < rp->n_pool; r++) {
        rp->pool_gt[r] = (int64_t)((double)r * (double)gt->n_users / (double)rp->n_pool);
        rp->pool[r] = gt->users[rp->pool_gt[r]];
    }
    for (int k = 0; k < n_models && !st; k++) {
        st = add_model(rp, model_paths[k], &rp->m[k]);
        if (!st) cr_progress_report(&p->progress, k + 1, n_models);
    }
    const int n_cols = cr_compare_n_cols(p->n_k);
    if (!st && !(rp->diff = cr_malloc((size_t)(n_models * n_cols) * sizeof *rp->diff))) st = cr_fail(CR_ERR_NOMEM, "out of memory");
    if (!st) {
        const cr_eval_result *res[MAX_MODELS];
        for (int k = 0; k < n_models; k++) res[k] = rp->m[k].res;
        st = cr_compare_bootstrap(res, n_models, p->bootstrap, p->seed, rp->diff);
    }
    char *page = NULL;
    size_t len = 0;
    if (!st) {
        FILE *out = open_memstream(&page, &len);
        if (!out) {
            st = cr_fail(CR_ERR_NOMEM, "out of memory (the page)");
        } else {
            write_page(out, rp);
            if (fclose(out)) st = cr_fail(CR_ERR_NOMEM, "out of memory (the page)");
            else st = rp->page_st;
        }
    }
    if (!st) {
        const cr_span part = {page, len};
        st = cr_write_atomic(path, &part, 1);
    }
    free(page);     /* open_memstream's buffer comes from malloc */
    for (int k = 0; k < n_models; k++) {
        cr_eval_result_free(rp->m[k].res);
        cr_free(rp->m[k].xy), cr_free(rp->m[k].domain), cr_free(rp->m[k].top);
    }
    for (int l = 0; l < rp->n_logs; l++) cr_train_log_free(&rp->logs[l]);
    cr_free(rp->diff);
    cr_free(rp);
    return st;
}

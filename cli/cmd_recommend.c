/* cmd_recommend.c — answers from a trained model: `crossrec recommend` (top-K items of a domain for the users of a
 * file, one user, or an ad-hoc history) and `crossrec similar` (an item's nearest items, in any domain). Both open
 * the model with its dataset through the recommender (serve.h). */
#include "cli.h"
#include "crossrec/data.h"
#include "crossrec/index.h"
#include "crossrec/serve.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define BATCH 4096      /* users answered per cr_rec_recommend call */

typedef enum { FORMAT_TSV, FORMAT_JSONL } out_format;

static int parse_format(const char *s, out_format *f) {
    if (!strcmp(s, "tsv")) *f = FORMAT_TSV;
    else if (!strcmp(s, "jsonl")) *f = FORMAT_JSONL;
    else return -1;
    return 0;
}

/* A text field for a TSV cell: tabs and line breaks become spaces. */
static void put_cell(FILE *out, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, out);
}

/* One result list: TSV rows `who rank item score domain`, or one JSON line {"user", "domain", "items": [...]}
 * (key `key` holds who: "user" or "item"). n < 0: the model cannot represent who (JSON: an "error" member). */
static cr_status write_list(FILE *out, out_format f, const cr_dataset *d, const char *key, const char *who, const char *domain,
                            const int32_t *items, const float *scores, int64_t n) {
    const int32_t *item_domain = cr_dataset_inter(d)->item_domain;
    if (f == FORMAT_TSV) {
        for (int64_t x = 0; x < n; x++) {
            put_cell(out, who ? who : "-");
            fprintf(out, "\t%lld\t", (long long)x + 1);
            put_cell(out, cr_dataset_item_id(d, items[x]));
            fprintf(out, "\t%.6g\t", (double)scores[x]);
            put_cell(out, cr_dataset_domain_name(d, item_domain[items[x]]));
            fputc('\n', out);
        }
        return CR_OK;
    }
    json_t *list = json_array();
    json_t *root = json_pack("{s:s?, s:s, s:o}", key, who, "domain", domain, "items", list);
    if (root && n < 0 && json_object_set_new(root, "error", json_string("the model cannot represent this user"))) json_decref(root), root = NULL;
    for (int64_t x = 0; root && x < n; x++) {
        json_t *it = json_pack("{s:s, s:f, s:s, s:s}", "item", cr_dataset_item_id(d, items[x]), "score", (double)scores[x], "domain",
                               cr_dataset_domain_name(d, item_domain[items[x]]), "title", cr_dataset_item_title(d, items[x]));
        if (json_array_append_new(list, it)) json_decref(root), root = NULL;
    }
    if (!root) return cr_fail(CR_ERR_NOMEM, "out of memory writing JSON");
    int bad = json_dumpf(root, out, JSON_COMPACT | JSON_REAL_PRECISION(7)) || fputc('\n', out) == EOF;
    json_decref(root);
    return bad ? cr_fail(CR_ERR_IO, "cannot write the output") : CR_OK;
}

/* Output to a file is written as FILE.tmp and renamed when complete; "-" is standard output. */
typedef struct {
    FILE *f;
    const char *path;
    char tmp[4096];
} output;

static cr_status output_open(output *o, const char *path) {
    o->path = path;
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return CR_OK;
    }
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", path);
    if (!(o->f = fopen(o->tmp, "w"))) return cr_fail(CR_ERR_IO, "%s: cannot write: %s", o->tmp, strerror(errno));
    return CR_OK;
}

static cr_status output_close(output *o, cr_status st) {
    if (o->f == stdout) return fflush(stdout) && !st ? cr_fail(CR_ERR_IO, "cannot write standard output") : st;
    if (!o->f) return st;
    int bad = ferror(o->f) | (fclose(o->f) != 0);
    if (!st && bad) st = cr_fail(CR_ERR_IO, "%s: cannot write: %s", o->tmp, strerror(errno));
    if (!st && rename(o->tmp, o->path)) st = cr_fail(CR_ERR_IO, "%s: cannot rename to %s: %s", o->tmp, o->path, strerror(errno));
    if (st) remove(o->tmp);
    return st;
}

/* Answers n queries in batches and writes them; *unanswered counts the ones the model cannot represent. */
static cr_status answer(const cr_rec *r, const cr_rec_query *q, const char *const *who, int64_t n, const cr_rec_options *o,
                        output *out, out_format f, int64_t *unanswered, const cr_progress *progress) {
    const cr_dataset *d = cr_rec_dataset(r);
    const char *domain = cr_dataset_domain_name(d, o->domain);
    int64_t b = n < BATCH ? n : BATCH;
    int32_t *items = cr_malloc((size_t)(b * o->k + 1) * sizeof *items);
    float *scores = cr_malloc((size_t)(b * o->k + 1) * sizeof *scores);
    int64_t *found = cr_malloc((size_t)(b + 1) * sizeof *found);
    cr_status st = items && scores && found ? CR_OK : cr_fail(CR_ERR_NOMEM, "out of memory (recommendations)");
    for (int64_t j0 = 0; j0 < n && !st; j0 += b) {
        int64_t m = n - j0 < b ? n - j0 : b;
        if ((st = cr_rec_recommend(r, q + j0, m, o, items, scores, found))) break;
        for (int64_t j = 0; j < m && !st; j++) {
            *unanswered += found[j] < 0;
            st = write_list(out->f, f, d, "user", who[j0 + j], domain, items + j * o->k, scores + j * o->k, found[j]);
        }
        cr_progress_report(progress, j0 + m, n);
    }
    cr_free(items);
    cr_free(scores);
    cr_free(found);
    return st;
}

/* The users of a table's `user` column, as queries (and their ids). Unknown ids stop with file:line. */
static cr_status read_users(const cr_dataset *d, const char *path, cr_rec_query **q, const char ***ids, int64_t *n) {
    *q = NULL, *ids = NULL, *n = 0;
    cr_table *t;
    cr_status st = cr_table_open(&t, path, NULL);
    if (st) return st;
    const char *col = "user";
    if ((st = cr_table_select(t, &col, NULL, 1))) {
        cr_table_close(t);
        return st;
    }
    int64_t cap_q = 0, cap_ids = 0;
    cr_field fld;
    while ((st = cr_table_next(t, &fld)) == CR_OK) {
        char id[1024];
        snprintf(id, sizeof id, "%.*s", (int)(fld.len < 1000 ? fld.len : 1000), fld.p);
        int32_t u = cr_dataset_find_user(d, id);
        if (u < 0) {
            st = cr_fail(CR_ERR_PARSE, "%s:%lld: user '%s' is not in the dataset", cr_table_name(t), (long long)cr_table_line(t), id);
            break;
        }
        if ((st = cr_grow((void **)q, &cap_q, *n + 1, sizeof **q)) || (st = cr_grow((void **)ids, &cap_ids, *n + 1, sizeof **ids))) break;
        (*q)[*n] = (cr_rec_query){.user = u};
        (*ids)[(*n)++] = cr_dataset_user_id(d, u);
    }
    cr_table_close(t);
    if (st == CR_DONE) return CR_OK;
    cr_free(*q), cr_free(*ids);
    *q = NULL, *ids = NULL, *n = 0;
    return st;
}

/* Item ids separated by spaces or commas -> indices (cr_malloc'ed). Unknown ids: CR_ERR_NOTFOUND. */
static cr_status parse_history(const cr_dataset *d, const char *text, int32_t **items, int64_t *n) {
    *items = NULL, *n = 0;
    int64_t cap = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, " \t\n,");
        if (len) {
            char id[1024];
            snprintf(id, sizeof id, "%.*s", (int)(len < 1000 ? len : 1000), p);
            int32_t i = cr_dataset_find_item(d, id);
            cr_status st = i < 0 ? cr_fail(CR_ERR_NOTFOUND, "--history: item '%s' is not in the dataset", id)
                                 : cr_grow((void **)items, &cap, *n + 1, sizeof **items);
            if (st) {
                cr_free(*items);
                *items = NULL, *n = 0;
                return st;
            }
            (*items)[(*n)++] = i;
        }
        p += len + (p[len] != '\0');
    }
    return CR_OK;
}

/* The checks both commands share (-k, --format), then the model with its dataset. Returns 0, or the exit code. */
static int open_recommender(const cli_cmd_info *info, const char *model, const char *data, int64_t k, const char *format,
                            out_format *f, cr_rec **r) {
    if (k < 1 || k > CR_INDEX_MAX_K) return cli_usage_error(info, "-k must be 1..%d", CR_INDEX_MAX_K);
    if (parse_format(format, f)) return cli_usage_error(info, "--format must be tsv or jsonl, not '%s'", format);
    cr_rec_params p = cr_rec_default_params();
    p.data_path = data;
    cr_status st = cr_rec_open(r, model, &p);
    return st ? cli_fail(st) : 0;
}

static const cli_cmd_info recommend_info = {
    "recommend",
    "recommend model.crm (--users FILE | --user ID | --history \"i1 i2 ...\") --domain T [-k 10] [--exclude-seen]\n"
    "       [--format tsv|jsonl] [-o FILE] [--data data.crd] [--threads N]",
    "Top-k items of domain T for every user of FILE (a table with a `user` column, like a split's users.tsv), for\n"
    "one known user, or for a new user given by the item ids of a history, oldest first (no retraining). A known\n"
    "user's history is its events in the dataset, every domain, in time order. The dataset is the one the model\n"
    "was trained on (recorded in the model; --data gives it when moved). TSV rows: user, rank, item, score, domain;\n"
    "JSON Lines: one object per user with items, scores, domains and titles. Users the model cannot represent (a\n"
    "bpr model and a user without training events in its domain) get no rows, or an \"error\" member, and are\n"
    "counted on stderr.",
};

int cmd_recommend(int argc, char **argv) {
    const char *users_file = NULL, *user = NULL, *history = NULL, *domain = NULL, *format = "tsv", *out_path = "-", *data = NULL;
    int64_t k = 10, threads = 0;
    int exclude_seen = 0, quiet = 0;
    const cli_opt opts[] = {
        {"users", 0, CLI_STR, &users_file, NULL, 0, "FILE", "recommend for the users of FILE's `user` column"},
        {"user", 0, CLI_STR, &user, NULL, 0, "ID", "recommend for one known user"},
        {"history", 0, CLI_STR, &history, NULL, 0, "\"I1 I2\"", "recommend for a new user with these items, oldest first"},
        {"domain", 0, CLI_STR, &domain, NULL, 0, "T", "recommend items of domain T"},
        {"k", 'k', CLI_INT, &k, NULL, 0, "K", "items per user"},
        {"exclude-seen", 0, CLI_FLAG, &exclude_seen, NULL, 0, NULL, "leave out items already in the user's history"},
        {"format", 0, CLI_STR, &format, NULL, 0, "F", "tsv or jsonl"},
        {"output", 'o', CLI_STR, &out_path, NULL, 0, "FILE", "where to write (- for standard output)"},
        {"data", 0, CLI_STR, &data, NULL, 0, "FILE", "the dataset (.crd) the model was trained on, if not where it was"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads, 0: all cores"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "no progress line or summary"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&recommend_info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&recommend_info, "give one model file (.crm)");
    if (!!users_file + !!user + !!history != 1) return cli_usage_error(&recommend_info, "give one of --users FILE, --user ID or --history \"I1 I2 ...\"");
    if (!domain) return cli_usage_error(&recommend_info, "give --domain T, the domain to recommend items of");
    if (threads < 0 || threads > 4096) return cli_usage_error(&recommend_info, "--threads must be 0..4096");
    out_format f;
    cr_rec *r;
    if ((rc = open_recommender(&recommend_info, pos[0], data, k, format, &f, &r))) return rc;
    cr_status st;
    const cr_dataset *d = cr_rec_dataset(r);
    cr_rec_options o = cr_rec_default_options();
    o.k = k;
    o.exclude_seen = exclude_seen;
    o.threads = (int)threads;
    cr_rec_query one = {.user = -1}, *q = &one;
    const char *one_id = user, **ids = &one_id;
    int32_t *hist = NULL;
    int64_t n = 1, unanswered = 0;
    output out = {0};
    if ((st = cr_dataset_domain_named(d, domain, &o.domain))) goto done;
    if (users_file) {
        if ((st = read_users(d, users_file, &q, &ids, &n))) goto done;
    } else if (user && (one.user = cr_dataset_find_user(d, user)) < 0) {
        st = cr_fail(CR_ERR_NOTFOUND, "user '%s' is not in the dataset", user);
        cr_set_hint("for a new user, give the items of its history with --history");
        goto done;
    } else if (history) {
        if ((st = parse_history(d, history, &hist, &one.n_history))) goto done;
        one.history = hist;
    }
    if ((st = output_open(&out, out_path))) goto done;
    if (f == FORMAT_TSV) fprintf(out.f, "user\trank\titem\tscore\tdomain\n");
    cli_progress pr;
    cr_progress progress = cli_progress_start(&pr, "recommend", "user", quiet || n < 2);
    st = answer(r, q, ids, n, &o, &out, f, &unanswered, &progress);
    st = output_close(&out, st);
    if (st || n < 2) cli_progress_end(&pr, stderr, NULL);
    else cli_progress_end(&pr, stderr, "recommend: %lld users, top %lld in %s, in %.2f s -> %s", (long long)n, (long long)o.k, domain,
                          cr_now() - pr.t0, strcmp(out_path, "-") ? out_path : "standard output");
    if (!st && unanswered)
        fprintf(stderr, "crossrec: %lld of %lld users cannot be represented by the %s model (%s)\n", (long long)unanswered,
                (long long)n, cr_model_name(cr_rec_model(r)), f == FORMAT_TSV ? "no rows" : "\"error\" members");
done:
    if (q != &one) cr_free(q);
    if (ids != &one_id) cr_free(ids);
    cr_free(hist);
    cr_rec_free(r);
    return st ? cli_fail(st) : 0;
}

static const cli_cmd_info similar_info = {
    "similar",
    "similar model.crm --item ID [--domain D|all] [-k 10] [--format tsv|jsonl] [--data data.crd]",
    "Lists the k items most similar to an item according to a model: cosine of the model's item vectors (bpr,\n"
    "als, cmf, emcdr, ptupcdr, tower) or item-kNN's neighbour lists. Among the item's own domain unless --domain\n"
    "names another (\"customers who like this art supply buy these office products\") or all. TSV: item, domain,\n"
    "score, title.",
};

int cmd_similar(int argc, char **argv) {
    const char *item_id = NULL, *domain = NULL, *format = "tsv", *data = NULL;
    int64_t k = 10;
    const cli_opt opts[] = {
        {"item", 0, CLI_STR, &item_id, NULL, 0, "ID", "the item whose similar items are listed"},
        {"domain", 0, CLI_STR, &domain, NULL, 0, "D", "domain of the similar items, or all (default: the item's)"},
        {"k", 'k', CLI_INT, &k, NULL, 0, "K", "items to list"},
        {"format", 0, CLI_STR, &format, NULL, 0, "F", "tsv or jsonl"},
        {"data", 0, CLI_STR, &data, NULL, 0, "FILE", "the dataset (.crd) the model was trained on, if not where it was"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&similar_info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&similar_info, "give one model file (.crm)");
    if (!item_id) return cli_usage_error(&similar_info, "give the item with --item ID");
    out_format f;
    cr_rec *r;
    if ((rc = open_recommender(&similar_info, pos[0], data, k, format, &f, &r))) return rc;
    cr_status st = CR_OK;
    const cr_dataset *d = cr_rec_dataset(r);
    int32_t item = cr_dataset_find_item(d, item_id), t = -1;
    int32_t items[CR_INDEX_MAX_K];
    float scores[CR_INDEX_MAX_K];
    int64_t n = 0;
    if (item < 0) {
        st = cr_fail(CR_ERR_NOTFOUND, "item '%s' is not in the dataset", item_id);
    } else {
        if (!domain) t = cr_dataset_inter(d)->item_domain[item];
        else if (strcmp(domain, "all")) st = cr_dataset_domain_named(d, domain, &t);
        if (!st) st = cr_rec_similar(r, item, t, k, items, scores, &n);
    }
    if (!st && f == FORMAT_TSV) {
        printf("item\tdomain\tscore\ttitle\n");
        for (int64_t x = 0; x < n; x++) {
            put_cell(stdout, cr_dataset_item_id(d, items[x]));
            printf("\t%s\t%.6g\t", cr_dataset_domain_name(d, cr_dataset_inter(d)->item_domain[items[x]]), (double)scores[x]);
            put_cell(stdout, cr_dataset_item_title(d, items[x]));
            putchar('\n');
        }
    } else if (!st) {
        st = write_list(stdout, f, d, "item", item_id, t >= 0 ? cr_dataset_domain_name(d, t) : "all", items, scores, n);
    }
    cr_rec_free(r);
    return st ? cli_fail(st) : 0;
}

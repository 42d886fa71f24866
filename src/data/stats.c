/* stats.c — dataset statistics: per-domain counts and density, items never interacted, the overlap matrix
 * of users between domains, and history-length quantiles; printed as tables or one JSON object. */
#include "dataset_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank quantiles of n sorted values: min, p25, p50, p75, p90, p99, max. */
static void quantiles(const int64_t *v, int64_t n, int64_t q[7]) {
    static const double at[7] = {0, 0.25, 0.5, 0.75, 0.9, 0.99, 1};
    for (int k = 0; k < 7; k++) {
        if (n == 0) {
            q[k] = 0;
            continue;
        }
        int64_t r = (int64_t)(at[k] * (double)n + 0.999999999);   /* ceil(p * n), 1-based */
        if (r < 1) r = 1;
        if (r > n) r = n;
        q[k] = v[r - 1];
    }
}

cr_status cr_dataset_stats(const cr_dataset *d, cr_stats *s) {
    const cr_interactions *v = &d->v;
    int64_t nd = v->n_domains;
    memset(s, 0, sizeof *s);
    s->n_domains = nd;
    int64_t *count = NULL, *lens = NULL, *len_at = NULL;
    int32_t *touched = NULL;
    s->dom = cr_calloc((size_t)(nd ? nd : 1), sizeof *s->dom);
    s->overlap = cr_calloc((size_t)(nd ? nd * nd : 1), sizeof *s->overlap);
    count = cr_calloc((size_t)(nd ? nd : 1), sizeof *count);
    touched = cr_malloc((size_t)(nd ? nd : 1) * sizeof *touched);
    lens = cr_malloc((size_t)(v->n_inter + v->n_users + 1) * sizeof *lens);   /* per (user, domain) lengths, then per user */
    len_at = cr_calloc((size_t)nd + 1, sizeof *len_at);
    if (!s->dom || !s->overlap || !count || !touched || !lens || !len_at) {
        cr_free(count), cr_free(touched), cr_free(lens), cr_free(len_at);
        cr_stats_free(s);
        return cr_fail(CR_ERR_NOMEM, "out of memory computing statistics");
    }
    for (int64_t i = 0; i < v->n_items; i++) {
        cr_domain_stats *ds = &s->dom[v->item_domain[i]];
        ds->items++;
        ds->inter += v->item_ptr[i + 1] - v->item_ptr[i];
        if (v->item_ptr[i + 1] == v->item_ptr[i]) ds->items_never++, s->all.items_never++;
    }
    /* First pass: users per domain (to lay out the length lists), overlap matrix. */
    for (int64_t u = 0; u < v->n_users; u++) {
        int nt = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t dom = v->item_domain[v->user_items[e]];
            if (count[dom]++ == 0) touched[nt++] = dom;
        }
        if (nt > 1) s->multi_domain_users++;
        for (int a = 0; a < nt; a++) {
            s->dom[touched[a]].users++;
            for (int b = 0; b < nt; b++) s->overlap[touched[a] * nd + touched[b]]++;
        }
        for (int a = 0; a < nt; a++) count[touched[a]] = 0;
    }
    for (int64_t k = 0; k < nd; k++) len_at[k + 1] = len_at[k] + s->dom[k].users;
    /* Second pass: each user's history length in each domain it touched, grouped by domain. */
    int64_t *fill = count;   /* reuse as per-domain write cursor, then reset per user below */
    int64_t *cursor = cr_calloc((size_t)(nd ? nd : 1), sizeof *cursor);
    if (!cursor) {
        cr_free(count), cr_free(touched), cr_free(lens), cr_free(len_at);
        cr_stats_free(s);
        return cr_fail(CR_ERR_NOMEM, "out of memory computing statistics");
    }
    for (int64_t u = 0; u < v->n_users; u++) {
        int nt = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t dom = v->item_domain[v->user_items[e]];
            if (fill[dom]++ == 0) touched[nt++] = dom;
        }
        for (int a = 0; a < nt; a++) {
            int32_t dom = touched[a];
            lens[len_at[dom] + cursor[dom]++] = fill[dom];
            fill[dom] = 0;
        }
    }
    for (int64_t k = 0; k < nd; k++) {
        cr_domain_stats *ds = &s->dom[k];
        qsort(lens + len_at[k], (size_t)ds->users, sizeof *lens, cmp_i64);
        quantiles(lens + len_at[k], ds->users, ds->hist_q);
        ds->density = ds->users && ds->items ? (double)ds->inter / ((double)ds->users * (double)ds->items) : 0;
    }
    /* Whole dataset: per-user lengths over all domains. */
    int64_t *ulens = lens + len_at[nd];
    for (int64_t u = 0; u < v->n_users; u++) ulens[u] = v->user_ptr[u + 1] - v->user_ptr[u];
    qsort(ulens, (size_t)v->n_users, sizeof *ulens, cmp_i64);
    s->all.users = v->n_users;
    s->all.items = v->n_items;
    s->all.inter = v->n_inter;
    s->all.density = v->n_users && v->n_items ? (double)v->n_inter / ((double)v->n_users * (double)v->n_items) : 0;
    quantiles(ulens, v->n_users, s->all.hist_q);
    cr_free(count), cr_free(touched), cr_free(lens), cr_free(len_at), cr_free(cursor);
    return CR_OK;
}

void cr_stats_free(cr_stats *s) {
    cr_free(s->dom);
    cr_free(s->overlap);
    memset(s, 0, sizeof *s);
}

static void print_row(FILE *out, const char *name, const cr_domain_stats *ds) {
    fprintf(out, "%-24.24s %9lld %9lld %11lld %10.6f %9lld  %lld/%lld/%lld/%lld/%lld/%lld/%lld\n", name, (long long)ds->users,
            (long long)ds->items, (long long)ds->inter, ds->density, (long long)ds->items_never, (long long)ds->hist_q[0],
            (long long)ds->hist_q[1], (long long)ds->hist_q[2], (long long)ds->hist_q[3], (long long)ds->hist_q[4],
            (long long)ds->hist_q[5], (long long)ds->hist_q[6]);
}

void cr_stats_print(const cr_dataset *d, const cr_stats *s, FILE *out) {
    fprintf(out, "%lld users, %lld items, %lld interactions, %lld domains; %lld users active in more than one domain\n",
            (long long)s->all.users, (long long)s->all.items, (long long)s->all.inter, (long long)s->n_domains,
            (long long)s->multi_domain_users);
    fprintf(out, "timestamps: %s; values: %s; source: %s\n\n", d->has_time ? "from input" : "line order",
            d->has_value ? "from input" : "all 1", d->source ? d->source : "");
    fprintf(out, "%-24s %9s %9s %11s %10s %9s  %s\n", "domain", "users", "items", "interactions", "density", "no-inter",
            "events per user min/p25/p50/p75/p90/p99/max");
    for (int64_t k = 0; k < s->n_domains; k++) print_row(out, cr_dataset_domain_name(d, (int32_t)k), &s->dom[k]);
    print_row(out, "(all)", &s->all);
    if (s->n_domains < 2) return;
    fprintf(out, "\nusers active in both domains (row, column):\n%-16s", "");
    for (int64_t b = 0; b < s->n_domains; b++) fprintf(out, " %9.9s", cr_dataset_domain_name(d, (int32_t)b));
    fprintf(out, "\n");
    for (int64_t a = 0; a < s->n_domains; a++) {
        fprintf(out, "%-16.16s", cr_dataset_domain_name(d, (int32_t)a));
        for (int64_t b = 0; b < s->n_domains; b++) fprintf(out, " %9lld", (long long)s->overlap[a * s->n_domains + b]);
        fprintf(out, "\n");
    }
}

static json_t *domain_json(const cr_domain_stats *ds) {
    json_t *q = json_pack("{sI sI sI sI sI sI sI}", "min", (json_int_t)ds->hist_q[0], "p25", (json_int_t)ds->hist_q[1], "p50",
                          (json_int_t)ds->hist_q[2], "p75", (json_int_t)ds->hist_q[3], "p90", (json_int_t)ds->hist_q[4], "p99",
                          (json_int_t)ds->hist_q[5], "max", (json_int_t)ds->hist_q[6]);
    return json_pack("{sI sI sI sI sf so}", "users", (json_int_t)ds->users, "items", (json_int_t)ds->items, "interactions",
                     (json_int_t)ds->inter, "items_never_interacted", (json_int_t)ds->items_never, "density", ds->density,
                     "events_per_user", q);
}

cr_status cr_stats_json(const cr_dataset *d, const cr_stats *s, FILE *out) {
    json_t *doms = json_object(), *names = json_array(), *overlap = json_array();
    int bad = !doms || !names || !overlap;
    for (int64_t k = 0; k < s->n_domains && !bad; k++) {
        const char *name = cr_dataset_domain_name(d, (int32_t)k);
        json_t *row = json_array();
        bad = json_array_append_new(names, json_string(name)) || json_object_set_new(doms, name, domain_json(&s->dom[k])) ||
              json_array_append_new(overlap, row);
        for (int64_t b = 0; b < s->n_domains && !bad; b++)
            bad = json_array_append_new(row, json_integer((json_int_t)s->overlap[k * s->n_domains + b]));
    }
    if (bad) {
        json_decref(doms), json_decref(names), json_decref(overlap);
        return cr_fail(CR_ERR_NOMEM, "out of memory writing statistics");
    }
    /* "o" steals the references, also when packing fails */
    json_t *root = json_pack("{s:o, s:I, s:b, s:b, s:o, s:o, s:o}", "all", domain_json(&s->all), "multi_domain_users",
                             (json_int_t)s->multi_domain_users, "has_time", d->has_time, "has_value", d->has_value,
                             "domain_names", names, "domains", doms, "overlap", overlap);
    if (!root) return cr_fail(CR_ERR_NOMEM, "out of memory writing statistics");
    cr_status st = CR_OK;
    if (json_dumpf(root, out, JSON_INDENT(2)) || fputc('\n', out) == EOF) st = cr_fail(CR_ERR_IO, "cannot write statistics");
    json_decref(root);
    return st;
}

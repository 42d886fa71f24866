/* import.c — builds a cr_dataset from interaction logs and item catalogues.
 *
 * Pass 1 reads the catalogue(s): item ids in file order, domain, title, text. Pass 2 streams the
 * interaction files into four flat event arrays (user, item, time, value). Then the events are regrouped by
 * user without a second copy: a counting sort turns each event's user into its destination, the events are
 * moved there in place by following cycles, and each user's slice is stably sorted by time. Peak memory is
 * about 20 bytes per event, as is the result (user-ordered item/time/value plus item-ordered users).
 *
 * A line is validated completely before anything from it is kept, so --skip-bad-lines never leaves half a
 * line behind. */
#include "dataset_impl.h"

#include <sys/stat.h>

#include <string.h>

static const char *const user_aliases[] = {"user", "user_id", "userId", "userid", "uid", "reviewerID", "customer_id", NULL};
static const char *const item_aliases[] = {"item", "item_id", "itemId", "itemid", "iid", "asin", "product_id", "movieId", NULL};
static const char *const time_aliases[] = {"timestamp", "time", "ts", "unixReviewTime", NULL};
static const char *const value_aliases[] = {"value", "rating", "score", "overall", NULL};
static const char *const domain_aliases[] = {"domain", "category", "categories", NULL};
static const char *const title_aliases[] = {"title", "name", "movie_title", NULL};
static const char *const text_aliases[] = {"text", "description", "desc", NULL};

cr_import_params cr_import_default_params(void) {
    cr_import_params p;
    memset(&p, 0, sizeof p);
    p.table = cr_table_default_opts();
    return p;
}

typedef struct {
    const cr_import_params *p;
    cr_import_report *rep;
    cr_dataset *d;
    int32_t *ev_user, *ev_item;         /* (n_ev) */
    int64_t *ev_time;                   /* (n_ev) */
    float *ev_value;                    /* (n_ev) */
    int64_t n_ev, cap_ev, cap_dom;
    int32_t *item_dom;                  /* (items.n) domain of each item while building */
    int32_t unknown_domain;             /* index of domain "unknown", -1 until first needed */
    int64_t bytes_total;                /* size of all input files (0: a size is unknown), for progress */
    int64_t bytes_done;                 /* bytes of the files already read */
} importer;

#define PROGRESS_LINES 8192

/* Progress every PROGRESS_LINES lines of table t; and when t has been read to its end (t then counts as done). */
static void import_progress(importer *im, const cr_table *t, int finished) {
    if (finished) im->bytes_done += cr_table_bytes_in(t);
    else if (im->rep->lines % PROGRESS_LINES) return;
    int64_t done = im->bytes_done + (finished ? 0 : cr_table_bytes_in(t));
    cr_progress_report(&im->p->progress, im->bytes_total && done > im->bytes_total ? im->bytes_total : done, im->bytes_total);
}

/* Picks the column for one field: the explicit name (must exist when required), else the first alias present. */
static const char *pick_col(const cr_table *t, const char *explicit_name, const char *const *aliases) {
    if (explicit_name) return explicit_name;
    for (int i = 0; aliases[i]; i++)
        if (cr_table_has_col(t, aliases[i])) return aliases[i];
    return aliases[0];
}

/* "dir/office.inter.gz" -> "office" into buf. */
static void file_stem(const char *path, char *buf, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, cap, "%s", base);
    char *dot = strchr(buf, '.');
    if (dot && dot != buf) *dot = '\0';
}

static cr_status nomem(void) { return cr_fail(CR_ERR_NOMEM, "out of memory while importing"); }

/* A failure for one line: counted and skipped under --skip-bad-lines, fatal otherwise. Returns CR_OK to go on. */
static cr_status bad_line(importer *im, cr_status st) {
    if (!im->p->skip_bad_lines || (st != CR_ERR_PARSE && st != CR_ERR_LIMIT)) {
        if (st == CR_ERR_PARSE || st == CR_ERR_LIMIT) cr_set_hint("fix the line, or pass --skip-bad-lines to skip and count bad lines");
        return st;
    }
    if (im->rep->skipped++ == 0) snprintf(im->rep->first_skipped, sizeof im->rep->first_skipped, "%s", cr_errmsg());
    return CR_OK;
}

/* Shows at most 40 bytes of a field in a message. */
#define FIELD_FMT "'%.*s%s'"
#define FIELD_ARGS(f) (int)((f).len > 40 ? 40 : (f).len), (f).p, ((f).len > 40 ? "..." : "")

/* "file:line:col" or, where the reader knows no column (JSON Lines), "file:line". */
static void where(char *buf, size_t cap, const char *name, int64_t line, int64_t col) {
    if (col > 0) snprintf(buf, cap, "%s:%lld:%lld", name, (long long)line, (long long)col);
    else snprintf(buf, cap, "%s:%lld", name, (long long)line);
}

static cr_status field_error(const cr_table *t, const cr_field *f, const char *col, const char *expected) {
    char at[512];
    where(at, sizeof at, cr_table_name(t), cr_table_line(t), f->col);
    return cr_fail(CR_ERR_PARSE, "%s: field '%s': expected %s, found " FIELD_FMT, at, col, expected, FIELD_ARGS(*f));
}

/* Ids and names must be non-empty. (The reader has already refused invalid UTF-8 and NUL bytes.) */
static cr_status check_id(const cr_table *t, const cr_field *f, const char *col) {
    return f->len == 0 ? field_error(t, f, col, "a non-empty id") : CR_OK;
}

static cr_status intern_domain(importer *im, const char *name, int64_t len, int32_t *dom) {
    return cr_idmap_intern(&im->d->domain_map, &im->d->domains, name, len, dom, NULL);
}

/* Adds a new item with its domain, title and text, keeping the per-item pools aligned with the id pool. */
static cr_status add_item(importer *im, const cr_field *id, int32_t dom, const cr_field *title, const cr_field *text,
                          int32_t *index) {
    cr_dataset *d = im->d;
    int added;
    cr_status st = cr_idmap_intern(&d->item_map, &d->items, id->p, id->len, index, &added);
    if (st) return st;
    CR_ASSERT(added);
    if ((st = cr_grow((void **)&im->item_dom, &im->cap_dom, d->items.n, sizeof *im->item_dom))) return st;
    im->item_dom[*index] = dom;
    const char *tp = title && title->p ? title->p : "";
    const char *xp = text && text->p ? text->p : "";
    if ((st = cr_strpool_add(&d->titles, tp, title && title->p ? (size_t)title->len : 0, NULL)) ||
        (st = cr_strpool_add(&d->texts, xp, text && text->p ? (size_t)text->len : 0, NULL)))
        return st;
    return CR_OK;
}

static cr_status read_catalogue(importer *im, const char *path) {
    const cr_import_params *p = im->p;
    cr_table *t;
    cr_status st = cr_table_open(&t, path, &p->table);
    if (st) return st;
    const char *names[4] = {pick_col(t, p->item_col, item_aliases), pick_col(t, p->domain_col, domain_aliases),
                            pick_col(t, p->title_col, title_aliases), pick_col(t, p->text_col, text_aliases)};
    const int required[4] = {1, p->domain_col != NULL, p->title_col != NULL, p->text_col != NULL};
    if ((st = cr_table_select(t, names, required, 4))) goto done;
    char stem[256];
    file_stem(path, stem, sizeof stem);
    int32_t stem_dom = -1;
    cr_field f[4];
    for (;;) {
        st = cr_table_next(t, f);
        if (st == CR_DONE) {
            st = CR_OK;
            break;
        }
        if (st == CR_OK) {
            im->rep->lines++;
            import_progress(im, t, 0);
            if (!(st = check_id(t, &f[0], names[0])) && f[1].p) st = check_id(t, &f[1], names[1]);
            if (!st && cr_idmap_find(&im->d->item_map, f[0].p, f[0].len) >= 0)
                st = cr_fail(CR_ERR_PARSE, "%s:%lld: duplicate item id " FIELD_FMT " (each item may be listed once)", path,
                             (long long)cr_table_line(t), FIELD_ARGS(f[0]));
        }
        if (st == CR_OK) {
            int32_t dom, idx;
            if (f[1].p) st = intern_domain(im, f[1].p, f[1].len, &dom);
            else if (stem_dom < 0) st = intern_domain(im, stem, (int64_t)strlen(stem), &stem_dom), dom = stem_dom;
            else dom = stem_dom;
            if (st || (st = add_item(im, &f[0], dom, &f[2], &f[3], &idx))) break;
        } else if ((st = bad_line(im, st))) {
            break;
        }
    }
done:
    if (!st) import_progress(im, t, 1);
    cr_table_close(t);
    return st;
}

/* Appends one event. The four arrays grow together: doubling while small, then by a quarter, so that the
 * slack (given back by shrink_events) stays small for big logs; large blocks grow in place (mremap). */
static cr_status push_event(importer *im, int32_t u, int32_t i, int64_t time, float value) {
    if (im->n_ev == im->cap_ev) {
        int64_t cap = im->cap_ev < 4096 ? 4096 : im->cap_ev < (1 << 20) ? 2 * im->cap_ev : im->cap_ev + im->cap_ev / 4;
        void *p;
        if (!(p = cr_realloc(im->ev_user, (size_t)cap * sizeof(int32_t)))) return nomem();
        im->ev_user = p;
        if (!(p = cr_realloc(im->ev_item, (size_t)cap * sizeof(int32_t)))) return nomem();
        im->ev_item = p;
        if (!(p = cr_realloc(im->ev_time, (size_t)cap * sizeof(int64_t)))) return nomem();
        im->ev_time = p;
        if (!(p = cr_realloc(im->ev_value, (size_t)cap * sizeof(float)))) return nomem();
        im->ev_value = p;
        im->cap_ev = cap;
    }
    im->ev_user[im->n_ev] = u;
    im->ev_item[im->n_ev] = i;
    im->ev_time[im->n_ev] = time;
    im->ev_value[im->n_ev] = value;
    im->n_ev++;
    return CR_OK;
}

/* Interaction lines are resolved in small batches: the item ids of a batch are hashed and their table slots
 * prefetched first, so the cache misses of the lookups overlap instead of following one another. */
#define BATCH 32

typedef struct {
    int64_t line, item_col, time;
    float value;
    int64_t user_off, user_len, item_off, item_len;   /* into batch.keys */
    uint32_t item_hash;
} pending_event;

typedef struct {
    const char *path;
    char stem[256];                 /* domain of new items when there is no catalogue */
    int32_t new_item_dom;
    int32_t last_user;              /* logs are usually grouped by user: repeats skip the hash lookup */
    pending_event ev[BATCH];
    int n;
    char *keys;                     /* (keys_cap) user and item ids of the batch */
    int64_t keys_len, keys_cap;
} event_batch;

static cr_status batch_add(importer *im, event_batch *b, const cr_field *f, int64_t line, int64_t time, float value) {
    int64_t need = b->keys_len + f[0].len + f[1].len;
    cr_status st = cr_grow((void **)&b->keys, &b->keys_cap, need, 1);
    if (st) return st;
    pending_event *e = &b->ev[b->n++];
    e->line = line, e->item_col = f[1].col, e->time = time, e->value = value;
    e->user_off = b->keys_len, e->user_len = f[0].len;
    memcpy(b->keys + b->keys_len, f[0].p, (size_t)f[0].len);
    e->item_off = b->keys_len + f[0].len, e->item_len = f[1].len;
    memcpy(b->keys + e->item_off, f[1].p, (size_t)f[1].len);
    b->keys_len = need;
    e->item_hash = cr_idmap_hash(f[1].p, f[1].len);
    cr_idmap_prefetch(&im->d->item_map, e->item_hash);
    return CR_OK;
}

/* Resolves the ids of the batched lines, in order, and appends their events. */
static cr_status batch_flush(importer *im, event_batch *b) {
    const cr_import_params *p = im->p;
    cr_dataset *d = im->d;
    cr_status st = CR_OK;
    for (int k = 0; k < b->n && !st; k++) {
        const pending_event *e = &b->ev[k];
        const char *user = b->keys + e->user_off, *item_id = b->keys + e->item_off;
        int32_t item = cr_idmap_find_hashed(&d->item_map, item_id, e->item_len, e->item_hash);
        if (item < 0 && p->n_items > 0 && !p->allow_unknown_items) {
            char at[512];
            cr_field f = {item_id, e->item_len, e->item_col};
            where(at, sizeof at, b->path, e->line, e->item_col);
            st = cr_fail(CR_ERR_PARSE, "%s: item " FIELD_FMT " is not in the catalogue (%s)", at, FIELD_ARGS(f), p->items[0]);
            if ((st = bad_line(im, st))) cr_set_hint("add the item to the items file, or pass --allow-unknown-items (domain 'unknown')");
            continue;
        }
        if (item < 0) {
            if (p->n_items > 0) {
                if (im->unknown_domain < 0 && (st = intern_domain(im, "unknown", 7, &im->unknown_domain))) break;
                b->new_item_dom = im->unknown_domain;
                im->rep->unknown_items++;
            } else if (b->new_item_dom < 0 && (st = intern_domain(im, b->stem, (int64_t)strlen(b->stem), &b->new_item_dom))) {
                break;
            }
            cr_field f = {item_id, e->item_len, e->item_col};
            if ((st = add_item(im, &f, b->new_item_dom, NULL, NULL, &item))) break;
        }
        if (b->last_user < 0 || cr_strpool_len(&d->users, b->last_user) != e->user_len ||
            memcmp(cr_strpool_get(&d->users, b->last_user), user, (size_t)e->user_len)) {
            if ((st = cr_idmap_intern(&d->user_map, &d->users, user, e->user_len, &b->last_user, NULL))) break;
        }
        if ((st = push_event(im, b->last_user, item, e->time, e->value))) break;
        if (im->n_ev >= INT32_MAX)
            st = cr_fail(CR_ERR_LIMIT, "%s:%lld: more than %d interactions", b->path, (long long)e->line, INT32_MAX - 1);
    }
    b->n = 0;
    b->keys_len = 0;
    return st;
}

static cr_status read_interactions(importer *im, const char *path, int *has_time, int *has_value) {
    const cr_import_params *p = im->p;
    cr_table *t;
    cr_status st = cr_table_open(&t, path, &p->table);
    if (st) return st;
    event_batch *b = cr_calloc(1, sizeof *b);
    if (!b) {
        cr_table_close(t);
        return nomem();
    }
    b->path = path;
    b->new_item_dom = b->last_user = -1;
    /* Items missing from the catalogue: an error, or domain "unknown", or (no catalogue at all) the domain
     * named by this file: "all" for a single file, its stem when several files are domains (RecBole-CDR). */
    if (p->n_interactions > 1) file_stem(path, b->stem, sizeof b->stem);
    else snprintf(b->stem, sizeof b->stem, "all");
    const char *names[4] = {pick_col(t, p->user_col, user_aliases), pick_col(t, p->item_col, item_aliases),
                            pick_col(t, p->time_col, time_aliases), pick_col(t, p->value_col, value_aliases)};
    const int required[4] = {1, 1, p->time_col != NULL, p->value_col != NULL};
    if ((st = cr_table_select(t, names, required, 4))) goto done;
    *has_time &= cr_table_has_col(t, names[2]);
    *has_value &= cr_table_has_col(t, names[3]);
    cr_field f[4];
    for (;;) {
        st = cr_table_next(t, f);
        if (st == CR_DONE) {
            st = batch_flush(im, b);
            break;
        }
        int64_t time = im->n_ev + b->n;   /* input order when there is no timestamp column */
        float value = 1.0f;
        if (st == CR_OK) {
            im->rep->lines++;
            import_progress(im, t, 0);
            if (!(st = check_id(t, &f[0], names[0]))) st = check_id(t, &f[1], names[1]);
            if (!st && f[2].p && cr_parse_i64(f[2].p, f[2].len, &time)) st = field_error(t, &f[2], names[2], "an integer");
            if (!st && f[3].p && cr_parse_f32(f[3].p, f[3].len, &value)) st = field_error(t, &f[3], names[3], "a number");
        }
        if (st == CR_OK) {
            if ((st = batch_add(im, b, f, cr_table_line(t), time, value))) break;
            if (b->n == BATCH && (st = batch_flush(im, b))) break;
            continue;
        }
        /* A bad line: earlier lines come first, so resolve the batch, then report or skip this one. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cr_errmsg());
        cr_status bad = st;
        if ((st = batch_flush(im, b))) break;
        cr_fail(bad, "%s", msg);
        if ((st = bad_line(im, bad))) break;
    }
done:
    cr_free(b->keys);
    cr_free(b);
    if (!st) import_progress(im, t, 1);
    cr_table_close(t);
    return st;
}

/* Stable merge sort of idx[0..n) by key[idx], using tmp (n). */
static void sort_by_time(int32_t *idx, int32_t *tmp, int64_t n, const int64_t *key) {
    if (n < 2) return;
    if (n <= 16) {
        for (int64_t i = 1; i < n; i++) {
            int32_t x = idx[i];
            int64_t j = i;
            while (j > 0 && key[idx[j - 1]] > key[x]) idx[j] = idx[j - 1], j--;
            idx[j] = x;
        }
        return;
    }
    int64_t h = n / 2;
    sort_by_time(idx, tmp, h, key);
    sort_by_time(idx + h, tmp, n - h, key);
    if (key[idx[h - 1]] <= key[idx[h]]) return;
    memcpy(tmp, idx, (size_t)h * sizeof *idx);
    int64_t a = 0, b = h, o = 0;
    while (a < h && b < n) idx[o++] = key[idx[b]] < key[tmp[a]] ? idx[b++] : tmp[a++];
    while (a < h) idx[o++] = tmp[a++];
}

/* Moves event e to position dst[e] for all events, in place, by following cycles; dst is consumed (-1). */
static void scatter_in_place(importer *im, int32_t *dst) {
    for (int64_t s = 0; s < im->n_ev; s++) {
        if (dst[s] < 0 || dst[s] == s) continue;
        int32_t item = im->ev_item[s];
        int64_t time = im->ev_time[s];
        float value = im->ev_value[s];
        int64_t e = dst[s];
        dst[s] = -1;
        while (e != s) {
            int32_t ti = im->ev_item[e];
            int64_t tt = im->ev_time[e];
            float tv = im->ev_value[e];
            im->ev_item[e] = item, im->ev_time[e] = time, im->ev_value[e] = value;
            item = ti, time = tt, value = tv;
            int64_t next = dst[e];
            dst[e] = -1;
            e = next;
        }
        im->ev_item[s] = item, im->ev_time[s] = time, im->ev_value[s] = value;
    }
}

/* Sorts each user's events by time, stably (ties keep input order). Scratch is sized for the longest user. */
static cr_status sort_users_by_time(importer *im, const int64_t *user_ptr, int64_t n_users, int64_t longest) {
    size_t m = (size_t)(longest ? longest : 1);
    int32_t *idx = cr_malloc(m * sizeof *idx), *tmp = cr_malloc(m * sizeof *tmp), *items = cr_malloc(m * sizeof *items);
    int64_t *times = cr_malloc(m * sizeof *times);
    float *values = cr_malloc(m * sizeof *values);
    cr_status st = CR_OK;
    if (!idx || !tmp || !items || !times || !values) {
        st = nomem();
        goto done;
    }
    for (int64_t u = 0; u < n_users; u++) {
        int64_t b = user_ptr[u], n = user_ptr[u + 1] - b;
        const int64_t *t = im->ev_time + b;
        int64_t k = 1;
        while (k < n && t[k - 1] <= t[k]) k++;
        if (k >= n) continue;   /* already in time order: the usual case for logs */
        for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)i;
        sort_by_time(idx, tmp, n, t);
        for (int64_t i = 0; i < n; i++)
            items[i] = im->ev_item[b + idx[i]], times[i] = t[idx[i]], values[i] = im->ev_value[b + idx[i]];
        memcpy(im->ev_item + b, items, (size_t)n * sizeof *items);
        memcpy(im->ev_time + b, times, (size_t)n * sizeof *times);
        memcpy(im->ev_value + b, values, (size_t)n * sizeof *values);
    }
done:
    cr_free(idx), cr_free(tmp), cr_free(items), cr_free(times), cr_free(values);
    return st;
}

/* Regroups events by user (time order), counts or merges repeated (user, item) events, builds both CSRs.
 * The user array becomes each event's destination, so regrouping needs no permutation array. */
static cr_status build_csr(importer *im) {
    cr_dataset *d = im->d;
    int64_t n_users = d->users.n, n_items = d->items.n, n = im->n_ev;
    cr_status st = CR_OK;
    int32_t *seen = NULL;
    int64_t *fill = NULL;
    if (!(d->user_ptr = cr_calloc((size_t)n_users + 1, sizeof(int64_t))) ||
        !(fill = cr_malloc(((size_t)(n_users > n_items ? n_users : n_items) + 1) * sizeof *fill)))
        goto oom;
    for (int64_t e = 0; e < n; e++) d->user_ptr[im->ev_user[e] + 1]++;
    int64_t longest = 0;
    for (int64_t u = 0; u < n_users; u++) {
        if (d->user_ptr[u + 1] > longest) longest = d->user_ptr[u + 1];
        d->user_ptr[u + 1] += d->user_ptr[u];
    }
    memcpy(fill, d->user_ptr, (size_t)n_users * sizeof *fill);
    for (int64_t e = 0; e < n; e++) im->ev_user[e] = (int32_t)fill[im->ev_user[e]]++;
    scatter_in_place(im, im->ev_user);
    cr_free(im->ev_user);
    im->ev_user = NULL;
    if ((st = sort_users_by_time(im, d->user_ptr, n_users, longest))) goto done;

    /* Repeated (user, item) events: kept and counted, or merged keeping the latest (the last in time order). */
    if (!(seen = cr_malloc((size_t)(n_items ? n_items : 1) * sizeof *seen))) goto oom;
    memset(seen, 0xff, (size_t)n_items * sizeof *seen);
    int64_t out = 0;
    for (int64_t u = 0; u < n_users; u++) {
        int64_t begin = d->user_ptr[u], end = d->user_ptr[u + 1];
        if (!im->p->dedup) {
            for (int64_t e = begin; e < end; e++) {
                if (seen[im->ev_item[e]] == (int32_t)u) im->rep->duplicates++;
                seen[im->ev_item[e]] = (int32_t)u;
            }
            continue;
        }
        /* mark from the end so the latest event of each item survives, then compact forward */
        for (int64_t e = end - 1; e >= begin; e--) {
            if (seen[im->ev_item[e]] == (int32_t)u) im->ev_item[e] = -1, im->rep->merged++;
            else seen[im->ev_item[e]] = (int32_t)u;
        }
        d->user_ptr[u] = out;
        for (int64_t e = begin; e < end; e++) {
            if (im->ev_item[e] < 0) continue;
            im->ev_item[out] = im->ev_item[e], im->ev_time[out] = im->ev_time[e], im->ev_value[out] = im->ev_value[e];
            out++;
        }
    }
    if (im->p->dedup) d->user_ptr[n_users] = n = im->n_ev = out;
    cr_free(seen);
    seen = NULL;

    d->user_items = im->ev_item, d->user_times = im->ev_time, d->user_values = im->ev_value;
    im->ev_item = NULL, im->ev_time = NULL, im->ev_value = NULL;

    if (!(d->item_ptr = cr_calloc((size_t)n_items + 1, sizeof(int64_t))) ||
        !(d->item_users = cr_malloc((size_t)(n ? n : 1) * sizeof(int32_t))))
        goto oom;
    for (int64_t e = 0; e < n; e++) d->item_ptr[d->user_items[e] + 1]++;
    for (int64_t i = 0; i < n_items; i++) d->item_ptr[i + 1] += d->item_ptr[i];
    memcpy(fill, d->item_ptr, (size_t)n_items * sizeof *fill);
    for (int64_t u = 0; u < n_users; u++)
        for (int64_t e = d->user_ptr[u]; e < d->user_ptr[u + 1]; e++) d->item_users[fill[d->user_items[e]]++] = (int32_t)u;
    goto done;
oom:
    st = nomem();
done:
    cr_free(seen), cr_free(fill);
    return st;
}

/* Gives back the growth slack of the event arrays (large blocks shrink in place). A failure to shrink only
 * keeps the slack. */
static void shrink_events(importer *im) {
    size_t n = (size_t)im->n_ev;
    void *p;
    if ((p = cr_realloc(im->ev_user, n * sizeof(int32_t)))) im->ev_user = p;
    if ((p = cr_realloc(im->ev_item, n * sizeof(int32_t)))) im->ev_item = p;
    if ((p = cr_realloc(im->ev_time, n * sizeof(int64_t)))) im->ev_time = p;
    if ((p = cr_realloc(im->ev_value, n * sizeof(float)))) im->ev_value = p;
}

static cr_status set_source(cr_dataset *d, const cr_import_params *p) {
    size_t len = 1;
    for (int i = 0; i < p->n_interactions; i++) len += strlen(p->interactions[i]) + 3;
    for (int i = 0; i < p->n_items; i++) len += strlen(p->items[i]) + 3;
    if (!(d->source = cr_malloc(len))) return nomem();
    d->source[0] = '\0';
    for (int i = 0; i < p->n_interactions + p->n_items; i++) {
        const char *path = i < p->n_interactions ? p->interactions[i] : p->items[i - p->n_interactions];
        const char *base = strrchr(path, '/');
        if (i) strcat(d->source, " + ");
        strcat(d->source, base ? base + 1 : path);
    }
    return CR_OK;
}

cr_status cr_dataset_import(cr_dataset **out, const cr_import_params *p, cr_import_report *report) {
    *out = NULL;
    cr_import_report scratch;
    if (!report) report = &scratch;
    memset(report, 0, sizeof *report);
    if (p->n_interactions < 1 || p->n_interactions > CR_MAX_INPUT_FILES || p->n_items < 0 || p->n_items > CR_MAX_INPUT_FILES)
        return cr_fail(CR_ERR_ARG, "import needs 1 to %d interaction files and at most %d item files", CR_MAX_INPUT_FILES,
                       CR_MAX_INPUT_FILES);
    importer im = {.p = p, .rep = report, .unknown_domain = -1};
    for (int i = 0; i < p->n_interactions + p->n_items; i++) {
        const char *path = i < p->n_interactions ? p->interactions[i] : p->items[i - p->n_interactions];
        struct stat sb;
        if (strcmp(path, "-") && !stat(path, &sb) && S_ISREG(sb.st_mode)) {
            im.bytes_total += sb.st_size;
        } else {
            im.bytes_total = 0;     /* standard input or a pipe: the total is unknown */
            break;
        }
    }
    cr_dataset *d = im.d = cr_calloc(1, sizeof *d);
    if (!d) return nomem();
    cr_status st;
    if ((st = cr_idmap_init(&d->user_map, &d->users)) || (st = cr_idmap_init(&d->item_map, &d->items)) ||
        (st = cr_idmap_init(&d->domain_map, &d->domains)))
        goto fail;
    for (int i = 0; i < p->n_items; i++)
        if ((st = read_catalogue(&im, p->items[i]))) goto fail;
    int has_time = 1, has_value = 1;
    for (int i = 0; i < p->n_interactions; i++)
        if ((st = read_interactions(&im, p->interactions[i], &has_time, &has_value))) goto fail;
    if (im.n_ev == 0) {
        st = cr_fail(CR_ERR_PARSE, "%s: no interactions (only a header%s)", p->interactions[0],
                     report->skipped ? ", or every line was bad" : "");
        goto fail;
    }
    d->has_time = has_time;
    d->has_value = has_value;
    shrink_events(&im);
    if ((st = build_csr(&im)) || (st = set_source(d, p))) goto fail;
    d->item_domain = im.item_dom;
    im.item_dom = NULL;
    cr_interactions *v = &d->v;
    v->n_users = d->users.n, v->n_items = d->items.n, v->n_domains = d->domains.n, v->n_inter = im.n_ev;
    v->user_ptr = d->user_ptr, v->user_items = d->user_items, v->user_times = d->user_times, v->user_values = d->user_values;
    v->item_ptr = d->item_ptr, v->item_users = d->item_users, v->item_domain = d->item_domain;
    *out = d;
    return CR_OK;
fail:
    cr_free(im.ev_user), cr_free(im.ev_item), cr_free(im.ev_time), cr_free(im.ev_value), cr_free(im.item_dom);
    cr_dataset_free(d);
    return st;
}

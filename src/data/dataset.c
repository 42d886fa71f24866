/* dataset.c — cr_dataset accessors, the .crd file (save, load with full validation), free.
 *
 * .crd version 1: metadata n_users, n_items, n_domains, n_inter, has_time, has_value, source, crossrec; arrays
 * named below (docs/FORMAT.md lists them). Loading checks every count and index, so code that walks a loaded
 * dataset can trust it as much as a freshly imported one. */
#include "dataset_impl.h"

#include <stdio.h>
#include <string.h>

const cr_interactions *cr_dataset_inter(const cr_dataset *d) { return &d->v; }
const char *cr_dataset_user_id(const cr_dataset *d, int32_t u) { return cr_strpool_get(&d->users, u); }
const char *cr_dataset_item_id(const cr_dataset *d, int32_t i) { return cr_strpool_get(&d->items, i); }
const char *cr_dataset_item_title(const cr_dataset *d, int32_t i) { return cr_strpool_get(&d->titles, i); }
const char *cr_dataset_item_text(const cr_dataset *d, int32_t i) { return cr_strpool_get(&d->texts, i); }
const char *cr_dataset_domain_name(const cr_dataset *d, int32_t dom) { return cr_strpool_get(&d->domains, dom); }
int cr_dataset_has_time(const cr_dataset *d) { return d->has_time; }
const char *cr_dataset_path(const cr_dataset *d) { return d->path; }
uint32_t cr_dataset_file_crc(const cr_dataset *d) { return d->file ? cr_file_crc(d->file) : 0; }
int cr_dataset_has_value(const cr_dataset *d) { return d->has_value; }

int32_t cr_dataset_find_user(const cr_dataset *d, const char *id) { return cr_idmap_find(&d->user_map, id, (int64_t)strlen(id)); }
int32_t cr_dataset_find_item(const cr_dataset *d, const char *id) { return cr_idmap_find(&d->item_map, id, (int64_t)strlen(id)); }
int32_t cr_dataset_find_domain(const cr_dataset *d, const char *name) {
    return cr_idmap_find(&d->domain_map, name, (int64_t)strlen(name));
}

cr_status cr_dataset_domain_named(const cr_dataset *d, const char *name, int32_t *t) {
    if ((*t = cr_dataset_find_domain(d, name)) >= 0) return CR_OK;
    char list[512] = "";
    size_t n = 0;
    for (int64_t k = 0; k < d->v.n_domains && n < sizeof list - 8; k++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", cr_dataset_domain_name(d, (int32_t)k));
    return cr_fail(CR_ERR_NOTFOUND, "unknown domain '%.64s' (domains: %s)", name, list);
}

void cr_dataset_free(cr_dataset *d) {
    if (!d) return;
    cr_idmap_free(&d->user_map);
    cr_idmap_free(&d->item_map);
    cr_idmap_free(&d->domain_map);
    if (d->file) {
        cr_file_close(d->file);
    } else {
        cr_strpool *pools[] = {&d->users, &d->items, &d->domains, &d->titles, &d->texts};
        for (int i = 0; i < 5; i++) cr_strpool_free(pools[i]);
        cr_free(d->user_ptr), cr_free(d->item_ptr), cr_free(d->user_times);
        cr_free(d->user_items), cr_free(d->item_users), cr_free(d->item_domain), cr_free(d->user_values);
    }
    cr_free(d->source);
    cr_free(d->path);
    cr_free(d);
}

/* ---- save ---- */

static cr_status add_pool(cr_filew *w, const char *name, const cr_strpool *p) {
    char key[64];
    snprintf(key, sizeof key, "%s.off", name);
    cr_status st = cr_filew_array(w, key, CR_DT_I64, p->off, p->n + 1);
    snprintf(key, sizeof key, "%s.data", name);
    return st ? st : cr_filew_array(w, key, CR_DT_U8, p->data, p->n_bytes);
}

cr_status cr_dataset_save(const cr_dataset *d, const char *path) {
    cr_filew *w;
    cr_status st = cr_filew_new(&w, "CRD", CR_CRD_VERSION);
    if (st) return st;
    const cr_interactions *v = &d->v;
    if ((st = cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING)) || (st = cr_filew_meta_str(w, "source", d->source ? d->source : "")) ||
        (st = cr_filew_meta_i64(w, "n_users", v->n_users)) || (st = cr_filew_meta_i64(w, "n_items", v->n_items)) ||
        (st = cr_filew_meta_i64(w, "n_domains", v->n_domains)) || (st = cr_filew_meta_i64(w, "n_inter", v->n_inter)) ||
        (st = cr_filew_meta_i64(w, "has_time", d->has_time)) || (st = cr_filew_meta_i64(w, "has_value", d->has_value)) ||
        (st = add_pool(w, "user_ids", &d->users)) || (st = add_pool(w, "item_ids", &d->items)) ||
        (st = add_pool(w, "domain_names", &d->domains)) || (st = add_pool(w, "item_titles", &d->titles)) ||
        (st = add_pool(w, "item_texts", &d->texts)) ||
        (st = cr_filew_array(w, "item_domain", CR_DT_I32, v->item_domain, v->n_items)) ||
        (st = cr_filew_array(w, "user_ptr", CR_DT_I64, v->user_ptr, v->n_users + 1)) ||
        (st = cr_filew_array(w, "user_items", CR_DT_I32, v->user_items, v->n_inter)) ||
        (st = cr_filew_array(w, "user_times", CR_DT_I64, v->user_times, v->n_inter)) ||
        (st = cr_filew_array(w, "user_values", CR_DT_F32, v->user_values, v->n_inter)) ||
        (st = cr_filew_array(w, "item_ptr", CR_DT_I64, v->item_ptr, v->n_items + 1)) ||
        (st = cr_filew_array(w, "item_users", CR_DT_I32, v->item_users, v->n_inter)) ||
        (st = cr_filew_commit(w, path))) {
        cr_filew_free(w);
        return st;
    }
    cr_filew_free(w);
    return CR_OK;
}

/* ---- load ---- */

/* Maps a string pool stored as NAME.off / NAME.data and checks that it holds exactly n NUL-terminated strings
 * without interior NULs. */
static cr_status load_pool(cr_file *f, const char *path, const char *name, int64_t n, cr_strpool *p) {
    char key[64];
    const void *off, *data;
    int64_t n_bytes;
    snprintf(key, sizeof key, "%s.off", name);
    cr_status st = cr_file_get_array(f, key, CR_DT_I64, n + 1, &off, NULL);
    if (st) return st;
    snprintf(key, sizeof key, "%s.data", name);
    if ((st = cr_file_get_array(f, key, CR_DT_U8, -1, &data, &n_bytes))) return st;
    const int64_t *o = off;
    const char *s = data;
    if (o[0] != 0 || o[n] != n_bytes) return cr_fail(CR_ERR_FORMAT, "%s: %s: offsets do not cover the data", path, name);
    for (int64_t i = 0; i < n; i++) {
        if (o[i + 1] <= o[i] || o[i + 1] > n_bytes) return cr_fail(CR_ERR_FORMAT, "%s: %s: bad offset of entry %lld", path, name, (long long)i);
        int64_t len = o[i + 1] - o[i] - 1;
        if (s[o[i] + len] != '\0' || memchr(s + o[i], 0, (size_t)len))
            return cr_fail(CR_ERR_FORMAT, "%s: %s: entry %lld is not one NUL-terminated string", path, name, (long long)i);
    }
    memset(p, 0, sizeof *p);
    p->data = (char *)data;     /* read-only mapping; never written or freed through the pool */
    p->off = (int64_t *)off;
    p->n = n;
    p->n_bytes = n_bytes;
    return CR_OK;
}

static cr_status check_ptr(const char *path, const char *name, const int64_t *ptr, int64_t n, int64_t total) {
    if (ptr[0] != 0 || ptr[n] != total) return cr_fail(CR_ERR_FORMAT, "%s: %s does not span 0..%lld", path, name, (long long)total);
    for (int64_t i = 0; i < n; i++)
        if (ptr[i + 1] < ptr[i]) return cr_fail(CR_ERR_FORMAT, "%s: %s decreases at %lld", path, name, (long long)i);
    return CR_OK;
}

static cr_status check_range(const char *path, const char *name, const int32_t *a, int64_t n, int64_t limit) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] < 0 || a[i] >= limit)
            return cr_fail(CR_ERR_FORMAT, "%s: %s[%lld] = %d is outside 0..%lld", path, name, (long long)i, a[i], (long long)limit - 1);
    return CR_OK;
}

/* The two CSR copies must describe the same events: per item, the users listed in item order equal the
 * users found through the user CSR, ascending. Checked by counting, then by a merge over users. */
static cr_status check_csr(const char *path, const cr_interactions *v) {
    int64_t *fill = cr_calloc((size_t)v->n_items + 1, sizeof *fill);
    if (!fill) return cr_fail(CR_ERR_NOMEM, "out of memory checking %s", path);
    cr_status st = CR_OK;
    for (int64_t u = 0; u < v->n_users && !st; u++) {
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            int64_t at = v->item_ptr[i] + fill[i]++;
            if (at >= v->item_ptr[i + 1] || v->item_users[at] != u) {
                st = cr_fail(CR_ERR_FORMAT, "%s: item_users disagrees with user_items (user %lld, item %d)", path, (long long)u, i);
                break;
            }
            if (e > v->user_ptr[u] && v->user_times[e] < v->user_times[e - 1]) {
                st = cr_fail(CR_ERR_FORMAT, "%s: events of user %lld are not in time order", path, (long long)u);
                break;
            }
        }
    }
    cr_free(fill);
    return st;
}

cr_status cr_dataset_load(cr_dataset **out, const char *path) {
    *out = NULL;
    cr_dataset *d = cr_calloc(1, sizeof *d);
    if (!d) return cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
    cr_status st = cr_file_open(&d->file, path, "CRD", CR_CRD_VERSION);
    if (st) goto fail;
    cr_file *f = d->file;
    cr_interactions *v = &d->v;
    int64_t has_time, has_value;
    const char *source;
    if ((st = cr_file_get_i64(f, "n_users", &v->n_users)) || (st = cr_file_get_i64(f, "n_items", &v->n_items)) ||
        (st = cr_file_get_i64(f, "n_domains", &v->n_domains)) || (st = cr_file_get_i64(f, "n_inter", &v->n_inter)) ||
        (st = cr_file_get_i64(f, "has_time", &has_time)) || (st = cr_file_get_i64(f, "has_value", &has_value)) ||
        (st = cr_file_get_str(f, "source", &source)))
        goto fail;
    if (v->n_users < 0 || v->n_users >= INT32_MAX || v->n_items < 0 || v->n_items >= INT32_MAX || v->n_domains < 0 ||
        v->n_domains >= INT32_MAX || v->n_inter < 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: impossible counts (users %lld, items %lld, domains %lld, events %lld)", path,
                     (long long)v->n_users, (long long)v->n_items, (long long)v->n_domains, (long long)v->n_inter);
        goto fail;
    }
    d->has_time = has_time != 0;
    d->has_value = has_value != 0;
    size_t slen = strlen(source), plen = strlen(path);
    if (!(d->source = cr_malloc(slen + 1)) || !(d->path = cr_malloc(plen + 1))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    memcpy(d->source, source, slen + 1);
    memcpy(d->path, path, plen + 1);
    const void *a[7];
    if ((st = load_pool(f, path, "user_ids", v->n_users, &d->users)) || (st = load_pool(f, path, "item_ids", v->n_items, &d->items)) ||
        (st = load_pool(f, path, "domain_names", v->n_domains, &d->domains)) ||
        (st = load_pool(f, path, "item_titles", v->n_items, &d->titles)) ||
        (st = load_pool(f, path, "item_texts", v->n_items, &d->texts)) ||
        (st = cr_file_get_array(f, "item_domain", CR_DT_I32, v->n_items, &a[0], NULL)) ||
        (st = cr_file_get_array(f, "user_ptr", CR_DT_I64, v->n_users + 1, &a[1], NULL)) ||
        (st = cr_file_get_array(f, "user_items", CR_DT_I32, v->n_inter, &a[2], NULL)) ||
        (st = cr_file_get_array(f, "user_times", CR_DT_I64, v->n_inter, &a[3], NULL)) ||
        (st = cr_file_get_array(f, "user_values", CR_DT_F32, v->n_inter, &a[4], NULL)) ||
        (st = cr_file_get_array(f, "item_ptr", CR_DT_I64, v->n_items + 1, &a[5], NULL)) ||
        (st = cr_file_get_array(f, "item_users", CR_DT_I32, v->n_inter, &a[6], NULL)))
        goto fail;
    v->item_domain = a[0], v->user_ptr = a[1], v->user_items = a[2], v->user_times = a[3];
    v->user_values = a[4], v->item_ptr = a[5], v->item_users = a[6];
    if ((st = check_range(path, "item_domain", v->item_domain, v->n_items, v->n_domains)) ||
        (st = check_ptr(path, "user_ptr", v->user_ptr, v->n_users, v->n_inter)) ||
        (st = check_ptr(path, "item_ptr", v->item_ptr, v->n_items, v->n_inter)) ||
        (st = check_range(path, "user_items", v->user_items, v->n_inter, v->n_items)) ||
        (st = check_range(path, "item_users", v->item_users, v->n_inter, v->n_users)) || (st = check_csr(path, v)))
        goto fail;
    if ((st = cr_idmap_init(&d->user_map, &d->users)) || (st = cr_idmap_index(&d->user_map, "user id")) ||
        (st = cr_idmap_init(&d->item_map, &d->items)) || (st = cr_idmap_index(&d->item_map, "item id")) ||
        (st = cr_idmap_init(&d->domain_map, &d->domains)) || (st = cr_idmap_index(&d->domain_map, "domain"))) {
        if (st == CR_ERR_FORMAT) cr_errmsg_prefix("%s", path);
        goto fail;
    }
    cr_file_release(d->file);   /* the checks above read every array */
    *out = d;
    return CR_OK;
fail:
    cr_dataset_free(d);
    return st;
}

/* Tries the recorded absolute path, then `base` in the referrer's folder. A file that loads but has another
 * checksum is remembered for the message, and the other place is still tried. */
cr_status cr_dataset_load_ref(cr_dataset **out, const char *abs_path, const char *base, uint32_t crc, const char *referrer) {
    *out = NULL;
    const char *slash = strrchr(referrer, '/');
    size_t dir_len = slash ? (size_t)(slash + 1 - referrer) : 0, blen = strlen(base);
    char *near = cr_malloc(dir_len + blen + 1);
    if (!near) return cr_fail(CR_ERR_NOMEM, "out of memory (path)");
    memcpy(near, referrer, dir_len);
    memcpy(near + dir_len, base, blen + 1);
    const char *tries[2];
    int n_tries = 0;
    if (abs_path[0]) tries[n_tries++] = abs_path;
    if (!n_tries || strcmp(abs_path, near)) tries[n_tries++] = near;
    char errs[2][512] = {"", ""}, other_name[512] = "";
    uint32_t other_crc = 0;
    int mismatch = 0;
    cr_status st = CR_OK, worst = CR_ERR_IO;
    for (int k = 0; k < n_tries; k++) {
        cr_dataset *d = NULL;
        st = cr_dataset_load(&d, tries[k]);
        if (st == CR_OK && cr_dataset_file_crc(d) == crc) {
            *out = d;
            break;
        }
        if (st == CR_OK) {
            if (!mismatch) snprintf(other_name, sizeof other_name, "%s", tries[k]), other_crc = cr_dataset_file_crc(d);
            mismatch = 1;
            cr_dataset_free(d);
            st = CR_ERR_FORMAT;
            continue;
        }
        if (st == CR_ERR_NOMEM) break;
        if (st != CR_ERR_IO) worst = st;
        snprintf(errs[k], sizeof errs[k], "%s", cr_errmsg());
    }
    cr_free(near);
    if (*out || st == CR_ERR_NOMEM) return st;
    if (mismatch)
        return cr_fail(CR_ERR_FORMAT, "%s: made from a different dataset (checksum %08x, %s has %08x)", referrer, (unsigned)crc,
                       other_name, (unsigned)other_crc);
    return cr_fail(worst, "%s: cannot load its dataset: %s%s%s", referrer, errs[0], n_tries > 1 ? "; " : "",
                   n_tries > 1 ? errs[1] : "");
}

/* split.c — evaluation splits (split.h): the cold-user, warm and new-domain protocols, the sampled view,
 * the .crs file, and export to TSV.
 *
 * Main type: struct cr_split. What a split stores (and saves) is small: one role per event of the dataset's
 * user CSR, the parameters, a reference to the dataset (absolute path, basename, CRC32C) and the sampled
 * negatives. Everything else — candidates, the ground truth of each part, the training view, the counts —
 * is derived from roles + dataset by derive(), the one function run after make and after load, so a loaded
 * split is exactly the one that was made.
 *
 * Invariants after make or load: roles[e] is a cr_role for every event e; the ground truth of a part lists
 * the users with at least one event of that role, ascending, each with its distinct items ascending; the
 * training view holds exactly the TRAIN events in user-CSR order; sampled negatives are candidates the user
 * has no event with (of any role), distinct within their pair, -1 only where the candidates ran out.
 *
 * Leakage rules (docs/EVAL.md): warm — a TRAIN event of a (user, item) pair that is also held out becomes
 * HIDDEN, and a VALID event of a pair that is also TEST becomes HIDDEN (test wins, so a user's valid and test
 * ground truths are disjoint); new-domain — a held-out event of a pair that keeps a few-shot TRAIN event
 * becomes HIDDEN (the positive is already known from training). Cold-user cannot leak: an item has one
 * domain, and all target events of a held-out user leave training.
 *
 * Random streams, all from the one seed: "split.cold-user" (shuffle of eligible users), "split.warm" (random
 * roles), "split.new-domain" (shuffle of evaluated users), "split.sampled" (negatives). */
#include "dataset_impl.h"

#include "crossrec/split.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Negatives per pair are bounded so that pairs x N cannot overflow and a typo cannot ask for terabytes. */
#define MAX_SAMPLED ((int64_t)1 << 24)

struct cr_split {
    cr_split_params p;          /* p.target and p.users_file point at target_name / users_file (or NULL) */
    char *target_name, *users_file;
    const cr_dataset *d;
    cr_dataset *owned;          /* the dataset cr_split_load loaded; NULL for a split from cr_split_make */
    cr_file *file;              /* the .crs mapping after load (roles and sampled point into it) */
    char *ds_path, *ds_base;    /* absolute path and basename of the dataset file */
    uint32_t ds_crc;
    int32_t target;             /* domain index, -1 for none */

    uint8_t *roles_buf;         /* owned roles (make); NULL after load */
    const uint8_t *roles;       /* (n_inter) */
    int32_t *sampled_buf[2];    /* owned negatives (make), [0] valid, [1] test */
    const int32_t *sampled[2];  /* (pairs * p.sampled) each, or NULL */

    /* derived by derive() */
    int32_t *cands;             /* (n_cands) ascending */
    int64_t n_cands;
    cr_interactions train;
    int64_t *tr_user_ptr, *tr_item_ptr;
    int32_t *tr_items, *tr_users;
    float *tr_values;
    cr_ground_truth gt[2];      /* [0] valid, [1] test */
    int32_t *gt_users[2], *gt_items[2];
    int64_t *gt_ptr[2];
    cr_split_stats stats;
};

static int part_index(cr_part part) {
    CR_ASSERT(part == CR_PART_VALID || part == CR_PART_TEST);
    return part == CR_PART_VALID ? 0 : 1;
}

static cr_status nomem(const char *what) { return cr_fail(CR_ERR_NOMEM, "out of memory making a split (%s)", what); }

/* Allocates n elements (at least one, so that an empty array is still a valid pointer). */
static void *alloc_n(int64_t n, size_t elem) { return cr_malloc((size_t)(n > 0 ? n : 1) * elem); }
static void *calloc_n(int64_t n, size_t elem) { return cr_calloc((size_t)(n > 0 ? n : 1), elem); }

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *c = cr_malloc(n + 1);
    if (c) memcpy(c, s, n + 1);
    return c;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- parameters and names ---------------------------------------------------------------------------- */

static const char *const proto_names[] = {NULL, "cold-user", "warm", "new-domain"};

const char *cr_protocol_name(cr_protocol p) {
    return p >= CR_PROTO_COLD_USER && p <= CR_PROTO_NEW_DOMAIN ? proto_names[p] : "unknown";
}

int cr_protocol_from_name(const char *name, cr_protocol *p) {
    for (int i = CR_PROTO_COLD_USER; i <= CR_PROTO_NEW_DOMAIN; i++)
        if (name && !strcmp(name, proto_names[i])) {
            *p = (cr_protocol)i;
            return 0;
        }
    return -1;
}

cr_split_params cr_split_default_params(void) {
    cr_split_params p;
    memset(&p, 0, sizeof p);
    p.protocol = CR_PROTO_COLD_USER;
    p.beta = 0.2;
    p.valid_share = 0.1;
    p.seed = 42;
    return p;
}

static int has_target(const cr_split_params *p) { return p->target && p->target[0]; }

const char *cr_split_check_params(const cr_split_params *p) {
    if (!p) return "no split parameters";
    if (p->protocol < CR_PROTO_COLD_USER || p->protocol > CR_PROTO_NEW_DOMAIN)
        return "protocol must be cold-user, warm or new-domain";
    if (!(p->beta > 0 && p->beta < 1)) return "beta must be in (0, 1)";
    if (!(p->valid_share >= 0 && p->valid_share < 1)) return "valid share must be in [0, 1)";
    if (p->few_shot < 0) return "few-shot count must be >= 0";
    if (p->sampled < 0) return "sampled negatives per pair must be >= 0";
    if (p->sampled > MAX_SAMPLED) return "sampled negatives per pair must be at most 16777216";
    if (p->protocol == CR_PROTO_COLD_USER && !has_target(p)) return "cold-user needs a target domain";
    if (p->protocol == CR_PROTO_NEW_DOMAIN && !has_target(p)) return "new-domain needs a target domain";
    if (p->users_file && p->protocol != CR_PROTO_COLD_USER) return "a users file applies to cold-user only";
    if (p->warm_random && p->protocol != CR_PROTO_WARM) return "random assignment applies to warm only";
    if (p->few_shot > 0 && p->protocol != CR_PROTO_NEW_DOMAIN) return "few-shot applies to new-domain only";
    return NULL;
}

/* ---- accessors --------------------------------------------------------------------------------------- */

const cr_dataset *cr_split_dataset(const cr_split *s) { return s->d; }
const cr_split_params *cr_split_params_of(const cr_split *s) { return &s->p; }
int32_t cr_split_target(const cr_split *s) { return s->target; }
const uint8_t *cr_split_roles(const cr_split *s) { return s->roles; }
const cr_interactions *cr_split_train(const cr_split *s) { return &s->train; }
const cr_split_stats *cr_split_stats_of(const cr_split *s) { return &s->stats; }
const cr_ground_truth *cr_split_truth(const cr_split *s, cr_part part) { return &s->gt[part_index(part)]; }

const int32_t *cr_split_candidates(const cr_split *s, int64_t *n) {
    *n = s->n_cands;
    return s->cands;
}

const int32_t *cr_split_sampled(const cr_split *s, cr_part part, int64_t *n_neg) {
    const int32_t *a = s->sampled[part_index(part)];
    *n_neg = a ? s->p.sampled : 0;
    return a;
}

void cr_split_free(cr_split *s) {
    if (!s) return;
    cr_free(s->target_name), cr_free(s->users_file), cr_free(s->ds_path), cr_free(s->ds_base);
    cr_free(s->roles_buf);
    cr_free(s->cands);
    cr_free(s->tr_user_ptr), cr_free(s->tr_item_ptr);
    cr_free(s->tr_items), cr_free(s->tr_users), cr_free(s->tr_values);
    for (int k = 0; k < 2; k++) {
        cr_free(s->sampled_buf[k]);
        cr_free(s->gt_users[k]), cr_free(s->gt_items[k]), cr_free(s->gt_ptr[k]);
    }
    cr_file_close(s->file);
    cr_dataset_free(s->owned);
    cr_free(s);
}

/* ---- derived state: candidates, training view, ground truth, counts ---------------------------------- */

static int is_candidate(const cr_interactions *v, int32_t target, int32_t item) {
    return target < 0 || v->item_domain[item] == target;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static cr_status derive_train(cr_split *s) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int64_t n_tr = 0;
    for (int64_t e = 0; e < v->n_inter; e++) n_tr += s->roles[e] == CR_ROLE_TRAIN;
    if (!(s->tr_user_ptr = alloc_n(v->n_users + 1, sizeof(int64_t))) ||
        !(s->tr_item_ptr = calloc_n(v->n_items + 1, sizeof(int64_t))) || !(s->tr_items = alloc_n(n_tr, sizeof(int32_t))) ||
        !(s->tr_values = alloc_n(n_tr, sizeof(float))) ||
        !(s->tr_users = alloc_n(n_tr, sizeof(int32_t))))
        return nomem("training view");
    int64_t k = 0;
    s->tr_user_ptr[0] = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            if (s->roles[e] != CR_ROLE_TRAIN) continue;
            s->tr_items[k] = v->user_items[e];
            s->tr_values[k] = v->user_values[e];
            s->tr_item_ptr[v->user_items[e] + 1]++;
            k++;
        }
        s->tr_user_ptr[u + 1] = k;
    }
    /* item CSR by counting: ptr[i] serves as the fill cursor of item i, then everything shifts back by one
     * slot; users arrive ascending, so each item's users are ascending as in the dataset */
    for (int64_t i = 0; i < v->n_items; i++) s->tr_item_ptr[i + 1] += s->tr_item_ptr[i];
    for (int64_t u = 0; u < v->n_users; u++)
        for (int64_t e = s->tr_user_ptr[u]; e < s->tr_user_ptr[u + 1]; e++) s->tr_users[s->tr_item_ptr[s->tr_items[e]]++] = (int32_t)u;
    for (int64_t i = v->n_items; i > 0; i--) s->tr_item_ptr[i] = s->tr_item_ptr[i - 1];
    s->tr_item_ptr[0] = 0;
    cr_interactions *t = &s->train;
    t->n_users = v->n_users, t->n_items = v->n_items, t->n_domains = v->n_domains, t->n_inter = n_tr;
    t->user_ptr = s->tr_user_ptr, t->user_items = s->tr_items, t->user_times = NULL, t->user_values = s->tr_values;
    t->item_ptr = s->tr_item_ptr, t->item_users = s->tr_users;
    t->item_domain = v->item_domain;    /* shared with the dataset */
    return CR_OK;
}

static cr_status derive_truth(cr_split *s, int k) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    uint8_t role = k == 0 ? CR_ROLE_VALID : CR_ROLE_TEST;
    int64_t n_users = 0, n_events = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        int64_t c = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) c += s->roles[e] == role;
        n_users += c > 0;
        n_events += c;
    }
    /* items sized by events (an upper bound on distinct pairs); repeats make it a little loose */
    if (!(s->gt_users[k] = alloc_n(n_users, sizeof(int32_t))) || !(s->gt_ptr[k] = alloc_n(n_users + 1, sizeof(int64_t))) ||
        !(s->gt_items[k] = alloc_n(n_events, sizeof(int32_t))))
        return nomem("ground truth");
    int64_t j = 0, pos = 0;
    s->gt_ptr[k][0] = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        int64_t start = pos;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
            if (s->roles[e] == role) s->gt_items[k][pos++] = v->user_items[e];
        if (pos == start) continue;
        qsort(s->gt_items[k] + start, (size_t)(pos - start), sizeof(int32_t), cmp_i32);
        int64_t w = start + 1;
        for (int64_t r = start + 1; r < pos; r++)
            if (s->gt_items[k][r] != s->gt_items[k][w - 1]) s->gt_items[k][w++] = s->gt_items[k][r];
        pos = w;
        s->gt_users[k][j] = (int32_t)u;
        s->gt_ptr[k][++j] = pos;
    }
    cr_ground_truth *g = &s->gt[k];
    g->n_users = n_users;
    g->users = s->gt_users[k];
    g->gt_ptr = s->gt_ptr[k];
    g->gt_items = s->gt_items[k];
    return CR_OK;
}

/* Everything that follows from roles + dataset + target. The held-out user counts of cold-user (which a
 * users file may make larger than the evaluated users) are set by the caller before; for the other
 * protocols the held-out users are the evaluated ones. */
static cr_status derive(cr_split *s) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int64_t nc = 0;
    for (int64_t i = 0; i < v->n_items; i++) nc += is_candidate(v, s->target, (int32_t)i);
    if (!(s->cands = alloc_n(nc, sizeof(int32_t)))) return nomem("candidates");
    s->n_cands = 0;
    for (int64_t i = 0; i < v->n_items; i++)
        if (is_candidate(v, s->target, (int32_t)i)) s->cands[s->n_cands++] = (int32_t)i;
    cr_status st;
    if ((st = derive_train(s)) || (st = derive_truth(s, 0)) || (st = derive_truth(s, 1))) return st;
    cr_split_stats *c = &s->stats;
    c->n_train = c->n_valid = c->n_test = c->n_hidden = 0;
    for (int64_t e = 0; e < v->n_inter; e++) {
        switch (s->roles[e]) {
        case CR_ROLE_TRAIN: c->n_train++; break;
        case CR_ROLE_VALID: c->n_valid++; break;
        case CR_ROLE_TEST: c->n_test++; break;
        default: c->n_hidden++; break;
        }
    }
    c->n_candidates = s->n_cands;
    if (s->p.protocol != CR_PROTO_COLD_USER) {
        c->held_valid_users = s->gt[0].n_users;
        c->held_test_users = s->gt[1].n_users;
    }
    c->valid_no_truth = c->held_valid_users - s->gt[0].n_users;
    c->test_no_truth = c->held_test_users - s->gt[1].n_users;
    c->valid_pairs = s->gt[0].gt_ptr[s->gt[0].n_users];
    c->test_pairs = s->gt[1].gt_ptr[s->gt[1].n_users];
    return CR_OK;
}

/* ---- shared helpers of the protocols ----------------------------------------------------------------- */

/* round(share * n), half away from zero, within [0, n]. */
static int64_t round_share(double share, int64_t n) {
    int64_t r = (int64_t)floor(share * (double)n + 0.5);
    return r < 0 ? 0 : r > n ? n : r;
}

/* Fisher-Yates from the back: for i = n-1 .. 1 swap a[i] with a[j], j uniform in [0, i]. */
static void shuffle_i32(int32_t *a, int64_t n, cr_rng *r) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = cr_rng_below(r, (uint32_t)(i + 1));
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Validation users among n held-out ones: round(share * n), but at least one test user remains. */
static int64_t n_valid_of(double share, int64_t n) {
    int64_t nv = round_share(share, n);
    return n > 0 && nv > n - 1 ? n - 1 : nv;
}

static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return INT_MAX / 2;
    int prev[64], cur[64];
    for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]), del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (m + 1) * sizeof(int));
    }
    return prev[m];
}

/* Unknown target: the message lists the domains (the first 20) and the hint names the nearest one. */
static cr_status resolve_target(const cr_dataset *d, const char *name, int32_t *out) {
    *out = cr_dataset_find_domain(d, name);
    if (*out >= 0) return CR_OK;
    const cr_interactions *v = cr_dataset_inter(d);
    char list[1024];
    size_t len = 0;
    int best = -1, best_d = INT_MAX;
    for (int64_t k = 0; k < v->n_domains; k++) {
        const char *dn = cr_dataset_domain_name(d, (int32_t)k);
        if (k < 20 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", dn);
        else if (k == 20 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, ", ... (%lld in all)", (long long)v->n_domains);
        int dist = edit_distance(name, dn);
        if (dist < best_d) best_d = dist, best = (int)k;
    }
    const char *path = cr_dataset_path(d);
    cr_status st = cr_fail(CR_ERR_ARG, "no domain '%s' in %s (domains: %s)", name, path ? path : "the dataset", len ? list : "none");
    if (best >= 0) cr_set_hint("did you mean '%s'?", cr_dataset_domain_name(d, best));
    return st;
}

/* ---- cold-user ----------------------------------------------------------------------------------------- */

/* part[u] = CR_ROLE_VALID / CR_ROLE_TEST for users named so in the users file, else left at 0 (train). */
static cr_status read_users_file(cr_split *s, const char *path, uint8_t *part) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int64_t *first_line = calloc_n(v->n_users, sizeof(int64_t));
    if (!first_line) return nomem("users file");
    cr_table *t = NULL;
    cr_status st = cr_table_open(&t, path, NULL);
    static const char *const cols[] = {"user", "split"};
    if (st == CR_OK) st = cr_table_select(t, cols, NULL, 2);
    cr_field f[2];
    while (st == CR_OK && (st = cr_table_next(t, f)) == CR_OK) {
        long long line = (long long)cr_table_line(t);
        int ulen = (int)(f[0].len > 200 ? 200 : f[0].len), slen = (int)(f[1].len > 200 ? 200 : f[1].len);
        int32_t u = cr_idmap_find(&s->d->user_map, f[0].p, f[0].len);
        uint8_t role;
        if (f[1].len == 5 && !memcmp(f[1].p, "train", 5)) role = CR_ROLE_TRAIN;
        else if (f[1].len == 5 && !memcmp(f[1].p, "valid", 5)) role = CR_ROLE_VALID;
        else if (f[1].len == 4 && !memcmp(f[1].p, "test", 4)) role = CR_ROLE_TEST;
        else {
            st = cr_fail(CR_ERR_PARSE, "%s:%lld: split must be train, valid or test, found '%.*s'", cr_table_name(t), line, slen, f[1].p);
            break;
        }
        if (u < 0) {
            st = cr_fail(CR_ERR_PARSE, "%s:%lld: user '%.*s' is not in the dataset", cr_table_name(t), line, ulen, f[0].p);
            break;
        }
        if (first_line[u]) {
            st = cr_fail(CR_ERR_PARSE, "%s:%lld: user '%.*s' is listed twice (first on line %lld)", cr_table_name(t), line, ulen,
                         f[0].p, (long long)first_line[u]);
            break;
        }
        first_line[u] = line;
        part[u] = role;
    }
    if (st == CR_DONE) st = CR_OK;
    cr_table_close(t);
    cr_free(first_line);
    return st;
}

static cr_status roles_cold_user(cr_split *s, uint8_t *roles) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int32_t T = s->target;
    uint8_t *part = calloc_n(v->n_users, 1);
    int32_t *elig = alloc_n(v->n_users, sizeof(int32_t));
    cr_status st = CR_OK;
    if (!part || !elig) {
        st = nomem("cold-user");
        goto done;
    }
    int64_t n_elig = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        int in_t = 0, other = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            if (v->item_domain[v->user_items[e]] == T) in_t = 1;
            else other = 1;
        }
        if (in_t && other) elig[n_elig++] = (int32_t)u;
    }
    s->stats.eligible_users = n_elig;
    const char *tname = cr_dataset_domain_name(s->d, T);
    if (s->p.users_file) {
        if ((st = read_users_file(s, s->p.users_file, part))) goto done;
        int64_t nv = 0, nt = 0;
        for (int64_t u = 0; u < v->n_users; u++) nv += part[u] == CR_ROLE_VALID, nt += part[u] == CR_ROLE_TEST;
        if (nt == 0) {
            st = cr_fail(CR_ERR_ARG, "%s names no test user", s->p.users_file);
            goto done;
        }
        s->stats.held_valid_users = nv;
        s->stats.held_test_users = nt;
    } else {
        if (n_elig == 0) {
            st = cr_fail(CR_ERR_ARG, "no user has events both in '%s' and in another domain: cold-user has nobody to hold out", tname);
            goto done;
        }
        int64_t held = round_share(s->p.beta, n_elig);
        if (held == 0) {
            st = cr_fail(CR_ERR_ARG, "beta %g of %lld overlapping users holds out nobody", s->p.beta, (long long)n_elig);
            cr_set_hint("raise beta (it is rounded to whole users)");
            goto done;
        }
        cr_rng r;
        cr_rng_named(&r, s->p.seed, "split.cold-user");
        shuffle_i32(elig, n_elig, &r);
        int64_t nv = n_valid_of(s->p.valid_share, held);
        for (int64_t k = 0; k < held; k++) part[elig[k]] = k < nv ? CR_ROLE_VALID : CR_ROLE_TEST;
        s->stats.held_valid_users = nv;
        s->stats.held_test_users = held - nv;
    }
    for (int64_t u = 0; u < v->n_users; u++) {
        if (!part[u]) continue;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
            if (v->item_domain[v->user_items[e]] == T) roles[e] = part[u];
    }
done:
    cr_free(part);
    cr_free(elig);
    return st;
}

/* ---- warm ---------------------------------------------------------------------------------------------- */

static cr_status roles_warm(cr_split *s, uint8_t *roles) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int32_t T = s->target;
    int64_t longest = 0;
    for (int64_t u = 0; u < v->n_users; u++)
        if (v->user_ptr[u + 1] - v->user_ptr[u] > longest) longest = v->user_ptr[u + 1] - v->user_ptr[u];
    int64_t *idx = alloc_n(longest, sizeof(int64_t));
    int32_t *held_mark = calloc_n(v->n_items, sizeof(int32_t)), *test_mark = calloc_n(v->n_items, sizeof(int32_t));
    if (!idx || !held_mark || !test_mark) {
        cr_free(idx), cr_free(held_mark), cr_free(test_mark);
        return nomem("warm");
    }
    cr_rng r;
    cr_rng_named(&r, s->p.seed, "split.warm");
    for (int64_t u = 0; u < v->n_users; u++) {
        int64_t m = 0;   /* the considered events of u, in time order */
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
            if (is_candidate(v, T, v->user_items[e])) idx[m++] = e;
        if (!s->p.warm_random) {
            if (m >= 2) roles[idx[m - 1]] = CR_ROLE_TEST;
            if (m >= 3) roles[idx[m - 2]] = CR_ROLE_VALID;
        } else {
            int any_train = 0;
            for (int64_t k = 0; k < m; k++) {
                double x = cr_rng_uniform(&r);
                uint8_t role = x < 0.8 ? CR_ROLE_TRAIN : x < 0.9 ? CR_ROLE_VALID : CR_ROLE_TEST;
                roles[idx[k]] = role;
                any_train |= role == CR_ROLE_TRAIN;
            }
            if (m > 0 && !any_train) roles[idx[0]] = CR_ROLE_TRAIN;
        }
        /* leakage: stamps u + 1 mark the items u holds out (and holds out for test) */
        int32_t stamp = (int32_t)(u + 1);
        for (int64_t k = 0; k < m; k++) {
            uint8_t role = roles[idx[k]];
            int32_t item = v->user_items[idx[k]];
            if (role == CR_ROLE_VALID || role == CR_ROLE_TEST) held_mark[item] = stamp;
            if (role == CR_ROLE_TEST) test_mark[item] = stamp;
        }
        for (int64_t k = 0; k < m; k++) {
            int32_t item = v->user_items[idx[k]];
            uint8_t *role = &roles[idx[k]];
            if ((*role == CR_ROLE_TRAIN && held_mark[item] == stamp) || (*role == CR_ROLE_VALID && test_mark[item] == stamp))
                *role = CR_ROLE_HIDDEN;
        }
    }
    cr_free(idx), cr_free(held_mark), cr_free(test_mark);
    return CR_OK;
}

/* ---- new-domain ---------------------------------------------------------------------------------------- */

typedef struct {
    int64_t time, event;
} timed_event;

static int cmp_timed(const void *a, const void *b) {
    const timed_event *x = a, *y = b;
    if (x->time != y->time) return (x->time > y->time) - (x->time < y->time);
    return (x->event > y->event) - (x->event < y->event);
}

/* Keeps the K earliest events of each target item (by timestamp, ties by event index) as TRAIN. */
static cr_status keep_few_shot(cr_split *s, uint8_t *roles) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int64_t K = s->p.few_shot;
    /* bucket the events of items with more than K events by item; the dataset's item_ptr gives the sizes */
    int64_t *cursor = alloc_n(v->n_items, sizeof(int64_t));
    timed_event *ev = alloc_n(v->n_inter, sizeof(timed_event));
    if (!cursor || !ev) {
        cr_free(cursor), cr_free(ev);
        return nomem("few-shot");
    }
    for (int64_t i = 0; i < v->n_items; i++) cursor[i] = v->item_ptr[i];
    for (int64_t u = 0; u < v->n_users; u++)
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            if (v->item_domain[i] != s->target) continue;
            if (v->item_ptr[i + 1] - v->item_ptr[i] <= K) roles[e] = CR_ROLE_TRAIN;
            else ev[cursor[i]++] = (timed_event){v->user_times[e], e};
        }
    for (int64_t i = 0; i < v->n_items; i++) {
        int64_t n = v->item_ptr[i + 1] - v->item_ptr[i];
        if (v->item_domain[i] != s->target || n <= K) continue;
        qsort(ev + v->item_ptr[i], (size_t)n, sizeof *ev, cmp_timed);
        for (int64_t k = 0; k < K; k++) roles[ev[v->item_ptr[i] + k].event] = CR_ROLE_TRAIN;
    }
    cr_free(cursor), cr_free(ev);
    return CR_OK;
}

static cr_status roles_new_domain(cr_split *s, uint8_t *roles) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int32_t T = s->target;
    for (int64_t e = 0; e < v->n_inter; e++)
        if (v->item_domain[v->user_items[e]] == T) roles[e] = CR_ROLE_TEST;
    cr_status st;
    if (s->p.few_shot > 0 && (st = keep_few_shot(s, roles))) return st;
    int32_t *mark = calloc_n(v->n_items, sizeof(int32_t)), *users = alloc_n(v->n_users, sizeof(int32_t));
    if (!mark || !users) {
        cr_free(mark), cr_free(users);
        return nomem("new-domain");
    }
    int64_t n = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        /* leakage: a held-out repeat of a pair that keeps a few-shot TRAIN event is hidden */
        int32_t stamp = (int32_t)(u + 1);
        int held = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
            if (roles[e] == CR_ROLE_TRAIN && v->item_domain[v->user_items[e]] == T) mark[v->user_items[e]] = stamp;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            if (roles[e] != CR_ROLE_TEST) continue;
            if (mark[v->user_items[e]] == stamp) roles[e] = CR_ROLE_HIDDEN;
            else held = 1;
        }
        if (held) users[n++] = (int32_t)u;
    }
    if (n > 0) {
        cr_rng r;
        cr_rng_named(&r, s->p.seed, "split.new-domain");
        shuffle_i32(users, n, &r);
        int64_t nv = n_valid_of(s->p.valid_share, n);
        for (int64_t k = 0; k < nv; k++)
            for (int64_t e = v->user_ptr[users[k]]; e < v->user_ptr[users[k] + 1]; e++)
                if (roles[e] == CR_ROLE_TEST) roles[e] = CR_ROLE_VALID;
    }
    cr_free(mark), cr_free(users);
    return CR_OK;
}

/* ---- sampled view -------------------------------------------------------------------------------------- */

/* For each ground-truth pair, N distinct candidates the user has no event with. Per user, `umark` stamps
 * the user's items; the number A of available candidates decides the method, so that no pair ever loops:
 * A <= N: all of them in candidate order, padded with -1; A small (under 2N, or under a quarter of the
 * candidates): a partial Fisher-Yates over the list of available ones; else rejection sampling, which then
 * accepts at least one draw in eight. */
static cr_status make_sampled(cr_split *s) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    int64_t N = s->p.sampled, C = s->n_cands;
    int64_t *umark = calloc_n(v->n_items, sizeof(int64_t)), *pmark = calloc_n(v->n_items, sizeof(int64_t));
    int32_t *avail = alloc_n(C, sizeof(int32_t));
    cr_status st = CR_OK;
    if (!umark || !pmark || !avail) {
        st = nomem("sampled negatives");
        goto done;
    }
    cr_rng r;
    cr_rng_named(&r, s->p.seed, "split.sampled");
    int64_t ustamp = 0, pstamp = 0;
    for (int k = 0; k < 2; k++) {
        const cr_ground_truth *g = &s->gt[k];
        int64_t pairs = g->gt_ptr[g->n_users];
        int32_t *out = s->sampled_buf[k] = alloc_n(pairs * N, sizeof(int32_t));
        if (!out) {
            st = nomem("sampled negatives");
            goto done;
        }
        s->sampled[k] = out;
        for (int64_t j = 0; j < g->n_users; j++) {
            int32_t u = g->users[j];
            int64_t seen = 0;
            ustamp++;
            for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
                int32_t i = v->user_items[e];
                if (umark[i] == ustamp) continue;
                umark[i] = ustamp;
                seen += is_candidate(v, s->target, i);
            }
            int64_t A = C - seen;
            int64_t p0 = g->gt_ptr[j], p1 = g->gt_ptr[j + 1];
            int list = A <= N || A < 2 * N || 4 * A < C;
            if (list) {
                int64_t a = 0;
                for (int64_t c = 0; c < C; c++)
                    if (umark[s->cands[c]] != ustamp) avail[a++] = s->cands[c];
                CR_ASSERT(a == A);
            }
            for (int64_t pr = p0; pr < p1; pr++) {
                int32_t *o = out + pr * N;
                if (A <= N) {
                    for (int64_t x = 0; x < N; x++) o[x] = x < A ? avail[x] : -1;
                } else if (list) {
                    /* avail stays a permutation of the available items, so each pair's prefix is uniform */
                    for (int64_t x = 0; x < N; x++) {
                        int64_t y = x + cr_rng_below(&r, (uint32_t)(A - x));
                        int32_t t = avail[x];
                        avail[x] = avail[y];
                        avail[y] = t;
                        o[x] = avail[x];
                    }
                } else {
                    pstamp++;
                    for (int64_t x = 0; x < N;) {
                        int32_t i = s->cands[cr_rng_below(&r, (uint32_t)C)];
                        if (umark[i] == ustamp || pmark[i] == pstamp) continue;
                        pmark[i] = pstamp;
                        o[x++] = i;
                    }
                }
            }
        }
    }
done:
    cr_free(umark), cr_free(pmark), cr_free(avail);
    return st;
}

/* ---- make ---------------------------------------------------------------------------------------------- */

/* Why nothing was held out for test, per protocol, for the error message. */
static cr_status nothing_held_out(const cr_split *s) {
    const char *tname = s->target >= 0 ? cr_dataset_domain_name(s->d, s->target) : NULL;
    switch (s->p.protocol) {
    case CR_PROTO_COLD_USER:
        return cr_fail(CR_ERR_ARG, "none of the %lld test users has events in '%s': nothing to evaluate",
                       (long long)s->stats.held_test_users, tname);
    case CR_PROTO_WARM:
        if (tname) return cr_fail(CR_ERR_ARG, "warm: no user has an event in '%s' to hold out for test", tname);
        return cr_fail(CR_ERR_ARG, "warm: no user has an event to hold out for test (leave-last-out needs 2 per user)");
    case CR_PROTO_NEW_DOMAIN:
        return cr_fail(CR_ERR_ARG, "new-domain: no event of '%s' is held out (few-shot %lld keeps them all)", tname,
                       (long long)s->p.few_shot);
    }
    return CR_ERR_ARG;
}

cr_status cr_split_make(cr_split **out, const cr_dataset *d, const cr_split_params *p) {
    *out = NULL;
    const char *msg = cr_split_check_params(p);
    if (msg) return cr_fail(CR_ERR_ARG, "%s", msg);
    const char *dpath = cr_dataset_path(d);
    if (!dpath) return cr_fail(CR_ERR_ARG, "a split needs a dataset loaded from a .crd file (it records the file's path and checksum)");
    char abs_path[PATH_MAX];
    if (!realpath(dpath, abs_path)) return cr_fail(CR_ERR_IO, "%s: %s", dpath, strerror(errno));
    const cr_interactions *v = cr_dataset_inter(d);
    cr_split *s = cr_calloc(1, sizeof *s);
    if (!s) return nomem("split");
    s->d = d;
    s->p = *p;
    s->p.target = NULL;
    s->p.users_file = NULL;
    s->target = -1;
    s->ds_crc = cr_dataset_file_crc(d);
    cr_status st = CR_OK;
    if (!(s->ds_path = dup_str(abs_path)) || !(s->ds_base = dup_str(base_name(abs_path))) ||
        (has_target(p) && !(s->target_name = dup_str(p->target))) ||
        (p->users_file && !(s->users_file = dup_str(base_name(p->users_file)))) ||
        !(s->roles_buf = calloc_n(v->n_inter, 1))) {
        st = nomem("split");
        goto fail;
    }
    s->p.target = s->target_name;
    s->roles = s->roles_buf;
    if (s->target_name && (st = resolve_target(d, s->target_name, &s->target))) goto fail;
    switch (p->protocol) {
    case CR_PROTO_COLD_USER:
        /* the users file is read by its given path; the split keeps only its basename, for the record */
        s->p.users_file = p->users_file;
        st = roles_cold_user(s, s->roles_buf);
        break;
    case CR_PROTO_WARM: st = roles_warm(s, s->roles_buf); break;
    case CR_PROTO_NEW_DOMAIN: st = roles_new_domain(s, s->roles_buf); break;
    }
    s->p.users_file = s->users_file;
    if (st || (st = derive(s))) goto fail;
    if (s->gt[1].n_users == 0) {
        st = nothing_held_out(s);
        goto fail;
    }
    if (s->p.sampled > 0 && (st = make_sampled(s))) goto fail;
    *out = s;
    return CR_OK;
fail:
    cr_split_free(s);
    return st;
}

/* ---- save ---------------------------------------------------------------------------------------------- */

cr_status cr_split_save(const cr_split *s, const char *path) {
    cr_filew *w;
    cr_status st = cr_filew_new(&w, "CRS", CR_CRS_VERSION);
    if (st) return st;
    const cr_split_params *p = &s->p;
    int64_t n_inter = cr_dataset_inter(s->d)->n_inter;
    if ((st = cr_filew_meta_str(w, "crossrec", CR_VERSION_STRING)) ||
        (st = cr_filew_meta_str(w, "protocol", cr_protocol_name(p->protocol))) ||
        (st = cr_filew_meta_str(w, "target", p->target ? p->target : "")) || (st = cr_filew_meta_f64(w, "beta", p->beta)) ||
        (st = cr_filew_meta_str(w, "users_file", p->users_file ? p->users_file : "")) ||
        (st = cr_filew_meta_f64(w, "valid_share", p->valid_share)) || (st = cr_filew_meta_i64(w, "warm_random", p->warm_random)) ||
        (st = cr_filew_meta_i64(w, "few_shot", p->few_shot)) || (st = cr_filew_meta_i64(w, "sampled", p->sampled)) ||
        (st = cr_filew_meta_i64(w, "seed", (int64_t)p->seed)) || (st = cr_filew_meta_str(w, "dataset.path", s->ds_path)) ||
        (st = cr_filew_meta_str(w, "dataset.basename", s->ds_base)) || (st = cr_filew_meta_i64(w, "dataset.crc", s->ds_crc)) ||
        (st = cr_filew_meta_i64(w, "n_inter", n_inter)) ||
        (st = cr_filew_meta_i64(w, "eligible_users", s->stats.eligible_users)) ||
        (st = cr_filew_meta_i64(w, "held_valid_users", s->stats.held_valid_users)) ||
        (st = cr_filew_meta_i64(w, "held_test_users", s->stats.held_test_users)) ||
        (st = cr_filew_array(w, "roles", CR_DT_U8, s->roles, n_inter)))
        goto done;
    if (p->sampled > 0 &&
        ((st = cr_filew_array(w, "sampled.valid", CR_DT_I32, s->sampled[0], s->stats.valid_pairs * p->sampled)) ||
         (st = cr_filew_array(w, "sampled.test", CR_DT_I32, s->sampled[1], s->stats.test_pairs * p->sampled))))
        goto done;
    st = cr_filew_commit(w, path);
done:
    cr_filew_free(w);
    return st;
}

/* ---- load ---------------------------------------------------------------------------------------------- */

/* The dataset a split refers to (data.h: cr_dataset_load_ref); the split owns it. */
static cr_status find_dataset(cr_split *s, const char *path) {
    cr_dataset *d;
    cr_status st = cr_dataset_load_ref(&d, s->ds_path, s->ds_base, s->ds_crc, path);
    if (st && st != CR_ERR_NOMEM) cr_set_hint("keep the .crd next to the split file, or make the split again");
    if (st) return st;
    s->owned = d;
    s->d = d;
    return CR_OK;
}

/* Roles, counts and sampled negatives of a loaded file, checked against the dataset. */
static cr_status check_sampled(const cr_split *s, const char *path, int k, const int32_t *a) {
    const cr_interactions *v = cr_dataset_inter(s->d);
    const cr_ground_truth *g = &s->gt[k];
    int64_t N = s->p.sampled;
    int64_t *umark = calloc_n(v->n_items, sizeof(int64_t)), *pmark = calloc_n(v->n_items, sizeof(int64_t));
    if (!umark || !pmark) {
        cr_free(umark), cr_free(pmark);
        return nomem("checking sampled negatives");
    }
    const char *name = k == 0 ? "sampled.valid" : "sampled.test";
    cr_status st = CR_OK;
    int64_t pstamp = 0;
    for (int64_t j = 0; j < g->n_users && !st; j++) {
        int32_t u = g->users[j];
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) umark[v->user_items[e]] = j + 1;
        for (int64_t pr = g->gt_ptr[j]; pr < g->gt_ptr[j + 1] && !st; pr++) {
            pstamp++;
            for (int64_t x = pr * N; x < (pr + 1) * N; x++) {
                int32_t i = a[x];
                if (i == -1) continue;
                const char *why = i < 0 || i >= v->n_items || !is_candidate(v, s->target, i) ? "is not a candidate item"
                                  : umark[i] == j + 1                                      ? "is an item of the user"
                                  : pmark[i] == pstamp                                     ? "repeats within its pair"
                                                                                           : NULL;
                if (why) {
                    st = cr_fail(CR_ERR_FORMAT, "%s: %s[%lld] = %d %s", path, name, (long long)x, i, why);
                    break;
                }
                pmark[i] = pstamp;
            }
        }
    }
    cr_free(umark), cr_free(pmark);
    return st;
}

cr_status cr_split_load(cr_split **out, const char *path) {
    *out = NULL;
    cr_split *s = cr_calloc(1, sizeof *s);
    if (!s) return nomem("split");
    s->target = -1;
    cr_status st = cr_file_open(&s->file, path, "CRS", CR_CRS_VERSION);
    if (st) goto fail;
    cr_file *f = s->file;
    const char *proto, *target, *users_file, *ds_path, *ds_base;
    int64_t warm_random, seed, crc, n_inter, elig, held_v, held_t;
    cr_split_params *p = &s->p;
    if ((st = cr_file_get_str(f, "protocol", &proto)) || (st = cr_file_get_str(f, "target", &target)) ||
        (st = cr_file_get_f64(f, "beta", &p->beta)) || (st = cr_file_get_str(f, "users_file", &users_file)) ||
        (st = cr_file_get_f64(f, "valid_share", &p->valid_share)) || (st = cr_file_get_i64(f, "warm_random", &warm_random)) ||
        (st = cr_file_get_i64(f, "few_shot", &p->few_shot)) || (st = cr_file_get_i64(f, "sampled", &p->sampled)) ||
        (st = cr_file_get_i64(f, "seed", &seed)) || (st = cr_file_get_str(f, "dataset.path", &ds_path)) ||
        (st = cr_file_get_str(f, "dataset.basename", &ds_base)) || (st = cr_file_get_i64(f, "dataset.crc", &crc)) ||
        (st = cr_file_get_i64(f, "n_inter", &n_inter)) || (st = cr_file_get_i64(f, "eligible_users", &elig)) ||
        (st = cr_file_get_i64(f, "held_valid_users", &held_v)) || (st = cr_file_get_i64(f, "held_test_users", &held_t)))
        goto fail;
    if (cr_protocol_from_name(proto, &p->protocol)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: unknown protocol '%s'", path, proto);
        goto fail;
    }
    p->warm_random = warm_random != 0;
    p->seed = (uint64_t)seed;
    if (!(s->ds_path = dup_str(ds_path)) || !(s->ds_base = dup_str(ds_base)) || (target[0] && !(s->target_name = dup_str(target))) ||
        (users_file[0] && !(s->users_file = dup_str(users_file)))) {
        st = nomem("split");
        goto fail;
    }
    p->target = s->target_name;
    p->users_file = s->users_file;
    const char *msg = cr_split_check_params(p);
    if (msg) {
        st = cr_fail(CR_ERR_FORMAT, "%s: bad parameters: %s", path, msg);
        goto fail;
    }
    if (crc < 0 || crc > UINT32_MAX || !ds_base[0] || strchr(ds_base, '/')) {
        st = cr_fail(CR_ERR_FORMAT, "%s: bad dataset reference (basename '%s', checksum %lld)", path, ds_base, (long long)crc);
        goto fail;
    }
    s->ds_crc = (uint32_t)crc;
    if ((st = find_dataset(s, path))) goto fail;
    const cr_interactions *v = cr_dataset_inter(s->d);
    if (n_inter != v->n_inter) {
        st = cr_fail(CR_ERR_FORMAT, "%s: made for %lld events, the dataset has %lld", path, (long long)n_inter, (long long)v->n_inter);
        goto fail;
    }
    if (s->target_name && (s->target = cr_dataset_find_domain(s->d, s->target_name)) < 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: the dataset has no domain '%s'", path, s->target_name);
        goto fail;
    }
    const void *roles;
    if ((st = cr_file_get_array(f, "roles", CR_DT_U8, v->n_inter, &roles, NULL))) goto fail;
    s->roles = roles;
    for (int64_t e = 0; e < v->n_inter; e++)
        if (s->roles[e] > CR_ROLE_HIDDEN) {
            st = cr_fail(CR_ERR_FORMAT, "%s: roles[%lld] = %d is not a role (0..3)", path, (long long)e, s->roles[e]);
            goto fail;
        }
    s->stats.eligible_users = elig;
    s->stats.held_valid_users = held_v;
    s->stats.held_test_users = held_t;
    if ((st = derive(s))) goto fail;
    if (elig < 0 || s->stats.valid_no_truth < 0 || s->stats.test_no_truth < 0) {
        st = cr_fail(CR_ERR_FORMAT, "%s: user counts (%lld eligible, %lld valid, %lld test) disagree with the roles", path,
                     (long long)elig, (long long)held_v, (long long)held_t);
        goto fail;
    }
    if (p->sampled > 0) {
        int64_t pairs[2] = {s->stats.valid_pairs, s->stats.test_pairs};
        const char *names[2] = {"sampled.valid", "sampled.test"};
        for (int k = 0; k < 2; k++) {
            const void *a;
            if (pairs[k] > INT64_MAX / p->sampled) {
                st = cr_fail(CR_ERR_FORMAT, "%s: %lld pairs x %lld negatives is too many", path, (long long)pairs[k], (long long)p->sampled);
                goto fail;
            }
            if ((st = cr_file_get_array(f, names[k], CR_DT_I32, pairs[k] * p->sampled, &a, NULL)) ||
                (st = check_sampled(s, path, k, a)))
                goto fail;
            s->sampled[k] = a;
        }
    }
    cr_file_release(s->file);   /* every role and negative was checked */
    *out = s;
    return CR_OK;
fail:
    cr_split_free(s);
    return st;
}

/* ---- export -------------------------------------------------------------------------------------------- */


/* The three files are written as NAME.tmp and renamed once all are complete, so a failed write never leaves
 * a partial file (an older complete export stays). No fsync: an export is regenerated from the .crs at will. */
cr_status cr_split_export(const cr_split *s, const char *dir) {
    static const char *const names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    const cr_interactions *v = cr_dataset_inter(s->d);
    cr_status st = cr_mkdirs(dir);
    if (st) return st;
    size_t dlen = strlen(dir);
    char *paths[3] = {NULL, NULL, NULL}, *tmps[3] = {NULL, NULL, NULL};
    FILE *fp[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3 && !st; k++) {
        size_t len = dlen + strlen(names[k]) + 8;
        if (!(paths[k] = cr_malloc(len)) || !(tmps[k] = cr_malloc(len))) {
            st = nomem("export");
            break;
        }
        snprintf(paths[k], len, "%s/%s", dir, names[k]);
        snprintf(tmps[k], len, "%s/%s.tmp", dir, names[k]);
        if (!(fp[k] = fopen(tmps[k], "wb"))) st = cr_fail(CR_ERR_IO, "%s: %s", tmps[k], strerror(errno));
        else fputs("user\titem\n", fp[k]);
    }
    for (int64_t u = 0; u < v->n_users && !st; u++) {
        const char *uid = cr_dataset_user_id(s->d, (int32_t)u);
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            uint8_t role = s->roles[e];
            if (role == CR_ROLE_HIDDEN) continue;
            const char *iid = cr_dataset_item_id(s->d, v->user_items[e]);
            if (strpbrk(uid, "\t\r\n") || strpbrk(iid, "\t\r\n")) {
                st = cr_fail(CR_ERR_ARG, "export: %s id '%s' holds a tab or line break and cannot be written as TSV",
                             strpbrk(uid, "\t\r\n") ? "user" : "item", strpbrk(uid, "\t\r\n") ? uid : iid);
                break;
            }
            /* roles TRAIN 0, VALID 1, TEST 2 index the files directly */
            fputs(uid, fp[role]);
            fputc('\t', fp[role]);
            fputs(iid, fp[role]);
            fputc('\n', fp[role]);
        }
    }
    int written = 0;
    for (int k = 0; k < 3; k++) {
        if (!fp[k]) continue;
        int bad = ferror(fp[k]);
        if (fclose(fp[k]) != 0) bad = 1;
        if (bad && !st) st = cr_fail(CR_ERR_IO, "%s: %s", tmps[k], strerror(errno));
        written++;
    }
    for (int k = 0; k < 3 && !st; k++)
        if (rename(tmps[k], paths[k]) != 0) st = cr_fail(CR_ERR_IO, "%s: cannot rename into place: %s", paths[k], strerror(errno));
    if (st)
        for (int k = 0; k < written; k++)
            if (tmps[k]) unlink(tmps[k]);
    for (int k = 0; k < 3; k++) cr_free(paths[k]), cr_free(tmps[k]);
    return st;
}

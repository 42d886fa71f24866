/* test_split.c — evaluation splits: protocol invariants on synthetic data, exact roles on a hand-made
 * dataset (leave-last-out, the leakage rules, few-shot), the sampled view, .crs determinism, save/load and its
 * validation, users files, export, fault injection, the CLI, and the upstream amazon-art-office partition. */
#include "test.h"

#include "crossrec/data.h"
#include "crossrec/io.h"
#include "crossrec/split.h"

#include <stdlib.h>

/* ---- datasets ---- */

/* Imports inter/items text (or a synth folder) and returns the dataset loaded back from DIR/data.crd, as a
 * split needs (a dataset loaded from a file). */
static cr_dataset *import_to_crd(const char *inter_path, const char *items_path, const char *crd) {
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = inter_path;
    if (items_path) p.items[p.n_items++] = items_path;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    CHECK_OK(cr_dataset_save(d, crd));
    cr_dataset_free(d);
    CHECK_OK(cr_dataset_load(&d, crd));
    return d;
}

/* A synthetic dataset in tmp/NAME/ (data.crd beside the generated TSVs). */
static cr_dataset *synth_dataset(const char *name, uint64_t seed, int n_domains) {
    char dir[512], inter[600], items[600], crd[600];
    snprintf(dir, sizeof dir, "%s", cr_test_path(name));
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = 400, sp.n_items = 300, sp.n_inter = 6000, sp.n_domains = n_domains, sp.seed = seed;
    CHECK_OK(cr_synth_write(dir, &sp));
    snprintf(inter, sizeof inter, "%s/interactions.tsv", dir);
    snprintf(items, sizeof items, "%s/items.tsv", dir);
    snprintf(crd, sizeof crd, "%s/data.crd", dir);
    return import_to_crd(inter, items, crd);
}

/* Hand-made: books b1..b4, music m1..m3. Event indices (user CSR): u1 e0..e3, u2 e4..e7, u3 e8..e9, u4 e10.
 *   u1: b1@1 b2@2 b1@3 m1@4      u2: b1@1 b2@2 b3@3 b3@4      u3: m2@5 b4@6      u4: m3@7 */
static const char *HAND_ITEMS = "item\tdomain\ttitle\ttext\nb1\tbooks\t\t\nb2\tbooks\t\t\nb3\tbooks\t\t\nb4\tbooks\t\t\n"
                                "m1\tmusic\t\t\nm2\tmusic\t\t\nm3\tmusic\t\t\n";
static const char *HAND_INTER = "user\titem\ttimestamp\tvalue\n"
                                "u1\tb1\t1\t1\nu1\tb2\t2\t1\nu1\tb1\t3\t1\nu1\tm1\t4\t1\n"
                                "u2\tb1\t1\t1\nu2\tb2\t2\t1\nu2\tb3\t3\t1\nu2\tb3\t4\t1\n"
                                "u3\tm2\t5\t1\nu3\tb4\t6\t1\nu4\tm3\t7\t1\n";

static cr_dataset *hand_dataset(void) {
    const char *inter = cr_test_write("hand-inter.tsv", HAND_INTER, -1);
    char ip[512];
    snprintf(ip, sizeof ip, "%s", inter);
    const char *items = cr_test_write("hand-items.tsv", HAND_ITEMS, -1);
    char tp[512];
    snprintf(tp, sizeof tp, "%s", items);
    return import_to_crd(ip, tp, cr_test_path("hand.crd"));
}

static cr_split_params params(cr_protocol proto, const char *target) {
    cr_split_params p = cr_split_default_params();
    p.protocol = proto;
    p.target = target;
    return p;
}

static void check_roles(const cr_split *s, const char *want) {
    const uint8_t *r = cr_split_roles(s);
    int64_t n = (int64_t)strlen(want);
    CHECK_EQ(cr_dataset_inter(cr_split_dataset(s))->n_inter, n);
    for (int64_t e = 0; e < n; e++)
        CHECK_MSG(r[e] == want[e] - '0', "event %lld: role %d, want %c (roles want %s)", (long long)e, r[e], want[e], want);
}

/* The training view holds exactly the TRAIN events, user CSR in dataset order, item CSR consistent. */
static void check_train_view(const cr_split *s) {
    const cr_interactions *v = cr_dataset_inter(cr_split_dataset(s)), *t = cr_split_train(s);
    const uint8_t *r = cr_split_roles(s);
    CHECK(t->n_users == v->n_users && t->n_items == v->n_items && t->n_domains == v->n_domains);
    CHECK(t->item_domain == v->item_domain);
    CHECK(t->user_times == NULL);
    int64_t k = 0;
    int64_t *per_item = calloc((size_t)v->n_items, sizeof *per_item);
    for (int64_t u = 0; u < v->n_users; u++) {
        CHECK_EQ(t->user_ptr[u], k);
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            if (r[e] != CR_ROLE_TRAIN) continue;
            CHECK_EQ(t->user_items[k], v->user_items[e]);
            per_item[v->user_items[e]]++;
            k++;
        }
    }
    CHECK_EQ(t->n_inter, k);
    CHECK_EQ(t->user_ptr[v->n_users], k);
    for (int64_t i = 0; i < v->n_items; i++) {
        CHECK_EQ(t->item_ptr[i + 1] - t->item_ptr[i], per_item[i]);
        for (int64_t x = t->item_ptr[i] + 1; x < t->item_ptr[i + 1]; x++) CHECK(t->item_users[x - 1] <= t->item_users[x]);
    }
    free(per_item);
}

/* Ground truth of a part from the roles, by brute force, against cr_split_truth. */
static void check_truth(const cr_split *s, cr_part part) {
    const cr_interactions *v = cr_dataset_inter(cr_split_dataset(s));
    const uint8_t *r = cr_split_roles(s);
    const cr_ground_truth *g = cr_split_truth(s, part);
    uint8_t role = part == CR_PART_VALID ? CR_ROLE_VALID : CR_ROLE_TEST;
    int64_t j = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        int any = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) any |= r[e] == role;
        if (!any) continue;
        CHECK(j < g->n_users);
        CHECK_EQ(g->users[j], u);
        for (int64_t x = g->gt_ptr[j]; x < g->gt_ptr[j + 1]; x++) {
            if (x > g->gt_ptr[j]) CHECK(g->gt_items[x - 1] < g->gt_items[x]);
            int found = 0;
            for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) found |= r[e] == role && v->user_items[e] == g->gt_items[x];
            CHECK(found);
        }
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            if (r[e] != role) continue;
            int listed = 0;
            for (int64_t x = g->gt_ptr[j]; x < g->gt_ptr[j + 1]; x++) listed |= g->gt_items[x] == v->user_items[e];
            CHECK(listed);
        }
        j++;
    }
    CHECK_EQ(g->n_users, j);
}

/* Every sampled negative is a candidate the user has no event with; no repeats within a pair; -1 pads only
 * the tail. Returns the number of -1 entries. */
static int64_t check_sampled(const cr_split *s, cr_part part, int64_t want_n) {
    const cr_interactions *v = cr_dataset_inter(cr_split_dataset(s));
    const cr_ground_truth *g = cr_split_truth(s, part);
    int64_t N, nc;
    const int32_t *neg = cr_split_sampled(s, part, &N);
    const int32_t *cands = cr_split_candidates(s, &nc);
    CHECK(neg != NULL);
    CHECK_EQ(N, want_n);
    uint8_t *is_cand = calloc((size_t)v->n_items, 1);
    for (int64_t c = 0; c < nc; c++) is_cand[cands[c]] = 1;
    int64_t pads = 0;
    for (int64_t j = 0; j < g->n_users; j++) {
        int32_t u = g->users[j];
        for (int64_t pr = g->gt_ptr[j]; pr < g->gt_ptr[j + 1]; pr++) {
            const int32_t *o = neg + pr * N;
            for (int64_t x = 0; x < N; x++) {
                if (o[x] == -1) {
                    pads++;
                    for (int64_t y = x; y < N; y++) CHECK_EQ(o[y], -1);
                    break;
                }
                CHECK(o[x] >= 0 && o[x] < v->n_items && is_cand[o[x]]);
                for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++)
                    CHECK_MSG(v->user_items[e] != o[x], "user %d: negative %d is one of its items", u, o[x]);
                for (int64_t y = 0; y < x; y++) CHECK(o[y] != o[x]);
            }
        }
    }
    free(is_cand);
    return pads;
}

static int files_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = cr_test_read(a, &na), *y = cr_test_read(b, &nb);
    int eq = x && y && na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return eq;
}

/* ---- parameters ---- */

TEST(split_params_check) {
    cr_split_params p = params(CR_PROTO_COLD_USER, "music");
    CHECK(cr_split_check_params(&p) == NULL);
    struct { cr_split_params p; const char *word; } cases[16];
    int n = 0;
    cases[n].p = p, cases[n].p.beta = 0, cases[n++].word = "beta";
    cases[n].p = p, cases[n].p.beta = 1, cases[n++].word = "beta";
    cases[n].p = p, cases[n].p.beta = NAN, cases[n++].word = "beta";
    cases[n].p = p, cases[n].p.valid_share = 1, cases[n++].word = "valid share";
    cases[n].p = p, cases[n].p.valid_share = -0.1, cases[n++].word = "valid share";
    cases[n].p = params(CR_PROTO_NEW_DOMAIN, "music"), cases[n].p.few_shot = -1, cases[n++].word = "few-shot";
    cases[n].p = p, cases[n].p.sampled = -1, cases[n++].word = "sampled";
    cases[n].p = p, cases[n].p.target = NULL, cases[n++].word = "cold-user needs a target";
    cases[n].p = params(CR_PROTO_NEW_DOMAIN, ""), cases[n++].word = "new-domain needs a target";
    cases[n].p = params(CR_PROTO_WARM, NULL), cases[n].p.users_file = "u.tsv", cases[n++].word = "users file";
    cases[n].p = p, cases[n].p.warm_random = 1, cases[n++].word = "random";
    cases[n].p = p, cases[n].p.few_shot = 3, cases[n++].word = "few-shot";
    cases[n].p = p, cases[n].p.protocol = (cr_protocol)9, cases[n++].word = "protocol";
    for (int k = 0; k < n; k++) {
        const char *msg = cr_split_check_params(&cases[k].p);
        CHECK_MSG(msg != NULL, "case %d (%s) accepted", k, cases[k].word);
        CHECK_CONTAINS(msg, cases[k].word);
    }
    cr_split_params w = params(CR_PROTO_WARM, NULL);
    CHECK(cr_split_check_params(&w) == NULL);
    cr_protocol pr;
    CHECK(cr_protocol_from_name("new-domain", &pr) == 0 && pr == CR_PROTO_NEW_DOMAIN);
    CHECK(cr_protocol_from_name("cold", &pr) == -1);
    CHECK_STR(cr_protocol_name(CR_PROTO_WARM), "warm");
}

TEST(split_needs_a_loaded_dataset_and_known_target) {
    cr_dataset *d = hand_dataset();
    cr_split *s = NULL;
    cr_split_params p = params(CR_PROTO_COLD_USER, "musik");
    CHECK_STATUS(cr_split_make(&s, d, &p), CR_ERR_ARG);
    CHECK(s == NULL);
    CHECK_CONTAINS(cr_errmsg(), "no domain 'musik' in ");
    CHECK_CONTAINS(cr_errmsg(), "hand.crd (domains: books, music)");
    CHECK_STR(cr_errhint(), "did you mean 'music'?");
    cr_dataset_free(d);
    /* an imported dataset has no file to refer to */
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = cr_test_write("hand-inter.tsv", HAND_INTER, -1);
    CHECK_OK(cr_dataset_import(&d, &ip, NULL));
    p.target = "all";
    CHECK_STATUS(cr_split_make(&s, d, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), ".crd");
    cr_dataset_free(d);
    /* no user in both domains: nobody to hold out */
    const char *inter = cr_test_write("disjoint.tsv", "user\titem\ttimestamp\tvalue\nu1\tb1\t1\t1\nu2\tm1\t2\t1\n", -1);
    char ip2[512];
    snprintf(ip2, sizeof ip2, "%s", inter);
    d = import_to_crd(ip2, cr_test_write("hand-items.tsv", HAND_ITEMS, -1), cr_test_path("disjoint.crd"));
    p.target = "music";
    CHECK_STATUS(cr_split_make(&s, d, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "no user has events both in 'music' and in another domain");
    cr_dataset_free(d);
}

/* ---- cold-user ---- */

TEST(split_cold_user_invariants) {
    cr_dataset *d = synth_dataset("cold", 7, 3);
    const cr_interactions *v = cr_dataset_inter(d);
    cr_split_params p = params(CR_PROTO_COLD_USER, "music");
    p.beta = 0.3, p.valid_share = 0.2;
    cr_split *s;
    CHECK_OK(cr_split_make(&s, d, &p));
    int32_t T = cr_split_target(s);
    CHECK_EQ(T, cr_dataset_find_domain(d, "music"));
    const uint8_t *r = cr_split_roles(s);
    int64_t elig = 0, held[3] = {0, 0, 0};
    for (int64_t u = 0; u < v->n_users; u++) {
        int in_t = 0, other = 0, part = -1;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int is_t = v->item_domain[v->user_items[e]] == T;
            in_t |= is_t, other |= !is_t;
            if (!is_t) {
                CHECK_EQ(r[e], CR_ROLE_TRAIN);   /* other-domain history stays visible */
            } else {
                CHECK(r[e] != CR_ROLE_HIDDEN);
                if (part < 0) part = r[e];
                CHECK_EQ(r[e], part);            /* all or none of a user's target events */
            }
        }
        elig += in_t && other;
        if (part > 0) {
            CHECK(in_t && other);                /* only eligible users are held out */
            held[part]++;
        }
    }
    const cr_split_stats *c = cr_split_stats_of(s);
    int64_t n_held = (int64_t)floor(0.3 * (double)elig + 0.5);
    CHECK(elig > 50);
    CHECK_EQ(c->eligible_users, elig);
    CHECK_EQ(held[1] + held[2], n_held);
    CHECK_EQ(held[1], (int64_t)floor(0.2 * (double)n_held + 0.5));
    CHECK_EQ(c->held_valid_users, held[1]);
    CHECK_EQ(c->held_test_users, held[2]);
    CHECK_EQ(c->valid_no_truth + c->test_no_truth, 0);
    CHECK_EQ(cr_split_truth(s, CR_PART_TEST)->n_users, held[2]);
    CHECK_EQ(c->n_hidden, 0);
    CHECK_EQ(c->n_train + c->n_valid + c->n_test, v->n_inter);
    int64_t nc;
    const int32_t *cands = cr_split_candidates(s, &nc);
    int64_t want_nc = 0;
    for (int64_t i = 0; i < v->n_items; i++) want_nc += v->item_domain[i] == T;
    CHECK_EQ(nc, want_nc);
    for (int64_t k = 0; k < nc; k++) {
        CHECK_EQ(v->item_domain[cands[k]], T);
        if (k) CHECK(cands[k - 1] < cands[k]);
    }
    check_train_view(s);
    check_truth(s, CR_PART_VALID);
    check_truth(s, CR_PART_TEST);
    int64_t n_neg;
    CHECK(cr_split_sampled(s, CR_PART_TEST, &n_neg) == NULL && n_neg == 0);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(split_same_seed_same_bytes) {
    cr_dataset *d = synth_dataset("det", 3, 3);
    cr_split_params p = params(CR_PROTO_COLD_USER, "books");
    p.sampled = 20;
    const char *files[3] = {"det-a.crs", "det-b.crs", "det-c.crs"};
    char paths[3][512];
    for (int k = 0; k < 3; k++) {
        p.seed = k < 2 ? 42 : 43;
        cr_split *s;
        CHECK_OK(cr_split_make(&s, d, &p));
        snprintf(paths[k], sizeof paths[k], "%s", cr_test_path(files[k]));
        CHECK_OK(cr_split_save(s, paths[k]));
        cr_split_free(s);
    }
    CHECK(files_equal(paths[0], paths[1]));
    CHECK(!files_equal(paths[0], paths[2]));
    cr_dataset_free(d);
}

TEST(split_sampled_negatives) {
    cr_dataset *d = synth_dataset("sampled", 5, 3);
    int64_t nc = 0;
    /* 20 negatives of ~100 candidates: rejection sampling; 70: the list (partial Fisher-Yates) path */
    int64_t sizes[2] = {20, 70};
    for (int k = 0; k < 2; k++) {
        cr_split_params p = params(CR_PROTO_COLD_USER, "movies");
        p.sampled = sizes[k];
        cr_split *s;
        CHECK_OK(cr_split_make(&s, d, &p));
        cr_split_candidates(s, &nc);
        CHECK(nc > 2 * 20 && nc < 2 * 70);
        int64_t pads = check_sampled(s, CR_PART_VALID, sizes[k]) + check_sampled(s, CR_PART_TEST, sizes[k]);
        if (k == 0) CHECK_EQ(pads, 0);   /* every user leaves far more than 20 candidates */
        cr_split_free(s);
    }
    /* warm over all items */
    cr_split_params p = params(CR_PROTO_WARM, NULL);
    p.sampled = 30;
    cr_split *s;
    CHECK_OK(cr_split_make(&s, d, &p));
    CHECK_EQ(check_sampled(s, CR_PART_TEST, 30), 0);
    cr_split_free(s);
    cr_dataset_free(d);
    /* tiny pool: u1 holds out m1 and has no other music item, so only m2, m3 remain: taken, then -1 */
    d = hand_dataset();
    const char *uf = cr_test_write("users-tiny.tsv", "user\tsplit\nu1\ttest\n", -1);
    p = params(CR_PROTO_COLD_USER, "music");
    p.users_file = uf;
    p.sampled = 5;
    CHECK_OK(cr_split_make(&s, d, &p));
    int64_t n;
    const int32_t *neg = cr_split_sampled(s, CR_PART_TEST, &n);
    CHECK_EQ(n, 5);
    CHECK_EQ(cr_split_truth(s, CR_PART_TEST)->gt_ptr[1], 1);
    CHECK_EQ(neg[0], cr_dataset_find_item(d, "m2"));
    CHECK_EQ(neg[1], cr_dataset_find_item(d, "m3"));
    CHECK(neg[2] == -1 && neg[3] == -1 && neg[4] == -1);
    CHECK_EQ(check_sampled(s, CR_PART_TEST, 5), 1);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- users file ---- */

TEST(split_users_file) {
    cr_dataset *d = hand_dataset();
    cr_split_params p = params(CR_PROTO_COLD_USER, "music");
    p.users_file = cr_test_write("users.tsv", "user\tsplit\nu1\ttest\nu2\tvalid\nu4\ttrain\n", -1);
    cr_split *s;
    CHECK_OK(cr_split_make(&s, d, &p));
    /* u1's m1 is test; u2 has no music: held out but not evaluated; u3 unlisted: train */
    check_roles(s, "00020000000");
    const cr_split_stats *c = cr_split_stats_of(s);
    CHECK_EQ(c->held_test_users, 1);
    CHECK_EQ(c->held_valid_users, 1);
    CHECK_EQ(c->valid_no_truth, 1);
    CHECK_EQ(c->test_no_truth, 0);
    CHECK_EQ(c->eligible_users, 2);   /* u1 and u3 */
    CHECK_EQ(cr_split_truth(s, CR_PART_VALID)->n_users, 0);
    CHECK_STR(cr_split_params_of(s)->users_file, "users.tsv");
    cr_split_free(s);

    struct { const char *text; cr_status st; const char *want; } bad[] = {
        {"user\tsplit\nu1\ttest\nu2\tsometimes\n", CR_ERR_PARSE, "users.tsv:3: split must be train, valid or test, found 'sometimes'"},
        {"user\tsplit\nu1\ttest\nnobody\ttest\n", CR_ERR_PARSE, "users.tsv:3: user 'nobody' is not in the dataset"},
        {"user\tsplit\nu1\ttest\nu3\tvalid\nu1\ttrain\n", CR_ERR_PARSE, "users.tsv:4: user 'u1' is listed twice (first on line 2)"},
        {"user\tsplit\nu1\ttest\nu3\n", CR_ERR_PARSE, "users.tsv:3: expected 2 fields, found 1"},
        {"user\tpart\nu1\ttest\n", CR_ERR_NOTFOUND, "no column 'split'"},
        {"user\tsplit\nu1\tvalid\n", CR_ERR_ARG, "names no test user"},
        {"user\tsplit\nu2\ttest\n", CR_ERR_ARG, "none of the 1 test users has events in 'music'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        p.users_file = cr_test_write("users.tsv", bad[k].text, -1);
        CHECK_STATUS(cr_split_make(&s, d, &p), bad[k].st);
        CHECK_CONTAINS(cr_errmsg(), bad[k].want);
    }
    p.users_file = "/nonexistent/users.tsv";
    CHECK_STATUS(cr_split_make(&s, d, &p), CR_ERR_IO);
    cr_dataset_free(d);
}

/* ---- warm ---- */

TEST(split_warm_by_time_exact_and_repeats) {
    cr_dataset *d = hand_dataset();
    cr_split *s;
    cr_split_params p = params(CR_PROTO_WARM, NULL);
    CHECK_OK(cr_split_make(&s, d, &p));
    /* u1 b1 b2 b1 m1: m1 test, b1@3 valid, so b1@1 (train) is hidden.
     * u2 b1 b2 b3 b3: b3@4 test, b3@3 valid but the same item as test: hidden (test wins).
     * u3 m2 b4: b4 test only (two events). u4: one event, nothing held out. */
    check_roles(s, "3012" "0032" "02" "0");
    const cr_ground_truth *vg = cr_split_truth(s, CR_PART_VALID), *tg = cr_split_truth(s, CR_PART_TEST);
    CHECK_EQ(vg->n_users, 1);
    CHECK_EQ(vg->users[0], 0);
    CHECK_EQ(vg->gt_items[0], cr_dataset_find_item(d, "b1"));
    CHECK_EQ(tg->n_users, 3);
    CHECK_EQ(tg->gt_items[tg->gt_ptr[1]], cr_dataset_find_item(d, "b3"));
    check_train_view(s);
    CHECK_EQ(cr_split_train(s)->n_inter, 5);   /* b2 of u1, b1 b2 of u2, m2 of u3, m3 of u4 */
    int64_t nc;
    cr_split_candidates(s, &nc);
    CHECK_EQ(nc, 7);
    cr_split_free(s);
    /* with a target only its events are considered: u1's books b1 b2 b1 -> b1@3 test, b2 valid, b1@1 hidden */
    p.target = "books";
    CHECK_OK(cr_split_make(&s, d, &p));
    check_roles(s, "3120" "0032" "00" "0");
    cr_split_candidates(s, &nc);
    CHECK_EQ(nc, 4);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(split_warm_by_time_synthetic) {
    cr_dataset *d = synth_dataset("warm", 11, 3);
    const cr_interactions *v = cr_dataset_inter(d);
    cr_split *s;
    cr_split_params p = params(CR_PROTO_WARM, "books");
    CHECK_OK(cr_split_make(&s, d, &p));
    const uint8_t *r = cr_split_roles(s);
    int32_t T = cr_split_target(s);
    for (int64_t u = 0; u < v->n_users; u++) {
        int64_t idx[4096], m = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            if (v->item_domain[v->user_items[e]] == T) idx[m++] = e;
            else CHECK_EQ(r[e], CR_ROLE_TRAIN);
            CHECK(m < 4096);
        }
        for (int64_t k = 0; k < m; k++) {
            uint8_t want = CR_ROLE_TRAIN;
            if (m >= 2 && k == m - 1) want = CR_ROLE_TEST;
            if (m >= 3 && k == m - 2) want = CR_ROLE_VALID;
            int32_t item = v->user_items[idx[k]];
            int32_t last = m >= 2 ? v->user_items[idx[m - 1]] : -1, prev = m >= 3 ? v->user_items[idx[m - 2]] : -1;
            /* the leakage rule only ever turns an event HIDDEN, and only for a repeated item */
            if (r[idx[k]] == CR_ROLE_HIDDEN) CHECK((want == CR_ROLE_TRAIN && (item == last || item == prev)) || (want == CR_ROLE_VALID && item == last));
            else CHECK_EQ(r[idx[k]], want);
        }
    }
    check_train_view(s);
    check_truth(s, CR_PART_VALID);
    check_truth(s, CR_PART_TEST);
    cr_split_free(s);
    cr_dataset_free(d);
}

TEST(split_warm_random_shares) {
    cr_dataset *d = synth_dataset("warm-random", 13, 3);
    const cr_interactions *v = cr_dataset_inter(d);
    cr_split *s;
    cr_split_params p = params(CR_PROTO_WARM, NULL);
    p.warm_random = 1;
    CHECK_OK(cr_split_make(&s, d, &p));
    const cr_split_stats *c = cr_split_stats_of(s);
    double n = (double)v->n_inter;
    /* hidden events were train (or valid) before the leakage rule; few repeats in synthetic data */
    CHECK_NEAR((double)(c->n_train + c->n_hidden) / n, 0.8, 0.03);
    CHECK_NEAR((double)c->n_valid / n, 0.1, 0.02);
    CHECK_NEAR((double)c->n_test / n, 0.1, 0.02);
    const uint8_t *r = cr_split_roles(s);
    for (int64_t u = 0; u < v->n_users; u++) {
        int kept = 0;
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) kept |= r[e] == CR_ROLE_TRAIN || r[e] == CR_ROLE_HIDDEN;
        CHECK_MSG(kept, "user %lld keeps no training event", (long long)u);
    }
    check_train_view(s);
    check_truth(s, CR_PART_TEST);
    /* the valid and test truths of a user are disjoint (test wins) */
    const cr_ground_truth *vg = cr_split_truth(s, CR_PART_VALID), *tg = cr_split_truth(s, CR_PART_TEST);
    for (int64_t j = 0, t = 0; j < vg->n_users; j++) {
        while (t < tg->n_users && tg->users[t] < vg->users[j]) t++;
        if (t == tg->n_users || tg->users[t] != vg->users[j]) continue;
        for (int64_t x = vg->gt_ptr[j]; x < vg->gt_ptr[j + 1]; x++)
            for (int64_t y = tg->gt_ptr[t]; y < tg->gt_ptr[t + 1]; y++) CHECK(vg->gt_items[x] != tg->gt_items[y]);
    }
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- new-domain ---- */

TEST(split_new_domain_exact) {
    cr_dataset *d = hand_dataset();
    cr_split *s;
    cr_split_params p = params(CR_PROTO_NEW_DOMAIN, "books");
    CHECK_OK(cr_split_make(&s, d, &p));
    /* zero-shot: every book event leaves training; u1, u2, u3 are evaluated (one of three for validation) */
    const uint8_t *r = cr_split_roles(s);
    const cr_interactions *v = cr_dataset_inter(d);
    for (int64_t e = 0; e < v->n_inter; e++) {
        int is_book = v->item_domain[v->user_items[e]] == cr_split_target(s);
        CHECK(is_book ? (r[e] == CR_ROLE_VALID || r[e] == CR_ROLE_TEST) : r[e] == CR_ROLE_TRAIN);
    }
    CHECK_EQ(cr_split_truth(s, CR_PART_VALID)->n_users + cr_split_truth(s, CR_PART_TEST)->n_users, 3);
    CHECK_EQ(cr_split_truth(s, CR_PART_VALID)->n_users, 0);   /* round(0.1 * 3) = 0 */
    cr_split_free(s);
    /* few-shot 1: b1's earliest is u1@1 (tie at t=1 with u2, event 0 first), b2's u1@2, b3's u2@3, b4's u3@6.
     * u1's b1@3 and u2's b3@4 repeat a kept pair: hidden. Only u2 keeps held-out events (b1, b2). */
    p.few_shot = 1;
    p.valid_share = 0.5;
    CHECK_OK(cr_split_make(&s, d, &p));
    check_roles(s, "0030" "2203" "00" "0");   /* one evaluated user: it stays test */
    const cr_ground_truth *g = cr_split_truth(s, CR_PART_TEST);
    CHECK_EQ(g->n_users, 1);
    CHECK_EQ(g->gt_ptr[1], 2);
    cr_split_free(s);
    /* few-shot that keeps everything leaves nothing to evaluate */
    p.few_shot = 5;
    CHECK_STATUS(cr_split_make(&s, d, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "no event of 'books' is held out");
    cr_dataset_free(d);
}

TEST(split_new_domain_few_shot_synthetic) {
    cr_dataset *d = synth_dataset("newdom", 17, 3);
    const cr_interactions *v = cr_dataset_inter(d);
    for (int64_t K = 0; K <= 3; K += 3) {
        cr_split *s;
        cr_split_params p = params(CR_PROTO_NEW_DOMAIN, "music");
        p.few_shot = K;
        p.valid_share = 0.25;
        CHECK_OK(cr_split_make(&s, d, &p));
        const uint8_t *r = cr_split_roles(s);
        int32_t T = cr_split_target(s);
        int64_t *kept = calloc((size_t)v->n_items, sizeof *kept), *total = calloc((size_t)v->n_items, sizeof *total);
        int64_t *latest_kept = calloc((size_t)v->n_items, sizeof *latest_kept);
        for (int64_t i = 0; i < v->n_items; i++) latest_kept[i] = INT64_MIN;
        for (int64_t e = 0; e < v->n_inter; e++) {
            int32_t i = v->user_items[e];
            if (v->item_domain[i] != T) {
                CHECK_EQ(r[e], CR_ROLE_TRAIN);
                continue;
            }
            total[i]++;
            if (r[e] == CR_ROLE_TRAIN) {
                kept[i]++;
                if (v->user_times[e] > latest_kept[i]) latest_kept[i] = v->user_times[e];
            }
        }
        /* exactly min(K, events) kept per item, and no held-out event of the item is earlier than a kept one */
        for (int64_t i = 0; i < v->n_items; i++) CHECK_EQ(kept[i], total[i] < K ? total[i] : K);
        for (int64_t e = 0; e < v->n_inter; e++) {
            int32_t i = v->user_items[e];
            if (v->item_domain[i] == T && r[e] != CR_ROLE_TRAIN) CHECK(v->user_times[e] >= latest_kept[i]);
        }
        int64_t nv = cr_split_truth(s, CR_PART_VALID)->n_users, nt = cr_split_truth(s, CR_PART_TEST)->n_users;
        CHECK_EQ(nv, (int64_t)floor(0.25 * (double)(nv + nt) + 0.5));
        check_train_view(s);
        check_truth(s, CR_PART_VALID);
        free(kept), free(total), free(latest_kept);
        cr_split_free(s);
    }
    cr_dataset_free(d);
}

/* ---- file ---- */

static void check_same_split(const cr_split *a, const cr_split *b) {
    const cr_interactions *v = cr_dataset_inter(cr_split_dataset(a));
    CHECK_EQ(cr_dataset_inter(cr_split_dataset(b))->n_inter, v->n_inter);
    CHECK(!memcmp(cr_split_roles(a), cr_split_roles(b), (size_t)v->n_inter));
    CHECK(!memcmp(cr_split_stats_of(a), cr_split_stats_of(b), sizeof(cr_split_stats)));
    CHECK_EQ(cr_split_target(a), cr_split_target(b));
    const cr_split_params *pa = cr_split_params_of(a), *pb = cr_split_params_of(b);
    CHECK(pa->protocol == pb->protocol && pa->seed == pb->seed && pa->sampled == pb->sampled && pa->beta == pb->beta);
    CHECK_STR(pa->target ? pa->target : "", pb->target ? pb->target : "");
    int64_t na, nb;
    const int32_t *ca = cr_split_candidates(a, &na), *cb = cr_split_candidates(b, &nb);
    CHECK(na == nb && !memcmp(ca, cb, (size_t)na * sizeof *ca));
    for (int part = CR_PART_VALID; part <= CR_PART_TEST; part++) {
        const cr_ground_truth *ga = cr_split_truth(a, (cr_part)part), *gb = cr_split_truth(b, (cr_part)part);
        CHECK_EQ(ga->n_users, gb->n_users);
        CHECK(!memcmp(ga->users, gb->users, (size_t)ga->n_users * sizeof(int32_t)));
        CHECK(!memcmp(ga->gt_ptr, gb->gt_ptr, (size_t)(ga->n_users + 1) * sizeof(int64_t)));
        CHECK(!memcmp(ga->gt_items, gb->gt_items, (size_t)ga->gt_ptr[ga->n_users] * sizeof(int32_t)));
        int64_t ka, kb;
        const int32_t *sa = cr_split_sampled(a, (cr_part)part, &ka), *sb = cr_split_sampled(b, (cr_part)part, &kb);
        CHECK_EQ(ka, kb);
        if (ka) CHECK(!memcmp(sa, sb, (size_t)(ga->gt_ptr[ga->n_users] * ka) * sizeof(int32_t)));
    }
    const cr_interactions *ta = cr_split_train(a), *tb = cr_split_train(b);
    CHECK_EQ(ta->n_inter, tb->n_inter);
    CHECK(!memcmp(ta->user_ptr, tb->user_ptr, (size_t)(ta->n_users + 1) * sizeof(int64_t)));
    CHECK(!memcmp(ta->user_items, tb->user_items, (size_t)ta->n_inter * sizeof(int32_t)));
    CHECK(!memcmp(ta->item_ptr, tb->item_ptr, (size_t)(ta->n_items + 1) * sizeof(int64_t)));
    CHECK(!memcmp(ta->item_users, tb->item_users, (size_t)ta->n_inter * sizeof(int32_t)));
}

TEST(split_save_load_roundtrip) {
    cr_dataset *d = synth_dataset("roundtrip", 19, 3);
    cr_split_params ps[3] = {params(CR_PROTO_COLD_USER, "music"), params(CR_PROTO_WARM, NULL), params(CR_PROTO_NEW_DOMAIN, "books")};
    ps[0].sampled = 15, ps[1].warm_random = 1, ps[2].few_shot = 2, ps[2].sampled = 7;
    for (int k = 0; k < 3; k++) {
        cr_split *s, *t;
        CHECK_OK(cr_split_make(&s, d, &ps[k]));
        const char *path = cr_test_path("roundtrip/s.crs");
        CHECK_OK(cr_split_save(s, path));
        CHECK_OK(cr_split_load(&t, path));
        check_same_split(s, t);
        CHECK(cr_split_dataset(t) != d);   /* the loaded split loaded (and owns) its own dataset */
        cr_split_free(t);
        cr_split_free(s);
    }
    cr_dataset_free(d);
}

TEST(split_load_finds_and_checks_its_dataset) {
    cr_dataset *d = synth_dataset("moved-a", 23, 2);
    cr_split *s, *t;
    cr_split_params p = params(CR_PROTO_COLD_USER, "books");
    CHECK_OK(cr_split_make(&s, d, &p));
    char split_a[600], dir_a[512], dir_b[512], split_b[600];
    snprintf(dir_a, sizeof dir_a, "%s", cr_test_path("moved-a"));
    snprintf(dir_b, sizeof dir_b, "%s", cr_test_path("moved-b"));
    snprintf(split_a, sizeof split_a, "%s/s.crs", dir_a);
    snprintf(split_b, sizeof split_b, "%s/s.crs", dir_b);
    CHECK_OK(cr_split_save(s, split_a));
    cr_split_free(s);
    cr_dataset_free(d);
    /* the folder moves: the dataset is found by its basename beside the split */
    CHECK(rename(dir_a, dir_b) == 0);
    CHECK_OK(cr_split_load(&t, split_b));
    CHECK_CONTAINS(cr_dataset_path(cr_split_dataset(t)), "moved-b/data.crd");
    cr_split_free(t);
    /* another dataset under the same name: refused */
    cr_dataset *other = synth_dataset("moved-other", 24, 2);
    cr_dataset_free(other);
    char from[600], to[600];
    snprintf(from, sizeof from, "%s/data.crd", cr_test_path("moved-other"));
    snprintf(to, sizeof to, "%s/data.crd", dir_b);
    CHECK(rename(from, to) == 0);
    CHECK_STATUS(cr_split_load(&t, split_b), CR_ERR_FORMAT);
    CHECK(t == NULL);
    CHECK_CONTAINS(cr_errmsg(), "s.crs: made from a different dataset (checksum ");
    /* no dataset at all */
    remove(to);
    CHECK_STATUS(cr_split_load(&t, split_b), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "cannot load its dataset");
    CHECK_CONTAINS(cr_errhint(), "next to the split file");
}

/* Rewrites a .crs with one thing changed: 0 roles[0] = 7, 1 a sampled negative that is the user's own item,
 * 2 n_inter off by one, 3 an unknown protocol. */
static void rewrite_crs(const char *src, const char *dst, int victim, const cr_split *s) {
    cr_file *f;
    CHECK_OK(cr_file_open(&f, src, "CRS", CR_CRS_VERSION));
    cr_filew *w;
    CHECK_OK(cr_filew_new(&w, "CRS", CR_CRS_VERSION));
    for (int64_t k = 0; k < cr_file_n_meta(f); k++) {
        const cr_meta *m = cr_file_meta_at(f, k);
        if (m->type == CR_META_I64) CHECK_OK(cr_filew_meta_i64(w, m->key, m->i64 + (victim == 2 && !strcmp(m->key, "n_inter"))));
        else if (m->type == CR_META_F64) CHECK_OK(cr_filew_meta_f64(w, m->key, m->f64));
        else CHECK_OK(cr_filew_meta_str(w, m->key, victim == 3 && !strcmp(m->key, "protocol") ? "lukewarm" : m->str));
    }
    uint8_t *roles = NULL;
    int32_t *neg = NULL;
    for (int64_t k = 0; k < cr_file_n_arrays(f); k++) {
        const cr_array *a = cr_file_array_at(f, k);
        const void *data = a->data;
        if (victim == 0 && !strcmp(a->name, "roles")) {
            roles = malloc((size_t)a->nbytes);
            memcpy(roles, a->data, (size_t)a->nbytes);
            roles[0] = 7;
            data = roles;
        } else if (victim == 1 && !strcmp(a->name, "sampled.test")) {
            neg = malloc((size_t)a->nbytes);
            memcpy(neg, a->data, (size_t)a->nbytes);
            const cr_ground_truth *g = cr_split_truth(s, CR_PART_TEST);
            neg[0] = g->gt_items[0];   /* the first pair's own positive */
            data = neg;
        }
        CHECK_OK(cr_filew_array(w, a->name, a->dtype, data, a->count));
    }
    CHECK_OK(cr_filew_commit(w, dst));
    cr_filew_free(w);
    cr_file_close(f);
    free(roles), free(neg);
}

TEST(split_load_validates_content) {
    cr_dataset *d = synth_dataset("corrupt", 29, 3);
    cr_split_params p = params(CR_PROTO_COLD_USER, "music");
    p.sampled = 5;
    cr_split *s, *t = NULL;
    CHECK_OK(cr_split_make(&s, d, &p));
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s", cr_test_path("corrupt/good.crs"));
    snprintf(bad, sizeof bad, "%s", cr_test_path("corrupt/bad.crs"));
    CHECK_OK(cr_split_save(s, good));
    const char *want[4] = {"bad.crs: roles[0] = 7 is not a role", "bad.crs: sampled.test[0] = ", "bad.crs: made for ",
                           "bad.crs: unknown protocol 'lukewarm'"};
    for (int victim = 0; victim < 4; victim++) {
        rewrite_crs(good, bad, victim, s);
        CHECK_STATUS(cr_split_load(&t, bad), CR_ERR_FORMAT);
        CHECK(t == NULL);
        CHECK_CONTAINS(cr_errmsg(), want[victim]);
    }
    CHECK_CONTAINS(cr_errmsg(), "lukewarm");
    rewrite_crs(good, bad, 1, s);
    CHECK_STATUS(cr_split_load(&t, bad), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "is an item of the user");
    /* not a split at all */
    CHECK_STATUS(cr_split_load(&t, cr_test_path("corrupt/data.crd")), CR_ERR_FORMAT);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- export ---- */

static int64_t count_lines(const char *path) {
    char *text = cr_test_read(path, NULL);
    CHECK_MSG(text != NULL, "%s missing", path);
    int64_t n = 0;
    for (const char *c = text; *c; c++) n += *c == '\n';
    free(text);
    return n;
}

TEST(split_export_files_add_up) {
    cr_dataset *d = hand_dataset();
    cr_split *s;
    cr_split_params p = params(CR_PROTO_WARM, NULL);
    CHECK_OK(cr_split_make(&s, d, &p));
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", cr_test_path("export/deeper"));
    CHECK_OK(cr_split_export(s, dir));
    const cr_split_stats *c = cr_split_stats_of(s);
    int64_t want[3] = {c->n_train, c->n_valid, c->n_test};
    const char *names[3] = {"train.tsv", "valid.tsv", "test.tsv"};
    int64_t sum = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        int64_t n = count_lines(path) - 1;
        CHECK_EQ(n, want[k]);
        sum += n;
    }
    CHECK_EQ(sum + c->n_hidden, cr_dataset_inter(d)->n_inter);
    snprintf(path, sizeof path, "%s/test.tsv", dir);
    char *text = cr_test_read(path, NULL);
    CHECK_STR(text, "user\titem\nu1\tm1\nu2\tb3\nu3\tb4\n");
    free(text);
    snprintf(path, sizeof path, "%s/train.tsv.tmp", dir);
    CHECK(!cr_test_file_exists(path));
    /* a file where the folder should be */
    CHECK_STATUS(cr_split_export(s, cr_test_path("hand.crd")), CR_ERR_IO);
    cr_split_free(s);
    cr_dataset_free(d);
}

/* ---- fault injection ---- */

TEST(split_alloc_failures_are_clean) {
    cr_dataset *d = hand_dataset();
    const char *uf = cr_test_write("users-fault.tsv", "user\tsplit\nu1\ttest\nu3\tvalid\n", -1);
    char ufp[512];
    snprintf(ufp, sizeof ufp, "%s", uf);
    cr_split_params ps[3] = {params(CR_PROTO_COLD_USER, "music"), params(CR_PROTO_WARM, NULL), params(CR_PROTO_NEW_DOMAIN, "books")};
    ps[0].users_file = ufp, ps[0].sampled = 3, ps[1].warm_random = 1, ps[1].sampled = 2, ps[2].few_shot = 1;
    const char *path = cr_test_path("fault.crs");
    for (int k = 0; k < 3; k++) {
        int64_t n;
        for (n = 1; n < 100000; n++) {
            remove(path);
            cr_alloc_fail_nth(n);
            cr_split *s = NULL, *t = NULL;
            cr_status st = cr_split_make(&s, d, &ps[k]);
            if (st == CR_OK) st = cr_split_save(s, path);
            if (st == CR_OK) st = cr_split_load(&t, path);
            cr_split_free(s);
            cr_split_free(t);
            int hit = cr_alloc_fault_hit();
            cr_alloc_fail_nth(0);
            if (!hit) {
                CHECK_OK(st);
                break;
            }
            CHECK_MSG(st == CR_ERR_NOMEM || st == CR_OK, "protocol %d, failing allocation %lld gave %s: %s", k, (long long)n,
                      cr_status_str(st), cr_errmsg());
        }
        CHECK(n > 10);
    }
    cr_dataset_free(d);
}

/* ---- CLI ---- */

TEST(split_cli) {
    cr_dataset *d = hand_dataset();
    cr_dataset_free(d);
    char crd[512], crs[512], dir[512];
    snprintf(crd, sizeof crd, "%s", cr_test_path("hand.crd"));
    snprintf(crs, sizeof crs, "%s", cr_test_path("cli.crs"));
    snprintf(dir, sizeof dir, "%s", cr_test_path("cli-export"));
    struct { const char *args; const char *want; } usage[] = {
        {"-o '%s'", "give one dataset file"},
        {"'%s' -o x.crs", "give --protocol cold-user, warm or new-domain"},
        {"'%s' --protocol cold -o x.crs", "unknown protocol 'cold' (did you mean cold-user?)"},
        {"'%s' --protocol cold-user -o x.crs", "cold-user needs a target domain"},
        {"'%s' --protocol cold-user --target music --beta 1.5 -o x.crs", "beta must be in (0, 1)"},
        {"'%s' --protocol warm --users-file u.tsv -o x.crs", "a users file applies to cold-user only"},
        {"'%s' --protocol warm --by chance -o x.crs", "--by must be time or random"},
        {"'%s' --protocol cold-user --target music --by random -o x.crs", "random assignment applies to warm only"},
        {"'%s' --protocol warm", "no output file"},
    };
    char *text;
    for (size_t k = 0; k < sizeof usage / sizeof usage[0]; k++) {
        char args[1024];
        snprintf(args, sizeof args, usage[k].args, crd);
        int rc = cr_test_cli(&text, "split %s", args);
        CHECK_MSG(rc == 2, "split %s: exit code %d, output: %s", args, rc, text);
        CHECK_CONTAINS(text, usage[k].want);
        free(text);
    }
    int rc = cr_test_cli(&text, "split '%s' --protocol cold-user --target musik -o '%s'", crd, crs);
    CHECK_MSG(rc == 1, "exit code %d, output: %s", rc, text);
    CHECK_CONTAINS(text, "crossrec: error: no domain 'musik' in ");
    CHECK_CONTAINS(text, "hint: did you mean 'music'?");
    CHECK(!cr_test_file_exists(crs));
    free(text);
    rc = cr_test_cli(&text, "split '%s' --protocol warm --sampled 2 -o '%s' --export '%s'", crd, crs, dir);
    CHECK_MSG(rc == 0, "exit code %d, output: %s", rc, text);
    CHECK_CONTAINS(text, "split warm, seed 42");
    CHECK_CONTAINS(text, "events      5 train, 4 held out (1 valid, 3 test), 2 hidden");
    CHECK_CONTAINS(text, "test        3 users, 3 (user, item) pairs");
    CHECK_CONTAINS(text, "candidates  7 items (all domains)");
    CHECK_CONTAINS(text, "sampled     2 negatives per held-out pair");
    free(text);
    cr_split *s;
    CHECK_OK(cr_split_load(&s, crs));
    CHECK_EQ(cr_split_stats_of(s)->n_hidden, 2);
    cr_split_free(s);
    char path[600];
    snprintf(path, sizeof path, "%s/valid.tsv", dir);
    CHECK_EQ(count_lines(path), 2);
    const char *uf = cr_test_write("cli-users.tsv", "user\tsplit\nu1\ttest\nu2\tvalid\n", -1);
    rc = cr_test_cli(&text, "split '%s' --protocol cold-user --target music --users-file '%s' -o '%s'", crd, uf, crs);
    CHECK_MSG(rc == 0, "exit code %d, output: %s", rc, text);
    CHECK_CONTAINS(text, "valid       0 users, 0 (user, item) pairs; 1 more held-out users have no music events");
    CHECK_CONTAINS(text, "candidates  3 items of music");
    free(text);
    rc = cr_test_cli(&text, "split --help");
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(text, "(default: 0.2)");
    free(text);
}

/* ---- the upstream partition of amazon-art-office ---- */

TEST(split_shared_amazon_cold_user_office) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char pi[512], pt[512], pu[512], crd[512];
    snprintf(pi, sizeof pi, "%s/amazon-art-office/interactions.tsv", root);
    snprintf(pt, sizeof pt, "%s/amazon-art-office/items.tsv", root);
    snprintf(pu, sizeof pu, "%s/amazon-art-office/users.tsv", root);
    snprintf(crd, sizeof crd, "%s", cr_test_path("amazon.crd"));
    cr_dataset *d = import_to_crd(pi, pt, crd);
    cr_split_params p = params(CR_PROTO_COLD_USER, "office");
    p.users_file = pu;
    cr_split *s;
    CHECK_OK(cr_split_make(&s, d, &p));
    const cr_split_stats *c = cr_split_stats_of(s);
    CHECK_EQ(c->held_test_users, 1000);
    CHECK_EQ(c->held_valid_users, 577);
    CHECK_EQ(cr_split_truth(s, CR_PART_TEST)->n_users, 1000 - c->test_no_truth);
    printf("     amazon-art-office cold-user office: test %lld users held out, %lld with office ground truth (%lld pairs); "
           "valid %lld held out, %lld with ground truth (%lld pairs); %lld overlapping users; %lld office candidates\n",
           (long long)c->held_test_users, (long long)(c->held_test_users - c->test_no_truth), (long long)c->test_pairs,
           (long long)c->held_valid_users, (long long)(c->held_valid_users - c->valid_no_truth), (long long)c->valid_pairs,
           (long long)c->eligible_users, (long long)c->n_candidates);
    check_train_view(s);
    const char *path = cr_test_path("amazon.crs");
    CHECK_OK(cr_split_save(s, path));
    cr_split *t;
    CHECK_OK(cr_split_load(&t, path));
    check_same_split(s, t);
    cr_split_free(t);
    cr_split_free(s);
    cr_dataset_free(d);
}

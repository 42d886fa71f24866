/* test_dataset.c — import (ordering, duplicates, unknown items, defaults), .crd save/load and validation,
 * statistics pinned to hand-computed values, fault injection, and the real datasets when present. */
#include "test.h"

#include "crossrec/data.h"
#include "crossrec/io.h"

#include <stdlib.h>
#include <zlib.h>

/* Two domains. u1 has events out of time order and a tie; i4 is never interacted; u2 repeats i1. */
static const char *ITEMS = "item\tdomain\ttitle\ttext\n"
                           "i1\tbooks\tA Book\tabout things\n"
                           "i2\tbooks\tAnother\t\n"
                           "i3\tmusic\tA Song\tla la\n"
                           "i4\tmusic\tNever Played\t\n";
static const char *INTER = "user\titem\ttimestamp\tvalue\n"
                           "u1\ti3\t30\t5\n"
                           "u1\ti1\t10\t4\n"
                           "u2\ti1\t5\t1\n"
                           "u1\ti2\t30\t3\n"
                           "u2\ti1\t7\t2\n"
                           "u3\ti3\t1\t1\n";

static cr_dataset *import_strings(const char *inter, const char *items, cr_import_params *pp, cr_import_report *rep) {
    cr_import_params p = pp ? *pp : cr_import_default_params();
    p.interactions[0] = cr_test_write("inter.tsv", inter, -1);
    p.n_interactions = 1;
    if (items) {
        p.items[0] = cr_test_write("items.tsv", items, -1);
        p.n_items = 1;
    }
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, rep));
    return d;
}

static void check_small(const cr_dataset *d) {
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(v->n_users, 3);
    CHECK_EQ(v->n_items, 4);
    CHECK_EQ(v->n_domains, 2);
    CHECK_EQ(v->n_inter, 6);
    CHECK_STR(cr_dataset_user_id(d, 0), "u1");   /* users in order of first appearance */
    CHECK_STR(cr_dataset_item_id(d, 3), "i4");   /* items in catalogue order */
    CHECK_STR(cr_dataset_domain_name(d, v->item_domain[2]), "music");
    CHECK_STR(cr_dataset_item_title(d, 0), "A Book");
    CHECK_STR(cr_dataset_item_text(d, 1), "");
    CHECK_EQ(cr_dataset_find_item(d, "i3"), 2);
    CHECK_EQ(cr_dataset_find_user(d, "u3"), 2);
    CHECK_EQ(cr_dataset_find_user(d, "nobody"), -1);
    CHECK_EQ(cr_dataset_find_domain(d, "books"), 0);
    /* u1: i1@10, then the tie at 30 in input order: i3 (line 2) before i2 (line 5) */
    CHECK_EQ(v->user_ptr[1], 3);
    CHECK_EQ(v->user_items[0], 0); CHECK_EQ(v->user_items[1], 2); CHECK_EQ(v->user_items[2], 1);
    CHECK_EQ(v->user_times[0], 10); CHECK_EQ(v->user_times[2], 30);
    CHECK_NEAR(v->user_values[1], 5.0, 0);
    CHECK_EQ(v->user_ptr[2], 5);   /* u2 keeps its repeated i1 */
    CHECK_EQ(v->user_items[3], 0); CHECK_EQ(v->user_items[4], 0);
    CHECK_NEAR(v->user_values[3], 1.0, 0); CHECK_NEAR(v->user_values[4], 2.0, 0);
    /* by item: i1 has u1, u2, u2; i4 none */
    CHECK_EQ(v->item_ptr[1] - v->item_ptr[0], 3);
    CHECK_EQ(v->item_users[0], 0); CHECK_EQ(v->item_users[1], 1); CHECK_EQ(v->item_users[2], 1);
    CHECK_EQ(v->item_ptr[4] - v->item_ptr[3], 0);
    CHECK(cr_dataset_has_time(d) && cr_dataset_has_value(d));
}

TEST(dataset_import_orders_by_user_and_time) {
    cr_import_report rep;
    cr_dataset *d = import_strings(INTER, ITEMS, NULL, &rep);
    check_small(d);
    CHECK_EQ(rep.lines, 4 + 6);
    CHECK_EQ(rep.duplicates, 1);
    cr_dataset_free(d);
}

TEST(dataset_save_load_roundtrip) {
    cr_dataset *d = import_strings(INTER, ITEMS, NULL, NULL);
    const char *path = cr_test_path("small.crd");
    CHECK_OK(cr_dataset_save(d, path));
    cr_dataset_free(d);
    cr_dataset *e = NULL;
    CHECK_OK(cr_dataset_load(&e, path));
    check_small(e);
    cr_dataset_free(e);
}

TEST(dataset_dedup_keeps_latest) {
    cr_import_params p = cr_import_default_params();
    p.dedup = 1;
    cr_import_report rep;
    cr_dataset *d = import_strings(INTER, ITEMS, &p, &rep);
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(rep.merged, 1);
    CHECK_EQ(v->n_inter, 5);
    CHECK_EQ(v->user_ptr[2] - v->user_ptr[1], 1);
    CHECK_EQ(v->user_times[v->user_ptr[1]], 7);
    CHECK_NEAR(v->user_values[v->user_ptr[1]], 2.0, 0);
    CHECK_EQ(v->item_ptr[1] - v->item_ptr[0], 2);
    cr_dataset_free(d);
}

TEST(dataset_unknown_items) {
    const char *inter = "user\titem\ttimestamp\tvalue\nu1\ti1\t1\t1\nu1\tzz\t2\t1\n";
    cr_import_params p = cr_import_default_params();
    p.interactions[0] = cr_test_write("inter.tsv", inter, -1);
    p.n_interactions = 1;
    p.items[0] = cr_test_write("items.tsv", ITEMS, -1);
    p.n_items = 1;
    cr_dataset *d = NULL;
    CHECK_STATUS(cr_dataset_import(&d, &p, NULL), CR_ERR_PARSE);
    CHECK(d == NULL);
    CHECK_CONTAINS(cr_errmsg(), "inter.tsv:3:");
    CHECK_CONTAINS(cr_errmsg(), "item 'zz' is not in the catalogue");
    CHECK_CONTAINS(cr_errhint(), "--allow-unknown-items");
    p.allow_unknown_items = 1;
    cr_import_report rep;
    CHECK_OK(cr_dataset_import(&d, &p, &rep));
    CHECK_EQ(rep.unknown_items, 1);
    int32_t zz = cr_dataset_find_item(d, "zz");
    CHECK_EQ(zz, 4);
    CHECK_STR(cr_dataset_domain_name(d, cr_dataset_inter(d)->item_domain[zz]), "unknown");
    cr_dataset_free(d);
}

TEST(dataset_without_catalogue_time_or_value) {
    const char *inter = "user\titem\nb\tx\na\ty\nb\ty\n";
    cr_dataset *d = import_strings(inter, NULL, NULL, NULL);
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(v->n_domains, 1);
    CHECK_STR(cr_dataset_domain_name(d, 0), "all");
    CHECK(!cr_dataset_has_time(d) && !cr_dataset_has_value(d));
    CHECK_EQ(v->user_times[1], 2);   /* line order: b's events are lines 0 and 2 */
    CHECK_NEAR(v->user_values[0], 1.0, 0);
    cr_dataset_free(d);
}

TEST(dataset_several_logs_become_domains) {
    cr_import_params p = cr_import_default_params();
    p.interactions[0] = cr_test_write("arts.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\ta1\t5\t100.0\n", -1);
    p.interactions[1] = cr_test_write("office.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu1\to1\t3\t90\nu2\to2\t4\t95\n", -1);
    p.n_interactions = 2;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(v->n_domains, 2);
    CHECK_STR(cr_dataset_domain_name(d, v->item_domain[cr_dataset_find_item(d, "o2")]), "office");
    CHECK_EQ(v->user_items[0], cr_dataset_find_item(d, "o1"));   /* u1: o1@90 before a1@100 */
    CHECK_NEAR(v->user_values[1], 5.0, 0);
    cr_dataset_free(d);
}

TEST(dataset_bad_catalogue_and_skip) {
    cr_import_params p = cr_import_default_params();
    p.interactions[0] = cr_test_write("inter.tsv", "user\titem\ttimestamp\tvalue\nu1\ti1\t1\t1\nu1\ti2\tabc\t1\nu2\ti2\t3\n", -1);
    p.n_interactions = 1;
    p.items[0] = cr_test_write("items.tsv", "item\tdomain\ttitle\ttext\ni1\tb\tt\tx\ni1\tb\tt\tx\ni2\tb\tt\tx\n", -1);
    p.n_items = 1;
    cr_dataset *d = NULL;
    CHECK_STATUS(cr_dataset_import(&d, &p, NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "items.tsv:3: duplicate item id 'i1'");
    p.skip_bad_lines = 1;
    cr_import_report rep;
    CHECK_OK(cr_dataset_import(&d, &p, &rep));
    CHECK_EQ(rep.skipped, 3);   /* the duplicate item, the bad timestamp, the short line */
    CHECK_CONTAINS(rep.first_skipped, "items.tsv:3");
    CHECK_EQ(cr_dataset_inter(d)->n_inter, 1);
    CHECK_EQ(cr_dataset_inter(d)->n_users, 1);   /* u2 came only from a bad line */
    cr_dataset_free(d);
    p.skip_bad_lines = 0;
    p.items[0] = cr_test_write("items.tsv", ITEMS, -1);
    CHECK_STATUS(cr_dataset_import(&d, &p, NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "inter.tsv:3:");
    CHECK_CONTAINS(cr_errmsg(), "field 'timestamp': expected an integer, found 'abc'");
}

TEST(dataset_header_only_is_an_error) {
    cr_import_params p = cr_import_default_params();
    p.interactions[0] = cr_test_write("inter.tsv", "user\titem\ttimestamp\tvalue\n", -1);
    p.n_interactions = 1;
    cr_dataset *d = NULL;
    CHECK_STATUS(cr_dataset_import(&d, &p, NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "no interactions");
}

/* A file with a valid checksum but inconsistent content must still be refused. */
TEST(dataset_load_validates_content) {
    cr_dataset *d = import_strings(INTER, ITEMS, NULL, NULL);
    const char *good = cr_test_path("good.crd");
    CHECK_OK(cr_dataset_save(d, good));
    cr_dataset_free(d);
    cr_file *f;
    CHECK_OK(cr_file_open(&f, good, "CRD", CR_CRD_VERSION));
    const char *bad = cr_test_path("bad.crd");
    for (int victim = 0; victim < 3; victim++) {
        cr_filew *w;
        CHECK_OK(cr_filew_new(&w, "CRD", CR_CRD_VERSION));
        for (int64_t k = 0; k < cr_file_n_meta(f); k++) {
            const cr_meta *m = cr_file_meta_at(f, k);
            if (m->type == CR_META_I64) CHECK_OK(cr_filew_meta_i64(w, m->key, m->i64));
            else CHECK_OK(cr_filew_meta_str(w, m->key, m->str));
        }
        int32_t items_bad[6], users_bad[6];
        int64_t ptr_bad[4];
        for (int64_t k = 0; k < cr_file_n_arrays(f); k++) {
            const cr_array *a = cr_file_array_at(f, k);
            const void *data = a->data;
            if (victim == 0 && !strcmp(a->name, "user_items")) {
                memcpy(items_bad, a->data, sizeof items_bad);
                items_bad[4] = 99;   /* out of range */
                data = items_bad;
            } else if (victim == 1 && !strcmp(a->name, "item_users")) {
                memcpy(users_bad, a->data, sizeof users_bad);
                users_bad[0] = 2;    /* in range, but disagrees with user_items */
                data = users_bad;
            } else if (victim == 2 && !strcmp(a->name, "user_ptr")) {
                memcpy(ptr_bad, a->data, sizeof ptr_bad);
                ptr_bad[1] = 6, ptr_bad[2] = 5;   /* decreasing */
                data = ptr_bad;
            }
            CHECK_OK(cr_filew_array(w, a->name, a->dtype, data, a->count));
        }
        CHECK_OK(cr_filew_commit(w, bad));
        cr_filew_free(w);
        CHECK_STATUS(cr_dataset_load(&d, bad), CR_ERR_FORMAT);
        CHECK_CONTAINS(cr_errmsg(), "bad.crd");
    }
    cr_file_close(f);
}

TEST(dataset_alloc_failures_are_clean) {
    cr_import_params p = cr_import_default_params();
    p.interactions[0] = cr_test_write("inter.tsv", INTER, -1);
    p.n_interactions = 1;
    p.items[0] = cr_test_write("items.tsv", ITEMS, -1);
    p.n_items = 1;
    const char *path = cr_test_path("fault.crd");
    int64_t n;
    for (n = 1; n < 100000; n++) {
        remove(path);
        cr_alloc_fail_nth(n);
        cr_dataset *d = NULL;
        cr_status st = cr_dataset_import(&d, &p, NULL);
        if (st == CR_OK) st = cr_dataset_save(d, path);
        cr_dataset *e = NULL;
        if (st == CR_OK) st = cr_dataset_load(&e, path);
        cr_dataset_free(d);
        cr_dataset_free(e);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        /* a failed optional allocation (shrinking a buffer) may be absorbed; anything else must be NOMEM */
        CHECK_MSG(st == CR_ERR_NOMEM || st == CR_OK, "failing allocation %lld gave %s: %s", (long long)n, cr_status_str(st),
                  cr_errmsg());
    }
    CHECK(n > 10);
}

TEST(stats_hand_computed) {
    cr_dataset *d = import_strings(INTER, ITEMS, NULL, NULL);
    cr_stats s;
    CHECK_OK(cr_dataset_stats(d, &s));
    CHECK_EQ(s.n_domains, 2);
    /* books: u1 (i1, i2), u2 (i1, i1) -> 2 users, 2 items, 4 events; music: u1 (i3), u3 (i3), i4 never */
    CHECK_EQ(s.dom[0].users, 2); CHECK_EQ(s.dom[0].items, 2); CHECK_EQ(s.dom[0].inter, 4); CHECK_EQ(s.dom[0].items_never, 0);
    CHECK_EQ(s.dom[1].users, 2); CHECK_EQ(s.dom[1].items, 2); CHECK_EQ(s.dom[1].inter, 2); CHECK_EQ(s.dom[1].items_never, 1);
    CHECK_NEAR(s.dom[0].density, 4.0 / 4.0, 1e-12);
    CHECK_NEAR(s.dom[1].density, 2.0 / 4.0, 1e-12);
    CHECK_EQ(s.overlap[0 * 2 + 1], 1); CHECK_EQ(s.overlap[1 * 2 + 0], 1);   /* only u1 is in both */
    CHECK_EQ(s.overlap[0], 2); CHECK_EQ(s.overlap[3], 2);
    CHECK_EQ(s.multi_domain_users, 1);
    CHECK_EQ(s.all.items_never, 1);
    /* events per user over all domains: u1 3, u2 2, u3 1 -> min 1, p50 2, max 3 */
    CHECK_EQ(s.all.hist_q[0], 1); CHECK_EQ(s.all.hist_q[2], 2); CHECK_EQ(s.all.hist_q[6], 3);
    CHECK_EQ(s.dom[0].hist_q[0], 2); CHECK_EQ(s.dom[0].hist_q[6], 2);
    FILE *out = fopen(cr_test_path("stats.json"), "w");
    CHECK_OK(cr_stats_json(d, &s, out));
    fclose(out);
    char *json = cr_test_read(cr_test_path("stats.json"), NULL);
    CHECK_CONTAINS(json, "\"multi_domain_users\": 1");
    CHECK_CONTAINS(json, "\"items_never_interacted\": 1");
    free(json);
    cr_stats_free(&s);
    cr_dataset_free(d);
}

/* The real datasets: counts from ../shared/data/README.md. */
static void import_shared(const char *name, int64_t inter, int64_t users, int64_t items, int64_t domains) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char pi[512], pt[512];
    snprintf(pi, sizeof pi, "%s/%s/interactions.tsv", root, name);
    snprintf(pt, sizeof pt, "%s/%s/items.tsv", root, name);
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = pi;
    p.items[p.n_items++] = pt;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(v->n_inter, inter);
    if (users >= 0) CHECK_EQ(v->n_users, users);
    if (items >= 0) CHECK_EQ(v->n_items, items);
    CHECK_EQ(v->n_domains, domains);
    const char *path = cr_test_path("shared.crd");
    CHECK_OK(cr_dataset_save(d, path));
    cr_dataset_free(d);
    CHECK_OK(cr_dataset_load(&d, path));
    CHECK_EQ(cr_dataset_inter(d)->n_inter, inter);
    cr_dataset_free(d);
}

TEST(dataset_shared_amazon_art_office) { import_shared("amazon-art-office", 208541, 9577, 38396, 2); }
TEST(dataset_shared_ciao) { import_shared("ciao", 284086, 7375, 105114, 28); }

/* Other formats and column names: a gzip'ed JSON Lines log with aliases, a CSV catalogue with quotes. */
TEST(dataset_import_jsonl_gz_and_csv) {
    const char *jsonl = "{\"user_id\": \"u1\", \"item_id\": 7, \"rating\": 4.5, \"ts\": 100}\n"
                        "{\"user_id\": \"u2\", \"item_id\": 8, \"rating\": 2, \"ts\": 50}\n"
                        "{\"user_id\": \"u1\", \"item_id\": 8, \"rating\": null, \"ts\": 20}\n";
    const char *gz = cr_test_path("log.jsonl.gz");
    gzFile g = gzopen(gz, "wb");
    gzwrite(g, jsonl, (unsigned)strlen(jsonl));
    gzclose(g);
    const char *csv = cr_test_write("cat.csv", "item_id;category;title;description\n7;\"desk; office\";\"Pen \"\"Pro\"\"\";x\n8;art;Brush;\"two\nlines\"\n", -1);
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = gz;
    p.items[p.n_items++] = csv;
    p.time_col = "ts";
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    const cr_interactions *v = cr_dataset_inter(d);
    CHECK_EQ(v->n_inter, 3);
    CHECK_EQ(v->n_domains, 2);
    /* u1: item 8 at ts 20 (rating null counts as absent: 1), then item 7 at ts 100 */
    CHECK_EQ(v->user_items[0], 1);
    CHECK_NEAR(v->user_values[0], 1.0, 0);
    CHECK_NEAR(v->user_values[1], 4.5, 0);
    CHECK_EQ(v->user_times[2], 50);
    CHECK_STR(cr_dataset_domain_name(d, v->item_domain[0]), "desk; office");
    CHECK_STR(cr_dataset_item_title(d, 0), "Pen \"Pro\"");
    CHECK_STR(cr_dataset_item_text(d, 1), "two\nlines");
    cr_dataset_free(d);
    /* a bad line in a JSON log is named by file and line (jansson gives no column for values) */
    const char *bad = cr_test_write("bad.jsonl", "{\"user_id\": \"u1\", \"item_id\": 7, \"ts\": \"soon\"}\n", -1);
    p.interactions[0] = bad;
    CHECK_STATUS(cr_dataset_import(&d, &p, NULL), CR_ERR_PARSE);
    CHECK_CONTAINS(cr_errmsg(), "bad.jsonl:1: field 'ts': expected an integer, found 'soon'");
}

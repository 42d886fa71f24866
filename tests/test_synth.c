/* test_synth.c — the synthetic data generator: file layout, determinism, coverage of users and domains,
 * popularity skew, topic signal in text and in cross-domain behaviour, parameter checks, I/O errors and
 * allocation failures, and the `crossrec synth` command.
 *
 * Files are read back with plain stdio (not the table reader), so these tests stand on their own. The hidden
 * topics come from src/data/synth_impl.h. */
#include "test.h"

#include "crossrec/data.h"
#include "data/synth_impl.h"

#include <stdlib.h>
#include <sys/stat.h>

/* ---- reading the files back ---- */

typedef struct {
    int64_t n;
    int32_t *user, *item;   /* (n) indices parsed from u000123 / i000456 */
    int64_t *time;          /* (n) */
} inter_rows;

typedef struct {
    int64_t n;
    char **domain, **title, **text;     /* (n) pointers into buf */
    char *buf;
} item_rows;

/* Splits a line in place on tabs; returns the number of fields (at most max). */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p; p++)
        if (*p == '\t') {
            *p = '\0';
            if (n < max) f[n++] = p + 1;
            else return max + 1;
        }
    return n;
}

static void read_inter(const char *dir, inter_rows *r) {
    char path[512];
    snprintf(path, sizeof path, "%s/interactions.tsv", dir);
    size_t len;
    char *buf = cr_test_read(path, &len);
    CHECK_MSG(buf, "%s missing", path);
    CHECK_MSG(!strncmp(buf, "user\titem\ttimestamp\tvalue\n", 26), "bad header in %s", path);
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    r->n = lines - 1;
    r->user = malloc((size_t)(r->n + 1) * sizeof *r->user);
    r->item = malloc((size_t)(r->n + 1) * sizeof *r->item);
    r->time = malloc((size_t)(r->n + 1) * sizeof *r->time);
    char *line = buf + 26;
    for (int64_t k = 0; k < r->n; k++) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        char *f[4];
        int nf = split_tabs(line, f, 4);
        CHECK_MSG(nf == 4, "interactions line %lld: %d fields", (long long)k + 2, nf);
        CHECK_MSG(f[0][0] == 'u' && strlen(f[0]) >= 7, "user id '%s'", f[0]);
        CHECK_MSG(f[1][0] == 'i' && strlen(f[1]) >= 7, "item id '%s'", f[1]);
        CHECK_STR(f[3], "1");
        r->user[k] = (int32_t)atol(f[0] + 1);
        r->item[k] = (int32_t)atol(f[1] + 1);
        r->time[k] = atoll(f[2]);
        line = nl + 1;
    }
    free(buf);
}

static void free_inter(inter_rows *r) { free(r->user), free(r->item), free(r->time); }

static void read_items(const char *dir, item_rows *r) {
    char path[512];
    snprintf(path, sizeof path, "%s/items.tsv", dir);
    size_t len;
    r->buf = cr_test_read(path, &len);
    CHECK_MSG(r->buf, "%s missing", path);
    CHECK_MSG(!strncmp(r->buf, "item\tdomain\ttitle\ttext\n", 23), "bad header in %s", path);
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += r->buf[i] == '\n';
    r->n = lines - 1;
    r->domain = malloc((size_t)(r->n + 1) * sizeof *r->domain);
    r->title = malloc((size_t)(r->n + 1) * sizeof *r->title);
    r->text = malloc((size_t)(r->n + 1) * sizeof *r->text);
    char *line = r->buf + 23;
    for (int64_t k = 0; k < r->n; k++) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        char *f[4];
        int nf = split_tabs(line, f, 4);
        CHECK_MSG(nf == 4, "items line %lld: %d fields", (long long)k + 2, nf);
        CHECK_EQ(atol(f[0] + 1), k);       /* catalogue in id order */
        r->domain[k] = f[1], r->title[k] = f[2], r->text[k] = f[3];
        line = nl + 1;
    }
}

static void free_items(item_rows *r) { free(r->domain), free(r->title), free(r->text), free(r->buf); }

static int count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        if (*s == ' ') in = 0;
        else if (!in) in = 1, n++;
    }
    return n;
}

static const char *synth_dir(const char *name, const cr_synth_params *p) {
    const char *dir = cr_test_path(name);
    CHECK_OK(cr_synth_write(dir, p));
    return dir;
}

static int files_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = cr_test_read(a, &na), *y = cr_test_read(b, &nb);
    int eq = x && y && na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return eq;
}

/* ---- layout ---- */

TEST(synth_default_files) {
    cr_synth_params p = cr_synth_default_params();
    CHECK_EQ(p.n_users, 3000);
    CHECK_EQ(p.n_domains, 4);
    CHECK_EQ(p.n_topics, 16);
    CHECK(cr_synth_check_params(&p) == NULL);
    const char *dir = synth_dir("synth-default/nested", &p);   /* parents are created */
    inter_rows in;
    item_rows it;
    read_inter(dir, &in);
    read_items(dir, &it);
    CHECK_EQ(in.n, p.n_inter);
    CHECK_EQ(it.n, p.n_items);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/items.tsv.tmp", dir);
    CHECK(!cr_test_file_exists(tmp));
    snprintf(tmp, sizeof tmp, "%s/interactions.tsv.tmp", dir);
    CHECK(!cr_test_file_exists(tmp));
    for (int64_t k = 0; k < in.n; k++) {
        CHECK(in.user[k] >= 0 && in.user[k] < p.n_users);
        CHECK(in.item[k] >= 0 && in.item[k] < p.n_items);
        CHECK(in.time[k] >= 1577836800 && in.time[k] < 1893456000);    /* 2020 .. 2030 */
    }
    /* domains: the first names of the list, every one used; titles 3..8 words, texts 10..25 + "domain: x" */
    const char *names[] = {"books", "music", "movies", "office"};
    int64_t per_dom[4] = {0};
    for (int64_t i = 0; i < it.n; i++) {
        int d = -1;
        for (int k = 0; k < 4; k++)
            if (!strcmp(it.domain[i], names[k])) d = k;
        CHECK_MSG(d >= 0, "unexpected domain '%s'", it.domain[i]);
        per_dom[d]++;
        int tw = count_words(it.title[i]), xw = count_words(it.text[i]);
        CHECK_MSG(tw >= 3 && tw <= 8, "title '%s'", it.title[i]);
        CHECK_MSG(xw >= 12 && xw <= 27, "text '%s'", it.text[i]);
        char tail[64];
        snprintf(tail, sizeof tail, " domain: %s", it.domain[i]);
        CHECK(strlen(it.text[i]) > strlen(tail) && !strcmp(it.text[i] + strlen(it.text[i]) - strlen(tail), tail));
    }
    /* rich and thin domains, every domain present */
    CHECK(per_dom[0] > per_dom[1] && per_dom[1] > per_dom[2] && per_dom[2] > per_dom[3] && per_dom[3] > 0);
    free_inter(&in);
    free_items(&it);
}

TEST(synth_deterministic) {
    cr_synth_params p = cr_synth_default_params();
    p.n_users = 500, p.n_items = 300, p.n_inter = 8000;
    const char *a = synth_dir("synth-det-a", &p);
    const char *b = synth_dir("synth-det-b", &p);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/interactions.tsv", a), snprintf(pb, sizeof pb, "%s/interactions.tsv", b);
    CHECK(files_equal(pa, pb));
    snprintf(pa, sizeof pa, "%s/items.tsv", a), snprintf(pb, sizeof pb, "%s/items.tsv", b);
    CHECK(files_equal(pa, pb));
    p.seed = 43;
    const char *c = synth_dir("synth-det-c", &p);
    snprintf(pb, sizeof pb, "%s/items.tsv", c);
    CHECK(!files_equal(pa, pb));
    snprintf(pa, sizeof pa, "%s/interactions.tsv", a), snprintf(pb, sizeof pb, "%s/interactions.tsv", c);
    CHECK(!files_equal(pa, pb));
    /* rewriting into an existing directory replaces the files */
    CHECK_OK(cr_synth_write(a, &p));
    CHECK(files_equal(pa, pb));
}

TEST(synth_every_user_time_order) {
    cr_synth_params p = cr_synth_default_params();
    const char *dir = synth_dir("synth-users", &p);
    inter_rows in;
    read_inter(dir, &in);
    int64_t *seen = calloc((size_t)p.n_users, sizeof *seen);
    int64_t *last = calloc((size_t)p.n_users, sizeof *last);
    int64_t dup = 0;
    for (int64_t k = 0; k < in.n; k++) {
        int32_t u = in.user[k];
        if (seen[u]) CHECK_MSG(in.time[k] > last[u], "user %d: time %lld after %lld", u, (long long)in.time[k], (long long)last[u]);
        seen[u]++;
        last[u] = in.time[k];
        if (k && in.user[k - 1] == u && in.item[k - 1] == in.item[k]) dup++;
    }
    for (int64_t u = 0; u < p.n_users; u++) CHECK_MSG(seen[u] > 0, "user %lld has no interaction", (long long)u);
    /* activity is skewed: the busiest user has many times the median */
    int64_t max = 0;
    for (int64_t u = 0; u < p.n_users; u++) max = seen[u] > max ? seen[u] : max;
    CHECK(max > 5 * (p.n_inter / p.n_users));
    CHECK(dup < in.n / 100);
    free(seen), free(last);
    free_inter(&in);
}

/* Share of users with events in two or more domains. */
static double multi_share(const cr_synth_params *p, const char *name) {
    const char *dir = synth_dir(name, p);
    inter_rows in;
    int32_t *dom = malloc((size_t)p->n_items * sizeof *dom);
    CHECK_OK(cr_synth_item_latents(p, dom, NULL, NULL));
    read_inter(dir, &in);
    int32_t *first = malloc((size_t)p->n_users * sizeof *first);
    char *multi = calloc((size_t)p->n_users, 1);
    for (int64_t u = 0; u < p->n_users; u++) first[u] = -1;
    for (int64_t k = 0; k < in.n; k++) {
        int32_t u = in.user[k], d = dom[in.item[k]];
        if (first[u] < 0) first[u] = d;
        else if (first[u] != d) multi[u] = 1;
    }
    int64_t n = 0;
    for (int64_t u = 0; u < p->n_users; u++) n += multi[u];
    free(dom), free(first), free(multi);
    free_inter(&in);
    return (double)n / (double)p->n_users;
}

TEST(synth_multi_domain_share) {
    cr_synth_params p = cr_synth_default_params();
    CHECK_NEAR(multi_share(&p, "synth-multi-a"), 0.6, 0.04);
    p.multi_domain_share = 0.2;
    CHECK_NEAR(multi_share(&p, "synth-multi-b"), 0.2, 0.04);
    /* two events per user on average: the share holds even for users with very few events */
    p.multi_domain_share = 0.6, p.n_inter = 2 * p.n_users;
    CHECK_NEAR(multi_share(&p, "synth-multi-f"), 0.6, 0.04);
    p.n_inter = cr_synth_default_params().n_inter;
    p.multi_domain_share = 0;
    CHECK_EQ(multi_share(&p, "synth-multi-c"), 0);
    p.multi_domain_share = 1, p.n_domains = 1;
    CHECK_EQ(multi_share(&p, "synth-multi-d"), 0);
    /* the file's domains agree with the latents: item domain names follow the domain index */
    p = cr_synth_default_params();
    p.n_domains = 23, p.n_items = 500, p.n_users = 100, p.n_inter = 1000;
    const char *dir = synth_dir("synth-multi-e", &p);
    item_rows it;
    read_items(dir, &it);
    int32_t *dom = malloc((size_t)p.n_items * sizeof *dom);
    CHECK_OK(cr_synth_item_latents(&p, dom, NULL, NULL));
    int saw_books2 = 0;
    for (int64_t i = 0; i < it.n; i++) {
        char name[32];
        cr_synth_domain_name(dom[i], name, sizeof name);
        CHECK_STR(it.domain[i], name);
        saw_books2 |= !strcmp(name, "books2");
    }
    CHECK(saw_books2);
    free(dom);
    free_items(&it);
}

/* Per-item event counts, sorted descending; returns the share of the top 1% and the items with none. */
static double top1_share(const cr_synth_params *p, const char *name, int64_t *n_cold) {
    const char *dir = synth_dir(name, p);
    inter_rows in;
    read_inter(dir, &in);
    int64_t *cnt = calloc((size_t)p->n_items, sizeof *cnt);
    for (int64_t k = 0; k < in.n; k++) cnt[in.item[k]]++;
    *n_cold = 0;
    for (int64_t i = 0; i < p->n_items; i++) *n_cold += cnt[i] == 0;
    /* partial selection of the top 1% by repeated max (n_items/100 passes over a small array) */
    int64_t top = p->n_items / 100 > 0 ? p->n_items / 100 : 1, sum = 0;
    for (int64_t k = 0; k < top; k++) {
        int64_t best = 0;
        for (int64_t i = 1; i < p->n_items; i++)
            if (cnt[i] > cnt[best]) best = i;
        sum += cnt[best];
        cnt[best] = -1;
    }
    free(cnt);
    free_inter(&in);
    return (double)sum / (double)p->n_inter;
}

TEST(synth_popularity_skew_and_cold_items) {
    cr_synth_params p = cr_synth_default_params();
    int64_t cold;
    double skewed = top1_share(&p, "synth-pop-a", &cold);
    CHECK_MSG(skewed > 0.06, "top 1%% of items hold %.3f of events", skewed);     /* uniform: 0.01 */
    /* new arrivals (2%) have no event; Zipf at this density leaves few others */
    CHECK_MSG(cold >= p.n_items / 100 && cold <= p.n_items / 25, "%lld items without events", (long long)cold);
    /* the knobs do what they say: flat popularity, no topics -> no head; no new arrivals -> ~no cold items */
    p.item_zipf = 0, p.topic_share = 0, p.new_item_share = 0;
    double flat = top1_share(&p, "synth-pop-b", &cold);
    CHECK_MSG(flat < 0.025, "flat popularity, top 1%% hold %.3f", flat);
    CHECK(cold <= p.n_items / 200);
}

/* ---- signal: text and behaviour follow the hidden topics, across domains ---- */

/* Sorted hashes of the words of s. Returns the count. */
static int word_hashes(const char *s, uint64_t *h, int max) {
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ') s++;
        const char *e = s;
        while (*e && *e != ' ') e++;
        if (e > s) h[n++] = cr_hash64(s, (size_t)(e - s));
        s = e;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && h[j - 1] > h[j]; j--) {
            uint64_t t = h[j];
            h[j] = h[j - 1], h[j - 1] = t;
        }
    return n;
}

static int share_word(const uint64_t *a, int na, const uint64_t *b, int nb) {
    int i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) return 1;
        if (a[i] < b[j]) i++;
        else j++;
    }
    return 0;
}

TEST(synth_text_topic_signal) {
    cr_synth_params p = cr_synth_default_params();
    const char *dir = synth_dir("synth-text", &p);
    item_rows it;
    read_items(dir, &it);
    int32_t *dom = malloc((size_t)p.n_items * sizeof *dom), *topic = malloc((size_t)p.n_items * sizeof *topic);
    CHECK_OK(cr_synth_item_latents(&p, dom, topic, NULL));
    uint64_t(*h)[8] = malloc((size_t)p.n_items * sizeof *h);
    int *nh = malloc((size_t)p.n_items * sizeof *nh);
    for (int64_t i = 0; i < p.n_items; i++) nh[i] = word_hashes(it.title[i], h[i], 8);
    /* all pairs of items in different domains: same main topic vs different */
    int64_t same = 0, same_hit = 0, diff = 0, diff_hit = 0;
    for (int64_t i = 0; i < p.n_items; i++)
        for (int64_t j = i + 1; j < p.n_items; j++) {
            if (dom[i] == dom[j]) continue;
            int hit = share_word(h[i], nh[i], h[j], nh[j]);
            if (topic[i] == topic[j]) same++, same_hit += hit;
            else diff++, diff_hit += hit;
        }
    double ps = (double)same_hit / (double)same, pd = (double)diff_hit / (double)diff;
    printf("     titles sharing a word across domains: same topic %.3f, different %.3f\n", ps, pd);
    CHECK_MSG(ps > 0.3 && ps > 3 * pd, "same topic %.3f vs different %.3f", ps, pd);
    free(dom), free(topic), free(h), free(nh);
    free_items(&it);
}

/* For users active in several domains: how often an event in one domain and an event of the same user in
 * another domain have the same item main topic, against the same for two different users (the chance level,
 * which includes topic and popularity skew). */
static void cross_domain_agreement(const cr_synth_params *p, const char *name, double *same_user, double *other_user) {
    const char *dir = synth_dir(name, p);
    inter_rows in;
    read_inter(dir, &in);
    int32_t *dom = malloc((size_t)p->n_items * sizeof *dom), *topic = malloc((size_t)p->n_items * sizeof *topic);
    CHECK_OK(cr_synth_item_latents(p, dom, topic, NULL));
    int64_t D = p->n_domains, K = p->n_topics, nu = p->n_users;
    int64_t *hist = calloc((size_t)(nu * D * K), sizeof *hist);     /* (user, domain, topic) event counts */
    for (int64_t k = 0; k < in.n; k++) hist[(in.user[k] * D + dom[in.item[k]]) * K + topic[in.item[k]]]++;
    double num[2] = {0, 0}, den[2] = {0, 0};
    for (int64_t u = 0; u < nu; u++)
        for (int w = 0; w < 2; w++) {
            int64_t v = w == 0 ? u : (u + 1) % nu;
            for (int64_t a = 0; a < D; a++)
                for (int64_t b = 0; b < D; b++) {
                    if (a == b) continue;
                    const int64_t *x = hist + (u * D + a) * K, *y = hist + (v * D + b) * K;
                    double sx = 0, sy = 0, dot = 0;
                    for (int64_t t = 0; t < K; t++) sx += (double)x[t], sy += (double)y[t], dot += (double)(x[t] * y[t]);
                    /* only pairs where user u is itself active in both domains, so both rows compare alike */
                    int64_t ub = 0;
                    for (int64_t t = 0; t < K; t++) ub += hist[(u * D + b) * K + t];
                    if (sx == 0 || sy == 0 || ub == 0) continue;
                    num[w] += dot / (sx * sy);
                    den[w] += 1;
                }
        }
    *same_user = den[0] ? num[0] / den[0] : 0;
    *other_user = den[1] ? num[1] / den[1] : 0;
    free(hist), free(dom), free(topic);
    free_inter(&in);
}

TEST(synth_cross_domain_taste) {
    cr_synth_params p = cr_synth_default_params();
    double su, ou;
    cross_domain_agreement(&p, "synth-taste-a", &su, &ou);
    printf("     cross-domain topic agreement: same user %.3f, other user %.3f\n", su, ou);
    CHECK_MSG(su > 3 * ou, "same user %.3f vs other user %.3f", su, ou);
    /* negative control: without topic-driven choices the same measure sees nothing */
    p.topic_share = 0;
    cross_domain_agreement(&p, "synth-taste-b", &su, &ou);
    CHECK_MSG(su < 1.3 * ou, "no topics, yet same user %.3f vs other user %.3f", su, ou);
}

/* ---- edges and errors ---- */

TEST(synth_smallest_and_tight) {
    cr_synth_params p = cr_synth_default_params();
    p.n_users = 1, p.n_items = 1, p.n_inter = 1, p.n_domains = 1, p.n_topics = 1;
    const char *dir = synth_dir("synth-tiny", &p);
    inter_rows in;
    read_inter(dir, &in);
    CHECK_EQ(in.n, 1);
    CHECK_EQ(in.user[0], 0);
    CHECK_EQ(in.item[0], 0);
    free_inter(&in);
    /* n_inter == n_users with many multi-domain users asked for: everyone still gets exactly one event */
    p = cr_synth_default_params();
    p.n_users = 200, p.n_items = 8, p.n_domains = 8, p.n_inter = 200, p.multi_domain_share = 1;
    dir = synth_dir("synth-tight", &p);
    read_inter(dir, &in);
    CHECK_EQ(in.n, 200);
    for (int64_t k = 0; k < in.n; k++) CHECK_EQ(in.user[k], k);
    free_inter(&in);
    /* slightly more events than users: the first users keep their extra domains */
    p.n_inter = 230;
    CHECK(multi_share(&p, "synth-tight-b") > 0.05);
}

TEST(synth_invalid_params) {
    const cr_synth_params d = cr_synth_default_params();
    const char *dir = cr_test_path("synth-invalid");
    struct { cr_synth_params p; const char *word; } cases[12];
    int n = 0;
    cases[n].p = d, cases[n].p.n_users = 0, cases[n++].word = "n_users";
    cases[n].p = d, cases[n].p.n_items = 3, cases[n++].word = "n_items";
    cases[n].p = d, cases[n].p.n_inter = d.n_users - 1, cases[n++].word = "n_inter";
    cases[n].p = d, cases[n].p.n_domains = 0, cases[n++].word = "n_domains";
    cases[n].p = d, cases[n].p.n_domains = 1001, cases[n].p.n_items = 5000, cases[n++].word = "n_domains";
    cases[n].p = d, cases[n].p.n_topics = 0, cases[n++].word = "n_topics";
    cases[n].p = d, cases[n].p.item_zipf = -1, cases[n++].word = "item_zipf";
    cases[n].p = d, cases[n].p.user_zipf = NAN, cases[n++].word = "user_zipf";
    cases[n].p = d, cases[n].p.multi_domain_share = 1.5, cases[n++].word = "multi_domain_share";
    cases[n].p = d, cases[n].p.topic_share = -0.1, cases[n++].word = "topic_share";
    cases[n].p = d, cases[n].p.new_item_share = 2, cases[n++].word = "new_item_share";
    for (int k = 0; k < n; k++) {
        CHECK(cr_synth_check_params(&cases[k].p) != NULL);
        CHECK_STATUS(cr_synth_write(dir, &cases[k].p), CR_ERR_ARG);
        CHECK_CONTAINS(cr_errmsg(), cases[k].word);
    }
    CHECK(!cr_test_file_exists(dir));       /* nothing created for bad parameters */
    CHECK_STATUS(cr_synth_write(dir, NULL), CR_ERR_ARG);
    CHECK_STATUS(cr_synth_write(NULL, &d), CR_ERR_ARG);
    CHECK_STATUS(cr_synth_write("", &d), CR_ERR_ARG);
}

TEST(synth_io_errors) {
    cr_synth_params p = cr_synth_default_params();
    p.n_users = 50, p.n_items = 40, p.n_inter = 300;
    /* a path through a regular file */
    const char *file = cr_test_write("synth-a-file", "x", 1);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/sub", file);
    CHECK_STATUS(cr_synth_write(dir, &p), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "synth-a-file");
    CHECK_STATUS(cr_synth_write(file, &p), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "not a directory");
    /* the final name is taken by a non-empty directory: rename fails, and no .tmp is left behind */
    const char *out = cr_test_path("synth-blocked");
    char blocker[700], tmp[700];
    snprintf(blocker, sizeof blocker, "%s/interactions.tsv/keep", out);
    CHECK(mkdir(out, 0777) == 0);
    snprintf(tmp, sizeof tmp, "%s/interactions.tsv", out);
    CHECK(mkdir(tmp, 0777) == 0);
    CHECK(mkdir(blocker, 0777) == 0);
    CHECK_STATUS(cr_synth_write(out, &p), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "interactions.tsv");
    snprintf(tmp, sizeof tmp, "%s/interactions.tsv.tmp", out);
    CHECK(!cr_test_file_exists(tmp));
    /* items.tsv was complete, but the pair is committed together: neither it nor its .tmp is left */
    snprintf(tmp, sizeof tmp, "%s/items.tsv.tmp", out);
    CHECK(!cr_test_file_exists(tmp));
    snprintf(tmp, sizeof tmp, "%s/items.tsv", out);
    CHECK(!cr_test_file_exists(tmp));
}

TEST(synth_alloc_failures) {
    cr_synth_params p = cr_synth_default_params();
    p.n_users = 60, p.n_items = 50, p.n_inter = 500, p.n_domains = 3;
    const char *dir = cr_test_path("synth-nomem");
    int failures = 0;
    for (int64_t n = 1; n < 10000; n++) {
        cr_alloc_stats before = cr_alloc_get_stats();
        cr_alloc_fail_nth(n);
        cr_status st = cr_synth_write(dir, &p);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        CHECK_EQ(cr_alloc_get_stats().n_live, before.n_live);
        if (!hit) {
            CHECK_OK(st);
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "allocation %lld failed, status %s (%s)", (long long)n, cr_status_str(st), cr_errmsg());
        failures++;
    }
    CHECK(failures >= 10);
}

/* ---- the command ---- */

static const char *cli_bin(void) {
    const char *bin = getenv("CROSSREC_BIN");
    return bin && *bin ? bin : "build/current/crossrec";
}

TEST(synth_cli) {
    if (!cr_test_file_exists(cli_bin())) cr_test_skip("crossrec binary not built");
    const char *dir = cr_test_path("synth-cli");
    char *out = NULL;
    int rc = cr_test_cli(&out, "synth -o '%s' --users 100 --items 60 --interactions 1500 --domains 3 --seed 7", dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_CONTAINS(out, "1500 interactions");
    free(out);
    inter_rows in;
    read_inter(dir, &in);
    CHECK_EQ(in.n, 1500);
    free_inter(&in);
    /* same as the library call with the same parameters */
    cr_synth_params p = cr_synth_default_params();
    p.n_users = 100, p.n_items = 60, p.n_inter = 1500, p.n_domains = 3, p.seed = 7;
    const char *lib = synth_dir("synth-cli-lib", &p);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/interactions.tsv", dir), snprintf(b, sizeof b, "%s/interactions.tsv", lib);
    CHECK(files_equal(a, b));

    rc = cr_test_cli(&out, "synth --help");
    CHECK_EQ(rc, 0);
    CHECK_CONTAINS(out, "--users");
    CHECK_CONTAINS(out, "(default: 3000)");
    CHECK_CONTAINS(out, "(default: 0.6)");
    free(out);
    rc = cr_test_cli(&out, "synth --users 10");
    CHECK_EQ(rc, 2);                                            /* no -o */
    free(out);
    rc = cr_test_cli(&out, "synth -o '%s' --users 0", dir);
    CHECK_EQ(rc, 2);
    CHECK_CONTAINS(out, "n_users");
    free(out);
    rc = cr_test_cli(&out, "synth -o '%s' --user 5", dir);
    CHECK_EQ(rc, 2);
    CHECK_CONTAINS(out, "did you mean --users");
    free(out);
    rc = cr_test_cli(&out, "synth -o /dev/null/x --users 10 --items 10 --interactions 20");
    CHECK_EQ(rc, 1);
    CHECK_CONTAINS(out, "crossrec: error:");
    free(out);
}

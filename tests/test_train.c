/* test_train.c — the training engine: optimizers (hand values, fast = reference bit for bit), learning-rate
 * schedules (hand values), the alias sampler (exact table masses, empirical frequencies, domains, faults) and
 * the epoch loop (best-epoch restore, patience, no validation, the log, the printed table, errors, and that
 * only the validation part is ever scored) driven by a scripted fit and a scripted model. */
#include "test.h"
#include "cdr_fixtures.h"

#include "crossrec/train.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- optimizers ------------------------------------------------------------------------------------------ */

/* One tensor of n floats. */
static void one_tensor_slab(cr_slab *s, int64_t n) {
    cr_tensor t = {.name = "w", .rows = 1, .cols = n};
    CHECK_OK(cr_slab_init(s, &t, 1));
}

TEST(train_opt_names_and_defaults) {
    cr_opt_kind k = CR_OPT_SGD;
    CHECK_EQ(cr_opt_from_name("adam", &k), 0);
    CHECK_EQ(k, CR_OPT_ADAM);
    CHECK_EQ(cr_opt_from_name("adagrad", &k), 0);
    CHECK_EQ(k, CR_OPT_ADAGRAD);
    CHECK_EQ(cr_opt_from_name("sgd", &k), 0);
    CHECK_EQ(k, CR_OPT_SGD);
    CHECK_EQ(cr_opt_from_name("Adam", &k), -1);
    CHECK_EQ(cr_opt_from_name("", &k), -1);
    CHECK_EQ(cr_opt_from_name(NULL, &k), -1);
    for (int i = CR_OPT_SGD; i <= CR_OPT_ADAM; i++) {
        CHECK_EQ(cr_opt_from_name(cr_opt_name((cr_opt_kind)i), &k), 0);
        CHECK_EQ(k, i);
    }
    cr_opt_params p = cr_opt_default_params(CR_OPT_ADAM);
    CHECK(p.kind == CR_OPT_ADAM && p.lr == 0.001f && p.beta1 == 0.9f && p.beta2 == 0.999f && p.eps == 1e-8f && p.weight_decay == 0);
    p = cr_opt_default_params(CR_OPT_ADAGRAD);
    CHECK(p.kind == CR_OPT_ADAGRAD && p.lr == 0.05f && p.eps == 1e-8f);
    CHECK(cr_opt_default_params(CR_OPT_SGD).lr == 0.05f);
}

TEST(train_opt_moment_slabs_and_errors) {
    cr_slab w;
    one_tensor_slab(&w, 10);
    cr_optimizer o;
    cr_opt_params p = cr_opt_default_params(CR_OPT_SGD);
    CHECK_OK(cr_opt_init(&o, &w, &p));
    CHECK(o.m.data == NULL && o.v.data == NULL && o.step == 0);
    cr_opt_free(&o);
    p = cr_opt_default_params(CR_OPT_ADAGRAD);
    CHECK_OK(cr_opt_init(&o, &w, &p));
    CHECK(o.m.data == NULL && o.v.data != NULL && o.v.size == w.size);
    cr_opt_free(&o);
    p = cr_opt_default_params(CR_OPT_ADAM);
    CHECK_OK(cr_opt_init(&o, &w, &p));
    CHECK(o.m.size == w.size && o.v.size == w.size && o.m.n == 1 && !strcmp(o.m.t[0].name, "w"));
    cr_opt_free(&o);
    cr_opt_free(NULL);

    p.lr = NAN;
    CHECK_STATUS(cr_opt_init(&o, &w, &p), CR_ERR_ARG);
    p = cr_opt_default_params(CR_OPT_ADAM);
    p.beta2 = 1.0f;
    CHECK_STATUS(cr_opt_init(&o, &w, &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "beta");
    p = cr_opt_default_params(CR_OPT_ADAGRAD);
    p.eps = 0;
    CHECK_STATUS(cr_opt_init(&o, &w, &p), CR_ERR_ARG);
    p = cr_opt_default_params(CR_OPT_SGD);
    p.weight_decay = -1;
    CHECK_STATUS(cr_opt_init(&o, &w, &p), CR_ERR_ARG);

    /* every allocation of Adam's init can fail without a leak (the test harness checks live blocks) */
    p = cr_opt_default_params(CR_OPT_ADAM);
    int failed = 0;
    for (int64_t nth = 1; nth < 10; nth++) {
        cr_alloc_fail_nth(nth);
        cr_status st = cr_opt_init(&o, &w, &p);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            cr_opt_free(&o);
            break;
        }
        CHECK_STATUS(st, CR_ERR_NOMEM);
        CHECK(o.m.data == NULL && o.v.data == NULL);
        failed++;
    }
    CHECK_EQ(failed, 2);
    cr_slab_free(&w);
}

/* Hand-computed single steps, weight decay included. */
TEST(train_opt_hand_values) {
    cr_slab w;
    one_tensor_slab(&w, 2);
    cr_optimizer o;
    const float g[2] = {0.5f, -2.0f};

    /* sgd, lr 0.1, wd 0.1: grad = g + 0.1 x; x = (1, 2): grad = (0.6, -1.8); x -= 0.1 grad */
    cr_opt_params p = cr_opt_default_params(CR_OPT_SGD);
    p.weight_decay = 0.1f;
    CHECK_OK(cr_opt_init(&o, &w, &p));
    w.data[0] = 1, w.data[1] = 2;
    cr_opt_update(&o, &w, 0, g, 2, 0.1f);
    CHECK_NEAR(w.data[0], 0.94, 1e-6);
    CHECK_NEAR(w.data[1], 2.18, 1e-6);
    cr_opt_free(&o);

    /* adagrad, lr 0.1: v = g^2, x -= 0.1 g / |g| = -0.1 sign(g); second step with the same g: v = 2 g^2,
     * x -= 0.1 / sqrt(2) sign(g) */
    p = cr_opt_default_params(CR_OPT_ADAGRAD);
    CHECK_OK(cr_opt_init(&o, &w, &p));
    w.data[0] = 1, w.data[1] = 2;
    cr_opt_update(&o, &w, 0, g, 2, 0.1f);
    CHECK_NEAR(o.v.data[0], 0.25, 1e-7);
    CHECK_NEAR(o.v.data[1], 4.0, 1e-7);
    CHECK_NEAR(w.data[0], 0.9, 1e-6);
    CHECK_NEAR(w.data[1], 2.1, 1e-6);
    cr_opt_update(&o, &w, 0, g, 2, 0.1f);
    CHECK_NEAR(w.data[0], 0.9 - 0.1 / sqrt(2.0), 1e-6);
    CHECK_NEAR(w.data[1], 2.1 + 0.1 / sqrt(2.0), 1e-6);
    cr_opt_free(&o);

    /* adam, lr 0.01, step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2: x -= 0.01 sign(g). Step 2 with
     * gradient g2 = (1, 1): m = 0.09 g + 0.1, v = 0.000999 g^2 + 0.001, bias corrections 1 - 0.9^2 = 0.19 and
     * 1 - 0.999^2 = 0.001999. */
    p = cr_opt_default_params(CR_OPT_ADAM);
    CHECK_OK(cr_opt_init(&o, &w, &p));
    w.data[0] = 1, w.data[1] = 2;
    cr_opt_update(&o, &w, 0, g, 2, 0.01f);     /* step 0 is corrected as step 1 */
    CHECK_NEAR(w.data[0], 0.99, 1e-6);
    CHECK_NEAR(w.data[1], 2.01, 1e-6);
    CHECK_NEAR(o.m.data[1], -0.2, 1e-7);
    CHECK_NEAR(o.v.data[1], 0.004, 1e-7);
    cr_opt_step(&o);
    cr_opt_step(&o);
    CHECK_EQ(o.step, 2);
    const float g2[2] = {1, 1};
    cr_opt_update(&o, &w, 0, g2, 2, 0.01f);
    for (int k = 0; k < 2; k++) {
        double m = 0.09 * g[k] + 0.1, v = 0.000999 * g[k] * g[k] + 0.001;
        double want = (k ? 2.01 : 0.99) - 0.01 * (m / 0.19) / (sqrt(v / 0.001999) + 1e-8);
        CHECK_NEAR(w.data[k], want, 2e-6);
    }
    /* lazy: an update of entry 1 alone leaves entry 0 and its moments alone */
    float x0 = w.data[0], m0 = o.m.data[0], v0 = o.v.data[0];
    const float z = 0;
    cr_opt_update(&o, &w, 1, &z, 1, 0.01f);
    CHECK(w.data[0] == x0 && o.m.data[0] == m0 && o.v.data[0] == v0);
    cr_opt_free(&o);
    cr_slab_free(&w);
}

/* The fast update equals the reference bit for bit: random parameters and gradients, odd lengths and
 * offsets, several steps, weight decay on, every optimizer. */
TEST(train_opt_fast_matches_ref) {
    cr_rng r;
    cr_rng_seed(&r, 7, 1);
    const int64_t n_all = 1000;
    for (int kind = CR_OPT_SGD; kind <= CR_OPT_ADAM; kind++) {
        cr_slab wa, wb;
        one_tensor_slab(&wa, n_all);
        one_tensor_slab(&wb, n_all);
        for (int64_t k = 0; k < n_all; k++) wa.data[k] = wb.data[k] = (float)cr_rng_normal(&r);
        cr_opt_params p = cr_opt_default_params((cr_opt_kind)kind);
        p.weight_decay = 0.01f;
        cr_optimizer oa, ob;
        CHECK_OK(cr_opt_init(&oa, &wa, &p));
        CHECK_OK(cr_opt_init(&ob, &wb, &p));
        float g[1000];
        for (int it = 0; it < 50; it++) {
            int64_t off = cr_rng_below(&r, 500);
            int64_t n = 1 + 2 * cr_rng_below(&r, 240);   /* odd, 1..479 */
            for (int64_t k = 0; k < n; k++) g[k] = (float)(cr_rng_normal(&r) * (it % 3 ? 1.0 : 1e-3));
            if (it == 7) g[0] = 0;
            float lr = (float)(0.001 + 0.1 * cr_rng_uniform(&r));
            cr_opt_update_ref(&oa, &wa, off, g, n, lr);
            cr_opt_update(&ob, &wb, off, g, n, lr);
            if (it % 4 == 0) cr_opt_step(&oa), cr_opt_step(&ob);
        }
        CHECK_MSG(!memcmp(wa.data, wb.data, (size_t)n_all * sizeof(float)), "%s: parameters differ", cr_opt_name((cr_opt_kind)kind));
        if (kind != CR_OPT_SGD) CHECK(!memcmp(oa.v.data, ob.v.data, (size_t)n_all * sizeof(float)));
        if (kind == CR_OPT_ADAM) CHECK(!memcmp(oa.m.data, ob.m.data, (size_t)n_all * sizeof(float)));
        /* and the updates did something */
        int moved = 0;
        for (int64_t k = 0; k < n_all; k++) moved += isfinite(wa.data[k]) ? 1 : -100000;
        CHECK_EQ(moved, n_all);
        cr_opt_free(&oa), cr_opt_free(&ob);
        cr_slab_free(&wa), cr_slab_free(&wb);
    }
}

/* ---- schedules ------------------------------------------------------------------------------------------- */

TEST(train_schedule_hand_values) {
    cr_schedule c = {CR_LR_CONSTANT, 0, 0, 0.1};
    CHECK_NEAR(cr_lr_at(&c, 0.5, 0), 0.5, 0);
    CHECK_NEAR(cr_lr_at(&c, 0.5, 1000000), 0.5, 0);
    CHECK_NEAR(cr_lr_at(NULL, 0.5, 3), 0.5, 0);

    cr_schedule w = {CR_LR_CONSTANT, 4, 100, 0.1};     /* warm-up only: constant after it */
    CHECK_NEAR(cr_lr_at(&w, 1.0, 0), 0.0, 0);
    CHECK_NEAR(cr_lr_at(&w, 1.0, 1), 0.25, 1e-15);
    CHECK_NEAR(cr_lr_at(&w, 1.0, 3), 0.75, 1e-15);
    CHECK_NEAR(cr_lr_at(&w, 1.0, 4), 1.0, 0);
    CHECK_NEAR(cr_lr_at(&w, 1.0, 500), 1.0, 0);
    CHECK_NEAR(cr_lr_at(&w, 1.0, -3), 0.0, 0);

    /* linear: 2 warm-up steps, then from 1 to 0.2 over 8 steps: step 2 -> 1, 6 -> 0.6, 10 -> 0.2, after: 0.2 */
    cr_schedule l = {CR_LR_LINEAR, 2, 8, 0.2};
    CHECK_NEAR(cr_lr_at(&l, 1.0, 1), 0.5, 1e-15);
    CHECK_NEAR(cr_lr_at(&l, 1.0, 2), 1.0, 1e-15);
    CHECK_NEAR(cr_lr_at(&l, 1.0, 4), 0.8, 1e-15);
    CHECK_NEAR(cr_lr_at(&l, 1.0, 6), 0.6, 1e-15);
    CHECK_NEAR(cr_lr_at(&l, 1.0, 10), 0.2, 1e-15);
    CHECK_NEAR(cr_lr_at(&l, 1.0, 99), 0.2, 1e-15);
    CHECK_NEAR(cr_lr_at(&l, 2.0, 6), 1.2, 1e-15);

    /* cosine, no warm-up, from 1 to 0 over 4 steps: 1, (1 + cos(pi/4))/2, 0.5, (1 + cos(3pi/4))/2, 0 */
    cr_schedule k = {CR_LR_COSINE, 0, 4, 0.0};
    CHECK_NEAR(cr_lr_at(&k, 1.0, 0), 1.0, 1e-15);
    CHECK_NEAR(cr_lr_at(&k, 1.0, 1), 0.5 + 0.5 * sqrt(0.5), 1e-15);
    CHECK_NEAR(cr_lr_at(&k, 1.0, 2), 0.5, 1e-15);
    CHECK_NEAR(cr_lr_at(&k, 1.0, 3), 0.5 - 0.5 * sqrt(0.5), 1e-15);
    CHECK_NEAR(cr_lr_at(&k, 1.0, 4), 0.0, 1e-15);
    CHECK_NEAR(cr_lr_at(&k, 1.0, 40), 0.0, 1e-15);
    /* with a floor of 0.1 and a warm-up of 10: halfway through the decay is 0.55 */
    cr_schedule k2 = {CR_LR_COSINE, 10, 4, 0.1};
    CHECK_NEAR(cr_lr_at(&k2, 1.0, 5), 0.5, 1e-15);
    CHECK_NEAR(cr_lr_at(&k2, 1.0, 12), 0.55, 1e-15);
    CHECK_NEAR(cr_lr_at(&k2, 1.0, 14), 0.1, 1e-15);
    /* total 0: no decay */
    cr_schedule k3 = {CR_LR_LINEAR, 0, 0, 0.1};
    CHECK_NEAR(cr_lr_at(&k3, 0.3, 77), 0.3, 0);
}

/* ---- samplers -------------------------------------------------------------------------------------------- */

/* Training interactions reduced to what the sampler reads: item_ptr (event counts) and item_domain. */
typedef struct {
    cr_interactions v;
    int64_t item_ptr[64];
    int32_t item_domain[63];
} fake_inter;

/* counts[i] events for item i, domain dom[i]. */
static void fake_inter_make(fake_inter *f, int64_t n_items, int64_t n_domains, const int64_t *counts, const int32_t *dom) {
    memset(f, 0, sizeof *f);
    CR_ASSERT(n_items <= 63);
    f->item_ptr[0] = 0;
    for (int64_t i = 0; i < n_items; i++) {
        f->item_ptr[i + 1] = f->item_ptr[i] + counts[i];
        f->item_domain[i] = dom[i];
    }
    f->v.n_items = n_items;
    f->v.n_domains = n_domains;
    f->v.n_inter = f->item_ptr[n_items];
    f->v.item_ptr = f->item_ptr;
    f->v.item_domain = f->item_domain;
}

/* The alias table holds exactly each column's share: prob[j] + sum over columns aliased to j of (1 - prob). */
static void check_table_mass(const cr_sampler *s, const double *want /* (n) normalised weights */) {
    double mass[64] = {0};
    for (int64_t c = 0; c < s->n; c++) {
        CHECK(s->prob[c] >= 0 && s->prob[c] <= 1);
        CHECK(s->alias[c] >= 0 && s->alias[c] < s->n);
        mass[c] += s->prob[c];
        mass[s->alias[c]] += 1.0 - s->prob[c];
    }
    for (int64_t c = 0; c < s->n; c++) CHECK_NEAR(mass[c] / (double)s->n, want[c], 1e-6);
}

/* Draws `draws` items; chi-square of the counts against the weights must be plausible for n - 1 degrees of
 * freedom (mean n - 1, sd sqrt(2 (n - 1)): 6 sd is a fixed-seed bound that a wrong table misses by far), and
 * no cell may be more than 5 standard deviations (sqrt of its expected count) off. */
static void check_frequencies(const cr_sampler *s, const double *want, int64_t draws, uint64_t seed) {
    int64_t cnt[64] = {0};
    cr_rng r;
    cr_rng_named(&r, seed, "sampler-test");
    for (int64_t d = 0; d < draws; d++) {
        int32_t it = cr_sampler_draw(s, &r);
        int64_t c = 0;
        while (c < s->n && s->items[c] != it) c++;
        CHECK_MSG(c < s->n, "drew item %d, not one of the sampler's", it);
        cnt[c]++;
    }
    double chi2 = 0, max_z = 0;
    for (int64_t c = 0; c < s->n; c++) {
        double e = want[c] * (double)draws;
        chi2 += (cnt[c] - e) * (cnt[c] - e) / e;
        double z = fabs(cnt[c] - e) / sqrt(e);
        if (z > max_z) max_z = z;
    }
    double df = (double)(s->n - 1);
    CHECK_MSG(chi2 < df + 6 * sqrt(2 * df), "chi-square %.2f for %g degrees of freedom", chi2, df);
    CHECK_MSG(max_z < 5, "a cell is %.2f standard deviations off", max_z);
}

static const int64_t COUNTS[10] = {0, 3, 10, 1, 0, 25, 7, 2, 0, 50};
static const int32_t DOMS[10] = {0, 1, 0, 0, 1, 1, 0, 1, 0, 0};   /* domain 2 has no items */

TEST(train_sampler_popularity_frequencies) {
    fake_inter f;
    fake_inter_make(&f, 10, 3, COUNTS, DOMS);
    for (int a = 0; a < 3; a++) {
        double alpha = a == 0 ? 1.0 : a == 1 ? 0.5 : 2.0;
        cr_sampler s;
        CHECK_OK(cr_sampler_init(&s, &f.v, -1, alpha));
        CHECK_EQ(s.n, 10);
        double want[10], sum = 0;
        for (int i = 0; i < 10; i++) {
            CHECK_EQ(s.items[i], i);
            sum += want[i] = pow((double)COUNTS[i] + 1, alpha);
        }
        for (int i = 0; i < 10; i++) want[i] /= sum;
        check_table_mass(&s, want);
        check_frequencies(&s, want, 1000000, 11 + (uint64_t)a);
        cr_sampler_free(&s);
    }
}

TEST(train_sampler_uniform_and_domain) {
    fake_inter f;
    fake_inter_make(&f, 10, 3, COUNTS, DOMS);
    cr_sampler s;
    /* alpha 0: uniform, whatever the counts */
    CHECK_OK(cr_sampler_init(&s, &f.v, -1, 0.0));
    double want[10];
    for (int i = 0; i < 10; i++) want[i] = 0.1;
    check_table_mass(&s, want);
    for (int c = 0; c < 10; c++) CHECK(s.prob[c] == 1.0f);
    check_frequencies(&s, want, 1000000, 5);
    cr_sampler_free(&s);

    /* domain 1: items 1, 4, 5, 7 only, ascending, popularity-weighted */
    CHECK_OK(cr_sampler_init(&s, &f.v, 1, 1.0));
    CHECK_EQ(s.n, 4);
    const int32_t dom1[4] = {1, 4, 5, 7};
    double sum = 0;
    for (int c = 0; c < 4; c++) {
        CHECK_EQ(s.items[c], dom1[c]);
        sum += want[c] = (double)COUNTS[dom1[c]] + 1;
    }
    for (int c = 0; c < 4; c++) want[c] /= sum;
    check_table_mass(&s, want);
    check_frequencies(&s, want, 1000000, 6);   /* also checks every draw is one of the domain's items */
    cr_sampler_free(&s);

    /* the same seed gives the same draws */
    CHECK_OK(cr_sampler_init(&s, &f.v, 0, 1.0));
    cr_rng r1, r2;
    cr_rng_named(&r1, 3, "neg"), cr_rng_named(&r2, 3, "neg");
    for (int d = 0; d < 1000; d++) CHECK_EQ(cr_sampler_draw(&s, &r1), cr_sampler_draw(&s, &r2));
    cr_sampler_free(&s);
    cr_sampler_free(NULL);

    /* a huge alpha neither overflows nor loses the most popular item */
    CHECK_OK(cr_sampler_init(&s, &f.v, -1, 400.0));
    cr_rng_named(&r1, 3, "neg");
    for (int d = 0; d < 100; d++) CHECK_EQ(cr_sampler_draw(&s, &r1), 9);
    cr_sampler_free(&s);
}

/* In-batch draws: never the row itself, every other row equally often, so an item comes up in proportion to
 * its rows in the batch; nothing to draw from a batch of one. */
TEST(train_inbatch_draw_frequencies) {
    const int32_t items[5] = {7, 3, 7, 9, 7};    /* item 7 is the positive of three rows */
    cr_rng r;
    cr_rng_named(&r, 1, "inbatch");
    int64_t count[10] = {0}, n = 200000;
    for (int64_t k = 0; k < n; k++) {
        int32_t c = cr_inbatch_draw(items, 5, 1, &r);    /* row 1 (item 3) never draws itself */
        CHECK(c == 7 || c == 9);
        count[c]++;
    }
    CHECK_EQ(count[3], 0);
    CHECK_NEAR((double)count[7] / (double)n, 0.75, 0.01);
    CHECK_NEAR((double)count[9] / (double)n, 0.25, 0.01);
    CHECK_EQ(cr_inbatch_draw(items, 1, 0, &r), -1);
    CHECK_EQ(cr_inbatch_draw(items, 2, 0, &r), 3);
    CHECK_EQ(cr_inbatch_draw(items, 2, 1, &r), 7);
}

TEST(train_sampler_errors_and_faults) {
    fake_inter f;
    fake_inter_make(&f, 10, 3, COUNTS, DOMS);
    cr_sampler s;
    CHECK_STATUS(cr_sampler_init(&s, &f.v, 2, 1.0), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "no items");
    CHECK(s.items == NULL && s.n == 0);
    CHECK_STATUS(cr_sampler_init(&s, &f.v, 3, 1.0), CR_ERR_ARG);
    CHECK_STATUS(cr_sampler_init(&s, &f.v, -2, 1.0), CR_ERR_ARG);
    CHECK_STATUS(cr_sampler_init(&s, &f.v, -1, NAN), CR_ERR_ARG);

    int failed = 0;
    for (int64_t nth = 1; nth < 20; nth++) {
        cr_alloc_fail_nth(nth);
        cr_status st = cr_sampler_init(&s, &f.v, -1, 1.0);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        if (!hit) {
            CHECK_OK(st);
            cr_sampler_free(&s);
            break;
        }
        CHECK_STATUS(st, CR_ERR_NOMEM);
        CHECK(s.items == NULL && s.prob == NULL && s.alias == NULL);
        failed++;
    }
    CHECK(failed >= 3);
}

/* ---- the epoch loop -------------------------------------------------------------------------------------- */

/* The loop tests' synthetic dataset (see cr_test_cdr_data). */
static cr_dataset *loop_dataset(const char *name) {
    return cr_test_cdr_data(name, 400, 120, 5000, 2, cr_synth_default_params().seed);
}

static cr_split *loop_split(cr_dataset *d, double valid_share) {
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = cr_dataset_domain_name(d, 1);
    sp.beta = 0.5;
    sp.valid_share = valid_share;
    cr_split *s = NULL;
    CHECK_OK(cr_split_make(&s, d, &sp));
    return s;
}

/* The scripted model: the first `level` validation users (level = params.data[0]) get their ground truth
 * scored at the top (NDCG@10 = 1), every other user's ground truth at the bottom (NDCG@10 = 0, with at least
 * 10 negatives ahead), so validation NDCG@10 = level / n_valid_users exactly. Test-part users also get their
 * truth at the bottom (test NDCG 0), and every scored user is marked in `scored`. */
typedef struct {
    cr_model base;
    const cr_split *split;
    const cr_slab *params;
    uint8_t *scored;    /* (n_users) */
} script_model;

static int64_t find_user(const cr_ground_truth *t, int32_t u) {
    int64_t lo = 0, hi = t->n_users;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (t->users[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->n_users && t->users[lo] == u ? lo : -1;
}

static int in_truth(const cr_ground_truth *t, int64_t j, int32_t item) {
    for (int64_t e = t->gt_ptr[j]; e < t->gt_ptr[j + 1]; e++)
        if (t->gt_items[e] == item) return 1;
    return 0;
}

static cr_status script_score(const cr_model *m, const cr_score_request *req, float *scores, uint8_t *can) {
    const script_model *sm = (const script_model *)m;
    const cr_ground_truth *vt = cr_split_truth(sm->split, CR_PART_VALID), *tt = cr_split_truth(sm->split, CR_PART_TEST);
    const int64_t level = (int64_t)sm->params->data[0];
    for (int64_t r = 0; r < req->n_rows; r++) {
        int32_t u = req->users[r];
        __atomic_store_n(&sm->scored[u], 1, __ATOMIC_RELAXED);
        can[r] = 1;
        int64_t jv = find_user(vt, u), jt = find_user(tt, u);
        for (int64_t c = 0; c < req->n_cand; c++) {
            float s = 0;
            if (jv >= 0 && in_truth(vt, jv, req->cand[c])) s = jv < level ? 1000.0f : -1000.0f;
            if (jt >= 0 && in_truth(tt, jt, req->cand[c])) s = -1000.0f;
            scores[r * req->n_cand + c] = s;
        }
    }
    return CR_OK;
}

static void script_free(cr_model *m) { (void)m; }
static const cr_model_ops script_ops = {.name = "script", .score = script_score, .save = NULL, .free = script_free};

/* The scripted fit: epoch e sets params.data[0] = levels[e] (and data[1] = e, to tell epochs apart) and
 * reports loss 1 / (e + 1); it fails with CR_ERR_IO at epoch fail_at (0-based) when fail_at >= 0. */
typedef struct {
    cr_fit fit;
    cr_slab params;
    script_model model;
    const int *levels;
    int64_t n_levels;
    int64_t epochs_called, model_calls;
    int64_t fail_at;
    int model_nomem;        /* the model callback runs out of memory (returns NULL with a NOMEM message) */
} script_fit;

static cr_status script_epoch(cr_fit *f, int64_t epoch, double *loss) {
    script_fit *sf = (script_fit *)f;
    CHECK_EQ(epoch, sf->epochs_called);
    sf->epochs_called++;
    if (epoch == sf->fail_at) return cr_fail(CR_ERR_IO, "scripted failure at epoch %lld", (long long)epoch);
    CR_ASSERT(epoch < sf->n_levels);
    sf->params.data[0] = (float)sf->levels[epoch];
    sf->params.data[1] = (float)epoch;
    *loss = 1.0 / (double)(epoch + 1);
    return CR_OK;
}

static const cr_model *script_model_of(cr_fit *f) {
    script_fit *sf = (script_fit *)f;
    sf->model_calls++;
    if (sf->model_nomem) {
        cr_fail(CR_ERR_NOMEM, "scripted: out of memory refreshing the model");
        return NULL;
    }
    return &sf->model.base;
}

/* sf must not move after this (fit is its first member; model points at params). */
static void script_fit_init(script_fit *sf, const cr_split *s, const int *levels, int64_t n_levels) {
    memset(sf, 0, sizeof *sf);
    cr_tensor t[2] = {{.name = "level", .rows = 1, .cols = 2}, {.name = "other", .rows = 3, .cols = 5}};
    CHECK_OK(cr_slab_init(&sf->params, t, 2));
    sf->params.data[0] = -1;
    const cr_interactions *v = cr_dataset_inter(cr_split_dataset(s));
    sf->model.base = (cr_model){&script_ops, v->n_users, v->n_items, v->n_domains, 0, NULL};
    sf->model.split = s;
    sf->model.params = &sf->params;
    sf->model.scored = cr_calloc((size_t)v->n_users, 1);
    CR_ASSERT(sf->model.scored);
    sf->levels = levels, sf->n_levels = n_levels;
    sf->fail_at = -1;
    sf->fit.epoch = script_epoch;
    sf->fit.model = script_model_of;
    sf->fit.params = &sf->params;
}

static void script_fit_free(script_fit *sf) {
    cr_free(sf->model.scored);
    cr_slab_free(&sf->params);
}

/* The TSV log: the header, then rows 1..n with loss 1 / epoch, the validation NDCG (want_ndcg NULL: "nan"),
 * seconds >= 0 and training seconds within them. */
static void check_log(const char *path, int n, const double *want_ndcg) {
    char *log = cr_test_read(path, NULL);
    CHECK_MSG(log != NULL, "%s not written", path);
    const char *header = "epoch\tloss\tvalid_ndcg@10\tseconds\ttrain_seconds\n";
    int ok = !strncmp(log, header, strlen(header));
    const char *p = log + strlen(header);
    int rows = 0;
    while (ok && *p) {
        int epoch = 0, used = 0;
        double loss = 0, secs = -1, train_secs = -1;
        char ndcg[32] = "";
        ok = sscanf(p, "%d\t%lf\t%31[^\t]\t%lf\t%lf\n%n", &epoch, &loss, ndcg, &secs, &train_secs, &used) == 5 && used > 0;
        if (!ok) break;
        ok = epoch == rows + 1 && fabs(loss - 1.0 / epoch) < 1e-6 && secs >= 0 && train_secs >= 0 && train_secs <= secs + 1e-3 &&
             (want_ndcg ? fabs(atof(ndcg) - want_ndcg[rows]) < 1e-6 : !strcmp(ndcg, "nan"));
        p += used;
        rows++;
    }
    if (!ok || rows != n) {
        cr_test_fail(__FILE__, __LINE__, "log %s (want %d rows) reads:\n%s", path, n, log);
    }
    free(log);
}

/* One split for all loop tests: it has validation users, and test users who never appear in validation. */
static cr_dataset *g_data;
static cr_split *g_split;
static int64_t g_nv;

static void loop_fixture(void) {
    g_data = loop_dataset("loopdata");
    g_split = loop_split(g_data, 0.5);
    g_nv = cr_split_truth(g_split, CR_PART_VALID)->n_users;
    CHECK_MSG(g_nv >= 8, "only %lld validation users", (long long)g_nv);
    CHECK(cr_split_truth(g_split, CR_PART_TEST)->n_users >= 8);
}

static void loop_fixture_free(void) {
    cr_split_free(g_split);
    cr_dataset_free(g_data);
    g_split = NULL, g_data = NULL;
}

TEST(train_loop_keeps_best_epoch_and_scores_only_validation) {
    loop_fixture();
    const int levels[] = {1, 3, 2, 5, 4};
    script_fit sf;
    script_fit_init(&sf, g_split, levels, 5);
    cr_loop_params lp = cr_loop_default_params();
    lp.epochs = 5, lp.patience = 10, lp.quiet = 1;    /* early stopping on, never reached */
    lp.log_path = cr_test_path("loop_best.tsv");
    cr_loop_report rep;
    CHECK_OK(cr_train_loop(&sf.fit, g_split, &lp, "settings", &rep));
    CHECK_EQ(rep.epochs_run, 5);
    CHECK_EQ(sf.epochs_called, 5);
    CHECK_EQ(sf.model_calls, 5);
    CHECK_EQ(rep.best_epoch, 4);
    CHECK_NEAR(rep.best_ndcg, 5.0 / (double)g_nv, 1e-12);
    CHECK(rep.seconds >= 0);
    /* the slab holds epoch 4's parameters (index 3), not the last epoch's */
    CHECK(sf.params.data[0] == 5.0f && sf.params.data[1] == 3.0f);

    /* validation users were scored, test-only users never */
    const cr_ground_truth *vt = cr_split_truth(g_split, CR_PART_VALID), *tt = cr_split_truth(g_split, CR_PART_TEST);
    for (int64_t j = 0; j < vt->n_users; j++) CHECK(sf.model.scored[vt->users[j]]);
    for (int64_t j = 0; j < tt->n_users; j++) CHECK_MSG(!sf.model.scored[tt->users[j]], "test user %d was scored", tt->users[j]);
    /* and the test part would have given a different NDCG (0), so the reported one is the validation one */
    cr_eval_params ep = cr_eval_default_params();
    ep.ks[0] = 10, ep.n_k = 1, ep.part = CR_PART_TEST;
    cr_eval_result *r = NULL;
    CHECK_OK(cr_evaluate(g_split, &sf.model.base, &ep, &r));
    CHECK_NEAR(r->mean.ndcg[0], 0.0, 0);
    cr_eval_result_free(r);

    /* the log: header and one row per epoch with the loss and the validation NDCG */
    double want_ndcg[5];
    for (int e = 0; e < 5; e++) want_ndcg[e] = levels[e] / (double)g_nv;
    check_log(lp.log_path, 5, want_ndcg);
    script_fit_free(&sf);
    loop_fixture_free();
}

TEST(train_loop_patience_stops_at_the_right_epoch) {
    loop_fixture();
    /* best at epoch 2; epochs 3 and 4 are no better (4 equals: not an improvement); patience 2 stops after 4 */
    const int levels[] = {1, 3, 2, 3, 6, 7, 8, 9};
    script_fit sf;
    script_fit_init(&sf, g_split, levels, 8);
    cr_loop_params lp = cr_loop_default_params();
    lp.epochs = 8, lp.patience = 2, lp.quiet = 1;
    cr_loop_report rep;
    CHECK_OK(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep));
    CHECK_EQ(rep.epochs_run, 4);
    CHECK_EQ(sf.epochs_called, 4);
    CHECK_EQ(rep.best_epoch, 2);
    CHECK_NEAR(rep.best_ndcg, 3.0 / (double)g_nv, 1e-12);
    CHECK(sf.params.data[0] == 3.0f && sf.params.data[1] == 1.0f);
    script_fit_free(&sf);

    /* all equal: the first epoch is the best; patience 1 stops after epoch 2 */
    const int flat[] = {2, 2, 2, 2};
    script_fit_init(&sf, g_split, flat, 4);
    lp.epochs = 4, lp.patience = 1;
    CHECK_OK(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep));
    CHECK_EQ(rep.epochs_run, 2);
    CHECK_EQ(rep.best_epoch, 1);
    CHECK(sf.params.data[1] == 0.0f);
    script_fit_free(&sf);

    /* patience 0 never stops early; the cap on epochs does */
    script_fit_init(&sf, g_split, levels, 8);
    lp.epochs = 6, lp.patience = 0;
    CHECK_OK(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep));
    CHECK_EQ(rep.epochs_run, 6);
    CHECK_EQ(rep.best_epoch, 6);
    CHECK(sf.params.data[0] == 7.0f);
    script_fit_free(&sf);
    loop_fixture_free();
}

TEST(train_loop_without_validation_keeps_last_epoch) {
    loop_fixture();
    const int levels[] = {5, 1, 2};
    script_fit sf;
    cr_loop_params lp = cr_loop_default_params();
    lp.epochs = 3, lp.patience = 1, lp.quiet = 1;
    lp.log_path = cr_test_path("loop_noval.tsv");
    cr_loop_report rep;
    /* no split at all */
    script_fit_init(&sf, g_split, levels, 3);
    CHECK_OK(cr_train_loop(&sf.fit, NULL, &lp, NULL, &rep));
    CHECK_EQ(rep.epochs_run, 3);   /* patience needs validation */
    CHECK_EQ(rep.best_epoch, 3);
    CHECK(isnan(rep.best_ndcg));
    CHECK_EQ(sf.model_calls, 0);
    CHECK(sf.params.data[0] == 2.0f);
    check_log(lp.log_path, 3, NULL);
    script_fit_free(&sf);

    /* a split whose validation part has no users behaves the same */
    cr_split *s0 = loop_split(g_data, 0.0);
    CHECK_EQ(cr_split_truth(s0, CR_PART_VALID)->n_users, 0);
    script_fit_init(&sf, s0, levels, 3);
    CHECK_OK(cr_train_loop(&sf.fit, s0, &lp, NULL, &rep));
    CHECK_EQ(rep.epochs_run, 3);
    CHECK_EQ(rep.best_epoch, 3);
    CHECK(isnan(rep.best_ndcg));
    CHECK_EQ(sf.model_calls, 0);
    CHECK(sf.params.data[0] == 2.0f);
    script_fit_free(&sf);
    cr_split_free(s0);
    loop_fixture_free();
}

/* Patience 0 is a fixed number of epochs: all run, validated, and the last is kept — no copy of the
 * parameters is made (the only allocations are the evaluation's). */
TEST(train_loop_without_early_stopping_keeps_last_epoch) {
    loop_fixture();
    const int levels[] = {1, 5, 2};
    script_fit sf;
    script_fit_init(&sf, g_split, levels, 3);
    cr_loop_params lp = cr_loop_default_params();
    lp.epochs = 3, lp.patience = 0, lp.quiet = 1;
    cr_loop_report rep;
    cr_alloc_fail_nth(1);       /* with a best-epoch copy, this would fail before the first epoch */
    cr_status st = cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep);
    cr_alloc_fail_nth(0);
    CHECK_STATUS(st, CR_ERR_NOMEM);
    CHECK_EQ(sf.epochs_called, 1);      /* the first validation's allocation failed, not a copy */
    script_fit_free(&sf);

    script_fit_init(&sf, g_split, levels, 3);
    CHECK_OK(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep));
    CHECK_EQ(rep.epochs_run, 3);
    CHECK_EQ(rep.best_epoch, 3);
    CHECK_NEAR(rep.best_ndcg, 2.0 / (double)g_nv, 1e-12);
    CHECK(sf.params.data[0] == 2.0f && sf.params.data[1] == 2.0f);
    script_fit_free(&sf);
    loop_fixture_free();
}

/* The table on stdout: the settings line once, a header, one row per epoch ("-" without validation). */
TEST(train_loop_prints_settings_and_rows) {
    loop_fixture();
    const int levels[] = {1, 4};
    script_fit sf;
    cr_loop_params lp = cr_loop_default_params();
    lp.epochs = 2, lp.patience = 0;
    cr_loop_report rep;
    const char *out_path = cr_test_path("loop_stdout.txt");
    fflush(stdout);
    int saved = dup(1);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    script_fit_init(&sf, g_split, levels, 2);
    cr_status st1 = cr_train_loop(&sf.fit, g_split, &lp, "model=script dim=2", &rep);
    script_fit_free(&sf);
    script_fit_init(&sf, g_split, levels, 2);
    cr_status st2 = cr_train_loop(&sf.fit, NULL, &lp, NULL, &rep);
    script_fit_free(&sf);
    lp.quiet = 1;
    script_fit_init(&sf, g_split, levels, 2);
    cr_status st3 = cr_train_loop(&sf.fit, g_split, &lp, "never printed", &rep);
    script_fit_free(&sf);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_OK(st1);
    CHECK_OK(st2);
    CHECK_OK(st3);
    char *out = cr_test_read(out_path, NULL);
    CHECK(out != NULL);
    char row[64];
    snprintf(row, sizeof row, "     2     0.50000  %13.4f", 4.0 / (double)g_nv);
    int ok = !strncmp(out, "model=script dim=2\n", 19) && strstr(out, "valid_ndcg@10") && strstr(out, row) &&
             strstr(out, "     1     1.00000              -") && !strstr(out, "never printed");
    /* the settings line appears once */
    const char *again = strstr(out + 1, "model=script");
    if (!ok || again) cr_test_fail(__FILE__, __LINE__, "stdout reads:\n%s", out);
    free(out);
    loop_fixture_free();
}

TEST(train_loop_errors_free_everything) {
    loop_fixture();
    const int levels[] = {1, 2, 3, 4};
    script_fit sf;
    cr_loop_params lp = cr_loop_default_params();
    lp.epochs = 4, lp.patience = 10, lp.quiet = 1;
    cr_loop_report rep;

    /* an epoch's error comes back as it is, after two good epochs; the log keeps their rows */
    script_fit_init(&sf, g_split, levels, 4);
    sf.fail_at = 2;
    lp.log_path = cr_test_path("loop_err.tsv");
    CHECK_STATUS(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "scripted failure at epoch 2");
    CHECK_EQ(rep.epochs_run, 2);
    double want[2] = {1.0 / (double)g_nv, 2.0 / (double)g_nv};
    check_log(lp.log_path, 2, want);
    script_fit_free(&sf);

    /* a model callback out of memory: CR_ERR_NOMEM with its message (was CR_ERR_ARG "gave no model") */
    script_fit_init(&sf, g_split, levels, 4);
    sf.model_nomem = 1;
    CHECK_STATUS(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep), CR_ERR_NOMEM);
    CHECK_CONTAINS(cr_errmsg(), "scripted: out of memory");
    CHECK_EQ(rep.epochs_run, 0);
    script_fit_free(&sf);

    /* a log that cannot be created: CR_ERR_IO naming it, before any epoch */
    script_fit_init(&sf, g_split, levels, 4);
    lp.log_path = cr_test_path("no/such/dir/log.tsv");
    CHECK_STATUS(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "no/such/dir/log.tsv");
    CHECK_EQ(sf.epochs_called, 0);
    lp.log_path = NULL;

    /* parameter checks */
    lp.epochs = 0;
    CHECK_STATUS(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep), CR_ERR_ARG);
    lp.epochs = 4, lp.patience = -1;
    CHECK_STATUS(cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep), CR_ERR_ARG);
    lp.patience = 10;
    script_fit_free(&sf);

    /* out of memory for the best-epoch copy (the loop's first allocation) and then in the first validation
     * (the evaluation's first allocations): CR_ERR_NOMEM comes back, the copy is freed, nothing leaks. (Only
     * the first few: cr_evaluate's later failure paths are its own tests' business.) */
    for (int64_t nth = 1; nth <= 3; nth++) {
        script_fit_init(&sf, g_split, levels, 4);
        cr_alloc_fail_nth(nth);
        cr_status st = cr_train_loop(&sf.fit, g_split, &lp, NULL, &rep);
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        CHECK(hit);
        CHECK_STATUS(st, CR_ERR_NOMEM);
        CHECK_EQ(sf.epochs_called, nth == 1 ? 0 : 1);
        if (nth == 1) CHECK_CONTAINS(cr_errmsg(), "best-epoch parameters");
        script_fit_free(&sf);
    }
    loop_fixture_free();
}

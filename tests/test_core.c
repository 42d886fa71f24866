/* test_core.c — status messages, allocation table and fault injection, arena, string pool, RNG, hash. */
#include "test.h"

TEST(core_status_and_messages) {
    CHECK_STR(cr_status_str(CR_ERR_IO), "i/o error");
    CHECK_STR(cr_status_str((cr_status)999), "unknown status");
    CHECK(cr_fail(CR_ERR_PARSE, "a.tsv:%d: expected %d fields", 3, 4) == CR_ERR_PARSE);
    CHECK_STR(cr_errmsg(), "a.tsv:3: expected 4 fields");
    CHECK_STR(cr_errhint(), "");
    cr_set_hint("use --skip-bad-lines");
    cr_errmsg_prefix("import");
    CHECK_STR(cr_errmsg(), "import: a.tsv:3: expected 4 fields");
    CHECK_STR(cr_errhint(), "use --skip-bad-lines");
    cr_fail(CR_ERR_IO, "x");
    CHECK_STR(cr_errhint(), "");   /* a new failure clears the old hint */
}

static char last_log[256];
static void capture_log(cr_log_level level, const char *msg, void *user) {
    (void)user;
    snprintf(last_log, sizeof last_log, "%d %s", (int)level, msg);
}

TEST(core_log_callback) {
    cr_log_set(capture_log, NULL, CR_LOG_INFO);
    cr_log(CR_LOG_WARN, "n=%d", 5);
    CHECK_STR(last_log, "1 n=5");
    last_log[0] = '\0';
    cr_log(CR_LOG_DEBUG, "hidden");
    CHECK_STR(last_log, "");
    cr_log_set(NULL, NULL, CR_LOG_INFO);
}

TEST(core_alloc_counts_bytes) {
    cr_alloc_stats a = cr_alloc_get_stats();
    char *p = cr_malloc(1000);
    CHECK(p);
    CHECK_EQ(cr_alloc_get_stats().live_bytes - a.live_bytes, 1000);
    p = cr_realloc(p, 3000);
    CHECK(p);
    CHECK_EQ(cr_alloc_get_stats().live_bytes - a.live_bytes, 3000);
    CHECK(cr_alloc_get_stats().peak_bytes >= a.live_bytes + 3000);
    cr_free(p);
    CHECK_EQ(cr_alloc_get_stats().live_bytes, a.live_bytes);
    CHECK(cr_calloc(SIZE_MAX / 2, 4) == NULL);   /* overflow is refused, not wrapped */
    cr_free(NULL);
}

TEST(core_alloc_fault_injection) {
    cr_alloc_fail_nth(3);
    void *a = cr_malloc(8), *b = cr_malloc(8), *c = cr_malloc(8), *d = cr_malloc(8);
    CHECK(a && b && !c && d);
    CHECK(cr_alloc_fault_hit());
    cr_free(a), cr_free(b), cr_free(d);
    cr_alloc_fail_nth(0);
    CHECK(!cr_alloc_fault_hit());
}

TEST(core_grow) {
    int32_t *v = NULL;
    int64_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK_OK(cr_grow((void **)&v, &cap, i + 1, sizeof *v));
        v[i] = i;
    }
    CHECK(cap >= 1000 && v[999] == 999);
    cr_alloc_fail_nth(1);
    CHECK_STATUS(cr_grow((void **)&v, &cap, cap + 1, sizeof *v), CR_ERR_NOMEM);
    CHECK(v[999] == 999);   /* the old block stays valid */
    cr_free(v);
}

TEST(core_arena) {
    cr_arena a;
    cr_arena_init(&a, 256);
    char *s = cr_arena_strndup(&a, "hello world", 5);
    CHECK_STR(s, "hello");
    for (int i = 0; i < 100; i++) {
        void *p = cr_arena_alloc(&a, (size_t)(i * 7 + 1), 64);
        CHECK(p && ((uintptr_t)p & 63) == 0);
        memset(p, 0xab, (size_t)(i * 7 + 1));
    }
    void *big = cr_arena_alloc(&a, 100000, 16);
    CHECK(big);
    cr_arena_reset(&a);
    CHECK_EQ(a.used, 0);
    CHECK(cr_arena_alloc(&a, 10, 8));
    cr_arena_free(&a);
}

TEST(core_strpool) {
    cr_strpool p;
    cr_strpool_init(&p);
    int64_t idx;
    CHECK_OK(cr_strpool_add(&p, "abc", 3, &idx));
    CHECK_EQ(idx, 0);
    CHECK_OK(cr_strpool_add(&p, "", 0, &idx));
    CHECK_OK(cr_strpool_add(&p, "xyz!", 3, &idx));
    CHECK_EQ(idx, 2);
    CHECK_STR(cr_strpool_get(&p, 0), "abc");
    CHECK_STR(cr_strpool_get(&p, 1), "");
    CHECK_STR(cr_strpool_get(&p, 2), "xyz");
    CHECK_EQ(cr_strpool_len(&p, 2), 3);
    CHECK_EQ(p.n_bytes, 4 + 1 + 4);
    cr_strpool_free(&p);
}

/* Reference outputs of pcg32_srandom_r(42, 54) from the PCG paper's demo program. */
TEST(core_rng_pcg32_vectors) {
    cr_rng r;
    cr_rng_seed(&r, 42u, 54u);
    const uint32_t want[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e};
    for (int i = 0; i < 6; i++) CHECK_EQ(cr_rng_u32(&r), want[i]);
}

TEST(core_rng_streams_and_ranges) {
    cr_rng a, b, c;
    cr_rng_named(&a, 7, "split");
    cr_rng_named(&b, 7, "split");
    cr_rng_named(&c, 7, "train");
    uint32_t xa = cr_rng_u32(&a);
    CHECK(xa == cr_rng_u32(&b));
    CHECK(xa != cr_rng_u32(&c));
    int counts[10] = {0};
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 100000; i++) {
        uint32_t k = cr_rng_below(&a, 10);
        CHECK(k < 10);
        counts[k]++;
        double u = cr_rng_uniform(&a);
        CHECK(u >= 0 && u < 1);
        double z = cr_rng_normal(&a);
        sum += z, sum2 += z * z;
    }
    for (int k = 0; k < 10; k++) CHECK(counts[k] > 9500 && counts[k] < 10500);
    CHECK_NEAR(sum / 100000, 0.0, 0.02);
    CHECK_NEAR(sum2 / 100000, 1.0, 0.03);
}

/* MurmurHash3 x86_32 vectors, as published with SMHasher and reproduced by Python's mmh3.hash(s, seed, signed=False). */
TEST(core_hash32_vectors) {
    CHECK_EQ(cr_hash32("", 0, 0), 0u);
    CHECK_EQ(cr_hash32("", 0, 1), 0x514E28B7u);
    CHECK_EQ(cr_hash32("", 0, 0xffffffffu), 0x81F16F39u);
    CHECK_EQ(cr_hash32("\0\0\0\0", 4, 0), 0x2362F9DEu);
    CHECK_EQ(cr_hash32("aaaa", 4, 0x9747b28cu), 0x5A97808Au);
    CHECK_EQ(cr_hash32("a", 1, 0x9747b28cu), 0x7FA09EA6u);
    CHECK_EQ(cr_hash32("abc", 3, 0), 0xB3DD93FAu);
    CHECK_EQ(cr_hash32("Hello, world!", 13, 0x9747b28cu), 0x24884CBAu);
    CHECK_EQ(cr_hash32("The quick brown fox jumps over the lazy dog", 43, 0x9747b28cu), 0x2FA826CDu);
    const char *utf8 = "\xe4\xb8\xad\xe6\x96\x87";   /* 中文 */
    CHECK_EQ(cr_hash32(utf8, 6, 0), cr_hash32(utf8, 6, 0));
    CHECK_EQ(cr_hash64("", 0), 0xcbf29ce484222325ull);
    CHECK_EQ(cr_hash64("a", 1), 0xaf63dc4c8601ec8cull);
}

TEST(core_slab_layout) {
    cr_tensor t[3] = {{"user", 5, 3, 0}, {"item", 7, 3, 0}, {"bias", 1, 7, 0}};
    cr_slab s;
    CHECK_OK(cr_slab_init(&s, t, 3));
    CHECK_EQ(s.t[0].offset, 0);
    CHECK_EQ(s.t[1].offset, 16);    /* 15 floats rounded up to 16: 64-byte aligned views */
    CHECK_EQ(s.t[2].offset, 48);
    CHECK_EQ(s.size, 64);
    CHECK(((uintptr_t)s.data & 63) == 0);
    CHECK_EQ(cr_slab_find(&s, "item"), 1);
    CHECK_EQ(cr_slab_find(&s, "nope"), -1);
    cr_rng r;
    cr_rng_named(&r, 1, "slab");
    cr_slab_normal(&s, 1, 0.1, &r);
    CHECK(cr_slab_at(&s, 1)[0] != 0 && cr_slab_at(&s, 0)[0] == 0);
    cr_slab g;
    CHECK_OK(cr_slab_like(&g, &s));
    CHECK_EQ(g.size, s.size);
    CHECK(cr_slab_at(&g, 1)[0] == 0);
    cr_slab_free(&g);
    cr_slab_free(&s);
    cr_tensor bad = {"x", -1, 2, 0};
    CHECK_STATUS(cr_slab_init(&s, &bad, 1), CR_ERR_ARG);
}

/* test_text.c — the item-text pipeline: normalisation (checked against utf8proc_map), invalid UTF-8, tokens
 * of many scripts, pinned bucket numbers, bags, the hashing record in file metadata, TF-IDF and BM25 pinned
 * to a hand-computed corpus, the item matrix (threads give the same bytes), allocation failures, and the
 * Amazon catalogue when ../shared/data is present.
 *
 * Expected tokens and buckets were also reproduced by an independent script (Python: unicodedata for
 * NFKC + casefold, mmh3.hash(token_bytes, seed ^ kind * 0x9E3779B9, signed=False) % n_buckets for buckets),
 * which agreed with this code on all 76,794 Amazon titles and texts and on 3,000 random multi-script strings. */
#include "test.h"

#include "crossrec/text.h"

#include <stdlib.h>
#include <utf8proc.h>

/* "k:token k:token ..." for the tokens of s; k is w(ord) n(-gram) c(jk) b(igram) s(ymbol). */
static char *token_string(cr_text_work *w, const cr_text_hashing *h, const char *s) {
    static char buf[8192];
    const cr_text_token *t;
    int64_t n;
    CHECK_OK(cr_text_tokenize(w, h, s, (int64_t)strlen(s), &t, &n));
    size_t at = 0;
    buf[0] = '\0';
    for (int64_t i = 0; i < n; i++) {
        CHECK_EQ(strlen(t[i].p), t[i].len);
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%c:%s", i ? " " : "", "wncbs"[t[i].kind], t[i].p);
        CHECK(at < sizeof buf);
    }
    return buf;
}

static cr_text_hashing no_ngrams(void) {
    cr_text_hashing h = cr_text_default_hashing();
    h.ngram_min = h.ngram_max = 0;
    return h;
}

static const char *normalize(cr_text_work *w, const char *s, int64_t len) {
    const char *out;
    int64_t n;
    CHECK_OK(cr_text_normalize(w, s, len < 0 ? (int64_t)strlen(s) : len, &out, &n));
    CHECK_EQ(strlen(out), n);
    return out;
}

/* ---- normalisation ---- */

TEST(text_normalize_vectors) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    CHECK_STR(normalize(w, "Café", -1), "café");                        /* accents kept, case folded */
    CHECK_STR(normalize(w, "Cafe\xcc\x81", -1), "caf\xc3\xa9");          /* e + U+0301 composes to é */
    CHECK_STR(normalize(w, "ＡＢＣ１２３", -1), "abc123");                /* full-width forms become ASCII */
    CHECK_STR(normalize(w, "\xef\xac\x81ne", -1), "fine");               /* the ligature ﬁ decomposes */
    CHECK_STR(normalize(w, "Straße STRASSE", -1), "strasse strasse");    /* ß case-folds to ss */
    CHECK_STR(normalize(w, "ΌΣΟΣ όσος", -1), "όσοσ όσοσ");               /* final sigma folds to σ */
    CHECK_STR(normalize(w, "\xe2\x84\xaa" "elvin", -1), "kelvin");       /* KELVIN SIGN */
    CHECK_STR(normalize(w, "ｶﾀｶﾅ ㌀ ①", -1), "カタカナ アパート 1");      /* half-width kana, squared word, circled digit */
    CHECK_STR(normalize(w, "co\xc2\xad" "op\xe2\x80\x8b!", -1), "coop!"); /* soft hyphen, zero-width space ignored */
    CHECK_STR(normalize(w, "a\tb\r\nc\rd\ne\x01" "f\x7f", -1), "a b c d ef"); /* controls: line ends and tab -> space */
    CHECK_STR(normalize(w, "x\0y", 3), "xy");                            /* NUL is a control character */
    CHECK_STR(normalize(w, "é\tÉ\r\n\x01", -1), "é é ");                 /* the same rules on the non-ASCII path */
    CHECK_STR(normalize(w, "", 0), "");
    CHECK_EQ(cr_text_work_replaced_total(w), 0);
    cr_text_work_free(w);
}

/* On valid UTF-8 the result is exactly utf8proc_map's with the same options, on both paths (all-ASCII and
 * general), including long runs of combining marks (the counting-sort reordering). */
TEST(text_normalize_matches_utf8proc) {
    static char marks[3 * 200 + 2];
    size_t at = 0;
    marks[at++] = 'a';
    for (int i = 0; i < 100; i++) {
        memcpy(marks + at, i % 2 ? "\xcc\x81" : "\xcc\xa3", 2);   /* U+0301 (class 230), U+0323 (class 220) */
        at += 2;
    }
    marks[at] = '\0';
    const char *cases[] = {"Hello, World! 123", "a\r\n\r\rb\t\v\fc\x1f", "Ŀ ǅ ﬃ ẞ İ ŉ ΐ", "한국어 ᄀ ㄱ ｶﾞ",
                           "\xef\xb7\xba", "e\xcc\xa3\xcc\x81 o\xcc\x81\xcc\xa3", "😀\xe2\x80\x8d👍🏽\xef\xb8\x8f",
                           "x\xc2\x85y\xc2\xa0z\xe3\x80\x80", marks};
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        utf8proc_uint8_t *ref;
        utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)cases[i], (utf8proc_ssize_t)strlen(cases[i]), &ref,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
                                              UTF8PROC_IGNORE | UTF8PROC_STRIPCC);
        CHECK(n >= 0);
        const char *got = normalize(w, cases[i], -1);
        int same = strcmp(got, (const char *)ref) == 0;
        free(ref);
        CHECK_MSG(same, "case %zu differs from utf8proc_map", i);
    }
    cr_text_work_free(w);
}

/* Policy: each maximal subpart of an ill-formed sequence becomes one U+FFFD and is counted; the text is kept. */
TEST(text_normalize_invalid_utf8) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    CHECK_STR(normalize(w, "\xff", -1), "\xef\xbf\xbd");
    CHECK_EQ(cr_text_work_replaced_last(w), 1);
    CHECK_STR(normalize(w, "A\xe2\x82" "B", -1), "a\xef\xbf\xbd" "b");   /* truncated € : one subpart */
    CHECK_EQ(cr_text_work_replaced_last(w), 1);
    CHECK_STR(normalize(w, "\xed\xa0\x80", -1), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");   /* surrogate: 3 */
    CHECK_EQ(cr_text_work_replaced_last(w), 3);
    CHECK_STR(normalize(w, "\xc0\x80x", -1), "\xef\xbf\xbd\xef\xbf\xbdx");   /* overlong NUL: 2 */
    CHECK_STR(normalize(w, "ok\xf0\x9f\x98", -1), "ok\xef\xbf\xbd");        /* emoji cut at the end */
    CHECK_STR(normalize(w, "\xf4\x90\x80\x80", -1), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_EQ(cr_text_work_replaced_total(w), 1 + 1 + 3 + 2 + 1 + 4);
    CHECK_STR(normalize(w, "fine", -1), "fine");
    CHECK_EQ(cr_text_work_replaced_last(w), 0);

    /* The replacement character is a symbol (So), so a bad byte neither drops the item nor glues words. */
    cr_text_hashing h = no_ngrams();
    CHECK_STR(token_string(w, &h, "Blue\xff" "Pen"), "w:blue s:\xef\xbf\xbd w:pen");
    cr_text_bag bag = {0};
    CHECK_OK(cr_text_hash_bag(w, &h, "Blue\xff\xfe Pen", 10, &bag));
    CHECK_EQ(bag.n_tokens, 4);
    CHECK_EQ(bag.n, 3);
    CHECK_EQ(bag.n_replaced, 2);
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
}

TEST(text_normalize_limits) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    const char *out;
    int64_t n;
    char *big = malloc((size_t)CR_TEXT_MAX_LEN + 1);
    CHECK(big);
    memset(big, 'a', (size_t)CR_TEXT_MAX_LEN + 1);
    CHECK_STATUS(cr_text_normalize(w, big, CR_TEXT_MAX_LEN + 1, &out, &n), CR_ERR_LIMIT);
    CHECK_CONTAINS(cr_errmsg(), "16777217 bytes");
    CHECK_STATUS(cr_text_normalize(w, big, -1, &out, &n), CR_ERR_ARG);
    free(big);
    cr_text_work_free(w);
}

/* ---- tokens ---- */

TEST(text_tokens_cjk) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = cr_text_default_hashing();   /* n-grams on: CJK runs never get them */
    CHECK_STR(token_string(w, &h, "蓝色钢笔"), "c:蓝 c:色 c:钢 c:笔 b:蓝色 b:色钢 b:钢笔");
    CHECK_STR(token_string(w, &h, "笔"), "c:笔");
    /* Hiragana, Katakana (the middle dot ・ is punctuation, ー a letter), half-width forms via NFKC, Hangul. */
    CHECK_STR(token_string(w, &h, "ひらがな・カーテン ｶﾅ 한국어"),
              "c:ひ c:ら c:が c:な b:ひら b:らが b:がな c:カ c:ー c:テ c:ン b:カー b:ーテ b:テン c:カ c:ナ b:カナ "
              "c:한 c:국 c:어 b:한국 b:국어");
    /* Script changes end runs and words: Latin, digits and Han in one string. */
    h = no_ngrams();
    CHECK_STR(token_string(w, &h, "iPhone手机壳3个"), "w:iphone c:手 c:机 c:壳 b:手机 b:机壳 w:3 c:个");
    cr_text_work_free(w);
}

TEST(text_tokens_symbols_and_emoji) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = no_ngrams();
    /* Each So code point is a token; VS16 and ZWJ are ignorable (removed), the skin tone is Sk (separator),
     * ™ is "tm" under NFKC, math and currency symbols separate. */
    CHECK_STR(token_string(w, &h, "I ❤\xef\xb8\x8f tea😀👍🏽 ©2020 Brand™ a+b=c $5 €"),
              "w:i s:❤ w:tea s:😀 s:👍 s:© w:2020 w:brandtm w:a w:b w:c w:5");
    CHECK_STR(token_string(w, &h, "👨\xe2\x80\x8d👩\xe2\x80\x8d👧"), "s:👨 s:👩 s:👧");
    cr_text_work_free(w);
}

TEST(text_tokens_words_and_ngrams) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = cr_text_default_hashing();
    CHECK_STR(token_string(w, &h, "ab"), "w:ab n:<ab n:<ab> n:ab>");
    CHECK_STR(token_string(w, &h, "Café"),
              "w:café n:<ca n:<caf n:<café n:caf n:café n:café> n:afé n:afé> n:fé>");
    /* n-grams count code points: "ß" folds to "ss" first. */
    h.ngram_min = 2, h.ngram_max = 2;
    CHECK_STR(token_string(w, &h, "ẞé"), "w:ssé n:<s n:ss n:sé n:é>");
    /* n = 1 gives each code point but never a lone boundary mark. */
    h.ngram_min = 1, h.ngram_max = 1;
    CHECK_STR(token_string(w, &h, "Ok"), "w:ok n:o n:k");
    cr_text_work_free(w);
}

/* Punctuation separates; '.' and ',' between numerals stay; numbers get no n-grams, words with digits do. */
TEST(text_tokens_punctuation_and_numbers) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = no_ngrams();
    CHECK_STR(token_string(w, &h, "3-Ring Binder, 1/2\" (Pack of 2.5mm) 1,000 $9.99; v1.2. 3.,4 end."),
              "w:3 w:ring w:binder w:1 w:2 w:pack w:of w:2.5mm w:1,000 w:9.99 w:v1.2 w:3 w:4 w:end");
    CHECK_STR(token_string(w, &h, "don't men's e-mail_address #1 ½ ²"),
              "w:don w:t w:men w:s w:e w:mail w:address w:1 w:1 w:2 w:2");
    h = cr_text_default_hashing();
    CHECK_STR(token_string(w, &h, "1,000 x2"), "w:1,000 w:x2 n:<x2 n:<x2> n:x2>");
    CHECK_STR(token_string(w, &h, "٣٤ ①"), "w:٣٤ w:1");   /* Arabic-Indic digits are numbers too */
    cr_text_work_free(w);
}

TEST(text_tokens_empty_and_punctuation_only) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = cr_text_default_hashing();
    CHECK_STR(token_string(w, &h, ""), "");
    CHECK_STR(token_string(w, &h, "  !!! ... --- /// \t\r\n «» 、。"), "");
    cr_text_bag bag = {0};
    CHECK_OK(cr_text_hash_bag(w, &h, "", 0, &bag));
    CHECK_EQ(bag.n, 0);
    CHECK_EQ(bag.n_tokens, 0);
    CHECK_OK(cr_text_hash_bag(w, &h, "?!", 2, &bag));
    CHECK_EQ(bag.n, 0);
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
}

/* 1 MiB of short words, then one word of 300,000 letters: every token is there, the last ones included. */
TEST(text_tokens_long_input) {
    const int64_t words = 200000, long_len = 300000;
    int64_t len = words * 6 + long_len;
    char *s = malloc((size_t)len);
    CHECK(s);
    for (int64_t i = 0; i < words; i++) memcpy(s + 6 * i, i % 2 ? "Alpha " : "B\xc3\xaata ", 6);   /* "Bêta " */
    for (int64_t i = 0; i < long_len; i++) s[words * 6 + i] = (char)('a' + i % 26);
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = cr_text_default_hashing();
    const cr_text_token *t;
    int64_t n;
    CHECK_OK(cr_text_tokenize(w, &h, s, len, &t, &n));
    /* a word of L code points has (L+2-n+1) n-grams of each length n: 3 L - 3 for n = 3..5 */
    int64_t per_alpha = 1 + (3 * 5 - 3), per_beta = 1 + (3 * 4 - 3), per_long = 1 + (3 * long_len - 3);
    CHECK_EQ(n, words / 2 * (per_alpha + per_beta) + per_long);
    CHECK_EQ(t[n - 1 - 3 * long_len + 3].len, long_len);          /* the long word, whole */
    CHECK_EQ(t[n - 1 - 3 * long_len + 3].kind, CR_TEXT_TOK_WORD);
    CHECK_STR(t[n - 1].p, "kl>");   /* the last letter is 'a' + 299999 % 26 = 'l'; n-grams by start, then length */
    CHECK_STR(t[n - 2].p, "jkl>");
    cr_text_bag bag = {0};
    CHECK_OK(cr_text_hash_bag(w, &h, s, len, &bag));
    CHECK_EQ(bag.n_tokens, n);
    int64_t sum = 0;
    for (int64_t i = 0; i < bag.n; i++) {
        sum += bag.count[i];
        if (i) CHECK(bag.bucket[i - 1] < bag.bucket[i]);
    }
    CHECK_EQ(sum, n);
    int32_t alpha = cr_text_bucket(&h, CR_TEXT_TOK_WORD, "alpha", 5);
    int64_t k = 0;
    while (k < bag.n && bag.bucket[k] != alpha) k++;
    CHECK(k < bag.n && bag.count[k] >= words / 2);
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
    free(s);
}

/* ---- buckets ---- */

/* Derivation, by hand from the published MurmurHash3_x86_32 vectors (pinned in core_hash32_vectors) and, for
 * salted seeds, from Python's mmh3.hash(token_bytes, seed, signed=False):
 *   word "hello", seed 0:   h = 0x248BFA47; 2^20 buckets -> low 20 bits 0xBFA47 = 784967; 1000 buckets -> 351
 *   word "abc", seed 0:     h = 0xB3DD93FA -> 0xD93FA = 889850
 *   word "a", seed 0x9747B28C: h = 0x7FA09EA6 -> 0x09EA6 = 40614
 *   n-gram "<ab":   seed 0 ^ 1 * 0x9E3779B9 = 0x9E3779B9, h = 0x08A74722 -> 0xA7722... = 476962
 *   CJK "蓝" (E8 93 9D): seed 2 * 0x9E3779B9 mod 2^32 = 0x3C6EF372, h = 0xD116D8D8 -> 448728
 *   bigram "蓝色":  seed 3 * 0x9E3779B9 mod 2^32 = 0xDAA66D2B, h = 0xAC1FEB83 -> 1043331
 *   symbol "😀":    seed 4 * 0x9E3779B9 mod 2^32 = 0x78DDE6E4, h = 0x4B315344 -> 86852 */
TEST(text_bucket_vectors) {
    cr_text_hashing h = cr_text_default_hashing();
    CHECK_EQ(h.n_buckets, 1 << 20);
    CHECK_EQ(h.seed, 0);
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_WORD, "hello", 5), 784967);
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_WORD, "abc", 3), 889850);
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_NGRAM, "<ab", 3), 476962);
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_CJK, "蓝", 3), 448728);
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_BIGRAM, "蓝色", 6), 1043331);
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_SYMBOL, "😀", 4), 86852);
    /* the same bytes as another kind land elsewhere */
    CHECK(cr_text_bucket(&h, CR_TEXT_TOK_NGRAM, "abc", 3) != 889850);
    h.n_buckets = 1000;
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_WORD, "hello", 5), 351);
    h.n_buckets = 1 << 20, h.seed = 0x9747B28Cu;
    CHECK_EQ(cr_text_bucket(&h, CR_TEXT_TOK_WORD, "a", 1), 40614);
}

/* String -> tokens -> bag, end to end; the buckets are those of text_bucket_vectors plus the other tokens',
 * computed the same way. */
TEST(text_bag_vectors) {
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = cr_text_default_hashing();
    cr_text_bag bag = {0};
    CHECK_OK(cr_text_hash_bag(w, &h, "蓝色钢笔", -1 + (int64_t)sizeof "蓝色钢笔", &bag));
    int32_t want[] = {152170, 184176, 341598, 448728, 579193, 782760, 1043331};   /* 笔 钢笔 钢 蓝 色 色钢 蓝色 */
    CHECK_EQ(bag.n, 7);
    for (int i = 0; i < 7; i++) {
        CHECK_EQ(bag.bucket[i], want[i]);
        CHECK_EQ(bag.count[i], 1);
    }
    CHECK_OK(cr_text_hash_bag(w, &h, "AB ab", 5, &bag));
    int32_t want_ab[] = {476962, 671167, 781535, 1038175};   /* <ab ab> <ab> ab, each twice */
    CHECK_EQ(bag.n, 4);
    CHECK_EQ(bag.n_tokens, 8);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(bag.bucket[i], want_ab[i]);
        CHECK_EQ(bag.count[i], 2);
    }
    /* one bucket: everything collides, counts add up */
    h = no_ngrams();
    h.n_buckets = 1;
    CHECK_OK(cr_text_hash_bag(w, &h, "the cat the hat 😀", 18, &bag));
    CHECK_EQ(bag.n, 1);
    CHECK_EQ(bag.bucket[0], 0);
    CHECK_EQ(bag.count[0], 5);
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
}

/* ---- the hashing record ---- */

TEST(text_hashing_params) {
    cr_text_hashing h = cr_text_default_hashing();
    CHECK(cr_text_check_hashing(&h) == NULL);
    h.ngram_min = h.ngram_max = 0;
    CHECK(cr_text_check_hashing(&h) == NULL);
    h.ngram_max = 3;
    CHECK_CONTAINS(cr_text_check_hashing(&h), "ngram_min");
    h = cr_text_default_hashing(), h.ngram_max = 17;
    CHECK_CONTAINS(cr_text_check_hashing(&h), "ngram_min..ngram_max");
    h = cr_text_default_hashing(), h.n_buckets = 0;
    CHECK_CONTAINS(cr_text_check_hashing(&h), "n_buckets");
    h = cr_text_default_hashing(), h.hash_id = 2;
    CHECK_CONTAINS(cr_text_check_hashing(&h), "hash_id");
    h = cr_text_default_hashing(), h.version = 2;
    CHECK_CONTAINS(cr_text_check_hashing(&h), "version");
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_bag bag = {0};
    CHECK_STATUS(cr_text_hash_bag(w, &h, "x", 1, &bag), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "text hashing: version");
    const cr_text_token *t;
    int64_t n;
    CHECK_STATUS(cr_text_tokenize(w, &h, "x", 1, &t, &n), CR_ERR_ARG);
    cr_text_work_free(w);
}

static void write_meta(const char *name, int64_t id, int64_t version, int64_t buckets, int with_nmax) {
    cr_filew *fw;
    CHECK_OK(cr_filew_new(&fw, "CRM", 1));
    CHECK_OK(cr_filew_meta_i64(fw, "text.hash", id));
    CHECK_OK(cr_filew_meta_i64(fw, "text.version", version));
    CHECK_OK(cr_filew_meta_i64(fw, "text.seed", 7));
    CHECK_OK(cr_filew_meta_i64(fw, "text.buckets", buckets));
    CHECK_OK(cr_filew_meta_i64(fw, "text.ngram_min", 3));
    if (with_nmax) CHECK_OK(cr_filew_meta_i64(fw, "text.ngram_max", 5));
    CHECK_OK(cr_filew_commit(fw, cr_test_path(name)));
    cr_filew_free(fw);
}

static cr_status read_meta(const char *name, cr_text_hashing *h) {
    cr_file *f;
    CHECK_OK(cr_file_open(&f, cr_test_path(name), "CRM", 1));
    cr_status st = cr_text_hashing_read(f, h);
    cr_file_close(f);
    return st;
}

TEST(text_hashing_file_record) {
    cr_text_hashing h = cr_text_default_hashing(), r;
    h.seed = 0xDEADBEEFu, h.n_buckets = 12345, h.ngram_min = 2, h.ngram_max = 4;
    cr_filew *fw;
    CHECK_OK(cr_filew_new(&fw, "CRM", 1));
    CHECK_OK(cr_text_hashing_write(fw, &h));
    CHECK_OK(cr_filew_commit(fw, cr_test_path("text.crm")));
    cr_filew_free(fw);
    cr_file *f;
    CHECK_OK(cr_file_open(&f, cr_test_path("text.crm"), "CRM", 1));
    CHECK_OK(cr_text_hashing_read(f, &r));
    CHECK_EQ(r.hash_id, CR_TEXT_HASH_MURMUR3_32);
    CHECK_EQ(r.version, CR_TEXT_VERSION);
    CHECK_EQ(r.seed, 0xDEADBEEFu);
    CHECK_EQ(r.n_buckets, 12345);
    CHECK_EQ(r.ngram_min, 2);
    CHECK_EQ(r.ngram_max, 4);
    const char *uni;
    CHECK_OK(cr_file_get_str(f, "text.unicode", &uni));
    CHECK_STR(uni, utf8proc_unicode_version());
    cr_file_close(f);

    write_meta("ok.crm", 1, 1, 99, 1);
    CHECK_OK(read_meta("ok.crm", &r));
    CHECK_EQ(r.seed, 7);
    CHECK_EQ(r.n_buckets, 99);
    write_meta("unknown_hash.crm", 7, 1, 99, 1);
    CHECK_STATUS(read_meta("unknown_hash.crm", &r), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "text.hash is 7");
    write_meta("newer.crm", 1, 2, 99, 1);
    CHECK_STATUS(read_meta("newer.crm", &r), CR_ERR_VERSION);
    write_meta("zero_buckets.crm", 1, 1, 0, 1);
    CHECK_STATUS(read_meta("zero_buckets.crm", &r), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "buckets 0");
    write_meta("missing.crm", 1, 1, 99, 0);
    CHECK_STATUS(read_meta("missing.crm", &r), CR_ERR_FORMAT);
    CHECK_CONTAINS(cr_errmsg(), "text.ngram_max");
    CHECK_EQ(r.seed, 7);   /* failed reads leave *h alone */

    CHECK_OK(cr_filew_new(&fw, "CRM", 1));
    h.n_buckets = 0;
    CHECK_STATUS(cr_text_hashing_write(fw, &h), CR_ERR_ARG);
    cr_filew_free(fw);
}

/* ---- weights ---- */

/* Three documents, no n-grams: d0 "apple banana", d1 "apple cherry cherry", d2 "banana".
 * N = 3; df apple 2, banana 2, cherry 1; lengths 2, 3, 1, average 2.
 * TF-IDF: idf(df 2) = ln(4/3) + 1 = 1.2876821, idf(df 1) = ln(4/2) + 1 = 1.6931472.
 *   d1 raw (1.2876821, 2 * 1.6931472 = 3.3862944), norm 3.6228634 -> (0.35543247, 0.93470196);
 *   d0 -> (0.70710678, 0.70710678); d2 -> (1).
 * BM25, k1 1.2, b 0.75: idf(df 2) = ln(1 + 1.5 / 2.5) = ln 1.6 = 0.47000363, idf(df 1) = ln(1 + 2.5 / 1.5) =
 *   0.98082925. d1: K = 1.2 * (0.25 + 0.75 * 3 / 2) = 1.65; apple 0.47000363 * 2.2 / 2.65 = 0.39019169,
 *   cherry 0.98082925 * 2 * 2.2 / 3.65 = 1.18236951. d2: K = 1.2 * 0.625 = 0.75; banana 0.47000363 * 2.2 /
 *   1.75 = 0.59086171. d0: K = 1.2; 0.47000363 * 2.2 / 2.2 = 0.47000363 each. */
static const char *DOCS[3] = {"apple banana", "Apple cherry CHERRY", "banana"};

static void bag_of(cr_text_work *w, const cr_text_hashing *h, const char *s, cr_text_bag *bag) {
    CHECK_OK(cr_text_hash_bag(w, h, s, (int64_t)strlen(s), bag));
}

/* Weight of token `word` in a weighed bag. */
static float weight_of(const cr_text_hashing *h, const cr_text_bag *bag, const float *wt, const char *word) {
    int32_t b = cr_text_bucket(h, CR_TEXT_TOK_WORD, word, (int64_t)strlen(word));
    for (int64_t i = 0; i < bag->n; i++)
        if (bag->bucket[i] == b) return wt[i];
    cr_test_fail(__FILE__, __LINE__, "no bucket for %s", word);
}

TEST(text_tfidf_bm25_pinned) {
    cr_text_hashing h = no_ngrams();
    int32_t a = cr_text_bucket(&h, CR_TEXT_TOK_WORD, "apple", 5), b = cr_text_bucket(&h, CR_TEXT_TOK_WORD, "banana", 6),
            c = cr_text_bucket(&h, CR_TEXT_TOK_WORD, "cherry", 6);
    CHECK(a != b && b != c && a != c);   /* no collision among the three words */
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_stats st;
    CHECK_OK(cr_text_stats_init(&st, h.n_buckets));
    cr_text_bag bag = {0};
    for (int d = 0; d < 3; d++) {
        bag_of(w, &h, DOCS[d], &bag);
        CHECK_OK(cr_text_stats_add(&st, &bag));
    }
    CHECK_EQ(st.n_docs, 3);
    CHECK_EQ(st.n_tokens, 6);
    CHECK_EQ(st.df[a], 2);
    CHECK_EQ(st.df[b], 2);
    CHECK_EQ(st.df[c], 1);

    float wt[8];
    cr_text_weight_params p = cr_text_default_weight_params();
    CHECK_EQ(p.weighting, CR_TEXT_W_TFIDF);
    bag_of(w, &h, DOCS[1], &bag);
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(weight_of(&h, &bag, wt, "apple"), 0.35543247, 1e-6);
    CHECK_NEAR(weight_of(&h, &bag, wt, "cherry"), 0.93470196, 1e-6);
    p.l2_normalize = 0;
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(weight_of(&h, &bag, wt, "apple"), 1.2876821, 1e-6);
    CHECK_NEAR(weight_of(&h, &bag, wt, "cherry"), 3.3862944, 1e-6);

    p.weighting = CR_TEXT_W_BM25;
    CHECK_NEAR(p.k1, 1.2, 0);
    CHECK_NEAR(p.b, 0.75, 0);
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(weight_of(&h, &bag, wt, "apple"), 0.39019169, 1e-6);
    CHECK_NEAR(weight_of(&h, &bag, wt, "cherry"), 1.18236951, 1e-6);
    bag_of(w, &h, DOCS[2], &bag);
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(wt[0], 0.59086171, 1e-6);
    bag_of(w, &h, DOCS[0], &bag);
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(wt[0], 0.47000363, 1e-6);
    CHECK_NEAR(wt[1], 0.47000363, 1e-6);
    /* a token the corpus never saw: df 0, BM25 idf ln(1 + 3.5 / 0.5) = ln 8; length 1, K = 0.75 */
    bag_of(w, &h, "durian", &bag);
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(wt[0], log(8.0) * 2.2 / 1.75, 1e-6);
    p.weighting = CR_TEXT_W_COUNT;
    bag_of(w, &h, DOCS[1], &bag);
    CHECK_OK(cr_text_weigh(&st, &p, &bag, wt));
    CHECK_NEAR(weight_of(&h, &bag, wt, "cherry"), 2, 0);

    p.b = 2;
    CHECK_STATUS(cr_text_weigh(&st, &p, &bag, wt), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "b must be");
    /* bags from another hashing do not fit */
    cr_text_stats small;
    CHECK_OK(cr_text_stats_init(&small, 10));
    CHECK_STATUS(cr_text_stats_add(&small, &bag), CR_ERR_ARG);
    CHECK_EQ(small.n_docs, 0);
    cr_text_stats_free(&small);
    CHECK_STATUS(cr_text_stats_init(&small, 0), CR_ERR_ARG);
    cr_text_stats_free(&st);
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
}

/* ---- the item matrix ---- */

static cr_dataset *docs_dataset(void) {
    const char *items = "item\tdomain\ttitle\ttext\n"
                        "i0\tfood\tapple\tbanana\n"
                        "i1\tfood\tApple cherry\tCHERRY\n"
                        "i2\tfood\t\tbanana\n"
                        "i3\tfood\t\t\n";
    const char *inter = "user\titem\ttimestamp\tvalue\nu0\ti0\t1\t1\n";
    cr_import_params p = cr_import_default_params();
    p.interactions[p.n_interactions++] = cr_test_write("text_inter.tsv", inter, -1);
    p.items[p.n_items++] = cr_test_write("text_items.tsv", items, -1);
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &p, NULL));
    return d;
}

static float csr_at(const cr_text_csr *m, int64_t r, int32_t col) {
    for (int64_t k = m->row_ptr[r]; k < m->row_ptr[r + 1]; k++)
        if (m->col[k] == col) return m->val[k];
    return -1;
}

/* The documents above as items (title and text joined), plus an item without text: a fourth document. */
TEST(text_item_matrix_pinned) {
    cr_dataset *d = docs_dataset();
    cr_text_hashing h = no_ngrams();
    int32_t a = cr_text_bucket(&h, CR_TEXT_TOK_WORD, "apple", 5), c = cr_text_bucket(&h, CR_TEXT_TOK_WORD, "cherry", 6);
    cr_text_matrix_params p = cr_text_default_matrix_params();
    p.threads = 1;
    p.weight.weighting = CR_TEXT_W_BM25;
    p.weight.l2_normalize = 0;
    cr_text_csr m;
    cr_text_stats st;
    CHECK_OK(cr_text_item_matrix(d, &h, &p, &m, &st));
    CHECK_EQ(m.n_rows, 4);
    CHECK_EQ(m.n_cols, 1 << 20);
    CHECK_EQ(m.nnz, 2 + 2 + 1);
    CHECK_EQ(m.row_ptr[4] - m.row_ptr[3], 0);
    CHECK_EQ(st.n_docs, 4);
    CHECK_EQ(st.n_tokens, 6);
    CHECK_EQ(st.n_empty, 1);
    CHECK_EQ(st.df[a], 2);
    /* N = 4, average length 1.5: d1 K = 1.2 * (0.25 + 0.75 * 3 / 1.5) = 2.1; idf(df 2) = ln(1 + 2.5 / 2.5),
     * idf(df 1) = ln(1 + 3.5 / 1.5) */
    CHECK_NEAR(csr_at(&m, 1, a), log(2.0) * 2.2 / 3.1, 1e-6);
    CHECK_NEAR(csr_at(&m, 1, c), log(1 + 3.5 / 1.5) * 2 * 2.2 / 4.1, 1e-6);
    cr_text_csr_free(&m);
    cr_text_stats_free(&st);

    /* TF-IDF, title only: i1 is "apple cherry", N = 4, df apple 2, cherry 1 */
    p.fields = CR_TEXT_FIELD_TITLE;
    p.weight = cr_text_default_weight_params();
    CHECK_OK(cr_text_item_matrix(d, &h, &p, &m, NULL));
    CHECK_EQ(m.nnz, 1 + 2);
    double ia = log(5.0 / 3) + 1, ic = log(5.0 / 2) + 1, nn = sqrt(ia * ia + ic * ic);
    CHECK_NEAR(csr_at(&m, 1, a), ia / nn, 1e-6);
    CHECK_NEAR(csr_at(&m, 1, c), ic / nn, 1e-6);
    CHECK_NEAR(csr_at(&m, 0, a), 1, 1e-6);
    cr_text_csr_free(&m);

    p.fields = 0;
    CHECK_STATUS(cr_text_item_matrix(d, &h, &p, &m, NULL), CR_ERR_ARG);
    p.fields = CR_TEXT_FIELD_TITLE, p.weight.k1 = -1;
    CHECK_STATUS(cr_text_item_matrix(d, &h, &p, &m, NULL), CR_ERR_ARG);
    CHECK(m.row_ptr == NULL);
    cr_dataset_free(d);
}

/* A synthetic catalogue: rows sorted, unit norm, the statistics consistent, and the same bytes for 1, 2 and
 * 3 threads. */
TEST(text_item_matrix_threads) {
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = 200, sp.n_items = 777, sp.n_inter = 2000;
    const char *dir = cr_test_path("text_synth");
    CHECK_OK(cr_synth_write(dir, &sp));
    char pi[512], pt[512];
    snprintf(pi, sizeof pi, "%s/interactions.tsv", dir);
    snprintf(pt, sizeof pt, "%s/items.tsv", dir);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = pi;
    ip.items[ip.n_items++] = pt;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &ip, NULL));
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 4096;
    cr_text_matrix_params p = cr_text_default_matrix_params();
    cr_text_csr m[3];
    cr_text_stats st;
    for (int t = 0; t < 3; t++) {
        p.threads = t + 1;
        CHECK_OK(cr_text_item_matrix(d, &h, &p, &m[t], t == 0 ? &st : NULL));
    }
    CHECK_EQ(m[0].n_rows, 777);
    int64_t df_sum = 0;
    for (int64_t b = 0; b < h.n_buckets; b++) df_sum += st.df[b];
    CHECK_EQ(df_sum, m[0].nnz);
    CHECK_EQ(st.n_empty, 0);
    for (int64_t r = 0; r < m[0].n_rows; r++) {
        double ss = 0;
        for (int64_t k = m[0].row_ptr[r]; k < m[0].row_ptr[r + 1]; k++) {
            if (k > m[0].row_ptr[r]) CHECK(m[0].col[k - 1] < m[0].col[k]);
            ss += (double)m[0].val[k] * m[0].val[k];
        }
        CHECK_NEAR(ss, 1, 1e-5);
    }
    for (int t = 1; t < 3; t++) {
        CHECK_EQ(m[t].nnz, m[0].nnz);
        CHECK(!memcmp(m[t].row_ptr, m[0].row_ptr, (size_t)(m[0].n_rows + 1) * sizeof *m[0].row_ptr));
        CHECK(!memcmp(m[t].col, m[0].col, (size_t)m[0].nnz * sizeof *m[0].col));
        CHECK(!memcmp(m[t].val, m[0].val, (size_t)m[0].nnz * sizeof *m[0].val));
    }
    for (int t = 0; t < 3; t++) cr_text_csr_free(&m[t]);
    cr_text_stats_free(&st);
    cr_dataset_free(d);
}

/* ---- allocation failures: every failing allocation gives CR_ERR_NOMEM and leaks nothing ---- */

/* Runs step(n) with the n-th allocation failing, for n = 1, 2, ... until a run hits no fault. */
static void fail_each_allocation(cr_status (*step)(void), const char *what) {
    int64_t n;
    for (n = 1; n < 10000; n++) {
        int64_t live = cr_alloc_get_stats().n_live;
        cr_alloc_fail_nth(n);
        cr_status st = step();
        int hit = cr_alloc_fault_hit();
        cr_alloc_fail_nth(0);
        CHECK_MSG(cr_alloc_get_stats().n_live == live, "%s: allocation %lld failing leaked", what, (long long)n);
        if (!hit) {
            CHECK_MSG(st == CR_OK, "%s: %s", what, cr_errmsg());
            break;
        }
        CHECK_MSG(st == CR_ERR_NOMEM, "%s: allocation %lld failing gave %s", what, (long long)n, cr_status_str(st));
    }
    CHECK_MSG(n > 1, "%s allocates nothing?", what);
    printf("     %s: each of %lld allocations failed in turn\n", what, (long long)n - 1);
}

static const char *MIXED = "Blue Café ＡＢＣ 蓝色钢笔 😀 e\xcc\x81\xcc\xa3 \xff 3-ring 1,000";

static cr_status step_tokenize(void) {
    cr_text_work *w;
    cr_status st = cr_text_work_new(&w);
    if (st) return st;
    cr_text_hashing h = cr_text_default_hashing();
    const cr_text_token *t;
    int64_t n;
    st = cr_text_tokenize(w, &h, MIXED, (int64_t)strlen(MIXED), &t, &n);
    cr_text_work_free(w);
    return st;
}

static cr_status step_bag_and_weights(void) {
    cr_text_work *w;
    cr_status st = cr_text_work_new(&w);
    if (st) return st;
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 512;
    cr_text_bag bag = {0};
    cr_text_stats stats;
    float wt[512];
    if (!(st = cr_text_stats_init(&stats, h.n_buckets))) {
        if (!(st = cr_text_hash_bag(w, &h, MIXED, (int64_t)strlen(MIXED), &bag)) && !(st = cr_text_stats_add(&stats, &bag))) {
            cr_text_weight_params p = cr_text_default_weight_params();
            st = cr_text_weigh(&stats, &p, &bag, wt);
        }
        cr_text_stats_free(&stats);
    }
    cr_text_bag_free(&bag);
    cr_text_work_free(w);
    return st;
}

static cr_dataset *fault_dataset;

static cr_status step_item_matrix(void) {
    cr_text_hashing h = cr_text_default_hashing();
    h.n_buckets = 1024;
    cr_text_matrix_params p = cr_text_default_matrix_params();
    p.threads = 1;
    cr_text_csr m;
    cr_text_stats st;
    cr_status s = cr_text_item_matrix(fault_dataset, &h, &p, &m, &st);
    if (s == CR_OK) CHECK_EQ(m.n_rows, 4);
    cr_text_csr_free(&m);
    cr_text_stats_free(&st);
    return s;
}

TEST(text_alloc_failures) {
    fail_each_allocation(step_tokenize, "tokenize");
    fail_each_allocation(step_bag_and_weights, "bag and weights");
    fault_dataset = docs_dataset();
    fail_each_allocation(step_item_matrix, "item matrix");
    cr_dataset_free(fault_dataset);
}

/* ---- the Amazon catalogue ---- */

TEST(text_amazon_item_matrix) {
    const char *root = cr_test_shared_data();
    if (!root) cr_test_skip("../shared/data not present");
    char pi[512], pt[512];
    snprintf(pi, sizeof pi, "%s/amazon-art-office/interactions.tsv", root);
    snprintf(pt, sizeof pt, "%s/amazon-art-office/items.tsv", root);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = pi;
    ip.items[ip.n_items++] = pt;
    cr_dataset *d = NULL;
    CHECK_OK(cr_dataset_import(&d, &ip, NULL));
    int64_t n_items = cr_dataset_inter(d)->n_items;
    CHECK_EQ(n_items, 38396);

    /* Titles alone, one thread, with a reused bag: the per-text cost of the pipeline. */
    cr_text_work *w;
    CHECK_OK(cr_text_work_new(&w));
    cr_text_hashing h = cr_text_default_hashing();
    cr_text_bag bag = {0};
    int64_t tokens = 0;
    double t0 = cr_now();
    for (int32_t i = 0; i < n_items; i++) {
        const char *s = cr_dataset_item_title(d, i);
        CHECK_OK(cr_text_hash_bag(w, &h, s, (int64_t)strlen(s), &bag));
        tokens += bag.n_tokens;
    }
    double t_titles = cr_now() - t0;
    cr_text_bag_free(&bag);
    cr_text_work_free(w);

    cr_text_csr m;
    cr_text_stats st;
    cr_text_matrix_params p = cr_text_default_matrix_params();
    t0 = cr_now();
    CHECK_OK(cr_text_item_matrix(d, &h, &p, &m, &st));
    double t_matrix = cr_now() - t0;
    printf("     amazon: %lld titles -> %lld tokens in %.0f ms (1 thread); title+text matrix %lld x %lld, %lld nonzeros "
           "in %.0f ms\n",
           (long long)n_items, (long long)tokens, t_titles * 1e3, (long long)m.n_rows, (long long)m.n_cols,
           (long long)m.nnz, t_matrix * 1e3);
    CHECK_EQ(m.n_rows, n_items);
    CHECK_EQ(st.n_docs, n_items);
    CHECK_EQ(st.n_empty, 0);          /* every item has a title */
    CHECK_EQ(st.n_replaced, 0);       /* the importer already requires valid UTF-8 */
    CHECK(tokens > n_items * 20);     /* titles average a few words, each with its n-grams */
    CHECK(m.nnz > n_items * 30 && m.nnz < st.n_tokens);
    /* Every item's text starts with its category path ("arts crafts sewing ..." / "office products ..."). */
    CHECK(st.df[cr_text_bucket(&h, CR_TEXT_TOK_WORD, "arts", 4)] >= 18639);
    CHECK(st.df[cr_text_bucket(&h, CR_TEXT_TOK_WORD, "office", 6)] >= 19757);
    cr_text_csr_free(&m);
    cr_text_stats_free(&st);
    cr_dataset_free(d);
}

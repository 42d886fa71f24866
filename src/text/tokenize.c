/* tokenize.c — tokens of normalised text, their buckets, and bags (sorted, counted buckets).
 *
 * One walker (walk) splits normalised text and hands each token to a sink, which either hashes it into
 * w->ids (the hot path: nothing allocated per token, n-grams assembled on the stack) or copies it into the
 * token list of cr_text_tokenize. Token classes by code point: ASCII by table; otherwise the Unicode general
 * category (utf8proc_category) — letters, marks and numbers make words, So makes symbol tokens, the rest
 * separates — and, for letters, marks and numbers, the CJK ranges below. The rules are docs/TEXT.md's. */
#include "text_impl.h"

#include <string.h>
#include <utf8proc.h>

enum { C_SEP = 0, C_LETTER, C_NUM, C_CJK, C_SYMBOL };

#define KIND_SALT 0x9E3779B9u   /* per-kind seed salt: seed ^ kind * KIND_SALT */

/* Han, kana and Hangul blocks (the code points of category L, M or N in them are CJK characters). */
static int is_cjk(int32_t c) {
    return (c >= 0x1100 && c <= 0x11FF) ||      /* Hangul Jamo */
           (c >= 0x3000 && c <= 0x303F) ||      /* CJK symbols: 々 〆 〇, Hangzhou numerals, kana repeat marks */
           (c >= 0x3040 && c <= 0x30FF) ||      /* Hiragana, Katakana */
           (c >= 0x3130 && c <= 0x318F) ||      /* Hangul Compatibility Jamo */
           (c >= 0x31F0 && c <= 0x31FF) ||      /* Katakana Phonetic Extensions */
           (c >= 0x3400 && c <= 0x4DBF) ||      /* CJK Extension A */
           (c >= 0x4E00 && c <= 0x9FFF) ||      /* CJK Unified Ideographs */
           (c >= 0xA960 && c <= 0xA97F) ||      /* Hangul Jamo Extended-A */
           (c >= 0xAC00 && c <= 0xD7FF) ||      /* Hangul Syllables, Jamo Extended-B */
           (c >= 0xF900 && c <= 0xFAFF) ||      /* CJK Compatibility Ideographs */
           (c >= 0xFF65 && c <= 0xFFDC) ||      /* halfwidth katakana and Hangul (NFKC maps them away) */
           (c >= 0x1AFF0 && c <= 0x1B16F) ||    /* Kana Extended-B, Supplement, Extended-A, Small Kana */
           (c >= 0x20000 && c <= 0x323AF);      /* CJK Extensions B-H, Compatibility Supplement */
}

/* Class of a code point >= 0x80. */
static int classify_unicode(int32_t c) {
    int cls;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        cls = C_LETTER;
        break;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        cls = C_NUM;
        break;
    case UTF8PROC_CATEGORY_SO:
        return C_SYMBOL;
    default:
        return C_SEP;
    }
    return is_cjk(c) ? C_CJK : cls;
}

/* ASCII: letters and digits; no ASCII character is So or CJK. */
static inline int classify(int32_t c) {
    if (c >= 0x80) return classify_unicode(c);
    if ((unsigned)((c | 32) - 'a') < 26) return C_LETTER;
    return (unsigned)(c - '0') < 10 ? C_NUM : C_SEP;
}

/* Decodes one code point of valid UTF-8 at s (n >= 1 bytes left); returns its length. */
static inline int next_cp(const unsigned char *s, int32_t *c) {
    if (s[0] < 0x80) return *c = s[0], 1;
    if (s[0] < 0xE0) return *c = (s[0] & 0x1F) << 6 | (s[1] & 0x3F), 2;
    if (s[0] < 0xF0) return *c = (s[0] & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F), 3;
    return *c = (s[0] & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 | (s[3] & 0x3F), 4;
}

typedef struct {
    cr_text_work *w;
    const cr_text_hashing *h;
    int hashing;            /* 1: buckets into w->ids; 0: tokens into w->tok / w->tok_bytes */
    uint32_t seed[5];       /* per kind */
    uint64_t mod_m;         /* h % n_buckets without a division (Lemire, Kaser, Kurz 2019, "fastmod") */
} sink;

static inline uint32_t fastmod(uint32_t h, uint64_t m, uint32_t d) {
    return (uint32_t)(((__uint128_t)(m * h) * d) >> 64);
}

__attribute__((always_inline)) static inline cr_status emit(sink *k, cr_text_tok_kind kind, const char *p, int64_t len) {
    cr_text_work *w = k->w;
    cr_status st;
    if (k->hashing) {
        if (w->n_ids == w->cap_ids && (st = cr_grow((void **)&w->ids, &w->cap_ids, w->n_ids + 1, sizeof *w->ids)))
            return st;
        w->ids[w->n_ids++] = fastmod(cr_hash32(p, (size_t)len, k->seed[kind]), k->mod_m, (uint32_t)k->h->n_buckets);
        return CR_OK;
    }
    if ((st = cr_grow((void **)&w->tok, &w->cap_tok, w->n_tok + 1, sizeof *w->tok)) ||
        (st = cr_grow((void **)&w->tok_bytes, &w->cap_tok_bytes, w->n_tok_bytes + len + 1, 1)))
        return st;
    memcpy(w->tok_bytes + w->n_tok_bytes, p, (size_t)len);
    w->tok_bytes[w->n_tok_bytes + len] = '\0';
    w->n_tok_bytes += len + 1;
    w->tok[w->n_tok++] = (cr_text_token){NULL, (int32_t)len, kind};   /* p set when the list is complete */
    return CR_OK;
}

/* Character n-grams of "<word>": the word's code points start at s + off[0 .. ncp), it ends at s + off[ncp].
 * Position 0 is '<', 1 .. ncp the code points, ncp + 1 '>'; the lone marks are not n-grams. */
static cr_status emit_ngrams(sink *k, const char *s, const int32_t *off, int64_t ncp) {
    char buf[2 + 4 * CR_TEXT_MAX_NGRAM];
    int64_t m = ncp + 2;
    cr_status st;
    for (int64_t s0 = 0; s0 < m; s0++) {
        for (int64_t n = k->h->ngram_min; n <= k->h->ngram_max && s0 + n <= m; n++) {
            if (n == 1 && (s0 == 0 || s0 == m - 1)) continue;
            int64_t a = (s0 > 0 ? s0 : 1) - 1, e = s0 + n - 1 < ncp ? s0 + n - 1 : ncp;  /* code points [a, e) */
            if (s0 > 0 && s0 + n < m) {     /* inside the word: the bytes are in the text as they are */
                if ((st = emit(k, CR_TEXT_TOK_NGRAM, s + off[a], off[e] - off[a]))) return st;
                continue;
            }
            int64_t len = 0;
            if (s0 == 0) buf[len++] = '<';
            memcpy(buf + len, s + off[a], (size_t)(off[e] - off[a]));
            len += off[e] - off[a];
            if (s0 + n == m) buf[len++] = '>';
            if ((st = emit(k, CR_TEXT_TOK_NGRAM, buf, len))) return st;
        }
    }
    return CR_OK;
}

static inline cr_status push_off(cr_text_work *w, int64_t i, int32_t v) {
    if (i >= w->cap_off) {
        cr_status st = cr_grow((void **)&w->off, &w->cap_off, i + 1, sizeof *w->off);
        if (st) return st;
    }
    w->off[i] = v;
    return CR_OK;
}

/* Tokens of normalised text s[0 .. n) (valid UTF-8), in text order. */
static cr_status walk(sink *k, const char *s, int64_t n) {
    CR_ASSERT(n < INT32_MAX);   /* offsets are int32: CR_TEXT_MAX_LEN bytes normalise to far less than 2^31 */
    const unsigned char *u = (const unsigned char *)s;
    cr_text_work *w = k->w;
    int ngrams = k->h->ngram_max > 0;
    cr_status st;
    int32_t c;
    for (int64_t i = 0; i < n;) {
        int len = next_cp(u + i, &c), cls = classify(c);
        if (cls == C_SEP) {
            i += len;
        } else if (cls == C_SYMBOL) {
            if ((st = emit(k, CR_TEXT_TOK_SYMBOL, s + i, len))) return st;
            i += len;
        } else if (cls == C_CJK) {
            /* A run of CJK characters: each, then each adjacent pair. */
            int64_t ncp = 0, j = i;
            while (j < n) {
                int l = next_cp(u + j, &c);
                if (classify(c) != C_CJK) break;
                if ((st = push_off(w, ncp++, (int32_t)j))) return st;
                j += l;
            }
            if ((st = push_off(w, ncp, (int32_t)j))) return st;
            for (int64_t t = 0; t < ncp; t++)
                if ((st = emit(k, CR_TEXT_TOK_CJK, s + w->off[t], w->off[t + 1] - w->off[t]))) return st;
            for (int64_t t = 0; t + 1 < ncp; t++)
                if ((st = emit(k, CR_TEXT_TOK_BIGRAM, s + w->off[t], w->off[t + 2] - w->off[t]))) return st;
            i = j;
        } else {
            /* A word: letters, marks and numbers, and '.' or ',' between two numerals. */
            int numeric = cls == C_NUM, prev = cls;
            int64_t ncp = 0, j = i;
            if ((st = push_off(w, ncp++, (int32_t)j))) return st;
            j += len;
            while (j < n) {
                int l = next_cp(u + j, &c), cl = classify(c);
                if (cl == C_LETTER || cl == C_NUM) {
                    numeric &= cl == C_NUM;
                } else if ((c == '.' || c == ',') && prev == C_NUM && j + 1 < n) {
                    int32_t c2;
                    next_cp(u + j + 1, &c2);
                    if (classify(c2) != C_NUM) break;
                } else {
                    break;
                }
                prev = cl;
                if ((st = push_off(w, ncp++, (int32_t)j))) return st;
                j += l;
            }
            if ((st = push_off(w, ncp, (int32_t)j))) return st;
            if ((st = emit(k, CR_TEXT_TOK_WORD, s + i, j - i))) return st;
            if (ngrams && !numeric && (st = emit_ngrams(k, s, w->off, ncp))) return st;
            i = j;
        }
    }
    return CR_OK;
}

static void sink_init(sink *k, cr_text_work *w, const cr_text_hashing *h, int hashing) {
    k->w = w, k->h = h, k->hashing = hashing;
    for (uint32_t kind = 0; kind < 5; kind++) k->seed[kind] = h->seed ^ (kind * KIND_SALT);
    k->mod_m = UINT64_MAX / (uint64_t)h->n_buckets + 1;
}

int32_t cr_text_bucket(const cr_text_hashing *h, cr_text_tok_kind kind, const char *p, int64_t len) {
    return (int32_t)(cr_hash32(p, (size_t)len, h->seed ^ ((uint32_t)kind * KIND_SALT)) % (uint32_t)h->n_buckets);
}

static cr_status check_hashing_arg(const cr_text_hashing *h) {
    const char *why = cr_text_check_hashing(h);
    return why ? cr_fail(CR_ERR_ARG, "text hashing: %s", why) : CR_OK;
}

cr_status cr_text_tokenize(cr_text_work *w, const cr_text_hashing *h, const char *s, int64_t len,
                           const cr_text_token **toks, int64_t *n_toks) {
    cr_status st;
    w->n_tok = w->n_tok_bytes = 0;
    if ((st = check_hashing_arg(h)) || (st = cr_text_normalize_into(w, s, len))) return st;
    sink k;
    sink_init(&k, w, h, 0);
    if ((st = walk(&k, w->norm, w->norm_len))) return st;
    int64_t at = 0;
    for (int64_t t = 0; t < w->n_tok; t++) {
        w->tok[t].p = w->tok_bytes + at;
        at += w->tok[t].len + 1;
    }
    *toks = w->tok;
    *n_toks = w->n_tok;
    return CR_OK;
}

cr_status cr_text_collect_ids(cr_text_work *w, const cr_text_hashing *h, const char *s, int64_t len,
                              int64_t *n_replaced) {
    cr_status st = cr_text_normalize_into(w, s, len);
    if (st) return st;
    *n_replaced += w->replaced_last;
    sink k;
    sink_init(&k, w, h, 1);
    return walk(&k, w->norm, w->norm_len);
}

/* Ascending sort of a[0 .. n), all values <= max: insertion sort for short arrays, else LSD radix sort by
 * bytes through tmp (only the bytes that max needs; a byte all keys share is skipped). Linear, so hostile
 * input cannot make it quadratic. */
static void sort_u32(uint32_t *a, uint32_t *tmp, int64_t n, uint32_t max) {
    if (n <= 64) {
        for (int64_t i = 1; i < n; i++) {
            uint32_t x = a[i];
            int64_t j = i;
            for (; j > 0 && a[j - 1] > x; j--) a[j] = a[j - 1];
            a[j] = x;
        }
        return;
    }
    int bytes = max > 0xFFFFFF ? 4 : max > 0xFFFF ? 3 : max > 0xFF ? 2 : 1;
    int32_t pos[4][256];
    memset(pos, 0, (size_t)bytes * sizeof pos[0]);
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = a[i];
        pos[0][v & 255]++;
        if (bytes > 1) pos[1][v >> 8 & 255]++;
        if (bytes > 2) pos[2][v >> 16 & 255]++;
        if (bytes > 3) pos[3][v >> 24]++;
    }
    uint32_t *src = a, *dst = tmp;
    for (int b = 0; b < bytes; b++) {
        int shift = 8 * b;
        int32_t *p = pos[b];
        if (p[src[0] >> shift & 255] == n) continue;
        int32_t sum = 0;
        for (int v = 0; v < 256; v++) {
            int32_t c = p[v];
            p[v] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[p[src[i] >> shift & 255]++] = src[i];
        uint32_t *t = src;
        src = dst, dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

cr_status cr_text_ids_to_bag(cr_text_work *w, const cr_text_hashing *h, cr_text_bag *bag) {
    int64_t n = w->n_ids;
    cr_status st;
    w->n_ids = 0;
    if (n > 64 && (st = cr_grow((void **)&w->ids_tmp, &w->cap_ids_tmp, n, sizeof *w->ids_tmp))) return st;
    if (n > bag->cap) {
        int64_t cap_b = bag->cap, cap_c = bag->cap;
        if ((st = cr_grow((void **)&bag->bucket, &cap_b, n, sizeof *bag->bucket)) ||
            (st = cr_grow((void **)&bag->count, &cap_c, n, sizeof *bag->count)))
            return st;
        bag->cap = cap_b;
    }
    sort_u32(w->ids, w->ids_tmp, n, (uint32_t)(h->n_buckets - 1));
    int64_t u = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && w->ids[j] == w->ids[i]) j++;
        bag->bucket[u] = (int32_t)w->ids[i];
        bag->count[u++] = (int32_t)(j - i);
        i = j;
    }
    bag->n = u;
    bag->n_tokens = n;
    return CR_OK;
}

cr_status cr_text_hash_bag(cr_text_work *w, const cr_text_hashing *h, const char *s, int64_t len, cr_text_bag *bag) {
    cr_status st;
    int64_t replaced = 0;
    bag->n = bag->n_tokens = bag->n_replaced = 0;
    w->n_ids = 0;
    if ((st = check_hashing_arg(h)) || (st = cr_text_collect_ids(w, h, s, len, &replaced)) ||
        (st = cr_text_ids_to_bag(w, h, bag)))
        return st;
    bag->n_replaced = replaced;
    return CR_OK;
}

void cr_text_bag_free(cr_text_bag *b) {
    if (!b) return;
    cr_free(b->bucket), cr_free(b->count);
    memset(b, 0, sizeof *b);
}

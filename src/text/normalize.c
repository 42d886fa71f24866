/* normalize.c — UTF-8 repair, then NFKC with case folding (utf8proc), into a cr_text_work's buffers.
 *
 * Invalid UTF-8 becomes U+FFFD, one per maximal subpart of an ill-formed sequence (Unicode 15 §3.9, "U+FFFD
 * substitution of maximal subparts", also the WHATWG decoder's policy): a byte that cannot start a sequence
 * is one subpart; a lead byte followed by the continuation bytes that were valid so far is one. Overlongs,
 * surrogates and code points above U+10FFFF are invalid, as for utf8proc.
 *
 * Normalisation repeats the steps of utf8proc_map(STABLE | COMPOSE | COMPAT | CASEFOLD | IGNORE | STRIPCC):
 * utf8proc_decompose_char per code point, canonical reordering, utf8proc_normalize_utf32, UTF-8 encoding.
 * utf8proc_map itself cannot be used because it rejects invalid input and allocates with malloc. All-ASCII
 * text takes a direct path with the same result (tests and the fuzz target compare both with utf8proc_map). */
#include "text_impl.h"

#include <string.h>
#include <utf8proc.h>

#define NORM_OPTIONS \
    (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE | UTF8PROC_STRIPCC)

/* Decodes the code point at s[0 .. n), n >= 1. Returns the bytes consumed; on an invalid maximal subpart *cp
 * is U+FFFD and *bad is incremented. */
static int64_t decode(const uint8_t *s, int64_t n, int32_t *cp, int64_t *bad) {
    uint8_t b0 = s[0], lo = 0x80, hi = 0xBF;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int need;
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1, c = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2, c = b0 & 0x0Fu;
        if (b0 == 0xE0) lo = 0xA0;          /* overlong */
        if (b0 == 0xED) hi = 0x9F;          /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3, c = b0 & 0x07u;
        if (b0 == 0xF0) lo = 0x90;          /* overlong */
        if (b0 == 0xF4) hi = 0x8F;          /* above U+10FFFF */
    } else {
        *cp = 0xFFFD, (*bad)++;
        return 1;
    }
    for (int i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *cp = 0xFFFD, (*bad)++;
            return i;
        }
        c = c << 6 | (s[i] & 0x3Fu);
        lo = 0x80, hi = 0xBF;
    }
    *cp = (int32_t)c;
    return need + 1;
}

static int encode(int32_t c, char *o) {
    uint32_t u = (uint32_t)c;
    if (u < 0x80) {
        o[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (char)(0xC0 | u >> 6), o[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (char)(0xE0 | u >> 12), o[1] = (char)(0x80 | (u >> 6 & 0x3F)), o[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | u >> 18), o[1] = (char)(0x80 | (u >> 12 & 0x3F));
    o[2] = (char)(0x80 | (u >> 6 & 0x3F)), o[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

/* All bytes < 0x80: A-Z fold to a-z; STRIPCC turns CR LF into one space, tab, LF, VT, FF and CR into a
 * space each, and drops the other controls (0x00-0x1F, 0x7F). */
static void normalize_ascii(cr_text_work *w, const char *s, int64_t len) {
    char *o = w->norm;
    int64_t j = 0;
    for (int64_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + 32);
        } else if (c < 0x20 || c == 0x7F) {
            if (c == '\r' && i + 1 < len && s[i + 1] == '\n') i++;
            if (c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r') continue;
            c = ' ';
        }
        o[j++] = (char)c;
    }
    o[j] = '\0';
    w->norm_len = j;
}

static int ccc(int32_t c) { return utf8proc_get_property(c)->combining_class; }

/* Canonical ordering: a stable sort by combining class of each run of non-starters (class > 0), which is
 * what utf8proc_decompose's adjacent swaps compute. Long runs (only in hostile input) use a counting sort
 * through scratch, so that the cost stays linear. */
static cr_status reorder(cr_text_work *w, int64_t n) {
    int32_t *b = w->cp;
    for (int64_t a = 0; a < n;) {
        if (ccc(b[a]) == 0) {
            a++;
            continue;
        }
        int64_t e = a + 1;
        while (e < n && ccc(b[e]) > 0) e++;
        if (e - a <= 32) {
            for (int64_t i = a + 1; i < e; i++) {
                int32_t x = b[i];
                int cx = ccc(x);
                int64_t j = i;
                for (; j > a && ccc(b[j - 1]) > cx; j--) b[j] = b[j - 1];
                b[j] = x;
            }
        } else {
            /* Scratch past the n used code points; b may move. */
            cr_status st = cr_grow((void **)&w->cp, &w->cap_cp, n + (e - a), sizeof(int32_t));
            if (st) return st;
            b = w->cp;
            int32_t *tmp = b + n;
            int64_t start[257] = {0};
            for (int64_t i = a; i < e; i++) start[ccc(b[i]) + 1]++;
            for (int k = 1; k <= 256; k++) start[k] += start[k - 1];
            for (int64_t i = a; i < e; i++) tmp[start[ccc(b[i])]++] = b[i];
            memcpy(b + a, tmp, (size_t)(e - a) * sizeof *b);
        }
        a = e;
    }
    return CR_OK;
}

static cr_status normalize_unicode(cr_text_work *w, const char *s, int64_t len) {
    const uint8_t *u = (const uint8_t *)s;
    int64_t n = 0, bad = 0;
    cr_status st = cr_grow((void **)&w->cp, &w->cap_cp, len + 32, sizeof(int32_t));
    if (st) return st;
    for (int64_t i = 0; i < len;) {
        int32_t c;
        i += decode(u + i, len - i, &c, &bad);
        if (c < 0x80) {
            if (n == w->cap_cp && (st = cr_grow((void **)&w->cp, &w->cap_cp, n + 1, sizeof(int32_t)))) return st;
            w->cp[n++] = c >= 'A' && c <= 'Z' ? c + 32 : c;   /* what decompose_char gives for ASCII */
            continue;
        }
        for (;;) {
            utf8proc_ssize_t r = utf8proc_decompose_char(c, w->cp + n, w->cap_cp - n, NORM_OPTIONS, NULL);
            CR_ASSERT(r >= 0);      /* only unassigned code points with REJECTNA, or invalid ones, fail */
            if (r <= w->cap_cp - n) {
                n += r;
                break;
            }
            if ((st = cr_grow((void **)&w->cp, &w->cap_cp, n + r, sizeof(int32_t)))) return st;
        }
    }
    if ((st = reorder(w, n))) return st;
    utf8proc_ssize_t m = utf8proc_normalize_utf32(w->cp, n, NORM_OPTIONS);
    CR_ASSERT(m >= 0 && m <= n);
    if ((st = cr_grow((void **)&w->norm, &w->cap_norm, 4 * (int64_t)m + 1, 1))) return st;
    int64_t j = 0;
    for (int64_t k = 0; k < m; k++) j += encode(w->cp[k], w->norm + j);
    w->norm[j] = '\0';
    w->norm_len = j;
    w->replaced_last = bad;
    w->replaced_total += bad;
    return CR_OK;
}

cr_status cr_text_normalize_into(cr_text_work *w, const char *s, int64_t len) {
    w->replaced_last = 0;
    if (len < 0) return cr_fail(CR_ERR_ARG, "text length %lld is negative", (long long)len);
    if (len > CR_TEXT_MAX_LEN)
        return cr_fail(CR_ERR_LIMIT, "text of %lld bytes is longer than the limit of %d bytes", (long long)len,
                       CR_TEXT_MAX_LEN);
    int64_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80) i++;
    if (i < len) return normalize_unicode(w, s, len);
    cr_status st = cr_grow((void **)&w->norm, &w->cap_norm, len + 1, 1);
    if (st) return st;
    normalize_ascii(w, s, len);
    return CR_OK;
}

cr_status cr_text_normalize(cr_text_work *w, const char *s, int64_t len, const char **out, int64_t *out_len) {
    cr_status st = cr_text_normalize_into(w, s, len);
    if (st) return st;
    *out = w->norm;
    *out_len = w->norm_len;
    return CR_OK;
}

cr_status cr_text_work_new(cr_text_work **w) {
    *w = cr_calloc(1, sizeof **w);
    return *w ? CR_OK : cr_fail(CR_ERR_NOMEM, "out of memory (text workspace)");
}

void cr_text_work_free(cr_text_work *w) {
    if (!w) return;
    cr_free(w->cp), cr_free(w->norm), cr_free(w->off), cr_free(w->ids), cr_free(w->ids_tmp);
    cr_free(w->tok), cr_free(w->tok_bytes);
    cr_free(w);
}

int64_t cr_text_work_replaced_last(const cr_text_work *w) { return w->replaced_last; }
int64_t cr_text_work_replaced_total(const cr_text_work *w) { return w->replaced_total; }

/* parse.c — number and UTF-8 checks shared by the table readers: cr_parse_i64, cr_parse_f32,
 * cr_utf8_invalid_at.
 *
 * Fields handed to these functions are not NUL-terminated and come straight from untrusted files, so every
 * function takes (pointer, length), reads no byte outside it, and rejects anything it does not fully
 * understand (spaces, "inf", hex, trailing text) instead of guessing. Parsing does not depend on the
 * locale except in the strtof fallback of cr_parse_f32, whose input is checked to use '.' first. */
#include "crossrec/data.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

int cr_parse_i64(const char *p, int64_t len, int64_t *out) {
    if (!p || len <= 0) return -1;
    int64_t i = 0;
    int neg = 0;
    if (p[0] == '+' || p[0] == '-') {
        neg = p[0] == '-';
        i = 1;
    }
    if (i >= len || !is_digit((unsigned char)p[i])) return -1;
    /* Accumulate as a negative number: the negative range is one larger, so INT64_MIN parses exactly. */
    int64_t v = 0;
    for (; i < len && is_digit((unsigned char)p[i]); i++) {
        int d = p[i] - '0';
        if (v < (INT64_MIN + d) / 10) return -1;
        v = v * 10 - d;
    }
    if (i < len) {
        /* An optional fraction, truncated toward zero: RecBole writes timestamps as "978300760.0". */
        if (p[i] != '.') return -1;
        for (i++; i < len; i++)
            if (!is_digit((unsigned char)p[i])) return -1;
    }
    if (!neg) {
        if (v == INT64_MIN) return -1;
        v = -v;
    }
    *out = v;
    return 0;
}

/* Exact powers of ten as floats: 10^k for k <= 10 has at most 24 significant bits (5^10 < 2^24). */
static const float pow10f_exact[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

int cr_parse_f32(const char *p, int64_t len, float *out) {
    if (!p || len <= 0) return -1;
    /* Syntax check first: [sign] (digits [. digits*] | . digits) [(e|E) [sign] digits]. This is what
     * rejects inf, nan, hex floats and spaces, which strtof would accept. */
    int64_t i = 0;
    int neg = 0;
    if (p[0] == '+' || p[0] == '-') {
        neg = p[0] == '-';
        i = 1;
    }
    int64_t int_digits = 0, frac_digits = 0;
    uint64_t mant = 0;
    int mant_ok = 1;            /* mantissa still fits the exact fast path */
    for (; i < len && is_digit((unsigned char)p[i]); i++, int_digits++) {
        mant = mant * 10 + (uint64_t)(p[i] - '0');
        if (mant > (1u << 24)) mant_ok = 0, mant = 1u << 25;   /* saturate; fast path is off anyway */
    }
    if (i < len && p[i] == '.') {
        for (i++; i < len && is_digit((unsigned char)p[i]); i++, frac_digits++) {
            mant = mant * 10 + (uint64_t)(p[i] - '0');
            if (mant > (1u << 24)) mant_ok = 0, mant = 1u << 25;
        }
    }
    if (int_digits + frac_digits == 0) return -1;
    int has_exp = 0;
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        has_exp = 1;
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-')) i++;
        int64_t exp_digits = 0;
        for (; i < len && is_digit((unsigned char)p[i]); i++) exp_digits++;
        if (exp_digits == 0) return -1;
    }
    if (i != len) return -1;

    /* Fast path (Clinger): mantissa and 10^k both exact floats, so one IEEE division is correctly rounded and
     * equals what strtof returns. Covers ratings like "4", "3.5", "0.25". */
    if (!has_exp && mant_ok && frac_digits <= 10) {
        float f = (float)mant / pow10f_exact[frac_digits];
        *out = neg ? -f : f;
        return 0;
    }

    /* Slow path: strtof on a NUL-terminated copy (the field is not terminated). */
    char stack[128];
    char *buf = stack;
    if (len >= (int64_t)sizeof stack) {
        if ((uint64_t)len >= SIZE_MAX) return -1;
        buf = cr_malloc((size_t)len + 1);
        if (!buf) return -1;
    }
    memcpy(buf, p, (size_t)len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    float f = strtof(buf, &end);
    int ok = end == buf + len && isfinite(f);
    if (buf != stack) cr_free(buf);
    if (!ok) return -1;         /* overflow to inf ("1e39"), or a locale whose decimal point is not '.' */
    *out = f;
    return 0;
}

/* Returns the length of the valid UTF-8 sequence at p[0..n) (n >= 1, p[0] >= 0x80), or 0 if invalid. */
static inline int utf8_seq_len(const unsigned char *p, int64_t n) {
    unsigned char c = p[0];
    if (c < 0xC2) return 0;                      /* stray continuation byte, or overlong C0/C1 lead */
    if (c < 0xE0) return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3) return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;                /* overlong 3-byte forms */
        if (c == 0xED) hi = 0x9F;                /* UTF-16 surrogates D800..DFFF */
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c < 0xF5) {
        if (n < 4) return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;                /* overlong 4-byte forms */
        if (c == 0xF4) hi = 0x8F;                /* beyond U+10FFFF */
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;                                    /* F5..FF never occur in UTF-8 */
}

int64_t cr_utf8_invalid_at(const char *s, int64_t len) {
    const unsigned char *p = (const unsigned char *)s;
    int64_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time: most ids and numbers never leave it. */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        int k = utf8_seq_len(p + i, len - i);
        if (!k) return i;
        i += k;
    }
    return -1;
}

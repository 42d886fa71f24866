/* fuzz_text.c — the text pipeline (normalise, tokenise, hash into a bag) on arbitrary bytes.
 *
 * Checks what must hold for any input, trapping otherwise: the normalised text is valid UTF-8 without control
 * characters; for valid UTF-8 input it equals utf8proc_map's result with the same options and nothing was
 * replaced, for invalid input something was; tokens are non-empty valid UTF-8 of a known kind; hashing them
 * one by one gives exactly the bag (strictly ascending buckets, counts summing to the token count). Two
 * hashings: the default one (n-grams 3..5) and a tiny one (7 buckets, n-grams 1..2) where everything collides. */
#include "crossrec/text.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define CHECK_OR_TRAP(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_normalized(const char *in, size_t n_in, const char *out, int64_t n_out, int64_t replaced) {
    CHECK_OR_TRAP(cr_utf8_invalid_at(out, n_out) < 0 && (int64_t)strlen(out) == n_out);
    for (int64_t i = 0; i < n_out; i++) {
        unsigned char c = (unsigned char)out[i];
        CHECK_OR_TRAP(c >= 0x20 && c != 0x7F);
        CHECK_OR_TRAP(!(c == 0xC2 && i + 1 < n_out && (unsigned char)out[i + 1] < 0xA0));   /* C1 controls */
    }
    utf8proc_uint8_t *ref;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)n_in, &ref,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
                                          UTF8PROC_IGNORE | UTF8PROC_STRIPCC);
    if (r < 0) {
        CHECK_OR_TRAP(r != UTF8PROC_ERROR_INVALIDUTF8 || replaced > 0);
        return;
    }
    int same = replaced == 0 && r == n_out && memcmp(ref, out, (size_t)r) == 0;
    free(ref);
    CHECK_OR_TRAP(same);
}

static void check_bag(const cr_text_hashing *h, const cr_text_token *t, int64_t n, const cr_text_bag *bag) {
    CHECK_OR_TRAP(bag->n_tokens == n);
    int64_t sum = 0;
    for (int64_t i = 0; i < bag->n; i++) {
        CHECK_OR_TRAP(bag->count[i] >= 1 && bag->bucket[i] >= 0 && bag->bucket[i] < h->n_buckets);
        CHECK_OR_TRAP(i == 0 || bag->bucket[i - 1] < bag->bucket[i]);
        sum += bag->count[i];
    }
    CHECK_OR_TRAP(sum == n);
    int32_t *seen = cr_calloc((size_t)bag->n + 1, sizeof *seen);
    if (!seen) return;
    for (int64_t k = 0; k < n; k++) {
        CHECK_OR_TRAP(t[k].len > 0 && t[k].kind >= CR_TEXT_TOK_WORD && t[k].kind <= CR_TEXT_TOK_SYMBOL);
        CHECK_OR_TRAP(cr_utf8_invalid_at(t[k].p, t[k].len) < 0);
        int32_t b = cr_text_bucket(h, t[k].kind, t[k].p, t[k].len);
        int64_t lo = 0, hi = bag->n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (bag->bucket[mid] < b) lo = mid + 1;
            else hi = mid;
        }
        CHECK_OR_TRAP(lo < bag->n && bag->bucket[lo] == b);
        seen[lo]++;
    }
    for (int64_t i = 0; i < bag->n; i++) CHECK_OR_TRAP(seen[i] == bag->count[i]);
    cr_free(seen);
}

CR_FUZZ_TARGET(text) {
    cr_text_work *wt = NULL, *wb = NULL;
    cr_text_bag bag = {0};
    if (cr_text_work_new(&wt) || cr_text_work_new(&wb)) goto done;
    const char *s = (const char *)data, *norm;
    int64_t len = (int64_t)size, n_norm;
    if (cr_text_normalize(wt, s, len, &norm, &n_norm) != CR_OK) goto done;
    check_normalized(s, size, norm, n_norm, cr_text_work_replaced_last(wt));

    cr_text_hashing hs[2] = {cr_text_default_hashing(), cr_text_default_hashing()};
    hs[1].n_buckets = 7, hs[1].ngram_min = 1, hs[1].ngram_max = 2, hs[1].seed = 0x9747B28Cu;
    for (int k = 0; k < 2; k++) {
        const cr_text_token *t;
        int64_t n;
        if (cr_text_tokenize(wt, &hs[k], s, len, &t, &n) != CR_OK ||
            cr_text_hash_bag(wb, &hs[k], s, len, &bag) != CR_OK)
            goto done;
        check_bag(&hs[k], t, n, &bag);
    }
done:
    cr_text_bag_free(&bag);
    cr_text_work_free(wt);
    cr_text_work_free(wb);
    return 0;
}

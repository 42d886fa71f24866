/* fuzz_wordvec.c — the word vector loader (cr_wordvec_load_mem) on arbitrary bytes.
 *
 * Each input is loaded as text three ways (format detected; header required with words that may hold spaces;
 * GloVe) under small limits, so that the line and memory caps are reached. An input that starts with the .crm
 * magic is also loaded with its size and CRC repaired, since a fuzzer cannot forge a CRC and would otherwise
 * never reach the .crm checks. Whatever loads must hold together, trapping otherwise: every row's word finds
 * that row, every number is finite, the line counts add up; lookups, neighbours and word embedding run on it. */
#include "crossrec/wordvec.h"
#include "fuzz.h"

#include <math.h>
#include <string.h>

#define CHECK_OR_TRAP(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check(const cr_wordvec *wv, int text) {
    const cr_wordvec_info *in = cr_wordvec_get_info(wv);
    int64_t n = cr_wordvec_size(wv), dim = cr_wordvec_dim(wv);
    CHECK_OR_TRAP(dim >= 1 && dim <= CR_WORDVEC_MAX_DIM && in->n_words == n && in->dim == dim);
    if (text) CHECK_OR_TRAP(in->n_lines == n + in->n_duplicates + in->n_empty && !in->has_subwords);
    for (int32_t r = 0; r < n; r++) {
        const char *w = cr_wordvec_word(wv, r);
        CHECK_OR_TRAP(w[0] != '\0' && cr_wordvec_find(wv, w, (int64_t)strlen(w)) == r);
        const float *v = cr_wordvec_vector(wv, r);
        for (int64_t j = 0; j < dim; j++) CHECK_OR_TRAP(isfinite(v[j]));
    }
    if (n == 0 || dim > 4096) return;
    float q[4096], sims[3];
    int32_t rows[3];
    int found;
    cr_text_work *w = NULL;
    if (cr_text_work_new(&w) != CR_OK) return;
    cr_wordvec_hit hit;
    const char *w0 = cr_wordvec_word(wv, 0);
    if (cr_wordvec_embed_word(wv, w, w0, (int64_t)strlen(w0), q, &hit) == CR_OK &&
        cr_wordvec_nearest(wv, q, -1, 3, rows, sims, &found) == CR_OK) {
        CHECK_OR_TRAP(found >= 0 && found <= 3);
        for (int i = 0; i < found; i++) CHECK_OR_TRAP(rows[i] >= 0 && rows[i] < n && sims[i] <= 1.001f);
    }
    cr_text_work_free(w);
}

static void try_load(const uint8_t *data, size_t size, cr_wordvec_format fmt, int spaces) {
    cr_wordvec_load_opts o = cr_wordvec_default_load_opts();
    o.format = fmt;
    o.words_with_spaces = spaces;
    o.max_line = 4096;
    o.max_bytes = 1 << 20;
    cr_wordvec *wv = NULL;
    if (cr_wordvec_load_mem(&wv, data, size, "fuzz.vec", &o) == CR_OK) {
        check(wv, !(size >= 8 && !memcmp(data, "\x7f" "CRCRM\r\n", 8)));
        cr_wordvec_free(wv);
    } else {
        CHECK_OR_TRAP(wv == NULL);
    }
}

CR_FUZZ_TARGET(wordvec) {
    try_load(data, size, CR_WORDVEC_AUTO, 0);
    try_load(data, size, CR_WORDVEC_HEADER, 1);
    try_load(data, size, CR_WORDVEC_GLOVE, 0);
    if (size < 72 || memcmp(data, "\x7f" "CRCRM\r\n", 8) != 0) return 0;
    uint8_t *copy = cr_malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    cr_fuzz_repair(copy, size);
    try_load(copy, size, CR_WORDVEC_AUTO, 0);
    cr_free(copy);
    return 0;
}

/* fuzz_wordpiece.c — the WordPiece tokenizer (cr_wordpiece_tokenize) on arbitrary bytes, invalid UTF-8 included.
 *
 * A small vocabulary with special tokens, multi-byte pieces and "##" continuations. The first input byte picks
 * the room for ids (2 .. 257), the rest is the text. Checks the output contract: at most max ids, [CLS] first,
 * [SEP] last, every id in the vocabulary. */
#include "crossrec/bert.h"
#include "fuzz.h"

static const char *const vocab[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##a", "ab", "##b", "c",
                                    "##\xc3\xa9", "\xe8\x93\x9d", "!", "##!", "x", "##xyz", "i", "\xcc\x87"};

CR_FUZZ_TARGET(wordpiece) {
    if (size < 1) return 0;
    cr_wordpiece *wp;
    if (cr_wordpiece_new(&wp, vocab, (int64_t)(sizeof vocab / sizeof vocab[0])) != CR_OK) return 0;
    int64_t max = 2 + data[0];
    int32_t ids[257];
    int64_t n;
    if (cr_wordpiece_tokenize(wp, (const char *)data + 1, size - 1, ids, max, &n) == CR_OK) {
        if (n < 2 || n > max || ids[0] != 2 || ids[n - 1] != 3) __builtin_trap();
        for (int64_t i = 0; i < n; i++)
            if (!cr_wordpiece_token(wp, ids[i])) __builtin_trap();
    }
    cr_wordpiece_free(wp);
    return 0;
}

/* fuzz.h — one fuzz target per file tests/fuzz/fuzz_NAME.c, declared with CR_FUZZ_TARGET(NAME).
 *
 * Built with clang -fsanitize=fuzzer (make fuzz, -DCR_FUZZ_LIBFUZZER) the target becomes the libFuzzer entry
 * point. Built into the test runner it registers itself, and the test `fuzz_corpus_replay` runs every file in
 * tests/fuzz/corpus/fuzz_NAME/ through it, so kept crashers stay fixed. A target must not leak and must
 * accept any bytes; it returns 0. */
#ifndef CROSSREC_FUZZ_H
#define CROSSREC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef int (*cr_fuzz_fn)(const uint8_t *data, size_t size);
void cr_fuzz_register(const char *name, cr_fuzz_fn fn);

#ifdef CR_FUZZ_LIBFUZZER
#define CR_FUZZ_ENTRY(name) \
    int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n); \
    int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return cr_fuzz_##name(d, n); }
#else
#define CR_FUZZ_ENTRY(name) \
    __attribute__((constructor)) static void cr_fuzz_register_##name(void) { cr_fuzz_register(#name, cr_fuzz_##name); }
#endif

#define CR_FUZZ_TARGET(name)                                 \
    static int cr_fuzz_##name(const uint8_t *data, size_t size); \
    CR_FUZZ_ENTRY(name)                                      \
    static int cr_fuzz_##name(const uint8_t *data, size_t size)

#endif

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


/* ---- files, for the readers that take a path ----------------------------------------------------------------
 * The input is written to a file in a temp folder made once per process (removed at exit). With repair, a
 * container's header size, trailer CRC and "CEND" are set right first, because a fuzzer cannot forge a CRC and
 * would otherwise never reach the parsers behind it. cr_fuzz_base_dataset() puts the dataset the split, state
 * and model seeds were made from (tests/fuzz/make_seeds.sh: `crossrec synth` with the same options, imported)
 * into that folder as data.crd, where a split whose recorded absolute path is gone looks for it. */
#include "crossrec/data.h"
#include "crossrec/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char cr_fuzz_dir_path[64];

static inline void cr_fuzz_dir_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cr_fuzz_dir_path);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", cr_fuzz_dir_path);
}

static inline const char *cr_fuzz_dir(void) {
    if (!cr_fuzz_dir_path[0]) {
        snprintf(cr_fuzz_dir_path, sizeof cr_fuzz_dir_path, "/tmp/crossrec-fuzz-XXXXXX");
        if (!mkdtemp(cr_fuzz_dir_path)) abort();
        atexit(cr_fuzz_dir_remove);
    }
    return cr_fuzz_dir_path;
}

/* Sets a container's header file_size, trailer CRC and "CEND" right (size >= 72: a header and a trailer). */
static inline void cr_fuzz_repair(uint8_t *buf, size_t size) {
    for (int i = 0; i < 8; i++) buf[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    memcpy(buf + size - 4, "CEND", 4);
    uint32_t crc = cr_crc32c(0, buf, size - 8);
    for (int i = 0; i < 4; i++) buf[size - 8 + i] = (uint8_t)(crc >> (8 * i));
}

/* Writes data to cr_fuzz_dir()/name (repaired as a container when repair and it is long enough); returns the
 * path in buf. */
static inline const char *cr_fuzz_file(const char *name, const uint8_t *data, size_t size, int repair, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", cr_fuzz_dir(), name);
    FILE *f = fopen(buf, "wb");
    if (!f) abort();
    if (repair && size >= 72) {
        uint8_t *copy = malloc(size);
        if (!copy) abort();
        memcpy(copy, data, size);
        cr_fuzz_repair(copy, size);
        fwrite(copy, 1, size, f);
        free(copy);
    } else if (size) {
        fwrite(data, 1, size, f);
    }
    if (fclose(f)) abort();
    return buf;
}

/* The seeds' dataset, as cr_fuzz_dir()/data.crd (made once per process); 0 on success. */
static inline int cr_fuzz_base_dataset(void) {
    static int made;
    if (made) return made > 0 ? 0 : -1;
    char base[128], inter[160], items[160], out[160];
    snprintf(base, sizeof base, "%s/base", cr_fuzz_dir());
    snprintf(inter, sizeof inter, "%s/interactions.tsv", base);
    snprintf(items, sizeof items, "%s/items.tsv", base);
    snprintf(out, sizeof out, "%s/data.crd", cr_fuzz_dir());
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = 40, sp.n_items = 30, sp.n_inter = 400, sp.n_domains = 2;
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = inter;
    ip.items[ip.n_items++] = items;
    cr_dataset *d = NULL;
    made = !cr_synth_write(base, &sp) && !cr_dataset_import(&d, &ip, NULL) && !cr_dataset_save(d, out) ? 1 : -1;
    cr_dataset_free(d);
    return made > 0 ? 0 : -1;
}

#endif

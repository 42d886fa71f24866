/* fuzz_safetensors.c — the safetensors reader (cr_safetensors_parse) on arbitrary bytes.
 *
 * Each input is parsed twice: as given, and with its first 8 bytes replaced by the length of the rest when that
 * rest starts with '{', because a fuzzer rarely guesses a correct 64-bit header length and would otherwise stay
 * in the length checks. Whatever parses is walked completely: every byte of every tensor is read, and every
 * tensor must be found again by its name with the same extent. */
#include "crossrec/bert.h"
#include "fuzz.h"

#include <string.h>

static void try_parse(const uint8_t *data, size_t size) {
    cr_safetensors *st;
    if (cr_safetensors_parse(&st, data, size, "fuzz") != CR_OK) return;
    volatile uint64_t sum = 0;
    for (int64_t i = 0; i < cr_safetensors_count(st); i++) {
        const cr_st_tensor *t = cr_safetensors_at(st, i);
        const cr_st_tensor *f = cr_safetensors_find(st, t->name);
        if (!f || f->data != t->data || f->nbytes != t->nbytes) __builtin_trap();
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size) __builtin_trap();
        const uint8_t *p = t->data;
        for (int64_t k = 0; k < t->nbytes; k++) sum += p[k];
        sum += (uint64_t)t->count + strlen(cr_st_dtype_name(t->dtype));
    }
    (void)sum;
    cr_safetensors_free(st);
}

CR_FUZZ_TARGET(safetensors) {
    try_parse(data, size);
    if (size < 9 || data[8] != '{') return 0;
    uint8_t *copy = cr_malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    /* header = everything up to the last '}' */
    size_t end = size;
    while (end > 8 && copy[end - 1] != '}') end--;
    uint64_t n = end - 8;
    for (int i = 0; i < 8; i++) copy[i] = (uint8_t)(n >> (8 * i));
    try_parse(copy, size);
    cr_free(copy);
    return 0;
}

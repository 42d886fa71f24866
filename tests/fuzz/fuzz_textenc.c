/* fuzz_textenc.c — the text-encoder reader (cr_textenc_load, a `crossrec pretrain` .crm) on arbitrary bytes.
 *
 * Seed: an encoder pretrained on the seeds' dataset (tests/fuzz/make_seeds.sh). Each input is loaded as written
 * and with the container's size and CRC repaired; whatever loads encodes an empty text and a short one. */
#include "crossrec/textenc.h"
#include "fuzz.h"

static void try_load(const uint8_t *data, size_t size, int repair) {
    char path[256];
    cr_textenc *e;
    cr_status st = cr_textenc_load(&e, cr_fuzz_file("fuzz.crm", data, size, repair, path, sizeof path));
    if (st == CR_ERR_NOMEM) __builtin_trap();   /* a file of at most 64 KiB must not ask for more memory than there is */
    if (st != CR_OK) return;
    cr_textenc_set_threads(e, 1);
    const char *texts[2] = {"", "Blue ceramic mug, 350 ml"};
    int64_t dim = cr_textenc_dim(e);
    float *out = malloc((size_t)(2 * dim + 1) * sizeof *out);
    float sum = 0.0f;
    if (out && cr_textenc_encode(e, texts, 2, out) == CR_OK)
        for (int64_t k = 0; k < 2 * dim; k++) sum += out[k];
    volatile float sink = sum;   /* the reads must happen */
    (void)sink;
    free(out);
    cr_textenc_free(e);
}

CR_FUZZ_TARGET(textenc) {
    try_load(data, size, 0);
    try_load(data, size, 1);
    return 0;
}

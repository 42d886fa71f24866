/* fuzz_state.c — the training-state reader (.crt: cr_train_state_params, and `train --resume`) on arbitrary bytes.
 *
 * Seeds: the states of a bpr run on the seeds' dataset after each of its two epochs (tests/fuzz/make_seeds.sh).
 * Each input is read as written and with the container's size and CRC repaired. Its settings are read back
 * (any fingerprint); when they are the seed run's own, the run is resumed from it on the same split (made here
 * with the seed's options), which restores parameters, best copy, optimizer moments and counters. Settings of
 * other runs are not trained: a fuzzed fingerprint could ask for any size or length of run. */
#include "crossrec/model.h"
#include "crossrec/split.h"
#include "crossrec/train.h"
#include "fuzz.h"

/* The split the seed run trained on (cold-user, target music, seed 42), saved and loaded from cr_fuzz_dir(). */
static cr_split *make_split(void) {
    char data[160], path[160];
    snprintf(data, sizeof data, "%s/data.crd", cr_fuzz_dir());
    snprintf(path, sizeof path, "%s/split.crs", cr_fuzz_dir());
    cr_dataset *d = NULL;
    cr_split *made = NULL, *s = NULL;
    cr_split_params sp = cr_split_default_params();
    sp.protocol = CR_PROTO_COLD_USER;
    sp.target = "music";
    if (!cr_fuzz_base_dataset() && !cr_dataset_load(&d, data) && !cr_split_make(&made, d, &sp) && !cr_split_save(made, path))
        (void)cr_split_load(&s, path);
    cr_split_free(made);
    cr_dataset_free(d);
    return s;
}

static cr_train_params seed_params(const cr_split *s) {
    cr_train_params p = cr_train_default_params();
    p.model = "bpr";
    p.dim = 4, p.epochs = 2, p.threads = 1, p.quiet = 1;
    p.valid = s;
    return p;
}

CR_FUZZ_TARGET(state) {
#ifdef CR_FUZZ_LIBFUZZER
    static cr_split *s;
    if (!s) s = make_split();
#else
    cr_split *s = make_split();     /* per input: the replay in `make test` checks that nothing outlives one */
#endif
    if (!s) return 0;
    char path[256], want[1024], got[1024];
    for (int repair = 0; repair < 2; repair++) {
        cr_fuzz_file("fuzz.crt", data, size, repair, path, sizeof path);
        cr_train_params p = seed_params(s), q = p;
        if (cr_train_state_params(path, &q) != CR_OK) continue;
        cr_train_fingerprint(&p, want, sizeof want);
        cr_train_fingerprint(&q, got, sizeof got);
        if (strcmp(want, got)) continue;
        p.resume = path;
        cr_model *m = NULL;
        if (cr_model_train(&m, cr_split_dataset(s), cr_split_train(s), &p) == CR_OK) cr_model_free(m);
    }
#ifndef CR_FUZZ_LIBFUZZER
    cr_split_free(s);
#endif
    return 0;
}

/* fuzz_split.c — the split reader (cr_split_load, .crs) on arbitrary bytes.
 *
 * The seeds are splits of the dataset cr_fuzz_base_dataset() makes (their recorded path is gone, so the reader
 * finds data.crd beside the split, as for a moved folder). Each input is loaded as written and with the
 * container's size and CRC repaired, so the split's own checks (roles against the dataset's events, candidates,
 * ground truth, sampled negatives) are reached. Whatever loads is walked completely. */
#include "crossrec/split.h"
#include "fuzz.h"

static void walk(const cr_split *s) {
    const cr_dataset *d = cr_split_dataset(s);
    const cr_interactions *all = cr_dataset_inter(d), *tr = cr_split_train(s);
    uint64_t sum = 0;
    const uint8_t *roles = cr_split_roles(s);
    for (int64_t e = 0; e < all->n_inter; e++) sum += roles[e];
    for (int64_t e = 0; e < tr->user_ptr[tr->n_users]; e++)
        if (tr->user_items[e] < 0 || tr->user_items[e] >= tr->n_items) __builtin_trap();
    int64_t n;
    const int32_t *cand = cr_split_candidates(s, &n);
    for (int64_t k = 0; k < n; k++)
        if (cand[k] < 0 || cand[k] >= all->n_items) __builtin_trap();
    const cr_part parts[2] = {CR_PART_VALID, CR_PART_TEST};
    for (int k2 = 0; k2 < 2; k2++) {
        const cr_ground_truth *g = cr_split_truth(s, parts[k2]);
        for (int64_t k = 0; k < g->n_users; k++) {
            if (g->users[k] < 0 || g->users[k] >= all->n_users) __builtin_trap();
            for (int64_t j = g->gt_ptr[k]; j < g->gt_ptr[k + 1]; j++)
                if (g->gt_items[j] < 0 || g->gt_items[j] >= all->n_items) __builtin_trap();
        }
        int64_t n_neg;
        const int32_t *neg = cr_split_sampled(s, parts[k2], &n_neg);
        for (int64_t j = 0; neg && j < g->gt_ptr[g->n_users] * n_neg; j++)
            if (neg[j] < -1 || neg[j] >= all->n_items) __builtin_trap();
    }
    sum += (uint64_t)cr_split_stats_of(s)->n_train + (uint64_t)cr_split_target(s);
    volatile uint64_t sink = sum;   /* the reads must happen */
    (void)sink;
}

static void try_load(const uint8_t *data, size_t size, int repair) {
    char path[256];
    cr_split *s;
    cr_status st = cr_split_load(&s, cr_fuzz_file("fuzz.crs", data, size, repair, path, sizeof path));
    if (st == CR_ERR_NOMEM) __builtin_trap();   /* a file of at most 64 KiB must not ask for more memory than there is */
    if (st != CR_OK) return;
    walk(s);
    cr_split_free(s);
}

CR_FUZZ_TARGET(split) {
    if (cr_fuzz_base_dataset()) return 0;
    try_load(data, size, 0);
    try_load(data, size, 1);
    return 0;
}

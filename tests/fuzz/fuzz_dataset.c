/* fuzz_dataset.c — the dataset reader (cr_dataset_load, .crd) on arbitrary bytes.
 *
 * Each input is loaded as written (the container's checks) and with its size and CRC repaired (the dataset's own
 * checks behind them: every index in range, the CSRs monotone, names and texts). Whatever loads is walked
 * completely: every event of both CSRs, every id found again by its name, every title, text and domain name,
 * and the statistics `crossrec stats` prints. */
#include "crossrec/data.h"
#include "fuzz.h"

static void walk(const cr_dataset *d) {
    const cr_interactions *v = cr_dataset_inter(d);
    uint64_t sum = 0;
    for (int64_t u = 0; u < v->n_users; u++) {
        if (v->user_ptr[u] > v->user_ptr[u + 1]) __builtin_trap();
        for (int64_t e = v->user_ptr[u]; e < v->user_ptr[u + 1]; e++) {
            int32_t i = v->user_items[e];
            if (i < 0 || i >= v->n_items) __builtin_trap();
            sum += (uint64_t)v->item_domain[i] + (uint64_t)(v->user_values[e] == v->user_values[e]);
            if (v->user_times) sum += (uint64_t)v->user_times[e];
        }
        const char *id = cr_dataset_user_id(d, (int32_t)u);
        if (cr_dataset_find_user(d, id) < 0) __builtin_trap();
    }
    for (int64_t i = 0; i < v->n_items; i++) {
        for (int64_t e = v->item_ptr[i]; e < v->item_ptr[i + 1]; e++) sum += (uint64_t)v->item_users[e];
        const char *id = cr_dataset_item_id(d, (int32_t)i);
        if (cr_dataset_find_item(d, id) < 0) __builtin_trap();
        sum += strlen(cr_dataset_item_title(d, (int32_t)i)) + strlen(cr_dataset_item_text(d, (int32_t)i));
    }
    for (int64_t t = 0; t < v->n_domains; t++) sum += strlen(cr_dataset_domain_name(d, (int32_t)t));
    volatile uint64_t sink = sum;   /* the reads must happen */
    (void)sink;
    cr_stats s;
    if (cr_dataset_stats(d, &s) == CR_OK) cr_stats_free(&s);
}

static void try_load(const uint8_t *data, size_t size, int repair) {
    char path[256];
    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, cr_fuzz_file("fuzz.crd", data, size, repair, path, sizeof path));
    if (st == CR_ERR_NOMEM) __builtin_trap();   /* a file of at most 64 KiB must not ask for more memory than there is */
    if (st != CR_OK) return;
    walk(d);
    cr_dataset_free(d);
}

CR_FUZZ_TARGET(dataset) {
    try_load(data, size, 0);
    try_load(data, size, 1);
    return 0;
}

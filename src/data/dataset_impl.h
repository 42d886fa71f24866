/* dataset_impl.h — the inside of cr_dataset, shared by import.c, dataset.c and stats.c.
 *
 * A dataset is either built by import (every array owned, `file` NULL) or loaded from a .crd (`file` set;
 * arrays and string pools point into its read-only mapping and are not freed). The public view `v` always
 * points at the arrays in use. The id maps are built at import/load time. */
#ifndef CROSSREC_DATASET_IMPL_H
#define CROSSREC_DATASET_IMPL_H

#include "crossrec/data.h"
#include "crossrec/io.h"
#include "idmap.h"

struct cr_dataset {
    cr_interactions v;
    cr_strpool users, items, domains;   /* external ids / names */
    cr_strpool titles, texts;           /* per item, "" when none */
    cr_idmap user_map, item_map, domain_map;
    int has_time, has_value;
    char *source;                       /* "interactions.tsv + items.tsv" (owned) */
    cr_file *file;                      /* when loaded from disk */
    char *path;                         /* the path it was loaded from (owned) */
    /* owned storage when imported */
    int64_t *user_ptr, *item_ptr, *user_times;
    int32_t *user_items, *item_users, *item_domain;
    float *user_values;
};

#endif

/* fuzz_tsv.c — the TSV reader on arbitrary bytes (see fuzz_table.h). */
#include "fuzz.h"
#include "fuzz_table.h"

CR_FUZZ_TARGET(tsv) {
    static const char *const names[3] = {"user", "item", "title"};
    cr_fuzz_read_table(data, size, CR_FMT_TSV, 0, "fuzz.tsv", names);
    return 0;
}

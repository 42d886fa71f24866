/* fuzz_recbole.c — the RecBole atomic-file reader on arbitrary bytes (see fuzz_table.h). */
#include "fuzz.h"
#include "fuzz_table.h"

CR_FUZZ_TARGET(recbole) {
    static const char *const names[3] = {"user_id", "item_id", "timestamp"};
    cr_fuzz_read_table(data, size, CR_FMT_RECBOLE, 0, "fuzz.inter", names);
    return 0;
}

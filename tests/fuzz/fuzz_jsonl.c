/* fuzz_jsonl.c — the JSON Lines reader on arbitrary bytes (see fuzz_table.h). */
#include "fuzz.h"
#include "fuzz_table.h"

CR_FUZZ_TARGET(jsonl) {
    static const char *const names[3] = {"user", "item", "rating"};
    cr_fuzz_read_table(data, size, CR_FMT_JSONL, 0, "fuzz.jsonl", names);
    return 0;
}

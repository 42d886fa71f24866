/* fuzz_csv.c — the CSV reader on arbitrary bytes, with the delimiter detected and given (see fuzz_table.h). */
#include "fuzz.h"
#include "fuzz_table.h"

CR_FUZZ_TARGET(csv) {
    static const char *const names[3] = {"user", "item", "title"};
    cr_fuzz_read_table(data, size, CR_FMT_CSV, 0, "fuzz.csv", names);
    if (size > 0) cr_fuzz_read_table(data, size, CR_FMT_CSV, ",;\t|"[data[0] % 4], "fuzz.csv", names);
    return 0;
}

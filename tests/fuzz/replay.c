/* replay.c — runs every kept fuzz input (tests/fuzz/corpus/fuzz_NAME/ files) through its target in make test. */
#include "../test.h"
#include "fuzz.h"

#include <dirent.h>
#include <stdlib.h>

#define MAX_TARGETS 64
static struct { const char *name; cr_fuzz_fn fn; } targets[MAX_TARGETS];
static int n_targets;

void cr_fuzz_register(const char *name, cr_fuzz_fn fn) {
    CR_ASSERT(n_targets < MAX_TARGETS);
    targets[n_targets].name = name;
    targets[n_targets].fn = fn;
    n_targets++;
}

TEST(fuzz_corpus_replay) {
    int64_t files = 0;
    for (int t = 0; t < n_targets; t++) {
        char dir[512];
        snprintf(dir, sizeof dir, "tests/fuzz/corpus/fuzz_%s", targets[t].name);
        DIR *dp = opendir(dir);
        if (!dp) continue;
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (e->d_name[0] == '.') continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            size_t len;
            char *buf = cr_test_read(path, &len);
            if (!buf) continue;
            targets[t].fn((const uint8_t *)buf, len);
            free(buf);
            files++;
        }
        closedir(dp);
    }
    printf("     replayed %lld kept inputs through %d fuzz targets\n", (long long)files, n_targets);
}

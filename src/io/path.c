/* path.c — file-system helpers shared by the writers: creating output directories. */
#include "crossrec/io.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

cr_status cr_mkdirs(const char *dir) {
    size_t n = strlen(dir);
    if (n == 0) return cr_fail(CR_ERR_ARG, "empty directory name");
    char *p = cr_malloc(n + 1);
    if (!p) return cr_fail(CR_ERR_NOMEM, "out of memory (path)");
    memcpy(p, dir, n + 1);
    cr_status st = CR_OK;
    /* mkdir every prefix that ends at a '/', then the whole path; existing ones are fine */
    for (size_t i = 1; i <= n && st == CR_OK; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) st = cr_fail(CR_ERR_IO, "%s: %s", p, strerror(errno));
        p[i] = c;
    }
    cr_free(p);
    struct stat sb;
    if (st == CR_OK && stat(dir, &sb) != 0) st = cr_fail(CR_ERR_IO, "%s: %s", dir, strerror(errno));
    else if (st == CR_OK && !S_ISDIR(sb.st_mode)) st = cr_fail(CR_ERR_IO, "%s: not a directory", dir);
    return st;
}

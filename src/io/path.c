/* path.c — file-system helpers shared by the writers: creating output directories, writing a file atomically,
 * the temporary files of atomic writes and the removal of those a killed writer left (path_impl.h). */
#include "crossrec/io.h"

#include "path_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int cr_tmp_create(const char *path, char *tmp, size_t cap) {
    static _Atomic unsigned counter;
    for (int tries = 0; tries < 100; tries++) {
        snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

void cr_tmp_sweep(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[4096], prefix[512];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    int n_prefix = snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (n_prefix <= 0 || (size_t)n_prefix >= sizeof prefix) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)n_prefix)) continue;
        /* PREFIX PID '.' N: a PID of digits only, then a dot */
        const char *p = e->d_name + n_prefix, *q = p;
        while (*q >= '0' && *q <= '9' && q - p < 10) q++;
        if (q == p || *q != '.') continue;
        long pid = strtol(p, NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            cr_log(CR_LOG_INFO, "%s: removed %s/%s, left by process %ld which no longer runs", path, dir, e->d_name, pid);
    }
    closedir(d);
}

cr_status cr_write_atomic(const char *path, const cr_span *parts, int n_parts) {
    cr_status st;
    size_t plen = strlen(path);
    size_t cap = plen + CR_TMP_SUFFIX_MAX + 1;
    char *tmp = cr_malloc(cap);
    if (!tmp) return cr_fail(CR_ERR_NOMEM, "%s: out of memory", path);
    cr_tmp_sweep(path);
    int fd = cr_tmp_create(path, tmp, cap);
    if (fd < 0) {
        st = cr_fail(CR_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        cr_free(tmp);
        return st;
    }
    for (int k = 0; k < n_parts; k++)
        if (parts[k].len && write_all(fd, parts[k].data, parts[k].len) != 0) {
            st = cr_fail(CR_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            goto fail;
        }
    if (fsync(fd) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    if (close(fd) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: write failed (close): %s", path, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto fail;
    }
    /* Make the rename itself durable; some file systems refuse to sync directories (not an error). */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    cr_free(tmp);
    return CR_OK;
fail:
    unlink(tmp);
    cr_free(tmp);
    return st;
}


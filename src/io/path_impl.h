/* path_impl.h — private to src/io: the temporary files of atomic writes (path.c), shared by cr_write_atomic and
 * cr_filew_commit.
 *
 * A temporary is PATH.tmp.PID.N next to its target: PID the writing process, N a per-process counter. A writer
 * killed before its rename (SIGKILL, power cut) leaves its temporary behind; the next writer of the same target
 * removes those whose PID no longer runs, so crashes repeated in a loop do not fill the disk. */
#ifndef CROSSREC_PATH_IMPL_H
#define CROSSREC_PATH_IMPL_H

#include <stddef.h>

/* Room for a temporary's name: strlen(path) + CR_TMP_SUFFIX_MAX + 1 bytes. */
#define CR_TMP_SUFFIX_MAX 48

/* Creates PATH.tmp.PID.N with open(O_EXCL), mode 0666 (the umask applies as to any new file), into tmp (cap
 * bytes). Returns the descriptor, or -1 with errno set. */
int cr_tmp_create(const char *path, char *tmp, size_t cap);
/* Removes PATH.tmp.PID.* files whose PID is not a running process (kill(PID, 0) fails with ESRCH), logging each
 * at CR_LOG_INFO. Best effort: errors are ignored. A live writer in another PID namespace that shares the
 * directory can look dead; removing its temporary makes its rename fail with an error, the target stays
 * intact. */
void cr_tmp_sweep(const char *path);

#endif

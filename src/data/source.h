/* source.h — private to src/data (and src/text/wordvec.c, which reads word vector files through it): the byte
 * source under the table readers.
 *
 * A cr_source yields the bytes of a file descriptor or a memory buffer, inflating gzip data (detected by the
 * magic bytes 1f 8b, concatenated members allowed) on the way. Plain memory buffers are not copied: the
 * reader uses them in place (cr_source_plain_mem). All errors are CR_ERR_IO (CR_ERR_NOMEM for memory) with
 * a message that names the source; after an error the source stays failed. */
#ifndef CROSSREC_DATA_SOURCE_H
#define CROSSREC_DATA_SOURCE_H

#include "crossrec/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cr_source cr_source;

/* Opens `path` ("-" is standard input, not closed by cr_source_close). `name` is used in messages and must
 * outlive the source. The first bytes are read here to detect gzip. */
cr_status cr_source_open_file(cr_source **s, const char *path, const char *name);
/* A source over caller-owned bytes, which must outlive the source. */
cr_status cr_source_open_mem(cr_source **s, const void *buf, size_t len, const char *name);
void cr_source_close(cr_source *s);

/* For plain (not gzip) memory sources: the whole content, which the reader uses in place; else NULL. */
const char *cr_source_plain_mem(const cr_source *s, size_t *len);
/* Reads up to n (> 0) bytes into dst. Returns CR_OK with *got > 0, CR_DONE at the end (*got = 0), or an
 * error with a message. Short reads are normal. */
cr_status cr_source_read(cr_source *s, void *dst, size_t n, size_t *got);
/* Whether the data is gzip compressed. */
int cr_source_is_gzip(const cr_source *s);
/* Bytes read from the file so far (compressed bytes for gzip; 0 for memory sources): progress against the
 * file's size. */
int64_t cr_source_bytes_in(const cr_source *s);

#endif

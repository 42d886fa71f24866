/* source.c — the byte source under the table readers: a file descriptor or a memory buffer, inflated with
 * zlib when it starts with the gzip magic bytes (whatever the file is called).
 *
 * Main type: cr_source (opaque, see source.h). Invariants:
 *  - `raw` holds bytes read from the descriptor but not yet consumed: for plain files only the first chunk
 *    (read to look for the magic bytes), for gzip the compressed input; zs.next_in/avail_in track it.
 *  - A memory source never copies the caller's bytes; gzip input is fed to zlib straight from them.
 *  - Concatenated gzip members are read one after the other (inflateReset between them); zero padding after
 *    the last member is ignored, as gzip(1) and Python do; any other trailing byte is an error, because
 *    silently ignoring it could hide a truncated concatenation.
 *  - Once an error is returned, `failed` keeps every later read failing with the same status. */
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define RAW_CAP ((size_t)256 << 10)
/* zlib counts in uInt; feed and drain it in chunks well inside that. */
#define Z_CHUNK ((size_t)1 << 30)

struct cr_source {
    const char *name;
    int fd;                     /* -1 for memory sources */
    int own_fd;                 /* close fd at the end (not for standard input) */
    const unsigned char *mem;   /* memory source bytes (caller-owned), or NULL */
    size_t mem_len;
    unsigned char *raw;         /* (RAW_CAP) descriptor bytes not yet consumed, from zs.next_in on */
    size_t plain_pos, plain_end;/* plain files: the detection chunk still to deliver is raw[plain_pos, plain_end) */
    int raw_eof;                /* the descriptor (or memory) has no more bytes */
    int gz;                     /* the data is gzip */
    int zs_init;                /* inflateInit2 succeeded */
    int member_end;             /* the current gzip member ended (Z_STREAM_END) */
    z_stream zs;
    cr_status failed;           /* CR_OK until an error */
    int64_t bytes_in;           /* bytes read from the descriptor so far (compressed ones for gzip) */
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    if (size && items > SIZE_MAX / size) return Z_NULL;
    return cr_malloc((size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    cr_free(p);
}

static cr_status src_fail(cr_source *s, cr_status st) {
    s->failed = st;
    return st;
}

/* Reads from the source's descriptor, retrying on EINTR, and counts the bytes. Returns bytes read (0 at end) or
 * -1 with errno set. */
static ssize_t read_fd(cr_source *s, void *dst, size_t n) {
    for (;;) {
        ssize_t r = read(s->fd, dst, n);
        if (r > 0) s->bytes_in += r;
        if (r >= 0 || errno != EINTR) return r;
    }
}

/* Makes at least `need` (<= 2) compressed bytes available at zs.next_in unless the input ends first. */
static cr_status raw_need(cr_source *s, size_t need) {
    while (s->zs.avail_in < need && !s->raw_eof) {
        if (s->mem) {
            /* Memory: expose the next chunk of the caller's buffer. */
            size_t used = (size_t)(s->zs.next_in - s->mem) + s->zs.avail_in;
            size_t left = s->mem_len - used;
            size_t take = left < Z_CHUNK ? left : Z_CHUNK;
            s->zs.avail_in += (uInt)take;
            if (used + take == s->mem_len) s->raw_eof = 1;
        } else {
            /* Descriptor: keep the unconsumed tail (at most one byte here), read behind it. */
            size_t keep = s->zs.avail_in;
            if (keep) memmove(s->raw, s->zs.next_in, keep);
            ssize_t r = read_fd(s, s->raw + keep, RAW_CAP - keep);
            if (r < 0) return src_fail(s, cr_fail(CR_ERR_IO, "%s: read failed: %s", s->name, strerror(errno)));
            if (r == 0) s->raw_eof = 1;
            s->zs.next_in = s->raw;
            s->zs.avail_in = (uInt)(keep + (size_t)r);
        }
    }
    return CR_OK;
}

/* After a member ended: skips zero padding, then starts the next member (CR_OK) or reports the end (CR_DONE). */
static cr_status next_member(cr_source *s) {
    for (;;) {
        cr_status st = raw_need(s, 1);
        if (st != CR_OK) return st;
        while (s->zs.avail_in && *s->zs.next_in == 0) s->zs.next_in++, s->zs.avail_in--;
        if (s->zs.avail_in) break;
        if (s->raw_eof) return CR_DONE;
    }
    cr_status st = raw_need(s, 2);
    if (st != CR_OK) return st;
    if (s->zs.avail_in < 2 || s->zs.next_in[0] != 0x1f || s->zs.next_in[1] != 0x8b)
        return src_fail(s, cr_fail(CR_ERR_IO, "%s: unexpected bytes after the end of the gzip data", s->name));
    if (inflateReset(&s->zs) != Z_OK)
        return src_fail(s, cr_fail(CR_ERR_IO, "%s: cannot restart gzip decoder", s->name));
    s->member_end = 0;
    return CR_OK;
}

static cr_status gz_read(cr_source *s, void *dst, size_t n, size_t *got) {
    if (n > Z_CHUNK) n = Z_CHUNK;
    s->zs.next_out = dst;
    s->zs.avail_out = (uInt)n;
    while (s->zs.avail_out == n) {
        if (s->member_end) {
            cr_status st = next_member(s);
            if (st == CR_DONE) break;
            if (st != CR_OK) return st;
        }
        cr_status st = raw_need(s, 1);
        if (st != CR_OK) return st;
        /* inflate runs even without input: it may still hold output from input it has already taken. */
        int r = inflate(&s->zs, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            s->member_end = 1;
        } else if (r == Z_BUF_ERROR) {
            /* No progress possible. raw_need left input available unless the input has ended. */
            if (s->zs.avail_in == 0)
                return src_fail(s, cr_fail(CR_ERR_IO, "%s: gzip data is truncated (unexpected end of file)",
                                           s->name));
            return src_fail(s, cr_fail(CR_ERR_IO, "%s: corrupt gzip data: the decoder made no progress", s->name));
        } else if (r == Z_MEM_ERROR) {
            return src_fail(s, cr_fail(CR_ERR_NOMEM, "%s: out of memory in the gzip decoder", s->name));
        } else if (r != Z_OK) {
            /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR: the data is not valid gzip. */
            return src_fail(s, cr_fail(CR_ERR_IO, "%s: corrupt gzip data: %s", s->name,
                                       s->zs.msg ? s->zs.msg : zError(r)));
        }
    }
    *got = n - s->zs.avail_out;
    s->zs.next_out = NULL;
    s->zs.avail_out = 0;
    return *got ? CR_OK : CR_DONE;
}

static cr_status start_gzip(cr_source *s) {
    s->gz = 1;
    s->zs.zalloc = z_alloc;
    s->zs.zfree = z_free;
    s->zs.opaque = Z_NULL;
    /* 16 + MAX_WBITS: gzip wrapper only; the magic bytes were already seen. */
    int r = inflateInit2(&s->zs, 16 + MAX_WBITS);
    if (r == Z_MEM_ERROR) return cr_fail(CR_ERR_NOMEM, "%s: out of memory starting the gzip decoder", s->name);
    if (r != Z_OK) return cr_fail(CR_ERR_IO, "%s: cannot start gzip decoder: %s", s->name, zError(r));
    s->zs_init = 1;
    return CR_OK;
}

cr_status cr_source_open_file(cr_source **out, const char *path, const char *name) {
    *out = NULL;
    int is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cr_fail(CR_ERR_IO, "%s: cannot open: %s", name, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (!is_stdin) close(fd);
        return cr_fail(CR_ERR_IO, "%s: cannot open: %s", name, strerror(EISDIR));
    }
#ifdef POSIX_FADV_SEQUENTIAL
    if (!is_stdin) (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    cr_source *s = cr_calloc(1, sizeof *s);
    unsigned char *raw = cr_malloc(RAW_CAP);
    if (!s || !raw) {
        cr_free(s);
        cr_free(raw);
        if (!is_stdin) close(fd);
        return cr_fail(CR_ERR_NOMEM, "%s: out of memory opening the file", name);
    }
    s->name = name;
    s->fd = fd;
    s->own_fd = !is_stdin;
    s->raw = raw;
    /* Read until two bytes are there (a pipe may deliver one at a time) to look for the gzip magic. */
    size_t have = 0;
    while (have < 2) {
        ssize_t r = read_fd(s, raw + have, RAW_CAP - have);
        if (r < 0) {
            cr_status st = cr_fail(CR_ERR_IO, "%s: read failed: %s", name, strerror(errno));
            cr_source_close(s);
            return st;
        }
        if (r == 0) {
            s->raw_eof = 1;
            break;
        }
        have += (size_t)r;
    }
    if (have >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        cr_status st = start_gzip(s);
        if (st != CR_OK) {
            cr_source_close(s);
            return st;
        }
        s->zs.next_in = raw;
        s->zs.avail_in = (uInt)have;
    } else {
        s->plain_pos = 0;
        s->plain_end = have;
    }
    *out = s;
    return CR_OK;
}

cr_status cr_source_open_mem(cr_source **out, const void *buf, size_t len, const char *name) {
    *out = NULL;
    cr_source *s = cr_calloc(1, sizeof *s);
    if (!s) return cr_fail(CR_ERR_NOMEM, "%s: out of memory", name);
    s->name = name;
    s->fd = -1;
    /* A zero-length buffer may come with a NULL pointer; point at something so that `mem` marks the kind. */
    s->mem = len ? (const unsigned char *)buf : (const unsigned char *)"";
    s->mem_len = len;
    if (len >= 2 && s->mem[0] == 0x1f && s->mem[1] == 0x8b) {
        cr_status st = start_gzip(s);
        if (st != CR_OK) {
            cr_source_close(s);
            return st;
        }
        s->zs.next_in = (Bytef *)(uintptr_t)s->mem;   /* zlib never writes through next_in */
        s->zs.avail_in = 0;
    } else {
        s->raw_eof = 1;
    }
    *out = s;
    return CR_OK;
}

void cr_source_close(cr_source *s) {
    if (!s) return;
    if (s->zs_init) inflateEnd(&s->zs);
    if (s->own_fd && s->fd >= 0) close(s->fd);
    cr_free(s->raw);
    cr_free(s);
}

const char *cr_source_plain_mem(const cr_source *s, size_t *len) {
    if (!s->mem || s->gz) return NULL;
    *len = s->mem_len;
    return (const char *)s->mem;
}

int cr_source_is_gzip(const cr_source *s) { return s->gz; }

int64_t cr_source_bytes_in(const cr_source *s) { return s->bytes_in; }

cr_status cr_source_read(cr_source *s, void *dst, size_t n, size_t *got) {
    *got = 0;
    if (s->failed != CR_OK)
        return cr_fail(s->failed, "%s: cannot read on after an earlier error", s->name);
    if (n == 0) return CR_OK;
    if (s->gz) return gz_read(s, dst, n, got);
    if (s->mem) {
        /* Plain memory sources are used in place (cr_source_plain_mem); reading them is a caller bug. */
        CR_ASSERT(!"cr_source_read on a plain memory source");
    }
    if (s->plain_pos < s->plain_end) {
        size_t k = s->plain_end - s->plain_pos;
        if (k > n) k = n;
        memcpy(dst, s->raw + s->plain_pos, k);
        s->plain_pos += k;
        *got = k;
        return CR_OK;
    }
    if (s->raw_eof) return CR_DONE;
    ssize_t r = read_fd(s, dst, n > SSIZE_MAX ? SSIZE_MAX : n);
    if (r < 0) return src_fail(s, cr_fail(CR_ERR_IO, "%s: read failed: %s", s->name, strerror(errno)));
    if (r == 0) {
        s->raw_eof = 1;
        return CR_DONE;
    }
    *got = (size_t)r;
    return CR_OK;
}

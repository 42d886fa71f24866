/* file.c — the crossrec container (.crd .crs .crm .crt): writer cr_filew, validating reader cr_file.
 *
 * Layout (io.h, docs/FORMAT.md): 64-byte header, metadata entries, a table of 96-byte array entries, array data
 * at 64-byte aligned offsets, and an 8-byte trailer (crc32c of everything before it, then "CEND").
 *
 * Writer: cr_filew keeps copies of metadata and borrowed pointers to array data; cr_filew_commit lays the file
 * out (metadata at 64, table right after it, each array at the next 64-byte boundary, trailer at the next
 * 8-byte boundary), streams it through a buffer into a temp file next to the target (path_impl.h) while folding
 * every byte into the CRC, then fsync + rename + fsync(dir). The same inputs always give the same bytes.
 *
 * Reader: cr_file maps the file read-only (or borrows a caller buffer) and checks magic, version, sizes, the
 * CRC, and then every count and offset with arithmetic that cannot overflow, before any pointer is handed out.
 * After a successful open these hold: every meta key and string is a NUL-terminated copy; every array's
 * [offset, offset + nbytes) lies inside the data region [end of table, file_size - 8); names and keys are
 * unique. All integers are decoded byte by byte (little-endian), never by casting the mapping to a struct.
 * A file truncated by another process while mapped can still raise SIGBUS; that is outside what a reader can
 * check. */
#include "crossrec/io.h"

#include "path_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Array data is copied to and from memory as is, so the file's little-endian order must be the host's. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "crossrec files store arrays little-endian; big-endian hosts are not supported"
#endif

#define HEADER_SIZE 64u
#define TRAILER_SIZE 8u
#define ENTRY_SIZE 96u          /* one array table entry */
#define NAME_BYTES 64u          /* array name field, NUL-padded */
#define META_HDR 8u             /* u8 type, u8 0, u16 key_len, u32 value_len */
#define DATA_ALIGN 64u
#define MIN_FILE (HEADER_SIZE + TRAILER_SIZE)
#define WRITE_BUF ((size_t)1 << 20)

/* ---- dtypes ---- */

size_t cr_dtype_size(cr_dtype dt) {
    switch (dt) {
    case CR_DT_U8: return 1;
    case CR_DT_I32: return 4;
    case CR_DT_I64: return 8;
    case CR_DT_F32: return 4;
    case CR_DT_F64: return 8;
    case CR_DT_F16: return 2;
    }
    return 0;
}

const char *cr_dtype_name(cr_dtype dt) {
    switch (dt) {
    case CR_DT_U8: return "u8";
    case CR_DT_I32: return "i32";
    case CR_DT_I64: return "i64";
    case CR_DT_F32: return "f32";
    case CR_DT_F64: return "f64";
    case CR_DT_F16: return "f16";
    }
    return "unknown";
}

static const char *meta_type_name(cr_meta_type t) {
    switch (t) {
    case CR_META_I64: return "i64";
    case CR_META_F64: return "f64";
    case CR_META_STR: return "string";
    }
    return "unknown";
}

/* ---- little-endian byte helpers ---- */

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static int valid_kind_char(int c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* ==== writer ============================================================================================ */

typedef struct {
    char *key;              /* key, NUL, then (strings) the value and NUL: one allocation */
    const char *str;        /* into key's block, or NULL */
    size_t key_len, str_len;
    cr_meta_type type;
    uint64_t bits;          /* i64 or f64 value as its 8 little-endian bytes */
} wmeta;

typedef struct {
    char name[NAME_BYTES];  /* NUL-padded, exactly as written */
    cr_dtype dtype;
    const void *data;       /* borrowed */
    int64_t count;
    uint64_t nbytes;
} warray;

struct cr_filew {
    char kind[4];
    uint32_t version;
    wmeta *meta;
    int64_t n_meta, cap_meta;
    warray *arr;
    int64_t n_arr, cap_arr;
};

cr_status cr_filew_new(cr_filew **w, const char *kind, uint32_t version) {
    *w = NULL;
    if (!kind || strlen(kind) != 3 || !valid_kind_char(kind[0]) || !valid_kind_char(kind[1]) || !valid_kind_char(kind[2]))
        return cr_fail(CR_ERR_ARG, "file kind must be 3 characters A-Z/0-9, got '%s'", kind ? kind : "(null)");
    if (version == 0) return cr_fail(CR_ERR_ARG, "file version must be >= 1");
    cr_filew *x = cr_calloc(1, sizeof *x);
    if (!x) return cr_fail(CR_ERR_NOMEM, "out of memory starting a .%s file", kind);
    memcpy(x->kind, kind, 3);
    x->version = version;
    *w = x;
    return CR_OK;
}

void cr_filew_free(cr_filew *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_meta; i++) cr_free(w->meta[i].key);
    cr_free(w->meta);
    cr_free(w->arr);
    cr_free(w);
}

static cr_status add_meta(cr_filew *w, const char *key, cr_meta_type type, uint64_t bits, const char *str) {
    size_t key_len = key ? strlen(key) : 0;
    if (key_len == 0 || key_len > UINT16_MAX)
        return cr_fail(CR_ERR_ARG, "metadata key must be 1..%u bytes, got %zu", (unsigned)UINT16_MAX, key_len);
    size_t str_len = str ? strlen(str) : 0;
    if (str_len > UINT32_MAX) return cr_fail(CR_ERR_ARG, "metadata value of '%s' is too long (%zu bytes)", key, str_len);
    for (int64_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[i].key, key)) return cr_fail(CR_ERR_ARG, "metadata key '%s' set twice", key);
    cr_status st = cr_grow((void **)&w->meta, &w->cap_meta, w->n_meta + 1, sizeof *w->meta);
    if (st) return st;
    char *block = cr_malloc(key_len + 1 + (str ? str_len + 1 : 0));
    if (!block) return cr_fail(CR_ERR_NOMEM, "out of memory storing metadata '%s'", key);
    memcpy(block, key, key_len + 1);
    wmeta *m = &w->meta[w->n_meta++];
    memset(m, 0, sizeof *m);
    m->key = block;
    m->key_len = key_len;
    m->type = type;
    m->bits = bits;
    if (str) {
        memcpy(block + key_len + 1, str, str_len + 1);
        m->str = block + key_len + 1;
        m->str_len = str_len;
    }
    return CR_OK;
}

cr_status cr_filew_meta_i64(cr_filew *w, const char *key, int64_t v) {
    return add_meta(w, key, CR_META_I64, (uint64_t)v, NULL);
}

cr_status cr_filew_meta_f64(cr_filew *w, const char *key, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);   /* bit pattern, so NaN payloads and -0.0 survive */
    return add_meta(w, key, CR_META_F64, bits, NULL);
}

cr_status cr_filew_meta_str(cr_filew *w, const char *key, const char *v) {
    if (!v) return cr_fail(CR_ERR_ARG, "metadata '%s': NULL string", key ? key : "(null)");
    return add_meta(w, key, CR_META_STR, 0, v);
}

cr_status cr_filew_array(cr_filew *w, const char *name, cr_dtype dt, const void *data, int64_t count) {
    size_t name_len = name ? strlen(name) : 0;
    if (name_len == 0 || name_len >= NAME_BYTES)
        return cr_fail(CR_ERR_ARG, "array name must be 1..%u bytes, got %zu ('%s')", NAME_BYTES - 1, name_len,
                       name ? name : "(null)");
    size_t es = cr_dtype_size(dt);
    if (!es) return cr_fail(CR_ERR_ARG, "array '%s': unknown dtype %d", name, (int)dt);
    if (count < 0 || (uint64_t)count > (uint64_t)INT64_MAX / es)
        return cr_fail(CR_ERR_ARG, "array '%s': bad element count %lld", name, (long long)count);
    if (count > 0 && !data) return cr_fail(CR_ERR_ARG, "array '%s': NULL data for %lld elements", name, (long long)count);
    for (int64_t i = 0; i < w->n_arr; i++)
        if (!strcmp(w->arr[i].name, name)) return cr_fail(CR_ERR_ARG, "array '%s' added twice", name);
    cr_status st = cr_grow((void **)&w->arr, &w->cap_arr, w->n_arr + 1, sizeof *w->arr);
    if (st) return st;
    warray *a = &w->arr[w->n_arr++];
    memset(a, 0, sizeof *a);
    memcpy(a->name, name, name_len);
    a->dtype = dt;
    a->data = data;
    a->count = count;
    a->nbytes = (uint64_t)count * es;
    return CR_OK;
}

/* Buffered output that folds every byte it writes into a running CRC. Small pieces are gathered in buf;
 * pieces at least as large as the buffer go straight from the caller's memory to write(2). */
typedef struct {
    int fd;
    uint8_t *buf;
    size_t cap, n;
    uint32_t crc;
    uint64_t pos;           /* bytes accepted so far (buffered or written) */
    int err;                /* errno of the first failure, 0 while fine */
} bufw;

static int raw_write(bufw *b, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len) {
        /* Linux writes at most about 2 GiB per call; larger arrays take several. */
        size_t chunk = len < ((size_t)1 << 30) ? len : ((size_t)1 << 30);
        ssize_t k = write(b->fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            b->err = errno;
            return -1;
        }
        if (k == 0) {
            b->err = EIO;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static int bufw_flush(bufw *b) {
    if (b->err) return -1;
    if (!b->n) return 0;
    b->crc = cr_crc32c(b->crc, b->buf, b->n);
    int rc = raw_write(b, b->buf, b->n);
    b->n = 0;
    return rc;
}

static int bufw_put(bufw *b, const void *data, size_t len) {
    if (b->err) return -1;
    b->pos += len;
    if (len <= b->cap - b->n) {
        if (len) memcpy(b->buf + b->n, data, len);
        b->n += len;
        return 0;
    }
    if (bufw_flush(b)) return -1;
    if (len < b->cap) {
        memcpy(b->buf, data, len);
        b->n = len;
        return 0;
    }
    b->crc = cr_crc32c(b->crc, data, len);
    return raw_write(b, data, len);
}

static int bufw_zeros(bufw *b, uint64_t len) {
    static const uint8_t zeros[DATA_ALIGN];
    while (len) {
        size_t k = len < sizeof zeros ? (size_t)len : sizeof zeros;
        if (bufw_put(b, zeros, k)) return -1;
        len -= k;
    }
    return 0;
}

/* Where everything goes; computed once so that the header can be written first. */
typedef struct {
    uint64_t meta_len, table_off, trailer_off, file_size;
    uint64_t *arr_off;      /* (n_arr) */
} layout;

static uint64_t meta_entry_size(const wmeta *m) {
    return round_up(META_HDR + m->key_len + (m->type == CR_META_STR ? m->str_len : 8), 8);
}

static void compute_layout(const cr_filew *w, layout *L) {
    L->meta_len = 0;
    for (int64_t i = 0; i < w->n_meta; i++) L->meta_len += meta_entry_size(&w->meta[i]);
    L->table_off = HEADER_SIZE + L->meta_len;
    uint64_t end = L->table_off + (uint64_t)w->n_arr * ENTRY_SIZE;
    for (int64_t i = 0; i < w->n_arr; i++) {
        L->arr_off[i] = round_up(end, DATA_ALIGN);
        end = L->arr_off[i] + w->arr[i].nbytes;
    }
    L->trailer_off = round_up(end, 8);
    L->file_size = L->trailer_off + TRAILER_SIZE;
}

static int write_body(bufw *b, const cr_filew *w, const layout *L) {
    uint8_t h[HEADER_SIZE] = {0};
    h[0] = 0x7f, h[1] = 'C', h[2] = 'R';
    memcpy(h + 3, w->kind, 3);
    h[6] = '\r', h[7] = '\n';
    put_u32(h + 8, w->version);
    put_u32(h + 12, HEADER_SIZE);
    put_u64(h + 16, L->file_size);
    put_u64(h + 24, HEADER_SIZE);
    put_u64(h + 32, L->meta_len);
    put_u64(h + 40, L->table_off);
    put_u64(h + 48, (uint64_t)w->n_arr);
    if (bufw_put(b, h, sizeof h)) return -1;

    for (int64_t i = 0; i < w->n_meta; i++) {
        const wmeta *m = &w->meta[i];
        uint8_t e[META_HDR + 8];
        size_t value_len = m->type == CR_META_STR ? m->str_len : 8;
        e[0] = (uint8_t)m->type;
        e[1] = 0;
        put_u16(e + 2, (uint16_t)m->key_len);
        put_u32(e + 4, (uint32_t)value_len);
        if (bufw_put(b, e, META_HDR) || bufw_put(b, m->key, m->key_len)) return -1;
        if (m->type == CR_META_STR) {
            if (bufw_put(b, m->str, m->str_len)) return -1;
        } else {
            put_u64(e + META_HDR, m->bits);
            if (bufw_put(b, e + META_HDR, 8)) return -1;
        }
        uint64_t used = META_HDR + m->key_len + value_len;
        if (bufw_zeros(b, meta_entry_size(m) - used)) return -1;
    }

    for (int64_t i = 0; i < w->n_arr; i++) {
        const warray *a = &w->arr[i];
        uint8_t e[ENTRY_SIZE] = {0};
        memcpy(e, a->name, NAME_BYTES);
        put_u32(e + 64, (uint32_t)a->dtype);
        put_u32(e + 68, (uint32_t)cr_dtype_size(a->dtype));
        put_u64(e + 72, (uint64_t)a->count);
        put_u64(e + 80, L->arr_off[i]);
        put_u64(e + 88, a->nbytes);
        if (bufw_put(b, e, sizeof e)) return -1;
    }

    for (int64_t i = 0; i < w->n_arr; i++) {
        CR_ASSERT(b->pos <= L->arr_off[i]);
        if (bufw_zeros(b, L->arr_off[i] - b->pos)) return -1;
        if (w->arr[i].nbytes && bufw_put(b, w->arr[i].data, (size_t)w->arr[i].nbytes)) return -1;
    }
    CR_ASSERT(b->pos <= L->trailer_off);
    if (bufw_zeros(b, L->trailer_off - b->pos) || bufw_flush(b)) return -1;

    /* The trailer is not part of what the CRC covers, so it bypasses the CRC-folding buffer. */
    uint8_t t[TRAILER_SIZE];
    put_u32(t, b->crc);
    memcpy(t + 4, "CEND", 4);
    return raw_write(b, t, sizeof t);
}

/* After the rename the new file is complete and in place; syncing the directory only makes the rename
 * itself survive a power cut. Some file systems refuse to sync directories, so failure here is a warning. */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        cr_log(CR_LOG_WARN, "%s: could not sync directory %s: %s", path, dir, strerror(errno));
    if (fd >= 0) close(fd);
}

cr_status cr_filew_commit(cr_filew *w, const char *path) {
    if (!path || !*path) return cr_fail(CR_ERR_ARG, "cr_filew_commit: empty path");
    cr_status st = CR_OK;
    layout L = {0};
    bufw b = {.fd = -1};
    size_t tmp_cap = strlen(path) + CR_TMP_SUFFIX_MAX + 1;
    char *tmp = cr_malloc(tmp_cap);
    if (tmp) tmp[0] = '\0';   /* empty until cr_tmp_create has made a file that failure must remove */
    L.arr_off = cr_malloc(((size_t)w->n_arr + 1) * sizeof *L.arr_off);
    if (!tmp || !L.arr_off) {
        st = cr_fail(CR_ERR_NOMEM, "%s: out of memory preparing to write", path);
        goto done;
    }
    compute_layout(w, &L);
    /* Small files need only a small buffer. */
    b.cap = L.file_size < WRITE_BUF ? (size_t)L.file_size : WRITE_BUF;
    b.buf = cr_malloc(b.cap);
    if (!b.buf) {
        st = cr_fail(CR_ERR_NOMEM, "%s: out of memory for a %zu-byte write buffer", path, b.cap);
        goto done;
    }

    cr_tmp_sweep(path);
    b.fd = cr_tmp_create(path, tmp, tmp_cap);
    if (b.fd < 0) {
        st = cr_fail(CR_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        tmp[0] = '\0';     /* nothing to unlink */
        goto done;
    }
    if (write_body(&b, w, &L) != 0 || fsync(b.fd) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: write failed: %s", path, strerror(b.err ? b.err : errno));
        goto done;
    }
    int fd = b.fd;
    b.fd = -1;
    if (close(fd) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: write failed (close): %s", path, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = cr_fail(CR_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto done;
    }
    tmp[0] = '\0';
    sync_dir(path);

done:
    if (b.fd >= 0) close(b.fd);
    if (st != CR_OK && tmp && tmp[0]) unlink(tmp);
    cr_free(b.buf);
    cr_free(L.arr_off);
    cr_free(tmp);
    return st;
}

/* ==== reader ============================================================================================ */

struct cr_file {
    char *name;             /* path or caller's name, for messages */
    const uint8_t *base;    /* (size) bytes: the mapping or the caller's buffer */
    size_t size;
    int mapped;
    char kind[4];
    uint32_t version, crc;
    cr_meta *meta;          /* (n_meta) in file order */
    const cr_meta **meta_sorted;    /* (n_meta) by key, for lookups and the duplicate check */
    char *strs;             /* keys and string values, NUL-terminated, back to back */
    int64_t n_meta;
    cr_array *arr;          /* (n_arr) in file order */
    const cr_array **arr_sorted;    /* (n_arr) by name */
    int64_t n_arr;
};

void cr_file_close(cr_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    cr_free(f->meta);
    cr_free(f->meta_sorted);
    cr_free(f->strs);
    cr_free(f->arr);
    cr_free(f->arr_sorted);
    cr_free(f->name);
    cr_free(f);
}

static int cmp_meta(const void *a, const void *b) {
    return strcmp((*(const cr_meta *const *)a)->key, (*(const cr_meta *const *)b)->key);
}
static int cmp_arr(const void *a, const void *b) {
    return strcmp((*(const cr_array *const *)a)->name, (*(const cr_array *const *)b)->name);
}

static cr_status check_size(const char *name, uint64_t size) {
    if (size == 0) return cr_fail(CR_ERR_FORMAT, "%s: empty file, not a crossrec file", name);
    if (size < MIN_FILE)
        return cr_fail(CR_ERR_FORMAT, "%s: %llu bytes is too small for a crossrec file (at least %u)", name,
                       (unsigned long long)size, MIN_FILE);
    return CR_OK;
}

/* Header, version, size, trailer and CRC: everything that does not need allocation. */
static cr_status check_header(cr_file *f, const char *kind, uint32_t max_version) {
    const uint8_t *b = f->base;
    const char *name = f->name;
    cr_status st = check_size(name, f->size);
    if (st) return st;
    if (b[0] != 0x7f || b[1] != 'C' || b[2] != 'R' || b[6] != '\r' || b[7] != '\n' || !valid_kind_char(b[3]) ||
        !valid_kind_char(b[4]) || !valid_kind_char(b[5]))
        return cr_fail(CR_ERR_FORMAT, "%s: not a crossrec file (bad magic bytes)", name);
    memcpy(f->kind, b + 3, 3);
    f->kind[3] = '\0';
    if (kind && strcmp(kind, f->kind))
        return cr_fail(CR_ERR_FORMAT, "%s: is a crossrec %s file, expected %s", name, f->kind, kind);
    f->version = get_u32(b + 8);
    if (f->version == 0) return cr_fail(CR_ERR_FORMAT, "%s: bad file version 0", name);
    /* Before the CRC: a newer writer may have changed what follows, and "upgrade" is the useful message; but a
     * flipped bit in the version looks the same, so say so when the checksum (as this version lays it out) fails. */
    if (f->version > max_version) {
        int damaged = memcmp(b + f->size - 4, "CEND", 4) || get_u32(b + f->size - TRAILER_SIZE) != cr_crc32c(0, b, f->size - TRAILER_SIZE);
        return cr_fail(CR_ERR_VERSION, "%s: file version %u is newer than this crossrec supports (%u); upgrade crossrec%s", name,
                       f->version, max_version, damaged ? " (unless the file is damaged: its checksum does not match)" : "");
    }
    uint32_t header_size = get_u32(b + 12);
    if (header_size != HEADER_SIZE)
        return cr_fail(CR_ERR_FORMAT, "%s: header size %u, expected %u", name, header_size, HEADER_SIZE);
    uint64_t file_size = get_u64(b + 16);
    if (file_size != (uint64_t)f->size)
        return cr_fail(CR_ERR_FORMAT, "%s: truncated or extended: header says %llu bytes, file has %llu", name,
                       (unsigned long long)file_size, (unsigned long long)f->size);
    if (memcmp(b + f->size - 4, "CEND", 4))
        return cr_fail(CR_ERR_FORMAT, "%s: no end marker \"CEND\" in the last 4 bytes (incomplete file)", name);
    uint32_t stored = get_u32(b + f->size - TRAILER_SIZE);
    f->crc = cr_crc32c(0, b, f->size - TRAILER_SIZE);
    if (stored != f->crc)
        return cr_fail(CR_ERR_FORMAT, "%s: checksum mismatch: stored crc32c 0x%08x, computed 0x%08x (corrupt file)", name,
                       stored, f->crc);
    if (!all_zero(b + 56, HEADER_SIZE - 56))
        return cr_fail(CR_ERR_FORMAT, "%s: reserved header bytes 56..63 are not zero", name);
    return CR_OK;
}

/* Walks the metadata block [off, end); with f->meta == NULL only validates and counts entries and string
 * bytes, otherwise also fills f->meta and f->strs (which were sized by the first walk). */
static cr_status walk_meta(cr_file *f, uint64_t off, uint64_t end, int64_t *n_out, uint64_t *str_bytes) {
    const uint8_t *b = f->base;
    const char *name = f->name;
    int64_t n = 0;
    uint64_t sb = 0;
    for (uint64_t p = off; p < end; n++) {
        if (end - p < META_HDR)
            return cr_fail(CR_ERR_FORMAT, "%s: metadata entry %lld at offset %llu: header runs past the block end %llu",
                           name, (long long)n, (unsigned long long)p, (unsigned long long)end);
        unsigned type = b[p];
        uint32_t key_len = get_u16(b + p + 2), value_len = get_u32(b + p + 4);
        if (type < CR_META_I64 || type > CR_META_STR)
            return cr_fail(CR_ERR_FORMAT, "%s: metadata entry %lld at offset %llu: unknown type %u", name, (long long)n,
                           (unsigned long long)p, type);
        if (b[p + 1] != 0)
            return cr_fail(CR_ERR_FORMAT, "%s: metadata entry %lld at offset %llu: reserved byte is %u, not 0", name,
                           (long long)n, (unsigned long long)p, b[p + 1]);
        if (key_len == 0)
            return cr_fail(CR_ERR_FORMAT, "%s: metadata entry %lld at offset %llu: empty key", name, (long long)n,
                           (unsigned long long)p);
        uint64_t body = (uint64_t)key_len + value_len;       /* < 2^33: cannot overflow */
        uint64_t padded = round_up(META_HDR + body, 8);
        if (padded > end - p)
            return cr_fail(CR_ERR_FORMAT,
                           "%s: metadata entry %lld at offset %llu: key %u + value %u bytes run past the block end %llu",
                           name, (long long)n, (unsigned long long)p, key_len, value_len, (unsigned long long)end);
        const uint8_t *key = b + p + META_HDR, *val = key + key_len;
        if (memchr(key, 0, key_len))
            return cr_fail(CR_ERR_FORMAT, "%s: metadata entry %lld at offset %llu: key contains a NUL byte", name,
                           (long long)n, (unsigned long long)p);
        if (type != CR_META_STR && value_len != 8)
            return cr_fail(CR_ERR_FORMAT, "%s: metadata '%.*s': %s value of %u bytes, expected 8", name, (int)key_len,
                           (const char *)key, meta_type_name((cr_meta_type)type), value_len);
        if (type == CR_META_STR && memchr(val, 0, value_len))
            return cr_fail(CR_ERR_FORMAT, "%s: metadata '%.*s': string value contains a NUL byte", name, (int)key_len,
                           (const char *)key);
        if (!all_zero(val + value_len, (size_t)(padded - META_HDR - body)))
            return cr_fail(CR_ERR_FORMAT, "%s: metadata '%.*s': padding bytes are not zero", name, (int)key_len,
                           (const char *)key);
        if (f->meta) {
            cr_meta *m = &f->meta[n];
            char *s = f->strs + sb;
            memcpy(s, key, key_len);
            s[key_len] = '\0';
            m->key = s;
            m->type = (cr_meta_type)type;
            if (type == CR_META_STR) {
                memcpy(s + key_len + 1, val, value_len);
                s[key_len + 1 + value_len] = '\0';
                m->str = s + key_len + 1;
            } else {
                uint64_t bits = get_u64(val);
                if (type == CR_META_I64) m->i64 = (int64_t)bits;
                else memcpy(&m->f64, &bits, 8);
            }
        }
        sb += key_len + 1u + (type == CR_META_STR ? value_len + 1u : 0u);
        p += padded;
    }
    *n_out = n;
    *str_bytes = sb;
    return CR_OK;
}

static cr_status parse_body(cr_file *f) {
    const uint8_t *b = f->base;
    const char *name = f->name;
    uint64_t data_end = (uint64_t)f->size - TRAILER_SIZE;
    uint64_t meta_off = get_u64(b + 24), meta_len = get_u64(b + 32);
    uint64_t table_off = get_u64(b + 40), n_arrays = get_u64(b + 48);
    /* Every comparison below is arranged so that no sum of two file-controlled values is formed before both
     * are known to be at most data_end. */
    if (meta_off < HEADER_SIZE || meta_off > data_end || meta_len > data_end - meta_off)
        return cr_fail(CR_ERR_FORMAT, "%s: metadata block at offset %llu, length %llu lies outside bytes [64, %llu)", name,
                       (unsigned long long)meta_off, (unsigned long long)meta_len, (unsigned long long)data_end);
    uint64_t meta_end = meta_off + meta_len;
    if (table_off < meta_end || table_off > data_end)
        return cr_fail(CR_ERR_FORMAT, "%s: array table offset %llu lies outside [%llu, %llu)", name,
                       (unsigned long long)table_off, (unsigned long long)meta_end, (unsigned long long)data_end);
    if (n_arrays > (data_end - table_off) / ENTRY_SIZE)
        return cr_fail(CR_ERR_FORMAT, "%s: %llu arrays do not fit in the file (table at offset %llu, data ends at %llu)",
                       name, (unsigned long long)n_arrays, (unsigned long long)table_off, (unsigned long long)data_end);
    uint64_t table_end = table_off + n_arrays * ENTRY_SIZE;

    int64_t n_meta;
    uint64_t str_bytes;
    cr_status st = walk_meta(f, meta_off, meta_end, &n_meta, &str_bytes);
    if (st) return st;
    if (n_meta > 0) {
        /* n_meta <= meta_len / 16 and str_bytes <= 2 * meta_len: both bounded by the file size. */
        f->meta = cr_calloc((size_t)n_meta, sizeof *f->meta);
        f->meta_sorted = cr_malloc((size_t)n_meta * sizeof *f->meta_sorted);
        f->strs = cr_malloc((size_t)str_bytes);
        if (!f->meta || !f->meta_sorted || !f->strs)
            return cr_fail(CR_ERR_NOMEM, "%s: out of memory for %lld metadata entries", name, (long long)n_meta);
        st = walk_meta(f, meta_off, meta_end, &n_meta, &str_bytes);
        if (st) return st;
        f->n_meta = n_meta;
        for (int64_t i = 0; i < n_meta; i++) f->meta_sorted[i] = &f->meta[i];
        qsort(f->meta_sorted, (size_t)n_meta, sizeof *f->meta_sorted, cmp_meta);
        for (int64_t i = 1; i < n_meta; i++)
            if (!strcmp(f->meta_sorted[i - 1]->key, f->meta_sorted[i]->key))
                return cr_fail(CR_ERR_FORMAT, "%s: duplicate metadata key '%s'", name, f->meta_sorted[i]->key);
    }

    if (n_arrays == 0) return CR_OK;
    f->arr = cr_calloc((size_t)n_arrays, sizeof *f->arr);
    f->arr_sorted = cr_malloc((size_t)n_arrays * sizeof *f->arr_sorted);
    if (!f->arr || !f->arr_sorted)
        return cr_fail(CR_ERR_NOMEM, "%s: out of memory for %llu array entries", name, (unsigned long long)n_arrays);
    for (uint64_t i = 0; i < n_arrays; i++) {
        const uint8_t *e = b + table_off + i * ENTRY_SIZE;
        const uint8_t *nul = memchr(e, 0, NAME_BYTES);
        if (!nul)
            return cr_fail(CR_ERR_FORMAT, "%s: array entry %llu: name is not NUL-terminated within %u bytes", name,
                           (unsigned long long)i, NAME_BYTES);
        const char *an = (const char *)e;
        if (nul == e) return cr_fail(CR_ERR_FORMAT, "%s: array entry %llu: empty name", name, (unsigned long long)i);
        if (!all_zero(nul, (size_t)(e + NAME_BYTES - nul)))
            return cr_fail(CR_ERR_FORMAT, "%s: array '%s': name padding is not zero", name, an);
        uint32_t dtype = get_u32(e + 64), elem_size = get_u32(e + 68);
        uint64_t count = get_u64(e + 72), offset = get_u64(e + 80), nbytes = get_u64(e + 88);
        size_t want_es = cr_dtype_size((cr_dtype)dtype);
        if (!want_es) return cr_fail(CR_ERR_FORMAT, "%s: array '%s': unknown dtype %u", name, an, dtype);
        if (elem_size != want_es)
            return cr_fail(CR_ERR_FORMAT, "%s: array '%s': element size %u, but dtype %s has %zu", name, an, elem_size,
                           cr_dtype_name((cr_dtype)dtype), want_es);
        if (count > (uint64_t)INT64_MAX / want_es)
            return cr_fail(CR_ERR_FORMAT, "%s: array '%s': element count %llu is too large", name, an,
                           (unsigned long long)count);
        if (nbytes != count * want_es)
            return cr_fail(CR_ERR_FORMAT, "%s: array '%s': %llu bytes, but %llu elements of %zu bytes make %llu", name, an,
                           (unsigned long long)nbytes, (unsigned long long)count, want_es,
                           (unsigned long long)(count * want_es));
        if (offset % DATA_ALIGN)
            return cr_fail(CR_ERR_FORMAT, "%s: array '%s': offset %llu is not a multiple of %u", name, an,
                           (unsigned long long)offset, DATA_ALIGN);
        if (offset < table_end || offset > data_end || nbytes > data_end - offset)
            return cr_fail(CR_ERR_FORMAT, "%s: array '%s': %llu bytes at offset %llu lie outside the data region [%llu, %llu)",
                           name, an, (unsigned long long)nbytes, (unsigned long long)offset,
                           (unsigned long long)table_end, (unsigned long long)data_end);
        cr_array *a = &f->arr[i];
        a->name = an;       /* NUL-terminated inside the mapping, checked above */
        a->dtype = (cr_dtype)dtype;
        a->count = (int64_t)count;
        a->data = b + offset;
        a->nbytes = (int64_t)nbytes;
        a->offset = (int64_t)offset;
        f->arr_sorted[i] = a;
    }
    f->n_arr = (int64_t)n_arrays;
    qsort(f->arr_sorted, (size_t)n_arrays, sizeof *f->arr_sorted, cmp_arr);
    for (int64_t i = 1; i < f->n_arr; i++)
        if (!strcmp(f->arr_sorted[i - 1]->name, f->arr_sorted[i]->name))
            return cr_fail(CR_ERR_FORMAT, "%s: duplicate array name '%s'", name, f->arr_sorted[i]->name);
    return CR_OK;
}

static cr_status new_file(cr_file **out, const char *name) {
    cr_file *f = cr_calloc(1, sizeof *f);
    size_t len = strlen(name);
    char *copy = f ? cr_malloc(len + 1) : NULL;
    if (!copy) {
        cr_free(f);
        return cr_fail(CR_ERR_NOMEM, "%s: out of memory opening the file", name);
    }
    memcpy(copy, name, len + 1);
    f->name = copy;
    *out = f;
    return CR_OK;
}

static cr_status finish_open(cr_file **out, cr_file *f, const char *kind, uint32_t max_version) {
    cr_status st = check_header(f, kind, max_version);
    if (!st) st = parse_body(f);
    if (st) {
        cr_file_close(f);
        return st;
    }
    *out = f;
    return CR_OK;
}

cr_status cr_file_open_mem(cr_file **out, const void *buf, size_t len, const char *name, const char *kind,
                           uint32_t max_version) {
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf && len) return cr_fail(CR_ERR_ARG, "%s: NULL buffer of %zu bytes", name, len);
    cr_file *f;
    cr_status st = new_file(&f, name);
    if (st) return st;
    f->base = buf;
    f->size = len;
    return finish_open(out, f, kind, max_version);
}

cr_status cr_file_open(cr_file **out, const char *path, const char *kind, uint32_t max_version) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cr_fail(CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cr_fail(CR_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return cr_fail(CR_ERR_IO, "%s: not a regular file", path);
    }
    cr_status st = check_size(path, (uint64_t)sb.st_size);   /* also keeps mmap away from 0 bytes */
    if (st == CR_OK && (uint64_t)sb.st_size > SIZE_MAX)
        st = cr_fail(CR_ERR_LIMIT, "%s: %lld bytes do not fit in this address space", path, (long long)sb.st_size);
    cr_file *f = NULL;
    if (st == CR_OK) st = new_file(&f, path);
    if (st) {
        close(fd);
        return st;
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);   /* the mapping keeps the file alive */
    if (map == MAP_FAILED) {
        cr_file_close(f);
        return cr_fail(CR_ERR_IO, "%s: cannot map %lld bytes: %s", path, (long long)sb.st_size, strerror(e));
    }
    f->base = map;
    f->size = (size_t)sb.st_size;
    f->mapped = 1;
    if ((st = finish_open(out, f, kind, max_version)) != CR_OK) return st;
    cr_file_release(f);     /* checking the CRC read every page */
    return CR_OK;
}

void cr_file_release(const cr_file *f) {
    /* The mapping is read-only and private, so dropping its pages loses nothing: one that is read again is
     * faulted back in from the page cache. */
    if (f && f->mapped) madvise((void *)f->base, f->size, MADV_DONTNEED);
}

const char *cr_file_kind(const cr_file *f) { return f->kind; }
uint32_t cr_file_version(const cr_file *f) { return f->version; }
int64_t cr_file_size(const cr_file *f) { return (int64_t)f->size; }
uint32_t cr_file_crc(const cr_file *f) { return f->crc; }
int64_t cr_file_n_meta(const cr_file *f) { return f->n_meta; }
int64_t cr_file_n_arrays(const cr_file *f) { return f->n_arr; }

const cr_meta *cr_file_meta_at(const cr_file *f, int64_t i) {
    CR_ASSERT(i >= 0 && i < f->n_meta);
    return &f->meta[i];
}

const cr_array *cr_file_array_at(const cr_file *f, int64_t i) {
    CR_ASSERT(i >= 0 && i < f->n_arr);
    return &f->arr[i];
}

const cr_meta *cr_file_find_meta(const cr_file *f, const char *key) {
    if (!f->n_meta) return NULL;
    cr_meta probe = {.key = key};
    const cr_meta *pp = &probe;
    const cr_meta **hit = bsearch(&pp, f->meta_sorted, (size_t)f->n_meta, sizeof *f->meta_sorted, cmp_meta);
    return hit ? *hit : NULL;
}

static cr_status get_meta(const cr_file *f, const char *key, cr_meta_type type, const cr_meta **out) {
    const cr_meta *m = cr_file_find_meta(f, key);
    if (!m) return cr_fail(CR_ERR_FORMAT, "%s: missing metadata key '%s'", f->name, key);
    if (m->type != type)
        return cr_fail(CR_ERR_FORMAT, "%s: metadata '%s' is %s, expected %s", f->name, key, meta_type_name(m->type),
                       meta_type_name(type));
    *out = m;
    return CR_OK;
}

cr_status cr_file_get_i64(const cr_file *f, const char *key, int64_t *v) {
    const cr_meta *m = NULL;
    cr_status st = get_meta(f, key, CR_META_I64, &m);
    if (!st) *v = m->i64;
    return st;
}

cr_status cr_file_get_f64(const cr_file *f, const char *key, double *v) {
    const cr_meta *m = NULL;
    cr_status st = get_meta(f, key, CR_META_F64, &m);
    if (!st) *v = m->f64;
    return st;
}

cr_status cr_file_get_str(const cr_file *f, const char *key, const char **v) {
    const cr_meta *m = NULL;
    cr_status st = get_meta(f, key, CR_META_STR, &m);
    if (!st) *v = m->str;
    return st;
}

cr_status cr_file_get_array(const cr_file *f, const char *name, cr_dtype dt, int64_t want_count, const void **data,
                            int64_t *count) {
    const cr_array *a = NULL;
    if (f->n_arr) {
        cr_array probe = {.name = name};
        const cr_array *pp = &probe;
        const cr_array **hit = bsearch(&pp, f->arr_sorted, (size_t)f->n_arr, sizeof *f->arr_sorted, cmp_arr);
        a = hit ? *hit : NULL;
    }
    if (!a) return cr_fail(CR_ERR_FORMAT, "%s: missing array '%s'", f->name, name);
    if (a->dtype != dt)
        return cr_fail(CR_ERR_FORMAT, "%s: array '%s' has dtype %s, expected %s", f->name, name, cr_dtype_name(a->dtype),
                       cr_dtype_name(dt));
    if (want_count >= 0 && a->count != want_count)
        return cr_fail(CR_ERR_FORMAT, "%s: array '%s' has %lld elements, expected %lld", f->name, name,
                       (long long)a->count, (long long)want_count);
    if (data) *data = a->data;
    if (count) *count = a->count;
    return CR_OK;
}

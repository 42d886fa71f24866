/* crossrec/io.h — crossrec's binary file container (.crd .crs .crm .crt), CRC32C, atomic writes.
 *
 * Every crossrec file has the same shape (docs/FORMAT.md):
 *
 *   offset 0   header (64 bytes)
 *              magic[8]      "\x7f" "CR" kind[3] "\r\n"   e.g. "\x7fCRCRD\r\n" for a .crd
 *              u32 version   format version of this kind (readers refuse newer ones)
 *              u32 header_size (64)
 *              u64 file_size
 *              u64 meta_off, u64 meta_len        typed key-value metadata block
 *              u64 table_off, u64 n_arrays       array table, 96 bytes per entry
 *              (zero padding to 64 bytes)
 *   ...        metadata: per entry u8 type (1 i64, 2 f64, 3 string), u8 0, u16 key_len, u32 value_len, key bytes,
 *              value bytes (i64/f64 little-endian 8 bytes; string bytes), each entry padded to 8 bytes
 *   ...        array table: per entry char name[64] (NUL-padded), u32 dtype, u32 elem_size, u64 count, u64 offset,
 *              u64 nbytes
 *   ...        array data, each starting at a 64-byte aligned offset
 *   file_size-8: u32 crc32c of bytes [0, file_size-8), u32 "CEND"
 *
 * All integers little-endian. Writers build the file in a temp file next to the target (PATH.tmp.PID.N), fsync
 * it, rename it over the target and fsync the directory, so a crash leaves either the old file or the complete
 * new one. A writer killed before its rename leaves its temp file; the next write of the same target removes
 * the temp files of processes that no longer run (logged), so repeated crashes do not fill the disk.
 * Readers mmap the file read-only, verify the CRC and every count, offset and size against the file size
 * before handing out any pointer, and never read out of bounds. */
#ifndef CROSSREC_IO_H
#define CROSSREC_IO_H

#include "crossrec/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CRC32C (Castagnoli) ---- */

/* crc32c of data, continuing from `crc` (start with 0). "123456789" -> 0xE3069283. */
uint32_t cr_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t cr_crc32c_ref(uint32_t crc, const void *data, size_t len);   /* bitwise reference */
/* The two fast paths cr_crc32c chooses between, exported so tests and benches can check each against the
 * reference: slicing-by-8 in portable C, and the SSE4.2 crc32 instruction (x86-64 CPUs that have it;
 * cr_crc32c_hw asserts cr_crc32c_hw_available()). Thread-safe. */
uint32_t cr_crc32c_sw(uint32_t crc, const void *data, size_t len);
int cr_crc32c_hw_available(void);
uint32_t cr_crc32c_hw(uint32_t crc, const void *data, size_t len);

/* ---- paths ---- */

/* Creates dir and its missing parents (mkdir -p). CR_ERR_IO naming the part that failed, or when dir exists
 * but is not a directory. */
cr_status cr_mkdirs(const char *dir);

typedef struct {
    const void *data;
    size_t len;
} cr_span;

/* Writes the parts one after the other as the file at path, atomically: a temporary file next to it, fsync,
 * rename over path, fsync of the directory; a failure leaves path as it was and no temporary file. CR_ERR_IO
 * naming path and the errno text, CR_ERR_NOMEM. */
cr_status cr_write_atomic(const char *path, const cr_span *parts, int n_parts);

/* ---- dtypes ---- */

typedef enum { CR_DT_U8 = 1, CR_DT_I32, CR_DT_I64, CR_DT_F32, CR_DT_F64, CR_DT_F16 } cr_dtype;
size_t cr_dtype_size(cr_dtype dt);
const char *cr_dtype_name(cr_dtype dt);

/* ---- writer ---- */

typedef struct cr_filew cr_filew;

/* Starts a file of the given kind ("CRD", "CRS", "CRM", "CRT"; 3 characters) and version. Nothing touches the
 * disk until cr_filew_commit. */
cr_status cr_filew_new(cr_filew **w, const char *kind, uint32_t version);
cr_status cr_filew_meta_i64(cr_filew *w, const char *key, int64_t v);
cr_status cr_filew_meta_f64(cr_filew *w, const char *key, double v);
cr_status cr_filew_meta_str(cr_filew *w, const char *key, const char *v);
/* Adds an array; `data` is borrowed and must stay valid until commit. Names are unique, < 64 bytes. */
cr_status cr_filew_array(cr_filew *w, const char *name, cr_dtype dt, const void *data, int64_t count);
/* Writes path atomically (temp + fsync + rename + fsync dir). On failure no file is left at path (an older
 * file there is untouched) and no temp file remains. */
cr_status cr_filew_commit(cr_filew *w, const char *path);
void cr_filew_free(cr_filew *w);

/* ---- reader ---- */

typedef struct cr_file cr_file;

typedef enum { CR_META_I64 = 1, CR_META_F64 = 2, CR_META_STR = 3 } cr_meta_type;

typedef struct {
    const char *key;
    cr_meta_type type;
    int64_t i64;
    double f64;
    const char *str;    /* NUL-terminated copy owned by the cr_file */
} cr_meta;

typedef struct {
    const char *name;   /* NUL-terminated, inside the mapping; valid until cr_file_close */
    cr_dtype dtype;
    int64_t count;
    const void *data;   /* points into the read-only mapping; 64-byte aligned */
    int64_t nbytes;     /* count * cr_dtype_size(dtype) */
    int64_t offset;     /* byte offset of data in the file (for inspect) */
} cr_array;

/* Opens and fully validates a file. `kind` may be NULL to accept any crossrec kind (inspect). Newer versions
 * than max_version fail with CR_ERR_VERSION; a wrong magic, bad CRC, bad offset or count with CR_ERR_FORMAT;
 * messages name the path and the bad value. */
cr_status cr_file_open(cr_file **f, const char *path, const char *kind, uint32_t max_version);
/* Same, over a caller-owned buffer (fuzzing, tests); the buffer must outlive the cr_file. Array data is
 * 64-byte aligned only when buf is. */
cr_status cr_file_open_mem(cr_file **f, const void *buf, size_t len, const char *name, const char *kind,
                           uint32_t max_version);
void cr_file_close(cr_file *f);
/* Drops a mapped file's pages from this process's resident memory (no-op for cr_file_open_mem). Pointers stay
 * valid: a page read again comes back from the page cache. Readers call it after checking a whole file (the
 * CRC, every index), so that a process's memory counts the arrays it uses, not every byte it verified. */
void cr_file_release(const cr_file *f);

const char *cr_file_kind(const cr_file *f);      /* "CRD" ... */
uint32_t cr_file_version(const cr_file *f);
int64_t cr_file_size(const cr_file *f);
uint32_t cr_file_crc(const cr_file *f);
int64_t cr_file_n_meta(const cr_file *f);
const cr_meta *cr_file_meta_at(const cr_file *f, int64_t i);
int64_t cr_file_n_arrays(const cr_file *f);
const cr_array *cr_file_array_at(const cr_file *f, int64_t i);

/* The metadata entry `key`, or NULL when the file has none (optional keys added by later writers). */
const cr_meta *cr_file_find_meta(const cr_file *f, const char *key);
/* Typed lookups; CR_ERR_FORMAT naming the file and key when absent or of another type/dtype. */
cr_status cr_file_get_i64(const cr_file *f, const char *key, int64_t *v);
cr_status cr_file_get_f64(const cr_file *f, const char *key, double *v);
cr_status cr_file_get_str(const cr_file *f, const char *key, const char **v);
/* Finds an array and checks its dtype and, when want_count >= 0, its element count. */
cr_status cr_file_get_array(const cr_file *f, const char *name, cr_dtype dt, int64_t want_count,
                            const void **data, int64_t *count);

/* ---- NumPy .npy (src/io/npy.c) ---- */

/* Writes the .npy v1.0 header of a C-order float32 ('<f4') matrix of shape (rows, cols) into buf, exactly as
 * numpy.save does (NumPy >= 1.24: 21 - digits(rows) spaces of room to grow, padded to 64 bytes with spaces and
 * a final '\n'); *len = its size (a multiple of 64). CR_ERR_ARG for a negative shape or cap too small (256 is
 * always enough). */
cr_status cr_npy_header_f32(int64_t rows, int64_t cols, char *buf, size_t cap, size_t *len);
/* Writes data (rows, cols), row-major, as a .npy file at path, atomically (temp file next to it + fsync +
 * rename + fsync of the directory): a failure leaves no file at path (an older one stays untouched) and no
 * temp file. "-": standard output. CR_ERR_IO naming the path; CR_ERR_ARG; CR_ERR_NOMEM. */
cr_status cr_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols);
/* Reads a .npy v1.0 file of a 2-d C-order '<f4' matrix. *data (caller cr_free()s) holds rows * cols floats.
 * CR_ERR_IO (open/read), CR_ERR_FORMAT naming the path for another version, dtype, order, rank, or a data size
 * that does not match the shape; CR_ERR_NOMEM. On error *data is NULL. */
cr_status cr_npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols);

#ifdef __cplusplus
}
#endif
#endif

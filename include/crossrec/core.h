/* crossrec/core.h — status codes, error messages, logging, allocation, arena, string pool, RNG, hash.
 *
 * Everything else in crossrec stands on this header. Conventions:
 *  - Functions that can fail because of the world (input, files, memory) return cr_status and leave a
 *    one-line message for the calling thread, read with cr_errmsg() (and an optional hint, cr_errhint()).
 *  - Broken invariants are bugs: CR_ASSERT aborts with file:line, also in release builds.
 *  - All heap memory goes through cr_malloc/cr_calloc/cr_realloc/cr_free, which count bytes and can be told
 *    to fail the N-th allocation (fault-injection tests).
 *  - Free functions accept NULL.
 */
#ifndef CROSSREC_CORE_H
#define CROSSREC_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CR_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define CR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CR_NORETURN __attribute__((noreturn))
#else
#define CR_PRINTF(f, a)
#define CR_NORETURN
#endif

/* ---- status and errors ---------------------------------------------------------------------------- */

typedef enum {
    CR_OK = 0,
    CR_DONE,            /* iteration finished (not an error) */
    CR_ERR_NOMEM,       /* an allocation failed */
    CR_ERR_IO,          /* open/read/write/rename failed; message names the path and errno text */
    CR_ERR_PARSE,       /* malformed text input; message names file:line[:col] and field */
    CR_ERR_FORMAT,      /* a binary file is not what it claims (bad magic, bad offsets, bad checksum) */
    CR_ERR_VERSION,     /* a binary file written by a newer crossrec */
    CR_ERR_ARG,         /* a caller passed an invalid parameter */
    CR_ERR_NOTFOUND,    /* a named thing (column, id, key) does not exist */
    CR_ERR_LIMIT,       /* input exceeds a documented limit (line length, id count) */
    CR_ERR_COUNT_
} cr_status;

/* Short constant name of a status ("io error"). Never NULL. */
const char *cr_status_str(cr_status st);

/* Sets the calling thread's error message (printf-style) and clears its hint; returns st so that
 * `return cr_fail(CR_ERR_IO, "%s: %s", path, strerror(errno));` reads naturally. */
cr_status cr_fail(cr_status st, const char *fmt, ...) CR_PRINTF(2, 3);
/* Sets a hint that goes with the current message ("run `make models`"). */
void cr_set_hint(const char *fmt, ...) CR_PRINTF(1, 2);
/* Prefixes the current message with "prefix: " (adds context on the way up). */
void cr_errmsg_prefix(const char *fmt, ...) CR_PRINTF(1, 2);
/* The calling thread's last message and hint ("" when none). Valid until the next cr_fail. */
const char *cr_errmsg(void);
const char *cr_errhint(void);
void cr_clear_error(void);

CR_NORETURN void cr_assert_fail(const char *expr, const char *file, int line);
#define CR_ASSERT(x) ((x) ? (void)0 : cr_assert_fail(#x, __FILE__, __LINE__))

/* ---- logging -------------------------------------------------------------------------------------- */

typedef enum { CR_LOG_ERROR = 0, CR_LOG_WARN, CR_LOG_INFO, CR_LOG_DEBUG } cr_log_level;
typedef void (*cr_log_fn)(cr_log_level level, const char *msg, void *user);

/* Installs a log sink (NULL restores the default, which writes "crossrec: msg" lines to stderr) and the
 * most verbose level that is delivered (default CR_LOG_INFO). Not thread-safe against concurrent logging. */
void cr_log_set(cr_log_fn fn, void *user, cr_log_level max_level);
void cr_log(cr_log_level level, const char *fmt, ...) CR_PRINTF(2, 3);

/* ---- progress of long work ---------------------------------------------------------------------- */

/* Where a long library call reports how far it is: fn(user, done, total) says that `done` of `total` units are
 * finished (the unit is the call's: bytes, users, epochs, items); total 0: unknown. done = -1 asks the sink to
 * take its display down, because the call is about to print (the training loop's epoch rows). Calls come from
 * one thread at a time, `done` never decreasing between takedowns. A zeroed cr_progress reports nothing. The
 * command line draws it on a terminal (cli/progress.c). */
typedef struct {
    void (*fn)(void *user, int64_t done, int64_t total);
    void *user;
} cr_progress;

static inline void cr_progress_report(const cr_progress *p, int64_t done, int64_t total) {
    if (p->fn) p->fn(p->user, done, total);
}

/* ---- allocation ----------------------------------------------------------------------------------- */

/* All return NULL on failure (and when fault injection says so) without setting a message; callers turn
 * that into cr_fail(CR_ERR_NOMEM, ...). cr_calloc checks n*size for overflow. Thread-safe. */
void *cr_malloc(size_t size);
void *cr_calloc(size_t n, size_t size);
void *cr_realloc(void *p, size_t size);
void  cr_free(void *p);
/* Grows an array to hold at least `need` elements of `elem` bytes, doubling; *cap is updated.
 * Returns CR_ERR_NOMEM (with a message) on failure, leaving *p valid. */
cr_status cr_grow(void **p, int64_t *cap, int64_t need, size_t elem);

typedef struct {
    int64_t live_bytes;     /* currently allocated through cr_* */
    int64_t peak_bytes;     /* high-water mark since start or the last cr_alloc_reset_peak() */
    int64_t n_allocs;       /* successful allocations so far */
    int64_t n_live;         /* blocks currently live */
} cr_alloc_stats;

cr_alloc_stats cr_alloc_get_stats(void);
void cr_alloc_reset_peak(void);
/* Fault injection: the n-th allocation from now (1-based) fails, and every later one succeeds again.
 * n <= 0 disables. Returns nothing; cr_alloc_fault_hit() tells whether the fault fired. */
void cr_alloc_fail_nth(int64_t n);
int  cr_alloc_fault_hit(void);

/* ---- arena: bump allocation, freed all at once ----------------------------------------------------- */

typedef struct cr_arena_block cr_arena_block;
typedef struct {
    cr_arena_block *head;
    size_t block_size;      /* default size of new blocks */
    int64_t used;           /* bytes handed out since init/reset */
} cr_arena;

void  cr_arena_init(cr_arena *a, size_t block_size);
/* Returns `size` bytes aligned to `align` (a power of two <= 4096), or NULL when out of memory. */
void *cr_arena_alloc(cr_arena *a, size_t size, size_t align);
char *cr_arena_strndup(cr_arena *a, const char *s, size_t n);
/* Keeps the first block for reuse, frees the rest. */
void  cr_arena_reset(cr_arena *a);
void  cr_arena_free(cr_arena *a);

/* ---- string pool: many strings in one contiguous buffer, addressed by offset ---------------------- */

/* Strings are stored back to back, each NUL-terminated; off[i] .. off[i+1]-1 is string i plus its NUL.
 * Contiguous so that it can be written to and mmapped from a file as two arrays. */
typedef struct {
    char    *data;          /* (n_bytes) */
    int64_t *off;           /* (n + 1), off[0] = 0 */
    int64_t  n, n_bytes;
    int64_t  cap_bytes, cap_n;
} cr_strpool;

void      cr_strpool_init(cr_strpool *p);
cr_status cr_strpool_add(cr_strpool *p, const char *s, size_t len, int64_t *index_out);
static inline const char *cr_strpool_get(const cr_strpool *p, int64_t i) { return p->data + p->off[i]; }
static inline int64_t cr_strpool_len(const cr_strpool *p, int64_t i) { return p->off[i + 1] - p->off[i] - 1; }
void      cr_strpool_free(cr_strpool *p);

/* ---- RNG: PCG32 (O'Neill, pcg32 XSH-RR 64/32) with named streams ---------------------------------- */

/* One --seed drives everything: each consumer derives its own stream from (seed, name), so adding a new
 * consumer never shifts the numbers an old one sees. Not thread-safe; one cr_rng per thread. */
typedef struct { uint64_t state, inc; } cr_rng;

void     cr_rng_seed(cr_rng *r, uint64_t initstate, uint64_t initseq);   /* exactly pcg32_srandom_r */
void     cr_rng_named(cr_rng *r, uint64_t seed, const char *stream);    /* stream id = hash of name */
uint32_t cr_rng_u32(cr_rng *r);
uint64_t cr_rng_u64(cr_rng *r);
uint32_t cr_rng_below(cr_rng *r, uint32_t bound);    /* uniform in [0, bound), unbiased; bound > 0 */
double   cr_rng_uniform(cr_rng *r);                  /* uniform in [0, 1), 53 bits */
double   cr_rng_normal(cr_rng *r);                   /* standard normal (Box-Muller) */

/* ---- hashing: byte-exact, platform-independent ---------------------------------------------------- */

/* MurmurHash3 x86_32 (Appleby). Stable across platforms and compilers: it defines feature hashing in
 * model files, so changing it changes the file format version. */
#define CR_HASH_ID_MURMUR3_32 1
uint32_t cr_hash32(const void *data, size_t len, uint32_t seed);
/* 64-bit FNV-1a, used for stream names and internal tables (not persisted). */
uint64_t cr_hash64(const void *data, size_t len);

/* ---- parameter slabs ------------------------------------------------------------------------------------ */

/* All parameters of a model in one float array (STYLE.md, llm.c); named tensors are views at 64-byte aligned
 * offsets. Gradients and optimizer moments use slabs of the same layout, so zeroing, norms, saving and a
 * future all-reduce are one loop over `data`. */
#define CR_MAX_TENSORS 32

typedef struct {
    char name[48];
    int64_t rows, cols;     /* a vector is (1, n) */
    int64_t offset;         /* in floats from the slab start, a multiple of 16 (64 bytes) */
} cr_tensor;

typedef struct {
    float *data;            /* (size) 64-byte aligned; owned unless `borrowed` */
    int64_t size;
    int n;
    cr_tensor t[CR_MAX_TENSORS];
    int borrowed;           /* data points into memory the slab does not own (a mapped file) */
} cr_slab;

/* Lays out the tensors (name, rows, cols given; offsets computed) and allocates zeroed data. CR_ERR_ARG for
 * more than CR_MAX_TENSORS tensors, a negative shape or a name too long; CR_ERR_NOMEM. */
cr_status cr_slab_init(cr_slab *s, const cr_tensor *tensors, int n);
/* A zeroed slab of the same layout (gradients, moments, the best epoch's copy). */
cr_status cr_slab_like(cr_slab *dst, const cr_slab *src);
void cr_slab_free(cr_slab *s);
/* Index of a tensor by name, or -1. */
int cr_slab_find(const cr_slab *s, const char *name);
static inline float *cr_slab_at(const cr_slab *s, int i) { return s->data + s->t[i].offset; }
/* Fills tensor i with N(0, std^2) draws (std 0: zeros). */
void cr_slab_normal(cr_slab *s, int i, double std, cr_rng *r);

/* ---- small helpers -------------------------------------------------------------------------------- */

/* OpenMP pragmas that vanish in builds without OpenMP (OMP=0), where -Wunknown-pragmas would otherwise turn
 * them into errors: CR_OMP(omp parallel for) instead of #pragma omp parallel for. */
#ifdef _OPENMP
#define CR_OMP(x) _Pragma(#x)
#else
#define CR_OMP(x)
#endif

double cr_now(void);        /* monotonic seconds */

#ifdef __cplusplus
}
#endif
#endif

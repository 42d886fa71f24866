/* crossrec/data.h — text table readers, the dataset (id maps, CSR interactions, item catalogue), import,
 * the .crd dataset file, statistics, and synthetic data.
 *
 * A dataset is immutable once imported or loaded. Dense indices: users in order of first appearance in the
 * interactions, items in catalogue order (then unknown items in order of appearance), domains in order of
 * first appearance in the catalogue. Interactions are stored twice: by user (items, timestamps, values,
 * ordered by timestamp, ties in input order) and by item (users, ascending). */
#ifndef CROSSREC_DATA_H
#define CROSSREC_DATA_H

#include "crossrec/core.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- table readers: TSV, CSV (RFC 4180), JSON Lines, RecBole atomic files; each optionally gzip'ed ---- */

typedef enum {
    CR_FMT_AUTO = 0,    /* by extension after stripping .gz: .tsv .txt -> TSV, .csv -> CSV, .jsonl .ndjson .json
                           -> JSONL, .inter .item .user -> RECBOLE; unknown extensions: TSV */
    CR_FMT_TSV,         /* tab-separated, first line a header, no quoting */
    CR_FMT_CSV,         /* RFC 4180: quoted fields may hold delimiters, "" and newlines; a quote inside an
                           unquoted field is an ordinary byte (5" screen) */
    CR_FMT_JSONL,       /* one JSON object per line; fields by name; numbers/strings/bools/null */
    CR_FMT_RECBOLE,     /* TSV whose header names carry ":type" (user_id:token); the type is dropped */
} cr_table_format;

typedef struct {
    cr_table_format format;
    char delimiter;         /* CSV only: 0 = detect from the header line (',' ';' or tab) */
    int64_t max_line;       /* longest accepted line/record in bytes, without its line end (default 1 MiB;
                               0 = default; at most 1 GiB) */
} cr_table_opts;

cr_table_opts cr_table_default_opts(void);
const char *cr_table_format_name(cr_table_format f);

/* One field of the current record. Bytes are valid UTF-8 without NUL bytes, not NUL-terminated; valid until
 * the next cr_table_next (or close). p == NULL marks an optional column that the file does not have (JSONL:
 * a key that is absent or null in this record). Numbers in JSONL come as text: integers exactly, reals as
 * "%.17g"; true/false as "1"/"0". */
typedef struct {
    const char *p;
    int64_t len;
    int64_t col;            /* 1-based byte column of the field's start in its physical line (for messages);
                               0 when unknown (JSONL) or p == NULL */
} cr_field;

typedef struct cr_table cr_table;

/* Opens a file (gzip detected by its magic bytes, whatever the name; concatenated members and zero padding
 * accepted, other trailing bytes are an error) and reads its header; "-" is standard input, named "(stdin)".
 * A UTF-8 BOM is skipped, CRLF line ends are accepted, blank lines are skipped. o == NULL: defaults.
 * Errors: CR_ERR_IO "PATH: cannot open: ..." or a corrupt gzip stream; CR_ERR_PARSE "PATH: file is empty
 * (expected a header line)" or a bad header (invalid UTF-8, for JSONL an invalid first line); CR_ERR_LIMIT;
 * CR_ERR_ARG for bad options; CR_ERR_NOMEM. The first JSONL open points jansson's allocator at cr_malloc /
 * cr_free (process-wide, once). One table is used by one thread at a time. */
cr_status cr_table_open(cr_table **t, const char *path, const cr_table_opts *o);
/* Same over a caller-owned buffer (tests, fuzzing), which must outlive the table and is read in place (gzip
 * data is inflated); `name` is used in messages and for AUTO. */
cr_status cr_table_open_mem(cr_table **t, const void *buf, size_t len, const char *name, const cr_table_opts *o);
void cr_table_close(cr_table *t);

cr_table_format cr_table_get_format(const cr_table *t);
const char *cr_table_name(const cr_table *t);       /* the path or name given at open */
/* Header columns (TSV/CSV/RecBole; for JSONL the keys of the first record). */
int cr_table_n_cols(const cr_table *t);
const char *cr_table_col_name(const cr_table *t, int i);
int cr_table_has_col(const cr_table *t, const char *name);

/* Chooses the columns cr_table_next returns, in this order (names are copied; required == NULL: all
 * required). A missing column with required[i] != 0 fails with CR_ERR_NOTFOUND "PATH: no column 'x'
 * (columns: a, b)". JSONL: required columns must be keys of the first object, and every selected key is
 * looked up in each record. Before any select, cr_table_next checks records and returns no fields. */
cr_status cr_table_select(cr_table *t, const char *const *names, const int *required, int n);
/* Reads the next record into fields[0..n) (n as selected). Returns CR_OK, CR_DONE at the end (and again on
 * later calls), or CR_ERR_PARSE / CR_ERR_LIMIT with a message "name:line[:col]: what was expected, what was
 * found": "x.tsv:3: expected 4 fields, found 3", "x.tsv:3:7: invalid UTF-8 in field 'title' (byte 0xff)",
 * "x.tsv:3: line longer than 1048576 bytes". Selected fields are checked for UTF-8 and NUL bytes; other
 * columns are not. After CR_ERR_PARSE / CR_ERR_LIMIT for one record the reader continues with the next one
 * (--skip-bad-lines; a too-long line is skipped up to its newline); after CR_ERR_IO / CR_ERR_NOMEM it
 * cannot. */
cr_status cr_table_next(cr_table *t, cr_field *fields);
int64_t cr_table_line(const cr_table *t);           /* 1-based line where the last record started */
/* Bytes read from the file so far (compressed ones for gzip; 0 for a memory table): progress against its size. */
int64_t cr_table_bytes_in(const cr_table *t);

/* json_loadb for every JSON reader of crossrec: on failure *nomem tells whether an allocation failed (jansson
 * allocates through cr_malloc, set up by this library before main, and reports some allocation failures as syntax
 * errors such as "string or '}' expected"), so a reader answers CR_ERR_NOMEM rather than blame its input. */
struct json_t;
struct json_error_t;
struct json_t *cr_json_loadb(const char *buf, size_t len, size_t flags, struct json_error_t *err, int *nomem);

/* Number parsing used by all readers: decimal integers (optionally with a fraction, truncated toward
 * zero, for RecBole's float timestamps) and floats. Return 0 on success, -1 if the field is not a number
 * (*out untouched): no spaces, no hex, no inf/nan, and -1 on overflow (int64; float beyond FLT_MAX). Floats
 * are rounded correctly ('.' as decimal point; strtof for the rare cases, so the C locale is assumed). */
int cr_parse_i64(const char *p, int64_t len, int64_t *out);
int cr_parse_f32(const char *p, int64_t len, float *out);
/* Index of the first byte that is not valid UTF-8 (overlongs, surrogates and > U+10FFFF are invalid), or -1.
 * For a broken or truncated sequence this is the index of its lead byte. NUL is valid UTF-8. */
int64_t cr_utf8_invalid_at(const char *p, int64_t len);

/* ---- dataset ---- */

typedef struct cr_dataset cr_dataset;

/* The interaction arrays of a dataset, for direct use in hot loops. All pointers are owned by the dataset. */
typedef struct {
    int64_t n_users, n_items, n_domains, n_inter;
    const int64_t *user_ptr;    /* (n_users + 1) events of user u are [user_ptr[u], user_ptr[u+1]) */
    const int32_t *user_items;  /* (n_inter) item of each event, per user by (timestamp, input order) */
    const int64_t *user_times;  /* (n_inter) timestamp of each event; NULL in a split's training view, whose
                                   events keep the time order but not the timestamps (read them from the dataset) */
    const float   *user_values; /* (n_inter) value of each event (rating, or 1) */
    const int64_t *item_ptr;    /* (n_items + 1) */
    const int32_t *item_users;  /* (n_inter) user of each event, per item, ascending user index */
    const int32_t *item_domain; /* (n_items) domain index of each item */
} cr_interactions;

const cr_interactions *cr_dataset_inter(const cr_dataset *d);
const char *cr_dataset_user_id(const cr_dataset *d, int32_t u);
const char *cr_dataset_item_id(const cr_dataset *d, int32_t i);
const char *cr_dataset_item_title(const cr_dataset *d, int32_t i);  /* "" when none */
const char *cr_dataset_item_text(const cr_dataset *d, int32_t i);   /* "" when none */
const char *cr_dataset_domain_name(const cr_dataset *d, int32_t dom);
/* Index of an external id, or -1. O(1) expected. */
int32_t cr_dataset_find_user(const cr_dataset *d, const char *id);
int32_t cr_dataset_find_item(const cr_dataset *d, const char *id);
int32_t cr_dataset_find_domain(const cr_dataset *d, const char *name);
/* cr_dataset_find_domain for names given by a user: CR_ERR_NOTFOUND "unknown domain 'x' (domains: a, b)" when
 * there is no such domain. */
cr_status cr_dataset_domain_named(const cr_dataset *d, const char *name, int32_t *t);
/* For a dataset loaded from a .crd: the path given to cr_dataset_load and the file's CRC32C, which splits
 * and models record to refuse a different dataset later. NULL / 0 for a dataset just imported. */
const char *cr_dataset_path(const cr_dataset *d);
uint32_t cr_dataset_file_crc(const cr_dataset *d);
/* Whether the input had real timestamps / values (otherwise line order / 1 were used). */
int cr_dataset_has_time(const cr_dataset *d);
int cr_dataset_has_value(const cr_dataset *d);

#define CR_MAX_INPUT_FILES 16

typedef struct {
    const char *interactions[CR_MAX_INPUT_FILES];
    int n_interactions;
    const char *items[CR_MAX_INPUT_FILES];      /* catalogue files; may be none */
    int n_items;
    /* Column names; NULL = the canonical name or a common alias (user: user, user_id, userId, uid, ...). */
    const char *user_col, *item_col, *time_col, *value_col, *domain_col, *title_col, *text_col;
    cr_table_opts table;
    int skip_bad_lines;         /* skip malformed lines, count them, report the count (default: stop) */
    int allow_unknown_items;    /* items missing from the catalogue get domain "unknown" (default: error) */
    int dedup;                  /* merge repeated (user, item) pairs: latest timestamp, last value */
    cr_progress progress;       /* bytes read of all files' total size (0 when a size is unknown: standard
                                   input), every few thousand lines (default: none) */
} cr_import_params;

typedef struct {
    int64_t lines;              /* data lines read, all files */
    int64_t skipped;            /* bad lines skipped (skip_bad_lines) */
    int64_t merged;             /* duplicate (user, item) events merged (dedup) */
    int64_t duplicates;         /* repeated (user, item) events kept as separate events */
    int64_t unknown_items;      /* items not in the catalogue (allow_unknown_items) */
    char first_skipped[256];    /* message of the first skipped line */
} cr_import_report;

cr_import_params cr_import_default_params(void);
/* Reads the files and builds a dataset. On error nothing is returned and the message names file:line. */
cr_status cr_dataset_import(cr_dataset **d, const cr_import_params *p, cr_import_report *report);
/* Writes a .crd file atomically. */
cr_status cr_dataset_save(const cr_dataset *d, const char *path);
/* Maps a .crd file and validates it completely (structure, CRC, every index in range, CSR monotone). */
cr_status cr_dataset_load(cr_dataset **d, const char *path);
/* Loads the dataset another file (a split, a model: `referrer`, its path) was made from, which recorded the
 * dataset's absolute path (may be ""), its basename and CRC32C: the absolute path, else a file named `base` in
 * the referrer's folder (so a folder holding both can be moved). Errors: CR_ERR_FORMAT "REFERRER: made from a
 * different dataset (checksum ..., FILE has ...)" when a file loads but its checksum differs; "REFERRER:
 * cannot load its dataset: ..." with the status of the load (CR_ERR_IO when neither file exists);
 * CR_ERR_NOMEM. *d is NULL on failure. */
cr_status cr_dataset_load_ref(cr_dataset **d, const char *abs_path, const char *base, uint32_t crc, const char *referrer);
void cr_dataset_free(cr_dataset *d);

#define CR_CRD_VERSION 1

/* ---- statistics ---- */

typedef struct {
    int64_t users;              /* users with at least one event in the domain */
    int64_t items;              /* catalogue items of the domain */
    int64_t inter;              /* events */
    int64_t items_never;        /* items with no event */
    double density;             /* inter / (users * items) */
    int64_t hist_q[7];          /* per-user events in the domain among its users: min, p25, p50, p75, p90, p99, max */
} cr_domain_stats;

typedef struct {
    int64_t n_domains;
    cr_domain_stats all;        /* the whole dataset */
    cr_domain_stats *dom;       /* (n_domains) */
    int64_t *overlap;           /* (n_domains * n_domains) users with events in both domains (diagonal: users) */
    int64_t multi_domain_users; /* users with events in more than one domain */
} cr_stats;

cr_status cr_dataset_stats(const cr_dataset *d, cr_stats *s);
void cr_stats_free(cr_stats *s);
/* Human-readable tables / one JSON object. */
void cr_stats_print(const cr_dataset *d, const cr_stats *s, FILE *out);
cr_status cr_stats_json(const cr_dataset *d, const cr_stats *s, FILE *out);

/* ---- synthetic data ---- */

/* Generative model (src/data/synth.c): K latent topics shared by all domains. Each item has one domain, a
 * topic mixture on one or two topics and a Zipf popularity by random rank within its domain. Each user has a
 * sparse topic preference shared across domains (this is the signal that transfers), a Zipf activity level and
 * a set of active domains. An event picks one of the user's domains, then an item of that domain: with
 * probability topic_share by the user's topics (weight popularity x topic mixture), else by popularity.
 * A share new_item_share of the items are new arrivals, listed with text but never interacted with.
 * Titles and texts draw words from per-topic, per-domain and generic vocabularies, so text carries topic
 * signal across domains. The same parameters give byte-identical files (for one build and platform). */
typedef struct {
    int64_t n_users;            /* users, each with at least one event (3000) */
    int64_t n_items;            /* catalogue items, >= n_domains; items may have no event (2000) */
    int64_t n_inter;            /* interaction lines, exactly; >= n_users (60000) */
    int n_domains;              /* 1..1000; named books, music, movies, office, ... then books2, ... (4) */
    int n_topics;               /* latent topics shared across domains, 1..1000 (16) */
    double item_zipf;           /* item popularity exponent within a domain, 0..10 (0.8) */
    double user_zipf;           /* user activity exponent, 0..10 (0.8) */
    double multi_domain_share;  /* share of users active in two or more domains, 0..1 (0.6) */
    double topic_share;         /* share of events chosen by the user's topics rather than popularity alone,
                                   0..1 (0.8); 0 gives data with no personal signal (a negative control) */
    double new_item_share;      /* share of items with no interaction (new arrivals, known only by their
                                   text), 0..1 (0.02); the top item of each domain is never new */
    uint64_t seed;              /* drives every random choice (42) */
} cr_synth_params;

cr_synth_params cr_synth_default_params(void);
/* NULL when the parameters are valid, else a constant message naming the first bad one. */
const char *cr_synth_check_params(const cr_synth_params *p);
/* Writes dir/interactions.tsv (user item timestamp value; value 1; timestamps unix seconds from 2020,
 * strictly increasing per user; rows by user, then time) and dir/items.tsv (item domain title text) in the
 * canonical layout, creating dir and its parents. Both files are written as NAME.tmp and renamed when both
 * are complete, so a failure leaves no partial file (and no .tmp). Errors: CR_ERR_ARG (message from
 * cr_synth_check_params), CR_ERR_IO (path and errno text), CR_ERR_NOMEM. Memory is
 * O(n_users + n_items + n_domains * n_topics); interactions are streamed. Thread-safe (no shared state). */
cr_status cr_synth_write(const char *dir, const cr_synth_params *p);

#ifdef __cplusplus
}
#endif
#endif

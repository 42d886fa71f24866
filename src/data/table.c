/* table.c — text table readers: TSV, CSV (RFC 4180), JSON Lines and RecBole atomic files, plain or gzip'ed.
 *
 * Main type: cr_table (opaque). Bytes come from a cr_source (source.c) into one line buffer:
 *
 *   buf[0 .. pos)     consumed (fields returned by the last cr_table_next may still point here)
 *   buf[pos .. end)   read, not yet consumed
 *   buf[end .. cap)   free; fill() moves [pos, end) to the front and reads behind it
 *
 * A plain memory source is used in place (buf = the caller's bytes, eof from the start), so fill() is never
 * needed there. Invariants:
 *  - cap >= max_line + 2 (+ slack), so any acceptable line (content, CR, LF) fits in the buffer at once; a line
 *    is searched for only in its first max_line + 2 bytes ("window"), so a too-long line is detected without
 *    reading it all, and is then skipped lazily (`skipping`) on the next call.
 *  - fill() runs only at the start of a cr_table_next call (or while opening), so the fields handed out by the
 *    previous call stay valid until the next one, as data.h promises.
 *  - `line` counts physical lines consumed so far; `rec_line` is the line where the last record started.
 *  - After CR_ERR_PARSE / CR_ERR_LIMIT the offending record has been consumed (or `skipping` is set), so the
 *    next call goes on with the next record; after an I/O or memory error `failed` is set and stays.
 *
 * Per format: TSV and RecBole split a line on tabs (8 bytes at a time, see split_tsv); CSV runs a small
 * quote-aware scanner over the window that may span physical lines and unescapes "" into a scratch buffer;
 * JSONL parses each line with jansson and formats numbers into a per-record buffer. */
#include "crossrec/data.h"
#include "source.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILE_BUF_CAP ((size_t)4 << 20)      /* line buffer for files: 4 MiB */
#define MEM_GZ_BUF_MIN ((size_t)64 << 10)   /* gzip'ed memory buffers (tests, fuzzing) use a smaller one */
#define MAX_LINE_LIMIT ((int64_t)1 << 30)   /* largest max_line accepted */
#define NUM_TEXT 32                         /* bytes per formatted JSON number ("%.17g" needs <= 24) */

/* One CSV field of the current record; offsets are from the record start in the buffer. */
typedef struct {
    const char *p;              /* content: into the buffer, or into scratch when it had "" */
    int64_t len;
    int64_t raw_off, raw_len;   /* the bytes as they are in the file (between the quotes, "" kept) */
    int64_t col;                /* 1-based column of the field start in its physical line */
} csv_field;

struct cr_table {
    char *name;
    cr_table_format fmt;
    cr_table_opts opts;
    int64_t maxscan;            /* max_line + 2: the window searched for a line end */

    cr_source *src;
    char *own;                  /* (cap) owned line buffer, or NULL for a plain memory source */
    const char *buf;            /* own, or the caller's bytes */
    size_t cap, pos, end;
    int eof;                    /* the source has no more bytes beyond `end` */
    int skipping;               /* a too-long line is being skipped up to its newline */
    cr_status failed;           /* CR_OK, or the I/O / memory error that stopped reading */
    int64_t line;               /* physical lines consumed */
    int64_t rec_line;           /* line where the last record started */

    int n_cols;
    char **cols;                /* (n_cols) NUL-terminated header names, in one allocation */

    int n_sel;
    int *sel_idx;               /* (n_sel) header index, or -1 for an absent optional column */
    int *sel_req;               /* (n_sel) */
    char **sel_name;            /* (n_sel) copies of the names, in one allocation */

    int64_t *fs;                /* (n_cols + 1) TSV: start offset of each field in the line */

    char delim;                 /* CSV delimiter after detection */
    csv_field *cf;              /* (cf_cap) CSV fields of the current record */
    int64_t cf_cap;
    char *scratch;              /* (maxscan) CSV unescaped content, allocated on first "" */

    json_t *cur;                /* JSONL: object of the last record (its strings are handed out) */
    json_t *pending;            /* JSONL: the first object, read at open, not yet returned */
    int64_t pending_line;
    char *numbuf;               /* (n_sel * NUM_TEXT) JSONL: text of the numbers of the current record */
};

/* ---- small helpers ------------------------------------------------------------------------------- */

/* "'c'" for printable ASCII, "byte 0xNN" otherwise, for messages. */
static const char *describe_byte(unsigned char c, char out[16]) {
    if (c >= 0x20 && c < 0x7f) snprintf(out, 16, "'%c'", c);
    else snprintf(out, 16, "byte 0x%02x", c);
    return out;
}

static cr_status nomem(const cr_table *t) { return cr_fail(CR_ERR_NOMEM, "%s: out of memory", t->name); }

static int ends_with_ci(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* The format an AUTO table gets from its name: extension after dropping ".gz". */
static cr_table_format format_from_name(const char *name) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(base);
    if (ends_with_ci(base, n, ".gz")) n -= 3;
    static const struct { const char *ext; cr_table_format f; } map[] = {
        {".tsv", CR_FMT_TSV},     {".txt", CR_FMT_TSV},     {".csv", CR_FMT_CSV},
        {".jsonl", CR_FMT_JSONL}, {".ndjson", CR_FMT_JSONL}, {".json", CR_FMT_JSONL},
        {".inter", CR_FMT_RECBOLE}, {".item", CR_FMT_RECBOLE}, {".user", CR_FMT_RECBOLE},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (ends_with_ci(base, n, map[i].ext)) return map[i].f;
    return CR_FMT_TSV;
}

cr_table_opts cr_table_default_opts(void) {
    cr_table_opts o;
    memset(&o, 0, sizeof o);
    o.format = CR_FMT_AUTO;
    o.delimiter = 0;
    o.max_line = (int64_t)1 << 20;
    return o;
}

const char *cr_table_format_name(cr_table_format f) {
    switch (f) {
    case CR_FMT_AUTO: return "auto";
    case CR_FMT_TSV: return "tsv";
    case CR_FMT_CSV: return "csv";
    case CR_FMT_JSONL: return "jsonl";
    case CR_FMT_RECBOLE: return "recbole";
    }
    return "unknown";
}

/* jansson allocates through crossrec's table, so its memory is counted and fault injection reaches it.
 * jansson's allocator is global and must not change while any JSON value lives, so it is set before main()
 * runs, by a constructor in this object (which every program that reads tables links). */
/* jansson reports some allocation failures as syntax errors ("string or '}' expected"); this flag lets the
 * reader tell them apart and return CR_ERR_NOMEM rather than blame the data. */
static _Thread_local int json_alloc_failed;

static void *json_alloc(size_t n) {
    void *p = cr_malloc(n);
    if (!p) json_alloc_failed = 1;
    return p;
}

__attribute__((constructor)) static void json_alloc_setup(void) { json_set_alloc_funcs(json_alloc, cr_free); }

json_t *cr_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err, int *nomem) {
    json_alloc_failed = 0;
    json_t *v = json_loadb(buf, len, flags, err);
    *nomem = !v && (json_alloc_failed || json_error_code(err) == json_error_out_of_memory);
    return v;
}

/* ---- the line buffer ----------------------------------------------------------------------------- */

/* Moves the unconsumed bytes to the front and reads more behind them (at least one byte, or eof). */
static cr_status fill(cr_table *t) {
    if (t->eof) return CR_OK;
    CR_ASSERT(t->own);
    size_t keep = t->end - t->pos;
    if (t->pos) {
        memmove(t->own, t->own + t->pos, keep);
        t->pos = 0;
        t->end = keep;
    }
    CR_ASSERT(t->end < t->cap);
    size_t got = 0;
    cr_status st = cr_source_read(t->src, t->own + t->end, t->cap - t->end, &got);
    if (st == CR_DONE) {
        t->eof = 1;
        return CR_OK;
    }
    if (st != CR_OK) {
        t->failed = st;
        return st;
    }
    t->end += got;
    return CR_OK;
}

static cr_status limit_error(const cr_table *t, const char *what) {
    return cr_fail(CR_ERR_LIMIT, "%s:%lld: %s longer than %lld bytes", t->name, (long long)t->rec_line, what,
                   (long long)t->opts.max_line);
}

/* Finishes skipping a too-long line: consumes up to and including its newline. */
static cr_status skip_rest(cr_table *t) {
    while (t->skipping) {
        const char *s = t->buf + t->pos;
        const char *q = memchr(s, '\n', t->end - t->pos);
        if (q) {
            t->pos += (size_t)(q - s) + 1;
            t->line++;
            t->skipping = 0;
            break;
        }
        t->pos = t->end;
        if (t->eof) {
            t->line++;
            t->skipping = 0;
            break;
        }
        cr_status st = fill(t);
        if (st != CR_OK) return st;
    }
    return CR_OK;
}

/* Consumes the next non-blank physical line. CR_OK: (*p, *len) is its content without CR LF (valid until the
 * next fill), rec_line its number. CR_DONE at the end. CR_ERR_LIMIT for a line longer than max_line. */
static cr_status next_line(cr_table *t, const char **p, int64_t *len) {
    for (;;) {
        if (t->skipping) {
            cr_status st = skip_rest(t);
            if (st != CR_OK) return st;
        }
        size_t avail = t->end - t->pos;
        size_t win = avail < (size_t)t->maxscan ? avail : (size_t)t->maxscan;
        const char *s = t->buf + t->pos;
        const char *q = win ? memchr(s, '\n', win) : NULL;
        size_t n, adv;
        if (q) {
            n = (size_t)(q - s);
            adv = n + 1;
        } else if (!t->eof && avail < (size_t)t->maxscan) {
            cr_status st = fill(t);
            if (st != CR_OK) return st;
            continue;
        } else if (avail >= (size_t)t->maxscan) {
            /* No newline within the window: too long. Skip the rest on the next call, not now, so that an
             * enormous line costs nothing unless the caller goes on. */
            t->rec_line = t->line + 1;
            t->pos += win;
            t->skipping = 1;
            return limit_error(t, "line");
        } else if (avail == 0) {
            return CR_DONE;
        } else {
            n = avail;          /* last line without a newline */
            adv = avail;
        }
        t->pos += adv;
        t->line++;
        if (n && s[n - 1] == '\r') n--;
        if (n == 0) continue;
        t->rec_line = t->line;
        if ((int64_t)n > t->opts.max_line) return limit_error(t, "line");
        *p = s;
        *len = (int64_t)n;
        return CR_OK;
    }
}

/* ---- field checks -------------------------------------------------------------------------------- */

/* Validates UTF-8 and the absence of NUL in p[0..len). On failure returns the offset of the bad byte. */
static int64_t field_bad_at(const char *p, int64_t len) {
    int64_t at = cr_utf8_invalid_at(p, len);
    const char *z = memchr(p, 0, (size_t)len);
    if (z && (at < 0 || z - p < at)) at = z - p;
    return at;
}

static cr_status bad_byte_error(const cr_table *t, int64_t line, int64_t col, const char *what, unsigned char c) {
    if (c == 0)
        return cr_fail(CR_ERR_PARSE, "%s:%lld:%lld: NUL byte in %s (is the file UTF-16?)", t->name,
                       (long long)line, (long long)col, what);
    return cr_fail(CR_ERR_PARSE, "%s:%lld:%lld: invalid UTF-8 in %s (byte 0x%02x)", t->name, (long long)line,
                   (long long)col, what, c);
}

/* ---- header and selection ------------------------------------------------------------------------ */

/* Stores n header names given as (pointer, length) pairs; RecBole ":type" suffixes are dropped. */
static cr_status set_cols(cr_table *t, const char *const *p, const int64_t *len, int64_t n) {
    if (n > INT32_MAX / 2) return cr_fail(CR_ERR_LIMIT, "%s: too many columns (%lld)", t->name, (long long)n);
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) bytes += (size_t)len[i] + 1;
    size_t head = (size_t)n * sizeof(char *);
    char **cols = cr_malloc(head + bytes + 1);
    if (!cols) return nomem(t);
    char *w = (char *)cols + head;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = len[i];
        if (t->fmt == CR_FMT_RECBOLE) {
            static const char *types[] = {":token_seq", ":float_seq", ":token", ":float"};
            for (size_t j = 0; j < sizeof types / sizeof types[0]; j++) {
                int64_t tl = (int64_t)strlen(types[j]);
                if (k > tl && memcmp(p[i] + k - tl, types[j], (size_t)tl) == 0) {
                    k -= tl;
                    break;
                }
            }
        }
        cols[i] = w;
        memcpy(w, p[i], (size_t)k);
        w[k] = '\0';
        w += k + 1;
    }
    cr_free(t->cols);
    t->cols = cols;
    t->n_cols = (int)n;
    return CR_OK;
}

/* Header names must be valid UTF-8 without NUL: they end up in messages and C strings. */
static cr_status check_header_field(const cr_table *t, const char *p, int64_t len, int64_t col) {
    int64_t at = field_bad_at(p, len);
    if (at < 0) return CR_OK;
    return bad_byte_error(t, t->rec_line, col + at, "the header", (unsigned char)p[at]);
}

static cr_status read_header_tsv(cr_table *t) {
    const char *s;
    int64_t n;
    cr_status st = next_line(t, &s, &n);
    if (st == CR_DONE) return cr_fail(CR_ERR_PARSE, "%s: file is empty (expected a header line)", t->name);
    if (st != CR_OK) return st;
    int64_t count = 1;
    for (int64_t i = 0; i < n; i++) count += s[i] == '\t';
    const char **p = cr_malloc((size_t)count * sizeof *p);
    int64_t *len = cr_malloc((size_t)count * sizeof *len);
    if (!p || !len) {
        cr_free(p);
        cr_free(len);
        return nomem(t);
    }
    int64_t k = 0, start = 0;
    for (int64_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\t') {
            p[k] = s + start;
            len[k] = i - start;
            if (st == CR_OK) st = check_header_field(t, p[k], len[k], start + 1);
            k++;
            start = i + 1;
        }
    }
    if (st == CR_OK) st = set_cols(t, p, len, count);
    cr_free(p);
    cr_free(len);
    return st;
}

int cr_table_n_cols(const cr_table *t) { return t->n_cols; }

const char *cr_table_col_name(const cr_table *t, int i) {
    return i >= 0 && i < t->n_cols ? t->cols[i] : NULL;
}

static int col_index(const cr_table *t, const char *name) {
    for (int i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i], name) == 0) return i;
    return -1;
}

int cr_table_has_col(const cr_table *t, const char *name) { return name && col_index(t, name) >= 0; }

cr_status cr_table_select(cr_table *t, const char *const *names, const int *required, int n) {
    if (n < 0 || (n > 0 && !names)) return cr_fail(CR_ERR_ARG, "%s: cr_table_select: bad column list", t->name);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i]) return cr_fail(CR_ERR_ARG, "%s: cr_table_select: column %d has no name", t->name, i);
        bytes += strlen(names[i]) + 1;
    }
    for (int i = 0; i < n; i++) {
        if ((!required || required[i]) && col_index(t, names[i]) < 0) {
            /* Name the columns that do exist, so that the fix (--user-col ...) is obvious. */
            char list[512];
            size_t w = 0;
            list[0] = '\0';
            for (int c = 0; c < t->n_cols && w < sizeof list; c++) {
                int k = snprintf(list + w, sizeof list - w, "%s%s", c ? ", " : "", t->cols[c]);
                if (k < 0) break;
                w += (size_t)k;
            }
            if (w >= sizeof list) memcpy(list + sizeof list - 4, "...", 4);
            return cr_fail(CR_ERR_NOTFOUND, "%s: no column '%s' (columns: %s)", t->name, names[i], list);
        }
    }
    size_t un = (size_t)n;
    int *idx = cr_malloc((un ? un : 1) * sizeof *idx);
    int *req = cr_malloc((un ? un : 1) * sizeof *req);
    char **nm = cr_malloc(un * sizeof *nm + bytes + 1);
    char *numbuf = t->fmt == CR_FMT_JSONL ? cr_malloc((un ? un : 1) * NUM_TEXT) : NULL;
    if (!idx || !req || !nm || (t->fmt == CR_FMT_JSONL && !numbuf)) {
        cr_free(idx);
        cr_free(req);
        cr_free(nm);
        cr_free(numbuf);
        return nomem(t);
    }
    char *w = (char *)(nm + un);
    for (int i = 0; i < n; i++) {
        idx[i] = col_index(t, names[i]);
        req[i] = !required || required[i];
        size_t k = strlen(names[i]);
        memcpy(w, names[i], k + 1);
        nm[i] = w;
        w += k + 1;
    }
    cr_free(t->sel_idx);
    cr_free(t->sel_req);
    cr_free(t->sel_name);
    cr_free(t->numbuf);
    t->sel_idx = idx;
    t->sel_req = req;
    t->sel_name = nm;
    t->numbuf = numbuf;
    t->n_sel = n;
    return CR_OK;
}

/* ---- TSV and RecBole ----------------------------------------------------------------------------- */

#define ONES 0x0101010101010101ull
#define LOW7 0x7f7f7f7f7f7f7f7full
#define HIGH 0x8080808080808080ull

/* 0x80 in each byte of v that is zero, 0 elsewhere (exact: no borrow between bytes). */
static inline uint64_t zero_bytes(uint64_t v) { return ~(((v & LOW7) + LOW7) | v | LOW7); }

/* Splits a line on tabs: fs[k] = start of field k for k <= n_cols; returns the number of fields. *odd gets
 * whether any byte is >= 0x80 or NUL, i.e. whether the fields need the full UTF-8 check. The common case, an
 * ASCII line with short fields, takes one 8-byte load per 8 bytes and no per-byte branches. */
static int64_t split_tsv(const char *s, int64_t n, int64_t *fs, int64_t max_k, int *odd) {
    int64_t k = 0, i = 0;
    uint64_t flags = 0;
    fs[0] = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        flags |= (w & HIGH) | zero_bytes(w);
        uint64_t m = zero_bytes(w ^ (ONES * '\t'));
        while (m) {
            /* Little-endian: the lowest set bit is the first tab. */
            int64_t b = __builtin_ctzll(m) >> 3;
            if (++k <= max_k) fs[k] = i + b + 1;
            m &= m - 1;
        }
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        flags |= (c & 0x80) | (c == 0);
        if (c == '\t' && ++k <= max_k) fs[k] = i + 1;
    }
    *odd = flags != 0;
    return k + 1;
}

static cr_status next_tsv(cr_table *t, cr_field *f) {
    const char *s;
    int64_t n;
    cr_status st = next_line(t, &s, &n);
    if (st != CR_OK) return st;
    int odd;
    int64_t nf = split_tsv(s, n, t->fs, t->n_cols, &odd);
    if (nf != t->n_cols)
        return cr_fail(CR_ERR_PARSE, "%s:%lld: expected %d fields, found %lld", t->name, (long long)t->rec_line,
                       t->n_cols, (long long)nf);
    for (int i = 0; i < t->n_sel; i++) {
        int c = t->sel_idx[i];
        if (c < 0) {
            f[i].p = NULL;
            f[i].len = 0;
            f[i].col = 0;
            continue;
        }
        int64_t a = t->fs[c], b = c + 1 < t->n_cols ? t->fs[c + 1] - 1 : n;
        f[i].p = s + a;
        f[i].len = b - a;
        f[i].col = a + 1;
    }
    if (odd) {
        for (int i = 0; i < t->n_sel; i++) {
            if (!f[i].p) continue;
            int64_t at = field_bad_at(f[i].p, f[i].len);
            if (at >= 0) {
                char what[300];
                snprintf(what, sizeof what, "field '%s'", t->sel_name[i]);
                return bad_byte_error(t, t->rec_line, f[i].col + at, what, (unsigned char)f[i].p[at]);
            }
        }
    }
    return CR_OK;
}

/* ---- CSV ----------------------------------------------------------------------------------------- */

typedef enum { SCAN_OK, SCAN_BLANK, SCAN_MORE, SCAN_LIMIT, SCAN_ERR } scan_result;

typedef struct {
    int64_t adv;                /* bytes consumed */
    int64_t lines;              /* physical lines consumed */
    int64_t nf;                 /* fields found */
    int skip_after;             /* after an error: skip to the next newline */
} csv_scan_out;

/* Counts newlines in s[a, b), keeping the offset where the last physical line starts. */
static void count_lines(const char *s, int64_t a, int64_t b, int64_t *nl, int64_t *line_start) {
    while (a < b) {
        const char *q = memchr(s + a, '\n', (size_t)(b - a));
        if (!q) break;
        a = q - s + 1;
        (*nl)++;
        *line_start = a;
    }
}

/* Scans one CSV record in the window s[0, n). `at_end`: no bytes exist beyond n (else the window was cut
 * by the buffer or by max_line + 2). Fields go to t->cf (grown when `grow`, i.e. for the header). */
static scan_result csv_scan(cr_table *t, const char *s, int64_t n, int at_end, int grow, csv_scan_out *o) {
    const char d = t->delim;
    int64_t i = 0, nf = 0, nl = 0, line_start = 0, scratch_used = 0;
    memset(o, 0, sizeof *o);
    for (;;) {
        int64_t fstart = i;
        csv_field fld;
        fld.col = fstart - line_start + 1;
        int ended_by = 0;       /* 1: delimiter, 2: newline at i, 3: end of data */
        if (i < n && s[i] == '"') {
            int64_t q_nl = nl, q_col = fld.col;
            int escaped = 0;
            i++;
            int64_t cstart = i;
            for (;;) {
                const char *q = i < n ? memchr(s + i, '"', (size_t)(n - i)) : NULL;
                int64_t stop = q ? q - s : n;
                count_lines(s, i, stop, &nl, &line_start);
                if (!q) {
                    if (!at_end) return n == t->maxscan ? SCAN_LIMIT : SCAN_MORE;
                    cr_fail(CR_ERR_PARSE, "%s:%lld:%lld: unterminated quoted field (the file ends inside it)",
                            t->name, (long long)(t->rec_line + q_nl), (long long)q_col);
                    o->adv = n;
                    o->lines = nl + 1;
                    return SCAN_ERR;
                }
                i = stop + 1;
                if (i == n && !at_end) return n == t->maxscan ? SCAN_LIMIT : SCAN_MORE;  /* "" or end? */
                if (i < n && s[i] == '"') {
                    escaped = 1;
                    i++;
                    continue;
                }
                break;
            }
            fld.raw_off = cstart;
            fld.raw_len = i - 1 - cstart;
            if (escaped) {
                if (!t->scratch) {
                    t->scratch = cr_malloc((size_t)t->maxscan);
                    if (!t->scratch) {
                        t->failed = nomem(t);
                        return SCAN_ERR;
                    }
                }
                char *w = t->scratch + scratch_used;
                int64_t k = 0;
                for (int64_t j = cstart; j < i - 1; j++) {
                    w[k++] = s[j];
                    if (s[j] == '"') j++;   /* the doubled quote */
                }
                fld.p = w;
                fld.len = k;
                scratch_used += k;
            } else {
                fld.p = s + cstart;
                fld.len = fld.raw_len;
            }
            /* After the closing quote: a delimiter, a line end, or the end of the data. */
            if (i == n) {
                ended_by = 3;
            } else if (s[i] == d) {
                ended_by = 1;
            } else if (s[i] == '\n') {
                ended_by = 2;
            } else if (s[i] == '\r' && (i + 1 == n || s[i + 1] == '\n')) {
                if (i + 1 == n && !at_end) return n == t->maxscan ? SCAN_LIMIT : SCAN_MORE;
                i++;
                ended_by = i == n ? 3 : 2;
            } else {
                char what[16];
                cr_fail(CR_ERR_PARSE,
                        "%s:%lld:%lld: unexpected %s after a closing quote (expected a delimiter or a line end)",
                        t->name, (long long)(t->rec_line + nl), (long long)(i - line_start + 1),
                        describe_byte((unsigned char)s[i], what));
                o->adv = i;
                o->lines = nl;
                o->skip_after = 1;
                return SCAN_ERR;
            }
        } else {
            /* Unquoted: up to the delimiter or the line end; a quote inside is an ordinary byte. */
            int64_t j = i;
            while (j < n && s[j] != d && s[j] != '\n') j++;
            if (j == n && !at_end) return n == t->maxscan ? SCAN_LIMIT : SCAN_MORE;
            int64_t e = j;
            if (j == n) ended_by = 3;
            else ended_by = s[j] == d ? 1 : 2;
            if (ended_by != 1 && e > i && s[e - 1] == '\r') e--;
            fld.p = s + i;
            fld.len = e - i;
            fld.raw_off = i;
            fld.raw_len = e - i;
            i = j;
            if (nf == 0 && ended_by != 1 && fld.len == 0) {
                /* An empty physical line: skipped like in the other formats. */
                o->adv = ended_by == 2 ? i + 1 : i;
                o->lines = 1;
                return SCAN_BLANK;
            }
        }
        if (nf >= t->cf_cap && grow) {
            void *p = t->cf;
            if (cr_grow(&p, &t->cf_cap, nf + 1, sizeof(csv_field)) != CR_OK) {
                t->failed = CR_ERR_NOMEM;
                return SCAN_ERR;
            }
            t->cf = p;
        }
        if (nf < t->cf_cap) t->cf[nf] = fld;
        nf++;
        if (ended_by == 1) {
            i++;
            continue;
        }
        /* Record complete. Its length without the line end decides the limit. */
        int64_t content = i;
        if (content > 0 && s[content - 1] == '\r') content--;
        o->adv = ended_by == 2 ? i + 1 : i;
        o->lines = nl + 1;
        o->nf = nf;
        if (content > t->opts.max_line) return SCAN_LIMIT;
        return SCAN_OK;
    }
}

/* Reads one CSV record into t->cf. CR_OK with *nf fields; errors leave the reader ready for the next record. */
static cr_status next_csv_record(cr_table *t, int grow, int64_t *nf, const char **rec) {
    for (;;) {
        if (t->skipping) {
            cr_status st = skip_rest(t);
            if (st != CR_OK) return st;
        }
        size_t avail = t->end - t->pos;
        if (avail == 0) {
            if (t->eof) return CR_DONE;
            cr_status st = fill(t);
            if (st != CR_OK) return st;
            continue;
        }
        int64_t win = avail < (size_t)t->maxscan ? (int64_t)avail : t->maxscan;
        int at_end = t->eof && avail <= (size_t)t->maxscan;
        const char *s = t->buf + t->pos;
        csv_scan_out o;
        t->rec_line = t->line + 1;
        scan_result r = csv_scan(t, s, win, at_end, grow, &o);
        switch (r) {
        case SCAN_MORE: {
            cr_status st = fill(t);
            if (st != CR_OK) return st;
            continue;
        }
        case SCAN_BLANK:
            t->pos += (size_t)o.adv;
            t->line += o.lines;
            continue;
        case SCAN_OK:
            t->pos += (size_t)o.adv;
            t->line += o.lines;
            *nf = o.nf;
            *rec = s;
            return CR_OK;
        case SCAN_LIMIT:
            if (o.adv) {
                /* The whole record was in the window but is one or two bytes too long: consumed. */
                t->pos += (size_t)o.adv;
                t->line += o.lines;
            } else {
                /* Skip to the next newline after the window, which is all that can be done without
                 * reading an unbounded record; a quoted newline there may cost more errors after it. */
                int64_t nl = 0, ls = 0;
                count_lines(s, 0, win, &nl, &ls);
                t->pos += (size_t)win;
                t->line += nl;
                t->skipping = 1;
            }
            return limit_error(t, "record");
        case SCAN_ERR:
            if (t->failed) return t->failed == CR_ERR_NOMEM ? nomem(t) : t->failed;
            t->pos += (size_t)o.adv;
            t->line += o.lines;
            t->skipping = o.skip_after;
            return CR_ERR_PARSE;
        }
    }
}

/* The most frequent of ',' ';' TAB outside quotes on the first non-blank line; ',' when there is none. */
static cr_status detect_delim(cr_table *t) {
    for (;;) {
        size_t avail = t->end - t->pos;
        size_t win = avail < (size_t)t->maxscan ? avail : (size_t)t->maxscan;
        const char *s = t->buf + t->pos;
        size_t i = 0;
        while (i < win && (s[i] == '\n' || s[i] == '\r')) i++;
        int64_t comma = 0, semi = 0, tab = 0;
        int inq = 0, complete = 0;
        for (; i < win; i++) {
            char c = s[i];
            if (c == '"') inq = !inq;
            else if (inq) continue;
            else if (c == '\n') {
                complete = 1;
                break;
            } else if (c == ',') comma++;
            else if (c == ';') semi++;
            else if (c == '\t') tab++;
        }
        if (!complete && !t->eof && avail < (size_t)t->maxscan) {
            cr_status st = fill(t);
            if (st != CR_OK) return st;
            continue;
        }
        t->delim = ',';
        if (semi > comma && semi >= tab) t->delim = ';';
        else if (tab > comma && tab > semi) t->delim = '\t';
        return CR_OK;
    }
}

static cr_status read_header_csv(cr_table *t) {
    if (t->opts.delimiter) {
        t->delim = t->opts.delimiter;
    } else {
        cr_status st = detect_delim(t);
        if (st != CR_OK) return st;
    }
    int64_t nf;
    const char *rec;
    cr_status st = next_csv_record(t, 1, &nf, &rec);
    if (st == CR_DONE) return cr_fail(CR_ERR_PARSE, "%s: file is empty (expected a header line)", t->name);
    if (st != CR_OK) return st;
    const char **p = cr_malloc((size_t)nf * sizeof *p);
    int64_t *len = cr_malloc((size_t)nf * sizeof *len);
    if (!p || !len) {
        cr_free(p);
        cr_free(len);
        return nomem(t);
    }
    for (int64_t i = 0; i < nf; i++) {
        p[i] = t->cf[i].p;
        len[i] = t->cf[i].len;
        if (st == CR_OK) st = check_header_field(t, rec + t->cf[i].raw_off, t->cf[i].raw_len, t->cf[i].col);
    }
    if (st == CR_OK) st = set_cols(t, p, len, nf);
    cr_free(p);
    cr_free(len);
    return st;
}

static cr_status next_csv(cr_table *t, cr_field *f) {
    int64_t nf;
    const char *rec;
    cr_status st = next_csv_record(t, 0, &nf, &rec);
    if (st != CR_OK) return st;
    if (nf != t->n_cols)
        return cr_fail(CR_ERR_PARSE, "%s:%lld: expected %d fields, found %lld", t->name, (long long)t->rec_line,
                       t->n_cols, (long long)nf);
    for (int i = 0; i < t->n_sel; i++) {
        int c = t->sel_idx[i];
        if (c < 0) {
            f[i].p = NULL;
            f[i].len = 0;
            f[i].col = 0;
            continue;
        }
        const csv_field *cf = &t->cf[c];
        /* Validate the raw bytes: removing one quote of a "" pair cannot change validity (quotes are ASCII),
         * and raw offsets give the true line and column of a bad byte. */
        int64_t at = field_bad_at(rec + cf->raw_off, cf->raw_len);
        if (at >= 0) {
            int64_t off = cf->raw_off + at, nl = 0, ls = 0;
            count_lines(rec, 0, off, &nl, &ls);
            char what[300];
            snprintf(what, sizeof what, "field '%s'", t->sel_name[i]);
            return bad_byte_error(t, t->rec_line + nl, off - ls + 1, what, (unsigned char)rec[off]);
        }
        f[i].p = cf->p;
        f[i].len = cf->len;
        f[i].col = cf->col;
    }
    return CR_OK;
}

/* ---- JSON Lines ---------------------------------------------------------------------------------- */

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "a value";
}

/* Reads the next non-blank line as a JSON object into *obj (a new reference). */
static cr_status next_json_object(cr_table *t, json_t **obj) {
    const char *s;
    int64_t n;
    cr_status st = next_line(t, &s, &n);
    if (st != CR_OK) return st;
    json_error_t err;
    memset(&err, 0, sizeof err);
    int out_of_memory;
    json_t *v = cr_json_loadb(s, (size_t)n, 0, &err, &out_of_memory);
    if (!v) {
        if (out_of_memory) return nomem(t);
        return cr_fail(CR_ERR_PARSE, "%s:%lld:%d: invalid JSON: %s", t->name, (long long)t->rec_line, err.column,
                       err.text);
    }
    if (!json_is_object(v)) {
        st = cr_fail(CR_ERR_PARSE, "%s:%lld: expected a JSON object, found %s", t->name, (long long)t->rec_line,
                     json_type_name(v));
        json_decref(v);
        return st;
    }
    *obj = v;
    return CR_OK;
}

static cr_status read_header_jsonl(cr_table *t) {
    json_t *obj = NULL;
    cr_status st = next_json_object(t, &obj);
    if (st == CR_DONE) return cr_fail(CR_ERR_PARSE, "%s: file is empty (expected a header line)", t->name);
    if (st != CR_OK) return st;
    size_t n = json_object_size(obj);
    const char **p = cr_malloc((n ? n : 1) * sizeof *p);
    int64_t *len = cr_malloc((n ? n : 1) * sizeof *len);
    if (!p || !len) {
        cr_free(p);
        cr_free(len);
        json_decref(obj);
        return nomem(t);
    }
    /* jansson iterates in insertion order, so the columns come in file order. */
    size_t k = 0;
    for (void *it = json_object_iter(obj); it && k < n; it = json_object_iter_next(obj, it)) {
        p[k] = json_object_iter_key(it);
        len[k] = (int64_t)strlen(p[k]);
        k++;
    }
    st = set_cols(t, p, len, (int64_t)k);
    cr_free(p);
    cr_free(len);
    if (st != CR_OK) {
        json_decref(obj);
        return st;
    }
    t->pending = obj;
    t->pending_line = t->rec_line;
    return CR_OK;
}

static cr_status next_jsonl(cr_table *t, cr_field *f) {
    json_decref(t->cur);
    t->cur = NULL;
    if (t->pending) {
        t->cur = t->pending;
        t->pending = NULL;
        t->rec_line = t->pending_line;
    } else {
        cr_status st = next_json_object(t, &t->cur);
        if (st != CR_OK) return st;
    }
    for (int i = 0; i < t->n_sel; i++) {
        json_t *v = json_object_get(t->cur, t->sel_name[i]);
        f[i].col = 0;
        f[i].p = NULL;
        f[i].len = 0;
        if (!v || json_is_null(v)) {
            if (t->sel_req[i])
                return cr_fail(CR_ERR_PARSE, "%s:%lld: field '%s' is %s", t->name, (long long)t->rec_line,
                               t->sel_name[i], v ? "null" : "missing");
            continue;
        }
        char *num = t->numbuf + (size_t)i * NUM_TEXT;
        switch (json_typeof(v)) {
        case JSON_STRING:
            f[i].p = json_string_value(v);
            f[i].len = (int64_t)json_string_length(v);
            break;
        case JSON_INTEGER:
            f[i].len = snprintf(num, NUM_TEXT, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            f[i].p = num;
            break;
        case JSON_REAL:
            f[i].len = snprintf(num, NUM_TEXT, "%.17g", json_real_value(v));
            f[i].p = num;
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            f[i].p = json_is_true(v) ? "1" : "0";
            f[i].len = 1;
            break;
        default:
            return cr_fail(CR_ERR_PARSE, "%s:%lld: field '%s' is %s (expected a string, number or boolean)",
                           t->name, (long long)t->rec_line, t->sel_name[i], json_type_name(v));
        }
        /* jansson checks UTF-8 and refuses \u0000 already; this keeps the promise independent of that. */
        int64_t at = field_bad_at(f[i].p, f[i].len);
        if (at >= 0) {
            return cr_fail(CR_ERR_PARSE, "%s:%lld: invalid UTF-8 in field '%s' (byte 0x%02x)", t->name,
                           (long long)t->rec_line, t->sel_name[i], (unsigned char)f[i].p[at]);
        }
    }
    return CR_OK;
}

/* ---- open, next, close --------------------------------------------------------------------------- */

static cr_status check_opts(const cr_table_opts *o, const char *name) {
    if ((int)o->format < CR_FMT_AUTO || o->format > CR_FMT_RECBOLE)
        return cr_fail(CR_ERR_ARG, "%s: unknown table format %d", name, (int)o->format);
    if (o->max_line < 0 || o->max_line > MAX_LINE_LIMIT)
        return cr_fail(CR_ERR_ARG, "%s: max_line must be between 1 and %lld bytes, not %lld", name,
                       (long long)MAX_LINE_LIMIT, (long long)o->max_line);
    if (o->delimiter == '"' || o->delimiter == '\n' || o->delimiter == '\r')
        return cr_fail(CR_ERR_ARG, "%s: the CSV delimiter cannot be a quote or a line end", name);
    return CR_OK;
}

/* Common part of both opens: `src` is taken over (closed on failure). */
static cr_status table_start(cr_table **out, cr_source *src, const char *name_for_msg, char *name,
                             const cr_table_opts *o, int is_mem) {
    cr_table *t = cr_calloc(1, sizeof *t);
    if (!t) {
        cr_source_close(src);
        cr_free(name);
        return cr_fail(CR_ERR_NOMEM, "%s: out of memory", name_for_msg);
    }
    t->name = name;
    t->src = src;
    t->opts = *o;
    if (t->opts.max_line == 0) t->opts.max_line = cr_table_default_opts().max_line;
    t->maxscan = t->opts.max_line + 2;
    t->fmt = o->format == CR_FMT_AUTO ? format_from_name(name) : o->format;
    t->opts.format = t->fmt;

    size_t mem_len;
    const char *mem = cr_source_plain_mem(src, &mem_len);
    cr_status st = CR_OK;
    if (mem) {
        t->buf = mem;
        t->end = mem_len;
        t->eof = 1;
    } else {
        size_t need = (size_t)t->maxscan + ((size_t)64 << 10);
        size_t base = is_mem ? MEM_GZ_BUF_MIN : FILE_BUF_CAP;
        t->cap = need > base ? need : base;
        t->own = cr_malloc(t->cap);
        if (!t->own) st = nomem(t);
        t->buf = t->own;
    }
    /* A UTF-8 byte order mark at the start is not part of the first column name. */
    while (st == CR_OK && !t->eof && t->end - t->pos < 3) st = fill(t);
    if (st == CR_OK && t->end - t->pos >= 3 && memcmp(t->buf + t->pos, "\xEF\xBB\xBF", 3) == 0) t->pos += 3;

    if (st == CR_OK) {
        switch (t->fmt) {
        case CR_FMT_CSV: st = read_header_csv(t); break;
        case CR_FMT_JSONL: st = read_header_jsonl(t); break;
        default: st = read_header_tsv(t); break;
        }
    }
    if (st == CR_OK && (t->fmt == CR_FMT_TSV || t->fmt == CR_FMT_RECBOLE)) {
        t->fs = cr_malloc(((size_t)t->n_cols + 1) * sizeof *t->fs);
        if (!t->fs) st = nomem(t);
    }
    if (st == CR_OK && t->fmt == CR_FMT_CSV && t->cf_cap < t->n_cols) {
        void *p = t->cf;
        st = cr_grow(&p, &t->cf_cap, t->n_cols, sizeof(csv_field));
        t->cf = p;
    }
    if (st != CR_OK) {
        cr_table_close(t);
        return st;
    }
    /* Nothing selected yet: cr_table_next still checks every record and returns no fields. */
    *out = t;
    return CR_OK;
}

static char *dup_name(const char *s) {
    size_t n = strlen(s);
    char *d = cr_malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

cr_status cr_table_open(cr_table **out, const char *path, const cr_table_opts *o) {
    *out = NULL;
    cr_table_opts def = cr_table_default_opts();
    if (!o) o = &def;
    if (!path || !*path) return cr_fail(CR_ERR_ARG, "cr_table_open: no path given");
    cr_status st = check_opts(o, path);
    if (st != CR_OK) return st;
    /* "-" is standard input; messages call it "(stdin)", which also makes AUTO pick TSV. */
    char *name = dup_name(strcmp(path, "-") == 0 ? "(stdin)" : path);
    if (!name) return cr_fail(CR_ERR_NOMEM, "%s: out of memory", path);
    cr_source *src;
    st = cr_source_open_file(&src, path, name);
    if (st != CR_OK) {
        cr_free(name);
        return st;
    }
    return table_start(out, src, path, name, o, 0);
}

cr_status cr_table_open_mem(cr_table **out, const void *buf, size_t len, const char *name_in,
                            const cr_table_opts *o) {
    *out = NULL;
    cr_table_opts def = cr_table_default_opts();
    if (!o) o = &def;
    const char *nm = name_in && *name_in ? name_in : "(memory)";
    if (!buf && len) return cr_fail(CR_ERR_ARG, "%s: no buffer given", nm);
    cr_status st = check_opts(o, nm);
    if (st != CR_OK) return st;
    char *name = dup_name(nm);
    if (!name) return cr_fail(CR_ERR_NOMEM, "%s: out of memory", nm);
    cr_source *src;
    st = cr_source_open_mem(&src, buf, len, name);
    if (st != CR_OK) {
        cr_free(name);
        return st;
    }
    return table_start(out, src, nm, name, o, 1);
}

int64_t cr_table_bytes_in(const cr_table *t) { return cr_source_bytes_in(t->src); }

void cr_table_close(cr_table *t) {
    if (!t) return;
    json_decref(t->cur);
    json_decref(t->pending);
    cr_source_close(t->src);
    cr_free(t->own);
    cr_free(t->cols);
    cr_free(t->sel_idx);
    cr_free(t->sel_req);
    cr_free(t->sel_name);
    cr_free(t->fs);
    cr_free(t->cf);
    cr_free(t->scratch);
    cr_free(t->numbuf);
    cr_free(t->name);
    cr_free(t);
}

cr_table_format cr_table_get_format(const cr_table *t) { return t->fmt; }
const char *cr_table_name(const cr_table *t) { return t->name; }
int64_t cr_table_line(const cr_table *t) { return t->rec_line; }

cr_status cr_table_next(cr_table *t, cr_field *fields) {
    if (t->failed != CR_OK)
        return cr_fail(t->failed, "%s: cannot read on after an earlier error", t->name);
    if (t->n_sel > 0 && !fields) return cr_fail(CR_ERR_ARG, "%s: cr_table_next: no field array", t->name);
    switch (t->fmt) {
    case CR_FMT_CSV: return next_csv(t, fields);
    case CR_FMT_JSONL: return next_jsonl(t, fields);
    default: return next_tsv(t, fields);
    }
}

/* wordvec.c — word vectors from text files (word2vec / fastText .vec with a header, GloVe without), lookups,
 * nearest neighbours, item vectors as weighted averages, seeding a hashed table, .vec export.
 *
 * Main type: cr_wordvec (wordvec_impl.h). Loading streams the file through a cr_source (src/data/source.c:
 * plain or gzip, file or memory) into one line buffer:
 *
 *   buf[0 .. pos)     consumed
 *   buf[pos .. end)   read, not yet consumed
 *   buf[end .. cap)   free; fill() moves [pos, end) to the front and reads behind it, growing the buffer up
 *                     to max_line + 2 bytes when one line does not fit
 *
 * A plain memory source is used in place. Each vector line is parsed straight into the next row of the
 * matrix, which grows by doubling as lines arrive (never sized from the header's N beyond a first 64 MiB),
 * so memory follows the data actually read, and max_bytes bounds it. The word is normalised
 * (cr_text_normalize) and interned into the string pool + open-addressing map (src/data/idmap.c); a word
 * already there leaves its row to be overwritten by the next line. Any error frees everything: a load
 * returns complete vectors or none. */
#include "wordvec_impl.h"
#include "data/source.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BUF_INIT ((size_t)1 << 20)              /* line buffer to start with: 1 MiB */
#define PREALLOC_BYTES ((int64_t)64 << 20)      /* rows allocated up front from a header's N: at most 64 MiB */
#define NUM_MAX 63                              /* longest field read as a number */
#define SHOW 40                                 /* bytes of a word or field quoted in messages */

static const char CRM_MAGIC[8] = {0x7f, 'C', 'R', 'C', 'R', 'M', '\r', '\n'};

cr_wordvec_load_opts cr_wordvec_default_load_opts(void) {
    cr_wordvec_load_opts o;
    memset(&o, 0, sizeof o);
    o.format = CR_WORDVEC_AUTO;
    o.max_words = 0;
    o.max_bytes = (int64_t)16 << 30;
    o.max_line = (int64_t)4 << 20;
    o.words_with_spaces = 0;
    return o;
}

/* ---- the struct ---------------------------------------------------------------------------------------- */

cr_status cr_wordvec_new_empty(cr_wordvec **out, int64_t dim) {
    *out = NULL;
    cr_wordvec *wv = cr_calloc(1, sizeof *wv);
    if (!wv) return cr_fail(CR_ERR_NOMEM, "out of memory (word vectors)");
    cr_strpool_init(&wv->words);
    cr_status st = cr_idmap_init(&wv->map, &wv->words);
    if (st) {
        cr_free(wv);
        return st;
    }
    wv->dim = dim;
    wv->info.dim = dim;
    wv->info.header_words = -1;
    *out = wv;
    return CR_OK;
}

void cr_wordvec_free(cr_wordvec *wv) {
    if (!wv) return;
    cr_idmap_free(&wv->map);
    cr_strpool_free(&wv->words);
    cr_free(wv->vec);
    cr_free(wv->own_table);
    cr_file_close(wv->file);
    cr_free(wv->sub_ptr);
    cr_free(wv->sub);
    cr_free(wv->count);
    cr_free(wv);
}

int64_t cr_wordvec_dim(const cr_wordvec *wv) { return wv->dim; }
int64_t cr_wordvec_size(const cr_wordvec *wv) { return wv->n; }
const cr_wordvec_info *cr_wordvec_get_info(const cr_wordvec *wv) { return &wv->info; }

int32_t cr_wordvec_find(const cr_wordvec *wv, const char *word, int64_t len) {
    if (len < 0 || wv->n == 0) return -1;
    return cr_idmap_find(&wv->map, word, len);
}

const float *cr_wordvec_vector(const cr_wordvec *wv, int32_t row) {
    CR_ASSERT(row >= 0 && row < wv->n);
    return wv->vec + (int64_t)row * wv->dim;
}

const char *cr_wordvec_word(const cr_wordvec *wv, int32_t row) {
    CR_ASSERT(row >= 0 && row < wv->n);
    return cr_strpool_get(&wv->words, row);
}

void cr_wordvec_compose_all(cr_wordvec *wv) {
    int64_t dim = wv->dim;
    for (int64_t r = 0; r < wv->n; r++) {
        float *v = wv->vec + r * dim;
        memset(v, 0, (size_t)dim * sizeof *v);
        int64_t a = wv->sub_ptr[r], b = wv->sub_ptr[r + 1];
        for (int64_t k = a; k < b; k++) {
            const float *t = wv->table + (int64_t)wv->sub[k] * dim;
            for (int64_t j = 0; j < dim; j++) v[j] += t[j];
        }
        float inv = 1.0f / (float)(b - a);
        for (int64_t j = 0; j < dim; j++) v[j] *= inv;
    }
}

/* ---- the line reader ----------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    cr_source *src;
    char *own;                  /* (cap) owned buffer, or NULL when buf is the caller's plain memory */
    const char *buf;
    size_t cap, pos, end, scanned;  /* scanned: bytes after pos already known to hold no newline */
    size_t max_cap;             /* max_line + 2 */
    int64_t max_line;
    int eof;
    int64_t line;               /* physical lines consumed */
} lines;

static cr_status lines_open(lines *L, const char *path, const void *mem, size_t mem_len, const char *name,
                            int64_t max_line) {
    memset(L, 0, sizeof *L);
    L->name = name;
    L->max_line = max_line;
    L->max_cap = (size_t)max_line + 2;
    cr_status st = mem ? cr_source_open_mem(&L->src, mem, mem_len, name) : cr_source_open_file(&L->src, path, name);
    if (st) return st;
    size_t len;
    const char *plain = cr_source_plain_mem(L->src, &len);
    if (plain) {
        L->buf = plain;
        L->end = len;
        L->eof = 1;
        return CR_OK;
    }
    L->cap = BUF_INIT < L->max_cap ? BUF_INIT : L->max_cap;
    if (!(L->own = cr_malloc(L->cap))) return cr_fail(CR_ERR_NOMEM, "%s: out of memory (line buffer)", name);
    L->buf = L->own;
    return CR_OK;
}

static void lines_close(lines *L) {
    cr_source_close(L->src);
    cr_free(L->own);
}

static cr_status line_too_long(const lines *L) {
    cr_fail(CR_ERR_LIMIT, "%s:%lld: line longer than %lld bytes", L->name, (long long)L->line + 1, (long long)L->max_line);
    cr_set_hint("raise max_line if the file really has such lines");
    return CR_ERR_LIMIT;
}

/* Makes room and reads more behind the unconsumed bytes (or sets eof). */
static cr_status lines_fill(lines *L) {
    size_t keep = L->end - L->pos;
    if (L->pos) {
        memmove(L->own, L->own + L->pos, keep);
        L->pos = 0;
        L->end = keep;
    }
    if (L->end == L->cap) {
        if (L->cap >= L->max_cap) return line_too_long(L);
        size_t ncap = L->cap * 2 < L->max_cap ? L->cap * 2 : L->max_cap;
        char *nb = cr_realloc(L->own, ncap);
        if (!nb) return cr_fail(CR_ERR_NOMEM, "%s: out of memory (line buffer of %zu bytes)", L->name, ncap);
        L->own = nb;
        L->buf = nb;
        L->cap = ncap;
    }
    size_t got = 0;
    cr_status st = cr_source_read(L->src, L->own + L->end, L->cap - L->end, &got);
    if (st == CR_DONE) {
        L->eof = 1;
        return CR_OK;
    }
    if (st) return st;
    L->end += got;
    return CR_OK;
}

/* The next physical line without its line end: CR_OK with (*p, *len) valid until the next call, CR_DONE at the
 * end, CR_ERR_LIMIT for a line over max_line, or a read error. */
static cr_status lines_next(lines *L, const char **p, int64_t *len) {
    for (;;) {
        const char *s = L->buf + L->pos;
        size_t avail = L->end - L->pos;
        const char *q = avail > L->scanned ? memchr(s + L->scanned, '\n', avail - L->scanned) : NULL;
        size_t n, adv;
        if (q) {
            n = (size_t)(q - s);
            adv = n + 1;
        } else if (!L->eof) {
            L->scanned = avail;
            cr_status st = lines_fill(L);
            if (st) return st;
            continue;
        } else if (avail == 0) {
            return CR_DONE;
        } else {
            n = adv = avail;
        }
        L->pos += adv;
        L->scanned = 0;
        if (n && s[n - 1] == '\r') n--;
        if ((int64_t)n > L->max_line) return line_too_long(L);
        L->line++;
        *p = s;
        *len = (int64_t)n;
        return CR_OK;
    }
}

/* ---- parsing ------------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    cr_wordvec_load_opts o;
    lines L;
    cr_text_work *tw;
    cr_wordvec *wv;
    int64_t *fs, *fl;           /* (cap_f) start offset and length of each field of the current line */
    int64_t cap_fs, cap_fl, nf;
    int64_t dim_line;           /* line the dimension was taken from (the header's or the first vector's) */
    int64_t line_len;           /* bytes of the current line */
    int have_dim, first;
} loader;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static cr_status split_fields(loader *ld, const char *s, int64_t n) {
    ld->nf = 0;
    for (int64_t i = 0; i < n;) {
        while (i < n && is_blank(s[i])) i++;
        if (i == n) break;
        int64_t a = i;
        while (i < n && !is_blank(s[i])) i++;
        if (ld->nf == ld->cap_fs) {
            cr_status st;
            if ((st = cr_grow((void **)&ld->fs, &ld->cap_fs, ld->nf + 1, sizeof *ld->fs)) ||
                (st = cr_grow((void **)&ld->fl, &ld->cap_fl, ld->nf + 1, sizeof *ld->fl)))
                return st;
        }
        ld->fs[ld->nf] = a;
        ld->fl[ld->nf++] = i - a;
    }
    return CR_OK;
}

/* An unsigned decimal integer of at most 18 digits (so it fits int64). */
static int parse_count(const char *p, int64_t len, int64_t *out) {
    if (len < 1 || len > 18) return 0;
    int64_t v = 0;
    for (int64_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* [sign] (digits [. digits*] | . digits) [(e|E) [sign] digits]: what cr_parse_f32 accepts as syntax. */
static int looks_numeric(const char *p, int64_t len) {
    int64_t i = 0, digits = 0;
    if (i < len && (p[i] == '+' || p[i] == '-')) i++;
    for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) digits++;
    if (i < len && p[i] == '.')
        for (i++; i < len && p[i] >= '0' && p[i] <= '9'; i++) digits++;
    if (!digits) return 0;
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-')) i++;
        int64_t e = 0;
        for (; i < len && p[i] >= '0' && p[i] <= '9'; i++) e++;
        if (!e) return 0;
    }
    return i == len;
}

static int is_nan_or_inf(const char *p, int64_t len) {
    if (len && (p[0] == '+' || p[0] == '-')) p++, len--;
    return (len >= 3 && (!strncasecmp(p, "nan", 3) || !strncasecmp(p, "inf", 3)));
}

/* word2vec's binary format starts with the same header; its vectors are raw bytes, so the line holds control
 * bytes or is cut at a stray newline. */
static void binary_hint(const char *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            cr_set_hint("is this word2vec's binary format? crossrec reads the text format (word2vec -binary 0, or "
                        "gensim's save_word2vec_format(path, binary=False))");
            return;
        }
    }
}

static cr_status bad_number(const loader *ld, const char *s, const char *word, int64_t word_len, int64_t field,
                            int64_t value) {
    const char *p = s + ld->fs[field];
    int64_t len = ld->fl[field];
    const char *why = is_nan_or_inf(p, len) ? "is NaN or infinite (not allowed)"
                      : len > NUM_MAX       ? "is too long to be a number"
                      : looks_numeric(p, len) ? "is out of the float range"
                                            : "is not a number";
    int wl = word_len > SHOW ? SHOW : (int)word_len, vl = len > SHOW ? SHOW : (int)len;
    cr_fail(CR_ERR_PARSE, "%s:%lld: field %lld (value %lld of '%.*s%s'): '%.*s%s' %s", ld->name, (long long)ld->L.line,
            (long long)field + 1, (long long)value, wl, word, word_len > SHOW ? "..." : "", vl, p, len > SHOW ? "..." : "", why);
    binary_hint(s, ld->line_len);
    return CR_ERR_PARSE;
}

/* Rows for at least `need` vectors, within max_bytes. */
static cr_status grow_rows(loader *ld, int64_t need) {
    cr_wordvec *wv = ld->wv;
    if (need <= wv->cap_rows) return CR_OK;
    int64_t row_bytes = wv->dim * (int64_t)sizeof(float);
    int64_t budget = ld->o.max_bytes - wv->words.n_bytes;
    int64_t fit = budget > 0 ? budget / row_bytes : 0;
    int64_t first = PREALLOC_BYTES / row_bytes < 1024 ? PREALLOC_BYTES / row_bytes : 1024;
    int64_t want = wv->cap_rows ? wv->cap_rows * 2 : first;
    if (want < need) want = need;
    if (want > CR_WORDVEC_MAX_WORDS) want = CR_WORDVEC_MAX_WORDS;
    if (want > fit) want = fit;
    if (want < need) {
        cr_fail(CR_ERR_LIMIT, "%s:%lld: the vectors would take more than max_bytes (%lld bytes) of memory", ld->name,
                (long long)ld->L.line, (long long)ld->o.max_bytes);
        cr_set_hint("raise max_bytes, or read only the first words (max_words)");
        return CR_ERR_LIMIT;
    }
    float *v = cr_realloc(wv->vec, (size_t)want * (size_t)row_bytes);
    if (!v)
        return cr_fail(CR_ERR_NOMEM, "%s: out of memory (%lld vectors of dimension %lld)", ld->name, (long long)want,
                       (long long)wv->dim);
    wv->vec = v;
    wv->cap_rows = want;
    return CR_OK;
}

static cr_status start_vectors(loader *ld, int64_t dim, int64_t header_n) {
    if (dim > CR_WORDVEC_MAX_DIM) {
        return cr_fail(CR_ERR_LIMIT, "%s:%lld: dimension %lld is above the largest crossrec accepts (%d)", ld->name,
                       (long long)ld->L.line, (long long)dim, CR_WORDVEC_MAX_DIM);
    }
    cr_status st = cr_wordvec_new_empty(&ld->wv, dim);
    if (st) return st;
    ld->wv->info.header_words = header_n;
    ld->have_dim = 1;
    ld->dim_line = ld->L.line;
    if (header_n > 0) {
        int64_t rows = PREALLOC_BYTES / (dim * (int64_t)sizeof(float));
        if (rows > header_n) rows = header_n;
        if (rows < 1) rows = 1;
        return grow_rows(ld, rows);
    }
    return CR_OK;
}

/* The first non-blank line: a header "N D", or (no header) the first vector, which sets D. Returns 1 in *is_header
 * when it was a header. */
static cr_status first_line(loader *ld, const char *s, int64_t n, int *is_header) {
    int64_t a, b;
    int two_counts = ld->nf == 2 && parse_count(s + ld->fs[0], ld->fl[0], &a) && parse_count(s + ld->fs[1], ld->fl[1], &b);
    *is_header = 0;
    if (ld->o.format == CR_WORDVEC_HEADER || (ld->o.format == CR_WORDVEC_AUTO && two_counts)) {
        if (!two_counts) {
            int k = n > SHOW ? SHOW : (int)n;
            return cr_fail(CR_ERR_PARSE, "%s:%lld: expected the header \"N D\" (word count and dimension), found '%.*s%s'",
                           ld->name, (long long)ld->L.line, k, s, n > SHOW ? "..." : "");
        }
        if (b < 1)
            return cr_fail(CR_ERR_PARSE, "%s:%lld: the header gives dimension %lld (must be at least 1)", ld->name,
                           (long long)ld->L.line, (long long)b);
        if (a > CR_WORDVEC_MAX_WORDS)
            return cr_fail(CR_ERR_LIMIT, "%s:%lld: the header announces %lld words, more than crossrec holds (%d)",
                           ld->name, (long long)ld->L.line, (long long)a, CR_WORDVEC_MAX_WORDS);
        *is_header = 1;
        return start_vectors(ld, b, a);
    }
    if (ld->o.words_with_spaces)
        return cr_fail(CR_ERR_ARG, "%s: words_with_spaces needs a header giving the dimension (the file has none)",
                       ld->name);
    if (ld->nf < 2)
        return cr_fail(CR_ERR_PARSE, "%s:%lld: expected a word and its numbers, found %lld field%s", ld->name,
                       (long long)ld->L.line, (long long)ld->nf, ld->nf == 1 ? "" : "s");
    return start_vectors(ld, ld->nf - 1, -1);
}

static cr_status vector_line(loader *ld, const char *s) {
    cr_wordvec *wv = ld->wv;
    int64_t dim = wv->dim, nf = ld->nf;
    int64_t header_n = wv->info.header_words;
    if (header_n >= 0 && wv->info.n_lines >= header_n)
        return cr_fail(CR_ERR_PARSE, "%s:%lld: more vectors than the %lld that the header (line %lld) announces", ld->name,
                       (long long)ld->L.line, (long long)header_n, (long long)ld->dim_line);
    if (nf != dim + 1 && !(ld->o.words_with_spaces && nf > dim + 1)) {
        if (nf >= 2 && nf - 1 != dim)
            cr_fail(CR_ERR_PARSE, "%s:%lld: %lld number%s after the word, but the dimension is %lld (from %s, line %lld)",
                    ld->name, (long long)ld->L.line, (long long)nf - 1, nf == 2 ? "" : "s", (long long)dim,
                    header_n >= 0 ? "the header" : "the first vector", (long long)ld->dim_line);
        else
            cr_fail(CR_ERR_PARSE, "%s:%lld: expected %lld fields (a word and %lld numbers), found %lld", ld->name,
                    (long long)ld->L.line, (long long)dim + 1, (long long)dim, (long long)nf);
        binary_hint(s, ld->line_len);
        return CR_ERR_PARSE;
    }
    int64_t w_fields = nf - dim;    /* 1, or more when words may hold spaces */
    const char *word = s + ld->fs[0];
    int64_t word_len = ld->fs[w_fields - 1] + ld->fl[w_fields - 1] - ld->fs[0];
    cr_status st;
    if ((st = grow_rows(ld, wv->n + 1))) return st;
    float *row = wv->vec + wv->n * dim;
    for (int64_t j = 0; j < dim; j++) {
        int64_t f = w_fields + j;
        const char *p = s + ld->fs[f];
        if (ld->fl[f] > NUM_MAX || cr_parse_f32(p, ld->fl[f], &row[j]) != 0)
            return bad_number(ld, s, word, word_len, f, j + 1);
    }
    wv->info.n_lines++;
    const char *norm;
    int64_t norm_len;
    if ((st = cr_text_normalize(ld->tw, word, word_len, &norm, &norm_len))) return st;
    if (cr_text_work_replaced_last(ld->tw)) wv->info.n_replaced++;
    if (norm_len == 0) {
        wv->info.n_empty++;
        return CR_OK;
    }
    if (wv->words.n >= CR_WORDVEC_MAX_WORDS)
        return cr_fail(CR_ERR_LIMIT, "%s:%lld: more than %d distinct words", ld->name, (long long)ld->L.line,
                       CR_WORDVEC_MAX_WORDS);
    if ((wv->n + 1) * dim * (int64_t)sizeof(float) + wv->words.n_bytes + norm_len + 1 > ld->o.max_bytes) {
        cr_fail(CR_ERR_LIMIT, "%s:%lld: the vectors would take more than max_bytes (%lld bytes) of memory", ld->name,
                (long long)ld->L.line, (long long)ld->o.max_bytes);
        cr_set_hint("raise max_bytes, or read only the first words (max_words)");
        return CR_ERR_LIMIT;
    }
    int32_t idx;
    int added;
    if ((st = cr_idmap_intern(&wv->map, &wv->words, norm, norm_len, &idx, &added))) return st;
    if (!added) {
        wv->info.n_duplicates++;
        return CR_OK;
    }
    CR_ASSERT(idx == wv->n);
    wv->n++;
    return CR_OK;
}

static cr_status load_text(loader *ld) {
    const char *s;
    int64_t n;
    cr_status st;
    for (;;) {
        if (ld->o.max_words > 0 && ld->wv && ld->wv->info.n_lines >= ld->o.max_words) break;
        st = lines_next(&ld->L, &s, &n);
        if (st == CR_DONE) break;
        if (st) return st;
        if (ld->first && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) s += 3, n -= 3;   /* UTF-8 BOM */
        ld->line_len = n;
        if ((st = split_fields(ld, s, n))) return st;
        if (ld->nf == 0) continue;      /* blank line */
        if (ld->first) {
            ld->first = 0;
            int is_header;
            if ((st = first_line(ld, s, n, &is_header))) return st;
            if (is_header) continue;
        }
        if ((st = vector_line(ld, s))) return st;
    }
    if (!ld->wv)
        return cr_fail(CR_ERR_PARSE, "%s: the file is empty (expected word vectors)", ld->name);
    const cr_wordvec_info *in = &ld->wv->info;
    int truncated = ld->o.max_words > 0 && in->n_lines >= ld->o.max_words;
    if (in->header_words >= 0 && !truncated && in->n_lines != in->header_words)
        return cr_fail(CR_ERR_PARSE, "%s:%lld: the file ends after %lld vectors, but the header (line %lld) announces %lld",
                       ld->name, (long long)ld->L.line, (long long)in->n_lines, (long long)ld->dim_line,
                       (long long)in->header_words);
    ld->wv->info.n_words = ld->wv->n;
    return CR_OK;
}

static const char *check_load_opts(const cr_wordvec_load_opts *o) {
    if (o->format != CR_WORDVEC_AUTO && o->format != CR_WORDVEC_HEADER && o->format != CR_WORDVEC_GLOVE)
        return "format must be CR_WORDVEC_AUTO, CR_WORDVEC_HEADER or CR_WORDVEC_GLOVE";
    if (o->max_words < 0) return "max_words must be >= 0";
    if (o->max_bytes < 1) return "max_bytes must be >= 1";
    if (o->max_line < 1 || o->max_line > ((int64_t)1 << 30)) return "max_line must be in 1..2^30";
    if (o->words_with_spaces != 0 && o->words_with_spaces != 1) return "words_with_spaces must be 0 or 1";
    return NULL;
}

static cr_status load_any(cr_wordvec **out, const char *path, const void *mem, size_t mem_len, const char *name,
                          const cr_wordvec_load_opts *o) {
    *out = NULL;
    cr_wordvec_load_opts defaults = cr_wordvec_default_load_opts();
    if (!o) o = &defaults;
    const char *why = check_load_opts(o);
    if (why) return cr_fail(CR_ERR_ARG, "word vector options: %s", why);

    /* A crossrec file (trained vectors)? */
    int is_crm = 0;
    if (mem) {
        is_crm = mem_len >= sizeof CRM_MAGIC && !memcmp(mem, CRM_MAGIC, sizeof CRM_MAGIC);
    } else if (strcmp(path, "-") != 0) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char head[sizeof CRM_MAGIC];
            is_crm = read(fd, head, sizeof head) == (ssize_t)sizeof head && !memcmp(head, CRM_MAGIC, sizeof head);
            close(fd);
        }
    }
    if (is_crm) {
        cr_file *f;
        cr_status st = mem ? cr_file_open_mem(&f, mem, mem_len, name, "CRM", CR_WORDVEC_CRM_VERSION)
                           : cr_file_open(&f, path, "CRM", CR_WORDVEC_CRM_VERSION);
        if (st) return st;
        return cr_wordvec_load_crm(out, f, name);
    }

    loader ld;
    memset(&ld, 0, sizeof ld);
    ld.name = name;
    ld.o = *o;
    ld.first = 1;
    cr_status st = lines_open(&ld.L, path, mem, mem_len, name, o->max_line);
    if (!st) st = cr_text_work_new(&ld.tw);
    if (!st) st = load_text(&ld);
    lines_close(&ld.L);
    cr_text_work_free(ld.tw);
    cr_free(ld.fs);
    cr_free(ld.fl);
    if (st) {
        cr_wordvec_free(ld.wv);
        return st;
    }
    *out = ld.wv;
    return CR_OK;
}

cr_status cr_wordvec_load(cr_wordvec **wv, const char *path, const cr_wordvec_load_opts *o) {
    return load_any(wv, path, NULL, 0, strcmp(path, "-") ? path : "(stdin)", o);
}

cr_status cr_wordvec_load_mem(cr_wordvec **wv, const void *buf, size_t len, const char *name,
                              const cr_wordvec_load_opts *o) {
    /* A non-NULL pointer marks the memory path even for an empty buffer. */
    return load_any(wv, NULL, len ? buf : "", len, name, o);
}

/* ---- single words and neighbours ------------------------------------------------------------------------ */

static cr_text_hashing lookup_hashing(const cr_wordvec *wv, int subwords) {
    if (wv->info.has_subwords && subwords) return wv->info.hashing;
    cr_text_hashing h = cr_text_default_hashing();
    h.ngram_min = h.ngram_max = 0;
    return h;
}

/* Mean of the table rows of the n-grams after token k (a WORD) into out; returns how many there were. */
static int64_t ngram_mean(const cr_wordvec *wv, const cr_text_token *t, int64_t n_tok, int64_t k, float *out) {
    int64_t dim = wv->dim, m = 0;
    memset(out, 0, (size_t)dim * sizeof *out);
    for (int64_t j = k + 1; j < n_tok && t[j].kind == CR_TEXT_TOK_NGRAM; j++, m++) {
        const float *r = wv->table + (int64_t)cr_text_bucket(&wv->info.hashing, CR_TEXT_TOK_NGRAM, t[j].p, t[j].len) * dim;
        for (int64_t d = 0; d < dim; d++) out[d] += r[d];
    }
    if (m) {
        float inv = 1.0f / (float)m;
        for (int64_t d = 0; d < dim; d++) out[d] *= inv;
    }
    return m;
}

cr_status cr_wordvec_embed_word(const cr_wordvec *wv, cr_text_work *w, const char *s, int64_t len, float *out,
                                cr_wordvec_hit *hit) {
    *hit = CR_WORDVEC_OOV;
    memset(out, 0, (size_t)wv->dim * sizeof *out);
    cr_text_hashing h = lookup_hashing(wv, 1);
    const cr_text_token *t;
    int64_t n;
    cr_status st = cr_text_tokenize(w, &h, s, len, &t, &n);
    if (st || n == 0) return st;
    int32_t row = cr_wordvec_find(wv, t[0].p, t[0].len);
    if (row >= 0) {
        memcpy(out, cr_wordvec_vector(wv, row), (size_t)wv->dim * sizeof *out);
        *hit = CR_WORDVEC_KNOWN;
    } else if (wv->info.has_subwords && t[0].kind == CR_TEXT_TOK_WORD && ngram_mean(wv, t, n, 0, out) > 0) {
        *hit = CR_WORDVEC_SUBWORD;
    }
    return CR_OK;
}

cr_status cr_wordvec_nearest(const cr_wordvec *wv, const float *q, int32_t exclude, int k, int32_t *rows, float *sims,
                             int *n_found) {
    *n_found = 0;
    if (k <= 0) return CR_OK;
    int64_t dim = wv->dim;
    double qq = 0;
    for (int64_t j = 0; j < dim; j++) qq += (double)q[j] * q[j];
    if (qq == 0) return CR_OK;
    double qn = sqrt(qq);
    int m = 0;
    for (int64_t r = 0; r < wv->n; r++) {
        if (r == exclude) continue;
        const float *v = wv->vec + r * dim;
        double dot = 0, vv = 0;
        for (int64_t j = 0; j < dim; j++) dot += (double)q[j] * v[j], vv += (double)v[j] * v[j];
        if (vv == 0) continue;
        float c = (float)(dot / (qn * sqrt(vv)));
        if (m == k && !(c > sims[m - 1])) continue;
        int at = m < k ? m++ : m - 1;
        while (at > 0 && c > sims[at - 1]) {
            sims[at] = sims[at - 1];
            rows[at] = rows[at - 1];
            at--;
        }
        sims[at] = c;
        rows[at] = (int32_t)r;
    }
    *n_found = m;
    return CR_OK;
}

/* ---- item vectors --------------------------------------------------------------------------------------- */

cr_wordvec_item_params cr_wordvec_default_item_params(void) {
    cr_wordvec_item_params p = {CR_TEXT_FIELD_TITLE, CR_WORDVEC_POOL_TFIDF, 1, 1, 0};
    return p;
}

static const char *check_item_params(const cr_wordvec_item_params *p) {
    if (p->fields < 1 || p->fields > (CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT))
        return "fields must be CR_TEXT_FIELD_TITLE, CR_TEXT_FIELD_TEXT or both";
    if (p->pooling != CR_WORDVEC_POOL_MEAN && p->pooling != CR_WORDVEC_POOL_TFIDF)
        return "pooling must be CR_WORDVEC_POOL_MEAN or CR_WORDVEC_POOL_TFIDF";
    if (p->subwords != 0 && p->subwords != 1) return "subwords must be 0 or 1";
    if (p->l2_normalize != 0 && p->l2_normalize != 1) return "l2_normalize must be 0 or 1";
    if (p->threads < 0) return "threads must be >= 0";
    return NULL;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Pass 1 of the item matrix: the word ids of every item as (id, tf) pairs. Ids < wv->n are rows; ids n + j are
 * the OOV words given their n-gram mean (interned in oov / oov_map, their n-gram buckets in oov_sub). */
typedef struct {
    int32_t *id, *tf;           /* (n_pairs) */
    int64_t n_pairs, cap_id, cap_tf;
    int64_t *item_ptr;          /* (n_items + 1) */
    cr_strpool oov;
    cr_idmap oov_map;
    int64_t *oov_ptr;           /* (oov.n + 1) */
    int32_t *oov_sub;
    int64_t cap_oov_ptr, cap_oov_sub;
} item_ids;

static void item_ids_free(item_ids *x) {
    cr_free(x->id), cr_free(x->tf), cr_free(x->item_ptr), cr_free(x->oov_ptr), cr_free(x->oov_sub);
    cr_idmap_free(&x->oov_map);
    cr_strpool_free(&x->oov);
}

static cr_status collect_item_ids(const cr_wordvec *wv, const cr_dataset *d, const cr_wordvec_item_params *p,
                                  item_ids *x, cr_wordvec_item_report *r) {
    int64_t n_items = cr_dataset_inter(d)->n_items;
    int subwords = wv->info.has_subwords && p->subwords;
    cr_text_hashing h = lookup_hashing(wv, subwords);
    cr_text_work *w = NULL;
    cr_status st;
    if ((st = cr_text_work_new(&w)) || (st = cr_idmap_init(&x->oov_map, &x->oov))) goto done;
    if (!(x->item_ptr = cr_malloc(((size_t)n_items + 1) * sizeof *x->item_ptr))) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (word ids of %lld items)", (long long)n_items);
        goto done;
    }
    if ((st = cr_grow((void **)&x->oov_ptr, &x->cap_oov_ptr, 1, sizeof *x->oov_ptr))) goto done;
    x->oov_ptr[0] = 0;
    x->item_ptr[0] = 0;
    for (int64_t i = 0; i < n_items; i++) {
        int64_t a = x->n_pairs;
        for (int f = 0; f < 2; f++) {
            if (!(p->fields & (f ? CR_TEXT_FIELD_TEXT : CR_TEXT_FIELD_TITLE))) continue;
            const char *s = f ? cr_dataset_item_text(d, (int32_t)i) : cr_dataset_item_title(d, (int32_t)i);
            const cr_text_token *t;
            int64_t n;
            if ((st = cr_text_tokenize(w, &h, s, (int64_t)strlen(s), &t, &n))) {
                cr_errmsg_prefix("item '%s'", cr_dataset_item_id(d, (int32_t)i));
                goto done;
            }
            for (int64_t k = 0; k < n; k++) {
                if (t[k].kind == CR_TEXT_TOK_NGRAM) continue;
                r->n_tokens++;
                int64_t id = cr_wordvec_find(wv, t[k].p, t[k].len);
                if (id >= 0) {
                    r->n_known++;
                } else if (subwords && t[k].kind == CR_TEXT_TOK_WORD && k + 1 < n && t[k + 1].kind == CR_TEXT_TOK_NGRAM) {
                    int32_t j;
                    int added;
                    if ((st = cr_idmap_intern(&x->oov_map, &x->oov, t[k].p, t[k].len, &j, &added))) goto done;
                    if (added) {
                        int64_t at = x->oov_ptr[j];
                        for (int64_t g = k + 1; g < n && t[g].kind == CR_TEXT_TOK_NGRAM; g++) {
                            if ((st = cr_grow((void **)&x->oov_sub, &x->cap_oov_sub, at + 1, sizeof *x->oov_sub))) goto done;
                            x->oov_sub[at++] = cr_text_bucket(&h, CR_TEXT_TOK_NGRAM, t[g].p, t[g].len);
                        }
                        if ((st = cr_grow((void **)&x->oov_ptr, &x->cap_oov_ptr, (int64_t)j + 2, sizeof *x->oov_ptr)))
                            goto done;
                        x->oov_ptr[j + 1] = at;
                    }
                    if (wv->n + (int64_t)j >= INT32_MAX) {
                        st = cr_fail(CR_ERR_LIMIT, "more than %d distinct words in the items' text", INT32_MAX);
                        goto done;
                    }
                    id = wv->n + j;
                    r->n_subword++;
                } else {
                    r->n_oov++;
                    continue;
                }
                if ((st = cr_grow((void **)&x->id, &x->cap_id, x->n_pairs + 1, sizeof *x->id))) goto done;
                x->id[x->n_pairs++] = (int32_t)id;
            }
        }
        /* (id, tf) pairs of the item, ascending by id */
        int64_t m = x->n_pairs - a, u = 0;
        if (m > 0) {
            if ((st = cr_grow((void **)&x->tf, &x->cap_tf, x->n_pairs, sizeof *x->tf))) goto done;
            qsort(x->id + a, (size_t)m, sizeof *x->id, cmp_i32);
        }
        for (int64_t k = 0; k < m;) {
            int64_t e = k + 1;
            while (e < m && x->id[a + e] == x->id[a + k]) e++;
            x->id[a + u] = x->id[a + k];
            x->tf[a + u++] = (int32_t)(e - k);
            k = e;
        }
        x->n_pairs = a + u;
        x->item_ptr[i + 1] = x->n_pairs;
        r->n_empty_items += u == 0;
    }
done:
    cr_text_work_free(w);
    return st;
}

static int pick_threads(int want, int64_t n) {
#ifdef _OPENMP
    int64_t t = want > 0 ? want : omp_get_max_threads();
#else
    int64_t t = 1;
    (void)want;
#endif
    if (t > n) t = n;
    return t < 1 ? 1 : (int)t;
}

cr_status cr_wordvec_item_matrix(const cr_wordvec *wv, const cr_dataset *d, const cr_wordvec_item_params *p,
                                 float *out, cr_wordvec_item_report *r) {
    cr_wordvec_item_params defaults = cr_wordvec_default_item_params();
    if (!p) p = &defaults;
    cr_wordvec_item_report rep;
    memset(&rep, 0, sizeof rep);
    int64_t n_items = cr_dataset_inter(d)->n_items, dim = wv->dim;
    memset(out, 0, (size_t)n_items * (size_t)dim * sizeof *out);
    const char *why = check_item_params(p);
    if (why) return cr_fail(CR_ERR_ARG, "word vector item matrix: %s", why);

    item_ids x;
    memset(&x, 0, sizeof x);
    cr_strpool_init(&x.oov);
    int32_t *df = NULL;
    float *oov_vec = NULL;
    double *idf = NULL;
    cr_status st = collect_item_ids(wv, d, p, &x, &rep);
    if (st) goto done;
    int64_t n_ids = wv->n + x.oov.n;
    df = cr_calloc((size_t)n_ids + 1, sizeof *df);
    oov_vec = cr_malloc(((size_t)x.oov.n * (size_t)dim + 1) * sizeof *oov_vec);
    idf = cr_malloc(((size_t)n_items + 1) * sizeof *idf);
    if (!df || !oov_vec || !idf) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (item vectors over %lld words)", (long long)n_ids);
        goto done;
    }
    for (int64_t k = 0; k < x.n_pairs; k++) df[x.id[k]]++;
    for (int64_t f = 0; f <= n_items; f++)
        idf[f] = p->pooling == CR_WORDVEC_POOL_TFIDF ? log((1.0 + (double)n_items) / (1.0 + (double)f)) + 1 : 1;
    for (int64_t j = 0; j < x.oov.n; j++) {
        float *v = oov_vec + j * dim;
        memset(v, 0, (size_t)dim * sizeof *v);
        for (int64_t k = x.oov_ptr[j]; k < x.oov_ptr[j + 1]; k++) {
            const float *t = wv->table + (int64_t)x.oov_sub[k] * dim;
            for (int64_t e = 0; e < dim; e++) v[e] += t[e];
        }
        float inv = 1.0f / (float)(x.oov_ptr[j + 1] - x.oov_ptr[j]);
        for (int64_t e = 0; e < dim; e++) v[e] *= inv;
    }

    /* Each row on its own, in a fixed order of its words: the same bytes for any thread count. */
    int nt = pick_threads(p->threads, n_items);
    (void)nt;   /* unused without OpenMP */
    CR_OMP(omp parallel for num_threads(nt) schedule(static, 256))
    for (int64_t i = 0; i < n_items; i++) {
        float *o = out + i * dim;
        double wsum = 0;
        for (int64_t k = x.item_ptr[i]; k < x.item_ptr[i + 1]; k++) {
            int64_t id = x.id[k];
            const float *v = id < wv->n ? wv->vec + id * dim : oov_vec + (id - wv->n) * dim;
            float wt = (float)(x.tf[k] * idf[df[id]]);
            for (int64_t e = 0; e < dim; e++) o[e] += wt * v[e];
            wsum += wt;
        }
        if (wsum > 0) {
            float inv = (float)(1 / wsum);
            double ss = 0;
            for (int64_t e = 0; e < dim; e++) o[e] *= inv, ss += (double)o[e] * o[e];
            if (p->l2_normalize && ss > 0) {
                float s = (float)(1 / sqrt(ss));
                for (int64_t e = 0; e < dim; e++) o[e] *= s;
            }
        }
    }
done:
    item_ids_free(&x);
    cr_free(df), cr_free(oov_vec), cr_free(idf);
    if (st) memset(out, 0, (size_t)n_items * (size_t)dim * sizeof *out);
    if (r) *r = rep;
    return st;
}

/* ---- a hashed table seeded from the vectors ------------------------------------------------------------- */

/* The token kind of a word when the tokenizer reads it as exactly one token (a CJK bigram comes with its two
 * characters), else -1. */
static int one_token_kind(cr_text_work *w, const cr_text_hashing *h0, const char *s, int64_t len, cr_status *st) {
    const cr_text_token *t;
    int64_t n;
    if ((*st = cr_text_tokenize(w, h0, s, len, &t, &n))) return -1;
    if (n == 1 && t[0].len == len && !memcmp(t[0].p, s, (size_t)len)) return (int)t[0].kind;
    if (n == 3 && t[2].kind == CR_TEXT_TOK_BIGRAM && t[2].len == len && !memcmp(t[2].p, s, (size_t)len))
        return CR_TEXT_TOK_BIGRAM;
    return -1;
}

cr_status cr_wordvec_init_buckets(const cr_wordvec *wv, const cr_text_hashing *h, float *table, int64_t *n_set) {
    if (n_set) *n_set = 0;
    const char *why = cr_text_check_hashing(h);
    if (why) return cr_fail(CR_ERR_ARG, "text hashing: %s", why);
    int64_t dim = wv->dim, B = h->n_buckets;
    if (wv->info.has_subwords && cr_text_hashing_equal(h, &wv->info.hashing)) {
        memcpy(table, wv->table, (size_t)B * (size_t)dim * sizeof *table);
        if (n_set) *n_set = B;
        return CR_OK;
    }
    int32_t *cnt = cr_calloc((size_t)B, sizeof *cnt), *bucket = cr_malloc(((size_t)wv->n + 1) * sizeof *bucket);
    cr_text_work *w = NULL;
    cr_status st = CR_OK;
    if (!cnt || !bucket) {
        st = cr_fail(CR_ERR_NOMEM, "out of memory (bucket counts of %lld buckets)", (long long)B);
        goto done;
    }
    if ((st = cr_text_work_new(&w))) goto done;
    cr_text_hashing h0 = *h;
    h0.ngram_min = h0.ngram_max = 0;
    for (int64_t r = 0; r < wv->n; r++) {
        const char *s = cr_strpool_get(&wv->words, r);
        int64_t len = cr_strpool_len(&wv->words, r);
        int kind = one_token_kind(w, &h0, s, len, &st);
        if (st) goto done;
        bucket[r] = kind < 0 ? -1 : cr_text_bucket(h, (cr_text_tok_kind)kind, s, len);
        if (bucket[r] >= 0) cnt[bucket[r]]++;
    }
    int64_t set = 0;
    for (int64_t b = 0; b < B; b++)
        if (cnt[b]) memset(table + b * dim, 0, (size_t)dim * sizeof *table), set++;
    for (int64_t r = 0; r < wv->n; r++) {
        if (bucket[r] < 0) continue;
        float *t = table + (int64_t)bucket[r] * dim;
        const float *v = wv->vec + r * dim;
        for (int64_t e = 0; e < dim; e++) t[e] += v[e];
    }
    for (int64_t b = 0; b < B; b++) {
        if (cnt[b] < 2) continue;
        float inv = 1.0f / (float)cnt[b];
        for (int64_t e = 0; e < dim; e++) table[b * dim + e] *= inv;
    }
    if (n_set) *n_set = set;
done:
    cr_text_work_free(w);
    cr_free(cnt), cr_free(bucket);
    return st;
}

/* ---- .vec export ------------------------------------------------------------------------------------------ */

cr_status cr_wordvec_export_vec(const cr_wordvec *wv, const char *path) {
    for (int64_t r = 0; r < wv->n; r++) {
        const char *s = cr_strpool_get(&wv->words, r);
        if (strpbrk(s, " \t\r\n"))
            return cr_fail(CR_ERR_ARG, "%s: word %lld ('%.*s') holds a space, tab or line end, which a .vec file cannot "
                           "represent", path, (long long)r, SHOW, s);
    }
    int to_stdout = strcmp(path, "-") == 0;
    char *tmp = NULL;
    FILE *fp = stdout;
    if (!to_stdout) {
        size_t n = strlen(path) + 5;
        if (!(tmp = cr_malloc(n))) return cr_fail(CR_ERR_NOMEM, "out of memory");
        snprintf(tmp, n, "%s.tmp", path);
        if (!(fp = fopen(tmp, "wb"))) {
            cr_status st = cr_fail(CR_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
            cr_free(tmp);
            return st;
        }
    }
    int64_t dim = wv->dim;
    int ok = fprintf(fp, "%lld %lld\n", (long long)wv->n, (long long)dim) > 0;
    for (int64_t r = 0; ok && r < wv->n; r++) {
        ok = fputs(cr_strpool_get(&wv->words, r), fp) >= 0;
        const float *v = wv->vec + r * dim;
        for (int64_t e = 0; ok && e < dim; e++) ok = fprintf(fp, " %.9g", (double)v[e]) > 0;
        ok = ok && fputc('\n', fp) != EOF;
    }
    ok = ok && fflush(fp) == 0;
    int err = errno;
    if (to_stdout) return ok ? CR_OK : cr_fail(CR_ERR_IO, "(stdout): write failed: %s", strerror(err));
    ok = ok && fsync(fileno(fp)) == 0;
    if (!ok) err = errno;
    if (fclose(fp) != 0 && ok) ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
    cr_status st = CR_OK;
    if (!ok) {
        st = cr_fail(CR_ERR_IO, "%s: write failed: %s", path, strerror(err));
        unlink(tmp);
    }
    cr_free(tmp);
    return st;
}

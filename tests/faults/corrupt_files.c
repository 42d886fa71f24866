/* corrupt_files.c — corruption campaign (issue 9): one file of every kind crossrec writes (.crd, .crs, a .crm of
 * each model type, the text encoder's and the word vectors' .crm, the training state .crt, .npy, word vectors as
 * .vec text) is damaged in three ways: (a) random bits flipped, one or several; (b) truncated at random lengths
 * and at every structural boundary (the container's header, metadata, table, each array, the trailer, and one
 * byte either side; .npy's header and data; .vec's lines); (c) extended with garbage. Each damaged copy goes
 * through the real loader (cr_dataset_load, cr_split_load, cr_model_load, cr_textenc_load, cr_wordvec_load, a
 * resumed training run, cr_npy_read_f32), built with ASan+UBSan, so an out-of-bounds read aborts the program.
 *
 * Rules: a crossrec container is CRC-protected: every damaged copy must be rejected with a message naming the
 * file. The text formats may load when the damage lands in data (a digit flipped): counted apart as "loaded";
 * only crashing is forbidden there (and .npy has no checksum either), and a rejection must name the file too.
 *
 *   make test-faults [FAULTS=short]        or   corrupt_files short|long [SEED]
 *
 * Prints one line per file and a summary line; exit 1 when a rule was broken. */
#include "fixture.h"

#include "crossrec/io.h"
#include "crossrec/split.h"
#include "crossrec/textenc.h"
#include "crossrec/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;
static const cr_split *resume_split;    /* the split a resumed run trains on */

/* ---- loaders ------------------------------------------------------------------------------------------ */

static cr_status load_dataset(const char *path) {
    cr_dataset *d = NULL;
    cr_status st = cr_dataset_load(&d, path);
    cr_dataset_free(d);
    return st;
}

static cr_status load_split(const char *path) {
    cr_split *s = NULL;
    cr_status st = cr_split_load(&s, path);
    cr_split_free(s);
    return st;
}

static cr_status load_model(const char *path) {
    cr_model *m = NULL;
    cr_status st = cr_model_load(&m, path);
    cr_model_free(m);
    return st;
}

static cr_status load_textenc(const char *path) {
    cr_textenc *e = NULL;
    cr_status st = cr_textenc_load(&e, path);
    cr_textenc_free(e);
    return st;
}

static cr_status load_wordvec(const char *path) {
    cr_wordvec *wv = NULL;
    cr_status st = cr_wordvec_load(&wv, path, NULL);
    cr_wordvec_free(wv);
    return st;
}

/* `crossrec train --resume PATH`: its settings read back from the state, then the run continued from it. */
static cr_status load_state(const char *path) {
    cr_train_params p = fx_resumable_params(resume_split);
    cr_status st = cr_train_state_params(path, &p);
    if (st) return st;
    p.pause_after = 0, p.resume = path, p.valid = resume_split;
    cr_model *m = NULL;
    st = cr_model_train(&m, cr_split_dataset(resume_split), cr_split_train(resume_split), &p);
    cr_model_free(m);
    return st;
}

static cr_status load_npy(const char *path) {
    float *v = NULL;
    int64_t rows, cols;
    cr_status st = cr_npy_read_f32(path, &v, &rows, &cols);
    cr_free(v);
    return st;
}

typedef enum { CONTAINER, NPY, TEXT } file_format;

typedef struct {
    const char *name;
    cr_status (*load)(const char *path);
    file_format format;
} subject;

static subject subjects[32];
static int n_subjects;

static void add_subject(const char *name, cr_status (*load)(const char *), file_format format) {
    subjects[n_subjects++] = (subject){name, load, format};
}

/* ---- damage ---------------------------------------------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_file(const char *path, const unsigned char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void add_cut(int64_t *out, int64_t *n, int64_t cap, size_t len, uint64_t at) {
    if (*n < cap && at <= len) out[(*n)++] = (int64_t)at;
}

/* Offsets where a file's structure changes (each one a truncation length to try, with +-1 around it). */
static int64_t boundaries(const unsigned char *b, size_t len, file_format format, int64_t *out, int64_t cap) {
    int64_t n = 0;
    if (format == CONTAINER && len >= 64) {
        uint64_t meta_off = get_le(b + 24, 8), meta_len = get_le(b + 32, 8), table_off = get_le(b + 40, 8);
        uint64_t n_arrays = get_le(b + 48, 8);
        const uint64_t fixed[] = {8, 16, 24, 64, meta_off, meta_off + meta_len, table_off, len - 8, len - 4};
        for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) add_cut(out, &n, cap, len, fixed[k]);
        for (uint64_t a = 0; a < n_arrays && table_off + (a + 1) * 96 <= len; a++) {
            const unsigned char *e = b + table_off + a * 96;
            add_cut(out, &n, cap, len, table_off + a * 96);
            add_cut(out, &n, cap, len, table_off + a * 96 + 64);
            add_cut(out, &n, cap, len, get_le(e + 80, 8));
            add_cut(out, &n, cap, len, get_le(e + 80, 8) + get_le(e + 88, 8));
        }
    } else if (format == NPY && len >= 10) {
        const uint64_t data = 10 + get_le(b + 8, 2), fixed[] = {6, 8, 10, data, (data + len) / 2};
        for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) add_cut(out, &n, cap, len, fixed[k]);
    } else {        /* text: line ends, evenly spaced (at most 64) */
        int64_t lines = 0, k = 0;
        for (size_t i = 0; i < len; i++) lines += b[i] == '\n';
        for (size_t i = 0; i < len; i++)
            if (b[i] == '\n' && k++ % (lines / 64 + 1) == 0) add_cut(out, &n, cap, len, i), add_cut(out, &n, cap, len, i + 1);
    }
    add_cut(out, &n, cap, len, 0), add_cut(out, &n, cap, len, 1), add_cut(out, &n, cap, len, len - 1);
    return n;
}

typedef struct {
    int64_t corrupted, detected, unnamed, undetected, loaded;
    int64_t by_status[CR_ERR_COUNT_];
} tally;

static int violations;

/* Writes the damaged bytes as a copy next to the original and loads it; checks the rules. */
static void try_copy(const subject *s, const unsigned char *b, size_t len, const char *what, tally *t) {
    char name[128];
    snprintf(name, sizeof name, "damaged-%s", s->name);
    const char *path = fx_path(dir, name);
    write_file(path, b, len);
    cr_clear_error();
    cr_status st = s->load(path);
    t->corrupted++;
    if (st == CR_OK) {
        if (s->format == CONTAINER) {
            t->undetected++;
            if (violations++ < 40) fprintf(stderr, "corrupt_files: %s, %s: loaded without an error\n", s->name, what);
        } else {
            t->loaded++;
        }
        return;
    }
    t->detected++;
    t->by_status[st]++;
    if (!strstr(cr_errmsg(), name)) {
        t->unnamed++;
        if (violations++ < 40) fprintf(stderr, "corrupt_files: %s, %s: the message does not name the file: %s\n", s->name, what, cr_errmsg());
    }
}

static void campaign(const subject *s, int is_short, cr_rng *r, tally *t) {
    size_t len;
    unsigned char *orig = read_file(fx_path(dir, s->name), &len);
    if (!orig || len < 16) {
        fprintf(stderr, "corrupt_files: cannot read %s\n", s->name);
        exit(2);
    }
    unsigned char *b = malloc(len + 8192);
    char what[128];
    const int scale = is_short ? 1 : 10;
    /* (a) bit flips: one bit, then 2..8 bits */
    for (int k = 0; k < 40 * scale; k++) {
        memcpy(b, orig, len);
        int flips = k < 25 * scale ? 1 : 2 + (int)cr_rng_below(r, 7);
        uint64_t at = 0;
        for (int f = 0; f < flips; f++) {
            at = cr_rng_below(r, (uint32_t)len);
            b[at] ^= (unsigned char)(1u << cr_rng_below(r, 8));
        }
        snprintf(what, sizeof what, "%d bit(s) flipped (last at byte %llu)", flips, (unsigned long long)at);
        try_copy(s, b, len, what, t);
    }
    /* (b) truncation: at every boundary and one byte either side, then at random lengths */
    int64_t cuts[4096];
    int64_t n_cuts = boundaries(orig, len, s->format, cuts, (4096 - 200) / 3);
    for (int64_t c = n_cuts - 1; c >= 0; c--) cuts[n_cuts++] = cuts[c] - 1, cuts[n_cuts++] = cuts[c] + 1;
    for (int k = 0; k < 15 * scale; k++) cuts[n_cuts++] = cr_rng_below(r, (uint32_t)len);
    for (int64_t c = 0; c < n_cuts; c++) {
        if (cuts[c] < 0 || (size_t)cuts[c] >= len) continue;
        snprintf(what, sizeof what, "truncated to %lld of %zu bytes", (long long)cuts[c], len);
        try_copy(s, orig, (size_t)cuts[c], what, t);
    }
    /* (c) extension: garbage or zeros behind the end */
    for (int k = 0; k < 5 * scale; k++) {
        size_t extra = 1 + cr_rng_below(r, 8192);
        memcpy(b, orig, len);
        for (size_t i = 0; i < extra; i++) b[len + i] = k % 2 ? 0 : (unsigned char)cr_rng_u32(r);
        snprintf(what, sizeof what, "extended by %zu %s bytes", extra, k % 2 ? "zero" : "random");
        try_copy(s, b, len + extra, what, t);
    }
    free(b);
    free(orig);
}

int main(int argc, char **argv) {
    int is_short = argc > 1 && !strcmp(argv[1], "short");
    if (argc < 2 || (!is_short && strcmp(argv[1], "long"))) {
        fprintf(stderr, "usage: corrupt_files short|long [SEED]\n");
        return 2;
    }
    cr_log_set(NULL, NULL, CR_LOG_ERROR);
    dir = fx_tmpdir("corrupt");
    fx_make_data(dir);
    fx_make_files(dir);
    cr_split *s = NULL;
    fx_check(cr_split_load(&s, fx_path(dir, "split.crs")), "load split.crs");
    resume_split = s;

    static char model_files[16][32];
    add_subject("data.crd", load_dataset, CONTAINER);
    add_subject("split.crs", load_split, CONTAINER);
    for (int k = 0; k < fx_n_models; k++) {
        snprintf(model_files[k], sizeof model_files[k], "%s.crm", fx_models[k]);
        add_subject(model_files[k], load_model, CONTAINER);
    }
    add_subject("text.crm", load_textenc, CONTAINER);
    add_subject("wordvec.crm", load_wordvec, CONTAINER);
    add_subject("bpr.crt", load_state, CONTAINER);
    add_subject("items.npy", load_npy, NPY);
    add_subject("wordvec.vec", load_wordvec, TEXT);

    cr_rng r;
    cr_rng_seed(&r, argc > 2 ? strtoull(argv[2], NULL, 10) : 9, 1);
    tally all = {0};
    double t0 = cr_now();
    for (int k = 0; k < n_subjects; k++) {
        tally t = {0};
        double t1 = cr_now();
        for (int i = 0; i < 2; i++) {       /* each file must load intact before it is damaged */
            cr_status st = subjects[k].load(fx_path(dir, subjects[k].name));
            if (st) fx_check(st, subjects[k].name);
        }
        campaign(&subjects[k], is_short, &r, &t);
        char statuses[256] = "";
        size_t n = 0;
        for (int c = 0; c < CR_ERR_COUNT_; c++)
            if (t.by_status[c]) n += (size_t)snprintf(statuses + n, sizeof statuses - n, "%s%s %lld", n ? ", " : "", cr_status_str((cr_status)c), (long long)t.by_status[c]);
        printf("corrupt_files: %-12s %5lld corrupted, %5lld detected (%s), %lld undetected, %lld loaded (no checksum), %lld unnamed, %.1f s\n",
               subjects[k].name, (long long)t.corrupted, (long long)t.detected, statuses, (long long)t.undetected, (long long)t.loaded,
               (long long)t.unnamed, cr_now() - t1);
        fflush(stdout);
        all.corrupted += t.corrupted, all.detected += t.detected, all.undetected += t.undetected;
        all.loaded += t.loaded, all.unnamed += t.unnamed;
    }
    cr_split_free(s);
    printf("corrupt_files: %s: %d files, %lld corrupted copies, %lld detected, %lld undetected, %lld loaded (no checksum), %lld "
           "unnamed, %.0f s\n", argv[1], n_subjects, (long long)all.corrupted, (long long)all.detected, (long long)all.undetected,
           (long long)all.loaded, (long long)all.unnamed, cr_now() - t0);
    if (!violations) fx_rmdir(dir);
    else fprintf(stderr, "corrupt_files: files kept in %s\n", dir);
    return violations ? 1 : 0;
}

/* cmd_inspect.c — `crossrec inspect FILE [--json]`: what is in any crossrec file, and whether it is intact.
 *
 * Opening the file runs the full validation (magic, sizes, CRC32C, every offset), so reaching the printout
 * means "checksum ok". Any kind and any version is accepted: the container is the same for all of them, and a
 * future container change would fail validation rather than print nonsense. FILE may be `-` for stdin. */
#include "cli.h"

#include "crossrec/io.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHOWN_STR 200   /* text mode shortens longer string values */

static const char *kind_name(const char *kind) {
    if (!strcmp(kind, "CRD")) return "dataset";
    if (!strcmp(kind, "CRS")) return "split";
    if (!strcmp(kind, "CRM")) return "model";
    if (!strcmp(kind, "CRT")) return "training state";
    return "unknown kind";
}

/* Shortest %g form that reads back to the same double. */
static void fmt_f64(char *buf, size_t n, double v) {
    snprintf(buf, n, "%.15g", v);
    if (isfinite(v) && strtod(buf, NULL) != v) snprintf(buf, n, "%.17g", v);
}

/* Writes s (len bytes) as a double-quoted string with C escapes for control bytes, quotes and backslashes;
 * at most max bytes of s are shown. Bytes >= 0x80 pass through (UTF-8) unless ascii_only. The JSON output
 * uses the ascii_only form, quotes stripped, for strings that are not valid UTF-8. */
static void put_quoted(FILE *out, const char *s, size_t len, size_t max, int ascii_only) {
    fputc('"', out);
    size_t shown = len < max ? len : max;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f || (ascii_only && c >= 0x80)) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    fputc('"', out);
    if (shown < len) fprintf(out, "... (%zu bytes)", len);
}

/* Prints s left-aligned in width columns, with control bytes shown as '?' so that a hostile key cannot send
 * escape sequences to the terminal. */
static void put_padded(const char *s, int width) {
    int n = 0;
    for (; s[n]; n++) putchar((unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n]);
    for (; n < width; n++) putchar(' ');
}

static void fmt_size(char *buf, size_t n, int64_t bytes) {
    if (bytes < 10 * 1024) snprintf(buf, n, "%lld bytes", (long long)bytes);
    else if (bytes < 10ll * 1024 * 1024) snprintf(buf, n, "%.1f KiB (%lld bytes)", bytes / 1024.0, (long long)bytes);
    else if (bytes < 10ll * 1024 * 1024 * 1024)
        snprintf(buf, n, "%.1f MiB (%lld bytes)", bytes / (1024.0 * 1024), (long long)bytes);
    else snprintf(buf, n, "%.1f GiB (%lld bytes)", bytes / (1024.0 * 1024 * 1024), (long long)bytes);
}

static void print_text(const cr_file *f, const char *path) {
    char size[64];
    fmt_size(size, sizeof size, cr_file_size(f));
    printf("file       %s\n", path);
    printf("kind       %s (%s)\n", cr_file_kind(f), kind_name(cr_file_kind(f)));
    printf("version    %u\n", cr_file_version(f));
    printf("size       %s\n", size);
    printf("checksum   ok (crc32c 0x%08x)\n", cr_file_crc(f));

    int64_t n_meta = cr_file_n_meta(f);
    int kw = 3;
    for (int64_t i = 0; i < n_meta; i++) {
        size_t l = strlen(cr_file_meta_at(f, i)->key);
        if (l > (size_t)kw) kw = l > 40 ? 40 : (int)l;
    }
    printf("\nmetadata   %lld %s\n", (long long)n_meta, n_meta == 1 ? "entry" : "entries");
    for (int64_t i = 0; i < n_meta; i++) {
        const cr_meta *m = cr_file_meta_at(f, i);
        printf("  ");
        put_padded(m->key, kw);
        printf("  ");
        char num[64];
        switch (m->type) {
        case CR_META_I64: printf("i64     %lld\n", (long long)m->i64); break;
        case CR_META_F64:
            fmt_f64(num, sizeof num, m->f64);
            printf("f64     %s\n", num);
            break;
        case CR_META_STR:
            printf("string  ");
            put_quoted(stdout, m->str, strlen(m->str), MAX_SHOWN_STR, 0);
            printf("\n");
            break;
        }
    }

    int64_t n_arr = cr_file_n_arrays(f);
    int nw = 4;
    for (int64_t i = 0; i < n_arr; i++) {
        size_t l = strlen(cr_file_array_at(f, i)->name);
        if (l > (size_t)nw) nw = (int)l;
    }
    printf("\narrays     %lld\n", (long long)n_arr);
    if (n_arr) printf("  %-*s  %-5s  %14s  %14s  %14s\n", nw, "name", "dtype", "count", "bytes", "offset");
    for (int64_t i = 0; i < n_arr; i++) {
        const cr_array *a = cr_file_array_at(f, i);
        printf("  ");
        put_padded(a->name, nw);
        printf("  %-5s  %14lld  %14lld  %14lld\n", cr_dtype_name(a->dtype), (long long)a->count, (long long)a->nbytes,
               (long long)a->offset);
    }
}

/* jansson accepts only valid UTF-8; other bytes come out as \xNN escapes inside the JSON string. */
static json_t *json_bytes(const char *s) {
    json_t *j = json_string(s);
    if (j) return j;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return NULL;
    put_quoted(m, s, strlen(s), (size_t)-1, 1);
    if (fclose(m) != 0 || len < 2) {
        free(buf);
        return NULL;
    }
    j = json_stringn(buf + 1, len - 2);   /* without the quotes put_quoted added */
    free(buf);
    return j;
}

static json_t *json_f64(double v) {
    if (isfinite(v)) return json_real(v);
    /* JSON has no NaN or infinities. */
    return json_string(isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

/* Returns 0, or -1 when jansson ran out of memory. */
static int print_json(const cr_file *f, const char *path) {
    int bad = 0;
    char crc[16];
    snprintf(crc, sizeof crc, "0x%08x", cr_file_crc(f));
    json_t *root = json_object(), *meta = json_array(), *arrays = json_array();
    if (!root || !meta || !arrays) {
        json_decref(root), json_decref(meta), json_decref(arrays);
        return -1;
    }
    bad |= json_object_set_new(root, "file", json_bytes(path));
    bad |= json_object_set_new(root, "kind", json_string(cr_file_kind(f)));
    bad |= json_object_set_new(root, "kind_name", json_string(kind_name(cr_file_kind(f))));
    bad |= json_object_set_new(root, "version", json_integer(cr_file_version(f)));
    bad |= json_object_set_new(root, "size", json_integer(cr_file_size(f)));
    bad |= json_object_set_new(root, "crc32c", json_string(crc));
    bad |= json_object_set_new(root, "checksum", json_string("ok"));
    for (int64_t i = 0; i < cr_file_n_meta(f); i++) {
        const cr_meta *m = cr_file_meta_at(f, i);
        json_t *e = json_object();
        if (!e) {
            bad = -1;
            break;
        }
        bad |= json_object_set_new(e, "key", json_bytes(m->key));
        switch (m->type) {
        case CR_META_I64:
            bad |= json_object_set_new(e, "type", json_string("i64"));
            bad |= json_object_set_new(e, "value", json_integer(m->i64));
            break;
        case CR_META_F64:
            bad |= json_object_set_new(e, "type", json_string("f64"));
            bad |= json_object_set_new(e, "value", json_f64(m->f64));
            break;
        case CR_META_STR:
            bad |= json_object_set_new(e, "type", json_string("string"));
            bad |= json_object_set_new(e, "value", json_bytes(m->str));
            break;
        }
        bad |= json_array_append_new(meta, e);
    }
    for (int64_t i = 0; i < cr_file_n_arrays(f); i++) {
        const cr_array *a = cr_file_array_at(f, i);
        json_t *e = json_object();
        if (!e) {
            bad = -1;
            break;
        }
        bad |= json_object_set_new(e, "name", json_bytes(a->name));
        bad |= json_object_set_new(e, "dtype", json_string(cr_dtype_name(a->dtype)));
        bad |= json_object_set_new(e, "count", json_integer(a->count));
        bad |= json_object_set_new(e, "bytes", json_integer(a->nbytes));
        bad |= json_object_set_new(e, "offset", json_integer(a->offset));
        bad |= json_array_append_new(arrays, e);
    }
    bad |= json_object_set_new(root, "metadata", meta);
    bad |= json_object_set_new(root, "arrays", arrays);
    if (!bad) bad = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!bad) fputc('\n', stdout);
    json_decref(root);
    return bad ? -1 : 0;
}

/* Reads all of stdin into a cr_malloc'ed buffer, for `inspect -`. */
static cr_status read_stdin(char **buf, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = cr_malloc(cap);
    if (!b) return cr_fail(CR_ERR_NOMEM, "stdin: out of memory");
    for (;;) {
        if (n == cap) {
            char *nb = cap <= SIZE_MAX / 2 ? cr_realloc(b, cap * 2) : NULL;
            if (!nb) {
                cr_free(b);
                return cr_fail(CR_ERR_NOMEM, "stdin: out of memory after %zu bytes", n);
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n, stdin);
        n += k;
        if (k == 0) break;
    }
    if (ferror(stdin)) {
        cr_free(b);
        return cr_fail(CR_ERR_IO, "stdin: read failed: %s", strerror(errno));
    }
    *buf = b;
    *len = n;
    return CR_OK;
}

int cmd_inspect(int argc, char **argv) {
    static const cli_cmd_info info = {
        "inspect", "inspect FILE [--json]",
        "verify a crossrec file (.crd .crs .crm .crt) and print its kind, version, metadata and arrays; - reads stdin"};
    int json = 0;
    const cli_opt opts[] = {
        {"json", 0, CLI_FLAG, &json, NULL, 0, NULL, "print one JSON object instead of text"},
        {NULL, 0, CLI_FLAG, NULL, NULL, 0, NULL, NULL},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&info, "expected one FILE");

    const char *path = pos[0];
    char *buf = NULL;
    cr_file *f = NULL;
    cr_status st;
    if (!strcmp(path, "-")) {
        size_t len = 0;
        st = read_stdin(&buf, &len);
        if (!st) st = cr_file_open_mem(&f, buf, len, "stdin", NULL, UINT32_MAX);
    } else {
        st = cr_file_open(&f, path, NULL, UINT32_MAX);
    }
    if (st) {
        cr_free(buf);
        return cli_fail(st);
    }
    rc = 0;
    const char *shown = strcmp(path, "-") ? path : "(stdin)";
    if (json) {
        if (print_json(f, shown) != 0) rc = cli_fail(cr_fail(CR_ERR_NOMEM, "out of memory building the JSON output"));
    } else {
        print_text(f, shown);
    }
    cr_file_close(f);
    cr_free(buf);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_fail(cr_fail(CR_ERR_IO, "stdout: write failed: %s", strerror(errno)));
    return rc;
}

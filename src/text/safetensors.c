/* safetensors.c — a validating reader of HuggingFace's safetensors format over a caller's buffer (bert.h).
 *
 * Layout: u64 LE header length N, N bytes of JSON, then the data. Every check the reference implementation
 * makes is made here before any pointer is handed out, so that the result can be indexed without further
 * checks: N fits the buffer and is at most 100 MB; the header is one JSON object (duplicate keys refused);
 * "__metadata__", if present, maps strings to strings; every other key is a tensor with a known dtype, a shape of
 * non-negative integers whose product (times the element size) does not overflow, and data_offsets [b, e] with
 * e - b equal to that byte size; sorted by offset the tensors tile the data exactly (no hole, no overlap, no
 * byte left over). Messages name the buffer, the tensor and the value.
 *
 * Invariant of a parsed handle: tensors[] is sorted by data offset, every data pointer lies inside the buffer
 * with nbytes bytes after it, names are NUL-terminated copies. */
#include "crossrec/bert.h"
#include "crossrec/data.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20)

struct cr_safetensors {
    cr_st_tensor *tensors;      /* (n) sorted by data offset */
    const cr_st_tensor **order; /* (n) the tensors sorted by name, for cr_safetensors_find */
    int64_t n;
    char *names;                /* all names, NUL-terminated, back to back */
};

static const struct {
    const char *name;
    cr_st_dtype dt;
    int size;
} dtypes[] = {
    {"BOOL", CR_ST_BOOL, 1}, {"U8", CR_ST_U8, 1},    {"I8", CR_ST_I8, 1},     {"U16", CR_ST_U16, 2},
    {"I16", CR_ST_I16, 2},   {"F16", CR_ST_F16, 2},  {"BF16", CR_ST_BF16, 2}, {"U32", CR_ST_U32, 4},
    {"I32", CR_ST_I32, 4},   {"F32", CR_ST_F32, 4},  {"U64", CR_ST_U64, 8},   {"I64", CR_ST_I64, 8},
    {"F64", CR_ST_F64, 8},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *cr_st_dtype_name(cr_st_dtype dt) {
    for (int i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dt == dt) return dtypes[i].name;
    return "?";
}

/* Offsets in the JSON are u64 in the format; jansson's integers are int64, which is plenty for a buffer in
 * memory, and a negative value is an error of its own. */
static cr_status get_u64(json_t *v, const char *name, const char *tensor, const char *what, int64_t *out) {
    if (!json_is_integer(v))
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s': %s is not an integer", name, tensor, what);
    json_int_t x = json_integer_value(v);
    if (x < 0) return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s': %s is negative (%lld)", name, tensor, what, (long long)x);
    *out = (int64_t)x;
    return CR_OK;
}

static cr_status parse_tensor(cr_st_tensor *t, json_t *info, const char *name, const char *tname,
                              const uint8_t *data, uint64_t data_len) {
    if (!json_is_object(info)) return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' is not a JSON object", name, tname);
    json_t *dt = json_object_get(info, "dtype"), *shape = json_object_get(info, "shape"),
           *offs = json_object_get(info, "data_offsets");
    if (!json_is_string(dt)) return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' has no string \"dtype\"", name, tname);
    int size = 0;
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(json_string_value(dt), dtypes[i].name)) t->dtype = dtypes[i].dt, size = dtypes[i].size;
    if (!size)
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s': unsupported dtype '%s'", name, tname, json_string_value(dt));
    if (!json_is_array(shape)) return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' has no \"shape\" array", name, tname);
    size_t nd = json_array_size(shape);
    if (nd > CR_ST_MAX_DIMS)
        return cr_fail(CR_ERR_LIMIT, "%s: tensor '%s' has %zu dimensions (at most %d)", name, tname, nd, CR_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t count = 1;
    int overflow = 0;
    for (size_t k = 0; k < nd; k++) {
        cr_status st = get_u64(json_array_get(shape, k), name, tname, "a shape entry", &t->shape[k]);
        if (st) return st;
        uint64_t d = (uint64_t)t->shape[k];
        if (d && count > (uint64_t)INT64_MAX / d) overflow = 1;
        else count *= d;
    }
    if (overflow || count > (uint64_t)INT64_MAX / (uint64_t)size)
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s': the shape's byte size overflows", name, tname);
    t->count = (int64_t)count;
    t->nbytes = (int64_t)(count * (uint64_t)size);
    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' has no \"data_offsets\" pair", name, tname);
    int64_t b, e;
    cr_status st;
    if ((st = get_u64(json_array_get(offs, 0), name, tname, "data_offsets[0]", &b)) ||
        (st = get_u64(json_array_get(offs, 1), name, tname, "data_offsets[1]", &e)))
        return st;
    if (b > e || (uint64_t)e > data_len)
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] outside the %llu data bytes", name,
                       tname, (long long)b, (long long)e, (unsigned long long)data_len);
    if (e - b != t->nbytes)
        return cr_fail(CR_ERR_FORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, its shape and dtype %s need %lld",
                       name, tname, (long long)b, (long long)e, (long long)(e - b), json_string_value(dt), (long long)t->nbytes);
    t->data = data + b;
    return CR_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const cr_st_tensor *x = a, *y = b;
    if (x->data != y->data) return (const uint8_t *)x->data < (const uint8_t *)y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const cr_st_tensor *const *)a)->name, (*(const cr_st_tensor *const *)b)->name);
}

cr_status cr_safetensors_parse(cr_safetensors **out, const void *buf, size_t len, const char *name) {
    *out = NULL;
    const uint8_t *p = buf;
    if (len < 8) return cr_fail(CR_ERR_FORMAT, "%s: %zu bytes: too short for a safetensors header length", name, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | p[i];
    if (n > ST_MAX_HEADER)
        return cr_fail(CR_ERR_LIMIT, "%s: safetensors header of %llu bytes (at most %llu)", name, (unsigned long long)n,
                       (unsigned long long)ST_MAX_HEADER);
    if (n > len - 8)
        return cr_fail(CR_ERR_FORMAT, "%s: safetensors header of %llu bytes, but only %zu bytes follow", name,
                       (unsigned long long)n, len - 8);
    const uint8_t *data = p + 8 + n;
    uint64_t data_len = len - 8 - n;
    json_error_t jerr;
    int out_of_memory;
    json_t *root = cr_json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr, &out_of_memory);
    if (!root)
        return cr_fail(out_of_memory ? CR_ERR_NOMEM : CR_ERR_FORMAT,
                       "%s: safetensors header is not valid JSON (byte %d: %s)", name, jerr.position, jerr.text);
    cr_status st = CR_OK;
    cr_safetensors *s = NULL;
    if (!json_is_object(root)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: safetensors header is not a JSON object", name);
        goto done;
    }
    size_t n_keys = json_object_size(root), name_bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__")) {
            name_bytes += strlen(key) + 1;
            continue;
        }
        n_keys--;
        const char *mk;
        json_t *mv;
        if (!json_is_object(val)) {
            st = cr_fail(CR_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", name);
            goto done;
        }
        json_object_foreach(val, mk, mv) if (!json_is_string(mv)) {
            st = cr_fail(CR_ERR_FORMAT, "%s: \"__metadata__\" value of '%s' is not a string", name, mk);
            goto done;
        }
    }
    s = cr_calloc(1, sizeof *s);
    if (s) {
        s->tensors = cr_calloc(n_keys ? n_keys : 1, sizeof *s->tensors);
        s->order = cr_calloc(n_keys ? n_keys : 1, sizeof *s->order);
        s->names = cr_malloc(name_bytes ? name_bytes : 1);
    }
    if (!s || !s->tensors || !s->order || !s->names) {
        st = cr_fail(CR_ERR_NOMEM, "%s: out of memory for %zu tensor entries", name, n_keys);
        goto done;
    }
    size_t at = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        cr_st_tensor *t = &s->tensors[s->n];
        size_t kl = strlen(key);
        memcpy(s->names + at, key, kl + 1);
        t->name = s->names + at;
        at += kl + 1;
        if ((st = parse_tensor(t, val, name, key, data, data_len))) goto done;
        s->n++;
    }
    qsort(s->tensors, (size_t)s->n, sizeof *s->tensors, cmp_offset);
    uint64_t next = 0;
    for (int64_t i = 0; i < s->n; i++) {
        const cr_st_tensor *t = &s->tensors[i];
        uint64_t b = (uint64_t)((const uint8_t *)t->data - data);
        if (b != next) {
            st = cr_fail(CR_ERR_FORMAT, "%s: tensor '%s' starts at data offset %llu, expected %llu (%s)", name, t->name,
                         (unsigned long long)b, (unsigned long long)next, b < next ? "overlap" : "hole");
            goto done;
        }
        next = b + (uint64_t)t->nbytes;
    }
    if (next != data_len) {
        st = cr_fail(CR_ERR_FORMAT, "%s: tensors cover %llu data bytes, the file has %llu", name,
                     (unsigned long long)next, (unsigned long long)data_len);
        goto done;
    }
    for (int64_t i = 0; i < s->n; i++) s->order[i] = &s->tensors[i];
    qsort(s->order, (size_t)s->n, sizeof *s->order, cmp_name);
done:
    json_decref(root);
    if (st) {
        cr_safetensors_free(s);
        return st;
    }
    *out = s;
    return CR_OK;
}

int64_t cr_safetensors_count(const cr_safetensors *st) { return st->n; }

const cr_st_tensor *cr_safetensors_at(const cr_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const cr_st_tensor *cr_safetensors_find(const cr_safetensors *st, const char *name) {
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->order[mid]->name, name);
        if (!c) return st->order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void cr_safetensors_free(cr_safetensors *st) {
    if (!st) return;
    cr_free(st->tensors);
    cr_free(st->order);
    cr_free(st->names);
    cr_free(st);
}

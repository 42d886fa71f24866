/* features.c — the hashing definition (cr_text_hashing): defaults, checks, and its record in file metadata.
 *
 * Keys (all i64 but text.unicode): text.hash, text.version, text.seed, text.buckets, text.ngram_min,
 * text.ngram_max; text.unicode is the Unicode version of the utf8proc that wrote the file, for diagnosis
 * only (a newer Unicode only changes code points that were unassigned before). */
#include "text_impl.h"

#include <utf8proc.h>

cr_text_hashing cr_text_default_hashing(void) {
    cr_text_hashing h = {CR_TEXT_HASH_MURMUR3_32, CR_TEXT_VERSION, 0, 1 << 20, 3, 5};
    return h;
}

int cr_text_hashing_equal(const cr_text_hashing *a, const cr_text_hashing *b) {
    return a->hash_id == b->hash_id && a->version == b->version && a->seed == b->seed && a->n_buckets == b->n_buckets &&
           a->ngram_min == b->ngram_min && a->ngram_max == b->ngram_max;
}

const char *cr_text_check_hashing(const cr_text_hashing *h) {
    if (h->hash_id != CR_TEXT_HASH_MURMUR3_32) return "hash_id must be CR_TEXT_HASH_MURMUR3_32 (1)";
    if (h->version < 1 || h->version > CR_TEXT_VERSION) return "version must be 1 (CR_TEXT_VERSION)";
    if (h->n_buckets < 1 || h->n_buckets > CR_TEXT_MAX_BUCKETS) return "n_buckets must be in 1..2^28";
    if (h->ngram_min == 0 && h->ngram_max == 0) return NULL;
    if (h->ngram_min < 1 || h->ngram_max < h->ngram_min || h->ngram_max > CR_TEXT_MAX_NGRAM)
        return "ngram_min..ngram_max must satisfy 1 <= min <= max <= 16, or both be 0 (no n-grams)";
    return NULL;
}

cr_status cr_text_hashing_write(cr_filew *w, const cr_text_hashing *h) {
    const char *why = cr_text_check_hashing(h);
    if (why) return cr_fail(CR_ERR_ARG, "text hashing: %s", why);
    cr_status st;
    if ((st = cr_filew_meta_i64(w, "text.hash", h->hash_id)) || (st = cr_filew_meta_i64(w, "text.version", h->version)) ||
        (st = cr_filew_meta_i64(w, "text.seed", h->seed)) || (st = cr_filew_meta_i64(w, "text.buckets", h->n_buckets)) ||
        (st = cr_filew_meta_i64(w, "text.ngram_min", h->ngram_min)) ||
        (st = cr_filew_meta_i64(w, "text.ngram_max", h->ngram_max)) ||
        (st = cr_filew_meta_str(w, "text.unicode", utf8proc_unicode_version())))
        return st;
    return CR_OK;
}

cr_status cr_text_hashing_read(const cr_file *f, cr_text_hashing *h) {
    int64_t id, version, seed, buckets, nmin, nmax;
    cr_status st;
    if ((st = cr_file_get_i64(f, "text.hash", &id))) return st;
    if (id != CR_TEXT_HASH_MURMUR3_32) {
        cr_fail(CR_ERR_FORMAT, "text.hash is %lld, a hash this crossrec does not know (it knows 1, murmur3_32)",
                (long long)id);
        cr_set_hint("the file was written by another crossrec; rebuild the text features with this one");
        return CR_ERR_FORMAT;
    }
    if ((st = cr_file_get_i64(f, "text.version", &version))) return st;
    if (version > CR_TEXT_VERSION) {
        cr_fail(CR_ERR_VERSION, "text.version is %lld, newer than this crossrec's text rules (%d)", (long long)version,
                CR_TEXT_VERSION);
        cr_set_hint("upgrade crossrec to read this file");
        return CR_ERR_VERSION;
    }
    if ((st = cr_file_get_i64(f, "text.seed", &seed)) || (st = cr_file_get_i64(f, "text.buckets", &buckets)) ||
        (st = cr_file_get_i64(f, "text.ngram_min", &nmin)) || (st = cr_file_get_i64(f, "text.ngram_max", &nmax)))
        return st;
    if (version < 1 || seed < 0 || seed > UINT32_MAX || buckets < 1 || buckets > CR_TEXT_MAX_BUCKETS ||
        nmin < 0 || nmin > CR_TEXT_MAX_NGRAM || nmax < 0 || nmax > CR_TEXT_MAX_NGRAM)
        return cr_fail(CR_ERR_FORMAT, "text hashing out of range: version %lld, seed %lld, buckets %lld, n-grams %lld..%lld",
                       (long long)version, (long long)seed, (long long)buckets, (long long)nmin, (long long)nmax);
    cr_text_hashing r = {(int32_t)id, (int32_t)version, (uint32_t)seed, buckets, (int32_t)nmin, (int32_t)nmax};
    const char *why = cr_text_check_hashing(&r);
    if (why) return cr_fail(CR_ERR_FORMAT, "text hashing: %s", why);
    *h = r;
    return CR_OK;
}

/* cmd_embed.c — item vectors from item text: `crossrec embed` writes them as a NumPy .npy file, `crossrec
 * similar-text` lists an item's nearest neighbours by cosine (the exact top-K index over L2-normalised rows). */
#include "cli.h"
#include "crossrec/data.h"
#include "crossrec/embed.h"
#include "crossrec/index.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define METHOD_HELP "hash-tfidf, minilm, wordvec:FILE or pretrained:FILE"

/* --fields title|text|both into CR_TEXT_FIELD_* bits; 0 when unknown. */
static int parse_fields(const char *s) {
    if (!strcmp(s, "title")) return CR_TEXT_FIELD_TITLE;
    if (!strcmp(s, "text")) return CR_TEXT_FIELD_TEXT;
    if (!strcmp(s, "both")) return CR_TEXT_FIELD_TITLE | CR_TEXT_FIELD_TEXT;
    return 0;
}

/* Options shared by both commands, checked into p. Returns 0, or the usage error's exit code. */
static int settle_params(const cli_cmd_info *info, const char *method, const char *fields, int64_t dim,
                         int64_t threads, cr_embed_params *p) {
    *p = cr_embed_default_params();
    if (cr_embed_parse_method(method, p)) {
        int rc = cli_usage_error(info, "%s", cr_errmsg());
        fprintf(stderr, "hint: %s\n", cr_errhint());
        return rc;
    }
    if (!(p->fields = parse_fields(fields))) return cli_usage_error(info, "--fields must be title, text or both, not '%s'", fields);
    if (dim < 1 || dim > CR_EMBED_MAX_DIM) return cli_usage_error(info, "--dim must be 1..%d", CR_EMBED_MAX_DIM);
    if (dim != 256 && p->method != CR_EMBED_HASH_TFIDF)
        return cli_usage_error(info, "--dim applies to hash-tfidf only (%s has its own dimension)", cr_embed_method_name(p->method));
    if (threads < 0 || threads > 4096) return cli_usage_error(info, "--threads must be 0..4096");
    p->dim = dim;
    p->threads = (int)threads;
    return 0;
}

static const cli_cmd_info embed_info = {
    "embed",
    "embed data.crd --method hash-tfidf|minilm|wordvec:FILE|pretrained:FILE -o items.npy [--fields title|text|both] [--dim D] "
    "[--threads N]",
    "Writes one vector per item of the dataset, in its item order, as a float32 NumPy .npy file of shape\n"
    "(n_items, D). hash-tfidf: TF-IDF of hashed words and character n-grams, projected to --dim columns by a\n"
    "fixed sparse random sign matrix (seed 42), rows L2-normalised. minilm: all-MiniLM-L6-v2 (384-d; needs\n"
    "models/minilm.crm from `make models`, or minilm:FILE). wordvec:FILE: TF-IDF-weighted mean of word vectors\n"
    "(word2vec/GloVe/fastText .vec, plain or .gz, or a .crm trained by crossrec), L2-normalised.\n"
    "pretrained:FILE: crossrec's own text encoder written by `crossrec pretrain` (its dim).",
};

int cmd_embed(int argc, char **argv) {
    const char *method = "hash-tfidf", *out = NULL, *fields = "title";
    int64_t dim = 256, threads = 0;
    int quiet = 0;
    const cli_opt opts[] = {
        {"method", 'm', CLI_STR, &method, NULL, 0, "M", METHOD_HELP},
        {"output", 'o', CLI_STR, &out, NULL, 0, "FILE", ".npy file to write (- for standard output)"},
        {"fields", 0, CLI_STR, &fields, NULL, 0, "F", "item text used: title, text or both"},
        {"dim", 0, CLI_INT, &dim, NULL, 0, "D", "hash-tfidf output dimension"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads, 0: all cores"},
        {"quiet", 'q', CLI_FLAG, &quiet, NULL, 0, NULL, "no progress line and no summary line on stderr"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&embed_info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&embed_info, "give one dataset file");
    if (!out) return cli_usage_error(&embed_info, "give the output file with -o items.npy");
    cr_embed_params p;
    if ((rc = settle_params(&embed_info, method, fields, dim, threads, &p))) return rc;

    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, pos[0]);
    if (st) return cli_fail(st);
    int64_t n = cr_dataset_inter(d)->n_items, D = 0;
    float *x = NULL;
    double t0 = cr_now();
    cli_progress pr;
    p.progress = cli_progress_start(&pr, "embed", "item", quiet);
    st = cr_embed_items(d, &p, &x, &D);
    double secs = cr_now() - t0;
    if (!st) st = cr_npy_write_f32(out, x, n, D);
    if (st) cli_progress_end(&pr, stderr, NULL);
    else
        cli_progress_end(&pr, stderr, "embed: %lld items x %lld (%s) in %.2f s, %.0f items/s -> %s", (long long)n, (long long)D,
                         method, secs, secs > 0 ? n / secs : 0.0, out);
    cr_free(x);
    cr_dataset_free(d);
    return st ? cli_fail(st) : 0;
}

static const cli_cmd_info similar_info = {
    "similar-text",
    "similar-text data.crd --item ID [-k 10] [--method M] [--domain D|all] [--vectors items.npy] [--fields F] "
    "[--dim D] [--threads N]",
    "Lists the k items whose text is nearest to the given item's (cosine of the chosen representation), in the\n"
    "item's own domain unless --domain names another or 'all'. --vectors reads rows written by `crossrec embed`\n"
    "instead of computing them. Prints item id, domain, score and title, tab-separated, best first.",
};

int cmd_similar_text(int argc, char **argv) {
    const char *method = "hash-tfidf", *fields = "title", *item_id = NULL, *domain = NULL, *vectors = NULL;
    int64_t k = 10, dim = 256, threads = 0;
    const cli_opt opts[] = {
        {"item", 0, CLI_STR, &item_id, NULL, 0, "ID", "the item whose neighbours are listed"},
        {"k", 'k', CLI_INT, &k, NULL, 0, "K", "neighbours to list"},
        {"method", 'm', CLI_STR, &method, NULL, 0, "M", METHOD_HELP},
        {"domain", 0, CLI_STR, &domain, NULL, 0, "D", "domain of the neighbours, or all (default: the item's)"},
        {"vectors", 0, CLI_STR, &vectors, NULL, 0, "FILE", "item vectors from `crossrec embed` (.npy)"},
        {"fields", 0, CLI_STR, &fields, NULL, 0, "F", "item text used: title, text or both"},
        {"dim", 0, CLI_INT, &dim, NULL, 0, "D", "hash-tfidf output dimension"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "threads, 0: all cores"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&similar_info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&similar_info, "give one dataset file");
    if (!item_id) return cli_usage_error(&similar_info, "give the item with --item ID");
    if (k < 1 || k > CR_INDEX_MAX_K) return cli_usage_error(&similar_info, "-k must be 1..%d", CR_INDEX_MAX_K);
    cr_embed_params p;
    if ((rc = settle_params(&similar_info, method, fields, dim, threads, &p))) return rc;

    cr_dataset *d;
    cr_status st = cr_dataset_load(&d, pos[0]);
    if (st) return cli_fail(st);
    const cr_interactions *I = cr_dataset_inter(d);
    float *x = NULL;
    int64_t D = 0, rows = 0;
    cr_index *ix = NULL;
    int32_t item = cr_dataset_find_item(d, item_id), dom = -1;
    if (item < 0) {
        st = cr_fail(CR_ERR_NOTFOUND, "item '%s' is not in %s", item_id, pos[0]);
        cr_set_hint("item ids are the catalogue's ids as imported (see `crossrec stats`)");
        goto done;
    }
    if (!domain) dom = I->item_domain[item];
    else if (strcmp(domain, "all") && (dom = cr_dataset_find_domain(d, domain)) < 0) {
        st = cr_fail(CR_ERR_NOTFOUND, "domain '%s' is not in %s", domain, pos[0]);
        cr_set_hint("give one of the dataset's domains (crossrec stats) or 'all'");
        goto done;
    }
    if (vectors) {
        if ((st = cr_npy_read_f32(vectors, &x, &rows, &D))) goto done;
        if (rows != I->n_items) {
            st = cr_fail(CR_ERR_ARG, "%s has %lld rows, the dataset %lld items", vectors, (long long)rows,
                         (long long)I->n_items);
            cr_set_hint("write the vectors with `crossrec embed` on the same dataset");
            goto done;
        }
        /* Cosine: the index scores inner products, so rows are normalised here (embed's already are). */
        for (int64_t i = 0; i < rows; i++) {
            double s = 0;
            float *r = x + i * D;
            for (int64_t j = 0; j < D; j++) s += (double)r[j] * r[j];
            if (s > 0)
                for (int64_t j = 0; j < D; j++) r[j] = (float)(r[j] / sqrt(s));
        }
    } else if ((st = cr_embed_items(d, &p, &x, &D))) {
        goto done;
    }
    cr_index_params ip = cr_index_default_params();
    ip.borrow = 1;
    ip.item_domain = I->item_domain;
    if ((st = cr_index_init(&ix, x, I->n_items, D, &ip))) goto done;
    cr_index_search_params sp = cr_index_search_default_params();
    sp.k = k;
    sp.domain = dom;
    sp.threads = p.threads;
    int32_t items[CR_INDEX_MAX_K];
    float scores[CR_INDEX_MAX_K];
    int64_t n_found = 0;
    if ((st = cr_index_search(ix, x + (int64_t)item * D, &item, 1, &sp, items, scores, &n_found))) goto done;
    int zero = 1;
    for (int64_t j = 0; j < D && zero; j++) zero = x[(int64_t)item * D + j] == 0;
    if (zero) fprintf(stderr, "crossrec: warning: item '%s' has no usable text; every score is 0\n", item_id);
    printf("item\tdomain\tscore\ttitle\n");
    for (int64_t r = 0; r < n_found; r++)
        printf("%s\t%s\t%.4f\t%s\n", cr_dataset_item_id(d, items[r]), cr_dataset_domain_name(d, I->item_domain[items[r]]),
               scores[r], cr_dataset_item_title(d, items[r]));
done:
    cr_index_free(ix);
    cr_free(x);
    cr_dataset_free(d);
    return st ? cli_fail(st) : 0;
}

/* cmd_models.c — `crossrec models convert|check|encode`: the pretrained text encoder's file, used by
 * `make models` (not listed in `crossrec --help`; docs/TEXT_MODEL.md describes it).
 *
 *   crossrec models convert DIR -o models/minilm.crm [--sha256 HEX]   sentence-transformers folder -> .crm
 *   crossrec models check [FILE] [--sha256 HEX]     loads FILE (CRC, every array); with --sha256, also checks
 *                                                   that it was converted from that model.safetensors
 *   crossrec models encode [--model FILE] TEXT...    token ids and vector of each TEXT (for a person to look at) */
#include "cli.h"

#include "crossrec/bert.h"
#include "crossrec/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_cmd_info info = {
    "models",
    "models convert DIR -o FILE [--sha256 HEX] | models check [FILE] [--sha256 HEX] | models encode [--model FILE] TEXT...",
    "The pretrained text encoder (all-MiniLM-L6-v2) used by crossrec. `make models` downloads it and runs\n"
    "`convert` once; `check` verifies a converted file; `encode` shows the token ids and vector of texts.",
};

#define MAX_POS 256

static int do_check(const char *path, const char *sha) {
    cr_bert *m;
    cr_status st = cr_bert_load(&m, path);
    if (st) return cli_fail(st);
    cr_bert_free(m);
    if (sha) {
        cr_file *f;
        const char *have;
        if ((st = cr_file_open(&f, path, "CRM", CR_BERT_FILE_VERSION))) return cli_fail(st);
        st = cr_file_get_str(f, "minilm.source_sha256", &have);
        int same = !st && !strcmp(have, sha);
        if (!st && !same) {
            cr_fail(CR_ERR_FORMAT, "%s was converted from model.safetensors %s, not the pinned %s", path,
                    *have ? have : "(unknown)", sha);
            cr_set_hint("`make models` converts the pinned model again");
            st = CR_ERR_FORMAT;
        }
        cr_file_close(f);
        if (st) return cli_fail(st);
    }
    printf("%s: ok\n", path);
    return 0;
}

static int do_encode(const char *path, const char **texts, int n) {
    cr_bert *m;
    cr_status st = cr_bert_load(&m, path);
    if (st) return cli_fail(st);
    const cr_bert_config *c = cr_bert_get_config(m);
    float *v = malloc((size_t)(n * c->hidden) * sizeof *v);
    int32_t *ids = malloc((size_t)c->max_seq * sizeof *ids);
    if (!v || !ids) {
        free(v), free(ids), cr_bert_free(m);
        return cli_fail(cr_fail(CR_ERR_NOMEM, "out of memory"));
    }
    if (!(st = cr_bert_encode(m, texts, n, v)))
        for (int i = 0; i < n && !st; i++) {
            int64_t nt;
            if ((st = cr_bert_tokenize(m, texts[i], ids, c->max_seq, &nt))) break;
            printf("text %d: %lld tokens:", i, (long long)nt);
            for (int64_t k = 0; k < nt; k++)
                printf(" %d:%s", ids[k], cr_wordpiece_token(cr_bert_vocab(m), ids[k]));
            printf("\nvector %d:", i);
            for (int64_t k = 0; k < c->hidden && k < 8; k++) printf(" %.6f", v[i * c->hidden + k]);
            printf(" ... (%lld values)\n", (long long)c->hidden);
        }
    free(v), free(ids);
    cr_bert_free(m);
    return st ? cli_fail(st) : 0;
}

int cmd_models(int argc, char **argv) {
    const char *out = NULL, *sha = NULL, *model = CR_BERT_MODEL_PATH;
    const cli_opt opts[] = {
        {"output", 'o', CLI_STR, &out, NULL, 0, "FILE", "convert: the .crm to write"},
        {"sha256", 0, CLI_STR, &sha, NULL, 0, "HEX", "convert: record; check: require this model.safetensors SHA-256"},
        {"model", 0, CLI_STR, &model, NULL, 0, "FILE", "encode: the converted model"},
        {0},
    };
    const char *pos[MAX_POS];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, MAX_POS, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos < 1) return cli_usage_error(&info, "give a verb: convert, check or encode");
    if (!strcmp(pos[0], "convert")) {
        if (n_pos != 2 || !out) return cli_usage_error(&info, "convert takes a model folder and -o FILE");
        cr_status st = cr_bert_convert(pos[1], out, sha);
        if (st) return cli_fail(st);
        printf("converted %s to %s\n", pos[1], out);
        return 0;
    }
    if (!strcmp(pos[0], "check")) {
        if (n_pos > 2) return cli_usage_error(&info, "check takes at most one file");
        return do_check(n_pos == 2 ? pos[1] : CR_BERT_MODEL_PATH, sha);
    }
    if (!strcmp(pos[0], "encode")) {
        if (n_pos < 2) return cli_usage_error(&info, "encode takes one or more texts");
        return do_encode(model, pos + 1, n_pos - 1);
    }
    return cli_usage_error(&info, "unknown verb '%s' (convert, check, encode)", pos[0]);
}

/* fuzz_serve.c — the server's JSON API (src/serve/api.c) on arbitrary requests, without sockets.
 *
 * Input: byte 0 picks the model (bit 0: bpr, answered through the top-K index, or itemknn, through scoring)
 * and the request (bits 1-3: POST /v1/recommend, POST /v1/similar, GET /v1/model, GET /metrics, GET /healthz,
 * or a method, path and content type read from the input's first lines); the rest is the body. Reload is left
 * out (its body names files to open). Every answer must be a status in 200..599 with a body; JSON answers must
 * parse. The models come from a small synthetic dataset made once per process (libFuzzer) or per input (the
 * replay in `make test`, which checks for leaks). */
#include "crossrec/serve.h"
#include "fuzz.h"
#include "serve/serve_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Two APIs over a 40-user, 30-item, 2-domain dataset: bpr and itemknn. */
static int make_apis(cr_api **apis) {
    char dir[] = "/tmp/crossrec-fuzz-XXXXXX", inter[64], items[64];
    if (!mkdtemp(dir)) return -1;
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = 40, sp.n_items = 30, sp.n_inter = 400, sp.n_domains = 2;
    snprintf(inter, sizeof inter, "%s/interactions.tsv", dir);
    snprintf(items, sizeof items, "%s/items.tsv", dir);
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = inter;
    ip.items[ip.n_items++] = items;
    int rc = -1;
    if (!cr_synth_write(dir, &sp)) {
        rc = 0;
        for (int k = 0; k < 2 && !rc; k++) {
            cr_dataset *d = NULL;
            cr_model *m = NULL;
            cr_rec *r = NULL;
            cr_train_params p = cr_train_default_params();
            p.model = k ? "itemknn" : "bpr";
            p.dim = 4, p.epochs = 1, p.quiet = 1;
            cr_rec_params rp = cr_rec_default_params();
            if (cr_dataset_import(&d, &ip, NULL) || cr_model_train(&m, d, cr_dataset_inter(d), &p)) {
                cr_model_free(m);
                cr_dataset_free(d);
                rc = -1;
            } else if (cr_rec_new(&r, m, d, &rp) || cr_api_new(&apis[k], r, "fuzz.crm", NULL, 1 << 16, 1)) {
                rc = -1;
            }
        }
    }
    remove(inter), remove(items), rmdir(dir);
    return rc;
}

static void check_answer(const cr_api_response *rs) {
    if (rs->status < 200 || rs->status > 599 || !rs->body || !rs->content_type) __builtin_trap();
    if (!strcmp(rs->content_type, "application/json")) {
        json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
        if (!j) __builtin_trap();
        json_decref(j);
    }
}

/* The next '\n'-terminated line of [*p, end) as a NUL-terminated copy in buf. */
static void take_line(const char **p, const char *end, char *buf, size_t cap) {
    size_t n = 0;
    while (*p < end && **p != '\n') {
        if (n + 1 < cap) buf[n++] = **p ? **p : ' ';
        (*p)++;
    }
    if (*p < end) (*p)++;
    buf[n] = '\0';
}

CR_FUZZ_TARGET(serve) {
#ifdef CR_FUZZ_LIBFUZZER
    static cr_api *apis[2];
    static int ready;
    if (!ready) ready = make_apis(apis) ? -1 : 1;
    if (ready < 0) return 0;
#else
    cr_api *apis[2] = {NULL, NULL};
    if (make_apis(apis)) {
        cr_api_free(apis[0]);
        cr_api_free(apis[1]);
        return 0;
    }
#endif
    if (size > 0) {
        cr_api *a = apis[data[0] & 1];
        const char *body = (const char *)data + 1, *end = (const char *)data + size;
        char method[64] = "POST", url[256] = "/v1/recommend", type[128] = "application/json";
        switch ((data[0] >> 1) & 7) {
        case 0: break;
        case 1: snprintf(url, sizeof url, "/v1/similar"); break;
        case 2: snprintf(method, sizeof method, "GET"), snprintf(url, sizeof url, "/v1/model"); break;
        case 3: snprintf(method, sizeof method, "GET"), snprintf(url, sizeof url, "/metrics"); break;
        case 4: snprintf(method, sizeof method, "GET"), snprintf(url, sizeof url, "/healthz"); break;
        default:
            take_line(&body, end, method, sizeof method);
            take_line(&body, end, url, sizeof url);
            take_line(&body, end, type, sizeof type);
            if (strstr(url, "reload")) url[0] = '\0';
            break;
        }
        cr_api_response rs;
        cr_api_request(a, method, url, type, body, (size_t)(end - body), &rs);
        check_answer(&rs);
        cr_api_response_free(&rs);
    }
#ifndef CR_FUZZ_LIBFUZZER
    cr_api_free(apis[0]);
    cr_api_free(apis[1]);
#endif
    return 0;
}

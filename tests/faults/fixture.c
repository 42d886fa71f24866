/* fixture.c — the files the fault campaigns work on (fixture.h). */
#include "fixture.h"

#include "crossrec/embed.h"
#include "crossrec/split.h"
#include "crossrec/textenc.h"
#include "crossrec/train.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const fx_models[] = {"pop", "itemknn", "bpr", "als", "cmf", "emcdr", "ptupcdr", "tower"};
const int fx_n_models = (int)(sizeof fx_models / sizeof fx_models[0]);

const char *fx_tmpdir(const char *campaign) {
    static char dir[512];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/crossrec-%s-XXXXXX", base && *base ? base : "/tmp", campaign);
    if (!mkdtemp(dir)) {
        perror(dir);
        exit(2);
    }
    return dir;
}

void fx_rmdir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(fx_path(dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

const char *fx_path(const char *dir, const char *name) {
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

void fx_check(cr_status st, const char *what) {
    if (st == CR_OK) return;
    fprintf(stderr, "fixture: %s: %s: %s\n", what, cr_status_str(st), cr_errmsg());
    exit(2);
}

void fx_make_data(const char *dir) {
    cr_synth_params sp = cr_synth_default_params();
    sp.n_users = 60, sp.n_items = 40, sp.n_inter = 700, sp.n_domains = 2, sp.seed = 7;
    fx_check(cr_synth_write(dir, &sp), "synth");
    cr_import_params ip = cr_import_default_params();
    ip.interactions[ip.n_interactions++] = fx_path(dir, "interactions.tsv");
    ip.items[ip.n_items++] = fx_path(dir, "items.tsv");
    cr_dataset *d = NULL;
    fx_check(cr_dataset_import(&d, &ip, NULL), "import");
    fx_check(cr_dataset_save(d, fx_path(dir, "data.crd")), "save data.crd");
    cr_dataset_free(d);
    d = NULL;
    fx_check(cr_dataset_load(&d, fx_path(dir, "data.crd")), "load data.crd");
    cr_split_params p = cr_split_default_params();
    p.protocol = CR_PROTO_COLD_USER;
    p.target = FX_TARGET;
    p.beta = 0.3;
    cr_split *s = NULL;
    fx_check(cr_split_make(&s, d, &p), "split");
    fx_check(cr_split_save(s, fx_path(dir, "split.crs")), "save split.crs");
    cr_split_free(s);
    cr_dataset_free(d);
}

cr_train_params fx_train_params(const char *model, const cr_split *s) {
    cr_train_params p = cr_train_default_params();
    p.model = model;
    p.dim = 8;
    p.epochs = 1;
    p.threads = 1;
    p.quiet = 1;
    p.valid = s;
    p.text_buckets = 1024;
    p.batch = 32;
    p.hist_len = 8;
    return p;
}

cr_train_params fx_resumable_params(const cr_split *s) {
    cr_train_params p = fx_train_params("bpr", s);
    p.epochs = 2;
    p.pause_after = 1;
    return p;
}

void fx_make_files(const char *dir) {
    cr_split *s = NULL;
    fx_check(cr_split_load(&s, fx_path(dir, "split.crs")), "load split.crs");
    const cr_dataset *d = cr_split_dataset(s);
    char name[64];
    for (int k = 0; k < fx_n_models; k++) {
        cr_train_params p = fx_train_params(fx_models[k], s);
        if (!strcmp(fx_models[k], "bpr")) p = fx_resumable_params(s), p.checkpoint = fx_path(dir, "bpr.crt");
        cr_model *m = NULL;
        fx_check(cr_model_train(&m, d, cr_split_train(s), &p), fx_models[k]);
        snprintf(name, sizeof name, "%s.crm", fx_models[k]);
        fx_check(cr_model_save(m, fx_path(dir, name)), name);
        cr_model_free(m);
    }

    cr_textenc_train_params tp = cr_textenc_default_train_params();
    tp.dim = 8, tp.hashing.n_buckets = 1024, tp.epochs = 1, tp.batch = 16, tp.valid = 0, tp.threads = 1;
    cr_textenc *e = NULL;
    fx_check(cr_textenc_train(&e, d, &tp, NULL), "pretrain");
    fx_check(cr_textenc_save(e, fx_path(dir, "text.crm")), "text.crm");
    cr_textenc_free(e);

    cr_wordvec_train_params wp = cr_wordvec_default_train_params();
    wp.dim = 8, wp.hashing.n_buckets = 1024, wp.epochs = 1, wp.min_count = 1;
    cr_wordvec *wv = NULL;
    fx_check(cr_wordvec_train(&wv, d, &wp, NULL), "wordvec");
    fx_check(cr_wordvec_save(wv, fx_path(dir, "wordvec.crm")), "wordvec.crm");
    fx_check(cr_wordvec_export_vec(wv, fx_path(dir, "wordvec.vec")), "wordvec.vec");
    cr_wordvec_free(wv);

    cr_embed_params ep = cr_embed_default_params();
    ep.dim = 16, ep.threads = 1;
    float *vecs = NULL;
    int64_t dim = 0;
    fx_check(cr_embed_items(d, &ep, &vecs, &dim), "embed");
    fx_check(cr_npy_write_f32(fx_path(dir, "items.npy"), vecs, cr_dataset_inter(d)->n_items, dim), "items.npy");
    cr_free(vecs);
    cr_split_free(s);
}

/* state.c — training state files (.crt): the settings fingerprint, saving the loop's state after an epoch and
 * restoring it to resume a run exactly.
 *
 * A .crt holds (docs/FORMAT.md): metadata `fingerprint` (cr_train_fingerprint plus the loop's validation
 * subset size), `layout` (the parameter slab's tensors), `epochs_done`, `best_epoch`, `best_ndcg`,
 * `since_best`, `finished` (1 when early stopping ended the run), `seconds`, `opt.kind` (-1: none) and
 * `opt.step`; arrays `params` (after the last completed epoch), `best` (the best epoch's copy, when the run
 * validates) and `opt.m`, `opt.v` (the optimizer's moments, when it keeps them). */
#include "train_impl.h"

#include "crossrec/io.h"
#include "crossrec/split.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cr_train_fingerprint(const cr_train_params *p, char *buf, size_t cap) {
    char data[40] = "none";
    if (p->valid) {
        const cr_dataset *d = cr_split_dataset(p->valid);
        const uint8_t *roles = cr_split_roles(p->valid);
        uint32_t rc = cr_crc32c(0, roles, (size_t)cr_dataset_inter(d)->n_inter);
        snprintf(data, sizeof data, "%08x/%08x", (unsigned)cr_dataset_file_crc(d), (unsigned)rc);
    }
    snprintf(buf, cap,
             "model=%s domain=%d pop_by_domain=%d neighbors=%lld shrink=%.17g seed=%llu dim=%lld epochs=%lld patience=%d "
             "optimizer=%s lr=%.17g reg=%.17g neg_alpha=%.17g inbatch=%lld als_alpha=%.17g cg_steps=%lld source_weight=%.17g hogwild=%d "
             "pool=%s hist_len=%lld batch=%lld negatives=%lld cold_sim=%.17g id_dropout=%.17g hist_dropout=%.17g "
             "temperature=%.17g text_buckets=%lld text_per_item=%lld dann=%.17g align=%.17g item_vectors=%d user_id=%d loss=%s finetune=%s distill=%d distill_weight=%.17g data=%s",
             p->model ? p->model : "-", (int)p->domain, p->pop_by_domain, (long long)p->knn_neighbors, p->knn_shrink,
             (unsigned long long)p->seed, (long long)p->dim, (long long)p->epochs, p->patience,
             p->optimizer ? p->optimizer : "-", p->lr, p->reg, p->neg_alpha, (long long)p->inbatch, p->als_alpha, (long long)p->cg_steps,
             p->source_weight, p->hogwild, p->pool ? p->pool : "-", (long long)p->hist_len, (long long)p->batch,
             (long long)p->negatives, p->cold_sim, p->id_dropout, p->hist_dropout, p->temperature, (long long)p->text_buckets,
             (long long)p->text_per_item, p->dann, p->align,
             p->item_vectors != NULL, p->user_id, p->loss ? p->loss : "-",
             p->finetune ? p->finetune : p->init ? "all" : "-", p->distill != NULL, p->distill_weight, data);
}

/* The first word (space-separated "key=value") where a and b differ, into wa and wb; 0 when they are equal. */
static int first_difference(const char *a, const char *b, char *wa, char *wb, size_t cap) {
    while (*a || *b) {
        size_t la = strcspn(a, " "), lb = strcspn(b, " ");
        if (la != lb || memcmp(a, b, la)) {
            snprintf(wa, cap, "%.*s", (int)la, a);
            snprintf(wb, cap, "%.*s", (int)lb, b);
            if (!*wa) snprintf(wa, cap, "(nothing)");
            if (!*wb) snprintf(wb, cap, "(nothing)");
            return 1;
        }
        a += la + (a[la] == ' ');
        b += lb + (b[lb] == ' ');
    }
    return 0;
}

/* "user 1000x64@0;item 500x64@64000" */
static void layout_of(const cr_slab *s, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; s && i < s->n && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s %lldx%lld@%lld", i ? ";" : "", s->t[i].name, (long long)s->t[i].rows,
                              (long long)s->t[i].cols, (long long)s->t[i].offset);
}

cr_status cr_state_save(const char *path, const cr_loop_params *p, const cr_fit *f, const cr_slab *best,
                        const cr_loop_state *ls) {
    cr_filew *w = NULL;
    char layout[2048];
    layout_of(f->params, layout, sizeof layout);
    const cr_optimizer *o = f->opt;
    cr_status st = cr_filew_new(&w, "CRT", CR_CRT_VERSION);
    if (st) return st;
    if ((st = cr_filew_meta_str(w, "fingerprint", p->fingerprint)) || (st = cr_filew_meta_str(w, "layout", layout)) ||
        (st = cr_filew_meta_i64(w, "valid_users", p->valid_users)) ||
        (st = cr_filew_meta_i64(w, "epochs_done", ls->epochs_done)) || (st = cr_filew_meta_i64(w, "best_epoch", ls->best_epoch)) ||
        (st = cr_filew_meta_f64(w, "best_ndcg", ls->best_ndcg)) || (st = cr_filew_meta_i64(w, "since_best", ls->since_best)) ||
        (st = cr_filew_meta_i64(w, "finished", ls->finished)) || (st = cr_filew_meta_f64(w, "seconds", ls->seconds)) ||
        (st = cr_filew_meta_i64(w, "opt.kind", o ? (int64_t)o->p.kind : -1)) ||
        (st = cr_filew_meta_i64(w, "opt.step", o ? o->step : 0)))
        goto out;
    if (f->params && (st = cr_filew_array(w, "params", CR_DT_F32, f->params->data, f->params->size))) goto out;
    if (best && best->data && (st = cr_filew_array(w, "best", CR_DT_F32, best->data, best->size))) goto out;
    if (o && o->m.data && (st = cr_filew_array(w, "opt.m", CR_DT_F32, o->m.data, o->m.size))) goto out;
    if (o && o->v.data && (st = cr_filew_array(w, "opt.v", CR_DT_F32, o->v.data, o->v.size))) goto out;
    st = cr_filew_commit(w, path);
out:
    cr_filew_free(w);
    if (st) cr_errmsg_prefix("training state");
    return st;
}

/* Finds array `name` of n floats in the state file; CR_ERR_FORMAT when it is missing or of another size. */
static cr_status find(const cr_file *cf, const char *name, int64_t n, const float **out) {
    const void *src;
    int64_t count;
    cr_status st = cr_file_get_array(cf, name, CR_DT_F32, n, &src, &count);    /* its message names the file */
    *out = src;
    return st;
}

cr_status cr_state_restore(const char *path, const cr_loop_params *p, cr_fit *f, cr_slab *best, cr_loop_state *ls) {
    cr_file *cf = NULL;
    cr_status st = cr_file_open(&cf, path, "CRT", CR_CRT_VERSION);
    if (st) return st;
    const char *fp, *layout;
    int64_t valid_users, done, best_epoch, since, finished, kind, step;
    double best_ndcg, secs;
    if ((st = cr_file_get_str(cf, "fingerprint", &fp)) || (st = cr_file_get_str(cf, "layout", &layout)) ||
        (st = cr_file_get_i64(cf, "valid_users", &valid_users)) || (st = cr_file_get_i64(cf, "epochs_done", &done)) ||
        (st = cr_file_get_i64(cf, "best_epoch", &best_epoch)) || (st = cr_file_get_f64(cf, "best_ndcg", &best_ndcg)) ||
        (st = cr_file_get_i64(cf, "since_best", &since)) || (st = cr_file_get_i64(cf, "finished", &finished)) ||
        (st = cr_file_get_f64(cf, "seconds", &secs)) || (st = cr_file_get_i64(cf, "opt.kind", &kind)) ||
        (st = cr_file_get_i64(cf, "opt.step", &step)))
        goto out;
    char was[160], now[160], my_layout[2048];
    if (first_difference(fp, p->fingerprint, was, now, sizeof was)) {
        st = cr_fail(CR_ERR_ARG, "%s: that run was trained with %s, this one has %s", path, was, now);
        cr_set_hint("resume with the run's own settings: options not given are read from the state file");
        goto out;
    }
    if (valid_users != p->valid_users) {
        st = cr_fail(CR_ERR_ARG, "%s: that run validated on %lld users, this one on %lld", path, (long long)valid_users,
                     (long long)p->valid_users);
        goto out;
    }
    layout_of(f->params, my_layout, sizeof my_layout);
    if (strcmp(layout, my_layout)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: parameters laid out as '%.200s', the model has '%.200s'", path, layout, my_layout);
        goto out;
    }
    if (done < 0 || done > p->epochs || best_epoch < 0 || best_epoch > done || since < 0 || since > done ||
        (finished != 0 && finished != 1) || step < 0 || kind != (f->opt ? (int64_t)f->opt->p.kind : -1)) {
        st = cr_fail(CR_ERR_FORMAT, "%s: inconsistent training state (epochs_done %lld of %lld, best_epoch %lld, since_best %lld, "
                     "finished %lld, optimizer %lld, step %lld)", path, (long long)done, (long long)p->epochs,
                     (long long)best_epoch, (long long)since, (long long)finished, (long long)kind, (long long)step);
        goto out;
    }
    /* every array is found and checked before anything is copied */
    const float *params = NULL, *best_src = NULL, *m = NULL, *v = NULL;
    if ((f->params && (st = find(cf, "params", f->params->size, &params))) ||
        (best && best->data && done > 0 && (st = find(cf, "best", best->size, &best_src))) ||
        (f->opt && f->opt->m.data && (st = find(cf, "opt.m", f->opt->m.size, &m))) ||
        (f->opt && f->opt->v.data && (st = find(cf, "opt.v", f->opt->v.size, &v))))
        goto out;
    if (params) memcpy(f->params->data, params, (size_t)f->params->size * sizeof(float));
    if (best_src) memcpy(best->data, best_src, (size_t)best->size * sizeof(float));
    if (m) memcpy(f->opt->m.data, m, (size_t)f->opt->m.size * sizeof(float));
    if (v) memcpy(f->opt->v.data, v, (size_t)f->opt->v.size * sizeof(float));
    if (f->opt) f->opt->step = step;
    ls->epochs_done = done;
    ls->best_epoch = best_epoch;
    ls->best_ndcg = best_ndcg;
    ls->since_best = since;
    ls->finished = (int)finished;
    ls->seconds = secs;
out:
    cr_file_close(cf);
    return st;
}

/* ---- reading the settings back ---- */

static int parse_i64(const char *v, int64_t *out) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end) return -1;
    *out = x;
    return 0;
}

static int parse_f64(const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) return -1;
    *out = x;
    return 0;
}

/* Sets the field `key` of p from the text v; -1 when the key is unknown or v does not parse. */
static int set_field(cr_train_params *p, const char *key, const char *v) {
    int64_t i = 0;
    if (!strcmp(key, "model")) {
        for (const char *const *n = cr_model_names(); *n; n++)
            if (!strcmp(*n, v)) return p->model = *n, 0;
        return -1;
    }
    if (!strcmp(key, "optimizer")) {
        if (!strcmp(v, "-")) return p->optimizer = NULL, 0;     /* the model's default */
        cr_opt_kind k;
        if (cr_opt_from_name(v, &k)) return -1;
        p->optimizer = cr_opt_name(k);
        return 0;
    }
    if (!strcmp(key, "data")) return 0;
    if (!strcmp(key, "pool")) {
        static const char *const pools[] = {"mean", "attention", "transformer"};
        for (int k = 0; k < 3; k++)
            if (!strcmp(v, pools[k])) return p->pool = pools[k], 0;
        return strcmp(v, "-") ? -1 : (p->pool = NULL, 0);
    }
    if (!strcmp(key, "finetune")) {
        /* the mode; the init file itself is not needed again (the state holds the parameters) */
        static const char *const modes[] = {"all", "head", "none"};
        for (int k = 0; k < 3; k++)
            if (!strcmp(v, modes[k])) return p->finetune = modes[k], 0;
        return strcmp(v, "-") ? -1 : (p->finetune = NULL, 0);
    }
    if (!strcmp(key, "distill") || !strcmp(key, "item_vectors")) return 0;    /* paths come from the command line */
    if (!strcmp(key, "loss")) {
        static const char *const losses[] = {"softmax", "bpr"};
        for (int k = 0; k < 2; k++)
            if (!strcmp(v, losses[k])) return p->loss = losses[k], 0;
        return strcmp(v, "-") ? -1 : (p->loss = NULL, 0);
    }     /* the teacher's path comes from the command line; checked then */
    if (!strcmp(key, "distill_weight")) return parse_f64(v, &p->distill_weight);
    if (!strcmp(key, "cold_sim")) return parse_f64(v, &p->cold_sim);
    if (!strcmp(key, "id_dropout")) return parse_f64(v, &p->id_dropout);
    if (!strcmp(key, "hist_dropout")) return parse_f64(v, &p->hist_dropout);
    if (!strcmp(key, "temperature")) return parse_f64(v, &p->temperature);
    if (!strcmp(key, "dann")) return parse_f64(v, &p->dann);
    if (!strcmp(key, "align")) return parse_f64(v, &p->align);      /* checked against the split when the run resumes */
    if (!strcmp(key, "shrink")) return parse_f64(v, &p->knn_shrink);
    if (!strcmp(key, "lr")) return parse_f64(v, &p->lr);
    if (!strcmp(key, "reg")) return parse_f64(v, &p->reg);
    if (!strcmp(key, "neg_alpha")) return parse_f64(v, &p->neg_alpha);
    if (!strcmp(key, "als_alpha")) return parse_f64(v, &p->als_alpha);
    if (!strcmp(key, "source_weight")) return parse_f64(v, &p->source_weight);
    if (parse_i64(v, &i)) return -1;
    if (!strcmp(key, "domain")) return i < -1 || i > INT32_MAX ? -1 : (p->domain = (int32_t)i, 0);
    if (!strcmp(key, "pop_by_domain")) return p->pop_by_domain = i != 0, 0;
    if (!strcmp(key, "neighbors")) return p->knn_neighbors = i, 0;
    if (!strcmp(key, "seed")) return i < 0 ? -1 : (p->seed = (uint64_t)i, 0);
    if (!strcmp(key, "dim")) return p->dim = i, 0;
    if (!strcmp(key, "epochs")) return p->epochs = i, 0;
    if (!strcmp(key, "patience")) return i < 0 || i > INT32_MAX ? -1 : (p->patience = (int)i, 0);
    if (!strcmp(key, "cg_steps")) return p->cg_steps = i, 0;
    if (!strcmp(key, "inbatch")) return p->inbatch = i, 0;
    if (!strcmp(key, "hist_len")) return p->hist_len = i, 0;
    if (!strcmp(key, "negatives")) return p->negatives = i, 0;
    if (!strcmp(key, "batch")) return p->batch = i, 0;
    if (!strcmp(key, "text_buckets")) return p->text_buckets = i, 0;
    if (!strcmp(key, "text_per_item")) return p->text_per_item = i, 0;
    if (!strcmp(key, "hogwild")) return p->hogwild = i != 0, 0;
    if (!strcmp(key, "user_id")) return p->user_id = i != 0, 0;
    return -1;
}

cr_status cr_train_state_params(const char *path, cr_train_params *p) {
    cr_file *cf = NULL;
    cr_status st = cr_file_open(&cf, path, "CRT", CR_CRT_VERSION);
    if (st) return st;
    const char *fp;
    if ((st = cr_file_get_str(cf, "fingerprint", &fp))) goto out;
    for (const char *w = fp; *w;) {
        size_t len = strcspn(w, " ");
        char word[256], *eq;
        snprintf(word, sizeof word, "%.*s", (int)len, w);
        if (len >= sizeof word || !(eq = strchr(word, '=')) || (*eq = '\0', set_field(p, word, eq + 1))) {
            st = cr_fail(CR_ERR_FORMAT, "%s: training setting '%.80s' is not understood", path, word);
            goto out;
        }
        w += len + (w[len] == ' ');
    }
out:
    cr_file_close(cf);
    return st;
}

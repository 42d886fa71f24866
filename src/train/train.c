/* train.c — cr_model_train: parameter checks and dispatch to each model type's fitting routine.
 *
 * pop and itemknn fit in one pass (their code is in src/models); the factorisation models fit here, in the
 * training engine (fit_bpr.c, fit_als.c). cr_model_names() lists the trainable types in this order. */
#include "train_impl.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    cr_status (*fit)(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p);
    int in_epochs;      /* fitted in cr_train_loop: has a training state (checkpoint, resume, pause) */
} trainer;

static cr_status fit_pop(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    return cr_pop_type.train(out, d, train, p);
}

static cr_status fit_itemknn(cr_model **out, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    return cr_itemknn_type.train(out, d, train, p);
}

static const trainer trainers[] = {
    {"pop", fit_pop, 0},      {"itemknn", fit_itemknn, 0}, {"bpr", cr_fit_bpr, 1},         {"als", cr_fit_als, 1},
    {"cmf", cr_fit_cmf, 1},   {"emcdr", cr_fit_emcdr, 1},  {"ptupcdr", cr_fit_ptupcdr, 1}, {"tower", cr_fit_tower, 1},
};
static const char *const trainer_names[] = {"pop", "itemknn", "bpr", "als", "cmf", "emcdr", "ptupcdr", "tower", NULL};
#define N_TRAINERS ((int)(sizeof trainers / sizeof trainers[0]))

const char *const *cr_model_names(void) { return trainer_names; }

/* "pop, itemknn, ..." for messages. */
static const char *known_list(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_TRAINERS && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", trainers[i].name);
    return buf;
}

cr_train_params cr_train_default_params(void) {
    cr_train_params p;
    memset(&p, 0, sizeof p);
    p.model = "pop";
    p.domain = -1;
    p.pop_by_domain = 0;
    p.knn_neighbors = 100;
    p.knn_shrink = 0.0;
    p.threads = 0;
    p.seed = 42;
    p.dim = 64;
    p.epochs = 20;
    p.patience = 3;
    p.optimizer = NULL;    /* the model's default: adagrad for bpr and cmf, adam for tower */
    p.lr = 0;              /* the model's default: bpr and cmf 0.05, tower 0.002 */
    p.reg = -1;   /* the model's default: bpr 1e-4, als 0.01 */
    p.neg_alpha = 0;
    p.als_alpha = 40;
    p.cg_steps = 3;
    p.source_weight = 0.5;
    p.pool = "attention";
    p.hist_len = 50;
    p.batch = 256;
    p.negatives = 1024;
    p.cold_sim = 0.5;
    p.id_dropout = 0.5;
    p.hist_dropout = 0.8;
    p.temperature = 0.05;
    p.text_buckets = 1 << 16;
    p.text_per_item = 24;
    p.distill_weight = 0.5;
    return p;
}

cr_status cr_model_train(cr_model **m, const cr_dataset *d, const cr_interactions *train, const cr_train_params *p) {
    *m = NULL;
    char known[256];
    if (!p->model) return cr_fail(CR_ERR_ARG, "no model type given (known: %s)", known_list(known, sizeof known));
    const trainer *t = NULL;
    for (int i = 0; i < N_TRAINERS; i++)
        if (!strcmp(trainers[i].name, p->model)) t = &trainers[i];
    if (!t) return cr_fail(CR_ERR_ARG, "model type '%s' is not known (known: %s)", p->model, known_list(known, sizeof known));
    const cr_interactions *v = cr_dataset_inter(d);
    if (!train || train->n_users != v->n_users || train->n_items != v->n_items || train->n_domains != v->n_domains)
        return cr_fail(CR_ERR_ARG, "training interactions are not a view of the dataset (users, items or domains differ)");
    if (p->domain < -1 || p->domain >= v->n_domains)
        return cr_fail(CR_ERR_ARG, "training domain %d is outside -1..%lld", p->domain, (long long)v->n_domains - 1);
    if (p->knn_neighbors < 1 || p->knn_neighbors > INT32_MAX)
        return cr_fail(CR_ERR_ARG, "neighbours per item must be at least 1 (got %lld)", (long long)p->knn_neighbors);
    if (!isfinite(p->knn_shrink) || p->knn_shrink < 0)
        return cr_fail(CR_ERR_ARG, "shrink must be a finite number >= 0 (got %g)", p->knn_shrink);
    if (p->threads < 0) return cr_fail(CR_ERR_ARG, "threads must be >= 0 (got %d)", p->threads);
    if (p->dim < 1 || p->dim > 4096) return cr_fail(CR_ERR_ARG, "dimension must be 1..4096 (got %lld)", (long long)p->dim);
    if (p->epochs < 1) return cr_fail(CR_ERR_ARG, "epochs must be at least 1 (got %lld)", (long long)p->epochs);
    if (p->patience < 0) return cr_fail(CR_ERR_ARG, "patience must be >= 0 (got %d)", p->patience);
    if (!(p->lr >= 0) || !isfinite(p->lr)) return cr_fail(CR_ERR_ARG, "learning rate must be > 0, or 0 for the model's default (got %g)", p->lr);
    if (isnan(p->reg) || isinf(p->reg)) return cr_fail(CR_ERR_ARG, "regularisation must be finite (negative: the model's default)");
    if (!isfinite(p->neg_alpha)) return cr_fail(CR_ERR_ARG, "negative-sampling exponent must be finite");
    if (!(p->als_alpha >= 0) || !isfinite(p->als_alpha)) return cr_fail(CR_ERR_ARG, "ALS alpha must be >= 0 (got %g)", p->als_alpha);
    if (!(p->source_weight >= 0) || !isfinite(p->source_weight))
        return cr_fail(CR_ERR_ARG, "source weight must be a finite number >= 0 (got %g)", p->source_weight);
    if (p->cg_steps < 1) return cr_fail(CR_ERR_ARG, "conjugate-gradient steps must be at least 1");
    if (p->inbatch != 0 && (p->inbatch < 8 || p->inbatch > 65536))
        return cr_fail(CR_ERR_ARG, "in-batch size must be 8..65536, or 0 for the table sampler (got %lld)", (long long)p->inbatch);
    if (p->pause_after < 0) return cr_fail(CR_ERR_ARG, "pause after must be >= 0 (got %lld)", (long long)p->pause_after);
    if ((p->checkpoint || p->resume || p->pause_after) && !t->in_epochs)
        return cr_fail(CR_ERR_ARG, "%s is fitted in one pass, not in epochs: it has no training state to save or resume", t->name);
    if (p->hogwild && (p->checkpoint || p->resume))
        cr_log(CR_LOG_WARN, "with --hogwild, results depend on timing: a resumed run continues, but not bit for bit");
    cr_opt_kind kind;
    if (p->optimizer && cr_opt_from_name(p->optimizer, &kind))
        return cr_fail(CR_ERR_ARG, "optimizer must be sgd, adagrad or adam (got '%s')", p->optimizer);
    cr_status st = t->fit(m, d, train, p);
    if (st) return st;
    (*m)->n_users = v->n_users;
    (*m)->n_items = v->n_items;
    (*m)->n_domains = v->n_domains;
    (*m)->dataset_crc = cr_dataset_file_crc(d);
    /* where the dataset is, so that recommend and serve find ids and histories (model.h) */
    char abs_path[PATH_MAX];
    if (cr_dataset_path(d) && realpath(cr_dataset_path(d), abs_path)) {
        size_t n = strlen(abs_path);
        if (!((*m)->dataset_path = cr_malloc(n + 1))) {
            cr_model_free(*m);
            *m = NULL;
            return cr_fail(CR_ERR_NOMEM, "out of memory (dataset path)");
        }
        memcpy((*m)->dataset_path, abs_path, n + 1);
    }
    return CR_OK;
}


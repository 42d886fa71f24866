/* crossrec/train.h — the training engine: parameter slabs, optimizers, negative samplers, learning-rate
 * schedules, and the epoch loop with validation, early stopping, logging and exact resume.
 *
 * Layering: models (src/models) hold what a trained model needs to score and to be saved; fitting lives here
 * (src/train), above them, and may use evaluation (early stopping on the split's validation users).
 *
 * Parameters live in slabs (cr_slab, core.h); gradients and optimizer moments in slabs of the same layout. */
#ifndef CROSSREC_TRAIN_H
#define CROSSREC_TRAIN_H

#include "crossrec/eval.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- optimizers ------------------------------------------------------------------------------------------ */

typedef enum { CR_OPT_SGD = 0, CR_OPT_ADAGRAD, CR_OPT_ADAM } cr_opt_kind;

typedef struct {
    cr_opt_kind kind;
    float lr;               /* base learning rate */
    float beta1, beta2;     /* Adam (0.9, 0.999) */
    float eps;              /* Adagrad / Adam (1e-8 for both), > 0: keeps 0 / (0 + eps) from being NaN */
    float weight_decay;     /* L2, added to the gradient of updated entries */
} cr_opt_params;

/* lr 0.05 (sgd, adagrad) or 0.001 (adam), beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0. */
cr_opt_params cr_opt_default_params(cr_opt_kind kind);
const char *cr_opt_name(cr_opt_kind kind);                   /* "sgd", "adagrad", "adam" ("unknown") */
int cr_opt_from_name(const char *name, cr_opt_kind *kind);   /* 0 ok, -1 unknown (or NULL) */

typedef struct {
    cr_opt_params p;
    cr_slab m, v;           /* moments, layout of the parameter slab (Adagrad uses v; SGD none) */
    int64_t step;           /* global step, for Adam's bias correction */
} cr_optimizer;

/* Zeroed moment slabs in the layout of `params` (cr_slab_like), step 0. Errors: CR_ERR_ARG (unknown kind;
 * lr or weight_decay negative or not finite; eps not > 0 for adagrad/adam; a beta outside [0, 1) for adam),
 * CR_ERR_NOMEM; *o is then empty (free is a no-op). */
cr_status cr_opt_init(cr_optimizer *o, const cr_slab *params, const cr_opt_params *p);
void cr_opt_free(cr_optimizer *o);     /* NULL ok */
/* Applies the update for n consecutive parameters at slab offset `off` from their gradient g (n floats), with
 * learning rate lr (the schedule's value). With x = params[off+k], grad = g[k] + weight_decay * x:
 *   sgd:     x -= lr grad
 *   adagrad: v += grad^2;  x -= lr grad / (sqrt(v) + eps)
 *   adam:    m = b1 m + (1 - b1) grad;  v = b2 v + (1 - b2) grad^2;
 *            x -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps),  t = max(step, 1)
 * in float, bias corrections computed in double and rounded to float. Lazy for sparse rows: only these entries
 * and their moments change; Adam uses the global step for bias correction. Hogwild-safe in the sense that
 * concurrent updates of disjoint ranges are independent. off + n beyond the slab is a bug (CR_ASSERT). */
void cr_opt_update(cr_optimizer *o, cr_slab *params, int64_t off, const float *g, int64_t n, float lr);
/* Scalar reference of cr_opt_update (the test oracle); cr_opt_update gives bit-identical results. */
void cr_opt_update_ref(cr_optimizer *o, cr_slab *params, int64_t off, const float *g, int64_t n, float lr);
/* Counts one optimisation step: call once per batch, before its updates (Adam's bias correction of the
 * batch's updates uses the count including it). */
static inline void cr_opt_step(cr_optimizer *o) { o->step++; }

/* ---- learning-rate schedules ------------------------------------------------------------------------------ */

typedef enum { CR_LR_CONSTANT = 0, CR_LR_LINEAR, CR_LR_COSINE } cr_lr_kind;

typedef struct {
    cr_lr_kind kind;
    int64_t warmup;         /* steps of linear warm-up from 0 */
    int64_t total;          /* steps over which linear / cosine decay to final_ratio */
    double final_ratio;     /* lr at the end = base * final_ratio */
} cr_schedule;

/* The learning rate at optimisation step `step` (0-based; negative counts as 0). With W = warmup, T = total:
 * step < W: base * step / W (0 at step 0); then, with f = min((step - W) / T, 1) and r = final_ratio,
 * constant: base; linear: base (1 - f (1 - r)); cosine: base (r + (1 - r)(1 + cos(pi f)) / 2). T <= 0: no
 * decay. s NULL: base. */
double cr_lr_at(const cr_schedule *s, double base, int64_t step);

/* ---- negative samplers -------------------------------------------------------------------------------------- */

typedef struct {
    int64_t n;
    int32_t *items;         /* (n) the items that can be drawn */
    float *prob;            /* (n) alias table: probability of the column */
    int32_t *alias;         /* (n) alias of the column */
} cr_sampler;

/* Items of `domain` (-1: all items), ascending, weighted by (training count + 1)^alpha (count from
 * train->item_ptr): alpha 0 is uniform, 1 popularity. Walker's alias method built deterministically (Vose's
 * construction, sampler.c): O(1) per draw. Errors: CR_ERR_ARG (domain outside -1..n_domains-1, a domain with
 * no items, alpha not finite), CR_ERR_NOMEM; *s is then empty. */
cr_status cr_sampler_init(cr_sampler *s, const cr_interactions *train, int32_t domain, double alpha);
/* One item: column cr_rng_below(r, n), kept if cr_rng_uniform(r) < prob[column], else its alias. Read-only on
 * the sampler: threads may share it, each with its own cr_rng. */
int32_t cr_sampler_draw(const cr_sampler *s, cr_rng *r);
void cr_sampler_free(cr_sampler *s);     /* NULL ok */
/* In-batch negatives: the positives of a batch serve as one another's negatives. Returns the item of a row
 * other than `row`, drawn uniformly from the n rows of the batch (items: each row's positive item), so an item
 * comes up in proportion to its positives in the batch — popularity sampling without a table; -1 when n < 2.
 * The caller rejects accidental hits (items the row's user has) and redraws. */
int32_t cr_inbatch_draw(const int32_t *items, int64_t n, int64_t row, cr_rng *r);

/* ---- the epoch loop ------------------------------------------------------------------------------------------ */

typedef struct {
    int64_t epochs;         /* at most this many (default 20) */
    int patience;           /* stop after this many epochs without a better validation NDCG@10 and keep the
                               best epoch; 0: no early stopping, all epochs run and the last is kept */
    const char *log_path;   /* one TSV row per epoch */
    int quiet;              /* no settings table or epoch rows on stdout */
    cr_progress progress;   /* epochs done of `epochs`, at the start of each; a takedown (-1) before each row */
    int64_t valid_users;    /* validate on an evenly spaced fixed subset of at most this many validation users
                               (default 2000; 0: all) — full ranking of every validation user each epoch
                               would cost more than the epoch on large data */
    const char *checkpoint; /* write the training state (.crt) here after every epoch (NULL: none) */
    const char *resume;     /* start from the training state in this .crt (NULL: from epoch 0) */
    int64_t pause_after;    /* return after this many epochs of this call (0: no limit); the run can resume */
    char fingerprint[1024];  /* the settings that decide the result; a resumed run must have the same */
} cr_loop_params;

cr_loop_params cr_loop_default_params(void);   /* epochs 20, patience 3, no log, not quiet, 2000 validation users */
/* The defaults with epochs, patience, log path, quiet, checkpoint, resume and pause_after taken from training
 * settings, and the fingerprint written from them (cr_train_fingerprint). */
cr_loop_params cr_loop_params_of(const cr_train_params *p);
/* Writes the settings of p that decide a training result, as "key=value" words ("model=bpr dim=64 ... seed=42
 * data=..."; data: the CRCs of p->valid's dataset file and of its train/held-out roles, "none" without a split),
 * into buf. Threads, log, quiet and checkpoint paths are left out: they do not change the result (hogwild
 * aside, which is in). */
void cr_train_fingerprint(const cr_train_params *p, char *buf, size_t cap);
/* Reads the settings of the run whose state is in the .crt at path back into *p (fields of the fingerprint;
 * the others are left as they are), so a resumed run needs no options repeated. Errors: those of
 * cr_file_open, CR_ERR_FORMAT (a fingerprint that does not parse). */
cr_status cr_train_state_params(const char *path, cr_train_params *p);

/* What a fitting routine gives the loop. */
typedef struct cr_fit cr_fit;
struct cr_fit {
    /* One pass over the training data (epoch: 0-based index); returns the mean loss. */
    cr_status (*epoch)(cr_fit *f, int64_t epoch, double *loss);
    /* The model as it is now (borrowed; valid until the next epoch), for validation; NULL when bringing it up
     * to date ran out of memory, after setting a CR_ERR_NOMEM message (the loop returns CR_ERR_NOMEM). */
    const cr_model *(*model)(cr_fit *f);
    /* Parameters to keep from the best epoch (the model reads them): copied after an improving epoch and
     * restored at the end. NULL: keep the last epoch. */
    cr_slab *params;
    /* The optimizer updating params (its moments and step go into the training state), or NULL (als). */
    cr_optimizer *opt;
};

typedef struct {
    int64_t epochs_run, best_epoch;
    double best_ndcg;       /* validation NDCG@10 of the kept parameters (NaN without validation users) */
    double seconds;
} cr_loop_report;

/* Training state (.crt, DESIGN §7): what an interrupted run needs to continue exactly as if it had not been
 * stopped — the parameters after the last completed epoch, the best epoch's copy, the optimizer's moments and
 * step, the epoch count, the best NDCG and the epochs since it, and the fingerprint of the settings. Random
 * numbers need no state: every epoch draws from streams named by its index. Written atomically after each
 * epoch (io.h), so a crash leaves the previous epoch's state or this one. */
#define CR_CRT_VERSION 1

/* Runs epochs; after each, when valid_split (may be NULL) has validation users, evaluates NDCG@10 on them
 * (CR_PART_VALID only: the test part is never scored). With patience > 0 (early stopping) keeps the
 * parameters of the first epoch with the strictly best NDCG (copied back into f->params at the end) and stops
 * after `patience` epochs without improvement or after p->epochs. With patience 0 runs p->epochs epochs and
 * keeps the last (best_ndcg is then the last epoch's NDCG); without validation users too (best_ndcg NaN). Unless quiet, prints to stdout the `settings` line (when not NULL), a
 * header and one row per epoch: epoch (1-based), loss (%.5f), validation NDCG@10 (%.4f, "-" without
 * validation), seconds of the epoch (training + validation); p->progress hears of each epoch as it starts.
 * With log_path, writes the same columns as TSV (header `epoch loss valid_ndcg@10 seconds`; loss and NDCG
 * %.6f, "nan" without validation), created/truncated at the start and flushed after each row.
 * With p->resume, first restores the state of that .crt (CR_ERR_ARG when its fingerprint differs from
 * p->fingerprint, naming the first differing setting; CR_ERR_FORMAT when its arrays do not fit f) and goes on
 * from its epoch; the log is then appended to. With p->checkpoint, writes the state after every epoch. With
 * p->pause_after, returns after that many epochs of this call, the kept parameters being the best so far.
 * Errors: CR_ERR_ARG (epochs < 1, patience < 0, no epoch callback, validation without model callback),
 * CR_ERR_IO naming the log path, CR_ERR_NOMEM (the best-epoch copy, allocated before the first epoch), and
 * errors of the callbacks and of cr_evaluate as they are. The report is filled on every path (epochs_run:
 * epochs completed). */
cr_status cr_train_loop(cr_fit *f, const cr_split *valid_split, const cr_loop_params *p, const char *settings,
                        cr_loop_report *report);

#ifdef __cplusplus
}
#endif
#endif

/* loop.c — the epoch loop shared by the iterative models: epochs, validation NDCG@10 on the split's
 * validation users, best-epoch parameters, early stopping, the per-epoch table and its TSV log.
 *
 * The loop knows a model only through cr_fit: one epoch() call per epoch, model() for validation, and the
 * parameter slab to keep from the best epoch. Only CR_PART_VALID is ever evaluated here: the test part stays
 * unseen until the final evaluation, so early stopping cannot leak test information into the model.
 *
 * Invariants: the best-epoch copy (a slab like f->params) is allocated before the first epoch, so the loop
 * cannot fail for memory half-way; it and the log file are released on every path. */
#include "train_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

cr_loop_params cr_loop_default_params(void) {
    cr_loop_params p;
    memset(&p, 0, sizeof p);
    p.epochs = 20;
    p.patience = 3;
    p.log_path = NULL;
    p.quiet = 0;
    p.valid_users = 2000;
    return p;
}

cr_loop_params cr_loop_params_of(const cr_train_params *tp) {
    cr_loop_params p = cr_loop_default_params();
    p.epochs = tp->epochs;
    p.patience = tp->patience;
    p.log_path = tp->log_path;
    p.quiet = tp->quiet;
    p.progress = tp->progress;
    p.checkpoint = tp->checkpoint;
    p.resume = tp->resume;
    p.pause_after = tp->pause_after;
    cr_train_fingerprint(tp, p.fingerprint, sizeof p.fingerprint);
    return p;
}

/* Validation NDCG@10 of the model as it is now. */
static cr_status validate(cr_fit *f, const cr_split *s, int64_t max_users, double *ndcg) {
    cr_eval_params ep = cr_eval_default_params();
    ep.part = CR_PART_VALID;
    ep.max_users = max_users;
    ep.ks[0] = 10;
    ep.n_k = 1;
    const cr_model *m = f->model(f);
    if (!m) return CR_ERR_NOMEM;    /* the callback's message says what could not be allocated */
    cr_eval_result *r = NULL;
    cr_status st = cr_evaluate(s, m, &ep, &r);
    if (st != CR_OK) return st;
    *ndcg = r->mean.ndcg[0];
    cr_eval_result_free(r);
    return CR_OK;
}

static cr_status log_fail(const char *path) { return cr_fail(CR_ERR_IO, "%s: cannot write the training log: %s", path, strerror(errno)); }

cr_status cr_train_loop(cr_fit *f, const cr_split *valid_split, const cr_loop_params *p, const char *settings,
                        cr_loop_report *report) {
    memset(report, 0, sizeof *report);
    report->best_ndcg = NAN;
    if (!f || !f->epoch) return cr_fail(CR_ERR_ARG, "training loop: no epoch function");
    if (p->epochs < 1) return cr_fail(CR_ERR_ARG, "epochs must be at least 1 (got %lld)", (long long)p->epochs);
    if (p->patience < 0) return cr_fail(CR_ERR_ARG, "patience must be >= 0 (got %d)", p->patience);
    if (p->pause_after < 0) return cr_fail(CR_ERR_ARG, "pause after must be >= 0 (got %lld)", (long long)p->pause_after);
    const cr_ground_truth *vt = valid_split ? cr_split_truth(valid_split, CR_PART_VALID) : NULL;
    const int has_valid = vt && vt->n_users > 0;
    if (has_valid && !f->model) return cr_fail(CR_ERR_ARG, "training loop: validation needs the model() callback");

    cr_status st = CR_OK;
    FILE *log = NULL;
    cr_slab best;
    memset(&best, 0, sizeof best);
    const double t0 = cr_now();
    cr_loop_state ls = {.best_ndcg = NAN};

    /* early stopping keeps the best epoch; without it (patience 0) the run is a fixed number of epochs and
     * keeps the last, as other trainers do, and needs no copy of the parameters */
    const int keep_best = has_valid && p->patience > 0;
    if (keep_best && f->params && (st = cr_slab_like(&best, f->params)) != CR_OK) {
        cr_errmsg_prefix("best-epoch parameters");
        return st;
    }
    if (p->resume && (st = cr_state_restore(p->resume, p, f, &best, &ls)) != CR_OK) goto out;
    report->epochs_run = ls.epochs_done;
    report->best_epoch = ls.best_epoch;
    if (p->log_path) {
        /* a resumed run appends its rows to the log of the run so far */
        if (!(log = fopen(p->log_path, ls.epochs_done > 0 ? "a" : "w"))) {
            st = cr_fail(CR_ERR_IO, "%s: cannot create the training log: %s", p->log_path, strerror(errno));
            goto out;
        }
        if (fseek(log, 0, SEEK_END) == 0 && ftell(log) == 0 && (fprintf(log, "epoch\tloss\tvalid_ndcg@10\tseconds\ttrain_seconds\n") < 0 || fflush(log))) {
            st = log_fail(p->log_path);
            goto out;
        }
    }
    if (!p->quiet) {
        if (settings) printf("%s\n", settings);
        if (p->resume)
            printf("resuming from %s after epoch %lld%s\n", p->resume, (long long)ls.epochs_done,
                   ls.finished ? " (the run had stopped early)" : "");
        printf("%6s  %10s  %13s  %8s\n", "epoch", "loss", "valid_ndcg@10", "seconds");
        fflush(stdout);
    }

    int64_t ran = 0;    /* epochs of this call */
    for (int64_t e = ls.epochs_done; e < p->epochs && !ls.finished; e++) {
        if (p->pause_after > 0 && ran >= p->pause_after) break;
        const double te = cr_now();
        cr_progress_report(&p->progress, e, p->epochs);
        double loss = NAN, ndcg = NAN;
        if ((st = f->epoch(f, e, &loss)) != CR_OK) goto out;
        const double train_secs = cr_now() - te;
        if (has_valid && (st = validate(f, valid_split, p->valid_users, &ndcg)) != CR_OK) goto out;
        const double secs = cr_now() - te;
        ran++;
        ls.epochs_done = report->epochs_run = e + 1;

        if (!keep_best) {
            ls.best_epoch = e + 1;      /* the last epoch is kept */
            ls.best_ndcg = ndcg;
        } else if (ls.best_epoch == 0 || ndcg > ls.best_ndcg) {
            /* strictly better only: an equal NDCG keeps the earlier (less trained) parameters */
            ls.best_ndcg = ndcg;
            ls.best_epoch = e + 1;
            ls.since_best = 0;
            if (f->params) memcpy(best.data, f->params->data, (size_t)f->params->size * sizeof(float));
        } else {
            ls.since_best++;
        }
        report->best_epoch = ls.best_epoch;
        ls.finished = keep_best && ls.since_best >= p->patience;

        char nbuf[32];
        if (has_valid) snprintf(nbuf, sizeof nbuf, "%.4f", ndcg);
        else snprintf(nbuf, sizeof nbuf, "-");
        if (!p->quiet) {
            cr_progress_report(&p->progress, -1, 0);     /* the row goes where a progress line may stand */
            printf("%6lld  %10.5f  %13s  %8.2f\n", (long long)e + 1, loss, nbuf, secs);
            fflush(stdout);
        }
        if (log) {
            /* the log is for machines: more digits than the table, and "nan" (which readers parse) for no
             * validation */
            if (has_valid) snprintf(nbuf, sizeof nbuf, "%.6f", ndcg);
            else snprintf(nbuf, sizeof nbuf, "nan");
            if (fprintf(log, "%lld\t%.6f\t%s\t%.3f\t%.3f\n", (long long)e + 1, loss, nbuf, secs, train_secs) < 0 || fflush(log)) {
                st = log_fail(p->log_path);
                goto out;
            }
        }
        ls.seconds += secs;
        if (p->checkpoint && (st = cr_state_save(p->checkpoint, p, f, &best, &ls)) != CR_OK) goto out;
    }
    if (has_valid) report->best_ndcg = ls.best_ndcg;
    if (keep_best) {
        /* the model reads its parameters from the slab: restoring it restores the best epoch's model */
        if (f->params && ls.best_epoch > 0) memcpy(f->params->data, best.data, (size_t)f->params->size * sizeof(float));
    }

out:
    if (log && fclose(log) && st == CR_OK) st = log_fail(p->log_path);
    cr_slab_free(&best);
    report->seconds = cr_now() - t0;
    return st;
}

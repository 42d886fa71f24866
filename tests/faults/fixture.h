/* fixture.h — the small world the fault campaigns (tests/faults) work on: a synthetic two-domain dataset with
 * item text, written as TSV, imported, split (cold-user), and one file of every kind crossrec writes. Each
 * function exits the program with a message on error (a campaign cannot go on without its fixture). */
#ifndef CROSSREC_FAULTS_FIXTURE_H
#define CROSSREC_FAULTS_FIXTURE_H

#include "crossrec/model.h"

#include <stddef.h>

#define FX_TARGET "music"      /* the cold-user split's target domain */

/* The model types trained for the campaigns, in registry order. */
extern const char *const fx_models[];
extern const int fx_n_models;

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), named after the campaign. */
const char *fx_tmpdir(const char *campaign);
/* Removes a directory and its files (one level). */
void fx_rmdir(const char *dir);
/* dir/name in a rotating static buffer (valid for the next 8 calls). */
const char *fx_path(const char *dir, const char *name);
/* Exits with "what: status: message" when st is not CR_OK. */
void fx_check(cr_status st, const char *what);

/* dir/interactions.tsv and dir/items.tsv (title and text), then dir/data.crd and dir/split.crs. */
void fx_make_data(const char *dir);
/* Settings for a short run of `model` validated on split s: 1 epoch, dim 8, one thread, quiet; the tower with
 * a small text table and batch. */
cr_train_params fx_train_params(const char *model, const struct cr_split *s);
/* bpr for 2 epochs, paused after the first: dir/bpr.crt holds the state a run with these settings (and
 * p.resume) continues from. */
cr_train_params fx_resumable_params(const struct cr_split *s);
/* dir/MODEL.crm for each of fx_models, dir/text.crm (pretrain), dir/wordvec.crm and dir/wordvec.vec,
 * dir/items.npy (hash-tfidf item vectors) and dir/bpr.crt (fx_resumable_params). Needs
 * fx_make_data first. */
void fx_make_files(const char *dir);

#endif

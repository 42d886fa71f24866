/* cdr_fixtures.h — fixtures shared by the model tests (emcdr, ptupcdr, bpr, als, eval): synthetic
 * datasets that go through a .crd file, cold-user splits, a know-nothing ranking baseline, evaluation at two
 * cutoffs, the loss column of a training log, and the Amazon cold-user split. Each fails the current test on
 * error. */
#ifndef CROSSREC_CDR_FIXTURES_H
#define CROSSREC_CDR_FIXTURES_H

#include "crossrec/eval.h"
#include "crossrec/train.h"

/* Writes a synthetic dataset under tmpdir/name, imports it and reloads it from a .crd file (splits record a
 * dataset file). */
cr_dataset *cr_test_cdr_data(const char *name, int64_t users, int64_t items, int64_t inter, int domains, uint64_t seed);
/* The domain with the fewest events (at most 8 domains): the natural target of a transfer test. */
int32_t cr_test_thinnest_domain(const cr_dataset *d);
/* A cold-user split on `target` with test/validation share beta. */
cr_split *cr_test_cold_split(const cr_dataset *d, int32_t target, double beta);
/* A model of d's counts that scores every pair by a hash of (user, item): the random baseline. */
cr_model cr_test_random_model(const cr_dataset *d);
/* cr_evaluate at cutoffs k0 and k1. */
cr_eval_result *cr_test_evaluate_at(const cr_split *s, const cr_model *m, int k0, int k1);
/* The upstream cold-user partition of ../shared/data/amazon-art-office (users.tsv) on `target`: imports the data,
 * saves it to tmpdir/crd_name, reloads it and makes the split. Skips the current test when the shared data is
 * absent. */
void cr_test_amazon_cold_split(const char *target, const char *crd_name, cr_dataset **d, cr_split **s);
/* The loss column of a training log (at most cap rows); returns the row count. */
int cr_test_log_losses(const char *path, double *loss, int cap);

#endif

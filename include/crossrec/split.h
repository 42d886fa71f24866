/* crossrec/split.h — evaluation splits (.crs): which events train, which are held out, for whom, and against
 * which candidates. Computed once with a seed, saved, and shared by every model (DESIGN §4).
 *
 * A split refers to one dataset file (path and CRC32C, checked on load). It gives every event of the
 * dataset's user CSR a role. Held-out events become ground truth: per evaluated user, the set of distinct
 * items of its VALID (or TEST) events. Training models see only TRAIN events, through cr_split_train().
 *
 * Protocols:
 *  - cold-user, target T: among users with events in T and in another domain ("overlapping"), a share beta
 *    (or the users named valid/test in a users file) are held out: all their T events become ground truth,
 *    their other-domain events stay in training. Candidates: the items of T.
 *  - warm: per user, the last event by time is test and the one before valid (by time), or each event is
 *    train/valid/test with probability 0.8/0.1/0.1 (random, seeded; at least one train event kept).
 *    Optional target T: only T events are held out and candidates are T's items; else all items.
 *    Training events of a held-out (user, item) pair are hidden too, so no positive leaks into training;
 *    a valid event of a pair that is also test is hidden (test wins: valid and test truths are disjoint).
 *  - new-domain, target T: every T event leaves training (or all but the K earliest of each item: few-shot);
 *    the users with held-out T events are evaluated (a share valid_share of them for validation). A held-out
 *    repeat of a pair that keeps a few-shot training event is hidden. Candidates: the items of T.
 * Sampled view (--sampled N): for each held-out (user, item) pair, N negatives drawn once from the candidates,
 * never an item the user has any event with.
 *
 * A split is read-only once made or loaded: any number of threads may read it at once. docs/EVAL.md describes
 * the protocols for users. */
#ifndef CROSSREC_SPLIT_H
#define CROSSREC_SPLIT_H

#include "crossrec/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CR_PROTO_COLD_USER = 1, CR_PROTO_WARM, CR_PROTO_NEW_DOMAIN } cr_protocol;
typedef enum { CR_ROLE_TRAIN = 0, CR_ROLE_VALID = 1, CR_ROLE_TEST = 2, CR_ROLE_HIDDEN = 3 } cr_role;
typedef enum { CR_PART_VALID = 1, CR_PART_TEST = 2 } cr_part;

typedef struct {
    cr_protocol protocol;
    const char *target;         /* domain name; required for cold-user and new-domain, optional for warm */
    double beta;                /* cold-user: share of overlapping users held out (default 0.2) */
    const char *users_file;     /* cold-user: TSV `user split` (train/valid/test) instead of beta */
    double valid_share;         /* share of held-out users used for validation (default 0.1) */
    int warm_random;            /* warm: random 80/10/10 instead of leave-last-out by time */
    int64_t few_shot;           /* new-domain: keep this many earliest events per target item (default 0) */
    int64_t sampled;            /* negatives per held-out pair for the sampled view (0 = none) */
    uint64_t seed;              /* default 42 */
} cr_split_params;

cr_split_params cr_split_default_params(void);
/* NULL if the parameters are consistent, else a message naming the bad one. */
const char *cr_split_check_params(const cr_split_params *p);

typedef struct cr_split cr_split;

/* Protocol names as used on the command line and in .crs files: "cold-user", "warm", "new-domain". */
const char *cr_protocol_name(cr_protocol p);
/* 0 and *p set when `name` is one of the names above, else -1. */
int cr_protocol_from_name(const char *name, cr_protocol *p);

/* Computes a split of a dataset loaded from a .crd file (the split records its absolute path, its basename
 * and its CRC). The dataset must outlive the split; the split does not own it. Same dataset, parameters and
 * seed give the same roles, sampled negatives and .crs bytes. Fails with CR_ERR_ARG (parameters, a dataset
 * not loaded from a file, unknown target, no eligible users, nothing held out for test), CR_ERR_PARSE,
 * CR_ERR_NOTFOUND (a missing column) or CR_ERR_IO (users file), CR_ERR_NOMEM; with a message. */
cr_status cr_split_make(cr_split **s, const cr_dataset *d, const cr_split_params *p);
/* Writes a .crs atomically (roles, sampled negatives, parameters, dataset reference). */
cr_status cr_split_save(const cr_split *s, const char *path);
/* Loads a .crs and the dataset it refers to: the recorded absolute path, else a file of the recorded
 * basename in the split file's folder (so a folder holding both can be moved). Checks the dataset CRC
 * (CR_ERR_FORMAT "s.crs: made from a different dataset ..."), every role and every sampled negative. The
 * split owns the dataset it loaded. */
cr_status cr_split_load(cr_split **s, const char *path);
void cr_split_free(cr_split *s);

const cr_dataset *cr_split_dataset(const cr_split *s);
/* The parameters; target and users_file (its basename only, NULL if none) point into the split. */
const cr_split_params *cr_split_params_of(const cr_split *s);
int32_t cr_split_target(const cr_split *s);    /* target domain index, -1 for none (warm over all items) */
const uint8_t *cr_split_roles(const cr_split *s);   /* (n_inter) cr_role of each event of the user CSR */

/* Candidate items of the split (the target domain's items, or all items), ascending. */
const int32_t *cr_split_candidates(const cr_split *s, int64_t *n);

/* The training interactions: the dataset's CSR restricted to TRAIN events (same users, items, order; no
 * timestamps: user_times is NULL). */
const cr_interactions *cr_split_train(const cr_split *s);

/* Evaluated users of a part, ascending user index, and each one's ground truth: the distinct items of its
 * held-out events of that part, ascending. */
typedef struct {
    int64_t n_users;
    const int32_t *users;       /* (n_users) */
    const int64_t *gt_ptr;      /* (n_users + 1) */
    const int32_t *gt_items;    /* (gt_ptr[n_users]) */
} cr_ground_truth;
const cr_ground_truth *cr_split_truth(const cr_split *s, cr_part part);

/* Sampled view: for ground-truth pair j of the part (in gt_items order), negatives [j*n_neg, (j+1)*n_neg).
 * NULL and *n_neg = 0 when the split has no sampled view. A negative of -1 pads when the candidates ran out. */
const int32_t *cr_split_sampled(const cr_split *s, cr_part part, int64_t *n_neg);

/* Counts that describe a split, for summaries (derived at make/load time). */
typedef struct {
    int64_t n_train, n_valid, n_test, n_hidden;     /* events per role */
    int64_t n_candidates;
    int64_t eligible_users;         /* cold-user: users with events in the target and in another domain */
    int64_t held_valid_users;       /* users the protocol assigned to validation / test (cold-user with a users */
    int64_t held_test_users;        /*   file: as listed there, whether or not they have target events) */
    int64_t valid_no_truth;         /* of those, users without any held-out event: no ground truth, not */
    int64_t test_no_truth;          /*   evaluated (cold-user: users with no target event) */
    int64_t valid_pairs, test_pairs;   /* ground-truth (user, item) pairs */
} cr_split_stats;
const cr_split_stats *cr_split_stats_of(const cr_split *s);

/* Writes DIR/train.tsv, valid.tsv, test.tsv (header `user item`, external ids, one line per TRAIN / VALID /
 * TEST event; HIDDEN events nowhere), creating DIR. Each file is written as NAME.tmp and renamed when all
 * three are complete. CR_ERR_ARG when an id holds a tab or line break (it cannot be written as TSV). */
cr_status cr_split_export(const cr_split *s, const char *dir);

#define CR_CRS_VERSION 1

#ifdef __cplusplus
}
#endif
#endif

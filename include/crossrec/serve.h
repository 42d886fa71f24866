/* crossrec/serve.h — answering with a trained model (DESIGN §9): recommendations for known users and for ad-hoc
 * histories, similar items, and the HTTP server with its web page.
 *
 * A recommender (cr_rec) pairs a model with the dataset it was trained on, which gives the ids, titles, domains
 * and the histories of known users. A model whose score is a dot product of a user vector and item vectors
 * (bpr, als, cmf, emcdr, ptupcdr, tower) answers through an exact top-K index over its item matrix, built once
 * (index.h); the others (pop, itemknn) score the domain's items with cr_model_score and keep a top-K heap. Both
 * paths rank by score descending, equal scores by item index ascending, and give the same items; the index
 * path's scores are index.h's reference dot products, the other path's the model's own (they differ in the
 * last bits at most).
 *
 * A recommender is read-only once made: any number of threads may query it at once.
 *
 * The server (cr_server) answers JSON over HTTP (libmicrohttpd) from a recommender it can swap for a new one
 * while serving (reload): requests that started on the old one finish on it, and the old one is freed when
 * the last of them ends. docs/SERVE.md describes the endpoints. */
#ifndef CROSSREC_SERVE_H
#define CROSSREC_SERVE_H

#include "crossrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- recommender --------------------------------------------------------------------------------------- */

typedef struct cr_rec cr_rec;

typedef struct {
    const char *data_path;      /* the dataset (.crd); NULL: the one the model recorded at training time (its
                                   absolute path, else a file of its name next to the model file) */
    int use_index;              /* 1 (default): dot-product models answer through the top-K index; 0: every model
                                   through cr_model_score and a heap (the reference path) */
} cr_rec_params;

cr_rec_params cr_rec_default_params(void);

/* Loads a model and its dataset and prepares them (per-domain item lists, the indexes). Errors: those of
 * cr_model_load and cr_dataset_load; CR_ERR_FORMAT when the dataset's checksum differs from the one the model
 * recorded ("m.crm was trained on another dataset ..."); CR_ERR_ARG when the model records no dataset and
 * data_path is NULL (hint: --data); CR_ERR_NOMEM. *r is NULL on failure. */
cr_status cr_rec_open(cr_rec **r, const char *model_path, const cr_rec_params *p);
/* The same from a model and a dataset in memory, which the recommender takes over (it frees both, on failure
 * too). CR_ERR_ARG when their counts differ, CR_ERR_FORMAT when the model's recorded checksum is not d's. */
cr_status cr_rec_new(cr_rec **r, cr_model *m, cr_dataset *d, const cr_rec_params *p);
void cr_rec_free(cr_rec *r);

const cr_model *cr_rec_model(const cr_rec *r);
const cr_dataset *cr_rec_dataset(const cr_rec *r);
/* Whether recommendations come from the top-K index (else from cr_model_score). */
int cr_rec_uses_index(const cr_rec *r);
/* How cr_rec_similar ranks: "cosine" (item vectors), "neighbors" (item-kNN lists), or NULL (it cannot). */
const char *cr_rec_similar_method(const cr_rec *r);
/* Items of domain t, ascending index; *n their number. */
const int32_t *cr_rec_domain_items(const cr_rec *r, int32_t t, int64_t *n);

/* Who to recommend for. */
typedef struct {
    int32_t user;               /* a dataset user: its history is its events in the dataset, every domain, in time
                                   order; -1: the history below (a new user, no retraining) */
    const int32_t *history;     /* user -1: n_history item indices, oldest first */
    int64_t n_history;
} cr_rec_query;

typedef struct {
    int32_t domain;             /* recommend items of this domain, 0..n_domains-1 */
    int64_t k;                  /* 1..CR_INDEX_MAX_K (default 10) */
    int exclude_seen;           /* leave out the items of the query's history (default 0) */
    int threads;                /* OpenMP threads for batches, 0: the default (results do not depend on it) */
} cr_rec_options;

cr_rec_options cr_rec_default_options(void);

/* Top-k items of o->domain for each of n queries: items and scores (n, k) row-major, best first, and n_found
 * (n): how many were found (fewer than k when the domain has fewer items left), or -1 when the model cannot
 * represent that query's user (cr_model_score's can = 0: a bpr model and a user with no training events in
 * its domain, item-kNN and a history without neighbours); slots past n_found get item -1 and score NAN.
 * Errors: CR_ERR_ARG naming the first bad query or option (user or history item out of range, domain, k),
 * CR_ERR_NOMEM. */
cr_status cr_rec_recommend(const cr_rec *r, const cr_rec_query *q, int64_t n, const cr_rec_options *o, int32_t *items,
                           float *scores, int64_t *n_found);

/* Items most similar to `item` among the items of `domain` (-1: every domain), the item itself left out:
 * cosine of the model's item vectors (items without a vector, all zeros, are never listed), or for item-kNN its
 * neighbour list. items and scores (k), *n_found as cr_rec_recommend. Errors: CR_ERR_ARG (bad item, domain
 * or k; a model with neither vectors nor neighbour lists: pop), CR_ERR_NOTFOUND when the item has no vector in
 * this model (an emcdr item outside its target domain). */
cr_status cr_rec_similar(const cr_rec *r, int32_t item, int32_t domain, int64_t k, int32_t *items, float *scores,
                         int64_t *n_found);

/* ---- HTTP server --------------------------------------------------------------------------------------- */

typedef struct cr_server cr_server;

typedef struct {
    const char *bind;           /* IPv4 address to listen on (default "127.0.0.1") */
    int port;                   /* 0: any free port (cr_server_port tells which); default 8080 */
    int threads;                /* request threads (default 2) */
    int timeout_s;              /* a connection idle this long is closed, and one whose request has not arrived
                                   whole this long after it opened (or after its previous answer): slow clients,
                                   slowloris (default 10) */
    int max_connections;        /* open connections at most (default 4096; also bounded by the open-file limit);
                                   more wait in the listen queue until one closes */
    int64_t max_body;           /* largest request body, bytes (default 1 MiB); larger ones get 413 */
    const char *data_path;      /* the dataset, as cr_rec_params.data_path (reloads keep it unless told) */
    int quiet;                  /* no log line per reload */
} cr_server_params;

cr_server_params cr_server_default_params(void);

/* Opens model_path (cr_rec_open) and starts serving in background threads. Errors: those of cr_rec_open;
 * CR_ERR_ARG for bad parameters; CR_ERR_IO when the address cannot be bound ("127.0.0.1:8080: cannot listen:
 * ..."). *s is NULL on failure. */
cr_status cr_server_start(cr_server **s, const char *model_path, const cr_server_params *p);
int cr_server_port(const cr_server *s);
/* Opens a model (NULL: the current one's path again) with its dataset (NULL: the server's data_path) and swaps
 * it in; what POST /v1/reload and SIGHUP do. On failure the current model stays. Thread-safe; reloads run one
 * at a time. */
cr_status cr_server_reload(cr_server *s, const char *model_path, const char *data_path);
/* Stops accepting connections, lets requests in progress finish (up to a few seconds), stops the threads and
 * frees everything. NULL is a no-op. */
void cr_server_stop(cr_server *s);

#ifdef __cplusplus
}
#endif
#endif

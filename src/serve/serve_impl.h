/* serve_impl.h — private to src/serve (and the tests and fuzz target that drive it): the JSON API behind the
 * HTTP server, independent of the transport.
 *
 * cr_api holds the current recommender behind a reference count, the request metrics and the page. A request
 * goes through two calls: cr_api_route, from the request line and headers alone (so that the transport can
 * refuse it before reading a body), then cr_api_handle with the body. Every answer is a cr_api_response: a
 * status, a content type and a body; errors are JSON {"error": "...", "status": N}. Both calls are thread-safe. */
#ifndef CROSSREC_SERVE_IMPL_H
#define CROSSREC_SERVE_IMPL_H

#include "crossrec/serve.h"

#include <stddef.h>

typedef enum {
    CR_EP_PAGE = 0,             /* GET /            the web page */
    CR_EP_HEALTHZ,              /* GET /healthz */
    CR_EP_MODEL,                /* GET /v1/model     metadata of the current model */
    CR_EP_RECOMMEND,            /* POST /v1/recommend */
    CR_EP_SIMILAR,              /* POST /v1/similar */
    CR_EP_RELOAD,               /* POST /v1/reload */
    CR_EP_METRICS,              /* GET /metrics      Prometheus text */
    CR_EP_OTHER,                /* anything else: 404 */
    CR_EP_COUNT_
} cr_endpoint;

typedef struct cr_api cr_api;

typedef struct {
    int status;                 /* HTTP status; 0 from cr_api_route: go on and read the body */
    const char *content_type;
    char *body;                 /* cr_malloc'ed when owned, else static */
    size_t len;
    int owned;
    const char *allow;          /* 405: the methods the endpoint takes, for the Allow header */
} cr_api_response;

/* Takes over r (freed with the API, or on failure). model_path and data_path (may be NULL) are what a reload
 * without arguments opens again. max_body: largest request body in bytes. CR_ERR_NOMEM. */
cr_status cr_api_new(cr_api **a, cr_rec *r, const char *model_path, const char *data_path, int64_t max_body, int quiet);
/* Frees the API and its recommender; no request may be in progress. */
void cr_api_free(cr_api *a);
int64_t cr_api_max_body(const cr_api *a);

/* The endpoint of a request, from its method, path (a query string is ignored), Content-Type header (NULL:
 * none) and declared body length (-1: none). rs->status stays 0 when the request may go on to cr_api_handle;
 * else rs holds the refusal: 404 unknown path, 405 wrong method (rs->allow set), 415 a POST that is not
 * application/json, 413 a declared body over max_body. */
cr_endpoint cr_api_route(cr_api *a, const char *method, const char *url, const char *content_type, int64_t content_length,
                         cr_api_response *rs);
/* Answers a routed request with its body (len bytes, need not be NUL-terminated; NULL when len is 0). */
void cr_api_handle(cr_api *a, cr_endpoint ep, const char *body, size_t len, cr_api_response *rs);
/* Fills rs with the JSON error {"error": message, "status": status}. */
void cr_api_error(cr_api_response *rs, int status, const char *fmt, ...) CR_PRINTF(3, 4);
/* Counts an answered request in the metrics: its endpoint, status and time from its head to its answer. */
void cr_api_record(cr_api *a, cr_endpoint ep, int status, double seconds);
/* route + handle + record, for callers that hold the whole request (tests, the fuzz target). */
void cr_api_request(cr_api *a, const char *method, const char *url, const char *content_type, const char *body, size_t len,
                    cr_api_response *rs);
void cr_api_response_free(cr_api_response *rs);

/* Opens a model (NULL: the current path) with a dataset (NULL: the current data path) and swaps it in; requests
 * running on the old recommender finish on it, and the last one frees it. One reload at a time. */
cr_status cr_api_reload(cr_api *a, const char *model_path, const char *data_path);

/* The web page (page.c): HTML with its script, NUL-terminated. */
extern const char cr_serve_page[];

#endif

/* server.c — the HTTP transport of `crossrec serve` (serve.h) over libmicrohttpd: a pool of worker threads,
 * each polling its share of the connections (epoll where available). A request is routed from its head by
 * cr_api_route, so that a wrong path, method, content type or declared size is refused before any body is read;
 * its body is gathered up to the API's limit (a longer one is drained and refused with 413); then cr_api_handle
 * answers it.
 *
 * Slow clients: libmicrohttpd closes a connection idle for timeout_s seconds, but a client that sends one byte
 * every few seconds is never idle that long (slowloris). So every connection is also tracked from its opening
 * (MHD's connection notifications): a request must arrive whole within timeout_s of the connection's opening or
 * of its previous answer, else the deadline thread shuts the socket down, and libmicrohttpd, reading its end,
 * closes the connection. Connections are limited to max_connections (and to what the open-file limit allows);
 * those over the limit wait in the listen queue (libmicrohttpd stops accepting) until one closes.
 *
 * Main type: cr_server. Invariants: `active` counts requests between their head and their completion, so that
 * stopping can wait for them after the listening socket is closed; a tracked connection is in `conns` from its
 * STARTED notification to its CLOSED one, which libmicrohttpd sends before it closes the socket, so the
 * deadline thread (holding conn_lock) never shuts down a descriptor that another connection reuses. */
#include "serve_impl.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STOP_WAIT_S 5.0     /* how long stopping waits for requests in progress */
#define DEADLINE_CHECK_S 0.25   /* how often the deadline thread looks at the connections */
#define RESERVED_FDS 64     /* descriptors kept for what is not a connection (model files, logs, epoll) */

/* One open connection (MHD's socket context), in the server's list. */
typedef struct tracked {
    struct tracked *prev, *next;
    int fd;
    double since;               /* when it opened, or when its last answer completed */
    int receiving;              /* 1 while a request is due (the deadline runs); 0 while one is answered */
    int cut;                    /* shut down by the deadline thread */
} tracked;

struct cr_server {
    struct MHD_Daemon *daemon;
    cr_api *api;
    int port;
    int timeout_s;
    atomic_int active;
    pthread_mutex_t conn_lock;  /* guards conns and each tracked's fields, and stopping */
    pthread_cond_t wake;        /* the deadline thread's timed wait; signalled to stop it */
    tracked conns;              /* list head (circular) */
    int stopping;
    pthread_t deadline_thread;
    int deadline_started;
};

/* One request in progress (MHD's per-request pointer). */
typedef struct {
    cr_endpoint ep;
    double t0;
    char *body;                 /* (cap) the body so far, len bytes */
    int64_t len, cap;
    int too_big;
} request;

cr_server_params cr_server_default_params(void) {
    return (cr_server_params){.bind = "127.0.0.1", .port = 8080, .threads = 2, .timeout_s = 10, .max_connections = 4096,
                              .max_body = 1 << 20, .data_path = NULL, .quiet = 0};
}

/* libmicrohttpd's messages: the last one of the thread is kept for errors at start; all go to the debug log. */
static _Thread_local char mhd_message[256];

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    vsnprintf(mhd_message, sizeof mhd_message, fmt, ap);
    size_t n = strlen(mhd_message);
    while (n && mhd_message[n - 1] == '\n') mhd_message[--n] = '\0';
    cr_log(CR_LOG_DEBUG, "http: %s", mhd_message);
}

static enum MHD_Result answer(cr_server *s, struct MHD_Connection *c, request *rq, cr_api_response *rs) {
    struct MHD_Response *resp = rs->owned ? MHD_create_response_from_buffer_with_free_callback(rs->len, rs->body, cr_free)
                                          : MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        cr_api_response_free(rs);
        return MHD_NO;
    }
    /* the response owns the body now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rs->allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rs->allow);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rs->status, resp);
    MHD_destroy_response(resp);
    cr_api_record(s->api, rq->ep, rs->status, cr_now() - rq->t0);
    return ok;
}

/* ---- connections and their deadline ------------------------------------------------------------------- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    cr_server *s = cls;
    tracked *t = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* untracked (no memory, no descriptor): only the idle timeout applies to it */
        if (!info || !(t = cr_calloc(1, sizeof *t))) return;
        t->fd = info->connect_fd;
        t->since = cr_now();
        t->receiving = 1;
        pthread_mutex_lock(&s->conn_lock);
        t->next = s->conns.next, t->prev = &s->conns;
        t->next->prev = t, s->conns.next = t;
        pthread_mutex_unlock(&s->conn_lock);
        *socket_context = t;
    } else if (t) {
        pthread_mutex_lock(&s->conn_lock);
        t->prev->next = t->next, t->next->prev = t->prev;
        pthread_mutex_unlock(&s->conn_lock);
        cr_free(t);
        *socket_context = NULL;
    }
}

/* receiving 0: the request has arrived whole (it is being answered); 1: its answer is done, the next is due. */
static void set_receiving(cr_server *s, struct MHD_Connection *c, int receiving) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    tracked *t = info ? info->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&s->conn_lock);
    t->receiving = receiving;
    t->since = cr_now();
    pthread_mutex_unlock(&s->conn_lock);
}

/* Shuts down the connections whose request is overdue, every DEADLINE_CHECK_S, until the server stops. */
static void *deadline_main(void *arg) {
    cr_server *s = arg;
    pthread_mutex_lock(&s->conn_lock);
    while (!s->stopping) {
        double now = cr_now();
        for (tracked *t = s->conns.next; t != &s->conns; t = t->next)
            if (t->receiving && !t->cut && now - t->since > s->timeout_s) {
                shutdown(t->fd, SHUT_RDWR);
                t->cut = 1;
            }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(DEADLINE_CHECK_S * 1e9);
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&s->wake, &s->conn_lock, &until);
    }
    pthread_mutex_unlock(&s->conn_lock);
    return NULL;
}

/* ---- requests ------------------------------------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state) {
    cr_server *s = cls;
    request *rq = *state;
    cr_api_response rs;
    if (!rq) {
        /* the head: route it, and refuse what can be refused before the body */
        if (!(rq = cr_calloc(1, sizeof *rq))) return MHD_NO;
        *state = rq;
        atomic_fetch_add(&s->active, 1);
        rq->t0 = cr_now();
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t declared = length ? strtoll(length, NULL, 10) : -1;
        rq->ep = cr_api_route(s->api, method, url, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                              declared, &rs);
        if (!rs.status) return MHD_YES;
        set_receiving(s, c, 0);
        return answer(s, c, rq, &rs);
    }
    if (*upload_size) {
        int64_t n = (int64_t)*upload_size;
        *upload_size = 0;
        if (rq->too_big || rq->len + n > cr_api_max_body(s->api)) {
            /* a chunked body over the limit: drained, then refused */
            rq->too_big = 1;
            return MHD_YES;
        }
        if (cr_grow((void **)&rq->body, &rq->cap, rq->len + n, 1)) return MHD_NO;
        memcpy(rq->body + rq->len, upload, (size_t)n);
        rq->len += n;
        return MHD_YES;
    }
    set_receiving(s, c, 0);
    if (rq->too_big) cr_api_error(&rs, 413, "request body over the limit of %lld bytes", (long long)cr_api_max_body(s->api));
    else cr_api_handle(s->api, rq->ep, rq->body, (size_t)rq->len, &rs);
    return answer(s, c, rq, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why) {
    cr_server *s = cls;
    request *rq = *state;
    if (!rq) return;
    cr_free(rq->body);
    cr_free(rq);
    *state = NULL;
    set_receiving(s, c, 1);
    atomic_fetch_sub(&s->active, 1);
}

/* The connection limit: max_connections, less when the open-file limit would not allow as many. */
static unsigned connection_limit(int max_connections) {
    struct rlimit rl;
    int64_t limit = max_connections;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY && (int64_t)rl.rlim_cur - RESERVED_FDS < limit)
        limit = (int64_t)rl.rlim_cur - RESERVED_FDS;
    return limit < 1 ? 1 : (unsigned)limit;
}

static void server_free(cr_server *s) {
    if (s->deadline_started) {
        pthread_mutex_lock(&s->conn_lock);
        s->stopping = 1;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->conn_lock);
        pthread_join(s->deadline_thread, NULL);
    }
    if (s->daemon) MHD_stop_daemon(s->daemon);     /* the CLOSED notifications empty the list */
    cr_api_free(s->api);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->conn_lock);
    cr_free(s);
}

cr_status cr_server_start(cr_server **out, const char *model_path, const cr_server_params *p) {
    *out = NULL;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    if (!p->bind || inet_pton(AF_INET, p->bind, &addr.sin_addr) != 1)
        return cr_fail(CR_ERR_ARG, "bind address '%s' is not an IPv4 address (like 127.0.0.1 or 0.0.0.0)", p->bind ? p->bind : "");
    if (p->port < 0 || p->port > 65535) return cr_fail(CR_ERR_ARG, "port %d is outside 0..65535", p->port);
    if (p->threads < 1 || p->threads > 1024) return cr_fail(CR_ERR_ARG, "threads must be 1..1024 (got %d)", p->threads);
    if (p->timeout_s < 1 || p->timeout_s > 86400) return cr_fail(CR_ERR_ARG, "timeout must be 1..86400 s (got %d)", p->timeout_s);
    if (p->max_connections < 1 || p->max_connections > 1000000)
        return cr_fail(CR_ERR_ARG, "max connections must be 1..1000000 (got %d)", p->max_connections);
    if (p->max_body < 1 || p->max_body > ((int64_t)1 << 30))
        return cr_fail(CR_ERR_ARG, "body limit must be 1 B..1 GiB (got %lld)", (long long)p->max_body);
    addr.sin_port = htons((uint16_t)p->port);

    cr_rec_params rp = cr_rec_default_params();
    rp.data_path = p->data_path;
    cr_rec *r;
    cr_status st = cr_rec_open(&r, model_path, &rp);
    if (st) return st;
    cr_server *s = cr_calloc(1, sizeof *s);
    if (!s) {
        cr_rec_free(r);
        return cr_fail(CR_ERR_NOMEM, "out of memory (server)");
    }
    atomic_init(&s->active, 0);
    s->timeout_s = p->timeout_s;
    s->conns.next = s->conns.prev = &s->conns;
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if ((st = cr_api_new(&s->api, r, model_path, p->data_path, p->max_body, p->quiet))) {
        server_free(s);
        return st;
    }
    mhd_message[0] = '\0';
    /* the logger first: libmicrohttpd reads the options in order, and warns about the later ones through it */
    s->daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, (uint16_t)p->port, NULL, NULL,
                                 on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)p->threads,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                                 connection_limit(p->max_connections), MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    if (!s->daemon) {
        st = cr_fail(CR_ERR_IO, "%s:%d: cannot listen%s%s", p->bind, p->port, mhd_message[0] ? ": " : "", mhd_message);
        cr_set_hint("is another server on that port? --port 0 takes any free one");
        server_free(s);
        return st;
    }
    if (pthread_create(&s->deadline_thread, NULL, deadline_main, s)) {
        server_free(s);
        return cr_fail(CR_ERR_NOMEM, "cannot start the server's deadline thread");
    }
    s->deadline_started = 1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : p->port;
    *out = s;
    return CR_OK;
}

int cr_server_port(const cr_server *s) { return s->port; }

cr_status cr_server_reload(cr_server *s, const char *model_path, const char *data_path) {
    return cr_api_reload(s->api, model_path, data_path);
}

void cr_server_stop(cr_server *s) {
    if (!s) return;
    /* no new connections; requests in progress get STOP_WAIT_S to finish */
    MHD_socket listener = MHD_quiesce_daemon(s->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    double t0 = cr_now();
    while (atomic_load(&s->active) > 0 && cr_now() - t0 < STOP_WAIT_S) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    server_free(s);
}

/* cmd_serve.c — `crossrec serve`: the HTTP server (serve.h) until SIGINT or SIGTERM; SIGHUP reloads the model. The
 * signals are blocked before the server's threads start (they inherit the mask) and taken here with sigwait. The
 * open-file limit is raised to what --max-connections needs (a login shell's soft limit, often 1024, would
 * refuse connections well before). */
#include "cli.h"
#include "crossrec/serve.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static const cli_cmd_info info = {
    "serve",
    "serve model.crm [--port 8080] [--bind 127.0.0.1] [--threads N] [--data data.crd] [--timeout S] [--max-connections N]\n"
    "      [--max-body B]",
    "Answers JSON over HTTP: GET /healthz, GET /v1/model, POST /v1/recommend, POST /v1/similar, POST /v1/reload,\n"
    "GET /metrics, and a page at / to try the model in a browser (docs/SERVE.md). Listens on 127.0.0.1 unless\n"
    "--bind says otherwise; --port 0 takes any free port (printed). POST /v1/reload or SIGHUP loads the model file\n"
    "again (or another) and swaps it in while serving. SIGINT or SIGTERM stops after the requests in progress.",
};

/* The soft limit on open files up to what max_connections needs (the hard limit at most); the server takes as
 * many connections as the limit allows. */
static void raise_open_file_limit(int max_connections) {
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + 128;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int cmd_serve(int argc, char **argv) {
    cr_server_params p = cr_server_default_params();
    int64_t port = p.port, threads = p.threads, timeout = p.timeout_s, max_connections = p.max_connections, max_body = p.max_body;
    const cli_opt opts[] = {
        {"port", 0, CLI_INT, &port, NULL, 0, "N", "TCP port (0: any free one)"},
        {"bind", 0, CLI_STR, &p.bind, NULL, 0, "ADDR", "IPv4 address to listen on (0.0.0.0: every interface)"},
        {"threads", 0, CLI_INT, &threads, NULL, 0, "N", "request threads"},
        {"data", 0, CLI_STR, &p.data_path, NULL, 0, "FILE", "the dataset (.crd) the model was trained on, if not where it was"},
        {"timeout", 0, CLI_INT, &timeout, NULL, 0, "S", "close connections idle this many seconds, or whose request has not arrived whole by then"},
        {"max-connections", 0, CLI_INT, &max_connections, NULL, 0, "N", "open connections at most (more wait until one closes)"},
        {"max-body", 0, CLI_INT, &max_body, NULL, 0, "BYTES", "largest request body"},
        {"quiet", 'q', CLI_FLAG, &p.quiet, NULL, 0, NULL, "no start, reload and stop lines"},
        {0},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse(&info, opts, argc, argv, pos, 1, &n_pos);
    if (rc) return rc < 0 ? 0 : rc;
    if (n_pos != 1) return cli_usage_error(&info, "give one model file (.crm)");
    if (port < 0 || port > 65535) return cli_usage_error(&info, "--port must be 0..65535");
    if (threads < 1 || threads > 1024) return cli_usage_error(&info, "--threads must be 1..1024");
    if (timeout < 1 || timeout > 86400) return cli_usage_error(&info, "--timeout must be 1..86400 seconds");
    if (max_connections < 1 || max_connections > 1000000) return cli_usage_error(&info, "--max-connections must be 1..1000000");
    if (max_body < 1 || max_body > ((int64_t)1 << 30)) return cli_usage_error(&info, "--max-body must be 1..1073741824 bytes");
    p.port = (int)port, p.threads = (int)threads, p.timeout_s = (int)timeout, p.max_connections = (int)max_connections;
    p.max_body = max_body;
    raise_open_file_limit(p.max_connections);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    cr_server *s;
    cr_status st = cr_server_start(&s, pos[0], &p);
    if (st) return cli_fail(st);
    /* the address line is the one scripts wait for (with --port 0 it is the only place the port is told) */
    printf("crossrec: serving %s on http://%s:%d/ with %d threads\n", pos[0], p.bind, cr_server_port(s), p.threads);
    fflush(stdout);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig)) continue;
        if (sig != SIGHUP) break;
        if ((st = cr_server_reload(s, NULL, NULL)))
            fprintf(stderr, "crossrec: reload failed, the previous model stays: %s\n", cr_errmsg());
    }
    if (!p.quiet) fprintf(stderr, "crossrec: stopping\n");
    cr_server_stop(s);
    return 0;
}

/* test_serve.c — the HTTP server (serve.h) through a real client: the test starts a server on a free port and
 * drives every endpoint with curl, checks the answers against the recommender called directly, sends every
 * class of bad request (each must get its 4xx with a JSON error), holds a slow connection open until the
 * server drops it, and reloads models while requests are running. */
#include "test.h"

#include "cdr_fixtures.h"

#include "crossrec/serve.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Runs curl against the server: `extra` options (may be ""), then method, Content-Type (NULL: none) and the
 * body (NULL: none; sent from a file, so any bytes go). Returns the HTTP status; *reply gets the body. */
static int http(const cr_server *s, const char *extra, const char *method, const char *path, const char *type, const char *body,
                char **reply) {
    char cmd[4096], req[512], out[512];
    snprintf(req, sizeof req, "%s", body ? cr_test_write("http-request.body", body, -1) : "");
    snprintf(out, sizeof out, "%s", cr_test_path("http-reply.body"));
    remove(out);
    snprintf(cmd, sizeof cmd, "curl -s -o '%s' -w '%%{http_code}' --max-time 20 %s %s%s %s%s%s %s%s%s 'http://127.0.0.1:%d%s'", out,
             extra, method ? "-X " : "", method ? method : "", type ? "-H 'Content-Type: " : "", type ? type : "", type ? "'" : "",
             body ? "--data-binary '@" : "", body ? req : "", body ? "'" : "", cr_server_port(s), path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    int status = 0;
    if (fscanf(p, "%d", &status) != 1) status = -1;
    pclose(p);
    char *text = cr_test_read(out, NULL);
    if (reply) *reply = text ? text : strdup("");
    else free(text);
    return status;
}

static int post(const cr_server *s, const char *path, const char *body, char **reply) {
    return http(s, "", "POST", path, "application/json", body, reply);
}

/* The reply is a JSON error {"error": "...", "status": status} whose message contains `want`. */
static void check_error(int got, int want_status, char **replyp, const char *want) {
    char *reply = *replyp;      /* read here: the caller's argument list filled it */
    CHECK_MSG(got == want_status, "status %d, want %d: %s", got, want_status, reply);
    json_error_t err;
    json_t *j = json_loads(reply, 0, &err);
    CHECK_MSG(j != NULL, "not JSON: %s", reply);
    CHECK(json_is_string(json_object_get(j, "error")));
    CHECK_EQ(json_integer_value(json_object_get(j, "status")), want_status);
    CHECK_CONTAINS(json_string_value(json_object_get(j, "error")), want);
    json_decref(j);
    free(reply);
}

/* The item ids of a reply's "items". */
static int reply_items(const char *reply, char ids[][32], int cap) {
    json_t *j = json_loads(reply, 0, NULL);
    CHECK_MSG(j != NULL, "not JSON: %s", reply);
    json_t *items = json_object_get(j, "items");
    int n = 0;
    for (size_t x = 0; x < json_array_size(items) && n < cap; x++)
        snprintf(ids[n++], 32, "%s", json_string_value(json_object_get(json_array_get(items, x), "item")));
    json_decref(j);
    return n;
}

/* tmpdir/serve: a dataset, a cold-user split, bpr and itemknn models; returns the dataset. */
static cr_dataset *serve_fixture(void) {
    if (system("command -v curl >/dev/null 2>&1")) cr_test_skip("curl is not installed");
    cr_dataset *d = cr_test_cdr_data("serve", 150, 90, 3000, 3, 12);
    cr_split *s = cr_test_cold_split(d, 1, 0.3);
    const char *names[2] = {"bpr", "itemknn"};
    for (int k = 0; k < 2; k++) {
        cr_train_params p = cr_train_default_params();
        p.model = names[k];
        p.dim = 8, p.epochs = 2, p.patience = 0, p.quiet = 1;
        cr_model *m = NULL;
        CHECK_OK(cr_model_train(&m, d, cr_split_train(s), &p));
        CHECK_OK(cr_model_save(m, cr_test_path(k ? "serve/knn.crm" : "serve/bpr.crm")));
        cr_model_free(m);
    }
    cr_split_free(s);
    return d;
}

static cr_server *start(const char *model, int timeout_s) {
    cr_server_params p = cr_server_default_params();
    p.port = 0;
    p.timeout_s = timeout_s;
    p.quiet = 1;
    cr_server *s = NULL;
    CHECK_OK(cr_server_start(&s, cr_test_path(model), &p));
    CHECK(cr_server_port(s) > 0);
    return s;
}

TEST(serve_endpoints) {
    cr_dataset *d = serve_fixture();
    cr_server *s = start("serve/bpr.crm", 10);
    char *reply;
    /* the page: HTML with its script, nothing fetched from elsewhere */
    CHECK_EQ(http(s, "", NULL, "/", NULL, NULL, &reply), 200);
    CHECK_CONTAINS(reply, "<title>crossrec</title>");
    CHECK_CONTAINS(reply, "/v1/recommend");
    CHECK(!strstr(reply, "src=\"http") && !strstr(reply, "href=\"http") && !strstr(reply, "url(http"));
    free(reply);
    CHECK_EQ(http(s, "", NULL, "/healthz", NULL, NULL, &reply), 200);
    CHECK_STR(reply, "{\"status\":\"ok\",\"model\":\"bpr\",\"generation\":1}");
    free(reply);
    CHECK_EQ(http(s, "-I", NULL, "/healthz", NULL, NULL, NULL), 200);
    CHECK_EQ(http(s, "", NULL, "/v1/model", NULL, NULL, &reply), 200);
    CHECK_CONTAINS(reply, "\"model\":\"bpr\"");
    CHECK_CONTAINS(reply, "\"users\":150,\"items\":90");
    CHECK_CONTAINS(reply, "\"ranking\":\"index\",\"similar\":\"cosine\"");
    CHECK_CONTAINS(reply, "\"domains\":[{\"name\":\"");
    CHECK_CONTAINS(reply, "\"example_users\":[\"u");
    free(reply);

    /* recommend and similar answer what the recommender says */
    cr_rec_params rp = cr_rec_default_params();
    cr_rec *r = NULL;
    CHECK_OK(cr_rec_open(&r, cr_test_path("serve/bpr.crm"), &rp));
    const char *user = cr_dataset_user_id(d, 3), *domain = cr_dataset_domain_name(d, 0);
    char body[512], ids[16][32];
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\", \"k\": 6, \"exclude_seen\": true}", user, domain);
    CHECK_EQ(post(s, "/v1/recommend", body, &reply), 200);
    cr_rec_query q = {.user = 3};
    cr_rec_options o = cr_rec_default_options();
    o.domain = 0, o.k = 6, o.exclude_seen = 1;
    int32_t items[6];
    float scores[6];
    int64_t n;
    CHECK_OK(cr_rec_recommend(r, &q, 1, &o, items, scores, &n));
    CHECK_EQ(reply_items(reply, ids, 16), n);
    for (int64_t x = 0; x < n; x++) CHECK_STR(ids[x], cr_dataset_item_id(d, items[x]));
    free(reply);
    snprintf(body, sizeof body, "{\"history\": [\"%s\", \"%s\"], \"domain\": \"%s\", \"k\": 3, \"with_history\": true}",
             cr_dataset_item_id(d, 1), cr_dataset_item_id(d, 2), domain);
    CHECK_EQ(post(s, "/v1/recommend", body, &reply), 422);     /* bpr cannot fold a history in */
    free(reply);
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\", \"with_history\": true}", user, domain);
    CHECK_EQ(post(s, "/v1/recommend", body, &reply), 200);
    CHECK_EQ(reply_items(reply, ids, 16), 10);
    CHECK_CONTAINS(reply, "\"history\":[{\"item\":\"");
    free(reply);
    snprintf(body, sizeof body, "{\"item\": \"%s\", \"domain\": \"%s\", \"k\": 4}", cr_dataset_item_id(d, 5), cr_dataset_domain_name(d, 2));
    CHECK_EQ(post(s, "/v1/similar", body, &reply), 200);
    CHECK_OK(cr_rec_similar(r, 5, 2, 4, items, scores, &n));
    CHECK_EQ(reply_items(reply, ids, 16), n);
    for (int64_t x = 0; x < n; x++) CHECK_STR(ids[x], cr_dataset_item_id(d, items[x]));
    CHECK_CONTAINS(reply, "\"method\":\"cosine\"");
    free(reply);
    cr_rec_free(r);

    /* metrics count what was answered */
    CHECK_EQ(http(s, "", NULL, "/metrics", NULL, NULL, &reply), 200);
    CHECK_CONTAINS(reply, "crossrec_requests_total{endpoint=\"recommend\",code=\"200\"} 2\n");
    CHECK_CONTAINS(reply, "crossrec_requests_total{endpoint=\"recommend\",code=\"422\"} 1\n");
    CHECK_CONTAINS(reply, "crossrec_requests_total{endpoint=\"similar\",code=\"200\"} 1\n");
    CHECK_CONTAINS(reply, "crossrec_request_duration_seconds_count{endpoint=\"recommend\"} 3\n");
    CHECK_CONTAINS(reply, "crossrec_request_duration_seconds_bucket{endpoint=\"recommend\",le=\"+Inf\"} 3\n");
    CHECK_CONTAINS(reply, "crossrec_model_generation 1\n");
    free(reply);
    cr_server_stop(s);
    cr_dataset_free(d);
}

TEST(serve_bad_requests) {
    cr_dataset *d = serve_fixture();
    cr_server *s = start("serve/bpr.crm", 10);
    const char *user = cr_dataset_user_id(d, 3), *domain = cr_dataset_domain_name(d, 0);
    char body[512], *reply;
    check_error(post(s, "/v1/recommend", "{\"user\": ", &reply), 400, &reply, "invalid JSON");
    check_error(post(s, "/v1/recommend", "[1, 2]", &reply), 400, &reply, "must be a JSON object");
    check_error(post(s, "/v1/recommend", "", &reply), 400, &reply, "invalid JSON");
    check_error(post(s, "/v1/recommend", "{\"user\": \"x\", \"user\": \"y\", \"domain\": \"a\"}", &reply), 400, &reply, "invalid JSON");
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\", \"kk\": 3}", user, domain);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "unknown field 'kk'");
    snprintf(body, sizeof body, "{\"user\": \"nobody\", \"domain\": \"%s\"}", domain);
    check_error(post(s, "/v1/recommend", body, &reply), 404, &reply, "unknown user 'nobody'");
    snprintf(body, sizeof body, "{\"history\": [\"nothing\"], \"domain\": \"%s\"}", domain);
    check_error(post(s, "/v1/recommend", body, &reply), 404, &reply, "unknown item 'nothing'");
    snprintf(body, sizeof body, "{\"history\": [1, 2], \"domain\": \"%s\"}", domain);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "array of item ids");
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"jazz\"}", user);
    check_error(post(s, "/v1/recommend", body, &reply), 404, &reply, "unknown domain 'jazz'");
    snprintf(body, sizeof body, "{\"user\": \"%s\"}", user);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "give 'domain'");
    snprintf(body, sizeof body, "{\"domain\": \"%s\"}", domain);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "give either 'user'");
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"history\": [], \"domain\": \"%s\"}", user, domain);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "give either 'user'");
    const char *bad_k[] = {"0", "-3", "1001", "\"10\"", "2.5", "true"};
    for (int k = 0; k < 6; k++) {
        snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\", \"k\": %s}", user, domain, bad_k[k]);
        check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "'k' must be an integer in 1..1000");
    }
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\", \"exclude_seen\": 1}", user, domain);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "'exclude_seen' must be true or false");
    snprintf(body, sizeof body, "{\"user\": 3, \"domain\": \"%s\"}", domain);
    check_error(post(s, "/v1/recommend", body, &reply), 400, &reply, "'user' must be a string");
    check_error(post(s, "/v1/similar", "{\"item\": \"nothing\"}", &reply), 404, &reply, "unknown item 'nothing'");
    check_error(post(s, "/v1/similar", "{\"k\": 3}", &reply), 400, &reply, "give 'item'");
    snprintf(body, sizeof body, "{\"item\": \"%s\", \"k\": 0}", cr_dataset_item_id(d, 0));
    check_error(post(s, "/v1/similar", body, &reply), 400, &reply, "'k' must be an integer");
    /* invalid UTF-8 in the body is invalid JSON */
    check_error(post(s, "/v1/recommend", "{\"user\": \"\xff\"}", &reply), 400, &reply, "invalid JSON");

    /* wrong method, path, content type */
    check_error(http(s, "", "GET", "/v1/recommend", NULL, NULL, &reply), 405, &reply, "/v1/recommend takes POST, not GET");
    char extra[600];
    snprintf(extra, sizeof extra, "-D '%s'", cr_test_path("http-reply.headers"));
    CHECK_EQ(http(s, extra, "PUT", "/healthz", NULL, NULL, NULL), 405);
    reply = cr_test_read(cr_test_path("http-reply.headers"), NULL);
    CHECK_CONTAINS(reply, "Allow: GET, HEAD\r\n");
    free(reply);
    check_error(http(s, "", "DELETE", "/v1/model", NULL, NULL, &reply), 405, &reply, "/v1/model takes GET");
    check_error(http(s, "", NULL, "/v2/recommend", NULL, NULL, &reply), 404, &reply, "no endpoint /v2/recommend");
    check_error(http(s, "", "POST", "/v1/recommend", "text/plain", "{}", &reply), 415, &reply, "send Content-Type: application/json");
    check_error(http(s, "", "POST", "/v1/similar", NULL, NULL, &reply), 415, &reply, "got none");
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\"}", user, domain);
    CHECK_EQ(http(s, "", "POST", "/v1/recommend", "Application/JSON; charset=utf-8", body, NULL), 200);

    /* bodies over 1 MiB: refused from the declared length, or after draining a chunked one */
    size_t big = (1u << 20) + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{', huge[big - 1] = '}', huge[big] = '\0';
    check_error(post(s, "/v1/recommend", huge, &reply), 413, &reply, "over the limit of 1048576");
    check_error(http(s, "-H 'Transfer-Encoding: chunked'", "POST", "/v1/recommend", "application/json", huge, &reply), 413, &reply,
                "over the limit of 1048576");
    free(huge);

    /* after all that, the server still answers */
    CHECK_EQ(post(s, "/v1/recommend", body, NULL), 200);
    CHECK_EQ(http(s, "", NULL, "/metrics", NULL, NULL, &reply), 200);
    CHECK_CONTAINS(reply, "crossrec_requests_total{endpoint=\"recommend\",code=\"413\"} 2\n");
    CHECK_CONTAINS(reply, "crossrec_requests_total{endpoint=\"other\",code=\"404\"} 1\n");
    free(reply);
    cr_server_stop(s);
    cr_dataset_free(d);
}

/* A client that sends half a request and waits is cut off after the idle timeout. */
TEST(serve_slow_client_times_out) {
    cr_dataset *d = serve_fixture();
    cr_server *s = start("serve/bpr.crm", 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cr_server_port(s))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    const char *part = "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"us";
    CHECK_EQ(send(fd, part, strlen(part), 0), (long)strlen(part));
    double t0 = cr_now();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[256];
    long got = -1;
    if (poll(&pfd, 1, 6000) == 1) got = recv(fd, buf, sizeof buf, 0);
    double waited = cr_now() - t0;
    close(fd);
    CHECK_MSG(got == 0, "recv returned %ld: the connection was not closed", got);
    CHECK_MSG(waited > 0.5 && waited < 5, "closed after %.2f s (timeout 1 s)", waited);
    cr_server_stop(s);
    cr_dataset_free(d);
}

static int connect_to(const cr_server *s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cr_server_port(s))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

/* Slowloris: a client that sends its request one byte every 0.3 s is never idle for the 1 s timeout, but its
 * request has not arrived whole 1 s after it connected, so the server cuts it off (it used to keep it forever). */
TEST(serve_trickling_client_is_cut_off) {
    cr_dataset *d = serve_fixture();
    cr_server *s = start("serve/bpr.crm", 1);
    int fd = connect_to(s);
    const char *req = "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n";
    double t0 = cr_now(), closed_at = -1;
    for (size_t at = 0; at < strlen(req) && closed_at < 0 && cr_now() - t0 < 8; at++) {
        send(fd, req + at, 1, MSG_NOSIGNAL);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        char buf[256];
        if (poll(&pfd, 1, 300) == 1 && recv(fd, buf, sizeof buf, 0) <= 0) closed_at = cr_now() - t0;
    }
    close(fd);
    CHECK_MSG(closed_at > 0.8 && closed_at < 3, "closed after %.2f s (timeout 1 s; -1: not closed)", closed_at);
    /* a request in time on a connection that waited most of the timeout is answered */
    fd = connect_to(s);
    usleep(600 * 1000);
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(send(fd, get, strlen(get), 0), (long)strlen(get));
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[256] = "";
    CHECK_EQ(poll(&pfd, 1, 5000), 1);
    CHECK(recv(fd, buf, sizeof buf - 1, 0) > 0);
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    close(fd);
    cr_server_stop(s);
    cr_dataset_free(d);
}

/* Over max_connections a connection waits until one closes; out-of-range limits are refused. */
TEST(serve_connection_limit) {
    cr_dataset *d = serve_fixture();
    cr_server_params p = cr_server_default_params();
    p.port = 0, p.threads = 1, p.max_connections = 1, p.quiet = 1;
    cr_server *s = NULL;
    CHECK_OK(cr_server_start(&s, cr_test_path("serve/bpr.crm"), &p));
    int first = connect_to(s), second = connect_to(s);
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[256] = "";
    CHECK_EQ(send(second, get, strlen(get), 0), (long)strlen(get));
    struct pollfd pfd = {.fd = second, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 500), 0);        /* not accepted while the first is open */
    close(first);
    CHECK_EQ(poll(&pfd, 1, 5000), 1);
    CHECK(recv(second, buf, sizeof buf - 1, 0) > 0);
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    close(second);
    cr_server_stop(s);
    cr_server *t = NULL;
    p.max_connections = 0;
    CHECK_STATUS(cr_server_start(&t, cr_test_path("serve/bpr.crm"), &p), CR_ERR_ARG);
    CHECK_CONTAINS(cr_errmsg(), "max connections must be 1..1000000");
    cr_dataset_free(d);
}

/* Reloads (through the endpoint) swap bpr and itemknn while four clients keep asking: every request succeeds,
 * a failed reload keeps the current model, and the old models are freed (the harness checks for leaks). */
TEST(serve_reload_during_requests) {
    cr_dataset *d = serve_fixture();
    cr_server *s = start("serve/bpr.crm", 10);
    char body[512], *reply, cmd[4096], done[512], codes[512];
    snprintf(body, sizeof body, "{\"user\": \"%s\", \"domain\": \"%s\", \"k\": 5}", cr_dataset_user_id(d, 3), cr_dataset_domain_name(d, 0));
    CHECK_EQ(post(s, "/v1/recommend", body, NULL), 200);
    snprintf(done, sizeof done, "%s", cr_test_path("load.done"));
    snprintf(codes, sizeof codes, "%s", cr_test_path("load.codes"));
    snprintf(cmd, sizeof cmd,
             "(seq 1 240 | xargs -P 4 -I{} curl -s -o /dev/null -w '%%{http_code}\\n' --max-time 20 -X POST "
             "-H 'Content-Type: application/json' --data-binary '@%s' 'http://127.0.0.1:%d/v1/recommend' > '%s'; touch '%s') &",
             cr_test_write("load.json", body, -1), cr_server_port(s), codes, done);
    CHECK_EQ(system(cmd), 0);
    int reloads = 0;
    for (int k = 0; k < 8; k++) {
        char req[600];
        snprintf(req, sizeof req, "{\"model\": \"%s\"}", cr_test_path(k % 2 ? "serve/bpr.crm" : "serve/knn.crm"));
        CHECK_EQ(post(s, "/v1/reload", req, &reply), 200);
        reloads++;
        CHECK_CONTAINS(reply, k % 2 ? "\"model\":\"bpr\"" : "\"model\":\"itemknn\"");
        free(reply);
    }
    check_error(post(s, "/v1/reload", "{\"model\": \"/nonexistent/m.crm\"}", &reply), 422, &reply, "/nonexistent/m.crm");
    check_error(post(s, "/v1/reload", "{\"modell\": \"x\"}", &reply), 400, &reply, "unknown field 'modell'");
    for (int w = 0; w < 600 && !cr_test_file_exists(done); w++) usleep(50 * 1000);
    CHECK_MSG(cr_test_file_exists(done), "the clients did not finish");
    char *text = cr_test_read(codes, NULL);
    int ok = 0, lines = 0;
    for (char *p = text; p && *p; p = strchr(p, '\n') + 1) {
        lines++;
        ok += !strncmp(p, "200\n", 4);
    }
    free(text);
    CHECK_EQ(lines, 240);
    CHECK_EQ(ok, 240);
    /* the last reload loaded bpr, generation 1 + 8; an empty body reloads the same file */
    CHECK_EQ(http(s, "", NULL, "/healthz", NULL, NULL, &reply), 200);
    CHECK_STR(reply, "{\"status\":\"ok\",\"model\":\"bpr\",\"generation\":9}");
    free(reply);
    CHECK_EQ(http(s, "", "POST", "/v1/reload", "application/json", NULL, &reply), 200);
    CHECK_CONTAINS(reply, "\"generation\":10");
    free(reply);
    CHECK_EQ(http(s, "", NULL, "/metrics", NULL, NULL, &reply), 200);
    CHECK_CONTAINS(reply, "crossrec_reload_failures_total 1\n");
    CHECK_CONTAINS(reply, "crossrec_requests_total{endpoint=\"recommend\",code=\"200\"} 241\n");
    free(reply);
    CHECK_OK(cr_server_reload(s, cr_test_path("serve/knn.crm"), NULL));
    cr_server_stop(s);
    cr_dataset_free(d);
}

/* A port in use is a clear error. */
TEST(serve_port_in_use) {
    cr_dataset *d = serve_fixture();
    cr_server *s = start("serve/bpr.crm", 10);
    cr_server_params p = cr_server_default_params();
    p.port = cr_server_port(s);
    cr_server *t = NULL;
    CHECK_STATUS(cr_server_start(&t, cr_test_path("serve/bpr.crm"), &p), CR_ERR_IO);
    CHECK_CONTAINS(cr_errmsg(), "cannot listen");
    CHECK(t == NULL);
    p.bind = "localhost";
    CHECK_STATUS(cr_server_start(&t, cr_test_path("serve/bpr.crm"), &p), CR_ERR_ARG);
    cr_server_stop(s);
    cr_dataset_free(d);
}

/* `crossrec serve` as a process: it prints its address (and nothing from libmicrohttpd), SIGHUP reloads the
 * model, SIGTERM stops it cleanly. */
TEST(cli_serve_signals) {
    cr_dataset *d = serve_fixture();
    const char *bin = getenv("CROSSREC_BIN");
    char dir[512], cmd[10000], abs_bin[PATH_MAX];
    CHECK(realpath(bin && *bin ? bin : "build/current/crossrec", abs_bin) != NULL);     /* the script runs elsewhere */
    snprintf(dir, sizeof dir, "%s", cr_test_path("serve"));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { '%s' serve bpr.crm --port 0 --threads 1 > serve.log 2>&1 & pid=$!; "
             "for i in $(seq 100); do grep -q ' on http' serve.log && break; sleep 0.1; done; "
             "url=$(sed -n 's|.* on \\(http://[0-9.:]*\\)/ .*|\\1|p' serve.log); "
             "kill -HUP $pid; for i in $(seq 50); do curl -s \"$url/healthz\" > health.json; grep -q '\"generation\":2' health.json && break; sleep 0.1; done; "
             "kill -TERM $pid; wait $pid; echo \"exit $?\" >> serve.log; }",
             dir, abs_bin);
    CHECK_EQ(system(cmd), 0);
    char *log = cr_test_read(cr_test_path("serve/serve.log"), NULL), *health = cr_test_read(cr_test_path("serve/health.json"), NULL);
    CHECK_CONTAINS(log, "crossrec: serving bpr.crm on http://127.0.0.1:");
    CHECK_CONTAINS(log, "reloaded bpr.crm (bpr, generation 2)");
    CHECK_CONTAINS(log, "crossrec: stopping\nexit 0\n");
    CHECK_MSG(!strstr(log, "Warning"), "libmicrohttpd's warning on the terminal: %s", log);   /* --threads 1 printed one */
    CHECK_STR(health, "{\"status\":\"ok\",\"model\":\"bpr\",\"generation\":2}");
    free(log);
    free(health);
    cr_dataset_free(d);
}

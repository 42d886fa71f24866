/* status.c — status names, per-thread error message and hint, logging, assertions, clock. */
#include "crossrec/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *status_names[CR_ERR_COUNT_] = {
    [CR_OK] = "ok",
    [CR_DONE] = "done",
    [CR_ERR_NOMEM] = "out of memory",
    [CR_ERR_IO] = "i/o error",
    [CR_ERR_PARSE] = "parse error",
    [CR_ERR_FORMAT] = "bad file format",
    [CR_ERR_VERSION] = "unsupported file version",
    [CR_ERR_ARG] = "invalid argument",
    [CR_ERR_NOTFOUND] = "not found",
    [CR_ERR_LIMIT] = "limit exceeded",
};

const char *cr_status_str(cr_status st) {
    if ((int)st < 0 || st >= CR_ERR_COUNT_) return "unknown status";
    return status_names[st];
}

#define MSG_MAX 1024
static _Thread_local char err_msg[MSG_MAX];
static _Thread_local char err_hint[MSG_MAX];

cr_status cr_fail(cr_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_hint[0] = '\0';
    return st;
}

void cr_set_hint(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_hint, sizeof err_hint, fmt, ap);
    va_end(ap);
}

void cr_errmsg_prefix(const char *fmt, ...) {
    char prefix[MSG_MAX], old[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    size_t np = strlen(prefix), no = strlen(old);
    if (np > MSG_MAX - 3) np = MSG_MAX - 3;
    if (no > MSG_MAX - 3 - np) no = MSG_MAX - 3 - np;
    memcpy(err_msg, prefix, np);
    memcpy(err_msg + np, ": ", 2);
    memcpy(err_msg + np + 2, old, no);
    err_msg[np + 2 + no] = '\0';
}

const char *cr_errmsg(void) { return err_msg; }
const char *cr_errhint(void) { return err_hint; }
void cr_clear_error(void) { err_msg[0] = err_hint[0] = '\0'; }

void cr_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "crossrec: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

static void log_default(cr_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *tags[] = {"error: ", "warning: ", "", "debug: "};
    fprintf(stderr, "crossrec: %s%s\n", tags[level], msg);
}

static cr_log_fn log_fn = log_default;
static void *log_user;
static cr_log_level log_max = CR_LOG_INFO;

void cr_log_set(cr_log_fn fn, void *user, cr_log_level max_level) {
    log_fn = fn ? fn : log_default;
    log_user = user;
    log_max = max_level;
}

void cr_log(cr_log_level level, const char *fmt, ...) {
    if (level > log_max) return;
    char buf[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}

double cr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

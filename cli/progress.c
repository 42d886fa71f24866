/* progress.c — the progress line of long commands and their closing summary line.
 *
 * A command starts a cli_progress and hands the library the cr_progress it returns (in the params of import,
 * train, eval, embed, ...). While the library reports, one line on stderr shows how far the work is, its rate
 * and the time left: "eval: 480/1,000 users (48%)  812 users/s  ETA 1s". It is drawn only when stderr is a
 * terminal and the command is not --quiet, at most five times a second, and taken down before anything else
 * is printed. cli_progress_end takes it down and prints the command's one summary line. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define REDRAW_SECONDS 0.2

const char *cli_commas(int64_t v, char *buf, size_t cap) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t o = 0;
    if (v < 0 && o + 1 < cap) buf[o++] = '-';
    for (int i = 0; i < n && o + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* "45s", "3m05s", "2h07m" */
static const char *duration(double s, char *buf, size_t cap) {
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, cap, "%lds", t);
    else if (t < 3600) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    return buf;
}

/* A count in the command's unit: bytes as MB, the others with thousands separators. */
static const char *amount(const cli_progress *p, int64_t v, char *buf, size_t cap) {
    if (p->bytes) snprintf(buf, cap, "%.1f", (double)v / 1e6);
    else cli_commas(v, buf, cap);
    return buf;
}

static void draw(cli_progress *p, int64_t done, int64_t total) {
    double now = cr_now(), secs = now - p->t0;
    char d[32], t[32], rate[64] = "", eta[48] = "", left[32];
    const char *unit = p->bytes ? "MB" : p->unit;
    if (secs > 0 && done > 0) {
        double r = (double)done / secs;
        if (p->bytes) snprintf(rate, sizeof rate, "  %.1f MB/s", r / 1e6);
        else if (r >= 100) snprintf(rate, sizeof rate, "  %.0f %s/s", r, p->unit);
        else if (r >= 1) snprintf(rate, sizeof rate, "  %.3g %s/s", r, p->unit);
        else snprintf(rate, sizeof rate, "  %.1f s per %s", 1 / r, p->unit_one);
        if (total > done) snprintf(eta, sizeof eta, "  ETA %s", duration((double)(total - done) / r, left, sizeof left));
    }
    if (total > 0)
        fprintf(stderr, "\r%s: %s/%s %s (%d%%)%s%s\033[K", p->task, amount(p, done, d, sizeof d), amount(p, total, t, sizeof t),
                unit, (int)(100.0 * (double)done / (double)total), rate, eta);
    else
        fprintf(stderr, "\r%s: %s %s%s\033[K", p->task, amount(p, done, d, sizeof d), unit, rate);
    fflush(stderr);
    p->shown = 1;
    p->last_draw = now;
    p->last_done = done;
}

static void take_down(cli_progress *p) {
    if (!p->shown) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->shown = 0;
}

static void on_progress(void *user, int64_t done, int64_t total) {
    cli_progress *p = user;
    if (done < 0) {
        take_down(p);
        return;
    }
    /* the first report, the end (once), and otherwise a few times a second */
    if (!p->shown || (done == total && p->last_done != done) || cr_now() - p->last_draw >= REDRAW_SECONDS) draw(p, done, total);
}

cr_progress cli_progress_start(cli_progress *p, const char *task, const char *unit, int quiet) {
    memset(p, 0, sizeof *p);
    p->task = task;
    p->bytes = !strcmp(unit, "byte");
    p->unit_one = unit;
    /* the plural for rates and counts: "user" -> "users" */
    snprintf(p->unit, sizeof p->unit, "%s%s", unit, p->bytes ? "" : "s");
    p->quiet = quiet;
    p->t0 = cr_now();
    cr_progress r = {NULL, NULL};
    if (!quiet && cli_stderr_tty()) r = (cr_progress){on_progress, p};
    return r;
}

void cli_progress_end(cli_progress *p, FILE *out, const char *fmt, ...) {
    take_down(p);
    if (p->quiet || !fmt) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

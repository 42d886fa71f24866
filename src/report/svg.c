/* svg.c — line, grouped-bar and scatter charts as inline SVG (report_impl.h).
 *
 * Every chart has the same frame: a viewBox of W x H, the plot area inside fixed margins, the legend to its
 * right, axes with "nice" ticks (1, 2 or 5 times a power of ten). Coordinates are written with one decimal:
 * enough for the screen, small files. No xmlns attribute: inside HTML the parser gives <svg> its namespace, and
 * the page stays free of any URL. */
#include "report_impl.h"

#include <math.h>
#include <string.h>

enum { W = 720, H = 380, LEFT = 64, RIGHT = W - 176, TOP = 40, BOTTOM = H - 56, LEGEND_X = RIGHT + 16 };

static const char *const palette[10] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

const char *cr_svg_color(int k) { return palette[(k < 0 ? 0 : k) % 10]; }

void cr_svg_escape(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* An axis from lo to hi in ticks of `step`, lo and hi multiples of it. */
typedef struct {
    double lo, hi, step;
    int decimals;
} axis;

/* Covers [a, b] with about 5 nice ticks; from 0 when from_zero. An empty range gets a unit around it. */
static axis nice_axis(double a, double b, int from_zero) {
    if (!(a <= b)) a = 0, b = 1;
    if (from_zero && a > 0) a = 0;
    if (b - a < 1e-12) {
        double pad = fabs(a) > 1e-12 ? fabs(a) * 0.1 : 1;
        a -= pad, b += pad;
        if (from_zero && a < 0 && b > 0 && a > -pad * 1.5) a = 0;
    }
    double raw = (b - a) / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    axis ax = {floor(a / step + 1e-9) * step, ceil(b / step - 1e-9) * step, step, 0};
    if (ax.hi <= ax.lo) ax.hi = ax.lo + step;
    ax.decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    return ax;
}

static double map_x(const axis *ax, double v) { return LEFT + (v - ax->lo) / (ax->hi - ax->lo) * (RIGHT - LEFT); }
static double map_y(const axis *ax, double v) { return BOTTOM - (v - ax->lo) / (ax->hi - ax->lo) * (BOTTOM - TOP); }

static void open_svg(FILE *out, const char *title) {
    fprintf(out, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", W, H);
    cr_svg_escape(out, title);
    fprintf(out, "\">\n<text class=\"title\" x=\"%d\" y=\"22\">", LEFT);
    cr_svg_escape(out, title);
    fputs("</text>\n", out);
}

/* Grid lines, tick labels and axis labels; x_axis NULL for a category axis (bars). */
static void draw_axes(FILE *out, const axis *x_axis, const axis *y_axis, const char *x_label, const char *y_label) {
    fputs("<g class=\"grid\">\n", out);
    for (double v = y_axis->lo; v <= y_axis->hi + y_axis->step * 1e-6; v += y_axis->step) {
        double y = map_y(y_axis, v);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><text class=\"tick\" x=\"%d\" y=\"%.1f\" "
                     "text-anchor=\"end\">%.*f</text>\n",
                LEFT, y, RIGHT, y, LEFT - 6, y + 4, y_axis->decimals, fabs(v) < y_axis->step * 1e-6 ? 0.0 : v);
    }
    if (x_axis)
        for (double v = x_axis->lo; v <= x_axis->hi + x_axis->step * 1e-6; v += x_axis->step) {
            double x = map_x(x_axis, v);
            fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/><text class=\"tick\" x=\"%.1f\" y=\"%d\" "
                         "text-anchor=\"middle\">%.*f</text>\n",
                    x, TOP, x, BOTTOM, x, BOTTOM + 16, x_axis->decimals, fabs(v) < x_axis->step * 1e-6 ? 0.0 : v);
        }
    fputs("</g>\n", out);
    fprintf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", LEFT, BOTTOM, RIGHT, BOTTOM);
    fprintf(out, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", LEFT, TOP, LEFT, BOTTOM);
    if (x_label) {
        fprintf(out, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (LEFT + RIGHT) / 2, H - 14);
        cr_svg_escape(out, x_label);
        fputs("</text>\n", out);
    }
    if (y_label) {
        fprintf(out, "<text class=\"label\" transform=\"translate(16 %d) rotate(-90)\" text-anchor=\"middle\">", (TOP + BOTTOM) / 2);
        cr_svg_escape(out, y_label);
        fputs("</text>\n", out);
    }
}

/* One legend row per name: a swatch and the name, cut to fit. */
static void draw_legend(FILE *out, int n, const char *const *names, const int *colors) {
    for (int s = 0; s < n && s < 16; s++) {
        int y = TOP + 8 + 20 * s;
        char name[32];
        snprintf(name, sizeof name, "%s", names[s]);
        if (strlen(names[s]) >= sizeof name) memcpy(name + sizeof name - 4, "...", 4);
        fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text class=\"legend\" x=\"%d\" y=\"%d\">",
                LEGEND_X, y - 10, cr_svg_color(colors ? colors[s] : s), LEGEND_X + 18, y);
        cr_svg_escape(out, name);
        fputs("</text>\n", out);
    }
    if (n > 16) fprintf(out, "<text class=\"legend\" x=\"%d\" y=\"%d\">and %d more</text>\n", LEGEND_X, TOP + 8 + 20 * 16, n - 16);
}

void cr_svg_line_chart(FILE *out, const cr_svg_lines *c) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < c->n_series; s++)
        for (int64_t k = 0; k < c->n[s]; k++) {
            if (isnan(c->y[s][k]) || isnan(c->x[s][k])) continue;
            x0 = fmin(x0, c->x[s][k]), x1 = fmax(x1, c->x[s][k]);
            y0 = fmin(y0, c->y[s][k]), y1 = fmax(y1, c->y[s][k]);
        }
    axis ax = nice_axis(x0, x1, 0), ay = nice_axis(y0, y1, y0 >= 0 && y0 < 0.5 * y1);
    if (isinf(x0)) ax = nice_axis(0, 1, 1), ay = nice_axis(0, 1, 1);   /* nothing to draw: an empty frame */
    open_svg(out, c->title);
    draw_axes(out, &ax, &ay, c->x_label, c->y_label);
    for (int s = 0; s < c->n_series; s++) {
        const char *color = cr_svg_color(c->colors ? c->colors[s] : s);
        fprintf(out, "<path class=\"line\" stroke=\"%s\" d=\"", color);
        int pen_down = 0;
        for (int64_t k = 0; k < c->n[s]; k++) {
            if (isnan(c->y[s][k]) || isnan(c->x[s][k])) {
                pen_down = 0;
                continue;
            }
            fprintf(out, "%s%.1f %.1f", pen_down ? " L" : " M", map_x(&ax, c->x[s][k]), map_y(&ay, c->y[s][k]));
            pen_down = 1;
        }
        fputs("\"/>\n", out);
        if (!c->markers) continue;
        fprintf(out, "<g fill=\"%s\">", color);
        for (int64_t k = 0; k < c->n[s]; k++)
            if (!isnan(c->y[s][k]) && !isnan(c->x[s][k]))
                fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"><title>%g: %.4f</title></circle>", map_x(&ax, c->x[s][k]),
                        map_y(&ay, c->y[s][k]), c->x[s][k], c->y[s][k]);
        fputs("</g>\n", out);
    }
    draw_legend(out, c->n_series, c->names, c->colors);
    fputs("</svg>\n", out);
}

void cr_svg_bar_chart(FILE *out, const cr_svg_bars *c) {
    double top = 0;
    for (int64_t k = 0; k < (int64_t)c->n_groups * c->n_series; k++)
        if (!isnan(c->values[k])) top = fmax(top, c->values[k]);
    axis ay = nice_axis(0, top, 1);
    open_svg(out, c->title);
    draw_axes(out, NULL, &ay, NULL, c->y_label);
    double gw = (double)(RIGHT - LEFT) / (c->n_groups ? c->n_groups : 1), bw = gw * 0.8 / (c->n_series ? c->n_series : 1);
    int label_chars = (int)(gw / 6.5);
    for (int g = 0; g < c->n_groups; g++) {
        double gx = LEFT + g * gw + gw * 0.1;
        for (int s = 0; s < c->n_series; s++) {
            double v = c->values[g * c->n_series + s];
            if (isnan(v)) continue;
            double y = map_y(&ay, v);
            fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", gx + s * bw, y,
                    bw * 0.92, BOTTOM - y, cr_svg_color(c->colors ? c->colors[s] : s));
            cr_svg_escape(out, c->names[s]);
            fputs(", ", out);
            cr_svg_escape(out, c->groups[g]);
            fprintf(out, ": %.4f</title></rect>\n", v);
        }
        /* the label on up to two lines, broken at the last space that fits; the rest cut with "..." */
        char label[96];
        snprintf(label, sizeof label, "%s", c->groups[g]);
        const char *second = NULL;
        if ((int)strlen(label) > label_chars) {
            char *sp = NULL;
            for (char *q = label; *q && q - label <= label_chars; q++)
                if (*q == ' ') sp = q;
            if (sp) *sp = '\0', second = sp + 1;
        }
        for (int line = 0; line < 2; line++) {
            char *text = line ? (char *)second : label;
            if (!text) break;
            if (label_chars >= 4 && (int)strlen(text) > label_chars) memcpy(text + label_chars - 3, "...", 4);
            fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", LEFT + (g + 0.5) * gw,
                    BOTTOM + 16 + 13 * line);
            cr_svg_escape(out, text);
            fputs("</text>\n", out);
        }
    }
    draw_legend(out, c->n_series, c->names, c->colors);
    fputs("</svg>\n", out);
}

void cr_svg_scatter_chart(FILE *out, const cr_svg_scatter *c) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int64_t i = 0; i < c->n; i++) {
        x0 = fmin(x0, c->xy[2 * i]), x1 = fmax(x1, c->xy[2 * i]);
        y0 = fmin(y0, c->xy[2 * i + 1]), y1 = fmax(y1, c->xy[2 * i + 1]);
    }
    if (!c->n) x0 = y0 = 0, x1 = y1 = 1;
    axis ax = nice_axis(x0, x1, 0), ay = nice_axis(y0, y1, 0);
    open_svg(out, c->title);
    draw_axes(out, &ax, &ay, c->x_label, c->y_label);
    for (int k = 0; k < c->n_categories; k++) {
        fprintf(out, "<g class=\"points\" fill=\"%s\">", cr_svg_color(k));
        for (int64_t i = 0; i < c->n; i++)
            if (c->category[i] == k)
                fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\"/>", map_x(&ax, c->xy[2 * i]), map_y(&ay, c->xy[2 * i + 1]));
        fputs("</g>\n", out);
    }
    draw_legend(out, c->n_categories, c->category_names, NULL);
    fputs("</svg>\n", out);
}

/* report_impl.h — private to src/report: the SVG charts the HTML report is made of (svg.c).
 *
 * Each chart writes one <svg> element (width 100%, a fixed viewBox) to a FILE; text is escaped for XML. Values
 * that are NaN are left out (a line is broken there). Series and categories take the colours of one palette in
 * order, so a model has the same colour in every chart of a page. */
#ifndef CROSSREC_REPORT_IMPL_H
#define CROSSREC_REPORT_IMPL_H

#include "crossrec/report.h"

#include <stdio.h>

/* Colour of series or category k (cycles through 10). */
const char *cr_svg_color(int k);
/* Writes s with &, <, >, " and ' escaped (text and attribute values of HTML and SVG). */
void cr_svg_escape(FILE *out, const char *s);

/* Lines through (x, y) points, one per series, with axes, ticks and a legend. */
typedef struct {
    const char *title, *x_label, *y_label;
    int n_series;
    const char *const *names;       /* (n_series) */
    const int *colors;              /* (n_series) palette index of each series */
    const double *const *x;         /* (n_series) arrays of n[s] values */
    const double *const *y;
    const int64_t *n;
    int markers;                    /* draw a dot at every point (few points: epochs) */
} cr_svg_lines;
void cr_svg_line_chart(FILE *out, const cr_svg_lines *c);

/* Bars in groups: for each group (a user group, a domain), one bar per series (a model). */
typedef struct {
    const char *title, *y_label;
    int n_groups, n_series;
    const char *const *groups;      /* (n_groups) labels under the groups */
    const char *const *names;       /* (n_series) */
    const int *colors;              /* (n_series) */
    const double *values;           /* (n_groups, n_series) */
} cr_svg_bars;
void cr_svg_bar_chart(FILE *out, const cr_svg_bars *c);

/* Points coloured by category (items by domain). */
typedef struct {
    const char *title, *x_label, *y_label;
    int64_t n;
    const float *xy;                /* (n, 2) */
    const int32_t *category;        /* (n) 0..n_categories-1 */
    int n_categories;
    const char *const *category_names;
} cr_svg_scatter;
void cr_svg_scatter_chart(FILE *out, const cr_svg_scatter *c);

#endif

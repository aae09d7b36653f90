/*
 * chart.h - vector charts on a cairo context: bar (grouped columns), line,
 * stacked columns and donut, each with a title, axes with "nice" ticks and
 * tick labels, value labels in the cells' own display format (so the chart
 * shows the same figures as the tables) and a legend.
 */
#ifndef CDRFLOW_REPORT_CHART_H
#define CDRFLOW_REPORT_CHART_H

#include <cairo.h>

#include "draw.h"
#include "table.h"

/* Draw c over data m into the box (x, y, w, h), in points.  The chart must
 * pass rchart_check(); returns -1 (message in err) if it does not. */
int chart_draw(cairo_t *cr, const struct rfonts *f, double x, double y, double w, double h, const struct rchart *c,
	       const struct rmem *m, char *err, size_t errlen);

/* Text for a chart figure v (in rval_chart_number() units) as column col
 * shows it: used for totals and ticks.  Writes at most n bytes. */
void chart_value_text(const struct rcol *col, double v, char *out, size_t n);

/* "Nice" axis ticks over [lo, hi]: *step is 1, 2 or 5 times a power of ten,
 * about `want` steps; *tlo and *thi are lo and hi rounded out to steps. */
void chart_ticks(double lo, double hi, int want, double *tlo, double *thi, double *step);

#endif

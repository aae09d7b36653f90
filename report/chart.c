/*
 * chart.c - bar, line, stacked and donut charts drawn with cairo.
 *
 * Everything is vector: rectangles, arcs and text through the embedded
 * fonts.  Sizes are in points; label fonts shrink (not below 5 pt) when a
 * category is narrow, and category labels are thinned out when there are
 * too many to read.
 */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TITLE_PT 10.5
#define LABEL_PT 7.0
#define TICK_PT 7.0
#define LEGEND_PT 7.5
#define GRID_RGB 0xDDDDDD
#define AXIS_RGB 0x444444
#define TEXT_RGB 0x222222

void chart_ticks(double lo, double hi, int want, double *tlo, double *thi, double *step)
{
	if (!(hi > lo)) {
		hi = lo + 1.0;
	}
	double raw = (hi - lo) / (want > 0 ? want : 5);
	double p = pow(10.0, floor(log10(raw)));
	double m = raw / p;
	double s = m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0;
	*step = s * p;
	*tlo = floor(lo / *step) * *step;
	*thi = ceil(hi / *step) * *step;
	if (*thi - *tlo < *step / 2)
		*thi = *tlo + *step;
}

void chart_value_text(const struct rcol *col, double v, char *out, size_t n)
{
	struct rval rv = rval_int(0);
	switch (col->type) {
	case RCOL_MONEY: rv.i = llround(v * 1e6); break;
	case RCOL_DECIMAL: rv = rval_dbl(v); break;
	case RCOL_PERCENT: rv = rval_dbl(v / 100.0); break;
	case RCOL_INT:
	case RCOL_DURATION:
	case RCOL_TIMESTAMP:
	case RCOL_TEXT: rv.i = llround(v); break;
	}
	rval_format(col, &rv, RFMT_DISPLAY, out, n);
}

/* Tick label: as few decimals as the step needs; durations as h:mm:ss. */
static void tick_text(const struct rcol *col, double v, double step, char *out, size_t n)
{
	if (col->type == RCOL_DURATION) {
		chart_value_text(col, v, out, n);
		return;
	}
	int dec = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (dec > 6)
		dec = 6;
	if (fabs(v) < step / 1e6)
		v = 0.0; /* no "-0" */
	snprintf(out, n, "%.*f%s", dec, v, col->type == RCOL_PERCENT ? "%" : "");
}

struct plot {
	cairo_t *cr;
	const struct rfonts *f;
	const struct rchart *c;
	const struct rmem *m;
	size_t nser, ncat;
	double px, py, pw, ph; /* plot area */
	double lo, hi, step;
	double ytx; /* x of the rotated y-axis title */
};

static double ymap(const struct plot *p, double v)
{
	return p->py + p->ph - (v - p->lo) / (p->hi - p->lo) * p->ph;
}

static double cell(const struct plot *p, size_t cat, size_t s)
{
	size_t k = p->c->series_cols[s];
	return rval_chart_number(&p->m->cols[k], &rmem_row(p->m, cat)[k]);
}

static void cell_text(const struct plot *p, size_t cat, size_t s, char *out, size_t n)
{
	size_t k = p->c->series_cols[s];
	rval_format(&p->m->cols[k], &rmem_row(p->m, cat)[k], RFMT_DISPLAY, out, n);
}

static void cat_text(const struct plot *p, size_t cat, char *out, size_t n)
{
	const struct rcol *cc = &p->m->cols[p->c->cat_col];
	rval_format(cc, &rmem_row(p->m, cat)[p->c->cat_col], RFMT_DISPLAY, out, n);
}

/* Legend entries in rows under the plot; returns the height used. */
static double legend(cairo_t *cr, const struct rfonts *f, double x, double y, double w, const char **names,
		     size_t n, int draw)
{
	double lx = x, ly = y + LEGEND_PT, sw = 8, gap = 12;
	draw_font(cr, f, 0, LEGEND_PT);
	for (size_t i = 0; i < n; i++) {
		double tw = draw_text_width(cr, names[i]);
		if (tw > w - sw - 4)
			tw = w - sw - 4;
		if (lx > x && lx + sw + 4 + tw > x + w) {
			lx = x;
			ly += LEGEND_PT + 4;
		}
		if (draw) {
			draw_rgb(cr, draw_palette(i));
			cairo_rectangle(cr, lx, ly - sw + 1, sw, sw);
			cairo_fill(cr);
			draw_rgb(cr, TEXT_RGB);
			draw_text(cr, lx + sw + 4, ly, AL_LEFT, w - sw - 4, names[i]);
		}
		lx += sw + 4 + tw + gap;
	}
	return ly - y + 4;
}

static void axes(struct plot *p, const struct rcol *ycol)
{
	cairo_t *cr = p->cr;
	char t[RVAL_NUMTEXT_MAX];
	draw_font(cr, p->f, 0, TICK_PT);
	cairo_set_line_width(cr, 0.4);
	for (double v = p->lo; v <= p->hi + p->step / 2; v += p->step) {
		double y = ymap(p, v);
		draw_rgb(cr, GRID_RGB);
		cairo_move_to(cr, p->px, y);
		cairo_line_to(cr, p->px + p->pw, y);
		cairo_stroke(cr);
		draw_rgb(cr, AXIS_RGB);
		cairo_move_to(cr, p->px - 3, y);
		cairo_line_to(cr, p->px, y);
		cairo_stroke(cr);
		tick_text(ycol, v, p->step, t, sizeof t);
		draw_text(cr, p->px - 5, y + TICK_PT / 3, AL_RIGHT, 0, t);
	}
	cairo_set_line_width(cr, 0.8);
	draw_rgb(cr, AXIS_RGB);
	cairo_move_to(cr, p->px, p->py);
	cairo_line_to(cr, p->px, p->py + p->ph);
	double y0 = ymap(p, p->lo <= 0 && p->hi >= 0 ? 0.0 : p->lo);
	cairo_move_to(cr, p->px, y0);
	cairo_line_to(cr, p->px + p->pw, y0);
	cairo_stroke(cr);
	/* category labels, thinned so that they do not overlap */
	double slot = p->pw / (double)p->ncat;
	size_t every = 1;
	draw_font(cr, p->f, 0, TICK_PT);
	double maxw = 0;
	for (size_t i = 0; i < p->ncat; i++) {
		cat_text(p, i, t, sizeof t);
		double w = draw_text_width(cr, t);
		if (w > maxw)
			maxw = w;
	}
	while (every < p->ncat && slot * (double)every < fmin(maxw, 60.0) + 4)
		every++;
	for (size_t i = 0; i < p->ncat; i += every) {
		double x = p->px + slot * ((double)i + 0.5);
		cairo_move_to(cr, x, p->py + p->ph);
		cairo_line_to(cr, x, p->py + p->ph + 3);
		cairo_stroke(cr);
		cat_text(p, i, t, sizeof t);
		draw_text(cr, x, p->py + p->ph + 4 + TICK_PT, AL_CENTER, slot * (double)every - 2, t);
	}
	if (p->c->y_title) {
		cairo_save(cr);
		cairo_translate(cr, p->ytx, p->py + p->ph / 2);
		cairo_rotate(cr, -M_PI / 2);
		draw_text(cr, 0, 0, AL_CENTER, p->ph, p->c->y_title);
		cairo_restore(cr);
	}
}

/* Select the font for value label t in room points: LABEL_PT, smaller
 * when t is wider, not below 5 pt.  Returns the size, or 0 when t does not
 * fit even at 5 pt: the label is left out (the axis still reads the
 * value) rather than drawn over its neighbours. */
static double label_size(cairo_t *cr, const struct rfonts *f, const char *t, double room)
{
	double pt = LABEL_PT;
	draw_font(cr, f, 0, pt);
	double w = draw_text_width(cr, t);
	if (w > room && w > 0) {
		if (w * 5.0 / LABEL_PT > room)
			return 0;
		pt = fmax(5.0, pt * room / w);
	}
	draw_font(cr, f, 0, pt);
	return pt;
}

static void bars(struct plot *p)
{
	cairo_t *cr = p->cr;
	char t[RVAL_NUMTEXT_MAX];
	double slot = p->pw / (double)p->ncat, bw = slot * 0.8 / (double)p->nser;
	double y0 = ymap(p, p->lo <= 0 && p->hi >= 0 ? 0.0 : p->lo);
	for (size_t i = 0; i < p->ncat; i++)
		for (size_t s = 0; s < p->nser; s++) {
			double v = cell(p, i, s), x = p->px + slot * (double)i + slot * 0.1 + bw * (double)s;
			double y = ymap(p, v);
			draw_rgb(cr, draw_palette(s));
			cairo_rectangle(cr, x, fmin(y, y0), bw * 0.92, fabs(y0 - y));
			cairo_fill(cr);
			cell_text(p, i, s, t, sizeof t);
			double pt = label_size(cr, p->f, t, bw * 1.1);
			if (pt > 0) {
				draw_rgb(cr, TEXT_RGB);
				draw_text(cr, x + bw * 0.46, v >= 0 ? y - 2 : y + pt + 1, AL_CENTER, 0, t);
			}
		}
}

static void stacked(struct plot *p)
{
	cairo_t *cr = p->cr;
	char t[RVAL_NUMTEXT_MAX];
	double slot = p->pw / (double)p->ncat, bw = slot * 0.6;
	for (size_t i = 0; i < p->ncat; i++) {
		double x = p->px + slot * (double)i + slot * 0.2, pos = 0, neg = 0;
		for (size_t s = 0; s < p->nser; s++) {
			double v = cell(p, i, s), base = v >= 0 ? pos : neg;
			double ya = ymap(p, base), yb = ymap(p, base + v);
			draw_rgb(cr, draw_palette(s));
			cairo_rectangle(cr, x, fmin(ya, yb), bw, fabs(ya - yb));
			cairo_fill(cr);
			if (fabs(ya - yb) >= 8) {
				cell_text(p, i, s, t, sizeof t);
				if (label_size(cr, p->f, t, bw - 2) > 0) {
					cairo_set_source_rgb(cr, 1, 1, 1);
					draw_text(cr, x + bw / 2, (ya + yb) / 2 + 2.5, AL_CENTER, 0, t);
				}
			}
			if (v >= 0)
				pos += v;
			else
				neg += v;
		}
		/* the stack total, in the first series' format (none on an empty stack) */
		if (pos == 0 && neg == 0)
			continue;
		chart_value_text(&p->m->cols[p->c->series_cols[0]], pos + neg, t, sizeof t);
		if (label_size(cr, p->f, t, slot * 0.75) > 0) { /* a quarter of a slot apart at least */
			draw_rgb(cr, TEXT_RGB);
			draw_text(cr, x + bw / 2, ymap(p, pos) - 2, AL_CENTER, 0, t);
		}
	}
}

static void lines(struct plot *p)
{
	cairo_t *cr = p->cr;
	char t[RVAL_NUMTEXT_MAX];
	double slot = p->pw / (double)p->ncat;
	for (size_t s = 0; s < p->nser; s++) {
		draw_rgb(cr, draw_palette(s));
		cairo_set_line_width(cr, 1.5);
		cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
		for (size_t i = 0; i < p->ncat; i++) {
			double x = p->px + slot * ((double)i + 0.5), y = ymap(p, cell(p, i, s));
			if (i == 0)
				cairo_move_to(cr, x, y);
			else
				cairo_line_to(cr, x, y);
		}
		cairo_stroke(cr);
		for (size_t i = 0; i < p->ncat; i++) {
			double x = p->px + slot * ((double)i + 0.5), y = ymap(p, cell(p, i, s));
			draw_rgb(cr, draw_palette(s));
			cairo_arc(cr, x, y, 2.2, 0, 2 * M_PI);
			cairo_fill(cr);
			cell_text(p, i, s, t, sizeof t);
			if (label_size(cr, p->f, t, slot * 0.75) > 0) {
				draw_rgb(cr, TEXT_RGB);
				draw_text(cr, x, y - 4, AL_CENTER, 0, t);
			}
		}
	}
}

static void donut(cairo_t *cr, const struct rfonts *f, const struct rchart *c, const struct rmem *m, double x,
		  double y, double w, double h)
{
	char t[RVAL_NUMTEXT_MAX], pct[32];
	const char *names[RCHART_MAX_CATS];
	char namebuf[RCHART_MAX_CATS][96];
	size_t k = c->series_cols[0];
	const struct rcol *sc = &m->cols[k];
	double total = 0;
	for (size_t i = 0; i < m->nrows; i++)
		total += rval_chart_number(sc, &rmem_row(m, i)[k]);
	/* legend: "category  value (share)" on the right */
	for (size_t i = 0; i < m->nrows; i++) {
		char cat[64];
		const struct rval *row = rmem_row(m, i);
		rval_format(&m->cols[c->cat_col], &row[c->cat_col], RFMT_DISPLAY, cat, sizeof cat);
		rval_format(sc, &row[k], RFMT_DISPLAY, t, sizeof t);
		double v = rval_chart_number(sc, &row[k]);
		snprintf(namebuf[i], sizeof namebuf[i], "%s  %s (%.1f%%)", cat, t, total > 0 ? 100.0 * v / total : 0.0);
		names[i] = namebuf[i];
	}
	double lw = w * 0.45;
	double r = fmin((w - lw) / 2, h / 2) - 4, cx = x + (w - lw) / 2, cy = y + h / 2, ri = r * 0.55;
	double a = -M_PI / 2;
	for (size_t i = 0; i < m->nrows && total > 0; i++) {
		double v = rval_chart_number(sc, &rmem_row(m, i)[k]), da = 2 * M_PI * v / total;
		draw_rgb(cr, draw_palette(i));
		cairo_new_path(cr);
		cairo_arc(cr, cx, cy, r, a, a + da);
		cairo_arc_negative(cr, cx, cy, ri, a + da, a);
		cairo_close_path(cr);
		cairo_fill_preserve(cr);
		cairo_set_source_rgb(cr, 1, 1, 1);
		cairo_set_line_width(cr, 0.8);
		cairo_stroke(cr);
		if (v / total >= 0.04) {
			double mid = a + da / 2, lr = (r + ri) / 2;
			snprintf(pct, sizeof pct, "%.1f%%", 100.0 * v / total);
			draw_font(cr, f, 1, LABEL_PT);
			cairo_set_source_rgb(cr, 1, 1, 1);
			draw_text(cr, cx + lr * cos(mid), cy + lr * sin(mid) + 2.5, AL_CENTER, 0, pct);
		}
		a += da;
	}
	/* the total in the hole */
	chart_value_text(sc, total, t, sizeof t);
	draw_rgb(cr, TEXT_RGB);
	draw_font(cr, f, 1, 10);
	draw_text(cr, cx, cy + 2, AL_CENTER, ri * 1.8, t);
	draw_font(cr, f, 0, 6.5);
	draw_text(cr, cx, cy + 11, AL_CENTER, ri * 1.8, rcol_label(sc));
	/* legend, one entry per line */
	double ly = y + h / 2 - (double)m->nrows * (LEGEND_PT + 4) / 2;
	for (size_t i = 0; i < m->nrows; i++) {
		draw_rgb(cr, draw_palette(i));
		cairo_rectangle(cr, x + w - lw, ly + (double)i * (LEGEND_PT + 4), 8, 8);
		cairo_fill(cr);
		draw_rgb(cr, TEXT_RGB);
		draw_font(cr, f, 0, LEGEND_PT);
		draw_text(cr, x + w - lw + 12, ly + (double)i * (LEGEND_PT + 4) + 7, AL_LEFT, lw - 12, names[i]);
	}
}

int chart_draw(cairo_t *cr, const struct rfonts *f, double x, double y, double w, double h, const struct rchart *c,
	       const struct rmem *m, char *err, size_t errlen)
{
	if (rchart_check(c, m, err, errlen) < 0)
		return -1;
	cairo_save(cr);
	/* frame and title */
	draw_rgb(cr, 0xCCCCCC);
	cairo_set_line_width(cr, 0.5);
	cairo_rectangle(cr, x, y, w, h);
	cairo_stroke(cr);
	draw_rgb(cr, TEXT_RGB);
	draw_font(cr, f, 1, TITLE_PT);
	draw_text(cr, x + w / 2, y + 6 + TITLE_PT, AL_CENTER, w - 12, c->title ? c->title : "");
	double top = y + 12 + TITLE_PT + 4;
	if (c->kind == RCHART_DONUT) {
		donut(cr, f, c, m, x + 8, top, w - 16, y + h - top - 8);
		cairo_restore(cr);
		return 0;
	}
	struct plot p = { cr, f, c, m, c->nseries, m->nrows, 0, 0, 0, 0, 0, 0, 0, x + 10 + TICK_PT };
	const char *names[RCHART_MAX_SERIES];
	for (size_t s = 0; s < p.nser; s++)
		names[s] = rcol_label(&m->cols[c->series_cols[s]]);
	double lh = legend(cr, f, x + 10, 0, w - 20, names, p.nser, 0);
	/* value range */
	double lo = 0, hi = 0;
	for (size_t i = 0; i < p.ncat; i++) {
		double pos = 0, neg = 0;
		for (size_t s = 0; s < p.nser; s++) {
			double v = cell(&p, i, s);
			if (c->kind == RCHART_STACKED) {
				if (v >= 0)
					pos += v;
				else
					neg += v;
			} else {
				lo = fmin(lo, v);
				hi = fmax(hi, v);
			}
		}
		if (c->kind == RCHART_STACKED) {
			lo = fmin(lo, neg);
			hi = fmax(hi, pos);
		}
	}
	hi += (hi - lo) * 0.08; /* headroom for the value labels */
	chart_ticks(lo, hi, 5, &p.lo, &p.hi, &p.step);
	/* counts tick at whole numbers: no "0.5 calls" */
	int counts = 1;
	for (size_t s = 0; s < p.nser; s++)
		counts &= m->cols[c->series_cols[s]].type == RCOL_INT;
	if (counts && p.step < 1.0) {
		p.step = 1.0;
		p.lo = floor(p.lo);
		p.hi = fmax(ceil(p.hi), p.lo + 1.0);
	}
	/* the widest tick label sets the left margin */
	char t[RVAL_NUMTEXT_MAX];
	const struct rcol *ycol = &m->cols[c->series_cols[0]];
	double tw = 0;
	draw_font(cr, f, 0, TICK_PT);
	for (double v = p.lo; v <= p.hi + p.step / 2; v += p.step) {
		tick_text(ycol, v, p.step, t, sizeof t);
		tw = fmax(tw, draw_text_width(cr, t));
	}
	p.px = x + 10 + tw + 6 + (c->y_title ? 14 : 0);
	p.py = top + 6;
	p.pw = x + w - 12 - p.px;
	p.ph = y + h - 8 - lh - (TICK_PT + 10) - p.py;
	if (p.pw < 20 || p.ph < 20) {
		cairo_restore(cr);
		snprintf(err, errlen, "chart \"%s\": box too small", c->title ? c->title : "");
		return -1;
	}
	axes(&p, ycol);
	if (c->kind == RCHART_BAR)
		bars(&p);
	else if (c->kind == RCHART_STACKED)
		stacked(&p);
	else
		lines(&p);
	legend(cr, f, x + 10, y + h - 6 - lh, w - 20, names, p.nser, 1);
	cairo_restore(cr);
	return 0;
}

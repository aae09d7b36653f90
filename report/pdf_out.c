/*
 * pdf_out.c - record the parts, spool the rows, lay out twice at close.
 */
#include "pdf_out.h"

#include <cairo-pdf.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "chart.h"
#include "draw.h"
#include "errmsg.h"
#include "xalloc.h"

#define MARGIN 36.0
#define ROW_H 13.0
#define CELL_PT 7.5
#define CELL_PAD 4.0
#define TITLE_H 18.0
#define KPI_H 50.0
#define KPI_GAP 10.0
#define KPI_PER_ROW 4
#define CHART_H 250.0
#define SPOOL_TEXT_MAX 2000  /* bytes of a text cell kept for the PDF */
#define NATW_MAX 400.0       /* a single column never asks for more (wider text wraps) */
#define TEXT_MINW 60.0       /* a text column is not made narrower than this (or its content) */
#define CELL_PT_MIN 5.0      /* a table too wide even in landscape gets a smaller font, not below this */
#define TEXT_FLOOR_CH 7.0     /* a squeezed text column keeps about this many characters a line */

enum part_kind { PART_KPIS, PART_CHART, PART_TABLE };

struct part {
	enum part_kind kind;
	/* KPIS */
	struct rkpi *kpis; /* labels and text values owned */
	size_t nkpis;
	/* CHART */
	struct rchart chart; /* title, y_title owned */
	struct rmem data;
	/* TABLE */
	char *title;
	struct rcol *cols; /* names owned */
	size_t ncols;
	double *natw;      /* natural width per column, points (one line, at CELL_PT) */
	double *minw;      /* narrowest it may get: numbers never wrap, text down to TEXT_MINW */
	uint64_t nrows, dropped;
	uint64_t max_rows; /* rows shown at most (a table's) */
	off_t off;         /* first row in the spool */
};

struct pdf_out {
	char *path, *tmppath;
	char *title, *period, *generated, *subtitle, *currency;
	struct pdf_out_opts o;
	double W, H;
	struct rfonts fonts;
	cairo_surface_t *msurf; /* 1x1 image: a context to measure text */
	cairo_t *mcr;
	FILE *spool;
	struct part *parts;
	size_t nparts;
	struct part *cur;       /* the open table, or NULL */
	struct buf row;         /* one serialised row */
	struct first_err fe; /* the first error, kept */
};

/* the first error is kept (errmsg.h) */
#define fail(w, ...) first_err_set(&(w)->fe, __VA_ARGS__)

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static FILE *open_spool(const char *dir, char *err, size_t errlen)
{
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	char *tmpl = xasprintf("%s/cdrflow-pdf-rows.XXXXXX", dir);
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a row spool in \"%s\": %s", dir, strerror(errno));
		free(tmpl);
		return NULL;
	}
	unlink(tmpl); /* gone when closed, whatever happens */
	free(tmpl);
	FILE *fp = fdopen(fd, "w+b");
	if (!fp) {
		snprintf(err, errlen, "cannot open the row spool: %s", strerror(errno));
		close(fd);
	}
	return fp;
}

struct pdf_out *pdf_out_new(const char *path, const struct rmeta *meta, const struct pdf_out_opts *opts, char *err,
			    size_t errlen)
{
	struct pdf_out *w = xcalloc(1, sizeof *w);
	if (opts)
		w->o = *opts;
	if (w->o.max_rows == 0)
		w->o.max_rows = PDF_MAX_ROWS_DEFAULT;
	w->W = w->o.paper == PDF_LETTER ? 612.0 : 595.276;
	w->H = w->o.paper == PDF_LETTER ? 792.0 : 841.89;
	if (rfonts_load(&w->fonts, w->o.font_dir, err, errlen) < 0) {
		free(w);
		return NULL;
	}
	w->spool = open_spool(w->o.tmpdir, err, errlen);
	if (!w->spool) {
		rfonts_release(&w->fonts);
		free(w);
		return NULL;
	}
	w->msurf = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
	w->mcr = cairo_create(w->msurf);
	if (cairo_status(w->mcr) != CAIRO_STATUS_SUCCESS) {
		snprintf(err, errlen, "cannot create a cairo context: %s", cairo_status_to_string(cairo_status(w->mcr)));
		cairo_destroy(w->mcr);
		cairo_surface_destroy(w->msurf);
		fclose(w->spool);
		rfonts_release(&w->fonts);
		free(w);
		return NULL;
	}
	w->path = xstrdup(path);
	w->tmppath = xasprintf("%s.tmp", path);
	w->title = xstrdup(meta && meta->title ? meta->title : "");
	w->period = xstrdup(meta && meta->period ? meta->period : "");
	w->generated = dup_or_null(meta ? meta->generated : NULL);
	w->subtitle = dup_or_null(meta ? meta->subtitle : NULL);
	w->currency = dup_or_null(meta && meta->currency && *meta->currency ? meta->currency : NULL);
	buf_init(&w->row, 0);
	return w;
}

static struct part *add_part(struct pdf_out *w, enum part_kind k)
{
	w->parts = xrealloc(w->parts, (w->nparts + 1) * sizeof *w->parts);
	struct part *p = &w->parts[w->nparts++];
	memset(p, 0, sizeof *p);
	p->kind = k;
	return p;
}

int pdf_out_kpis(struct pdf_out *w, const struct rkpi *k, size_t n)
{
	if (w->fe.failed)
		return -1;
	if (w->cur)
		return fail(w, "pdf: KPIs inside a table");
	if (n == 0)
		return 0;
	struct part *p = add_part(w, PART_KPIS);
	p->kpis = xcalloc(n, sizeof *p->kpis);
	p->nkpis = n;
	for (size_t i = 0; i < n; i++) {
		p->kpis[i] = k[i];
		p->kpis[i].col.name = xstrdup(rcol_label(&k[i].col) ? rcol_label(&k[i].col) : "");
		p->kpis[i].col.label = NULL;
		p->kpis[i].value.s = k[i].col.type == RCOL_TEXT && !k[i].value.null ? xstrdup(k[i].value.s) : NULL;
	}
	return 0;
}

int pdf_out_chart(struct pdf_out *w, const struct rchart *c, const struct rmem *m)
{
	char e[200];
	if (w->fe.failed)
		return -1;
	if (w->cur)
		return fail(w, "pdf: chart inside a table");
	if (rchart_check(c, m, e, sizeof e) < 0)
		return fail(w, "%s", e);
	struct part *p = add_part(w, PART_CHART);
	p->chart = *c;
	p->chart.title = dup_or_null(c->title);
	p->chart.y_title = dup_or_null(c->y_title);
	if (rmem_init(&p->data, m->cols, m->ncols, m->nrows) < 0)
		return fail(w, "pdf: bad chart data");
	for (size_t r = 0; r < m->nrows; r++)
		rmem_push(&p->data, rmem_row(m, r));
	return 0;
}

static double measure(struct pdf_out *w, int bold, const char *s)
{
	draw_font(w->mcr, &w->fonts, bold, CELL_PT);
	return draw_text_width(w->mcr, s);
}

/* A column's header as shown: money columns name their currency. */
static char *head_text(const struct pdf_out *w, const struct rcol *c)
{
	const char *n = rcol_label(c) ? rcol_label(c) : "";
	if (c->type == RCOL_MONEY && w->currency)
		return xasprintf("%s (%s)", n, w->currency);
	return xstrdup(n);
}

int pdf_out_table_begin(struct pdf_out *w, const char *title, const struct rcol *cols, size_t ncols, size_t max_rows)
{
	if (w->fe.failed)
		return -1;
	if (w->cur)
		return fail(w, "pdf: table_begin inside a table");
	if (ncols == 0)
		return fail(w, "pdf: a table needs at least one column");
	if (fflush(w->spool) == EOF)
		return fail(w, "pdf: cannot write the row spool: %s", strerror(errno));
	struct part *p = add_part(w, PART_TABLE);
	p->title = xstrdup(title ? title : "");
	p->cols = xcalloc(ncols, sizeof *p->cols);
	p->natw = xcalloc(ncols, sizeof *p->natw);
	p->minw = xcalloc(ncols, sizeof *p->minw);
	p->ncols = ncols;
	p->max_rows = max_rows ? max_rows : w->o.max_rows;
	for (size_t i = 0; i < ncols; i++) {
		p->cols[i] = cols[i];
		char *h = head_text(w, &cols[i]);
		p->cols[i].name = h;
		p->cols[i].label = NULL;
		/* a header wraps between words: its longest word is its minimum */
		draw_font(w->mcr, &w->fonts, 1, CELL_PT);
		p->minw[i] = draw_word_width(w->mcr, h);
		p->natw[i] = fmax(p->minw[i], fmin(measure(w, 1, h), 64.0)); /* longer headers wrap */
	}
	p->off = ftello(w->spool);
	if (p->off < 0)
		return fail(w, "pdf: cannot seek the row spool: %s", strerror(errno));
	w->cur = p;
	return 0;
}

int pdf_out_table_row(struct pdf_out *w, const struct rval *vals)
{
	char t[RVAL_NUMTEXT_MAX];
	if (w->fe.failed)
		return -1;
	struct part *p = w->cur;
	if (!p)
		return fail(w, "pdf: row outside a table");
	if (p->nrows >= p->max_rows) {
		p->dropped++;
		return 0;
	}
	buf_reset(&w->row);
	for (size_t i = 0; i < p->ncols; i++) {
		const struct rcol *c = &p->cols[i];
		uint8_t isnull = vals[i].null ? 1 : 0;
		buf_append(&w->row, &isnull, 1);
		if (isnull)
			continue;
		if (c->type == RCOL_TEXT) {
			size_t at = w->row.len;
			uint32_t len = 0;
			buf_append(&w->row, &len, sizeof len);
			rtext_clean(&w->row, vals[i].s, SPOOL_TEXT_MAX, RTEXT_NO_CTRL);
			len = (uint32_t)(w->row.len - at - sizeof len);
			memcpy(w->row.data + at, &len, sizeof len);
			if (p->natw[i] < NATW_MAX) {
				buf_append(&w->row, "", 1); /* a NUL to measure it; dropped below */
				double nw = measure(w, 0, w->row.data + at + sizeof len);
				buf_setlen(&w->row, w->row.len - 1);
				p->natw[i] = fmax(p->natw[i], nw);
				p->minw[i] = fmax(p->minw[i], fmin(nw, TEXT_MINW));
			}
		} else {
			if (c->type == RCOL_DECIMAL || c->type == RCOL_PERCENT)
				buf_append(&w->row, &vals[i].d, sizeof vals[i].d);
			else
				buf_append(&w->row, &vals[i].i, sizeof vals[i].i);
			rval_format(c, &vals[i], RFMT_DISPLAY, t, sizeof t);
			double nw = measure(w, 0, t);
			p->natw[i] = fmax(p->natw[i], nw);
			p->minw[i] = fmax(p->minw[i], nw); /* a number is never wrapped */
		}
	}
	if (fwrite(w->row.data, 1, w->row.len, w->spool) != w->row.len)
		return fail(w, "pdf: cannot write the row spool: %s", strerror(errno));
	p->nrows++;
	return 0;
}

int pdf_out_table_end(struct pdf_out *w)
{
	if (w->fe.failed)
		return -1;
	if (!w->cur)
		return fail(w, "pdf: table_end without table_begin");
	w->cur = NULL;
	return 0;
}

const char *pdf_out_error(const struct pdf_out *w)
{
	return w->fe.failed ? w->fe.msg : "";
}

/* ------------------------------------------------------------- layout */

struct lay {
	struct pdf_out *w;
	cairo_t *cr;
	cairo_surface_t *surf;
	double x0, x1, top, bottom, y;
	double pw, ph;      /* this page's size (portrait or landscape) */
	int landscape;      /* the orientation of the page being drawn */
	int want_landscape; /* the part being drawn needs landscape pages */
	int page, total;
};

static void header(struct lay *L)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	draw_rgb(cr, 0x111111);
	draw_font(cr, &w->fonts, 0, 9);
	double pw = draw_text_width(cr, w->period);
	draw_font(cr, &w->fonts, 1, 13);
	draw_text(cr, L->x0, MARGIN + 12, AL_LEFT, L->x1 - L->x0 - pw - 16, w->title);
	draw_font(cr, &w->fonts, 0, 9);
	draw_rgb(cr, 0x444444);
	draw_text(cr, L->x1, MARGIN + 12, AL_RIGHT, 0, w->period);
	double rule = MARGIN + 19;
	if (w->subtitle || w->currency) {
		char sub[600];
		snprintf(sub, sizeof sub, "%s%s%s%s", w->subtitle ? w->subtitle : "",
			 w->subtitle && w->currency ? "  \xC2\xB7  " : "", w->currency ? "Amounts in " : "",
			 w->currency ? w->currency : "");
		draw_font(cr, &w->fonts, 0, 9);
		draw_rgb(cr, 0x222222);
		draw_text(cr, L->x0, MARGIN + 25, AL_LEFT, L->x1 - L->x0, sub);
		rule = MARGIN + 31;
	}
	cairo_set_line_width(cr, 0.8);
	draw_rgb(cr, 0x0072B2);
	cairo_move_to(cr, L->x0, rule);
	cairo_line_to(cr, L->x1, rule);
	cairo_stroke(cr);
}

static void footer(struct lay *L)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[64];
	double y = L->ph - MARGIN;
	cairo_set_line_width(cr, 0.4);
	draw_rgb(cr, 0x999999);
	cairo_move_to(cr, L->x0, y - 12);
	cairo_line_to(cr, L->x1, y - 12);
	cairo_stroke(cr);
	draw_font(cr, &w->fonts, 0, 7.5);
	draw_rgb(cr, 0x444444);
	if (w->generated)
		draw_text(cr, L->x0, y - 2, AL_LEFT, (L->x1 - L->x0) * 0.6, w->generated);
	snprintf(t, sizeof t, "page %d / %d", L->page, L->total > 0 ? L->total : L->page);
	draw_text(cr, L->x1, y - 2, AL_RIGHT, 0, t);
}

/* Finish the page (if any) and start the next one, landscape or not. */
static void new_page_as(struct lay *L, int landscape)
{
	struct pdf_out *w = L->w;
	if (L->page > 0) {
		footer(L);
		cairo_show_page(L->cr);
	}
	L->landscape = landscape;
	L->pw = landscape ? w->H : w->W;
	L->ph = landscape ? w->W : w->H;
	cairo_pdf_surface_set_size(L->surf, L->pw, L->ph);
	L->x0 = MARGIN;
	L->x1 = L->pw - MARGIN;
	L->top = MARGIN + ((w->subtitle || w->currency) ? 42 : 30);
	L->bottom = L->ph - MARGIN - 20;
	L->page++;
	header(L);
	L->y = L->top;
}

static void new_page(struct lay *L)
{
	new_page_as(L, L->landscape || L->want_landscape);
}

/* Start a new page unless h more points fit on this one. */
static void need(struct lay *L, double h)
{
	if (L->y + h > L->bottom && L->y > L->top)
		new_page(L);
}

static void kpis(struct lay *L, const struct part *p)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[RVAL_NUMTEXT_MAX + 16];
	double tw = (L->x1 - L->x0 - KPI_GAP * (KPI_PER_ROW - 1)) / KPI_PER_ROW;
	for (size_t i = 0; i < p->nkpis; i++) {
		size_t col = i % KPI_PER_ROW;
		if (col == 0) {
			if (i)
				L->y += KPI_H + KPI_GAP;
			need(L, KPI_H);
		}
		double x = L->x0 + (double)col * (tw + KPI_GAP), y = L->y;
		draw_rgb(cr, 0xF1F4F8);
		cairo_rectangle(cr, x, y, tw, KPI_H);
		cairo_fill(cr);
		draw_rgb(cr, draw_palette(i));
		cairo_rectangle(cr, x, y, 3, KPI_H);
		cairo_fill(cr);
		const struct rkpi *k = &p->kpis[i];
		draw_rgb(cr, 0x555555);
		draw_font(cr, &w->fonts, 0, 7.5);
		/* a long label (a percentage with its definition) wraps to a second line */
		if (draw_text_width(cr, k->col.name) <= tw - 16)
			draw_text(cr, x + 10, y + 15, AL_LEFT, 0, k->col.name);
		else {
			draw_font(cr, &w->fonts, 0, 6.5);
			draw_text_wrapped(cr, x + 10, y + 4, tw - 16, AL_LEFT, k->col.name, 1);
		}
		const char *v = t;
		if (k->col.type == RCOL_TEXT) {
			v = k->value.null ? "" : k->value.s;
		} else {
			size_t n = rval_format(&k->col, &k->value, RFMT_DISPLAY, t, sizeof t);
			if (k->col.type == RCOL_MONEY && w->currency && !k->value.null)
				snprintf(t + n, sizeof t - n, " %s", w->currency);
		}
		draw_rgb(cr, 0x111111);
		/* a long text tile (a status line) gets a smaller font, not an ellipsis */
		double pt = 16;
		draw_font(cr, &w->fonts, 1, pt);
		double vw = draw_text_width(cr, v);
		if (vw > tw - 16)
			pt = fmax(7.0, pt * (tw - 16) / vw);
		draw_font(cr, &w->fonts, 1, pt);
		if (pt > 7.0 || vw * pt / 16 <= tw - 16)
			draw_text(cr, x + 10, y + 38, AL_LEFT, 0, v);
		else
			draw_text_wrapped(cr, x + 10, y + 20, tw - 16, AL_LEFT, v, 1);
	}
	L->y += KPI_H + KPI_GAP * 1.5;
}

static int chart(struct lay *L, const struct part *p)
{
	char e[200];
	need(L, CHART_H);
	if (chart_draw(L->cr, &L->w->fonts, L->x0, L->y, L->x1 - L->x0, CHART_H, &p->chart, &p->data, e, sizeof e) < 0)
		return fail(L->w, "pdf: %s", e);
	L->y += CHART_H + 14;
	return 0;
}

/* Read one spooled row; text points into txt (ncols slots of
 * SPOOL_TEXT_MAX + 1 bytes). */
static int read_row(struct pdf_out *w, const struct part *p, struct rval *v, char *txt)
{
	for (size_t i = 0; i < p->ncols; i++) {
		uint8_t isnull;
		v[i] = rval_null();
		if (fread(&isnull, 1, 1, w->spool) != 1)
			return -1;
		if (isnull)
			continue;
		v[i].null = 0;
		if (p->cols[i].type == RCOL_TEXT) {
			uint32_t len;
			char *s = txt + i * (SPOOL_TEXT_MAX + 1);
			if (fread(&len, sizeof len, 1, w->spool) != 1 || len > SPOOL_TEXT_MAX ||
			    fread(s, 1, len, w->spool) != len)
				return -1;
			s[len] = '\0';
			v[i].s = s;
		} else if (p->cols[i].type == RCOL_DECIMAL || p->cols[i].type == RCOL_PERCENT) {
			if (fread(&v[i].d, sizeof v[i].d, 1, w->spool) != 1)
				return -1;
		} else if (fread(&v[i].i, sizeof v[i].i, 1, w->spool) != 1) {
			return -1;
		}
	}
	return 0;
}

/* How a table is laid out: its orientation, font size and column widths. */
struct tgeom {
	int landscape;
	double pt;  /* cell font size */
	double *cw; /* column widths including padding */
};

/* Widths for avail points at font scale k (pt / CELL_PT): every column at
 * least its minimum; text columns share what is left by how much more they
 * want.  Returns the width the minimums need. */
static double fit_widths(const struct part *p, double avail, double k, double *cw)
{
	double sum_min = 0, sum_nat = 0, want = 0;
	for (size_t i = 0; i < p->ncols; i++) {
		sum_min += p->minw[i] * k + 2 * CELL_PAD;
		sum_nat += fmin(p->natw[i], NATW_MAX) * k + 2 * CELL_PAD;
	}
	if (sum_nat <= avail) { /* everything on one line: fill the width in proportion */
		for (size_t i = 0; i < p->ncols; i++)
			cw[i] = (fmin(p->natw[i], NATW_MAX) * k + 2 * CELL_PAD) * avail / sum_nat;
		return sum_min;
	}
	for (size_t i = 0; i < p->ncols; i++) {
		cw[i] = p->minw[i] * k + 2 * CELL_PAD;
		want += (fmin(p->natw[i], NATW_MAX) - p->minw[i]) * k;
	}
	if (sum_min > avail) { /* text wraps at any character: its columns give way, numbers keep their width */
		double num = 0, txt = 0;
		for (size_t i = 0; i < p->ncols; i++)
			*(p->cols[i].type == RCOL_TEXT ? &txt : &num) += cw[i];
		/* shrink the text columns in proportion, none below a floor: the
		 * ones the floor holds leave the rest to the others */
		double floor_w = TEXT_FLOOR_CH * CELL_PT * k + 2 * CELL_PAD, room = avail - num;
		int *held = xcalloc(p->ncols, sizeof *held);
		for (int changed = 1; changed;) {
			changed = 0;
			double free_txt = 0, free_room = room;
			for (size_t i = 0; i < p->ncols; i++)
				if (p->cols[i].type == RCOL_TEXT) {
					if (held[i])
						free_room -= floor_w;
					else
						free_txt += cw[i];
				}
			double f = free_txt > 0 ? fmax(free_room, 0) / free_txt : 1;
			for (size_t i = 0; i < p->ncols; i++)
				if (p->cols[i].type == RCOL_TEXT && !held[i] && cw[i] * f < floor_w) {
					held[i] = 1;
					changed = 1;
				}
			if (!changed)
				for (size_t i = 0; i < p->ncols; i++)
					if (p->cols[i].type == RCOL_TEXT)
						cw[i] = held[i] ? floor_w : cw[i] * f;
		}
		free(held);
		return sum_min;
	}
	/* the room left goes to the text first (a wrapped cell costs a taller
	 * row; a wrapped header only the header row), then to the others */
	double extra = avail - sum_min, want_txt = 0;
	for (size_t i = 0; i < p->ncols; i++)
		if (p->cols[i].type == RCOL_TEXT)
			want_txt += (fmin(p->natw[i], NATW_MAX) - p->minw[i]) * k;
	for (int pass = 0; pass < 2 && extra > 0; pass++) {
		double wnt = pass == 0 ? want_txt : want - want_txt, used = 0;
		if (wnt <= 0)
			continue;
		double f = fmin(1.0, extra / wnt);
		for (size_t i = 0; i < p->ncols; i++)
			if ((p->cols[i].type == RCOL_TEXT) == (pass == 0)) {
				double add = (fmin(p->natw[i], NATW_MAX) - p->minw[i]) * k * f;
				cw[i] += add;
				used += add;
			}
		extra -= used;
	}
	return sum_min;
}

static void geometry(const struct pdf_out *w, const struct part *p, struct tgeom *g)
{
	double port = w->W - 2 * MARGIN, land = w->H - 2 * MARGIN;
	g->cw = xcalloc(p->ncols, sizeof *g->cw);
	g->pt = CELL_PT;
	g->landscape = 0;
	if (fit_widths(p, port, 1.0, g->cw) <= port)
		return;
	g->landscape = 1;
	double need_w = fit_widths(p, land, 1.0, g->cw);
	if (need_w <= land)
		return;
	/* too wide even in landscape: a smaller font (the widths scale with it) */
	double k = fmax(CELL_PT_MIN / CELL_PT, land / need_w);
	g->pt = CELL_PT * k;
	fit_widths(p, land, k, g->cw);
}

/* Height of one row: the tallest wrapped cell. */
static double row_height(struct lay *L, const struct part *p, const struct tgeom *g, const struct rval *v,
			 int is_head)
{
	double h = ROW_H * g->pt / CELL_PT;
	draw_font(L->cr, &L->w->fonts, is_head, g->pt);
	for (size_t i = 0; i < p->ncols; i++) {
		const char *s = is_head ? p->cols[i].name : p->cols[i].type == RCOL_TEXT && !v[i].null ? v[i].s : NULL;
		if (!s || !*s)
			continue;
		double room = g->cw[i] - 2 * CELL_PAD;
		/* cheap test first: every character narrower than the font size */
		if ((double)strlen(s) * g->pt <= room && !strchr(s, '\n'))
			continue;
		double th = draw_text_wrapped(L->cr, 0, 0, room, AL_LEFT, s, 0) + 4;
		if (th > h)
			h = th;
	}
	return h;
}

static void draw_cell(struct lay *L, double x, double y, double cw, const struct tgeom *g, int right, const char *s)
{
	double room = cw - 2 * CELL_PAD, lh = ROW_H * g->pt / CELL_PT;
	int one = !strchr(s, '\n') && ((double)strlen(s) * g->pt <= room || draw_text_width(L->cr, s) <= room);
	if (one) { /* on the first line's baseline */
		draw_text(L->cr, right ? x + cw - CELL_PAD : x + CELL_PAD, y + lh - 3.5 * g->pt / CELL_PT,
			  right ? AL_RIGHT : AL_LEFT, 0, s);
		return;
	}
	draw_text_wrapped(L->cr, x + CELL_PAD, y + 2, room, right ? AL_RIGHT : AL_LEFT, s, 1);
}

static void table_head(struct lay *L, const struct part *p, const struct tgeom *g, int cont)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[512];
	snprintf(t, sizeof t, "%s%s", p->title, cont ? " (continued)" : "");
	draw_rgb(cr, 0x111111);
	draw_font(cr, &w->fonts, 1, 10.5);
	draw_text(cr, L->x0, L->y + 12, AL_LEFT, L->x1 - L->x0, t);
	L->y += TITLE_H;
	double hh = row_height(L, p, g, NULL, 1) + 1;
	draw_rgb(cr, 0xD9DEE5);
	cairo_rectangle(cr, L->x0, L->y, L->x1 - L->x0, hh);
	cairo_fill(cr);
	draw_rgb(cr, 0x111111);
	draw_font(cr, &w->fonts, 1, g->pt);
	double x = L->x0;
	for (size_t i = 0; i < p->ncols; i++) {
		draw_cell(L, x, L->y, g->cw[i], g, rcol_is_numeric(p->cols[i].type), p->cols[i].name);
		x += g->cw[i];
	}
	L->y += hh;
}

/* Draw view p (a part whose columns are full's columns map[0..p->ncols))
 * from full's spooled rows. */
static int table_view(struct lay *L, const struct part *full, const struct part *p, const size_t *map)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[RVAL_NUMTEXT_MAX];
	struct tgeom g;
	geometry(w, p, &g);
	struct rval *fv = xcalloc(full->ncols, sizeof *fv), *v = xcalloc(p->ncols, sizeof *v);
	char *txt = xmalloc(full->ncols * (SPOOL_TEXT_MAX + 1));
	int rc = 0;
	if (fseeko(w->spool, full->off, SEEK_SET) != 0) {
		rc = fail(w, "pdf: cannot seek the row spool: %s", strerror(errno));
		goto out;
	}
	if (g.landscape && !L->landscape)
		new_page_as(L, 1); /* (an empty page was already started landscape: render() looks ahead) */
	double avail = L->x1 - L->x0;
	need(L, TITLE_H + 3 * ROW_H);
	table_head(L, p, &g, 0);
	for (uint64_t r = 0; r < p->nrows; r++) {
		if (read_row(w, full, fv, txt) < 0) {
			rc = fail(w, "pdf: cannot read the row spool");
			goto out;
		}
		for (size_t i = 0; i < p->ncols; i++)
			v[i] = fv[map[i]];
		double rh = row_height(L, p, &g, v, 0);
		if (L->y + rh > L->bottom) {
			new_page(L);
			table_head(L, p, &g, 1);
		}
		if (r % 2) {
			draw_rgb(cr, 0xF5F6F8);
			cairo_rectangle(cr, L->x0, L->y, avail, rh);
			cairo_fill(cr);
		}
		draw_rgb(cr, 0x111111);
		draw_font(cr, &w->fonts, 0, g.pt);
		double x = L->x0;
		for (size_t i = 0; i < p->ncols; i++) {
			const char *s = t;
			if (p->cols[i].type == RCOL_TEXT)
				s = v[i].null ? "" : v[i].s;
			else
				rval_format(&p->cols[i], &v[i], RFMT_DISPLAY, t, sizeof t);
			if (*s)
				draw_cell(L, x, L->y, g.cw[i], &g, rcol_is_numeric(p->cols[i].type), s);
			x += g.cw[i];
		}
		L->y += rh;
	}
	cairo_set_line_width(cr, 0.6);
	draw_rgb(cr, 0x888888);
	cairo_move_to(cr, L->x0, L->y);
	cairo_line_to(cr, L->x1, L->y);
	cairo_stroke(cr);
	if (p->nrows == 0 || p->dropped) {
		char note[160];
		if (p->nrows == 0)
			snprintf(note, sizeof note, "(no rows)");
		else
			snprintf(note, sizeof note, "%" PRIu64 " more rows are not shown here; the CSV and XLSX exports have every row",
				 p->dropped);
		need(L, ROW_H + 4);
		draw_font(cr, &w->fonts, 0, CELL_PT);
		draw_rgb(cr, 0x555555);
		draw_text(cr, L->x0, L->y + ROW_H, AL_LEFT, 0, note);
		L->y += ROW_H;
	}
	L->y += 16;
out:
	free(g.cw);
	free(fv);
	free(v);
	free(txt);
	return rc;
}


/* Columns [a, b) plus the first column (the row's key) when a > 0, as a
 * view of p titled "<title> (columns a+1-b of n)". */
static void make_view(const struct part *p, size_t a, size_t b, struct part *q, size_t *map)
{
	*q = *p;
	size_t m = 0;
	if (a > 0)
		map[m++] = 0;
	for (size_t i = a; i < b; i++)
		map[m++] = i;
	q->ncols = m;
	q->cols = xcalloc(m, sizeof *q->cols);
	q->natw = xcalloc(m, sizeof *q->natw);
	q->minw = xcalloc(m, sizeof *q->minw);
	for (size_t i = 0; i < m; i++) {
		q->cols[i] = p->cols[map[i]];
		q->natw[i] = p->natw[map[i]];
		q->minw[i] = p->minw[map[i]];
	}
	q->title = xasprintf("%s (columns %zu\xE2\x80\x93%zu of %zu)", p->title, a + 1, b, p->ncols);
}

static void free_view(struct part *q)
{
	free(q->cols);
	free(q->natw);
	free(q->minw);
	free(q->title);
}

/* The minimum width (at the smallest font) of view [a, b) of p. */
static double view_min(const struct part *p, size_t a, size_t b)
{
	double k = CELL_PT_MIN / CELL_PT, sum = 0;
	for (size_t i = a; i < b; i++)
		sum += (p->cols[i].type == RCOL_TEXT ? fmin(p->minw[i], TEXT_FLOOR_CH * CELL_PT) : p->minw[i]) * k + 2 * CELL_PAD;
	if (a > 0)
		sum += view_min(p, 0, 1);
	return sum;
}

/* A table: as one block when its columns fit a landscape page at the
 * smallest font, else in groups of columns (each repeating the first
 * column), one after the other: nothing is cut. */
static int table(struct lay *L, const struct part *p)
{
	double land = L->w->H - 2 * MARGIN;
	size_t *map = xcalloc(p->ncols + 1, sizeof *map);
	int rc = 0;
	if (view_min(p, 0, p->ncols) <= land) {
		for (size_t i = 0; i < p->ncols; i++)
			map[i] = i;
		rc = table_view(L, p, p, map);
		free(map);
		return rc;
	}
	for (size_t a = 0; a < p->ncols && rc == 0;) {
		size_t b = a + 1;
		while (b < p->ncols && view_min(p, a, b + 1) <= land)
			b++;
		struct part q;
		make_view(p, a, b, &q, map);
		L->want_landscape = 1;
		rc = table_view(L, p, &q, map);
		free_view(&q);
		a = b;
	}
	free(map);
	return rc;
}

/* Does this part need landscape pages (a table too wide for portrait)? */
static int part_landscape(const struct pdf_out *w, const struct part *p)
{
	if (p->kind != PART_TABLE)
		return 0;
	struct tgeom g;
	geometry(w, p, &g);
	free(g.cw);
	return g.landscape;
}

static int render(struct pdf_out *w, cairo_surface_t *s, int total, int *pages)
{
	struct lay L;
	memset(&L, 0, sizeof L);
	L.w = w;
	L.cr = cairo_create(s);
	L.surf = s;
	L.total = total;
	int rc = 0;
	L.want_landscape = w->nparts && part_landscape(w, &w->parts[0]);
	new_page_as(&L, L.want_landscape);
	for (size_t i = 0; i < w->nparts && rc == 0; i++) {
		const struct part *p = &w->parts[i];
		L.want_landscape = part_landscape(w, p);
		if (p->kind == PART_KPIS)
			kpis(&L, p);
		else if (p->kind == PART_CHART)
			rc = chart(&L, p);
		else
			rc = table(&L, p);
	}
	footer(&L);
	cairo_show_page(L.cr);
	*pages = L.page;
	if (rc == 0 && cairo_status(L.cr) != CAIRO_STATUS_SUCCESS)
		rc = fail(w, "pdf: drawing failed: %s", cairo_status_to_string(cairo_status(L.cr)));
	cairo_destroy(L.cr);
	return rc;
}

static cairo_status_t discard(void *closure, const unsigned char *data, unsigned int len)
{
	(void)closure;
	(void)data;
	(void)len;
	return CAIRO_STATUS_SUCCESS;
}

static int finish(cairo_surface_t *s, struct pdf_out *w, const char *what)
{
	cairo_surface_finish(s);
	cairo_status_t st = cairo_surface_status(s);
	cairo_surface_destroy(s);
	if (st != CAIRO_STATUS_SUCCESS)
		return fail(w, "pdf: cannot write %s: %s", what, cairo_status_to_string(st));
	return 0;
}

static int write_pdf(struct pdf_out *w, int *pages)
{
	int counted = 0;
	if (w->cur)
		return fail(w, "pdf: closed inside a table");
	if (fflush(w->spool) == EOF)
		return fail(w, "pdf: cannot write the row spool: %s", strerror(errno));
	/* pass 1: the same layout into nowhere, to learn the page count */
	cairo_surface_t *s = cairo_pdf_surface_create_for_stream(discard, NULL, w->W, w->H);
	int rc = render(w, s, 0, &counted);
	if (finish(s, w, "(counting pass)") < 0 || rc < 0)
		return -1;
	/* pass 2: for real */
	s = cairo_pdf_surface_create(w->tmppath, w->W, w->H);
	if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
		cairo_surface_destroy(s);
		return fail(w, "pdf: cannot create \"%s\"", w->tmppath);
	}
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, w->title);
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_SUBJECT, w->period);
	cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "cdrflow");
	rc = render(w, s, counted, pages);
	if (finish(s, w, w->tmppath) < 0 || rc < 0) {
		unlink(w->tmppath);
		return -1;
	}
	if (*pages != counted) {
		unlink(w->tmppath);
		return fail(w, "pdf: layout is not deterministic (%d pages, then %d)", counted, *pages);
	}
	if (rename(w->tmppath, w->path) != 0) {
		fail(w, "pdf: cannot rename \"%s\" to \"%s\": %s", w->tmppath, w->path, strerror(errno));
		unlink(w->tmppath);
		return -1;
	}
	return 0;
}

int pdf_out_close(struct pdf_out *w, int *pages, char *err, size_t errlen)
{
	int n = 0;
	if (!w)
		return 0;
	if (!w->fe.failed)
		write_pdf(w, &n);
	if (pages)
		*pages = n;
	int rc = w->fe.failed ? -1 : 0;
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", w->fe.msg);
	for (size_t i = 0; i < w->nparts; i++) {
		struct part *p = &w->parts[i];
		for (size_t k = 0; k < p->nkpis; k++) {
			free((char *)p->kpis[k].col.name);
			free((char *)p->kpis[k].value.s);
		}
		free(p->kpis);
		free((char *)p->chart.title);
		free((char *)p->chart.y_title);
		if (p->kind == PART_CHART)
			rmem_release(&p->data);
		for (size_t k = 0; k < p->ncols; k++)
			free((char *)p->cols[k].name);
		free(p->cols);
		free(p->natw);
		free(p->minw);
		free(p->title);
	}
	free(w->parts);
	fclose(w->spool);
	cairo_destroy(w->mcr);
	cairo_surface_destroy(w->msurf);
	rfonts_release(&w->fonts);
	buf_release(&w->row);
	free(w->path);
	free(w->tmppath);
	free(w->title);
	free(w->period);
	free(w->generated);
	free(w->subtitle);
	free(w->currency);
	free(w);
	return rc;
}

/* ------------------------------------------------------------- rsink glue */

static int s_kpis(void *w, const struct rkpi *k, size_t n) { return pdf_out_kpis(w, k, n); }
static int s_chart(void *w, const struct rchart *c, const struct rmem *m) { return pdf_out_chart(w, c, m); }
static int s_begin(void *w, const char *t, const struct rcol *c, size_t n, size_t max_rows)
{
	return pdf_out_table_begin(w, t, c, n, max_rows);
}
static int s_row(void *w, const struct rval *v) { return pdf_out_table_row(w, v); }
static int s_end(void *w) { return pdf_out_table_end(w); }
static const char *s_error(void *w) { return pdf_out_error(w); }
static int s_close(void *w, char *err, size_t errlen) { return pdf_out_close(w, NULL, err, errlen); }

static const struct rsink_ops pdf_ops = {
	"pdf", s_kpis, s_chart, s_begin, s_row, s_end, s_error, s_close,
};

struct rsink pdf_out_sink(struct pdf_out *w)
{
	struct rsink s = { &pdf_ops, w };
	return s;
}

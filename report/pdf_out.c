/*
 * pdf_out.c - record the parts, spool the rows, lay out twice at close.
 */
#include "pdf_out.h"

#include <cairo-pdf.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "chart.h"
#include "draw.h"
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
#define SPOOL_TEXT_MAX 400   /* bytes of a text cell kept for the PDF */
#define NATW_MAX 260.0       /* a single column never asks for more */

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
	double *natw;      /* natural width per column, points */
	uint64_t nrows, dropped;
	off_t off;         /* first row in the spool */
};

struct pdf_out {
	char *path, *tmppath;
	char *title, *period, *generated;
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
	int failed;
	char err[256];
};

__attribute__((format(printf, 2, 3))) static int fail(struct pdf_out *w, const char *fmt, ...)
{
	if (!w->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof w->err, fmt, ap);
		va_end(ap);
		w->failed = 1;
	}
	return -1;
}

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
	if (w->failed)
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
		p->kpis[i].col.name = xstrdup(k[i].col.name ? k[i].col.name : "");
		p->kpis[i].value.s = k[i].col.type == RCOL_TEXT && !k[i].value.null ? xstrdup(k[i].value.s) : NULL;
	}
	return 0;
}

int pdf_out_chart(struct pdf_out *w, const struct rchart *c, const struct rmem *m)
{
	char e[200];
	if (w->failed)
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

int pdf_out_table_begin(struct pdf_out *w, const char *title, const struct rcol *cols, size_t ncols)
{
	if (w->failed)
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
	p->ncols = ncols;
	for (size_t i = 0; i < ncols; i++) {
		p->cols[i] = cols[i];
		p->cols[i].name = xstrdup(cols[i].name ? cols[i].name : "");
		p->natw[i] = measure(w, 1, p->cols[i].name);
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
	if (w->failed)
		return -1;
	struct part *p = w->cur;
	if (!p)
		return fail(w, "pdf: row outside a table");
	if (p->nrows >= w->o.max_rows) {
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
			if (p->natw[i] < NATW_MAX)
				p->natw[i] = fmax(p->natw[i], measure(w, 0, w->row.data + at + sizeof len));
		} else {
			if (c->type == RCOL_DECIMAL || c->type == RCOL_PERCENT)
				buf_append(&w->row, &vals[i].d, sizeof vals[i].d);
			else
				buf_append(&w->row, &vals[i].i, sizeof vals[i].i);
			rval_format(c, &vals[i], RFMT_DISPLAY, t, sizeof t);
			if (p->natw[i] < NATW_MAX)
				p->natw[i] = fmax(p->natw[i], measure(w, 0, t));
		}
	}
	if (fwrite(w->row.data, 1, w->row.len, w->spool) != w->row.len)
		return fail(w, "pdf: cannot write the row spool: %s", strerror(errno));
	p->nrows++;
	return 0;
}

int pdf_out_table_end(struct pdf_out *w)
{
	if (w->failed)
		return -1;
	if (!w->cur)
		return fail(w, "pdf: table_end without table_begin");
	w->cur = NULL;
	return 0;
}

const char *pdf_out_error(const struct pdf_out *w)
{
	return w->failed ? w->err : "";
}

/* ------------------------------------------------------------- layout */

struct lay {
	struct pdf_out *w;
	cairo_t *cr;
	double x0, x1, top, bottom, y;
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
	cairo_set_line_width(cr, 0.8);
	draw_rgb(cr, 0x0072B2);
	cairo_move_to(cr, L->x0, MARGIN + 19);
	cairo_line_to(cr, L->x1, MARGIN + 19);
	cairo_stroke(cr);
}

static void footer(struct lay *L)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[64];
	double y = w->H - MARGIN;
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

static void new_page(struct lay *L)
{
	if (L->page > 0) {
		footer(L);
		cairo_show_page(L->cr);
	}
	L->page++;
	header(L);
	L->y = L->top;
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
	char t[RVAL_NUMTEXT_MAX];
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
		draw_text(cr, x + 10, y + 15, AL_LEFT, tw - 16, k->col.name);
		const char *v = t;
		if (k->col.type == RCOL_TEXT)
			v = k->value.null ? "" : k->value.s;
		else
			rval_format(&k->col, &k->value, RFMT_DISPLAY, t, sizeof t);
		draw_rgb(cr, 0x111111);
		draw_font(cr, &w->fonts, 1, 16);
		draw_text(cr, x + 10, y + 38, AL_LEFT, tw - 16, v);
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

static void table_head(struct lay *L, const struct part *p, const double *cw, int cont)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[512];
	snprintf(t, sizeof t, "%s%s", p->title, cont ? " (continued)" : "");
	draw_rgb(cr, 0x111111);
	draw_font(cr, &w->fonts, 1, 10.5);
	draw_text(cr, L->x0, L->y + 12, AL_LEFT, L->x1 - L->x0, t);
	L->y += TITLE_H;
	draw_rgb(cr, 0xD9DEE5);
	cairo_rectangle(cr, L->x0, L->y, L->x1 - L->x0, ROW_H + 1);
	cairo_fill(cr);
	draw_rgb(cr, 0x111111);
	draw_font(cr, &w->fonts, 1, CELL_PT);
	double x = L->x0;
	for (size_t i = 0; i < p->ncols; i++) {
		int right = rcol_is_numeric(p->cols[i].type);
		draw_text(cr, right ? x + cw[i] - CELL_PAD : x + CELL_PAD, L->y + ROW_H - 3.5, right ? AL_RIGHT : AL_LEFT,
			  cw[i] - 2 * CELL_PAD, p->cols[i].name);
		x += cw[i];
	}
	L->y += ROW_H + 1;
}

static int table(struct lay *L, const struct part *p)
{
	cairo_t *cr = L->cr;
	struct pdf_out *w = L->w;
	char t[RVAL_NUMTEXT_MAX];
	double avail = L->x1 - L->x0, sum = 0;
	double *cw = xcalloc(p->ncols, sizeof *cw);
	for (size_t i = 0; i < p->ncols; i++)
		sum += (cw[i] = fmin(p->natw[i], NATW_MAX) + 2 * CELL_PAD);
	for (size_t i = 0; i < p->ncols; i++)
		cw[i] *= avail / sum; /* fill the width: grow or shrink in proportion */
	struct rval *v = xcalloc(p->ncols, sizeof *v);
	char *txt = xmalloc(p->ncols * (SPOOL_TEXT_MAX + 1));
	int rc = 0;
	if (fseeko(w->spool, p->off, SEEK_SET) != 0) {
		rc = fail(w, "pdf: cannot seek the row spool: %s", strerror(errno));
		goto out;
	}
	need(L, TITLE_H + 3 * ROW_H);
	table_head(L, p, cw, 0);
	for (uint64_t r = 0; r < p->nrows; r++) {
		if (read_row(w, p, v, txt) < 0) {
			rc = fail(w, "pdf: cannot read the row spool");
			goto out;
		}
		if (L->y + ROW_H > L->bottom) {
			new_page(L);
			table_head(L, p, cw, 1);
		}
		if (r % 2) {
			draw_rgb(cr, 0xF5F6F8);
			cairo_rectangle(cr, L->x0, L->y, avail, ROW_H);
			cairo_fill(cr);
		}
		draw_rgb(cr, 0x111111);
		draw_font(cr, &w->fonts, 0, CELL_PT);
		double x = L->x0;
		for (size_t i = 0; i < p->ncols; i++) {
			const char *s = t;
			if (p->cols[i].type == RCOL_TEXT)
				s = v[i].null ? "" : v[i].s;
			else
				rval_format(&p->cols[i], &v[i], RFMT_DISPLAY, t, sizeof t);
			int right = rcol_is_numeric(p->cols[i].type);
			if (*s)
				draw_text(cr, right ? x + cw[i] - CELL_PAD : x + CELL_PAD, L->y + ROW_H - 3.5,
					  right ? AL_RIGHT : AL_LEFT, cw[i] - 2 * CELL_PAD, s);
			x += cw[i];
		}
		L->y += ROW_H;
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
		draw_text(cr, L->x0, L->y + ROW_H, AL_LEFT, avail, note);
		L->y += ROW_H;
	}
	L->y += 16;
out:
	free(cw);
	free(v);
	free(txt);
	return rc;
}

static int render(struct pdf_out *w, cairo_surface_t *s, int total, int *pages)
{
	struct lay L = { w, cairo_create(s), MARGIN, w->W - MARGIN, MARGIN + 30, w->H - MARGIN - 20, 0, 0, total };
	int rc = 0;
	new_page(&L);
	for (size_t i = 0; i < w->nparts && rc == 0; i++) {
		const struct part *p = &w->parts[i];
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
	if (!w->failed)
		write_pdf(w, &n);
	if (pages)
		*pages = n;
	int rc = w->failed ? -1 : 0;
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", w->err);
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
	free(w);
	return rc;
}

/* ------------------------------------------------------------- rsink glue */

static int s_kpis(void *w, const struct rkpi *k, size_t n) { return pdf_out_kpis(w, k, n); }
static int s_chart(void *w, const struct rchart *c, const struct rmem *m) { return pdf_out_chart(w, c, m); }
static int s_begin(void *w, const char *t, const struct rcol *c, size_t n) { return pdf_out_table_begin(w, t, c, n); }
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

/*
 * xlsx_out.c - typed cells, formats and native charts via libxlsxwriter.
 *
 * libxlsxwriter owns everything it creates (sheets, formats, charts) and
 * frees it in workbook_close(); we only keep pointers.
 */
#include "xlsx_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xlsxwriter.h>

#include "errmsg.h"
#include "xalloc.h"

#define XLSX_CELL_MAX 32767   /* Excel's limit on one cell's text */
#define WIDTH_MIN 6
#define WIDTH_MAX 60
#define SUMMARY "Summary"
#define CHART_ROWS 17         /* rows a default 480x288 px chart covers, plus a gap */
#define CHART_COL 5           /* charts sit from column F */

struct xlsx_out {
	lxw_workbook *wb;
	struct xlsx_out_opts o;
	lxw_format *f_title, *f_header, *f_label;
	lxw_format *fmt[RCOL_PERCENT + 1][RCOL_MAX_SCALE + 1];

	lxw_worksheet *summary;
	lxw_row_t srow;              /* next free Summary row */
	size_t swidth[CHART_COL];    /* Summary column widths, in characters */

	/* the current table */
	lxw_worksheet *ws;
	struct rcol *cols;           /* owned, names owned */
	size_t ncols;
	char *title;                 /* owned: base sheet name */
	unsigned part;               /* 1, 2, ... for continuation sheets */
	lxw_row_t row;               /* next row on ws */
	size_t *width;               /* per column, characters */
	int in_table;

	struct buf cell;
	struct buf esc; /* the cell as written: "_xHHHH_" escaped */
	struct first_err fe; /* the first error, kept */
};

/* the first error is kept (errmsg.h) */
#define fail(w, ...) first_err_set(&(w)->fe, __VA_ARGS__)

static int lxw_check(struct xlsx_out *w, lxw_error e, const char *what)
{
	return e == LXW_NO_ERROR ? 0 : fail(w, "xlsx: %s: %s", what, lxw_strerror(e));
}

static lxw_format *num_format(struct xlsx_out *w, const struct rcol *c)
{
	int s = c->scale < 0 ? 0 : c->scale > RCOL_MAX_SCALE ? RCOL_MAX_SCALE : c->scale;
	if (c->type == RCOL_TEXT)
		return NULL;
	if (c->type == RCOL_INT || c->type == RCOL_TIMESTAMP || c->type == RCOL_DURATION)
		s = 0; /* scale means nothing to them: one format each */
	lxw_format **slot = &w->fmt[c->type][s];
	if (*slot)
		return *slot;
	char f[64], zeros[RCOL_MAX_SCALE + 2] = ".";
	memset(zeros + 1, '0', (size_t)s);
	zeros[s + 1] = '\0';
	const char *dec = s ? zeros : "";
	switch (c->type) {
	case RCOL_INT: snprintf(f, sizeof f, "0"); break;
	case RCOL_MONEY: snprintf(f, sizeof f, "#,##0%s", dec); break;
	case RCOL_DECIMAL: snprintf(f, sizeof f, "0%s", dec); break;
	case RCOL_PERCENT: snprintf(f, sizeof f, "0%s%%", dec); break;
	case RCOL_TIMESTAMP: snprintf(f, sizeof f, "yyyy-mm-dd hh:mm:ss"); break;
	case RCOL_DURATION: snprintf(f, sizeof f, "[h]:mm:ss"); break;
	case RCOL_TEXT: return NULL;
	}
	*slot = workbook_add_format(w->wb);
	if (*slot)
		format_set_num_format(*slot, f);
	return *slot;
}

/* Write a string cell: valid UTF-8, literal "_xHHHH_" escaped (ECMA-376),
 * never a formula and never altered otherwise (no injection guard: a
 * string cell is not evaluated). */
static lxw_error put_string(struct xlsx_out *w, lxw_worksheet *ws, lxw_row_t r, lxw_col_t col, const char *s,
			   lxw_format *f)
{
	struct buf b;
	buf_init(&b, 0);
	rtext_clean(&b, s ? s : "", XLSX_CELL_MAX, 0);
	buf_reset(&w->esc);
	lxw_error e = rtext_xlsx_escape(&w->esc, b.data) < 0 ? LXW_ERROR_MEMORY_MALLOC_FAILED
							     : worksheet_write_string(ws, r, col, w->esc.data, f);
	buf_release(&b);
	return e;
}


struct xlsx_out *xlsx_out_new(const char *path, const struct rmeta *meta, const struct xlsx_out_opts *opts,
			      char *err, size_t errlen)
{
	struct xlsx_out *w = xcalloc(1, sizeof *w);
	if (opts)
		w->o = *opts;
	lxw_workbook_options wo = { 0 };
	wo.constant_memory = w->o.constant_memory ? LXW_TRUE : LXW_FALSE;
	wo.tmpdir = (char *)w->o.tmpdir;
	wo.use_zip64 = LXW_TRUE; /* a 10 M-row sheet is bigger than 4 GiB uncompressed */
	w->wb = workbook_new_opt(path, &wo);
	if (!w->wb) {
		snprintf(err, errlen, "xlsx: cannot create workbook \"%s\"", path);
		free(w);
		return NULL;
	}
	buf_init(&w->cell, 0);
	buf_init(&w->esc, 0);
	w->f_title = workbook_add_format(w->wb);
	w->f_header = workbook_add_format(w->wb);
	w->f_label = workbook_add_format(w->wb);
	w->summary = workbook_add_worksheet(w->wb, SUMMARY);
	if (!w->f_title || !w->f_header || !w->f_label || !w->summary) {
		snprintf(err, errlen, "xlsx: cannot set up workbook \"%s\"", path);
		workbook_close(w->wb); /* frees it; the half-made file is harmless */
		buf_release(&w->cell);
		buf_release(&w->esc);
		free(w);
		return NULL;
	}
	format_set_bold(w->f_title);
	format_set_font_size(w->f_title, 14);
	format_set_bold(w->f_header);
	format_set_bg_color(w->f_header, 0xD9D9D9);
	format_set_bottom(w->f_header, LXW_BORDER_THIN);
	format_set_bold(w->f_label);

	lxw_doc_properties props = { 0 };
	props.title = (char *)(meta && meta->title ? meta->title : "");
	props.subject = (char *)(meta && meta->period ? meta->period : "");
	props.comments = (char *)"cdrflow report";
	props.created = w->o.created;
	lxw_check(w, workbook_set_properties(w->wb, &props), "properties");

	if (meta && meta->title)
		lxw_check(w, put_string(w, w->summary, w->srow++, 0, meta->title, w->f_title), "title");
	if (meta && meta->period)
		lxw_check(w, put_string(w, w->summary, w->srow++, 0, meta->period, NULL), "period");
	if (meta && meta->generated)
		lxw_check(w, put_string(w, w->summary, w->srow++, 0, meta->generated, NULL), "generated");
	w->srow++;
	w->swidth[0] = 12;
	for (size_t i = 1; i < CHART_COL; i++)
		w->swidth[i] = 12;
	return w;
}

static void note_width(size_t *slot, size_t chars)
{
	if (chars > WIDTH_MAX)
		chars = WIDTH_MAX;
	if (chars > *slot)
		*slot = chars;
}

/* One typed cell.  Returns 0/-1; *chars gets its display width. */
static int write_cell(struct xlsx_out *w, lxw_worksheet *ws, lxw_row_t r, lxw_col_t col, const struct rcol *c,
		      const struct rval *v, size_t *chars)
{
	lxw_error e;
	*chars = 0;
	if (v->null)
		return 0;
	if (c->type == RCOL_TEXT) {
		buf_reset(&w->cell);
		if (rtext_clean(&w->cell, v->s, XLSX_CELL_MAX, 0) < 0)
			return fail(w, "xlsx: out of cell buffer");
		*chars = utf8_chars(w->cell.data);
		buf_reset(&w->esc);
		if (rtext_xlsx_escape(&w->esc, w->cell.data) < 0)
			return fail(w, "xlsx: out of cell buffer");
		e = worksheet_write_string(ws, r, col, w->esc.data, NULL);
	} else {
		char t[RVAL_NUMTEXT_MAX];
		*chars = rval_format(c, v, RFMT_DISPLAY, t, sizeof t) + (c->type == RCOL_MONEY ? 3 : 0);
		lxw_format *f = num_format(w, c);
		if (!f)
			return fail(w, "xlsx: cannot add a number format");
		if (c->type == RCOL_TIMESTAMP) {
			*chars = 19;
			e = worksheet_write_unixtime(ws, r, col, (int64_t)rval_number(c, v), f);
		} else {
			e = worksheet_write_number(ws, r, col, rval_number(c, v), f);
		}
	}
	return lxw_check(w, e, "write cell");
}

int xlsx_out_kpis(struct xlsx_out *w, const struct rkpi *k, size_t n)
{
	size_t chars;
	if (w->fe.failed)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *label = rcol_label(&k[i].col) ? rcol_label(&k[i].col) : "";
		if (lxw_check(w, put_string(w, w->summary, w->srow, 0, label, w->f_label), "kpi label") < 0 ||
		    write_cell(w, w->summary, w->srow, 1, &k[i].col, &k[i].value, &chars) < 0)
			return -1;
		note_width(&w->swidth[0], utf8_chars(label));
		note_width(&w->swidth[1], chars);
		w->srow++;
	}
	w->srow++;
	return 0;
}

static uint8_t chart_type(enum rchart_kind k)
{
	switch (k) {
	case RCHART_BAR: return LXW_CHART_COLUMN;
	case RCHART_LINE: return LXW_CHART_LINE;
	case RCHART_STACKED: return LXW_CHART_COLUMN_STACKED;
	case RCHART_DONUT: return LXW_CHART_DOUGHNUT;
	}
	return LXW_CHART_COLUMN;
}

int xlsx_out_chart(struct xlsx_out *w, const struct rchart *c, const struct rmem *m)
{
	char e[200];
	size_t chars;
	if (w->fe.failed)
		return -1;
	if (rchart_check(c, m, e, sizeof e) < 0)
		return fail(w, "%s", e);
	size_t nser = c->kind == RCHART_DONUT ? 1 : c->nseries;
	if (nser + 1 > CHART_COL)
		return fail(w, "xlsx: chart \"%s\": at most %d series", c->title ? c->title : "", CHART_COL - 1);
	/* the chart's texts in a row of their own (title, value-axis title):
	 * the chart refers to them, as to its series names, so they are cells
	 * (any text, "_xHHHH_" escaped, never a formula) and not DrawingML
	 * text runs, which cannot hold a control character and where a
	 * leading "=" would be taken for a reference */
	lxw_row_t rt = w->srow, r0 = rt + 1;
	int has_y = c->kind != RCHART_DONUT && c->y_title;
	if ((c->title && lxw_check(w, put_string(w, w->summary, rt, 0, c->title, w->f_label), "chart title") < 0) ||
	    (has_y && lxw_check(w, put_string(w, w->summary, rt, 1, c->y_title, w->f_label), "chart axis title") < 0))
		return -1;
	/* the data block: header, then one row per category */
	const struct rcol *cc = &m->cols[c->cat_col];
	if (lxw_check(w, put_string(w, w->summary, r0, 0, rcol_label(cc), w->f_header), "chart header") < 0)
		return -1;
	for (size_t s = 0; s < nser; s++) {
		const char *nm = rcol_label(&m->cols[c->series_cols[s]]);
		if (lxw_check(w, put_string(w, w->summary, r0, (lxw_col_t)(s + 1), nm, w->f_header),
			      "chart header") < 0)
			return -1;
		note_width(&w->swidth[s + 1], utf8_chars(nm) + 2);
	}
	for (size_t r = 0; r < m->nrows; r++) {
		const struct rval *row = rmem_row(m, r);
		lxw_row_t xr = (lxw_row_t)(r0 + 1 + r);
		if (write_cell(w, w->summary, xr, 0, cc, &row[c->cat_col], &chars) < 0)
			return -1;
		note_width(&w->swidth[0], chars);
		for (size_t s = 0; s < nser; s++) {
			size_t k = c->series_cols[s];
			if (write_cell(w, w->summary, xr, (lxw_col_t)(s + 1), &m->cols[k], &row[k], &chars) < 0)
				return -1;
			note_width(&w->swidth[s + 1], chars);
		}
	}
	lxw_chart *ch = workbook_add_chart(w->wb, chart_type(c->kind));
	if (!ch)
		return fail(w, "xlsx: cannot add chart \"%s\"", c->title ? c->title : "");
	lxw_row_t rl = (lxw_row_t)(r0 + m->nrows);
	for (size_t s = 0; s < nser; s++) {
		lxw_chart_series *se = chart_add_series(ch, NULL, NULL);
		if (!se)
			return fail(w, "xlsx: cannot add chart series");
		lxw_col_t col = (lxw_col_t)(s + 1);
		chart_series_set_categories(se, SUMMARY, r0 + 1, 0, rl, 0);
		chart_series_set_values(se, SUMMARY, r0 + 1, col, rl, col);
		chart_series_set_name_range(se, SUMMARY, r0, col);
		chart_series_set_labels(se);
		if (c->kind == RCHART_DONUT) {
			chart_series_set_labels_options(se, LXW_FALSE, LXW_FALSE, LXW_TRUE);
			chart_series_set_labels_percentage(se);
		}
	}
	if (c->title)
		chart_title_set_name_range(ch, SUMMARY, rt, 0);
	chart_legend_set_position(ch, LXW_CHART_LEGEND_BOTTOM);
	if (c->kind != RCHART_DONUT) {
		if (has_y)
			chart_axis_set_name_range(ch->y_axis, SUMMARY, rt, 1);
		chart_axis_set_name_range(ch->x_axis, SUMMARY, r0, 0);
		/* counts: whole-number ticks (Excel would tick a 0..3 axis at 0.5) */
		int counts = 1;
		double top = 0;
		for (size_t s = 0; s < c->nseries; s++)
			counts &= m->cols[c->series_cols[s]].type == RCOL_INT;
		for (size_t r = 0; r < m->nrows; r++) {
			double stack = 0;
			for (size_t s = 0; s < c->nseries; s++) {
				const struct rcol *sc = &m->cols[c->series_cols[s]];
				double v = fabs(rval_chart_number(sc, &rmem_row(m, r)[c->series_cols[s]]));
				stack = c->kind == RCHART_STACKED ? stack + v : fmax(stack, v);
			}
			top = fmax(top, stack);
		}
		if (counts && top < 10)
			chart_axis_set_major_unit(ch->y_axis, 1);
	}
	if (lxw_check(w, worksheet_insert_chart(w->summary, rt, CHART_COL, ch), "insert chart") < 0)
		return -1;
	size_t used = m->nrows + 3;
	w->srow = (lxw_row_t)(rt + (used > CHART_ROWS ? used : CHART_ROWS));
	return 0;
}

/* Excel sheet names: at most 31 characters, none of []:*?/\ and unique. */
static int add_sheet(struct xlsx_out *w)
{
	char base[LXW_SHEETNAME_MAX * 4 + 1], name[sizeof base + 16];
	struct buf b;
	buf_init(&b, 0);
	rtext_clean(&b, w->title, 0, RTEXT_NO_CTRL);
	size_t o = 0, chars = 0;
	for (const char *p = b.data; *p && o + 4 < sizeof base; p++) {
		if ((*p & 0xC0) != 0x80 && ++chars > LXW_SHEETNAME_MAX - 6)
			break; /* stop on a character boundary, leave room for " (nn)" */
		char ch = strchr("[]:*?/\\", *p) ? '_' : *p;
		if (o == 0 && ch == '\'')
			ch = '_';
		base[o++] = ch;
	}
	base[o] = '\0';
	buf_release(&b);
	if (!*base)
		snprintf(base, sizeof base, "Table");
	for (unsigned n = 1;; n++) {
		unsigned k = n + w->part - 1;
		if (k == 1)
			snprintf(name, sizeof name, "%s", base);
		else
			snprintf(name, sizeof name, "%s (%u)", base, k);
		if (!workbook_get_worksheet_by_name(w->wb, name) && strcmp(name, SUMMARY) != 0)
			break;
		if (n > 1000)
			return fail(w, "xlsx: no free sheet name for \"%s\"", w->title);
	}
	w->ws = workbook_add_worksheet(w->wb, name);
	if (!w->ws)
		return fail(w, "xlsx: cannot add sheet \"%s\"", name);
	w->row = 0;
	for (size_t i = 0; i < w->ncols; i++) {
		if (lxw_check(w, put_string(w, w->ws, 0, (lxw_col_t)i, w->cols[i].name, w->f_header),
			      "header") < 0)
			return -1;
		w->width[i] = WIDTH_MIN;
		note_width(&w->width[i], utf8_chars(w->cols[i].name) + 3); /* room for the filter button */
	}
	worksheet_freeze_panes(w->ws, 1, 0);
	w->row = 1;
	return 0;
}

static int finish_sheet(struct xlsx_out *w)
{
	for (size_t i = 0; i < w->ncols; i++)
		if (lxw_check(w, worksheet_set_column(w->ws, (lxw_col_t)i, (lxw_col_t)i, (double)w->width[i] + 1, NULL),
			      "column width") < 0)
			return -1;
	lxw_row_t last = w->row > 1 ? w->row - 1 : 1;
	return lxw_check(w, worksheet_autofilter(w->ws, 0, 0, last, (lxw_col_t)(w->ncols - 1)), "autofilter");
}

int xlsx_out_table_begin(struct xlsx_out *w, const char *title, const struct rcol *cols, size_t ncols)
{
	if (w->fe.failed)
		return -1;
	if (w->in_table)
		return fail(w, "xlsx: table_begin inside a table");
	if (ncols == 0 || ncols > LXW_COL_MAX)
		return fail(w, "xlsx: a table needs 1 to %d columns", LXW_COL_MAX);
	w->cols = xcalloc(ncols, sizeof *w->cols);
	w->width = xcalloc(ncols, sizeof *w->width);
	for (size_t i = 0; i < ncols; i++) {
		struct buf b;
		buf_init(&b, 0);
		rtext_clean(&b, rcol_label(&cols[i]), 255, 0);
		w->cols[i] = cols[i];
		w->cols[i].name = buf_detach(&b, NULL); /* the header people read */
		w->cols[i].label = NULL;
	}
	w->ncols = ncols;
	w->title = xstrdup(title && *title ? title : "Table");
	w->part = 1;
	w->in_table = 1;
	return add_sheet(w);
}

int xlsx_out_table_row(struct xlsx_out *w, const struct rval *vals)
{
	size_t chars;
	if (w->fe.failed)
		return -1;
	if (!w->in_table)
		return fail(w, "xlsx: row outside a table");
	if (w->row >= LXW_ROW_MAX) {
		if (finish_sheet(w) < 0)
			return -1;
		w->part++;
		if (add_sheet(w) < 0)
			return -1;
	}
	for (size_t i = 0; i < w->ncols; i++) {
		if (write_cell(w, w->ws, w->row, (lxw_col_t)i, &w->cols[i], &vals[i], &chars) < 0)
			return -1;
		note_width(&w->width[i], chars);
	}
	w->row++;
	return 0;
}

static void drop_table(struct xlsx_out *w)
{
	for (size_t i = 0; w->cols && i < w->ncols; i++)
		free((char *)w->cols[i].name);
	free(w->cols);
	free(w->width);
	free(w->title);
	w->cols = NULL;
	w->width = NULL;
	w->title = NULL;
	w->ncols = 0;
	w->in_table = 0;
	w->ws = NULL;
}

int xlsx_out_table_end(struct xlsx_out *w)
{
	if (w->fe.failed)
		return -1;
	if (!w->in_table)
		return fail(w, "xlsx: table_end without table_begin");
	int rc = finish_sheet(w);
	drop_table(w);
	return rc;
}

const char *xlsx_out_error(const struct xlsx_out *w)
{
	return w->fe.failed ? w->fe.msg : "";
}

int xlsx_out_close(struct xlsx_out *w, char *err, size_t errlen)
{
	if (!w)
		return 0;
	if (w->in_table && !w->fe.failed)
		fail(w, "xlsx: closed inside a table");
	for (lxw_col_t i = 0; i < CHART_COL; i++)
		worksheet_set_column(w->summary, i, i, (double)w->swidth[i] + 1, NULL);
	worksheet_activate(w->summary);
	lxw_error e = workbook_close(w->wb); /* writes the file and frees the workbook */
	if (e != LXW_NO_ERROR)
		fail(w, "xlsx: cannot write the workbook: %s", lxw_strerror(e));
	int rc = w->fe.failed ? -1 : 0;
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", w->fe.msg);
	drop_table(w);
	buf_release(&w->cell);
	buf_release(&w->esc);
	free(w);
	return rc;
}

/* ------------------------------------------------------------- rsink glue */

static int s_kpis(void *w, const struct rkpi *k, size_t n) { return xlsx_out_kpis(w, k, n); }
static int s_chart(void *w, const struct rchart *c, const struct rmem *m) { return xlsx_out_chart(w, c, m); }
static int s_begin(void *w, const char *t, const struct rcol *c, size_t n, size_t max_rows)
{
	(void)max_rows; /* a sheet holds every row */
	return xlsx_out_table_begin(w, t, c, n);
}
static int s_row(void *w, const struct rval *v) { return xlsx_out_table_row(w, v); }
static int s_end(void *w) { return xlsx_out_table_end(w); }
static const char *s_error(void *w) { return xlsx_out_error(w); }
static int s_close(void *w, char *err, size_t errlen) { return xlsx_out_close(w, err, errlen); }

static const struct rsink_ops xlsx_ops = {
	"xlsx", s_kpis, s_chart, s_begin, s_row, s_end, s_error, s_close,
};

struct rsink xlsx_out_sink(struct xlsx_out *w)
{
	struct rsink s = { &xlsx_ops, w };
	return s;
}

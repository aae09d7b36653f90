/*
 * html_out.c - the HTML format (html_out.h).
 */
#include "html_out.h"

#include <cairo-svg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "draw.h"
#include "errmsg.h"
#include "xalloc.h"

#define CHART_W 720.0
#define CHART_H 300.0

struct html_out {
	FILE *fp;
	char *currency, *generated;
	struct html_out_opts o;
	struct rfonts fonts;
	struct rcol *cols; /* the open table's columns (names owned), or NULL */
	size_t ncols;
	uint64_t nrows, dropped;
	uint64_t table_max; /* rows the current table shows at most */
	unsigned charts;
	struct buf tmp;
	struct first_err fe; /* the first error, kept */
};

/* the first error is kept (errmsg.h) */
#define fail(w, ...) first_err_set(&(w)->fe, __VA_ARGS__)

/* s as HTML text (valid UTF-8, controls as spaces, & < > " ' escaped). */
static void esc(struct html_out *w, const char *s)
{
	buf_reset(&w->tmp);
	rtext_clean(&w->tmp, s ? s : "", 0, RTEXT_NO_CTRL);
	for (size_t i = 0; i < w->tmp.len; i++) {
		char c = w->tmp.data[i];
		switch (c) {
		case '&': fputs("&amp;", w->fp); break;
		case '<': fputs("&lt;", w->fp); break;
		case '>': fputs("&gt;", w->fp); break;
		case '"': fputs("&quot;", w->fp); break;
		case '\'': fputs("&#39;", w->fp); break;
		default: fputc(c, w->fp);
		}
	}
}

static const char css[] =
	"body{font-family:'DejaVu Sans',Verdana,sans-serif;color:#111;margin:24px;max-width:1100px}"
	"header{border-bottom:2px solid #0072B2;margin-bottom:14px;padding-bottom:4px}"
	"header h1{font-size:20px;margin:0;display:inline-block}"
	"header .period{float:right;color:#444;font-size:13px;margin-top:6px}"
	"header .sub{font-size:13px;color:#222;margin-top:4px}"
	"h2{font-size:15px;margin:20px 0 6px}"
	".kpis{display:flex;flex-wrap:wrap;gap:10px}"
	".kpi{background:#F1F4F8;border-left:3px solid #0072B2;padding:8px 12px;min-width:150px}"
	".kpi .l{font-size:11px;color:#555}.kpi .v{font-size:22px;font-weight:bold}"
	"table{border-collapse:collapse;font-size:12px;margin-bottom:6px}"
	"th{background:#D9DEE5;text-align:left;padding:3px 6px}"
	"td{padding:2px 6px;vertical-align:top}tr:nth-child(even) td{background:#F5F6F8}"
	"td.n,th.n{text-align:right;white-space:nowrap}"
	".note{color:#555;font-size:12px}footer{color:#444;font-size:11px;border-top:1px solid #999;margin-top:20px}"
	"svg{max-width:100%;height:auto}";

struct html_out *html_out_new(const char *path, const struct rmeta *meta, const struct html_out_opts *opts,
			      char *err, size_t errlen)
{
	struct html_out *w = xcalloc(1, sizeof *w);
	if (opts)
		w->o = *opts;
	if (!w->o.max_rows)
		w->o.max_rows = HTML_MAX_ROWS_DEFAULT;
	if (rfonts_load(&w->fonts, w->o.font_dir, err, errlen) < 0) {
		free(w);
		return NULL;
	}
	w->fp = fopen(path, "wb");
	if (!w->fp) {
		snprintf(err, errlen, "cannot create \"%s\": %s", path, strerror(errno));
		rfonts_release(&w->fonts);
		free(w);
		return NULL;
	}
	buf_init(&w->tmp, 0);
	w->currency = meta && meta->currency && *meta->currency ? xstrdup(meta->currency) : NULL;
	w->generated = meta && meta->generated ? xstrdup(meta->generated) : NULL;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", w->fp);
	esc(w, meta ? meta->title : "");
	fputs("</title>\n<meta name=\"generator\" content=\"cdrflow-report\">\n<style>", w->fp);
	fputs(css, w->fp);
	fputs("</style></head>\n<body>\n<header><h1>", w->fp);
	esc(w, meta ? meta->title : "");
	fputs("</h1><span class=\"period\">", w->fp);
	esc(w, meta ? meta->period : "");
	fputs("</span>", w->fp);
	if (meta && (meta->subtitle || w->currency)) {
		fputs("\n<div class=\"sub\">", w->fp);
		if (meta->subtitle)
			esc(w, meta->subtitle);
		if (meta->subtitle && w->currency)
			fputs("  \xC2\xB7  ", w->fp);
		if (w->currency) {
			fputs("Amounts in ", w->fp);
			esc(w, w->currency);
		}
		fputs("</div>", w->fp);
	}
	fputs("</header>\n", w->fp);
	return w;
}

static int html_kpis(void *arg, const struct rkpi *k, size_t n)
{
	struct html_out *w = arg;
	char t[RVAL_NUMTEXT_MAX];
	if (w->fe.failed)
		return -1;
	if (w->cols)
		return fail(w, "html: KPIs inside a table");
	fputs("<div class=\"kpis\">\n", w->fp);
	for (size_t i = 0; i < n; i++) {
		fprintf(w->fp, "<div class=\"kpi\" style=\"border-left-color:#%06X\"><div class=\"l\">",
			(unsigned)draw_palette(i));
		esc(w, rcol_label(&k[i].col));
		fputs("</div><div class=\"v\" dir=\"auto\">", w->fp);
		if (k[i].col.type == RCOL_TEXT) {
			esc(w, k[i].value.null ? "" : k[i].value.s);
		} else {
			rval_format(&k[i].col, &k[i].value, RFMT_DISPLAY, t, sizeof t);
			esc(w, t);
			if (k[i].col.type == RCOL_MONEY && w->currency && !k[i].value.null) {
				fputc(' ', w->fp);
				esc(w, w->currency);
			}
		}
		fputs("</div></div>\n", w->fp);
	}
	fputs("</div>\n", w->fp);
	return 0;
}

static cairo_status_t to_buf(void *closure, const unsigned char *data, unsigned int len)
{
	return buf_append(closure, data, len) < 0 ? CAIRO_STATUS_NO_MEMORY : CAIRO_STATUS_SUCCESS;
}

/* The SVG document in b as an element with every id (and reference to
 * one) prefixed with pfx: several charts share one HTML document. */
static void put_svg(struct html_out *w, const struct buf *b, const char *pfx)
{
	const char *s = b->data ? b->data : "";
	const char *start = strstr(s, "<svg");
	if (!start)
		return;
	static const char *const pats[] = { "id=\"", "href=\"#", "url(#" };
	const char *p = start;
	while (*p) {
		size_t best = SIZE_MAX, which = 0;
		for (size_t k = 0; k < 3; k++) {
			const char *q = strstr(p, pats[k]);
			if (q && (size_t)(q - p) < best) {
				best = (size_t)(q - p);
				which = k;
			}
		}
		if (best == SIZE_MAX) {
			fputs(p, w->fp);
			break;
		}
		fwrite(p, 1, best, w->fp);
		fputs(pats[which], w->fp);
		fputs(pfx, w->fp);
		p += best + strlen(pats[which]);
	}
}

static int html_chart(void *arg, const struct rchart *c, const struct rmem *m)
{
	struct html_out *w = arg;
	char e[200];
	if (w->fe.failed)
		return -1;
	if (w->cols)
		return fail(w, "html: chart inside a table");
	struct buf svg;
	buf_init(&svg, 0);
	cairo_surface_t *s = cairo_svg_surface_create_for_stream(to_buf, &svg, CHART_W, CHART_H);
	cairo_svg_surface_restrict_to_version(s, CAIRO_SVG_VERSION_1_1);
	cairo_t *cr = cairo_create(s);
	int rc = chart_draw(cr, &w->fonts, 0.5, 0.5, CHART_W - 1, CHART_H - 1, c, m, e, sizeof e);
	cairo_destroy(cr);
	cairo_surface_finish(s);
	cairo_status_t st = cairo_surface_status(s);
	cairo_surface_destroy(s);
	if (rc < 0 || st != CAIRO_STATUS_SUCCESS) {
		buf_release(&svg);
		return fail(w, "html: chart: %s", rc < 0 ? e : cairo_status_to_string(st));
	}
	char pfx[16];
	snprintf(pfx, sizeof pfx, "c%u-", ++w->charts);
	fputs("<figure role=\"img\" aria-label=\"", w->fp);
	esc(w, c->title);
	fputs("\" style=\"margin:10px 0\">", w->fp);
	put_svg(w, &svg, pfx);
	fputs("</figure>\n", w->fp);
	buf_release(&svg);
	return 0;
}

static int html_table_begin(void *arg, const char *title, const struct rcol *cols, size_t ncols, size_t max_rows)
{
	struct html_out *w = arg;
	if (w->fe.failed)
		return -1;
	if (w->cols)
		return fail(w, "html: table_begin inside a table");
	w->cols = xcalloc(ncols ? ncols : 1, sizeof *w->cols);
	w->ncols = ncols;
	w->nrows = w->dropped = 0;
	w->table_max = max_rows ? max_rows : w->o.max_rows;
	fputs("<h2>", w->fp);
	esc(w, title);
	fputs("</h2>\n<table>\n<thead><tr>", w->fp);
	for (size_t i = 0; i < ncols; i++) {
		w->cols[i] = cols[i];
		w->cols[i].name = NULL;
		w->cols[i].label = NULL;
		fputs(rcol_is_numeric(cols[i].type) ? "<th class=\"n\">" : "<th>", w->fp);
		esc(w, rcol_label(&cols[i]));
		if (cols[i].type == RCOL_MONEY && w->currency) {
			fputs(" (", w->fp);
			esc(w, w->currency);
			fputc(')', w->fp);
		}
		fputs("</th>", w->fp);
	}
	fputs("</tr></thead>\n<tbody>\n", w->fp);
	return 0;
}

static int html_table_row(void *arg, const struct rval *v)
{
	struct html_out *w = arg;
	char t[RVAL_NUMTEXT_MAX];
	if (w->fe.failed)
		return -1;
	if (!w->cols)
		return fail(w, "html: row outside a table");
	if (w->nrows >= w->table_max) {
		w->dropped++;
		return 0;
	}
	fputs("<tr>", w->fp);
	for (size_t i = 0; i < w->ncols; i++) {
		if (w->cols[i].type == RCOL_TEXT) {
			fputs("<td dir=\"auto\">", w->fp);
			esc(w, v[i].null ? "" : v[i].s);
		} else {
			fputs("<td class=\"n\">", w->fp);
			rval_format(&w->cols[i], &v[i], RFMT_DISPLAY, t, sizeof t);
			esc(w, t);
		}
		fputs("</td>", w->fp);
	}
	fputs("</tr>\n", w->fp);
	w->nrows++;
	if (ferror(w->fp))
		return fail(w, "html: write error: %s", strerror(errno));
	return 0;
}

static int html_table_end(void *arg)
{
	struct html_out *w = arg;
	if (w->fe.failed)
		return -1;
	if (!w->cols)
		return fail(w, "html: table_end without table_begin");
	fputs("</tbody></table>\n", w->fp);
	if (w->nrows == 0)
		fputs("<p class=\"note\">(no rows)</p>\n", w->fp);
	else if (w->dropped)
		fprintf(w->fp,
			"<p class=\"note\">%" PRIu64 " more rows are not shown here; the CSV and XLSX exports have every row</p>\n",
			w->dropped);
	free(w->cols);
	w->cols = NULL;
	return 0;
}

static const char *html_error(void *arg)
{
	struct html_out *w = arg;
	return w->fe.failed ? w->fe.msg : "";
}

static int html_close(void *arg, char *err, size_t errlen)
{
	struct html_out *w = arg;
	if (!w)
		return 0;
	if (!w->fe.failed && w->cols)
		fail(w, "html: closed inside a table");
	fputs("<footer>", w->fp);
	if (w->generated)
		esc(w, w->generated);
	fputs("</footer>\n</body></html>\n", w->fp);
	if (fflush(w->fp) == EOF || ferror(w->fp))
		fail(w, "html: write error: %s", strerror(errno));
	if (fclose(w->fp) != 0)
		fail(w, "html: write error: %s", strerror(errno));
	int rc = w->fe.failed ? -1 : 0;
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", w->fe.msg);
	free(w->cols);
	free(w->currency);
	free(w->generated);
	buf_release(&w->tmp);
	rfonts_release(&w->fonts);
	free(w);
	return rc;
}

static const struct rsink_ops html_ops = {
	"html", html_kpis, html_chart, html_table_begin, html_table_row, html_table_end, html_error, html_close,
};

struct rsink html_out_sink(struct html_out *w)
{
	struct rsink s = { &html_ops, w };
	return s;
}

/*
 * html_out.h - one self-contained HTML file per report: the same header,
 * KPI tiles, charts and tables as the PDF, usable as an e-mail body and on
 * an intranet (docs/report-formats.md, HTML).
 *
 * Self-contained: the styles are inline in <head>, each chart is an inline
 * <svg> drawn by the same chart code as the PDF through cairo's SVG surface
 * (its element ids prefixed per chart, so several charts in one document
 * never share a glyph id), no script, no external resource.  Every figure
 * is the cell's RFMT_DISPLAY text, as in the PDF; money headers and tiles
 * name the currency.  Tables are streamed into the file as their rows
 * arrive; like the PDF, a table shows at most max_rows rows and says how
 * many more only the CSV/XLSX exports have.  Text is escaped and cleaned to
 * valid UTF-8; a cell gets dir="auto", so a right-to-left name reads right
 * to left.
 */
#ifndef CDRFLOW_REPORT_HTML_OUT_H
#define CDRFLOW_REPORT_HTML_OUT_H

#include <stddef.h>

#include "table.h"

#define HTML_MAX_ROWS_DEFAULT 20000

struct html_out_opts {
	size_t max_rows;      /* per table; 0 = HTML_MAX_ROWS_DEFAULT */
	const char *font_dir; /* for the charts' text (draw.h); NULL = default */
};

struct html_out;

/* NULL (message in err) if path cannot be created or the fonts are missing. */
struct html_out *html_out_new(const char *path, const struct rmeta *meta, const struct html_out_opts *opts,
			      char *err, size_t errlen);
struct rsink html_out_sink(struct html_out *w);

#endif

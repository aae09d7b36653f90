/*
 * pdf_out.h - paginated vector PDF reports through cairo.
 *
 * Page: A4 or Letter, portrait, 36 pt margins.  Every page has a header
 * (report title left, period right, a rule) and a footer (generation time
 * left, "page x / y" right).  Parts flow down the pages in the order they
 * are given: KPI tiles (four per row), charts (full width, 250 pt high,
 * moved to a new page rather than split) and tables.  A table breaks across
 * pages and repeats its title ("(continued)") and header row on each page;
 * numbers are right-aligned, text left-aligned and cut with an ellipsis to
 * its column; column widths follow the widest cell, shrunk to the page.
 *
 * Streaming and the page count: "page x / y" needs y before page 1 is
 * drawn, so parts are recorded and the document is laid out at close, twice
 * (pass 1 only counts pages).  Table rows are spooled to an unlinked
 * temporary file, not kept in memory.  A table shows at most max_rows rows
 * (a PDF is for reading); further rows are counted and a note says how many
 * are only in the CSV/XLSX export.
 *
 * Fonts: DejaVu Sans (regular, bold), embedded as subsets (draw.h).
 * Output goes to "<path>.tmp" and is renamed to path on success only.
 */
#ifndef CDRFLOW_REPORT_PDF_OUT_H
#define CDRFLOW_REPORT_PDF_OUT_H

#include <stddef.h>

#include "table.h"

enum pdf_paper { PDF_A4, PDF_LETTER };

#define PDF_MAX_ROWS_DEFAULT 20000

struct pdf_out_opts {
	enum pdf_paper paper;
	const char *font_dir; /* NULL = RFONT_DIR_DEFAULT */
	size_t max_rows;      /* per table; 0 = PDF_MAX_ROWS_DEFAULT */
	const char *tmpdir;   /* for the row spool; NULL = $TMPDIR or /tmp */
};

struct pdf_out;

/* NULL (message in err) if the fonts or the spool cannot be set up. */
struct pdf_out *pdf_out_new(const char *path, const struct rmeta *meta, const struct pdf_out_opts *opts, char *err,
			    size_t errlen);
int pdf_out_kpis(struct pdf_out *w, const struct rkpi *k, size_t n);
int pdf_out_chart(struct pdf_out *w, const struct rchart *c, const struct rmem *data);
/* max_rows: the rows this table shows at most; 0 = opts.max_rows. */
int pdf_out_table_begin(struct pdf_out *w, const char *title, const struct rcol *cols, size_t ncols, size_t max_rows);
int pdf_out_table_row(struct pdf_out *w, const struct rval *vals);
int pdf_out_table_end(struct pdf_out *w);
const char *pdf_out_error(const struct pdf_out *w);
/* Lay out and write the PDF, free w; -1 (message in err) on any failure.
 * *pages (may be NULL) gets the page count. */
int pdf_out_close(struct pdf_out *w, int *pages, char *err, size_t errlen);

/* The generic interface (its close does not report the page count). */
struct rsink pdf_out_sink(struct pdf_out *w);

#endif

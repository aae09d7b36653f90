/*
 * xlsx_out.h - XLSX workbooks through libxlsxwriter.
 *
 * Layout: a first sheet "Summary" (title, period, KPI label/value rows, and
 * for each chart its data block with a native Excel chart beside it), then
 * one sheet per table.  Table sheets: bold header row, frozen; autofilter
 * over the data; column widths estimated from the longest cell; a table
 * longer than Excel's 1,048,576 rows continues on "<name> (2)", ... with the
 * header repeated.
 *
 * Cells are typed: numbers are numbers (rval_number(), i.e. exactly the CSV
 * figure), timestamps are Excel dates formatted yyyy-mm-dd hh:mm:ss (UTC,
 * whole seconds), durations are Excel times formatted [h]:mm:ss, percents
 * are ratios formatted 0.00%.  Text is written with worksheet_write_string,
 * so it is never evaluated as a formula; text that starts with = + - @ TAB
 * or CR still gets the same leading quote as in CSV, so both files hold the
 * same cell text and a later "save as CSV" stays harmless (raw_text turns
 * that off).  Text is cut to Excel's 32767-byte cell limit.
 *
 * constant_memory (libxlsxwriter's mode) keeps one row per sheet in memory;
 * use it for large exports.  Rows are always written in order anyway.
 * Nothing is written to path until xlsx_out_close().
 */
#ifndef CDRFLOW_REPORT_XLSX_OUT_H
#define CDRFLOW_REPORT_XLSX_OUT_H

#include <stddef.h>
#include <time.h>

#include "table.h"

struct xlsx_out_opts {
	int constant_memory;
	int raw_text;        /* do not prefix formula-like text with a quote */
	const char *tmpdir;  /* libxlsxwriter's temporary files (NULL = default) */
	time_t created;      /* document creation time (0 = now): fix it for golden files */
};

struct xlsx_out;

/* NULL (message in err) if the workbook cannot be set up.  meta and opts
 * are copied; opts may be NULL. */
struct xlsx_out *xlsx_out_new(const char *path, const struct rmeta *meta, const struct xlsx_out_opts *opts,
			      char *err, size_t errlen);
/* KPI rows on the Summary sheet. */
int xlsx_out_kpis(struct xlsx_out *w, const struct rkpi *k, size_t n);
/* A native chart (column, line, stacked column, doughnut) over a data block
 * written to the Summary sheet. */
int xlsx_out_chart(struct xlsx_out *w, const struct rchart *c, const struct rmem *data);
/* A new sheet named after title (sanitised, made unique). */
int xlsx_out_table_begin(struct xlsx_out *w, const char *title, const struct rcol *cols, size_t ncols);
int xlsx_out_table_row(struct xlsx_out *w, const struct rval *vals);
int xlsx_out_table_end(struct xlsx_out *w);
const char *xlsx_out_error(const struct xlsx_out *w);
/* Write the file and free w; -1 (message in err) if anything failed. */
int xlsx_out_close(struct xlsx_out *w, char *err, size_t errlen);

struct rsink xlsx_out_sink(struct xlsx_out *w);

#endif

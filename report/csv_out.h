/*
 * csv_out.h - a streamed RFC 4180 CSV writer for one table.
 *
 * Output (docs/report-formats.md has the full contract):
 *   - UTF-8 (invalid input bytes become U+FFFD), optional BOM;
 *   - records end with CRLF, as RFC 4180 says, the last one included;
 *   - the first record is the header (column names);
 *   - text cells are always quoted ("a ""b"""), numbers never: a reader can
 *     tell an empty string ("") from NULL (nothing between the commas);
 *   - numeric cells carry rval_format(RFMT_PLAIN): no grouping, '.' as the
 *     decimal point, timestamps "YYYY-MM-DD HH:MM:SS" in UTC, durations in
 *     seconds, percents in percentage points;
 *   - formula injection: a text cell (header names included) that starts
 *     with = + - @ TAB or CR gets a leading single quote.  Negative numbers
 *     are numeric cells, not text, and are written as they are.
 *
 * Memory is constant: each row goes straight to the FILE's buffer.
 */
#ifndef CDRFLOW_REPORT_CSV_OUT_H
#define CDRFLOW_REPORT_CSV_OUT_H

#include <stdio.h>

#include "table.h"

struct csv_out_opts {
	int bom;       /* write a UTF-8 byte order mark first (for Excel) */
	int raw_text;  /* do NOT neutralise formula-like text (for programs, not people) */
};

struct csv_out;

/* Write to fp, which stays the caller's: csv_out_close() flushes it and
 * reports a write error but does not fclose() it.  opts may be NULL. */
struct csv_out *csv_out_new(FILE *fp, const struct csv_out_opts *opts);

/* A CSV file holds one table: a second table_begin fails. */
int csv_out_table_begin(struct csv_out *w, const char *title, const struct rcol *cols, size_t ncols);
int csv_out_table_row(struct csv_out *w, const struct rval *vals);
int csv_out_table_end(struct csv_out *w);
const char *csv_out_error(const struct csv_out *w);
/* Flush, free w; -1 (message in err) if any step or the flush failed. */
int csv_out_close(struct csv_out *w, char *err, size_t errlen);

/* The same writer behind the generic interface (KPIs and charts ignored). */
struct rsink csv_out_sink(struct csv_out *w);

/* Write one text field (quoted, guarded unless raw) to fp; for tests and
 * for callers that need a single cell.  0 or -1 on a write error. */
int csv_out_text_field(FILE *fp, const char *s, int raw);

#endif

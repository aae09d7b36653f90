/*
 * qout.h - streaming result output for cdrflow-query: aligned table, CSV
 * (RFC 4180), NDJSON or a JSON array.
 *
 * A writer is given the column names and kinds once (qout_begin), then one
 * row at a time (qout_row), then qout_end.  CSV and JSON write each row as
 * it comes.  The table format must know the column widths before its first
 * line: it holds the first QOUT_TABLE_SAMPLE rows, sizes the columns from
 * them (in terminal cells: UTF-8 aware, East Asian wide characters count 2,
 * combining marks 0), prints them, and then prints every later row at once
 * with the same widths (a longer value pushes the rest of its line right).
 * So memory stays bounded whatever the number of rows.
 *
 * Values are NUL-terminated strings as libpq returns them; NULL is SQL NULL
 * (empty in table and CSV, null in JSON).
 */
#ifndef CDRFLOW_QOUT_H
#define CDRFLOW_QOUT_H
#include <stddef.h>
#include <stdio.h>

#define QOUT_TABLE_SAMPLE 500

enum qout_format { QOUT_TABLE, QOUT_CSV, QOUT_JSON, QOUT_JSON_ARRAY };
enum qout_kind { QOUT_TEXT, QOUT_NUMBER, QOUT_BOOL };

struct qout {
	enum qout_format fmt;
	FILE *out;
	int header; /* table/CSV: print the header line (default 1) */
	size_t ncols;
	char **names;
	enum qout_kind *kinds;
	size_t *width;
	/* table: the sampled rows (ncols values each, owned) */
	char ***sample;
	size_t nsample;
	int flushed; /* table: widths fixed, sample printed */
	unsigned long long rows;
};

/* "table", "csv", "json" (NDJSON), "json-array"; -1 if unknown. */
int qout_format_parse(const char *s, enum qout_format *fmt);
void qout_init(struct qout *q, enum qout_format fmt, FILE *out);
/* Copies names and kinds. */
void qout_begin(struct qout *q, size_t ncols, const char *const *names, const enum qout_kind *kinds);
/* Write (or, for the table's first rows, hold a copy of) one row.  0, or -1
 * on a write error (errno set). */
int qout_row(struct qout *q, const char *const *values);
/* Flush what is held and close the JSON array.  0 or -1 on a write error. */
int qout_end(struct qout *q);
void qout_release(struct qout *q);

/* Terminal cells taken by the UTF-8 string s (invalid bytes count 1 each,
 * control characters 1: the table prints them as '?'). */
size_t qout_width(const char *s);
/* Writers for one value (exposed for the flow ladder and the tests). */
int qout_csv_field(FILE *out, const char *s);
#endif

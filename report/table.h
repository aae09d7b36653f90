/*
 * table.h - the typed data model every report writer consumes.
 *
 * A report is a sequence of parts: KPI tiles, charts and tables.  Tables are
 * streamed: a writer sees table_begin(columns), then one table_row() per
 * result row, then table_end(), so no writer needs the whole query result in
 * memory (the PDF writer spools rows to a temporary file, see pdf_out.h).
 * Charts and KPIs are small, so they come as a bounded in-memory table
 * (struct rmem).
 *
 * Values are typed.  The one rule that makes PDF, CSV and XLSX agree: every
 * figure has one canonical text (rval_format(..., RFMT_PLAIN)); CSV writes it,
 * XLSX stores the number that text denotes (rval_number()), and the PDF shows
 * RFMT_DISPLAY, which differs from the plain text only for durations
 * (h:mm:ss instead of seconds) and percents (a "%" sign).
 *
 * Ownership: everything passed in (columns, names, text values) is borrowed
 * for the duration of the call; a writer copies what it keeps.
 */
#ifndef CDRFLOW_REPORT_TABLE_H
#define CDRFLOW_REPORT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "utf8.h"

enum rcol_type {
	RCOL_TEXT,      /* .s: UTF-8 (invalid bytes are replaced by U+FFFD on output) */
	RCOL_INT,       /* .i */
	RCOL_MONEY,     /* .i: micro-units (1 = 0.000001), shown rounded to .scale decimals */
	RCOL_DECIMAL,   /* .d, shown with .scale decimals */
	RCOL_TIMESTAMP, /* .i: UTC microseconds since 1970, shown to the second (floor) */
	RCOL_DURATION,  /* .i: seconds */
	RCOL_PERCENT,   /* .d: a ratio (0.255 = 25.5 %), shown with .scale decimals */
};

/* Biggest .scale any numeric type accepts (larger values are clamped). */
#define RCOL_MAX_SCALE 6

struct rcol {
	const char *name;  /* the column's name: CSV header (machine-readable) */
	enum rcol_type type;
	int scale;         /* decimals for MONEY/DECIMAL/PERCENT; 0..RCOL_MAX_SCALE */
	const char *label; /* header for people (PDF, XLSX, HTML); NULL = name */
};

/* The header people see: label, else name. */
static inline const char *rcol_label(const struct rcol *c) { return c->label ? c->label : c->name; }

struct rval {
	int null;      /* SQL NULL: an empty cell in every format */
	int64_t i;     /* INT, MONEY, TIMESTAMP, DURATION */
	double d;      /* DECIMAL, PERCENT */
	const char *s; /* TEXT */
};

static inline struct rval rval_null(void) { struct rval v = { 1, 0, 0.0, NULL }; return v; }
static inline struct rval rval_int(int64_t i) { struct rval v = { 0, i, 0.0, NULL }; return v; }
static inline struct rval rval_dbl(double d) { struct rval v = { 0, 0, d, NULL }; return v; }
static inline struct rval rval_text(const char *s) { struct rval v = { s == NULL, 0, 0.0, s }; return v; }

enum rfmt {
	RFMT_PLAIN,   /* machine-readable: CSV, and the source of every XLSX number */
	RFMT_DISPLAY, /* for people: PDF cells, tiles and chart labels */
};

/* Longest text rval_format() produces for a non-text type (plus NUL). */
#define RVAL_NUMTEXT_MAX 64

/* Format v as column c says, into out (always NUL-terminated when n > 0).
 * NULL gives "".  TEXT copies v->s as is (truncated to n - 1 bytes).
 * Returns the length written. */
size_t rval_format(const struct rcol *c, const struct rval *v, enum rfmt f, char *out, size_t n);

/* The number a non-text cell stands for, as a spreadsheet stores it: parsed
 * back from the RFMT_PLAIN text, so it equals the CSV figure exactly; MONEY
 * and DECIMAL in currency units, PERCENT as a ratio, DURATION in days
 * (Excel's time unit), TIMESTAMP in seconds since 1970 (floor).  Charts use
 * rval_chart_number() instead (DURATION in seconds). */
double rval_number(const struct rcol *c, const struct rval *v);
double rval_chart_number(const struct rcol *c, const struct rval *v);

int rcol_is_numeric(enum rcol_type t);
const char *rcol_type_name(enum rcol_type t);


/* Whether s, past its first byte, is digits[.digits]. */
int rtext_signed_number(const char *s);
/* CSV formula-injection guard: does a text cell need a leading "'"?  Yes
 * when it starts with = @ TAB CR, or with + or - unless the whole value is
 * a signed number ([+-]digits[.digits]: an E.164 number, a negative
 * amount), which a spreadsheet reads as a number and never runs.  Inline:
 * a CSV asks it of every text cell, and the first byte mostly says no. */
static inline int rtext_needs_guard(const char *s)
{
	if (!s)
		return 0;
	if (s[0] == '=' || s[0] == '@' || s[0] == '\t' || s[0] == '\r')
		return 1;
	if (s[0] == '+' || s[0] == '-')
		return !rtext_signed_number(s);
	return 0;
}
/* Append s for an XLSX string (ECMA-376 ST_Xstring): every literal
 * "_xHHHH_" gets its '_' written as "_x005F_", and what XML 1.0 cannot
 * carry (C0 controls but tab and newline, U+FFFE, U+FFFF) or would read as
 * a newline (CR) is written as its _xHHHH_, so a reader's decoding gives
 * back s exactly.  0, or -1 if out's cap was hit. */
int rtext_xlsx_escape(struct buf *out, const char *s);



/* ------------------------------------------------------------- rmem */

/*
 * A small in-memory table for charts and KPIs.  Bounded: rmem_push() fails
 * once max_rows rows are held, and each text value is cut to RMEM_TEXT_MAX
 * bytes.  The table copies the columns and every text value it keeps.
 */
#define RMEM_MAX_COLS 32
#define RMEM_TEXT_MAX 256

struct rmem {
	struct rcol *cols; /* owned, names owned */
	size_t ncols;
	struct rval *vals; /* nrows * ncols, text owned */
	size_t nrows, max_rows;
};

/* -1 if ncols is 0 or over RMEM_MAX_COLS, or max_rows is 0. */
int rmem_init(struct rmem *m, const struct rcol *cols, size_t ncols, size_t max_rows);
/* Copy one row; -1 when the table is full. */
int rmem_push(struct rmem *m, const struct rval *vals);
const struct rval *rmem_row(const struct rmem *m, size_t row);
void rmem_release(struct rmem *m);

/* ------------------------------------------------------------- parts */

/* A KPI tile: label, type/scale (col.name is the label) and the figure. */
struct rkpi {
	struct rcol col;
	struct rval value;
};

enum rchart_kind { RCHART_BAR, RCHART_LINE, RCHART_STACKED, RCHART_DONUT };

/*
 * A chart over an rmem: one category per row, taken from column cat_col
 * (any type, shown with RFMT_DISPLAY), and one series per numeric column in
 * series_cols (named by the column).  A donut uses its first series only.
 */
#define RCHART_MAX_SERIES 8
#define RCHART_MAX_CATS 64

struct rchart {
	enum rchart_kind kind;
	const char *title;
	const char *y_title; /* may be NULL */
	size_t cat_col;
	size_t series_cols[RCHART_MAX_SERIES];
	size_t nseries;
};

/* Check a chart against its data; 0, or -1 with a message in err. */
int rchart_check(const struct rchart *c, const struct rmem *m, char *err, size_t errlen);
const char *rchart_kind_name(enum rchart_kind k);

/* Document-level information every writer shows (header, properties). */
struct rmeta {
	const char *title;     /* "Call statistics" */
	const char *period;    /* "2024-05-01 .. 2024-05-31 (UTC)" */
	const char *generated; /* "2024-06-01 02:00 UTC"; NULL = not shown */
	const char *subtitle;  /* under the title ("Tenant: Acme Ltd (acme)"); NULL = none */
	const char *currency;  /* ISO 4217 code of every MONEY figure ("EUR"); NULL = not shown */
};

/* ------------------------------------------------------------- sinks */

/*
 * One interface over the three writers, so a program can feed one query
 * result to several formats at once.  Every function returns 0 or -1; after
 * -1 the writer is failed, rsink_error() says why, and only close is
 * meaningful.  close finishes the output, frees the writer and returns -1
 * with the first error in err if anything failed (call it exactly once,
 * also after a failure).  A writer that
 * cannot show a part (CSV has no KPIs or charts) accepts and ignores it.
 */
struct rsink_ops {
	const char *name;
	int (*kpis)(void *w, const struct rkpi *k, size_t n);
	int (*chart)(void *w, const struct rchart *c, const struct rmem *data);
	/* max_rows: the rows this table shows at most where a writer limits
	 * them (PDF, HTML); 0 = the writer's own limit */
	int (*table_begin)(void *w, const char *title, const struct rcol *cols, size_t ncols, size_t max_rows);
	int (*table_row)(void *w, const struct rval *vals);
	int (*table_end)(void *w);
	const char *(*error)(void *w);
	int (*close)(void *w, char *err, size_t errlen);
};

struct rsink {
	const struct rsink_ops *ops;
	void *w;
};

static inline int rsink_kpis(struct rsink *s, const struct rkpi *k, size_t n) { return s->ops->kpis(s->w, k, n); }
static inline int rsink_chart(struct rsink *s, const struct rchart *c, const struct rmem *m) { return s->ops->chart(s->w, c, m); }
static inline int rsink_table_begin(struct rsink *s, const char *title, const struct rcol *cols, size_t n, size_t max_rows) { return s->ops->table_begin(s->w, title, cols, n, max_rows); }
static inline int rsink_table_row(struct rsink *s, const struct rval *vals) { return s->ops->table_row(s->w, vals); }
static inline int rsink_table_end(struct rsink *s) { return s->ops->table_end(s->w); }
static inline const char *rsink_error(struct rsink *s) { return s->ops->error(s->w); }
static inline int rsink_close(struct rsink *s, char *err, size_t errlen) { int rc = s->ops->close(s->w, err, errlen); s->w = NULL; return rc; }

#endif

/*
 * csv_out.c - streamed RFC 4180 CSV: every text field quoted (as libcsv's
 * csv_fwrite did), numbers as they are; we decide what is text.
 */
#include "csv_out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "xalloc.h"

/* one text cell may not exceed this once cleaned (a runaway value is an
 * error, not an unbounded allocation) */
#define CSV_CELL_MAX (64u << 20)

struct csv_out {
	FILE *fp;
	struct csv_out_opts o;
	struct rcol *cols; /* owned copy, names borrowed only during begin */
	size_t ncols;
	int state;         /* 0 fresh, 1 in table, 2 table done */
	struct first_err fe; /* the first error, kept */
	struct buf cell;   /* scratch for one cleaned text cell */
	struct buf row;    /* one row, written with one fwrite */
};

/* the first error is kept (errmsg.h) */
#define fail(w, ...) first_err_set(&(w)->fe, __VA_ARGS__)

struct csv_out *csv_out_new(FILE *fp, const struct csv_out_opts *opts)
{
	struct csv_out *w = xcalloc(1, sizeof *w);
	w->fp = fp;
	if (opts)
		w->o = *opts;
	buf_init(&w->cell, CSV_CELL_MAX);
	buf_init(&w->row, 0);
	return w;
}

/* One field quoted as libcsv's csv_fwrite() quotes it (always in double
 * quotes, a double quote doubled), appended to out in runs: the text
 * between two quotes is one copy. */
static int quoted_add(struct buf *out, const char *s, size_t n)
{
	if (buf_append(out, "\"", 1) < 0)
		return -1;
	while (n) {
		const char *q = memchr(s, '"', n);
		size_t k = q ? (size_t)(q - s) + 1 : n; /* through the quote */
		if (buf_append(out, s, k) < 0 || (q && buf_append(out, "\"", 1) < 0))
			return -1;
		s += k;
		n -= k;
	}
	return buf_append(out, "\"", 1);
}

/* A text cell, guarded and cleaned in cell, quoted onto out: -2 when the
 * cell is over CSV_CELL_MAX (or out over its limit). */
static int add_text(struct buf *out, struct buf *cell, const char *s, int raw)
{
	/* most cells are ASCII without a quote and need no guard: cleaning
	 * and quoting leave them as they are, so they go in with one copy */
	const char *t = s ? s : "";
	if (raw || !rtext_needs_guard(t)) {
		const unsigned char *p = (const unsigned char *)t;
		while (*p && *p < 0x80 && *p != '"')
			p++;
		size_t n = (size_t)((const char *)p - t);
		if (!*p && n <= CSV_CELL_MAX) { /* one room check, as buf_append's */
			if (n + 2 >= out->cap - out->len && buf_grow(out, n + 2) < 0)
				return -2;
			char *w = out->data + out->len;
			w[0] = '"';
			memcpy(w + 1, t, n);
			w[n + 1] = '"';
			w[n + 2] = '\0';
			out->len += n + 2;
			return 0;
		}
	}
	buf_reset(cell);
	if (!raw && rtext_needs_guard(s) && buf_puts(cell, "'") < 0)
		return -2;
	if (rtext_clean(cell, s, 0, 0) < 0)
		return -2;
	return quoted_add(out, cell->data, cell->len) < 0 ? -2 : 0;
}

int csv_out_text_field(FILE *fp, const char *s, int raw)
{
	struct buf cell, out;
	buf_init(&cell, CSV_CELL_MAX);
	buf_init(&out, 2 * (size_t)CSV_CELL_MAX + 2);
	int rc = add_text(&out, &cell, s, raw);
	if (rc == 0 && fwrite(out.data, 1, out.len, fp) != out.len)
		rc = -1;
	buf_release(&cell);
	buf_release(&out);
	return rc == 0 ? 0 : -1;
}

static int write_error(struct csv_out *w)
{
	return fail(w, "cannot write CSV: %s", errno ? strerror(errno) : "I/O error");
}

int csv_out_table_begin(struct csv_out *w, const char *title, const struct rcol *cols, size_t ncols)
{
	(void)title; /* a CSV file has no place for it: the file name carries it */
	if (w->fe.failed)
		return -1;
	if (w->state != 0)
		return fail(w, "a CSV file holds one table");
	if (ncols == 0)
		return fail(w, "a table needs at least one column");
	w->cols = xcalloc(ncols, sizeof *w->cols);
	memcpy(w->cols, cols, ncols * sizeof *cols);
	for (size_t i = 0; i < ncols; i++)
		w->cols[i].name = NULL; /* borrowed: not kept */
	w->ncols = ncols;
	w->state = 1;
	errno = 0;
	if (w->o.bom && fputs("\xEF\xBB\xBF", w->fp) == EOF)
		return write_error(w);
	buf_reset(&w->row);
	for (size_t i = 0; i < ncols; i++) {
		if (i && buf_append(&w->row, ",", 1) < 0)
			return fail(w, "out of memory");
		if (add_text(&w->row, &w->cell, cols[i].name ? cols[i].name : "", w->o.raw_text) < 0)
			return fail(w, "column name %zu is too long", i);
	}
	if (buf_append(&w->row, "\r\n", 2) < 0)
		return fail(w, "out of memory");
	if (fwrite(w->row.data, 1, w->row.len, w->fp) != w->row.len)
		return write_error(w);
	return 0;
}

/* One row is built in w->row and written with one fwrite. */
int csv_out_table_row(struct csv_out *w, const struct rval *vals)
{
	char num[RVAL_NUMTEXT_MAX];
	if (w->fe.failed)
		return -1;
	if (w->state != 1)
		return fail(w, "row outside a table");
	errno = 0;
	buf_reset(&w->row);
	for (size_t i = 0; i < w->ncols; i++) {
		if (i && buf_append(&w->row, ",", 1) < 0)
			return fail(w, "out of memory");
		if (vals[i].null)
			continue;
		if (w->cols[i].type == RCOL_TEXT) {
			if (add_text(&w->row, &w->cell, vals[i].s, w->o.raw_text) < 0)
				return fail(w, "text cell in column %zu is over %u bytes", i, CSV_CELL_MAX);
		} else {
			size_t n = rval_format(&w->cols[i], &vals[i], RFMT_PLAIN, num, sizeof num);
			if (buf_append(&w->row, num, n) < 0)
				return fail(w, "out of memory");
		}
	}
	if (buf_append(&w->row, "\r\n", 2) < 0)
		return fail(w, "out of memory");
	if (fwrite(w->row.data, 1, w->row.len, w->fp) != w->row.len)
		return write_error(w);
	return 0;
}

int csv_out_table_end(struct csv_out *w)
{
	if (w->fe.failed)
		return -1;
	if (w->state != 1)
		return fail(w, "table_end without table_begin");
	w->state = 2;
	return 0;
}

const char *csv_out_error(const struct csv_out *w)
{
	return w->fe.failed ? w->fe.msg : "";
}

int csv_out_close(struct csv_out *w, char *err, size_t errlen)
{
	if (!w)
		return 0;
	errno = 0;
	if (fflush(w->fp) == EOF || ferror(w->fp))
		write_error(w);
	int rc = w->fe.failed ? -1 : 0;
	if (rc && err && errlen)
		snprintf(err, errlen, "%s", w->fe.msg);
	buf_release(&w->cell);
	buf_release(&w->row);
	free(w->cols);
	free(w);
	return rc;
}

/* ------------------------------------------------------------- rsink glue */

static int s_kpis(void *w, const struct rkpi *k, size_t n)
{
	(void)k;
	(void)n;
	return ((struct csv_out *)w)->fe.failed ? -1 : 0;
}

static int s_chart(void *w, const struct rchart *c, const struct rmem *m)
{
	(void)c;
	(void)m;
	return ((struct csv_out *)w)->fe.failed ? -1 : 0;
}

static int s_begin(void *w, const char *t, const struct rcol *c, size_t n, size_t max_rows)
{
	(void)max_rows; /* a CSV holds every row */
	return csv_out_table_begin(w, t, c, n);
}
static int s_row(void *w, const struct rval *v) { return csv_out_table_row(w, v); }
static int s_end(void *w) { return csv_out_table_end(w); }
static const char *s_error(void *w) { return csv_out_error(w); }
static int s_close(void *w, char *err, size_t errlen) { return csv_out_close(w, err, errlen); }

static const struct rsink_ops csv_ops = {
	"csv", s_kpis, s_chart, s_begin, s_row, s_end, s_error, s_close,
};

struct rsink csv_out_sink(struct csv_out *w)
{
	struct rsink s = { &csv_ops, w };
	return s;
}

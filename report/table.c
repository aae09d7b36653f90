/*
 * table.c - value formatting, UTF-8 hygiene and the bounded in-memory table.
 */
#include "table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

static const uint64_t pow10u[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };

static int clamp_scale(int s)
{
	return s < 0 ? 0 : s > RCOL_MAX_SCALE ? RCOL_MAX_SCALE : s;
}

/* the decimal digits of v at out (no NUL), returns their count (<= 20);
 * at least `min` digits, zero-padded: printf's "%0*" PRIu64 without printf */
static size_t put_u64(char *out, uint64_t v, int min)
{
	char t[20];
	size_t k = 0;
	do {
		t[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while ((int)k < min && k < sizeof t)
		t[k++] = '0';
	for (size_t i = 0; i < k; i++)
		out[i] = t[k - 1 - i];
	return k;
}

/* micro-units rounded half away from zero to `scale` decimals, in unsigned
 * arithmetic so INT64_MIN works too */
static size_t fmt_money(int64_t micro, int scale, char *out, size_t n)
{
	int neg = micro < 0;
	uint64_t a = neg ? (uint64_t)0 - (uint64_t)micro : (uint64_t)micro;
	uint64_t div = pow10u[RCOL_MAX_SCALE - scale];
	uint64_t q = a / div, r = a % div;
	if (r * 2 >= div)
		q++;
	if (q == 0 && a != 0) { /* never show an amount as zero: all six decimals (metric_money, 0019) */
		scale = RCOL_MAX_SCALE;
		q = a;
	}
	char t[48];
	size_t len = 0;
	if (neg && q)
		t[len++] = '-';
	if (scale == 0)
		len += put_u64(t + len, q, 1);
	else {
		len += put_u64(t + len, q / pow10u[scale], 1);
		t[len++] = '.';
		len += put_u64(t + len, q % pow10u[scale], scale);
	}
	if (len >= n)
		len = n - 1;
	memcpy(out, t, len);
	out[len] = '\0';
	return len;
}

/* d rounded half away from zero to `scale` decimals, as SQL's round() on
 * numeric: a decimal tie (6.25 -> 6.3) stays a tie although its double is a
 * hair below it, so every tool shows the same figure (docs/metrics.md) */
static double round_half_away(double d, int scale)
{
	double p = (double)pow10u[scale], s = fabs(d) * p, t = floor(s);
	if (s - t >= 0.5 - 1e-9 * (s > 1.0 ? s : 1.0))
		t += 1.0;
	return copysign(t / p, d);
}

static size_t fmt_fixed(double d, int scale, const char *suffix, char *out, size_t n)
{
	if (!isfinite(d))
		d = 0.0; /* NaN/inf have no spreadsheet form: documented as 0 */
	if (fabs(d) < 1e15)
		d = round_half_away(d, scale);
	int len = snprintf(out, n, "%.*f%s", scale, d, suffix);
	/* "-0.00" is 0 to a reader and must not differ between formats */
	if (len > 0 && out[0] == '-' && strspn(out + 1, "0.") == strlen(out + 1) - strlen(suffix)) {
		memmove(out, out + 1, (size_t)len);
		len--;
	}
	return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

/* Howard Hinnant's days_from_civil inverse: days since 1970-01-01 to a
 * proleptic Gregorian date, exact for every int64 day count we can get */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void two(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DD HH:MM:SS" of a wall-clock time in microseconds, without
 * gmtime/strftime (a CDR export formats three per row) */
static size_t fmt_timestamp(int64_t us, char *out, size_t n)
{
	int64_t sec = us / 1000000;
	if (us % 1000000 < 0)
		sec--; /* floor, not truncation toward zero */
	int64_t days = sec / 86400, rem = sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) { /* out of the four-digit form: let printf say it */
		int len = snprintf(out, n, "%" PRId64 "-%02u-%02u %02u:%02u:%02u", y, m, d, (unsigned)(rem / 3600),
				   (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
		return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
	}
	if (n < 20) {
		out[0] = '\0';
		return 0;
	}
	two(out, (unsigned)(y / 100));
	two(out + 2, (unsigned)(y % 100));
	out[4] = '-';
	two(out + 5, m);
	out[7] = '-';
	two(out + 8, d);
	out[10] = ' ';
	two(out + 11, (unsigned)(rem / 3600));
	out[13] = ':';
	two(out + 14, (unsigned)(rem / 60 % 60));
	out[16] = ':';
	two(out + 17, (unsigned)(rem % 60));
	out[19] = '\0';
	return 19;
}

/* "%" PRId64 without printf (n > 0) */
static size_t fmt_int(int64_t v, char *out, size_t n)
{
	char t[24];
	size_t l = 0;
	if (v < 0)
		t[l++] = '-';
	l += put_u64(t + l, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 1);
	if (l >= n)
		l = n - 1;
	memcpy(out, t, l);
	out[l] = '\0';
	return l;
}

static size_t fmt_duration(int64_t s, enum rfmt f, char *out, size_t n)
{
	if (f == RFMT_PLAIN)
		return fmt_int(s, out, n);
	uint64_t a = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
	int len = snprintf(out, n, "%s%" PRIu64 ":%02u:%02u", s < 0 ? "-" : "", a / 3600, (unsigned)(a / 60 % 60),
			   (unsigned)(a % 60));
	return len < 0 ? 0 : (size_t)len < n ? (size_t)len : n - 1;
}

size_t rval_format(const struct rcol *c, const struct rval *v, enum rfmt f, char *out, size_t n)
{
	if (n == 0)
		return 0;
	out[0] = '\0';
	if (v->null)
		return 0;
	int scale = clamp_scale(c->scale);
	switch (c->type) {
	case RCOL_TEXT: {
		size_t l = v->s ? strlen(v->s) : 0;
		if (l >= n)
			l = n - 1;
		if (l)
			memcpy(out, v->s, l);
		out[l] = '\0';
		return l;
	}
	case RCOL_INT:
		return fmt_int(v->i, out, n);
	case RCOL_MONEY:
		return fmt_money(v->i, scale, out, n);
	case RCOL_DECIMAL:
		return fmt_fixed(v->d, scale, "", out, n);
	case RCOL_PERCENT:
		return fmt_fixed(v->d * 100.0, scale, f == RFMT_DISPLAY ? "%" : "", out, n);
	case RCOL_TIMESTAMP:
		return fmt_timestamp(v->i, out, n);
	case RCOL_DURATION:
		return fmt_duration(v->i, f, out, n);
	}
	return 0;
}

double rval_number(const struct rcol *c, const struct rval *v)
{
	char t[RVAL_NUMTEXT_MAX];
	if (v->null)
		return 0.0;
	switch (c->type) {
	case RCOL_TEXT:
		return 0.0;
	case RCOL_INT:
		return (double)v->i;
	case RCOL_DURATION:
		return (double)v->i / 86400.0;
	case RCOL_TIMESTAMP: {
		int64_t sec = v->i / 1000000;
		if (v->i % 1000000 < 0)
			sec--;
		return (double)sec;
	}
	case RCOL_PERCENT:
		rval_format(c, v, RFMT_PLAIN, t, sizeof t);
		return strtod(t, NULL) / 100.0;
	case RCOL_MONEY:
	case RCOL_DECIMAL:
		rval_format(c, v, RFMT_PLAIN, t, sizeof t);
		return strtod(t, NULL);
	}
	return 0.0;
}

double rval_chart_number(const struct rcol *c, const struct rval *v)
{
	if (c->type == RCOL_DURATION)
		return v->null ? 0.0 : (double)v->i;
	if (c->type == RCOL_PERCENT) {
		char t[RVAL_NUMTEXT_MAX];
		if (v->null)
			return 0.0;
		rval_format(c, v, RFMT_PLAIN, t, sizeof t);
		return strtod(t, NULL); /* percentage points, as labelled */
	}
	return rval_number(c, v);
}

int rcol_is_numeric(enum rcol_type t)
{
	return t == RCOL_INT || t == RCOL_MONEY || t == RCOL_DECIMAL || t == RCOL_DURATION || t == RCOL_PERCENT;
}

const char *rcol_type_name(enum rcol_type t)
{
	switch (t) {
	case RCOL_TEXT: return "text";
	case RCOL_INT: return "int";
	case RCOL_MONEY: return "money";
	case RCOL_DECIMAL: return "decimal";
	case RCOL_TIMESTAMP: return "timestamp";
	case RCOL_DURATION: return "duration";
	case RCOL_PERCENT: return "percent";
	}
	return "?";
}

/* [+-]digits or [+-]digits.digits: a spreadsheet reads it as a number (an
 * E.164 number, a negative amount), no formula runs. */
int rtext_signed_number(const char *s)
{
	const char *p = s + 1;
	if (!(*p >= '0' && *p <= '9'))
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/* The bytes at p that XML 1.0 cannot carry (C0 controls but tab and
 * newline; U+FFFE, U+FFFF) or would turn into a newline (CR), written as
 * the character's _xHHHH_ as Excel does: the byte count, 0 for none. */
static size_t xml_unsafe(const char *p, unsigned *cp)
{
	unsigned char c = (unsigned char)p[0];
	if (c && c < 0x20 && c != '\t' && c != '\n') {
		*cp = c;
		return 1;
	}
	if (c == 0xEF && (unsigned char)p[1] == 0xBF && ((unsigned char)p[2] == 0xBE || (unsigned char)p[2] == 0xBF)) {
		*cp = 0xFFC0u | ((unsigned char)p[2] & 0x3Fu);
		return 3;
	}
	return 0;
}

int rtext_xlsx_escape(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdefABCDEF";
	unsigned cp;
	for (const char *p = s; *p; p++) {
		/* "_xHHHH_" is how ECMA-376 (22.9.2.19 ST_Xstring) writes a
		 * character; a literal one is kept by escaping its '_' -- also
		 * when its closing '_' is the start of an escape written below
		 * ("_x0041" and a control character; fuzz_cells finding) */
		if (p[0] == '_' && p[1] == 'x' && p[2] && strchr(hex, p[2]) && p[3] && strchr(hex, p[3]) && p[4] &&
		    strchr(hex, p[4]) && p[5] && strchr(hex, p[5]) && (p[6] == '_' || xml_unsafe(p + 6, &cp))) {
			if (buf_puts(out, "_x005F_") < 0)
				return -1;
			continue;
		}
		/* also in the chart caches libxlsxwriter copies from the cells */
		size_t n = xml_unsafe(p, &cp);
		if (n) {
			char e[8];
			snprintf(e, sizeof e, "_x%04X_", cp);
			if (buf_puts(out, e) < 0)
				return -1;
			p += n - 1;
			continue;
		}
		if (buf_append(out, p, 1) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------- rmem */

int rmem_init(struct rmem *m, const struct rcol *cols, size_t ncols, size_t max_rows)
{
	memset(m, 0, sizeof *m);
	if (ncols == 0 || ncols > RMEM_MAX_COLS || max_rows == 0)
		return -1;
	m->cols = xcalloc(ncols, sizeof *m->cols);
	for (size_t i = 0; i < ncols; i++) {
		m->cols[i] = cols[i];
		m->cols[i].name = xstrdup(cols[i].name ? cols[i].name : "");
		m->cols[i].label = cols[i].label ? xstrdup(cols[i].label) : NULL;
		m->cols[i].scale = clamp_scale(cols[i].scale);
	}
	m->ncols = ncols;
	m->max_rows = max_rows;
	return 0;
}

int rmem_push(struct rmem *m, const struct rval *vals)
{
	if (m->nrows >= m->max_rows)
		return -1;
	m->vals = xrealloc(m->vals, (m->nrows + 1) * m->ncols * sizeof *m->vals);
	struct rval *row = m->vals + m->nrows * m->ncols;
	for (size_t i = 0; i < m->ncols; i++) {
		row[i] = vals[i];
		row[i].s = NULL;
		if (m->cols[i].type == RCOL_TEXT && !vals[i].null) {
			struct buf b;
			buf_init(&b, 0);
			rtext_clean(&b, vals[i].s, RMEM_TEXT_MAX, 0);
			row[i].s = buf_detach(&b, NULL);
		}
	}
	m->nrows++;
	return 0;
}

const struct rval *rmem_row(const struct rmem *m, size_t row)
{
	return row < m->nrows ? m->vals + row * m->ncols : NULL;
}

void rmem_release(struct rmem *m)
{
	for (size_t r = 0; r < m->nrows; r++)
		for (size_t c = 0; c < m->ncols; c++)
			free((char *)m->vals[r * m->ncols + c].s);
	for (size_t c = 0; c < m->ncols; c++) {
		free((char *)m->cols[c].name);
		free((char *)m->cols[c].label);
	}
	free(m->vals);
	free(m->cols);
	memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------- charts */

const char *rchart_kind_name(enum rchart_kind k)
{
	switch (k) {
	case RCHART_BAR: return "bar";
	case RCHART_LINE: return "line";
	case RCHART_STACKED: return "stacked";
	case RCHART_DONUT: return "donut";
	}
	return "?";
}

int rchart_check(const struct rchart *c, const struct rmem *m, char *err, size_t errlen)
{
	if (c->cat_col >= m->ncols) {
		snprintf(err, errlen, "chart \"%s\": category column %zu out of range", c->title ? c->title : "",
			 c->cat_col);
		return -1;
	}
	if (c->nseries == 0 || c->nseries > RCHART_MAX_SERIES) {
		snprintf(err, errlen, "chart \"%s\": needs 1 to %d series", c->title ? c->title : "",
			 RCHART_MAX_SERIES);
		return -1;
	}
	for (size_t i = 0; i < c->nseries; i++) {
		size_t k = c->series_cols[i];
		if (k >= m->ncols || !rcol_is_numeric(m->cols[k].type)) {
			snprintf(err, errlen, "chart \"%s\": series %zu is not a numeric column", c->title ? c->title : "", i);
			return -1;
		}
	}
	if (m->nrows == 0 || m->nrows > RCHART_MAX_CATS) {
		snprintf(err, errlen, "chart \"%s\": needs 1 to %d categories, has %zu", c->title ? c->title : "",
			 RCHART_MAX_CATS, m->nrows);
		return -1;
	}
	if (c->kind == RCHART_DONUT) {
		const struct rcol *sc = &m->cols[c->series_cols[0]];
		for (size_t r = 0; r < m->nrows; r++)
			if (rval_chart_number(sc, &rmem_row(m, r)[c->series_cols[0]]) < 0) {
				snprintf(err, errlen, "chart \"%s\": a donut cannot show negative values",
					 c->title ? c->title : "");
				return -1;
			}
	}
	return 0;
}

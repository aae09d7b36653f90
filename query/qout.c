#include "qout.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "xalloc.h"

int qout_format_parse(const char *s, enum qout_format *fmt)
{
	if (!strcmp(s, "table"))
		*fmt = QOUT_TABLE;
	else if (!strcmp(s, "csv"))
		*fmt = QOUT_CSV;
	else if (!strcmp(s, "json") || !strcmp(s, "ndjson"))
		*fmt = QOUT_JSON;
	else if (!strcmp(s, "json-array"))
		*fmt = QOUT_JSON_ARRAY;
	else
		return -1;
	return 0;
}

void qout_init(struct qout *q, enum qout_format fmt, FILE *out)
{
	memset(q, 0, sizeof *q);
	q->fmt = fmt;
	q->out = out;
	q->header = 1;
}

/* ---------------------------------------------------------------- UTF-8 */

/* Decode one code point at s (n bytes left); *len = bytes used.  Invalid
 * sequences decode as U+FFFD of length 1. */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *len)
{
	uint32_t c = s[0];
	size_t need;
	if (c < 0x80) {
		*len = 1;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		c &= 0x07;
	} else {
		*len = 1;
		return 0xfffd;
	}
	if (n < need + 1) {
		*len = 1;
		return 0xfffd;
	}
	for (size_t i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*len = 1;
			return 0xfffd;
		}
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* overlong, surrogates, beyond U+10FFFF */
	if ((need == 2 && c < 0x800) || (need == 3 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff)) {
		*len = 1;
		return 0xfffd;
	}
	*len = need + 1;
	return c;
}

struct range {
	uint32_t lo, hi;
};

/* Combining marks and zero-width characters (the common blocks). */
static const struct range zero_width[] = {
	{ 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd }, { 0x0610, 0x061a }, { 0x064b, 0x065f },
	{ 0x0670, 0x0670 }, { 0x06d6, 0x06dc }, { 0x0900, 0x0902 }, { 0x093a, 0x093a }, { 0x093c, 0x093c },
	{ 0x0941, 0x0948 }, { 0x094d, 0x094d }, { 0x0e31, 0x0e31 }, { 0x0e34, 0x0e3a }, { 0x0e47, 0x0e4e },
	{ 0x1ab0, 0x1aff }, { 0x1dc0, 0x1dff }, { 0x200b, 0x200f }, { 0x202a, 0x202e }, { 0x2060, 0x2064 },
	{ 0x20d0, 0x20ff }, { 0xfe00, 0xfe0f }, { 0xfe20, 0xfe2f }, { 0xfeff, 0xfeff }, { 0xe0100, 0xe01ef },
};

/* East Asian Wide and Fullwidth (and emoji presentation) blocks. */
static const struct range wide[] = {
	{ 0x1100, 0x115f }, { 0x231a, 0x231b }, { 0x2329, 0x232a }, { 0x23e9, 0x23ec }, { 0x2614, 0x2615 },
	{ 0x2e80, 0x303e }, { 0x3041, 0x33ff }, { 0x3400, 0x4dbf }, { 0x4e00, 0x9fff }, { 0xa000, 0xa4cf },
	{ 0xa960, 0xa97f }, { 0xac00, 0xd7a3 }, { 0xf900, 0xfaff }, { 0xfe10, 0xfe19 }, { 0xfe30, 0xfe6f },
	{ 0xff00, 0xff60 }, { 0xffe0, 0xffe6 }, { 0x1f300, 0x1f64f }, { 0x1f900, 0x1f9ff }, { 0x20000, 0x2fffd },
	{ 0x30000, 0x3fffd },
};

static int in_ranges(uint32_t c, const struct range *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c >= r[i].lo && c <= r[i].hi)
			return 1;
	return 0;
}

static size_t cp_width(uint32_t c)
{
	if (in_ranges(c, zero_width, sizeof zero_width / sizeof zero_width[0]))
		return 0;
	if (in_ranges(c, wide, sizeof wide / sizeof wide[0]))
		return 2;
	return 1;
}

size_t qout_width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), w = 0, len;
	while (n) {
		w += cp_width(utf8_next(p, n, &len));
		p += len;
		n -= len;
	}
	return w;
}

/* ---------------------------------------------------------------- writers */

int qout_csv_field(FILE *out, const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	int quote = n && (s[0] == ' ' || s[n - 1] == ' ');
	for (const char *p = s; *p && !quote; p++)
		if (*p == ',' || *p == '"' || *p == '\r' || *p == '\n')
			quote = 1;
	if (!quote)
		return fputs(s, out) < 0 ? -1 : 0;
	if (putc('"', out) == EOF)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p == '"' && putc('"', out) == EOF)
			return -1;
		if (putc(*p, out) == EOF)
			return -1;
	}
	return putc('"', out) == EOF ? -1 : 0;
}

/* JSON numbers as PostgreSQL prints them, except the non-finite ones */
/* A JSON number (RFC 8259): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * Anything else in a numeric column (NaN, Infinity, "", odd bytes: fuzz
 * finding) is written as a string, so the output stays valid JSON. */
static int json_number_ok(const char *s)
{
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return 0;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static int write_json_row(struct qout *q, const char *const *v)
{
	if (q->fmt == QOUT_JSON_ARRAY && fputs(q->rows ? ",\n" : "[\n", q->out) < 0)
		return -1;
	if (putc('{', q->out) == EOF)
		return -1;
	for (size_t i = 0; i < q->ncols; i++) {
		if ((i && putc(',', q->out) == EOF) || json_fput_string(q->out, q->names[i]) < 0 ||
		    putc(':', q->out) == EOF)
			return -1;
		int rc;
		if (!v[i])
			rc = fputs("null", q->out);
		else if (q->kinds[i] == QOUT_NUMBER && json_number_ok(v[i]))
			rc = fputs(v[i], q->out);
		else if (q->kinds[i] == QOUT_BOOL)
			rc = fputs(v[i][0] == 't' ? "true" : "false", q->out);
		else
			rc = json_fput_string(q->out, v[i]);
		if (rc < 0)
			return -1;
	}
	if (fputs(q->fmt == QOUT_JSON ? "}\n" : "}", q->out) < 0)
		return -1;
	return 0;
}

static int write_csv_row(struct qout *q, const char *const *v)
{
	for (size_t i = 0; i < q->ncols; i++)
		if ((i && putc(',', q->out) == EOF) || qout_csv_field(q->out, v[i]) < 0)
			return -1;
	return fputs("\r\n", q->out) < 0 ? -1 : 0;
}

/* one table cell: control characters as '?', padded to width w */
static int write_cell(struct qout *q, const char *s, size_t w, int right, int last)
{
	size_t sw = qout_width(s);
	size_t pad = sw < w ? w - sw : 0;
	if (right)
		for (size_t i = 0; i < pad; i++)
			if (putc(' ', q->out) == EOF)
				return -1;
	for (const char *p = s; *p; p++)
		if (putc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, q->out) == EOF)
			return -1;
	if (!right && !last)
		for (size_t i = 0; i < pad; i++)
			if (putc(' ', q->out) == EOF)
				return -1;
	return 0;
}

static int write_table_row(struct qout *q, const char *const *v)
{
	for (size_t i = 0; i < q->ncols; i++) {
		if (i && fputs("  ", q->out) < 0)
			return -1;
		if (write_cell(q, v[i] ? v[i] : "", q->width[i], q->kinds[i] == QOUT_NUMBER, i + 1 == q->ncols) < 0)
			return -1;
	}
	return putc('\n', q->out) == EOF ? -1 : 0;
}

static int table_flush(struct qout *q)
{
	if (q->flushed)
		return 0;
	q->flushed = 1;
	if (q->header) {
		if (write_table_row(q, (const char *const *)q->names) < 0)
			return -1;
		for (size_t i = 0; i < q->ncols; i++) {
			if (i && fputs("  ", q->out) < 0)
				return -1;
			for (size_t k = 0; k < q->width[i]; k++)
				if (putc('-', q->out) == EOF)
					return -1;
		}
		if (putc('\n', q->out) == EOF)
			return -1;
	}
	int rc = 0;
	for (size_t r = 0; r < q->nsample; r++) {
		if (!rc && write_table_row(q, (const char *const *)q->sample[r]) < 0)
			rc = -1;
		for (size_t i = 0; i < q->ncols; i++)
			free(q->sample[r][i]);
		free(q->sample[r]);
	}
	free(q->sample);
	q->sample = NULL;
	q->nsample = 0;
	return rc;
}

void qout_begin(struct qout *q, size_t ncols, const char *const *names, const enum qout_kind *kinds)
{
	q->ncols = ncols;
	q->names = xcalloc(ncols ? ncols : 1, sizeof *q->names);
	q->kinds = xcalloc(ncols ? ncols : 1, sizeof *q->kinds);
	q->width = xcalloc(ncols ? ncols : 1, sizeof *q->width);
	for (size_t i = 0; i < ncols; i++) {
		q->names[i] = xstrdup(names[i]);
		q->kinds[i] = kinds ? kinds[i] : QOUT_TEXT;
		q->width[i] = q->header ? qout_width(names[i]) : 0;
	}
	if (q->fmt == QOUT_CSV && q->header) {
		/* the header is a row of names */
		write_csv_row(q, (const char *const *)q->names);
	}
}

int qout_row(struct qout *q, const char *const *v)
{
	int rc = 0;
	switch (q->fmt) {
	case QOUT_CSV: rc = write_csv_row(q, v); break;
	case QOUT_JSON:
	case QOUT_JSON_ARRAY: rc = write_json_row(q, v); break;
	case QOUT_TABLE:
		if (q->flushed) {
			rc = write_table_row(q, v);
			break;
		}
		if (!q->sample)
			q->sample = xcalloc(QOUT_TABLE_SAMPLE, sizeof *q->sample);
		char **copy = xcalloc(q->ncols ? q->ncols : 1, sizeof *copy);
		for (size_t i = 0; i < q->ncols; i++) {
			copy[i] = xstrdup(v[i] ? v[i] : "");
			size_t w = qout_width(copy[i]);
			if (w > q->width[i])
				q->width[i] = w;
		}
		q->sample[q->nsample++] = copy;
		if (q->nsample == QOUT_TABLE_SAMPLE)
			rc = table_flush(q);
		break;
	}
	q->rows++;
	return rc;
}

int qout_end(struct qout *q)
{
	int rc = 0;
	if (q->fmt == QOUT_TABLE)
		rc = table_flush(q);
	else if (q->fmt == QOUT_JSON_ARRAY)
		rc = fputs(q->rows ? "\n]\n" : "[]\n", q->out) < 0 ? -1 : 0;
	if (fflush(q->out) != 0)
		rc = -1;
	if (ferror(q->out)) {
		if (!errno)
			errno = EIO;
		rc = -1;
	}
	return rc;
}

void qout_release(struct qout *q)
{
	for (size_t r = 0; r < q->nsample; r++) {
		for (size_t i = 0; i < q->ncols; i++)
			free(q->sample[r][i]);
		free(q->sample[r]);
	}
	free(q->sample);
	for (size_t i = 0; i < q->ncols; i++)
		free(q->names[i]);
	free(q->names);
	free(q->kinds);
	free(q->width);
	memset(q, 0, sizeof *q);
}

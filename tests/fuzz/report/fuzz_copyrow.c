/* libFuzzer target: splitting a COPY TO text-format row (report/copytext.c).
 * Checks, for arbitrary bytes:
 *  - as a row: copytext_split() stays inside the row, every field it gives
 *    is NUL-terminated inside it, and a too-small field array is refused;
 *  - as fields (split at 0x01; a field starting with 0x02 is NULL): the
 *    row PostgreSQL's COPY TO would send for them (CopyAttributeOutText's
 *    escapes) splits back into exactly those fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "copytext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 64

/* One value as the server writes it (text format, tab delimiter). */
static void out_text(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i], e = 0;
		switch (c) {
		case '\b': e = 'b'; break;
		case '\f': e = 'f'; break;
		case '\n': e = 'n'; break;
		case '\r': e = 'r'; break;
		case '\t': e = 't'; break;
		case '\v': e = 'v'; break;
		case '\\': e = '\\'; break;
		default: break;
		}
		if (e) {
			char esc[2] = { '\\', e };
			buf_append(b, esc, 2);
		} else
			buf_append(b, &c, 1);
	}
}

static void as_row(const uint8_t *data, size_t size)
{
	char *row = malloc(size + 1);
	if (!row)
		return;
	memcpy(row, data, size);
	row[size] = '\0';
	char *fields[MAXF];
	long n = copytext_split(row, size, fields, MAXF);
	if (n == 0 || n > MAXF)
		abort();
	for (long i = 0; i < n; i++)
		if (fields[i] && (fields[i] < row || fields[i] > row + size || !memchr(fields[i], '\0', (size_t)(row + size + 1 - fields[i]))))
			abort();
	if (n > 1) { /* one slot fewer than fields: refused */
		memcpy(row, data, size);
		row[size] = '\0';
		if (copytext_split(row, size, fields, (size_t)n - 1) != -1)
			abort();
	}
	free(row);
}

static void as_fields(const uint8_t *data, size_t size)
{
	/* the fields, with NUL (no PostgreSQL text holds one) made a space */
	char *in = malloc(size + 1);
	if (!in)
		return;
	for (size_t i = 0; i < size; i++)
		in[i] = data[i] ? (char)data[i] : ' ';
	in[size] = '\0';
	const char *want[MAXF];
	size_t wlen[MAXF], nf = 0;
	struct buf row;
	buf_init(&row, 0);
	const char *p = in, *end = in + size;
	for (;;) {
		const char *q = memchr(p, '\x01', (size_t)(end - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
		if (nf == MAXF)
			break;
		if (nf)
			buf_append(&row, "\t", 1);
		if (n && p[0] == '\x02') {
			want[nf] = NULL;
			buf_append(&row, "\\N", 2);
		} else {
			want[nf] = p;
			out_text(&row, p, n);
		}
		wlen[nf++] = n;
		if (!q)
			break;
		p = q + 1;
	}
	buf_append(&row, "\n", 1);
	char *fields[MAXF];
	long got = copytext_split(row.data, row.len, fields, MAXF);
	if (got != (long)nf)
		abort();
	for (size_t i = 0; i < nf; i++) {
		if (!want[i] != !fields[i])
			abort();
		if (want[i] && (strlen(fields[i]) != wlen[i] || memcmp(fields[i], want[i], wlen[i])))
			abort();
	}
	buf_release(&row);
	free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_row(data, size);
	as_fields(data, size);
	return 0;
}

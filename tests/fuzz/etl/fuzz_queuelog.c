/* libFuzzer target: the queue_log parser (etl/queuelog.c, qlog_parse) on
 * arbitrary bytes.  Checks, decoding the COPY rows back: a refusal has a
 * "name:line:" reason and no more rows than lines; an accepted text gives
 * one row per event line and the skipped lines make up the rest; every row
 * is valid UTF-8 with 7 fields, its line number points at a line of the
 * input whose fields (valid UTF-8 lines: byte for byte) are the row's
 * callid, queue, agent, event and data array elements. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "queuelog.h"
#include "../utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* COPY text unescape of [p, p+n) into out (returns length). */
static size_t unescape(const char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' && i + 1 < n) {
			char c = p[++i];
			out[o++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
		} else {
			out[o++] = p[i];
		}
	}
	return o;
}

/* the n-th (1-based) line of the input, without its \r\n */
static const char *nth_line(const char *s, size_t len, uint64_t n, size_t *ln)
{
	size_t pos = 0;
	for (uint64_t k = 1; pos <= len; k++) {
		const char *nl = memchr(s + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - s) : len;
		if (k == n) {
			*ln = end - pos;
			if (nl && *ln && s[end - 1] == '\r')
				(*ln)--;
			return s + pos;
		}
		if (!nl)
			break;
		pos = end + 1;
	}
	return NULL;
}

static void check_row(const char *in, size_t len, const char *row, size_t rn)
{
	const char *f[8];
	size_t fl[8], nf = 0, a = 0;
	for (size_t i = 0; i <= rn; i++) {
		if (i == rn || row[i] == '\t') {
			if (nf == 8)
				abort(); /* more than 7 fields */
			f[nf] = row + a;
			fl[nf] = i - a;
			nf++;
			a = i + 1;
		}
	}
	if (nf != 7)
		abort();
	uint64_t line = strtoull(f[0], NULL, 10);
	size_t ln;
	const char *src = nth_line(in, len, line, &ln);
	if (!src)
		abort(); /* a line number that is not in the input */
	if (!utf8_valid((const unsigned char *)src, ln) || memchr(src, '\0', ln))
		return; /* sanitized: U+FFFD instead of the bytes */
	/* the source's fields 2..5 and the data elements */
	const char *sf[64];
	size_t sl[64], ns = 0;
	a = 0;
	for (size_t i = 0; i <= ln && ns < 64; i++) {
		if (i == ln || src[i] == '|') {
			sf[ns] = src + a;
			sl[ns] = i - a;
			ns++;
			a = i + 1;
		}
	}
	char *tmp = malloc(rn + 1);
	for (size_t i = 1; i < 5; i++) {
		size_t k = unescape(f[i + 1], fl[i + 1], tmp);
		if (k != sl[i] || memcmp(tmp, sf[i], k))
			abort();
	}
	/* the text[] literal: {"a","b"} */
	size_t k = unescape(f[6], fl[6], tmp), e = 0;
	if (k < 2 || tmp[0] != '{' || tmp[k - 1] != '}')
		abort();
	size_t i = 1;
	char *el = malloc(k + 1);
	while (i < k - 1) {
		if (tmp[i] != '"')
			abort();
		size_t n = 0;
		for (i++; i < k - 1 && tmp[i] != '"'; i++) {
			if (tmp[i] == '\\')
				i++;
			el[n++] = tmp[i];
		}
		i++; /* the closing quote */
		if (5 + e >= ns || n != sl[5 + e] || memcmp(el, sf[5 + e], n))
			abort();
		e++;
		if (i < k - 1 && tmp[i++] != ',')
			abort();
	}
	if (5 + e != ns)
		abort(); /* not every data field came back */
	free(el);
	free(tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	struct qlog_stats st;
	char err[512] = "";
	buf_init(&out, 0);
	int rc = qlog_parse("fuzz", (const char *)data, size, &out, &st, err, sizeof err);
	if (rc < 0 && strncmp(err, "fuzz:", 5))
		abort(); /* refused without a located reason */
	if (rc == 0 && st.rows + st.skipped != st.lines)
		abort();
	if (!utf8_valid((const unsigned char *)out.data, out.len))
		abort();
	size_t rows = 0, a = 0;
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] != '\n')
			continue;
		check_row((const char *)data, size, out.data + a, i - a);
		rows++;
		a = i + 1;
	}
	if (a != out.len || rows != st.rows)
		abort();
	buf_release(&out);
	return 0;
}

/*
 * copytext.c - COPY text-format rows split in place (copytext.h).
 */
#include "copytext.h"

#include <string.h>

static int octal(char c)
{
	return c >= '0' && c <= '7';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The escape at p[0] == '\\' (p < end), decoded at *w; returns the bytes
 * read.  As PostgreSQL's CopyReadAttributesText() reads it. */
static size_t unescape(const char *p, const char *end, char *w)
{
	if (p + 1 >= end) { /* a lone backslash at the end: itself */
		*w = '\\';
		return 1;
	}
	char c = p[1];
	if (octal(c)) {
		int v = c - '0';
		size_t k = 2;
		for (; k < 4 && p + k < end && octal(p[k]); k++)
			v = (v << 3) + (p[k] - '0');
		*w = (char)(v & 0377);
		return k;
	}
	if (c == 'x' && p + 2 < end && hexval(p[2]) >= 0) {
		int v = hexval(p[2]);
		size_t k = 3;
		if (p + 3 < end && hexval(p[3]) >= 0) {
			v = (v << 4) + hexval(p[3]);
			k = 4;
		}
		*w = (char)v;
		return k;
	}
	switch (c) {
	case 'b': *w = '\b'; break;
	case 'f': *w = '\f'; break;
	case 'n': *w = '\n'; break;
	case 'r': *w = '\r'; break;
	case 't': *w = '\t'; break;
	case 'v': *w = '\v'; break;
	default: *w = c; break;
	}
	return 2;
}

/* the bytes that end a plain run: tab, backslash and the NUL at the end */
static const unsigned char stop[256] = { ['\0'] = 1, ['\t'] = 1, ['\\'] = 1 };

long copytext_split(char *row, size_t len, char **fields, size_t max)
{
	char *p = row, *end = row + len;
	if (len && end[-1] == '\n')
		end--;
	*end = '\0'; /* the scans below stop at it */
	size_t n = 0;
	for (;;) {
		if (n == max)
			return -1;
		if (end - p >= 2 && p[0] == '\\' && p[1] == 'N' && (p + 2 == end || p[2] == '\t')) {
			fields[n++] = NULL;
			p += 2;
		} else {
			fields[n++] = p;
			while (!stop[(unsigned char)*p]) /* most fields have no escape */
				p++;
			char *w = p;
			while (p < end && *p != '\t') {
				if (*p == '\\')
					p += unescape(p, end, w++);
				else /* a plain byte, or a NUL inside: data */
					*w++ = *p++;
			}
			*w = '\0';
		}
		if (p >= end)
			return (long)n;
		*p++ = '\0'; /* the tab: the next field starts after it */
	}
}

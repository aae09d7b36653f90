/*
 * json.c - the one JSON string writer (json.h).
 */
#include "json.h"

#include <string.h>

/* The escape of c into esc (NUL-terminated), or 0 when c stands as it is. */
static size_t escape(unsigned char c, char esc[8])
{
	static const char hex[] = "0123456789abcdef";
	switch (c) {
	case '"': memcpy(esc, "\\\"", 3); return 2;
	case '\\': memcpy(esc, "\\\\", 3); return 2;
	case '\n': memcpy(esc, "\\n", 3); return 2;
	case '\r': memcpy(esc, "\\r", 3); return 2;
	case '\t': memcpy(esc, "\\t", 3); return 2;
	default:
		if (c >= 0x20 && c != 0x7f)
			return 0;
		memcpy(esc, "\\u00", 4);
		esc[4] = hex[c >> 4];
		esc[5] = hex[c & 15];
		esc[6] = '\0';
		return 6;
	}
}

int json_string(struct buf *b, const char *s, size_t n)
{
	if (buf_append(b, "\"", 1) < 0)
		return -1;
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		char esc[8];
		size_t k = escape((unsigned char)s[i], esc);
		if (!k)
			continue;
		if (buf_append(b, s + run, i - run) < 0 || buf_append(b, esc, k) < 0)
			return -1;
		run = i + 1;
	}
	if (buf_append(b, s + run, n - run) < 0 || buf_append(b, "\"", 1) < 0)
		return -1;
	return 0;
}

int json_fput_string(FILE *out, const char *s)
{
	if (putc('"', out) == EOF)
		return -1;
	size_t run = 0, n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		char esc[8];
		size_t k = escape((unsigned char)s[i], esc);
		if (!k)
			continue;
		if (fwrite(s + run, 1, i - run, out) != i - run || fwrite(esc, 1, k, out) != k)
			return -1;
		run = i + 1;
	}
	if (fwrite(s + run, 1, n - run, out) != n - run)
		return -1;
	return putc('"', out) == EOF ? -1 : 0;
}

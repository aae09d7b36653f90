#include "copyfmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return c ? 1 : 0;
	size_t len;
	uint32_t cp;
	if ((c & 0xE0) == 0xC0) {
		len = 2;
		cp = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3;
		cp = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static const char replacement[] = "\xEF\xBF\xBD";

void utf8_sanitize(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	while (i < n) {
		size_t k = utf8_seq(p + i, n - i);
		if (k) {
			i += k;
			continue;
		}
		buf_append(b, s + run, i - run);
		buf_append(b, replacement, 3);
		i++;
		run = i;
	}
	buf_append(b, s + run, n - run);
}

void copy_text(struct buf *b, const char *s, size_t n, char sep)
{
	size_t start = b->len;
	utf8_sanitize(b, s, n);
	/* escape in place into a second pass only when needed */
	size_t extra = 0;
	for (size_t i = start; i < b->len; i++) {
		char c = b->data[i];
		if (c == '\\' || c == '\t' || c == '\n' || c == '\r')
			extra++;
	}
	if (extra) {
		size_t old = b->len;
		buf_grow(b, extra);
		char *d = b->data;
		size_t w = old + extra;
		for (size_t r = old; r-- > start;) {
			char c = d[r];
			const char *esc = c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : NULL;
			if (esc) {
				d[--w] = esc[1];
				d[--w] = '\\';
			} else {
				d[--w] = c;
			}
		}
		buf_setlen(b, old + extra);
	}
	buf_append(b, &sep, 1);
}

void copy_null(struct buf *b, char sep)
{
	buf_append(b, "\\N", 2);
	buf_append(b, &sep, 1);
}

void copy_int(struct buf *b, int64_t v, char sep)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%" PRId64 "%c", v, sep);
	buf_append(b, tmp, (size_t)n);
}

void copy_time_us(struct buf *b, uint64_t us, char sep)
{
	time_t sec = (time_t)(us / 1000000u);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[64];
	int n = snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d.%06u+00%c", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(us % 1000000u), sep);
	buf_append(b, tmp, (size_t)n);
}

void json_string_body(struct buf *b, const char *s, size_t n)
{
	struct buf clean;
	buf_init(&clean, 0);
	utf8_sanitize(&clean, s, n);
	size_t run = 0;
	for (size_t i = 0; i < clean.len; i++) {
		unsigned char c = (unsigned char)clean.data[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, clean.data + run, i - run);
		char esc[8];
		int k = c == '"' ? snprintf(esc, sizeof esc, "\\\"") : c == '\\' ? snprintf(esc, sizeof esc, "\\\\")
			: snprintf(esc, sizeof esc, "\\u%04x", c);
		buf_append(b, esc, (size_t)k);
		run = i + 1;
	}
	buf_append(b, clean.data + run, clean.len - run);
	buf_release(&clean);
}

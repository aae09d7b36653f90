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

/* Length of the leading run of plain ASCII (no NUL, no high bit). */
static size_t ascii_prefix(const unsigned char *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		/* any byte >= 0x80, or any zero byte (haszero trick) */
		if ((w & 0x8080808080808080ull) || ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
			break;
	}
	while (i < n && p[i] && p[i] < 0x80)
		i++;
	return i;
}

void utf8_sanitize(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = ascii_prefix(p, n), run = 0;
	if (i == n) {
		buf_append(b, s, n);
		return;
	}
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

/* 0 plain, 1 needs a COPY escape, 2 not plain ASCII (NUL or high bit). */
static unsigned char copy_class[256];
static unsigned char json_class[256];

__attribute__((constructor)) static void init_classes(void)
{
	for (int i = 0; i < 256; i++) {
		copy_class[i] = (i == 0 || i >= 0x80) ? 2 : (i == '\\' || i == '\t' || i == '\n' || i == '\r') ? 1 : 0;
		json_class[i] = (i == 0 || i >= 0x80) ? 2 : (i < 0x20 || i == '"' || i == '\\') ? 1 : 0;
	}
}

static void copy_escape_ascii(struct buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (copy_class[ch] != 1)
			continue;
		buf_append(b, s + run, i - run);
		char esc[2] = { '\\', ch == '\\' ? '\\' : ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r' };
		buf_append(b, esc, 2);
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
}

/* Escape s with esc; text that is not plain ASCII is made valid UTF-8 first
 * (bytes >= 0x80 are never escaped, so the repaired copy passes through). */
static void append_escaped(struct buf *b, const char *s, size_t n, const unsigned char *cls,
			   void (*esc)(struct buf *, const char *, size_t))
{
	for (size_t i = 0; i < n; i++) {
		if (cls[(unsigned char)s[i]] == 2) {
			struct buf clean;
			buf_init(&clean, 0);
			utf8_sanitize(&clean, s, n);
			esc(b, clean.data, clean.len);
			buf_release(&clean);
			return;
		}
	}
	esc(b, s, n); /* the common case: plain ASCII, one pass, no copy */
}

void copy_text(struct buf *b, const char *s, size_t n, char sep)
{
	append_escaped(b, s, n, copy_class, copy_escape_ascii);
	buf_append(b, &sep, 1);
}

void copy_null(struct buf *b, char sep)
{
	buf_append(b, "\\N", 2);
	buf_append(b, &sep, 1);
}

void copy_int(struct buf *b, int64_t v, char sep)
{
	char tmp[24];
	size_t i = sizeof tmp;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	tmp[--i] = sep;
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--i] = '-';
	buf_append(b, tmp + i, sizeof tmp - i);
}

void copy_time_us(struct buf *b, uint64_t us, char sep)
{
	/* rows come in time order: format each second once */
	static _Thread_local time_t last_sec = -1;
	static _Thread_local char prefix[24];
	time_t sec = (time_t)(us / 1000000u);
	if (sec != last_sec) {
		struct tm tm;
		gmtime_r(&sec, &tm);
		snprintf(prefix, sizeof prefix, "%04d-%02d-%02d %02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		last_sec = sec;
	}
	char tmp[48];
	memcpy(tmp, prefix, 20);
	unsigned frac = (unsigned)(us % 1000000u);
	for (int i = 25; i >= 20; i--) {
		tmp[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	memcpy(tmp + 26, "+00", 3);
	tmp[29] = sep;
	buf_append(b, tmp, 30);
}

static void json_escape(struct buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (json_class[ch] != 1)
			continue;
		buf_append(b, s + run, i - run);
		char esc[8];
		int k = ch == '"' ? snprintf(esc, sizeof esc, "\\\"") : ch == '\\' ? snprintf(esc, sizeof esc, "\\\\")
			: snprintf(esc, sizeof esc, "\\u%04x", ch);
		buf_append(b, esc, (size_t)k);
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
}

void json_string_body(struct buf *b, const char *s, size_t n)
{
	append_escaped(b, s, n, json_class, json_escape);
}

/*
 * utf8.c - valid UTF-8 out of any bytes (utf8.h).
 */
#include "utf8.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid.
 * Rejects overlongs, surrogates and code points over U+10FFFF. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
	}
	return 0;
}

long rtext_clean(struct buf *out, const char *s, size_t maxbytes, unsigned flags)
{
	static const char repl[] = "\xEF\xBF\xBD";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t used = 0;
	long chars = 0;
	while (*p) {
		/* a run of plain ASCII (printable, or any below 0x80 without
		 * RTEXT_NO_CTRL) is copied as it is, in one append */
		size_t run = 0;
		if (flags & RTEXT_NO_CTRL)
			while (p[run] >= 0x20 && p[run] < 0x7F)
				run++;
		else
			while (p[run] && p[run] < 0x80)
				run++;
		if (maxbytes && used + run > maxbytes)
			run = maxbytes - used;
		if (run) {
			if (buf_append(out, p, run) < 0)
				return -1;
			used += run;
			chars += (long)run;
			p += run;
			continue;
		}
		size_t k = utf8_seq(p); /* reads at most up to the NUL: p[i] is checked in order */
		const char *src = (const char *)p;
		size_t outk = k, adv = k;
		char sp = ' ';
		if (k == 0) {
			src = repl;
			outk = 3;
			adv = 1;
		} else if ((flags & RTEXT_NO_CTRL) && k == 1 && (*p < 0x20 || *p == 0x7F)) {
			src = &sp;
		}
		if (maxbytes && used + outk > maxbytes)
			break;
		if (buf_append(out, src, outk) < 0)
			return -1;
		used += outk;
		chars++;
		p += adv;
	}
	return chars;
}

size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			n++;
	return n;
}

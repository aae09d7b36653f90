#include "copyfmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

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

/* Copy s to dst while it is plain COPY text (none of NUL, TAB, LF, CR,
 * '\\', >= 0x80), word at a time where no byte is below 0x20, '\\' or
 * high; returns n, or where it stopped (dst has room for n bytes). */
static inline size_t copy_copy_plain(char *dst, const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		uint64_t bs = w ^ (ones * '\\');
		if ((w | ((w - ones * 0x20) & ~w) | ((bs - ones) & ~bs)) & highs)
			break; /* maybe special: the byte loop decides */
		memcpy(dst + i, &w, 8);
	}
	for (; i < n; i++) {
		if (copy_class[(unsigned char)s[i]])
			return i;
		dst[i] = s[i];
	}
	return n;
}

void copy_text(struct buf *b, const char *s, size_t n, char sep)
{
	if (n + 1 < b->cap - b->len && copy_copy_plain(b->data + b->len, s, n) == n) { /* the common case */
		b->data[b->len + n] = sep;
		b->len += n + 1;
		b->data[b->len] = '\0';
		return;
	}
	append_escaped(b, s, n, copy_class, copy_escape_ascii);
	buf_append(b, &sep, 1);
}

void copy_null(struct buf *b, char sep)
{
	char t[3] = { '\\', 'N', sep };
	buf_append(b, t, 3);
}

void copy_int(struct buf *b, int64_t v, char sep)
{
	static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				    "8081828384858687888990919293949596979899";
	char tmp[24];
	size_t i = sizeof tmp;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	tmp[--i] = sep;
	while (u >= 100) { /* two digits a step */
		unsigned r = (unsigned)(u % 100);
		u /= 100;
		tmp[--i] = pairs[2 * r + 1];
		tmp[--i] = pairs[2 * r];
	}
	if (u >= 10) {
		tmp[--i] = pairs[2 * u + 1];
		tmp[--i] = pairs[2 * u];
	} else {
		tmp[--i] = (char)('0' + u);
	}
	if (v < 0)
		tmp[--i] = '-';
	buf_append(b, tmp + i, sizeof tmp - i);
}

/* gmtime_r()'s date and time of day for sec >= 0, by arithmetic (Howard
 * Hinnant's civil_from_days; POSIX days have 86400 s). */
static void utc_tm(int64_t sec, struct tm *tm)
{
	int64_t z = sec / 86400 + 719468, sod = sec % 86400;
	int64_t era = z / 146097, doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	memset(tm, 0, sizeof *tm);
	tm->tm_year = (int)(yoe + era * 400 + (m <= 2) - 1900);
	tm->tm_mon = (int)m - 1;
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_hour = (int)(sod / 3600);
	tm->tm_min = (int)(sod / 60 % 60);
	tm->tm_sec = (int)(sod % 60);
}

void copy_time_us(struct buf *b, uint64_t us, char sep)
{
	/* rows come in time order: format each second once */
	static _Thread_local time_t last_sec = -1;
	static _Thread_local char prefix[24];
	time_t sec = (time_t)(us / 1000000u);
	if (sec != last_sec) {
		struct tm tm;
		utc_tm((int64_t)sec, &tm); /* sec >= 0: from an unsigned count */
		int y = tm.tm_year + 1900;
		if (y >= 0 && y <= 9999) { /* as the snprintf below, without its cost */
			int v[6] = { y / 100, y % 100, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min };
			static const char seps[6] = { 0, 0, '-', '-', ' ', ':' };
			char *o = prefix;
			for (int i = 0; i < 6; i++) {
				if (seps[i])
					*o++ = seps[i];
				*o++ = (char)('0' + v[i] / 10);
				*o++ = (char)('0' + v[i] % 10);
			}
			*o++ = ':';
			*o++ = (char)('0' + tm.tm_sec / 10);
			*o++ = (char)('0' + tm.tm_sec % 10);
			*o++ = '.';
			*o = '\0';
		} else {
			snprintf(prefix, sizeof prefix, "%04d-%02d-%02d %02d:%02d:%02d.", y, tm.tm_mon + 1,
				 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		}
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

/* A JSON string body written straight in COPY text form: the JSON escapes
 * json_string_body makes, with their backslash doubled as copy_text would
 * double it (JSON text has no raw TAB, LF or CR left to escape). */
/* Might any of the 8 bytes of w be '"', '\\' or below 0x20?  (No false
 * negatives; a borrow may give a false positive, which the byte loop sorts.) */
static int json_word_special(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
	return (((q - ones) & ~q) | ((bs - ones) & ~bs) | ((w - ones * 0x20) & ~w)) & highs ? 1 : 0;
}

static void copy_json_ascii(struct buf *b, const char *s, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (json_word_special(w))
				break;
			i += 8;
		}
		if (i >= n)
			break;
		unsigned char ch = (unsigned char)s[i];
		if (json_class[ch] != 1)
			continue;
		buf_append(b, s + run, i - run);
		if (ch == '"') {
			buf_append(b, "\\\\\"", 3);
		} else if (ch == '\\') {
			buf_append(b, "\\\\\\\\", 4);
		} else {
			static const char hex[] = "0123456789abcdef";
			char esc[7] = { '\\', '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
			buf_append(b, esc, sizeof esc);
		}
		run = i + 1;
	}
	buf_append(b, s + run, n - run);
}

/* Copy s to dst while it is plain ASCII JSON text (no byte below 0x20,
 * '"', '\\' or >= 0x80), word at a time; returns n, or where it stopped
 * (dst has room for n bytes; what was copied past a stop is ignored). */
static inline size_t json_copy_plain(char *dst, const char *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if ((w & 0x8080808080808080ull) || json_word_special(w))
			break; /* maybe special: the byte loop decides */
		memcpy(dst + i, &w, 8);
	}
	for (; i < n; i++) {
		if (json_class[(unsigned char)s[i]])
			return i;
		dst[i] = s[i];
	}
	return n;
}

/* "s" then tail (0: none) as JSON in COPY text.  The plain case (nearly
 * all AMI keys and values) is one copy into room already there. */
static void copy_json_string(struct buf *b, const char *s, size_t n, struct buf *scratch, char tail)
{
	char *w = b->data + b->len;
	if (n + 3 < b->cap - b->len && json_copy_plain(w + 1, s, n) == n) {
		w[0] = '"';
		w[n + 1] = '"';
		w[n + 2] = tail;
		b->len += n + 2 + (tail != 0);
		b->data[b->len] = '\0';
		return;
	}
	buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (json_class[(unsigned char)s[i]] == 2) {
			buf_reset(scratch);
			utf8_sanitize(scratch, s, n);
			copy_json_ascii(b, scratch->data, scratch->len);
			buf_append(b, "\"", 1);
			if (tail)
				buf_append(b, &tail, 1);
			return;
		}
	}
	copy_json_ascii(b, s, n);
	buf_append(b, "\"", 1);
	if (tail)
		buf_append(b, &tail, 1);
}

/* "key":"value" as JSON in COPY text: one room check and one pass when
 * both are plain (the usual header), else copy_json_string twice. */
static void copy_json_member(struct buf *b, const char *k, size_t kl, const char *v, size_t vl, struct buf *scratch)
{
	char *w = b->data + b->len;
	if (kl + vl + 6 < b->cap - b->len && json_copy_plain(w + 1, k, kl) == kl &&
	    json_copy_plain(w + kl + 4, v, vl) == vl) {
		w[0] = '"';
		w[kl + 1] = '"';
		w[kl + 2] = ':';
		w[kl + 3] = '"';
		w[kl + vl + 4] = '"';
		b->len += kl + vl + 5;
		b->data[b->len] = '\0';
		return;
	}
	copy_json_string(b, k, kl, scratch, ':');
	copy_json_string(b, v, vl, scratch, 0);
}

/* A hash of a key (its length, first and last 8 bytes): equal keys hash
 * alike, which is all the table below needs (it compares keys). */
static size_t key_hash(const char *k, size_t len)
{
	uint64_t a = 0, z = 0;
	memcpy(&a, k, len < 8 ? len : 8);
	if (len > 8)
		memcpy(&z, k + len - 8, 8);
	uint64_t h = (a ^ (z * 0x9E3779B97F4A7C15ull) ^ len) * 0xff51afd7ed558ccdull;
	return (size_t)(h >> 32);
}

/* Equal keys (byte for byte, as JSON object keys). */
static int same_key(const struct ami_msg *m, const struct ami_header *a, const struct ami_header *c)
{
	return a->key_len == c->key_len && !memcmp(m->raw + a->key_off, m->raw + c->key_off, a->key_len);
}

#define FIELDS_SMALL 128 /* headers handled with the on-stack tables */

void copy_ami_fields(struct buf *row, const struct ami_msg *m, struct buf *scratch, char sep)
{
	size_t n = m->nhdr;
	/* first[i]: the index of the first header with header i's key;
	 * count[i]: for a first occurrence, how many headers have its key.
	 * Found through a small open-addressing table of first occurrences. */
	uint16_t first_small[FIELDS_SMALL], count_small[FIELDS_SMALL], slot_small[2 * FIELDS_SMALL];
	size_t nslot = 16;
	while (nslot < 2 * n)
		nslot *= 2;
	uint16_t *first = first_small, *count = count_small, *slot = slot_small;
	uint32_t *first_big = NULL, *count_big = NULL, *slot_big = NULL;
	int big = n > FIELDS_SMALL;
	if (big) {
		first_big = xmalloc(n * sizeof *first_big);
		count_big = xcalloc(n, sizeof *count_big);
		slot_big = xmalloc(nslot * sizeof *slot_big);
		memset(slot_big, 0xff, nslot * sizeof *slot_big);
	} else {
		memset(count_small, 0, n * sizeof count_small[0]);
		memset(slot_small, 0xff, nslot * sizeof slot_small[0]);
	}
	for (size_t i = 0; i < n; i++) {
		const struct ami_header *h = &m->hdr[i];
		size_t at = key_hash(m->raw + h->key_off, h->key_len) & (nslot - 1);
		for (;;) {
			size_t f = big ? slot_big[at] : slot[at];
			if (f == (big ? (size_t)UINT32_MAX : (size_t)UINT16_MAX)) {
				if (big) {
					slot_big[at] = (uint32_t)i;
					first_big[i] = (uint32_t)i;
					count_big[i] = 1;
				} else {
					slot[at] = (uint16_t)i;
					first[i] = (uint16_t)i;
					count[i] = 1;
				}
				break;
			}
			if (same_key(m, &m->hdr[f], h)) {
				if (big) {
					first_big[i] = (uint32_t)f;
					count_big[f]++;
				} else {
					first[i] = (uint16_t)f;
					count[f]++;
				}
				break;
			}
			at = (at + 1) & (nslot - 1);
		}
	}
	(void)buf_grow(row, m->raw_len + 8 * n + 16); /* room for the plain case (else appends grow it) */
	buf_append(row, "{", 1);
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		size_t fi = big ? first_big[i] : first[i];
		if (fi != i)
			continue; /* written with its first occurrence */
		const struct ami_header *h = &m->hdr[i];
		size_t cnt = big ? count_big[i] : count[i];
		if (any)
			buf_append(row, ",", 1);
		any = 1;
		if (cnt == 1) {
			copy_json_member(row, m->raw + h->key_off, h->key_len, m->raw + h->val_off, h->val_len, scratch);
			continue;
		}
		copy_json_string(row, m->raw + h->key_off, h->key_len, scratch, ':');
		if (cnt > 1)
			buf_append(row, "[", 1);
		size_t done = 0;
		for (size_t k = i; k < n && done < cnt; k++) {
			if ((big ? first_big[k] : first[k]) != i)
				continue;
			if (done++)
				buf_append(row, ",", 1);
			const struct ami_header *o = &m->hdr[k];
			copy_json_string(row, m->raw + o->val_off, o->val_len, scratch, 0);
		}
		if (cnt > 1)
			buf_append(row, "]", 1);
	}
	buf_append(row, "}", 1);
	buf_append(row, &sep, 1);
	free(first_big);
	free(count_big);
	free(slot_big);
}

/* libFuzzer target: the COPY text encoding (etl/copyfmt.c) of arbitrary
 * bytes.  Checks: the field is valid UTF-8, holds no raw TAB, LF, CR or
 * NUL (only the one separator at its end), every backslash starts a known
 * escape, and decoding the escapes gives back the sanitized input; the JSON
 * string body is valid UTF-8 with no raw control character or bare quote. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "copyfmt.h"
#include "../utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b, s, j;
	buf_init(&b, 0);
	buf_init(&s, 0);
	buf_init(&j, 0);
	copy_text(&b, (const char *)data, size, '\t');
	utf8_sanitize(&s, (const char *)data, size);
	json_string_body(&j, (const char *)data, size);
	if (b.len == 0 || b.data[b.len - 1] != '\t')
		abort();
	if (!utf8_valid((const unsigned char *)b.data, b.len - 1) || !utf8_valid((const unsigned char *)s.data, s.len) ||
	    !utf8_valid((const unsigned char *)j.data, j.len))
		abort();
	if (memchr(s.data, '\0', s.len))
		abort(); /* NUL becomes U+FFFD */
	/* decode the COPY escapes: must give the sanitized text back */
	struct buf d;
	buf_init(&d, 0);
	for (size_t i = 0; i + 1 < b.len; i++) {
		char c = b.data[i];
		if (c == '\t' || c == '\n' || c == '\r' || c == '\0')
			abort();
		if (c != '\\') {
			buf_append(&d, &c, 1);
			continue;
		}
		if (i + 2 >= b.len)
			abort(); /* a lone backslash at the end */
		char e = b.data[++i], o;
		switch (e) {
		case '\\': o = '\\'; break;
		case 't': o = '\t'; break;
		case 'n': o = '\n'; break;
		case 'r': o = '\r'; break;
		case 'b': o = '\b'; break;
		case 'f': o = '\f'; break;
		case 'v': o = '\v'; break;
		default: abort();
		}
		buf_append(&d, &o, 1);
	}
	if (d.len != s.len || memcmp(d.data, s.data, s.len))
		abort();
	for (size_t i = 0; i < j.len; i++) {
		unsigned char c = (unsigned char)j.data[i];
		if (c < 0x20)
			abort();
		if (c == '\\') {
			i++; /* the escaped character */
			continue;
		}
		if (c == '"')
			abort();
	}
	buf_release(&d);
	buf_release(&b);
	buf_release(&s);
	buf_release(&j);
	return 0;
}

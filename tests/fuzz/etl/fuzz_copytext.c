/* libFuzzer target: the COPY text encoding (etl/copyfmt.c) of arbitrary
 * bytes.  Checks: the field is valid UTF-8, holds no raw TAB, LF, CR or
 * NUL (only the one separator at its end), every backslash starts a known
 * escape, and decoding the escapes gives back the sanitized input; the JSON
 * string body is valid UTF-8 with no raw control character or bare quote.
 * Differential: the input read as AMI messages, every message's headers as
 * one jsonb text by copy_ami_fields() are byte for byte the reference (the
 * JSON built with json_string_body, repeated keys found pairwise, then
 * copy_text), as the ETL wrote it before the one-pass writer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ami.h"
#include "buf.h"
#include "copyfmt.h"
#include "../utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference: the JSON text, then copy_text of it. */
static void fields_reference(struct buf *row, const struct ami_msg *m)
{
	struct buf j;
	buf_init(&j, 0);
	buf_append(&j, "{", 1);
	int first = 1;
	for (size_t i = 0; i < m->nhdr; i++) {
		const struct ami_header *h = &m->hdr[i];
		const char *key = m->raw + h->key_off;
		int seen = 0, count = 0;
		for (size_t k = 0; k < m->nhdr; k++) {
			const struct ami_header *o = &m->hdr[k];
			if (o->key_len == h->key_len && !memcmp(m->raw + o->key_off, key, h->key_len)) {
				if (k < i)
					seen = 1;
				count++;
			}
		}
		if (seen)
			continue;
		if (!first)
			buf_append(&j, ",", 1);
		first = 0;
		buf_append(&j, "\"", 1);
		json_string_body(&j, key, h->key_len);
		buf_append(&j, "\":", 2);
		if (count > 1)
			buf_append(&j, "[", 1);
		int n = 0;
		for (size_t k = i; k < m->nhdr; k++) {
			const struct ami_header *o = &m->hdr[k];
			if (o->key_len != h->key_len || memcmp(m->raw + o->key_off, key, h->key_len))
				continue;
			if (n++)
				buf_append(&j, ",", 1);
			buf_append(&j, "\"", 1);
			json_string_body(&j, m->raw + o->val_off, o->val_len);
			buf_append(&j, "\"", 1);
		}
		if (count > 1)
			buf_append(&j, "]", 1);
	}
	buf_append(&j, "}", 1);
	copy_text(row, j.data, j.len, '\t');
	buf_release(&j);
}

static int on_msg(void *ctx, const struct ami_msg *m)
{
	(void)ctx;
	struct buf want, got, scratch;
	buf_init(&want, 0);
	buf_init(&got, 0);
	buf_init(&scratch, 0);
	fields_reference(&want, m);
	copy_ami_fields(&got, m, &scratch, '\t');
	if (got.len != want.len || memcmp(got.data, want.data, want.len))
		abort();
	buf_release(&want);
	buf_release(&got);
	buf_release(&scratch);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b, s, j;
	buf_init(&b, 0);
	buf_init(&s, 0);
	buf_init(&j, 0);
	if (size && data[0] & 1)
		(void)buf_grow(&b, size + 8); /* room: copy_text's one-copy path */
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

	struct ami_parser p;
	ami_parser_init(&p, 1 << 16);
	(void)ami_parser_feed(&p, data, size, on_msg, NULL);
	(void)ami_parser_feed(&p, "\r\n\r\n", 4, on_msg, NULL); /* end the last message */
	ami_parser_release(&p);
	return 0;
}

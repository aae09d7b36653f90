/* libFuzzer target: the CSV and XLSX cell writers' text path
 * (report/table.c, csv_out.c).  Checks, for arbitrary bytes s:
 *  - CSV: csv_out_text_field() writes one RFC 4180 field that parses back to
 *    rtext_clean(s), with a leading "'" exactly when rtext_needs_guard(s);
 *    the guard is never taken for a signed number ([+-]digits);
 *  - XLSX: rtext_xlsx_escape(rtext_clean(s)), decoded as an ECMA-376 reader
 *    decodes _xHHHH_, gives rtext_clean(s) back, and holds nothing XML 1.0
 *    cannot carry (C0 controls but tab and newline, U+FFFE, U+FFFF). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "csv_out.h"
#include "table.h"
#include "../utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0'; /* cells are C strings (libpq) */
	struct buf clean;
	buf_init(&clean, 0);
	rtext_clean(&clean, s, 0, 0);
	if (!utf8_valid((const unsigned char *)clean.data, clean.len))
		abort();

	/* CSV */
	char *mem = NULL;
	size_t memlen = 0;
	FILE *f = open_memstream(&mem, &memlen);
	if (!f)
		abort();
	if (csv_out_text_field(f, s, 0) != 0)
		abort();
	fclose(f);
	if (memlen < 2 || mem[0] != '"' || mem[memlen - 1] != '"')
		abort();
	struct buf back;
	buf_init(&back, 0);
	for (size_t i = 1; i + 1 < memlen; i++) {
		if (mem[i] == '"') {
			if (mem[i + 1] != '"' || i + 2 >= memlen)
				abort(); /* a lone quote inside */
			i++;
		}
		buf_append(&back, &mem[i], 1);
	}
	int guard = rtext_needs_guard(s);
	const char *body = back.data;
	if (guard) {
		if (back.len == 0 || back.data[0] != '\'')
			abort();
		body++;
	}
	if (strlen(body) != clean.len || memcmp(body, clean.data, clean.len))
		abort();
	if ((s[0] == '+' || s[0] == '-') && s[1] >= '0' && s[1] <= '9' && strspn(s + 1, "0123456789") == strlen(s + 1) &&
	    guard)
		abort(); /* an E.164 number or a negative number is never guarded */
	if ((s[0] == '=' || s[0] == '@') && !guard)
		abort();
	free(mem);
	buf_release(&back);

	/* XLSX */
	struct buf esc, dec;
	buf_init(&esc, 0);
	buf_init(&dec, 0);
	if (rtext_xlsx_escape(&esc, clean.data) < 0)
		abort();
	for (size_t i = 0; i < esc.len; i++) {
		unsigned char c = (unsigned char)esc.data[i];
		if ((c < 0x20 && c != '\t' && c != '\n') ||
		    (c == 0xEF && i + 2 < esc.len && (unsigned char)esc.data[i + 1] == 0xBF &&
		     ((unsigned char)esc.data[i + 2] & 0xFE) == 0xBE))
			abort(); /* not XML 1.0 (or CR, which a parser turns into LF) */
	}
	for (size_t i = 0; i < esc.len; i++) {
		if (esc.data[i] == '_' && i + 6 < esc.len && esc.data[i + 1] == 'x' && esc.data[i + 6] == '_') {
			int h[4], ok = 1;
			for (int k = 0; k < 4; k++)
				ok &= (h[k] = hexval(esc.data[i + 2 + k])) >= 0;
			if (ok) {
				int cp = h[0] << 12 | h[1] << 8 | h[2] << 4 | h[3];
				/* we only ever write _x005F_, the controls XML
				 * cannot carry, CR, U+FFFE and U+FFFF */
				if (cp >= 0x80 && cp != 0xFFFE && cp != 0xFFFF)
					abort();
				if ((cp >= 0x20 && cp < 0x80 && cp != '_') || cp == '\t' || cp == '\n')
					abort();
				char u[3] = { (char)0xEF, (char)0xBF, (char)(0x80 | (cp & 0x3F)) };
				char ch = (char)cp;
				buf_append(&dec, cp >= 0x80 ? u : &ch, cp >= 0x80 ? 3 : 1);
				i += 6;
				continue;
			}
		}
		buf_append(&dec, &esc.data[i], 1);
	}
	if (dec.len != clean.len || memcmp(dec.data, clean.data, clean.len))
		abort();
	buf_release(&esc);
	buf_release(&dec);
	buf_release(&clean);
	free(s);
	return 0;
}

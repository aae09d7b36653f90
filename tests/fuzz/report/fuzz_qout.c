/* libFuzzer target: cdrflow-query's output formats (query/qout.c): table,
 * CSV, NDJSON and JSON array over rows cut from arbitrary bytes (0x1e ends
 * a row, 0x1f a value, a value "\x1a" is NULL).  Checks: no crash, every
 * write succeeds, CSV and JSON output is valid UTF-8 whenever the input
 * values are, and JSON holds no raw control character. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qout.h"
#include "../utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NC 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *in = malloc(size);
	if (!in)
		return 0;
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	enum qout_format fmt = (enum qout_format)(data[0] % 4);
	static const char *const names[NC] = { "a", "b\"q", "c,d", "e\n" };
	static const enum qout_kind kinds[NC] = { QOUT_TEXT, QOUT_NUMBER, QOUT_BOOL, QOUT_TEXT };
	int input_utf8 = utf8_valid((const unsigned char *)in, size - 1);
	char *mem = NULL;
	size_t memlen = 0;
	FILE *f = open_memstream(&mem, &memlen);
	if (!f)
		abort();
	struct qout q;
	qout_init(&q, fmt, f);
	q.header = !(data[0] & 4);
	qout_begin(&q, NC, names, kinds);
	const char *vals[NC];
	size_t nv = 0;
	char *p = in, *end = in + size - 1;
	while (p <= end) {
		char *e = p;
		while (e < end && *e != 0x1e && *e != 0x1f)
			e++;
		char sep = e < end ? *e : 0x1e;
		*e = '\0';
		vals[nv++] = strcmp(p, "\x1a") ? p : NULL;
		if (sep == 0x1e || nv == NC) {
			while (nv < NC)
				vals[nv++] = "";
			if (qout_row(&q, vals) != 0)
				abort();
			nv = 0;
		}
		p = e + 1;
	}
	if (qout_end(&q) != 0)
		abort();
	qout_release(&q);
	fclose(f);
	if (input_utf8 && fmt != QOUT_TABLE && !utf8_valid((const unsigned char *)mem, memlen))
		abort();
	if (fmt == QOUT_JSON || fmt == QOUT_JSON_ARRAY)
		for (size_t i = 0; i < memlen; i++)
			if ((unsigned char)mem[i] < 0x20 && mem[i] != '\n')
				abort();
	free(mem);
	free(in);
	return 0;
}

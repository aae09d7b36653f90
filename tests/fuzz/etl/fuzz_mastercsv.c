/* libFuzzer target: the Master.csv importer's parse and transform
 * (etl/importcsv.c, import_csv_transform) on arbitrary bytes.  Checks: a
 * refused file yields no rows; an accepted one yields exactly one COPY line
 * of 23 fields per row, valid UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "exitcode.h"
#include "importcsv.h"
#include "../utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* the first byte picks the layout options */
	struct import_opts o = { "fz", "UTC", (data[0] & 3) == 3 ? -1 : (data[0] & 1), (data[0] & 12) == 12 ? -1 : (data[0] >> 2) & 1, 0 };
	FILE *f = fmemopen((void *)(data + 1), size - 1 ? size - 1 : 1, "rb");
	if (!f)
		return 0;
	if (size == 1) {
		fclose(f);
		return 0;
	}
	struct buf out;
	buf_init(&out, 0);
	uint64_t rows = 0;
	char err[512];
	int rc = import_csv_transform(f, &o, &out, &rows, err, sizeof err);
	fclose(f);
	if (rc != EXIT_OK && rc != EXIT_DATAERR)
		abort();
	if (rc == EXIT_OK) {
		size_t lines = 0, tabs = 0;
		for (size_t i = 0; i < out.len; i++) {
			if (out.data[i] == '\n') {
				if (tabs != 22)
					abort(); /* 23 columns per cdr row */
				lines++;
				tabs = 0;
			} else if (out.data[i] == '\t') {
				tabs++;
			}
		}
		if (lines != rows || !utf8_valid((const unsigned char *)out.data, out.len))
			abort();
	}
	buf_release(&out);
	return 0;
}

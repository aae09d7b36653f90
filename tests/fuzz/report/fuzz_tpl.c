/* libFuzzer target: the report template loader (report/tpl.c) on
 * arbitrary file contents: a template or a "file:line:col: reason" error,
 * never a crash; an accepted template has at least one section. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "tpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/cdrflow-fuzz-tpl-%ld.yaml", (long)getpid());
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	char err[512] = "";
	struct tpl *t = tpl_load(path, "fuzz", err, sizeof err);
	if (t) {
		tpl_free(t);
	} else if (!err[0]) {
		abort(); /* refused without a reason */
	}
	unlink(path);
	return 0;
}

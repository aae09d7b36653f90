#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lzma.h>

#include "xalloc.h"

const char *shared_dir(void)
{
	const char *s = getenv("CDRFLOW_SHARED");
	return s && *s ? s : "../shared";
}

static char *unxz(const char *in, size_t n, size_t *len)
{
	lzma_stream xz = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&xz, UINT64_MAX, 0) != LZMA_OK)
		return NULL;
	size_t cap = n * 8 + 1024, used = 0;
	char *out = xmalloc(cap);
	xz.next_in = (const uint8_t *)in;
	xz.avail_in = n;
	for (;;) {
		if (used == cap) {
			cap *= 2;
			out = xrealloc(out, cap);
		}
		xz.next_out = (uint8_t *)out + used;
		xz.avail_out = cap - used;
		lzma_ret r = lzma_code(&xz, LZMA_FINISH);
		used = cap - xz.avail_out;
		if (r == LZMA_STREAM_END)
			break;
		if (r != LZMA_OK && r != LZMA_BUF_ERROR) {
			free(out);
			lzma_end(&xz);
			return NULL;
		}
	}
	lzma_end(&xz);
	*len = used;
	return out;
}

char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, used = 0;
	char *p = xmalloc(cap);
	size_t k;
	while ((k = fread(p + used, 1, cap - used, f)) > 0) {
		used += k;
		if (used == cap) {
			cap *= 2;
			p = xrealloc(p, cap);
		}
	}
	fclose(f);
	if (used >= 6 && !memcmp(p, "\xFD" "7zXZ", 6)) {
		char *d = unxz(p, used, len);
		free(p);
		return d;
	}
	*len = used;
	return p;
}

char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/cdrflow-unit-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpl)) {
		free(tmpl);
		return NULL;
	}
	return tmpl;
}

void rm_rf(const char *path)
{
	char *cmd = xasprintf("rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", path);
	free(cmd);
}

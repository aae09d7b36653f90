/* libFuzzer target: the delivery outbox file parser (report/delivery/outbox.c,
 * outbox_load) on arbitrary file contents.  Checks: a message or a reason;
 * a loaded message has its kind and key, and exactly `length` body bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "outbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

/* the per-process directory goes when the fuzzer or the replay exits */
static void remove_dir(void) { rmdir(dir); }
#define NAME "00000000000000000001-0123456789abcdef.msg"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/cdrflow-fuzz-outbox-%ld", (long)getpid());
		if (mkdir_p(dir, 0700) < 0)
			abort();
		atexit(remove_dir);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/" NAME, dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	struct outbox_msg m;
	char err[512] = "";
	if (outbox_load(dir, NAME, &m, err, sizeof err) == 0) {
		if (!m.kind || !m.key || (m.body_len && !m.body) || m.body_len > size)
			abort();
		outbox_msg_free(&m);
	} else if (!err[0]) {
		abort();
	}
	unlink(path);
	return 0;
}

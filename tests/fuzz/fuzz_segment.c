/* libFuzzer target: the segment reader on arbitrary file contents must
 * report records, END or CORRUPT, never crash, and resync must progress. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

/* the per-process directory goes when the fuzzer or the replay exits */
static void remove_dir(void) { rmdir(dir); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/cdrflow-fuzz-seg-%ld", (long)getpid());
		if (mkdir_p(dir, 0700) < 0)
			abort();
		atexit(remove_dir);
	}
	char path[128];
	snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_full(fd, data, size) < 0)
		abort();
	close(fd);
	struct seg_reader r;
	struct seg_record rec;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	for (int guard = 0; guard < 100000; guard++) {
		enum seg_status st = seg_reader_next(&r, &rec);
		if (st == SEG_OK) {
			if (rec.data_len > size || rec.node_len > SEG_NODE_MAX)
				abort();
			continue;
		}
		if (st != SEG_CORRUPT)
			break;
		uint64_t before = r.pos.offset;
		int gap = r.gap_pending;
		uint64_t skipped = seg_reader_resync(&r);
		if (gap) { /* a sequence gap: the record there is whole, next returns it */
			if (skipped != 0 || seg_reader_next(&r, &rec) != SEG_OK)
				abort();
			continue;
		}
		if (skipped == 0 && r.pos.offset == before && r.fd >= 0)
			abort(); /* no progress */
		if (r.fd < 0)
			break;
	}
	seg_reader_close(&r);
	unlink(path);
	return 0;
}

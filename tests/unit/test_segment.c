/*
 * test_segment.c - segment writer/reader: round trip, rotation, torn tails
 * at every byte, corruption reported with its position.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>

#include "segment.h"
#include "testutil.h"
#include "xalloc.h"

static void append_events(struct seg_writer *w, uint64_t first_seq, int n, size_t size)
{
	char data[4096];
	for (int i = 0; i < n; i++) {
		uint64_t seq = first_seq + (uint64_t)i;
		size_t len = size ? size : 20 + (size_t)(seq * 7919 % 900);
		for (size_t k = 0; k < len; k++)
			data[k] = (char)('a' + (seq + k) % 26);
		size_t rs = seg_record_size(strlen(w->node), len);
		char *rec = xmalloc(rs);
		seg_record_encode(rec, seq, 1000 + seq, 0, w->node, strlen(w->node), data, len);
		char err[256];
		size_t written;
		assert_int_equal(seg_writer_append(w, rec, rs, &written, err, sizeof err), 0);
		assert_int_equal(written, rs);
		free(rec);
	}
}

/* Read every record of a node; check sequence and contents. */
static uint64_t read_all(const char *dir, uint64_t *last_seq, int *corrupt)
{
	struct seg_reader r;
	struct seg_record rec;
	uint64_t n = 0, prev = 0;
	*corrupt = 0;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	for (;;) {
		enum seg_status st = seg_reader_next(&r, &rec);
		if (st == SEG_END)
			break;
		if (st == SEG_CORRUPT) {
			(*corrupt)++;
			seg_reader_resync(&r);
			continue;
		}
		assert_int_equal(st, SEG_OK);
		assert_true(rec.seq > prev);
		prev = rec.seq;
		assert_int_equal(rec.recv_us, 1000 + rec.seq);
		for (size_t k = 0; k < rec.data_len; k++)
			assert_int_equal(rec.data[k], (char)('a' + (rec.seq + k) % 26));
		n++;
	}
	seg_reader_close(&r);
	*last_seq = prev;
	return n;
}

static void test_round_trip_and_rotation(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer w;
	struct seg_recovery rec;
	struct seg_writer_opts o = { 8192, 0 };
	char err[256];
	assert_int_equal(seg_writer_open(&w, tmp, "pbx1", &o, &rec, err, sizeof err), 0);
	assert_int_equal(w.next_seq, 1);
	append_events(&w, 1, 200, 0);
	assert_true(w.segno > 5); /* 200 records of ~500 bytes in 8 KiB segments */
	assert_int_equal(seg_writer_close(&w), 0);

	char *dir = xasprintf("%s/pbx1", tmp);
	uint64_t last;
	int corrupt;
	assert_int_equal(read_all(dir, &last, &corrupt), 200);
	assert_int_equal(last, 200);
	assert_int_equal(corrupt, 0);
	/* no segment passes max_size when records are smaller than it */
	for (uint64_t s = 1; s <= 6; s++) {
		char *path = xasprintf("%s/%016llu.seg", dir, (unsigned long long)s);
		struct stat sst;
		assert_int_equal(stat(path, &sst), 0);
		assert_true(sst.st_size <= 8192);
		free(path);
	}

	/* reopen: sequence continues, a new segment is started */
	assert_int_equal(seg_writer_open(&w, tmp, "pbx1", &o, &rec, err, sizeof err), 0);
	assert_int_equal(rec.last_seq, 200);
	assert_int_equal(rec.torn_bytes, 0);
	append_events(&w, w.next_seq, 10, 0);
	assert_int_equal(seg_writer_close(&w), 0);
	assert_int_equal(read_all(dir, &last, &corrupt), 210);

	/* resume from a position in the middle */
	struct seg_reader r;
	struct seg_record rr;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	for (int i = 0; i < 57; i++)
		assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	struct seg_pos mid = rr.next;
	seg_reader_close(&r);
	seg_reader_open(&r, dir, mid);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(rr.seq, 58);
	seg_reader_close(&r);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Cut the last segment at every byte of its last record: the writer must
 * truncate exactly the torn record and keep every whole one. */
static void test_torn_tail_every_byte(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer_opts o = { 1 << 20, 0 };
	struct seg_writer w;
	struct seg_recovery rec;
	char err[256];
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	append_events(&w, 1, 5, 100);
	char *path = xstrdup(w.path);
	assert_int_equal(seg_writer_close(&w), 0);
	off_t full = file_size(path);
	size_t rs = seg_record_size(1, 100);
	char *copy;
	size_t len;
	copy = slurp(path, &len);
	char *dir = xasprintf("%s/n", tmp);
	for (size_t cut = 1; cut < rs; cut++) {
		/* rebuild: one segment with 4 whole records + part of the 5th */
		rm_rf(dir);
		mkdir(dir, 0755);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, copy, (size_t)full - cut), (ssize_t)((size_t)full - cut));
		close(fd);
		uint64_t last;
		int corrupt;
		/* a reader sees 4 records and an incomplete tail, not corruption */
		assert_int_equal(read_all(dir, &last, &corrupt), 4);
		assert_int_equal(corrupt, 0);
		assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
		assert_int_equal(rec.last_seq, 4);
		assert_int_equal(rec.torn_bytes, rs - cut);
		assert_int_equal(file_size(path), full - (off_t)rs);
		append_events(&w, w.next_seq, 1, 100);
		assert_int_equal(seg_writer_close(&w), 0);
		assert_int_equal(read_all(dir, &last, &corrupt), 5);
		assert_int_equal(last, 5);
		assert_int_equal(corrupt, 0);
	}
	/* a zero-filled tail (file extended, data never written) is torn too */
	rm_rf(dir);
	mkdir(dir, 0755);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(write(fd, copy, (size_t)full), (ssize_t)full);
	assert_int_equal(ftruncate(fd, full + 4096), 0);
	close(fd);
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	assert_int_equal(rec.torn_bytes, 4096);
	assert_int_equal(rec.last_seq, 5);
	seg_writer_close(&w);
	free(copy);
	free(path);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

/* A flipped bit in a closed segment is reported with its position, the
 * reader skips to the next valid record, and the writer leaves it alone. */
static void test_corruption_reported(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer_opts o = { 4096, 0 };
	struct seg_writer w;
	struct seg_recovery rec;
	char err[256];
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	append_events(&w, 1, 40, 200);
	assert_int_equal(seg_writer_close(&w), 0);
	char *dir = xasprintf("%s/n", tmp);
	char *seg1 = xasprintf("%s/0000000000000001.seg", dir);
	size_t rs = seg_record_size(1, 200);
	off_t where = SEG_HEADER_SIZE + (off_t)rs + 40; /* inside the second record's data */
	int fd = open(seg1, O_RDWR);
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, where), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, where), 1);
	close(fd);

	struct seg_reader r;
	struct seg_record rr;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_CORRUPT);
	char expect[64];
	snprintf(expect, sizeof expect, "offset %zu: CRC mismatch", (size_t)SEG_HEADER_SIZE + rs);
	assert_non_null(strstr(r.err, expect));
	assert_non_null(strstr(r.err, "0000000000000001.seg"));
	assert_int_equal(seg_reader_resync(&r), rs);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(rr.seq, 3);
	seg_reader_close(&r);
	uint64_t last;
	int corrupt;
	assert_int_equal(read_all(dir, &last, &corrupt), 39);
	assert_int_equal(corrupt, 1);
	free(seg1);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

/* Start-up recovery never destroys whole records and never reuses a
 * sequence number, whatever state the newest segment is in. */
static void test_recovery_cases(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer_opts o = { 1 << 20, 0 };
	struct seg_writer w;
	struct seg_recovery rec;
	char err[256];
	char *dir = xasprintf("%s/n", tmp);
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	append_events(&w, 1, 10, 100);
	char *seg1 = xstrdup(w.path);
	assert_int_equal(seg_writer_close(&w), 0);

	/* 1. an empty newest segment (crash right after create) is removed */
	char *seg2 = xasprintf("%s/0000000000000002.seg", dir);
	FILE *f = fopen(seg2, "w");
	fputs("CDRF", f);
	fclose(f);
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	assert_int_equal(rec.last_seq, 10);
	assert_int_equal(rec.torn_bytes, 4);
	assert_int_equal(w.segno, 2); /* recreated properly */
	append_events(&w, w.next_seq, 5, 100);
	assert_int_equal(seg_writer_close(&w), 0);
	uint64_t last;
	int corrupt;
	assert_int_equal(read_all(dir, &last, &corrupt), 15);
	assert_int_equal(corrupt, 0);

	/* 2. damage in the middle of the newest segment: left alone, numbering
	 * continues after the highest sequence found, not after the damage */
	size_t rs = seg_record_size(1, 100);
	int fd = open(seg2, O_RDWR);
	unsigned char b = 0xff;
	assert_int_equal(pwrite(fd, &b, 1, SEG_HEADER_SIZE + (off_t)rs + 50), 1);
	close(fd);
	off_t before = file_size(seg2);
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	assert_true(rec.damaged);
	assert_int_equal(rec.last_seq, 15);
	assert_int_equal(w.next_seq, 16);
	assert_int_equal(file_size(seg2), before);
	seg_writer_close(&w);

	/* 3. a bad header with data after it is never truncated */
	char *seg4 = xasprintf("%s/0000000000000004.seg", dir);
	f = fopen(seg4, "w");
	for (int i = 0; i < 1000; i++)
		fputc(i * 7, f);
	fclose(f);
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	assert_true(rec.damaged);
	assert_int_equal(file_size(seg4), 1000);
	assert_int_equal(rec.last_seq, 15);
	seg_writer_close(&w);
	free(seg1);
	free(seg2);
	free(seg4);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

/* n encoded records of node "n" (seq 1..n, 300 data bytes each, the
 * contents read_all() checks), back to back; the caller frees it. */
static char *encode_batch(size_t n)
{
	size_t rs = seg_record_size(1, 300);
	char *batch = xmalloc(rs * n), data[300];
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < 300; k++)
			data[k] = (char)('a' + (i + 1 + k) % 26);
		seg_record_encode(batch + i * rs, i + 1, 1000 + i + 1, 0, "n", 1, data, 300);
	}
	return batch;
}

/* One append of many records is split across segments at record boundaries. */
static void test_batch_split(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer_opts o = { 4096, 0 };
	struct seg_writer w;
	struct seg_recovery rec;
	char err[256];
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	size_t rs = seg_record_size(1, 300), n = 50;
	char *batch = encode_batch(n);
	size_t written;
	assert_int_equal(seg_writer_append(&w, batch, rs * n, &written, err, sizeof err), 0);
	assert_int_equal(written, rs * n);
	assert_true(w.segno >= 5);
	assert_true(w.size <= 4096);
	assert_int_equal(seg_writer_close(&w), 0);
	char *dir = xasprintf("%s/n", tmp);
	uint64_t last;
	int corrupt;
	assert_int_equal(read_all(dir, &last, &corrupt), n);
	assert_int_equal(corrupt, 0);
	free(batch);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

/* A write that fails part-way (disk full, file-size limit) keeps every whole
 * record that fit and reports exactly how much was written. */
static void test_partial_write_keeps_whole_records(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer_opts o = { 1 << 20, 0 };
	struct seg_writer w;
	struct seg_recovery rec;
	char err[256];
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	size_t rs = seg_record_size(1, 300), n = 10;
	char *batch = encode_batch(n);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = SEG_HEADER_SIZE + 3 * rs + rs / 2; /* room for 3.5 records */
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	size_t written = 12345;
	int rc = seg_writer_append(&w, batch, rs * n, &written, err, sizeof err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, prev);
	assert_int_equal(rc, -1);
	assert_int_equal(written, 3 * rs);
	assert_int_equal(file_size(w.path), (off_t)(SEG_HEADER_SIZE + 3 * rs));
	/* the caller retries the rest once there is room */
	assert_int_equal(seg_writer_append(&w, batch + written, rs * n - written, &written, err, sizeof err), 0);
	assert_int_equal(seg_writer_close(&w), 0);
	char *dir = xasprintf("%s/n", tmp);
	uint64_t last;
	int corrupt;
	assert_int_equal(read_all(dir, &last, &corrupt), n);
	assert_int_equal(last, n);
	assert_int_equal(corrupt, 0);
	free(batch);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

static void test_node_names(void **state)
{
	(void)state;
	assert_true(seg_node_name_valid("pbx-1.example_2"));
	assert_false(seg_node_name_valid(""));
	assert_false(seg_node_name_valid(".hidden"));
	assert_false(seg_node_name_valid("a/b"));
	assert_false(seg_node_name_valid("x y"));
	char longname[80];
	memset(longname, 'a', 65);
	longname[65] = '\0';
	assert_false(seg_node_name_valid(longname));
}

/* Sequences are contiguous: records missing between two (a gap), a step
 * back, and a resume position beyond the end of its segment are reported
 * at the exact position; resync after a gap skips 0 bytes and says how
 * many records are missing. */
static void test_sequence_gaps(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	struct seg_writer_opts o = { 1 << 20, 0 };
	struct seg_writer w;
	struct seg_recovery rec;
	char err[256];
	assert_int_equal(seg_writer_open(&w, tmp, "n", &o, &rec, err, sizeof err), 0);
	append_events(&w, 1, 3, 100);  /* 1 2 3 */
	append_events(&w, 7, 2, 100);  /* 7 8: 4..6 lost */
	append_events(&w, 5, 1, 100);  /* 5: goes back */
	assert_int_equal(seg_writer_close(&w), 0);
	char *dir = xasprintf("%s/n", tmp);
	size_t rs = seg_record_size(1, 100);
	struct seg_reader r;
	struct seg_record rr;
	seg_reader_open(&r, dir, (struct seg_pos){ 0, 0 });
	for (int i = 0; i < 3; i++)
		assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_CORRUPT);
	char want[128];
	snprintf(want, sizeof want, "offset %zu: sequence gap: expected sequence 4, found 7 (3 records lost)",
		 (size_t)SEG_HEADER_SIZE + 3 * rs);
	assert_non_null(strstr(r.err, want));
	assert_int_equal(seg_reader_resync(&r), 0);
	assert_int_equal(r.lost_records, 3);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(rr.seq, 7);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_CORRUPT);
	assert_non_null(strstr(r.err, "sequence 5 where 9 was expected (sequence goes back)"));
	seg_reader_resync(&r);
	assert_int_equal(seg_reader_next(&r, &rr), SEG_OK);
	assert_int_equal(rr.seq, 5);
	seg_reader_close(&r);
	/* a resume position with a known expected sequence */
	seg_reader_open(&r, dir, (struct seg_pos){ 1, SEG_HEADER_SIZE + rs });
	r.expect_seq = 1;
	assert_int_equal(seg_reader_next(&r, &rr), SEG_CORRUPT);
	assert_non_null(strstr(r.err, "expected sequence 1, found 2 (1 records lost)"));
	seg_reader_close(&r);
	/* beyond the end of the segment: its tail was lost */
	seg_reader_open(&r, dir, (struct seg_pos){ 1, SEG_HEADER_SIZE + 100 * rs });
	assert_int_equal(seg_reader_next(&r, &rr), SEG_CORRUPT);
	assert_non_null(strstr(r.err, "before the read position: its tail was lost"));
	seg_reader_close(&r);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_rotation),
		cmocka_unit_test(test_torn_tail_every_byte),
		cmocka_unit_test(test_corruption_reported),
		cmocka_unit_test(test_sequence_gaps),
		cmocka_unit_test(test_recovery_cases),
		cmocka_unit_test(test_batch_split),
		cmocka_unit_test(test_partial_write_keeps_whole_records),
		cmocka_unit_test(test_node_names),
	};
	return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}

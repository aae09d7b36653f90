#include "segment.h"
#include "clock.h"
#include "crc32c.h"
#include "errmsg.h"
#include "fsx.h"
#include "xalloc.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_WINDOW (1u << 20)

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static char *seg_path(const char *dir, uint64_t segno)
{
	return xasprintf("%s/%016" PRIu64 ".seg", dir, segno);
}

void seg_record_encode(void *dst, uint64_t seq, uint64_t recv_us, const char *node, size_t node_len,
		       const void *data, size_t data_len)
{
	unsigned char *p = dst;
	size_t total = seg_record_size(node_len, data_len);
	put32(p, (uint32_t)total);
	put64(p + 8, seq);
	put64(p + 16, recv_us);
	put16(p + 24, (uint16_t)node_len);
	put16(p + 26, 0);
	put32(p + 28, (uint32_t)data_len);
	memcpy(p + SEG_RECORD_HEADER, node, node_len);
	memcpy(p + SEG_RECORD_HEADER + node_len, data, data_len);
	put32(p + 4, crc32c(0, p + 8, total - 8));
}

int seg_node_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SEG_NODE_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void encode_header(unsigned char *h, uint64_t segno, const char *node)
{
	memset(h, 0, SEG_HEADER_SIZE);
	memcpy(h, SEG_MAGIC, 8);
	put32(h + 8, SEG_VERSION);
	put32(h + 12, SEG_HEADER_SIZE);
	put64(h + 16, segno);
	put64(h + 24, clock_real_us());
	size_t n = strlen(node);
	put16(h + 32, (uint16_t)n);
	memcpy(h + 34, node, n);
	put32(h + SEG_HEADER_SIZE - 4, crc32c(0, h, SEG_HEADER_SIZE - 4));
}

/* 0 if h is a valid header for segno. */
static int check_header(const unsigned char *h, uint64_t segno, char *why, size_t whylen)
{
	if (memcmp(h, SEG_MAGIC, 8)) {
		snprintf(why, whylen, "bad magic");
		return -1;
	}
	if (get32(h + SEG_HEADER_SIZE - 4) != crc32c(0, h, SEG_HEADER_SIZE - 4)) {
		snprintf(why, whylen, "header CRC mismatch");
		return -1;
	}
	if (get32(h + 8) != SEG_VERSION || get32(h + 12) != SEG_HEADER_SIZE) {
		snprintf(why, whylen, "unsupported segment version %" PRIu32, get32(h + 8));
		return -1;
	}
	if (get64(h + 16) != segno) {
		snprintf(why, whylen, "header names segment %" PRIu64, get64(h + 16));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- listing */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int seg_list(const char *node_dir, uint64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(node_dir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *name = e->d_name;
		if (strlen(name) != 20 || strcmp(name + 16, ".seg"))
			continue;
		uint64_t v = 0;
		int ok = 1;
		for (int i = 0; i < 16; i++) {
			if (name[i] < '0' || name[i] > '9') {
				ok = 0;
				break;
			}
			v = v * 10 + (uint64_t)(name[i] - '0');
		}
		if (!ok || v == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xrealloc(*out, cap * sizeof **out);
		}
		(*out)[(*n)++] = v;
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_u64);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int seg_list_nodes(const char *spool, char ***out, size_t *n, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(spool);
	if (!d)
		return errmsg(err, errlen, "cannot read spool \"%s\": %s", spool, strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!seg_node_name_valid(e->d_name))
			continue;
		char *p = xasprintf("%s/%s", spool, e->d_name);
		struct stat st;
		int isdir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
		free(p);
		if (!isdir)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, cap * sizeof **out);
		}
		(*out)[(*n)++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(*out, *n, sizeof **out, cmp_str);
	return 0;
}

/* ---------------------------------------------------------------- reader */

int seg_reader_open(struct seg_reader *r, const char *node_dir, struct seg_pos pos)
{
	memset(r, 0, sizeof *r);
	r->dir = xstrdup(node_dir);
	r->fd = -1;
	r->pos = pos;
	return 0;
}

void seg_reader_close(struct seg_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	free(r->dir);
	memset(r, 0, sizeof *r);
	r->fd = -1;
}

/* The first segment number > after, or 0 if none. */
static uint64_t next_segno(const char *dir, uint64_t after)
{
	uint64_t *list, found = 0;
	size_t n;
	if (seg_list(dir, &list, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (list[i] > after) {
			found = list[i];
			break;
		}
	free(list);
	return found;
}

static void close_segment(struct seg_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->buf_len = 0;
	r->buf_off = 0;
	r->file_size = 0;
}

static int refresh_size(struct seg_reader *r)
{
	struct stat st;
	if (fstat(r->fd, &st) < 0)
		return -1;
	r->file_size = (uint64_t)st.st_size;
	return 0;
}

/* Make bytes [off, off+n) of the current file available; returns a pointer
 * to them or NULL if the file is shorter (or on error, errno set). */
static const unsigned char *window(struct seg_reader *r, uint64_t off, size_t n)
{
	if (off >= r->buf_off && off + n <= r->buf_off + r->buf_len)
		return (const unsigned char *)r->buf + (off - r->buf_off);
	size_t want = n > READ_WINDOW ? n : READ_WINDOW;
	if (want > r->buf_cap) {
		free(r->buf);
		r->buf = xmalloc(want);
		r->buf_cap = want;
	}
	ssize_t got = pread_full(r->fd, r->buf, want, (off_t)off);
	if (got < 0) {
		r->buf_len = 0;
		return NULL;
	}
	r->buf_off = off;
	r->buf_len = (size_t)got;
	if ((size_t)got < n) {
		errno = 0;
		return NULL;
	}
	return (const unsigned char *)r->buf;
}

static enum seg_status corrupt(struct seg_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum seg_status corrupt(struct seg_reader *r, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(r->err, sizeof r->err, "%s/%016" PRIu64 ".seg: offset %" PRIu64 ": %s", r->dir,
		 r->pos.segno, r->pos.offset, what);
	return SEG_CORRUPT;
}

static enum seg_status ioerr(struct seg_reader *r, const char *what)
{
	snprintf(r->err, sizeof r->err, "%s/%016" PRIu64 ".seg: %s: %s", r->dir, r->pos.segno, what,
		 strerror(errno));
	return SEG_IOERR;
}

/* Open r->pos.segno (resolving 0 to the first segment).  SEG_OK, SEG_END
 * (no such segment yet), or an error. */
static enum seg_status open_segment(struct seg_reader *r)
{
	if (r->pos.segno == 0) {
		r->pos.segno = next_segno(r->dir, 0);
		if (r->pos.segno == 0)
			return SEG_END;
		r->pos.offset = 0;
	}
	char *path = seg_path(r->dir, r->pos.segno);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (r->fd < 0) {
		if (errno != ENOENT)
			return ioerr(r, "cannot open segment");
		if (next_segno(r->dir, r->pos.segno))
			return corrupt(r, "segment is missing but later segments exist");
		return SEG_END;
	}
	r->segments_opened++;
	if (refresh_size(r) < 0)
		return ioerr(r, "cannot stat segment");
	const unsigned char *h = window(r, 0, SEG_HEADER_SIZE);
	if (!h) {
		if (errno)
			return ioerr(r, "cannot read segment header");
		uint64_t nxt = next_segno(r->dir, r->pos.segno);
		close_segment(r);
		if (nxt) {
			r->pos.offset = 0;
			return corrupt(r, "segment header is truncated");
		}
		r->torn_bytes = 0;
		return SEG_END; /* being created right now */
	}
	char why[128];
	if (check_header(h, r->pos.segno, why, sizeof why) < 0) {
		uint64_t off = r->pos.offset;
		r->pos.offset = 0;
		enum seg_status st = corrupt(r, "%s", why);
		r->pos.offset = off;
		return st;
	}
	if (r->pos.offset < SEG_HEADER_SIZE)
		r->pos.offset = SEG_HEADER_SIZE;
	return SEG_OK;
}

static int all_zero(struct seg_reader *r, uint64_t from)
{
	for (uint64_t off = from; off < r->file_size;) {
		size_t n = r->file_size - off > READ_WINDOW ? READ_WINDOW : (size_t)(r->file_size - off);
		const unsigned char *p = window(r, off, n);
		if (!p)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return 0;
		off += n;
	}
	return 1;
}

/* Validate the record at off; 0 and its length if whole and valid. */
static int record_valid(struct seg_reader *r, uint64_t off, uint32_t *total_out)
{
	if (off + SEG_RECORD_HEADER > r->file_size)
		return -1;
	const unsigned char *p = window(r, off, SEG_RECORD_HEADER);
	if (!p)
		return -1;
	uint32_t total = get32(p);
	uint16_t node_len = get16(p + 24);
	uint32_t data_len = get32(p + 28);
	if (node_len > SEG_NODE_MAX || data_len > SEG_DATA_MAX ||
	    total != SEG_RECORD_HEADER + (uint32_t)node_len + data_len || off + total > r->file_size)
		return -1;
	p = window(r, off, total);
	if (!p || get32(p + 4) != crc32c(0, p + 8, total - 8))
		return -1;
	*total_out = total;
	return 0;
}

enum seg_status seg_reader_next(struct seg_reader *r, struct seg_record *rec)
{
	r->torn_bytes = 0;
	for (;;) {
		if (r->fd < 0) {
			enum seg_status st = open_segment(r);
			if (st != SEG_OK)
				return st;
		}
		uint64_t off = r->pos.offset;
		if (off + SEG_RECORD_HEADER > r->file_size && refresh_size(r) < 0)
			return ioerr(r, "cannot stat segment");
		if (off > r->file_size)
			/* the records we stopped after were cut off since */
			return corrupt(r, "the segment ends at %" PRIu64 ", before the read position: its tail was lost",
				       r->file_size);
		if (off + SEG_RECORD_HEADER > r->file_size) {
			uint64_t nxt = next_segno(r->dir, r->pos.segno);
			/* re-check: the writer may have appended before rotating */
			if (refresh_size(r) < 0)
				return ioerr(r, "cannot stat segment");
			if (off + SEG_RECORD_HEADER <= r->file_size)
				continue;
			if (nxt) {
				if (off < r->file_size)
					return corrupt(r, "truncated record header at the end of a closed segment");
				close_segment(r);
				/* numbers are contiguous: a hole is a lost segment,
				 * which open_segment() reports at its own name */
				r->pos.segno = r->pos.segno + 1;
				r->pos.offset = 0;
				continue;
			}
			r->torn_bytes = r->file_size > off ? r->file_size - off : 0;
			return SEG_END;
		}
		const unsigned char *p = window(r, off, SEG_RECORD_HEADER);
		if (!p)
			return errno ? ioerr(r, "cannot read segment") : SEG_END;
		uint32_t total = get32(p);
		uint16_t node_len = get16(p + 24);
		uint32_t data_len = get32(p + 28);
		if (node_len > SEG_NODE_MAX || data_len > SEG_DATA_MAX ||
		    total != SEG_RECORD_HEADER + (uint32_t)node_len + data_len) {
			if (next_segno(r->dir, r->pos.segno) == 0 && all_zero(r, off)) {
				r->torn_bytes = r->file_size - off;
				return SEG_END;
			}
			return corrupt(r, "bad record header (length %" PRIu32 ", node %u, data %" PRIu32 ")",
				       total, node_len, data_len);
		}
		if (off + total > r->file_size) {
			if (refresh_size(r) < 0)
				return ioerr(r, "cannot stat segment");
			if (off + total > r->file_size) {
				if (next_segno(r->dir, r->pos.segno) == 0) {
					r->torn_bytes = r->file_size - off;
					return SEG_END;
				}
				return corrupt(r, "record of %" PRIu32 " bytes runs past the end of a closed segment", total);
			}
		}
		p = window(r, off, total);
		if (!p)
			return errno ? ioerr(r, "cannot read segment") : SEG_END;
		if (get32(p + 4) != crc32c(0, p + 8, total - 8)) {
			if (off + total == r->file_size && next_segno(r->dir, r->pos.segno) == 0) {
				/* last bytes of the active segment: a write in progress
				 * or a torn tail that the collector will truncate */
				r->torn_bytes = total;
				return SEG_END;
			}
			return corrupt(r, "CRC mismatch in record of %" PRIu32 " bytes", total);
		}
		rec->seq = get64(p + 8);
		if (r->expect_seq && rec->seq != r->expect_seq) {
			r->gap_pending = 1;
			r->gap_seq = rec->seq;
			if (rec->seq > r->expect_seq)
				return corrupt(r, "sequence gap: expected sequence %" PRIu64 ", found %" PRIu64
					       " (%" PRIu64 " records lost)", r->expect_seq, rec->seq,
					       rec->seq - r->expect_seq);
			return corrupt(r, "sequence %" PRIu64 " where %" PRIu64 " was expected (sequence goes back)",
				       rec->seq, r->expect_seq);
		}
		r->expect_seq = rec->seq + 1;
		rec->recv_us = get64(p + 16);
		rec->node = (const char *)p + SEG_RECORD_HEADER;
		rec->node_len = node_len;
		rec->data = (const char *)p + SEG_RECORD_HEADER + node_len;
		rec->data_len = data_len;
		rec->pos = r->pos;
		r->pos.offset = off + total;
		rec->next = r->pos;
		return SEG_OK;
	}
}

uint64_t seg_reader_resync(struct seg_reader *r)
{
	uint64_t start = r->pos.offset, skipped;
	r->lost_records = 0;
	if (r->gap_pending) {
		/* the record is whole and valid, only records before it are
		 * missing: take it as it is and carry on from its sequence */
		r->gap_pending = 0;
		if (r->gap_seq > r->expect_seq)
			r->lost_records = r->gap_seq - r->expect_seq;
		r->expect_seq = r->gap_seq;
		return 0;
	}
	if (r->fd < 0) {
		/* the segment itself is unusable: go to the next one */
		uint64_t nxt = next_segno(r->dir, r->pos.segno);
		struct stat st;
		char *path = seg_path(r->dir, r->pos.segno);
		skipped = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
		free(path);
		r->pos.segno = nxt ? nxt : r->pos.segno + 1;
		r->pos.offset = 0;
		r->expect_seq = 0; /* reported here: the next segment starts a new run */
		return skipped;
	}
	if (refresh_size(r) < 0)
		return 0;
	if (start > r->file_size) { /* lost tail: nothing to skip here */
		uint64_t nxt = next_segno(r->dir, r->pos.segno);
		if (nxt) {
			close_segment(r);
			r->pos.segno = nxt;
			r->pos.offset = 0;
		} else {
			r->pos.offset = r->file_size;
		}
		r->expect_seq = 0; /* reported here: how many records is not known */
		return 0;
	}
	/* the skipped bytes are the report: the record after them starts a new run */
	r->expect_seq = 0;
	for (uint64_t off = start + 1; off + SEG_RECORD_HEADER <= r->file_size; off++) {
		uint32_t total;
		if (record_valid(r, off, &total) == 0) {
			r->pos.offset = off;
			return off - start;
		}
	}
	skipped = r->file_size - start;
	uint64_t nxt = next_segno(r->dir, r->pos.segno);
	if (nxt) {
		close_segment(r);
		r->pos.segno = nxt;
		r->pos.offset = 0;
	} else {
		r->pos.offset = r->file_size;
	}
	return skipped;
}

/* ---------------------------------------------------------------- writer */

static int create_segment(struct seg_writer *w, uint64_t segno, char *err, size_t errlen)
{
	unsigned char h[SEG_HEADER_SIZE];
	char *path = seg_path(w->dir, segno);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		errmsg(err, errlen, "cannot create segment \"%s\": %s", path, strerror(errno));
		free(path);
		return -1;
	}
	encode_header(h, segno, w->node);
	if (write_full(fd, h, sizeof h) < 0 || fdatasync(fd) < 0 || fsync_dir(w->dir) < 0) {
		int saved = errno;
		errmsg(err, errlen, "cannot write segment \"%s\": %s", path, strerror(saved));
		close(fd);
		unlink(path);
		free(path);
		errno = saved;
		return -1;
	}
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	w->path = path;
	w->fd = fd;
	w->segno = segno;
	w->size = w->synced = SEG_HEADER_SIZE;
	w->opened_ms = clock_mono_ms();
	return 0;
}

/* What a walk through one segment found. */
struct walk {
	int header_ok;
	uint64_t size;        /* file size */
	uint64_t max_seq;     /* highest sequence of any valid record, damage or not */
	uint64_t prefix_end;  /* end of the leading run of whole, valid records */
	int corrupt;          /* invalid bytes after prefix_end */
	int valid_after;      /* ...followed by at least one valid record */
	int ioerr;
	char why[512];
};

static void walk_segment(const char *dir, uint64_t segno, struct walk *wk)
{
	memset(wk, 0, sizeof *wk);
	char *path = seg_path(dir, segno);
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0 || fstat(fd, &st) < 0) {
		wk->ioerr = errno ? errno : EIO;
		if (fd >= 0)
			close(fd);
		return;
	}
	wk->size = (uint64_t)st.st_size;
	unsigned char h[SEG_HEADER_SIZE];
	char why[128];
	wk->header_ok = pread_full(fd, h, sizeof h, 0) == (ssize_t)sizeof h &&
			check_header(h, segno, why, sizeof why) == 0;
	close(fd);
	wk->prefix_end = SEG_HEADER_SIZE;

	struct seg_reader r;
	struct seg_record rec;
	seg_reader_open(&r, dir, (struct seg_pos){ segno, 0 });
	for (;;) {
		enum seg_status s = seg_reader_next(&r, &rec);
		if (s == SEG_OK) {
			if (rec.pos.segno != segno)
				break;
			if (rec.seq > wk->max_seq)
				wk->max_seq = rec.seq;
			if (wk->corrupt)
				wk->valid_after = 1;
			else
				wk->prefix_end = rec.next.offset;
			continue;
		}
		if (s == SEG_END) {
			if (r.torn_bytes && !wk->corrupt)
				wk->corrupt = 1;
			break;
		}
		if (s == SEG_IOERR) {
			wk->ioerr = errno ? errno : EIO;
			snprintf(wk->why, sizeof wk->why, "%s", r.err);
			break;
		}
		if (!wk->corrupt)
			snprintf(wk->why, sizeof wk->why, "%s", r.err);
		wk->corrupt = 1;
		if (r.fd < 0)
			break;
		seg_reader_resync(&r);
		if (r.pos.segno != segno || r.pos.offset >= r.file_size)
			break;
	}
	seg_reader_close(&r);
}

int seg_writer_open(struct seg_writer *w, const char *spool, const char *node,
		    const struct seg_writer_opts *opts, struct seg_recovery *rec, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	memset(rec, 0, sizeof *rec);
	w->fd = -1;
	if (!seg_node_name_valid(node)) {
		errno = EINVAL;
		return errmsg(err, errlen, "invalid node name \"%s\" (use 1-64 of A-Z a-z 0-9 . _ -)", node);
	}
	snprintf(w->node, sizeof w->node, "%s", node);
	w->opts = *opts;
	w->dir = xasprintf("%s/%s", spool, node);
	if (mkdir_p(w->dir, 0755) < 0) {
		errmsg(err, errlen, "cannot create spool directory \"%s\": %s", w->dir, strerror(errno));
		goto fail;
	}
	uint64_t *list;
	size_t n;
	if (seg_list(w->dir, &list, &n) < 0) {
		errmsg(err, errlen, "cannot read spool directory \"%s\": %s", w->dir, strerror(errno));
		goto fail;
	}
	rec->segments = n;
	uint64_t last_segno = n ? list[n - 1] : 0;
	/* Repair the newest segment's tail, never anything else, and find the
	 * highest sequence number so numbering continues without reuse. */
	for (size_t i = n; i-- > 0;) {
		struct walk wk;
		walk_segment(w->dir, list[i], &wk);
		if (wk.ioerr) {
			errno = wk.ioerr;
			errmsg(err, errlen, "cannot read segment %" PRIu64 " in \"%s\": %s", list[i], w->dir,
			       strerror(wk.ioerr));
			free(list);
			goto fail;
		}
		if (i == n - 1) {
			char *path = seg_path(w->dir, list[i]);
			if (wk.size < SEG_HEADER_SIZE) {
				/* created, but the header never made it: holds nothing */
				if (unlink(path) < 0 || fsync_dir(w->dir) < 0) {
					errmsg(err, errlen, "cannot remove empty segment \"%s\": %s", path, strerror(errno));
					free(path);
					free(list);
					goto fail;
				}
				rec->torn_bytes = wk.size;
				rec->torn_segno = list[i];
				rec->segments--;
				last_segno = i ? list[i - 1] : 0; /* reuse its number: no gap for readers */
			} else if (!wk.header_ok || (wk.corrupt && wk.valid_after)) {
				rec->damaged = 1; /* not a torn tail: leave it for --verify */
			} else if (wk.corrupt && wk.size > wk.prefix_end) {
				int fd = open(path, O_WRONLY | O_CLOEXEC);
				if (fd < 0 || ftruncate(fd, (off_t)wk.prefix_end) < 0 || fdatasync(fd) < 0) {
					errmsg(err, errlen, "cannot truncate torn tail of \"%s\": %s", path, strerror(errno));
					if (fd >= 0)
						close(fd);
					free(path);
					free(list);
					goto fail;
				}
				close(fd);
				rec->torn_bytes = wk.size - wk.prefix_end;
				rec->torn_segno = list[i];
			}
			free(path);
		}
		if (wk.max_seq) {
			rec->last_seq = wk.max_seq;
			break;
		}
	}
	free(list);
	w->next_seq = rec->last_seq + 1;
	if (create_segment(w, last_segno + 1, err, errlen) < 0)
		goto fail;
	return 0;
fail:;
	int saved = errno;
	free(w->dir);
	w->dir = NULL;
	errno = saved;
	return -1;
}

static int rotate(struct seg_writer *w, char *err, size_t errlen)
{
	if (fdatasync(w->fd) < 0)
		return errmsg(err, errlen, "cannot sync segment \"%s\": %s", w->path, strerror(errno));
	w->synced = w->size;
	return create_segment(w, w->segno + 1, err, errlen);
}

static int too_old(const struct seg_writer *w)
{
	return w->opts.max_age_ms && clock_mono_ms() - w->opened_ms >= w->opts.max_age_ms;
}

/* Write len bytes at the end of the current segment; on failure truncate
 * back so no partial record remains. */
static int write_at_end(struct seg_writer *w, const char *p, size_t len, char *err, size_t errlen)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = pwrite(w->fd, p + done, len - done, (off_t)(w->size + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int saved = k < 0 ? errno : EIO;
			if (ftruncate(w->fd, (off_t)w->size) < 0) { /* nothing better to do */ }
			errno = saved;
			return errmsg(err, errlen, "cannot write segment \"%s\": %s", w->path, strerror(saved));
		}
		done += (size_t)k;
	}
	w->size += len;
	return 0;
}

int seg_writer_append(struct seg_writer *w, const void *recs, size_t len, size_t *written, char *err,
		      size_t errlen)
{
	const char *p = recs;
	*written = 0;
	while (len) {
		size_t first = get32((const unsigned char *)p);
		if (first < SEG_RECORD_HEADER || first > len)
			first = len;
		if (w->size > SEG_HEADER_SIZE && (w->size + first > w->opts.max_size || too_old(w)) &&
		    rotate(w, err, errlen) < 0)
			return -1;
		/* whole records, as many as fit: a segment passes max_size only
		 * when a single record is larger than what is left */
		size_t run = 0;
		if (w->size + len <= w->opts.max_size)
			run = len; /* the common case: all of it fits, no need to walk the records */
		while (run < len) {
			size_t rec = get32((const unsigned char *)p + run);
			if (rec < SEG_RECORD_HEADER || rec > len - run)
				rec = len - run; /* not a record stream: write as is */
			if (run && w->size + run + rec > w->opts.max_size)
				break;
			run += rec;
		}
		if (write_at_end(w, p, run, err, errlen) < 0) {
			/* disk full in the middle of a run: keep every whole record
			 * that still fits, so what is stored stays a prefix */
			int saved = errno;
			size_t off = 0;
			while (run > first && off < run) {
				size_t rec = get32((const unsigned char *)p + off);
				if (rec < SEG_RECORD_HEADER || rec > run - off)
					break;
				char ignored[64];
				if (write_at_end(w, p + off, rec, ignored, sizeof ignored) < 0)
					break;
				off += rec;
				*written += rec;
			}
			errno = saved;
			return -1;
		}
		p += run;
		len -= run;
		*written += run;
	}
	return 0;
}

int seg_writer_tick(struct seg_writer *w, char *err, size_t errlen)
{
	if (w->size > SEG_HEADER_SIZE && too_old(w))
		return rotate(w, err, errlen);
	return 0;
}

int seg_writer_sync(struct seg_writer *w)
{
	if (w->synced == w->size)
		return 0;
	if (fdatasync(w->fd) < 0)
		return -1;
	w->synced = w->size;
	return 0;
}

int seg_writer_close(struct seg_writer *w)
{
	int rc = 0;
	if (w->fd >= 0) {
		if (seg_writer_sync(w) < 0)
			rc = -1;
		int saved = errno;
		if (close(w->fd) < 0 && rc == 0)
			rc = -1;
		else
			errno = saved;
	}
	free(w->dir);
	free(w->path);
	memset(w, 0, sizeof *w);
	w->fd = -1;
	return rc;
}

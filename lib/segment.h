/*
 * segment.h - the spool's segment files: writer (collector) and reader (etl,
 * verify).  The byte layout is specified in docs/segment-format.md; keep the
 * two in step.
 *
 * A spool holds one directory per PBX node; each holds numbered segment
 * files "<16-digit number>.seg".  Only the highest-numbered segment of a
 * node is ever appended to; every other one is closed and never rewritten.
 * Records are framed with length, CRC-32C, node, sequence and receive time
 * around the raw AMI event bytes.
 */
#ifndef CDRFLOW_SEGMENT_H
#define CDRFLOW_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define SEG_MAGIC "CDRFSEG1"
#define SEG_VERSION 1
#define SEG_HEADER_SIZE 128
#define SEG_RECORD_HEADER 32
#define SEG_NODE_MAX 64
#define SEG_DATA_MAX (64u << 20) /* sanity bound for readers */

/* Position of a record: segment number and byte offset in that file. */
struct seg_pos {
	uint64_t segno;
	uint64_t offset;
};

/* Spool order of two positions. */
static inline int seg_pos_before(struct seg_pos a, struct seg_pos b)
{
	return a.segno < b.segno || (a.segno == b.segno && a.offset < b.offset);
}

static inline int seg_pos_equal(struct seg_pos a, struct seg_pos b)
{
	return a.segno == b.segno && a.offset == b.offset;
}

/* Whether `at` is one of the n positions in v. */
static inline int seg_pos_listed(const struct seg_pos *v, size_t n, struct seg_pos at)
{
	for (size_t i = 0; i < n; i++)
		if (seg_pos_equal(v[i], at))
			return 1;
	return 0;
}

/* ---- encoding (pure) ---- */

static inline size_t seg_record_size(size_t node_len, size_t data_len)
{
	return SEG_RECORD_HEADER + node_len + data_len;
}
/* Record flags (docs/segment-format.md).  0: the data is one AMI event. */
#define SEG_FLAG_JSON 0x0001u /* the data is one JSON message (a Yeastar event), as received */

/* Encode one record into dst (seg_record_size() bytes). */
void seg_record_encode(void *dst, uint64_t seq, uint64_t recv_us, unsigned flags, const char *node,
		       size_t node_len, const void *data, size_t data_len);

/* A valid node name: 1..64 of [A-Za-z0-9._-], not starting with '.'. */
int seg_node_name_valid(const char *name);

/* ---- writer ---- */

enum seg_fsync { SEG_FSYNC_ALWAYS, SEG_FSYNC_INTERVAL, SEG_FSYNC_OFF };

struct seg_writer_opts {
	uint64_t max_size;   /* rotate when a segment reaches this many bytes */
	uint64_t max_age_ms; /* rotate when a segment is this old (0 = never) */
};

/* What opening a node directory found and repaired. */
struct seg_recovery {
	uint64_t segments;       /* existing segments found */
	uint64_t last_seq;       /* sequence of the last whole record (0 = none) */
	uint64_t torn_bytes;     /* bytes truncated from the last segment's tail */
	uint64_t torn_segno;
	int damaged;             /* the last segment has corruption that is not a torn tail */
};

struct seg_writer {
	char *dir;   /* spool/node, owned */
	char *path;  /* current segment path, owned */
	int fd;
	uint64_t segno;
	uint64_t size;       /* bytes in the current segment */
	uint64_t synced;     /* bytes known to be on stable storage */
	uint64_t opened_ms;  /* CLOCK_MONOTONIC ms when the segment was opened */
	uint64_t next_seq;
	struct seg_writer_opts opts;
	char node[SEG_NODE_MAX + 1];
};

/*
 * Open spool/node for appending: create it if missing, recover the last
 * segment (truncate a torn tail, never touch whole records), and start a new
 * segment.  Returns 0, or -1 with errno set and a one-line reason in err.
 */
int seg_writer_open(struct seg_writer *w, const char *spool, const char *node,
		    const struct seg_writer_opts *opts, struct seg_recovery *rec, char *err, size_t errlen);
/* Append whole encoded records, rotating at record boundaries when the
 * segment is full or old.  On a failed or short write the file is truncated
 * back so no partial record remains; returns -1 with errno (ENOSPC, EIO,
 * ...).  *written = bytes appended (whole records), also on failure, so the
 * caller retries only the rest. */
int seg_writer_append(struct seg_writer *w, const void *recs, size_t len, size_t *written, char *err,
		      size_t errlen);
/* Rotate now if the segment is older than max_age (called on idle ticks). */
int seg_writer_tick(struct seg_writer *w, char *err, size_t errlen);
/* fdatasync the current segment. */
int seg_writer_sync(struct seg_writer *w);
/* Sync and close; frees everything.  Returns -1 if the final sync failed. */
int seg_writer_close(struct seg_writer *w);

/* ---- reader ---- */

enum seg_status {
	SEG_OK = 0,      /* a record was returned */
	SEG_END = 1,     /* no further whole record yet */
	SEG_CORRUPT = 2, /* bad data at r->pos; r->err says what; seg_reader_resync() skips it */
	SEG_IOERR = 3,   /* read error; r->err says what */
};

struct seg_record {
	uint64_t seq;
	uint64_t recv_us;
	const char *node;
	size_t node_len;
	unsigned flags;   /* SEG_FLAG_* */
	const char *data; /* raw AMI bytes (JSON with SEG_FLAG_JSON); valid until the next call */
	size_t data_len;
	struct seg_pos pos;  /* where this record starts */
	struct seg_pos next; /* where the record after it starts */
};

struct seg_reader {
	char *dir;           /* owned */
	int fd;
	struct seg_pos pos;  /* next record to read */
	uint64_t file_size;
	char *buf;           /* owned read window over the file */
	size_t buf_cap;
	uint64_t buf_off;    /* file offset of buf[0] */
	size_t buf_len;
	uint64_t torn_bytes; /* at SEG_END: incomplete bytes after pos in the last segment */
	uint64_t segments_opened;
	/* Sequence check: sequences of a node are contiguous (docs/segment-format.md).
	 * expect_seq is the sequence the next record must carry; 0 = not known,
	 * the next record sets it.  A record with another sequence is SEG_CORRUPT
	 * at that record's position ("sequence gap"); seg_reader_resync() then
	 * accepts it (skips 0 bytes) and lost_records says how many are missing. */
	uint64_t expect_seq;
	uint64_t lost_records; /* after a gap: records missing before r->pos */
	int gap_pending;       /* SEG_CORRUPT was a sequence gap at r->pos */
	uint64_t gap_seq;      /* ...and the sequence found there */
	char err[512];
};

/* Start at pos; pos.segno 0 = the node's first segment, offset 0 = after
 * its header.  Returns 0 or -1 (err filled).  Set r->expect_seq afterwards
 * when the sequence of the record at pos is known (last one read + 1). */
int seg_reader_open(struct seg_reader *r, const char *node_dir, struct seg_pos pos);
enum seg_status seg_reader_next(struct seg_reader *r, struct seg_record *rec);
/* After SEG_CORRUPT: move to the next valid record (or the next segment).
 * Returns the number of bytes skipped. */
uint64_t seg_reader_resync(struct seg_reader *r);
void seg_reader_close(struct seg_reader *r);

/* Sorted segment numbers in a node directory (caller frees *out). 0 or -1. */
int seg_list(const char *node_dir, uint64_t **out, size_t *n);
/* Node directory names in a spool (caller frees each and the array).  0, or
 * -1 with "cannot read spool "DIR": reason" in err (errno kept). */
int seg_list_nodes(const char *spool, char ***out, size_t *n, char *err, size_t errlen);

#endif

/*
 * legwait.h - leg rows held back until their call closes, so that a leg is
 * written once, with its call_id.
 *
 * A leg finishes before its call does (the call closes when its last
 * channel goes), usually in the same batch.  The leg's COPY row waits here,
 * keyed by its linkedid; when a call of the batch closes, the rows of the
 * legs whose linkedid is one of the call's get its call_id.  Rows still
 * waiting when the batch is written (their call is still up) are written
 * with a NULL call_id, which the ETL sets when that call closes.
 */
#ifndef CDRFLOW_LEGWAIT_H
#define CDRFLOW_LEGWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define LEGWAIT_BUCKETS 1024u

struct legwait_row {
	size_t off, len;  /* of the row text in rows */
	uint32_t next;    /* next row of the bucket, 1-based; 0: none */
	uint32_t hash;
	int done;
	char *linkedid;   /* owned */
};

struct legwait {
	struct buf rows;
	struct legwait_row *v;
	size_t n, cap;
	uint32_t head[LEGWAIT_BUCKETS]; /* 1-based row index; 0: none */
	uint32_t tail[LEGWAIT_BUCKETS]; /* rows of a bucket in hold order */
};

void legwait_init(struct legwait *w);
void legwait_release(struct legwait *w);
/* Forget every row (after legwait_flush). */
void legwait_reset(struct legwait *w);
/* Hold a leg's row: the COPY text of every column but the last (call_id),
 * each followed by its tab. */
void legwait_hold(struct legwait *w, const char *linkedid, const char *row, size_t len);
/* A call closed: the rows of its legs (linkedid in linkedids, a PostgreSQL
 * array literal such as {"a","b"}) with call_id, into out.  Returns how
 * many. */
size_t legwait_call(struct legwait *w, const char *linkedids, const char *call_id, struct buf *out);
/* The rows still held, with a NULL call_id, into out; returns how many. */
size_t legwait_flush(struct legwait *w, struct buf *out);

#endif

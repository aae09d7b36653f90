/*
 * spool.h - hands events from a reader thread to the durable writer.
 *
 * The reader (a socket or a capture file) must never wait on the disk:
 * Asterisk drops a manager client whose socket blocks for ~100 ms.  So each
 * node's events are encoded as segment records into fixed chunks of memory
 * (about opts.buffer_size in all; a record larger than a chunk gets one of
 * its own) and a writer thread appends whole chunks to the node's segment
 * file; with fsync always a syncer thread runs fdatasync meanwhile, each one
 * covering what was written before it started.  Only when every chunk is
 * waiting for the disk does spool_add() block.
 *
 * Threads: spool_add/spool_batch_end/spool_close belong to one producer
 * thread; the writer and syncer threads are internal.
 */
#ifndef CDRFLOW_SPOOL_H
#define CDRFLOW_SPOOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

struct spool_opts {
	enum seg_fsync fsync;
	uint64_t fsync_interval_ms;
	uint64_t segment_max_size;
	uint64_t segment_max_age_ms;
	uint64_t buffer_size;
	uint64_t max_event_size;
	int fail_fast; /* a write error stops the spool (replay) instead of retrying (daemon) */
	unsigned record_flags; /* SEG_FLAG_* of every record (SEG_FLAG_JSON: a Yeastar node) */
};

struct spool_stats {
	_Atomic uint64_t events;        /* records accepted from the producer */
	_Atomic uint64_t bytes;         /* raw event bytes accepted */
	_Atomic uint64_t written;       /* records written to the segment file */
	_Atomic uint64_t synced_seq;    /* highest sequence known to be on stable storage */
	_Atomic uint64_t backlog_bytes; /* encoded bytes waiting for the writer */
	_Atomic uint64_t write_errors;
	_Atomic uint64_t stalls;        /* times the producer had to wait for the disk */
};

struct spool;

/* Open (and recover) spool_dir/node and start its writer thread.
 * Returns NULL with a one-line reason in err; *errnum gets the errno. */
struct spool *spool_open(const char *spool_dir, const char *node, const struct spool_opts *opts,
			 struct seg_recovery *rec, int *errnum, char *err, size_t errlen);
/* Queue one raw event.  0, or -1 if the spool has failed (see spool_error). */
int spool_add(struct spool *s, const char *raw, size_t len, uint64_t recv_us);
/* The producer finished a batch (one read): let the writer take what is queued. */
void spool_batch_end(struct spool *s);
/* Drain, sync and stop the writer; frees s.  0, or -1 if anything queued
 * could not be written and synced (err filled).  *stored (if not NULL) =
 * records written by this spool, whole ones only. */
int spool_close(struct spool *s, uint64_t *stored, char *err, size_t errlen);
/* 0 while healthy; else the errno of the failure that stopped a fail_fast spool. */
int spool_error(struct spool *s, char *err, size_t errlen);
struct spool_stats *spool_stats(struct spool *s);
uint64_t spool_next_seq(const struct spool *s);

#endif

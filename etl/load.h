/*
 * load.h - one ETL pass: for each node, read segment records from the
 * checkpoint, turn them into warehouse rows, COPY them, and advance the
 * checkpoint in the same transaction (exactly once, whatever crashes).
 */
#ifndef CDRFLOW_LOAD_H
#define CDRFLOW_LOAD_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>

#include "callgroup.h"
#include "config.h"
#include "segment.h"

struct load_stats {
	uint64_t events, cel_rows, ami_rows, legs, calls, batches, bytes;
};

/* The positions 'cdrflow-etl skip' recorded for node (etl_skip), which
 * the reader passes: *out (caller frees) holds *n.  0, or -1 with err. */
int load_recorded_skips(PGconn *c, const char *node, struct seg_pos **out, size_t *n, char *err, size_t errlen);
/* Is pos where reading resumed after a recorded skip over damaged bytes?
 * Then the sequence of the next record is not known (the damaged record
 * had one): the reader learns it instead of reporting a false gap. */
int load_after_byte_skip(PGconn *c, const char *node, struct seg_pos pos);

/* Set (from a signal handler) to stop after the current batch. */
extern volatile sig_atomic_t load_stop_requested;

/* The input doctor beside the load (etl/caveat.c), fed from the load's own
 * parse: every AMI event of the records a node loads from its checkpoint on
 * (not those re-read only to rebuild the CDR engine) runs through
 * adoc_event() in the producer thread, into a copy of the doctor node()
 * returns; after each batch that commits, committed() gets the doctor as of
 * the batch's last record, the records the batch loaded and the checkpoint
 * it committed.  A batch built but not committed is never told.  Both
 * callbacks run in the calling thread. */
struct amidoctor;
struct load_doctor {
	/* The node's doctor as of its checkpoint (NULL: feed none). */
	struct amidoctor *(*node)(void *arg, const char *node);
	void (*committed)(void *arg, const char *node, const struct amidoctor *ad, uint64_t records, struct seg_pos to);
	void *arg;
};

/* Load everything available now.  doc: NULL, or the doctor to feed.
 * Returns an exit code; err says why. */
struct legclass;
int load_once(PGconn *c, const struct etl_config *cfg, const struct legclass *lc, const struct load_doctor *doc,
	      int progress, struct load_stats *st, char *err, size_t errlen);

/* 'cdrflow-etl skip': check that reading node from its checkpoint stops at
 * a corrupt position exactly at `at` (past skips recorded before), then
 * record the skip in etl_skip (bytes and records lost, where reading
 * resumes, the reader's message, who, when) and print one line on out.
 * The loader passes only recorded positions.  Returns an exit code:
 * EXIT_USAGE when `at` is not where the reader stops. */
#include <stdio.h>
#include "segment.h"
int load_skip(PGconn *c, const struct etl_config *cfg, const char *node, struct seg_pos at, FILE *out, char *err,
	      size_t errlen);

/* The pieces every source of legs shares (the AMI path here, etl/kamload.c):
 * one leg / one call as a COPY row of the cdr / call stream (the leg's
 * tenant, direction, E.164 numbers and rating from lc); the distinct months
 * (YYYYMM) rows fall in; BEGIN with the session's batch tables; then, inside
 * that transaction, the partitions of the months, the COPY of the rows (cel
 * and ami NULL when there are none), legs and calls stored once each.
 * pending gets the months whose partitions this transaction creates: pass
 * them to load_months_committed() after COMMIT; *dropped (when not NULL)
 * becomes 1 if legs or calls an earlier run stored were dropped from the
 * batch tables, else 0.  0, or -1 with err. */
#include "buf.h"
#include "legclass.h"
#define LOAD_MONTHS 64
/* A leg's COPY row with its facts e (legclass_apply), every column but the
 * last; load_leg_row_end() adds its call_id (NULL: not known yet). */
void load_leg_row(struct buf *r, const struct leg_extra *e, const struct cdr_row *x, const char *node);
void load_leg_row_end(struct buf *r, const char *call_id);
/* The facts of a leg its call sums up. */
void load_leg_facts(const struct leg_extra *e, struct leg_facts *out);
/* A call's COPY row, its facts (call_row.facts) included. */
void load_call_row(struct buf *r, const struct call_row *x, const char *node);
void load_note_month(int months[LOAD_MONTHS], size_t *n, uint64_t us);
int load_begin(PGconn *c, char *err, size_t errlen);
int load_store_rows(PGconn *c, const char *node, const struct buf *cel, const struct buf *ami, const struct buf *cdr,
		    const struct buf *call, uint64_t legs, uint64_t calls, const int *months, size_t nmonths, int *pending,
		    size_t *npending, int *dropped, char *err, size_t errlen);
/* Then, for a source whose legs may be written before their call closes
 * (the AMI path, legwait.h): those legs learn their call_id from the
 * batch's calls (call_batch).  0, or -1 with err. */
int load_link_legs(PGconn *c, char *err, size_t errlen);
void load_months_committed(const int *pending, size_t n);
/* What the analytics steps read of a batch, into the batch tables of c's
 * open transaction (load_begin): legs and calls (COPY rows, as the cdr and
 * call streams wrote them) into cdr_batch and call_batch; the batch's
 * conversations into event_scope_batch and its endpoint-state changes into
 * endpoint_event_batch, each with the setting that tells its step they are
 * the batch's events (node_lit: the node as an SQL literal), unless NULL
 * (the step then reads the events itself).  0, or -1 with err. */
int load_handoff(PGconn *c, const char *node_lit, uint64_t seq_lo, uint64_t seq_hi, const struct buf *legs,
		 const struct buf *calls, const struct buf *convs, const struct buf *state, char *err, size_t errlen);

/* Every configured source (sources:) into source_node (node, type), so
 * that queries and reports can say where a node's rows came from.  0, or
 * -1 with err. */
int load_register_sources(PGconn *c, const struct etl_config *cfg, char *err, size_t errlen);

/* Free the CDR engines kept between load_once() calls. */
void load_release(void);

/* Measuring aid: run the transform over the whole spool with no database;
 * with copy_dir, write the COPY rows to copy_dir/{cel,ami_event}.copy. */
int transform_only(const struct etl_config *cfg, const struct legclass *lc, const char *copy_dir, struct load_stats *st, char *err, size_t errlen);

/* After a committed batch: ANALYZE the partitions of cdr and call a load
 * grew by a fifth since their last ANALYZE (cdrflow_analyze_grown(),
 * 0041), so the analytics' plans keep up with a long load.  A failure is
 * logged, never fatal. */
void load_refresh_statistics(PGconn *c);

#endif

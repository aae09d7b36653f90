/*
 * evscope.h - the tenants an event row is written with.
 *
 * Which tenants may see an event (cel.tenants, ami_event.tenants) follows
 * from the legs of its conversation (node, linkedid): the rule is stated in
 * SQL, in cdrflow_event_scope() (sql/0038), which the analytics step runs
 * after every batch and which stays the authority: it corrects every row
 * whose tenants differ.  Most conversations start and end inside one batch,
 * so their events can be written right the first time: this module applies
 * the same rule to the legs and events of the batch in hand, and the step
 * then rewrites only the rows of conversations that span batches (issue 15:
 * before, it rewrote every event of every tenant's call, a second write of
 * each row).
 *
 * Use: the row writers end each event row with a NULL tenants column ("\N")
 * and note where the row starts (evscope_event: 16 bytes a row; its
 * linkedid, uniqueid and channel are read back from the COPY text, at the
 * columns evscope_columns names); each leg with a tenant is noted with
 * evscope_leg.  evscope_apply() then fills the tenants of the rows in place
 * (the buffers grow once) and forgets the batch.
 */
#ifndef CDRFLOW_EVSCOPE_H
#define CDRFLOW_EVSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define EVSCOPE_STREAMS 2 /* cel, ami_event */

/* A value of a row: offset and length of its COPY text in the row's
 * buffer; len == SIZE_MAX: SQL NULL. */
struct evscope_val {
	size_t off, len;
};

/* An event row: where it starts in its buffer, its seq. */
struct evscope_ev {
	uint64_t start, seq;
};

/* Where a stream's rows hold linkedid, uniqueid and channel (0-based
 * COPY columns); the tenants column is the last. */
struct evscope_columns {
	unsigned lid, uid, chan;
};

/* The conversations (linkedids, by a 64-bit hash) of the event rows stored
 * from the analytics step's lower bound on (etl_checkpoint.cdr_seq), each
 * with its last seq: a conversation of the batch that is not here has all
 * its rows in the batch, so the tenants evscope_apply() gives them are
 * what the step would decide.  It lives with the node's CDR engine and is
 * rebuilt with it (the engine's replay re-reads those rows). */
struct evscope_window {
	struct evscope_slot {
		uint64_t hash, seq; /* hash 0: empty */
	} *slot;
	size_t cap, n;
	uint64_t lost_seq; /* > 0: a row up to this seq was not kept (too many) */
	struct buf scratch;
};

struct evscope_leg {
	struct evscope_val lid, uid, chan, dst; /* COPY text in strs */
	size_t tenant;                          /* raw, NUL-terminated, in strs */
	uint32_t next;                          /* next leg of the same linkedid, 1-based */
};

struct evscope {
	struct buf strs;
	struct evscope_columns cols[EVSCOPE_STREAMS];
	struct evscope_ev *ev[EVSCOPE_STREAMS];
	size_t nev[EVSCOPE_STREAMS], evcap[EVSCOPE_STREAMS];
	struct evscope_leg *legs;
	size_t nlegs, legcap;
	struct buf sets;   /* tenant sets as COPY text of text[], one after another */
	size_t *set_off;   /* of each set in sets; set_off[k]..set_off[k+1] */
	size_t nsets, setcap;
};

void evscope_init(struct evscope *s, const struct evscope_columns cols[EVSCOPE_STREAMS]);
void evscope_release(struct evscope *s);
/* Forget the batch. */
void evscope_reset(struct evscope *s);
/* A leg with a tenant (raw strings, as the leg has them). */
void evscope_leg(struct evscope *s, const char *linkedid, const char *uniqueid, const char *channel,
		 const char *dstchannel, const char *tenant);
/* An event row of stream (0: cel, 1: ami_event) with sequence seq, written
 * from offset start of its buffer, ending with a NULL tenants column. */
void evscope_event(struct evscope *s, uint32_t stream, uint64_t start, uint64_t seq);
/* Write the tenants of every noted row into rows[stream] and forget the
 * batch.  With convs, every conversation of the batch (the linkedid of an
 * event row or of a tenant leg) is appended to it once, as a COPY line of
 * event_scope_batch: linkedid, whole (t: no row of it in w, so every row
 * is in this batch; f without w), and how many tenant legs the batch
 * noted.  The batch's rows are then added to w.  Returns how many rows
 * got tenants. */
size_t evscope_apply(struct evscope *s, struct buf *rows[EVSCOPE_STREAMS], struct evscope_window *w,
		     struct buf *convs);

void evscope_window_init(struct evscope_window *w);
void evscope_window_release(struct evscope_window *w);
/* A row stored by an earlier run (the engine's replay): linkedid raw. */
void evscope_window_note(struct evscope_window *w, const char *linkedid, size_t len, uint64_t seq);
/* Forget the conversations whose last row is before seq. */
void evscope_window_trim(struct evscope_window *w, uint64_t seq);

#endif

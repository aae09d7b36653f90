/*
 * analyst.h - a batch's analytics on a connection of their own, while the
 * loader's connection stores the next batch (sql/0079).
 *
 * The loader writes a batch's hand-off (what the analytics steps read: its
 * legs and calls as COPYed into the batch tables, its conversations, its
 * endpoint-state changes) into etl_analytics_pending in the batch's own
 * transaction (analyst_store), commits, and passes the same bytes to the
 * analyst (analyst_submit).  The analyst's thread fills its session's batch
 * tables, runs cdrflow_after_batch and deletes the pending row in one
 * transaction (the row first: a batch whose row is gone was analysed
 * already, and is not analysed twice).  The loader waits for it
 * (analyst_wait) before it commits the next batch, so the analytics of a
 * batch see exactly the rows up to their batch and at most one batch is
 * pending; a row a crash left is analysed before anything else loads
 * (analyst_recover).
 */
#ifndef CDRFLOW_ANALYST_H
#define CDRFLOW_ANALYST_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* One batch's hand-off. */
struct analyst_job {
	int64_t id; /* its row of etl_analytics_pending (analyst_store) */
	char node[256];
	uint64_t seq_lo, seq_hi; /* the batch's events: (seq_lo, seq_hi] */
	uint64_t scope_from;     /* etl_checkpoint.cdr_seq before the batch */
	int told_scope;          /* convs is the batch's event_scope_batch */
	int told_state;          /* state is its endpoint_event_batch */
	struct buf legs, calls, convs, state;
};

void analyst_job_init(struct analyst_job *j);
void analyst_job_release(struct analyst_job *j);

/* Record j in etl_analytics_pending, inside c's open transaction, and set
 * j->id to its row.  0, or -1 with err ("SQLSTATE: message"). */
int analyst_store(PGconn *c, struct analyst_job *j, char *err, size_t errlen);

/* The analyst: a second connection to c's server and database, and its
 * thread.  NULL with err when it cannot connect or start. */
struct analyst;
struct analyst *analyst_new(PGconn *c, char *err, size_t errlen);
/* Wait for a job under way, then stop the thread and close. */
void analyst_free(struct analyst *a);

/* Start the analytics of j, whose batch has committed; the analyst takes
 * j's buffers and gives j empty ones in their place.  The analyst must be
 * idle (analyst_wait). */
void analyst_submit(struct analyst *a, struct analyst_job *j);
/* Wait until the analyst is idle.  0; or, with the last job's failure in
 * err (once: the failure is cleared), ANALYST_LOST when the connection went
 * away, ANALYST_FAILED when a statement failed (a step's error: err says
 * which batch, and that it is pending). */
enum { ANALYST_LOST = -1, ANALYST_FAILED = -2 };
int analyst_wait(struct analyst *a, char *err, size_t errlen);

/* Analyse node's batches of etl_analytics_pending, oldest first, and wait.
 * *n gets how many were analysed.  0, or what analyst_wait returns. */
int analyst_recover(struct analyst *a, const char *node, size_t *n, char *err, size_t errlen);

/* Rewrite err ("SQLSTATE: message"), the failure of the analytics of node's
 * events (seq_lo, seq_hi], into what an operator reads: which batch, what
 * failed, and that its rows are stored with its analytics pending (stored)
 * or that it was rolled back.  The SQLSTATE stays in front. */
void analyst_failure_message(char *err, size_t errlen, const char *node, uint64_t seq_lo, uint64_t seq_hi,
			     int stored);

#endif

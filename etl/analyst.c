/*
 * analyst.c - a batch's analytics on a connection of their own (analyst.h).
 */
#include "analyst.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "log.h"
#include "pgconn.h"
#include "xalloc.h"

void analyst_job_init(struct analyst_job *j)
{
	memset(j, 0, sizeof *j);
	buf_init(&j->legs, 0);
	buf_init(&j->calls, 0);
	buf_init(&j->convs, 0);
	buf_init(&j->state, 0);
}

void analyst_job_release(struct analyst_job *j)
{
	buf_release(&j->legs);
	buf_release(&j->calls);
	buf_release(&j->convs);
	buf_release(&j->state);
}

int analyst_store(PGconn *c, struct analyst_job *j, char *err, size_t errlen)
{
	char lo[24], hi[24], from[24];
	snprintf(lo, sizeof lo, "%" PRIu64, j->seq_lo);
	snprintf(hi, sizeof hi, "%" PRIu64, j->seq_hi);
	snprintf(from, sizeof from, "%" PRIu64, j->scope_from);
	const struct buf *b[4] = { &j->legs, &j->calls, &j->convs, &j->state };
	const char *v[10] = { j->node, lo, hi, from, j->told_scope ? "t" : "f", j->told_state ? "t" : "f" };
	int len[10] = { 0 }, fmt[10] = { 0 };
	for (int i = 0; i < 4; i++) {
		v[6 + i] = b[i]->len ? b[i]->data : "";
		len[6 + i] = (int)b[i]->len;
		fmt[6 + i] = 1; /* bytea, sent as is */
	}
	PGresult *r = PQexecParams(c,
				   "INSERT INTO etl_analytics_pending (node, seq_lo, seq_hi, scope_from, told_scope, "
				   "told_state, legs, calls, convs, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
				   "RETURNING id",
				   10, NULL, v, len, fmt, 0);
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		pgc_result_error(r, c, err, errlen);
		rc = -1;
	} else {
		j->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	PQclear(r);
	return rc;
}

enum { IDLE, QUEUED, RUNNING, QUIT };

struct analyst {
	PGconn *c;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;
	int failed;
	char err[1024];
	struct analyst_job job;
};

/* The batch's analytics and the end of its pending row, in one transaction.
 * The row goes first: gone, the batch was analysed already (a COMMIT whose
 * answer the connection lost), and is not analysed twice. */
static int analyse_once(PGconn *c, const struct analyst_job *j, char *err, size_t errlen)
{
	char *node = PQescapeLiteral(c, j->node, strlen(j->node));
	if (!node) {
		snprintf(err, errlen, "08006: %s", PQerrorMessage(c));
		return -1;
	}
	char sql[1024], *gone = NULL;
	int rc = -1;
	snprintf(sql, sizeof sql,
		 "WITH d AS (DELETE FROM etl_analytics_pending WHERE node = %s AND id = %" PRId64 " RETURNING 1) "
		 "SELECT count(*) = 0 FROM d",
		 node, j->id);
	if (load_begin(c, err, errlen) < 0 || pgc_value(c, sql, &gone, err, errlen) < 0)
		goto out;
	if (gone && !strcmp(gone, "t")) {
		log_info("node %s: the batch of events %" PRIu64 "-%" PRIu64 " was analysed already", j->node,
			 j->seq_lo + 1, j->seq_hi);
		if (pgc_exec(c, "ROLLBACK", err, errlen) < 0)
			goto out;
		rc = 0;
		goto out;
	}
	if (load_handoff(c, node, j->seq_lo, j->seq_hi, &j->legs, &j->calls, j->told_scope ? &j->convs : NULL,
			 j->told_state ? &j->state : NULL, err, errlen) < 0)
		goto out;
	/* the event scope step's bound: the checkpoint before the batch (0079) */
	snprintf(sql, sizeof sql, "SELECT set_config('cdrflow.scope_from', '%" PRIu64 "', true)", j->scope_from);
	if (pgc_exec(c, sql, err, errlen) < 0)
		goto out;
	snprintf(sql, sizeof sql, "SELECT cdrflow_after_batch(%s, %" PRIu64 ", %" PRIu64 ")", node, j->seq_lo,
		 j->seq_hi);
	if (pgc_exec(c, sql, err, errlen) < 0)
		goto out;
	if (pgc_exec(c, "COMMIT", err, errlen) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		char ignored[256];
		pgc_exec(c, "ROLLBACK", ignored, sizeof ignored);
	}
	free(gone);
	PQfreemem(node);
	return rc;
}

void analyst_failure_message(char *err, size_t errlen, const char *node, uint64_t seq_lo, uint64_t seq_hi,
			     int stored)
{
	char st[6], what[1024];
	pgc_err_state(err, st);
	const char *m = *st ? err + 7 : err;
	if (!strncmp(m, "ERROR:  ", 8))
		m += 8;
	snprintf(what, sizeof what, "%s", m);
	/* a lock wait or a cancel passes: only a step's own error needs mending */
	int passes = !strncmp(st, "40", 2) || !strcmp(st, "55P03") || !strcmp(st, "57014");
	const char *then = passes ? "run again" : "mend the failing step (analytics_step) and run again";
	snprintf(err, errlen, "%s%snode %s: the analytics of events %" PRIu64 "-%" PRIu64 " failed: %s; %s%s%s", st,
		 *st ? ": " : "", node, seq_lo + 1, seq_hi, what,
		 stored ? "the batch's rows are stored and its analytics pending (etl_analytics_pending): "
			: "the batch was rolled back: ",
		 then, stored ? ", the next run analyses the batch before the node loads on" : "");
}

/* analyse_once(), on a connection made again if the server dropped it (a
 * restart between two batches: nothing of the job was applied).  0,
 * ANALYST_LOST or ANALYST_FAILED. */
static int analyse(PGconn *c, const struct analyst_job *j, char *err, size_t errlen)
{
	for (int attempt = 0;; attempt++) {
		if (PQstatus(c) != CONNECTION_OK) {
			PQreset(c);
			if (PQstatus(c) != CONNECTION_OK || pgc_default_lock_timeout(c, "15s", err, errlen) < 0)
				break;
		}
		if (analyse_once(c, j, err, errlen) == 0)
			return 0;
		if (PQstatus(c) == CONNECTION_OK || attempt > 0)
			break;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		/* what the exit codes read: the server went away (retry later) */
		char why[512];
		snprintf(why, sizeof why, "%s", PQerrorMessage(c));
		snprintf(err, errlen, "08006: the analytics connection: %s", why);
		pgc_one_line(err);
		return ANALYST_LOST;
	}
	analyst_failure_message(err, errlen, j->node, j->seq_lo, j->seq_hi, 1);
	return ANALYST_FAILED;
}

static void *analyst_main(void *arg)
{
	struct analyst *a = arg;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->state == IDLE)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->state == QUIT)
			break;
		a->state = RUNNING;
		pthread_mutex_unlock(&a->mu);
		char err[1024];
		int rc = analyse(a->c, &a->job, err, sizeof err);
		pthread_mutex_lock(&a->mu);
		if (rc < 0 && !a->failed) {
			a->failed = rc;
			snprintf(a->err, sizeof a->err, "%s", err);
		}
		if (a->state == RUNNING)
			a->state = IDLE;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

struct analyst *analyst_new(PGconn *c, char *err, size_t errlen)
{
	PGconn *b = pgc_connect_like(c, "cdrflow-etl analytics", err, errlen);
	if (!b)
		return NULL;
	if (pgc_default_lock_timeout(b, "15s", err, errlen) < 0) {
		PQfinish(b);
		return NULL;
	}
	struct analyst *a = xcalloc(1, sizeof *a);
	a->c = b;
	a->state = IDLE;
	analyst_job_init(&a->job);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->th, NULL, analyst_main, a) != 0) {
		snprintf(err, errlen, "cannot start the analytics thread");
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->cv);
		analyst_job_release(&a->job);
		PQfinish(b);
		free(a);
		return NULL;
	}
	return a;
}

void analyst_free(struct analyst *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	while (a->state != IDLE)
		pthread_cond_wait(&a->cv, &a->mu);
	a->state = QUIT;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->th, NULL);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	analyst_job_release(&a->job);
	PQfinish(a->c);
	free(a);
}

static void swap_buf(struct buf *x, struct buf *y)
{
	struct buf t = *x;
	*x = *y;
	*y = t;
}

void analyst_submit(struct analyst *a, struct analyst_job *j)
{
	pthread_mutex_lock(&a->mu);
	while (a->state != IDLE)
		pthread_cond_wait(&a->cv, &a->mu);
	struct analyst_job *k = &a->job;
	k->id = j->id;
	memcpy(k->node, j->node, sizeof k->node);
	k->seq_lo = j->seq_lo;
	k->seq_hi = j->seq_hi;
	k->scope_from = j->scope_from;
	k->told_scope = j->told_scope;
	k->told_state = j->told_state;
	swap_buf(&k->legs, &j->legs);
	swap_buf(&k->calls, &j->calls);
	swap_buf(&k->convs, &j->convs);
	swap_buf(&k->state, &j->state);
	a->state = QUEUED;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

int analyst_wait(struct analyst *a, char *err, size_t errlen)
{
	pthread_mutex_lock(&a->mu);
	while (a->state != IDLE)
		pthread_cond_wait(&a->cv, &a->mu);
	int failed = a->failed;
	if (failed) {
		snprintf(err, errlen, "%s", a->err);
		a->failed = 0;
	}
	pthread_mutex_unlock(&a->mu);
	return failed;
}

/* One bytea column of r (binary results) into b. */
static int take_bytes(struct buf *b, const PGresult *r, int row, int col)
{
	buf_reset(b);
	return buf_append(b, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

int analyst_recover(struct analyst *a, const char *node, size_t *n, char *err, size_t errlen)
{
	*n = 0;
	int rc = analyst_wait(a, err, errlen);
	if (rc < 0)
		return rc;
	/* the analyst is idle: its connection is ours until we submit */
	const char *pv[1] = { node };
	PGresult *r = PQexecParams(a->c,
				   "SELECT node, seq_lo::text, seq_hi::text, scope_from::text, told_scope::text, "
				   "told_state::text, legs, calls, convs, state, id::text FROM etl_analytics_pending "
				   "WHERE node = $1 ORDER BY id",
				   1, NULL, pv, NULL, NULL, 1);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
		pgc_result_error(r, a->c, err, errlen);
		PQclear(r);
		return PQstatus(a->c) == CONNECTION_OK ? ANALYST_FAILED : ANALYST_LOST;
	}
	struct analyst_job j;
	analyst_job_init(&j);
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		snprintf(j.node, sizeof j.node, "%s", PQgetvalue(r, i, 0));
		j.seq_lo = strtoull(PQgetvalue(r, i, 1), NULL, 10);
		j.seq_hi = strtoull(PQgetvalue(r, i, 2), NULL, 10);
		j.scope_from = strtoull(PQgetvalue(r, i, 3), NULL, 10);
		j.told_scope = !strcmp(PQgetvalue(r, i, 4), "true");
		j.told_state = !strcmp(PQgetvalue(r, i, 5), "true");
		if (take_bytes(&j.legs, r, i, 6) < 0 || take_bytes(&j.calls, r, i, 7) < 0 ||
		    take_bytes(&j.convs, r, i, 8) < 0 || take_bytes(&j.state, r, i, 9) < 0) {
			snprintf(err, errlen, "out of memory for a pending batch's hand-off");
			rc = ANALYST_FAILED;
			break;
		}
		j.id = strtoll(PQgetvalue(r, i, 10), NULL, 10);
		log_info("node %s: analysing the batch of events %" PRIu64 "-%" PRIu64
			 " whose analytics an earlier run did not commit", j.node, j.seq_lo + 1, j.seq_hi);
		analyst_submit(a, &j);
		rc = analyst_wait(a, err, errlen);
		if (rc == 0)
			(*n)++;
	}
	PQclear(r);
	analyst_job_release(&j);
	return rc;
}
